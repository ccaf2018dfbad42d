//! The moderation commands: `KICK`, `BAN`, `UNBAN`, `BANS`, `TOPIC`,
//! `CLOSE`, `SUSPEND`, `UNSUSPEND` and `ANNOUNCE`, one method each, in the
//! same style as `commands.rs`: check, act through the database and the
//! hub, reply.
//!
//! # Who may
//!
//! An **admin** (a flag on the account, given only by `server user admin`,
//! read at `LOGIN`) may moderate every room. The **owner** of a room (the
//! account that created it) may moderate that room. Nobody may kick, ban
//! or suspend themselves or an admin. `NOT_ALLOWED`'s text says which role
//! was needed.
//!
//! # In which order
//!
//! What must survive a restart (a ban, a suspension, a topic, a closed
//! room) is committed first, then done in the hub, then answered: an `OK`
//! means committed, and a failed commit changes nothing. A kick and an
//! announcement change nothing that lasts: they are done, then logged.
//! Every action is written to the server's log and to the `moderation`
//! table (see `db/moderation.rs`). The races between an action and what
//! its target is doing at that moment are settled by the hub's locks (see
//! "Moderation" in `hub.rs`).
//!
//! # Limits
//!
//! A moderation command that changes something costs a token of the
//! message bucket, like a `SAY`; `BANS` and reading the `TOPIC` cost only
//! the line token every line costs, like `WHO`. `BANS` is paced like `WHO`.

use std::sync::Arc;

use crate::bus::{Event, Step};
use crate::db::{Action, DbError, Moderation, FOREVER};
use crate::protocol::command::{NO_SUCH_ROOM_TEXT, NO_SUCH_USER_TEXT};
use crate::protocol::{ErrCode, LeftReason, Name, ServerLine, Timestamp};

use super::client::Closing;
use super::commands::Session;
use super::hub::{Ban, Room, Topic};
use super::State;

/// `NOT_ALLOWED` for a member who is neither the room's owner nor an admin.
const OWNER_OR_ADMIN: &str = "Only the room's owner or an admin may do that.";

/// `NOT_ALLOWED` for a command only admins have.
const ADMIN_ONLY: &str = "Only an admin may do that.";

/// `NOT_ALLOWED` for a moderator aiming at themselves.
const NOT_YOURSELF: &str = "You cannot do that to yourself.";

/// `NOT_ALLOWED` for a moderator aiming at an admin.
const NOT_AN_ADMIN: &str = "Admins cannot be kicked, banned or suspended.";

/// The `HELP` lines of the room moderation commands, for an admin or the
/// owner of the room the session is in.
pub(super) const HELP_ROOM: &[&str] = &[
    "KICK <user> [<reason>]       put a member out of your room",
    "BAN <user> [<minutes>] [<reason>]  keep a user out of your room (for good without minutes)",
    "UNBAN <user>                 lift a ban from your room",
    "BANS                         list the bans of your room",
    "TOPIC <topic>                set your room's topic",
    "CLOSE <room>                 delete a room, its history, bans and topic",
];

/// The `HELP` lines of the admin commands.
pub(super) const HELP_ADMIN: &[&str] = &[
    "SUSPEND <user> [<minutes>] [<reason>]  keep a user from logging in",
    "UNSUSPEND <user>             lift a suspension",
    "ANNOUNCE <text>              send a notice to everybody logged in",
];

/// "until <time>", or "until lifted": the end of a ban or a suspension, as
/// the `BANNED`/`SUSPENDED` texts say it.
pub(super) fn until_text(until_ms: i64) -> String {
    if until_ms == FOREVER {
        "until lifted".to_owned()
    } else {
        format!("until {}", Timestamp(until_ms))
    }
}

/// The end of a ban or suspension of `minutes` from `now`; [`FOREVER`]
/// without minutes.
fn end(now: Timestamp, minutes: Option<u32>) -> i64 {
    minutes.map_or(FOREVER, |m| now.0.saturating_add(i64::from(m) * 60_000))
}

/// `FOREVER` as the database stores it: `NULL`.
fn stored_end(until_ms: i64) -> Option<i64> {
    (until_ms != FOREVER).then_some(until_ms)
}

/// " (reason)" for the server's log, or nothing.
fn because(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason:?}")
    }
}

impl Session {
    /// This session's user, as registered.
    fn me(&self) -> &str {
        self.client.display_name()
    }

    /// Is `user` this session's user?
    fn is_me(&self, user: &Name) -> bool {
        self.client.user().is_some_and(|me| me.key() == user.key())
    }

    /// May this session moderate `room`?
    pub(super) fn may_moderate(&self, room: &Room) -> bool {
        self.client.is_admin()
            || self
                .client
                .user()
                .is_some_and(|me| room.is_owned_by(&me.key()))
    }

    /// The room this session is in, if it may moderate it; otherwise the
    /// error is sent and `None` returned.
    fn moderated_room(&self) -> Option<Arc<Room>> {
        let Some(room) = self.client.current_room() else {
            self.err(ErrCode::NotInRoom, "You are not in a room.");
            return None;
        };
        if !self.may_moderate(&room) {
            self.err(ErrCode::NotAllowed, OWNER_OR_ADMIN);
            return None;
        }
        Some(room)
    }

    /// May this session ban or suspend the account `user`? Not itself, not
    /// an admin (by the account, or by the role its online session read
    /// at login), and only an account that exists; otherwise the error is
    /// sent.
    fn may_target(&self, state: &State, user: &Name) -> bool {
        if self.is_me(user) {
            self.err(ErrCode::NotAllowed, NOT_YOURSELF);
            return false;
        }
        let online_admin = state.hub.online(&user.key()).is_some_and(|c| c.is_admin());
        match state.db.user(user.as_str()) {
            Ok(Some(record)) if record.admin || online_admin => {
                self.err(ErrCode::NotAllowed, NOT_AN_ADMIN);
                false
            }
            Ok(Some(_)) => true,
            Ok(None) => {
                self.err(ErrCode::NoSuchUser, NO_SUCH_USER_TEXT);
                false
            }
            Err(e) => {
                self.server_error("moderation lookup", &e);
                false
            }
        }
    }

    /// Is this session an admin? Otherwise the error is sent.
    fn admin(&self) -> bool {
        if !self.client.is_admin() {
            self.err(ErrCode::NotAllowed, ADMIN_ONLY);
        }
        self.client.is_admin()
    }

    /// Commits `action`, done at `time`, with its log row; on an error, sends the `ERR` the
    /// error means (`not_found` for [`DbError::NotFound`]) and returns
    /// `None`.
    fn commit(
        &self,
        state: &State,
        (action, time): (Action, Timestamp),
        not_found: (ErrCode, &str),
    ) -> Option<String> {
        let moderation = Moderation {
            actor: self.me().to_owned(),
            time_ms: time.0,
            action,
        };
        match state.db.moderate(moderation) {
            Ok(target) => Some(target),
            Err(DbError::NoSuchUser) => {
                self.err(ErrCode::NoSuchUser, NO_SUCH_USER_TEXT);
                None
            }
            Err(DbError::NotFound) => {
                self.err(not_found.0, not_found.1);
                None
            }
            Err(e) => {
                self.server_error("moderation", &e);
                None
            }
        }
    }

    /// Writes an action that changed nothing lasting (a kick, a notice) to
    /// the moderation log; a failure is the server's log's business, not
    /// the moderator's: the action happened.
    fn log_action(&self, state: &State, action: Action) {
        let moderation = Moderation {
            actor: self.me().to_owned(),
            time_ms: state.hub.now().0,
            action,
        };
        if let Err(e) = state.db.moderate(moderation) {
            log::error!(
                "conn {}: moderation not written to the database: {e}",
                self.client.id
            );
        }
    }

    /// `ERR BANNED` for a `JOIN` of `room`, banned until `until_ms`.
    pub(super) fn banned(&self, room: &Room, until_ms: i64) {
        self.err(
            ErrCode::Banned,
            format!(
                "You are banned from {} {}.",
                room.name,
                until_text(until_ms)
            ),
        );
    }

    /// `KICK <user> [<reason>]`.
    #[inline(never)]
    pub(super) fn kick(&mut self, state: &State, user: &Name, reason: Option<String>) {
        if !self.within_rate() {
            return;
        }
        let Some(room) = self.moderated_room() else {
            return;
        };
        if self.is_me(user) {
            return self.err(ErrCode::NotAllowed, NOT_YOURSELF);
        }
        let Some(target) = state.hub.member(&room, &user.key()) else {
            return self.kick_elsewhere(state, &room, user, reason);
        };
        if target.is_admin() {
            return self.err(ErrCode::NotAllowed, NOT_AN_ADMIN);
        }
        let reason = reason.unwrap_or_default();
        let kicked = ServerLine::Kicked {
            room: room.name.to_string(),
            by: self.me().to_owned(),
            reason: reason.clone(),
        };
        if !state.hub.kick(&room, &target, &kicked) {
            // It left on its own between the look and the kick.
            return self.err(
                ErrCode::NoSuchUser,
                format!("{user} is not in {}.", room.name),
            );
        }
        let name = target.display_name().to_owned();
        self.kicked(state, &room, name, reason, "");
    }

    /// A kick done (or, for a member on another node, sent on its way):
    /// logged, written to the moderation log, answered.
    fn kicked(&mut self, state: &State, room: &Room, name: String, reason: String, where_: &str) {
        log::info!(
            "moderation: {} kicked {name}{where_} from {}{}",
            self.me(),
            room.name,
            because(&reason)
        );
        self.log_action(
            state,
            Action::Kick {
                room_id: room.id,
                room: room.name.to_string(),
                target: name.clone(),
                reason,
            },
        );
        self.ok("KICK", name);
    }

    /// `KICK` of a member who sits on another node: that node puts it out
    /// when the bus brings the step (`LEFT … kick` follows through the bus
    /// for everyone).
    fn kick_elsewhere(
        &mut self,
        state: &State,
        room: &Arc<Room>,
        user: &Name,
        reason: Option<String>,
    ) {
        let Some(name) = state.hub.seated_elsewhere(room, &user.key()) else {
            return self.err(
                ErrCode::NoSuchUser,
                format!("{user} is not in {}.", room.name),
            );
        };
        if !self.may_target(state, user) {
            return;
        }
        let reason = reason.unwrap_or_default();
        tell_others(
            state,
            Step::Kick {
                room: room.name.to_string(),
                user: user.key(),
                by: self.me().to_owned(),
                reason: reason.clone(),
            },
        );
        self.kicked(state, room, name, reason, " (on another node)");
    }

    /// `BAN <user> [<minutes>] [<reason>]`: committed, put where `JOIN`
    /// looks, and the user kicked if present.
    #[inline(never)]
    pub(super) fn ban(
        &mut self,
        state: &State,
        user: &Name,
        minutes: Option<u32>,
        reason: Option<String>,
    ) {
        if !self.within_rate() {
            return;
        }
        let Some(room) = self.moderated_room() else {
            return;
        };
        if !self.may_target(state, user) {
            return;
        }
        let now = state.hub.now();
        let until_ms = end(now, minutes);
        let reason = reason.unwrap_or_default();
        let action = Action::Ban {
            room_id: room.id,
            room: room.name.to_string(),
            target: user.to_string(),
            until_ms: stored_end(until_ms),
            reason: reason.clone(),
        };
        let Some(name) = self.commit(
            state,
            (action, now),
            (ErrCode::NoSuchUser, NO_SUCH_USER_TEXT),
        ) else {
            return;
        };
        state.hub.ban(
            &room,
            Ban {
                user: name.clone(),
                until_ms,
                by: self.me().to_owned(),
            },
        );
        tell_others(
            state,
            Step::Ban {
                room: room.name.to_string(),
                user: name.clone(),
                until_ms,
                by: self.me().to_owned(),
                reason: reason.clone(),
            },
        );
        // Looked for again: it may have joined since the first look, before
        // the ban was in place.
        if let Some(member) = state.hub.member(&room, &user.key()) {
            let kicked = ServerLine::Kicked {
                room: room.name.to_string(),
                by: self.me().to_owned(),
                reason: reason.clone(),
            };
            state.hub.kick(&room, &member, &kicked);
        }
        log::info!(
            "moderation: {} banned {name} from {} {}{}",
            self.me(),
            room.name,
            until_text(until_ms),
            because(&reason)
        );
        self.ok("BAN", name);
    }

    /// `UNBAN <user>`.
    #[inline(never)]
    pub(super) fn unban(&mut self, state: &State, user: &Name) {
        if !self.within_rate() {
            return;
        }
        let Some(room) = self.moderated_room() else {
            return;
        };
        let action = Action::Unban {
            room_id: room.id,
            room: room.name.to_string(),
            target: user.to_string(),
        };
        let not_banned = format!("{user} is not banned from {}.", room.name);
        let done = (action, state.hub.now());
        let Some(name) = self.commit(state, done, (ErrCode::NotBanned, &not_banned)) else {
            return;
        };
        state.hub.unban(&room, &user.key());
        tell_others(
            state,
            Step::Unban {
                room: room.name.to_string(),
                user: user.key(),
            },
        );
        log::info!(
            "moderation: {} unbanned {name} from {}",
            self.me(),
            room.name
        );
        self.ok("UNBAN", name);
    }

    /// `BANS`: the bans in force in the current room, paced like `WHO`.
    #[inline(never)]
    pub(super) fn bans(&self, state: &State) {
        let Some(room) = self.moderated_room() else {
            return;
        };
        let bans = state.hub.bans(&room);
        let count = bans.len();
        let lines = bans.into_iter().map(|ban| ServerLine::Banned {
            room: room.name.to_string(),
            user: ban.user,
            until: (ban.until_ms != FOREVER).then_some(Timestamp(ban.until_ms)),
            by: ban.by,
        });
        if self.paced(lines) {
            self.ok("BANS", count.to_string());
        }
    }

    /// `TOPIC`: the current topic, for any member.
    #[inline(never)]
    pub(super) fn read_topic(&self, state: &State) {
        let Some(room) = self.client.current_room() else {
            return self.err(ErrCode::NotInRoom, "You are not in a room.");
        };
        if let Some(line) = state.hub.topic(&room) {
            self.reply(line);
        }
        self.ok("TOPIC", "");
    }

    /// `TOPIC <topic>`: committed, then sent to every member.
    #[inline(never)]
    pub(super) fn set_topic(&mut self, state: &State, text: String) {
        if !self.within_rate() {
            return;
        }
        let Some(room) = self.moderated_room() else {
            return;
        };
        let action = Action::Topic {
            room_id: room.id,
            room: room.name.to_string(),
            topic: text.clone(),
        };
        // One time for the database and the TOPIC line: a restart shows
        // the same.
        let now = state.hub.now();
        if self
            .commit(
                state,
                (action, now),
                (ErrCode::NoSuchRoom, NO_SUCH_ROOM_TEXT),
            )
            .is_none()
        {
            return;
        }
        log::info!(
            "moderation: {} set the topic of {}: {text:?}",
            self.me(),
            room.name
        );
        tell_others(
            state,
            Step::Topic {
                room: room.name.to_string(),
                by: self.me().to_owned(),
                time: now.0,
                text: text.clone(),
            },
        );
        let topic = Topic {
            by: self.me().to_owned(),
            time: now,
            text,
        };
        state.hub.set_topic(&room, topic);
        self.ok("TOPIC", "");
    }

    /// `CLOSE <room>`: deleted from the database, then from the hub, whose
    /// members are told and put in no room.
    #[inline(never)]
    pub(super) fn close(&mut self, state: &State, name: &Name) {
        if !self.within_rate() {
            return;
        }
        let Some(room) = state.hub.room(&name.key()) else {
            return self.err(ErrCode::NoSuchRoom, NO_SUCH_ROOM_TEXT);
        };
        if !self.may_moderate(&room) {
            return self.err(ErrCode::NotAllowed, OWNER_OR_ADMIN);
        }
        let action = Action::Close {
            room_id: room.id,
            room: room.name.to_string(),
        };
        if self
            .commit(
                state,
                (action, state.hub.now()),
                (ErrCode::NoSuchRoom, NO_SUCH_ROOM_TEXT),
            )
            .is_none()
        {
            return;
        }
        let closed = ServerLine::Closed {
            room: room.name.to_string(),
            by: self.me().to_owned(),
        };
        let members = state.hub.close(&room, &closed);
        tell_others(
            state,
            Step::Close {
                room: room.name.to_string(),
                by: self.me().to_owned(),
            },
        );
        log::info!(
            "moderation: {} closed room {} ({members} members)",
            self.me(),
            room.name
        );
        self.ok("CLOSE", room.name.to_string());
    }

    /// `SUSPEND <user> [<minutes>] [<reason>]`: committed, noted where
    /// `LOGIN` looks, and the user's session closed with `BYE SUSPENDED`.
    #[inline(never)]
    pub(super) fn suspend(
        &mut self,
        state: &State,
        user: &Name,
        minutes: Option<u32>,
        reason: Option<String>,
    ) {
        if !self.within_rate() || !self.admin() {
            return;
        }
        if !self.may_target(state, user) {
            return;
        }
        let now = state.hub.now();
        let until_ms = end(now, minutes);
        let reason = reason.unwrap_or_default();
        let action = Action::Suspend {
            target: user.to_string(),
            until_ms: stored_end(until_ms),
            reason: reason.clone(),
        };
        let Some(name) = self.commit(
            state,
            (action, now),
            (ErrCode::NoSuchUser, NO_SUCH_USER_TEXT),
        ) else {
            return;
        };
        tell_others(
            state,
            Step::Suspend {
                user: user.key(),
                until_ms,
            },
        );
        if let Some(session) = state.hub.suspend(&user.key(), until_ms) {
            // As a takeover does: closed first, so that a JOIN it is making
            // now does nothing, then out of its room.
            session.close(Closing::Suspended(until_ms));
            state.hub.leave(&session, LeftReason::Quit);
        }
        log::info!(
            "moderation: {} suspended {name} {}{}",
            self.me(),
            until_text(until_ms),
            because(&reason)
        );
        self.ok("SUSPEND", name);
    }

    /// `UNSUSPEND <user>`.
    #[inline(never)]
    pub(super) fn unsuspend(&mut self, state: &State, user: &Name) {
        if !self.within_rate() || !self.admin() {
            return;
        }
        let action = Action::Unsuspend {
            target: user.to_string(),
        };
        let not_suspended = format!("{user} is not suspended.");
        let done = (action, state.hub.now());
        let Some(name) = self.commit(state, done, (ErrCode::NotSuspended, &not_suspended)) else {
            return;
        };
        state.hub.unsuspend(&user.key());
        tell_others(state, Step::Unsuspend { user: user.key() });
        log::info!("moderation: {} lifted the suspension of {name}", self.me());
        self.ok("UNSUSPEND", name);
    }

    /// `ANNOUNCE <text>`: a `NOTICE` to every logged-in connection.
    #[inline(never)]
    pub(super) fn announce(&mut self, state: &State, text: String) {
        if !self.within_rate() || !self.admin() {
            return;
        }
        let time = state.hub.now();
        let notice = ServerLine::Notice {
            time,
            from: self.me().to_owned(),
            text: text.clone(),
        };
        tell_others(
            state,
            Step::Notice {
                from: self.me().to_owned(),
                time: time.0,
                text: text.clone(),
            },
        );
        let here = state.hub.announce(&notice);
        // Users online on every node, if the bus can count them.
        let reached = state.hub.bus().sessions().map_or(here, |all| all.max(here));
        log::info!(
            "moderation: {} announced to {reached} connections: {text:?}",
            self.me()
        );
        self.log_action(state, Action::Announce { text });
        self.ok("ANNOUNCE", reached.to_string());
    }
}

/// Tells the other nodes of a moderation step this node has taken (and
/// committed) already; nothing to do on a server alone.
fn tell_others(state: &State, step: Step) {
    let origin = state.hub.bus().node().to_owned();
    state.hub.tell_others(Event::Moderated { origin, step });
}
