//! The cluster health reporter: the scheduler's roll gate (`strom_scheduler::plan::roll`) lets
//! an update, a plan restart or a `plan start` stop a running broker only after a fresh report
//! of zero under-replicated partitions. This thread makes those reports: every
//! [`HEALTH_INTERVAL`] it asks the running brokers for metadata over the Kafka protocol (with
//! the core's lock released) and feeds `Input::Health` with the number of partitions whose ISR
//! is smaller than their replica set. No answer, no report: the gate then keeps waiting, which
//! is the safe side. Owns no decision; the core decides.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_scheduler::engine::Engine;
use strom_scheduler::plan::roll::ClusterHealth;
use strom_scheduler::scheduler::Input;
use strom_scheduler::task::{TaskRecord, TaskState};

use super::Core;
use crate::client::ClientOptions;

/// How often the brokers are asked (well inside the gate's 30 s trust window).
pub(crate) const HEALTH_INTERVAL: Duration = Duration::from_secs(3);
/// The Kafka spec's broker task, whose port of the same name is the broker's listener.
pub(crate) const BROKER_TASK: &str = "broker";

/// The broker's `host:port` as clients reach it (`TASK_IP`, else the agent's hostname).
pub(crate) fn broker_address(record: &TaskRecord) -> Option<String> {
    let info = &record.info;
    let port = info.ports.get(BROKER_TASK)?;
    let host = info.env.get("TASK_IP").unwrap_or(&info.hostname);
    Some(format!("{host}:{port}"))
}

/// The addresses of the service's running brokers.
pub(crate) fn running_broker_addresses(core: &Core) -> Vec<String> {
    core.scheduler
        .tasks()
        .values()
        .filter(|r| r.info.task == BROKER_TASK && !r.info.permanently_failed)
        .filter(|r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.state == TaskState::Running)
        })
        .filter_map(broker_address)
        .collect()
}

/// Client options over `addresses` with a request timeout.
pub(crate) fn client_options(addresses: &[String], timeout: Duration) -> ClientOptions {
    ClientOptions {
        brokers: addresses.join(","),
        timeout_ms: timeout.as_millis() as u64,
        props: Vec::new(),
        json: true,
    }
}

/// One report: the under-replicated partitions the first answering broker knows of.
fn under_replicated_partitions(addresses: &[String]) -> Option<u32> {
    let metadata = client_options(addresses, Duration::from_secs(3))
        .raw_metadata(None)
        .ok()?;
    let count = metadata
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .filter(|p| p.isr_nodes.len() < p.replica_nodes.len())
        .count();
    Some(count as u32)
}

/// The reporter's loop; runs for the process's life.
pub(crate) fn report_forever(core: Arc<Mutex<Core>>) {
    loop {
        std::thread::sleep(HEALTH_INTERVAL);
        let (addresses, observed_at_ms) = {
            let core = core.lock().unwrap_or_else(|p| p.into_inner());
            if core.removed {
                return;
            }
            (running_broker_addresses(&core), core.now_ms())
        };
        if addresses.is_empty() {
            continue;
        }
        let Some(under_replicated_partitions) = under_replicated_partitions(&addresses) else {
            continue;
        };
        let mut guard = core.lock().unwrap_or_else(|p| p.into_inner());
        let core = &mut *guard;
        let now_ms = core.now_ms();
        let health = ClusterHealth {
            under_replicated_partitions,
            observed_at_ms,
        };
        // A store failure here is the driver's to report on its next cycle.
        if let Ok(effects) = core.scheduler.handle(Input::Health(health), now_ms) {
            core.engine.apply(&effects, now_ms);
        }
    }
}
