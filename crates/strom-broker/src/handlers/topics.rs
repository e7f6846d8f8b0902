//! `CreateTopics`, `DeleteTopics`, `CreatePartitions`.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse,
};
use strom_meta::config::TopicConfig;

use std::sync::Arc;
use std::time::Duration;

use super::{str_bytes, topic_name};
use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::cluster::admin::NewTopic;
use crate::services::topics::TopicError;
use crate::services::Services;

/// `CreateTopics`: answered at once on a single node; in cluster mode on a blocking thread,
/// as each topic waits for the controller's UpdateMetadata.
pub fn create_topics_reply(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: CreateTopicsRequest,
) -> Reply {
    if services.cluster.get().is_none() {
        return Reply::Ready(ctx.respond(&create_topics(services, &ctx, request)));
    }
    let services = services.clone();
    Reply::Later(tokio::task::spawn_blocking(move || {
        ctx.respond(&create_topics(&services, &ctx, request))
    }))
}

/// `DeleteTopics`, answered like [`create_topics_reply`].
pub fn delete_topics_reply(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: DeleteTopicsRequest,
) -> Reply {
    if services.cluster.get().is_none() {
        return Reply::Ready(ctx.respond(&delete_topics(services, &ctx, request)));
    }
    let services = services.clone();
    Reply::Later(tokio::task::spawn_blocking(move || {
        ctx.respond(&delete_topics(&services, &ctx, request))
    }))
}

/// Metadata's auto-creation in cluster mode: writes the topic to ZooKeeper in the background.
pub fn auto_create_in_cluster(services: &Services, name: &str) {
    let Some(node) = services.cluster.get().cloned() else {
        return;
    };
    let config = &services.config;
    let topic = if name == crate::services::coordinator::OFFSETS_TOPIC {
        // With its own settings, as Kafka creates it: offsets.topic.* and compaction, the
        // replication factor capped by the live brokers.
        let live = services.metadata.live_broker_ids().len().max(1);
        let replication = config.cluster.offsets_topic_replication_factor.max(1);
        NewTopic {
            name: name.to_string(),
            partitions: config.offsets_topic_num_partitions,
            replication_factor: replication.min(live as i16),
            assignment: None,
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                (
                    "segment.bytes".to_string(),
                    config.offsets_topic_segment_bytes.to_string(),
                ),
            ]),
        }
    } else if name == crate::services::txn::TXN_TOPIC {
        // transaction.state.log.*, compacted, min.insync.replicas capped by the replication
        // factor, as Kafka creates it.
        let settings = &config.transactions;
        let live = services.metadata.live_broker_ids().len().max(1);
        let replication = settings.log_replication_factor.max(1).min(live as i16);
        NewTopic {
            name: name.to_string(),
            partitions: settings.log_num_partitions,
            replication_factor: replication,
            assignment: None,
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                (
                    "segment.bytes".to_string(),
                    settings.log_segment_bytes.to_string(),
                ),
                (
                    "min.insync.replicas".to_string(),
                    settings.log_min_isr.min(i32::from(replication)).to_string(),
                ),
            ]),
        }
    } else {
        NewTopic {
            name: name.to_string(),
            partitions: config.num_partitions,
            replication_factor: config.default_replication_factor,
            assignment: None,
            configs: BTreeMap::new(),
        }
    };
    tokio::spawn(async move {
        let name = topic.name.clone();
        if let Err(e) = node.create_topic(topic, false, Duration::ZERO).await {
            if e.code != E::TopicAlreadyExists.code() && e.code != E::RequestTimedOut.code() {
                tracing::info!(topic = %name, reason = %e.message, "auto-creation failed");
            }
        }
    });
}

/// Runs a cluster operation to its end from a handler (a blocking thread, or a worker of the
/// multi-threaded runtime, which hands its other tasks on meanwhile).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| handle.block_on(future)))
        }
        _ => Err("cluster mode needs the multi-threaded runtime".into()),
    }
}

fn manual_both(topic: &kafka_protocol::messages::create_topics_request::CreatableTopic) -> bool {
    !topic.assignments.is_empty() && (topic.num_partitions != -1 || topic.replication_factor != -1)
}

fn id_or_nil(id: Option<uuid::Uuid>) -> uuid::Uuid {
    id.unwrap_or_else(uuid::Uuid::nil)
}

/// Handles `CreateTopics` (and its `validate_only` mode).
pub fn create_topics(
    services: &Services,
    ctx: &RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    let mut seen = std::collections::HashSet::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        result.num_partitions = -1;
        result.replication_factor = -1;
        if !seen.insert(name.clone()) {
            result.error_code = E::InvalidRequest.code();
            result.error_message = Some(str_bytes(format!(
                "topic '{name}' appears more than once in the request"
            )));
            response.topics.push(result);
            continue;
        }
        let mut configs = BTreeMap::new();
        for c in &topic.configs {
            if let Some(value) = &c.value {
                configs.insert(c.name.to_string(), value.to_string());
            }
        }
        let outcome = if !topic.assignments.is_empty() {
            manual_assignment(
                services,
                &topic.assignments,
                topic.num_partitions,
                topic.replication_factor,
            )
        } else {
            let partitions = if topic.num_partitions == -1 {
                services.config.num_partitions
            } else {
                topic.num_partitions
            };
            let replication = if topic.replication_factor == -1 {
                services.config.default_replication_factor
            } else {
                topic.replication_factor
            };
            Ok((partitions, replication))
        };
        let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
        let created = match services.cluster.get() {
            // Cluster mode: the assignment is placed (or checked) over the live brokers and
            // written to ZooKeeper; the answer waits for the controller's UpdateMetadata.
            Some(node) => {
                let manual = (!topic.assignments.is_empty()).then(|| {
                    topic
                        .assignments
                        .iter()
                        .map(|a| {
                            (
                                a.partition_index,
                                a.broker_ids.iter().map(|b| b.0).collect(),
                            )
                        })
                        .collect()
                });
                let partitions = if topic.num_partitions == -1 {
                    services.config.num_partitions
                } else {
                    topic.num_partitions
                };
                let replication_factor = if topic.replication_factor == -1 {
                    services.config.default_replication_factor
                } else {
                    topic.replication_factor
                };
                let new = NewTopic {
                    name: name.clone(),
                    partitions,
                    replication_factor,
                    assignment: manual,
                    configs,
                };
                if manual_both(&topic) {
                    Err(TopicError::new(
                        E::InvalidRequest.code(),
                        "both numPartitions/replicationFactor and a manual assignment were given; use one",
                    ))
                } else {
                    block_on(node.create_topic(new, request.validate_only, timeout))
                        .map_err(|e| TopicError::new(E::UnknownServerError.code(), e))
                        .and_then(|created| created)
                }
            }
            None => outcome.and_then(|(partitions, replication)| {
                off_worker(|| {
                    services.topics.create_topic(
                        &name,
                        partitions,
                        replication,
                        configs,
                        request.validate_only,
                    )
                })
            }),
        };
        match created {
            Ok(meta) => {
                if ctx.version >= 7 && !request.validate_only {
                    result.topic_id = meta.topic_id;
                }
                if ctx.version >= 5 {
                    result.num_partitions = meta.partitions;
                    result.replication_factor = meta.replication_factor;
                    let entries = TopicConfig::describe(
                        &services.live.current(),
                        &meta.configs,
                        None,
                        false,
                        false,
                    );
                    result.configs = Some(
                        entries
                            .into_iter()
                            .map(|e| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = str_bytes(e.name);
                                c.value = e.value.map(str_bytes);
                                c.read_only = e.read_only;
                                c.config_source = e.source.kafka_code();
                                c.is_sensitive = e.is_sensitive;
                                c
                            })
                            .collect(),
                    );
                }
            }
            Err(e) => {
                tracing::info!(client = %ctx.client_id, topic = %name, reason = %e.message, "CreateTopics refused");
                result.error_code = e.code;
                result.error_message = Some(str_bytes(e.message));
            }
        }
        response.topics.push(result);
    }
    response
}

/// Checks a manual replica assignment: partitions numbered 0..n, every replica a live broker.
/// Returns (partitions, replication factor).
fn manual_assignment(
    services: &Services,
    assignments: &[kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment],
    num_partitions: i32,
    replication_factor: i16,
) -> Result<(i32, i16), crate::services::topics::TopicError> {
    use crate::services::topics::TopicError;
    if num_partitions != -1 || replication_factor != -1 {
        return Err(TopicError::new(
            E::InvalidRequest.code(),
            "both numPartitions/replicationFactor and a manual assignment were given; use one",
        ));
    }
    let mut indexes: Vec<i32> = assignments.iter().map(|a| a.partition_index).collect();
    indexes.sort_unstable();
    if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
        return Err(TopicError::new(
            E::InvalidReplicaAssignment.code(),
            "partitions in a manual assignment must be numbered 0..n without gaps",
        ));
    }
    for a in assignments {
        if a.broker_ids
            .iter()
            .any(|b| !services.metadata.is_live_broker(b.0))
            || a.broker_ids.is_empty()
        {
            return Err(TopicError::new(
                E::InvalidReplicaAssignment.code(),
                format!(
                    "partition {} is assigned to brokers {:?}; {}",
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>(),
                    live_brokers(services)
                ),
            ));
        }
    }
    Ok((
        assignments.len() as i32,
        assignments[0].broker_ids.len() as i16,
    ))
}

/// Handles `DeleteTopics`, by name (v1–5) or by name or id (v6+).
pub fn delete_topics(
    services: &Services,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut response = DeleteTopicsResponse::default();
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if ctx.version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    for (name, id) in wanted {
        let mut result = DeletableTopicResult::default();
        let with_message = ctx.version >= 5;
        if ctx.version >= 6 {
            result.topic_id = id;
        }
        let resolved = match &name {
            Some(n) => Some(n.clone()),
            None => services
                .metadata
                .cluster()
                .topic_by_id(&id)
                .map(|t| t.name.clone()),
        };
        match resolved {
            None => {
                result.error_code = E::UnknownTopicId.code();
                if with_message {
                    result.error_message = Some(str_bytes(format!("no topic has id {id}")));
                }
            }
            Some(n) => {
                result.name = Some(topic_name(&n));
                let deleted = match services.cluster.get() {
                    Some(node) => {
                        let id = services
                            .metadata
                            .cluster()
                            .topics
                            .get(&n)
                            .map(|t| t.topic_id);
                        let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
                        block_on(node.delete_topic(&n, timeout))
                            .map_err(|e| TopicError::new(E::UnknownServerError.code(), e))
                            .and_then(|deleted| deleted)
                            .map(|()| id_or_nil(id))
                    }
                    None => services.topics.delete_topic(&n).map(|meta| meta.topic_id),
                };
                match deleted {
                    Ok(topic_id) => {
                        if ctx.version >= 6 {
                            result.topic_id = topic_id;
                        }
                    }
                    Err(e) => {
                        result.error_code = e.code;
                        if with_message {
                            result.error_message = Some(str_bytes(e.message));
                        }
                    }
                }
            }
        }
        response.responses.push(result);
    }
    response
}

/// `CreatePartitions`, answered like [`create_topics_reply`].
pub fn create_partitions_reply(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: CreatePartitionsRequest,
) -> Reply {
    if services.cluster.get().is_none() {
        return Reply::Ready(ctx.respond(&create_partitions(services, request)));
    }
    let services = services.clone();
    Reply::Later(tokio::task::spawn_blocking(move || {
        ctx.respond(&create_partitions(&services, request))
    }))
}

/// Handles `CreatePartitions`: in cluster mode through ZooKeeper (any broker; the controller
/// gives the new partitions leaders), on a single node by the topic admin.
pub fn create_partitions(
    services: &Services,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    if let Some(node) = services.cluster.get() {
        return create_partitions_in_cluster(node, request);
    }
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        let assignment_ok = topic.assignments.as_ref().is_none_or(|list| {
            list.iter().all(|a| {
                !a.broker_ids.is_empty()
                    && a.broker_ids
                        .iter()
                        .all(|b| services.metadata.is_live_broker(b.0))
            })
        });
        let outcome = if assignment_ok {
            off_worker(|| {
                services
                    .topics
                    .add_partitions(&name, topic.count, request.validate_only)
            })
        } else {
            Err(crate::services::topics::TopicError::new(
                E::InvalidReplicaAssignment.code(),
                match services.metadata.live_broker_ids().as_slice() {
                    [only] => format!("new partitions may only be assigned to broker {only}"),
                    ids => {
                        format!("new partitions may only be assigned to the live brokers {ids:?}")
                    }
                },
            ))
        };
        if let Err(e) = outcome {
            result.error_code = e.code;
            result.error_message = Some(str_bytes(e.message));
        }
        response.results.push(result);
    }
    response
}

/// CreatePartitions through ZooKeeper: each topic's change is written and waited for (within
/// the request's timeout); a topic named twice is refused as Kafka does.
fn create_partitions_in_cluster(
    node: &crate::services::cluster::ClusterNode,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for topic in &request.topics {
        *seen.entry(topic.name.0.to_string()).or_default() += 1;
    }
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        let outcome = if seen[&name] > 1 {
            Err(TopicError::new(
                E::InvalidRequest.code(),
                "Duplicate topic in request.",
            ))
        } else {
            let manual = topic.assignments.as_ref().map(|list| {
                list.iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
            block_on(node.create_partitions(
                &name,
                topic.count,
                manual,
                request.validate_only,
                timeout,
            ))
            .map_err(|e| TopicError::new(E::UnknownServerError.code(), e))
            .and_then(|outcome| outcome)
        };
        if let Err(e) = outcome {
            tracing::info!(topic = %name, code = e.code, message = %e.message,
                "CreatePartitions refused");
            result.error_code = e.code;
            result.error_message = Some(str_bytes(e.message));
        }
        response.results.push(result);
    }
    response
}

/// Runs a topic change that may create thousands of partition directories (tens of seconds)
/// without stalling the other connections served by this runtime worker: on the multi-threaded
/// runtime, `block_in_place` hands them to another thread meanwhile.
fn off_worker<T>(change: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(change)
        }
        _ => change(),
    }
}

/// The live brokers, for an error message: "the only live broker is 1" on a single node.
fn live_brokers(services: &Services) -> String {
    match services.metadata.live_broker_ids().as_slice() {
        [only] => format!("the only live broker is {only}"),
        ids => format!("the live brokers are {ids:?}"),
    }
}
