//! Tests of the Fetch response writer (`handlers/fetch.rs`): its bytes against kafka-protocol's
//! at every version, and its fallbacks.

use std::io::Write;

use kafka_protocol::messages::fetch_response::EpochEndOffset;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Decodable;

use super::*;

fn ctx(version: i16) -> RequestContext {
    RequestContext {
        api: ApiKey::Fetch,
        version,
        correlation_id: 0x1234_5678,
        client_id: "test".into(),
        client_host: Arc::from(""),
    }
}

/// Pseudo-random bytes, different for every `seed`.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    use rand_core::{Rng as _, SeedableRng as _};
    let mut bytes = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// A response with two topics and partitions of every shape: an error, no records, small
/// and large records in memory, and two file ranges; plus what `expected` must carry.
fn sample(version: i16, file: &Arc<std::fs::File>) -> (FetchResponse, Vec<Option<FileSlice>>) {
    let mut response = FetchResponse::default();
    response.throttle_time_ms = 7;
    if version >= 7 {
        response.error_code = 0;
        response.session_id = 0;
    }
    let mut files = Vec::new();
    for t in 0..2u8 {
        let mut topic = FetchableTopicResponse::default();
        if version >= 13 {
            topic.topic_id = uuid::Uuid::from_bytes([t + 1; 16]);
        } else {
            topic.topic = crate::handlers::topic_name(&format!("topic-{t}"));
        }
        for (i, shape) in ["error", "none", "small", "large", "file", "file-at-40000"]
            .iter()
            .enumerate()
        {
            let mut p = PartitionData::default();
            p.partition_index = i as i32;
            p.high_watermark = 1000 + i as i64;
            p.last_stable_offset = 1000 + i as i64;
            if version >= 5 {
                p.log_start_offset = i as i64;
            }
            if t == 1 {
                p.aborted_transactions = Some(vec![AbortedTransaction::default()
                    .with_producer_id(ProducerId(9))
                    .with_first_offset(3)]);
            }
            let mut slice = None;
            match *shape {
                "error" => {
                    p.error_code = E::OffsetOutOfRange.code();
                    p.high_watermark = -1;
                }
                "none" => {}
                "small" => p.records = Some(Bytes::from(noise(300, i as u64))),
                "large" => p.records = Some(Bytes::from(noise(70_000, i as u64))),
                "file" => {
                    slice = Some(FileSlice {
                        file: file.clone(),
                        position: 0,
                        len: 40_000,
                    })
                }
                _ => {
                    slice = Some(FileSlice {
                        file: file.clone(),
                        position: 40_000,
                        len: 60_000,
                    })
                }
            }
            topic.partitions.push(p);
            files.push(slice);
        }
        response.responses.push(topic);
    }
    (response, files)
}

fn data_file() -> (tempfile::TempDir, Arc<std::fs::File>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00000000000000000000.log");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&noise(100_000, 77))
        .unwrap();
    (dir, Arc::new(std::fs::File::open(&path).unwrap()))
}

/// What kafka-protocol encodes for the response with the file ranges read into memory.
fn reference(version: i16, mut response: FetchResponse, files: &[Option<FileSlice>]) -> Bytes {
    let mut files = files.iter();
    for topic in &mut response.responses {
        for p in &mut topic.partitions {
            if let Some(slice) = files.next().unwrap() {
                p.records = Some(slice.read_to_bytes().unwrap());
            }
        }
    }
    ctx(version).respond(&response)
}

#[test]
fn own_writer_matches_kafka_protocol_at_every_version() {
    let (_dir, file) = data_file();
    for version in 4..=18 {
        let (response, files) = sample(version, &file);
        let expected = reference(version, response.clone(), &files);
        let frame = encode_response(&ctx(version), response, files);
        assert_eq!(
            frame
                .parts
                .iter()
                .filter(|p| matches!(p, Part::File(_)))
                .count(),
            4,
            "v{version}: the four file ranges stay file ranges"
        );
        assert_eq!(frame.len(), expected.len(), "v{version}: frame length");
        assert_eq!(
            frame.to_bytes().unwrap(),
            expected,
            "v{version}: frame bytes"
        );
        // And a client decodes it back.
        let mut body = expected.slice(4..);
        let header = kafka_protocol::messages::ResponseHeader::decode(
            &mut body,
            ApiKey::Fetch.response_header_version(version),
        )
        .unwrap();
        assert_eq!(header.correlation_id, 0x1234_5678);
        let decoded =
            <FetchResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, version)
                .unwrap();
        assert_eq!(
            decoded.responses[1].partitions[5]
                .records
                .as_ref()
                .unwrap()
                .len(),
            60_000
        );
    }
}

#[test]
fn own_writer_matches_kafka_protocol_3x_at_versions_0_to_3() {
    use kafka_protocol_3x::messages::fetch_response as old;
    use kafka_protocol_3x::protocol::Encodable as _;
    let (_dir, file) = data_file();
    for version in 0..=3 {
        let (mut response, files) = sample(version, &file);
        let mut expected = kafka_protocol_3x::messages::FetchResponse::default();
        expected.throttle_time_ms = if version >= 1 { 7 } else { 0 };
        let mut slices = files.iter();
        for topic in &mut response.responses {
            let mut t = old::FetchableTopicResponse::default();
            t.topic = kafka_protocol_3x::messages::TopicName(
                kafka_protocol_3x::protocol::StrBytes::from_string(topic.topic.0.to_string()),
            );
            for p in &mut topic.partitions {
                // Fields these versions lack stay at their defaults.
                p.aborted_transactions = None;
                let mut q = old::PartitionData::default();
                q.partition_index = p.partition_index;
                q.error_code = p.error_code;
                q.high_watermark = p.high_watermark;
                q.records = match slices.next().unwrap() {
                    Some(slice) => Some(slice.read_to_bytes().unwrap()),
                    None => p.records.clone(),
                };
                t.partitions.push(q);
            }
            expected.responses.push(t);
        }
        let mut bytes = BytesMut::new();
        bytes.put_i32(0);
        bytes.put_i32(0x1234_5678);
        expected.encode(&mut bytes, version).unwrap();
        let size = bytes.len() as i32 - 4;
        bytes[0..4].copy_from_slice(&size.to_be_bytes());
        let frame = encode_response(&ctx(version), response, files);
        assert_eq!(frame.to_bytes().unwrap(), bytes.freeze(), "v{version}");
    }
}

#[test]
fn responses_with_other_fields_fall_back_to_kafka_protocol() {
    let (_dir, file) = data_file();
    for version in 12..=18 {
        let (mut response, files) = sample(version, &file);
        response.responses[0].partitions[4].diverging_epoch =
            EpochEndOffset::default().with_epoch(3).with_end_offset(17);
        let expected = reference(version, response.clone(), &files);
        let frame = encode_response(&ctx(version), response, files);
        assert_eq!(frame.parts.len(), 1, "v{version}: one buffer");
        assert_eq!(frame.to_bytes().unwrap(), expected, "v{version}");
    }
}

#[test]
fn uvarints_are_little_endian_base_128() {
    let cases: [(u32, &[u8]); 7] = [
        (0, &[0x00]),
        (1, &[0x01]),
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (300, &[0xac, 0x02]),
        (16_384, &[0x80, 0x80, 0x01]),
        (u32::MAX, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
    ];
    for (value, expected) in cases {
        let mut buf = BytesMut::new();
        put_uvarint(&mut buf, value);
        assert_eq!(&buf[..], expected, "{value}");
    }
}
