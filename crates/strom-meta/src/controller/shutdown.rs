//! Controlled shutdown in the controller (Kafka's `doControlledShutdown`): a broker about to
//! stop asks the controller to move the leadership of its partitions to other ISR members and
//! to take it out of the ISRs it follows in, and is answered with the partitions it still
//! leads once those writes have settled. A child of `state` (it reads `Active`).
//!
//! Rules, as Kafka's ZooKeeper-era controller: only partitions with more than one replica are
//! touched (an RF 1 partition stays where it is and is not reported); a led partition gets the
//! first replica in assignment order that is live, in the ISR and not shutting down, with the
//! shutting-down brokers left out of the ISR, or stays led by the broker (and is reported) when
//! there is none; a followed partition loses the broker from its ISR unless it is the last
//! member. Every such write bumps the leader epoch. While a broker is shutting down (until it
//! registers again or goes away) no election, preferred or not, makes it a leader; instead of
//! LeaderAndIsr for a partition it no longer leads it gets StopReplica (without deletion) right
//! after the step's LeaderAndIsr and UpdateMetadata, and once its request settles StopReplica
//! for every replicated partition it does not lead, so it stops serving and fetching them and
//! cannot be taken back into an ISR by a leader before it stops. It does not own the broker's side (the retries, then
//! the stop) nor the wire format.

use std::collections::{BTreeMap, BTreeSet};

use super::{Active, Outbox};
use crate::controller::{Effect, STALE_BROKER_EPOCH};
use crate::replication::{BrokerId, LeaderAndIsr, TopicPartition, NO_LEADER};

/// Kafka's BROKER_NOT_AVAILABLE: the asking broker is not registered (or registered anew).
pub const BROKER_NOT_AVAILABLE: i16 = 8;

/// The brokers shutting down and the requests not answered yet, each with the broker epoch
/// of the registration that asked.
#[derive(Clone, Debug, Default)]
pub(super) struct Shutdowns {
    shutting_down: BTreeMap<BrokerId, i64>,
    pending: BTreeMap<BrokerId, i64>,
}

impl Active {
    /// Whether `broker`'s current registration asked to shut down.
    pub(super) fn is_shutting_down(&self, broker: BrokerId) -> bool {
        self.shutdowns
            .shutting_down
            .get(&broker)
            .is_some_and(|epoch| self.live.get(&broker).map(|b| b.broker_epoch) == Some(*epoch))
    }

    /// A ControlledShutdown from `broker` (`broker_epoch` -1: versions before 2, unchecked):
    /// refused at once if the broker is not live or the epoch is stale; otherwise every
    /// partition it holds is decided again under the shutdown rules, and the answer follows
    /// when those writes have settled ([`Active::answer_shutdowns`]).
    pub(super) fn controlled_shutdown(
        &mut self,
        broker: BrokerId,
        broker_epoch: i64,
        effects: &mut Vec<Effect>,
    ) {
        let Some(live_epoch) = self.live.get(&broker).map(|b| b.broker_epoch) else {
            effects.push(Effect::ControlledShutdownAnswer {
                broker,
                error_code: BROKER_NOT_AVAILABLE,
                remaining: Vec::new(),
            });
            return;
        };
        if broker_epoch != -1 && broker_epoch != live_epoch {
            effects.push(Effect::ControlledShutdownAnswer {
                broker,
                error_code: if broker_epoch < live_epoch {
                    STALE_BROKER_EPOCH
                } else {
                    BROKER_NOT_AVAILABLE
                },
                remaining: Vec::new(),
            });
            return;
        }
        self.shutdowns.shutting_down.insert(broker, live_epoch);
        self.shutdowns.pending.insert(broker, live_epoch);
        for partition in self.all_partitions() {
            let replicas = self.replicas(&partition);
            if replicas.len() > 1 && replicas.contains(&broker) {
                self.reconcile(&partition, effects);
            }
        }
    }

    /// Applies the shutdown rules to `next` (the state the other rules decided, or `None` for
    /// no change from `current`): the state to write, or `None` if nothing changes.
    pub(super) fn shutdown_adjust(
        &self,
        next: Option<LeaderAndIsr>,
        current: &LeaderAndIsr,
        replicas: &[BrokerId],
    ) -> Option<LeaderAndIsr> {
        let stopping = |r: &BrokerId| self.is_shutting_down(*r);
        if replicas.len() < 2 || !replicas.iter().any(stopping) {
            return next;
        }
        let base = next.clone().unwrap_or_else(|| current.clone());
        let mut leader = base.leader;
        if leader != NO_LEADER && stopping(&leader) {
            let other = replicas
                .iter()
                .copied()
                .find(|r| base.isr.contains(r) && self.live.contains_key(r) && !stopping(r));
            if let Some(other) = other {
                leader = other;
            }
        }
        let mut isr: Vec<BrokerId> = base
            .isr
            .iter()
            .copied()
            .filter(|r| !stopping(r) || *r == leader)
            .collect();
        if isr.is_empty() {
            isr = base.isr.clone();
        }
        if leader == base.leader && isr == base.isr {
            return next;
        }
        Some(LeaderAndIsr {
            leader,
            leader_epoch: current.leader_epoch + 1,
            isr,
            controller_epoch: self.controller_epoch,
        })
    }

    /// Answers every pending ControlledShutdown whose partitions have settled (no write or
    /// read in flight): StopReplica for the replicated partitions it no longer leads, then
    /// the partitions it still leads. A broker that went away meanwhile is answered
    /// BROKER_NOT_AVAILABLE (nobody waits for it). Called at the end of each step.
    pub(super) fn answer_shutdowns(&mut self, effects: &mut Vec<Effect>) {
        let live = &self.live;
        self.shutdowns
            .shutting_down
            .retain(|b, epoch| live.get(b).is_some_and(|l| l.broker_epoch == *epoch));
        let pending: Vec<(BrokerId, i64)> = self
            .shutdowns
            .pending
            .iter()
            .map(|(b, e)| (*b, *e))
            .collect();
        for (broker, epoch) in pending {
            if self.live.get(&broker).map(|b| b.broker_epoch) != Some(epoch) {
                self.shutdowns.pending.remove(&broker);
                effects.push(Effect::ControlledShutdownAnswer {
                    broker,
                    error_code: BROKER_NOT_AVAILABLE,
                    remaining: Vec::new(),
                });
                continue;
            }
            let held: Vec<TopicPartition> = self
                .all_partitions()
                .into_iter()
                .filter(|p| !self.deleting.contains_key(&p.topic))
                .filter(|p| {
                    let replicas = self.replicas(p);
                    replicas.len() > 1 && replicas.contains(&broker)
                })
                .collect();
            let unsettled = held.iter().any(|p| {
                self.writing.contains_key(p)
                    || self.reading.contains_key(p)
                    || self.dirty.contains(p)
            });
            if unsettled {
                continue;
            }
            self.shutdowns.pending.remove(&broker);
            let (remaining, moved): (Vec<TopicPartition>, Vec<TopicPartition>) = held
                .into_iter()
                .filter(|p| self.states.contains_key(p))
                .partition(|p| self.states[p].value.leader == broker);
            let topics: BTreeSet<&str> = moved.iter().map(|p| p.topic.as_str()).collect();
            for topic in topics {
                effects.push(Effect::SendStopReplica {
                    broker,
                    broker_epoch: epoch,
                    controller_epoch: self.controller_epoch,
                    topic: topic.to_string(),
                    partitions: moved.iter().filter(|p| p.topic == topic).cloned().collect(),
                    delete: false,
                });
            }
            effects.push(Effect::ControlledShutdownAnswer {
                broker,
                error_code: 0,
                remaining,
            });
        }
    }

    /// Takes shutting-down brokers out of a step's LeaderAndIsr requests: a partition such a
    /// broker still leads keeps its LeaderAndIsr; for the others it gets StopReplica (without
    /// deletion) instead, returned here to be performed after the step's LeaderAndIsr and
    /// UpdateMetadata, so it stops serving each partition as soon as the partition moved.
    pub(super) fn skip_shutting_down(&self, outbox: &mut Outbox) -> Vec<Effect> {
        let mut stops = Vec::new();
        for (&broker, partitions) in outbox.leader_and_isr.iter_mut() {
            if !self.is_shutting_down(broker) {
                continue;
            }
            let led =
                |p: &TopicPartition| self.states.get(p).is_some_and(|s| s.value.leader == broker);
            let (kept, stopped): (BTreeSet<TopicPartition>, BTreeSet<TopicPartition>) =
                std::mem::take(partitions).into_iter().partition(led);
            *partitions = kept;
            let topics: BTreeSet<&str> = stopped.iter().map(|p| p.topic.as_str()).collect();
            for topic in topics {
                stops.push(Effect::SendStopReplica {
                    broker,
                    broker_epoch: self.shutdowns.shutting_down[&broker],
                    controller_epoch: self.controller_epoch,
                    topic: topic.to_string(),
                    partitions: stopped
                        .iter()
                        .filter(|p| p.topic == topic)
                        .cloned()
                        .collect(),
                    delete: false,
                });
            }
        }
        stops
    }
}
