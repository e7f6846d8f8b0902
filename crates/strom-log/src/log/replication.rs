//! Replication's side of a partition log: appending as a follower (batches exactly as the
//! leader wrote them), truncating to an offset or emptying the log at a new start (a
//! follower's log diverged from, or fell behind, its leader's), and the leader-epoch lookups
//! `OffsetForLeaderEpoch` answers and a follower's truncation point is computed from.
//!
//! This module owns the checks a fetched batch passes before it is stored and the order of the
//! durable steps of a truncation. It does not fetch, keep replica positions or decide when to
//! truncate: the broker's replica manager does, with [`Log::truncation_point`] for the
//! arithmetic.
//!
//! # Truncation and crashes
//!
//! [`Log::truncate_to`] takes these steps, each durable before the next:
//!
//! 1. remove the producer snapshots above the target (directory fsynced);
//! 2. delete the segments that keep no batch below the target, highest first, then fsync the
//!    directory;
//! 3. cut the last remaining segment after its last batch below the target (`ftruncate`,
//!    `fdatasync`);
//! 4. drop the leader-epoch entries at or above the new end (checkpoint replaced atomically);
//! 5. if the segment was cut, seal it and start a new active segment at the new end (so no
//!    byte a reader was handed is ever written over; the cut range reads short), which also
//!    writes a producer snapshot.
//!
//! [`Log::truncate_fully_and_start_at`] removes every snapshot, deletes every segment (highest
//! first), clears the epoch cache and then creates the empty segment at the new start.
//!
//! A crash after any step leaves, on disk, the old log cut at a batch boundary at or above
//! the target (steps 2 and 3 only ever remove a suffix), or no segment at all (then
//! [`Log::open`] starts an empty log at the checkpointed log start). [`Log::open`] makes the
//! rest agree with whatever survived: the active segment is re-read (there is no clean
//! shutdown marker), the epoch cache is cut to the surviving end and start, and producer
//! state comes from the newest snapshot at or below the end plus a replay; a snapshot above
//! the end is deleted. Snapshots are only a shortcut, so removing them first is always safe.
//! The log is then consistent but possibly longer than the caller asked for: a follower
//! recomputes its truncation point after a restart anyway (OffsetForLeaderEpoch), as Kafka's
//! does. `tests/truncation.rs` stops a truncation before each step, drops the log without
//! closing it and checks the reopened log.
//!
//! The filesystem is assumed not to make a file's new length durable before the data written
//! into it (as ext4's default `data=ordered` and XFS guarantee): otherwise a crash right after
//! an append that follows a truncation could expose the cut bytes again.

use crate::batch::{
    validate_stored_batch, BatchError, BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD,
};
use crate::checkpoint::fsync_dir;
use crate::error::{AppendError, FollowerAppendError, LogError};
use crate::leader_epoch::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
use crate::producer_state::ProducerState;
use crate::segment::{Segment, MAX_RELATIVE_OFFSET};

use super::Log;

/// Where a follower truncates, from the leader's answer to `OffsetForLeaderEpoch`
/// ([`Log::truncation_point`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncationPoint {
    /// The offset to pass to [`Log::truncate_to`].
    pub offset: i64,
    /// False if the leader answered with an epoch this log does not know: truncate to
    /// `offset`, then ask the leader again for the log's (new) latest epoch.
    pub complete: bool,
}

/// One checked batch of a follower's fetch: its start in the blob and its header.
type Checked = (usize, BatchHeader);

impl Log {
    /// Appends the batches a follower fetched from its leader exactly as the leader stored
    /// them: base offsets, leader epochs, timestamps and producer fields are kept, nothing is
    /// rewritten. Before anything is written, every batch is checked: framing, magic 2 and
    /// CRC-32C ([`validate_stored_batch`], which accepts the fewer records than offsets that
    /// compaction leaves); the first starts at or after the log end offset and each starts
    /// after the previous one ends (gaps are allowed: compaction removes whole batches, so a
    /// compacted leader's log has them; Kafka's followers accept them too); offsets do not
    /// overflow; leader epochs are not negative and never go below the previous batch's or the
    /// log's latest epoch. A failed check is a [`FollowerAppendError`] and leaves the log
    /// unchanged.
    ///
    /// A trailing partial batch (a fetch response may end with one) is ignored: the follower
    /// fetches it again from the returned end offset. One exception to "the first batch starts
    /// at or after the end", as in Kafka: if the log is empty and the first batch holds the
    /// log end offset (the leader's log start fell inside a batch, after DeleteRecords), the
    /// log restarts at the batch's base offset ([`Log::truncate_fully_and_start_at`]).
    ///
    /// The leader-epoch cache records each new epoch at the base offset of its first batch
    /// (before the batch is written), producer state is updated from each header as a replay
    /// would, and segments roll as on the leader (at the batch's base offset when offsets
    /// jump). `max.message.bytes` is not applied: the leader accepted the batch, possibly under
    /// another configuration. Like [`Log::append`] it does not fsync (unless the relaxed flush
    /// policy says a flush is due): a follower that acknowledges only durable data syncs with
    /// [`Log::sync_target`] and [`Log::mark_flushed`] and reports [`Log::recovery_point`] as
    /// its position. Returns the new log end offset.
    pub fn append_as_follower(
        &mut self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<i64, FollowerAppendError> {
        let (batches, restart) = self.check_follower_batches(records)?;
        // Guards are a leader's; a follower holds none (this drops those of a past leadership).
        self.guards.clear_all();
        if let Some(base_offset) = restart {
            self.truncate_fully_and_start_at(base_offset)?;
        }
        for (position, header) in batches {
            let batch = &records[position..position + header.total_len()];
            self.prepare_segment_for(&header, now_ms)?;
            self.leader_epochs
                .assign(header.partition_leader_epoch, header.base_offset)?;
            let config = &self.config;
            self.segments.last_mut().expect("active segment").append(
                &header,
                &batch[..BATCH_HEADER_LEN],
                &batch[BATCH_HEADER_LEN..],
                config,
                now_ms,
            )?;
            self.producer_state.update(&header);
            if header.is_control() {
                let base = self.active().base_offset();
                super::transactions::apply_marker(
                    &mut self.producer_state,
                    &mut self.txn_indexes,
                    &self.dir,
                    base,
                    &header,
                    batch,
                )?;
            }
            self.unflushed_records += i64::from(header.last_offset_delta) + 1;
            self.first_unflushed_ms.get_or_insert(now_ms);
        }
        if self.flush_due(now_ms) {
            self.flush()?;
        }
        self.check_invariants();
        Ok(self.log_end_offset())
    }

    /// The checks of [`Log::append_as_follower`]. Returns the complete batches and, if the log
    /// must restart at the first batch's base offset, that offset.
    fn check_follower_batches(
        &self,
        records: &[u8],
    ) -> Result<(Vec<Checked>, Option<i64>), FollowerAppendError> {
        let log_end_offset = self.log_end_offset();
        let empty = log_end_offset == self.log_start_offset;
        let mut batches: Vec<Checked> = Vec::new();
        let mut restart = None;
        let mut previous_last_offset = log_end_offset - 1;
        let mut epoch_floor = self.leader_epochs.latest_epoch().unwrap_or(0);
        let mut position = 0;
        while records.len() - position >= LOG_OVERHEAD {
            let rest = &records[position..];
            let batch_length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
            if batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
                return Err(FollowerAppendError::Corrupt {
                    position,
                    source: BatchError::InvalidLength {
                        position,
                        batch_length,
                    },
                });
            }
            let total = batch_length as usize + LOG_OVERHEAD;
            if total > rest.len() {
                break;
            }
            let header = validate_stored_batch(&rest[..total], position)
                .map_err(|source| FollowerAppendError::Corrupt { position, source })?;
            let out_of_order = || FollowerAppendError::OffsetsOutOfOrder {
                position,
                base_offset: header.base_offset,
                last_offset_delta: header.last_offset_delta,
                previous_last_offset,
            };
            // The offset after the batch must exist: last offset below i64::MAX.
            let last_offset = header
                .base_offset
                .checked_add(i64::from(header.last_offset_delta))
                .filter(|&last| last < i64::MAX)
                .ok_or_else(out_of_order)?;
            if batches.is_empty() && header.base_offset < log_end_offset {
                if !(empty && header.base_offset >= 0 && last_offset >= log_end_offset) {
                    return Err(FollowerAppendError::UnexpectedOffset {
                        log_end_offset,
                        first_offset: header.base_offset,
                        last_offset,
                    });
                }
                restart = Some(header.base_offset);
                epoch_floor = 0;
            } else if header.base_offset <= previous_last_offset {
                return Err(out_of_order());
            }
            let epoch = header.partition_leader_epoch;
            if epoch < epoch_floor {
                return Err(FollowerAppendError::InvalidLeaderEpoch {
                    position,
                    base_offset: header.base_offset,
                    epoch,
                    latest_epoch: epoch_floor,
                });
            }
            epoch_floor = epoch;
            previous_last_offset = last_offset;
            batches.push((position, header));
            position += total;
        }
        Ok((batches, restart))
    }

    /// Makes room for a follower's batch: rolls at its base offset when the active segment is
    /// full (or the batch's offsets would not fit its relative encoding), and re-bases an empty
    /// active segment the batch's offsets would not fit.
    fn prepare_segment_for(&mut self, header: &BatchHeader, now_ms: i64) -> Result<(), LogError> {
        let active = self.active();
        if active.size() > 0 {
            if active.should_roll(
                header.total_len(),
                header.last_offset(),
                &self.config,
                now_ms,
            ) {
                self.roll_at(header.base_offset)?;
            }
            return Ok(());
        }
        if header.last_offset() - active.base_offset() <= MAX_RELATIVE_OFFSET {
            return Ok(());
        }
        // The new file first: a crash in between leaves an extra empty segment, which is a
        // consistent log. An empty segment has no bytes a reader could hold.
        let segment = Segment::create(&self.dir, header.base_offset, &self.config)?;
        let old = self.segments.pop().expect("active segment");
        self.segments.push(segment);
        old.delete_files(&self.dir)?;
        fsync_dir(&self.dir)?;
        if self.segments.len() == 1 {
            self.log_start_offset = self.log_start_offset.max(header.base_offset);
            self.high_watermark = self.high_watermark.max(self.log_start_offset);
            self.leader_epochs
                .truncate_from_start(self.log_start_offset)?;
        }
        Ok(())
    }

    /// Removes every batch at and above `offset`: a batch holding `offset` goes whole, so the
    /// new log end offset is the end of the last batch below `offset` (below `offset` if a batch
    /// straddled it or offsets had a gap there). Segments that keep no batch are deleted and the
    /// last one is cut; offset and time index entries go with them; producer state is rebuilt
    /// from the newest snapshot at or below the new end plus a replay; leader-epoch entries
    /// starting at or above the new end are dropped; the high watermark, recovery point and
    /// compaction progress are clamped to the new end, and the log start offset too if it was
    /// above it. If no batch stays, this is [`Log::truncate_fully_and_start_at`]`(offset)`.
    ///
    /// At or above the log end offset nothing is removed, but epoch entries starting at or
    /// after the end are still dropped (a leader may have recorded its epoch at the end and
    /// lost leadership before appending), as Kafka does. Returns whether anything was removed.
    /// Durable when it returns; see the module documentation for crashes in the middle.
    pub fn truncate_to(&mut self, offset: i64) -> Result<bool, LogError> {
        Ok(self
            .truncate_to_steps(offset, &mut || true)?
            .expect("every step runs"))
    }

    /// [`Log::truncate_to`], asking `proceed` before each durable step and returning `None`
    /// (the log then unusable) when it says no: tests simulate a crash that way.
    pub(crate) fn truncate_to_steps(
        &mut self,
        offset: i64,
        proceed: &mut dyn FnMut() -> bool,
    ) -> Result<Option<bool>, LogError> {
        let end = self.log_end_offset();
        if offset >= end {
            self.leader_epochs.truncate_from_end(end)?;
            return Ok(Some(false));
        }
        // The segments to keep: up to the last one whose first batch ends below the offset.
        let mut keep = self.segments.len();
        while keep > 0 {
            let segment = &self.segments[keep - 1];
            let keeps_a_batch = segment.base_offset() < offset
                && segment
                    .read_header(0)?
                    .is_some_and(|header| header.last_offset() < offset);
            if keeps_a_batch {
                break;
            }
            keep -= 1;
        }
        if keep == 0 {
            return Ok(self.truncate_fully_steps(offset, proceed)?.map(|()| true));
        }
        tracing::info!(dir = %self.dir.display(), offset, log_end_offset = end, "truncating log");
        self.guards.clear_all();
        if !proceed() {
            return Ok(None);
        }
        ProducerState::remove_snapshots_above(&self.dir, offset)?;
        while self.segments.len() > keep {
            if !proceed() {
                return Ok(None);
            }
            self.segments
                .last()
                .expect("segment")
                .delete_files(&self.dir)?;
            self.segments.pop();
        }
        fsync_dir(&self.dir)?;
        if !proceed() {
            return Ok(None);
        }
        let cut = self.active_mut().truncate_to(offset)?;
        let new_end = self.log_end_offset();
        if !proceed() {
            return Ok(None);
        }
        self.leader_epochs.truncate_from_end(new_end)?;
        self.high_watermark = self.high_watermark.min(new_end);
        self.recovery_point = self.recovery_point.min(new_end);
        self.log_start_offset = self.log_start_offset.min(new_end);
        self.cleaned_up_to = self.cleaned_up_to.min(new_end);
        self.reset_unflushed();
        self.load_producer_state()?;
        if cut > 0 {
            if !proceed() {
                return Ok(None);
            }
            self.roll()?;
        }
        self.check_invariants();
        Ok(Some(true))
    }

    /// Empties the log and restarts it at `offset` (above or below the old range), for a
    /// follower whose log end is below its leader's log start: deletes every segment and
    /// producer snapshot, creates an empty segment at `offset`, clears the leader-epoch cache
    /// and producer state, and sets the log start offset, high watermark, recovery point and
    /// log end offset to `offset`. Durable when it returns; see the module documentation for
    /// crashes in the middle.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        self.truncate_fully_steps(offset, &mut || true)?
            .expect("every step runs");
        Ok(())
    }

    /// [`Log::truncate_fully_and_start_at`] with crash points, as [`Log::truncate_to_steps`].
    pub(crate) fn truncate_fully_steps(
        &mut self,
        offset: i64,
        proceed: &mut dyn FnMut() -> bool,
    ) -> Result<Option<()>, LogError> {
        assert!(offset >= 0, "restarting a log at {offset}");
        tracing::info!(dir = %self.dir.display(), offset, log_end_offset = self.log_end_offset(),
            "emptying log and restarting it");
        self.guards.clear_all();
        if !proceed() {
            return Ok(None);
        }
        ProducerState::remove_snapshots_above(&self.dir, -1)?;
        // The lowest segment stays in the list until its replacement exists, so that an I/O
        // error in between leaves a log that still has an active segment.
        while !self.segments.is_empty() {
            if !proceed() {
                return Ok(None);
            }
            self.segments
                .last()
                .expect("segment")
                .delete_files(&self.dir)?;
            if self.segments.len() > 1 {
                self.segments.pop();
            } else {
                break;
            }
        }
        fsync_dir(&self.dir)?;
        if !proceed() {
            return Ok(None);
        }
        self.leader_epochs.clear()?;
        if !proceed() {
            return Ok(None);
        }
        let segment = Segment::create(&self.dir, offset, &self.config)?;
        fsync_dir(&self.dir)?;
        self.segments = vec![segment];
        self.producer_state = ProducerState::default();
        self.txn_indexes = Default::default();
        self.log_start_offset = offset;
        self.high_watermark = offset;
        self.recovery_point = offset;
        self.cleaned_up_to = offset;
        self.reset_unflushed();
        self.check_invariants();
        Ok(Some(()))
    }

    fn reset_unflushed(&mut self) {
        if self.recovery_point == self.log_end_offset() {
            self.unflushed_records = 0;
            self.first_unflushed_ms = None;
        }
    }

    /// Records that a new leader's `epoch` starts at the log end offset, before it appends
    /// anything (Kafka's `maybeAssignEpochStartOffset` on becoming leader), so that
    /// OffsetForLeaderEpoch for the previous epoch ends here even before the first append.
    /// Nothing changes if `epoch` is already the latest; an older one is refused.
    pub fn start_leader_epoch(&mut self, epoch: i32) -> Result<(), AppendError> {
        assert!(epoch >= 0, "leader epoch {epoch}");
        if let Some(latest) = self.leader_epochs.latest_epoch() {
            if epoch < latest {
                return Err(AppendError::StaleLeaderEpoch { epoch, latest });
            }
        }
        let end = self.log_end_offset();
        Ok(self.leader_epochs.assign(epoch, end)?)
    }

    /// The answer to `OffsetForLeaderEpoch` for `epoch` (Kafka's `endOffsetForEpoch`):
    /// `(the largest known epoch at or below epoch, the start offset of the next known epoch)`,
    /// or `(epoch, log end offset)` if `epoch` is the latest, or `(epoch, start of the first
    /// known epoch)` if every known epoch is newer; `(-1, -1)`
    /// ([`UNDEFINED_EPOCH`], [`UNDEFINED_EPOCH_OFFSET`]) if `epoch` is -1, newer than the latest
    /// or the log knows no epoch.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.leader_epochs
            .end_offset_for(epoch, self.log_end_offset())
    }

    /// The newest leader epoch of the log, if it knows any: a follower sends it in
    /// OffsetForLeaderEpoch.
    pub fn latest_leader_epoch(&self) -> Option<i32> {
        self.leader_epochs.latest_epoch()
    }

    /// The leader-epoch cache's entries `(epoch, start offset)`, oldest first.
    pub fn leader_epoch_entries(&self) -> &[(i32, i64)] {
        self.leader_epochs.entries()
    }

    /// Where a follower truncates given the leader's answer `(leader_epoch, leader_end_offset)`
    /// to an OffsetForLeaderEpoch request for this log's latest epoch (Kafka's
    /// `AbstractFetcherThread.getOffsetTruncationState`): never above this log's end; the
    /// high watermark if the leader had no answer; the leader's end offset if this log knows
    /// no epochs; otherwise, if this log knows the leader's epoch, the smaller of both logs'
    /// end of that epoch (complete), and if not, this log's end of its largest epoch below it
    /// (not complete: ask again with the new latest epoch).
    pub fn truncation_point(&self, leader_epoch: i32, leader_end_offset: i64) -> TruncationPoint {
        let end = self.log_end_offset();
        if leader_end_offset == UNDEFINED_EPOCH_OFFSET {
            return TruncationPoint {
                offset: self.high_watermark.min(end),
                complete: true,
            };
        }
        let leader = TruncationPoint {
            offset: leader_end_offset.min(end),
            complete: true,
        };
        if leader_epoch == UNDEFINED_EPOCH {
            return leader;
        }
        let (local_epoch, local_end) = self.end_offset_for_epoch(leader_epoch);
        if local_end == UNDEFINED_EPOCH_OFFSET {
            leader
        } else if local_epoch != leader_epoch {
            TruncationPoint {
                offset: local_end.min(end),
                complete: false,
            }
        } else {
            TruncationPoint {
                offset: local_end.min(leader_end_offset).min(end),
                complete: true,
            }
        }
    }
}
