//! One transport's session: its socket halves, buffers and timers, and the wait for one
//! wakeup ([`Session::wait`]), which polls every enabled source once.
//!
//! Writes go out with [`write_or_flush`] (a vectored write when large message bodies
//! are in the output by reference), reads come in with `read_buf` into a reused buffer;
//! both are cancel-safe, so a read and a write can be in progress in the same wakeup (a
//! broker that stops reading, e.g. while it blocks publishing, never stops us from
//! reading its frames).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use super::slot::Waiter;
use crate::client::command::Command;
use crate::client::transport::BoxTransport;
use crate::client::wake::TaskWake;
use crate::wire::Output;

/// Read buffer size; also the minimum free space before each read.
const READ_BUF: usize = 128 * 1024;
const READ_MIN_FREE: usize = 16 * 1024;
/// Write buffer capacity kept once everything is written: a buffer that grew for a peak
/// beyond it is let go.
const WRITE_KEEP: usize = 1024 * 1024;
/// Slices handed to one vectored write: encoded frames and body slices between them.
const WRITE_SLICES: usize = 256;
/// How long the final write (close / close-ok) may take once the connection is closed.
const FINAL_WRITE: Duration = Duration::from_secs(2);

/// The transport of one session, its buffers and its timers.
pub(super) struct Session {
    rd: ReadHalf<BoxTransport>,
    wr: WriteHalf<BoxTransport>,
    pub(super) rbuf: BytesMut,
    pub(super) wbuf: Output,
    /// A write went out and was not flushed yet.
    pub(super) need_flush: bool,
    /// The peer closed its side, or reading failed.
    pub(super) eof: bool,
    // The timers live as long as the session: a tokio timer registered earlier than the
    // runtime's next planned wake-up makes it write its eventfd, even from its own
    // thread, so a fresh timer per wakeup costs two system calls. Pushed later, a timer
    // only moves a number.
    /// The state machine's next deadline (heartbeats, handshake, close).
    pub(super) deadlines: SessionTimer,
    /// While deaf: when to listen to the command queue again anyway.
    pub(super) settle: SessionTimer,
    /// Armed: not reading until it fires (`proto::Connection::read_pause`).
    pub(super) read_pause: SessionTimer,
    /// While a read pause is armed: the latest a thread parked during it sleeps.
    pub(super) pause_latest: Option<Instant>,
}

/// What one wakeup waits for, as [`Driver::plan`](super::Driver) decided.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Plan {
    pub(super) read: bool,
    pub(super) write: bool,
    pub(super) commands: bool,
    /// Listening for commands through [`TaskWake`] only (see there).
    pub(super) deaf: bool,
}

/// What one wakeup found ready.
#[derive(Default)]
pub(super) struct Wakeup {
    pub(super) write: Option<io::Result<Option<usize>>>,
    pub(super) read: Option<io::Result<usize>>,
    /// Room in the queue of consumer `waiters[i]` (`Ok`), or its consumer is gone.
    pub(super) room: Option<(usize, Result<(), ()>)>,
    /// A command, or `None` once every handle is gone.
    pub(super) command: Option<Option<Command>>,
    pub(super) timer: bool,
    /// The task was deaf and must listen to its command queue again.
    pub(super) listen: bool,
    /// A read pause is over.
    pub(super) resume_read: bool,
}

impl Wakeup {
    fn is_empty(&self) -> bool {
        self.write.is_none()
            && self.read.is_none()
            && self.room.is_none()
            && self.command.is_none()
            && !self.timer
            && !self.listen
            && !self.resume_read
    }
}

impl Session {
    pub(super) fn new(stream: BoxTransport) -> Self {
        let (rd, wr) = tokio::io::split(stream);
        Session {
            rd,
            wr,
            rbuf: BytesMut::with_capacity(READ_BUF),
            wbuf: Output::with_capacity(READ_BUF),
            need_flush: false,
            eof: false,
            deadlines: SessionTimer::new(),
            settle: SessionTimer::new(),
            read_pause: SessionTimer::new(),
            pause_latest: None,
        }
    }

    /// Best effort: writes the close or close-ok still owed to the server, then shuts
    /// the transport down.
    pub(super) async fn final_write(&mut self) {
        let (wr, wbuf) = (&mut self.wr, &mut self.wbuf);
        let _ = tokio::time::timeout(FINAL_WRITE, async {
            while !wbuf.is_empty() {
                if write_or_flush(wr, wbuf).await? == Some(0) {
                    return Err(io::ErrorKind::WriteZero.into());
                }
            }
            wr.flush().await?;
            wr.shutdown().await
        })
        .await;
    }

    /// Makes room for the next read.
    pub(super) fn reserve_read(&mut self) {
        if self.rbuf.capacity() - self.rbuf.len() < READ_MIN_FREE {
            self.rbuf.reserve(READ_BUF);
        }
    }

    /// True while output waits to be written or flushed.
    pub(super) fn wants_write(&self) -> bool {
        !self.wbuf.is_empty() || self.need_flush
    }

    /// One wakeup: polls every source `plan` enables once and keeps every result that is
    /// ready, so a busy socket cannot starve commands (or the reverse).
    pub(super) async fn wait(
        &mut self,
        plan: Plan,
        commands: &mut mpsc::Receiver<Command>,
        waiters: &[Waiter],
        wake: &TaskWake,
    ) -> Wakeup {
        let mut write = pin!(when(plan.write, write_or_flush(&mut self.wr, &mut self.wbuf)));
        let mut read = pin!(when(plan.read, self.rd.read_buf(&mut self.rbuf)));
        let mut command = pin!(when(plan.commands && !plan.deaf, commands.recv()));
        let mut notified = pin!(when(plan.deaf, wake.notified()));
        let (deadlines, settle, read_pause) = (&mut self.deadlines, &mut self.settle, &mut self.read_pause);
        let mut woke = Wakeup::default();
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = write.as_mut().poll(cx) {
                woke.write = Some(r);
            }
            if let Poll::Ready(r) = read.as_mut().poll(cx) {
                woke.read = Some(r);
            }
            if let Poll::Ready(r) = poll_room(waiters, cx) {
                woke.room = Some(r);
            }
            if let Poll::Ready(r) = command.as_mut().poll(cx) {
                woke.command = Some(r);
            }
            if let Poll::Ready(()) = notified.as_mut().poll(cx) {
                woke.listen = true;
            }
            if deadlines.poll(cx).is_ready() {
                woke.timer = true;
            }
            if settle.poll(cx).is_ready() {
                woke.listen = true;
            }
            if read_pause.poll(cx).is_ready() {
                woke.resume_read = true;
            }
            if woke.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        woke
    }
}

/// Writes some of `out` (`Some(n)`), or flushes when it is empty (`None`). Cancel-safe:
/// bytes leave `out` only in the poll that completes the write. Bodies in the output by
/// reference go out with a vectored write where the transport has one (TCP); otherwise
/// one slice at a time. A write that empties `out` lets a buffer grown for a peak go.
async fn write_or_flush<W: AsyncWrite + Unpin>(wr: &mut W, out: &mut Output) -> io::Result<Option<usize>> {
    if out.is_empty() {
        return wr.flush().await.map(|()| None);
    }
    let n = std::future::poll_fn(|cx| {
        let wr = Pin::new(&mut *wr);
        if out.has_shared() && wr.is_write_vectored() {
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let n = out.chunks_vectored(&mut slices);
            wr.poll_write_vectored(cx, &slices[..n])
        } else {
            wr.poll_write(cx, out.chunk())
        }
    })
    .await?;
    out.advance(n);
    out.shrink(WRITE_KEEP);
    Ok(Some(n))
}

/// The first consumer queue with room (`Ok`) or without a consumer (`Err`).
fn poll_room(waiters: &[Waiter], cx: &mut Context<'_>) -> Poll<(usize, Result<(), ()>)> {
    for (i, w) in waiters.iter().enumerate() {
        if let Poll::Ready(r) = w.queue.poll_room(cx) {
            return Poll::Ready((i, r));
        }
    }
    Poll::Pending
}

/// `fut` when `enabled`, otherwise a future that never completes.
pub(super) async fn when<F: Future>(enabled: bool, fut: F) -> F::Output {
    if enabled {
        fut.await
    } else {
        std::future::pending().await
    }
}

/// A timer armed to an optional deadline, reused across wakeups.
pub(super) struct SessionTimer {
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl SessionTimer {
    fn new() -> Self {
        SessionTimer {
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            armed: false,
        }
    }

    /// Arms the timer for `deadline`, or disarms it.
    pub(super) fn set(&mut self, deadline: Option<tokio::time::Instant>) {
        self.armed = deadline.is_some();
        if let Some(d) = deadline
            && self.sleep.deadline() != d
        {
            self.sleep.as_mut().reset(d);
        }
    }

    pub(super) fn is_armed(&self) -> bool {
        self.armed
    }

    /// The deadline, when armed.
    pub(super) fn deadline(&self) -> Option<tokio::time::Instant> {
        self.armed.then(|| self.sleep.deadline())
    }

    /// Ready once an armed deadline has passed; a disarmed timer never is.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.armed {
            true => self.sleep.as_mut().poll(cx),
            false => Poll::Pending,
        }
    }
}
