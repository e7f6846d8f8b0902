//! DescribeLogDirs (API 35) and what is built on it (issue 10, item 1: "shows progress per
//! partition (bytes copied / to copy)"): on a single node every version reports each replica's
//! log size equal to its segment files on disk and larger than the payload produced, filters
//! by the requested partitions and leaves unknown ones out, and kafka-python's
//! `KafkaAdminClient.describe_log_dirs` reads the same; on a 3-broker cluster with a real
//! ZooKeeper both replicas of an acks=all partition report the same size, `strom log-dirs
//! describe` shows them, and a throttled reassignment of a backlog onto the third broker shows
//! `--verify` progress (bytes copied / to copy) that never goes back and ends at 100 %.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::{partition_of, write_plan, TestCluster};
use common::*;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::FutureRecord;

/// `strom -b <bootstrap> --timeout-ms 30000 <args>`: (success, stdout, stderr).
fn strom(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["-b", bootstrap, "--timeout-ms", "30000"])
        .args(args)
        .output()
        .expect("run strom");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Produces `count` records of `size` bytes to `topic`-`partition` with acks=all, uncompressed.
fn produce(bootstrap: &str, topic: &str, partition: i32, count: u64, size: usize) {
    let producer = producer(
        bootstrap,
        &[
            ("acks", "all"),
            ("linger.ms", "5"),
            ("compression.type", "none"),
        ],
    );
    client_runtime().block_on(async {
        for i in 0..count {
            let value = payload(i, size);
            producer
                .send(
                    FutureRecord::<(), [u8]>::to(topic)
                        .partition(partition)
                        .payload(&value),
                    Duration::from_secs(30),
                )
                .await
                .expect("acknowledged");
        }
    });
}

fn request(topics: Option<&[(&str, &[i32])]>) -> DescribeLogDirsRequest {
    let mut request = DescribeLogDirsRequest::default();
    request.topics = topics.map(|topics| {
        topics
            .iter()
            .map(|(name, partitions)| {
                let mut t = DescribableLogDirTopic::default();
                t.topic = kafka_protocol::messages::TopicName(name.to_string().into());
                t.partitions = partitions.to_vec();
                t
            })
            .collect()
    });
    request
}

/// (log dir, topic, partition, size) of every replica in a response.
fn replicas(response: &DescribeLogDirsResponse) -> Vec<(String, String, i32, i64)> {
    let mut out = Vec::new();
    for dir in &response.results {
        assert_eq!(dir.error_code, 0, "{}", dir.log_dir.as_str());
        for topic in &dir.topics {
            for p in &topic.partitions {
                assert_eq!((p.offset_lag, p.is_future_key), (0, false));
                out.push((
                    dir.log_dir.to_string(),
                    topic.name.0.to_string(),
                    p.partition_index,
                    p.partition_size,
                ));
            }
        }
    }
    out
}

/// The bytes of a partition directory's `.log` files.
fn log_file_bytes(dir: &Path) -> i64 {
    std::fs::read_dir(dir)
        .expect("partition dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| std::fs::metadata(p).unwrap().len() as i64)
        .sum()
}

#[test]
fn single_node_sizes_match_the_disk_every_version_and_kafka_python() {
    const RECORDS: u64 = 300;
    const SIZE: usize = 1_000;
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "sized", 2, &[]);
    produce(&bootstrap, "sized", 0, RECORDS, SIZE);
    let data = std::path::absolute(&broker.dir).unwrap();
    let on_disk = log_file_bytes(&data.join("sized-0"));
    assert!(on_disk > (RECORDS as usize * SIZE) as i64, "{on_disk}");

    let mut raw = RawClient::connect(&bootstrap);
    for version in 1..=4 {
        let response = raw.send(version, &request(None));
        let all = replicas(&response);
        let dir = data.display().to_string();
        assert!(
            all.contains(&(dir.clone(), "sized".into(), 0, on_disk)),
            "v{version}: partition 0 as big as its .log files ({on_disk}): {all:?}"
        );
        assert!(
            all.contains(&(dir.clone(), "sized".into(), 1, 0)),
            "v{version}: the empty partition: {all:?}"
        );
        let volume = (
            response.results[0].total_bytes,
            response.results[0].usable_bytes,
        );
        if version >= 4 {
            assert!(
                volume.0 > 0 && (0..=volume.0).contains(&volume.1),
                "{volume:?}"
            );
        } else {
            assert_eq!(volume, (-1, -1), "v{version} carries no volume sizes");
        }
        // Only what is asked for; an unknown partition and topic are left out, no error.
        let some = raw.send(
            version,
            &request(Some(&[("sized", &[0, 9]), ("nope", &[0])])),
        );
        assert_eq!(response.error_code, 0);
        assert_eq!(
            replicas(&some),
            vec![(dir, "sized".to_string(), 0, on_disk)],
            "v{version}"
        );
    }
    // v0, with Kafka 3.9's types (the 4.x codec has no v0).
    use kafka_protocol_3x::messages as k3;
    // (The 3.9 type's default is an empty list, which asks for nothing: null asks for all.)
    let mut all = k3::DescribeLogDirsRequest::default();
    all.topics = None;
    let v0 = raw.send3(0, &all);
    let sizes: Vec<(String, i32, i64)> = v0.results[0]
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index, p.partition_size))
        })
        .filter(|(t, _, _)| t == "sized")
        .collect();
    assert_eq!(
        sizes,
        vec![
            ("sized".to_string(), 0, on_disk),
            ("sized".to_string(), 1, 0)
        ]
    );

    // kafka-python (DescribeLogDirs v0 from its admin client).
    let out = std::process::Command::new("timeout")
        .args(["60", "python3"])
        .arg(common::python::script("describe_log_dirs.py"))
        .arg(&bootstrap)
        .output()
        .expect("python3 runs (./scripts/test installs kafka-python)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("described log dirs"),
        "kafka-python describe_log_dirs failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_str(stdout.lines().next().unwrap()).expect("JSON line");
    assert_eq!(seen["api_version"], 0);
    let dir = &seen["dirs"][0];
    assert_eq!(dir["error_code"], 0);
    assert_eq!(dir["log_dir"], data.display().to_string());
    let partition_0 = dir["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["topic"] == "sized" && r["partition"] == 0)
        .expect("sized-0 listed");
    assert_eq!(partition_0["size"], on_disk, "{seen}");
}

fn create(cluster: &TestCluster, topic: &str, replicas: &[i32]) {
    let admin = admin(&cluster.bootstrap());
    let assignment: &[&[i32]] = &[replicas];
    let new_topic = NewTopic::new(topic, 1, TopicReplication::Variable(assignment));
    for result in client_runtime()
        .block_on(admin.create_topics(&[new_topic], &AdminOptions::new()))
        .expect("CreateTopics")
    {
        result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    cluster.wait_for("the topic led with a full ISR", |m| {
        partition_of(m, topic, 0).is_some_and(|(l, _, isr)| l > 0 && isr.len() == replicas.len())
    });
}

/// `strom log-dirs describe --json`: (broker, partition, size) of each replica listed.
fn described(bootstrap: &str, args: &[&str]) -> Vec<(i64, String, i64)> {
    let (ok, out, err) = strom(
        bootstrap,
        &[&["--json", "log-dirs", "describe"][..], args].concat(),
    );
    assert!(ok, "log-dirs describe failed: {out}\n{err}");
    let value: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(value["version"], 1);
    let mut rows = Vec::new();
    for broker in value["brokers"].as_array().expect("brokers") {
        for dir in broker["logDirs"].as_array().expect("logDirs") {
            assert!(dir["error"].is_null(), "{dir}");
            assert!(dir["totalBytes"].as_i64().unwrap() > 0, "{dir}");
            for p in dir["partitions"].as_array().expect("partitions") {
                rows.push((
                    broker["broker"].as_i64().unwrap(),
                    p["partition"].as_str().unwrap().to_string(),
                    p["size"].as_i64().unwrap(),
                ));
            }
        }
    }
    rows
}

#[test]
fn replicas_agree_and_reassignment_progress_rises_to_100_percent() {
    const TOPIC: &str = "backlog";
    const RECORDS: u64 = 600;
    const SIZE: usize = 10_000;
    let cluster = TestCluster::start(3, &[]);
    create(&cluster, TOPIC, &[1, 2]);
    let bootstrap = cluster.bootstrap();
    produce(&bootstrap, TOPIC, 0, RECORDS, SIZE);
    // acks=all: every acknowledged batch is on both replicas, stored verbatim.
    let rows = described(&bootstrap, &["--topic", TOPIC]);
    let size = rows.first().map_or(0, |r| r.2);
    assert!(size > (RECORDS as usize * SIZE) as i64, "{rows:?}");
    assert_eq!(
        rows,
        vec![
            (1, format!("{TOPIC}-0"), size),
            (2, format!("{TOPIC}-0"), size)
        ],
        "both ISR members hold the same bytes, broker 3 none"
    );
    assert_eq!(
        described(&bootstrap, &["--topic", TOPIC, "--broker", "2"]),
        vec![(2, format!("{TOPIC}-0"), size)]
    );

    // Move the replica on 2 to 3, throttled so the copy takes several seconds.
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "plan.json", &[(TOPIC, 0, &[1, 3])]);
    let (ok, out, err) = strom(
        &bootstrap,
        &[
            "partition",
            "reassign",
            "--plan",
            &plan,
            "--execute",
            "--throttle",
            "1000000",
        ],
    );
    assert!(ok, "{out}\n{err}");
    let started = Instant::now();
    let mut readings: Vec<(String, i64, i64, f64)> = Vec::new();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the move did not finish: {readings:?}"
        );
        let (_, out, err) = strom(
            &bootstrap,
            &[
                "--json",
                "partition",
                "reassign",
                "--plan",
                &plan,
                "--verify",
            ],
        );
        let rows: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
        let row = &rows[0];
        let status = row["status"].as_str().unwrap().to_string();
        let copies = row["copies"].as_array().expect("copies");
        assert_eq!(copies.len(), 1, "one replica to fill: {row}");
        let copy = &copies[0];
        assert_eq!(copy["broker"], 3, "{row}");
        readings.push((
            status.clone(),
            copy["copied_bytes"].as_i64().expect("broker 3 answered"),
            copy["to_copy_bytes"].as_i64().expect("the leader answered"),
            copy["percent"].as_f64().unwrap(),
        ));
        if status == "complete" {
            break;
        }
        assert_eq!(status, "in progress", "{row}");
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "{} readings over {:?}: {readings:?}",
        readings.len(),
        started.elapsed()
    );
    for pair in readings.windows(2) {
        assert!(
            pair[1].1 >= pair[0].1 && pair[1].3 >= pair[0].3,
            "progress went back: {pair:?}"
        );
    }
    assert!(
        readings.iter().all(|r| r.2 == size),
        "the leader's size is the backlog's: {readings:?}"
    );
    let in_progress: Vec<f64> = readings
        .iter()
        .filter(|r| r.0 == "in progress")
        .map(|r| r.3)
        .collect();
    assert!(
        in_progress.first().is_some_and(|&p| p < 100.0),
        "a copy in progress was seen short of 100 %: {readings:?}"
    );
    let last = readings.last().unwrap();
    assert_eq!(
        (last.1, last.2, last.3),
        (size, size, 100.0),
        "the finished copy holds every byte"
    );
    let rows = described(&bootstrap, &["--topic", TOPIC]);
    assert_eq!(
        rows,
        vec![
            (1, format!("{TOPIC}-0"), size),
            (3, format!("{TOPIC}-0"), size)
        ]
    );
    // The table shows it too.
    let (ok, out, _) = strom(
        &bootstrap,
        &["partition", "reassign", "--plan", &plan, "--verify"],
    );
    assert!(
        ok && out.contains(&format!("3: {size}/{size} B (100.0%)")),
        "{out}"
    );
}
