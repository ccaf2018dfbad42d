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

/// What the clones share.
#[derive(Debug, Default)]
struct Inner {
    /// Set once; never cleared.
    triggered: AtomicBool,
    /// The listener to wake, once the server knows it.
    wake: Mutex<Option<SocketAddr>>,
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
        let addr = *super::sync::lock(&self.inner.wake);
        if let Some(addr) = addr {
            wake(addr);
        }
    }

    /// Has shutdown been asked for?
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
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
