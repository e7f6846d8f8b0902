//! The values of the group offset tables: one committed offset, and the id that orders
//! staged commits. Shared by the plain table ([`super::offsets`]) and the pending
//! transactional offsets ([`super::txn_offsets`]), which is why they live apart from both.

/// One committed offset (Kafka's `OffsetAndMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// Client-supplied metadata.
    pub metadata: Option<String>,
    /// When the commit was accepted.
    pub commit_timestamp_ms: i64,
    /// OffsetCommit v1 explicit expiry; `None` for the retention-based expiry of v2+.
    pub expire_timestamp_ms: Option<i64>,
}

/// Identifies a staged commit. Ids grow in the order commits are staged (received), so
/// comparing two ids compares their receive order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitId(pub(super) u64);

impl CommitId {
    /// After every commit: a barrier that covers all commits in flight.
    pub const MAX: CommitId = CommitId(u64::MAX);
}
