//! The file [`Persister`]: the default state store of a scheduler on one machine. A shell, not
//! part of the pure core: it does file I/O.
//!
//! On-disk format, in the state directory `D`:
//! - every node with a value is the file `D/store/<path>` holding exactly the value's bytes, so
//!   the SDK's node names appear as files (`store/ConfigTarget`, `store/Configurations/<uuid>`,
//!   `store/Tasks/kafka-0-broker/TaskInfo`, `store/Properties/<key>`, `store/FrameworkID`); a
//!   node is a value or a parent, never both (the SDK's schema never needs both);
//! - `D/store.journal` exists only while an [`Persister::apply`] is in progress: the JSON list of
//!   its writes. It is written to `store.journal.tmp`, fsynced and renamed into place before
//!   any node changes, and removed after every write landed. Opening the store replays a journal
//!   it finds (each write is idempotent), so after a crash either all of an apply is visible or —
//!   when the crash came before the rename — none of it;
//! - each value is written to `<file>.tmp`, fsynced and renamed over `<file>` (a torn value is
//!   never visible; names ending in `.tmp` are not nodes);
//! - `D/lock` is held with `flock(LOCK_EX | LOCK_NB)` for the store's lifetime and holds the
//!   owner's pid: a second scheduler for the same state directory refuses to start. The kernel
//!   drops the lock when the process dies (kill -9 included), so a stale file never blocks.
//!
//! Assumptions about the disk: `rename` within a directory is atomic, and an fsynced file and
//! its fsynced directory survive a power loss.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{Persister, StoreError};

const JOURNAL: &str = "store.journal";
const TMP_SUFFIX: &str = ".tmp";

/// One write of a journaled apply.
#[derive(Serialize, Deserialize)]
struct JournalWrite {
    path: String,
    value: Option<Vec<u8>>,
}

/// A [`Persister`] on files under a state directory. See the module documentation.
pub struct FilePersister {
    dir: PathBuf,
    /// Held open for the `flock`; the lock goes when the file closes.
    _lock: File,
}

fn io(context: &str, path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Io(format!("{context} {}: {error}", path.display()))
}

/// Checks a node path: `/`-separated, no empty, `.`, `..` or `*.tmp` components.
fn checked(path: &str) -> Result<&str, StoreError> {
    let bad = path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == ".." || part.ends_with(TMP_SUFFIX));
    if bad && !path.is_empty() {
        return Err(StoreError::Io(format!("invalid node path {path:?}")));
    }
    Ok(path)
}

impl FilePersister {
    /// Opens (creating) the store in `dir`, takes the lock and replays an unfinished apply.
    /// Fails with a message naming the holder when another process has the lock.
    pub fn open(dir: &Path) -> Result<FilePersister, StoreError> {
        fs::create_dir_all(dir.join("store")).map_err(|e| io("cannot create", dir, e))?;
        let lock_path = dir.join("lock");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io("cannot open", &lock_path, e))?;
        // SAFETY: flock on a file descriptor this function owns; no memory is passed.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            return Err(StoreError::Io(format!(
                "the state directory {} is locked by another scheduler (pid {}); \
                 a second scheduler for the same service refuses to start",
                dir.display(),
                holder.trim()
            )));
        }
        lock.set_len(0)
            .map_err(|e| io("cannot write", &lock_path, e))?;
        lock.write_all(std::process::id().to_string().as_bytes())
            .map_err(|e| io("cannot write", &lock_path, e))?;
        let store = FilePersister {
            dir: dir.to_path_buf(),
            _lock: lock,
        };
        store.replay()?;
        Ok(store)
    }

    fn node(&self, path: &str) -> PathBuf {
        let mut file = self.dir.join("store");
        if !path.is_empty() {
            file.push(path);
        }
        file
    }

    fn replay(&self) -> Result<(), StoreError> {
        let journal = self.dir.join(JOURNAL);
        let bytes = match fs::read(&journal) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io("cannot read", &journal, error)),
        };
        let writes: Vec<JournalWrite> =
            serde_json::from_slice(&bytes).map_err(|error| StoreError::Corrupt {
                path: JOURNAL.into(),
                reason: error.to_string(),
            })?;
        self.write_all(&writes)?;
        fs::remove_file(&journal).map_err(|e| io("cannot remove", &journal, e))?;
        sync_dir(&self.dir)
    }

    fn write_all(&self, writes: &[JournalWrite]) -> Result<(), StoreError> {
        for write in writes {
            let file = self.node(&write.path);
            match &write.value {
                Some(value) => {
                    let parent = file.parent().expect("a node has a parent");
                    fs::create_dir_all(parent).map_err(|e| io("cannot create", parent, e))?;
                    write_atomically(&file, value)?;
                }
                None if write.path.is_empty() => {
                    // The whole store (uninstall): empty the directory but keep it.
                    for entry in read_dir(&file)? {
                        remove(&file.join(entry))?;
                    }
                }
                None => remove(&file)?,
            }
        }
        Ok(())
    }
}

fn read_dir(dir: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) if error.kind() == ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(error) => return Err(io("cannot list", dir, error)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io("cannot list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(TMP_SUFFIX) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn remove(path: &Path) -> Result<(), StoreError> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => Err(error),
    };
    result.map_err(|e| io("cannot remove", path, e))
}

fn write_atomically(file: &Path, value: &[u8]) -> Result<(), StoreError> {
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let mut out = File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
    out.write_all(value)
        .and_then(|()| out.sync_all())
        .map_err(|e| io("cannot write", &tmp, e))?;
    fs::rename(&tmp, file).map_err(|e| io("cannot rename", &tmp, e))?;
    sync_dir(file.parent().expect("a node has a parent"))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync", dir, e))
}

impl Persister for FilePersister {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let file = self.node(checked(path)?);
        match fs::read(&file) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(io("cannot read", &file, error)),
        }
    }

    fn children(&self, path: &str) -> Result<Vec<String>, StoreError> {
        read_dir(&self.node(checked(path)?))
    }

    fn apply(&mut self, writes: Vec<(String, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let mut journal = Vec::with_capacity(writes.len());
        for (path, value) in writes {
            checked(&path)?;
            journal.push(JournalWrite { path, value });
        }
        if journal.len() == 1 && journal[0].value.is_some() {
            // One value: its rename is atomic by itself.
            return self.write_all(&journal);
        }
        let bytes = serde_json::to_vec(&journal).expect("a journal always serializes");
        write_atomically(&self.dir.join(JOURNAL), &bytes)?;
        self.write_all(&journal)?;
        let path = self.dir.join(JOURNAL);
        fs::remove_file(&path).map_err(|e| io("cannot remove", &path, e))?;
        sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemPersister;

    fn apply_both(
        file: &mut FilePersister,
        mem: &mut MemPersister,
        writes: &[(&str, Option<&str>)],
    ) {
        let writes: Vec<(String, Option<Vec<u8>>)> = writes
            .iter()
            .map(|(p, v)| (p.to_string(), v.map(|v| v.as_bytes().to_vec())))
            .collect();
        file.apply(writes.clone()).unwrap();
        mem.apply(writes).unwrap();
    }

    #[test]
    fn behaves_like_the_memory_store_and_names_nodes_as_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = FilePersister::open(dir.path()).unwrap();
        let mut mem = MemPersister::new();
        apply_both(
            &mut file,
            &mut mem,
            &[
                ("Tasks/kafka-0-broker/TaskInfo", Some("a")),
                ("Tasks/kafka-0-broker/TaskStatus", Some("b")),
                ("Tasks/kafka-1-broker/TaskInfo", Some("c")),
                ("ConfigTarget", Some("t")),
            ],
        );
        apply_both(&mut file, &mut mem, &[("Tasks/kafka-0-broker", None)]);
        apply_both(&mut file, &mut mem, &[("ConfigTarget", Some("u"))]);
        for parent in ["", "Tasks", "Tasks/kafka-1-broker", "Nothing"] {
            assert_eq!(
                file.children(parent).unwrap(),
                mem.children(parent).unwrap()
            );
        }
        for path in mem.paths() {
            assert_eq!(file.get(&path).unwrap(), mem.get(&path).unwrap(), "{path}");
        }
        assert_eq!(file.get("Tasks/kafka-0-broker/TaskInfo").unwrap(), None);
        assert_eq!(
            fs::read(dir.path().join("store/Tasks/kafka-1-broker/TaskInfo")).unwrap(),
            b"c"
        );
        apply_both(&mut file, &mut mem, &[("", None)]);
        assert!(file.children("").unwrap().is_empty());
        assert!(file.set("../escape", b"x".to_vec()).is_err());
    }

    #[test]
    fn a_second_store_on_the_same_directory_refuses_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let first = FilePersister::open(dir.path()).unwrap();
        let error = FilePersister::open(dir.path()).err().expect("locked");
        let message = error.to_string();
        assert!(message.contains("locked by another scheduler"), "{message}");
        assert!(
            message.contains(&std::process::id().to_string()),
            "{message}"
        );
        drop(first);
        FilePersister::open(dir.path()).unwrap();
    }

    #[test]
    fn an_interrupted_apply_is_finished_on_open_and_a_torn_journal_write_is_invisible() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = FilePersister::open(dir.path()).unwrap();
            store.set("Tasks/a/TaskInfo", b"old".to_vec()).unwrap();
        }
        // A crash after the journal landed but before the writes: replayed on open.
        let journal = vec![
            JournalWrite {
                path: "Tasks/a".into(),
                value: None,
            },
            JournalWrite {
                path: "Tasks/b/TaskInfo".into(),
                value: Some(b"new".to_vec()),
            },
        ];
        fs::write(
            dir.path().join(JOURNAL),
            serde_json::to_vec(&journal).unwrap(),
        )
        .unwrap();
        // A crash while writing the next journal: its tmp file is ignored.
        fs::write(dir.path().join("store.journal.tmp"), b"[{\"pa").unwrap();
        let store = FilePersister::open(dir.path()).unwrap();
        assert_eq!(store.children("Tasks").unwrap(), ["b"]);
        assert_eq!(store.get("Tasks/b/TaskInfo").unwrap().unwrap(), b"new");
        assert!(!dir.path().join(JOURNAL).exists());
    }
}
