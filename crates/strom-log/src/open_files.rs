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
//!
//! The same mechanism bounds the memory of sealed segments' index entries ([`CachedBytes`],
//! Kafka's `LazyIndex`): an index is read from its file on its segment's first lookup, counted
//! in bytes against a second budget ([`set_index_bytes_capacity`]), and dropped by the same
//! CLOCK sweep when loading another would exceed it, so opening a log reads no index contents
//! and a broker's index memory does not grow with the number of segments it hosts.

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

/// What a slot's value costs its budget while cached.
trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for File {
    /// One descriptor.
    fn weight(&self) -> usize {
        1
    }
}

impl Weight for [u8] {
    /// Its bytes.
    fn weight(&self) -> usize {
        self.len()
    }
}

/// One cached value (a file handle, or an index's entries) while it is held.
#[derive(Debug)]
struct Slot<T: ?Sized> {
    value: Mutex<Option<Arc<T>>>,
    /// Set on every use; cleared by an eviction sweep (CLOCK's second chance).
    referenced: AtomicBool,
}

impl<T: ?Sized> Slot<T> {
    fn empty() -> Arc<Slot<T>> {
        Arc::new(Slot {
            value: Mutex::new(None),
            referenced: AtomicBool::new(false),
        })
    }
}

/// A process-wide budget of cached values, in units of their [`Weight`].
#[derive(Debug)]
struct Budget<T: ?Sized> {
    capacity: AtomicUsize,
    /// Slots that were filled when pushed; an emptied or dropped one is skipped by the sweep.
    ring: Mutex<VecDeque<Weak<Slot<T>>>>,
    /// Units held by the cached values right now.
    held: AtomicUsize,
    /// Values cached (first use or reload after eviction), for tests and logs.
    loads: AtomicUsize,
}

impl<T: ?Sized> Budget<T> {
    fn new(capacity: usize) -> Budget<T> {
        Budget {
            capacity: AtomicUsize::new(capacity),
            ring: Mutex::new(VecDeque::new()),
            held: AtomicUsize::new(0),
            loads: AtomicUsize::new(0),
        }
    }
}

fn budget() -> &'static Budget<File> {
    static BUDGET: OnceLock<Budget<File>> = OnceLock::new();
    BUDGET.get_or_init(|| Budget::new(capacity_for_limit()))
}

/// Bytes of loaded index entries the process keeps by default: with Kafka's defaults
/// (`segment.index.bytes` 10 MiB, `index.interval.bytes` 4096) a full 1 GiB segment's two
/// indexes take about 5 MiB, so this holds a few dozen of them.
pub const DEFAULT_INDEX_BYTES_CAPACITY: usize = 128 << 20;

fn index_budget() -> &'static Budget<[u8]> {
    static BUDGET: OnceLock<Budget<[u8]>> = OnceLock::new();
    BUDGET.get_or_init(|| Budget::new(DEFAULT_INDEX_BYTES_CAPACITY))
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
    budget().held.load(Ordering::Relaxed)
}

/// Files opened so far, counting reopens after eviction.
pub fn opens_total() -> usize {
    budget().loads.load(Ordering::Relaxed)
}

/// Sets how many bytes of sealed index entries the process keeps loaded at most (at least 4 KiB;
/// a single index larger than that is still loaded while it is used).
pub fn set_index_bytes_capacity(bytes: usize) {
    index_budget()
        .capacity
        .store(bytes.max(4096), Ordering::Relaxed);
}

/// How many bytes of index entries read from index files the process keeps loaded at most.
pub fn index_bytes_capacity() -> usize {
    index_budget().capacity.load(Ordering::Relaxed)
}

/// Bytes of index entries read from index files and held right now (an active segment's entries
/// that are not yet written are not counted: they cannot be dropped).
pub fn index_bytes_loaded() -> usize {
    index_budget().held.load(Ordering::Relaxed)
}

/// Index files loaded so far, counting reloads after eviction.
pub fn index_loads_total() -> usize {
    index_budget().loads.load(Ordering::Relaxed)
}

impl<T: ?Sized + Weight> Budget<T> {
    /// Records a newly filled slot holding `weight` units and empties others while over
    /// capacity.
    fn admit(&self, slot: &Arc<Slot<T>>, weight: usize) {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let held = self.held.fetch_add(weight, Ordering::Relaxed) + weight;
        let mut ring = self.ring.lock().expect("budget ring poisoned");
        ring.push_back(Arc::downgrade(slot));
        if ring.len() > 2 * ring_bound(self.capacity.load(Ordering::Relaxed)) + 1024 {
            // Slots emptied or dropped while under capacity leave entries behind.
            ring.retain(|weak| {
                weak.upgrade()
                    .is_some_and(|s| s.value.try_lock().map_or(true, |v| v.is_some()))
            });
        }
        let capacity = self.capacity.load(Ordering::Relaxed);
        if held <= capacity {
            return;
        }
        let mut excess = held - capacity;
        // Two full turns at most: the first clears reference bits, the second finds victims.
        let mut budget_steps = ring.len() * 2;
        while excess > 0 && budget_steps > 0 {
            budget_steps -= 1;
            let Some(weak) = ring.pop_front() else { break };
            let Some(candidate) = weak.upgrade() else {
                continue; // dropped: its value was already counted out
            };
            if Arc::ptr_eq(&candidate, slot) || candidate.referenced.swap(false, Ordering::Relaxed)
            {
                ring.push_back(weak);
                continue;
            }
            let released = match candidate.value.try_lock() {
                // A slot that was already emptied just leaves the ring.
                Ok(mut value) => Some(value.take().map_or(0, |v| v.weight())),
                // In use right now: keep it.
                Err(_) => None,
            };
            match released {
                Some(0) => {}
                Some(units) => {
                    self.held.fetch_sub(units, Ordering::Relaxed);
                    excess = excess.saturating_sub(units);
                }
                None => ring.push_back(weak),
            }
        }
    }

    /// Empties `slot` now (holders of its value keep their `Arc` until they finish).
    fn release(&self, slot: &Slot<T>) {
        let taken = slot.value.lock().expect("slot poisoned").take();
        if let Some(value) = taken {
            self.held.fetch_sub(value.weight(), Ordering::Relaxed);
        }
    }
}

/// The ring holds about one entry per cached value; for a byte budget that is far fewer than
/// its capacity, so the compaction bound is taken in entries of a few KiB.
fn ring_bound(capacity: usize) -> usize {
    capacity.min(1 << 20)
}

/// A file reached through the process's open-file budget.
#[derive(Debug)]
pub(crate) struct CachedFile {
    path: PathBuf,
    /// Whether a reopen may create the file (index files; a `.log` file must exist).
    create: bool,
    slot: Arc<Slot<File>>,
}

impl CachedFile {
    /// A handle on `path` that opens it on first use.
    pub(crate) fn lazy(path: &Path, create: bool) -> CachedFile {
        CachedFile {
            path: path.to_path_buf(),
            create,
            slot: Slot::empty(),
        }
    }

    /// A handle on `path` whose file the caller has just opened (read and write).
    pub(crate) fn opened(path: &Path, file: File, create: bool) -> CachedFile {
        let cached = CachedFile::lazy(path, create);
        *cached.slot.value.lock().expect("slot poisoned") = Some(Arc::new(file));
        budget().admit(&cached.slot, 1);
        cached
    }

    /// The open file, opened (read and write) if it is not.
    pub(crate) fn get(&self) -> Result<Arc<File>, LogError> {
        self.slot.referenced.store(true, Ordering::Relaxed);
        let mut guard = self.slot.value.lock().expect("slot poisoned");
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
        budget().admit(&self.slot, 1);
        Ok(file)
    }

    /// Whether the file is open right now.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.slot.value.lock().expect("slot poisoned").is_some()
    }

    /// Closes the cached handle now (readers holding it keep it until they finish).
    pub(crate) fn close(&self) {
        budget().release(&self.slot);
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        self.close();
    }
}

/// Bytes loaded on first use (a sealed index's entries, read from its file) under the process's
/// index memory budget, which may drop them again when other indexes need the room; the next use
/// loads them again. The cache holds one `Arc`: a lookup that took it keeps reading its copy.
#[derive(Debug)]
pub(crate) struct CachedBytes {
    slot: Arc<Slot<[u8]>>,
}

impl CachedBytes {
    /// Nothing loaded yet.
    pub(crate) fn new() -> CachedBytes {
        CachedBytes {
            slot: Slot::empty(),
        }
    }

    /// The loaded bytes, calling `load` first if there are none. The slot stays locked during
    /// `load`, so an eviction sweep skips it and two callers never load it twice.
    pub(crate) fn get_or_load(
        &self,
        load: impl FnOnce() -> Result<Arc<[u8]>, LogError>,
    ) -> Result<Arc<[u8]>, LogError> {
        self.slot.referenced.store(true, Ordering::Relaxed);
        let mut guard = self.slot.value.lock().expect("slot poisoned");
        if let Some(bytes) = guard.as_ref() {
            return Ok(Arc::clone(bytes));
        }
        let bytes = load()?;
        let weight = bytes.len();
        *guard = Some(Arc::clone(&bytes));
        drop(guard);
        index_budget().admit(&self.slot, weight);
        Ok(bytes)
    }

    /// How many bytes are loaded right now (0 if none).
    pub(crate) fn loaded_len(&self) -> usize {
        self.slot
            .value
            .lock()
            .expect("slot poisoned")
            .as_ref()
            .map_or(0, |bytes| bytes.len())
    }

    /// Drops the loaded bytes; the next [`CachedBytes::get_or_load`] loads them again.
    pub(crate) fn clear(&self) {
        index_budget().release(&self.slot);
    }
}

impl Drop for CachedBytes {
    fn drop(&mut self) {
        self.clear();
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

    #[test]
    fn loaded_bytes_are_dropped_under_the_index_budget_and_loaded_again() {
        set_index_bytes_capacity(10_000);
        let caches: Vec<CachedBytes> = (0..8).map(|_| CachedBytes::new()).collect();
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let load = |i: usize| {
            loads.fetch_add(1, Ordering::Relaxed);
            Ok(Arc::from(vec![i as u8; 3_000]))
        };
        assert_eq!(caches[0].loaded_len(), 0);
        for (i, cache) in caches.iter().enumerate() {
            let bytes = cache.get_or_load(|| load(i)).unwrap();
            assert_eq!(bytes[0], i as u8);
            // Over capacity, others were dropped, never the one just loaded.
            assert_eq!(cache.loaded_len(), 3_000);
            assert!(index_bytes_loaded() <= 10_000, "{}", index_bytes_loaded());
        }
        let held: usize = caches.iter().map(CachedBytes::loaded_len).sum();
        assert_eq!(held, index_bytes_loaded());
        assert!(held <= 9_000);
        // A dropped one loads again on its next use, with the same contents.
        let dropped = caches.iter().position(|c| c.loaded_len() == 0).unwrap();
        let before = loads.load(Ordering::Relaxed);
        assert_eq!(
            caches[dropped].get_or_load(|| load(dropped)).unwrap()[0],
            dropped as u8
        );
        assert_eq!(loads.load(Ordering::Relaxed), before + 1);
        // A loaded one does not.
        let before = loads.load(Ordering::Relaxed);
        caches[dropped].get_or_load(|| load(99)).unwrap();
        assert_eq!(loads.load(Ordering::Relaxed), before);
        drop(caches);
        assert_eq!(index_bytes_loaded(), 0);
    }
}
