//! The local bus: one server alone, which is all the embedded default
//! needs. The hub applies every event at once under the room's lock (the
//! room's lock is what orders it), and there is nobody to tell.

use super::{Bus, BusHealth, Event, RemoteDm};
use crate::bus::BusError;

/// The bus of a server that shares its rooms with nobody.
#[derive(Debug)]
pub struct LocalBus {
    /// Its name, for logs and the status page.
    node: String,
}

impl LocalBus {
    /// The bus of node `node`.
    pub fn new(node: String) -> Self {
        LocalBus { node }
    }
}

impl Bus for LocalBus {
    fn node(&self) -> &str {
        &self.node
    }

    fn shared(&self) -> bool {
        false
    }

    fn publish(&self, _event: Event) -> Result<(), BusError> {
        Ok(())
    }

    fn claim_presence(&self, _user_key: &str, _conn: u64) -> Result<(), BusError> {
        Ok(())
    }

    fn release_presence(&self, _user_key: &str, _conn: u64) {}

    fn send_dm(&self, _dm: &RemoteDm) -> Result<bool, BusError> {
        // No other node: a user not online here is offline.
        Ok(false)
    }

    fn stored_dm(&self, _user_key: &str) {}

    fn health(&self) -> BusHealth {
        BusHealth {
            kind: "local",
            target: "in-process".into(),
            ok: true,
            last_error: None,
            dropped: 0,
        }
    }
}
