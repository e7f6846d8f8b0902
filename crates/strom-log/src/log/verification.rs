//! KIP-890's verification guards: the leader's defence against hanging transactions.
//!
//! A transactional batch that would open its producer's transaction on this partition (the
//! producer has no open transaction here at the batch's epoch) may only be written once the
//! transaction coordinator confirmed the partition is in the producer's ongoing transaction.
//! The broker asks the log for a [`VerificationGuard`] before it asks the coordinator, and
//! passes the guard back with the append ([`Verification::Required`]). The log keeps one guard
//! per producer and drops it when the transaction opens (the first transactional append), when
//! a marker for the producer is written (the transaction the coordinator confirmed may be the
//! one that marker ended) and when the log is truncated. An append whose guard is no longer
//! the log's is refused with [`crate::AppendError::InvalidTxnState`], so a confirmation that
//! raced with the transaction's end cannot open a transaction nobody will close.
//!
//! Guards live in memory only: after a restart, or on a new leader, a producer's next first
//! batch is verified again. This module owns the guards, not the round trip to the
//! coordinator (the broker's) nor the producer state (`producer_state.rs`).

use std::collections::HashMap;

use crate::batch::BatchHeader;
use crate::error::AppendError;
use crate::producer_state::ProducerState;

/// How many producers may hold a guard at once; past it the oldest guard is dropped (its
/// producer's append then fails and the producer retries through a new verification).
const MAX_GUARDS: usize = 100_000;

/// A token the log hands out for one producer's verification; an append carrying it may open
/// the producer's transaction while the log still holds the same token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerificationGuard(u64);

/// Whether a leader append checks that transactional batches are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// No check: verification is off (`transaction.partition.verification.enable=false`), or
    /// the append is the broker's own (coordinator records).
    Off,
    /// A transactional batch that would open a transaction needs this guard (none: the caller
    /// did not verify, so only a batch of an already open transaction is accepted).
    Required(Option<VerificationGuard>),
}

/// The guards of one log, by producer id.
#[derive(Debug, Default)]
pub(crate) struct Guards {
    by_producer: HashMap<i64, (i16, VerificationGuard)>,
    next: u64,
}

impl Guards {
    /// The guard of `(producer_id, producer_epoch)`: the one already handed out at that epoch,
    /// else a new one (replacing a guard of another epoch).
    pub(crate) fn guard(&mut self, producer_id: i64, producer_epoch: i16) -> VerificationGuard {
        if let Some((epoch, guard)) = self.by_producer.get(&producer_id) {
            if *epoch == producer_epoch {
                return *guard;
            }
        }
        if self.by_producer.len() >= MAX_GUARDS && !self.by_producer.contains_key(&producer_id) {
            let oldest = self
                .by_producer
                .iter()
                .min_by_key(|(_, (_, guard))| guard.0)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.by_producer.remove(&oldest);
            }
        }
        self.next += 1;
        let guard = VerificationGuard(self.next);
        self.by_producer
            .insert(producer_id, (producer_epoch, guard));
        guard
    }

    /// Drops the producer's guard (its transaction opened, or a marker ended it).
    pub(crate) fn clear(&mut self, producer_id: i64) {
        self.by_producer.remove(&producer_id);
    }

    /// Drops every guard (a truncation).
    pub(crate) fn clear_all(&mut self) {
        self.by_producer.clear();
    }

    /// Refuses a transactional batch that would open a transaction without the producer's
    /// current guard. Other batches pass: non-transactional ones, and those of a producer whose
    /// transaction is already open at the batch's epoch.
    pub(crate) fn check(
        &self,
        producer_state: &ProducerState,
        header: &BatchHeader,
        verification: Verification,
    ) -> Result<(), AppendError> {
        let Verification::Required(guard) = verification else {
            return Ok(());
        };
        if !header.is_transactional()
            || has_ongoing_transaction(producer_state, header.producer_id, header.producer_epoch)
        {
            return Ok(());
        }
        let held = self.by_producer.get(&header.producer_id);
        match (held, guard) {
            (Some(&(epoch, held)), Some(guard))
                if epoch == header.producer_epoch && held == guard =>
            {
                Ok(())
            }
            _ => Err(AppendError::InvalidTxnState {
                producer_id: header.producer_id,
            }),
        }
    }
}

/// Whether `producer_id` has an open transaction on the partition at `producer_epoch`.
pub(crate) fn has_ongoing_transaction(
    producer_state: &ProducerState,
    producer_id: i64,
    producer_epoch: i16,
) -> bool {
    producer_state.get(producer_id).is_some_and(|entry| {
        entry.epoch == producer_epoch && entry.current_txn_first_offset.is_some()
    })
}
