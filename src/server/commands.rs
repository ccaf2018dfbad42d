//! One function per command: check, act through the hub or the database,
//! reply. This is the only place where `ERR` codes are chosen.
//!
//! Everything here runs on the connection's own reader thread, one line at a
//! time, so a connection's lines are handled strictly in order. The slow
//! steps of a command (hashing a password, waiting for the database to
//! commit) block only this connection's thread, never a lock that anyone
//! else needs: the hub's locks are only taken inside the `Hub` methods, for
//! in-memory steps.
//!
//! The three kinds of failure are decided here: a client mistake is an
//! `ERR` and the connection goes on; a database failure is
//! `ERR SERVER_ERROR`, logged, and nothing half-done remains; a broken
//! connection is not a command's business (the reader loop ends).
//!
//! # What a connection may spend
//!
//! Every line costs a token of the connection's line bucket
//! (`--line-burst`, `--line-rate`), whatever it is; `QUIT` alone is always
//! run. The commands that make the server talk to other people (`SAY`,
//! `DM`, `JOIN`, `LEAVE`, `CREATE`) also cost a token of the message bucket
//! (`--msg-burst`, `--msg-rate`). The commands that cost a password hash are
//! limited before the hash, never after it: `REGISTER` by a server-wide
//! bucket; `LOGIN` by the failed *and in-progress* attempts per user name,
//! and a private room's password by the same count per user and room (see
//! `rate_limit.rs`).

use std::sync::Arc;
use std::time::Instant;

use crate::auth::Verdict;
use crate::bus::{Event, RemoteDm};
use crate::db::{DbError, StoredDm};
use crate::protocol::command::{BAD_CREDENTIALS_TEXT, NO_SUCH_ROOM_TEXT, NO_SUCH_USER_TEXT};
use crate::protocol::text::is_valid_password;
use crate::protocol::{
    ByeReason, Command, ErrCode, LeftReason, LineEvent, Name, ServerLine, Timestamp,
    PROTOCOL_VERSION,
};

use super::client::{Client, Closing, Outgoing};
use super::hub::{JoinError, Room, Said, Spoken};
use super::rate_limit::TokenBucket;
use super::State;

/// What the reader loop does after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next line.
    Continue,
    /// Stop reading: the connection is closing.
    Close,
}

/// What one connection's reader thread knows about its session.
#[derive(Debug)]
pub struct Session {
    /// The shared handle (outbox, membership, user name).
    pub client: Arc<Client>,
    /// `SAY`/`DM`/`JOIN`/`LEAVE`/`CREATE` rate limit of this connection;
    /// owned by this thread alone, so it needs no lock.
    bucket: TokenBucket,
    /// Every line's rate limit of this connection; owned by this thread
    /// alone, like `bucket`.
    lines: TokenBucket,
    /// `/metrics`' count of `ERR RATE_LIMITED` answers (a handle on the
    /// server's counter).
    rate_limited: prometheus_client::metrics::counter::Counter,
}

/// The `HELP` text, one `INFO` line each.
const HELP: &[&str] = &[
    "Commands (words in <> are yours, [] is optional; keywords in any case):",
    "REGISTER <user> <password>   create an account",
    "LOGIN <user> <password>      log in (offline direct messages follow)",
    "ROOMS                        list the rooms",
    "CREATE <room> [<password>]   create a public room, or a private one",
    "JOIN <room> [<password>]     enter a room (leaving the current one)",
    "LEAVE                        leave the current room",
    "SAY <text>                   talk to everyone in your room",
    "WHO                          list who is in your room",
    "DM <user> <text>             send a direct message (kept if offline)",
    "TOPIC                        show your room's topic",
    "PING [<token>]               check that the server is there",
    "HELP                         this text",
    "QUIT                         say goodbye and disconnect",
];

impl Session {
    /// A session for a connection that has just completed its handshake.
    pub fn new(client: Arc<Client>, state: &State) -> Self {
        let now = Instant::now();
        let config = &state.config;
        Session {
            client,
            bucket: TokenBucket::new(config.msg_burst, config.msg_rate, now),
            lines: TokenBucket::new(config.line_burst, config.line_rate, now),
            rate_limited: state.metrics.rate_limited.clone(),
        }
    }

    /// The `HELP` text for this session now: every command of version 1,
    /// then the moderation commands it may use (none before `LOGIN`).
    /// Clients read it to know which moderation controls to show, since
    /// no other line tells a session its role.
    fn help(&self) -> Vec<&'static str> {
        let mut lines = HELP.to_vec();
        let room = self.client.current_room();
        if room.is_some_and(|room| self.may_moderate(&room)) || self.client.is_admin() {
            lines.extend_from_slice(super::moderation::HELP_ROOM);
        }
        if self.client.is_admin() {
            lines.extend_from_slice(super::moderation::HELP_ADMIN);
        }
        lines
    }

    /// Is this connection logged in?
    pub fn logged_in(&self) -> bool {
        self.client.user().is_some()
    }

    /// Queues a reply to this client: its own answer, never a reason to
    /// drop it (see `Client::answer`).
    pub(super) fn reply(&self, line: ServerLine) {
        self.client.answer(&line);
    }

    /// Queues the data lines of a long reply (`ROOMS`, `WHO`, `HELP`) as
    /// the client reads them: in pieces of at most a quarter of the outbox
    /// (in lines and in bytes), waiting for this client's own writer
    /// between pieces until the outbox is back under half. So a reply of
    /// any length arrives whole and never makes its asker a slow consumer,
    /// and what waits for the client stays bounded. The wait is for our
    /// own socket only, with no lock held, and ends at the latest when the
    /// writer gives up (its write deadline).
    ///
    /// Returns `false` if the connection closed on the way (the rest of
    /// the reply is not sent).
    pub(super) fn paced(&self, lines: impl IntoIterator<Item = ServerLine>) -> bool {
        let (piece_lines, piece_bytes) = self.client.piece();
        let (mut lines_in_piece, mut bytes_in_piece) = (0, 0);
        for line in lines {
            let text = format!("{line}\n");
            let full = lines_in_piece == piece_lines
                || (lines_in_piece > 0 && bytes_in_piece + text.len() > piece_bytes);
            if full {
                if !self.client.wait_for_writer() {
                    return false;
                }
                (lines_in_piece, bytes_in_piece) = (0, 0);
            }
            lines_in_piece += 1;
            bytes_in_piece += text.len();
            if !self.client.answer_rendered(text) {
                return false;
            }
        }
        true
    }

    /// Queues `ERR <code> <text>`.
    pub(super) fn err(&self, code: ErrCode, text: impl Into<String>) {
        if code == ErrCode::RateLimited {
            self.rate_limited.inc();
        }
        self.reply(ServerLine::Err {
            code,
            text: text.into(),
        });
    }

    /// Queues `OK <command> <rest>`.
    pub(super) fn ok(&self, command: &str, rest: impl Into<String>) {
        self.reply(ServerLine::Ok {
            command: command.into(),
            rest: rest.into(),
        });
    }

    /// Logs a database failure and tells the client, without details.
    pub(super) fn server_error(&self, what: &str, e: &DbError) {
        log::error!("conn {}: {what}: {e:?}", self.client.id);
        self.err(
            ErrCode::ServerError,
            "The server could not do that; try again.",
        );
    }

    /// The greeting sent once the handshake is done.
    pub fn hello(&self) {
        self.reply(ServerLine::Hello {
            version: PROTOCOL_VERSION,
            software: format!("chat-server/{}", env!("CARGO_PKG_VERSION")),
            text: "Type HELP for commands.".into(),
        });
    }

    /// Handles one event of the line splitter.
    ///
    /// Each event is one line from the client and costs a token of the line
    /// bucket first: a too-long line, a line that is not UTF-8, an empty or
    /// malformed line included, since each costs the server a reply. Over
    /// the limit the line is not run and gets `ERR RATE_LIMITED` instead of
    /// its own reply. `QUIT` alone is run whatever the bucket holds: ending
    /// the connection is what we want from a client that sends too much.
    pub fn handle(&mut self, state: &State, event: LineEvent) -> Flow {
        match event {
            LineEvent::Line(line) => {
                let parsed = Command::parse(&line);
                if !matches!(parsed, Ok(Command::Quit)) && !self.line_allowed() {
                    return Flow::Continue;
                }
                match parsed {
                    Ok(command) => self.dispatch(state, command),
                    Err(e) => {
                        self.err(e.code, e.message);
                        Flow::Continue
                    }
                }
            }
            // A too-long or non-UTF-8 line is a line too.
            _ if !self.line_allowed() => Flow::Continue,
            LineEvent::TooLong => {
                self.err(
                    ErrCode::LineTooLong,
                    format!(
                        "Lines are at most {} bytes; this one was discarded.",
                        state.config.max_line
                    ),
                );
                Flow::Continue
            }
            LineEvent::BadEncoding => {
                self.err(
                    ErrCode::BadEncoding,
                    "That line was not UTF-8; it was discarded.",
                );
                Flow::Continue
            }
        }
    }

    /// Takes a token of the line bucket, or answers `RATE_LIMITED`.
    fn line_allowed(&mut self) -> bool {
        if self.lines.try_take(Instant::now()) {
            return true;
        }
        self.err(
            ErrCode::RateLimited,
            "Too many lines; that one was not run. Slow down.",
        );
        false
    }

    /// Runs one parsed command: the one `match` over the protocol.
    ///
    /// The handlers it calls, here and in `moderation.rs`, are marked
    /// `#[inline(never)]`. Each is called from this one place, so the
    /// compiler would otherwise inline them all, and this function's frame
    /// would hold the locals of every command at once: more than a
    /// kilobyte under every command, `PING` included. A reader thread keeps
    /// every stack page it has ever touched, so that was one more page for
    /// each connected client ("Memory per connection" in
    /// docs/BENCHMARKS.md).
    fn dispatch(&mut self, state: &State, command: Command) -> Flow {
        let needs_login = !matches!(
            command,
            Command::Register { .. }
                | Command::Login { .. }
                | Command::Ping { .. }
                | Command::Help
                | Command::Quit
        );
        if needs_login && !self.logged_in() {
            self.err(
                ErrCode::NotLoggedIn,
                "Log in first: LOGIN <user> <password>.",
            );
            return Flow::Continue;
        }
        match command {
            Command::Register { user, password } => self.register(state, &user, &password),
            Command::Login { user, password } => self.login(state, &user, &password),
            Command::Rooms => self.rooms(state),
            // Charged to the message bucket whatever their outcome: each
            // may be broadcast to a whole room (or, for CREATE, write to
            // the database), like a SAY.
            Command::Create { room, password } => {
                if self.within_rate() {
                    self.create(state, &room, password.as_deref());
                }
            }
            Command::Join { room, password } => {
                if self.within_rate() {
                    self.join(state, &room, password.as_deref());
                }
            }
            Command::Leave => {
                if self.within_rate() {
                    self.leave(state);
                }
            }
            Command::Say { text } => self.say(state, text),
            Command::Who => match state.hub.who(&self.client) {
                Some(members) => {
                    let count = members.len();
                    if self.paced(members.into_iter().map(|name| ServerLine::User { name })) {
                        self.ok("WHO", count.to_string());
                    }
                }
                None => self.err(ErrCode::NotInRoom, "You are not in a room."),
            },
            Command::Dm { user, text } => self.dm(state, &user, text),
            Command::Kick { user, reason } => self.kick(state, &user, reason),
            Command::Ban {
                user,
                minutes,
                reason,
            } => self.ban(state, &user, minutes, reason),
            Command::Unban { user } => self.unban(state, &user),
            Command::Bans => self.bans(state),
            Command::Topic { topic: None } => self.read_topic(state),
            Command::Topic { topic: Some(text) } => self.set_topic(state, text),
            Command::Close { room } => self.close(state, &room),
            Command::Suspend {
                user,
                minutes,
                reason,
            } => self.suspend(state, &user, minutes, reason),
            Command::Unsuspend { user } => self.unsuspend(state, &user),
            Command::Announce { text } => self.announce(state, text),
            Command::Ping { token } => self.reply(ServerLine::Pong { token }),
            Command::Help => {
                let lines = self.help().into_iter().map(|text| ServerLine::Info {
                    text: text.to_string(),
                });
                if self.paced(lines) {
                    self.ok("HELP", "");
                }
            }
            Command::Quit => {
                self.client.close(Closing::Bye(ByeReason::Quit));
                return Flow::Close;
            }
        }
        Flow::Continue
    }

    /// `REGISTER <user> <password>`: hash (this thread waits, no lock held),
    /// then wait for the database to commit before saying OK.
    ///
    /// The syntax was checked by the parser (`BAD_ARGS`, `BAD_NAME`,
    /// `BAD_PASSWORD` first, as for every command); then, before any hash,
    /// `REGISTRATION_CLOSED` if registration is closed, and `RATE_LIMITED`
    /// if the server-wide registration bucket is empty. `USER_EXISTS` comes
    /// last: the database decides it, after the hash.
    #[inline(never)]
    fn register(&self, state: &State, user: &Name, password: &str) {
        if !state.config.registration_open {
            self.err(
                ErrCode::RegistrationClosed,
                "This server does not take new accounts; ask its operator for one.",
            );
            return;
        }
        if !state.registrations.try_take(Instant::now()) {
            log::debug!(
                "conn {}: registration refused: the server-wide limit is reached",
                self.client.id
            );
            self.err(
                ErrCode::RateLimited,
                "Too many new accounts at once on this server; try again in a few seconds.",
            );
            return;
        }
        let hash = match state.hasher.hash(password) {
            Ok(h) => h,
            Err(e) => {
                log::error!("conn {}: hashing failed: {e}", self.client.id);
                self.err(
                    ErrCode::ServerError,
                    "The server could not do that; try again.",
                );
                return;
            }
        };
        match state.db.register(user.as_str(), hash, state.hub.now().0) {
            Ok(stored) => {
                log::info!("conn {}: registered user {stored}", self.client.id);
                self.ok("REGISTER", stored);
            }
            Err(DbError::Exists) => self.err(ErrCode::UserExists, "That user name is taken."),
            Err(e) => self.server_error("register", &e),
        }
    }

    /// `LOGIN <user> <password>`. Every failure is the same line after the
    /// same work (one argon2 verification), whether the user exists or not,
    /// so a guesser learns nothing about which names are registered.
    ///
    /// The attempt takes a place in the name's limit *before* the hash and
    /// keeps it until the verdict is recorded, so parallel guesses of one
    /// name cannot pass `--login-failures`: the ones beyond it are refused
    /// at once, unhashed. A verdict is recorded even if the connection
    /// closed meanwhile (a guesser who sends and hangs up still spends a
    /// guess).
    ///
    /// A connection that closed while its password was being checked (its
    /// peer hung up, or the server closed it) is not logged in: it would
    /// end the user's live session for a client that is already gone.
    #[inline(never)]
    fn login(&self, state: &State, user: &Name, password: &str) {
        if self.logged_in() {
            self.err(
                ErrCode::AlreadyLoggedIn,
                "This connection is logged in already.",
            );
            return;
        }
        let Some(attempt) = state.login_attempts.begin(user.key(), Instant::now()) else {
            state.metrics.logins_failed.inc();
            self.err(
                ErrCode::RateLimited,
                "Too many failed logins for this name; wait a minute.",
            );
            return;
        };
        // From here, a return without a verdict (a database error) drops
        // `attempt`, which gives its place back uncounted.
        let record = match state.db.user(user.as_str()) {
            Ok(r) => r,
            Err(e) => return self.server_error("login lookup", &e),
        };
        let verdict = state
            .hasher
            .verify(password, record.as_ref().map(|r| r.password_hash.as_str()));
        let record = match (verdict, record) {
            (Verdict::Ok | Verdict::OkLegacy, Some(record)) => record,
            _ => {
                if attempt.failed(Instant::now()) {
                    log::warn!("too many failed logins for {user}: refusing it for a minute");
                }
                log::info!(
                    "conn {} ({}): failed login for {user}",
                    self.client.id,
                    self.client.peer
                );
                state.metrics.logins_failed.inc();
                self.err(ErrCode::BadCredentials, BAD_CREDENTIALS_TEXT);
                return;
            }
        };
        let now = state.hub.now().0;
        if let Some(until) = record.suspended_until.filter(|&until| until > now) {
            // The password was right, so saying why is safe.
            attempt.succeeded(Instant::now());
            log::info!(
                "conn {} ({}): refused login of suspended user {}",
                self.client.id,
                self.client.peer,
                record.name
            );
            self.suspended(until);
            return;
        }
        if self.client.closing().is_some() || self.client.peer_has_left() {
            attempt.succeeded(Instant::now());
            log::info!(
                "conn {} ({}): closed while its login as {user} was checked; not logging in",
                self.client.id,
                self.client.peer
            );
            self.client.close(Closing::Silent);
            return;
        }
        if verdict == Verdict::OkLegacy {
            // A password from the Python original (unsalted SHA-256): now
            // that we know it, store it as argon2id. A failure here is not
            // the user's problem; the old hash keeps working.
            match state.hasher.hash_at_login(password) {
                Ok(hash) => match state.db.set_password_hash(&record.name, hash) {
                    Ok(()) => {
                        log::info!("upgraded the password hash of {} to argon2id", record.name)
                    }
                    Err(e) => log::error!("could not upgrade the hash of {}: {e:?}", record.name),
                },
                Err(e) => log::error!("could not hash for the upgrade: {e}"),
            }
        }
        let name = Name::parse(&record.name).unwrap_or_else(|_| user.clone());
        self.client.set_admin(record.admin);
        // `OK LOGIN` is queued in the same step that makes the session
        // visible as online (see `Hub::login`).
        let welcome = ServerLine::Ok {
            command: "LOGIN".into(),
            rest: name.to_string(),
        };
        // No longer one of the connections not logged in: the place is
        // free before the client can read `OK LOGIN`.
        state.unauthenticated.remove(self.client.id);
        // Every node learns of the session before `OK LOGIN` (so a DM sent
        // after it finds the user), and a session on another node is closed
        // there. Asked with no lock held: it may wait for Redis.
        if let Err(e) = state.hub.bus().claim_presence(&name.key(), self.client.id) {
            log::warn!(
                "conn {}: {e}; {name} is online on this node only",
                self.client.id
            );
        }
        if let Err(until) = state.hub.login(&self.client, name.clone(), &welcome) {
            state
                .hub
                .bus()
                .release_presence(&name.key(), self.client.id);
            // Suspended after the account was read: refused like above.
            attempt.succeeded(Instant::now());
            log::info!(
                "conn {}: {name} was suspended while logging in",
                self.client.id
            );
            self.suspended(until);
            return;
        }
        state.metrics.logins_ok.inc();
        // Ended once the session is made (or refused, above): until then a
        // parallel attempt for this name still finds this one in progress.
        attempt.succeeded(Instant::now());
        log::info!(
            "conn {} ({}): logged in as {name}",
            self.client.id,
            self.client.peer
        );
        self.deliver_stored_dms(state, &name);
    }

    /// `ERR SUSPENDED`, naming the end.
    fn suspended(&self, until_ms: i64) {
        self.err(
            ErrCode::Suspended,
            format!(
                "This account is suspended {}.",
                super::moderation::until_text(until_ms)
            ),
        );
    }

    /// Sends the direct messages that waited in the database, oldest first,
    /// deleting each only once it has been written to our socket.
    ///
    /// Each piece is *claimed* (read, not deleted; see `db`'s module doc),
    /// queued, and followed by a marker. This thread waits for its own
    /// writer to signal the marker (waiting on our own client's socket,
    /// never on anyone else's), then deletes exactly those rows and claims
    /// the next piece. The wait has no timeout of its own: the writer has
    /// one for every batch, and a writer that gives up drops the marker,
    /// which ends the wait. Then the claim is dropped, which releases the
    /// rows: they stay stored and come again at the next login. At least
    /// once, never lost.
    ///
    /// A piece is at most a quarter of the outbox, in lines and in bytes,
    /// and the first waits until at most half of it is in use: a backlog of
    /// thousands arrives as the client reads, and is never the reason it is
    /// dropped as a slow consumer.
    fn deliver_stored_dms(&self, state: &State, name: &Name) {
        let (piece, piece_bytes) = self.client.piece();
        if !self.client.wait_for_writer() {
            return;
        }
        loop {
            let mut claim = match state.db.claim_dms(name.as_str(), self.client.id, piece) {
                Ok(claim) => claim,
                Err(e) => {
                    log::error!("conn {}: could not load stored DMs: {e:?}", self.client.id);
                    return;
                }
            };
            if claim.is_empty() {
                return;
            }
            let claimed = claim.len();
            let lines = dm_lines(claim.dms(), piece_bytes);
            claim.truncate(lines.len());
            // Our own reply's data lines: counted in the outbox but never a
            // reason to drop us (each piece waits for the one before it to
            // be written, below).
            for line in lines {
                if !self.client.answer_rendered(line) {
                    // The connection is ending: the claim is released.
                    return;
                }
            }
            if self.client.mark().recv().is_err() {
                // Not written: the writer is gone. The claim is released,
                // and the rows stay stored.
                return;
            }
            let closing = self.client.closing().is_some();
            let sent = claim.len();
            if let Err(e) = claim.delete() {
                log::error!(
                    "conn {}: delivered DMs not deleted (they will come again): {e:?}",
                    self.client.id
                );
                return;
            }
            // A session that is ending (taken over by a new login, say)
            // claims no more: the next session delivers the rest.
            if closing || (sent == claimed && claimed < piece) {
                return;
            }
        }
    }

    /// `ROOMS`: every room, paced as the client reads.
    #[inline(never)]
    fn rooms(&self, state: &State) {
        let rooms = state.hub.list_rooms();
        let count = rooms.len();
        let lines = rooms
            .into_iter()
            .map(|(name, private, online)| ServerLine::Room {
                name,
                private,
                online,
            });
        if self.paced(lines) {
            self.ok("ROOMS", count.to_string());
        }
    }

    /// `CREATE <room> [<password>]`: committed to the database, then visible.
    #[inline(never)]
    fn create(&self, state: &State, room: &Name, password: Option<&str>) {
        if state.hub.room(&room.key()).is_some() {
            // Cheap early answer; the database's UNIQUE is the real judge.
            self.err(ErrCode::RoomExists, "A room with that name exists.");
            return;
        }
        // The limits are looked at before the password is hashed, so that a
        // CREATE that cannot succeed costs no argon2 run; the database
        // counts again when it inserts, and that count is the judge.
        let owner = self.client.display_name();
        match state.db.room_counts(owner) {
            Ok((rooms, _)) if rooms >= state.config.max_rooms => {
                return self.err(ErrCode::TooManyRooms, too_many_rooms_text(state, false));
            }
            Ok((_, owned)) if owned >= state.config.rooms_per_user => {
                return self.err(ErrCode::TooManyRooms, too_many_rooms_text(state, true));
            }
            Ok(_) => {}
            Err(e) => return self.server_error("count rooms", &e),
        }
        let hash = match password.map(|p| state.hasher.hash(p)).transpose() {
            Ok(h) => h,
            Err(e) => {
                log::error!("conn {}: hashing failed: {e}", self.client.id);
                self.err(
                    ErrCode::ServerError,
                    "The server could not do that; try again.",
                );
                return;
            }
        };
        match state
            .db
            .create_room(room.as_str(), hash.clone(), owner, state.hub.now().0)
        {
            Ok((stored, id)) => {
                let name = Name::parse(&stored).unwrap_or_else(|_| room.clone());
                let kind = if hash.is_some() { "private" } else { "public" };
                log::info!(
                    "conn {}: {} created {kind} room {name}",
                    self.client.id,
                    self.client.display_name()
                );
                state
                    .hub
                    .add_room(Room::new(id, name.clone(), hash, Some(owner)));
                // Otherwise the other nodes learn of it at its first JOIN.
                state.hub.tell_others(Event::RoomCreated {
                    room: name.to_string(),
                });
                self.ok("CREATE", name.to_string());
            }
            Err(DbError::Exists) => {
                // Another CREATE of this name committed first, and its
                // thread may not have added the room to the hub yet. Add it
                // from the database now, so that `ROOM_EXISTS` always means
                // "you can JOIN it".
                if state.hub.room(&room.key()).is_none() {
                    if let Ok(Some(record)) = state.db.room(room.as_str()) {
                        if let Some(room) = Room::from_record(record, state.hub.history()) {
                            state.hub.add_room(room);
                        }
                    }
                }
                self.err(ErrCode::RoomExists, "A room with that name exists.")
            }
            // Another CREATE took the last place between the early look
            // and this insert.
            Err(DbError::TooManyRooms) => {
                let owned = matches!(state.db.room_counts(owner),
                    Ok((_, owned)) if owned >= state.config.rooms_per_user);
                self.err(ErrCode::TooManyRooms, too_many_rooms_text(state, owned))
            }
            Err(e) => self.server_error("create room", &e),
        }
    }

    /// `LEAVE`.
    #[inline(never)]
    fn leave(&self, state: &State) {
        match state.hub.leave(&self.client, LeftReason::Leave) {
            Some(room) => self.ok("LEAVE", room.to_string()),
            None => self.err(ErrCode::NotInRoom, "You are not in a room."),
        }
    }

    /// `JOIN <room> [<password>]`. The password is verified before any lock
    /// is taken: hashing takes milliseconds, and nobody may wait for it.
    ///
    /// A private room's password costs an argon2 run, so it is limited like
    /// `LOGIN`: `--room-password-failures` per user per room per minute,
    /// attempts in progress counted. A missing password, or one that breaks
    /// the password rules (no room can have it), is `BAD_ROOM_PASSWORD` at
    /// once: no hash, and not counted, since it is no guess.
    #[inline(never)]
    fn join(&self, state: &State, room: &Name, password: Option<&str>) {
        let Some(target) = state
            .hub
            .room(&room.key())
            .or_else(|| load_room(state, room))
        else {
            self.err(ErrCode::NoSuchRoom, NO_SUCH_ROOM_TEXT);
            return;
        };
        if self
            .client
            .current_room()
            .is_some_and(|r| Arc::ptr_eq(&r, &target))
        {
            self.err(ErrCode::AlreadyInRoom, "You are in that room already.");
            return;
        }
        // Before the password: a ban is the answer whatever it carries.
        let user_key = self.client.user().map(Name::key).unwrap_or_default();
        if let Some(until) = state.hub.banned_until(&target, &user_key) {
            return self.banned(&target, until);
        }
        if let Some(hash) = target.password_hash() {
            let Some(password) = password.filter(|p| is_valid_password(p)) else {
                self.err(ErrCode::BadRoomPassword, "Wrong or missing room password.");
                return;
            };
            let key = (user_key, target.name.key());
            let Some(attempt) = state.room_password_attempts.begin(key, Instant::now()) else {
                self.err(
                    ErrCode::RateLimited,
                    "Too many wrong passwords for this room; wait a minute.",
                );
                return;
            };
            let verdict = state.hasher.verify_room(password, Some(&hash));
            if verdict == Verdict::Bad {
                if attempt.failed(Instant::now()) {
                    log::warn!(
                        "too many wrong passwords for room {} from {}: refusing them for a minute",
                        target.name,
                        self.client.display_name()
                    );
                }
                self.err(ErrCode::BadRoomPassword, "Wrong or missing room password.");
                return;
            }
            attempt.succeeded(Instant::now());
            if verdict == Verdict::OkLegacy {
                // A room password from the Python original (unsalted
                // SHA-256): store it as argon2id now that we know it, as
                // LOGIN does for accounts.
                self.upgrade_room_hash(state, &target, password);
            }
        }
        match state.hub.join(&self.client, &target) {
            Ok(()) => log::debug!(
                "conn {}: {} joined {}",
                self.client.id,
                self.client.display_name(),
                target.name
            ),
            Err(JoinError::AlreadyInRoom) => {
                self.err(ErrCode::AlreadyInRoom, "You are in that room already.")
            }
            Err(JoinError::Banned(until)) => self.banned(&target, until),
            Err(JoinError::Closed) => self.err(ErrCode::NoSuchRoom, NO_SUCH_ROOM_TEXT),
            Err(JoinError::Closing) => {}
        }
    }

    /// Re-hashes a legacy room password with argon2id, in the database and
    /// in the hub. A failure is logged; the old hash keeps working.
    fn upgrade_room_hash(&self, state: &State, room: &Room, password: &str) {
        let hash = match state.hasher.hash(password) {
            Ok(hash) => hash,
            Err(e) => return log::error!("could not hash for the room upgrade: {e}"),
        };
        match state
            .db
            .set_room_password_hash(room.name.as_str(), hash.clone())
        {
            Ok(()) => {
                room.set_password_hash(hash);
                log::info!(
                    "upgraded the password hash of room {} to argon2id",
                    room.name
                );
            }
            Err(e) => log::error!("could not upgrade the hash of room {}: {e:?}", room.name),
        }
    }

    /// Takes a token of the message bucket (`SAY`, `DM`, `JOIN`, `LEAVE`,
    /// `CREATE`), or answers `RATE_LIMITED`.
    pub(super) fn within_rate(&mut self) -> bool {
        if self.bucket.try_take(Instant::now()) {
            return true;
        }
        self.err(ErrCode::RateLimited, "You are sending too fast; slow down.");
        false
    }

    /// `SAY <text>`: no `OK`; the sender's own `MSG` is the confirmation.
    #[inline(never)]
    fn say(&mut self, state: &State, text: String) {
        if !self.within_rate() {
            return;
        }
        match state.hub.say(&self.client, text) {
            Spoken::Said(said) => store_said(state, &said),
            // Stored by this node when the bus brings it back (`remote.rs`).
            Spoken::Published => {}
            Spoken::NotInRoom => self.err(ErrCode::NotInRoom, "Join a room first: JOIN <room>."),
            Spoken::Failed(e) => {
                log::error!("conn {}: {e}", self.client.id);
                self.err(
                    ErrCode::ServerError,
                    "The server could not do that; try again.",
                );
            }
        }
    }

    /// `DM <user> <text>`: delivered now if the user is online, otherwise
    /// committed to the database and delivered at their next login.
    #[inline(never)]
    fn dm(&mut self, state: &State, to: &Name, text: String) {
        if !self.within_rate() {
            return;
        }
        let from = self.client.display_name().to_string();
        let time = state.hub.now();
        if let Some(recipient) = state.hub.online(&to.key()) {
            let line = ServerLine::Dm {
                from: from.clone(),
                time,
                text: text.clone(),
            };
            if recipient.send_dm(format!("{line}\n")) {
                state.metrics.dms_delivered.inc();
                self.ok("DM", format!("{} delivered", recipient.display_name()));
                return;
            }
            // The recipient's outbox was full (it is being dropped as a slow
            // consumer) or its session is closing: keep the DM for its next
            // login instead of losing it. `send_dm` explains why a DM it
            // accepted is never lost either.
        }
        let record = match state.db.user(to.as_str()) {
            Ok(Some(record)) => record,
            Ok(None) => return self.err(ErrCode::NoSuchUser, NO_SUCH_USER_TEXT),
            Err(e) => return self.server_error("dm lookup", &e),
        };
        // Online on another node? That node delivers it, or stores it if
        // the session has just ended there: never neither.
        let remote = RemoteDm {
            to: to.key(),
            from: from.clone(),
            time: time.0,
            text: text.clone(),
        };
        match state.hub.bus().send_dm(&remote) {
            Ok(true) => {
                state.metrics.dms_delivered.inc();
                self.ok("DM", format!("{} delivered", record.name));
                return;
            }
            Ok(false) => {}
            Err(e) => log::warn!("conn {}: {e}; the DM is stored", self.client.id),
        }
        match state.db.store_dm(&record.name, &from, time.0, &text) {
            Ok(()) => {}
            Err(DbError::NoSuchUser) => return self.err(ErrCode::NoSuchUser, NO_SUCH_USER_TEXT),
            Err(DbError::MailboxFull) => {
                return self.err(
                    ErrCode::MailboxFull,
                    format!(
                        "{} has {} messages waiting, the most allowed; try again later.",
                        record.name, state.config.mailbox
                    ),
                )
            }
            Err(e) => return self.server_error("store dm", &e),
        }
        state.metrics.dms_stored.inc();
        self.ok("DM", format!("{} stored", record.name));
        // The recipient may have logged in between our look at the online
        // map and the commit, and its login may have claimed its stored DMs
        // before ours was there. Then we hand ours over ourselves.
        if let Some(recipient) = state.hub.online(&to.key()) {
            hand_over_stored_dms(state, &recipient, &record.name);
        } else {
            // Or on another node, which hands it over itself.
            state.hub.bus().stored_dm(&to.key());
        }
    }
}

/// A room the hub does not have, from the store, if the store has it: one
/// another node created, whose news has not reached this one yet.
pub(super) fn load_room(state: &State, room: &Name) -> Option<Arc<Room>> {
    if !state.hub.bus().shared() {
        return None;
    }
    let record = state.db.room(room.as_str()).ok()??;
    state
        .hub
        .add_room(Room::from_record(record, state.hub.history())?);
    state.hub.room(&room.key())
}

/// Counts a message said here and stores it in the room's history.
///
/// Stored after the room's lock is released: the database queue may make
/// us wait, and nobody else should. The sequence number keeps the stored
/// order equal to the order members saw.
pub(super) fn store_said(state: &State, said: &Said) {
    state.metrics.said_in(&state.hub, &said.room);
    if let Err(e) = state.db.append_history(
        (said.room_id, &said.room),
        said.seq,
        said.time.0,
        &said.user,
        &said.text,
    ) {
        log::error!("history of room {} not stored: {e:?}", said.room);
    }
}

/// The text of `ERR TOO_MANY_ROOMS`: which limit, and what to do.
fn too_many_rooms_text(state: &State, owned: bool) -> String {
    if owned {
        format!(
            "You own {} rooms, the most one account may; use one of them.",
            state.config.rooms_per_user
        )
    } else {
        format!(
            "The server has {} rooms, the most it keeps; join one of them.",
            state.config.max_rooms
        )
    }
}

/// Renders stored DMs as `DM` lines, in order, while they fit in `budget`
/// bytes (always at least one, which fits in any outbox: a line is at most
/// `max_line`, and `queue_bytes` is at least twice that).
fn dm_lines(dms: &[StoredDm], budget: usize) -> Vec<String> {
    let mut lines = Vec::with_capacity(dms.len());
    let mut bytes = 0;
    for dm in dms {
        let line = ServerLine::Dm {
            from: dm.from.clone(),
            time: Timestamp(dm.time_ms),
            text: dm.text.clone(),
        };
        let line = format!("{line}\n");
        bytes += line.len();
        if bytes > budget && !lines.is_empty() {
            break;
        }
        lines.push(line);
    }
    lines
}

/// Delivers to `recipient`, who is online, the stored DMs that its login
/// has not claimed: run by a *sender* that stored a DM while the recipient
/// was logging in.
///
/// Two deliverers never send the same row in the normal case: the claims
/// in the DB thread are serialised, and a claim skips the rows already in
/// flight to the same connection. So whichever of the login and this
/// sender claims a row first sends it, and the other skips it. (Routing
/// every delivery through the recipient's own thread would need a way to
/// wake it while it is blocked reading its socket; the claim needs nothing
/// of the kind.)
///
/// This runs on the sender's thread, which must not wait for another
/// client's writer: the claim is queued behind the lines
/// ([`Outgoing::Claim`]), and the recipient's writer deletes the rows once
/// they are written, or releases them if it never writes them. And only into an outbox at most half full: stored DMs are never
/// the reason a client is dropped as a slow consumer; what does not fit
/// waits for the next login.
pub(super) fn hand_over_stored_dms(state: &State, recipient: &Client, name: &str) {
    if !recipient.below_low_water() {
        return;
    }
    let (piece, piece_bytes) = recipient.piece();
    let mut claim = match state.db.claim_dms(name, recipient.id, piece) {
        Ok(claim) => claim,
        Err(e) => return log::error!("could not load stored DMs for {name}: {e:?}"),
    };
    if claim.is_empty() {
        // The login's delivery has them all in flight.
        return;
    }
    // Offered, not sent: a broadcast may fill the outbox meanwhile, and a
    // stored DM must never be why a client is dropped. What does not fit
    // is released, still stored, for the next delivery.
    let mut queued = 0;
    for line in dm_lines(claim.dms(), piece_bytes) {
        if !recipient.offer(Outgoing::Owned(line)) {
            break;
        }
        queued += 1;
    }
    claim.truncate(queued);
    if queued == 0 {
        return;
    }
    // Not a line: it always fits. If the writer is gone, the claim comes
    // back and is dropped here, which releases it.
    recipient.offer(Outgoing::Claim(claim));
}

/// Stores the `DM` lines that a session's writer took but could not write
/// (see `writer::run`), for the recipient's next login. Each was
/// acknowledged to its sender as delivered, so it must not be lost. Runs
/// on the session's thread once its writer has stopped, with no lock held.
pub(super) fn store_unsent_dms(state: &State, client: &Client, lines: Vec<String>) {
    if lines.is_empty() {
        return;
    }
    // A DM is only ever sent to a session that is logged in.
    let Some(user) = client.user() else { return };
    let mut stored = 0;
    for line in &lines {
        match ServerLine::parse(line.trim_end_matches('\n')) {
            Some(ServerLine::Dm { from, time, text }) => {
                match state.db.restore_dm(user.as_str(), &from, time.0, &text) {
                    Ok(()) => stored += 1,
                    Err(e) => log::error!(
                        "conn {}: a DM for {user} that its connection did not take could not be stored: {e:?}",
                        client.id
                    ),
                }
            }
            _ => log::error!("conn {}: not a DM line: {line:?}", client.id),
        }
    }
    log::info!(
        "conn {}: stored {stored} of {} DMs for {user} that its connection did not take",
        client.id,
        lines.len()
    );
    // The user may be online again already, on a newer connection whose
    // login delivered what was stored before these: hand them over now
    // rather than at the login after.
    if let Some(newer) = state.hub.online(&user.key()) {
        if newer.id != client.id {
            hand_over_stored_dms(state, &newer, user.as_str());
        }
    }
}
