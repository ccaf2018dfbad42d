//! A throwaway `redis-server` for the multi-node tests (`--bus
//! redis://…`): one process per test, on a free loopback port, in a
//! directory of its own, keeping nothing on disk, so that tests neither
//! share state through it nor leave files or processes behind.
//!
//! Debian's `redis-server` must be on `PATH` (`.ci/run` installs it). Where
//! it is not, [`start`] says so on stderr and returns `None`, and the test
//! returns early: a laptop without Redis stays green, CI runs the test.
//!
//! Readiness is a `PING` answered with `+PONG`, asked again every few
//! milliseconds until [`super::WAIT`] runs out; never a fixed sleep. It is
//! spoken in raw RESP over a `TcpStream`, not with the `redis` crate: this
//! module is part of `tests/support`, which the load generator's tests
//! include too, and that package does not depend on `redis`.

#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::WAIT;

/// The program this module runs.
const PROGRAM: &str = "redis-server";

/// How long [`Redis::restart`] keeps trying to bind its old port (a port
/// whose connections were just killed may be briefly unusable).
const REBIND: Duration = Duration::from_secs(5);

/// Fresh ports [`start`] tries before it gives up (another process may
/// take a free port between our look at it and Redis binding it).
const PORT_TRIES: usize = 5;

/// A running `redis-server`. Dropping it kills the process and removes its
/// directory.
pub struct Redis {
    /// The process, `None` after [`Redis::kill`].
    child: Option<Child>,
    /// Its port on 127.0.0.1, the same across restarts.
    port: u16,
    /// Its working directory (`--dir`) and log file.
    dir: tempfile::TempDir,
}

/// Starts a `redis-server` on a free port of 127.0.0.1 and waits until it
/// answers `PING`. `None`, after a line on stderr, when `redis-server` is
/// not installed.
///
/// # Panics
///
/// When it is installed but does not come up in time.
pub fn start() -> Option<Redis> {
    if !on_path(PROGRAM) {
        eprintln!("skipped: redis-server not found (apt-get install redis-server)");
        return None;
    }
    let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
    let mut last_log = String::new();
    for _ in 0..PORT_TRIES {
        let port = free_port();
        let mut child = spawn(port, dir.path());
        match wait_until_ready(&mut child, port, Instant::now() + WAIT) {
            Ready::Yes => {
                return Some(Redis {
                    child: Some(child),
                    port,
                    dir,
                })
            }
            // Most likely the port was taken meanwhile: another one.
            Ready::Exited => last_log = log_tail(dir.path()),
            Ready::TimedOut => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-server on port {port} did not answer PING within {WAIT:?}; its log:\n{}",
                    log_tail(dir.path())
                );
            }
        }
    }
    panic!("redis-server did not start on any of {PORT_TRIES} free ports; its log:\n{last_log}");
}

impl Redis {
    /// The URL to give the server: `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `kill -9`, and wait until the process is gone: the bus fails the way
    /// a crashed Redis does, connections reset, nothing said. Does nothing
    /// if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 redis-server");
            child.wait().expect("reap redis-server");
        }
    }

    /// Starts Redis again on the same port, empty (it keeps nothing on
    /// disk: a restart loses every key, as a crashed cache does), killing
    /// it first if it still runs, and waits until it answers `PING`.
    /// Binding is retried for a few seconds, in case the port is not yet
    /// free again.
    ///
    /// # Panics
    ///
    /// When it does not come back in time.
    pub fn restart(&mut self) {
        self.kill();
        // Nothing should be there (`--save ""`, `--appendonly no`); make
        // "empty" true whatever a future Redis does on exit.
        let _ = std::fs::remove_file(self.dir.path().join("dump.rdb"));
        let deadline = Instant::now() + REBIND.max(WAIT);
        let bind_deadline = Instant::now() + REBIND;
        loop {
            let mut child = spawn(self.port, self.dir.path());
            match wait_until_ready(&mut child, self.port, deadline) {
                Ready::Yes => {
                    self.child = Some(child);
                    return;
                }
                Ready::Exited if Instant::now() < bind_deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                Ready::Exited => panic!(
                    "redis-server could not start again on port {} within {REBIND:?}; its log:\n{}",
                    self.port,
                    log_tail(self.dir.path())
                ),
                Ready::TimedOut => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "redis-server on port {} did not answer PING again in time; its log:\n{}",
                        self.port,
                        log_tail(self.dir.path())
                    );
                }
            }
        }
    }

    /// True while the process runs and answers `PING`.
    pub fn is_up(&self) -> bool {
        self.child.is_some() && ping(self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // `dir` is removed when its `TempDir` drops, after this.
    }
}

/// How a start went.
enum Ready {
    /// It answers `PING`.
    Yes,
    /// The process ended before answering (it could not bind, most likely).
    Exited,
    /// Still running, still not answering, at the deadline.
    TimedOut,
}

/// `redis-server` on 127.0.0.1:`port`, in the foreground, persisting
/// nothing, its working directory and log file in `dir`.
fn spawn(port: u16, dir: &Path) -> Child {
    Command::new(PROGRAM)
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(log_path(dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server")
}

/// Asks `PING` every 20 ms until it is answered, the process exits or
/// `deadline` passes.
fn wait_until_ready(child: &mut Child, port: u16, deadline: Instant) -> Ready {
    loop {
        if ping(port) {
            return Ready::Yes;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return Ready::Exited;
        }
        if Instant::now() >= deadline {
            return Ready::TimedOut;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// True if something on 127.0.0.1:`port` answers a RESP `PING` with
/// `+PONG` within a short time.
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .is_err()
        || stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err()
    {
        return false;
    }
    let mut reply = [0u8; 7];
    let mut got = 0;
    while got < reply.len() {
        match stream.read(&mut reply[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    // Anything else ("-LOADING …") means not ready yet.
    &reply == b"+PONG\r\n"
}

/// A port of 127.0.0.1 that nobody listened on a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Where Redis logs (`--logfile`).
fn log_path(dir: &Path) -> PathBuf {
    dir.join("redis.log")
}

/// The last lines of Redis's log, for a failure message.
fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(log_path(dir)).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// True if an executable file called `program` is in a directory of
/// `PATH`.
fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && executable(&m))
    })
}

/// Whether a file's mode lets anyone execute it (elsewhere than Unix: any
/// file counts).
fn executable(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}
