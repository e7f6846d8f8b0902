//! Transactions through unmodified clients against a real broker process: confluent-kafka
//! (librdkafka), kafka-python and aiokafka each run `tests/python/transactions.py`: commit
//! visible and abort invisible to read_committed (control records taking offsets), an open
//! transaction holding the last stable offset, zombie fencing, a transaction timed out by the
//! coordinator, and consume-transform-produce with `send_offsets_to_transaction` giving every
//! input record exactly once in the output.

mod common;

use std::time::Duration;

use common::*;

/// A broker whose coordinator checks for timed-out transactions every 200 ms (the timeout
/// scenario leaves one open for 1.5 s).
fn broker() -> TestBroker {
    TestBroker::start(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=200"])
}

fn scenarios(client: &str) {
    let broker = broker();
    let bootstrap = broker.bootstrap();
    python::run(
        "transactions.py",
        &[&bootstrap, client],
        "all scenarios matched",
        Duration::from_secs(240),
    );
}

#[test]
fn confluent_kafka_transactions() {
    scenarios("confluent-kafka");
}

#[test]
fn kafka_python_transactions() {
    scenarios("kafka-python");
}

#[test]
fn aiokafka_transactions() {
    scenarios("aiokafka");
}
