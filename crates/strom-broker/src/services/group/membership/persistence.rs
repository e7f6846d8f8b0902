//! What outlives a request: offset-commit validation, the `__consumer_offsets` snapshot
//! and restore, deletion and unloading.

use kafka_protocol::error::ResponseError as E;

use super::{
    Effect, Group, GroupConfig, GroupSnapshot, GroupState, JoinResult, Member, SnapshotMember,
    SyncResult,
};

impl Group {
    /// OffsetCommit validation (Kafka's `validateOffsetCommit` with `doCommitOffsets`'
    /// CompletingRebalance check). Generation -1 with no member id is a "simple" commit,
    /// allowed only while the group is Empty. A group that does not exist is the shell's
    /// business (Kafka creates it for generation < 0, else answers `ILLEGAL_GENERATION`).
    pub fn validate_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), i16> {
        self.validate_offset_commit(member_id, group_instance_id, generation_id, false)?;
        if self.state == GroupState::CompletingRebalance {
            // The member has the new generation from its JoinGroup answer but no assignment.
            return Err(E::RebalanceInProgress.code());
        }
        Ok(())
    }

    /// TxnOffsetCommit validation: as [`Group::validate_commit`], except that a commit
    /// without member id and generation is accepted from any state (older TxnOffsetCommit
    /// versions carry neither), and CompletingRebalance is not refused.
    pub fn validate_txn_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), i16> {
        self.validate_offset_commit(member_id, group_instance_id, generation_id, true)
    }

    fn validate_offset_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        transactional: bool,
    ) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            Err(E::CoordinatorNotAvailable.code())
        } else if generation_id < 0 && self.state == GroupState::Empty {
            Ok(())
        } else if generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some() {
            self.validate_current_member(member_id, group_instance_id)?;
            if generation_id != self.generation_id {
                Err(E::IllegalGeneration.code())
            } else {
                Ok(())
            }
        } else if !transactional && self.state != GroupState::Empty {
            Err(E::UnknownMemberId.code())
        } else {
            Ok(())
        }
    }

    /// After an accepted OffsetCommit: a commit counts as a heartbeat in Stable and
    /// PreparingRebalance, as in Kafka's `doCommitOffsets`.
    pub fn record_commit(&mut self, member_id: &str, now_ms: i64) {
        self.observe(now_ms);
        let counts = matches!(
            self.state,
            GroupState::Stable | GroupState::PreparingRebalance
        );
        if let (true, Some(index)) = (counts, self.index_of(member_id)) {
            let member = &mut self.members[index];
            member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        }
        self.check_invariants();
    }

    /// What `__consumer_offsets` must hold for this group (Kafka's `GroupMetadataValue`).
    pub fn snapshot(&self) -> GroupSnapshot {
        GroupSnapshot {
            protocol_type: self.protocol_type.clone(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .iter()
                .map(|m| SnapshotMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(self.protocol_name.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its last [`GroupSnapshot`] (Kafka's `loadGroup` and
    /// `onGroupLoaded`): Stable with members, else Empty; sessions restart at `now_ms`; a
    /// group above `max_size` starts a rebalance. The snapshot comes from disk, so it is
    /// repaired rather than trusted: members without a protocol are dropped, duplicate ids
    /// keep the first, and a leader that is not a member is replaced.
    pub fn restore(
        group_id: String,
        config: GroupConfig,
        snapshot: GroupSnapshot,
        now_ms: i64,
    ) -> Group {
        let mut group = Group::new(group_id, config);
        group.clock_ms = now_ms;
        group.generation_id = snapshot.generation_id;
        group.protocol_type = snapshot.protocol_type;
        group.state_timestamp_ms = snapshot.current_state_timestamp_ms;
        let usable = group.protocol_type.is_some() && snapshot.protocol_name.is_some();
        if !snapshot.members.is_empty() && !usable {
            tracing::warn!(
                group = group.group_id,
                "group record has members but no protocol; loading it Empty"
            );
        }
        if usable {
            let protocol_name = snapshot.protocol_name.clone().expect("usable");
            for m in snapshot.members {
                let duplicate = group.index_of(&m.member_id).is_some()
                    || m.group_instance_id
                        .as_deref()
                        .is_some_and(|i| group.index_of_instance(i).is_some());
                if duplicate {
                    tracing::warn!(
                        group = group.group_id,
                        member = m.member_id,
                        "duplicate member"
                    );
                    continue;
                }
                group.members.push(Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    protocol_type: group.protocol_type.clone().expect("usable"),
                    protocols: vec![(protocol_name.clone(), m.subscription)],
                    assignment: m.assignment,
                    awaiting_join: None,
                    awaiting_sync: None,
                    is_new: false,
                    session_deadline_ms: now_ms + i64::from(m.session_timeout_ms),
                });
            }
        }
        if group.members.is_empty() {
            group.state = GroupState::Empty;
        } else {
            group.state = GroupState::Stable;
            group.protocol_name = snapshot.protocol_name;
            group.leader_id = snapshot
                .leader
                .filter(|leader| group.index_of(leader).is_some())
                .or_else(|| group.members.first().map(|m| m.member_id.clone()));
        }
        let over_capacity = group
            .config
            .max_size
            .is_some_and(|max| group.members.len() > max);
        if over_capacity {
            // Nobody is parked yet, so the rebalance produces no answers.
            let mut effects = Vec::new();
            group.prepare_rebalance(now_ms, &mut effects);
            assert!(effects.is_empty());
        }
        group.check_invariants();
        group
    }

    /// DeleteGroups (the caller has checked the group is Empty): the group becomes Dead and
    /// a tombstone must be written ([`Effect::Persist`]). Parked requests, if any, are
    /// answered `NOT_COORDINATOR` as when Kafka unloads a group.
    pub fn mark_dead(&mut self) -> Vec<Effect> {
        let mut effects = self.unload();
        effects.push(Effect::Persist);
        effects
    }

    /// The coordinator resigned (the `__consumer_offsets` partition moved): the group
    /// becomes Dead and parked requests are answered `NOT_COORDINATOR` so their clients look
    /// for the new coordinator. Nothing is persisted.
    pub fn unload(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        for member in &mut self.members {
            if let Some(token) = member.awaiting_join.take() {
                let result = JoinResult::error(&member.member_id, E::NotCoordinator.code());
                effects.push(Effect::Join(token, result));
            }
            if let Some(token) = member.awaiting_sync.take() {
                effects.push(Effect::Sync(
                    token,
                    SyncResult::error(E::NotCoordinator.code()),
                ));
            }
        }
        self.members.clear();
        self.leader_id = None;
        self.pending_members.clear();
        self.pending_sync_members.clear();
        self.join_timer = None;
        self.sync_deadline_ms = None;
        self.transition(GroupState::Dead, self.clock_ms);
        self.check_invariants();
        effects
    }
}
