//! Fetch sessions (KIP-227) on a real broker, over a raw connection: a full fetch opens one,
//! incremental fetches answer only the partitions with something new, and the session errors
//! are Kafka's.

mod common;

use std::time::{Duration, Instant};

use common::cluster::produce_acks_all_to;
use common::*;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{self as km, TopicName};

const PARTITIONS: i32 = 200;

fn produce_to(raw: &mut RawClient, topic: &str, partition: i32, value: &[u8]) {
    let code = produce_acks_all_to(raw, topic, partition, value);
    assert_eq!(code, 0, "produce to {topic}-{partition}");
}

/// A fetch of `partitions` of `topic` (each from `offset`) in session `id` at `epoch`.
fn session_fetch(
    topic: &str,
    partitions: &[(i32, i64)],
    id: i32,
    epoch: i32,
    max_wait_ms: i32,
) -> km::FetchRequest {
    let mut request = fetch_request(topic, 0);
    request.topics[0].partitions = partitions
        .iter()
        .map(|&(partition, offset)| {
            let mut p = km::fetch_request::FetchPartition::default();
            p.partition = partition;
            p.fetch_offset = offset;
            p.partition_max_bytes = 1 << 20;
            p.current_leader_epoch = -1;
            p
        })
        .collect();
    if partitions.is_empty() {
        request.topics.clear();
    }
    request.session_id = id;
    request.session_epoch = epoch;
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request
}

/// The partitions a response answers, with their record batches' base offsets.
fn answered(response: &km::FetchResponse) -> Vec<(i32, Vec<i64>)> {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| {
            let batches = p
                .records
                .clone()
                .map(batch_base_offsets)
                .unwrap_or_default();
            (p.partition_index, batches)
        })
        .collect()
}

#[test]
fn incremental_fetches_answer_only_what_moved() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "wide", PARTITIONS, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    let all: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();

    // Full fetch, epoch 0: a session is opened and every partition answered.
    let full = raw.send(12, &session_fetch("wide", &all, 0, 0, 0));
    assert_eq!(full.error_code, 0);
    let id = full.session_id;
    assert!(id > 0, "a session is granted");
    assert_eq!(answered(&full).len(), PARTITIONS as usize);
    let addr = broker
        .handle
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("metrics on");
    let gauge = |name: &str| -> Option<u64> {
        let (_, body) = http_get(addr, "GET /metrics HTTP/1.1\r\nHost: strom\r\n\r\n");
        let series = format!("kafka_server_fetchsessioncache_{name} ");
        body.lines()
            .find_map(|l| l.strip_prefix(series.as_str())?.parse().ok())
    };
    assert_eq!(gauge("numincrementalfetchsessions"), Some(1));
    assert_eq!(
        gauge("numincrementalfetchpartitionscached"),
        Some(PARTITIONS as u64)
    );

    // Nothing moved: an incremental fetch waits max_wait_ms and answers no partition.
    let started = Instant::now();
    let idle = raw.send(12, &session_fetch("wide", &[], id, 1, 300));
    assert_eq!((idle.error_code, idle.session_id), (0, id));
    assert!(answered(&idle).is_empty(), "{:?}", answered(&idle));
    assert!(started.elapsed() >= Duration::from_millis(250));

    // One partition gets a record: the next incremental fetch answers it alone, from the
    // session's cached offset, and wakes when it arrives.
    let writer = std::thread::spawn({
        let bootstrap = bootstrap.clone();
        move || {
            std::thread::sleep(Duration::from_millis(200));
            produce_to(&mut RawClient::connect(&bootstrap), "wide", 137, b"one");
        }
    });
    let started = Instant::now();
    let woken = raw.send(12, &session_fetch("wide", &[], id, 2, 10_000));
    writer.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken by the record"
    );
    assert_eq!(answered(&woken), vec![(137, vec![0])]);
    let p = &woken.responses[0].partitions[0];
    assert_eq!((p.high_watermark, p.error_code), (1, 0));

    // The fetcher moves 137 on to offset 1: nothing new is answered; a record for 3 is.
    produce_to(&mut raw, "wide", 3, b"three");
    let next = raw.send(12, &session_fetch("wide", &[(137, 1)], id, 3, 0));
    assert_eq!(answered(&next), vec![(3, vec![0])]);
    let next = raw.send(12, &session_fetch("wide", &[(3, 1)], id, 4, 0));
    assert!(answered(&next).is_empty(), "{:?}", answered(&next));

    // Forgetting partition 3 then writing to it: it is no longer answered.
    let mut forget = session_fetch("wide", &[], id, 5, 0);
    let mut gone = km::fetch_request::ForgottenTopic::default();
    gone.topic = TopicName("wide".to_string().into());
    gone.partitions = vec![3];
    forget.forgotten_topics_data.push(gone);
    assert!(answered(&raw.send(12, &forget)).is_empty());
    produce_to(&mut raw, "wide", 3, b"again");
    let next = raw.send(12, &session_fetch("wide", &[], id, 6, 0));
    assert!(answered(&next).is_empty(), "{:?}", answered(&next));

    // Kafka's session errors: a replayed epoch, an unknown id.
    let replay = raw.send(12, &session_fetch("wide", &[], id, 6, 0));
    assert_eq!(replay.error_code, E::InvalidFetchSessionEpoch.code());
    assert!(replay.responses.is_empty());
    let unknown = raw.send(12, &session_fetch("wide", &[], id ^ 0x55, 1, 0));
    assert_eq!(unknown.error_code, E::FetchSessionIdNotFound.code());

    // Epoch -1 closes the session and fetches without one.
    let closed = raw.send(12, &session_fetch("wide", &[(3, 0)], id, -1, 0));
    assert_eq!((closed.error_code, closed.session_id), (0, 0));
    assert_eq!(answered(&closed), vec![(3, vec![0, 1])]);
    let after = raw.send(12, &session_fetch("wide", &[], id, 7, 0));
    assert_eq!(after.error_code, E::FetchSessionIdNotFound.code());

    assert_eq!(gauge("numincrementalfetchsessions"), Some(0));
    assert_eq!(gauge("incrementalfetchsessionevictions_total"), Some(0));
}

#[test]
fn a_broker_without_session_slots_answers_full_fetches() {
    let broker = TestBroker::start(&["max.incremental.fetch.session.cache.slots=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "plain", 2, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    let full = raw.send(12, &session_fetch("plain", &[(0, 0), (1, 0)], 0, 0, 0));
    assert_eq!((full.error_code, full.session_id), (0, 0));
    assert_eq!(answered(&full).len(), 2);
}
