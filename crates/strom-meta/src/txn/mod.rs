//! Kafka's transaction coordinator (`TransactionCoordinator`, `TransactionStateManager`,
//! `TransactionMetadata`) as a pure state machine over the `__transaction_state` topic.
//!
//! [`TxnCoordinator::step`] takes an [`Input`] (a request the shell parked under a
//! [`RequestToken`], the completion of a write or of a marker request, a partition load or
//! unload, a timer tick) with the time, and returns [`Effect`]s: append a record to a
//! `__transaction_state` partition, answer a parked request, send WriteTxnMarkers for a
//! transaction to its partitions' leaders, allocate a producer id, read a partition to load it.
//! It does no I/O and reads no clock. Every token handed in is answered exactly once (a
//! partition unloaded answers its parked requests with `NOT_COORDINATOR`).
//!
//! The protocol is Kafka's transaction version 1 (the classic one every client speaks; the
//! broker does not advertise `transaction.version` 2): EndTxn is answered once its
//! PrepareCommit/PrepareAbort record is written, the markers follow, and CompleteCommit or
//! CompleteAbort is written once every partition has its marker; the next transaction of the
//! producer waits (`CONCURRENT_TRANSACTIONS`) until then. A producer fenced by a newer
//! InitProducerId, or whose transaction timed out, has its open transaction aborted with a
//! bumped epoch (PrepareEpochFence, a pending state only, as in Kafka), so its next call
//! fails with `PRODUCER_FENCED`. AddPartitionsToTxn's verify-only form (KIP-890 part 1) answers
//! without writing. After a failover, loading a partition resumes every PrepareCommit and
//! PrepareAbort by sending its markers again (markers are idempotent on the partitions).
//!
//! The shell maps `PRODUCER_FENCED` to `INVALID_PRODUCER_EPOCH` for the request versions that
//! predate it (InitProducerId < 4, AddPartitionsToTxn/AddOffsetsToTxn/EndTxn < 2), as Kafka's
//! `KafkaApis` does; AddOffsetsToTxn is AddPartitionsToTxn of the group's `__consumer_offsets`
//! partition, which the shell computes.
//!
//! It does not own the record batches ([`codec`] is the record layout only), the network,
//! the producer-id blocks (ZooKeeper's `/latest_producer_id_block` or the single node's file),
//! the partition leaders' producer state, nor authorization.

pub mod codec;
mod coordinator;
mod metadata;
mod requests;

#[cfg(test)]
mod tests;

pub use coordinator::TxnCoordinator;
pub use metadata::{TxnDescription, TxnMetadata};

use crate::replication::TopicPartition;

/// Kafka error codes the coordinator answers with.
pub mod errors {
    /// Success.
    pub const NONE: i16 = 0;
    /// Unexpected server error.
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    /// The partition of the transactional id is loading here.
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    /// The coordinator cannot write right now; retry.
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    /// This broker is not the coordinator of the transactional id.
    pub const NOT_COORDINATOR: i16 = 16;
    /// A malformed request (empty transactional id).
    pub const INVALID_REQUEST: i16 = 42;
    /// The producer's epoch is not the current one (old request versions).
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    /// The request is not allowed in the transaction's state.
    pub const INVALID_TXN_STATE: i16 = 48;
    /// The producer id does not belong to the transactional id.
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    /// `transaction.timeout.ms` above `transaction.max.timeout.ms` or not positive.
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    /// Another operation on the transactional id is in progress; retry.
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    /// A newer producer with the same transactional id exists.
    pub const PRODUCER_FENCED: i16 = 90;
    /// The transactional id is not known (DescribeTransactions).
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
    /// Verify-only: the partition is not in the transaction (KIP-890).
    pub const TRANSACTION_ABORTABLE: i16 = 120;
}

/// Kafka's `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// A transaction's state, with Kafka's ids (the state byte of a log record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction open; the producer id and epoch are assigned.
    Empty,
    /// A transaction is open (partitions added).
    Ongoing,
    /// EndTxn(commit) accepted; COMMIT markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a fence or a timeout; ABORT markers are being written.
    PrepareAbort,
    /// Every partition has its COMMIT marker.
    CompleteCommit,
    /// Every partition has its ABORT marker.
    CompleteAbort,
    /// The transactional id expired and is being removed.
    Dead,
    /// An ongoing transaction is being fenced (pending state only; never written).
    PrepareEpochFence,
}

impl TxnState {
    /// Kafka's state id.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state with Kafka's id `id`.
    pub fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Whether Kafka allows moving from `from` to `self` (`TransactionState.validPreviousStates`,
    /// transaction version 1 plus the version 2 aborts of an empty transaction).
    pub fn may_follow(self, from: TxnState) -> bool {
        use TxnState::*;
        match self {
            Empty => matches!(from, Empty | CompleteCommit | CompleteAbort),
            Ongoing => matches!(from, Ongoing | Empty | CompleteCommit | CompleteAbort),
            PrepareCommit => from == Ongoing,
            PrepareAbort => matches!(
                from,
                Ongoing | PrepareEpochFence | Empty | CompleteCommit | CompleteAbort
            ),
            CompleteCommit => from == PrepareCommit,
            CompleteAbort => from == PrepareAbort,
            Dead => matches!(from, Empty | CompleteCommit | CompleteAbort),
            PrepareEpochFence => from == Ongoing,
        }
    }
}

/// Identifies a parked request; the shell picks them and the core answers each once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestToken(pub u64);

/// Identifies one [`Effect::Append`]; its completion comes back as [`Input::Appended`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId(pub u64);

/// The coordinator's settings (broker configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnConfig {
    /// The partition count of `__transaction_state` (`transaction.state.log.num.partitions`).
    pub log_partitions: i32,
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
    /// How long a failed marker or completion write waits before it is retried (on a tick).
    pub retry_backoff_ms: i64,
    /// The value version written (1 unless an older cluster reads the log).
    pub value_version: i16,
}

impl Default for TxnConfig {
    fn default() -> TxnConfig {
        TxnConfig {
            log_partitions: 50,
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
            retry_backoff_ms: 100,
            value_version: 1,
        }
    }
}

/// The `__transaction_state` partition of a transactional id: Kafka's
/// `Utils.abs(transactionalId.hashCode) % partitions`, with Java's `String.hashCode` over
/// UTF-16 code units.
pub fn partition_for(transactional_id: &str, log_partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in transactional_id.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (hash & 0x7fff_ffff) % log_partitions.max(1)
}

/// The outcome a set of markers records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnResult {
    /// COMMIT markers.
    Commit,
    /// ABORT markers.
    Abort,
}

/// What one partition leader answered for one marker (WriteTxnMarkers), as the shell
/// classifies Kafka's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerOutcome {
    /// Written (`NONE`).
    Written,
    /// Try again later: `NOT_LEADER_OR_FOLLOWER`, `NOT_ENOUGH_REPLICAS*`, `REQUEST_TIMED_OUT`,
    /// `UNKNOWN_TOPIC_OR_PARTITION` while the topic exists, a lost connection.
    Retriable,
    /// The partition is gone (its topic was deleted): nothing to write.
    PartitionGone,
    /// The leader knows a newer coordinator epoch (`TRANSACTION_COORDINATOR_FENCED`): this
    /// coordinator stops sending.
    CoordinatorFenced,
}

/// What a `__transaction_state` write returned, with Kafka's error code when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Durable as the partition's durability settings require.
    Written,
    /// Failed with this produce error code (mapped to the client's as Kafka does).
    Failed(i16),
}

/// A request or event for the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// InitProducerId with a transactional id.
    InitProducerId {
        /// The parked request.
        token: RequestToken,
        /// The transactional id.
        transactional_id: String,
        /// `transaction.timeout.ms`.
        timeout_ms: i32,
        /// The producer id and epoch the producer already has (KIP-360, v3+), if any.
        current: Option<(i64, i16)>,
    },
    /// AddPartitionsToTxn (one transaction of it), or AddOffsetsToTxn as the group's
    /// `__consumer_offsets` partition.
    AddPartitions {
        /// The parked request.
        token: RequestToken,
        /// The transactional id.
        transactional_id: String,
        /// The producer id.
        producer_id: i64,
        /// The producer epoch.
        producer_epoch: i16,
        /// The partitions.
        partitions: Vec<TopicPartition>,
        /// Verify only (KIP-890): answer whether they are in the transaction, write nothing.
        verify_only: bool,
    },
    /// EndTxn.
    EndTxn {
        /// The parked request.
        token: RequestToken,
        /// The transactional id.
        transactional_id: String,
        /// The producer id.
        producer_id: i64,
        /// The producer epoch.
        producer_epoch: i16,
        /// Commit (true) or abort.
        commit: bool,
    },
    /// The answer to [`Effect::AllocateProducerId`].
    ProducerIdAllocated {
        /// The InitProducerId that asked.
        token: RequestToken,
        /// The new producer id, or the error code to answer with.
        result: Result<i64, i16>,
    },
    /// The completion of [`Effect::Append`].
    Appended {
        /// The write.
        write: WriteId,
        /// Its outcome.
        outcome: AppendOutcome,
    },
    /// One partition leader's answer to a marker of [`Effect::SendMarkers`].
    MarkerResult {
        /// The transactional id the markers were for.
        transactional_id: String,
        /// The producer id of the markers.
        producer_id: i64,
        /// The producer epoch of the markers.
        producer_epoch: i16,
        /// The partition.
        partition: TopicPartition,
        /// Its outcome.
        outcome: MarkerOutcome,
    },
    /// This broker leads `__transaction_state` partition `partition` at `coordinator_epoch`:
    /// the core asks for its records ([`Effect::ReadPartition`]).
    BecomeCoordinator {
        /// The partition.
        partition: i32,
        /// Its leader epoch.
        coordinator_epoch: i32,
    },
    /// The answer to [`Effect::ReadPartition`]: every record (key, value or `None` for a
    /// tombstone) in offset order.
    PartitionRead {
        /// The partition.
        partition: i32,
        /// The epoch it was read for (a stale read is ignored).
        coordinator_epoch: i32,
        /// The records.
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    },
    /// This broker no longer leads the partition.
    ResignCoordinator {
        /// The partition.
        partition: i32,
    },
    /// Time passed: abort timed-out transactions, expire idle ids, retry markers and writes.
    Tick,
}

/// What a request is answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// InitProducerId: the error code, producer id and epoch (-1, -1 on error).
    InitProducerId {
        /// The error code.
        error: i16,
        /// The producer id.
        producer_id: i64,
        /// The producer epoch.
        producer_epoch: i16,
    },
    /// AddPartitionsToTxn / AddOffsetsToTxn: one code per partition.
    AddPartitions {
        /// Each partition with its error code.
        results: Vec<(TopicPartition, i16)>,
    },
    /// EndTxn: the error code.
    EndTxn {
        /// The error code.
        error: i16,
    },
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Append one record to `__transaction_state` partition `partition` (only while leading it
    /// at `coordinator_epoch`) and report [`Input::Appended`].
    Append {
        /// The write.
        write: WriteId,
        /// The partition.
        partition: i32,
        /// The epoch this coordinator leads it at.
        coordinator_epoch: i32,
        /// The record key ([`codec::encode_key`]).
        key: Vec<u8>,
        /// The record value, `None` for a tombstone.
        value: Option<Vec<u8>>,
    },
    /// Answer a parked request.
    Respond {
        /// The request.
        token: RequestToken,
        /// The answer.
        response: Response,
    },
    /// Write a `result` marker for the producer on each partition (WriteTxnMarkers to each
    /// partition's leader) and report each as [`Input::MarkerResult`].
    SendMarkers {
        /// The transactional id.
        transactional_id: String,
        /// The producer id.
        producer_id: i64,
        /// The producer epoch.
        producer_epoch: i16,
        /// The `__transaction_state` leader epoch (leaders refuse older ones).
        coordinator_epoch: i32,
        /// Commit or abort.
        result: TxnResult,
        /// The partitions.
        partitions: Vec<TopicPartition>,
    },
    /// Allocate a producer id and report [`Input::ProducerIdAllocated`].
    AllocateProducerId {
        /// The InitProducerId waiting for it.
        token: RequestToken,
    },
    /// Read `__transaction_state` partition `partition` and report [`Input::PartitionRead`].
    ReadPartition {
        /// The partition.
        partition: i32,
        /// The epoch it is read for.
        coordinator_epoch: i32,
    },
}
