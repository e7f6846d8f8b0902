//! The paths of Kafka's znodes, relative to the chroot (`ZkData.scala` in Kafka ≤ 3.x).

use crate::replication::{BrokerId, TopicPartition};

/// The ephemeral znode whose owner is the active controller.
pub const CONTROLLER: &str = "/controller";
/// The controller epoch, bumped by every newly elected controller.
pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
/// Parent of the live brokers' ephemeral registrations.
pub const BROKER_IDS: &str = "/brokers/ids";
/// Parent of the topics' replica assignments.
pub const TOPICS: &str = "/brokers/topics";
/// Parent of the topics' configuration overrides.
pub const TOPIC_CONFIGS: &str = "/config/topics";
/// Parent of the brokers' dynamic configurations (`<id>` and `<default>`).
pub const BROKER_CONFIGS: &str = "/config/brokers";
/// Parent of the configuration change notifications.
pub const CONFIG_CHANGES: &str = "/config/changes";
/// The prefix of a configuration change notification's sequential name.
pub const CONFIG_CHANGE_PREFIX: &str = "config_change_";
/// Parent of the topics marked for deletion.
pub const DELETE_TOPICS: &str = "/admin/delete_topics";
/// A ZooKeeper-era tool's request for preferred leader elections.
pub const PREFERRED_REPLICA_ELECTION: &str = "/admin/preferred_replica_election";

/// A reassignment asked for by a ZooKeeper-era tool (Kafka's `ReassignPartitionsZNode`).
pub const REASSIGN_PARTITIONS: &str = "/admin/reassign_partitions";
/// Parent of the ISR change notifications.
pub const ISR_CHANGES: &str = "/isr_change_notification";
/// The prefix of an ISR change notification's sequential name.
pub const ISR_CHANGE_PREFIX: &str = "isr_change_";
/// The cluster id.
pub const CLUSTER_ID: &str = "/cluster/id";
/// The last producer id block handed out.
pub const PRODUCER_ID_BLOCK: &str = "/latest_producer_id_block";

/// The persistent paths Kafka creates at startup (`ZkData.PersistentZkPaths`), each
/// with empty data, parents first.
pub const PERSISTENT: &[&str] = &[
    "/consumers",
    "/brokers",
    BROKER_IDS,
    TOPICS,
    "/brokers/seqid",
    "/config",
    CONFIG_CHANGES,
    TOPIC_CONFIGS,
    "/config/clients",
    "/config/users",
    BROKER_CONFIGS,
    "/config/ips",
    "/admin",
    DELETE_TOPICS,
    ISR_CHANGES,
    PRODUCER_ID_BLOCK,
    "/log_dir_event_notification",
];

/// `/brokers/ids/<id>`.
pub fn broker(id: BrokerId) -> String {
    format!("{BROKER_IDS}/{id}")
}

/// `/brokers/topics/<topic>`.
pub fn topic(topic: &str) -> String {
    format!("{TOPICS}/{topic}")
}

/// `/brokers/topics/<topic>/partitions`.
pub fn topic_partitions(topic: &str) -> String {
    format!("{TOPICS}/{topic}/partitions")
}

/// `/brokers/topics/<topic>/partitions/<partition>`.
pub fn partition(partition: &TopicPartition) -> String {
    format!(
        "{TOPICS}/{}/partitions/{}",
        partition.topic, partition.partition
    )
}

/// `/brokers/topics/<topic>/partitions/<partition>/state`.
pub fn partition_state(partition: &TopicPartition) -> String {
    format!("{}/state", self::partition(partition))
}

/// `/config/topics/<topic>`.
pub fn topic_config(topic: &str) -> String {
    format!("{TOPIC_CONFIGS}/{topic}")
}

/// `/config/brokers/<entity>`: a broker id or `<default>`.
pub fn broker_config(entity: &str) -> String {
    format!("{BROKER_CONFIGS}/{entity}")
}

/// `/admin/delete_topics/<topic>`.
pub fn delete_topic(topic: &str) -> String {
    format!("{DELETE_TOPICS}/{topic}")
}
