//! The controller's requests as a broker receives them: LeaderAndIsr (key 4), StopReplica (5)
//! and UpdateMetadata (6), and the one a stopping broker sends the controller,
//! ControlledShutdown (7, v0–3), which Kafka 4 removed from its specs and so from `ApiKey` of
//! `kafka-protocol` 0.18. They are framed, decoded and answered here with the 0.14 (Kafka 3.9)
//! types, beside the client APIs rather than through [`super::request::RequestContext`].
//!
//! They are not advertised in ApiVersions: only Strom controllers send them, at the versions
//! of [`crate::interbroker`], which every Strom broker accepts.

use std::ops::RangeInclusive;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol_3x::messages::{
    ApiKey as ApiKey3, ControlledShutdownRequest, LeaderAndIsrRequest, RequestHeader,
    ResponseHeader, StopReplicaRequest, UpdateMetadataRequest,
};
use kafka_protocol_3x::protocol::{Decodable, Encodable};

/// The API keys of the controller's requests.
pub const LEADER_AND_ISR_KEY: i16 = 4;
/// See [`LEADER_AND_ISR_KEY`].
pub const STOP_REPLICA_KEY: i16 = 5;
/// See [`LEADER_AND_ISR_KEY`].
pub const UPDATE_METADATA_KEY: i16 = 6;
/// ControlledShutdown, from a broker to the controller.
pub const CONTROLLED_SHUTDOWN_KEY: i16 = 7;

/// True if `key` is one of the controller's requests.
pub fn is_interbroker(key: i16) -> bool {
    matches!(
        key,
        LEADER_AND_ISR_KEY | STOP_REPLICA_KEY | UPDATE_METADATA_KEY | CONTROLLED_SHUTDOWN_KEY
    )
}

/// A decoded controller request.
#[derive(Debug)]
pub enum InterBrokerBody {
    /// LeaderAndIsr.
    LeaderAndIsr(LeaderAndIsrRequest),
    /// StopReplica.
    StopReplica(StopReplicaRequest),
    /// UpdateMetadata.
    UpdateMetadata(UpdateMetadataRequest),
    /// ControlledShutdown.
    ControlledShutdown(ControlledShutdownRequest),
}

/// A controller request with what its answer needs.
#[derive(Debug)]
pub struct InterBrokerRequest {
    /// The API key (4, 5 or 6).
    pub key: i16,
    /// The version.
    pub version: i16,
    /// Echoed in the answer.
    pub correlation_id: i32,
    /// The sender's client id (`strom-controller-<id>`).
    pub client_id: String,
    /// The body.
    pub body: InterBrokerBody,
}

impl InterBrokerRequest {
    /// Encodes `body` as this request's answer frame (size prefix included).
    pub fn respond<R: Encodable>(&self, body: &R) -> Bytes {
        let api = ApiKey3::try_from(self.key).expect("an inter-broker key");
        let mut header = ResponseHeader::default();
        header.correlation_id = self.correlation_id;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        let encoded = header
            .encode(&mut buf, api.response_header_version(self.version))
            .and_then(|()| body.encode(&mut buf, self.version));
        if let Err(e) = encoded {
            tracing::error!(key = self.key, version = self.version, error = %e,
                "BUG: inter-broker answer does not encode");
            return Bytes::new();
        }
        let length = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&length.to_be_bytes());
        buf.freeze()
    }
}

/// The versions a broker accepts for `key`.
fn accepted(key: i16) -> RangeInclusive<i16> {
    match key {
        LEADER_AND_ISR_KEY => crate::interbroker::LEADER_AND_ISR_ACCEPTED,
        STOP_REPLICA_KEY => crate::interbroker::STOP_REPLICA_ACCEPTED,
        CONTROLLED_SHUTDOWN_KEY => crate::interbroker::CONTROLLED_SHUTDOWN_ACCEPTED,
        _ => crate::interbroker::UPDATE_METADATA_ACCEPTED,
    }
}

/// Decodes a whole controller request frame (without its size prefix); `Err` says why it
/// cannot be, and the connection is then closed as for any malformed request.
pub fn decode(mut frame: Bytes) -> Result<InterBrokerRequest, String> {
    if frame.len() < 8 {
        return Err(format!("frame of {} bytes", frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    if !is_interbroker(key) {
        return Err(format!("API key {key} is not a controller request"));
    }
    if !accepted(key).contains(&version) {
        return Err(format!(
            "API key {key} v{version} is not spoken between Strom brokers (accepted {:?})",
            accepted(key)
        ));
    }
    let api = ApiKey3::try_from(key).map_err(|_| format!("unknown API key {key}"))?;
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(|e| format!("request header: {e}"))?;
    let body = match key {
        LEADER_AND_ISR_KEY => InterBrokerBody::LeaderAndIsr(
            LeaderAndIsrRequest::decode(&mut frame, version).map_err(|e| format!("{e:#}"))?,
        ),
        STOP_REPLICA_KEY => InterBrokerBody::StopReplica(
            StopReplicaRequest::decode(&mut frame, version).map_err(|e| format!("{e:#}"))?,
        ),
        CONTROLLED_SHUTDOWN_KEY => InterBrokerBody::ControlledShutdown(
            ControlledShutdownRequest::decode(&mut frame, version).map_err(|e| format!("{e:#}"))?,
        ),
        _ => InterBrokerBody::UpdateMetadata(
            UpdateMetadataRequest::decode(&mut frame, version).map_err(|e| format!("{e:#}"))?,
        ),
    };
    Ok(InterBrokerRequest {
        key,
        version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.map(|c| c.to_string()).unwrap_or_default(),
        body,
    })
}
