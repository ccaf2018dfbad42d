//! What this node does with what the other nodes said: the server's side
//! of the bus seam ([`Deliver`]). The bus's subscriber thread calls it, one
//! event at a time, in the bus's order.
//!
//! It holds the server's state weakly: the state owns the hub, the hub
//! owns the bus, and the bus owns this; a strong handle would make a cycle
//! that kept the database open after the server stopped.

use std::sync::{Arc, Weak};

use crate::bus::{Announcement, Deliver, Event, RemoteDm, Snapshot};
use crate::db::DbError;
use crate::protocol::{Name, ServerLine, Timestamp};

use super::commands::{hand_over_stored_dms, load_room, store_said};
use super::hub::Room;
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
        }
    }

    fn resync(&self, snapshot: Snapshot) {
        if let Some(state) = self.state.upgrade() {
            state.hub.resync(snapshot);
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
            Err(e @ DbError::Failed(_)) | Err(e) => {
                log::error!("a DM for {} from another node was lost: {e}", dm.to);
            }
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
