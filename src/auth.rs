//! Password hashing and verification, with a login failure path that takes
//! the same time whether or not the user exists.
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
//!   argon2, which costs the same;
//! - a stored value we do not understand is treated like an unknown user.
//!
//! The legacy comparison itself uses [`subtle::ConstantTimeEq`], which looks
//! at every byte instead of stopping at the first difference, so it does not
//! leak how many leading hex digits of a guess were right.
//!
//! What this does *not* hide: a real deployment would also worry about
//! timing differences in the database lookup and about old accounts whose
//! hashes used other argon2 parameters. Here the argon2 cost dominates by
//! orders of magnitude, which is what matters for a classroom server.
//!
//! # Where this runs
//!
//! Hashing takes tens of milliseconds of CPU and 19 MiB of memory, so it runs
//! on a small pool of `hash-N` threads, two per core (see [`Hasher::new`]):
//! never on the database thread, where one slow login would delay
//! everyone's writes, and not on the connection threads either, which
//! would keep its stack pages and freed buffers for as long as their
//! clients stay connected.

use std::fmt;
use std::sync::Arc;
use std::thread;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use crossbeam_channel::{Receiver, Sender};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::oneshot;

/// Length of a legacy hash: SHA-256 is 32 bytes, written as 64 hex digits.
const LEGACY_HEX_LEN: usize = 64;

/// The answer of [`Hasher::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password matches a modern argon2 hash.
    Ok,
    /// The password matches an old unsalted SHA-256 hex hash (from the Python
    /// original): the caller must replace it with [`Hasher::hash`] now.
    OkLegacy,
    /// Wrong password, unknown user, or a stored value we cannot read.
    Bad,
}

/// Makes and checks password hashes; cheap to clone and share between
/// connection threads. The argon2 runs themselves happen on a small pool
/// of `hash-N` threads (see [`Hasher::new`]); the caller's thread sends a
/// request and waits for the answer, holding no lock.
#[derive(Clone)]
pub struct Hasher {
    /// Requests for the hashing threads, at most [`HASH_QUEUE`] waiting;
    /// callers wait for their answer, in queue order.
    jobs: Sender<Job>,
    /// The cost parameters of new hashes (for `Debug`).
    params: Params,
}

/// Runs allowed at once per core: two keeps every core busy while one run
/// waits to be scheduled, without piling up memory.
pub const MAX_CONCURRENT_PER_CORE: usize = 2;

/// Requests that may wait for a hashing thread. Each connection has at
/// most one waiting (it then waits for the answer), so only a storm of more
/// logins than this at the same instant ever finds the queue full, and
/// those callers wait to enqueue. A request is a password and a reply
/// channel: 1024 of them are a few hundred KiB. Not smaller: with a queue
/// as short as the pool, callers kept blocking and waking to enqueue, and
/// logins with `--fast-hash` ran about 7 % slower (1,650 against 1,770
/// per second, medians of three runs of each build taken in turn, 256
/// connectors). The bound on argon2's memory is the number of hashing
/// threads, not this.
const HASH_QUEUE: usize = 1024;

/// Stack of a hashing thread. Argon2's working memory is on the heap; its
/// code needs a few KiB of stack.
const HASH_STACK: usize = 256 * 1024;

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
    /// than that at once; other callers wait in the queue for the CPU, which
    /// they would wait for anyway, and memory stays bounded.
    ///
    /// Running argon2 on threads of its own (rather than on the caller's
    /// connection thread behind a semaphore) also keeps its stack depth
    /// and its freed buffers off the connection threads, which live as long
    /// as their clients: about 12 KiB less per idle client
    /// (`docs/BENCHMARKS.md`, "Memory per connection"). The database
    /// thread never hashes: one slow login must not delay everyone's writes.
    ///
    /// The threads end when the last clone of the `Hasher` is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Hash`] if argon2 rejects the parameters or cannot hash the
    /// dummy password (e.g. out of memory), or a hashing thread cannot be
    /// started.
    pub fn new(fast: bool) -> Result<Hasher> {
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
        // dummy hash by guessing it.
        let dummy_password = SaltString::generate(&mut OsRng);
        let mut engine = Engine {
            argon2,
            dummy_hash: String::new(),
        };
        engine.dummy_hash = engine.hash(dummy_password.as_str())?;
        let engine = Arc::new(engine);

        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = cores * MAX_CONCURRENT_PER_CORE;
        let (jobs, queue) = crossbeam_channel::bounded(HASH_QUEUE);
        for i in 0..workers {
            let (engine, queue) = (engine.clone(), queue.clone());
            thread::Builder::new()
                .name(format!("hash-{i}"))
                .stack_size(HASH_STACK)
                .spawn(move || engine.serve(&queue))
                .map_err(|e| Error::Hash(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Hasher { jobs, params })
    }

    /// Hashes `password` with a fresh random salt; returns an argon2id PHC
    /// string (`$argon2id$v=19$m=…`) ready to store.
    ///
    /// # Errors
    ///
    /// [`Error::Hash`] if argon2 fails (in practice: cannot allocate its
    /// memory), or the hashing threads are gone.
    pub fn hash(&self, password: &str) -> Result<String> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Hash {
            password: password.to_owned(),
            reply,
        };
        if self.jobs.send(job).is_err() {
            return Err(Error::Hash("the hashing threads are gone".into()));
        }
        answer
            .recv()
            .unwrap_or_else(|_| Err(Error::Hash("a hashing thread failed".into())))
    }

    /// Checks `password` against what is stored for the user (`None` if the
    /// user does not exist). See the module documentation for why every
    /// path costs one argon2 verification. If the hashing threads are gone,
    /// the answer is [`Verdict::Bad`] (and the reason is logged).
    pub fn verify(&self, password: &str, stored: Option<&str>) -> Verdict {
        let (reply, answer) = oneshot::channel();
        let job = Job::Verify {
            password: password.to_owned(),
            stored: stored.map(str::to_owned),
            reply,
        };
        if self.jobs.send(job).is_err() {
            log::error!("password check impossible: the hashing threads are gone");
            return Verdict::Bad;
        }
        answer.recv().unwrap_or_else(|_| {
            log::error!("password check failed: a hashing thread failed");
            Verdict::Bad
        })
    }
}

impl Engine {
    /// A hashing thread: answers requests until every `Hasher` is gone. A
    /// caller that stopped waiting (its connection closed) is not an
    /// error: the answer is dropped.
    fn serve(&self, queue: &Receiver<Job>) {
        for job in queue {
            match job {
                Job::Hash { password, reply } => {
                    let _ = reply.send(self.hash(&password));
                }
                Job::Verify {
                    password,
                    stored,
                    reply,
                } => {
                    let _ = reply.send(self.verify(&password, stored.as_deref()));
                }
            }
        }
    }

    /// One argon2id hash of `password` with a fresh random salt.
    fn hash(&self, password: &str) -> Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        let hash = self
            .argon2
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| Error::Hash(e.to_string()))?;
        Ok(hash.to_string())
    }

    /// [`Hasher::verify`], run on a hashing thread.
    fn verify(&self, password: &str, stored: Option<&str>) -> Verdict {
        let Some(stored) = stored else {
            // Unknown user: pay the same price as a wrong password.
            self.dummy_verify(password);
            return Verdict::Bad;
        };

        if stored.starts_with("$argon2") {
            match PasswordHash::new(stored) {
                Ok(parsed) => {
                    // `verify_password` reads m, t, p and the salt from the
                    // stored string, not from `self.argon2`.
                    return match self.argon2.verify_password(password.as_bytes(), &parsed) {
                        Ok(()) => Verdict::Ok,
                        Err(_) => Verdict::Bad,
                    };
                }
                Err(e) => {
                    // Never log the stored value itself.
                    log::warn!("a stored password hash is not a valid PHC string: {e}");
                }
            }
        } else if is_legacy_hex(stored) {
            if legacy_matches(password, stored) {
                // The caller re-hashes now, which costs one argon2 run.
                return Verdict::OkLegacy;
            }
            self.dummy_verify(password);
            return Verdict::Bad;
        } else {
            log::warn!("a stored password hash has an unknown format");
        }

        // Unreadable stored value: behave exactly like an unknown user.
        self.dummy_verify(password);
        Verdict::Bad
    }

    /// Runs one argon2 verification against the dummy hash and throws the
    /// result away: it exists only to spend the time a real check would.
    fn dummy_verify(&self, password: &str) {
        match PasswordHash::new(&self.dummy_hash) {
            Ok(parsed) => {
                let _ = self.argon2.verify_password(password.as_bytes(), &parsed);
            }
            // Cannot happen: we made this string ourselves in `new`.
            Err(e) => log::error!("dummy password hash unreadable: {e}"),
        }
    }
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
}
