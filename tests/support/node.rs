//! One server node of a multi-node test: this build's `server` binary as a
//! child process, so that a test can run several of them side by side
//! (sharing a bus and a store through the options it passes), kill one
//! with `SIGKILL` as a crash would, or stop one with `SIGTERM`, and watch
//! each one's log. An in-process [`super::TestServer`] cannot be killed
//! without killing the test, and it shares the test's process with every
//! other node, so only a separate process tells whether nodes really share
//! nothing but the bus and the store.
//!
//! Each node listens on `127.0.0.1:0` (the port is read from its
//! `listening on` line) with the test PKI's certificate and `--fast-hash`,
//! and logs at `info` on stderr, which a thread reads line by line
//! ([`super::log_lines`]) so the child never blocks on a full pipe.
//! Clients connect with [`super::TestClient::connect`] on [`Node::addr`].

#![allow(dead_code)] // each test file uses a different part of this module

use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{listening_addr, log_lines, pki, send_signal, TestClient, WAIT};

/// A running server node. Dropping it kills the process (`SIGKILL`), so
/// that a failing test leaves no server behind.
pub struct Node {
    /// The process (already reaped after [`Node::kill9`] or [`Node::stop`]).
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log lines (stderr), as they come.
    pub logs: mpsc::Receiver<String>,
    /// Holds its SQLite database (`--db`) unless the test gave its own.
    _dir: tempfile::TempDir,
}

/// Starts this build's server with `--addr 127.0.0.1:0 --fast-hash`, the
/// test PKI's `--cert` and `--key`, a `--db` in a temporary directory of its
/// own (unless `args` has a `--db`), and then `args` (e.g. `--bus`,
/// `--store`, `--node-id`); waits until it listens.
///
/// # Panics
///
/// When the binary does not start, or logs no `listening on` line within
/// [`WAIT`] (its log so far is in the message). Only the chat package's
/// tests build the `server` binary.
pub fn server_node(args: &[&str]) -> Node {
    // `option_env!`: this module is shared with the load generator's
    // tests, a package that has no `server` binary of its own.
    let Some(binary) = option_env!("CARGO_BIN_EXE_server") else {
        panic!("server_node is for the chat package's tests, which build the server");
    };
    let dir = tempfile::tempdir().expect("a temporary directory for the node");
    let mut cmd = Command::new(binary);
    cmd.args(["--addr", "127.0.0.1:0", "--fast-hash"])
        .arg("--cert")
        .arg(&pki().cert)
        .arg("--key")
        .arg(&pki().key);
    let has_db = args.iter().any(|a| *a == "--db" || a.starts_with("--db="));
    if !has_db {
        cmd.arg("--db").arg(dir.path().join("chat.db"));
    }
    let mut child = cmd
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server binary");
    let logs = log_lines(&mut child);
    let addr = listening_addr(&logs);
    Node {
        child,
        addr,
        logs,
        _dir: dir,
    }
}

impl Node {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection that has read `HELLO`.
    pub fn connect(&self) -> TestClient {
        let mut c = TestClient::connect(self.addr);
        c.expect_prefix("HELLO 1 ");
        c
    }

    /// `kill -9`, as a crash: no goodbye to clients, to the bus or to the
    /// store. Waits until the process is gone.
    pub fn kill9(&mut self) {
        // Fails only if it already exited and was reaped: gone either way.
        let _ = self.child.kill();
        self.child.wait().expect("reap the server");
    }

    /// `SIGTERM`, the graceful shutdown, and waits (at most [`WAIT`]) for
    /// the process to exit; returns its status.
    ///
    /// # Panics
    ///
    /// When it does not exit in time.
    pub fn stop(&mut self) -> ExitStatus {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status;
        }
        send_signal(&self.child, "-TERM");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {WAIT:?} of SIGTERM"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits, at most [`WAIT`], for a log line containing `needle` and
    /// returns it; the lines before it are consumed.
    pub fn wait_for_log(&self, needle: &str) -> String {
        super::wait_for_log(&self.logs, needle)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
