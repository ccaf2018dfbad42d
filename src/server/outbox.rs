//! The outbox: the queue of lines waiting for one client's writer, bounded
//! in lines (`--queue-lines`) and in bytes (`--queue-bytes`).
//!
//! # Why not `crossbeam_channel::bounded`
//!
//! A bounded crossbeam channel allocates its whole ring buffer up front:
//! 1024 slots of 32 bytes is 32 KiB per client *before it receives
//! anything*, 320 MB for 10,000 idle students, most of a laptop's spare
//! memory spent on empty queues. And it counts items, not bytes: 1,024
//! lines of 4 KB are 4 MB. So the outbox is an **unbounded** crossbeam
//! channel (a linked list of small blocks, allocated as lines arrive and
//! freed as the writer drains them), and the bounds are enforced here, by
//! counting. An idle client's outbox costs a few dozen bytes.
//!
//! # The count
//!
//! Lines and bytes waiting are one `AtomicU64`: lines in the high 32 bits,
//! bytes in the low 32. A sender *reserves* its line by a compare-and-swap
//! that adds both at once and fails if either would pass its bound, so the
//! check and the count are one step: two threads sending at the same
//! instant can never both squeeze past the bound. The writer subtracts
//! each line as it takes it ([`OutboxReceiver`]). A reservation always
//! comes before the line is in the channel, so the writer never subtracts
//! what was not added.
//!
//! Wake-ups and markers are not lines: they are never counted and always
//! fit, so they can never be the reason a client is dropped.
//!
//! # Two ways in
//!
//! * [`Outbox::send_quietly`] is for everything *others* send to a client
//!   (room events, notices, DMs, `KICKED`): a full outbox refuses it, and
//!   the caller decides whether the client is a slow consumer (see "A
//!   writer that is behind" below). [`Outbox::try_send`] is the same for a
//!   line that may simply be left out (a stored DM, which stays stored).
//! * [`Outbox::push`] is for the client's *own* replies, queued by its own
//!   reader thread. They are counted but never refused: a client is never
//!   dropped for what it asked for. They stay bounded because that thread
//!   stops reading the client's lines while the outbox is above its low
//!   water mark ([`Outbox::below_low_water`]), and queues a long reply in
//!   pieces ([`Outbox::piece`]), waiting for the writer between them.
//!
//! # How the writer waits
//!
//! The channel is a [`doorbell`](crate::doorbell) queue: the writer sleeps
//! without spinning when its outbox is empty, and the sender that finds it
//! asleep wakes it with one system call; the others pay nothing. A
//! broadcast uses [`Outbox::send_quietly`], which hands that wake-up back
//! to be rung once the room's lock is released.
//!
//! # A writer that is behind
//!
//! An awake writer can still fall behind without its client being slow:
//! on two cores shared by hundreds of threads, a writer thread that is
//! runnable may wait tens of milliseconds for a processor, and in a room
//! that says tens of thousands of lines a second its outbox fills in that
//! time while the client's socket sits empty. Dropping that client would
//! punish it for the server's own scheduling; the protocol's
//! `SLOW_CONSUMER` means that *the client* stopped reading. So a line
//! that leaves more than half of either bound waiting also says so
//! ([`Owed::Help`]), and once its sender's locks are released (a room's,
//! for a broadcast) the sender does the writer's work if its pen is free
//! (`writer.rs`). Whoever runs keeps the lines moving. The pen's holder
//! can itself be preempted in the middle of a batch, though, so a line
//! that finds the outbox full asks the socket before it judges: only if
//! the socket is refusing bytes is the client a slow consumer; otherwise
//! the line waits past the bound, up to twice it ([`Outbox::overflow`]).
//! The outbox stays bounded, and it is the client's socket, not our
//! threads' turn on a processor, that decides.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{TryRecvError, TrySendError};

use super::client::Outgoing;
use crate::doorbell::{self, Receiver, Sender, Wake};
use crate::oneshot;

/// Lines and bytes, the two things an outbox counts and bounds.
type Load = (u64, u64);

/// Lines and bytes waiting, packed in one word (see the module's doc).
#[derive(Debug, Default)]
struct Count(AtomicU64);

/// What one line adds to the packed count.
fn packed(bytes: u64) -> u64 {
    (1 << 32) | bytes
}

/// The packed count as `(lines, bytes)`.
fn unpack(word: u64) -> Load {
    (word >> 32, word & u64::from(u32::MAX))
}

impl Count {
    /// Adds one line of `bytes`, unless the result would pass `bound`
    /// (`(lines, bytes)`) or overflow its half of the word; returns the
    /// count with it, or `None`. Relaxed is enough: the count orders
    /// nothing, the channel carries the lines.
    fn reserve(&self, bytes: u64, bound: Load) -> Option<Load> {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
                let (lines, queued) = unpack(word);
                let after = (lines + 1, queued + bytes);
                (after.0 <= bound.0 && after.1 <= bound.1).then(|| word + packed(bytes))
            })
            .ok()
            .map(|before| unpack(before + packed(bytes)))
    }

    /// Takes one line of `bytes` off the count.
    fn release(&self, bytes: u64) {
        self.0.fetch_sub(packed(bytes), Ordering::Relaxed);
    }

    /// `(lines, bytes)` waiting now.
    fn now(&self) -> Load {
        unpack(self.0.load(Ordering::Relaxed))
    }
}

/// The bytes an item adds to the count: its length for a line, `None` for
/// a wake-up, a marker or a claim, which are not counted.
fn weight(item: &Outgoing) -> Option<u64> {
    let len = match item {
        Outgoing::Shared(line) => line.len(),
        Outgoing::Owned(line) | Outgoing::Dm(line) => line.len(),
        Outgoing::Wake | Outgoing::Mark(_) | Outgoing::Claim(_) => return None,
    };
    Some(len as u64)
}

/// The sending side of a client's outbox; held by its `Client` handle.
#[derive(Debug)]
pub struct Outbox {
    /// The channel to the writer thread.
    tx: Sender<Outgoing>,
    /// Lines and bytes waiting, shared with the writer's end.
    count: Arc<Count>,
    /// The most lines (`--queue-lines`) and bytes (`--queue-bytes`) that
    /// may wait, each at most `u32::MAX` (its half of the packed count).
    bound: Load,
}

/// The writer's end of an outbox: takes items, and takes each line off the
/// count as it does.
#[derive(Debug)]
pub struct OutboxReceiver {
    /// The channel from the senders.
    rx: Receiver<Outgoing>,
    /// The count shared with the senders.
    count: Arc<Count>,
}

/// The writer thread's handle for waiting until something is queued (see
/// [`OutboxReceiver::waiter`]).
#[derive(Debug)]
pub struct OutboxWaiter(doorbell::Waiter<Outgoing>);

impl OutboxWaiter {
    /// Waits until something is queued or `closing()` holds, or until
    /// `deadline` if there is one (then `false`). Takes nothing. The
    /// closing flag counts because the wake-up queued with it may be taken
    /// by a broadcaster holding the pen before the writer sees it.
    pub fn wait(&self, deadline: Option<Instant>, closing: impl Fn() -> bool) -> bool {
        self.0.wait(deadline, closing)
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a sender that queued a line under its locks (a room's, for a
/// broadcast) owes the client's writer once they are released
/// ([`Outbox::send_quietly`]).
#[derive(Debug)]
#[must_use = "a sleeping writer stays asleep, and one that is behind gets no help"]
pub enum Owed {
    /// The writer was asleep, and the sender holds the duty to wake it (or
    /// to do its work).
    Wake(Wake),
    /// The writer is awake, but more than half of the outbox is waiting
    /// for it: it may be runnable and still waiting for a processor. The
    /// broadcaster writes for it if the pen is free (see the module's doc).
    Help,
}

/// A new outbox holding at most `lines` lines and `bytes` bytes, and the
/// writer's end.
pub fn outbox(lines: usize, bytes: usize) -> (Outbox, OutboxReceiver) {
    let (tx, rx) = doorbell::unbounded();
    let count = Arc::new(Count::default());
    let cap = |n: usize| (n as u64).min(u64::from(u32::MAX));
    let outbox = Outbox {
        tx,
        count: count.clone(),
        bound: (cap(lines), cap(bytes)),
    };
    (outbox, OutboxReceiver { rx, count })
}

impl Outbox {
    /// Queues a line unless it would take the outbox past either bound.
    /// Never blocks.
    ///
    /// # Errors
    ///
    /// `Full` when the client is not keeping up; `Disconnected` when its
    /// writer has gone.
    pub fn try_send(&self, item: Outgoing) -> Result<(), TrySendError<Outgoing>> {
        self.send_within(item, self.bound, Sender::try_send)
            .map(|_| ())
    }

    /// Like [`Outbox::try_send`], for a sender that may hold locks (a
    /// room's, for a broadcast): says what it owes this client's writer
    /// once they are released ([`Owed`]; `None` for an awake writer that is
    /// not behind) instead of waking it here.
    ///
    /// # Errors
    ///
    /// As [`Outbox::try_send`].
    pub fn send_quietly(&self, item: Outgoing) -> Result<Option<Owed>, TrySendError<Outgoing>> {
        let (wake, count) = self.send_within(item, self.bound, Sender::send_quietly)?;
        Ok(match wake {
            Some(wake) => Some(Owed::Wake(wake)),
            None if count.is_some_and(|count| self.past_half(count)) => Some(Owed::Help),
            None => None,
        })
    }

    /// Queues a line from someone else past the bounds, up to twice each,
    /// for a client whose outbox is full while its socket takes everything
    /// it is given (`Client::enqueue` says why that is not a slow
    /// consumer). Like [`Outbox::send_quietly`], but always owes the writer
    /// at least help, so that the line goes out once the sender's locks
    /// are released.
    ///
    /// # Errors
    ///
    /// `Full` past twice the bounds; `Disconnected` when the writer has
    /// gone.
    pub fn overflow(&self, item: Outgoing) -> Result<Owed, TrySendError<Outgoing>> {
        let twice = |n: u64| (n * 2).min(u64::from(u32::MAX));
        let twice = (twice(self.bound.0), twice(self.bound.1));
        let (wake, _) = self.send_within(item, twice, Sender::send_quietly)?;
        Ok(wake.map_or(Owed::Help, Owed::Wake))
    }

    /// Queues one of the client's own replies: counted, but never refused
    /// for being over the bounds (see the module's doc for why that stays
    /// bounded). Never blocks.
    ///
    /// # Errors
    ///
    /// `Disconnected` when the writer has gone.
    pub fn push(&self, item: Outgoing) -> Result<(), TrySendError<Outgoing>> {
        let unbounded = (u64::from(u32::MAX), u64::from(u32::MAX));
        self.send_within(item, unbounded, Sender::try_send)
            .map(|_| ())
    }

    /// Reserves the item's place in the count within `bound` (lines only:
    /// wake-ups, markers and claims always fit), then queues it with
    /// `send`. The queue itself is unbounded, so `send` fails only when the
    /// writer has gone; the reservation is then given back. Returns what
    /// `send` returned, and the count with this line (`None` for an item
    /// that is not a line).
    fn send_within<R>(
        &self,
        item: Outgoing,
        bound: Load,
        send: impl FnOnce(&Sender<Outgoing>, Outgoing) -> Result<R, TrySendError<Outgoing>>,
    ) -> Result<(R, Option<Load>), TrySendError<Outgoing>> {
        let bytes = weight(&item);
        let count = match bytes {
            Some(bytes) => match self.count.reserve(bytes, bound) {
                Some(count) => Some(count),
                None => return Err(TrySendError::Full(item)),
            },
            None => None,
        };
        match send(&self.tx, item) {
            Ok(sent) => Ok((sent, count)),
            Err(e) => {
                if let Some(bytes) = bytes {
                    self.count.release(bytes);
                }
                Err(TrySendError::Disconnected(e.into_inner()))
            }
        }
    }

    /// Hands back the duty to wake the writer, for a writer that turned out
    /// not to need it: a broadcaster did its work (`writer.rs`). The writer
    /// counts as asleep again, and is woken after all if a line arrived
    /// meanwhile.
    pub fn rearm(&self, wake: Wake) {
        self.tx.rearm(wake);
    }

    /// Wakes the writer. The wake-up is not a line: it is queued even on a
    /// full outbox.
    pub fn wake(&self) {
        let _ = self.tx.try_send(Outgoing::Wake);
    }

    /// Queues a marker (not a line, so even on a full outbox) and returns
    /// the channel on which the writer says it has written everything
    /// queued before it. If the writer is gone, the marker is dropped at
    /// once and the channel is disconnected.
    pub fn mark(&self) -> oneshot::Receiver<()> {
        let (taken, told) = oneshot::channel();
        let _ = self.tx.try_send(Outgoing::Mark(taken));
        told
    }

    /// `(lines, bytes)` waiting now.
    pub fn load(&self) -> (usize, usize) {
        let (lines, bytes) = self.count.now();
        (lines as usize, bytes as usize)
    }

    /// True when at most half of each bound is in use: the low water mark
    /// under which the client's reader handles its next line.
    pub fn below_low_water(&self) -> bool {
        !self.past_half(self.count.now())
    }

    /// Whether `count` (`(lines, bytes)`) is past half of either bound.
    fn past_half(&self, (lines, bytes): Load) -> bool {
        lines > self.bound.0 / 2 || bytes > self.bound.1 / 2
    }

    /// The most lines and bytes of one piece of a long reply: a quarter of
    /// each bound (at least one line). A piece queued at the low water mark
    /// leaves a quarter of the outbox for what others send meanwhile.
    pub fn piece(&self) -> (usize, usize) {
        let quarter = |n: u64| (n / 4).max(1) as usize;
        (quarter(self.bound.0), quarter(self.bound.1))
    }
}

impl OutboxReceiver {
    /// Takes a line off the count as it leaves the channel.
    fn taken(&self, item: Outgoing) -> Outgoing {
        if let Some(bytes) = weight(&item) {
            self.count.release(bytes);
        }
        item
    }

    /// The handle with which the writer thread waits for lines without
    /// taking them: it takes them once it holds the pen (`writer.rs`).
    pub fn waiter(&self) -> OutboxWaiter {
        OutboxWaiter(self.rx.waiter())
    }

    /// The next item if one is waiting.
    pub fn try_recv(&self) -> Result<Outgoing, TryRecvError> {
        self.rx.try_recv().map(|item| self.taken(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line of `n` bytes.
    fn line(n: usize) -> Outgoing {
        Outgoing::Owned("x".repeat(n))
    }

    /// The line bound works like a bounded channel's: `Full` at capacity,
    /// room again once the writer takes a line.
    #[test]
    fn full_at_capacity() {
        let (tx, rx) = outbox(2, 1000);
        assert!(tx.try_send(line(1)).is_ok());
        assert!(tx.try_send(line(1)).is_ok());
        assert!(matches!(tx.try_send(line(1)), Err(TrySendError::Full(_))));
        rx.try_recv().expect("a line");
        assert!(tx.try_send(line(1)).is_ok());
        assert_eq!(tx.load(), (2, 2));
    }

    /// The byte bound is reached before the line bound with long lines,
    /// and the writer gives the bytes back as it takes them.
    #[test]
    fn full_in_bytes() {
        let (tx, rx) = outbox(100, 250);
        assert!(tx.try_send(line(100)).is_ok());
        assert!(tx.try_send(line(100)).is_ok());
        assert!(matches!(tx.try_send(line(51)), Err(TrySendError::Full(_))));
        assert!(tx.try_send(line(50)).is_ok(), "exactly at the bound fits");
        assert_eq!(tx.load(), (3, 250));
        rx.try_recv().expect("a line");
        assert_eq!(tx.load(), (2, 150));
        assert!(tx.try_send(line(100)).is_ok());
    }

    /// The client's own replies are counted but never refused; once they
    /// are there, others' lines are.
    #[test]
    fn own_replies_are_counted_not_refused() {
        let (tx, rx) = outbox(4, 1000);
        for _ in 0..6 {
            tx.push(line(10)).expect("never refused");
        }
        assert_eq!(tx.load(), (6, 60));
        assert!(!tx.below_low_water());
        assert!(matches!(tx.try_send(line(1)), Err(TrySendError::Full(_))));
        for _ in 0..4 {
            rx.try_recv().expect("a line");
        }
        assert!(tx.below_low_water(), "2 of 4 lines is the low water mark");
        assert_eq!(tx.piece(), (1, 250));
    }

    /// A broadcast owes nothing to an awake writer until more than half of
    /// either bound is waiting; then it owes help.
    #[test]
    fn past_half_a_broadcast_owes_help() {
        let owed = |tx: &Outbox, n| match tx.send_quietly(line(n)) {
            Ok(None) => "nothing",
            Ok(Some(Owed::Help)) => "help",
            Ok(Some(Owed::Wake(_))) => "wake",
            Err(_) => "refused",
        };
        let (tx, _rx) = outbox(4, 1000);
        let said: Vec<_> = (0..5).map(|_| owed(&tx, 1)).collect();
        assert_eq!(said, ["nothing", "nothing", "help", "help", "refused"]);
        let (tx, _rx) = outbox(100, 100);
        assert_eq!(owed(&tx, 50), "nothing");
        assert_eq!(owed(&tx, 1), "help", "51 of 100 bytes");
    }

    /// Wake-ups and markers are not counted, and fit in a full outbox.
    #[test]
    fn wakes_and_marks_are_free() {
        let (tx, _rx) = outbox(1, 100);
        tx.try_send(line(100)).expect("room");
        tx.wake();
        let _marker = tx.mark();
        assert_eq!(tx.load(), (1, 100));
    }

    /// A marker is signalled when the writer takes it, after the lines
    /// before it; a marker the writer never takes (it went away before or
    /// after the marker was queued) says so at once instead of leaving its
    /// waiter to a timeout.
    #[test]
    fn a_marker_is_signalled_when_taken() {
        let (tx, rx) = outbox(2, 1000);
        tx.try_send(line(1)).expect("room");
        let marker = tx.mark();
        assert!(marker.try_recv().is_err(), "not taken yet");
        assert!(matches!(rx.try_recv(), Ok(Outgoing::Owned(_))));
        match rx.try_recv() {
            Ok(Outgoing::Mark(taken)) => taken.send(()).expect("waiter alive"),
            other => panic!("expected the marker, got {other:?}"),
        }
        assert_eq!(marker.recv(), Ok(()));
        // A marker still queued when the writer goes away: its queue is
        // dropped, and the waiter hears so at once.
        let waiting = tx.mark();
        drop(rx);
        assert!(waiting.recv().is_err(), "the writer went away");
        assert!(tx.mark().recv().is_err(), "the writer is gone");
    }

    /// A writer that has gone is `Disconnected`, not `Full`, and a line it
    /// refused is not left in the count.
    #[test]
    fn disconnected_when_the_writer_is_gone() {
        let (tx, rx) = outbox(2, 1000);
        drop(rx);
        assert!(matches!(
            tx.try_send(line(1)),
            Err(TrySendError::Disconnected(_))
        ));
        assert_eq!(tx.load(), (0, 0));
    }
}
