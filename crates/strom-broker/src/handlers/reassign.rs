//! `AlterPartitionReassignments` (API 45, v0–1) and `ListPartitionReassignments` (API 46, v0):
//! moving partitions between brokers.
//!
//! In cluster mode only the active controller serves them (others answer NOT_CONTROLLER, as
//! Kafka's brokers do, and the client asks the controller Metadata names); the controller's
//! pure core decides ([`strom_meta::controller::Controller::alter_reassignments`]). A single
//! node is the only replica of every partition: nothing can move, so a target other than
//! itself is INVALID_REPLICA_ASSIGNMENT and nothing is ever being reassigned.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId as Id,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_meta::controller::{PartitionReassignment, ReassignOutcome};
use strom_meta::replication::{BrokerId, TopicPartition};

use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::Services;

/// One partition's answer: code and message.
type Answer = (TopicPartition, i16, Option<String>);

/// Handles `AlterPartitionReassignments`.
pub fn alter_partition_reassignments(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> Reply {
    let allow_rf_change = request.allow_replication_factor_change;
    let cache = &services.metadata;
    let mut answers: Vec<Option<Answer>> = Vec::new();
    let mut requests = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
            let target: Option<Vec<BrokerId>> = p
                .replicas
                .as_ref()
                .map(|r| r.iter().map(|id| id.0).collect());
            // KIP-860: refuse a change of the replication factor when the client forbids it.
            let current = cache
                .partition(&tp.topic, tp.partition)
                .map(|s| s.replicas.len());
            let changes_rf = matches!((&target, current), (Some(t), Some(n)) if t.len() != n);
            if !allow_rf_change && changes_rf {
                let message = format!(
                    "The replication factor is changed from {} to {} but allowReplicationFactorChange is false",
                    current.unwrap_or(0),
                    target.as_ref().map_or(0, Vec::len)
                );
                answers.push(Some((
                    tp,
                    E::InvalidReplicationFactor.code(),
                    Some(message),
                )));
                continue;
            }
            answers.push(None);
            requests.push((tp, target));
        }
    }
    let Some(node) = services.cluster.get().cloned() else {
        let local = cache.local_broker_id();
        let mut decided = requests.into_iter().map(|(tp, target)| {
            let outcome = match target {
                _ if cache.partition(&tp.topic, tp.partition).is_none() => {
                    ReassignOutcome::UnknownPartition
                }
                None => ReassignOutcome::NoReassignmentInProgress,
                Some(t) if t == vec![local] => ReassignOutcome::Started,
                Some(t) => ReassignOutcome::InvalidReplicas(format!(
                    "Replica assignment has brokers that are not alive: {t:?} (a single node has only broker {local})."
                )),
            };
            (tp, outcome.code(), outcome.message())
        });
        let answers = answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| decided.next().expect("one per request")))
            .collect();
        return Reply::Ready(ctx.respond(&alter_response(0, None, allow_rf_change, answers)));
    };
    Reply::Later(tokio::spawn(async move {
        let asked: Vec<TopicPartition> = requests.iter().map(|(tp, _)| tp.clone()).collect();
        let answer = match node.alter_reassignments(requests).await {
            Some(outcomes) => {
                let mut decided = outcomes
                    .into_iter()
                    .map(|(tp, o)| (tp, o.code(), o.message()));
                let answers = answers
                    .into_iter()
                    .map(|a| a.unwrap_or_else(|| decided.next().expect("one per request")))
                    .collect();
                alter_response(0, None, allow_rf_change, answers)
            }
            None => {
                let code = E::NotController.code();
                let answers = asked.into_iter().map(|tp| (tp, code, None)).collect();
                let message = "This is not the correct controller for this cluster.";
                alter_response(code, Some(message), allow_rf_change, answers)
            }
        };
        ctx.respond(&answer)
    }))
}

/// Handles `ListPartitionReassignments`.
pub fn list_partition_reassignments(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> Reply {
    let partitions: Option<Vec<TopicPartition>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(|&p| TopicPartition::new(t.name.0.as_str(), p))
            })
            .collect()
    });
    let Some(node) = services.cluster.get().cloned() else {
        return Reply::Ready(ctx.respond(&list_response(0, Vec::new())));
    };
    Reply::Later(tokio::spawn(async move {
        let answer = match node.list_reassignments(partitions).await {
            Some(moving) => list_response(0, moving),
            None => list_response(E::NotController.code(), Vec::new()),
        };
        ctx.respond(&answer)
    }))
}

fn ids(brokers: &[BrokerId]) -> Vec<Id> {
    brokers.iter().map(|&b| Id(b)).collect()
}

/// The response, partitions grouped by topic in the order given.
fn alter_response(
    error_code: i16,
    error_message: Option<&'static str>,
    allow_rf_change: bool,
    answers: Vec<Answer>,
) -> AlterPartitionReassignmentsResponse {
    let mut response = AlterPartitionReassignmentsResponse::default();
    response.error_code = error_code;
    response.error_message = error_message.map(StrBytes::from_static_str);
    response.allow_replication_factor_change = allow_rf_change;
    for (tp, code, message) in answers {
        let same = response
            .responses
            .last()
            .is_some_and(|t| t.name.0.as_str() == tp.topic);
        if !same {
            let mut topic = ReassignableTopicResponse::default();
            topic.name = TopicName(StrBytes::from_string(tp.topic.clone()));
            response.responses.push(topic);
        }
        let mut partition = ReassignablePartitionResponse::default();
        partition.partition_index = tp.partition;
        partition.error_code = code;
        partition.error_message = message.map(StrBytes::from_string);
        let topic = response.responses.last_mut().expect("pushed");
        topic.partitions.push(partition);
    }
    response
}

fn list_response(
    error_code: i16,
    moving: Vec<PartitionReassignment>,
) -> ListPartitionReassignmentsResponse {
    let mut response = ListPartitionReassignmentsResponse::default();
    response.error_code = error_code;
    if error_code != 0 {
        response.error_message = Some(StrBytes::from_static_str(
            "This is not the correct controller for this cluster.",
        ));
    }
    for m in moving {
        let same = response
            .topics
            .last()
            .is_some_and(|t| t.name.0.as_str() == m.partition.topic);
        if !same {
            let mut topic = OngoingTopicReassignment::default();
            topic.name = TopicName(StrBytes::from_string(m.partition.topic.clone()));
            response.topics.push(topic);
        }
        let mut partition = OngoingPartitionReassignment::default();
        partition.partition_index = m.partition.partition;
        partition.replicas = ids(&m.replicas);
        partition.adding_replicas = ids(&m.adding);
        partition.removing_replicas = ids(&m.removing);
        response
            .topics
            .last_mut()
            .expect("pushed")
            .partitions
            .push(partition);
    }
    response
}
