//! The sparse offset index of one segment (`<base_offset:020>.index`).
//!
//! This module owns the index file and its in-memory copy. An entry is 8 bytes, big-endian:
//! the offset of a batch relative to the segment's base offset (u32), then the file position of
//! that batch in the `.log` file (u32). Entries are appended (not preallocated, unlike Kafka's
//! mmapped files) every `index.interval.bytes` of log data, in memory, and written to the file when
//! the segment is sealed (see `entry_file`); both fields strictly increase. The
//! entry offset is the *base offset* of the batch found at the position, so a lookup gives a
//! position at or before the batch holding any larger offset. The index is a hint: recovery
//! rebuilds it from the log, and a reader always confirms it by reading batch headers.

use std::io;
use std::path::Path;

use crate::entry_file::EntryFile;
use crate::error::LogError;

const ENTRY_LEN: usize = 8;

/// The offset index of one segment: in memory as a vector, on disk as an append-only file.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    file: EntryFile,
    base_offset: i64,
    /// Invariant: both fields strictly increase from one entry to the next.
    entries: Vec<(u32, u32)>,
    max_entries: usize,
}

impl OffsetIndex {
    /// Opens (creating if missing) the index at `path`. Returns the index and whether its content
    /// was sane (whole entries, strictly increasing, positions below `log_size`); an insane index
    /// is returned empty and must be rebuilt by the caller.
    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        max_entries: usize,
        log_size: u64,
    ) -> Result<(OffsetIndex, bool), LogError> {
        let (file, bytes) = EntryFile::open(path, ENTRY_LEN)?;
        let mut index = OffsetIndex {
            file,
            base_offset,
            entries: Vec::with_capacity(bytes.len() / ENTRY_LEN),
            max_entries: max_entries.max(1),
        };
        let mut sane = bytes.len() % ENTRY_LEN == 0;
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            let relative = u32::from_be_bytes(chunk[0..4].try_into().expect("4"));
            let position = u32::from_be_bytes(chunk[4..8].try_into().expect("4"));
            let increasing = index
                .entries
                .last()
                .is_none_or(|&(r, p)| relative > r && position > p);
            if !increasing || u64::from(position) >= log_size {
                sane = false;
                break;
            }
            index.entries.push((relative, position));
        }
        if !sane {
            index.entries.clear();
        }
        Ok((index, sane))
    }

    /// The floor entry for `offset`: the largest indexed `(offset, position)` with an offset at or
    /// below `offset`, or `(base_offset, 0)` if there is none.
    pub(crate) fn lookup(&self, offset: i64) -> (i64, u64) {
        let relative = offset - self.base_offset;
        let count = self
            .entries
            .partition_point(|&(r, _)| i64::from(r) <= relative);
        match count {
            0 => (self.base_offset, 0),
            n => {
                let (r, p) = self.entries[n - 1];
                (self.base_offset + i64::from(r), u64::from(p))
            }
        }
    }

    /// The last entry, if any, as `(offset, position)`.
    pub(crate) fn last(&self) -> Option<(i64, u64)> {
        self.entries
            .last()
            .map(|&(r, p)| (self.base_offset + i64::from(r), u64::from(p)))
    }

    /// Whether the index has reached `segment.index.bytes`, which rolls the segment.
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Appends an entry. Panics if it does not strictly follow the last one or does not fit the
    /// relative encoding: the caller rolls segments before that can happen.
    pub(crate) fn append(&mut self, offset: i64, position: u64) -> Result<(), LogError> {
        let relative = u32::try_from(offset - self.base_offset).expect("relative offset fits u32");
        let position = u32::try_from(position).expect("segment position fits u32");
        if let Some(&(r, p)) = self.entries.last() {
            assert!(
                relative > r && position > p,
                "index entry ({relative}, {position}) does not follow ({r}, {p})"
            );
        }
        let mut entry = [0u8; ENTRY_LEN];
        entry[0..4].copy_from_slice(&relative.to_be_bytes());
        entry[4..8].copy_from_slice(&position.to_be_bytes());
        self.file.write(self.entries.len(), &entry)?;
        self.entries.push((relative, position));
        Ok(())
    }

    /// Drops the entries of batches based at or above `offset` (the segment was truncated
    /// there).
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) {
        let keep = self
            .entries
            .partition_point(|&(r, _)| self.base_offset + i64::from(r) < offset);
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

    /// Trims the file to its entries (a failed append may have left a partial entry) and syncs it.
    pub(crate) fn trim_and_sync(&mut self) -> Result<(), LogError> {
        self.file.trim_and_sync(self.entries.len())
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Removes `path`, treating "already gone" as success.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(LogError::io(path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_lookup_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let (mut index, sane) = OffsetIndex::open(&path, 100, 10, 0).unwrap();
        assert!(sane);
        assert_eq!(index.lookup(150), (100, 0));
        index.append(110, 500).unwrap();
        index.append(120, 900).unwrap();
        assert_eq!(index.lookup(109), (100, 0));
        assert_eq!(index.lookup(110), (110, 500));
        assert_eq!(index.lookup(119), (110, 500));
        assert_eq!(index.lookup(1000), (120, 900));
        // Entries reach the file when the segment is sealed.
        index.trim_and_sync().unwrap();
        drop(index);
        let (index, sane) = OffsetIndex::open(&path, 100, 10, 1000).unwrap();
        assert!(sane);
        assert_eq!(index.last(), Some((120, 900)));
        // An entry beyond the log's size makes the index insane.
        let (index2, sane) = OffsetIndex::open(&path, 100, 10, 900).unwrap();
        assert!(!sane);
        assert_eq!(index2.len(), 0);
        drop(index);
        // A partial entry too.
        std::fs::write(&path, [0u8; 5]).unwrap();
        assert!(!OffsetIndex::open(&path, 100, 10, 1000).unwrap().1);
    }
}
