//! `strom-meta`: Strom's cluster model, its configuration catalogue, and the metadata stores.
//!
//! - [`config`]: Kafka's broker and topic configuration keys, their defaults, validation,
//!   resolution (topic override, else broker synonym, else default) and DescribeConfigs entries.
//! - [`controller`]: the ZooKeeper-era controller as a pure state machine, and replica
//!   placement.
//! - [`topic`]: topic-name rules.
//! - [`model`]: the cluster model the controller persists ([`ClusterMetadata`]).
//! - [`replication`]: brokers, replica assignments, leaders, epochs and ISRs of a replicated
//!   cluster.
//! - [`replica`]: one partition's replica state (leader epoch, ISR, follower positions, high
//!   watermark, acks=all) as a pure state machine.
//! - [`store`]: the [`MetadataStore`] trait and the embedded [`FileStore`].
//! - [`txn`]: the transaction coordinator as a pure state machine, and the `__transaction_state`
//!   record layout.
//! - [`zk`]: the ZooKeeper store of a replicated cluster, in Kafka's znode layout.
//!
//! This crate does no network I/O outside store implementations and holds no clock; callers pass
//! time and randomness in (the only exception is [`new_cluster_id`], which is randomness by
//! definition and has the pure twin [`model::cluster_id_from_uuid`]).

pub mod config;
pub mod controller;
pub mod model;
pub mod replica;
pub mod replication;
pub mod store;
pub mod topic;
pub mod txn;
pub mod zk;

pub use model::{new_cluster_id, ClusterMetadata, TopicMetadata};
pub use store::{FileStore, MetaError, MetadataStore};
pub use topic::{topic_names_collide, validate_topic_name};
