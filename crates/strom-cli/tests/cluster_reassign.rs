//! Partition reassignment on a 4-broker cluster with a real ZooKeeper (issue 10, item 1):
//! `strom partition reassign --plan --execute --wait` under a running acks=all producer moves a
//! partition off its leader with nothing acknowledged lost and the final replicas and ISR equal
//! to the target, and the removed replica's data deleted; the ZooKeeper-era
//! `/admin/reassign_partitions` znode moves a partition and is deleted when done; a move held
//! back by a stopped target survives a SIGKILL of the controller and completes under the next
//! one; `--cancel` reverts a move in progress; `--move-broker` drains a broker; `--throttle`
//! sets Kafka's replication throttles, the copy keeps to them, CreatePartitions waits for the
//! move to end, and `--verify` lifts them.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::{leader_epoch_of, partition_of, write_plan, TestCluster};
use common::ledger::Ledger;
use common::*;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use strom_meta::replication::TopicPartition;
use strom_meta::zk::{ZkConfig, ZkStore};

/// Runs the CLI against `bootstrap`; a request may take 60 s unless `args` set `--timeout-ms`.
fn strom(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    run_strom(bootstrap, 60_000, args)
}

fn create(cluster: &TestCluster, topic: &str, assignment: &[&[i32]]) {
    let new_topic = NewTopic::new(
        topic,
        assignment.len() as i32,
        TopicReplication::Variable(assignment),
    )
    .set("min.insync.replicas", "2");
    cluster.create_topics(&[new_topic]);
    let wanted: Vec<usize> = assignment.iter().map(|r| r.len()).collect();
    cluster.wait_for("the topic led with full ISRs", |m| {
        wanted.iter().enumerate().all(|(p, &n)| {
            partition_of(m, topic, p as i32).is_some_and(|(l, _, isr)| l > 0 && isr.len() == n)
        })
    });
}

/// Waits until `topic`-`partition` has exactly `replicas`, all in the ISR.
fn wait_moved(cluster: &TestCluster, topic: &str, partition: i32, replicas: &[i32]) {
    cluster.wait_for(
        &format!("{topic}-{partition} on {replicas:?}, all in sync"),
        |m| {
            partition_of(m, topic, partition).is_some_and(|(l, r, mut isr)| {
                isr.sort();
                let mut want = replicas.to_vec();
                want.sort();
                l > 0 && r == replicas && isr == want
            })
        },
    );
}

/// The bootstrap list without broker `stopped` (a stopped process would hold every client
/// that tries it first until its timeout).
fn bootstrap_without(cluster: &TestCluster, stopped: i32) -> String {
    let addrs: Vec<String> = cluster
        .live()
        .into_iter()
        .filter(|&id| id != stopped)
        .map(|id| cluster.addr(id))
        .collect();
    addrs.join(",")
}

fn signal(cluster: &mut TestCluster, id: i32, signal: &str) {
    let pid = cluster.process(id).expect("running").child.id();
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

#[test]
fn reassignment_under_acks_all_load_reaches_the_target_and_loses_nothing() {
    const TOPIC: &str = "moving";
    let cluster = TestCluster::start(4, &["replica.lag.time.max.ms=3000"]);
    create(&cluster, TOPIC, &[&[1, 2, 3]]);
    let bootstrap = cluster.bootstrap();
    let ledger = Ledger::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (bootstrap, stop, ledger) = (bootstrap.clone(), stop.clone(), ledger.clone());
        std::thread::spawn(move || ledger.produce_at(&bootstrap, TOPIC, stop, 0, &[], Some(2_000)))
    };
    wait_until("records acknowledged", Duration::from_secs(30), || {
        ledger.len() > 500
    });
    let (leader, _, _) = cluster.partition(TOPIC, 0);
    assert_eq!(leader, 1, "a new partition is led by its first replica");
    let dir = tempfile::tempdir().unwrap();
    // Broker 1, the leader, leaves; broker 4 joins.
    let plan = write_plan(dir.path(), "plan.json", &[(TOPIC, 0, &[4, 3, 2])]);
    let started = std::time::Instant::now();
    let (ok, out, err) = strom(
        &bootstrap,
        &[
            "partition",
            "reassign",
            "--plan",
            &plan,
            "--execute",
            "--wait",
        ],
    );
    assert!(ok, "reassign failed: {out}\n{err}");
    eprintln!("moved in {:?} under load:\n{out}", started.elapsed());
    assert!(
        out.contains("\"replicas\":[1,2,3]"),
        "the current assignment is printed: {out}"
    );
    assert!(out.contains("complete"), "{out}");
    let acked_during = ledger.len();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    wait_moved(&cluster, TOPIC, 0, &[4, 3, 2]);
    let (leader, _, _) = cluster.partition(TOPIC, 0);
    assert_ne!(leader, 1, "leadership left the removed broker");
    // The removed replica's data is deleted.
    let removed = cluster
        .dir
        .path()
        .join("broker-1")
        .join(format!("{TOPIC}-0"));
    wait_until("broker 1 deleted its copy", Duration::from_secs(20), || {
        !removed.exists()
    });
    let (ok, out, _) = strom(
        &bootstrap,
        &["partition", "reassign", "--plan", &plan, "--verify"],
    );
    assert!(ok && out.contains("complete"), "{out}");
    let verified = cluster.keep_files_if_panics(|| ledger.verify(&bootstrap, TOPIC, &[0]));
    assert_eq!(verified.acknowledged, ledger.len());
    assert!(
        ledger.len() > acked_during,
        "the producer carried on after the move"
    );
    eprintln!(
        "{} acknowledged records verified after the move",
        verified.acknowledged
    );
}

#[test]
fn znode_controller_kill_cancel_and_drain() {
    const TOPIC: &str = "ops";
    let mut cluster = TestCluster::start(4, &["replica.lag.time.max.ms=3000"]);
    create(&cluster, TOPIC, &[&[1, 2], &[2, 3]]);
    let bootstrap = cluster.bootstrap();
    let runtime = client_runtime();
    let store = runtime
        .block_on(ZkStore::connect(&ZkConfig::new(format!(
            "{}/strom",
            cluster.zookeeper.connect_string()
        ))))
        .expect("connect to ZooKeeper");
    let dir = tempfile::tempdir().unwrap();

    // 1. The ZooKeeper-era znode.
    let entry = (TopicPartition::new(TOPIC, 0), vec![3, 4]);
    assert!(runtime
        .block_on(store.request_reassignment(&[entry]))
        .unwrap());
    wait_moved(&cluster, TOPIC, 0, &[3, 4]);
    wait_until("the znode deleted", Duration::from_secs(20), || {
        runtime
            .block_on(store.reassignment_request())
            .unwrap()
            .is_none()
    });

    // 2. A move held back by a stopped target, the controller killed meanwhile.
    let controller = cluster.controller();
    let target = [1, 4].into_iter().find(|&b| b != controller).unwrap();
    signal(&mut cluster, target, "-STOP");
    let others = bootstrap_without(&cluster, target);
    let plan = write_plan(dir.path(), "one.json", &[(TOPIC, 1, &[target, 3])]);
    let (ok, out, err) = strom(
        &others,
        &["partition", "reassign", "--plan", &plan, "--execute"],
    );
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = strom(
        &others,
        &[
            "--json",
            "--timeout-ms",
            "2000",
            "partition",
            "reassign",
            "--plan",
            &plan,
            "--verify",
        ],
    );
    assert!(
        !ok && out.contains("in progress"),
        "the move waits for the stopped broker: {out}\n{err}"
    );
    let (ok, out, err) = strom(
        &others,
        &[
            "--json",
            "--timeout-ms",
            "2000",
            "partition",
            "list",
            "--reassigning",
        ],
    );
    assert!(ok, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(listed["reassignments_known"], true, "{listed}");
    let moving: Vec<serde_json::Value> = listed["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            serde_json::json!({"topic": p["topic"], "partition": p["partition"],
                "replicas": p["replicas"], "adding": p["adding_replicas"],
                "removing": p["removing_replicas"]})
        })
        .collect();
    assert_eq!(
        moving,
        [
            serde_json::json!({"topic": TOPIC, "partition": 1, "replicas": [target, 3, 2],
            "adding": [target], "removing": [2]})
        ],
        "the move in progress is listed"
    );
    cluster.kill(controller);
    signal(&mut cluster, target, "-CONT");
    cluster.wait_for("a new controller", |m| {
        m.controller_id.0 > 0 && m.controller_id.0 != controller
    });
    wait_moved(&cluster, TOPIC, 1, &[target, 3]);
    cluster.restart(controller);
    cluster.wait_for("the restarted broker registered and informed", |m| {
        m.brokers.len() == 4 && m.controller_id.0 > 0 && partition_of(m, TOPIC, 1).is_some()
    });

    // 3. Cancel a move in progress: the replicas go back.
    let (_, before, _) = cluster.partition(TOPIC, 1);
    let epoch_before = leader_epoch_of(&cluster.metadata(), TOPIC, 1).expect("partition 1");
    let controller = cluster.controller();
    let spare = (1..=4)
        .find(|b| !before.contains(b) && *b != controller)
        .unwrap();
    signal(&mut cluster, spare, "-STOP");
    let others = bootstrap_without(&cluster, spare);
    let plan = write_plan(dir.path(), "two.json", &[(TOPIC, 1, &[spare, before[1]])]);
    let (ok, out, err) = strom(
        &others,
        &["partition", "reassign", "--plan", &plan, "--execute"],
    );
    assert!(ok, "{out}\n{err}");
    let (ok, out, err) = strom(
        &others,
        &["partition", "reassign", "--plan", &plan, "--cancel"],
    );
    signal(&mut cluster, spare, "-CONT");
    assert!(ok && out.contains("cancelled"), "{out}\n{err}");
    // Back on the original replicas (in Kafka's order: every replica but those being added,
    // as the moving assignment listed them), all in sync. The spare, just resumed, may still
    // answer from before the move until it reads the controller's queued requests: only a
    // leader epoch past the one before the move shows the cancellation itself.
    let mut original = before.clone();
    original.sort();
    cluster.wait_for("the cancelled move back on its replicas", |m| {
        let epoch = leader_epoch_of(m, TOPIC, 1).unwrap_or(-1);
        partition_of(m, TOPIC, 1).is_some_and(|(l, mut r, mut isr)| {
            r.sort();
            isr.sort();
            l > 0 && r == original && isr == original && epoch > epoch_before
        })
    });

    // 4. Drain broker 3.
    let (ok, out, err) = strom(
        &bootstrap,
        &["partition", "reassign", "--move-broker", "3", "--wait"],
    );
    assert!(ok, "{out}\n{err}");
    eprintln!("drained broker 3:\n{out}\n{err}");
    cluster.keep_files_if_panics(|| {
        cluster.wait_for("no replica left on broker 3", |m| {
            (0..2).all(|p| {
                partition_of(m, TOPIC, p).is_some_and(|(l, r, isr)| {
                    l > 0 && !r.contains(&3) && r.len() == 2 && isr.len() == 2
                })
            })
        })
    });
}

/// An AlterPartitionReassignments request moving `topic`-0 to `target` (`None` cancels).
fn alter_request(
    topic: &str,
    target: Option<&[i32]>,
    allow_rf_change: bool,
) -> kafka_protocol::messages::AlterPartitionReassignmentsRequest {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, BrokerId, TopicName};
    let mut partition = ReassignablePartition::default();
    partition.replicas = target.map(|t| t.iter().map(|&b| BrokerId(b)).collect());
    let mut entry = ReassignableTopic::default();
    entry.name = TopicName(kafka_protocol::protocol::StrBytes::from_string(
        topic.into(),
    ));
    entry.partitions = vec![partition];
    let mut request = AlterPartitionReassignmentsRequest::default();
    request.topics = vec![entry];
    request.allow_replication_factor_change = allow_rf_change;
    request
}

fn partition_code(response: &kafka_protocol::messages::AlterPartitionReassignmentsResponse) -> i16 {
    response.responses[0].partitions[0].error_code
}

#[test]
fn single_node_and_non_controller_answers() {
    // A single node: nothing can move; only itself is a valid target.
    let broker = TestBroker::start(&[]);
    create_topic(&broker.bootstrap(), "solo", 1, &[]);
    let mut raw = RawClient::connect(&broker.bootstrap());
    let me = raw
        .send(12, &kafka_protocol::messages::MetadataRequest::default())
        .brokers[0]
        .node_id
        .0;
    for (target, allow, code) in [
        (Some(&[me][..]), true, 0),
        (Some(&[me + 1][..]), true, 39),
        (None, true, 85),
        (Some(&[me, me + 1][..]), false, 38),
    ] {
        let response = raw.send(1, &alter_request("solo", target, allow));
        assert_eq!(response.error_code, 0);
        assert_eq!(partition_code(&response), code, "{target:?} allow={allow}");
    }
    let response = raw.send(1, &alter_request("nope", Some(&[me]), true));
    assert_eq!(partition_code(&response), 3, "unknown partition");
    let listed = raw.send(
        0,
        &kafka_protocol::messages::ListPartitionReassignmentsRequest::default(),
    );
    assert_eq!((listed.error_code, listed.topics.len()), (0, 0));

    // A cluster: a broker that is not the controller answers NOT_CONTROLLER (41).
    let cluster = TestCluster::start(3, &[]);
    create(&cluster, "c", &[&[1, 2, 3]]);
    let controller = cluster.controller();
    let other = (1..=3).find(|&b| b != controller).unwrap();
    let mut raw = RawClient::connect(&cluster.addr(other));
    let response = raw.send(1, &alter_request("c", Some(&[3, 2, 1]), true));
    assert_eq!((response.error_code, partition_code(&response)), (41, 41));
    let listed = raw.send(
        0,
        &kafka_protocol::messages::ListPartitionReassignmentsRequest::default(),
    );
    assert_eq!(listed.error_code, 41);
    let mut raw = RawClient::connect(&cluster.addr(controller));
    let response = raw.send(1, &alter_request("c", Some(&[3, 2, 1]), true));
    assert_eq!((response.error_code, partition_code(&response)), (0, 0));
    let response = raw.send(1, &alter_request("c", Some(&[3, 2, 9]), true));
    assert_eq!(partition_code(&response), 39, "broker 9 is not registered");
    wait_moved(&cluster, "c", 0, &[3, 2, 1]);
}

/// The dynamic configuration `key` of a broker (`Broker(id)`) or topic: its value and source
/// as DescribeConfigs reports them (`None` if the key is not listed or has no value).
fn described(
    bootstrap: &str,
    resource: rdkafka::admin::ResourceSpecifier<'_>,
    key: &str,
) -> Option<(String, rdkafka::admin::ConfigSource)> {
    let admin = admin(bootstrap);
    let results = client_runtime()
        .block_on(admin.describe_configs([&resource], &AdminOptions::new()))
        .expect("DescribeConfigs");
    let resource = results
        .into_iter()
        .next()
        .expect("one resource")
        .expect("described");
    resource
        .entries
        .into_iter()
        .find(|e| e.name == key)
        .and_then(|e| Some((e.value?, e.source)))
}

/// Bytes of records in broker `id`'s copy of `topic`-0 (its segment files).
fn copied(cluster: &TestCluster, id: i32, topic: &str) -> u64 {
    let partition = cluster
        .dir
        .path()
        .join(format!("broker-{id}"))
        .join(format!("{topic}-0"));
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

/// Samples (seconds since `started`, bytes) of broker `id`'s copy of `topic`-0 every 50 ms
/// until it holds `total` bytes; panics after `limit`. `during` runs once, at the first
/// sample that shows the copy under way.
fn watch_copy(
    cluster: &TestCluster,
    id: i32,
    topic: &str,
    total: u64,
    started: std::time::Instant,
    limit: Duration,
    mut during: impl FnMut(),
) -> Vec<(f64, u64)> {
    let mut samples = Vec::new();
    let mut ran = false;
    loop {
        let bytes = copied(cluster, id, topic);
        samples.push((started.elapsed().as_secs_f64(), bytes));
        if bytes >= total {
            return samples;
        }
        if bytes > 0 && !ran {
            during();
            ran = true;
        }
        assert!(
            started.elapsed() < limit,
            "broker {id} copied {bytes} of {total} bytes in {limit:?}: {samples:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CreatePartitions of `topic` to `count` partitions: the error code and message.
fn create_partitions(addr: &str, topic: &str, count: i32) -> (i16, Option<String>) {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::{CreatePartitionsRequest, TopicName};
    let mut entry = CreatePartitionsTopic::default();
    entry.name = TopicName(topic.to_string().into());
    entry.count = count;
    entry.assignments = None;
    let mut request = CreatePartitionsRequest::default();
    request.topics = vec![entry];
    request.timeout_ms = 8_000;
    let answer = RawClient::connect(addr).send(1, &request);
    let result = &answer.results[0];
    (
        result.error_code,
        result.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// `--throttle RATE` holds: the move's replication throttles are set as Kafka's tool sets them
/// (the rates on every broker involved, the replica lists on the topic) before the move starts;
/// the added replica's copy of a 7 MB backlog never runs ahead of the throttle (at every 50 ms
/// sample, at most 1.15 × RATE × t plus one fetch's `replica.fetch.max.bytes`) and still comes
/// near it; CreatePartitions of the topic meanwhile is refused REASSIGNMENT_IN_PROGRESS (60);
/// `--verify` removes every throttle once the move is done; and the same copy without a
/// throttle (moving back) is several times faster.
#[test]
fn a_throttled_reassignment_holds_the_rate_and_verify_lifts_it() {
    use rdkafka::admin::{ConfigSource, ResourceSpecifier};
    use rdkafka::producer::FutureRecord;
    const TOPIC: &str = "throttled";
    const RATE: u64 = 1_000_000;
    const FETCH_MAX: u64 = 1 << 20;
    const RECORDS: usize = 700;
    let cluster = TestCluster::start(
        3,
        &[
            "replica.fetch.max.bytes=1048576",
            "replica.fetch.backoff.ms=200",
        ],
    );
    create(&cluster, TOPIC, &[&[1, 2]]);
    let bootstrap = cluster.bootstrap();
    let producer = producer(&bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    client_runtime().block_on(async {
        let mut sends = Vec::new();
        for i in 0..RECORDS as u64 {
            let value = payload(i, 10_000);
            let queued = producer.send_result(FutureRecord::<(), [u8]>::to(TOPIC).payload(&value));
            sends.push(queued.map_err(|(e, _)| e).expect("queued"));
        }
        for send in sends {
            send.await.expect("delivered").expect("acknowledged");
        }
    });
    let total = copied(&cluster, 1, TOPIC);
    assert!(total > 7_000_000, "backlog {total}");
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "plan.json", &[(TOPIC, 0, &[1, 3])]);
    let started = std::time::Instant::now();
    let (ok, out, err) = strom(
        &bootstrap,
        &[
            "partition",
            "reassign",
            "--plan",
            &plan,
            "--execute",
            "--throttle",
            &RATE.to_string(),
        ],
    );
    assert!(ok, "reassign failed: {out}\n{err}");
    let mut refused = None;
    let samples = watch_copy(
        &cluster,
        3,
        TOPIC,
        total,
        started,
        Duration::from_secs(25),
        || refused = Some(create_partitions(&cluster.addr(2), TOPIC, 2)),
    );
    let throttled_s = samples.last().unwrap().0;
    eprintln!(
        "{total} bytes copied at a {RATE} B/s throttle in {throttled_s:.2} s: {:.0} B/s",
        total as f64 / throttled_s
    );
    let closest = samples
        .iter()
        .map(|&(t, bytes)| (bytes as f64 - FETCH_MAX as f64) / (RATE as f64 * t))
        .fold(f64::MIN, f64::max);
    eprintln!("closest sample: (bytes - one fetch) / (rate × t) = {closest:.3}");
    for &(t, bytes) in &samples {
        let allowed = 1.15 * RATE as f64 * t + FETCH_MAX as f64;
        assert!(
            bytes as f64 <= allowed,
            "{bytes} B copied {t:.2} s after the move began, over {allowed:.0}: {samples:?}"
        );
    }
    assert!(
        total as f64 / throttled_s > 0.6 * RATE as f64,
        "the throttle held the copy far below its rate: {samples:?}"
    );
    let (code, message) = refused.expect("the copy was seen under way");
    assert_eq!(code, 60, "CreatePartitions during the move: {message:?}");
    assert_eq!(
        message.as_deref(),
        Some("A partition reassignment is in progress for the topic 'throttled'.")
    );

    let rate = RATE.to_string();
    for id in 1..=3 {
        for key in [
            "leader.replication.throttled.rate",
            "follower.replication.throttled.rate",
        ] {
            assert_eq!(
                described(&bootstrap, ResourceSpecifier::Broker(id), key),
                Some((rate.clone(), ConfigSource::DynamicBroker)),
                "broker {id} {key}"
            );
        }
    }
    let topic_key = |key| described(&bootstrap, ResourceSpecifier::Topic(TOPIC), key);
    let leaders = topic_key("leader.replication.throttled.replicas")
        .expect("set")
        .0;
    let mut leaders: Vec<&str> = leaders.split(',').collect();
    leaders.sort();
    assert_eq!(
        leaders,
        ["0:1", "0:2"],
        "the current replicas serve the copy"
    );
    assert_eq!(
        topic_key("follower.replication.throttled.replicas").map(|v| v.0),
        Some("0:3".to_string()),
        "the added replica fetches throttled"
    );
    wait_moved(&cluster, TOPIC, 0, &[1, 3]);
    let (ok, out, _) = strom(
        &bootstrap,
        &["partition", "reassign", "--plan", &plan, "--verify"],
    );
    assert!(ok && out.contains("complete"), "{out}");
    for id in 1..=3 {
        let left = described(
            &bootstrap,
            ResourceSpecifier::Broker(id),
            "leader.replication.throttled.rate",
        );
        assert!(
            left.as_ref()
                .is_none_or(|(_, s)| *s != ConfigSource::DynamicBroker),
            "broker {id} still throttled: {left:?}"
        );
    }
    for key in [
        "leader.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
    ] {
        let left = topic_key(key);
        assert!(
            left.as_ref()
                .is_none_or(|(v, s)| v.is_empty() && *s != ConfigSource::DynamicTopic),
            "{key} still set: {left:?}"
        );
    }

    // The same copy unthrottled: back onto broker 2 (whose replica the move deleted).
    let back = write_plan(dir.path(), "back.json", &[(TOPIC, 0, &[1, 2])]);
    wait_until(
        "broker 2's old copy deleted",
        Duration::from_secs(10),
        || copied(&cluster, 2, TOPIC) == 0,
    );
    let started = std::time::Instant::now();
    let (ok, out, err) = strom(
        &bootstrap,
        &["partition", "reassign", "--plan", &back, "--execute"],
    );
    assert!(ok, "reassign back failed: {out}\n{err}");
    let samples = watch_copy(
        &cluster,
        2,
        TOPIC,
        total,
        started,
        Duration::from_secs(20),
        || {},
    );
    let free_s = samples.last().unwrap().0;
    eprintln!("the same copy unthrottled: {free_s:.2} s");
    assert!(
        free_s * 3.0 < throttled_s,
        "unthrottled {free_s:.2} s is not clearly faster than throttled {throttled_s:.2} s"
    );
    wait_moved(&cluster, TOPIC, 0, &[1, 2]);
    let (code, message) = create_partitions(&cluster.addr(2), TOPIC, 2);
    assert_eq!(
        (code, message),
        (0, None),
        "CreatePartitions once no move is left"
    );
}
