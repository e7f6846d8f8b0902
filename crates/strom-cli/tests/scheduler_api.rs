//! The scheduler's HTTP API over a running `strom scheduler run` with a real broker, field by
//! field: `/v1/configurations…`, `/v1/state…`, plan `stop`/`start` (and a refused start
//! parameter), `/v1/brokers…`, `/v1/topics…` (create, list, describe, delete through the
//! brokers) and `pod replace` (a fresh task and volume); `/v1/metrics` and its Prometheus
//! text; `--api-auth all` (reads need the token too).

mod common;

use std::time::Duration;

use common::service::*;
use common::wait_until;
use serde_json::{json, Value};

fn volume_id(info: &Value) -> Option<String> {
    info[0]["info"]["resources"]
        .as_array()?
        .iter()
        .find_map(|r| r["disk"]["persistence_id"].as_str().map(str::to_string))
}

#[test]
fn state_plan_broker_topic_and_pod_routes() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });

    // Configurations: ids, target id, target, by id.
    let (status, ids) = http(&api, "GET", "/v1/configurations");
    assert_eq!(status, 200);
    let ids = ids.as_array().expect("a list").clone();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (status, target_id) = http(&api, "GET", "/v1/configurations/targetId");
    assert_eq!((status, target_id), (200, json!([ids[0]])));
    let (status, target) = http(&api, "GET", "/v1/configurations/target");
    assert_eq!(status, 200);
    assert_eq!(target["name"], "kafka", "{target}");
    assert_eq!(target["pods"]["kafka"]["count"], 1, "{target}");
    let by_id = http(
        &api,
        "GET",
        &format!("/v1/configurations/{}", ids[0].as_str().unwrap()),
    );
    assert_eq!(by_id, (200, target));
    assert_eq!(http(&api, "GET", "/v1/configurations/not-a-uuid").0, 400);
    assert_eq!(
        http(
            &api,
            "GET",
            "/v1/configurations/00000000-0000-0000-0000-000000000001"
        )
        .0,
        404
    );

    // State: framework id, properties.
    let (status, framework) = http(&api, "GET", "/v1/state/frameworkId");
    assert_eq!(status, 200);
    assert!(
        framework[0]
            .as_str()
            .is_some_and(|id| id.ends_with("-0000")),
        "{framework}"
    );
    let (status, keys) = http(&api, "GET", "/v1/state/properties");
    assert_eq!(status, 200);
    assert!(
        keys.as_array()
            .unwrap()
            .contains(&json!("deployment-completed")),
        "{keys}"
    );
    assert_eq!(
        http(&api, "GET", "/v1/state/properties/deployment-completed").0,
        200
    );
    assert_eq!(http(&api, "GET", "/v1/state/properties/nope").0, 404);
    let (status, zones) = http(&api, "GET", "/v1/state/zone/tasks");
    assert_eq!(status, 200);
    assert!(
        zones["kafka-0-broker"]
            .as_str()
            .is_some_and(|z| z.starts_with("zone-")),
        "{zones}"
    );

    // Commands with nothing to do on a complete plan answer 208, as the SDK's did.
    assert_eq!(http(&api, "POST", "/v1/plans/deploy/continue").0, 208);
    assert_eq!(http(&api, "POST", "/v1/plans/deploy/interrupt").0, 208);
    assert_eq!(
        http(&api, "POST", "/v1/plans/deploy/forceComplete?phase=broker").0,
        208
    );

    // Brokers from the scheduler's state; the address is the endpoint's.
    assert_eq!(http(&api, "GET", "/v1/brokers"), (200, json!(["0"])));
    let (status, broker) = http(&api, "GET", "/v1/brokers/0");
    assert_eq!(status, 200, "{broker}");
    let (_, endpoint) = http(&api, "GET", "/v1/endpoints/broker");
    let address = endpoint["address"][0].as_str().unwrap().to_string();
    assert_eq!(
        format!("{}:{}", broker["host"].as_str().unwrap(), broker["port"]),
        address
    );
    assert_eq!(
        broker["endpoints"],
        json!([format!("PLAINTEXT://{address}")])
    );
    assert_eq!(broker["id"], 0);
    assert_eq!(broker["state"], "TASK_RUNNING");
    assert_eq!(broker["task"], "kafka-0-broker");
    assert_eq!(http(&api, "GET", "/v1/brokers/7").0, 404);
    assert_eq!(http(&api, "GET", "/v1/brokers/x").0, 404);

    // Topics through the brokers.
    let (status, body) = http(&api, "PUT", "/v1/topics/events?partitions=2&replication=1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        http(&api, "PUT", "/v1/topics/events?partitions=2&replication=1").0,
        409,
        "already exists"
    );
    assert_eq!(http(&api, "PUT", "/v1/topics/bad?partitions=0").0, 400);
    wait_until("the topic is listed", Duration::from_secs(20), || {
        http(&api, "GET", "/v1/topics")
            .1
            .as_array()
            .is_some_and(|t| t.contains(&json!("events")))
    });
    let (status, topic) = http(&api, "GET", "/v1/topics/events");
    assert_eq!(status, 200, "{topic}");
    let partitions = topic["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 2, "{topic}");
    assert_eq!(partitions[1]["partition"], 1);
    assert_eq!(partitions[1]["leader"], 0);
    assert_eq!(partitions[1]["replicas"], json!([0]));
    assert_eq!(partitions[1]["isr"], json!([0]));
    assert_eq!(http(&api, "GET", "/v1/topics/nope").0, 404);
    let (status, body) = http(&api, "DELETE", "/v1/topics/events");
    assert_eq!(status, 200, "{body}");
    wait_until("the topic is gone", Duration::from_secs(20), || {
        http(&api, "GET", "/v1/topics")
            .1
            .as_array()
            .is_some_and(|t| !t.contains(&json!("events")))
    });

    // Plan stop: every step back to PENDING and held; start runs it again (a new task).
    let before = task_id(&api, "kafka-0");
    let (status, body) = http(&api, "POST", "/v1/plans/deploy/stop");
    assert_eq!(
        (status, body),
        (200, json!({"message": "Received cmd: stop"}))
    );
    let (status, plan) = http(&api, "GET", "/v1/plans/deploy");
    assert_eq!(status, 202);
    assert_eq!(step_statuses(&plan), ["PENDING"], "{plan}");
    assert_eq!(plan["status"], "WAITING", "{plan}");
    assert_eq!(
        http(&api, "POST", "/v1/plans/deploy/interrupt").0,
        208,
        "already interrupted"
    );
    let (status, body) = http_request(
        &api,
        "POST",
        "/v1/plans/deploy/start",
        "Content-Type: application/json\r\n",
        r#"{"1BAD":"x"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not a valid environment variable name"),
        "{body}"
    );
    let (status, body) = http(&api, "POST", "/v1/plans/deploy/start");
    assert_eq!(
        (status, body),
        (200, json!({"message": "Received cmd: start"}))
    );
    wait_until(
        "the deploy relaunched kafka-0",
        Duration::from_secs(60),
        || http(&api, "GET", "/v1/plans/deploy").0 == 200 && task_id(&api, "kafka-0") != before,
    );
    assert_eq!(http(&api, "POST", "/v1/plans/nope/stop").0, 404);

    // pod replace: a new task on a fresh volume.
    let (_, info) = http(&api, "GET", "/v1/pod/kafka-0/info");
    let (before_task, before_volume) = (task_id(&api, "kafka-0"), volume_id(&info));
    assert!(before_volume.is_some(), "{info}");
    let (status, body) = http(&api, "POST", "/v1/pod/kafka-0/replace");
    assert_eq!(
        (status, body),
        (200, json!({"pod": "kafka-0", "tasks": ["kafka-0-broker"]}))
    );
    wait_until("kafka-0 replaced", Duration::from_secs(60), || {
        let (_, info) = http(&api, "GET", "/v1/pod/kafka-0/info");
        task_id(&api, "kafka-0") != before_task
            && volume_id(&info).is_some()
            && volume_id(&info) != before_volume
            && info[0]["status"]["state"] == "TASK_RUNNING"
    });
}

/// The value of the Prometheus sample line that starts with `series ` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[test]
fn metrics_in_dropwizard_json_and_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let options = r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });

    let (status, metrics) = http(&api, "GET", "/v1/metrics");
    assert_eq!(status, 200);
    let timer = &metrics["timers"]["offers.process"];
    assert!(timer["count"].as_u64() > Some(0), "{metrics}");
    assert_eq!(timer["duration_units"], "milliseconds");
    assert_eq!(timer["rate_units"], "calls/second");
    for field in [
        "max", "mean", "min", "p50", "p75", "p95", "p98", "p99", "p999", "m1_rate",
    ] {
        assert!(
            timer[field].as_f64().is_some_and(|v| v >= 0.0),
            "{field}: {timer}"
        );
    }
    assert!(timer["max"].as_f64() >= timer["p50"].as_f64(), "{timer}");
    let gauges = &metrics["gauges"];
    assert_eq!(
        gauges["plan_status.deploy"]["value"], "COMPLETE",
        "{gauges}"
    );
    assert_eq!(gauges["plan_steps.deploy.COMPLETE"]["value"], 1, "{gauges}");
    assert_eq!(gauges["tasks.TASK_RUNNING"]["value"], 1, "{gauges}");
    assert!(gauges["is_suppressed"]["value"].is_boolean(), "{gauges}");
    let counters = &metrics["counters"];
    let received = counters["offers.received"]["count"].as_u64().unwrap();
    let launches = counters["operation.launch_group"]["count"]
        .as_u64()
        .unwrap();
    assert!(received > 0 && launches == 1, "{counters}");

    for path in ["/v1/metrics/prometheus", "/metrics"] {
        let (status, head, text) = http_text(&api, path);
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/openmetrics-text"),
            "{head}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE offers_received counter\n"), "{text}");
        assert!(
            sample(&text, "offers_received_total").is_some_and(|v| v >= received as f64),
            "{text}"
        );
        assert_eq!(
            sample(&text, "operation_launch_group_total"),
            Some(launches as f64),
            "{text}"
        );
        assert_eq!(
            sample(&text, r#"plan_status{plan="deploy",status="COMPLETE"}"#),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, r#"plan_steps{plan="deploy",status="COMPLETE"}"#),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, r#"tasks{state="TASK_RUNNING"}"#),
            Some(1.0),
            "{text}"
        );
        assert!(
            text.contains("# TYPE offers_process_seconds histogram\n"),
            "{text}"
        );
        assert!(
            sample(&text, "offers_process_seconds_count").is_some_and(|v| v > 0.0),
            "{text}"
        );
        assert!(sample(&text, "is_suppressed").is_some(), "{text}");
    }
}

#[test]
fn api_auth_all_needs_the_token_for_reads_too() {
    let dir = tempfile::tempdir().unwrap();
    let options = r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    service.extra_args = vec!["--api-auth".into(), "all".into()];
    let api = service.start_with_token("r3ad");
    let auth = "Authorization: Bearer r3ad\r\n";
    for path in [
        "/v1/plans",
        "/v1/pod",
        "/v1/metrics",
        "/v1/state/properties",
    ] {
        assert_eq!(http(&api, "GET", path).0, 401, "{path}");
        assert_eq!(http_with(&api, "GET", path, auth).0, 200, "{path}");
    }
    assert_eq!(http_text(&api, "/metrics").0, 401);
    assert_eq!(
        http_with(&api, "GET", "/v1/plans", "Authorization: Bearer nope\r\n").0,
        401
    );
    let (status, body) = http_with(&api, "POST", "/v1/plans/deploy/interrupt", auth);
    assert_eq!(status, 200, "{body}");

    // Without a token, `--api-auth all` is refused at start.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["scheduler", "run", "--api-auth", "all", "--state-dir"])
        .arg(dir.path().join("other"))
        .env_remove("STROM_SCHEDULER_TOKEN")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("STROM_SCHEDULER_TOKEN"));
}
