//! One classic consumer group's membership: Kafka's `GroupMetadata` plus the membership half
//! of `GroupCoordinator` (JoinGroup, SyncGroup, Heartbeat, LeaveGroup and their timers),
//! as a plain state machine.
//!
//! The shell parks each JoinGroup and SyncGroup under a [`RequestToken`] and hands it to
//! [`Group::join`] or [`Group::sync`]; the answer comes back as an [`Effect`], either from
//! that same call or from a later one (another member's join, a leave, [`Group::tick`]).
//! Every token handed in is answered exactly once, unless the shell drops the whole group.
//!
//! Purgatories become deadlines: the core keeps one deadline per member session, per
//! pending member (member id handed out with `MEMBER_ID_REQUIRED`), one for the join phase
//! (rebalance timeout or `group.initial.rebalance.delay.ms`) and one for the sync phase.
//! [`Group::next_deadline`] says when the shell must next call [`Group::tick`].
//!
//! Deliberate differences from Kafka, all invisible to a well-behaved client:
//! - Kafka answers the leader's SyncGroup only after the group record is written; here
//!   [`Effect::Persist`] is emitted *before* the sync answers in the same vector, and the shell
//!   is expected to write it first. A failed write is not rolled back.
//! - A parked JoinGroup or SyncGroup superseded by a newer one from the same member is
//!   answered with `REBALANCE_IN_PROGRESS` (Kafka silently forgets it), and a parked SyncGroup
//!   of a member that is removed is answered with `UNKNOWN_MEMBER_ID`, so no token leaks.
//! - Where Kafka iterates a hash map (leader re-election, protocol vote ties), this code uses
//!   the order in which members joined, so runs are reproducible.
//!
//! The code is split along its seams: [`types`] holds the values exchanged with the shell,
//! this file the request handlers (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and the
//! invariants, `rebalance` the deadlines and join/sync phases, `persistence` commit
//! validation, snapshot/restore and deletion.
//!
//! It does not own offsets (see [`super::offsets`]), the `__consumer_offsets` encoding, the
//! clock, or randomness: `now_ms` and fresh member-id bits are arguments.

mod persistence;
mod rebalance;
mod requests;
pub mod types;

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;

pub use types::{
    Effect, GroupConfig, GroupSnapshot, GroupState, JoinRequest, JoinResult, JoinedMember,
    MemberDescription, RequestToken, SnapshotMember, SyncRequest, SyncResult,
    NEW_MEMBER_JOIN_TIMEOUT_MS, UNKNOWN_MEMBER_ID,
};

/// The error code for success.
const NO_ERROR: i16 = 0;

/// One member (Kafka's `MemberMetadata`).
#[derive(Clone, Debug)]
struct Member {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    rebalance_timeout_ms: i32,
    session_timeout_ms: i32,
    protocol_type: String,
    /// Invariant: non-empty, and shares at least one name with every other member's list.
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    /// Invariant: `Some` only while the group is PreparingRebalance.
    awaiting_join: Option<RequestToken>,
    /// Invariant: `Some` only while the group is CompletingRebalance.
    awaiting_sync: Option<RequestToken>,
    /// Joined but no generation formed since: expires after
    /// [`NEW_MEMBER_JOIN_TIMEOUT_MS`] even while awaiting the join.
    is_new: bool,
    /// When the member's session expires, unless it is exempt (see [`Member::session_exempt`]).
    session_deadline_ms: i64,
}

impl Member {
    /// Kafka's `hasSatisfiedHeartbeat`: an established member parked in a join or sync is
    /// waiting on the group, not the other way round, so its session cannot expire.
    fn session_exempt(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }

    fn metadata_for(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(name, _)| name == p))
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

/// The join-phase deadline (Kafka's `DelayedJoin` / `InitialDelayedJoin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct JoinTimer {
    deadline_ms: i64,
    kind: JoinTimerKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JoinTimerKind {
    /// Completes early once every member has rejoined.
    Rebalance,
    /// `group.initial.rebalance.delay.ms` for an Empty group: never completes early, and is
    /// extended by another delay while new members keep arriving, up to the rebalance timeout.
    Initial { delay_ms: i64, remaining_ms: i64 },
}

/// Which deadline fires next, in firing order for equal deadlines.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    PendingMember(String),
    Session(String),
    Sync,
    Join,
}

/// One classic group. See the module documentation.
#[derive(Clone, Debug)]
pub struct Group {
    group_id: String,
    config: GroupConfig,
    state: GroupState,
    /// When `state` was entered.
    state_timestamp_ms: i64,
    /// The largest `now_ms` seen, for calls that take no clock.
    clock_ms: i64,
    /// Invariant: never decreases.
    generation_id: i32,
    /// Invariant: `Some` whenever there are members, and equal to every member's type.
    protocol_type: Option<String>,
    /// Invariant: `Some` in CompletingRebalance and Stable, and supported by every member.
    protocol_name: Option<String>,
    /// Invariant: `Some` iff `members` is non-empty, and then the id of a member.
    leader_id: Option<String>,
    /// In join order. Invariant: member ids and instance ids are unique.
    members: Vec<Member>,
    /// Member ids handed out with `MEMBER_ID_REQUIRED`, with their expiry deadline.
    /// Invariant: disjoint from `members`.
    pending_members: Vec<(String, i64)>,
    /// Members that have not sent SyncGroup for this generation yet.
    /// Invariant: a subset of `members`, empty outside CompletingRebalance and Stable.
    pending_sync_members: BTreeSet<String>,
    /// Invariant: `Some` iff the group is PreparingRebalance.
    join_timer: Option<JoinTimer>,
    /// Deadline for `pending_sync_members`. Invariant: `Some` iff that set is non-empty.
    sync_deadline_ms: Option<i64>,
    /// A member was added during the first (generation 0) initial delay.
    new_member_added: bool,
}

impl Group {
    /// A new, Empty group.
    pub fn new(group_id: String, config: GroupConfig) -> Group {
        Group {
            group_id,
            config,
            state: GroupState::Empty,
            state_timestamp_ms: 0,
            clock_ms: 0,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: Vec::new(),
            pending_members: Vec::new(),
            pending_sync_members: BTreeSet::new(),
            join_timer: None,
            sync_deadline_ms: None,
            new_member_added: false,
        }
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The current state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// When the current state was entered (Kafka's `currentStateTimestamp`).
    pub fn state_timestamp_ms(&self) -> i64 {
        self.state_timestamp_ms
    }

    /// The current generation (0 for a group that never completed a rebalance).
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The group's protocol type.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The protocol selected for the current generation.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    /// The leader's member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    /// The number of members.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Whether `member_id` is a member.
    pub fn has_member(&self, member_id: &str) -> bool {
        self.index_of(member_id).is_some()
    }

    /// The members for DescribeGroups, in join order. As in Kafka's `GroupMetadata.summary`,
    /// metadata and assignment are filled in only when the group is Stable.
    pub fn members(&self) -> Vec<MemberDescription> {
        let stable = self.state == GroupState::Stable;
        self.members
            .iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata_for(self.protocol_name.as_deref())
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect()
    }

    /// JoinGroup for a client before KIP-814 (JoinGroup v0-v8); see
    /// [`Group::join_with_skip_assignment`]. Also safe for newer clients: a restarted static
    /// leader is merely not told that it leads until the next rebalance.
    pub fn join(&mut self, request: JoinRequest, now_ms: i64, fresh_id: u128) -> Vec<Effect> {
        self.join_with_skip_assignment(request, now_ms, fresh_id, false)
    }

    /// JoinGroup. `fresh_id` is random bits for a member id, should one be created; the
    /// id is `{group.instance.id or client_id}-{fresh_id as a UUID}` as in Kafka.
    /// `supports_skip_assignment` is JoinGroup v9+ (KIP-814): when a static leader rejoins
    /// in Stable it is told it leads, with `skip_assignment`; older clients are told the
    /// previous leader id instead, so they do not run a pointless assignment.
    pub fn join_with_skip_assignment(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        fresh_id: u128,
        supports_skip_assignment: bool,
    ) -> Vec<Effect> {
        self.observe(now_ms);
        let mut effects = Vec::new();
        self.join_inner(
            request,
            now_ms,
            fresh_id,
            supports_skip_assignment,
            &mut effects,
        );
        // Kafka's `rebalancePurgatory.checkAndComplete` at the end of `handleJoinGroup`.
        self.try_complete_join(now_ms, &mut effects);
        self.check_invariants();
        effects
    }

    fn join_inner(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        fresh_id: u128,
        supports_skip_assignment: bool,
        effects: &mut Vec<Effect>,
    ) {
        let token = request.token;
        let answer = |effects: &mut Vec<Effect>, member_id: &str, error: E| {
            effects.push(Effect::Join(
                token,
                JoinResult::error(member_id, error.code()),
            ));
        };
        if request.session_timeout_ms < self.config.min_session_timeout_ms
            || request.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return answer(effects, &request.member_id, E::InvalidSessionTimeout);
        }
        if !self.accepts_joining_member(&request.member_id) {
            if let Some(index) = self.index_of(&request.member_id) {
                self.remove_member(index);
            }
            return answer(effects, UNKNOWN_MEMBER_ID, E::GroupMaxSizeReached);
        }
        let is_new_member = request.member_id.is_empty();
        let reply_id = if is_new_member {
            UNKNOWN_MEMBER_ID
        } else {
            &request.member_id
        };
        if self.state == GroupState::Dead {
            return answer(effects, reply_id, E::CoordinatorNotAvailable);
        }
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            return answer(effects, reply_id, E::InconsistentGroupProtocol);
        }
        if is_new_member {
            self.join_new_member(request, now_ms, fresh_id, supports_skip_assignment, effects);
        } else {
            self.join_current_member(request, now_ms, effects);
        }
    }

    /// Kafka's `doNewMemberJoinGroup`.
    fn join_new_member(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        fresh_id: u128,
        supports_skip_assignment: bool,
        effects: &mut Vec<Effect>,
    ) {
        let prefix = request
            .group_instance_id
            .as_deref()
            .unwrap_or(&request.client_id);
        let new_member_id = format!("{prefix}-{}", uuid::Uuid::from_u128(fresh_id));
        assert!(
            self.index_of(&new_member_id).is_none() && !self.is_pending_member(&new_member_id),
            "member id {new_member_id} generated twice: fresh_id must be random"
        );
        let static_index = request
            .group_instance_id
            .as_deref()
            .and_then(|instance| self.index_of_instance(instance));
        if let Some(index) = static_index {
            self.update_static_member_and_rebalance(
                index,
                new_member_id,
                request,
                now_ms,
                supports_skip_assignment,
                effects,
            );
        } else if request.group_instance_id.is_none() && request.require_known_member_id {
            let deadline_ms = now_ms + i64::from(request.session_timeout_ms);
            self.pending_members
                .push((new_member_id.clone(), deadline_ms));
            let result = JoinResult::error(new_member_id, E::MemberIdRequired.code());
            effects.push(Effect::Join(request.token, result));
        } else {
            self.add_member_and_rebalance(new_member_id, request, now_ms, effects);
        }
    }

    /// Kafka's `doCurrentMemberJoinGroup`.
    fn join_current_member(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        let token = request.token;
        if self.is_pending_member(&request.member_id) {
            if request.group_instance_id.is_some() {
                // Kafka throws IllegalStateException here, which reaches the client as
                // UNKNOWN_SERVER_ERROR: pending members are always dynamic.
                let result = JoinResult::error(&request.member_id, E::UnknownServerError.code());
                effects.push(Effect::Join(token, result));
                return;
            }
            let member_id = request.member_id.clone();
            return self.add_member_and_rebalance(member_id, request, now_ms, effects);
        }
        let index = match self
            .validate_current_member(&request.member_id, request.group_instance_id.as_deref())
        {
            Ok(index) => index,
            Err(code) => {
                effects.push(Effect::Join(
                    token,
                    JoinResult::error(&request.member_id, code),
                ));
                return;
            }
        };
        let matches = self.members[index].protocols == request.protocols;
        let is_leader = self.leader_id.as_deref() == Some(request.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(index, request, now_ms, effects)
            }
            GroupState::CompletingRebalance if matches => {
                // The member probably lost the JoinGroup answer: repeat it.
                let result = self.current_generation_result(&request.member_id, is_leader);
                effects.push(Effect::Join(token, result));
            }
            GroupState::Stable if matches && !is_leader => {
                let result = self.current_generation_result(&request.member_id, false);
                effects.push(Effect::Join(token, result));
            }
            // Changed metadata, or the leader rejoining in Stable (it may have seen topic
            // metadata change), forces a rebalance.
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(index, request, now_ms, effects)
            }
            GroupState::Empty | GroupState::Dead => {
                let result = JoinResult::error(&request.member_id, E::UnknownMemberId.code());
                effects.push(Effect::Join(token, result));
            }
        }
    }

    /// The JoinGroup answer for the current generation; the member list only for the leader.
    fn current_generation_result(&self, member_id: &str, with_members: bool) -> JoinResult {
        JoinResult {
            error_code: NO_ERROR,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: if with_members {
                self.current_member_metadata()
            } else {
                Vec::new()
            },
        }
    }

    fn current_member_metadata(&self) -> Vec<JoinedMember> {
        self.members
            .iter()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata_for(self.protocol_name.as_deref()),
            })
            .collect()
    }

    /// Kafka's `addMemberAndRebalance`.
    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        if self.state == GroupState::PreparingRebalance && self.generation_id == 0 {
            self.new_member_added = true;
        }
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        assert_eq!(
            self.protocol_type.as_deref(),
            Some(request.protocol_type.as_str())
        );
        if self.leader_id.is_none() {
            self.leader_id = Some(member_id.clone());
        }
        self.pending_members.retain(|(id, _)| *id != member_id);
        self.members.push(Member {
            member_id,
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(request.token),
            awaiting_sync: None,
            is_new: true,
            session_deadline_ms: now_ms + NEW_MEMBER_JOIN_TIMEOUT_MS,
        });
        self.maybe_prepare_rebalance(now_ms, effects);
    }

    /// Kafka's `updateMemberAndRebalance`.
    fn update_member_and_rebalance(
        &mut self,
        index: usize,
        request: JoinRequest,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        self.update_member(index, &request, effects);
        self.maybe_prepare_rebalance(now_ms, effects);
    }

    /// Kafka's `GroupMetadata.updateMember`: new protocols and timeouts, and the member now
    /// waits on `request`.
    fn update_member(&mut self, index: usize, request: &JoinRequest, effects: &mut Vec<Effect>) {
        let member = &mut self.members[index];
        member.protocols = request.protocols.clone();
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_timeout_ms = request.session_timeout_ms;
        if let Some(superseded) = member.awaiting_join.replace(request.token) {
            let result = JoinResult::error(&member.member_id, E::RebalanceInProgress.code());
            effects.push(Effect::Join(superseded, result));
        }
    }

    /// Kafka's `updateStaticMemberAndRebalance`: a known `group.instance.id` joins with an
    /// empty member id (a restarted static consumer). The old member id is fenced.
    fn update_static_member_and_rebalance(
        &mut self,
        index: usize,
        new_member_id: String,
        request: JoinRequest,
        now_ms: i64,
        supports_skip_assignment: bool,
        effects: &mut Vec<Effect>,
    ) {
        let previous_leader = self.leader_id.clone().unwrap_or_default();
        self.replace_static_member(index, new_member_id.clone(), effects);
        let member = &mut self.members[index];
        member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        self.update_member(index, &request, effects);
        match self.state {
            GroupState::Stable => {
                if self.select_protocol() == self.protocol_name.as_deref().unwrap_or_default() {
                    // The assignment stays valid: keep it, persist the new member id, and let
                    // the member fetch its assignment with SyncGroup.
                    effects.push(Effect::Persist);
                    let is_leader = self.leader_id.as_deref() == Some(new_member_id.as_str());
                    let mut result = self.current_generation_result(&new_member_id, false);
                    if supports_skip_assignment {
                        result.skip_assignment = is_leader;
                        if is_leader {
                            result.members = self.current_member_metadata();
                        }
                    } else {
                        // Before KIP-814 the previous leader id is returned, so a rejoining
                        // static leader does not run a pointless assignment.
                        result.leader = previous_leader;
                    }
                    let member = &mut self.members[index];
                    let token = member.awaiting_join.take().expect("set by update_member");
                    member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                    effects.push(Effect::Join(token, result));
                } else {
                    self.maybe_prepare_rebalance(now_ms, effects);
                }
            }
            // The leader may already hold the old member id in its assignment: start over.
            GroupState::CompletingRebalance => self.prepare_rebalance(now_ms, effects),
            GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::Dead => {
                unreachable!("an {} group has no static members", self.state)
            }
        }
    }

    /// Kafka's `replaceStaticMember`: the member at `index` takes `new_member_id`; requests
    /// parked under the old id are answered `FENCED_INSTANCE_ID`.
    fn replace_static_member(
        &mut self,
        index: usize,
        new_member_id: String,
        effects: &mut Vec<Effect>,
    ) {
        let member = &mut self.members[index];
        let old_member_id = std::mem::replace(&mut member.member_id, new_member_id.clone());
        if let Some(token) = member.awaiting_join.take() {
            let result = JoinResult::error(&old_member_id, E::FencedInstanceId.code());
            effects.push(Effect::Join(token, result));
        }
        if let Some(token) = member.awaiting_sync.take() {
            effects.push(Effect::Sync(
                token,
                SyncResult::error(E::FencedInstanceId.code()),
            ));
        }
        if self.leader_id.as_deref() == Some(old_member_id.as_str()) {
            self.leader_id = Some(new_member_id.clone());
        }
        if self.pending_sync_members.remove(&old_member_id) {
            self.pending_sync_members.insert(new_member_id);
        }
    }

    fn transition(&mut self, next: GroupState, now_ms: i64) {
        assert!(
            next.may_follow(self.state),
            "group {}: illegal transition {} -> {next}",
            self.group_id,
            self.state
        );
        self.state = next;
        self.state_timestamp_ms = now_ms;
    }

    fn observe(&mut self, now_ms: i64) {
        self.clock_ms = self.clock_ms.max(now_ms);
    }

    fn index_of(&self, member_id: &str) -> Option<usize> {
        if member_id.is_empty() {
            return None;
        }
        self.members.iter().position(|m| m.member_id == member_id)
    }

    fn index_of_instance(&self, group_instance_id: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.group_instance_id.as_deref() == Some(group_instance_id))
    }

    fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_members.iter().any(|(id, _)| id == member_id)
    }

    /// Panics if a field invariant is broken: that is a bug in this module, never a bad
    /// request. Checked in debug builds (every test and the seeded simulation run them) and
    /// skipped in release: it walks every member on every call, and a panic would poison the
    /// coordinator's mutex for every group.
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        use GroupState::*;
        let ids: BTreeSet<&str> = self.members.iter().map(|m| m.member_id.as_str()).collect();
        assert_eq!(
            ids.len(),
            self.members.len(),
            "duplicate member id in {self:?}"
        );
        assert!(!ids.contains(""), "empty member id in {self:?}");
        let instances: Vec<&str> = self
            .members
            .iter()
            .filter_map(|m| m.group_instance_id.as_deref())
            .collect();
        let unique_instances: BTreeSet<&str> = instances.iter().copied().collect();
        assert_eq!(
            unique_instances.len(),
            instances.len(),
            "duplicate instance id"
        );
        match self.leader_id.as_deref() {
            Some(leader) => assert!(ids.contains(leader), "leader {leader} is not a member"),
            None => assert!(self.members.is_empty(), "members without a leader"),
        }
        if !self.members.is_empty() {
            let protocol_type = self.protocol_type.as_deref().expect("protocol type");
            assert!(self
                .members
                .iter()
                .all(|m| m.protocol_type == protocol_type));
            assert!(self.members.iter().all(|m| !m.protocols.is_empty()));
        }
        match self.state {
            Empty | Dead => assert!(self.members.is_empty(), "{} group with members", self.state),
            CompletingRebalance | Stable => {
                let name = self.protocol_name.as_deref().expect("selected protocol");
                assert!(
                    !self.members.is_empty(),
                    "{} group without members",
                    self.state
                );
                assert!(self
                    .members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == name)));
            }
            PreparingRebalance => {}
        }
        assert_eq!(self.join_timer.is_some(), self.state == PreparingRebalance);
        assert!(self
            .members
            .iter()
            .all(|m| m.awaiting_join.is_none() || self.state == PreparingRebalance));
        assert!(self
            .members
            .iter()
            .all(|m| m.awaiting_sync.is_none() || self.state == CompletingRebalance));
        assert!(self
            .pending_sync_members
            .iter()
            .all(|id| ids.contains(id.as_str())));
        assert!(
            self.pending_sync_members.is_empty()
                || matches!(self.state, CompletingRebalance | Stable)
        );
        assert_eq!(
            self.sync_deadline_ms.is_some(),
            !self.pending_sync_members.is_empty()
        );
        assert!(self
            .pending_members
            .iter()
            .all(|(id, _)| !ids.contains(id.as_str())));
        if self.state == Dead {
            assert!(self.pending_members.is_empty());
        }
    }
}
