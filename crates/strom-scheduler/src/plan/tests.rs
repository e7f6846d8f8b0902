use std::collections::BTreeMap;

use uuid::Uuid;

use super::generate::deploy_plan;
use super::*;
use crate::resources::Resource;
use crate::spec::kafka::render_kafka_service;
use crate::spec::{Goal, ServiceSpec};
use crate::task::{TaskInfo, TaskRecord, TaskState, TaskStatus};

fn spec(options: &str) -> ServiceSpec {
    let env: BTreeMap<String, String> = [("STROM_BIN", "strom"), ("KAFKA_ZOOKEEPER_URI", "zk")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    render_kafka_service(options, &env).unwrap().spec
}

fn record(index: u32, config: Uuid, state: TaskState, ready: bool) -> (String, TaskRecord) {
    let instance = PodInstance::new("kafka", index);
    let name = instance.task_name("broker");
    let info = TaskInfo {
        name: name.clone(),
        task_id: format!("{name}__1"),
        instance,
        task: "broker".into(),
        goal: Goal::Running,
        config_id: config,
        agent_id: "agent-1".into(),
        hostname: "host-1".into(),
        zone: None,
        resources: vec![Resource::scalar("cpus", 1.0)],
        ports: BTreeMap::new(),
        env: BTreeMap::new(),
        cmd: String::new(),
        files: BTreeMap::new(),
        secrets: Vec::new(),
        permanently_failed: false,
        paused: false,
    };
    let status = TaskStatus {
        task_id: info.task_id.clone(),
        agent_id: "agent-1".into(),
        state,
        message: String::new(),
        ready,
        uuid: None,
    };
    (
        name,
        TaskRecord {
            info,
            status: Some(status),
        },
    )
}

const TARGET: Uuid = Uuid::from_u128(2);
const OLD: Uuid = Uuid::from_u128(1);

fn statuses(plan: &Plan) -> Vec<Status> {
    plan.steps()
        .map(|(_, step)| step.display_status())
        .collect()
}

#[test]
fn a_fresh_deploy_plan_has_one_pending_step_per_broker() {
    let plan = deploy_plan(&spec(""), "deploy", TARGET, &BTreeMap::new());
    assert_eq!(plan.phases.len(), 1);
    let names: Vec<&str> = plan.phases[0]
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["kafka-0:[broker]", "kafka-1:[broker]", "kafka-2:[broker]"]
    );
    assert_eq!(statuses(&plan), [Status::Pending; 3]);
    assert_eq!(plan.status(), Status::Pending);
    assert_eq!(plan.candidates(&|_| false), [(0, 0)]);
    assert_eq!(plan.http_status(), 202);
}

#[test]
fn steps_whose_tasks_run_ready_on_the_target_start_complete() {
    let records: BTreeMap<_, _> = [
        record(0, TARGET, TaskState::Running, true),
        record(1, TARGET, TaskState::Running, false),
        record(2, OLD, TaskState::Running, true),
    ]
    .into_iter()
    .collect();
    let plan = deploy_plan(&spec(""), "deploy", TARGET, &records);
    assert_eq!(
        statuses(&plan),
        [Status::Complete, Status::Pending, Status::Pending]
    );
    assert_eq!(plan.status(), Status::InProgress);
    assert_eq!(plan.candidates(&|_| false), [(0, 1)]);
}

#[test]
fn ids_are_stable_across_generations() {
    let a = deploy_plan(&spec(""), "deploy", TARGET, &BTreeMap::new());
    let b = deploy_plan(&spec(""), "deploy", OLD, &BTreeMap::new());
    assert_eq!(a.phases[0].id, b.phases[0].id);
    assert_eq!(a.phases[0].steps[1].id, b.phases[0].steps[1].id);
    assert_ne!(a.phases[0].steps[0].id, a.phases[0].steps[1].id);
}

#[test]
fn interrupt_and_continue() {
    let mut plan = deploy_plan(&spec(""), "deploy", TARGET, &BTreeMap::new());
    plan.interrupt(None).unwrap();
    assert!(plan.candidates(&|_| false).is_empty());
    assert_eq!(plan.status(), Status::Waiting);
    plan.proceed(None).unwrap();
    assert_eq!(plan.candidates(&|_| false), [(0, 0)]);
    plan.interrupt(Some("broker")).unwrap();
    assert!(plan.candidates(&|_| false).is_empty());
    assert_eq!(plan.phases[0].status(), Status::Waiting);
    plan.proceed(Some("broker")).unwrap();
    assert_eq!(plan.candidates(&|_| false), [(0, 0)]);
    assert_eq!(
        plan.interrupt(Some("nope")).unwrap_err().to_string(),
        "phase \"nope\" of plan \"deploy\" not found"
    );
}

#[test]
fn force_complete_and_restart_by_name_or_id() {
    let mut plan = deploy_plan(&spec(""), "deploy", TARGET, &BTreeMap::new());
    let step_id = plan.phases[0].steps[1].id.to_string();
    plan.force_complete("broker", Some("kafka-0:[broker]"))
        .unwrap();
    plan.force_complete("broker", Some(&step_id)).unwrap();
    assert_eq!(
        statuses(&plan),
        [Status::Complete, Status::Complete, Status::Pending]
    );
    assert_eq!(plan.candidates(&|_| false), [(0, 2)]);
    plan.force_complete(&plan.phases[0].id.to_string(), None)
        .unwrap();
    assert_eq!(plan.status(), Status::Complete);
    assert_eq!(plan.http_status(), 200);
    plan.restart(Some("broker"), Some("kafka-1:[broker]"))
        .unwrap();
    assert_eq!(
        statuses(&plan),
        [Status::Complete, Status::Pending, Status::Complete]
    );
    assert!(plan.phases[0].steps[1].restart_requested);
    plan.restart(None, None).unwrap();
    assert_eq!(statuses(&plan), [Status::Pending; 3]);
    assert!(plan
        .force_complete("broker", Some("kafka-9:[broker]"))
        .is_err());
}

#[test]
fn a_plan_with_errors_is_417_and_runs_nothing() {
    let mut plan = deploy_plan(&spec(""), "deploy", TARGET, &BTreeMap::new());
    plan.errors.push("Field: 'pods.kafka.count'; …".into());
    assert_eq!(plan.status(), Status::Error);
    assert_eq!(plan.http_status(), 417);
    assert!(plan.candidates(&|_| false).is_empty());
}

#[test]
fn parallel_phases_skip_blocked_instances() {
    let plan = deploy_plan(
        &spec(r#"{"service":{"deploy_strategy":"parallel"}}"#),
        "deploy",
        TARGET,
        &BTreeMap::new(),
    );
    let blocked = |instance: &PodInstance| instance.index == 1;
    assert_eq!(plan.candidates(&blocked), [(0, 0), (0, 2)]);
}

#[test]
fn a_canary_phase_waits_for_two_continues() {
    let mut plan = deploy_plan(
        &spec(r#"{"service":{"deploy_strategy":"serial-canary"}}"#),
        "deploy",
        TARGET,
        &BTreeMap::new(),
    );
    assert!(plan.candidates(&|_| false).is_empty());
    assert_eq!(plan.status(), Status::Waiting);
    plan.proceed(None).unwrap();
    assert_eq!(plan.candidates(&|_| false), [(0, 0)]);
    plan.phases[0].steps[0].set(Status::Complete, "done");
    assert!(plan.candidates(&|_| false).is_empty());
    assert_eq!(plan.phases[0].status(), Status::Waiting);
    plan.proceed(None).unwrap();
    assert_eq!(plan.candidates(&|_| false), [(0, 1)]);
    // A further continue does not skip the serial order.
    plan.proceed(None).unwrap();
    assert_eq!(plan.candidates(&|_| false), [(0, 1)]);
}

#[test]
fn the_json_has_the_sdk_shape() {
    let mut plan = deploy_plan(&spec(""), "deploy", TARGET, &BTreeMap::new());
    plan.phases[0].steps[0].set(Status::Starting, "launching kafka-0-broker");
    let json = plan.to_json();
    assert_eq!(json["status"], "IN_PROGRESS");
    assert_eq!(json["strategy"], "serial");
    assert_eq!(json["errors"], serde_json::json!([]));
    let phase = &json["phases"][0];
    assert_eq!(phase["name"], "broker");
    assert_eq!(phase["status"], "IN_PROGRESS");
    assert_eq!(phase["strategy"], "serial");
    let step = &phase["steps"][0];
    assert_eq!(step["name"], "kafka-0:[broker]");
    assert_eq!(step["status"], "STARTING");
    assert_eq!(step["message"], "launching kafka-0-broker");
    assert_eq!(step["id"].as_str().unwrap().len(), 36);
    let keys: Vec<&String> = step.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "message", "name", "status"]);
}
