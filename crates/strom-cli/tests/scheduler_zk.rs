//! `strom scheduler run --zookeeper`: the state store in a real ZooKeeper under
//! `/dcos-service-kafka` with the SDK's node names, the brokers sharing that root as their
//! chroot, a second scheduler for the service refused by the lock, a scheduler killed with
//! SIGKILL resuming from ZooKeeper at once (its dead predecessor's lock taken over) without
//! relaunching its brokers, a SIGTERM releasing the lock at once, and `SDK_UNINSTALL` leaving
//! no znode; a configuration update rolling a replicated 3-broker cluster one broker at a time behind the
//! health gate while an `acks=all` producer runs, losing no acknowledged record; and a `pod
//! replace` whose fresh, empty broker re-replicates its partitions and rejoins the ISR; a
//! scheduler whose lock node vanished writing nothing more and exiting 2.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ledger::Ledger;
use common::service::*;
use common::wait_until;
use serde_json::Value;
use strom_scheduler::store::Persister;
use strom_scheduler::zk_store::{ZkPersister, ZkPersisterConfig};
use strom_testkit::zookeeper::ZooKeeper;

fn reader(zk: &ZooKeeper) -> ZkPersister {
    ZkPersister::open_read_only(&ZkPersisterConfig::new(&zk.connect_string(), "kafka"))
        .expect("a read-only view of the store")
}

fn wait_for_exit(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "{what} did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_zookeeper_store_survives_kills_locks_out_a_second_scheduler_and_uninstalls_clean() {
    let zk = ZooKeeper::start();
    let dir = tempfile::tempdir().unwrap();
    let options =
        r#"{"brokers":{"count":2,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2}}"#;
    let mut service = Service::new(dir.path(), options);
    service.extra_args = vec![
        "--zookeeper".into(),
        zk.connect_string(),
        "--zk-session-timeout-ms".into(),
        "4000".into(),
    ];
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(90), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });

    // The SDK's layout, readable by anyone.
    let store = reader(&zk);
    let target = String::from_utf8(store.get("ConfigTarget").unwrap().expect("a target")).unwrap();
    assert!(
        store
            .get(&format!("Configurations/{target}"))
            .unwrap()
            .is_some(),
        "the target's configuration"
    );
    assert_eq!(
        store.children("Tasks").unwrap(),
        ["kafka-0-broker", "kafka-1-broker"]
    );
    for task in ["kafka-0-broker", "kafka-1-broker"] {
        for node in ["TaskInfo", "TaskStatus"] {
            assert!(
                store
                    .get(&format!("Tasks/{task}/{node}"))
                    .unwrap()
                    .is_some(),
                "{task}/{node}"
            );
        }
    }
    assert_eq!(
        store.get("SchemaVersion").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    // The brokers' chroot is the service's root, as DC/OS Kafka's was.
    wait_until("both brokers registered", Duration::from_secs(30), || {
        store.children("brokers/ids").unwrap() == ["0", "1"]
    });
    assert!(
        !dir.path().join("state/store").exists(),
        "no file store beside ZooKeeper"
    );

    // A second scheduler for the same service, even from another state directory, is refused.
    let other = dir.path().join("other");
    let second = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["scheduler", "run", "--zookeeper", &zk.connect_string()])
        .args(["--zk-lock-wait-ms", "1000", "--state-dir"])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("locked by another scheduler"), "{stderr}");

    // kill -9: the next scheduler (same host) takes the dead one's lock at once, without
    // waiting for its session to expire, and adopts both brokers.
    let tasks = [task_id(&api, "kafka-0"), task_id(&api, "kafka-1")];
    let pids = [
        service.pid("kafka-0-broker").expect("kafka-0 runs"),
        service.pid("kafka-1-broker").expect("kafka-1 runs"),
    ];
    service.kill_scheduler();
    let restarted = Instant::now();
    let api = service.start();
    let waited = restarted.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "the dead scheduler's lock did not hold it back (session 4 s): {waited:?}"
    );
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    assert_eq!([task_id(&api, "kafka-0"), task_id(&api, "kafka-1")], tasks);
    assert_eq!(
        [service.pid("kafka-0-broker"), service.pid("kafka-1-broker")],
        [Some(pids[0]), Some(pids[1])],
        "no broker relaunched"
    );

    // SIGTERM releases the lock at once: the next start does not wait for a session timeout.
    let mut child = service.scheduler.take().expect("running");
    // SAFETY: signalling the scheduler this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_for_exit(&mut child, "the scheduler").success());
    let restarted = Instant::now();
    let api = service.start();
    assert!(
        restarted.elapsed() < Duration::from_secs(3),
        "the lock was released: {:?}",
        restarted.elapsed()
    );
    assert_eq!(task_id(&api, "kafka-0"), tasks[0]);
    service.kill_scheduler();

    // SDK_UNINSTALL: no broker, no znode.
    service.start_with_env(&[("SDK_UNINSTALL", "1")]);
    let mut child = service.scheduler.take().expect("started");
    assert!(wait_for_exit(&mut child, "the uninstall").success());
    assert!(broker_processes(&dir.path().join("state")).is_empty());
    assert!(
        !reader(&zk).root_exists().unwrap(),
        "/dcos-service-kafka left"
    );
}

fn running_brokers(api: &str) -> usize {
    let (_, status) = http(api, "GET", "/v1/pod/status");
    status["pods"][0]["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|instance| instance["tasks"][0]["status"] == "TASK_RUNNING")
        .count()
}

fn isr_size(api: &str, topic: &str) -> Option<usize> {
    let (status, description) = http(api, "GET", &format!("/v1/topics/{topic}"));
    (status == 200).then(|| {
        description["partitions"][0]["isr"]
            .as_array()
            .map_or(0, Vec::len)
    })
}

#[test]
fn an_update_rolls_a_replicated_cluster_one_broker_at_a_time_without_losing_acked_records() {
    let zk = ZooKeeper::start();
    let dir = tempfile::tempdir().unwrap();
    let brokers = r#""brokers":{"count":3,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":5}"#;
    let mut service = Service::new(
        dir.path(),
        &format!(r#"{{{brokers},"kafka":{{"min_insync_replicas":2}}}}"#),
    );
    service.die_with_scheduler = true;
    service.extra_args = vec!["--zookeeper".into(), zk.connect_string()];
    let launched = Instant::now();
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(90), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    let deployed = launched.elapsed();
    let (status, body) = http(&api, "PUT", "/v1/topics/rolled?partitions=1&replication=3");
    assert_eq!(status, 200, "{body}");
    wait_until("the ISR is full", Duration::from_secs(30), || {
        isr_size(&api, "rolled") == Some(3)
    });
    let (_, endpoint) = http(&api, "GET", "/v1/endpoints/broker");
    let bootstrap = endpoint["bootstrap_servers"].as_str().unwrap().to_string();

    let ledger = Ledger::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (ledger, stop, bootstrap) = (ledger.clone(), stop.clone(), bootstrap.clone());
        std::thread::spawn(move || {
            ledger.produce_until(
                &bootstrap,
                "rolled",
                stop,
                0,
                &[("message.timeout.ms", "30000")],
            )
        })
    };
    wait_until("a record is acknowledged", Duration::from_secs(20), || {
        ledger.len() > 0
    });
    eprintln!(
        "scheduler run to 3 brokers ready: {deployed:?}; to the first acks=all record \
         acknowledged (RF 3 topic created in between): {:?}",
        launched.elapsed()
    );
    wait_until("records flow", Duration::from_secs(20), || {
        ledger.len() > 100
    });

    let tasks: Vec<String> = (0..3)
        .map(|i| task_id(&api, &format!("kafka-{i}")))
        .collect();
    let update =
        format!(r#"{{{brokers},"kafka":{{"min_insync_replicas":2,"log_retention_hours":100}}}}"#);
    let (status, body) = http_request(&api, "POST", "/v1/update", "", &update);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true, "{body}");

    // Watch the roll: never two brokers down, never the ISR below min.insync.replicas. A
    // sampler notes the longest time without a new acknowledgement (the stall a client sees).
    let roll_started = Instant::now();
    let deadline = roll_started + Duration::from_secs(180);
    let mut fewest_running = 3;
    let mut smallest_isr = 3;
    let rolled = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (ledger, rolled) = (ledger.clone(), rolled.clone());
        std::thread::spawn(move || {
            let mut longest = Duration::ZERO;
            let (mut acked, mut acked_at) = (ledger.len(), Instant::now());
            while !rolled.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(2));
                if ledger.len() != acked {
                    (acked, acked_at) = (ledger.len(), Instant::now());
                }
                longest = longest.max(acked_at.elapsed());
            }
            longest
        })
    };
    loop {
        assert!(Instant::now() < deadline, "the roll did not finish");
        fewest_running = fewest_running.min(running_brokers(&api));
        if let Some(isr) = isr_size(&api, "rolled") {
            smallest_isr = smallest_isr.min(isr);
        }
        let relaunched = (0..3).all(|i| task_id(&api, &format!("kafka-{i}")) != tasks[i]);
        if relaunched && http(&api, "GET", "/v1/plans/deploy").0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    rolled.store(true, Ordering::Relaxed);
    let longest_stall = sampler.join().unwrap();
    eprintln!(
        "rolled 3 brokers in {:?}; fewest running {fewest_running}, smallest ISR \
         {smallest_isr}, longest produce stall {longest_stall:?}",
        roll_started.elapsed()
    );
    assert!(fewest_running >= 2, "two brokers were down at once");
    assert!(smallest_isr >= 2, "the ISR fell to {smallest_isr}");
    let during = ledger.len();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    assert!(ledger.len() > during, "records flow after the roll");
    let verified = ledger.verify(&bootstrap, "rolled", &[0]);
    assert!(verified.acknowledged > 100, "{verified:?}");
    let info: Value = http(&api, "GET", "/v1/pod/kafka-2/info").1;
    let rendered: String = info[0]["info"]["files"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_str)
        .collect();
    assert!(rendered.contains("log.retention.hours=100\n"), "{rendered}");
}

/// Bytes of regular files below `dir`.
fn bytes_below(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => bytes_below(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

fn volume_dir(api: &str, state: &std::path::Path, pod: &str) -> std::path::PathBuf {
    let (_, info) = http(api, "GET", &format!("/v1/pod/{pod}/info"));
    let id = info[0]["info"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|r| r["disk"]["persistence_id"].as_str())
        .expect("a volume")
        .to_string();
    state.join("engine/volumes").join(id)
}

#[test]
fn a_replaced_broker_starts_empty_re_replicates_and_rejoins_the_isr() {
    let zk = ZooKeeper::start();
    let dir = tempfile::tempdir().unwrap();
    let options = r#"{"brokers":{"count":3,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2},
        "kafka":{"min_insync_replicas":2}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    service.extra_args = vec!["--zookeeper".into(), zk.connect_string()];
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(90), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    let (status, body) = http(&api, "PUT", "/v1/topics/kept?partitions=1&replication=3");
    assert_eq!(status, 200, "{body}");
    wait_until("the ISR is full", Duration::from_secs(30), || {
        isr_size(&api, "kept") == Some(3)
    });
    let (_, endpoint) = http(&api, "GET", "/v1/endpoints/broker");
    let bootstrap = endpoint["bootstrap_servers"].as_str().unwrap().to_string();
    let ledger = Ledger::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (ledger, stop, bootstrap) = (ledger.clone(), stop.clone(), bootstrap.clone());
        std::thread::spawn(move || ledger.produce_until(&bootstrap, "kept", stop, 0, &[]))
    };
    wait_until("records flow", Duration::from_secs(20), || {
        ledger.len() > 500
    });
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();

    let state = dir.path().join("state");
    let old_volume = volume_dir(&api, &state, "kafka-1");
    let old_bytes = bytes_below(&old_volume);
    assert!(
        old_bytes > 100_000,
        "kafka-1 holds the data: {old_bytes} bytes"
    );
    let old_task = task_id(&api, "kafka-1");
    let (status, body) = http(&api, "POST", "/v1/pod/kafka-1/replace");
    assert_eq!(status, 200, "{body}");
    wait_until(
        "kafka-1 replaced on a fresh volume",
        Duration::from_secs(60),
        || {
            task_id(&api, "kafka-1") != old_task
                && running_brokers(&api) == 3
                && volume_dir(&api, &state, "kafka-1") != old_volume
        },
    );
    assert!(!old_volume.exists(), "the old volume is destroyed");
    let new_volume = volume_dir(&api, &state, "kafka-1");
    wait_until(
        "the new kafka-1 re-replicates the partition and rejoins the ISR",
        Duration::from_secs(60),
        || isr_size(&api, "kept") == Some(3) && bytes_below(&new_volume) * 10 >= old_bytes * 9,
    );
    // The new kafka-1 may listen on another port: read the addresses again.
    let (_, endpoint) = http(&api, "GET", "/v1/endpoints/broker");
    let bootstrap = endpoint["bootstrap_servers"].as_str().unwrap().to_string();
    let verified = ledger.verify(&bootstrap, "kept", &[0]);
    assert!(verified.acknowledged > 500, "{verified:?}");
}

#[test]
fn a_scheduler_that_lost_its_lock_stops_writing_and_exits() {
    let zk = ZooKeeper::start();
    let dir = tempfile::tempdir().unwrap();
    let options =
        r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    service.extra_args = vec!["--zookeeper".into(), zk.connect_string()];
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });
    let store = reader(&zk);
    let status_before = store.get("Tasks/kafka-0-broker/TaskStatus").unwrap();

    // Another party takes the lock away (as a scheduler that judged this one dead would).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = zookeeper_client::Client::connect(&zk.connect_string())
            .await
            .unwrap();
        for child in client
            .list_children("/dcos-service-kafka/lock")
            .await
            .unwrap()
        {
            client
                .delete(&format!("/dcos-service-kafka/lock/{child}"), None)
                .await
                .unwrap();
        }
    });
    // A restart makes the scheduler write (the killed task's status, the relaunch's task info):
    // every write is refused, and the driver stops at the first.
    let (status, body) = http(&api, "POST", "/v1/pod/kafka-0/restart");
    assert_eq!(status, 200, "{body}");
    let mut child = service.scheduler.take().expect("running");
    let exit = wait_for_exit(&mut child, "the scheduler that lost its lock");
    assert_eq!(exit.code(), Some(2), "{exit}");
    let log = std::fs::read_to_string(dir.path().join("scheduler.log")).unwrap();
    assert!(log.contains("the state store failed"), "{log}");
    assert_eq!(
        store.get("Tasks/kafka-0-broker/TaskStatus").unwrap(),
        status_before,
        "nothing written after the lock went"
    );
}
