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
//! It does not own offsets (see [`super::offsets`]), the `__consumer_offsets` encoding, the
//! clock, or randomness: `now_ms` and fresh member-id bits are arguments.

use std::collections::BTreeSet;
use std::fmt;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;

/// Identifies one parked JoinGroup or SyncGroup request; issued by the shell, opaque here.
pub type RequestToken = u64;

/// How long a brand-new member may wait in a join before it is dropped (Kafka's
/// `NewMemberJoinTimeoutMs`): new members cannot heartbeat yet, so their session timeout
/// cannot protect the group from clients that disconnected while parked.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// The member id of a member that does not have one yet.
pub const UNKNOWN_MEMBER_ID: &str = "";

const NO_ERROR: i16 = 0;

/// Broker-wide settings for classic groups (`group.*` broker configs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members.
    pub initial_rebalance_delay_ms: i64,
    /// `group.max.size`; `None` means unlimited.
    pub max_size: Option<usize>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: None,
        }
    }
}

/// A classic group's state, as Kafka names it (`GroupState` in `GroupMetadata.scala`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    /// No members; offsets may still be committed with generation -1.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// A generation was formed; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has (or can fetch) its assignment.
    Stable,
    /// Deleted or unloaded; every request is refused.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state, as DescribeGroups and ListGroups report it.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Kafka's `validPreviousStates`: the states this one may be entered from.
    fn may_follow(self, previous: GroupState) -> bool {
        use GroupState::*;
        match self {
            Empty => previous == PreparingRebalance,
            PreparingRebalance => matches!(previous, Stable | CompletingRebalance | Empty),
            CompletingRebalance => previous == PreparingRebalance,
            Stable => previous == CompletingRebalance,
            Dead => true,
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A JoinGroup request as the core needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinRequest {
    /// The shell's handle for this parked request.
    pub token: RequestToken,
    /// `""` for a member joining for the first time.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address, as DescribeGroups shows it.
    pub client_host: String,
    /// `"consumer"` for Kafka consumers, `"connect"` for Connect workers, and so on.
    pub protocol_type: String,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// The member's session timeout.
    pub session_timeout_ms: i32,
    /// How long the member may take to rejoin during a rebalance.
    pub rebalance_timeout_ms: i32,
    /// JoinGroup v4+: a new member must first obtain a member id (`MEMBER_ID_REQUIRED`).
    pub require_known_member_id: bool,
    /// JoinGroup v8+: why the client joins, for the log.
    pub reason: Option<String>,
}

/// A SyncGroup request as the core needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncRequest {
    /// The shell's handle for this parked request.
    pub token: RequestToken,
    /// The member's id.
    pub member_id: String,
    /// The generation the member joined.
    pub generation_id: i32,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// SyncGroup v5+: must equal the group's protocol type when present.
    pub protocol_type: Option<String>,
    /// SyncGroup v5+: must equal the selected protocol when present.
    pub protocol_name: Option<String>,
    /// The leader's assignment, (member id, assignment); empty for followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// The answer to a JoinGroup.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinResult {
    /// 0 or a Kafka error code.
    pub error_code: i16,
    /// The generation formed, or -1 on error.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id, or `""`.
    pub leader: String,
    /// KIP-814: the leader must not run the assignor (static leader rejoined in Stable).
    pub skip_assignment: bool,
    /// The member's id (freshly assigned for new members).
    pub member_id: String,
    /// Only for the leader: every member with its metadata for the selected protocol.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    /// An error answer, shaped like Kafka's `JoinGroupResult(memberId, error)`.
    pub fn error(member_id: impl Into<String>, error_code: i16) -> JoinResult {
        JoinResult {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

/// One member as the leader sees it in its JoinGroup answer.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinedMember {
    /// The member's id.
    pub member_id: String,
    /// Its `group.instance.id`, if static.
    pub group_instance_id: Option<String>,
    /// Its metadata for the selected protocol (a consumer's subscription).
    pub metadata: Bytes,
}

/// The answer to a SyncGroup.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncResult {
    /// 0 or a Kafka error code.
    pub error_code: i16,
    /// The group's protocol type (only on success).
    pub protocol_type: Option<String>,
    /// The selected protocol (only on success).
    pub protocol_name: Option<String>,
    /// The member's assignment, empty on error.
    pub assignment: Bytes,
}

impl SyncResult {
    /// An error answer, shaped like Kafka's `SyncGroupResult(error)`.
    pub fn error(error_code: i16) -> SyncResult {
        SyncResult {
            error_code,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// What the shell must do after a call. Effects are ordered: apply them in sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Answer the parked JoinGroup.
    Join(RequestToken, JoinResult),
    /// Answer the parked SyncGroup.
    Sync(RequestToken, SyncResult),
    /// The group's membership changed in a way that must be written to
    /// `__consumer_offsets` ([`Group::snapshot`]; a tombstone if the group is Dead): a
    /// generation completed through the leader's SyncGroup, a static member was replaced in
    /// Stable, or the group became Empty or Dead. Write it before the answers after it.
    Persist,
}

/// One member as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberDescription {
    /// The member's id.
    pub member_id: String,
    /// Its `group.instance.id`, if static.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Metadata for the selected protocol; empty unless the group is Stable (as in Kafka).
    pub metadata: Bytes,
    /// The member's assignment; empty unless the group is Stable (as in Kafka).
    pub assignment: Bytes,
}

/// What `__consumer_offsets` holds for a group (Kafka's `GroupMetadataValue`).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSnapshot {
    /// The protocol type; `None` for a group that never had members.
    pub protocol_type: Option<String>,
    /// The current generation.
    pub generation_id: i32,
    /// The selected protocol; `None` when there are no members.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// When the group entered its current state.
    pub current_state_timestamp_ms: i64,
    /// The members, in join order.
    pub members: Vec<SnapshotMember>,
}

/// One member in a [`GroupSnapshot`].
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotMember {
    /// The member's id.
    pub member_id: String,
    /// Its `group.instance.id`, if static.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Its rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Its session timeout.
    pub session_timeout_ms: i32,
    /// Its metadata for the selected protocol.
    pub subscription: Bytes,
    /// Its assignment.
    pub assignment: Bytes,
}

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

    /// SyncGroup.
    pub fn sync(&mut self, request: SyncRequest, now_ms: i64) -> Vec<Effect> {
        self.observe(now_ms);
        let mut effects = Vec::new();
        self.sync_inner(request, now_ms, &mut effects);
        self.check_invariants();
        effects
    }

    fn sync_inner(&mut self, request: SyncRequest, now_ms: i64, effects: &mut Vec<Effect>) {
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
    fn validate_sync(&self, request: &SyncRequest) -> Result<usize, i16> {
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
    fn complete_sync(
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

    fn heartbeat_inner(
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

    fn leave_one(
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

    fn next_timer(&self) -> Option<(i64, Timer)> {
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

    fn fire(&mut self, timer: Timer, now_ms: i64, effects: &mut Vec<Effect>) {
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
    fn expire_pending_sync(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
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
    fn expire_join(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
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
    fn maybe_prepare_rebalance(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        if GroupState::PreparingRebalance.may_follow(self.state) {
            self.prepare_rebalance(now_ms, effects);
        }
    }

    /// Kafka's `prepareRebalance`: parked syncs are told to rejoin, the join phase starts.
    fn prepare_rebalance(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
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
    fn try_complete_join(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        let Some(timer) = self.join_timer else { return };
        let all_joined = self.members.iter().all(|m| m.awaiting_join.is_some())
            && self.pending_members.is_empty();
        if timer.kind == JoinTimerKind::Rebalance && all_joined {
            self.complete_join(now_ms, effects);
        }
    }

    /// Kafka's `onCompleteJoin`.
    fn complete_join(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
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
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
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
    fn select_protocol(&self) -> &str {
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
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
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
    fn accepts_joining_member(&self, member_id: &str) -> bool {
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
    fn validate_current_member(
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
    fn remove_member_and_update_group(
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
    fn remove_member(&mut self, index: usize) -> Member {
        let member = self.members.remove(index);
        self.remove_pending_sync_member(&member.member_id);
        if self.leader_id.as_deref() == Some(member.member_id.as_str()) {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        member
    }

    fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync_members.remove(member_id);
        if self.pending_sync_members.is_empty() {
            self.sync_deadline_ms = None;
        }
    }

    /// The group's rebalance timeout: the largest of its members' (0 without members).
    fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

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
    /// request.
    fn check_invariants(&self) {
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
