//! kill -9 of partition leaders and controllers in the middle of an idempotent acks=all stream
//! on a 3-broker cluster (RF 3, min.insync.replicas 2): the controller elects a new leader from
//! the ISR, the producer carries on, the killed broker comes back, truncates, catches up and
//! rejoins the ISR, and every acknowledged record is read back once, in order, with its bytes.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{partition_of, TestCluster};
use common::ledger::Ledger;
use common::*;
use kafka_protocol::messages::MetadataResponse;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

/// Starts 3 brokers and creates `topic` (1 partition, RF 3, min.insync.replicas 2), waiting
/// until every broker shows it led with a full ISR.
fn cluster_with_topic(topic: &str) -> TestCluster {
    let cluster = TestCluster::start(3, &["replica.lag.time.max.ms=3000"]);
    let admin = admin(&cluster.bootstrap());
    let new_topic =
        NewTopic::new(topic, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    for result in client_runtime()
        .block_on(admin.create_topics(&[new_topic], &AdminOptions::new()))
        .expect("CreateTopics")
    {
        result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    cluster.wait_for("the topic led with a full ISR everywhere", |m| {
        full_isr(m, topic)
    });
    cluster
}

fn full_isr(m: &MetadataResponse, topic: &str) -> bool {
    partition_of(m, topic, 0)
        .is_some_and(|(leader, replicas, isr)| leader > 0 && replicas.len() == 3 && isr.len() == 3)
}

/// Starts the ledger's producer on `topic` in a thread, at most `rate` records a second; set
/// the flag to stop it.
fn start_producer(
    ledger: &Ledger,
    bootstrap: &str,
    topic: &'static str,
    rate: Option<u32>,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let (bootstrap, stop, ledger) = (bootstrap.to_string(), stop.clone(), ledger.clone());
        std::thread::spawn(move || ledger.produce_at(&bootstrap, topic, stop, 0, &[], rate))
    };
    (stop, handle)
}

#[test]
fn acknowledged_records_survive_a_leader_kill() {
    const TOPIC: &str = "failover";
    let mut cluster = cluster_with_topic(TOPIC);
    let bootstrap = cluster.bootstrap();
    let ledger = Ledger::default();
    let (stop, producer) = start_producer(&ledger, &bootstrap, TOPIC, None);
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
        full_isr(m, TOPIC)
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
    let verified = cluster.keep_files_if_panics(|| ledger.verify(&bootstrap, TOPIC, &[0]));
    assert_eq!(verified.acknowledged, ledger.len());
    eprintln!(
        "{} acknowledged records verified among {} in the log",
        verified.acknowledged, verified.in_log
    );
}

/// The kill -9 loop: `STROM_FAILOVER_ROUNDS` rounds (20 by default) of killing the partition
/// leader (every third round the controller instead, whoever leads), all while one idempotent
/// acks=all producer runs. Each round waits until a record sent after the kill is acknowledged
/// (the failover as the client sees it), restarts the killed broker and waits until it is back
/// in the ISR; then every acknowledged record is checked.
#[test]
fn acknowledged_records_survive_rounds_of_leader_and_controller_kills() {
    const TOPIC: &str = "failover-rounds";
    let rounds: usize = std::env::var("STROM_FAILOVER_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut cluster = cluster_with_topic(TOPIC);
    let bootstrap = cluster.bootstrap();
    let ledger = Ledger::default();
    // A steady 5,000 records a second (about 7.5 MB/s): an unbounded producer on a 2-core
    // machine can outrun a restarted follower's catch-up for good, and the rounds would test
    // the machine rather than the failover.
    let (stop, producer) = start_producer(&ledger, &bootstrap, TOPIC, Some(5_000));
    wait_until("the first acknowledgement", Duration::from_secs(30), || {
        ledger.len() > 0
    });
    let mut failovers = Vec::new();
    for round in 0..rounds {
        let (leader, _, _) = cluster.partition(TOPIC, 0);
        let controller = cluster.controller();
        let victim = if round % 3 == 2 { controller } else { leader };
        let killed = Instant::now();
        cluster.kill(victim);
        wait_until(
            "a record sent after the kill acknowledged",
            Duration::from_secs(30),
            || ledger.first_ack_of_send_after(killed).is_some(),
        );
        let failover = ledger.first_ack_of_send_after(killed).unwrap() - killed;
        cluster.wait_for("a leader and a controller among the survivors", |m| {
            m.controller_id.0 > 0
                && m.controller_id.0 != victim
                && partition_of(m, TOPIC, 0).is_some_and(|(l, _, _)| l > 0 && l != victim)
        });
        cluster.restart(victim);
        cluster.wait_for("the restarted broker back in the ISR", |m| {
            full_isr(m, TOPIC)
        });
        eprintln!(
            "round {round}: killed broker {victim} (leader {leader}, controller {controller}); \
             first acknowledgement of a later send after {failover:?}; {} acknowledged",
            ledger.len()
        );
        failovers.push(failover);
    }
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    failovers.sort();
    eprintln!(
        "client-seen failover over {rounds} rounds: median {:?}, max {:?}",
        failovers[failovers.len() / 2],
        failovers[failovers.len() - 1]
    );
    let verified = cluster.keep_files_if_panics(|| ledger.verify(&bootstrap, TOPIC, &[0]));
    assert_eq!(verified.acknowledged, ledger.len());
    eprintln!(
        "{rounds} rounds: {} acknowledged records verified among {} in the log",
        verified.acknowledged, verified.in_log
    );
}
