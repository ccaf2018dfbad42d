//! The load generator: many protocol-v1 clients over TLS, driven from a few
//! threads, measuring what the server delivers and losing count of nothing.
//!
//! A package of its own in the repository's workspace, depending on the
//! server's library (`chat`): its TLS client configuration, its reply
//! parser, its error type. So building the server or the client compiles
//! none of the crates used only here (mio, hdrhistogram, serde, plotters).
//!
//! `cargo run --release --bin loadgen -- <scenario> ...` runs one of:
//!
//! - [`fanout`]: rooms × members, some members sending (at a rate, or flat
//!   out with a window of messages in flight); deliveries per second, every
//!   loss with its sequence gaps, latency percentiles.
//! - [`capacity`]: thousands of logged-in clients held idle; how many stay
//!   alive, and the server's memory and threads per connection.
//! - [`logins`]: connect + TLS + `REGISTER` + `LOGIN` + `QUIT` in a loop;
//!   cycles per second and their latency.
//! - [`sweep`]: fanout in one room of growing size, with an SVG chart.
//! - [`rate_sweep`]: fanout in the same rooms at a rising send rate; the
//!   server's CPU per delivery and the p99 latency, with an SVG chart.
//! - [`chart`]: the two-panel SVG chart both sweeps draw.
//! - [`flood`]: connections flooding `REGISTER` while one client logs in;
//!   that login's latency and the server's memory.
//!
//! # Layout
//!
//! - [`engine`]: the event loop (mio) that each worker thread runs over its
//!   share of the connections, and the `Session` trait scenarios implement.
//! - [`conn`]: one non-blocking TLS connection (rustls, `tlsclient-mio`
//!   style) and the [`Target`] it connects to: one server, or several
//!   nodes over which the clients are spread round robin by their index.
//! - [`ws`]: protocol v1 over WebSocket for a connection (`--transport
//!   ws`): tungstenite's upgrade and frames over an in-memory stream.
//! - [`options`]: what every scenario config shares ([`EngineOptions`]:
//!   threads, progress, server pids (several nodes add up), name prefix; [`SetupOptions`]: batches
//!   and the setup time limit), with their defaults in one place.
//! - [`script`]: the setup commands and which replies count as success.
//! - [`accounting`]: pure bookkeeping: per-sender sequence tracking, the
//!   latency histogram, the message stamp format.
//! - [`clock`]: the process-wide monotonic clock that stamps messages.
//! - [`proc`]: the server's RSS, threads and CPU from `/proc`, summed
//!   over several nodes.
//! - [`progress`], [`report`]: the stderr progress line and the summary
//!   tables (the reports are also `serde::Serialize`, for `--json`).
//!
//! # Threads
//!
//! ```text
//!  main ── phases (atomics), progress, report
//!   ├─ loadgen-0: mio Poll over connections 0, T, 2T, …
//!   └─ loadgen-1: mio Poll over connections 1, T+1, …
//! ```
//!
//! A connection and everything about it (TLS state, sequence trackers)
//! lives on one worker thread; workers share only counters they publish
//! once per loop turn and the phase they read. So the load generator takes
//! no lock per message, and its cost per delivery is decrypting and
//! scanning one line.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accounting;
pub mod capacity;
pub mod chart;
pub mod clock;
pub mod conn;
pub mod engine;
pub mod fanout;
pub mod flood;
pub mod logins;
pub mod options;
pub mod proc;
pub mod progress;
pub mod rate_sweep;
pub mod report;
pub mod script;
pub mod sweep;
pub mod ws;

pub use capacity::{CapacityConfig, CapacityReport};
pub use conn::Target;
pub use fanout::{FanoutConfig, FanoutReport};
pub use flood::{RegisterFloodConfig, RegisterFloodReport};
pub use logins::{LoginsConfig, LoginsReport};
pub use options::{EngineOptions, SetupOptions};
pub use rate_sweep::RateSweepReport;
pub use sweep::SweepReport;
