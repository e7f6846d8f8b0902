//! Many partitions, and a broker that cannot be bricked: a topic creation that cannot complete
//! leaves no directory and no metadata behind, later creations succeed, a restart works, and
//! partition directories the metadata does not know are quarantined (or removed when they hold
//! no records) at start instead of being opened or silently deleted.
//!
//! The broker is the real `strom` binary with a low `RLIMIT_NOFILE` set in the child before it
//! runs (as `prlimit --nofile=N:N` would), so the limits are the process's own.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::FutureRecord;

/// Names of the partition directories of `topic` in `data` (`<topic>-<n>` exactly).
fn partition_dirs(data: &Path, topic: &str) -> Vec<String> {
    let prefix = format!("{topic}-");
    let mut names: Vec<String> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    names.sort();
    names
}

/// Every entry of `data` whose name starts with `prefix`.
fn entries_starting(data: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// CreateTopics through the admin API: `Ok` or the error the broker answered with.
fn try_create(bootstrap: &str, name: &str, partitions: i32) -> Result<(), String> {
    let admin = admin(bootstrap);
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let results = client_runtime()
        .block_on(admin.create_topics(&[topic], &options))
        .map_err(|e| format!("request failed: {e}"))?;
    match results.into_iter().next().expect("one result") {
        Ok(_) => Ok(()),
        Err((_, code)) => Err(format!("{code:?}")),
    }
}

/// The topic names the broker describes.
fn topic_names(bootstrap: &str) -> Vec<String> {
    let consumer: rdkafka::consumer::BaseConsumer = client_config(bootstrap, &[]).create().unwrap();
    let metadata =
        rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, Duration::from_secs(10))
            .expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect()
}

const FILE_LIMIT: u64 = 256;

fn spawn(dir: &Path, name: &str) -> BrokerProcess {
    spawn_broker_process_with_file_limit(
        &dir.join("data"),
        &dir.join(format!("{name}.log")),
        &["auto.create.topics.enable=false"],
        Some(FILE_LIMIT),
    )
}

#[test]
fn failed_creation_leaves_nothing_and_strays_are_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Two partition directories the metadata will not know: one holding records (a topic
    // deleted while the broker was down, say), one empty (a creation cut short by a crash).
    std::fs::create_dir_all(data.join("ghost-0")).unwrap();
    std::fs::write(
        data.join("ghost-0").join("00000000000000000000.log"),
        vec![7u8; 100],
    )
    .unwrap();
    std::fs::create_dir_all(data.join("empty-3")).unwrap();

    let mut broker = spawn(tmp.path(), "first");
    assert!(
        !data.join("ghost-0").exists(),
        "the stray is still in place"
    );
    let quarantined = entries_starting(&data, "ghost-0.");
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(quarantined[0].ends_with("-stray"), "{quarantined:?}");
    let kept = std::fs::read(data.join(&quarantined[0]).join("00000000000000000000.log")).unwrap();
    assert_eq!(kept, vec![7u8; 100], "the stray's records were not kept");
    assert!(
        !data.join("empty-3").exists(),
        "the empty stray was not removed"
    );
    assert!(broker.log_line("moved it aside as a stray").is_some());
    let bootstrap = broker.bootstrap();
    assert!(!topic_names(&bootstrap).contains(&"ghost".to_string()));

    // More partitions than the broker can hold with FILE_LIMIT open files: refused (up front,
    // or by the failure of a file creation half-way), leaving nothing behind.
    let refused = try_create(&bootstrap, "big", 1000);
    assert!(
        refused.is_err(),
        "a 1000-partition topic was created with {FILE_LIMIT} files"
    );
    assert_eq!(partition_dirs(&data, "big"), Vec::<String>::new());
    assert!(!topic_names(&bootstrap).contains(&"big".to_string()));

    // A creation that fails half-way (partition 60's path is taken by a file the broker cannot
    // move aside) removes the 60 partitions it had created.
    std::fs::write(data.join("half-60"), b"in the way").unwrap();
    let failed = try_create(&bootstrap, "half", 100);
    assert_eq!(failed, Err("KafkaStorageError".to_string()));
    assert_eq!(partition_dirs(&data, "half"), Vec::<String>::new());
    assert!(!topic_names(&bootstrap).contains(&"half".to_string()));
    assert!(broker
        .log_line("the partitions created so far were removed")
        .is_some());
    std::fs::remove_file(data.join("half-60")).unwrap();

    // Later creations succeed and serve.
    try_create(&bootstrap, "small", 8).expect("a small topic after the refused one");
    assert_eq!(partition_dirs(&data, "small").len(), 8);
    let producer = producer(&bootstrap, &[("acks", "all")]);
    client_runtime().block_on(async {
        for p in 0..8 {
            let key = format!("k{p}");
            producer
                .send(
                    FutureRecord::to("small")
                        .partition(p)
                        .key(&key)
                        .payload("v"),
                    Duration::from_secs(10),
                )
                .await
                .expect("acks=all produce");
        }
    });
    drop(producer);

    // A kill -9 and a restart under the same limit: the broker starts and has everything.
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    let mut broker = spawn(tmp.path(), "second");
    let bootstrap = broker.bootstrap();
    let consumed = consume(
        &bootstrap,
        "small",
        &(0..8).collect::<Vec<_>>(),
        8,
        Duration::from_secs(30),
    );
    assert_eq!(consumed.len(), 8);
    assert_eq!(partition_dirs(&data, "big"), Vec::<String>::new());
    // The quarantined directory stays quarantined, untouched.
    assert_eq!(entries_starting(&data, "ghost-0."), quarantined);
    try_create(&bootstrap, "after-restart", 4).expect("creation after the restart");
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
}

/// Under `RLIMIT_NOFILE` 2000 the broker hosts 1000 partitions (three files each on disk, far
/// more than 2000/3), writes to and reads back every one, survives kill -9, and refuses up front
/// a topic beyond its budget with POLICY_VIOLATION and a message naming the limit; restarted
/// under a limit of 1000 it still starts and serves every partition.
#[test]
fn a_thousand_partitions_within_two_thousand_open_files() {
    const PARTITIONS: i32 = 1000;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let spawn = |name: &str, limit: u64| {
        spawn_broker_process_with_file_limit(
            &data,
            &tmp.path().join(format!("{name}.log")),
            &["auto.create.topics.enable=false"],
            Some(limit),
        )
    };
    let mut broker = spawn("first", 2000);
    let bootstrap = broker.bootstrap();
    try_create(&bootstrap, "wide", PARTITIONS).expect("1000 partitions with 2000 files");
    assert_eq!(partition_dirs(&data, "wide").len(), PARTITIONS as usize);
    // Beyond the budget (2000 minus a quarter of headroom = 1500 partitions): refused before
    // anything is created, with the limit in the message.
    let admin = admin(&bootstrap);
    let results = client_runtime()
        .block_on(admin.create_topics(
            &[NewTopic::new("too-wide", 600, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .expect("CreateTopics request");
    match &results[0] {
        Err((_, code)) => assert_eq!(
            *code,
            rdkafka::types::RDKafkaErrorCode::PolicyViolation,
            "refused with {code:?}"
        ),
        Ok(_) => panic!("a topic beyond the open-file budget was created"),
    }
    assert!(partition_dirs(&data, "too-wide").is_empty());
    let refusal = broker
        .log_line("can host at most")
        .unwrap_or_else(|| "(not logged)".into());
    assert!(refusal.contains("RLIMIT_NOFILE 2000"), "{refusal}");

    let producer = producer(&bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    let values: Vec<String> = (0..PARTITIONS)
        .map(|p| format!("record of partition {p}"))
        .collect();
    let deliveries: Vec<_> = (0..PARTITIONS)
        .map(|p| {
            producer
                .send_result(
                    FutureRecord::to("wide")
                        .partition(p)
                        .key("k")
                        .payload(&values[p as usize]),
                )
                .unwrap_or_else(|(e, _)| panic!("enqueue for partition {p}: {e}"))
        })
        .collect();
    client_runtime().block_on(async {
        for (p, delivery) in deliveries.into_iter().enumerate() {
            let delivered = delivery
                .await
                .expect("delivery future")
                .unwrap_or_else(|(e, _)| panic!("partition {p}: {e}"));
            assert_eq!((delivered.partition, delivered.offset), (p as i32, 0));
        }
    });
    drop(producer);
    let check = |bootstrap: &str| {
        let consumed = consume(
            bootstrap,
            "wide",
            &(0..PARTITIONS).collect::<Vec<_>>(),
            PARTITIONS as usize,
            Duration::from_secs(120),
        );
        let mut seen: Vec<(i32, String)> = consumed
            .iter()
            .map(|c| {
                (
                    c.partition,
                    String::from_utf8(c.value.clone().unwrap()).unwrap(),
                )
            })
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), PARTITIONS as usize);
        for (p, value) in seen {
            assert_eq!(value, format!("record of partition {p}"));
        }
    };
    check(&bootstrap);
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    let mut broker = spawn("second", 2000);
    check(&broker.bootstrap());
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    // Restarted with a limit whose budget (750) is below the partitions it already hosts, the
    // broker still starts and serves them all (files are opened and closed on demand); only
    // new partitions are refused.
    let mut broker = spawn("third", 1000);
    check(&broker.bootstrap());
    assert!(try_create(&broker.bootstrap(), "more", 1).is_err());
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
}

/// A partition whose log cannot be opened at startup stays offline, and the broker answers for
/// it as Kafka does for a partition on a failed log dir: KAFKA_STORAGE_ERROR in Produce, Fetch
/// and ListOffsets, and in Metadata the partition with that error, no leader and this broker
/// as its offline replica. The other partitions of the topic serve as before.
#[test]
fn an_offline_partition_answers_kafka_storage_error() {
    use kafka_protocol::messages as km;
    const STORAGE_ERROR: i16 = 56;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut broker = spawn(tmp.path(), "first");
    try_create(&broker.bootstrap(), "store", 3).expect("create");
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    // Partition 1's segment cannot be opened: a directory where its .log file should be.
    let segment = data.join("store-1").join("00000000000000000000.log");
    std::fs::remove_file(&segment).unwrap();
    std::fs::create_dir(&segment).unwrap();
    let mut broker = spawn(tmp.path(), "second");
    assert!(broker.log_line("stays offline").is_some());
    let mut raw = RawClient::connect(&broker.bootstrap());

    let mut produce_data = Vec::new();
    for partition in 0..3 {
        let mut p = km::produce_request::PartitionProduceData::default();
        p.index = partition;
        p.records = Some(record_batch(&[(None, b"v")], -1, -1, -1, 1_000));
        produce_data.push(p);
    }
    let mut t = km::produce_request::TopicProduceData::default();
    t.name = km::TopicName("store".to_string().into());
    t.partition_data = produce_data;
    let mut request = km::ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![t];
    let response = raw.send(9, &request);
    let codes: Vec<(i32, i16)> = response.responses[0]
        .partition_responses
        .iter()
        .map(|p| (p.index, p.error_code))
        .collect();
    assert_eq!(codes, vec![(0, 0), (1, STORAGE_ERROR), (2, 0)]);

    let mut t = km::fetch_request::FetchTopic::default();
    t.topic = km::TopicName("store".to_string().into());
    for partition in 0..3 {
        let mut p = km::fetch_request::FetchPartition::default();
        p.partition = partition;
        p.partition_max_bytes = 1 << 20;
        p.current_leader_epoch = -1;
        t.partitions.push(p);
    }
    let mut request = km::FetchRequest::default();
    request.replica_id = km::BrokerId(-1);
    request.max_wait_ms = 0;
    request.max_bytes = 50 << 20;
    request.session_epoch = -1;
    request.topics = vec![t];
    let response = raw.send(11, &request);
    let codes: Vec<(i32, i16)> = response.responses[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(codes, vec![(0, 0), (1, STORAGE_ERROR), (2, 0)]);

    let mut t = km::list_offsets_request::ListOffsetsTopic::default();
    t.name = km::TopicName("store".to_string().into());
    for partition in 0..3 {
        let mut p = km::list_offsets_request::ListOffsetsPartition::default();
        p.partition_index = partition;
        p.timestamp = -1;
        p.current_leader_epoch = -1;
        t.partitions.push(p);
    }
    let mut request = km::ListOffsetsRequest::default();
    request.replica_id = km::BrokerId(-1);
    request.topics = vec![t];
    let response = raw.send(7, &request);
    let answers: Vec<(i32, i16, i64)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.offset))
        .collect();
    assert_eq!(answers, vec![(0, 0, 1), (1, STORAGE_ERROR, -1), (2, 0, 1)]);

    let mut request = km::MetadataRequest::default();
    let mut topic = km::metadata_request::MetadataRequestTopic::default();
    topic.name = Some(km::TopicName("store".to_string().into()));
    request.topics = Some(vec![topic]);
    let response = raw.send(12, &request);
    let node = response.brokers[0].node_id;
    let topic = &response.topics[0];
    assert_eq!(topic.error_code, 0);
    let partitions: Vec<(i32, i16, i32, Vec<km::BrokerId>)> = topic
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.error_code,
                p.leader_id.0,
                p.offline_replicas.clone(),
            )
        })
        .collect();
    assert_eq!(
        partitions,
        vec![
            (0, 0, node.0, vec![]),
            (1, STORAGE_ERROR, -1, vec![node]),
            (2, 0, node.0, vec![]),
        ]
    );

    // OffsetCommit checks the partition against the metadata only, as Kafka does: a commit for
    // the offline partition is taken (it is written to __consumer_offsets, not to its log).
    let mut commit = km::OffsetCommitRequest::default();
    commit.group_id = km::GroupId("tool".to_string().into());
    commit.generation_id_or_member_epoch = -1;
    let mut t = km::offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = km::TopicName("store".to_string().into());
    for partition in [1, 3] {
        let mut p = km::offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = partition;
        p.committed_offset = 7;
        p.committed_leader_epoch = -1;
        t.partitions.push(p);
    }
    commit.topics = vec![t];
    let response = raw.send(8, &commit);
    let codes: Vec<(i32, i16)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(codes, vec![(1, 0), (3, 3)]);
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
}

/// `strom perf produce-raw` (the bench's load without librdkafka) spreads its requests round
/// robin over every partition, each request carrying several partitions, and every record it
/// counts as acknowledged is in the log; a missing topic and `--acks 0` are refused.
#[test]
fn the_raw_producer_spreads_pipelined_requests_over_every_partition() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "raw", 7, &[]);
    let perf = |extra: &[&str]| {
        let mut args = vec![
            "-b",
            &bootstrap,
            "--json",
            "perf",
            "produce-raw",
            "--num-records",
            "700",
            "--record-size",
            "50",
        ];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(&args)
            .output()
            .unwrap()
    };
    let shape = [
        "--topic",
        "raw",
        "--partitions-per-request",
        "3",
        "--records-per-request",
        "30",
        "--connections",
        "2",
        "--in-flight",
        "3",
    ];
    // The same bytes every request, then a batch encoded for each request.
    for fresh in [false, true] {
        let mut args = shape.to_vec();
        if fresh {
            args.push("--fresh-timestamps");
        }
        let out = perf(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // 24 requests (700 rounded up to whole requests of 3 batches of 10 records).
        assert_eq!(result["requests"], 24);
        assert_eq!(result["records"], 720);
        assert_eq!(result["errors"], 0);
        assert_eq!(result["bytes"], 720 * 50);
    }
    // Twice 72 batches round robin over 7 partitions: 11 for partitions 0 and 1, 10 for the
    // others, each time.
    let consumer: BaseConsumer = client_config(&bootstrap, &[("group.id", "raw-check")])
        .create()
        .unwrap();
    for partition in 0..7 {
        let (low, high) = consumer
            .fetch_watermarks("raw", partition, Duration::from_secs(10))
            .unwrap();
        let batches = if partition < 2 { 22 } else { 20 };
        assert_eq!((low, high), (0, batches * 10), "partition {partition}");
    }
    let out = perf(&["--topic", "missing"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("it must exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = perf(&["--topic", "raw", "--acks", "0"]);
    assert!(!out.status.success());
}
