//! Frames a channel holds back, in order, until they may go out.
//!
//! Two rules make a channel wait:
//! - RabbitMQ answers `basic.consume` and `basic.cancel` from the queue's process, so
//!   their `-ok` can overtake the reply of a call pipelined behind them, and replies are
//!   matched in order. So while a consume or cancel waits for its reply, the channel's
//!   later calls wait. Publishes do not: they have no reply.
//! - While the server blocks publishing (`connection.blocked`), publishes wait: RabbitMQ
//!   stops reading a connection that publishes while blocked, and its acks would stall.
//!
//! Whatever follows a held command on its channel is held behind it, so a channel's
//! frames go out in the order of its commands. Acks are never held. A held command is
//! encoded and accounted for when it is accepted (its publish sequence number, its
//! pending call, its consumer); only its bytes wait.

use std::collections::VecDeque;

use crate::wire::{Mark, Output, Span};

/// Capacity a channel's hold keeps once empty: one that grew for a peak (up to the
/// driver's limit on held bytes) lets that buffer go.
const KEEP: usize = 64 * 1024;

/// What the frames of a command are, for the rules above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A method; `barrier`: a `basic.consume` or `basic.cancel` that waits for its reply.
    Call { barrier: bool },
    /// `basic.publish` with its content.
    Publish,
}

/// What is held back over all channels of a connection.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Commands held.
    pub commands: usize,
    /// Bytes of their frames.
    pub bytes: usize,
}

/// One channel's held frames.
#[derive(Debug, Default)]
pub(super) struct Hold {
    frames: Output,
    items: VecDeque<Item>,
    /// Consume and cancel calls sent whose reply has not come.
    barriers: u32,
}

#[derive(Debug, Clone, Copy)]
struct Item {
    span: Span,
    kind: Kind,
}

impl Hold {
    fn must_wait(&self, kind: Kind, blocked: bool) -> bool {
        !self.items.is_empty()
            || match kind {
                Kind::Call { .. } => self.barriers > 0,
                Kind::Publish => blocked,
            }
    }

    /// The frames of one command were just appended to `out` from `mark` on: leaves them
    /// there if they may go out now, else takes them into the hold.
    pub(super) fn place(&mut self, out: &mut Output, mark: Mark, kind: Kind, blocked: bool, total: &mut Held) {
        if self.must_wait(kind, blocked) {
            let span = out.move_tail(mark, &mut self.frames);
            total.commands += 1;
            total.bytes += span.len;
            self.items.push_back(Item { span, kind });
        } else if kind == (Kind::Call { barrier: true }) {
            self.barriers += 1;
        }
    }

    /// A consume or cancel was answered.
    pub(super) fn answered(&mut self) {
        self.barriers = self.barriers.saturating_sub(1);
    }

    /// Moves to `out` the held frames that may go now, in order, up to the first that
    /// must still wait.
    pub(super) fn release(&mut self, out: &mut Output, blocked: bool, total: &mut Held) {
        while let Some(&item) = self.items.front() {
            if self.barriers > 0 || (item.kind == Kind::Publish && blocked) {
                return;
            }
            self.items.pop_front();
            self.frames.move_head(item.span, out);
            total.commands -= 1;
            total.bytes -= item.span.len;
            if item.kind == (Kind::Call { barrier: true }) {
                self.barriers += 1;
            }
        }
        self.frames.shrink(KEEP);
    }

    /// Drops every held frame: the channel is closing, they will never go out.
    pub(super) fn discard(&mut self, total: &mut Held) {
        total.commands -= self.items.len();
        total.bytes -= self.frames.len();
        self.items.clear();
        self.frames.clear();
        self.frames.shrink(KEEP);
    }

    /// True if nothing is held.
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: Kind = Kind::Call { barrier: false };
    const CONSUME: Kind = Kind::Call { barrier: true };

    /// Appends `bytes` to `out` as one command's frames and places them.
    fn command(hold: &mut Hold, out: &mut Output, bytes: &[u8], kind: Kind, blocked: bool, total: &mut Held) {
        let mark = out.mark();
        out.buf_mut().extend_from_slice(bytes);
        hold.place(out, mark, kind, blocked, total);
    }

    #[test]
    fn calls_wait_behind_a_consume_and_publishes_do_not() {
        let (mut hold, mut out, mut total) = (Hold::default(), Output::new(), Held::default());
        command(&mut hold, &mut out, b"consume;", CONSUME, false, &mut total);
        command(&mut hold, &mut out, b"publish;", Kind::Publish, false, &mut total);
        command(&mut hold, &mut out, b"declare;", CALL, false, &mut total);
        command(&mut hold, &mut out, b"publish2;", Kind::Publish, false, &mut total);
        assert_eq!(
            out.encoded(),
            b"consume;publish;",
            "the publish passes, the declare waits"
        );
        assert_eq!(total, Held { commands: 2, bytes: 17 });
        hold.release(&mut out, false, &mut total);
        assert_eq!(out.encoded(), b"consume;publish;", "no reply yet");
        hold.answered();
        hold.release(&mut out, false, &mut total);
        assert_eq!(out.encoded(), b"consume;publish;declare;publish2;");
        assert!(hold.is_empty());
        assert_eq!(total, Held::default());
    }

    #[test]
    fn a_released_consume_holds_what_follows_it_again() {
        let (mut hold, mut out, mut total) = (Hold::default(), Output::new(), Held::default());
        command(&mut hold, &mut out, b"c1;", CONSUME, false, &mut total);
        command(&mut hold, &mut out, b"c2;", CONSUME, false, &mut total);
        command(&mut hold, &mut out, b"bind;", CALL, false, &mut total);
        hold.answered();
        hold.release(&mut out, false, &mut total);
        assert_eq!(out.encoded(), b"c1;c2;", "c2 went and is a barrier in turn");
        hold.answered();
        hold.release(&mut out, false, &mut total);
        assert_eq!(out.encoded(), b"c1;c2;bind;");
    }

    #[test]
    fn publishes_wait_while_blocked_and_calls_behind_them_too() {
        let (mut hold, mut out, mut total) = (Hold::default(), Output::new(), Held::default());
        command(&mut hold, &mut out, b"declare;", CALL, true, &mut total);
        command(&mut hold, &mut out, b"publish;", Kind::Publish, true, &mut total);
        command(&mut hold, &mut out, b"bind;", CALL, true, &mut total);
        assert_eq!(out.encoded(), b"declare;");
        hold.release(&mut out, true, &mut total);
        assert_eq!(out.encoded(), b"declare;", "still blocked");
        hold.release(&mut out, false, &mut total);
        assert_eq!(out.encoded(), b"declare;publish;bind;");
    }

    #[test]
    fn discard_forgets_the_frames_and_their_count() {
        let (mut hold, mut out, mut total) = (Hold::default(), Output::new(), Held::default());
        command(&mut hold, &mut out, b"publish;", Kind::Publish, true, &mut total);
        command(&mut hold, &mut out, b"publish;", Kind::Publish, true, &mut total);
        assert_eq!(total, Held { commands: 2, bytes: 16 });
        hold.discard(&mut total);
        assert_eq!(total, Held::default());
        hold.release(&mut out, false, &mut total);
        assert!(out.is_empty() && hold.is_empty());
    }
}
