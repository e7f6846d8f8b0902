//! The controller's state and its transitions (see the module doc of [`super`]).

use std::collections::{BTreeMap, BTreeSet};

use super::{
    ClusterSnapshot, ControllerStats, Effect, ElectionType, Input, LiveBroker, PartitionInfo,
    TopicInfo,
};

#[path = "balance.rs"]
mod balance;
#[path = "elect.rs"]
mod elect;
#[path = "shutdown.rs"]
mod shutdown;

#[path = "reassign.rs"]
pub(super) mod reassign;
#[path = "topics_read.rs"]
mod topics_read;
use crate::replication::{
    BrokerId, BrokerRegistration, LeaderAndIsr, TopicPartition, Versioned, NO_LEADER,
};

/// The controller of broker `local`: inactive until [`Input::Elected`].
#[derive(Clone, Debug)]
pub struct Controller {
    local: BrokerId,
    active: Option<Active>,
    /// What earlier terms counted.
    retired: ControllerStats,
    /// The automatic leader balance's settings (`balance.rs`).
    balance: crate::config::LeaderBalanceSettings,
}

/// What an elected controller holds.
#[derive(Clone, Debug)]
struct Active {
    controller_epoch: i32,
    controller_epoch_version: i32,
    live: BTreeMap<BrokerId, LiveBroker>,
    topics: BTreeMap<String, TopicInfo>,
    /// The partition-state znodes as last read or written.
    states: BTreeMap<TopicPartition, Versioned<LeaderAndIsr>>,
    /// Writes in flight (one per partition), with the state written.
    writing: BTreeMap<TopicPartition, LeaderAndIsr>,
    /// Partitions being re-read, and whether brokers must then get UpdateMetadata.
    reading: BTreeMap<TopicPartition, bool>,
    /// Partitions to decide again once their write or read completes.
    dirty: BTreeSet<TopicPartition>,
    /// Topics being deleted, with the replicas that have not confirmed.
    deleting: BTreeMap<String, BTreeSet<BrokerId>>,
    /// Partitions whose leader registered again after their state was written: elect anew.
    reelect: BTreeSet<TopicPartition>,
    /// Ids of the topics this controller deleted: a topics read that was answered before the
    /// znodes went away must not bring one back.
    deleted_ids: BTreeSet<uuid::Uuid>,
    /// Brokers owed a LeaderAndIsr for a partition whose write or read is in flight (so they
    /// never get a state the controller already knows to be stale).
    owed: BTreeMap<TopicPartition, BTreeSet<BrokerId>>,
    /// Writes in flight that elect a leader, and whether the election is unclean.
    electing: BTreeMap<TopicPartition, bool>,
    /// Elections an admin asked for, applied when the partition is next decided.
    requested: BTreeMap<TopicPartition, ElectionType>,
    /// Partition reassignments (`reassign.rs`).
    reassign: reassign::Reassignments,
    /// What this term counted.
    stats: ControllerStats,
    /// Controlled shutdowns (`shutdown.rs`).
    shutdowns: shutdown::Shutdowns,
    /// When the next leader balance check is due (`balance.rs`); set by the first tick.
    next_balance_check: Option<u64>,
}

/// Requests gathered during one step, sent at its end (Kafka's request batch).
#[derive(Default)]
struct Outbox {
    leader_and_isr: BTreeMap<BrokerId, BTreeSet<TopicPartition>>,
    update_metadata: BTreeSet<TopicPartition>,
    update_all: bool,
    deleted: Vec<TopicPartition>,
}

impl Controller {
    /// The controller of broker `local`, not elected.
    pub fn new(local: BrokerId) -> Controller {
        Controller {
            local,
            active: None,
            retired: ControllerStats::default(),
            balance: crate::config::LeaderBalanceSettings {
                enable: true,
                imbalance_percentage: 10,
                check_interval_ms: 300_000,
            },
        }
    }

    /// Whether this broker is the active controller.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// The epoch this controller won, if active.
    pub fn controller_epoch(&self) -> Option<i32> {
        self.active.as_ref().map(|a| a.controller_epoch)
    }

    /// The partition state as this controller last read or wrote it.
    pub fn state(&self, partition: &TopicPartition) -> Option<&Versioned<LeaderAndIsr>> {
        self.active.as_ref()?.states.get(partition)
    }

    /// What this broker's controller counted, over all its terms.
    pub fn stats(&self) -> ControllerStats {
        let current = self.active.as_ref().map(|a| a.stats).unwrap_or_default();
        ControllerStats {
            leader_elections: self.retired.leader_elections + current.leader_elections,
            unclean_leader_elections: self.retired.unclean_leader_elections
                + current.unclean_leader_elections,
        }
    }

    /// Partitions without a live leader (Kafka's `OfflinePartitionsCount`: the state names no
    /// leader or a broker that is not registered), topics being deleted left out; 0 when not
    /// the active controller.
    pub fn offline_partitions(&self) -> usize {
        let Some(active) = self.active.as_ref() else {
            return 0;
        };
        active
            .states
            .iter()
            .filter(|(p, _)| !active.deleting.contains_key(&p.topic))
            .filter(|(_, s)| !active.live.contains_key(&s.value.leader))
            .count()
    }

    /// Applies `input` and returns what the shell must do.
    pub fn step(&mut self, input: Input) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut outbox = Outbox::default();
        match input {
            Input::Elected(snapshot) => self.elected(snapshot, &mut effects, &mut outbox),
            Input::ControllerChanged { controller } => {
                if controller != Some(self.local) {
                    self.resign(&mut effects);
                }
            }
            Input::SessionExpired | Input::ControllerEpochMismatch => self.resign(&mut effects),
            input @ (Input::Tick { .. } | Input::PreferredReplicaElection { .. }) => {
                return self.step_balance(input);
            }
            other => {
                let Some(active) = self.active.as_mut() else {
                    return effects; // a late answer to a resigned controller
                };
                for one in other.one_by_one() {
                    active.reassign_answer(&one);
                    active.apply(one, &mut effects, &mut outbox);
                }
            }
        }
        if let Some(active) = self.active.as_mut() {
            let stops = active.skip_shutting_down(&mut outbox);
            active.advance_reassignments(&mut effects);
            active.flush(outbox, &mut effects);
            effects.extend(stops);
            active.answer_shutdowns(&mut effects);
            active.check_invariants();
        }
        effects
    }

    fn resign(&mut self, effects: &mut Vec<Effect>) {
        if let Some(active) = self.active.take() {
            self.retired.leader_elections += active.stats.leader_elections;
            self.retired.unclean_leader_elections += active.stats.unclean_leader_elections;
            effects.push(Effect::Resigned);
        }
    }

    fn elected(
        &mut self,
        snapshot: ClusterSnapshot,
        effects: &mut Vec<Effect>,
        outbox: &mut Outbox,
    ) {
        let mut active = Active {
            controller_epoch: snapshot.controller_epoch,
            controller_epoch_version: snapshot.controller_epoch_version,
            live: snapshot
                .brokers
                .into_iter()
                .map(|b| (b.registration.id, b))
                .collect(),
            topics: snapshot.topics,
            states: snapshot.states,
            writing: BTreeMap::new(),
            reading: BTreeMap::new(),
            dirty: BTreeSet::new(),
            deleting: BTreeMap::new(),
            reelect: BTreeSet::new(),
            deleted_ids: BTreeSet::new(),
            owed: BTreeMap::new(),
            electing: BTreeMap::new(),
            requested: BTreeMap::new(),
            reassign: reassign::Reassignments::default(),
            stats: ControllerStats::default(),
            shutdowns: Default::default(),
            next_balance_check: None,
        };
        for (partition, state) in &active.states {
            let registered = active.live.get(&state.value.leader).map(|b| b.broker_epoch);
            let written = snapshot
                .state_zxids
                .get(partition)
                .copied()
                .unwrap_or(i64::MAX);
            if registered.is_some_and(|registered| registered > written) {
                active.reelect.insert(partition.clone());
            }
        }
        // Deletions first, so that nothing is elected or sent for a topic being deleted.
        for topic in snapshot.deleting {
            active.start_deletion(topic, effects, outbox);
        }
        for partition in active.all_partitions() {
            active.reconcile(&partition, effects);
        }
        // Tell every live broker the whole state, and each its own replicas.
        outbox.update_all = true;
        let live: Vec<BrokerId> = active.live.keys().copied().collect();
        for broker in live {
            active.queue_leader_and_isr_for(broker, outbox);
        }
        self.active = Some(active);
    }
}

impl Active {
    fn apply(&mut self, input: Input, effects: &mut Vec<Effect>, outbox: &mut Outbox) {
        match input {
            Input::BrokersChanged { brokers } => self.brokers_changed(brokers, effects, outbox),
            Input::TopicsChanged { topics } => self.topics_changed(topics, effects),
            Input::TopicConfigChanged {
                topic,
                unclean_leader_election,
            } => {
                if let Some(info) = self.topics.get_mut(&topic) {
                    info.unclean_leader_election = unclean_leader_election;
                    for partition in self.topic_partitions(&topic) {
                        self.reconcile(&partition, effects);
                    }
                }
            }
            Input::IsrChangeNotification { partitions } => {
                let partitions: Vec<TopicPartition> = partitions
                    .into_iter()
                    .filter(|p| self.topics.contains_key(&p.topic))
                    .collect();
                self.read(partitions, true, effects);
            }
            Input::StatesRead { states } => {
                for (partition, state) in states {
                    let Some(notify) = self.reading.remove(&partition) else {
                        continue;
                    };
                    match state {
                        Some(state) => {
                            self.states.insert(partition.clone(), state);
                        }
                        None => {
                            self.states.remove(&partition);
                        }
                    }
                    if notify {
                        outbox.update_metadata.insert(partition.clone());
                    }
                    self.dirty.remove(&partition);
                    self.reconcile(&partition, effects);
                    if !self.writing.contains_key(&partition) {
                        self.pay_owed(&partition, outbox);
                    }
                }
            }
            Input::StateWritten { partition, version } => {
                let Some(state) = self.writing.remove(&partition) else {
                    return;
                };
                if let Some(unclean) = self.electing.remove(&partition) {
                    self.stats.leader_elections += 1;
                    self.stats.unclean_leader_elections += u64::from(unclean);
                }
                self.states.insert(
                    partition.clone(),
                    Versioned {
                        value: state,
                        version,
                    },
                );
                self.owed.remove(&partition);
                if self.deleting.contains_key(&partition.topic) {
                    // Written before the deletion began: its replicas are being stopped.
                    self.dirty.remove(&partition);
                    return;
                }
                for replica in self.replicas(&partition) {
                    if self.live.contains_key(&replica) {
                        outbox
                            .leader_and_isr
                            .entry(replica)
                            .or_default()
                            .insert(partition.clone());
                    }
                }
                outbox.update_metadata.insert(partition.clone());
                if self.dirty.remove(&partition) {
                    self.reconcile(&partition, effects);
                }
            }
            Input::StateWriteConflict { partition } => {
                self.electing.remove(&partition);
                if self.writing.remove(&partition).is_some() {
                    self.dirty.remove(&partition);
                    self.read(vec![partition], false, effects);
                }
            }
            Input::TopicDeletionRequested { topic } => {
                self.start_deletion(topic, effects, outbox);
            }
            Input::StopReplicaDone { broker, topic } => {
                let Some(waiting) = self.deleting.get_mut(&topic) else {
                    return;
                };
                waiting.remove(&broker);
                if waiting.is_empty() {
                    self.finish_deletion(topic, effects, outbox);
                }
            }
            Input::ControlledShutdown {
                broker,
                broker_epoch,
            } => self.controlled_shutdown(broker, broker_epoch, effects),

            Input::ZnodeReassignment { partitions } => self.znode_reassignment(partitions),
            Input::Elected(_)
            | Input::ControllerChanged { .. }
            | Input::SessionExpired
            | Input::ControllerEpochMismatch
            | Input::Tick { .. }
            | Input::StatesWritten { .. }
            | Input::PreferredReplicaElection { .. } => unreachable!("handled by Controller::step"),
        }
    }

    fn brokers_changed(
        &mut self,
        brokers: Vec<LiveBroker>,
        effects: &mut Vec<Effect>,
        outbox: &mut Outbox,
    ) {
        let now: BTreeMap<BrokerId, LiveBroker> = brokers
            .into_iter()
            .map(|b| (b.registration.id, b))
            .collect();
        // A broker whose registration has a new epoch restarted: it failed and came back.
        let dead: Vec<BrokerId> = self
            .live
            .iter()
            .filter(|(id, b)| now.get(id).is_none_or(|n| n.broker_epoch != b.broker_epoch))
            .map(|(id, _)| *id)
            .collect();
        let started: Vec<BrokerId> = now
            .iter()
            .filter(|(id, n)| {
                self.live
                    .get(id)
                    .is_none_or(|b| b.broker_epoch != n.broker_epoch)
            })
            .map(|(id, _)| *id)
            .collect();
        if dead.is_empty() && started.is_empty() {
            return;
        }
        // Failures first, decided without the restarted brokers (their in-memory replica
        // state is gone), then startups.
        for id in &dead {
            self.live.remove(id);
        }
        if !dead.is_empty() {
            outbox.update_all = true;
            for partition in self.all_partitions() {
                let affected = self.replicas(&partition).iter().any(|r| dead.contains(r));
                if affected {
                    self.reconcile(&partition, effects);
                }
            }
        }
        for id in &started {
            self.live.insert(*id, now[id].clone());
        }
        if !started.is_empty() {
            outbox.update_all = true;
            for partition in self.all_partitions() {
                self.reconcile(&partition, effects);
            }
            for &id in &started {
                self.queue_leader_and_isr_for(id, outbox);
            }
            let deleting: Vec<(String, Vec<BrokerId>)> = self
                .deleting
                .iter()
                .map(|(t, w)| (t.clone(), w.iter().copied().collect()))
                .collect();
            for (topic, waiting) in deleting {
                for broker in waiting.into_iter().filter(|b| started.contains(b)) {
                    self.send_stop_replica(&topic, broker, effects);
                }
            }
        }
    }

    /// Decides what `partition` needs (initial state, election, ISR removal) and writes it.
    fn reconcile(&mut self, partition: &TopicPartition, effects: &mut Vec<Effect>) {
        if self.deleting.contains_key(&partition.topic) {
            return;
        }
        if self.writing.contains_key(partition) || self.reading.contains_key(partition) {
            self.dirty.insert(partition.clone());
            return;
        }
        let replicas = self.replicas(partition);
        if replicas.is_empty() {
            return;
        }
        let unclean = self
            .topics
            .get(&partition.topic)
            .is_some_and(|t| t.unclean_leader_election);
        let live = |r: &BrokerId| self.live.contains_key(r);
        let (expected_version, state) = match self.states.get(partition) {
            None => {
                let isr: Vec<BrokerId> = replicas.iter().copied().filter(live).collect();
                let Some(&leader) = isr.first() else {
                    return; // no live replica: stays new until one starts
                };
                let state = LeaderAndIsr {
                    leader,
                    leader_epoch: 0,
                    isr,
                    controller_epoch: self.controller_epoch,
                };
                (None, state)
            }
            Some(current) => {
                let reelect = self.reelect.contains(partition);
                let requested = self.requested.remove(partition);
                let preferred = (requested == Some(ElectionType::Preferred))
                    .then(|| self.decide_preferred(&current.value, &replicas))
                    .flatten();
                let unclean = unclean || requested == Some(ElectionType::Unclean);
                let decided =
                    preferred.or_else(|| self.decide(&current.value, &replicas, unclean, reelect));
                let Some(state) = self.shutdown_adjust(decided, &current.value, &replicas) else {
                    return;
                };
                let was_led = current.value.leader != NO_LEADER
                    && self.live.contains_key(&current.value.leader)
                    && !reelect;
                if !was_led && state.leader != NO_LEADER {
                    let outside_isr = !current.value.isr.contains(&state.leader);
                    self.electing.insert(partition.clone(), outside_isr);
                }
                (Some(current.version), state)
            }
        };
        self.reelect.remove(partition);
        self.writing.insert(partition.clone(), state.clone());
        effects.push(Effect::WriteState {
            partition: partition.clone(),
            expected_version,
            state,
            controller_epoch_version: self.controller_epoch_version,
        });
    }

    /// The next state of an existing partition, or `None` if it needs no change; with
    /// `reelect`, a live leader is elected again (with a new epoch) as if it were offline.
    fn decide(
        &self,
        current: &LeaderAndIsr,
        replicas: &[BrokerId],
        unclean: bool,
        reelect: bool,
    ) -> Option<LeaderAndIsr> {
        let live = |r: &BrokerId| self.live.contains_key(r);
        let live_isr: Vec<BrokerId> = current.isr.iter().copied().filter(live).collect();
        let next = |leader, isr| LeaderAndIsr {
            leader,
            leader_epoch: current.leader_epoch + 1,
            isr,
            controller_epoch: self.controller_epoch,
        };
        if current.leader != NO_LEADER && live(&current.leader) && !reelect {
            if live_isr.len() == current.isr.len() {
                return None;
            }
            return Some(next(current.leader, live_isr));
        }
        // Offline: the first live ISR member in assignment order.
        if let Some(&leader) = replicas.iter().find(|r| live(r) && current.isr.contains(r)) {
            return Some(next(leader, live_isr));
        }
        if unclean {
            if let Some(&leader) = replicas.iter().find(|r| live(r)) {
                return Some(next(leader, vec![leader]));
            }
        }
        // No leader possible: record that, dropping dead members but keeping the last one so
        // that it can lead again cleanly when it returns.
        let isr = if current.isr.is_empty() {
            Vec::new()
        } else if live_isr.is_empty() {
            vec![*current.isr.last().expect("not empty")]
        } else {
            live_isr
        };
        if current.leader == NO_LEADER && isr == current.isr {
            return None;
        }
        Some(next(NO_LEADER, isr))
    }

    fn read(&mut self, partitions: Vec<TopicPartition>, notify: bool, effects: &mut Vec<Effect>) {
        let mut to_read = Vec::new();
        for partition in partitions {
            if self.writing.contains_key(&partition) {
                // The write's answer will tell us the state; decide again after it.
                self.dirty.insert(partition);
                continue;
            }
            let entry = self.reading.entry(partition.clone()).or_insert(false);
            *entry |= notify;
            to_read.push(partition);
        }
        if !to_read.is_empty() {
            effects.push(Effect::ReadStates {
                partitions: to_read,
            });
        }
    }

    fn start_deletion(&mut self, topic: String, effects: &mut Vec<Effect>, outbox: &mut Outbox) {
        if self.deleting.contains_key(&topic) {
            return;
        }
        let Some(info) = self.topics.get(&topic) else {
            // Nothing to delete: remove the request.
            effects.push(Effect::DeleteTopicZnodes {
                topic,
                controller_epoch_version: self.controller_epoch_version,
            });
            return;
        };
        let holders: BTreeSet<BrokerId> = info
            .assignment
            .partitions
            .values()
            .flatten()
            .copied()
            .collect();
        self.deleting.insert(topic.clone(), holders.clone());
        // Brokers forget the topic at once (Kafka's UpdateMetadata with the leader "during
        // delete"), so DeleteTopics answers while a replica is down; the znodes stay until
        // every replica has deleted its log.
        let partitions = self.topic_partitions(&topic);
        outbox.update_metadata.retain(|p| p.topic != topic);
        outbox.deleted.extend(partitions);
        self.owed.retain(|p, _| p.topic != topic);
        for partitions in outbox.leader_and_isr.values_mut() {
            partitions.retain(|p| p.topic != topic);
        }
        if holders.is_empty() {
            self.finish_deletion(topic, effects, outbox);
            return;
        }
        for broker in holders.into_iter().filter(|b| self.live.contains_key(b)) {
            self.send_stop_replica(&topic, broker, effects);
        }
    }

    fn send_stop_replica(&self, topic: &str, broker: BrokerId, effects: &mut Vec<Effect>) {
        let partitions: Vec<TopicPartition> = self
            .topic_partitions(topic)
            .into_iter()
            .filter(|p| self.replicas(p).contains(&broker))
            .collect();
        let Some(broker_epoch) = self.live.get(&broker).map(|b| b.broker_epoch) else {
            return;
        };
        effects.push(Effect::SendStopReplica {
            broker,
            broker_epoch,
            controller_epoch: self.controller_epoch,
            topic: topic.to_string(),
            partitions,
            delete: true,
        });
    }

    fn finish_deletion(&mut self, topic: String, effects: &mut Vec<Effect>, outbox: &mut Outbox) {
        let partitions = self.topic_partitions(&topic);
        self.deleting.remove(&topic);
        if let Some(info) = self.topics.remove(&topic) {
            // A topic written without an id (before Kafka 2.8) cannot be told apart this way.
            if !info.assignment.topic_id.is_nil() {
                self.deleted_ids.insert(info.assignment.topic_id);
            }
        }
        for partition in &partitions {
            self.states.remove(partition);
            self.writing.remove(partition);
            self.reading.remove(partition);
            self.dirty.remove(partition);
            self.owed.remove(partition);
            self.reelect.remove(partition);
            self.electing.remove(partition);
            self.requested.remove(partition);
            outbox.update_metadata.remove(partition);
            for set in outbox.leader_and_isr.values_mut() {
                set.remove(partition);
            }
        }
        outbox.deleted.extend(partitions);
        effects.push(Effect::DeleteTopicZnodes {
            topic,
            controller_epoch_version: self.controller_epoch_version,
        });
    }

    /// Queues LeaderAndIsr for every partition `broker` holds; one whose state is being
    /// written or re-read is owed to it until that settles.
    fn queue_leader_and_isr_for(&mut self, broker: BrokerId, outbox: &mut Outbox) {
        let partitions: Vec<TopicPartition> = self
            .states
            .keys()
            .filter(|p| self.replicas(p).contains(&broker))
            .filter(|p| !self.deleting.contains_key(&p.topic))
            .cloned()
            .collect();
        for partition in partitions {
            if self.writing.contains_key(&partition) || self.reading.contains_key(&partition) {
                self.owed.entry(partition).or_default().insert(broker);
            } else {
                outbox
                    .leader_and_isr
                    .entry(broker)
                    .or_default()
                    .insert(partition);
            }
        }
    }

    fn pay_owed(&mut self, partition: &TopicPartition, outbox: &mut Outbox) {
        let owed = self.owed.remove(partition).unwrap_or_default();
        if self.deleting.contains_key(&partition.topic) {
            return;
        }
        for broker in owed {
            outbox
                .leader_and_isr
                .entry(broker)
                .or_default()
                .insert(partition.clone());
        }
    }

    fn replicas(&self, partition: &TopicPartition) -> Vec<BrokerId> {
        self.topics
            .get(&partition.topic)
            .and_then(|t| t.assignment.partitions.get(&partition.partition))
            .cloned()
            .unwrap_or_default()
    }

    fn topic_partitions(&self, topic: &str) -> Vec<TopicPartition> {
        self.topics.get(topic).map_or_else(Vec::new, |t| {
            t.assignment
                .partitions
                .keys()
                .map(|&p| TopicPartition::new(topic, p))
                .collect()
        })
    }

    fn all_partitions(&self) -> Vec<TopicPartition> {
        self.topics
            .keys()
            .flat_map(|t| self.topic_partitions(t))
            .collect()
    }

    fn info(&self, partition: &TopicPartition) -> Option<PartitionInfo> {
        Some(PartitionInfo {
            partition: partition.clone(),
            state: self.states.get(partition)?.clone(),
            replicas: self.replicas(partition),
        })
    }

    fn registrations(&self) -> Vec<BrokerRegistration> {
        self.live.values().map(|b| b.registration.clone()).collect()
    }

    /// Turns the step's gathered requests into effects: LeaderAndIsr first, then
    /// UpdateMetadata to every live broker (Kafka's order).
    fn flush(&self, outbox: Outbox, effects: &mut Vec<Effect>) {
        for (broker, partitions) in outbox.leader_and_isr {
            let Some(broker_epoch) = self.live.get(&broker).map(|b| b.broker_epoch) else {
                continue;
            };
            let partitions: Vec<PartitionInfo> =
                partitions.iter().filter_map(|p| self.info(p)).collect();
            if partitions.is_empty() {
                continue;
            }
            let leader_ids: BTreeSet<BrokerId> =
                partitions.iter().map(|p| p.state.value.leader).collect();
            let leaders = leader_ids
                .iter()
                .filter_map(|id| self.live.get(id).map(|b| b.registration.clone()))
                .collect();
            effects.push(Effect::SendLeaderAndIsr {
                broker,
                broker_epoch,
                controller_epoch: self.controller_epoch,
                partitions,
                leaders,
            });
        }
        if !outbox.update_all && outbox.update_metadata.is_empty() && outbox.deleted.is_empty() {
            return;
        }
        let partitions: Vec<PartitionInfo> = if outbox.update_all {
            self.states.keys().filter_map(|p| self.info(p)).collect()
        } else {
            outbox
                .update_metadata
                .iter()
                .filter_map(|p| self.info(p))
                .collect()
        };
        let partitions: Vec<PartitionInfo> = partitions
            .into_iter()
            .filter(|p| !self.deleting.contains_key(&p.partition.topic))
            .collect();
        let brokers = self.registrations();
        for (&broker, live) in &self.live {
            effects.push(Effect::SendUpdateMetadata {
                broker,
                broker_epoch: live.broker_epoch,
                controller_epoch: self.controller_epoch,
                brokers: brokers.clone(),
                partitions: partitions.clone(),
                deleted: outbox.deleted.clone(),
            });
        }
    }

    /// Debug builds check what the controller itself keeps true (states read from ZooKeeper
    /// are the controller's and leaders' own writes); the simulation checks it always.
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        for (partition, state) in &self.states {
            let replicas = self.replicas(partition);
            let value = &state.value;
            assert!(
                value.isr.iter().all(|r| replicas.contains(r)),
                "{partition}: ISR {:?} outside the replicas {replicas:?}",
                value.isr
            );
            assert!(
                value.leader == NO_LEADER || value.isr.contains(&value.leader),
                "{partition}: leader {} outside the ISR {:?}",
                value.leader,
                value.isr
            );
        }
    }
}
