//! A ZooKeeper model: the znodes Kafka's replication uses, typed instead of JSON, with
//! versions, creation zxids, ephemerals owned by sessions, session expiry and the operations
//! the controller and the leaders perform (conditional writes, the `multi` with a
//! `/controller_epoch` check). It is linearizable by construction: an operation is applied
//! whole when it arrives.

use std::collections::{BTreeMap, BTreeSet};

use strom_meta::controller::{ClusterSnapshot, LiveBroker, TopicInfo};
use strom_meta::replication::{
    BrokerId, BrokerRegistration, LeaderAndIsr, TopicAssignment, TopicPartition, Versioned,
};

/// A session id.
pub type SessionId = u64;

/// Why a conditional controller write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The partition state's version (or existence) did not match.
    Conflict,
    /// `/controller_epoch` is no longer at the writer's version.
    ControllerMoved,
}

#[derive(Debug, Default)]
pub struct Zk {
    zxid: i64,
    next_session: SessionId,
    live_sessions: BTreeSet<SessionId>,
    /// `/brokers/ids/<id>`: registration, czxid, owner.
    brokers: BTreeMap<BrokerId, (BrokerRegistration, i64, SessionId)>,
    /// `/controller`: broker and owner.
    controller: Option<(BrokerId, SessionId)>,
    /// `/controller_epoch`: value and version.
    controller_epoch: (i32, i32),
    topics: BTreeMap<String, TopicInfo>,
    states: BTreeMap<TopicPartition, Versioned<LeaderAndIsr>>,
    /// Each state znode's modification zxid.
    state_zxids: BTreeMap<TopicPartition, i64>,
    /// The children of `/admin/delete_topics`.
    deleting: BTreeSet<String>,
    /// `/isr_change_notification` entries not yet consumed.
    isr_changes: Vec<TopicPartition>,
    /// `/admin/reassign_partitions`, when present.
    pub reassign: Option<Vec<(TopicPartition, Vec<BrokerId>)>>,
}

/// Which watch fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    Brokers,
    Topics,
    IsrChange,
    Controller,
    DeleteTopics,
    Reassign,
}

impl Zk {
    pub fn new_session(&mut self) -> SessionId {
        self.next_session += 1;
        self.live_sessions.insert(self.next_session);
        self.next_session
    }

    pub fn session_alive(&self, session: SessionId) -> bool {
        self.live_sessions.contains(&session)
    }

    /// Expires `session`, deleting its ephemerals; returns the watches that fire.
    pub fn expire(&mut self, session: SessionId) -> Vec<Watch> {
        if !self.live_sessions.remove(&session) {
            return Vec::new();
        }
        let mut fired = Vec::new();
        let before = self.brokers.len();
        self.brokers.retain(|_, (_, _, owner)| *owner != session);
        if self.brokers.len() != before {
            fired.push(Watch::Brokers);
        }
        if self.controller.is_some_and(|(_, owner)| owner == session) {
            self.controller = None;
            fired.push(Watch::Controller);
        }
        fired
    }

    pub fn register(
        &mut self,
        session: SessionId,
        registration: BrokerRegistration,
    ) -> Result<i64, ()> {
        if self.brokers.contains_key(&registration.id) {
            return Err(());
        }
        self.zxid += 1;
        self.brokers
            .insert(registration.id, (registration, self.zxid, session));
        Ok(self.zxid)
    }

    pub fn live_brokers(&self) -> Vec<LiveBroker> {
        self.brokers
            .values()
            .map(|(registration, czxid, _)| LiveBroker {
                registration: registration.clone(),
                broker_epoch: *czxid,
            })
            .collect()
    }

    pub fn controller(&self) -> Option<BrokerId> {
        self.controller.map(|(id, _)| id)
    }

    /// Creates `/controller` and bumps `/controller_epoch`; the snapshot a winner loads.
    pub fn elect(&mut self, session: SessionId, id: BrokerId) -> Option<ClusterSnapshot> {
        if self.controller.is_some() {
            return None;
        }
        self.controller = Some((id, session));
        self.controller_epoch = (self.controller_epoch.0 + 1, self.controller_epoch.1 + 1);
        self.isr_changes.clear();
        Some(ClusterSnapshot {
            controller_epoch: self.controller_epoch.0,
            controller_epoch_version: self.controller_epoch.1,
            brokers: self.live_brokers(),
            topics: self.topics.clone(),
            states: self.states.clone(),
            deleting: self.deleting.clone(),
            state_zxids: self.state_zxids.clone(),
        })
    }

    pub fn create_topic(&mut self, name: &str, info: TopicInfo) {
        self.topics.insert(name.to_string(), info);
    }

    pub fn topics(&self) -> &BTreeMap<String, TopicInfo> {
        &self.topics
    }

    pub fn states(&self) -> &BTreeMap<TopicPartition, Versioned<LeaderAndIsr>> {
        &self.states
    }

    pub fn state(&self, partition: &TopicPartition) -> Option<Versioned<LeaderAndIsr>> {
        self.states.get(partition).cloned()
    }

    /// The controller's `multi`: check `/controller_epoch`, then create or set the state.
    pub fn controller_write(
        &mut self,
        partition: &TopicPartition,
        expected: Option<i32>,
        state: LeaderAndIsr,
        controller_epoch_version: i32,
    ) -> Result<i32, WriteError> {
        if self.controller_epoch.1 != controller_epoch_version {
            return Err(WriteError::ControllerMoved);
        }
        self.conditional_set(partition, expected, state)
            .map_err(|()| WriteError::Conflict)
    }

    /// A reassignment step's `multi`: check `/controller_epoch`, set the state conditionally
    /// and replace the topic's assignment.
    pub fn controller_write_assigned(
        &mut self,
        partition: &TopicPartition,
        expected: i32,
        state: LeaderAndIsr,
        assignment: TopicAssignment,
        controller_epoch_version: i32,
    ) -> Result<i32, WriteError> {
        if self.controller_epoch.1 != controller_epoch_version {
            return Err(WriteError::ControllerMoved);
        }
        let version = self
            .conditional_set(partition, Some(expected), state)
            .map_err(|()| WriteError::Conflict)?;
        if let Some(info) = self.topics.get_mut(&partition.topic) {
            info.assignment = assignment;
        }
        Ok(version)
    }

    /// The controller rewrites (or, with nothing left, deletes) `/admin/reassign_partitions`.
    pub fn set_reassign(
        &mut self,
        remaining: Vec<(TopicPartition, Vec<BrokerId>)>,
        controller_epoch_version: i32,
    ) -> Result<(), WriteError> {
        if self.controller_epoch.1 != controller_epoch_version {
            return Err(WriteError::ControllerMoved);
        }
        if self.reassign.is_some() {
            self.reassign = (!remaining.is_empty()).then_some(remaining);
        }
        Ok(())
    }

    /// A leader's ISR write: a conditional set, then an `/isr_change_notification` entry.
    pub fn leader_write(
        &mut self,
        partition: &TopicPartition,
        expected: i32,
        state: LeaderAndIsr,
    ) -> Result<i32, ()> {
        let version = self.conditional_set(partition, Some(expected), state)?;
        self.isr_changes.push(partition.clone());
        Ok(version)
    }

    fn conditional_set(
        &mut self,
        partition: &TopicPartition,
        expected: Option<i32>,
        state: LeaderAndIsr,
    ) -> Result<i32, ()> {
        let current = self.states.get(partition).map(|s| s.version);
        let version = match (current, expected) {
            (None, None) => 0,
            (Some(have), Some(want)) if have == want => have + 1,
            _ => return Err(()),
        };
        self.states.insert(
            partition.clone(),
            Versioned {
                value: state,
                version,
            },
        );
        self.zxid += 1;
        self.state_zxids.insert(partition.clone(), self.zxid);
        Ok(version)
    }

    /// An admin asks for a topic's deletion (a child of `/admin/delete_topics`).
    pub fn request_delete(&mut self, topic: &str) {
        self.deleting.insert(topic.to_string());
    }

    pub fn deletions(&self) -> Vec<String> {
        self.deleting.iter().cloned().collect()
    }

    /// The controller removes a deleted topic's znodes (checking `/controller_epoch`).
    pub fn delete_topic(
        &mut self,
        topic: &str,
        controller_epoch_version: i32,
    ) -> Result<(), WriteError> {
        if self.controller_epoch.1 != controller_epoch_version {
            return Err(WriteError::ControllerMoved);
        }
        self.topics.remove(topic);
        self.states.retain(|p, _| p.topic != topic);
        self.state_zxids.retain(|p, _| p.topic != topic);
        self.deleting.remove(topic);
        Ok(())
    }

    /// Reads and deletes the ISR change notifications.
    pub fn take_isr_changes(&mut self) -> Vec<TopicPartition> {
        std::mem::take(&mut self.isr_changes)
    }
}
