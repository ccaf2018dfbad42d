//! How many connections may be at each early stage at once: in their TLS
//! handshake (`--max-handshakes`), and past it but not logged in
//! (`--max-unauthenticated`).
//!
//! Both stages cost the server before anyone has proved who they are: a
//! handshake holds a thread and costs a key exchange and a signature; a
//! connection that has not logged in holds a reader and a writer. Without a
//! bound, peers that open sockets and never finish (or never log in) take
//! the places a class needs. The connection limit (`--max-connections`)
//! alone does not help: those peers would simply fill it.
//!
//! The two limits act differently, because the server knows different
//! things at each stage:
//!
//! - **Handshakes** are limited *before* `accept`. When all places are
//!   taken, the accept loop does not call `accept` at all, so newcomers wait
//!   in the kernel's listen queue, which costs no thread and none of our
//!   memory, and is served in order as places free up. A place is given
//!   back when the handshake ends, however it ends (done, failed, timed
//!   out, cut short by shutdown): the [`HandshakePermit`] is dropped.
//! - **Connections not logged in** are counted once the handshake is done,
//!   because only then can the server tell the client why it is refused
//!   (`BYE TOO_MANY_CONNECTIONS`). A place is given back at the successful
//!   `LOGIN` or when the connection ends, whichever comes first, and only
//!   once: the places are a set of connection numbers, and taking a number
//!   out twice is a no-op. The [`NotLoggedIn`] guard takes it out when the
//!   connection ends on any path, a panic included.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};

use super::sync;

/// The places for TLS handshakes in progress.
pub(crate) struct HandshakeGate {
    /// Handshakes running now (places taken).
    running: Mutex<usize>,
    /// Signalled when a place is given back, and by [`HandshakeGate::wake_all`].
    freed: Condvar,
    /// How many may run at once.
    max: usize,
}

/// One handshake's place; dropping it gives the place back.
pub(crate) struct HandshakePermit {
    /// The gate the place belongs to.
    gate: Arc<HandshakeGate>,
}

impl HandshakeGate {
    /// A gate with `max` places (at least one).
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(HandshakeGate {
            running: Mutex::new(0),
            freed: Condvar::new(),
            max: max.max(1),
        })
    }

    /// Waits until a place is free and takes it; `None` if `stop` became
    /// true first (the server is shutting down). Whoever makes `stop` true
    /// must then call [`HandshakeGate::wake_all`], or the wait goes on.
    pub(crate) fn enter(self: &Arc<Self>, stop: impl Fn() -> bool) -> Option<HandshakePermit> {
        let running = sync::lock(&self.running);
        let mut running = self
            .freed
            .wait_while(running, |n| *n >= self.max && !stop())
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if stop() {
            return None;
        }
        *running += 1;
        Some(HandshakePermit { gate: self.clone() })
    }

    /// Wakes whoever waits in [`HandshakeGate::enter`], to look at its
    /// `stop` condition again. The lock is taken first, so a waiter that
    /// has just found `stop` false cannot miss this wake-up.
    pub(crate) fn wake_all(&self) {
        let _running = sync::lock(&self.running);
        self.freed.notify_all();
    }

    /// Handshakes running now.
    #[cfg(test)]
    fn running(&self) -> usize {
        *sync::lock(&self.running)
    }
}

impl Drop for HandshakePermit {
    fn drop(&mut self) {
        *sync::lock(&self.gate.running) -= 1;
        // Only the accept loop waits here: one waiter.
        self.gate.freed.notify_one();
    }
}

/// The connections whose handshake is done and that have not logged in,
/// by connection number.
pub(crate) struct Unauthenticated {
    /// Their numbers. A short lock around a set update.
    ids: Mutex<HashSet<u64>>,
    /// How many there may be at once.
    max: usize,
}

/// Counts one connection as not logged in until it is dropped (when the
/// connection ends) or until [`Unauthenticated::remove`] (at its `LOGIN`),
/// whichever comes first.
pub(crate) struct NotLoggedIn {
    /// The set this connection is in.
    set: Arc<Unauthenticated>,
    /// The connection's number.
    id: u64,
}

impl Unauthenticated {
    /// An empty set that takes at most `max` connections.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Unauthenticated {
            ids: Mutex::new(HashSet::new()),
            max,
        })
    }

    /// Counts connection `id` in, if fewer than the limit are not logged
    /// in; `None` means the server has enough of them already.
    pub(crate) fn admit(self: &Arc<Self>, id: u64) -> Option<NotLoggedIn> {
        let mut ids = sync::lock(&self.ids);
        if ids.len() >= self.max {
            return None;
        }
        ids.insert(id);
        Some(NotLoggedIn {
            set: self.clone(),
            id,
        })
    }

    /// Counts connection `id` out: it has logged in, or it has ended. Only
    /// the first call for a number has an effect, so a `LOGIN` that
    /// succeeds just as its connection ends gives back one place, not two.
    pub(crate) fn remove(&self, id: u64) {
        sync::lock(&self.ids).remove(&id);
    }

    /// How many connections are counted now.
    #[cfg(test)]
    fn len(&self) -> usize {
        sync::lock(&self.ids).len()
    }
}

impl Drop for NotLoggedIn {
    fn drop(&mut self) {
        self.set.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    /// With every place taken, `enter` waits until a permit is dropped.
    #[test]
    fn a_full_gate_opens_when_a_handshake_ends() {
        let gate = HandshakeGate::new(2);
        let first = gate.enter(|| false).expect("a place");
        let _second = gate.enter(|| false).expect("a place");
        assert_eq!(gate.running(), 2);
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let gate = gate.clone();
            thread::spawn(move || {
                let permit = gate.enter(|| false);
                tx.send(permit.is_some()).expect("send");
            })
        };
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "entered a full gate"
        );
        drop(first);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
        waiter.join().expect("waiter");
        assert_eq!(gate.running(), 1, "the waiter's permit was dropped");
    }

    /// A waiter on a full gate gives up when its stop condition turns true
    /// and it is woken.
    #[test]
    fn a_stop_wakes_a_waiter_on_a_full_gate() {
        let gate = HandshakeGate::new(1);
        let _held = gate.enter(|| false).expect("a place");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        {
            let (gate, stop) = (gate.clone(), stop.clone());
            thread::spawn(move || {
                let permit = gate.enter(|| stop.load(Ordering::SeqCst));
                tx.send(permit.is_some()).expect("send");
            });
        }
        stop.store(true, Ordering::SeqCst);
        gate.wake_all();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(false));
    }

    /// A connection that logs in and then ends gives back one place, not
    /// two; one that ends without logging in gives back its own.
    #[test]
    fn a_place_is_given_back_once() {
        let set = Unauthenticated::new(2);
        let a = set.admit(1).expect("room for 1");
        let b = set.admit(2).expect("room for 2");
        assert!(set.admit(3).is_none(), "a third over the limit");
        set.remove(1); // connection 1 logs in
        let c = set.admit(3).expect("room again");
        drop(a); // connection 1 ends: no second place
        assert_eq!(set.len(), 2);
        assert!(set.admit(4).is_none());
        drop(b);
        drop(c);
        assert_eq!(set.len(), 0);
    }
}
