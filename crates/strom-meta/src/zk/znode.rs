//! Kafka's ZooKeeper layout: the paths and the JSON of every znode a Kafka ≤ 3.x cluster
//! keeps there, so that Strom brokers, Kafka's own tools and anything else that reads a
//! Kafka ZooKeeper see the same data.
//!
//! This module is pure: bytes in, typed values out, and back. It owns the encoding only, not
//! what a value means or when it is written (that is [`super::ZkStore`] and the controller).
//! Encoders write what Kafka 3.x writes (field names, the `version` of each format, numbers
//! that Kafka writes as strings); key order differs (Kafka's is a hash map's), which no reader
//! depends on. Decoders accept every older format a Kafka ≤ 3.x cluster may still hold and
//! reject anything else with a [`ZnodeError`] that names the path and what was wrong.
//!
//! | znode | data |
//! | --- | --- |
//! | `/brokers/ids/<id>` (ephemeral) | `{"version":5,"host","port","endpoints":["NAME://host:port"],"listener_security_protocol_map":{NAME:PROTOCOL},"jmx_port","timestamp":"<ms>","rack"?,"features":{}}` |
//! | `/controller` (ephemeral) | `{"version":2,"brokerid","timestamp":"<ms>","kraftControllerEpoch":-1}` (version 1 lacks the last) |
//! | `/controller_epoch` | the epoch as decimal text, e.g. `3` |
//! | `/brokers/topics/<t>` | `{"version":3,"topic_id":"<base64>","partitions":{"0":[1,2]},"adding_replicas":{},"removing_replicas":{}}` |
//! | `/brokers/topics/<t>/partitions/<p>/state` | `{"version":1,"leader","leader_epoch","isr":[…],"controller_epoch"}` |
//! | `/config/topics/<t>` | `{"version":1,"config":{"key":"value"}}` |
//! | `/config/brokers/<id>`, `/config/brokers/<default>` | `{"version":1,"config":{"key":"value"}}` |
//! | `/config/changes/config_change_<seq>` | `{"version":2,"entity_path":"topics/<t>"}` or `"brokers/<id>"` |
//! | `/admin/delete_topics/<t>` | empty |
//! | `/isr_change_notification/isr_change_<seq>` | `{"version":1,"partitions":[{"topic","partition"}]}` |
//! | `/cluster/id` | `{"version":"1","id":"<base64>"}` (the version is a string) |
//! | `/latest_producer_id_block` | `{"version":1,"broker","block_start":"<id>","block_end":"<id>"}`, empty before the first block |

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::model::cluster_id_from_uuid;
use crate::replication::{
    BrokerId, BrokerRegistration, Endpoint, LeaderAndIsr, TopicAssignment, TopicPartition,
};

pub mod paths;

/// A znode's data could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("znode {path}: {reason}")]
pub struct ZnodeError {
    /// The znode's path (relative to the chroot).
    pub path: String,
    /// What was wrong, in words.
    pub reason: String,
}

fn error(path: &str, reason: impl Into<String>) -> ZnodeError {
    ZnodeError {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// `/brokers/ids/<id>` as decoded: the registration and what Kafka keeps beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerZnode {
    /// The broker's id, endpoints and rack.
    pub registration: BrokerRegistration,
    /// The format version the broker wrote (1 to 5).
    pub version: i32,
    /// The broker's JMX port, -1 for none.
    pub jmx_port: i32,
    /// When the broker registered (its clock), if written.
    pub timestamp_ms: Option<i64>,
}

/// Encodes a broker registration as Kafka 3.x does (version 5). The top-level `host` and
/// `port` are the first PLAINTEXT endpoint's, for clients older than listeners (null and -1
/// when there is none); `timestamp_ms` is the registration time.
pub fn encode_broker(
    registration: &BrokerRegistration,
    jmx_port: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let plaintext = registration
        .endpoints
        .iter()
        .find(|endpoint| endpoint.security_protocol == "PLAINTEXT");
    let endpoints: Vec<String> = registration.endpoints.iter().map(endpoint_string).collect();
    let protocols: Map<String, Value> = registration
        .endpoints
        .iter()
        .map(|endpoint| {
            (
                endpoint.listener.clone(),
                Value::from(endpoint.security_protocol.clone()),
            )
        })
        .collect();
    let mut object = json!({
        "version": 5,
        "host": plaintext.map(|endpoint| endpoint.host.clone()),
        "port": plaintext.map_or(-1, |endpoint| i32::from(endpoint.port)),
        "endpoints": endpoints,
        "listener_security_protocol_map": protocols,
        "jmx_port": jmx_port,
        "timestamp": timestamp_ms.to_string(),
        "features": {},
    });
    if let Some(rack) = &registration.rack {
        object["rack"] = Value::from(rack.clone());
    }
    to_bytes(&object)
}

/// `NAME://host:port`, with an IPv6 host in brackets, as Kafka's `EndPoint.connectionString`.
fn endpoint_string(endpoint: &Endpoint) -> String {
    if endpoint.host.contains(':') {
        format!(
            "{}://[{}]:{}",
            endpoint.listener, endpoint.host, endpoint.port
        )
    } else {
        format!(
            "{}://{}:{}",
            endpoint.listener, endpoint.host, endpoint.port
        )
    }
}

/// Decodes `/brokers/ids/<id>` in any version Kafka wrote (1: host and port only, 2–3:
/// endpoints whose listener names are security protocols, 4–5: with a listener to protocol
/// map).
pub fn decode_broker(id: BrokerId, bytes: &[u8]) -> Result<BrokerZnode, ZnodeError> {
    let path = paths::broker(id);
    let object = Object::parse(&path, bytes)?;
    let version = object.i32("version")?;
    let jmx_port = object.optional_i32("jmx_port")?.unwrap_or(-1);
    let timestamp_ms = object.optional_decimal("timestamp")?;
    let endpoints = match version {
        1 => {
            let host = object.string("host")?;
            if !host_is_plain(&host) {
                return Err(error(&path, format!("host {host:?} has a bracket in it")));
            }
            let port = port(&path, object.i64("port")?)?;
            vec![Endpoint {
                listener: "PLAINTEXT".into(),
                security_protocol: "PLAINTEXT".into(),
                host,
                port,
            }]
        }
        2..=5 => {
            let protocols = match object.get("listener_security_protocol_map") {
                None | Some(Value::Null) => None,
                Some(Value::Object(map)) => {
                    let mut protocols = BTreeMap::new();
                    for (listener, protocol) in map {
                        let protocol = protocol.as_str().ok_or_else(|| {
                            error(
                                &path,
                                format!(
                                    "listener_security_protocol_map.{listener} is not a string"
                                ),
                            )
                        })?;
                        protocols.insert(listener.clone(), protocol.to_owned());
                    }
                    Some(protocols)
                }
                Some(_) => {
                    return Err(error(
                        &path,
                        "listener_security_protocol_map is not an object",
                    ))
                }
            };
            let mut endpoints = Vec::new();
            for text in object.strings("endpoints")? {
                endpoints.push(parse_endpoint(&path, &text, protocols.as_ref())?);
            }
            endpoints
        }
        other => {
            return Err(error(
                &path,
                format!("unsupported broker registration version {other}"),
            ))
        }
    };
    let rack = object.optional_string("rack")?;
    Ok(BrokerZnode {
        registration: BrokerRegistration {
            id,
            endpoints,
            rack,
        },
        version,
        jmx_port,
        timestamp_ms,
    })
}

/// The security protocols a listener may be named after when no map says otherwise.
/// A host name or IP address, without the brackets an IPv6 address wears in an endpoint (as
/// Kafka's endpoint pattern, which has no bracket inside the host).
fn host_is_plain(host: &str) -> bool {
    !host.contains(['[', ']'])
}

const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

fn parse_endpoint(
    path: &str,
    text: &str,
    protocols: Option<&BTreeMap<String, String>>,
) -> Result<Endpoint, ZnodeError> {
    let bad = |why: &str| error(path, format!("endpoint {text:?}: {why}"));
    let (listener, address) = text.split_once("://").ok_or_else(|| bad("no `://`"))?;
    if listener.is_empty() {
        return Err(bad("no listener name"));
    }
    let (host, port_text) = address.rsplit_once(':').ok_or_else(|| bad("no `:port`"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if !host_is_plain(host) {
        return Err(bad("a bracket inside the host"));
    }
    let port_number: i64 = port_text
        .parse()
        .map_err(|_| bad("the port is not a number"))?;
    let port = port(path, port_number)?;
    let security_protocol = match protocols.and_then(|map| map.get(listener)) {
        Some(protocol) => protocol.clone(),
        None if protocols.is_none() && SECURITY_PROTOCOLS.contains(&listener) => {
            listener.to_owned()
        }
        None => return Err(bad("the listener has no security protocol")),
    };
    Ok(Endpoint {
        listener: listener.to_owned(),
        security_protocol,
        host: host.to_owned(),
        port,
    })
}

fn port(path: &str, value: i64) -> Result<u16, ZnodeError> {
    u16::try_from(value).map_err(|_| error(path, format!("port {value} is outside 0..=65535")))
}

/// `/controller` as decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerZnode {
    /// The active controller's broker id.
    pub broker_id: BrokerId,
    /// When it was elected (its clock), if written.
    pub timestamp_ms: Option<i64>,
}

/// Encodes `/controller` as Kafka 3.4+ does (version 2; `kraftControllerEpoch` -1 marks a
/// ZooKeeper-mode controller).
pub fn encode_controller(broker_id: BrokerId, timestamp_ms: i64) -> Vec<u8> {
    to_bytes(&json!({
        "version": 2,
        "brokerid": broker_id,
        "timestamp": timestamp_ms.to_string(),
        "kraftControllerEpoch": -1,
    }))
}

/// Decodes `/controller`, version 1 or 2.
pub fn decode_controller(bytes: &[u8]) -> Result<ControllerZnode, ZnodeError> {
    let path = paths::CONTROLLER;
    let object = Object::parse(path, bytes)?;
    let version = object.i32("version")?;
    if !(1..=2).contains(&version) {
        return Err(error(
            path,
            format!("unsupported controller version {version}"),
        ));
    }
    Ok(ControllerZnode {
        broker_id: object.i32("brokerid")?,
        timestamp_ms: object.optional_decimal("timestamp")?,
    })
}

/// Encodes `/controller_epoch`: the epoch in decimal.
pub fn encode_controller_epoch(epoch: i32) -> Vec<u8> {
    epoch.to_string().into_bytes()
}

/// Decodes `/controller_epoch`.
pub fn decode_controller_epoch(bytes: &[u8]) -> Result<i32, ZnodeError> {
    let path = paths::CONTROLLER_EPOCH;
    let text = std::str::from_utf8(bytes).map_err(|_| error(path, "not UTF-8"))?;
    text.trim()
        .parse()
        .map_err(|_| error(path, format!("{text:?} is not a 32-bit integer")))
}

/// Encodes `/brokers/topics/<t>` as Kafka 3.x does (version 3, with the topic id in Kafka's
/// base64 form and the replicas a reassignment adds and removes, partitions without any left
/// out).
pub fn encode_topic_assignment(assignment: &TopicAssignment) -> Vec<u8> {
    let map = |replicas: &BTreeMap<i32, Vec<BrokerId>>| -> Map<String, Value> {
        replicas
            .iter()
            .filter(|(_, replicas)| !replicas.is_empty())
            .map(|(partition, replicas)| (partition.to_string(), Value::from(replicas.clone())))
            .collect()
    };
    to_bytes(&json!({
        "version": 3,
        "topic_id": cluster_id_from_uuid(&assignment.topic_id),
        "partitions": map(&assignment.partitions),
        "adding_replicas": map(&assignment.adding_replicas),
        "removing_replicas": map(&assignment.removing_replicas),
    }))
}

/// Decodes `/brokers/topics/<topic>`, versions 1 to 3. A topic created before Kafka 2.8 has no
/// `topic_id`; it reads as the nil UUID, for the controller to assign one. The replicas being
/// added or removed by a reassignment (versions 2+) must be among the partition's replicas.
pub fn decode_topic_assignment(topic: &str, bytes: &[u8]) -> Result<TopicAssignment, ZnodeError> {
    let path = paths::topic(topic);
    let object = Object::parse(&path, bytes)?;
    let version = object.i32("version")?;
    if !(1..=3).contains(&version) {
        return Err(error(
            &path,
            format!("unsupported topic assignment version {version}"),
        ));
    }
    let topic_id = match object.optional_string("topic_id")? {
        None => uuid::Uuid::nil(),
        Some(text) => decode_kafka_uuid(&text)
            .ok_or_else(|| error(&path, format!("topic_id {text:?} is not a Kafka Uuid")))?,
    };
    let partitions = replica_map(&path, &object, "partitions")?.unwrap_or_default();
    if let Some((partition, _)) = partitions.iter().find(|(_, replicas)| replicas.is_empty()) {
        return Err(error(
            &path,
            format!("partitions.{partition} has no replicas; every partition needs one"),
        ));
    }
    let mut moving = [BTreeMap::new(), BTreeMap::new()];
    for (key, out) in ["adding_replicas", "removing_replicas"]
        .into_iter()
        .zip(moving.iter_mut())
    {
        let Some(map) = replica_map(&path, &object, key)? else {
            continue;
        };
        for (partition, replicas) in map {
            let Some(all) = partitions.get(&partition) else {
                return Err(error(
                    &path,
                    format!("{key} names partition {partition}, which the topic lacks"),
                ));
            };
            if let Some(stray) = replicas.iter().find(|r| !all.contains(r)) {
                return Err(error(
                    &path,
                    format!("{key}.{partition} names broker {stray}, not a replica"),
                ));
            }
            if !replicas.is_empty() {
                out.insert(partition, replicas);
            }
        }
    }
    let [adding_replicas, removing_replicas] = moving;
    Ok(TopicAssignment {
        topic_id,
        partitions,
        adding_replicas,
        removing_replicas,
    })
}

/// Reads `{"<partition>": [broker, …]}` under `key`.
fn replica_map(
    path: &str,
    object: &Object,
    key: &str,
) -> Result<Option<BTreeMap<i32, Vec<BrokerId>>>, ZnodeError> {
    let map = match object.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(error(path, format!("{key} is not an object"))),
    };
    let mut out = BTreeMap::new();
    for (partition, replicas) in map {
        let index: i32 = partition
            .parse()
            .ok()
            .filter(|index| *index >= 0)
            .ok_or_else(|| {
                error(
                    path,
                    format!("{key}: {partition:?} is not a partition index"),
                )
            })?;
        let replicas = int_array(path, &format!("{key}.{partition}"), replicas)?;
        out.insert(index, replicas);
    }
    Ok(Some(out))
}

/// Decodes Kafka's `Uuid` text: URL-safe base64 of 16 bytes, without padding (22 characters).
pub fn decode_kafka_uuid(text: &str) -> Option<uuid::Uuid> {
    let text = text.as_bytes();
    if text.len() != 22 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut held = 0;
    let mut bytes = Vec::with_capacity(17);
    for &symbol in text {
        let value = match symbol {
            b'A'..=b'Z' => symbol - b'A',
            b'a'..=b'z' => symbol - b'a' + 26,
            b'0'..=b'9' => symbol - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        held += 6;
        if held >= 8 {
            held -= 8;
            bytes.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    // 22 symbols carry 132 bits: the 4 left over must be zero in a canonical encoding.
    if bits != 0 {
        return None;
    }
    uuid::Uuid::from_slice(&bytes).ok()
}

/// Encodes a partition's state as Kafka does (version 1).
pub fn encode_partition_state(state: &LeaderAndIsr) -> Vec<u8> {
    to_bytes(&json!({
        "version": 1,
        "leader": state.leader,
        "leader_epoch": state.leader_epoch,
        "isr": state.isr,
        "controller_epoch": state.controller_epoch,
    }))
}

/// Decodes `/brokers/topics/<t>/partitions/<p>/state`. Kafka 3.2+ adds
/// `leader_recovery_state` (0 recovered, 1 recovering) after an unclean election; it is
/// checked and not kept.
pub fn decode_partition_state(
    partition: &TopicPartition,
    bytes: &[u8],
) -> Result<LeaderAndIsr, ZnodeError> {
    let path = paths::partition_state(partition);
    let object = Object::parse(&path, bytes)?;
    let version = object.i32("version")?;
    if version != 1 {
        return Err(error(
            &path,
            format!("unsupported partition state version {version}"),
        ));
    }
    if let Some(recovery) = object.optional_i32("leader_recovery_state")? {
        if !(0..=1).contains(&recovery) {
            return Err(error(
                &path,
                format!("leader_recovery_state {recovery} is neither 0 nor 1"),
            ));
        }
    }
    let isr = match object.get("isr") {
        Some(value) => int_array(&path, "isr", value)?,
        None => return Err(error(&path, "no isr")),
    };
    Ok(LeaderAndIsr {
        leader: object.i32("leader")?,
        leader_epoch: object.i32("leader_epoch")?,
        isr,
        controller_epoch: object.i32("controller_epoch")?,
    })
}

/// Encodes a topic's configuration overrides (`/config/topics/<t>`, version 1); a broker's
/// dynamic configuration (`/config/brokers/<id>`) has the same shape.
pub fn encode_topic_config(config: &BTreeMap<String, String>) -> Vec<u8> {
    to_bytes(&json!({ "version": 1, "config": config }))
}

/// Decodes `/config/topics/<topic>`. Empty data (a node Kafka created before writing it)
/// reads as no overrides.
pub fn decode_topic_config(
    topic: &str,
    bytes: &[u8],
) -> Result<BTreeMap<String, String>, ZnodeError> {
    decode_entity_config(&paths::topic_config(topic), bytes)
}

/// Decodes an entity's configuration znode at `path` (`/config/topics/<t>`,
/// `/config/brokers/<id>`, `/config/brokers/<default>`: the same version 1 JSON).
pub fn decode_entity_config(
    path: &str,
    bytes: &[u8],
) -> Result<BTreeMap<String, String>, ZnodeError> {
    let path = path.to_string();
    if bytes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let object = Object::parse(&path, bytes)?;
    let mut config = BTreeMap::new();
    match object.get("config") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let value = value
                    .as_str()
                    .ok_or_else(|| error(&path, format!("config.{key} is not a string")))?;
                config.insert(key.clone(), value.to_owned());
            }
        }
        Some(_) => return Err(error(&path, "config is not an object")),
    }
    Ok(config)
}

/// Encodes a configuration change notification for `entity_path` (e.g. `topics/orders`),
/// version 2.
pub fn encode_config_change(entity_path: &str) -> Vec<u8> {
    to_bytes(&json!({ "version": 2, "entity_path": entity_path }))
}

/// Decodes `/config/changes/<name>` to the changed entity's path, `type/name`: version 2, or
/// version 1 (`entity_type` and `entity_name`).
pub fn decode_config_change(name: &str, bytes: &[u8]) -> Result<String, ZnodeError> {
    let path = format!("{}/{name}", paths::CONFIG_CHANGES);
    let object = Object::parse(&path, bytes)?;
    match object.i32("version")? {
        1 => Ok(format!(
            "{}/{}",
            object.string("entity_type")?,
            object.string("entity_name")?
        )),
        2 => object.string("entity_path"),
        other => Err(error(
            &path,
            format!("unsupported config change version {other}"),
        )),
    }
}

/// Encodes an ISR change notification (version 1) for `partitions`.
pub fn encode_isr_change(partitions: &[TopicPartition]) -> Vec<u8> {
    let list: Vec<Value> = partitions
        .iter()
        .map(|p| json!({ "topic": p.topic, "partition": p.partition }))
        .collect();
    to_bytes(&json!({ "version": 1, "partitions": list }))
}

/// Decodes `/isr_change_notification/<name>`.
pub fn decode_isr_change(name: &str, bytes: &[u8]) -> Result<Vec<TopicPartition>, ZnodeError> {
    decode_partition_list(&format!("{}/{name}", paths::ISR_CHANGES), bytes)
}

/// Decodes `/admin/preferred_replica_election`, written by ZooKeeper-era tools
/// (`kafka-preferred-replica-election.sh`): the ISR change notification's shape,
/// `{"version":1,"partitions":[{"topic":…,"partition":…}]}`.
pub fn decode_preferred_replica_election(bytes: &[u8]) -> Result<Vec<TopicPartition>, ZnodeError> {
    decode_partition_list(paths::PREFERRED_REPLICA_ELECTION, bytes)
}

/// Decodes a version 1 list of partitions at `path`.
fn decode_partition_list(path: &str, bytes: &[u8]) -> Result<Vec<TopicPartition>, ZnodeError> {
    let path = path.to_string();
    let object = Object::parse(&path, bytes)?;
    let version = object.i32("version")?;
    if version != 1 {
        return Err(error(
            &path,
            format!("unsupported partition list version {version}"),
        ));
    }
    let Some(Value::Array(list)) = object.get("partitions") else {
        return Err(error(&path, "partitions is missing or not an array"));
    };
    let mut partitions = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let Value::Object(map) = entry else {
            return Err(error(
                &path,
                format!("partitions[{index}] is not an object"),
            ));
        };
        let entry = Object {
            path: &path,
            map: Cow::Borrowed(map),
        };
        partitions.push(TopicPartition::new(
            entry.string("topic")?,
            entry.i32("partition")?,
        ));
    }
    Ok(partitions)
}

/// Encodes `/cluster/id` (whose `version` Kafka writes as the string `"1"`).
pub fn encode_cluster_id(cluster_id: &str) -> Vec<u8> {
    to_bytes(&json!({ "version": "1", "id": cluster_id }))
}

/// Decodes `/cluster/id`.
pub fn decode_cluster_id(bytes: &[u8]) -> Result<String, ZnodeError> {
    let path = paths::CLUSTER_ID;
    let id = Object::parse(path, bytes)?.string("id")?;
    if id.is_empty() {
        return Err(error(path, "the id is empty"));
    }
    Ok(id)
}

/// The number of producer ids in a block (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// A range of producer ids handed to one broker: `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerIdBlock {
    /// The broker the block was given to.
    pub broker: BrokerId,
    /// The first id of the block.
    pub first: i64,
    /// The last id of the block (inclusive).
    pub last: i64,
}

/// Encodes `/latest_producer_id_block` (version 1; Kafka writes the ids as strings).
pub fn encode_producer_id_block(block: &ProducerIdBlock) -> Vec<u8> {
    to_bytes(&json!({
        "version": 1,
        "broker": block.broker,
        "block_start": block.first.to_string(),
        "block_end": block.last.to_string(),
    }))
}

/// Decodes `/latest_producer_id_block`; `None` for the empty node no block was written to yet.
pub fn decode_producer_id_block(bytes: &[u8]) -> Result<Option<ProducerIdBlock>, ZnodeError> {
    let path = paths::PRODUCER_ID_BLOCK;
    if bytes.is_empty() {
        return Ok(None);
    }
    let object = Object::parse(path, bytes)?;
    let block = ProducerIdBlock {
        broker: object.i32("broker")?,
        first: object.decimal("block_start")?,
        last: object.decimal("block_end")?,
    };
    if block.first < 0 || block.last < block.first {
        return Err(error(
            path,
            format!(
                "block {}..={} is not a range of producer ids",
                block.first, block.last
            ),
        ));
    }
    Ok(Some(block))
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a serde_json::Value always serializes")
}

fn int_array(path: &str, what: &str, value: &Value) -> Result<Vec<i32>, ZnodeError> {
    let Value::Array(items) = value else {
        return Err(error(path, format!("{what} is not an array")));
    };
    items
        .iter()
        .map(|item| {
            item.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| error(path, format!("{what} holds {item}, not a 32-bit integer")))
        })
        .collect()
}

/// A decoded JSON object and the path it came from, for error messages.
struct Object<'a> {
    path: &'a str,
    map: Cow<'a, Map<String, Value>>,
}

impl<'a> Object<'a> {
    /// Parses `bytes` as one JSON object.
    fn parse(path: &'a str, bytes: &[u8]) -> Result<Object<'a>, ZnodeError> {
        if bytes.is_empty() {
            return Err(error(path, "no data"));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Object {
                path,
                map: Cow::Owned(map),
            }),
            Ok(_) => Err(error(path, "not a JSON object")),
            Err(e) => Err(error(path, format!("invalid JSON: {e}"))),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    fn i64(&self, key: &str) -> Result<i64, ZnodeError> {
        match self.map.get(key) {
            None => Err(error(self.path, format!("no {key}"))),
            Some(value) => value
                .as_i64()
                .ok_or_else(|| error(self.path, format!("{key} is {value}, not an integer"))),
        }
    }

    fn i32(&self, key: &str) -> Result<i32, ZnodeError> {
        let value = self.i64(key)?;
        i32::try_from(value)
            .map_err(|_| error(self.path, format!("{key} {value} is not a 32-bit integer")))
    }

    fn optional_i32(&self, key: &str) -> Result<Option<i32>, ZnodeError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.i32(key).map(Some),
        }
    }

    fn string(&self, key: &str) -> Result<String, ZnodeError> {
        match self.map.get(key) {
            Some(Value::String(text)) => Ok(text.clone()),
            None => Err(error(self.path, format!("no {key}"))),
            Some(other) => Err(error(self.path, format!("{key} is {other}, not a string"))),
        }
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>, ZnodeError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.string(key).map(Some),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, ZnodeError> {
        let Some(Value::Array(items)) = self.map.get(key) else {
            return Err(error(
                self.path,
                format!("{key} is missing or not an array"),
            ));
        };
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| error(self.path, format!("{key} holds {item}, not a string")))
            })
            .collect()
    }

    /// A 64-bit integer Kafka writes as a decimal string (timestamps, producer ids).
    fn decimal(&self, key: &str) -> Result<i64, ZnodeError> {
        let text = self.string(key)?;
        text.parse()
            .map_err(|_| error(self.path, format!("{key} {text:?} is not a 64-bit integer")))
    }

    fn optional_decimal(&self, key: &str) -> Result<Option<i64>, ZnodeError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.decimal(key).map(Some),
        }
    }
}

#[cfg(test)]
mod tests;
