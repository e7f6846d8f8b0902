//! Requests: header decoding, version negotiation, body decoding, and response encoding.
//!
//! [`SUPPORTED`] is the single list of APIs and version ranges Strom implements; `ApiVersions`
//! advertises exactly it, and a request outside it is refused the way Kafka refuses one: an
//! `ApiVersions` request of a newer version gets an `UNSUPPORTED_VERSION` answer in version 0
//! (so the client can retry with a version it shares), anything else closes the connection.

pub mod compat;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, ApiVersionsRequest, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    FetchRequest, IncrementalAlterConfigsRequest, InitProducerIdRequest, ListOffsetsRequest,
    MetadataRequest, ProduceRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};

/// The APIs Strom implements and the versions of each (inclusive).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 13),
    (ApiKey::Fetch, 0, 18),
    (ApiKey::ListOffsets, 0, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeLogDirs, 0, 4),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
];

/// The version range Strom supports for `key`, if any.
pub fn supported_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// Why a connection is closed instead of answered.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The frame is too short to hold a request header.
    #[error("request frame of {0} bytes is too short for a request header")]
    Truncated(usize),
    /// The API key is not one Strom implements.
    #[error("unsupported API key {key} (version {version})")]
    UnknownApi {
        /// The key sent.
        key: i16,
        /// The version sent.
        version: i16,
    },
    /// The version is outside what Strom implements.
    #[error("unsupported version {version} of {api:?} (supported {min}..={max}), client {client}")]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The version sent.
        version: i16,
        /// Lowest supported.
        min: i16,
        /// Highest supported.
        max: i16,
        /// The client id from the header.
        client: String,
    },
    /// The header or body did not decode.
    #[error("malformed {api:?} v{version} request from client {client}: {reason}")]
    Malformed {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// The client id.
        client: String,
        /// The decoder's message.
        reason: String,
    },
    /// A controller request (LeaderAndIsr, StopReplica, UpdateMetadata) that did not decode or
    /// came at a version Strom brokers do not speak to each other.
    #[error("refused controller request: {0}")]
    InterBroker(String),
}

/// A request frame decoded as far as the broker needs before touching any state.
#[derive(Debug)]
pub enum Decoded<T> {
    /// A supported request: `T` is its context, with or without the decoded body.
    Request(T),
    /// An `ApiVersions` request newer than Strom speaks. It is answered (version 0,
    /// `UNSUPPORTED_VERSION`) rather than refused, so its header and body are not decoded:
    /// a newer client may lay them out in ways this version of the protocol crate cannot read.
    ApiVersionsTooNew {
        /// Read from the fixed position every header version puts it at.
        correlation_id: i32,
    },
    /// A controller request (LeaderAndIsr, StopReplica, UpdateMetadata), outside the client
    /// APIs of [`SUPPORTED`].
    InterBroker(crate::protocol::interbroker::InterBrokerRequest),
}

/// The body of a request Strom implements, one variant per API in [`SUPPORTED`].
///
/// `kafka_protocol::messages::RequestKind` would do the same for every Kafka API, but it sits
/// behind the crate's `messages_enums` feature; this enum also states in the type that only
/// the supported APIs get this far. Each variant holds the request type of the API it is
/// named after.
#[derive(Debug)]
pub enum RequestBody {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    DeleteRecords(DeleteRecordsRequest),
    InitProducerId(InitProducerIdRequest),
    DescribeConfigs(DescribeConfigsRequest),
    AlterConfigs(AlterConfigsRequest),
    CreatePartitions(CreatePartitionsRequest),
    DescribeLogDirs(kafka_protocol::messages::DescribeLogDirsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    DescribeCluster(DescribeClusterRequest),
    FindCoordinator(kafka_protocol::messages::FindCoordinatorRequest),
    JoinGroup(kafka_protocol::messages::JoinGroupRequest),
    SyncGroup(kafka_protocol::messages::SyncGroupRequest),
    Heartbeat(kafka_protocol::messages::HeartbeatRequest),
    LeaveGroup(kafka_protocol::messages::LeaveGroupRequest),
    OffsetCommit(kafka_protocol::messages::OffsetCommitRequest),
    OffsetFetch(kafka_protocol::messages::OffsetFetchRequest),
    ListGroups(kafka_protocol::messages::ListGroupsRequest),
    DescribeGroups(kafka_protocol::messages::DescribeGroupsRequest),
    DeleteGroups(kafka_protocol::messages::DeleteGroupsRequest),
    OffsetDelete(kafka_protocol::messages::OffsetDeleteRequest),
    OffsetForLeaderEpoch(kafka_protocol::messages::OffsetForLeaderEpochRequest),
    AddPartitionsToTxn(kafka_protocol::messages::AddPartitionsToTxnRequest),
    AddOffsetsToTxn(kafka_protocol::messages::AddOffsetsToTxnRequest),
    EndTxn(kafka_protocol::messages::EndTxnRequest),
    WriteTxnMarkers(kafka_protocol::messages::WriteTxnMarkersRequest),
    TxnOffsetCommit(kafka_protocol::messages::TxnOffsetCommitRequest),
    DescribeProducers(kafka_protocol::messages::DescribeProducersRequest),
    DescribeTransactions(kafka_protocol::messages::DescribeTransactionsRequest),
    ListTransactions(kafka_protocol::messages::ListTransactionsRequest),
    ElectLeaders(kafka_protocol::messages::ElectLeadersRequest),
    AlterPartitionReassignments(kafka_protocol::messages::AlterPartitionReassignmentsRequest),
    ListPartitionReassignments(kafka_protocol::messages::ListPartitionReassignmentsRequest),
    /// ListOffsets v0 (`max_num_offsets`, answered with `old_style_offsets`): the 3.9 type.
    ListOffsetsV0(kafka_protocol_3x::messages::ListOffsetsRequest),
    /// OffsetCommit v0–v1, converted, with v1's commit timestamps.
    OffsetCommitV0V1(crate::protocol::compat::LegacyOffsetCommit),
}

impl RequestBody {
    /// Decodes the body of an `api` request of `version`, with the decoder's complaint as the
    /// error.
    pub fn decode(api: ApiKey, body: &mut Bytes, version: i16) -> Result<RequestBody, String> {
        let v = version;
        if crate::protocol::compat::is_legacy(api, version) {
            return crate::protocol::compat::decode_request(api, body, version);
        }
        Ok(match api {
            // Versions kafka-protocol 0.18 lacks (Kafka 4 removed them) come from 3.9's specs.
            ApiKey::Produce if v < crate::protocol::legacy::PRODUCE_MODERN_MIN => {
                RequestBody::Produce(crate::protocol::legacy::decode_produce(body, v)?)
            }
            ApiKey::Fetch if v < crate::protocol::legacy::FETCH_MODERN_MIN => {
                RequestBody::Fetch(crate::protocol::legacy::decode_fetch(body, v)?)
            }
            ApiKey::Produce => RequestBody::Produce(decode(body, v)?),
            ApiKey::Fetch => RequestBody::Fetch(decode(body, v)?),
            ApiKey::ListOffsets => RequestBody::ListOffsets(decode(body, v)?),
            ApiKey::Metadata => RequestBody::Metadata(decode(body, v)?),
            ApiKey::ApiVersions => RequestBody::ApiVersions(decode(body, v)?),
            ApiKey::CreateTopics => RequestBody::CreateTopics(decode(body, v)?),
            ApiKey::DeleteTopics => RequestBody::DeleteTopics(decode(body, v)?),
            ApiKey::DeleteRecords => RequestBody::DeleteRecords(decode(body, v)?),
            ApiKey::InitProducerId => RequestBody::InitProducerId(decode(body, v)?),
            ApiKey::DescribeConfigs => RequestBody::DescribeConfigs(decode(body, v)?),
            ApiKey::AlterConfigs => RequestBody::AlterConfigs(decode(body, v)?),
            ApiKey::CreatePartitions => RequestBody::CreatePartitions(decode(body, v)?),
            ApiKey::DescribeLogDirs => RequestBody::DescribeLogDirs(decode(body, v)?),
            ApiKey::IncrementalAlterConfigs => {
                RequestBody::IncrementalAlterConfigs(decode(body, v)?)
            }
            ApiKey::DescribeCluster => RequestBody::DescribeCluster(decode(body, v)?),
            ApiKey::FindCoordinator => RequestBody::FindCoordinator(decode(body, v)?),
            ApiKey::JoinGroup => RequestBody::JoinGroup(decode(body, v)?),
            ApiKey::SyncGroup => RequestBody::SyncGroup(decode(body, v)?),
            ApiKey::Heartbeat => RequestBody::Heartbeat(decode(body, v)?),
            ApiKey::LeaveGroup => RequestBody::LeaveGroup(decode(body, v)?),
            ApiKey::OffsetCommit => RequestBody::OffsetCommit(decode(body, v)?),
            ApiKey::OffsetFetch => RequestBody::OffsetFetch(decode(body, v)?),
            ApiKey::ListGroups => RequestBody::ListGroups(decode(body, v)?),
            ApiKey::DescribeGroups => RequestBody::DescribeGroups(decode(body, v)?),
            ApiKey::DeleteGroups => RequestBody::DeleteGroups(decode(body, v)?),
            ApiKey::OffsetDelete => RequestBody::OffsetDelete(decode(body, v)?),
            ApiKey::OffsetForLeaderEpoch => RequestBody::OffsetForLeaderEpoch(decode(body, v)?),
            ApiKey::AddPartitionsToTxn => RequestBody::AddPartitionsToTxn(decode(body, v)?),
            ApiKey::AddOffsetsToTxn => RequestBody::AddOffsetsToTxn(decode(body, v)?),
            ApiKey::EndTxn => RequestBody::EndTxn(decode(body, v)?),
            ApiKey::WriteTxnMarkers => RequestBody::WriteTxnMarkers(decode(body, v)?),
            ApiKey::TxnOffsetCommit => RequestBody::TxnOffsetCommit(decode(body, v)?),
            ApiKey::DescribeProducers => RequestBody::DescribeProducers(decode(body, v)?),
            ApiKey::DescribeTransactions => RequestBody::DescribeTransactions(decode(body, v)?),
            ApiKey::ListTransactions => RequestBody::ListTransactions(decode(body, v)?),
            ApiKey::ElectLeaders => RequestBody::ElectLeaders(decode(body, v)?),
            ApiKey::AlterPartitionReassignments => {
                RequestBody::AlterPartitionReassignments(decode(body, v)?)
            }
            ApiKey::ListPartitionReassignments => {
                RequestBody::ListPartitionReassignments(decode(body, v)?)
            }
            other => {
                return Err(format!(
                    "{other:?} is listed as supported but has no handler"
                ))
            }
        })
    }
}

/// A fully decoded request: what [`decode_request`] produces.
#[derive(Debug)]
pub struct DecodedRequest {
    /// API, version, correlation id and client id from the header.
    pub context: RequestContext,
    /// The body, decoded for `context.version`.
    pub body: RequestBody,
}

/// Decodes one request frame (without its size prefix): header checks against [`SUPPORTED`],
/// the header, then the body. Needs no broker, so the fuzz target drives exactly what
/// the connection's `dispatch` runs before a handler.
pub fn decode_request(mut frame: Bytes) -> Result<Decoded<DecodedRequest>, Refusal> {
    if frame.len() >= 2
        && crate::protocol::interbroker::is_interbroker(i16::from_be_bytes([frame[0], frame[1]]))
    {
        return crate::protocol::interbroker::decode(frame)
            .map(Decoded::InterBroker)
            .map_err(Refusal::InterBroker);
    }
    let context = match decode_header(&mut frame)? {
        Decoded::Request(context) => context,
        Decoded::ApiVersionsTooNew { correlation_id } => {
            return Ok(Decoded::ApiVersionsTooNew { correlation_id })
        }
        Decoded::InterBroker(request) => return Ok(Decoded::InterBroker(request)),
    };
    match RequestBody::decode(context.api, &mut frame, context.version) {
        Ok(body) => Ok(Decoded::Request(DecodedRequest { context, body })),
        Err(reason) => Err(Refusal::Malformed {
            api: context.api,
            version: context.version,
            client: context.client_id,
            reason,
        }),
    }
}

/// Checks the API key and version against [`SUPPORTED`] and decodes the request header,
/// leaving `frame` at the start of the body.
fn decode_header(frame: &mut Bytes) -> Result<Decoded<RequestContext>, Refusal> {
    if frame.len() < 8 {
        return Err(Refusal::Truncated(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|_| Refusal::UnknownApi { key, version })?;
    let Some((min, max)) = supported_range(api) else {
        return Err(Refusal::UnknownApi { key, version });
    };
    if api == ApiKey::ApiVersions && version > max {
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        return Ok(Decoded::ApiVersionsTooNew { correlation_id });
    }
    let header_version = api.request_header_version(version);
    let header = RequestHeader::decode(frame, header_version).map_err(|e| Refusal::Malformed {
        api,
        version,
        client: String::new(),
        reason: e.to_string(),
    })?;
    let client = header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    if version < min || version > max {
        return Err(Refusal::UnsupportedVersion {
            api,
            version,
            min,
            max,
            client,
        });
    }
    Ok(Decoded::Request(RequestContext {
        api,
        version,
        correlation_id: header.correlation_id,
        client_id: client,
        client_host: Arc::from(""),
    }))
}

/// What a handler knows about the request beyond its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The API.
    pub api: ApiKey,
    /// The request (and response) version.
    pub version: i16,
    /// Echoed in the response header.
    pub correlation_id: i32,
    /// The client id from the request header (empty when null).
    pub client_id: String,
    /// The client's address as Kafka reports it (`/127.0.0.1`); empty outside a connection.
    /// Shared by every request of a connection.
    pub client_host: Arc<str>,
}

impl RequestContext {
    /// Encodes a response body for this request as a complete frame.
    pub fn respond<R: Encodable>(&self, body: &R) -> Bytes {
        encode_frame(self.correlation_id, self.api, self.version, body)
    }
}

/// Decodes a request body of type `R`, with the decoder's complaint as the error.
fn decode<R: Decodable>(body: &mut Bytes, version: i16) -> Result<R, String> {
    R::decode(body, version).map_err(|e| format!("{e:#}"))
}

/// Encodes `[size][response header][body]`.
pub fn encode_frame<R: Encodable>(
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    body: &R,
) -> Bytes {
    if crate::protocol::compat::is_legacy(api, version) {
        let ctx = RequestContext {
            api,
            version,
            correlation_id,
            client_id: String::new(),
            client_host: Arc::from(""),
        };
        return match crate::protocol::compat::encode_response_body(api, version, body) {
            Ok(body) => crate::protocol::compat::frame(&ctx, &body),
            Err(e) => {
                tracing::error!(api = ?api, version, error = %e, "BUG: response does not convert");
                Bytes::new()
            }
        };
    }
    let header_version = api.response_header_version(version);
    // Sized up front: a fetch response carries megabytes of records, and growing the buffer
    // by doubling would copy them several times.
    let body_size = body.compute_size(version).unwrap_or(0);
    let mut buf = BytesMut::with_capacity(64 + body_size);
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let encoded = header
        .encode(&mut buf, header_version)
        .and_then(|()| body.encode(&mut buf, version));
    if let Err(e) = encoded {
        // A handler built a response its version cannot carry: a bug. The client gets no
        // answer for this request (it times out and retries) rather than a corrupt frame.
        tracing::error!(api = ?api, version, error = %e, "BUG: response does not encode");
        return Bytes::new();
    }
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    /// A frame with a real header for `api` v`version`, correlation id 42, then `body`.
    fn frame(api: ApiKey, version: i16, body: &[u8]) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api.request_header_version(version))
            .unwrap();
        buf.extend_from_slice(body);
        buf.freeze()
    }

    #[test]
    fn every_supported_api_has_a_body_type() {
        // An API added to SUPPORTED but not to `RequestBody::decode` would be refused as
        // having no handler. An empty body may well be malformed, but not for want of a variant.
        for &(api, min, max) in SUPPORTED {
            for version in [min, max] {
                if let Err(e) = RequestBody::decode(api, &mut Bytes::new(), version) {
                    assert!(!e.contains("no handler"), "{api:?} v{version}: {e}");
                }
            }
        }
    }

    #[test]
    fn decode_request_applies_the_dispatch_checks() {
        let mut body = BytesMut::new();
        ApiVersionsRequest::default().encode(&mut body, 3).unwrap();
        match decode_request(frame(ApiKey::ApiVersions, 3, &body)) {
            Ok(Decoded::Request(DecodedRequest {
                context,
                body: RequestBody::ApiVersions(_),
            })) => {
                assert_eq!((context.api, context.version), (ApiKey::ApiVersions, 3));
                assert_eq!(
                    (context.correlation_id, context.client_id.as_str()),
                    (42, "test")
                );
            }
            other => panic!("ApiVersions v3: {other:?}"),
        }
        assert!(matches!(
            decode_request(frame(ApiKey::ApiVersions, 9, &[0, 0, 0])),
            Ok(Decoded::ApiVersionsTooNew { correlation_id: 42 })
        ));
        // Every API starts at Kafka 3.9's floor (0 for all of them) and ends at Kafka 4.1's
        // newest version, which is also the protocol crate's: a version above is refused
        // as unsupported, naming the range.
        let (_, max) = supported_range(ApiKey::ListOffsets).unwrap();
        let refused = decode_request(frame(ApiKey::ListOffsets, max + 1, &[]));
        assert!(
            matches!(
                refused,
                Err(Refusal::UnsupportedVersion { version, max: m, .. }) if version == max + 1 && m == max
            ),
            "{refused:?}"
        );
        assert!(matches!(
            decode_request(frame(ApiKey::DescribeAcls, 3, &[])),
            Err(Refusal::UnknownApi { key: 29, .. })
        ));
        assert!(matches!(
            decode_request(frame(ApiKey::Metadata, 12, &[0x05])),
            Err(Refusal::Malformed { .. })
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 18, 0, 3])),
            Err(Refusal::Truncated(4))
        ));
    }
}
