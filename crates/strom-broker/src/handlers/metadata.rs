//! `Metadata`: brokers, topics and partitions, with auto-creation of topics.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use strom_meta::TopicMetadata;
use uuid::Uuid;

use super::{str_bytes, topic_name};
use crate::protocol::request::RequestContext;
use crate::services::Services;

/// Answers `Metadata`.
pub fn handle(
    services: &Services,
    ctx: &RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    let mut response = MetadataResponse::default();
    for broker in services.metadata.brokers() {
        // A broker is listed with its first endpoint (Strom has one listener name).
        let Some(endpoint) = broker.endpoints.first() else {
            continue;
        };
        let mut b = MetadataResponseBroker::default();
        b.node_id = BrokerId(broker.id);
        b.host = str_bytes(endpoint.host.clone());
        b.port = i32::from(endpoint.port);
        if ctx.version >= 1 {
            b.rack = broker.rack.clone().map(str_bytes);
        }
        response.brokers.push(b);
    }
    // Fields a version does not carry must stay at their defaults, or the encoder refuses.
    if ctx.version >= 2 {
        response.cluster_id = Some(str_bytes(services.metadata.cluster_id().to_string()));
    }
    if ctx.version >= 1 {
        response.controller_id = BrokerId(services.metadata.controller_id());
    }
    // Versions 8-10 carry the cluster's operations; 11+ moved them to DescribeCluster.
    response.cluster_authorized_operations = super::authorized::field(
        (8..=10).contains(&ctx.version) && request.include_cluster_authorized_operations,
        super::authorized::CLUSTER,
    );
    let authorized = ctx.version >= 8 && request.include_topic_authorized_operations;
    // Version 0 uses an empty list for "all topics"; later versions use null.
    let all = match &request.topics {
        None => true,
        Some(list) => list.is_empty() && ctx.version == 0,
    };
    if all {
        let metadata = services.metadata.cluster();
        for topic in metadata.topics.values() {
            response
                .topics
                .push(describe_topic(services, topic, authorized, ctx.version));
        }
        return response;
    }
    let auto_create = services.config.auto_create_topics_enable
        && (ctx.version < 4 || request.allow_auto_topic_creation);
    for requested in request.topics.unwrap_or_default() {
        let name = requested.name.as_ref().map(|n| n.0.to_string());
        let known = {
            let metadata = services.metadata.cluster();
            match &name {
                Some(name) => metadata.topics.get(name).cloned(),
                None => metadata.topic_by_id(&requested.topic_id).cloned(),
            }
        };
        let topic = match (known, name) {
            (Some(topic), _) => Ok(topic),
            (None, None) => Err((E::UnknownTopicId.code(), None, requested.topic_id)),
            (None, Some(name)) => {
                if let Err(reason) = strom_meta::validate_topic_name(&name) {
                    tracing::debug!(topic = %name, %reason, "metadata for an invalid topic name");
                    Err((E::InvalidTopicException.code(), Some(name), Uuid::nil()))
                } else if auto_create && services.cluster.get().is_some() {
                    // Cluster mode: the topic is written to ZooKeeper in the background and
                    // the client asks again, as Kafka answers LEADER_NOT_AVAILABLE meanwhile.
                    // `__consumer_offsets` gets its own settings (offsets.topic.*).
                    super::topics::auto_create_in_cluster(services, &name);
                    Err((E::LeaderNotAvailable.code(), Some(name), Uuid::nil()))
                } else if auto_create && name == crate::services::coordinator::OFFSETS_TOPIC {
                    // Kafka creates the internal topic with its own settings (partitions,
                    // compaction), not as an ordinary auto-created topic: a tool that asks for
                    // it first (Burrow does) must not leave the coordinator a 1-partition,
                    // time-retained __consumer_offsets.
                    match services.groups.ensure_topic() {
                        Ok(()) => services
                            .metadata
                            .cluster()
                            .topics
                            .get(&name)
                            .cloned()
                            .ok_or((E::UnknownTopicOrPartition.code(), Some(name), Uuid::nil())),
                        Err(code) => Err((code, Some(name), Uuid::nil())),
                    }
                } else if auto_create {
                    match services.topics.create_topic(
                        &name,
                        services.config.num_partitions,
                        services.config.default_replication_factor,
                        BTreeMap::new(),
                        false,
                    ) {
                        Ok(topic) => Ok(topic),
                        // Lost a race with another creator: describe what is there now.
                        Err(e) if e.code == E::TopicAlreadyExists.code() => services
                            .metadata
                            .cluster()
                            .topics
                            .get(&name)
                            .cloned()
                            .ok_or((E::UnknownTopicOrPartition.code(), Some(name), Uuid::nil())),
                        Err(e) => Err((e.code, Some(name), Uuid::nil())),
                    }
                } else {
                    Err((E::UnknownTopicOrPartition.code(), Some(name), Uuid::nil()))
                }
            }
        };
        match topic {
            Ok(topic) => {
                response
                    .topics
                    .push(describe_topic(services, &topic, authorized, ctx.version))
            }
            Err((code, name, id)) => {
                let mut t = MetadataResponseTopic::default();
                t.error_code = code;
                t.name = name.as_deref().map(topic_name);
                if ctx.version >= 10 {
                    t.topic_id = id;
                }
                // Kafka describes the operations of a topic it does not know by name as well;
                // an unknown topic id keeps the default.
                t.topic_authorized_operations = super::authorized::field(
                    authorized && t.name.is_some(),
                    super::authorized::TOPIC,
                );
                response.topics.push(t);
            }
        }
    }
    response
}

fn describe_topic(
    services: &Services,
    topic: &TopicMetadata,
    authorized: bool,
    version: i16,
) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(topic_name(&topic.name));
    if version >= 10 {
        t.topic_id = topic.topic_id;
    }
    if version >= 1 {
        t.is_internal = topic.internal;
    }
    t.topic_authorized_operations = super::authorized::field(authorized, super::authorized::TOPIC);
    let offline = services.replicas.offline_partitions(&topic.name);
    let available = services.metadata.available_leaders();
    services
        .metadata
        .with_topic_partitions(&topic.name, |states| {
            for p in 0..topic.partitions {
                let mut partition = MetadataResponsePartition::default();
                partition.partition_index = p;
                let state = usize::try_from(p)
                    .ok()
                    .and_then(|i| states.get(i))
                    .and_then(Option::as_ref);
                let Some(state) = state else {
                    // Created a moment ago and not published yet: as Kafka answers for a
                    // partition whose leader is not known.
                    partition.error_code = E::LeaderNotAvailable.code();
                    partition.leader_id = BrokerId(-1);
                    t.partitions.push(partition);
                    continue;
                };
                let brokers = |ids: &[i32]| ids.iter().map(|&id| BrokerId(id)).collect::<Vec<_>>();
                partition.leader_id = BrokerId(state.leader_and_isr.leader);
                // A leader that is not alive (or that this broker found gone before the
                // controller's word arrived) is answered as Kafka does: no leader.
                if !available.contains(&state.leader_and_isr.leader) {
                    partition.error_code = E::LeaderNotAvailable.code();
                    partition.leader_id = BrokerId(-1);
                }
                if version >= 7 {
                    partition.leader_epoch = state.leader_and_isr.leader_epoch;
                }
                partition.replica_nodes = brokers(&state.replicas);
                partition.isr_nodes = brokers(&state.leader_and_isr.isr);
                // Replicas on brokers that are not alive are offline, as Kafka's controller
                // tells its brokers.
                if version >= 5 {
                    let dead: Vec<i32> = state
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| !available.contains(r))
                        .collect();
                    partition.offline_replicas = brokers(&dead);
                }
                // A partition whose log failed to open at startup is described as Kafka
                // describes one on a failed log dir: no leader, this broker its offline replica.
                if offline.contains(&p) {
                    partition.error_code = E::KafkaStorageError.code();
                    if version >= 5 {
                        partition.offline_replicas =
                            vec![BrokerId(services.metadata.local_broker_id())];
                    }
                }
                t.partitions.push(partition);
            }
        });
    t
}
