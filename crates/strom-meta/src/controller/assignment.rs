//! Replica placement for new topics and partitions (Kafka's `AdminUtils.assignReplicasToBrokers`)
//! and the validation of a manual assignment (CreateTopics with `assignments`).
//!
//! Pure functions: the random start index and replica shift Kafka draws are arguments, so the
//! caller draws them from its seeded generator and a test can fix them.

use std::collections::{BTreeMap, BTreeSet};

use crate::replication::BrokerId;

/// Why an assignment cannot be made, with Kafka's error code and message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    /// 37 INVALID_PARTITIONS.
    #[error("{0}")]
    InvalidPartitions(String),
    /// 38 INVALID_REPLICATION_FACTOR.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// 39 INVALID_REPLICA_ASSIGNMENT.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// Kafka throws an `AdminOperationException` here, which clients see as -1
    /// UNKNOWN_SERVER_ERROR with this message.
    #[error("Not all brokers have rack information for replica rack aware assignment.")]
    MixedRackInformation,
}

impl AssignmentError {
    /// The Kafka error code.
    pub fn code(&self) -> i16 {
        match self {
            AssignmentError::InvalidPartitions(_) => 37,
            AssignmentError::InvalidReplicationFactor(_) => 38,
            AssignmentError::InvalidReplicaAssignment(_) => 39,
            AssignmentError::MixedRackInformation => -1,
        }
    }
}

/// A live broker as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementBroker {
    /// `broker.id`.
    pub id: BrokerId,
    /// `broker.rack`.
    pub rack: Option<String>,
}

/// Places `partitions` partitions (numbered from `first_partition`) with `replication_factor`
/// replicas each on `brokers`, as Kafka does: without racks, the first replica of partition
/// `p` is broker `(p + start_index) mod n` of the brokers sorted by id and the others follow at
/// a shift that grows by one every `n` partitions; with racks on every broker, the same walk
/// over a list that alternates racks, skipping a broker whose rack (or itself) already has a
/// replica while some rack (or broker) has none. `start_index` and `replica_shift` are Kafka's
/// two random draws (reduced modulo the broker count here).
pub fn assign_replicas(
    brokers: &[PlacementBroker],
    partitions: i32,
    replication_factor: i32,
    first_partition: i32,
    start_index: usize,
    replica_shift: usize,
) -> Result<BTreeMap<i32, Vec<BrokerId>>, AssignmentError> {
    if partitions <= 0 {
        return Err(AssignmentError::InvalidPartitions(
            "Number of partitions must be larger than 0.".into(),
        ));
    }
    if replication_factor <= 0 {
        return Err(AssignmentError::InvalidReplicationFactor(
            "Replication factor must be larger than 0.".into(),
        ));
    }
    if replication_factor as usize > brokers.len() {
        return Err(AssignmentError::InvalidReplicationFactor(format!(
            "Replication factor: {replication_factor} larger than available brokers: {}.",
            brokers.len()
        )));
    }
    let with_rack = brokers.iter().filter(|b| b.rack.is_some()).count();
    if with_rack == 0 {
        let mut ids: Vec<BrokerId> = brokers.iter().map(|b| b.id).collect();
        ids.sort_unstable();
        ids.dedup();
        return Ok(rack_unaware(
            &ids,
            partitions,
            replication_factor as usize,
            first_partition,
            start_index,
            replica_shift,
        ));
    }
    if with_rack < brokers.len() {
        return Err(AssignmentError::MixedRackInformation);
    }
    Ok(rack_aware(
        brokers,
        partitions,
        replication_factor as usize,
        first_partition,
        start_index,
        replica_shift,
    ))
}

/// The index of the `replica`-th extra replica (after the first) in a list of `brokers`.
fn replica_index(first: usize, shift: usize, replica: usize, brokers: usize) -> usize {
    let step = 1 + (shift + replica) % (brokers - 1);
    (first + step) % brokers
}

fn rack_unaware(
    ids: &[BrokerId],
    partitions: i32,
    replication_factor: usize,
    first_partition: i32,
    start_index: usize,
    replica_shift: usize,
) -> BTreeMap<i32, Vec<BrokerId>> {
    let n = ids.len();
    let start = start_index % n;
    let mut shift = replica_shift % n;
    let mut assignment = BTreeMap::new();
    let first_partition = first_partition.max(0);
    for partition in first_partition..first_partition + partitions {
        let p = partition as usize;
        if p > 0 && p.is_multiple_of(n) {
            shift += 1;
        }
        let first = (p + start) % n;
        let mut replicas = vec![ids[first]];
        for j in 0..replication_factor - 1 {
            replicas.push(ids[replica_index(first, shift, j, n)]);
        }
        assignment.insert(partition, replicas);
    }
    assignment
}

/// The brokers ordered rack by rack in turn (racks sorted by name, brokers of a rack by id):
/// Kafka's `getRackAlternatedBrokerList`.
fn rack_alternated(brokers: &[PlacementBroker]) -> Vec<(BrokerId, String)> {
    let mut by_rack: BTreeMap<&str, Vec<BrokerId>> = BTreeMap::new();
    for broker in brokers {
        by_rack
            .entry(broker.rack.as_deref().unwrap_or_default())
            .or_default()
            .push(broker.id);
    }
    for ids in by_rack.values_mut() {
        ids.sort_unstable();
        ids.dedup();
    }
    let total: usize = by_rack.values().map(Vec::len).sum();
    let racks: Vec<(&str, Vec<BrokerId>)> = by_rack.into_iter().collect();
    let mut cursors = vec![0usize; racks.len()];
    let mut list = Vec::with_capacity(total);
    let mut rack = 0;
    while list.len() < total {
        let (name, ids) = &racks[rack];
        if let Some(&id) = ids.get(cursors[rack]) {
            list.push((id, name.to_string()));
            cursors[rack] += 1;
        }
        rack = (rack + 1) % racks.len();
    }
    list
}

fn rack_aware(
    brokers: &[PlacementBroker],
    partitions: i32,
    replication_factor: usize,
    first_partition: i32,
    start_index: usize,
    replica_shift: usize,
) -> BTreeMap<i32, Vec<BrokerId>> {
    let list = rack_alternated(brokers);
    let n = list.len();
    let rack_count = list.iter().map(|(_, r)| r).collect::<BTreeSet<_>>().len();
    let start = start_index % n;
    let mut shift = replica_shift % n;
    let mut assignment = BTreeMap::new();
    let first_partition = first_partition.max(0);
    for partition in first_partition..first_partition + partitions {
        let p = partition as usize;
        if p > 0 && p.is_multiple_of(n) {
            shift += 1;
        }
        let first = (p + start) % n;
        let (leader, leader_rack) = &list[first];
        let mut replicas = vec![*leader];
        let mut racks_used: BTreeSet<&str> = BTreeSet::from([leader_rack.as_str()]);
        let mut brokers_used: BTreeSet<BrokerId> = BTreeSet::from([*leader]);
        let mut k = 0;
        for _ in 0..replication_factor - 1 {
            loop {
                let (broker, rack) = &list[replica_index(first, shift * rack_count, k, n)];
                k += 1;
                let rack_ok = !racks_used.contains(rack.as_str()) || racks_used.len() == rack_count;
                let broker_ok = !brokers_used.contains(broker) || brokers_used.len() == n;
                if rack_ok && broker_ok {
                    replicas.push(*broker);
                    racks_used.insert(rack.as_str());
                    brokers_used.insert(*broker);
                    break;
                }
            }
        }
        assignment.insert(partition, replicas);
    }
    assignment
}

/// Places the partitions CreatePartitions adds to a topic whose current assignment is
/// `existing`, up to `total` partitions, as ZooKeeper-era Kafka's
/// `AdminZkClient.createPartitions` does: the existing replication factor, partition numbers
/// from the current count on, and both of Kafka's draws fixed to the index of the first broker
/// (by id) at or above partition 0's first replica, so repeated additions continue its walk.
pub fn assign_added_partitions(
    brokers: &[PlacementBroker],
    existing: &BTreeMap<i32, Vec<BrokerId>>,
    total: i32,
) -> Result<BTreeMap<i32, Vec<BrokerId>>, AssignmentError> {
    let current = existing.len() as i32;
    if total <= current {
        return Err(AssignmentError::InvalidPartitions(format!(
            "Topic currently has {current} partitions, {total} would not be an increase."
        )));
    }
    let Some(first) = existing.get(&0).filter(|r| !r.is_empty()) else {
        return Err(AssignmentError::InvalidReplicaAssignment(
            "The topic's current assignment has no partition 0.".into(),
        ));
    };
    let mut ids: Vec<BrokerId> = brokers.iter().map(|b| b.id).collect();
    ids.sort_unstable();
    let start = ids.iter().position(|&id| id >= first[0]).unwrap_or(0);
    assign_replicas(
        brokers,
        total - current,
        first.len() as i32,
        current,
        start,
        start,
    )
}

/// Checks a manual assignment (CreateTopics `assignments`) as Kafka does: partitions numbered
/// `0..n` without gaps, every partition with the same, non-zero number of replicas, no broker
/// twice in a partition. Unlike ZooKeeper-era Kafka (which accepts them and leaves the
/// partitions offline), broker ids that are not registered are refused, as KRaft does.
pub fn validate_manual_assignment(
    assignment: &BTreeMap<i32, Vec<BrokerId>>,
    registered: &BTreeSet<BrokerId>,
) -> Result<(), AssignmentError> {
    let invalid = |message: String| Err(AssignmentError::InvalidReplicaAssignment(message));
    if assignment.is_empty() {
        return invalid("The manual assignment lists no partitions.".into());
    }
    let count = assignment.len() as i64;
    let keys_ok = assignment
        .keys()
        .enumerate()
        .all(|(i, &p)| i64::from(p) == i as i64);
    if !keys_ok {
        return invalid(format!(
            "Partitions should be a consecutive 0-based integer sequence; got {:?} for {count} partitions.",
            assignment.keys().collect::<Vec<_>>()
        ));
    }
    let sizes: BTreeSet<usize> = assignment.values().map(Vec::len).collect();
    if sizes.len() != 1 {
        return invalid("All partitions should have the same number of replicas.".into());
    }
    for (partition, replicas) in assignment {
        if replicas.is_empty() {
            return invalid(format!(
                "Partition {partition} of the manual assignment has an empty replica list."
            ));
        }
        let distinct: BTreeSet<&BrokerId> = replicas.iter().collect();
        if distinct.len() != replicas.len() {
            return invalid(format!(
                "Duplicate replica assignment found for partition {partition}: {replicas:?}."
            ));
        }
        if let Some(unknown) = replicas.iter().find(|r| !registered.contains(r)) {
            return invalid(format!(
                "The manual assignment of partition {partition} names broker {unknown}, which is not registered."
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(ids: &[BrokerId]) -> Vec<PlacementBroker> {
        ids.iter()
            .map(|&id| PlacementBroker { id, rack: None })
            .collect()
    }

    #[test]
    fn rack_unaware_matches_kafkas_fixed_start_example() {
        // Kafka's AdminRackAwareTest/AssignmentTest use fixedStartIndex 0 for both draws:
        // 5 brokers, 10 partitions, RF 3.
        let got = assign_replicas(&plain(&[0, 1, 2, 3, 4]), 10, 3, 0, 0, 0).unwrap();
        let expected: BTreeMap<i32, Vec<BrokerId>> = [
            (0, vec![0, 1, 2]),
            (1, vec![1, 2, 3]),
            (2, vec![2, 3, 4]),
            (3, vec![3, 4, 0]),
            (4, vec![4, 0, 1]),
            (5, vec![0, 2, 3]),
            (6, vec![1, 3, 4]),
            (7, vec![2, 4, 0]),
            (8, vec![3, 0, 1]),
            (9, vec![4, 1, 2]),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn rack_aware_spreads_every_partition_over_racks() {
        let brokers: Vec<PlacementBroker> =
            [(0, "a"), (1, "a"), (2, "b"), (3, "b"), (4, "c"), (5, "c")]
                .iter()
                .map(|&(id, rack)| PlacementBroker {
                    id,
                    rack: Some(rack.into()),
                })
                .collect();
        assert_eq!(
            rack_alternated(&brokers)
                .iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>(),
            vec![0, 2, 4, 1, 3, 5]
        );
        let rack_of = |id: BrokerId| brokers[id as usize].rack.clone().unwrap();
        for start in 0..6 {
            for shift in 0..6 {
                let got = assign_replicas(&brokers, 12, 3, 0, start, shift).unwrap();
                let mut leaders = BTreeMap::new();
                for replicas in got.values() {
                    let racks: BTreeSet<String> = replicas.iter().map(|&r| rack_of(r)).collect();
                    assert_eq!(racks.len(), 3, "{replicas:?}");
                    *leaders.entry(replicas[0]).or_insert(0) += 1;
                }
                assert!(leaders.values().all(|&c| c == 2), "{leaders:?}");
            }
        }
    }

    #[test]
    fn refusals_carry_kafkas_codes() {
        let err = assign_replicas(&plain(&[1, 2]), 1, 3, 0, 0, 0).unwrap_err();
        assert_eq!(err.code(), 38);
        assert_eq!(
            err.to_string(),
            "Replication factor: 3 larger than available brokers: 2."
        );
        assert_eq!(
            assign_replicas(&plain(&[1]), 0, 1, 0, 0, 0)
                .unwrap_err()
                .code(),
            37
        );
        let mut mixed = plain(&[1, 2]);
        mixed[0].rack = Some("a".into());
        assert_eq!(
            assign_replicas(&mixed, 1, 1, 0, 0, 0).unwrap_err(),
            AssignmentError::MixedRackInformation
        );
    }

    #[test]
    fn manual_assignment_validation() {
        let registered: BTreeSet<BrokerId> = [1, 2, 3].into();
        let ok: BTreeMap<i32, Vec<BrokerId>> = [(0, vec![1, 2]), (1, vec![2, 3])].into();
        assert_eq!(validate_manual_assignment(&ok, &registered), Ok(()));
        let cases: Vec<BTreeMap<i32, Vec<BrokerId>>> = vec![
            BTreeMap::new(),
            [(0, vec![1, 2]), (2, vec![2, 3])].into(),
            [(0, vec![1, 2]), (1, vec![3])].into(),
            [(0, vec![1, 1])].into(),
            [(0, vec![])].into(),
            [(0, vec![1, 9])].into(),
        ];
        for case in cases {
            let err = validate_manual_assignment(&case, &registered).unwrap_err();
            assert_eq!(err.code(), 39, "{case:?}");
        }
    }
}
