//! What the broker checks inside a produced batch (issue 7 §1 and §3): it computes a batch's max
//! timestamp itself (a header that says -1, too little or too much is corrected on disk, for
//! uncompressed and compressed batches), ListOffsets and time retention then use the true
//! timestamps, timestamps outside the configured bounds are INVALID_TIMESTAMP, and a batch
//! refused for some of its records lists exactly those in `record_errors` (KIP-467, Produce v8+)
//! — which librdkafka turns into INVALID_RECORD for them and `_INVALID_DIFFERENT_RECORD` for the
//! rest.

mod common;

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::{self as km};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One record to encode: timestamp delta from the batch's base timestamp, and key.
struct Rec {
    timestamp_delta: i64,
    key: Option<&'static [u8]>,
}

fn rec(timestamp_delta: i64) -> Rec {
    Rec {
        timestamp_delta,
        key: Some(b"key"),
    }
}

/// Encodes a v2 batch (base offset 0, no producer) whose header claims `header_max`, with the
/// records compressed by `codec` (0 none, 1 gzip, 3 lz4, 4 zstd). A second encoder, written
/// here independently of the broker's.
fn batch(records: &[Rec], base_timestamp: i64, header_max: i64, codec: u8) -> Bytes {
    fn varint(buf: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            buf.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
        buf.push(z as u8);
    }
    let mut section = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut body = vec![0u8];
        varint(&mut body, r.timestamp_delta);
        varint(&mut body, i as i64);
        match r.key {
            Some(k) => {
                varint(&mut body, k.len() as i64);
                body.extend_from_slice(k);
            }
            None => varint(&mut body, -1),
        }
        let value = format!("value {i} padded to make the batch worth compressing");
        varint(&mut body, value.len() as i64);
        body.extend_from_slice(value.as_bytes());
        varint(&mut body, 0);
        varint(&mut section, body.len() as i64);
        section.extend_from_slice(&body);
    }
    let section = match codec {
        0 => section,
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&section).unwrap();
            e.finish().unwrap()
        }
        3 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(&section).unwrap();
            e.finish().unwrap()
        }
        4 => zstd::stream::encode_all(&section[..], 3).unwrap(),
        _ => unreachable!(),
    };
    let mut tail = BytesMut::new();
    tail.put_i16(codec as i16);
    tail.put_i32(records.len() as i32 - 1);
    tail.put_i64(base_timestamp);
    tail.put_i64(header_max);
    tail.put_i64(-1);
    tail.put_i16(-1);
    tail.put_i32(-1);
    tail.put_i32(records.len() as i32);
    tail.extend_from_slice(&section);
    let mut out = BytesMut::new();
    out.put_i64(0);
    out.put_i32((4 + 1 + 4 + tail.len()) as i32);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(crc32c::crc32c(&tail));
    out.extend_from_slice(&tail);
    out.freeze()
}

fn produce_request(topic: &str, records: Bytes) -> km::ProduceRequest {
    let mut data = km::produce_request::PartitionProduceData::default();
    data.records = Some(records);
    let mut t = km::produce_request::TopicProduceData::default();
    t.name = km::TopicName(topic.to_string().into());
    t.partition_data = vec![data];
    let mut request = km::ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![t];
    request
}

fn produce_at(
    raw: &mut RawClient,
    version: i16,
    topic: &str,
    records: Bytes,
) -> km::produce_response::PartitionProduceResponse {
    let response = raw.send(version, &produce_request(topic, records));
    response.responses[0].partition_responses[0].clone()
}

/// (offset, timestamp) ListOffsets v8 answers for `timestamp` (-1 latest, -2 earliest, -3 max).
fn list_offset(raw: &mut RawClient, topic: &str, timestamp: i64) -> (i64, i64) {
    let mut request = km::ListOffsetsRequest::default();
    request.replica_id = km::BrokerId(-1);
    let mut t = km::list_offsets_request::ListOffsetsTopic::default();
    t.name = km::TopicName(topic.to_string().into());
    let mut p = km::list_offsets_request::ListOffsetsPartition::default();
    p.timestamp = timestamp;
    p.current_leader_epoch = -1;
    t.partitions = vec![p];
    request.topics = vec![t];
    let response = raw.send(8, &request);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "ListOffsets {topic} {timestamp}");
    (p.offset, p.timestamp)
}

/// The headers of every batch of `topic` from `offset` on, each checked for a correct CRC-32C:
/// (base offset, base timestamp, max timestamp).
fn stored_headers(raw: &mut RawClient, topic: &str, offset: i64) -> Vec<(i64, i64, i64)> {
    let response = raw.send(12, &fetch_request(topic, offset));
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    let mut records = response.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let mut out = Vec::new();
    while records.len() >= 61 {
        let len = i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize + 12;
        let whole = records.split_to(len);
        let crc = u32::from_be_bytes(whole[17..21].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&whole[21..]), "stored CRC is valid");
        let mut h = &whole[..];
        let base_offset = h.get_i64();
        h.advance(27 - 8);
        let base_timestamp = h.get_i64();
        let max_timestamp = h.get_i64();
        out.push((base_offset, base_timestamp, max_timestamp));
    }
    out
}

const CODECS: [(u8, &str); 4] = [(0, "none"), (1, "gzip"), (3, "lz4"), (4, "zstd")];

/// 10 records, timestamps `base + (3 * i) % 10` (0, 3, 6, 9, 2, 5, 8, 1, 4, 7): the largest,
/// `base + 9`, is record 3; the first at or above `base + 5` is record 2 (`base + 6`).
fn unordered() -> Vec<Rec> {
    (0..10).map(|i| rec((3 * i) % 10)).collect()
}

/// Headers claiming -1, too little, and too much: the broker stores the true maximum for
/// uncompressed batches, and for compressed ones wherever the header is implausible (-1 or below
/// the base timestamp) or bounds are configured; ListOffsets by timestamp and MAX_TIMESTAMP are
/// then exact.
#[test]
fn untrusted_max_timestamps_are_corrected_on_disk() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let mut raw = RawClient::connect(&bootstrap);
    let year_ms = (365 * 24 * 3_600_000i64).to_string();
    for (codec, name) in CODECS {
        for bounded in [false, true] {
            let topic = format!("ts-{name}-{bounded}");
            let configs: &[(&str, &str)] = if bounded {
                &[("message.timestamp.after.max.ms", &year_ms)]
            } else {
                &[]
            };
            create_topic(&bootstrap, &topic, 1, configs);
            // -1, too small, too large, honest; base timestamps one second apart.
            let claims = [-1, 5, 3_000_000_000, 4_000_009];
            for (i, claim) in claims.iter().enumerate() {
                let base = 1_000_000 * (i as i64 + 1);
                let response = produce_at(
                    &mut raw,
                    9,
                    &topic,
                    batch(&unordered(), base, *claim, codec),
                );
                assert_eq!(
                    response.error_code, 0,
                    "{topic}: {:?}",
                    response.error_message
                );
            }
            let headers = stored_headers(&mut raw, &topic, 0);
            assert_eq!(headers.len(), 4, "{topic}");
            let maxima: Vec<i64> = headers.iter().map(|h| h.2).collect();
            // A compressed batch with a plausible lie (at or above its base timestamp) is kept
            // as sent unless bounds are configured: finding it would mean inflating every batch.
            let too_large_kept = codec != 0 && !bounded;
            let expected_too_large = if too_large_kept {
                3_000_000_000
            } else {
                3_000_009
            };
            assert_eq!(
                maxima,
                vec![1_000_009, 2_000_009, expected_too_large, 4_000_009],
                "{topic}"
            );
            // By timestamp: exact records inside each batch.
            assert_eq!(
                list_offset(&mut raw, &topic, 1_000_005),
                (2, 1_000_006),
                "{topic}"
            );
            assert_eq!(
                list_offset(&mut raw, &topic, 1_000_009),
                (3, 1_000_009),
                "{topic}"
            );
            assert_eq!(
                list_offset(&mut raw, &topic, 2_000_000),
                (10, 2_000_000),
                "{topic}"
            );
            assert_eq!(
                list_offset(&mut raw, &topic, 2_000_007),
                (13, 2_000_009),
                "{topic}"
            );
            assert_eq!(
                list_offset(&mut raw, &topic, 3_000_008),
                (23, 3_000_009),
                "{topic}"
            );
            // A kept lie is inflated by the lookup and passed over.
            assert_eq!(
                list_offset(&mut raw, &topic, 3_000_010),
                (30, 4_000_000),
                "{topic}"
            );
            if !too_large_kept {
                assert_eq!(
                    list_offset(&mut raw, &topic, -3),
                    (33, 4_000_009),
                    "{topic}"
                );
            }
        }
    }
}

/// Time retention reads the corrected timestamps: of two batches whose headers both said -1
/// (which the old code read as the oldest possible, deleting both), only the one whose records
/// are old goes.
#[test]
fn time_retention_uses_the_true_timestamps() {
    let broker = TestBroker::start(&["log.retention.check.interval.ms=100"]);
    let bootstrap = broker.bootstrap();
    create_topic(
        &bootstrap,
        "aged",
        1,
        &[("retention.ms", "60000"), ("segment.bytes", "600")],
    );
    let mut raw = RawClient::connect(&bootstrap);
    let now = now_ms();
    let old = batch(&unordered(), now - 600_000, -1, 0);
    let young = batch(&unordered(), now, -1, 0);
    assert!(old.len() > 600, "one batch per segment");
    assert_eq!(produce_at(&mut raw, 9, "aged", old).error_code, 0);
    assert_eq!(produce_at(&mut raw, 9, "aged", young).error_code, 0);
    wait_until(
        "retention deletes the old batch",
        Duration::from_secs(10),
        || list_offset(&mut raw, "aged", -2).0 == 10,
    );
    // Several retention passes later the young batch is still there.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(list_offset(&mut raw, "aged", -2), (10, -1));
    assert_eq!(list_offset(&mut raw, "aged", -1).0, 20);
    assert_eq!(list_offset(&mut raw, "aged", now - 700_000), (10, now));
    assert_eq!(
        stored_headers(&mut raw, "aged", 10),
        vec![(10, now, now + 9)]
    );
}

/// Timestamps out of the configured bounds: INVALID_TIMESTAMP (32); from Produce v8 the response
/// lists exactly those records and says why; v3–v7 get the error code alone. Nothing is written.
#[test]
fn timestamps_out_of_bounds_are_invalid_timestamp_with_record_errors() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(
        &bootstrap,
        "bounded",
        1,
        &[
            ("message.timestamp.before.max.ms", "3600000"),
            ("message.timestamp.after.max.ms", "3600000"),
        ],
    );
    let mut raw = RawClient::connect(&bootstrap);
    let now = now_ms();
    let hour = 3_600_000;
    // Records 1 (two hours old) and 3 (two hours ahead) are out of bounds.
    let records = [rec(0), rec(-2 * hour), rec(1), rec(2 * hour), rec(2)];
    for (codec, name) in CODECS {
        let bytes = batch(&records, now, now + 2 * hour, codec);
        for version in [8, 9] {
            let p = produce_at(&mut raw, version, "bounded", bytes.clone());
            assert_eq!(p.error_code, 32, "{name} v{version}");
            let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(indexes, vec![1, 3], "{name} v{version}");
            let first = p.record_errors[0]
                .batch_index_error_message
                .as_deref()
                .unwrap();
            assert!(
                first.contains("record 1")
                    && first.contains("message.timestamp.before.max.ms=3600000"),
                "{first}"
            );
            let second = p.record_errors[1]
                .batch_index_error_message
                .as_deref()
                .unwrap();
            assert!(
                second.contains("record 3")
                    && second.contains("message.timestamp.after.max.ms=3600000"),
                "{second}"
            );
            let message = p.error_message.as_deref().unwrap();
            assert!(message.contains("2 of 5 records"), "{message}");
        }
        for version in [3, 5, 7] {
            let p = produce_at(&mut raw, version, "bounded", bytes.clone());
            if name == "zstd" && version < 7 {
                // KIP-110: zstd needs Produce v7, whatever the records hold.
                assert_eq!(p.error_code, 76, "{name} v{version}");
                continue;
            }
            assert_eq!(p.error_code, 32, "{name} v{version}");
            assert!(p.record_errors.is_empty() && p.error_message.is_none());
        }
        // Within bounds: accepted.
        let fine = batch(&[rec(0), rec(-hour / 2), rec(hour / 2)], now, now, codec);
        assert_eq!(
            produce_at(&mut raw, 9, "bounded", fine).error_code,
            0,
            "{name}"
        );
    }
    assert_eq!(
        list_offset(&mut raw, "bounded", -1).0,
        12,
        "only the good batches"
    );
}

/// Keyless records on a compacted topic: INVALID_RECORD (87) listing exactly those records at
/// v8+, the code alone before.
#[test]
fn keyless_records_on_a_compacted_topic_are_listed_in_record_errors() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "keyed", 1, &[("cleanup.policy", "compact")]);
    let mut raw = RawClient::connect(&bootstrap);
    let keyless = |timestamp_delta| Rec {
        timestamp_delta,
        key: None,
    };
    let records = [rec(0), keyless(1), rec(2), keyless(3), keyless(4), rec(5)];
    for (codec, name) in CODECS {
        let bytes = batch(&records, 1_000, 1_005, codec);
        let p = produce_at(&mut raw, 9, "keyed", bytes.clone());
        assert_eq!(p.error_code, 87, "{name}");
        let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, vec![1, 3, 4], "{name}");
        for e in &p.record_errors {
            let message = e.batch_index_error_message.as_deref().unwrap();
            assert!(
                message.contains("no key") && message.contains("keyed-0"),
                "{message}"
            );
        }
        assert!(p
            .error_message
            .as_deref()
            .unwrap()
            .contains("3 of 6 records"));
        let p = produce_at(&mut raw, 7, "keyed", bytes);
        assert_eq!(p.error_code, 87, "{name} v7");
        assert!(p.record_errors.is_empty() && p.error_message.is_none());
    }
    assert_eq!(list_offset(&mut raw, "keyed", -1).0, 0, "nothing written");
}

/// A real librdkafka producer sends keyed and keyless records to a compacted topic in one
/// batch: the keyless ones fail with INVALID_RECORD, the others with the local
/// `_INVALID_DIFFERENT_RECORD` (librdkafka reads `record_errors`, Produce v8+), and a later
/// batch of keyed records goes through.
#[test]
fn librdkafka_fails_only_the_keyless_records() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "mixed", 1, &[("cleanup.policy", "compact")]);
    let producer = producer(&bootstrap, &[("linger.ms", "200"), ("retries", "0")]);
    let rt = client_runtime();
    let keys: [Option<&str>; 6] = [Some("a"), None, Some("b"), None, Some("c"), Some("d")];
    let deliveries: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let value = format!("v{i}");
            let mut record = FutureRecord::<str, str>::to("mixed")
                .payload(&value)
                .partition(0);
            if let Some(key) = key {
                record = record.key(*key);
            }
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("queued")
        })
        .collect();
    let outcomes: Vec<Option<RDKafkaErrorCode>> = rt.block_on(async {
        let mut out = Vec::new();
        for delivery in deliveries {
            out.push(match delivery.await.expect("not cancelled") {
                Ok(_) => None,
                Err((KafkaError::MessageProduction(code), _)) => Some(code),
                Err((other, _)) => panic!("unexpected error {other:?}"),
            });
        }
        out
    });
    let expected: Vec<Option<RDKafkaErrorCode>> = keys
        .iter()
        .map(|key| {
            Some(match key {
                None => RDKafkaErrorCode::InvalidRecord,
                Some(_) => RDKafkaErrorCode::InvalidDifferentRecord,
            })
        })
        .collect();
    assert_eq!(outcomes, expected);
    let mut raw = RawClient::connect(&bootstrap);
    assert_eq!(list_offset(&mut raw, "mixed", -1).0, 0, "nothing written");
    let delivery =
        producer.send_result(FutureRecord::to("mixed").key("k").payload("v").partition(0));
    let outcome = rt.block_on(delivery.map_err(|(e, _)| e).expect("queued"));
    assert!(matches!(outcome, Ok(Ok(_))), "{outcome:?}");
}

/// The deprecated `message.timestamp.difference.max.ms` bounds both sides while the new keys are
/// at their defaults, as in Kafka 3.6–3.9; a new key that is set wins on its side.
#[test]
fn the_deprecated_difference_key_still_bounds_timestamps() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(
        &bootstrap,
        "diff",
        1,
        &[("message.timestamp.difference.max.ms", "3600000")],
    );
    create_topic(
        &bootstrap,
        "diff-after",
        1,
        &[
            ("message.timestamp.difference.max.ms", "3600000"),
            ("message.timestamp.after.max.ms", "86400000"),
        ],
    );
    let mut raw = RawClient::connect(&bootstrap);
    let now = now_ms();
    let hour = 3_600_000;
    let records = [rec(0), rec(-2 * hour), rec(2 * hour)];
    let p = produce_at(&mut raw, 9, "diff", batch(&records, now, now + 2 * hour, 0));
    assert_eq!(p.error_code, 32);
    let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, vec![1, 2]);
    let p = produce_at(
        &mut raw,
        9,
        "diff-after",
        batch(&records, now, now + 2 * hour, 0),
    );
    assert_eq!(p.error_code, 32);
    let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(
        indexes,
        vec![1],
        "after.max.ms=1 day admits the record 2 h ahead"
    );
}
