//! A real PostgreSQL for the tests: a fresh cluster in a temporary
//! directory, on a free port of 127.0.0.1, started with Debian's own
//! binaries (`initdb`, `pg_ctl`) and removed when the test ends.
//!
//! No mock stands in for PostgreSQL: what the store must get right (one
//! winner when two nodes race for a name, limits counted under a lock, a
//! connection lost and found again) is exactly what a mock would get
//! wrong. When the binaries are not installed, [`start`] prints
//! `skipped: <reason>` to stderr and returns `None`, and the test returns
//! early: the suite stays green on a machine without PostgreSQL and says
//! why it did less.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (a
//! container), every PostgreSQL command runs as the `postgres` system user
//! (`runuser -u postgres --`), in a directory handed over to that user.
//!
//! Nothing here sleeps to wait: `pg_ctl -w` polls the server itself, and
//! [`Postgres::wait_ready`] polls `pg_isready` until a deadline.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long starting or stopping the server may take before the test fails.
pub const PG_WAIT: Duration = Duration::from_secs(30);

/// The database the tests' stores use (made by [`start`]).
pub const DATABASE: &str = "chat";

/// The superuser the cluster is made with, and whom the URLs name.
pub const USER: &str = "chat";

/// A running PostgreSQL cluster, stopped and removed on drop.
pub struct Postgres {
    /// `initdb`, `pg_ctl`, `pg_isready`.
    bindir: PathBuf,
    /// Holds the directory: the data, the socket and the log.
    dir: tempfile::TempDir,
    /// The port on 127.0.0.1.
    port: u16,
    /// Whether commands run as the `postgres` system user (we are root).
    as_postgres: bool,
}

/// Starts a fresh cluster with a database [`DATABASE`], or returns `None`
/// after printing `skipped: <reason>` if PostgreSQL is not installed.
///
/// # Panics
///
/// If PostgreSQL is installed but cannot be set up or started: that is a
/// failure, not a reason to skip.
pub fn start() -> Option<Postgres> {
    let Some(bindir) = find_bindir() else {
        eprintln!(
            "skipped: PostgreSQL's initdb and pg_ctl were not found under \
             /usr/lib/postgresql/*/bin, pg_config --bindir or PATH \
             (Debian: apt-get install postgresql)"
        );
        return None;
    };
    let as_postgres = is_root();
    if as_postgres && !user_exists("postgres") {
        eprintln!("skipped: running as root and there is no `postgres` user to run PostgreSQL as");
        return None;
    }
    // As root, in /tmp rather than $TMPDIR: the `postgres` user must be
    // able to reach the directory, not only own it.
    let mut builder = tempfile::Builder::new();
    builder.prefix("chat-pg-");
    let dir = if as_postgres && Path::new("/tmp").is_dir() {
        builder.tempdir_in("/tmp")
    } else {
        builder.tempdir()
    }
    .expect("a temporary directory");
    if as_postgres {
        check(
            Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(dir.path())
                .output(),
            "chown the temporary directory to postgres",
        );
    }
    let mut pg = Postgres {
        bindir,
        dir,
        port: 0,
        as_postgres,
    };
    let initdb = pg
        .command("initdb")
        .arg("-D")
        .arg(pg.data())
        .args(["-U", USER, "--auth=trust", "--no-sync", "-E", "UTF8"])
        .args(["--locale=C"])
        .output();
    check(initdb, "initdb");
    // A free port, as the kernel gives one; another process could take it
    // before PostgreSQL binds it, so a failed start tries another.
    let mut last = String::new();
    for _ in 0..3 {
        pg.port = free_port();
        match pg.pg_ctl_start() {
            Ok(()) => {
                pg.create_database();
                return Some(pg);
            }
            Err(e) => last = e,
        }
    }
    panic!("PostgreSQL would not start: {last}");
}

impl Postgres {
    /// `postgres://chat@127.0.0.1:PORT/chat`: what `--store` takes.
    pub fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    /// The URL of another database of the same cluster.
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections are closed,
    /// everything committed is kept), and waits until it has stopped.
    pub fn stop(&self) {
        let output = self
            .pg_ctl()
            .args(["stop", "-m", "fast", "-w", "-t"])
            .arg(PG_WAIT.as_secs().to_string())
            .output();
        check(output, "pg_ctl stop");
    }

    /// Starts the stopped server again: same data, same port.
    pub fn start_again(&self) {
        if let Err(e) = self.pg_ctl_start() {
            panic!("PostgreSQL would not start again: {e}");
        }
    }

    /// Runs SQL as the superuser with `psql` on database `database`;
    /// panics if it fails. For tests that look at the tables directly.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let output = self
            .command("psql")
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", USER, "-p"])
            .arg(self.port.to_string())
            .args(["-d", database, "-c", sql])
            .output();
        String::from_utf8_lossy(&check(output, "psql").stdout)
            .trim()
            .to_owned()
    }

    /// Waits until the server accepts connections (`pg_isready`, polled),
    /// or panics at the deadline.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + PG_WAIT;
        loop {
            let ready = self
                .command("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p"])
                .arg(self.port.to_string())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL on port {} not ready after {PG_WAIT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The data directory.
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `pg_ctl start` on our port, socket and address, waiting (`-w`)
    /// until the server is ready; then `pg_isready` to be sure.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let output = self
            .pg_ctl()
            .args(["start", "-w", "-t"])
            .arg(PG_WAIT.as_secs().to_string())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-o", &options])
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if !output.status.success() {
            let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
            return Err(format!(
                "pg_ctl start: {}{}\n{log}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        self.wait_ready();
        Ok(())
    }

    /// Creates [`DATABASE`] (the server expects it to exist).
    fn create_database(&self) {
        self.psql("postgres", &format!("CREATE DATABASE {DATABASE}"));
    }

    /// `pg_ctl -D <data>`.
    fn pg_ctl(&self) -> Command {
        let mut command = self.command("pg_ctl");
        command.arg("-D").arg(self.data());
        command
    }

    /// A command of the PostgreSQL binaries, run as `postgres` if we are
    /// root, with no `PG*` variables of ours leaking in.
    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                command.env_remove(key);
            }
        }
        command.current_dir(self.dir.path());
        command
    }
}

impl Drop for Postgres {
    /// Stops the server at once (`-m immediate`: nothing is left to keep)
    /// and lets the temporary directory go.
    fn drop(&mut self) {
        let _ = self
            .pg_ctl()
            .args(["stop", "-m", "immediate", "-w", "-t"])
            .arg(PG_WAIT.as_secs().to_string())
            .output();
    }
}

/// The directory of `initdb` and `pg_ctl`: the newest
/// `/usr/lib/postgresql/*/bin` (Debian keeps them off PATH), else
/// `pg_config --bindir`, else wherever PATH has `initdb`.
fn find_bindir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let bin = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_both(&bin) {
            return Some(bin);
        }
    }
    std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find(|dir| has_both(dir)))
}

/// Whether this process runs as root (`id -u` says 0).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether a system user of that name exists.
fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The output of a command that must succeed; panics with its stderr.
fn check(output: std::io::Result<Output>, what: &str) -> Output {
    let output = output.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
