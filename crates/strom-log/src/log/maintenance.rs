//! The parts of [`Log`] that are not on the produce/fetch path: timestamp lookups (ListOffsets),
//! DeleteRecords, retention, producer snapshots, clean close and deletion.

use std::path::Path;

use super::{delete_suffix, Log};
use crate::batch::{record_offsets_and_timestamps, BatchHeader};
use crate::error::LogError;
use crate::segment::Segment;

impl Log {
    /// ListOffsets by timestamp: the first offset at or above the log start whose record
    /// timestamp is at or above `timestamp_ms`, with that timestamp, as Kafka's
    /// `FileRecords.searchForTimestamp`: exact for every codec, since a compressed batch whose
    /// max timestamp qualifies is inflated to find the record. `None` if there is no such record.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        for segment in &self.segments {
            if segment.next_offset() <= self.log_start_offset
                || segment.max_timestamp().0 < timestamp_ms
            {
                continue;
            }
            let Some((mut position, _)) = segment.find_batch_by_timestamp(timestamp_ms)? else {
                continue;
            };
            while let Some(header) = segment.read_header(position)? {
                if header.max_timestamp >= timestamp_ms
                    && header.last_offset() >= self.log_start_offset
                {
                    if let Some(found) =
                        self.search_batch(segment, position, &header, |t| t >= timestamp_ms)?
                    {
                        return Ok(Some(found));
                    }
                }
                position += header.total_len() as u64;
            }
        }
        Ok(None)
    }

    /// Within one batch, the first record at or above the log start whose timestamp satisfies
    /// `accept`. A compressed batch is inflated (up to
    /// [`crate::compression::MAX_DECOMPRESSED_BYTES`]). Undecodable records of an uncompressed
    /// batch are [`LogError::Corrupt`]; a compressed batch that cannot be inflated or decoded
    /// (malformed, or a decompression bomb: the broker stores client batches without inflating
    /// them) answers at batch granularity, its base offset (at least the log start) and max
    /// timestamp, with a warning, so that one bad batch does not fail every lookup.
    fn search_batch(
        &self,
        segment: &Segment,
        position: u64,
        header: &BatchHeader,
        accept: impl Fn(i64) -> bool,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let bytes = segment.read_bytes(position, header.total_len())?;
        let records = match record_offsets_and_timestamps(&bytes) {
            Ok(records) => records,
            Err(e) if header.compression() != 0 => {
                tracing::warn!(
                    segment = %segment.log_path().display(),
                    position,
                    base_offset = header.base_offset,
                    codec = crate::compression::codec_name(header.compression()),
                    error = %e,
                    "compressed batch not decodable; timestamp lookup answers at batch granularity"
                );
                let offset = header.base_offset.max(self.log_start_offset);
                return Ok(accept(header.max_timestamp).then_some((offset, header.max_timestamp)));
            }
            Err(e) => {
                return Err(LogError::Corrupt {
                    path: segment.log_path().to_path_buf(),
                    reason: format!("batch at byte {position}: {e}"),
                })
            }
        };
        Ok(records
            .into_iter()
            .find(|&(offset, timestamp)| offset >= self.log_start_offset && accept(timestamp)))
    }

    /// ListOffsets `MAX_TIMESTAMP`: the offset and timestamp of the record with the largest
    /// timestamp (the first such record, as Kafka; inside a compressed batch too, which is inflated
    /// to find it). `None` if the log holds no record.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let mut best: Option<&Segment> = None;
        for segment in &self.segments {
            if segment.size() == 0 || segment.next_offset() <= self.log_start_offset {
                continue;
            }
            if best.is_none_or(|b| segment.max_timestamp().0 > b.max_timestamp().0) {
                best = Some(segment);
            }
        }
        let Some(segment) = best else {
            return Ok(None);
        };
        let (max_timestamp, shallow_offset) = segment.max_timestamp();
        let Some((position, header)) = segment.find_batch(shallow_offset)? else {
            return Ok(None);
        };
        Ok(self
            .search_batch(segment, position, &header, |t| t >= max_timestamp)?
            .or(Some((header.last_offset(), header.max_timestamp))))
    }

    /// DeleteRecords: raises the log start offset to `offset`, which must not be above the high
    /// watermark, and deletes the segments entirely below it. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset > self.high_watermark {
            return Err(LogError::OffsetAboveHighWatermark {
                requested: offset,
                high_watermark: self.high_watermark,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.delete_below_log_start()?;
            self.leader_epochs
                .truncate_from_start(self.log_start_offset)?;
        }
        Ok(self.log_start_offset)
    }

    fn delete_below_log_start(&mut self) -> Result<usize, LogError> {
        let log_start = self.log_start_offset;
        self.delete_old_segments(|_, next| next.is_some_and(|n| n.base_offset() <= log_start))
    }

    /// Deletes the longest prefix of segments that lie below the high watermark and satisfy
    /// `predicate(segment, next_segment)`. Deleting every segment rolls first, so the log keeps an
    /// (empty) active segment at its end, as Kafka does.
    fn delete_old_segments(
        &mut self,
        mut predicate: impl FnMut(&Segment, Option<&Segment>) -> bool,
    ) -> Result<usize, LogError> {
        let end = self.log_end_offset();
        let mut count = 0;
        for (i, segment) in self.segments.iter().enumerate() {
            let next = self.segments.get(i + 1);
            let upper_bound = next.map_or(end, Segment::base_offset);
            let last_and_empty = next.is_none() && segment.size() == 0;
            if self.high_watermark >= upper_bound && !last_and_empty && predicate(segment, next) {
                count += 1;
            } else {
                break;
            }
        }
        if count == 0 {
            return Ok(0);
        }
        if count == self.segments.len() {
            self.roll()?;
        }
        for segment in self.segments.drain(..count) {
            segment.delete_files(&self.dir)?;
            tracing::info!(segment = %segment.log_path().display(), "deleted segment");
        }
        self.txn_indexes
            .forget_segments(i64::MIN, self.segments[0].base_offset());
        self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset());
        self.high_watermark = self.high_watermark.max(self.log_start_offset);
        self.leader_epochs
            .truncate_from_start(self.log_start_offset)?;
        self.check_invariants();
        Ok(count)
    }

    /// Applies `retention.ms`, `retention.bytes` and the log start offset: deletes whole segments
    /// (rolling the active one first if it must go too) and raises the log start offset. Returns
    /// the number of segments deleted.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let mut deleted = 0;
        let retention_ms = self.config.retention_ms;
        if retention_ms >= 0 {
            deleted += self.delete_old_segments(|segment, _| {
                now_ms.saturating_sub(segment.largest_timestamp()) > retention_ms
            })?;
        }
        let retention_bytes = self.config.retention_bytes;
        if retention_bytes >= 0 {
            let mut excess = self.size_bytes() as i64 - retention_bytes;
            deleted += self.delete_old_segments(|segment, _| {
                let size = segment.size() as i64;
                if excess - size >= 0 {
                    excess -= size;
                    true
                } else {
                    false
                }
            })?;
        }
        deleted += self.delete_below_log_start()?;
        Ok(deleted)
    }

    /// Total bytes of all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Bytes of index entries the log holds in memory: the entries lookups loaded (which the
    /// index memory budget may drop again, see [`crate::open_files::index_bytes_loaded`]) and
    /// the active segment's entries not yet written. A log opened and never read holds none
    /// but those its active segment appended since.
    pub fn index_bytes_in_memory(&self) -> usize {
        self.segments
            .iter()
            .map(Segment::index_bytes_in_memory)
            .sum()
    }

    /// Writes `<log_end_offset:020>.snapshot` with the producer state, keeping the two newest.
    pub fn write_producer_snapshot(&mut self) -> Result<(), LogError> {
        // Entries below a snapshot are not rebuilt after a crash: they must be durable first.
        self.txn_indexes.sync(&self.dir)?;
        self.producer_state
            .write_snapshot(&self.dir, self.log_end_offset())
    }

    /// Clean close: flushes, trims and syncs the active segment and its indexes, and writes a
    /// producer snapshot, so that a clean reopen re-reads nothing.
    pub fn close(mut self) -> Result<(), LogError> {
        self.close_in_place()
    }

    /// [`Log::close`] for a log behind a shared handle. The log stays usable (a later append goes
    /// on in the same active segment), but the broker calls this only at shutdown.
    pub(crate) fn close_in_place(&mut self) -> Result<(), LogError> {
        self.active_mut().close()?;
        let end = self.log_end_offset();
        self.mark_flushed(end);
        self.write_producer_snapshot()
    }

    /// Removes the partition's directory: renames it to `<dir>.<unique>-delete` (so a crash
    /// half-way leaves a directory the manager knows to remove), then removes it.
    pub fn delete(mut self) -> Result<(), LogError> {
        self.delete_in_place()
    }

    /// [`Log::delete`] for a log behind a shared handle: afterwards the log must not be used.
    pub(crate) fn delete_in_place(&mut self) -> Result<(), LogError> {
        let name = self
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("partition");
        let target = self
            .dir
            .with_file_name(format!("{name}.{}", delete_suffix()));
        std::fs::rename(&self.dir, &target).map_err(|e| LogError::io(&self.dir, e))?;
        if let Some(parent) = target.parent() {
            crate::checkpoint::fsync_dir(parent)?;
        }
        remove_dir(&target)?;
        self.dir = target;
        Ok(())
    }
}

fn remove_dir(dir: &Path) -> Result<(), LogError> {
    std::fs::remove_dir_all(dir).map_err(|e| LogError::io(dir, e))
}
