//! What the teacher's status page shows (`/status.json`, drawn by
//! `web/status.js` on `/status`), and the ngrok tunnel's public address.
//!
//! Everything is read when asked, from the hub and the counters: nothing
//! here is kept up to date in the background. Only the tunnel's address
//! is cached ([`Ngrok`]), because finding it costs a request to another
//! process.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::State;

use super::metrics::Kind;

/// The status as JSON.
pub(crate) fn snapshot(state: &State, public_address: Option<String>) -> Value {
    let metrics = &state.metrics;
    let config = &state.config;
    let users: Vec<Value> = state
        .hub
        .users_online()
        .into_iter()
        .map(|(name, room)| json!({ "name": name, "room": room }))
        .collect();
    let rooms: Vec<Value> = state
        .hub
        .list_rooms()
        .into_iter()
        .map(|(name, private, members)| {
            let recent = metrics.last_minute(&name);
            json!({
                "name": name,
                "private": private,
                "members": members,
                "messages_last_minute": recent,
            })
        })
        .collect();
    let certificate = state
        .tls
        .leaf()
        .map(|leaf| json!({ "subject": leaf.subject, "not_after": leaf.not_after_text() }));
    let bus = state.hub.bus().health();
    let store = state.db.health();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "node": {
            "id": state.hub.bus().node(),
            "bus": {
                "kind": bus.kind,
                "target": bus.target,
                "ok": bus.ok,
                "last_error": bus.last_error,
                "events_dropped": bus.dropped,
            },
            "store": {
                "engine": store.engine,
                "target": state.config.store_spec().to_string(),
                "ok": store.ok,
                "last_error": store.last_error,
            },
        },
        "uptime_secs": metrics.started.elapsed().as_secs(),
        "connections": {
            "terminal": metrics.connections(Kind::Terminal),
            "web": metrics.connections(Kind::WebSocket),
            "http": metrics.connections(Kind::Http),
            "handshaking": state.handshaking_now(),
        },
        "users": users,
        "rooms": rooms,
        "slow_consumers_dropped": metrics.slow_consumers.get(),
        "rate_limited_commands": metrics.rate_limited.get(),
        "certificate": certificate,
        "limits": {
            "max_connections": config.max_connections,
            "max_handshakes": config.max_handshakes,
            "max_unauthenticated": config.max_unauthenticated,
            "max_line": config.max_line,
            "msg_rate": config.msg_rate,
            "msg_burst": config.msg_burst,
            "line_rate": config.line_rate,
            "line_burst": config.line_burst,
            "queue_lines": config.queue_lines,
            "queue_bytes": config.queue_bytes,
            "login_timeout_secs": config.login_timeout.as_secs(),
            "idle_timeout_secs": config.idle_timeout.as_secs(),
            "max_rooms": config.max_rooms,
            "history": config.history,
        },
        "public_address": public_address,
    })
}

/// Where an ngrok agent answers on this machine, when one runs.
const NGROK_API: &str = "127.0.0.1:4040";

/// The longest a look-up may take, connect, request and answer together.
const NGROK_BUDGET: Duration = Duration::from_secs(1);

/// How long an answer (or "no agent") is kept before asking again.
const NGROK_KEEP: Duration = Duration::from_secs(5);

/// The largest answer read from the agent.
const NGROK_MAX_ANSWER: u64 = 256 * 1024;

/// The public address of an ngrok TCP tunnel to this server's port, from
/// the agent's local API, cached for a few seconds.
///
/// A look-up takes at most a second (`NGROK_BUDGET`), and only one request at a
/// time makes it: the others meanwhile get the cached answer at once. So
/// no status request waits more than a second for it, and a page that
/// refreshes every 2 s costs the agent one request every 5 s.
pub struct Ngrok {
    /// Where the agent's API answers ([`NGROK_API`], or a test's).
    api: SocketAddr,
    /// This server's port: the tunnel must forward to it.
    port: u16,
    /// The last answer and when it was fetched.
    cached: Mutex<Option<(Instant, Option<String>)>>,
    /// Set while a request is asking the agent.
    asking: AtomicBool,
}

impl Ngrok {
    /// A cache for the tunnel to `port`, asking the agent on this machine.
    pub fn new(port: u16) -> Self {
        Ngrok::asking(NGROK_API.parse().expect("a socket address"), port)
    }

    /// A cache for the tunnel to `port`, asking the agent at `api`.
    pub fn asking(api: SocketAddr, port: u16) -> Self {
        Ngrok {
            api,
            port,
            cached: Mutex::new(None),
            asking: AtomicBool::new(false),
        }
    }

    /// The tunnel's public address (`0.tcp.eu.ngrok.io:12345`), or `None`
    /// when no agent runs or none of its tunnels leads here.
    pub fn public_address(&self) -> Option<String> {
        let lock = || {
            self.cached
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let current = lock().clone();
        if let Some((at, answer)) = &current {
            if at.elapsed() < NGROK_KEEP {
                return answer.clone();
            }
        }
        if self.asking.swap(true, Ordering::AcqRel) {
            // Someone is asking now: the previous answer will do.
            return current.and_then(|(_, answer)| answer);
        }
        let answer = ask_agent(self.api, self.port);
        *lock() = Some((Instant::now(), answer.clone()));
        self.asking.store(false, Ordering::Release);
        answer
    }
}

/// Asks the agent at `api` for its tunnels; `None` on any failure.
fn ask_agent(api: SocketAddr, port: u16) -> Option<String> {
    let deadline = Instant::now() + NGROK_BUDGET;
    let mut socket = TcpStream::connect_timeout(&api, NGROK_BUDGET).ok()?;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    socket.set_write_timeout(Some(left())).ok()?;
    socket
        .write_all(b"GET /api/tunnels HTTP/1.0\r\nHost: 127.0.0.1:4040\r\nAccept: application/json\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut reader = socket.take(NGROK_MAX_ANSWER);
    loop {
        if Instant::now() >= deadline {
            return None;
        }
        reader.get_ref().set_read_timeout(Some(left())).ok()?;
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(&answer).ok()? else {
        return None;
    };
    if response.code != Some(200) {
        return None;
    }
    let tunnels: Value = serde_json::from_slice(&answer[head..]).ok()?;
    tunnel_to(&tunnels, port)
}

/// The public address of the TCP tunnel in `tunnels` (the agent's
/// `/api/tunnels` answer) that forwards to local `port`.
pub fn tunnel_to(tunnels: &Value, port: u16) -> Option<String> {
    let suffix = format!(":{port}");
    tunnels["tunnels"].as_array()?.iter().find_map(|t| {
        let public = t["public_url"].as_str()?.strip_prefix("tcp://")?;
        let local = t["config"]["addr"].as_str()?;
        (local.ends_with(&suffix) || local == port.to_string()).then(|| public.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake agent that answers `body` to one request, then closes.
    fn agent(body: &'static str) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request);
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes());
        });
        addr
    }

    /// The agent's answer gives the address, and it is cached.
    #[test]
    fn the_agent_is_asked_and_its_answer_kept() {
        let api = agent(
            r#"{"tunnels":[{"public_url":"tcp://0.tcp.sa.ngrok.io:19876","config":{"addr":"localhost:12345"}}]}"#,
        );
        let ngrok = Ngrok::asking(api, 12345);
        assert_eq!(
            ngrok.public_address().as_deref(),
            Some("0.tcp.sa.ngrok.io:19876")
        );
        // The fake agent answered once and is gone: this comes from the cache.
        assert_eq!(
            ngrok.public_address().as_deref(),
            Some("0.tcp.sa.ngrok.io:19876")
        );
    }

    /// An agent that accepts and never answers costs at most about a
    /// second, and gives no address; no agent at all gives none at once.
    #[test]
    fn a_silent_or_absent_agent_costs_at_most_a_second() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let silent = Ngrok::asking(listener.local_addr().expect("addr"), 12345);
        let started = Instant::now();
        assert_eq!(silent.public_address(), None);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "took {took:?}");
        drop(listener);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let absent_addr = closed.local_addr().expect("addr");
        drop(closed);
        let absent = Ngrok::asking(absent_addr, 12345);
        let started = Instant::now();
        assert_eq!(absent.public_address(), None);
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    /// The TCP tunnel to our port is found; others are not.
    #[test]
    fn the_tunnel_to_this_port() {
        let tunnels = json!({ "tunnels": [
            { "public_url": "https://abc.ngrok.app", "config": { "addr": "http://localhost:8080" } },
            { "public_url": "tcp://0.tcp.eu.ngrok.io:17001", "config": { "addr": "localhost:12345" } },
        ]});
        assert_eq!(
            tunnel_to(&tunnels, 12345).as_deref(),
            Some("0.tcp.eu.ngrok.io:17001")
        );
        assert_eq!(tunnel_to(&tunnels, 4000), None);
        assert_eq!(tunnel_to(&json!({}), 12345), None);
    }
}
