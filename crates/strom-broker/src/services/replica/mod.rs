//! The replica manager's parts: a hosted [`partition`] and the broker-wide group commit
//! ([`sync`]) that makes its appends durable.

pub mod partition;
pub mod sync;
