//! The per-partition queue of transactional batches waiting for KIP-890 verification: one
//! chain per producer, each batch holding a [`Ticket`] that waits for the verdict of the batch
//! ahead of it, so pipelined batches keep their order and only the first pays the round trip.
//!
//! It lives with the partition that holds it ([`super::partition::Partition::verifying`]) and
//! owns only the bookkeeping of the chains. Asking the coordinator, appending and the error
//! codes are [`crate::services::txn::verify`]'s, which hands out tickets and finishes them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use strom_log::log::VerificationGuard;
use tokio::sync::oneshot;

/// What the coordinator said for one producer and epoch: the guard to append with (`None`:
/// the transaction was already open), or the coordinator's error code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Verdict {
    /// The epoch the verdict is for; a batch of another epoch asks again.
    pub(crate) producer_epoch: i16,
    /// The guard to append with, or the coordinator's error code.
    pub(crate) outcome: Result<Option<VerificationGuard>, i16>,
}

/// One producer's chain of batches waiting on a partition.
struct Chain {
    /// The last ticket handed out; the chain is removed when that one finishes.
    last: u64,
    /// The verdict of the last ticket, once it has appended.
    tail: Option<oneshot::Receiver<Verdict>>,
}

/// The batches of a partition waiting for verification, per producer.
#[derive(Default)]
pub struct Waiting {
    chains: Mutex<HashMap<i64, Chain>>,
    next_ticket: AtomicU64,
}

/// A batch's place in its producer's chain.
pub struct Ticket {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    /// This ticket's number, unique on the partition.
    pub(crate) number: u64,
    /// The verdict of the batch ahead in the chain, if there is one.
    pub(crate) previous: Option<oneshot::Receiver<Verdict>>,
    /// Where this batch's verdict goes, for the batch behind it.
    pub(crate) done: oneshot::Sender<Verdict>,
}

impl Waiting {
    /// A ticket at the end of `producer_id`'s chain, or `None` when the producer has no chain
    /// and `already_open` (called under the chains' lock, before the log's) says its
    /// transaction is open on the partition: then the batch needs no verification.
    pub(crate) fn ticket(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        already_open: impl FnOnce() -> bool,
    ) -> Option<Ticket> {
        let mut chains = self.chains.lock().unwrap();
        if !chains.contains_key(&producer_id) && already_open() {
            return None;
        }
        let number = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (done, verdict) = oneshot::channel();
        let chain = chains.entry(producer_id).or_insert(Chain {
            last: number,
            tail: None,
        });
        chain.last = number;
        let previous = chain.tail.replace(verdict);
        Some(Ticket {
            producer_id,
            producer_epoch,
            number,
            previous,
            done,
        })
    }

    /// Ticket `number` of `producer_id` has appended (or failed): its chain ends if it was the
    /// last one handed out.
    pub(crate) fn finish(&self, producer_id: i64, number: u64) {
        let mut chains = self.chains.lock().unwrap();
        if chains.get(&producer_id).is_some_and(|c| c.last == number) {
            chains.remove(&producer_id);
        }
    }
}
