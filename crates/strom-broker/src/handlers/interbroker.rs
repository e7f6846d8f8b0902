//! The controller's requests on the receiving broker: LeaderAndIsr, StopReplica and
//! UpdateMetadata, read into [`crate::interbroker`]'s commands and answered.
//!
//! A single node (no `zookeeper.connect`) has no controller but itself: it refuses them with
//! INVALID_REQUEST, naming the sender in its log. In cluster mode every request is first fenced
//! by its controller epoch and broker epoch (STALE_CONTROLLER_EPOCH, STALE_BROKER_EPOCH; a
//! request for a registration this broker does not know yet waits briefly for it); an accepted
//! UpdateMetadata is applied to the metadata cache; LeaderAndIsr and StopReplica are applied by
//! the replica manager, and then, for `__consumer_offsets` partitions, by the group
//! coordinator (load what this broker now leads, drop what it no longer leads). A
//! ControlledShutdown from a stopping broker (not fenced: it comes from a broker, not a
//! controller) is served by this broker's controller, or answered NOT_CONTROLLER.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol_3x::messages::controlled_shutdown_response::RemainingPartition;
use kafka_protocol_3x::messages::leader_and_isr_response::{
    LeaderAndIsrPartitionError, LeaderAndIsrTopicError,
};
use kafka_protocol_3x::messages::stop_replica_response::StopReplicaPartitionError;
use kafka_protocol_3x::messages::TopicName;
use kafka_protocol_3x::messages::{
    ControlledShutdownResponse, LeaderAndIsrResponse, StopReplicaResponse, UpdateMetadataResponse,
};
use kafka_protocol_3x::protocol::StrBytes;

use crate::interbroker::{
    leader_and_isr_command, stop_replica_command, update_metadata_command, ControllerHeader,
};
use crate::protocol::frame::Reply;
use crate::protocol::interbroker::{InterBrokerBody, InterBrokerRequest};
use crate::services::cluster::ClusterNode;
use crate::services::coordinator::OFFSETS_TOPIC;
use crate::services::txn::TXN_TOPIC;
use crate::services::Services;

/// How long a request addressed to a registration this broker does not know yet waits for it.
const NOT_READY_WAIT: Duration = Duration::from_secs(5);

/// Answers one controller request.
pub fn route(services: &Arc<Services>, request: InterBrokerRequest) -> Reply {
    match services.cluster.get() {
        Some(node) => {
            let node = node.clone();
            let services = services.clone();
            Reply::Later(tokio::spawn(async move {
                clustered(&services, &node, request).await
            }))
        }
        None => Reply::Ready(single_node(&request)),
    }
}

/// A single node refuses every controller request.
fn single_node(request: &InterBrokerRequest) -> bytes::Bytes {
    let why = "this broker is a single node (no zookeeper.connect)";
    let ok = match &request.body {
        InterBrokerBody::LeaderAndIsr(body) => {
            leader_and_isr_command(body, request.version).is_ok()
        }
        InterBrokerBody::StopReplica(body) => stop_replica_command(body, request.version).is_ok(),
        InterBrokerBody::UpdateMetadata(body) => {
            update_metadata_command(body, request.version).is_ok()
        }
        InterBrokerBody::ControlledShutdown(_) => true,
    };
    tracing::warn!(client = %request.client_id, ok, why, "controller request refused");
    respond(request, E::InvalidRequest.code())
}

/// The response of `request`'s kind with a top-level `error_code`.
fn respond(request: &InterBrokerRequest, error_code: i16) -> bytes::Bytes {
    match &request.body {
        InterBrokerBody::LeaderAndIsr(_) => {
            let mut response = LeaderAndIsrResponse::default();
            response.error_code = error_code;
            request.respond(&response)
        }
        InterBrokerBody::StopReplica(_) => {
            let mut response = StopReplicaResponse::default();
            response.error_code = error_code;
            request.respond(&response)
        }
        InterBrokerBody::UpdateMetadata(_) => {
            let mut response = UpdateMetadataResponse::default();
            response.error_code = error_code;
            request.respond(&response)
        }
        InterBrokerBody::ControlledShutdown(_) => {
            let mut response = ControlledShutdownResponse::default();
            response.error_code = error_code;
            request.respond(&response)
        }
    }
}

/// Fences `header`; `Some(code)` to answer with when refused.
async fn fence(node: &Arc<ClusterNode>, header: &ControllerHeader, what: &str) -> Option<i16> {
    match node.accept_when_ready(header, NOT_READY_WAIT).await {
        Ok(()) => None,
        Err(refusal) => {
            tracing::info!(
                what,
                controller = header.controller_id,
                controller_epoch = header.controller_epoch,
                broker_epoch = header.broker_epoch,
                latest_controller_epoch = node.latest_controller_epoch(),
                ?refusal,
                "controller request fenced"
            );
            Some(refusal.code().unwrap_or(E::StaleBrokerEpoch.code()))
        }
    }
}

/// A cluster broker: fence, then apply (UpdateMetadata) or refuse as not applied yet
/// (LeaderAndIsr and StopReplica: the replica manager in `services` will apply them).
async fn clustered(
    services: &Arc<Services>,
    node: &Arc<ClusterNode>,
    request: InterBrokerRequest,
) -> bytes::Bytes {
    let invalid = E::InvalidRequest.code();
    match &request.body {
        InterBrokerBody::ControlledShutdown(body) => {
            // Versions 0 and 1 carry no broker epoch: -1, not checked.
            let epoch = if request.version >= 2 {
                body.broker_epoch
            } else {
                -1
            };
            let timeout = Duration::from_millis(
                services.config.cluster.controller_socket_timeout_ms.max(1) as u64,
            );
            let (error_code, remaining) = node
                .serve_controlled_shutdown(body.broker_id.0, epoch, timeout)
                .await;
            let mut response = ControlledShutdownResponse::default();
            response.error_code = error_code;
            response.remaining_partitions = remaining
                .into_iter()
                .map(|tp| {
                    let mut partition = RemainingPartition::default();
                    partition.topic_name = TopicName(StrBytes::from_string(tp.topic));
                    partition.partition_index = tp.partition;
                    partition
                })
                .collect();
            request.respond(&response)
        }
        InterBrokerBody::UpdateMetadata(body) => {
            let command = match update_metadata_command(body, request.version) {
                Ok(command) => command,
                Err(error) => {
                    tracing::warn!(client = %request.client_id, %error, "UpdateMetadata refused");
                    return respond(&request, invalid);
                }
            };
            if let Some(code) = fence(node, &command.header, "UpdateMetadata").await {
                return respond(&request, code);
            }
            node.load_topic_configs(&command.partitions).await;
            node.apply_update_metadata(&command);
            respond(&request, 0)
        }
        InterBrokerBody::LeaderAndIsr(body) => {
            let command = match leader_and_isr_command(body, request.version) {
                Ok(command) => command,
                Err(error) => {
                    tracing::warn!(client = %request.client_id, %error, "LeaderAndIsr refused");
                    return respond(&request, invalid);
                }
            };
            if let Some(code) = fence(node, &command.header, "LeaderAndIsr").await {
                return respond(&request, code);
            }
            node.load_topic_configs(&command.partitions).await;
            let replicas = services.replicas.clone();
            let applied = command.clone();
            let errors =
                tokio::task::spawn_blocking(move || replicas.apply_leader_and_isr(&applied))
                    .await
                    .unwrap_or_else(|_| {
                        vec![E::KafkaStorageError.code(); command.partitions.len()]
                    });
            coordinate_after_leader_and_isr(services, &command, &errors);
            let mut response = LeaderAndIsrResponse::default();
            let mut topics: std::collections::BTreeMap<&str, LeaderAndIsrTopicError> =
                std::collections::BTreeMap::new();
            for (partition, code) in command.partitions.iter().zip(errors) {
                let topic = topics
                    .entry(partition.info.partition.topic.as_str())
                    .or_insert_with(|| {
                        let mut topic = LeaderAndIsrTopicError::default();
                        topic.topic_id = partition.topic_id;
                        topic
                    });
                let mut error = LeaderAndIsrPartitionError::default();
                error.partition_index = partition.info.partition.partition;
                error.error_code = code;
                topic.partition_errors.push(error);
            }
            response.topics = topics.into_values().collect();
            request.respond(&response)
        }
        InterBrokerBody::StopReplica(body) => {
            let command = match stop_replica_command(body, request.version) {
                Ok(command) => command,
                Err(error) => {
                    tracing::warn!(client = %request.client_id, %error, "StopReplica refused");
                    return respond(&request, invalid);
                }
            };
            if let Some(code) = fence(node, &command.header, "StopReplica").await {
                return respond(&request, code);
            }
            let replicas = services.replicas.clone();
            let applied = command.clone();
            let errors = tokio::task::spawn_blocking(move || replicas.apply_stop_replica(&applied))
                .await
                .unwrap_or_else(|_| vec![E::KafkaStorageError.code(); command.partitions.len()]);
            for ((partition, _, _), code) in command.partitions.iter().zip(&errors) {
                if partition.topic == OFFSETS_TOPIC && *code == 0 {
                    services.groups.resign(partition.partition);
                }
                if partition.topic == TXN_TOPIC && *code == 0 {
                    crate::services::txn::resign_coordinator(services, partition.partition);
                }
            }
            let mut response = StopReplicaResponse::default();
            for ((partition, _, _), code) in command.partitions.iter().zip(errors) {
                let mut error = StopReplicaPartitionError::default();
                error.topic_name = TopicName(StrBytes::from_string(partition.topic.clone()));
                error.partition_index = partition.partition;
                error.error_code = code;
                response.partition_errors.push(error);
            }
            request.respond(&response)
        }
    }
}

/// The group and transaction coordinators follow the leadership of `__consumer_offsets` and
/// `__transaction_state` partitions: each loads a partition a LeaderAndIsr made this broker
/// lead (applied without error) and drops one that another broker now leads (unless the
/// request was older than what the partition has).
fn coordinate_after_leader_and_isr(
    services: &Arc<Services>,
    command: &crate::interbroker::LeaderAndIsrCommand,
    errors: &[i16],
) {
    let local = services.metadata.local_broker_id();
    for (partition, code) in command.partitions.iter().zip(errors) {
        let info = &partition.info;
        let state = &info.state.value;
        if info.partition.topic == TXN_TOPIC {
            if state.leader == local && *code == 0 {
                crate::services::txn::become_coordinator(
                    services,
                    info.partition.partition,
                    state.leader_epoch,
                );
            } else if state.leader != local && *code != E::StaleControllerEpoch.code() {
                crate::services::txn::resign_coordinator(services, info.partition.partition);
            }
            continue;
        }
        if info.partition.topic != OFFSETS_TOPIC {
            continue;
        }
        if state.leader == local && *code == 0 {
            services
                .groups
                .become_leader(info.partition.partition, state.leader_epoch);
        } else if state.leader != local && *code != E::StaleControllerEpoch.code() {
            // Another broker leads now: stop serving even if following failed here.
            services.groups.resign(info.partition.partition);
        }
    }
}
