//! The cluster model: what the controller knows about the cluster and persists in a
//! [`MetadataStore`](crate::store::MetadataStore).
//!
//! This module owns the plain data (cluster id, topics, their ids, partition counts and config
//! overrides) and the cluster-id format. It does not own how the model is stored (see
//! [`crate::store`]) nor the rules for changing it (the controller, later).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One topic as the controller records it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TopicMetadata {
    /// The topic name; also the key in [`ClusterMetadata::topics`].
    pub name: String,
    /// Kafka's topic id, assigned once at creation and never reused, so a re-created topic of
    /// the same name is a different topic to clients.
    #[serde(with = "uuid_text")]
    pub topic_id: Uuid,
    /// The number of partitions, numbered `0..partitions`.
    ///
    /// Invariant: `partitions >= 1`.
    pub partitions: i32,
    /// The number of replicas of every partition.
    pub replication_factor: i16,
    /// Topic-level configuration overrides only (keys like `retention.ms`); effective values come
    /// from [`crate::config::TopicConfig::resolve`].
    pub configs: BTreeMap<String, String>,
    /// True for topics the broker owns, such as `__consumer_offsets`.
    pub internal: bool,
}

/// Everything the metadata store persists about the cluster.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterMetadata {
    /// The cluster id clients see in Metadata responses (see [`new_cluster_id`]).
    pub cluster_id: String,
    /// Topics by name.
    ///
    /// Invariant: every value's `name` equals its key.
    pub topics: BTreeMap<String, TopicMetadata>,
    /// Bumped on every change, so a reader can tell whether its copy is stale.
    pub version: u64,
    /// A single node's dynamic broker configuration (AlterConfigs on BROKER resources), by
    /// entity as in ZooKeeper: `<default>` for the cluster default, the broker id for its own
    /// overrides. A cluster keeps these in `/config/brokers/` instead. Absent from files
    /// written before it existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
}

impl ClusterMetadata {
    /// Finds a topic by its id (Fetch and DeleteTopics v6+ name topics by id).
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicMetadata> {
        self.topics.values().find(|topic| topic.topic_id == *id)
    }
}

/// Generates a Kafka-style cluster id: the 22-character URL-safe base64 (no padding) form of a
/// random version-4 UUID.
///
/// Like Kafka, it never returns an id starting with `-`, which command-line tools would mistake
/// for an option.
pub fn new_cluster_id() -> String {
    loop {
        let id = cluster_id_from_uuid(&Uuid::new_v4());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Encodes a UUID the way Kafka prints its `Uuid` type: URL-safe base64 of the 16 bytes, no
/// padding. Pure, so tests can check the format with a fixed UUID.
pub fn cluster_id_from_uuid(uuid: &Uuid) -> String {
    base64_url_no_pad(uuid.as_bytes())
}

/// URL-safe base64 without padding (RFC 4648 §5). Hand-written because it is twenty lines and
/// the only place Strom needs base64.
fn base64_url_no_pad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0] as u32;
        let b1 = chunk.get(1).copied().unwrap_or(0) as u32;
        let b2 = chunk.get(2).copied().unwrap_or(0) as u32;
        let triple = (b0 << 16) | (b1 << 8) | b2;
        let emitted = chunk.len() + 1;
        for index in 0..emitted {
            let sextet = (triple >> (18 - 6 * index)) & 0x3f;
            out.push(ALPHABET[sextet as usize] as char);
        }
    }
    out
}

/// Serializes a [`Uuid`] as its hyphenated text, without needing uuid's `serde` feature.
mod uuid_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    pub fn serialize<S: Serializer>(uuid: &Uuid, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&uuid.hyphenated())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
        let text = String::deserialize(deserializer)?;
        Uuid::parse_str(&text)
            .map_err(|error| serde::de::Error::custom(format!("bad topic id '{text}': {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64_url_no_pad(b""), "");
        assert_eq!(base64_url_no_pad(b"f"), "Zg");
        assert_eq!(base64_url_no_pad(b"fo"), "Zm8");
        assert_eq!(base64_url_no_pad(b"foo"), "Zm9v");
        assert_eq!(base64_url_no_pad(b"foob"), "Zm9vYg");
        assert_eq!(base64_url_no_pad(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn cluster_id_is_22_url_safe_chars() {
        for _ in 0..100 {
            let id = new_cluster_id();
            assert_eq!(id.len(), 22, "{id}");
            assert!(!id.starts_with('-'));
            assert!(id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        }
        let fixed = Uuid::from_u128(0);
        assert_eq!(cluster_id_from_uuid(&fixed), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn topic_by_id_finds_the_topic() {
        let id = Uuid::new_v4();
        let mut meta = ClusterMetadata::default();
        meta.topics.insert(
            "orders".into(),
            TopicMetadata {
                name: "orders".into(),
                topic_id: id,
                partitions: 3,
                replication_factor: 1,
                configs: BTreeMap::new(),
                internal: false,
            },
        );
        assert_eq!(meta.topic_by_id(&id).unwrap().name, "orders");
        assert!(meta.topic_by_id(&Uuid::new_v4()).is_none());
    }
}
