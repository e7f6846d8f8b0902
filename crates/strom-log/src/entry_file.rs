//! The append-only file of fixed-size entries behind both sparse indexes (`.index` and
//! `.timeindex`): opening it and reading what it holds, appending entries, emptying it, writing
//! and syncing what was appended. The entry layout belongs to the index modules.
//!
//! Appended entries are kept in memory and written only by [`EntryFile::trim_and_sync`], which
//! the segment calls when it is sealed (and recovery after a rebuild). An active segment's
//! indexes are never read from disk (a clean close seals it; after a crash it is re-read and its
//! indexes rebuilt), so until then the file needs no descriptor: an active segment costs one open
//! file, its `.log`.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::open_files::CachedFile;

/// An index file of `entry_len`-byte entries, opened through the open-file budget only when
/// it is written, emptied or synced.
#[derive(Debug)]
pub(crate) struct EntryFile {
    path: PathBuf,
    file: CachedFile,
    entry_len: usize,
    /// Entries the file holds (as far as this process wrote or read them).
    persisted: usize,
    /// Entries appended since, not yet written.
    pending: Vec<u8>,
}

impl EntryFile {
    /// Opens (creating if missing) the file and returns it with its current content; the
    /// handle is closed again until the file is next written.
    pub(crate) fn open(path: &Path, entry_len: usize) -> Result<(EntryFile, Vec<u8>), LogError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| LogError::io(path, e))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| LogError::io(path, e))?;
        let entry_file = EntryFile {
            path: path.to_path_buf(),
            file: CachedFile::lazy(path, true),
            entry_len,
            persisted: bytes.len() / entry_len,
            pending: Vec::new(),
        };
        Ok((entry_file, bytes))
    }

    /// Appends `entry` as entry number `index` (in memory until the next sync).
    pub(crate) fn write(&mut self, index: usize, entry: &[u8]) -> Result<(), LogError> {
        assert_eq!(entry.len(), self.entry_len, "index entry length");
        assert_eq!(
            index,
            self.persisted + self.pending.len() / self.entry_len,
            "index entries are appended in order"
        );
        self.pending.extend_from_slice(entry);
        Ok(())
    }

    /// Keeps only the first `entries` entries. Entries already in the file stay there until the
    /// next [`EntryFile::trim_and_sync`] cuts the file to the entries it has, so a crash before
    /// that leaves an index with entries past its segment's end, which the open-time sanity
    /// check (or recovery of the active segment) rebuilds.
    pub(crate) fn truncate(&mut self, entries: usize) {
        if entries >= self.persisted {
            self.pending
                .truncate((entries - self.persisted) * self.entry_len);
        } else {
            self.persisted = entries;
            self.pending.clear();
        }
    }

    /// Empties the file, before a rebuild.
    pub(crate) fn clear(&mut self) -> Result<(), LogError> {
        self.pending.clear();
        self.persisted = 0;
        self.file
            .get()?
            .set_len(0)
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Writes the appended entries, trims the file to `entries` whole entries (a failed write
    /// may have left a partial one) and syncs it.
    pub(crate) fn trim_and_sync(&mut self, entries: usize) -> Result<(), LogError> {
        let file = self.file.get()?;
        if !self.pending.is_empty() {
            file.write_all_at(&self.pending, (self.persisted * self.entry_len) as u64)
                .map_err(|e| LogError::io(&self.path, e))?;
            self.persisted += self.pending.len() / self.entry_len;
            self.pending.clear();
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
