//! A multi-room TLS chat server and its terminal client, built the way the
//! course teaches it: one OS thread per client, blocking I/O, rustls for TLS,
//! SQLite for what must survive a restart.
//!
//! The wire protocol is a line protocol (like SMTP or IRC): see
//! `docs/PROTOCOL.md`. A teacher runs `cargo run --release --bin server`;
//! students connect with the client, or with `openssl s_client`.
//!
//! # Layout
//!
//! Bytes → lines → commands → effects, one layer per module:
//!
//! - [`protocol`]: the pure protocol: line splitting, command parsing, name
//!   and text rules, the rendering of every server line. No sockets, no
//!   clock, no database.
//! - [`server`]: the accept loop and per-connection threads; `hub` (rooms,
//!   users, broadcast), `rate_limit` (pure limiters).
//! - [`db`]: the store (SQLite, or PostgreSQL shared by several nodes), the
//!   database thread that owns its connection, and the handle other threads
//!   use to ask it things.
//! - [`bus`]: what several server nodes tell each other through Redis
//!   (`--bus`); a single server needs none.
//! - [`auth`]: password hashing (argon2id) and verification, including the
//!   Python original's SHA-256 hashes.
//! - [`tls`]: certificates, chains and keys, expiry, mutual TLS, rustls
//!   configs, `--generate-cert`, the handshake with a deadline
//!   (`server::reload` swaps the config on SIGHUP).
//! - [`accounts`]: accounts made and changed from the server's command
//!   line (`server user add | passwd | admin | list | import`), for a
//!   server whose registration is closed and for the admin role.
//! - [`config`]: every limit, with its default and why.
//! - [`clock`]: the server's clock, which tests can move forward to see a
//!   ban or a suspension end.
//! - [`error`]: the library's error type.
//! - [`oneshot`]: the reply channel a thread waits on for one answer.
//! - [`doorbell`]: the queue a writer thread or the database thread sleeps
//!   on without spinning, woken with one system call.
//! - [`client`]: the terminal client: a pure menu state machine, the network
//!   thread, and the UI loop that alone owns the terminal.
//! - [`web`]: the same port for browsers (ALPN `http/1.1`): the web
//!   client, protocol v1 over WebSocket, the teacher's status page and
//!   `/metrics`.
//! - [`i18n`]: every sentence the client shows, in English and Brazilian
//!   Portuguese.
//!
//! # Threads
//!
//! ```text
//!  accept loop ──spawn──▶ conn-N-tls: TLS handshake; starts the two below, then ends
//!                         conn-N: read lines, run commands ──try_send──▶ outboxes
//!                         conn-N-writer: outbox → TLS records → socket
//!                         (a browser, ALPN http/1.1: conn-N-http serves HTTP; after a
//!                          WebSocket upgrade it is that client's reader, with a writer as above)
//!  db: owns SQLite; others send it requests with a reply channel
//!  hash-0..3: argon2; connection threads send requests with a reply channel
//! ```
//!
//! Why a thread per client when async exists? Because each client's story
//! reads top to bottom in one function (`server::connection`), blocking
//! calls are easy to reason about, and the costs are known: two threads per
//! client, a 256 KiB stack reservation each (of which about 12 and 8 KiB
//! are ever touched), four memory maps per thread. At default Linux limits that is
//! about 8,000 clients; `docs/ARCHITECTURE.md` says how to raise them.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accounts;
pub mod auth;
pub mod bus;
pub mod client;
pub mod clock;
pub mod config;
pub mod db;
pub mod doorbell;
pub mod error;
pub mod i18n;
pub mod oneshot;
pub mod protocol;
pub mod server;
pub mod tls;
pub mod web;

pub use config::Config;
pub use error::{Error, Result};
