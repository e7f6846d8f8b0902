//! The append-only file of fixed-size entries behind both sparse indexes (`.index` and
//! `.timeindex`): opening it and reading what it holds, writing entry `n`, emptying it, trimming
//! it to its whole entries and syncing it. The entry layout belongs to the index modules.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::LogError;

/// An index file of `entry_len`-byte entries.
#[derive(Debug)]
pub(crate) struct EntryFile {
    path: PathBuf,
    file: File,
    entry_len: usize,
}

impl EntryFile {
    /// Opens (creating if missing) the file and returns it with its current content.
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
            file,
            entry_len,
        };
        Ok((entry_file, bytes))
    }

    /// Writes `entry` as entry number `index`.
    pub(crate) fn write(&self, index: usize, entry: &[u8]) -> Result<(), LogError> {
        assert_eq!(entry.len(), self.entry_len, "index entry length");
        self.file
            .write_all_at(entry, (index * self.entry_len) as u64)
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Empties the file, before a rebuild.
    pub(crate) fn clear(&self) -> Result<(), LogError> {
        self.file
            .set_len(0)
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Trims the file to `entries` whole entries (a failed write may have left a partial one)
    /// and syncs it.
    pub(crate) fn trim_and_sync(&self, entries: usize) -> Result<(), LogError> {
        self.file
            .set_len((entries * self.entry_len) as u64)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| LogError::io(&self.path, e))
    }
}
