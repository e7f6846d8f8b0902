//! Stretch clusters (issue 10, item 4) on a real ZooKeeper with brokers in racks:
//! - KIP-392: with `replica.selector.class` = Kafka's `RackAwareReplicaSelector`, a
//!   confluent-kafka (librdkafka) consumer with `client.rack` is sent by the leader to the
//!   in-sync follower in its rack and reads every record, in order, from it, while a producer
//!   is still writing; the brokers' metrics and librdkafka's statistics show who served it.
//! - When that follower dies (SIGKILL) mid-read, the consumer goes back to the leader and still
//!   reads every record, including those written after the follower died.
//! - Losing a rack: six brokers in three racks, a rack-aware topic (RF 3,
//!   `min.insync.replicas` 2) under an idempotent `acks=all` producer; both brokers of the
//!   controller's rack are killed with SIGKILL at once. Every partition keeps a leader and
//!   takes acks=all writes, and every acknowledged record is read back intact; restarted, the
//!   rack's brokers rejoin every ISR.
//!
//! Loopback only: network namespaces work on the test machine, but its kernel has no `netem`
//! qdisc to add latency between them, so the racks are labels on brokers sharing the loopback.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{partition_of, TestCluster};
use common::ledger::{self, Ledger};
use common::*;
use kafka_protocol::messages::MetadataResponse;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::producer::FutureRecord;

const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// Broker `id`'s rack with `racks` racks: ids go round the racks (1 → rack-a, 2 → rack-b, …).
fn rack_of(id: i32, racks: i32) -> String {
    format!("rack-{}", ["a", "b", "c"][((id - 1) % racks) as usize])
}

/// The value of `series` (name and labels as rendered) in broker `id`'s `GET /metrics`, 0 when
/// it is absent.
fn metric(cluster: &mut TestCluster, id: i32, series: &str) -> f64 {
    cluster
        .scrape_metrics(id)
        .unwrap_or_else(|e| panic!("broker {id}'s metrics endpoint: {e}"))
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Runs `tests/python/rack_consumer.py` for partition 0 of `topic` in `rack`, expecting
/// `count` records `<prefix>-<offset>`; returns the brokers librdkafka fetched from.
fn rack_consumer(bootstrap: &str, topic: &str, rack: &str, count: usize) -> BTreeSet<i32> {
    let script = common::python::script("rack_consumer.py");
    let out = Command::new("timeout")
        .args(["120", "python3"])
        .arg(&script)
        .args([bootstrap, topic, rack, &count.to_string(), topic])
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("timeout and python3 run (./scripts/test installs confluent-kafka)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("rack consumer matched"),
        "rack_consumer.py in {rack} failed ({}):\n{stdout}\n--- stderr ---\n{}",
        out.status,
        &stderr[stderr.len().saturating_sub(4000)..]
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("fetched from brokers ["))
        .expect("the brokers line");
    line[..line.find(']').unwrap()]
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Produces `<topic>-<i>` for `range` to partition 0 with acks=all, one at a time in order.
fn produce_numbered(bootstrap: &str, topic: &str, range: std::ops::Range<usize>) {
    let producer = producer(bootstrap, &[("acks", "all"), ("linger.ms", "1")]);
    let rt = client_runtime();
    rt.block_on(async {
        let mut deliveries = Vec::new();
        for i in range {
            let value = format!("{topic}-{i}");
            let record = FutureRecord::<(), _>::to(topic)
                .partition(0)
                .payload(&value);
            deliveries.push(
                producer
                    .send_result(record)
                    .unwrap_or_else(|(e, _)| panic!("queueing record {i}: {e}")),
            );
        }
        for (i, delivery) in deliveries.into_iter().enumerate() {
            delivery
                .await
                .expect("delivery")
                .unwrap_or_else(|(e, _)| panic!("record {i} not acknowledged: {e}"));
        }
    });
}

#[test]
fn a_consumer_reads_from_the_in_sync_follower_in_its_rack() {
    const TOPIC: &str = "near";
    const COUNT: usize = 3_000;
    let mut cluster = TestCluster::start_with(3, |id| {
        vec![
            format!("broker.rack={}", rack_of(id, 3)),
            format!("replica.selector.class={RACK_AWARE_SELECTOR}"),
        ]
    });
    let bootstrap = cluster.bootstrap();
    // Broker 1 (rack-a) leads; brokers 2 (rack-b) and 3 (rack-c) follow.
    let replicas: &[&[i32]] = &[&[1, 2, 3]];
    cluster.create_topics(&[NewTopic::new(
        TOPIC,
        1,
        TopicReplication::Variable(replicas),
    )]);
    cluster.wait_for("broker 1 leads with a full ISR", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(l, _, isr)| l == 1 && isr.len() == 3)
    });
    produce_numbered(&bootstrap, TOPIC, 0..COUNT / 2);
    // The consumer in rack-b starts while the second half is still being written.
    let consumer = {
        let bootstrap = bootstrap.clone();
        std::thread::spawn(move || rack_consumer(&bootstrap, TOPIC, "rack-b", COUNT))
    };
    std::thread::sleep(Duration::from_millis(500));
    produce_numbered(&bootstrap, TOPIC, COUNT / 2..COUNT);
    let fetched_from = consumer.join().expect("the rack-b consumer");
    let series = |name: &str| format!("{name}{{topic=\"{TOPIC}\"}}");
    let redirects = metric(
        &mut cluster,
        1,
        &series("strom_fetch_preferred_read_replica_total"),
    );
    let served: Vec<f64> = (1..=3)
        .map(|id| {
            metric(
                &mut cluster,
                id,
                &series("strom_fetch_follower_bytesout_total"),
            )
        })
        .collect();
    eprintln!(
        "rack-b consumer fetched from {fetched_from:?}; leader redirects {redirects}; \
         bytes served to consumers as a follower by brokers 1-3: {served:?}"
    );
    assert!(
        fetched_from.contains(&2),
        "librdkafka fetched from the rack-b follower: {fetched_from:?}"
    );
    assert!(
        redirects >= 1.0,
        "the leader named a preferred read replica"
    );
    assert!(
        served[1] >= (COUNT * (TOPIC.len() + 2)) as f64,
        "broker 2 served at least every record's value as a follower: {served:?}"
    );
    assert_eq!(
        served[0], 0.0,
        "broker 1 leads, it serves nothing as a follower"
    );
    assert_eq!(served[2], 0.0, "nobody in rack-c read: {served:?}");

    // A consumer in rack-a stays on the leader; one in rack-c goes to broker 3.
    let fetched_from = rack_consumer(&bootstrap, TOPIC, "rack-a", COUNT);
    assert_eq!(
        fetched_from,
        BTreeSet::from([1]),
        "rack-a reads from its leader"
    );
    let fetched_from = rack_consumer(&bootstrap, TOPIC, "rack-c", COUNT);
    assert!(
        fetched_from.contains(&3),
        "rack-c reads from broker 3: {fetched_from:?}"
    );
    let served = metric(
        &mut cluster,
        3,
        &series("strom_fetch_follower_bytesout_total"),
    );
    assert!(served > 0.0, "broker 3 served the rack-c consumer");

    // The same answers over the raw protocol.
    let fetch = |id: i32, version: i16, offset: i64, rack: &str| {
        let mut request = fetch_request(TOPIC, offset);
        request.rack_id = rack.to_string().into();
        let response = RawClient::connect(&cluster.addr(id)).send(version, &request);
        let p = response.responses[0].partitions[0].clone();
        let records = p.records.map_or(0, |r| batch_base_offsets(r).len());
        (
            p.error_code,
            p.high_watermark,
            p.preferred_read_replica.0,
            records,
        )
    };
    wait_until(
        "broker 2 learned the final high watermark",
        Duration::from_secs(10),
        || fetch(2, 12, 0, "").1 == COUNT as i64,
    );
    // Before client metadata (v10), only the leader serves consumers.
    assert_eq!(fetch(2, 10, 0, "").0, NOT_LEADER_OR_FOLLOWER);
    let (error, high_watermark, preferred, batches) = fetch(2, 12, 0, "");
    assert_eq!((error, high_watermark, preferred), (0, COUNT as i64, -1));
    assert!(batches > 0, "the follower returns records");
    // Past the follower's log end: OFFSET_OUT_OF_RANGE with its high watermark, which tells
    // librdkafka to go back to the leader.
    let (error, high_watermark, _, _) = fetch(2, 12, COUNT as i64 + 100, "");
    assert_eq!((error, high_watermark), (OFFSET_OUT_OF_RANGE, COUNT as i64));
    // The leader sends rack-b to broker 2 without records, serves rack-a and rackless itself.
    assert_eq!(fetch(1, 12, 0, "rack-b"), (0, COUNT as i64, 2, 0));
    assert_eq!(fetch(1, 12, 0, "rack-a").2, -1);
    assert!(fetch(1, 12, 0, "").3 > 0);
    // A follower never redirects.
    assert_eq!(fetch(2, 12, 0, "rack-c").2, -1);
}

#[test]
fn a_consumer_whose_rack_replica_dies_goes_back_to_the_leader() {
    const TOPIC: &str = "near-loss";
    const COUNT: usize = 3_000;
    let mut cluster = TestCluster::start_with(3, |id| {
        vec![
            format!("broker.rack={}", rack_of(id, 3)),
            format!("replica.selector.class={RACK_AWARE_SELECTOR}"),
            "replica.lag.time.max.ms=3000".to_string(),
        ]
    });
    let bootstrap = cluster.bootstrap();
    let replicas: &[&[i32]] = &[&[1, 2, 3]];
    cluster.create_topics(&[NewTopic::new(
        TOPIC,
        1,
        TopicReplication::Variable(replicas),
    )]);
    cluster.wait_for("broker 1 leads with a full ISR", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(l, _, isr)| l == 1 && isr.len() == 3)
    });
    produce_numbered(&bootstrap, TOPIC, 0..COUNT / 2);
    let consumer = {
        let bootstrap = bootstrap.clone();
        std::thread::spawn(move || rack_consumer(&bootstrap, TOPIC, "rack-b", COUNT))
    };
    let series = format!("strom_fetch_follower_bytesout_total{{topic=\"{TOPIC}\"}}");
    wait_until(
        "broker 2 serving the rack-b consumer",
        Duration::from_secs(30),
        || metric(&mut cluster, 2, &series) > 0.0,
    );
    cluster.kill(2);
    produce_numbered(&cluster.addr(1), TOPIC, COUNT / 2..COUNT);
    let fetched_from = consumer.join().expect("the rack-b consumer");
    eprintln!("the rack-b consumer fetched from {fetched_from:?} and read all {COUNT} records");
    assert!(
        fetched_from.contains(&2),
        "it started on broker 2: {fetched_from:?}"
    );
}

/// NOT_LEADER_OR_FOLLOWER.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// Every partition of `topic` with a leader and an ISR of `isr` brokers among `live`.
fn led_by(m: &MetadataResponse, topic: &str, partitions: i32, isr: usize, live: &[i32]) -> bool {
    (0..partitions).all(|p| {
        partition_of(m, topic, p).is_some_and(|(leader, _, in_sync)| {
            live.contains(&leader)
                && in_sync.len() == isr
                && in_sync.iter().all(|b| live.contains(b))
        })
    })
}

#[test]
fn losing_a_whole_rack_keeps_every_partition_writable_and_loses_nothing() {
    const TOPIC: &str = "stretch";
    const PARTITIONS: i32 = 6;
    let mut cluster = TestCluster::start_with(6, |id| {
        vec![
            format!("broker.rack={}", rack_of(id, 3)),
            "replica.lag.time.max.ms=3000".to_string(),
            "zookeeper.session.timeout.ms=6000".to_string(),
        ]
    });
    let bootstrap = cluster.bootstrap();
    cluster.create_topics(
        &[NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3))
            .set("min.insync.replicas", "2")],
    );
    let all: Vec<i32> = (1..=6).collect();
    cluster.wait_for("every partition led with a full ISR", |m| {
        led_by(m, TOPIC, PARTITIONS, 3, &all)
    });
    let metadata = cluster.metadata();
    for p in 0..PARTITIONS {
        let (_, replicas, _) = partition_of(&metadata, TOPIC, p).unwrap();
        let racks: BTreeSet<String> = replicas.iter().map(|&b| rack_of(b, 3)).collect();
        assert_eq!(
            racks.len(),
            3,
            "partition {p} spans the 3 racks: {replicas:?}"
        );
    }

    let ledger = Ledger::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (bootstrap, stop, ledger) = (bootstrap.clone(), stop.clone(), ledger.clone());
        std::thread::spawn(move || ledger.produce_at(&bootstrap, TOPIC, stop, 0, &[], Some(2_000)))
    };
    wait_until(
        "acknowledgements before the rack goes",
        Duration::from_secs(30),
        || ledger.len() > 2_000,
    );
    // The controller's rack goes: both its brokers at once.
    let controller = cluster.controller();
    let lost_rack = rack_of(controller, 3);
    let victims: Vec<i32> = all
        .iter()
        .copied()
        .filter(|&b| rack_of(b, 3) == lost_rack)
        .collect();
    let leaders_lost: Vec<i32> = (0..PARTITIONS)
        .filter(|&p| victims.contains(&partition_of(&metadata, TOPIC, p).unwrap().0))
        .collect();
    let before = ledger.len();
    let killed = Instant::now();
    for &victim in &victims {
        cluster.kill(victim);
    }
    wait_until(
        "a record sent after the rack loss acknowledged",
        Duration::from_secs(60),
        || ledger.first_ack_of_send_after(killed).is_some(),
    );
    let first_ack = ledger.first_ack_of_send_after(killed).unwrap() - killed;
    let survivors: Vec<i32> = all
        .iter()
        .copied()
        .filter(|b| !victims.contains(b))
        .collect();
    cluster.wait_for("every partition led by a survivor, ISR of 2", |m| {
        m.controller_id.0 > 0
            && survivors.contains(&m.controller_id.0)
            && led_by(m, TOPIC, PARTITIONS, 2, &survivors)
    });
    let failed_over = killed.elapsed();

    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    // Every partition takes an acks=all write with two racks left. The probes are shaped like
    // the ledger's records (key = id, value = its payload), with ids past the producer's, so
    // the verification below reads them as records it was not told about.
    let probe = producer(
        &bootstrap,
        &[("acks", "all"), ("message.timeout.ms", "20000")],
    );
    let rt = client_runtime();
    let mut writable = BTreeMap::new();
    for p in 0..PARTITIONS {
        let id = 1_000_000_000 + p as u64;
        let (key, value) = (id.to_be_bytes(), payload(id, ledger::payload_len(id)));
        let result = rt.block_on(
            probe.send(
                FutureRecord::to(TOPIC)
                    .partition(p)
                    .key(&key)
                    .payload(&value),
                Duration::from_secs(20),
            ),
        );
        writable.insert(p, result.map(|d| d.offset).map_err(|(e, _)| e.to_string()));
    }
    eprintln!(
        "lost rack {lost_rack} (brokers {victims:?}, the controller {controller}, leaders of \
         partitions {leaders_lost:?}); {before} acknowledged before; first acknowledgement of a \
         later send after {first_ack:?}; every partition led by a survivor after \
         {failed_over:?}; {} acknowledged in all; probes {writable:?}",
        ledger.len()
    );
    for (p, result) in &writable {
        assert!(
            result.is_ok(),
            "partition {p} takes acks=all writes: {result:?}"
        );
    }
    assert!(
        ledger.len() > before,
        "the producer carried on after the rack loss"
    );
    // The probes are not in the ledger: verify reads them as unacknowledged records.
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    // Read through the survivors only: librdkafka reports its failed connections to the dead
    // bootstrap addresses as consumer errors, which the reader treats as fatal.
    let survivors_bootstrap = survivors
        .iter()
        .map(|&b| cluster.addr(b))
        .collect::<Vec<_>>()
        .join(",");
    let verified =
        cluster.keep_files_if_panics(|| ledger.verify(&survivors_bootstrap, TOPIC, &partitions));
    assert_eq!(verified.acknowledged, ledger.len());
    eprintln!(
        "{} acknowledged records verified (offset, bytes, crc32c, order) among {} in the log",
        verified.acknowledged, verified.in_log
    );

    // The rack comes back: its brokers truncate, catch up and rejoin every ISR.
    let back = Instant::now();
    for &victim in &victims {
        cluster.restart(victim);
    }
    cluster.wait_for("every partition with a full ISR again", |m| {
        led_by(m, TOPIC, PARTITIONS, 3, &all)
    });
    eprintln!(
        "the rack's brokers were back in every ISR after {:?}",
        back.elapsed()
    );
}
