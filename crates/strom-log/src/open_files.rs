//! The budget of open segment files: every `.log`, `.index` and `.timeindex` file is reached
//! through a [`CachedFile`], which opens the file on first use and may be closed again when the
//! process holds more such files than its budget allows, so the number of partitions and
//! segments a broker hosts is not bounded by `RLIMIT_NOFILE` (each segment used to hold three
//! descriptors for its whole life).
//!
//! Eviction is the CLOCK approximation of least-recently-used: a use only sets the file's
//! `referenced` bit (no shared lock on the hot path); opening a file past the budget sweeps a
//! ring of open files, giving referenced ones a second chance and closing the first one that
//! was not used since the last sweep. A file in use at that moment (its slot lock held) is
//! skipped. Closing drops the cache's `Arc<File>`: a reader that was handed the same `Arc`
//! (a `FileSlice` on its way to `sendfile`) keeps the descriptor open until it is done, so
//! handed-out bytes stay readable; the budget counts cached handles, and the caller's headroom
//! covers those in flight.
//!
//! The budget is one per process, as `RLIMIT_NOFILE` is: [`set_capacity`] sets it (the log
//! manager derives it from the limit at start); until then it is derived the same way.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::error::LogError;

/// Descriptors kept out of the budget for sockets, listeners and short-lived files (checkpoints,
/// snapshots, metadata, directory fsyncs, file ranges in flight): a quarter of the limit, at
/// least 64.
pub fn headroom(open_files_limit: u64) -> u64 {
    (open_files_limit / 4).max(64)
}

/// The process's soft `RLIMIT_NOFILE`, or `None` if it cannot be read or is unlimited.
pub fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed by pointer.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// The budget derived from the current limit: the limit minus [`headroom`], at least 16.
pub fn capacity_for_limit() -> usize {
    let limit = open_files_limit().unwrap_or(1 << 20);
    (limit.saturating_sub(headroom(limit)) as usize).max(16)
}

/// One cached file: its handle while open.
#[derive(Debug)]
struct Slot {
    file: Mutex<Option<Arc<File>>>,
    /// Set on every use; cleared by an eviction sweep (CLOCK's second chance).
    referenced: AtomicBool,
}

#[derive(Debug)]
struct Budget {
    capacity: AtomicUsize,
    /// Slots that were open when pushed; a closed or dropped one is skipped by the sweep.
    ring: Mutex<VecDeque<Weak<Slot>>>,
    /// Cached handles currently open.
    open: AtomicUsize,
    /// Files opened (first use or reopen after eviction), for tests and logs.
    opens: AtomicUsize,
}

fn budget() -> &'static Budget {
    static BUDGET: OnceLock<Budget> = OnceLock::new();
    BUDGET.get_or_init(|| Budget {
        capacity: AtomicUsize::new(capacity_for_limit()),
        ring: Mutex::new(VecDeque::new()),
        open: AtomicUsize::new(0),
        opens: AtomicUsize::new(0),
    })
}

/// Sets how many segment files the process keeps open at most (at least 4).
pub fn set_capacity(files: usize) {
    budget().capacity.store(files.max(4), Ordering::Relaxed);
}

/// How many segment files the process keeps open at most.
pub fn capacity() -> usize {
    budget().capacity.load(Ordering::Relaxed)
}

/// Segment files open right now (cached handles; ranges in flight are not counted).
pub fn open_count() -> usize {
    budget().open.load(Ordering::Relaxed)
}

/// Files opened so far, counting reopens after eviction.
pub fn opens_total() -> usize {
    budget().opens.load(Ordering::Relaxed)
}

impl Budget {
    /// Records a newly opened slot and closes others while over capacity.
    fn admit(&self, slot: &Arc<Slot>) {
        self.opens.fetch_add(1, Ordering::Relaxed);
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        let mut ring = self.ring.lock().expect("open-file ring poisoned");
        ring.push_back(Arc::downgrade(slot));
        if ring.len() > 2 * self.capacity.load(Ordering::Relaxed) + 1024 {
            // Slots closed or dropped while under capacity leave entries behind.
            ring.retain(|weak| {
                weak.upgrade()
                    .is_some_and(|s| s.file.try_lock().map_or(true, |f| f.is_some()))
            });
        }
        let capacity = self.capacity.load(Ordering::Relaxed);
        if open <= capacity {
            return;
        }
        let mut excess = open - capacity;
        // Two full turns at most: the first clears reference bits, the second finds victims.
        let mut budget_steps = ring.len() * 2;
        while excess > 0 && budget_steps > 0 {
            budget_steps -= 1;
            let Some(weak) = ring.pop_front() else { break };
            let Some(candidate) = weak.upgrade() else {
                continue; // dropped: its handle was already counted out
            };
            if Arc::ptr_eq(&candidate, slot) || candidate.referenced.swap(false, Ordering::Relaxed)
            {
                ring.push_back(weak);
                continue;
            }
            let closed = match candidate.file.try_lock() {
                // A slot that was already closed just leaves the ring.
                Ok(mut file) => Some(file.take().is_some()),
                // In use right now: keep it.
                Err(_) => None,
            };
            match closed {
                Some(true) => {
                    self.open.fetch_sub(1, Ordering::Relaxed);
                    excess -= 1;
                }
                Some(false) => {}
                None => ring.push_back(weak),
            }
        }
    }

    fn forget(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A file reached through the process's open-file budget.
#[derive(Debug)]
pub(crate) struct CachedFile {
    path: PathBuf,
    /// Whether a reopen may create the file (index files; a `.log` file must exist).
    create: bool,
    slot: Arc<Slot>,
}

impl CachedFile {
    /// A handle on `path` that opens it on first use.
    pub(crate) fn lazy(path: &Path, create: bool) -> CachedFile {
        CachedFile {
            path: path.to_path_buf(),
            create,
            slot: Arc::new(Slot {
                file: Mutex::new(None),
                referenced: AtomicBool::new(false),
            }),
        }
    }

    /// A handle on `path` whose file the caller has just opened (read and write).
    pub(crate) fn opened(path: &Path, file: File, create: bool) -> CachedFile {
        let cached = CachedFile::lazy(path, create);
        *cached.slot.file.lock().expect("slot poisoned") = Some(Arc::new(file));
        budget().admit(&cached.slot);
        cached
    }

    /// The open file, opened (read and write) if it is not.
    pub(crate) fn get(&self) -> Result<Arc<File>, LogError> {
        self.slot.referenced.store(true, Ordering::Relaxed);
        let mut guard = self.slot.file.lock().expect("slot poisoned");
        if let Some(file) = guard.as_ref() {
            return Ok(Arc::clone(file));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(self.create)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| LogError::io(&self.path, e))?;
        let file = Arc::new(file);
        *guard = Some(Arc::clone(&file));
        drop(guard);
        budget().admit(&self.slot);
        Ok(file)
    }

    /// Whether the file is open right now.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.slot.file.lock().expect("slot poisoned").is_some()
    }

    /// Closes the cached handle now (readers holding it keep it until they finish).
    pub(crate) fn close(&self) {
        if self
            .slot
            .file
            .lock()
            .expect("slot poisoned")
            .take()
            .is_some()
        {
            budget().forget();
        }
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopens_on_demand_and_handed_out_handles_outlive_eviction() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, b"hello").unwrap();
        let cached = CachedFile::lazy(&path, false);
        assert!(!cached.is_open());
        let handle = cached.get().unwrap();
        assert!(cached.is_open());
        cached.close();
        assert!(!cached.is_open());
        // The handle handed out before the close still reads.
        let mut buffer = [0u8; 5];
        handle.read_exact_at(&mut buffer, 0).unwrap();
        assert_eq!(&buffer, b"hello");
        // And the cached file reopens on the next use.
        cached.get().unwrap().read_exact_at(&mut buffer, 0).unwrap();
        assert_eq!(&buffer, b"hello");
        assert!(cached.is_open());
        // A missing file without `create` is an error, not a new file.
        let missing = CachedFile::lazy(&dir.path().join("missing"), false);
        assert!(missing.get().is_err());
        assert!(!dir.path().join("missing").exists());
    }
}
