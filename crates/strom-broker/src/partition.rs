//! A hosted partition: its log, durable acknowledgement by group commit, and the waiters of
//! long-polling fetches.
//!
//! Appends happen under the log's mutex and cost one `write` into the page cache. Durability
//! is a separate step: [`Partition::wait_durable`] makes sure an `fdatasync` that started after
//! the append has finished. Syncs are serialised per partition by an async mutex, and each
//! sync covers everything appended before it started, so concurrent producers share one sync
//! (group commit) instead of paying one each.
//!
//! In durable mode (`flush.messages` = 1, Strom's default) the high watermark only moves to
//! offsets that are on disk, so a consumer never sees a record that a crash could take back.
//! In relaxed mode (`flush.messages` > 1, Kafka's page-cache behaviour) it moves to the log
//! end offset at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use strom_log::{
    AppendError, AppendInfo, LogConfig, ReadError, ReadInfo, SharedLog, TopicPartition,
};
use tokio::sync::Notify;

/// A partition hosted by this broker.
pub struct Partition {
    /// Topic and partition number.
    pub topic_partition: TopicPartition,
    log: SharedLog,
    /// True while `flush.messages` <= 1: acknowledgements wait for `fdatasync`.
    durable: AtomicBool,
    /// Held while an `fdatasync` of this partition is in progress.
    sync_lock: tokio::sync::Mutex<()>,
    /// Fetches waiting for the high watermark to move.
    waiters: Mutex<Vec<Weak<Notify>>>,
    deleted: AtomicBool,
    metrics: Arc<crate::metrics::Metrics>,
    /// This partition's topic's counters.
    pub counters: Arc<crate::metrics::TopicCounters>,
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(
        topic_partition: TopicPartition,
        log: SharedLog,
        durable: bool,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Partition {
        if !durable {
            // Everything recovered is visible at once in relaxed mode.
            let mut guard = log.lock().unwrap();
            let end = guard.log_end_offset();
            guard.set_high_watermark(end);
        }
        let counters = metrics.topic(&topic_partition.topic);
        Partition {
            topic_partition,
            log,
            durable: AtomicBool::new(durable),
            sync_lock: tokio::sync::Mutex::new(()),
            waiters: Mutex::new(Vec::new()),
            deleted: AtomicBool::new(false),
            metrics,
            counters,
        }
    }

    /// True while acknowledgements wait for `fdatasync` (`flush.messages` <= 1).
    pub fn is_durable(&self) -> bool {
        self.durable.load(Ordering::Relaxed)
    }

    /// The underlying log (for operations without a dedicated method here).
    pub fn log(&self) -> &SharedLog {
        &self.log
    }

    /// Appends one produce `records` blob. In relaxed mode the high watermark moves to the
    /// new end at once; in durable mode the caller follows with [`Partition::wait_durable`].
    pub fn append(&self, records: bytes::Bytes, now_ms: i64) -> Result<AppendInfo, AppendError> {
        let info = {
            let mut log = self.log.lock().unwrap();
            let info = log.append(records, crate::broker::LEADER_EPOCH, now_ms)?;
            if !self.durable.load(Ordering::Relaxed) {
                let end = log.log_end_offset();
                log.set_high_watermark(end);
            }
            info
        };
        if !self.durable.load(Ordering::Relaxed) && !info.duplicate {
            self.wake_waiters();
        }
        Ok(info)
    }

    /// Returns once every offset below `end_offset` is on disk, running an `fdatasync` if no
    /// finished one covers it yet. In relaxed mode it returns at once.
    pub async fn wait_durable(&self, end_offset: i64) -> std::io::Result<()> {
        if !self.durable.load(Ordering::Relaxed) || self.recovery_point() >= end_offset {
            return Ok(());
        }
        let _sync = self.sync_lock.lock().await;
        // Another waiter's sync may have covered us while we queued.
        let (file, target) = {
            let log = self.log.lock().unwrap();
            if log.recovery_point() >= end_offset {
                return Ok(());
            }
            log.sync_target().map_err(std::io::Error::other)?
        };
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .expect("fdatasync does not panic")?;
        self.metrics.synced(started.elapsed());
        {
            let mut log = self.log.lock().unwrap();
            log.mark_flushed(target);
            let high_watermark = log.high_watermark().max(target.min(log.log_end_offset()));
            log.set_high_watermark(high_watermark);
        }
        self.wake_waiters();
        Ok(())
    }

    fn recovery_point(&self) -> i64 {
        self.log.lock().unwrap().recovery_point()
    }

    /// Reads for a fetch, bounded by the high watermark. The returned slice is read from the
    /// file by the caller, outside the log's mutex.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
    ) -> Result<ReadInfo, ReadError> {
        let log = self.log.lock().unwrap();
        let high_watermark = log.high_watermark();
        log.read(fetch_offset, max_bytes, high_watermark, min_one_message)
    }

    /// Offsets a fetch response reports: (high watermark, log start offset, log end offset).
    pub fn offsets(&self) -> (i64, i64, i64) {
        let log = self.log.lock().unwrap();
        (
            log.high_watermark(),
            log.log_start_offset(),
            log.log_end_offset(),
        )
    }

    /// Registers a fetch's notifier; it is woken when the high watermark moves.
    pub fn add_waiter(&self, notify: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap();
        waiters.retain(|w| w.strong_count() > 0);
        waiters.push(Arc::downgrade(notify));
    }

    fn wake_waiters(&self) {
        let waiters: Vec<Arc<Notify>> = {
            let mut waiters = self.waiters.lock().unwrap();
            let live = waiters.iter().filter_map(Weak::upgrade).collect();
            waiters.clear();
            live
        };
        for w in waiters {
            w.notify_one();
        }
    }

    /// Applies a changed topic configuration.
    pub fn update_config(&self, config: LogConfig) {
        let durable = config.flush_messages <= 1;
        {
            let mut log = self.log.lock().unwrap();
            log.update_config(config);
            if !durable {
                let end = log.log_end_offset();
                log.set_high_watermark(end);
            }
        }
        self.durable.store(durable, Ordering::Relaxed);
        if !durable {
            // The high watermark may just have moved: parked fetches should see it now.
            self.wake_waiters();
        }
    }

    /// Marks the partition deleted and wakes its waiters, so fetches notice promptly.
    pub fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Relaxed);
        self.wake_waiters();
    }

    /// True once the partition's topic has been deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }
}
