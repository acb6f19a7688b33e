//! Recovery's restoring on a successor connection (`replay.rs`): channels with their
//! settings, then the topology one step at a time, then consumers, then `Recovered`.

use super::*;

fn exchange(name: &str) -> Method {
    ExchangeDeclare {
        exchange: s(name),
        kind: s("direct"),
        ..Default::default()
    }
    .into()
}

fn queue(name: &str, auto_delete: bool) -> Method {
    QueueDeclare {
        queue: s(name),
        auto_delete,
        ..Default::default()
    }
    .into()
}

fn bind(queue: &str, exchange: &str) -> Method {
    QueueBind {
        queue: s(queue),
        exchange: s(exchange),
        routing_key: s("k"),
        ..Default::default()
    }
    .into()
}

fn consume(queue: &str, tag: &str) -> Method {
    BasicConsume {
        queue: s(queue),
        consumer_tag: s(tag),
        ..Default::default()
    }
    .into()
}

/// The server's answer to a call: its `-ok`, or `channel.close` 406 when `refuse` says so.
fn answer(method: &Method, renamed: &mut u32) -> Method {
    match method {
        Method::ChannelOpen(_) => ChannelOpenOk {}.into(),
        Method::ChannelClose(_) => ChannelCloseOk {}.into(),
        Method::BasicQos(_) => BasicQosOk {}.into(),
        Method::ConfirmSelect(_) => ConfirmSelectOk {}.into(),
        Method::TxSelect(_) => TxSelectOk {}.into(),
        Method::ExchangeDeclare(_) => ExchangeDeclareOk {}.into(),
        Method::QueueBind(_) => QueueBindOk {}.into(),
        Method::BasicCancel(m) => BasicCancelOk {
            consumer_tag: m.consumer_tag.clone(),
        }
        .into(),
        Method::QueueDeclare(m) => {
            let queue = if m.queue.is_empty() {
                *renamed += 1;
                s(&format!("amq.gen-{renamed}"))
            } else {
                m.queue.clone()
            };
            QueueDeclareOk {
                queue,
                message_count: 0,
                consumer_count: 0,
            }
            .into()
        }
        Method::BasicConsume(m) => BasicConsumeOk {
            consumer_tag: m.consumer_tag.clone(),
        }
        .into(),
        other => panic!("no answer scripted for {other:?}"),
    }
}

/// Plays a broker that answers every call, except that it closes the channel with 406
/// for calls `refuse` picks. Returns what the client sent, as `(channel, name)`.
fn serve(b: &mut Broker, refuse: &dyn Fn(&Method) -> bool) -> Vec<(u16, &'static str)> {
    let mut log = Vec::new();
    let mut renamed = 0;
    // Channels the server closed: it ignores what comes on them until close-ok.
    let mut closed = Vec::new();
    loop {
        let methods = b.methods();
        if methods.is_empty() {
            return log;
        }
        for (channel, method) in methods {
            log.push((channel, method.name()));
            if matches!(method, Method::ChannelOpen(_)) {
                closed.retain(|c| *c != channel);
            }
            if closed.contains(&channel) {
                continue;
            }
            if refuse(&method) {
                closed.push(channel);
                let close = ChannelClose {
                    reply_code: 406,
                    reply_text: s("no"),
                    class_id: 0,
                    method_id: 0,
                };
                b.send(channel, close);
                let _ = b.expect_method(channel); // close-ok
            } else {
                let reply = answer(&method, &mut renamed);
                b.send(channel, reply);
            }
        }
    }
}

/// An open connection with a channel in confirm mode with QoS, a queue bound to an
/// exchange, and a consumer on it.
fn with_topology() -> (Broker, ChannelId) {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    let qos = BasicQos {
        prefetch_size: 0,
        prefetch_count: 10,
        global: false,
    };
    for call in [
        qos.into(),
        ConfirmSelect::default().into(),
        exchange("ex"),
        queue("q", false),
        bind("q", "ex"),
        consume("q", "c"),
    ] {
        b.conn.call(ch, call).expect("call");
    }
    serve(&mut b, &|_| false);
    b.events();
    (b, ch)
}

fn lose(b: &mut Broker) -> Vec<Event> {
    b.conn.handle_eof();
    b.events()
}

fn successor(old: &mut Broker, restore_topology: bool) -> Broker {
    let conn = old.conn.successor(config(), old.now, restore_topology);
    let mut next = Broker::with(conn, old.now);
    next.handshake(2047, 131_072, 60);
    next
}

fn recovered(events: &[Event]) -> Option<&RecoveryReport> {
    events.iter().find_map(|e| match e {
        Event::Recovered(report) => Some(&**report),
        _ => None,
    })
}

#[test]
fn a_successor_restores_channels_then_topology_then_consumers() {
    let (mut old, ch) = with_topology();
    let lost = lose(&mut old);
    assert!(
        matches!(
            lost.as_slice(),
            [Event::ChannelClosed { .. }, Event::ConnectionClosed(_)]
        ),
        "{lost:?}"
    );

    let mut new = successor(&mut old, true);
    assert_eq!(new.conn.generation(), 1);
    assert!(new.conn.is_replaying());
    let log = serve(&mut new, &|_| false);
    assert_eq!(
        log,
        [
            (1, "channel.open"),
            (1, "basic.qos"),
            (1, "confirm.select"),
            (2, "channel.open"),
            (2, "exchange.declare"),
            (2, "queue.declare"),
            (2, "queue.bind"),
            (2, "channel.close"),
            (1, "basic.consume"),
        ]
    );
    let events = new.events();
    let [Event::Connected { .. }, Event::Recovered(report)] = events.as_slice() else {
        panic!("the replay's own replies are not reported: {events:?}")
    };
    assert_eq!(
        **report,
        RecoveryReport {
            generation: 1,
            ..Default::default()
        }
    );
    assert!(!new.conn.is_replaying());
    assert!(new.conn.is_confirm_mode(ch) && new.conn.is_channel_usable(ch));
    // The consumer is back: its deliveries need acks again.
    new.deliver(1, "c", 1, b"m");
    let Some(Event::Delivery { delivery, .. }) = new.events().pop() else {
        panic!("delivery")
    };
    assert_eq!(delivery.delivery_tag.generation(), 1);
    new.conn.ack(delivery.delivery_tag, false).expect("ack");
    assert!(new.conn.unacked(ch) == 0);
}

#[test]
fn without_topology_only_channels_and_consumers_come_back() {
    let (mut old, _) = with_topology();
    lose(&mut old);
    let mut new = successor(&mut old, false);
    let log = serve(&mut new, &|_| false);
    let names: Vec<&str> = log.iter().map(|(_, m)| *m).collect();
    assert_eq!(names, ["channel.open", "basic.qos", "confirm.select", "basic.consume"]);
    assert!(recovered(&new.events()).is_some());
}

#[test]
fn a_server_named_queue_is_renamed_and_its_binding_and_consumer_follow() {
    let mut old = Broker::open(config());
    let ch = old.open_channel();
    old.conn.call(ch, queue("", true)).expect("declare");
    // The first connection's server names it amq.gen-1.
    serve(&mut old, &|_| false);
    old.conn.call(ch, bind("amq.gen-1", "ex")).expect("bind");
    old.conn.call(ch, consume("amq.gen-1", "c")).expect("consume");
    serve(&mut old, &|_| false);
    old.events();
    lose(&mut old);

    let mut new = successor(&mut old, true);
    // This server names it amq.gen-1 too; make it differ.
    let mut renamed = 1;
    let mut log = Vec::new();
    loop {
        let methods = new.methods();
        if methods.is_empty() {
            break;
        }
        for (channel, method) in methods {
            log.push((channel, method.clone()));
            let reply = answer(&method, &mut renamed);
            new.send(channel, reply);
        }
    }
    let declared = log.iter().find_map(|(_, m)| match m {
        Method::QueueDeclare(d) => Some(d.queue.clone()),
        _ => None,
    });
    assert_eq!(declared, Some(ShortStr::EMPTY), "declared without a name");
    let bound = log.iter().find_map(|(_, m)| match m {
        Method::QueueBind(b) => Some(b.queue.to_string()),
        _ => None,
    });
    assert_eq!(bound.as_deref(), Some("amq.gen-2"));
    let consumed = log.iter().find_map(|(_, m)| match m {
        Method::BasicConsume(c) => Some(c.queue.to_string()),
        _ => None,
    });
    assert_eq!(consumed.as_deref(), Some("amq.gen-2"));
    let events = new.events();
    let report = recovered(&events).expect("recovered");
    assert_eq!(
        report.renamed_queues,
        [("amq.gen-1".to_owned(), "amq.gen-2".to_owned())]
    );
}

#[test]
fn a_failed_step_is_reported_and_the_next_runs_on_a_fresh_channel() {
    let (mut old, _) = with_topology();
    lose(&mut old);
    let mut new = successor(&mut old, true);
    let log = serve(&mut new, &|m| matches!(m, Method::QueueDeclare(_)));
    let after: Vec<(u16, &str)> = log.into_iter().skip(3).collect();
    assert_eq!(
        after,
        [
            (2, "channel.open"),
            (2, "exchange.declare"),
            (2, "queue.declare"),
            (2, "channel.open"),
            (2, "queue.bind"),
            (2, "channel.close"),
            (1, "basic.consume"),
        ],
        "the refused declare closed channel 2; the binding went on a new one"
    );
    let events = new.events();
    let report = recovered(&events).expect("recovered");
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].entity, "queue \"q\"");
    assert_eq!(
        report.failures[0].error.reply_code(),
        Some(ReplyCode::PRECONDITION_FAILED)
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ChannelClosed { .. } | Event::ChannelOpened(_))),
        "the topology channel is the replay's own: {events:?}"
    );
}

#[test]
fn an_application_channel_the_server_closes_during_the_replay_is_reported() {
    let (mut old, ch) = with_topology();
    lose(&mut old);
    let mut new = successor(&mut old, true);
    serve(&mut new, &|m| matches!(m, Method::BasicQos(_)));
    let events = new.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ChannelClosed { channel, .. } if *channel == ch)),
        "{events:?}"
    );
    let report = recovered(&events).expect("recovered without the consumer of the closed channel");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(report.failures[0].entity, "channel 1");
}

#[test]
fn a_loss_during_the_replay_restores_the_same_on_the_next_successor() {
    let (mut old, _) = with_topology();
    lose(&mut old);
    let mut second = successor(&mut old, true);
    // Lost again after the channels were reopened, before any consume-ok.
    second.frames();
    let lost = lose(&mut second);
    assert!(
        !lost
            .iter()
            .any(|e| matches!(e, Event::ChannelClosed { channel, .. } if channel.number() == 2)),
        "the topology channel is not reported: {lost:?}"
    );
    let mut third = successor(&mut second, true);
    assert_eq!(third.conn.generation(), 2);
    let log = serve(&mut third, &|_| false);
    assert_eq!(log.len(), 9, "everything again: {log:?}");
    assert!(recovered(&third.events()).is_some());
}

#[test]
fn the_topology_keeps_what_the_server_accepted_and_forgets_cancelled_auto_delete_queues() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn.call(ch, queue("refused", false)).expect("declare");
    serve(&mut b, &|_| true);
    b.events();
    let ch = b.open_channel();
    b.conn.call(ch, queue("auto", true)).expect("declare");
    b.conn.call(ch, consume("auto", "c")).expect("consume");
    b.conn.call(ch, queue("kept", false)).expect("declare");
    serve(&mut b, &|_| false);
    b.conn
        .call(
            ch,
            BasicCancel {
                consumer_tag: s("c"),
                no_wait: false,
            }
            .into(),
        )
        .expect("cancel");
    serve(&mut b, &|_| false);
    b.events();
    lose(&mut b);
    let mut new = successor(&mut b, true);
    let log = serve(&mut new, &|_| false);
    let names: Vec<&str> = log.iter().map(|(_, m)| *m).collect();
    assert_eq!(
        names,
        ["channel.open", "channel.open", "queue.declare", "channel.close"],
        "only \"kept\": the refused declare was never recorded, the auto-delete queue lost its consumer"
    );
}
