//! `strom scheduler run --zookeeper`: the state store in a real ZooKeeper under
//! `/dcos-service-kafka` with the SDK's node names, the brokers sharing that root as their
//! chroot, a second scheduler for the service refused by the lock, a scheduler killed with
//! SIGKILL resuming from ZooKeeper (once its old session expired) without relaunching its
//! brokers, a SIGTERM releasing the lock at once, and `SDK_UNINSTALL` leaving no znode.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::service::*;
use common::wait_until;
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

    // kill -9: the next scheduler waits out the old session, then adopts both brokers.
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
        waited >= Duration::from_secs(2),
        "the old session's lock held it back: {waited:?}"
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
