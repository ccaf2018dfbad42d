//! A queue whose one consumer sleeps without spinning, and is woken by at
//! most one system call: the doorbell.
//!
//! Every client's writer thread, and the database thread, spend most of
//! their life waiting for work. How they wait decides what an idle server
//! costs, and what each delivery costs at classroom rates, where nearly
//! every line finds its writer asleep.
//!
//! # Why not the channel's own `recv`
//!
//! A crossbeam channel's blocking `recv` does not go to sleep at once: it
//! first spins, then calls `sched_yield` a number of times, and only then
//! parks the thread. That is the right trade for a few threads on many
//! cores, where the next item is likely to arrive within microseconds. It
//! is the wrong one for hundreds of writer threads on two cores, each woken
//! for nearly every line: the spinning and yielding was most of the
//! server's work (see "Where the time goes" in docs/BENCHMARKS.md).
//!
//! So the items still travel in a crossbeam channel, which is a good
//! lock-free queue, but the consumer only ever *tries* to take from it
//! (`try_recv`, which never waits), and sleeps on its own terms:
//!
//! ```text
//!  consumer                                  producer
//!  ────────                                  ────────
//!  1. try to take an item: got one? done     a. push the item
//!  2. asleep = true                          b. asleep? (swap it to false)
//!  3. try again: got one? asleep = false,    c. if it was: unpark the consumer
//!     done
//!  4. park (sleep until unparked)
//!  5. asleep = false, go to 1
//! ```
//!
//! # Why no wake-up is ever lost
//!
//! The danger is the classic one: the consumer finds the queue empty (1),
//! the producer pushes and sees nobody asleep (a, b), and the consumer then
//! goes to sleep with an item waiting, perhaps forever. Two things rule it
//! out:
//!
//! * **The second look (3).** The consumer announces that it will sleep
//!   (2) *before* it looks at the queue a last time (3), and the producer
//!   pushes (a) *before* it looks at the announcement (b). Each side writes
//!   and then reads what the other writes, with a sequentially consistent
//!   fence between the two, so at least one of them sees the other: either
//!   the consumer's second look finds the item, or the producer sees
//!   `asleep` and rings. (Without the fences, the processor may let each
//!   read pass its own earlier write, and both would miss.)
//! * **The park token.** The producer may ring (c) after the consumer's
//!   second look but *before* it has actually parked (4). `Thread::unpark`
//!   on a thread that is not parked is remembered, and its next `park`
//!   returns at once.
//!
//! The swap in (b) makes the producer that finds `asleep` the only one to
//! ring: the other producers see `false` and pay nothing, not even the
//! system call, until the consumer sleeps again. A spurious wake-up (which
//! `park` allows) only costs one more turn of the loop.
//!
//! # Dozing
//!
//! The database thread gathers requests that nobody waits for (history) for
//! a few milliseconds before it commits them. While it does, it *dozes*
//! ([`Receiver::doze_until`]): a request somebody waits for rings it as
//! usual, but one sent with [`Sender::send_lazily`] does not, because the
//! doze's end will take it anyway. A classroom's messages then cost the
//! database thread one wake-up per batch, not one per message.
//!
//! # Ringing later
//!
//! A broadcast queues a line for every member of a room while holding the
//! room's lock, and a wake-up is a system call. Ringing under the lock
//! would make every other sender in the room wait for those calls.
//! [`Sender::send_quietly`] therefore hands the duty to ring back to the
//! caller as a [`Wake`], which it rings once it has released its locks.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Instant;

use crossbeam_channel::{RecvTimeoutError, SendError, TryRecvError, TrySendError};

/// The consumer's side of the bell: whether it sleeps, and who it is.
#[derive(Debug, Default)]
struct Bell {
    /// True while the consumer is (about to be) parked and nobody has
    /// claimed the duty to wake it.
    asleep: AtomicBool,
    /// The same for a light sleep ([`Receiver::doze_until`]), from which
    /// only an urgent send wakes the consumer, not [`Sender::send_lazily`].
    dozing: AtomicBool,
    /// The consumer thread: the first thread that waits.
    sleeper: OnceLock<Thread>,
}

impl Bell {
    /// After an item was pushed: is the consumer asleep? If so, the caller
    /// (and no other producer) must wake it.
    fn claim(&self) -> bool {
        // Orders the push before the read of `asleep` (see the module's doc).
        fence(Ordering::SeqCst);
        self.asleep.load(Ordering::Relaxed) && self.asleep.swap(false, Ordering::Relaxed)
    }

    /// Wakes the consumer (it may already be awake: that is harmless).
    fn wake(&self) {
        if let Some(sleeper) = self.sleeper.get() {
            sleeper.unpark();
        }
    }

    /// Rings if the consumer is asleep or dozing.
    fn ring(&self) {
        // `claim` has ordered the push before these reads.
        if self.claim()
            || (self.dozing.load(Ordering::Relaxed) && self.dozing.swap(false, Ordering::Relaxed))
        {
            self.wake();
        }
    }

    /// Rings if the consumer is asleep, but lets it doze.
    fn ring_lazily(&self) {
        if self.claim() {
            self.wake();
        }
    }

    /// The consumer's light sleep (see [`Receiver::doze_until`]).
    fn doze(&self, deadline: Instant, mut look: impl FnMut() -> bool) {
        let me = self.sleeper.get_or_init(thread::current);
        debug_assert_eq!(me.id(), thread::current().id(), "one consumer only");
        loop {
            // Announce, then look: the same argument as for `wait`, with
            // urgent senders only.
            self.dozing.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let now = Instant::now();
            if look() || now >= deadline {
                self.dozing.store(false, Ordering::Relaxed);
                return;
            }
            thread::park_timeout(deadline - now);
            self.dozing.store(false, Ordering::Relaxed);
        }
    }

    /// The consumer's wait: returns the first `Some` of `take`, or `None`
    /// once `deadline` has passed.
    fn wait<T>(&self, mut take: impl FnMut() -> Option<T>, deadline: Option<Instant>) -> Option<T> {
        let me = self.sleeper.get_or_init(thread::current);
        debug_assert_eq!(me.id(), thread::current().id(), "one consumer only");
        loop {
            if let Some(item) = take() {
                return Some(item);
            }
            self.asleep.store(true, Ordering::Relaxed);
            // Orders the announcement before the second look.
            fence(Ordering::SeqCst);
            if let Some(item) = take() {
                self.asleep.store(false, Ordering::Relaxed);
                return Some(item);
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        self.asleep.store(false, Ordering::Relaxed);
                        return None;
                    }
                    thread::park_timeout(deadline - now);
                }
            }
            self.asleep.store(false, Ordering::Relaxed);
        }
    }
}

/// Rings the bell when dropped. The last field of a [`Sender`], so that it
/// is dropped after the channel's sender: a consumer woken by the last
/// sender going away then sees the channel disconnected.
#[derive(Debug)]
struct RingOnDrop(Arc<Bell>);

impl Drop for RingOnDrop {
    fn drop(&mut self) {
        self.0.ring();
    }
}

/// The producing side; cloned for every producer.
pub struct Sender<T> {
    /// The queue.
    tx: crossbeam_channel::Sender<T>,
    /// The consumer's bell; dropped after `tx` (fields drop in order).
    bell: RingOnDrop,
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("queued", &self.tx.len())
            .finish()
    }
}

impl<T> std::fmt::Debug for Waiter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("queued", &self.rx.len())
            .finish()
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("queued", &self.rx.len())
            .finish()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            tx: self.tx.clone(),
            bell: RingOnDrop(self.bell.0.clone()),
        }
    }
}

/// The duty to wake a consumer that was asleep when an item was queued for
/// it: ring it once no lock is held any more. Dropping it rings too, so it
/// cannot be forgotten.
#[derive(Debug)]
#[must_use = "a consumer that was asleep stays asleep until this is rung"]
pub struct Wake(Option<Arc<Bell>>);

impl Wake {
    /// Wakes the consumer.
    pub fn ring(mut self) {
        if let Some(bell) = self.0.take() {
            bell.wake();
        }
    }

    /// Takes the bell out without ringing it.
    fn defuse(mut self) -> Arc<Bell> {
        self.0.take().expect("a wake-up holds its bell until rung")
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        if let Some(bell) = self.0.take() {
            bell.wake();
        }
    }
}

impl<T> Sender<T> {
    /// Queues `item` and wakes the consumer if it sleeps. Blocks only on a
    /// bounded queue that is full.
    ///
    /// # Errors
    ///
    /// The item back, when the consumer has gone.
    pub fn send(&self, item: T) -> Result<(), SendError<T>> {
        self.push(item)?;
        self.bell.0.ring();
        Ok(())
    }

    /// Queues `item` and wakes the consumer only if it is fully asleep,
    /// not if it dozes ([`Receiver::doze_until`]): for an item that can
    /// wait until the doze ends. Blocks only on a bounded queue that is
    /// full.
    ///
    /// # Errors
    ///
    /// The item back, when the consumer has gone.
    pub fn send_lazily(&self, item: T) -> Result<(), SendError<T>> {
        self.push(item)?;
        self.bell.0.ring_lazily();
        Ok(())
    }

    /// Queues `item`, waiting while a bounded queue is full.
    ///
    /// The wait is a function of its own, and never inlined: the channel's
    /// blocking `send` needs several hundred bytes of stack, and every
    /// request to the database (from a connection's reader thread, whose
    /// stack pages stay with it for its whole life) would pay for them,
    /// although the queue is nearly never full.
    fn push(&self, item: T) -> Result<(), SendError<T>> {
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item)) => self.push_when_room(item),
            Err(TrySendError::Disconnected(item)) => Err(SendError(item)),
        }
    }

    /// [`Sender::push`] when the queue was full: waits for room.
    #[cold]
    #[inline(never)]
    fn push_when_room(&self, item: T) -> Result<(), SendError<T>> {
        self.tx.send(item)
    }

    /// Queues `item` without ever blocking, and wakes the consumer if it
    /// sleeps.
    ///
    /// # Errors
    ///
    /// `Full` on a bounded queue that is full, `Disconnected` when the
    /// consumer has gone.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        self.tx.try_send(item)?;
        self.bell.0.ring();
        Ok(())
    }

    /// Like [`Sender::try_send`], but leaves waking the consumer to the
    /// caller: `Some(Wake)` when it was asleep, to be rung once the caller
    /// holds no lock.
    ///
    /// # Errors
    ///
    /// As [`Sender::try_send`].
    pub fn send_quietly(&self, item: T) -> Result<Option<Wake>, TrySendError<T>> {
        self.tx.try_send(item)?;
        let bell = &self.bell.0;
        Ok(bell.claim().then(|| Wake(Some(bell.clone()))))
    }
}

impl<T> Sender<T> {
    /// Hands back a duty to wake that the caller did not need after all (it
    /// did the consumer's work itself): the consumer counts as asleep
    /// again, and is woken at once if an item arrived meanwhile. This is
    /// the consumer's own "announce, then look again" (steps 2 and 3 of the
    /// module's doc), done on its behalf, so the same argument holds.
    pub fn rearm(&self, wake: Wake) {
        let bell = wake.defuse();
        bell.asleep.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !self.tx.is_empty() {
            bell.ring();
        }
    }
}

/// The consuming side: one thread waits on it (the first that does).
pub struct Receiver<T> {
    /// The queue.
    rx: crossbeam_channel::Receiver<T>,
    /// The bell its producers ring.
    bell: Arc<Bell>,
}

impl<T> Receiver<T> {
    /// Waits for the next item; `Err` once every sender is gone and the
    /// queue is empty.
    ///
    /// # Errors
    ///
    /// When every sender is gone and nothing is left.
    pub fn recv(&self) -> Result<T, crossbeam_channel::RecvError> {
        self.recv_until(None)
            .map_err(|_| crossbeam_channel::RecvError)
    }

    /// Waits for the next item until `deadline`.
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline, `Disconnected` when every sender is gone
    /// and nothing is left.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    /// The wait behind [`Receiver::recv`] and [`Receiver::recv_deadline`].
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let take = || match self.rx.try_recv() {
            Ok(item) => Some(Ok(item)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(RecvTimeoutError::Disconnected)),
        };
        self.bell
            .wait(take, deadline)
            .unwrap_or(Err(RecvTimeoutError::Timeout))
    }

    /// Dozes until `deadline`: sleeps, but is woken early by an urgent send
    /// ([`Sender::send`], [`Sender::try_send`]), not by
    /// [`Sender::send_lazily`]. `look` takes what is queued and says
    /// whether to stop dozing; it is called after the doze is announced
    /// (so that no urgent item is missed) and after every wake-up.
    pub fn doze_until(&self, deadline: Instant, look: impl FnMut() -> bool) {
        self.bell.doze(deadline, look);
    }

    /// A handle that waits for items without taking them, for a consumer
    /// that takes its items under a lock of its own (`writer.rs`). The
    /// thread that waits on it is the consumer that producers wake.
    pub fn waiter(&self) -> Waiter<T> {
        Waiter {
            rx: self.rx.clone(),
            bell: self.bell.clone(),
        }
    }

    /// The next item if one is waiting; never blocks.
    ///
    /// # Errors
    ///
    /// `Empty` or `Disconnected`.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.rx.try_recv()
    }
}

/// Waits for a queue's items without taking them (see
/// [`Receiver::waiter`]). It keeps the queue connected while it lives.
pub struct Waiter<T> {
    /// The queue (a second receiving end that never takes).
    rx: crossbeam_channel::Receiver<T>,
    /// The bell its producers ring.
    bell: Arc<Bell>,
}

impl<T> Waiter<T> {
    /// Waits until an item is queued or `done()` holds (`true`), or until
    /// `deadline` passes (`false`). Whoever makes `done()` true must then
    /// queue something or ring, like any producer, so that a sleeping
    /// consumer looks again. Never returns for a queue whose senders are
    /// all gone and that stays empty, unless there is a deadline.
    pub fn wait(&self, deadline: Option<Instant>, done: impl Fn() -> bool) -> bool {
        self.bell
            .wait(|| (!self.rx.is_empty() || done()).then_some(()), deadline)
            .is_some()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

/// A queue without a bound (memory grows with what waits).
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    wrap(crossbeam_channel::unbounded())
}

/// A queue of at most `capacity` items; [`Sender::send`] waits for room.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    wrap(crossbeam_channel::bounded(capacity))
}

/// Puts a bell on a channel.
fn wrap<T>(
    (tx, rx): (crossbeam_channel::Sender<T>, crossbeam_channel::Receiver<T>),
) -> (Sender<T>, Receiver<T>) {
    let bell = Arc::new(Bell::default());
    (
        Sender {
            tx,
            bell: RingOnDrop(bell.clone()),
        },
        Receiver { rx, bell },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Items sent while the consumer sleeps all arrive, in order, across
    /// many sleep/wake cycles and several producers.
    #[test]
    fn nothing_is_lost_between_sleep_and_wake() {
        let (tx, rx) = unbounded::<(usize, u64)>();
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..20_000u64 {
                        tx.send((p, i)).expect("consumer alive");
                        if i % 1000 == 0 {
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u64; 4];
        // Ends when every producer has gone and the queue is empty; a lost
        // wake-up would leave the consumer asleep until the deadline.
        loop {
            match rx.recv_deadline(Instant::now() + Duration::from_secs(10)) {
                Ok((p, i)) => {
                    assert_eq!(i, next[p], "producer {p} out of order");
                    next[p] += 1;
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("a wake-up was lost"),
            }
        }
        for producer in producers {
            producer.join().expect("producer");
        }
        assert_eq!(next, [20_000; 4]);
    }

    /// A deferred wake-up wakes the consumer when rung, not before, and
    /// only the producer that found it asleep is handed the duty.
    #[test]
    fn a_quiet_send_hands_over_the_wake_up() {
        let (tx, rx) = unbounded::<u32>();
        let (parked_tx, parked) = std::sync::mpsc::channel();
        let consumer = thread::spawn(move || {
            parked_tx.send(()).expect("test alive");
            rx.recv()
        });
        parked.recv().expect("consumer started");
        // Wait until the consumer really sleeps.
        let bell = tx.bell.0.clone();
        let start = Instant::now();
        while !bell.asleep.load(Ordering::Relaxed) {
            assert!(start.elapsed() < Duration::from_secs(10), "never slept");
            thread::yield_now();
        }
        let wake = tx.send_quietly(7).expect("sent").expect("it was asleep");
        assert!(
            tx.send_quietly(8).expect("sent").is_none(),
            "the duty to wake was already claimed"
        );
        wake.ring();
        assert_eq!(consumer.join().expect("consumer"), Ok(7));
    }

    /// A waiter also wakes for its own condition when a producer rings,
    /// though the item that was queued with it was taken by someone else.
    #[test]
    fn a_waiter_wakes_for_its_condition() {
        use std::sync::atomic::AtomicBool;
        let (tx, rx) = unbounded::<u32>();
        let waiter = rx.waiter();
        let done = Arc::new(AtomicBool::new(false));
        let seen = done.clone();
        let (started_tx, started) = std::sync::mpsc::channel();
        let consumer = thread::spawn(move || {
            started_tx.send(()).expect("test alive");
            // A deadline, so that a lost wake-up fails instead of hanging.
            let deadline = Instant::now() + Duration::from_secs(10);
            waiter.wait(Some(deadline), || seen.load(Ordering::SeqCst))
        });
        started.recv().expect("consumer started");
        let bell = tx.bell.0.clone();
        let start = Instant::now();
        while !bell.asleep.load(Ordering::Relaxed) {
            assert!(start.elapsed() < Duration::from_secs(10), "never slept");
            thread::yield_now();
        }
        // Set the condition, queue the wake-up, and let another take it
        // before the consumer looks: it must still wake and see `done`.
        done.store(true, Ordering::SeqCst);
        let wake = tx.send_quietly(1).expect("sent").expect("it was asleep");
        assert_eq!(rx.try_recv(), Ok(1), "taken by someone else");
        wake.ring();
        assert!(consumer.join().expect("consumer"), "woke for its condition");
    }

    /// A dozing consumer sleeps through lazy sends and wakes for an urgent
    /// one; lazy items sent while it dozes are taken by its next look.
    #[test]
    fn a_doze_is_broken_by_urgent_sends_only() {
        let (tx, rx) = unbounded::<&str>();
        let (report_tx, report) = std::sync::mpsc::channel();
        let consumer = thread::spawn(move || {
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            rx.doze_until(deadline, || {
                while let Ok(item) = rx.try_recv() {
                    got.push(item);
                }
                got.contains(&"urgent")
            });
            report_tx.send(()).expect("test alive");
            (got, Instant::now() < deadline)
        });
        let bell = tx.bell.0.clone();
        let start = Instant::now();
        while !bell.dozing.load(Ordering::Relaxed) {
            assert!(start.elapsed() < Duration::from_secs(10), "never dozed");
            thread::yield_now();
        }
        tx.send_lazily("lazy").expect("sent");
        assert!(
            bell.dozing.load(Ordering::Relaxed),
            "a lazy send lets it doze"
        );
        tx.send("urgent").expect("sent");
        report.recv().expect("the consumer woke");
        let (got, early) = consumer.join().expect("consumer");
        assert_eq!(got, ["lazy", "urgent"]);
        assert!(early, "woken by the urgent send, not by the deadline");
    }

    /// The consumer wakes at its deadline with nothing, and sees the last
    /// sender go away.
    #[test]
    fn deadline_and_disconnection() {
        let (tx, rx) = bounded::<u32>(1);
        let (timed_out_tx, timed_out) = std::sync::mpsc::channel();
        let consumer = thread::spawn(move || {
            let started = Instant::now();
            let first = rx.recv_deadline(started + Duration::from_millis(50));
            timed_out_tx
                .send((first, started.elapsed()))
                .expect("test alive");
            rx.recv()
        });
        let (first, waited) = timed_out.recv().expect("consumer reports");
        assert_eq!(first, Err(RecvTimeoutError::Timeout));
        assert!(
            waited >= Duration::from_millis(50),
            "woke early: {waited:?}"
        );
        drop(tx);
        assert!(consumer.join().expect("consumer").is_err(), "disconnected");
    }
}
