//! Dynamic broker configuration and replication throttles on a ZooKeeper cluster:
//! - a per-broker value applies to that broker only, the cluster default to every broker, a
//!   broker that was down when it changed starts with it, and ZooKeeper holds Kafka's znodes
//!   (`/config/brokers/<default>`, a `brokers/<default>` change notification);
//! - a follower catching up a backlog copies at about the throttled rate, with the leader's
//!   throttle and then with the follower's, while an unthrottled topic on the same brokers is
//!   copied in full, and catches up at once when the throttle goes.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{partition_of, TestCluster};
use common::*;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::producer::FutureRecord;

/// Kafka's DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG and DEFAULT_CONFIG codes.
const DYNAMIC_BROKER: i8 = 2;
const DYNAMIC_DEFAULT: i8 = 3;
const DEFAULT: i8 = 5;

fn strom(bootstrap: &str, args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["--brokers", bootstrap])
        .args(args)
        .output()
        .expect("run strom");
    assert!(
        output.status.success(),
        "strom {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Broker `id`'s own answer for `key`: (value, source).
fn broker_value(cluster: &TestCluster, id: i32, key: &str) -> (String, i8) {
    let mut raw = RawClient::connect(&cluster.addr(id));
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = 4;
    resource.resource_name = StrBytes::from_string(id.to_string());
    resource.configuration_keys = Some(vec![StrBytes::from_string(key.to_string())]);
    let mut request = DescribeConfigsRequest::default();
    request.resources.push(resource);
    request.include_synonyms = true;
    let response = raw.send(4, &request);
    assert_eq!(response.results[0].error_code, 0);
    let entry = &response.results[0].configs[0];
    (
        entry
            .value
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default(),
        entry.config_source,
    )
}

fn wait_value(cluster: &TestCluster, id: i32, key: &str, want: (&str, i8)) {
    let mut last = (String::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        last = broker_value(cluster, id, key);
        if (last.0.as_str(), last.1) == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "broker {id}: {key} is {last:?}, want {want:?}\n{}",
        cluster.log(id)
    );
}

#[test]
fn per_broker_and_cluster_default_values_reach_the_right_brokers() {
    let mut cluster = TestCluster::start(3, &[]);
    let bootstrap = cluster.bootstrap();
    strom(
        &bootstrap,
        &["config", "set", "--broker", "2", "min.insync.replicas=2"],
    );
    wait_value(&cluster, 2, "min.insync.replicas", ("2", DYNAMIC_BROKER));
    for id in [1, 3] {
        assert_eq!(
            broker_value(&cluster, id, "min.insync.replicas"),
            ("1".into(), DEFAULT)
        );
    }

    strom(
        &bootstrap,
        &[
            "config",
            "set",
            "--cluster-default",
            "log.retention.ms=777777",
        ],
    );
    for id in 1..=3 {
        wait_value(
            &cluster,
            id,
            "log.retention.ms",
            ("777777", DYNAMIC_DEFAULT),
        );
    }

    // A broker down while the default changes starts with it.
    cluster.kill(3);
    strom(
        &cluster.addr(1),
        &[
            "config",
            "set",
            "--cluster-default",
            "message.max.bytes=4321",
        ],
    );
    wait_value(&cluster, 1, "message.max.bytes", ("4321", DYNAMIC_DEFAULT));
    cluster.restart(3);
    cluster.wait_for("broker 3 back", |m| m.brokers.len() == 3);
    assert_eq!(
        broker_value(&cluster, 3, "message.max.bytes"),
        ("4321".into(), DYNAMIC_DEFAULT)
    );
    // The per-broker value of broker 2 still wins there over a default.
    strom(
        &bootstrap,
        &[
            "config",
            "set",
            "--cluster-default",
            "min.insync.replicas=3",
        ],
    );
    wait_value(&cluster, 1, "min.insync.replicas", ("3", DYNAMIC_DEFAULT));
    assert_eq!(
        broker_value(&cluster, 2, "min.insync.replicas"),
        ("2".into(), DYNAMIC_BROKER)
    );

    // Kafka's znodes.
    let connect = format!("{}/strom", cluster.zookeeper.connect_string());
    let runtime = client_runtime();
    let (default, changes) = runtime.block_on(async {
        let store = strom_meta::zk::ZkStore::connect(&strom_meta::zk::ZkConfig::new(connect))
            .await
            .expect("ZooKeeper");
        (
            store.broker_config("<default>").await.unwrap(),
            store.config_changes().await.unwrap(),
        )
    });
    assert_eq!(
        default.get("message.max.bytes").map(String::as_str),
        Some("4321")
    );
    assert_eq!(
        default.get("log.retention.ms").map(String::as_str),
        Some("777777")
    );
    assert!(
        changes
            .iter()
            .any(|(_, entity)| entity == "brokers/<default>"),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|(_, entity)| entity == "brokers/2"),
        "{changes:?}"
    );
}

const TOPIC: &str = "throttled";
/// The throttled rate, bytes a second.
const RATE: u64 = 500_000;

/// Bytes of records in broker `id`'s copy of `TOPIC`-0.
fn copied(dir: &Path, id: i32) -> u64 {
    copied_of(dir, id, TOPIC)
}

/// Bytes of records in broker `id`'s copy of `topic`-0.
fn copied_of(dir: &Path, id: i32, topic: &str) -> u64 {
    let partition = dir.join(format!("broker-{id}")).join(format!("{topic}-0"));
    std::fs::read_dir(&partition)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

/// Bytes the follower copies over `seconds`, measured after `warmup` seconds.
fn rate_over(dir: &Path, warmup: f64, seconds: f64) -> f64 {
    std::thread::sleep(Duration::from_secs_f64(warmup));
    let start = copied(dir, 2);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    (copied(dir, 2) - start) as f64 / started.elapsed().as_secs_f64()
}

#[test]
fn a_throttled_follower_catches_up_at_the_throttled_rate() {
    // Short quota windows (3 × 1 s) so a burst is at most about two seconds' worth, and small
    // fetches so the rate is fine-grained.
    let mut cluster = TestCluster::start(
        2,
        &[
            "replication.quota.window.num=3",
            "replica.fetch.max.bytes=131072",
            "replica.fetch.backoff.ms=100",
            "replica.lag.time.max.ms=5000",
        ],
    );
    let assignment: &[&[i32]] = &[&[1, 2]];
    // `free` has no throttled replicas: it must flow while `TOPIC` is held back.
    let topics = [
        NewTopic::new(TOPIC, 1, TopicReplication::Variable(assignment)),
        NewTopic::new("free", 1, TopicReplication::Variable(assignment)),
    ];
    cluster.create_topics(&topics);
    cluster.wait_for("led by 1 with a full ISR", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(l, _, isr)| l == 1 && isr.len() == 2)
    });
    cluster.kill(2);
    cluster.wait_for("the ISR without 2", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(_, _, isr)| isr == vec![1])
    });
    // A backlog of about 20 MB on the leader.
    let producer = producer(&cluster.addr(1), &[("acks", "1"), ("linger.ms", "5")]);
    let value = payload(0, 10_000);
    client_runtime().block_on(async {
        let mut sends = Vec::new();
        for i in 0..2_500 {
            let topic = if i % 5 == 4 { "free" } else { TOPIC };
            let queued = producer.send_result(FutureRecord::<(), _>::to(topic).payload(&value));
            sends.push(queued.map_err(|(e, _)| e).expect("queued"));
        }
        for send in sends {
            send.await.expect("delivered").expect("acknowledged");
        }
    });
    let total = copied(cluster.dir.path(), 1);
    assert!(total > 19_000_000, "backlog {total}");

    // Phase 1: the leader's throttle.
    let bootstrap = cluster.addr(1);
    strom(
        &bootstrap,
        &[
            "topic",
            "alter-config",
            TOPIC,
            "--set",
            "leader.replication.throttled.replicas=0:1",
        ],
    );
    strom(
        &bootstrap,
        &[
            "config",
            "set",
            "--broker",
            "1",
            &format!("leader.replication.throttled.rate={RATE}"),
        ],
    );
    cluster.restart(2);
    let leader_rate = rate_over(cluster.dir.path(), 2.0, 4.0);
    let free = copied_of(cluster.dir.path(), 1, "free");
    assert!(free > 4_500_000, "free backlog {free}");
    assert_eq!(
        copied_of(cluster.dir.path(), 2, "free"),
        free,
        "the unthrottled topic was copied in full meanwhile"
    );

    // Phase 2: the follower's throttle only.
    strom(
        &bootstrap,
        &[
            "topic",
            "alter-config",
            TOPIC,
            "--set",
            "follower.replication.throttled.replicas=0:2",
        ],
    );
    strom(
        &bootstrap,
        &[
            "config",
            "set",
            "--broker",
            "2",
            &format!("follower.replication.throttled.rate={RATE}"),
        ],
    );
    strom(
        &bootstrap,
        &[
            "config",
            "delete",
            "--broker",
            "1",
            "leader.replication.throttled.rate",
        ],
    );
    let follower_rate = rate_over(cluster.dir.path(), 2.0, 4.0);
    let before_lift = copied(cluster.dir.path(), 2);
    eprintln!("throttled at {RATE} B/s: leader side {leader_rate:.0} B/s, follower side {follower_rate:.0} B/s, copied {before_lift} of {total}");
    for (side, rate) in [("leader", leader_rate), ("follower", follower_rate)] {
        assert!(
            rate > 0.3 * RATE as f64 && rate < 1.7 * RATE as f64,
            "{side} throttle: {rate:.0} B/s for a {RATE} B/s limit\n{}",
            cluster.log(2)
        );
    }
    assert!(
        total - before_lift > 5_000_000,
        "enough left to show the lift: {before_lift} of {total}"
    );

    // Lifted: the rest comes at once, much faster than the throttle would allow.
    strom(
        &bootstrap,
        &[
            "config",
            "delete",
            "--broker",
            "2",
            "follower.replication.throttled.rate",
        ],
    );
    let lifted = Instant::now();
    let left = (total - before_lift) as f64;
    let bound = Duration::from_secs_f64(left / RATE as f64 / 2.0);
    wait_until("the follower catches up unthrottled", bound, || {
        copied(cluster.dir.path(), 2) >= total
    });
    eprintln!(
        "unthrottled: {left:.0} B in {:.1} s",
        lifted.elapsed().as_secs_f64()
    );
    cluster.wait_for("2 back in the ISR", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(_, _, isr)| isr.len() == 2)
    });
}

/// A new cluster default `unclean.leader.election.enable=true` reaches the controller without a
/// restart: an offline partition whose returned replica is outside the ISR gets it as leader.
#[test]
fn a_dynamic_unclean_default_elects_an_offline_partition() {
    let mut cluster = TestCluster::start(3, &["replica.lag.time.max.ms=3000"]);
    let (_, second) = cluster.offline_with_replica_outside_isr("offline");
    let controller = cluster.controller();
    // Still offline a moment later: nothing elects it without the new default.
    std::thread::sleep(Duration::from_millis(500));
    assert!(partition_of(&cluster.metadata(), "offline", 0).is_some_and(|(l, _, _)| l < 0));
    strom(
        &cluster.addr(controller),
        &[
            "config",
            "set",
            "--cluster-default",
            "unclean.leader.election.enable=true",
        ],
    );
    cluster.wait_for("the returned replica elected uncleanly", |m| {
        partition_of(m, "offline", 0).is_some_and(|(l, _, isr)| l == second && isr == vec![second])
    });
}
