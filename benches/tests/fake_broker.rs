//! The fake broker of `--bench client`, checked with warren itself: its own unit tests
//! (window accounting, delivery template) run here, plus one short run of each bench path.

#[path = "../src/fake_broker.rs"]
#[allow(dead_code)]
mod fake_broker;

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use fake_broker::{Config, FakeBroker};
use warren::client::{Confirmed, Connection, ConnectionConfig, ConsumeOptions, PublishOptions, QueueDeclareOptions};
use warren::wire::{BasicProperties, FieldTable};

const N: u64 = 3000;

#[test]
fn consume_ack_and_publish_confirm_against_the_fake_broker() {
    let broker = FakeBroker::start(Config {
        deliveries: N,
        body_size: 100,
    })
    .expect("fake broker");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = ConnectionConfig::from_uri(&broker.uri()).unwrap();
        config.publish_window = 100;
        let conn = Connection::connect_with(config).await.expect("connect");
        let ch = conn.open_channel().await.unwrap();
        let q = ch
            .queue_declare("", QueueDeclareOptions::default(), FieldTable::new())
            .await
            .unwrap();
        assert!(q.name.starts_with("amq.gen-fake"));

        // Consume with a prefetch of 50: the broker never has more than 50 unacked out.
        ch.basic_qos(50, false).await.unwrap();
        let mut consumer = ch
            .basic_consume(&q.name, "", ConsumeOptions::default(), FieldTable::new())
            .await
            .unwrap();
        for _ in 0..N {
            let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
                .await
                .expect("a delivery within 10 s")
                .expect("stream open")
                .expect("delivery");
            assert_eq!(d.body.len(), 100);
            assert_eq!(d.properties.delivery_mode, Some(1));
            d.ack().await.unwrap();
        }
        consumer.cancel().await.unwrap();

        // Publish with confirms, window 100.
        let confirm = conn.open_channel().await.unwrap();
        confirm.confirm_select().await.unwrap();
        let mut in_flight = VecDeque::new();
        for i in 0..N {
            let body = vec![i as u8; 64];
            let c = confirm
                .basic_publish("", &q.name, PublishOptions::default(), BasicProperties::default(), body)
                .await
                .unwrap();
            in_flight.push_back(c);
            if in_flight.len() == 100 {
                assert_eq!(in_flight.pop_front().unwrap().await.unwrap(), Confirmed::Ack);
            }
        }
        for c in in_flight {
            assert_eq!(c.await.unwrap(), Confirmed::Ack);
        }
        confirm.close().await.unwrap();
        ch.close().await.unwrap();
        conn.close().await.unwrap();
    });
    let s = &broker.stats;
    assert_eq!(s.delivered.load(Relaxed), N);
    assert_eq!(s.settled.load(Relaxed), N, "every delivery acked exactly once");
    assert_eq!(s.published.load(Relaxed), N);
    assert_eq!(s.confirmed.load(Relaxed), N);
    assert!(s.confirm_frames.load(Relaxed) <= N);
    assert_eq!(s.connections.load(Relaxed), 1);
}
