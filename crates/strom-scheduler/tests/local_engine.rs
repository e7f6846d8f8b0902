//! The local engine with real processes: the shipped Kafka spec deployed through the scheduler
//! on two virtual agents, with a stand-in for the strom binary (a shell script that writes to
//! its volume and sleeps; its readiness check passes once a marker file exists), the file
//! state store, a broker killed with SIGKILL, and a scheduler+engine restart that adopts the
//! running tasks. Every loop is bounded in time.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use strom_scheduler::engine::local::{AgentConfig, LocalEngine, LocalEngineConfig, RESEND_MS};
use strom_scheduler::engine::{drive_once, Engine};
use strom_scheduler::file_store::FilePersister;
use strom_scheduler::plan::Status;
use strom_scheduler::scheduler::{Effect, Input, Scheduler, SchedulerConfig};
use strom_scheduler::spec::kafka::render_kafka_service;
use strom_scheduler::spec::ServiceSpec;
use strom_scheduler::task::{TaskState, TaskStatus};

const FAKE_STROM: &str = r#"#!/bin/sh
case "$1" in
  broker)
    echo "start $$" >> kafka-broker-data/starts
    touch ready
    exec sleep 600 ;;
  service) test -f ready ;;
  *) exit 2 ;;
esac
"#;

fn spec(bin: &Path) -> ServiceSpec {
    let env: BTreeMap<String, String> = [
        ("STROM_BIN", bin.display().to_string()),
        ("KAFKA_ZOOKEEPER_URI", "unused".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let options = r#"{"brokers":{"count":2,"cpus":0.1,"mem":64,"disk":10,"kill_grace_period":1}}"#;
    render_kafka_service(options, &env).expect("renders").spec
}

fn engine(dir: &Path) -> LocalEngine {
    let agents = (0..2)
        .map(|i| AgentConfig {
            id: format!("agent-{i}"),
            hostname: format!("host-{i}"),
            ip: "127.0.0.1".into(),
            zone: Some(format!("zone-{i}")),
            cpus: 1.0,
            mem: 512.0,
            disk: 100.0,
            ports: (41000 + i * 10, 41009 + i * 10),
            mounts: Vec::new(),
        })
        .collect();
    LocalEngine::open(LocalEngineConfig {
        work_dir: dir.join("engine"),
        agents,
        die_with_engine: true,
        check_interval_max_ms: 200,
        secrets: None,
    })
    .expect("engine opens")
}

struct Service {
    scheduler: Scheduler<FilePersister>,
    engine: LocalEngine,
    started: Instant,
}

impl Service {
    fn start(dir: &Path, spec: &ServiceSpec) -> Service {
        let store = FilePersister::open(&dir.join("state")).expect("store opens");
        let config = SchedulerConfig::for_service(&spec.name);
        let (mut scheduler, _) =
            Scheduler::new(store, spec, config, Box::new(uuid::Uuid::new_v4)).expect("accepted");
        let mut engine = engine(dir);
        engine.set_spec(spec);
        engine.restore_reservations(scheduler.tasks().values().map(|r| &r.info));
        let effects = scheduler.subscribed(0);
        engine.apply(&effects, 0);
        Service {
            scheduler,
            engine,
            started: Instant::now(),
        }
    }

    fn run_until(&mut self, what: &str, timeout: Duration, check: impl Fn(&Service) -> bool) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            let now_ms = self.started.elapsed().as_millis() as u64;
            drive_once(&mut self.scheduler, &mut self.engine, now_ms).expect("store works");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn plan(&self, name: &str) -> Status {
        self.scheduler.plan(name).expect("plan").status()
    }
}

fn starts(engine: &LocalEngine, name: &str) -> usize {
    let sandbox = engine.sandbox(name).expect("task runs");
    std::fs::read_to_string(sandbox.join("kafka-broker-data/starts"))
        .expect("the broker wrote to its volume")
        .lines()
        .count()
}

#[test]
fn deploys_recovers_in_place_and_adopts_tasks_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("strom");
    std::fs::write(&bin, FAKE_STROM).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let spec = spec(&bin);

    let mut service = Service::start(dir.path(), &spec);
    service.run_until("deploy", Duration::from_secs(30), |s| {
        s.plan("deploy") == Status::Complete
    });
    let pids = service.engine.pids();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let sandbox = service
        .engine
        .sandbox("kafka-0-broker")
        .unwrap()
        .to_path_buf();
    let properties =
        std::fs::read_to_string(sandbox.join("kafka-config/server.properties")).unwrap();
    assert!(properties.contains("broker.id=0"), "{properties}");
    assert!(
        properties.contains("listeners=PLAINTEXT://127.0.0.1:410"),
        "{properties}"
    );
    assert_eq!(starts(&service.engine, "kafka-0-broker"), 1);

    // kill -9 a broker: restarted in place, on the same volume.
    let victim = pids["kafka-1-broker"];
    // SAFETY: signalling a process this test started.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    service.run_until("a new kafka-1 process", Duration::from_secs(30), |s| {
        s.engine
            .pids()
            .get("kafka-1-broker")
            .is_some_and(|&pid| pid != victim)
            && s.scheduler.plan("recovery").unwrap().status() == Status::Complete
    });
    assert_eq!(starts(&service.engine, "kafka-1-broker"), 2, "same volume");
    assert_eq!(
        service.engine.pids()["kafka-0-broker"],
        pids["kafka-0-broker"]
    );

    // The scheduler and engine "die" (tasks keep running: the test thread lives on), one
    // broker dies while they are down; the restart adopts the other and relaunches this one.
    let pids = service.engine.pids();
    drop(service);
    // SAFETY: as above.
    unsafe { libc::kill(pids["kafka-0-broker"] as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(200));
    let mut service = Service::start(dir.path(), &spec);
    service.run_until("recovery after restart", Duration::from_secs(30), |s| {
        s.engine.pids().len() == 2
            && s.plan("deploy") == Status::Complete
            && s.scheduler.plan("recovery").unwrap().status() == Status::Complete
            && !s.scheduler.is_reconciling()
    });
    let after = service.engine.pids();
    assert_eq!(
        after["kafka-1-broker"], pids["kafka-1-broker"],
        "adopted, not relaunched"
    );
    assert_ne!(after["kafka-0-broker"], pids["kafka-0-broker"]);
    assert_eq!(starts(&service.engine, "kafka-0-broker"), 2);
    service.engine.kill_all();
}

#[test]
fn a_second_scheduler_on_the_same_state_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let _first = FilePersister::open(dir.path()).unwrap();
    let error = FilePersister::open(dir.path()).err().expect("locked");
    assert!(
        error.to_string().contains("locked by another scheduler"),
        "{error}"
    );
}

fn statuses(inputs: Vec<Input>) -> Vec<TaskStatus> {
    inputs
        .into_iter()
        .filter_map(|input| match input {
            Input::Status(status) => Some(status),
            _ => None,
        })
        .collect()
}

#[test]
fn updates_are_resent_until_acknowledged_and_unknown_tasks_reconcile_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("strom");
    std::fs::write(&bin, FAKE_STROM).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let spec = spec(&bin);
    let mut service = Service::start(dir.path(), &spec);
    service.run_until("deploy", Duration::from_secs(30), |s| {
        s.plan("deploy") == Status::Complete
    });
    let pid = service.engine.pids()["kafka-0-broker"];
    // SAFETY: signalling a process this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    // The engine alone now: the update is not acknowledged, so it comes again.
    let t0 = 1_000_000;
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = loop {
        assert!(Instant::now() < deadline, "no update for the killed task");
        let found = statuses(service.engine.poll(t0))
            .into_iter()
            .find(|s| s.task_id.starts_with("kafka-0-broker__"));
        if let Some(status) = found {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(failed.state, TaskState::Failed, "{failed:?}");
    let uuid = failed.uuid.clone().expect("an update carries a uuid");
    assert!(
        statuses(service.engine.poll(t0 + 100)).is_empty(),
        "not yet"
    );
    let again = statuses(service.engine.poll(t0 + RESEND_MS));
    assert_eq!(again, vec![failed.clone()], "resent unchanged");
    service.engine.apply(
        &[Effect::Acknowledge {
            task_id: failed.task_id.clone(),
            agent_id: failed.agent_id.clone(),
            uuid,
        }],
        t0 + RESEND_MS,
    );
    assert!(
        statuses(service.engine.poll(t0 + 3 * RESEND_MS)).is_empty(),
        "acknowledged"
    );

    service.engine.apply(
        &[Effect::Reconcile {
            tasks: vec![("nobody__1".into(), "agent-0".into())],
        }],
        t0,
    );
    let answers = statuses(service.engine.poll(t0 + 3 * RESEND_MS));
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].state, TaskState::Lost);
    assert_eq!(
        answers[0].uuid, None,
        "reconciliation answers need no acknowledgement"
    );
    service.engine.kill_all();
}

#[test]
fn a_task_failing_its_health_check_is_killed_and_relaunched_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("strom");
    std::fs::write(&bin, FAKE_STROM).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let spec = spec(&bin);
    let mut service = Service::start(dir.path(), &spec);
    service.run_until("deploy", Duration::from_secs(30), |s| {
        s.plan("deploy") == Status::Complete
    });
    let pids = service.engine.pids();
    let sandbox = service
        .engine
        .sandbox("kafka-0-broker")
        .unwrap()
        .to_path_buf();
    // The health check passed at least once (so the 60 s grace period is over) before the
    // marker goes.
    service.run_until("a passed health check", Duration::from_secs(10), |_| {
        std::fs::metadata(sandbox.join("health.log")).is_ok()
    });
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(sandbox.join("ready")).unwrap();
    service.run_until("kafka-0 relaunched", Duration::from_secs(30), |s| {
        s.engine
            .pids()
            .get("kafka-0-broker")
            .is_some_and(|&pid| pid != pids["kafka-0-broker"])
            && s.scheduler.plan("recovery").unwrap().status() == Status::Complete
    });
    let record = service
        .scheduler
        .tasks()
        .get("kafka-0-broker")
        .expect("recorded")
        .clone();
    assert_ne!(
        record.info.task_id,
        sandbox.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(starts(&service.engine, "kafka-0-broker"), 2, "same volume");
    assert_eq!(
        service.engine.pids()["kafka-1-broker"],
        pids["kafka-1-broker"]
    );
    service.engine.kill_all();
}

#[test]
fn a_task_spawned_just_before_the_engine_died_is_found_by_its_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("strom");
    std::fs::write(&bin, FAKE_STROM).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let spec = spec(&bin);
    let mut service = Service::start(dir.path(), &spec);
    service.run_until("deploy", Duration::from_secs(30), |s| {
        s.plan("deploy") == Status::Complete
    });
    let pids = service.engine.pids();
    drop(service);
    // The engine died after recording the launch but before recording the pid.
    let path = dir.path().join("engine/engine.json");
    let mut ledger: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for task in ledger["tasks"].as_object_mut().unwrap().values_mut() {
        task["pid"] = serde_json::Value::Null;
        task["start_ticks"] = serde_json::Value::Null;
    }
    std::fs::write(&path, serde_json::to_vec(&ledger).unwrap()).unwrap();
    let mut service = Service::start(dir.path(), &spec);
    service.run_until("reconciled", Duration::from_secs(30), |s| {
        !s.scheduler.is_reconciling() && s.plan("deploy") == Status::Complete
    });
    assert_eq!(service.engine.pids(), pids, "adopted, not relaunched");
    service.engine.kill_all();
}
