//! One transactional id's metadata (Kafka's `TransactionMetadata`) and the transitions a write
//! installs (Kafka's `TxnTransitMetadata`).
//!
//! A change is prepared as a [`Transit`] (the full metadata after it) and marked `pending`;
//! the record is written; on success [`TxnMetadata::complete`] installs the transit, on failure
//! the pending state is dropped and the metadata stays as it was. Only Kafka's legal
//! transitions are installed: an illegal one is a bug and panics.

use std::collections::BTreeSet;

use super::codec::TxnLogValue;
use super::{TxnState, NO_PRODUCER_EPOCH};
use crate::replication::TopicPartition;

/// The metadata of one transactional id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id in use.
    pub producer_id: i64,
    /// The producer id before the last rotation (-1 for none).
    pub last_producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The epoch before the last bump, kept so that a retried InitProducerId whose answer was
    /// lost gets the same epoch again (KIP-360); -1 for none. Not written to the log.
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// The state as last written.
    pub state: TxnState,
    /// The partitions in the transaction.
    /// Invariant: empty unless the state is Ongoing, PrepareCommit or PrepareAbort.
    pub partitions: BTreeSet<TopicPartition>,
    /// When the transaction started (-1 outside one).
    pub start_timestamp_ms: i64,
    /// When the metadata last changed.
    pub last_update_timestamp_ms: i64,
    /// The state a write in flight will install. Invariant: at most one write in flight.
    pub pending: Option<TxnState>,
    /// A fence's PrepareAbort failed to write: the epoch is already bumped in memory, so the
    /// next fence must not bump it again (Kafka's `hasFailedEpochFence`).
    pub failed_epoch_fence: bool,
}

/// The metadata a write installs once durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Transit {
    pub producer_id: i64,
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    pub start_timestamp_ms: i64,
    pub last_update_timestamp_ms: i64,
}

/// A transaction as DescribeTransactions and ListTransactions show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// The state's Kafka name.
    pub state: TxnState,
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// When the transaction started (-1 outside one).
    pub start_timestamp_ms: i64,
    /// The partitions in the transaction.
    pub partitions: Vec<TopicPartition>,
}

impl TxnMetadata {
    /// A new transactional id with `producer_id` and no epoch yet.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            last_producer_id: -1,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_timestamp_ms: -1,
            last_update_timestamp_ms: now_ms,
            pending: None,
            failed_epoch_fence: false,
        }
    }

    /// The metadata a loaded record describes.
    pub fn from_log(transactional_id: &str, value: &TxnLogValue) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id: value.producer_id,
            last_producer_id: value.previous_producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: value.timeout_ms,
            state: value.state,
            partitions: value.partitions.iter().cloned().collect(),
            start_timestamp_ms: value.start_timestamp_ms,
            last_update_timestamp_ms: value.last_update_timestamp_ms,
            pending: None,
            failed_epoch_fence: false,
        }
    }

    /// Kafka's `isEpochExhausted`: one more bump would reach `i16::MAX`, which the fence of
    /// an open transaction needs to stay possible.
    pub fn epoch_exhausted(epoch: i16) -> bool {
        epoch >= i16::MAX - 1
    }

    /// The transit that changes nothing but what the caller sets.
    pub(crate) fn transit(&self, state: TxnState, now_ms: i64) -> Transit {
        Transit {
            producer_id: self.producer_id,
            last_producer_id: self.last_producer_id,
            producer_epoch: self.producer_epoch,
            last_producer_epoch: self.last_producer_epoch,
            timeout_ms: self.timeout_ms,
            state,
            partitions: self.partitions.clone(),
            start_timestamp_ms: self.start_timestamp_ms,
            last_update_timestamp_ms: now_ms.max(self.last_update_timestamp_ms),
        }
    }

    /// Installs a durable transit. Panics on a transition Kafka does not allow or a transit
    /// that was not the pending one (bugs).
    pub(crate) fn complete(&mut self, transit: Transit) {
        assert_eq!(
            self.pending,
            Some(transit.state),
            "{}: completing {:?} while {:?} is pending",
            self.transactional_id,
            transit.state,
            self.pending
        );
        assert!(
            transit.state.may_follow(self.state),
            "{}: illegal transition {:?} -> {:?}",
            self.transactional_id,
            self.state,
            transit.state
        );
        let keeps_partitions = matches!(
            transit.state,
            TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
        );
        assert!(
            keeps_partitions || transit.partitions.is_empty(),
            "{}: {:?} with partitions",
            self.transactional_id,
            transit.state
        );
        self.producer_id = transit.producer_id;
        self.last_producer_id = transit.last_producer_id;
        self.producer_epoch = transit.producer_epoch;
        self.last_producer_epoch = transit.last_producer_epoch;
        self.timeout_ms = transit.timeout_ms;
        self.state = transit.state;
        self.partitions = transit.partitions;
        self.start_timestamp_ms = transit.start_timestamp_ms;
        self.last_update_timestamp_ms = transit.last_update_timestamp_ms;
        self.pending = None;
        self.failed_epoch_fence = false;
    }

    /// What DescribeTransactions shows.
    pub fn describe(&self) -> TxnDescription {
        TxnDescription {
            transactional_id: self.transactional_id.clone(),
            state: self.state,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            start_timestamp_ms: self.start_timestamp_ms,
            partitions: self.partitions.iter().cloned().collect(),
        }
    }
}

impl Transit {
    /// The record value this transit writes.
    pub(crate) fn log_value(&self) -> TxnLogValue {
        TxnLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.last_producer_id,
            next_producer_id: -1,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: self.partitions.iter().cloned().collect(),
            last_update_timestamp_ms: self.last_update_timestamp_ms,
            start_timestamp_ms: self.start_timestamp_ms,
            client_transaction_version: 0,
        }
    }
}
