//! DescribeLogDirs: the per-dir answer (filtering, grouping, a dir whose volume cannot be read)
//! and the wire at every version, checked with Kafka 3.9's message types (`kafka-protocol-3x`,
//! which still has v0) and against bytes laid out by hand.

use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_protocol_3x::messages as k3;
use kafka_protocol_3x::protocol::{Decodable as _, Encodable as _};

use super::{describe, ReplicaLog, VolumeBytes};
use crate::handlers::topic_name;
use crate::protocol::request::{decode_request, encode_frame, Decoded, RequestBody};

fn replica(dir_index: usize, topic: &str, partition: i32, size_bytes: i64) -> ReplicaLog {
    ReplicaLog {
        dir_index,
        topic: topic.to_string(),
        partition,
        size_bytes,
        offset_lag: 0,
    }
}

fn request(topics: Option<&[(&str, &[i32])]>) -> DescribeLogDirsRequest {
    let mut request = DescribeLogDirsRequest::default();
    request.topics = topics.map(|topics| {
        topics
            .iter()
            .map(|(name, partitions)| {
                let mut t = DescribableLogDirTopic::default();
                t.topic = topic_name(name);
                t.partitions = partitions.to_vec();
                t
            })
            .collect()
    });
    request
}

fn space(_: &Path) -> std::io::Result<VolumeBytes> {
    Ok((1_000_000, 400_000))
}

/// (dir, [(topic, [(partition, size)])]) of a result list.
type Summary = Vec<(String, i16, Vec<(String, Vec<(i32, i64)>)>)>;

fn summary(
    results: &[kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult],
) -> Summary {
    results
        .iter()
        .map(|r| {
            let topics = r
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| (p.partition_index, p.partition_size))
                        .collect();
                    (t.name.0.to_string(), partitions)
                })
                .collect();
            (r.log_dir.to_string(), r.error_code, topics)
        })
        .collect()
}

#[test]
fn every_dir_is_listed_and_the_request_filters_its_partitions() {
    let dirs = vec![PathBuf::from("/data/a"), PathBuf::from("/data/b")];
    let replicas = vec![
        replica(0, "orders", 0, 100),
        replica(1, "orders", 1, 110),
        replica(0, "orders", 2, 120),
        replica(0, "events", 0, 7),
        replica(1, "events", 1, 0),
    ];
    let all = describe(&dirs, &replicas, &request(None), &space);
    let s = |v: &[(&str, &[(i32, i64)])]| -> Vec<(String, Vec<(i32, i64)>)> {
        v.iter().map(|(t, p)| (t.to_string(), p.to_vec())).collect()
    };
    assert_eq!(
        summary(&all),
        vec![
            (
                "/data/a".into(),
                0,
                s(&[("events", &[(0, 7)]), ("orders", &[(0, 100), (2, 120)])])
            ),
            (
                "/data/b".into(),
                0,
                s(&[("events", &[(1, 0)]), ("orders", &[(1, 110)])])
            ),
        ],
        "a null topic list is every replica, topics by name, partitions in order"
    );
    assert!(all
        .iter()
        .all(|r| (r.total_bytes, r.usable_bytes) == (1_000_000, 400_000)));
    assert!(all
        .iter()
        .flat_map(|r| &r.topics)
        .flat_map(|t| &t.partitions)
        .all(|p| p.offset_lag == 0 && !p.is_future_key));

    // Partition 5 and topic "nope" are not held: left out, no error. "events" has no requested
    // partition in either dir, so it is not listed at all; a dir with nothing requested is
    // listed with no topics.
    let some = describe(
        &dirs,
        &replicas,
        &request(Some(&[
            ("orders", &[2, 5]),
            ("nope", &[0]),
            ("events", &[]),
        ])),
        &space,
    );
    assert_eq!(
        summary(&some),
        vec![
            ("/data/a".into(), 0, s(&[("orders", &[(2, 120)])])),
            ("/data/b".into(), 0, vec![]),
        ]
    );
    let none = describe(&dirs, &replicas, &request(Some(&[])), &space);
    assert!(
        none.iter().all(|r| r.topics.is_empty()),
        "an empty list asks for nothing"
    );
}

#[test]
fn a_dir_whose_volume_cannot_be_read_is_a_storage_error() {
    let dirs = vec![PathBuf::from("/data/a"), PathBuf::from("/data/gone")];
    let replicas = vec![replica(0, "t", 0, 5), replica(1, "t", 1, 6)];
    let flaky = |dir: &Path| {
        if dir.ends_with("gone") {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound))
        } else {
            space(dir)
        }
    };
    let results = describe(&dirs, &replicas, &request(None), &flaky);
    assert_eq!(results[0].error_code, 0);
    assert_eq!(results[0].topics.len(), 1);
    assert_eq!(results[1].error_code, 56, "KAFKA_STORAGE_ERROR");
    assert!(results[1].topics.is_empty());
    assert_eq!((results[1].total_bytes, results[1].usable_bytes), (-1, -1));
}

#[test]
fn a_relative_log_dir_is_reported_absolute() {
    let results = describe(&[PathBuf::from("rel/dir")], &[], &request(None), &space);
    let reported = PathBuf::from(results[0].log_dir.to_string());
    assert!(reported.is_absolute(), "{reported:?}");
    assert!(reported.ends_with("rel/dir"));
}

#[test]
fn the_volume_of_a_real_dir_has_a_size() {
    let dir = tempfile::tempdir().unwrap();
    let (total, usable) = super::volume_bytes(dir.path()).unwrap();
    assert!(
        total > 0 && usable >= 0 && usable <= total,
        "{total} {usable}"
    );
    assert!(super::volume_bytes(&dir.path().join("missing")).is_err());
}

/// A request frame (header and body) laid out by Kafka 3.9's types at `version`.
fn request_frame(version: i16, topics: Option<Vec<(&str, Vec<i32>)>>) -> Bytes {
    let mut body = k3::DescribeLogDirsRequest::default();
    body.topics = topics.map(|topics| {
        topics
            .into_iter()
            .map(|(name, partitions)| {
                let mut t = k3::describe_log_dirs_request::DescribableLogDirTopic::default();
                t.topic = k3::TopicName(name.to_string().into());
                t.partitions = partitions;
                t
            })
            .collect()
    });
    let mut header = k3::RequestHeader::default();
    header.request_api_key = ApiKey::DescribeLogDirs as i16;
    header.request_api_version = version;
    header.correlation_id = 9;
    header.client_id = Some("kafka-python".to_string().into());
    let mut buf = BytesMut::new();
    let header_version = if version >= 2 { 2 } else { 1 };
    header.encode(&mut buf, header_version).unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn decoded_request(frame: Bytes) -> (i16, DescribeLogDirsRequest) {
    match decode_request(frame) {
        Ok(Decoded::Request(r)) => match r.body {
            RequestBody::DescribeLogDirs(body) => (r.context.version, body),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn requests_of_every_version_decode_with_their_topics_or_null() {
    for version in 0..=4 {
        let (v, all) = decoded_request(request_frame(version, None));
        assert_eq!(v, version);
        assert!(all.topics.is_none(), "v{version}: null stays null");
        let (_, some) = decoded_request(request_frame(
            version,
            Some(vec![("orders", vec![0, 3]), ("x", vec![])]),
        ));
        let topics: Vec<(String, Vec<i32>)> = some
            .topics
            .expect("a list")
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect();
        assert_eq!(
            topics,
            vec![
                ("orders".to_string(), vec![0, 3]),
                ("x".to_string(), vec![])
            ],
            "v{version}"
        );
    }
    // v5 does not exist: refused, not guessed at.
    assert!(decode_request(request_frame(4, None).slice(..)).is_ok());
    let mut v5 = BytesMut::from(&request_frame(4, None)[..]);
    v5[2..4].copy_from_slice(&5i16.to_be_bytes());
    assert!(decode_request(v5.freeze()).is_err());
}

/// The kafka-python 2.x request, byte for byte: v0, header v1, a null topic list.
#[test]
fn kafka_pythons_v0_request_decodes() {
    let mut frame = BytesMut::new();
    frame.put_i16(35);
    frame.put_i16(0);
    frame.put_i32(1);
    frame.put_i16(2);
    frame.put_slice(b"kp");
    frame.put_i32(-1);
    let (version, body) = decoded_request(frame.freeze());
    assert_eq!((version, body.topics.is_none()), (0, true));
}

fn sample_response() -> DescribeLogDirsResponse {
    let dirs = vec![PathBuf::from("/d")];
    let mut replica = replica(0, "t", 3, 4_321);
    replica.offset_lag = 0;
    let mut response = DescribeLogDirsResponse::default();
    response.results = describe(&dirs, &[replica], &request(None), &space);
    response
}

/// The body of a response frame made by the broker's encoder, after its size and header.
fn response_body(version: i16) -> Bytes {
    let mut frame = encode_frame(77, ApiKey::DescribeLogDirs, version, &sample_response());
    let size = frame.get_i32();
    assert_eq!(size as usize, frame.len());
    assert_eq!(frame.get_i32(), 77, "correlation id");
    if version >= 2 {
        assert_eq!(frame.get_u8(), 0, "no header tagged fields");
    }
    frame
}

#[test]
fn responses_of_every_version_carry_what_that_version_has() {
    for version in 0..=4 {
        let mut body = response_body(version);
        let decoded = k3::DescribeLogDirsResponse::decode(&mut body, version).unwrap();
        assert!(body.is_empty(), "v{version}: trailing bytes");
        assert_eq!(decoded.results.len(), 1);
        let result = &decoded.results[0];
        assert_eq!((result.error_code, result.log_dir.as_str()), (0, "/d"));
        let topic = &result.topics[0];
        assert_eq!(topic.name.0.as_str(), "t");
        let p = &topic.partitions[0];
        assert_eq!(
            (
                p.partition_index,
                p.partition_size,
                p.offset_lag,
                p.is_future_key
            ),
            (3, 4_321, 0, false)
        );
        let sizes = (result.total_bytes, result.usable_bytes);
        if version >= 4 {
            assert_eq!(sizes, (1_000_000, 400_000), "v4 has the volume sizes");
        } else {
            assert_eq!(sizes, (-1, -1), "v{version} has no volume sizes");
        }
    }
}

/// The v0 response laid out by hand (Kafka's `DescribeLogDirsResponse` v0 schema).
#[test]
fn the_v0_response_is_kafkas_layout() {
    let mut expected = BytesMut::new();
    expected.put_i32(0); // throttle_time_ms
    expected.put_i32(1); // results
    expected.put_i16(0); // error_code
    expected.put_i16(2);
    expected.put_slice(b"/d");
    expected.put_i32(1); // topics
    expected.put_i16(1);
    expected.put_slice(b"t");
    expected.put_i32(1); // partitions
    expected.put_i32(3);
    expected.put_i64(4_321);
    expected.put_i64(0);
    expected.put_u8(0); // is_future_key
    assert_eq!(response_body(0), expected.freeze());
    // v1 is the same layout; v4 is flexible and ends each result with the two sizes and its
    // (empty) tagged fields, then the response's (empty) tagged fields.
    assert_eq!(response_body(1), response_body(0));
    let v4 = response_body(4);
    let tail = &v4[v4.len() - 18..];
    assert_eq!(&tail[..8], &1_000_000i64.to_be_bytes());
    assert_eq!(&tail[8..16], &400_000i64.to_be_bytes());
    assert_eq!(&tail[16..], &[0, 0]);
}

/// The fuzz target's seeds for this API (`fuzz/seeds/request_frame/describe_log_dirs_v*`)
/// are valid requests, so fuzzing starts from inputs that reach the body decoder.
#[test]
fn the_fuzz_seeds_decode() {
    let (version, body) = decoded_request(Bytes::from_static(include_bytes!(
        "../../../../../fuzz/seeds/request_frame/describe_log_dirs_v0"
    )));
    assert_eq!((version, body.topics.is_none()), (0, true));
    let (version, body) = decoded_request(Bytes::from_static(include_bytes!(
        "../../../../../fuzz/seeds/request_frame/describe_log_dirs_v4"
    )));
    let topics: Vec<(String, Vec<i32>)> = body
        .topics
        .expect("a list")
        .into_iter()
        .map(|t| (t.topic.0.to_string(), t.partitions))
        .collect();
    assert_eq!(version, 4);
    assert_eq!(
        topics,
        vec![
            ("orders".to_string(), vec![0, 3]),
            ("events".to_string(), vec![])
        ]
    );
}
