//! Password hashing and verification, with a login failure path that takes
//! the same time whether or not the user exists, on a small pool of
//! threads that serves logins first and keeps its memory bounded.
//!
//! # What we store
//!
//! A password is never stored. We store an **argon2id** hash in the PHC
//! string format, which carries everything needed to check it later:
//!
//! ```text
//! $argon2id$v=19$m=19456,t=2,p=1$<random salt, base64>$<hash, base64>
//! ```
//!
//! Argon2id is deliberately slow and memory-hungry (19 MiB and two passes by
//! default), so that someone who steals the database file cannot try
//! billions of guesses per second on a graphics card. The random salt makes
//! two users with the same password get different hashes, so one cracked
//! hash tells the thief nothing about the others.
//!
//! Databases made by the Python version of this course hold *unsalted*
//! SHA-256 hashes (64 hex digits). We still accept them, but [`Hasher::verify`]
//! answers [`Verdict::OkLegacy`] for them, and the caller must then replace
//! the old hash with an argon2id one (it has the plain password right then,
//! which is the only moment an upgrade is possible).
//!
//! # Why the failure path is timed like the success path
//!
//! Imagine `LOGIN` did this:
//!
//! ```text
//! user unknown?  → answer BAD_CREDENTIALS at once        (takes ~0 ms)
//! user known?    → run argon2, then answer BAD_CREDENTIALS (takes ~30 ms)
//! ```
//!
//! The *text* of the two answers is the same, as the protocol demands, but a
//! stopwatch tells them apart: anyone can learn which user names exist by
//! timing a wrong password. So every path through [`Hasher::verify`] runs
//! exactly one argon2 verification:
//!
//! - an unknown user (`stored` is `None`) is checked against a *dummy* hash
//!   made when the [`Hasher`] was built, with the same parameters as real
//!   hashes, and the answer is [`Verdict::Bad`] whatever the result;
//! - a legacy SHA-256 hash costs almost nothing to check, so a legacy
//!   *failure* also runs one dummy argon2 verification. A legacy *success*
//!   does not, because the caller immediately re-hashes the password with
//!   argon2 ([`Hasher::hash_at_login`]), which costs the same;
//! - a stored value we do not understand is treated like an unknown user.
//!
//! Comparisons look at every byte instead of stopping at the first
//! difference ([`subtle::ConstantTimeEq`]), so they do not leak how much
//! of a guess was right: the argon2 output against the stored one, and
//! the legacy hex digest against the stored hex.
//!
//! What this does *not* hide: a real deployment would also worry about
//! timing differences in the database lookup and about old accounts whose
//! hashes used other argon2 parameters. Here the argon2 cost dominates by
//! orders of magnitude, which is what matters for a classroom server.
//!
//! # Where this runs, and in which order
//!
//! Hashing takes tens of milliseconds of CPU and 19 MiB of memory, so it runs
//! on a small pool of `hash-N` threads, two per core (see [`Hasher::new`]):
//! never on the database thread, where one slow login would delay
//! everyone's writes, and not on the connection threads either, which
//! would keep its stack pages and allocations for as long as their
//! clients stay connected.
//!
//! A connection thread hands its request to the pool and waits for the
//! answer, so **each connection has at most one request waiting**. The
//! requests wait in three queues, one per class:
//!
//! | class | who asks | method |
//! |---|---|---|
//! | login | `LOGIN` (and the re-hash of a legacy password at login) | [`Hasher::verify`], [`Hasher::hash_at_login`] |
//! | room | `JOIN` of a private room | [`Hasher::verify_room`] |
//! | new | `REGISTER`, `CREATE` of a private room, a legacy room upgrade | [`Hasher::hash`] |
//!
//! A free hashing thread takes the oldest login, unless
//! [`LOGIN_STREAK`] logins were taken in a row while other requests
//! waited: then it takes one of the others, room checks and new hashes in
//! turn. With a single queue (first come, first served), every attacking
//! connection that kept one `REGISTER` waiting put one more argon2 run in
//! front of every `LOGIN`: with 200 of them, a login took seconds. Now:
//!
//! - **A `LOGIN` that finds `k` logins waiting is taken after at most
//!   those `k` and `1 + k / LOGIN_STREAK` other requests** (plus the runs
//!   already under way, one per thread), however many connections flood
//!   `REGISTER`, `CREATE` or `JOIN`. Under a flood of those alone `k` is
//!   0: the login waits for a thread to finish the run it has under way,
//!   and for at most one other request, then has its own run.
//! - The other classes are never starved: at least one run in
//!   `LOGIN_STREAK + 1` goes to them while they wait, shared in turn, so a
//!   flood of `LOGIN`s (wrong passwords for random names, which the
//!   per-name failure limit cannot stop) slows registrations down but
//!   does not stop them.
//! - Room checks are a class of their own, not logins: `JOIN`s with a
//!   password come from logged-in accounts, which an attacker can make
//!   many of, so they must not take the logins' turns. And they are not
//!   behind the `REGISTER` flood either: they get every other turn that
//!   is not a login's.
//!
//! Each queue holds at most `HASH_QUEUE` (1024) requests; a caller that finds
//! its class full waits for a place, and never because another class is
//! full.
//!
//! # Memory
//!
//! Argon2 works in a buffer of `m` KiB (19 MiB at our cost). Asking the
//! crate to allocate it for every run, as `PasswordHasher` does, leaves
//! the freed buffers with the allocator: glibc raises its threshold for
//! giving large blocks straight back to the system after the first one
//! is freed, and then keeps them in its per-thread arenas. Before this
//! was changed, 60 hashes left the server at 806 MB, and 300 clients
//! registering and logging in at once took it to 2.1 GB, and it stayed
//! there. So each hashing thread owns one buffer (`Memory`), allocated
//! at its first run and reused for every run after it, through
//! [`Argon2::hash_password_into_with_memory`]; the PHC strings are built and
//! read with the crate's `password_hash` types, as its own
//! `PasswordHasher` and `PasswordVerifier` do. **The memory of hashing is
//! then at most one buffer per hashing thread**: 4 × 19 MiB on two cores,
//! held for the life of the server (a buffer grows only to verify a
//! stored hash made with a larger `m`). The same 300 clients now peak at
//! 104 MB (`docs/BENCHMARKS.md`, "Password hashing under attack").

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::oneshot;

/// Length of a legacy hash: SHA-256 is 32 bytes, written as 64 hex digits.
const LEGACY_HEX_LEN: usize = 64;

/// Runs allowed at once per core: two keeps every core busy while one run
/// waits to be scheduled, without piling up memory.
pub const MAX_CONCURRENT_PER_CORE: usize = 2;

/// Requests that may wait in each class's queue. Each connection has at
/// most one waiting (it then waits for the answer), so only a storm of
/// more requests of one class than this at the same instant ever finds its
/// queue full, and those callers wait for a place. A request is a
/// password and a reply channel: 1024 of them are a few hundred KiB. Not
/// smaller: with a queue as short as the pool, callers kept blocking and
/// waking to enqueue, and logins with `--fast-hash` ran about 7 % slower
/// (1,650 against 1,770 per second, medians of three runs of each build
/// taken in turn, 256 connectors). The bound on argon2's memory is the
/// number of hashing threads, not this.
const HASH_QUEUE: usize = 1024;

/// Logins a hashing thread takes in a row while requests of the other
/// classes wait; then one of those goes first. Four: a login under any
/// flood of the other classes waits for at most one of their runs, and
/// they keep a fifth of the pool under a flood of logins.
pub const LOGIN_STREAK: usize = 4;

/// Stack of a hashing thread. Argon2's working memory is on the heap; its
/// code needs a few KiB of stack.
const HASH_STACK: usize = 256 * 1024;

/// The answer of [`Hasher::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password matches a modern argon2 hash.
    Ok,
    /// The password matches an old unsalted SHA-256 hex hash (from the Python
    /// original): the caller must replace it now, with
    /// [`Hasher::hash_at_login`] (or [`Hasher::hash`] for a room password).
    OkLegacy,
    /// Wrong password, unknown user, or a stored value we cannot read.
    Bad,
}

/// Makes and checks password hashes; cheap to clone and share between
/// connection threads. The argon2 runs themselves happen on a small pool
/// of `hash-N` threads (see [`Hasher::new`]); the caller's thread queues a
/// request in its class and waits for the answer, holding no lock.
#[derive(Clone)]
pub struct Hasher {
    /// The pool's queues; when the last clone is dropped, the pool is
    /// closed and its threads end.
    handle: Arc<Handle>,
    /// The cost parameters of new hashes (for `Debug`).
    params: Params,
}

/// The callers' side of the pool: closes it when dropped.
struct Handle {
    /// The queues the hashing threads take from.
    pool: Arc<Pool>,
}

/// Which queue a request waits in (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// `LOGIN`: verifications, and the re-hash of a legacy password.
    Login,
    /// `JOIN` of a private room: verifications.
    Room,
    /// New hashes: `REGISTER`, `CREATE` with a password, room upgrades.
    New,
}

/// One request to the hashing threads, with where to send the answer.
enum Job {
    /// Hash a new password.
    Hash {
        /// The password.
        password: String,
        /// Where the PHC string (or the failure) goes.
        reply: oneshot::Sender<Result<String>>,
    },
    /// Check a password against what is stored (`None`: no such user).
    Verify {
        /// The password.
        password: String,
        /// The stored hash, if the user exists.
        stored: Option<String>,
        /// Where the verdict goes.
        reply: oneshot::Sender<Verdict>,
    },
}

/// The three queues and whose turn it is. Only ever touched under the
/// pool's mutex, for the time of a push or a pop: never while hashing.
#[derive(Default)]
struct Queues {
    /// [`Class::Login`] requests, oldest first.
    login: VecDeque<Job>,
    /// [`Class::Room`] requests, oldest first.
    room: VecDeque<Job>,
    /// [`Class::New`] requests, oldest first.
    new: VecDeque<Job>,
    /// Logins taken in a row while other requests waited.
    streak: usize,
    /// The next turn that is not a login's goes to a room check first
    /// (else to a new hash first).
    room_next: bool,
    /// Every [`Hasher`] is gone: the threads end.
    closed: bool,
    /// Every hashing thread is gone (they panicked): callers get an error
    /// instead of waiting for ever.
    gone: bool,
    /// Hashing threads alive.
    workers: usize,
    /// Tests only: while true, the threads take nothing.
    #[cfg(test)]
    paused: bool,
    /// Tests only: the class of every request taken, in order.
    #[cfg(test)]
    taken: Vec<Class>,
}

/// What the callers and the hashing threads share.
#[derive(Default)]
struct Pool {
    /// The queues.
    queues: Mutex<Queues>,
    /// Signalled when a request is queued (or the pool closes).
    work: Condvar,
    /// Signalled when a full queue has a place again (or the threads are
    /// gone).
    space: Condvar,
    /// Tests only: signalled when a request is queued.
    #[cfg(test)]
    queued: Condvar,
}

/// What the hashing threads share: the argon2 instance and the dummy hash.
struct Engine {
    /// The argon2id instance, with our cost parameters, that makes new
    /// hashes. (Verification takes its parameters from the stored string, so
    /// old hashes keep working if the parameters ever change.)
    argon2: Argon2<'static>,
    /// A hash of a random password with the same parameters as real hashes,
    /// so that "unknown user" costs exactly what "wrong password" costs.
    dummy_hash: String,
}

/// One hashing thread's argon2 working memory, reused for every run so that
/// the allocator never sees a 19 MiB buffer freed (see the module
/// documentation).
#[derive(Default)]
struct Memory {
    /// The blocks, 1 KiB each; as many as the largest run so far needed.
    blocks: Vec<Block>,
}

impl fmt::Debug for Hasher {
    /// Shows the cost parameters only: the dummy hash is nobody's business,
    /// and hashes never go into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("m_cost_kib", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// Builds a hasher, its dummy hash, and its hashing threads.
    ///
    /// With `fast == false` (the server) it uses argon2id's recommended
    /// defaults: 19 MiB of memory (`m=19456`), 2 passes, 1 lane. With
    /// `fast == true` it uses the smallest parameters argon2 accepts (8 KiB,
    /// 1 pass, 1 lane). That is **for tests and benchmarks only**: it makes
    /// hundreds of logins per second possible, and so would make a stolen
    /// database cheap to crack.
    ///
    /// # Why a pool of threads
    ///
    /// Each run of argon2id at the production cost takes 19 MiB while it
    /// runs. Thirty students pressing Enter in the same second, or an
    /// attacker with a script, would otherwise start that many runs at
    /// once: hundreds of megabytes, on machines with two cores that can
    /// only compute two at a time anyway. So there are
    /// [`MAX_CONCURRENT_PER_CORE`] hashing threads per core and no more runs
    /// than that at once; other callers wait in the queues for the CPU,
    /// which they would wait for anyway, and memory stays bounded: each
    /// thread keeps one working buffer for all its runs.
    ///
    /// Running argon2 on threads of its own (rather than on the caller's
    /// connection thread behind a semaphore) also keeps its stack depth
    /// and its allocations off the connection threads, which live as long
    /// as their clients: about 12 KiB less per idle client
    /// (`docs/BENCHMARKS.md`, "Memory per connection"). The database
    /// thread never hashes: one slow login must not delay everyone's
    /// writes.
    ///
    /// The threads end when the last clone of the `Hasher` is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Hash`] if argon2 rejects the parameters or cannot hash the
    /// dummy password (e.g. out of memory), or a hashing thread cannot be
    /// started.
    pub fn new(fast: bool) -> Result<Hasher> {
        Self::start(fast, false)
    }

    /// [`Hasher::new`], with the threads paused from the start if `paused`
    /// (tests only, see [`Hasher::resume`]).
    fn start(fast: bool, paused: bool) -> Result<Hasher> {
        let params = if fast {
            Params::new(Params::MIN_M_COST, 1, 1, None)
        } else {
            Params::new(
                Params::DEFAULT_M_COST,
                Params::DEFAULT_T_COST,
                Params::DEFAULT_P_COST,
                None,
            )
        }
        .map_err(|e| Error::Hash(format!("bad argon2 parameters: {e}")))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());

        // The dummy password is random too, so nobody can log in "as" the
        // dummy hash by guessing it. Its buffer becomes the first thread's.
        let dummy_password = SaltString::generate(&mut OsRng);
        let mut engine = Engine {
            argon2,
            dummy_hash: String::new(),
        };
        let mut first_memory = Memory::default();
        engine.dummy_hash = engine.hash(&mut first_memory, dummy_password.as_str())?;
        let engine = Arc::new(engine);

        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = cores * MAX_CONCURRENT_PER_CORE;
        let pool = Arc::new(Pool::default());
        {
            let mut queues = pool.lock();
            queues.workers = workers;
            #[cfg(test)]
            {
                queues.paused = paused;
            }
        }
        #[cfg(not(test))]
        let _ = paused;
        // Made before the threads: if one cannot start, dropping it closes
        // the pool and ends those already started.
        let handle = Arc::new(Handle { pool: pool.clone() });
        let mut first_memory = Some(first_memory);
        for i in 0..workers {
            let (engine, shared) = (engine.clone(), pool.clone());
            let memory = first_memory.take().unwrap_or_default();
            let spawned = thread::Builder::new()
                .name(format!("hash-{i}"))
                .stack_size(HASH_STACK)
                .spawn(move || engine.serve(&shared, memory));
            if let Err(e) = spawned {
                pool.lock().workers -= workers - i;
                return Err(Error::Hash(format!("cannot start a hashing thread: {e}")));
            }
        }
        Ok(Hasher { handle, params })
    }

    /// Hashes a **new** password (`REGISTER`, `CREATE` of a private room,
    /// the upgrade of a legacy room password) with a fresh random salt;
    /// returns an argon2id PHC string (`$argon2id$v=19$m=…`) ready to
    /// store. Waits behind logins (see the module documentation).
    ///
    /// # Errors
    ///
    /// [`Error::Hash`] if argon2 fails (in practice: cannot allocate its
    /// memory), or the hashing threads are gone.
    pub fn hash(&self, password: &str) -> Result<String> {
        self.hash_in(Class::New, password)
    }

    /// [`Hasher::hash`] for the second half of a `LOGIN` with a legacy
    /// password: the check cost nothing, this re-hash is the login's one
    /// argon2 run, so it waits in the logins' queue.
    ///
    /// # Errors
    ///
    /// As [`Hasher::hash`].
    pub fn hash_at_login(&self, password: &str) -> Result<String> {
        self.hash_in(Class::Login, password)
    }

    /// Checks a `LOGIN`'s `password` against what is stored for the user
    /// (`None` if the user does not exist). See the module documentation
    /// for why every path costs one argon2 verification. If the hashing
    /// threads are gone, the answer is [`Verdict::Bad`] (and the reason is
    /// logged).
    pub fn verify(&self, password: &str, stored: Option<&str>) -> Verdict {
        self.verify_in(Class::Login, password, stored)
    }

    /// [`Hasher::verify`] for the password of a private room (`JOIN`): the
    /// same check, in the room checks' queue, so that a flood of `JOIN`s
    /// from logged-in accounts cannot delay `LOGIN`s.
    pub fn verify_room(&self, password: &str, stored: Option<&str>) -> Verdict {
        self.verify_in(Class::Room, password, stored)
    }

    /// Queues a hash in `class` and waits for it.
    fn hash_in(&self, class: Class, password: &str) -> Result<String> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Hash {
            password: password.to_owned(),
            reply,
        };
        if !self.handle.pool.submit(class, job) {
            return Err(Error::Hash("the hashing threads are gone".into()));
        }
        answer
            .recv()
            .unwrap_or_else(|_| Err(Error::Hash("a hashing thread failed".into())))
    }

    /// Queues a verification in `class` and waits for it.
    fn verify_in(&self, class: Class, password: &str, stored: Option<&str>) -> Verdict {
        let (reply, answer) = oneshot::channel();
        let job = Job::Verify {
            password: password.to_owned(),
            stored: stored.map(str::to_owned),
            reply,
        };
        if !self.handle.pool.submit(class, job) {
            log::error!("password check impossible: the hashing threads are gone");
            return Verdict::Bad;
        }
        answer.recv().unwrap_or_else(|_| {
            log::error!("password check failed: a hashing thread failed");
            Verdict::Bad
        })
    }
}

impl Drop for Handle {
    /// The last [`Hasher`] is gone: nobody can queue a request any more,
    /// so the hashing threads end (none is waiting: each caller held a
    /// `Hasher` until it had its answer).
    fn drop(&mut self) {
        self.pool.lock().closed = true;
        self.pool.work.notify_all();
    }
}

impl Queues {
    /// The queue of `class`.
    fn queue(&mut self, class: Class) -> &mut VecDeque<Job> {
        match class {
            Class::Login => &mut self.login,
            Class::Room => &mut self.room,
            Class::New => &mut self.new,
        }
    }

    /// The next request to run and its class, by the rule of the module
    /// documentation: the oldest login, unless [`LOGIN_STREAK`] logins went
    /// in a row while others waited; then a room check or a new hash, in
    /// turn.
    fn pop(&mut self) -> Option<(Class, Job)> {
        let others_wait = !self.room.is_empty() || !self.new.is_empty();
        let class = if !self.login.is_empty() && (self.streak < LOGIN_STREAK || !others_wait) {
            self.streak = if others_wait { self.streak + 1 } else { 0 };
            Class::Login
        } else {
            self.streak = 0;
            let room = if self.new.is_empty() {
                true
            } else if self.room.is_empty() {
                false
            } else {
                self.room_next
            };
            self.room_next = !room;
            if room {
                Class::Room
            } else {
                Class::New
            }
        };
        let job = self.queue(class).pop_front()?;
        #[cfg(test)]
        self.taken.push(class);
        Some((class, job))
    }

    /// Drops every waiting request: their callers are told the threads
    /// failed (their reply channels close).
    fn clear(&mut self) {
        self.login.clear();
        self.room.clear();
        self.new.clear();
    }
}

impl Pool {
    /// The queues, locked. A thread that panicked while holding the lock
    /// left them consistent (every change is one push or pop), so a
    /// poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job` in `class`, waiting for a place if that queue is full.
    /// False if the hashing threads are gone.
    fn submit(&self, class: Class, job: Job) -> bool {
        let mut queues = self.lock();
        while queues.queue(class).len() >= HASH_QUEUE && !queues.gone {
            queues = self
                .space
                .wait(queues)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if queues.gone {
            return false;
        }
        queues.queue(class).push_back(job);
        drop(queues);
        self.work.notify_one();
        #[cfg(test)]
        self.queued.notify_all();
        true
    }

    /// The next request for a hashing thread, waiting for one; `None` once
    /// the pool is closed.
    fn take(&self) -> Option<Job> {
        let mut queues = self.lock();
        loop {
            #[cfg(test)]
            let paused = queues.paused;
            #[cfg(not(test))]
            let paused = false;
            if !paused {
                if let Some((class, job)) = queues.pop() {
                    if queues.queue(class).len() + 1 == HASH_QUEUE {
                        // It was full: its waiting callers may queue now.
                        self.space.notify_all();
                    }
                    return Some(job);
                }
            }
            if queues.closed {
                return None;
            }
            queues = self
                .work
                .wait(queues)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Held by a hashing thread while it runs: when the last one ends (they
/// only end early by panicking), the requests still waiting are dropped
/// and new ones refused, so that no caller waits for ever.
struct Alive<'a>(&'a Pool);

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        let mut queues = self.0.lock();
        queues.workers -= 1;
        if queues.workers == 0 && !queues.closed {
            log::error!("every password hashing thread is gone");
            queues.gone = true;
            queues.clear();
            drop(queues);
            self.0.space.notify_all();
        }
    }
}

impl Engine {
    /// A hashing thread: answers requests until every `Hasher` is gone,
    /// always in `memory`. A caller that stopped waiting is not an error:
    /// the answer is dropped.
    fn serve(&self, pool: &Pool, mut memory: Memory) {
        let _alive = Alive(pool);
        while let Some(job) = pool.take() {
            match job {
                Job::Hash { password, reply } => {
                    let _ = reply.send(self.hash(&mut memory, &password));
                }
                Job::Verify {
                    password,
                    stored,
                    reply,
                } => {
                    let _ = reply.send(self.verify(&mut memory, &password, stored.as_deref()));
                }
            }
        }
    }

    /// One argon2id hash of `password` with a fresh random salt, as a PHC
    /// string: what the crate's `PasswordHasher::hash_password` makes, in
    /// our buffer instead of a new one.
    fn hash(&self, memory: &mut Memory, password: &str) -> Result<String> {
        let failed = |e: argon2::password_hash::Error| Error::Hash(e.to_string());
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(failed)?;
        let params = self.argon2.params();
        let length = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = Output::init_with(length, |out| {
            memory.run(&self.argon2, password.as_bytes(), salt_bytes, out)
        })
        .map_err(failed)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(failed)?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// [`Hasher::verify`], run on a hashing thread.
    fn verify(&self, memory: &mut Memory, password: &str, stored: Option<&str>) -> Verdict {
        let Some(stored) = stored else {
            // Unknown user: pay the same price as a wrong password.
            self.dummy_verify(memory, password);
            return Verdict::Bad;
        };

        if stored.starts_with("$argon2") {
            match PasswordHash::new(stored) {
                Ok(parsed) => {
                    return match matches_phc(memory, password, &parsed) {
                        Ok(true) => Verdict::Ok,
                        Ok(false) => Verdict::Bad,
                        Err(e) => {
                            // Never log the stored value itself.
                            log::warn!("a stored password hash cannot be checked: {e}");
                            Verdict::Bad
                        }
                    };
                }
                Err(e) => {
                    log::warn!("a stored password hash is not a valid PHC string: {e}");
                }
            }
        } else if is_legacy_hex(stored) {
            if legacy_matches(password, stored) {
                // The caller re-hashes now, which costs one argon2 run.
                return Verdict::OkLegacy;
            }
            self.dummy_verify(memory, password);
            return Verdict::Bad;
        } else {
            log::warn!("a stored password hash has an unknown format");
        }

        // Unreadable stored value: behave exactly like an unknown user.
        self.dummy_verify(memory, password);
        Verdict::Bad
    }

    /// Runs one argon2 verification against the dummy hash and throws the
    /// result away: it exists only to spend the time a real check would.
    fn dummy_verify(&self, memory: &mut Memory, password: &str) {
        match PasswordHash::new(&self.dummy_hash) {
            Ok(parsed) => {
                let _ = matches_phc(memory, password, &parsed);
            }
            // Cannot happen: we made this string ourselves in `new`.
            Err(e) => log::error!("dummy password hash unreadable: {e}"),
        }
    }
}

impl Memory {
    /// Runs `argon2` in this buffer, growing it first if its parameters
    /// need more blocks than any run before.
    fn run(
        &mut self,
        argon2: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> argon2::password_hash::Result<()> {
        let needed = argon2.params().block_count();
        if self.blocks.len() < needed {
            // `try_reserve`: a stored hash with an absurd `m` is an error
            // for that check, not an abort of the server.
            self.blocks
                .try_reserve_exact(needed - self.blocks.len())
                .map_err(|_| argon2::Error::MemoryTooMuch)?;
            self.blocks.resize(needed, Block::new());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut self.blocks[..needed])?;
        Ok(())
    }
}

/// True if `password` matches the PHC string `stored`, computed with the
/// algorithm, version, parameters, salt and output length that `stored`
/// carries (not ours, so that hashes made with other parameters keep
/// working), in `memory`; compared in constant time. What the crate's
/// `PasswordVerifier::verify_password` does, in our buffer.
fn matches_phc(
    memory: &mut Memory,
    password: &str,
    stored: &PasswordHash<'_>,
) -> argon2::password_hash::Result<bool> {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(stored.algorithm)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(stored)?;
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let mut computed = [0u8; Output::MAX_LENGTH];
    let computed = &mut computed[..expected.len()];
    memory.run(
        &Argon2::new(algorithm, version, params),
        password.as_bytes(),
        salt_bytes,
        computed,
    )?;
    Ok(expected.as_bytes().ct_eq(computed).into())
}
/// True if `stored` looks like a legacy hash: exactly 64 hex digits, in
/// either case.
fn is_legacy_hex(stored: &str) -> bool {
    stored.len() == LEGACY_HEX_LEN && stored.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares the SHA-256 of `password` with a legacy hex hash, in constant
/// time and without regard to the case of the hex digits.
fn legacy_matches(password: &str, stored_hex: &str) -> bool {
    let digest = Sha256::digest(password.as_bytes());
    let computed = to_lower_hex(&digest);
    let stored = stored_hex.to_ascii_lowercase();
    computed.as_bytes().ct_eq(stored.as_bytes()).into()
}

/// Lowercase hex of `bytes`, as Python's `hexdigest()` writes it.
fn to_lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};
    use std::time::{Duration, Instant};

    /// SHA-256 of "hunter2" as Python's `hashlib.sha256(...).hexdigest()`
    /// prints it (lowercase).
    const HUNTER2_SHA256: &str = "f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7";

    /// A fast hasher for tests (the real parameters would make tests slow).
    fn hasher() -> Hasher {
        Hasher::new(true).expect("fast argon2 parameters are valid")
    }

    /// A password hashed and then verified is accepted as a modern hash.
    #[test]
    fn hash_then_verify_round_trip() {
        let h = hasher();
        let stored = h.hash("correct horse").unwrap();
        assert_eq!(h.verify("correct horse", Some(&stored)), Verdict::Ok);
    }

    /// A wrong password is refused.
    #[test]
    fn wrong_password_is_bad() {
        let h = hasher();
        let stored = h.hash("correct horse").unwrap();
        assert_eq!(h.verify("battery staple", Some(&stored)), Verdict::Bad);
        assert_eq!(h.verify("", Some(&stored)), Verdict::Bad);
    }

    /// An unknown user (nothing stored) is refused, whatever the password,
    /// even the dummy's own (which is random and never revealed).
    #[test]
    fn unknown_user_is_bad() {
        let h = hasher();
        assert_eq!(h.verify("anything", None), Verdict::Bad);
        assert_eq!(h.verify("", None), Verdict::Bad);
    }

    /// A Python-era SHA-256 hex hash matches in lower and upper case and is
    /// flagged for upgrade.
    #[test]
    fn legacy_hash_matches_in_either_case() {
        let h = hasher();
        assert_eq!(h.verify("hunter2", Some(HUNTER2_SHA256)), Verdict::OkLegacy);
        let upper = HUNTER2_SHA256.to_ascii_uppercase();
        assert_eq!(h.verify("hunter2", Some(&upper)), Verdict::OkLegacy);
    }

    /// Our hex encoding agrees with Python's `hexdigest()`.
    #[test]
    fn sha256_hex_is_pythons() {
        assert_eq!(
            to_lower_hex(&Sha256::digest(b"hunter2")),
            HUNTER2_SHA256.to_string()
        );
    }

    /// A wrong password against a legacy hash is refused.
    #[test]
    fn legacy_mismatch_is_bad() {
        let h = hasher();
        assert_eq!(h.verify("hunter3", Some(HUNTER2_SHA256)), Verdict::Bad);
    }

    /// Stored values that are neither PHC nor 64 hex digits are refused.
    #[test]
    fn garbage_stored_value_is_bad() {
        let h = hasher();
        for stored in ["", "hunter2", "$argon2id$garbage", &HUNTER2_SHA256[1..]] {
            assert_eq!(
                h.verify("hunter2", Some(stored)),
                Verdict::Bad,
                "{stored:?}"
            );
        }
    }

    /// Two hashes of one password differ, because each has its own salt, and
    /// both verify.
    #[test]
    fn salts_make_hashes_differ() {
        let h = hasher();
        let a = h.hash("same").unwrap();
        let b = h.hash("same").unwrap();
        assert_ne!(a, b);
        assert_eq!(h.verify("same", Some(&a)), Verdict::Ok);
        assert_eq!(h.verify("same", Some(&b)), Verdict::Ok);
    }

    /// The fast parameters still produce argon2id PHC strings, with the
    /// minimum cost we asked for.
    #[test]
    fn fast_params_are_argon2id_phc() {
        let stored = hasher().hash("x").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
            "{stored}"
        );
        let parsed = PasswordHash::new(&stored).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
    }

    /// A hash made with fast parameters verifies with a default-parameter
    /// hasher: the parameters come from the stored string.
    #[test]
    fn verify_reads_params_from_the_stored_string() {
        let stored = hasher().hash("pw").unwrap();
        let slow = Hasher::new(false).unwrap();
        assert_eq!(slow.verify("pw", Some(&stored)), Verdict::Ok);
        let slow_hash = slow.hash("pw").unwrap();
        assert!(slow_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }
    /// More callers at once than there are hashing threads and queue
    /// places: every one gets its own correct answer (callers beyond the
    /// queue wait for their turn rather than fail).
    #[test]
    fn the_pool_serves_more_callers_than_threads() {
        let h = hasher();
        let callers: Vec<_> = (0..32)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || {
                    let password = format!("password {i}");
                    let stored = h.hash(&password).expect("hash");
                    (
                        h.verify(&password, Some(&stored)),
                        h.verify("wrong", Some(&stored)),
                    )
                })
            })
            .collect();
        for caller in callers {
            let (right, wrong) = caller.join().expect("a caller panicked");
            assert_eq!(right, Verdict::Ok);
            assert_eq!(wrong, Verdict::Bad);
        }
    }

    /// Argon2 runs on `hash-N` threads of its own, not on the caller's.
    #[test]
    #[cfg(target_os = "linux")] // thread names, from /proc
    fn hashing_runs_on_the_pool() {
        let h = hasher();
        assert!(h.hash("x").is_ok());
        let names: Vec<String> = std::fs::read_dir("/proc/self/task")
            .expect("Linux /proc")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .collect();
        assert!(names.iter().any(|n| n.starts_with("hash-")), "{names:?}");
    }

    /// A request of no interest but its class, for the queue tests.
    fn job() -> Job {
        let (reply, _) = oneshot::channel();
        Job::Hash {
            password: String::new(),
            reply,
        }
    }

    /// Queues with `login`, `room` and `new` requests waiting, pushed in
    /// that order of classes.
    fn queues(login: usize, room: usize, new: usize) -> Queues {
        let mut q = Queues::default();
        for (class, n) in [
            (Class::Login, login),
            (Class::Room, room),
            (Class::New, new),
        ] {
            for _ in 0..n {
                q.queue(class).push_back(job());
            }
        }
        q
    }

    /// The classes of the next `n` requests taken.
    fn take(q: &mut Queues, n: usize) -> Vec<Class> {
        (0..n).map_while(|_| q.pop().map(|(c, _)| c)).collect()
    }

    /// A login that arrives behind 100 new hashes is the next one taken,
    /// and the hashes follow.
    #[test]
    fn a_login_goes_before_waiting_new_hashes() {
        let mut q = queues(0, 0, 100);
        assert_eq!(take(&mut q, 3), [Class::New; 3]);
        q.login.push_back(job());
        assert_eq!(q.pop().map(|(c, _)| c), Some(Class::Login));
        assert_eq!(take(&mut q, 200), [Class::New; 97]);
    }

    /// Under a flood of every class, logins get `LOGIN_STREAK` turns in a
    /// row, then one other; the others alternate between room checks and
    /// new hashes, so none is starved.
    #[test]
    fn logins_yield_one_turn_in_five_and_the_others_alternate() {
        use Class::{Login as L, New as N, Room as R};
        let mut q = queues(100, 100, 100);
        assert_eq!(
            take(&mut q, 15),
            [L, L, L, L, N, L, L, L, L, R, L, L, L, L, N]
        );
        // Once the logins are all served, the others alternate.
        let mut q = queues(0, 3, 3);
        assert_eq!(take(&mut q, 7), [N, R, N, R, N, R]);
    }

    /// The bound of the module documentation: a login that finds `k`
    /// logins waiting (and floods of both other classes) is taken after
    /// at most `k` logins and `1 + k / LOGIN_STREAK` other requests,
    /// whatever the pool did before it came.
    #[test]
    fn a_login_waits_for_a_bounded_number_of_others() {
        for k in [0, 1, 3, 4, 5, 17, 100] {
            for history in 0..=LOGIN_STREAK + 1 {
                // `history` turns taken before our login arrives, with
                // logins then waiting too, so the streak is anywhere.
                let mut q = queues(history, 500, 500);
                take(&mut q, history);
                q.login.clear();
                for _ in 0..k {
                    q.login.push_back(job());
                }
                q.login.push_back(job()); // ours, the last login
                let mut others = 0;
                let mut logins = 0;
                while logins <= k {
                    match q.pop().map(|(c, _)| c) {
                        Some(Class::Login) => logins += 1,
                        Some(_) => others += 1,
                        None => panic!("queues ran dry"),
                    }
                }
                assert!(
                    others <= 1 + k / LOGIN_STREAK,
                    "k {k}, history {history}: {others} others went first"
                );
            }
        }
    }

    /// A hasher whose threads take nothing until [`Hasher::resume`].
    fn paused_hasher() -> Hasher {
        Hasher::start(true, true).expect("fast argon2 parameters are valid")
    }

    impl Hasher {
        /// Lets the threads of a paused hasher work.
        fn resume(&self) {
            self.handle.pool.lock().paused = false;
            self.handle.pool.work.notify_all();
        }

        /// Waits until `n` requests of `class` are queued (at most 10 s).
        fn wait_queued(&self, class: Class, n: usize) {
            let pool = &self.handle.pool;
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut queues = pool.lock();
            while queues.queue(class).len() < n {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "{n} {class:?} requests never queued");
                queues = pool.queued.wait_timeout(queues, left).unwrap().0;
            }
        }

        /// The classes of the requests taken so far, in order.
        fn taken(&self) -> Vec<Class> {
            self.handle.pool.lock().taken.clone()
        }
    }

    /// Through the real pool: with twenty `REGISTER` hashes queued first
    /// (the threads paused), a `LOGIN` check queued after them is the
    /// first request a thread takes, and every caller gets its own answer.
    #[test]
    fn a_login_overtakes_queued_registrations_in_the_pool() {
        let h = paused_hasher();
        let registrations: Vec<_> = (0..20)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || h.hash(&format!("password {i}")))
            })
            .collect();
        h.wait_queued(Class::New, 20);
        let stored = Hasher::new(true).unwrap().hash("mine").unwrap();
        let login = {
            let h = h.clone();
            std::thread::spawn(move || h.verify("mine", Some(&stored)))
        };
        h.wait_queued(Class::Login, 1);
        h.resume();
        assert_eq!(login.join().unwrap(), Verdict::Ok);
        // Every registration answered before any check of ours is queued,
        // so that the order taken is the pool's alone.
        let hashes: Vec<String> = registrations
            .into_iter()
            .map(|r| r.join().unwrap().expect("hash"))
            .collect();
        let taken = h.taken();
        assert_eq!(taken[0], Class::Login, "{taken:?}");
        assert_eq!(taken[1..21], [Class::New; 20], "{taken:?}");
        for (i, stored) in hashes.iter().enumerate() {
            assert_eq!(
                h.verify(&format!("password {i}"), Some(stored)),
                Verdict::Ok
            );
        }
    }

    /// A room check is in its own queue: queued behind new hashes, it is
    /// taken at the second turn at the latest (they alternate), and never
    /// before a login.
    #[test]
    fn a_room_check_is_neither_a_login_nor_behind_every_hash() {
        let h = paused_hasher();
        let stored = Hasher::new(true).unwrap().hash("room").unwrap();
        let hashes: Vec<_> = (0..10)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || h.hash(&format!("p{i}")).is_ok())
            })
            .collect();
        h.wait_queued(Class::New, 10);
        let room = {
            let (h, stored) = (h.clone(), stored.clone());
            std::thread::spawn(move || h.verify_room("room", Some(&stored)))
        };
        h.wait_queued(Class::Room, 1);
        let login = {
            let h = h.clone();
            std::thread::spawn(move || h.verify("wrong", Some(&stored)))
        };
        h.wait_queued(Class::Login, 1);
        h.resume();
        assert_eq!(room.join().unwrap(), Verdict::Ok);
        assert_eq!(login.join().unwrap(), Verdict::Bad);
        assert!(hashes.into_iter().all(|t| t.join().unwrap()));
        let taken = h.taken();
        assert_eq!(taken[0], Class::Login, "{taken:?}");
        let room_turn = taken.iter().position(|c| *c == Class::Room).unwrap();
        assert!(room_turn <= 2, "{taken:?}");
    }

    /// Hashes made in a reused buffer are the crate's own: its ordinary
    /// `PasswordVerifier` accepts them (the right password only), at the
    /// production cost and several times over in one buffer.
    #[test]
    fn our_hashes_verify_with_the_crate() {
        let engine = Engine {
            argon2: Argon2::default(),
            dummy_hash: String::new(),
        };
        let mut memory = Memory::default();
        for password in ["first", "second", "third"] {
            let ours = engine.hash(&mut memory, password).unwrap();
            assert!(
                ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
                "{ours}"
            );
            let parsed = PasswordHash::new(&ours).unwrap();
            let crate_argon2 = Argon2::default();
            assert!(crate_argon2
                .verify_password(password.as_bytes(), &parsed)
                .is_ok());
            assert!(crate_argon2.verify_password(b"wrong", &parsed).is_err());
        }
    }

    /// Hashes made by the crate's ordinary `PasswordHasher`, with other
    /// algorithms, versions, costs, lanes and output lengths (a database
    /// made before this code, or by a later version of it), verify here
    /// with the parameters they carry; a wrong password does not.
    #[test]
    fn crate_hashes_with_any_parameters_verify_here() {
        let h = hasher();
        let salt = SaltString::generate(&mut OsRng);
        let cases = [
            (Algorithm::Argon2id, Version::V0x13, 19_456, 2, 1, None),
            (Algorithm::Argon2id, Version::V0x13, 64, 3, 2, Some(16)),
            (Algorithm::Argon2i, Version::V0x13, 32, 2, 1, None),
            (Algorithm::Argon2d, Version::V0x10, 16, 1, 1, Some(64)),
            (Algorithm::Argon2id, Version::V0x13, 40_000, 1, 4, None),
        ];
        for (algorithm, version, m, t, p, len) in cases {
            let params = Params::new(m, t, p, len).unwrap();
            let theirs = Argon2::new(algorithm, version, params)
                .hash_password(b"s3cret pass", &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                h.verify("s3cret pass", Some(&theirs)),
                Verdict::Ok,
                "{theirs}"
            );
            assert_eq!(
                h.verify("s3cret pas", Some(&theirs)),
                Verdict::Bad,
                "{theirs}"
            );
            assert_eq!(h.verify_room("s3cret pass", Some(&theirs)), Verdict::Ok);
        }
    }

    /// One buffer per thread: a second run reuses the first run's blocks
    /// (same address, no new allocation), a larger stored cost grows it,
    /// and a smaller one after that uses a prefix of it, correctly.
    #[test]
    fn the_buffer_is_reused_and_grows_only_when_needed() {
        let mut memory = Memory::default();
        let engine = Engine {
            argon2: Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(1024, 1, 1, None).unwrap(),
            ),
            dummy_hash: String::new(),
        };
        let first = engine.hash(&mut memory, "a").unwrap();
        let (address, blocks) = (memory.blocks.as_ptr(), memory.blocks.len());
        assert_eq!(blocks, 1024);
        let second = engine.hash(&mut memory, "b").unwrap();
        assert_eq!(
            (memory.blocks.as_ptr(), memory.blocks.len()),
            (address, blocks)
        );

        let bigger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(2048, 1, 1, None).unwrap(),
        )
        .hash_password(b"c", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        let parsed = PasswordHash::new(&bigger).unwrap();
        assert_eq!(matches_phc(&mut memory, "c", &parsed), Ok(true));
        assert_eq!(memory.blocks.len(), 2048);
        for (password, stored) in [("a", &first), ("b", &second)] {
            let parsed = PasswordHash::new(stored).unwrap();
            assert_eq!(matches_phc(&mut memory, password, &parsed), Ok(true));
            assert_eq!(matches_phc(&mut memory, "x", &parsed), Ok(false));
        }
        assert_eq!(memory.blocks.len(), 2048);
    }

    /// A legacy hash upgraded at login is hashed in the logins' queue and
    /// is a normal argon2id hash.
    #[test]
    fn hash_at_login_makes_a_normal_hash() {
        let h = hasher();
        let stored = h.hash_at_login("hunter2").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
            "{stored}"
        );
        assert_eq!(h.verify("hunter2", Some(&stored)), Verdict::Ok);
    }

    /// The threads end when the last `Hasher` is dropped.
    #[test]
    fn the_threads_end_with_the_last_hasher() {
        let h = hasher();
        let pool = h.handle.pool.clone();
        let workers = pool.lock().workers;
        assert!(workers >= MAX_CONCURRENT_PER_CORE);
        let clone = h.clone();
        drop(h);
        assert!(!pool.lock().closed);
        drop(clone);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.lock().workers > 0 {
            assert!(Instant::now() < deadline, "hashing threads still running");
            std::thread::yield_now();
        }
        assert!(pool.lock().closed);
    }
}
