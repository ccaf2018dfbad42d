//! The SQLite store: one file, owned by one server (the default engine,
//! `--store sqlite:PATH` or `--db PATH`).
//!
//! [`SqliteStore`] is the [`Store`] the DB thread drives when the server
//! keeps what must last in a SQLite file: every statement of the database
//! layer on SQLite is run here, with its SQL text in `schema.rs`.
//!
//! # Why it suits one node
//!
//! SQLite is a library, not a server: the database is a file, and the only
//! processes that can reach it are those on the same machine. That makes
//! it the simplest store there is (nothing to install, a student can open
//! the file with `sqlite3`), and also the reason several server nodes
//! cannot share it: for that, see `postgres.rs`.
//!
//! # Cached statements
//!
//! Every statement is prepared once per connection and cached
//! (`prepare_cached`): a `SAY` costs one INSERT stepped, not one SQL text
//! parsed again. The savepoint statements are cached too, so a savepoint
//! per request is three short steps.
//!
//! # The batch's transaction, by hand
//!
//! rusqlite's `Transaction` borrows the connection, so it cannot live in
//! the same struct as the connection between calls. The store therefore
//! says `BEGIN IMMEDIATE`, `COMMIT` and `ROLLBACK` itself, and asks SQLite
//! (`is_autocommit`) whether a transaction is still open.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use super::store::{RoomLimits, Store};
use super::{
    schema, BanRecord, DbError, HistoryRecord, Moderation, RoomRecord, StoredDm, TopicRecord,
    UserRecord, BUSY_TIMEOUT, FOREVER,
};
use crate::error::{Error, Result};

/// The SQLite engine: the connection, and the `synchronous` mode it is in.
pub(crate) struct SqliteStore {
    /// The database; only the DB thread touches it once the store is moved
    /// there.
    conn: Connection,
    /// Whether `synchronous` is `FULL` now (else `NORMAL`): see "Why
    /// history may wait a little" in `thread.rs`.
    synchronous_full: bool,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the file at `path` (see
    /// [`open_connection`]).
    ///
    /// # Errors
    ///
    /// As [`open_connection`].
    pub(crate) fn open(path: &Path) -> Result<Self> {
        Ok(SqliteStore::new(open_connection(path)?))
    }

    /// A store on a connection that [`open_connection`] made.
    pub(crate) fn new(conn: Connection) -> Self {
        SqliteStore {
            conn,
            // As `open_connection` left it.
            synchronous_full: true,
        }
    }

    /// Makes the next COMMIT wait for an fsync (`full`), or not. Changed
    /// only when it changes: a batch of history after a batch of history
    /// costs no statement.
    ///
    /// With `synchronous=NORMAL`, in WAL mode, a COMMIT writes the log but
    /// does not wait for an fsync. The rows survive a crash of the server
    /// (the kernel has them); only a power cut before the next fsync can
    /// lose them, and the next batch that somebody waits for commits with
    /// `synchronous=FULL`, whose fsync makes everything before it durable
    /// too.
    fn set_synchronous(&mut self, full: bool) {
        if full == self.synchronous_full {
            return;
        }
        let mode = if full { "FULL" } else { "NORMAL" };
        match self.conn.pragma_update(None, "synchronous", mode) {
            Ok(()) => self.synchronous_full = full,
            // Staying at FULL is always safe; staying at NORMAL is not, and
            // SQLite cannot refuse this pragma outside a transaction.
            Err(e) => log::error!("db: cannot set synchronous={mode}: {e}"),
        }
    }

    /// Runs one cached statement without parameters (`BEGIN`, `COMMIT`…).
    fn run(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    fn begin(&mut self, durable: bool) -> Result<(), DbError> {
        self.set_synchronous(durable);
        // IMMEDIATE takes the write lock now, so we find out at BEGIN (not
        // half way through) if another process holds it too long.
        self.run("BEGIN IMMEDIATE")?;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), DbError> {
        // COMMIT: the moment of truth, and the fsync. If it fails (say, a
        // deferred foreign key is violated) SQLite may leave the
        // transaction open; we roll it back, so that nothing of the batch
        // remains, matching the error every request is about to get.
        match self.run("COMMIT") {
            Ok(()) => Ok(()),
            Err(e) => {
                self.rollback();
                Err(e.into())
            }
        }
    }

    fn rollback(&mut self) {
        if self.conn.is_autocommit() {
            // SQLite rolled it back already (or there was none).
            return;
        }
        if let Err(e) = self.run("ROLLBACK") {
            log::error!("db: cannot roll back: {e}");
        }
    }

    fn aborted(&self) -> bool {
        // Some errors (disk full, I/O error) make SQLite roll back the
        // *whole* transaction on its own; the connection is then back in
        // autocommit mode, one statement per transaction.
        self.conn.is_autocommit()
    }

    fn register(
        &mut self,
        name: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<String, DbError> {
        in_savepoint(&self.conn, |conn| {
            insert_named(conn, schema::INSERT_USER, name, Some(password_hash), now_ms)
        })
    }

    fn user(&mut self, name: &str) -> Result<Option<UserRecord>, DbError> {
        // A read needs no savepoint: it changes nothing to undo. It does
        // see the writes of earlier requests in this batch, as it should.
        let user = self
            .conn
            .prepare_cached(schema::SELECT_USER)?
            .query_row([name], |row| {
                Ok(UserRecord {
                    name: row.get(0)?,
                    password_hash: row.get(1)?,
                    admin: row.get(2)?,
                    suspended_until: row.get(3)?,
                })
            })
            .optional()?;
        Ok(user)
    }

    fn room(&mut self, name: &str) -> Result<Option<RoomRecord>, DbError> {
        let conn = &self.conn;
        let room = conn
            .prepare_cached(schema::SELECT_ROOM)?
            .query_row([name], room_record)
            .optional()?;
        match room {
            Some(mut room) => {
                room.bans = room_bans(conn, room.id)?;
                Ok(Some(room))
            }
            None => Ok(None),
        }
    }

    fn room_counts(&mut self, owner: &str) -> Result<(usize, usize), DbError> {
        // Reads only: no savepoint needed.
        let rooms = count(&self.conn, schema::COUNT_ROOMS, [])?;
        let owned = count(&self.conn, schema::COUNT_OWNED_ROOMS, [owner])?;
        Ok((rooms, owned))
    }

    fn set_password_hash(&mut self, name: &str, password_hash: &str) -> Result<(), DbError> {
        update_hash(
            &self.conn,
            schema::UPDATE_PASSWORD_HASH,
            name,
            password_hash,
            DbError::NoSuchUser,
        )
    }

    fn set_room_password_hash(&mut self, name: &str, password_hash: &str) -> Result<(), DbError> {
        let missing = DbError::Failed(format!("no private room named {name}"));
        update_hash(
            &self.conn,
            schema::UPDATE_ROOM_PASSWORD_HASH,
            name,
            password_hash,
            missing,
        )
    }

    fn create_room(
        &mut self,
        name: &str,
        password_hash: Option<&str>,
        owner: &str,
        now_ms: i64,
        limits: RoomLimits,
    ) -> Result<(String, i64), DbError> {
        // The counts and the insert share one savepoint, in a transaction
        // that holds the file's write lock (BEGIN IMMEDIATE): two racing
        // CREATEs are counted one after the other, so they cannot pass a
        // limit together.
        in_savepoint(&self.conn, |conn| {
            let exists = conn
                .prepare_cached(schema::ROOM_EXISTS)?
                .query_row([name], |_| Ok(()))
                .optional()?
                .is_some();
            if exists {
                return Err(DbError::Exists);
            }
            let rooms = count(conn, schema::COUNT_ROOMS, [])?;
            let owned = count(conn, schema::COUNT_OWNED_ROOMS, [owner])?;
            if rooms >= limits.max_rooms || owned >= limits.rooms_per_user {
                return Err(DbError::TooManyRooms);
            }
            let inserted = conn
                .prepare_cached(schema::INSERT_OWNED_ROOM)?
                .execute(params![name, password_hash, now_ms, owner])?;
            if inserted == 0 {
                Err(DbError::Exists)
            } else {
                Ok((name.to_owned(), conn.last_insert_rowid()))
            }
        })
    }

    fn append_history(
        &mut self,
        room_id: i64,
        seq: u64,
        time_ms: i64,
        user: &str,
        text: &str,
    ) -> Result<bool, DbError> {
        in_savepoint(&self.conn, |conn| {
            let inserted = conn
                .prepare_cached(schema::INSERT_MESSAGE)?
                .execute(params![room_id, seq, time_ms, user, text])?;
            Ok(inserted > 0)
        })
    }

    fn trim_history(&mut self, room: &str, last_gone: u64) -> Result<(), DbError> {
        // One indexed range per room (see [`schema::TRIM_HISTORY`]).
        in_savepoint(&self.conn, |conn| {
            conn.prepare_cached(schema::TRIM_HISTORY)?
                .execute(params![room, last_gone])?;
            Ok(())
        })
    }

    fn store_dm(
        &mut self,
        to: &str,
        from: &str,
        time_ms: i64,
        text: &str,
        mailbox: Option<usize>,
    ) -> Result<(), DbError> {
        // Counted in the same savepoint as the insert, under the file's
        // write lock: racing senders cannot pass the limit.
        in_savepoint(&self.conn, |conn| {
            if let Some(mailbox) = mailbox {
                if count(conn, schema::COUNT_DMS, [to])? >= mailbox {
                    return Err(DbError::MailboxFull);
                }
            }
            let inserted = conn
                .prepare_cached(schema::INSERT_DM)?
                .execute(params![to, from, time_ms, text])?;
            if inserted == 0 {
                Err(DbError::NoSuchUser)
            } else {
                Ok(())
            }
        })
    }

    fn pending_dms(
        &mut self,
        to: &str,
        limit: usize,
        wanted: &dyn Fn(i64) -> bool,
    ) -> Result<Vec<StoredDm>, DbError> {
        // Reads only, so no savepoint. SQLite produces the rows one at a
        // time, so those after the `limit`-th wanted one are never read.
        let mut select = self.conn.prepare_cached(schema::SELECT_DMS)?;
        let mut rows = select.query([to])?;
        let mut dms = Vec::new();
        while dms.len() < limit {
            let Some(row) = rows.next()? else { break };
            let id: i64 = row.get(0)?;
            if !wanted(id) {
                continue;
            }
            dms.push(StoredDm {
                id,
                from: row.get(1)?,
                time_ms: row.get(2)?,
                text: row.get(3)?,
            });
        }
        Ok(dms)
    }

    fn delete_dms(&mut self, ids: &[i64]) -> Result<(), DbError> {
        in_savepoint(&self.conn, |conn| {
            let mut delete = conn.prepare_cached(schema::DELETE_DM)?;
            for id in ids {
                delete.execute([id])?;
            }
            Ok(())
        })
    }

    fn moderate(&mut self, moderation: &Moderation, keep: usize) -> Result<String, DbError> {
        in_savepoint(&self.conn, |conn| {
            super::moderation::execute(conn, moderation, keep)
        })
    }

    fn load_rooms(&mut self, history: usize) -> Result<Vec<RoomRecord>, DbError> {
        Ok(load_rooms(&self.conn, history)?)
    }

    fn close(self: Box<Self>) -> Result<(), DbError> {
        self.conn.close().map_err(|(_, e)| DbError::from(e))
    }
}

/// Opens the file, sets the connection's PRAGMAs and migrates the schema.
///
/// - `journal_mode=WAL`: writers append to a log instead of rewriting pages
///   in place, so a commit costs one sequential write + fsync, and readers
///   (a student's `sqlite3` shell) do not block the server.
/// - `synchronous=FULL`: the fsync happens at *every* commit, so an account
///   we answered `OK` for survives `kill -9` and even a power cut. This is
///   the expensive setting; group commit (see `thread.rs`) pays it once per
///   batch instead of once per request. The store lowers it to `NORMAL`
///   for batches that nobody waits for, and raises it back for the next
///   one somebody does.
/// - `foreign_keys=ON`: SQLite ignores `REFERENCES` unless asked; we ask,
///   so a message can never point at a room that does not exist.
/// - `busy_timeout`: see [`BUSY_TIMEOUT`].
///
/// # Errors
///
/// [`Error::Db`] naming `path`, with "is not a SQLite database" when the
/// file holds something else.
pub(crate) fn open_connection(path: &Path) -> Result<Connection> {
    let describe = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Error::Db(format!(
            "{} is not a SQLite database ({e}); it was left as it is: give another file with \
             --db, or move this one aside",
            path.display()
        )),
        _ => Error::Db(format!(
            "cannot open {}: {e}; check that its folder exists and that you may write there, \
             or give another path with --db",
            path.display()
        )),
    };
    let mut conn = Connection::open(path).map_err(describe)?;
    // First: a second process opening the same new file at this moment
    // (a server and `server user add`) makes us wait for its lock instead
    // of failing at the first statement.
    conn.busy_timeout(BUSY_TIMEOUT).map_err(describe)?;
    // Reading the journal mode back is the first real read of the file, so
    // a file that is not a database fails here, with `describe`'s message.
    // Turning a new file to WAL needs a lock that SQLite does not wait for
    // (it answers "busy" at once, whatever the busy timeout, while another
    // connection is doing the same); so this one step is retried, for as
    // long as the busy timeout would have waited.
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mode: String = loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => break other.map_err(describe)?,
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!("{}: journal mode is {mode}, not WAL", path.display());
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(describe)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(describe)?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

/// Reads every room with its last `history` messages, its next sequence
/// number, its topic and its bans.
fn load_rooms(conn: &Connection, history: usize) -> rusqlite::Result<Vec<RoomRecord>> {
    // SQLite's LIMIT is an i64; no one keeps more history than that.
    let limit = i64::try_from(history).unwrap_or(i64::MAX);
    let mut rooms_stmt = conn.prepare(schema::SELECT_ROOMS)?;
    let mut history_stmt = conn.prepare(schema::SELECT_LAST_MESSAGES)?;
    let mut next_seq_stmt = conn.prepare(schema::SELECT_NEXT_SEQ)?;

    let rooms = rooms_stmt
        .query_map([], room_record)?
        .collect::<rusqlite::Result<Vec<_>>>()?;

    let mut records = Vec::with_capacity(rooms.len());
    for mut room in rooms {
        room.history = history_stmt
            .query_map((room.id, limit), |row| {
                Ok(HistoryRecord {
                    seq: row.get(0)?,
                    time_ms: row.get(1)?,
                    user: row.get(2)?,
                    text: row.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        room.next_seq = next_seq_stmt.query_row([room.id], |row| row.get(0))?;
        room.bans = room_bans(conn, room.id)?;
        records.push(room);
    }
    Ok(records)
}

/// A room from a row of [`schema::SELECT_ROOM`] or [`schema::SELECT_ROOMS`],
/// without history or bans yet.
fn room_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RoomRecord> {
    let topic = match (row.get(4)?, row.get(5)?, row.get(6)?) {
        (Some(text), Some(by), Some(time_ms)) => Some(TopicRecord { by, time_ms, text }),
        _ => None,
    };
    Ok(RoomRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        password_hash: row.get(2)?,
        owner: row.get(3)?,
        topic,
        bans: Vec::new(),
        history: Vec::new(),
        next_seq: 1,
    })
}

/// The bans of one room, ended ones included.
fn room_bans(conn: &Connection, room_id: i64) -> rusqlite::Result<Vec<BanRecord>> {
    conn.prepare_cached(schema::SELECT_ROOM_BANS)?
        .query_map([room_id], |row| {
            Ok(BanRecord {
                user: row.get(0)?,
                until_ms: row.get::<_, Option<i64>>(1)?.unwrap_or(FOREVER),
                by: row.get(2)?,
            })
        })?
        .collect()
}

/// Runs a `SELECT COUNT(*)` and returns the count.
fn count<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> Result<usize, DbError> {
    let n: i64 = conn
        .prepare_cached(sql)?
        .query_row(params, |row| row.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Replaces one stored password hash (an account's or a room's, by the
/// `UPDATE` in `sql`, whose parameters are the name and the new hash), in
/// its own savepoint; `missing` is the answer when no row matched.
fn update_hash(
    conn: &Connection,
    sql: &str,
    name: &str,
    password_hash: &str,
    missing: DbError,
) -> Result<(), DbError> {
    in_savepoint(conn, |conn| {
        let changed = conn
            .prepare_cached(sql)?
            .execute(params![name, password_hash])?;
        if changed == 0 {
            Err(missing)
        } else {
            Ok(())
        }
    })
}

/// Runs `work` inside a SAVEPOINT of the batch's transaction: kept (RELEASE)
/// if it returns `Ok`, undone (ROLLBACK TO) if it returns `Err`, so that a
/// failed request leaves no trace and does not disturb the others.
///
/// The three statements are prepared once and cached, like every other
/// statement of this store: a savepoint per request is then three short
/// steps, not three SQL texts parsed again for every message said.
fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    conn.prepare_cached("SAVEPOINT request")?.execute([])?;
    match work(conn) {
        Ok(value) => {
            // RELEASE: the changes join the outer transaction; they are
            // still not on disk until the batch's COMMIT.
            conn.prepare_cached("RELEASE request")?.execute([])?;
            Ok(value)
        }
        Err(error) => {
            // Undo this request's changes and forget the savepoint. If the
            // error made SQLite abort the whole transaction, the savepoint
            // is gone already: the batch checks for that and stops.
            let undo = conn
                .prepare_cached("ROLLBACK TO request")
                .and_then(|mut stmt| stmt.execute([]))
                .and_then(|_| conn.prepare_cached("RELEASE request")?.execute([]));
            if let Err(e) = undo {
                log::debug!("db: savepoint not rolled back: {e}");
            }
            Err(error)
        }
    }
}

/// Inserts a user or a room (`sql` is `INSERT_USER` or `INSERT_ROOM`) and
/// returns the stored name.
///
/// The `ON CONFLICT DO NOTHING` in the SQL turns "name taken in any letter
/// case" into "0 rows inserted" instead of an error, so `Exists` is an
/// ordinary answer, not a failed statement. Two connection threads racing
/// for one name cannot both win: their requests run one after the other on
/// the DB thread, and the `UNIQUE COLLATE NOCASE` index decides.
fn insert_named(
    conn: &Connection,
    sql: &str,
    name: &str,
    password_hash: Option<&str>,
    now_ms: i64,
) -> Result<String, DbError> {
    let inserted = conn
        .prepare_cached(sql)?
        .execute(params![name, password_hash, now_ms])?;
    if inserted == 0 {
        Err(DbError::Exists)
    } else {
        // We inserted exactly this spelling, so it is the stored one.
        Ok(name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on a fresh, migrated file.
    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("chat.db")).unwrap();
        (dir, store)
    }

    /// The connection's `PRAGMA synchronous` (1 NORMAL, 2 FULL).
    fn synchronous(store: &SqliteStore) -> i64 {
        store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    /// A batch that is not durable commits without waiting for an fsync
    /// (`NORMAL`), and the next durable one with it (`FULL`); both are
    /// committed.
    #[test]
    fn a_lazy_batch_commits_without_fsync() {
        let (_dir, mut s) = store();
        assert_eq!(synchronous(&s), 2, "FULL to begin with");
        s.begin(false).unwrap();
        let (_, room) = s
            .create_room(
                "r",
                None,
                "ann",
                0,
                RoomLimits {
                    max_rooms: 10,
                    rooms_per_user: 10,
                },
            )
            .unwrap();
        assert_eq!(s.append_history(room, 1, 0, "u", "t"), Ok(true));
        s.commit().unwrap();
        assert_eq!(synchronous(&s), 1, "NORMAL for history alone");
        s.begin(true).unwrap();
        assert_eq!(s.register("ann", "h", 0), Ok("ann".into()));
        s.commit().unwrap();
        assert_eq!(synchronous(&s), 2, "FULL again for an account");
        let messages: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(messages, 1);
    }

    /// A failed COMMIT leaves no transaction open and nothing of the
    /// batch. (A deferred foreign key, checked only at COMMIT and violated
    /// by a trigger, makes the COMMIT fail on demand.)
    #[test]
    fn a_failed_commit_is_rolled_back() {
        let (_dir, mut s) = store();
        s.conn.execute_batch(
            "CREATE TABLE poison (room_id INTEGER REFERENCES rooms(id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TRIGGER poison_on_mallory AFTER INSERT ON users WHEN NEW.name = 'mallory'
             BEGIN INSERT INTO poison VALUES (999); END;",
        )
        .unwrap();
        s.begin(true).unwrap();
        s.register("mallory", "h", 0).unwrap();
        assert!(!s.aborted());
        let error = s.commit().unwrap_err();
        assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
        assert!(s.conn.is_autocommit(), "the failed transaction is gone");
        assert_eq!(s.user("mallory"), Ok(None));
    }
}
