//! The rebalance engine: deadlines and [`Group::tick`], the join phase (Kafka's
//! `prepareRebalance`, `DelayedJoin`, `InitialDelayedJoin`, `onCompleteJoin`), the sync
//! deadline (`DelayedSync`), protocol selection, and member removal.

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;

use super::{
    Effect, Group, GroupState, JoinResult, JoinTimer, JoinTimerKind, Member, SyncResult, Timer,
    UNKNOWN_MEMBER_ID,
};

impl Group {
    /// Fires every deadline at or before `now_ms`, earliest first.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Effect> {
        self.observe(now_ms);
        let mut effects = Vec::new();
        while let Some((deadline_ms, timer)) = self.next_timer() {
            if deadline_ms > now_ms {
                break;
            }
            self.fire(timer, now_ms, &mut effects);
        }
        self.check_invariants();
        effects
    }

    /// The earliest deadline at which [`Group::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.next_timer().map(|(deadline_ms, _)| deadline_ms)
    }

    pub(super) fn next_timer(&self) -> Option<(i64, Timer)> {
        let pending = self
            .pending_members
            .iter()
            .map(|(id, deadline)| (*deadline, Timer::PendingMember(id.clone())));
        let sessions = self
            .members
            .iter()
            .filter(|m| !m.session_exempt())
            .map(|m| (m.session_deadline_ms, Timer::Session(m.member_id.clone())));
        let sync = self
            .sync_deadline_ms
            .map(|deadline| (deadline, Timer::Sync));
        let join = self
            .join_timer
            .map(|timer| (timer.deadline_ms, Timer::Join));
        pending.chain(sessions).chain(sync).chain(join).min()
    }

    pub(super) fn fire(&mut self, timer: Timer, now_ms: i64, effects: &mut Vec<Effect>) {
        match timer {
            Timer::PendingMember(member_id) => {
                self.pending_members.retain(|(id, _)| *id != member_id);
                self.try_complete_join(now_ms, effects);
            }
            Timer::Session(member_id) => {
                let index = self.index_of(&member_id).expect("timer of a member");
                self.remove_member_and_update_group(index, now_ms, effects);
            }
            Timer::Sync => self.expire_pending_sync(now_ms, effects),
            Timer::Join => self.expire_join(now_ms, effects),
        }
    }

    /// Kafka's `onExpirePendingSync`: members that never sent SyncGroup are removed.
    pub(super) fn expire_pending_sync(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        self.sync_deadline_ms = None;
        let laggards = std::mem::take(&mut self.pending_sync_members);
        for member_id in &laggards {
            let index = self
                .index_of(member_id)
                .expect("pending sync members are members");
            self.remove_member(index);
        }
        self.prepare_rebalance(now_ms, effects);
    }

    /// The join phase's deadline: extend the initial delay, or complete the join with
    /// whoever rejoined.
    pub(super) fn expire_join(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        let timer = self
            .join_timer
            .expect("join deadline only in PreparingRebalance");
        match timer.kind {
            JoinTimerKind::Initial {
                delay_ms,
                remaining_ms,
            } if self.new_member_added && remaining_ms != 0 => {
                self.new_member_added = false;
                let next_delay_ms = self.config.initial_rebalance_delay_ms.min(remaining_ms);
                self.join_timer = Some(JoinTimer {
                    deadline_ms: now_ms + next_delay_ms,
                    kind: JoinTimerKind::Initial {
                        delay_ms: next_delay_ms,
                        remaining_ms: (remaining_ms - delay_ms).max(0),
                    },
                });
            }
            _ => self.complete_join(now_ms, effects),
        }
    }

    /// Kafka's `maybePrepareRebalance`.
    pub(super) fn maybe_prepare_rebalance(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        if GroupState::PreparingRebalance.may_follow(self.state) {
            self.prepare_rebalance(now_ms, effects);
        }
    }

    /// Kafka's `prepareRebalance`: parked syncs are told to rejoin, the join phase starts.
    pub(super) fn prepare_rebalance(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        if self.state == GroupState::CompletingRebalance {
            for member in &mut self.members {
                member.assignment = Bytes::new();
                if let Some(token) = member.awaiting_sync.take() {
                    member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                    let result = SyncResult::error(E::RebalanceInProgress.code());
                    effects.push(Effect::Sync(token, result));
                }
            }
        }
        self.pending_sync_members.clear();
        self.sync_deadline_ms = None;
        let rebalance_timeout_ms = self.rebalance_timeout_ms();
        let initial_delay_ms = self.config.initial_rebalance_delay_ms;
        self.join_timer = Some(if self.state == GroupState::Empty {
            JoinTimer {
                deadline_ms: now_ms + initial_delay_ms,
                kind: JoinTimerKind::Initial {
                    delay_ms: initial_delay_ms,
                    remaining_ms: (rebalance_timeout_ms - initial_delay_ms).max(0),
                },
            }
        } else {
            JoinTimer {
                deadline_ms: now_ms + rebalance_timeout_ms,
                kind: JoinTimerKind::Rebalance,
            }
        });
        self.transition(GroupState::PreparingRebalance, now_ms);
        self.try_complete_join(now_ms, effects);
    }

    /// Kafka's `DelayedJoin.tryComplete`: complete once every member rejoined and no member
    /// id handed out is still outstanding. The initial delay never completes early.
    pub(super) fn try_complete_join(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        let Some(timer) = self.join_timer else { return };
        let all_joined = self.members.iter().all(|m| m.awaiting_join.is_some())
            && self.pending_members.is_empty();
        if timer.kind == JoinTimerKind::Rebalance && all_joined {
            self.complete_join(now_ms, effects);
        }
    }

    /// Kafka's `onCompleteJoin`.
    pub(super) fn complete_join(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        assert_eq!(self.state, GroupState::PreparingRebalance);
        // Dynamic members that did not rejoin are gone; static ones stay (KIP-345) and are
        // left to their session timeout.
        while let Some(index) = self
            .members
            .iter()
            .position(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
        {
            self.remove_member(index);
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that have not rejoined are left: wait another round.
            self.join_timer = Some(JoinTimer {
                deadline_ms: now_ms + self.rebalance_timeout_ms().max(1),
                kind: JoinTimerKind::Rebalance,
            });
            return;
        }
        self.join_timer = None;
        self.new_member_added = false;
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty, now_ms);
            effects.push(Effect::Persist);
            return;
        }
        self.protocol_name = Some(self.select_protocol().to_string());
        self.transition(GroupState::CompletingRebalance, now_ms);
        let leader_members = self.current_member_metadata();
        for index in 0..self.members.len() {
            let member_id = self.members[index].member_id.clone();
            let is_leader = self.leader_id.as_deref() == Some(member_id.as_str());
            let mut result = self.current_generation_result(&member_id, false);
            if is_leader {
                result.members = leader_members.clone();
            }
            let member = &mut self.members[index];
            if let Some(token) = member.awaiting_join.take() {
                effects.push(Effect::Join(token, result));
            }
            member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
            member.is_new = false;
            self.pending_sync_members.insert(member_id);
        }
        self.sync_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
    }

    /// Kafka's `maybeElectNewJoinedLeader`: a leader that did not rejoin hands over to the
    /// first member that did. False if nobody rejoined.
    pub(super) fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader_id) = self.leader_id.as_deref() else {
            return false;
        };
        let leader = &self.members[self.index_of(leader_id).expect("leader is a member")];
        if leader.awaiting_join.is_some() {
            return true;
        }
        match self.members.iter().find(|m| m.awaiting_join.is_some()) {
            Some(joined) => {
                self.leader_id = Some(joined.member_id.clone());
                true
            }
            None => false,
        }
    }

    /// Kafka's `selectProtocol`: among the protocols every member supports, the one most
    /// members list first; ties go to the one voted for by the earliest-joined member.
    pub(super) fn select_protocol(&self) -> &str {
        assert!(!self.members.is_empty(), "select_protocol needs members");
        let is_candidate = |name: &str| {
            self.members
                .iter()
                .all(|m| m.protocols.iter().any(|(p, _)| p == name))
        };
        let mut tally: Vec<(&str, usize)> = Vec::new();
        for member in &self.members {
            let vote = member
                .protocols
                .iter()
                .map(|(name, _)| name.as_str())
                .find(|name| is_candidate(name))
                .expect("invariant: some protocol is common to all members");
            match tally.iter_mut().find(|(name, _)| *name == vote) {
                Some((_, count)) => *count += 1,
                None => tally.push((vote, 1)),
            }
        }
        let most = tally
            .iter()
            .map(|(_, count)| *count)
            .max()
            .expect("members voted");
        tally
            .iter()
            .find(|(_, count)| *count == most)
            .expect("a maximum")
            .0
    }

    /// Kafka's `supportsProtocols`: an Empty group takes any non-empty protocol list;
    /// otherwise the type must match and one protocol must be supported by every member.
    pub(super) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == name))
            })
    }

    /// Kafka's `acceptJoiningMember` (`group.max.size`).
    pub(super) fn accepts_joining_member(&self, member_id: &str) -> bool {
        let Some(max_size) = self.config.max_size else {
            return true;
        };
        let member = self.index_of(member_id).map(|index| &self.members[index]);
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                member.is_some_and(|m| m.awaiting_join.is_some())
                    || self
                        .members
                        .iter()
                        .filter(|m| m.awaiting_join.is_some())
                        .count()
                        < max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                member.is_some() || self.members.len() < max_size
            }
        }
    }

    /// Kafka's `validateCurrentMember`: a static instance must map to this member id, and
    /// the member must exist.
    pub(super) fn validate_current_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<usize, i16> {
        if let Some(instance) = group_instance_id {
            match self.index_of_instance(instance) {
                Some(index) if self.members[index].member_id != member_id => {
                    return Err(E::FencedInstanceId.code())
                }
                Some(_) => {}
                None => return Err(E::UnknownMemberId.code()),
            }
        }
        self.index_of(member_id).ok_or(E::UnknownMemberId.code())
    }

    /// Kafka's `removeMemberAndUpdateGroup`: parked requests are answered
    /// `UNKNOWN_MEMBER_ID`, then the group rebalances (or the pending join may complete).
    pub(super) fn remove_member_and_update_group(
        &mut self,
        index: usize,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        let member = self.remove_member(index);
        if let Some(token) = member.awaiting_join {
            let result = JoinResult::error(UNKNOWN_MEMBER_ID, E::UnknownMemberId.code());
            effects.push(Effect::Join(token, result));
        }
        if let Some(token) = member.awaiting_sync {
            effects.push(Effect::Sync(
                token,
                SyncResult::error(E::UnknownMemberId.code()),
            ));
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(now_ms, effects)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now_ms, effects),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Kafka's `GroupMetadata.remove`: the member goes, and a new leader is chosen if needed.
    pub(super) fn remove_member(&mut self, index: usize) -> Member {
        let member = self.members.remove(index);
        self.remove_pending_sync_member(&member.member_id);
        if self.leader_id.as_deref() == Some(member.member_id.as_str()) {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        member
    }

    pub(super) fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync_members.remove(member_id);
        if self.pending_sync_members.is_empty() {
            self.sync_deadline_ms = None;
        }
    }

    /// The group's rebalance timeout: the largest of its members' (0 without members).
    pub(super) fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }
}
