//! The library's one error type.
//!
//! Every fallible function of the library returns [`Result<T>`]. Each variant
//! names one *cause* and its `Display` text starts with the layer it comes
//! from ("tls: …", "db: …", "config: …"), lowercase, so that the binaries can
//! print it as the single line a user sees (`error: tls: cannot read
//! cert.pem: No such file or directory`).
//!
//! Errors a *client* makes are not here: they are protocol replies
//! (`ERR <CODE>`), chosen in `server::commands`. This type is for the
//! server's and the client's own failures: a file that cannot be read, a
//! database that cannot be opened, a socket that broke.

use std::fmt;
use std::io;

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, one variant per cause.
#[derive(Debug)]
pub enum Error {
    /// A socket or file operation failed; the string says what we were doing.
    Io {
        /// What we were doing, e.g. "bind 0.0.0.0:12345".
        context: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// Loading certificates or keys, building a TLS config, or a handshake.
    Tls(String),
    /// The database could not be opened, migrated, read or written.
    Db(String),
    /// A bad option value, found before anything starts.
    Config(String),
    /// A command-line job on accounts was refused (a name that is taken or
    /// invalid, a password that breaks the rules); the text says why.
    Account(String),
    /// Hashing a password failed (out of memory for argon2, bad parameters).
    Hash(String),
    /// A thread could not be spawned (the process is at its thread limit).
    Spawn(io::Error),
}

impl Error {
    /// Wraps an I/O error with what we were doing when it happened.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Tls(msg) => write!(f, "tls: {msg}"),
            Error::Db(msg) => write!(f, "db: {msg}"),
            Error::Config(msg) => write!(f, "config: {msg}"),
            Error::Account(msg) => write!(f, "{msg}"),
            Error::Hash(msg) => write!(f, "password hash: {msg}"),
            Error::Spawn(e) => write!(f, "cannot start a thread: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Spawn(source) => Some(source),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Db(e.to_string())
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls(e.to_string())
    }
}
