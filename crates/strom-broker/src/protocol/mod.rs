//! The Kafka wire protocol as the broker speaks it, without any state: the supported APIs and
//! versions, request decoding ([`request`], with [`legacy`] and [`compat`] for the versions
//! Kafka 4 removed), response encoding, and what a handler answers with ([`frame::Reply`],
//! frames made of memory and file ranges).
//!
//! The connection layer decodes with it and the handlers answer with it; it imports nothing of
//! the broker above it.

pub mod frame;
pub mod interbroker;
pub mod legacy;
pub mod request;

/// The versions Kafka 4 removed: a child of [`request`], whose decoding and encoding it
/// completes; re-exported here under its old path.
pub use request::compat;
