//! KIP-890 part 1 against `strom broker` processes: a partition leader appends the first
//! transactional batch of a transaction only once the transaction coordinator confirms the
//! partition is in it (AddPartitionsToTxn v4, verify-only). Raw Produce requests built with
//! kafka-protocol: a batch for a partition never added is refused with Kafka's code for the
//! Produce version and nothing is appended; after AddPartitionsToTxn it is appended, and
//! pipelined first batches keep their order; a late batch of an aborted transaction, arriving
//! after the abort marker, is refused and the last stable offset does not stay behind. The same
//! on a three-broker ZooKeeper cluster where the partition's leader is not the coordinator, so
//! the verification crosses brokers.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::TestCluster;
use common::txn::{transactional_batch, Running};
use common::{create_topic, spawn_broker_process, wait_until, RawClient};
use kafka_protocol::messages as km;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::protocol::{Decodable, HeaderVersion, StrBytes};

const INVALID_TXN_STATE: i16 = 48;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const TRANSACTION_ABORTABLE: i16 = 120;
/// Codes a coordinator answers while it loads or the topic is being created: retried.
const RETRIABLE: [i16; 4] = [14, 15, 16, 51];

/// A transactional batch of `count` records for `(producer id, epoch)` from `base_sequence`.
fn batch(producer: (i64, i16), base_sequence: i32, count: usize) -> Bytes {
    transactional_batch(producer, base_sequence, count, |i| {
        format!("verified-{base_sequence}-{i}")
    })
}

/// Retries `call` while it answers a coordinator-not-ready code, for at most 30 s.
fn until_ready(what: &str, mut call: impl FnMut() -> i16) -> i16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let code = call();
        if !RETRIABLE.contains(&code) {
            return code;
        }
        assert!(Instant::now() < deadline, "{what}: still {code} after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// InitProducerId v3 for `transactional_id` at its coordinator.
fn init(coordinator: &mut RawClient, transactional_id: &str) -> (i64, i16) {
    let mut request = km::InitProducerIdRequest::default();
    request.transactional_id = Some(km::TransactionalId(StrBytes::from_string(
        transactional_id.to_string(),
    )));
    request.transaction_timeout_ms = 60_000;
    request.producer_id = km::ProducerId(-1);
    request.producer_epoch = -1;
    let mut producer = (-1, -1);
    let code = until_ready("InitProducerId", || {
        let answer = coordinator.send(3, &request);
        producer = (answer.producer_id.0, answer.producer_epoch);
        answer.error_code
    });
    assert_eq!(code, 0, "InitProducerId");
    producer
}

/// AddPartitionsToTxn v3 (a client's) of `topic`-`partition`.
fn add_partition(
    coordinator: &mut RawClient,
    transactional_id: &str,
    producer: (i64, i16),
    topic: &str,
    partition: i32,
) {
    let mut t = km::add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
    t.name = km::TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![partition];
    let mut request = km::AddPartitionsToTxnRequest::default();
    request.v3_and_below_transactional_id =
        km::TransactionalId(StrBytes::from_string(transactional_id.to_string()));
    request.v3_and_below_producer_id = km::ProducerId(producer.0);
    request.v3_and_below_producer_epoch = producer.1;
    request.v3_and_below_topics = vec![t];
    let code = until_ready("AddPartitionsToTxn", || {
        let answer = coordinator.send(3, &request);
        answer.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
    });
    assert_eq!(code, 0, "AddPartitionsToTxn {topic}-{partition}");
}

/// EndTxn v3.
fn end_txn(
    coordinator: &mut RawClient,
    transactional_id: &str,
    producer: (i64, i16),
    commit: bool,
) {
    let mut request = km::EndTxnRequest::default();
    request.transactional_id =
        km::TransactionalId(StrBytes::from_string(transactional_id.to_string()));
    request.producer_id = km::ProducerId(producer.0);
    request.producer_epoch = producer.1;
    request.committed = commit;
    let code = until_ready("EndTxn", || coordinator.send(3, &request).error_code);
    assert_eq!(code, 0, "EndTxn");
}

/// A Produce (acks=all) of `records` to `topic`-`partition`.
fn produce_request(
    transactional_id: Option<&str>,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> km::ProduceRequest {
    let mut data = km::produce_request::PartitionProduceData::default();
    data.index = partition;
    data.records = Some(records);
    let mut t = km::produce_request::TopicProduceData::default();
    t.name = km::TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![data];
    let mut request = km::ProduceRequest::default();
    request.transactional_id =
        transactional_id.map(|id| km::TransactionalId(StrBytes::from_string(id.to_string())));
    request.acks = -1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![t];
    request
}

fn produce(
    leader: &mut RawClient,
    version: i16,
    transactional_id: Option<&str>,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    let request = produce_request(transactional_id, topic, partition, records);
    leader.send(version, &request).responses[0].partition_responses[0].clone()
}

/// Two Produce v9 requests written back to back before either answer is read; the answers,
/// in order.
fn produce_pipelined(
    leader: &mut RawClient,
    transactional_id: &str,
    topic: &str,
    partition: i32,
    batches: [Bytes; 2],
) -> Vec<PartitionProduceResponse> {
    let mut frames = Vec::new();
    for records in batches {
        let request = produce_request(Some(transactional_id), topic, partition, records);
        frames.extend_from_slice(&leader.frame(0, 9, &request));
    }
    leader.stream.write_all(&frames).unwrap();
    (0..2)
        .map(|_| {
            let mut body = leader.read_frame().expect("a produce answer");
            km::ResponseHeader::decode(
                &mut body,
                <km::ProduceResponse as HeaderVersion>::header_version(9),
            )
            .unwrap();
            let answer = km::ProduceResponse::decode(&mut body, 9).unwrap();
            answer.responses[0].partition_responses[0].clone()
        })
        .collect()
}

/// ListOffsets v7 LATEST of `topic`-`partition`: the log end (high watermark) at
/// read_uncommitted, the last stable offset at read_committed.
fn latest(leader: &mut RawClient, topic: &str, partition: i32, read_committed: bool) -> i64 {
    let mut p = km::list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = -1;
    p.current_leader_epoch = -1;
    let mut t = km::list_offsets_request::ListOffsetsTopic::default();
    t.name = km::TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut request = km::ListOffsetsRequest::default();
    request.replica_id = km::BrokerId(-1);
    request.isolation_level = i8::from(read_committed);
    request.topics = vec![t];
    let p = leader.send(7, &request).topics[0].partitions[0].clone();
    assert_eq!(p.error_code, 0, "ListOffsets {topic}-{partition}");
    p.offset
}

/// The whole scenario against one partition's leader and the transactional id's coordinator
/// (the same broker on a single node, two brokers on the cluster).
fn scenario(coordinator_addr: &str, leader_addr: &str, topic: &str, partition: i32, spare: i32) {
    const ID: &str = "verify-txn";
    let mut coordinator = RawClient::connect(coordinator_addr);
    let mut leader = RawClient::connect(leader_addr);
    let producer = init(&mut coordinator, ID);

    // Not added: refused with Kafka's code per version, nothing appended.
    let refused = produce(
        &mut leader,
        9,
        Some(ID),
        topic,
        partition,
        batch(producer, 0, 3),
    );
    assert_eq!(
        (refused.error_code, refused.base_offset),
        (INVALID_TXN_STATE, -1),
        "Produce v9 of a partition outside the transaction: {refused:?}"
    );
    assert_eq!(
        refused.error_message.as_deref(),
        Some("Partition was not added to the transaction")
    );
    let v11 = produce(
        &mut leader,
        11,
        Some(ID),
        topic,
        partition,
        batch(producer, 0, 3),
    );
    assert_eq!(
        v11.error_code, TRANSACTION_ABORTABLE,
        "Produce v11: {v11:?}"
    );
    let no_id = produce(
        &mut leader,
        9,
        None,
        topic,
        partition,
        batch(producer, 0, 3),
    );
    assert_eq!(no_id.error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    assert_eq!(
        latest(&mut leader, topic, partition, false),
        0,
        "nothing appended"
    );
    assert_eq!(
        latest(&mut leader, topic, partition, true),
        0,
        "no transaction open"
    );

    // Added: appended; later batches of the transaction too.
    add_partition(&mut coordinator, ID, producer, topic, partition);
    let first = produce(
        &mut leader,
        9,
        Some(ID),
        topic,
        partition,
        batch(producer, 0, 3),
    );
    assert_eq!((first.error_code, first.base_offset), (0, 0), "{first:?}");
    let second = produce(
        &mut leader,
        9,
        Some(ID),
        topic,
        partition,
        batch(producer, 3, 2),
    );
    assert_eq!(
        (second.error_code, second.base_offset),
        (0, 3),
        "{second:?}"
    );
    assert_eq!(
        latest(&mut leader, topic, partition, true),
        0,
        "open at offset 0"
    );

    // Two pipelined first batches on a newly added partition: the second waits behind the
    // first's verification and both land in order.
    add_partition(&mut coordinator, ID, producer, topic, spare);
    let answers = produce_pipelined(
        &mut leader,
        ID,
        topic,
        spare,
        [batch(producer, 0, 2), batch(producer, 2, 2)],
    );
    let got: Vec<(i16, i64)> = answers
        .iter()
        .map(|a| (a.error_code, a.base_offset))
        .collect();
    assert_eq!(got, vec![(0, 0), (0, 2)], "{answers:?}");

    // Abort; once the markers are written, a late batch of the aborted transaction (same
    // epoch, next sequence) must not open a transaction nobody would end.
    end_txn(&mut coordinator, ID, producer, false);
    wait_until("the abort marker", Duration::from_secs(30), || {
        latest(&mut leader, topic, partition, true) == 6
            && latest(&mut leader, topic, partition, false) == 6
    });
    // The marker can be on the log before the coordinator has completed the abort; until
    // then it answers CONCURRENT_TRANSACTIONS (19), which a client retries: so does this.
    let mut late = produce(
        &mut leader,
        9,
        Some(ID),
        topic,
        partition,
        batch(producer, 5, 2),
    );
    for _ in 0..50 {
        if late.error_code != 19 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        late = produce(
            &mut leader,
            9,
            Some(ID),
            topic,
            partition,
            batch(producer, 5, 2),
        );
    }
    assert_eq!(
        (late.error_code, late.base_offset),
        (INVALID_TXN_STATE, -1),
        "a late batch after the abort marker: {late:?}"
    );
    assert_eq!(
        latest(&mut leader, topic, partition, false),
        6,
        "nothing appended"
    );
    assert_eq!(
        latest(&mut leader, topic, partition, true),
        6,
        "the last stable offset is not held by a hanging transaction"
    );

    // The next transaction verifies again and commits.
    add_partition(&mut coordinator, ID, producer, topic, partition);
    let next = produce(
        &mut leader,
        11,
        Some(ID),
        topic,
        partition,
        batch(producer, 5, 2),
    );
    assert_eq!((next.error_code, next.base_offset), (0, 6), "{next:?}");
    end_txn(&mut coordinator, ID, producer, true);
    wait_until("the commit marker", Duration::from_secs(30), || {
        latest(&mut leader, topic, partition, true) == 9
    });
}

#[test]
fn a_leader_appends_only_batches_the_coordinator_verified() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Running(spawn_broker_process(
        &dir.path().join("data"),
        &dir.path().join("broker.log"),
        &[],
    ));
    let bootstrap = broker.0.bootstrap();
    create_topic(&bootstrap, "verify", 2, &[]);
    scenario(&bootstrap, &bootstrap, "verify", 0, 1);
}

/// The broker coordinating `transactional_id`, as broker `asked` answers FindCoordinator once
/// `__transaction_state` has a leader.
fn coordinator_of(cluster: &TestCluster, asked: i32, transactional_id: &str) -> i32 {
    let mut raw = RawClient::connect(&cluster.addr(asked));
    let mut request = km::FindCoordinatorRequest::default();
    request.key = StrBytes::from_string(transactional_id.to_string());
    request.key_type = 1;
    let mut node = -1;
    let code = until_ready("FindCoordinator", || {
        let answer = raw.send(3, &request);
        node = answer.node_id.0;
        answer.error_code
    });
    assert_eq!(code, 0, "FindCoordinator");
    node
}

#[test]
fn on_a_cluster_the_leader_verifies_with_another_brokers_coordinator() {
    let cluster = TestCluster::start(
        3,
        &[
            "default.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=3",
        ],
    );
    let bootstrap = cluster.bootstrap();
    cluster.keep_files_if_panics(|| {
        create_topic(&bootstrap, "verify", 6, &[]);
        cluster.wait_for("every partition of verify has a leader", |m| {
            (0..6).all(|p| {
                common::cluster::partition_of(m, "verify", p).is_some_and(|(leader, ..)| leader > 0)
            })
        });
        let coordinator = coordinator_of(&cluster, cluster.live()[0], "verify-txn");
        // Two partitions led by a broker that is not the coordinator.
        let metadata = cluster.metadata();
        let leader_of = |p| common::cluster::partition_of(&metadata, "verify", p).unwrap().0;
        let remote = (0..6)
            .map(|p| (leader_of(p), p))
            .filter(|(leader, _)| *leader != coordinator)
            .collect::<Vec<_>>();
        let (leader, partition) = remote[0];
        let spare = remote
            .iter()
            .find(|(l, p)| *l == leader && *p != partition)
            .map(|(_, p)| *p);
        let Some(spare) = spare else {
            // Six RF 1 partitions over three brokers: two brokers lead two each unless the
            // controller placed them otherwise, which a round-robin placement does not.
            panic!("no broker other than the coordinator {coordinator} leads two partitions: {remote:?}");
        };
        println!("coordinator {coordinator}, leader {leader} of partitions {partition} and {spare}");
        scenario(
            &cluster.addr(coordinator),
            &cluster.addr(leader),
            "verify",
            partition,
            spare,
        );
    });
}
