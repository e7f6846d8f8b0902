//! Secrets delivered by the local engine to real task processes: the shipped Kafka spec with
//! `brokers.secrets` (an env secret and a base64 file secret), a stand-in strom binary (a shell
//! script) that checks what it received, the file state store, and a search of everything the
//! scheduler and the engine wrote (state store, engine ledger, task logs, check logs) that must
//! not find a secret's value. An engine serving another service refuses the same task infos
//! (the namespace rule checked again at launch). Every loop is bounded in time.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strom_scheduler::engine::local::{AgentConfig, LocalEngine, LocalEngineConfig};
use strom_scheduler::engine::{drive_once, EngineSecrets};
use strom_scheduler::file_store::FilePersister;
use strom_scheduler::plan::Status;
use strom_scheduler::scheduler::{Scheduler, SchedulerConfig};
use strom_scheduler::secrets::file_store::FileSecretStore;
use strom_scheduler::spec::kafka::render_kafka_service;
use strom_scheduler::spec::ServiceSpec;
use strom_scheduler::task::TaskState;

/// The broker stand-in: it records whether its env secret equals its file secret (the test
/// checks the file against the store, so the env is the secret too), never the value itself.
const FAKE_STROM: &str = r#"#!/bin/sh
case "$1" in
  broker)
    if [ -n "$SASL_PASSWORD" ] && [ "$SASL_PASSWORD" = "$(cat sasl/password)" ]; then
      echo env-matches-file > kafka-broker-data/check
    else
      echo env-differs > kafka-broker-data/check
    fi
    touch ready
    exec sleep 600 ;;
  service) test -f ready ;;
  *) exit 2 ;;
esac
"#;

const PASSWORD: &str = "s3cr3t-Hunter2-value";
/// 0x00 0x01 0x02 0xff 'K' 'E' 'Y' 'T' 'A' 'B', base64-encoded as stored.
const KEYTAB_BASE64: &str = "AAEC/0tFWVRBQg==";
const KEYTAB: &[u8] = &[0, 1, 2, 0xff, b'K', b'E', b'Y', b'T', b'A', b'B'];

fn spec(bin: &Path) -> ServiceSpec {
    let env: BTreeMap<String, String> = [
        ("STROM_BIN", bin.display().to_string()),
        ("KAFKA_ZOOKEEPER_URI", "unused".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let options = r#"{"service": {"name": "/prod/kafka"},
        "brokers": {"count": 2, "cpus": 0.1, "mem": 64, "disk": 10, "kill_grace_period": 1,
          "secrets": {
            "sasl-env": {"secret": "prod/kafka/sasl", "env_key": "SASL_PASSWORD"},
            "sasl-file": {"secret": "prod/kafka/sasl", "file": "sasl/password"},
            "keytab": {"secret": "prod/__dcos_base64__keytab", "file": "kafka.keytab"}}}}"#;
    render_kafka_service(options, &env).expect("renders").spec
}

struct Service {
    scheduler: Scheduler<FilePersister>,
    engine: LocalEngine,
    started: Instant,
}

impl Service {
    fn start(dir: &Path, spec: &ServiceSpec, secrets: Option<EngineSecrets>) -> Service {
        let store = FilePersister::open(&dir.join("state")).expect("store opens");
        let config = SchedulerConfig::for_service(&spec.name);
        let (mut scheduler, _) =
            Scheduler::new(store, spec, config, Box::new(uuid::Uuid::new_v4)).expect("accepted");
        let agents = (0..2)
            .map(|i| AgentConfig {
                id: format!("agent-{i}"),
                hostname: format!("host-{i}"),
                ip: "127.0.0.1".into(),
                zone: Some(format!("zone-{i}")),
                cpus: 1.0,
                mem: 512.0,
                disk: 100.0,
                ports: (41100 + i * 10, 41109 + i * 10),
                mounts: Vec::new(),
            })
            .collect();
        let mut engine = LocalEngine::open(LocalEngineConfig {
            work_dir: dir.join("engine"),
            agents,
            die_with_engine: true,
            check_interval_max_ms: 200,
            secrets,
        })
        .expect("engine opens");
        engine.set_spec(spec);
        let effects = scheduler.subscribed(0);
        strom_scheduler::engine::Engine::apply(&mut engine, &effects, 0);
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
}

fn fake_strom(dir: &Path) -> PathBuf {
    let bin = dir.join("strom");
    std::fs::write(&bin, FAKE_STROM).unwrap();
    std::fs::set_permissions(&bin, PermissionsExt::from_mode(0o755)).unwrap();
    bin
}

fn secret_store(dir: &Path) -> FileSecretStore {
    let store = FileSecretStore::open(&dir.join("secrets")).unwrap();
    store
        .put("prod/kafka/sasl", PASSWORD.as_bytes(), false)
        .unwrap();
    store
        .put(
            "prod/__dcos_base64__keytab",
            KEYTAB_BASE64.as_bytes(),
            false,
        )
        .unwrap();
    store
}

/// Every file under `dir` except the secret store and the delivered secret files.
fn files_to_search(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "secrets" || name == "kafka.keytab" || name == "password" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            files_to_search(&path, out);
        } else if entry.file_type().unwrap().is_file() {
            out.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn secrets_reach_tasks_as_env_and_files_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&fake_strom(dir.path()));
    let store = secret_store(dir.path());
    let access = EngineSecrets {
        store,
        service: spec.name.clone(),
    };
    let mut service = Service::start(dir.path(), &spec, Some(access));
    service.run_until("deploy", Duration::from_secs(30), |s| {
        s.scheduler.plan("deploy").unwrap().status() == Status::Complete
    });
    for name in ["kafka-0-broker", "kafka-1-broker"] {
        let sandbox = service.engine.sandbox(name).unwrap().to_path_buf();
        let check = std::fs::read_to_string(sandbox.join("kafka-broker-data/check")).unwrap();
        assert_eq!(check.trim(), "env-matches-file", "{name}");
        let password = sandbox.join("sasl/password");
        assert_eq!(std::fs::read_to_string(&password).unwrap(), PASSWORD);
        let keytab = sandbox.join("kafka.keytab");
        assert_eq!(std::fs::read(&keytab).unwrap(), KEYTAB, "decoded");
        for file in [&password, &keytab] {
            let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o400, "{}", file.display());
        }
        // The task info names the secrets, not their values.
        let info = &service.scheduler.tasks()[name].info;
        assert_eq!(info.secrets.len(), 3);
        assert!(!info.env.contains_key("SASL_PASSWORD"));
    }
    let pid = service.engine.pids()["kafka-1-broker"];
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        contains(&environ, format!("SASL_PASSWORD={PASSWORD}").as_bytes()),
        "the task process has the env secret"
    );

    // kill -9 a broker: its secret files go with it, the relaunch gets new ones.
    let old_sandbox = service
        .engine
        .sandbox("kafka-1-broker")
        .unwrap()
        .to_path_buf();
    // SAFETY: signalling a process this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    service.run_until("kafka-1 relaunched", Duration::from_secs(30), |s| {
        s.engine
            .pids()
            .get("kafka-1-broker")
            .is_some_and(|&p| p != pid)
            && s.scheduler.plan("recovery").unwrap().status() == Status::Complete
    });
    assert!(!old_sandbox.join("sasl/password").exists());
    assert!(!old_sandbox.join("kafka.keytab").exists());
    assert!(
        old_sandbox.join("stdout").exists(),
        "the rest of the sandbox stays"
    );

    // Nothing the scheduler or the engine wrote holds a value: not the state store, not
    // engine.json, not a task's stdout/stderr or check logs.
    let mut files = Vec::new();
    files_to_search(dir.path(), &mut files);
    assert!(files.iter().any(|f| f.ends_with("engine.json")));
    assert!(files.iter().any(|f| f.ends_with("TaskInfo")), "{files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in [PASSWORD.as_bytes(), KEYTAB_BASE64.as_bytes(), KEYTAB] {
            assert!(
                !contains(&bytes, needle),
                "{} holds a secret value",
                file.display()
            );
        }
    }
    service.engine.kill_all();
}

#[test]
fn an_engine_refuses_secrets_outside_its_service_namespace_and_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&fake_strom(dir.path()));
    let store = secret_store(dir.path());
    // The engine serves `/dev/kafka`: `prod/...` secrets are not its service's to read, so
    // the launch fails at the engine even though the spec passed its own check.
    let access = EngineSecrets {
        store,
        service: "/dev/kafka".into(),
    };
    let mut service = Service::start(dir.path(), &spec, Some(access));
    service.run_until("a refused launch", Duration::from_secs(30), |s| {
        s.scheduler.tasks().values().any(|r| {
            r.status.as_ref().is_some_and(|st| {
                st.state == TaskState::Failed && st.message.contains("may not read secret")
            })
        })
    });
    assert!(service.engine.pids().is_empty(), "nothing runs");
    assert_ne!(
        service.scheduler.plan("deploy").unwrap().status(),
        Status::Complete
    );
    drop(service);

    let dir = tempfile::tempdir().unwrap();
    let spec = self::spec(&fake_strom(dir.path()));
    let mut service = Service::start(dir.path(), &spec, None);
    service.run_until("a launch without a store", Duration::from_secs(30), |s| {
        s.scheduler.tasks().values().any(|r| {
            r.status
                .as_ref()
                .is_some_and(|st| st.message.contains("no secret store"))
        })
    });
    assert!(service.engine.pids().is_empty());
}
