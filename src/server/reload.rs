//! The server's TLS identity while it runs: the current config, swapped
//! whole on a reload (SIGHUP), and the daily expiry check.
//!
//! # Rotating a certificate without kicking the class out
//!
//! A rustls `ServerConfig` is immutable once built. A connection takes an
//! `Arc` of the config when it starts its handshake and keeps it, so
//! "reloading the certificate" does not change anything that is running:
//!
//! ```text
//!   ServerTls ── RwLock<Arc<ServerConfig>> ──▶ config v1 ◀── conn 3, conn 4 (handshaken with v1)
//!                        │  reload(): build v2 completely, then swap the Arc
//!                        └────────────────▶ config v2 ◀── conn 5 (new handshake)
//! ```
//!
//! - `reload` builds the new config from the files *first*, with every
//!   check of `tls::load_server` (key matches, not expired, CA usable). Only
//!   if that succeeds does it take the write lock, for one pointer
//!   assignment. Bad files leave the old config in place, and the log says
//!   why.
//! - Established connections never look at the holder again: they keep the
//!   session keys of their handshake, and the old config lives as long as
//!   the last connection that holds an `Arc` of it.
//! - New connections call [`ServerTls::current`], a read lock held for one
//!   `Arc` clone. Why an `RwLock` and not a `Mutex`: thousands of
//!   handshakes read, a teacher writes a few times a year. Either would
//!   work; the `RwLock` says which side is common.
//!
//! The handle is cloneable, like `Shutdown`: the binary's signal thread
//! holds one (SIGHUP calls [`ServerTls::reload`]), the server's state holds
//! one, and tests call `reload` directly instead of sending a signal.
//!
//! # The daily expiry check
//!
//! A certificate that expires during the term breaks every student at once,
//! so a small thread (`cert-expiry`) looks at the current certificate once a
//! day and warns from 30 days before the end. It sleeps in
//! `recv_timeout(24 h)` on a channel whose sender the server drops at
//! shutdown: a disconnected channel wakes it at once, so shutdown never
//! waits a day: closing a channel is itself the signal, and no flag needs
//! polling.

use std::sync::{Arc, RwLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rustls::ServerConfig;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::tls::{self, CertInfo, Expiry, TlsFiles};

/// How often the running server checks its certificate's expiry.
pub const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// Stack of the `cert-expiry` thread: it only parses one certificate.
const EXPIRY_STACK: usize = 128 * 1024;

/// The server's current TLS config and where it comes from. Cheap to clone:
/// every clone is a handle to the same holder.
#[derive(Clone)]
pub struct ServerTls {
    /// Shared by every handle.
    inner: Arc<Inner>,
}

/// What the handles share.
struct Inner {
    /// The files to read again on a reload; `None` for a config given
    /// ready-made ([`ServerTls::fixed`]), which cannot be reloaded.
    files: Option<TlsFiles>,
    /// The config new handshakes use, and its leaf certificate.
    current: RwLock<Current>,
    /// The ALPN protocols every config of this holder offers, a reloaded
    /// one included (see [`ServerTls::offer_alpn`]). Empty: none.
    alpn: RwLock<Vec<Vec<u8>>>,
}

/// One generation of the TLS identity.
struct Current {
    /// The config handed to new connections.
    config: Arc<ServerConfig>,
    /// Its leaf certificate's subject, serial and expiry (unknown for a
    /// ready-made config).
    leaf: Option<CertInfo>,
}

impl ServerTls {
    /// Loads the certificate, key and client CA of `files`, for a server
    /// that starts now. Logs what was loaded, and a warning if the
    /// certificate expires within 30 days.
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] with one sentence for anything unusable, an expired
    /// certificate included (see [`tls::load_server`]).
    pub fn load(files: TlsFiles) -> Result<ServerTls> {
        let loaded = tls::load_server(&files, OffsetDateTime::now_utc())?;
        log_loaded("certificate loaded", &files, &loaded.leaf);
        let tls = ServerTls {
            inner: Arc::new(Inner {
                files: Some(files),
                current: RwLock::new(Current {
                    config: loaded.config,
                    leaf: Some(loaded.leaf),
                }),
                alpn: RwLock::new(Vec::new()),
            }),
        };
        tls.check_expiry(OffsetDateTime::now_utc());
        Ok(tls)
    }

    /// A holder for a config built elsewhere (tests, benchmarks). It cannot
    /// be reloaded and has no expiry check.
    pub fn fixed(config: Arc<ServerConfig>) -> ServerTls {
        ServerTls {
            inner: Arc::new(Inner {
                files: None,
                current: RwLock::new(Current { config, leaf: None }),
                alpn: RwLock::new(Vec::new()),
            }),
        }
    }

    /// The config for a handshake starting now. A read lock for one `Arc`
    /// clone; the caller keeps the clone for the whole connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.read().config.clone()
    }

    /// Makes the current config, and every config a reload builds from now
    /// on, offer `protocols` in ALPN (`--web on`: `http/1.1`, see
    /// `tls::ALPN_HTTP`; empty: offer none). Called once by the server at
    /// start, before it accepts anything.
    pub fn offer_alpn(&self, protocols: Vec<Vec<u8>>) {
        let mut alpn = self
            .inner
            .alpn
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut current = self.write();
        current.config = tls::with_alpn(current.config.clone(), &protocols);
        *alpn = protocols;
    }

    /// The current leaf certificate's subject, serial and expiry, if known.
    pub fn leaf(&self) -> Option<CertInfo> {
        self.read().leaf.clone()
    }

    /// Reads the files again and, if they are good, makes new handshakes
    /// use them. Established connections are not touched. If anything is
    /// wrong, the current certificate stays and the reason is logged (and
    /// returned).
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] for unusable files (the old config is kept), or for a
    /// holder made with [`ServerTls::fixed`].
    pub fn reload(&self) -> Result<CertInfo> {
        let Some(files) = &self.inner.files else {
            return Err(Error::Tls(
                "this server's certificate was not loaded from files; nothing to reload".into(),
            ));
        };
        // Build first, with no lock held: reading files and parsing keys
        // takes milliseconds, and handshakes keep using the old config
        // meanwhile.
        let loaded = match tls::load_server(files, OffsetDateTime::now_utc()) {
            Ok(loaded) => loaded,
            Err(e) => {
                log::error!("reload failed, still using the previous certificate: {e}");
                return Err(e);
            }
        };
        let leaf = loaded.leaf.clone();
        // The swap: one pointer under the write lock. The old config is
        // freed when the last connection using it ends.
        let alpn = self
            .inner
            .alpn
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        *self.write() = Current {
            config: tls::with_alpn(loaded.config, &alpn),
            leaf: Some(loaded.leaf),
        };
        // Said once it is true: a handshake that starts after this line is
        // read uses the new certificate.
        log_loaded("certificate reloaded", files, &leaf);
        self.check_expiry(OffsetDateTime::now_utc());
        Ok(leaf)
    }

    /// Logs a warning if the current certificate expires within 30 days of
    /// `now`, or an error if it has expired, and returns its standing.
    /// `Valid` for a ready-made config, whose certificate is unknown.
    pub fn check_expiry(&self, now: OffsetDateTime) -> Expiry {
        let Some(leaf) = self.leaf() else {
            return Expiry::Valid;
        };
        let expiry = leaf.expiry(now);
        match expiry {
            Expiry::Valid => {}
            Expiry::Soon { days } => log::warn!(
                "the certificate {} expires in {days} days ({}): renew it, then send SIGHUP \
                 to load it without a restart",
                leaf.subject,
                leaf.not_after_text()
            ),
            Expiry::Expired => log::error!(
                "the certificate {} expired on {}: clients refuse it; make a new one with \
                 `{}` (or renew it), then send SIGHUP",
                leaf.subject,
                leaf.not_after_text(),
                tls::GENERATE_COMMAND
            ),
        }
        expiry
    }

    /// Starts the `cert-expiry` thread, which calls
    /// [`check_expiry`](Self::check_expiry) every [`EXPIRY_CHECK_INTERVAL`]
    /// until the returned guard is dropped. No thread for a ready-made
    /// config.
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] when the thread cannot be started.
    pub(crate) fn watch_expiry(&self) -> Result<ExpiryWatch> {
        if self.inner.files.is_none() {
            return Ok(ExpiryWatch {
                stop: None,
                thread: None,
            });
        }
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let tls = self.clone();
        let thread = thread::Builder::new()
            .name("cert-expiry".into())
            .stack_size(EXPIRY_STACK)
            .spawn(move || expiry_loop(&tls, &stopped))
            .map_err(Error::Spawn)?;
        Ok(ExpiryWatch {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The read lock. A panic cannot leave `Current` half-written (it is
    /// replaced in one assignment), so a poisoned lock is still usable.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The write lock; see [`read`](Self::read) about poisoning.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Current> {
        self.inner
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One log line saying which certificate is in use.
fn log_loaded(what: &str, files: &TlsFiles, leaf: &CertInfo) {
    let mtls = files.client_ca.as_ref().map_or_else(String::new, |ca| {
        format!("; client certificates required, CA {}", ca.display())
    });
    log::info!(
        "{what}: {} (serial {}, valid until {}) from {} and {}{mtls}",
        leaf.subject,
        leaf.serial,
        leaf.not_after_text(),
        files.cert.display(),
        files.key.display()
    );
}

/// The `cert-expiry` thread: one check per interval until the channel is
/// disconnected (the server is stopping).
fn expiry_loop(tls: &ServerTls, stopped: &Receiver<()>) {
    loop {
        match stopped.recv_timeout(EXPIRY_CHECK_INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {
                tls.check_expiry(OffsetDateTime::now_utc());
            }
            // Nobody ever sends; a disconnect is the stop signal.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Keeps the `cert-expiry` thread running; dropping it stops the thread and
/// waits for it (which takes no time: it wakes as soon as the channel
/// closes).
pub(crate) struct ExpiryWatch {
    /// Dropped to stop the thread.
    stop: Option<Sender<()>>,
    /// The thread, joined on drop.
    thread: Option<JoinHandle<()>>,
}

impl Drop for ExpiryWatch {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the cert-expiry thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The bundled development certificate and key, as files.
    fn bundled() -> TlsFiles {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        TlsFiles::new(dir.join("cert.pem"), dir.join("key.pem"))
    }

    /// A ready-made config has nothing to reload from, and says so.
    #[test]
    fn fixed_config_cannot_be_reloaded() {
        let config = tls::server_config(&bundled().cert, &bundled().key).expect("bundled");
        let holder = ServerTls::fixed(config.clone());
        assert!(Arc::ptr_eq(&holder.current(), &config));
        let e = holder.reload().expect_err("nothing to reload");
        assert!(e.to_string().contains("nothing to reload"), "{e}");
    }

    /// A reload swaps the `Arc`: a config taken before it is untouched, and
    /// the next `current()` is a new one.
    #[test]
    fn reload_swaps_the_config_for_later_callers_only() {
        let holder = ServerTls::load(bundled()).expect("bundled");
        let before = holder.current();
        holder.reload().expect("reload");
        let after = holder.current();
        assert!(!Arc::ptr_eq(&before, &after));
        assert_eq!(holder.leaf().expect("leaf").subject, "CN=localhost");
    }

    /// Dropping the watch stops the `cert-expiry` thread at once, not after
    /// a day (the drop joins it; the test bounds that wait).
    #[test]
    fn expiry_watch_stops_when_dropped() {
        let holder = ServerTls::load(bundled()).expect("bundled");
        let watch = holder.watch_expiry().expect("spawn");
        assert!(watch.thread.is_some());
        let (done, finished) = crossbeam_channel::bounded(1);
        thread::spawn(move || {
            drop(watch);
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("the cert-expiry thread did not stop");
    }
}
