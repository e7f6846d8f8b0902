//! Leadership balance in the controller (Kafka's `auto.leader.rebalance.enable`): on a tick
//! every `leader.imbalance.check.interval.seconds` (time injected by the shell), each broker's
//! imbalance is the share of the partitions whose preferred replica (the first assigned) it is
//! but which another broker leads (or nobody does); for a broker above
//! `leader.imbalance.per.broker.percentage`, preferred elections are started for those of its
//! partitions whose preferred replica is live, in the ISR and not shutting down and that are
//! not being reassigned, through the same path as ElectLeaders. The first check comes one interval after the election. Also the
//! ZooKeeper era's `/admin/preferred_replica_election` request, whose partitions get preferred
//! elections before the znode is deleted. A child of `state` (it reads `Active`).

use std::collections::BTreeMap;

use super::{Active, Controller};
use crate::config::LeaderBalanceSettings;
use crate::controller::{Effect, ElectionType, Input};
use crate::replication::{BrokerId, TopicPartition};

impl Controller {
    /// Sets the automatic leader balance (Kafka's defaults until called: on, 10 %, 300 s).
    pub fn set_leader_balance(&mut self, settings: LeaderBalanceSettings) {
        self.balance = settings;
    }

    /// Per broker: how many partitions prefer it (first assigned replica) and how many of
    /// those another broker (or nobody) leads; empty when not the active controller.
    pub fn preferred_leadership(&self) -> BTreeMap<BrokerId, (usize, usize)> {
        self.active
            .as_ref()
            .map(|a| a.preferred_counts())
            .unwrap_or_default()
    }

    /// [`Input::Tick`] and [`Input::PreferredReplicaElection`].
    pub(super) fn step_balance(&mut self, input: Input) -> Vec<Effect> {
        let mut effects = Vec::new();
        match input {
            Input::Tick { now_ms } => {
                let settings = self.balance;
                let Some(active) = self.active.as_mut() else {
                    return effects;
                };
                active.leader_balance_tick(now_ms, settings, &mut effects);
                active.flush(Default::default(), &mut effects);
                active.answer_shutdowns(&mut effects);
                active.check_invariants();
            }
            Input::PreferredReplicaElection { partitions } => {
                let kind = ElectionType::Preferred;
                let Some((_, started)) = self.elect_leaders(Some(partitions), kind) else {
                    return effects;
                };
                effects.extend(started);
                if let Some(active) = self.active.as_mut() {
                    active.answer_shutdowns(&mut effects);
                    effects.push(Effect::DeletePreferredReplicaElection {
                        controller_epoch_version: active.controller_epoch_version,
                    });
                }
            }
            _ => unreachable!("only the balance's inputs"),
        }
        effects
    }
}

impl Active {
    /// The balance check, if `now_ms` reached it: starts the preferred elections it calls for.
    pub(super) fn leader_balance_tick(
        &mut self,
        now_ms: u64,
        settings: LeaderBalanceSettings,
        effects: &mut Vec<Effect>,
    ) {
        if !settings.enable {
            return;
        }
        let next = *self
            .next_balance_check
            .get_or_insert(now_ms.saturating_add(settings.check_interval_ms));
        if now_ms < next {
            return;
        }
        self.next_balance_check = Some(now_ms.saturating_add(settings.check_interval_ms));
        for partition in self.imbalanced(settings.imbalance_percentage) {
            self.requested
                .insert(partition.clone(), ElectionType::Preferred);
            self.reconcile(&partition, effects);
        }
    }

    /// Per broker: (partitions it is preferred for, of those led by another or by nobody).
    pub(super) fn preferred_counts(&self) -> BTreeMap<BrokerId, (usize, usize)> {
        let mut counts: BTreeMap<BrokerId, (usize, usize)> = BTreeMap::new();
        for partition in self.all_partitions() {
            if self.deleting.contains_key(&partition.topic) {
                continue;
            }
            let Some(&preferred) = self.replicas(&partition).first() else {
                continue;
            };
            let count = counts.entry(preferred).or_default();
            count.0 += 1;
            let leader = self.states.get(&partition).map(|s| s.value.leader);
            if leader != Some(preferred) {
                count.1 += 1;
            }
        }
        counts
    }

    /// The partitions a balance check elects: of each broker whose imbalance is above
    /// `percentage`, those not led by it that it can lead now.
    fn imbalanced(&self, percentage: u32) -> Vec<TopicPartition> {
        let over: Vec<BrokerId> = self
            .preferred_counts()
            .into_iter()
            .filter(|(_, (total, off))| *off * 100 > *total * percentage as usize)
            .map(|(broker, _)| broker)
            .collect();
        self.all_partitions()
            .into_iter()
            .filter(|p| !self.deleting.contains_key(&p.topic))
            // As Kafka's check: a partition being reassigned is left to the reassignment.
            .filter(|p| {
                !self
                    .topics
                    .get(&p.topic)
                    .is_some_and(|t| t.assignment.is_reassigning(p.partition))
            })
            .filter(|p| {
                let replicas = self.replicas(p);
                let Some(&preferred) = replicas.first() else {
                    return false;
                };
                let Some(state) = self.states.get(p) else {
                    return false;
                };
                over.contains(&preferred)
                    && state.value.leader != preferred
                    && state.value.isr.contains(&preferred)
                    && self.live.contains_key(&preferred)
                    && !self.is_shutting_down(preferred)
            })
            .collect()
    }
}
