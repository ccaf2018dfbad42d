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
