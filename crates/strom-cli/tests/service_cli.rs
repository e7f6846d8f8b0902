//! `strom service …` against a running scheduler with a real broker: plan list/show (tree and
//! `--json`)/stop/start, pod list/status/restart, endpoints, broker and topic commands, `update
//! start --options` (accepted: the broker relaunches on the new config; refused: exit 1 with
//! the validator's message, the deploy plan 417 with its errors), the update surviving a
//! scheduler restart with the original `--options`, `describe`, and `uninstall` (the scheduler
//! exits 0 and no broker is left); and the shipped systemd unit's command line (started, stopped
//! with its `KillSignal`, started again: the broker survives and is adopted).

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::service::*;
use common::wait_until;
use serde_json::Value;

fn strom(api: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["service"])
        .args(args)
        .args(["--api", api])
        .output()
        .expect("strom runs")
}

/// Runs a command that must succeed; its standard output.
fn ok(api: &str, args: &[&str]) -> String {
    let output = strom(api, args);
    assert!(
        output.status.success(),
        "strom service {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn json(api: &str, args: &[&str]) -> Value {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let text = ok(api, &with_json);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

fn server_properties(api: &str) -> String {
    let info = json(api, &["pod", "info", "kafka-0"]);
    info[0]["info"]["files"]
        .as_object()
        .expect("rendered files")
        .values()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn the_service_cli_drives_plans_pods_updates_and_uninstall() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2}}"#;
    let mut service = Service::new(dir.path(), options);
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });

    // Plans.
    assert_eq!(
        ok(&api, &["plan", "list"]),
        "deploy\nrecovery\ndecommission\n"
    );
    assert_eq!(
        ok(&api, &["plan", "show"]),
        "deploy (serial strategy) (COMPLETE)\n\
         └─ broker (serial strategy) (COMPLETE)\n   \
         └─ kafka-0:[broker] (COMPLETE)\n"
    );
    let plan = json(&api, &["plan", "show", "deploy"]);
    assert_eq!(plan["status"], "COMPLETE");
    assert_eq!(plan["phases"][0]["steps"][0]["name"], "kafka-0:[broker]");
    // --watch on a finished plan prints it once and returns.
    assert_eq!(
        ok(&api, &["plan", "show", "--watch"]),
        ok(&api, &["plan", "show"])
    );
    let missing = strom(&api, &["plan", "show", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));

    // Pods, endpoints, brokers, topics.
    assert_eq!(ok(&api, &["pod", "list"]), "kafka-0\n");
    let status = ok(&api, &["pod", "status"]);
    assert!(status.starts_with("POD"), "{status}");
    assert!(
        status.contains("kafka-0-broker") && status.contains("TASK_RUNNING"),
        "{status}"
    );
    assert_eq!(ok(&api, &["endpoints"]), "broker\n");
    let endpoint = json(&api, &["endpoints", "broker"]);
    assert_eq!(endpoint["address"].as_array().map(Vec::len), Some(1));
    assert_eq!(ok(&api, &["broker", "list"]), "0\n");
    ok(&api, &["topic", "create", "orders", "--partitions", "3"]);
    wait_until("the topic is listed", Duration::from_secs(20), || {
        ok(&api, &["topic", "list"]).lines().any(|t| t == "orders")
    });
    let described = ok(&api, &["topic", "describe", "orders"]);
    assert_eq!(described.lines().count(), 4, "{described}");

    // plan stop, then start: the broker relaunches.
    let first_task = task_id(&api, "kafka-0");
    ok(&api, &["plan", "stop", "deploy"]);
    assert!(ok(&api, &["plan", "show"]).contains("(PENDING)"));
    ok(&api, &["plan", "start", "deploy"]);
    wait_until(
        "the deploy completes again",
        Duration::from_secs(60),
        || http(&api, "GET", "/v1/plans/deploy").0 == 200 && task_id(&api, "kafka-0") != first_task,
    );

    // pod restart.
    let before = task_id(&api, "kafka-0");
    assert_eq!(
        ok(&api, &["pod", "restart", "kafka-0"]),
        "kafka-0: restart of kafka-0-broker\n"
    );
    wait_until("kafka-0 restarted", Duration::from_secs(60), || {
        task_id(&api, "kafka-0") != before && http(&api, "GET", "/v1/health").0 == 200
    });

    // update start: accepted, the broker relaunches with the new setting.
    let target = http(&api, "GET", "/v1/configurations/targetId").1;
    let updated = dir.path().join("updated.json");
    std::fs::write(
        &updated,
        r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2},
            "kafka":{"num_partitions":3}}"#,
    )
    .unwrap();
    let before = task_id(&api, "kafka-0");
    let accepted = ok(
        &api,
        &["update", "start", "--options", updated.to_str().unwrap()],
    );
    assert!(accepted.starts_with("Update accepted"), "{accepted}");
    assert_ne!(http(&api, "GET", "/v1/configurations/targetId").1, target);
    wait_until("the update rolled kafka-0", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200 && task_id(&api, "kafka-0") != before
    });
    assert!(server_properties(&api).contains("num.partitions=3\n"));
    let described = json(&api, &["describe"]);
    assert_eq!(described["kafka"]["num_partitions"], 3, "{described}");

    // A refused update: a volume change. Exit 1 with the validator's message; 417 plan.
    let refused = dir.path().join("refused.json");
    std::fs::write(
        &refused,
        r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":200,"kill_grace_period":2},
            "kafka":{"num_partitions":3}}"#,
    )
    .unwrap();
    let target = http(&api, "GET", "/v1/configurations/targetId").1;
    // `update --options FILE`, the short form.
    let output = strom(&api, &["update", "--options", refused.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refused") && stderr.contains("volume"),
        "{stderr}"
    );
    assert_eq!(http(&api, "GET", "/v1/configurations/targetId").1, target);
    assert_eq!(http(&api, "GET", "/v1/plans/deploy").0, 417);
    assert_eq!(strom(&api, &["update"]).status.code(), Some(1));
    let shown = ok(&api, &["update", "status"]);
    assert!(shown.contains("Errors:"), "{shown}");

    // A restart with the original --options keeps the update made through the API.
    let kept_task = task_id(&api, "kafka-0");
    service.kill_scheduler();
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    assert_eq!(http(&api, "GET", "/v1/configurations/targetId").1, target);
    assert_eq!(task_id(&api, "kafka-0"), kept_task, "no relaunch");
    assert!(server_properties(&api).contains("num.partitions=3\n"));

    // uninstall: the scheduler exits 0 and leaves no broker.
    let said = ok(&api, &["uninstall"]);
    assert!(said.contains("uninstalled"), "{said}");
    let mut child = service.scheduler.take().expect("running");
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the scheduler did not exit");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}");
    assert!(broker_processes(&dir.path().join("state")).is_empty());
}

/// `Key=value` of the shipped unit.
fn unit_setting<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn the_shipped_systemd_unit_starts_stops_and_restarts_without_killing_brokers() {
    let unit_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dist/systemd/strom-scheduler@.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert_eq!(unit_setting(&unit, "KillMode"), Some("process"));
    assert_eq!(unit_setting(&unit, "KillSignal"), Some("SIGTERM"));
    assert_eq!(unit_setting(&unit, "Restart"), Some("always"));
    let stop_timeout: u64 = unit_setting(&unit, "TimeoutStopSec")
        .unwrap()
        .parse()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let options =
        r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2}}"#;
    let mut service = Service::new(dir.path(), options);
    let state = dir.path().join("state");
    // The unit's ExecStart for instance "kafka", with this test's binary, files and ports.
    let exec = unit_setting(&unit, "ExecStart").unwrap();
    let args: Vec<String> = exec
        .split_whitespace()
        .skip(1)
        .map(|arg| {
            arg.replace("/etc/strom/%i.json", service.options.to_str().unwrap())
                .replace("/var/lib/strom/%i", state.to_str().unwrap())
                .replace("%i", "kafka")
        })
        .chain(["--ports".to_string(), service.ports.clone()])
        .collect();
    assert!(
        exec.starts_with("/usr/local/bin/strom scheduler run "),
        "{exec}"
    );
    let start = |service: &mut Service| -> String {
        let _ = std::fs::remove_file(state.join("api-address"));
        service.scheduler = Some(
            Command::new(env!("CARGO_BIN_EXE_strom"))
                .args(&args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_until("api-address", Duration::from_secs(20), || {
            std::fs::read_to_string(state.join("api-address")).is_ok_and(|a| !a.is_empty())
        });
        std::fs::read_to_string(state.join("api-address")).unwrap()
    };
    let api = start(&mut service);
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    let task = task_id(&api, "kafka-0");
    let pid = service.pid("kafka-0-broker").expect("the broker runs");

    // systemctl stop: SIGTERM to the scheduler alone; it exits 0 within TimeoutStopSec.
    let mut child = service.scheduler.take().unwrap();
    // SAFETY: signalling the scheduler this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(stop_timeout);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "not stopped within TimeoutStopSec"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
    // SAFETY: signal 0 only checks that the broker process exists.
    assert_eq!(
        unsafe { libc::kill(pid as i32, 0) },
        0,
        "the broker outlives the scheduler"
    );

    // Restart=always: the same command adopts the running broker.
    let api = start(&mut service);
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    assert_eq!(task_id(&api, "kafka-0"), task);
    assert_eq!(service.pid("kafka-0-broker"), Some(pid));
}

#[test]
fn debug_offers_says_why_a_deploy_is_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let options = r#"{"brokers":{"count":1,"cpus":4096,"mem":256,"disk":100}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    let api = service.start();
    wait_until("offers were evaluated", Duration::from_secs(30), || {
        ok(&api, &["debug", "offers"]).contains("\n  offer ")
    });
    let text = ok(&api, &["debug", "offers"]);
    assert!(
        text.starts_with("deploy kafka-0:[broker] (PREPARED)"),
        "{text}"
    );
    assert!(text.contains("cpus"), "the failed stage is named: {text}");
    let body = json(&api, &["debug", "offers"]);
    let offer = &body["steps"][0]["offers"][0];
    assert_eq!(offer["passed"], false, "{body}");
    assert!(
        offer["stages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|stage| stage["passed"] == false),
        "{body}"
    );
    assert_eq!(
        http(&api, "GET", "/v1/plans/deploy").0,
        202,
        "still deploying"
    );
}
