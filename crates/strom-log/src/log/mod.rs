//! One partition's log: an ordered list of segments, the offsets that describe it (log start,
//! high watermark, log end, recovery point), its idempotent-producer state and leader-epoch
//! cache, and the operations the broker performs on it (append, read, flush, retention,
//! DeleteRecords, close; a follower's append and truncation in `replication.rs`).
//!
//! The log is not thread-safe by itself; the broker wraps it in a mutex ([`crate::SharedLog`])
//! and holds that mutex only to compute a [`FileSlice`] or to append. File data is read (`pread`)
//! and fsynced outside the mutex, so the log never rewrites bytes that a reader may have been
//! handed: below the end, files are only ever deleted (readers keep their handle) or cut, by
//! recovery before anyone can read them or by a replication truncation, after which the writes
//! go to a new segment (a reader past the cut gets a short read).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::batch::{
    assign_offset, set_log_append_time, set_max_timestamp, validate_batches, BatchHeader,
};
use crate::checkpoint::fsync_dir;
use crate::config::LogConfig;
use crate::error::{AppendError, LogError, ReadError};
use crate::index::remove_if_exists;
use crate::producer_state::{ProducerState, SequenceCheck};
use crate::segment::TXN_INDEX_SUFFIX;
use crate::segment::{
    parse_offset_file_name, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};
use crate::validate::check_records;

/// A byte range of a segment file, read outside the log's mutex.
#[derive(Debug, Clone)]
pub struct FileSlice {
    /// The segment file; still readable after the segment is deleted.
    pub file: Arc<File>,
    /// Start of the range in the file.
    pub position: u64,
    /// Length of the range in bytes.
    pub len: usize,
}

impl FileSlice {
    /// Reads the range with `pread`.
    pub fn read_to_bytes(&self) -> io::Result<Bytes> {
        let mut buffer = BytesMut::zeroed(self.len);
        self.file.read_exact_at(&mut buffer, self.position)?;
        Ok(buffer.freeze())
    }
}

/// Result of a successful [`Log::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record of the batch.
    pub first_offset: i64,
    /// Offset of the last record of the batch.
    pub last_offset: i64,
    /// The append time stamped on the batch, -1 unless the topic uses LogAppendTime.
    pub log_append_time_ms: i64,
    /// The log start offset after the append.
    pub log_start_offset: i64,
    /// True if the batch was an idempotent retry: the offsets are those of the original batch and
    /// nothing was written.
    pub duplicate: bool,
}

/// Result of a successful [`Log::read`].
#[derive(Debug, Clone)]
pub struct ReadInfo {
    /// The bytes to send, `None` if there is nothing to return.
    pub slice: Option<FileSlice>,
    /// High watermark at the time of the read.
    pub high_watermark: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
    /// Last stable offset at the time of the read ([`Log::last_stable_offset`]), which a
    /// Fetch answers at both isolation levels.
    pub last_stable_offset: i64,
}

/// Figures about the work [`Log::open`] did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Segments re-read batch by batch.
    pub segments_recovered: usize,
    /// Bytes re-read and CRC-checked.
    pub bytes_reread: u64,
    /// Bytes cut off torn or corrupt segment tails.
    pub bytes_truncated: u64,
    /// Segments deleted because they followed a truncation.
    pub segments_deleted: usize,
    /// Batch headers replayed into the producer state.
    pub batches_replayed: u64,
}

/// One partition's log.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Invariant: never empty; sorted by base offset; each segment's offsets are at or above the
    /// previous segment's end. The last one is the active segment, the only one appended to.
    segments: Vec<Segment>,
    /// Invariant: first segment's base offset <= log_start_offset <= high_watermark.
    log_start_offset: i64,
    /// Invariant: log_start_offset <= high_watermark <= log end offset.
    high_watermark: i64,
    /// Every offset below this is durable on disk. Invariant: <= log end offset; monotonic
    /// except that a truncation lowers it to the new end.
    recovery_point: i64,
    producer_state: ProducerState,
    /// The aborted transactions of the log's ABORT markers (`.txnindex` files).
    txn_indexes: crate::txn_index::TxnIndexes,
    leader_epochs: crate::leader_epoch::LeaderEpochCache,
    unflushed_records: i64,
    first_unflushed_ms: Option<i64>,
    recovery_stats: RecoveryStats,
    /// Compaction has cleaned every segment below this offset; kept across restarts in
    /// `cleaner-offset-checkpoint` by the manager.
    cleaned_up_to: i64,
    /// KIP-890 verification guards handed out to the broker ([`verification`]).
    guards: verification::Guards,
}

impl Log {
    /// Opens or creates the partition directory `dir`. With `clean_shutdown` false, every segment
    /// holding offsets at or above `recovery_point` is re-read (length, CRC, monotonic offsets);
    /// the first bad batch ends the log. Any segment whose indexes fail a sanity check is re-read
    /// too. Producer state comes from the newest snapshot plus a replay of the log after it.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        recovery_point: i64,
        log_start_offset: i64,
        clean_shutdown: bool,
        now_ms: i64,
    ) -> Result<Log, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let bases = scan_dir(dir)?;
        let mut stats = RecoveryStats::default();
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
        let mut truncated_at = None;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let holds_unflushed = next_base.is_none_or(|next| next > recovery_point);
            // Index entries are read at open only where Kafka checks them (after the recovery
            // point); an unclean start re-reads those segments and rebuilds their indexes anyway.
            let check_indexes = clean_shutdown && holds_unflushed;
            let (mut segment, insane) = Segment::open(dir, base, &config, now_ms, check_indexes)?;
            let min_offset = segments.last().map_or(base, Segment::next_offset);
            let overlaps_next = next_base.is_some_and(|next| segment.next_offset() > next);
            if insane || (!clean_shutdown && holds_unflushed) || overlaps_next {
                let outcome = segment.recover(&config, min_offset, next_base)?;
                stats.segments_recovered += 1;
                stats.bytes_reread += outcome.bytes_read;
                stats.bytes_truncated += outcome.bytes_truncated;
                if outcome.bytes_truncated > 0 {
                    truncated_at = Some(i);
                }
            }
            segments.push(segment);
            if truncated_at.is_some() {
                break;
            }
        }
        if let Some(i) = truncated_at {
            for &base in &bases[i + 1..] {
                for suffix in [
                    LOG_SUFFIX,
                    INDEX_SUFFIX,
                    TIME_INDEX_SUFFIX,
                    TXN_INDEX_SUFFIX,
                ] {
                    remove_if_exists(&crate::segment::segment_file(dir, base, suffix))?;
                }
                stats.segments_deleted += 1;
            }
        }
        let mut log_start_offset = log_start_offset.max(0);
        if segments.is_empty() {
            segments.push(Segment::create(dir, log_start_offset, &config)?);
            fsync_dir(dir)?;
        }
        log_start_offset = log_start_offset.max(segments[0].base_offset());
        let log_end_offset = segments.last().expect("non-empty").next_offset();
        if log_start_offset > log_end_offset {
            // The checkpointed start is past everything that survived: start over there.
            tracing::warn!(dir = %dir.display(), log_start_offset, log_end_offset,
                "log start offset beyond the recovered end; emptying the log");
            for segment in segments.drain(..) {
                segment.delete_files(dir)?;
            }
            segments.push(Segment::create(dir, log_start_offset, &config)?);
            fsync_dir(dir)?;
        }
        if stats.segments_deleted > 0 || stats.bytes_truncated > 0 {
            fsync_dir(dir)?;
        }
        let log_end_offset = segments.last().expect("non-empty").next_offset();
        // The cache may run ahead of the log (an epoch is recorded before its first batch is
        // written, and a truncation cuts the log before the cache) or behind its start.
        let mut leader_epochs = crate::leader_epoch::LeaderEpochCache::load(dir);
        leader_epochs.truncate_from_end(log_end_offset)?;
        leader_epochs.truncate_from_start(log_start_offset)?;
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            high_watermark: log_end_offset,
            recovery_point: log_end_offset,
            producer_state: ProducerState::default(),
            txn_indexes: Default::default(),
            leader_epochs,
            unflushed_records: 0,
            first_unflushed_ms: None,
            recovery_stats: stats,
            cleaned_up_to: log_start_offset,
            guards: Default::default(),
        };
        log.load_producer_state()?;
        if log.recovery_stats.segments_recovered > 0 {
            tracing::info!(dir = %dir.display(), stats = ?log.recovery_stats, log_end_offset,
                "recovered log");
        }
        log.check_invariants();
        Ok(log)
    }

    fn check_invariants(&self) {
        let first = &self.segments[0];
        assert!(
            first.base_offset() <= self.log_start_offset,
            "log start below first segment"
        );
        assert!(
            self.log_start_offset <= self.high_watermark,
            "high watermark below log start"
        );
        assert!(
            self.high_watermark <= self.log_end_offset(),
            "high watermark above end"
        );
        assert!(
            self.recovery_point <= self.log_end_offset(),
            "recovery point above end"
        );
        for pair in self.segments.windows(2) {
            assert!(
                pair[0].next_offset() <= pair[1].base_offset(),
                "segments overlap"
            );
        }
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has a segment")
    }

    /// Validates and appends one produce `records` blob (exactly one v2 batch) as the leader
    /// of `leader_epoch`, applying the record checks ([`check_records`]: keys, timestamp
    /// bounds, the true max timestamp), the idempotent-producer rules, offset assignment,
    /// LogAppendTime and segment rolling. The batch is stamped with `leader_epoch`
    /// (`partitionLeaderEpoch`, outside the CRC), and an epoch newer than the log's latest is
    /// recorded in the leader-epoch cache at the batch's base offset before the batch is
    /// written. An epoch older than the latest is refused ([`AppendError::StaleLeaderEpoch`]).
    /// Does not fsync unless the relaxed flush policy says a flush is due.
    ///
    /// Panics if `leader_epoch` is negative: the broker always knows its epoch.
    pub fn append(
        &mut self,
        records: Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_verified(records, leader_epoch, now_ms, Verification::Off)
    }

    /// [`Log::append`] with KIP-890's check: under [`Verification::Required`], a transactional
    /// batch that would open its producer's transaction must carry the producer's current
    /// guard ([`Log::verification_guard`]), else it is refused with
    /// [`AppendError::InvalidTxnState`] and nothing is written. Other batches pay one bit test.
    pub fn append_verified(
        &mut self,
        records: Bytes,
        leader_epoch: i32,
        now_ms: i64,
        verification: Verification,
    ) -> Result<AppendInfo, AppendError> {
        self.check_leader_epoch(leader_epoch)?;
        let headers = validate_batches(&records)?;
        let header = match headers[..] {
            [header] => header,
            _ => {
                return Err(AppendError::InvalidRecord(format!(
                    "a produce request must carry exactly one record batch per partition, got {}",
                    headers.len()
                )))
            }
        };
        if header.is_control() {
            return Err(AppendError::InvalidRecord(
                "clients may not send control batches".into(),
            ));
        }
        if header.is_transactional() && header.producer_id < 0 {
            return Err(AppendError::InvalidRecord(
                "a transactional batch must carry a producer id".into(),
            ));
        }
        if records.len() > self.config.max_message_bytes as usize {
            return Err(AppendError::MessageTooLarge {
                size: records.len(),
                max: self.config.max_message_bytes,
            });
        }
        let checked = check_records(&records, &header, &self.config, now_ms, &self.dir)?;
        // The header's maxTimestamp is rewritten only where it is wrong: a CreateTime batch
        // whose records were decoded and whose largest timestamp differs from the header's.
        let true_max_timestamp = checked
            .max_timestamp
            .filter(|&max| max != header.max_timestamp);
        let log_append_time = self.config.timestamp_type_log_append;
        if header.producer_id >= 0 {
            if header.base_sequence < 0 {
                return Err(AppendError::InvalidRecord(format!(
                    "batch has producer id {} but no base sequence",
                    header.producer_id
                )));
            }
            if let SequenceCheck::Duplicate(original) = self.producer_state.check(&header)? {
                return Ok(AppendInfo {
                    first_offset: original.first_offset,
                    last_offset: original.last_offset,
                    log_append_time_ms: if log_append_time {
                        original.max_timestamp
                    } else {
                        -1
                    },
                    log_start_offset: self.log_start_offset,
                    duplicate: true,
                });
            }
            if header.is_transactional() {
                self.guards
                    .check(&self.producer_state, &header, verification)?;
            }
        }
        let base_offset = self.log_end_offset();
        // Only the batch header changes. baseOffset and partitionLeaderEpoch are outside the
        // CRC, so the header is rewritten in a small copy and the records are written straight
        // from the request's buffer. LogAppendTime and a corrected maxTimestamp change
        // CRC-covered fields and the CRC, so those cases rewrite a copy of the whole batch.
        let (head, tail, log_append_time_ms) = if log_append_time || true_max_timestamp.is_some() {
            let mut whole = BytesMut::from(records);
            assign_offset(&mut whole, base_offset, leader_epoch);
            let log_append_time_ms = if log_append_time {
                set_log_append_time(&mut whole, now_ms);
                now_ms
            } else {
                let max = true_max_timestamp.expect("a corrected max timestamp");
                set_max_timestamp(&mut whole, max);
                -1
            };
            let whole = whole.freeze();
            let mut head = [0u8; crate::BATCH_HEADER_LEN];
            head.copy_from_slice(&whole[..crate::BATCH_HEADER_LEN]);
            (
                head,
                whole.slice(crate::BATCH_HEADER_LEN..),
                log_append_time_ms,
            )
        } else {
            let mut head = [0u8; crate::BATCH_HEADER_LEN];
            head.copy_from_slice(&records[..crate::BATCH_HEADER_LEN]);
            assign_offset(&mut head, base_offset, leader_epoch);
            (head, records.slice(crate::BATCH_HEADER_LEN..), -1)
        };
        let header = BatchHeader::parse(&head).expect("validated batch");
        assert_eq!(header.base_offset, base_offset);
        assert_eq!(header.total_len(), crate::BATCH_HEADER_LEN + tail.len());
        self.write_leader_batch(&header, &head, &tail, leader_epoch, now_ms)?;
        if header.is_transactional() {
            // The transaction is open now: its next batches need no guard.
            self.guards.clear(header.producer_id);
        }
        if self.flush_due(now_ms) {
            self.flush()?;
        }
        Ok(AppendInfo {
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            log_append_time_ms,
            log_start_offset: self.log_start_offset,
            duplicate: false,
        })
    }

    /// Refuses a leader append in an epoch older than the log's latest. Panics if
    /// `leader_epoch` is negative: the broker always knows its epoch.
    pub(super) fn check_leader_epoch(&self, leader_epoch: i32) -> Result<(), AppendError> {
        assert!(leader_epoch >= 0, "leader append with epoch {leader_epoch}");
        match self.leader_epochs.latest_epoch() {
            Some(latest) if leader_epoch < latest => Err(AppendError::StaleLeaderEpoch {
                epoch: leader_epoch,
                latest,
            }),
            _ => Ok(()),
        }
    }

    /// Writes a leader's batch (`head` the header with its offset and epoch assigned, `tail`
    /// the rest) at the log end: rolls the segment if due, records the epoch, appends, and
    /// updates the producer state and the unflushed counters. Flushing is the caller's.
    pub(super) fn write_leader_batch(
        &mut self,
        header: &BatchHeader,
        head: &[u8],
        tail: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<(), AppendError> {
        // The last offset a batch may take is i64::MAX - 1 (the end offset is one past it);
        // only a follower fed a forged base offset can bring a log this far.
        let last = header
            .base_offset
            .checked_add(i64::from(header.last_offset_delta.max(0)));
        if last.is_none_or(|last| last == i64::MAX) {
            return Err(AppendError::InvalidRecord(format!(
                "the log's end offset {} leaves no room for a batch of {} offsets",
                header.base_offset,
                i64::from(header.last_offset_delta) + 1
            )));
        }
        if self.active().should_roll(
            header.total_len(),
            header.last_offset(),
            &self.config,
            now_ms,
        ) {
            self.roll()?;
        }
        // The epoch first, as Kafka does: after a crash the cache may name an epoch whose first
        // batch is missing (open cuts it), never hold a batch whose epoch it lacks.
        self.leader_epochs
            .assign(leader_epoch, header.base_offset)
            .map_err(AppendError::Io)?;
        let config = &self.config;
        self.segments
            .last_mut()
            .expect("active segment")
            .append(header, head, tail, config, now_ms)?;
        self.producer_state.update(header);
        self.unflushed_records += i64::from(header.records_count);
        self.first_unflushed_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Starts a new active segment at the log end offset: seals and syncs the old one, creates
    /// the new files, fsyncs the directory and writes a producer snapshot.
    fn roll(&mut self) -> Result<(), LogError> {
        self.roll_at(self.log_end_offset())
    }

    /// [`Log::roll`] with the new segment based at `new_base`, at or above the log end offset
    /// (a follower's next batch may start past it, after offsets compaction removed).
    fn roll_at(&mut self, new_base: i64) -> Result<(), LogError> {
        assert!(
            new_base >= self.log_end_offset(),
            "rolling to {new_base} below the log end"
        );
        assert!(self.active().size() > 0, "rolling an empty segment");
        self.active_mut().seal()?;
        let segment = Segment::create(&self.dir, new_base, &self.config)?;
        fsync_dir(&self.dir)?;
        self.segments.push(segment);
        self.mark_flushed(new_base);
        self.write_producer_snapshot()?;
        tracing::debug!(dir = %self.dir.display(), base_offset = new_base, "rolled segment");
        Ok(())
    }

    /// Reads from the batch holding `fetch_offset`, at most `max_bytes` (at least that batch if
    /// `min_one_message`), never past the batch holding `max_offset` (exclusive). The slice may
    /// end mid-batch, as Kafka's does. Reads stay within one segment.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<ReadInfo, ReadError> {
        let log_end_offset = self.log_end_offset();
        if fetch_offset < self.log_start_offset || fetch_offset > log_end_offset {
            return Err(ReadError::OffsetOutOfRange {
                requested: fetch_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        let mut info = ReadInfo {
            slice: None,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            log_end_offset,
            last_stable_offset: self.last_stable_offset(),
        };
        if fetch_offset == log_end_offset || max_offset <= fetch_offset {
            return Ok(info);
        }
        let first = self.segment_index_for(fetch_offset);
        for segment in &self.segments[first..] {
            let Some((position, header)) = segment.find_batch(fetch_offset)? else {
                continue;
            };
            let max_position = if max_offset >= segment.next_offset() {
                segment.size()
            } else {
                segment
                    .find_batch(max_offset)?
                    .map_or(segment.size(), |(p, _)| p)
            };
            if position >= max_position {
                return Ok(info);
            }
            let available = usize::try_from(max_position - position).expect("segment fits usize");
            let wanted = if min_one_message {
                max_bytes.max(header.total_len())
            } else {
                max_bytes
            };
            let len = available.min(wanted);
            if len > 0 {
                info.slice = Some(FileSlice {
                    file: segment.file()?,
                    position,
                    len,
                });
            }
            return Ok(info);
        }
        Ok(info)
    }

    /// Index of the segment whose range holds `offset` (the last one based at or below it).
    fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    /// The first offset of the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The offset the next record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// The high watermark. On open it equals the log end offset; the broker lowers or advances it.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Sets the high watermark. Panics unless `log_start_offset <= offset <= log_end_offset`:
    /// the broker computes it from offsets this log gave out.
    pub fn set_high_watermark(&mut self, offset: i64) {
        assert!(
            self.log_start_offset <= offset && offset <= self.log_end_offset(),
            "high watermark {offset} outside [{}, {}]",
            self.log_start_offset,
            self.log_end_offset()
        );
        self.high_watermark = offset;
    }

    /// The active segment's file and the end offset it covers, for a group-commit
    /// `sync_data` done outside the log's mutex, followed by [`Log::mark_flushed`].
    pub fn sync_target(&self) -> Result<(Arc<File>, i64), LogError> {
        Ok((self.active().file()?, self.log_end_offset()))
    }

    /// Records that every offset below `offset` is durable (raises the recovery point; never
    /// lowers it).
    pub fn mark_flushed(&mut self, offset: i64) {
        let end = self.log_end_offset();
        assert!(
            offset <= end,
            "flushed offset {offset} beyond log end {end}"
        );
        self.recovery_point = self.recovery_point.max(offset);
        if self.recovery_point == end {
            self.unflushed_records = 0;
            self.first_unflushed_ms = None;
        }
    }

    /// Every offset below this is durable.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Fsyncs the active segment's data (older segments were synced when they rolled) and
    /// raises the recovery point to the end.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.active().sync_data()?;
        let end = self.log_end_offset();
        self.mark_flushed(end);
        Ok(())
    }

    fn flush_due(&self, now_ms: i64) -> bool {
        self.config.relaxed_flush()
            && (self.unflushed_records >= self.config.flush_messages
                || self
                    .first_unflushed_ms
                    .is_some_and(|first| now_ms.saturating_sub(first) >= self.config.flush_ms))
    }

    /// With the relaxed flush policy, flushes if `flush.messages` or `flush.ms` says so. Returns
    /// whether it flushed.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<bool, LogError> {
        if self.flush_due(now_ms) {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Replaces the configuration; it applies from the next operation on.
    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The current configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Statistics about what [`Log::open`] re-read and repaired.
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.recovery_stats
    }

    /// The idempotent-producer state: what a replay of the log's batch headers gives.
    pub fn producer_state(&self) -> &ProducerState {
        &self.producer_state
    }

    /// KIP-890: the guard a leader asks the coordinator to back before appending the first
    /// transactional batch of `(producer_id, producer_epoch)` here, or `None` when that
    /// producer's transaction is already open on this partition at that epoch (its batches
    /// need no verification). See [`verification`].
    pub fn verification_guard(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Option<VerificationGuard> {
        if verification::has_ongoing_transaction(&self.producer_state, producer_id, producer_epoch)
        {
            return None;
        }
        Some(self.guards.guard(producer_id, producer_epoch))
    }

    /// Whether `(producer_id, producer_epoch)` has an open transaction on this partition.
    pub fn has_ongoing_transaction(&self, producer_id: i64, producer_epoch: i16) -> bool {
        verification::has_ongoing_transaction(&self.producer_state, producer_id, producer_epoch)
    }
}

/// Lists the segment base offsets of `dir` (ascending) and removes leftovers: temporary files,
/// and index files whose `.log` file is gone.
fn scan_dir(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == compaction::STAGING_DIR {
            // An interrupted compaction: the old segments are still in place.
            std::fs::remove_dir_all(entry.path()).map_err(|e| LogError::io(entry.path(), e))?;
        } else if name.ends_with(".tmp") {
            // An interrupted checkpoint write: the old file is still in place.
            remove_if_exists(&entry.path())?;
        } else if let Some(base) = parse_offset_file_name(name, LOG_SUFFIX) {
            logs.push(base);
        } else if parse_offset_file_name(name, INDEX_SUFFIX)
            .or_else(|| parse_offset_file_name(name, TIME_INDEX_SUFFIX))
            .or_else(|| parse_offset_file_name(name, TXN_INDEX_SUFFIX))
            .is_some()
        {
            indexes.push(entry.path());
        }
    }
    logs.sort_unstable();
    for path in indexes {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if !stem
            .parse::<i64>()
            .is_ok_and(|base| logs.binary_search(&base).is_ok())
        {
            remove_if_exists(&path)?;
        }
    }
    Ok(logs)
}

/// A suffix that makes the name of a directory being deleted unique within this process run.
pub(crate) fn delete_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:04x}-delete", std::process::id(), n)
}

mod compaction;
mod legacy;
mod maintenance;
mod replication;
mod transactions;
pub mod verification;

pub use compaction::{Compacted, CompactionPlan, CompactionStats, STAGING_DIR};
pub use replication::TruncationPoint;
pub use verification::{Verification, VerificationGuard};
