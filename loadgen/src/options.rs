//! The options every scenario shares: how many worker threads, whether to
//! show progress, which server processes to sample and how to name the
//! users and rooms; and, for the scenarios that set up connections a batch
//! at a time, the batch size and how long setup may take.
//!
//! Each scenario config embeds these ([`EngineOptions`] as `engine`,
//! [`SetupOptions`] as `setup`), so the defaults live in one place.

use std::time::Duration;

use super::clock;
use super::proc::{self, ProcSample};

/// Worker threads, progress, the server's pids and the name prefix.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Worker threads (each an event loop over many connections).
    pub threads: usize,
    /// Show a progress line on stderr.
    pub progress: bool,
    /// The server's pid, to read its RSS, threads and CPU time from
    /// `/proc` (each scenario reports what it needs); several for several
    /// server nodes, whose figures are added up as one server's. Empty:
    /// nothing is read.
    pub server_pids: Vec<u32>,
    /// Prefix of user and room names; a fresh `lg<run id>` when `None`.
    pub prefix: Option<String>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: 2,
            progress: false,
            server_pids: Vec::new(),
            prefix: None,
        }
    }
}

impl EngineOptions {
    /// The name prefix: [`EngineOptions::prefix`], or a fresh `lg<run id>`.
    pub fn name_prefix(&self) -> String {
        self.prefix
            .clone()
            .unwrap_or_else(|| format!("lg{}", clock::run_id()))
    }

    /// The server's resources now, added up over the
    /// [`EngineOptions::server_pids`], if `/proc` knows every one of them
    /// (see [`proc::sample_all`]).
    pub fn sample_server(&self) -> Option<ProcSample> {
        proc::sample_all(&self.server_pids)
    }

    /// The resident KiB of the server's thread stacks now, added up over
    /// the pids (see [`proc::stacks_kib`]): slower than
    /// [`EngineOptions::sample_server`] (a file per thread), so only for
    /// the capacity scenario.
    pub fn server_stacks_kib(&self) -> Option<u64> {
        proc::stacks_kib_all(&self.server_pids)
    }
}

/// How connections are set up: a batch per worker at a time, within a
/// time limit.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// Connections per worker being set up at once.
    pub connect_batch: usize,
    /// Longest wait for every client to log in and join.
    pub setup_timeout: Duration,
}

impl Default for SetupOptions {
    fn default() -> Self {
        SetupOptions {
            connect_batch: 64,
            setup_timeout: Duration::from_secs(120),
        }
    }
}
