//! Unmodified Python Kafka clients against Strom: kafka-python, confluent-kafka (librdkafka)
//! and aiokafka each create topics, produce with every codec they support and acks 0/1/all
//! (and idempotently), read everything back with manual assignment, and check ListOffsets and
//! DescribeConfigs. The work is in `tests/python/clients_roundtrip.py` (and a fetch-session tail in
//! `tests/python/session_tail.py`); `./scripts/test`
//! installs the packages (`tests/python/requirements.txt`). Without them these tests fail and
//! say so.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails the test, saying how to install, unless `python3` can import `module`.
fn require_module(client: &str, module: &str) {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output();
    match found {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the Python package for {client} (module `{module}`) is not installed: ./scripts/test \
             installs it (python3 -m pip install -r tests/python/requirements.txt)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "python3 could not be run ({e}): it and the packages in tests/python/requirements.txt \
             are needed; ./scripts/test installs the packages"
        ),
    }
}

fn round_trip(client: &str, module: &str) {
    require_module(client, module);
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let script = workspace_root().join("tests/python/clients_roundtrip.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([bootstrap.as_str(), client])
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{} {client} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        script.display(),
        out.status
    );
    assert!(
        stdout.contains("all phases matched"),
        "{client}: the script exited 0 without its closing line:\n{stdout}\n{stderr}"
    );
}

#[test]
fn kafka_python_round_trip() {
    round_trip("kafka-python", "kafka");
}

#[test]
fn confluent_kafka_round_trip() {
    round_trip("confluent-kafka", "confluent_kafka");
}

#[test]
fn aiokafka_round_trip() {
    round_trip("aiokafka", "aiokafka");
}

/// kafka-python (2.1+ fetches in KIP-227 sessions by default) tails busy and idle partitions:
/// every record once, in order, and the broker holds its session
/// (`tests/python/session_tail.py`).
#[test]
fn kafka_python_tails_partitions_in_a_fetch_session() {
    require_module("kafka-python", "kafka");
    let broker = TestBroker::start(&[]);
    let metrics = broker
        .handle
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("metrics on");
    let script = workspace_root().join("tests/python/session_tail.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([broker.bootstrap(), metrics.to_string()])
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("tail matched"),
        "{} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        script.display(),
        out.status
    );
}
