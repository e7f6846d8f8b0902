//! ElectLeaders in the controller: which partitions an admin's preferred or unclean election
//! applies to, and the preferred election's next state. The write itself goes through
//! `Active::reconcile`, as every election does. A child of `state` (it reads `Active`).

use super::{Active, Controller, Outbox};
use crate::controller::{ElectionOutcome, ElectionResult, ElectionType};
use crate::replication::{BrokerId, LeaderAndIsr, TopicPartition, NO_LEADER};

impl Controller {
    /// ElectLeaders: decides for each partition (every partition when `None`) whether the
    /// election of `kind` is needed and possible, and starts those that are (a conditional
    /// write with a bumped leader epoch, then LeaderAndIsr and UpdateMetadata as for any
    /// election). `None` when this broker is not the active controller (NOT_CONTROLLER).
    pub fn elect_leaders(
        &mut self,
        partitions: Option<Vec<TopicPartition>>,
        kind: ElectionType,
    ) -> Option<ElectionResult> {
        let active = self.active.as_mut()?;
        let mut effects = Vec::new();
        let partitions = partitions.unwrap_or_else(|| {
            active
                .all_partitions()
                .into_iter()
                .filter(|p| !active.deleting.contains_key(&p.topic))
                .collect()
        });
        let mut outcomes = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let outcome = active.election_outcome(&partition, kind);
            if outcome == ElectionOutcome::Started {
                active.requested.insert(partition.clone(), kind);
                active.reconcile(&partition, &mut effects);
            }
            outcomes.push((partition, outcome));
        }
        active.flush(Outbox::default(), &mut effects);
        active.check_invariants();
        Some((outcomes, effects))
    }
}

impl Active {
    /// A preferred election's next state: the first assigned replica leads if it is alive, in
    /// the ISR and not leading already; `None` otherwise.
    pub(super) fn decide_preferred(
        &self,
        current: &LeaderAndIsr,
        replicas: &[BrokerId],
    ) -> Option<LeaderAndIsr> {
        let &preferred = replicas.first()?;
        if current.leader == preferred
            || !self.live.contains_key(&preferred)
            || self.is_shutting_down(preferred)
            || !current.isr.contains(&preferred)
        {
            return None;
        }
        let isr = current
            .isr
            .iter()
            .copied()
            .filter(|r| self.live.contains_key(r))
            .collect();
        Some(LeaderAndIsr {
            leader: preferred,
            leader_epoch: current.leader_epoch + 1,
            isr,
            controller_epoch: self.controller_epoch,
        })
    }

    /// Whether an admin's election of `kind` is needed and possible for `partition` now.
    fn election_outcome(&self, partition: &TopicPartition, kind: ElectionType) -> ElectionOutcome {
        let replicas = self.replicas(partition);
        if replicas.is_empty() || self.deleting.contains_key(&partition.topic) {
            return ElectionOutcome::UnknownPartition;
        }
        let live = |r: &BrokerId| self.live.contains_key(r);
        let state = self.states.get(partition).map(|s| &s.value);
        let leader = state.map_or(NO_LEADER, |s| s.leader);
        match kind {
            ElectionType::Preferred => {
                let preferred = replicas[0];
                if leader == preferred && live(&leader) {
                    ElectionOutcome::NotNeeded
                } else if !live(&preferred)
                    || self.is_shutting_down(preferred)
                    || state.is_none_or(|s| !s.isr.contains(&preferred))
                {
                    ElectionOutcome::PreferredNotAvailable
                } else {
                    ElectionOutcome::Started
                }
            }
            ElectionType::Unclean => {
                if leader != NO_LEADER && live(&leader) {
                    ElectionOutcome::NotNeeded
                } else if state.is_none() || !replicas.iter().any(live) {
                    ElectionOutcome::EligibleNotAvailable
                } else {
                    ElectionOutcome::Started
                }
            }
        }
    }
}
