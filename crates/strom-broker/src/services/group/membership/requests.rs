//! SyncGroup, Heartbeat and LeaveGroup on a [`Group`].

use super::*;

impl Group {
    /// SyncGroup.
    pub fn sync(&mut self, request: SyncRequest, now_ms: i64) -> Vec<Effect> {
        self.observe(now_ms);
        let mut effects = Vec::new();
        self.sync_inner(request, now_ms, &mut effects);
        self.check_invariants();
        effects
    }

    pub(super) fn sync_inner(
        &mut self,
        request: SyncRequest,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        let token = request.token;
        let index = match self.validate_sync(&request) {
            Ok(index) => index,
            Err(code) => return effects.push(Effect::Sync(token, SyncResult::error(code))),
        };
        match self.state {
            GroupState::Empty => effects.push(Effect::Sync(
                token,
                SyncResult::error(E::UnknownMemberId.code()),
            )),
            GroupState::PreparingRebalance => {
                let result = SyncResult::error(E::RebalanceInProgress.code());
                effects.push(Effect::Sync(token, result))
            }
            GroupState::CompletingRebalance => {
                if let Some(superseded) = self.members[index].awaiting_sync.replace(token) {
                    let result = SyncResult::error(E::RebalanceInProgress.code());
                    effects.push(Effect::Sync(superseded, result));
                }
                self.remove_pending_sync_member(&request.member_id);
                if self.leader_id.as_deref() == Some(request.member_id.as_str()) {
                    self.complete_sync(request.assignments, now_ms, effects);
                }
            }
            GroupState::Stable => {
                self.remove_pending_sync_member(&request.member_id);
                let member = &mut self.members[index];
                member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                let result = SyncResult {
                    error_code: NO_ERROR,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment: member.assignment.clone(),
                };
                effects.push(Effect::Sync(token, result));
            }
            GroupState::Dead => unreachable!("validate_sync refuses a Dead group"),
        }
    }

    /// Kafka's `validateSyncGroup`.
    pub(super) fn validate_sync(&self, request: &SyncRequest) -> Result<usize, i16> {
        if self.state == GroupState::Dead {
            return Err(E::CoordinatorNotAvailable.code());
        }
        let index =
            self.validate_current_member(&request.member_id, request.group_instance_id.as_deref())?;
        if request.generation_id != self.generation_id {
            return Err(E::IllegalGeneration.code());
        }
        let mismatched =
            |wanted: &Option<String>, actual: &Option<String>| wanted.is_some() && wanted != actual;
        if mismatched(&request.protocol_type, &self.protocol_type)
            || mismatched(&request.protocol_name, &self.protocol_name)
        {
            return Err(E::InconsistentGroupProtocol.code());
        }
        Ok(index)
    }

    /// The leader's assignment arrived: store it, become Stable, answer every parked sync.
    pub(super) fn complete_sync(
        &mut self,
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        for member in &mut self.members {
            // Members missing from the leader's assignment get an empty one; a member listed
            // twice gets the last entry, as with Kafka's map.
            member.assignment = assignments
                .iter()
                .rev()
                .find(|(id, _)| *id == member.member_id)
                .map(|(_, assignment)| assignment.clone())
                .unwrap_or_default();
        }
        self.transition(GroupState::Stable, now_ms);
        effects.push(Effect::Persist);
        for member in &mut self.members {
            if let Some(token) = member.awaiting_sync.take() {
                member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                let result = SyncResult {
                    error_code: NO_ERROR,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment: member.assignment.clone(),
                };
                effects.push(Effect::Sync(token, result));
            }
        }
    }

    /// Heartbeat: the error code to answer with, and effects (none today; the shape leaves
    /// room for heartbeats that complete something).
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> (i16, Vec<Effect>) {
        self.observe(now_ms);
        let code = self.heartbeat_inner(member_id, group_instance_id, generation_id, now_ms);
        self.check_invariants();
        (code, Vec::new())
    }

    pub(super) fn heartbeat_inner(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return E::CoordinatorNotAvailable.code();
        }
        let index = match self.validate_current_member(member_id, group_instance_id) {
            Ok(index) => index,
            Err(code) => return code,
        };
        if generation_id != self.generation_id {
            return E::IllegalGeneration.code();
        }
        let member = &mut self.members[index];
        member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        match self.state {
            GroupState::PreparingRebalance => E::RebalanceInProgress.code(),
            GroupState::CompletingRebalance | GroupState::Stable => NO_ERROR,
            GroupState::Empty | GroupState::Dead => unreachable!("an Empty group has no members"),
        }
    }

    /// LeaveGroup (v3+ batch): each entry is (member id, group instance id); a member id of
    /// `""` removes the static member by instance id. Returns one error code per entry; a
    /// Dead group answers every entry `COORDINATOR_NOT_AVAILABLE` (Kafka puts that in the
    /// top-level error instead).
    pub fn leave(
        &mut self,
        members: &[(String, Option<String>)],
        now_ms: i64,
    ) -> (Vec<i16>, Vec<Effect>) {
        self.observe(now_ms);
        let mut effects = Vec::new();
        let codes = members
            .iter()
            .map(|(member_id, instance)| {
                self.leave_one(member_id, instance.as_deref(), now_ms, &mut effects)
            })
            .collect();
        self.check_invariants();
        (codes, effects)
    }

    pub(super) fn leave_one(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return E::CoordinatorNotAvailable.code();
        }
        if member_id.is_empty() {
            return match group_instance_id.and_then(|i| self.index_of_instance(i)) {
                Some(index) => {
                    self.remove_member_and_update_group(index, now_ms, effects);
                    NO_ERROR
                }
                None => E::UnknownMemberId.code(),
            };
        }
        if self.is_pending_member(member_id) {
            self.pending_members.retain(|(id, _)| id != member_id);
            self.try_complete_join(now_ms, effects);
            return NO_ERROR;
        }
        match self.validate_current_member(member_id, group_instance_id) {
            Ok(index) => {
                self.remove_member_and_update_group(index, now_ms, effects);
                NO_ERROR
            }
            Err(code) => code,
        }
    }
}
