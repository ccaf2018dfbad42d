//! The hub: who is online, which rooms exist, who is in each room, and the
//! last messages of each room. Every broadcast happens here.
//!
//! # Locks, and why these
//!
//! All locks are `std::sync` locks held for short, purely in-memory steps:
//! map updates and `try_send`s, which never block. Nothing here writes to a
//! socket, waits for the database or hashes a password. The locks are:
//!
//! | lock | guards | taken by |
//! |---|---|---|
//! | `users` (Mutex) | user name → online session | LOGIN, DM, disconnect, SUSPEND |
//! | `suspended` (Mutex) | user name → end of a suspension made since start | SUSPEND, UNSUSPEND, LOGIN (inside `users`) |
//! | `rooms` (RwLock) | room name → room | CREATE (write); JOIN, ROOMS (read) |
//! | `conns` (Mutex) | every live connection | connect, disconnect, shutdown |
//! | `Client::room` (Mutex) | one client's membership | that client, a takeover |
//! | `Room::state` (Mutex) | one room's members, history, sequence, topic, bans | everything in that room |
//! | `Room::password_hash` (RwLock) | a private room's hash | JOIN (copy it out), a legacy upgrade |
//! | `Client::dm_gate` (Mutex) | one client's "closing" flag against a DM being queued | `DM` to that client, closing it |
//! | `unseated` (Mutex) | seats of rooms this node did not know at its last snapshot | a resync (all along), `add_room` |
//!
//! **Order.** When two are held at once it is always `Client::room` first,
//! then `Room::state`; no code holds two rooms' states or a map lock
//! together with a room state, and the password lock is never held with
//! any other. `suspended` is only ever taken inside `users`. `unseated` is
//! taken before the others (a resync holds it while it visits the map and
//! each room's state), never inside them. `Client::dm_gate` is a leaf: nothing is locked inside it, so
//! it may be taken under any of the others (a broadcast that closes a slow
//! consumer takes it under a room's lock). A fixed order means no deadlock.
//!
//! **One order per room.** A `SAY` formats its `MSG` line and `try_send`s it
//! to every member *while holding the room's lock*. Two members saying
//! something at once therefore reach every outbox in the same order, and
//! each writer sends its outbox in order: all members see the same sequence.
//! The lock is per room, so rooms do not slow each other down; the `SAY`
//! path takes no global lock at all.
//!
//! **Several nodes.** On a shared bus (`bus/`) the room's lock cannot order
//! what happens on other nodes, so Redis does: a `SAY`, a join, a leave
//! and a moderation step are published, and every node applies them as
//! its subscription brings them back (the `apply_*` methods), under the
//! same locks. Each room then also keeps its *seats*, every member on
//! every node in the bus's order, and a message is delivered only if its
//! sender is seated at that point of the stream.
//!
//! **Moderation** uses the same two locks, in the same order, so its races
//! have one outcome each. A `KICK` takes the target's membership lock: the
//! target's `SAY` either finished before (everybody saw the message, then
//! `LEFT … kick`) or finds it in no room (nobody sees it). A `BAN` is put
//! in the room's state under the room's lock, where `JOIN` looks for it
//! and adds the member: a joiner either is refused or got in first and is
//! kicked. A `CLOSE` marks the room closed under its lock and takes every
//! member out: a `SAY` after that is `NOT_IN_ROOM`. A `SUSPEND` notes the
//! user under the users lock, where `LOGIN` makes a session: a login
//! either is refused or made its session first and is closed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::bus::{Announcement, Bus, BusError, Event, Seat, Snapshot};
use crate::clock::Clock;
use crate::db::RoomRecord;
use crate::protocol::{ByeReason, LeftReason, Name, ServerLine, Timestamp};

use super::client::{Client, Closing, Outgoing, Visit};
use super::sync;

/// A chat room.
#[derive(Debug)]
pub struct Room {
    /// The room's row id in the database.
    pub id: i64,
    /// The name as created.
    pub name: Name,
    /// The key (lower-case name) of the account that created it, which may
    /// moderate it; `None` for a room made before rooms had owners.
    owner: Option<String>,
    /// Whether the room has a password. Fixed for the room's life.
    private: bool,
    /// The argon2id (or, for a room migrated from the Python original, the
    /// old SHA-256) hash of the room's password; `None` for a public room.
    /// Copied out under this short lock and verified with no lock held; it
    /// changes only when a legacy hash is upgraded.
    password_hash: RwLock<Option<String>>,
    /// Members online, kept equal to `state.members.len()` under the lock
    /// and read without it by `ROOMS`, so listing rooms never waits on a busy
    /// room.
    online: AtomicUsize,
    /// Everything that changes, behind the room's one lock.
    state: Mutex<RoomState>,
}

/// The mutable part of a room.
#[derive(Debug)]
struct RoomState {
    /// Members in the order they joined (the order `WHO` lists them).
    members: Vec<Arc<Client>>,
    /// The last `history` messages, oldest first, replayed on `JOIN`.
    history: VecDeque<HistoryEntry>,
    /// The sequence number of the next message. Stored with each message,
    /// it orders history in the database however the writes are batched.
    next_seq: u64,
    /// When the last line was broadcast here: how busy the room is (see
    /// [`QUIET_GAP`]).
    last_broadcast: Option<Instant>,
    /// The topic, if one was set.
    topic: Option<Topic>,
    /// Bans by user key; an ended one stays until it is replaced or lifted
    /// (it is simply not in force).
    bans: HashMap<String, Ban>,
    /// Set by `CLOSE`: the room is gone, and nobody is in it any more.
    closed: bool,
    /// On a shared bus, every member on every node (this one's included),
    /// in the bus's order: who may say something here, as the events
    /// applied so far have it. Empty on a server alone.
    seats: Vec<Seat>,
    /// How many of `seats` are on other nodes: added to the members here
    /// for `ROOMS` and the room's count.
    remote: usize,
}

/// A room's topic.
#[derive(Debug, Clone)]
pub struct Topic {
    /// Who set it, as registered.
    pub by: String,
    /// When.
    pub time: Timestamp,
    /// The topic.
    pub text: String,
}

/// A ban from a room.
#[derive(Debug, Clone)]
pub struct Ban {
    /// The banned user, as registered.
    pub user: String,
    /// When it ends, in milliseconds since the epoch
    /// ([`FOREVER`](crate::db::FOREVER) until lifted).
    pub until_ms: i64,
    /// Who banned them.
    pub by: String,
}

impl Ban {
    /// Is it in force at `now`?
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.until_ms > now.0
    }
}

/// A broadcast that comes at least this long after the previous one in its
/// room writes itself to the members whose writers sleep, instead of waking
/// them (see "The pen" in `writer.rs`): the room is quiet, and a wake-up per
/// member per line would cost more than the writes. Closer together (a room
/// busier than 200 lines a second), the writers are woken: by the time a
/// woken writer runs, more lines are waiting, and it writes them all with
/// one `write`, which is cheaper than a write per line per member
/// (docs/BENCHMARKS.md, "Where the time goes", has the measurements that
/// chose the gap).
const QUIET_GAP: Duration = Duration::from_millis(5);

/// One message of a room's history.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// When it was said (the time its `MSG` carried).
    pub time: Timestamp,
    /// Who said it, as registered.
    pub user: String,
    /// What was said.
    pub text: String,
}

/// A message that was just said in a room, for the caller to store.
#[derive(Debug)]
pub struct Said {
    /// The room's database id.
    pub room_id: i64,
    /// The room's name.
    pub room: String,
    /// Its place in the room's order.
    pub seq: u64,
    /// The time its `MSG` carried.
    pub time: Timestamp,
    /// Who said it.
    pub user: String,
    /// What was said.
    pub text: String,
}

/// Why a `JOIN` did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// The client is in that room already.
    AlreadyInRoom,
    /// The connection is being closed (a takeover got there first).
    Closing,
    /// The user is banned from the room until then
    /// ([`FOREVER`](crate::db::FOREVER) until lifted).
    Banned(i64),
    /// The room was closed meanwhile.
    Closed,
}

/// The shared state of the chat: users online, rooms, connections.
#[derive(Debug)]
pub struct Hub {
    /// Online sessions by user key (the case-folded name). At most one per
    /// user: the newest login wins.
    users: Mutex<HashMap<String, Arc<Client>>>,
    /// Rooms by key. A `BTreeMap`, so `ROOMS` comes out sorted by name
    /// (case-insensitively) for free.
    rooms: RwLock<BTreeMap<String, Arc<Room>>>,
    /// Every live connection, logged in or not, so that shutdown can reach
    /// each one.
    conns: Mutex<HashMap<u64, Arc<Client>>>,
    /// Users suspended by this server since it started, by key, with the
    /// end of the suspension; `LOGIN` looks here (under `users`) for the
    /// suspensions made after it read the account from the database.
    suspended: Mutex<HashMap<String, i64>>,
    /// How many messages each room keeps for `JOIN` (the `--history` option).
    history: usize,
    /// Message times, and the end of bans and suspensions.
    clock: Clock,
    /// What this node shares its rooms through (`bus/`): nothing for a
    /// server alone.
    bus: Arc<dyn Bus>,
    /// Seats from the bus's last snapshot in rooms this node did not know
    /// yet (made on another node): a room added later takes its own. Held
    /// for the whole of a resync, so that a room added meanwhile finds its
    /// seats either here or already in place.
    unseated: Mutex<HashMap<String, Vec<Seat>>>,
}

/// What became of a `SAY`.
#[derive(Debug)]
pub enum Spoken {
    /// Said and delivered here, a server alone: the caller stores it.
    Said(Said),
    /// Published; every node delivers it when the bus brings it back, and
    /// this node stores it then.
    Published,
    /// The client is in no room.
    NotInRoom,
    /// The bus could not take it.
    Failed(BusError),
}

/// Milliseconds since the Unix epoch, now.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp(ms)
}

/// The `TOPIC` line of `room` for `topic`.
fn topic_line(room: &Room, topic: &Topic) -> ServerLine {
    ServerLine::Topic {
        room: room.name.to_string(),
        by: topic.by.clone(),
        time: topic.time,
        topic: topic.text.clone(),
    }
}

/// Renders a broadcast line once, as a shared buffer.
fn shared(line: &ServerLine) -> Arc<str> {
    Arc::from(format!("{line}\n"))
}

impl Room {
    /// A room with no one in it yet, its row `id` in the database, owned by
    /// the account named `owner` (any case).
    pub fn new(id: i64, name: Name, password_hash: Option<String>, owner: Option<&str>) -> Self {
        Room {
            id,
            name,
            owner: owner.map(str::to_ascii_lowercase),
            private: password_hash.is_some(),
            password_hash: RwLock::new(password_hash),
            online: AtomicUsize::new(0),
            state: Mutex::new(RoomState {
                members: Vec::new(),
                history: VecDeque::new(),
                next_seq: 1,
                last_broadcast: None,
                topic: None,
                bans: HashMap::new(),
                closed: false,
                seats: Vec::new(),
                remote: 0,
            }),
        }
    }

    /// The room as loaded from the database, keeping the last `history`
    /// messages; `None` (with a warning) for a name the protocol cannot
    /// express.
    pub fn from_record(record: RoomRecord, history: usize) -> Option<Room> {
        let Ok(name) = Name::parse(&record.name) else {
            // A room migrated from the Python original may have a name the
            // protocol cannot express; nobody could JOIN it.
            log::warn!(
                "room {:?} has a name outside the protocol's rules; skipped",
                record.name
            );
            return None;
        };
        let room = Room::new(
            record.id,
            name,
            record.password_hash,
            record.owner.as_deref(),
        );
        {
            let mut state = room.lock();
            state.next_seq = record.next_seq;
            state.topic = record.topic.map(|t| Topic {
                by: t.by,
                time: Timestamp(t.time_ms),
                text: t.text,
            });
            state.bans = record
                .bans
                .into_iter()
                .map(|b| {
                    let key = b.user.to_ascii_lowercase();
                    let ban = Ban {
                        user: b.user,
                        until_ms: b.until_ms,
                        by: b.by,
                    };
                    (key, ban)
                })
                .collect();
            let skip = record.history.len().saturating_sub(history);
            state.history = record
                .history
                .into_iter()
                .skip(skip)
                .map(|h| HistoryEntry {
                    time: Timestamp(h.time_ms),
                    user: h.user,
                    text: h.text,
                })
                .collect();
        }
        Some(room)
    }

    /// Is `user_key` the key of the account that created the room?
    pub fn is_owned_by(&self, user_key: &str) -> bool {
        self.owner.as_deref() == Some(user_key)
    }

    /// Is the room password-protected?
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// A copy of the password hash (`None` for a public room).
    pub fn password_hash(&self) -> Option<String> {
        sync::read(&self.password_hash).clone()
    }

    /// Replaces the password hash of a private room (a legacy hash
    /// upgraded after a successful `JOIN`).
    pub fn set_password_hash(&self, hash: String) {
        if self.private {
            *sync::write(&self.password_hash) = Some(hash);
        }
    }

    /// Members online now (without taking the room's lock).
    pub fn online(&self) -> usize {
        self.online.load(Ordering::Relaxed)
    }

    /// Takes the room's lock.
    fn lock(&self) -> MutexGuard<'_, RoomState> {
        sync::lock(&self.state)
    }

    /// Removes `client` and tells the others. Called with the client's
    /// membership lock held. Returns whether it was a member.
    fn remove(&self, client: &Client, reason: LeftReason) -> bool {
        let mut state = self.lock();
        let Some(at) = state.members.iter().position(|m| m.id == client.id) else {
            return false;
        };
        state.members.remove(at);
        self.online
            .store(state.members.len() + state.remote, Ordering::Relaxed);
        let line = shared(&ServerLine::Left {
            room: self.name.to_string(),
            user: client.display_name().to_string(),
            reason,
        });
        let wakes = broadcast(&mut state, &line);
        drop(state);
        ring(wakes);
        true
    }
}

/// The members a broadcast found with their writers asleep or behind, to
/// be served once the room's lock is released: a write or a wake-up is a
/// system call, and the room's other senders should not wait for it.
#[must_use = "sleeping writers are served by ring()"]
struct Visits {
    /// Those members.
    members: Vec<Visit>,
    /// Whether the room was quiet (see [`QUIET_GAP`]).
    quiet: bool,
}

/// Queues `line` for every member, under the room's lock that the caller
/// holds; returns the members to serve once it is released.
fn broadcast(state: &mut RoomState, line: &Arc<str>) -> Visits {
    let now = Instant::now();
    let quiet = state
        .last_broadcast
        .is_none_or(|last| now.duration_since(last) >= QUIET_GAP);
    state.last_broadcast = Some(now);
    let mut members = Vec::new();
    for member in &state.members {
        member.send_quietly(Outgoing::Shared(line.clone()), &mut members);
    }
    Visits { members, quiet }
}

/// Serves the members a [`broadcast`] found asleep or behind: in a quiet
/// room the broadcaster writes to sleeping writers' clients itself if it
/// can, in a busy one it wakes them; either way it writes for a writer
/// that is behind, if that writer's pen is free.
fn ring(visits: Visits) {
    for member in visits.members {
        if visits.quiet {
            member.write_or_wake();
        } else {
            member.wake();
        }
    }
}

impl Hub {
    /// A hub holding the rooms loaded from the database, timed by `clock`.
    pub fn new(history: usize, rooms: Vec<RoomRecord>, clock: Clock, bus: Arc<dyn Bus>) -> Self {
        let map = rooms
            .into_iter()
            .filter_map(|record| Room::from_record(record, history))
            .map(|room| (room.name.key(), Arc::new(room)))
            .collect();
        Hub {
            users: Mutex::new(HashMap::new()),
            rooms: RwLock::new(map),
            conns: Mutex::new(HashMap::new()),
            suspended: Mutex::new(HashMap::new()),
            history,
            clock,
            bus,
            unseated: Mutex::new(HashMap::new()),
        }
    }

    /// The bus this node shares its rooms through.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Where `client` sits, as the other nodes know it.
    fn seat(&self, client: &Client) -> Seat {
        Seat {
            node: self.bus.node().to_owned(),
            conn: client.id,
            user: client.display_name().to_owned(),
        }
    }

    /// Publishes `event` if the rooms are shared; nothing to do on a
    /// server alone. A failure is logged (this node has done its part; the
    /// other nodes miss it).
    pub fn tell_others(&self, event: Event) {
        if self.bus.shared() {
            let kind = event.kind();
            if let Err(e) = self.bus.publish(event) {
                log::warn!("{e}: the other nodes miss a {kind:?} event");
            }
        }
    }

    /// The time now, by the server's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    // ----- connections --------------------------------------------------

    /// Remembers a live connection (for shutdown).
    pub fn add_conn(&self, client: Arc<Client>) {
        self.conns_lock().insert(client.id, client);
    }

    /// Forgets a connection that has ended.
    pub fn remove_conn(&self, id: u64) {
        self.conns_lock().remove(&id);
    }

    /// Closes every connection with the same `BYE`. The handles are copied
    /// out first so that no lock is held while waking threads.
    pub fn close_all(&self, reason: ByeReason) -> usize {
        let all: Vec<Arc<Client>> = self.conns_lock().values().cloned().collect();
        for client in &all {
            client.close(Closing::Bye(reason));
        }
        all.len()
    }

    /// Cuts every connection still open at its socket ([`Client::cut`]),
    /// copying the handles out first like [`Hub::close_all`].
    pub fn cut_all(&self) -> usize {
        let all: Vec<Arc<Client>> = self.conns_lock().values().cloned().collect();
        for client in &all {
            client.cut();
        }
        all.len()
    }

    /// Takes the connections lock.
    fn conns_lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Client>>> {
        sync::lock(&self.conns)
    }

    // ----- users --------------------------------------------------------

    /// Takes the online-users lock.
    fn users_lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Client>>> {
        sync::lock(&self.users)
    }

    /// Makes `client` the online session of `user` (setting its user), and
    /// queues `welcome` (its `OK LOGIN`) in the same step. An older session
    /// of the same user is closed with `BYE LOGGED_IN_ELSEWHERE` and leaves
    /// its room (`LEFT … quit`): the newest login wins.
    ///
    /// # Errors
    ///
    /// The end of the user's suspension, if it was suspended after its
    /// account was read (see [`Hub::suspend`]); the client is left as it
    /// was, not logged in, and nothing was queued.
    pub fn login(&self, client: &Arc<Client>, user: Name, welcome: &ServerLine) -> Result<(), i64> {
        let older = {
            let mut users = self.users_lock();
            let now = self.now().0;
            if let Some(&until) = sync::lock(&self.suspended)
                .get(&user.key())
                .filter(|&&until| until > now)
            {
                return Err(until);
            }
            client.set_user(user.clone());
            let older = users.insert(user.key(), client.clone());
            // Queued while the users lock is held (memory only; the
            // client's own reply, so never a reason to drop it). Whoever finds this session online, to send it a DM,
            // finds it after this line is in its outbox, so no DM comes
            // before the `OK LOGIN`; and the client cannot read its
            // `OK LOGIN` before it is online, so a DM sent to it once it
            // has is delivered, not stored.
            client.answer(welcome);
            older
        };

        // The users lock is released before touching the older session.
        if let Some(older) = older.filter(|o| o.id != client.id) {
            log::info!(
                "conn {}: {} logged in on conn {}, closing this one",
                older.id,
                user,
                client.id
            );
            // Close first, then leave: a JOIN the older session is making
            // right now either finishes before our leave (and is undone by
            // it) or sees the closing flag and does nothing.
            older.close(Closing::Bye(ByeReason::LoggedInElsewhere));
            self.leave(&older, LeftReason::Quit);
        }
        Ok(())
    }

    /// Forgets the user's session, if `client` is still it (a newer login
    /// may have replaced it already).
    pub fn logout(&self, client: &Client) {
        self.logout_quietly(client);
        if let Some(user) = client.user() {
            self.bus.release_presence(&user.key(), client.id);
        }
    }

    /// The online session of a user, if any.
    pub fn online(&self, user_key: &str) -> Option<Arc<Client>> {
        self.users_lock().get(user_key).cloned()
    }

    // ----- rooms --------------------------------------------------------

    /// Looks a room up by key.
    pub fn room(&self, key: &str) -> Option<Arc<Room>> {
        sync::read(&self.rooms).get(key).cloned()
    }

    /// The history kept per room (`--history`), for [`Room::from_record`].
    pub fn history(&self) -> usize {
        self.history
    }

    /// Adds a room that the database has committed, unless the hub has it
    /// already (two racing `CREATE`s both end up here: the first one's room
    /// is kept, so everybody joins the same one).
    pub fn add_room(&self, room: Room) {
        let key = room.name.key();
        let room = sync::write(&self.rooms)
            .entry(key.clone())
            .or_insert_with(|| Arc::new(room))
            .clone();
        // Made on another node before this one took its snapshot: its
        // seats wait here.
        let seats = sync::lock(&self.unseated).remove(&key);
        if let Some(seats) = seats {
            let me = self.bus.node();
            let mut state = room.lock();
            state.remote = seats.iter().filter(|s| s.node != me).count();
            state.seats = seats;
            room.online
                .store(state.members.len() + state.remote, Ordering::Relaxed);
        }
    }

    /// Every room as `(name, private, online)`, sorted by name.
    pub fn list_rooms(&self) -> Vec<(String, bool, usize)> {
        sync::read(&self.rooms)
            .values()
            .map(|r| (r.name.to_string(), r.is_private(), r.online()))
            .collect()
    }

    // ----- membership ---------------------------------------------------

    /// Moves `client` into `room`: out of its current room first (whose
    /// members get `LEFT … leave`), then the room's history, its topic and
    /// `OK JOIN` to the client, and `JOINED` to the others.
    ///
    /// History and `OK JOIN` are queued while the room's lock is held, so
    /// no `MSG` can slip in between them or before them: every message of
    /// the room reaches the joiner either in the history or as a `MSG`
    /// after `OK JOIN`, never both, never neither.
    ///
    /// A ban is looked for before the client leaves its current room (a
    /// refused `JOIN` changes nothing), and again under the room's lock
    /// where the member is added, which is where `BAN` puts it: a ban made
    /// in between leaves the client in no room, refused.
    pub fn join(&self, client: &Arc<Client>, room: &Arc<Room>) -> Result<(), JoinError> {
        let mut cell = sync::lock(&client.room);
        if client.closing().is_some() {
            return Err(JoinError::Closing);
        }
        let user_key = client.user().map(Name::key).unwrap_or_default();
        self.may_enter(&room.lock(), &user_key)?;
        if let Some(current) = cell.take() {
            if Arc::ptr_eq(&current, room) {
                *cell = Some(current);
                return Err(JoinError::AlreadyInRoom);
            }
            if current.remove(client, LeftReason::Leave) {
                self.tell_others(self.left_event(&current, client, LeftReason::Leave));
            }
        }
        let user = client.display_name().to_string();
        let mut state = room.lock();
        self.may_enter(&state, &user_key)?;
        let joined = shared(&ServerLine::Joined {
            room: room.name.to_string(),
            user,
        });
        let wakes = broadcast(&mut state, &joined);
        for h in &state.history {
            client.answer(&ServerLine::History {
                room: room.name.to_string(),
                time: h.time,
                user: h.user.clone(),
                text: h.text.clone(),
            });
        }
        if let Some(topic) = &state.topic {
            client.answer(&topic_line(room, topic));
        }
        client.answer(&ServerLine::Ok {
            command: "JOIN".into(),
            rest: room.name.to_string(),
        });
        state.members.push(client.clone());
        room.online
            .store(state.members.len() + state.remote, Ordering::Relaxed);
        drop(state);
        ring(wakes);
        *cell = Some(room.clone());
        self.tell_others(Event::Joined {
            room: room.name.to_string(),
            seat: self.seat(client),
            quiet: false,
        });
        Ok(())
    }

    /// The `Left` event of `client` leaving `room`.
    fn left_event(&self, room: &Room, client: &Client, reason: LeftReason) -> Event {
        Event::Left {
            room: room.name.to_string(),
            seat: self.seat(client),
            reason,
        }
    }

    /// May the user whose key is `user_key` enter the room whose state is
    /// `state`?
    fn may_enter(&self, state: &RoomState, user_key: &str) -> Result<(), JoinError> {
        if state.closed {
            return Err(JoinError::Closed);
        }
        match state.bans.get(user_key) {
            Some(ban) if ban.in_force(self.now()) => Err(JoinError::Banned(ban.until_ms)),
            _ => Ok(()),
        }
    }

    /// Takes `client` out of its room, telling the others why. Returns the
    /// room's name, or `None` if it was in no room.
    pub fn leave(&self, client: &Client, reason: LeftReason) -> Option<Name> {
        let mut cell = sync::lock(&client.room);
        let room = cell.take()?;
        // A closed room has no members left: its CLOSED was the goodbye.
        let was_member = room.remove(client, reason);
        if was_member {
            self.tell_others(self.left_event(&room, client, reason));
        }
        was_member.then(|| room.name.clone())
    }

    /// Says `text` in the client's room: one `MSG` line, formatted once,
    /// to every member including the sender, under the room's lock, and
    /// returns what was said, for the caller to store. On a shared bus it
    /// is published instead, and every node delivers it when it comes back
    /// ([`Hub::apply_msg`]).
    pub fn say(&self, client: &Client, text: String) -> Spoken {
        // The membership lock makes sure the client is really a member
        // while the room's lock is taken (a takeover could be removing it).
        let cell = sync::lock(&client.room);
        let Some(room) = cell.as_ref() else {
            return Spoken::NotInRoom;
        };
        if self.bus.shared() {
            if !self.bus.up() {
                return Spoken::Failed(BusError("redis is unreachable".into()));
            }
            // The bus gives the order: every node, this one included,
            // delivers the message when it comes back (`apply_msg`).
            // Queued under the membership lock, so that this client's
            // `SAY` and its next `LEAVE` are published in that order.
            let event = Event::Msg {
                room: room.name.to_string(),
                seat: self.seat(client),
                time: self.now().0,
                text,
                seq: None,
            };
            return match self.bus.publish(event) {
                Ok(()) => Spoken::Published,
                Err(e) => Spoken::Failed(e),
            };
        }
        let user = client.display_name().to_string();
        let room_id = room.id;
        let mut state = room.lock();
        if state.closed {
            return Spoken::NotInRoom;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let time = self.now();
        let line = ServerLine::Msg {
            room: room.name.to_string(),
            time,
            user,
            text,
        };
        let wire = shared(&line);
        let wakes = broadcast(&mut state, &wire);
        let ServerLine::Msg {
            room: name,
            user,
            text,
            ..
        } = line
        else {
            unreachable!("built as a Msg just above")
        };
        if self.history > 0 {
            if state.history.len() == self.history {
                state.history.pop_front();
            }
            state.history.push_back(HistoryEntry {
                time,
                user: user.clone(),
                text: text.clone(),
            });
        }
        drop(state);
        drop(cell);
        ring(wakes);
        Spoken::Said(Said {
            room_id,
            room: name,
            seq,
            time,
            user,
            text,
        })
    }

    /// The members of the client's room, in joining order, or `None` if the
    /// client is in no room.
    pub fn who(&self, client: &Client) -> Option<Vec<String>> {
        let cell = sync::lock(&client.room);
        let room = cell.as_ref()?;
        let state = room.lock();
        if state.closed {
            return None;
        }
        if state.seats.is_empty() {
            return Some(
                state
                    .members
                    .iter()
                    .map(|m| m.display_name().to_string())
                    .collect(),
            );
        }
        // Shared rooms: everybody in the bus's order, this node's members
        // as they are here (one who just joined may not be seated yet).
        let me = self.bus.node();
        let here = |conn: u64| state.members.iter().any(|m| m.id == conn);
        let mut names: Vec<String> = state
            .seats
            .iter()
            .filter(|s| s.node != me || here(s.conn))
            .map(|s| s.user.clone())
            .collect();
        names.extend(
            state
                .members
                .iter()
                .filter(|m| !state.seats.iter().any(|s| s.node == me && s.conn == m.id))
                .map(|m| m.display_name().to_string()),
        );
        Some(names)
    }

    // ----- the bus: what the other nodes said ---------------------------

    /// Applies a message the bus brought back, in the bus's order: if its
    /// sender still sits in the room (as the events applied so far have
    /// it), every member here gets its `MSG`, and it joins the room's
    /// history. Returns what was said if a member of this node said it:
    /// the caller stores it, so that each message is stored once.
    pub fn apply_msg(
        &self,
        room: &Room,
        seat: Seat,
        time: i64,
        text: String,
        seq: Option<u64>,
    ) -> Option<Said> {
        let mut state = room.lock();
        let seated = state
            .seats
            .iter()
            .any(|s| s.node == seat.node && s.conn == seat.conn);
        if state.closed || !seated {
            log::debug!(
                "room {}: a message of {}/{} dropped: its sender is not seated here",
                room.name,
                seat.node,
                seat.conn
            );
            return None;
        }
        let seq = seq.unwrap_or(state.next_seq);
        state.next_seq = state.next_seq.max(seq + 1);
        let time = Timestamp(time);
        let wire = shared(&ServerLine::Msg {
            room: room.name.to_string(),
            time,
            user: seat.user.clone(),
            text: text.clone(),
        });
        let wakes = broadcast(&mut state, &wire);
        if self.history > 0 {
            if state.history.len() == self.history {
                state.history.pop_front();
            }
            state.history.push_back(HistoryEntry {
                time,
                user: seat.user.clone(),
                text: text.clone(),
            });
        }
        drop(state);
        ring(wakes);
        (seat.node == self.bus.node()).then(|| Said {
            room_id: room.id,
            room: room.name.to_string(),
            seq,
            time,
            user: seat.user,
            text,
        })
    }

    /// Seats a member, in the bus's order; the members here get `JOINED`
    /// unless the member is one of theirs (they had it at its `JOIN`) or
    /// was only announced again (`quiet`).
    pub fn apply_joined(&self, room: &Room, seat: Seat, quiet: bool) {
        let mut state = room.lock();
        if state.closed || state.seats.contains(&seat) {
            return;
        }
        let here = seat.node == self.bus.node();
        let line = (!here && !quiet).then(|| {
            shared(&ServerLine::Joined {
                room: room.name.to_string(),
                user: seat.user.clone(),
            })
        });
        state.seats.push(seat);
        if !here {
            state.remote += 1;
        }
        room.online
            .store(state.members.len() + state.remote, Ordering::Relaxed);
        let wakes = line.map(|line| broadcast(&mut state, &line));
        drop(state);
        if let Some(wakes) = wakes {
            ring(wakes);
        }
    }

    /// Unseats a member, in the bus's order; the members here get `LEFT`
    /// unless it was one of theirs (they had it when it left).
    pub fn apply_left(&self, room: &Room, seat: &Seat, reason: LeftReason) {
        let mut state = room.lock();
        let Some(at) = state
            .seats
            .iter()
            .position(|s| s.node == seat.node && s.conn == seat.conn)
        else {
            return;
        };
        state.seats.remove(at);
        if seat.node == self.bus.node() {
            return;
        }
        state.remote = state.remote.saturating_sub(1);
        room.online
            .store(state.members.len() + state.remote, Ordering::Relaxed);
        let line = shared(&ServerLine::Left {
            room: room.name.to_string(),
            user: seat.user.clone(),
            reason,
        });
        let wakes = broadcast(&mut state, &line);
        drop(state);
        ring(wakes);
    }

    /// A node is gone: its members leave every room (`LEFT … quit`).
    pub fn apply_node_gone(&self, node: &str) {
        let rooms: Vec<Arc<Room>> = sync::read(&self.rooms).values().cloned().collect();
        for room in rooms {
            let gone: Vec<Seat> = room
                .lock()
                .seats
                .iter()
                .filter(|s| s.node == node)
                .cloned()
                .collect();
            for seat in gone {
                self.apply_left(&room, &seat, LeftReason::Quit);
            }
        }
    }

    /// Replaces what this node knows of who sits where with `snapshot`
    /// (taken when the node subscribed), without a line to anybody: what
    /// changed while the node was not listening is not replayed. Returns a
    /// `Left` for each seat the snapshot gives this node that it does not
    /// have (see [`Deliver::resync`](crate::bus::Deliver::resync)), for the
    /// caller to publish; those seats are not kept.
    pub fn resync(&self, snapshot: Snapshot) -> Vec<Event> {
        let me = self.bus.node().to_owned();
        let mut seats: HashMap<String, Vec<Seat>> = snapshot
            .rooms
            .into_iter()
            .map(|(room, seats)| (room.to_ascii_lowercase(), seats))
            .collect();
        let mut unseated = sync::lock(&self.unseated);
        let rooms: Vec<(String, Arc<Room>)> = sync::read(&self.rooms)
            .iter()
            .map(|(key, room)| (key.clone(), room.clone()))
            .collect();
        let mut stale = Vec::new();
        for (key, room) in rooms {
            let mut state = room.lock();
            let mut given = seats.remove(&key).unwrap_or_default();
            given.retain(|seat| {
                let ours_and_gone =
                    seat.node == me && !state.members.iter().any(|m| m.id == seat.conn);
                if ours_and_gone {
                    stale.push(Event::Left {
                        room: room.name.to_string(),
                        seat: seat.clone(),
                        reason: LeftReason::Quit,
                    });
                }
                !ours_and_gone
            });
            state.seats = given;
            // This node's own members are seated whatever Redis forgot:
            // their announcements are on their way to the others.
            let unseated: Vec<Seat> = state
                .members
                .iter()
                .filter(|m| !state.seats.iter().any(|s| s.node == me && s.conn == m.id))
                .map(|m| self.seat(m))
                .collect();
            state.seats.extend(unseated);
            state.remote = state.seats.iter().filter(|s| s.node != me).count();
            room.online
                .store(state.members.len() + state.remote, Ordering::Relaxed);
        }
        // Rooms this node does not know have no members of its own.
        for (room, given) in seats.iter_mut() {
            given.retain(|seat| {
                let ours = seat.node == me;
                if ours {
                    stale.push(Event::Left {
                        room: room.clone(),
                        seat: seat.clone(),
                        reason: LeftReason::Quit,
                    });
                }
                !ours
            });
        }
        *unseated = seats;
        stale
    }

    /// What this node announces again when it (re)subscribes: its members'
    /// seats (quiet `Joined` events), its users' sessions, and the last
    /// message number it has seen in each room.
    pub fn announcement(&self) -> Announcement {
        let mut seats = Vec::new();
        let mut seqs = Vec::new();
        let rooms: Vec<Arc<Room>> = sync::read(&self.rooms).values().cloned().collect();
        for room in rooms {
            let state = room.lock();
            seqs.push((room.name.key(), state.next_seq.saturating_sub(1)));
            seats.extend(state.members.iter().map(|m| Event::Joined {
                room: room.name.to_string(),
                seat: self.seat(m),
                quiet: true,
            }));
        }
        let sessions = self
            .users_lock()
            .iter()
            .map(|(key, client)| (key.clone(), client.id))
            .collect();
        Announcement {
            seats,
            sessions,
            seqs,
        }
    }

    /// Another node logged `user_key` in: our session `conn` of it, if it
    /// is still the user's session here, is closed like a takeover here.
    pub fn take_over(&self, user_key: &str, conn: u64) {
        let Some(older) = self.online(user_key).filter(|c| c.id == conn) else {
            return;
        };
        log::info!("conn {conn}: {user_key} logged in on another node, closing this one");
        older.close(Closing::Bye(ByeReason::LoggedInElsewhere));
        self.leave(&older, LeftReason::Quit);
        self.logout_quietly(&older);
    }

    /// Forgets `client` as its user's session without telling the bus (the
    /// newer session elsewhere holds the presence now).
    fn logout_quietly(&self, client: &Client) {
        let Some(user) = client.user() else { return };
        let mut users = self.users_lock();
        if users.get(&user.key()).is_some_and(|c| c.id == client.id) {
            users.remove(&user.key());
        }
    }

    // ----- moderation ---------------------------------------------------

    /// The member of `room` whose user key is `user_key`, if any.
    pub fn member(&self, room: &Room, user_key: &str) -> Option<Arc<Client>> {
        room.lock()
            .members
            .iter()
            .find(|m| m.user().is_some_and(|u| u.key() == user_key))
            .cloned()
    }

    /// The name of the member of `room` whose user key is `user_key`, if
    /// it sits on another node.
    pub fn seated_elsewhere(&self, room: &Room, user_key: &str) -> Option<String> {
        let me = self.bus.node();
        room.lock()
            .seats
            .iter()
            .find(|s| s.node != me && s.user.eq_ignore_ascii_case(user_key))
            .map(|s| s.user.clone())
    }

    /// Puts `target` out of `room`, if it is still in it: the others get
    /// `LEFT … kick`, the target `kicked` (its `KICKED` line), in that
    /// order and under the target's membership lock, so that nothing of
    /// the room reaches it afterwards and its own `SAY` is either before
    /// the `LEFT` for everyone or for no one. Returns whether it was there.
    pub fn kick(&self, room: &Arc<Room>, target: &Arc<Client>, kicked: &ServerLine) -> bool {
        let mut cell = sync::lock(&target.room);
        if !cell.as_ref().is_some_and(|r| Arc::ptr_eq(r, room)) {
            return false;
        }
        *cell = None;
        let was_member = room.remove(target, LeftReason::Kick);
        let mut visits = Vec::new();
        if was_member {
            target.send_quietly(Outgoing::Owned(format!("{kicked}\n")), &mut visits);
            self.tell_others(self.left_event(room, target, LeftReason::Kick));
        }
        drop(cell);
        for visit in visits {
            visit.wake();
        }
        was_member
    }

    /// Bans a user from `room`, under the room's lock where `JOIN` looks
    /// (the database has it already). The caller then kicks the user if
    /// it is a member.
    pub fn ban(&self, room: &Room, ban: Ban) {
        let key = ban.user.to_ascii_lowercase();
        room.lock().bans.insert(key, ban);
    }

    /// The end of the ban of `user_key` from `room`, if one is in force.
    pub fn banned_until(&self, room: &Room, user_key: &str) -> Option<i64> {
        let now = self.now();
        room.lock()
            .bans
            .get(user_key)
            .filter(|b| b.in_force(now))
            .map(|b| b.until_ms)
    }

    /// Lifts a ban (the database has lifted it already).
    pub fn unban(&self, room: &Room, user_key: &str) {
        room.lock().bans.remove(user_key);
    }

    /// The bans of `room` in force now, oldest first.
    pub fn bans(&self, room: &Room) -> Vec<Ban> {
        let now = self.now();
        let state = room.lock();
        let mut bans: Vec<Ban> = state
            .bans
            .values()
            .filter(|b| b.in_force(now))
            .cloned()
            .collect();
        drop(state);
        bans.sort_by(|a, b| a.user.cmp(&b.user));
        bans
    }

    /// Sets the topic of `room` (the database has it already) and sends
    /// the `TOPIC` line to every member, the setter included.
    pub fn set_topic(&self, room: &Room, topic: Topic) {
        let line = shared(&topic_line(room, &topic));
        let mut state = room.lock();
        state.topic = Some(topic);
        let wakes = broadcast(&mut state, &line);
        drop(state);
        ring(wakes);
    }

    /// The topic of `room`, as its `TOPIC` line, if it has one.
    pub fn topic(&self, room: &Room) -> Option<ServerLine> {
        room.lock().topic.as_ref().map(|t| topic_line(room, t))
    }

    /// Closes `room` (the database has deleted it already): it leaves the
    /// room list, every member gets `closed` (its `CLOSED` line) and is in
    /// no room. Returns how many members there were.
    pub fn close(&self, room: &Arc<Room>, closed: &ServerLine) -> usize {
        sync::write(&self.rooms).remove(&room.name.key());
        let line = shared(closed);
        let mut state = room.lock();
        state.closed = true;
        let wakes = broadcast(&mut state, &line);
        let members = std::mem::take(&mut state.members);
        room.online.store(0, Ordering::Relaxed);
        drop(state);
        ring(wakes);
        // Each member's cell still names the room; clear it unless the
        // member has moved on meanwhile (a JOIN elsewhere clears it itself).
        for member in &members {
            let mut cell = sync::lock(&member.room);
            if cell.as_ref().is_some_and(|r| Arc::ptr_eq(r, room)) {
                *cell = None;
            }
        }
        members.len()
    }

    /// Sends `line` (a `NOTICE`) to every logged-in connection; returns how
    /// many. The sessions are copied out first, so no lock is held while
    /// writing or waking.
    pub fn announce(&self, line: &ServerLine) -> usize {
        let online: Vec<Arc<Client>> = self.users_lock().values().cloned().collect();
        let line = shared(line);
        let mut members = Vec::new();
        let reached = online
            .iter()
            .filter(|c| c.send_quietly(Outgoing::Shared(line.clone()), &mut members))
            .count();
        ring(Visits {
            members,
            quiet: true,
        });
        reached
    }

    /// Notes that the user whose key is `user_key` is suspended until
    /// `until_ms` (the database has it already), so that a login in
    /// progress cannot slip through, and returns its online session, for
    /// the caller to close.
    pub fn suspend(&self, user_key: &str, until_ms: i64) -> Option<Arc<Client>> {
        let users = self.users_lock();
        sync::lock(&self.suspended).insert(user_key.to_owned(), until_ms);
        users.get(user_key).cloned()
    }

    /// Forgets a suspension (the database has lifted it already).
    pub fn unsuspend(&self, user_key: &str) {
        let _users = self.users_lock();
        sync::lock(&self.suspended).remove(user_key);
    }

    // ----- for the status page and /metrics -----------------------------

    /// Every user online with the room they are in, sorted by name. The
    /// handles are copied out first, so no two of the hub's locks are ever
    /// held together here.
    pub fn users_online(&self) -> Vec<(String, Option<String>)> {
        let clients: Vec<Arc<Client>> = self.users_lock().values().cloned().collect();
        let mut users: Vec<(String, Option<String>)> = clients
            .iter()
            .map(|c| {
                let room = sync::lock(&c.room).as_ref().map(|r| r.name.to_string());
                (c.display_name().to_string(), room)
            })
            .collect();
        users.sort();
        users
    }

    /// The most lines waiting in one connection's outbox now.
    pub fn outbox_depth_max(&self) -> usize {
        let clients: Vec<Arc<Client>> = self.conns_lock().values().cloned().collect();
        clients.iter().map(|c| c.queued_lines()).max().unwrap_or(0)
    }
}
