//! The one shutdown signal of the server, and how it reaches a thread that
//! is blocked in `accept()`.
//!
//! `TcpListener::accept` cannot be interrupted by a flag: it sleeps in the
//! kernel until a connection arrives. So [`Shutdown::trigger`] sets the flag
//! *and then connects to the listener itself*: `accept` returns that
//! connection, the accept loop looks at the flag and stops (tiny-http does
//! the same in `Drop for Server`). The rest of the protocol (BYE to every
//! client, waiting for their threads, flushing the database) is in
//! `server::run`, in the order it happens.
//!
//! The accept loop may also be waiting for a free handshake place
//! (`--max-handshakes`) instead of sitting in `accept`. That wait is on a
//! condition variable, which a connection cannot wake: the server registers
//! a hook with [`Shutdown::on_trigger`] that wakes it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A cloneable handle: the signal handler holds one, the server another,
/// tests a third.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Shared by all clones.
    inner: Arc<Inner>,
}

/// Something to run when the signal fires.
type Hook = Arc<dyn Fn() + Send + Sync>;

/// What the clones share.
#[derive(Default)]
struct Inner {
    /// Set once; never cleared.
    triggered: AtomicBool,
    /// The listener to wake, once the server knows it.
    wake: Mutex<Option<SocketAddr>>,
    /// Run once the flag is set, before the listener is woken.
    hooks: Mutex<Vec<Hook>>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("triggered", &self.triggered)
            .field("wake", &self.wake)
            .finish_non_exhaustive()
    }
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the server to stop. Safe to call from any thread, any number of
    /// times; only the first call does anything.
    pub fn trigger(&self) {
        if self.inner.triggered.swap(true, Ordering::SeqCst) {
            return;
        }
        for hook in super::sync::lock(&self.inner.hooks).iter() {
            hook();
        }
        let addr = *super::sync::lock(&self.inner.wake);
        if let Some(addr) = addr {
            wake(addr);
        }
    }

    /// Has shutdown been asked for?
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Runs `hook` when the signal fires (at once if it has fired
    /// already). The hook runs on the thread that triggers, after
    /// [`Shutdown::is_triggered`] has become true; it must be quick and
    /// must not trigger again. It may run twice if the signal fires while
    /// it is being added.
    pub(crate) fn on_trigger(&self, hook: impl Fn() + Send + Sync + 'static) {
        let hook: Hook = Arc::new(hook);
        super::sync::lock(&self.inner.hooks).push(hook.clone());
        if self.is_triggered() {
            // The trigger may have run the hooks just before this one was
            // added: run it here, to be sure it runs.
            hook();
        }
    }

    /// Tells the signal which listener to wake. If the signal already fired,
    /// wakes it now.
    pub(crate) fn set_listener(&self, addr: SocketAddr) {
        *super::sync::lock(&self.inner.wake) = Some(addr);
        if self.is_triggered() {
            wake(addr);
        }
    }
}

/// Connects to the listener so that a blocked `accept` returns. A listener
/// bound to `0.0.0.0` or `::` is reached through loopback.
fn wake(mut addr: SocketAddr) {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        log::warn!("could not wake the accept loop at {addr}: {e}");
    }
}
