//! One partition's replica state on a broker, as a pure state machine: Kafka's `Partition`
//! (leader epoch, ISR, follower positions, high watermark, ISR shrink and expand) and the
//! acks=all half of its `DelayedProduce`.
//!
//! [`PartitionReplica::step`] takes an [`Input`] and the time and returns [`Effect`]s; it does
//! no I/O and reads no clock. The shell owns the log (appends, fsyncs, reads, truncation, the
//! leader-epoch cache), the ZooKeeper client that performs [`Effect::WriteIsr`] as a
//! conditional `setData` on `/brokers/topics/<t>/partitions/<p>/state`, and the answers to
//! clients and followers. This module does not own how followers fetch or truncate (that is
//! the follower's log and its fetcher), nor leader election (the controller's).
//!
//! Durability: every offset here is a *durable* log end offset. The leader counts its own
//! log only up to what it has fdatasync'd ([`Input::LocalDurable`]), and a follower's fetch
//! offset counts as its acknowledgement, so a follower fetches from an offset only once the
//! records before it are on its disk. So the high watermark, the minimum durable LEO over the
//! ISR, only covers records that every ISR member holds on disk, and an acks=all produce is
//! acknowledged when the high watermark reaches its end.

use std::collections::BTreeMap;

use crate::replication::{BrokerId, LeaderAndIsr, TopicPartition, Versioned};

pub mod selector;
#[cfg(test)]
mod tests;

/// What a produce or a follower fetch is refused with: Kafka's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaError {
    /// 1: a follower asked for an offset past the leader's log end.
    OffsetOutOfRange,
    /// 6: this broker does not lead the partition (or the fetching broker is no replica).
    NotLeaderOrFollower,
    /// 19: acks=all and the ISR is smaller than `min.insync.replicas`; nothing was appended.
    NotEnoughReplicas,
    /// 20: appended, but the ISR shrank below `min.insync.replicas` before it was replicated.
    NotEnoughReplicasAfterAppend,
    /// 74: the request names an older leader epoch than this leader's.
    FencedLeaderEpoch,
    /// 75: the request names a newer leader epoch than this broker knows.
    UnknownLeaderEpoch,
}

impl ReplicaError {
    /// The Kafka error code.
    pub fn code(self) -> i16 {
        match self {
            ReplicaError::OffsetOutOfRange => 1,
            ReplicaError::NotLeaderOrFollower => 6,
            ReplicaError::NotEnoughReplicas => 19,
            ReplicaError::NotEnoughReplicasAfterAppend => 20,
            ReplicaError::FencedLeaderEpoch => 74,
            ReplicaError::UnknownLeaderEpoch => 75,
        }
    }
}

/// A produce's `acks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no answer.
    None,
    /// `acks=1`: answered once the leader's own log has it (durably, in Strom's default mode).
    Leader,
    /// `acks=all` (`-1`): answered once the high watermark reaches it.
    All,
}

/// The topic and broker settings the replica state uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaSettings {
    /// `min.insync.replicas`.
    pub min_insync_replicas: usize,
    /// `replica.lag.time.max.ms`: a follower not caught up for longer leaves the ISR.
    pub replica_lag_time_max_ms: u64,
}

/// The shell's token for one appended produce, echoed in [`Effect::Produced`].
pub type ProduceId = u64;

/// What happens to a partition replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// LeaderAndIsr made this broker the leader. `state` is the partition-state znode with its
    /// version; the offsets are the local log's when the request arrived.
    BecomeLeader {
        /// The state the controller wrote.
        state: Versioned<LeaderAndIsr>,
        /// The assigned replicas.
        replicas: Vec<BrokerId>,
        /// The local log end offset (where this leader's epoch starts).
        log_end_offset: i64,
        /// The local log's fdatasync'd end offset.
        durable_end_offset: i64,
        /// The local log's high watermark (from its checkpoint or from the previous leader).
        high_watermark: i64,
    },
    /// LeaderAndIsr made this broker a follower of `state.leader`.
    BecomeFollower {
        /// The state the controller wrote.
        state: LeaderAndIsr,
        /// The assigned replicas.
        replicas: Vec<BrokerId>,
    },
    /// StopReplica, or the broker is shutting down: this replica no longer serves.
    Stop,
    /// The shell appended a produce as leader; `end_offset` is the log end offset after it.
    Appended {
        /// Echoed in [`Effect::Produced`].
        produce_id: ProduceId,
        /// The offset after the batch's last record.
        end_offset: i64,
        /// The produce's acks.
        acks: Acks,
    },
    /// The local log is durable up to `end_offset`.
    LocalDurable {
        /// The new fdatasync'd end offset.
        end_offset: i64,
    },
    /// A follower fetched: its fetch offset is its durable log end offset.
    FollowerFetch {
        /// The fetching broker.
        replica_id: BrokerId,
        /// The offset it asks for: its log is durable up to here.
        fetch_offset: i64,
        /// The leader epoch the follower believes current, or -1 if it does not say.
        current_leader_epoch: i32,
    },
    /// Time passed: check the followers' lag (Kafka checks every `replica.lag.time.max.ms / 2`).
    Tick,
    /// The conditional write of [`Effect::WriteIsr`] succeeded with this new znode version.
    IsrWritten {
        /// The znode's new version.
        version: i32,
    },
    /// The conditional write of [`Effect::WriteIsr`] found another version.
    IsrWriteConflict,
    /// The partition-state znode as read after [`Effect::ReloadState`].
    StateReloaded {
        /// The znode's contents and version.
        state: Versioned<LeaderAndIsr>,
    },
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Answer the produce `produce_id`.
    Produced {
        /// The token from [`Input::Appended`].
        produce_id: ProduceId,
        /// `Ok` to acknowledge, or the error code to answer with.
        result: Result<(), ReplicaError>,
    },
    /// The high watermark moved up to `offset`: consumers may read below it.
    HighWatermark {
        /// The new high watermark.
        offset: i64,
    },
    /// Serve the follower's fetch from its fetch offset, with this high watermark.
    FetchAccepted {
        /// The fetching broker.
        replica_id: BrokerId,
        /// The high watermark to return.
        high_watermark: i64,
    },
    /// Refuse the follower's fetch.
    FetchRefused {
        /// The fetching broker.
        replica_id: BrokerId,
        /// The error to return.
        error: ReplicaError,
    },
    /// Write `state` to the partition-state znode if its version is still `expected_version`,
    /// then answer [`Input::IsrWritten`] or [`Input::IsrWriteConflict`]; on success also
    /// create an `/isr_change_notification` entry so the controller propagates it.
    WriteIsr {
        /// The version the write is conditional on.
        expected_version: i32,
        /// The new state (same leader and epoch, new ISR).
        state: LeaderAndIsr,
    },
    /// Read the partition-state znode and answer [`Input::StateReloaded`].
    ReloadState,
    /// This broker learned it no longer leads: it acknowledges nothing more until a newer
    /// LeaderAndIsr.
    Fenced,
}

/// What the replica is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not serving (new, or stopped).
    Offline,
    /// The leader.
    Leader,
    /// A follower of `leader`.
    Follower {
        /// The leader it follows.
        leader: BrokerId,
    },
    /// Was the leader, then found ZooKeeper naming another leader or epoch.
    Fenced,
}

/// What the leader knows of one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's last fetch offset (its durable log end offset), -1 if unknown.
    pub durable_end_offset: i64,
    /// When it was last caught up with the leader's log end offset.
    pub last_caught_up_ms: u64,
    /// When it last fetched, and the leader's log end offset then.
    last_fetch_ms: u64,
    last_fetch_leader_end_offset: i64,
}

/// One produce waiting for the high watermark (acks=all) or local durability (acks=1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    produce_id: ProduceId,
    acks: Acks,
}

/// One partition's replica state on broker `local`.
#[derive(Clone, Debug)]
pub struct PartitionReplica {
    partition: TopicPartition,
    local: BrokerId,
    settings: ReplicaSettings,
    role: Role,
    leader_epoch: i32,
    controller_epoch: i32,
    replicas: Vec<BrokerId>,
    /// Invariant: a subset of `replicas`, containing `local` while `role` is Leader.
    isr: Vec<BrokerId>,
    /// The partition-state znode version `isr` was read or written at.
    isr_version: i32,
    /// The ISR of the conditional write in flight, if any (one at a time).
    pending_isr: Option<Vec<BrokerId>>,
    log_end_offset: i64,
    durable_end_offset: i64,
    /// Where this leader's epoch starts: a follower joins the ISR only past it.
    epoch_start_offset: i64,
    /// Invariant: never decreases while this broker leads (across the epochs of one
    /// uninterrupted leadership); at most `durable_end_offset`.
    high_watermark: i64,
    followers: BTreeMap<BrokerId, FollowerState>,
    /// Produces waiting, by end offset (then arrival).
    pending: BTreeMap<(i64, ProduceId), Pending>,
}

impl PartitionReplica {
    /// A replica of `partition` on broker `local`, offline until a LeaderAndIsr.
    pub fn new(
        partition: TopicPartition,
        local: BrokerId,
        settings: ReplicaSettings,
    ) -> PartitionReplica {
        PartitionReplica {
            partition,
            local,
            settings,
            role: Role::Offline,
            leader_epoch: -1,
            controller_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            isr_version: -1,
            pending_isr: None,
            log_end_offset: 0,
            durable_end_offset: 0,
            epoch_start_offset: 0,
            high_watermark: 0,
            followers: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// The partition.
    pub fn partition(&self) -> &TopicPartition {
        &self.partition
    }

    /// The replica's role.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// The leader epoch of the last LeaderAndIsr applied.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The committed ISR (as last written or read) and its znode version.
    pub fn isr(&self) -> (&[BrokerId], i32) {
        (&self.isr, self.isr_version)
    }

    /// The high watermark (meaningful while leading).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// What the leader knows of `follower`.
    pub fn follower(&self, follower: BrokerId) -> Option<&FollowerState> {
        self.followers.get(&follower)
    }

    /// Settings changed (a topic config change): applies from the next step.
    pub fn set_settings(&mut self, settings: ReplicaSettings) {
        self.settings = settings;
    }

    /// Whether a produce with `acks` may be appended now: Kafka refuses acks=all with
    /// NOT_ENOUGH_REPLICAS before the append when the ISR is below `min.insync.replicas`.
    pub fn check_produce(&self, acks: Acks) -> Result<(), ReplicaError> {
        if self.role != Role::Leader {
            return Err(ReplicaError::NotLeaderOrFollower);
        }
        if acks == Acks::All && self.isr.len() < self.settings.min_insync_replicas {
            return Err(ReplicaError::NotEnoughReplicas);
        }
        Ok(())
    }

    /// Applies `input` at `now_ms` and returns what the shell must do.
    pub fn step(&mut self, input: Input, now_ms: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        match input {
            Input::BecomeLeader {
                state,
                replicas,
                log_end_offset,
                durable_end_offset,
                high_watermark,
            } => self.become_leader(
                state,
                replicas,
                (log_end_offset, durable_end_offset, high_watermark),
                now_ms,
                &mut effects,
            ),
            Input::BecomeFollower { state, replicas } => {
                if state.leader_epoch < self.leader_epoch || state.leader == self.local {
                    return effects;
                }
                self.fail_all_pending(ReplicaError::NotLeaderOrFollower, &mut effects);
                self.role = Role::Follower {
                    leader: state.leader,
                };
                self.leader_epoch = state.leader_epoch;
                self.controller_epoch = state.controller_epoch;
                self.isr = state.isr;
                self.replicas = replicas;
                self.pending_isr = None;
                self.followers.clear();
            }
            Input::Stop => {
                self.fail_all_pending(ReplicaError::NotLeaderOrFollower, &mut effects);
                self.role = Role::Offline;
                self.pending_isr = None;
                self.followers.clear();
            }
            Input::Appended {
                produce_id,
                end_offset,
                acks,
            } => {
                if self.role != Role::Leader {
                    // The shell checked `check_produce` before appending; leadership moved
                    // while the append ran.
                    effects.push(Effect::Produced {
                        produce_id,
                        result: Err(ReplicaError::NotLeaderOrFollower),
                    });
                    return effects;
                }
                self.log_end_offset = self.log_end_offset.max(end_offset);
                if acks != Acks::None {
                    self.pending
                        .insert((end_offset, produce_id), Pending { produce_id, acks });
                }
                self.complete_pending(&mut effects);
            }
            Input::LocalDurable { end_offset } => {
                self.durable_end_offset = self.durable_end_offset.max(end_offset);
                self.log_end_offset = self.log_end_offset.max(self.durable_end_offset);
                if self.role == Role::Leader {
                    self.maybe_advance_high_watermark(&mut effects);
                    self.complete_pending(&mut effects);
                }
            }
            Input::FollowerFetch {
                replica_id,
                fetch_offset,
                current_leader_epoch,
            } => self.follower_fetch(
                replica_id,
                fetch_offset,
                current_leader_epoch,
                now_ms,
                &mut effects,
            ),
            Input::Tick => self.maybe_shrink_isr(now_ms, &mut effects),
            Input::IsrWritten { version } => {
                if let Some(isr) = self.pending_isr.take() {
                    if self.role == Role::Leader {
                        self.isr = isr;
                        self.isr_version = version;
                        self.maybe_advance_high_watermark(&mut effects);
                        self.complete_pending(&mut effects);
                    }
                }
            }
            Input::IsrWriteConflict => {
                if self.pending_isr.take().is_some() && self.role == Role::Leader {
                    effects.push(Effect::ReloadState);
                }
            }
            Input::StateReloaded { state } => self.state_reloaded(state, &mut effects),
        }
        self.check_invariants();
        effects
    }

    fn become_leader(
        &mut self,
        state: Versioned<LeaderAndIsr>,
        replicas: Vec<BrokerId>,
        (log_end_offset, durable_end_offset, high_watermark): (i64, i64, i64),
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let Versioned { value, version } = state;
        if value.leader != self.local || value.leader_epoch <= self.leader_epoch {
            // A stale or misdirected request: Kafka ignores a LeaderAndIsr whose leader epoch
            // is not newer than the one it has.
            return;
        }
        if !value.isr.contains(&self.local) || !value.isr.iter().all(|r| replicas.contains(r)) {
            // Malformed: the controller never names a leader outside its ISR.
            return;
        }
        let continuing = self.role == Role::Leader;
        if !continuing {
            self.fail_all_pending(ReplicaError::NotLeaderOrFollower, effects);
            self.followers.clear();
        }
        self.role = Role::Leader;
        self.leader_epoch = value.leader_epoch;
        self.controller_epoch = value.controller_epoch;
        self.isr = value.isr;
        self.isr_version = version;
        self.pending_isr = None;
        self.replicas = replicas;
        if continuing {
            self.log_end_offset = self.log_end_offset.max(log_end_offset);
            self.durable_end_offset = self.durable_end_offset.max(durable_end_offset);
        } else {
            // As a follower the log may have been truncated: its offsets now are the truth.
            self.log_end_offset = log_end_offset;
            self.durable_end_offset = durable_end_offset;
        }
        self.epoch_start_offset = self.log_end_offset;
        let from_log = high_watermark.min(self.durable_end_offset);
        self.high_watermark = if continuing {
            self.high_watermark.max(from_log)
        } else {
            from_log
        };
        // Every ISR member counts as caught up now; a new leader does not know where its
        // followers are until they fetch (Kafka's resetReplicaState).
        let followers: Vec<BrokerId> = self
            .replicas
            .iter()
            .copied()
            .filter(|&r| r != self.local)
            .collect();
        self.followers.retain(|id, _| followers.contains(id));
        for follower in followers {
            let in_sync = self.isr.contains(&follower);
            let entry = self.followers.entry(follower).or_insert(FollowerState {
                durable_end_offset: -1,
                last_caught_up_ms: 0,
                last_fetch_ms: 0,
                last_fetch_leader_end_offset: -1,
            });
            if !continuing {
                entry.durable_end_offset = -1;
                entry.last_fetch_leader_end_offset = -1;
            }
            entry.last_caught_up_ms = if in_sync { now_ms } else { 0 };
        }
        self.maybe_advance_high_watermark(effects);
        self.complete_pending(effects);
    }

    fn follower_fetch(
        &mut self,
        replica_id: BrokerId,
        fetch_offset: i64,
        current_leader_epoch: i32,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let refuse = |error| Effect::FetchRefused { replica_id, error };
        if self.role != Role::Leader {
            effects.push(refuse(ReplicaError::NotLeaderOrFollower));
            return;
        }
        if current_leader_epoch != -1 && current_leader_epoch < self.leader_epoch {
            effects.push(refuse(ReplicaError::FencedLeaderEpoch));
            return;
        }
        if current_leader_epoch > self.leader_epoch {
            effects.push(refuse(ReplicaError::UnknownLeaderEpoch));
            return;
        }
        let log_end_offset = self.log_end_offset;
        let Some(follower) = self.followers.get_mut(&replica_id) else {
            effects.push(refuse(ReplicaError::NotLeaderOrFollower));
            return;
        };
        if fetch_offset > log_end_offset || fetch_offset < 0 {
            effects.push(refuse(ReplicaError::OffsetOutOfRange));
            return;
        }
        follower.durable_end_offset = fetch_offset;
        if fetch_offset >= log_end_offset {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= follower.last_fetch_leader_end_offset {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(follower.last_fetch_ms);
        }
        follower.last_fetch_ms = now_ms;
        follower.last_fetch_leader_end_offset = log_end_offset;
        // Expand: a follower outside the ISR joins once it has reached the high watermark
        // within this leader's epoch.
        if self.pending_isr.is_none()
            && !self.isr.contains(&replica_id)
            && fetch_offset >= self.high_watermark
            && fetch_offset >= self.epoch_start_offset
        {
            let mut isr = self.isr.clone();
            isr.push(replica_id);
            self.write_isr(isr, effects);
        }
        self.maybe_advance_high_watermark(effects);
        self.complete_pending(effects);
        effects.push(Effect::FetchAccepted {
            replica_id,
            high_watermark: self.high_watermark,
        });
    }

    fn maybe_shrink_isr(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        if self.role != Role::Leader || self.pending_isr.is_some() {
            return;
        }
        let lag_max = self.settings.replica_lag_time_max_ms;
        let isr: Vec<BrokerId> = self
            .isr
            .iter()
            .copied()
            .filter(|&r| {
                r == self.local
                    || self
                        .followers
                        .get(&r)
                        .is_some_and(|f| now_ms.saturating_sub(f.last_caught_up_ms) <= lag_max)
            })
            .collect();
        if isr.len() < self.isr.len() {
            self.write_isr(isr, effects);
        }
    }

    fn write_isr(&mut self, isr: Vec<BrokerId>, effects: &mut Vec<Effect>) {
        effects.push(Effect::WriteIsr {
            expected_version: self.isr_version,
            state: LeaderAndIsr {
                leader: self.local,
                leader_epoch: self.leader_epoch,
                isr: isr.clone(),
                controller_epoch: self.controller_epoch,
            },
        });
        self.pending_isr = Some(isr);
    }

    fn state_reloaded(&mut self, state: Versioned<LeaderAndIsr>, effects: &mut Vec<Effect>) {
        if self.role != Role::Leader {
            return;
        }
        let malformed = !state.value.isr.contains(&self.local)
            || !state.value.isr.iter().all(|r| self.replicas.contains(r));
        if state.value.leader != self.local
            || state.value.leader_epoch != self.leader_epoch
            || malformed
        {
            // The controller moved leadership (or bumped the epoch) behind our back, or the
            // znode holds an ISR this leader cannot be leading: its view is stale; it must not
            // acknowledge anything more.
            self.fail_all_pending(ReplicaError::NotLeaderOrFollower, effects);
            self.role = Role::Fenced;
            self.pending_isr = None;
            effects.push(Effect::Fenced);
            return;
        }
        // Same leader and epoch: only this leader writes the ISR within its epoch, so this is
        // our own write whose answer was lost.
        self.isr = state.value.isr;
        self.isr_version = state.version;
        self.maybe_advance_high_watermark(effects);
        self.complete_pending(effects);
    }

    /// The ISR the high watermark is computed over: the committed ISR plus a member being
    /// added (Kafka's "maximal ISR": a shrink counts only once written).
    fn maximal_isr(&self) -> impl Iterator<Item = BrokerId> + '_ {
        let added = self
            .pending_isr
            .iter()
            .flatten()
            .copied()
            .filter(|r| !self.isr.contains(r));
        self.isr.iter().copied().chain(added)
    }

    fn maybe_advance_high_watermark(&mut self, effects: &mut Vec<Effect>) {
        let mut candidate = self.durable_end_offset;
        for replica in self.maximal_isr() {
            if replica == self.local {
                continue;
            }
            let known = self
                .followers
                .get(&replica)
                .map_or(-1, |f| f.durable_end_offset);
            candidate = candidate.min(known);
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            effects.push(Effect::HighWatermark { offset: candidate });
        }
    }

    fn complete_pending(&mut self, effects: &mut Vec<Effect>) {
        if self.role != Role::Leader {
            return;
        }
        let enough = self.isr.len() >= self.settings.min_insync_replicas;
        let (high_watermark, durable) = (self.high_watermark, self.durable_end_offset);
        let ready: Vec<(i64, ProduceId)> = self
            .pending
            .iter()
            .filter(|((end, _), p)| match p.acks {
                Acks::All => *end <= high_watermark,
                _ => *end <= durable,
            })
            .map(|(key, _)| *key)
            .collect();
        for key in ready {
            let pending = self.pending.remove(&key).expect("listed above");
            let result = if pending.acks == Acks::All && !enough {
                Err(ReplicaError::NotEnoughReplicasAfterAppend)
            } else {
                Ok(())
            };
            effects.push(Effect::Produced {
                produce_id: pending.produce_id,
                result,
            });
        }
    }

    fn fail_all_pending(&mut self, error: ReplicaError, effects: &mut Vec<Effect>) {
        for (_, pending) in std::mem::take(&mut self.pending) {
            effects.push(Effect::Produced {
                produce_id: pending.produce_id,
                result: Err(error),
            });
        }
    }

    fn check_invariants(&self) {
        if self.role == Role::Leader {
            assert!(
                self.isr.contains(&self.local),
                "{}: leader {} not in its ISR {:?}",
                self.partition,
                self.local,
                self.isr
            );
            assert!(
                self.high_watermark <= self.durable_end_offset,
                "{}: high watermark {} past the durable end {}",
                self.partition,
                self.high_watermark,
                self.durable_end_offset
            );
        }
        let leading = self.role == Role::Leader;
        for replica in self.isr.iter().chain(self.pending_isr.iter().flatten()) {
            assert!(
                !leading || self.replicas.contains(replica),
                "{}: ISR member {replica} not among the replicas {:?}",
                self.partition,
                self.replicas
            );
        }
    }
}
