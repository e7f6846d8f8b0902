//! One segment of a partition log: the `.log` file of record batches and its two sparse indexes.
//!
//! # On-disk format
//!
//! A segment is named by its base offset, the offset of its first batch, zero-padded to 20
//! digits:
//!
//! - `<base_offset:020>.log` is a sequence of whole v2 record batches exactly as the producer sent
//!   them, except that `baseOffset` and `partitionLeaderEpoch` were assigned by the leader (and,
//!   for LogAppendTime topics or a wrong `maxTimestamp`, `maxTimestamp` and the CRC); a
//!   follower stores the leader's bytes unchanged. There is no file header, no padding
//!   and no preallocation: the file's length is the end of the last batch. Offsets strictly
//!   increase from batch to batch (with gaps where compaction removed batches); the first
//!   batch's base offset is at or above the segment's base offset and every offset is below
//!   the next segment's base offset.
//! - `<base_offset:020>.index` holds 8-byte entries `(relative offset u32, position u32)`; see
//!   [`crate::index`].
//! - `<base_offset:020>.timeindex` holds 12-byte entries `(timestamp i64, relative offset u32)`;
//!   see [`crate::time_index`].
//!
//! # Assumptions about the disk
//!
//! - `fdatasync` on a file returns only once every byte written to it before the call, and the
//!   file's length, are durable. Nothing is assumed about data written after the last
//!   `fdatasync`: after a power loss the tail of a file may hold any prefix of those writes, or
//!   a length that covers blocks whose content never reached the disk (read back as zeros or as
//!   stale bytes). That is what a *torn write* looks like here: a last batch cut short, a length
//!   field pointing past the end of the file, zeros, or bytes whose CRC-32C does not match.
//! - Creating or renaming a file is durable only once its directory is fsynced; the log does that
//!   after creating segment files and checkpoint files.
//! - Bytes that were made durable are read back unchanged; a CRC mismatch below the recovery
//!   point is reported as corruption rather than silently repaired... except that recovery treats
//!   the first bad batch of a segment it re-reads as the end of the log, as Kafka does.
//! - A write of `n` bytes at the end of the file either fails or lands entirely in the page cache;
//!   the in-memory size only advances after it succeeded, and readers never look past it.
//!
//! Indexes are hints that can always be rebuilt from the `.log` file; the active segment's
//! entries are kept in memory and written and synced when the segment stops being active (or is
//! closed cleanly), and indexes are rebuilt when they fail a sanity check at open or belong to a
//! segment that recovery re-reads. Opening a segment reads only each index file's length and last
//! entry (every entry is checked only for the segments at or after the recovery point); the
//! entries are loaded by the first lookup that needs them and may be dropped again under the
//! index memory budget ([`crate::open_files`]). An index that fails its check when it is loaded
//! later is ignored with a warning: lookups in that segment then scan from its first batch.
//!
//! # Open files
//!
//! The three files are reached through the process's open-file budget
//! ([`crate::open_files`]): a handle is opened on first use and may be closed when other files
//! need the room, then reopened on demand. An index file's handle is opened only to be written
//! and synced at seal and closed right after; a lazy load reads the file with a short-lived
//! descriptor of its own.
//! A `FileSlice` holds its own `Arc<File>`, so a range handed to a reader stays readable after
//! the cached handle is closed.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{validate_stored_batch, BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};
use crate::config::LogConfig;
use crate::error::LogError;
use crate::index::{remove_if_exists, OffsetIndex};
use crate::open_files::CachedFile;
use crate::time_index::TimeIndex;

/// File name suffix of segment data files.
pub const LOG_SUFFIX: &str = "log";
/// File name suffix of offset index files.
pub const INDEX_SUFFIX: &str = "index";
/// File name suffix of time index files.
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
/// File name suffix of aborted-transaction index files (`crate::txn_index`).
pub const TXN_INDEX_SUFFIX: &str = "txnindex";

/// Kafka's limit on the distance between a segment's base offset and any offset in it.
pub(crate) const MAX_RELATIVE_OFFSET: i64 = i32::MAX as i64;
/// Kafka's limit on a segment's size (positions are stored as u32, Kafka treats them as i32).
const MAX_SEGMENT_SIZE: u64 = i32::MAX as u64;

/// The path of the file of segment `base_offset` with the given suffix.
pub fn segment_file(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// The base offset encoded in a file name `<20 digits>.<suffix>`, if the name has that shape.
pub fn parse_offset_file_name(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// What re-reading a segment found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecoveryOutcome {
    /// Bytes read and checked.
    pub(crate) bytes_read: u64,
    /// Bytes cut off the end because they did not form valid batches.
    pub(crate) bytes_truncated: u64,
}

/// One segment: its open `.log` file, its in-memory indexes and what it knows about its batches.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: CachedFile,
    /// Invariant: bytes `0..size` of the file are whole batches that were checked before they
    /// were written (or re-read by recovery); nothing at or past `size` is ever read.
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_index_entry: u64,
    /// The offset after the last batch; the base offset when the segment is empty.
    next_offset: i64,
    /// Largest batch `maxTimestamp` seen, -1 if none.
    max_timestamp: i64,
    /// Last offset of the batch that first reached `max_timestamp`.
    offset_of_max_timestamp: i64,
    /// `now_ms` of the first append (or of opening a non-empty segment); `segment.ms` counts from
    /// here.
    rolling_base_ms: Option<i64>,
}

fn max_index_entries(config: &LogConfig) -> usize {
    (config.segment_index_bytes as usize / 8).max(1)
}

impl Segment {
    /// Creates an empty segment at `base_offset`, replacing leftover files of that name.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<Segment, LogError> {
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(|e| LogError::io(&log_path, e))?;
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&segment_file(dir, base_offset, suffix))?;
        }
        let index_path = segment_file(dir, base_offset, INDEX_SUFFIX);
        let offset_index = OffsetIndex::create(&index_path, base_offset, max_index_entries(config));
        let time_path = segment_file(dir, base_offset, TIME_INDEX_SUFFIX);
        let time_index = TimeIndex::create(&time_path, base_offset);
        Ok(Segment {
            base_offset,
            file: CachedFile::opened(&log_path, file, false),
            log_path,
            size: 0,
            offset_index,
            time_index,
            bytes_since_index_entry: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            rolling_base_ms: None,
        })
    }

    /// Opens an existing segment without re-reading it: reads each index file's length and last
    /// entry (not its entries, which the first lookup loads) and scans the batch headers after
    /// the last offset index entry to find the segment's end. With `check_indexes` it also reads
    /// and checks every index entry (the segments at or after the recovery point: the active
    /// one after a clean shutdown), as Kafka sanity-checks those. Returns the segment and whether
    /// it needs [`Segment::recover`] (an index file is missing or failed a check, or the tail
    /// scan found something that is not a batch).
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        check_indexes: bool,
    ) -> Result<(Segment, bool), LogError> {
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(|e| LogError::io(&log_path, e))?;
        let size = file
            .metadata()
            .map_err(|e| LogError::io(&log_path, e))?
            .len();
        let index_path = segment_file(dir, base_offset, INDEX_SUFFIX);
        let time_path = segment_file(dir, base_offset, TIME_INDEX_SUFFIX);
        let (offset_index, index_existed, mut index_sane) =
            OffsetIndex::open(&index_path, base_offset, max_index_entries(config), size)?;
        let mut segment = Segment {
            base_offset,
            file: CachedFile::opened(&log_path, file, false),
            log_path,
            size,
            offset_index,
            // Replaced below once the end offset is known.
            time_index: TimeIndex::create(&time_path, base_offset),
            bytes_since_index_entry: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            rolling_base_ms: (size > 0).then_some(now_ms),
        };
        let tail_ok = segment.scan_tail()?;
        let (time_index, time_index_existed, mut time_sane) =
            TimeIndex::open(&time_path, base_offset, Some(segment.next_offset))?;
        segment.time_index = time_index;
        if check_indexes && index_sane && time_sane && tail_ok {
            index_sane = segment.offset_index.check_all(size)?;
            time_sane = segment.time_index.check_all(Some(segment.next_offset))?;
        }
        if let Some((timestamp, offset)) = segment.time_index.last() {
            segment.max_timestamp = timestamp;
            segment.offset_of_max_timestamp = offset;
        }
        let indexes_present = size == 0 || (index_existed && time_index_existed);
        // A sealed non-empty segment always has a time index entry (its largest timestamp).
        let time_index_complete = size == 0 || segment.time_index.last().is_some();
        let needs_recovery =
            !(index_sane && time_sane && tail_ok && indexes_present && time_index_complete);
        Ok((segment, needs_recovery))
    }

    /// Walks batch headers from the last offset index entry to the end of the file, checking
    /// lengths and offsets (not CRCs), and sets `next_offset`. Returns false if something there is
    /// not a well-formed batch.
    fn scan_tail(&mut self) -> Result<bool, LogError> {
        let (mut expected, mut position) =
            self.offset_index.last().unwrap_or((self.base_offset, 0));
        let mut first = self.offset_index.last().is_some();
        self.next_offset = self.base_offset;
        let mut since_entry = 0;
        while position < self.size {
            let Some(header) = self.read_header(position)? else {
                return Ok(false);
            };
            let total = header.total_len() as u64;
            let exact = !first || header.base_offset == expected;
            if header.magic != 2
                || total < BATCH_HEADER_LEN as u64
                || position + total > self.size
                || header.base_offset < expected
                || !exact
                || header.last_offset_delta < 0
            {
                return Ok(false);
            }
            first = false;
            expected = header.last_offset() + 1;
            self.next_offset = expected;
            position += total;
            since_entry += total;
        }
        self.bytes_since_index_entry = since_entry;
        Ok(true)
    }

    /// Re-reads the whole segment batch by batch (length, magic, CRC-32C, increasing offsets),
    /// rebuilds both indexes, and truncates the file at the first batch that fails. Offsets must
    /// be at or above `min_offset` (the previous segment's end) and below `end_bound` (the next
    /// segment's base offset, if any).
    pub(crate) fn recover(
        &mut self,
        config: &LogConfig,
        min_offset: i64,
        end_bound: Option<i64>,
    ) -> Result<RecoveryOutcome, LogError> {
        let file = self.file.get()?;
        let file_len = file
            .metadata()
            .map_err(|e| LogError::io(&self.log_path, e))?
            .len();
        self.offset_index.reset()?;
        self.time_index.reset()?;
        self.size = 0;
        self.bytes_since_index_entry = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        let mut expected = min_offset.max(self.base_offset);
        let mut position = 0u64;
        let mut buffer = Vec::new();
        while position < file_len {
            let Some(header) = self.read_header_within(position, file_len)? else {
                break;
            };
            let total = header.total_len();
            if header.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32
                || position + total as u64 > file_len
                || header.base_offset < expected
                || header.last_offset_delta < 0
                || end_bound.is_some_and(|bound| header.last_offset() >= bound)
                || header.last_offset() - self.base_offset > MAX_RELATIVE_OFFSET
                || position + total as u64 > MAX_SEGMENT_SIZE
            {
                break;
            }
            buffer.resize(total, 0);
            file.read_exact_at(&mut buffer, position)
                .map_err(|e| LogError::io(&self.log_path, e))?;
            if validate_stored_batch(&buffer, 0).is_err() {
                break;
            }
            self.index_batch(&header, position, config)?;
            expected = header.last_offset() + 1;
            position += total as u64;
            self.size = position;
        }
        if position < file_len {
            tracing::warn!(
                segment = %self.log_path.display(),
                valid_bytes = position,
                truncated_bytes = file_len - position,
                "truncating torn or corrupt segment tail"
            );
            file.set_len(position)
                .map_err(|e| LogError::io(&self.log_path, e))?;
        }
        self.offset_index.trim_and_sync()?;
        self.time_index.trim_and_sync()?;
        file.sync_data()
            .map_err(|e| LogError::io(&self.log_path, e))?;
        Ok(RecoveryOutcome {
            bytes_read: position,
            bytes_truncated: file_len - position,
        })
    }

    /// Updates the in-memory state and the sparse indexes for a batch written at `position`.
    fn index_batch(
        &mut self,
        header: &BatchHeader,
        position: u64,
        config: &LogConfig,
    ) -> Result<(), LogError> {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        if self.bytes_since_index_entry > u64::from(config.index_interval_bytes) {
            self.offset_index.append(header.base_offset, position)?;
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp)?;
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += header.total_len() as u64;
        self.next_offset = header.last_offset() + 1;
        Ok(())
    }

    /// Whether a batch of `batch_len` bytes ending at `last_offset` must go to a new segment.
    pub(crate) fn should_roll(
        &self,
        batch_len: usize,
        last_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let new_size = self.size + batch_len as u64;
        new_size > config.segment_bytes
            || new_size > MAX_SEGMENT_SIZE
            || self
                .rolling_base_ms
                .is_some_and(|base| now_ms.saturating_sub(base) > config.segment_ms)
            || self.offset_index.is_full()
            || last_offset - self.base_offset > MAX_RELATIVE_OFFSET
    }

    /// Appends one validated batch (offsets already assigned) with a single write.
    pub(crate) fn append(
        &mut self,
        header: &BatchHeader,
        head: &[u8],
        tail: &[u8],
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let len = head.len() + tail.len();
        assert_eq!(header.total_len(), len, "header/bytes length");
        assert!(
            header.base_offset >= self.next_offset,
            "batch offset {} below segment end {}",
            header.base_offset,
            self.next_offset
        );
        let position = self.size;
        // Two writes (the rewritten header, then the records from the request's buffer) cost
        // less than copying the batch; a crash between them leaves a torn tail, which recovery
        // truncates like any other.
        let file = self.file.get()?;
        file.write_all_at(head, position)
            .and_then(|()| file.write_all_at(tail, position + head.len() as u64))
            .map_err(|e| LogError::io(&self.log_path, e))?;
        self.index_batch(header, position, config)?;
        self.size += len as u64;
        self.rolling_base_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Replication's truncation: cuts every batch whose last offset is at or above `offset` off
    /// the end of the file (fsynced, so the cut is durable before anything is written after
    /// it), drops their index entries and recomputes the segment's end offset and largest
    /// timestamp. Returns the bytes removed (0 if no batch reaches `offset`).
    ///
    /// The file is cut in place, so a reader holding a [`crate::FileSlice`] over the removed
    /// range gets a short read, never other bytes: the caller starts a new segment for what
    /// comes next instead of writing over the cut range (see `Log::truncate_to`).
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<u64, LogError> {
        let Some((position, first_removed)) = self.find_batch(offset)? else {
            return Ok(0);
        };
        let removed = self.size - position;
        let file = self.file.get()?;
        file.set_len(position)
            .and_then(|()| file.sync_data())
            .map_err(|e| LogError::io(&self.log_path, e))?;
        self.size = position;
        self.offset_index
            .truncate_to_offset(first_removed.base_offset);
        self.time_index
            .truncate_to_offset(first_removed.base_offset);
        // The remaining time index entries hold the largest timestamp up to the last remaining
        // offset index entry; only the batches from that entry on need their headers read.
        let (_, scan_from) = self.offset_index.last().unwrap_or((self.base_offset, 0));
        let (mut max_timestamp, mut offset_of_max) =
            self.time_index.last().unwrap_or((-1, self.base_offset));
        let mut next_offset = self.base_offset;
        self.for_each_batch(scan_from, |_, header| {
            if header.max_timestamp > max_timestamp {
                max_timestamp = header.max_timestamp;
                offset_of_max = header.last_offset();
            }
            next_offset = header.last_offset() + 1;
            true
        })?;
        self.next_offset = next_offset;
        self.max_timestamp = max_timestamp;
        self.offset_of_max_timestamp = offset_of_max;
        self.bytes_since_index_entry = position - scan_from;
        Ok(removed)
    }

    /// Indexes a batch that was written to this segment's file through another handle (compaction
    /// writes its copies through a buffer) at the end, as [`Segment::append`] would.
    pub(crate) fn record_written(
        &mut self,
        header: &BatchHeader,
        position: u64,
        config: &LogConfig,
    ) -> Result<(), LogError> {
        assert_eq!(position, self.size, "batches are recorded in order");
        self.index_batch(header, position, config)?;
        self.size += header.total_len() as u64;
        Ok(())
    }

    /// Reads the batch header at `position`, or `None` at the end of the segment. Fewer than a
    /// header's bytes before the end is corruption.
    pub(crate) fn read_header(&self, position: u64) -> Result<Option<BatchHeader>, LogError> {
        self.read_header_within(position, self.size)
    }

    fn read_header_within(&self, position: u64, end: u64) -> Result<Option<BatchHeader>, LogError> {
        if position + BATCH_HEADER_LEN as u64 > end {
            return Ok(None);
        }
        let mut buffer = [0u8; BATCH_HEADER_LEN];
        self.file
            .get()?
            .read_exact_at(&mut buffer, position)
            .map_err(|e| LogError::io(&self.log_path, e))?;
        Ok(Some(BatchHeader::parse(&buffer).expect("61 bytes")))
    }

    /// A header read below `size` that makes no sense means the file changed under us.
    fn corrupt(&self, position: u64, what: &str) -> LogError {
        LogError::Corrupt {
            path: self.log_path.clone(),
            reason: format!("at byte {position}: {what}"),
        }
    }

    /// Calls `visit(position, header)` for each batch from `position` on, until it returns false.
    pub(crate) fn for_each_batch(
        &self,
        mut position: u64,
        mut visit: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<(), LogError> {
        while position < self.size {
            let header = self
                .read_header(position)?
                .ok_or_else(|| self.corrupt(position, "partial batch header"))?;
            let total = header.total_len() as u64;
            if header.magic != 2 || total < BATCH_HEADER_LEN as u64 || position + total > self.size
            {
                return Err(self.corrupt(position, "not a batch header"));
            }
            if !visit(position, &header) {
                return Ok(());
            }
            position += total;
        }
        Ok(())
    }

    /// The first batch whose last offset is at or above `offset`, with its position.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let (entry_offset, start) = self.offset_index.lookup(offset, self.size)?;
        let mut found = None;
        let mut index_wrong = false;
        self.for_each_batch(start, |position, header| {
            // An index entry names the base offset of the batch at its position; a mismatch
            // means the index file was damaged after it passed the open-time sanity check.
            if position == start && start > 0 && header.base_offset != entry_offset {
                index_wrong = true;
                return false;
            }
            if header.last_offset() >= offset {
                found = Some((position, *header));
                false
            } else {
                true
            }
        })?;
        if index_wrong {
            return Err(self.corrupt(start, "offset index entry does not match the batch there"));
        }
        Ok(found)
    }

    /// The base offset of the first batch that starts at or after file `position`, or the
    /// segment's next offset if none does: the end, in offsets, of a read that stopped at
    /// `position` (a read_committed fetch's upper bound for its aborted transactions). Reads
    /// the headers from the offset index's floor entry for `position` on, at most an index
    /// interval's worth and one batch.
    pub(crate) fn offset_at_or_after_position(&self, position: u64) -> Result<i64, LogError> {
        if position >= self.size {
            return Ok(self.next_offset);
        }
        let (_, start) = self.offset_index.lookup_position(position, self.size)?;
        let mut found = self.next_offset;
        self.for_each_batch(start, |at, header| {
            if at >= position {
                found = header.base_offset;
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    /// The first batch that may hold a record with a timestamp at or above `timestamp`.
    pub(crate) fn find_batch_by_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let start_offset = self.time_index.lookup(timestamp, self.next_offset)?;
        let (_, start) = self.offset_index.lookup(start_offset, self.size)?;
        let mut found = None;
        self.for_each_batch(start, |position, header| {
            if header.max_timestamp >= timestamp {
                found = Some((position, *header));
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    /// Reads `len` bytes at `position`.
    pub(crate) fn read_bytes(&self, position: u64, len: usize) -> Result<Vec<u8>, LogError> {
        assert!(position + len as u64 <= self.size, "read past segment end");
        let mut buffer = vec![0; len];
        self.file
            .get()?
            .read_exact_at(&mut buffer, position)
            .map_err(|e| LogError::io(&self.log_path, e))?;
        Ok(buffer)
    }

    /// Prepares the segment for being inactive: records its largest timestamp in the time index,
    /// syncs the log file and both indexes, and closes the index files (nothing appends to them
    /// any more; lookups use the entries in memory).
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        if self.size > 0 {
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp)?;
        }
        self.sync_all()?;
        self.offset_index.close_file();
        self.time_index.close_file();
        Ok(())
    }

    /// Syncs the log file and both indexes.
    pub(crate) fn sync_all(&mut self) -> Result<(), LogError> {
        self.file
            .get()?
            .sync_data()
            .map_err(|e| LogError::io(&self.log_path, e))?;
        self.offset_index.trim_and_sync()?;
        self.time_index.trim_and_sync()
    }

    /// Syncs only the log file's data. The active segment's indexes need no sync: after a
    /// crash the active segment is always re-read and its indexes rebuilt; they are synced when
    /// the segment is sealed.
    pub(crate) fn sync_data(&self) -> Result<(), LogError> {
        self.file
            .get()?
            .sync_data()
            .map_err(|e| LogError::io(&self.log_path, e))
    }

    /// Clean close: cuts anything a failed write left past `size`, seals and syncs.
    pub(crate) fn close(&mut self) -> Result<(), LogError> {
        self.file
            .get()?
            .set_len(self.size)
            .map_err(|e| LogError::io(&self.log_path, e))?;
        self.seal()
    }

    /// Removes the segment's three files. Readers holding the `.log` file keep reading it.
    pub(crate) fn delete_files(&self, dir: &Path) -> Result<(), LogError> {
        let txn = TXN_INDEX_SUFFIX;
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, txn] {
            remove_if_exists(&segment_file(dir, self.base_offset, suffix))?;
        }
        Ok(())
    }

    /// Offset of the segment's first batch (or of the next append, when empty).
    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// The offset after the last batch.
    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Size of the `.log` file's valid content in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The shared handle of the `.log` file, opened if the budget had closed it.
    pub(crate) fn file(&self) -> Result<Arc<File>, LogError> {
        self.file.get()
    }

    /// Largest batch timestamp and the last offset of that batch; timestamp -1 if none.
    pub(crate) fn max_timestamp(&self) -> (i64, i64) {
        (self.max_timestamp, self.offset_of_max_timestamp)
    }

    /// The segment's age for retention and the compaction lag, as Kafka's
    /// `LogSegment.largestTimestamp`: the largest batch timestamp, or, if no batch carries one
    /// (every `maxTimestamp` is -1: records without timestamps, or batches stored before the
    /// broker computed the max itself), the `.log` file's modification time, so such a segment
    /// is neither the oldest (deleted at once) nor kept forever. `i64::MAX` (never expires) if the
    /// file cannot be inspected.
    pub(crate) fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        // By path: the segment's file handle may be closed (open_files.rs) and needs none.
        std::fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(i64::MAX, |d| d.as_millis() as i64)
    }

    /// Bytes of index entries this segment holds in memory: entries loaded by lookups (which
    /// the index memory budget may drop again) and an active segment's entries not yet written.
    /// Zero for a segment opened from disk and never looked up.
    pub(crate) fn index_bytes_in_memory(&self) -> usize {
        self.offset_index.bytes_in_memory() + self.time_index.bytes_in_memory()
    }

    /// Path of the `.log` file.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }
}
