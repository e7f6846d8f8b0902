//! One partition's watermark wait: the one place where everything that waits for a partition's
//! high watermark to move parks — acknowledgements of `acks=all` produces (and the group
//! coordinator's own writes), consumers' long-polling fetches, and later followers' fetches.
//!
//! Two offsets are named apart here because replication will pull them apart:
//!
//! - the **local durable end**: the end of what this broker holds durably — the recovery point
//!   in durable mode (`flush.messages` <= 1, data `fdatasync`'d), the log end offset in relaxed
//!   mode (Kafka's page-cache acknowledgement). It is what "high watermark" meant on a single
//!   node before replication.
//! - the **high watermark**: the minimum durable log end offset over the ISR — what consumers
//!   may read and what `acks=all` waits for. On a single node the ISR is this broker alone, so
//!   it equals the local durable end; with followers their acknowledged (durable) fetch
//!   positions join the minimum.
//!
//! Whoever moves either offset (a finished sync, an append in relaxed mode, a configuration
//! change, a failed sync, a deleted partition) or the last stable offset (a transaction marker,
//! which `read_committed` fetches wait on) calls [`WatermarkWait::wake`]; a waiter
//! registers its `Notify` *before* checking its condition, so a move between the check and
//! the wait is not missed (the `Notify` keeps the permit).

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

/// The waiters of one partition's high watermark; see the module documentation.
#[derive(Default)]
pub struct WatermarkWait {
    /// Registered since the last wake. Weak: a waiter that gave up (a fetch that timed out, a
    /// produce whose connection closed) is not kept alive by the partition.
    waiters: Mutex<Vec<Weak<Notify>>>,
}

impl WatermarkWait {
    /// Registers `notify` to be woken once, at the next [`WatermarkWait::wake`].
    pub fn register(&self, notify: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap();
        waiters.retain(|w| w.strong_count() > 0);
        waiters.push(Arc::downgrade(notify));
    }

    /// Wakes every registered waiter; each re-checks its condition and registers again if it
    /// still has to wait.
    pub fn wake(&self) {
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
}
