//! The append-only file of fixed-size entries behind both sparse indexes (`.index` and
//! `.timeindex`): opening it and reading what it holds, writing entry `n`, emptying it, trimming
//! it to its whole entries and syncing it. The entry layout belongs to the index modules.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::open_files::CachedFile;

/// An index file of `entry_len`-byte entries, opened through the open-file budget: the entries
/// live in memory (the index modules), so the file is needed only to append, trim and sync.
#[derive(Debug)]
pub(crate) struct EntryFile {
    path: PathBuf,
    file: CachedFile,
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
            file: CachedFile::opened(path, file, true),
            entry_len,
        };
        Ok((entry_file, bytes))
    }

    /// Writes `entry` as entry number `index`.
    pub(crate) fn write(&self, index: usize, entry: &[u8]) -> Result<(), LogError> {
        assert_eq!(entry.len(), self.entry_len, "index entry length");
        self.file
            .get()?
            .write_all_at(entry, (index * self.entry_len) as u64)
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Empties the file, before a rebuild.
    pub(crate) fn clear(&self) -> Result<(), LogError> {
        self.file
            .get()?
            .set_len(0)
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Trims the file to `entries` whole entries (a failed write may have left a partial one)
    /// and syncs it.
    pub(crate) fn trim_and_sync(&self, entries: usize) -> Result<(), LogError> {
        let file = self.file.get()?;
        file.set_len((entries * self.entry_len) as u64)
            .and_then(|()| file.sync_data())
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Closes the cached handle; the next write or sync reopens the file.
    pub(crate) fn close(&self) {
        self.file.close();
    }
}
