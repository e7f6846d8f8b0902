//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs on BROKER resources (resource
//! name `<id>` for one broker, empty for the cluster default), as Kafka answers them:
//!
//! - DescribeConfigs of this broker's id lists every key with its value, source and (if
//!   asked) synonyms in Kafka's order; of the empty name, only the cluster defaults set; of
//!   another id, INVALID_REQUEST (clients send a broker's resource to that broker).
//! - AlterConfigs replaces the entity's whole dynamic level; IncrementalAlterConfigs applies
//!   SET/DELETE/APPEND/SUBTRACT to it (the rules shared with topics, including APPEND or
//!   SUBTRACT of a non-list key answered INVALID_CONFIG, are in [`super::config_ops`]).
//!   Read-only keys, bad values and configurations that no longer resolve are refused with
//!   INVALID_REQUEST and Kafka's message, "Invalid config value for resource
//!   ConfigResource(type=BROKER, name='<n>'): …". The level is stored in
//!   ZooKeeper on a cluster (any broker may write any broker's level) and in the metadata
//!   file on a single node, and applied without a restart.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use strom_meta::config::broker_keys::{broker_key, canonical_broker_key};
use strom_meta::config::dynamic::{check_update, DEFAULT_ENTITY};
use strom_meta::config::{ConfigEntry, ConfigType};

use super::config_ops::{apply_operations, ConfigOp, ListKey};
use crate::services::topics::TopicError;
use crate::services::Services;

/// DescribeConfigs of BROKER `name`.
pub(super) fn describe(
    services: &Services,
    name: &str,
    keys: Option<&[String]>,
    synonyms: bool,
    documentation: bool,
) -> Result<Vec<ConfigEntry>, (i16, String)> {
    let live = services.live.current();
    if name.is_empty() {
        Ok(live.describe_default(keys, synonyms, documentation))
    } else if name == live.broker_id.to_string() {
        Ok(live.describe_filtered(keys, synonyms, documentation))
    } else {
        Err((
            E::InvalidRequest.code(),
            format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                live.broker_id
            ),
        ))
    }
}

/// The ZooKeeper entity of a BROKER resource name: `<default>` for the empty name, else the
/// broker id (Kafka: "Broker id must be an integer, but it is: …").
fn entity(name: &str) -> Result<String, TopicError> {
    if name.is_empty() {
        return Ok(DEFAULT_ENTITY.to_string());
    }
    match name.parse::<i32>() {
        Ok(id) if id >= 0 => Ok(id.to_string()),
        _ => Err(TopicError::new(
            E::InvalidRequest.code(),
            format!("Broker id must be an integer, but it is: {name}"),
        )),
    }
}

/// Kafka's wording around a refused broker configuration.
fn invalid(name: &str, message: impl std::fmt::Display) -> TopicError {
    TopicError::new(
        E::InvalidRequest.code(),
        format!("Invalid config value for resource ConfigResource(type=BROKER, name='{name}'): {message}"),
    )
}

/// AlterConfigs of BROKER `name`: `configs` (entries with a value) become its whole level.
pub(super) fn alter(
    services: &Services,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), TopicError> {
    let entity = entity(name)?;
    let level = check_update(&configs).map_err(|e| invalid(name, e))?;
    store(services, name, &entity, level, validate_only)
}

/// IncrementalAlterConfigs of BROKER `name`.
pub(super) fn incremental(
    services: &Services,
    name: &str,
    operations: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), TopicError> {
    let entity = entity(name)?;
    let mut level = current_level(services, &entity)?;
    let ops: Vec<ConfigOp> = operations
        .iter()
        .map(|op| {
            let given = op.name.to_string();
            ConfigOp {
                key: canonical_broker_key(&given).to_string(),
                given,
                operation: op.config_operation,
                value: op.value.as_ref().map(|v| v.to_string()),
            }
        })
        .collect();
    apply_operations(&mut level, &ops, |key| {
        match broker_key(key).filter(|spec| spec.config_type == ConfigType::List) {
            Some(spec) => ListKey::List {
                inherited: spec.default.unwrap_or_default().to_string(),
            },
            None => ListKey::NotAList,
        }
    })?;
    let level = check_update(&level).map_err(|e| invalid(name, e))?;
    store(services, name, &entity, level, validate_only)
}

/// The stored dynamic level of `entity`.
fn current_level(
    services: &Services,
    entity: &str,
) -> Result<BTreeMap<String, String>, TopicError> {
    match services.cluster.get() {
        Some(node) => super::topics::block_on(node.stored_broker_config(entity))
            .map_err(|message| TopicError::new(E::UnknownServerError.code(), message))?,
        None => {
            let layers = services.live.layers();
            if entity == DEFAULT_ENTITY {
                Ok(layers.cluster_default)
            } else {
                Ok(layers.per_broker)
            }
        }
    }
}

/// Writes `level` as `entity`'s dynamic level: ZooKeeper on a cluster, the metadata file on a
/// single node.
fn store(
    services: &Services,
    name: &str,
    entity: &str,
    level: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), TopicError> {
    let outcome = match services.cluster.get() {
        Some(node) => {
            super::topics::block_on(node.alter_broker_config(entity, level, validate_only))
                .map_err(|message| TopicError::new(E::UnknownServerError.code(), message))?
        }
        None => services
            .topics
            .set_broker_config(entity, level, validate_only),
    };
    outcome.map_err(|e| {
        if e.code == E::InvalidRequest.code() && !e.message.starts_with("this single node") {
            invalid(name, e.message)
        } else {
            e
        }
    })
}
