//! ListOffsets v0 (`max_num_offsets`): the offsets Kafka's pre-0.10.1 API answered, computed the
//! way Kafka 3.9 still computed them for that version (`legacyFetchOffsetsBefore`).

use std::time::UNIX_EPOCH;

use super::Log;
use crate::error::LogError;

/// ListOffsets v0's `LATEST` and `EARLIEST` (and KIP-405's `EARLIEST_LOCAL`, which Kafka 3.9
/// treated like `EARLIEST` here).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const EARLIEST_LOCAL: i64 = -4;

impl Log {
    /// The offsets a ListOffsets v0 request for `timestamp` answers, in descending order, at most
    /// `max_num_offsets` of them (`Ok(None)` if `max_num_offsets` is negative, which Kafka
    /// answers with an error).
    ///
    /// The candidates are each segment's base offset (raised to the log start offset) paired
    /// with the segment file's modification time, and, when the active segment holds data, the
    /// log end offset paired with `now_ms`. `LATEST` starts at the last candidate, `EARLIEST` at
    /// the first, and a timestamp at the last candidate whose time is at or before it; the answer
    /// is that candidate and the ones before it. Timestamps inside the records play no part:
    /// this is the file-time granularity of the old API.
    pub fn legacy_offsets_before(
        &self,
        timestamp: i64,
        max_num_offsets: i32,
        now_ms: i64,
    ) -> Result<Option<Vec<i64>>, LogError> {
        let mut candidates: Vec<(i64, i64)> = Vec::with_capacity(self.segments.len() + 1);
        for segment in &self.segments {
            let path = segment.log_path();
            let modified =
                std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .map_err(|source| LogError::Io {
                        path: path.to_path_buf(),
                        source,
                    })?;
            let modified_ms = modified
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            candidates.push((
                segment.base_offset().max(self.log_start_offset),
                modified_ms,
            ));
        }
        if self.segments.last().is_some_and(|s| s.size() > 0) {
            candidates.push((self.log_end_offset(), now_ms));
        }
        let start: Option<usize> = match timestamp {
            LATEST => candidates.len().checked_sub(1),
            EARLIEST | EARLIEST_LOCAL => (!candidates.is_empty()).then_some(0),
            _ => candidates.iter().rposition(|&(_, time)| time <= timestamp),
        };
        if max_num_offsets < 0 {
            return Ok(None);
        }
        let available = start.map_or(0, |s| s + 1);
        let count = (max_num_offsets as usize).min(available);
        let mut offsets: Vec<i64> = (0..count)
            .map(|i| candidates[available - 1 - i].0)
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Some(offsets))
    }
}
