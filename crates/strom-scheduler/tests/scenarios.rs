//! Deterministic scenarios in the spirit of dcos-commons' helloworld specs: the shipped Kafka
//! spec driven through plans, offers, operations and task statuses on a fake cluster with a
//! fake clock and an in-memory state store.

mod common;

use common::*;
use strom_scheduler::plan::roll::ClusterHealth;
use strom_scheduler::plan::Status::*;
use strom_scheduler::scheduler::{Effect, Input};
use strom_scheduler::store::MemPersister;
use strom_scheduler::task::TaskState;

#[allow(dead_code)]
fn deployed(
    options: &str,
    agents: usize,
) -> (strom_scheduler::scheduler::Scheduler<MemPersister>, Cluster) {
    let mut s = scheduler(&kafka(options), MemPersister::new(), 1);
    let mut cluster = Cluster::new(agents);
    for round in 0..10 {
        offer_round(&mut s, &mut cluster, 1_000 * round);
    }
    assert_eq!(
        s.plan("deploy").unwrap().status(),
        Complete,
        "{:?}",
        steps(&s, "deploy")
    );
    (s, cluster)
}

#[allow(dead_code)]
fn health(under_replicated_partitions: u32, observed_at_ms: u64) -> Input {
    Input::Health(ClusterHealth {
        under_replicated_partitions,
        observed_at_ms,
    })
}

#[test]
fn deploy_launches_brokers_one_at_a_time_readiness_gated() {
    let mut s = scheduler(&kafka(""), MemPersister::new(), 1);
    let mut cluster = Cluster::new(3);
    cluster.auto_run = false;
    let effects = drive(&mut s, &mut cluster, Input::Tick, 0);
    assert_eq!(effects, [Effect::Revive], "work to do: ask for offers");
    assert_eq!(statuses(&s, "deploy"), [Prepared, Pending, Pending]);

    let effects = offer_round(&mut s, &mut cluster, 10);
    assert_eq!(
        accepted_operations(&effects),
        [["reserve", "create", "launch_group"]]
    );
    let declines: Vec<u64> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Decline { refuse_seconds, .. } => Some(*refuse_seconds),
            _ => None,
        })
        .collect();
    assert_eq!(
        declines,
        [3600, 3600],
        "nothing else may launch until kafka-0 is ready"
    );
    assert_eq!(statuses(&s, "deploy"), [Starting, Pending, Pending]);
    assert_eq!(s.plan("deploy").unwrap().http_status(), 202);

    let task_id = cluster.launches[0].task_id.clone();
    let running = cluster.status(&task_id, TaskState::Running, false);
    drive(&mut s, &mut cluster, Input::Status(running), 20);
    assert_eq!(
        statuses(&s, "deploy"),
        [Started, Pending, Pending],
        "running is not ready"
    );
    let ready = cluster.status(&task_id, TaskState::Running, true);
    let effects = drive(&mut s, &mut cluster, Input::Status(ready), 30);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Acknowledge { .. })));
    assert_eq!(statuses(&s, "deploy"), [Complete, Prepared, Pending]);

    cluster.auto_run = true;
    offer_round(&mut s, &mut cluster, 40);
    assert_eq!(statuses(&s, "deploy"), [Complete, Complete, Prepared]);
    let effects = offer_round(&mut s, &mut cluster, 50);
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
    assert_eq!(s.plan("deploy").unwrap().http_status(), 200);
    assert!(effects.contains(&Effect::Suppress), "idle: suppress offers");

    let hosts: Vec<&str> = cluster
        .launches
        .iter()
        .map(|t| t.hostname.as_str())
        .collect();
    assert_eq!(hosts.len(), 3);
    assert!(
        hosts[0] != hosts[1] && hosts[1] != hosts[2] && hosts[0] != hosts[2],
        "MAX_PER 1: {hosts:?}"
    );
    let counters = s.counters();
    assert_eq!(counters["operation.launch_group"], 3);
    assert_eq!(counters["operation.reserve"], 3);
    assert!(counters["offers.received"] >= 9);
}

#[test]
fn a_stuck_step_says_which_stage_failed_for_each_offer() {
    let mut s = scheduler(&kafka(""), MemPersister::new(), 1);
    let mut cluster = Cluster::new(2);
    for round in 0..4 {
        offer_round(&mut s, &mut cluster, round * 1_000);
    }
    assert_eq!(statuses(&s, "deploy"), [Complete, Complete, Prepared]);
    let effects = offer_round(&mut s, &mut cluster, 9_000);
    assert!(effects.iter().all(|e| !matches!(e, Effect::Accept { .. })));
    assert!(effects.contains(&Effect::Decline {
        offer_id: "offer-9".into(),
        refuse_seconds: 5
    }));
    let recent: Vec<String> = s
        .offer_outcomes()
        .filter(|o| o.pod_instance == "kafka-2")
        .map(|o| o.to_string())
        .collect();
    let last = recent.last().unwrap();
    assert!(
        last.contains("failed 2 of 7 evaluation stages for kafka-2: placement: hostname \"host-1\" already has 1 instance(s) of kafka (MAX_PER 1)"),
        "{last}"
    );
    let step = &s.plan("deploy").unwrap().phases[0].steps[2];
    assert!(
        step.message.contains("MAX_PER 1"),
        "the step says why: {}",
        step.message
    );
}

#[test]
fn a_restarted_scheduler_resumes_without_relaunching() {
    let spec = kafka("");
    let mut s = scheduler(&spec, MemPersister::new(), 1);
    let mut cluster = Cluster::new(3);
    cluster.auto_run = false;
    offer_round(&mut s, &mut cluster, 0);
    assert_eq!(statuses(&s, "deploy"), [Starting, Pending, Pending]);
    // kill -9: the scheduler is gone, the store survives.
    let store = s.into_persister();
    let mut s = scheduler(&spec, store, 2);
    assert_eq!(
        statuses(&s, "deploy"),
        [Starting, Pending, Pending],
        "launched before the crash"
    );
    let effects = offer_round(&mut s, &mut cluster, 10);
    assert!(
        accepted_operations(&effects).is_empty(),
        "kafka-0 is not launched twice"
    );
    assert_eq!(cluster.launches.len(), 1);
    let task_id = cluster.launches[0].task_id.clone();
    let ready = cluster.status(&task_id, TaskState::Running, true);
    drive(&mut s, &mut cluster, Input::Status(ready), 20);
    assert_eq!(statuses(&s, "deploy"), [Complete, Prepared, Pending]);

    // Restart again with everything deployed: nothing to do.
    cluster.auto_run = true;
    offer_round(&mut s, &mut cluster, 30);
    offer_round(&mut s, &mut cluster, 40);
    let store = s.into_persister();
    let mut s = scheduler(&spec, store, 3);
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
    let effects = offer_round(&mut s, &mut cluster, 50);
    assert!(accepted_operations(&effects).is_empty());
    assert!(effects.contains(&Effect::Suppress));
}
