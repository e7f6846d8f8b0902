//! The transaction side of a partition log: appending a COMMIT/ABORT marker as the leader, the
//! last stable offset (LSO) and open transactions, the aborted transactions a `read_committed`
//! fetch returns, and the restore of producer state and aborted-transaction index on open and
//! after a truncation.
//!
//! Producer state tracks, per producer, the first offset of its open transaction (set by its
//! first transactional data batch, cleared by a marker); the LSO is the lowest of those and
//! the high watermark. An ABORT marker that ends an open transaction adds an entry to the
//! `.txnindex` of the segment the marker is stored in ([`crate::txn_index`]). A follower does
//! the same from the batches it copies ([`Log::append_as_follower`]).
//!
//! Recovery: the index entries at or above the offset the producer-state replay starts from
//! (the newest snapshot at or below the log end, else the first segment) are dropped and
//! written again by the replay, so a torn tail, a truncation or an index file that missed its
//! last appends all end in the index a replay of the stored batches gives. An unreadable index
//! file makes the replay start at the first segment with every index emptied. Not done here:
//! the transaction coordinator (strom-meta) and removing aborted records in compaction.

use std::path::Path;

use crate::batch::{assign_offset, BatchHeader, BATCH_HEADER_LEN};
use crate::control::{marker_batch, parse_marker, TxnMarker};
use crate::error::{AppendError, LogError, ReadError};
use crate::producer_state::{OngoingTxn, ProducerState};
use crate::txn_index::{AbortedTxn, TxnIndexes};

use super::{AppendInfo, Log, ReadInfo};

impl Log {
    /// Appends a transaction marker for `marker.producer_id` as the leader of `leader_epoch`
    /// (WriteTxnMarkers): a control batch of one COMMIT or ABORT record, at the log end. It ends
    /// the producer's open transaction, if any (an ABORT adds it to the aborted-transaction
    /// index), and raises the producer's epoch and coordinator epoch. Refused, with nothing
    /// written, for a stale leader epoch ([`AppendError::StaleLeaderEpoch`]), an older producer
    /// epoch ([`AppendError::InvalidProducerEpoch`]) or an older coordinator epoch
    /// ([`AppendError::TransactionCoordinatorFenced`]). Does not fsync unless the relaxed flush
    /// policy says so, like [`Log::append`].
    pub fn append_txn_marker(
        &mut self,
        marker: &TxnMarker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.check_leader_epoch(leader_epoch)?;
        self.producer_state.check_marker(marker)?;
        // A confirmation the coordinator gave before this marker may be about the transaction
        // the marker ends: the producer's next first batch is verified again.
        self.guards.clear(marker.producer_id);
        let mut batch = marker_batch(marker, now_ms);
        let base_offset = self.log_end_offset();
        assign_offset(&mut batch, base_offset, leader_epoch);
        let header = BatchHeader::parse(&batch).expect("a marker batch parses");
        self.write_leader_batch(
            &header,
            &batch[..BATCH_HEADER_LEN],
            &batch[BATCH_HEADER_LEN..],
            leader_epoch,
            now_ms,
        )?;
        let segment_base = self.active().base_offset();
        apply_marker(
            &mut self.producer_state,
            &mut self.txn_indexes,
            &self.dir,
            segment_base,
            &header,
            &batch,
        )?;
        if self.flush_due(now_ms) {
            self.flush()?;
        }
        Ok(AppendInfo {
            first_offset: base_offset,
            last_offset: base_offset,
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset,
            duplicate: false,
        })
    }

    /// The last stable offset: the first offset of the oldest open transaction, or the high
    /// watermark if that is lower (never below the log start). `read_committed` consumers read
    /// up to it, and ListOffsets answers it for them.
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark;
        self.producer_state
            .first_unstable_offset()
            .map_or(high_watermark, |first| first.min(high_watermark))
            .max(self.log_start_offset)
    }

    /// The open transactions of the partition, oldest first (DescribeProducers,
    /// ListTransactions, finding hanging transactions).
    pub fn ongoing_transactions(&self) -> Vec<OngoingTxn> {
        self.producer_state.ongoing_transactions()
    }

    /// `(producer id, first offset)` of the aborted transactions a `read_committed` fetch of
    /// `[start_offset, upper_bound)` must report (Fetch's `aborted_transactions`): those whose
    /// ABORT marker is at or above `start_offset` and whose first record is below
    /// `upper_bound`, oldest marker first.
    pub fn aborted_transactions(&self, start_offset: i64, upper_bound: i64) -> Vec<(i64, i64)> {
        self.txn_indexes
            .aborted_transactions(start_offset, upper_bound)
    }

    /// Reads for a `read_committed` fetch: [`Log::read`] bounded by the last stable offset, and
    /// the aborted transactions overlapping what it returns (Kafka's
    /// `collectAbortedTransactions`): markers at or above `fetch_offset`, first records below
    /// the offset of the first batch after the returned bytes. Empty when nothing is returned
    /// or no ABORT marker lies at or above `fetch_offset`, which costs one comparison, so a
    /// topic without aborted transactions reads as cheaply as with [`Log::read`].
    pub fn read_committed(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
    ) -> Result<(ReadInfo, Vec<(i64, i64)>), ReadError> {
        let last_stable_offset = self.last_stable_offset();
        let info = self.read(fetch_offset, max_bytes, last_stable_offset, min_one_message)?;
        let Some(slice) = &info.slice else {
            return Ok((info, Vec::new()));
        };
        if self
            .txn_indexes
            .last_marker_offset()
            .is_none_or(|last| last < fetch_offset)
        {
            return Ok((info, Vec::new()));
        }
        // The segment the read came from: the first at or after the fetch offset's that holds
        // a batch ending at or above it, as in `Log::read`.
        let first = self.segment_index_for(fetch_offset);
        let mut upper_bound = last_stable_offset;
        for segment in &self.segments[first..] {
            if segment.find_batch(fetch_offset)?.is_some() {
                let end = slice.position + slice.len as u64;
                upper_bound = segment.offset_at_or_after_position(end)?.min(upper_bound);
                break;
            }
        }
        let aborted = self
            .txn_indexes
            .aborted_transactions(fetch_offset, upper_bound);
        Ok((info, aborted))
    }

    /// Every entry of the aborted-transaction index, oldest marker first (tests, tools).
    pub fn aborted_txn_entries(&self) -> Vec<AbortedTxn> {
        self.txn_indexes.entries().copied().collect()
    }

    /// Restores producer state and the aborted-transaction index: the newest producer snapshot
    /// at or below the end, the index files with their entries at or above the snapshot's
    /// offset dropped, then a replay of the batch headers after the snapshot (reading the
    /// record of each control batch).
    pub(super) fn load_producer_state(&mut self) -> Result<(), LogError> {
        let end = self.log_end_offset();
        let bases: Vec<i64> = self.segments.iter().map(|s| s.base_offset()).collect();
        let snapshot = ProducerState::load_latest(&self.dir, end)?;
        let (from, state) = match TxnIndexes::load(&self.dir, &bases) {
            Ok(mut indexes) => {
                let (from, state) = snapshot.unwrap_or((bases[0], ProducerState::default()));
                indexes.truncate_from(&self.dir, from)?;
                self.txn_indexes = indexes;
                (from, state)
            }
            Err(LogError::Corrupt { path, reason }) => {
                tracing::warn!(file = %path.display(), reason,
                    "rebuilding the aborted-transaction index from the log");
                self.txn_indexes.reset(&self.dir, &bases)?;
                crate::checkpoint::fsync_dir(&self.dir)?;
                (bases[0], ProducerState::default())
            }
            Err(e) => return Err(e),
        };
        self.producer_state = state;
        let mut replayed = 0;
        let mut failed = None;
        for segment in &self.segments {
            if segment.next_offset() <= from {
                continue;
            }
            let Some((position, _)) = segment.find_batch(from)? else {
                continue;
            };
            let state = &mut self.producer_state;
            let indexes = &mut self.txn_indexes;
            let dir = &self.dir;
            let base = segment.base_offset();
            segment.for_each_batch(position, |at, header| {
                state.update(header);
                replayed += 1;
                if header.is_control() {
                    let applied = segment
                        .read_bytes(at, header.total_len())
                        .and_then(|batch| apply_marker(state, indexes, dir, base, header, &batch));
                    if let Err(e) = applied {
                        failed = Some(e);
                        return false;
                    }
                }
                true
            })?;
            if let Some(e) = failed.take() {
                return Err(e);
            }
        }
        self.recovery_stats.batches_replayed = replayed;
        Ok(())
    }
}

/// Applies a stored control batch (`batch`, whose producer state `update` already ran) in the
/// segment based at `segment_base`: a COMMIT or ABORT ends the producer's open transaction, and
/// an ABORT that ended one is added to the index with the LSO right after it. Other control
/// batches change nothing.
pub(super) fn apply_marker(
    state: &mut ProducerState,
    indexes: &mut TxnIndexes,
    dir: &Path,
    segment_base: i64,
    header: &BatchHeader,
    batch: &[u8],
) -> Result<(), LogError> {
    let Some(marker) = parse_marker(header, batch) else {
        return Ok(());
    };
    let Some(done) = state.complete_txn(&marker, header.base_offset) else {
        return Ok(());
    };
    if done.aborted {
        let last_stable_offset = state
            .first_unstable_offset()
            .unwrap_or(done.last_offset + 1);
        indexes.append(
            dir,
            segment_base,
            AbortedTxn {
                producer_id: done.producer_id,
                first_offset: done.first_offset,
                last_offset: done.last_offset,
                last_stable_offset,
            },
        )?;
    }
    Ok(())
}
