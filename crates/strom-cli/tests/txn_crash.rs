//! Exactly-once across crashes: a consume-transform-produce worker (aiokafka,
//! `tests/python/eos_worker_aio.py`) commits its output and its input offsets in transactions
//! while the test SIGKILLs the broker at seeded moments and restarts it on the same data and
//! port, ten times. Afterwards a read_committed consumer must find every input record in the
//! output exactly once (values and per-partition order checked), none of an aborted or
//! half-done transaction, and the group's committed offsets at the input's end.
//!
//! `STROM_TXN_KILL_SEED=n` replays one kill schedule.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng as _, SeedableRng as _};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

const INPUT: &str = "eos-in";
const OUTPUT: &str = "eos-out";
const RECORDS: usize = 3000;
const ROUNDS: usize = 10;

fn seed() -> u64 {
    std::env::var("STROM_TXN_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        })
}

fn feed(bootstrap: &str) {
    let producer = producer(
        bootstrap,
        &[("enable.idempotence", "true"), ("linger.ms", "5")],
    );
    let runtime = client_runtime();
    let values: Vec<String> = (0..RECORDS).map(|i| format!("in-{i}")).collect();
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

/// Kills the broker process when the test ends, however it ends.
struct Running(BrokerProcess);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

#[test]
fn exactly_once_through_ten_broker_kills() {
    let seed = seed();
    println!("kill schedule seed {seed} (replay with STROM_TXN_KILL_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let sets = ["transaction.abort.timed.out.transaction.cleanup.interval.ms=500"];
    let mut starts = 0;
    let mut start = |port: u16| {
        starts += 1;
        let log = dir.path().join(format!("broker.{starts}.log"));
        let mut all: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        if port != 0 {
            all.push(format!("listeners=PLAINTEXT://127.0.0.1:{port}"));
        }
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        Running(spawn_broker_process(&data, &log, &refs))
    };
    let mut broker = start(0);
    let port = broker.0.port;
    let bootstrap = broker.0.bootstrap();
    create_topic(&bootstrap, INPUT, 2, &[]);
    create_topic(&bootstrap, OUTPUT, 2, &[]);
    feed(&bootstrap);

    let worker_log = dir.path().join("worker.log");
    let mut worker = Command::new("python3")
        .arg(python::script("eos_worker_aio.py"))
        .args([
            &bootstrap,
            INPUT,
            OUTPUT,
            "eos-group",
            "eos-worker",
            &RECORDS.to_string(),
            "240",
            // 20 records per transaction and 50 ms between them: about 150 transactions,
            // so the kills land among them.
            "20",
            "50",
        ])
        .env("PYTHONUNBUFFERED", "1")
        .stdout(std::fs::File::create(&worker_log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs (./scripts/test installs aiokafka)");
    let worker_text = || std::fs::read_to_string(&worker_log).unwrap_or_default();

    let mut kills = 0;
    for round in 0..ROUNDS {
        // Kill once the worker is committing again (or after a bounded wait).
        let commits_before = worker_text().matches("committed ").count();
        let wait_from = Instant::now();
        while worker_text().matches("committed ").count() == commits_before
            && wait_from.elapsed() < Duration::from_secs(20)
            && worker.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 400));
        if worker.try_wait().unwrap().is_some() {
            println!("the worker finished before round {round}");
            break;
        }
        broker.0.child.kill().expect("SIGKILL the broker");
        broker.0.child.wait().expect("reap the broker");
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 300));
        broker = start(port);
        kills += 1;
        println!("round {round}: killed and restarted the broker");
    }

    let deadline = Instant::now() + Duration::from_secs(240);
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
    let text = worker_text();
    assert!(
        status.is_some_and(|s| s.success()),
        "the worker did not finish (seed {seed}, {status:?}):\n{}",
        &text[text.len().saturating_sub(6000)..]
    );
    println!("{}", text.lines().last().unwrap_or_default());
    assert_eq!(
        kills, ROUNDS,
        "every kill landed while the worker was still working (seed {seed})"
    );

    let output = read_output(&bootstrap);
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
                "partition {partition}: {value} after out-{last} (seed {seed}): duplicated or reordered"
            );
            last = i;
            *seen.entry(i).or_insert(0) += 1;
        }
    }
    let missing: Vec<i64> = (0..RECORDS as i64)
        .filter(|i| !seen.contains_key(i))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "missing from the output (seed {seed}): {missing:?}…"
    );
    assert_eq!(
        seen.len(),
        RECORDS,
        "every input record exactly once in the output (seed {seed})"
    );
    drop(broker);
}
