//! The sparse time index of one segment (`<base_offset:020>.timeindex`).
//!
//! This module owns the time index file and its in-memory copy. An entry is 12 bytes,
//! big-endian: a timestamp (i64), then the offset relative to the segment's base offset (u32) of
//! the batch that first reached that timestamp (Kafka's "shallow" offset: the batch's last
//! offset). Entries are appended only when the segment's largest timestamp so far grows, at the
//! offset index's cadence, and once more when the segment stops being active, so the last entry
//! of an inactive segment is its largest timestamp. Both fields strictly increase. As for the offset
//! index, entries reach the file when the segment is sealed and are read back only by the first
//! lookup that needs them.

use std::path::Path;

use crate::entry_file::{count_below, floor_entry, EntryFile};
use crate::error::LogError;

const ENTRY_LEN: usize = 12;

fn decode(entry: &[u8]) -> (i64, u32) {
    let timestamp = i64::from_be_bytes(entry[0..8].try_into().expect("8"));
    let relative = u32::from_be_bytes(entry[8..12].try_into().expect("4"));
    (timestamp, relative)
}

/// Whether `bytes` are whole entries, strictly increasing in both fields, with offsets below
/// `next_offset_bound` (when given).
fn entries_sane(bytes: &[u8], base_offset: i64, next_offset_bound: Option<i64>) -> bool {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return false;
    }
    let mut previous: Option<(i64, u32)> = None;
    bytes.chunks_exact(ENTRY_LEN).all(|chunk| {
        let (timestamp, relative) = decode(chunk);
        let increasing = previous.is_none_or(|(t, r)| timestamp > t && relative > r);
        previous = Some((timestamp, relative));
        increasing && in_range(base_offset, relative, next_offset_bound)
    })
}

fn in_range(base_offset: i64, relative: u32, next_offset_bound: Option<i64>) -> bool {
    next_offset_bound.is_none_or(|bound| base_offset + i64::from(relative) < bound)
}

/// The time index of one segment: persisted entries loaded on the first lookup that needs them,
/// entries appended since in memory, the last entry always known.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    file: EntryFile,
    base_offset: i64,
    /// The last entry, persisted or pending, as `(timestamp, relative offset)`. Invariant:
    /// timestamps and relative offsets both strictly increase from entry to entry.
    last: Option<(i64, u32)>,
}

impl TimeIndex {
    /// An empty time index for a new segment, whose file does not exist yet; no I/O.
    pub(crate) fn create(path: &Path, base_offset: i64) -> TimeIndex {
        TimeIndex {
            file: EntryFile::new_empty(path, ENTRY_LEN),
            base_offset,
            last: None,
        }
    }

    /// Opens the time index at `path` without reading its entries (see
    /// [`TimeIndex::check_all`]). Returns the index, whether the file existed, and whether what
    /// was read is sane: whole entries and a last offset below `next_offset_bound` when given.
    pub(crate) fn open(
        path: &Path,
        base_offset: i64,
        next_offset_bound: Option<i64>,
    ) -> Result<(TimeIndex, bool, bool), LogError> {
        let (file, state) = EntryFile::open(path, ENTRY_LEN)?;
        let last = state.last.as_deref().map(decode);
        let sane =
            state.whole && last.is_none_or(|(_, r)| in_range(base_offset, r, next_offset_bound));
        let index = TimeIndex {
            file,
            base_offset,
            last,
        };
        Ok((index, state.existed, sane))
    }

    /// Reads every persisted entry and checks it, as opening did before indexes were loaded
    /// lazily; the entries are not kept.
    pub(crate) fn check_all(&self, next_offset_bound: Option<i64>) -> Result<bool, LogError> {
        Ok(self
            .file
            .read_persisted()?
            .is_some_and(|bytes| entries_sane(&bytes, self.base_offset, next_offset_bound)))
    }

    /// The last entry as `(timestamp, offset)`.
    pub(crate) fn last(&self) -> Option<(i64, i64)> {
        self.last.map(|(t, r)| (t, self.base_offset + i64::from(r)))
    }

    /// The offset to start a search for `timestamp` from: the offset of the largest entry whose
    /// timestamp is below `timestamp` (every record before it is older than `timestamp`), or the
    /// base offset. Loads the persisted entries if the answer lies among them (checked against
    /// `next_offset_bound`; entries that fail are ignored).
    pub(crate) fn lookup(&self, timestamp: i64, next_offset_bound: i64) -> Result<i64, LogError> {
        let below = |entry: &[u8]| decode(entry).0 < timestamp;
        let absolute = |entry: &[u8]| self.base_offset + i64::from(decode(entry).1);
        if let Some(entry) = floor_entry(self.file.pending(), ENTRY_LEN, below) {
            return Ok(absolute(entry));
        }
        if self.file.persisted() == 0 {
            return Ok(self.base_offset);
        }
        let persisted = self.file.persisted_entries(|bytes| {
            entries_sane(bytes, self.base_offset, Some(next_offset_bound))
        })?;
        Ok(floor_entry(&persisted, ENTRY_LEN, below).map_or(self.base_offset, absolute))
    }

    /// Appends `(timestamp, offset)` if the timestamp is larger than the last entry's (Kafka's
    /// `maybeAppend`). Panics if the offset goes backwards.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64) -> Result<(), LogError> {
        if self.last.is_some_and(|(t, _)| timestamp <= t) {
            return Ok(());
        }
        let relative = u32::try_from(offset - self.base_offset).expect("relative offset fits u32");
        if let Some((_, r)) = self.last {
            assert!(relative > r, "time index offset {relative} after {r}");
        }
        let mut entry = [0u8; ENTRY_LEN];
        entry[0..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..12].copy_from_slice(&relative.to_be_bytes());
        self.file.write(self.file.len(), &entry)?;
        self.last = Some((timestamp, relative));
        Ok(())
    }

    /// Drops the entries whose offset is at or above `offset` (the segment was truncated there),
    /// reading the persisted entries only if the cut falls among them (as for the offset index).
    // Called by replication's `Segment::truncate_to` (branch `flog`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) {
        let base_offset = self.base_offset;
        let below = |entry: &[u8]| base_offset + i64::from(decode(entry).1) < offset;
        if self
            .last
            .is_none_or(|(_, r)| base_offset + i64::from(r) < offset)
        {
            return;
        }
        let keep = if floor_entry(self.file.pending(), ENTRY_LEN, below).is_some() {
            self.file.persisted() + count_below(self.file.pending(), ENTRY_LEN, below)
        } else {
            match self.file.read_persisted() {
                Ok(Some(bytes)) if entries_sane(&bytes, base_offset, None) => {
                    count_below(&bytes, ENTRY_LEN, below)
                }
                _ => 0,
            }
        };
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

    /// Trims the file to its entries and syncs it.
    pub(crate) fn trim_and_sync(&mut self) -> Result<(), LogError> {
        self.file.trim_and_sync(self.file.len())
    }

    /// Bytes of entries held in memory (loaded and pending).
    pub(crate) fn bytes_in_memory(&self) -> usize {
        self.file.bytes_in_memory()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maybe_append_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000010.timeindex");
        let mut index = TimeIndex::create(&path, 10);
        index.maybe_append(100, 12).unwrap();
        index.maybe_append(100, 14).unwrap(); // not larger: ignored
        index.maybe_append(200, 20).unwrap();
        assert_eq!(index.last(), Some((200, 20)));
        assert_eq!(index.lookup(50, 21).unwrap(), 10);
        assert_eq!(index.lookup(100, 21).unwrap(), 10);
        assert_eq!(index.lookup(101, 21).unwrap(), 12);
        assert_eq!(index.lookup(1000, 21).unwrap(), 20);
        index.trim_and_sync().unwrap();
        drop(index);
        let (index, existed, sane) = TimeIndex::open(&path, 10, Some(21)).unwrap();
        assert!(existed && sane);
        assert_eq!(index.last(), Some((200, 20)));
        assert_eq!(index.bytes_in_memory(), 0);
        assert_eq!(index.lookup(150, 21).unwrap(), 12);
        assert_eq!(index.bytes_in_memory(), 24, "a lookup loads the entries");
        assert_eq!(index.lookup(50, 21).unwrap(), 10);
        assert!(index.check_all(Some(21)).unwrap());
        assert!(!TimeIndex::open(&path, 10, Some(20)).unwrap().2);
        assert!(!index.check_all(Some(13)).unwrap());
    }

    /// The lookup of the time index before lazy loading.
    fn eager_lookup(base_offset: i64, entries: &[(i64, u32)], timestamp: i64) -> i64 {
        match entries.partition_point(|&(t, _)| t < timestamp) {
            0 => base_offset,
            n => base_offset + i64::from(entries[n - 1].1),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]
        /// As for the offset index: lazy lookups answer what the eager index answered.
        #[test]
        fn lazy_lookups_answer_as_the_eager_index(
            steps in proptest::collection::vec((1i64..50, 1u32..20), 0..60),
            written in 0usize..60,
            probes in proptest::collection::vec(-10i64..3000, 1..40),
            evict in proptest::prelude::any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("00000000000000000500.timeindex");
            let base = 500;
            let mut entries = Vec::new();
            let (mut timestamp, mut relative) = (0i64, 0u32);
            for (dt, dr) in &steps {
                timestamp += dt;
                relative += dr;
                entries.push((timestamp, relative));
            }
            let bound = base + i64::from(relative) + 1;
            let written = written.min(entries.len());
            let mut index = TimeIndex::create(&path, base);
            for &(t, r) in &entries[..written] {
                index.maybe_append(t, base + i64::from(r)).unwrap();
            }
            index.trim_and_sync().unwrap();
            drop(index);
            let (mut index, _, sane) = TimeIndex::open(&path, base, Some(bound)).unwrap();
            proptest::prop_assert!(sane);
            proptest::prop_assert_eq!(index.bytes_in_memory(), 0);
            for &(t, r) in &entries[written..] {
                index.maybe_append(t, base + i64::from(r)).unwrap();
            }
            for (i, &probe) in probes.iter().enumerate() {
                if evict && i % 3 == 0 {
                    index.file.drop_loaded();
                }
                proptest::prop_assert_eq!(
                    index.lookup(probe, bound).unwrap(),
                    eager_lookup(base, &entries, probe)
                );
            }
            // Truncation keeps the entries whose offset is below the cut.
            let cut = base + probes[0].max(0) / 4;
            index.truncate_to_offset(cut);
            let kept: Vec<(i64, u32)> =
                entries.iter().copied().filter(|&(_, r)| base + i64::from(r) < cut).collect();
            proptest::prop_assert_eq!(
                index.last(),
                kept.last().map(|&(t, r)| (t, base + i64::from(r)))
            );
            for &probe in &probes {
                proptest::prop_assert_eq!(
                    index.lookup(probe, bound).unwrap(),
                    eager_lookup(base, &kept, probe)
                );
            }
            index.trim_and_sync().unwrap();
            drop(index);
            let (index, _, sane) = TimeIndex::open(&path, base, Some(bound)).unwrap();
            proptest::prop_assert!(sane && index.check_all(Some(bound)).unwrap());
            proptest::prop_assert_eq!(
                index.last(),
                kept.last().map(|&(t, r)| (t, base + i64::from(r)))
            );
        }
    }
}
