//! Operator commands on the fake cluster: plan interrupt/continue, start/stop, canary, restart
//! and forceComplete; pod restart, replace (also across a restart and while starting), pause and
//! resume.

mod common;

use common::*;
use strom_scheduler::plan::Status::*;
use strom_scheduler::scheduler::{Input, PlanCommand};
use strom_scheduler::store::MemPersister;
use strom_scheduler::task::TaskState;

#[test]
fn pod_replace_moves_the_broker_to_fresh_resources_and_releases_the_old_ones() {
    let (mut s, mut cluster) = deployed("", 4);
    let old = cluster.live("kafka-1-broker").unwrap().info.clone();
    let old_volume = volume_id(&cluster, "kafka-1-broker");
    let (tasks, effects) = s.replace_pod("kafka-1", 500_000).unwrap();
    assert_eq!(tasks, ["kafka-1-broker"]);
    assert_eq!(kills(&effects), ["kafka-1-broker"]);
    let statuses_after_kill = cluster.apply(&effects);
    for status in statuses_after_kill {
        drive(&mut s, &mut cluster, Input::Status(status), 500_001);
    }
    assert_eq!(
        steps(&s, "recovery"),
        [("kafka-1:[broker]".to_string(), Prepared)]
    );
    let effects = offer_round(&mut s, &mut cluster, 500_002);
    // The old agent is free for it again (MAX_PER 1 no longer counts the replaced instance),
    // so one ACCEPT releases the old reservations and makes new ones.
    assert_eq!(
        accepted_operations(&effects),
        [["destroy", "unreserve", "reserve", "create", "launch_group"]],
        "old volume released, fresh one made"
    );
    let new = cluster.live("kafka-1-broker").unwrap().info.clone();
    assert_ne!(
        volume_id(&cluster, "kafka-1-broker"),
        old_volume,
        "a fresh, empty volume"
    );
    assert_eq!(new.env["POD_INSTANCE_INDEX"], "1", "same broker id");
    assert_eq!(statuses(&s, "recovery"), [Complete]);
    // Every reservation left on the agents belongs to a live task.
    let owned: Vec<_> = s
        .tasks()
        .values()
        .flat_map(|r| r.info.resources.iter().filter_map(|x| x.resource_id()))
        .collect();
    for id in cluster.reserved_ids() {
        assert!(
            owned.contains(&id),
            "reservation {id} leaked (old agent {})",
            old.agent_id
        );
    }
}

#[test]
fn pod_restart_relaunches_in_place() {
    let (mut s, mut cluster) = deployed("", 3);
    let old = cluster.live("kafka-0-broker").unwrap().info.clone();
    let (_, effects) = s.restart_pod("kafka-0", 600_000).unwrap();
    for status in cluster.apply(&effects) {
        drive(&mut s, &mut cluster, Input::Status(status), 600_001);
    }
    let effects = offer_round(&mut s, &mut cluster, 600_002);
    assert_eq!(accepted_operations(&effects), [["launch_group"]]);
    assert_eq!(
        cluster.live("kafka-0-broker").unwrap().info.agent_id,
        old.agent_id
    );
    assert_eq!(
        s.counters().get("task_status.failed"),
        None,
        "an operator's kill is no failure"
    );
    assert!(s.restart_pod("kafka-9", 600_003).is_err());
}

#[test]
fn interrupt_and_continue_pause_a_deploy() {
    let mut s = scheduler(&kafka(""), MemPersister::new(), 1);
    let mut cluster = Cluster::new(3);
    offer_round(&mut s, &mut cluster, 0);
    s.plan_command("deploy", PlanCommand::Interrupt { phase: None })
        .unwrap();
    offer_round(&mut s, &mut cluster, 10);
    offer_round(&mut s, &mut cluster, 20);
    // kafka-1 was already waiting for an offer; it gets none while the plan is interrupted.
    assert_eq!(statuses(&s, "deploy"), [Complete, Prepared, Pending]);
    assert_eq!(cluster.launches.len(), 1);
    assert_eq!(s.plan("deploy").unwrap().status(), Waiting);
    s.plan_command("deploy", PlanCommand::Continue { phase: None })
        .unwrap();
    offer_round(&mut s, &mut cluster, 30);
    offer_round(&mut s, &mut cluster, 40);
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
    let error = s
        .plan_command(
            "deploy",
            PlanCommand::ForceComplete {
                phase: "nope".into(),
                step: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "phase \"nope\" of plan \"deploy\" not found"
    );
    assert!(s
        .plan_command("update", PlanCommand::Interrupt { phase: None })
        .is_err());
}

#[test]
fn stop_resets_and_holds_a_plan_and_start_runs_it_again() {
    let mut s = scheduler(&kafka(""), MemPersister::new(), 1);
    let mut cluster = Cluster::new(3);
    offer_round(&mut s, &mut cluster, 0);
    offer_round(&mut s, &mut cluster, 10);
    assert_eq!(statuses(&s, "deploy"), [Complete, Complete, Prepared]);
    s.plan_command("deploy", PlanCommand::Stop).unwrap();
    assert_eq!(s.plan("deploy").unwrap().status(), Waiting);
    let effects = offer_round(&mut s, &mut cluster, 20);
    assert!(
        accepted_operations(&effects).is_empty(),
        "a stopped plan launches nothing"
    );
    assert!(kills(&effects).is_empty());
    assert_eq!(statuses(&s, "deploy"), [Pending; 3]);

    // start: a stopped plan proceeds from the beginning; the brokers it had relaunch.
    s.plan_command("deploy", PlanCommand::Start).unwrap();
    for round in 0..6 {
        drive(
            &mut s,
            &mut cluster,
            health(0, 30_000 + round * 1_000),
            30_000 + round * 1_000,
        );
        offer_round(&mut s, &mut cluster, 30_000 + round * 1_000);
    }
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
    assert_eq!(
        cluster.launches.len(),
        5,
        "kafka-0 and kafka-1 again, kafka-2 once"
    );

    // start on a complete plan starts it over; on a running plan it resets nothing.
    s.plan_command("deploy", PlanCommand::Start).unwrap();
    assert_eq!(statuses(&s, "deploy"), [Pending; 3]);
    drive(&mut s, &mut cluster, health(0, 60_000), 60_000);
    assert_eq!(s.plan("deploy").unwrap().status(), InProgress);
    let before = statuses(&s, "deploy");
    s.plan_command("deploy", PlanCommand::Start).unwrap();
    assert_eq!(statuses(&s, "deploy"), before);
    assert!(s.plan_command("nope", PlanCommand::Stop).is_err());
}

#[test]
fn a_parallel_canary_deploys_one_broker_then_the_rest_together() {
    let mut s = scheduler(
        &kafka(r#"{"service":{"deploy_strategy":"parallel-canary"}}"#),
        MemPersister::new(),
        1,
    );
    let mut cluster = Cluster::new(3);
    let effects = offer_round(&mut s, &mut cluster, 0);
    assert!(accepted_operations(&effects).is_empty());
    assert_eq!(s.plan("deploy").unwrap().status(), Waiting);
    s.plan_command("deploy", PlanCommand::Continue { phase: None })
        .unwrap();
    offer_round(&mut s, &mut cluster, 10);
    offer_round(&mut s, &mut cluster, 20);
    assert_eq!(statuses(&s, "deploy"), [Complete, Pending, Pending]);
    s.plan_command(
        "deploy",
        PlanCommand::Continue {
            phase: Some("broker".into()),
        },
    )
    .unwrap();
    let effects = offer_round(&mut s, &mut cluster, 30);
    assert_eq!(
        accepted_operations(&effects).len(),
        2,
        "the rest launch together"
    );
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
}

#[test]
fn a_plan_restart_relaunches_a_complete_step_behind_the_gate() {
    let (mut s, mut cluster) = deployed("", 3);
    s.plan_command(
        "deploy",
        PlanCommand::Restart {
            phase: Some("broker".into()),
            step: Some("kafka-2:[broker]".into()),
        },
    )
    .unwrap();
    let effects = drive(&mut s, &mut cluster, health(0, 700_000), 700_000);
    assert_eq!(kills(&effects), ["kafka-2-broker"]);
    offer_round(&mut s, &mut cluster, 700_001);
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
    assert_eq!(cluster.launches.len(), 4);
}

#[test]
fn a_force_completed_step_is_skipped() {
    let mut s = scheduler(&kafka(""), MemPersister::new(), 1);
    let mut cluster = Cluster::new(3);
    s.plan_command(
        "deploy",
        PlanCommand::ForceComplete {
            phase: "broker".into(),
            step: Some("kafka-0:[broker]".into()),
        },
    )
    .unwrap();
    offer_round(&mut s, &mut cluster, 0);
    assert_eq!(statuses(&s, "deploy"), [Complete, Complete, Prepared]);
    assert_eq!(cluster.launches.len(), 1);
    assert_eq!(cluster.launches[0].name, "kafka-1-broker");
}

#[test]
fn a_pod_replace_survives_a_scheduler_restart() {
    let (mut s, mut cluster) = deployed("", 4);
    let old_volume = volume_id(&cluster, "kafka-2-broker");
    let (_, effects) = s.replace_pod("kafka-2", 900_000).unwrap();
    // The scheduler dies before the kill's status arrives.
    let killed = cluster.apply(&effects);
    let store = s.into_persister();
    let mut s = scheduler(&kafka(""), store, 5);
    assert_eq!(
        steps(&s, "recovery"),
        [("kafka-2:[broker]".to_string(), Pending)]
    );
    for status in killed {
        drive(&mut s, &mut cluster, Input::Status(status), 900_001);
    }
    offer_round(&mut s, &mut cluster, 900_002);
    assert_ne!(volume_id(&cluster, "kafka-2-broker"), old_volume);
    assert_eq!(statuses(&s, "recovery"), [Complete]);
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
}

#[test]
fn a_replace_while_the_broker_is_starting_does_not_hang_the_deploy() {
    let mut s = scheduler(&kafka(""), MemPersister::new(), 1);
    let mut cluster = Cluster::new(4);
    cluster.auto_run = false;
    offer_round(&mut s, &mut cluster, 0);
    let task_id = cluster.launches[0].task_id.clone();
    let running = cluster.status(&task_id, TaskState::Running, false);
    drive(&mut s, &mut cluster, Input::Status(running), 1);
    assert_eq!(statuses(&s, "deploy"), [Started, Pending, Pending]);
    let (_, effects) = s.replace_pod("kafka-0", 2).unwrap();
    assert_eq!(
        kills(&effects),
        ["kafka-0-broker"],
        "no health gate for a replace"
    );
    for status in cluster.apply(&effects) {
        drive(&mut s, &mut cluster, Input::Status(status), 3);
    }
    cluster.auto_run = true;
    for round in 0..4 {
        offer_round(&mut s, &mut cluster, 10 + round);
    }
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
    assert_eq!(statuses(&s, "recovery"), [Complete]);
}

#[test]
fn pause_and_resume_relaunch_in_place_with_a_sleep_then_the_real_command() {
    let (mut s, mut cluster) = deployed("", 3);
    let volume = volume_id(&cluster, "kafka-1-broker");
    let (tasks, effects) = s.pause_pod("kafka-1", 1_200_000).unwrap();
    assert_eq!(tasks, ["kafka-1-broker"]);
    for status in cluster.apply(&effects) {
        drive(&mut s, &mut cluster, Input::Status(status), 1_200_001);
    }
    cluster.auto_run = false;
    offer_round(&mut s, &mut cluster, 1_200_002);
    let paused = cluster.launches.last().unwrap().clone();
    assert_eq!(paused.cmd, strom_scheduler::offer::PAUSE_CMD);
    assert!(paused.paused);
    assert_eq!(
        volume_id(&cluster, "kafka-1-broker"),
        volume,
        "same volume, kept for inspection"
    );
    // A paused task is at its goal once it runs; it never passes the broker's readiness check.
    let running = cluster.status(&paused.task_id, TaskState::Running, false);
    drive(&mut s, &mut cluster, Input::Status(running), 1_200_003);
    assert_eq!(statuses(&s, "recovery").last(), Some(&Complete));
    assert_eq!(s.plan("deploy").unwrap().status(), Complete);
    // It stays paused across a restart, then resumes.
    let mut s = scheduler(&kafka(""), s.into_persister(), 31);
    assert!(s.is_paused(&strom_scheduler::task::PodInstance::new("kafka", 1)));
    cluster.auto_run = true;
    let (_, effects) = s.resume_pod("kafka-1", 1_200_004).unwrap();
    for status in cluster.apply(&effects) {
        drive(&mut s, &mut cluster, Input::Status(status), 1_200_005);
    }
    offer_round(&mut s, &mut cluster, 1_200_006);
    let resumed = cluster.live("kafka-1-broker").unwrap().info.clone();
    assert!(!resumed.paused);
    assert!(resumed.cmd.contains("broker --config"), "{}", resumed.cmd);
    assert!(!s.is_paused(&resumed.instance));
}
