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

/// Three brokers (`offsets.topic.num.partitions` 5, no initial rebalance delay) with `TOPIC`
/// created (2 partitions, RF 3) and `RECORDS` records produced with acks=all, spread evenly.
fn cluster_with_records() -> TestCluster {
    let cluster = TestCluster::start(
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

    cluster
}

/// A new member of the group reads `count` records (at least; panics otherwise), commits its
/// positions and leaves; returns the positions committed (partitions it read from).
fn read_and_commit(bootstrap: &str, count: usize) -> BTreeMap<i32, i64> {
    let consumer = member(bootstrap);
    let got = read(&consumer, count, Duration::from_secs(25));
    assert!(
        got.len() >= count,
        "the member read only {} records",
        got.len()
    );
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit the member's positions");
    // The list is dropped before the consumer: librdkafka's destroy waits for the partition
    // references such a list holds, so a list outliving its consumer hangs the drop.
    let positions = consumer
        .position()
        .expect("positions")
        .elements()
        .iter()
        .filter_map(|e| e.offset().to_raw().map(|o| (e.partition(), o)))
        // A partition it read nothing from has no position (and nothing committed).
        .filter(|(_, o)| *o >= 0)
        .collect();
    drop(consumer);
    positions
}

/// Waits (20 s at most) until every live broker shows the group's `__consumer_offsets`
/// partition led by `leader` with all three replicas in the ISR, after `restarted` came back.
fn wait_rejoined(cluster: &TestCluster, restarted: i32, leader: i32) {
    let partition = partition_for(GROUP, OFFSETS_PARTITIONS);
    // Bounded well below the harness's 60 s so the whole test stays under a minute.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let states: Vec<_> = cluster
            .live()
            .into_iter()
            .map(|id| {
                cluster
                    .metadata_from(id)
                    .and_then(|m| partition_of(&m, "__consumer_offsets", partition))
            })
            .collect();
        let rejoined = |s: &Option<(i32, Vec<i32>, Vec<i32>)>| {
            s.as_ref()
                .is_some_and(|(l, _, isr)| *l == leader && isr.len() == 3)
        };
        if states.iter().all(rejoined) {
            break;
        }
        if Instant::now() > deadline {
            let log = cluster.log(leader);
            let tail: String = log
                .chars()
                .skip(log.chars().count().saturating_sub(8000))
                .collect();
            panic!(
                "broker {restarted} did not rejoin the ISR of __consumer_offsets-{partition}: \
                 {states:?}; the leader's log ends:\n{tail}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let mut cluster = cluster_with_records();
    let bootstrap = cluster.bootstrap();

    // The first member reads part of the topic and commits its positions.
    let positions = read_and_commit(&bootstrap, FIRST_READ);

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
    wait_rejoined(&cluster, coordinator, new_coordinator);
    assert_eq!(
        offset_fetch(&cluster.addr(coordinator)).error_code,
        E::NotCoordinator.code()
    );
    let found = find_coordinator(&cluster.addr(coordinator));
    assert_eq!((found.error_code, found.node_id.0), (0, new_coordinator));
    eprintln!("test took {} ms", started.elapsed().as_millis());
}

/// Three rounds of: a member reads some records and commits, the coordinator is killed, another
/// broker serves exactly those offsets, the killed broker is restarted and rejoins the ISR. A
/// restarted broker that caught up as a follower becomes the coordinator in a later round and
/// loads what it replicated. At the end a member reads exactly the records never committed.
#[test]
fn committed_offsets_survive_coordinator_kills_in_a_loop() {
    let started = Instant::now();
    let mut cluster = cluster_with_records();
    let bootstrap = cluster.bootstrap();
    let mut coordinators = Vec::new();
    let mut positions = BTreeMap::new();
    let mut committed_sum = 0;
    for round in 0..3 {
        positions.extend(read_and_commit(&bootstrap, 30));
        let sum: i64 = positions.values().sum();
        assert!(sum >= committed_sum + 30, "round {round}: {positions:?}");
        committed_sum = sum;
        let (coordinator, before) = coordinator_serving(&cluster, None, Duration::from_secs(10));
        assert_eq!(before, positions, "round {round}");
        cluster.kill(coordinator);
        let killed_at = Instant::now();
        let (next, after) =
            coordinator_serving(&cluster, Some(coordinator), Duration::from_secs(15));
        eprintln!(
            "round {round}: coordinator {coordinator} killed, {next} served after {} ms",
            killed_at.elapsed().as_millis()
        );
        assert_eq!(
            after, positions,
            "round {round}: the new coordinator's offsets"
        );
        coordinators.push(coordinator);
        cluster.restart(coordinator);
        wait_rejoined(&cluster, coordinator, next);
    }
    let last = member(&bootstrap);
    let remaining = (RECORDS as i64 - committed_sum) as usize;
    let got = read(&last, remaining, Duration::from_secs(20));
    assert_eq!(got.len(), remaining);
    let mut distinct = got.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), remaining, "no record read twice");
    eprintln!(
        "coordinators killed: {coordinators:?}; test took {} ms",
        started.elapsed().as_millis()
    );
}

/// One OffsetCommit v8 of `offset` for `TOPIC` partition 0 by `group` (simple commit, no
/// members) on a fresh connection to `addr`: the error code, or None if the broker could not
/// be reached or closed the connection before answering (it was killed).
fn try_commit(addr: &str, group: &'static str, offset: i64) -> Option<i16> {
    use bytes::{BufMut as _, BytesMut};
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable as _, Encodable as _, HeaderVersion as _};
    use std::io::{Read as _, Write as _};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut partition = OffsetCommitRequestPartition::default();
    partition.partition_index = 0;
    partition.committed_offset = offset;
    let mut topic = OffsetCommitRequestTopic::default();
    topic.name = TopicName(StrBytes::from_static_str(TOPIC));
    topic.partitions.push(partition);
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(StrBytes::from_static_str(group));
    commit.generation_id_or_member_epoch = -1;
    commit.topics.push(topic);
    let mut header = RequestHeader::default();
    header.request_api_key = 8;
    header.request_api_version = 8;
    header.correlation_id = 1;
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header
        .encode(&mut frame, OffsetCommitRequest::header_version(8))
        .ok()?;
    commit.encode(&mut frame, 8).ok()?;
    let len = (frame.len() - 4) as i32;
    frame[0..4].copy_from_slice(&len.to_be_bytes());
    stream.write_all(&frame).ok()?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
    stream.read_exact(&mut body).ok()?;
    let mut body = bytes::Bytes::from(body);
    ResponseHeader::decode(&mut body, OffsetCommitResponse::header_version(8)).ok()?;
    let response = OffsetCommitResponse::decode(&mut body, 8).ok()?;
    Some(response.topics.first()?.partitions.first()?.error_code)
}

/// The group's coordinator as the first live broker that answers names it.
fn coordinator_of(cluster: &TestCluster, group: &'static str) -> Option<i32> {
    let mut request = FindCoordinatorRequest::default();
    request.key = StrBytes::from_static_str(group);
    cluster.live().into_iter().find_map(|id| {
        let found: FindCoordinatorResponse =
            RawClient::connect(&cluster.addr(id)).send(3, &request);
        (found.error_code == 0).then_some(found.node_id.0)
    })
}

/// Commits stream to the coordinator from another thread, each one offset higher, when the
/// coordinator is SIGKILLed: every commit acknowledged before the kill (acks=-1: on the high
/// watermark of the RF 3 partition) is served by the next coordinator.
#[test]
fn commits_acknowledged_before_a_coordinator_kill_are_served_after_it() {
    const STREAM_GROUP: &str = "stream-group";
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::sync::Arc;
    let mut cluster = cluster_with_records();
    let deadline = Instant::now() + Duration::from_secs(10);
    let coordinator = loop {
        if let Some(id) = coordinator_of(&cluster, STREAM_GROUP) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no coordinator for {STREAM_GROUP}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let addr = cluster.addr(coordinator);
    let acknowledged = Arc::new(AtomicI64::new(-1));
    let attempted = Arc::new(AtomicI64::new(-1));
    let stop = Arc::new(AtomicBool::new(false));
    // Answers other than success, by error code (None: no answer), for failure messages.
    let refusals: Arc<std::sync::Mutex<BTreeMap<Option<i16>, usize>>> = Arc::default();
    let committer = {
        let (acknowledged, attempted, stop) =
            (acknowledged.clone(), attempted.clone(), stop.clone());
        let refusals = refusals.clone();
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(30);
            let mut offset = 0;
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                offset += 1;
                attempted.store(offset, Ordering::SeqCst);
                match try_commit(&addr, STREAM_GROUP, offset) {
                    Some(0) => acknowledged.store(offset, Ordering::SeqCst),
                    other => {
                        *refusals.lock().unwrap().entry(other).or_insert(0) += 1;
                        std::thread::sleep(Duration::from_millis(20))
                    }
                }
            }
        })
    };
    // A commit waits for fdatasync on three brokers; the shared 2-core machine manages a few
    // per second at worst, so ten suffice to have commits in flight at the kill.
    let deadline = Instant::now() + Duration::from_secs(25);
    while acknowledged.load(Ordering::SeqCst) < 10 {
        assert!(
            Instant::now() < deadline,
            "{} commits acknowledged of {} sent; refused: {:?}",
            acknowledged.load(Ordering::SeqCst),
            attempted.load(Ordering::SeqCst),
            refusals.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.kill(coordinator);
    stop.store(true, Ordering::SeqCst);
    committer.join().unwrap();
    let (acknowledged, attempted) = (
        acknowledged.load(Ordering::SeqCst),
        attempted.load(Ordering::SeqCst),
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    let served = loop {
        assert!(
            Instant::now() < deadline,
            "no new coordinator served the group"
        );
        if let Some(next) = coordinator_of(&cluster, STREAM_GROUP).filter(|id| *id != coordinator) {
            let mut request = OffsetFetchRequest::default();
            request.group_id = GroupId(StrBytes::from_static_str(STREAM_GROUP));
            request.topics = None;
            let fetched: OffsetFetchResponse =
                RawClient::connect(&cluster.addr(next)).send(7, &request);
            if fetched.error_code == 0 {
                break committed(&fetched)[&0];
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("acknowledged {acknowledged}, attempted {attempted}, served {served}");
    assert!(
        served >= acknowledged,
        "an acknowledged commit was lost: {served} < {acknowledged}"
    );
    assert!(served <= attempted, "served {served}, never sent");
}
