//! warren adapter for the peer benchmark (shared/peer-bench); `scripts/peer-bench.sh`
//! copies this file into the harness as `src/clients/warren_client.rs`.
//!
//! Idiomatic usage, like the lapin adapter: `Channel::basic_publish(..).await` returns a
//! `Confirmation` future; we keep them in a FIFO and await the oldest when the window is
//! full. Consumption reads the bounded `Consumer` and acks each delivery with
//! `Delivery::ack()` (multiple = false). warren's own per-channel window
//! (`ConnectionConfig::publish_window`) is set to the scenario's window so that the FIFO,
//! not the library, is what bounds the unconfirmed publishes.

use std::collections::VecDeque;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use bytes::Bytes;
use warren::client::{
    Channel, Confirmation, Confirmed, Connection, ConnectionConfig, ConsumeOptions, PublishOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use warren::wire::{BasicProperties, FieldTable};

use crate::client::{Client, ConnectArgs, ConsumeOutcome, ConsumeSpec, PublishOutcome, PublishSpec};

pub struct WarrenClient {
    conn: Connection,
}

fn e(err: warren::Error) -> anyhow::Error {
    anyhow!("warren: {err}")
}

impl WarrenClient {
    pub async fn connect(args: &ConnectArgs) -> Result<Self> {
        let mut config = ConnectionConfig::from_uri(&args.uri()).map_err(e)?;
        // The harness bounds the window itself (WINDOW, default 1000; 1000 for the preload).
        config.publish_window = 1 << 16;
        // WARREN_OWN_THREAD=0: the connection task runs on the harness's runtime
        // (`ConnectionConfig::own_thread`), for a same-run comparison of the two.
        if std::env::var("WARREN_OWN_THREAD").as_deref() == Ok("0") {
            config.own_thread = false;
        }
        let conn = Connection::connect_with(config)
            .await
            .map_err(e)
            .context("warren connect")?;
        Ok(Self { conn })
    }

    async fn channel(&self) -> Result<Channel> {
        self.conn.open_channel().await.map_err(e)
    }
}

#[async_trait]
impl Client for WarrenClient {
    fn name(&self) -> &'static str {
        "warren"
    }

    async fn declare_queue(&self, queue: &str, durable: bool) -> Result<()> {
        let ch = self.channel().await?;
        ch.queue_declare(
            queue,
            QueueDeclareOptions {
                durable,
                ..Default::default()
            },
            FieldTable::new(),
        )
        .await
        .map_err(e)?;
        ch.close().await.map_err(e)?;
        Ok(())
    }

    async fn message_count(&self, queue: &str) -> Result<u32> {
        let ch = self.channel().await?;
        let q = ch
            .queue_declare(
                queue,
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::new(),
            )
            .await
            .map_err(e)?;
        ch.close().await.map_err(e)?;
        Ok(q.message_count)
    }

    async fn delete_queue(&self, queue: &str) -> Result<()> {
        let ch = self.channel().await?;
        ch.queue_delete(queue, QueueDeleteOptions::default()).await.map_err(e)?;
        ch.close().await.map_err(e)?;
        Ok(())
    }

    async fn publish(&self, spec: &PublishSpec<'_>) -> Result<PublishOutcome> {
        let ch = self.channel().await?;
        if spec.confirm_window.is_some() {
            ch.confirm_select().await.map_err(e)?;
        }
        let props = BasicProperties {
            delivery_mode: Some(if spec.persistent { 2 } else { 1 }),
            ..Default::default()
        };
        // One shared buffer: each publish clones a reference, not the bytes.
        let body = Bytes::copy_from_slice(spec.body);
        let window = spec.confirm_window.unwrap_or(0);
        let mut pending: VecDeque<Confirmation> = VecDeque::with_capacity(window + 1);
        let mut out = PublishOutcome::default();
        let settle = |c: Result<Confirmed, warren::Error>, out: &mut PublishOutcome| -> Result<()> {
            match c.map_err(e)? {
                Confirmed::Ack => out.acked += 1,
                Confirmed::Nack | Confirmed::Returned { .. } => out.nacked += 1,
                Confirmed::Sent => {}
            }
            Ok(())
        };
        for _ in 0..spec.count {
            let confirm = ch
                .basic_publish("", spec.queue, PublishOptions::default(), props.clone(), body.clone())
                .await
                .map_err(e)?;
            out.published += 1;
            if spec.confirm_window.is_some() {
                pending.push_back(confirm);
                while pending.len() >= window.max(1) {
                    let c = pending.pop_front().expect("window not empty").await;
                    settle(c, &mut out)?;
                }
            } else {
                // Resolves at once with `Confirmed::Sent` outside confirm mode.
                drop(confirm);
            }
        }
        if spec.confirm_window.is_some() {
            for c in pending {
                settle(c.await, &mut out)?;
            }
        } else {
            // Round-trip barrier on the same channel.
            ch.queue_declare(
                spec.queue,
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::new(),
            )
            .await
            .map_err(e)?;
        }
        ch.close().await.map_err(e)?;
        Ok(out)
    }

    async fn consume_ack(&self, spec: &ConsumeSpec<'_>) -> Result<ConsumeOutcome> {
        let ch = self.channel().await?;
        ch.basic_qos(spec.prefetch, false).await.map_err(e)?;
        let mut consumer = ch
            .basic_consume(
                spec.queue,
                "bench-consumer",
                ConsumeOptions::default(),
                FieldTable::new(),
            )
            .await
            .map_err(e)?;
        let mut out = ConsumeOutcome::default();
        while out.received < spec.count {
            let Some(d) = consumer.next().await else {
                bail!("consumer ended after {} deliveries", out.received);
            };
            let d = d.map_err(e)?;
            out.received += 1;
            out.bytes += d.body.len() as u64;
            d.ack().await.map_err(e)?;
        }
        consumer.cancel().await.map_err(e)?;
        ch.close().await.map_err(e)?;
        Ok(out)
    }

    async fn close(&self) -> Result<()> {
        self.conn.close().await.map_err(e)
    }
}
