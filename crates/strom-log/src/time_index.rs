//! The sparse time index of one segment (`<base_offset:020>.timeindex`).
//!
//! This module owns the time index file and its in-memory copy. An entry is 12 bytes,
//! big-endian: a timestamp (i64), then the offset relative to the segment's base offset (u32) of
//! the batch that first reached that timestamp (Kafka's "shallow" offset: the batch's last
//! offset). Entries are appended only when the segment's largest timestamp so far grows, at the
//! offset index's cadence, and once more when the segment stops being active, so the last entry
//! of an inactive segment is its largest timestamp. Both fields strictly increase. As for the offset
//! index, entries reach the file when the segment is sealed.

use std::path::Path;

use crate::entry_file::EntryFile;
use crate::error::LogError;

const ENTRY_LEN: usize = 12;

/// The time index of one segment: in memory as a vector, on disk as an append-only file.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    file: EntryFile,
    base_offset: i64,
    /// Invariant: timestamps and relative offsets both strictly increase.
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Opens (creating if missing) the time index at `path`. Returns the index and whether its
    /// content was sane (whole entries, strictly increasing, offsets below `next_offset_bound`
    /// when given); an insane index is returned empty and must be rebuilt.
    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        next_offset_bound: Option<i64>,
    ) -> Result<(TimeIndex, bool), LogError> {
        let (file, bytes) = EntryFile::open(path, ENTRY_LEN)?;
        let mut index = TimeIndex {
            file,
            base_offset,
            entries: Vec::with_capacity(bytes.len() / ENTRY_LEN),
        };
        let mut sane = bytes.len() % ENTRY_LEN == 0;
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            let timestamp = i64::from_be_bytes(chunk[0..8].try_into().expect("8"));
            let relative = u32::from_be_bytes(chunk[8..12].try_into().expect("4"));
            let increasing = index
                .entries
                .last()
                .is_none_or(|&(t, r)| timestamp > t && relative > r);
            let in_range =
                next_offset_bound.is_none_or(|bound| base_offset + i64::from(relative) < bound);
            if !increasing || !in_range {
                sane = false;
                break;
            }
            index.entries.push((timestamp, relative));
        }
        if !sane {
            index.entries.clear();
        }
        Ok((index, sane))
    }

    /// The last entry as `(timestamp, offset)`.
    pub(crate) fn last(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(t, r)| (t, self.base_offset + i64::from(r)))
    }

    /// The offset to start a search for `timestamp` from: the offset of the largest entry whose
    /// timestamp is below `timestamp` (every record before it is older than `timestamp`), or the
    /// base offset.
    pub(crate) fn lookup(&self, timestamp: i64) -> i64 {
        let count = self.entries.partition_point(|&(t, _)| t < timestamp);
        match count {
            0 => self.base_offset,
            n => self.base_offset + i64::from(self.entries[n - 1].1),
        }
    }

    /// Appends `(timestamp, offset)` if the timestamp is larger than the last entry's (Kafka's
    /// `maybeAppend`). Panics if the offset goes backwards.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64) -> Result<(), LogError> {
        if self.entries.last().is_some_and(|&(t, _)| timestamp <= t) {
            return Ok(());
        }
        let relative = u32::try_from(offset - self.base_offset).expect("relative offset fits u32");
        if let Some(&(_, r)) = self.entries.last() {
            assert!(relative > r, "time index offset {relative} after {r}");
        }
        let mut entry = [0u8; ENTRY_LEN];
        entry[0..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..12].copy_from_slice(&relative.to_be_bytes());
        self.file.write(self.entries.len(), &entry)?;
        self.entries.push((timestamp, relative));
        Ok(())
    }

    /// Drops the entries whose offset is at or above `offset` (the segment was truncated there).
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) {
        let keep = self
            .entries
            .partition_point(|&(_, r)| self.base_offset + i64::from(r) < offset);
        self.entries.truncate(keep);
        self.file.truncate(keep);
    }

    /// Drops every entry and empties the file, before a rebuild.
    pub(crate) fn reset(&mut self) -> Result<(), LogError> {
        self.entries.clear();
        self.file.clear()
    }

    /// Closes the file's cached handle: the entries stay in memory, and the file is reopened
    /// only if it is written or synced again.
    pub(crate) fn close_file(&self) {
        self.file.close();
    }

    /// Trims the file to its entries and syncs it.
    pub(crate) fn trim_and_sync(&mut self) -> Result<(), LogError> {
        self.file.trim_and_sync(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maybe_append_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000010.timeindex");
        let (mut index, sane) = TimeIndex::open(&path, 10, None).unwrap();
        assert!(sane);
        index.maybe_append(100, 12).unwrap();
        index.maybe_append(100, 14).unwrap(); // not larger: ignored
        index.maybe_append(200, 20).unwrap();
        assert_eq!(index.last(), Some((200, 20)));
        assert_eq!(index.lookup(50), 10);
        assert_eq!(index.lookup(100), 10);
        assert_eq!(index.lookup(101), 12);
        assert_eq!(index.lookup(1000), 20);
        index.trim_and_sync().unwrap();
        drop(index);
        let (index, sane) = TimeIndex::open(&path, 10, Some(21)).unwrap();
        assert!(sane);
        assert_eq!(index.last(), Some((200, 20)));
        assert!(!TimeIndex::open(&path, 10, Some(20)).unwrap().1);
    }
}
