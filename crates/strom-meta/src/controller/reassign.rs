//! Partition reassignment in the controller (Kafka 2.4+'s `onPartitionReassignment`): asked
//! for by AlterPartitionReassignments ([`Controller::alter_reassignments`]) or by the
//! `/admin/reassign_partitions` znode ([`Input::ZnodeReassignment`]), carried out in steps
//! that each are one `multi` of the partition state and the topic's assignment
//! ([`Effect::WriteStateAndAssignment`]), so whatever step a controller failover interrupts is
//! persisted and the next controller finishes it from the topic znode alone.
//!
//! With original replicas O and target T, a reassignment:
//! 1. writes replicas T ++ (O − T) with `adding_replicas` T − O and `removing_replicas` O − T,
//!    and bumps the leader epoch (so the leader learns the new replicas); LeaderAndIsr then
//!    starts the new replicas, which fetch from the leader from the log start;
//! 2. waits until every member of T is in the ISR (the leader adds them; ISR change
//!    notifications tell the controller);
//! 3. writes replicas T with no replicas adding or removing, the ISR cut to T and the leader
//!    moved to the first live ISR member of T if it was not in T (epoch bumped either way),
//!    then sends StopReplica(delete) to the replicas of O − T.
//!
//! A new target for a partition being moved keeps its original replicas; replicas that were
//! being added and are no longer wanted leave the ISR in the same write and are deleted. A
//! cancel is a new target equal to the original replicas. Not owned here: the choice of
//! targets (the admin's), copying data (the brokers' fetchers), throttling.

use std::collections::{BTreeMap, BTreeSet};

use super::{Active, Controller, Outbox};
use crate::controller::{Effect, Input};
use crate::replication::{BrokerId, LeaderAndIsr, TopicAssignment, TopicPartition, NO_LEADER};

/// What [`Controller::alter_reassignments`] decided for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReassignOutcome {
    /// Accepted (NONE): the reassignment (or its cancellation) is under way, or there was
    /// nothing to move.
    Started,
    /// No such partition, or its topic is being deleted (UNKNOWN_TOPIC_OR_PARTITION).
    UnknownPartition,
    /// The target is empty, repeats a broker or names one that is not registered
    /// (INVALID_REPLICA_ASSIGNMENT).
    InvalidReplicas(String),
    /// A cancel for a partition that is not being reassigned (NO_REASSIGNMENT_IN_PROGRESS).
    NoReassignmentInProgress,
}

impl ReassignOutcome {
    /// Kafka's error code.
    pub fn code(&self) -> i16 {
        match self {
            ReassignOutcome::Started => 0,
            ReassignOutcome::UnknownPartition => 3,
            ReassignOutcome::InvalidReplicas(_) => 39,
            ReassignOutcome::NoReassignmentInProgress => 85,
        }
    }

    /// Kafka's error message, `None` for success.
    pub fn message(&self) -> Option<String> {
        match self {
            ReassignOutcome::Started => None,
            ReassignOutcome::UnknownPartition => {
                Some("This server does not host this topic-partition.".into())
            }
            ReassignOutcome::InvalidReplicas(reason) => Some(reason.clone()),
            ReassignOutcome::NoReassignmentInProgress => {
                Some("No reassignment is in progress for this partition.".into())
            }
        }
    }
}

/// What [`Controller::alter_reassignments`] returns: each partition's outcome, and the
/// effects to perform.
pub type ReassignResult = (Vec<(TopicPartition, ReassignOutcome)>, Vec<Effect>);

/// A partition being reassigned, as ListPartitionReassignments reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionReassignment {
    /// The partition.
    pub partition: TopicPartition,
    /// Every replica it has now (target and original).
    pub replicas: Vec<BrokerId>,
    /// Replicas being added.
    pub adding: Vec<BrokerId>,
    /// Replicas being removed.
    pub removing: Vec<BrokerId>,
}

/// The controller's reassignment bookkeeping (a field of `Active`).
#[derive(Clone, Debug, Default)]
pub(super) struct Reassignments {
    /// Targets asked for and not yet written (`None`: cancel).
    requested: BTreeMap<TopicPartition, Option<Vec<BrokerId>>>,
    /// Steps in flight: the topic's assignment they write, the replicas to delete once
    /// written, and the request they carry (put back if the write conflicts).
    in_flight: BTreeMap<TopicPartition, InFlight>,
    /// Partitions whose leader has been told their current replica set by a leader-epoch
    /// bump of this controller (a new controller bumps once before waiting for the ISR).
    announced: BTreeSet<TopicPartition>,
    /// Partitions `/admin/reassign_partitions` asked for, with their target, not finished.
    from_znode: BTreeMap<TopicPartition, Vec<BrokerId>>,
    /// Replicas to stop and delete once this step's answer has been applied.
    to_stop: Vec<(TopicPartition, BrokerId)>,
    /// The znode lists a partition that could not start: rewrite it without.
    rewrite_znode: bool,
    /// Removed replicas that were down when their StopReplica(delete) was due: sent when
    /// they register again (this controller's memory only; after a failover they stay).
    strays: BTreeSet<(TopicPartition, BrokerId)>,
}

#[derive(Clone, Debug)]
struct InFlight {
    assignment: TopicAssignment,
    stop: Vec<BrokerId>,
    request: Option<Option<Vec<BrokerId>>>,
}

impl Controller {
    /// AlterPartitionReassignments: for each partition a target (`None` cancels the one in
    /// progress), checked and started. `None` when this broker is not the active controller
    /// (NOT_CONTROLLER).
    pub fn alter_reassignments(
        &mut self,
        requests: Vec<(TopicPartition, Option<Vec<BrokerId>>)>,
    ) -> Option<ReassignResult> {
        let active = self.active.as_mut()?;
        let mut outcomes = Vec::with_capacity(requests.len());
        for (partition, target) in requests {
            let outcome = active.check_request(&partition, target.as_deref());
            if outcome == ReassignOutcome::Started {
                active.reassign.requested.insert(partition.clone(), target);
                // The API overrides what the znode asked for this partition (as in Kafka).
                if active.reassign.from_znode.remove(&partition).is_some() {
                    active.reassign.rewrite_znode = true;
                }
            }
            outcomes.push((partition, outcome));
        }
        let mut effects = Vec::new();
        active.advance_reassignments(&mut effects);
        active.flush(Outbox::default(), &mut effects);
        active.check_invariants();
        Some((outcomes, effects))
    }

    /// ListPartitionReassignments: the partitions being reassigned (of `partitions`, or all);
    /// `None` when this broker is not the active controller.
    pub fn reassignments(
        &self,
        partitions: Option<&[TopicPartition]>,
    ) -> Option<Vec<PartitionReassignment>> {
        let active = self.active.as_ref()?;
        let mut out = Vec::new();
        for (topic, info) in &active.topics {
            let a = &info.assignment;
            for (&index, replicas) in &a.partitions {
                let partition = TopicPartition::new(topic.clone(), index);
                let wanted = partitions.is_none_or(|ps| ps.contains(&partition));
                if !wanted || !a.is_reassigning(index) {
                    continue;
                }
                out.push(PartitionReassignment {
                    replicas: replicas.clone(),
                    adding: a.adding_replicas.get(&index).cloned().unwrap_or_default(),
                    removing: a.removing_replicas.get(&index).cloned().unwrap_or_default(),
                    partition,
                });
            }
        }
        Some(out)
    }
}

impl Active {
    /// Whether a request for `partition` can start.
    fn check_request(
        &self,
        partition: &TopicPartition,
        target: Option<&[BrokerId]>,
    ) -> ReassignOutcome {
        let Some(info) = self.topics.get(&partition.topic) else {
            return ReassignOutcome::UnknownPartition;
        };
        if self.deleting.contains_key(&partition.topic)
            || !info
                .assignment
                .partitions
                .contains_key(&partition.partition)
        {
            return ReassignOutcome::UnknownPartition;
        }
        let Some(target) = target else {
            let pending = self
                .reassign
                .requested
                .get(partition)
                .is_some_and(Option::is_some);
            if pending || info.assignment.is_reassigning(partition.partition) {
                return ReassignOutcome::Started;
            }
            return ReassignOutcome::NoReassignmentInProgress;
        };
        let distinct: BTreeSet<&BrokerId> = target.iter().collect();
        if target.is_empty() || distinct.len() != target.len() {
            return ReassignOutcome::InvalidReplicas(format!(
                "The proposed replica assignment {target:?} is empty or repeats a broker."
            ));
        }
        if let Some(dead) = target.iter().find(|r| !self.live.contains_key(r)) {
            return ReassignOutcome::InvalidReplicas(format!(
                "Replica assignment has brokers that are not alive: broker {dead}."
            ));
        }
        ReassignOutcome::Started
    }

    /// `/admin/reassign_partitions` was read: start what it asks that is not under way yet,
    /// drop what cannot start, and forget what it no longer lists.
    pub(super) fn znode_reassignment(&mut self, partitions: Vec<(TopicPartition, Vec<BrokerId>)>) {
        let listed: BTreeSet<TopicPartition> = partitions.iter().map(|(p, _)| p.clone()).collect();
        self.reassign.from_znode.retain(|p, _| listed.contains(p));
        let mut refused = false;
        for (partition, target) in partitions {
            if self.reassign.from_znode.get(&partition) == Some(&target) {
                continue;
            }
            if self.check_request(&partition, Some(&target)) != ReassignOutcome::Started {
                refused = true;
                continue;
            }
            let a = &self.topics[&partition.topic].assignment;
            let under_way =
                a.is_reassigning(partition.partition) && a.target(partition.partition) == target;
            let done = a.partitions.get(&partition.partition) == Some(&target);
            if !under_way && !done {
                self.reassign
                    .requested
                    .insert(partition.clone(), Some(target.clone()));
            }
            self.reassign.from_znode.insert(partition, target);
        }
        self.reassign.rewrite_znode |= refused;
    }

    /// Before a write's answer is applied: a reassignment step that succeeded installs its
    /// assignment (so the LeaderAndIsr that follows names the new replicas); one that failed
    /// puts its request back.
    pub(super) fn reassign_answer(&mut self, input: &Input) {
        match input {
            Input::StateWritten { partition, .. } => {
                let Some(step) = self.reassign.in_flight.remove(partition) else {
                    return;
                };
                if !self.writing.contains_key(partition) {
                    return;
                }
                if let Some(info) = self.topics.get_mut(&partition.topic) {
                    info.assignment = step.assignment;
                }
                self.reassign.announced.insert(partition.clone());
                for broker in step.stop {
                    self.reassign.to_stop.push((partition.clone(), broker));
                }
            }
            Input::BrokersChanged { brokers } => {
                let strays = std::mem::take(&mut self.reassign.strays);
                for (partition, broker) in strays {
                    let back = brokers.iter().any(|b| {
                        b.registration.id == broker
                            && self.live.get(&broker).map(|l| l.broker_epoch)
                                != Some(b.broker_epoch)
                    });
                    if !back {
                        self.reassign.strays.insert((partition, broker));
                    } else if !self.replicas(&partition).contains(&broker) {
                        self.reassign.to_stop.push((partition, broker));
                    }
                }
            }
            Input::StateWriteConflict { partition } => {
                if let Some(step) = self.reassign.in_flight.remove(partition) {
                    if let Some(request) = step.request {
                        self.reassign
                            .requested
                            .entry(partition.clone())
                            .or_insert(request);
                    }
                }
            }
            _ => {}
        }
    }

    /// Takes every partition with a reassignment one step further where it can go.
    pub(super) fn advance_reassignments(&mut self, effects: &mut Vec<Effect>) {
        for (partition, broker) in std::mem::take(&mut self.reassign.to_stop) {
            let Some(broker_epoch) = self.live.get(&broker).map(|b| b.broker_epoch) else {
                // Down: deleted when it registers again.
                self.reassign.strays.insert((partition, broker));
                continue;
            };
            effects.push(Effect::SendStopReplica {
                broker,
                broker_epoch,
                controller_epoch: self.controller_epoch,
                topic: partition.topic.clone(),
                partitions: vec![partition],
                delete: true,
            });
        }
        let mut candidates: BTreeSet<TopicPartition> =
            self.reassign.requested.keys().cloned().collect();
        for (topic, info) in &self.topics {
            let a = &info.assignment;
            for &index in a.adding_replicas.keys().chain(a.removing_replicas.keys()) {
                candidates.insert(TopicPartition::new(topic.clone(), index));
            }
        }
        for partition in candidates {
            self.advance(&partition, effects);
        }
        self.finish_znode_requests(effects);
    }

    fn advance(&mut self, partition: &TopicPartition, effects: &mut Vec<Effect>) {
        let known = self
            .topics
            .get(&partition.topic)
            .is_some_and(|t| t.assignment.partitions.contains_key(&partition.partition));
        if !known || self.deleting.contains_key(&partition.topic) {
            self.reassign.requested.remove(partition);
            return;
        }
        if self.writing.contains_key(partition) || self.reading.contains_key(partition) {
            return;
        }
        // One step per topic at a time: each writes the topic's whole assignment.
        if self
            .reassign
            .in_flight
            .keys()
            .any(|p| p.topic == partition.topic)
        {
            return;
        }
        let Some(current) = self.states.get(partition).map(|s| s.value.clone()) else {
            return; // not initialised yet
        };
        let a = self.topics[&partition.topic].assignment.clone();
        let index = partition.partition;
        let replicas = a.partitions[&index].clone();
        if let Some(request) = self.reassign.requested.get(partition).cloned() {
            let original = a.original(index);
            let target = request.clone().unwrap_or_else(|| original.clone());
            let mut full = target.clone();
            full.extend(original.iter().filter(|r| !target.contains(r)));
            if !a.is_reassigning(index) && full == replicas && target == replicas {
                self.reassign.requested.remove(partition);
                return; // nothing to move
            }
            let unneeded: Vec<BrokerId> = replicas
                .iter()
                .copied()
                .filter(|r| !full.contains(r))
                .collect();
            let Some(state) = self.cut_to(&current, &full) else {
                return; // no leader possible within the new replicas yet: wait
            };
            let mut next = a.clone();
            set_partition(&mut next, index, full, &target, &original);
            self.reassign.requested.remove(partition);
            self.write_step(partition, state, next, unneeded, Some(request), effects);
            return;
        }
        if !a.is_reassigning(index) {
            return;
        }
        let target = a.target(index);
        if target.iter().all(|r| current.isr.contains(r)) {
            let Some(state) = self.cut_to(&current, &target) else {
                return;
            };
            let removed: Vec<BrokerId> = replicas
                .iter()
                .copied()
                .filter(|r| !target.contains(r))
                .collect();
            let mut next = a.clone();
            set_partition(&mut next, index, target.clone(), &target, &target);
            self.write_step(partition, state, next, removed, None, effects);
        } else if !self.reassign.announced.contains(partition)
            && current.leader != NO_LEADER
            && self.live.contains_key(&current.leader)
        {
            // A new controller: tell the leader the replicas with an epoch bump.
            let state = LeaderAndIsr {
                leader_epoch: current.leader_epoch + 1,
                controller_epoch: self.controller_epoch,
                ..current
            };
            self.write_step(partition, state, a, Vec::new(), None, effects);
        }
    }

    /// The state after cutting the replicas to `keep`: the ISR within `keep`, the leader kept
    /// if it is live and in `keep`, else the first live ISR member of `keep`; the leader epoch
    /// bumped. `None` if no such leader exists.
    fn cut_to(&self, current: &LeaderAndIsr, keep: &[BrokerId]) -> Option<LeaderAndIsr> {
        let live = |r: &BrokerId| self.live.contains_key(r);
        let isr: Vec<BrokerId> = current
            .isr
            .iter()
            .copied()
            .filter(|r| keep.contains(r))
            .collect();
        let leader = if keep.contains(&current.leader) && live(&current.leader) {
            current.leader
        } else {
            *keep.iter().find(|r| live(r) && isr.contains(r))?
        };
        Some(LeaderAndIsr {
            leader,
            leader_epoch: current.leader_epoch + 1,
            isr,
            controller_epoch: self.controller_epoch,
        })
    }

    fn write_step(
        &mut self,
        partition: &TopicPartition,
        state: LeaderAndIsr,
        assignment: TopicAssignment,
        stop: Vec<BrokerId>,
        request: Option<Option<Vec<BrokerId>>>,
        effects: &mut Vec<Effect>,
    ) {
        let expected_version = self.states[partition].version;
        self.writing.insert(partition.clone(), state.clone());
        self.reassign.in_flight.insert(
            partition.clone(),
            InFlight {
                assignment: assignment.clone(),
                stop,
                request,
            },
        );
        effects.push(Effect::WriteStateAndAssignment {
            partition: partition.clone(),
            expected_version,
            state,
            assignment,
            controller_epoch_version: self.controller_epoch_version,
        });
    }

    /// Rewrites `/admin/reassign_partitions` when a partition it asked for is finished (no
    /// longer moving, nothing pending) or could not start.
    fn finish_znode_requests(&mut self, effects: &mut Vec<Effect>) {
        let before = self.reassign.from_znode.len();
        let had_refused = std::mem::take(&mut self.reassign.rewrite_znode);
        let finished: Vec<TopicPartition> = self
            .reassign
            .from_znode
            .keys()
            .filter(|p| {
                let moving = self
                    .topics
                    .get(&p.topic)
                    .is_some_and(|t| t.assignment.is_reassigning(p.partition));
                !moving
                    && !self.reassign.requested.contains_key(p)
                    && !self.reassign.in_flight.contains_key(p)
            })
            .cloned()
            .collect();
        for partition in &finished {
            self.reassign.from_znode.remove(partition);
        }
        if had_refused || self.reassign.from_znode.len() != before {
            effects.push(Effect::WriteZnodeReassignment {
                remaining: self
                    .reassign
                    .from_znode
                    .iter()
                    .map(|(p, t)| (p.clone(), t.clone()))
                    .collect(),
                controller_epoch_version: self.controller_epoch_version,
            });
        }
    }
}

/// Sets partition `index` of `assignment` to `replicas`, adding `target − original` and
/// removing `original − target` (entries left out when empty).
fn set_partition(
    assignment: &mut TopicAssignment,
    index: i32,
    replicas: Vec<BrokerId>,
    target: &[BrokerId],
    original: &[BrokerId],
) {
    let adding: Vec<BrokerId> = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    let removing: Vec<BrokerId> = original
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    assignment.partitions.insert(index, replicas);
    for (map, moving) in [
        (&mut assignment.adding_replicas, adding),
        (&mut assignment.removing_replicas, removing),
    ] {
        if moving.is_empty() {
            map.remove(&index);
        } else {
            map.insert(index, moving);
        }
    }
}

#[cfg(test)]
#[path = "reassign_tests.rs"]
mod tests;
