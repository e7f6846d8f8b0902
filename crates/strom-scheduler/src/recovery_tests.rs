use std::collections::BTreeMap;

use uuid::Uuid;

use super::*;
use crate::spec::Goal;
use crate::task::{PodInstance, TaskInfo, TaskStatus};

fn record(state: Option<TaskState>) -> TaskRecord {
    TaskRecord {
        info: TaskInfo {
            name: "kafka-0-broker".into(),
            task_id: "kafka-0-broker__1".into(),
            instance: PodInstance::new("kafka", 0),
            task: "broker".into(),
            goal: Goal::Running,
            config_id: Uuid::from_u128(1),
            agent_id: "a1".into(),
            hostname: "h1".into(),
            zone: None,
            resources: Vec::new(),
            ports: BTreeMap::new(),
            env: BTreeMap::new(),
            cmd: String::new(),
            files: BTreeMap::new(),
            secrets: Vec::new(),
            permanently_failed: false,
            paused: false,
        },
        status: state.map(|state| TaskStatus {
            task_id: "kafka-0-broker__1".into(),
            agent_id: "a1".into(),
            state,
            message: String::new(),
            ready: false,
            uuid: None,
        }),
    }
}

#[test]
fn back_off_doubles_up_to_the_maximum() {
    let policy = BackoffPolicy::default();
    let delays: Vec<u64> = (1..=8).map(|n| policy.delay_ms(n)).collect();
    assert_eq!(
        delays,
        [0, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]
    );
    assert_eq!(policy.delay_ms(u32::MAX), 300_000);
}

#[test]
fn a_crash_loop_is_delayed_and_a_long_run_resets_it() {
    let policy = BackoffPolicy::default();
    let mut crash = CrashRecord::default();
    let failed = record(Some(TaskState::Failed));
    crash.observe(TaskState::Running, false, 0, &policy);
    crash.observe(TaskState::Failed, false, 1_000, &policy);
    assert_eq!(
        decide(&failed, &crash, &policy, FailureMonitor::Never, 1_000),
        RecoveryDecision::Transient {
            not_before_ms: 1_000
        }
    );
    crash.observe(TaskState::Running, false, 2_000, &policy);
    crash.observe(TaskState::Failed, false, 3_000, &policy);
    assert_eq!(
        decide(&failed, &crash, &policy, FailureMonitor::Never, 3_000),
        RecoveryDecision::Transient {
            not_before_ms: 13_000
        }
    );
    crash.observe(TaskState::Running, false, 20_000, &policy);
    crash.observe(TaskState::Failed, false, 20_000 + 600_000, &policy);
    assert_eq!(
        crash.consecutive_failures, 1,
        "ten minutes of running reset the loop"
    );
}

#[test]
fn expected_stops_and_finishes_are_not_failures() {
    let policy = BackoffPolicy::default();
    let mut crash = CrashRecord::default();
    crash.observe(TaskState::Killed, true, 5, &policy);
    crash.observe(TaskState::Finished, false, 6, &policy);
    assert_eq!(crash.consecutive_failures, 0);
    let monitor = FailureMonitor::Never;
    assert_eq!(
        decide(&record(None), &crash, &policy, monitor, 0),
        RecoveryDecision::None
    );
    assert_eq!(
        decide(
            &record(Some(TaskState::Running)),
            &crash,
            &policy,
            monitor,
            0
        ),
        RecoveryDecision::None
    );
    assert_eq!(
        decide(
            &record(Some(TaskState::Finished)),
            &crash,
            &policy,
            monitor,
            0
        ),
        RecoveryDecision::None
    );
}

#[test]
fn replacement_is_manual_unless_a_timed_monitor_is_configured() {
    let policy = BackoffPolicy::default();
    let mut crash = CrashRecord::default();
    crash.observe(TaskState::Lost, false, 1_000, &policy);
    let lost = record(Some(TaskState::Lost));
    assert!(matches!(
        decide(&lost, &crash, &policy, FailureMonitor::Never, 10_000_000),
        RecoveryDecision::Transient { .. }
    ));
    let timed = FailureMonitor::Timed {
        permanent_failure_timeout_ms: 1_200_000,
    };
    assert!(matches!(
        decide(&lost, &crash, &policy, timed, 1_000 + 1_199_999),
        RecoveryDecision::Transient { .. }
    ));
    assert_eq!(
        decide(&lost, &crash, &policy, timed, 1_000 + 1_200_000),
        RecoveryDecision::Permanent
    );
    let mut replaced = record(Some(TaskState::Running));
    replaced.info.permanently_failed = true;
    assert_eq!(
        decide(&replaced, &crash, &policy, FailureMonitor::Never, 0),
        RecoveryDecision::Permanent
    );
    let mut unreachable = CrashRecord::default();
    unreachable.observe(TaskState::Unreachable, false, 0, &policy);
    assert_eq!(
        decide(
            &record(Some(TaskState::Unreachable)),
            &unreachable,
            &policy,
            FailureMonitor::Never,
            50
        ),
        RecoveryDecision::None
    );
}
