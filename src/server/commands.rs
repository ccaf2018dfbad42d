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
//! The three kinds of failure (STYLE H17) are decided here: a client
//! mistake is an `ERR` and the connection goes on; a database failure is
//! `ERR SERVER_ERROR`, logged, and nothing half-done remains; a broken
//! connection is not a command's business (the reader loop ends).

use std::sync::Arc;
use std::time::Instant;

use crate::auth::Verdict;
use crate::db::DbError;
use crate::protocol::command::{BAD_CREDENTIALS_TEXT, NO_SUCH_ROOM_TEXT, NO_SUCH_USER_TEXT};
use crate::protocol::{
    ByeReason, Command, ErrCode, LeftReason, LineEvent, Name, ServerLine, Timestamp,
    PROTOCOL_VERSION,
};

use super::client::{Client, Closing};
use super::hub::{self, JoinError, Room};
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
    /// `SAY`/`DM` rate limit of this connection; owned by this thread alone,
    /// so it needs no lock.
    bucket: TokenBucket,
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
    "PING [<token>]               check that the server is there",
    "HELP                         this text",
    "QUIT                         say goodbye and disconnect",
];

impl Session {
    /// A session for a connection that has just completed its handshake.
    pub fn new(client: Arc<Client>, state: &State) -> Self {
        let bucket = TokenBucket::new(
            state.config.msg_burst,
            state.config.msg_rate,
            Instant::now(),
        );
        Session { client, bucket }
    }

    /// Is this connection logged in?
    pub fn logged_in(&self) -> bool {
        self.client.user().is_some()
    }

    /// Queues a reply to this client: its own answer, never a reason to
    /// drop it (see `Client::answer`).
    fn reply(&self, line: ServerLine) {
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
    fn paced(&self, lines: impl IntoIterator<Item = ServerLine>) -> bool {
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
    fn err(&self, code: ErrCode, text: impl Into<String>) {
        self.reply(ServerLine::Err {
            code,
            text: text.into(),
        });
    }

    /// Queues `OK <command> <rest>`.
    fn ok(&self, command: &str, rest: impl Into<String>) {
        self.reply(ServerLine::Ok {
            command: command.into(),
            rest: rest.into(),
        });
    }

    /// Logs a database failure and tells the client, without details.
    fn server_error(&self, what: &str, e: &DbError) {
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
    pub fn handle(&mut self, state: &State, event: LineEvent) -> Flow {
        match event {
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
            LineEvent::Line(line) => match Command::parse(&line) {
                Ok(command) => self.dispatch(state, command),
                Err(e) => {
                    self.err(e.code, e.message);
                    Flow::Continue
                }
            },
        }
    }

    /// Runs one parsed command: the one `match` over the protocol (H5).
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
            Command::Create { room, password } => self.create(state, &room, password.as_deref()),
            Command::Join { room, password } => self.join(state, &room, password.as_deref()),
            Command::Leave => match state.hub.leave(&self.client, LeftReason::Leave) {
                Some(room) => self.ok("LEAVE", room.to_string()),
                None => self.err(ErrCode::NotInRoom, "You are not in a room."),
            },
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
            Command::Ping { token } => self.reply(ServerLine::Pong { token }),
            Command::Help => {
                let lines = HELP.iter().map(|text| ServerLine::Info {
                    text: (*text).to_string(),
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

    /// `REGISTER <user> <password>`: hash here (this thread, no lock held),
    /// then wait for the database to commit before saying OK.
    fn register(&self, state: &State, user: &Name, password: &str) {
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
        match state.db.register(user.as_str(), hash, hub::now().0) {
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
    fn login(&self, state: &State, user: &Name, password: &str) {
        if self.logged_in() {
            self.err(
                ErrCode::AlreadyLoggedIn,
                "This connection is logged in already.",
            );
            return;
        }
        let key = user.key();
        if state.failed_logins().is_blocked(&key, Instant::now()) {
            self.err(
                ErrCode::RateLimited,
                "Too many failed logins for this name; wait a minute.",
            );
            return;
        }
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
                if state.failed_logins().record_failure(&key, Instant::now()) {
                    log::warn!("too many failed logins for {user}: refusing it for a minute");
                }
                log::info!(
                    "conn {} ({}): failed login for {user}",
                    self.client.id,
                    self.client.peer
                );
                self.err(ErrCode::BadCredentials, BAD_CREDENTIALS_TEXT);
                return;
            }
        };
        state.failed_logins().record_success(&key);
        if verdict == Verdict::OkLegacy {
            // A password from the Python original (unsalted SHA-256): now
            // that we know it, store it as argon2id. A failure here is not
            // the user's problem; the old hash keeps working.
            match state.hasher.hash(password) {
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
        self.client.set_user(name.clone());
        // `OK LOGIN` is queued in the same step that makes the session
        // visible as online (see `Hub::login`).
        let welcome = ServerLine::Ok {
            command: "LOGIN".into(),
            rest: name.to_string(),
        };
        state.hub.login(&self.client, &welcome);
        log::info!(
            "conn {} ({}): logged in as {name}",
            self.client.id,
            self.client.peer
        );
        self.deliver_stored_dms(state, &name);
    }

    /// Sends the direct messages that waited in the database, oldest first.
    ///
    /// A stored DM is deleted only in the same step that hands it to our
    /// outbox, and only as many at a time as the outbox can surely hold:
    /// a quarter of it, queued when the writer has taken the piece before
    /// (and, for the first, when at most half of the outbox is in use). A
    /// backlog of thousands arrives in pieces, and none is lost to a full
    /// outbox. Between pieces this thread waits for *its own* writer, told
    /// by a marker queued after each piece; that is waiting on our own
    /// client's socket, never on anyone else, and is bounded by the write
    /// timeout (what is left stays stored for the next login).
    fn deliver_stored_dms(&self, state: &State, name: &Name) {
        let capacity = state.config.queue_lines;
        let piece = (capacity / 4).max(1);
        let deadline = Instant::now() + state.config.write_timeout;
        // Queued after the previous piece; its signal means the writer has
        // taken that piece.
        let mut marker = (self.client.queued() > capacity / 2).then(|| self.client.mark());
        loop {
            if let Some(previous) = marker.take() {
                let left = deadline.saturating_duration_since(Instant::now());
                if previous.recv_timeout(left).is_err() || self.client.closing().is_some() {
                    return;
                }
            }
            let dms = match state.db.take_dms(name.as_str(), piece) {
                Ok(dms) => dms,
                Err(e) => {
                    log::error!("conn {}: could not load stored DMs: {e:?}", self.client.id);
                    return;
                }
            };
            let taken = dms.len();
            for dm in dms {
                self.reply(ServerLine::Dm {
                    from: dm.from,
                    time: Timestamp(dm.time_ms),
                    text: dm.text,
                });
            }
            if taken < piece {
                return;
            }
            marker = Some(self.client.mark());
        }
    }

    /// `ROOMS`: every room, paced as the client reads.
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
    fn create(&self, state: &State, room: &Name, password: Option<&str>) {
        if state.hub.room(&room.key()).is_some() {
            // Cheap early answer; the database's UNIQUE is the real judge.
            self.err(ErrCode::RoomExists, "A room with that name exists.");
            return;
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
            .create_room(room.as_str(), hash.clone(), hub::now().0)
        {
            Ok(stored) => {
                let name = Name::parse(&stored).unwrap_or_else(|_| room.clone());
                let kind = if hash.is_some() { "private" } else { "public" };
                log::info!(
                    "conn {}: {} created {kind} room {name}",
                    self.client.id,
                    self.client.display_name()
                );
                state.hub.add_room(Room::new(name.clone(), hash));
                self.ok("CREATE", name.to_string());
            }
            Err(DbError::Exists) => {
                // Another CREATE of this name committed first, and its
                // thread may not have added the room to the hub yet. Add it
                // from the database now, so that `ROOM_EXISTS` always means
                // "you can JOIN it".
                if state.hub.room(&room.key()).is_none() {
                    if let Ok(Some((name, hash))) = state.db.room(room.as_str()) {
                        if let Ok(name) = Name::parse(&name) {
                            state.hub.add_room(Room::new(name, hash));
                        }
                    }
                }
                self.err(ErrCode::RoomExists, "A room with that name exists.")
            }
            Err(e) => self.server_error("create room", &e),
        }
    }

    /// `JOIN <room> [<password>]`. The password is verified before any lock
    /// is taken: hashing takes milliseconds, and nobody may wait for it.
    fn join(&self, state: &State, room: &Name, password: Option<&str>) {
        let Some(target) = state.hub.room(&room.key()) else {
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
        if let Some(hash) = target.password_hash() {
            let verdict = password.map_or(Verdict::Bad, |p| state.hasher.verify(p, Some(&hash)));
            if verdict == Verdict::Bad {
                self.err(ErrCode::BadRoomPassword, "Wrong or missing room password.");
                return;
            }
            if verdict == Verdict::OkLegacy {
                // A room password from the Python original (unsalted
                // SHA-256): store it as argon2id now that we know it, as
                // LOGIN does for accounts.
                self.upgrade_room_hash(state, &target, password.unwrap_or_default());
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

    /// Takes a token for `SAY`/`DM`, or answers `RATE_LIMITED`.
    fn within_rate(&mut self) -> bool {
        if self.bucket.try_take(Instant::now()) {
            return true;
        }
        self.err(ErrCode::RateLimited, "You are sending too fast; slow down.");
        false
    }

    /// `SAY <text>`: no `OK`; the sender's own `MSG` is the confirmation.
    fn say(&mut self, state: &State, text: String) {
        if !self.within_rate() {
            return;
        }
        let Some(said) = state.hub.say(&self.client, text) else {
            self.err(ErrCode::NotInRoom, "Join a room first: JOIN <room>.");
            return;
        };
        // Stored after the room's lock is released: the database queue may
        // make us wait, and nobody else should. The sequence number keeps
        // the stored order equal to the order members saw.
        if let Err(e) =
            state
                .db
                .append_history(&said.room, said.seq, said.time.0, &said.user, &said.text)
        {
            log::error!("conn {}: history not stored: {e:?}", self.client.id);
        }
    }

    /// `DM <user> <text>`: delivered now if the user is online, otherwise
    /// committed to the database and delivered at their next login.
    fn dm(&mut self, state: &State, to: &Name, text: String) {
        if !self.within_rate() {
            return;
        }
        let from = self.client.display_name().to_string();
        let time = hub::now();
        if let Some(recipient) = state.hub.online(&to.key()) {
            let line = ServerLine::Dm {
                from: from.clone(),
                time,
                text: text.clone(),
            };
            if recipient.send_dm(format!("{line}\n")) {
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
        match state.db.store_dm(&record.name, &from, time.0, &text) {
            Ok(()) => {}
            Err(DbError::NoSuchUser) => return self.err(ErrCode::NoSuchUser, NO_SUCH_USER_TEXT),
            Err(e) => return self.server_error("store dm", &e),
        }
        self.ok("DM", format!("{} stored", record.name));
        // The recipient may have logged in between our look at the online
        // map and the commit, and already fetched its stored messages. Then
        // we hand them over ourselves. `take_dms` removes what it returns in
        // one step, so each stored message goes out once: by the login or by
        // us. If the recipient cannot take one after all, it is stored again.
        if let Some(recipient) = state.hub.online(&to.key()) {
            let piece = (state.config.queue_lines / 4).max(1);
            let Ok(dms) = state.db.take_dms(&record.name, piece) else {
                return;
            };
            let mut delivering = true;
            for dm in dms {
                let line = ServerLine::Dm {
                    from: dm.from.clone(),
                    time: Timestamp(dm.time_ms),
                    text: dm.text.clone(),
                };
                delivering = delivering && recipient.reply(&line);
                if !delivering {
                    if let Err(e) = state
                        .db
                        .store_dm(&record.name, &dm.from, dm.time_ms, &dm.text)
                    {
                        log::error!(
                            "conn {}: a DM could not be stored again: {e:?}",
                            self.client.id
                        );
                    }
                }
            }
        }
    }
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
                match state.db.store_dm(user.as_str(), &from, time.0, &text) {
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
}
