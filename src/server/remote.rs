//! What this node does with what the other nodes said: the server's side
//! of the bus seam ([`Deliver`]). The bus's subscriber thread calls it, one
//! event at a time, in the bus's order.
//!
//! It holds the server's state weakly: the state owns the hub, the hub
//! owns the bus, and the bus owns this; a strong handle would make a cycle
//! that kept the database open after the server stopped.

use std::sync::{Arc, Weak};

use crate::bus::{Announcement, Deliver, Event, RemoteDm, Snapshot, Step};
use crate::protocol::{LeftReason, Name, ServerLine, Timestamp};

use super::client::Closing;
use super::commands::{hand_over_stored_dms, load_room, store_said};
use super::hub::{Ban, Room, Topic};
use super::State;

/// The node, as the bus sees it.
pub(super) struct Remote {
    /// The server's state, while the server runs.
    pub(super) state: Weak<State>,
}

impl Remote {
    /// The room an event names: the hub's, or the store's if another node
    /// created it and its news is still on the way.
    fn room(state: &State, name: &str) -> Option<Arc<Room>> {
        let name = Name::parse(name).ok()?;
        state
            .hub
            .room(&name.key())
            .or_else(|| load_room(state, &name))
    }
}

impl Deliver for Remote {
    fn apply(&self, event: Event) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        match event {
            Event::Msg {
                room,
                seat,
                time,
                text,
                seq,
            } => {
                let Some(room) = Remote::room(&state, &room) else {
                    return;
                };
                if let Some(said) = state.hub.apply_msg(&room, seat, time, text, seq) {
                    store_said(&state, &said);
                }
            }
            Event::Joined { room, seat, quiet } => {
                if let Some(room) = Remote::room(&state, &room) {
                    state.hub.apply_joined(&room, seat, quiet);
                }
            }
            Event::Left { room, seat, reason } => {
                if let Some(room) = Remote::room(&state, &room) {
                    state.hub.apply_left(&room, &seat, reason);
                }
            }
            Event::RoomCreated { room } => {
                let _ = Remote::room(&state, &room);
            }
            Event::NodeGone { node } => state.hub.apply_node_gone(&node),
            Event::Moderated { origin, step } => {
                // Its node applied it when it was taken.
                if origin != state.hub.bus().node() {
                    moderate(&state, step);
                }
            }
        }
    }

    fn resync(&self, snapshot: Snapshot) -> Vec<Event> {
        match self.state.upgrade() {
            Some(state) => state.hub.resync(snapshot),
            None => Vec::new(),
        }
    }

    fn announcement(&self) -> Announcement {
        match self.state.upgrade() {
            Some(state) => state.hub.announcement(),
            None => Announcement::default(),
        }
    }

    fn take_over(&self, user_key: &str, conn: u64) {
        if let Some(state) = self.state.upgrade() {
            state.hub.take_over(user_key, conn);
        }
    }

    fn deliver_dm(&self, dm: RemoteDm) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        if let Some(recipient) = state.hub.online(&dm.to) {
            let line = ServerLine::Dm {
                from: dm.from.clone(),
                time: Timestamp(dm.time),
                text: dm.text.clone(),
            };
            if recipient.send_dm(format!("{line}\n")) {
                return;
            }
        }
        // The session ended between the sender's look and now: keep the DM
        // for the next login, like any DM for a user who is offline. The
        // sender was told `delivered`; what it means across nodes is
        // "handed to the node that held the session" (docs/SCALING.md).
        match state.db.user(&dm.to) {
            Ok(Some(record)) => {
                if let Err(e) = state.db.store_dm(&record.name, &dm.from, dm.time, &dm.text) {
                    log::error!("a DM for {} from another node was lost: {e}", dm.to);
                }
            }
            Ok(None) => log::warn!("a DM for {}, who has no account, was dropped", dm.to),
            Err(e) => log::error!("a DM for {} from another node was lost: {e}", dm.to),
        }
    }

    fn hand_over(&self, user_key: &str) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        if let Some(recipient) = state.hub.online(user_key) {
            let name = recipient.display_name().to_owned();
            hand_over_stored_dms(&state, &recipient, &name);
        }
    }
}

/// Applies to this node's members a moderation step taken on another node
/// (and committed to the shared store there): the same hub calls as the
/// step's own node made, so the same races end the same way.
fn moderate(state: &State, step: Step) {
    let room_of = |name: &str| Remote::room(state, name);
    match step {
        Step::Kick {
            room,
            user,
            by,
            reason,
        } => {
            let Some(room) = room_of(&room) else { return };
            if let Some(target) = state.hub.member(&room, &user) {
                let kicked = ServerLine::Kicked {
                    room: room.name.to_string(),
                    by,
                    reason,
                };
                state.hub.kick(&room, &target, &kicked);
            }
        }
        Step::Ban {
            room,
            user,
            until_ms,
            by,
            reason,
        } => {
            let Some(room) = room_of(&room) else { return };
            let key = user.to_ascii_lowercase();
            state.hub.ban(
                &room,
                Ban {
                    user,
                    until_ms,
                    by: by.clone(),
                },
            );
            if let Some(member) = state.hub.member(&room, &key) {
                let kicked = ServerLine::Kicked {
                    room: room.name.to_string(),
                    by,
                    reason,
                };
                state.hub.kick(&room, &member, &kicked);
            }
        }
        Step::Unban { room, user } => {
            if let Some(room) = room_of(&room) {
                state.hub.unban(&room, &user);
            }
        }
        Step::Topic {
            room,
            by,
            time,
            text,
        } => {
            if let Some(room) = room_of(&room) {
                let topic = Topic {
                    by,
                    time: Timestamp(time),
                    text,
                };
                state.hub.set_topic(&room, topic);
            }
        }
        Step::Close { room, by } => {
            if let Some(room) = room_of(&room) {
                let closed = ServerLine::Closed {
                    room: room.name.to_string(),
                    by,
                };
                state.hub.close(&room, &closed);
            }
        }
        Step::Notice { from, time, text } => {
            let notice = ServerLine::Notice {
                time: Timestamp(time),
                from,
                text,
            };
            state.hub.announce(&notice);
        }
        Step::Suspend { user, until_ms } => {
            if let Some(session) = state.hub.suspend(&user, until_ms) {
                session.close(Closing::Suspended(until_ms));
                state.hub.leave(&session, LeftReason::Quit);
            }
        }
        Step::Unsuspend { user } => state.hub.unsuspend(&user),
    }
}
