//! The connection layer: listeners and connections (framing, pipelining, response order),
//! request decoding and version negotiation, and routing a decoded request to its handler.
//!
//! It owns the wire: [`server`] reads frames and writes replies in order, [`dispatch`]
//! decodes headers and bodies and calls [`crate::handlers::route`], [`compat`] converts the
//! request and response versions Kafka 4 removed, and [`frame`] holds responses made of memory
//! and file ranges. It does not know what a request does: the handlers decide that, and reach
//! the broker's services only through the [`crate::services::Services`] context they are
//! given. The types the handlers answer with ([`dispatch::RequestContext`],
//! [`server::Reply`], [`frame::Frame`]) are this layer's contract with them.

pub mod compat;
pub mod dispatch;
pub mod frame;
pub mod server;
