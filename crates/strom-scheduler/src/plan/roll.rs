//! The roll gate: may an update take the next running broker down now?
//!
//! The SDK rolled a changed pod as soon as the previous one was ready, which can take a
//! partition below `min.insync.replicas` while a restarted broker is still catching up.
//! Strom adds Strimzi's rule: before stopping a running broker, the cluster must report no
//! under-replicated partitions, in a report newer than the previous restart's completion and
//! not older than [`HEALTH_MAX_AGE_MS`]. The health report is an input (the scheduler asks the
//! brokers through the Kafka protocol); this module only decides.

/// A health report is trusted for this long.
pub const HEALTH_MAX_AGE_MS: u64 = 30_000;

/// What the cluster reported about its partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterHealth {
    /// Partitions whose ISR is smaller than their replica set.
    pub under_replicated_partitions: u32,
    /// When the report was taken.
    pub observed_at_ms: u64,
}

/// The gate's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollDecision {
    /// The broker may be stopped.
    Proceed,
    /// Not yet; the message says what is awaited (shown as the step's message).
    Wait(String),
}

/// Whether a running broker may be stopped for an update at `now_ms`, given the latest health
/// report and when the previous restart of this roll completed.
pub fn may_take_down(
    health: Option<ClusterHealth>,
    previous_restart_completed_ms: Option<u64>,
    now_ms: u64,
) -> RollDecision {
    let Some(health) = health else {
        return RollDecision::Wait("waiting for a cluster health report".into());
    };
    if previous_restart_completed_ms.is_some_and(|done| health.observed_at_ms < done) {
        return RollDecision::Wait(
            "waiting for a cluster health report newer than the last broker restart".into(),
        );
    }
    if now_ms.saturating_sub(health.observed_at_ms) > HEALTH_MAX_AGE_MS {
        return RollDecision::Wait(format!(
            "waiting for a fresh cluster health report (the last is {} s old)",
            now_ms.saturating_sub(health.observed_at_ms) / 1000
        ));
    }
    if health.under_replicated_partitions > 0 {
        return RollDecision::Wait(format!(
            "waiting for {} under-replicated partition(s) to catch up before stopping the next broker",
            health.under_replicated_partitions
        ));
    }
    RollDecision::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(under_replicated_partitions: u32, observed_at_ms: u64) -> Option<ClusterHealth> {
        Some(ClusterHealth {
            under_replicated_partitions,
            observed_at_ms,
        })
    }

    #[test]
    fn proceeds_only_on_a_fresh_report_without_under_replicated_partitions() {
        assert_eq!(
            may_take_down(health(0, 1_000), None, 2_000),
            RollDecision::Proceed
        );
        assert_eq!(
            may_take_down(health(0, 5_000), Some(4_000), 6_000),
            RollDecision::Proceed
        );
    }

    #[test]
    fn waits_for_a_report_a_newer_one_a_fresh_one_and_caught_up_replicas() {
        let wait = |decision: RollDecision| match decision {
            RollDecision::Wait(message) => message,
            RollDecision::Proceed => panic!("expected to wait"),
        };
        assert!(wait(may_take_down(None, None, 0)).contains("health report"));
        assert!(wait(may_take_down(health(0, 3_000), Some(4_000), 5_000)).contains("newer"));
        assert!(wait(may_take_down(health(0, 1_000), None, 40_000)).contains("39 s old"));
        assert_eq!(
            wait(may_take_down(health(3, 5_000), Some(4_000), 6_000)),
            "waiting for 3 under-replicated partition(s) to catch up before stopping the next broker"
        );
    }
}
