//! The pure core of the classic group coordinator (Kafka's `GroupCoordinator`,
//! `GroupMetadata` and the in-memory half of `GroupMetadataManager`), for any protocol
//! type ("consumer", "connect", ...).
//!
//! - [`membership`]: one group's JoinGroup / SyncGroup / Heartbeat / LeaveGroup state
//!   machine with its session, rebalance, initial-delay and pending-member deadlines.
//! - [`offsets`]: committed offsets and their expiry.
//! - `txn_offsets`: offsets committed inside transactions, pending until the marker.
//!
//! Everything here is synchronous and deterministic: no tokio, no clock, no I/O, no
//! randomness. Time (`now_ms`) and fresh member-id bits are arguments; results are
//! [`Effect`]s that the async shell applies (answer a parked request, write the group record
//! to `__consumer_offsets`) and [`Group::next_deadline`] tells the shell when to call
//! [`Group::tick`]. The shell owns the map from group id to [`Group`], coordinator
//! ownership (`NOT_COORDINATOR`, `COORDINATOR_LOAD_IN_PROGRESS`), group-id validation, and
//! the record encoding.

mod commit;
pub mod membership;
pub mod offsets;
mod txn_offsets;

#[cfg(test)]
mod tests;

pub use commit::{CommitId, CommittedOffset};
pub use membership::{
    Effect, Group, GroupConfig, GroupSnapshot, GroupState, JoinRequest, JoinResult, JoinedMember,
    MemberDescription, RequestToken, SnapshotMember, SyncRequest, SyncResult,
    NEW_MEMBER_JOIN_TIMEOUT_MS, UNKNOWN_MEMBER_ID,
};
pub use offsets::{OffsetTable, TxnCompletion};
