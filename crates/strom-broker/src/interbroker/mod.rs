//! The client side of broker-to-broker traffic: [`peer`] connections, the controller's
//! [`channel`] to every broker, and (this file) the controller's requests on the wire: LeaderAndIsr, UpdateMetadata and
//! StopReplica in Kafka's ZooKeeper-era formats (the `kafka-protocol` 0.14 types, Kafka 3.9's
//! specs), built from the controller's effects and read back into commands a broker applies.
//!
//! This module owns the mapping between those messages and Strom's model
//! (`strom_meta::replication`, `strom_meta::controller`), and the versions Strom's brokers
//! speak to each other. It is pure: no sockets (see [`peer`]) and no broker state (the
//! replica manager and metadata cache apply the commands).
//!
//! Versions: a Strom controller sends LeaderAndIsr v6, UpdateMetadata v7 and StopReplica v3
//! (the first versions with topic ids, per-partition recovery state and per-partition delete),
//! and a Strom broker accepts LeaderAndIsr 5–7, UpdateMetadata 7–8 and StopReplica 3–4. Older
//! versions only ever came from Kafka controllers, which never drive Strom brokers.

use std::collections::BTreeMap;

use kafka_protocol_3x::messages::leader_and_isr_request::{
    LeaderAndIsrLiveLeader, LeaderAndIsrPartitionState, LeaderAndIsrTopicState,
};
use kafka_protocol_3x::messages::stop_replica_request::{
    StopReplicaPartitionState, StopReplicaTopicState,
};
use kafka_protocol_3x::messages::update_metadata_request::{
    UpdateMetadataBroker, UpdateMetadataEndpoint, UpdateMetadataPartitionState,
    UpdateMetadataTopicState,
};
use kafka_protocol_3x::messages::{
    BrokerId as WireBrokerId, LeaderAndIsrRequest, StopReplicaRequest, TopicName,
    UpdateMetadataRequest,
};
use kafka_protocol_3x::protocol::StrBytes;
use strom_meta::controller::PartitionInfo;
use strom_meta::replication::{
    BrokerId, BrokerRegistration, Endpoint, LeaderAndIsr, TopicPartition, Versioned,
};
use uuid::Uuid;

pub mod channel;
pub mod peer;

/// The LeaderAndIsr version a Strom controller sends.
pub const LEADER_AND_ISR_VERSION: i16 = 6;
/// The UpdateMetadata version a Strom controller sends.
pub const UPDATE_METADATA_VERSION: i16 = 7;
/// The StopReplica version a Strom controller sends.
pub const STOP_REPLICA_VERSION: i16 = 3;

/// The LeaderAndIsr versions a Strom broker accepts.
pub const LEADER_AND_ISR_ACCEPTED: std::ops::RangeInclusive<i16> = 5..=7;
/// The UpdateMetadata versions a Strom broker accepts.
pub const UPDATE_METADATA_ACCEPTED: std::ops::RangeInclusive<i16> = 7..=8;
/// The ControlledShutdown version a stopping Strom broker sends.
pub const CONTROLLED_SHUTDOWN_VERSION: i16 = 3;
/// The ControlledShutdown versions a Strom controller accepts (Kafka's).
pub const CONTROLLED_SHUTDOWN_ACCEPTED: std::ops::RangeInclusive<i16> = 0..=3;
/// The StopReplica versions a Strom broker accepts.
pub const STOP_REPLICA_ACCEPTED: std::ops::RangeInclusive<i16> = 3..=4;

/// The leader id UpdateMetadata gives a partition of a topic being deleted (Kafka's
/// `LeaderAndIsr.LeaderDuringDelete`).
pub const LEADER_DURING_DELETE: BrokerId = -2;

/// Kafka's wire id of the PLAINTEXT security protocol (the only one Strom speaks).
const PLAINTEXT: i16 = 0;

/// Who sent a controller request, and to which incarnation of the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerHeader {
    /// The controller's broker id.
    pub controller_id: BrokerId,
    /// Its controller epoch: the receiver refuses anything older than it has seen.
    pub controller_epoch: i32,
    /// The receiver's broker epoch (the czxid of its registration) as the controller knows
    /// it: a broker that restarted since refuses requests for its old incarnation.
    pub broker_epoch: i64,
}

/// One partition of a LeaderAndIsr or UpdateMetadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionCommand {
    /// The partition.
    pub info: PartitionInfo,
    /// Its topic's id.
    pub topic_id: Uuid,
    /// True when the partition was just created (LeaderAndIsr only).
    pub is_new: bool,
}

/// A leader's address, so a follower can connect to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderAddress {
    /// The leader's broker id.
    pub id: BrokerId,
    /// Its inter-broker host.
    pub host: String,
    /// Its inter-broker port.
    pub port: u16,
}

/// A decoded LeaderAndIsr: become leader or follower of these partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderAndIsrCommand {
    /// The sender.
    pub header: ControllerHeader,
    /// The partitions and their new states.
    pub partitions: Vec<PartitionCommand>,
    /// Addresses of the leaders named.
    pub leaders: Vec<LeaderAddress>,
}

/// A decoded UpdateMetadata: the live brokers and changed partition states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateMetadataCommand {
    /// The sender.
    pub header: ControllerHeader,
    /// Every live broker.
    pub brokers: Vec<BrokerRegistration>,
    /// Partitions whose state changed.
    pub partitions: Vec<PartitionCommand>,
    /// Partitions of deleted topics, to forget.
    pub deleted: Vec<TopicPartition>,
}

/// A decoded StopReplica: stop following (and maybe delete) these partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopReplicaCommand {
    /// The sender.
    pub header: ControllerHeader,
    /// Each partition with the leader epoch the controller knew (`-1` for "any"), and whether
    /// to delete its log.
    pub partitions: Vec<(TopicPartition, i32, bool)>,
}

/// Why a controller request was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// Refuses a controller request at a version Strom brokers do not speak to each other.
fn check_version(
    name: &str,
    accepted: std::ops::RangeInclusive<i16>,
    version: i16,
) -> Result<(), Malformed> {
    if accepted.contains(&version) {
        Ok(())
    } else {
        Err(Malformed(format!(
            "{name} v{version} is not spoken between Strom brokers"
        )))
    }
}

/// The header fields every controller request carries.
fn header(
    controller_id: WireBrokerId,
    controller_epoch: i32,
    broker_epoch: i64,
) -> ControllerHeader {
    ControllerHeader {
        controller_id: controller_id.0,
        controller_epoch,
        broker_epoch,
    }
}

/// A received partition state: `(leader, leader_epoch, isr, controller_epoch)` with its znode
/// version and replicas, as LeaderAndIsr and UpdateMetadata both carry it.
fn partition_info(
    partition: TopicPartition,
    (leader, leader_epoch, isr, controller_epoch): (WireBrokerId, i32, &[WireBrokerId], i32),
    version: i32,
    replicas: &[WireBrokerId],
) -> PartitionInfo {
    PartitionInfo {
        partition,
        state: Versioned {
            value: LeaderAndIsr {
                leader: leader.0,
                leader_epoch,
                isr: from_ids(isr),
                controller_epoch,
            },
            version,
        },
        replicas: from_ids(replicas),
    }
}

fn ids(ids: &[BrokerId]) -> Vec<WireBrokerId> {
    ids.iter().copied().map(WireBrokerId).collect()
}

fn from_ids(ids: &[WireBrokerId]) -> Vec<BrokerId> {
    ids.iter().map(|id| id.0).collect()
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Groups partitions by topic, keeping the first-seen topic order stable (sorted by name).
fn by_topic(partitions: &[PartitionCommand]) -> BTreeMap<&str, (Uuid, Vec<&PartitionCommand>)> {
    let mut topics: BTreeMap<&str, (Uuid, Vec<&PartitionCommand>)> = BTreeMap::new();
    for partition in partitions {
        topics
            .entry(partition.info.partition.topic.as_str())
            .or_insert_with(|| (partition.topic_id, Vec::new()))
            .1
            .push(partition);
    }
    topics
}

/// Builds the LeaderAndIsr a controller sends (at [`LEADER_AND_ISR_VERSION`]).
pub fn leader_and_isr_request(
    header: ControllerHeader,
    partitions: &[PartitionCommand],
    leaders: &[LeaderAddress],
) -> LeaderAndIsrRequest {
    let mut request = LeaderAndIsrRequest::default();
    request.controller_id = WireBrokerId(header.controller_id);
    request.controller_epoch = header.controller_epoch;
    request.broker_epoch = header.broker_epoch;
    for (topic, (topic_id, partitions)) in by_topic(partitions) {
        let mut state = LeaderAndIsrTopicState::default();
        state.topic_name = topic_name(topic);
        state.topic_id = topic_id;
        for partition in partitions {
            let info = &partition.info;
            let mut p = LeaderAndIsrPartitionState::default();
            p.partition_index = info.partition.partition;
            p.controller_epoch = info.state.value.controller_epoch;
            p.leader = WireBrokerId(info.state.value.leader);
            p.leader_epoch = info.state.value.leader_epoch;
            p.isr = ids(&info.state.value.isr);
            p.partition_epoch = info.state.version;
            p.replicas = ids(&info.replicas);
            p.is_new = partition.is_new;
            state.partition_states.push(p);
        }
        request.topic_states.push(state);
    }
    for leader in leaders {
        let mut live = LeaderAndIsrLiveLeader::default();
        live.broker_id = WireBrokerId(leader.id);
        live.host_name = StrBytes::from_string(leader.host.clone());
        live.port = i32::from(leader.port);
        request.live_leaders.push(live);
    }
    request
}

/// Reads a LeaderAndIsr received at `version`.
pub fn leader_and_isr_command(
    request: &LeaderAndIsrRequest,
    version: i16,
) -> Result<LeaderAndIsrCommand, Malformed> {
    check_version("LeaderAndIsr", LEADER_AND_ISR_ACCEPTED, version)?;
    let mut partitions = Vec::new();
    for topic in &request.topic_states {
        for p in &topic.partition_states {
            partitions.push(PartitionCommand {
                info: partition_info(
                    TopicPartition::new(topic.topic_name.0.as_str(), p.partition_index),
                    (p.leader, p.leader_epoch, &p.isr, p.controller_epoch),
                    p.partition_epoch,
                    &p.replicas,
                ),
                topic_id: topic.topic_id,
                is_new: p.is_new,
            });
        }
    }
    let leaders = request
        .live_leaders
        .iter()
        .map(|leader| {
            Ok(LeaderAddress {
                id: leader.broker_id.0,
                host: leader.host_name.to_string(),
                port: u16::try_from(leader.port).map_err(|_| {
                    Malformed(format!(
                        "leader {} has port {}",
                        leader.broker_id.0, leader.port
                    ))
                })?,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(LeaderAndIsrCommand {
        header: header(
            request.controller_id,
            request.controller_epoch,
            request.broker_epoch,
        ),
        partitions,
        leaders,
    })
}

/// Builds the UpdateMetadata a controller sends (at [`UPDATE_METADATA_VERSION`]); deleted
/// partitions go out with leader [`LEADER_DURING_DELETE`], as Kafka sends them.
pub fn update_metadata_request(
    header: ControllerHeader,
    brokers: &[BrokerRegistration],
    partitions: &[PartitionCommand],
    deleted: &[(TopicPartition, Uuid)],
) -> UpdateMetadataRequest {
    let mut request = UpdateMetadataRequest::default();
    request.controller_id = WireBrokerId(header.controller_id);
    request.controller_epoch = header.controller_epoch;
    request.broker_epoch = header.broker_epoch;
    for broker in brokers {
        let mut b = UpdateMetadataBroker::default();
        b.id = WireBrokerId(broker.id);
        b.rack = broker.rack.clone().map(StrBytes::from_string);
        for endpoint in &broker.endpoints {
            let mut e = UpdateMetadataEndpoint::default();
            e.host = StrBytes::from_string(endpoint.host.clone());
            e.port = i32::from(endpoint.port);
            e.listener = StrBytes::from_string(endpoint.listener.clone());
            e.security_protocol = PLAINTEXT;
            b.endpoints.push(e);
        }
        request.live_brokers.push(b);
    }
    let deleted_commands: Vec<PartitionCommand> = deleted
        .iter()
        .map(|(partition, topic_id)| PartitionCommand {
            info: PartitionInfo {
                partition: partition.clone(),
                state: Versioned {
                    value: LeaderAndIsr {
                        leader: LEADER_DURING_DELETE,
                        leader_epoch: -1,
                        isr: Vec::new(),
                        controller_epoch: header.controller_epoch,
                    },
                    version: -1,
                },
                replicas: Vec::new(),
            },
            topic_id: *topic_id,
            is_new: false,
        })
        .collect();
    let all: Vec<PartitionCommand> = partitions.iter().cloned().chain(deleted_commands).collect();
    let live: Vec<BrokerId> = brokers.iter().map(|b| b.id).collect();
    for (topic, (topic_id, partitions)) in by_topic(&all) {
        let mut state = UpdateMetadataTopicState::default();
        state.topic_name = topic_name(topic);
        state.topic_id = topic_id;
        for partition in partitions {
            let info = &partition.info;
            let mut p = UpdateMetadataPartitionState::default();
            p.topic_name = topic_name(topic);
            p.partition_index = info.partition.partition;
            p.controller_epoch = info.state.value.controller_epoch;
            p.leader = WireBrokerId(info.state.value.leader);
            p.leader_epoch = info.state.value.leader_epoch;
            p.isr = ids(&info.state.value.isr);
            p.zk_version = info.state.version;
            p.replicas = ids(&info.replicas);
            p.offline_replicas = info
                .replicas
                .iter()
                .filter(|id| !live.contains(id))
                .copied()
                .map(WireBrokerId)
                .collect();
            state.partition_states.push(p);
        }
        request.topic_states.push(state);
    }
    request
}

/// Reads an UpdateMetadata received at `version`.
pub fn update_metadata_command(
    request: &UpdateMetadataRequest,
    version: i16,
) -> Result<UpdateMetadataCommand, Malformed> {
    check_version("UpdateMetadata", UPDATE_METADATA_ACCEPTED, version)?;
    let mut brokers = Vec::new();
    for broker in &request.live_brokers {
        let mut endpoints = Vec::new();
        for endpoint in &broker.endpoints {
            endpoints.push(Endpoint {
                listener: endpoint.listener.to_string(),
                security_protocol: "PLAINTEXT".to_string(),
                host: endpoint.host.to_string(),
                port: u16::try_from(endpoint.port).map_err(|_| {
                    Malformed(format!("broker {} has port {}", broker.id.0, endpoint.port))
                })?,
            });
        }
        brokers.push(BrokerRegistration {
            id: broker.id.0,
            endpoints,
            rack: broker.rack.as_ref().map(|rack| rack.to_string()),
        });
    }
    let mut partitions = Vec::new();
    let mut deleted = Vec::new();
    for topic in &request.topic_states {
        for p in &topic.partition_states {
            let partition = TopicPartition::new(topic.topic_name.0.as_str(), p.partition_index);
            if p.leader.0 == LEADER_DURING_DELETE {
                deleted.push(partition);
                continue;
            }
            partitions.push(PartitionCommand {
                info: partition_info(
                    partition,
                    (p.leader, p.leader_epoch, &p.isr, p.controller_epoch),
                    p.zk_version,
                    &p.replicas,
                ),
                topic_id: topic.topic_id,
                is_new: false,
            });
        }
    }
    Ok(UpdateMetadataCommand {
        header: header(
            request.controller_id,
            request.controller_epoch,
            request.broker_epoch,
        ),
        brokers,
        partitions,
        deleted,
    })
}

/// Builds the StopReplica a controller sends (at [`STOP_REPLICA_VERSION`]).
pub fn stop_replica_request(
    header: ControllerHeader,
    partitions: &[(TopicPartition, i32, bool)],
) -> StopReplicaRequest {
    let mut request = StopReplicaRequest::default();
    request.controller_id = WireBrokerId(header.controller_id);
    request.controller_epoch = header.controller_epoch;
    request.broker_epoch = header.broker_epoch;
    let mut topics: BTreeMap<&str, Vec<StopReplicaPartitionState>> = BTreeMap::new();
    for (partition, leader_epoch, delete) in partitions {
        let mut p = StopReplicaPartitionState::default();
        p.partition_index = partition.partition;
        p.leader_epoch = *leader_epoch;
        p.delete_partition = *delete;
        topics.entry(partition.topic.as_str()).or_default().push(p);
    }
    for (topic, states) in topics {
        let mut state = StopReplicaTopicState::default();
        state.topic_name = topic_name(topic);
        state.partition_states = states;
        request.topic_states.push(state);
    }
    request
}

/// Reads a StopReplica received at `version`.
pub fn stop_replica_command(
    request: &StopReplicaRequest,
    version: i16,
) -> Result<StopReplicaCommand, Malformed> {
    check_version("StopReplica", STOP_REPLICA_ACCEPTED, version)?;
    let partitions = request
        .topic_states
        .iter()
        .flat_map(|topic| {
            topic.partition_states.iter().map(|p| {
                (
                    TopicPartition::new(topic.topic_name.0.as_str(), p.partition_index),
                    p.leader_epoch,
                    p.delete_partition,
                )
            })
        })
        .collect();
    Ok(StopReplicaCommand {
        header: header(
            request.controller_id,
            request.controller_epoch,
            request.broker_epoch,
        ),
        partitions,
    })
}

#[cfg(test)]
mod tests;
