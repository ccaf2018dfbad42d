//! Every limit of the server, in one place, with its default and the reason
//! for it.
//!
//! The protocol (`PROTOCOL.md`, "Limits") fixes the defaults; the server
//! binary turns each field into a command-line option of the same name
//! (`--queue-lines`, `--max-line`, …). Tests build a [`Config`] directly,
//! usually from [`Config::default`] with one field changed, so that a test of
//! a limit can make the limit small.

use std::path::PathBuf;
use std::time::Duration;

use crate::bus::BusSpec;
use crate::db::StoreSpec;
use crate::error::{Error, Result};

/// The server's settings. `Config::default()` is what `PROTOCOL.md` specifies.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite file. Default `chat.db`, created if missing. A database
    /// made by the Python original of the course is migrated in place.
    pub db_path: PathBuf,
    /// Where what must last is kept (`--store`): `None` is SQLite in
    /// [`db_path`](Self::db_path), the embedded default; PostgreSQL lets
    /// several nodes share accounts, rooms, history and stored DMs.
    pub store: Option<StoreSpec>,
    /// What this server shares its rooms through (`--bus`): `local` (the
    /// default, a server alone) or a Redis that several nodes share.
    pub bus: BusSpec,
    /// This node's name on the bus (`--node-id`); `None` makes one from the
    /// host name and the process id. Only a bus shared by several nodes
    /// needs it; two live nodes must never share one.
    pub node_id: Option<String>,
    /// How long a node on a shared bus counts as alive without a beat
    /// (`--node-ttl`). Default 10 s: a node killed with `kill -9` has its
    /// users shown as gone (`LEFT … quit`) within 12 s. Shorter notices a
    /// crash sooner and costs more Redis commands (five beats per TTL).
    pub node_ttl: Duration,
    /// How many of a room's last messages a `JOIN` replays. Default 50.
    /// The server keeps exactly this many per room in memory, so a `JOIN`
    /// never waits for the database.
    pub history: usize,
    /// Cheap password hashing (argon2id with minimal memory and time). Only
    /// for tests and benchmarks, where a real hash per login would dominate:
    /// the server logs a warning when it is on.
    pub fast_hash: bool,
    /// How long a TLS handshake may take, from the accepted TCP connection
    /// to the last handshake message. Default 10 s: a peer that opens a
    /// socket and says nothing holds a thread for no longer than this.
    pub handshake_timeout: Duration,
    /// How long a connection may stay without a successful `LOGIN`. Default
    /// 60 s; then `BYE LOGIN_TIMEOUT`.
    pub login_timeout: Duration,
    /// `SAY` and `DM` refill rate per connection, in messages per second.
    /// Default 10.
    pub msg_rate: u32,
    /// `SAY` and `DM` burst per connection (the token bucket's size).
    /// Default 20: a student can paste a few lines at once.
    pub msg_burst: u32,
    /// Failed `LOGIN`s allowed per user name per minute before that *name*
    /// is refused with `RATE_LIMITED` for a minute. Default 5. Keyed on the
    /// name, never on the address: behind ngrok a whole class shares one.
    pub login_failures: u32,
    /// Lines that may wait in one client's outbox. Default 1024. A client
    /// whose outbox is full is not reading: it gets `BYE SLOW_CONSUMER` and
    /// is dropped, so that it never slows anyone else down.
    pub queue_lines: usize,
    /// Connections served at once. Default 10,000. The next one gets
    /// `BYE TOO_MANY_CONNECTIONS`.
    pub max_connections: usize,
    /// Longest line a client may send, in bytes, LF included. Default 4096.
    pub max_line: usize,
    /// How long one write to a client's socket may block before the client
    /// is considered gone. Default 10 s. Not in the protocol's table: it is
    /// how a writer thread stuck on a peer that stopped reading gets free.
    pub write_timeout: Duration,
    /// TLS handshakes in progress at once. Default 256; the accept loop
    /// waits for one to end before accepting more, so the others wait in
    /// the kernel's listen queue, costing no thread.
    pub max_handshakes: usize,
    /// Connections that are not logged in (yet). Default 1024; the next one
    /// gets `BYE TOO_MANY_CONNECTIONS`, so sockets that never log in cannot
    /// take the places of a class that does.
    pub max_unauthenticated: usize,
    /// How long a logged-in client may stay without sending a line (`PING`
    /// counts). Default 30 min; then `BYE IDLE`.
    pub idle_timeout: Duration,
    /// Lines of any command per connection per second, after the burst.
    /// Default 50.
    pub line_rate: u32,
    /// Lines of any command allowed at once per connection. Default 200.
    pub line_burst: u32,
    /// Rooms in all. Default 1000; then `CREATE` is `ERR TOO_MANY_ROOMS`.
    pub max_rooms: usize,
    /// Rooms one account may own (its creator owns a room). Default 20.
    pub rooms_per_user: usize,
    /// Registrations allowed at once, server-wide. Default 300: a whole
    /// class registering in the same minute never meets the limit.
    pub register_burst: u32,
    /// Registrations per second, server-wide, after the burst. Default 2.
    pub register_rate: u32,
    /// Whether `REGISTER` is open. Default `true`; when closed, accounts
    /// come from the server's command line (`server user add`).
    pub registration_open: bool,
    /// Wrong room passwords per user per room per minute (attempts in
    /// progress counted). Default 5.
    pub room_password_failures: u32,
    /// Bytes that may wait in one client's outbox. Default 1 MiB; with
    /// `queue_lines`, whichever is reached first makes a slow consumer.
    pub queue_bytes: usize,
    /// Direct messages stored for one offline recipient. Default 1000;
    /// then the sender gets `ERR MAILBOX_FULL` and nothing is stored.
    pub mailbox: usize,
    /// Messages kept on disk per room, newest first. Default 10,000.
    pub history_keep: usize,
    /// Rows kept in the moderation log, the newest. Default 100,000: any
    /// student may own a room and moderate it, so the log is bounded like
    /// everything else a client can make the server store.
    pub moderation_keep: usize,
    /// Whether the port also serves browsers (`--web on|off`). Default on:
    /// the server offers ALPN `http/1.1`, and a connection that negotiates
    /// it is served HTTP and WebSocket (`docs/WEB.md`). Off: no ALPN is
    /// offered and every connection is a line-protocol client.
    pub web: bool,
    /// The token that opens `/status`, `/status.json` and `/metrics`
    /// (`--status-token`). Default `None`: a random one at each start,
    /// logged once as the status page's full address.
    pub status_token: Option<String>,
    /// How long an HTTP request head may take to arrive, from its first
    /// byte. Default 10 s: a peer that dribbles a head byte by byte is cut
    /// at this deadline.
    pub http_head_timeout: Duration,
    /// How long an HTTP connection may wait for its next request (its
    /// first one, too).
    /// Default 15 s, and at most that: idle browser connections must not
    /// hold threads.
    pub http_idle_timeout: Duration,
    /// The clock that times messages and decides when bans and
    /// suspensions end: the system clock, except in tests that move it.
    pub clock: crate::clock::Clock,
}

/// The longest `--http-idle-timeout`: idle browser connections each hold
/// a thread, so they are let go after at most this long.
pub const MAX_HTTP_IDLE: Duration = Duration::from_secs(15);

/// The shortest `--status-token`: shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// Outbox lines needed beyond `history`: room for the messages that may
/// arrive while a `JOIN`'s history replay is being written.
pub const MIN_QUEUE_SLACK: usize = 16;

/// The longest any timeout option may be: a year. Longer means "never" for
/// a chat session, and a deadline that far off would overflow the clock.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

impl Default for Config {
    fn default() -> Self {
        Config {
            db_path: PathBuf::from("chat.db"),
            store: None,
            bus: BusSpec::Local,
            node_id: None,
            node_ttl: Duration::from_secs(10),
            history: 50,
            fast_hash: false,
            handshake_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(60),
            msg_rate: 10,
            msg_burst: 20,
            login_failures: 5,
            queue_lines: 1024,
            max_connections: 10_000,
            max_line: 4096,
            write_timeout: Duration::from_secs(10),
            max_handshakes: 256,
            max_unauthenticated: 1024,
            idle_timeout: Duration::from_secs(1800),
            line_rate: 50,
            line_burst: 200,
            max_rooms: 1000,
            rooms_per_user: 20,
            register_burst: 300,
            register_rate: 2,
            registration_open: true,
            room_password_failures: 5,
            queue_bytes: 1_048_576,
            mailbox: 1000,
            history_keep: 10_000,
            moderation_keep: 100_000,
            web: true,
            status_token: None,
            http_head_timeout: Duration::from_secs(10),
            http_idle_timeout: MAX_HTTP_IDLE,
            clock: crate::clock::Clock::system(),
        }
    }
}

impl Config {
    /// The store in use: `--store`, or SQLite in `--db`'s file.
    pub fn store_spec(&self) -> StoreSpec {
        self.store
            .clone()
            .unwrap_or_else(|| StoreSpec::Sqlite(self.db_path.clone()))
    }

    /// Checks the values that would make the server misbehave rather than
    /// merely be strict.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the option and the value, e.g.
    /// `config: --queue-lines must be at least 1, got 0`.
    pub fn validate(&self) -> Result<()> {
        /// `value` ≥ `min`; `why` (if not empty) says where `min` comes from.
        fn at_least(name: &str, value: u64, min: u64, why: &str) -> Result<()> {
            if value < min {
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                };
                return Err(Error::Config(format!(
                    "--{name} must be at least {min}{why}, got {value}"
                )));
            }
            Ok(())
        }
        /// A time in seconds between 1 and a year: more would overflow the
        /// clock arithmetic of deadlines, and means "never" anyway.
        fn seconds(name: &str, value: Duration) -> Result<()> {
            at_least(name, value.as_secs(), 1, "")?;
            if value > MAX_TIMEOUT {
                return Err(Error::Config(format!(
                    "--{name} must be at most {} (a year), got {}",
                    MAX_TIMEOUT.as_secs(),
                    value.as_secs()
                )));
            }
            Ok(())
        }
        if let Some(id) = &self.node_id {
            crate::bus::check_node_id(id).map_err(Error::Config)?;
        }
        let (history, max_line) = (self.history as u64, self.max_line as u64);
        at_least(
            "max-line",
            max_line,
            64,
            "the longest fixed command and its LF",
        )?;
        at_least(
            "queue-lines",
            self.queue_lines as u64,
            history.saturating_add(MIN_QUEUE_SLACK as u64),
            &format!(
                "--history {history} + {MIN_QUEUE_SLACK}: a JOIN's replay must leave room for the room's messages"
            ),
        )?;
        at_least(
            "queue-bytes",
            self.queue_bytes as u64,
            max_line.saturating_mul(2),
            &format!("twice --max-line {max_line}: a longest line and its BYE must fit"),
        )?;
        at_least(
            "history-keep",
            self.history_keep as u64,
            history,
            &format!("--history {history}: the database keeps at least what a JOIN replays"),
        )?;
        seconds("node-ttl", self.node_ttl)?;
        for (name, value) in [
            ("moderation-keep", self.moderation_keep as u64),
            ("max-connections", self.max_connections as u64),
            ("max-handshakes", self.max_handshakes as u64),
            ("max-unauthenticated", self.max_unauthenticated as u64),
            ("msg-rate", u64::from(self.msg_rate)),
            ("msg-burst", u64::from(self.msg_burst)),
            ("line-rate", u64::from(self.line_rate)),
            ("line-burst", u64::from(self.line_burst)),
            ("register-rate", u64::from(self.register_rate)),
            ("register-burst", u64::from(self.register_burst)),
            ("login-failures", u64::from(self.login_failures)),
            (
                "room-password-failures",
                u64::from(self.room_password_failures),
            ),
            ("mailbox", self.mailbox as u64),
        ] {
            at_least(name, value, 1, "")?;
        }
        seconds("handshake-timeout", self.handshake_timeout)?;
        seconds("login-timeout", self.login_timeout)?;
        seconds("idle-timeout", self.idle_timeout)?;
        seconds("write-timeout", self.write_timeout)?;
        seconds("http-head-timeout", self.http_head_timeout)?;
        seconds("http-idle-timeout", self.http_idle_timeout)?;
        if self.http_idle_timeout > MAX_HTTP_IDLE {
            return Err(Error::Config(format!(
                "--http-idle-timeout must be at most {} (idle browser connections hold threads), got {}",
                MAX_HTTP_IDLE.as_secs(),
                self.http_idle_timeout.as_secs()
            )));
        }
        if let Some(token) = &self.status_token {
            // Sent in a URL, a cookie and a header: letters, digits, `-`
            // and `_` only, so it never needs escaping anywhere.
            let fine = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if token.len() < MIN_TOKEN_LEN || !token.chars().all(fine) {
                return Err(Error::Config(format!(
                    "--status-token must be at least {MIN_TOKEN_LEN} characters of A-Z a-z 0-9 - _"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults are the protocol's table.
    #[test]
    fn defaults_match_the_protocol() {
        let c = Config::default();
        assert_eq!(c.max_line, 4096);
        assert_eq!(c.handshake_timeout, Duration::from_secs(10));
        assert_eq!(c.login_timeout, Duration::from_secs(60));
        assert_eq!((c.msg_burst, c.msg_rate), (20, 10));
        assert_eq!(c.login_failures, 5);
        assert_eq!(c.queue_lines, 1024);
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.history, 50);
        // Version 1.1.
        assert_eq!(c.max_handshakes, 256);
        assert_eq!(c.max_unauthenticated, 1024);
        assert_eq!(c.idle_timeout, Duration::from_secs(1800));
        assert_eq!((c.line_burst, c.line_rate), (200, 50));
        assert_eq!((c.max_rooms, c.rooms_per_user), (1000, 20));
        assert_eq!((c.register_burst, c.register_rate), (300, 2));
        assert!(c.registration_open);
        assert_eq!(c.room_password_failures, 5);
        assert_eq!(c.queue_bytes, 1_048_576);
        assert_eq!(c.mailbox, 1000);
        assert_eq!(c.history_keep, 10_000);
        c.validate().expect("defaults are valid");
    }

    /// A zero limit is refused with the option's name in the message.
    #[test]
    fn zero_queue_is_refused() {
        let c = Config {
            queue_lines: 0,
            history: 0,
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert_eq!(
            e,
            "config: --queue-lines must be at least 16 (--history 0 + 16: \
             a JOIN's replay must leave room for the room's messages), got 0"
        );
        let c = Config {
            queue_lines: 60,
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("config: --queue-lines must be at least 66 (--history 50 + 16"),
            "{e}"
        );
    }

    /// A timeout is at most a year: `Instant + u64::MAX seconds` would
    /// overflow (a panic on the first deadline), and a year is "never".
    #[test]
    fn huge_timeouts_are_refused() {
        for adjust in [
            (|c: &mut Config| c.idle_timeout = Duration::from_secs(u64::MAX)) as fn(&mut Config),
            |c| c.handshake_timeout = Duration::from_secs(400 * 24 * 3600),
            |c| c.login_timeout = Duration::from_secs(u64::MAX / 2),
        ] {
            let mut c = Config::default();
            adjust(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("must be at most 31536000 (a year)"), "{e}");
        }
        let c = Config {
            idle_timeout: MAX_TIMEOUT,
            ..Config::default()
        };
        c.validate().expect("a year is allowed");
    }

    /// The web side's options: an idle HTTP connection is let go within
    /// 15 s at most, and a given status token is long and URL-safe.
    #[test]
    fn web_options_are_checked() {
        let c = Config {
            http_idle_timeout: Duration::from_secs(16),
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("--http-idle-timeout must be at most 15"), "{e}");
        for bad in [
            "short",
            "has spaces in it, long enough",
            "semi;colon-0123456789",
        ] {
            let c = Config {
                status_token: Some(bad.into()),
                ..Config::default()
            };
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.contains("--status-token must be at least 16"),
                "{bad}: {e}"
            );
        }
        let c = Config {
            status_token: Some("a-good_Token-0123".into()),
            ..Config::default()
        };
        c.validate().expect("a good token");
    }
}
