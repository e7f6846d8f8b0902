//! Consumer groups on a 3-broker cluster (issue 8 item 7): `__consumer_offsets` is created
//! through ZooKeeper on the first FindCoordinator with `offsets.topic.*` and RF 3, the group's
//! coordinator is the leader of its partition, and when that broker is killed (-9) another one
//! loads the partition and serves the committed offsets, from which a librdkafka consumer of
//! the group resumes without reading a committed record again.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::{partition_of, TestCluster};
use common::*;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::Message;

const TOPIC: &str = "orders";
const GROUP: &str = "billing";
const OFFSETS_PARTITIONS: i32 = 5;
const RECORDS: u64 = 200;
/// How many records the first member reads (at least) before it commits.
const FIRST_READ: usize = 120;

/// Kafka's partition of a group in `__consumer_offsets` (`abs(String.hashCode) % n`).
fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in group.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (hash & 0x7fff_ffff) % partitions
}

fn find_coordinator(addr: &str) -> FindCoordinatorResponse {
    let mut request = FindCoordinatorRequest::default();
    request.key = StrBytes::from_static_str(GROUP);
    RawClient::connect(addr).send(3, &request)
}

fn offset_fetch(addr: &str) -> OffsetFetchResponse {
    let mut request = OffsetFetchRequest::default();
    request.group_id = GroupId(StrBytes::from_static_str(GROUP));
    request.topics = None;
    RawClient::connect(addr).send(7, &request)
}

/// partition → committed offset, from an OffsetFetch answered without error.
fn committed(response: &OffsetFetchResponse) -> BTreeMap<i32, i64> {
    response
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == TOPIC)
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.committed_offset))
        .collect()
}

/// Asks the live brokers for the group's coordinator until one names a coordinator that is
/// not `dead` and whose OffsetFetch answers without error (COORDINATOR_LOAD_IN_PROGRESS and
/// NOT_COORDINATOR are retried), within `timeout`. Returns it and the committed offsets.
fn coordinator_serving(
    cluster: &TestCluster,
    dead: Option<i32>,
    timeout: Duration,
) -> (i32, BTreeMap<i32, i64>) {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no coordinator served the group's offsets in time; last: {last}"
        );
        for id in cluster.live() {
            let found = find_coordinator(&cluster.addr(id));
            if found.error_code != 0 || Some(found.node_id.0) == dead {
                last = format!("broker {id}: FindCoordinator {found:?}");
                continue;
            }
            let coordinator = found.node_id.0;
            let fetched = offset_fetch(&cluster.addr(coordinator));
            if fetched.error_code == 0 {
                return (coordinator, committed(&fetched));
            }
            let retriable = [
                E::CoordinatorLoadInProgress.code(),
                E::NotCoordinator.code(),
            ];
            assert!(
                retriable.contains(&fetched.error_code),
                "OffsetFetch from {coordinator}: unexpected {fetched:?}"
            );
            last = format!(
                "coordinator {coordinator}: OffsetFetch error {}",
                fetched.error_code
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn member(bootstrap: &str) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(
        bootstrap,
        &[
            ("group.id", GROUP),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
            ("topic.metadata.refresh.interval.ms", "500"),
        ],
    )
    .create()
    .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    consumer
}

/// Polls until `count` records are read (or `timeout`), returning (partition, offset) pairs.
fn read(consumer: &BaseConsumer, count: usize, timeout: Duration) -> Vec<(i32, i64)> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push((m.partition(), m.offset())),
            // Transient errors (a coordinator or leader moving) are reported and retried.
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
    out
}

/// A simple commit (no members) for a topic whose only replica is on another broker than the
/// coordinator: the coordinator checks the partition against its metadata, not its own logs.
fn commit_for_a_topic_the_coordinator_does_not_host(cluster: &TestCluster) {
    const SOLO_GROUP: &str = "solo-group";
    const SOLO: &str = "solo";
    let mut request = FindCoordinatorRequest::default();
    request.key = StrBytes::from_static_str(SOLO_GROUP);
    let found: FindCoordinatorResponse = RawClient::connect(&cluster.addr(1)).send(3, &request);
    assert_eq!(found.error_code, 0, "{found:?}");
    let coordinator = found.node_id.0;
    let elsewhere = cluster
        .live()
        .into_iter()
        .find(|id| *id != coordinator)
        .unwrap();
    let replicas = [elsewhere];
    let assignment: [&[i32]; 1] = [&replicas];
    let topic = NewTopic::new(SOLO, 1, TopicReplication::Variable(&assignment));
    for result in client_runtime()
        .block_on(admin(&cluster.bootstrap()).create_topics(&[topic], &AdminOptions::new()))
        .expect("CreateTopics")
    {
        result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    let mut partition = OffsetCommitRequestPartition::default();
    partition.partition_index = 0;
    partition.committed_offset = 7;
    let mut topic = OffsetCommitRequestTopic::default();
    topic.name = TopicName(StrBytes::from_static_str(SOLO));
    topic.partitions.push(partition);
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(StrBytes::from_static_str(SOLO_GROUP));
    commit.generation_id_or_member_epoch = -1;
    commit.topics.push(topic);
    let answer: OffsetCommitResponse =
        RawClient::connect(&cluster.addr(coordinator)).send(8, &commit);
    assert_eq!(answer.topics[0].partitions[0].error_code, 0, "{answer:?}");
    let mut fetch = OffsetFetchRequest::default();
    fetch.group_id = GroupId(StrBytes::from_static_str(SOLO_GROUP));
    fetch.topics = None;
    let fetched: OffsetFetchResponse =
        RawClient::connect(&cluster.addr(coordinator)).send(7, &fetch);
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 7);
}

#[test]
fn a_new_coordinator_serves_the_committed_offsets_after_a_kill() {
    let started = Instant::now();
    let mut cluster = TestCluster::start(
        3,
        &[
            &format!("offsets.topic.num.partitions={OFFSETS_PARTITIONS}"),
            "group.initial.rebalance.delay.ms=0",
        ],
    );
    let bootstrap = cluster.bootstrap();
    let topic = NewTopic::new(TOPIC, 2, TopicReplication::Fixed(3));
    for result in client_runtime()
        .block_on(admin(&bootstrap).create_topics(&[topic], &AdminOptions::new()))
        .expect("CreateTopics")
    {
        result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    let producer = producer(&bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    client_runtime().block_on(async {
        let mut pending = Vec::new();
        for i in 0..RECORDS {
            let value = i.to_string();
            let record = FutureRecord::<(), _>::to(TOPIC)
                .partition((i % 2) as i32)
                .payload(&value);
            pending.push(
                producer
                    .send_result(record)
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
        }
        for p in pending {
            p.await.expect("delivery future").expect("delivery");
        }
    });

    // The first member reads part of the topic and commits its positions.
    let first = member(&bootstrap);
    let read_first = read(&first, FIRST_READ, Duration::from_secs(25));
    assert!(
        read_first.len() >= FIRST_READ,
        "the first member read only {} records",
        read_first.len()
    );
    first
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit the first member's positions");
    let positions: BTreeMap<i32, i64> = first
        .position()
        .expect("positions")
        .elements()
        .iter()
        .filter_map(|e| e.offset().to_raw().map(|o| (e.partition(), o)))
        .collect();
    drop(first);

    // __consumer_offsets was created through ZooKeeper, RF 3, led everywhere.
    let offsets_partition = partition_for(GROUP, OFFSETS_PARTITIONS);
    let metadata = cluster.metadata();
    let internal = metadata
        .topics
        .iter()
        .find(|t| {
            t.name
                .as_ref()
                .is_some_and(|n| n.as_str() == "__consumer_offsets")
        })
        .expect("__consumer_offsets exists");
    assert_eq!(internal.partitions.len(), OFFSETS_PARTITIONS as usize);
    assert!(internal.is_internal);
    let (leader, replicas, _) =
        partition_of(&metadata, "__consumer_offsets", offsets_partition).unwrap();
    assert_eq!(replicas.len(), 3, "offsets.topic.replication.factor 3");

    let (coordinator, before) = coordinator_serving(&cluster, None, Duration::from_secs(10));
    assert_eq!(
        coordinator, leader,
        "the coordinator is the partition's leader"
    );
    assert_eq!(
        before, positions,
        "OffsetFetch answers the committed positions"
    );
    let committed_sum: i64 = before.values().sum();
    assert!(committed_sum >= FIRST_READ as i64 && committed_sum < RECORDS as i64);
    // Another broker is not the group's coordinator.
    let other = cluster
        .live()
        .into_iter()
        .find(|id| *id != coordinator)
        .unwrap();
    assert_eq!(
        offset_fetch(&cluster.addr(other)).error_code,
        E::NotCoordinator.code()
    );

    commit_for_a_topic_the_coordinator_does_not_host(&cluster);

    cluster.kill(coordinator);
    let killed_at = Instant::now();
    let (new_coordinator, after) =
        coordinator_serving(&cluster, Some(coordinator), Duration::from_secs(20));
    eprintln!(
        "coordinator {coordinator} killed; {new_coordinator} served the offsets after {} ms",
        killed_at.elapsed().as_millis()
    );
    assert_ne!(new_coordinator, coordinator);
    assert_eq!(
        after, positions,
        "the new coordinator serves the committed offsets"
    );

    // A member of the group resumes from them: nothing committed is read again.
    let second = member(&bootstrap);
    let remaining = (RECORDS as i64 - committed_sum) as usize;
    let read_second = read(&second, remaining, Duration::from_secs(20));
    assert_eq!(
        read_second.len(),
        remaining,
        "the second member read the uncommitted records"
    );
    for (partition, offset) in &read_second {
        assert!(
            *offset >= positions[partition],
            "record {partition}@{offset} was committed already (committed {positions:?})"
        );
    }
    let mut distinct = read_second.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), remaining, "no record read twice");
    assert!(
        read(&second, 1, Duration::from_secs(1)).is_empty(),
        "nothing beyond the topic's records"
    );
    // The new coordinator takes commits (acknowledged on the high watermark of an RF 3
    // partition with one replica down).
    second
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit on the new coordinator");
    drop(second);
    let (_, at_end) = coordinator_serving(&cluster, Some(coordinator), Duration::from_secs(10));
    let per_partition = (RECORDS / 2) as i64;
    assert_eq!(
        at_end,
        BTreeMap::from([(0, per_partition), (1, per_partition)])
    );

    // The killed broker comes back as a follower of the partition: not the coordinator.
    cluster.restart(coordinator);
    // Bounded well below the harness's 60 s so the whole test stays under a minute.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let states: Vec<_> = cluster
            .live()
            .into_iter()
            .map(|id| {
                cluster
                    .metadata_from(id)
                    .and_then(|m| partition_of(&m, "__consumer_offsets", offsets_partition))
            })
            .collect();
        let rejoined = |s: &Option<(i32, Vec<i32>, Vec<i32>)>| {
            s.as_ref()
                .is_some_and(|(leader, _, isr)| *leader == new_coordinator && isr.len() == 3)
        };
        if states.iter().all(rejoined) {
            break;
        }
        if Instant::now() > deadline {
            let log = cluster.log(new_coordinator);
            panic!(
                "broker {coordinator} did not rejoin the ISR of __consumer_offsets-{offsets_partition}: \
                 {states:?}; the leader's log ends:\n{}",
                &log[log.len().saturating_sub(8000)..]
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        offset_fetch(&cluster.addr(coordinator)).error_code,
        E::NotCoordinator.code()
    );
    let found = find_coordinator(&cluster.addr(coordinator));
    assert_eq!((found.error_code, found.node_id.0), (0, new_coordinator));
    eprintln!("test took {} ms", started.elapsed().as_millis());
}
