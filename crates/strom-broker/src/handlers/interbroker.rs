//! The controller's requests on the receiving broker: LeaderAndIsr, StopReplica and
//! UpdateMetadata, read into [`crate::interbroker`]'s commands and answered.
//!
//! A single node (no `zookeeper.connect`) has no controller but itself: it refuses them with
//! INVALID_REQUEST, naming the sender in its log. The cluster services apply them (issue 8's
//! wiring; until it lands, a cluster broker refuses them the same way).

use kafka_protocol::error::ResponseError as E;
use kafka_protocol_3x::messages::{
    LeaderAndIsrResponse, StopReplicaResponse, UpdateMetadataResponse,
};

use crate::interbroker::{leader_and_isr_command, stop_replica_command, update_metadata_command};
use crate::protocol::frame::Reply;
use crate::protocol::interbroker::{InterBrokerBody, InterBrokerRequest};
use crate::services::Services;

/// Answers one controller request.
pub fn route(services: &Services, request: InterBrokerRequest) -> Reply {
    let refusal = E::InvalidRequest.code();
    let why = if services.config.cluster.zookeeper_connect.is_none() {
        "this broker is a single node (no zookeeper.connect)"
    } else {
        "this broker does not apply controller requests yet"
    };
    let bytes = match &request.body {
        InterBrokerBody::LeaderAndIsr(body) => {
            let command = leader_and_isr_command(body, request.version);
            tracing::warn!(client = %request.client_id, ok = command.is_ok(), why,
                "LeaderAndIsr refused");
            let mut response = LeaderAndIsrResponse::default();
            response.error_code = refusal;
            request.respond(&response)
        }
        InterBrokerBody::StopReplica(body) => {
            let command = stop_replica_command(body, request.version);
            tracing::warn!(client = %request.client_id, ok = command.is_ok(), why,
                "StopReplica refused");
            let mut response = StopReplicaResponse::default();
            response.error_code = refusal;
            request.respond(&response)
        }
        InterBrokerBody::UpdateMetadata(body) => {
            let command = update_metadata_command(body, request.version);
            tracing::warn!(client = %request.client_id, ok = command.is_ok(), why,
                "UpdateMetadata refused");
            let mut response = UpdateMetadataResponse::default();
            response.error_code = refusal;
            request.respond(&response)
        }
    };
    Reply::Ready(bytes)
}
