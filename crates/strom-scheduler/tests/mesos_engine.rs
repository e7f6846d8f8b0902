//! The Mesos engine against a scripted master (`strom_testkit::mesos_master`) speaking the v1 scheduler
//! API's documented wire format: SUBSCRIBE, a 1-broker deploy through ACCEPT with RESERVE,
//! CREATE and LAUNCH_GROUP, status updates (acknowledged with their uuid) driving the deploy
//! plan to COMPLETE, SUPPRESS and long DECLINEs when idle, resubscription with the persisted
//! framework id after a dropped stream and after a scheduler restart (RECONCILE each time, no
//! second launch), the heartbeat watchdog, and hostile bytes on the stream. No real Mesos
//! master runs here; readiness comes from the task's `check` results in status updates, the
//! broker process itself is not started. Every wait is bounded.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strom_scheduler::engine::mesos::session::SessionConfig;
use strom_scheduler::engine::mesos::wire::FrameworkSettings;
use strom_scheduler::engine::mesos::{MesosConfig, MesosEngine};
use strom_scheduler::engine::{drive_once, Engine};
use strom_scheduler::file_store::FilePersister;
use strom_scheduler::plan::Status;
use strom_scheduler::scheduler::{Scheduler, SchedulerConfig};
use strom_scheduler::spec::kafka::render_kafka_service;
use strom_scheduler::spec::ServiceSpec;
use strom_testkit::mesos_master::{
    start_redirecting, wait_until, ScriptedMaster, NEW_FRAMEWORK_ID,
};

const LIMIT: Duration = Duration::from_secs(10);

fn spec() -> ServiceSpec {
    let env: BTreeMap<String, String> = [
        ("STROM_BIN", "/opt/strom/bin/strom"),
        ("KAFKA_ZOOKEEPER_URI", "zk-1.zk:2181/dcos-service-kafka"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let options = r#"{"brokers":{"count":1,"cpus":1,"mem":1024,"disk":5000}}"#;
    render_kafka_service(options, &env).expect("renders").spec
}

struct Service {
    scheduler: Scheduler<FilePersister>,
    engine: MesosEngine,
    started: Instant,
    /// Whether a round reported the teardown.
    torn_down: bool,
}

impl Service {
    fn start(dir: &Path, master: &ScriptedMaster) -> Service {
        Service::start_at(dir, &master.url())
    }

    fn start_at(dir: &Path, master_url: &str) -> Service {
        let spec = spec();
        let store = FilePersister::open(dir).expect("store opens");
        let config = SchedulerConfig::for_service(&spec.name);
        let (scheduler, _) =
            Scheduler::new(store, &spec, config.clone(), Box::new(uuid::Uuid::new_v4))
                .expect("accepted");
        let mut engine = MesosEngine::new(MesosConfig {
            master: master_url.to_string(),
            settings: FrameworkSettings {
                name: spec.name.clone(),
                user: "nobody".into(),
                role: config.role.clone(),
                principal: spec.scheduler.principal.clone(),
                failover_timeout_seconds: 1_209_600.0,
            },
            framework_id: scheduler.framework_id().expect("store reads"),
            session: SessionConfig {
                backoff_min_ms: 50,
                backoff_max_ms: 200,
                offer_call_interval_ms: 100,
                ..SessionConfig::default()
            },
            max_record_bytes: 1 << 20,
        })
        .expect("engine starts");
        engine.set_spec(&spec);
        Service {
            scheduler,
            engine,
            started: Instant::now(),
            torn_down: false,
        }
    }

    fn drive(&mut self) {
        let now_ms = self.started.elapsed().as_millis() as u64;
        self.torn_down |=
            drive_once(&mut self.scheduler, &mut self.engine, now_ms).expect("store works");
    }

    /// Drives until `done`, bounded by [`LIMIT`].
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Service) -> bool) {
        wait_until(what, LIMIT, || {
            self.drive();
            done(self)
        });
    }

    fn deploy_status(&self) -> Status {
        self.scheduler.plan("deploy").expect("deploy plan").status()
    }
}

fn offer(id: &str) -> Value {
    let scalar = |name: &str, value: f64| {
        json!({"name": name, "type": "SCALAR", "scalar": {"value": value},
               "allocation_info": {"role": "kafka-role"}})
    };
    json!({"type": "OFFERS", "offers": {"offers": [{
        "id": {"value": id},
        "framework_id": {"value": NEW_FRAMEWORK_ID},
        "agent_id": {"value": "agent-S1"},
        "hostname": "agent-1.example",
        "url": {"scheme": "http", "address": {"hostname": "agent-1.example", "ip": "10.0.0.1",
                                              "port": 5051}, "path": "/slave(1)"},
        "domain": {"fault_domain": {"region": {"name": "region-1"}, "zone": {"name": "zone-a"}}},
        "resources": [
            scalar("cpus", 4.0),
            scalar("mem", 8192.0),
            scalar("disk", 20000.0),
            {"name": "ports", "type": "RANGES", "allocation_info": {"role": "kafka-role"},
             "ranges": {"range": [{"begin": 31000, "end": 31100}]}},
        ],
        "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}],
    }]}})
}

fn update(task_id: &str, state: &str, uuid: Option<&str>, check_exit: Option<i32>) -> Value {
    let mut status = json!({
        "task_id": {"value": task_id},
        "agent_id": {"value": "agent-S1"},
        "state": state,
        "source": "SOURCE_EXECUTOR",
    });
    if let Some(uuid) = uuid {
        status["uuid"] = json!(uuid);
    }
    if let Some(code) = check_exit {
        status["check_status"] = json!({"type": "COMMAND", "command": {"exit_code": code}});
        status["reason"] = json!("REASON_TASK_CHECK_STATUS_UPDATED");
    }
    json!({"type": "UPDATE", "update": {"status": status}})
}

fn reserved_by_us(resource: &Value) -> bool {
    let reservation = &resource["reservations"][0];
    reservation["type"] == "DYNAMIC"
        && reservation["role"] == "kafka-role"
        && reservation["principal"] == "kafka-principal"
        && reservation["labels"]["labels"][0]["key"] == "resource_id"
        && reservation["labels"]["labels"][0]["value"]
            .as_str()
            .is_some_and(|v| v.parse::<uuid::Uuid>().is_ok())
        && resource["allocation_info"]["role"] == "kafka-role"
}

/// Deploys the one broker; returns its task id.
fn deploy(service: &mut Service, master: &ScriptedMaster) -> String {
    service.until("the framework id persisted", |s| {
        s.scheduler.framework_id().unwrap().as_deref() == Some(NEW_FRAMEWORK_ID)
    });
    let subscribe = &master.subscribes()[0];
    let info = &subscribe["subscribe"]["framework_info"];
    assert_eq!(info["roles"], json!(["kafka-role"]));
    assert_eq!(info["principal"], "kafka-principal");
    assert_eq!(info["failover_timeout"], 1_209_600.0);
    assert!(
        info.get("id").is_none(),
        "a new framework has no id: {info}"
    );
    assert_eq!(subscribe["subscribe"]["force"], true);

    assert!(master.send(offer("offer-1")));
    service.until("ACCEPT", |_| !master.calls_of("ACCEPT").is_empty());
    let accept = master.calls_of("ACCEPT").remove(0);
    assert_eq!(accept.stream_id.as_deref(), Some("stream-1"));
    assert_eq!(accept.body["framework_id"]["value"], NEW_FRAMEWORK_ID);
    let body = &accept.body["accept"];
    assert_eq!(body["offer_ids"], json!([{"value": "offer-1"}]));
    let operations = body["operations"].as_array().unwrap();
    let kinds: Vec<&str> = operations
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["RESERVE", "CREATE", "LAUNCH_GROUP"], "{body}");

    let reserved = operations[0]["reserve"]["resources"].as_array().unwrap();
    let amount = |name: &str| {
        reserved
            .iter()
            .filter(|r| r["name"] == name)
            .map(|r| r["scalar"]["value"].as_f64().unwrap())
            .sum::<f64>()
    };
    assert_eq!(
        (amount("cpus"), amount("mem"), amount("disk")),
        (1.0, 1024.0, 5000.0)
    );
    assert!(reserved.iter().all(reserved_by_us), "{reserved:?}");
    let ports: Vec<&Value> = reserved.iter().filter(|r| r["name"] == "ports").collect();
    assert_eq!(ports.len(), 1);
    let port = ports[0]["ranges"]["range"][0]["begin"].as_u64().unwrap();
    assert!((31000..=31100).contains(&port), "{port}");

    let volume = &operations[1]["create"]["volumes"][0];
    assert!(reserved_by_us(volume), "{volume}");
    assert_eq!(
        volume["disk"]["volume"],
        json!({"mode": "RW", "container_path": "kafka-broker-data"})
    );
    assert!(volume["disk"]["persistence"]["id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(
        volume["disk"]["persistence"]["principal"],
        "kafka-principal"
    );
    assert!(
        volume["disk"].get("source").is_none(),
        "ROOT disk: {volume}"
    );

    let group = &operations[2]["launch_group"];
    let executor = &group["executor"];
    assert_eq!(executor["type"], "DEFAULT");
    assert_eq!(executor["framework_id"]["value"], NEW_FRAMEWORK_ID);
    let executor_resources = executor["resources"].as_array().unwrap();
    assert!(executor_resources.iter().all(reserved_by_us));
    assert!(executor_resources
        .iter()
        .any(|r| r["disk"]["persistence"] == volume["disk"]["persistence"]));
    let task = &group["task_group"]["tasks"][0];
    assert_eq!(task["name"], "kafka-0-broker");
    assert_eq!(task["agent_id"]["value"], "agent-S1");
    let task_id = task["task_id"]["value"].as_str().unwrap().to_string();
    assert!(task_id.starts_with("kafka-0-broker__"), "{task_id}");
    // Task and executor together use exactly what was reserved.
    let total = |name: &str| {
        task["resources"]
            .as_array()
            .unwrap()
            .iter()
            .chain(executor_resources)
            .filter(|r| r["name"] == name)
            .map(|r| r["scalar"]["value"].as_f64().unwrap_or(0.0))
            .sum::<f64>()
    };
    assert_eq!((total("cpus"), total("mem")), (1.0, 1024.0));
    let command = task["command"]["value"].as_str().unwrap();
    assert!(
        command.contains("kafka-config/server.properties"),
        "{command}"
    );
    assert!(
        command.ends_with("broker --config kafka-config/server.properties"),
        "{command}"
    );
    let variables = task["command"]["environment"]["variables"]
        .as_array()
        .unwrap();
    assert!(variables.iter().any(|v| v["name"] == "KAFKA_BROKER_PORT"
        && v["value"].as_str() == Some(port.to_string().as_str())));
    assert_eq!(task["check"]["type"], "COMMAND");
    assert!(task["check"]["command"]["command"]["value"]
        .as_str()
        .unwrap()
        .contains("probe-broker"));
    assert_eq!(task["health_check"]["type"], "COMMAND");
    assert_eq!(
        task["container"]["volumes"][0]["source"]["sandbox_path"],
        json!({"type": "PARENT", "path": "kafka-broker-data"})
    );

    // STARTING, RUNNING (not ready yet), then the readiness check passes.
    assert!(master.send(update(&task_id, "TASK_STARTING", Some("dXVpZC0x"), None)));
    assert!(master.send(update(&task_id, "TASK_RUNNING", Some("dXVpZC0y"), None)));
    service.until("two acknowledgements", |_| {
        master.calls_of("ACKNOWLEDGE").len() == 2
    });
    assert_ne!(service.deploy_status(), Status::Complete, "not ready yet");
    assert!(master.send(update(&task_id, "TASK_RUNNING", Some("dXVpZC0z"), Some(0))));
    service.until("deploy COMPLETE", |s| s.deploy_status() == Status::Complete);
    service.until("third acknowledgement", |_| {
        master.calls_of("ACKNOWLEDGE").len() == 3
    });
    let acks = master.calls_of("ACKNOWLEDGE");
    let uuids: Vec<&Value> = acks
        .iter()
        .map(|a| &a.body["acknowledge"]["uuid"])
        .collect();
    assert_eq!(
        uuids,
        [&json!("dXVpZC0x"), &json!("dXVpZC0y"), &json!("dXVpZC0z")]
    );
    assert_eq!(
        acks[0].body["acknowledge"]["task_id"]["value"],
        task_id.as_str()
    );
    assert_eq!(acks[0].body["acknowledge"]["agent_id"]["value"], "agent-S1");
    task_id
}

#[test]
fn deploys_one_broker_then_suppresses_and_declines_long() {
    let dir = tempfile::tempdir().unwrap();
    let master = ScriptedMaster::start(15.0);
    let mut service = Service::start(dir.path(), &master);
    deploy(&mut service, &master);
    service.until("SUPPRESS", |_| !master.calls_of("SUPPRESS").is_empty());
    service.until("the last offer call a SUPPRESS", |_| {
        let calls = master.calls();
        let last = calls
            .iter()
            .rfind(|c| c.body["type"] == "REVIVE" || c.body["type"] == "SUPPRESS");
        last.is_some_and(|c| c.body["type"] == "SUPPRESS")
    });
    let suppress = master.calls_of("SUPPRESS").pop().unwrap();
    assert_eq!(suppress.body["suppress"]["roles"], json!(["kafka-role"]));
    // Offers while idle are declined for long.
    assert!(master.send(offer("offer-2")));
    service.until("DECLINE", |_| !master.calls_of("DECLINE").is_empty());
    let decline = master.calls_of("DECLINE").remove(0);
    assert_eq!(
        decline.body["decline"]["offer_ids"],
        json!([{"value": "offer-2"}])
    );
    assert_eq!(decline.body["decline"]["filters"]["refuse_seconds"], 3600.0);
    // Every call so far carried the stream id.
    assert!(master
        .calls()
        .iter()
        .all(|c| c.stream_id.as_deref() == Some("stream-1")));
    assert_eq!(master.calls_of("ACCEPT").len(), 1);
}

#[test]
fn resubscribes_with_the_stored_framework_id_after_a_dropped_stream_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let master = ScriptedMaster::start(15.0);
    let mut service = Service::start(dir.path(), &master);
    let task_id = deploy(&mut service, &master);

    // The stream breaks: resubscribe as the same framework, without force, then reconcile.
    master.drop_stream();
    service.until("a second SUBSCRIBE", |_| master.subscribes().len() == 2);
    let again = &master.subscribes()[1];
    assert_eq!(
        again["subscribe"]["framework_info"]["id"]["value"],
        NEW_FRAMEWORK_ID
    );
    assert_eq!(again["framework_id"]["value"], NEW_FRAMEWORK_ID);
    assert_eq!(again["subscribe"]["force"], false);
    service.until("RECONCILE", |_| !master.calls_of("RECONCILE").is_empty());
    let reconcile = master.calls_of("RECONCILE").remove(0);
    assert_eq!(reconcile.stream_id.as_deref(), Some("stream-2"));
    assert_eq!(
        reconcile.body["reconcile"]["tasks"],
        json!([{"task_id": {"value": task_id}, "agent_id": {"value": "agent-S1"}}])
    );
    // The master answers the reconciliation (no uuid: nothing to acknowledge).
    let acks_before = master.calls_of("ACKNOWLEDGE").len();
    assert!(master.send(update(&task_id, "TASK_RUNNING", None, Some(0))));
    service.until("reconciled", |s| !s.scheduler.is_reconciling());

    // The scheduler restarts: a new process subscribes with the id from the store.
    drop(service);
    let mut service = Service::start(dir.path(), &master);
    service.until("a third SUBSCRIBE", |_| master.subscribes().len() == 3);
    let third = &master.subscribes()[2];
    assert_eq!(
        third["subscribe"]["framework_info"]["id"]["value"],
        NEW_FRAMEWORK_ID
    );
    assert_eq!(
        third["subscribe"]["force"], true,
        "first subscription of this process"
    );
    service.until("a second RECONCILE", |_| {
        master.calls_of("RECONCILE").len() == 2
    });
    assert_eq!(
        master.calls_of("RECONCILE")[1].stream_id.as_deref(),
        Some("stream-3")
    );
    assert!(master.send(update(&task_id, "TASK_RUNNING", None, Some(0))));
    service.until("reconciled again", |s| !s.scheduler.is_reconciling());
    assert!(master.send(offer("offer-3")));
    service.until("the offer declined", |_| {
        !master.calls_of("DECLINE").is_empty()
    });
    assert_eq!(service.deploy_status(), Status::Complete);
    assert_eq!(
        master.calls_of("ACCEPT").len(),
        1,
        "the running broker is not launched again"
    );
    assert_eq!(master.calls_of("ACKNOWLEDGE").len(), acks_before);
}

#[test]
fn heartbeat_loss_reconnects_and_heartbeats_keep_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let master = ScriptedMaster::start(0.1);
    let mut service = Service::start(dir.path(), &master);
    service.until("subscribed", |s| s.engine.is_subscribed());
    // Heartbeats every 50 ms for 1.5 s: one stream.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        assert!(master.send(json!({"type": "HEARTBEAT"})));
        service.drive();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(master.subscribes().len(), 1);
    assert_eq!(master.streams_opened(), 1);
    // Silence: 5 intervals (0.5 s) later the engine gives up the stream and resubscribes.
    let silent = Instant::now();
    service.until("a resubscription", |_| master.subscribes().len() == 2);
    let waited = silent.elapsed();
    assert!(waited >= Duration::from_millis(450), "{waited:?}");
    assert_eq!(
        master.subscribes()[1]["subscribe"]["framework_info"]["id"]["value"],
        NEW_FRAMEWORK_ID
    );
}

#[test]
fn hostile_streams_are_dropped_and_resubscribed() {
    let dir = tempfile::tempdir().unwrap();
    let master = ScriptedMaster::start(15.0);
    let mut service = Service::start(dir.path(), &master);
    let hostile: [&[u8]; 5] = [
        b"12x\n{}",
        b"99999999999999999999\n",
        b"9\n{not json",
        b"13\n{\"type\":true}",
        b"40\n{\"type\":\"OFFERS\",\"offers\":{\"offers\":[1]}}",
    ];
    for (index, bytes) in hostile.iter().enumerate() {
        service.until("subscribed", |s| s.engine.is_subscribed());
        assert!(master.send_raw(bytes));
        service.until("a resubscription", |_| {
            master.subscribes().len() == index + 2
        });
    }
    service.until("subscribed at the end", |s| s.engine.is_subscribed());
    assert!(master.calls_of("ACCEPT").is_empty());
}

#[test]
fn a_non_leading_master_redirects_subscription_and_calls_to_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let leader = ScriptedMaster::start(15.0);
    let standby = start_redirecting(format!("//{}/api/v1/scheduler", leader.address));
    let mut service = Service::start_at(dir.path(), &standby);
    deploy(&mut service, &leader);
    assert_eq!(leader.subscribes().len(), 1);
    // A Location that is no URI: an error and another try, never a panic.
    let dir = tempfile::tempdir().unwrap();
    let other = ScriptedMaster::start(15.0);
    let hostile = start_redirecting(format!("//{}/a path with spaces", other.address));
    let mut service = Service::start_at(dir.path(), &hostile);
    for _ in 0..30 {
        service.drive();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!service.engine.is_subscribed());
    assert!(
        other.subscribes().is_empty(),
        "no request with an invalid path"
    );
}

#[test]
fn uninstall_kills_destroys_unreserves_from_the_offered_reservations_and_tears_down() {
    let dir = tempfile::tempdir().unwrap();
    let master = ScriptedMaster::start(15.0);
    let mut service = Service::start(dir.path(), &master);
    let task_id = deploy(&mut service, &master);
    let accept = master.calls_of("ACCEPT").remove(0).body;
    let operations = accept["accept"]["operations"].as_array().unwrap().clone();

    let now_ms = service.started.elapsed().as_millis() as u64;
    let effects = service.scheduler.uninstall(now_ms).unwrap();
    service.engine.apply(&effects, now_ms);
    service.until("KILL", |_| !master.calls_of("KILL").is_empty());
    let kill = master.calls_of("KILL").remove(0).body;
    assert_eq!(kill["kill"]["task_id"]["value"], task_id.as_str());
    let killed = json!({"type": "UPDATE", "update": {"status": {
        "task_id": {"value": task_id}, "agent_id": {"value": "agent-S1"},
        "state": "TASK_KILLED", "uuid": "a2lsbGVk"}}});
    assert!(master.send(killed));
    service.until("REVIVE for the reservations", |_| {
        !master.calls_of("REVIVE").is_empty()
    });

    // The master offers the reservations back: what RESERVE reserved (the disk now being the
    // volume CREATE made), as Mesos offers a framework its own reserved resources.
    let mut resources: Vec<Value> = operations[0]["reserve"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] != "disk")
        .cloned()
        .collect();
    resources.extend(
        operations[1]["create"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    let mut back = offer("offer-9");
    back["offers"]["offers"][0]["resources"] = Value::Array(resources);
    assert!(master.send(back));
    service.until("DESTROY and UNRESERVE", |_| {
        master.calls_of("ACCEPT").len() == 2
    });
    let release = master.calls_of("ACCEPT").remove(1).body;
    let released = release["accept"]["operations"].as_array().unwrap();
    let kinds: Vec<&str> = released
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["DESTROY", "UNRESERVE"], "{release}");
    assert_eq!(
        released[0]["destroy"]["volumes"][0]["disk"]["persistence"],
        operations[1]["create"]["volumes"][0]["disk"]["persistence"]
    );
    let unreserved = released[1]["unreserve"]["resources"].as_array().unwrap();
    assert!(unreserved.iter().all(reserved_by_us));
    let names: std::collections::BTreeSet<&str> = unreserved
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["cpus", "disk", "mem", "ports"].into_iter().collect()
    );

    // Done: the driver reports the teardown, and TEARDOWN left before apply returned.
    service.until("uninstalled", |s| s.torn_down);
    assert_eq!(
        master.calls_of("TEARDOWN").len(),
        1,
        "sent before apply returned"
    );
    assert!(service.scheduler.is_uninstalled());
    let teardown = master.calls_of("TEARDOWN").remove(0);
    assert_eq!(teardown.body["framework_id"]["value"], NEW_FRAMEWORK_ID);
    assert_eq!(teardown.stream_id.as_deref(), Some("stream-1"));
}
