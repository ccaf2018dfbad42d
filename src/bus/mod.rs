//! The bus: what the server nodes sharing one set of rooms tell each other.
//!
//! A single server needs nobody to talk to: with `--bus local` (the
//! default) the hub applies every room event itself, at once, under the
//! room's lock, exactly as it always has. With `--bus redis://…` several
//! nodes share the rooms: each node *publishes* its room events to Redis,
//! and every node, the publisher included, *applies* them as its
//! subscription brings them back. Redis runs one command at a time and
//! pushes a channel's messages to every subscriber in the order it ran
//! them, so all nodes apply the same events in the same order: one order
//! per room for all members on all nodes (docs/SCALING.md).
//!
//! The seam is the [`Bus`] trait. The hub calls it at the points where
//! something must reach other nodes (a message said, a member joining or
//! leaving, a login, a DM for a user it does not hold); the bus calls the
//! node back through [`Deliver`] with what the others said. Nothing else
//! of the server knows which bus it talks to.

mod event;
mod local;
mod redis;
mod spec;

use std::fmt;
use std::sync::Arc;

pub use event::{Announcement, Event, RemoteDm, Seat, Snapshot, Step};
pub use local::LocalBus;
pub use redis::RedisBus;
pub use spec::BusSpec;

/// Why the bus could not take something. The node goes on serving its own
/// clients; what needed the other nodes is refused or kept for later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusError(pub String);

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bus: {}", self.0)
    }
}

impl std::error::Error for BusError {}

/// How the bus is doing, for the status page and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusHealth {
    /// `local` or `redis`.
    pub kind: &'static str,
    /// Where (a Redis URL without its password), or `in-process`.
    pub target: String,
    /// Whether it works now: connected, and the last command went through.
    pub ok: bool,
    /// The last error, while not `ok`.
    pub last_error: Option<String>,
    /// Events this node could not publish since it started (Redis was
    /// unreachable): what the other nodes missed.
    pub dropped: u64,
}

/// What the hub needs from the bus.
pub trait Bus: Send + Sync + fmt::Debug {
    /// This node's name on the bus.
    fn node(&self) -> &str;

    /// Whether other nodes may share the rooms: then room events come back
    /// through [`Deliver::apply`] and the hub applies them only then.
    fn shared(&self) -> bool;

    /// Publishes a room event, which every node (this one included)
    /// applies when the bus brings it back. The hub publishes only on a
    /// [`shared`](Self::shared) bus: alone, it applies each event at once,
    /// under the room's lock, and the local bus has nobody to tell.
    ///
    /// # Errors
    ///
    /// The bus cannot take more (its queue is full).
    fn publish(&self, event: Event) -> Result<(), BusError>;

    /// Makes connection `conn` of this node the session of `user_key` for
    /// every node, and returns once it is so: a DM sent to the user after
    /// its `OK LOGIN` finds it. A session of the same user on another node
    /// is told to close (`BYE LOGGED_IN_ELSEWHERE`): the newest login wins
    /// everywhere.
    ///
    /// # Errors
    ///
    /// The bus could not be asked; the login stands on this node.
    fn claim_presence(&self, user_key: &str, conn: u64) -> Result<(), BusError>;

    /// Forgets that connection `conn` of this node is the session of
    /// `user_key`, unless a newer login has replaced it already.
    fn release_presence(&self, user_key: &str, conn: u64);

    /// Hands a DM to the node that holds the recipient's session, if any
    /// other node does. `Ok(true)`: that node has it, and delivers it or
    /// stores it, never neither. `Ok(false)`: no live node holds the user.
    ///
    /// # Errors
    ///
    /// The bus could not be asked; the caller stores the DM.
    fn send_dm(&self, dm: &RemoteDm) -> Result<bool, BusError>;

    /// Tells the node holding `user_key`'s session, if another node does,
    /// that a DM was just stored for the user: its login may have looked
    /// for stored DMs before this one was there.
    fn stored_dm(&self, user_key: &str);

    /// How many users are logged in on all the nodes, if the bus knows
    /// (`ANNOUNCE` answers with it). `None` on a server alone: the hub
    /// counts its own.
    fn sessions(&self) -> Option<usize> {
        None
    }

    /// Whether it works now, cheaply (a `SAY` asks): while a shared bus
    /// cannot reach Redis, a message could reach nobody, and its sender
    /// gets `ERR SERVER_ERROR` rather than silence.
    fn up(&self) -> bool {
        true
    }

    /// How it is doing.
    fn health(&self) -> BusHealth;

    /// Waits (at most `timeout`) until the node hears the other nodes: a
    /// shared bus has subscribed and taken its first snapshot. A node that
    /// accepted clients before would miss their own messages coming back.
    /// Returns whether it is ready.
    fn wait_ready(&self, _timeout: std::time::Duration) -> bool {
        true
    }

    /// Stops its threads, once the server's connections have ended, and
    /// tells the other nodes this one is gone.
    fn stop(&self) {}
}

/// What a node does with what the other nodes said: the other side of the
/// seam, implemented by the server.
pub trait Deliver: Send + Sync {
    /// A room event, in the bus's order.
    fn apply(&self, event: Event);

    /// The node's view of who sits where, from Redis, taken when the node
    /// (re)subscribed: replaces what it knew of the other nodes' members.
    ///
    /// Returns what the node must publish to correct Redis: a `Left` for
    /// each seat Redis gives this node that it no longer has (a member
    /// who left while Redis could not be told, kept by a Redis that saved
    /// its data across a restart).
    fn resync(&self, snapshot: Snapshot) -> Vec<Event>;

    /// What this node announces again whenever it (re)subscribes.
    fn announcement(&self) -> Announcement;

    /// Another node logged `user_key` in: close our session `conn` of it.
    fn take_over(&self, user_key: &str, conn: u64);

    /// A DM for a user whose session this node holds (or held).
    fn deliver_dm(&self, dm: RemoteDm);

    /// A DM was stored for a user whose session this node holds: hand it
    /// over now rather than at the next login.
    fn hand_over(&self, user_key: &str);
}

/// Starts the bus `spec` says, for node `node`, which counts as gone after
/// `ttl` without a beat. A shared bus starts its threads now and calls `deliver` once it is set (the server sets it as
/// soon as its hub exists).
///
/// # Errors
///
/// A Redis URL the client library refuses, or a thread that cannot start.
pub fn start(
    spec: &BusSpec,
    node: String,
    ttl: std::time::Duration,
    deliver: Arc<std::sync::OnceLock<Arc<dyn Deliver>>>,
) -> crate::Result<Arc<dyn Bus>> {
    match spec {
        BusSpec::Local => Ok(Arc::new(LocalBus::new(node))),
        BusSpec::Redis(url) => Ok(Arc::new(RedisBus::start(url, node, ttl, deliver)?)),
    }
}

/// A node name made from the host name and the process id, for a node
/// started without `--node-id`: unique among live nodes, readable in logs.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    let host: String = host
        .chars()
        .map(|c| if is_node_char(c) { c } else { '-' })
        .collect();
    format!("{host}-{}", std::process::id())
}

/// May `c` appear in a node name? Letters, digits, `-`, `_` and `.`: the
/// name is part of Redis keys and of the seat strings split on `/`.
pub fn is_node_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Checks a `--node-id`.
///
/// # Errors
///
/// A text naming the rule it breaks.
pub fn check_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(is_node_char) {
        return Err(format!(
            "--node-id {id:?}: 1 to 64 letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked() {
        assert!(check_node_id("node-1").is_ok());
        assert!(check_node_id("a.b_c").is_ok());
        assert!(check_node_id("").is_err());
        assert!(check_node_id("a/b").is_err());
        assert!(check_node_id("a b").is_err());
        assert!(check_node_id(&"x".repeat(65)).is_err());
        assert!(check_node_id(&default_node_id()).is_ok());
    }
}
