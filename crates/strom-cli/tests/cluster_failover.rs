//! kill -9 of a partition leader in the middle of an idempotent acks=all stream on a 3-broker
//! cluster (RF 3, min.insync.replicas 2): the controller elects a new leader from the ISR, the
//! producer carries on, the killed broker comes back, truncates, catches up and rejoins the
//! ISR, and every acknowledged record is read back once, in order, with its bytes.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::{partition_of, TestCluster};
use common::ledger::Ledger;
use common::*;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

const TOPIC: &str = "failover";

// Ignored in the default run: about one run in five finds an acknowledged record twice in the
// log after the failover (an idempotent retry accepted again by the new leader), a real bug
// still open (see the closing note of 2026-12-05). Run it with
// `cargo nextest run -p strom-cli --test cluster_failover --run-ignored all`.
#[test]
#[ignore = "finds a duplicated acknowledged record in about one run in five: open bug"]
fn acknowledged_records_survive_a_leader_kill() {
    let mut cluster = TestCluster::start(3, &["replica.lag.time.max.ms=3000"]);
    let bootstrap = cluster.bootstrap();
    let admin = admin(&bootstrap);
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    for result in client_runtime()
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("CreateTopics")
    {
        result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    cluster.wait_for("the topic led with a full ISR everywhere", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(leader, replicas, isr)| {
            leader > 0 && replicas.len() == 3 && isr.len() == 3
        })
    });

    let ledger = Ledger::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (bootstrap, stop, ledger) = (bootstrap.clone(), stop.clone(), ledger.clone());
        std::thread::spawn(move || ledger.produce_until(&bootstrap, TOPIC, stop, 0, &[]))
    };
    std::thread::sleep(Duration::from_secs(2));
    let before_kill = ledger.len();
    let (leader, _, _) = cluster.partition(TOPIC, 0);
    cluster.kill(leader);
    cluster.wait_for("a new leader from the ISR", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(l, _, _)| l > 0 && l != leader)
    });
    std::thread::sleep(Duration::from_secs(2));
    let after_failover = ledger.len();
    cluster.restart(leader);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    cluster.wait_for("the restarted broker back in the ISR", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(_, _, isr)| isr.len() == 3)
    });
    eprintln!(
        "acknowledged: {before_kill} before the kill, {after_failover} after the failover, {} in all",
        ledger.len()
    );
    assert!(before_kill > 50, "too little acknowledged before the kill");
    assert!(
        after_failover > before_kill,
        "the producer carried on after the failover"
    );
    let verified = ledger.verify(&bootstrap, TOPIC, &[0]);
    assert_eq!(verified.acknowledged, ledger.len());
    eprintln!(
        "{} acknowledged records verified among {} in the log",
        verified.acknowledged, verified.in_log
    );
}
