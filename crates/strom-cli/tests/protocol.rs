//! The wire protocol edge: ApiVersions, version refusal, malformed and hostile input,
//! idempotent producer sequence checks (also across restarts), and topic ids.

mod common;

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::{self as km, ApiKey};

/// The versions of `key` Strom supports.
fn range(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = strom_broker::dispatch::supported_range(key).expect("supported");
    min..=max
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
    let mut p = km::fetch_request::FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    p.current_leader_epoch = -1;
    let mut t = km::fetch_request::FetchTopic::default();
    t.topic = km::TopicName(topic.to_string().into());
    t.partitions = vec![p];
    let mut request = km::FetchRequest::default();
    request.replica_id = km::BrokerId(-1);
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = 50 << 20;
    request.session_epoch = -1;
    request.topics = vec![t];
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
    let implemented: Vec<(i16, i16, i16)> = strom_broker::dispatch::SUPPORTED
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
    let mut seed = 0x1234_5678_9abc_def0u64;
    for _ in 0..50 {
        let mut raw = RawClient::connect(&bootstrap);
        let junk: Vec<u8> = (0..64)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
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
