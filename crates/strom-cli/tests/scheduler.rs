//! `strom scheduler run` with real processes: three brokers deployed on the local engine through
//! the HTTP API's eyes, a produce/consume through an address from `/v1/endpoints`, the
//! scheduler killed with SIGKILL mid-deploy and restarted (it resumes without relaunching the
//! broker that was ready), and a broker killed with SIGKILL (restarted in place, its data
//! kept). Every wait is bounded; a guard kills the scheduler and every broker it started.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::service::*;
use common::{consume, producer, wait_until};
use rdkafka::producer::FutureRecord;
use serde_json::Value;

fn produce_one(bootstrap: &str, topic: &str, value: &str) {
    let producer = producer(bootstrap, &[("message.timeout.ms", "10000")]);
    common::client_runtime()
        .block_on(producer.send(
            FutureRecord::<(), _>::to(topic).payload(value),
            Duration::from_secs(10),
        ))
        .expect("delivered");
}

#[test]
fn deploys_survives_a_scheduler_kill_and_heals_a_killed_broker() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        r#"{"brokers":{"count":3,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2}}"#;
    let mut service = Service::new(dir.path(), options);
    let api = service.start();

    // kill -9 the scheduler once the first broker is ready and the deploy is not done.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "kafka-0 never became ready");
        let (status, plan) = http(&api, "GET", "/v1/plans/deploy");
        let steps = step_statuses(&plan);
        if steps.first().map(String::as_str) == Some("COMPLETE") {
            assert_eq!(status, 202, "{plan}");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let first_task = task_id(&api, "kafka-0");
    let first_pid = service.pid("kafka-0-broker").expect("kafka-0 runs");
    service.kill_scheduler();

    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    assert_eq!(
        task_id(&api, "kafka-0"),
        first_task,
        "kafka-0 was relaunched"
    );
    assert_eq!(service.pid("kafka-0-broker"), Some(first_pid));
    let (_, plan) = http(&api, "GET", "/v1/plans/deploy");
    assert_eq!(step_statuses(&plan), ["COMPLETE"; 3], "{plan}");
    assert_eq!(http(&api, "GET", "/v1/health").0, 200);
    assert_eq!(
        http(&api, "GET", "/v1/plans").1,
        serde_json::json!(["deploy", "recovery", "decommission"])
    );
    assert_eq!(
        http(&api, "GET", "/v1/pod").1,
        serde_json::json!(["kafka-0", "kafka-1", "kafka-2"])
    );
    assert_eq!(http(&api, "GET", "/v1/plans/nope").0, 404);

    // Every advertised address answers the Kafka protocol; produce and consume through one.
    let (status, endpoint) = http(&api, "GET", "/v1/endpoints/broker");
    assert_eq!(status, 200, "{endpoint}");
    let addresses: Vec<String> = endpoint["address"]
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(addresses.len(), 3, "{endpoint}");
    for (id, address) in addresses.iter().enumerate() {
        let port = address.rsplit_once(':').unwrap().1;
        let probe = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args([
                "service",
                "probe-broker",
                "--id",
                &id.to_string(),
                "--port",
                port,
            ])
            .status()
            .unwrap();
        assert!(probe.success(), "broker {id} at {address} is not ready");
    }
    let wrong_id = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["service", "probe-broker", "--id", "7", "--port"])
        .arg(addresses[0].rsplit_once(':').unwrap().1)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!wrong_id.success(), "the probe must check the broker id");
    let kafka1 = &addresses[1];
    produce_one(kafka1, "events", "before the crash");

    // kill -9 kafka-1: restarted in place, with its data.
    let victim = service.pid("kafka-1-broker").expect("kafka-1 runs");
    let victim_task = task_id(&api, "kafka-1");
    // SAFETY: signalling a broker this test's scheduler started.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    wait_until(
        "kafka-1 relaunched and ready",
        Duration::from_secs(60),
        || {
            let (_, recovery) = http(&api, "GET", "/v1/plans/recovery");
            task_id(&api, "kafka-1") != victim_task
                && recovery["status"] == "COMPLETE"
                && http(&api, "GET", "/v1/health").0 == 200
        },
    );
    let (_, endpoint) = http(&api, "GET", "/v1/endpoints/broker");
    assert_eq!(
        endpoint["address"][1].as_str(),
        Some(kafka1.as_str()),
        "same port"
    );
    let records = consume(kafka1, "events", &[0], 1, Duration::from_secs(20));
    assert_eq!(records[0].value.as_deref(), Some(&b"before the crash"[..]));
    assert_eq!(
        service.pid("kafka-0-broker"),
        Some(first_pid),
        "kafka-0 untouched"
    );
}

#[test]
fn a_second_scheduler_for_the_same_state_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let options = r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    service.start();
    let second = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["scheduler", "run", "--state-dir"])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("locked by another scheduler"), "{stderr}");
}

#[test]
fn commands_need_the_token_and_act_on_real_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    let api = service.start_with_token("s3cret");
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    let auth = "Authorization: Bearer s3cret\r\n";
    let (status, body) = http(&api, "POST", "/v1/plans/deploy/interrupt");
    assert_eq!(status, 401, "{body}");
    let (status, _) = http_with(
        &api,
        "POST",
        "/v1/plans/deploy/interrupt",
        "Authorization: Bearer nope\r\n",
    );
    assert_eq!(status, 401);
    // A complete plan: interrupt and continue have nothing to do (208, as the SDK answered).
    let (status, body) = http_with(&api, "POST", "/v1/plans/deploy/interrupt", auth);
    assert_eq!(
        (status, body),
        (
            208,
            serde_json::json!({"message": "Received cmd: interrupt"})
        )
    );
    let (status, body) = http_with(&api, "POST", "/v1/plans/deploy/continue?phase=broker", auth);
    assert_eq!(status, 208, "{body}");
    let (status, _) = http_with(&api, "POST", "/v1/plans/deploy/continue?phase=nope", auth);
    assert_eq!(status, 404);
    let (status, _) = http_with(&api, "POST", "/v1/plans/deploy/forceComplete", auth);
    assert_eq!(status, 400);

    let (_, pod_status) = http(&api, "GET", "/v1/pod/kafka-0/status");
    assert_eq!(
        pod_status["tasks"][0]["status"], "TASK_RUNNING",
        "{pod_status}"
    );
    let (_, all) = http(&api, "GET", "/v1/pod/status");
    assert_eq!(all["pods"][0]["instances"][0]["name"], "kafka-0", "{all}");
    let before = task_id(&api, "kafka-0");
    assert_eq!(http(&api, "POST", "/v1/pod/kafka-0/restart").0, 401);
    assert_eq!(task_id(&api, "kafka-0"), before);
    let (status, body) = http_with(&api, "POST", "/v1/pod/kafka-0/restart", auth);
    assert_eq!(
        (status, body),
        (
            200,
            serde_json::json!({"pod": "kafka-0", "tasks": ["kafka-0-broker"]})
        )
    );
    wait_until(
        "kafka-0 restarted and ready",
        Duration::from_secs(60),
        || task_id(&api, "kafka-0") != before && http(&api, "GET", "/v1/health").0 == 200,
    );
    assert_eq!(
        http_with(&api, "POST", "/v1/pod/kafka-9/restart", auth).0,
        404
    );

    let (status, metrics) = http(&api, "GET", "/v1/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics["counters"]["offers.received"]["count"].as_u64() > Some(0),
        "{metrics}"
    );
    assert!(
        metrics["counters"]["operation.launch_group"]["count"].as_u64() >= Some(2),
        "{metrics}"
    );
    let (status, offers) = http(&api, "GET", "/v1/debug/offers");
    assert_eq!(status, 200, "{offers}");
    assert_eq!(
        http(&api, "GET", "/v1/endpoints").1,
        serde_json::json!(["broker"])
    );
}

#[test]
fn a_scheduler_killed_again_and_again_during_deploy_leaves_one_broker_per_pod() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        r#"{"brokers":{"count":3,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2}}"#;
    let mut service = Service::new(dir.path(), options);
    for delay_ms in [50, 150, 250, 350] {
        service.start();
        std::thread::sleep(Duration::from_millis(delay_ms));
        service.kill_scheduler();
    }
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    let state = dir.path().join("state");
    let mut brokers = broker_processes(&state);
    brokers.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        brokers.len(),
        3,
        "one broker process per pod, no orphans: {brokers:?}"
    );
    let mut engine_pids: Vec<u32> = service.pids().into_iter().map(|(_, pid)| pid).collect();
    engine_pids.sort_unstable();
    let mut found: Vec<u32> = brokers.iter().map(|(pid, _)| *pid).collect();
    found.sort_unstable();
    assert_eq!(found, engine_pids, "the engine knows every broker");
    let (_, endpoint) = http(&api, "GET", "/v1/endpoints/broker");
    assert_eq!(
        endpoint["address"].as_array().map(Vec::len),
        Some(3),
        "{endpoint}"
    );
}

#[test]
fn sdk_uninstall_kills_releases_wipes_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        r#"{"brokers":{"count":2,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2}}"#;
    let mut service = Service::new(dir.path(), options);
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    let state = dir.path().join("state");
    assert_eq!(broker_processes(&state).len(), 2);
    let volumes = state.join("engine/volumes");
    assert_eq!(std::fs::read_dir(&volumes).unwrap().count(), 2);
    service.kill_scheduler();

    service.start_with_env(&[("SDK_UNINSTALL", "1")]);
    let mut child = service.scheduler.take().expect("started");
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the uninstall did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}");
    assert!(broker_processes(&state).is_empty(), "brokers left running");
    assert_eq!(
        std::fs::read_dir(&volumes).unwrap().count(),
        0,
        "volumes left"
    );
    assert_eq!(
        std::fs::read_dir(state.join("store")).unwrap().count(),
        0,
        "state left"
    );
    let ledger: Value =
        serde_json::from_slice(&std::fs::read(state.join("engine/engine.json")).unwrap()).unwrap();
    let reserved: usize = ledger["reserved"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r.as_object().map_or(0, |m| m.len()))
        .sum();
    assert_eq!(reserved, 0, "reservations left: {ledger}");
}
