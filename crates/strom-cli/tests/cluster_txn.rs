//! Transactions on a replicated cluster: three brokers on a real ZooKeeper, `__transaction_state`
//! and every topic with RF 3 and `min.insync.replicas` 2. An exactly-once worker (aiokafka,
//! `tests/python/eos_worker_aio.py`) runs while the test SIGKILLs the broker that coordinates
//! its transactional id, three times (each time restarting it once another broker has taken
//! over): every input record must reach the read_committed output exactly once.

mod common;

use std::time::Duration;

use common::cluster::TestCluster;
use common::*;
use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;

const RECORDS: usize = 2000;
const ROUNDS: usize = 3;

/// The broker coordinating `transactional_id`, as a live broker answers FindCoordinator.
fn coordinator(cluster: &TestCluster, transactional_id: &str) -> Option<i32> {
    for id in cluster.live() {
        let addr = cluster.addr(id);
        if std::net::TcpStream::connect(&addr).is_err() {
            continue;
        }
        let mut raw = RawClient::connect(&addr);
        let mut request = FindCoordinatorRequest::default();
        request.key = StrBytes::from_string(transactional_id.to_string());
        request.key_type = 1;
        let answer = raw.send(3, &request);
        if answer.error_code == 0 {
            return Some(answer.node_id.0);
        }
    }
    None
}

#[test]
fn exactly_once_through_transaction_coordinator_kills() {
    let mut cluster = TestCluster::start(
        3,
        &[
            "default.replication.factor=3",
            "min.insync.replicas=2",
            "offsets.topic.replication.factor=3",
            "offsets.topic.num.partitions=5",
            "transaction.state.log.replication.factor=3",
            "transaction.state.log.min.isr=2",
            "transaction.state.log.num.partitions=5",
            "transaction.abort.timed.out.transaction.cleanup.interval.ms=500",
        ],
    );
    let bootstrap = cluster.bootstrap();
    cluster.keep_files_if_panics(|| {
        create_topic_rf(&bootstrap, eos::INPUT, 2, 3);
        create_topic_rf(&bootstrap, eos::OUTPUT, 2, 3);
    });
    eos::feed(&bootstrap, RECORDS);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let mut worker = eos::spawn_worker(&bootstrap, RECORDS, 20, 100, &log);
    for round in 0..ROUNDS {
        assert!(
            eos::wait_for_commit(&log, &mut worker, Duration::from_secs(60)),
            "round {round}: the worker commits before the kill"
        );
        let victim = coordinator(&cluster, "eos-worker").expect("a transaction coordinator");
        cluster.kill(victim);
        println!("round {round}: killed broker {victim}, the transaction coordinator");
        assert!(
            eos::wait_for_commit(&log, &mut worker, Duration::from_secs(60)),
            "round {round}: the worker commits through another coordinator"
        );
        let next = coordinator(&cluster, "eos-worker");
        assert!(
            next.is_some_and(|n| n != victim),
            "round {round}: another broker coordinates (now {next:?})"
        );
        cluster.restart(victim);
        cluster.wait_for("the killed broker registered again", |m| {
            m.brokers.len() == 3
        });
    }
    eos::wait_for_worker(&mut worker, &log, Duration::from_secs(240), "cluster");
    eos::check_output(&bootstrap, RECORDS, "cluster");
}

/// Creates `name` with `partitions` partitions and replication factor `rf`.
fn create_topic_rf(bootstrap: &str, name: &str, partitions: i32, rf: i32) {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    let admin = admin(bootstrap);
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(rf));
    let results = client_runtime()
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("CreateTopics request");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t} failed: {e}"));
    }
}
