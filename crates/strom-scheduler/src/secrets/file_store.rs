//! The embedded secret store: a directory, as DC/OS's secret store was a service of the cluster.
//!
//! On-disk format: the secret at path `a/b/x` is the file `D/a/b/x.secret` (the suffix lets a
//! secret `a/b` and a secret `a/b/x` coexist), holding the value's bytes as given. Directories
//! are created mode 0700 and files mode 0600; a value is written to a `.tmp` beside it, fsynced
//! and renamed, so a reader sees the old value or the new one. The store belongs to the machine
//! (or the operator), not to one service: uninstalling a service leaves its secrets.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{check_path, SecretError, SecretStore};

const SUFFIX: &str = ".secret";

/// A secret store in a directory. See the module documentation.
#[derive(Clone, Debug)]
pub struct FileSecretStore {
    dir: PathBuf,
}

impl FileSecretStore {
    /// Opens (creating it, mode 0700) the store in `dir`.
    pub fn open(dir: &Path) -> Result<FileSecretStore, SecretError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(FileSecretStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, path: &str) -> Result<PathBuf, SecretError> {
        check_path(path)?;
        Ok(self.dir.join(format!("{path}{SUFFIX}")))
    }

    /// Stores `value` at `path`; an existing secret is refused unless `overwrite`.
    pub fn put(&self, path: &str, value: &[u8], overwrite: bool) -> Result<(), SecretError> {
        let file = self.file(path)?;
        if !overwrite && file.exists() {
            return Err(SecretError::Exists {
                path: path.to_string(),
            });
        }
        if let Some(parent) = file.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        let tmp = file.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        out.write_all(value)?;
        out.sync_all()?;
        fs::rename(&tmp, &file)?;
        Ok(())
    }

    /// Deletes the secret at `path`; whether it existed.
    pub fn delete(&self, path: &str) -> Result<bool, SecretError> {
        match fs::remove_file(self.file(path)?) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Every secret's path, sorted.
    pub fn list(&self) -> Result<Vec<String>, SecretError> {
        let mut paths = Vec::new();
        let mut pending = vec![self.dir.clone()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    pending.push(path);
                    continue;
                }
                let Ok(relative) = path.strip_prefix(&self.dir) else {
                    continue;
                };
                let Some(name) = relative.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                    continue;
                };
                if check_path(name).is_ok() {
                    paths.push(name.to_string());
                }
            }
        }
        paths.sort();
        Ok(paths)
    }
}

impl SecretStore for FileSecretStore {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SecretError> {
        match fs::read(self.file(path)?) {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}
