//! Moderation in the database: bans, suspensions, topics, closing a room,
//! and the moderation log that records every one of them.
//!
//! Each action is one [`Moderation`] request. The DB thread runs it in its
//! own savepoint ([`execute`]): the change and its row in the `moderation`
//! table are committed together or not at all, so the log never shows an
//! action that did not happen, and no action happens unlogged. The caller
//! waits for the commit: an `OK BAN` means the ban survives a restart.
//!
//! Times are the server's clock's, given by the caller; the database never
//! reads a clock. A ban or a suspension stores when it ends (`NULL` until
//! lifted), and an ended one is simply ignored: nothing has to run when it
//! ends.

use rusqlite::{params, Connection, OptionalExtension, ToSql};

use super::{schema, DbError};

/// One moderation action, with who did it and when.
#[derive(Debug, Clone)]
pub struct Moderation {
    /// The account that did it, as registered.
    pub actor: String,
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// What.
    pub action: Action,
}

/// What a moderator did. Rooms are given by their database id (what is
/// changed) and their name (what the log says).
#[derive(Debug, Clone)]
pub enum Action {
    /// A member was put out of a room; nothing changes but the log.
    Kick {
        /// The room's id.
        room_id: i64,
        /// The room's name.
        room: String,
        /// The member, as registered.
        target: String,
        /// Why ("" for no reason given).
        reason: String,
    },
    /// A user is banned from a room (again: a new ban replaces the old).
    Ban {
        /// The room's id.
        room_id: i64,
        /// The room's name.
        room: String,
        /// The account, in any case.
        target: String,
        /// When it ends; `None` until lifted.
        until_ms: Option<i64>,
        /// Why ("" for no reason given).
        reason: String,
    },
    /// A ban is lifted.
    Unban {
        /// The room's id.
        room_id: i64,
        /// The room's name.
        room: String,
        /// The account, in any case.
        target: String,
    },
    /// A room's topic is set.
    Topic {
        /// The room's id.
        room_id: i64,
        /// The room's name.
        room: String,
        /// The new topic.
        topic: String,
    },
    /// A room is deleted, with its history, bans and topic.
    Close {
        /// The room's id.
        room_id: i64,
        /// The room's name.
        room: String,
    },
    /// An account may not log in (again: a new suspension replaces the old).
    Suspend {
        /// The account, in any case.
        target: String,
        /// When it ends; `None` until lifted.
        until_ms: Option<i64>,
        /// Why ("" for no reason given).
        reason: String,
    },
    /// A suspension is lifted.
    Unsuspend {
        /// The account, in any case.
        target: String,
    },
    /// A notice to everybody; nothing changes but the log.
    Announce {
        /// What it said.
        text: String,
    },
}

impl Action {
    /// The word the log's `action` column holds.
    pub fn word(&self) -> &'static str {
        match self {
            Action::Kick { .. } => "kick",
            Action::Ban { .. } => "ban",
            Action::Unban { .. } => "unban",
            Action::Topic { .. } => "topic",
            Action::Close { .. } => "close",
            Action::Suspend { .. } => "suspend",
            Action::Unsuspend { .. } => "unsuspend",
            Action::Announce { .. } => "announce",
        }
    }
}

/// Runs one action and logs it, inside the savepoint the caller opened,
/// keeping the newest `keep` rows of the log.
/// Returns the target account's name as registered (`""` for the actions
/// without a target account).
///
/// # Errors
///
/// [`DbError::NoSuchUser`] if the target account does not exist;
/// [`DbError::NotFound`] for `UNBAN`/`UNSUSPEND` of nobody banned or
/// suspended now; [`DbError::Failed`] if SQLite fails (or the room is gone).
pub(super) fn execute(
    conn: &Connection,
    request: &Moderation,
    keep: usize,
) -> Result<String, DbError> {
    let now = request.time_ms;
    // (target, room, reason, until) for the log.
    let (target, room, reason, until): (String, Option<&str>, Option<&str>, Option<i64>) =
        match &request.action {
            Action::Kick {
                room,
                target,
                reason,
                ..
            } => (target.clone(), Some(room), Some(reason), None),
            Action::Ban {
                room_id,
                room,
                target,
                until_ms,
                reason,
            } => {
                let (user_id, name) = account(conn, target)?;
                conn.prepare_cached(schema::UPSERT_BAN)?.execute(params![
                    room_id,
                    user_id,
                    until_ms,
                    request.actor,
                    reason,
                    now
                ])?;
                (name, Some(room), Some(reason), *until_ms)
            }
            Action::Unban {
                room_id,
                room,
                target,
            } => {
                let (user_id, name) = account(conn, target)?;
                lift(
                    conn,
                    (schema::ACTIVE_BAN, params![room_id, user_id, now]),
                    (schema::DELETE_BAN, params![room_id, user_id]),
                )?;
                (name, Some(room), None, None)
            }
            Action::Topic {
                room_id,
                room,
                topic,
            } => {
                let changed = conn.prepare_cached(schema::UPDATE_TOPIC)?.execute(params![
                    room_id,
                    topic,
                    request.actor,
                    now
                ])?;
                if changed == 0 {
                    return Err(DbError::Failed(format!("no room {room:?}")));
                }
                (String::new(), Some(room), Some(topic), None)
            }
            Action::Close { room_id, room } => {
                conn.prepare_cached(schema::DELETE_ROOM_BANS)?
                    .execute([room_id])?;
                conn.prepare_cached(schema::DELETE_ROOM_MESSAGES)?
                    .execute([room_id])?;
                let deleted = conn
                    .prepare_cached(schema::DELETE_ROOM)?
                    .execute([room_id])?;
                if deleted == 0 {
                    return Err(DbError::Failed(format!("no room {room:?}")));
                }
                (String::new(), Some(room), None, None)
            }
            Action::Suspend {
                target,
                until_ms,
                reason,
            } => {
                let (user_id, name) = account(conn, target)?;
                conn.prepare_cached(schema::UPSERT_SUSPENSION)?
                    .execute(params![user_id, until_ms, request.actor, reason, now])?;
                (name, None, Some(reason), *until_ms)
            }
            Action::Unsuspend { target } => {
                let (user_id, name) = account(conn, target)?;
                lift(
                    conn,
                    (schema::ACTIVE_SUSPENSION, params![user_id, now]),
                    (schema::DELETE_SUSPENSION, params![user_id]),
                )?;
                (name, None, None, None)
            }
            Action::Announce { text } => (String::new(), None, Some(text), None),
        };
    conn.prepare_cached(schema::INSERT_MODERATION)?
        .execute(params![
            now,
            request.actor,
            request.action.word(),
            (!target.is_empty()).then_some(&target),
            room,
            reason.filter(|r| !r.is_empty()),
            until
        ])?;
    // `--moderation-keep`: the oldest rows go as new ones come, one range
    // of the primary key.
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    conn.prepare_cached(schema::TRIM_MODERATION)?
        .execute([conn.last_insert_rowid().saturating_sub(keep)])?;
    Ok(target)
}

/// The id and the registered name of an account, by name in any case.
fn account(conn: &Connection, name: &str) -> Result<(i64, String), DbError> {
    conn.prepare_cached(schema::SELECT_USER_ID)?
        .query_row([name], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?
        .ok_or(DbError::NoSuchUser)
}

/// Lifts a ban or a suspension: [`DbError::NotFound`] unless one is in
/// force now (`active`, a query and its parameters); the row is deleted
/// either way (`delete`), since an ended one is only clutter.
fn lift(
    conn: &Connection,
    (active_sql, active_params): (&str, &[&dyn ToSql]),
    (delete_sql, delete_params): (&str, &[&dyn ToSql]),
) -> Result<(), DbError> {
    let active = conn
        .prepare_cached(active_sql)?
        .query_row(active_params, |_| Ok(()))
        .optional()?
        .is_some();
    conn.prepare_cached(delete_sql)?.execute(delete_params)?;
    if active {
        Ok(())
    } else {
        Err(DbError::NotFound)
    }
}
