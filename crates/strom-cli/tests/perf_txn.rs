//! `strom perf produce` and `strom perf e2e` with `--transactional-id`: the load runs in
//! transactions committed every `--commit-interval-ms`, every record lands committed (a
//! read_committed consumer reads them all, and each partition holds commit markers besides
//! the records), and the run reports its commits. The bench of issue 9 (`bench/txn-ab.sh`)
//! relies on this.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{client_config, create_topic, TestBroker};
use rdkafka::consumer::{BaseConsumer, Consumer};

fn strom(bootstrap: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["-b", bootstrap, "--json", "--timeout-ms", "10000"])
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn transactional_perf_runs_commit_every_record() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "txn-perf", 3, &[]);
    // 3,000 records at 15,000/s: about 200 ms of sending, so several 20 ms transactions.
    let produced = json(&strom(
        &bootstrap,
        &[
            "perf",
            "produce",
            "--topic",
            "txn-perf",
            "--num-records",
            "3000",
            "--record-size",
            "100",
            "--throughput",
            "15000",
            "--transactional-id",
            "perf-txn",
            "--commit-interval-ms",
            "20",
        ],
    ));
    assert_eq!(produced["records"], 3000);
    assert_eq!(produced["errors"], 0);
    let commits = produced["transactions"]["commits"].as_u64().unwrap();
    assert!((3..=100).contains(&commits), "{commits} commits");
    assert_eq!(produced["transactions"]["commit_latency"]["count"], commits);

    // Every transaction that touched a partition ends with a marker there: the partitions'
    // ends exceed the records by at least one marker per commit.
    let consumer: BaseConsumer = client_config(&bootstrap, &[("group.id", "perf-txn-check")])
        .create()
        .unwrap();
    let ends: i64 = (0..3)
        .map(|partition| {
            consumer
                .fetch_watermarks("txn-perf", partition, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .sum();
    assert!(
        ends >= 3000 + commits as i64,
        "ends {ends}, {commits} commits"
    );

    // A read_committed consumer reads all 3,000 (the last transaction too).
    let consumed = json(&strom(
        &bootstrap,
        &[
            "perf",
            "consume",
            "--topic",
            "txn-perf",
            "--num-records",
            "3000",
            "--consumer-prop",
            "isolation.level=read_committed",
        ],
    ));
    assert_eq!(consumed["complete"], true, "{consumed}");
    assert_eq!(consumed["records"], 3000);

    // e2e to a read_committed consumer: every acknowledged record arrives, after its commit.
    let e2e = json(&strom(
        &bootstrap,
        &[
            "perf",
            "e2e",
            "--topic",
            "txn-perf",
            "--rate",
            "1000",
            "--duration",
            "1",
            "--record-size",
            "64",
            "--transactional-id",
            "perf-txn-e2e",
            "--commit-interval-ms",
            "50",
            "--consumer-prop",
            "isolation.level=read_committed",
        ],
    ));
    assert_eq!(e2e["acked"], 1000);
    assert_eq!(e2e["received"], 1000);
    // About 20 commits of 50 ms each; fewer than 13 means each commit waits far longer than
    // its records' acknowledgements (the rdkafka crate's 100 ms flush step, see load.rs).
    let commits = e2e["transactions"]["commits"].as_u64().unwrap();
    assert!((13..=40).contains(&commits), "{commits} commits");

    // An interval without an id is refused.
    let out = strom(
        &bootstrap,
        &[
            "perf",
            "produce",
            "--topic",
            "txn-perf",
            "--num-records",
            "1",
            "--record-size",
            "1",
            "--commit-interval-ms",
            "10",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs --transactional-id"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
