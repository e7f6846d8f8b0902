//! The wire protocol edge: ApiVersions, version refusal, malformed and hostile input,
//! idempotent producer sequence checks (also across restarts), and topic ids.

mod common;

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::{self as km, ApiKey};

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

fn init_producer_id(raw: &mut RawClient) -> (i64, i16) {
    let mut request = km::InitProducerIdRequest::default();
    request.transactional_id = None;
    request.transaction_timeout_ms = 60_000;
    request.producer_id = km::ProducerId(-1);
    request.producer_epoch = -1;
    let response = raw.send(4, &request);
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
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

/// Every supported API answers at every supported version with a response that decodes. A
/// response field set in a version that lacks it makes the encoder fail, and the client would
/// get no answer: this catches that for each handler and version.
#[test]
fn every_api_answers_at_every_supported_version() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "versions", 1, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    assert_eq!(
        produce(
            &mut raw,
            "versions",
            record_batch(&[(None, b"v")], -1, -1, -1, 1)
        )
        .error_code,
        0
    );
    let topic = || km::TopicName("versions".to_string().into());
    for v in range(ApiKey::ApiVersions) {
        let mut request = km::ApiVersionsRequest::default();
        if v >= 3 {
            request.client_software_name = "strom-test".to_string().into();
            request.client_software_version = "1".to_string().into();
        }
        assert_eq!(raw.send(v, &request).error_code, 0, "ApiVersions v{v}");
    }
    for v in range(ApiKey::Metadata) {
        let mut request = km::MetadataRequest::default();
        let mut t = km::metadata_request::MetadataRequestTopic::default();
        t.name = Some(topic());
        request.topics = Some(vec![t]);
        let response = raw.send(v, &request);
        assert_eq!(response.topics[0].error_code, 0, "Metadata v{v}");
        assert_eq!(response.topics[0].partitions.len(), 1, "Metadata v{v}");
        // All topics: null list from v1, empty list in v0.
        let mut all = km::MetadataRequest::default();
        all.topics = if v == 0 { Some(vec![]) } else { None };
        assert!(
            !raw.send(v, &all).topics.is_empty(),
            "Metadata v{v} all topics"
        );
    }
    // Produce v0-v2 and Fetch v0-v3 (message sets, kafka-protocol 0.14's shapes) are sent by
    // tests/legacy_formats.rs at every version.
    for v in range(ApiKey::Produce).filter(|v| *v >= 3) {
        let mut request = produce_request(
            "versions",
            0,
            record_batch(&[(None, b"p")], -1, -1, -1, 1),
            -1,
        );
        if v >= 13 {
            let id = raw
                .send(12, &{
                    let mut m = km::MetadataRequest::default();
                    let mut t = km::metadata_request::MetadataRequestTopic::default();
                    t.name = Some(topic());
                    m.topics = Some(vec![t]);
                    m
                })
                .topics[0]
                .topic_id;
            request.topic_data[0].name = km::TopicName(Default::default());
            request.topic_data[0].topic_id = id;
        }
        request.transactional_id = None;
        let response = raw.send(v, &request);
        assert_eq!(
            response.responses[0].partition_responses[0].error_code, 0,
            "Produce v{v}"
        );
    }
    for v in range(ApiKey::Fetch).filter(|v| *v >= 4) {
        if v >= 13 {
            continue; // topic ids: covered by topic_ids_in_metadata_and_fetch
        }
        let mut p = km::fetch_request::FetchPartition::default();
        p.fetch_offset = 0;
        p.partition_max_bytes = 1 << 20;
        p.current_leader_epoch = -1;
        let mut t = km::fetch_request::FetchTopic::default();
        t.topic = topic();
        t.partitions = vec![p];
        let mut request = km::FetchRequest::default();
        request.replica_id = km::BrokerId(-1);
        request.max_bytes = 1 << 20;
        request.session_epoch = -1;
        request.topics = vec![t];
        let response = raw.send(v, &request);
        assert_eq!(
            response.responses[0].partitions[0].error_code, 0,
            "Fetch v{v}"
        );
        assert!(
            response.responses[0].partitions[0]
                .records
                .as_ref()
                .is_some_and(|r| !r.is_empty()),
            "Fetch v{v} returns data"
        );
    }
    for v in range(ApiKey::ListOffsets) {
        let mut request = km::ListOffsetsRequest::default();
        request.replica_id = km::BrokerId(-1);
        let mut t = km::list_offsets_request::ListOffsetsTopic::default();
        t.name = topic();
        let mut p = km::list_offsets_request::ListOffsetsPartition::default();
        p.timestamp = -1;
        p.current_leader_epoch = -1;
        t.partitions = vec![p];
        request.topics = vec![t];
        let response = raw.send(v, &request);
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "ListOffsets v{v}"
        );
        assert!(
            response.topics[0].partitions[0].offset > 0,
            "ListOffsets v{v}"
        );
    }
    for v in range(ApiKey::CreateTopics) {
        let mut t = km::create_topics_request::CreatableTopic::default();
        t.name = km::TopicName(format!("created-v{v}").into());
        t.num_partitions = 1;
        t.replication_factor = 1;
        let mut request = km::CreateTopicsRequest::default();
        request.topics = vec![t];
        request.timeout_ms = 5000;
        let response = raw.send(v, &request);
        assert_eq!(response.topics[0].error_code, 0, "CreateTopics v{v}");
    }
    for v in range(ApiKey::DeleteTopics) {
        let mut request = km::DeleteTopicsRequest::default();
        let name = km::TopicName(format!("created-v{}", v + 1).into());
        if v >= 6 {
            let mut state = km::delete_topics_request::DeleteTopicState::default();
            state.name = Some(name);
            request.topics = vec![state];
        } else {
            request.topic_names = vec![name];
        }
        request.timeout_ms = 5000;
        let response = raw.send(v, &request);
        assert_eq!(response.responses[0].error_code, 0, "DeleteTopics v{v}");
    }
    for v in range(ApiKey::DescribeConfigs) {
        let mut r = km::describe_configs_request::DescribeConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = "versions".to_string().into();
        r.configuration_keys = None;
        let mut request = km::DescribeConfigsRequest::default();
        request.resources = vec![r];
        request.include_synonyms = true;
        request.include_documentation = v >= 3;
        let response = raw.send(v, &request);
        assert_eq!(response.results[0].error_code, 0, "DescribeConfigs v{v}");
        assert!(
            response.results[0]
                .configs
                .iter()
                .any(|c| c.name.as_str() == "retention.ms"),
            "DescribeConfigs v{v}"
        );
    }
    for v in range(ApiKey::AlterConfigs) {
        let mut c = km::alter_configs_request::AlterableConfig::default();
        c.name = "retention.ms".to_string().into();
        c.value = Some(format!("{}", 1_000_000 + v as i64).into());
        let mut r = km::alter_configs_request::AlterConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = "versions".to_string().into();
        r.configs = vec![c];
        let mut request = km::AlterConfigsRequest::default();
        request.resources = vec![r];
        assert_eq!(
            raw.send(v, &request).responses[0].error_code,
            0,
            "AlterConfigs v{v}"
        );
    }
    for v in range(ApiKey::IncrementalAlterConfigs) {
        let mut c = km::incremental_alter_configs_request::AlterableConfig::default();
        c.name = "segment.ms".to_string().into();
        c.value = Some("600000".to_string().into());
        let mut r = km::incremental_alter_configs_request::AlterConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = "versions".to_string().into();
        r.configs = vec![c];
        let mut request = km::IncrementalAlterConfigsRequest::default();
        request.resources = vec![r];
        assert_eq!(
            raw.send(v, &request).responses[0].error_code,
            0,
            "IncrementalAlterConfigs v{v}"
        );
    }
    for v in range(ApiKey::CreatePartitions) {
        let mut t = km::create_partitions_request::CreatePartitionsTopic::default();
        t.name = topic();
        t.count = 2 + v as i32;
        t.assignments = None;
        let mut request = km::CreatePartitionsRequest::default();
        request.topics = vec![t];
        request.timeout_ms = 5000;
        assert_eq!(
            raw.send(v, &request).results[0].error_code,
            0,
            "CreatePartitions v{v}"
        );
    }
    for v in range(ApiKey::DeleteRecords) {
        let mut p = km::delete_records_request::DeleteRecordsPartition::default();
        p.offset = 1 + v as i64;
        let mut t = km::delete_records_request::DeleteRecordsTopic::default();
        t.name = topic();
        t.partitions = vec![p];
        let mut request = km::DeleteRecordsRequest::default();
        request.topics = vec![t];
        request.timeout_ms = 5000;
        let response = raw.send(v, &request);
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "DeleteRecords v{v}"
        );
        assert_eq!(response.topics[0].partitions[0].low_watermark, 1 + v as i64);
    }
    for v in range(ApiKey::InitProducerId) {
        let mut request = km::InitProducerIdRequest::default();
        request.transactional_id = None;
        request.transaction_timeout_ms = 60_000;
        request.producer_id = km::ProducerId(-1);
        request.producer_epoch = -1;
        let response = raw.send(v, &request);
        assert_eq!(response.error_code, 0, "InitProducerId v{v}");
        assert!(response.producer_id.0 >= 0);
    }
    for v in range(ApiKey::DescribeCluster) {
        let response = raw.send(v, &km::DescribeClusterRequest::default());
        assert_eq!(response.error_code, 0, "DescribeCluster v{v}");
        assert_eq!(response.brokers.len(), 1);
    }
}

/// The group APIs answer at every supported version (see the test above for why).
#[test]
fn every_group_api_answers_at_every_supported_version() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "gv", 1, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    let gid = |s: &str| km::GroupId(s.to_string().into());
    for v in range(ApiKey::FindCoordinator) {
        let mut request = km::FindCoordinatorRequest::default();
        if v >= 4 {
            request.coordinator_keys = vec!["g".to_string().into()];
            let response = raw.send(v, &request);
            assert_eq!(
                response.coordinators[0].error_code, 0,
                "FindCoordinator v{v}"
            );
        } else {
            request.key = "g".to_string().into();
            let response = raw.send(v, &request);
            assert_eq!(response.error_code, 0, "FindCoordinator v{v}");
            assert!(response.port > 0);
        }
    }
    // Joins a fresh one-member group at JoinGroup version `v`; returns (member id, generation).
    let join = |raw: &mut RawClient, group: &str, v: i16| -> (String, i32) {
        let mut request = km::JoinGroupRequest::default();
        request.group_id = gid(group);
        request.session_timeout_ms = 10_000;
        if v >= 1 {
            request.rebalance_timeout_ms = 10_000;
        }
        request.protocol_type = "consumer".to_string().into();
        let mut protocol = km::join_group_request::JoinGroupRequestProtocol::default();
        protocol.name = "range".to_string().into();
        protocol.metadata = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        request.protocols = vec![protocol];
        let mut response = raw.send(v, &request);
        if v >= 4 {
            assert_eq!(
                response.error_code, 79,
                "JoinGroup v{v} asks for a member id"
            );
            request.member_id = response.member_id.clone();
            response = raw.send(v, &request);
        }
        assert_eq!(response.error_code, 0, "JoinGroup v{v}");
        assert_eq!(
            response.members.len(),
            1,
            "JoinGroup v{v}: the leader gets the members"
        );
        (response.member_id.to_string(), response.generation_id)
    };
    for v in range(ApiKey::JoinGroup) {
        join(&mut raw, &format!("join-v{v}"), v);
    }
    for v in range(ApiKey::SyncGroup) {
        let group = format!("sync-v{v}");
        let (member, generation) = join(&mut raw, &group, 5);
        let mut request = km::SyncGroupRequest::default();
        request.group_id = gid(&group);
        request.member_id = member.clone().into();
        request.generation_id = generation;
        if v >= 5 {
            request.protocol_type = Some("consumer".to_string().into());
            request.protocol_name = Some("range".to_string().into());
        }
        let mut a = km::sync_group_request::SyncGroupRequestAssignment::default();
        a.member_id = member.clone().into();
        a.assignment = Bytes::from_static(b"x");
        request.assignments = vec![a];
        let response = raw.send(v, &request);
        assert_eq!(
            (response.error_code, &response.assignment[..]),
            (0, &b"x"[..]),
            "SyncGroup v{v}"
        );
    }
    for v in range(ApiKey::Heartbeat) {
        let group = format!("hb-v{v}");
        let (member, generation) = join(&mut raw, &group, 5);
        let mut request = km::HeartbeatRequest::default();
        request.group_id = gid(&group);
        request.member_id = member.into();
        request.generation_id = generation;
        let code = raw.send(v, &request).error_code;
        assert_eq!(code, 0, "Heartbeat v{v}");
    }
    for v in range(ApiKey::ListGroups) {
        let response = raw.send(v, &km::ListGroupsRequest::default());
        assert!(response.groups.len() >= 10, "ListGroups v{v}");
    }
    for v in range(ApiKey::DescribeGroups) {
        let mut request = km::DescribeGroupsRequest::default();
        let group = format!("describe-v{v}");
        join(&mut raw, &group, 5);
        request.groups = vec![gid(&group)];
        let response = raw.send(v, &request);
        assert_eq!(response.groups[0].members.len(), 1, "DescribeGroups v{v}");
    }
    for v in range(ApiKey::LeaveGroup) {
        let group = format!("leave-v{v}");
        let (member, _) = join(&mut raw, &group, 5);
        let mut request = km::LeaveGroupRequest::default();
        request.group_id = gid(&group);
        if v >= 3 {
            let mut identity = km::leave_group_request::MemberIdentity::default();
            identity.member_id = member.into();
            request.members = vec![identity];
            let response = raw.send(v, &request);
            assert_eq!(response.members[0].error_code, 0, "LeaveGroup v{v}");
        } else {
            request.member_id = member.into();
            assert_eq!(raw.send(v, &request).error_code, 0, "LeaveGroup v{v}");
        }
    }
    for v in range(ApiKey::OffsetCommit) {
        let mut request = km::OffsetCommitRequest::default();
        request.group_id = gid("committer");
        request.generation_id_or_member_epoch = -1;
        let mut t = km::offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = km::TopicName("gv".to_string().into());
        let mut p = km::offset_commit_request::OffsetCommitRequestPartition::default();
        p.committed_offset = 10 + v as i64;
        p.committed_leader_epoch = -1;
        p.committed_metadata = Some("m".to_string().into());
        t.partitions = vec![p];
        request.topics = vec![t];
        assert_eq!(
            raw.send(v, &request).topics[0].partitions[0].error_code,
            0,
            "OffsetCommit v{v}"
        );
    }
    for v in range(ApiKey::OffsetFetch) {
        let mut request = km::OffsetFetchRequest::default();
        if v >= 8 {
            let mut g = km::offset_fetch_request::OffsetFetchRequestGroup::default();
            g.group_id = gid("committer");
            g.topics = None;
            request.groups = vec![g];
            let response = raw.send(v, &request);
            assert_eq!(
                response.groups[0].topics[0].partitions[0].committed_offset, 19,
                "OffsetFetch v{v}"
            );
        } else {
            request.group_id = gid("committer");
            let mut t = km::offset_fetch_request::OffsetFetchRequestTopic::default();
            t.name = km::TopicName("gv".to_string().into());
            t.partition_indexes = vec![0];
            request.topics = Some(vec![t]);
            let response = raw.send(v, &request);
            assert_eq!(
                response.topics[0].partitions[0].committed_offset, 19,
                "OffsetFetch v{v}"
            );
        }
    }
    for v in range(ApiKey::OffsetDelete) {
        let mut request = km::OffsetDeleteRequest::default();
        request.group_id = gid("committer");
        let mut t = km::offset_delete_request::OffsetDeleteRequestTopic::default();
        t.name = km::TopicName("gv".to_string().into());
        t.partitions = vec![km::offset_delete_request::OffsetDeleteRequestPartition::default()];
        request.topics = vec![t];
        assert_eq!(raw.send(v, &request).error_code, 0, "OffsetDelete v{v}");
    }
    for v in range(ApiKey::DeleteGroups) {
        let mut request = km::DeleteGroupsRequest::default();
        request.groups_names = vec![gid(&format!("leave-v{v}"))];
        assert_eq!(
            raw.send(v, &request).results[0].error_code,
            0,
            "DeleteGroups v{v}"
        );
    }
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

// --- Versions Kafka 4 removed (KIP-896) and Kafka 3.9 still accepted -----------------------

use kafka_protocol_3x::messages as k3;

fn topic3(name: &str) -> k3::TopicName {
    k3::TopicName(name.to_string().into())
}

/// ListOffsets v0 for one partition: (error, old_style_offsets).
fn list_offsets_v0(
    raw: &mut RawClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
    max: i32,
) -> (i16, Vec<i64>) {
    let mut p = k3::list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = timestamp;
    p.max_num_offsets = max;
    let mut t = k3::list_offsets_request::ListOffsetsTopic::default();
    t.name = topic3(topic);
    t.partitions = vec![p];
    let mut request = k3::ListOffsetsRequest::default();
    request.replica_id = k3::BrokerId(-1);
    request.topics = vec![t];
    let response = raw.send3(0, &request);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.partition_index, partition);
    (p.error_code, p.old_style_offsets.clone())
}

/// OffsetCommit v0/v1 of `(partition, offset, commit timestamp)` for one topic: the error codes.
fn offset_commit_old(
    raw: &mut RawClient,
    version: i16,
    group: &str,
    generation_and_member: (i32, &str),
    topic: &str,
    partitions: &[(i32, i64, i64)],
) -> Vec<i16> {
    let mut t = k3::offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = topic3(topic);
    for &(partition, offset, timestamp) in partitions {
        let mut p = k3::offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = partition;
        p.committed_offset = offset;
        p.committed_metadata = Some(format!("meta-{offset}").into());
        if version == 1 {
            p.commit_timestamp = timestamp;
        }
        t.partitions.push(p);
    }
    let mut request = k3::OffsetCommitRequest::default();
    request.group_id = k3::GroupId(group.to_string().into());
    if version == 1 {
        request.generation_id_or_member_epoch = generation_and_member.0;
        request.member_id = generation_and_member.1.to_string().into();
    }
    request.topics = vec![t];
    let response = raw.send3(version, &request);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// OffsetFetch v0 of `partitions`: (partition, offset, metadata, error) each.
fn offset_fetch_v0(
    raw: &mut RawClient,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<(i32, i64, String, i16)> {
    let mut t = k3::offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = topic3(topic);
    t.partition_indexes = partitions.to_vec();
    let mut request = k3::OffsetFetchRequest::default();
    request.group_id = k3::GroupId(group.to_string().into());
    request.topics = Some(vec![t]);
    let response = raw.send3(0, &request);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.committed_offset,
                p.metadata.as_deref().unwrap_or("").to_string(),
                p.error_code,
            )
        })
        .collect()
}

/// Every version Strom advertises below kafka-protocol 0.18's floor answers, with Kafka 3.9's
/// message types on the wire. The list of such APIs is checked against SUPPORTED, so a newly
/// advertised old version without a case here fails this test. (Produce v0–2 and Fetch v0–3,
/// with their message formats, have their own tests.)
#[test]
fn removed_versions_answer_at_every_advertised_version() {
    let covered = [
        ApiKey::ListOffsets,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::DescribeConfigs,
        ApiKey::DescribeLogDirs,
    ];
    for &(api, min, _) in strom_broker::protocol::request::SUPPORTED {
        if min < api.valid_versions().min && !matches!(api, ApiKey::Produce | ApiKey::Fetch) {
            assert!(covered.contains(&api), "{api:?} v{min} has no case here");
        }
    }
    let old = |api: ApiKey| {
        let (min, _) = strom_broker::protocol::request::supported_range(api).unwrap();
        min..api.valid_versions().min
    };
    // Kafka 3.9's ranges, from its own message specs: exactly what is advertised below 0.18's.
    assert_eq!(old(ApiKey::ListOffsets), 0..1);
    assert_eq!(old(ApiKey::OffsetCommit), 0..2);
    assert_eq!(old(ApiKey::OffsetFetch), 0..1);
    assert_eq!(old(ApiKey::CreateTopics), 0..2);
    assert_eq!(old(ApiKey::DeleteTopics), 0..1);
    assert_eq!(old(ApiKey::DescribeConfigs), 0..1);
    assert_eq!(old(ApiKey::DescribeLogDirs), 0..1);

    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "old", 2, &[("retention.ms", "86400000")]);
    let mut raw = RawClient::connect(&bootstrap);
    for _ in 0..3 {
        let batch = record_batch(&[(None, b"x")], -1, -1, -1, 1);
        assert_eq!(produce(&mut raw, "old", batch).error_code, 0);
    }
    for v in old(ApiKey::ListOffsets) {
        assert_eq!(
            list_offsets_v0(&mut raw, "old", 0, -1, 1),
            (0, vec![3]),
            "ListOffsets v{v}"
        );
    }
    for v in old(ApiKey::OffsetCommit) {
        let codes = offset_commit_old(
            &mut raw,
            v,
            "g-old",
            (-1, ""),
            "old",
            &[(1, 10 + v as i64, -1)],
        );
        assert_eq!(codes, vec![0], "OffsetCommit v{v}");
        assert_eq!(
            offset_fetch_v0(&mut raw, "g-old", "old", &[1]),
            vec![(1, 10 + v as i64, format!("meta-{}", 10 + v), 0)],
            "OffsetCommit v{v} read back with OffsetFetch v0"
        );
    }
    for v in old(ApiKey::CreateTopics) {
        let mut t = k3::create_topics_request::CreatableTopic::default();
        t.name = topic3(&format!("old-created-v{v}"));
        t.num_partitions = 1;
        t.replication_factor = 1;
        let mut request = k3::CreateTopicsRequest::default();
        request.topics = vec![t.clone()];
        request.timeout_ms = 5000;
        let response = raw.send3(v, &request);
        assert_eq!(response.topics[0].error_code, 0, "CreateTopics v{v}");
        // Again: TOPIC_ALREADY_EXISTS, with a message from v1.
        let response = raw.send3(v, &request);
        assert_eq!(response.topics[0].error_code, 36, "CreateTopics v{v}");
        if v >= 1 {
            let message = response.topics[0].error_message.as_deref().unwrap_or("");
            assert!(message.contains("exists"), "CreateTopics v{v}: {message}");
        }
        if v == 1 {
            // validate_only (v1+) creates nothing.
            let mut t = t.clone();
            t.name = topic3("old-validate-only");
            let mut request = request.clone();
            request.topics = vec![t];
            request.validate_only = true;
            assert_eq!(raw.send3(1, &request).topics[0].error_code, 0);
        }
    }
    let mut metadata = km::MetadataRequest::default();
    metadata.topics = None;
    let names: Vec<String> = raw
        .send(1, &metadata)
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    assert!(names.contains(&"old-created-v0".to_string()), "{names:?}");
    assert!(
        !names.contains(&"old-validate-only".to_string()),
        "{names:?}"
    );
    for v in old(ApiKey::DeleteTopics) {
        let mut request = k3::DeleteTopicsRequest::default();
        request.topic_names = vec![topic3("old-created-v0"), topic3("no-such-topic")];
        request.timeout_ms = 5000;
        let response = raw.send3(v, &request);
        let codes: Vec<(String, i16)> = response
            .responses
            .iter()
            .map(|r| (r.name.as_ref().unwrap().0.to_string(), r.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("old-created-v0".to_string(), 0),
                ("no-such-topic".to_string(), 3)
            ],
            "DeleteTopics v{v}"
        );
    }
    for v in old(ApiKey::DescribeLogDirs) {
        // Every replica (a null topic list): the topic's two partitions, each holding bytes.
        let mut request = k3::DescribeLogDirsRequest::default();
        request.topics = None;
        let response = raw.send3(v, &request);
        assert_eq!(
            response.results.len(),
            1,
            "DescribeLogDirs v{v}: one log dir"
        );
        let dir = &response.results[0];
        assert_eq!(dir.error_code, 0, "DescribeLogDirs v{v}");
        let mut sizes: Vec<(i32, bool)> = dir
            .topics
            .iter()
            .filter(|t| t.name.as_str() == "old")
            .flat_map(|t| &t.partitions)
            .map(|p| (p.partition_index, p.partition_size > 0))
            .collect();
        sizes.sort();
        // The three batches went to partition 0; partition 1 is empty.
        assert_eq!(sizes, vec![(0, true), (1, false)], "DescribeLogDirs v{v}");
    }
    for v in old(ApiKey::DescribeConfigs) {
        let mut r = k3::describe_configs_request::DescribeConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = "old".to_string().into();
        r.configuration_keys = Some(vec![
            "retention.ms".to_string().into(),
            "segment.bytes".to_string().into(),
        ]);
        let mut request = k3::DescribeConfigsRequest::default();
        request.resources = vec![r];
        let response = raw.send3(v, &request);
        assert_eq!(response.results[0].error_code, 0, "DescribeConfigs v{v}");
        let configs: Vec<(String, Option<String>, bool)> = response.results[0]
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.as_ref().map(|v| v.to_string()),
                    c.is_default,
                )
            })
            .collect();
        assert_eq!(
            configs,
            vec![
                (
                    "retention.ms".to_string(),
                    Some("86400000".to_string()),
                    false
                ),
                (
                    "segment.bytes".to_string(),
                    Some("1073741824".to_string()),
                    true
                ),
            ],
            "DescribeConfigs v{v}"
        );
    }
}

/// ListOffsets v0 answers Kafka's `max_num_offsets` semantics: segment base offsets (and the
/// log end) in descending order, chosen by the segment files' modification times.
#[test]
fn list_offsets_v0_answers_segment_offsets() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    // Small segments: each 3-record batch below fills one.
    create_topic(&bootstrap, "lo0", 1, &[("segment.bytes", "1024")]);
    let mut raw = RawClient::connect(&bootstrap);
    let value = vec![7u8; 300];
    let records: Vec<(Option<&[u8]>, &[u8])> = vec![(None, &value), (None, &value), (None, &value)];
    for _ in 0..3 {
        let batch = record_batch(&records, -1, -1, -1, 1);
        assert_eq!(produce(&mut raw, "lo0", batch).error_code, 0);
    }
    // Segments at 0, 3, 6 (the last one active, holding data), log end 9.
    assert_eq!(latest(&mut raw, "lo0"), 9);
    let far_future = 32_503_680_000_000; // the year 3000
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, -1, 1), (0, vec![9]));
    assert_eq!(
        list_offsets_v0(&mut raw, "lo0", 0, -1, 100),
        (0, vec![9, 6, 3, 0])
    );
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, -2, 100), (0, vec![0]));
    assert_eq!(
        list_offsets_v0(&mut raw, "lo0", 0, far_future, 2),
        (0, vec![9, 6])
    );
    // Before any file was written: nothing.
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, 1_000, 100), (0, vec![]));
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, -1, 0), (0, vec![]));
    // Kafka 3.9 failed on a negative count with UNKNOWN_SERVER_ERROR.
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, -1, -1), (-1, vec![]));
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 7, -1, 1), (3, vec![]));
    assert_eq!(list_offsets_v0(&mut raw, "nope", 0, -1, 1), (3, vec![]));
    // The log start offset raises the first segment's base offset.
    let mut p = km::delete_records_request::DeleteRecordsPartition::default();
    p.offset = 4;
    let mut t = km::delete_records_request::DeleteRecordsTopic::default();
    t.name = km::TopicName("lo0".to_string().into());
    t.partitions = vec![p];
    let mut request = km::DeleteRecordsRequest::default();
    request.topics = vec![t];
    request.timeout_ms = 5000;
    assert_eq!(raw.send(2, &request).topics[0].partitions[0].error_code, 0);
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, -2, 100), (0, vec![4]));
    assert_eq!(
        list_offsets_v0(&mut raw, "lo0", 0, -1, 100),
        (0, vec![9, 6, 4])
    );
}

/// OffsetCommit v0 (no generation), v1 (generation, member, commit timestamp) and OffsetFetch
/// v0 against the group coordinator: round trips, the generation checks of v1, and expiry
/// counted from v1's client-supplied commit timestamp.
#[test]
fn offset_commit_v0_v1_and_offset_fetch_v0() {
    let broker = TestBroker::start(&[
        "group.initial.rebalance.delay.ms=0",
        "offsets.retention.minutes=1440",
        "offsets.retention.check.interval.ms=100",
    ]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "oc", 3, &[]);
    let mut raw = RawClient::connect(&bootstrap);

    // v0: a commit without generation or member, read back by v0 and by a modern version.
    assert_eq!(
        offset_commit_old(&mut raw, 0, "g0", (-1, ""), "oc", &[(0, 5, -1), (2, 7, -1)]),
        vec![0, 0]
    );
    assert_eq!(
        offset_fetch_v0(&mut raw, "g0", "oc", &[0, 1, 2]),
        vec![
            (0, 5, "meta-5".to_string(), 0),
            (1, -1, String::new(), 0),
            (2, 7, "meta-7".to_string(), 0)
        ]
    );
    let mut fetch = km::OffsetFetchRequest::default();
    fetch.group_id = km::GroupId("g0".to_string().into());
    fetch.topics = None;
    let modern = raw.send(7, &fetch);
    let offsets: Vec<(i32, i64)> = modern.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(offsets, vec![(0, 5), (2, 7)]);
    // Unknown partitions are refused per partition.
    assert_eq!(
        offset_commit_old(&mut raw, 0, "g0", (-1, ""), "oc", &[(9, 1, -1)]),
        vec![3]
    );

    // v1 in a live group: its generation and member id are checked.
    let mut join = km::JoinGroupRequest::default();
    join.group_id = km::GroupId("g1".to_string().into());
    join.session_timeout_ms = 30_000;
    join.protocol_type = "consumer".to_string().into();
    let mut protocol = km::join_group_request::JoinGroupRequestProtocol::default();
    protocol.name = "range".to_string().into();
    protocol.metadata = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    join.protocols = vec![protocol];
    let joined = raw.send(0, &join);
    assert_eq!(joined.error_code, 0);
    let member = joined.member_id.to_string();
    let generation = joined.generation_id;
    let mut sync = km::SyncGroupRequest::default();
    sync.group_id = km::GroupId("g1".to_string().into());
    sync.member_id = member.clone().into();
    sync.generation_id = generation;
    assert_eq!(raw.send(0, &sync).error_code, 0);
    assert_eq!(
        offset_commit_old(
            &mut raw,
            1,
            "g1",
            (generation, &member),
            "oc",
            &[(0, 11, -1)]
        ),
        vec![0]
    );
    assert_eq!(
        offset_commit_old(
            &mut raw,
            1,
            "g1",
            (generation + 5, &member),
            "oc",
            &[(0, 12, -1)]
        ),
        vec![22],
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        offset_commit_old(
            &mut raw,
            1,
            "g1",
            (generation, "stranger"),
            "oc",
            &[(0, 13, -1)]
        ),
        vec![25],
        "UNKNOWN_MEMBER_ID"
    );
    // v0 carries no member: a group with members refuses it, and keeps its offset.
    assert_ne!(
        offset_commit_old(&mut raw, 0, "g1", (-1, ""), "oc", &[(0, 14, -1)]),
        vec![0]
    );
    assert_eq!(offset_fetch_v0(&mut raw, "g1", "oc", &[0])[0].1, 11);

    // v1 commit timestamps: Kafka keeps the client's as the commit time, and expiry
    // (offsets.retention.minutes = 1 day here, checked every 100 ms) counts from it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let day = 86_400_000;
    assert_eq!(
        offset_commit_old(
            &mut raw,
            1,
            "g-ts",
            (-1, ""),
            "oc",
            &[
                (0, 100, now - 2 * day),
                (1, 101, -1),
                (2, 102, now - day + 3_000)
            ]
        ),
        vec![0, 0, 0]
    );
    let present = |raw: &mut RawClient| -> Vec<i64> {
        offset_fetch_v0(raw, "g-ts", "oc", &[0, 1, 2])
            .into_iter()
            .map(|(_, offset, _, _)| offset)
            .collect()
    };
    wait_until(
        "the two-day-old commit expires",
        Duration::from_secs(10),
        || present(&mut raw)[0] == -1,
    );
    assert_eq!(present(&mut raw), vec![-1, 101, 102]);
    wait_until(
        "the commit dated a day minus 3 s ago expires",
        Duration::from_secs(15),
        || present(&mut raw)[2] == -1,
    );
    assert_eq!(present(&mut raw), vec![-1, 101, -1]);
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
