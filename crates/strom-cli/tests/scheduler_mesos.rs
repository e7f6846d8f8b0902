//! `strom scheduler run --engine mesos --master URL` against a scripted Mesos master
//! (`strom_testkit::mesos_master`, the v1 scheduler API's documented wire format; no real
//! master runs here, and no broker process is started: the master reports the task RUNNING
//! with a passing readiness check). The framework id the master assigns is stored and served
//! by `/v1/state/frameworkId`; the 1-broker deploy completes through ACCEPT and status
//! updates; a scheduler killed with SIGKILL resubscribes with the stored id, reconciles the
//! task and launches nothing again; `pod restart` sends KILL, then REVIVE once it is gone.

mod common;

use std::time::Duration;

use common::service::*;
use common::wait_until;
use serde_json::{json, Value};
use strom_testkit::mesos_master::{ScriptedMaster, NEW_FRAMEWORK_ID};

const LIMIT: Duration = Duration::from_secs(20);

fn offer(id: &str) -> Value {
    let scalar = |name: &str, value: f64| {
        json!({"name": name, "type": "SCALAR", "scalar": {"value": value},
               "allocation_info": {"role": "kafka-role"}})
    };
    json!({"type": "OFFERS", "offers": {"offers": [{
        "id": {"value": id},
        "framework_id": {"value": NEW_FRAMEWORK_ID},
        "agent_id": {"value": "agent-S7"},
        "hostname": "127.0.0.1",
        "resources": [
            scalar("cpus", 2.0),
            scalar("mem", 2048.0),
            scalar("disk", 1000.0),
            {"name": "ports", "type": "RANGES", "allocation_info": {"role": "kafka-role"},
             "ranges": {"range": [{"begin": 31000, "end": 31010}]}},
        ],
    }]}})
}

fn running(task_id: &str, uuid: Option<&str>) -> Value {
    let mut status = json!({
        "task_id": {"value": task_id}, "agent_id": {"value": "agent-S7"},
        "state": "TASK_RUNNING",
        "check_status": {"type": "COMMAND", "command": {"exit_code": 0}},
    });
    if let Some(uuid) = uuid {
        status["uuid"] = json!(uuid);
    }
    json!({"type": "UPDATE", "update": {"status": status}})
}

#[test]
fn deploys_through_a_mesos_master_and_resubscribes_after_kill_9() {
    let master = ScriptedMaster::start(15.0);
    let dir = tempfile::tempdir().unwrap();
    // A secret by reference: no --secret-store with Mesos (the agents resolve it).
    let options = r#"{"brokers":{"count":1,"cpus":0.5,"mem":512,"disk":100,
        "secrets":{"sasl":{"secret":"kafka/sasl","env_key":"SASL_PASSWORD"}}}}"#;
    let mut service = Service::new(dir.path(), options);
    service.extra_args = vec![
        "--engine".into(),
        "mesos".into(),
        "--master".into(),
        master.url(),
    ];
    let api = service.start();
    wait_until("the framework id stored", LIMIT, || {
        http(&api, "GET", "/v1/state/frameworkId") == (200, json!([NEW_FRAMEWORK_ID]))
    });
    let subscribe = &master.subscribes()[0];
    assert_eq!(subscribe["subscribe"]["framework_info"]["name"], "kafka");
    assert_eq!(
        subscribe["subscribe"]["framework_info"]["failover_timeout"],
        1_209_600.0
    );

    assert!(master.send(offer("offer-1")));
    wait_until("ACCEPT", LIMIT, || !master.calls_of("ACCEPT").is_empty());
    let accept = &master.calls_of("ACCEPT")[0].body;
    let operations = accept["accept"]["operations"].as_array().unwrap();
    let kinds: Vec<&str> = operations
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["RESERVE", "CREATE", "LAUNCH_GROUP"]);
    let task = &operations[2]["launch_group"]["task_group"]["tasks"][0];
    let task_id = task["task_id"]["value"].as_str().unwrap().to_string();
    let command = task["command"]["value"].as_str().unwrap();
    assert!(command.contains("broker --config"), "{command}");
    let variables = task["command"]["environment"]["variables"]
        .as_array()
        .unwrap();
    let secret = variables
        .iter()
        .find(|v| v["name"] == "SASL_PASSWORD")
        .expect("the secret variable");
    assert_eq!(
        secret,
        &json!({"name": "SASL_PASSWORD", "type": "SECRET",
                "secret": {"type": "REFERENCE", "reference": {"name": "kafka/sasl"}}})
    );

    assert!(master.send(running(&task_id, Some("dXVpZC0x"))));
    wait_until("deploy COMPLETE", LIMIT, || {
        http(&api, "GET", "/v1/plans/deploy").1["status"] == "COMPLETE"
    });
    wait_until("ACKNOWLEDGE", LIMIT, || {
        master
            .calls_of("ACKNOWLEDGE")
            .iter()
            .any(|c| c.body["acknowledge"]["uuid"] == "dXVpZC0x")
    });

    service.kill_scheduler();
    let api = service.start();
    wait_until("a second SUBSCRIBE", LIMIT, || {
        master.subscribes().len() == 2
    });
    assert_eq!(
        master.subscribes()[1]["subscribe"]["framework_info"]["id"]["value"],
        NEW_FRAMEWORK_ID
    );
    wait_until("RECONCILE", LIMIT, || {
        !master.calls_of("RECONCILE").is_empty()
    });
    let reconcile = &master.calls_of("RECONCILE")[0];
    assert_eq!(reconcile.stream_id.as_deref(), Some("stream-2"));
    assert_eq!(
        reconcile.body["reconcile"]["tasks"][0]["task_id"]["value"],
        task_id.as_str()
    );
    assert!(master.send(running(&task_id, None)));
    assert!(master.send(offer("offer-2")));
    wait_until("the idle offer declined", LIMIT, || {
        !master.calls_of("DECLINE").is_empty()
    });
    assert_eq!(
        http(&api, "GET", "/v1/plans/deploy").1["status"],
        "COMPLETE"
    );
    assert_eq!(master.calls_of("ACCEPT").len(), 1, "nothing launched twice");

    // `pod restart` kills the task through the master; once it is gone the scheduler asks for
    // offers again and relaunches it on the same reservations.
    let revives = master.calls_of("REVIVE").len();
    let (status, _) = http(&api, "POST", "/v1/pod/kafka-0/restart");
    assert_eq!(status, 200);
    wait_until("KILL", LIMIT, || !master.calls_of("KILL").is_empty());
    let kill = &master.calls_of("KILL")[0].body["kill"];
    assert_eq!(kill["task_id"]["value"], task_id.as_str());
    assert_eq!(kill["agent_id"]["value"], "agent-S7");
    let killed = json!({"type": "UPDATE", "update": {"status": {
        "task_id": {"value": task_id}, "agent_id": {"value": "agent-S7"},
        "state": "TASK_KILLED", "uuid": "dXVpZC0y"}}});
    assert!(master.send(killed));
    wait_until("REVIVE", LIMIT, || {
        master.calls_of("REVIVE").len() > revives
    });
    assert!(master
        .calls_of("ACKNOWLEDGE")
        .iter()
        .any(|c| c.body["acknowledge"]["uuid"] == "dXVpZC0y"));
}
