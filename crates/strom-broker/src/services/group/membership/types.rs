//! The values exchanged with the shell: requests, answers, effects, configuration and the
//! persisted snapshot. Plain data, no behaviour beyond constructors.

use std::fmt;

use bytes::Bytes;

/// Identifies one parked JoinGroup or SyncGroup request; issued by the shell, opaque here.
pub type RequestToken = u64;

/// How long a brand-new member may wait in a join before it is dropped (Kafka's
/// `NewMemberJoinTimeoutMs`): new members cannot heartbeat yet, so their session timeout
/// cannot protect the group from clients that disconnected while parked.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// The member id of a member that does not have one yet.
pub const UNKNOWN_MEMBER_ID: &str = "";

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
    pub(super) fn may_follow(self, previous: GroupState) -> bool {
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
    /// `__consumer_offsets` ([`Group::snapshot`](super::Group::snapshot); a tombstone if the group is Dead): a
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
