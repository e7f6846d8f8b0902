//! Controlled shutdown and leadership balance on a 3-broker cluster with a real ZooKeeper
//! (issue 10, items 2 and 3).
//!
//! The rolling restart: an idempotent acks=all librdkafka producer and a librdkafka consumer
//! run while each broker in turn is SIGTERMed (its controlled shutdown moves its leadership
//! first), waited for, restarted and waited for until every ISR is full again. Every delivery
//! report must be a success, the consumer must see no error, and every acknowledged record is
//! consumed once, at its offset, with its bytes, in order per partition. The longest produce
//! stall of each restart is printed (`STALL` lines; BENCHMARKS.md).
//!
//! Leadership balance: after a broker restart the controller's balance check (interval
//! shortened to 2 s) gives the preferred replicas their leadership back; with the check off,
//! a ZooKeeper-era `/admin/preferred_replica_election` znode does, and is deleted.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{partition_of, TestCluster};
use common::*;
use kafka_protocol::messages::MetadataResponse;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use strom_meta::replication::TopicPartition;
use strom_meta::zk::{ZkConfig, ZkStore};

const PARTITIONS: i32 = 6;

/// Errors librdkafka reports to the application outside delivery reports and poll results
/// (its error callback), with when they came.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<(Instant, RDKafkaErrorCode, String)>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
        self.0
            .lock()
            .unwrap()
            .push((Instant::now(), code, reason.to_string()));
    }
}

impl ConsumerContext for Errors {}

fn create(cluster: &TestCluster, topic: &str) {
    let admin = admin(&cluster.bootstrap());
    let new_topic = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(3))
        .set("min.insync.replicas", "2");
    for result in client_runtime()
        .block_on(admin.create_topics(&[new_topic], &AdminOptions::new()))
        .expect("CreateTopics")
    {
        result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    cluster.wait_for("every partition led with a full ISR", |m| full(m, topic));
}

/// Every partition of `topic` led, with all three replicas in the ISR.
fn full(m: &MetadataResponse, topic: &str) -> bool {
    (0..PARTITIONS).all(|p| {
        partition_of(m, topic, p).is_some_and(|(leader, _, isr)| leader > 0 && isr.len() == 3)
    })
}

/// Every partition of `topic` led by its preferred (first) replica.
fn preferred(m: &MetadataResponse, topic: &str) -> bool {
    (0..PARTITIONS).all(|p| {
        partition_of(m, topic, p)
            .is_some_and(|(leader, replicas, _)| replicas.first() == Some(&leader))
    })
}

/// What the producer saw: acknowledged (partition, offset) → (id, checksum), failed sends,
/// and each acknowledgement's arrival time.
#[derive(Default)]
struct Produced {
    acked: BTreeMap<(i32, i64), (u64, u32)>,
    failed: Vec<String>,
    ack_times: Vec<Instant>,
}

fn produce(
    bootstrap: &str,
    topic: &str,
    stop: Arc<AtomicBool>,
    errors: Errors,
    rate: u32,
) -> Produced {
    let config = client_config(
        bootstrap,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("message.timeout.ms", "120000"),
        ],
    );
    let producer: rdkafka::producer::FutureProducer<Errors> =
        config.create_with_context(errors).expect("producer");
    let produced = Arc::new(Mutex::new(Produced::default()));
    let started = Instant::now();
    client_runtime().block_on(async {
        let mut pending = Vec::new();
        let mut id = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let due = started + Duration::from_secs_f64(id as f64 / f64::from(rate));
            if due > Instant::now() {
                tokio::time::sleep(due - Instant::now()).await;
                continue;
            }
            let value = payload(id, 200);
            let sum = crc32c::crc32c(&value);
            let key = id.to_be_bytes();
            let record = FutureRecord::to(topic)
                .key(&key)
                .payload(&value)
                .partition((id % PARTITIONS as u64) as i32);
            match producer.send_result(record) {
                Ok(delivery) => {
                    let produced = produced.clone();
                    let this = id;
                    pending.push(tokio::spawn(async move {
                        let delivered = delivery.await;
                        let mut produced = produced.lock().unwrap();
                        match delivered {
                            Ok(Ok(d)) => {
                                produced.acked.insert((d.partition, d.offset), (this, sum));
                                produced.ack_times.push(Instant::now());
                            }
                            Ok(Err((e, _))) => produced.failed.push(format!("{this}: {e}")),
                            Err(e) => produced.failed.push(format!("{this}: canceled {e}")),
                        }
                    }));
                    id += 1;
                }
                Err((e, _)) => panic!("the producer's queue refused record {id}: {e}"),
            }
        }
        for p in pending {
            p.await.unwrap();
        }
    });
    Arc::try_unwrap(produced)
        .ok()
        .expect("every delivery awaited")
        .into_inner()
        .unwrap()
}

/// What the consumer saw: records per partition in consumption order (offset, id, checksum)
/// and errors returned by poll.
#[derive(Default)]
struct Consumed {
    records: BTreeMap<i32, Vec<(i64, u64, u32)>>,
    errors: Vec<(Instant, String)>,
}

fn consume_all(
    bootstrap: &str,
    topic: &str,
    stop: Arc<AtomicBool>,
    errors: Errors,
    count: Arc<AtomicUsize>,
) -> Consumed {
    let consumer: BaseConsumer<Errors> = client_config(
        bootstrap,
        &[
            ("group.id", "rolling-check"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "500"),
        ],
    )
    .create_with_context(errors)
    .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut consumed = Consumed::default();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                let value = m.payload().unwrap_or_default();
                let id =
                    u64::from_be_bytes(m.key().unwrap_or_default().try_into().unwrap_or([0xff; 8]));
                consumed.records.entry(m.partition()).or_default().push((
                    m.offset(),
                    id,
                    crc32c::crc32c(value),
                ));
                count.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(e)) => consumed.errors.push((Instant::now(), e.to_string())),
        }
    }
    consumed
}

#[test]
fn a_rolling_restart_surfaces_no_error_and_loses_nothing() {
    const TOPIC: &str = "rolling";
    let mut cluster = TestCluster::start(
        3,
        &[
            "replica.lag.time.max.ms=3000",
            "controlled.shutdown.retry.backoff.ms=500",
            "leader.imbalance.check.interval.seconds=3",
        ],
    );
    create(&cluster, TOPIC);
    let bootstrap = cluster.bootstrap();
    let (stop_producer, stop_consumer) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (producer_errors, consumer_errors) = (Errors::default(), Errors::default());
    let producer = {
        let (b, s, e) = (
            bootstrap.clone(),
            stop_producer.clone(),
            producer_errors.clone(),
        );
        std::thread::spawn(move || produce(&b, TOPIC, s, e, 400))
    };
    let consumed_count = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let (b, s, e) = (
            bootstrap.clone(),
            stop_consumer.clone(),
            consumer_errors.clone(),
        );
        let count = consumed_count.clone();
        std::thread::spawn(move || consume_all(&b, TOPIC, s, e, count))
    };
    std::thread::sleep(Duration::from_secs(3));
    let rolling = Instant::now();
    let mut windows = Vec::new();
    {
        for id in 1..=3 {
            let start = Instant::now();
            let stopped_in = cluster.terminate(id);
            if std::env::var_os("STROM_SHOW_STOP").is_some() {
                let log = cluster.log(id);
                let from = log.rfind("shutting down").unwrap_or(0);
                eprintln!("broker {id} stop:\n{}", &log[from..]);
            }
            assert!(
                cluster
                    .log(id)
                    .contains("controlled shutdown: leadership moved"),
                "broker {id} stopped without moving its leadership"
            );
            cluster.restart(id);
            cluster.wait_for("every ISR full again", |m| full(m, TOPIC));
            windows.push((id, start, Instant::now(), stopped_in));
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let rolling_total = rolling.elapsed();
    for id in 1..=3 {
        for line in cluster.log(id).lines() {
            if line.contains("controlled shutdown") || line.contains("shutting down") {
                eprintln!("broker {id}: {line}");
            }
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    stop_producer.store(true, Ordering::Relaxed);
    let produced = producer.join().expect("producer thread");
    // The consumer reads on until it has as many records as were acknowledged (bounded).
    let expected = produced.acked.len();
    wait_until("the consumer caught up", Duration::from_secs(60), || {
        consumed_count.load(Ordering::Relaxed) >= expected
    });
    stop_consumer.store(true, Ordering::Relaxed);
    let consumed = consumer.join().expect("consumer thread");

    for (id, start, end, stopped_in) in &windows {
        let mut last = *start;
        let mut longest = Duration::ZERO;
        for t in produced
            .ack_times
            .iter()
            .filter(|t| *t >= start && *t <= end)
        {
            longest = longest.max(t.duration_since(last));
            last = *t;
        }
        longest = longest.max(end.duration_since(last).min(Duration::from_secs(3600)));
        eprintln!(
            "STALL broker {id}: SIGTERM to exit {} ms, SIGTERM to full ISR {} ms, longest gap between acknowledgements {} ms",
            stopped_in.as_millis(),
            end.duration_since(*start).as_millis(),
            longest.as_millis()
        );
    }
    eprintln!(
        "rolling restart of 3 brokers in {} ms; {} records acknowledged",
        rolling_total.as_millis(),
        expected
    );
    assert!(expected > 1000, "only {expected} records acknowledged");
    assert!(
        produced.failed.is_empty(),
        "delivery failures: {:?}",
        &produced.failed[..produced.failed.len().min(10)]
    );
    let producer_errors = producer_errors.0.lock().unwrap().clone();
    let consumer_callback_errors = consumer_errors.0.lock().unwrap().clone();
    eprintln!("producer error callbacks: {producer_errors:?}");
    eprintln!("consumer error callbacks: {consumer_callback_errors:?}");
    eprintln!("consumer poll errors: {:?}", consumed.errors);
    // The one error librdkafka reports during a clean restart: its reconnects to the stopped
    // broker's address are refused until the broker is back (BrokerTransportFailure,
    // informational: the client recovers by itself, Kafka's rolling restarts show the same).
    // Anything else, or a transport failure outside a restart or naming another broker,
    // fails the test.
    let restarting = |when: &Instant| {
        windows
            .iter()
            .find(|(_, s, e, _)| when >= s && when <= e)
            .map(|(id, ..)| *id)
    };
    for (when, code, reason) in producer_errors.iter().chain(&consumer_callback_errors) {
        let id = restarting(when);
        let names_it = id.is_some_and(|id| reason.contains(&cluster.addr(id)));
        assert!(
            *code == RDKafkaErrorCode::BrokerTransportFailure && names_it,
            "an error other than a refused reconnect to the restarting broker {id:?}: {code:?} {reason}"
        );
    }
    for (when, error) in &consumed.errors {
        assert!(
            error.contains("BrokerTransportFailure") && restarting(when).is_some(),
            "a consumer error other than a refused reconnect during a restart: {error}"
        );
    }
    // Every acknowledged record consumed once, at its offset, with its bytes, in order.
    let mut found = 0;
    for (partition, records) in &consumed.records {
        let mut last_offset = -1;
        for (offset, id, sum) in records {
            assert!(
                *offset > last_offset,
                "partition {partition}: offset {offset} after {last_offset}"
            );
            last_offset = *offset;
            if let Some((acked_id, acked_sum)) = produced.acked.get(&(*partition, *offset)) {
                assert_eq!(
                    (acked_id, acked_sum),
                    (id, sum),
                    "partition {partition} offset {offset}"
                );
                found += 1;
            }
        }
    }
    assert_eq!(found, expected, "acknowledged records not consumed");
}

fn zk_store(cluster: &TestCluster) -> (tokio::runtime::Runtime, ZkStore) {
    let runtime = client_runtime();
    let config = ZkConfig::new(format!("{}/strom", cluster.zookeeper.connect_string()));
    let store = runtime
        .block_on(ZkStore::connect(&config))
        .expect("ZooKeeper session");
    (runtime, store)
}

#[test]
fn leadership_returns_to_preferred_replicas_by_the_balance_check() {
    const TOPIC: &str = "balance";
    let mut cluster = TestCluster::start(
        3,
        &[
            "replica.lag.time.max.ms=3000",
            "leader.imbalance.check.interval.seconds=2",
            "controlled.shutdown.retry.backoff.ms=500",
        ],
    );
    create(&cluster, TOPIC);
    cluster.wait_for("every partition led by its preferred replica", |m| {
        preferred(m, TOPIC)
    });
    // The balance check: a restarted broker gets its leadership back.
    let victim = 2;
    cluster.terminate(victim);
    cluster.wait_for("the stopped broker's leadership moved", |m| {
        (0..PARTITIONS)
            .all(|p| partition_of(m, TOPIC, p).is_some_and(|(l, _, _)| l > 0 && l != victim))
    });
    cluster.restart(victim);
    cluster.wait_for("every ISR full again", |m| full(m, TOPIC));
    let back = Instant::now();
    cluster.wait_for("the preferred replicas lead again", |m| preferred(m, TOPIC));
    eprintln!(
        "leadership back {} ms after the ISRs were full",
        back.elapsed().as_millis()
    );
}

#[test]
fn the_preferred_replica_election_znode_elects_and_is_deleted() {
    const TOPIC: &str = "znode";
    let mut cluster = TestCluster::start(
        3,
        &[
            "replica.lag.time.max.ms=3000",
            "auto.leader.rebalance.enable=false",
            "controlled.shutdown.retry.backoff.ms=500",
        ],
    );
    create(&cluster, TOPIC);
    let victim = 3;
    cluster.terminate(victim);
    cluster.restart(victim);
    cluster.wait_for("every ISR full again", |m| full(m, TOPIC));
    std::thread::sleep(Duration::from_secs(3));
    let metadata = cluster.metadata();
    let moved: Vec<i32> = (0..PARTITIONS)
        .filter(|p| {
            partition_of(&metadata, TOPIC, *p)
                .is_some_and(|(leader, replicas, _)| replicas[0] == victim && leader != victim)
        })
        .collect();
    assert!(
        !moved.is_empty(),
        "broker {victim} got its leadership back with the balance check off"
    );
    let (runtime, store) = zk_store(&cluster);
    let partitions: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    runtime
        .block_on(store.request_preferred_replica_election(&partitions))
        .expect("write /admin/preferred_replica_election");
    cluster.wait_for("the preferred replicas lead again", |m| preferred(m, TOPIC));
    wait_until("the znode deleted", Duration::from_secs(10), || {
        runtime
            .block_on(store.preferred_replica_election())
            .expect("read the znode")
            .is_none()
    });
}

/// ControlledShutdown over the wire as a Kafka broker sends it: a non-controller answers
/// NOT_CONTROLLER, the controller refuses a stale broker epoch and an unknown broker, and a v1
/// request (no broker epoch) moves the broker's leadership away and answers nothing remaining.
#[test]
fn controlled_shutdown_requests_are_answered_with_kafkas_codes() {
    use kafka_protocol_3x::messages::{BrokerId, ControlledShutdownRequest};
    const TOPIC: &str = "wire";
    let cluster = TestCluster::start(3, &["replica.lag.time.max.ms=3000"]);
    create(&cluster, TOPIC);
    let controller = cluster.controller();
    let other = (1..=3).find(|id| *id != controller).unwrap();
    let request = |broker: i32, epoch: i64| {
        let mut request = ControlledShutdownRequest::default();
        request.broker_id = BrokerId(broker);
        request.broker_epoch = epoch;
        request
    };
    let mut to_other = RawClient::connect(&cluster.addr(other));
    assert_eq!(to_other.send3(3, &request(other, 0)).error_code, 41);
    let mut raw = RawClient::connect(&cluster.addr(controller));
    assert_eq!(
        raw.send3(3, &request(other, 1)).error_code,
        77,
        "a stale broker epoch"
    );
    assert_eq!(
        raw.send3(3, &request(9, -1)).error_code,
        8,
        "an unknown broker"
    );
    let answer = raw.send3(1, &request(other, -1));
    assert_eq!(
        (answer.error_code, answer.remaining_partitions.len()),
        (0, 0)
    );
    cluster.wait_for("the broker's leadership moved and it left every ISR", |m| {
        (0..PARTITIONS).all(|p| {
            partition_of(m, TOPIC, p).is_some_and(|(leader, _, isr)| {
                leader > 0 && leader != other && !isr.contains(&other)
            })
        })
    });
}
