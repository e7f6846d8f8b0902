//! Request versions Kafka 4.0 removed (KIP-896) that Kafka 3.9 still accepted, for the APIs
//! whose old versions carry nothing the handlers cannot express.
//!
//! `kafka-protocol` 0.18 (Kafka 4.1's message specs) cannot decode or encode those versions;
//! `kafka-protocol-3x` (0.14, Kafka 3.9's specs) can. This module is the one place that
//! converts between the two, so the handlers keep working with the 0.18 types only:
//!
//! - a request of an old version is decoded with the 3.9 type and re-encoded at the *bridge
//!   version* — the lowest version the 0.18 crate knows — then decoded with the 0.18 type.
//!   Every field of the old version exists at the bridge version with the same meaning, and
//!   the fields the old version lacks take their defaults, which is what Kafka assumes for
//!   them (e.g. `validate_only = false` for CreateTopics v0, `generation_id = -1` and
//!   `member_id = ""` for OffsetCommit v0);
//! - a response is encoded by the handler's 0.18 type at the bridge version, decoded with the
//!   3.9 type and re-encoded at the request's version, dropping the fields the old version
//!   lacks (and deriving the few it has in another shape, see `fix_describe_configs`).
//!
//! Only old versions pass through here; the modern path never does. ListOffsets v0 answers
//! something no later version can carry (`old_style_offsets`), so it has its own handler on
//! the 3.9 types ([`crate::handlers::list_offsets::handle_v0`]), and OffsetCommit v1's
//! per-partition commit timestamp is taken out here before the conversion drops it.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol_3x::messages as k3;
use kafka_protocol_3x::protocol::{Decodable as Decodable3, Encodable as Encodable3};

use super::{RequestBody, RequestContext};

/// The lowest version of `api` the 0.18 crate (Kafka 4.1's specs) can decode and encode; below
/// it, a request goes through this module.
pub fn bridge_version(api: ApiKey) -> i16 {
    api.valid_versions().min
}

/// The APIs whose old versions this module converts. Produce v0–2 and Fetch v0–3 carry
/// message sets of the old formats and have their own path.
const CONVERTED: &[ApiKey] = &[
    ApiKey::ListOffsets,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DescribeConfigs,
    ApiKey::DescribeLogDirs,
];

/// True if requests of `api` at `version` (and their responses) are converted by this module.
pub fn is_legacy(api: ApiKey, version: i16) -> bool {
    version < bridge_version(api) && CONVERTED.contains(&api)
}

/// An OffsetCommit v0 or v1 request: the request as the handler sees it, plus what v1 carries
/// that later versions do not.
#[derive(Debug)]
pub struct LegacyOffsetCommit {
    /// The request, converted to the 0.18 type.
    pub request: kafka_protocol::messages::OffsetCommitRequest,
    /// v1's `commit_timestamp` of each partition, in request order (topic by topic), -1 where
    /// the client let the broker choose; all -1 for v0.
    pub commit_timestamps: Vec<i64>,
}

/// Decodes a request body of `api` at a `version` below [`bridge_version`].
pub fn decode_request(api: ApiKey, body: &mut Bytes, version: i16) -> Result<RequestBody, String> {
    let bridge = bridge_version(api);
    Ok(match api {
        ApiKey::ListOffsets => {
            RequestBody::ListOffsetsV0(decode3::<k3::ListOffsetsRequest>(body, version)?)
        }
        ApiKey::OffsetCommit => {
            let mut old = decode3::<k3::OffsetCommitRequest>(body, version)?;
            let mut commit_timestamps = Vec::new();
            for topic in &mut old.topics {
                for partition in &mut topic.partitions {
                    commit_timestamps.push(partition.commit_timestamp);
                    // Not carried by the bridge version (v2): the handler gets it separately.
                    partition.commit_timestamp = -1;
                }
            }
            RequestBody::OffsetCommitV0V1(LegacyOffsetCommit {
                request: bridge_to_new(&old, bridge)?,
                commit_timestamps,
            })
        }
        ApiKey::OffsetFetch => RequestBody::OffsetFetch(transcode::<k3::OffsetFetchRequest, _>(
            body, version, bridge,
        )?),
        ApiKey::CreateTopics => RequestBody::CreateTopics(transcode::<k3::CreateTopicsRequest, _>(
            body, version, bridge,
        )?),
        ApiKey::DeleteTopics => RequestBody::DeleteTopics(transcode::<k3::DeleteTopicsRequest, _>(
            body, version, bridge,
        )?),
        ApiKey::DescribeConfigs => RequestBody::DescribeConfigs(transcode::<
            k3::DescribeConfigsRequest,
            _,
        >(body, version, bridge)?),
        // v0 is v1 on the wire (v1 only changed when a throttled response is sent).
        ApiKey::DescribeLogDirs => RequestBody::DescribeLogDirs(transcode::<
            k3::DescribeLogDirsRequest,
            _,
        >(body, version, bridge)?),
        other => return Err(format!("{other:?} v{version} has no conversion")),
    })
}

/// Encodes a handler's 0.18 `body` for a request of a `version` below [`bridge_version`]:
/// the response body at `version`, without frame or header.
pub fn encode_response_body<R: Encodable>(
    api: ApiKey,
    version: i16,
    body: &R,
) -> anyhow::Result<Bytes> {
    let bridge = bridge_version(api);
    let mut at_bridge = BytesMut::new();
    body.encode(&mut at_bridge, bridge)?;
    let mut at_bridge = at_bridge.freeze();
    match api {
        ApiKey::OffsetCommit => {
            reencode::<k3::OffsetCommitResponse>(&mut at_bridge, bridge, version)
        }
        ApiKey::OffsetFetch => reencode::<k3::OffsetFetchResponse>(&mut at_bridge, bridge, version),
        ApiKey::CreateTopics => {
            reencode::<k3::CreateTopicsResponse>(&mut at_bridge, bridge, version)
        }
        ApiKey::DeleteTopics => {
            reencode::<k3::DeleteTopicsResponse>(&mut at_bridge, bridge, version)
        }
        ApiKey::DescribeConfigs => {
            let mut response = k3::DescribeConfigsResponse::decode(&mut at_bridge, bridge)?;
            fix_describe_configs(&mut response);
            encode3(&response, version)
        }
        ApiKey::DescribeLogDirs => {
            reencode::<k3::DescribeLogDirsResponse>(&mut at_bridge, bridge, version)
        }
        other => anyhow::bail!("{other:?} v{version} has no response conversion"),
    }
}

/// DescribeConfigs v0 says `is_default` where v1+ say `config_source`.
fn fix_describe_configs(response: &mut k3::DescribeConfigsResponse) {
    /// `DescribeConfigsResponse.ConfigSource.DEFAULT_CONFIG`.
    const DEFAULT_CONFIG: i8 = 5;
    for result in &mut response.results {
        for config in &mut result.configs {
            config.is_default = config.config_source == DEFAULT_CONFIG;
        }
    }
}

/// Encodes `[size][response header][body]` for a response held in a 3.9 type (ListOffsets v0).
pub fn respond3<R: Encodable3>(ctx: &RequestContext, body: &R) -> Bytes {
    match encode3(body, ctx.version) {
        Ok(body) => frame(ctx, &body),
        Err(e) => {
            tracing::error!(api = ?ctx.api, version = ctx.version, error = %e, "BUG: response does not encode");
            Bytes::new()
        }
    }
}

/// `[size][response header][body]` around an encoded body.
pub fn frame(ctx: &RequestContext, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(16 + body.len());
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = ctx.correlation_id;
    if let Err(e) = header.encode(&mut buf, ctx.api.response_header_version(ctx.version)) {
        tracing::error!(error = %e, "BUG: response header does not encode");
        return Bytes::new();
    }
    buf.extend_from_slice(body);
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

fn decode3<T: Decodable3>(body: &mut Bytes, version: i16) -> Result<T, String> {
    T::decode(body, version).map_err(|e| format!("{e:#}"))
}

fn encode3<T: Encodable3>(value: &T, version: i16) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    value.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// A 3.9 request re-encoded at `bridge` and decoded as the 0.18 type.
fn bridge_to_new<Old: Encodable3, New: Decodable>(old: &Old, bridge: i16) -> Result<New, String> {
    let mut bytes = encode3(old, bridge).map_err(|e| format!("{e:#}"))?;
    New::decode(&mut bytes, bridge).map_err(|e| format!("{e:#}"))
}

/// Decodes an old-version request with the 3.9 type and converts it to the 0.18 type.
fn transcode<Old: Decodable3 + Encodable3, New: Decodable>(
    body: &mut Bytes,
    version: i16,
    bridge: i16,
) -> Result<New, String> {
    let old = decode3::<Old>(body, version)?;
    bridge_to_new(&old, bridge)
}

/// A response body at `bridge` decoded with the 3.9 type and encoded at `version`.
fn reencode<T: Decodable3 + Encodable3>(
    at_bridge: &mut Bytes,
    bridge: i16,
    version: i16,
) -> anyhow::Result<Bytes> {
    encode3(&T::decode(at_bridge, bridge)?, version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages as k4;

    fn encode_old<T: Encodable3>(value: &T, version: i16) -> Bytes {
        encode3(value, version).unwrap()
    }

    #[test]
    fn bridge_versions_are_the_0_18_minimums() {
        assert_eq!(bridge_version(ApiKey::ListOffsets), 1);
        assert_eq!(bridge_version(ApiKey::OffsetCommit), 2);
        assert_eq!(bridge_version(ApiKey::OffsetFetch), 1);
        assert_eq!(bridge_version(ApiKey::CreateTopics), 2);
        assert_eq!(bridge_version(ApiKey::DeleteTopics), 1);
        assert_eq!(bridge_version(ApiKey::DescribeConfigs), 1);
        assert_eq!(bridge_version(ApiKey::DescribeLogDirs), 1);
        assert!(is_legacy(ApiKey::DescribeLogDirs, 0));
        assert!(!is_legacy(ApiKey::DescribeLogDirs, 1));
        assert!(is_legacy(ApiKey::OffsetCommit, 1));
        assert!(!is_legacy(ApiKey::OffsetCommit, 2));
        assert!(!is_legacy(ApiKey::Metadata, 0));
        assert!(
            !is_legacy(ApiKey::Produce, 2),
            "the data path converts its own"
        );
    }

    #[test]
    fn offset_commit_v1_keeps_generation_member_and_timestamps() {
        let mut p = k3::offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = 3;
        p.committed_offset = 42;
        p.commit_timestamp = 1_000;
        p.committed_metadata = Some("m".to_string().into());
        let mut t = k3::offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = k3::TopicName("t".to_string().into());
        t.partitions = vec![
            p.clone(),
            p.with_partition_index(4).with_commit_timestamp(-1),
        ];
        let mut r = k3::OffsetCommitRequest::default();
        r.group_id = k3::GroupId("g".to_string().into());
        r.generation_id_or_member_epoch = 7;
        r.member_id = "member".to_string().into();
        r.topics = vec![t];
        let mut body = encode_old(&r, 1);
        let RequestBody::OffsetCommitV0V1(legacy) =
            decode_request(ApiKey::OffsetCommit, &mut body, 1).unwrap()
        else {
            panic!("not a legacy commit");
        };
        assert_eq!(legacy.commit_timestamps, vec![1_000, -1]);
        let request = legacy.request;
        assert_eq!(request.group_id.0.as_str(), "g");
        assert_eq!(request.generation_id_or_member_epoch, 7);
        assert_eq!(request.member_id.as_str(), "member");
        assert_eq!(request.retention_time_ms, -1);
        let p = &request.topics[0].partitions[0];
        assert_eq!((p.partition_index, p.committed_offset), (3, 42));
        assert_eq!(p.committed_metadata.as_deref(), Some("m"));
        // v0: no generation or member; the coordinator sees an unattached commit.
        let mut r = r;
        r.generation_id_or_member_epoch = -1;
        r.member_id = Default::default();
        for p in &mut r.topics[0].partitions {
            p.commit_timestamp = -1;
        }
        let mut body = encode_old(&r, 0);
        let RequestBody::OffsetCommitV0V1(legacy) =
            decode_request(ApiKey::OffsetCommit, &mut body, 0).unwrap()
        else {
            panic!("not a legacy commit");
        };
        assert_eq!(legacy.request.generation_id_or_member_epoch, -1);
        assert_eq!(legacy.request.member_id.as_str(), "");
        assert_eq!(legacy.commit_timestamps, vec![-1, -1]);
    }

    #[test]
    fn describe_configs_v0_reports_is_default() {
        let mut c = k4::describe_configs_response::DescribeConfigsResourceResult::default();
        c.name = "retention.ms".to_string().into();
        c.config_source = 5;
        let mut overridden = c.clone();
        overridden.name = "segment.ms".to_string().into();
        overridden.config_source = 1;
        let mut result = k4::describe_configs_response::DescribeConfigsResult::default();
        result.configs = vec![c, overridden];
        let mut response = k4::DescribeConfigsResponse::default();
        response.results = vec![result];
        let mut body = encode_response_body(ApiKey::DescribeConfigs, 0, &response).unwrap();
        let old = k3::DescribeConfigsResponse::decode(&mut body, 0).unwrap();
        let defaults: Vec<bool> = old.results[0]
            .configs
            .iter()
            .map(|c| c.is_default)
            .collect();
        assert_eq!(defaults, vec![true, false]);
        assert!(body.is_empty());
    }

    #[test]
    fn create_topics_v0_response_drops_what_v0_lacks() {
        let mut t = k4::create_topics_response::CreatableTopicResult::default();
        t.name = k4::TopicName("x".to_string().into());
        t.error_code = 36;
        t.error_message = Some("exists".to_string().into());
        let mut response = k4::CreateTopicsResponse::default();
        response.throttle_time_ms = 5;
        response.topics = vec![t];
        for version in [0, 1] {
            let mut body = encode_response_body(ApiKey::CreateTopics, version, &response).unwrap();
            let old = k3::CreateTopicsResponse::decode(&mut body, version).unwrap();
            assert!(body.is_empty());
            assert_eq!(old.topics[0].error_code, 36);
            if version == 1 {
                assert_eq!(old.topics[0].error_message.as_deref(), Some("exists"));
            }
        }
    }

    #[test]
    fn the_fuzz_seeds_of_old_versions_decode() {
        use crate::protocol::request::{decode_request, Decoded, DecodedRequest};
        let decode = |frame: &'static [u8]| match decode_request(Bytes::from_static(frame)) {
            Ok(Decoded::Request(DecodedRequest { body, .. })) => body,
            other => panic!("{other:?}"),
        };
        match decode(include_bytes!(
            "../../../../../fuzz/seeds/request_frame/list_offsets_v0"
        )) {
            RequestBody::ListOffsetsV0(r) => {
                let p = &r.topics[0].partitions[0];
                assert_eq!((p.timestamp, p.max_num_offsets), (-1, 10));
            }
            other => panic!("{other:?}"),
        }
        match decode(include_bytes!(
            "../../../../../fuzz/seeds/request_frame/offset_commit_v1"
        )) {
            RequestBody::OffsetCommitV0V1(c) => {
                assert_eq!(c.commit_timestamps, vec![1_700_000_000_000]);
                assert_eq!(c.request.generation_id_or_member_epoch, 3);
                assert_eq!(c.request.topics[0].partitions[0].committed_offset, 42);
            }
            other => panic!("{other:?}"),
        }
        match decode(include_bytes!(
            "../../../../../fuzz/seeds/request_frame/describe_configs_v0"
        )) {
            RequestBody::DescribeConfigs(r) => {
                assert_eq!(r.resources[0].resource_name.as_str(), "events");
                assert!(r.resources[0].configuration_keys.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        for &api in CONVERTED {
            for bytes in [&[][..], &[0xff; 7][..], &[0, 0, 0, 1, 0xff, 0xff][..]] {
                let _ = decode_request(api, &mut Bytes::copy_from_slice(bytes), 0);
            }
        }
    }
}
