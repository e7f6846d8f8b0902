//! The aborted-transaction index: per segment a `<base_offset:020>.txnindex` file listing the
//! transactions aborted by an ABORT marker stored in that segment, in Kafka's layout, and the
//! in-memory copy a `read_committed` fetch asks ([`TxnIndexes::aborted_transactions`]).
//!
//! Entry layout (34 bytes, big-endian, Kafka's `AbortedTxn`): version i16 (=0), producer id
//! i64, first offset i64 (the transaction's first record), last offset i64 (the ABORT
//! marker's offset), last stable offset i64 (the log's LSO right after the marker: the first
//! offset of the oldest transaction still open, or the marker's offset + 1). Entries are
//! appended in marker order, so every file, and the whole list, is sorted by last offset.
//!
//! This module owns the format and the file operations (append, cut, delete, load). It does
//! not decide what is aborted: [`crate::log::Log`] adds an entry when it stores an ABORT
//! marker, and after a crash drops the entries at or above the offset its producer-state
//! replay starts from, which the replay writes again. Files are fsynced before a producer
//! snapshot is written, so entries below a snapshot are durable.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::LogError;
use crate::index::remove_if_exists;
use crate::segment::segment_file;
pub use crate::segment::TXN_INDEX_SUFFIX;
/// Size of one entry.
pub const ENTRY_LEN: usize = 34;
const VERSION: i16 = 0;

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer that ran the transaction.
    pub producer_id: i64,
    /// Offset of the transaction's first record in this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// The last stable offset right after the marker was stored.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// The entry in the file layout.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }
}

/// Decodes a whole `.txnindex` file. Refuses (with the reason) a length that is not a whole
/// number of entries, an unknown version, an entry whose first offset is above its last, and
/// entries out of last-offset order.
pub fn decode_entries(bytes: &[u8]) -> Result<Vec<AbortedTxn>, String> {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return Err(format!(
            "{} bytes is not a whole number of {ENTRY_LEN}-byte entries",
            bytes.len()
        ));
    }
    let i64_at = |chunk: &[u8], at: usize| {
        i64::from_be_bytes(chunk[at..at + 8].try_into().expect("8 bytes"))
    };
    let mut out: Vec<AbortedTxn> = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    for (i, chunk) in bytes.chunks_exact(ENTRY_LEN).enumerate() {
        let version = i16::from_be_bytes([chunk[0], chunk[1]]);
        if version != VERSION {
            return Err(format!("entry {i}: unknown version {version}"));
        }
        let entry = AbortedTxn {
            producer_id: i64_at(chunk, 2),
            first_offset: i64_at(chunk, 10),
            last_offset: i64_at(chunk, 18),
            last_stable_offset: i64_at(chunk, 26),
        };
        if entry.first_offset > entry.last_offset || entry.first_offset < 0 {
            return Err(format!("entry {i}: bad offsets {entry:?}"));
        }
        if out
            .last()
            .is_some_and(|prev| prev.last_offset >= entry.last_offset)
        {
            return Err(format!("entry {i}: out of order"));
        }
        out.push(entry);
    }
    Ok(out)
}

/// The aborted transactions of one log, each with the base offset of the segment whose file
/// holds it. Invariant: sorted by last offset (and so by segment).
#[derive(Debug, Default)]
pub struct TxnIndexes {
    entries: Vec<(i64, AbortedTxn)>,
    /// Segments whose file has appends not yet fsynced.
    unsynced: BTreeSet<i64>,
}

impl TxnIndexes {
    /// Loads the files of the segments `bases` (ascending). `Err` names the first unreadable
    /// file: the caller then rebuilds every index from the log.
    pub fn load(dir: &Path, bases: &[i64]) -> Result<TxnIndexes, LogError> {
        let mut indexes = TxnIndexes::default();
        for (i, &base) in bases.iter().enumerate() {
            let path = segment_file(dir, base, TXN_INDEX_SUFFIX);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(LogError::io(&path, e)),
            };
            let corrupt = |reason: String| LogError::Corrupt {
                path: path.clone(),
                reason,
            };
            let next = bases.get(i + 1).copied();
            for entry in decode_entries(&bytes).map_err(corrupt)? {
                if entry.last_offset < base || next.is_some_and(|next| entry.last_offset >= next) {
                    return Err(corrupt(format!("entry {entry:?} outside its segment")));
                }
                indexes.entries.push((base, entry));
            }
        }
        Ok(indexes)
    }

    /// Deletes the files of the segments `bases` and forgets every entry: the state before a
    /// rebuild from the log.
    pub fn reset(&mut self, dir: &Path, bases: &[i64]) -> Result<(), LogError> {
        for &base in bases {
            remove_if_exists(&segment_file(dir, base, TXN_INDEX_SUFFIX))?;
        }
        self.entries.clear();
        self.unsynced.clear();
        Ok(())
    }

    /// Appends `entry` to the file of the segment based at `base` (not fsynced: see
    /// [`TxnIndexes::sync`]). Its marker must be the newest.
    pub fn append(&mut self, dir: &Path, base: i64, entry: AbortedTxn) -> Result<(), LogError> {
        assert!(
            self.entries
                .last()
                .is_none_or(|(_, prev)| prev.last_offset < entry.last_offset),
            "aborted transactions out of order"
        );
        let path = segment_file(dir, base, TXN_INDEX_SUFFIX);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        file.write_all(&entry.encode())
            .map_err(|e| LogError::io(&path, e))?;
        self.entries.push((base, entry));
        self.unsynced.insert(base);
        Ok(())
    }

    /// Fsyncs every file appended to since the last call.
    pub fn sync(&mut self, dir: &Path) -> Result<(), LogError> {
        for base in std::mem::take(&mut self.unsynced) {
            let path = segment_file(dir, base, TXN_INDEX_SUFFIX);
            match OpenOptions::new().append(true).open(&path) {
                Ok(file) => file.sync_data().map_err(|e| LogError::io(&path, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&path, e)),
            }
        }
        Ok(())
    }

    /// Drops every entry whose marker is at or above `offset`, cutting (or removing) the files
    /// that held them, durably.
    pub fn truncate_from(&mut self, dir: &Path, offset: i64) -> Result<(), LogError> {
        let keep = self
            .entries
            .partition_point(|(_, e)| e.last_offset < offset);
        let mut bases: Vec<i64> = self.entries[keep..].iter().map(|(b, _)| *b).collect();
        bases.dedup();
        for base in bases {
            let kept = self.entries[..keep]
                .iter()
                .filter(|(b, _)| *b == base)
                .count();
            let path = segment_file(dir, base, TXN_INDEX_SUFFIX);
            if kept == 0 {
                remove_if_exists(&path)?;
                continue;
            }
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| LogError::io(&path, e))?;
            file.set_len((kept * ENTRY_LEN) as u64)
                .and_then(|()| file.sync_data())
                .map_err(|e| LogError::io(&path, e))?;
        }
        self.entries.truncate(keep);
        Ok(())
    }

    /// Drops the entries of the segment based at `base` whose `(producer id, marker offset)` is
    /// in `markers` (compaction removed those markers), rewriting its file durably (a new file
    /// renamed over the old one; none if no entry is left). Markers without an entry are
    /// ignored.
    pub fn remove_markers(
        &mut self,
        dir: &Path,
        base: i64,
        markers: &[(i64, i64)],
    ) -> Result<(), LogError> {
        let gone =
            |b: i64, e: &AbortedTxn| b == base && markers.contains(&(e.producer_id, e.last_offset));
        if !self.entries.iter().any(|(b, e)| gone(*b, e)) {
            return Ok(());
        }
        self.entries.retain(|(b, e)| !gone(*b, e));
        let kept: Vec<u8> = self
            .entries
            .iter()
            .filter(|(b, _)| *b == base)
            .flat_map(|(_, e)| e.encode())
            .collect();
        let path = segment_file(dir, base, TXN_INDEX_SUFFIX);
        if kept.is_empty() {
            remove_if_exists(&path)?;
        } else {
            let tmp = path.with_extension("txnindex.tmp");
            let mut file = File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
            file.write_all(&kept)
                .and_then(|()| file.sync_data())
                .map_err(|e| LogError::io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
        }
        self.unsynced.remove(&base);
        crate::checkpoint::fsync_dir(dir)
    }

    /// Forgets the entries of segments whose files were deleted: those based in
    /// `[from_base, to_base)`.
    pub fn forget_segments(&mut self, from_base: i64, to_base: i64) {
        self.entries
            .retain(|(base, _)| *base < from_base || *base >= to_base);
        self.unsynced
            .retain(|base| *base < from_base || *base >= to_base);
    }

    /// `(producer id, first offset)` of every aborted transaction that overlaps
    /// `[start_offset, upper_bound)`: its marker is at or above `start_offset` and its first
    /// record below `upper_bound`, as a `read_committed` Fetch returns them. The scan stops at
    /// the first entry whose last stable offset reaches `upper_bound` (no later abort can
    /// start below it).
    pub fn aborted_transactions(&self, start_offset: i64, upper_bound: i64) -> Vec<(i64, i64)> {
        let from = self
            .entries
            .partition_point(|(_, e)| e.last_offset < start_offset);
        let mut out = Vec::new();
        for (_, entry) in &self.entries[from..] {
            if entry.first_offset < upper_bound {
                out.push((entry.producer_id, entry.first_offset));
            }
            if entry.last_stable_offset >= upper_bound {
                break;
            }
        }
        out
    }

    /// The offset of the newest ABORT marker in the index, if any: a read from above it has
    /// no aborted transactions to report.
    pub fn last_marker_offset(&self) -> Option<i64> {
        self.entries.last().map(|(_, e)| e.last_offset)
    }

    /// Every entry, oldest marker first.
    pub fn entries(&self) -> impl Iterator<Item = &AbortedTxn> {
        self.entries.iter().map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn layout_and_round_trip() {
        let entry = txn(7, 10, 20, 21);
        let bytes = entry.encode();
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        assert_eq!(&bytes[26..], &21i64.to_be_bytes());
        let mut two = bytes.to_vec();
        two.extend_from_slice(&txn(8, 5, 30, 31).encode());
        assert_eq!(
            decode_entries(&two).unwrap(),
            vec![entry, txn(8, 5, 30, 31)]
        );
        assert!(decode_entries(&two[..40]).is_err());
        two[34] = 1;
        assert!(decode_entries(&two).is_err());
    }

    #[test]
    fn files_cut_and_query() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TxnIndexes::default();
        idx.append(dir.path(), 0, txn(1, 0, 5, 3)).unwrap();
        idx.append(dir.path(), 0, txn(2, 3, 8, 9)).unwrap();
        idx.append(dir.path(), 10, txn(3, 11, 15, 16)).unwrap();
        idx.sync(dir.path()).unwrap();
        let loaded = TxnIndexes::load(dir.path(), &[0, 10]).unwrap();
        assert_eq!(loaded.entries().count(), 3);
        assert_eq!(idx.aborted_transactions(6, 20), vec![(2, 3), (3, 11)]);
        assert_eq!(idx.aborted_transactions(0, 4), vec![(1, 0), (2, 3)]);
        idx.truncate_from(dir.path(), 8).unwrap();
        assert!(!segment_file(dir.path(), 10, TXN_INDEX_SUFFIX).exists());
        let loaded = TxnIndexes::load(dir.path(), &[0, 10]).unwrap();
        assert_eq!(
            loaded.entries().copied().collect::<Vec<_>>(),
            vec![txn(1, 0, 5, 3)]
        );
        // An entry outside its segment's range is corruption.
        assert!(TxnIndexes::load(dir.path(), &[0, 3]).is_err());
    }
}
