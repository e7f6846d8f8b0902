//! The Strom broker: a Kafka-protocol server over `strom-log` partitions.
//!
//! This crate owns the network side of a broker: the listener, per-connection framing and
//! response ordering ([`server`]), request dispatch and version negotiation ([`dispatch`]),
//! one handler module per Kafka API family ([`handlers`]), the partition wrapper that turns
//! appends into durable acknowledgements ([`partition`]) with broker-wide group commit
//! ([`sync`]), and the
//! background tasks (retention, checkpoints, relaxed flush).
//!
//! It deliberately does not own storage (that is `strom-log`) nor the configuration
//! catalogue and cluster model (that is `strom-meta`).

pub mod alloc;
pub mod broker;
pub mod connection;
pub mod handlers;
pub mod metrics;
pub mod services;

pub use broker::{start, Broker, BrokerHandle, StartError};
/// Request decoding and [`dispatch::SUPPORTED`], at the path tools and tests have used.
pub use connection::dispatch;
pub use strom_meta::config::BrokerConfig;

/// Milliseconds since the Unix epoch: the broker's one source of wall-clock time, passed
/// into `strom-log` and the handlers as an argument.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
