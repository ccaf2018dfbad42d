//! The DB thread: the one thread that owns the SQLite connection.
//!
//! # Why one owner
//!
//! A `rusqlite::Connection` is `Send` but not `Sync`: it can move to another
//! thread, but two threads must never use it at the same time. We could put
//! it in a `Mutex`, but then every connection thread that registers, sends a
//! DM or says something would hold that mutex across a disk write and an
//! fsync, and the critical section would be as slow as the disk. Instead the
//! connection lives here, and the rest of the server talks to this thread
//! through a queue of [`Request`]s. This is the "manager task" pattern of
//! the tokio tutorial, done with a std thread and a queue whose consumer
//! sleeps without spinning (`doorbell.rs`).
//!
//! # Why the queue is bounded
//!
//! If clients produce writes faster than the disk absorbs them, an unbounded
//! queue would grow until the server runs out of memory. A bounded queue
//! makes the senders wait instead (backpressure): the server slows down
//! rather than falls over.
//!
//! # Why group commit
//!
//! With `synchronous=FULL`, every COMMIT waits for an fsync, a few
//! milliseconds on an SSD and far more on a laptop's slow disk. One
//! transaction per request would cap the server at a few hundred writes per
//! second, whatever the CPU. So the loop below takes *every request already
//! waiting* (up to [`MAX_BATCH`]) and runs them all in **one** transaction:
//! one fsync pays for the whole batch. Under light load a batch is a single
//! request and nobody waits longer than before; under heavy load batches
//! grow by themselves, which is exactly when the saving matters.
//!
//! # Why history may wait a little
//!
//! Some requests nobody waits for: a message for the room's history (it
//! was already broadcast), a stored DM to delete because it was delivered,
//! a claim to release. A batch made only of those does not commit at once:
//! it waits up to [`LAZY_COMMIT`] for more, and commits as soon as a request
//! that somebody waits for arrives. It waits dozing (`doorbell.rs`): the
//! requests nobody waits for are sent lazily and do not wake it. In a
//! classroom, where messages arrive a few milliseconds apart, that turns
//! one commit and one wake-up per message into one per handful, and the
//! database thread's share of each delivery with it.
//!
//! Such a batch also commits with `synchronous=NORMAL`: in WAL mode, that
//! COMMIT writes the log but does not wait for an fsync. The rows survive a
//! crash of the server (the kernel has them); only a power cut before the
//! next fsync can lose them, and the next batch that somebody waits for
//! commits with `synchronous=FULL`, whose fsync makes everything before it
//! durable too. So an acknowledged request is as durable as ever, and what
//! may be lost was never acknowledged: the last milliseconds of history,
//! as a crash could lose before by losing the queue (docs/RELIABILITY.md,
//! "Durability, precisely").
//!
//! # Why reply only after COMMIT
//!
//! Until COMMIT returns, the batch's changes can still vanish (a crash, a
//! full disk). If we answered `register` before committing, the server could
//! send `OK REGISTER` for an account that does not exist after a restart.
//! So each answer is *held* while the batch runs and released only when the
//! COMMIT has succeeded, or replaced by an error if it failed.
//!
//! # Why a savepoint per request
//!
//! Sharing a transaction must not make requests share their failures: if
//! one history insert fails (say, a duplicate message number), the account
//! registered just before it in the same batch must still be committed.
//! Each request therefore runs inside its own SAVEPOINT, a transaction
//! nested inside the batch's. A failing request rolls back to its savepoint,
//! undoing only itself, and the batch goes on.
//!
//! # What the thread keeps besides the connection
//!
//! The limits it enforces ([`Limits`]), and the stored DMs in flight: which
//! rows are claimed by which connection. Only this thread touches them, so
//! they need no lock; a claim and the requests around it are ordered like
//! everything else here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::doorbell::Receiver;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::schema;
use super::{DbError, Limits, Reply, Request, StoredDm, UserRecord, MAX_BATCH};
use crate::error::{Error, Result};

/// An answer waiting for the batch's COMMIT. It is called with the COMMIT's
/// outcome and then sends either the request's own result or the COMMIT's
/// error.
///
/// It is a boxed closure because the answers of one batch have different
/// types (`String`, `Option<UserRecord>`, `Vec<StoredDm>`, …) and a `Vec`
/// needs one type: the closure hides the difference.
type HeldReply = Box<dyn FnOnce(&Result<(), DbError>)>;

/// What the DB thread keeps besides the connection: the limits it
/// enforces, and the stored DMs in flight (see "Stored DMs" in `mod.rs`).
pub(super) struct Worker {
    /// The database; nobody else touches it.
    conn: Connection,
    /// `--mailbox`, `--history-keep`, `--max-rooms`, `--rooms-per-user`.
    limits: Limits,
    /// Stored DM id → the connection it is in flight to. An id is here from
    /// its claim until its deletion or release.
    claims: HashMap<i64, u64>,
    /// Whether `synchronous` is `FULL` now (else `NORMAL`): see "Why
    /// history may wait a little".
    synchronous_full: bool,
}

/// How long a batch that nobody waits for may wait for more requests
/// before it commits (see "Why history may wait a little").
const LAZY_COMMIT: Duration = Duration::from_millis(50);

/// The DB thread's body: serve batches of requests until every `Db` handle
/// is dropped, then close the database.
///
/// # Errors
///
/// [`Error::Db`] if closing the database fails (the last checkpoint of the
/// WAL could not be written); everything acknowledged is safe in the WAL
/// anyway.
pub(super) fn run(conn: Connection, queue: Receiver<Request>, limits: Limits) -> Result<()> {
    log::debug!("db thread started");
    let mut worker = Worker::new(conn, limits);
    let mut batch = Vec::with_capacity(MAX_BATCH);

    // `recv` blocks until a request arrives. It returns `Err` only when the
    // queue is empty *and* every sender (every `Db` handle) has been
    // dropped. So the loop ends only after the last queued request has been
    // served: a graceful stop loses nothing.
    while let Ok(first) = queue.recv() {
        let lazy_until = Instant::now() + LAZY_COMMIT;
        let mut awaited = first.awaited();
        batch.push(first);
        // Take whatever else is already waiting: `try_recv` never blocks.
        // Requests that arrive while this batch runs form the next batch.
        take_waiting(&queue, &mut batch, &mut awaited);
        // If nobody waits for this batch, it may wait for company: doze,
        // woken early only by a request somebody waits for.
        if !awaited && batch.len() < MAX_BATCH {
            queue.doze_until(lazy_until, || {
                take_waiting(&queue, &mut batch, &mut awaited);
                awaited || batch.len() >= MAX_BATCH
            });
        }
        worker.run_batch(std::mem::take(&mut batch));
    }

    log::debug!("db thread: every handle dropped, closing the database");
    worker
        .conn
        .close()
        .map_err(|(_, e)| Error::Db(format!("closing the database: {e}")))
}

/// Moves the requests waiting in `queue` into `batch` (up to
/// [`MAX_BATCH`]), noting whether somebody waits for any of them.
fn take_waiting(queue: &Receiver<Request>, batch: &mut Vec<Request>, awaited: &mut bool) {
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(request) => {
                *awaited |= request.awaited();
                batch.push(request);
            }
            Err(_) => break,
        }
    }
}

impl Worker {
    /// A worker with nothing in flight.
    pub(super) fn new(conn: Connection, limits: Limits) -> Self {
        Worker {
            conn,
            limits,
            claims: HashMap::new(),
            // As `open_connection` left it.
            synchronous_full: true,
        }
    }

    /// Makes the next COMMIT wait for an fsync (`full`), or not. Changed
    /// only when it changes: a batch of history after a batch of history
    /// costs no statement.
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

    /// Runs one batch of requests in one transaction, commits, and only then
    /// answers them.
    ///
    /// Outcomes, from best to worst:
    /// - all statements fine, COMMIT fine: every request gets its own result;
    /// - one request fails: only its savepoint is rolled back, it gets its
    ///   error, the others are committed and answered normally;
    /// - COMMIT fails (or SQLite itself aborted the transaction): nothing of
    ///   the batch remains, and every request gets the error.
    pub(super) fn run_batch(&mut self, batch: Vec<Request>) {
        let size = batch.len();
        self.set_synchronous(batch.iter().any(Request::awaited));
        let Worker {
            conn,
            limits,
            claims,
            ..
        } = self;
        // IMMEDIATE takes the write lock now, so we find out at BEGIN (not
        // half way through) if another process holds it too long.
        let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let error = DbError::from(e);
                log::error!("db: cannot begin a transaction for {size} requests: {error}");
                for request in batch {
                    request.fail(&error, claims);
                }
                return;
            }
        };

        let mut step = Step {
            limits: *limits,
            claims,
            claimed: Vec::new(),
            newest: HashMap::new(),
        };
        let mut held: Vec<HeldReply> = Vec::with_capacity(size);
        let mut requests = batch.into_iter();
        let mut aborted = None;
        for request in requests.by_ref() {
            if let Some(reply) = step.execute(&mut tx, request) {
                held.push(reply);
            }
            // Some errors (disk full, I/O error) make SQLite roll back the
            // *whole* transaction on its own. Carrying on would run the rest
            // of the batch outside any transaction, one autocommit at a
            // time, and then answer them as if they belonged to a failed
            // batch. So we check, and stop.
            if tx.is_autocommit() {
                aborted = Some(DbError::Failed(
                    "SQLite aborted the transaction after an error".into(),
                ));
                break;
            }
        }
        if aborted.is_none() {
            step.trim_history(&mut tx);
        }

        let outcome = match aborted {
            Some(error) => {
                // The requests we did not get to share the batch's fate.
                for request in requests {
                    request.fail(&error, step.claims);
                }
                Err(error)
            }
            // COMMIT: the moment of truth, and the fsync. If it fails,
            // `commit` drops the transaction, which rolls it back: nothing
            // of the batch remains, matching the error every request is
            // about to get.
            None => crate::web::metrics::timed_commit(|| tx.commit()).map_err(DbError::from),
        };
        if let Err(error) = &outcome {
            log::error!("db: batch of {size} requests not committed: {error}");
            // The claimers are about to hear an error and deliver nothing:
            // their rows are not in flight after all.
            for id in step.claimed {
                step.claims.remove(&id);
            }
        }

        // Only now, with the outcome known, do the callers hear back.
        for reply in held {
            reply(&outcome);
        }
    }
}

/// What one batch works with: the worker's state, and what the batch has
/// done so far that matters at its end.
struct Step<'a> {
    /// The worker's limits.
    limits: Limits,
    /// The worker's DMs in flight.
    claims: &'a mut HashMap<i64, u64>,
    /// DM ids claimed in this batch, to forget if it does not commit.
    claimed: Vec<i64>,
    /// Per room (its name in lower case): the name as given and the
    /// highest message number appended in this batch.
    newest: HashMap<String, (String, u64)>,
}

impl Step<'_> {
    /// Runs one request inside the batch's transaction and returns its held
    /// answer (`None` for the requests whose caller does not wait).
    fn execute(&mut self, tx: &mut Transaction<'_>, request: Request) -> Option<HeldReply> {
        match request {
            Request::Register {
                name,
                password_hash,
                now_ms,
                reply,
            } => {
                let result = in_savepoint(tx, |conn| {
                    insert_named(
                        conn,
                        schema::INSERT_USER,
                        &name,
                        Some(&password_hash),
                        now_ms,
                    )
                });
                Some(hold(reply, result))
            }
            Request::User { name, reply } => {
                // A read needs no savepoint: it changes nothing to undo. It
                // does see the writes of earlier requests in this batch, as
                // it should.
                Some(hold(reply, find_user(tx, &name)))
            }
            Request::Room { name, reply } => {
                let result = tx
                    .prepare_cached(schema::SELECT_ROOM)
                    .and_then(|mut stmt| stmt.query_row([&name], super::room_record).optional())
                    .and_then(|room| {
                        room.map(|mut room| {
                            room.bans = super::room_bans(tx, room.id)?;
                            Ok(room)
                        })
                        .transpose()
                    })
                    .map_err(DbError::from);
                Some(hold(reply, result))
            }
            Request::Moderate { moderation, reply } => {
                let keep = self.limits.moderation_keep;
                let result = in_savepoint(tx, |conn| {
                    super::moderation::execute(conn, &moderation, keep)
                });
                Some(hold(reply, result))
            }
            Request::RoomCounts { owner, reply } => {
                // Reads only: no savepoint needed.
                let result = count(tx, schema::COUNT_ROOMS, [])
                    .and_then(|rooms| Ok((rooms, count(tx, schema::COUNT_OWNED_ROOMS, [&owner])?)));
                Some(hold(reply, result))
            }
            Request::SetPasswordHash {
                name,
                password_hash,
                reply,
            } => {
                let result = update_hash(
                    tx,
                    schema::UPDATE_PASSWORD_HASH,
                    &name,
                    &password_hash,
                    DbError::NoSuchUser,
                );
                Some(hold(reply, result))
            }
            Request::SetRoomPasswordHash {
                name,
                password_hash,
                reply,
            } => {
                let missing = DbError::Failed(format!("no private room named {name}"));
                let result = update_hash(
                    tx,
                    schema::UPDATE_ROOM_PASSWORD_HASH,
                    &name,
                    &password_hash,
                    missing,
                );
                Some(hold(reply, result))
            }
            Request::CreateRoom {
                name,
                password_hash,
                owner,
                now_ms,
                reply,
            } => {
                let limits = self.limits;
                // The counts and the insert share one savepoint on the one
                // thread that writes: two racing CREATEs are counted one
                // after the other, so they cannot pass a limit together.
                let result = in_savepoint(tx, |conn| {
                    let exists = conn
                        .prepare_cached(schema::ROOM_EXISTS)?
                        .query_row([&name], |_| Ok(()))
                        .optional()?
                        .is_some();
                    if exists {
                        return Err(DbError::Exists);
                    }
                    let rooms = count(conn, schema::COUNT_ROOMS, [])?;
                    let owned = count(conn, schema::COUNT_OWNED_ROOMS, [&owner])?;
                    if rooms >= limits.max_rooms || owned >= limits.rooms_per_user {
                        return Err(DbError::TooManyRooms);
                    }
                    let inserted = conn
                        .prepare_cached(schema::INSERT_OWNED_ROOM)?
                        .execute(params![name, password_hash.as_deref(), now_ms, owner])?;
                    if inserted == 0 {
                        Err(DbError::Exists)
                    } else {
                        Ok((name.clone(), conn.last_insert_rowid()))
                    }
                });
                Some(hold(reply, result))
            }
            Request::AppendHistory {
                room_id,
                room,
                seq,
                time_ms,
                user,
                text,
            } => {
                let result = in_savepoint(tx, |conn| {
                    let inserted = conn
                        .prepare_cached(schema::INSERT_MESSAGE)?
                        .execute(params![room_id, seq, time_ms, user, text])?;
                    Ok(inserted > 0)
                });
                match result {
                    // Said just before its room was closed: nothing to keep.
                    Ok(false) => {
                        log::debug!("db: message {seq} of closed room {room:?} not stored")
                    }
                    Ok(true) => {
                        let newest = self
                            .newest
                            .entry(room.to_ascii_lowercase())
                            .or_insert_with(|| (room, seq));
                        newest.1 = newest.1.max(seq);
                    }
                    // Nobody waits for this answer, so a failure can only
                    // be logged.
                    Err(error) => {
                        log::error!("db: message {seq} of room {room:?} not stored: {error}")
                    }
                }
                None
            }
            Request::StoreDm {
                to,
                from,
                time_ms,
                text,
                limited,
                reply,
            } => {
                let mailbox = self.limits.mailbox;
                // Counted in the same savepoint as the insert, on the one
                // thread that writes: racing senders cannot pass the limit.
                let result = in_savepoint(tx, |conn| {
                    if limited && count(conn, schema::COUNT_DMS, [&to])? >= mailbox {
                        return Err(DbError::MailboxFull);
                    }
                    let inserted = conn
                        .prepare_cached(schema::INSERT_DM)?
                        .execute(params![to, from, time_ms, text])?;
                    if inserted == 0 {
                        Err(DbError::NoSuchUser)
                    } else {
                        Ok(())
                    }
                });
                Some(hold(reply, result))
            }
            Request::ClaimDms {
                to,
                conn,
                limit,
                reply,
            } => {
                let result = self.claim(tx, &to, conn, limit);
                Some(hold(reply, result))
            }
            Request::DeleteDms { ids, reply } => {
                let result = self.delete(tx, &ids);
                reply.map(|reply| hold(reply, result))
            }
            Request::ReleaseDms { conn, ids } => {
                release(self.claims, conn, &ids);
                None
            }
            // Nothing to do: being answered after this batch's COMMIT is the
            // whole point.
            Request::Flush { reply } => Some(hold(reply, Ok(()))),
        }
    }

    /// Deletes stored DMs that were written to their recipient's socket,
    /// and their claims, whoever holds them now. A failure is logged (the
    /// rows are then no longer in flight, and come again: at least once).
    fn delete(&mut self, tx: &mut Transaction<'_>, ids: &[i64]) -> Result<(), DbError> {
        let result = in_savepoint(tx, |conn| {
            let mut delete = conn.prepare_cached(schema::DELETE_DM)?;
            for id in ids {
                delete.execute([id])?;
            }
            Ok(())
        });
        if let Err(error) = &result {
            log::error!("db: {} delivered DMs not deleted: {error}", ids.len());
        }
        for id in ids {
            self.claims.remove(id);
        }
        result
    }

    /// Claims for connection `conn` the oldest `limit` DMs of `to` that are
    /// not already in flight to it. Rows in flight to *another* connection
    /// of the user are taken over: that session is gone or being replaced
    /// (a user has one at a time), and its rows would otherwise wait for a
    /// later login. Reads only, so no savepoint; a mailbox holds at most
    /// `--mailbox` rows, so the skipped ones cost little.
    fn claim(
        &mut self,
        tx: &Transaction<'_>,
        to: &str,
        conn: u64,
        limit: usize,
    ) -> Result<Vec<StoredDm>, DbError> {
        let mut select = tx.prepare_cached(schema::SELECT_DMS)?;
        let mut rows = select.query([to])?;
        let mut dms = Vec::new();
        while dms.len() < limit {
            let Some(row) = rows.next()? else { break };
            let id: i64 = row.get(0)?;
            if self.claims.get(&id) == Some(&conn) {
                continue;
            }
            dms.push(StoredDm {
                id,
                from: row.get(1)?,
                time_ms: row.get(2)?,
                text: row.get(3)?,
            });
        }
        for dm in &dms {
            self.claims.insert(dm.id, conn);
            self.claimed.push(dm.id);
        }
        Ok(dms)
    }

    /// `--history-keep`: deletes, in each room that got messages in this
    /// batch, those numbered `keep` or more below its newest. One indexed
    /// range per room per batch (see [`schema::TRIM_HISTORY`]); in the
    /// steady state it deletes as many rows as the batch appended. A failure
    /// is logged and costs nothing but disk: the next batch tries again.
    fn trim_history(&mut self, tx: &mut Transaction<'_>) {
        let keep = u64::try_from(self.limits.history_keep).unwrap_or(u64::MAX);
        for (room, newest) in std::mem::take(&mut self.newest).into_values() {
            let Some(last_gone) = newest.checked_sub(keep).filter(|&seq| seq > 0) else {
                continue;
            };
            let result = in_savepoint(tx, |conn| {
                conn.prepare_cached(schema::TRIM_HISTORY)?
                    .execute(params![room, last_gone])?;
                Ok(())
            });
            if let Err(error) = result {
                log::error!("db: old history of room {room:?} not trimmed: {error}");
            }
        }
    }
}

/// Forgets the claims of `conn` on `ids`; a row taken over since by another
/// connection stays that one's.
fn release(claims: &mut HashMap<i64, u64>, conn: u64, ids: &[i64]) {
    for id in ids {
        if claims.get(id) == Some(&conn) {
            claims.remove(id);
        }
    }
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
    tx: &mut Transaction<'_>,
    sql: &str,
    name: &str,
    password_hash: &str,
    missing: DbError,
) -> Result<(), DbError> {
    in_savepoint(tx, |conn| {
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
/// statement of this thread: a savepoint per request is then three short
/// steps, not three SQL texts parsed again for every message said.
fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    work: impl FnOnce(&Connection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let conn: &Connection = tx;
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
/// this thread, and the `UNIQUE COLLATE NOCASE` index decides.
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

/// Looks an account up, in any letter case.
fn find_user(conn: &Connection, name: &str) -> Result<Option<UserRecord>, DbError> {
    let user = conn
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

/// Wraps a request's reply channel and result into an answer held until the
/// COMMIT.
fn hold<T: 'static>(reply: Reply<T>, result: Result<T, DbError>) -> HeldReply {
    Box::new(move |commit: &Result<(), DbError>| {
        let answer = match commit {
            Ok(()) => result,
            // The batch was not committed, so whatever this request did is
            // gone: it must not be reported as done.
            Err(error) => Err(error.clone()),
        };
        // Never blocks: the channel has room for exactly this one answer.
        // It fails only if the caller's thread has gone away meanwhile;
        // there is nobody left to tell.
        let _ = reply.send(answer);
    })
}

impl Request {
    /// Answers a request that never ran with `error`. A request about
    /// stored DMs in flight (`claims`) still changes them as it would have:
    /// a release still releases.
    fn fail(self, error: &DbError, claims: &mut HashMap<i64, u64>) {
        // Like in `hold`: a send fails only if the caller has gone.
        match self {
            Request::Register { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Request::CreateRoom { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Request::User { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Request::Room { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Request::RoomCounts { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Request::ClaimDms { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Request::Moderate { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Request::SetPasswordHash { reply, .. }
            | Request::SetRoomPasswordHash { reply, .. }
            | Request::StoreDm { reply, .. }
            | Request::Flush { reply } => {
                let _ = reply.send(Err(error.clone()));
            }
            Request::DeleteDms { ids, reply } => {
                // Not deleted: the rows stay stored, and are no longer in
                // flight, so they come again (at least once).
                for id in &ids {
                    claims.remove(id);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            Request::ReleaseDms { conn, ids } => release(claims, conn, &ids),
            Request::AppendHistory { room, seq, .. } => {
                log::error!("db: message {seq} of room {room:?} not stored: {error}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oneshot;

    /// A worker on a fresh, migrated file, for driving `run_batch` by hand.
    fn worker(limits: Limits) -> (tempfile::TempDir, Worker) {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_connection(&dir.path().join("chat.db")).unwrap();
        (dir, Worker::new(conn, limits))
    }

    /// A register request and the receiver of its answer.
    fn register(name: &str) -> (Request, oneshot::Receiver<Result<String, DbError>>) {
        let (reply, answer) = oneshot::channel();
        let request = Request::Register {
            name: name.into(),
            password_hash: "h".into(),
            now_ms: 0,
            reply,
        };
        (request, answer)
    }

    /// Number of rows in `users`.
    fn user_count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
            .unwrap()
    }

    /// In one batch, a failing request (a duplicate message number, then a
    /// duplicate name) does not undo the requests around it.
    #[test]
    fn failure_in_a_batch_is_isolated() {
        let (_dir, mut w) = worker(Limits::default());
        w.conn
            .execute("INSERT INTO rooms (name, created_ms) VALUES ('r', 0)", [])
            .unwrap();
        let history = |seq| Request::AppendHistory {
            room_id: 1,
            room: "r".into(),
            seq,
            time_ms: 0,
            user: "u".into(),
            text: "t".into(),
        };
        let (ann, ann_answer) = register("ann");
        let (ann_again, ann_again_answer) = register("ANN");
        let (bob, bob_answer) = register("bob");
        w.run_batch(vec![
            ann,
            history(1),
            history(1),
            ann_again,
            bob,
            history(2),
        ]);
        assert_eq!(ann_answer.try_recv().unwrap(), Ok("ann".into()));
        assert_eq!(ann_again_answer.try_recv().unwrap(), Err(DbError::Exists));
        assert_eq!(bob_answer.try_recv().unwrap(), Ok("bob".into()));
        assert_eq!(user_count(&w.conn), 2);
        let seqs: Vec<i64> = w
            .conn
            .prepare("SELECT seq FROM messages ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(seqs, [1, 2]);
    }

    /// A batch of history commits without waiting for an fsync, and the
    /// next batch that somebody waits for with it; both are committed.
    #[test]
    fn history_alone_commits_without_fsync() {
        let (_dir, mut w) = worker(Limits::default());
        w.conn
            .execute("INSERT INTO rooms (name, created_ms) VALUES ('r', 0)", [])
            .unwrap();
        let synchronous = |w: &Worker| -> i64 {
            w.conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(synchronous(&w), 2, "FULL to begin with");
        w.run_batch(vec![Request::AppendHistory {
            room_id: 1,
            room: "r".into(),
            seq: 1,
            time_ms: 0,
            user: "u".into(),
            text: "t".into(),
        }]);
        assert_eq!(synchronous(&w), 1, "NORMAL for history alone");
        let (ann, ann_answer) = register("ann");
        w.run_batch(vec![ann]);
        assert_eq!(synchronous(&w), 2, "FULL again for an account");
        assert_eq!(ann_answer.try_recv().unwrap(), Ok("ann".into()));
        let messages: i64 = w
            .conn
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(messages, 1);
    }

    /// If the COMMIT fails, every request of the batch gets the error and
    /// nothing of the batch remains. (A deferred foreign key, checked only at
    /// COMMIT and violated by a trigger, makes the COMMIT fail on demand.)
    #[test]
    fn failed_commit_fails_the_whole_batch() {
        let (_dir, mut w) = worker(Limits::default());
        w.conn.execute_batch(
            "CREATE TABLE poison (room_id INTEGER REFERENCES rooms(id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TRIGGER poison_on_mallory AFTER INSERT ON users WHEN NEW.name = 'mallory'
             BEGIN INSERT INTO poison VALUES (999); END;",
        )
        .unwrap();
        let (ann, ann_answer) = register("ann");
        let (mallory, mallory_answer) = register("mallory");
        let (flush_reply, flush_answer) = oneshot::channel();
        w.run_batch(vec![ann, mallory, Request::Flush { reply: flush_reply }]);
        match ann_answer.try_recv().unwrap() {
            Err(DbError::Failed(text)) => assert!(text.contains("FOREIGN KEY"), "{text}"),
            other => panic!("expected the COMMIT's error, got {other:?}"),
        }
        assert!(matches!(
            mallory_answer.try_recv().unwrap(),
            Err(DbError::Failed(_))
        ));
        assert!(matches!(
            flush_answer.try_recv().unwrap(),
            Err(DbError::Failed(_))
        ));
        assert_eq!(user_count(&w.conn), 0);
        assert!(
            w.conn.is_autocommit(),
            "the failed transaction was rolled back"
        );

        // The next batch works normally.
        let (ann, ann_answer) = register("ann");
        w.run_batch(vec![ann]);
        assert_eq!(ann_answer.try_recv().unwrap(), Ok("ann".into()));
        assert_eq!(user_count(&w.conn), 1);
    }

    /// A read in a batch sees the writes before it in the same batch.
    #[test]
    fn reads_see_earlier_writes_of_the_batch() {
        let (_dir, mut w) = worker(Limits::default());
        let (ann, _ann_answer) = register("Ann");
        let (reply, answer) = oneshot::channel();
        w.run_batch(vec![
            ann,
            Request::User {
                name: "ann".into(),
                reply,
            },
        ]);
        let user = answer.try_recv().unwrap().unwrap().unwrap();
        assert_eq!(user.name, "Ann");
    }
}
