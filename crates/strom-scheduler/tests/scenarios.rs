//! Deterministic scenarios in the spirit of dcos-commons' helloworld specs: the shipped Kafka
//! spec driven through plans, offers, operations and task statuses on a fake cluster with a
//! fake clock and an in-memory state store.

mod common;

use common::*;
use strom_scheduler::plan::Status::*;
use strom_scheduler::scheduler::{Effect, EndpointNaming, Input};
use strom_scheduler::store::MemPersister;
use strom_scheduler::task::TaskState;

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
    let metrics = s.metrics_json();
    assert_eq!(metrics["gauges"]["is_suppressed"]["value"], true);
    assert_eq!(metrics["counters"]["operation.launch_group"]["count"], 3);
    assert_eq!(
        metrics["counters"]["task_status.running"]["count"], 4,
        "kafka-0 running then ready, one each for the others"
    );
    assert_eq!(metrics["timers"], serde_json::json!({}));
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

#[test]
fn a_crashed_broker_restarts_in_place_with_back_off() {
    let (mut s, mut cluster) = deployed("", 3);
    let before = cluster.live("kafka-1-broker").unwrap().info.clone();
    let volume = volume_id(&cluster, "kafka-1-broker");
    let failed = cluster.status(&before.task_id, TaskState::Failed, false);
    let effects = drive(&mut s, &mut cluster, Input::Status(failed), 100_000);
    assert!(effects.contains(&Effect::Revive));
    assert_eq!(
        steps(&s, "recovery"),
        [("kafka-1:[broker]".to_string(), Prepared)]
    );
    assert_eq!(
        statuses(&s, "deploy"),
        [Complete; 3],
        "deploy is not disturbed"
    );

    let effects = offer_round(&mut s, &mut cluster, 100_001);
    assert_eq!(
        accepted_operations(&effects),
        [["launch_group"]],
        "same reservations, no new ones"
    );
    let after = cluster.live("kafka-1-broker").unwrap().info.clone();
    assert_eq!(after.agent_id, before.agent_id);
    assert_eq!(
        volume_id(&cluster, "kafka-1-broker"),
        volume,
        "the data volume is kept"
    );
    assert_eq!(after.ports, before.ports);
    assert_ne!(after.task_id, before.task_id);
    assert_eq!(statuses(&s, "recovery"), [Complete]);

    // It crashes again at once: the next restart waits for the back-off (10 s).
    let failed = cluster.status(&after.task_id, TaskState::Failed, false);
    drive(&mut s, &mut cluster, Input::Status(failed), 100_002);
    assert_eq!(statuses(&s, "recovery"), [Delayed]);
    let effects = offer_round(&mut s, &mut cluster, 105_000);
    assert!(
        accepted_operations(&effects).is_empty(),
        "still backing off"
    );
    drive(&mut s, &mut cluster, Input::Tick, 110_002);
    assert_eq!(statuses(&s, "recovery"), [Prepared]);
    let effects = offer_round(&mut s, &mut cluster, 110_003);
    assert_eq!(accepted_operations(&effects), [["launch_group"]]);
    assert_eq!(s.counters()["task_status.failed"], 2);
}

#[test]
fn an_update_rolls_only_changed_brokers_one_at_a_time_behind_the_health_gate() {
    let (mut s, mut cluster) = deployed("", 3);
    let old_target = s.target_id();
    let outcome = s
        .update(&kafka(r#"{"kafka":{"num_partitions":6}}"#))
        .unwrap();
    assert!(outcome.changed && outcome.errors.is_empty());
    assert_ne!(s.target_id(), old_target);
    assert_eq!(statuses(&s, "deploy"), [Pending; 3]);

    // No health report yet: nothing is stopped.
    let effects = drive(&mut s, &mut cluster, Input::Tick, 200_000);
    assert!(kills(&effects).is_empty());
    let message = &s.plan("deploy").unwrap().phases[0].steps[0].message;
    assert_eq!(message, "waiting for a cluster health report");

    let effects = drive(&mut s, &mut cluster, health(0, 200_000), 200_000);
    assert_eq!(kills(&effects), ["kafka-0-broker"], "one broker at a time");
    assert_eq!(statuses(&s, "deploy"), [Prepared, Pending, Pending]);
    let effects = offer_round(&mut s, &mut cluster, 200_001);
    assert_eq!(
        accepted_operations(&effects),
        [["launch_group"]],
        "in place"
    );
    assert_eq!(statuses(&s, "deploy"), [Complete, Pending, Pending]);
    let properties =
        &cluster.live("kafka-0-broker").unwrap().info.files["kafka-config/server.properties"];
    assert!(properties.contains("num.partitions=6\n"));

    // The report from before kafka-0 came back is too old; then replicas are catching up.
    let effects = drive(&mut s, &mut cluster, Input::Tick, 200_002);
    assert!(kills(&effects).is_empty());
    let effects = drive(&mut s, &mut cluster, health(4, 200_010), 200_010);
    assert!(kills(&effects).is_empty());
    let message = &s.plan("deploy").unwrap().phases[0].steps[1].message;
    assert_eq!(
        message,
        "waiting for 4 under-replicated partition(s) to catch up before stopping the next broker"
    );
    let effects = drive(&mut s, &mut cluster, health(0, 200_020), 200_020);
    assert_eq!(kills(&effects), ["kafka-1-broker"]);
    offer_round(&mut s, &mut cluster, 200_021);
    drive(&mut s, &mut cluster, health(0, 200_030), 200_030);
    offer_round(&mut s, &mut cluster, 200_031);
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
    assert_eq!(cluster.launches.len(), 6);
    assert!(cluster
        .operations
        .iter()
        .all(|o| o.type_name() != "unreserve"));
}

#[test]
fn scaling_up_launches_only_the_new_broker() {
    let (mut s, mut cluster) = deployed("", 4);
    let outcome = s.update(&kafka(r#"{"brokers":{"count":4}}"#)).unwrap();
    assert_eq!(
        outcome.equivalent_pods.len(),
        1,
        "the broker spec itself is unchanged"
    );
    assert_eq!(
        statuses(&s, "deploy"),
        [Complete, Complete, Complete, Pending]
    );
    let effects = offer_round(&mut s, &mut cluster, 300_000);
    assert_eq!(
        accepted_operations(&effects),
        [["reserve", "create", "launch_group"]]
    );
    assert!(kills(&effects).is_empty());
    assert_eq!(statuses(&s, "deploy"), [Complete; 4]);
    assert_eq!(cluster.launches.last().unwrap().name, "kafka-3-broker");
}

#[test]
fn a_refused_update_keeps_the_old_target_and_shows_the_errors() {
    let (mut s, mut cluster) = deployed("", 3);
    let target = s.target_id();
    let outcome = s
        .update(&kafka(r#"{"brokers":{"count":2,"disk":9000}}"#))
        .unwrap();
    assert_eq!(outcome.errors.len(), 2);
    assert_eq!(s.target_id(), target);
    let plan = s.plan("deploy").unwrap();
    assert_eq!(plan.status(), Error);
    assert_eq!(plan.http_status(), 417);
    let json = plan.to_json();
    assert_eq!(
        json["errors"][0],
        "Field: 'pods.kafka.count'; Value: '2'; Message: 'Pod count may not shrink from 3 to 2 unless allow-decommission is true'"
    );
    let effects = offer_round(&mut s, &mut cluster, 400_000);
    assert!(accepted_operations(&effects).is_empty() && kills(&effects).is_empty());
    // Recovery still works while the plan shows the refusal.
    let task_id = live_task_id(&cluster, "kafka-2-broker");
    let failed = cluster.status(&task_id, TaskState::Failed, false);
    drive(&mut s, &mut cluster, Input::Status(failed), 400_001);
    offer_round(&mut s, &mut cluster, 400_002);
    assert!(cluster.live("kafka-2-broker").is_some());
    // A scheduler restarted with the refused options still runs the old target.
    let store = s.into_persister();
    let (s, outcome) = strom_scheduler::scheduler::Scheduler::new(
        store,
        &kafka(r#"{"brokers":{"count":2}}"#),
        strom_scheduler::scheduler::SchedulerConfig::for_service("kafka"),
        ids(9),
    )
    .unwrap();
    assert_eq!(outcome.errors.len(), 1);
    assert_eq!(s.target_id(), target);
    assert_eq!(s.plan("deploy").unwrap().http_status(), 417);
}

#[test]
fn status_updates_for_unknown_tasks_kill_them() {
    let (mut s, _cluster) = deployed("", 3);
    let effects = s
        .handle(
            Input::Status(strom_scheduler::task::TaskStatus {
                task_id: "kafka-7-broker__stale".into(),
                agent_id: "agent-0".into(),
                state: TaskState::Running,
                message: String::new(),
                ready: true,
                uuid: Some("u1".into()),
            }),
            800_000,
        )
        .unwrap();
    assert!(effects.contains(&Effect::Kill {
        task_id: "kafka-7-broker__stale".into(),
        agent_id: "agent-0".into()
    }));
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Acknowledge { uuid, .. } if uuid == "u1")));
}

#[test]
fn a_restarted_scheduler_waits_for_reconciliation_before_launching() {
    let spec = kafka("");
    let (s, mut cluster) = deployed("", 3);
    // kafka-1 dies while the scheduler is down.
    let task_id = live_task_id(&cluster, "kafka-1-broker");
    cluster.status(&task_id, TaskState::Failed, false);
    let mut s = scheduler(&spec, s.into_persister(), 21);
    let effects = s.subscribed(2_000_000);
    let Effect::Reconcile { tasks } = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(tasks.len(), 3, "every task the store believes live");
    assert!(s.is_reconciling());
    // Offers before the answers are declined short; nothing launches on a stale picture.
    let offers = cluster.offers();
    let effects = s.handle(Input::Offers(offers), 2_000_001).unwrap();
    assert!(
        effects.iter().all(|e| matches!(
            e,
            Effect::Decline {
                refuse_seconds: 5,
                ..
            }
        )),
        "{effects:?}"
    );
    // Unanswered tasks are asked again after 30 s.
    let effects = s.handle(Input::Tick, 2_000_000 + 30_000).unwrap();
    assert!(matches!(&effects[..], [Effect::Reconcile { tasks }] if tasks.len() == 3));
    for status in cluster.apply(&effects) {
        drive(&mut s, &mut cluster, Input::Status(status), 2_030_001);
    }
    assert!(!s.is_reconciling());
    offer_round(&mut s, &mut cluster, 2_030_002);
    assert!(
        cluster.live("kafka-1-broker").is_some(),
        "kafka-1 recovered after reconciliation"
    );
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
    // With nothing live there is nothing to wait for.
    let mut fresh = scheduler(&spec, MemPersister::new(), 22);
    assert!(fresh.subscribed(0).is_empty() && !fresh.is_reconciling());
    let _ = restart;
}

#[test]
fn endpoints_and_debug_offers_have_their_shapes() {
    let (s, _cluster) = deployed("", 3);
    assert_eq!(s.endpoint_names(), ["broker"]);
    let plain = s.endpoint("broker", &EndpointNaming::default()).unwrap();
    let addresses: Vec<&str> = plain["address"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(addresses.len(), 3);
    assert!(
        addresses.iter().all(|a| a.starts_with("127.0.0.1:310")),
        "{addresses:?}"
    );
    assert_eq!(plain["bootstrap_servers"], addresses.join(","));
    assert_eq!(plain["dns"], serde_json::json!([]));
    assert!(plain.get("vip").is_none());
    let naming = EndpointNaming {
        task_domain: Some("autoip.dcos.thisdcos.directory".into()),
        vip_domain: Some("l4lb.thisdcos.directory".into()),
    };
    let dcos = s.endpoint("broker", &naming).unwrap();
    assert_eq!(dcos["vip"], "broker.kafka.l4lb.thisdcos.directory:9092");
    assert!(dcos["dns"][0]
        .as_str()
        .unwrap()
        .starts_with("kafka-0-broker.kafka.autoip.dcos.thisdcos.directory:310"));
    assert!(s.endpoint("zookeeper", &naming).is_none());

    let mut s = scheduler(&kafka(""), MemPersister::new(), 1);
    let mut cluster = Cluster::new(2);
    for round in 0..4 {
        offer_round(&mut s, &mut cluster, round);
    }
    let debug = s.debug_offers_json();
    let step = &debug["steps"][0];
    assert_eq!(step["step"], "kafka-2:[broker]");
    assert_eq!(step["status"], "PREPARED");
    let offer = &step["offers"][0];
    assert_eq!(offer["passed"], false);
    let stages = offer["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 7);
    assert_eq!(stages[1]["stage"], "placement");
    assert_eq!(stages[1]["passed"], false);
    assert!(stages[1]["reason"].as_str().unwrap().contains("MAX_PER 1"));
}

fn kafka_with_update_plan(options: &str) -> strom_scheduler::spec::ServiceSpec {
    use strom_scheduler::spec::kafka::{
        render_service, template_source, SERVER_PROPERTIES, SVC_YML,
    };
    let template = format!(
        "{SVC_YML}  update:\n    strategy: serial\n    phases:\n      broker:\n        strategy: parallel\n        pod: kafka\n"
    );
    let base: std::collections::BTreeMap<String, String> =
        [("STROM_BIN", "strom"), ("KAFKA_ZOOKEEPER_URI", "zk")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let env =
        strom_scheduler::spec::options::scheduler_env(options, &base, SERVER_PROPERTIES).unwrap();
    render_service(&template, &env, &template_source).unwrap()
}

#[test]
fn a_defined_update_plan_rolls_changes_but_still_one_broker_at_a_time() {
    let spec = kafka_with_update_plan("");
    let mut s = scheduler(&spec, MemPersister::new(), 1);
    let mut cluster = Cluster::new(3);
    for round in 0..4 {
        offer_round(&mut s, &mut cluster, round);
    }
    assert_eq!(
        s.plan_names()[0],
        "deploy",
        "the first deployment uses deploy"
    );
    assert_eq!(s.plan("deploy").unwrap().status(), Complete);
    s.update(&kafka_with_update_plan(r#"{"kafka":{"num_partitions":4}}"#))
        .unwrap();
    assert_eq!(s.plan_names()[0], "update");
    let plan = s.plan("update").unwrap();
    assert_eq!(plan.phases[0].strategy.name(), "parallel");
    let effects = drive(&mut s, &mut cluster, health(0, 10_000), 10_000);
    assert_eq!(
        kills(&effects).len(),
        1,
        "parallel, yet one broker down at a time"
    );
    let waiting: Vec<String> = s.plan("update").unwrap().phases[0]
        .steps
        .iter()
        .map(|st| st.message.clone())
        .collect();
    assert!(
        waiting.iter().any(|m| m.starts_with("waiting for kafka-")
            && m.ends_with("to be back before stopping the next broker")),
        "{waiting:?}"
    );
    for round in 0..6 {
        offer_round(&mut s, &mut cluster, 10_001 + round * 10);
        drive(
            &mut s,
            &mut cluster,
            health(0, 10_005 + round * 10),
            10_005 + round * 10,
        );
    }
    assert_eq!(statuses(&s, "update"), [Complete; 3]);
    assert_eq!(cluster.launches.len(), 6);
    // A restarted scheduler still knows the first deployment is done.
    let s = scheduler(
        &kafka_with_update_plan(r#"{"kafka":{"num_partitions":4}}"#),
        s.into_persister(),
        3,
    );
    assert_eq!(s.plan_names()[0], "update");
}

#[test]
fn a_broker_stopped_by_a_roll_comes_back_when_a_new_update_reorders_the_plan() {
    let (mut s, mut cluster) = deployed("", 3);
    s.update(&kafka(r#"{"kafka":{"num_partitions":2}}"#))
        .unwrap();
    drive(&mut s, &mut cluster, health(0, 10_000), 10_000);
    offer_round(&mut s, &mut cluster, 10_001);
    assert_eq!(statuses(&s, "deploy"), [Complete, Pending, Pending]);
    let effects = drive(&mut s, &mut cluster, health(0, 10_002), 10_002);
    assert_eq!(kills(&effects), ["kafka-1-broker"]);
    assert!(cluster.live("kafka-1-broker").is_none());
    // A second update before kafka-1 is back: kafka-0 heads the new serial plan again.
    s.update(&kafka(r#"{"kafka":{"num_partitions":3}}"#))
        .unwrap();
    let effects = drive(&mut s, &mut cluster, health(0, 10_003), 10_003);
    assert!(
        kills(&effects).is_empty(),
        "kafka-0 waits while kafka-1 is down"
    );
    assert_eq!(
        steps(&s, "recovery").last().unwrap(),
        &("kafka-1:[broker]".to_string(), Prepared)
    );
    offer_round(&mut s, &mut cluster, 10_004);
    assert!(
        cluster.live("kafka-1-broker").unwrap().info.files["kafka-config/server.properties"]
            .contains("num.partitions=3\n")
    );
    for round in 0..6 {
        drive(
            &mut s,
            &mut cluster,
            health(0, 10_010 + round * 10),
            10_010 + round * 10,
        );
        offer_round(&mut s, &mut cluster, 10_011 + round * 10);
    }
    assert_eq!(statuses(&s, "deploy"), [Complete; 3]);
}
