//! Log compaction (`cleanup.policy=compact`): keep only the latest record of each key.
//!
//! Compaction runs in three steps so that appends and fetches wait only for the first and the
//! last, which are short:
//!
//! 1. [`Log::compaction_plan`] (under the log's mutex) picks the cleanable segments — every
//!    segment before the active one whose data is durable, below the high watermark and older
//!    than `min.compaction.lag.ms` — and decides whether the dirty part (the segments not yet
//!    cleaned) is at least `min.cleanable.dirty.ratio` of them.
//! 2. [`CompactionPlan::run`] (no lock) reads the dirty segments into an [`OffsetMap`] of each
//!    key's latest offset, then writes a filtered copy of every cleanable segment the map covers,
//!    with its indexes, as a sealed segment in the staging directory `compaction.tmp/` of the
//!    partition. Segments are immutable below the active one, so this reads what step 1 saw.
//! 3. [`Log::install_compaction`] (under the mutex) swaps each copy in: it removes the old
//!    segment's indexes, renames the copy's `.log` over the old one (atomic), fsyncs the
//!    directory, then moves the copy's indexes in, and opens the result (indexes and tail are
//!    checked, nothing is re-read). A segment left empty is deleted instead, unless it is the
//!    first. A crash before the `.log` rename leaves the staging directory, which the next open
//!    deletes; after it, missing indexes make the open rebuild them. Open readers keep the old
//!    file through their handle.
//!
//! What stays (Kafka's rules, plus one of Strom's: a batch whose records do not decode is kept
//! whole, with a warning, since the produce path validates batches but not their records): a record whose key's latest offset is its own or beyond the map
//! (keys only in the clean part keep their records); a tombstone only while its segment's largest
//! timestamp is within `delete.retention.ms`; no record without a key; no record of an aborted
//! transaction, which does not count as any key's latest either (so an aborted record never
//! removes the record it would have replaced; nothing at or past the last stable offset is
//! cleaned, for the same reason); and the batches the idempotent-producer state remembers (the
//! last five of each producer), emptied if nothing in them stays, so sequence checks and
//! duplicate detection survive. Offsets never change.
//!
//! A transaction marker (control batch) stays until no batch of its transaction is left in the
//! log and its segment is older than `delete.retention.ms` (Kafka's rule for obsolete markers:
//! a reader that saw the transaction's records while they existed still gets to see how it
//! ended). "No batch left" is judged on the log as step 1 saw it, so a marker goes one pass
//! after the last of its records: a crash between two segments' installs, or a segment that
//! changed under the pass, can never leave a transaction's records without their marker (which
//! would hold the last stable offset forever after a reload). An ABORT marker's entry leaves
//! the aborted-transaction index, durably, before the segment without the marker is installed:
//! a read_committed reader told of an abort whose marker it never meets would skip the
//! producer's later committed batches.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Log;
use crate::batch::{BatchHeader, BATCH_HEADER_LEN};
use crate::checkpoint::fsync_dir;
use crate::cleaner::{filter_batch, Filtered, OffsetMap};
use crate::config::LogConfig;
use crate::error::LogError;
use crate::index::remove_if_exists;
use crate::segment::{segment_file, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

/// The directory, inside a partition's, where compacted copies of segments are built.
pub const STAGING_DIR: &str = "compaction.tmp";

/// Largest memory the offset map may take before the dirty range is cut short (Kafka's
/// `log.cleaner.dedupe.buffer.size` default is 128 MiB for all cleaner threads).
const MAX_MAP_BYTES: usize = 64 << 20;

/// What one compaction pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Segments rewritten.
    pub segments_cleaned: usize,
    /// Bytes of those segments before.
    pub bytes_before: u64,
    /// Bytes of those segments after.
    pub bytes_after: u64,
    /// Distinct keys in the offset map.
    pub keys: usize,
}

/// A segment as step 1 saw it.
#[derive(Debug, Clone)]
struct SegmentView {
    base_offset: i64,
    next_offset: i64,
    size: u64,
    max_timestamp: i64,
    file: Arc<File>,
    path: PathBuf,
}

/// The work step 2 does without the log's mutex.
#[derive(Debug)]
pub struct CompactionPlan {
    dir: PathBuf,
    config: LogConfig,
    /// The cleanable segments, oldest first.
    segments: Vec<SegmentView>,
    /// Index in `segments` of the first segment not cleaned before.
    first_dirty: usize,
    /// Tombstones in segments whose largest timestamp is below this are removed.
    delete_horizon_ms: i64,
    /// `(producer id, last offset)` of the batches the producer state remembers: they are kept,
    /// even emptied.
    producer_batches: HashSet<(i64, i64)>,
    /// Producer id → `(first offset, ABORT marker offset)` of its aborted transactions: their
    /// records never count as a key's latest.
    aborted: HashMap<i64, Vec<(i64, i64)>>,
}

/// Transactions seen so far in one pass over the cleanable segments, oldest first: which
/// producers have data batches not yet followed by their marker.
#[derive(Debug, Default)]
struct OpenTransactions {
    /// Producers with a transactional data batch since their last marker.
    with_data: HashSet<i64>,
}

impl OpenTransactions {
    fn data(&mut self, producer_id: i64) {
        self.with_data.insert(producer_id);
    }

    /// A marker of `producer_id`: true if no batch of its transaction was left.
    fn marker_is_alone(&mut self, producer_id: i64) -> bool {
        !self.with_data.remove(&producer_id)
    }
}

/// One segment's compacted copy.
#[derive(Debug)]
struct StagedCopy {
    base_offset: i64,
    /// The segment's size when step 1 saw it.
    size_seen: u64,
    /// The copy's size.
    size: u64,
    /// `(producer id, offset)` of the markers the copy no longer holds.
    removed_markers: Vec<(i64, i64)>,
}

/// What step 2 wrote, for step 3 to install.
#[derive(Debug)]
pub struct Compacted {
    /// Per rewritten segment, staged in [`STAGING_DIR`] under its own base offset.
    copies: Vec<StagedCopy>,
    /// The offset up to which the log is now clean.
    cleaned_up_to: i64,
    keys: usize,
}

impl Log {
    /// Step 1: the compaction to run now, if the log is compacted and dirty enough.
    pub fn compaction_plan(&self, now_ms: i64) -> Option<CompactionPlan> {
        if !self.config.compact {
            return None;
        }
        // Nothing at or past the last stable offset is cleaned (Kafka's first uncleanable
        // offset): an open transaction may still abort, and its records must not have replaced
        // the ones before them by then.
        let durable_end = self
            .high_watermark
            .min(self.recovery_point)
            .min(self.last_stable_offset());
        let lag = self.config.min_compaction_lag_ms.max(0);
        let active = self.segments.len() - 1;
        let cleanable: Vec<SegmentView> = self.segments[..active]
            .iter()
            .take_while(|s| {
                s.next_offset() <= durable_end
                    && now_ms.saturating_sub(s.largest_timestamp()) >= lag
            })
            .map(|s| {
                Some(SegmentView {
                    base_offset: s.base_offset(),
                    next_offset: s.next_offset(),
                    size: s.size(),
                    max_timestamp: s.max_timestamp().0,
                    // A file that cannot be opened now: no plan this pass.
                    file: s.file().ok()?,
                    path: s.log_path().to_path_buf(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let first_dirty = cleanable
            .iter()
            .position(|s| s.next_offset > self.cleaned_up_to && s.size > 0)?;
        let total: u64 = cleanable.iter().map(|s| s.size).sum();
        let dirty: u64 = cleanable[first_dirty..].iter().map(|s| s.size).sum();
        if total == 0 || (dirty as f64) < self.config.min_cleanable_dirty_ratio * total as f64 {
            return None;
        }
        let producer_batches = self.producer_state.remembered_batches().collect();
        let mut aborted: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for entry in self.txn_indexes.entries() {
            aborted
                .entry(entry.producer_id)
                .or_default()
                .push((entry.first_offset, entry.last_offset));
        }
        Some(CompactionPlan {
            dir: self.dir.clone(),
            config: self.config.clone(),
            segments: cleanable,
            first_dirty,
            delete_horizon_ms: now_ms.saturating_sub(self.config.delete_retention_ms),
            producer_batches,
            aborted,
        })
    }

    /// Step 3: swaps the compacted copies in. A segment that changed since step 1 (retention or
    /// DeleteRecords removed it) keeps its old file and its copy is deleted.
    pub fn install_compaction(&mut self, done: Compacted) -> Result<CompactionStats, LogError> {
        let mut stats = CompactionStats {
            keys: done.keys,
            ..CompactionStats::default()
        };
        let staging = self.dir.join(STAGING_DIR);
        let staged = |base: i64, suffix: &str| segment_file(&staging, base, suffix);
        let remove_staged = |base: i64| -> Result<(), LogError> {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                remove_if_exists(&staged(base, suffix))?;
            }
            Ok(())
        };
        let mut all_installed = true;
        let mut changed = false;
        for copy in done.copies {
            let (base, size_seen, copy_size) = (copy.base_offset, copy.size_seen, copy.size);
            let active = self.segments.len() - 1;
            let Some(i) = self.segments[..active]
                .iter()
                .position(|s| s.base_offset() == base && s.size() == size_seen)
            else {
                remove_staged(base)?;
                all_installed = false;
                continue;
            };
            stats.segments_cleaned += 1;
            stats.bytes_before += size_seen;
            stats.bytes_after += copy_size;
            changed = true;
            // The index first: an entry whose marker is gone misleads readers, a marker
            // without an entry (after a crash here) is ignored by them (no record of its
            // transaction is left).
            self.txn_indexes
                .remove_markers(&self.dir, base, &copy.removed_markers)?;
            if copy_size == 0 && i > 0 {
                // Nothing of the segment is left: drop it rather than keep three empty files.
                // (The first segment stays: it anchors the log start offset.)
                self.segments[i].delete_files(&self.dir)?;
                self.segments.remove(i);
                self.txn_indexes.forget_segments(base, base + 1);
                remove_staged(base)?;
                continue;
            }
            // Old indexes out, new .log in, durably, before the new indexes appear: a crash
            // never pairs a .log with indexes of the other version.
            for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                remove_if_exists(&segment_file(&self.dir, base, suffix))?;
            }
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                let target = segment_file(&self.dir, base, suffix);
                std::fs::rename(staged(base, suffix), &target)
                    .map_err(|e| LogError::io(&target, e))?;
                if suffix == LOG_SUFFIX {
                    fsync_dir(&self.dir)?;
                }
            }
            let (mut segment, needs_recovery) =
                Segment::open(&self.dir, base, &self.config, 0, true)?;
            if needs_recovery {
                // Only if the staged indexes did not survive the move intact.
                tracing::warn!(segment = base, dir = %self.dir.display(), "rebuilding the indexes of a compacted segment");
                let min_offset = if i == 0 {
                    base
                } else {
                    self.segments[i - 1].next_offset()
                };
                let next_base = Some(self.segments[i + 1].base_offset());
                segment.recover(&self.config, min_offset, next_base)?;
                segment.seal()?;
            }
            self.segments[i] = segment;
        }
        if changed {
            fsync_dir(&self.dir)?;
        }
        let _ = std::fs::remove_dir(&staging);
        if all_installed {
            self.cleaned_up_to = self.cleaned_up_to.max(done.cleaned_up_to);
        }
        self.check_invariants();
        Ok(stats)
    }

    /// Runs all three steps on a log the caller holds exclusively (tests, tools).
    pub fn compact_now(&mut self, now_ms: i64) -> Result<Option<CompactionStats>, LogError> {
        let Some(plan) = self.compaction_plan(now_ms) else {
            return Ok(None);
        };
        let done = plan.run()?;
        self.install_compaction(done).map(Some)
    }

    /// The offset below which the log is compacted (Kafka's cleaner checkpoint).
    pub fn cleaned_up_to(&self) -> i64 {
        self.cleaned_up_to
    }

    /// Restores [`Log::cleaned_up_to`] from `cleaner-offset-checkpoint` after opening, clamped
    /// into the log: a pass is never skipped for data the log does not hold.
    pub fn restore_cleaned_up_to(&mut self, offset: i64) {
        self.cleaned_up_to = offset.clamp(self.log_start_offset, self.log_end_offset());
    }
}

impl CompactionPlan {
    /// Step 2: builds the offset map and writes the compacted copies.
    pub fn run(self) -> Result<Compacted, LogError> {
        let mut map = OffsetMap::default();
        let mut mapped_end = self.first_dirty;
        for segment in &self.segments[self.first_dirty..] {
            for_each_stored_batch(segment, |header, batch| {
                if self.is_aborted(header) {
                    // Kafka's cleaner skips aborted batches in its map: an aborted record
                    // must not remove the committed one it would have replaced.
                    return Ok(());
                }
                if let Err(e) = map.add_batch(header, batch) {
                    undecodable(segment, header, &e.to_string());
                }
                Ok(())
            })?;
            mapped_end += 1;
            if map.bytes() >= MAX_MAP_BYTES {
                break;
            }
        }
        let cleaned_up_to = self.segments[mapped_end - 1].next_offset;
        let staging = self.dir.join(STAGING_DIR);
        std::fs::create_dir_all(&staging).map_err(|e| LogError::io(&staging, e))?;
        let mut copies = Vec::new();
        let mut open = OpenTransactions::default();
        for segment in &self.segments[..mapped_end] {
            match self.clean_segment(segment, &map, &mut open, &staging) {
                Ok(Some(copy)) => copies.push(copy),
                Ok(None) => {}
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&staging);
                    return Err(e);
                }
            }
        }
        Ok(Compacted {
            copies,
            cleaned_up_to,
            keys: map.len(),
        })
    }

    /// True for a data batch of an aborted transaction (its producer's ABORT marker came after
    /// it, before any other marker of that producer).
    fn is_aborted(&self, header: &BatchHeader) -> bool {
        header.is_transactional()
            && !header.is_control()
            && self.aborted.get(&header.producer_id).is_some_and(|ranges| {
                ranges.iter().any(|&(first, marker)| {
                    first <= header.base_offset && header.base_offset < marker
                })
            })
    }

    /// Writes the compacted copy of one segment into `staging` as a sealed segment (data and
    /// indexes synced); `None` (and no files) if nothing in it would change. `open` carries the
    /// transactions across segments.
    fn clean_segment(
        &self,
        segment: &SegmentView,
        map: &OffsetMap,
        open: &mut OpenTransactions,
        staging: &Path,
    ) -> Result<Option<StagedCopy>, LogError> {
        let mut copy = Segment::create(staging, segment.base_offset, &self.config)?;
        // The data goes through a buffer (compacted batches are small); the segment indexes it.
        let path = copy.log_path().to_path_buf();
        let mut out = std::io::BufWriter::with_capacity(
            1 << 20,
            OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| LogError::io(&path, e))?,
        );
        let mut changed = false;
        let mut written = 0u64;
        let tombstones_expire = segment.max_timestamp < self.delete_horizon_ms;
        let mut removed_markers = Vec::new();
        for_each_stored_batch(segment, |header, batch| {
            let remembered = header.producer_id >= 0
                && self
                    .producer_batches
                    .contains(&(header.producer_id, header.last_offset()));
            if header.is_control() {
                if open.marker_is_alone(header.producer_id) && tombstones_expire && !remembered {
                    // Only an ABORT marker has an index entry; a COMMIT's matches none.
                    changed = true;
                    removed_markers.push((header.producer_id, header.last_offset()));
                    return Ok(());
                }
            } else if header.is_transactional() {
                open.data(header.producer_id);
            }
            // An aborted transaction's records are removed, as Kafka's cleaner does (its
            // markers stay: read_committed consumers' aborted-transaction lists still name
            // the range, now empty).
            let aborted = self.is_aborted(header);
            let filtered = filter_batch(header, batch, remembered, |record| {
                let Some(key) = record.key else {
                    return false;
                };
                if aborted {
                    return false;
                }
                let latest = map.latest(key).is_none_or(|latest| record.offset >= latest);
                latest && !(record.value.is_none() && tombstones_expire)
            })
            .unwrap_or_else(|e| {
                undecodable(segment, header, &e.to_string());
                Filtered::Unchanged
            });
            let (bytes, kept_header): (&[u8], BatchHeader) = match &filtered {
                Filtered::Unchanged => (batch, *header),
                Filtered::Rewritten(bytes) => {
                    changed = true;
                    let rewritten =
                        BatchHeader::parse(bytes).expect("a rewritten batch has a header");
                    (bytes, rewritten)
                }
                Filtered::Removed => {
                    changed = true;
                    return Ok(());
                }
            };
            out.write_all(bytes).map_err(|e| LogError::io(&path, e))?;
            copy.record_written(&kept_header, written, &self.config)?;
            written += bytes.len() as u64;
            Ok(())
        })?;
        out.into_inner()
            .map_err(|e| LogError::io(&path, e.into_error()))?;
        if !changed {
            copy.delete_files(staging)?;
            return Ok(None);
        }
        copy.seal()?;
        Ok(Some(StagedCopy {
            base_offset: segment.base_offset,
            size_seen: segment.size,
            size: written,
            removed_markers,
        }))
    }
}

/// Calls `visit(header, whole batch)` for every batch of the segment as step 1 saw it.
fn for_each_stored_batch(
    segment: &SegmentView,
    mut visit: impl FnMut(&BatchHeader, &[u8]) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut position = 0u64;
    let mut buffer = Vec::new();
    while position < segment.size {
        let mut head = [0u8; BATCH_HEADER_LEN];
        segment
            .file
            .read_exact_at(&mut head, position)
            .map_err(|e| LogError::io(&segment.path, e))?;
        let header = BatchHeader::parse(&head).map_err(|e| LogError::Corrupt {
            path: segment.path.clone(),
            reason: format!("at byte {position}: {e}"),
        })?;
        let total = header.total_len();
        if total < BATCH_HEADER_LEN || position + total as u64 > segment.size {
            return Err(LogError::Corrupt {
                path: segment.path.clone(),
                reason: format!("at byte {position}: batch length {total} past the segment end"),
            });
        }
        buffer.resize(total, 0);
        segment
            .file
            .read_exact_at(&mut buffer, position)
            .map_err(|e| LogError::io(&segment.path, e))?;
        visit(&header, &buffer)?;
        position += total as u64;
    }
    Ok(())
}

/// A batch whose CRC was right when it was produced but whose records do not decode (the
/// produce path checks batches, not records): compaction keeps it as it is and says so.
fn undecodable(segment: &SegmentView, header: &BatchHeader, reason: &str) {
    tracing::warn!(segment = %segment.path.display(), offset = header.base_offset,
        "compaction keeps a batch whose records do not decode: {reason}");
}
