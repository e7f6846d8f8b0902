//! TxnOffsetCommit and the end of transactions against a real `__consumer_offsets` log: the
//! in-memory path ([`GroupCoordinator::complete_transaction`]), and the replay of a partition
//! whose markers were appended straight to its log (as the transaction coordinator's marker
//! writer does). Test code: it opens the broker's wiring to get the services.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use strom_log::control::TxnMarker;

use super::tests::{open_cluster_coordinator, open_coordinator};
use super::{GroupCoordinator, TxnCommitter, OFFSETS_TOPIC};
use crate::services::group::CommittedOffset;

fn committer(producer_id: i64, producer_epoch: i16) -> TxnCommitter<'static> {
    TxnCommitter {
        producer_id,
        producer_epoch,
        member_id: "",
        group_instance_id: None,
        generation_id: -1,
    }
}

fn offset(offset: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: Some("m".into()),
        commit_timestamp_ms: 0,
        expire_timestamp_ms: None,
    }
}

/// TxnOffsetCommit of `t-partition = value` for `group` by the producer, answered once durable.
fn txn_commit(
    coordinator: &Arc<GroupCoordinator>,
    group: &str,
    producer: (i64, i16),
    partition: i32,
    value: i64,
) -> Result<(), i16> {
    let offsets = vec![("t".to_string(), partition, offset(value))];
    let pending = coordinator.begin_txn_commit(
        group,
        committer(producer.0, producer.1),
        offsets,
        crate::clock::now_ms(),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(pending.finish())
}

fn plain_commit(coordinator: &Arc<GroupCoordinator>, group: &str, partition: i32, value: i64) {
    let offsets = vec![("t".to_string(), partition, offset(value))];
    let pending = coordinator
        .begin_commit(group, ("", None, -1), offsets, crate::clock::now_ms())
        .expect("a simple commit");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(pending.finish()).expect("durable");
}

fn committed(coordinator: &GroupCoordinator, group: &str, partition: i32) -> Option<i64> {
    coordinator
        .committed(group, "t", partition)
        .map(|c| c.offset)
}

/// Appends the coordinator's marker for `producer_id` to the group's partition log directly.
fn append_marker(coordinator: &GroupCoordinator, group: &str, producer: (i64, i16), commit: bool) {
    let hosted = coordinator
        .replicas
        .partition(OFFSETS_TOPIC, coordinator.partition_of(group))
        .expect("the partition is open");
    let mut log = hosted.log().lock().unwrap();
    let marker = TxnMarker {
        producer_id: producer.0,
        producer_epoch: producer.1,
        coordinator_epoch: 0,
        commit,
    };
    let epoch = log.latest_leader_epoch().unwrap_or(0);
    log.append_txn_marker(&marker, epoch, crate::clock::now_ms())
        .expect("marker appended");
}

#[test]
fn pending_offsets_count_once_their_transaction_commits() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = &open_coordinator(dir.path());
    let partition = coordinator.partition_of("g");
    plain_commit(coordinator, "g", 0, 3);
    txn_commit(coordinator, "g", (1000, 0), 0, 42).expect("accepted");
    txn_commit(coordinator, "g", (1001, 0), 1, 43).expect("accepted");
    assert_eq!(
        committed(coordinator, "g", 0),
        Some(3),
        "pending: invisible"
    );
    assert_eq!(committed(coordinator, "g", 1), None);
    assert!(coordinator.has_pending_txn_offset("g", "t", 0));
    txn_commit(coordinator, "pending-only", (1002, 0), 0, 1).expect("accepted");
    let listed: Vec<String> = coordinator.list().into_iter().map(|g| g.0).collect();
    assert_eq!(
        listed,
        ["g", "pending-only"],
        "known by a pending offset alone"
    );

    // The records are a transactional batch of the producer: its transaction is open in the
    // partition until a marker.
    let hosted = coordinator
        .replicas
        .partition(OFFSETS_TOPIC, partition)
        .unwrap();
    let open: Vec<i64> = {
        let log = hosted.log().lock().unwrap();
        log.ongoing_transactions()
            .iter()
            .map(|t| t.producer_id)
            .collect()
    };
    assert_eq!(open, [1000, 1001]);

    // A marker of another partition changes nothing here.
    let other = (partition + 1) % coordinator.partitions;
    coordinator.complete_transaction(other, 1000, true);
    assert_eq!(committed(coordinator, "g", 0), Some(3));

    coordinator.complete_transaction(partition, 1000, true);
    coordinator.complete_transaction(partition, 1001, false);
    coordinator.complete_transaction(coordinator.partition_of("pending-only"), 1002, false);
    let known = |group: &str| {
        coordinator
            .state
            .lock()
            .unwrap()
            .empty_since
            .contains_key(group)
    };
    assert!(
        !known("pending-only"),
        "an aborted group known only by its offsets is gone"
    );
    assert!(known("g"));
    assert_eq!(committed(coordinator, "g", 0), Some(42));
    assert_eq!(committed(coordinator, "g", 1), None, "aborted");
    assert!(!coordinator.has_pending_txn_offset("g", "t", 0));
    assert!(!coordinator.has_pending_txn_offset("g", "t", 1));
    let metadata = coordinator.committed("g", "t", 0).unwrap().metadata;
    assert_eq!(metadata.as_deref(), Some("m"));
}

/// The coordinator's batches continue the producer's sequence in the partition, and an epoch
/// older than a marker's there is refused.
#[test]
fn a_fenced_producer_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = &open_coordinator(dir.path());
    txn_commit(coordinator, "g", (7, 0), 0, 1).expect("accepted");
    txn_commit(coordinator, "g", (7, 0), 1, 2).expect("the next sequence is accepted");
    let hosted = coordinator
        .replicas
        .partition(OFFSETS_TOPIC, coordinator.partition_of("g"))
        .unwrap();
    let last_sequence = {
        let log = hosted.log().lock().unwrap();
        let entry = log.producer_state().get(7).expect("the producer is known");
        entry.batches.back().map(|b| b.last_sequence)
    };
    assert_eq!(last_sequence, Some(1));

    // The transaction coordinator fenced epoch 0 and aborted at epoch 1.
    append_marker(coordinator, "g", (7, 1), false);
    coordinator.complete_transaction(coordinator.partition_of("g"), 7, false);
    assert_eq!(
        txn_commit(coordinator, "g", (7, 0), 2, 3),
        Err(E::InvalidProducerEpoch.code())
    );
    assert!(!coordinator.has_pending_txn_offset("g", "t", 2));
    txn_commit(coordinator, "g", (7, 1), 2, 3).expect("the new epoch starts at sequence 0");
    assert!(coordinator.has_pending_txn_offset("g", "t", 2));
    assert_eq!(
        committed(coordinator, "g", 0),
        None,
        "the aborted offsets never count"
    );

    assert_eq!(
        txn_commit(coordinator, "unknown", (8, 0), 0, 1),
        Ok(()),
        "a group unknown here takes a commit without generation"
    );
    let mut with_generation = committer(8, 0);
    with_generation.generation_id = 3;
    let refused = coordinator.begin_txn_commit(
        "nobody",
        with_generation,
        vec![("t".into(), 0, offset(1))],
        crate::clock::now_ms(),
    );
    assert_eq!(refused.err(), Some(E::IllegalGeneration.code()));
}

/// Loading a partition replays its transactions: COMMIT applies (only over offsets written
/// before), ABORT drops, no marker yet leaves the offsets pending, and a tombstone written
/// after a pending offset cancels it.
#[test]
fn a_load_replays_transactions_from_the_log() {
    let partition = super::partition_for("g", 3);
    let dir = tempfile::tempdir().unwrap();
    let coordinator = &open_cluster_coordinator(dir.path(), partition);
    coordinator.become_leader(partition, 1);
    txn_commit(coordinator, "g", (1, 0), 0, 10).expect("accepted");
    plain_commit(coordinator, "g", 0, 50);
    txn_commit(coordinator, "g", (2, 0), 1, 11).expect("accepted");
    txn_commit(coordinator, "g", (3, 0), 2, 12).expect("accepted");
    txn_commit(coordinator, "g", (4, 0), 3, 13).expect("accepted");
    txn_commit(coordinator, "g", (5, 0), 4, 14).expect("accepted");
    let (codes, appended) = coordinator
        .delete_offsets("g", vec![("t".into(), 4)], crate::clock::now_ms())
        .expect("known group");
    assert_eq!(codes, [0]);
    drop(appended);
    coordinator.resign(partition);

    // Markers written while another broker led, say.
    append_marker(coordinator, "g", (1, 0), true);
    append_marker(coordinator, "g", (2, 0), false);
    append_marker(coordinator, "g", (4, 0), true);
    append_marker(coordinator, "g", (5, 0), true);
    coordinator.become_leader(partition, 2);
    assert!(coordinator.is_loaded(partition));
    assert_eq!(
        committed(coordinator, "g", 0),
        Some(50),
        "written after the txn's"
    );
    assert_eq!(committed(coordinator, "g", 1), None, "aborted");
    assert_eq!(committed(coordinator, "g", 2), None, "still pending");
    assert!(coordinator.has_pending_txn_offset("g", "t", 2));
    assert_eq!(committed(coordinator, "g", 3), Some(13), "committed");
    assert_eq!(
        committed(coordinator, "g", 4),
        None,
        "deleted before its COMMIT"
    );

    // Producer 3's marker comes after the load.
    append_marker(coordinator, "g", (3, 0), true);
    coordinator.complete_transaction(partition, 3, true);
    assert_eq!(committed(coordinator, "g", 2), Some(12));
    assert!(!coordinator.has_pending_txn_offset("g", "t", 2));
}

/// A marker written while its partition loads is applied once the load is installed, even
/// when the replay did not read it.
#[test]
fn a_marker_during_a_load_is_applied_after_it() {
    use super::ownership::Ownership;
    let partition = super::partition_for("g", 3);
    let dir = tempfile::tempdir().unwrap();
    let coordinator = &open_cluster_coordinator(dir.path(), partition);
    coordinator.become_leader(partition, 1);
    txn_commit(coordinator, "g", (1, 0), 0, 10).expect("accepted");
    txn_commit(coordinator, "g", (2, 0), 1, 11).expect("accepted");
    coordinator.resign(partition);
    let loading = Ownership::Loading {
        id: 7,
        leader_epoch: 2,
    };
    coordinator
        .state
        .lock()
        .unwrap()
        .owned
        .insert(partition, loading);
    coordinator.complete_transaction(partition, 1, true);
    coordinator.complete_transaction(partition, 2, false);
    coordinator.load_partition(partition, 7);
    assert!(coordinator.is_loaded(partition));
    assert_eq!(committed(coordinator, "g", 0), Some(10));
    assert_eq!(committed(coordinator, "g", 1), None);
    assert!(!coordinator.has_pending_txn_offset("g", "t", 1));

    // A partition this broker does not lead ignores markers (its leader replays them).
    txn_commit(coordinator, "g", (3, 0), 2, 12).expect("accepted");
    coordinator.resign(partition);
    coordinator.complete_transaction(partition, 3, true);
    coordinator.become_leader(partition, 3);
    assert!(
        coordinator.has_pending_txn_offset("g", "t", 2),
        "no marker in the log: still pending"
    );
}
