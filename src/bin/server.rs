//! `server`: parse the options, load the certificate, bind the port, turn
//! Ctrl-C / SIGTERM into the server's shutdown signal and SIGHUP into a
//! certificate reload, and run. `--generate-cert` instead writes a fresh
//! self-signed certificate and key, and exits; `server user ...` makes or
//! changes accounts in `--db` (`add`, `passwd`, `admin`, `list`, `import`:
//! for `--registration closed` and the admin role), and exits.
//!
//! Everything else is in the library (`chat::server`); this file only wires
//! the outside world to it and turns a failure into one line on stderr and
//! a non-zero exit status.

use std::io::{self, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use chat::bus::BusSpec;
use chat::db::StoreSpec;
use chat::server::{self, ServerTls, Shutdown};
use chat::tls::{self, TlsFiles};
use chat::{Config, Error, Result};

/// The chat server: TLS on port 12345, accounts and rooms in SQLite.
//
// No `about` in `#[command]`: that would print the package's description
// at the top of `--help`; without it clap uses this item's doc comment.
#[derive(Debug, Parser)]
#[command(version, long_about = None)]
struct Options {
    /// Instead of serving: work on the database and exit.
    #[command(subcommand)]
    command: Option<Tool>,
    /// Address and port to listen on (port 0 picks a free one; the log says which).
    #[arg(long, default_value = "0.0.0.0:12345")]
    addr: String,
    /// The certificate chain (PEM): the leaf first, then any intermediates.
    #[arg(long, default_value = "cert.pem")]
    cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, default_value = "key.pem")]
    key: PathBuf,
    /// Mutual TLS: only clients with a certificate signed by the CA in FILE get in.
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// Write a new self-signed ECDSA P-256 certificate and key to --cert and --key, then exit.
    #[arg(long)]
    generate_cert: bool,
    /// With --generate-cert: a DNS name or IP address for the certificate (repeat for more;
    /// default: localhost, 127.0.0.1, ::1).
    #[arg(long, value_name = "NAME", requires = "generate_cert")]
    san: Vec<String>,
    /// With --generate-cert: days the certificate is valid.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 365,
        requires = "generate_cert"
    )]
    days: u32,
    /// With --generate-cert: overwrite existing --cert and --key files.
    #[arg(long, requires = "generate_cert")]
    force: bool,
    /// The SQLite database; created if missing (not by `user passwd|admin|list`), migrated if
    /// made by the Python original.
    #[arg(long, default_value = "chat.db", global = true)]
    db: PathBuf,
    /// Where accounts, rooms, history and stored DMs live: sqlite:PATH (default: --db's file)
    /// or postgres://USER@HOST:PORT/DB, which several nodes may share (docs/SCALING.md).
    #[arg(long, value_name = "STORE")]
    store: Option<StoreSpec>,
    /// What rooms are shared through: local (default, one server) or redis://HOST:PORT/,
    /// which several nodes may share (docs/SCALING.md).
    #[arg(long, value_name = "BUS", default_value = "local")]
    bus: BusSpec,
    /// This node's name on a shared bus (default: host name and process id).
    #[arg(long, value_name = "NAME")]
    node_id: Option<String>,
    /// Seconds a node on a shared bus counts as alive without a beat; a crashed node's users
    /// are shown as gone within 1.2 times this.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    node_ttl: u64,
    /// Messages of a room replayed on JOIN.
    #[arg(long, default_value_t = 50)]
    history: usize,
    /// Cheap password hashing, for tests and benchmarks only (never production).
    #[arg(long)]
    fast_hash: bool,
    /// Seconds a TLS handshake may take.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    handshake_timeout: u64,
    /// Seconds a connection may stay without logging in.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    login_timeout: u64,
    /// SAY and DM per second per connection, after the burst.
    #[arg(long, default_value_t = 10)]
    msg_rate: u32,
    /// SAY and DM allowed at once per connection.
    #[arg(long, default_value_t = 20)]
    msg_burst: u32,
    /// Failed logins per user name per minute before that name is refused for a minute.
    #[arg(long, default_value_t = 5)]
    login_failures: u32,
    /// Lines waiting for one client before it is dropped as a slow consumer.
    #[arg(long, default_value_t = 1024)]
    queue_lines: usize,
    /// Connections served at once; the next gets BYE TOO_MANY_CONNECTIONS.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Longest line a client may send, in bytes, LF included.
    #[arg(long, default_value_t = 4096, value_name = "BYTES")]
    max_line: usize,
    /// TLS handshakes in progress at once; more wait in the listen queue.
    #[arg(long, default_value_t = 256)]
    max_handshakes: usize,
    /// Connections not logged in at once; the next gets BYE TOO_MANY_CONNECTIONS.
    #[arg(long, default_value_t = 1024)]
    max_unauthenticated: usize,
    /// Seconds a logged-in client may send nothing (PING counts) before BYE IDLE.
    #[arg(long, default_value_t = 1800, value_name = "SECS")]
    idle_timeout: u64,
    /// Lines of any command per second per connection, after the burst.
    #[arg(long, default_value_t = 50)]
    line_rate: u32,
    /// Lines of any command allowed at once per connection.
    #[arg(long, default_value_t = 200)]
    line_burst: u32,
    /// Rooms in all; then CREATE gets ERR TOO_MANY_ROOMS.
    #[arg(long, default_value_t = 1000)]
    max_rooms: usize,
    /// Rooms one account may own (its creator owns a room).
    #[arg(long, default_value_t = 20)]
    rooms_per_user: usize,
    /// Registrations allowed at once, server-wide.
    #[arg(long, default_value_t = 300)]
    register_burst: u32,
    /// Registrations per second, server-wide, after the burst.
    #[arg(long, default_value_t = 2)]
    register_rate: u32,
    /// Whether REGISTER is open; when closed, accounts come from `server user add`.
    #[arg(long, value_enum, default_value_t = Registration::Open)]
    registration: Registration,
    /// Wrong room passwords per user per room per minute before RATE_LIMITED.
    #[arg(long, default_value_t = 5)]
    room_password_failures: u32,
    /// Bytes waiting for one client before it is dropped as a slow consumer.
    #[arg(long, default_value_t = 1_048_576, value_name = "BYTES")]
    queue_bytes: usize,
    /// Direct messages stored for one offline user; then ERR MAILBOX_FULL.
    #[arg(long, default_value_t = 1000)]
    mailbox: usize,
    /// Messages kept in the database per room (the newest).
    #[arg(long, default_value_t = 10_000)]
    history_keep: usize,
    /// Rows kept in the database's moderation log (the newest).
    #[arg(long, default_value_t = 100_000)]
    moderation_keep: usize,
    /// Serve browsers on the same port (ALPN http/1.1): the web client, /status, /metrics.
    #[arg(long, value_enum, default_value_t = Web::On)]
    web: Web,
    /// The token of /status, /status.json and /metrics (default: a random one per start,
    /// logged as the status page's address). At least 16 of A-Z a-z 0-9 - _.
    #[arg(long, value_name = "TOKEN")]
    status_token: Option<String>,
    /// Seconds an HTTP request head may take to arrive, from its first byte.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    http_head_timeout: u64,
    /// Seconds a kept-alive HTTP connection may wait for its next request (at most 15).
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    http_idle_timeout: u64,
}

/// `--web`: serve browsers on the chat port too?
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Web {
    /// Offer ALPN `http/1.1`: browsers get HTTP and WebSocket (the default).
    On,
    /// Offer no ALPN: every connection is a line-protocol client.
    Off,
}

/// The subcommands: jobs on the database that run and exit.
#[derive(Debug, Subcommand)]
enum Tool {
    /// Accounts.
    User {
        /// What to do.
        #[command(subcommand)]
        action: UserAction,
    },
}

/// `server user ...`: each works on `--db`, safely while the server runs;
/// a running server sees the change at the user's next login.
#[derive(Debug, Subcommand)]
enum UserAction {
    /// Create an account. The password is asked twice without echo at a
    /// terminal, or read as one line from standard input when piped.
    Add {
        /// The user name (1-32 of A-Z a-z 0-9 _ - .).
        name: String,
    },
    /// Set a new password for an account (asked as for `add`).
    Passwd {
        /// The user name, in any letter case.
        name: String,
    },
    /// Grant or remove the admin role (moderation of every room).
    Admin {
        /// The user name, in any letter case.
        name: String,
        /// `on` grants the role, `off` removes it.
        role: Role,
        /// Remove the role even from the last admin.
        #[arg(long)]
        force: bool,
    },
    /// Print every account as CSV: name,admin,created,suspended_until.
    List,
    /// Create the accounts of a roster file (CSV: `name` or `name,password`
    /// per row, an optional header); print name,password,status as CSV.
    /// Rows without a password get a random one of 12 characters. One bad
    /// row refuses the whole file (nothing is created).
    Import {
        /// The roster file (CSV, UTF-8).
        roster: PathBuf,
    },
}

/// `server user admin NAME on|off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    /// Grant the admin role.
    On,
    /// Remove the admin role.
    Off,
}

/// `--registration`: may clients create accounts?
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Registration {
    /// `REGISTER` works (the default).
    Open,
    /// `REGISTER` gets `ERR REGISTRATION_CLOSED`.
    Closed,
}

impl Options {
    /// The library's config from the options.
    fn config(&self) -> Config {
        Config {
            db_path: self.db.clone(),
            store: self.store.clone(),
            bus: self.bus.clone(),
            node_id: self.node_id.clone(),
            node_ttl: Duration::from_secs(self.node_ttl),
            history: self.history,
            fast_hash: self.fast_hash,
            handshake_timeout: Duration::from_secs(self.handshake_timeout),
            login_timeout: Duration::from_secs(self.login_timeout),
            msg_rate: self.msg_rate,
            msg_burst: self.msg_burst,
            login_failures: self.login_failures,
            queue_lines: self.queue_lines,
            max_connections: self.max_connections,
            max_line: self.max_line,
            max_handshakes: self.max_handshakes,
            max_unauthenticated: self.max_unauthenticated,
            idle_timeout: Duration::from_secs(self.idle_timeout),
            line_rate: self.line_rate,
            line_burst: self.line_burst,
            max_rooms: self.max_rooms,
            rooms_per_user: self.rooms_per_user,
            register_burst: self.register_burst,
            register_rate: self.register_rate,
            registration_open: self.registration == Registration::Open,
            room_password_failures: self.room_password_failures,
            queue_bytes: self.queue_bytes,
            mailbox: self.mailbox,
            history_keep: self.history_keep,
            moderation_keep: self.moderation_keep,
            web: self.web == Web::On,
            status_token: self.status_token.clone(),
            http_head_timeout: Duration::from_secs(self.http_head_timeout),
            http_idle_timeout: Duration::from_secs(self.http_idle_timeout),
            ..Config::default()
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let options = Options::parse();
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything that can fail, in the order a user would want to hear about it.
fn run(options: &Options) -> Result<()> {
    if options.generate_cert {
        return generate_cert(options);
    }
    if let Some(Tool::User { action }) = &options.command {
        // `server user` edits a SQLite file; with `--store sqlite:PATH`
        // that file, and never `--db`'s behind the back of a PostgreSQL
        // store.
        return match &options.store {
            None => user(action, &options.db),
            Some(StoreSpec::Sqlite(path)) => user(action, path),
            Some(spec @ StoreSpec::Postgres(_)) => Err(Error::Config(format!(
                "`server user` works on a SQLite file (--db or --store sqlite:PATH), \
                 not on {spec}: register the accounts through a server on that store"
            ))),
        };
    }
    let config = options.config();
    config.validate()?;
    // A mistyped `--addr` is an option error like the ones above: said
    // before any file is read.
    let addr = resolve(&options.addr)?;
    let files = TlsFiles {
        cert: options.cert.clone(),
        key: options.key.clone(),
        client_ca: options.client_ca.clone(),
    };
    // Refuses an expired certificate, a key of another certificate, …
    // with one line each; logs the certificate in use.
    let tls =
        ServerTls::load(files).map_err(|e| missing_tls_files(e, &options.cert, &options.key))?;
    let listener = listen(addr).map_err(|e| listen_error(addr, e))?;

    let shutdown = Shutdown::new();
    on_signals(shutdown.clone(), tls.clone())?;
    server::run_with(listener, tls, config, shutdown)
}

/// `--generate-cert`: writes a self-signed certificate and key for the
/// `--san` names (or localhost, 127.0.0.1, ::1) and says what it wrote.
fn generate_cert(options: &Options) -> Result<()> {
    let names: Vec<String> = if options.san.is_empty() {
        tls::DEFAULT_NAMES.iter().map(|n| n.to_string()).collect()
    } else {
        options.san.clone()
    };
    let generated =
        tls::generate_self_signed(&names, options.days, time::OffsetDateTime::now_utc())?;
    // `--cert mycert/cert.pem` names a folder that may not exist yet (the
    // documented way to keep the repository's own pair): make it, as
    // `mkdir -p` would.
    for path in [&options.cert, &options.key] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("create the folder {}", dir.display()), e))?;
        }
    }
    tls::write_generated(&generated, &options.cert, &options.key, options.force)?;
    // The files are written: that is the job. If nobody reads what we say
    // about them (stdout closed, piped into `head`), so be it; `println!`
    // would panic instead.
    let _ = writeln!(
        std::io::stdout(),
        "wrote {} and {} (key readable by you only): self-signed ECDSA P-256 for {}, \
         valid until {}\nstudents trust it by running the client with --cert-pin {}",
        options.cert.display(),
        options.key.display(),
        names.join(", "),
        generated.info.not_after_text(),
        options.cert.display()
    );
    Ok(())
}

/// `server user ...`: one job on the database, its result on stdout.
///
/// A result nobody reads (stdout closed, piped into `head`) is not an
/// error for the jobs that changed one account: the change is made, and
/// `println!` would panic instead. It is for `import`, whose output is
/// the only copy of the new passwords.
fn user(action: &UserAction, db: &Path) -> Result<()> {
    use chat::accounts;
    let mut stdout = std::io::stdout().lock();
    match action {
        UserAction::Add { name } => {
            let password = read_password(name, "add")?;
            let stored = accounts::add_user(db, name, &password)?;
            let _ = writeln!(stdout, "created user {stored} in {}", db.display());
        }
        UserAction::Passwd { name } => {
            // A typo in the name is said before anyone types a password.
            let stored = accounts::find_user(db, name)?;
            let password = read_password(&stored, "passwd")?;
            let stored = accounts::set_password(db, &stored, &password)?;
            let _ = writeln!(
                stdout,
                "changed the password of user {stored} in {}",
                db.display()
            );
        }
        UserAction::Admin { name, role, force } => {
            let report = accounts::set_admin(db, name, *role == Role::On, *force)?;
            let _ = writeln!(stdout, "{report} in {}", db.display());
        }
        UserAction::List => {
            let users = accounts::list_users(db)?;
            match accounts::write_user_list(&mut stdout, &users) {
                // `server user list | head`: the reader has what it wanted.
                Err(Error::Io { source, .. }) if source.kind() == ErrorKind::BrokenPipe => {}
                written => written?,
            }
        }
        UserAction::Import { roster } => import(db, roster, &mut stdout)?,
    }
    Ok(())
}

/// `server user import ROSTER`: the accounts as CSV on `out`, a summary
/// line on stderr; or, for a bad file, each bad row on stderr as
/// `ROSTER:LINE: reason` and the error, with nothing created.
fn import(db: &Path, roster: &Path, out: &mut impl Write) -> Result<()> {
    use chat::accounts::{self, RosterError, Status};
    /// Bad rows listed one by one; past these, a count.
    const LISTED: usize = 50;
    let bytes = accounts::read_roster(roster)?;
    let rows = match accounts::parse_roster(&bytes) {
        Ok(rows) => rows,
        Err(refused) => {
            if let RosterError::BadRows(bad) = &refused {
                let mut stderr = std::io::stderr().lock();
                for row in bad.iter().take(LISTED) {
                    let _ = writeln!(stderr, "{}:{}: {}", roster.display(), row.line, row.reason);
                }
                if bad.len() > LISTED {
                    let _ = writeln!(stderr, "… and {} more bad rows", bad.len() - LISTED);
                }
            }
            return Err(Error::Account(format!("{}: {refused}", roster.display())));
        }
    };
    let results = accounts::import(db, &rows)?;
    let created = results
        .iter()
        .filter(|r| r.status == Status::Created)
        .count();
    accounts::write_imported(&mut *out, &results)
        .and_then(|()| out.flush().map_err(|e| Error::io("write the passwords", e)))
        .map_err(|e| {
            Error::Account(format!(
                "{created} accounts were created in {} but their passwords could not be \
                 printed ({e}): give each a new one with `server user passwd NAME`",
                db.display()
            ))
        })?;
    // A summary for whoever sent the CSV to a file; `eprintln!` would
    // panic if stderr is closed, and the job is done by now.
    let _ = writeln!(
        std::io::stderr(),
        "imported {} into {}: {created} created, {} existed already (left untouched)",
        roster.display(),
        db.display(),
        results.len() - created
    );
    Ok(())
}

/// A password for `server user COMMAND NAME`: asked twice, without echo,
/// at a terminal; one line of standard input otherwise (a script,
/// `echo pw | server ...`).
fn read_password(name: &str, command: &str) -> Result<String> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    let read_line = || -> Result<String> {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::io("read the password from standard input", e))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    };
    if !stdin.is_terminal() {
        let password = read_line()?;
        if password.is_empty() {
            return Err(Error::Account(format!(
                "no password on standard input (give one line, e.g. \
                 `echo PASSWORD | server user {command} NAME`)"
            )));
        }
        return Ok(password);
    }
    let ask = |prompt: &str| -> Result<String> {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let _quiet = EchoOff::new();
        let answer = read_line();
        eprintln!();
        answer
    };
    let what = if command == "passwd" {
        "new password"
    } else {
        "password"
    };
    let first = ask(&format!("{what} for {name}: "))?;
    let second = ask("the same password again: ")?;
    if first != second {
        return Err(Error::Account(
            "the two passwords differ; nothing was changed: run the command again".into(),
        ));
    }
    Ok(first)
}

/// Turns the terminal's echo off while it lives, so that a password typed
/// at the prompt is not shown; the old settings come back when it drops.
struct EchoOff {
    /// The settings to restore (Unix only; elsewhere echo stays on).
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl EchoOff {
    /// Turns echo off if standard input is a terminal.
    fn new() -> EchoOff {
        #[cfg(unix)]
        {
            use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
            let saved = tcgetattr(std::io::stdin()).ok();
            if let Some(saved) = &saved {
                let mut quiet = saved.clone();
                quiet.local_flags.remove(LocalFlags::ECHO);
                let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &quiet);
            }
            EchoOff { saved }
        }
        #[cfg(not(unix))]
        EchoOff {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            use nix::sys::termios::{tcsetattr, SetArg};
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, saved);
        }
    }
}

/// Turns SIGINT (Ctrl-C) and SIGTERM into the server's shutdown signal, and
/// SIGHUP into a certificate reload. The first SIGINT/SIGTERM starts a
/// graceful stop; a second one means "now": the process exits at once,
/// without waiting for the graceful stop to finish.
#[cfg(unix)]
fn on_signals(shutdown: Shutdown, tls: ServerTls) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;

    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| Error::io("install signal handlers", e))?;
    // The handler itself only records the signal (signal-hook's pipe); this
    // thread does the work, outside the signal context. A reload reads
    // files and parses a key and certificates (rustls, x509-parser) on this
    // thread, hence a stack of 256 KiB rather than the 64 KiB that setting
    // a flag would need.
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut stops = 0;
            for signal in signals.forever() {
                if signal == SIGHUP {
                    // Logs the new certificate, or why the old one stays;
                    // the server goes on either way.
                    log::info!("signal {signal} (SIGHUP): reloading the certificate");
                    let _ = tls.reload();
                    continue;
                }
                stops += 1;
                if stops == 1 {
                    log::info!("signal {signal}: stopping (send it again to exit at once)");
                    shutdown.trigger();
                } else {
                    log::warn!("second signal: exiting now");
                    std::process::exit(130);
                }
            }
        })
        .map_err(Error::Spawn)?;
    Ok(())
}

/// Elsewhere, Ctrl-C ends the process the usual way (and there is no SIGHUP).
#[cfg(not(unix))]
fn on_signals(_shutdown: Shutdown, _tls: ServerTls) -> Result<()> {
    log::warn!("graceful shutdown on Ctrl-C is implemented for Unix only");
    Ok(())
}

/// Connections the kernel may hold for us before `accept` takes them.
/// `TcpListener::bind` asks for 128; a class that logs in at the same
/// moment (or the load generator's 256 connectors) overflows that, and a
/// dropped connection attempt is only retried by the client's kernel a full
/// second later. Linux caps the value at `net.core.somaxconn` (4096).
const LISTEN_BACKLOG: i32 = 1024;

/// Binds `addr` like `TcpListener::bind` (with `SO_REUSEADDR`, so that a
/// restarted server need not wait for old connections to time out), but
/// with a longer accept queue.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Resolves `--addr`, `HOST:PORT` (a name like `localhost:12345` is fine
/// too). A value of another form gets an error that shows the form with
/// the user's own port or host in it: `12346` and `:12346` are read as
/// "port 12346" by other programs, and a user who typed them meant that.
fn resolve(addr: &str) -> Result<SocketAddr> {
    let refuse = |what: String| Error::Config(format!("--addr {addr} {what}"));
    let examples = |port: &str| {
        format!(
            "e.g. --addr 0.0.0.0:{port} (every network interface) \
             or --addr 127.0.0.1:{port} (this machine only)"
        )
    };
    if addr.parse::<u16>().is_ok() {
        return Err(refuse(format!(
            "is a port without a host: give HOST:PORT, {}",
            examples(addr)
        )));
    }
    if let Some(port) = addr.strip_prefix(':').filter(|p| p.parse::<u16>().is_ok()) {
        return Err(refuse(format!(
            "has no host before the colon: give HOST:PORT, {}",
            examples(port)
        )));
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(refuse(format!(
            "has no port: give HOST:PORT, e.g. --addr {addr}:12345"
        )));
    };
    if host.contains(':') && !host.starts_with('[') {
        return Err(refuse(
            "has an IPv6 address without brackets: give [ADDRESS]:PORT, \
             e.g. --addr [::]:12345 (every network interface) or --addr [::1]:12345 \
             (this machine only)"
                .into(),
        ));
    }
    if port.parse::<u16>().is_err() {
        return Err(refuse(format!(
            "has no valid port (0 to 65535) after the last colon: give HOST:PORT, \
             e.g. --addr {host}:12345"
        )));
    }
    match addr.to_socket_addrs() {
        Ok(mut found) => found.next().ok_or_else(|| {
            refuse(format!(
                "resolves to no address: give an IP address instead, {}",
                examples(port)
            ))
        }),
        // The standard library refused the value itself, before asking
        // the resolver.
        Err(e) if e.kind() == ErrorKind::InvalidInput => Err(refuse(format!(
            "is not HOST:PORT ({e}): give HOST:PORT, {}",
            examples(port)
        ))),
        Err(e) => Err(refuse(format!(
            "names a host that could not be resolved ({e}): give an IP address instead, {}",
            examples(port)
        ))),
    }
}

/// The error for a port the server cannot listen on, with what to do for
/// the usual causes: the port is taken, privileged, or the address is not
/// this machine's.
fn listen_error(addr: SocketAddr, e: io::Error) -> Error {
    let port = addr.port();
    let host = match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let hint = match e.kind() {
        ErrorKind::AddrInUse => format!(
            "another program (perhaps another chat server) is using port {port}: stop it, \
             or choose another port with --addr {host}:PORT, e.g. --addr {host}:{}",
            port.checked_add(1).unwrap_or(12345)
        ),
        ErrorKind::PermissionDenied => format!(
            "ports below 1024 need administrator rights: choose a port from 1024 up, \
             e.g. --addr {host}:12345"
        ),
        ErrorKind::AddrNotAvailable => format!(
            "{host} is not an address of this machine: use --addr 0.0.0.0:{port} \
             (every network interface) or --addr 127.0.0.1:{port} (this machine only)"
        ),
        _ => return Error::io(format!("cannot listen on {addr}"), e),
    };
    // `Error::Io` prints "context: reason"; the hint follows the reason.
    Error::io(
        format!("cannot listen on {addr}"),
        io::Error::new(e.kind(), format!("{e}; {hint}")),
    )
}

/// `err`, with what to do added when it comes from a certificate or key
/// file that does not exist: usually the server was started from another
/// folder than the one that holds `cert.pem` and `key.pem`.
fn missing_tls_files(err: Error, cert: &Path, key: &Path) -> Error {
    let Error::Tls(text) = err else { return err };
    if cert.exists() && key.exists() {
        return Error::Tls(text);
    }
    // A relative path is looked up from the current folder: say which.
    let folder = if cert.is_relative() || key.is_relative() {
        std::env::current_dir()
            .map(|d| format!(" (this one is {})", d.display()))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Error::Tls(format!(
        "{text}; run the server in the folder that has {} and {}{folder}, \
         give their paths with --cert FILE --key FILE, or make a new pair with --generate-cert",
        cert.display(),
        key.display()
    ))
}
