//! The Strom service scheduler: the DC/OS SDK pipeline for running a Kafka service.
//!
//! spec (`svc.yml` → [`spec::ServiceSpec`]) → target config and validators → plans and steps →
//! offer evaluation → operations, with recovery decisions beside them. This crate is the pure
//! core: no tokio, no clock, no sockets, no processes. Engines (local, Mesos) feed it offers and
//! task status updates and apply the operations it returns; the HTTP API reads its state.
//! Three modules are shells around the core and do I/O: [`file_store`] (the default state
//! store), [`zk_store`] (the ZooKeeper state store) and [`engine`] (the engine trait and the local engine, which runs tasks as processes).

pub mod config;
pub mod drf;
pub mod engine;
pub mod file_store;
pub mod offer;
pub mod plan;
pub mod recovery;
pub mod resources;
pub mod scheduler;
pub mod secrets;
pub mod spec;
pub mod state;
pub mod store;
pub mod task;
pub mod zk_store;
