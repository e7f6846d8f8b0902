//! Broker-wide group commit: one sync pass covers every partition with data waiting to become
//! durable, instead of each partition running its own sync loop.
//!
//! A produce that needs durability registers its partition (`SyncDriver::request`) and waits
//! on the partition's high watermark, which the pass moves. The driver task (started on the
//! first request, gone when there is no work) takes the whole set of registered partitions,
//! reads each one's active segment and end offset under its log's mutex, runs the
//! `fdatasync`s on the blocking pool with bounded parallelism, then moves every covered
//! recovery point and high watermark and wakes the partitions' watermark waiters. Partitions
//! registered while a pass runs form the next pass, so under load each dirty partition costs
//! one `fdatasync` per pass however many produces it received, and the number of concurrent
//! syscalls and tasks stays bounded however many partitions there are.
//!
//! `syncfs(2)` on the log dir's filesystem would be one call per pass, but it flushes every
//! dirty page of the filesystem, other processes' included, so its cost depends on what else
//! writes to the disk; per-file `fdatasync` costs only this broker's data. Measured on the
//! shared benchmark machine (BENCHMARKS.md, issue 7): a pass of 16 or more partitions done with
//! one `syncfs` made 1,000-partition produce 3× slower than per-file `fdatasync`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::services::replica::partition::Partition;

/// How many `fdatasync` calls of one pass run at the same time. The disk's queue absorbs a few
/// (and the filesystem journal commits them together); beyond that they only queue.
const SYNC_PARALLELISM: usize = 8;

#[derive(Default)]
struct Pending {
    partitions: Vec<Arc<Partition>>,
    running: bool,
}

/// The broker's sync driver; see the module documentation.
pub struct SyncDriver {
    pending: Mutex<Pending>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl SyncDriver {
    /// A driver with no work.
    pub fn new(metrics: Arc<crate::metrics::Metrics>) -> SyncDriver {
        SyncDriver {
            pending: Mutex::new(Pending::default()),
            metrics,
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
        for partition in batch {
            // Cleared before the target is read: a produce that registers after this point
            // may have appended after the read, so it must land in the next pass.
            partition.sync_queued.store(false, Ordering::SeqCst);
            match partition.sync_target() {
                Ok(Some((file, end))) => targets.push((partition, file, end)),
                Ok(None) => {}
                Err(error) => partition.sync_failed(error.to_string()),
            }
        }
        if targets.is_empty() {
            return;
        }
        let chunk = targets.len().div_ceil(SYNC_PARALLELISM);
        let mut jobs = Vec::new();
        let mut rest = targets;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk.min(rest.len()));
            let group = std::mem::replace(&mut rest, tail);
            let metrics = Arc::clone(&self.metrics);
            jobs.push(tokio::task::spawn_blocking(move || {
                group
                    .into_iter()
                    .map(|(partition, file, end)| {
                        let started = std::time::Instant::now();
                        let outcome = file.sync_data();
                        metrics.synced(started.elapsed());
                        (partition, end, outcome)
                    })
                    .collect::<Vec<_>>()
            }));
        }
        for job in jobs {
            for (partition, end, outcome) in job.await.expect("fdatasync does not panic") {
                match outcome {
                    Ok(()) => partition.synced(end),
                    Err(error) => partition.sync_failed(error.to_string()),
                }
            }
        }
    }
}
