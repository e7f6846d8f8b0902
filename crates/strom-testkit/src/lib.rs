//! `strom-testkit`: helpers for the tests of several Strom crates, as a dev-dependency only
//! (`publish = false`; no production crate depends on it).
//!
//! - [`zookeeper`]: a real ZooKeeper server (Debian's `zookeeper` package) on a loopback port,
//!   used by `strom-meta`'s ZooKeeper store tests and `strom-cli`'s integration tests.
//! - [`seeds`]: the driver of seeded simulation tests (replay one seed, or many in a budget).
//! - [`mesos_master`]: a scripted Mesos master (the v1 scheduler API's wire format) for the
//!   Mesos engine's tests in `strom-scheduler` and `strom-cli`.

pub mod mesos_master;
pub mod seeds;
pub mod zookeeper;
