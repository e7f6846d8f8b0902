//! `strom txn` against a `strom broker` process: a transaction of the rdkafka crate's
//! transactional producer is listed and described while open (Ongoing, its partitions, its
//! start offset in DescribeProducers, not hanging) and after its commit (CompleteCommit); a
//! hanging transaction (a transactional batch produced raw under a producer id the coordinator
//! never saw) is found by `find-hanging` and ended by `abort --start-offset`, after which
//! read_committed readers and ListOffsets(read_committed) move past it.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::txn::{self, Running};
use common::{client_config, create_topic, spawn_broker_process, RawClient};
use kafka_protocol::messages as km;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// A broker with KIP-890's verification off: only then can a transactional batch the
/// coordinator never heard of open a hanging transaction (`produce_hanging`), as on Kafka.
fn start_broker(dir: &tempfile::TempDir) -> Running {
    Running(spawn_broker_process(
        &dir.path().join("data"),
        &dir.path().join("broker.log"),
        &["transaction.partition.verification.enable=false"],
    ))
}

/// Runs `strom -b bootstrap args..`.
fn strom(bootstrap: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["-b", bootstrap, "--timeout-ms", "10000"])
        .args(args)
        .output()
        .unwrap()
}

/// Runs a `strom` command that must succeed; returns its standard output.
fn ok(bootstrap: &str, args: &[&str]) -> String {
    let out = strom(bootstrap, args);
    assert!(
        out.status.success(),
        "strom {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a `strom` command with `--json` that must succeed; returns its parsed output.
fn json(bootstrap: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = ok(bootstrap, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// Runs a `strom` command that must fail; returns its standard error.
fn fails(bootstrap: &str, args: &[&str]) -> String {
    let out = strom(bootstrap, args);
    assert!(!out.status.success(), "strom {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

/// The `txn list --json` row of `id`, if listed.
fn listed(bootstrap: &str, id: &str, extra: &[&str]) -> Option<Value> {
    let mut args = vec!["txn", "list"];
    args.extend_from_slice(extra);
    json(bootstrap, &args)
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["transactional_id"] == id)
        .cloned()
}

/// The `describe-producers --json` row of `producer_id` on `topic`-`partition`.
fn producer_row(bootstrap: &str, topic: &str, partition: &str, producer_id: i64) -> Value {
    json(
        bootstrap,
        &[
            "txn",
            "describe-producers",
            "--topic",
            topic,
            "--partition",
            partition,
        ],
    )
    .as_array()
    .unwrap()
    .iter()
    .find(|row| row["producer_id"] == producer_id)
    .cloned()
    .unwrap_or_else(|| panic!("producer {producer_id} is not on {topic}-{partition}"))
}

#[test]
fn an_open_transaction_is_listed_and_described_until_it_commits() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir);
    let bootstrap = broker.0.bootstrap();
    create_topic(&bootstrap, "txn-cli", 2, &[]);
    let producer = common::producer(
        &bootstrap,
        &[("transactional.id", "cli-app-1"), ("linger.ms", "0")],
    );
    let timeout = Duration::from_secs(30);
    producer
        .init_transactions(timeout)
        .expect("init_transactions");
    let runtime = common::client_runtime();
    producer.begin_transaction().unwrap();
    for partition in [0, 1] {
        let delivered = runtime
            .block_on(
                producer.send(
                    FutureRecord::<(), _>::to("txn-cli")
                        .partition(partition)
                        .payload("open"),
                    Duration::from_secs(10),
                ),
            )
            .expect("delivered");
        assert_eq!(delivered.offset, 0);
    }

    // list: the open transaction, in the table and in JSON.
    let row = listed(&bootstrap, "cli-app-1", &[]).expect("listed while open");
    assert_eq!(row["transaction_state"], "Ongoing");
    let producer_id = row["producer_id"].as_i64().unwrap();
    let coordinator = row["coordinator"].as_i64().unwrap();
    assert!(producer_id >= 0 && coordinator >= 0, "{row}");
    let table = ok(&bootstrap, &["txn", "list"]);
    assert!(table.starts_with("TransactionalId"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("cli-app-1 ")
            && l.contains(&producer_id.to_string())
            && l.ends_with("Ongoing")),
        "{table}"
    );
    // The filters reach the coordinator.
    assert!(listed(&bootstrap, "cli-app-1", &["--state", "Ongoing"]).is_some());
    assert!(listed(&bootstrap, "cli-app-1", &["--state", "CompleteCommit"]).is_none());
    let other = (producer_id + 1).to_string();
    assert!(listed(&bootstrap, "cli-app-1", &["--producer-id", &other]).is_none());
    assert!(listed(&bootstrap, "cli-app-1", &["--id-pattern", "cli-.*"]).is_some());
    assert!(listed(&bootstrap, "cli-app-1", &["--id-pattern", "other-.*"]).is_none());
    assert!(listed(&bootstrap, "cli-app-1", &["--duration-ms", "0"]).is_some());
    assert!(listed(&bootstrap, "cli-app-1", &["--duration-ms", "3600000"]).is_none());
    let error = fails(&bootstrap, &["txn", "list", "--state", "Bogus"]);
    assert!(error.contains("Bogus"), "{error}");

    // describe: state, producer, timeout and both partitions.
    let described = json(&bootstrap, &["txn", "describe", "cli-app-1"]);
    assert_eq!(described["transaction_state"], "Ongoing");
    assert_eq!(described["producer_id"], producer_id);
    assert_eq!(described["coordinator_id"], coordinator);
    assert_eq!(
        described["transaction_timeout_ms"], 60_000,
        "librdkafka's default"
    );
    assert!(
        described["current_transaction_start_time_ms"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert!(described["transaction_duration_ms"].as_i64().unwrap() >= 0);
    assert_eq!(
        described["topic_partitions"],
        serde_json::json!([
            {"topic": "txn-cli", "partition": 0},
            {"topic": "txn-cli", "partition": 1}
        ])
    );
    let table = ok(&bootstrap, &["txn", "describe", "cli-app-1"]);
    assert!(table.starts_with("CoordinatorId"), "{table}");
    assert!(
        table.contains("Ongoing") && table.contains("txn-cli-0,txn-cli-1"),
        "{table}"
    );

    // describe-producers: the transaction opened at offset 0 of each partition.
    let open = producer_row(&bootstrap, "txn-cli", "1", producer_id);
    assert_eq!(open["current_transaction_start_offset"], 0, "{open}");
    assert_eq!(open["last_sequence"], 0, "{open}");
    let table = ok(
        &bootstrap,
        &[
            "txn",
            "describe-producers",
            "--topic",
            "txn-cli",
            "--partition",
            "0",
        ],
    );
    assert!(table.starts_with("ProducerId"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&producer_id.to_string()) && l.ends_with(" 0")),
        "{table}"
    );
    let error = fails(
        &bootstrap,
        &[
            "txn",
            "describe-producers",
            "--topic",
            "txn-cli",
            "--partition",
            "9",
        ],
    );
    assert!(error.contains("txn-cli-9"), "{error}");

    // The coordinator knows it as ongoing with both partitions: not hanging, even with a
    // zero timeout.
    let hanging = json(
        &bootstrap,
        &[
            "txn",
            "find-hanging",
            "--topic",
            "txn-cli",
            "--max-transaction-timeout-ms",
            "0",
        ],
    );
    assert_eq!(hanging, serde_json::json!([]));

    producer.commit_transaction(timeout).expect("commit");
    // EndTxn answers once PrepareCommit is durable; the coordinator completes the transaction
    // after its markers are written, as Kafka's does.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = listed(&bootstrap, "cli-app-1", &[]).expect("listed after the commit");
        if row["transaction_state"] == "CompleteCommit" {
            break;
        }
        assert_eq!(row["transaction_state"], "PrepareCommit");
        assert!(Instant::now() < deadline, "not CompleteCommit after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(listed(&bootstrap, "cli-app-1", &["--state", "Ongoing"]).is_none());
    let described = json(&bootstrap, &["txn", "describe", "cli-app-1"]);
    assert_eq!(described["transaction_state"], "CompleteCommit");
    assert_eq!(described["producer_id"], producer_id);
    assert_eq!(
        described["topic_partitions"],
        serde_json::json!([]),
        "{described}"
    );
    let closed = producer_row(&bootstrap, "txn-cli", "0", producer_id);
    assert_eq!(
        closed["current_transaction_start_offset"],
        Value::Null,
        "{closed}"
    );

    let error = fails(&bootstrap, &["txn", "describe", "no-such-id"]);
    assert!(error.contains("TRANSACTIONAL_ID_NOT_FOUND"), "{error}");
    assert!(error.contains("no-such-id"), "{error}");
}

/// Before any transactional producer (`__transaction_state` does not exist yet): `describe`
/// answers TRANSACTIONAL_ID_NOT_FOUND and `list` an empty table.
#[test]
fn on_a_fresh_broker_list_is_empty_and_describe_says_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir);
    let bootstrap = broker.0.bootstrap();
    let error = fails(&bootstrap, &["txn", "describe", "nobody"]);
    assert!(error.contains("TRANSACTIONAL_ID_NOT_FOUND"), "{error}");
    assert_eq!(json(&bootstrap, &["txn", "list"]), serde_json::json!([]));
    let table = ok(&bootstrap, &["txn", "list"]);
    assert_eq!(
        table.trim_end(),
        "TransactionalId  Coordinator  ProducerId  TransactionState"
    );
}

/// A transactional batch of `count` records for `(producer id, epoch)`, sequences from 0.
fn transactional_batch(producer: (i64, i16), count: usize) -> Bytes {
    txn::transactional_batch(producer, 0, count, |i| format!("hanging-{i}"))
}

/// Opens a transaction the coordinator never hears of: a producer id from InitProducerId
/// without a transactional id, and a transactional batch produced to partition 0 without
/// AddPartitionsToTxn, at the epoch InitProducerId gave plus `epoch_bump`. Returns the
/// producer id and the batch's base offset.
fn produce_hanging(raw: &mut RawClient, topic: &str, epoch_bump: i16) -> (i64, i64) {
    let (id, epoch) = txn::init_producer_id(raw);
    let producer = (id, epoch + epoch_bump);
    let mut data = km::produce_request::PartitionProduceData::default();
    data.index = 0;
    data.records = Some(transactional_batch(producer, 3));
    let mut t = km::produce_request::TopicProduceData::default();
    t.name = km::TopicName(topic.to_string().into());
    t.partition_data = vec![data];
    let mut request = km::ProduceRequest::default();
    request.transactional_id = Some(km::TransactionalId("lost-txn".to_string().into()));
    request.acks = -1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![t];
    let response = raw.send(9, &request);
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "the transactional batch is appended");
    (producer.0, p.base_offset)
}

/// Plain records to partition 0 with librdkafka; their offsets.
fn produce_plain(bootstrap: &str, topic: &str, count: usize) -> Vec<i64> {
    let producer = common::producer(bootstrap, &[("linger.ms", "0")]);
    let runtime = common::client_runtime();
    (0..count)
        .map(|i| {
            let payload = format!("plain-{i}");
            runtime
                .block_on(
                    producer.send(
                        FutureRecord::<(), _>::to(topic)
                            .partition(0)
                            .payload(&payload),
                        Duration::from_secs(10),
                    ),
                )
                .expect("delivered")
                .offset
        })
        .collect()
}

/// ListOffsets v7 LATEST of partition 0 at `isolation_level` (1: read_committed, the LSO).
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
    let p = raw.send(7, &request).topics[0].partitions[0].clone();
    assert_eq!(p.error_code, 0);
    p.offset
}

/// A read_committed consumer of partition 0 from the beginning, until 2 s pass without a
/// record (at most 30 s); the offsets read.
fn read_committed(bootstrap: &str, topic: &str) -> Vec<i64> {
    let consumer: BaseConsumer = client_config(
        bootstrap,
        &[
            ("group.id", "txn-cli"),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
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
    while last_record.elapsed() < Duration::from_secs(2) {
        assert!(
            Instant::now() < deadline,
            "still reading after 30 s: {offsets:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => panic!("read_committed consumer: {e}"),
            Some(Ok(m)) => {
                offsets.push(m.offset());
                last_record = Instant::now();
            }
        }
    }
    offsets
}

/// `find-hanging --json` rows without their `duration_ms`, which grows between two runs.
fn without_duration(rows: &Value) -> Value {
    let mut rows = rows.clone();
    for row in rows.as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("duration_ms");
    }
    rows
}

#[test]
fn a_hanging_transaction_is_found_and_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir);
    let bootstrap = broker.0.bootstrap();
    create_topic(&bootstrap, "txn-hang", 1, &[]);
    assert_eq!(produce_plain(&bootstrap, "txn-hang", 2), vec![0, 1]);
    let mut raw = RawClient::connect(&bootstrap);
    let (producer_id, start) = produce_hanging(&mut raw, "txn-hang", 0);
    assert_eq!(start, 2, "the hanging transaction holds offsets 2-4");
    assert_eq!(produce_plain(&bootstrap, "txn-hang", 2), vec![5, 6]);
    assert_eq!(latest(&mut raw, "txn-hang", 1), 2, "it holds the LSO");
    assert_eq!(read_committed(&bootstrap, "txn-hang"), vec![0, 1]);

    // find-hanging by topic, by partition and by broker.
    let by_topic = json(
        &bootstrap,
        &[
            "txn",
            "find-hanging",
            "--topic",
            "txn-hang",
            "--max-transaction-timeout-ms",
            "0",
        ],
    );
    let rows = by_topic.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{by_topic}");
    assert_eq!(rows[0]["producer_id"], producer_id);
    assert_eq!(rows[0]["start_offset"], 2);
    assert_eq!(rows[0]["topic"], "txn-hang");
    assert_eq!(rows[0]["partition"], 0);
    let mut metadata = km::MetadataRequest::default();
    metadata.topics = Some(vec![]);
    let broker_id = raw.send(12, &metadata).brokers[0].node_id.0.to_string();
    let by_broker = json(
        &bootstrap,
        &[
            "txn",
            "find-hanging",
            "--broker-id",
            &broker_id,
            "--max-transaction-timeout-ms",
            "0",
        ],
    );
    assert_eq!(without_duration(&by_broker), without_duration(&by_topic));
    let table = ok(
        &bootstrap,
        &[
            "txn",
            "find-hanging",
            "--topic",
            "txn-hang",
            "--partition",
            "0",
            "--max-transaction-timeout-ms",
            "0",
        ],
    );
    assert!(table.starts_with("Topic"), "{table}");
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("txn-hang ") && l.contains(&format!(" {producer_id} "))),
        "{table}"
    );
    // Its last write (1700000000000, November 2023) is older than 15 minutes, the default.
    let default_timeout = json(&bootstrap, &["txn", "find-hanging", "--topic", "txn-hang"]);
    assert_eq!(
        without_duration(&default_timeout),
        without_duration(&by_topic)
    );
    let recent = json(
        &bootstrap,
        &[
            "txn",
            "find-hanging",
            "--topic",
            "txn-hang",
            "--max-transaction-timeout-ms",
            "9000000000000",
        ],
    );
    assert_eq!(
        recent,
        serde_json::json!([]),
        "younger than the max timeout"
    );

    // abort: a wrong start offset names the partition; the right one ends the transaction.
    let error = fails(
        &bootstrap,
        &[
            "txn",
            "abort",
            "--topic",
            "txn-hang",
            "--partition",
            "0",
            "--start-offset",
            "3",
        ],
    );
    assert!(
        error.contains("offset 3") && error.contains("txn-hang-0"),
        "{error}"
    );
    let aborted = json(
        &bootstrap,
        &[
            "txn",
            "abort",
            "--topic",
            "txn-hang",
            "--partition",
            "0",
            "--start-offset",
            "2",
        ],
    );
    assert_eq!(aborted["producer_id"], producer_id);
    assert_eq!(aborted["start_offset"], 2);
    assert_eq!(
        latest(&mut raw, "txn-hang", 1),
        8,
        "the marker at 7 releases the LSO"
    );
    assert_eq!(latest(&mut raw, "txn-hang", 0), 8);
    assert_eq!(read_committed(&bootstrap, "txn-hang"), vec![0, 1, 5, 6]);
    let closed = producer_row(&bootstrap, "txn-hang", "0", producer_id);
    assert_eq!(
        closed["current_transaction_start_offset"],
        Value::Null,
        "{closed}"
    );
    let after = json(
        &bootstrap,
        &[
            "txn",
            "find-hanging",
            "--topic",
            "txn-hang",
            "--max-transaction-timeout-ms",
            "0",
        ],
    );
    assert_eq!(after, serde_json::json!([]));
    let again = fails(
        &bootstrap,
        &[
            "txn",
            "abort",
            "--topic",
            "txn-hang",
            "--partition",
            "0",
            "--start-offset",
            "2",
        ],
    );
    assert!(again.contains("no open transaction"), "{again}");

    // abort with the producer named: a second lost transaction at offsets 8-10.
    let (second, start) = produce_hanging(&mut raw, "txn-hang", 0);
    assert_ne!(second, producer_id);
    assert_eq!((start, latest(&mut raw, "txn-hang", 1)), (8, 8));
    let second_text = second.to_string();
    let out = ok(
        &bootstrap,
        &[
            "txn",
            "abort",
            "--topic",
            "txn-hang",
            "--partition",
            "0",
            "--producer-id",
            &second_text,
            "--producer-epoch",
            "0",
            "--coordinator-epoch",
            "-1",
        ],
    );
    assert!(
        out.contains(&format!("producer {second} ")) && out.contains("txn-hang-0"),
        "{out}"
    );
    assert_eq!(
        latest(&mut raw, "txn-hang", 1),
        12,
        "the marker at 11 releases the LSO"
    );
    let error = fails(
        &bootstrap,
        &[
            "txn",
            "abort",
            "--topic",
            "txn-hang",
            "--partition",
            "4",
            "--producer-id",
            &second_text,
            "--producer-epoch",
            "0",
            "--coordinator-epoch",
            "0",
        ],
    );
    assert!(error.contains("txn-hang-4"), "{error}");

    // A marker with an epoch older than the producer's is refused by the leader, and the
    // error names the partition and Kafka's error.
    let (third, start) = produce_hanging(&mut raw, "txn-hang", 1);
    assert_eq!((start, latest(&mut raw, "txn-hang", 1)), (12, 12));
    let third_text = third.to_string();
    let error = fails(
        &bootstrap,
        &[
            "txn",
            "abort",
            "--topic",
            "txn-hang",
            "--partition",
            "0",
            "--producer-id",
            &third_text,
            "--producer-epoch",
            "0",
            "--coordinator-epoch",
            "-1",
        ],
    );
    assert!(
        error.contains("txn-hang-0") && error.contains("INVALID_PRODUCER_EPOCH"),
        "{error}"
    );
    assert_eq!(latest(&mut raw, "txn-hang", 1), 12, "still open");
    let aborted = json(
        &bootstrap,
        &[
            "txn",
            "abort",
            "--topic",
            "txn-hang",
            "--partition",
            "0",
            "--start-offset",
            "12",
        ],
    );
    assert_eq!(aborted["producer_epoch"], 1);
    assert_eq!(latest(&mut raw, "txn-hang", 1), 16);
}

/// On a 3-broker cluster each transactional id has its own coordinator: `txn list` asks every
/// broker and merges, naming the coordinator of each id, which is the one FindCoordinator and
/// `txn describe` name.
#[test]
fn on_a_cluster_list_merges_every_coordinators_transactions() {
    let cluster = common::cluster::TestCluster::start(3, &[]);
    let bootstrap = cluster.bootstrap();
    // Before any transaction: the coordinators are being created and loaded, which the CLI
    // waits out (within --timeout-ms) as Kafka's admin client does.
    let error = fails(&bootstrap, &["txn", "describe", "nobody"]);
    assert!(error.contains("TRANSACTIONAL_ID_NOT_FOUND"), "{error}");
    create_topic(&bootstrap, "txn-spread", 3, &[]);
    let ids: Vec<String> = (0..6).map(|i| format!("spread-{i}")).collect();
    let runtime = common::client_runtime();
    let producers: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let producer = common::producer(
                &bootstrap,
                &[("transactional.id", id.as_str()), ("linger.ms", "0")],
            );
            producer
                .init_transactions(Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("init_transactions {id}: {e}"));
            producer.begin_transaction().unwrap();
            runtime
                .block_on(
                    producer.send(
                        FutureRecord::<(), _>::to("txn-spread")
                            .partition(i as i32 % 3)
                            .payload("open"),
                        Duration::from_secs(10),
                    ),
                )
                .expect("delivered");
            producer
        })
        .collect();
    let listed = json(&bootstrap, &["txn", "list", "--id-pattern", "spread-.*"]);
    let rows = listed.as_array().unwrap();
    let listed_ids: Vec<&str> = rows
        .iter()
        .map(|r| r["transactional_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed_ids, ids, "every id once, sorted: {listed}");
    let mut coordinators = std::collections::BTreeSet::new();
    for row in rows {
        assert_eq!(row["transaction_state"], "Ongoing", "{row}");
        let id = row["transactional_id"].as_str().unwrap();
        let described = json(&bootstrap, &["txn", "describe", id]);
        assert_eq!(
            described["coordinator_id"], row["coordinator"],
            "{described}"
        );
        assert_eq!(described["producer_id"], row["producer_id"], "{described}");
        coordinators.insert(row["coordinator"].as_i64().unwrap());
    }
    assert!(
        coordinators.len() >= 2,
        "the ids spread over several coordinators: {coordinators:?}"
    );
    for producer in &producers {
        producer
            .abort_transaction(Duration::from_secs(30))
            .expect("abort");
    }
}
