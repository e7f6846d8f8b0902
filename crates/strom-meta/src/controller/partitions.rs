//! CreatePartitions' decision (Kafka's `AdminZkClient.createNewPartitionsAssignment` with the
//! checks its admin manager makes first): the new partition count checked against the current
//! one, a manual assignment of the new partitions checked (one replica list per new partition,
//! the topic's replication factor, no broker twice, only registered brokers), or the new
//! partitions placed by [`super::assignment::assign_replicas`] from the index of partition 0's
//! first replica, as Kafka does, so they continue the existing spread.
//!
//! A pure function: the shell reads the assignment with its znode version, calls
//! [`plan_new_partitions`], and writes the result conditionally; the controller then sees the
//! new partitions like a new topic's. It does not own the topic's existence or deletion mark
//! (the shell answers UNKNOWN_TOPIC_OR_PARTITION and INVALID_TOPIC_EXCEPTION for those).

use std::collections::{BTreeMap, BTreeSet};

use super::assignment::{assign_replicas, AssignmentError, PlacementBroker};
use crate::replication::BrokerId;

/// The whole assignment after adding partitions up to `new_count`: `current` unchanged plus the
/// new partitions, from `manual` (one replica list per new partition, in order) or placed over
/// `brokers` (the registered brokers).
pub fn plan_new_partitions(
    current: &BTreeMap<i32, Vec<BrokerId>>,
    new_count: i32,
    manual: Option<&[Vec<BrokerId>]>,
    brokers: &[PlacementBroker],
) -> Result<BTreeMap<i32, Vec<BrokerId>>, AssignmentError> {
    let old_count = current.len() as i32;
    if new_count < old_count {
        return Err(AssignmentError::InvalidPartitions(format!(
            "Topic currently has {old_count} partitions, which is higher than the requested \
             {new_count}."
        )));
    }
    if new_count == old_count {
        return Err(AssignmentError::InvalidPartitions(format!(
            "Topic already has {old_count} partitions."
        )));
    }
    let added = new_count - old_count;
    let first_replicas = current.get(&0).or_else(|| current.values().next());
    let replication_factor = first_replicas.map_or(0, Vec::len);
    let new_partitions: BTreeMap<i32, Vec<BrokerId>> = match manual {
        Some(lists) => {
            if lists.len() as i64 != i64::from(added) {
                return Err(AssignmentError::InvalidReplicaAssignment(format!(
                    "Increasing the number of partitions by {added} but {} assignments provided.",
                    lists.len()
                )));
            }
            let planned: BTreeMap<i32, Vec<BrokerId>> = lists
                .iter()
                .enumerate()
                .map(|(i, replicas)| (old_count + i as i32, replicas.clone()))
                .collect();
            let registered: BTreeSet<BrokerId> = brokers.iter().map(|b| b.id).collect();
            validate_new_replicas(&planned, replication_factor, &registered)?;
            planned
        }
        None => {
            let mut ids: Vec<BrokerId> = brokers.iter().map(|b| b.id).collect();
            ids.sort_unstable();
            let start = first_replicas
                .and_then(|r| r.first())
                .and_then(|first| ids.iter().position(|id| id >= first))
                .unwrap_or(0);
            assign_replicas(
                brokers,
                added,
                replication_factor as i32,
                old_count,
                start,
                start,
            )?
        }
    };
    let mut whole = current.clone();
    whole.extend(new_partitions);
    Ok(whole)
}

/// Kafka's `validateReplicaAssignment` for the new partitions of an existing topic.
fn validate_new_replicas(
    planned: &BTreeMap<i32, Vec<BrokerId>>,
    replication_factor: usize,
    registered: &BTreeSet<BrokerId>,
) -> Result<(), AssignmentError> {
    let invalid = |message: String| Err(AssignmentError::InvalidReplicaAssignment(message));
    for (partition, replicas) in planned {
        if replicas.is_empty() {
            return invalid(format!(
                "Cannot have replication factor of 0 for partition id {partition}."
            ));
        }
        let distinct: BTreeSet<&BrokerId> = replicas.iter().collect();
        if distinct.len() != replicas.len() {
            return invalid(format!(
                "Duplicate brokers not allowed in replica assignment: {} for partition id \
                 {partition}.",
                join(replicas)
            ));
        }
    }
    let unknown: BTreeSet<BrokerId> = planned
        .values()
        .flatten()
        .copied()
        .filter(|id| !registered.contains(id))
        .collect();
    if !unknown.is_empty() {
        let unknown: Vec<BrokerId> = unknown.into_iter().collect();
        return invalid(format!(
            "Unknown broker(s) in replica assignment: {}.",
            join(&unknown)
        ));
    }
    let odd: Vec<(i32, usize)> = planned
        .iter()
        .filter(|(_, r)| r.len() != replication_factor)
        .map(|(p, r)| (*p, r.len()))
        .collect();
    if !odd.is_empty() {
        let partitions: Vec<String> = odd.iter().map(|(p, _)| p.to_string()).collect();
        let factors: Vec<String> = odd.iter().map(|(_, n)| n.to_string()).collect();
        return invalid(format!(
            "Inconsistent replication factor between partitions, partition 0 has \
             {replication_factor} while partitions [{}] have replication factors [{}], \
             respectively.",
            partitions.join(", "),
            factors.join(", ")
        ));
    }
    Ok(())
}

fn join(ids: &[BrokerId]) -> String {
    let ids: Vec<String> = ids.iter().map(BrokerId::to_string).collect();
    ids.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(ids: &[BrokerId]) -> Vec<PlacementBroker> {
        ids.iter()
            .map(|&id| PlacementBroker { id, rack: None })
            .collect()
    }

    fn current() -> BTreeMap<i32, Vec<BrokerId>> {
        BTreeMap::from([(0, vec![2, 3]), (1, vec![3, 1])])
    }

    #[test]
    fn placed_partitions_continue_from_partition_zeros_first_replica() {
        let planned = plan_new_partitions(&current(), 5, None, &brokers(&[1, 2, 3])).unwrap();
        assert_eq!(planned.len(), 5);
        assert_eq!(planned[&0], vec![2, 3], "existing partitions unchanged");
        assert_eq!(planned[&1], vec![3, 1]);
        // Kafka's walk with start index 1 (broker 2) and shift 1, from partition 2.
        let expected = assign_replicas(&brokers(&[1, 2, 3]), 3, 2, 2, 1, 1).unwrap();
        for (p, replicas) in expected {
            assert_eq!(planned[&p], replicas, "partition {p}");
        }
        for p in 2..5 {
            let distinct: BTreeSet<_> = planned[&p].iter().collect();
            assert_eq!(distinct.len(), 2, "partition {p}: {:?}", planned[&p]);
        }
    }

    #[test]
    fn counts_are_checked_as_kafka_does() {
        let all = brokers(&[1, 2, 3]);
        let lower = plan_new_partitions(&current(), 1, None, &all).unwrap_err();
        assert_eq!(lower.code(), 37);
        assert_eq!(
            lower.to_string(),
            "Topic currently has 2 partitions, which is higher than the requested 1."
        );
        let same = plan_new_partitions(&current(), 2, None, &all).unwrap_err();
        assert_eq!(same.to_string(), "Topic already has 2 partitions.");
        let too_wide = plan_new_partitions(&current(), 3, None, &brokers(&[1])).unwrap_err();
        assert_eq!(too_wide.code(), 38, "{too_wide}");
    }

    #[test]
    fn a_manual_assignment_is_validated() {
        let all = brokers(&[1, 2, 3]);
        let ok = plan_new_partitions(&current(), 4, Some(&[vec![1, 2], vec![2, 1]]), &all).unwrap();
        assert_eq!(ok[&2], vec![1, 2]);
        assert_eq!(ok[&3], vec![2, 1]);
        let cases: [(&[Vec<BrokerId>], &str); 5] = [
            (
                &[vec![1, 2]],
                "Increasing the number of partitions by 2 but 1 assignments provided.",
            ),
            (
                &[vec![1, 2], vec![]],
                "Cannot have replication factor of 0 for partition id 3.",
            ),
            (
                &[vec![1, 1], vec![1, 2]],
                "Duplicate brokers not allowed in replica assignment: 1, 1 for partition id 2.",
            ),
            (
                &[vec![1, 9], vec![7, 2]],
                "Unknown broker(s) in replica assignment: 7, 9.",
            ),
            (
                &[vec![1, 2], vec![3]],
                "Inconsistent replication factor between partitions, partition 0 has 2 while \
                 partitions [3] have replication factors [1], respectively.",
            ),
        ];
        for (manual, message) in cases {
            let error = plan_new_partitions(&current(), 4, Some(manual), &all).unwrap_err();
            assert_eq!(error.code(), 39, "{manual:?}");
            assert_eq!(error.to_string(), message, "{manual:?}");
        }
    }
}
