//! The append-only file of fixed-size entries behind both sparse indexes (`.index` and
//! `.timeindex`): what opening it learns without reading it (whether it exists, whether it holds
//! whole entries, its last entry), loading its entries on first use, appending entries, emptying
//! it, writing and syncing what was appended. The entry layout and the sanity rules belong to
//! the index modules.
//!
//! Entries have two homes. Those the file held when it was opened (or written by a sync) are
//! *persisted*: they are read from the file only when a lookup needs them, kept as one
//! `Arc<[u8]>` under the process's index memory budget ([`crate::open_files::CachedBytes`]),
//! and may be dropped and read again. Entries appended since are *pending*: kept in memory and
//! written only by [`EntryFile::trim_and_sync`], which the segment calls when it is sealed (and
//! recovery after a rebuild). An active segment's indexes are never read back while it is active
//! (a clean close seals it; after a crash it is re-read and its indexes rebuilt), so until then
//! the file needs no descriptor: an active segment costs one open file, its `.log`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::LogError;
use crate::open_files::{CachedBytes, CachedFile};

/// What [`EntryFile::open`] found without reading the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryFileState {
    /// The file existed.
    pub(crate) existed: bool,
    /// Its length is a whole number of entries.
    pub(crate) whole: bool,
    /// Its last whole entry, if any.
    pub(crate) last: Option<Vec<u8>>,
}

/// An index file of `entry_len`-byte entries: persisted entries loaded lazily, pending ones in
/// memory, and a handle opened through the open-file budget only to write, empty or sync it.
#[derive(Debug)]
pub(crate) struct EntryFile {
    path: PathBuf,
    file: CachedFile,
    entry_len: usize,
    /// Entries the file holds (as far as this process wrote or found them).
    persisted: usize,
    /// Entries appended since, not yet written.
    pending: Vec<u8>,
    /// Invariant: when loaded, the first `persisted` entries of the file as they were read,
    /// or nothing (zero bytes) if they failed the index's sanity check.
    loaded: CachedBytes,
}

impl EntryFile {
    /// A file with no entries that does not exist yet (a new segment's index); no I/O.
    pub(crate) fn new_empty(path: &Path, entry_len: usize) -> EntryFile {
        EntryFile {
            path: path.to_path_buf(),
            file: CachedFile::lazy(path, true),
            entry_len,
            persisted: 0,
            pending: Vec::new(),
            loaded: CachedBytes::new(),
        }
    }

    /// Looks at the file at `path` (if any): its length and its last entry, and nothing else.
    /// The file is not created and no descriptor is kept.
    pub(crate) fn open(
        path: &Path,
        entry_len: usize,
    ) -> Result<(EntryFile, EntryFileState), LogError> {
        let mut entry_file = EntryFile::new_empty(path, entry_len);
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let state = EntryFileState {
                    existed: false,
                    whole: true,
                    last: None,
                };
                return Ok((entry_file, state));
            }
            Err(e) => return Err(LogError::io(path, e)),
        };
        let len = file.metadata().map_err(|e| LogError::io(path, e))?.len() as usize;
        entry_file.persisted = len / entry_len;
        let last = match entry_file.persisted {
            0 => None,
            n => {
                let mut entry = vec![0; entry_len];
                file.read_exact_at(&mut entry, ((n - 1) * entry_len) as u64)
                    .map_err(|e| LogError::io(path, e))?;
                Some(entry)
            }
        };
        let state = EntryFileState {
            existed: true,
            whole: len.is_multiple_of(entry_len),
            last,
        };
        Ok((entry_file, state))
    }

    /// Reads the persisted entries from the file, without caching them. `None` if the file no
    /// longer holds them (it was shortened or removed under the log).
    pub(crate) fn read_persisted(&self) -> Result<Option<Vec<u8>>, LogError> {
        let mut bytes = vec![0; self.persisted * self.entry_len];
        if bytes.is_empty() {
            return Ok(Some(bytes));
        }
        let read = File::open(&self.path).and_then(|file| file.read_exact_at(&mut bytes, 0));
        match read {
            Ok(()) => Ok(Some(bytes)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(LogError::io(&self.path, e)),
        }
    }

    /// The persisted entries, read on first use and checked with `sane`. Entries that fail the
    /// check (or that the file no longer holds) are replaced by none at all, with a warning: an
    /// index is a hint, and a lookup without one starts at the segment's first batch.
    pub(crate) fn persisted_entries(
        &self,
        sane: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Arc<[u8]>, LogError> {
        self.loaded.get_or_load(|| {
            let bytes = match self.read_persisted()? {
                Some(bytes) if sane(&bytes) => bytes,
                _ => {
                    tracing::warn!(index = %self.path.display(),
                        "index file fails its sanity check; lookups in this segment scan from its start");
                    Vec::new()
                }
            };
            Ok(Arc::from(bytes))
        })
    }

    /// Entry number `index` (persisted, read from the file, or pending), if there is one and it
    /// can be read.
    // Called by replication's `Segment::truncate_to` (branch `flog`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn entry(&self, index: Option<usize>) -> Option<Vec<u8>> {
        let index = index?;
        if index >= self.persisted {
            let at = (index - self.persisted) * self.entry_len;
            return self
                .pending
                .get(at..at + self.entry_len)
                .map(<[u8]>::to_vec);
        }
        let mut entry = vec![0; self.entry_len];
        let file = File::open(&self.path).ok()?;
        file.read_exact_at(&mut entry, (index * self.entry_len) as u64)
            .ok()?;
        Some(entry)
    }

    /// Number of persisted entries.
    pub(crate) fn persisted(&self) -> usize {
        self.persisted
    }

    /// The pending entries' bytes.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Number of entries, persisted and pending.
    pub(crate) fn len(&self) -> usize {
        self.persisted + self.pending.len() / self.entry_len
    }

    /// Bytes of entries held in memory: loaded persisted entries and pending ones.
    pub(crate) fn bytes_in_memory(&self) -> usize {
        self.loaded.loaded_len() + self.pending.len()
    }

    /// Drops the loaded entries, as the index memory budget may.
    #[cfg(test)]
    pub(crate) fn drop_loaded(&self) {
        self.loaded.clear();
    }

    /// Appends `entry` as entry number `index` (in memory until the next sync).
    pub(crate) fn write(&mut self, index: usize, entry: &[u8]) -> Result<(), LogError> {
        assert_eq!(entry.len(), self.entry_len, "index entry length");
        assert_eq!(index, self.len(), "index entries are appended in order");
        self.pending.extend_from_slice(entry);
        Ok(())
    }

    /// Keeps only the first `entries` entries (replication's truncation). Entries already in
    /// the file stay there until the next [`EntryFile::trim_and_sync`] cuts the file to the
    /// entries it has, so a crash before that leaves an index with entries past its segment's
    /// end, which the open-time sanity check (or recovery of the active segment) rebuilds.
    // Called by replication's `Segment::truncate_to` (branch `flog`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn truncate(&mut self, entries: usize) {
        if entries >= self.persisted {
            self.pending
                .truncate((entries - self.persisted) * self.entry_len);
        } else {
            self.persisted = entries;
            self.pending.clear();
            // The loaded copy would hold entries that are gone.
            self.loaded.clear();
        }
    }

    /// Empties the file, before a rebuild.
    pub(crate) fn clear(&mut self) -> Result<(), LogError> {
        self.pending.clear();
        self.persisted = 0;
        self.loaded.clear();
        self.file
            .get()?
            .set_len(0)
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Writes the pending entries, trims the file to `entries` whole entries (a failed write
    /// may have left a partial one) and syncs it.
    pub(crate) fn trim_and_sync(&mut self, entries: usize) -> Result<(), LogError> {
        let file = self.file.get()?;
        if !self.pending.is_empty() {
            file.write_all_at(&self.pending, (self.persisted * self.entry_len) as u64)
                .map_err(|e| LogError::io(&self.path, e))?;
            self.persisted += self.pending.len() / self.entry_len;
            self.pending = Vec::new();
            // The loaded copy no longer covers every persisted entry; the next lookup rereads.
            self.loaded.clear();
        }
        assert_eq!(entries, self.persisted, "index entries written");
        file.set_len((entries * self.entry_len) as u64)
            .and_then(|()| file.sync_data())
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Closes the cached handle; the next write or sync reopens the file.
    pub(crate) fn close(&self) {
        self.file.close();
    }
}

/// How many entries of `entries` (ordered so that `below` holds for a prefix) `below` holds for.
// Called by replication's `Segment::truncate_to` (branch `flog`).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn count_below(
    entries: &[u8],
    entry_len: usize,
    below: impl Fn(&[u8]) -> bool,
) -> usize {
    entries.len() / entry_len
        - entries
            .chunks_exact(entry_len)
            .rev()
            .take_while(|entry| !below(entry))
            .count()
}

/// The last entry of `entries` (whole `entry_len`-byte entries, ordered so that `below` holds
/// for a prefix) for which `below` holds, by binary search.
pub(crate) fn floor_entry(
    entries: &[u8],
    entry_len: usize,
    below: impl Fn(&[u8]) -> bool,
) -> Option<&[u8]> {
    let entry = |i: usize| &entries[i * entry_len..(i + 1) * entry_len];
    let (mut low, mut high) = (0, entries.len() / entry_len);
    while low < high {
        let middle = low + (high - low) / 2;
        if below(entry(middle)) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    (low > 0).then(|| entry(low - 1))
}
