//! The bus: what the server nodes sharing one set of rooms tell each other.
//! With `--bus local` (the default) there is one node and the bus is the
//! in-process hub alone; with `--bus redis://…` every node publishes room
//! events to one Redis and delivers them from its subscription, so all
//! members on all nodes see one order (docs/SCALING.md).

mod spec;

pub use spec::BusSpec;
