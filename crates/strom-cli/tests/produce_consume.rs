//! Produce and consume through librdkafka against a real broker: every codec and acks level,
//! large records, many topics, long polling, restarts.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::Offset;

/// Produces `count` keyed records with a header and explicit timestamp; returns what was sent
/// as (key, value, timestamp) in send order.
/// What was sent: (key, value, timestamp).
type Sent = (Vec<u8>, Vec<u8>, i64);

fn produce_numbered(bootstrap: &str, topic: &str, count: u64, extra: &[(&str, &str)]) -> Vec<Sent> {
    let producer = producer(bootstrap, extra);
    let rt = client_runtime();
    // Recent timestamps: older ones would be removed by the default 7-day retention.
    let base_ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 600_000;
    let mut sent = Vec::new();
    rt.block_on(async {
        let mut futures = Vec::new();
        for i in 0..count {
            let key = format!("key-{i}").into_bytes();
            let value = payload(i, 100 + (i as usize * 37) % 900);
            let ts = base_ts + i as i64;
            let headers = OwnedHeaders::new().insert(Header {
                key: "seq",
                value: Some(&i.to_be_bytes()),
            });
            let record = FutureRecord::to(topic)
                .key(&key)
                .payload(&value)
                .timestamp(ts)
                .headers(headers);
            futures.push(
                producer
                    .send_result(record)
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
            sent.push((key.clone(), value.clone(), ts));
        }
        for f in futures {
            let delivery = f.await.expect("delivery future");
            if let Err((e, _)) = delivery {
                panic!("delivery to {topic} failed: {e}");
            }
        }
    });
    sent
}

#[test]
fn every_codec_and_acks_level_round_trips() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        for acks in ["0", "1", "all"] {
            let topic = format!("rt-{codec}-{acks}");
            create_topic(&bootstrap, &topic, 2, &[]);
            let sent = produce_numbered(
                &bootstrap,
                &topic,
                300,
                &[
                    ("compression.codec", codec),
                    ("acks", acks),
                    ("linger.ms", "5"),
                ],
            );
            let got = consume(
                &bootstrap,
                &topic,
                &[0, 1],
                sent.len(),
                Duration::from_secs(30),
            );
            assert_eq!(got.len(), sent.len(), "{topic}: count");
            let by_key: HashMap<Vec<u8>, &Sent> = sent.iter().map(|s| (s.0.clone(), s)).collect();
            let mut last_seq_per_partition: HashMap<i32, u64> = HashMap::new();
            let mut last_offset_per_partition: HashMap<i32, i64> = HashMap::new();
            for record in &got {
                let key = record.key.clone().expect("key");
                let (_, value, ts) = by_key
                    .get(&key)
                    .unwrap_or_else(|| panic!("{topic}: unexpected key"));
                assert_eq!(
                    record.value.as_ref().unwrap(),
                    value,
                    "{topic}: payload of {}",
                    String::from_utf8_lossy(&key)
                );
                assert_eq!(record.timestamp, Some(*ts), "{topic}: timestamp");
                assert_eq!(record.headers.len(), 1, "{topic}: headers");
                let seq = u64::from_be_bytes(record.headers[0].1.clone().try_into().unwrap());
                if let Some(prev) = last_seq_per_partition.insert(record.partition, seq) {
                    assert!(
                        seq > prev,
                        "{topic}: order within partition {}",
                        record.partition
                    );
                }
                if let Some(prev) =
                    last_offset_per_partition.insert(record.partition, record.offset)
                {
                    assert_eq!(record.offset, prev + 1, "{topic}: offsets are contiguous");
                }
            }
            let distinct: std::collections::HashSet<_> =
                got.iter().map(|r| r.key.clone()).collect();
            assert_eq!(
                distinct.len(),
                sent.len(),
                "{topic}: every record exactly once"
            );
        }
    }
}

#[test]
fn large_records_up_to_the_limit_and_too_large_refused() {
    let broker = TestBroker::start(&["message.max.bytes=1048588"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "large", 1, &[]);
    let producer = producer(
        &bootstrap,
        &[
            ("message.max.bytes", "3000000"),
            ("compression.codec", "none"),
            ("linger.ms", "0"),
        ],
    );
    let rt = client_runtime();
    let near = payload(7, 1_048_000);
    let delivered = rt.block_on(producer.send(
        FutureRecord::<(), _>::to("large").payload(&near),
        Duration::from_secs(10),
    ));
    assert!(
        delivered.is_ok(),
        "a record just under message.max.bytes is accepted: {delivered:?}"
    );
    let too_big = payload(8, 1_200_000);
    let refused = rt.block_on(producer.send(
        FutureRecord::<(), _>::to("large").payload(&too_big),
        Duration::from_secs(10),
    ));
    match refused {
        Err((e, _)) => assert_eq!(
            e.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge),
            "the broker refuses a batch over message.max.bytes: {e}"
        ),
        Ok(d) => panic!(
            "a record over message.max.bytes was accepted at offset {}",
            d.offset
        ),
    }
    let got = consume(&bootstrap, "large", &[0], 1, Duration::from_secs(20));
    assert_eq!(got[0].value.as_deref(), Some(&near[..]));
    assert_eq!(got[0].offset, 0);
}

#[test]
fn one_hundred_topics() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let names: Vec<String> = (0..100).map(|i| format!("many-{i:03}")).collect();
    let topics: Vec<_> = names
        .iter()
        .map(|n| rdkafka::admin::NewTopic::new(n, 2, rdkafka::admin::TopicReplication::Fixed(1)))
        .collect();
    let rt = client_runtime();
    for r in rt
        .block_on(admin.create_topics(&topics, &rdkafka::admin::AdminOptions::new()))
        .unwrap()
    {
        r.unwrap();
    }
    let producer = producer(&bootstrap, &[("linger.ms", "20")]);
    rt.block_on(async {
        let mut futures = Vec::new();
        for n in &names {
            for i in 0..10u64 {
                let key = i.to_be_bytes();
                futures.push(
                    producer
                        .send_result(FutureRecord::to(n).key(&key).payload(n.as_bytes()))
                        .map_err(|(e, _)| e)
                        .expect("enqueue"),
                );
            }
        }
        for f in futures {
            f.await.expect("delivery future").expect("delivery");
        }
    });
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = client_config(&bootstrap, &[]).create().unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let listed = metadata
        .topics()
        .iter()
        .filter(|t| t.name().starts_with("many-"))
        .count();
    assert_eq!(listed, 100);
    for n in names.iter().step_by(9) {
        let got = consume(&bootstrap, n, &[0, 1], 10, Duration::from_secs(20));
        assert!(got.iter().all(|r| r.value.as_deref() == Some(n.as_bytes())));
    }
    for n in &names {
        let (low0, high0) = consumer
            .fetch_watermarks(n, 0, Duration::from_secs(5))
            .unwrap();
        let (low1, high1) = consumer
            .fetch_watermarks(n, 1, Duration::from_secs(5))
            .unwrap();
        assert_eq!((low0, low1), (0, 0));
        assert_eq!(high0 + high1, 10, "{n}: ten records in all");
    }
}

#[test]
fn long_poll_returns_as_soon_as_data_arrives() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "poll", 1, &[]);
    let consumer_bootstrap = bootstrap.clone();
    let waiting = std::thread::spawn(move || {
        let started = Instant::now();
        let got = consume_from(
            &consumer_bootstrap,
            "poll",
            &[0],
            Offset::Beginning,
            1,
            Duration::from_secs(20),
            &[("fetch.wait.max.ms", "10000")],
        );
        (got, started.elapsed())
    });
    // The producer is connected before the clock starts, so only the delivery is timed.
    let producer = producer(&bootstrap, &[("linger.ms", "0")]);
    {
        use rdkafka::producer::Producer;
        producer
            .client()
            .fetch_metadata(Some("poll"), Duration::from_secs(10))
            .expect("metadata");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let sent_at = Instant::now();
    client_runtime()
        .block_on(producer.send(
            FutureRecord::<(), _>::to("poll").payload("hello"),
            Duration::from_secs(5),
        ))
        .unwrap();
    let (got, _) = waiting.join().unwrap();
    let latency = sent_at.elapsed();
    assert_eq!(got[0].value.as_deref(), Some(&b"hello"[..]));
    // The consumer's fetch was parked for up to 10 s; it must have been woken by the append.
    assert!(
        latency < Duration::from_secs(5),
        "record arrived {latency:?} after it was produced; the fetch was not woken"
    );
}

#[test]
fn data_survives_clean_restart_and_new_appends_continue() {
    let broker = TestBroker::start(&["log.segment.bytes=20000"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "durable", 3, &[]);
    let first = produce_numbered(&bootstrap, "durable", 500, &[("acks", "all")]);
    let broker = broker.restart();
    let bootstrap = broker.bootstrap();
    let got = consume(
        &bootstrap,
        "durable",
        &[0, 1, 2],
        first.len(),
        Duration::from_secs(30),
    );
    assert_eq!(got.len(), 500);
    let second = produce_numbered(&bootstrap, "durable", 100, &[("acks", "all")]);
    let got = consume(
        &bootstrap,
        "durable",
        &[0, 1, 2],
        first.len() + second.len(),
        Duration::from_secs(30),
    );
    let mut offsets: HashMap<i32, Vec<i64>> = HashMap::new();
    for r in &got {
        offsets.entry(r.partition).or_default().push(r.offset);
    }
    for (p, list) in offsets {
        let expected: Vec<i64> = (0..list.len() as i64).collect();
        assert_eq!(
            list, expected,
            "partition {p}: offsets continue without gaps after restart"
        );
    }
    let segments = std::fs::read_dir(broker.dir.join("durable-0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count();
    assert!(
        segments > 1,
        "log.segment.bytes=20000 rolled segments ({segments})"
    );
}

/// A compacted topic read back through librdkafka (after refusing a keyless record with
/// INVALID_RECORD): after compaction the consumer sees, for
/// every key, only its latest value at the offset it was produced at; deleted keys (tombstones
/// older than `delete.retention.ms`) are gone; offsets only increase, and the sparse and empty
/// batches compaction leaves (the idempotent producer's batches are kept emptied) do not stall
/// the consumer.
#[test]
fn compacted_topic_serves_the_latest_value_of_each_key() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, TopicPartitionList};

    let broker = TestBroker::start(&["log.cleaner.backoff.ms=100"]);
    let bootstrap = broker.bootstrap();
    create_topic(
        &bootstrap,
        "latest-only",
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "4096"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "0"),
        ],
    );
    let idempotent = producer(
        &bootstrap,
        // Small batches, so segments roll between them (a batch never spans segments).
        &[
            ("enable.idempotence", "true"),
            ("linger.ms", "0"),
            ("batch.size", "1000"),
        ],
    );
    // A second, plain producer writes last, so the idempotent producer's remembered batches
    // (its tombstones) are emptied by compaction and kept: the consumer must step over them.
    let plain = producer(&bootstrap, &[("linger.ms", "0"), ("batch.size", "1000")]);
    let rt = client_runtime();
    // A compacted topic refuses a record without a key, as Kafka does.
    let refused = rt.block_on(plain.send(
        FutureRecord::<(), _>::to("latest-only").payload("no key"),
        Duration::from_secs(10),
    ));
    match refused {
        Err((e, _)) => assert_eq!(
            e.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::InvalidRecord),
            "{e}"
        ),
        Ok(delivery) => panic!("a keyless record was accepted: {delivery:?}"),
    }
    // key -> (offset, value) of its latest record; None for a deleted key.
    let mut latest: HashMap<String, Option<(i64, Vec<u8>)>> = HashMap::new();
    rt.block_on(async {
        let send =
            |via: &rdkafka::producer::FutureProducer, key: String, value: Option<Vec<u8>>| {
                let record = match &value {
                    Some(v) => FutureRecord::to("latest-only").key(&key).payload(v),
                    None => FutureRecord::to("latest-only").key(&key),
                };
                let future = via
                    .send_result(record)
                    .map_err(|(e, _)| e)
                    .expect("enqueue");
                (key, value, future)
            };
        let mut pending = Vec::new();
        for i in 0..2000u64 {
            pending.push(send(
                &idempotent,
                format!("key-{}", i % 50),
                Some(payload(i, 60)),
            ));
        }
        for k in 40..50 {
            pending.push(send(&idempotent, format!("key-{k}"), None));
        }
        for (key, value, future) in pending.drain(..) {
            let offset = future.await.expect("delivery").expect("delivered").offset;
            latest.insert(key, value.map(|v| (offset, v)));
        }
        // Unique keys after the tombstones, so they leave the active segment.
        for j in 0..150u64 {
            pending.push(send(
                &plain,
                format!("filler-{j}"),
                Some(payload(10_000 + j, 60)),
            ));
        }
        for (key, value, future) in pending {
            let offset = future.await.expect("delivery").expect("delivered").offset;
            latest.insert(key, value.map(|v| (offset, v)));
        }
    });
    let mut want: Vec<(i64, String, Vec<u8>)> = latest
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|(o, v)| (*o, k.clone(), v.clone())))
        .collect();
    want.sort();
    assert_eq!(want.len(), 40 + 150);

    let consumer: BaseConsumer = client_config(
        &bootstrap,
        &[
            ("group.id", "compact-reader"),
            ("enable.auto.commit", "false"),
        ],
    )
    .create()
    .unwrap();
    let (_, high) = consumer
        .fetch_watermarks("latest-only", 0, Duration::from_secs(10))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("latest-only", 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&list).unwrap();
        got.clear();
        let pass_end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < pass_end {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
                    got.push((m.offset(), key, m.payload().map(|v| v.to_vec())));
                    if m.offset() == high - 1 {
                        break;
                    }
                }
                Some(Err(e)) => panic!("consume error: {e}"),
                None => {}
            }
        }
        assert_eq!(
            got.last().map(|g| g.0),
            Some(high - 1),
            "the consumer reaches the end through compacted batches"
        );
        if got.len() == want.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let got: Vec<(i64, String, Vec<u8>)> = got
        .into_iter()
        .map(|(o, k, v)| (o, k, v.expect("no tombstone is left")))
        .collect();
    assert_eq!(
        got, want,
        "exactly the latest value of each live key, at its offset"
    );
}

/// Kafka's relaxed flush (`log.flush.interval.messages` > 1): produces at every acks level are
/// acknowledged without waiting for fdatasync, and everything acknowledged is readable at once.
#[test]
fn relaxed_flush_acknowledges_and_serves_every_acks_level() {
    let broker = TestBroker::start(&["log.flush.interval.messages=1000000"]);
    let bootstrap = broker.bootstrap();
    for acks in ["0", "1", "all"] {
        let topic = format!("relaxed-{acks}");
        create_topic(&bootstrap, &topic, 2, &[]);
        let sent = produce_numbered(&bootstrap, &topic, 300, &[("acks", acks)]);
        let got = consume(
            &bootstrap,
            &topic,
            &[0, 1],
            sent.len(),
            Duration::from_secs(30),
        );
        assert_eq!(got.len(), sent.len(), "{topic}: count");
        let by_key: HashMap<Vec<u8>, &Sent> = sent.iter().map(|s| (s.0.clone(), s)).collect();
        for record in &got {
            let (_, value, _) = by_key[record.key.as_ref().expect("key")];
            assert_eq!(record.value.as_ref(), Some(value), "{topic}: payload");
        }
    }
}
