//! The Redis bus: several nodes share their rooms through one Redis.
//!
//! # Three threads, each with its own connection
//!
//! ```text
//!  conn threads ──Job──▶ bus-pub ──EVALSHA (pipelined)──▶ ┌───────┐
//!                                                          │ Redis │
//!  hub ◀──Deliver── bus-sub ◀──chat:events, chat:node:ME── │       │
//!                  bus-beat ──alive key, reaper──────────▶ └───────┘
//! ```
//!
//! - **bus-pub** owns the connection that publishes. Connection threads
//!   never talk to Redis themselves (no socket I/O on their path, no lock
//!   held across it): they queue a [`Job`] and go on. The thread takes
//!   every job waiting and sends them as one pipeline, one round trip for
//!   the lot, like the database thread's group commit.
//! - **bus-sub** owns the subscription and applies what it brings, in
//!   order, through [`Deliver`]. This is where a node learns what every
//!   node (itself included) said.
//! - **bus-beat** refreshes this node's `alive` key five times per
//!   `--node-ttl`, and reaps nodes whose key has expired.
//!
//! # One order: a script per event
//!
//! Each event is published by a Lua script that numbers it (`INCR
//! chat:ev`), updates the bookkeeping (a room's seats, its message
//! counter) and `PUBLISH`es, all in one step: Redis runs one script at a
//! time, so the number, the bookkeeping and the place in the channel agree.
//! A message's history number comes from the room's own counter in the same
//! step, so history stored by any node sorts in the order everyone saw.
//!
//! # Presence, and a node that dies
//!
//! `chat:presence` maps each online user to `node/conn`. A login replaces
//! the entry and, in the same script, tells the node holding the older
//! session to close it. Each node's `chat:alive:NODE` key lives for
//! `--node-ttl` (10 s by default) unless refreshed: a node killed with
//! `kill -9` stops refreshing, and within 1.2 × `--node-ttl` another
//! node's reaper finds the key gone and removes the dead node's seats and presence in
//! one script, which publishes `NodeGone`: every node shows the dead
//! node's members as `LEFT … quit`.
//!
//! # Redis going away
//!
//! While Redis is unreachable, jobs fail at once (events are dropped and
//! counted, a DM for another node is stored instead), the node's own
//! clients go on chatting among themselves, and each thread reconnects,
//! at most once per [`RETRY`]. When the subscription is back, the node
//! takes a snapshot of who sits where, announces its own members again
//! (quietly: no `JOINED` line) and its users' presence, and carries on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::{Client, Connection, Script, Value};

use super::{
    Announcement, Bus, BusError, BusHealth, Deliver, Event, RemoteDm, Seat, Snapshot, Step,
};
use crate::doorbell::{self, Receiver, Sender};
use crate::error::{Error, Result};
use crate::oneshot;

/// Beats per `--node-ttl`: a node is declared gone after missing this
/// many in a row, and found gone at most one beat later.
const BEATS_PER_TTL: u32 = 5;

/// The longest a thread waits before trying Redis again.
pub const RETRY: Duration = Duration::from_secs(1);

/// How long connecting, and each command, may take.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Jobs that may wait for bus-pub; beyond, publishing fails (the caller
/// gets an error instead of the queue eating memory).
const QUEUE: usize = 16_384;

/// Jobs sent in one pipeline at most.
const MAX_PIPELINE: usize = 512;

/// Stack of the bus threads: a pipeline and a JSON text or two.
const STACK: usize = 256 * 1024;

/// The channel every node subscribes to for room events.
const EVENTS: &str = "chat:events";

/// Publishes a message: numbers it, gives it the room's next history
/// number, publishes `EV SEQ JSON`.
const SCRIPT_MSG: &str = r"
local ev = redis.call('INCR', KEYS[1])
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', 'chat:events', ev .. ' ' .. seq .. ' ' .. ARGV[1])
return seq";

/// Publishes a `Joined`: the seat goes into the room's set, scored by its
/// event number (joining order), unless it is there already.
const SCRIPT_JOINED: &str = r"
local ev = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], 'NX', ev, ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('PUBLISH', 'chat:events', ev .. ' 0 ' .. ARGV[3])
return ev";

/// Publishes a `Left`: the seat leaves the room's set.
const SCRIPT_LEFT: &str = r"
local ev = redis.call('INCR', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', 'chat:events', ev .. ' 0 ' .. ARGV[2])
return ev";

/// Publishes a room's `CLOSE`: its seats go with it, so that a room made
/// later under the same name starts empty.
const SCRIPT_CLOSE: &str = r"
local ev = redis.call('INCR', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('PUBLISH', 'chat:events', ev .. ' 0 ' .. ARGV[2])
return ev";

/// Publishes any other event.
const SCRIPT_OTHER: &str = r"
local ev = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', 'chat:events', ev .. ' 0 ' .. ARGV[1])
return ev";

/// A login: `ARGV[1]` (a user key) is now at node `ARGV[2]`, connection
/// `ARGV[3]`; a session on another node is told to close.
const SCRIPT_CLAIM: &str = r"
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '/' .. ARGV[3])
if old then
  local sep = string.find(old, '/', 1, true)
  if sep then
    local node = string.sub(old, 1, sep - 1)
    local conn = string.sub(old, sep + 1)
    if node ~= ARGV[2] then
      redis.call('PUBLISH', 'chat:node:' .. node,
        cjson.encode({t = 'takeover', user = ARGV[1], conn = tonumber(conn)}))
    end
  end
end
return 1";

/// A logout: the entry goes, unless a newer login replaced it.
const SCRIPT_RELEASE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1";

/// A DM for user `ARGV[1]`: published to the node holding its session if
/// that node is alive; -1 if none is, else how many received it (0 or 1).
const SCRIPT_DM: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return -1 end
local sep = string.find(v, '/', 1, true)
if not sep then return -1 end
local node = string.sub(v, 1, sep - 1)
if redis.call('EXISTS', 'chat:alive:' .. node) == 0 then return -1 end
return redis.call('PUBLISH', 'chat:node:' .. node, ARGV[2])";

/// A node's beat: its key lives `ARGV[2]` ms more, and it is listed.
const SCRIPT_BEAT: &str = r"
redis.call('SET', 'chat:alive:' .. ARGV[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[1], ARGV[1])
return 1";

/// Reaps node `ARGV[1]` if its key has expired and nobody reaped it yet:
/// its seats and presence go, and `NodeGone` (`ARGV[2]`) is published.
const SCRIPT_REAP: &str = r"
if redis.call('EXISTS', 'chat:alive:' .. ARGV[1]) == 1 then return 0 end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local prefix = ARGV[1] .. '/'
for _, room in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local key = 'chat:seats:' .. room
  for _, seat in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.sub(seat, 1, #prefix) == prefix then redis.call('ZREM', key, seat) end
  end
end
local p = redis.call('HGETALL', KEYS[3])
for i = 1, #p, 2 do
  if string.sub(p[i + 1], 1, #prefix) == prefix then redis.call('HDEL', KEYS[3], p[i]) end
end
local ev = redis.call('INCR', KEYS[4])
redis.call('PUBLISH', 'chat:events', ev .. ' 0 ' .. ARGV[2])
return 1";

/// Who sits where, and the event number it is true at.
const SCRIPT_SNAPSHOT: &str = r"
local out = {ev = tonumber(redis.call('GET', 'chat:ev') or '0'), rooms = {}}
for _, room in ipairs(redis.call('SMEMBERS', 'chat:rooms')) do
  out.rooms[#out.rooms + 1] = {room, redis.call('ZRANGE', 'chat:seats:' .. room, 0, -1)}
end
return cjson.encode(out)";

/// Raises a room's message counter to at least `ARGV[1]` (after Redis came
/// back empty, so that new messages do not reuse stored numbers).
const SCRIPT_SEED: &str = r"
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1";

/// The Redis key of a room's seats.
fn seats_key(room: &str) -> String {
    format!("chat:seats:{}", room.to_ascii_lowercase())
}

/// The Redis key of a room's message counter.
fn seq_key(room: &str) -> String {
    format!("chat:seq:{}", room.to_ascii_lowercase())
}

/// Something for bus-pub to send.
enum Job {
    /// A room event; nobody waits.
    Event(Event),
    /// A login; the caller waits, except when a node announces its
    /// sessions again.
    Claim {
        user: String,
        conn: u64,
        reply: Option<oneshot::Sender<std::result::Result<(), BusError>>>,
    },
    /// A DM was stored for `user`: tell the node holding the session.
    Stored { user: String },
    /// How many users are online on all nodes.
    Count {
        reply: oneshot::Sender<std::result::Result<usize, BusError>>,
    },
    /// A logout.
    Release { user: String, conn: u64 },
    /// A DM for another node; the caller waits for where it went.
    Dm {
        dm: RemoteDm,
        reply: oneshot::Sender<std::result::Result<bool, BusError>>,
    },
    /// The server stops: bus-pub ends once the jobs before this are sent.
    Stop,
}

/// Takes `mutex` even if a thread panicked holding it: everything kept
/// under these locks is valid at every step.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the three threads share.
#[derive(Debug)]
struct Shared {
    /// This node's name.
    node: String,
    /// The Redis URL without its password, for logs and the status page.
    target: String,
    /// How long its `alive` key lives without a beat (`--node-ttl`).
    ttl: Duration,
    /// Set when the server stops.
    stopping: AtomicBool,
    /// The last error of any thread, cleared by the next success.
    last_error: Mutex<Option<String>>,
    /// `last_error` is `None`, read without the lock.
    up: AtomicBool,
    /// Events that could not be published (Redis unreachable).
    dropped: AtomicU64,
    /// Whether the subscription has been made (and the snapshot applied)
    /// at least once, with the condition [`Bus::wait_ready`] waits on.
    ready: (Mutex<bool>, Condvar),
}

impl Shared {
    /// Notes a failure.
    fn failed(&self, what: &str, error: &redis::RedisError) {
        let text = format!("{what}: {error}");
        let mut last = lock(&self.last_error);
        if last.as_deref() != Some(text.as_str()) {
            log::warn!("bus: {text}");
        }
        *last = Some(text);
        self.up.store(false, Ordering::Relaxed);
    }

    /// Notes a success.
    fn worked(&self) {
        let mut last = lock(&self.last_error);
        self.up.store(true, Ordering::Relaxed);
        if last.take().is_some() {
            log::info!("bus: redis {} reachable again", self.target);
        }
    }
}

/// The bus of a node sharing its rooms through Redis.
#[derive(Debug)]
pub struct RedisBus {
    /// What the threads share.
    shared: Arc<Shared>,
    /// The Redis client (its URL, password included), to reach Redis
    /// once more when the server stops.
    client: Client,
    /// bus-pub's queue.
    jobs: Sender<Job>,
    /// The threads, joined by [`Bus::stop`].
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl RedisBus {
    /// Starts the three threads for node `node` on the Redis at `url`.
    /// They reach Redis on their own (and again after any failure): a
    /// node starts even while Redis is down, serving its own clients.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a URL the client library refuses;
    /// [`Error::Spawn`] if a thread cannot start.
    pub fn start(
        url: &str,
        node: String,
        ttl: Duration,
        deliver: Arc<OnceLock<Arc<dyn Deliver>>>,
    ) -> Result<RedisBus> {
        let client = Client::open(url).map_err(|e| {
            Error::Config(format!("--bus {}: {e}", crate::db::without_password(url)))
        })?;
        let shared = Arc::new(Shared {
            node,
            target: crate::db::without_password(url),
            ttl,
            stopping: AtomicBool::new(false),
            last_error: Mutex::new(None),
            up: AtomicBool::new(true),
            dropped: AtomicU64::new(0),
            ready: (Mutex::new(false), Condvar::new()),
        });
        let (jobs, queue) = doorbell::bounded(QUEUE);
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .stack_size(STACK)
                .spawn(body)
                .map_err(Error::Spawn)
        };
        let client_for_stop = client.clone();
        let mut threads = Vec::new();
        {
            let (client, shared) = (client.clone(), shared.clone());
            threads.push(spawn(
                "bus-pub",
                Box::new(move || publisher(&client, &shared, &queue)),
            )?);
        }
        {
            let (client, shared, jobs) = (client.clone(), shared.clone(), jobs.clone());
            threads.push(spawn(
                "bus-sub",
                Box::new(move || subscriber(&client, &shared, &deliver, &jobs)),
            )?);
        }
        {
            let shared = shared.clone();
            threads.push(spawn("bus-beat", Box::new(move || beat(&client, &shared)))?);
        }
        log::info!("bus: node {} on redis {}", shared.node, shared.target);
        Ok(RedisBus {
            shared,
            client: client_for_stop,
            jobs,
            threads: Mutex::new(threads),
        })
    }

    /// Queues a job for bus-pub without waiting.
    fn queue(&self, job: Job) -> std::result::Result<(), BusError> {
        self.jobs
            .try_send(job)
            .map_err(|_| BusError("the publishing queue is full".into()))
    }
}

impl Bus for RedisBus {
    fn node(&self) -> &str {
        &self.shared.node
    }

    fn shared(&self) -> bool {
        true
    }

    fn publish(&self, event: Event) -> std::result::Result<(), BusError> {
        self.queue(Job::Event(event))
    }

    fn claim_presence(&self, user_key: &str, conn: u64) -> std::result::Result<(), BusError> {
        let (reply, answer) = oneshot::channel();
        self.queue(Job::Claim {
            user: user_key.to_owned(),
            conn,
            reply: Some(reply),
        })?;
        answer
            .recv_timeout(IO_TIMEOUT * 2)
            .unwrap_or_else(|_| Err(BusError("no answer from the publishing thread".into())))
    }

    fn sessions(&self) -> Option<usize> {
        let (reply, answer) = oneshot::channel();
        self.queue(Job::Count { reply }).ok()?;
        answer.recv_timeout(IO_TIMEOUT * 2).ok()?.ok()
    }

    fn up(&self) -> bool {
        self.shared.up.load(Ordering::Relaxed)
    }

    fn stored_dm(&self, user_key: &str) {
        let job = Job::Stored {
            user: user_key.to_owned(),
        };
        if let Err(e) = self.queue(job) {
            log::warn!("{e}: {user_key} gets the stored DM at the next login");
        }
    }

    fn release_presence(&self, user_key: &str, conn: u64) {
        let job = Job::Release {
            user: user_key.to_owned(),
            conn,
        };
        if let Err(e) = self.queue(job) {
            log::warn!("{e}: the logout of {user_key} is not announced");
        }
    }

    fn send_dm(&self, dm: &RemoteDm) -> std::result::Result<bool, BusError> {
        let (reply, answer) = oneshot::channel();
        self.queue(Job::Dm {
            dm: dm.clone(),
            reply,
        })?;
        answer
            .recv_timeout(IO_TIMEOUT * 2)
            .unwrap_or_else(|_| Err(BusError("no answer from the publishing thread".into())))
    }

    fn health(&self) -> BusHealth {
        let last_error = lock(&self.shared.last_error).clone();
        BusHealth {
            kind: "redis",
            target: self.shared.target.clone(),
            ok: last_error.is_none(),
            last_error,
            dropped: self.shared.dropped.load(Ordering::Relaxed),
        }
    }

    fn wait_ready(&self, timeout: Duration) -> bool {
        let (ready, changed) = &self.shared.ready;
        let guard = lock(ready);
        let (guard, _) = changed
            .wait_timeout_while(guard, timeout, |ready| !*ready)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard
    }

    fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let threads = std::mem::take(&mut *lock(&self.threads));
        // bus-pub sends what was queued before, then ends.
        let _ = self.jobs.send(Job::Stop);
        for thread in threads {
            let _ = thread.join();
        }
        // Tell the others now rather than after `--node-ttl`.
        if let Ok(mut conn) = connect_to(&self.client) {
            let _: redis::RedisResult<()> = redis::cmd("DEL")
                .arg(format!("chat:alive:{}", self.shared.node))
                .query(&mut conn);
            let gone = Event::NodeGone {
                node: self.shared.node.clone(),
            };
            let _: redis::RedisResult<i64> = Script::new(SCRIPT_REAP)
                .key("chat:nodes")
                .key("chat:rooms")
                .key("chat:presence")
                .key("chat:ev")
                .arg(&self.shared.node)
                .arg(gone.to_json())
                .invoke(&mut conn);
        }
    }
}

/// A connection with [`IO_TIMEOUT`] on connecting, reading and writing.
fn connect_to(client: &Client) -> redis::RedisResult<Connection> {
    let conn = client.get_connection_with_timeout(IO_TIMEOUT)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
}

/// bus-pub: sends the queued jobs, a pipeline at a time.
fn publisher(client: &Client, shared: &Shared, queue: &Receiver<Job>) {
    let mut conn: Option<Connection> = None;
    let mut next_try = Instant::now();
    let mut stop = false;
    while !stop {
        let Ok(first) = queue.recv() else { break };
        let mut jobs = vec![first];
        while jobs.len() < MAX_PIPELINE {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if let Some(at) = jobs.iter().position(|j| matches!(j, Job::Stop)) {
            jobs.truncate(at);
            stop = true;
        }
        if jobs.is_empty() {
            continue;
        }
        if conn.is_none() && Instant::now() >= next_try {
            match connect_to(client) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    shared.failed("connecting to publish", &e);
                    next_try = Instant::now() + RETRY;
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            fail(shared, jobs, "redis is unreachable");
            continue;
        };
        let mut sent = send(c, shared, &jobs);
        if sent
            .as_ref()
            .is_err_and(redis::RedisError::is_connection_dropped)
        {
            // The connection died while idle (Redis restarted meanwhile):
            // nothing of the pipeline ran. Once more on a new one.
            sent = connect_to(client).and_then(|mut fresh| {
                let results = send(&mut fresh, shared, &jobs);
                conn = Some(fresh);
                results
            });
        }
        match sent {
            Ok(results) => {
                shared.worked();
                answer(jobs, results);
            }
            Err(e) => {
                shared.failed("publishing", &e);
                conn = None;
                next_try = Instant::now() + RETRY;
                fail(shared, jobs, "redis is unreachable");
            }
        }
    }
}

/// Sends `jobs` as one pipeline of scripts; one result per job.
fn send(conn: &mut Connection, shared: &Shared, jobs: &[Job]) -> redis::RedisResult<Vec<Value>> {
    let mut pipe = redis::pipe();
    for job in jobs {
        let command = match job {
            Job::Event(event) => event_script(event),
            Job::Claim { user, conn, .. } => eval(
                SCRIPT_CLAIM,
                &["chat:presence"],
                &[user, &shared.node, &conn.to_string()],
            ),
            Job::Release { user, conn } => eval(
                SCRIPT_RELEASE,
                &["chat:presence"],
                &[user, &format!("{}/{conn}", shared.node)],
            ),
            Job::Dm { dm, .. } => eval(SCRIPT_DM, &["chat:presence"], &[&dm.to, &dm.to_json()]),
            Job::Count { .. } => {
                let mut cmd = redis::cmd("HLEN");
                cmd.arg("chat:presence");
                cmd
            }
            Job::Stored { user } => {
                let note = serde_json::json!({"t": "stored", "to": user}).to_string();
                eval(SCRIPT_DM, &["chat:presence"], &[user, &note])
            }
            Job::Stop => continue,
        };
        pipe.add_command(command);
    }
    pipe.query(conn)
}

/// `EVAL script keys args`. EVAL rather than EVALSHA: a pipeline cannot
/// retry a `NOSCRIPT` after Redis restarted, and Redis caches the compiled
/// script by its text anyway.
fn eval(script: &str, keys: &[&str], args: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len()).arg(keys).arg(args);
    cmd
}

/// The script call that publishes `event`.
fn event_script(event: &Event) -> redis::Cmd {
    let json = event.to_json();
    match event {
        Event::Msg { room, .. } => eval(SCRIPT_MSG, &["chat:ev", &seq_key(room)], &[&json]),
        Event::Joined { room, seat, .. } => eval(
            SCRIPT_JOINED,
            &["chat:ev", &seats_key(room), "chat:rooms"],
            &[&seat.key(), &room.to_ascii_lowercase(), &json],
        ),
        Event::Left { room, seat, .. } => eval(
            SCRIPT_LEFT,
            &["chat:ev", &seats_key(room)],
            &[&seat.key(), &json],
        ),
        Event::Moderated {
            step: Step::Close { room, .. },
            ..
        } => eval(
            SCRIPT_CLOSE,
            &["chat:ev", &seats_key(room), "chat:rooms"],
            &[&room.to_ascii_lowercase(), &json],
        ),
        Event::RoomCreated { .. } | Event::NodeGone { .. } | Event::Moderated { .. } => {
            eval(SCRIPT_OTHER, &["chat:ev"], &[&json])
        }
    }
}

/// Answers the jobs that wait, from their results.
fn answer(jobs: Vec<Job>, results: Vec<Value>) {
    for (job, result) in jobs.into_iter().zip(results) {
        match job {
            Job::Dm { reply, .. } => {
                let received = match result {
                    Value::Int(n) => n,
                    _ => -1,
                };
                let _ = reply.send(Ok(received > 0));
            }
            Job::Claim {
                reply: Some(reply), ..
            } => {
                let _ = reply.send(Ok(()));
            }
            Job::Count { reply } => {
                let count = match result {
                    Value::Int(n) => usize::try_from(n).unwrap_or(0),
                    _ => 0,
                };
                let _ = reply.send(Ok(count));
            }
            _ => {}
        }
    }
}

/// Fails jobs that could not be sent: a DM's sender stores it instead;
/// events and presence are lost, and counted.
fn fail(shared: &Shared, jobs: Vec<Job>, why: &str) {
    for job in jobs {
        match job {
            Job::Dm { reply, .. } => {
                let _ = reply.send(Err(BusError(why.into())));
            }
            Job::Claim {
                reply: Some(reply), ..
            } => {
                let _ = reply.send(Err(BusError(why.into())));
            }
            Job::Count { reply } => {
                let _ = reply.send(Err(BusError(why.into())));
            }
            Job::Event(_)
            | Job::Claim { reply: None, .. }
            | Job::Release { .. }
            | Job::Stored { .. }
            | Job::Stop => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// bus-sub: subscribes, takes the snapshot, announces this node again,
/// then applies what comes, in order; starts over after any failure.
fn subscriber(
    client: &Client,
    shared: &Shared,
    deliver: &OnceLock<Arc<dyn Deliver>>,
    jobs: &Sender<Job>,
) {
    let started = Instant::now();
    let deliver = loop {
        if let Some(d) = deliver.get() {
            break d.clone();
        }
        if shared.stopping.load(Ordering::SeqCst) || started.elapsed() > Duration::from_secs(60) {
            return;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    };
    while !shared.stopping.load(Ordering::SeqCst) {
        if let Err(e) = subscribe_and_serve(client, shared, deliver.as_ref(), jobs) {
            shared.failed("subscription", &e);
            let until = Instant::now() + RETRY;
            while Instant::now() < until && !shared.stopping.load(Ordering::SeqCst) {
                std::thread::park_timeout(Duration::from_millis(100));
            }
        }
    }
}

/// One life of the subscription: until Redis fails or the server stops.
fn subscribe_and_serve(
    client: &Client,
    shared: &Shared,
    deliver: &dyn Deliver,
    jobs: &Sender<Job>,
) -> redis::RedisResult<()> {
    let mut sub = connect_to(client)?;
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe(EVENTS)?;
    pubsub.subscribe(format!("chat:node:{}", shared.node))?;
    // Subscribed first, then the snapshot: everything after the snapshot
    // comes through the subscription, and what came in between is skipped
    // by its number.
    let mut conn = connect_to(client)?;
    let Announcement {
        seats,
        sessions,
        seqs,
    } = deliver.announcement();
    for (room, last) in seqs {
        let _: i64 = Script::new(SCRIPT_SEED)
            .key(seq_key(&room))
            .arg(last)
            .invoke(&mut conn)?;
    }
    // Alive now, not at the next beat: a Redis that came back empty must
    // route DMs to this node as soon as its users are announced.
    beat_alive(&mut conn, shared)?;
    let text: String = Script::new(SCRIPT_SNAPSHOT).invoke(&mut conn)?;
    let snapshot = parse_snapshot(&text);
    let seen = snapshot.ev;
    for stale in deliver.resync(snapshot) {
        let _ = jobs.try_send(Job::Event(stale));
    }
    queue_announcement(jobs, seats, sessions);
    shared.worked();
    *lock(&shared.ready.0) = true;
    shared.ready.1.notify_all();
    log::info!("bus: node {} subscribed (event {seen})", shared.node);
    pubsub.set_read_timeout(Some(Duration::from_millis(500)))?;
    while !shared.stopping.load(Ordering::SeqCst) {
        let message = match pubsub.get_message() {
            Ok(m) => m,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e),
        };
        let payload: String = match message.get_payload() {
            Ok(p) => p,
            Err(_) => continue,
        };
        if message.get_channel_name() == EVENTS {
            let mut parts = payload.splitn(3, ' ');
            let (Some(ev), Some(seq), Some(json)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let ev: u64 = ev.parse().unwrap_or(0);
            let Some(event) = Event::from_json(json, seq.parse().unwrap_or(0)) else {
                log::warn!("bus: an event this node cannot read: {json}");
                continue;
            };
            if event.is_membership() && ev <= seen {
                continue;
            }
            if matches!(&event, Event::NodeGone { node } if *node == shared.node) {
                // Declared gone while alive (its beats came late: the
                // machine was overloaded, or the process stopped for a
                // while): the others took its members out. Seat them, and
                // claim its users, again.
                log::warn!(
                    "bus: this node was declared gone (its beats came late); announcing it again"
                );
                announce(deliver, jobs);
                continue;
            }
            deliver.apply(event);
        } else {
            direct(deliver, &payload);
        }
    }
    Ok(())
}

/// Queues this node's announcement: its members' seats and its users'
/// sessions, for every node (see [`Deliver::announcement`]).
fn announce(deliver: &dyn Deliver, jobs: &Sender<Job>) {
    let Announcement {
        seats, sessions, ..
    } = deliver.announcement();
    queue_announcement(jobs, seats, sessions);
}

/// Queues `seats` (quiet `Joined` events) and `sessions` (claims nobody
/// waits for) for bus-pub.
fn queue_announcement(jobs: &Sender<Job>, seats: Vec<Event>, sessions: Vec<(String, u64)>) {
    for event in seats {
        let _ = jobs.try_send(Job::Event(event));
    }
    for (user, conn) in sessions {
        let _ = jobs.try_send(Job::Claim {
            user,
            conn,
            reply: None,
        });
    }
}

/// A message on this node's own channel: a takeover or a DM.
fn direct(deliver: &dyn Deliver, payload: &str) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(payload) else {
        return;
    };
    match value["t"].as_str() {
        Some("takeover") => {
            if let (Some(user), Some(conn)) = (value["user"].as_str(), value["conn"].as_u64()) {
                deliver.take_over(user, conn);
            }
        }
        Some("dm") => {
            if let Some(dm) = RemoteDm::from_json(&value) {
                deliver.deliver_dm(dm);
            }
        }
        Some("stored") => {
            if let Some(user) = value["to"].as_str() {
                deliver.hand_over(user);
            }
        }
        _ => log::warn!("bus: a direct message this node cannot read: {payload}"),
    }
}

/// The snapshot script's JSON; an empty snapshot if it cannot be read.
fn parse_snapshot(text: &str) -> Snapshot {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Snapshot::default();
    };
    let ev = value["ev"].as_u64().unwrap_or(0);
    let rooms = value["rooms"]
        .as_array()
        .map(|rooms| {
            rooms
                .iter()
                .filter_map(|pair| {
                    let room = pair[0].as_str()?.to_owned();
                    let seats = pair[1]
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .filter_map(|k| k.as_str().and_then(Seat::from_key))
                                .collect()
                        })
                        .unwrap_or_default();
                    Some((room, seats))
                })
                .collect()
        })
        .unwrap_or_default();
    Snapshot { ev, rooms }
}

/// bus-beat: this node's `alive` key, and the reaping of dead nodes.
fn beat(client: &Client, shared: &Shared) {
    let mut conn: Option<Connection> = None;
    while !shared.stopping.load(Ordering::SeqCst) {
        if conn.is_none() {
            conn = connect_to(client)
                .map_err(|e| shared.failed("connecting to beat", &e))
                .ok();
        }
        if let Some(c) = conn.as_mut() {
            if let Err(e) = beat_once(c, shared) {
                shared.failed("beating", &e);
                conn = None;
            }
        }
        let until = Instant::now() + shared.ttl / BEATS_PER_TTL;
        while Instant::now() < until && !shared.stopping.load(Ordering::SeqCst) {
            std::thread::park_timeout(Duration::from_millis(100));
        }
    }
}

/// Refreshes this node's `alive` key and lists it in `chat:nodes`.
fn beat_alive(conn: &mut Connection, shared: &Shared) -> redis::RedisResult<()> {
    let ttl = u64::try_from(shared.ttl.as_millis()).unwrap_or(u64::MAX);
    let _: i64 = Script::new(SCRIPT_BEAT)
        .key("chat:nodes")
        .arg(&shared.node)
        .arg(ttl)
        .invoke(conn)?;
    Ok(())
}

/// One beat: refresh our key, reap the nodes whose key has expired.
fn beat_once(conn: &mut Connection, shared: &Shared) -> redis::RedisResult<()> {
    beat_alive(conn, shared)?;
    let nodes: Vec<String> = redis::cmd("SMEMBERS").arg("chat:nodes").query(conn)?;
    for node in nodes.into_iter().filter(|n| *n != shared.node) {
        let gone = Event::NodeGone { node: node.clone() };
        let reaped: i64 = Script::new(SCRIPT_REAP)
            .key("chat:nodes")
            .key("chat:rooms")
            .key("chat:presence")
            .key("chat:ev")
            .arg(&node)
            .arg(gone.to_json())
            .invoke(conn)?;
        if reaped == 1 {
            log::warn!("bus: node {node} stopped beating; its members have left");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_read_whatever_cjson_makes_of_empty_tables() {
        let s =
            parse_snapshot(r#"{"ev":12,"rooms":[["geral",["n1/3/Ana","n2/9/Bia"]],["vazia",{}]]}"#);
        assert_eq!(s.ev, 12);
        assert_eq!(s.rooms.len(), 2);
        assert_eq!(s.rooms[0].1.len(), 2);
        assert_eq!(s.rooms[0].1[1].user, "Bia");
        assert!(s.rooms[1].1.is_empty());
        let empty = parse_snapshot(r#"{"ev":0,"rooms":{}}"#);
        assert_eq!(empty, Snapshot::default());
    }
}
