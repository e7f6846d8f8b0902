//! Secrets on the Mesos engine against the scripted master (`strom_testkit::mesos_master`):
//! the LAUNCH_GROUP's task carries each env-key secret as an `environment.variables[]` entry of
//! type SECRET and each file secret as a read-only SECRET `container.volumes[]` entry, all by
//! REFERENCE to the secret's path, never a value (the scheduler has none: the agent's secret
//! resolver has them); and an engine serving a service outside the secrets' namespace keeps
//! the launch from leaving (RESERVE and CREATE still go) and reports TASK_ERROR naming the
//! secret and the rule, which the deploy step shows. Every wait is bounded.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strom_scheduler::engine::drive_once;
use strom_scheduler::engine::mesos::session::SessionConfig;
use strom_scheduler::engine::mesos::wire::FrameworkSettings;
use strom_scheduler::engine::mesos::{MesosConfig, MesosEngine};
use strom_scheduler::file_store::FilePersister;
use strom_scheduler::plan::Status;
use strom_scheduler::scheduler::{Scheduler, SchedulerConfig};
use strom_scheduler::spec::kafka::render_kafka_service;
use strom_scheduler::spec::ServiceSpec;
use strom_scheduler::task::TaskState;
use strom_testkit::mesos_master::{wait_until, ScriptedMaster, NEW_FRAMEWORK_ID};

const LIMIT: Duration = Duration::from_secs(10);

fn spec() -> ServiceSpec {
    let env: BTreeMap<String, String> = [
        ("STROM_BIN", "/opt/strom/bin/strom"),
        ("KAFKA_ZOOKEEPER_URI", "zk-1.zk:2181/dcos-service-kafka"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let options = r#"{"service": {"name": "/prod/kafka"},
        "brokers": {"count": 1, "cpus": 1, "mem": 1024, "disk": 5000,
          "secrets": {
            "sasl-env": {"secret": "prod/kafka/sasl", "env_key": "SASL_PASSWORD"},
            "sasl-file": {"secret": "prod/kafka/sasl", "file": "sasl/password"},
            "keytab": {"secret": "prod/__dcos_base64__keytab", "file": "kafka.keytab"}}}}"#;
    render_kafka_service(options, &env).expect("renders").spec
}

struct Service {
    scheduler: Scheduler<FilePersister>,
    engine: MesosEngine,
    started: Instant,
}

impl Service {
    /// A scheduler for `spec()` whose engine subscribes as the framework `framework_name`.
    fn start(dir: &Path, master: &ScriptedMaster, framework_name: &str) -> Service {
        let spec = spec();
        let store = FilePersister::open(dir).expect("store opens");
        let config = SchedulerConfig::for_service(&spec.name);
        let (scheduler, _) =
            Scheduler::new(store, &spec, config.clone(), Box::new(uuid::Uuid::new_v4))
                .expect("accepted");
        let mut engine = MesosEngine::new(MesosConfig {
            master: master.url(),
            settings: FrameworkSettings {
                name: framework_name.to_string(),
                user: "nobody".into(),
                role: config.role.clone(),
                principal: spec.scheduler.principal.clone(),
                failover_timeout_seconds: 1_209_600.0,
            },
            framework_id: None,
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
        }
    }

    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Service) -> bool) {
        wait_until(what, LIMIT, || {
            let now_ms = self.started.elapsed().as_millis() as u64;
            drive_once(&mut self.scheduler, &mut self.engine, now_ms).expect("store works");
            done(self)
        });
    }

    /// Subscribes, sends one offer and returns the ACCEPT's operations.
    fn accept(&mut self, master: &ScriptedMaster) -> Vec<Value> {
        self.until("the framework id persisted", |s| {
            s.scheduler.framework_id().unwrap().as_deref() == Some(NEW_FRAMEWORK_ID)
        });
        assert!(master.send(offer("offer-1")));
        self.until("ACCEPT", |_| !master.calls_of("ACCEPT").is_empty());
        let accept = master.calls_of("ACCEPT").remove(0);
        accept.body["accept"]["operations"]
            .as_array()
            .expect("operations")
            .clone()
    }
}

fn offer(id: &str) -> Value {
    let scalar = |name: &str, value: f64| {
        json!({"name": name, "type": "SCALAR", "scalar": {"value": value},
               "allocation_info": {"role": "prod__kafka-role"}})
    };
    json!({"type": "OFFERS", "offers": {"offers": [{
        "id": {"value": id},
        "framework_id": {"value": NEW_FRAMEWORK_ID},
        "agent_id": {"value": "agent-S1"},
        "hostname": "agent-1.example",
        "resources": [
            scalar("cpus", 4.0),
            scalar("mem", 8192.0),
            scalar("disk", 20000.0),
            {"name": "ports", "type": "RANGES", "allocation_info": {"role": "prod__kafka-role"},
             "ranges": {"range": [{"begin": 31000, "end": 31100}]}},
        ],
    }]}})
}

/// Every `secret` object anywhere in `value`.
fn secrets_in<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "secret" {
                    out.push(inner);
                }
                secrets_in(inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| secrets_in(i, out)),
        _ => {}
    }
}

fn reference(path: &str) -> Value {
    json!({"type": "REFERENCE", "reference": {"name": path}})
}

#[test]
fn launch_group_carries_secret_references_and_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let master = ScriptedMaster::start(15.0);
    let mut service = Service::start(dir.path(), &master, "/prod/kafka");
    let operations = service.accept(&master);
    let kinds: Vec<&str> = operations
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["RESERVE", "CREATE", "LAUNCH_GROUP"]);
    let group = &operations[2]["launch_group"];
    let task = &group["task_group"]["tasks"][0];
    assert_eq!(task["name"], "kafka-0-broker");

    // The env-key secret: one SECRET variable by reference, no `value` beside it.
    let variables = task["command"]["environment"]["variables"]
        .as_array()
        .unwrap();
    let secret_vars: Vec<&Value> = variables
        .iter()
        .filter(|v| v["name"] == "SASL_PASSWORD")
        .collect();
    assert_eq!(secret_vars.len(), 1, "{variables:?}");
    let var = secret_vars[0].as_object().unwrap();
    assert_eq!(var["type"], "SECRET");
    assert_eq!(var["secret"], reference("prod/kafka/sasl"));
    assert!(!var.contains_key("value"), "{var:?}");
    assert_eq!(var.len(), 3, "name, type, secret only: {var:?}");
    // Only the task's own command gets it: checks run without the secret.
    for check in [
        &task["check"]["command"]["command"]["environment"],
        &task["health_check"]["command"]["environment"],
    ] {
        let names: Vec<&Value> = check["variables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| &v["name"])
            .collect();
        assert!(!names.contains(&&json!("SASL_PASSWORD")), "{check}");
    }

    // The file secrets: read-only SECRET volumes at the sandbox-relative paths, next to the
    // pod's persistent volume.
    let container = &task["container"];
    assert_eq!(container["type"], "MESOS");
    let volumes = container["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 3, "{volumes:?}");
    assert_eq!(volumes[0]["source"]["type"], "SANDBOX_PATH");
    let secret_volume = |path: &str| {
        volumes
            .iter()
            .find(|v| v["container_path"] == path)
            .unwrap_or_else(|| panic!("no volume at {path}: {volumes:?}"))
    };
    for (path, secret) in [
        ("sasl/password", "prod/kafka/sasl"),
        ("kafka.keytab", "prod/__dcos_base64__keytab"),
    ] {
        let volume = secret_volume(path);
        assert_eq!(volume["mode"], "RO");
        assert_eq!(volume["source"]["type"], "SECRET");
        assert_eq!(volume["source"]["secret"], reference(secret));
        assert_eq!(volume.as_object().unwrap().len(), 3, "{volume}");
        assert_eq!(volume["source"].as_object().unwrap().len(), 2, "{volume}");
    }

    // Nothing anywhere in what was sent is a secret by value.
    let mut found = Vec::new();
    let calls = master.calls();
    for call in &calls {
        secrets_in(&call.body, &mut found);
    }
    assert_eq!(found.len(), 3, "{found:?}");
    for secret in found {
        assert_eq!(secret["type"], "REFERENCE", "{secret}");
        assert!(secret.get("value").is_none(), "{secret}");
    }
    // The executor is not handed the secrets.
    assert!(group["executor"].get("command").is_none());
}

#[test]
fn a_secret_outside_the_service_namespace_never_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let master = ScriptedMaster::start(15.0);
    // The framework is `/dev/kafka`: `prod/...` is not its to read.
    let mut service = Service::start(dir.path(), &master, "/dev/kafka");
    let operations = service.accept(&master);
    let kinds: Vec<&str> = operations
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["RESERVE", "CREATE"],
        "the launch is kept back, the reservations go"
    );
    service.until("TASK_ERROR recorded", |s| {
        s.scheduler.tasks().values().any(|r| {
            r.status
                .as_ref()
                .is_some_and(|st| st.state == TaskState::Error)
        })
    });
    let record = service.scheduler.tasks().values().next().unwrap().clone();
    let message = &record.status.as_ref().unwrap().message;
    assert!(
        // The pod's secrets in name order: `keytab` is the first refused.
        message
            .contains("service \"/dev/kafka\" may not read secret \"prod/__dcos_base64__keytab\""),
        "{message}"
    );
    assert!(
        message.contains("a service reads only secrets whose namespace is its own path"),
        "{message}"
    );
    // The relaunch in place, on the next offer of the reservations (what RESERVE reserved,
    // the disk now the volume CREATE made), is refused the same way, and the step waits out
    // the crash-loop back-off saying why.
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
    let mut back = offer("offer-2");
    back["offers"]["offers"][0]["resources"] = Value::Array(resources);
    assert!(master.send(back));
    service.until("the step delayed, naming the secret", |s| {
        let plan = s.scheduler.plan("deploy").unwrap();
        let step = &plan.phases[0].steps[0];
        step.status == Status::Delayed && step.message.contains("may not read secret")
    });
    assert_eq!(master.calls_of("ACCEPT").len(), 2);
    assert_ne!(
        service.scheduler.plan("deploy").unwrap().status(),
        Status::Complete
    );
    assert!(master
        .calls()
        .iter()
        .all(|c| c.body.to_string().find("LAUNCH_GROUP").is_none()));
}
