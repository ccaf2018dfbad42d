//! A one-shot reply channel: one value, sent once, from one thread to
//! another.
//!
//! A connection thread that asks the database thread or a hashing thread
//! for something sends its request with one of these and waits on it. It
//! is the textbook hand-over between threads: one slot behind a mutex, and
//! a condition variable to wait on until the slot is filled.
//!
//! ```text
//!   asking thread                         answering thread
//!   ─────────────                         ────────────────
//!   (tx, rx) = channel()
//!   send request + tx ──────────────────▶ work…
//!   rx.recv(): lock, slot empty? wait     tx.send(answer): lock, fill the
//!              ◀───────── notify ──────── slot, unlock, notify
//!   take the answer
//! ```
//!
//! If the answering side drops its `Sender` without sending (its thread
//! ended), the waiter is woken and told so, instead of waiting for ever.
//!
//! # Why not `crossbeam_channel::bounded(1)`
//!
//! It works, but one costs 656 bytes: a general channel, with room for many
//! senders and receivers, its fields padded to cache lines. These blocks
//! are freed on the connection thread that asked, and glibc keeps up to
//! seven freed blocks of each size in a per-thread cache for as long as the
//! thread lives: about 4.5 KiB for every idle client that has logged in and
//! joined a room. This one is 72 bytes (`docs/BENCHMARKS.md`, "Memory per
//! connection").

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Makes a channel for one value.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot::Empty),
        filled: Condvar::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The sending half: [`Sender::send`] uses it up.
pub struct Sender<T> {
    /// The slot, shared with the receiver.
    shared: Arc<Shared<T>>,
}

/// The receiving half.
pub struct Receiver<T> {
    /// The slot, shared with the sender.
    shared: Arc<Shared<T>>,
}

/// The sender went away without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Why [`Receiver::recv_timeout`] returned without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// Nothing was sent in time.
    Timeout,
    /// The sender went away without sending.
    Closed,
}

/// Why [`Receiver::try_recv`] returned without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing has been sent yet.
    Empty,
    /// The sender went away without sending.
    Closed,
}

/// What both halves share.
struct Shared<T> {
    /// The value, once sent.
    slot: Mutex<Slot<T>>,
    /// Signalled when the slot changes.
    filled: Condvar,
}

/// The state of the one slot.
enum Slot<T> {
    /// Nothing yet.
    Empty,
    /// The value, waiting to be taken.
    Full(T),
    /// The sender went away without sending, or the value was taken.
    Closed,
}

// By hand rather than derived: a derived `Debug` would require `T: Debug`,
// and the channel's halves are printed as part of requests whose answers
// need not be printable.
impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot::Sender")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot::Receiver")
    }
}

impl<T> Shared<T> {
    /// Locks the slot. Nothing panics while holding this lock, but if
    /// something ever did, the slot is still consistent: go on.
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Sender<T> {
    /// Sends the value and wakes the receiver. Never blocks for long (a
    /// lock held only for memory steps).
    ///
    /// # Errors
    ///
    /// Gives the value back if the receiver is gone (nobody is left to
    /// tell).
    pub fn send(self, value: T) -> Result<(), T> {
        // The receiver's `Arc` is the only other one.
        if Arc::strong_count(&self.shared) == 1 {
            return Err(value);
        }
        *self.shared.lock() = Slot::Full(value);
        self.shared.filled.notify_one();
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    /// A sender dropped without sending closes the slot, so that a waiting
    /// receiver wakes up instead of waiting for ever.
    fn drop(&mut self) {
        let mut slot = self.shared.lock();
        if matches!(*slot, Slot::Empty) {
            *slot = Slot::Closed;
            drop(slot);
            self.shared.filled.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the value.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the sender went away without sending.
    pub fn recv(&self) -> Result<T, Closed> {
        let mut slot = self.shared.lock();
        loop {
            match std::mem::replace(&mut *slot, Slot::Closed) {
                Slot::Full(value) => return Ok(value),
                Slot::Closed => return Err(Closed),
                Slot::Empty => {
                    *slot = Slot::Empty;
                    slot = self
                        .shared
                        .filled
                        .wait(slot)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }

    /// Waits for the value at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if nothing came in time,
    /// [`RecvTimeoutError::Closed`] if the sender went away without sending.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut slot = self.shared.lock();
        loop {
            match std::mem::replace(&mut *slot, Slot::Closed) {
                Slot::Full(value) => return Ok(value),
                Slot::Closed => return Err(RecvTimeoutError::Closed),
                Slot::Empty => {
                    *slot = Slot::Empty;
                    let left = match deadline {
                        Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                        None => Duration::MAX,
                    };
                    if left.is_zero() {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    slot = self
                        .shared
                        .filled
                        .wait_timeout(slot, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    /// Takes the value if it is there, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing was sent yet,
    /// [`TryRecvError::Closed`] if the sender went away without sending.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut slot = self.shared.lock();
        match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Full(value) => Ok(value),
            Slot::Closed => Err(TryRecvError::Closed),
            Slot::Empty => {
                *slot = Slot::Empty;
                Err(TryRecvError::Empty)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// A value sent from another thread arrives, once.
    #[test]
    fn a_value_crosses_threads_once() {
        let (tx, rx) = channel();
        let sender = thread::spawn(move || tx.send(42).expect("receiver alive"));
        assert_eq!(rx.recv(), Ok(42));
        sender.join().expect("sender");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "taken already");
    }

    /// A receiver already waiting is woken by the send.
    #[test]
    fn a_waiting_receiver_is_woken() {
        let (tx, rx) = channel();
        let (started_tx, started_rx) = channel();
        let receiver = thread::spawn(move || {
            started_tx.send(()).expect("test alive");
            rx.recv()
        });
        started_rx.recv().expect("receiver started");
        tx.send("answer").expect("receiver alive");
        assert_eq!(receiver.join().expect("receiver"), Ok("answer"));
    }

    /// A sender dropped without sending wakes the receiver with `Closed`,
    /// also one that is already waiting.
    #[test]
    fn a_dropped_sender_closes() {
        let (tx, rx) = channel::<u8>();
        let waiter = thread::spawn(move || rx.recv());
        drop(tx);
        assert_eq!(waiter.join().expect("waiter"), Err(Closed));

        let (tx, rx) = channel::<u8>();
        drop(tx);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(60)),
            Err(RecvTimeoutError::Closed)
        );
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }

    /// Nothing sent: `try_recv` says empty and `recv_timeout` times out,
    /// and a value sent afterwards still arrives.
    #[test]
    fn empty_and_timeout() {
        let (tx, rx) = channel();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        );
        tx.send(7).expect("receiver alive");
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(7));
    }

    /// Sending to a receiver that is gone gives the value back.
    #[test]
    fn sending_to_nobody_gives_the_value_back() {
        let (tx, rx) = channel();
        drop(rx);
        assert_eq!(tx.send(String::from("lost")), Err(String::from("lost")));
    }

    /// The point of this module: one channel is one small allocation.
    #[test]
    fn one_channel_is_small() {
        assert!(std::mem::size_of::<Shared<Result<String, String>>>() <= 96);
    }
}
