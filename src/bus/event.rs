//! What travels between nodes: room events, DMs and the snapshot of who
//! sits where, and their text form on the wire (one JSON object each).
//!
//! JSON because Redis carries strings, because a student can read the
//! traffic with `redis-cli SUBSCRIBE chat:events`, and because chat text
//! may hold any character the protocol allows: `serde_json` quotes it.

use serde_json::{json, Value};

use crate::protocol::LeftReason;

/// A member's place in a room, as every node knows it: which node holds
/// the connection, which connection, and the user's name as registered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Seat {
    /// The node that holds the connection.
    pub node: String,
    /// The connection's number on that node.
    pub conn: u64,
    /// The user, as registered.
    pub user: String,
}

impl Seat {
    /// The seat as one string, `node/conn/user`: its member in the room's
    /// Redis set. Node names and user names never contain `/`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.node, self.conn, self.user)
    }

    /// The seat a [`key`](Self::key) names.
    pub fn from_key(key: &str) -> Option<Seat> {
        let mut parts = key.splitn(3, '/');
        let node = parts.next()?.to_owned();
        let conn = parts.next()?.parse().ok()?;
        let user = parts.next()?.to_owned();
        Some(Seat { node, conn, user })
    }
}

/// A room event, published by the node where it happened and applied by
/// every node in the bus's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member said something.
    Msg {
        /// The room's name.
        room: String,
        /// Who said it.
        seat: Seat,
        /// The time its `MSG` carries, in milliseconds since the epoch.
        time: i64,
        /// What was said.
        text: String,
        /// Its place in the room's history, given by the bus (`None` until
        /// then; the local bus leaves it to the room).
        seq: Option<u64>,
    },
    /// A member joined. `quiet`: announced again after Redis came back
    /// empty, so the others add the seat without a `JOINED` line.
    Joined {
        /// The room's name.
        room: String,
        /// The new member.
        seat: Seat,
        /// No `JOINED` line.
        quiet: bool,
    },
    /// A member left.
    Left {
        /// The room's name.
        room: String,
        /// Who.
        seat: Seat,
        /// Why, as its `LEFT` line says.
        reason: LeftReason,
    },
    /// A room was created (committed to the shared store): load it.
    RoomCreated {
        /// Its name.
        room: String,
    },
    /// A node stopped answering: its members are gone (`LEFT … quit`).
    NodeGone {
        /// Its name.
        node: String,
    },
    /// A moderation step, committed to the shared store and applied on
    /// node `origin` already; the other nodes apply it to their members.
    Moderated {
        /// The node where it was taken.
        origin: String,
        /// What was done.
        step: Step,
    },
}

/// A moderation step, as the other nodes apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `KICK`: the node holding the member puts it out (`KICKED`, and
    /// `LEFT … kick` for everyone, through the bus).
    Kick {
        /// The room.
        room: String,
        /// The user's key.
        user: String,
        /// Who kicked.
        by: String,
        /// Why (may be empty).
        reason: String,
    },
    /// `BAN`: noted where `JOIN` looks, and the member kicked if present.
    Ban {
        /// The room.
        room: String,
        /// The user, as registered.
        user: String,
        /// When it ends (ms since the epoch; `FOREVER` until lifted).
        until_ms: i64,
        /// Who banned.
        by: String,
        /// Why (may be empty).
        reason: String,
    },
    /// `UNBAN`.
    Unban {
        /// The room.
        room: String,
        /// The user's key.
        user: String,
    },
    /// `TOPIC <text>`: set, and sent to the members.
    Topic {
        /// The room.
        room: String,
        /// Who set it.
        by: String,
        /// When (ms since the epoch).
        time: i64,
        /// The topic.
        text: String,
    },
    /// `CLOSE`: the room is gone.
    Close {
        /// The room.
        room: String,
        /// Who closed it.
        by: String,
    },
    /// `ANNOUNCE`: a `NOTICE` to every logged-in connection.
    Notice {
        /// Which admin.
        from: String,
        /// When (ms since the epoch).
        time: i64,
        /// What it says.
        text: String,
    },
    /// `SUSPEND`: noted where `LOGIN` looks, and the session closed.
    Suspend {
        /// The user's key.
        user: String,
        /// When it ends.
        until_ms: i64,
    },
    /// `UNSUSPEND`.
    Unsuspend {
        /// The user's key.
        user: String,
    },
}

impl Step {
    /// The step as a JSON object.
    fn to_value(&self) -> Value {
        match self {
            Step::Kick {
                room,
                user,
                by,
                reason,
            } => json!({"step": "kick", "room": room, "user": user, "by": by, "reason": reason}),
            Step::Ban {
                room,
                user,
                until_ms,
                by,
                reason,
            } => {
                json!({"step": "ban", "room": room, "user": user, "until": until_ms, "by": by, "reason": reason})
            }
            Step::Unban { room, user } => json!({"step": "unban", "room": room, "user": user}),
            Step::Topic {
                room,
                by,
                time,
                text,
            } => json!({"step": "topic", "room": room, "by": by, "time": time, "text": text}),
            Step::Close { room, by } => json!({"step": "close", "room": room, "by": by}),
            Step::Notice { from, time, text } => {
                json!({"step": "notice", "by": from, "time": time, "text": text})
            }
            Step::Suspend { user, until_ms } => {
                json!({"step": "suspend", "user": user, "until": until_ms})
            }
            Step::Unsuspend { user } => json!({"step": "unsuspend", "user": user}),
        }
    }

    /// The step a [`Step::to_value`] object describes.
    fn from_value(v: &Value) -> Option<Step> {
        let text = |field: &str| v[field].as_str().map(str::to_owned);
        Some(match v["step"].as_str()? {
            "kick" => Step::Kick {
                room: text("room")?,
                user: text("user")?,
                by: text("by")?,
                reason: text("reason").unwrap_or_default(),
            },
            "ban" => Step::Ban {
                room: text("room")?,
                user: text("user")?,
                until_ms: v["until"].as_i64()?,
                by: text("by")?,
                reason: text("reason").unwrap_or_default(),
            },
            "unban" => Step::Unban {
                room: text("room")?,
                user: text("user")?,
            },
            "topic" => Step::Topic {
                room: text("room")?,
                by: text("by")?,
                time: v["time"].as_i64()?,
                text: text("text")?,
            },
            "close" => Step::Close {
                room: text("room")?,
                by: text("by")?,
            },
            "notice" => Step::Notice {
                from: text("by")?,
                time: v["time"].as_i64()?,
                text: text("text")?,
            },
            "suspend" => Step::Suspend {
                user: text("user")?,
                until_ms: v["until"].as_i64()?,
            },
            "unsuspend" => Step::Unsuspend {
                user: text("user")?,
            },
            _ => return None,
        })
    }
}

/// A direct message for a user held by another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDm {
    /// The recipient's key (lower-case name).
    pub to: String,
    /// The sender, as registered.
    pub from: String,
    /// When it was sent, in milliseconds since the epoch.
    pub time: i64,
    /// The text.
    pub text: String,
}

/// What a node announces again whenever it (re)subscribes, in case Redis
/// came back empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announcement {
    /// Its members' seats, as quiet `Joined` events.
    pub seats: Vec<Event>,
    /// Its users' sessions: (user key, connection).
    pub sessions: Vec<(String, u64)>,
    /// The last history number it has seen in each room (by room key),
    /// below which Redis must not number new messages.
    pub seqs: Vec<(String, u64)>,
}

/// Who sits where, as Redis knows it when a node (re)subscribes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The bus's event number when it was taken: membership events up to
    /// it are in it already.
    pub ev: u64,
    /// Each room's seats, in joining order.
    pub rooms: Vec<(String, Vec<Seat>)>,
}

/// The JSON of a seat's three fields, merged into an event's object.
fn seat_fields(object: &mut Value, seat: &Seat) {
    object["node"] = json!(seat.node);
    object["conn"] = json!(seat.conn);
    object["user"] = json!(seat.user);
}

/// The seat in an event's object.
fn seat_of(value: &Value) -> Option<Seat> {
    Some(Seat {
        node: value["node"].as_str()?.to_owned(),
        conn: value["conn"].as_u64()?,
        user: value["user"].as_str()?.to_owned(),
    })
}

impl Event {
    /// The room an event is about, if any.
    pub fn room(&self) -> Option<&str> {
        match self {
            Event::Msg { room, .. }
            | Event::Joined { room, .. }
            | Event::Left { room, .. }
            | Event::RoomCreated { room } => Some(room),
            Event::NodeGone { .. } | Event::Moderated { .. } => None,
        }
    }

    /// Its kind, as its JSON's `t` field names it (for logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Msg { .. } => "msg",
            Event::Joined { .. } => "joined",
            Event::Left { .. } => "left",
            Event::RoomCreated { .. } => "room",
            Event::NodeGone { .. } => "gone",
            Event::Moderated { .. } => "mod",
        }
    }

    /// Is it about who sits where (and so already in a snapshot taken
    /// after it)?
    pub fn is_membership(&self) -> bool {
        matches!(
            self,
            Event::Joined { .. } | Event::Left { .. } | Event::NodeGone { .. }
        )
    }

    /// The event as JSON text (without the bus's numbers).
    pub fn to_json(&self) -> String {
        let mut object = match self {
            Event::Msg {
                room,
                seat,
                time,
                text,
                ..
            } => {
                let mut o = json!({"t": self.kind(), "room": room, "time": time, "text": text});
                seat_fields(&mut o, seat);
                o
            }
            Event::Joined { room, seat, quiet } => {
                let mut o = json!({"t": self.kind(), "room": room, "quiet": quiet});
                seat_fields(&mut o, seat);
                o
            }
            Event::Left { room, seat, reason } => {
                let mut o = json!({"t": self.kind(), "room": room, "reason": reason.as_str()});
                seat_fields(&mut o, seat);
                o
            }
            Event::RoomCreated { room } => json!({"t": self.kind(), "room": room}),
            Event::NodeGone { node } => json!({"t": self.kind(), "gone": node}),
            Event::Moderated { origin, step } => {
                let mut o = step.to_value();
                o["t"] = json!(self.kind());
                o["origin"] = json!(origin);
                o
            }
        };
        if let Value::Object(map) = &mut object {
            map.retain(|_, v| !v.is_null());
        }
        object.to_string()
    }

    /// The event a [`to_json`](Self::to_json) text describes, with the
    /// history number `seq` the bus gave it (0: none).
    pub fn from_json(text: &str, seq: u64) -> Option<Event> {
        let value: Value = serde_json::from_str(text).ok()?;
        let room = || value["room"].as_str().map(str::to_owned);
        Some(match value["t"].as_str()? {
            "msg" => Event::Msg {
                room: room()?,
                seat: seat_of(&value)?,
                time: value["time"].as_i64()?,
                text: value["text"].as_str()?.to_owned(),
                seq: (seq > 0).then_some(seq),
            },
            "joined" => Event::Joined {
                room: room()?,
                seat: seat_of(&value)?,
                quiet: value["quiet"].as_bool().unwrap_or(false),
            },
            "left" => Event::Left {
                room: room()?,
                seat: seat_of(&value)?,
                reason: LeftReason::from_token(value["reason"].as_str()?)
                    .unwrap_or(LeftReason::Leave),
            },
            "room" => Event::RoomCreated { room: room()? },
            "gone" => Event::NodeGone {
                node: value["gone"].as_str()?.to_owned(),
            },
            "mod" => Event::Moderated {
                origin: value["origin"].as_str()?.to_owned(),
                step: Step::from_value(&value)?,
            },
            _ => return None,
        })
    }
}

impl RemoteDm {
    /// As JSON text.
    pub fn to_json(&self) -> String {
        json!({"t": "dm", "to": self.to, "from": self.from, "time": self.time, "text": self.text})
            .to_string()
    }

    /// From a [`to_json`](Self::to_json) text.
    pub fn from_json(value: &Value) -> Option<RemoteDm> {
        Some(RemoteDm {
            to: value["to"].as_str()?.to_owned(),
            from: value["from"].as_str()?.to_owned(),
            time: value["time"].as_i64()?,
            text: value["text"].as_str()?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat() -> Seat {
        Seat {
            node: "n1".into(),
            conn: 7,
            user: "Ana".into(),
        }
    }

    #[test]
    fn every_event_survives_the_wire() {
        let events = [
            Event::Msg {
                room: "geral".into(),
                seat: seat(),
                time: 1_700_000_000_000,
                text: "olá \"mundo\" \\ {}".into(),
                seq: Some(42),
            },
            Event::Joined {
                room: "geral".into(),
                seat: seat(),
                quiet: true,
            },
            Event::Left {
                room: "geral".into(),
                seat: seat(),
                reason: LeftReason::Kick,
            },
            Event::RoomCreated {
                room: "nova".into(),
            },
            Event::NodeGone { node: "n2".into() },
            Event::Moderated {
                origin: "n1".into(),
                step: Step::Ban {
                    room: "geral".into(),
                    user: "Bia".into(),
                    until_ms: i64::MAX,
                    by: "Ana".into(),
                    reason: "spam".into(),
                },
            },
            Event::Moderated {
                origin: "n1".into(),
                step: Step::Notice {
                    from: "Ana".into(),
                    time: 3,
                    text: "aula às 10h".into(),
                },
            },
        ];
        for event in events {
            let seq = match &event {
                Event::Msg { seq, .. } => seq.unwrap_or(0),
                _ => 0,
            };
            assert_eq!(Event::from_json(&event.to_json(), seq), Some(event));
        }
        assert_eq!(Event::from_json("{\"t\":\"nope\"}", 0), None);
        assert_eq!(Event::from_json("not json", 0), None);
    }

    #[test]
    fn seats_and_dms_round_trip() {
        assert_eq!(Seat::from_key(&seat().key()), Some(seat()));
        assert_eq!(Seat::from_key("n1/x/Ana"), None);
        let dm = RemoteDm {
            to: "bia".into(),
            from: "Ana".into(),
            time: 5,
            text: "oi".into(),
        };
        let value: Value = serde_json::from_str(&dm.to_json()).unwrap();
        assert_eq!(RemoteDm::from_json(&value), Some(dm));
    }
}
