//! Message formats v0/v1 (magic 0 and 1) over the wire: Produce v0–v2 and Fetch v0–v3 with
//! every codec old clients use, data written by modern clients read at old versions, the zstd
//! rules of KIP-110, and librdkafka forced down to its 0.8/0.9 protocols (no ApiVersions).
//!
//! Message sets are built and parsed here by a second implementation of the format (framing
//! and CRC-32 written in this file; only the codecs themselves come from strom-log), so the
//! broker's converter is checked against it, and against librdkafka's reader.

mod common;

use std::io::Write;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::{self as km, ApiKey};
use kafka_protocol::protocol::Decodable as _;
use kafka_protocol_3x::messages as old;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::Offset;

const CORRUPT_MESSAGE: i16 = 2;
const INVALID_TIMESTAMP: i16 = 32;
const UNSUPPORTED_VERSION: i16 = 35;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const INVALID_RECORD: i16 = 87;
const CODECS: [(u8, &str); 4] = [(0, "none"), (1, "gzip"), (2, "snappy"), (3, "lz4")];
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

/// CRC-32 (IEEE, reflected 0xEDB88320), bit by bit: the checksum of message formats v0/v1.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ if crc & 1 != 0 { 0xedb8_8320 } else { 0 };
        }
    }
    !crc
}

/// One v0/v1 message with its log overhead.
fn message(
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i8(magic);
    body.put_i8(attributes);
    if magic == 1 {
        body.put_i64(timestamp);
    }
    for field in [key, value] {
        match field {
            Some(bytes) => {
                body.put_i32(bytes.len() as i32);
                body.put_slice(bytes);
            }
            None => body.put_i32(-1),
        }
    }
    let mut out = BytesMut::new();
    out.put_i64(offset);
    out.put_i32(body.len() as i32 + 4);
    out.put_u32(crc32(&body));
    out.put_slice(&body);
    out.to_vec()
}

type Sample = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

/// Records with a key, without a key, a tombstone, and a large repetitive value.
fn samples(round: usize) -> Vec<Sample> {
    let ts = |i: i64| BASE_TIMESTAMP + round as i64 * 100 + i;
    vec![
        (
            Some(format!("key-{round}").into_bytes()),
            Some(b"value".to_vec()),
            ts(0),
        ),
        (None, Some(format!("keyless-{round}").into_bytes()), ts(1)),
        (Some(b"tomb".to_vec()), None, ts(2)),
        (Some(b"big".to_vec()), Some(b"abc".repeat(3000)), ts(3)),
    ]
}

/// A message set as an old producer writes it: offsets from 0, for a wrapper absolute in
/// magic 0 and relative in magic 1 (the same numbers here), the wrapper at the last offset.
fn message_set(magic: i8, codec: u8, records: &[Sample]) -> Bytes {
    let mut plain = Vec::new();
    for (i, (k, v, ts)) in records.iter().enumerate() {
        plain.extend(message(i as i64, magic, 0, *ts, k.as_deref(), v.as_deref()));
    }
    if codec == 0 {
        return Bytes::from(plain);
    }
    let compressed = strom_log::compression::compress(codec, &plain, magic == 0).unwrap();
    let max_ts = records.iter().map(|r| r.2).max().unwrap();
    Bytes::from(message(
        records.len() as i64 - 1,
        magic,
        codec as i8,
        max_ts,
        None,
        Some(&compressed),
    ))
}

/// A record read back from a fetched message set.
#[derive(Debug, Clone, PartialEq)]
struct Read {
    offset: i64,
    magic: i8,
    timestamp: i64,
    log_append_time: bool,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// Parses a fetched message set (a trailing partial message is skipped, as clients do),
/// checking every CRC and unwrapping compressed wrappers.
fn parse_set(mut data: Bytes, inner_of: Option<(i64, i8, u8, i64)>) -> Vec<Read> {
    let mut out = Vec::new();
    while data.len() >= 12 {
        let offset = data.get_i64();
        let size = data.get_i32() as usize;
        if data.len() < size {
            assert!(inner_of.is_none(), "partial message inside a wrapper");
            break;
        }
        let mut m = data.split_to(size);
        let crc = m.get_u32();
        assert_eq!(crc, crc32(&m), "message CRC");
        let magic = m.get_i8();
        let attributes = m.get_i8() as u8;
        let timestamp = if magic == 1 { m.get_i64() } else { -1 };
        let field = |m: &mut Bytes| {
            let len = m.get_i32();
            (len >= 0).then(|| m.split_to(len as usize).to_vec())
        };
        let key = field(&mut m);
        let value = field(&mut m);
        assert!(m.is_empty(), "bytes after the value");
        let codec = attributes & 7;
        if codec != 0 {
            assert!(inner_of.is_none(), "nested compression");
            assert_eq!(key, None, "a wrapper has no key");
            let mut frame = value.expect("a wrapper has a value");
            if magic == 0 && codec == 3 {
                // KIP-57: magic 0 lz4 frames carry the old writer's header checksum.
                let mut broken = frame.clone();
                assert!(strom_log::compression::set_lz4_header_checksum(
                    &mut broken,
                    true
                ));
                assert_eq!(broken, frame, "magic 0 lz4 header checksum");
                strom_log::compression::set_lz4_header_checksum(&mut frame, false);
            }
            let inner =
                strom_log::compression::decompress(codec, &frame, usize::MAX).expect("inflates");
            let inner = parse_set(
                Bytes::from(inner),
                Some((offset, magic, attributes, timestamp)),
            );
            out.extend(inner);
            continue;
        }
        let log_append_time = magic == 1 && attributes & 8 != 0;
        out.push(Read {
            offset,
            magic,
            timestamp,
            log_append_time,
            key,
            value,
        });
    }
    if let Some((wrapper_offset, wrapper_magic, wrapper_attributes, wrapper_ts)) = inner_of {
        assert!(out.iter().all(|r| r.magic == wrapper_magic));
        if wrapper_magic == 1 {
            let last = out.last().expect("a wrapper holds messages").offset;
            for r in &mut out {
                r.offset += wrapper_offset - last;
            }
        } else {
            assert_eq!(out.last().unwrap().offset, wrapper_offset);
        }
        if wrapper_attributes & 8 != 0 {
            for r in &mut out {
                r.timestamp = wrapper_ts;
                r.log_append_time = true;
            }
        }
    }
    out
}

/// Sends a request encoded with kafka-protocol 0.14 (the versions 0.18 lacks).
fn send_old<
    Q: kafka_protocol_3x::protocol::Encodable,
    S: kafka_protocol_3x::protocol::Decodable,
>(
    raw: &mut RawClient,
    key: ApiKey,
    version: i16,
    request: &Q,
) -> S {
    let mut body = BytesMut::new();
    request.encode(&mut body, version).unwrap();
    let mut header = km::RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = 77;
    header.client_id = Some("legacy-test".to_string().into());
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    kafka_protocol::protocol::Encodable::encode(&header, &mut frame, 1).unwrap();
    frame.extend_from_slice(&body);
    let size = frame.len() as i32 - 4;
    frame[0..4].copy_from_slice(&size.to_be_bytes());
    raw.stream.write_all(&frame).unwrap();
    let mut reply = raw
        .read_frame()
        .expect("a response, not a closed connection");
    let header = km::ResponseHeader::decode(&mut reply, 0).unwrap();
    assert_eq!(header.correlation_id, 77);
    let response = S::decode(&mut reply, version).expect("response decodes");
    assert!(
        reply.is_empty(),
        "{key:?} v{version}: trailing response bytes"
    );
    response
}

/// Produce at `version` (0–2) of `records` to partition 0.
fn produce_old(
    raw: &mut RawClient,
    version: i16,
    topic: &str,
    records: Bytes,
) -> old::produce_response::PartitionProduceResponse {
    let mut p = old::produce_request::PartitionProduceData::default();
    p.index = 0;
    p.records = Some(records);
    let mut t = old::produce_request::TopicProduceData::default();
    t.name = old::TopicName(topic.to_string().into());
    t.partition_data = vec![p];
    let mut request = old::ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![t];
    let response: old::ProduceResponse = send_old(raw, ApiKey::Produce, version, &request);
    assert_eq!(response.responses.len(), 1);
    response.responses[0].partition_responses[0].clone()
}

/// Fetch at `version` (0–3) of partition 0 from `offset`.
fn fetch_old(
    raw: &mut RawClient,
    version: i16,
    topic: &str,
    offset: i64,
    partition_max_bytes: i32,
) -> old::fetch_response::PartitionData {
    let mut p = old::fetch_request::FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = offset;
    p.partition_max_bytes = partition_max_bytes;
    let mut t = old::fetch_request::FetchTopic::default();
    t.topic = old::TopicName(topic.to_string().into());
    t.partitions = vec![p];
    let mut request = old::FetchRequest::default();
    request.replica_id = old::BrokerId(-1);
    request.max_wait_ms = 100;
    request.min_bytes = 1;
    request.max_bytes = 50 << 20;
    request.topics = vec![t];
    let response: old::FetchResponse = send_old(raw, ApiKey::Fetch, version, &request);
    response.responses[0].partitions[0].clone()
}

/// Fetch at a modern `version` (4–12) of partition 0 from `offset`.
fn fetch_modern(
    raw: &mut RawClient,
    version: i16,
    topic: &str,
    offset: i64,
) -> km::fetch_response::PartitionData {
    let mut request = fetch_request(topic, offset);
    request.max_wait_ms = 100;
    raw.send(version, &request).responses[0].partitions[0].clone()
}

fn fetch_magic(version: i16) -> i8 {
    if version <= 1 {
        0
    } else {
        1
    }
}

#[test]
fn produce_v0_to_v2_with_every_codec_reads_back_at_fetch_v0_to_v3_and_with_librdkafka() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let mut raw = RawClient::connect(&bootstrap);
    for produce_version in 0..=2i16 {
        // Kafka's clients: Produce v0/v1 carry magic 0, v2 magic 1.
        let magic = if produce_version == 2 { 1 } else { 0 };
        for (codec, name) in CODECS {
            let topic = format!("old-p{produce_version}-{name}");
            create_topic(&bootstrap, &topic, 1, &[]);
            let mut expected = Vec::new();
            for round in 0..2 {
                let records = samples(round);
                let answer = produce_old(
                    &mut raw,
                    produce_version,
                    &topic,
                    message_set(magic, codec, &records),
                );
                assert_eq!(answer.error_code, 0, "{topic}: produce round {round}");
                assert_eq!(answer.base_offset, round as i64 * 4, "{topic}: base offset");
                assert_eq!(answer.log_append_time_ms, -1, "{topic}: CreateTime");
                expected.extend(records);
            }
            for fetch_version in 0..=3i16 {
                let data = fetch_old(&mut raw, fetch_version, &topic, 0, 1 << 20);
                assert_eq!(data.error_code, 0, "{topic}: Fetch v{fetch_version}");
                assert_eq!(data.high_watermark, 8);
                let read = parse_set(data.records.unwrap(), None);
                assert_eq!(read.len(), 8, "{topic}: Fetch v{fetch_version} records");
                for (i, (r, (k, v, ts))) in read.iter().zip(&expected).enumerate() {
                    let what = format!("{topic}: Fetch v{fetch_version} record {i}");
                    assert_eq!(r.offset, i as i64, "{what}");
                    assert_eq!(r.magic, fetch_magic(fetch_version), "{what}");
                    assert_eq!((&r.key, &r.value), (k, v), "{what}");
                    let ts = if magic == 1 && r.magic == 1 { *ts } else { -1 };
                    assert_eq!(r.timestamp, ts, "{what}");
                    assert!(!r.log_append_time, "{what}");
                }
                // From the middle: uncompressed data starts at the offset asked, a compressed
                // wrapper is returned whole (the client skips what it did not ask for).
                let data = fetch_old(&mut raw, fetch_version, &topic, 5, 1 << 20);
                let read = parse_set(data.records.unwrap(), None);
                let first = if codec == 0 { 5 } else { 4 };
                assert_eq!(
                    read.first().map(|r| r.offset),
                    Some(first),
                    "{topic}: from 5"
                );
                assert_eq!(read.last().map(|r| r.offset), Some(7));
            }
            // A modern librdkafka consumer reads the converted v2 batches.
            let consumed = consume(&bootstrap, &topic, &[0], 8, Duration::from_secs(20));
            for (i, (c, (k, v, ts))) in consumed.iter().zip(&expected).enumerate() {
                assert_eq!(c.offset, i as i64, "{topic}: librdkafka offset");
                assert_eq!((&c.key, &c.value), (k, v), "{topic}: librdkafka record {i}");
                if magic == 1 {
                    assert_eq!(c.timestamp, Some(*ts), "{topic}: librdkafka timestamp");
                } else {
                    assert!(
                        matches!(c.timestamp, None | Some(-1)),
                        "{topic}: {:?}",
                        c.timestamp
                    );
                }
            }
        }
    }
}

#[test]
fn modern_batches_read_at_fetch_v0_to_v3() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let mut raw = RawClient::connect(&bootstrap);
    let runtime = client_runtime();
    for (codec, name) in CODECS {
        let topic = format!("modern-{name}");
        create_topic(&bootstrap, &topic, 1, &[]);
        let producer = producer(
            &bootstrap,
            &[
                ("compression.type", name),
                ("linger.ms", "20"),
                ("acks", "all"),
            ],
        );
        let futures: Vec<_> = (0..20i64)
            .map(|i| {
                let key = format!("k{i}");
                let value = format!("value-{i}-{}", "x".repeat(i as usize * 10));
                let headers = OwnedHeaders::new().insert(Header {
                    key: "h",
                    value: Some("dropped".as_bytes()),
                });
                producer
                    .send_result(
                        FutureRecord::to(&topic)
                            .partition(0)
                            .key(&key)
                            .payload(&value)
                            .timestamp(BASE_TIMESTAMP + i)
                            .headers(headers),
                    )
                    .unwrap()
            })
            .collect();
        for f in futures {
            runtime.block_on(f).unwrap().expect("produced");
        }
        for fetch_version in 0..=3i16 {
            let data = fetch_old(&mut raw, fetch_version, &topic, 0, 1 << 20);
            assert_eq!(data.error_code, 0, "{topic} v{fetch_version}");
            let read = parse_set(data.records.unwrap(), None);
            assert_eq!(read.len(), 20, "{topic} v{fetch_version} (codec {codec})");
            for (i, r) in read.iter().enumerate() {
                assert_eq!(r.offset, i as i64);
                assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
                let value = format!("value-{i}-{}", "x".repeat(i * 10));
                assert_eq!(r.value.as_deref(), Some(value.as_bytes()));
                let ts = if fetch_version >= 2 {
                    BASE_TIMESTAMP + i as i64
                } else {
                    -1
                };
                assert_eq!(r.timestamp, ts);
            }
        }
    }

    // LogAppendTime: the broker's time, with the v1 timestamp-type bit.
    create_topic(
        &bootstrap,
        "modern-append-time",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let answer = produce_old(
        &mut raw,
        2,
        "modern-append-time",
        message_set(1, 1, &samples(0)),
    );
    assert_eq!(answer.error_code, 0);
    assert!(
        answer.log_append_time_ms > BASE_TIMESTAMP,
        "v2 carries the append time"
    );
    for fetch_version in 2..=3 {
        let data = fetch_old(&mut raw, fetch_version, "modern-append-time", 0, 1 << 20);
        let read = parse_set(data.records.unwrap(), None);
        assert_eq!(read.len(), 4);
        assert!(read
            .iter()
            .all(|r| r.log_append_time && r.timestamp == answer.log_append_time_ms));
    }
}

#[test]
fn fetch_limits_still_let_an_old_client_progress() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let mut raw = RawClient::connect(&bootstrap);
    create_topic(&bootstrap, "limits", 1, &[]);
    for round in 0..3 {
        assert_eq!(
            produce_old(&mut raw, 2, "limits", message_set(1, 0, &samples(round))).error_code,
            0
        );
    }
    for fetch_version in 0..=3 {
        // A limit below one message still returns the first batch whole, then nothing more.
        let data = fetch_old(&mut raw, fetch_version, "limits", 0, 100);
        let read = parse_set(data.records.unwrap(), None);
        assert_eq!(
            read.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        // Walking with a small limit reads everything exactly once.
        let mut next = 0;
        let mut seen = Vec::new();
        for _ in 0..20 {
            if next == 12 {
                break;
            }
            let data = fetch_old(&mut raw, fetch_version, "limits", next, 200);
            let read = parse_set(data.records.unwrap(), None);
            assert!(!read.is_empty(), "v{fetch_version}: progress from {next}");
            next = read.last().unwrap().offset + 1;
            seen.extend(read.into_iter().map(|r| r.offset));
        }
        assert_eq!(seen, (0..12).collect::<Vec<_>>(), "v{fetch_version}");
    }
}

/// An uncompressed v2 batch relabelled as zstd (the broker refuses it from the header alone).
fn fake_zstd_batch() -> Bytes {
    let mut batch = record_batch(&[(None, b"z")], -1, -1, -1, BASE_TIMESTAMP).to_vec();
    batch[22] |= 4;
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

#[test]
fn zstd_is_refused_below_produce_v7_and_not_served_below_fetch_v10() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let mut raw = RawClient::connect(&bootstrap);
    create_topic(&bootstrap, "zstd-producer", 1, &[]);
    create_topic(&bootstrap, "zstd-topic", 1, &[("compression.type", "zstd")]);

    // Produce: v0-v2 message sets with a zstd wrapper, v2 and v3-v6 with a zstd v2 batch.
    let wrapper = Bytes::from(message(0, 1, 4, BASE_TIMESTAMP, None, Some(b"zstd bytes")));
    for version in 0..=2 {
        let answer = produce_old(&mut raw, version, "zstd-producer", wrapper.clone());
        assert_eq!(
            answer.error_code, UNSUPPORTED_COMPRESSION_TYPE,
            "Produce v{version} wrapper"
        );
        let answer = produce_old(&mut raw, version, "zstd-producer", fake_zstd_batch());
        assert_eq!(
            answer.error_code, UNSUPPORTED_COMPRESSION_TYPE,
            "Produce v{version} batch"
        );
    }
    for version in 3..=6 {
        let mut data = km::produce_request::PartitionProduceData::default();
        data.records = Some(fake_zstd_batch());
        let mut t = km::produce_request::TopicProduceData::default();
        t.name = km::TopicName("zstd-producer".to_string().into());
        t.partition_data = vec![data];
        let mut request = km::ProduceRequest::default();
        request.acks = -1;
        request.timeout_ms = 10_000;
        request.topic_data = vec![t];
        let answer = raw.send(version, &request);
        assert_eq!(
            answer.responses[0].partition_responses[0].error_code, UNSUPPORTED_COMPRESSION_TYPE,
            "Produce v{version}"
        );
    }
    assert_eq!(
        fetch_modern(&mut raw, 4, "zstd-producer", 0).high_watermark,
        0,
        "nothing written"
    );

    // Real zstd data from a modern client (Produce v7+).
    let runtime = client_runtime();
    for topic in ["zstd-producer", "zstd-topic"] {
        let producer = producer(&bootstrap, &[("compression.type", "zstd"), ("acks", "all")]);
        runtime
            .block_on(
                producer.send(
                    // Compressible: librdkafka sends a batch uncompressed when that is smaller.
                    FutureRecord::<(), _>::to(topic)
                        .partition(0)
                        .payload(&"z".repeat(1000)),
                    Duration::from_secs(10),
                ),
            )
            .expect("zstd produce at v7+");
    }
    // A topic configured for zstd: every fetch below v10 is refused.
    for version in 0..=3 {
        let data = fetch_old(&mut raw, version, "zstd-topic", 0, 1 << 20);
        assert_eq!(
            data.error_code, UNSUPPORTED_COMPRESSION_TYPE,
            "Fetch v{version}"
        );
        assert_eq!(data.records.as_ref().map_or(0, |r| r.len()), 0);
    }
    for version in 4..=9 {
        let data = fetch_modern(&mut raw, version, "zstd-topic", 0);
        assert_eq!(
            data.error_code, UNSUPPORTED_COMPRESSION_TYPE,
            "Fetch v{version}"
        );
    }
    for version in 10..=12 {
        let data = fetch_modern(&mut raw, version, "zstd-topic", 0);
        assert_eq!(data.error_code, 0, "Fetch v{version}");
        assert!(data.records.is_some_and(|r| !r.is_empty()));
    }
    // A topic taking the producer's codec: a zstd batch cannot be down-converted; from v4
    // no conversion happens and Kafka serves it.
    for version in 0..=3 {
        let data = fetch_old(&mut raw, version, "zstd-producer", 0, 1 << 20);
        assert_eq!(
            data.error_code, UNSUPPORTED_COMPRESSION_TYPE,
            "Fetch v{version}"
        );
    }
    assert_eq!(fetch_modern(&mut raw, 4, "zstd-producer", 0).error_code, 0);
}

#[test]
fn bad_message_sets_get_error_codes_and_nothing_is_written() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let mut raw = RawClient::connect(&bootstrap);
    create_topic(&bootstrap, "bad", 1, &[]);
    create_topic(
        &bootstrap,
        "no-conversion",
        1,
        &[("message.downconversion.enable", "false")],
    );

    let good = message_set(1, 0, &samples(0)).to_vec();
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    assert_eq!(
        produce_old(&mut raw, 2, "bad", Bytes::from(bad_crc)).error_code,
        CORRUPT_MESSAGE
    );
    let mut small = good.clone();
    small[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert_eq!(
        produce_old(&mut raw, 2, "bad", Bytes::from(small)).error_code,
        CORRUPT_MESSAGE
    );
    // A wrapper holding a compressed message, and one holding another magic.
    let nested = message_set(1, 1, &samples(0));
    let compressed = strom_log::compression::compress(1, &nested, false).unwrap();
    let wrapper = message(0, 1, 1, BASE_TIMESTAMP, None, Some(&compressed));
    assert_eq!(
        produce_old(&mut raw, 2, "bad", Bytes::from(wrapper)).error_code,
        INVALID_RECORD
    );
    let magic0 = message_set(0, 0, &samples(0));
    let compressed = strom_log::compression::compress(1, &magic0, false).unwrap();
    let wrapper = message(3, 1, 1, BASE_TIMESTAMP, None, Some(&compressed));
    assert_eq!(
        produce_old(&mut raw, 2, "bad", Bytes::from(wrapper)).error_code,
        INVALID_RECORD
    );
    // Only the broker may stamp LogAppendTime (v1 attribute bit 3).
    let stamped = message(0, 1, 8, BASE_TIMESTAMP, None, Some(b"mine"));
    assert_eq!(
        produce_old(&mut raw, 2, "bad", Bytes::from(stamped)).error_code,
        INVALID_TIMESTAMP
    );
    assert_eq!(
        fetch_modern(&mut raw, 4, "bad", 0).high_watermark,
        0,
        "nothing written"
    );

    // A v2 batch in an old Produce is accepted (Kafka does not check the magic below v3).
    let batch = record_batch(&[(Some(b"k"), b"v2 in v0")], -1, -1, -1, BASE_TIMESTAMP);
    let answer = produce_old(&mut raw, 0, "bad", batch);
    assert_eq!((answer.error_code, answer.base_offset), (0, 0));
    let read = parse_set(
        fetch_old(&mut raw, 0, "bad", 0, 1 << 20).records.unwrap(),
        None,
    );
    assert_eq!(read[0].value.as_deref(), Some(&b"v2 in v0"[..]));

    // message.downconversion.enable=false: old fetches get UNSUPPORTED_VERSION.
    assert_eq!(
        produce_old(&mut raw, 2, "no-conversion", Bytes::from(good)).error_code,
        0
    );
    for version in 0..=3 {
        let data = fetch_old(&mut raw, version, "no-conversion", 0, 1 << 20);
        assert_eq!(data.error_code, UNSUPPORTED_VERSION, "Fetch v{version}");
    }
    assert_eq!(fetch_modern(&mut raw, 4, "no-conversion", 0).error_code, 0);
}

#[test]
fn librdkafka_with_0_8_and_0_9_protocols_produces_and_consumes() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let runtime = client_runtime();
    // No ApiVersions: 0.8.2 means Produce v0 / Fetch v0, 0.9.0 Produce v1 / Fetch v1, both with
    // magic 0. (From 0.10.0 on librdkafka asks ApiVersions whatever api.version.request says,
    // so it cannot be forced to Produce v2 / Fetch v2; the raw tests above cover those.)
    for fallback in ["0.8.2", "0.9.0"] {
        for (_, codec) in CODECS {
            let topic = format!("fallback-{fallback}-{codec}");
            create_topic(&bootstrap, &topic, 1, &[]);
            let old_client = [
                ("api.version.request", "false"),
                ("broker.version.fallback", fallback),
            ];
            let mut settings = old_client.to_vec();
            settings.extend([
                ("compression.type", codec),
                ("linger.ms", "20"),
                ("acks", "all"),
            ]);
            let producer = producer(&bootstrap, &settings);
            let futures: Vec<_> = (0..50i64)
                .map(|i| {
                    producer
                        .send_result(
                            FutureRecord::to(&topic)
                                .partition(0)
                                .key(&format!("k{i}"))
                                .payload(&format!("v{i}"))
                                .timestamp(BASE_TIMESTAMP + i),
                        )
                        .unwrap()
                })
                .collect();
            for f in futures {
                runtime
                    .block_on(f)
                    .unwrap()
                    .expect("produced by the old protocol");
            }
            for extra in [&old_client[..], &[]] {
                let consumed = consume_from(
                    &bootstrap,
                    &topic,
                    &[0],
                    Offset::Offset(0),
                    50,
                    Duration::from_secs(20),
                    extra,
                );
                for (i, c) in consumed.iter().enumerate() {
                    let what = format!("{topic} (old consumer: {})", !extra.is_empty());
                    assert_eq!(c.offset, i as i64, "{what}");
                    assert_eq!(c.key.as_deref(), Some(format!("k{i}").as_bytes()), "{what}");
                    assert_eq!(
                        c.value.as_deref(),
                        Some(format!("v{i}").as_bytes()),
                        "{what}"
                    );
                    // Magic 0 has no timestamps: proof the old produce path was taken.
                    assert!(
                        matches!(c.timestamp, None | Some(-1)),
                        "{what}: {:?}",
                        c.timestamp
                    );
                }
            }
        }
    }
}

/// Debian 12's kcat (librdkafka 2.0.2, an older build than the rdkafka crate's) forced to the
/// 0.8.2 and 0.9.0 protocols: produce with every codec, read back with the same protocol and
/// with kcat's newest. `./scripts/test` installs kcat; without it this test fails and says so.
#[test]
fn kcat_with_0_8_and_0_9_protocols_round_trips() {
    use std::process::{Command, Stdio};
    let found = Command::new("kcat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(found, Ok(s) if s.success()),
        "kcat is not installed: ./scripts/test installs it (apt-get install kcat)"
    );
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let lines: Vec<String> = (0..300)
        .map(|i| format!("key{i}:value-{i}-{}", "y".repeat(i % 70)))
        .collect();
    for fallback in ["0.8.2", "0.9.0"] {
        for (_, codec) in CODECS {
            let topic = format!("kcat-{fallback}-{codec}");
            create_topic(&bootstrap, &topic, 1, &[]);
            let old = [
                "-X",
                "api.version.request=false",
                "-X",
                &format!("broker.version.fallback={fallback}"),
            ];
            let mut args = vec![
                "-b", &bootstrap, "-t", &topic, "-p", "0", "-K:", "-z", codec, "-X", "acks=all",
            ];
            args.extend_from_slice(&old);
            kcat_produce(&args, &lines);
            for protocol in [&old[..], &[]] {
                let consumed = Command::new("kcat")
                    .args(["-b", &bootstrap, "-C", "-t", &topic, "-p", "0", "-o", "0"])
                    .args(["-e", "-q", "-f", "%o %k:%s\n"])
                    .args(protocol)
                    .output()
                    .unwrap();
                assert!(
                    consumed.status.success(),
                    "{topic}: kcat -C failed: {}",
                    String::from_utf8_lossy(&consumed.stderr)
                );
                let got: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
                    .lines()
                    .map(String::from)
                    .collect();
                let expected: Vec<String> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("{i} {l}"))
                    .collect();
                assert_eq!(
                    got,
                    expected,
                    "{topic}: old protocol: {}",
                    !protocol.is_empty()
                );
            }
        }
    }
}
