//! Partition reassignment in ZooKeeper: the `/admin/reassign_partitions` znode of ZooKeeper-era
//! tools (Kafka's `ReassignPartitionsZNode`, also the plan-file format of
//! `kafka-reassign-partitions.sh`), and the controller's one `multi` that moves a partition
//! between the steps of a reassignment (its state and its topic's assignment together).
//!
//! The znode's JSON: `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2]}]}`
//! (a plan file may add `"log_dirs":["any",…]`, accepted and ignored: Strom has no JBOD moves).
//! Decides nothing: the controller (`controller::reassign`) does.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use zookeeper_client::{Error as ClientError, MultiWriteResult};

use super::store::{fenced_error, persistent, ControllerFence, ZkStore};
use super::znode::{self, paths, ZnodeError};
use super::{client_error, ZkError};
use crate::replication::{BrokerId, LeaderAndIsr, TopicAssignment, TopicPartition};

/// One partition's wanted replicas, as the znode and a plan file list them.
pub type ReassignmentEntry = (TopicPartition, Vec<BrokerId>);

fn bad(path: &str, reason: impl Into<String>) -> ZnodeError {
    ZnodeError {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Encodes the reassignment JSON (version 1), partitions in the order given.
pub fn encode_reassignment(entries: &[ReassignmentEntry]) -> Vec<u8> {
    let partitions: Vec<Value> = entries
        .iter()
        .map(|(tp, replicas)| {
            json!({"topic": tp.topic, "partition": tp.partition, "replicas": replicas})
        })
        .collect();
    serde_json::to_vec(&json!({"version": 1, "partitions": partitions})).expect("plain JSON")
}

/// Decodes the reassignment JSON (`path` names it in errors: the znode or a plan file). A
/// partition listed twice, an empty, negative or repeated replica list is refused, as Kafka's
/// tool refuses it.
pub fn decode_reassignment(path: &str, bytes: &[u8]) -> Result<Vec<ReassignmentEntry>, ZnodeError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| bad(path, format!("not JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| bad(path, "not a JSON object"))?;
    match object.get("version").and_then(Value::as_i64) {
        Some(1) => {}
        other => return Err(bad(path, format!("unsupported version {other:?}"))),
    }
    let list = object
        .get("partitions")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(path, "\"partitions\" is not an array"))?;
    let mut seen = BTreeSet::new();
    let mut entries = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let what = |field: &str| format!("partitions[{index}].{field}");
        let topic = entry
            .get("topic")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(path, format!("{} is not a string", what("topic"))))?;
        let partition = entry
            .get("partition")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p >= 0)
            .ok_or_else(|| {
                bad(
                    path,
                    format!("{} is not a partition index", what("partition")),
                )
            })?;
        let replicas: Vec<BrokerId> = entry
            .get("replicas")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(path, format!("{} is not an array", what("replicas"))))?
            .iter()
            .map(|r| r.as_i64().and_then(|r| i32::try_from(r).ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(path, format!("{} holds a non-integer", what("replicas"))))?;
        let distinct: BTreeSet<&BrokerId> = replicas.iter().collect();
        if replicas.is_empty()
            || distinct.len() != replicas.len()
            || replicas.iter().any(|r| *r < 0)
        {
            return Err(bad(
                path,
                format!("{topic}-{partition}: replicas {replicas:?} must be distinct broker ids"),
            ));
        }
        let tp = TopicPartition::new(topic, partition);
        if !seen.insert(tp.clone()) {
            return Err(bad(path, format!("{tp} is listed twice")));
        }
        entries.push((tp, replicas));
    }
    Ok(entries)
}

impl ZkStore {
    /// The reassignment a ZooKeeper-era tool asked for (`None` when the znode is absent).
    pub async fn reassignment_request(&self) -> Result<Option<Vec<ReassignmentEntry>>, ZkError> {
        let path = paths::REASSIGN_PARTITIONS;
        match self.client.get_data(path).await {
            Ok((data, _)) => Ok(Some(decode_reassignment(path, &data)?)),
            Err(ClientError::NoNode) => Ok(None),
            Err(e) => Err(client_error("get", path)(e)),
        }
    }

    /// Creates `/admin/reassign_partitions`, as a ZooKeeper-era tool does; `Ok(false)` if one
    /// is already there (a reassignment is in progress).
    pub async fn request_reassignment(
        &self,
        entries: &[ReassignmentEntry],
    ) -> Result<bool, ZkError> {
        let path = paths::REASSIGN_PARTITIONS;
        let data = encode_reassignment(entries);
        match self.client.create(path, &data, &persistent()).await {
            Ok(_) => Ok(true),
            Err(ClientError::NodeExists) => Ok(false),
            Err(e) => Err(client_error("create", path)(e)),
        }
    }

    /// The controller rewrites `/admin/reassign_partitions` with the partitions still pending,
    /// or deletes it when none is (fenced by `/controller_epoch`).
    pub async fn set_reassignment_request(
        &self,
        remaining: &[ReassignmentEntry],
        fence: &ControllerFence,
    ) -> Result<(), ZkError> {
        let data = (!remaining.is_empty()).then(|| encode_reassignment(remaining));
        self.fenced_set_or_delete(paths::REASSIGN_PARTITIONS, data.as_deref(), fence)
            .await
    }

    /// The controller's reassignment step: in one `multi`, a check of `/controller_epoch`,
    /// the partition's state set conditionally on `expected_version`, and the topic's
    /// assignment replaced. Returns the state znode's new version; a version conflict is
    /// [`ZkError::BadVersion`].
    pub async fn update_state_and_assignment(
        &self,
        partition: &TopicPartition,
        state: &LeaderAndIsr,
        expected_version: i32,
        assignment: &TopicAssignment,
        fence: &ControllerFence,
    ) -> Result<i32, ZkError> {
        let state_path = paths::partition_state(partition);
        let topic_path = paths::topic(&partition.topic);
        let mut multi = self.client.new_multi_writer();
        multi
            .add_check_version(paths::CONTROLLER_EPOCH, fence.epoch_zk_version)
            .map_err(client_error("multi", paths::CONTROLLER_EPOCH))?;
        multi
            .add_set_data(
                &state_path,
                &znode::encode_partition_state(state),
                Some(expected_version),
            )
            .map_err(client_error("multi", &state_path))?;
        multi
            .add_set_data(
                &topic_path,
                &znode::encode_topic_assignment(assignment),
                None,
            )
            .map_err(client_error("multi", &topic_path))?;
        match multi.commit().await {
            Ok(results) => match results.get(1) {
                Some(MultiWriteResult::SetData { stat }) => Ok(stat.version),
                _ => Ok(expected_version + 1),
            },
            Err(zookeeper_client::MultiWriteError::OperationFailed {
                index: 1 | 2,
                source: ClientError::BadVersion | ClientError::NoNode,
            }) => Err(ZkError::BadVersion {
                path: state_path,
                expected_version,
            }),
            Err(e) => Err(fenced_error(fence, &state_path, "multi", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassignment_json_round_trips_and_refuses_bad_plans() {
        let kafka = br#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3],"log_dirs":["any","any"]},{"topic":"u","partition":4,"replicas":[1]}]}"#;
        let entries = decode_reassignment("plan.json", kafka).unwrap();
        assert_eq!(
            entries,
            vec![
                (TopicPartition::new("t", 0), vec![2, 3]),
                (TopicPartition::new("u", 4), vec![1])
            ]
        );
        let again = decode_reassignment("z", &encode_reassignment(&entries)).unwrap();
        assert_eq!(again, entries);
        for (plan, expect) in [
            (&br#"{"version":2,"partitions":[]}"#[..], "version"),
            (br#"{"version":1}"#, "partitions"),
            (br#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}"#, "distinct"),
            (br#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}"#, "distinct"),
            (br#"{"version":1,"partitions":[{"topic":"t","partition":-1,"replicas":[1]}]}"#, "partition"),
            (br#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#, "twice"),
            (b"[", "JSON"),
        ] {
            let err = decode_reassignment("plan.json", plan).unwrap_err();
            assert!(err.reason.contains(expect), "{err}");
            assert_eq!(err.path, "plan.json");
        }
    }
}
