//! The exactly-once worker of the transaction crash tests (`tests/python/eos_worker_aio.py`):
//! its input, its process, and the check of its output.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

use super::{client_config, client_runtime, producer, python};

/// The worker's input topic (2 partitions, record `i` = `in-i` in partition `i % 2`).
pub const INPUT: &str = "eos-in";
/// The worker's output topic (`out-i` for `in-i`, same partition).
pub const OUTPUT: &str = "eos-out";

/// Writes `records` input records, each acknowledged.
pub fn feed(bootstrap: &str, records: usize) {
    let producer = producer(
        bootstrap,
        &[("enable.idempotence", "true"), ("linger.ms", "5")],
    );
    let runtime = client_runtime();
    let values: Vec<String> = (0..records).map(|i| format!("in-{i}")).collect();
    runtime.block_on(async {
        let mut sends = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let partition = (i % 2) as i32;
            sends.push(
                producer.send_result(
                    FutureRecord::<(), String>::to(INPUT)
                        .payload(value)
                        .partition(partition),
                ),
            );
        }
        for send in sends {
            let delivered = send.expect("queued").await.expect("not cancelled");
            delivered.expect("every input record is acknowledged");
        }
    });
}

/// Starts the worker: `records` to process, at most `batch` per transaction, `pace_ms`
/// between transactions, logging to `log`.
pub fn spawn_worker(
    bootstrap: &str,
    records: usize,
    batch: usize,
    pace_ms: u64,
    log: &Path,
) -> Child {
    Command::new("python3")
        .arg(python::script("eos_worker_aio.py"))
        .args([
            bootstrap,
            INPUT,
            OUTPUT,
            "eos-group",
            "eos-worker",
            &records.to_string(),
            "240",
            &batch.to_string(),
            &pace_ms.to_string(),
        ])
        .env("PYTHONUNBUFFERED", "1")
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs (./scripts/test installs aiokafka)")
}

/// How many transactions the worker's log says it committed.
pub fn commits(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches("committed ")
        .count()
}

/// Waits (up to `limit`) until the worker commits another transaction; false if it did not.
pub fn wait_for_commit(log: &Path, worker: &mut Child, limit: Duration) -> bool {
    let before = commits(log);
    let from = Instant::now();
    while from.elapsed() < limit {
        if commits(log) > before {
            return true;
        }
        if worker.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits for the worker to exit 0 within `limit`, else fails with its log's tail.
pub fn wait_for_worker(worker: &mut Child, log: &Path, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = worker.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "the worker did not finish ({what}, {status:?}):\n{}",
        &text[text.len().saturating_sub(6000)..]
    );
    println!("{}", text.lines().last().unwrap_or_default());
}

/// Every output value read with read_committed, per partition in offset order.
fn read_output(bootstrap: &str) -> BTreeMap<i32, Vec<String>> {
    let consumer: BaseConsumer = client_config(
        bootstrap,
        &[
            ("group.id", "eos-checker"),
            ("isolation.level", "read_committed"),
            ("enable.auto.commit", "false"),
        ],
    )
    .create()
    .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..2 {
        assignment
            .add_partition_offset(OUTPUT, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline && quiet_since.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
            out.entry(m.partition()).or_default().push(value);
            quiet_since = Instant::now();
        }
    }
    out
}

/// Reads the output with read_committed and checks that every input record is there exactly
/// once, in its partition and in order.
pub fn check_output(bootstrap: &str, records: usize, what: &str) {
    let output = read_output(bootstrap);
    let mut seen = BTreeMap::new();
    for (partition, values) in &output {
        let mut last = -1i64;
        for value in values {
            let i: i64 = value
                .strip_prefix("out-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected output value {value:?}"));
            assert_eq!(
                i % 2,
                i64::from(*partition),
                "{value} in partition {partition}"
            );
            assert!(
                i > last,
                "partition {partition}: {value} after out-{last} ({what}): duplicated or reordered"
            );
            last = i;
            *seen.entry(i).or_insert(0) += 1;
        }
    }
    let missing: Vec<i64> = (0..records as i64)
        .filter(|i| !seen.contains_key(i))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "missing from the output ({what}): {missing:?}…"
    );
    assert_eq!(
        seen.len(),
        records,
        "every input record exactly once in the output ({what})"
    );
}
