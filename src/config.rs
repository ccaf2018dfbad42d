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

use crate::error::{Error, Result};

/// The server's settings. `Config::default()` is what `PROTOCOL.md` specifies.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite file. Default `chat.db`, created if missing. A database
    /// made by the Python original of the course is migrated in place.
    pub db_path: PathBuf,
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
}

/// Outbox lines needed beyond `history`: the `HELP` text and a few replies.
pub const MIN_QUEUE_SLACK: usize = 16;

impl Default for Config {
    fn default() -> Self {
        Config {
            db_path: PathBuf::from("chat.db"),
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
        }
    }
}

impl Config {
    /// Checks the values that would make the server misbehave rather than
    /// merely be strict.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the option and the value, e.g.
    /// `config: --queue-lines must be at least 1, got 0`.
    pub fn validate(&self) -> Result<()> {
        fn at_least(name: &str, value: u64, min: u64) -> Result<()> {
            if value < min {
                return Err(Error::Config(format!(
                    "--{name} must be at least {min}, got {value}"
                )));
            }
            Ok(())
        }
        // A line must hold at least the longest fixed command plus LF.
        at_least("max-line", self.max_line as u64, 64)?;
        // A JOIN's history replay and a HELP are queued at once: they must
        // fit in an empty outbox, or asking for them would look like
        // being a slow consumer.
        at_least(
            "queue-lines",
            self.queue_lines as u64,
            self.history as u64 + MIN_QUEUE_SLACK as u64,
        )?;
        at_least("max-connections", self.max_connections as u64, 1)?;
        at_least("msg-rate", u64::from(self.msg_rate), 1)?;
        at_least("msg-burst", u64::from(self.msg_burst), 1)?;
        at_least("login-failures", u64::from(self.login_failures), 1)?;
        at_least("handshake-timeout", self.handshake_timeout.as_secs(), 1)?;
        at_least("login-timeout", self.login_timeout.as_secs(), 1)?;
        at_least("max-handshakes", self.max_handshakes as u64, 1)?;
        at_least("max-unauthenticated", self.max_unauthenticated as u64, 1)?;
        at_least("idle-timeout", self.idle_timeout.as_secs(), 1)?;
        at_least("line-rate", u64::from(self.line_rate), 1)?;
        at_least("line-burst", u64::from(self.line_burst), 1)?;
        at_least("register-rate", u64::from(self.register_rate), 1)?;
        at_least("register-burst", u64::from(self.register_burst), 1)?;
        at_least(
            "room-password-failures",
            u64::from(self.room_password_failures),
            1,
        )?;
        // One longest line (and its `BYE`) must always fit.
        at_least(
            "queue-bytes",
            self.queue_bytes as u64,
            2 * self.max_line as u64,
        )?;
        at_least("mailbox", self.mailbox as u64, 1)?;
        // The database keeps at least what a `JOIN` replays.
        at_least(
            "history-keep",
            self.history_keep as u64,
            self.history as u64,
        )?;
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
        assert_eq!(e, "config: --queue-lines must be at least 16, got 0");
        let c = Config {
            queue_lines: 60,
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert_eq!(e, "config: --queue-lines must be at least 66, got 60");
    }
}
