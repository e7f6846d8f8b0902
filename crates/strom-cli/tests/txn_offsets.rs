//! TxnOffsetCommit over the wire against a real broker: per-partition refusals, offsets that
//! stay pending (OffsetFetch does not return them, `require_stable` answers
//! UNSTABLE_OFFSET_COMMIT), and their fate across restarts once the transaction's COMMIT or
//! ABORT marker is in `__consumer_offsets`. The markers are appended to that partition's log
//! while the broker is stopped, as the transaction coordinator's marker writer would have
//! appended them; the restarted broker's replay decides.

mod common;

use std::path::Path;

use common::*;
use kafka_protocol::messages::{self as km};
use kafka_protocol::protocol::StrBytes;
use strom_log::control::TxnMarker;

const GROUP: &str = "eos";
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// TxnOffsetCommit at `version` of `(partition, offset, metadata)` of topic "in" by
/// `producer_id` (epoch 0, no member) for [`GROUP`]; the error code of each partition.
fn txn_offset_commit(
    raw: &mut RawClient,
    version: i16,
    producer_id: i64,
    partitions: &[(i32, i64, &str)],
) -> Vec<i16> {
    txn_offset_commit_as(raw, version, (GROUP, "", -1), producer_id, partitions)
}

/// [`txn_offset_commit`] for `(group, member id, generation)`.
fn txn_offset_commit_as(
    raw: &mut RawClient,
    version: i16,
    member: (&str, &str, i32),
    producer_id: i64,
    partitions: &[(i32, i64, &str)],
) -> Vec<i16> {
    let mut t = km::txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
    t.name = km::TopicName("in".to_string().into());
    for &(partition, offset, metadata) in partitions {
        let mut p = km::txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
        p.partition_index = partition;
        p.committed_offset = offset;
        p.committed_leader_epoch = -1;
        p.committed_metadata = Some(StrBytes::from_string(metadata.to_string()));
        t.partitions.push(p);
    }
    let mut request = km::TxnOffsetCommitRequest::default();
    request.transactional_id = km::TransactionalId("txn-eos".to_string().into());
    request.group_id = km::GroupId(member.0.to_string().into());
    request.producer_id = km::ProducerId(producer_id);
    request.producer_epoch = 0;
    request.member_id = member.1.to_string().into();
    request.generation_id = member.2;
    request.topics = vec![t];
    let response = raw.send(version, &request);
    assert_eq!(response.topics.len(), 1);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// OffsetFetch v7 of partitions 0 and 1 of "in": (offset, error) of each.
fn offset_fetch(raw: &mut RawClient, require_stable: bool) -> Vec<(i64, i16)> {
    let mut t = km::offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = km::TopicName("in".to_string().into());
    t.partition_indexes = vec![0, 1];
    let mut request = km::OffsetFetchRequest::default();
    request.group_id = km::GroupId(GROUP.to_string().into());
    request.topics = Some(vec![t]);
    request.require_stable = require_stable;
    let response = raw.send(7, &request);
    assert_eq!(response.error_code, 0);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.committed_offset, p.error_code))
        .collect()
}

/// OffsetFetch v9 (groups) with `require_stable` of every committed partition of the group:
/// (partition, offset, error) of each.
fn offset_fetch_all_v9(raw: &mut RawClient) -> Vec<(i32, i64, i16)> {
    let mut group = km::offset_fetch_request::OffsetFetchRequestGroup::default();
    group.group_id = km::GroupId(GROUP.to_string().into());
    group.topics = None;
    let mut request = km::OffsetFetchRequest::default();
    request.groups = vec![group];
    request.require_stable = true;
    let response = raw.send(9, &request);
    assert_eq!(response.groups[0].error_code, 0);
    response.groups[0]
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.committed_offset, p.error_code))
        })
        .collect()
}

/// Appends the markers `(producer id, commit)` to the group's `__consumer_offsets` partition
/// of the stopped broker's data directory.
fn append_markers(data: &Path, markers: &[(i64, bool)]) {
    let partition = strom_broker::services::coordinator::partition_for(GROUP, 50);
    let dir = data.join(format!("__consumer_offsets-{partition}"));
    let now = strom_broker::clock::now_ms();
    let config = strom_log::LogConfig::default();
    let mut log = strom_log::Log::open(&dir, config, 0, 0, false, now).expect("open the log");
    let epoch = log.latest_leader_epoch().unwrap_or(0);
    for &(producer_id, commit) in markers {
        let marker = TxnMarker {
            producer_id,
            producer_epoch: 0,
            coordinator_epoch: 0,
            commit,
        };
        log.append_txn_marker(&marker, epoch, now)
            .expect("marker appended");
    }
    log.flush().expect("flushed");
    log.close().expect("closed");
}

#[test]
fn transactional_offsets_count_only_once_their_transaction_commits() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(data.path(), &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "in", 2, &[]);
    let mut raw = RawClient::connect(&bootstrap);

    // Producer 4242 commits in-0 (v3); in-9 does not exist and too much metadata is refused,
    // each for its own partition only.
    assert_eq!(
        txn_offset_commit(&mut raw, 3, 4242, &[(0, 17, "x"), (9, 1, "")]),
        [0, 3]
    );
    let too_large = "m".repeat(4097);
    assert_eq!(
        txn_offset_commit(&mut raw, 3, 4242, &[(1, 18, &too_large)]),
        [12]
    );
    // Producer 4243 commits in-1 with the oldest version.
    assert_eq!(txn_offset_commit(&mut raw, 0, 4243, &[(1, 20, "y")]), [0]);

    assert_eq!(
        offset_fetch(&mut raw, false),
        [(-1, 0), (-1, 0)],
        "pending offsets are not committed yet"
    );
    assert_eq!(
        offset_fetch(&mut raw, true),
        [(-1, UNSTABLE_OFFSET_COMMIT), (-1, UNSTABLE_OFFSET_COMMIT)]
    );

    // 4242 commits, 4243 aborts; producer 4244's commit of in-1 has no marker yet.
    drop(raw);
    drop(broker);
    append_markers(data.path(), &[(4242, true), (4243, false)]);
    let broker = TestBroker::start_in(data.path(), &[]);
    let mut raw = RawClient::connect(&broker.bootstrap());
    assert_eq!(offset_fetch(&mut raw, true), [(17, 0), (-1, 0)]);
    assert_eq!(txn_offset_commit(&mut raw, 5, 4244, &[(1, 30, "z")]), [0]);
    assert_eq!(offset_fetch(&mut raw, false), [(17, 0), (-1, 0)]);

    // Still pending after a restart without its marker.
    drop(raw);
    let broker = broker.restart();
    let mut raw = RawClient::connect(&broker.bootstrap());
    assert_eq!(
        offset_fetch(&mut raw, true),
        [(17, 0), (-1, UNSTABLE_OFFSET_COMMIT)]
    );
    assert_eq!(
        offset_fetch_all_v9(&mut raw),
        [(0, 17, 0)],
        "every committed partition: in-1 has no offset yet"
    );

    drop(raw);
    drop(broker);
    append_markers(data.path(), &[(4244, true)]);
    let broker = TestBroker::start_in(data.path(), &[]);
    let mut raw = RawClient::connect(&broker.bootstrap());
    assert_eq!(offset_fetch(&mut raw, true), [(17, 0), (30, 0)]);
    assert_eq!(offset_fetch_all_v9(&mut raw), [(0, 17, 0), (1, 30, 0)]);
}

/// In a group with members, a TxnOffsetCommit v3+ naming a member and generation is checked
/// against them (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID); one without (v0–v2 carry none) is
/// accepted, as Kafka accepts it in any state but Dead.
#[test]
fn a_members_commit_is_checked_against_its_generation() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "in", 2, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    let (member, generation) = join_and_sync_v0(&mut raw, "live");

    let offsets = [(0, 3, "")];
    let mut commit = |who: (&str, &str, i32), version| {
        txn_offset_commit_as(&mut raw, version, who, 77, &offsets)
    };
    assert_eq!(commit(("live", &member, generation), 3), [0]);
    assert_eq!(
        commit(("live", &member, generation + 5), 3),
        [22],
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        commit(("live", "stranger", generation), 3),
        [25],
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(commit(("live", "", -1), 0), [0], "no member: accepted");
    assert_eq!(
        commit(("nobody", "", 4), 3),
        [22],
        "an unknown group takes no generation"
    );
    assert_eq!(commit(("", "", -1), 3), [24], "INVALID_GROUP_ID");
}
