//! Controlled shutdown in the simulation: a broker asks the active controller to move its
//! leadership away (retrying every 100 ms, at most [`MAX_ATTEMPTS`] times, as
//! `controlled.shutdown.max.retries` bounds Kafka's broker), then stops cleanly: every log
//! synced, its session closed (its registration goes at once, not after the timeout).

use strom_meta::replication::{BrokerId, TopicPartition};

use super::broker::Msg;
use super::{Event, World};

/// Attempts before the broker stops anyway.
pub const MAX_ATTEMPTS: u32 = 4;
/// The pause between two attempts (also the wait for an answer).
const RETRY_MS: u64 = 100;

impl World {
    /// One attempt of broker `id`'s controlled shutdown.
    pub(super) fn controlled_stop(&mut self, id: BrokerId, attempt: u32) {
        if attempt >= MAX_ATTEMPTS {
            self.stop_cleanly(id, false);
            return;
        }
        let broker = &self.brokers[&id];
        let (incarnation, broker_epoch) = (broker.incarnation, broker.broker_epoch);
        let controller = self.zk.controller();
        if let (Some(controller), Some(broker_epoch)) = (controller, broker_epoch) {
            self.trace(|| format!("  broker {id}: ControlledShutdown #{attempt} to {controller}"));
            let msg = Msg::ControlledShutdown {
                from: id,
                broker_epoch,
            };
            self.send_controller(id, controller, msg);
        }
        self.schedule(
            RETRY_MS,
            Event::ControlledStop {
                broker: id,
                incarnation,
                attempt: attempt + 1,
            },
        );
    }

    /// The controller answered broker `id`: stop if nothing is left to move.
    pub(super) fn shutdown_answered(
        &mut self,
        id: BrokerId,
        error_code: i16,
        remaining: Vec<TopicPartition>,
    ) {
        self.trace(|| {
            format!("  broker {id}: ControlledShutdown answered {error_code} {remaining:?}")
        });
        if error_code == 0 && remaining.is_empty() {
            self.stop_cleanly(id, true);
        }
    }

    /// A clean stop: logs synced, then the process ends and its session is closed.
    fn stop_cleanly(&mut self, id: BrokerId, clean: bool) {
        self.trace(|| format!("chaos: controlled stop of {id} (moved everything: {clean})"));
        self.checker.stats.controlled_stops += 1;
        self.checker.stats.controlled_clean += u64::from(clean);
        self.checker.forget_broker(id);
        let broker = self.brokers.get_mut(&id).expect("known broker");
        for log in broker.logs.values_mut() {
            log.sync();
        }
        let session = broker.kill();
        let incarnation = broker.incarnation;
        if let Some(session) = session {
            let watches = self.zk.expire(session);
            self.fire(watches);
        }
        // A rolling restart: the broker starts again a little later.
        let delay = 50 + self.below(300);
        self.schedule(
            delay,
            Event::Restart {
                broker: id,
                incarnation,
            },
        );
    }
}
