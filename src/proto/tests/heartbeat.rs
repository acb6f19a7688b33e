use super::*;

fn heartbeats(frames: &[Frame]) -> usize {
    frames.iter().filter(|f| matches!(f, Frame::Heartbeat)).count()
}

/// Open with a 10 s heartbeat; all output flushed at `b.now`.
fn open_h10() -> Broker {
    let mut b = Broker::open_with_tune(config(), 0, 131_072, 10);
    b.expect_silence();
    b
}

#[test]
fn heartbeat_is_sent_after_half_the_interval_of_write_silence() {
    let mut b = open_h10();
    let t0 = b.now;
    assert_eq!(b.conn.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    b.advance(Duration::from_millis(4_999));
    b.expect_silence();
    b.advance(Duration::from_millis(1));
    let frames = b.frames();
    assert_eq!(heartbeats(&frames), 1, "{frames:?}");
    assert_eq!(frames.len(), 1);
    // The write resets the timer.
    assert_eq!(b.conn.poll_timeout(), Some(b.now + Duration::from_secs(5)));
}

#[test]
fn any_write_postpones_the_heartbeat() {
    let mut b = open_h10();
    let ch = b.open_channel();
    b.advance(Duration::from_secs(3));
    b.conn
        .call(
            ch,
            BasicQos {
                prefetch_count: 10,
                ..Default::default()
            }
            .into(),
        )
        .expect("qos");
    assert!(matches!(b.methods().as_slice(), [(_, Method::BasicQos(_))]));
    b.advance(Duration::from_secs(4)); // 7 s after the start, 4 s after the last write
    assert_eq!(heartbeats(&b.frames()), 0);
    b.advance(Duration::from_secs(1)); // 5 s after the last write
    assert_eq!(heartbeats(&b.frames()), 1);
}

#[test]
fn pending_output_suppresses_the_heartbeat_timer() {
    let mut b = open_h10();
    let ch = b.open_channel();
    b.conn.call(ch, BasicQos::default().into()).expect("qos");
    // Not transmitted yet: no heartbeat deadline, only the peer-dead one.
    assert_eq!(b.conn.poll_timeout(), Some(b.now + Duration::from_secs(20)));
    b.advance(Duration::from_secs(6));
    let frames = b.frames();
    assert_eq!(heartbeats(&frames), 0, "the pending qos goes out instead: {frames:?}");
}

#[test]
fn peer_is_dead_after_twice_the_interval_of_read_silence() {
    let mut b = open_h10();
    let ch = b.open_channel();
    let t0 = b.now;
    for _ in 0..3 {
        // Keep writing so only the read side is silent.
        b.advance(Duration::from_secs(5));
        b.frames();
    }
    b.advance(Duration::from_millis(4_999)); // 19.999 s of silence
    assert_eq!(b.conn.state(), State::Open);
    assert_eq!(b.conn.poll_timeout(), Some(t0 + Duration::from_secs(20)));
    b.advance(Duration::from_millis(1));
    assert!(b.conn.is_closed());
    let err = b.conn.error().cloned().expect("error");
    assert!(
        matches!(&err, Error::ConnectionLost { reason, .. } if reason.contains("heartbeat")),
        "{err:?}"
    );
    assert!(err.is_recoverable());
    assert_eq!(
        b.events(),
        vec![
            Event::ChannelClosed {
                channel: ch,
                error: err.clone()
            },
            Event::ConnectionClosed(err)
        ]
    );
    assert!(b.methods().is_empty(), "no close handshake with a dead peer");
    assert_eq!(b.conn.poll_timeout(), None);
}

#[test]
fn inbound_frames_reset_the_dead_peer_timer() {
    let mut b = open_h10();
    let t0 = b.now;
    b.advance(Duration::from_secs(15));
    b.frames();
    let mut hb = BytesMut::new();
    Frame::Heartbeat.encode(&mut hb);
    b.feed(&hb);
    b.advance(Duration::from_secs(5)); // 20 s after the start, 5 s after the heartbeat
    b.frames();
    assert_eq!(b.conn.state(), State::Open);
    b.advance(Duration::from_secs(10));
    b.frames();
    b.send(
        0,
        ConnectionBlocked {
            reason: s("low on memory"),
        },
    ); // any frame is life
    b.advance(Duration::from_secs(19));
    assert_eq!(b.conn.state(), State::Open);
    assert_eq!(b.now, t0 + Duration::from_secs(49));
    b.advance(Duration::from_secs(1));
    assert!(b.conn.is_closed());
}

#[test]
fn no_timers_without_heartbeat() {
    let mut b = Broker::open_with_tune(config(), 0, 131_072, 0);
    assert_eq!(b.conn.poll_timeout(), None);
    b.advance(Duration::from_secs(3600));
    b.expect_silence();
    assert_eq!(b.conn.state(), State::Open);
}

#[test]
fn client_heartbeat_setting_is_negotiated() {
    let mut cfg = config();
    cfg.heartbeat = Some(4);
    let mut b = Broker::open_with_tune(cfg, 0, 131_072, 60);
    b.expect_silence();
    assert_eq!(b.conn.negotiated().map(|t| t.heartbeat), Some(4));
    b.advance(Duration::from_secs(2));
    assert_eq!(heartbeats(&b.frames()), 1);
}
