//! Broker-wide group commit: one sync pass covers every partition with data waiting to become
//! durable, instead of each partition running its own sync loop.
//!
//! A produce that needs durability registers its partition (`SyncDriver::request`) and waits
//! on the partition's high watermark, which the pass moves. The driver task (started on the
//! first request, gone when there is no work) takes the whole set of registered partitions,
//! reads each one's active segment and end offset under its log's mutex, makes the files
//! durable on the blocking pool, then moves every covered recovery point and high watermark
//! and wakes the partitions' watermark waiters. Partitions registered while a pass runs form
//! the next pass, so under load each dirty partition is synced once per pass however many
//! produces it received, and the number of concurrent syscalls and tasks stays bounded however
//! many partitions there are.
//!
//! How a pass syncs is [`Chooser`]'s decision, a pure function of the pass's width and of what
//! earlier passes measured:
//! - **per file**: one `fdatasync` per partition, up to [`SYNC_PARALLELISM`] at a time, workers
//!   taking the next file as they finish one. Always used for a pass of fewer than
//!   [`WIDE_PASS`] partitions: one partition, or requests that each carry one partition (the
//!   sticky shape) — a pass is at most as wide as the partitions of the requests waiting.
//! - **syncfs**: for a wide pass (requests spread over many partitions, little data each), one
//!   `syncfs(2)` of the log dir's filesystem and then one `fdatasync` of the log dir itself.
//!   On ext4 a per-file `fdatasync` of an appended file writes the data, the inode and (without
//!   a journal) the allocation bitmaps, each waited for, plus a cache flush: ~60,000 of them
//!   per GB of 16 KB partition writes. `syncfs` writes the same data and metadata in one sweep
//!   with one flush. But it also writes every other process's dirty data on that filesystem,
//!   so its cost depends on them (measured 3× slower than per-file on this machine when other
//!   builds wrote to the same disk): the chooser times both per record synced and keeps to
//!   `syncfs` while it is at most [`SYNCFS_MARGIN`] times slower (it also costs the broker
//!   less CPU), trying the slower again for [`TRIAL_PASSES`] passes (their median is its
//!   new cost) every [`PROBE_EVERY`] wide passes, backing off while it keeps losing.
//!
//! Durability is exact either way. A target's end offset is read before its sync starts, so
//! the sync covers every byte appended below it; recovery points and high watermarks move
//! only after the covering call returned success. `syncfs` reports writeback errors through
//! the descriptor it is called on (per-descriptor cursor on the filesystem's error sequence,
//! Linux ≥ 5.8): the driver calls it on one descriptor of the log dir, opened when the broker
//! starts, before any append, so every error since then is reported through it once. The
//! trailing `fdatasync` of the directory issues a cache flush after `syncfs` returned: on ext4
//! without a journal (this machine's `/`) `syncfs` writes the inode blocks (sizes, extents)
//! after its own flush. On any error the driver stops using `syncfs` for good and syncs that
//! pass per file, whose `fdatasync`s report each file's own errors; a partition whose sync
//! failed does not move. A broker with several log dirs always syncs per file.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::services::replica::partition::Partition;

/// How many `fdatasync` calls of one pass run at the same time. The disk's queue absorbs a few;
/// beyond that they only queue (and compete for the CPU with the rest of the broker).
pub(crate) const SYNC_PARALLELISM: usize = 8;

/// A pass of at least this many partitions is "wide" and may be synced with `syncfs`. Above
/// the requests a few sticky-shaped producers keep in flight (16 for `perf produce-raw`, a few
/// per connection for librdkafka), so their one-partition requests stay per file.
pub(crate) const WIDE_PASS: usize = 64;

/// Wide passes between two tries of the strategy that measured slower (doubled, up to
/// [`MAX_PROBE_EVERY`], each time the try loses again; back to this when it wins).
pub(crate) const PROBE_EVERY: u32 = 16;
pub(crate) const MAX_PROBE_EVERY: u32 = 64;

/// Consecutive wide passes a try runs; the median of their costs becomes the strategy's
/// cost, so one pass that met other writers' data (or the first `syncfs` after start, which
/// writes out whatever the broker's start left dirty) does not decide alone.
pub(crate) const TRIAL_PASSES: usize = 5;

/// `syncfs` is kept while its cost per record is at most this many times per file's. The
/// costs compared are wall-clock times, but `syncfs` also takes the broker a third or more
/// less CPU per GB (BENCHMARKS.md: 3.0 against 4.9 CPU-s/GB forced, wide shape), which it
/// leaves to appends; measured slower than that, other writers' data is what it waits for.
pub(crate) const SYNCFS_MARGIN: f64 = 1.5;

/// How one pass makes its partitions durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// One `fdatasync` per partition, this many at a time.
    PerFile { parallelism: usize },
    /// One `syncfs` of the log dir's filesystem, then one `fdatasync` of the log dir.
    Syncfs,
}

impl Strategy {
    fn is_syncfs(self) -> bool {
        self == Strategy::Syncfs
    }
}

/// Chooses each pass's [`Strategy`] from its width and the measured cost per record of wide
/// passes done each way. Pure: the caller passes in what it timed.
#[derive(Debug, Clone)]
pub(crate) struct Chooser {
    /// False when `syncfs` cannot be used (several log dirs, no descriptor) or failed once.
    syncfs_usable: bool,
    /// Wide passes' cost per record synced, in microseconds: the median of the last try, then
    /// (while the strategy is the faster, measured on every wide pass) a moving average
    /// weighted by records, so a short pass that found little to do (a `syncfs` also writes
    /// what was appended after its targets were read, leaving less for the next pass) weighs
    /// as little as it synced.
    per_file_us: Option<f64>,
    syncfs_us: Option<f64>,
    /// Moving averages of records per wide pass, per file and `syncfs`: the weights.
    records: [f64; 2],
    /// Wide passes since the last try, and the current interval between tries.
    since_probe: u32,
    probe_every: u32,
    /// The try under way: whether it is of `syncfs`, and its passes' costs and records so far.
    trial: Option<(bool, Vec<(f64, f64)>)>,
}

impl Chooser {
    /// A chooser; `syncfs_usable` says whether wide passes may use `syncfs` at all.
    pub(crate) fn new(syncfs_usable: bool) -> Chooser {
        Chooser {
            syncfs_usable,
            per_file_us: None,
            syncfs_us: None,
            records: [0.0; 2],
            since_probe: 0,
            probe_every: PROBE_EVERY,
            trial: None,
        }
    }

    /// The strategy for a pass of `partitions` partitions (at least 1).
    pub(crate) fn plan(&mut self, partitions: usize) -> Strategy {
        let per_file = Strategy::PerFile {
            parallelism: partitions.clamp(1, SYNC_PARALLELISM),
        };
        let choose = |syncfs: bool| if syncfs { Strategy::Syncfs } else { per_file };
        if partitions < WIDE_PASS || !self.syncfs_usable {
            return per_file;
        }
        if let Some((syncfs, _)) = &self.trial {
            return choose(*syncfs);
        }
        // Each is tried once before comparing; per file first (it cannot be slowed down by
        // other writers' data).
        let faster_is_syncfs = match (self.per_file_us, self.syncfs_us) {
            (None, _) => return self.start_trial(false, per_file),
            (Some(_), None) => return self.start_trial(true, Strategy::Syncfs),
            (Some(_), Some(_)) => self.faster_is_syncfs() == Some(true),
        };
        self.since_probe += 1;
        if self.since_probe >= self.probe_every {
            self.since_probe = 0;
            return self.start_trial(!faster_is_syncfs, choose(!faster_is_syncfs));
        }
        choose(faster_is_syncfs)
    }

    fn start_trial(&mut self, syncfs: bool, strategy: Strategy) -> Strategy {
        self.trial = Some((syncfs, Vec::with_capacity(TRIAL_PASSES)));
        strategy
    }

    /// Records that a pass of `partitions` partitions and `records` records (not yet durable
    /// before it) done with `strategy` took `elapsed`. Only wide passes count: a narrow pass is
    /// always per file and says nothing about `syncfs`. The cost compared is per record, not
    /// per partition: the faster strategy makes shorter passes, so fewer partitions gather per
    /// pass, each with fewer records, and what the producers see is records made durable per
    /// second of syncing.
    pub(crate) fn record(
        &mut self,
        strategy: Strategy,
        partitions: usize,
        records: i64,
        elapsed: Duration,
    ) {
        if partitions < WIDE_PASS || records <= 0 {
            return;
        }
        let micros = elapsed.as_secs_f64() * 1e6;
        let records = records as f64;
        let syncfs = strategy.is_syncfs();
        let was_faster = self.faster_is_syncfs();
        match &mut self.trial {
            Some((trial_syncfs, samples)) if *trial_syncfs == syncfs => {
                samples.push((micros / records, records));
                if samples.len() < TRIAL_PASSES {
                    return;
                }
                samples.sort_by(|a, b| a.0.total_cmp(&b.0));
                let median = samples[samples.len() / 2].0;
                let weight = samples.iter().map(|s| s.1).sum::<f64>() / samples.len() as f64;
                self.trial = None;
                *self.cost(syncfs) = Some(median);
                self.records[usize::from(syncfs)] = weight;
                // A try that did not change the order backs off; one that did resets.
                if was_faster.is_some() && was_faster == self.faster_is_syncfs() {
                    self.probe_every = (self.probe_every * 2).min(MAX_PROBE_EVERY);
                } else {
                    self.probe_every = PROBE_EVERY;
                }
            }
            _ => {
                let weight = self.records[usize::from(syncfs)];
                let (cost, weight) = match *self.cost(syncfs) {
                    // Time and records per pass averaged separately: cost = time / records.
                    Some(average) => {
                        let time = average * weight;
                        let time = time + (micros - time) / 4.0;
                        let weight = weight + (records - weight) / 4.0;
                        (time / weight, weight)
                    }
                    None => (micros / records, records),
                };
                *self.cost(syncfs) = Some(cost);
                self.records[usize::from(syncfs)] = weight;
                if was_faster.is_some() && was_faster != self.faster_is_syncfs() {
                    self.probe_every = PROBE_EVERY;
                }
            }
        }
    }

    fn cost(&mut self, syncfs: bool) -> &mut Option<f64> {
        if syncfs {
            &mut self.syncfs_us
        } else {
            &mut self.per_file_us
        }
    }

    /// `syncfs` failed: wide passes sync per file from now on.
    pub(crate) fn syncfs_failed(&mut self) {
        self.syncfs_usable = false;
    }

    /// Whether `syncfs` is preferred (measured within [`SYNCFS_MARGIN`] of per file), once
    /// both have been measured.
    fn faster_is_syncfs(&self) -> Option<bool> {
        match (self.per_file_us, self.syncfs_us) {
            (Some(f), Some(s)) => Some(s <= f * SYNCFS_MARGIN),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Pending {
    partitions: Vec<Arc<Partition>>,
    running: bool,
}

/// One partition of a pass: its active segment file and the end offset a sync of it covers.
type Target = (Arc<Partition>, Arc<std::fs::File>, i64);

/// The broker's sync driver; see the module documentation.
pub struct SyncDriver {
    pending: Mutex<Pending>,
    metrics: Arc<crate::metrics::Metrics>,
    /// The only log dir, opened before any append (`None` with several log dirs).
    log_dir: Option<Arc<std::fs::File>>,
    chooser: Mutex<Chooser>,
}

impl SyncDriver {
    /// A driver with no work for a broker with these log dirs. Must be made before the first
    /// append to any of them (see the module documentation on `syncfs` errors).
    pub fn new(
        metrics: Arc<crate::metrics::Metrics>,
        log_dirs: &[std::path::PathBuf],
    ) -> SyncDriver {
        let log_dir = match log_dirs {
            [dir] => match std::fs::File::open(dir) {
                Ok(file) => Some(Arc::new(file)),
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "cannot open the log dir for syncfs; syncing per file");
                    None
                }
            },
            _ => None,
        };
        SyncDriver {
            pending: Mutex::new(Pending::default()),
            metrics,
            chooser: Mutex::new(Chooser::new(log_dir.is_some())),
            log_dir,
        }
    }

    /// Registers `partition` for the next pass (once, however often it is asked) and makes sure
    /// the driver task runs. Must be called from within the tokio runtime.
    pub(crate) fn request(self: &Arc<Self>, partition: &Arc<Partition>) {
        let mut pending = self.pending.lock().expect("sync driver mutex poisoned");
        if !partition.sync_queued.swap(true, Ordering::SeqCst) {
            pending.partitions.push(Arc::clone(partition));
        }
        if !pending.running {
            pending.running = true;
            let driver = Arc::clone(self);
            tokio::spawn(async move { driver.run().await });
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            let batch = {
                let mut pending = self.pending.lock().expect("sync driver mutex poisoned");
                if pending.partitions.is_empty() {
                    pending.running = false;
                    return;
                }
                std::mem::take(&mut pending.partitions)
            };
            self.pass(batch).await;
        }
    }

    /// Syncs every partition of `batch` that has data beyond its recovery point.
    async fn pass(&self, batch: Vec<Arc<Partition>>) {
        let mut targets = Vec::with_capacity(batch.len());
        let mut records = 0;
        for partition in batch {
            // Cleared before the target is read: a produce that registers after this point
            // may have appended after the read, so it must land in the next pass.
            partition.sync_queued.store(false, Ordering::SeqCst);
            match partition.sync_target() {
                Ok(Some((file, end, pending))) => {
                    records += pending;
                    targets.push((partition, file, end));
                }
                Ok(None) => {}
                Err(error) => partition.sync_failed(error.to_string()),
            }
        }
        if targets.is_empty() {
            return;
        }
        let count = targets.len();
        let strategy = self.chooser().plan(count);
        let started = Instant::now();
        let targets = match (strategy, &self.log_dir) {
            (Strategy::Syncfs, Some(dir)) => match self.syncfs(dir, targets).await {
                Ok(()) => {
                    let elapsed = started.elapsed();
                    tracing::debug!(?strategy, count, records, ?elapsed, "sync pass");
                    self.chooser().record(strategy, count, records, elapsed);
                    return;
                }
                Err((error, targets)) => {
                    tracing::error!(%error, "syncfs failed; syncing per file from now on");
                    self.chooser().syncfs_failed();
                    targets
                }
            },
            _ => targets,
        };
        match strategy {
            Strategy::PerFile { parallelism } => {
                self.per_file(targets, parallelism).await;
                let elapsed = started.elapsed();
                tracing::debug!(?strategy, count, records, ?elapsed, "sync pass");
                self.chooser().record(strategy, count, records, elapsed);
            }
            // The fallback after a failed `syncfs`: not a measurement of either way.
            Strategy::Syncfs => self.per_file(targets, SYNC_PARALLELISM).await,
        }
    }

    fn chooser(&self) -> std::sync::MutexGuard<'_, Chooser> {
        self.chooser.lock().expect("sync chooser mutex poisoned")
    }

    /// One `syncfs` and one directory `fdatasync` on the blocking pool; on success every target
    /// has synced, on failure the targets come back unsynced with the error.
    async fn syncfs(
        &self,
        dir: &Arc<std::fs::File>,
        targets: Vec<Target>,
    ) -> Result<(), (std::io::Error, Vec<Target>)> {
        let dir = Arc::clone(dir);
        let metrics = Arc::clone(&self.metrics);
        let (outcome, targets) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let outcome = syncfs(&dir).and_then(|()| dir.sync_data());
            metrics.synced(started.elapsed());
            (outcome, targets)
        })
        .await
        .expect("syncfs does not panic");
        match outcome {
            Ok(()) => {
                for (partition, _, end) in targets {
                    partition.synced(end);
                }
                Ok(())
            }
            Err(error) => Err((error, targets)),
        }
    }

    /// One `fdatasync` per target on the blocking pool, `parallelism` at a time; each target
    /// moves or fails by its own call's outcome.
    async fn per_file(&self, targets: Vec<Target>, parallelism: usize) {
        let targets: Arc<[Target]> = targets.into();
        let next = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::with_capacity(parallelism);
        for _ in 0..parallelism.clamp(1, targets.len()) {
            let targets = Arc::clone(&targets);
            let next = Arc::clone(&next);
            let metrics = Arc::clone(&self.metrics);
            jobs.push(tokio::task::spawn_blocking(move || {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, file, _)) = targets.get(i) else {
                        return done;
                    };
                    let started = Instant::now();
                    done.push((i, file.sync_data()));
                    metrics.synced(started.elapsed());
                }
            }));
        }
        for job in jobs {
            for (i, outcome) in job.await.expect("fdatasync does not panic") {
                let (partition, _, end) = &targets[i];
                match outcome {
                    Ok(()) => partition.synced(*end),
                    Err(error) => partition.sync_failed(error.to_string()),
                }
            }
        }
    }
}

/// `syncfs(2)` on the filesystem holding `file`.
fn syncfs(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call (borrowed from `file`).
    if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests;
