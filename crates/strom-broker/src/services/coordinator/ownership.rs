//! Which `__consumer_offsets` partitions this broker coordinates, in cluster mode.
//!
//! On a single node the coordinator serves every group and loads the whole topic once at
//! start ([`GroupCoordinator::load`]). In cluster mode (`zookeeper.connect`) it serves a group
//! only while this broker leads the group's partition, as Kafka's coordinator does: when a
//! LeaderAndIsr makes this broker leader of a partition, [`GroupCoordinator::become_leader`]
//! replays that partition up to its log end on a blocking thread (requests for its groups
//! answer `COORDINATOR_LOAD_IN_PROGRESS` meanwhile) and then serves its groups; when it
//! becomes a follower or the replica is stopped, [`GroupCoordinator::resign`] drops the
//! partition's groups and offsets from memory (their parked JoinGroup/SyncGroup answer
//! `NOT_COORDINATOR`, later requests too). Nothing is written on resignation: the log the
//! next leader replays already holds every acknowledged change.
//!
//! It does not decide leadership (the controller's LeaderAndIsr does; the handler of that
//! request calls in here) nor write records (see the module above).

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;

use super::load::Replayed;
use super::{ErrorCode, GroupCoordinator, State, OFFSETS_TOPIC};
use crate::services::group::{JoinResult, SyncResult};

/// A `__consumer_offsets` partition this broker leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ownership {
    /// Being replayed by the load numbered `id`; its groups are not served yet.
    Loading { id: u64, leader_epoch: i32 },
    /// Replayed: its groups are served.
    Loaded { leader_epoch: i32 },
}

impl Ownership {
    /// The last leader epoch this broker was told it leads the partition in.
    fn leader_epoch(&self) -> i32 {
        match self {
            Ownership::Loading { leader_epoch, .. } | Ownership::Loaded { leader_epoch } => {
                *leader_epoch
            }
        }
    }

    fn raise_epoch(&mut self, epoch: i32) {
        match self {
            Ownership::Loading { leader_epoch, .. } | Ownership::Loaded { leader_epoch } => {
                *leader_epoch = (*leader_epoch).max(epoch);
            }
        }
    }
}

impl GroupCoordinator {
    /// Whether this broker serves `group_id` now: always on a single node; in cluster mode
    /// `NOT_COORDINATOR` unless it leads the group's partition, `COORDINATOR_LOAD_IN_PROGRESS`
    /// while that partition is being loaded.
    pub(super) fn owner_check(&self, state: &State, group_id: &str) -> Result<(), ErrorCode> {
        if !self.clustered {
            return Ok(());
        }
        match state.owned.get(&self.partition_of(group_id)) {
            Some(Ownership::Loaded { .. }) => Ok(()),
            Some(Ownership::Loading { .. }) => Err(E::CoordinatorLoadInProgress.code()),
            None => Err(E::NotCoordinator.code()),
        }
    }

    /// [`GroupCoordinator::owner_check`] for handlers that only read (OffsetFetch,
    /// DescribeGroups).
    pub fn check_coordinator(&self, group_id: &str) -> Result<(), ErrorCode> {
        let state = self.state.lock().unwrap();
        self.owner_check(&state, group_id)
    }

    /// True once this broker serves the groups of `__consumer_offsets` partition `partition`
    /// (always on a single node).
    pub fn is_loaded(&self, partition: i32) -> bool {
        !self.clustered
            || matches!(
                self.state.lock().unwrap().owned.get(&partition),
                Some(Ownership::Loaded { .. })
            )
    }

    /// True while some partition is being loaded (ListGroups then answers
    /// `COORDINATOR_LOAD_IN_PROGRESS`, as Kafka does, rather than a partial list).
    pub fn is_loading(&self) -> bool {
        self.clustered
            && self
                .state
                .lock()
                .unwrap()
                .owned
                .values()
                .any(|o| matches!(o, Ownership::Loading { .. }))
    }

    /// This broker now leads `__consumer_offsets` partition `partition` at `leader_epoch`
    /// (cluster mode; ignored on a single node). A partition not served yet is loaded on a
    /// blocking thread; one already served (or being loaded) stays as it is, since this broker
    /// has been its leader without a break and its memory holds every change, unless the log
    /// shows that another broker wrote in an epoch in between (this broker missed being told
    /// it no longer led): then it is dropped and loaded again.
    pub fn become_leader(self: &Arc<Self>, partition: i32, leader_epoch: i32) {
        if !self.clustered {
            return;
        }
        let id = {
            let mut state = self.state.lock().unwrap();
            if let Some(served) = state.owned.get(&partition).map(Ownership::leader_epoch) {
                if !self.led_by_another_since(partition, served, leader_epoch) {
                    if let Some(ownership) = state.owned.get_mut(&partition) {
                        ownership.raise_epoch(leader_epoch);
                    }
                    return;
                }
                // Another leader wrote in between (this broker missed the LeaderAndIsr that
                // took the partition away): what is in memory is stale.
                tracing::warn!(
                    partition,
                    served,
                    leader_epoch,
                    "another broker led this __consumer_offsets partition meanwhile; reloading"
                );
                self.drop_partition(&mut state, partition);
            }
            state.next_load += 1;
            let id = state.next_load;
            state
                .owned
                .insert(partition, Ownership::Loading { id, leader_epoch });
            id
        };
        tracing::info!(
            partition,
            leader_epoch,
            "loading groups of __consumer_offsets"
        );
        let coordinator = self.clone();
        let load = move || coordinator.load_partition(partition, id);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(load)),
            Err(_) => load(),
        }
    }

    /// True if the partition's log holds records of a leader epoch after `served_epoch` (the
    /// last epoch this broker was told it leads) and before `leader_epoch`: another broker
    /// led and wrote in between. An epoch without records leaves no entry behind.
    fn led_by_another_since(&self, partition: i32, served_epoch: i32, leader_epoch: i32) -> bool {
        let Some(p) = self.replicas.partition(OFFSETS_TOPIC, partition) else {
            return false;
        };
        let log = p.log().lock().unwrap();
        log.leader_epoch_entries()
            .iter()
            .any(|(epoch, _)| *epoch > served_epoch && *epoch < leader_epoch)
    }

    /// Replays one partition up to its log end and, if the load was not cancelled meanwhile
    /// (resignation, or a newer load), installs its groups and offsets.
    pub(super) fn load_partition(&self, partition: i32, id: u64) {
        let started = std::time::Instant::now();
        let replayed = match self.replicas.partition(OFFSETS_TOPIC, partition) {
            Some(p) => Replayed::read(&p, true),
            None => Replayed::default(),
        };
        let now = crate::clock::now_ms();
        let mut state = self.state.lock().unwrap();
        let leader_epoch = match state.owned.get(&partition) {
            Some(Ownership::Loading {
                id: current,
                leader_epoch,
            }) if *current == id => *leader_epoch,
            _ => return,
        };
        let (groups, records) = (replayed.groups(), replayed.records);
        self.install(&mut state, replayed, now);
        self.apply_markers_set_aside(&mut state, partition);
        state
            .owned
            .insert(partition, Ownership::Loaded { leader_epoch });
        tracing::info!(
            partition,
            leader_epoch,
            groups,
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded groups of __consumer_offsets"
        );
    }

    /// This broker no longer leads `__consumer_offsets` partition `partition` (it follows, or
    /// the replica was stopped): its groups and offsets leave memory, parked JoinGroup and
    /// SyncGroup requests of those groups answer `NOT_COORDINATOR`, and a load in progress
    /// is cancelled. Ignored on a single node.
    pub fn resign(&self, partition: i32) {
        if !self.clustered {
            return;
        }
        let mut state = self.state.lock().unwrap();
        if state.owned.contains_key(&partition) {
            self.drop_partition(&mut state, partition);
        }
    }

    /// Forgets the partition's ownership, groups and offsets, answering its parked requests
    /// `NOT_COORDINATOR`.
    fn drop_partition(&self, state: &mut State, partition: i32) {
        state.owned.remove(&partition);
        state.txn_markers_while_loading.remove(&partition);
        let mine = |group: &str| self.partition_of(group) == partition;
        let mut gone: Vec<String> = state.groups.keys().filter(|g| mine(g)).cloned().collect();
        gone.extend(state.offsets.groups().into_iter().filter(|g| mine(g)));
        gone.extend(state.offsets.txn_groups().into_iter().filter(|g| mine(g)));
        gone.sort();
        gone.dedup();
        for group in &gone {
            state.groups.remove(group);
            // Dropped without tombstones: the records stay in the log for the next leader.
            let _ = state.offsets.delete_group(group);
            state.empty_since.remove(group);
        }
        let not_coordinator = E::NotCoordinator.code();
        let joins: Vec<_> = state
            .joins
            .iter()
            .filter(|(_, (group, _))| mine(group))
            .map(|(token, _)| *token)
            .collect();
        for token in joins {
            if let Some((_, tx)) = state.joins.remove(&token) {
                let _ = tx.send(JoinResult::error("", not_coordinator));
            }
        }
        let syncs: Vec<_> = state
            .syncs
            .iter()
            .filter(|(_, (group, _))| mine(group))
            .map(|(token, _)| *token)
            .collect();
        for token in syncs {
            if let Some((_, tx)) = state.syncs.remove(&token) {
                let _ = tx.send(super::SyncAnswer {
                    result: SyncResult::error(not_coordinator),
                    record: None,
                });
            }
        }
        tracing::info!(
            partition,
            groups = gone.len(),
            "unloaded groups of __consumer_offsets"
        );
    }
}
