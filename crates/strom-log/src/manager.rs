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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::checkpoint::{
    fsync_dir, parse_properties, read_checkpoint, write_atomically, write_checkpoint,
    TopicPartition,
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

fn lock(log: &SharedLog) -> MutexGuard<'_, Log> {
    log.lock().expect("a log mutex was poisoned by a panic")
}

struct Entry {
    log: SharedLog,
    dir_index: usize,
}

/// All partition logs of this broker.
pub struct LogManager {
    log_dirs: Vec<PathBuf>,
    cluster_id: String,
    logs: Mutex<BTreeMap<TopicPartition, Entry>>,
    recovery_stats: RecoveryStats,
    checkpointed_high_watermarks: BTreeMap<TopicPartition, i64>,
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
    /// checkpoints, opens every partition with up to `recovery_threads` threads (re-reading only
    /// what the clean-shutdown marker and recovery points require), removes `*-delete` leftovers,
    /// and finally removes the clean-shutdown markers. An empty `cluster_id` accepts the one on
    /// disk.
    pub fn open(
        log_dirs: &[PathBuf],
        broker_id: i32,
        cluster_id: &str,
        recovery_threads: usize,
        topic_config: &(dyn Fn(&str) -> LogConfig + Sync),
        now_ms: i64,
    ) -> Result<LogManager, LogError> {
        assert!(!log_dirs.is_empty(), "at least one log dir");
        let mut cluster_id = cluster_id.to_string();
        for dir in log_dirs {
            std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
            check_meta_properties(dir, broker_id, &mut cluster_id)?;
        }
        let mut jobs = Vec::new();
        let mut checkpointed_high_watermarks = BTreeMap::new();
        let mut clean_dirs = 0;
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
                let tp: TopicPartition = match name.parse() {
                    Ok(tp) => tp,
                    Err(e) => {
                        tracing::warn!(dir = %path.display(), "skipping directory: {e}");
                        continue;
                    }
                };
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
        let opened = open_in_parallel(jobs, recovery_threads, topic_config, now_ms)?;
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
            recovery_stats: stats,
            checkpointed_high_watermarks,
        })
    }

    fn logs(&self) -> MutexGuard<'_, BTreeMap<TopicPartition, Entry>> {
        self.logs.lock().expect("log manager mutex poisoned")
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
        let mut logs = self.logs();
        if let Some(entry) = logs.get(tp) {
            return Ok(Arc::clone(&entry.log));
        }
        let mut counts = vec![0usize; self.log_dirs.len()];
        for entry in logs.values() {
            counts[entry.dir_index] += 1;
        }
        let dir_index = (0..counts.len())
            .min_by_key(|&i| counts[i])
            .expect("at least one log dir");
        let path = self.log_dirs[dir_index].join(tp.to_string());
        let log = Log::open(&path, config, 0, 0, true, now_ms)?;
        fsync_dir(&self.log_dirs[dir_index])?;
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

    /// Deletes the partition's log and directory. Holders of its [`SharedLog`] must drop it.
    pub fn delete(&self, tp: &TopicPartition) -> Result<(), LogError> {
        let Some(entry) = self.logs().remove(tp) else {
            return Ok(());
        };
        let mut log = lock(&entry.log);
        log.delete_in_place()
    }

    /// Writes the four checkpoint files of every log dir.
    pub fn checkpoint(&self) -> Result<(), LogError> {
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
        for (dir, maps) in self.log_dirs.iter().zip(&per_dir) {
            write_checkpoint(&dir.join(RECOVERY_POINT_CHECKPOINT), &maps[0])?;
            write_checkpoint(&dir.join(LOG_START_OFFSET_CHECKPOINT), &maps[1])?;
            write_checkpoint(&dir.join(REPLICATION_CHECKPOINT), &maps[2])?;
            write_checkpoint(&dir.join(CLEANER_CHECKPOINT), &maps[3])?;
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

    /// Runs the relaxed flush policy of every log.
    pub fn flush_due(&self, now_ms: i64) -> Result<(), LogError> {
        for (_, log) in self.all() {
            lock(&log).flush_if_due(now_ms)?;
        }
        Ok(())
    }

    /// Clean shutdown: flushes, closes and snapshots every log, writes the checkpoints, then the
    /// clean-shutdown marker of each log dir (fsynced), which lets the next startup skip recovery.
    pub fn shutdown(&self) -> Result<(), LogError> {
        for (_, log) in self.all() {
            lock(&log).close_in_place()?;
        }
        self.checkpoint()?;
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

/// Opens the partitions with up to `threads` worker threads; the first error wins.
fn open_in_parallel(
    jobs: Vec<OpenJob>,
    threads: usize,
    topic_config: &(dyn Fn(&str) -> LogConfig + Sync),
    now_ms: i64,
) -> Result<Vec<(OpenJob, Log)>, LogError> {
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
                results
                    .lock()
                    .expect("results")
                    .push(result.map(|log| (job, log)));
            });
        }
    });
    results.into_inner().expect("results").into_iter().collect()
}
