//! The store seam: what the DB thread needs from a database engine, as one
//! small trait, so that the rest of the server never learns which engine
//! keeps its accounts, rooms, history, stored DMs and moderation records.
//!
//! # Why a trait here, and not around [`Db`](super::Db)
//!
//! The server talks to [`Db`](super::Db), a handle that sends requests to
//! the DB thread (`thread.rs`). Everything that makes that thread good at
//! its job is independent of the engine: the bounded queue, the batches
//! (group commit), the lazy commit of batches nobody waits for, answers
//! held until COMMIT, and the stored DMs in flight. So the seam is *below*
//! the thread: the thread drives a `Box<dyn Store>`, and an engine only has
//! to say how to begin, commit and roll back a batch's transaction and how
//! to do each operation inside it. Two engines implement it today:
//!
//! - `sqlite.rs`: one file, owned by this server alone (the default);
//! - `postgres.rs`: one PostgreSQL database that several server nodes
//!   share, each node with its own DB thread and connection.
//!
//! Reading the trait tells a student exactly what a node shares with the
//! others: nothing but what is listed below.
//!
//! # The contract
//!
//! The thread calls [`Store::begin`], then one method per request, then
//! [`Store::commit`] (or [`Store::rollback`] if [`Store::aborted`] says the
//! engine gave the transaction up). Between `begin` and `commit`:
//!
//! - each **write** runs in its own savepoint inside the engine: if it
//!   fails, only its own changes are undone and the batch goes on (see
//!   "Why a savepoint per request" in `thread.rs`);
//! - a **read** sees the writes of the requests before it in the batch;
//! - nothing is durable, or visible to another node, before `commit`
//!   returns `Ok`; if `commit` fails, nothing of the batch remains.
//!
//! Name lookups ignore ASCII letter case everywhere, and a name is stored
//! as first given. Limits passed in are checked in the same savepoint as
//! the insert they guard, in a way that holds against *other* writers too
//! (another process on the SQLite file, another node on PostgreSQL).
//!
//! Errors are [`DbError`]s: the ordinary answers (`Exists`, `NoSuchUser`,
//! …) and `Failed` for everything that went wrong in the engine.

use super::{DbError, Moderation, RoomRecord, StoredDm, UserRecord};

/// The limits [`Store::create_room`] checks: rooms in all and rooms per
/// owner (`--max-rooms`, `--rooms-per-user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RoomLimits {
    /// Rooms in all.
    pub max_rooms: usize,
    /// Rooms one account owns.
    pub rooms_per_user: usize,
}

/// A database engine, as the DB thread sees it (see the module doc).
///
/// `Send` because the store is made on the caller's thread (so that a bad
/// file or an unreachable server is reported before the server listens)
/// and then *moved* into the DB thread, which alone uses it.
pub(crate) trait Store: Send {
    /// The engine's short name, `sqlite` or `postgres`, for the status
    /// page, the metrics and the logs.
    fn engine(&self) -> &'static str;

    /// Begins the transaction of one batch. `durable` is false for a batch
    /// that nobody waits for (history, deletions of delivered DMs): its
    /// COMMIT may skip the wait for the disk, since the next durable
    /// COMMIT makes it durable too (see "Why history may wait a little" in
    /// `thread.rs`).
    ///
    /// An engine that lost its connection tries to get it back here (and
    /// only here), and fails fast between attempts.
    fn begin(&mut self, durable: bool) -> Result<(), DbError>;

    /// Commits the batch. On error nothing of the batch remains: the
    /// engine has rolled it back.
    fn commit(&mut self) -> Result<(), DbError>;

    /// Rolls the batch back (after [`Store::aborted`]); never fails, since
    /// a transaction that cannot be rolled back is gone anyway.
    fn rollback(&mut self);

    /// Whether the engine itself gave up the transaction after an error
    /// (SQLite on a full disk, PostgreSQL on a lost connection or on an
    /// error outside a savepoint). The thread then stops the batch: what
    /// follows would not run in it.
    fn aborted(&self) -> bool;

    /// Creates an account; returns the stored name, or `Exists` if the name
    /// is taken in any letter case (by anybody, on any node).
    fn register(&mut self, name: &str, password_hash: &str, now_ms: i64)
        -> Result<String, DbError>;

    /// An account by name, in any letter case, with its admin flag and the
    /// end of its suspension.
    fn user(&mut self, name: &str) -> Result<Option<UserRecord>, DbError>;

    /// A room by name, in any letter case, with its bans and without its
    /// history.
    fn room(&mut self, name: &str) -> Result<Option<RoomRecord>, DbError>;

    /// Rooms in all, and those `owner` owns.
    fn room_counts(&mut self, owner: &str) -> Result<(usize, usize), DbError>;

    /// Replaces an account's password hash; `NoSuchUser` if it has none.
    fn set_password_hash(&mut self, name: &str, password_hash: &str) -> Result<(), DbError>;

    /// Replaces a private room's password hash; `Failed` if there is no
    /// such private room.
    fn set_room_password_hash(&mut self, name: &str, password_hash: &str) -> Result<(), DbError>;

    /// Creates a room owned by `owner` (`None` hash: public). `Exists` if
    /// the name is taken, before the limits are looked at; `TooManyRooms`
    /// if `limits` would be passed. Returns the stored name and the id.
    fn create_room(
        &mut self,
        name: &str,
        password_hash: Option<&str>,
        owner: &str,
        now_ms: i64,
        limits: RoomLimits,
    ) -> Result<(String, i64), DbError>;

    /// Appends one message to the history of room `room_id`. `Ok(false)`
    /// if that room no longer exists (closed meanwhile): nothing stored.
    fn append_history(
        &mut self,
        room_id: i64,
        seq: u64,
        time_ms: i64,
        user: &str,
        text: &str,
    ) -> Result<bool, DbError>;

    /// Deletes the messages of the room named `room` numbered `last_gone`
    /// or lower (`--history-keep`).
    fn trim_history(&mut self, room: &str, last_gone: u64) -> Result<(), DbError>;

    /// Stores a DM for `to`; `NoSuchUser` if there is no such account.
    /// With `Some(mailbox)`, `MailboxFull` (and nothing stored) if `to`
    /// already has that many.
    fn store_dm(
        &mut self,
        to: &str,
        from: &str,
        time_ms: i64,
        text: &str,
        mailbox: Option<usize>,
    ) -> Result<(), DbError>;

    /// The DMs stored for `to`, oldest first (by arrival), at most `limit`
    /// of those for which `wanted(id)` is true. The thread keeps the
    /// claims and passes them in as `wanted`; the store knows nothing of
    /// DMs in flight. Reads only.
    fn pending_dms(
        &mut self,
        to: &str,
        limit: usize,
        wanted: &dyn Fn(i64) -> bool,
    ) -> Result<Vec<StoredDm>, DbError>;

    /// Deletes stored DMs by id (those written to their recipient).
    fn delete_dms(&mut self, ids: &[i64]) -> Result<(), DbError>;

    /// Does one moderation action and logs it, keeping the newest `keep`
    /// rows of the log (see `moderation.rs`); returns the target account's
    /// registered name (`""` for none).
    fn moderate(&mut self, moderation: &Moderation, keep: usize) -> Result<String, DbError>;

    /// Every room in creation order, with its last `history` messages, its
    /// next message number, its topic and its bans: what the server keeps
    /// in memory. Called once, at start, outside any batch.
    fn load_rooms(&mut self, history: usize) -> Result<Vec<RoomRecord>, DbError>;

    /// Closes the connection, after the last batch.
    fn close(self: Box<Self>) -> Result<(), DbError>;
}
