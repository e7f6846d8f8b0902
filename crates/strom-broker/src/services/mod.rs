//! The services layer: what the handlers call and what owns the broker's state. The replica
//! manager ([`replica`]) owns the hosted partitions, their durable acknowledgement and their
//! watermark waits; the group coordinator ([`coordinator`], over the pure state machines of
//! [`group`]) owns consumer groups and committed offsets; [`producer_ids`] hands out producer
//! ids; [`background`] runs the periodic storage work.
//!
//! Services sit on the storage and metadata crates (`strom-log`, `strom-meta`) and never reach
//! up: no service imports a handler, the connection layer or the broker's wiring (checked by
//! `tests/layers.rs`).

pub mod background;
pub mod coordinator;
pub mod group;
pub mod producer_ids;
pub mod replica;
