//! The ZooKeeper state store against a real ZooKeeper (`strom_testkit::zookeeper`): the SDK's
//! node layout, atomic applies, the lock (two stores racing, a waiting store taking over when
//! the holder closes, a store whose lock node is gone writing nothing), an uninstall's wipe
//! leaving no znode, a dead scheduler's lock on this host taken over at once (another host's
//! never), calls surviving broken connections (through a proxy that cuts them), and a deployed
//! scheduler resuming from the store.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use strom_scheduler::plan::Status;
use strom_scheduler::scheduler::{Input, Scheduler, SchedulerConfig};
use strom_scheduler::store::Persister;
use strom_scheduler::zk_store::{ZkPersister, ZkPersisterConfig};
use strom_testkit::zookeeper::ZooKeeper;
use zookeeper_client::Client;

fn config(zk: &ZooKeeper, service: &str) -> ZkPersisterConfig {
    let mut config = ZkPersisterConfig::new(&zk.connect_string(), service);
    config.lock_wait_ms = 1_000;
    config
}

/// A raw client, to look at the znodes the store wrote; `f` runs on a small runtime.
fn with_client<T>(zk: &ZooKeeper, f: impl AsyncFnOnce(&Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = Client::connect(&zk.connect_string()).await.unwrap();
        f(&client).await
    })
}

fn znode_exists(zk: &ZooKeeper, path: &str) -> bool {
    let path = path.to_string();
    with_client(zk, async move |c: &Client| {
        c.check_stat(&path).await.unwrap().is_some()
    })
}

fn znode_children(zk: &ZooKeeper, path: &str) -> Vec<String> {
    let path = path.to_string();
    with_client(zk, async move |c: &Client| {
        let mut children = c.list_children(&path).await.unwrap_or_default();
        children.sort();
        children
    })
}

#[test]
fn writes_the_sdk_layout_atomically_and_wipes_it_all() {
    let zk = ZooKeeper::start();
    let mut store = ZkPersister::open(&config(&zk, "team/kafka")).unwrap();
    assert_eq!(store.root().unwrap(), "/dcos-service-team__kafka");
    assert_eq!(
        store.get("SchemaVersion").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    store.set("ConfigTarget", b"uuid-1".to_vec()).unwrap();
    store
        .apply(vec![
            ("Configurations/uuid-1".into(), Some(b"{}".to_vec())),
            ("Tasks/kafka-0-broker/TaskInfo".into(), Some(b"i0".to_vec())),
            (
                "Tasks/kafka-0-broker/TaskStatus".into(),
                Some(b"s0".to_vec()),
            ),
            ("Tasks/kafka-1-broker/TaskInfo".into(), Some(b"i1".to_vec())),
        ])
        .unwrap();
    let root = "/dcos-service-team__kafka";
    for node in [
        "ConfigTarget",
        "Configurations/uuid-1",
        "Tasks/kafka-0-broker/TaskInfo",
        "Tasks/kafka-0-broker/TaskStatus",
        "SchemaVersion",
    ] {
        assert!(znode_exists(&zk, &format!("{root}/{node}")), "{node}");
    }
    let locks = znode_children(&zk, &format!("{root}/lock"));
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert!(
        locks[0].starts_with("_c_") && locks[0].contains("-lock-"),
        "{locks:?}"
    );
    assert_eq!(
        store.children("").unwrap(),
        ["ConfigTarget", "Configurations", "SchemaVersion", "Tasks"],
        "the lock is not a state node"
    );
    assert_eq!(
        store.children("Tasks").unwrap(),
        ["kafka-0-broker", "kafka-1-broker"]
    );
    assert_eq!(store.get("Tasks").unwrap(), None, "a parent is not a value");
    assert_eq!(store.get("Nope/x").unwrap(), None);
    assert!(store.set("lock/x", vec![]).is_err());
    assert!(store.set("Tasks//x", vec![]).is_err());

    // A delete and a write below it in one apply, as a relaunch's task info write does.
    store
        .apply(vec![
            ("Tasks/kafka-0-broker".into(), None),
            (
                "Tasks/kafka-0-broker/TaskInfo".into(),
                Some(b"i0b".to_vec()),
            ),
        ])
        .unwrap();
    assert_eq!(
        store
            .get("Tasks/kafka-0-broker/TaskInfo")
            .unwrap()
            .as_deref(),
        Some(&b"i0b"[..])
    );
    assert_eq!(store.get("Tasks/kafka-0-broker/TaskStatus").unwrap(), None);
    // A write into a node deleted earlier in the same apply and then deleted again.
    store
        .apply(vec![
            ("Properties/a/b".into(), Some(b"x".to_vec())),
            ("Properties".into(), None),
        ])
        .unwrap();
    assert!(!znode_exists(&zk, &format!("{root}/Properties")));

    // The uninstall's wipe.
    store.delete("").unwrap();
    assert_eq!(znode_children(&zk, root), ["lock"], "only the lock is left");
    store.close();
    assert!(
        !znode_exists(&zk, root),
        "closing after a wipe leaves nothing"
    );
    let reader = ZkPersister::open_read_only(&config(&zk, "team/kafka")).unwrap();
    assert!(!reader.root_exists().unwrap(), "a reader creates nothing");
    assert!(store.get("ConfigTarget").is_err(), "a closed store fails");
}

#[test]
fn two_stores_race_for_the_lock_and_one_waits_for_the_other() {
    let zk = ZooKeeper::start();
    let barrier = Arc::new(Barrier::new(2));
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let config = config(&zk, "kafka");
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                ZkPersister::open(&config)
            })
        })
        .collect();
    let outcomes: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let (winners, losers): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(Result::is_ok);
    assert_eq!((winners.len(), losers.len()), (1, 1));
    let error = losers
        .into_iter()
        .next()
        .unwrap()
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("locked by another scheduler"), "{error}");
    assert!(
        error.contains(&format!(" {} ", std::process::id())),
        "names the holder: {error}"
    );
    let mut winner = winners.into_iter().next().unwrap().unwrap();
    winner.set("FrameworkID", b"fw-1".to_vec()).unwrap();

    // A store waiting for the lock gets it as soon as the holder closes.
    let mut patient = config(&zk, "kafka");
    patient.lock_wait_ms = 20_000;
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let store = ZkPersister::open(&patient);
        (store, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    let released = Instant::now();
    winner.close();
    let (store, waited) = waiter.join().unwrap();
    let store = store.expect("the waiter takes the lock");
    assert!(
        waited >= Duration::from_millis(400),
        "it waited: {waited:?}"
    );
    assert!(released.elapsed() < Duration::from_secs(5));
    assert_eq!(
        store.get("FrameworkID").unwrap().as_deref(),
        Some(&b"fw-1"[..])
    );
    // Another service is another lock.
    ZkPersister::open(&config(&zk, "other")).expect("a different service's lock");
}

/// Leaves a lock node with `data` and a low sequence, as a scheduler whose session has not
/// expired yet would.
fn plant_lock_node(zk: &ZooKeeper, data: &str) {
    let data = data.to_string();
    with_client(zk, async move |c: &Client| {
        let options = zookeeper_client::CreateMode::Persistent
            .with_acls(zookeeper_client::Acls::anyone_all());
        c.mkdir("/dcos-service-kafka/lock", &options).await.unwrap();
        let node =
            "/dcos-service-kafka/lock/_c_00000000-0000-0000-0000-000000000000-lock-0000000000";
        c.create(node, data.as_bytes(), &options).await.unwrap();
    });
}

#[test]
fn a_dead_schedulers_lock_on_this_host_is_taken_over_and_another_hosts_never() {
    let zk = ZooKeeper::start();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    plant_lock_node(&zk, &format!("{} {pid} 12345", host.trim()));
    let started = Instant::now();
    let store = ZkPersister::open(&config(&zk, "kafka")).expect("the dead holder's lock is taken");
    assert!(started.elapsed() < Duration::from_millis(900), "no wait");
    assert_eq!(
        znode_children(&zk, "/dcos-service-kafka/lock").len(),
        1,
        "the stale node is gone"
    );
    store.close();

    plant_lock_node(&zk, "elsewhere 1 1");
    let error = ZkPersister::open(&config(&zk, "kafka"))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("elsewhere 1 1"), "{error}");
    assert!(!strom_scheduler::zk_store::holder_is_dead("elsewhere 1 1"));
    assert!(!strom_scheduler::zk_store::holder_is_dead("no ticks"));
}

#[test]
fn a_store_that_lost_its_lock_writes_nothing() {
    let zk = ZooKeeper::start();
    let mut store = ZkPersister::open(&config(&zk, "kafka")).unwrap();
    store.set("ConfigTarget", b"a".to_vec()).unwrap();
    let lock = store.lock_node().unwrap().expect("a writer holds a lock");
    with_client(&zk, async move |c: &Client| {
        c.delete(&lock, None).await.unwrap()
    });
    let error = store
        .apply(vec![
            ("ConfigTarget".into(), Some(b"b".to_vec())),
            ("FrameworkID".into(), Some(b"fw".to_vec())),
        ])
        .unwrap_err();
    assert!(error.to_string().contains("lock"), "{error}");
    assert_eq!(
        store.get("ConfigTarget").unwrap().as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(store.get("FrameworkID").unwrap(), None);

    let mut reader = ZkPersister::open_read_only(&config(&zk, "kafka")).unwrap();
    assert_eq!(
        reader.get("ConfigTarget").unwrap().as_deref(),
        Some(&b"a"[..])
    );
    assert!(reader.set("ConfigTarget", b"c".to_vec()).is_err());
}

#[test]
fn a_deployed_scheduler_resumes_from_zookeeper_under_a_chroot() {
    let zk = ZooKeeper::start();
    let mut zk_config = config(&zk, "kafka");
    zk_config.connect = format!("{}/strom/services", zk.connect_string());
    let spec = kafka("");
    let store = ZkPersister::open(&zk_config).unwrap();
    let (mut s, _) =
        Scheduler::new(store, &spec, SchedulerConfig::for_service("kafka"), ids(1)).unwrap();
    let mut cluster = Cluster::new(3);
    for round in 0..10 {
        offer_round(&mut s, &mut cluster, 1_000 * round);
    }
    assert_eq!(s.plan("deploy").unwrap().status(), Status::Complete);
    let target = s.target_id();
    let tasks = s.tasks().clone();
    assert_eq!(tasks.len(), 3);
    assert!(znode_exists(
        &zk,
        &format!("/strom/services/dcos-service-kafka/Configurations/{target}")
    ));
    assert!(znode_exists(
        &zk,
        "/strom/services/dcos-service-kafka/Tasks/kafka-2-broker/TaskStatus"
    ));
    // As after a kill -9: a second store cannot start while this one lives.
    assert!(ZkPersister::open(&zk_config).is_err());
    drop(s);

    let store = ZkPersister::open(&zk_config).unwrap();
    let (mut s, outcome) =
        Scheduler::new(store, &spec, SchedulerConfig::for_service("kafka"), ids(2)).unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(s.target_id(), target, "the same spec keeps its target");
    assert_eq!(s.tasks(), &tasks, "every task info and status read back");
    let effects = s.subscribed(20_000);
    for status in cluster.apply(&effects) {
        drive(&mut s, &mut cluster, Input::Status(status), 20_000);
    }
    let launches = cluster.launches.len();
    for round in 0..3 {
        offer_round(&mut s, &mut cluster, 30_000 + 1_000 * round);
    }
    assert_eq!(cluster.launches.len(), launches, "nothing relaunched");
    assert_eq!(s.plan("deploy").unwrap().status(), Status::Complete);
}

/// A TCP proxy in front of ZooKeeper whose connections the test can cut.
struct Proxy {
    port: u16,
    connections: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let open = Arc::clone(&connections);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut open = open.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let (mut from, mut to) = (from, to);
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, connections }
    }

    /// Breaks every open connection (the listener stays: clients can reconnect).
    fn cut(&self) -> usize {
        let mut open = self.connections.lock().unwrap();
        for stream in open.iter() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let cut = open.len();
        open.clear();
        cut
    }
}

#[test]
fn calls_survive_broken_connections_within_the_session() {
    let zk = ZooKeeper::start();
    let proxy = Proxy::start(zk.port());
    let mut config = config(&zk, "kafka");
    config.connect = format!("127.0.0.1:{}", proxy.port);
    let mut store = ZkPersister::open(&config).unwrap();
    let lock = store.lock_node().unwrap();
    for round in 0..10u8 {
        assert!(proxy.cut() > 0, "round {round}: a connection to cut");
        store
            .apply(vec![
                (format!("Tasks/t-{round}/TaskInfo"), Some(vec![round])),
                ("ConfigTarget".into(), Some(vec![round])),
            ])
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        proxy.cut();
        assert_eq!(store.get("ConfigTarget").unwrap(), Some(vec![round]));
        proxy.cut();
        assert_eq!(
            store.children("Tasks").unwrap().len(),
            usize::from(round) + 1
        );
    }
    assert_eq!(
        store.lock_node().unwrap(),
        lock,
        "the same session holds the lock"
    );
    let reader = ZkPersister::open_read_only(&crate::config(&zk, "kafka")).unwrap();
    assert_eq!(reader.get("Tasks/t-9/TaskInfo").unwrap(), Some(vec![9]));
}
