//! Periodic storage work: retention, compaction, recovery-point checkpoints, and the
//! relaxed-flush timer. The compaction interval (`log.cleaner.backoff.ms`) follows the live
//! configuration.
//!
//! Each pass runs on the blocking pool (it does file I/O) and logs failures without stopping
//! the broker; the next tick tries again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::services::live_config::LiveConfig;
use crate::services::replica::ReplicaManager;

/// How often the relaxed-flush timer (`flush.ms`) is checked.
const FLUSH_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Starts the background tasks; they end when `shutdown` becomes true.
pub fn spawn(
    replicas: Arc<ReplicaManager>,
    live: Arc<LiveConfig>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let config = live.current();
    let retention_every =
        Duration::from_millis(config.log_retention_check_interval_ms.max(1) as u64);
    let checkpoint_every =
        Duration::from_millis(config.log_flush_offset_checkpoint_interval_ms.max(1) as u64);
    let cleaner_enabled = config.log_cleaner_enable;
    let cleaner_backoff = |ms: i64| Duration::from_millis(ms.max(1) as u64);
    let mut cleaner_every = cleaner_backoff(config.log_cleaner_backoff_ms);
    tokio::spawn(async move {
        let mut shutdown = shutdown;
        let mut retention = tokio::time::interval(retention_every);
        let mut checkpoint = tokio::time::interval(checkpoint_every);
        let mut flush = tokio::time::interval(FLUSH_CHECK_INTERVAL);
        let mut cleaner = tokio::time::interval(cleaner_every);
        for timer in [&mut retention, &mut checkpoint, &mut flush, &mut cleaner] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = cleaner.tick(), if cleaner_enabled => {
                    run(&replicas, "compaction", |b| {
                        b.logs.compaction_pass(crate::clock::now_ms()).map(|_| ())
                    }).await;
                    // log.cleaner.backoff.ms is dynamic: the next pass waits the new one.
                    let every = cleaner_backoff(live.current().log_cleaner_backoff_ms);
                    if every != cleaner_every {
                        cleaner_every = every;
                        cleaner = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                        cleaner.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    }
                }
                _ = retention.tick() => run(&replicas, "retention", |b| {
                    let deleted = b.logs.retention_pass(crate::clock::now_ms())?;
                    if deleted > 0 {
                        tracing::info!(segments = deleted, "retention deleted segments");
                    }
                    Ok(())
                }).await,
                _ = checkpoint.tick() => run(&replicas, "checkpoint", |b| b.logs.checkpoint()).await,
                _ = flush.tick() => run(&replicas, "flush", |b| b.logs.flush_due(crate::clock::now_ms())).await,
            }
        }
    })
}

async fn run(
    replicas: &Arc<ReplicaManager>,
    what: &'static str,
    pass: impl FnOnce(&ReplicaManager) -> Result<(), strom_log::LogError> + Send + 'static,
) {
    let replicas = replicas.clone();
    let outcome = tokio::task::spawn_blocking(move || pass(&replicas)).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(task = what, error = %e, "background storage task failed"),
        Err(e) => tracing::error!(task = what, error = %e, "background storage task panicked"),
    }
}
