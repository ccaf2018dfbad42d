//! The server's counters, and `/metrics`: Prometheus' text exposition,
//! written by the Prometheus project's own client (`prometheus-client`).
//!
//! One [`Metrics`] per server, in its shared state: where an event happens
//! (a login, a `SAY`, a slow consumer dropped, an HTTP response) one
//! line records it (`state.metrics.said(…)`). Counters are atomics, so
//! recording never waits for anyone. The gauges (connections, users
//! online, rooms, the deepest outbox) are read from the hub when
//! `/metrics` is scraped, so they cannot drift from the truth.
//!
//! The database thread has no handle on the server's state: the commit
//! time it measures goes to one process-wide histogram ([`timed_commit`]).
//!
//! Messages per room in the last minute, for the status page, are kept
//! here too ([`Metrics::said`]): per room, a ring of 60 one-second counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A label set: `[("route", "/status"), ("status", "200")]`.
type Labels = Vec<(&'static str, String)>;

/// Which kind of connection a gauge counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A line-protocol client (the terminal client, `openssl s_client`).
    Terminal,
    /// A browser's HTTP connection, before any upgrade.
    Http,
    /// A browser's WebSocket: a chat client like a terminal one.
    WebSocket,
}

/// Counts one connection of a kind for as long as it is alive.
pub struct Counted<'a> {
    /// The gauge to give back to.
    gauge: &'a AtomicI64,
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Locks a mutex; a poisoned one (a panic elsewhere while it was held)
/// still holds whole counts, so it is used as it is.
fn sync_lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Seconds in the "last minute" window of the status page.
const WINDOW: usize = 60;

/// One room's messages of the last [`WINDOW`] seconds, by second.
struct Recent {
    /// Count per second, indexed by (seconds since start) mod WINDOW.
    counts: [u32; WINDOW],
    /// The second each slot was last written, to know a stale one.
    stamps: [u64; WINDOW],
}

/// Every counter of one server.
pub struct Metrics {
    /// When the server started (uptime, and the seconds of `Recent`).
    pub started: Instant,
    /// Line-protocol connections now.
    terminal: AtomicI64,
    /// HTTP connections (not upgraded) now.
    http: AtomicI64,
    /// WebSocket connections now.
    websocket: AtomicI64,
    /// `LOGIN`s that succeeded.
    pub logins_ok: Counter,
    /// `LOGIN`s refused (bad credentials, rate-limited).
    pub logins_failed: Counter,
    /// `SAY`s broadcast.
    pub messages_said: Counter,
    /// Lines of `SAY`s queued to room members.
    pub deliveries: Counter,
    /// `DM`s queued to an online recipient.
    pub dms_delivered: Counter,
    /// `DM`s stored for an offline recipient.
    pub dms_stored: Counter,
    /// Clients dropped because their outbox was full.
    pub slow_consumers: Counter,
    /// Commands answered `ERR RATE_LIMITED`.
    pub rate_limited: Counter,
    /// Handshakes that failed, by cause (`timeout`, `closed`, `tls`).
    handshake_failures: Family<Labels, Counter>,
    /// HTTP responses, by route and status.
    http_requests: Family<Labels, Counter>,
    /// Messages per room in the last minute, by room name.
    recent: Mutex<HashMap<String, Recent>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The process-wide histogram of database commit times (seconds).
fn commit_histogram() -> &'static Histogram {
    static HISTOGRAM: OnceLock<Histogram> = OnceLock::new();
    // 100 µs to about 3 s.
    HISTOGRAM.get_or_init(|| Histogram::new(exponential_buckets(0.0001, 2.0, 15)))
}

/// Runs `commit` (the database thread's group commit) and records how
/// long it took.
pub fn timed_commit<T>(commit: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = commit();
    commit_histogram().observe(started.elapsed().as_secs_f64());
    result
}

impl Metrics {
    /// All zero, started now.
    pub fn new() -> Self {
        Metrics {
            started: Instant::now(),
            terminal: AtomicI64::new(0),
            http: AtomicI64::new(0),
            websocket: AtomicI64::new(0),
            logins_ok: Counter::default(),
            logins_failed: Counter::default(),
            messages_said: Counter::default(),
            deliveries: Counter::default(),
            dms_delivered: Counter::default(),
            dms_stored: Counter::default(),
            slow_consumers: Counter::default(),
            rate_limited: Counter::default(),
            handshake_failures: Family::default(),
            http_requests: Family::default(),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a connection of `kind` until the guard is dropped.
    pub fn connection(&self, kind: Kind) -> Counted<'_> {
        let gauge = self.gauge(kind);
        gauge.fetch_add(1, Ordering::Relaxed);
        Counted { gauge }
    }

    /// Connections of `kind` now.
    pub fn connections(&self, kind: Kind) -> i64 {
        self.gauge(kind).load(Ordering::Relaxed)
    }

    /// The gauge of `kind`.
    fn gauge(&self, kind: Kind) -> &AtomicI64 {
        match kind {
            Kind::Terminal => &self.terminal,
            Kind::Http => &self.http,
            Kind::WebSocket => &self.websocket,
        }
    }

    /// A handshake failed; `cause` is `timeout`, `closed` or `tls`.
    pub fn handshake_failed(&self, cause: &'static str) {
        self.handshake_failures
            .get_or_create(&vec![("cause", cause.to_string())])
            .inc();
    }

    /// An HTTP response was sent.
    pub fn http_response(&self, route: &'static str, status: u16) {
        self.http_requests
            .get_or_create(&vec![
                ("route", route.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    /// A `SAY` in `room` (its name): counts it, and the room's members as
    /// its deliveries.
    pub fn said_in(&self, hub: &crate::server::hub::Hub, room: &str) {
        let members = hub
            .room(&room.to_ascii_lowercase())
            .map_or(0, |r| r.online());
        self.said(room, members);
    }

    /// A `SAY` in `room` (its name) reached `members` members.
    pub fn said(&self, room: &str, members: usize) {
        self.messages_said.inc();
        self.deliveries.inc_by(members as u64);
        let second = self.started.elapsed().as_secs();
        let slot = (second % WINDOW as u64) as usize;
        let mut recent = sync_lock(&self.recent);
        let entry = recent.entry(room.to_string()).or_insert(Recent {
            counts: [0; WINDOW],
            stamps: [0; WINDOW],
        });
        if entry.stamps[slot] != second {
            entry.stamps[slot] = second;
            entry.counts[slot] = 0;
        }
        entry.counts[slot] += 1;
    }

    /// Messages said in room `room` (its name) in the last minute.
    pub fn last_minute(&self, room: &str) -> u64 {
        let now = self.started.elapsed().as_secs();
        let recent = sync_lock(&self.recent);
        let Some(entry) = recent.get(room) else {
            return 0;
        };
        (0..WINDOW)
            .filter(|&i| now.saturating_sub(entry.stamps[i]) < WINDOW as u64)
            .map(|i| u64::from(entry.counts[i]))
            .sum()
    }

    /// The text exposition of every metric, with the gauges given
    /// (read from the hub by the caller).
    pub fn exposition(&self, gauges: &Gauges) -> String {
        let mut registry = Registry::with_prefix("chat");
        let connections = Family::<Labels, Gauge>::default();
        for (kind, value) in [
            ("terminal", self.connections(Kind::Terminal)),
            ("web", self.connections(Kind::WebSocket)),
            ("http", self.connections(Kind::Http)),
            ("handshaking", gauges.handshaking as i64),
        ] {
            connections
                .get_or_create(&vec![("kind", kind.to_string())])
                .set(value);
        }
        registry.register("connections", "Connections now, by kind", connections);
        let node = Family::<Labels, Gauge>::default();
        node.get_or_create(&vec![
            ("node", gauges.node.clone()),
            ("bus", gauges.bus.kind.to_string()),
            ("store", gauges.store.engine.to_string()),
        ])
        .set(1);
        registry.register(
            "node",
            "This node's name, the bus it shares rooms through and its store",
            node,
        );
        let store_up = Gauge::<i64>::default();
        store_up.set(i64::from(gauges.store.ok));
        registry.register(
            "store_up",
            "Whether the store's last batch committed (1) or not (0)",
            store_up,
        );
        let bus_up = Gauge::<i64>::default();
        bus_up.set(i64::from(gauges.bus.ok));
        registry.register("bus_up", "Whether the bus works now (1) or not (0)", bus_up);
        let dropped = Gauge::<i64>::default();
        dropped.set(i64::try_from(gauges.bus.dropped).unwrap_or(i64::MAX));
        registry.register(
            "bus_events_dropped",
            "Events not published since start (the bus was unreachable)",
            dropped,
        );
        for (name, help, value) in [
            ("users_online", "Users logged in now", gauges.users_online),
            ("rooms", "Rooms", gauges.rooms),
            (
                "outbox_depth_max",
                "Lines waiting in the fullest outbox",
                gauges.outbox_max,
            ),
        ] {
            let gauge = Gauge::<i64>::default();
            gauge.set(value as i64);
            registry.register(name, help, gauge);
        }
        for (name, help, counter) in [
            ("logins_ok", "Successful LOGINs", &self.logins_ok),
            ("logins_failed", "Refused LOGINs", &self.logins_failed),
            ("messages_said", "SAYs broadcast", &self.messages_said),
            (
                "deliveries",
                "MSG lines queued to room members",
                &self.deliveries,
            ),
            (
                "dms_delivered",
                "DMs queued to an online recipient",
                &self.dms_delivered,
            ),
            (
                "dms_stored",
                "DMs stored for an offline recipient",
                &self.dms_stored,
            ),
            (
                "slow_consumers_dropped",
                "Clients dropped for a full outbox",
                &self.slow_consumers,
            ),
            (
                "rate_limited_commands",
                "Commands answered RATE_LIMITED",
                &self.rate_limited,
            ),
        ] {
            // A clone shares the same atomic.
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "handshake_failures",
            "Failed TLS handshakes, by cause",
            self.handshake_failures.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP responses, by route and status",
            self.http_requests.clone(),
        );
        registry.register(
            "db_commit_seconds",
            "Time of one database group commit (whole process)",
            commit_histogram().clone(),
        );
        let mut out = String::new();
        // Writing into a `String` cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

/// The gauges read from the hub at scrape time.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    /// Connections in their TLS handshake.
    pub handshaking: usize,
    /// Users logged in.
    pub users_online: usize,
    /// Rooms.
    pub rooms: usize,
    /// Lines in the fullest outbox.
    pub outbox_max: usize,
    /// This node's name on the bus.
    pub node: String,
    /// How the bus is doing.
    pub bus: crate::bus::BusHealth,
    /// How the store is doing.
    pub store: crate::db::StoreHealth,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters and gauges come out in the text format, with their prefix.
    #[test]
    fn exposition_has_the_counters() {
        let m = Metrics::new();
        m.logins_ok.inc();
        m.said("lobby", 3);
        m.http_response("/", 200);
        let _live = m.connection(Kind::WebSocket);
        let text = m.exposition(&Gauges::default());
        assert!(text.contains("chat_logins_ok_total 1\n"), "{text}");
        assert!(text.contains("chat_deliveries_total 3\n"), "{text}");
        assert!(
            text.contains("chat_connections{kind=\"web\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("chat_http_requests_total{route=\"/\",status=\"200\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE chat_db_commit_seconds histogram"),
            "{text}"
        );
        assert_eq!(m.last_minute("lobby"), 1);
        assert_eq!(m.last_minute("other"), 0);
    }
}
