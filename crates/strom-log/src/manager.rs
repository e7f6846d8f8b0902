//! The set of partition logs of a broker across its log dirs: opening them at startup
//! (in parallel, with or without recovery depending on the clean-shutdown marker), creating and
//! deleting partitions, the per-dir checkpoint files and `meta.properties`, and the periodic
//! retention and flush passes. It does not schedule those passes: the broker calls them.
//!
//! Files per log dir: `meta.properties` (`version=1`, `broker.id=`, `cluster.id=`),
//! `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//! `replication-offset-checkpoint`, `cleaner-offset-checkpoint` (compacted logs only; see
//! [`crate::checkpoint`]), and `.kafka_cleanshutdown`, which exists only between a clean shutdown
//! and the next startup.
//!
//! A partition directory the caller's metadata does not know is never opened and never
//! silently deleted: [`LogManager::open`] removes it if it holds no record bytes (a creation cut
//! short by a crash) and otherwise renames it aside to `<topic>-<partition>.<unique>-stray`,
//! as Kafka does with stray logs, for an operator to inspect or remove. A partition that fails
//! to open is left *offline* (logged, skipped, its checkpoint entries kept) instead of stopping
//! the broker from starting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::checkpoint::{
    checkpoint_text, fsync_dir, parse_properties, read_checkpoint, write_atomically, TopicPartition,
};
use crate::config::LogConfig;
use crate::error::LogError;
use crate::log::{Log, RecoveryStats};

/// A log shared between the broker's tasks.
pub type SharedLog = Arc<Mutex<Log>>;

/// Name of the recovery point checkpoint file.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Name of the log start offset checkpoint file.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Name of the high watermark checkpoint file.
pub const REPLICATION_CHECKPOINT: &str = "replication-offset-checkpoint";
/// Name of the checkpoint of how far each compacted log is cleaned.
pub const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Name of the clean shutdown marker.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";
/// Name of the broker identity file.
pub const META_PROPERTIES: &str = "meta.properties";
/// Suffix of a partition directory moved aside because the metadata does not know it.
pub const STRAY_SUFFIX: &str = "-stray";

fn lock(log: &SharedLog) -> MutexGuard<'_, Log> {
    log.lock().expect("a log mutex was poisoned by a panic")
}

struct Entry {
    log: SharedLog,
    dir_index: usize,
}

/// A partition whose directory exists but could not be opened at startup.
#[derive(Debug, Clone)]
pub struct OfflineLog {
    /// Index of its log dir.
    pub dir_index: usize,
    /// Its directory.
    pub path: PathBuf,
    /// Why it could not be opened.
    pub error: String,
    recovery_point: i64,
    log_start_offset: i64,
    high_watermark: Option<i64>,
    cleaned_up_to: Option<i64>,
}

/// All partition logs of this broker.
pub struct LogManager {
    log_dirs: Vec<PathBuf>,
    cluster_id: String,
    logs: Mutex<BTreeMap<TopicPartition, Entry>>,
    /// Partitions whose directory could not be opened at startup: never served, never
    /// recreated, their checkpoint entries carried over unchanged.
    offline: Mutex<BTreeMap<TopicPartition, OfflineLog>>,
    recovery_stats: RecoveryStats,
    checkpointed_high_watermarks: BTreeMap<TopicPartition, i64>,
    /// What [`LogManager::checkpoint`] last wrote to each checkpoint file. A file whose contents
    /// would not change is not rewritten: with 10,000 partitions each file is ~200 KB, and the
    /// checkpoint runs every second (plus a file and a directory fsync per file). Held for the
    /// whole checkpoint, so two checkpoints never interleave their writes.
    written: Mutex<std::collections::HashMap<PathBuf, String>>,
}

/// One partition to open at startup.
struct OpenJob {
    dir_index: usize,
    tp: TopicPartition,
    path: PathBuf,
    recovery_point: i64,
    log_start_offset: i64,
    cleaned_up_to: i64,
    clean: bool,
}

impl LogManager {
    /// Opens every log dir (creating missing ones), checks or writes `meta.properties`, reads the
    /// checkpoints, opens every partition `is_known` accepts with up to `recovery_threads`
    /// threads (re-reading only what the clean-shutdown marker and recovery points require),
    /// moves the others aside as strays, removes `*-delete` leftovers, and finally removes the
    /// clean-shutdown markers. An empty `cluster_id` accepts the one on disk. A partition that
    /// fails to open is reported by [`LogManager::offline`] instead of failing the whole open.
    pub fn open(
        log_dirs: &[PathBuf],
        broker_id: i32,
        cluster_id: &str,
        recovery_threads: usize,
        topic_config: &(dyn Fn(&str) -> LogConfig + Sync),
        is_known: &dyn Fn(&TopicPartition) -> bool,
        now_ms: i64,
    ) -> Result<LogManager, LogError> {
        assert!(!log_dirs.is_empty(), "at least one log dir");
        // The caller may have raised the limit since the budget was first derived.
        crate::open_files::set_capacity(crate::open_files::capacity_for_limit());
        let mut cluster_id = cluster_id.to_string();
        for dir in log_dirs {
            std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
            check_meta_properties(dir, broker_id, &mut cluster_id)?;
        }
        let mut jobs = Vec::new();
        let mut checkpointed_high_watermarks = BTreeMap::new();
        let mut cleaned_checkpoints = BTreeMap::new();
        let mut clean_dirs = 0;
        let mut strays = 0;
        for (dir_index, dir) in log_dirs.iter().enumerate() {
            let recovery_points = read_checkpoint(&dir.join(RECOVERY_POINT_CHECKPOINT))?;
            let log_starts = read_checkpoint(&dir.join(LOG_START_OFFSET_CHECKPOINT))?;
            let cleaned = read_checkpoint(&dir.join(CLEANER_CHECKPOINT))?;
            checkpointed_high_watermarks
                .extend(read_checkpoint(&dir.join(REPLICATION_CHECKPOINT))?);
            let clean = dir.join(CLEAN_SHUTDOWN_MARKER).exists();
            clean_dirs += usize::from(clean);
            for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
                let entry = entry.map_err(|e| LogError::io(dir, e))?;
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with("-delete") {
                    std::fs::remove_dir_all(&path).map_err(|e| LogError::io(&path, e))?;
                    continue;
                }
                if name.ends_with(STRAY_SUFFIX) {
                    tracing::warn!(dir = %path.display(),
                        "quarantined stray partition directory is still present; \
                         inspect it and remove it by hand");
                    continue;
                }
                let tp: TopicPartition = match name.parse() {
                    Ok(tp) => tp,
                    Err(e) => {
                        tracing::warn!(dir = %path.display(), "skipping directory: {e}");
                        continue;
                    }
                };
                if !is_known(&tp) {
                    quarantine_stray(dir, &path, now_ms)?;
                    strays += 1;
                    continue;
                }
                if let Some(&offset) = cleaned.get(&tp) {
                    cleaned_checkpoints.insert(tp.clone(), offset);
                }
                jobs.push(OpenJob {
                    dir_index,
                    recovery_point: recovery_points.get(&tp).copied().unwrap_or(0),
                    log_start_offset: log_starts.get(&tp).copied().unwrap_or(0),
                    cleaned_up_to: cleaned.get(&tp).copied().unwrap_or(0),
                    tp,
                    path,
                    clean,
                });
            }
        }
        let partitions = jobs.len();
        let (opened, failed) = open_in_parallel(jobs, recovery_threads, topic_config, now_ms);
        let mut offline = BTreeMap::new();
        for (job, error) in failed {
            tracing::error!(partition = %job.tp, dir = %job.path.display(), %error,
                "cannot open the partition's log; it stays offline until the next start");
            offline.insert(
                job.tp.clone(),
                OfflineLog {
                    dir_index: job.dir_index,
                    path: job.path,
                    error: error.to_string(),
                    recovery_point: job.recovery_point,
                    log_start_offset: job.log_start_offset,
                    high_watermark: checkpointed_high_watermarks.get(&job.tp).copied(),
                    cleaned_up_to: cleaned_checkpoints.get(&job.tp).copied(),
                },
            );
        }
        let mut logs = BTreeMap::new();
        let mut stats = RecoveryStats::default();
        for (job, mut log) in opened {
            log.restore_cleaned_up_to(job.cleaned_up_to);
            let s = log.recovery_stats();
            stats.segments_recovered += s.segments_recovered;
            stats.bytes_reread += s.bytes_reread;
            stats.bytes_truncated += s.bytes_truncated;
            stats.segments_deleted += s.segments_deleted;
            stats.batches_replayed += s.batches_replayed;
            let entry = Entry {
                log: Arc::new(Mutex::new(log)),
                dir_index: job.dir_index,
            };
            if logs.insert(job.tp.clone(), entry).is_some() {
                return Err(LogError::Corrupt {
                    path: job.path,
                    reason: format!("partition {} exists in more than one log dir", job.tp),
                });
            }
        }
        for dir in log_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_MARKER);
            if marker.exists() {
                std::fs::remove_file(&marker).map_err(|e| LogError::io(&marker, e))?;
                fsync_dir(dir)?;
            }
        }
        tracing::info!(
            partitions,
            offline = offline.len(),
            strays,
            open_files_budget = crate::open_files::capacity(),
            clean_dirs,
            log_dirs = log_dirs.len(),
            segments_recovered = stats.segments_recovered,
            bytes_reread = stats.bytes_reread,
            bytes_truncated = stats.bytes_truncated,
            "opened logs"
        );
        Ok(LogManager {
            log_dirs: log_dirs.to_vec(),
            cluster_id,
            logs: Mutex::new(logs),
            offline: Mutex::new(offline),
            recovery_stats: stats,
            checkpointed_high_watermarks,
            written: Mutex::new(std::collections::HashMap::new()),
        })
    }

    fn logs(&self) -> MutexGuard<'_, BTreeMap<TopicPartition, Entry>> {
        self.logs.lock().expect("log manager mutex poisoned")
    }

    /// Partitions whose directory could not be opened at startup, with the reason.
    pub fn offline(&self) -> BTreeMap<TopicPartition, OfflineLog> {
        self.offline.lock().expect("offline mutex poisoned").clone()
    }

    /// Whether `tp` could not be opened at startup.
    pub fn is_offline(&self, tp: &TopicPartition) -> bool {
        self.offline
            .lock()
            .expect("offline mutex poisoned")
            .contains_key(tp)
    }

    /// How many partitions this broker can host: one cached open file each (the active
    /// segment's `.log`), so the process's open-file budget ([`crate::open_files::capacity`],
    /// `RLIMIT_NOFILE` minus headroom for sockets and short-lived files). Index files and
    /// inactive segments share what is left and are reopened on demand.
    pub fn max_partitions(&self) -> usize {
        crate::open_files::capacity()
    }

    /// How many partitions this broker hosts (offline ones included).
    pub fn partition_count(&self) -> usize {
        self.logs().len() + self.offline.lock().expect("offline mutex poisoned").len()
    }

    /// The cluster id: the one in `meta.properties` if it existed, else the one given to `open`.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Totals of what opening the logs re-read and repaired.
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.recovery_stats
    }

    /// The high watermark recorded for `tp` in `replication-offset-checkpoint` at startup.
    pub fn checkpointed_high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.checkpointed_high_watermarks.get(tp).copied()
    }

    /// The log of `tp`, if it exists.
    pub fn get(&self, tp: &TopicPartition) -> Option<SharedLog> {
        self.logs().get(tp).map(|e| Arc::clone(&e.log))
    }

    /// The log of `tp`, created (in the log dir holding the fewest partitions) if missing.
    pub fn get_or_create(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<SharedLog, LogError> {
        if let Some(entry) = self.logs().get(tp) {
            return Ok(Arc::clone(&entry.log));
        }
        let log = self.create(tp, config, now_ms)?;
        self.sync_log_dirs()?;
        Ok(log)
    }

    /// The log dirs, in configuration order.
    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
    }

    /// Fsyncs every log dir, making the creation of the partition directories in it durable.
    /// [`LogManager::create`] leaves this to its caller, so that creating many partitions costs
    /// one fsync per log dir rather than one per partition.
    pub fn sync_log_dirs(&self) -> Result<(), LogError> {
        self.log_dirs.iter().try_for_each(|dir| fsync_dir(dir))
    }

    /// Creates the empty log of `tp` (in the log dir holding the fewest partitions). All or
    /// nothing: if any step fails, the directory is removed again. A directory of that name that
    /// no open log owns (left by an earlier failure) is first handled like a stray found at
    /// startup. Fails if `tp` already has a log or is offline. The new directory's entry in its
    /// log dir is durable only after [`LogManager::sync_log_dirs`].
    pub fn create(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<SharedLog, LogError> {
        let mut logs = self.logs();
        let mut counts = vec![0usize; self.log_dirs.len()];
        for entry in logs.values() {
            counts[entry.dir_index] += 1;
        }
        let dir_index = (0..counts.len())
            .min_by_key(|&i| counts[i])
            .expect("at least one log dir");
        let path = self.log_dirs[dir_index].join(tp.to_string());
        if logs.contains_key(tp) || self.is_offline(tp) {
            return Err(LogError::Corrupt {
                path,
                reason: format!("partition {tp} already has a log"),
            });
        }
        for dir in &self.log_dirs {
            let leftover = dir.join(tp.to_string());
            if leftover.exists() {
                quarantine_stray(dir, &leftover, now_ms)?;
            }
        }
        let log = match Log::open(&path, config, 0, 0, true, now_ms) {
            Ok(log) => log,
            Err(error) => {
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::error!(dir = %path.display(), error = %e,
                            "cannot remove the directory of a partition whose creation failed");
                    }
                }
                return Err(error);
            }
        };
        let log = Arc::new(Mutex::new(log));
        logs.insert(
            tp.clone(),
            Entry {
                log: Arc::clone(&log),
                dir_index,
            },
        );
        Ok(log)
    }

    /// Every log, in topic-partition order.
    pub fn all(&self) -> Vec<(TopicPartition, SharedLog)> {
        self.logs()
            .iter()
            .map(|(tp, e)| (tp.clone(), Arc::clone(&e.log)))
            .collect()
    }

    /// Every log with the index (in [`LogManager::log_dirs`]) of the log dir holding it, in
    /// topic-partition order: what DescribeLogDirs reports per log dir.
    pub fn all_by_dir(&self) -> Vec<(usize, TopicPartition, SharedLog)> {
        self.logs()
            .iter()
            .map(|(tp, e)| (e.dir_index, tp.clone(), Arc::clone(&e.log)))
            .collect()
    }

    /// Deletes the partition's log and directory (also of an offline partition). Holders of its
    /// [`SharedLog`] must drop it.
    pub fn delete(&self, tp: &TopicPartition) -> Result<(), LogError> {
        let offline = self
            .offline
            .lock()
            .expect("offline mutex poisoned")
            .remove(tp);
        if let Some(offline) = offline {
            return remove_dir_renamed(&offline.path);
        }
        let Some(entry) = self.logs().remove(tp) else {
            return Ok(());
        };
        let mut log = lock(&entry.log);
        log.delete_in_place()
    }

    /// Writes the four checkpoint files of every log dir.
    pub fn checkpoint(&self) -> Result<(), LogError> {
        let mut written = self.written.lock().expect("checkpoint mutex poisoned");
        let mut per_dir = vec![
            [
                BTreeMap::new(),
                BTreeMap::new(),
                BTreeMap::new(),
                BTreeMap::new()
            ];
            self.log_dirs.len()
        ];
        for (tp, entry) in self.logs().iter() {
            let log = lock(&entry.log);
            let maps = &mut per_dir[entry.dir_index];
            maps[0].insert(tp.clone(), log.recovery_point());
            maps[1].insert(tp.clone(), log.log_start_offset());
            maps[2].insert(tp.clone(), log.high_watermark());
            if log.config().compact {
                maps[3].insert(tp.clone(), log.cleaned_up_to());
            }
        }
        // An offline partition keeps the entries it had when the broker started.
        for (tp, offline) in self.offline.lock().expect("offline mutex poisoned").iter() {
            let maps = &mut per_dir[offline.dir_index];
            maps[0].insert(tp.clone(), offline.recovery_point);
            maps[1].insert(tp.clone(), offline.log_start_offset);
            if let Some(high_watermark) = offline.high_watermark {
                maps[2].insert(tp.clone(), high_watermark);
            }
            if let Some(cleaned) = offline.cleaned_up_to {
                maps[3].insert(tp.clone(), cleaned);
            }
        }
        const FILES: [&str; 4] = [
            RECOVERY_POINT_CHECKPOINT,
            LOG_START_OFFSET_CHECKPOINT,
            REPLICATION_CHECKPOINT,
            CLEANER_CHECKPOINT,
        ];
        for (dir, maps) in self.log_dirs.iter().zip(&per_dir) {
            for (name, offsets) in FILES.iter().zip(maps) {
                let path = dir.join(name);
                let text = checkpoint_text(offsets);
                if written.get(&path) == Some(&text) {
                    continue;
                }
                // Forgotten first: if the write fails, the next checkpoint writes the file.
                written.remove(&path);
                write_atomically(&path, text.as_bytes())?;
                written.insert(path, text);
            }
        }
        Ok(())
    }

    /// Applies retention to every log; returns the number of segments deleted.
    pub fn retention_pass(&self, now_ms: i64) -> Result<usize, LogError> {
        let mut deleted = 0;
        for (_, log) in self.all() {
            deleted += lock(&log).enforce_retention(now_ms)?;
        }
        Ok(deleted)
    }

    /// Compacts every log that is compacted and dirty enough (see [`crate::log::CompactionPlan`]):
    /// each log's mutex is held only to plan and to swap the compacted segments in, not while
    /// segments are read and written.
    pub fn compaction_pass(&self, now_ms: i64) -> Result<crate::CompactionStats, LogError> {
        let mut total = crate::CompactionStats::default();
        for (tp, log) in self.all() {
            let Some(plan) = lock(&log).compaction_plan(now_ms) else {
                continue;
            };
            let done = plan.run()?;
            let stats = lock(&log).install_compaction(done)?;
            if stats.segments_cleaned > 0 {
                tracing::info!(partition = %tp, segments = stats.segments_cleaned,
                    bytes_before = stats.bytes_before, bytes_after = stats.bytes_after,
                    keys = stats.keys, "compacted");
            }
            total.segments_cleaned += stats.segments_cleaned;
            total.bytes_before += stats.bytes_before;
            total.bytes_after += stats.bytes_after;
            total.keys += stats.keys;
        }
        Ok(total)
    }

    /// Runs the relaxed flush policy of every log. Called every 100 ms, so it takes only the
    /// logs' handles, not their names: with 10,000 partitions, copying every name each time
    /// (as [`LogManager::all`] does) cost an idle broker about 2 % of a core.
    pub fn flush_due(&self, now_ms: i64) -> Result<(), LogError> {
        let logs: Vec<SharedLog> = self.logs().values().map(|e| Arc::clone(&e.log)).collect();
        for log in logs {
            lock(&log).flush_if_due(now_ms)?;
        }
        Ok(())
    }

    /// Clean shutdown: flushes, closes and snapshots every log, writes the checkpoints, then the
    /// clean-shutdown marker of each log dir (fsynced), which lets the next startup skip recovery.
    /// With an offline partition no marker is written: it was not closed cleanly by this run, so
    /// the next start must recover it (the others re-read only past their recovery points).
    pub fn shutdown(&self) -> Result<(), LogError> {
        for (_, log) in self.all() {
            lock(&log).close_in_place()?;
        }
        self.checkpoint()?;
        if !self
            .offline
            .lock()
            .expect("offline mutex poisoned")
            .is_empty()
        {
            tracing::warn!("some partitions were offline: no clean-shutdown marker written");
            return Ok(());
        }
        for dir in &self.log_dirs {
            write_atomically(&dir.join(CLEAN_SHUTDOWN_MARKER), b"")?;
        }
        Ok(())
    }
}

/// Checks `meta.properties` against this broker, or writes it if missing. Fills in
/// `cluster_id` from the file when it was given empty.
fn check_meta_properties(
    dir: &Path,
    broker_id: i32,
    cluster_id: &mut String,
) -> Result<(), LogError> {
    let path = dir.join(META_PROPERTIES);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let properties = parse_properties(&text);
            let found_broker = properties.get("broker.id").cloned().unwrap_or_default();
            if found_broker != broker_id.to_string() {
                return Err(LogError::MetaPropertiesMismatch {
                    path,
                    key: "broker.id",
                    found: found_broker,
                    expected: broker_id.to_string(),
                });
            }
            let found_cluster = properties.get("cluster.id").cloned().unwrap_or_default();
            if cluster_id.is_empty() {
                *cluster_id = found_cluster;
            } else if found_cluster != *cluster_id {
                return Err(LogError::MetaPropertiesMismatch {
                    path,
                    key: "cluster.id",
                    found: found_cluster,
                    expected: cluster_id.clone(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = format!(
                "#Written by Strom\nversion=1\nbroker.id={broker_id}\ncluster.id={cluster_id}\n"
            );
            write_atomically(&path, text.as_bytes())
        }
        Err(e) => Err(LogError::io(&path, e)),
    }
}

/// Handles a partition directory `path` (in log dir `dir`) that no metadata knows: removed if
/// it holds no record bytes (a creation cut short), else renamed to
/// `<name>.<unique>-stray` in the same log dir, logged, and kept for an operator. Returns the
/// new path, if it was kept.
fn quarantine_stray(dir: &Path, path: &Path, now_ms: i64) -> Result<Option<PathBuf>, LogError> {
    let mut record_bytes = 0u64;
    for entry in std::fs::read_dir(path).map_err(|e| LogError::io(path, e))? {
        let entry = entry.map_err(|e| LogError::io(path, e))?;
        let name = entry.file_name();
        let is_log = name.to_str().is_some_and(|n| {
            crate::segment::parse_offset_file_name(n, crate::segment::LOG_SUFFIX).is_some()
        });
        if is_log {
            record_bytes += entry.metadata().map_err(|e| LogError::io(path, e))?.len();
        }
    }
    if record_bytes == 0 {
        tracing::warn!(dir = %path.display(),
            "removing a partition directory the metadata does not know (it holds no records)");
        remove_dir_renamed(path)?;
        return Ok(None);
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("partition");
    let target = dir.join(format!(
        "{name}.{now_ms:x}{}{STRAY_SUFFIX}",
        crate::log::delete_suffix().trim_end_matches("-delete")
    ));
    std::fs::rename(path, &target).map_err(|e| LogError::io(path, e))?;
    fsync_dir(dir)?;
    tracing::warn!(dir = %path.display(), moved_to = %target.display(), record_bytes,
        "the metadata does not know this partition directory; moved it aside as a stray \
         (its records are kept: inspect it, then remove it by hand)");
    Ok(Some(target))
}

/// Removes a directory by first renaming it to a `-delete` name, so that a crash half-way
/// leaves a name the next start removes.
fn remove_dir_renamed(path: &Path) -> Result<(), LogError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("partition");
    let target = path.with_file_name(format!("{name}.{}", crate::log::delete_suffix()));
    std::fs::rename(path, &target).map_err(|e| LogError::io(path, e))?;
    if let Some(parent) = target.parent() {
        fsync_dir(parent)?;
    }
    std::fs::remove_dir_all(&target).map_err(|e| LogError::io(&target, e))
}

/// The partitions that opened, and those that failed with their error.
type OpenResults = (Vec<(OpenJob, Log)>, Vec<(OpenJob, LogError)>);

/// Opens the partitions with up to `threads` worker threads.
fn open_in_parallel(
    jobs: Vec<OpenJob>,
    threads: usize,
    topic_config: &(dyn Fn(&str) -> LogConfig + Sync),
    now_ms: i64,
) -> OpenResults {
    let threads = threads.clamp(1, jobs.len().max(1));
    let queue = Mutex::new(jobs.into_iter());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let Some(job) = queue.lock().expect("queue").next() else {
                    return;
                };
                let config = topic_config(&job.tp.topic);
                let result = Log::open(
                    &job.path,
                    config,
                    job.recovery_point,
                    job.log_start_offset,
                    job.clean,
                    now_ms,
                );
                results.lock().expect("results").push((job, result));
            });
        }
    });
    let mut opened = Vec::new();
    let mut failed = Vec::new();
    for (job, result) in results.into_inner().expect("results") {
        match result {
            Ok(log) => opened.push((job, log)),
            Err(error) => failed.push((job, error)),
        }
    }
    (opened, failed)
}
