//! The database layout, its version number, and the migrations that bring an
//! older file up to date. Every SQL statement of the database layer is a
//! named constant here, so the whole layout can be read in one place.
//!
//! # Versions
//!
//! SQLite keeps a free integer in the file header, `PRAGMA user_version`,
//! which we use as the schema version:
//!
//! | version | what it is |
//! |---|---|
//! | 0 | a new, empty file, or a database made by the Python original of the course (tables `users(username, …)` and `rooms(…, is_private, …)`) |
//! | 1 | the layout of [`CREATE_SCHEMA_V1`] |
//! | 2 | rooms get an owner (`rooms.owner_id`, `NULL` for the rooms made before it), for `--rooms-per-user` |
//! | 3 | moderation: the admin role (`users.admin`), room topics, bans, suspensions, and the moderation log |
//!
//! A new file is made at version 1 and then migrated like an old one, so
//! there is one way to reach each version and the migrations are exercised
//! every time a database is created.
//!
//! A migration runs inside one transaction together with the update of
//! `user_version`, so a crash half-way leaves the old file untouched and the
//! next start simply tries again.
//!
//! # Names
//!
//! User and room names are stored as first given ("Alice") but compared
//! without regard to ASCII case, through `COLLATE NOCASE` on the column:
//! the `UNIQUE` index then refuses "alice" once "Alice" exists, and every
//! `WHERE name = ?` finds "Alice" when asked for "ALICE".

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result};

/// The schema version this code creates and understands.
pub const SCHEMA_VERSION: i64 = 3;

/// The layout of version 1, created in one go on an empty file (and then
/// migrated to version 2 by [`MIGRATE_1_TO_2`]).
///
/// - `users`: one row per account; `password_hash` is an argon2id PHC
///   string, or a legacy SHA-256 hex string until its owner next logs in.
/// - `rooms`: `password_hash` is `NULL` for a public room.
/// - `messages`: room history; `seq` is the room's message number, given by
///   the server in the order members saw the messages.
/// - `dms`: direct messages waiting for an offline user; deleted once
///   written to the recipient's socket. The index makes "this user's DMs"
///   a lookup (and a count, for `--mailbox`), not a scan.
pub const CREATE_SCHEMA_V1: &str = "
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL
);
CREATE TABLE rooms (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT    NULL,
    created_ms    INTEGER NOT NULL
);
CREATE TABLE messages (
    id      INTEGER PRIMARY KEY,
    room_id INTEGER NOT NULL REFERENCES rooms(id),
    seq     INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    user    TEXT    NOT NULL,
    text    TEXT    NOT NULL,
    UNIQUE (room_id, seq)
);
CREATE TABLE dms (
    id         INTEGER PRIMARY KEY,
    to_user_id INTEGER NOT NULL REFERENCES users(id),
    from_user  TEXT    NOT NULL,
    time_ms    INTEGER NOT NULL,
    text       TEXT    NOT NULL
);
CREATE INDEX dms_to_user_id ON dms (to_user_id);
";

/// Sets the schema version; run in the same transaction as the migration.
/// (`PRAGMA` cannot take a bound parameter, hence the literal.)
pub const SET_VERSION_1: &str = "PRAGMA user_version = 1";

/// Version 1 → 2: every room gets an owner, the account that created it.
/// The rooms that exist already have none (`NULL`): they count toward
/// `--max-rooms` but toward nobody's `--rooms-per-user`. `ADD COLUMN` keeps
/// every row as it is; the index makes "how many rooms does this account
/// own" a lookup, not a scan.
pub const MIGRATE_1_TO_2: &str = "
ALTER TABLE rooms ADD COLUMN owner_id INTEGER NULL REFERENCES users(id);
CREATE INDEX rooms_owner_id ON rooms (owner_id);
PRAGMA user_version = 2;
";

/// Version 2 → 3: moderation.
///
/// - `users.admin`: 1 for an admin (granted only by `server user admin`).
/// - `rooms.topic*`: the room's topic, who set it and when; `NULL` for none.
/// - `bans`: one row per user banned from a room; `until_ms` `NULL` means
///   until lifted. An expired row is simply ignored (and replaced by the
///   next ban): expiry is decided when it matters, at `JOIN`, with no timer.
/// - `suspensions`: one row per suspended account, the same way.
/// - `moderation`: every moderation action, for the teacher to read later:
///   when, who, what, to whom, in which room, why, until when.
///
/// Every existing row is kept as it is: the new columns have defaults and
/// the new tables start empty.
pub const MIGRATE_2_TO_3: &str = "
ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN topic TEXT NULL;
ALTER TABLE rooms ADD COLUMN topic_by TEXT NULL;
ALTER TABLE rooms ADD COLUMN topic_ms INTEGER NULL;
CREATE TABLE bans (
    room_id    INTEGER NOT NULL REFERENCES rooms(id),
    user_id    INTEGER NOT NULL REFERENCES users(id),
    until_ms   INTEGER NULL,
    by_user    TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE TABLE suspensions (
    user_id    INTEGER NOT NULL PRIMARY KEY REFERENCES users(id),
    until_ms   INTEGER NULL,
    by_user    TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL
);
CREATE TABLE moderation (
    id       INTEGER PRIMARY KEY,
    time_ms  INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    target   TEXT    NULL,
    room     TEXT    NULL,
    reason   TEXT    NULL,
    until_ms INTEGER NULL
);
PRAGMA user_version = 3;
";

/// Whether a table of the given name exists.
pub const TABLE_EXISTS: &str = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1";

/// Whether the table `?1` has a column `?2` (tells the Python layout apart).
pub const COLUMN_EXISTS: &str = "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2";

/// Moves the Python `users` table aside, so the new one can take its name.
pub const RENAME_LEGACY_USERS: &str = "ALTER TABLE users RENAME TO legacy_users";

/// Moves the Python `rooms` table aside, so the new one can take its name.
pub const RENAME_LEGACY_ROOMS: &str = "ALTER TABLE rooms RENAME TO legacy_rooms";

/// Reads the Python users, oldest first (so the first spelling of a name
/// wins when two differ only in case).
pub const SELECT_LEGACY_USERS: &str =
    "SELECT id, username, password_hash FROM legacy_users ORDER BY id";

/// Reads the Python rooms, oldest first. `is_private` is read as whatever
/// SQLite stored (0/1, TRUE/FALSE, text): see `is_truthy`.
pub const SELECT_LEGACY_ROOMS: &str =
    "SELECT id, name, is_private, password_hash FROM legacy_rooms ORDER BY id";

/// Drops the Python `users` table once its rows are copied.
pub const DROP_LEGACY_USERS: &str = "DROP TABLE legacy_users";

/// Drops the Python `rooms` table once its rows are copied.
pub const DROP_LEGACY_ROOMS: &str = "DROP TABLE legacy_rooms";

/// Adds an account; does nothing (0 rows changed) if the name is taken in
/// any letter case. Used by registration and by the migration.
pub const INSERT_USER: &str = "INSERT INTO users (name, password_hash, created_ms)
     VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING";

/// Adds a room without an owner (the migration of the Python rooms); does
/// nothing (0 rows changed) if the name is taken.
pub const INSERT_ROOM: &str = "INSERT INTO rooms (name, password_hash, created_ms)
     VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING";

/// Adds a room owned by the account named `?4` (any case; `NULL` if there
/// is no such account); does nothing (0 rows changed) if the name is taken.
pub const INSERT_OWNED_ROOM: &str = "INSERT INTO rooms (name, password_hash, created_ms, owner_id)
     VALUES (?1, ?2, ?3, (SELECT id FROM users WHERE name = ?4))
     ON CONFLICT (name) DO NOTHING";

/// Whether a room of that name exists, in any case.
pub const ROOM_EXISTS: &str = "SELECT 1 FROM rooms WHERE name = ?1";

/// Rooms in all, for `--max-rooms`. (Rooms are never deleted today; one
/// that is gone would simply no longer be counted.)
pub const COUNT_ROOMS: &str = "SELECT COUNT(*) FROM rooms";

/// Rooms owned by the account named `?1`, for `--rooms-per-user`; uses the
/// `rooms_owner_id` index.
pub const COUNT_OWNED_ROOMS: &str =
    "SELECT COUNT(*) FROM rooms WHERE owner_id = (SELECT id FROM users WHERE name = ?1)";

/// Looks an account up by name, in any case; returns the stored spelling.
/// The columns after the first two are the admin flag and the end of the
/// account's suspension: `NULL` with no suspension row; a row whose end is
/// `NULL` (until lifted) reads as the largest time there is.
pub const SELECT_USER: &str = "SELECT u.name, u.password_hash, u.admin,
         CASE WHEN s.user_id IS NULL THEN NULL ELSE COALESCE(s.until_ms, 9223372036854775807) END
     FROM users AS u LEFT JOIN suspensions AS s ON s.user_id = u.id
     WHERE u.name = ?1";

/// One room by name in any case: its id, name as stored, password hash,
/// owner's name (`NULL` for none) and topic, who set it and when.
pub const SELECT_ROOM: &str =
    "SELECT r.id, r.name, r.password_hash, o.name, r.topic, r.topic_by, r.topic_ms
     FROM rooms AS r LEFT JOIN users AS o ON o.id = r.owner_id
     WHERE r.name = ?1";

/// Replaces a private room's password hash (legacy upgrade).
pub const UPDATE_ROOM_PASSWORD_HASH: &str =
    "UPDATE rooms SET password_hash = ?2 WHERE name = ?1 AND password_hash IS NOT NULL";

/// Replaces an account's password hash (legacy upgrade).
pub const UPDATE_PASSWORD_HASH: &str = "UPDATE users SET password_hash = ?2 WHERE name = ?1";

/// Appends one message to the history of the room whose id is `?1`;
/// inserts nothing if that room no longer exists (closed: the caller
/// checks the change count). By id, not by name, so that a message said
/// just before a `CLOSE` can never land in a new room of the same name.
pub const INSERT_MESSAGE: &str = "INSERT INTO messages (room_id, seq, time_ms, user, text)
     SELECT id, ?2, ?3, ?4, ?5 FROM rooms WHERE id = ?1";

/// Stores a direct message for a user; inserts nothing if the recipient is
/// not registered (the caller reports `NoSuchUser`).
pub const INSERT_DM: &str = "INSERT INTO dms (to_user_id, from_user, time_ms, text)
     SELECT id, ?2, ?3, ?4 FROM users WHERE name = ?1";

/// A user's stored DMs, oldest first. Ordered by `id` (arrival order), not
/// by `time_ms`, so a clock step backwards cannot reorder them. The caller
/// steps through the rows and stops when it has enough (SQLite produces
/// them one at a time, so the rest are never read).
pub const SELECT_DMS: &str = "SELECT d.id, d.from_user, d.time_ms, d.text
     FROM dms AS d JOIN users AS u ON u.id = d.to_user_id
     WHERE u.name = ?1 ORDER BY d.id";

/// Deletes one stored DM by its id (one that was written to its
/// recipient's socket).
pub const DELETE_DM: &str = "DELETE FROM dms WHERE id = ?1";

/// How many DMs wait for the user named `?1`, for `--mailbox`; uses the
/// `dms_to_user_id` index.
pub const COUNT_DMS: &str =
    "SELECT COUNT(*) FROM dms WHERE to_user_id = (SELECT id FROM users WHERE name = ?1)";

/// Deletes the messages of room `?1` numbered `?2` or lower: what falls out
/// of `--history-keep`. A range of the `UNIQUE (room_id, seq)` index, so it
/// costs the rows it deletes, not the size of the table (`EXPLAIN QUERY
/// PLAN`: `SEARCH messages USING INDEX sqlite_autoindex_messages_1
/// (room_id=? AND seq<?)`).
pub const TRIM_HISTORY: &str = "DELETE FROM messages
     WHERE room_id = (SELECT id FROM rooms WHERE name = ?1) AND seq <= ?2";

/// Every room, in the order they were created, with the columns of
/// [`SELECT_ROOM`].
pub const SELECT_ROOMS: &str =
    "SELECT r.id, r.name, r.password_hash, o.name, r.topic, r.topic_by, r.topic_ms
     FROM rooms AS r LEFT JOIN users AS o ON o.id = r.owner_id
     ORDER BY r.id";

/// The last `?2` messages of room `?1`, oldest first: the inner query picks
/// the newest ones, the outer one puts them back in order.
pub const SELECT_LAST_MESSAGES: &str = "SELECT seq, time_ms, user, text FROM (
         SELECT seq, time_ms, user, text FROM messages
         WHERE room_id = ?1 ORDER BY seq DESC LIMIT ?2
     ) ORDER BY seq ASC";

/// The next free message number of room `?1` (1 for an empty room).
pub const SELECT_NEXT_SEQ: &str =
    "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE room_id = ?1";

// ----- moderation (version 3) -----------------------------------------

/// An account's id and registered name, by name in any case.
pub const SELECT_USER_ID: &str = "SELECT id, name FROM users WHERE name = ?1";

/// Bans user `?2` from room `?1` until `?3` (`NULL`: until lifted), by
/// `?4` for reason `?5` at `?6`; a ban that exists is replaced.
pub const UPSERT_BAN: &str =
    "INSERT INTO bans (room_id, user_id, until_ms, by_user, reason, created_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (room_id, user_id) DO UPDATE SET until_ms = excluded.until_ms,
         by_user = excluded.by_user, reason = excluded.reason, created_ms = excluded.created_ms";

/// Whether user `?2` is banned from room `?1` at time `?3`.
pub const ACTIVE_BAN: &str = "SELECT 1 FROM bans
     WHERE room_id = ?1 AND user_id = ?2 AND (until_ms IS NULL OR until_ms > ?3)";

/// Deletes the ban of user `?2` from room `?1`, ended or not.
pub const DELETE_BAN: &str = "DELETE FROM bans WHERE room_id = ?1 AND user_id = ?2";

/// Suspends user `?1` until `?2` (`NULL`: until lifted), by `?3` for
/// reason `?4` at `?5`; a suspension that exists is replaced.
pub const UPSERT_SUSPENSION: &str =
    "INSERT INTO suspensions (user_id, until_ms, by_user, reason, created_ms)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (user_id) DO UPDATE SET until_ms = excluded.until_ms,
         by_user = excluded.by_user, reason = excluded.reason, created_ms = excluded.created_ms";

/// Whether user `?1` is suspended at time `?2`.
pub const ACTIVE_SUSPENSION: &str = "SELECT 1 FROM suspensions
     WHERE user_id = ?1 AND (until_ms IS NULL OR until_ms > ?2)";

/// Deletes the suspension of user `?1`, ended or not.
pub const DELETE_SUSPENSION: &str = "DELETE FROM suspensions WHERE user_id = ?1";

/// Sets room `?1`'s topic to `?2`, set by `?3` at `?4`.
pub const UPDATE_TOPIC: &str =
    "UPDATE rooms SET topic = ?2, topic_by = ?3, topic_ms = ?4 WHERE id = ?1";

/// Deletes the bans of room `?1` (closing it).
pub const DELETE_ROOM_BANS: &str = "DELETE FROM bans WHERE room_id = ?1";

/// Deletes the history of room `?1` (closing it).
pub const DELETE_ROOM_MESSAGES: &str = "DELETE FROM messages WHERE room_id = ?1";

/// Deletes room `?1` itself, its topic with it (closing it).
pub const DELETE_ROOM: &str = "DELETE FROM rooms WHERE id = ?1";

/// One row of the moderation log: when, who, what, to whom, where, why,
/// until when.
pub const INSERT_MODERATION: &str =
    "INSERT INTO moderation (time_ms, actor, action, target, room, reason, until_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Deletes the moderation log's rows numbered `?1` or lower: what falls
/// out of `--moderation-keep`.
pub const TRIM_MODERATION: &str = "DELETE FROM moderation WHERE id <= ?1";

/// The bans of room `?1`, ended ones included (the reader decides), oldest
/// first: the user's registered name, the end, who banned.
pub const SELECT_ROOM_BANS: &str = "SELECT u.name, b.until_ms, b.by_user
     FROM bans AS b JOIN users AS u ON u.id = b.user_id
     WHERE b.room_id = ?1 ORDER BY b.created_ms, u.name";

// ----- the server's command line (`server user ...`) --------------------

/// `server user passwd`: replaces the password hash of the account named
/// `?1` (any case) with `?2`; returns the name as stored, and no row if
/// there is no such account.
pub const CHANGE_PASSWORD_HASH: &str =
    "UPDATE users SET password_hash = ?2 WHERE name = ?1 RETURNING name";

/// `server user admin`: the account named `?1` (any case): its id, its
/// name as stored, and whether it is an admin.
pub const SELECT_USER_ADMIN: &str = "SELECT id, name, admin FROM users WHERE name = ?1";

/// `server user admin ... off`: how many admins there are, so that the
/// last one is not removed by mistake.
pub const COUNT_ADMINS: &str = "SELECT COUNT(*) FROM users WHERE admin = 1";

/// `server user admin`: grants (`?2` = 1) or removes (0) the admin role of
/// the account with id `?1`.
pub const UPDATE_USER_ADMIN: &str = "UPDATE users SET admin = ?2 WHERE id = ?1";

/// A moderation action taken from the server's command line (actor
/// `server`, no room, no end): at `?1`, action `?2` on the account `?3`,
/// with the reason `?4` (`NULL` for none).
pub const LOG_SERVER_MODERATION: &str =
    "INSERT INTO moderation (time_ms, actor, action, target, room, reason, until_ms)
     VALUES (?1, 'server', ?2, ?3, NULL, ?4, NULL)";

/// `server user list`: every account, by name in any case, with its admin
/// flag, its creation time (0 when unknown: migrated from the Python
/// original), and the suspension in force at `?1` if any: whether there is
/// one, and its end (`NULL`: until lifted). An expired suspension row is
/// not joined, so it reads as none.
pub const SELECT_USER_LIST: &str = "SELECT u.name, u.admin, u.created_ms,
         s.user_id IS NOT NULL, s.until_ms
     FROM users AS u
     LEFT JOIN suspensions AS s
         ON s.user_id = u.id AND (s.until_ms IS NULL OR s.until_ms > ?1)
     ORDER BY u.name, u.id";

/// Brings the database to [`SCHEMA_VERSION`], whatever version it is at.
///
/// # Errors
///
/// [`Error::Db`] if the file's version is newer than this server knows, if
/// a version-0 file holds tables we do not recognise, or if SQLite fails.
/// On error nothing has changed in the file.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::Db(format!(
            "database schema version {version} is newer than this server ({SCHEMA_VERSION})"
        )));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    // IMMEDIATE takes the write lock at once, so another process cannot
    // sneak in between our check and our changes. Every step runs in this
    // one transaction: a crash half-way leaves the file as it was.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the lock: another process (a second server, or
    // `server user add` started at the same moment on a new file) may have
    // migrated the file while we waited for the lock.
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version < 1 {
        migrate_0_to_1(&tx)
            .map_err(|e| Error::Db(format!("migrating to schema version 1: {e}")))?;
    }
    if version < 2 {
        tx.execute_batch(MIGRATE_1_TO_2)
            .map_err(|e| Error::Db(format!("migrating to schema version 2: {e}")))?;
    }
    tx.execute_batch(MIGRATE_2_TO_3)
        .map_err(|e| Error::Db(format!("migrating to schema version 3: {e}")))?;
    tx.commit()?;
    Ok(())
}

/// Version 0 → 1: creates the current tables and, if the Python original's
/// tables are there, moves their rows over. Runs inside the caller's
/// transaction; an error leaves everything to be rolled back.
fn migrate_0_to_1(conn: &Connection) -> Result<()> {
    let legacy_users = has_legacy_table(conn, "users", "username")?;
    let legacy_rooms = has_legacy_table(conn, "rooms", "is_private")?;
    if legacy_users {
        conn.execute_batch(RENAME_LEGACY_USERS)?;
    }
    if legacy_rooms {
        conn.execute_batch(RENAME_LEGACY_ROOMS)?;
    }
    conn.execute_batch(CREATE_SCHEMA_V1)?;

    if legacy_users {
        copy_legacy_users(conn)?;
        conn.execute_batch(DROP_LEGACY_USERS)?;
    }
    if legacy_rooms {
        copy_legacy_rooms(conn)?;
        conn.execute_batch(DROP_LEGACY_ROOMS)?;
    }
    conn.execute_batch(SET_VERSION_1)?;
    Ok(())
}

/// True if `table` exists and has `marker_column`, i.e. is the Python
/// layout.
///
/// # Errors
///
/// [`Error::Db`] if the table exists but without the marker column: a
/// version-0 file with some other `users`/`rooms` table is not ours to
/// rewrite.
fn has_legacy_table(conn: &Connection, table: &str, marker_column: &str) -> Result<bool> {
    let exists = conn
        .query_row(TABLE_EXISTS, [table], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Ok(false);
    }
    let has_marker = conn
        .query_row(COLUMN_EXISTS, [table, marker_column], |_| Ok(()))
        .optional()?
        .is_some();
    if has_marker {
        Ok(true)
    } else {
        Err(Error::Db(format!(
            "schema version 0 with an unrecognised table `{table}` (no column `{marker_column}`)"
        )))
    }
}

/// Copies the Python users into `users`: the name becomes `name`, the
/// SHA-256 hex hash is kept as it is (`auth` recognises it as legacy and it
/// is upgraded at the next login). A name that differs from an earlier one
/// only in letter case cannot be stored any more; it is skipped with a
/// warning (never logging the hash).
fn copy_legacy_users(conn: &Connection) -> Result<()> {
    let mut select = conn.prepare(SELECT_LEGACY_USERS)?;
    let mut insert = conn.prepare(INSERT_USER)?;
    let mut rows = select.query([])?;
    let (mut copied, mut skipped) = (0u64, 0u64);
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let name: String = row.get(1)?;
        let hash: String = row.get(2)?;
        // The Python tables have no creation time; 0 means "unknown".
        if insert.execute(params![name, hash, 0_i64])? == 0 {
            log::warn!(
                "migration: skipping legacy user #{id} {name:?}: \
                 an earlier user has the same name in another letter case"
            );
            skipped += 1;
        } else {
            copied += 1;
        }
    }
    log::info!("migration: copied {copied} legacy users, skipped {skipped}");
    Ok(())
}

/// Copies the Python rooms into `rooms`. A room keeps its password hash only
/// if it was private; a "private" room without a password could never be
/// entered, so it becomes public (with a warning). Case collisions are
/// skipped like users.
fn copy_legacy_rooms(conn: &Connection) -> Result<()> {
    let mut select = conn.prepare(SELECT_LEGACY_ROOMS)?;
    let mut insert = conn.prepare(INSERT_ROOM)?;
    let mut rows = select.query([])?;
    let (mut copied, mut skipped) = (0u64, 0u64);
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let name: String = row.get(1)?;
        let is_private = is_truthy(&row.get::<_, Value>(2)?);
        let hash: Option<String> = row.get(3)?;
        let hash = hash.filter(|h| !h.is_empty());
        let password_hash = match (is_private, hash) {
            (true, Some(hash)) => Some(hash),
            (true, None) => {
                log::warn!("migration: legacy room {name:?} is private without a password; it becomes public");
                None
            }
            (false, _) => None,
        };
        if insert.execute(params![name, password_hash, 0_i64])? == 0 {
            log::warn!(
                "migration: skipping legacy room #{id} {name:?}: \
                 an earlier room has the same name in another letter case"
            );
            skipped += 1;
        } else {
            copied += 1;
        }
    }
    log::info!("migration: copied {copied} legacy rooms, skipped {skipped}");
    Ok(())
}

/// Reads a flag the way the Python original may have stored it: SQLite has
/// no boolean type, so `is_private` may hold 0/1, the text "TRUE"/"false",
/// or NULL.
fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Integer(n) => *n != 0,
        Value::Real(x) => *x != 0.0,
        Value::Text(s) => {
            let s = s.trim();
            s.eq_ignore_ascii_case("true")
                || s.eq_ignore_ascii_case("t")
                || s.eq_ignore_ascii_case("yes")
                || s.parse::<f64>().is_ok_and(|x| x != 0.0)
        }
        Value::Blob(b) => b.iter().any(|&byte| byte != 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::open;

    /// The Python original's exact schema.
    const PYTHON_SCHEMA: &str = "
        CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT UNIQUE NOT NULL, password_hash TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS rooms (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, is_private INTEGER NOT NULL DEFAULT 0, password_hash TEXT);
    ";

    /// `hashlib.sha256(pw.encode()).hexdigest()`, as Python stored it.
    fn python_hash(password: &str) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(password.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads `PRAGMA user_version` of a file.
    fn user_version(path: &std::path::Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    /// Flags are read the way Python/SQLite may have written them.
    #[test]
    fn truthy_values() {
        assert!(is_truthy(&Value::Integer(1)));
        assert!(!is_truthy(&Value::Integer(0)));
        assert!(is_truthy(&Value::Text("TRUE".into())));
        assert!(is_truthy(&Value::Text("1".into())));
        assert!(!is_truthy(&Value::Text("false".into())));
        assert!(!is_truthy(&Value::Text("0".into())));
        assert!(!is_truthy(&Value::Null));
    }

    /// A Python-made database is migrated in place: users and rooms keep
    /// their names and hashes, privacy is read from `is_private`, case
    /// collisions keep the first spelling, and a second open changes nothing.
    #[test]
    fn migrates_the_python_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(PYTHON_SCHEMA).unwrap();
            let add_user = "INSERT INTO users (username, password_hash) VALUES (?1, ?2)";
            conn.execute(add_user, ["alice", &python_hash("123")])
                .unwrap();
            conn.execute(add_user, ["Bob", &python_hash("pw bob")])
                .unwrap();
            // Allowed by Python's case-sensitive UNIQUE; collides for us.
            conn.execute(add_user, ["ALICE", &python_hash("other")])
                .unwrap();
            let add_room =
                "INSERT INTO rooms (name, is_private, password_hash) VALUES (?1, ?2, ?3)";
            conn.execute(add_room, params!["lobby", 0, None::<String>])
                .unwrap();
            conn.execute(add_room, params!["plaza", 0, ""]).unwrap();
            conn.execute(add_room, params!["secret", 1, python_hash("s3")])
                .unwrap();
            // Stored as text TRUE/FALSE by some other tool.
            conn.execute(add_room, params!["vault", "TRUE", python_hash("v")])
                .unwrap();
            conn.execute(add_room, params!["open", "FALSE", python_hash("x")])
                .unwrap();
            conn.execute(add_room, params!["LOBBY", 0, None::<String>])
                .unwrap();
        }
        assert_eq!(user_version(&path), 0);

        let (db, thread, rooms) = open(&path, 50).unwrap();
        let alice = db.user("ALICE").unwrap().expect("alice migrated");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.password_hash, python_hash("123"));
        let bob = db.user("bob").unwrap().expect("Bob migrated");
        assert_eq!(bob.name, "Bob");
        assert_eq!(bob.password_hash, python_hash("pw bob"));

        let summary: Vec<(String, Option<String>)> = rooms
            .iter()
            .map(|r| (r.name.clone(), r.password_hash.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("lobby".to_string(), None),
                ("plaza".to_string(), None),
                ("secret".to_string(), Some(python_hash("s3"))),
                ("vault".to_string(), Some(python_hash("v"))),
                ("open".to_string(), None),
            ]
        );
        assert!(rooms
            .iter()
            .all(|r| r.history.is_empty() && r.next_seq == 1));
        drop(db);
        thread.join().unwrap();
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        {
            let conn = Connection::open(&path).unwrap();
            let legacy_left: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'legacy_%'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(legacy_left, 0);
        }

        // Opening again is a no-op: same users, same rooms, same version.
        let (db, thread, rooms_again) = open(&path, 50).unwrap();
        assert_eq!(rooms_again.len(), 5);
        assert_eq!(
            db.user("alice").unwrap().unwrap().password_hash,
            python_hash("123")
        );
        drop(db);
        thread.join().unwrap();
        assert_eq!(user_version(&path), SCHEMA_VERSION);
    }

    /// A version-2 file (the layout before moderation) keeps every account,
    /// room, message and stored DM, and gains the moderation columns and
    /// tables with nothing in them.
    #[test]
    fn migrates_a_version_2_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(CREATE_SCHEMA_V1).unwrap();
            conn.execute_batch(MIGRATE_1_TO_2).unwrap();
            conn.execute_batch(
                "INSERT INTO users (name, password_hash, created_ms) VALUES ('Ana', 'h1', 5);
                 INSERT INTO rooms (name, password_hash, created_ms, owner_id) VALUES ('sala', NULL, 6, 1);
                 INSERT INTO messages (room_id, seq, time_ms, user, text) VALUES (1, 1, 7, 'Ana', 'oi');
                 INSERT INTO dms (to_user_id, from_user, time_ms, text) VALUES (1, 'bob', 8, 'psst');",
            )
            .unwrap();
        }
        assert_eq!(user_version(&path), 2);
        drop(open(&path, 50).unwrap());
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        let conn = Connection::open(&path).unwrap();
        let user: (String, String, i64, i64) = conn
            .query_row(
                "SELECT name, password_hash, created_ms, admin FROM users",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(user, ("Ana".into(), "h1".into(), 5, 0));
        let room: (String, i64, Option<String>) = conn
            .query_row("SELECT name, owner_id, topic FROM rooms", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(room, ("sala".into(), 1, None));
        let text: String = conn
            .query_row("SELECT text FROM messages WHERE seq = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(text, "oi");
        let dm: String = conn
            .query_row("SELECT text FROM dms", [], |r| r.get(0))
            .unwrap();
        assert_eq!(dm, "psst");
        for table in ["bans", "suspensions", "moderation"] {
            let n: i64 = conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 0, "{table}");
        }
    }

    /// A file from a newer server is refused, not damaged.
    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 7")
            .unwrap();
        let err = open(&path, 50).unwrap_err().to_string();
        assert!(
            err.contains("database schema version 7 is newer than this server (3)"),
            "{err}"
        );
        assert_eq!(user_version(&path), 7);
    }

    /// A version-0 file with tables that are not the Python layout is left
    /// alone with a clear error.
    #[test]
    fn unknown_version_0_tables_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE users (x INTEGER)")
            .unwrap();
        let err = open(&path, 50).unwrap_err().to_string();
        assert!(err.contains("unrecognised table `users`"), "{err}");
        assert_eq!(user_version(&path), 0);
    }
}
