//! [`ZkStore`]'s rewrite of a topic's assignment for CreatePartitions: the new partitions are
//! added to `/brokers/topics/<t>` as Kafka's admin path does, conditional on the version the
//! caller read, and the controller's data watch on the znode (`topic_watch.rs`) picks them up.

use zookeeper_client::Error as ClientError;

use super::store::ZkStore;
use super::znode::{self, paths};
use super::{client_error, ZkError};
use crate::replication::TopicAssignment;

impl ZkStore {
    /// Replaces `/brokers/topics/<topic>` with `assignment` if the znode is still at
    /// `expected_version`; returns the new version. [`ZkError::UnknownTopic`] if it is gone,
    /// [`ZkError::BadVersion`] if another writer changed it since it was read.
    pub async fn set_topic_assignment(
        &self,
        topic: &str,
        assignment: &TopicAssignment,
        expected_version: i32,
    ) -> Result<i32, ZkError> {
        let path = paths::topic(topic);
        let data = znode::encode_topic_assignment(assignment);
        match self
            .client
            .set_data(&path, &data, Some(expected_version))
            .await
        {
            Ok(stat) => Ok(stat.version),
            Err(ClientError::NoNode) => Err(ZkError::UnknownTopic {
                topic: topic.into(),
            }),
            Err(ClientError::BadVersion) => Err(ZkError::BadVersion {
                path,
                expected_version,
            }),
            Err(e) => Err(client_error("set", &path)(e)),
        }
    }
}
