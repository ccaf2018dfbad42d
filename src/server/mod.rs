//! The chat server: the accept loop, the threads it starts, and the
//! shutdown protocol.
//!
//! # Threads
//!
//! ```text
//!              ┌──────────────┐ accept() ┌──────────────┐ spawn ┌──────────────────┐   ┌─────────────────────────┐
//!  clients ───▶│ accept loop  │──spawn──▶│ conn-N-tls   │──────▶│ conn-N (reader)  │──▶│ conn-N-writer           │──▶ client N
//!              │ (run's own   │          │ handshake,   │       │ lines, commands  │   │ outbox → TLS → socket   │
//!              │  thread)     │          │ then ends    │       └──┬────────────┬──┘   └─────────────────────────┘
//!              └──────────────┘          └──────────────┘          │            │             ▲ try_send (never blocks)
//!                                                                  │            └─ hub: rooms, users (other clients' lines)
//!                                          ┌──────────────┐        │
//!                                          │ db thread    │◀───────┤ requests + reply channel
//!                                          └──────────────┘        │
//!                                          ┌──────────────┐        │
//!                                          │ hash-0..3    │◀───────┘ argon2 requests + reply channel
//!                                          └──────────────┘
//! ```
//!
//! A browser's connection (ALPN `http/1.1`) goes from `conn-N-tls` to a
//! `conn-N-http` thread instead of the two above (`crate::web`); after a
//! WebSocket upgrade that thread is the client's reader, with a writer of
//! its own, like any client.
//!
//! The accept loop only accepts: it never does a handshake, a login or a
//! database call, so one slow client cannot delay the next connection. It
//! waits only for a free handshake place (`--max-handshakes`, see
//! `admission`), and while it waits, newcomers wait in the kernel's listen
//! queue. Each connection's threads are named (`conn-42-tls`,
//! `conn-42`, `conn-42-writer`) and have small, fixed stacks; a failed
//! spawn is logged and the socket closed (or, once the handshake is done,
//! the client told `BYE TOO_MANY_CONNECTIONS`), never a panic.

pub(crate) mod admission;
pub mod capacity;
pub mod client;
mod commands;
pub(crate) mod connection;
pub mod hub;
mod moderation;
pub mod outbox;
pub mod rate_limit;
pub mod reload;
mod remote;
mod shutdown;
mod sync;
pub mod writer;

pub use client::bye_text;
pub use reload::ServerTls;
pub use shutdown::Shutdown;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rustls::ServerConfig;

use crate::auth::Hasher;
use crate::config::Config;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::protocol::ByeReason;

use admission::{HandshakeGate, Unauthenticated};
use rate_limit::{AttemptLimit, SharedBucket};

// Thread stacks. Rust's default for spawned threads is 2 MiB; with 10,000
// clients that is gigabytes of reserved address space for code that needs
// a few dozen KiB. Too small would abort the whole process on an overflow,
// so each keeps a wide margin over the deepest path measured in a debug
// build (`docs/BENCHMARKS.md`, "Memory per connection").
//
// The handshake stack is deliberately the *smallest*: glibc keeps the
// stacks of ended threads and hands one to a new thread only if it is at
// least as large as the new thread asks for. So a handshake thread's used
// stack (the deepest of all: key exchange and signature) never becomes a
// long-lived reader's or writer's, which would then hold those pages for
// as long as its client stays connected.

/// Stack of a short-lived handshake thread (`conn-N-tls`): the TLS
/// handshake, about 28 KiB deep in a release build and 40 KiB in a debug
/// build.
pub const HANDSHAKE_STACK: usize = 192 * 1024;

/// Stack of a connection's reader thread (`conn-N`): decrypting and
/// handling lines, about 16 KiB deep. (Argon2 runs on the hashing threads.)
pub const READER_STACK: usize = 256 * 1024;

/// Stack of a writer thread (`conn-N-writer`): it only moves bytes and
/// seals records, about 8 KiB deep. As large as the reader's, to stay
/// larger than the handshake's (see above).
pub const WRITER_STACK: usize = 256 * 1024;

/// How many connections above `max_connections` may still be accepted just
/// to be told `BYE TOO_MANY_CONNECTIONS`. Past this, the TCP connection is
/// closed at once: a flood must not make us start threads without bound.
const REFUSAL_SLACK: usize = 64;

/// How long shutdown waits for connection threads to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long, at shutdown, the connections get to take their last lines and
/// their `BYE SHUTDOWN` before the ones still writing are cut at the socket
/// (a peer that stopped reading would otherwise hold its writer for the
/// whole write timeout, and the DMs queued for it would not be stored
/// before the server stops). Shorter than [`SHUTDOWN_GRACE`].
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

/// Everything the connection threads share. One `Arc<State>` per server.
pub(crate) struct State {
    /// The limits.
    pub(crate) config: Config,
    /// Rooms, users online, live connections.
    pub(crate) hub: hub::Hub,
    /// The handle to the database thread.
    pub(crate) db: Db,
    /// Password hashing: requests to the `hash-N` threads, whose answers a
    /// connection thread waits for holding no lock.
    pub(crate) hasher: Hasher,
    /// `LOGIN` attempts per user name (its key), failed or in progress.
    pub(crate) login_attempts: AttemptLimit<String>,
    /// Private-room password attempts per (user key, room key), failed or
    /// in progress.
    pub(crate) room_password_attempts: AttemptLimit<(String, String)>,
    /// `REGISTER`s, server-wide: each costs a password hash.
    pub(crate) registrations: SharedBucket,
    /// The TLS config: each connection clones the current one before its
    /// handshake; a reload swaps it for new connections (`reload.rs`).
    pub(crate) tls: ServerTls,
    /// The server's stop signal.
    pub(crate) shutdown: Shutdown,
    /// Live connection threads, for the connection limit and for shutdown.
    live: LiveCount,
    /// Sockets still in their TLS handshake, so that shutdown can cut them
    /// short (they have no outbox to receive a `BYE` yet).
    pub(crate) handshaking: Mutex<HashMap<u64, Arc<TcpStream>>>,
    /// The places for handshakes in progress (`--max-handshakes`), taken
    /// by the accept loop before each `accept`.
    handshakes: Arc<HandshakeGate>,
    /// Connections past their handshake that have not logged in
    /// (`--max-unauthenticated`); `LOGIN` takes its connection out.
    pub(crate) unauthenticated: Arc<Unauthenticated>,
    /// `--max-connections`, lowered if the operating system's limits allow
    /// fewer (see `capacity`).
    max_connections: usize,
    /// The counters behind `/metrics` and the status page.
    pub(crate) metrics: crate::web::metrics::Metrics,
    /// The web side's token and caches; `None` with `--web off`.
    pub(crate) site: Option<crate::web::Site>,
    /// Sockets of HTTP connections (not upgraded), so that shutdown can
    /// close an idle kept-alive one at once.
    http: Mutex<HashMap<u64, Arc<TcpStream>>>,
}

impl State {
    /// Connections in their TLS handshake now.
    pub(crate) fn handshaking_now(&self) -> usize {
        sync::lock(&self.handshaking).len()
    }

    /// Keeps an HTTP connection's socket where shutdown can find it until
    /// the guard is dropped.
    pub(crate) fn watch_http(&self, id: u64, socket: &Arc<TcpStream>) -> HttpWatch<'_> {
        sync::lock(&self.http).insert(id, socket.clone());
        HttpWatch { state: self, id }
    }
}

/// An HTTP connection known to shutdown; see [`State::watch_http`].
pub(crate) struct HttpWatch<'a> {
    /// The state holding the registry.
    state: &'a State,
    /// The connection's number.
    id: u64,
}

impl Drop for HttpWatch<'_> {
    fn drop(&mut self) {
        sync::lock(&self.state.http).remove(&self.id);
    }
}

/// A count of live connection threads that one can wait on.
#[derive(Default)]
struct LiveCount {
    /// The count.
    count: Mutex<usize>,
    /// Signalled when the count drops to zero.
    zero: Condvar,
}

/// One live connection; dropping it (when the thread ends, or when the
/// spawn failed and the closure was dropped) gives the place back.
pub(crate) struct Slot {
    /// The state holding the count.
    state: Arc<State>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut count = sync::lock(&self.state.live.count);
        *count -= 1;
        if *count == 0 {
            self.state.live.zero.notify_all();
        }
    }
}

/// Takes a place for a new connection if the server is under `hard_limit`.
/// Returns the slot and the number of connections before this one.
fn take_slot(state: &Arc<State>, hard_limit: usize) -> Option<(Slot, usize)> {
    let mut count = sync::lock(&state.live.count);
    if *count >= hard_limit {
        return None;
    }
    *count += 1;
    let before = *count - 1;
    drop(count);
    Some((
        Slot {
            state: state.clone(),
        },
        before,
    ))
}

/// Waits until every connection thread has ended, or `timeout` passes.
fn wait_for_connections(state: &State, timeout: Duration) -> bool {
    let count = sync::lock(&state.live.count);
    let (count, _) = state
        .live
        .zero
        .wait_timeout_while(count, timeout, |n| *n > 0)
        .unwrap_or_else(PoisonError::into_inner);
    *count == 0
}

/// Runs the server on an already bound listener until `shutdown` fires.
///
/// Taking a bound listener (rather than an address) lets tests bind port 0
/// and read the real port before the server starts (mini-redis does the
/// same).
///
/// Shutdown, in order: stop accepting; `BYE SHUTDOWN` to every client;
/// wait (up to a few seconds) for their threads to end; let the database
/// thread write everything still queued and stop.
///
/// # Errors
///
/// Start-up failures only: a bad config, a database that cannot be opened,
/// the listener's address unreadable. Once serving, failures are per
/// connection and are logged.
pub fn run(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    config: Config,
    shutdown: Shutdown,
) -> Result<()> {
    run_with(listener, ServerTls::fixed(tls), config, shutdown)
}

/// [`run`] with a reloadable TLS identity: `tls` (a clone of which the
/// caller may keep, to call [`ServerTls::reload`] on SIGHUP). While the
/// server runs, a `cert-expiry` thread checks the certificate once a day.
///
/// # Errors
///
/// As [`run`].
pub fn run_with(
    listener: TcpListener,
    tls: ServerTls,
    config: Config,
    shutdown: Shutdown,
) -> Result<()> {
    config.validate()?;
    let hasher = Hasher::new(config.fast_hash)?;
    if config.fast_hash {
        log::warn!(
            "--fast-hash: passwords are hashed with minimal argon2 cost; not for production"
        );
    }
    let store = config.store_spec();
    let (db, db_thread, rooms) =
        db::open_store(&store, config.history, db::Limits::from_config(&config))?;
    log::info!("store {store} open: {} rooms", rooms.len());
    let max_connections = connection_cap(config.max_connections);
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("read the listener's address", e))?;
    // One port, two protocols: with the web side on, the handshake offers
    // ALPN `http/1.1` and browsers get HTTP (see `tls::ALPN_HTTP`).
    let site = if config.web {
        tls.offer_alpn(vec![crate::tls::ALPN_HTTP.to_vec()]);
        Some(crate::web::Site::new(
            addr.port(),
            config.status_token.as_deref(),
        )?)
    } else {
        tls.offer_alpn(Vec::new());
        None
    };
    let node = config
        .node_id
        .clone()
        .unwrap_or_else(crate::bus::default_node_id);
    let deliver = Arc::new(std::sync::OnceLock::new());
    let bus = crate::bus::start(&config.bus, node, config.node_ttl, deliver.clone())?;
    let state = Arc::new(State {
        hub: hub::Hub::new(config.history, rooms, config.clock.clone(), bus),
        login_attempts: AttemptLimit::new(config.login_failures),
        room_password_attempts: AttemptLimit::new(config.room_password_failures),
        registrations: SharedBucket::new(
            config.register_burst,
            config.register_rate,
            Instant::now(),
        ),
        handshakes: HandshakeGate::new(config.max_handshakes),
        unauthenticated: Unauthenticated::new(config.max_unauthenticated),
        config,
        db,
        hasher,
        tls,
        shutdown: shutdown.clone(),
        live: LiveCount::default(),
        handshaking: Mutex::new(HashMap::new()),
        max_connections,
        metrics: crate::web::metrics::Metrics::new(),
        site,
        http: Mutex::new(HashMap::new()),
    });
    // The bus calls the node back from now on (a shared bus only).
    let remote: Arc<dyn crate::bus::Deliver> = Arc::new(remote::Remote {
        state: Arc::downgrade(&state),
    });
    let _ = deliver.set(remote);
    if !state.hub.bus().wait_ready(BUS_READY_TIMEOUT) {
        log::warn!(
            "bus: not subscribed within {BUS_READY_TIMEOUT:?}; serving this node's clients, \
             and the other nodes once the bus answers"
        );
    }
    // The accept loop may be waiting for a handshake place rather than in
    // `accept`: the connection `trigger` makes to the listener would not
    // wake it, this does.
    let gate = state.handshakes.clone();
    shutdown.on_trigger(move || gate.wake_all());
    shutdown.set_listener(addr);
    // Stopped (and joined) when this guard drops, right after the accept loop.
    let expiry_watch = state.tls.watch_expiry()?;
    log::info!("listening on {addr}");
    if let Some(site) = &state.site {
        site.announce();
    }

    accept_loop(&listener, &state);
    drop(listener);
    drop(expiry_watch);

    for socket in sync::lock(&state.handshaking).values() {
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }
    for socket in sync::lock(&state.http).values() {
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }
    let open = state.hub.close_all(ByeReason::Shutdown);
    log::info!(
        "shutting down: closing {open} connection{}",
        if open == 1 { "" } else { "s" }
    );
    let mut all_done = wait_for_connections(&state, SHUTDOWN_FLUSH);
    if !all_done {
        let stuck = state.hub.cut_all();
        log::info!("shutting down: cutting {stuck} connections that did not take their last lines");
        all_done = wait_for_connections(&state, SHUTDOWN_GRACE - SHUTDOWN_FLUSH);
    }
    if !all_done {
        log::warn!("some connections did not finish within {SHUTDOWN_GRACE:?}");
    }
    // The connections have said goodbye through the bus; now the bus's
    // own goodbye, and its threads end.
    state.hub.bus().stop();
    if let Err(e) = state.db.flush() {
        log::error!("final database flush failed: {e:?}");
    }
    // The database thread stops when the last `Db` handle is gone. Ours is
    // in `state`; connection threads hold the others. If one of them is
    // still stuck we do not wait for it: everything queued was flushed above.
    if all_done {
        drop(state);
        db_thread.join()?;
    }
    log::info!("server stopped");
    Ok(())
}

/// How long a node waits at start for its shared bus (Redis) before it
/// serves its clients anyway.
const BUS_READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection limit to enforce: `--max-connections`, or fewer if the
/// machine's limits (open files, memory maps, thread ids) cannot hold that
/// many. Refusing with `BYE TOO_MANY_CONNECTIONS` beats failing to start a
/// thread.
fn connection_cap(requested: usize) -> usize {
    let limits = capacity::read_limits();
    let Some((allowed, bound)) = capacity::estimate(&limits) else {
        log::info!("serving up to {requested} connections (system limits unknown)");
        return requested;
    };
    let allowed = usize::try_from(allowed).unwrap_or(usize::MAX).max(1);
    if allowed < requested {
        log::warn!(
            "this machine's limits allow about {allowed} clients (bound by {}), \
             fewer than --max-connections {requested}: serving at most {allowed}; \
             the README says how to raise the limits",
            bound.name()
        );
        allowed
    } else {
        log::info!(
            "serving up to {requested} connections (this machine's limits allow about {allowed}, bound by {})",
            bound.name()
        );
        requested
    }
}

/// Accepts connections until shutdown, and gives each a handshake thread.
///
/// Before each `accept` the loop takes a handshake place
/// (`--max-handshakes`, see `admission`). While all are taken it does not
/// accept: newcomers wait in the kernel's listen queue, costing no thread,
/// and are taken in order as handshakes end. The place travels with the
/// connection to its handshake thread, which gives it back when the
/// handshake ends.
fn accept_loop(listener: &TcpListener, state: &Arc<State>) {
    let next_id = AtomicU64::new(1);
    let max = state.max_connections;
    loop {
        let Some(permit) = state.handshakes.enter(|| state.shutdown.is_triggered()) else {
            break; // shutdown while waiting for a place
        };
        let accepted = listener.accept();
        if state.shutdown.is_triggered() {
            break;
        }
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // One failed accept (the peer reset before we got to it, or
                // we are out of file descriptors) is logged and survived.
                // Back off briefly so that running out of descriptors does
                // not become a busy loop.
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Some((slot, before)) = take_slot(state, max + REFUSAL_SLACK) else {
            log::warn!(
                "refusing {peer}: {max} connections and {REFUSAL_SLACK} refusals in progress"
            );
            continue;
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let over_limit = before >= max;
        log::info!("conn {id}: connection from {peer}");
        let thread_state = state.clone();
        let admitted = connection::Admitted {
            over_limit,
            slot,
            handshake: permit,
        };
        // The handshake gets a thread of its own, which ends when it has
        // started the connection's reader and writer (`connection.rs` says
        // why).
        let spawned = thread::Builder::new()
            .name(format!("conn-{id}-tls"))
            .stack_size(HANDSHAKE_STACK)
            .spawn(move || connection::handshake(thread_state, socket, peer, id, admitted));
        if let Err(e) = spawned {
            // The closure (with the socket, the slot and the handshake
            // place) was dropped: the client's TCP connection closes and
            // its places are given back.
            log::error!("conn {id}: cannot start a thread: {e}");
        }
    }
}
