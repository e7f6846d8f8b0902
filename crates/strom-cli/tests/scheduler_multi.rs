//! Several services in one `strom scheduler run --services` process on one local engine, with
//! real brokers: both deploy (offers shared in DRF order), each serves produce/consume through
//! its own `/service/<name>/v1/endpoints`, each has its own framework id and plans, `/v1/…`
//! without a service name is not served when there are two, and `strom service uninstall
//! --name alpha` removes alpha's broker, state and routes while beta's broker goes on answering
//! (same process); the last uninstall ends the scheduler with exit 0. Every wait is bounded.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::service::*;
use common::{consume, producer, wait_until};
use rdkafka::producer::FutureRecord;

fn produce_one(bootstrap: &str, topic: &str, value: &str) {
    let producer = producer(bootstrap, &[("message.timeout.ms", "10000")]);
    common::client_runtime()
        .block_on(producer.send(
            FutureRecord::<(), _>::to(topic).payload(value),
            Duration::from_secs(10),
        ))
        .expect("delivered");
}

fn broker_address(api: &str, service: &str) -> String {
    let (status, endpoint) = http(
        api,
        "GET",
        &format!("/service/{service}/v1/endpoints/broker"),
    );
    assert_eq!(status, 200, "{service}: {endpoint}");
    endpoint["address"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{service}: no address in {endpoint}"))
        .to_string()
}

fn round_trip(address: &str, topic: &str, value: &str) {
    produce_one(address, topic, value);
    let records = consume(address, topic, &[0], 1, Duration::from_secs(20));
    assert_eq!(
        records[0].value.as_deref(),
        Some(value.as_bytes()),
        "{topic}"
    );
}

fn strom_service(api: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strom"))
        .arg("service")
        .args(args)
        .args(["--api", api])
        .output()
        .expect("strom service runs")
}

#[test]
fn two_services_share_one_engine_and_one_uninstalls_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = Service::new(dir.path(), "{}");
    let services = dir.path().join("services.json");
    std::fs::write(
        &services,
        r#"[
          {"name": "alpha", "options": {"brokers": {"count": 1, "cpus": 0.1, "mem": 256,
                                                    "disk": 100, "kill_grace_period": 2}}},
          {"name": "beta", "role": "beta-role", "weight": 2,
           "options": {"brokers": {"count": 2, "cpus": 0.2, "mem": 256, "disk": 100,
                                   "kill_grace_period": 2}}}
        ]"#,
    )
    .unwrap();
    service.services_file = Some(services);
    service.die_with_scheduler = true;
    let api = service.start();

    wait_until(
        "both deploy plans complete",
        Duration::from_secs(60),
        || {
            ["alpha", "beta"]
                .iter()
                .all(|name| http(&api, "GET", &format!("/service/{name}/v1/plans/deploy")).0 == 200)
        },
    );
    let (_, plan) = http(&api, "GET", "/service/beta/v1/plans/deploy");
    assert_eq!(step_statuses(&plan), ["COMPLETE"; 2], "{plan}");
    assert_eq!(
        http(&api, "GET", "/v1/plans").0,
        404,
        "two services: no unnamed routes"
    );
    assert_eq!(http(&api, "GET", "/service/gamma/v1/plans").0, 404);
    let alpha_id = http(&api, "GET", "/service/alpha/v1/state/frameworkId").1;
    let beta_id = http(&api, "GET", "/service/beta/v1/state/frameworkId").1;
    assert!(
        alpha_id[0].is_string() && beta_id[0].is_string(),
        "{alpha_id} {beta_id}"
    );
    assert_ne!(alpha_id, beta_id, "one framework per service");

    let alpha = broker_address(&api, "alpha");
    let beta = broker_address(&api, "beta");
    assert_ne!(alpha, beta);
    round_trip(&alpha, "alpha-events", "to alpha");
    round_trip(&beta, "beta-events", "to beta");
    assert_eq!(
        broker_processes(dir.path()).len(),
        3,
        "1 alpha + 2 beta brokers"
    );
    let beta_sandboxes: Vec<_> = broker_processes(dir.path())
        .into_iter()
        .filter(|(pid, _)| {
            // Beta's brokers: the engine gives each task its service's name.
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            environ
                .split(|b| *b == 0)
                .any(|entry| entry == b"FRAMEWORK_NAME=beta")
        })
        .collect();
    assert_eq!(beta_sandboxes.len(), 2, "{beta_sandboxes:?}");

    // Uninstall alpha through the CLI: its broker, state and routes go, beta stays.
    let uninstall = strom_service(&api, &["uninstall", "--name", "alpha"]);
    assert!(
        uninstall.status.success(),
        "{}",
        String::from_utf8_lossy(&uninstall.stderr)
    );
    assert_eq!(http(&api, "GET", "/service/alpha/v1/plans/deploy").0, 404);
    wait_until("alpha's broker is gone", Duration::from_secs(20), || {
        broker_processes(dir.path()).len() == 2
    });
    assert!(
        !dir.path().join("state/services/alpha").exists(),
        "alpha's state store is wiped"
    );
    assert!(dir.path().join("state/services/beta").exists());
    let still: Vec<u32> = broker_processes(dir.path())
        .iter()
        .map(|(p, _)| *p)
        .collect();
    let before: Vec<u32> = beta_sandboxes.iter().map(|(p, _)| *p).collect();
    assert_eq!(still.len(), 2);
    assert!(
        still.iter().all(|p| before.contains(p)),
        "beta's brokers untouched"
    );
    assert!(
        std::net::TcpStream::connect(&alpha).is_err(),
        "alpha's broker still listens at {alpha}"
    );
    assert_eq!(http(&api, "GET", "/service/beta/v1/plans/deploy").0, 200);
    let records = consume(&beta, "beta-events", &[0], 1, Duration::from_secs(20));
    assert_eq!(records[0].value.as_deref(), Some(&b"to beta"[..]));
    round_trip(&beta, "beta-after", "beta still serves");
    let plans = strom_service(&api, &["plan", "show", "deploy", "--name", "beta"]);
    assert!(plans.status.success());
    assert!(String::from_utf8_lossy(&plans.stdout).contains("COMPLETE"));

    // The last service's uninstall ends the scheduler, exit 0.
    let uninstall = strom_service(&api, &["uninstall", "--name", "beta"]);
    assert!(uninstall.status.success());
    let mut child = service.scheduler.take().expect("running");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the scheduler did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(broker_processes(dir.path()).is_empty());
}
