//! The PostgreSQL layout, its version number, its migrations, and every
//! SQL statement the PostgreSQL store runs, as named constants: the
//! PostgreSQL twin of `schema.rs`, so the whole layout can be read in one
//! place.
//!
//! # The same content as SQLite's, in PostgreSQL's words
//!
//! The tables hold what SQLite's schema version 3 holds (accounts, rooms
//! with owner and topic, history, stored DMs, bans, suspensions, the
//! moderation log). What differs is how PostgreSQL says it:
//!
//! - **Names without regard to case.** SQLite has `COLLATE NOCASE`; here
//!   a `UNIQUE` index on `lower(name)` refuses "alice" once "Alice" exists,
//!   and every lookup is `WHERE lower(name) = lower($1)`, which that same
//!   index serves. Names are ASCII (the protocol allows nothing else), so
//!   `lower` folds exactly what `NOCASE` folds.
//! - **Ids** are `BIGSERIAL`: numbers from a sequence, which every node
//!   draws from without two ever getting the same one.
//! - **Booleans** are `BOOLEAN`, and the message's sender is `sender`
//!   (`user` is a reserved word in PostgreSQL).
//!
//! # Versions
//!
//! PostgreSQL has no free integer in a file header, so the version is the
//! one row of the table `schema_version`. The PostgreSQL layout has its
//! own numbering, starting at 1 with the content of SQLite's version 3:
//!
//! | version | what it is |
//! |---|---|
//! | 0 | an empty database (no `schema_version` table) |
//! | 1 | [`MIGRATE_0_TO_1`]: the whole layout |
//!
//! A later change adds a step to [`MIGRATIONS`] and never edits an old one.
//!
//! # Several nodes starting at once
//!
//! Every node migrates at start. [`migrate`] runs in one transaction that
//! first takes a PostgreSQL *advisory lock* (a lock on a number that means
//! something only to us): a second node starting at the same moment waits
//! for the first one's COMMIT, then finds the database at the current
//! version and does nothing. Without the lock both would try to create the
//! same tables, and one would fail.

use ::postgres::Client;

use crate::error::{Error, Result};

/// The schema version this code creates and understands.
pub const PG_SCHEMA_VERSION: i32 = 1;

/// The class (first number) of every advisory lock this server takes,
/// "chat" in ASCII: other programs sharing the database use other numbers.
pub const LOCK_CLASS: i32 = 0x6368_6174;

/// The class of the per-recipient mailbox locks ("chau"); their second
/// number is the recipient's id (folded into an `int`: two recipients that
/// fold to the same number merely wait for each other).
pub const LOCK_CLASS_MAILBOX: i32 = 0x6368_6175;

/// Advisory lock (with [`LOCK_CLASS`]) held while migrating.
pub const LOCK_MIGRATIONS: i32 = 1;

/// Advisory lock (with [`LOCK_CLASS`]) held from counting rooms for
/// `--max-rooms`/`--rooms-per-user` to the COMMIT of the insert.
pub const LOCK_ROOMS: i32 = 2;

/// Takes a transaction-level advisory lock `($1, $2)`: held until the
/// transaction ends (or the savepoint it was taken in is rolled back).
pub const ADVISORY_LOCK: &str = "SELECT pg_advisory_xact_lock($1, $2)";

/// Takes the mailbox lock of the account whose id is `$2` (`$1` is
/// [`LOCK_CLASS_MAILBOX`]).
pub const MAILBOX_LOCK: &str =
    "SELECT pg_advisory_xact_lock($1, ($2::BIGINT % 2147483647)::INTEGER)";

/// Whether the version table exists yet (without the notice that `CREATE
/// TABLE IF NOT EXISTS` prints when it does).
pub const VERSION_TABLE_EXISTS: &str = "SELECT to_regclass('schema_version') IS NOT NULL";

/// The version table, made with the first migration.
pub const CREATE_VERSION_TABLE: &str = "CREATE TABLE schema_version (version INTEGER NOT NULL)";

/// The version, from the table's one row.
pub const SELECT_VERSION: &str = "SELECT version FROM schema_version";

/// Empties the version table, before [`INSERT_VERSION`].
pub const DELETE_VERSION: &str = "DELETE FROM schema_version";

/// Writes the version row (`$1`).
pub const INSERT_VERSION: &str = "INSERT INTO schema_version (version) VALUES ($1)";

/// Version 0 → 1: the whole layout, with the content of SQLite's version 3
/// (see `schema.rs` for what each table and column is for).
///
/// - `users.admin`: true for an admin (granted only by `server user admin`).
/// - `rooms.owner_id`: the account that created the room; `rooms.topic*`:
///   its topic, who set it and when (`NULL` for none).
/// - `messages`: room history; `seq` is the room's message number, unique
///   in its room; trimming deletes a range of that index.
/// - `dms`: direct messages waiting for an offline user; the index makes
///   "this user's DMs, oldest first" a lookup and a count, not a scan.
/// - `bans`, `suspensions`: `until_ms` `NULL` means until lifted; an ended
///   row is ignored and replaced by the next one.
/// - `moderation`: every moderation action, for the teacher to read later.
pub const MIGRATE_0_TO_1: &str = "
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_ms    BIGINT  NOT NULL,
    admin         BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX users_name ON users (lower(name));
CREATE TABLE rooms (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT   NOT NULL,
    password_hash TEXT   NULL,
    created_ms    BIGINT NOT NULL,
    owner_id      BIGINT NULL REFERENCES users(id),
    topic         TEXT   NULL,
    topic_by      TEXT   NULL,
    topic_ms      BIGINT NULL
);
CREATE UNIQUE INDEX rooms_name ON rooms (lower(name));
CREATE INDEX rooms_owner_id ON rooms (owner_id);
CREATE TABLE messages (
    id      BIGSERIAL PRIMARY KEY,
    room_id BIGINT NOT NULL REFERENCES rooms(id),
    seq     BIGINT NOT NULL,
    time_ms BIGINT NOT NULL,
    sender  TEXT   NOT NULL,
    text    TEXT   NOT NULL,
    UNIQUE (room_id, seq)
);
CREATE TABLE dms (
    id         BIGSERIAL PRIMARY KEY,
    to_user_id BIGINT NOT NULL REFERENCES users(id),
    from_user  TEXT   NOT NULL,
    time_ms    BIGINT NOT NULL,
    text       TEXT   NOT NULL
);
CREATE INDEX dms_to_user_id ON dms (to_user_id, id);
CREATE TABLE bans (
    room_id    BIGINT NOT NULL REFERENCES rooms(id),
    user_id    BIGINT NOT NULL REFERENCES users(id),
    until_ms   BIGINT NULL,
    by_user    TEXT   NOT NULL,
    reason     TEXT   NOT NULL DEFAULT '',
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE TABLE suspensions (
    user_id    BIGINT NOT NULL PRIMARY KEY REFERENCES users(id),
    until_ms   BIGINT NULL,
    by_user    TEXT   NOT NULL,
    reason     TEXT   NOT NULL DEFAULT '',
    created_ms BIGINT NOT NULL
);
CREATE TABLE moderation (
    id       BIGSERIAL PRIMARY KEY,
    time_ms  BIGINT NOT NULL,
    actor    TEXT   NOT NULL,
    action   TEXT   NOT NULL,
    target   TEXT   NULL,
    room     TEXT   NULL,
    reason   TEXT   NULL,
    until_ms BIGINT NULL
);
";

/// The migrations in order: step `i` brings version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[MIGRATE_0_TO_1];

/// Adds an account; inserts nothing (0 rows) if the name is taken in any
/// letter case, by this node or any other: the unique index decides, and
/// a second inserter waits for the first one's transaction to end.
pub const INSERT_USER: &str = "INSERT INTO users (name, password_hash, created_ms)
     VALUES ($1, $2, $3) ON CONFLICT ((lower(name))) DO NOTHING";

/// Looks an account up by name, in any case, as `schema::SELECT_USER` does.
pub const SELECT_USER: &str = "SELECT u.name, u.password_hash, u.admin,
         CASE WHEN s.user_id IS NULL THEN NULL ELSE COALESCE(s.until_ms, 9223372036854775807) END
     FROM users AS u LEFT JOIN suspensions AS s ON s.user_id = u.id
     WHERE lower(u.name) = lower($1)";

/// An account's id and registered name, by name in any case.
pub const SELECT_USER_ID: &str = "SELECT id, name FROM users WHERE lower(name) = lower($1)";

/// Replaces an account's password hash (legacy upgrade).
pub const UPDATE_PASSWORD_HASH: &str =
    "UPDATE users SET password_hash = $2 WHERE lower(name) = lower($1)";

/// Replaces a private room's password hash (legacy upgrade).
pub const UPDATE_ROOM_PASSWORD_HASH: &str = "UPDATE rooms SET password_hash = $2
     WHERE lower(name) = lower($1) AND password_hash IS NOT NULL";

/// One room by name in any case, with the columns of `schema::SELECT_ROOM`.
pub const SELECT_ROOM: &str =
    "SELECT r.id, r.name, r.password_hash, o.name, r.topic, r.topic_by, r.topic_ms
     FROM rooms AS r LEFT JOIN users AS o ON o.id = r.owner_id
     WHERE lower(r.name) = lower($1)";

/// Every room, in the order they were created, with the same columns.
pub const SELECT_ROOMS: &str =
    "SELECT r.id, r.name, r.password_hash, o.name, r.topic, r.topic_by, r.topic_ms
     FROM rooms AS r LEFT JOIN users AS o ON o.id = r.owner_id
     ORDER BY r.id";

/// Whether a room of that name exists, in any case.
pub const ROOM_EXISTS: &str = "SELECT 1 FROM rooms WHERE lower(name) = lower($1)";

/// Rooms in all, for `--max-rooms`.
pub const COUNT_ROOMS: &str = "SELECT COUNT(*) FROM rooms";

/// Rooms owned by the account named `$1`, for `--rooms-per-user`.
pub const COUNT_OWNED_ROOMS: &str = "SELECT COUNT(*) FROM rooms
     WHERE owner_id = (SELECT id FROM users WHERE lower(name) = lower($1))";

/// Adds a room owned by the account named `$4` (`NULL` if there is no such
/// account) and returns its id; no row if the name is taken.
pub const INSERT_OWNED_ROOM: &str = "INSERT INTO rooms (name, password_hash, created_ms, owner_id)
     VALUES ($1, $2, $3, (SELECT id FROM users WHERE lower(name) = lower($4)))
     ON CONFLICT ((lower(name))) DO NOTHING RETURNING id";

/// Appends one message to room `$1`'s history; inserts nothing if that
/// room no longer exists (see `schema::INSERT_MESSAGE`).
pub const INSERT_MESSAGE: &str = "INSERT INTO messages (room_id, seq, time_ms, sender, text)
     SELECT id, $2, $3, $4, $5 FROM rooms WHERE id = $1";

/// Deletes the messages of the room named `$1` numbered `$2` or lower.
pub const TRIM_HISTORY: &str = "DELETE FROM messages
     WHERE room_id = (SELECT id FROM rooms WHERE lower(name) = lower($1)) AND seq <= $2";

/// The last `$2` messages of room `$1`, oldest first.
pub const SELECT_LAST_MESSAGES: &str = "SELECT seq, time_ms, sender, text FROM (
         SELECT seq, time_ms, sender, text FROM messages
         WHERE room_id = $1 ORDER BY seq DESC LIMIT $2
     ) AS newest ORDER BY seq ASC";

/// The next free message number of room `$1` (1 for an empty room).
pub const SELECT_NEXT_SEQ: &str =
    "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE room_id = $1";

/// How many DMs wait for the account whose id is `$1`, for `--mailbox`.
pub const COUNT_DMS: &str = "SELECT COUNT(*) FROM dms WHERE to_user_id = $1";

/// Stores a DM for the account whose id is `$1`.
pub const INSERT_DM: &str =
    "INSERT INTO dms (to_user_id, from_user, time_ms, text) VALUES ($1, $2, $3, $4)";

/// A user's stored DMs, oldest first (by arrival: the id, from the
/// sequence, not the clock).
pub const SELECT_DMS: &str = "SELECT d.id, d.from_user, d.time_ms, d.text
     FROM dms AS d JOIN users AS u ON u.id = d.to_user_id
     WHERE lower(u.name) = lower($1) ORDER BY d.id";

/// Deletes the stored DMs whose ids are in the array `$1`.
pub const DELETE_DMS: &str = "DELETE FROM dms WHERE id = ANY($1)";

// ----- moderation ------------------------------------------------------

/// Bans user `$2` from room `$1` until `$3` (`NULL`: until lifted), by
/// `$4` for reason `$5` at `$6`; a ban that exists is replaced.
pub const UPSERT_BAN: &str =
    "INSERT INTO bans (room_id, user_id, until_ms, by_user, reason, created_ms)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (room_id, user_id) DO UPDATE SET until_ms = EXCLUDED.until_ms,
         by_user = EXCLUDED.by_user, reason = EXCLUDED.reason, created_ms = EXCLUDED.created_ms";

/// Whether user `$2` is banned from room `$1` at time `$3`.
pub const ACTIVE_BAN: &str = "SELECT 1 FROM bans
     WHERE room_id = $1 AND user_id = $2 AND (until_ms IS NULL OR until_ms > $3)";

/// Deletes the ban of user `$2` from room `$1`, ended or not.
pub const DELETE_BAN: &str = "DELETE FROM bans WHERE room_id = $1 AND user_id = $2";

/// Suspends user `$1` until `$2` (`NULL`: until lifted), by `$3` for
/// reason `$4` at `$5`; a suspension that exists is replaced.
pub const UPSERT_SUSPENSION: &str =
    "INSERT INTO suspensions (user_id, until_ms, by_user, reason, created_ms)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (user_id) DO UPDATE SET until_ms = EXCLUDED.until_ms,
         by_user = EXCLUDED.by_user, reason = EXCLUDED.reason, created_ms = EXCLUDED.created_ms";

/// Whether user `$1` is suspended at time `$2`.
pub const ACTIVE_SUSPENSION: &str = "SELECT 1 FROM suspensions
     WHERE user_id = $1 AND (until_ms IS NULL OR until_ms > $2)";

/// Deletes the suspension of user `$1`, ended or not.
pub const DELETE_SUSPENSION: &str = "DELETE FROM suspensions WHERE user_id = $1";

/// Sets room `$1`'s topic to `$2`, set by `$3` at `$4`.
pub const UPDATE_TOPIC: &str =
    "UPDATE rooms SET topic = $2, topic_by = $3, topic_ms = $4 WHERE id = $1";

/// Deletes the bans of room `$1` (closing it).
pub const DELETE_ROOM_BANS: &str = "DELETE FROM bans WHERE room_id = $1";

/// Deletes the history of room `$1` (closing it).
pub const DELETE_ROOM_MESSAGES: &str = "DELETE FROM messages WHERE room_id = $1";

/// Deletes room `$1` itself, its topic with it (closing it).
pub const DELETE_ROOM: &str = "DELETE FROM rooms WHERE id = $1";

/// One row of the moderation log; returns its id.
pub const INSERT_MODERATION: &str =
    "INSERT INTO moderation (time_ms, actor, action, target, room, reason, until_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

/// Deletes the moderation log's rows numbered `$1` or lower.
pub const TRIM_MODERATION: &str = "DELETE FROM moderation WHERE id <= $1";

/// The bans of room `$1`, ended ones included, oldest first.
pub const SELECT_ROOM_BANS: &str = "SELECT u.name, b.until_ms, b.by_user
     FROM bans AS b JOIN users AS u ON u.id = b.user_id
     WHERE b.room_id = $1 ORDER BY b.created_ms, u.name";

/// Brings the database to [`PG_SCHEMA_VERSION`], whatever version it is
/// at, under the migration lock (see the module doc). `shown` names the
/// database in errors (the URL without its password).
///
/// # Errors
///
/// [`Error::Db`] if the database's version is newer than this server
/// knows, or if PostgreSQL fails. On error nothing has changed.
pub fn migrate(client: &mut Client, shown: &str) -> Result<()> {
    let failed = |e: ::postgres::Error| {
        Error::Db(format!(
            "migrating PostgreSQL at {shown}: {}",
            super::postgres::describe(&e)
        ))
    };
    let mut tx = client.transaction().map_err(failed)?;
    tx.execute(ADVISORY_LOCK, &[&LOCK_CLASS, &LOCK_MIGRATIONS])
        .map_err(failed)?;
    // Read under the lock: another node may have migrated the database
    // while we waited for it.
    let has_table: bool = tx
        .query_one(VERSION_TABLE_EXISTS, &[])
        .and_then(|row| row.try_get(0))
        .map_err(failed)?;
    let version: i32 = if has_table {
        tx.query_opt(SELECT_VERSION, &[])
            .and_then(|row| row.map(|row| row.try_get(0)).transpose())
            .map_err(failed)?
            .unwrap_or(0)
    } else {
        tx.batch_execute(CREATE_VERSION_TABLE).map_err(failed)?;
        0
    };
    if version > PG_SCHEMA_VERSION {
        return Err(Error::Db(format!(
            "PostgreSQL at {shown}: schema version {version} is newer than this server \
             ({PG_SCHEMA_VERSION})"
        )));
    }
    if version == PG_SCHEMA_VERSION {
        return Ok(());
    }
    let from = usize::try_from(version).unwrap_or(0);
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.batch_execute(sql).map_err(|e| {
            Error::Db(format!(
                "PostgreSQL at {shown}: migrating to schema version {}: {}",
                step + 1,
                super::postgres::describe(&e)
            ))
        })?;
    }
    tx.execute(DELETE_VERSION, &[]).map_err(failed)?;
    tx.execute(INSERT_VERSION, &[&PG_SCHEMA_VERSION])
        .map_err(failed)?;
    tx.commit().map_err(failed)?;
    log::info!(
        "PostgreSQL at {shown}: schema migrated from version {version} to {PG_SCHEMA_VERSION}"
    );
    Ok(())
}
