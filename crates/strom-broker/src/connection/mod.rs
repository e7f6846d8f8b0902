//! The connection layer: listeners and connections (framing, pipelining, response order) and
//! dispatch, which decodes a request frame and starts its handler.
//!
//! It owns the sockets: [`server`] reads frames and writes replies in request order,
//! [`dispatch`] decodes them (with [`crate::protocol`]) and calls [`crate::handlers::route`]
//! with the [`crate::services::Services`] context. It does not know what a request does, and
//! names no service's internals.

pub mod dispatch;
pub mod server;
