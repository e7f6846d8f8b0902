//! The Strom broker: a Kafka-protocol server over `strom-log` partitions.
//!
//! The crate is built in layers, each a folder, and a module imports only downwards (the
//! rules are checked by `tests/layers.rs`):
//!
//! - [`broker`]: the wiring — opens storage and metadata, builds the services, starts the
//!   listeners and tasks. Nothing imports it.
//! - [`connection`]: listeners and connections — framing, pipelining, response order; it
//!   decodes each request and routes it to its handler.
//! - [`handlers`]: one module per Kafka API family; they reach the broker's state only through
//!   the [`services::Services`] context they are given.
//! - [`services`]: the replica manager (partitions, durable acknowledgement, watermark waits),
//!   the metadata cache, topic changes, the group coordinator, producer ids and the background
//!   storage tasks.
//! - [`protocol`]: the wire protocol without state — supported APIs, request decoding (old
//!   versions included), response encoding, reply frames; used by the connection and the
//!   handlers.
//! - [`interbroker`]: the client side of broker-to-broker traffic — peer connections, the
//!   controller's requests on the wire, the controller channel; used by the services (and by
//!   the handlers that read controller requests).
//! - [`metrics`], [`clock`] and [`alloc`]: counters, the wall clock and the allocation guard,
//!   used by every layer.
//!
//! It deliberately does not own storage (that is `strom-log`) nor the configuration
//! catalogue and cluster model (that is `strom-meta`).

pub mod alloc;
pub mod broker;
pub mod clock;
pub mod connection;
pub mod handlers;
pub mod interbroker;
pub mod metrics;
pub mod protocol;
pub mod services;

pub use broker::{start, Broker, BrokerHandle, StartError};
pub use strom_meta::config::BrokerConfig;
