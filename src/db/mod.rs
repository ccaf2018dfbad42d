//! The database: accounts, rooms, room history, stored direct messages and
//! moderation records, kept in a **store** (one SQLite file, or a
//! PostgreSQL database that several server nodes share) and reached
//! through a cloneable [`Db`] handle.
//!
//! The rest of the server sees only [`Db`]: which engine answers is decided
//! once, by [`open_store`], and lives behind the `Store` trait (`store.rs`,
//! with `sqlite.rs` and `postgres.rs` as its two implementations).
//!
//! # One owner, many handles
//!
//! A `rusqlite::Connection` may be *moved* to another thread (it is `Send`)
//! but not *shared* between threads (it is not `Sync`). Rather than put it
//! behind a mutex that thousands of connection threads would queue on, we
//! give it to one thread, the **DB thread** (`thread.rs`), and let everyone
//! else send it requests (the same goes for a PostgreSQL connection, which
//! also serves one query at a time):
//!
//! ```text
//!  conn-1 ──┐  Db::register(..)                       ┌─────────────┐
//!  conn-2 ──┼──────── bounded queue of Request ──────▶│  DB thread  │──▶ chat.db
//!  conn-3 ──┘  ◀── reply channel (one per request) ───│  (owns the  │    or
//!                                                      │   store)    │ PostgreSQL
//!                                                      └─────────────┘
//! ```
//!
//! Each request that needs an answer carries its own one-slot reply channel
//! and the caller blocks on it. The DB thread sends the answer only after
//! the transaction holding that request has been **committed**, so when
//! `register` returns `Ok`, the account is on disk: the server may then
//! send `OK REGISTER` without lying.
//!
//! # Life cycle
//!
//! [`open_store`] opens (or creates) the file, or connects to PostgreSQL,
//! migrates it to the current schema (see `schema.rs` and `pg_schema.rs`),
//! reads every room with its recent history for the
//! server's memory, and starts the thread. The thread runs until every
//! [`Db`] handle has been dropped; it then finishes what is still queued and
//! exits, and [`DbThread::join`] returns. A graceful stop therefore loses
//! nothing, not even history appended a moment before.
//!
//! # Limits (protocol 1.1)
//!
//! The disk is bounded by [`Limits`], which the DB thread enforces:
//! `--mailbox` stored DMs per recipient, `--max-rooms` rooms in all and
//! `--rooms-per-user` rooms per owner are counted inside the savepoint of
//! the insert they guard, so racing requests (two `CREATE`s, two senders
//! filling one mailbox) are counted one after the other and cannot pass a
//! limit together (on PostgreSQL, under an advisory lock held until the
//! batch commits, so that requests racing on *other nodes* cannot either); `--history-keep` messages per room are kept, the older
//! ones deleted at the end of each batch that appended to the room.
//!
//! # Stored DMs: deleted once written, delivered at least once
//!
//! A stored DM is deleted only after it has been written to its
//! recipient's socket. Delivery is therefore three steps: [`Db::claim_dms`]
//! reads a piece without deleting it, the caller queues the lines and a
//! writer marker, and when the marker says they were written,
//! [`ClaimedDms::delete`] (or [`ClaimedDms::delete_later`]) removes
//! exactly those rows. If the marker fails, the claim is dropped and
//! released: the rows stay, and come again at the next login. A crash in
//! between can therefore deliver a DM twice, never lose one.
//!
//! The claim is what keeps two deliverers (the recipient's own login, and a
//! sender that stored a DM while the recipient was logging in) from sending
//! the same row: the DB thread remembers, in memory, which rows are in
//! flight to which connection, and a claim skips the rows already in flight
//! to the same connection. A claim for *another* connection of the user
//! takes them over: a user has one session at a time, so the other one is
//! gone or being replaced, and its rows would otherwise wait for a later
//! login. The memory is lost with the process, which is right: after a
//! restart nothing is in flight.

pub mod moderation;
mod offline;
mod pg_schema;
mod postgres;
mod schema;
mod spec;
mod sqlite;
mod store;
mod thread;

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::doorbell::Sender;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::oneshot;

pub use moderation::{Action, Moderation};
pub use offline::{
    existing_user, existing_users, insert_user, insert_users, list_users, set_admin,
    set_password_hash, user_exists, AdminChange, Suspended, UserSummary,
};
pub use schema::SCHEMA_VERSION;
pub use spec::{without_password, StoreSpec};

/// How many requests may wait for the DB thread before callers block.
///
/// Bounded, like every queue in this server: if the disk is slower than the
/// clients, callers wait here (backpressure) instead of the queue eating
/// memory without limit. 4096 is far more than one batch, so under normal
/// load nobody ever waits for room in the queue.
pub const REQUEST_QUEUE_CAPACITY: usize = 4096;

/// The most requests the DB thread puts in one transaction (one fsync).
///
/// Large enough to amortise the fsync under a burst, small enough that the
/// first request of a batch does not wait long for the last one.
pub const MAX_BATCH: usize = 256;

/// Stack size of the DB thread. SQLite needs little stack; argon2 never runs
/// here. 256 KiB matches the per-client threads.
pub const DB_THREAD_STACK_SIZE: usize = 256 * 1024;

/// Stack size of the DB thread on PostgreSQL. The `postgres` crate's
/// blocking client drives the futures of `tokio-postgres` on the calling
/// thread, and those are larger than anything SQLite puts on the stack;
/// one thread per node, so the extra is nothing.
pub const PG_THREAD_STACK_SIZE: usize = 2 * 1024 * 1024;

/// How long SQLite waits for a lock held by *another process* (e.g. a
/// student's `sqlite3 chat.db` shell) before giving up with "database is
/// locked". Within this process only the DB thread touches the file.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The answer every method gives when the DB thread no longer runs (it
/// panicked, or the server is past shutdown).
const THREAD_STOPPED: &str = "database thread stopped";

/// The limits the DB thread enforces (see the module doc). Built from the
/// server's [`Config`] by [`Limits::from_config`]; the default is the
/// protocol's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// DMs stored for one recipient (`--mailbox`); one more is
    /// [`DbError::MailboxFull`].
    pub mailbox: usize,
    /// Messages kept on disk per room, the newest (`--history-keep`).
    pub history_keep: usize,
    /// Rows kept in the moderation log, the newest (`--moderation-keep`).
    pub moderation_keep: usize,
    /// Rooms in all (`--max-rooms`); one more is [`DbError::TooManyRooms`].
    pub max_rooms: usize,
    /// Rooms one account owns (`--rooms-per-user`); one more is
    /// [`DbError::TooManyRooms`].
    pub rooms_per_user: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_config(&Config::default())
    }
}

impl Limits {
    /// The limits of a server's configuration.
    pub fn from_config(config: &Config) -> Self {
        Limits {
            mailbox: config.mailbox,
            history_keep: config.history_keep,
            moderation_keep: config.moderation_keep,
            max_rooms: config.max_rooms,
            rooms_per_user: config.rooms_per_user,
        }
    }
}

/// A registered account, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The name as first registered ("Alice"), whatever case the lookup used;
    /// the server shows this spelling in every line it sends.
    pub name: String,
    /// The argon2id PHC string, or a legacy SHA-256 hex string that the
    /// caller upgrades after the next successful login.
    pub password_hash: String,
    /// Whether the account is an admin (granted by `server user admin`).
    pub admin: bool,
    /// When the account's suspension ends, in milliseconds since the epoch
    /// ([`FOREVER`] until lifted); `None` if it has none. One that has
    /// ended may still be here: the caller compares with its clock.
    pub suspended_until: Option<i64>,
}

/// The end of a ban or a suspension that lasts until lifted.
pub const FOREVER: i64 = i64::MAX;

/// A room's topic, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    /// Who set it.
    pub by: String,
    /// When, in milliseconds since the epoch.
    pub time_ms: i64,
    /// The topic.
    pub text: String,
}

/// A ban from a room, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    /// The banned account, as registered.
    pub user: String,
    /// When it ends, in milliseconds since the epoch ([`FOREVER`] until
    /// lifted). One that has ended may still be here.
    pub until_ms: i64,
    /// Who banned.
    pub by: String,
}

/// A room as loaded at start-up, with what the server needs in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// The room's row id: what its history and bans refer to.
    pub id: i64,
    /// The name as created.
    pub name: String,
    /// `None` for a public room; the hash of the room password otherwise.
    pub password_hash: Option<String>,
    /// The account that created it, as registered; `None` for a room made
    /// before rooms had owners (or whose owner's account is gone).
    pub owner: Option<String>,
    /// Its topic, if one was set.
    pub topic: Option<TopicRecord>,
    /// Its bans, ended ones included.
    pub bans: Vec<BanRecord>,
    /// The last messages (at most the `history` given to [`open`]), oldest
    /// first, ready to be replayed on `JOIN`.
    pub history: Vec<HistoryRecord>,
    /// The number for the room's next message: 1 + the highest stored, or 1
    /// for a room without messages. Keeps numbering going across restarts.
    pub next_seq: u64,
}

/// One message of a room's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    /// Position in the room's message order (1, 2, 3, …); history is
    /// ordered by it.
    pub seq: u64,
    /// When the server sent the `MSG`, in milliseconds since the Unix epoch,
    /// so `HISTORY` shows the same time the `MSG` had.
    pub time_ms: i64,
    /// The sender's name as shown in the `MSG`.
    pub user: String,
    /// The message text.
    pub text: String,
}

/// A direct message stored for a user who was offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDm {
    /// The row's id: what [`ClaimedDms`] deletes once the DM is written.
    pub id: i64,
    /// The sender's name, as shown in the `DM` line.
    pub from: String,
    /// When it was sent, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The message text.
    pub text: String,
}

/// Why a database request did not succeed.
///
/// All but the last are ordinary answers that become protocol errors
/// (`USER_EXISTS`/`ROOM_EXISTS`, `NO_SUCH_USER`, `MAILBOX_FULL`,
/// `TOO_MANY_ROOMS`); `Failed` is a server fault: the caller logs it and the
/// client gets `ERR SERVER_ERROR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// A user or room with that name (in any letter case) already exists.
    Exists,
    /// The user named in the request is not registered.
    NoSuchUser,
    /// The recipient already has [`Limits::mailbox`] stored DMs; nothing
    /// was stored.
    MailboxFull,
    /// [`Limits::max_rooms`] rooms exist, or the creator owns
    /// [`Limits::rooms_per_user`]; nothing was created.
    TooManyRooms,
    /// `UNBAN`/`UNSUSPEND` of somebody who is not banned or suspended now.
    NotFound,
    /// The store failed (SQLite, or PostgreSQL unreachable), or the DB
    /// thread is gone; the text says why. Nothing
    /// of the request remains in the database.
    Failed(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Exists => f.write_str("name already exists"),
            DbError::NoSuchUser => f.write_str("no such user"),
            DbError::MailboxFull => f.write_str("the recipient's mailbox is full"),
            DbError::TooManyRooms => f.write_str("too many rooms"),
            DbError::NotFound => f.write_str("no such ban or suspension in force"),
            DbError::Failed(msg) => write!(f, "database failed: {msg}"),
        }
    }
}

impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Failed(e.to_string())
    }
}

/// Where the DB thread sends one answer. Created with capacity 1 by the
/// caller, so the DB thread's `send` never blocks.
type Reply<T> = oneshot::Sender<Result<T, DbError>>;

/// One message to the DB thread: one variant per operation, each carrying
/// its arguments and, when the caller waits for an answer, its [`Reply`].
///
/// The fields are owned (`String`, not `&str`) because the request travels
/// to another thread and outlives the caller's borrows.
enum Request {
    /// [`Db::register`].
    Register {
        /// The name as the user typed it; stored as given.
        name: String,
        /// The argon2id hash, made on the caller's thread.
        password_hash: String,
        /// Creation time, milliseconds since the epoch.
        now_ms: i64,
        /// Gets the stored name, or `Exists`.
        reply: Reply<String>,
    },
    /// [`Db::user`].
    User {
        /// The name to look up, in any case.
        name: String,
        /// Gets the account, or `None`.
        reply: Reply<Option<UserRecord>>,
    },
    /// [`Db::room`].
    Room {
        /// The name to look up, in any case.
        name: String,
        /// Gets the room (without history), or `None`.
        reply: Reply<Option<RoomRecord>>,
    },
    /// [`Db::room_counts`].
    RoomCounts {
        /// The account whose rooms are counted, in any case.
        owner: String,
        /// Gets the rooms in all, and those `owner` owns.
        reply: Reply<(usize, usize)>,
    },
    /// [`Db::set_password_hash`].
    SetPasswordHash {
        /// The account, in any case.
        name: String,
        /// The new (argon2id) hash.
        password_hash: String,
        /// Gets `Ok(())` or `NoSuchUser`.
        reply: Reply<()>,
    },
    /// [`Db::set_room_password_hash`].
    SetRoomPasswordHash {
        /// The room, in any case.
        name: String,
        /// The new (argon2id) hash.
        password_hash: String,
        /// Gets `Ok(())`, or `Failed` if there is no such private room.
        reply: Reply<()>,
    },
    /// [`Db::create_room`].
    CreateRoom {
        /// The room name as typed; stored as given.
        name: String,
        /// `None` for a public room.
        password_hash: Option<String>,
        /// The creating account, in any case: the room's owner.
        owner: String,
        /// Creation time, milliseconds since the epoch.
        now_ms: i64,
        /// Gets the stored name and the new row's id, or `Exists` or
        /// `TooManyRooms`.
        reply: Reply<(String, i64)>,
    },
    /// [`Db::append_history`]; nobody waits for it, so it has no reply.
    AppendHistory {
        /// The room's id.
        room_id: i64,
        /// The room's name, for the trimming and the logs.
        room: String,
        /// The message's number in the room.
        seq: u64,
        /// When the `MSG` was sent.
        time_ms: i64,
        /// The sender.
        user: String,
        /// The text.
        text: String,
    },
    /// [`Db::store_dm`].
    StoreDm {
        /// The recipient, in any case; must be registered.
        to: String,
        /// The sender, as shown.
        from: String,
        /// When it was sent.
        time_ms: i64,
        /// The text.
        text: String,
        /// Whether the recipient's mailbox limit applies: `false` for a DM
        /// that was already acknowledged as delivered (see
        /// [`Db::restore_dm`]).
        limited: bool,
        /// Gets `Ok(())` after the commit, or `NoSuchUser` or `MailboxFull`.
        reply: Reply<()>,
    },
    /// [`Db::claim_dms`].
    ClaimDms {
        /// The recipient, in any case.
        to: String,
        /// The connection they are for (its `Client::id`).
        conn: u64,
        /// At most this many, the oldest not yet in flight to `conn`.
        limit: usize,
        /// Gets the DMs, oldest first; they stay stored.
        reply: Reply<Vec<StoredDm>>,
    },
    /// [`ClaimedDms::delete`] and [`ClaimedDms::delete_later`].
    DeleteDms {
        /// The rows to delete (their claims end with them).
        ids: Vec<i64>,
        /// Gets `Ok(())` after the commit; `None` when nobody waits.
        reply: Option<Reply<()>>,
    },
    /// A claim dropped without deleting: the rows are no longer in flight
    /// to `conn` (rows since taken over by another connection stay its).
    ReleaseDms {
        /// The connection the rows were claimed for.
        conn: u64,
        /// The rows.
        ids: Vec<i64>,
    },
    /// [`Db::moderate`].
    Moderate {
        /// What, who and when.
        moderation: Moderation,
        /// Gets the target account's registered name (`""` if none).
        reply: Reply<String>,
    },
    /// [`Db::flush`]: does nothing itself, but is answered only after the
    /// batch it is in has committed, and batches run in queue order.
    Flush {
        /// Gets `Ok(())` after the commit.
        reply: Reply<()>,
    },
}

impl Request {
    /// Does somebody wait for this request's answer? Those that nobody
    /// waits for may have their commit delayed a little (see the DB
    /// thread's "Why history may wait a little").
    pub(super) fn awaited(&self) -> bool {
        !matches!(
            self,
            Request::AppendHistory { .. }
                | Request::DeleteDms { reply: None, .. }
                | Request::ReleaseDms { .. }
        )
    }
}

/// A cheap, cloneable handle to the database. Every connection thread holds
/// one; the DB thread stops after the last one is dropped.
///
/// Each method sends one request and (except `append_history`) blocks until
/// the DB thread has committed it and answered. Do not call them while
/// holding a lock other threads need (e.g. the hub's): a slow disk would
/// then stall everyone.
#[derive(Clone, Debug)]
pub struct Db {
    /// The sending side of the DB thread's bounded request queue. Its clones
    /// are the "handles"; when all are dropped, the queue disconnects and
    /// the DB thread knows to finish.
    requests: Sender<Request>,
    /// The store's health, as the DB thread last saw it.
    health: Arc<Mutex<StoreHealth>>,
}

/// How the store is doing, for the status page and the metrics: what
/// [`Db::health`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// `sqlite` or `postgres`.
    pub engine: &'static str,
    /// Whether the last batch began and committed (false while PostgreSQL
    /// is unreachable, until a batch works again).
    pub ok: bool,
    /// The last failure to begin or commit a batch, if there was one (kept
    /// after recovery, as the last thing that went wrong). Never holds a
    /// password: connection errors name the URL through
    /// [`without_password`].
    pub last_error: Option<String>,
}

impl StoreHealth {
    /// A healthy store of this engine, with no error yet.
    pub(crate) fn new(engine: &'static str) -> Self {
        StoreHealth {
            engine,
            ok: true,
            last_error: None,
        }
    }
}

/// The running DB thread, to be joined at shutdown.
#[derive(Debug)]
pub struct DbThread {
    /// The thread's handle; its result says whether the database closed
    /// cleanly.
    handle: JoinHandle<Result<()>>,
}

impl DbThread {
    /// Waits until the DB thread has written everything queued and exited.
    ///
    /// The thread exits only after **every** [`Db`] handle is dropped, so
    /// drop them all first (the server's connection threads must have
    /// ended), or this waits forever.
    ///
    /// # Errors
    ///
    /// [`Error::Db`] if the thread panicked or closing the database failed.
    pub fn join(self) -> Result<()> {
        match self.handle.join() {
            Ok(result) => result,
            Err(_) => Err(Error::Db("the database thread panicked".into())),
        }
    }
}

/// Opens (creating if needed) and migrates the SQLite file at `path`,
/// loads every room with its last `history` messages, and starts the DB
/// thread with the protocol's default [`Limits`]; the server uses
/// [`open_store`] with its own.
///
/// Rooms come in creation order. Everything before the spawn runs on the
/// calling thread, so a bad file is reported before the server listens.
///
/// # Errors
///
/// - [`Error::Db`] if the file cannot be opened or is not a SQLite database
///   (the message names the path), if its schema is newer than this server,
///   or if migrating or reading it fails;
/// - [`Error::Spawn`] if the thread cannot be started.
pub fn open(path: &Path, history: usize) -> Result<(Db, DbThread, Vec<RoomRecord>)> {
    open_with(path, history, Limits::default())
}

/// [`open`] with the given [`Limits`] instead of the protocol's defaults:
/// [`open_store`] on `sqlite:PATH`.
///
/// # Errors
///
/// As [`open`].
pub fn open_with(
    path: &Path,
    history: usize,
    limits: Limits,
) -> Result<(Db, DbThread, Vec<RoomRecord>)> {
    open_store(&StoreSpec::Sqlite(path.to_owned()), history, limits)
}

/// Opens the store `spec` names, loads every room with its last `history`
/// messages, and starts the DB thread (named "db") enforcing `limits`:
/// what the server uses.
///
/// - `sqlite:PATH`: opens (creating if needed) and migrates the file.
/// - `postgres://USER@HOST:PORT/DB`: connects (the database must exist),
///   creates or migrates the server's tables, and keeps one connection,
///   owned by the DB thread; several nodes may share the database.
///
/// Rooms come in creation order. Everything before the spawn runs on the
/// calling thread, so a bad file or an unreachable PostgreSQL is reported
/// before the server listens.
///
/// # Errors
///
/// - [`Error::Db`] if the store cannot be opened or reached (the message
///   names the file, or the URL without its password), if its schema is
///   newer than this server, or if migrating or reading it fails;
/// - [`Error::Spawn`] if the thread cannot be started.
pub fn open_store(
    spec: &StoreSpec,
    history: usize,
    limits: Limits,
) -> Result<(Db, DbThread, Vec<RoomRecord>)> {
    let (mut store, stack_size): (Box<dyn store::Store>, usize) = match spec {
        StoreSpec::Sqlite(path) => (
            Box::new(sqlite::SqliteStore::open(path)?),
            DB_THREAD_STACK_SIZE,
        ),
        StoreSpec::Postgres(url) => (
            Box::new(self::postgres::PgStore::open(url)?),
            PG_THREAD_STACK_SIZE,
        ),
    };
    let rooms = store.load_rooms(history).map_err(|e| {
        let from = match spec {
            StoreSpec::Sqlite(path) => path.display().to_string(),
            StoreSpec::Postgres(url) => without_password(url),
        };
        Error::Db(format!("reading rooms from {from}: {e}"))
    })?;
    let health = Arc::new(Mutex::new(StoreHealth::new(store.engine())));

    // Bounded: see REQUEST_QUEUE_CAPACITY.
    let (requests, queue) = crate::doorbell::bounded(REQUEST_QUEUE_CAPACITY);
    // The store *moves* into the thread: from here on no other thread can
    // touch it, which the compiler checks for us.
    let thread_health = Arc::clone(&health);
    let handle = std::thread::Builder::new()
        .name("db".into())
        .stack_size(stack_size)
        .spawn(move || thread::run(store, queue, limits, thread_health))
        .map_err(Error::Spawn)?;
    Ok((Db { requests, health }, DbThread { handle }, rooms))
}

impl Db {
    /// Sends a request built around a fresh reply channel and waits for the
    /// answer. Every method but `append_history` goes through here.
    ///
    /// There is no timeout on the wait: the DB thread either answers or
    /// dies, and if it dies its end of the reply channel is dropped, which
    /// wakes us with an error. SQLite's own waits are bounded by
    /// [`BUSY_TIMEOUT`]; PostgreSQL's by the connection's timeouts (see
    /// `postgres.rs`).
    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, DbError> {
        // Exactly one answer will ever be sent.
        let (reply, answer) = oneshot::channel();
        self.requests.send(make(reply)).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    /// Creates an account, committed to disk before this returns.
    ///
    /// # Errors
    ///
    /// [`DbError::Exists`] if the name is taken in any letter case;
    /// [`DbError::Failed`] if the store fails or the DB thread is gone.
    pub fn register(
        &self,
        name: &str,
        password_hash: String,
        now_ms: i64,
    ) -> Result<String, DbError> {
        self.call(|reply| Request::Register {
            name: name.to_owned(),
            password_hash,
            now_ms,
            reply,
        })
    }

    /// Looks an account up by name, in any letter case.
    ///
    /// # Errors
    ///
    /// [`DbError::Failed`] if the store fails or the DB thread is gone.
    pub fn user(&self, name: &str) -> Result<Option<UserRecord>, DbError> {
        self.call(|reply| Request::User {
            name: name.to_owned(),
            reply,
        })
    }

    /// Looks a room up by name, in any letter case, with its bans and
    /// without its history.
    ///
    /// # Errors
    ///
    /// [`DbError::Failed`] if the store fails or the DB thread is gone.
    pub fn room(&self, name: &str) -> Result<Option<RoomRecord>, DbError> {
        self.call(|reply| Request::Room {
            name: name.to_owned(),
            reply,
        })
    }

    /// How many rooms exist, and how many of them `owner` owns: a cheap
    /// early look for `CREATE`, before it spends a password hash (the
    /// count inside [`Db::create_room`] remains the judge).
    ///
    /// # Errors
    ///
    /// [`DbError::Failed`] if the store fails or the DB thread is gone.
    pub fn room_counts(&self, owner: &str) -> Result<(usize, usize), DbError> {
        self.call(|reply| Request::RoomCounts {
            owner: owner.to_owned(),
            reply,
        })
    }

    /// Replaces an account's password hash (used to upgrade legacy SHA-256
    /// hashes after a successful login); committed before this returns.
    ///
    /// # Errors
    ///
    /// [`DbError::NoSuchUser`] if there is no such account;
    /// [`DbError::Failed`] if the store fails or the DB thread is gone.
    pub fn set_password_hash(&self, name: &str, password_hash: String) -> Result<(), DbError> {
        self.call(|reply| Request::SetPasswordHash {
            name: name.to_owned(),
            password_hash,
            reply,
        })
    }

    /// Replaces a private room's password hash (used to upgrade a legacy
    /// SHA-256 hash after a successful `JOIN`); committed before this
    /// returns. A public room is left public.
    ///
    /// # Errors
    ///
    /// [`DbError::Failed`] if there is no such private room, the store fails or
    /// the DB thread is gone.
    pub fn set_room_password_hash(&self, name: &str, password_hash: String) -> Result<(), DbError> {
        self.call(|reply| Request::SetRoomPasswordHash {
            name: name.to_owned(),
            password_hash,
            reply,
        })
    }

    /// Creates a room (public if `password_hash` is `None`) owned by the
    /// account `owner`, committed before this returns. The limits are
    /// counted in the same savepoint as the insert, so racing creations
    /// cannot pass them together.
    ///
    /// # Errors
    ///
    /// [`DbError::Exists`] if the name is taken in any letter case;
    /// [`DbError::TooManyRooms`] if [`Limits::max_rooms`] rooms exist or
    /// `owner` owns [`Limits::rooms_per_user`];
    /// [`DbError::Failed`] if the store fails or the DB thread is gone.
    pub fn create_room(
        &self,
        name: &str,
        password_hash: Option<String>,
        owner: &str,
        now_ms: i64,
    ) -> Result<(String, i64), DbError> {
        self.call(|reply| Request::CreateRoom {
            name: name.to_owned(),
            password_hash,
            owner: owner.to_owned(),
            now_ms,
            reply,
        })
    }

    /// Queues one message for the room's history and returns at once,
    /// without waiting for the commit: a `SAY` should not wait for an fsync.
    /// It is written with the next batch, and a graceful stop writes
    /// everything queued. It blocks only if [`REQUEST_QUEUE_CAPACITY`]
    /// requests are already waiting (backpressure). A message that cannot be
    /// stored (unknown room, duplicate `seq`) is logged by the DB thread.
    ///
    /// # Errors
    ///
    /// [`DbError::Failed`] only if the DB thread is gone.
    pub fn append_history(
        &self,
        (room_id, room): (i64, &str),
        seq: u64,
        time_ms: i64,
        user: &str,
        text: &str,
    ) -> Result<(), DbError> {
        self.requests
            .send_lazily(Request::AppendHistory {
                room_id,
                room: room.to_owned(),
                seq,
                time_ms,
                user: user.to_owned(),
                text: text.to_owned(),
            })
            .map_err(|_| stopped())
    }

    /// Does one moderation action and logs it, both committed before this
    /// returns (see [`moderation`]). Returns the target account's name as
    /// registered (`""` for an action without one).
    ///
    /// # Errors
    ///
    /// [`DbError::NoSuchUser`] if the target account does not exist;
    /// [`DbError::NotFound`] to lift a ban or suspension not in force;
    /// [`DbError::Failed`] if the store fails or the DB thread is gone.
    pub fn moderate(&self, moderation: Moderation) -> Result<String, DbError> {
        self.call(|reply| Request::Moderate { moderation, reply })
    }

    /// Stores a direct message for an offline user; committed before this
    /// returns, so `OK DM … stored` is never a lie. The recipient's stored
    /// DMs are counted in the same savepoint as the insert, so racing
    /// senders cannot pass [`Limits::mailbox`] together.
    ///
    /// # Errors
    ///
    /// [`DbError::NoSuchUser`] if `to` is not registered;
    /// [`DbError::MailboxFull`] if `to` has [`Limits::mailbox`] stored DMs;
    /// [`DbError::Failed`] if the store fails or the DB thread is gone.
    pub fn store_dm(&self, to: &str, from: &str, time_ms: i64, text: &str) -> Result<(), DbError> {
        self.call(|reply| Request::StoreDm {
            to: to.to_owned(),
            from: from.to_owned(),
            time_ms,
            text: text.to_owned(),
            limited: true,
            reply,
        })
    }

    /// Stores a direct message that was already acknowledged to its sender
    /// as delivered, but that the recipient's connection never took (it
    /// ended first). Like [`Db::store_dm`], except that the mailbox limit
    /// does not apply: the sender was told it arrived, so it must not be
    /// refused now. Such DMs are at most what one outbox held, so the
    /// mailbox can pass its limit by no more than that.
    ///
    /// # Errors
    ///
    /// [`DbError::NoSuchUser`] if `to` is not registered (any more);
    /// [`DbError::Failed`] if the store fails or the DB thread is gone.
    pub fn restore_dm(
        &self,
        to: &str,
        from: &str,
        time_ms: i64,
        text: &str,
    ) -> Result<(), DbError> {
        self.call(|reply| Request::StoreDm {
            to: to.to_owned(),
            from: from.to_owned(),
            time_ms,
            text: text.to_owned(),
            limited: false,
            reply,
        })
    }

    /// Claims the oldest `limit` DMs stored for `to` that are not already
    /// in flight to connection `conn`, oldest first, **without deleting
    /// them** (see the module doc). An unknown user simply has none.
    ///
    /// The rows are deleted only through the returned claim, once they are
    /// written; dropping the claim releases them for the next delivery.
    ///
    /// # Errors
    ///
    /// [`DbError::Failed`] if the store fails or the DB thread is gone (then
    /// nothing is claimed).
    pub fn claim_dms(&self, to: &str, conn: u64, limit: usize) -> Result<ClaimedDms, DbError> {
        let dms = self.call(|reply| Request::ClaimDms {
            to: to.to_owned(),
            conn,
            limit,
            reply,
        })?;
        Ok(ClaimedDms {
            db: self.clone(),
            conn,
            dms,
        })
    }

    /// The store's health as of its last batch: the engine, whether the
    /// last BEGIN and COMMIT worked, and the last error. Cheap (a mutex
    /// held for a copy): the status page and the metrics may call it at
    /// every request.
    pub fn health(&self) -> StoreHealth {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until everything queued before this call (from any thread) is
    /// committed. Tests use it after `append_history`.
    ///
    /// # Errors
    ///
    /// [`DbError::Failed`] if the commit failed or the DB thread is gone.
    pub fn flush(&self) -> Result<(), DbError> {
        self.call(|reply| Request::Flush { reply })
    }
}

/// Stored DMs claimed for delivery to one connection, by [`Db::claim_dms`].
///
/// Settle it with [`ClaimedDms::delete`] once the lines are written, or
/// queue it in the recipient's outbox behind them, where the writer settles
/// it with [`ClaimedDms::delete_later`] once they are written.
/// Dropped unsettled (the lines could not be written, or the caller gave
/// up), it releases its rows without deleting them: they stay stored and
/// come again at the next login. So no path can lose one.
#[derive(Debug)]
#[must_use = "dropping a claim releases its DMs undelivered"]
pub struct ClaimedDms {
    /// Where the deletion or the release goes.
    db: Db,
    /// The connection the DMs are for.
    conn: u64,
    /// The claimed rows, oldest first; empty once settled.
    dms: Vec<StoredDm>,
}

impl ClaimedDms {
    /// The claimed DMs, oldest first.
    pub fn dms(&self) -> &[StoredDm] {
        &self.dms
    }

    /// How many DMs are claimed.
    pub fn len(&self) -> usize {
        self.dms.len()
    }

    /// True if there was nothing to claim.
    pub fn is_empty(&self) -> bool {
        self.dms.is_empty()
    }

    /// Keeps the first `n` DMs and releases the others at once, for a
    /// caller that found it can queue only `n` now.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.dms.len() {
            return;
        }
        let rest = ClaimedDms {
            db: self.db.clone(),
            conn: self.conn,
            dms: self.dms.split_off(n),
        };
        drop(rest);
    }

    /// The lines are written: delete the rows, committed before this
    /// returns.
    ///
    /// # Errors
    ///
    /// [`DbError::Failed`] if the store fails or the DB thread is gone; the
    /// rows then stay stored (delivered again later: at least once).
    pub fn delete(mut self) -> Result<(), DbError> {
        let ids = self.take_ids();
        if ids.is_empty() {
            return Ok(());
        }
        self.db.call(|reply| Request::DeleteDms {
            ids,
            reply: Some(reply),
        })
    }

    /// The lines are written: delete the rows, without waiting for the
    /// commit (only, like any request, for room in the database's queue).
    /// For the recipient's writer thread, which has its client to serve; if
    /// the deletion fails, the rows stay stored and come again (at least
    /// once).
    pub fn delete_later(mut self) {
        let ids = self.take_ids();
        if !ids.is_empty() {
            let _ = self
                .db
                .requests
                .send_lazily(Request::DeleteDms { ids, reply: None });
        }
    }

    /// The rows' ids, leaving the claim empty (settled).
    fn take_ids(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.dms)
            .into_iter()
            .map(|dm| dm.id)
            .collect()
    }
}

impl Drop for ClaimedDms {
    fn drop(&mut self) {
        let ids = self.take_ids();
        if !ids.is_empty() {
            // Nobody waits for the answer; if the DB thread is gone, its
            // in-memory claims are gone with it anyway.
            let _ = self.db.requests.send_lazily(Request::ReleaseDms {
                conn: self.conn,
                ids,
            });
        }
    }
}

/// The error every method returns once the DB thread is gone.
fn stopped() -> DbError {
    DbError::Failed(THREAD_STOPPED.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;
    use std::sync::Barrier;

    /// A stand-in hash: the database stores whatever string it is given.
    fn hash(tag: &str) -> String {
        format!("$argon2id$test${tag}")
    }

    /// Opens a fresh database in a temporary directory (kept alive by the
    /// returned guard).
    fn fresh(history: usize) -> (tempfile::TempDir, Db, DbThread, Vec<RoomRecord>) {
        let dir = tempfile::tempdir().unwrap();
        let (db, thread, rooms) = open(&dir.path().join("chat.db"), history).unwrap();
        (dir, db, thread, rooms)
    }

    /// A new file gets the current schema and no rooms.
    #[test]
    fn new_file_is_empty_and_current() {
        let (dir, db, thread, rooms) = fresh(50);
        assert!(rooms.is_empty());
        drop(db);
        thread.join().unwrap();
        let version: i64 = Connection::open(dir.path().join("chat.db"))
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    /// A name taken in another case is `Exists`, and the first spelling
    /// stays; lookups ignore case.
    #[test]
    fn register_is_case_insensitive() {
        let (_dir, db, _thread, _) = fresh(50);
        assert_eq!(db.register("Alice", hash("a"), 1), Ok("Alice".to_string()));
        assert_eq!(db.register("ALICE", hash("b"), 2), Err(DbError::Exists));
        assert_eq!(db.register("alice", hash("c"), 3), Err(DbError::Exists));
        let user = db.user("aLiCe").unwrap().expect("registered");
        assert_eq!(user.name, "Alice");
        assert_eq!(user.password_hash, hash("a"));
        assert_eq!(db.user("bob").unwrap(), None);
    }

    /// A password hash can be replaced; an unknown user is `NoSuchUser`.
    #[test]
    fn set_password_hash_replaces() {
        let (_dir, db, _thread, _) = fresh(50);
        db.register("carol", hash("old"), 1).unwrap();
        db.set_password_hash("CAROL", hash("new")).unwrap();
        assert_eq!(
            db.user("carol").unwrap().unwrap().password_hash,
            hash("new")
        );
        assert_eq!(
            db.set_password_hash("nobody", hash("x")),
            Err(DbError::NoSuchUser)
        );
    }

    /// Public and private rooms are created and survive a restart; a taken
    /// name in any case is `Exists`.
    #[test]
    fn create_rooms() {
        let (dir, db, thread, _) = fresh(50);
        assert_eq!(
            db.create_room("Lobby", None, "ann", 1)
                .map(|(name, _)| name),
            Ok("Lobby".to_string())
        );
        assert_eq!(
            db.create_room("vault", Some(hash("v")), "ann", 2)
                .map(|(name, _)| name),
            Ok("vault".to_string())
        );
        assert_eq!(
            db.create_room("LOBBY", None, "ann", 3),
            Err(DbError::Exists)
        );
        assert_eq!(
            db.create_room("Vault", None, "ann", 3),
            Err(DbError::Exists)
        );
        drop(db);
        thread.join().unwrap();

        let (_db, _thread, rooms) = open(&dir.path().join("chat.db"), 50).unwrap();
        let summary: Vec<_> = rooms
            .iter()
            .map(|r| (r.name.as_str(), r.password_hash.clone()))
            .collect();
        assert_eq!(summary, vec![("Lobby", None), ("vault", Some(hash("v")))]);
    }

    /// History appended without waiting is on disk after a restart: the last
    /// N messages, oldest first, and numbering continues after the highest.
    #[test]
    fn history_survives_reopen() {
        let (dir, db, thread, _) = fresh(3);
        let (_, lobby) = db.create_room("lobby", None, "ann", 0).unwrap();
        db.create_room("empty", None, "ann", 0).unwrap();
        for seq in 1..=5 {
            db.append_history(
                (lobby, "LOBBY"),
                seq,
                1000 + seq as i64,
                "ann",
                &format!("m{seq}"),
            )
            .unwrap();
        }
        // Graceful stop: drop the handle, the thread writes what is queued.
        drop(db);
        thread.join().unwrap();

        let (_db, _thread, rooms) = open(&dir.path().join("chat.db"), 3).unwrap();
        let lobby = &rooms[0];
        assert_eq!(lobby.name, "lobby");
        let texts: Vec<_> = lobby.history.iter().map(|h| h.text.as_str()).collect();
        assert_eq!(texts, ["m3", "m4", "m5"]);
        assert_eq!(lobby.history[0].seq, 3);
        assert_eq!(lobby.history[0].time_ms, 1003);
        assert_eq!(lobby.history[0].user, "ann");
        assert_eq!(lobby.next_seq, 6);
        assert!(rooms[1].history.is_empty());
        assert_eq!(rooms[1].next_seq, 1);
    }

    /// `flush` returns only when earlier appends are committed: another
    /// connection to the file sees them.
    #[test]
    fn flush_waits_for_commit() {
        let (dir, db, _thread, _) = fresh(50);
        let (_, lobby) = db.create_room("lobby", None, "ann", 0).unwrap();
        db.append_history((lobby, "lobby"), 1, 5, "ann", "hello")
            .unwrap();
        db.flush().unwrap();
        let count: i64 = Connection::open(dir.path().join("chat.db"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1);
    }

    /// The texts of a claim.
    fn texts(claim: &ClaimedDms) -> Vec<&str> {
        claim.dms().iter().map(|d| d.text.as_str()).collect()
    }

    /// Stored DMs are claimed oldest first (by arrival, not by clock),
    /// stay stored until the claim is deleted, and are gone after it.
    #[test]
    fn dms_are_deleted_only_when_the_claim_says_so() {
        let (_dir, db, _thread, _) = fresh(50);
        db.register("Dora", hash("d"), 0).unwrap();
        db.store_dm("dora", "ann", 10, "first").unwrap();
        db.store_dm("DORA", "bob", 5, "second (earlier clock)")
            .unwrap();
        let claim = db.claim_dms("Dora", 1, 100).unwrap();
        assert_eq!(texts(&claim), ["first", "second (earlier clock)"]);
        assert_eq!(claim.dms()[0].from, "ann");
        assert_eq!(claim.dms()[1].time_ms, 5);
        // A new connection of the same user (the first one is gone) gets
        // them again: nothing is deleted before the claim is.
        let again = db.claim_dms("dora", 2, 100).unwrap();
        assert_eq!(again.len(), 2);
        drop(again);
        claim.delete().unwrap();
        assert!(db.claim_dms("dora", 3, 100).unwrap().is_empty());
        assert!(db.claim_dms("nobody", 3, 100).unwrap().is_empty());
    }

    /// A claim skips what is in flight to the same connection, and a
    /// dropped claim releases its rows, stored as before.
    #[test]
    fn claims_skip_rows_in_flight_and_release_on_drop() {
        let (_dir, db, _thread, _) = fresh(50);
        db.register("eli", hash("e"), 0).unwrap();
        for i in 0..5 {
            db.store_dm("eli", "ann", i, &format!("dm {i}")).unwrap();
        }
        let first = db.claim_dms("eli", 7, 2).unwrap();
        assert_eq!(texts(&first), ["dm 0", "dm 1"]);
        let second = db.claim_dms("eli", 7, 10).unwrap();
        assert_eq!(texts(&second), ["dm 2", "dm 3", "dm 4"]);
        assert!(db.claim_dms("eli", 7, 10).unwrap().is_empty());
        drop(first);
        let mut third = db.claim_dms("eli", 7, 10).unwrap();
        assert_eq!(texts(&third), ["dm 0", "dm 1"]);
        third.truncate(1);
        assert_eq!(texts(&db.claim_dms("eli", 7, 10).unwrap()), ["dm 1"]);
        second.delete().unwrap();
        third.delete().unwrap();
        assert_eq!(texts(&db.claim_dms("eli", 8, 10).unwrap()), ["dm 1"]);
    }

    /// Settled by a writer without waiting: deleted once it says the lines
    /// were written (`delete_later`), released (still stored) if it goes
    /// away instead (the claim dropped).
    #[test]
    fn delete_later_deletes_and_a_dropped_claim_releases() {
        let (_dir, db, _thread, _) = fresh(50);
        db.register("fay", hash("f"), 0).unwrap();
        db.store_dm("fay", "ann", 1, "one").unwrap();
        let claim = db.claim_dms("fay", 1, 10).unwrap();
        // In flight to connection 1: not offered to it again.
        assert!(db.claim_dms("fay", 1, 10).unwrap().is_empty());
        claim.delete_later();
        // Requests are served in order, so a request sent after the
        // deletion finds the row deleted.
        assert!(db.claim_dms("fay", 2, 10).unwrap().is_empty());

        db.store_dm("fay", "ann", 2, "two").unwrap();
        let claim = db.claim_dms("fay", 1, 10).unwrap();
        drop(claim);
        let back = db.claim_dms("fay", 1, 10).unwrap();
        assert_eq!(texts(&back), ["two"], "released when the writer went away");
    }

    /// `mailbox` stored DMs per recipient, then `MailboxFull` and nothing
    /// stored; room again once some are delivered.
    #[test]
    fn mailbox_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            mailbox: 3,
            ..Limits::default()
        };
        let (db, _thread, _) = open_with(&dir.path().join("chat.db"), 50, limits).unwrap();
        db.register("gus", hash("g"), 0).unwrap();
        db.register("hal", hash("h"), 0).unwrap();
        for i in 0..3 {
            db.store_dm("gus", "ann", i, "x").unwrap();
        }
        assert_eq!(db.store_dm("GUS", "ann", 4, "y"), Err(DbError::MailboxFull));
        db.store_dm("hal", "ann", 4, "another mailbox").unwrap();
        let claim = db.claim_dms("gus", 1, 10).unwrap();
        assert_eq!(claim.len(), 3);
        claim.delete().unwrap();
        db.store_dm("gus", "ann", 5, "room again").unwrap();
    }

    /// `max_rooms` in all and `rooms_per_user` per owner, counted with the
    /// insert; a taken name is `Exists` before the limits are looked at.
    #[test]
    fn rooms_are_limited_in_all_and_per_owner() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_rooms: 3,
            rooms_per_user: 2,
            ..Limits::default()
        };
        let (db, _thread, _) = open_with(&dir.path().join("chat.db"), 50, limits).unwrap();
        db.register("ann", hash("a"), 0).unwrap();
        db.register("bob", hash("b"), 0).unwrap();
        assert!(db.create_room("a1", None, "ann", 0).is_ok());
        assert!(db.create_room("a2", None, "ANN", 0).is_ok());
        assert_eq!(
            db.create_room("a3", None, "ann", 0),
            Err(DbError::TooManyRooms)
        );
        assert!(db.create_room("b1", None, "bob", 0).is_ok());
        assert_eq!(db.create_room("A1", None, "bob", 0), Err(DbError::Exists));
        assert_eq!(
            db.create_room("b2", None, "bob", 0),
            Err(DbError::TooManyRooms)
        );
    }

    /// Each room keeps its newest `history_keep` messages on disk; the rest
    /// go with the batch that pushed them out.
    #[test]
    fn history_is_trimmed_per_room() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let limits = Limits {
            history_keep: 4,
            ..Limits::default()
        };
        let (db, _thread, _) = open_with(&path, 2, limits).unwrap();
        let (_, big) = db.create_room("big", None, "ann", 0).unwrap();
        let (_, small) = db.create_room("small", None, "ann", 0).unwrap();
        for seq in 1..=10 {
            db.append_history((big, "big"), seq, 0, "ann", "m").unwrap();
            db.flush().unwrap();
        }
        for seq in 1..=3 {
            db.append_history((small, "small"), seq, 0, "ann", "m")
                .unwrap();
        }
        db.flush().unwrap();
        let seqs: Vec<(String, i64)> = Connection::open(&path)
            .unwrap()
            .prepare(
                "SELECT r.name, m.seq FROM messages AS m JOIN rooms AS r ON r.id = m.room_id
                 ORDER BY r.name, m.seq",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected: Vec<(String, i64)> = [7, 8, 9, 10]
            .map(|s| ("big".to_string(), s))
            .into_iter()
            .chain([1, 2, 3].map(|s| ("small".to_string(), s)))
            .collect();
        assert_eq!(seqs, expected);
    }

    /// A DM to an unregistered user is refused with `NoSuchUser`.
    #[test]
    fn dm_to_unknown_user() {
        let (_dir, db, _thread, _) = fresh(50);
        assert_eq!(
            db.store_dm("ghost", "ann", 1, "boo"),
            Err(DbError::NoSuchUser)
        );
    }

    /// Dropping every handle (clones included) ends the thread; everything
    /// acknowledged is on disk for the next open.
    #[test]
    fn drop_all_handles_then_join() {
        let (dir, db, thread, _) = fresh(50);
        let other = db.clone();
        let worker = std::thread::spawn(move || other.register("eve", hash("e"), 0));
        assert_eq!(worker.join().unwrap(), Ok("eve".to_string()));
        db.store_dm("eve", "ann", 1, "hi").unwrap();
        drop(db);
        thread.join().unwrap();

        let (db, _thread, _) = open(&dir.path().join("chat.db"), 50).unwrap();
        assert_eq!(db.user("EVE").unwrap().unwrap().name, "eve");
        assert_eq!(db.claim_dms("eve", 1, 100).unwrap().len(), 1);
    }

    /// Only the requests nobody waits for may wait for company before
    /// their commit.
    #[test]
    fn what_nobody_waits_for() {
        let (reply, _answer) = oneshot::channel();
        assert!(Request::Flush { reply }.awaited());
        let (reply, _answer) = oneshot::channel();
        let awaited_delete = Request::DeleteDms {
            ids: vec![1],
            reply: Some(reply),
        };
        assert!(awaited_delete.awaited());
        let history = Request::AppendHistory {
            room_id: 1,
            room: "r".into(),
            seq: 1,
            time_ms: 0,
            user: "u".into(),
            text: "t".into(),
        };
        assert!(!history.awaited());
        assert!(!Request::DeleteDms {
            ids: vec![1],
            reply: None
        }
        .awaited());
        assert!(!Request::ReleaseDms {
            conn: 1,
            ids: vec![1]
        }
        .awaited());
    }

    /// Once the DB thread is gone, methods return an error instead of
    /// panicking.
    #[test]
    fn stopped_thread_gives_errors() {
        let (_dir, db, _thread, _) = fresh(50);
        // Simulate a dead thread: a handle whose queue has no receiver.
        let (requests, queue) = crate::doorbell::bounded(1);
        drop(queue);
        let dead = Db {
            requests,
            health: Arc::new(Mutex::new(StoreHealth::new("sqlite"))),
        };
        let stopped = Err(DbError::Failed(THREAD_STOPPED.into()));
        assert_eq!(
            dead.register("x", hash("x"), 0),
            stopped.clone().map(|()| String::new())
        );
        assert_eq!(dead.append_history((1, "r"), 1, 0, "u", "t"), stopped);
        assert_eq!(dead.flush(), stopped);
        // The real one still works.
        db.flush().unwrap();
    }

    /// A file that is not SQLite is refused with a message naming it, and
    /// left as it was.
    #[test]
    fn not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let junk = "this is a text file, not a database\n".repeat(100);
        std::fs::write(&path, &junk).unwrap();
        let err = open(&path, 50).unwrap_err().to_string();
        assert!(err.contains("chat.db is not a SQLite database"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), junk);
    }

    /// Fifty threads registering the same name at once: exactly one wins.
    #[test]
    fn concurrent_register_one_winner() {
        let (_dir, db, _thread, _) = fresh(50);
        let start = Barrier::new(50);
        let results: Vec<_> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..50)
                .map(|i| {
                    let (db, start) = (db.clone(), &start);
                    s.spawn(move || {
                        start.wait();
                        let name = if i % 2 == 0 { "Racer" } else { "racer" };
                        db.register(name, hash(&i.to_string()), i)
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let wins = results.iter().filter(|r| r.is_ok()).count();
        let exists = results
            .iter()
            .filter(|r| **r == Err(DbError::Exists))
            .count();
        assert_eq!((wins, exists), (1, 49), "{results:?}");
    }
}
