//! TxnOffsetCommit on a 3-broker cluster: the coordinator (the leader of the group's
//! `__consumer_offsets` partition) writes the transactional batch with acks=all, and when it
//! is killed (-9) the broker that loads the partition next keeps the offsets pending (no marker
//! has been written) while it serves the plain commit before them.

mod common;

use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use common::*;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{self as km};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

const GROUP: &str = "eos-cluster";
const TOPIC: &str = "in";
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// The coordinator the live brokers name for the group (other than `dead`), asking until one
/// answers within 30 s.
fn coordinator(cluster: &TestCluster, dead: Option<i32>) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for id in cluster.live() {
            let mut request = km::FindCoordinatorRequest::default();
            request.key = StrBytes::from_static_str(GROUP);
            let found: km::FindCoordinatorResponse =
                RawClient::connect(&cluster.addr(id)).send(3, &request);
            if found.error_code == 0 && Some(found.node_id.0) != dead {
                return found.node_id.0;
            }
        }
        assert!(Instant::now() < deadline, "no coordinator for {GROUP}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `attempt` to the coordinator until its codes are not the retriable coordinator
/// errors (load in progress, not available, not the coordinator), within 30 s.
fn until_served(
    cluster: &TestCluster,
    dead: Option<i32>,
    attempt: impl Fn(&mut RawClient) -> Vec<i16>,
) -> Vec<i16> {
    let retriable = [
        E::CoordinatorLoadInProgress.code(),
        E::CoordinatorNotAvailable.code(),
        E::NotCoordinator.code(),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut raw = RawClient::connect(&cluster.addr(coordinator(cluster, dead)));
        let codes = attempt(&mut raw);
        if !codes.iter().any(|c| retriable.contains(c)) {
            return codes;
        }
        assert!(Instant::now() < deadline, "not served in time: {codes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn txn_offset_commit(raw: &mut RawClient, producer_id: i64, offsets: &[(i32, i64)]) -> Vec<i16> {
    let mut t = km::txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
    t.name = km::TopicName(TOPIC.to_string().into());
    for &(partition, offset) in offsets {
        let mut p = km::txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
        p.partition_index = partition;
        p.committed_offset = offset;
        t.partitions.push(p);
    }
    let mut request = km::TxnOffsetCommitRequest::default();
    request.transactional_id = km::TransactionalId("txn-cluster".to_string().into());
    request.group_id = km::GroupId(GROUP.to_string().into());
    request.producer_id = km::ProducerId(producer_id);
    request.generation_id = -1;
    request.topics = vec![t];
    let response = raw.send(3, &request);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

fn offset_commit(raw: &mut RawClient, partition: i32, offset: i64) -> Vec<i16> {
    let mut p = km::offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = partition;
    p.committed_offset = offset;
    let mut t = km::offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = km::TopicName(TOPIC.to_string().into());
    t.partitions = vec![p];
    let mut request = km::OffsetCommitRequest::default();
    request.group_id = km::GroupId(GROUP.to_string().into());
    request.generation_id_or_member_epoch = -1;
    request.topics = vec![t];
    let response = raw.send(8, &request);
    vec![response.topics[0].partitions[0].error_code]
}

/// OffsetFetch v7 of partitions 0 and 1: the top-level error, then (offset, error) of each
/// (offset -1 and the top-level error for both when it is not 0).
fn offset_fetch(raw: &mut RawClient, require_stable: bool) -> (i16, Vec<(i64, i16)>) {
    let mut t = km::offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = km::TopicName(TOPIC.to_string().into());
    t.partition_indexes = vec![0, 1];
    let mut request = km::OffsetFetchRequest::default();
    request.group_id = km::GroupId(GROUP.to_string().into());
    request.topics = Some(vec![t]);
    request.require_stable = require_stable;
    let response = raw.send(7, &request);
    let rows = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.committed_offset, p.error_code))
        .collect();
    (response.error_code, rows)
}

#[test]
fn pending_transactional_offsets_stay_pending_on_the_next_coordinator() {
    let mut cluster = TestCluster::start(3, &["offsets.topic.num.partitions=5"]);
    let bootstrap = cluster.bootstrap();
    let topic = NewTopic::new(TOPIC, 2, TopicReplication::Fixed(3));
    for result in client_runtime()
        .block_on(admin(&bootstrap).create_topics(&[topic], &AdminOptions::new()))
        .expect("CreateTopics")
    {
        result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    cluster.wait_for("the topic on every broker", |m| {
        common::cluster::partition_of(m, TOPIC, 1).is_some()
    });
    assert_eq!(
        until_served(&cluster, None, |raw| offset_commit(raw, 0, 5)),
        [0]
    );
    assert_eq!(
        until_served(&cluster, None, |raw| txn_offset_commit(
            raw,
            4242,
            &[(0, 9), (1, 7)]
        )),
        [0, 0]
    );
    let first = coordinator(&cluster, None);
    let mut raw = RawClient::connect(&cluster.addr(first));
    assert_eq!(offset_fetch(&mut raw, false), (0, vec![(5, 0), (-1, 0)]));
    assert_eq!(
        offset_fetch(&mut raw, true),
        (
            0,
            vec![(-1, UNSTABLE_OFFSET_COMMIT), (-1, UNSTABLE_OFFSET_COMMIT)]
        )
    );
    drop(raw);

    cluster.kill(first);
    let fetched = until_served(&cluster, Some(first), |raw| {
        let (error, rows) = offset_fetch(raw, false);
        if error != 0 {
            return vec![error];
        }
        assert_eq!(
            rows,
            [(5, 0), (-1, 0)],
            "the plain commit, not the pending one"
        );
        rows.iter().map(|r| r.1).collect()
    });
    assert_eq!(fetched, [0, 0]);
    let next = coordinator(&cluster, Some(first));
    assert_ne!(next, first);
    let mut raw = RawClient::connect(&cluster.addr(next));
    assert_eq!(
        offset_fetch(&mut raw, true).1,
        [(-1, UNSTABLE_OFFSET_COMMIT), (-1, UNSTABLE_OFFSET_COMMIT)],
        "still pending on the next coordinator"
    );
}
