//! The wire protocol edge: ApiVersions, version refusal, malformed and hostile input,
//! idempotent producer sequence checks (also across restarts), and topic ids; every API at
//! every version in `versions`, the versions Kafka 4 removed in `removed_versions`.

mod common;

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use common::txn::init_producer_id;
use common::*;
use kafka_protocol::messages::{self as km, ApiKey};
use removed_versions::{offset_commit_old, offset_fetch_v0};

/// Every API and group API at every supported version.
#[path = "protocol/versions.rs"]
mod versions;

/// The versions Kafka 4 removed (KIP-896) that Kafka 3.9 still accepted.
#[path = "protocol/removed_versions.rs"]
mod removed_versions;

/// The versions of `key` Strom supports that kafka-protocol 0.18 (Kafka 4.1) can encode. The
/// older ones Kafka 3.9 still accepted are sent with its own types, by the tests after
/// `removed_versions_answer_at_every_advertised_version`.
fn range(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = strom_broker::protocol::request::supported_range(key).expect("supported");
    min.max(key.valid_versions().min)..=max
}

fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> km::ProduceRequest {
    let mut data = km::produce_request::PartitionProduceData::default();
    data.index = partition;
    data.records = Some(records);
    let mut t = km::produce_request::TopicProduceData::default();
    t.name = km::TopicName(topic.to_string().into());
    t.partition_data = vec![data];
    let mut request = km::ProduceRequest::default();
    request.acks = acks;
    request.timeout_ms = 10_000;
    request.topic_data = vec![t];
    request
}

fn produce(
    raw: &mut RawClient,
    topic: &str,
    records: Bytes,
) -> km::produce_response::PartitionProduceResponse {
    let response = raw.send(9, &produce_request(topic, 0, records, -1));
    response.responses[0].partition_responses[0].clone()
}

fn fetch(
    raw: &mut RawClient,
    topic: &str,
    offset: i64,
    max_wait_ms: i32,
) -> km::fetch_response::PartitionData {
    let mut request = fetch_request(topic, offset);
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    raw.send(11, &request).responses[0].partitions[0].clone()
}

fn latest(raw: &mut RawClient, topic: &str) -> i64 {
    let mut request = km::ListOffsetsRequest::default();
    request.replica_id = km::BrokerId(-1);
    let mut t = km::list_offsets_request::ListOffsetsTopic::default();
    t.name = km::TopicName(topic.to_string().into());
    let mut p = km::list_offsets_request::ListOffsetsPartition::default();
    p.timestamp = -1;
    p.current_leader_epoch = -1;
    t.partitions = vec![p];
    request.topics = vec![t];
    raw.send(7, &request).topics[0].partitions[0].offset
}

#[test]
fn api_versions_advertises_exactly_what_is_implemented() {
    let broker = TestBroker::start(&[]);
    let mut raw = RawClient::connect(&broker.bootstrap());
    let response = raw.send(3, &km::ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    let advertised: Vec<(i16, i16, i16)> = response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    let implemented: Vec<(i16, i16, i16)> = strom_broker::protocol::request::SUPPORTED
        .iter()
        .map(|(k, min, max)| (*k as i16, *min, *max))
        .collect();
    assert_eq!(advertised, implemented);
    for (key, _, max) in &implemented {
        let api = ApiKey::try_from(*key).unwrap();
        assert!(
            *max <= api.valid_versions().max,
            "{api:?} advertised beyond the codec"
        );
    }

    // A newer ApiVersions gets UNSUPPORTED_VERSION in a version-0 response with the list.
    let mut newer = RawClient::connect(&broker.bootstrap());
    // Header v1 (non-flexible), as clients send an ApiVersions of a version the broker may not know.
    let mut buf = Vec::new();
    let body: Vec<u8> = [
        &18i16.to_be_bytes()[..],
        &99i16.to_be_bytes(),
        &7i32.to_be_bytes(),
        &(-1i16).to_be_bytes(),
    ]
    .concat();
    buf.extend_from_slice(&(body.len() as i32).to_be_bytes());
    buf.extend_from_slice(&body);
    newer.stream.write_all(&buf).unwrap();
    let mut reply = newer
        .read_frame()
        .expect("an answer, not a closed connection");
    use kafka_protocol::protocol::Decodable;
    let header = km::ResponseHeader::decode(&mut reply, 0).unwrap();
    assert_eq!(header.correlation_id, 7);
    let v0 = km::ApiVersionsResponse::decode(&mut reply, 0).unwrap();
    assert_eq!(v0.error_code, 35, "UNSUPPORTED_VERSION");
    assert_eq!(v0.api_keys.len(), implemented.len());
}

#[test]
fn hostile_frames_close_the_connection_and_the_broker_keeps_serving() {
    let broker = TestBroker::start(&["socket.request.max.bytes=1048576"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "guarded", 1, &[]);

    // A frame larger than socket.request.max.bytes.
    let mut raw = RawClient::connect(&bootstrap);
    raw.stream.write_all(&(2_000_000i32).to_be_bytes()).unwrap();
    assert!(raw.is_closed(), "oversized frame closes the connection");

    // A negative size.
    let mut raw = RawClient::connect(&bootstrap);
    raw.stream.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(raw.is_closed(), "negative frame size closes the connection");

    // An unknown API key.
    let mut raw = RawClient::connect(&bootstrap);
    raw.stream
        .write_all(&[0, 0, 0, 10, 0x03, 0xE7, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    assert!(raw.is_closed(), "unknown API key closes the connection");

    // A known API below the supported range (Produce v2).
    let mut raw = RawClient::connect(&bootstrap);
    raw.stream
        .write_all(&[0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    assert!(raw.is_closed(), "unsupported version closes the connection");

    // A header followed by garbage instead of a Metadata body.
    let mut raw = RawClient::connect(&bootstrap);
    raw.stream
        .write_all(&[
            0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
        ])
        .unwrap();
    assert!(raw.is_closed(), "undecodable body closes the connection");

    // A truncated frame followed by a hang-up.
    let mut raw = RawClient::connect(&bootstrap);
    raw.stream.write_all(&[0, 0, 0, 100, 0, 3]).unwrap();
    drop(raw);

    // Random bytes, many times.
    let mut rng = {
        use rand_core::SeedableRng as _;
        rand_chacha::ChaCha8Rng::seed_from_u64(0x1234_5678_9abc_def0)
    };
    for _ in 0..50 {
        let mut raw = RawClient::connect(&bootstrap);
        let mut junk = vec![0u8; 64];
        rand_core::Rng::fill_bytes(&mut rng, &mut junk);
        let _ = raw.stream.write_all(&junk);
    }

    // The broker still serves, and nothing reached the log.
    let mut raw = RawClient::connect(&bootstrap);
    assert_eq!(latest(&mut raw, "guarded"), 0);
    let ok = produce(
        &mut raw,
        "guarded",
        record_batch(&[(None, b"fine")], -1, -1, -1, 1),
    );
    assert_eq!((ok.error_code, ok.base_offset), (0, 0));
}

#[test]
fn corrupt_batches_get_error_codes_and_nothing_is_written() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "strict", 1, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    let good = record_batch(&[(Some(b"k"), b"v1"), (None, b"v2")], -1, -1, -1, 1000);

    let mut bad_crc = good.to_vec();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    assert_eq!(
        produce(&mut raw, "strict", Bytes::from(bad_crc)).error_code,
        2,
        "bad CRC → CORRUPT_MESSAGE"
    );

    let mut bad_magic = good.to_vec();
    bad_magic[16] = 1;
    let code = produce(&mut raw, "strict", Bytes::from(bad_magic)).error_code;
    assert!(code == 87 || code == 2, "old magic is refused (got {code})");

    let mut lying_length = good.to_vec();
    lying_length[8..12].copy_from_slice(&(10_000i32).to_be_bytes());
    assert_eq!(
        produce(&mut raw, "strict", Bytes::from(lying_length)).error_code,
        2,
        "lying length → CORRUPT_MESSAGE"
    );

    let truncated = good.slice(0..30);
    assert_eq!(
        produce(&mut raw, "strict", truncated).error_code,
        2,
        "truncated batch → CORRUPT_MESSAGE"
    );

    let two_batches = Bytes::from([good.to_vec(), good.to_vec()].concat());
    assert_eq!(
        produce(&mut raw, "strict", two_batches).error_code,
        87,
        "two batches → INVALID_RECORD"
    );

    assert_eq!(latest(&mut raw, "strict"), 0, "nothing was appended");
    let response = produce(&mut raw, "strict", good.clone());
    assert_eq!((response.error_code, response.base_offset), (0, 0));
    assert_eq!(
        latest(&mut raw, "strict"),
        2,
        "the end offset counts records, not batches"
    );

    // Unknown topic and partition.
    let response = raw.send(9, &produce_request("no-such-topic", 0, good.clone(), -1));
    assert_eq!(response.responses[0].partition_responses[0].error_code, 3);
    let response = raw.send(9, &produce_request("strict", 7, good.clone(), -1));
    assert_eq!(response.responses[0].partition_responses[0].error_code, 3);
    let response = raw.send(9, &produce_request("strict", 0, good.clone(), 5));
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 21,
        "INVALID_REQUIRED_ACKS"
    );

    // Fetch offsets out of range, negative and huge; in range mid-batch returns the whole batch.
    assert_eq!(
        fetch(&mut raw, "strict", -5, 0).error_code,
        1,
        "negative offset → OFFSET_OUT_OF_RANGE"
    );
    assert_eq!(
        fetch(&mut raw, "strict", i64::MAX, 0).error_code,
        1,
        "huge offset → OFFSET_OUT_OF_RANGE"
    );
    let mid = fetch(&mut raw, "strict", 1, 0);
    assert_eq!(mid.error_code, 0);
    assert_eq!(mid.high_watermark, 2);
    assert_eq!(
        batch_base_offsets(mid.records.unwrap()),
        vec![0],
        "fetch from the middle of a batch returns that batch"
    );
    let at_end = fetch(&mut raw, "strict", 2, 0);
    assert_eq!(at_end.error_code, 0);
    assert!(at_end.records.map(|r| r.is_empty()).unwrap_or(true));

    // Metadata for an invalid name.
    let mut request = km::MetadataRequest::default();
    let mut t = km::metadata_request::MetadataRequestTopic::default();
    t.name = Some(km::TopicName("bad/name".to_string().into()));
    request.topics = Some(vec![t]);
    request.allow_auto_topic_creation = true;
    let response = raw.send(12, &request);
    assert_eq!(response.topics[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");
}

#[test]
fn empty_fetch_waits_for_max_wait_and_returns_when_data_arrives() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "waits", 1, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    let started = std::time::Instant::now();
    let empty = fetch(&mut raw, "waits", 0, 400);
    let waited = started.elapsed();
    assert_eq!(empty.error_code, 0);
    assert!(
        waited >= Duration::from_millis(350),
        "an empty fetch waits for max_wait_ms (waited {waited:?})"
    );

    let bootstrap2 = bootstrap.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut raw = RawClient::connect(&bootstrap2);
        produce(
            &mut raw,
            "waits",
            record_batch(&[(None, b"wake")], -1, -1, -1, 1),
        )
    });
    let started = std::time::Instant::now();
    let woken = fetch(&mut raw, "waits", 0, 20_000);
    let waited = started.elapsed();
    assert_eq!(writer.join().unwrap().error_code, 0);
    assert_eq!(batch_base_offsets(woken.records.unwrap()), vec![0]);
    assert!(
        waited < Duration::from_secs(10),
        "the parked fetch was answered when data arrived ({waited:?})"
    );
}

#[test]
fn idempotent_sequences_duplicates_gaps_epochs_and_restarts() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "idem", 1, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    let (pid, epoch) = init_producer_id(&mut raw);
    let (other_pid, _) = init_producer_id(&mut raw);
    assert_ne!(pid, other_pid, "each InitProducerId gets a new id");

    let batch0 = record_batch(
        &[(None, b"a"), (None, b"b"), (None, b"c")],
        pid,
        epoch,
        0,
        1,
    );
    assert_eq!(produce(&mut raw, "idem", batch0.clone()).base_offset, 0);
    let retry = produce(&mut raw, "idem", batch0.clone());
    assert_eq!(
        (retry.error_code, retry.base_offset),
        (0, 0),
        "a retried batch is a duplicate with its original offset"
    );
    assert_eq!(
        latest(&mut raw, "idem"),
        3,
        "the duplicate was not written again"
    );

    let gap = produce(
        &mut raw,
        "idem",
        record_batch(&[(None, b"x")], pid, epoch, 5, 1),
    );
    assert_eq!(
        gap.error_code, 45,
        "a sequence gap → OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    let next = produce(
        &mut raw,
        "idem",
        record_batch(&[(None, b"d")], pid, epoch, 3, 1),
    );
    assert_eq!((next.error_code, next.base_offset), (0, 3));

    // Clean restart: the producer state comes back from its snapshot.
    let broker = broker.restart();
    let mut raw = RawClient::connect(&broker.bootstrap());
    let retry = produce(
        &mut raw,
        "idem",
        record_batch(&[(None, b"d")], pid, epoch, 3, 1),
    );
    assert_eq!(
        (retry.error_code, retry.base_offset),
        (0, 3),
        "duplicate recognised after a clean restart"
    );
    let bumped = produce(
        &mut raw,
        "idem",
        record_batch(&[(None, b"e")], pid, epoch + 1, 0, 1),
    );
    assert_eq!(
        (bumped.error_code, bumped.base_offset),
        (0, 4),
        "a new epoch starts at sequence 0"
    );
    let fenced = produce(
        &mut raw,
        "idem",
        record_batch(&[(None, b"f")], pid, epoch, 4, 1),
    );
    assert_eq!(
        fenced.error_code, 47,
        "an older epoch → INVALID_PRODUCER_EPOCH"
    );

    // Unclean stop (no shutdown, no clean-shutdown marker): state is rebuilt from the log.
    let mut broker = broker;
    let dir = broker.dir.clone();
    // Forget the handle so nothing signals shutdown; then drop every task mid-flight.
    std::mem::forget(broker.handle.take());
    let runtime = std::mem::replace(&mut broker.runtime, tokio::runtime::Runtime::new().unwrap());
    // Async tasks are dropped where they stand; storage work already running on the blocking
    // pool (a flush, a checkpoint) is let finish, so it cannot race the next broker.
    runtime.shutdown_timeout(Duration::from_secs(10));
    let broker2 = TestBroker::start_in(&dir, &[]);
    let mut raw = RawClient::connect(&broker2.bootstrap());
    let retry = produce(
        &mut raw,
        "idem",
        record_batch(&[(None, b"e")], pid, epoch + 1, 0, 1),
    );
    assert_eq!(
        (retry.error_code, retry.base_offset),
        (0, 4),
        "duplicate recognised after an unclean restart"
    );
    assert_eq!(latest(&mut raw, "idem"), 5);
    drop(broker2);
    drop(broker);
}

#[test]
fn topic_ids_in_metadata_and_fetch() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "by-id", 1, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    assert_eq!(
        produce(
            &mut raw,
            "by-id",
            record_batch(&[(None, b"one")], -1, -1, -1, 1)
        )
        .error_code,
        0
    );
    let mut request = km::MetadataRequest::default();
    let mut t = km::metadata_request::MetadataRequestTopic::default();
    t.name = Some(km::TopicName("by-id".to_string().into()));
    request.topics = Some(vec![t]);
    let response = raw.send(12, &request);
    let id = response.topics[0].topic_id;
    assert!(!id.is_nil(), "topics have ids");

    let mut p = km::fetch_request::FetchPartition::default();
    p.fetch_offset = 0;
    p.partition_max_bytes = 1 << 20;
    p.current_leader_epoch = -1;
    let mut ft = km::fetch_request::FetchTopic::default();
    ft.topic_id = id;
    ft.partitions = vec![p];
    let mut fetch = km::FetchRequest::default();
    fetch.max_bytes = 1 << 20;
    fetch.session_epoch = -1;
    fetch.topics = vec![ft.clone()];
    let response = raw.send(13, &fetch);
    assert_eq!(response.responses[0].topic_id, id);
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert_eq!(
        batch_base_offsets(response.responses[0].partitions[0].records.clone().unwrap()),
        vec![0]
    );

    ft.topic_id = uuid::Uuid::from_u128(42);
    fetch.topics = vec![ft];
    let response = raw.send(13, &fetch);
    assert_eq!(
        response.responses[0].partitions[0].error_code, 100,
        "UNKNOWN_TOPIC_ID"
    );
}

/// Fetch responses carry large record ranges straight from the segment file (`sendfile`) and
/// small ones from memory. At every Fetch version, a response mixing both — big batches in
/// partition 0, one small batch in partition 1 — holds exactly the stored bytes, in order.
#[test]
fn fetch_sends_file_ranges_and_small_records_intact_at_every_version() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "zero-copy", 2, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    let mut sent = Vec::new();
    for i in 0..3u64 {
        let value = payload(i, 50_000);
        let batch = record_batch(&[(None, &value)], -1, -1, -1, 1_000 + i as i64);
        let response = raw.send(9, &produce_request("zero-copy", 0, batch.clone(), -1));
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        sent.push(batch);
    }
    let small = record_batch(&[(Some(b"k"), b"small")], -1, -1, -1, 5);
    let response = raw.send(9, &produce_request("zero-copy", 1, small.clone(), -1));
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);

    let mut metadata = km::MetadataRequest::default();
    let mut t = km::metadata_request::MetadataRequestTopic::default();
    t.name = Some(km::TopicName("zero-copy".to_string().into()));
    metadata.topics = Some(vec![t]);
    let topic_id = raw.send(12, &metadata).topics[0].topic_id;

    // What the log holds: the batches as sent, with the base offset and leader epoch set.
    let stored = |batch: &Bytes, offset: i64| {
        let mut b = batch.to_vec();
        b[0..8].copy_from_slice(&offset.to_be_bytes());
        b[12..16].copy_from_slice(&0i32.to_be_bytes());
        b
    };
    let big: Vec<u8> = sent
        .iter()
        .enumerate()
        .flat_map(|(i, b)| stored(b, i as i64))
        .collect();
    let small_stored = stored(&small, 0);

    for version in 4..=18i16 {
        let mut ft = km::fetch_request::FetchTopic::default();
        if version >= 13 {
            ft.topic_id = topic_id;
        } else {
            ft.topic = km::TopicName("zero-copy".to_string().into());
        }
        for partition in 0..2 {
            let mut p = km::fetch_request::FetchPartition::default();
            p.partition = partition;
            p.partition_max_bytes = 1 << 20;
            p.current_leader_epoch = -1;
            if version >= 5 {
                p.log_start_offset = -1;
            }
            ft.partitions.push(p);
        }
        let mut request = km::FetchRequest::default();
        request.replica_id = km::BrokerId(-1);
        request.max_bytes = 50 << 20;
        request.min_bytes = 1;
        if version >= 7 {
            request.session_epoch = -1;
        }
        request.topics = vec![ft];
        let response = raw.send(version, &request);
        let partitions = &response.responses[0].partitions;
        assert_eq!(partitions.len(), 2, "v{version}");
        assert_eq!(partitions[0].error_code, 0, "v{version}");
        assert_eq!(partitions[0].high_watermark, 3, "v{version}");
        let records = partitions[0].records.as_ref().expect("records");
        assert_eq!(records.len(), big.len(), "v{version}: partition 0 length");
        assert!(
            records[..] == big[..],
            "v{version}: partition 0 bytes differ"
        );
        assert_eq!(partitions[1].error_code, 0, "v{version}");
        assert_eq!(
            partitions[1].records.as_deref(),
            Some(&small_stored[..]),
            "v{version}: partition 1"
        );
    }
    // The connection is still in step: a plain fetch answers after all those frames.
    assert_eq!(
        batch_base_offsets(fetch(&mut raw, "zero-copy", 1, 0).records.unwrap()),
        vec![1, 2]
    );
}

// --- Issue 7 §3: authorized operations --------------------------------------------------------

/// Without an authorizer Kafka answers every operation valid for the resource type, as a
/// bitfield of `AclOperation` codes: a topic READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7,
/// DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11; a group READ, DELETE, DESCRIBE; the
/// cluster CREATE, ALTER, DESCRIBE, CLUSTER_ACTION 9, DESCRIBE_CONFIGS, ALTER_CONFIGS,
/// IDEMPOTENT_WRITE 12. Not asked for, the field is `i32::MIN`.
const TOPIC_OPERATIONS: i32 = 3576;
const GROUP_OPERATIONS: i32 = 328;
const CLUSTER_OPERATIONS: i32 = 8096;

#[test]
fn authorized_operations_are_kafkas_bitfields_when_asked_for() {
    assert_eq!(
        TOPIC_OPERATIONS,
        [3, 4, 5, 6, 7, 8, 10, 11]
            .iter()
            .map(|b| 1 << b)
            .sum::<i32>()
    );
    assert_eq!(
        GROUP_OPERATIONS,
        [3, 6, 8].iter().map(|b| 1 << b).sum::<i32>()
    );
    assert_eq!(
        CLUSTER_OPERATIONS,
        [5, 7, 8, 9, 10, 11, 12].iter().map(|b| 1 << b).sum::<i32>()
    );
    let broker = TestBroker::start(&["auto.create.topics.enable=false"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "ops", 1, &[]);
    let mut raw = RawClient::connect(&bootstrap);

    // DescribeCluster, every version.
    for version in range(ApiKey::DescribeCluster) {
        for asked in [false, true] {
            let mut request = km::DescribeClusterRequest::default();
            request.include_cluster_authorized_operations = asked;
            let response = raw.send(version, &request);
            assert_eq!(response.error_code, 0);
            assert_eq!(
                response.cluster_authorized_operations,
                if asked { CLUSTER_OPERATIONS } else { i32::MIN },
                "DescribeCluster v{version} asked={asked}"
            );
        }
    }

    // Metadata: topic operations from v8, cluster operations in v8-10 only.
    let topic = |name: &str| {
        let mut t = km::metadata_request::MetadataRequestTopic::default();
        t.name = Some(km::TopicName(name.to_string().into()));
        t
    };
    for version in range(ApiKey::Metadata).filter(|v| *v >= 8) {
        for asked in [false, true] {
            let mut request = km::MetadataRequest::default();
            request.topics = Some(vec![topic("ops"), topic("no-such-topic")]);
            request.include_topic_authorized_operations = asked;
            if version <= 10 {
                request.include_cluster_authorized_operations = asked;
            }
            let response = raw.send(version, &request);
            let expected = if asked { TOPIC_OPERATIONS } else { i32::MIN };
            assert_eq!(response.topics.len(), 2);
            assert_eq!(response.topics[0].error_code, 0);
            assert_eq!(
                response.topics[0].topic_authorized_operations, expected,
                "Metadata v{version} asked={asked}: a known topic"
            );
            assert_eq!(
                response.topics[1].error_code, 3,
                "UNKNOWN_TOPIC_OR_PARTITION"
            );
            assert_eq!(
                response.topics[1].topic_authorized_operations, expected,
                "Metadata v{version} asked={asked}: Kafka describes an unknown topic's too"
            );
            let cluster = if asked && version <= 10 {
                CLUSTER_OPERATIONS
            } else {
                i32::MIN
            };
            assert_eq!(
                response.cluster_authorized_operations, cluster,
                "Metadata v{version} asked={asked}: cluster operations"
            );
        }
        // All topics.
        let mut request = km::MetadataRequest::default();
        request.topics = None;
        request.include_topic_authorized_operations = true;
        let response = raw.send(version, &request);
        assert!(!response.topics.is_empty());
        assert!(response
            .topics
            .iter()
            .all(|t| t.topic_authorized_operations == TOPIC_OPERATIONS));
    }

    // DescribeGroups from v3: a group described without error gets the group operations; an
    // unknown one at v6 (GROUP_ID_NOT_FOUND) keeps the default, as in Kafka.
    let mut commit = km::OffsetCommitRequest::default();
    commit.group_id = km::GroupId("ops-group".to_string().into());
    commit.generation_id_or_member_epoch = -1;
    let mut t = km::offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = km::TopicName("ops".to_string().into());
    let mut p = km::offset_commit_request::OffsetCommitRequestPartition::default();
    p.committed_offset = 0;
    p.committed_leader_epoch = -1;
    t.partitions = vec![p];
    commit.topics = vec![t];
    assert_eq!(raw.send(8, &commit).topics[0].partitions[0].error_code, 0);
    for version in range(ApiKey::DescribeGroups).filter(|v| *v >= 3) {
        for asked in [false, true] {
            let mut request = km::DescribeGroupsRequest::default();
            request.groups = vec![
                km::GroupId("ops-group".to_string().into()),
                km::GroupId("no-such-group".to_string().into()),
            ];
            request.include_authorized_operations = asked;
            let response = raw.send(version, &request);
            assert_eq!(response.groups[0].error_code, 0);
            assert_eq!(
                response.groups[0].authorized_operations,
                if asked { GROUP_OPERATIONS } else { i32::MIN },
                "DescribeGroups v{version} asked={asked}"
            );
            let unknown = &response.groups[1];
            let expected = if asked && unknown.error_code == 0 {
                GROUP_OPERATIONS
            } else {
                i32::MIN
            };
            assert_eq!(
                (unknown.error_code, unknown.authorized_operations),
                (if version >= 6 { 69 } else { 0 }, expected),
                "DescribeGroups v{version} asked={asked}: unknown group"
            );
        }
    }
}

/// A Metadata request that auto-creates `__consumer_offsets` (Burrow 1.2 asks for it before any
/// group exists) creates it as the coordinator would, with `offsets.topic.num.partitions`
/// partitions and compaction, and groups that map to any of its partitions then work.
#[test]
fn metadata_auto_creation_of_the_offsets_topic_uses_its_settings() {
    let broker = TestBroker::start(&["offsets.topic.num.partitions=7"]);
    let bootstrap = broker.bootstrap();
    let mut raw = RawClient::connect(&bootstrap);
    let mut request = km::MetadataRequest::default();
    let mut t = km::metadata_request::MetadataRequestTopic::default();
    t.name = Some(km::TopicName("__consumer_offsets".to_string().into()));
    request.topics = Some(vec![t]);
    let response = raw.send(0, &request);
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(
        response.topics[0].partitions.len(),
        7,
        "offsets.topic.num.partitions"
    );
    let mut r = km::describe_configs_request::DescribeConfigsResource::default();
    r.resource_type = 2;
    r.resource_name = "__consumer_offsets".to_string().into();
    r.configuration_keys = Some(vec!["cleanup.policy".to_string().into()]);
    let mut describe = km::DescribeConfigsRequest::default();
    describe.resources = vec![r];
    let configs = raw.send(1, &describe);
    assert_eq!(
        configs.results[0].configs[0].value.as_deref(),
        Some("compact")
    );
    create_topic(&bootstrap, "meta-oc", 1, &[]);
    // Groups spread over the offsets topic's partitions; every commit lands.
    for g in 0..20 {
        let group = format!("group-{g}");
        assert_eq!(
            offset_commit_old(&mut raw, 1, &group, (-1, ""), "meta-oc", &[(0, g, -1)]),
            vec![0],
            "{group}"
        );
        assert_eq!(offset_fetch_v0(&mut raw, &group, "meta-oc", &[0])[0].1, g);
    }
}
