//! A hosted partition: its log, durable acknowledgement by group commit, and its high
//! watermark with the one wait on it ([`super::watermark`]).
//!
//! Appends happen under the log's mutex and cost one `write` into the page cache. Durability
//! is a separate step: [`Partition::wait_high_watermark`] returns once the high watermark
//! covers the append, which on a single node means an `fdatasync` that started after the
//! append has finished. The broker's [`crate::services::replica::sync::SyncDriver`] runs those syncs in
//! passes that cover every partition with waiting data; each sync covers everything appended
//! before it started, so concurrent producers share one sync (group commit) instead of paying
//! one each, across partitions as well as within one.
//!
//! The high watermark is the minimum over the ISR of each replica's *local durable end*
//! (`Partition::local_durable_end`: the recovery point in durable mode, `flush.messages` = 1,
//! Strom's default; the log end offset in relaxed mode, `flush.messages` > 1, Kafka's
//! page-cache behaviour). On a single node the ISR is this broker alone and the two are the
//! same offset, so a consumer never sees a record that a crash could take back.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use strom_log::{
    AppendError, AppendInfo, LogConfig, ReadError, ReadInfo, SharedLog, TopicPartition,
};
use tokio::sync::Notify;

use super::watermark::WatermarkWait;

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
    /// Produces, fetches and coordinator writes waiting for the high watermark to move.
    watermark: WatermarkWait,
    deleted: AtomicBool,
    /// True once a LeaderAndIsr made the partition replicated: then `replication` holds its
    /// replica state and the high watermark comes from it. Checked before taking that mutex,
    /// so a single node's hot path pays one relaxed load.
    replicated: AtomicBool,
    /// The replica state of a replicated partition (lock order: the log's mutex first).
    pub(crate) replication: Mutex<Option<super::replication::Replication>>,
    /// This partition's topic's counters.
    pub counters: Arc<crate::metrics::TopicCounters>,
    /// Records behind the leader's high watermark at the last follower fetch (-1: none yet).
    follower_lag: AtomicI64,
    /// Transactional batches waiting for KIP-890 verification, in arrival order per producer
    /// ([`super::verifying`]). Lock order: before the log's mutex.
    pub(crate) verifying: super::verifying::Waiting,
    /// What each follower last reported as its log start offset ([`super::low_watermark`]).
    pub(crate) follower_log_starts: super::low_watermark::FollowerLogStarts,
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
            watermark: WatermarkWait::default(),
            deleted: AtomicBool::new(false),
            replicated: AtomicBool::new(false),
            replication: Mutex::new(None),
            counters,
            follower_lag: AtomicI64::new(-1),
            verifying: Default::default(),
            follower_log_starts: Default::default(),
        }
    }

    /// Records the fetcher was behind the leader's high watermark at its last fetch, if this
    /// broker has fetched the partition as a follower (the metrics' follower lag).
    pub fn follower_lag(&self) -> Option<u64> {
        u64::try_from(self.follower_lag.load(Ordering::Relaxed)).ok()
    }

    /// A follower fetch left the log at `end` while the leader's high watermark was
    /// `leader_hw`.
    pub(crate) fn set_follower_lag(&self, end: i64, leader_hw: i64) {
        self.follower_lag
            .store((leader_hw - end).max(0), Ordering::Relaxed);
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
    /// new end at once; in durable mode the caller follows with
    /// [`Partition::wait_high_watermark`].
    pub fn append(&self, records: bytes::Bytes, now_ms: i64) -> Result<AppendInfo, AppendError> {
        self.append_produce(records, now_ms, strom_log::log::Verification::Off)
    }

    /// [`Partition::append`] of a client's produce, with KIP-890's check of transactional
    /// batches ([`strom_log::Log::append_verified`]).
    pub fn append_produce(
        &self,
        records: bytes::Bytes,
        now_ms: i64,
        verification: strom_log::log::Verification,
    ) -> Result<AppendInfo, AppendError> {
        let info = self.append_as_leader(|log, epoch| {
            log.append_verified(records, epoch, now_ms, verification)
        })?;
        if (!self.durable.load(Ordering::Relaxed) || self.is_replicated()) && !info.duplicate {
            // Relaxed: the high watermark moved. Replicated: followers long-poll for the log
            // end, which just moved.
            self.watermark.wake();
        }
        Ok(info)
    }

    /// Appends a transaction marker as this partition's leader (WriteTxnMarkers): like
    /// [`Partition::append`], but the batch is the log's own control batch
    /// ([`strom_log::Log::append_txn_marker`]). The caller waits for the high watermark to
    /// pass `last_offset` before answering, as for an `acks=all` produce.
    pub fn append_txn_marker(
        &self,
        marker: &strom_log::control::TxnMarker,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let info =
            self.append_as_leader(|log, epoch| log.append_txn_marker(marker, epoch, now_ms))?;
        // The last stable offset may have moved even where the high watermark did not:
        // read_committed fetches park on the same wait.
        self.watermark.wake();
        Ok(info)
    }

    /// Runs one leader append under the log's mutex at this partition's leader epoch and, in
    /// relaxed mode, moves the high watermark to the new end (durable mode leaves that to
    /// the sync pass).
    fn append_as_leader(
        &self,
        append: impl FnOnce(&mut strom_log::Log, i32) -> Result<AppendInfo, AppendError>,
    ) -> Result<AppendInfo, AppendError> {
        let mut log = self.log.lock().unwrap();
        let info = append(&mut log, self.leader_epoch())?;
        if !self.durable.load(Ordering::Relaxed) {
            self.advance_high_watermark(&mut log);
        }
        Ok(info)
    }

    /// The end of what this broker holds durably: the recovery point in durable mode, the log
    /// end offset in relaxed mode. See [`super::watermark`].
    fn local_durable_end(&self, log: &strom_log::Log) -> i64 {
        if self.durable.load(Ordering::Relaxed) {
            log.recovery_point().min(log.log_end_offset())
        } else {
            log.log_end_offset()
        }
    }

    /// Moves the high watermark up to the minimum local durable end over the ISR. On a single
    /// node the ISR is this broker alone, so that is [`Partition::local_durable_end`]; with
    /// followers, their acknowledged durable positions join the minimum here. It never moves
    /// down. Returns whether it moved.
    fn advance_high_watermark(&self, log: &mut strom_log::Log) -> bool {
        if self.is_replicated() {
            let end = self.local_durable_end(log);
            return self.replica_local_durable(log, end);
        }
        let isr_durable_end = self.local_durable_end(log);
        if isr_durable_end > log.high_watermark() {
            log.set_high_watermark(isr_durable_end);
            true
        } else {
            false
        }
    }

    /// Returns once the high watermark reaches `end_offset` (what `acks=all` waits for):
    /// on a single node, once every offset below it is on disk. The partition is registered
    /// for the sync driver's next pass if its local durable end is short of `end_offset`. In
    /// relaxed mode it returns at once. A failed sync of this partition after the call started
    /// is an error.
    pub async fn wait_high_watermark(self: &Arc<Self>, end_offset: i64) -> std::io::Result<()> {
        if self.is_replicated() {
            // The replica state's high watermark, ended early by a leadership change.
            return match self.wait_replicated(end_offset, true).await {
                0 => Ok(()),
                code => Err(std::io::Error::other(format!(
                    "not replicated to the ISR (error code {code})"
                ))),
            };
        }
        if !self.durable.load(Ordering::Relaxed) {
            return Ok(());
        }
        let failures_before = self.sync_failures.load(Ordering::SeqCst);
        let notify = Arc::new(Notify::new());
        loop {
            // Registered before the check, so a move in between is not missed.
            self.watermark.register(&notify);
            let (reached, local_durable_end) = self.reached(end_offset);
            if reached {
                return Ok(());
            }
            if self.sync_failures.load(Ordering::SeqCst) != failures_before {
                let message = self.last_sync_error.lock().unwrap().clone();
                return Err(std::io::Error::other(message));
            }
            if local_durable_end < end_offset {
                self.sync.request(self);
            }
            notify.notified().await;
        }
    }

    /// [`Partition::wait_high_watermark`] for several partitions at once, in one task: every
    /// partition is registered with the sync driver before the first wait, so they share its
    /// passes, and the task parks on each partition's [`WatermarkWait`] with one `Notify`.
    /// Returns one outcome per entry, in order.
    pub async fn wait_all_high_watermarks(
        waits: &[(Arc<Partition>, i64)],
    ) -> Vec<std::io::Result<()>> {
        if waits.iter().any(|(p, _)| p.is_replicated()) {
            let mut outcomes = Vec::with_capacity(waits.len());
            for (partition, end) in waits {
                outcomes.push(partition.wait_high_watermark(*end).await);
            }
            return outcomes;
        }
        let mut outcomes: Vec<Option<std::io::Result<()>>> = waits.iter().map(|_| None).collect();
        let failures_before: Vec<u64> = waits
            .iter()
            .map(|(p, _)| p.sync_failures.load(Ordering::SeqCst))
            .collect();
        let notify = Arc::new(Notify::new());
        loop {
            let mut waiting = false;
            for (i, (partition, end)) in waits.iter().enumerate() {
                if outcomes[i].is_some() {
                    continue;
                }
                // Registered before the check, so a move in between is not missed.
                partition.watermark.register(&notify);
                let (reached, local_durable_end) = partition.reached(*end);
                if reached {
                    outcomes[i] = Some(Ok(()));
                } else if partition.sync_failures.load(Ordering::SeqCst) != failures_before[i] {
                    let message = partition.last_sync_error.lock().unwrap().clone();
                    outcomes[i] = Some(Err(std::io::Error::other(message)));
                } else {
                    if local_durable_end < *end {
                        partition.sync.request(partition);
                    }
                    waiting = true;
                }
            }
            if !waiting {
                return outcomes.into_iter().map(|o| o.expect("decided")).collect();
            }
            notify.notified().await;
        }
    }

    /// Whether the high watermark has reached `end_offset` (moving it first if the local
    /// durable end allows), and the local durable end. A relaxed partition has always reached
    /// it: its high watermark moves with every append.
    fn reached(&self, end_offset: i64) -> (bool, i64) {
        let (reached, local_durable_end, moved) = {
            let mut log = self.log.lock().unwrap();
            let local_durable_end = self.local_durable_end(&log);
            if !self.durable.load(Ordering::Relaxed) {
                return (true, local_durable_end);
            }
            let moved = self.advance_high_watermark(&mut log);
            (log.high_watermark() >= end_offset, local_durable_end, moved)
        };
        if moved {
            self.watermark.wake();
        }
        (reached, local_durable_end)
    }

    /// The active segment's file, the end offset a sync of it would cover and the records
    /// below that end not yet durable, or `None` if everything is already durable (or the
    /// partition is relaxed).
    pub(crate) fn sync_target(
        &self,
    ) -> Result<Option<(Arc<std::fs::File>, i64, i64)>, strom_log::LogError> {
        let log = self.log.lock().unwrap();
        let recovery_point = log.recovery_point();
        if !self.durable.load(Ordering::Relaxed) || recovery_point >= log.log_end_offset() {
            return Ok(None);
        }
        let (file, end) = log.sync_target()?;
        Ok(Some((file, end, end - recovery_point)))
    }

    /// Records a finished sync covering offsets below `target`: the local durable end and
    /// with it the high watermark move, and the watermark's waiters are woken.
    pub(crate) fn synced(&self, target: i64) {
        {
            let mut log = self.log.lock().unwrap();
            log.mark_flushed(target);
            self.advance_high_watermark(&mut log);
        }
        self.watermark.wake();
    }

    /// Records a failed sync: the produces waiting on it answer with an error.
    pub(crate) fn sync_failed(&self, message: String) {
        tracing::error!(partition = %self.topic_partition, error = %message, "fdatasync failed");
        *self.last_sync_error.lock().unwrap() = message;
        self.sync_failures.fetch_add(1, Ordering::SeqCst);
        self.watermark.wake();
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

    /// Reads for a `read_committed` fetch, bounded by the last stable offset, with the
    /// `(producer id, first offset)` of the aborted transactions overlapping the returned data
    /// ([`strom_log::Log::read_committed`]).
    pub fn read_committed(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
    ) -> Result<(ReadInfo, Vec<(i64, i64)>), ReadError> {
        let log = self.log.lock().unwrap();
        log.read_committed(fetch_offset, max_bytes, min_one_message)
    }

    /// The last stable offset: what `read_committed` consumers may read up to.
    pub fn last_stable_offset(&self) -> i64 {
        self.log.lock().unwrap().last_stable_offset()
    }

    /// Reads for a follower's fetch: up to the log end, not the high watermark (the returned
    /// `high_watermark` is still the leader's, for the follower to adopt).
    pub fn read_for_follower(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_message: bool,
    ) -> Result<ReadInfo, ReadError> {
        let log = self.log.lock().unwrap();
        let end = log.log_end_offset();
        let mut info = log.read(fetch_offset, max_bytes, end, min_one_message)?;
        info.high_watermark = log.high_watermark();
        Ok(info)
    }

    /// True once a LeaderAndIsr made this partition replicated.
    pub fn is_replicated(&self) -> bool {
        self.replicated.load(Ordering::Relaxed)
    }

    pub(crate) fn set_replicated(&self) {
        self.replicated.store(true, Ordering::SeqCst);
    }

    pub(crate) fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::SeqCst);
    }

    /// Wakes everything parked on the partition's watermark (a role change, a truncation).
    pub(crate) fn wake(&self) {
        self.watermark.wake();
    }

    /// Asks the sync driver to make the log durable up to its current end.
    pub(crate) fn request_sync(self: &Arc<Self>) {
        self.sync.request(self);
    }

    /// Returns once this broker holds the log durably up to `end_offset` (a follower's fetched
    /// data before it reports the new offset; an acks=1 produce on a replicated leader): the
    /// sync driver's group commit, without the high watermark.
    pub async fn wait_local_durable(self: &Arc<Self>, end_offset: i64) -> std::io::Result<()> {
        let failures_before = self.sync_failures.load(Ordering::SeqCst);
        let notify = Arc::new(Notify::new());
        loop {
            self.watermark.register(&notify);
            let local = {
                let log = self.log.lock().unwrap();
                self.local_durable_end(&log)
            };
            if local >= end_offset {
                return Ok(());
            }
            if self.sync_failures.load(Ordering::SeqCst) != failures_before {
                let message = self.last_sync_error.lock().unwrap().clone();
                return Err(std::io::Error::other(message));
            }
            self.sync.request(self);
            notify.notified().await;
        }
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

    /// Registers a long-polling fetch's notifier on the partition's [`WatermarkWait`]; it is
    /// woken when the high watermark moves.
    pub fn add_waiter(&self, notify: &Arc<Notify>) {
        self.watermark.register(notify);
    }

    /// Applies a changed topic configuration.
    pub fn update_config(&self, config: LogConfig) {
        let durable = config.flush_messages <= 1;
        {
            let mut log = self.log.lock().unwrap();
            log.update_config(config);
            self.durable.store(durable, Ordering::Relaxed);
            if !durable {
                self.advance_high_watermark(&mut log);
            }
        }
        if !durable {
            // The high watermark may just have moved: parked fetches should see it now.
            self.watermark.wake();
        }
    }

    /// Marks the partition deleted and wakes its waiters, so fetches notice promptly.
    pub fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Relaxed);
        self.watermark.wake();
    }

    /// True once the partition's topic has been deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }
}
