//! A hosted partition: its log, durable acknowledgement by group commit, and the waiters of
//! long-polling fetches.
//!
//! Appends happen under the log's mutex and cost one `write` into the page cache. Durability
//! is a separate step: [`Partition::wait_durable`] makes sure an `fdatasync` that started after
//! the append has finished. The broker's [`crate::services::replica::sync::SyncDriver`] runs those syncs in
//! passes that cover every partition with waiting data; each sync covers everything appended
//! before it started, so concurrent producers share one sync (group commit) instead of paying
//! one each, across partitions as well as within one.
//!
//! In durable mode (`flush.messages` = 1, Strom's default) the high watermark only moves to
//! offsets that are on disk, so a consumer never sees a record that a crash could take back.
//! In relaxed mode (`flush.messages` > 1, Kafka's page-cache behaviour) it moves to the log
//! end offset at once.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
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
    /// The leader epoch this broker leads the partition in: stamped into every batch it
    /// appends, and what a request's `current_leader_epoch` is checked against. Set from the
    /// metadata cache's state when the partition is hosted.
    leader_epoch: AtomicI32,
    /// True while `flush.messages` <= 1: acknowledgements wait for `fdatasync`.
    durable: AtomicBool,
    /// The broker's sync driver.
    sync: Arc<crate::services::replica::sync::SyncDriver>,
    /// True while the partition is registered for the driver's next pass.
    pub(crate) sync_queued: AtomicBool,
    /// Failed syncs so far, and the last failure's message.
    sync_failures: AtomicU64,
    last_sync_error: Mutex<String>,
    /// Fetches waiting for the high watermark to move.
    waiters: Mutex<Vec<Weak<Notify>>>,
    deleted: AtomicBool,
    /// This partition's topic's counters.
    pub counters: Arc<crate::metrics::TopicCounters>,
}

impl Partition {
    /// Wraps an opened log, led at `leader_epoch`.
    pub fn new(
        topic_partition: TopicPartition,
        log: SharedLog,
        leader_epoch: i32,
        durable: bool,
        metrics: Arc<crate::metrics::Metrics>,
        sync: Arc<crate::services::replica::sync::SyncDriver>,
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
            leader_epoch: AtomicI32::new(leader_epoch),
            durable: AtomicBool::new(durable),
            sync,
            sync_queued: AtomicBool::new(false),
            sync_failures: AtomicU64::new(0),
            last_sync_error: Mutex::new(String::new()),
            waiters: Mutex::new(Vec::new()),
            deleted: AtomicBool::new(false),
            counters,
        }
    }

    /// The leader epoch this broker leads the partition in.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Relaxed)
    }

    /// The error code for a request that names `current` as the leader epoch it believes in:
    /// `FENCED_LEADER_EPOCH` when it is older than the partition's, `UNKNOWN_LEADER_EPOCH` when
    /// newer, 0 when it matches or is not given (-1).
    pub fn leader_epoch_error(&self, current: i32) -> i16 {
        use kafka_protocol::error::ResponseError as E;
        if current < 0 {
            return 0;
        }
        match current.cmp(&self.leader_epoch()) {
            std::cmp::Ordering::Less => E::FencedLeaderEpoch.code(),
            std::cmp::Ordering::Greater => E::UnknownLeaderEpoch.code(),
            std::cmp::Ordering::Equal => 0,
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
            let info = log.append(records, self.leader_epoch(), now_ms)?;
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

    /// Returns once every offset below `end_offset` is on disk, registering the partition for
    /// the sync driver's next pass if no finished sync covers it yet. In relaxed mode it returns
    /// at once. A failed sync of this partition after the call started is an error.
    pub async fn wait_durable(self: &Arc<Self>, end_offset: i64) -> std::io::Result<()> {
        if !self.durable.load(Ordering::Relaxed) {
            return Ok(());
        }
        let failures_before = self.sync_failures.load(Ordering::SeqCst);
        loop {
            // Subscribed before the check, so a pass that finishes in between is not missed.
            let mut passes = self.sync.subscribe();
            if self.recovery_point() >= end_offset || !self.durable.load(Ordering::Relaxed) {
                return Ok(());
            }
            if self.sync_failures.load(Ordering::SeqCst) != failures_before {
                let message = self.last_sync_error.lock().unwrap().clone();
                return Err(std::io::Error::other(message));
            }
            self.sync.request(self);
            if passes.changed().await.is_err() {
                return Err(std::io::Error::other("the sync driver stopped"));
            }
        }
    }

    /// [`Partition::wait_durable`] for several partitions at once, in one task: every
    /// partition is registered before the first wait, so they share the driver's passes.
    /// Returns one outcome per entry, in order.
    pub async fn wait_all_durable(waits: &[(Arc<Partition>, i64)]) -> Vec<std::io::Result<()>> {
        let mut outcomes: Vec<Option<std::io::Result<()>>> = waits.iter().map(|_| None).collect();
        let failures_before: Vec<u64> = waits
            .iter()
            .map(|(p, _)| p.sync_failures.load(Ordering::SeqCst))
            .collect();
        let Some((first, _)) = waits.first() else {
            return Vec::new();
        };
        loop {
            let mut passes = first.sync.subscribe();
            let mut waiting = false;
            for (i, (partition, end)) in waits.iter().enumerate() {
                if outcomes[i].is_some() {
                    continue;
                }
                if !partition.durable.load(Ordering::Relaxed) || partition.recovery_point() >= *end
                {
                    outcomes[i] = Some(Ok(()));
                } else if partition.sync_failures.load(Ordering::SeqCst) != failures_before[i] {
                    let message = partition.last_sync_error.lock().unwrap().clone();
                    outcomes[i] = Some(Err(std::io::Error::other(message)));
                } else {
                    partition.sync.request(partition);
                    waiting = true;
                }
            }
            if !waiting {
                return outcomes.into_iter().map(|o| o.expect("decided")).collect();
            }
            if passes.changed().await.is_err() {
                return outcomes
                    .into_iter()
                    .map(|o| {
                        o.unwrap_or_else(|| Err(std::io::Error::other("the sync driver stopped")))
                    })
                    .collect();
            }
        }
    }

    /// The active segment's file and the end offset a sync of it would cover, or `None` if
    /// everything is already durable (or the partition is relaxed).
    pub(crate) fn sync_target(
        &self,
    ) -> Result<Option<(Arc<std::fs::File>, i64)>, strom_log::LogError> {
        let log = self.log.lock().unwrap();
        if !self.durable.load(Ordering::Relaxed) || log.recovery_point() >= log.log_end_offset() {
            return Ok(None);
        }
        log.sync_target().map(Some)
    }

    /// Records a finished sync covering offsets below `target`: the recovery point and the
    /// high watermark move, and parked fetches are woken.
    pub(crate) fn synced(&self, target: i64) {
        {
            let mut log = self.log.lock().unwrap();
            log.mark_flushed(target);
            let high_watermark = log.high_watermark().max(target.min(log.log_end_offset()));
            log.set_high_watermark(high_watermark);
        }
        self.wake_waiters();
    }

    /// Records a failed sync: the produces waiting on it answer with an error.
    pub(crate) fn sync_failed(&self, message: String) {
        tracing::error!(partition = %self.topic_partition, error = %message, "fdatasync failed");
        *self.last_sync_error.lock().unwrap() = message;
        self.sync_failures.fetch_add(1, Ordering::SeqCst);
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
