//! `DescribeConfigs`, `AlterConfigs` and `IncrementalAlterConfigs`.
//!
//! Topic configurations are overrides stored in the cluster metadata; a change is validated
//! as a whole, written to the store, and then applied to the topic's logs at once (so a
//! `retention.ms` change takes effect at the next retention pass). BROKER resources (dynamic
//! broker configuration) are in [`super::broker_configs`].

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use strom_meta::config::{ConfigEntry, ConfigType, TopicConfig};

use super::config_ops::{apply_operations, ConfigOp, ListKey};
use super::str_bytes;
use crate::protocol::request::RequestContext;
use crate::services::topics::TopicError;
use crate::services::Services;

/// Kafka's resource type codes.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Handles `DescribeConfigs`.
pub fn describe_configs(
    services: &Services,
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.to_string();
        let keys: Option<Vec<String>> = resource
            .configuration_keys
            .as_ref()
            .map(|k| k.iter().map(|s| s.to_string()).collect());
        let entries: Result<Vec<ConfigEntry>, (i16, String)> = match resource.resource_type {
            TOPIC => match services.metadata.cluster().topics.get(&name) {
                Some(topic) => Ok(TopicConfig::describe(
                    &services.live.current(),
                    &topic.configs,
                    keys.as_deref(),
                    request.include_synonyms,
                    request.include_documentation,
                )),
                None => Err((
                    E::UnknownTopicOrPartition.code(),
                    format!("topic '{name}' does not exist"),
                )),
            },
            BROKER => super::broker_configs::describe(
                services,
                &name,
                keys.as_deref(),
                request.include_synonyms,
                request.include_documentation,
            ),
            other => Err((
                E::InvalidRequest.code(),
                format!("resource type {other} is not supported"),
            )),
        };
        match entries {
            Ok(entries) => {
                for e in entries {
                    result.configs.push(to_wire(
                        e,
                        ctx.version,
                        request.include_synonyms,
                        request.include_documentation,
                    ));
                }
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(str_bytes(message));
            }
        }
        response.results.push(result);
    }
    response
}

fn to_wire(
    e: ConfigEntry,
    version: i16,
    synonyms: bool,
    documentation: bool,
) -> DescribeConfigsResourceResult {
    let mut r = DescribeConfigsResourceResult::default();
    r.name = str_bytes(e.name);
    r.value = if e.is_sensitive {
        None
    } else {
        e.value.map(str_bytes)
    };
    r.read_only = e.read_only;
    r.config_source = e.source.kafka_code();
    r.is_sensitive = e.is_sensitive;
    if synonyms {
        r.synonyms = e
            .synonyms
            .into_iter()
            .map(|s| {
                let mut w = DescribeConfigsSynonym::default();
                w.name = str_bytes(s.name);
                w.value = Some(str_bytes(s.value));
                w.source = s.source.kafka_code();
                w
            })
            .collect();
    }
    if version >= 3 {
        r.config_type = e.config_type.kafka_code();
        if documentation {
            r.documentation = Some(str_bytes(e.documentation));
        }
    }
    r
}

/// Handles `AlterConfigs`: the given set replaces all of a topic's overrides.
pub fn alter_configs(services: &Services, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    for resource in request.resources {
        let mut result =
            kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse::default(
            );
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.to_string();
        let outcome = match resource.resource_type {
            TOPIC => {
                let configs: BTreeMap<String, String> = resource
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                set_topic_configs(services, &name, configs, request.validate_only)
            }
            BROKER => {
                let configs: BTreeMap<String, String> = resource
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                super::broker_configs::alter(services, &name, configs, request.validate_only)
            }
            other => Err(unsupported_resource(other)),
        };
        if let Err(e) = outcome {
            result.error_code = e.code;
            result.error_message = Some(str_bytes(e.message));
        }
        response.responses.push(result);
    }
    response
}

/// Handles `IncrementalAlterConfigs`: SET, DELETE, APPEND and SUBTRACT on a topic's overrides.
pub fn incremental_alter_configs(
    services: &Services,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in request.resources {
        let mut result = kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.to_string();
        let outcome = match resource.resource_type {
            TOPIC => incremental(services, &name, &resource.configs).and_then(|configs| {
                set_topic_configs(services, &name, configs, request.validate_only)
            }),
            BROKER => super::broker_configs::incremental(
                services,
                &name,
                &resource.configs,
                request.validate_only,
            ),
            other => Err(unsupported_resource(other)),
        };
        if let Err(e) = outcome {
            result.error_code = e.code;
            result.error_message = Some(str_bytes(e.message));
        }
        response.responses.push(result);
    }
    response
}

/// Replaces a topic's overrides: through ZooKeeper on a cluster (every broker and the
/// controller learn them from `/config/changes`), in the local metadata on a single node.
fn set_topic_configs(
    services: &Services,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), TopicError> {
    match services.cluster.get() {
        Some(node) => {
            super::topics::block_on(node.alter_topic_config(name, configs, validate_only))
                .map_err(|message| TopicError::new(E::UnknownServerError.code(), message))?
        }
        None => services
            .topics
            .set_topic_configs(name, configs, validate_only),
    }
}

fn unsupported_resource(resource_type: i8) -> TopicError {
    TopicError::new(
        E::InvalidRequest.code(),
        format!("altering resource type {resource_type} is not supported"),
    )
}

/// The overrides of `topic` after the operations (names are topic keys as sent; an unknown
/// one is INVALID_CONFIG).
fn incremental(
    services: &Services,
    topic: &str,
    operations: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
) -> Result<BTreeMap<String, String>, TopicError> {
    let mut configs = services
        .metadata
        .cluster()
        .topics
        .get(topic)
        .map(|t| t.configs.clone())
        .ok_or_else(|| {
            TopicError::new(
                E::UnknownTopicOrPartition.code(),
                format!("topic '{topic}' does not exist"),
            )
        })?;
    let mut ops = Vec::with_capacity(operations.len());
    for op in operations {
        let key = op.name.to_string();
        if !TopicConfig::is_known_key(&key) {
            return Err(TopicError::new(
                E::InvalidConfig.code(),
                format!("unknown topic configuration '{key}'"),
            ));
        }
        ops.push(ConfigOp::new(
            &key,
            op.config_operation,
            op.value.as_deref(),
        ));
    }
    let broker = services.live.current();
    let no_overrides = BTreeMap::new();
    apply_operations(&mut configs, &ops, |key| {
        let inherited = TopicConfig::describe(
            &broker,
            &no_overrides,
            Some(std::slice::from_ref(&key.to_string())),
            false,
            false,
        );
        match inherited.into_iter().next() {
            Some(entry) if entry.config_type == ConfigType::List => ListKey::List {
                inherited: entry.value.unwrap_or_default(),
            },
            _ => ListKey::NotAList,
        }
    })?;
    Ok(configs)
}
