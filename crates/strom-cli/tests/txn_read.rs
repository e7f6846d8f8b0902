//! The read side of transactions against a `strom broker` process, with real clients: a
//! transaction opened by a raw Produce of a transactional batch (a producer id from
//! InitProducerId without a transactional id) and never ended holds the last stable offset, so
//! a read_committed librdkafka consumer stops at its first offset while a read_uncommitted one
//! reads past it; ListOffsets and Fetch answer the LSO; DescribeProducers shows the open
//! transaction; with markers written straight through the partition (until the transaction
//! coordinator writes them), a read_committed consumer skips an aborted transaction. Commit and
//! abort driven by a transactional producer come with the coordinator.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::txn::{self, init_producer_id, Running};
use common::{client_config, create_topic, spawn_broker_process, wait_until, RawClient};
use kafka_protocol::messages as km;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

/// The raw transactional batches here come from a producer id the transaction coordinator
/// never saw (InitProducerId without a transactional id): a broker accepts them only with
/// KIP-890's verification off, as Kafka does (`tests/txn_verify.rs` covers it on).
const UNVERIFIED: &str = "transaction.partition.verification.enable=false";

/// A transactional batch of `count` records for `(producer id, epoch)` from `base_sequence`.
fn transactional_batch(producer: (i64, i16), base_sequence: i32, count: usize) -> Bytes {
    txn::transactional_batch(producer, base_sequence, count, |i| {
        format!("in-transaction-{i}")
    })
}

/// Produces `records` to partition 0 of `topic` as transactional id `raw-txn` would (Produce
/// v9); returns the partition's error code and base offset.
fn produce_transactional(raw: &mut RawClient, topic: &str, records: Bytes) -> (i16, i64) {
    let mut data = km::produce_request::PartitionProduceData::default();
    data.index = 0;
    data.records = Some(records);
    let mut t = km::produce_request::TopicProduceData::default();
    t.name = km::TopicName(topic.to_string().into());
    t.partition_data = vec![data];
    let mut request = km::ProduceRequest::default();
    request.transactional_id = Some(km::TransactionalId("raw-txn".to_string().into()));
    request.acks = -1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![t];
    let response = raw.send(9, &request);
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Produces `count` plain records with librdkafka; returns their offsets.
fn produce_plain(bootstrap: &str, topic: &str, count: usize) -> Vec<i64> {
    let producer = common::producer(bootstrap, &[("linger.ms", "0")]);
    let runtime = common::client_runtime();
    (0..count)
        .map(|i| {
            let payload = format!("plain-{i}");
            let delivery = runtime.block_on(
                producer.send(
                    FutureRecord::<(), _>::to(topic)
                        .partition(0)
                        .payload(&payload),
                    Duration::from_secs(10),
                ),
            );
            delivery.expect("delivered").offset
        })
        .collect()
}

/// Consumes partition 0 of `topic` from the beginning with `isolation.level` until `quiet`
/// passes without a new record (at most 30 s in all); returns the offsets read.
fn consume_until_quiet(bootstrap: &str, topic: &str, isolation: &str, quiet: Duration) -> Vec<i64> {
    let consumer: BaseConsumer = client_config(
        bootstrap,
        &[
            ("group.id", "txn-read"),
            ("enable.auto.commit", "false"),
            ("isolation.level", isolation),
            ("fetch.wait.max.ms", "100"),
        ],
    )
    .create()
    .expect("consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&list).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last_record = Instant::now();
    let mut offsets = Vec::new();
    while last_record.elapsed() < quiet {
        assert!(
            Instant::now() < deadline,
            "{isolation}: still reading after 30 s: {offsets:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => panic!("{isolation} consumer: {e}"),
            Some(Ok(m)) => {
                offsets.push(m.offset());
                last_record = Instant::now();
            }
        }
    }
    offsets
}

/// ListOffsets v7 LATEST for partition 0 at `isolation_level`.
fn latest(raw: &mut RawClient, topic: &str, isolation_level: i8) -> i64 {
    let mut p = km::list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = -1;
    p.current_leader_epoch = -1;
    let mut t = km::list_offsets_request::ListOffsetsTopic::default();
    t.name = km::TopicName(topic.to_string().into());
    t.partitions = vec![p];
    let mut request = km::ListOffsetsRequest::default();
    request.replica_id = km::BrokerId(-1);
    request.isolation_level = isolation_level;
    request.topics = vec![t];
    let response = raw.send(7, &request);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

#[test]
fn an_open_transaction_holds_read_committed_consumers_at_its_first_offset() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Running(spawn_broker_process(
        &dir.path().join("data"),
        &dir.path().join("broker.log"),
        &[UNVERIFIED],
    ));
    let bootstrap = broker.0.bootstrap();
    create_topic(&bootstrap, "txn-read", 1, &[]);
    assert_eq!(
        produce_plain(&bootstrap, "txn-read", 5),
        vec![0, 1, 2, 3, 4]
    );
    let mut raw = RawClient::connect(&bootstrap);
    let producer = init_producer_id(&mut raw);
    let (code, base) =
        produce_transactional(&mut raw, "txn-read", transactional_batch(producer, 0, 3));
    assert_eq!(
        (code, base),
        (0, 5),
        "a transactional batch is appended (offsets 5-7)"
    );
    assert_eq!(
        produce_plain(&bootstrap, "txn-read", 5),
        vec![8, 9, 10, 11, 12]
    );

    let uncommitted = consume_until_quiet(
        &bootstrap,
        "txn-read",
        "read_uncommitted",
        Duration::from_secs(2),
    );
    assert_eq!(uncommitted, (0..13).collect::<Vec<i64>>());
    let committed = consume_until_quiet(
        &bootstrap,
        "txn-read",
        "read_committed",
        Duration::from_secs(3),
    );
    assert_eq!(
        committed,
        (0..5).collect::<Vec<i64>>(),
        "stops at the open transaction's first offset"
    );

    // ListOffsets LATEST: the high watermark, or the LSO for read_committed.
    assert_eq!(latest(&mut raw, "txn-read", 0), 13);
    assert_eq!(latest(&mut raw, "txn-read", 1), 5);

    // Fetch v12 answers the LSO at both levels; aborted transactions are an empty list for
    // read_committed and null for read_uncommitted.
    for isolation_level in [0i8, 1] {
        let mut request = common::fetch_request("txn-read", 0);
        request.isolation_level = isolation_level;
        let response = raw.send(12, &request);
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        assert_eq!((p.high_watermark, p.last_stable_offset), (13, 5));
        let offsets = common::batch_base_offsets(p.records.clone().unwrap());
        if isolation_level == 1 {
            assert_eq!(p.aborted_transactions, Some(vec![]));
            assert_eq!(
                offsets.last(),
                Some(&4),
                "read_committed data ends below the LSO: {offsets:?}"
            );
        } else {
            assert_eq!(p.aborted_transactions, None);
            assert!(
                offsets.contains(&5),
                "read_uncommitted reads the transaction: {offsets:?}"
            );
        }
    }

    // DescribeProducers: the transactional producer, its transaction open at offset 5.
    let mut t = km::describe_producers_request::TopicRequest::default();
    t.name = km::TopicName("txn-read".to_string().into());
    t.partition_indexes = vec![0, 7];
    let mut request = km::DescribeProducersRequest::default();
    request.topics = vec![t];
    let response = raw.send(0, &request);
    let partitions = &response.topics[0].partitions;
    assert_eq!(partitions[0].error_code, 0);
    let open: Vec<(i64, i32, i32, i64)> = partitions[0]
        .active_producers
        .iter()
        .filter(|p| p.producer_id.0 == producer.0)
        .map(|p| {
            (
                p.producer_id.0,
                p.producer_epoch,
                p.last_sequence,
                p.current_txn_start_offset,
            )
        })
        .collect();
    assert_eq!(open, vec![(producer.0, i32::from(producer.1), 2, 5)]);
    assert_eq!(
        partitions[1].error_code,
        kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code(),
        "partition 7 does not exist"
    );
}

/// Aborted and committed transactions with librdkafka consumers: the markers are written
/// straight through the partition (`Partition::append_txn_marker`, what WriteTxnMarkers calls)
/// on an in-process broker, until the transaction coordinator writes them. A read_committed
/// consumer skips the aborted transaction's records, using the aborted transactions the
/// Fetch answers, and reads the committed one's; a read_uncommitted consumer reads both.
#[test]
fn read_committed_consumers_skip_aborted_transactions() {
    let broker = common::TestBroker::start(&[UNVERIFIED]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "txn-abort", 1, &[]);
    let partition = broker
        .handle
        .as_ref()
        .unwrap()
        .broker
        .services
        .replicas
        .partition("txn-abort", 0)
        .expect("hosted");
    let end = |producer: (i64, i16), commit: bool| {
        let marker = strom_log::control::TxnMarker {
            producer_id: producer.0,
            producer_epoch: producer.1,
            coordinator_epoch: 0,
            commit,
        };
        let info = partition.append_txn_marker(&marker, 0).expect("marker");
        broker
            .runtime
            .block_on(partition.wait_high_watermark(info.last_offset + 1))
            .unwrap();
        info.first_offset
    };
    let mut raw = RawClient::connect(&bootstrap);
    let aborting = init_producer_id(&mut raw);
    let committing = init_producer_id(&mut raw);
    assert_eq!(produce_plain(&bootstrap, "txn-abort", 2), vec![0, 1]);
    let produce = |raw: &mut RawClient, producer, sequence, count| {
        let (code, base) = produce_transactional(
            raw,
            "txn-abort",
            transactional_batch(producer, sequence, count),
        );
        assert_eq!(code, 0);
        base
    };
    // Interleaved: aborting 2-4, committing 5-6, aborting 7-8, then the markers.
    assert_eq!(produce(&mut raw, aborting, 0, 3), 2);
    assert_eq!(produce(&mut raw, committing, 0, 2), 5);
    assert_eq!(produce(&mut raw, aborting, 3, 2), 7);
    assert_eq!(end(aborting, false), 9);
    assert_eq!(end(committing, true), 10);
    assert_eq!(produce_plain(&bootstrap, "txn-abort", 2), vec![11, 12]);

    let committed = consume_until_quiet(
        &bootstrap,
        "txn-abort",
        "read_committed",
        Duration::from_secs(3),
    );
    assert_eq!(
        committed,
        vec![0, 1, 5, 6, 11, 12],
        "aborted records skipped"
    );
    let uncommitted = consume_until_quiet(
        &bootstrap,
        "txn-abort",
        "read_uncommitted",
        Duration::from_secs(2),
    );
    assert_eq!(
        uncommitted,
        vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12],
        "every data record, no markers"
    );
    // The Fetch that served them listed the aborted transaction.
    let mut request = common::fetch_request("txn-abort", 0);
    request.isolation_level = 1;
    let response = raw.send(12, &request);
    let p = &response.responses[0].partitions[0];
    let aborted: Vec<(i64, i64)> = p
        .aborted_transactions
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    assert_eq!(aborted, vec![(aborting.0, 2)]);
    assert_eq!((p.high_watermark, p.last_stable_offset), (13, 13));
}

/// The rdkafka crate's transactional producer against the coordinator: while its transaction
/// is open a read_committed consumer sees nothing of it, after `commit_transaction` it sees
/// the committed records, and an aborted transaction's records never; read_uncommitted sees
/// both. Markers occupy offsets 3 and 7.
#[test]
fn a_transactional_producer_commits_and_aborts_for_read_committed_consumers() {
    use rdkafka::producer::Producer;
    let dir = tempfile::tempdir().unwrap();
    let broker = Running(spawn_broker_process(
        &dir.path().join("data"),
        &dir.path().join("broker.log"),
        &[],
    ));
    let bootstrap = broker.0.bootstrap();
    create_topic(&bootstrap, "txn-client", 1, &[]);
    let producer = common::producer(
        &bootstrap,
        &[("transactional.id", "txn-read-client"), ("linger.ms", "0")],
    );
    let timeout = Duration::from_secs(30);
    producer
        .init_transactions(timeout)
        .expect("init_transactions");
    let runtime = common::client_runtime();
    let send = |value: String| {
        runtime
            .block_on(
                producer.send(
                    FutureRecord::<(), _>::to("txn-client")
                        .partition(0)
                        .payload(&value),
                    Duration::from_secs(10),
                ),
            )
            .expect("delivered")
            .offset
    };
    producer.begin_transaction().unwrap();
    let aborted: Vec<i64> = (0..3).map(|i| send(format!("aborted-{i}"))).collect();
    producer.abort_transaction(timeout).expect("abort");
    producer.begin_transaction().unwrap();
    let committed: Vec<i64> = (0..3).map(|i| send(format!("committed-{i}"))).collect();
    assert_eq!((aborted, committed.clone()), (vec![0, 1, 2], vec![4, 5, 6]));
    let open = consume_until_quiet(
        &bootstrap,
        "txn-client",
        "read_committed",
        Duration::from_secs(2),
    );
    assert_eq!(open, Vec::<i64>::new(), "nothing stable before the commit");
    let mut raw = RawClient::connect(&bootstrap);
    assert_eq!(
        latest(&mut raw, "txn-client", 1),
        4,
        "the open transaction holds the LSO"
    );
    producer.commit_transaction(timeout).expect("commit");
    // EndTxn is answered once the decision is durable; the markers follow (as in Kafka).
    let mut lso = 0;
    wait_until(
        "the commit marker moves the LSO",
        Duration::from_secs(10),
        || {
            lso = latest(&mut raw, "txn-client", 1);
            lso == 8
        },
    );
    assert_eq!(lso, 8);
    let read = consume_until_quiet(
        &bootstrap,
        "txn-client",
        "read_committed",
        Duration::from_secs(2),
    );
    assert_eq!(read, committed);
    let all = consume_until_quiet(
        &bootstrap,
        "txn-client",
        "read_uncommitted",
        Duration::from_secs(2),
    );
    assert_eq!(all, vec![0, 1, 2, 4, 5, 6]);
}

/// Python clients' read_committed consumers (kafka-python and aiokafka decode the Fetch's
/// aborted transactions themselves; confluent-kafka is librdkafka) over interleaved
/// transactions written by the rdkafka crate's transactional producers: one aborted, one
/// committed, one left open after a plain record. read_committed reads the committed and plain
/// records below the open transaction; read_uncommitted reads every data record.
/// `tests/python/read_committed.py` does the reading; `./scripts/test` installs the packages.
#[test]
fn python_read_committed_consumers_skip_aborted_and_stop_at_open_transactions() {
    use rdkafka::producer::{FutureProducer, Producer};
    let dir = tempfile::tempdir().unwrap();
    let broker = Running(spawn_broker_process(
        &dir.path().join("data"),
        &dir.path().join("broker.log"),
        &[],
    ));
    let bootstrap = broker.0.bootstrap();
    create_topic(&bootstrap, "txn-py", 1, &[]);
    let timeout = Duration::from_secs(30);
    let transactional = |id: &str| {
        let producer =
            common::producer(&bootstrap, &[("transactional.id", id), ("linger.ms", "0")]);
        producer
            .init_transactions(timeout)
            .expect("init_transactions");
        producer.begin_transaction().unwrap();
        producer
    };
    let runtime = common::client_runtime();
    let send = |producer: &FutureProducer, value: &str| {
        runtime
            .block_on(
                producer.send(
                    FutureRecord::<(), _>::to("txn-py")
                        .partition(0)
                        .payload(value),
                    Duration::from_secs(10),
                ),
            )
            .expect("delivered")
            .offset
    };
    let aborting = transactional("py-abort");
    let committing = transactional("py-commit");
    let plain = common::producer(&bootstrap, &[("linger.ms", "0")]);
    let offsets = [
        send(&aborting, "a-0"),
        send(&committing, "b-0"),
        send(&aborting, "a-1"),
        send(&committing, "b-1"),
    ];
    assert_eq!(offsets, [0, 1, 2, 3]);
    aborting.abort_transaction(timeout).expect("abort"); // marker at 4
    committing.commit_transaction(timeout).expect("commit"); // marker at 5
    assert_eq!(send(&plain, "p-0"), 6);
    let open = transactional("py-open");
    assert_eq!(send(&open, "c-0"), 7);
    assert_eq!(send(&plain, "p-1"), 8);

    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python/read_committed.py");
    let read = |client: &str, isolation: &str| -> Vec<String> {
        let out = std::process::Command::new("python3")
            .arg(&script)
            .args([bootstrap.as_str(), "txn-py", client, isolation])
            .output()
            .expect("python3 runs (./scripts/test installs the clients)");
        assert!(
            out.status.success(),
            "{client} {isolation} failed ({}); ./scripts/test installs the Python clients:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let committed = ["1 b-0", "3 b-1", "6 p-0"];
    let everything = [
        "0 a-0", "1 b-0", "2 a-1", "3 b-1", "6 p-0", "7 c-0", "8 p-1",
    ];
    for client in ["kafka-python", "aiokafka", "confluent-kafka"] {
        assert_eq!(
            read(client, "read_committed"),
            committed,
            "{client} read_committed"
        );
    }
    for client in ["kafka-python", "aiokafka"] {
        assert_eq!(
            read(client, "read_uncommitted"),
            everything,
            "{client} read_uncommitted"
        );
    }
    drop(open);
}
