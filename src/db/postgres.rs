//! The PostgreSQL store: one database that several server nodes share
//! (`--store postgres://USER@HOST:PORT/DB`).
//!
//! [`PgStore`] is the [`Store`] the DB thread drives when what must last
//! lives in PostgreSQL. Each node has its own DB thread and, in it, one
//! connection: the thread is the pool. Its batches, savepoints and lazy
//! commits are the same as on SQLite (`thread.rs`); what changes is who
//! else writes at the same time.
//!
//! # Other nodes write too
//!
//! On SQLite one thread of one process writes, so "count, then insert" is
//! safe by itself. Here another node may do the same between our count and
//! our insert, so each check that must hold across nodes is made by
//! PostgreSQL:
//!
//! - **Names** (`REGISTER`, `CREATE`): `INSERT … ON CONFLICT DO NOTHING` on
//!   a unique index of `lower(name)`. Two nodes inserting the same name
//!   cannot both succeed: the second waits for the first one's transaction
//!   and then inserts nothing. Exactly one winner.
//! - **Counted limits** (`--max-rooms`, `--rooms-per-user`, `--mailbox`):
//!   counted under an advisory lock taken inside the request's savepoint
//!   (`pg_advisory_xact_lock`). It is held until our batch commits, so the
//!   other node counts only after our row is there to be counted. Two
//!   batches taking two such locks in opposite orders can deadlock;
//!   PostgreSQL then fails one statement (after a second), whose request
//!   gets `Failed` while the rest of its batch goes on.
//!
//! # Durability
//!
//! A batch somebody waits for commits with PostgreSQL's default
//! `synchronous_commit = on`: COMMIT returns after the WAL is flushed, so
//! an acknowledged request survives a crash or restart of PostgreSQL (a
//! rolling restart of the nodes or of the database loses none). A lazy
//! batch (`durable: false`) says `SET LOCAL synchronous_commit = off`: it
//! is written by PostgreSQL's WAL writer a moment later, the same promise
//! as SQLite's `synchronous=NORMAL`.
//!
//! # When PostgreSQL goes away
//!
//! The connection is made with timeouts (connecting, and unacknowledged
//! writes), and PostgreSQL is asked to end any statement that runs longer
//! than [`STATEMENT_TIMEOUT`], so a request never hangs for long. Once the
//! connection is lost, [`Store::begin`] tries a new one, at most once per
//! [`RECONNECT_EVERY`], and fails at once in between: the requests get
//! `Failed` (the client sees `ERR SERVER_ERROR`), chat in rooms goes on,
//! and the node recovers by itself when the database returns. A
//! connection found dead at BEGIN (PostgreSQL restarted while the node was
//! idle) is replaced at once, so a restart costs nothing when quiet.
//!
//! # Savepoints, and reads
//!
//! In PostgreSQL any error inside a transaction aborts the whole of it,
//! until a `ROLLBACK` or a `ROLLBACK TO SAVEPOINT`. Writes run in their own
//! savepoint, as on SQLite, so their failures stay theirs. Reads run
//! without one (a savepoint costs two round trips): a read that fails
//! marks the transaction aborted, and the thread fails the batch.
//!
//! Every statement with parameters is prepared once per connection and
//! kept, like rusqlite's `prepare_cached`: one round trip per statement,
//! not two. Those without (`BEGIN`, `SAVEPOINT`, `COMMIT`…) go as plain
//! text, one round trip each.
//!
//! The connection has no TLS: the database is expected on the same host or
//! a private network, as the nodes are.

use std::collections::HashMap;
use std::error::Error as _;
use std::time::{Duration, Instant};

use ::postgres::types::ToSql;
use ::postgres::{Client, Config, NoTls, Row, Statement};

use super::pg_schema as sql;
use super::store::{RoomLimits, Store};
use super::{
    without_password, Action, BanRecord, DbError, HistoryRecord, Moderation, RoomRecord, StoredDm,
    TopicRecord, UserRecord, FOREVER,
};
use crate::error::{Error, Result};

/// How long connecting to PostgreSQL may take before it counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long data sent to PostgreSQL may stay unacknowledged before the
/// connection counts as lost (`TCP_USER_TIMEOUT`): a server that vanished
/// from the network without closing its connections.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest any one statement may run (PostgreSQL's
/// `statement_timeout`, waits for locks included). Ours take milliseconds;
/// one that waits this long is waiting for a node that stopped half-way.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The least time between two attempts to reconnect: in between, requests
/// fail at once instead of each waiting for a connect timeout.
pub const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// A parameter list, as the `postgres` crate takes it.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The PostgreSQL engine: the connection (when there is one), its prepared
/// statements, and what it needs to reconnect.
pub(crate) struct PgStore {
    /// How to connect: the URL's settings and our timeouts.
    config: Config,
    /// The URL without its password, for every message.
    shown: String,
    /// The connection; `None` after it was lost, until a reconnect works.
    client: Option<Client>,
    /// Statements prepared on `client`, by SQL text; emptied with it.
    statements: HashMap<&'static str, Statement>,
    /// When we last tried to connect.
    last_attempt: Instant,
    /// Why the last attempt (or the connection) failed.
    last_error: String,
    /// Whether the current transaction failed outside a savepoint.
    aborted: bool,
}

/// The text of a `postgres` error with its cause: the crate's own
/// `Display` says only "db error" or "error connecting to server".
pub(crate) fn describe(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match e.source() {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl From<::postgres::Error> for DbError {
    fn from(e: ::postgres::Error) -> Self {
        DbError::Failed(describe(&e))
    }
}

/// A column of a row, or `Failed` if it does not have the expected type.
fn get<'a, T: ::postgres::types::FromSql<'a>>(row: &'a Row, column: usize) -> Result<T, DbError> {
    Ok(row.try_get(column)?)
}

/// A count from `SELECT COUNT(*)`.
fn count(row: &Row) -> Result<usize, DbError> {
    Ok(usize::try_from(get::<i64>(row, 0)?).unwrap_or(0))
}

/// A message number as PostgreSQL stores it (`BIGINT`).
fn seq_to_sql(seq: u64) -> Result<i64, DbError> {
    i64::try_from(seq).map_err(|_| DbError::Failed(format!("message number {seq} is too large")))
}

impl PgStore {
    /// Connects to the database at `url` (which must exist) and creates or
    /// migrates the server's tables.
    ///
    /// # Errors
    ///
    /// [`Error::Db`] with one line naming the URL without its password: not
    /// a URL, unreachable, refused, or the migration failed.
    pub(crate) fn open(url: &str) -> Result<Self> {
        let shown = without_password(url);
        let mut config: Config = url
            .parse()
            .map_err(|e| Error::Db(format!("{shown} is not a PostgreSQL URL: {}", describe(&e))))?;
        // Our statement timeout goes after any `options` the URL gives, so
        // that it wins over one there.
        let options = format!(
            "{} -c statement_timeout={}",
            config.get_options().unwrap_or_default(),
            STATEMENT_TIMEOUT.as_millis()
        );
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_user_timeout(IO_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .application_name("chat-server")
            .options(options.trim_start());
        let mut client = config.connect(NoTls).map_err(|e| {
            Error::Db(format!(
                "cannot connect to PostgreSQL at {shown}: {}",
                describe(&e)
            ))
        })?;
        sql::migrate(&mut client, &shown)?;
        Ok(PgStore {
            config,
            shown,
            client: Some(client),
            statements: HashMap::new(),
            last_attempt: Instant::now(),
            last_error: String::new(),
            aborted: false,
        })
    }

    /// The error of a request made while there is no connection.
    fn unreachable(&self) -> DbError {
        DbError::Failed(format!(
            "PostgreSQL at {} is unreachable: {}",
            self.shown, self.last_error
        ))
    }

    /// Forgets a connection that is closed (or in a state we cannot trust),
    /// with its prepared statements; the next `begin` reconnects.
    fn drop_connection(&mut self, why: &str) {
        if self.client.take().is_some() {
            log::warn!(
                "db: lost the connection to PostgreSQL at {}: {why}",
                self.shown
            );
            self.last_error = why.to_owned();
        }
        self.statements.clear();
    }

    /// Drops the connection if the `postgres` crate says it is closed.
    fn check_closed(&mut self, error: &DbError) {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.drop_connection(&error.to_string());
        }
    }

    /// Connects again if there is no connection and the last attempt is at
    /// least [`RECONNECT_EVERY`] old; fails at once otherwise.
    fn ensure_connected(&mut self) -> Result<(), DbError> {
        if self.client.is_some() {
            return Ok(());
        }
        if self.last_attempt.elapsed() < RECONNECT_EVERY {
            return Err(self.unreachable());
        }
        self.last_attempt = Instant::now();
        match self.config.connect(NoTls) {
            Ok(client) => {
                log::info!("db: connected to PostgreSQL at {} again", self.shown);
                self.client = Some(client);
                Ok(())
            }
            Err(e) => {
                self.last_error = describe(&e);
                Err(self.unreachable())
            }
        }
    }

    /// The connection, or `Failed` if there is none.
    fn client(&mut self) -> Result<&mut Client, DbError> {
        if self.client.is_none() {
            return Err(self.unreachable());
        }
        self.client
            .as_mut()
            .ok_or_else(|| DbError::Failed("no connection".into()))
    }

    /// Runs statements without parameters and without preparing them
    /// (`BEGIN`, `SAVEPOINT`…): one round trip.
    fn batch(&mut self, statements: &str) -> Result<(), DbError> {
        Ok(self.client()?.batch_execute(statements)?)
    }

    /// The prepared statement for `text`, prepared now if it is not yet.
    fn statement(&mut self, text: &'static str) -> Result<Statement, DbError> {
        if let Some(statement) = self.statements.get(text) {
            return Ok(statement.clone());
        }
        let statement = self.client()?.prepare(text)?;
        self.statements.insert(text, statement.clone());
        Ok(statement)
    }

    /// Runs a prepared statement; returns the number of rows it changed.
    fn execute(&mut self, text: &'static str, params: Params<'_>) -> Result<u64, DbError> {
        let statement = self.statement(text)?;
        Ok(self.client()?.execute(&statement, params)?)
    }

    /// Runs a prepared query; returns its rows.
    fn query(&mut self, text: &'static str, params: Params<'_>) -> Result<Vec<Row>, DbError> {
        let statement = self.statement(text)?;
        Ok(self.client()?.query(&statement, params)?)
    }

    /// Runs a prepared query that returns at most one row.
    fn query_opt(
        &mut self,
        text: &'static str,
        params: Params<'_>,
    ) -> Result<Option<Row>, DbError> {
        let statement = self.statement(text)?;
        Ok(self.client()?.query_opt(&statement, params)?)
    }

    /// Runs a prepared query that returns exactly one row.
    fn query_one(&mut self, text: &'static str, params: Params<'_>) -> Result<Row, DbError> {
        let statement = self.statement(text)?;
        Ok(self.client()?.query_one(&statement, params)?)
    }

    /// Runs a read inside the batch: if it fails, PostgreSQL has aborted
    /// the transaction (see "Savepoints, and reads").
    fn read<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let result = work(self);
        if let Err(error) = &result {
            self.aborted = true;
            self.check_closed(error);
        }
        result
    }

    /// Runs `work` inside a SAVEPOINT of the batch's transaction: kept
    /// (RELEASE) if it returns `Ok`, undone (ROLLBACK TO) if it returns
    /// `Err`, so that a failed request leaves no trace, releases the locks
    /// it took, and does not disturb the others. If even that fails (the
    /// connection is gone), the transaction is marked aborted.
    fn in_savepoint<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        if let Err(error) = self.batch("SAVEPOINT request") {
            self.aborted = true;
            self.check_closed(&error);
            return Err(error);
        }
        match work(self) {
            Ok(value) => match self.batch("RELEASE SAVEPOINT request") {
                Ok(()) => Ok(value),
                Err(error) => {
                    self.aborted = true;
                    self.check_closed(&error);
                    Err(error)
                }
            },
            Err(error) => {
                if let Err(undo) =
                    self.batch("ROLLBACK TO SAVEPOINT request; RELEASE SAVEPOINT request")
                {
                    log::debug!("db: savepoint not rolled back: {undo}");
                    self.aborted = true;
                    self.check_closed(&undo);
                }
                Err(error)
            }
        }
    }

    /// The id and the registered name of an account, by name in any case.
    fn account(&mut self, name: &str) -> Result<(i64, String), DbError> {
        let row = self
            .query_opt(sql::SELECT_USER_ID, &[&name])?
            .ok_or(DbError::NoSuchUser)?;
        Ok((get(&row, 0)?, get(&row, 1)?))
    }

    /// The bans of one room, ended ones included.
    fn room_bans(&mut self, room_id: i64) -> Result<Vec<BanRecord>, DbError> {
        self.query(sql::SELECT_ROOM_BANS, &[&room_id])?
            .iter()
            .map(|row| {
                Ok(BanRecord {
                    user: get(row, 0)?,
                    until_ms: get::<Option<i64>>(row, 1)?.unwrap_or(FOREVER),
                    by: get(row, 2)?,
                })
            })
            .collect()
    }

    /// Lifts a ban or a suspension: `NotFound` unless one is in force now
    /// (`active` finds a row); the row is deleted either way.
    fn lift(
        &mut self,
        (active, active_params): (&'static str, Params<'_>),
        (delete, delete_params): (&'static str, Params<'_>),
    ) -> Result<(), DbError> {
        let in_force = self.query_opt(active, active_params)?.is_some();
        self.execute(delete, delete_params)?;
        if in_force {
            Ok(())
        } else {
            Err(DbError::NotFound)
        }
    }

    /// One moderation action and its row in the log, inside the caller's
    /// savepoint: `moderation::execute`, in PostgreSQL's words.
    fn moderate_in(&mut self, request: &Moderation, keep: usize) -> Result<String, DbError> {
        let now = request.time_ms;
        let actor = request.actor.as_str();
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
                    let (user_id, name) = self.account(target)?;
                    self.execute(
                        sql::UPSERT_BAN,
                        &[room_id, &user_id, until_ms, &actor, reason, &now],
                    )?;
                    (name, Some(room), Some(reason), *until_ms)
                }
                Action::Unban {
                    room_id,
                    room,
                    target,
                } => {
                    let (user_id, name) = self.account(target)?;
                    self.lift(
                        (sql::ACTIVE_BAN, &[room_id, &user_id, &now]),
                        (sql::DELETE_BAN, &[room_id, &user_id]),
                    )?;
                    (name, Some(room), None, None)
                }
                Action::Topic {
                    room_id,
                    room,
                    topic,
                } => {
                    let changed =
                        self.execute(sql::UPDATE_TOPIC, &[room_id, topic, &actor, &now])?;
                    if changed == 0 {
                        return Err(DbError::Failed(format!("no room {room:?}")));
                    }
                    (String::new(), Some(room), Some(topic), None)
                }
                Action::Close { room_id, room } => {
                    self.execute(sql::DELETE_ROOM_BANS, &[room_id])?;
                    self.execute(sql::DELETE_ROOM_MESSAGES, &[room_id])?;
                    if self.execute(sql::DELETE_ROOM, &[room_id])? == 0 {
                        return Err(DbError::Failed(format!("no room {room:?}")));
                    }
                    (String::new(), Some(room), None, None)
                }
                Action::Suspend {
                    target,
                    until_ms,
                    reason,
                } => {
                    let (user_id, name) = self.account(target)?;
                    self.execute(
                        sql::UPSERT_SUSPENSION,
                        &[&user_id, until_ms, &actor, reason, &now],
                    )?;
                    (name, None, Some(reason), *until_ms)
                }
                Action::Unsuspend { target } => {
                    let (user_id, name) = self.account(target)?;
                    self.lift(
                        (sql::ACTIVE_SUSPENSION, &[&user_id, &now]),
                        (sql::DELETE_SUSPENSION, &[&user_id]),
                    )?;
                    (name, None, None, None)
                }
                Action::Announce { text } => (String::new(), None, Some(text), None),
            };
        let logged_target = (!target.is_empty()).then_some(target.as_str());
        let logged_reason = reason.filter(|r| !r.is_empty());
        let row = self.query_one(
            sql::INSERT_MODERATION,
            &[
                &now,
                &actor,
                &request.action.word(),
                &logged_target,
                &room,
                &logged_reason,
                &until,
            ],
        )?;
        // `--moderation-keep`: the oldest rows go as new ones come, one
        // range of the primary key.
        let id: i64 = get(&row, 0)?;
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.execute(sql::TRIM_MODERATION, &[&id.saturating_sub(keep)])?;
        Ok(target)
    }
}

/// A room from a row of [`sql::SELECT_ROOM`] or [`sql::SELECT_ROOMS`],
/// without history or bans yet.
fn room_record(row: &Row) -> Result<RoomRecord, DbError> {
    let topic = match (get(row, 4)?, get(row, 5)?, get(row, 6)?) {
        (Some(text), Some(by), Some(time_ms)) => Some(TopicRecord { by, time_ms, text }),
        _ => None,
    };
    Ok(RoomRecord {
        id: get(row, 0)?,
        name: get(row, 1)?,
        password_hash: get(row, 2)?,
        owner: get(row, 3)?,
        topic,
        bans: Vec::new(),
        history: Vec::new(),
        next_seq: 1,
    })
}

impl Store for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    fn begin(&mut self, durable: bool) -> Result<(), DbError> {
        self.aborted = false;
        self.ensure_connected()?;
        let begin = if durable {
            "BEGIN"
        } else {
            "BEGIN; SET LOCAL synchronous_commit = off"
        };
        match self.batch(begin) {
            Ok(()) => Ok(()),
            Err(error) => {
                // BEGIN does not fail on a healthy connection: this one
                // died while we were idle (PostgreSQL restarted, say).
                // Replace it at once if we may, rather than fail a batch.
                self.drop_connection(&error.to_string());
                self.ensure_connected()?;
                self.batch(begin)
            }
        }
    }

    fn commit(&mut self) -> Result<(), DbError> {
        // A COMMIT that fails ends the transaction in PostgreSQL: nothing of
        // it remains. If the connection broke during the COMMIT we cannot
        // know whether it happened, and answer `Failed`, which never claims
        // anything was done.
        let result = self.batch("COMMIT");
        if let Err(error) = &result {
            self.check_closed(error);
        }
        result
    }

    fn rollback(&mut self) {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            // Gone with the connection.
            self.drop_connection("connection closed");
            return;
        }
        if let Err(error) = self.batch("ROLLBACK") {
            // A connection we cannot roll back is not one to keep.
            self.drop_connection(&error.to_string());
        }
    }

    fn aborted(&self) -> bool {
        self.aborted || self.client.as_ref().is_none_or(Client::is_closed)
    }

    fn register(
        &mut self,
        name: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<String, DbError> {
        self.in_savepoint(|s| {
            if s.execute(sql::INSERT_USER, &[&name, &password_hash, &now_ms])? == 0 {
                Err(DbError::Exists)
            } else {
                // We inserted exactly this spelling, so it is the stored one.
                Ok(name.to_owned())
            }
        })
    }

    fn user(&mut self, name: &str) -> Result<Option<UserRecord>, DbError> {
        self.read(|s| {
            s.query_opt(sql::SELECT_USER, &[&name])?
                .map(|row| {
                    Ok(UserRecord {
                        name: get(&row, 0)?,
                        password_hash: get(&row, 1)?,
                        admin: get(&row, 2)?,
                        suspended_until: get(&row, 3)?,
                    })
                })
                .transpose()
        })
    }

    fn room(&mut self, name: &str) -> Result<Option<RoomRecord>, DbError> {
        self.read(|s| match s.query_opt(sql::SELECT_ROOM, &[&name])? {
            Some(row) => {
                let mut room = room_record(&row)?;
                room.bans = s.room_bans(room.id)?;
                Ok(Some(room))
            }
            None => Ok(None),
        })
    }

    fn room_counts(&mut self, owner: &str) -> Result<(usize, usize), DbError> {
        self.read(|s| {
            let rooms = count(&s.query_one(sql::COUNT_ROOMS, &[])?)?;
            let owned = count(&s.query_one(sql::COUNT_OWNED_ROOMS, &[&owner])?)?;
            Ok((rooms, owned))
        })
    }

    fn set_password_hash(&mut self, name: &str, password_hash: &str) -> Result<(), DbError> {
        self.in_savepoint(|s| {
            match s.execute(sql::UPDATE_PASSWORD_HASH, &[&name, &password_hash])? {
                0 => Err(DbError::NoSuchUser),
                _ => Ok(()),
            }
        })
    }

    fn set_room_password_hash(&mut self, name: &str, password_hash: &str) -> Result<(), DbError> {
        self.in_savepoint(|s| {
            match s.execute(sql::UPDATE_ROOM_PASSWORD_HASH, &[&name, &password_hash])? {
                0 => Err(DbError::Failed(format!("no private room named {name}"))),
                _ => Ok(()),
            }
        })
    }

    fn create_room(
        &mut self,
        name: &str,
        password_hash: Option<&str>,
        owner: &str,
        now_ms: i64,
        limits: RoomLimits,
    ) -> Result<(String, i64), DbError> {
        self.in_savepoint(|s| {
            // First the lock, so that what we read next includes every
            // room another node created and committed before we got it.
            s.execute(sql::ADVISORY_LOCK, &[&sql::LOCK_CLASS, &sql::LOCK_ROOMS])?;
            if s.query_opt(sql::ROOM_EXISTS, &[&name])?.is_some() {
                return Err(DbError::Exists);
            }
            let rooms = count(&s.query_one(sql::COUNT_ROOMS, &[])?)?;
            let owned = count(&s.query_one(sql::COUNT_OWNED_ROOMS, &[&owner])?)?;
            if rooms >= limits.max_rooms || owned >= limits.rooms_per_user {
                return Err(DbError::TooManyRooms);
            }
            match s.query_opt(
                sql::INSERT_OWNED_ROOM,
                &[&name, &password_hash, &now_ms, &owner],
            )? {
                Some(row) => Ok((name.to_owned(), get(&row, 0)?)),
                None => Err(DbError::Exists),
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
        let seq = seq_to_sql(seq)?;
        self.in_savepoint(|s| {
            let inserted = s.execute(
                sql::INSERT_MESSAGE,
                &[&room_id, &seq, &time_ms, &user, &text],
            )?;
            Ok(inserted > 0)
        })
    }

    fn trim_history(&mut self, room: &str, last_gone: u64) -> Result<(), DbError> {
        let last_gone = seq_to_sql(last_gone)?;
        self.in_savepoint(|s| {
            s.execute(sql::TRIM_HISTORY, &[&room, &last_gone])?;
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
        self.in_savepoint(|s| {
            let (to_id, _) = s.account(to)?;
            if let Some(mailbox) = mailbox {
                // The recipient's mailbox lock, held until our COMMIT: a
                // sender on another node counts after our row is in.
                s.execute(sql::MAILBOX_LOCK, &[&sql::LOCK_CLASS_MAILBOX, &to_id])?;
                if count(&s.query_one(sql::COUNT_DMS, &[&to_id])?)? >= mailbox {
                    return Err(DbError::MailboxFull);
                }
            }
            s.execute(sql::INSERT_DM, &[&to_id, &from, &time_ms, &text])?;
            Ok(())
        })
    }

    fn pending_dms(
        &mut self,
        to: &str,
        limit: usize,
        wanted: &dyn Fn(i64) -> bool,
    ) -> Result<Vec<StoredDm>, DbError> {
        // Every row of the mailbox (at most `--mailbox` of them), filtered
        // here: one round trip.
        self.read(|s| {
            let mut dms = Vec::new();
            for row in s.query(sql::SELECT_DMS, &[&to])? {
                if dms.len() >= limit {
                    break;
                }
                let id: i64 = get(&row, 0)?;
                if wanted(id) {
                    dms.push(StoredDm {
                        id,
                        from: get(&row, 1)?,
                        time_ms: get(&row, 2)?,
                        text: get(&row, 3)?,
                    });
                }
            }
            Ok(dms)
        })
    }

    fn delete_dms(&mut self, ids: &[i64]) -> Result<(), DbError> {
        self.in_savepoint(|s| {
            s.execute(sql::DELETE_DMS, &[&ids])?;
            Ok(())
        })
    }

    fn moderate(&mut self, moderation: &Moderation, keep: usize) -> Result<String, DbError> {
        self.in_savepoint(|s| s.moderate_in(moderation, keep))
    }

    fn load_rooms(&mut self, history: usize) -> Result<Vec<RoomRecord>, DbError> {
        let limit = i64::try_from(history).unwrap_or(i64::MAX);
        let rows = self.query(sql::SELECT_ROOMS, &[])?;
        let mut rooms = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut room = room_record(row)?;
            room.history = self
                .query(sql::SELECT_LAST_MESSAGES, &[&room.id, &limit])?
                .iter()
                .map(|row| {
                    Ok(HistoryRecord {
                        seq: u64::try_from(get::<i64>(row, 0)?).unwrap_or(0),
                        time_ms: get(row, 1)?,
                        user: get(row, 2)?,
                        text: get(row, 3)?,
                    })
                })
                .collect::<Result<_, DbError>>()?;
            let next: i64 = get(&self.query_one(sql::SELECT_NEXT_SEQ, &[&room.id])?, 0)?;
            room.next_seq = u64::try_from(next).unwrap_or(1);
            room.bans = self.room_bans(room.id)?;
            rooms.push(room);
        }
        Ok(rooms)
    }

    fn close(mut self: Box<Self>) -> Result<(), DbError> {
        self.statements.clear();
        match self.client.take() {
            Some(client) => Ok(client.close()?),
            None => Ok(()),
        }
    }
}
