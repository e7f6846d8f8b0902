//! `ElectLeaders` (API 43): preferred and unclean leader elections asked for by an admin.
//!
//! In cluster mode only the active controller serves it (others answer NOT_CONTROLLER, as
//! Kafka's brokers do, and the client asks the controller Metadata names); the controller's
//! pure core decides ([`strom_meta::controller::Controller::elect_leaders`]). A single node is
//! the only replica of every partition: each known partition already has its preferred leader.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_meta::controller::ElectionType;
use strom_meta::replication::TopicPartition;

use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::Services;

/// Handles `ElectLeaders`.
pub fn elect_leaders(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: ElectLeadersRequest,
) -> Reply {
    let partitions: Option<Vec<TopicPartition>> = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|&p| TopicPartition::new(t.topic.0.as_str(), p))
            })
            .collect()
    });
    let kind = match request.election_type {
        0 => ElectionType::Preferred,
        1 => ElectionType::Unclean,
        _ => {
            let results = partitions
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p, E::InvalidRequest.code()))
                .collect();
            return Reply::Ready(ctx.respond(&response(E::InvalidRequest.code(), results)));
        }
    };
    let Some(node) = services.cluster.get().cloned() else {
        let cache = &services.metadata;
        let results = partitions
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let known = cache.partition(&p.topic, p.partition).is_some();
                let code = if known {
                    84
                } else {
                    E::UnknownTopicOrPartition.code()
                };
                (p, code)
            })
            .collect();
        return Reply::Ready(ctx.respond(&response(0, results)));
    };
    let timeout = Duration::from_millis(request.timeout_ms.clamp(0, 300_000) as u64);
    Reply::Later(tokio::spawn(async move {
        let asked = partitions.clone();
        let answer = match node.elect_leaders(partitions, kind, timeout).await {
            Some(results) => response(0, results),
            None => {
                let code = E::NotController.code();
                let results = asked
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| (p, code))
                    .collect();
                response(code, results)
            }
        };
        ctx.respond(&answer)
    }))
}

/// The response, partitions grouped by topic in the order given.
fn response(error_code: i16, results: Vec<(TopicPartition, i16)>) -> ElectLeadersResponse {
    let mut response = ElectLeadersResponse::default();
    response.error_code = error_code;
    for (partition, code) in results {
        let same_topic = response
            .replica_election_results
            .last()
            .is_some_and(|t| t.topic.0.as_str() == partition.topic);
        if !same_topic {
            let mut topic = ReplicaElectionResult::default();
            topic.topic = TopicName(StrBytes::from_string(partition.topic.clone()));
            response.replica_election_results.push(topic);
        }
        let mut result = PartitionResult::default();
        result.partition_id = partition.partition;
        result.error_code = code;
        result.error_message = (code != 0).then(|| StrBytes::from_static_str(message(code)));
        let topic = response
            .replica_election_results
            .last_mut()
            .expect("pushed");
        topic.partition_result.push(result);
    }
    response
}

fn message(code: i16) -> &'static str {
    match code {
        3 => "This server does not host this topic-partition.",
        7 => "The election did not complete within the request's timeout.",
        41 => "This is not the correct controller for this cluster.",
        42 => "The election type is neither 0 (preferred) nor 1 (unclean).",
        80 => "The preferred leader was not available.",
        83 => "Eligible topic partition leaders are not available.",
        84 => "Leader election not needed for topic partition.",
        _ => "The election failed.",
    }
}
