//! Publisher confirms of one channel, and `basic.return`s matched to their publish.
//!
//! Rules:
//! - After `confirm.select` publishes are numbered 1, 2, ... (RabbitMQ counts the same
//!   way, from the first publish after the select).
//! - `basic.ack`/`basic.nack` from the server with `multiple` resolve every unconfirmed
//!   publish up to the tag; without it exactly that one. A tag already resolved is
//!   ignored; a tag above the last publish sent (the server confirms something never
//!   published) closes the channel with 406 PRECONDITION_FAILED, which the caller does.
//! - RabbitMQ sends the `basic.return` of a mandatory, unroutable publish before its
//!   confirm. Returns are held, and each ack/nack frame attributes them, oldest first,
//!   to the earliest publish it covers that was mandatory and had the same exchange,
//!   routing key and body. A return that no unconfirmed mandatory publish could match
//!   is reported on its own ([`Event::Return`]). Only mandatory publishes keep their
//!   exchange, routing key and body (shared `Bytes`, no copy), and the held returns
//!   never outnumber them.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::Bytes;

use super::commands::Route;
use super::{ChannelId, Event, Returned};
use crate::error::Error;
use crate::wire::ShortStr;

/// What identifies a mandatory publish for its return.
#[derive(Debug)]
struct PublishKey {
    exchange: ShortStr,
    routing_key: ShortStr,
    body: Bytes,
}

impl PublishKey {
    fn matches(&self, r: &Returned) -> bool {
        self.exchange == r.exchange && self.routing_key == r.routing_key && self.body == r.body
    }
}

#[derive(Debug)]
struct Unconfirmed {
    seq: u64,
    key: Option<Box<PublishKey>>,
    returned: Option<Box<Returned>>,
}

impl Unconfirmed {
    /// Mandatory and not matched to a return yet.
    fn awaits_return(&self, r: &Returned) -> bool {
        self.returned.is_none() && self.key.as_ref().is_some_and(|k| k.matches(r))
    }
}

/// Confirm state of one channel.
#[derive(Debug)]
pub(super) struct Confirms {
    next_seq: u64,
    unconfirmed: VecDeque<Unconfirmed>,
    held: VecDeque<Box<Returned>>,
    /// Unconfirmed mandatory publishes without a return yet.
    mandatory: usize,
}

impl Default for Confirms {
    fn default() -> Self {
        Confirms {
            next_seq: 1,
            unconfirmed: VecDeque::new(),
            held: VecDeque::new(),
            mandatory: 0,
        }
    }
}

impl Confirms {
    /// Publishes the server has not confirmed yet.
    pub(super) fn outstanding(&self) -> usize {
        self.unconfirmed.len()
    }

    /// Numbers a publish.
    pub(super) fn on_publish(&mut self, route: Route<'_>, body: &Bytes) -> Result<u64, Error> {
        let seq = self.next_seq;
        self.next_seq = seq.checked_add(1).ok_or(Error::NotAllowed {
            reason: "publish sequence numbers exhausted",
        })?;
        let key = route.mandatory.then(|| {
            let name = |b: &[u8]| ShortStr::try_from(std::str::from_utf8(b).unwrap_or_default()).unwrap_or_default();
            Box::new(PublishKey {
                exchange: name(route.exchange),
                routing_key: name(route.routing_key),
                body: body.clone(),
            })
        });
        if key.is_some() {
            self.mandatory += 1;
        }
        self.unconfirmed.push_back(Unconfirmed {
            seq,
            key,
            returned: None,
        });
        Ok(seq)
    }

    /// A `basic.return` arrived: hold it for the next confirm, or report it alone.
    pub(super) fn on_return(&mut self, channel: ChannelId, returned: Box<Returned>, events: &mut VecDeque<Event>) {
        let candidate = self.unconfirmed.iter().any(|u| u.awaits_return(&returned));
        if candidate && self.held.len() < self.mandatory {
            self.held.push_back(returned);
        } else {
            events.push_back(Event::Return { channel, returned });
        }
    }

    /// A `basic.ack` (`ack`) or `basic.nack` from the server. `Err` with a text when the
    /// tag is beyond the last publish.
    pub(super) fn on_confirm(
        &mut self,
        channel: ChannelId,
        tag: u64,
        multiple: bool,
        ack: bool,
        events: &mut VecDeque<Event>,
    ) -> Result<(), String> {
        let last = self.next_seq - 1;
        if tag > last {
            let what = if ack { "basic.ack" } else { "basic.nack" };
            return Err(format!("{what} for publish {tag}, but only {last} were published"));
        }
        let covered: Range<usize> = if multiple {
            0..self.unconfirmed.partition_point(|u| u.seq <= tag)
        } else {
            match self.unconfirmed.binary_search_by_key(&tag, |u| u.seq) {
                Ok(i) => i..i + 1,
                Err(_) => return Ok(()),
            }
        };
        // Attribute held returns, oldest first, to the earliest covered matching publish.
        let mut i = 0;
        while let Some(r) = self.held.get(i) {
            let slot = covered
                .clone()
                .find(|&j| self.unconfirmed.get(j).is_some_and(|u| u.awaits_return(r)));
            match slot.and_then(|j| self.unconfirmed.get_mut(j)) {
                Some(u) => {
                    u.returned = self.held.remove(i);
                    self.mandatory = self.mandatory.saturating_sub(1);
                }
                None => i += 1,
            }
        }
        for u in self.unconfirmed.drain(covered) {
            if u.key.is_some() && u.returned.is_none() {
                self.mandatory = self.mandatory.saturating_sub(1);
            }
            events.push_back(Event::Confirm {
                channel,
                seq: u.seq,
                ack,
                returned: u.returned,
            });
        }
        // Returns that no unconfirmed publish can claim any more are reported alone.
        let mut i = 0;
        while let Some(r) = self.held.get(i) {
            if self.unconfirmed.iter().any(|u| u.awaits_return(r)) && i < self.mandatory {
                i += 1;
            } else if let Some(returned) = self.held.remove(i) {
                events.push_back(Event::Return { channel, returned });
            }
        }
        Ok(())
    }
}
