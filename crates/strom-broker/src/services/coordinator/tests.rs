//! The coordinator's shell against a real broker (a temporary data directory, no listener).
//! Test code: it opens the broker's wiring to get the services, which production code of a
//! service never does.

use std::sync::Arc;

use super::GroupCoordinator;
use crate::broker::Broker;
use crate::services::group::CommittedOffset;

pub(super) fn open_coordinator(dir: &std::path::Path) -> Arc<GroupCoordinator> {
    let sets = [
        format!("log.dirs={}", dir.display()),
        "offsets.retention.minutes=1".to_string(),
    ];
    let config = strom_meta::config::BrokerConfig::load(None, &sets).expect("test config is valid");
    let broker = Broker::open(config, Vec::new()).expect("broker opens");
    broker.services.groups.clone()
}

fn simple_commit(coordinator: &Arc<GroupCoordinator>, group: &str, partition: i32, now_ms: i64) {
    let offsets = vec![(
        "t".to_string(),
        partition,
        CommittedOffset {
            offset: 5,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp_ms: now_ms,
            expire_timestamp_ms: None,
        },
    )];
    let pending = coordinator
        .begin_commit(group, ("", None, -1), offsets, now_ms)
        .expect("a simple commit of a group without members is allowed");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(pending.finish()).expect("commit durable");
}

/// A group known only by its simple commits has an `empty_since` entry (its offsets expire
/// by it). Once its last offset expires, or is deleted, nothing is left of the group and the
/// entry goes too; before, such entries stayed forever, one per group ever committed to.
#[test]
fn a_group_known_only_by_its_offsets_is_forgotten_when_they_go() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = &open_coordinator(dir.path());
    let now = crate::clock::now_ms();
    simple_commit(coordinator, "expires", 0, now);
    // Committed later: still within retention at the expiry check below.
    simple_commit(coordinator, "deleted", 0, now + 30_000);
    simple_commit(coordinator, "deleted", 1, now + 30_000);
    let has_entry = |group: &str| {
        coordinator
            .state
            .lock()
            .unwrap()
            .empty_since
            .contains_key(group)
    };
    assert!(has_entry("expires") && has_entry("deleted"));

    coordinator.expire_offsets(now + 60_000);
    assert_eq!(coordinator.group_offsets("expires"), []);
    assert!(!has_entry("expires"), "forgotten once its offsets expired");
    assert_eq!(coordinator.group_offsets("deleted").len(), 2);

    let (codes, appended) = coordinator
        .delete_offsets("deleted", vec![("t".into(), 0)], now)
        .expect("known group");
    assert_eq!(codes, [0]);
    drop(appended);
    assert!(has_entry("deleted"), "partition 1 still has an offset");
    let (_, appended) = coordinator
        .delete_offsets("deleted", vec![("t".into(), 1)], now)
        .expect("known group");
    drop(appended);
    assert!(
        !has_entry("deleted"),
        "forgotten once its last offset was deleted"
    );
}

/// A cluster broker's coordinator (`zookeeper.connect` set; nothing connects to it here) with
/// `__consumer_offsets` (3 partitions) known to its metadata cache and partition `hosted`'s
/// log open, as a LeaderAndIsr would leave them.
pub(super) fn open_cluster_coordinator(
    dir: &std::path::Path,
    hosted: i32,
) -> Arc<GroupCoordinator> {
    let sets = [
        format!("log.dirs={}", dir.display()),
        "zookeeper.connect=127.0.0.1:1/strom".to_string(),
        "offsets.topic.num.partitions=3".to_string(),
    ];
    let config = strom_meta::config::BrokerConfig::load(None, &sets).expect("test config is valid");
    let broker = Broker::open(config, Vec::new()).expect("broker opens");
    let services = &broker.services;
    let mut cluster = services.metadata.cluster().clone();
    cluster.topics.insert(
        super::OFFSETS_TOPIC.to_string(),
        strom_meta::TopicMetadata {
            name: super::OFFSETS_TOPIC.to_string(),
            topic_id: uuid::Uuid::new_v4(),
            partitions: 3,
            replication_factor: 3,
            configs: Default::default(),
            internal: true,
        },
    );
    services.metadata.replace(cluster);
    services
        .replicas
        .open_partition(
            strom_log::TopicPartition::new(super::OFFSETS_TOPIC, hosted),
            &strom_log::LogConfig::default(),
            crate::clock::now_ms(),
        )
        .expect("open the partition's log");
    services.groups.clone()
}

fn join_request() -> crate::services::group::JoinRequest {
    crate::services::group::JoinRequest {
        token: 0,
        member_id: String::new(),
        group_instance_id: None,
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), bytes::Bytes::new())],
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        require_known_member_id: false,
        reason: None,
    }
}

/// In cluster mode a group is served only while its partition is led here: NOT_COORDINATOR
/// before the LeaderAndIsr, its commits served once loaded, everything dropped (a parked
/// JoinGroup answered NOT_COORDINATOR) when the partition is followed, and the committed
/// offsets back from the log when it is led again.
#[test]
fn a_cluster_coordinator_serves_only_the_partitions_it_leads() {
    use kafka_protocol::error::ResponseError as E;
    let partition = super::partition_for("g", 3);
    let dir = tempfile::tempdir().unwrap();
    let coordinator = &open_cluster_coordinator(dir.path(), partition);
    let now = crate::clock::now_ms();
    let not_coordinator = E::NotCoordinator.code();

    assert_eq!(coordinator.check_coordinator("g"), Err(not_coordinator));
    assert!(!coordinator.is_loaded(partition));
    let refused = coordinator.begin_commit("g", ("", None, -1), Vec::new(), now);
    assert_eq!(refused.err(), Some(not_coordinator));
    let mut answer = coordinator.join("g", join_request(), true, now);
    let joined = answer.try_recv().expect("answered at once");
    assert_eq!(joined.error_code, not_coordinator);

    coordinator.become_leader(partition, 1);
    assert!(
        coordinator.is_loaded(partition),
        "loaded (inline without a runtime)"
    );
    assert_eq!(coordinator.check_coordinator("g"), Ok(()));
    simple_commit(coordinator, "g", 0, now);
    assert_eq!(
        coordinator.committed("g", "t", 0).map(|c| c.offset),
        Some(5)
    );
    // The initial rebalance delay parks this join.
    let mut parked = coordinator.join("g", join_request(), true, now);
    assert!(parked.try_recv().is_err(), "parked");
    // A second LeaderAndIsr for the same leadership (an ISR change) keeps what is served.
    coordinator.become_leader(partition, 2);
    assert_eq!(
        coordinator.committed("g", "t", 0).map(|c| c.offset),
        Some(5)
    );

    coordinator.resign(partition);
    assert_eq!(
        parked
            .try_recv()
            .expect("answered on resignation")
            .error_code,
        not_coordinator
    );
    assert_eq!(coordinator.check_coordinator("g"), Err(not_coordinator));
    assert_eq!(
        coordinator.committed("g", "t", 0),
        None,
        "dropped from memory"
    );
    assert!(coordinator.list().is_empty());

    coordinator.become_leader(partition, 3);
    assert!(coordinator.is_loaded(partition));
    assert_eq!(
        coordinator.committed("g", "t", 0).map(|c| c.offset),
        Some(5),
        "replayed from the log"
    );
}

/// While a partition loads, its groups answer COORDINATOR_LOAD_IN_PROGRESS; a load that a
/// resignation (or a newer load) overtook installs nothing when it ends.
#[test]
fn a_loading_partition_answers_load_in_progress_and_a_cancelled_load_installs_nothing() {
    use super::ownership::Ownership;
    use kafka_protocol::error::ResponseError as E;
    let partition = super::partition_for("g", 3);
    let dir = tempfile::tempdir().unwrap();
    let coordinator = &open_cluster_coordinator(dir.path(), partition);
    let now = crate::clock::now_ms();
    coordinator.become_leader(partition, 1);
    simple_commit(coordinator, "g", 0, now);
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
    let in_progress = E::CoordinatorLoadInProgress.code();
    assert_eq!(coordinator.check_coordinator("g"), Err(in_progress));
    let mut answer = coordinator.join("g", join_request(), true, now);
    assert_eq!(answer.try_recv().unwrap().error_code, in_progress);
    assert_eq!(coordinator.heartbeat("g", "m", None, 1, now), in_progress);
    assert!(coordinator.is_loading());

    coordinator.load_partition(partition, 6);
    assert!(
        !coordinator.is_loaded(partition),
        "an overtaken load installs nothing"
    );
    assert_eq!(coordinator.committed("g", "t", 0), None);
    coordinator.load_partition(partition, 7);
    assert!(coordinator.is_loaded(partition));
    assert!(!coordinator.is_loading());
    assert_eq!(
        coordinator.committed("g", "t", 0).map(|c| c.offset),
        Some(5)
    );
}

/// A broker that missed the LeaderAndIsr taking its partition away, and is made leader again
/// after another leader wrote in an epoch in between, reloads rather than keep stale memory;
/// a new epoch with nothing written by anyone else keeps what is served.
#[test]
fn leading_again_after_another_leader_wrote_reloads_the_partition() {
    use super::records::{OffsetValue, RecordKey};
    let partition = super::partition_for("g", 3);
    let dir = tempfile::tempdir().unwrap();
    let coordinator = &open_cluster_coordinator(dir.path(), partition);
    let now = crate::clock::now_ms();
    coordinator.become_leader(partition, 1);
    simple_commit(coordinator, "g", 0, now);
    coordinator.become_leader(partition, 2);
    assert_eq!(
        coordinator.committed("g", "t", 0).map(|c| c.offset),
        Some(5)
    );

    // Epoch 3 is another leader's: it commits offset 9 (as a follower here would copy it).
    let key = RecordKey::Offset {
        group: "g".into(),
        topic: "t".into(),
        partition: 0,
    }
    .encode();
    let value = OffsetValue {
        offset: 9,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: now,
        expire_timestamp_ms: None,
    }
    .encode();
    let batch = strom_log::records::encode_batch(&[(Some(&key[..]), Some(&value[..]))], now);
    {
        let hosted = coordinator
            .replicas
            .partition(super::OFFSETS_TOPIC, partition)
            .unwrap();
        let mut log = hosted.log().lock().unwrap();
        log.start_leader_epoch(3).unwrap();
        log.append(bytes::Bytes::from(batch), 3, now).unwrap();
    }
    coordinator.become_leader(partition, 4);
    assert!(coordinator.is_loaded(partition));
    assert_eq!(
        coordinator.committed("g", "t", 0).map(|c| c.offset),
        Some(9),
        "reloaded with the other leader's commit"
    );
}
