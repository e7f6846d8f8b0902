//! Strom's ZooKeeper store: the metadata of a replicated cluster kept in ZooKeeper in Kafka's
//! own layout, so a Strom cluster is coordinated like a Kafka ≤ 3.x cluster.
//!
//! - [`znode`]: the paths and the JSON of every znode (pure codecs).

pub mod znode;
