//! The DB thread: the one thread that owns the store (the SQLite file's
//! connection, or the connection to PostgreSQL), whichever engine it is.
//!
//! This file is the engine-independent machinery: the queue, the batches,
//! the lazy commit, the answers held until COMMIT, and the stored DMs in
//! flight. What an engine does inside a batch is behind the [`Store`] trait
//! (`store.rs`), implemented in `sqlite.rs` and `postgres.rs`.
//!
//! # Why one owner
//!
//! A `rusqlite::Connection` is `Send` but not `Sync`: it can move to another
//! thread, but two threads must never use it at the same time (a
//! `postgres::Client` likewise needs `&mut` for every query). We could put
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
//! milliseconds on an SSD and far more on a laptop's slow disk (and, on
//! PostgreSQL, a round trip to the server as well as its fsync). One
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
//! Such a batch is also begun with `durable: false` ([`Store::begin`]):
//! SQLite commits it with `synchronous=NORMAL` (in WAL mode, that COMMIT
//! writes the log but does not wait for an fsync), PostgreSQL with
//! `synchronous_commit = off` (the same promise, from its WAL writer).
//! The rows survive a crash of the server (the kernel has them); only a
//! power cut before the next fsync can lose them, and the next batch that
//! somebody waits for commits durably, and its fsync makes everything
//! before it durable too. So an acknowledged request is as durable as
//! ever, and what may be lost was never acknowledged: the last
//! milliseconds of history, as a crash could lose before by losing the
//! queue (docs/RELIABILITY.md, "Durability, precisely").
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
//! Each write therefore runs inside its own SAVEPOINT, a transaction
//! nested inside the batch's (the store opens it: see [`Store`]). A failing
//! request rolls back to its savepoint, undoing only itself, and the batch
//! goes on.
//!
//! # Why a store may be unreachable for a while
//!
//! A SQLite file is on this machine; a PostgreSQL server is elsewhere, and
//! may restart or drop off the network. Then [`Store::begin`] fails fast with
//! [`DbError::Failed`] (the server answers `ERR SERVER_ERROR`, and chat in
//! rooms, which needs no database, goes on); the store tries to reconnect at
//! the next batch, at most once a second, so that the node recovers by
//! itself when the database returns.
//!
//! # What the thread keeps besides the store
//!
//! The limits it enforces ([`Limits`]), and the stored DMs in flight: which
//! rows are claimed by which connection. Only this thread touches them, so
//! they need no lock; a claim and the requests around it are ordered like
//! everything else here. With several nodes on one PostgreSQL database,
//! each node's thread knows only its own claims: a user has one session in
//! the whole cluster at a time (the bus sees to that), so only that node
//! delivers the user's stored DMs.
//!
//! And the store's health ([`StoreHealth`]), which it updates after each
//! batch for the status page and the metrics: whether the last BEGIN and
//! COMMIT worked, and the last error if one did not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::doorbell::Receiver;

use super::store::{RoomLimits, Store};
use super::{DbError, Limits, Reply, Request, StoreHealth, StoredDm, MAX_BATCH};
use crate::error::{Error, Result};

/// An answer waiting for the batch's COMMIT. It is called with the COMMIT's
/// outcome and then sends either the request's own result or the COMMIT's
/// error.
///
/// It is a boxed closure because the answers of one batch have different
/// types (`String`, `Option<UserRecord>`, `Vec<StoredDm>`, …) and a `Vec`
/// needs one type: the closure hides the difference.
type HeldReply = Box<dyn FnOnce(&Result<(), DbError>)>;

/// What the DB thread keeps: the store, the limits it enforces, the stored
/// DMs in flight (see "Stored DMs" in `mod.rs`) and the store's health.
pub(super) struct Worker {
    /// The database; nobody else touches it.
    store: Box<dyn Store>,
    /// `--mailbox`, `--history-keep`, `--max-rooms`, `--rooms-per-user`.
    limits: Limits,
    /// Stored DM id → the connection it is in flight to. An id is here from
    /// its claim until its deletion or release.
    claims: HashMap<i64, u64>,
    /// What [`Db::health`](super::Db::health) reads; written after each
    /// batch.
    health: Arc<Mutex<StoreHealth>>,
}

/// How long a batch that nobody waits for may wait for more requests
/// before it commits (see "Why history may wait a little").
const LAZY_COMMIT: Duration = Duration::from_millis(50);

/// The DB thread's body: serve batches of requests until every `Db` handle
/// is dropped, then close the store.
///
/// # Errors
///
/// [`Error::Db`] if closing the store fails (for SQLite, the last
/// checkpoint of the WAL could not be written); everything acknowledged is
/// safe in the WAL anyway.
pub(super) fn run(
    store: Box<dyn Store>,
    queue: Receiver<Request>,
    limits: Limits,
    health: Arc<Mutex<StoreHealth>>,
) -> Result<()> {
    log::debug!("db thread started ({})", store.engine());
    let mut worker = Worker::new(store, limits, health);
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
    worker.store.close().map_err(|e| match e {
        DbError::Failed(why) => Error::Db(format!("closing the database: {why}")),
        other => Error::Db(format!("closing the database: {other}")),
    })
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
    pub(super) fn new(
        store: Box<dyn Store>,
        limits: Limits,
        health: Arc<Mutex<StoreHealth>>,
    ) -> Self {
        Worker {
            store,
            limits,
            claims: HashMap::new(),
            health,
        }
    }

    /// Notes the outcome of a batch's BEGIN and COMMIT for
    /// [`Db::health`](super::Db::health): healthy after a success, and the
    /// error kept (with healthy false) after a failure.
    fn note_health(&self, outcome: &Result<(), DbError>) {
        let mut health = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome {
            Ok(()) => health.ok = true,
            Err(error) => {
                health.ok = false;
                health.last_error = Some(error.to_string());
            }
        }
    }

    /// Runs one batch of requests in one transaction, commits, and only then
    /// answers them.
    ///
    /// Outcomes, from best to worst:
    /// - all statements fine, COMMIT fine: every request gets its own result;
    /// - one request fails: only its savepoint is rolled back, it gets its
    ///   error, the others are committed and answered normally;
    /// - COMMIT fails (or the engine itself aborted the transaction, or it
    ///   could not even begin one): nothing of the batch remains, and every
    ///   request gets the error.
    pub(super) fn run_batch(&mut self, batch: Vec<Request>) {
        let size = batch.len();
        // Durable unless nobody waits for any of it (see "Why history may
        // wait a little").
        let durable = batch.iter().any(Request::awaited);
        if let Err(error) = self.store.begin(durable) {
            log::error!("db: cannot begin a transaction for {size} requests: {error}");
            self.note_health(&Err(error.clone()));
            for request in batch {
                request.fail(&error, &mut self.claims);
            }
            return;
        }

        let Worker {
            store,
            limits,
            claims,
            ..
        } = self;
        let mut step = Step {
            store: store.as_mut(),
            limits: *limits,
            claims,
            claimed: Vec::new(),
            newest: HashMap::new(),
        };
        let mut held: Vec<HeldReply> = Vec::with_capacity(size);
        let mut requests = batch.into_iter();
        let mut aborted = None;
        for request in requests.by_ref() {
            if let Some(reply) = step.execute(request) {
                held.push(reply);
            }
            // Some errors (disk full, I/O error, a lost connection) make
            // the engine give up the *whole* transaction on its own.
            // Carrying on would run the rest of the batch outside any
            // transaction (SQLite: one autocommit at a time) or not at all
            // (PostgreSQL), and then answer them as if they belonged to a
            // failed batch. So we check, and stop.
            if step.store.aborted() {
                aborted = Some(DbError::Failed(format!(
                    "{} aborted the transaction after an error",
                    step.store.engine()
                )));
                break;
            }
        }
        if aborted.is_none() {
            step.trim_history();
        }

        let outcome = match aborted {
            Some(error) => {
                // The requests we did not get to share the batch's fate.
                for request in requests {
                    request.fail(&error, step.claims);
                }
                step.store.rollback();
                Err(error)
            }
            // COMMIT: the moment of truth, and the fsync. If it fails, the
            // store has rolled the transaction back: nothing of the batch
            // remains, matching the error every request is about to get.
            None => crate::web::metrics::timed_commit(|| step.store.commit()),
        };
        if let Err(error) = &outcome {
            log::error!("db: batch of {size} requests not committed: {error}");
            // The claimers are about to hear an error and deliver nothing:
            // their rows are not in flight after all.
            for id in step.claimed {
                step.claims.remove(&id);
            }
        }
        self.note_health(&outcome);

        // Only now, with the outcome known, do the callers hear back.
        for reply in held {
            reply(&outcome);
        }
    }
}

/// What one batch works with: the worker's store and state, and what the
/// batch has done so far that matters at its end.
struct Step<'a> {
    /// The worker's store, inside the batch's transaction.
    store: &'a mut dyn Store,
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
    fn execute(&mut self, request: Request) -> Option<HeldReply> {
        match request {
            Request::Register {
                name,
                password_hash,
                now_ms,
                reply,
            } => {
                let result = self.store.register(&name, &password_hash, now_ms);
                Some(hold(reply, result))
            }
            Request::User { name, reply } => Some(hold(reply, self.store.user(&name))),
            Request::Room { name, reply } => Some(hold(reply, self.store.room(&name))),
            Request::Moderate { moderation, reply } => {
                let keep = self.limits.moderation_keep;
                Some(hold(reply, self.store.moderate(&moderation, keep)))
            }
            Request::RoomCounts { owner, reply } => {
                Some(hold(reply, self.store.room_counts(&owner)))
            }
            Request::SetPasswordHash {
                name,
                password_hash,
                reply,
            } => {
                let result = self.store.set_password_hash(&name, &password_hash);
                Some(hold(reply, result))
            }
            Request::SetRoomPasswordHash {
                name,
                password_hash,
                reply,
            } => {
                let result = self.store.set_room_password_hash(&name, &password_hash);
                Some(hold(reply, result))
            }
            Request::CreateRoom {
                name,
                password_hash,
                owner,
                now_ms,
                reply,
            } => {
                let limits = RoomLimits {
                    max_rooms: self.limits.max_rooms,
                    rooms_per_user: self.limits.rooms_per_user,
                };
                let result =
                    self.store
                        .create_room(&name, password_hash.as_deref(), &owner, now_ms, limits);
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
                match self
                    .store
                    .append_history(room_id, seq, time_ms, &user, &text)
                {
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
                let mailbox = limited.then_some(self.limits.mailbox);
                let result = self.store.store_dm(&to, &from, time_ms, &text, mailbox);
                Some(hold(reply, result))
            }
            Request::ClaimDms {
                to,
                conn,
                limit,
                reply,
            } => {
                let result = self.claim(&to, conn, limit);
                Some(hold(reply, result))
            }
            Request::DeleteDms { ids, reply } => {
                let result = self.delete(&ids);
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
    fn delete(&mut self, ids: &[i64]) -> Result<(), DbError> {
        let result = self.store.delete_dms(ids);
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
    /// later login. Reads only; a mailbox holds at most `--mailbox` rows,
    /// so the skipped ones cost little.
    fn claim(&mut self, to: &str, conn: u64, limit: usize) -> Result<Vec<StoredDm>, DbError> {
        let claims = &*self.claims;
        let dms = self
            .store
            .pending_dms(to, limit, &|id| claims.get(&id) != Some(&conn))?;
        for dm in &dms {
            self.claims.insert(dm.id, conn);
            self.claimed.push(dm.id);
        }
        Ok(dms)
    }

    /// `--history-keep`: deletes, in each room that got messages in this
    /// batch, those numbered `keep` or more below its newest. One indexed
    /// range per room per batch; in the steady state it deletes as many
    /// rows as the batch appended. A failure is logged and costs nothing
    /// but disk: the next batch tries again.
    fn trim_history(&mut self) {
        let keep = u64::try_from(self.limits.history_keep).unwrap_or(u64::MAX);
        for (room, newest) in std::mem::take(&mut self.newest).into_values() {
            let Some(last_gone) = newest.checked_sub(keep).filter(|&seq| seq > 0) else {
                continue;
            };
            if let Err(error) = self.store.trim_history(&room, last_gone) {
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
    use crate::db::sqlite::SqliteStore;
    use crate::oneshot;
    use rusqlite::Connection;

    /// A worker on a fresh, migrated file, for driving `run_batch` by hand,
    /// and a second connection to the same file to look at what it did.
    fn worker(limits: Limits) -> (tempfile::TempDir, Worker, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let store = SqliteStore::open(&path).unwrap();
        let health = Arc::new(Mutex::new(StoreHealth::new("sqlite")));
        let look = Connection::open(&path).unwrap();
        (dir, Worker::new(Box::new(store), limits, health), look)
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
        let (_dir, mut w, look) = worker(Limits::default());
        look.execute("INSERT INTO rooms (name, created_ms) VALUES ('r', 0)", [])
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
        assert_eq!(user_count(&look), 2);
        let seqs: Vec<i64> = look
            .prepare("SELECT seq FROM messages ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(seqs, [1, 2]);
        assert!(w.health.lock().unwrap().ok);
    }

    /// If the COMMIT fails, every request of the batch gets the error,
    /// nothing of the batch remains, and the health says so until the next
    /// batch works. (A deferred foreign key, checked only at COMMIT and
    /// violated by a trigger, makes the COMMIT fail on demand.)
    #[test]
    fn failed_commit_fails_the_whole_batch() {
        let (_dir, mut w, look) = worker(Limits::default());
        look.execute_batch(
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
        assert_eq!(user_count(&look), 0);
        {
            let health = w.health.lock().unwrap();
            assert!(!health.ok);
            let error = health.last_error.as_deref().unwrap_or_default();
            assert!(error.contains("FOREIGN KEY"), "{error}");
        }
        // The failed transaction was rolled back: another connection may
        // write (it would be refused as busy while the write lock is held).
        look.busy_timeout(Duration::ZERO).unwrap();
        look.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").unwrap();

        // The next batch works normally.
        let (ann, ann_answer) = register("ann");
        w.run_batch(vec![ann]);
        assert_eq!(ann_answer.try_recv().unwrap(), Ok("ann".into()));
        assert_eq!(user_count(&look), 1);
        assert!(w.health.lock().unwrap().ok, "healthy again");
    }

    /// A read in a batch sees the writes before it in the same batch.
    #[test]
    fn reads_see_earlier_writes_of_the_batch() {
        let (_dir, mut w, _look) = worker(Limits::default());
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
