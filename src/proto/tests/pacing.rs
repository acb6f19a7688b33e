//! Read coalescing from the state machine's own facts: a stream of deliveries or confirms
//! gets a pause only when the channels that got some can take what it holds back.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn paced() -> Broker {
    Broker::open(Config {
        read_coalescing: Some(MS),
        ..config()
    })
}

fn qos(b: &mut Broker, ch: ChannelId, prefetch_count: u16) {
    let qos = BasicQos {
        prefetch_size: 0,
        prefetch_count,
        global: false,
    };
    b.conn.call(ch, qos.into()).expect("qos");
    b.frames();
    b.send(ch.number(), BasicQosOk {});
    b.events();
}

/// Delivers `tags` in one read at the current time and asks for a pause.
fn read(b: &mut Broker, tags: std::ops::RangeInclusive<u64>) -> Option<Pause> {
    for tag in tags {
        b.deliver(1, "c", tag, b"body");
    }
    b.events();
    b.conn.read_pause(b.now, 4096)
}

#[test]
fn a_stream_with_prefetch_to_spare_pauses_and_a_full_prefetch_does_not() {
    let mut b = paced();
    let ch = b.open_channel();
    qos(&mut b, ch, 1000);
    b.consume(ch, "c", false);
    assert_eq!(read(&mut b, 1..=10), None, "a first read is not a stream");
    b.advance(MS / 2);
    let pause = read(&mut b, 11..=20).expect("a stream with room in the prefetch");
    assert!(pause.latest > b.now && pause.timer > b.now);
    assert_eq!(b.conn.read_pause(b.now, 0), None, "nothing streamed since");

    let mut b = paced();
    let ch = b.open_channel();
    qos(&mut b, ch, 20);
    b.consume(ch, "c", false);
    read(&mut b, 1..=10);
    b.advance(MS / 2);
    assert_eq!(
        read(&mut b, 11..=20),
        None,
        "the prefetch is used up: the broker waits for acks"
    );
}

#[test]
fn no_pause_while_a_reply_is_awaited_or_when_off() {
    let mut b = paced();
    let ch = b.open_channel();
    b.consume(ch, "c", true);
    read(&mut b, 1..=10);
    b.advance(MS / 2);
    assert!(read(&mut b, 11..=20).is_some(), "no-ack: no prefetch to mind");
    b.declare_pending(ch);
    b.advance(MS / 2);
    assert_eq!(read(&mut b, 21..=30), None, "a call waits for its reply");

    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "c", true);
    read(&mut b, 1..=10);
    b.advance(MS / 2);
    assert_eq!(read(&mut b, 11..=20), None, "read_coalescing: None");
}

#[test]
fn confirms_pause_only_while_half_the_window_is_left() {
    let mut b = paced();
    let ch = b.open_channel();
    b.confirm_select(ch);
    for _ in 0..100 {
        b.publish(ch, "k", false, b"m");
    }
    b.send(
        1,
        BasicAck {
            delivery_tag: 10,
            multiple: true,
        },
    );
    b.events();
    assert_eq!(b.conn.read_pause(b.now, 100), None, "first read");
    b.advance(MS / 2);
    b.send(
        1,
        BasicAck {
            delivery_tag: 20,
            multiple: true,
        },
    );
    b.events();
    assert!(
        b.conn.read_pause(b.now, 100).is_some(),
        "80 unconfirmed: room for 40 more"
    );
    b.advance(MS / 2);
    b.send(
        1,
        BasicAck {
            delivery_tag: 99,
            multiple: true,
        },
    );
    b.events();
    assert_eq!(
        b.conn.read_pause(b.now, 100),
        None,
        "one left: its publisher waits for it"
    );
}
