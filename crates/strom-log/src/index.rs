//! The sparse offset index of one segment (`<base_offset:020>.index`).
//!
//! This module owns the index file and its in-memory copy. An entry is 8 bytes, big-endian:
//! the offset of a batch relative to the segment's base offset (u32), then the file position of
//! that batch in the `.log` file (u32). Entries are appended (not preallocated, unlike Kafka's
//! mmapped files) every `index.interval.bytes` of log data, in memory, written to the file when
//! the segment is sealed, and read back only by the first lookup that needs them (Kafka's
//! `LazyIndex`; see `entry_file`); both fields strictly increase. The
//! entry offset is the *base offset* of the batch found at the position, so a lookup gives a
//! position at or before the batch holding any larger offset. The index is a hint: recovery
//! rebuilds it from the log, and a reader always confirms it by reading batch headers.

use std::io;
use std::path::Path;

use crate::entry_file::{count_below, floor_entry, EntryFile};
use crate::error::LogError;

const ENTRY_LEN: usize = 8;

fn decode(entry: &[u8]) -> (u32, u32) {
    let relative = u32::from_be_bytes(entry[0..4].try_into().expect("4"));
    let position = u32::from_be_bytes(entry[4..8].try_into().expect("4"));
    (relative, position)
}

/// Whether `bytes` are whole entries, strictly increasing in both fields, with positions below
/// `log_size`.
fn entries_sane(bytes: &[u8], log_size: u64) -> bool {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return false;
    }
    let mut previous: Option<(u32, u32)> = None;
    bytes.chunks_exact(ENTRY_LEN).all(|chunk| {
        let (relative, position) = decode(chunk);
        let increasing = previous.is_none_or(|(r, p)| relative > r && position > p);
        previous = Some((relative, position));
        increasing && u64::from(position) < log_size
    })
}

/// The offset index of one segment: its persisted entries loaded on the first lookup that needs
/// them ([`EntryFile`]), entries appended since in memory, the last entry always known.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    file: EntryFile,
    base_offset: i64,
    /// The last entry, persisted or pending, as `(relative offset, position)`; known without
    /// loading the file. Invariant: every entry's fields strictly increase from one entry to
    /// the next, so this is the largest.
    last: Option<(u32, u32)>,
    max_entries: usize,
}

impl OffsetIndex {
    /// An empty index for a new segment, whose file does not exist yet; no I/O.
    pub(crate) fn create(path: &Path, base_offset: i64, max_entries: usize) -> OffsetIndex {
        OffsetIndex {
            file: EntryFile::new_empty(path, ENTRY_LEN),
            base_offset,
            last: None,
            max_entries: max_entries.max(1),
        }
    }

    /// Opens the index at `path` without reading its entries (see [`OffsetIndex::check_all`]).
    /// Returns the index, whether the file existed, and whether what was read is sane: whole
    /// entries and a last position below `log_size`. An insane index must be rebuilt by the
    /// caller.
    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        max_entries: usize,
        log_size: u64,
    ) -> Result<(OffsetIndex, bool, bool), LogError> {
        let (file, state) = EntryFile::open(path, ENTRY_LEN)?;
        let last = state.last.as_deref().map(decode);
        let sane = state.whole && last.is_none_or(|(_, p)| u64::from(p) < log_size);
        let index = OffsetIndex {
            file,
            base_offset,
            last,
            max_entries: max_entries.max(1),
        };
        Ok((index, state.existed, sane))
    }

    /// Reads every persisted entry and checks it (strictly increasing, positions below
    /// `log_size`), as opening did before indexes were loaded lazily; the entries are not kept.
    pub(crate) fn check_all(&self, log_size: u64) -> Result<bool, LogError> {
        Ok(self
            .file
            .read_persisted()?
            .is_some_and(|bytes| entries_sane(&bytes, log_size)))
    }

    /// The floor entry for `offset`: the largest indexed `(offset, position)` with an offset at
    /// or below `offset`, or `(base_offset, 0)` if there is none. Loads the persisted entries if
    /// the answer lies among them (checked against `log_size`; entries that fail are ignored).
    pub(crate) fn lookup(&self, offset: i64, log_size: u64) -> Result<(i64, u64), LogError> {
        let relative = offset - self.base_offset;
        let below = |entry: &[u8]| i64::from(decode(entry).0) <= relative;
        let absolute = |(r, p): (u32, u32)| (self.base_offset + i64::from(r), u64::from(p));
        if let Some(entry) = floor_entry(self.file.pending(), ENTRY_LEN, below) {
            return Ok(absolute(decode(entry)));
        }
        // Below the base offset no entry can answer (producer-state replay asks every segment
        // after a snapshot for an offset that may lie before it): no need to load them.
        if self.file.persisted() == 0 || relative < 0 {
            return Ok((self.base_offset, 0));
        }
        let persisted = self
            .file
            .persisted_entries(|bytes| entries_sane(bytes, log_size))?;
        Ok(floor_entry(&persisted, ENTRY_LEN, below)
            .map_or((self.base_offset, 0), |entry| absolute(decode(entry))))
    }

    /// The floor entry for a file `position`: the indexed `(offset, position)` with the largest
    /// position at or below it, or `(base_offset, 0)` if there is none (both fields increase
    /// together, so this is the same order as [`OffsetIndex::lookup`]'s).
    pub(crate) fn lookup_position(
        &self,
        position: u64,
        log_size: u64,
    ) -> Result<(i64, u64), LogError> {
        let below = |entry: &[u8]| u64::from(decode(entry).1) <= position;
        let absolute = |(r, p): (u32, u32)| (self.base_offset + i64::from(r), u64::from(p));
        if let Some(entry) = floor_entry(self.file.pending(), ENTRY_LEN, below) {
            return Ok(absolute(decode(entry)));
        }
        if self.file.persisted() == 0 {
            return Ok((self.base_offset, 0));
        }
        let persisted = self
            .file
            .persisted_entries(|bytes| entries_sane(bytes, log_size))?;
        Ok(floor_entry(&persisted, ENTRY_LEN, below)
            .map_or((self.base_offset, 0), |entry| absolute(decode(entry))))
    }

    /// The last entry, if any, as `(offset, position)`.
    pub(crate) fn last(&self) -> Option<(i64, u64)> {
        self.last
            .map(|(r, p)| (self.base_offset + i64::from(r), u64::from(p)))
    }

    /// Whether the index has reached `segment.index.bytes`, which rolls the segment.
    pub(crate) fn is_full(&self) -> bool {
        self.file.len() >= self.max_entries
    }

    /// Appends an entry. Panics if it does not strictly follow the last one or does not fit the
    /// relative encoding: the caller rolls segments before that can happen.
    pub(crate) fn append(&mut self, offset: i64, position: u64) -> Result<(), LogError> {
        let relative = u32::try_from(offset - self.base_offset).expect("relative offset fits u32");
        let position = u32::try_from(position).expect("segment position fits u32");
        if let Some((r, p)) = self.last {
            assert!(
                relative > r && position > p,
                "index entry ({relative}, {position}) does not follow ({r}, {p})"
            );
        }
        let mut entry = [0u8; ENTRY_LEN];
        entry[0..4].copy_from_slice(&relative.to_be_bytes());
        entry[4..8].copy_from_slice(&position.to_be_bytes());
        self.file.write(self.file.len(), &entry)?;
        self.last = Some((relative, position));
        Ok(())
    }

    /// Drops the entries of batches based at or above `offset` (the segment was truncated
    /// there). Reads the persisted entries only if the cut falls among them; if they cannot be
    /// read, every persisted entry is dropped (an index is a hint: lookups then scan from the
    /// segment's start).
    // Called by replication's `Segment::truncate_to` (branch `flog`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) {
        let relative = offset - self.base_offset;
        let below = |entry: &[u8]| i64::from(decode(entry).0) < relative;
        let keep = |file: &EntryFile| -> usize {
            let persisted = file.persisted();
            if floor_entry(file.pending(), ENTRY_LEN, below).is_some() {
                return persisted + count_below(file.pending(), ENTRY_LEN, below);
            }
            match file.read_persisted() {
                Ok(Some(bytes)) if entries_sane(&bytes, u64::MAX) => {
                    count_below(&bytes, ENTRY_LEN, below)
                }
                _ => 0,
            }
        };
        if self.last.is_none_or(|(r, _)| i64::from(r) < relative) {
            return;
        }
        let keep = keep(&self.file);
        self.file.truncate(keep);
        self.last = self.file.entry(keep.checked_sub(1)).map(|e| decode(&e));
    }

    /// Drops every entry and empties the file, before a rebuild.
    pub(crate) fn reset(&mut self) -> Result<(), LogError> {
        self.last = None;
        self.file.clear()
    }

    /// Closes the file's cached handle: the file is reopened only if it is written or synced
    /// again (lookups read it with a descriptor of their own).
    pub(crate) fn close_file(&self) {
        self.file.close();
    }

    /// Trims the file to its entries (a failed append may have left a partial entry) and syncs it.
    pub(crate) fn trim_and_sync(&mut self) -> Result<(), LogError> {
        self.file.trim_and_sync(self.file.len())
    }

    /// Bytes of entries held in memory (loaded and pending).
    pub(crate) fn bytes_in_memory(&self) -> usize {
        self.file.bytes_in_memory()
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
        let mut index = OffsetIndex::create(&path, 100, 10);
        assert_eq!(index.lookup(150, 0).unwrap(), (100, 0));
        index.append(110, 500).unwrap();
        index.append(120, 900).unwrap();
        assert_eq!(index.lookup(109, 1000).unwrap(), (100, 0));
        assert_eq!(index.lookup(110, 1000).unwrap(), (110, 500));
        assert_eq!(index.lookup(119, 1000).unwrap(), (110, 500));
        assert_eq!(index.lookup(1000, 1000).unwrap(), (120, 900));
        // Entries reach the file when the segment is sealed.
        index.trim_and_sync().unwrap();
        drop(index);
        let (index, existed, sane) = OffsetIndex::open(&path, 100, 10, 1000).unwrap();
        assert!(existed && sane);
        assert_eq!(index.last(), Some((120, 900)));
        assert_eq!(index.bytes_in_memory(), 0, "opening reads no entries");
        assert!(index.check_all(1000).unwrap());
        assert_eq!(index.bytes_in_memory(), 0, "checking keeps none");
        assert_eq!(index.lookup(115, 1000).unwrap(), (110, 500));
        assert_eq!(index.bytes_in_memory(), 16, "a lookup loads them");
        // An entry beyond the log's size makes the index insane: at open for the last entry,
        // by the full check for any.
        let (_, _, sane) = OffsetIndex::open(&path, 100, 10, 900).unwrap();
        assert!(!sane);
        assert!(!index.check_all(600).unwrap());
        drop(index);
        // A partial entry too.
        std::fs::write(&path, [0u8; 5]).unwrap();
        assert!(!OffsetIndex::open(&path, 100, 10, 1000).unwrap().2);
        // A missing file is an empty index that did not exist, and opening does not create it.
        std::fs::remove_file(&path).unwrap();
        let (index, existed, sane) = OffsetIndex::open(&path, 100, 10, 1000).unwrap();
        assert!(!existed && sane && index.last().is_none());
        assert!(!path.exists());
    }

    #[test]
    fn entries_that_fail_the_check_when_loaded_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.index");
        let mut index = OffsetIndex::create(&path, 0, 10);
        for (offset, position) in [(10, 100), (20, 200), (30, 300)] {
            index.append(offset, position).unwrap();
        }
        index.trim_and_sync().unwrap();
        drop(index);
        // Swap the first two entries: the last one still looks fine at open.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[..16].rotate_left(8);
        std::fs::write(&path, &bytes).unwrap();
        let (index, _, sane) = OffsetIndex::open(&path, 0, 10, 1000).unwrap();
        assert!(sane, "the cheap check sees only the last entry");
        assert!(!index.check_all(1000).unwrap());
        assert_eq!(
            index.lookup(25, 1000).unwrap(),
            (0, 0),
            "scan from the start"
        );
    }

    /// The lookup of the index before lazy loading: a binary search over every entry in memory.
    fn eager_lookup(base_offset: i64, entries: &[(u32, u32)], offset: i64) -> (i64, u64) {
        let relative = offset - base_offset;
        match entries.partition_point(|&(r, _)| i64::from(r) <= relative) {
            0 => (base_offset, 0),
            n => {
                let (r, p) = entries[n - 1];
                (base_offset + i64::from(r), u64::from(p))
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]
        /// Whatever part of the entries was written before a reopen and whatever part was
        /// appended after it, and whether the loaded entries are dropped in between, every
        /// lookup answers what the eager in-memory index answered.
        #[test]
        fn lazy_lookups_answer_as_the_eager_index(
            steps in proptest::collection::vec((1u32..50, 1u32..500), 0..60),
            written in 0usize..60,
            probes in proptest::collection::vec(0i64..4000, 1..40),
            evict in proptest::prelude::any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("00000000000000001000.index");
            let base = 1000;
            let mut entries = Vec::new();
            let (mut relative, mut position) = (0u32, 0u32);
            for (dr, dp) in &steps {
                relative += dr;
                position += dp;
                entries.push((relative, position));
            }
            let log_size = u64::from(position) + 1;
            let written = written.min(entries.len());
            let mut index = OffsetIndex::create(&path, base, 1000);
            for &(r, p) in &entries[..written] {
                index.append(base + i64::from(r), u64::from(p)).unwrap();
            }
            index.trim_and_sync().unwrap();
            drop(index);
            let (mut index, _, sane) = OffsetIndex::open(&path, base, 1000, log_size).unwrap();
            proptest::prop_assert!(sane);
            proptest::prop_assert_eq!(index.bytes_in_memory(), 0);
            for &(r, p) in &entries[written..] {
                index.append(base + i64::from(r), u64::from(p)).unwrap();
            }
            for (i, &probe) in probes.iter().enumerate() {
                if evict && i % 3 == 0 {
                    index.file.drop_loaded();
                }
                proptest::prop_assert_eq!(
                    index.lookup(base + probe, log_size).unwrap(),
                    eager_lookup(base, &entries, base + probe)
                );
            }
            proptest::prop_assert_eq!(
                index.last(),
                entries.last().map(|&(r, p)| (base + i64::from(r), u64::from(p)))
            );
            // Truncation (replication) keeps the entries below the cut, wherever it falls, and
            // after a seal and a reopen the file holds exactly those.
            let cut = base + probes[0];
            index.truncate_to_offset(cut);
            let kept: Vec<(u32, u32)> =
                entries.iter().copied().filter(|&(r, _)| base + i64::from(r) < cut).collect();
            let expect_last = kept.last().map(|&(r, p)| (base + i64::from(r), u64::from(p)));
            proptest::prop_assert_eq!(index.last(), expect_last);
            for &probe in &probes {
                proptest::prop_assert_eq!(
                    index.lookup(base + probe, log_size).unwrap(),
                    eager_lookup(base, &kept, base + probe)
                );
            }
            index.trim_and_sync().unwrap();
            drop(index);
            let (index, _, sane) = OffsetIndex::open(&path, base, 1000, log_size).unwrap();
            proptest::prop_assert!(sane && index.check_all(log_size).unwrap());
            proptest::prop_assert_eq!(index.last(), expect_last);
            proptest::prop_assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                (kept.len() * ENTRY_LEN) as u64
            );
        }
    }
}
