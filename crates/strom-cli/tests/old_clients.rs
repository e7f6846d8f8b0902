//! Clients of the Kafka 0.10–2.x era, as Debian 12 ships them, against Strom: sarama 1.22 (with
//! its default protocol versions and with Kafka 1.0/2.0 ones), segmentio/kafka-go 0.2,
//! LinkedIn's Burrow 1.2 and kafka-python 2.0.2 (Debian's python3-kafka, on Debian's
//! /usr/bin/python3). `./scripts/test` installs the Debian packages; the Go programs in
//! `tests/go/<name>/` are built here in GOPATH mode from Debian's Go sources, offline, and
//! cached under the target directory; Burrow's ZooKeeper is Debian's `zookeeper` package.
//! Without the packages these tests fail and say so.
//!
//! Each client produces records, consumes them back in a consumer group and commits; the
//! client checks every payload, the order within each partition and that nothing is lost or
//! duplicated, and this side checks its summary line against the broker's own log end offsets
//! and committed offsets.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages as km;
use strom_testkit::zookeeper::ZooKeeper;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where built Go programs are cached: next to the `strom` binary, inside the target dir.
fn go_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_strom"))
        .parent()
        .expect("the strom binary has a directory")
        .join("old-clients")
}

/// Builds `tests/go/<name>/main.go` (GOPATH mode, Debian's sources in /usr/share/gocode, no
/// network) unless the cached binary is newer than the source, and returns the binary.
/// Concurrent test processes may build at once: each builds to its own file and renames it
/// into place.
fn go_program(name: &str) -> PathBuf {
    let source = workspace_root().join("tests/go").join(name).join("main.go");
    let dir = go_cache_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(name);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(src)) = (modified(&binary), modified(&source)) {
        if built >= src {
            return binary;
        }
    }
    let gopath = Path::new("/usr/share/gocode/src/github.com");
    assert!(
        gopath.join("Shopify/sarama").is_dir() && gopath.join("segmentio/kafka-go").is_dir(),
        "Debian's Go sources of sarama and kafka-go are not installed: ./scripts/test installs \
         them (apt-get install golang-go golang-github-shopify-sarama-dev \
         golang-github-segmentio-kafka-go-dev)"
    );
    let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&partial)
        .arg(&source)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOFLAGS", "")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .output()
        .unwrap_or_else(|e| {
            panic!("`go` could not be run ({e}): ./scripts/test installs golang-go")
        });
    assert!(
        out.status.success(),
        "go build {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &binary).unwrap();
    binary
}

/// Runs `command` to completion, killing it after `timeout`; returns (success, stdout, stderr).
fn run_bounded(command: &mut Command, timeout: Duration) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start the client");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let mut stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {timeout:?})"));
    }
    (status.is_some_and(|s| s.success()), stdout, stderr)
}

/// The `key=value` fields of the client's `RESULT` line.
fn result_fields(stdout: &str) -> Vec<(String, String)> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in:\n{stdout}"));
    line["RESULT ".len()..]
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key}= in {fields:?}"))
}

/// The log end offset of each partition of `topic`, from the broker (ListOffsets v1).
fn log_end_offsets(raw: &mut RawClient, topic: &str, partitions: i32) -> Vec<i64> {
    let mut t = km::list_offsets_request::ListOffsetsTopic::default();
    t.name = km::TopicName(topic.to_string().into());
    for p in 0..partitions {
        let mut lp = km::list_offsets_request::ListOffsetsPartition::default();
        lp.partition_index = p;
        lp.timestamp = -1;
        t.partitions.push(lp);
    }
    let mut request = km::ListOffsetsRequest::default();
    request.replica_id = km::BrokerId(-1);
    request.topics = vec![t];
    let response = raw.send(1, &request);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0);
            p.offset
        })
        .collect()
}

/// The committed offset of each partition of `topic` in `group`, from the broker (OffsetFetch
/// v1); -1 where none.
fn committed_offsets(raw: &mut RawClient, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let mut t = km::offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = km::TopicName(topic.to_string().into());
    t.partition_indexes = (0..partitions).collect();
    let mut request = km::OffsetFetchRequest::default();
    request.group_id = km::GroupId(group.to_string().into());
    request.topics = Some(vec![t]);
    let response = raw.send(1, &request);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect()
}

/// The payload the Go programs give record `i` (`value` in their main.go).
fn go_value(prefix: &str, i: usize) -> Vec<u8> {
    let letter = (b'a' + (i % 26) as u8) as char;
    format!("{prefix}-{i:06}-{}", letter.to_string().repeat(i % 50)).into_bytes()
}

fn crc32c_of_values(prefix: &str, n: usize) -> String {
    let mut crc = 0u32;
    for i in 0..n {
        crc = crc32c::crc32c_append(crc, &go_value(prefix, i));
    }
    format!("{crc:08x}")
}

/// After a client's round trip: its summary agrees with the broker, every record is in the
/// log, and the group's committed offsets are the log end offsets.
fn check_with_broker(
    bootstrap: &str,
    topic: &str,
    group: &str,
    partitions: i32,
    n: usize,
    fields: &[(String, String)],
) {
    assert_eq!(field(fields, "produced"), n.to_string());
    assert_eq!(field(fields, "consumed"), n.to_string());
    let mut raw = RawClient::connect(bootstrap);
    let ends = log_end_offsets(&mut raw, topic, partitions);
    assert_eq!(
        ends.iter().sum::<i64>(),
        n as i64,
        "log end offsets {ends:?}"
    );
    assert!(
        ends.iter().filter(|&&e| e > 0).count() > 1,
        "the keys spread the records over the partitions: {ends:?}"
    );
    assert_eq!(
        committed_offsets(&mut raw, group, topic, partitions),
        ends,
        "committed offsets of {group} are the log end offsets"
    );
}

fn sarama_round_trip(version: &str, topic: &str) {
    let binary = go_program("sarama-roundtrip");
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, topic, 3, &[]);
    let n = 300;
    let group = format!("{topic}-group");
    let (ok, stdout, stderr) = run_bounded(
        Command::new(&binary).args([
            "-brokers",
            &bootstrap,
            "-topic",
            topic,
            "-group",
            &group,
            "-n",
            &n.to_string(),
            "-version",
            version,
            "-timeout",
            "90s",
        ]),
        Duration::from_secs(100),
    );
    assert!(ok, "sarama {version} failed:\n{stdout}\n{stderr}");
    let fields = result_fields(&stdout);
    assert_eq!(field(&fields, "crc32c"), crc32c_of_values("sarama", n));
    check_with_broker(&bootstrap, topic, &group, 3, n, &fields);
    // The client's own reading of the committed offsets (a fresh client, OffsetFetch v1)
    // agrees: "partition:committed/end" for each partition.
    for part in field(&fields, "committed").split(',') {
        let (_, offsets) = part.split_once(':').unwrap();
        let (committed, end) = offsets.split_once('/').unwrap();
        assert_eq!(committed, end, "{part}");
    }
}

/// sarama 1.22 with its default `Config.Version` (0.8.2): Produce v0 and Fetch v0 (message
/// format v0), ListOffsets v0, FindCoordinator v0, OffsetCommit v1, OffsetFetch v1.
#[test]
fn sarama_1_22_default_version() {
    sarama_round_trip("default", "sarama-default");
}

/// sarama 1.22 as a Kafka 1.0 client: record batches, a consumer group (JoinGroup, SyncGroup,
/// Heartbeat), and still OffsetCommit v1 (sarama uses v1 whenever no retention is set).
#[test]
fn sarama_1_22_kafka_1_0() {
    sarama_round_trip("1.0.0", "sarama-1-0");
}

/// sarama 1.22 as a Kafka 2.0 client.
#[test]
fn sarama_1_22_kafka_2_0() {
    sarama_round_trip("2.0.0", "sarama-2-0");
}

/// segmentio/kafka-go 0.2: Writer (Produce v2, message format v1) and a group Reader (Fetch
/// v2, OffsetCommit v2 per message).
#[test]
fn kafka_go_0_2_writer_and_group_reader() {
    let binary = go_program("kafka-go-roundtrip");
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kafka-go", 3, &[]);
    let n = 200;
    let (ok, stdout, stderr) = run_bounded(
        Command::new(&binary).args([
            "-brokers",
            &bootstrap,
            "-topic",
            "kafka-go",
            "-group",
            "kafka-go-group",
            "-n",
            &n.to_string(),
            "-timeout",
            "90s",
        ]),
        Duration::from_secs(100),
    );
    assert!(ok, "kafka-go failed:\n{stdout}\n{stderr}");
    let fields = result_fields(&stdout);
    assert_eq!(field(&fields, "crc32c"), crc32c_of_values("kafka-go", n));
    check_with_broker(&bootstrap, "kafka-go", "kafka-go-group", 3, n, &fields);
    // "partition:next offset" of the last message it consumed and committed.
    let mut raw = RawClient::connect(&bootstrap);
    let ends = log_end_offsets(&mut raw, "kafka-go", 3);
    for part in field(&fields, "next").split(',') {
        let (p, next) = part.split_once(':').unwrap();
        let p: usize = p.parse().unwrap();
        assert_eq!(next.parse::<i64>().unwrap(), ends[p], "{part}");
    }
}

/// kafka-python 2.0.2 (Debian's python3-kafka, on Debian's /usr/bin/python3, not the
/// pyenv python3 on PATH): producer, group consumer, commit, committed().
#[test]
fn kafka_python_2_0_2_debian() {
    let python = Path::new("/usr/bin/python3");
    let found = Command::new(python)
        .args(["-c", "import kafka; print(kafka.__version__)"])
        .output();
    match found {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "2.0.2" => {}
        other => panic!(
            "Debian's python3-kafka 2.0.2 is not importable by /usr/bin/python3: ./scripts/test \
             installs it (apt-get install python3-kafka): {other:?}"
        ),
    }
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "old-python", 3, &[]);
    let n = 200;
    let script = workspace_root().join("tests/python/old_kafka_python.py");
    let (ok, stdout, stderr) = run_bounded(
        Command::new(python)
            .arg(&script)
            .args([&bootstrap, "old-python", "old-python-group", &n.to_string()])
            .env("PYTHONUNBUFFERED", "1"),
        Duration::from_secs(120),
    );
    assert!(ok, "kafka-python 2.0.2 failed:\n{stdout}\n{stderr}");
    let fields = result_fields(&stdout);
    check_with_broker(&bootstrap, "old-python", "old-python-group", 3, n, &fields);
}

// --- Burrow ---------------------------------------------------------------------------------

/// A child process killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on 127.0.0.1:`port`: the body, if the server answered.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

/// Commits `offsets` (partition, offset) for `group` without membership (OffsetCommit v2).
fn commit(raw: &mut RawClient, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let mut t = km::offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = km::TopicName(topic.to_string().into());
    for &(p, offset) in offsets {
        let mut cp = km::offset_commit_request::OffsetCommitRequestPartition::default();
        cp.partition_index = p;
        cp.committed_offset = offset;
        t.partitions.push(cp);
    }
    let mut request = km::OffsetCommitRequest::default();
    request.group_id = km::GroupId(group.to_string().into());
    request.generation_id_or_member_epoch = -1;
    request.topics = vec![t];
    let response = raw.send(2, &request);
    for p in &response.topics[0].partitions {
        assert_eq!(p.error_code, 0, "commit for Burrow's group");
    }
}

/// LinkedIn's Burrow 1.2 (Debian's `burrow`) with its default client profile (Kafka 0.8:
/// ListOffsets v0 for the log end offsets, Fetch v0 to read `__consumer_offsets`) reports the
/// topic's log end offsets and a lagging group's per-partition lag over its HTTP API. Burrow
/// will not start without a ZooKeeper, where it keeps its own coordination data (nothing about
/// Kafka): it gets a real one, Debian's `zookeeper` 3.8 (`common::zookeeper`).
#[test]
fn burrow_1_2_reports_end_offsets_and_lag() {
    let burrow = Path::new("/usr/bin/Burrow");
    assert!(
        burrow.exists(),
        "Burrow is not installed: ./scripts/test installs it (apt-get install burrow)"
    );
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "lagging", 2, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    // 20 records in partition 0, 10 in partition 1.
    for (partition, count) in [(0, 20), (1, 10)] {
        for _ in 0..count / 5 {
            let values: Vec<Vec<u8>> = (0..5).map(|i| format!("v{i}").into_bytes()).collect();
            let records: Vec<(Option<&[u8]>, &[u8])> =
                values.iter().map(|v| (None, v.as_slice())).collect();
            let mut data = km::produce_request::PartitionProduceData::default();
            data.index = partition;
            data.records = Some(record_batch(&records, -1, -1, -1, 1));
            let mut t = km::produce_request::TopicProduceData::default();
            t.name = km::TopicName("lagging".to_string().into());
            t.partition_data = vec![data];
            let mut request = km::ProduceRequest::default();
            request.acks = -1;
            request.timeout_ms = 10_000;
            request.topic_data = vec![t];
            let response = raw.send(7, &request);
            assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        }
    }
    assert_eq!(log_end_offsets(&mut raw, "lagging", 2), vec![20, 10]);
    // The group is 15 behind on partition 0 and caught up on partition 1. This also creates
    // __consumer_offsets (with its configured partitions) before Burrow looks for it.
    commit(&mut raw, "lagger", "lagging", &[(0, 5), (1, 10)]);

    let zookeeper = ZooKeeper::start();
    let http_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[general]
pidfile="{dir}/burrow.pid"

[logging]
level="info"

[zookeeper]
servers=["{zk}"]
timeout=6
root-path="/burrow"

[client-profile.strom]
client-id="burrow-test"

[cluster.strom]
class-name="kafka"
servers=["{bootstrap}"]
client-profile="strom"
topic-refresh=1
offset-refresh=1

[consumer.strom]
class-name="kafka"
cluster="strom"
servers=["{bootstrap}"]
client-profile="strom"
start-latest=false

[httpserver.default]
address="127.0.0.1:{http_port}"

[storage.default]
class-name="inmemory"
workers=2
intervals=10
expire-group=604800
min-distance=1
"#,
        dir = dir.path().display(),
        zk = zookeeper.connect_string(),
    );
    std::fs::write(dir.path().join("burrow.toml"), config).unwrap();
    let log = dir.path().join("burrow.log");
    let child = Command::new(burrow)
        .arg("--config-dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::options().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .expect("start Burrow");
    let mut child = Killed(child);
    let burrow_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // Burrow keeps a commit only once it knows the partition's log end offset (ListOffsets
    // v0), so the group commits again every half second, as a live consumer would.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut topic_offsets = None;
    let mut lag = None;
    while Instant::now() < deadline && (topic_offsets.is_none() || lag.is_none()) {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("Burrow exited ({status}):\n{}", burrow_log());
        }
        commit(&mut raw, "lagger", "lagging", &[(0, 5), (1, 10)]);
        std::thread::sleep(Duration::from_millis(500));
        if topic_offsets.is_none() {
            topic_offsets = http_get(http_port, "/v3/kafka/strom/topic/lagging")
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .filter(|v| v["error"] == false)
                .map(|v| v["offsets"].clone());
        }
        if lag.is_none() {
            lag = http_get(http_port, "/v3/kafka/strom/consumer/lagger/lag")
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .filter(|v| v["error"] == false)
                .map(|v| v["status"].clone())
                .filter(|s| s["partitions"].as_array().is_some_and(|p| p.len() == 2));
        }
    }
    let topic_offsets = topic_offsets.unwrap_or_else(|| {
        panic!(
            "Burrow reported no offsets for the topic:\n{}",
            burrow_log()
        )
    });
    assert_eq!(
        topic_offsets,
        serde_json::json!([20, 10]),
        "log end offsets"
    );
    let lag = lag.unwrap_or_else(|| panic!("Burrow reported no lag:\n{}", burrow_log()));
    let mut partitions: Vec<(i64, i64, i64)> = lag["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                p["end"]["offset"].as_i64().unwrap(),
                p["current_lag"].as_i64().unwrap(),
            )
        })
        .collect();
    partitions.sort();
    assert_eq!(
        partitions,
        vec![(0, 5, 15), (1, 10, 0)],
        "(partition, committed offset, lag): {lag}"
    );
    assert_eq!(lag["totallag"], 15, "{lag}");
}
