//! The ZooKeeper store against a real ZooKeeper server (Debian's `zookeeper` 3.8, started by
//! `strom_testkit::zookeeper` on a loopback port, one per test): chroot creation, broker
//! registration and session loss, controller elections, conditional writes, producer id
//! blocks and watch events. Every wait is bounded.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use strom_meta::replication::{
    BrokerRegistration, Endpoint, LeaderAndIsr, TopicAssignment, TopicPartition,
};
use strom_meta::zk::{
    ControllerFence, Election, SessionEvent, ZkConfig, ZkError, ZkEvent, ZkEvents, ZkStore,
};
use strom_testkit::zookeeper::ZooKeeper;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Every test body runs under this bound.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long an expected event or state may take to show.
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

async fn bounded<T>(body: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("the test took longer than its bound")
}

fn registration(id: i32, port: u16) -> BrokerRegistration {
    BrokerRegistration {
        id,
        endpoints: vec![Endpoint {
            listener: "PLAINTEXT".into(),
            security_protocol: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port,
        }],
        rack: Some(format!("rack-{}", id % 2)),
    }
}

async fn connect(connect: String) -> ZkStore {
    let mut config = ZkConfig::new(connect);
    config.session_timeout_ms = 4_000;
    config.connection_timeout_ms = Some(10_000);
    ZkStore::connect(&config)
        .await
        .expect("connect to ZooKeeper")
}

/// Receives events until `wanted` arrives; fails after [`EVENT_TIMEOUT`].
async fn expect_event(events: &mut ZkEvents, wanted: ZkEvent) {
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(event)) if event == wanted => return,
            Ok(Some(event)) => seen.push(event),
            Ok(None) => panic!("the events ended before {wanted:?}; saw {seen:?}"),
            Err(_) => panic!("no {wanted:?} within {EVENT_TIMEOUT:?}; saw {seen:?}"),
        }
    }
}

/// Polls `check` every 50 ms until it is true; fails after [`EVENT_TIMEOUT`].
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chroot_persistent_paths_and_cluster_id() {
    let server = ZooKeeper::start();
    bounded(async {
        let store = connect(format!("{}/strom/cluster-a", server.connect_string())).await;
        let root = connect(server.connect_string()).await;
        // The chroot and Kafka's persistent paths exist, seen from the root.
        for path in [
            "/strom/cluster-a",
            "/strom/cluster-a/brokers/ids",
            "/strom/cluster-a/brokers/topics",
            "/strom/cluster-a/admin/delete_topics",
            "/strom/cluster-a/isr_change_notification",
            "/strom/cluster-a/config/changes",
            "/strom/cluster-a/config/topics",
            "/strom/cluster-a/latest_producer_id_block",
        ] {
            let raw = zookeeper_client::Client::connect(&server.connect_string())
                .await
                .unwrap();
            assert!(
                raw.check_stat(path).await.unwrap().is_some(),
                "{path} is missing"
            );
        }
        // The root store's view has no brokers of the chroot's.
        assert!(root.brokers().await.unwrap().is_empty());

        let first = store
            .get_or_create_cluster_id("Sfr7YvlkRHSHrmSrwq9mug")
            .await
            .unwrap();
        assert_eq!(first, "Sfr7YvlkRHSHrmSrwq9mug");
        let other = connect(format!("{}/strom/cluster-a", server.connect_string())).await;
        assert_eq!(
            other
                .get_or_create_cluster_id("another-proposal")
                .await
                .unwrap(),
            first
        );
        // Another chroot is another cluster.
        let b = connect(format!("{}/strom/cluster-b", server.connect_string())).await;
        assert_eq!(b.get_or_create_cluster_id("B").await.unwrap(), "B");

        let bad = ZkStore::connect(&ZkConfig::new(format!(
            "{}/strom/",
            server.connect_string()
        )))
        .await;
        assert!(matches!(bad, Err(ZkError::Config { .. })), "{bad:?}");
        // Nothing listens on port 1: the connection timeout applies.
        let mut unreachable = ZkConfig::new("127.0.0.1:1");
        unreachable.connection_timeout_ms = Some(500);
        let refused = ZkStore::connect(&unreachable).await.unwrap_err();
        assert!(
            matches!(
                refused,
                ZkError::ConnectTimeout {
                    timeout_ms: 500,
                    ..
                } | ZkError::Client { .. }
            ),
            "{refused}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_registration_lives_and_dies_with_the_session() {
    let server = ZooKeeper::start();
    bounded(async {
        let url = format!("{}/strom", server.connect_string());
        let observer = connect(url.clone()).await;
        let mut events = observer.watch().await.unwrap();

        let first = connect(url.clone()).await;
        let epoch = first
            .register_broker(&registration(1, 9092), -1, 1_000, Duration::ZERO)
            .await
            .unwrap();
        expect_event(&mut events, ZkEvent::BrokersChanged).await;
        let brokers = observer.brokers().await.unwrap();
        assert_eq!(brokers.len(), 1);
        assert_eq!(brokers[&1].registration, registration(1, 9092));
        assert_eq!(brokers[&1].broker_epoch, epoch);
        // Registering again in the same session keeps the registration.
        assert_eq!(
            first
                .register_broker(&registration(1, 9092), -1, 2_000, Duration::ZERO)
                .await
                .unwrap(),
            epoch
        );

        // Another session with the same broker.id waits, then fails clearly.
        let second = connect(url.clone()).await;
        let taken = second
            .register_broker(
                &registration(1, 9093),
                -1,
                3_000,
                Duration::from_millis(300),
            )
            .await;
        match taken {
            Err(ZkError::BrokerIdTaken {
                id: 1,
                owner_session,
                waited_ms,
            }) => {
                assert_eq!(owner_session, first.session_id());
                assert!(waited_ms >= 300, "{waited_ms}");
            }
            other => panic!("expected BrokerIdTaken, got {other:?}"),
        }

        // A registration that waits gets the id once the first session closes.
        let waiting = {
            let second = second.clone();
            tokio::spawn(async move {
                second
                    .register_broker(&registration(1, 9093), -1, 4_000, Duration::from_secs(10))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "the second registration did not wait"
        );
        drop(first);
        let new_epoch = waiting.await.unwrap().unwrap();
        assert!(new_epoch > epoch, "broker epoch {new_epoch} after {epoch}");
        eventually("broker 1 re-registered on port 9093", || async {
            observer
                .brokers()
                .await
                .unwrap()
                .get(&1)
                .map(|b| b.registration.endpoints[0].port)
                == Some(9093)
        })
        .await;

        // Closing that session too removes the registration, and the watch tells. The store's
        // own watch tasks do not keep its session open.
        let second_events = second.watch().await.unwrap();
        drop(second);
        expect_event(&mut events, ZkEvent::BrokersChanged).await;
        eventually("no live broker", || async {
            observer.brokers().await.unwrap().is_empty()
        })
        .await;
        drop(second_events);

        // Each change gives an event, however many come in a row (the watch is re-armed
        // before each event is sent).
        tokio::time::sleep(Duration::from_millis(500)).await;
        while events.try_next().is_some() {} // the earlier changes' events not yet taken
        let extra = connect(url.clone()).await;
        for id in 10..16 {
            extra
                .register_broker(&registration(id, 9100), -1, 0, Duration::ZERO)
                .await
                .unwrap();
            expect_event(&mut events, ZkEvent::BrokersChanged).await;
            assert_eq!(observer.brokers().await.unwrap().len(), (id - 9) as usize);
        }
        assert!(events.try_next().is_none(), "an event without a change");
        drop(extra);
        expect_event(&mut events, ZkEvent::BrokersChanged).await;
        assert!(observer.brokers().await.unwrap().is_empty());
    })
    .await;
}

/// A TCP proxy to ZooKeeper whose link can be cut: while paused it closes every connection and
/// refuses new ones, so the client's session gets no heartbeat through.
struct Proxy {
    port: u16,
    paused: watch::Sender<bool>,
}

impl Proxy {
    async fn start(target_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (paused, _) = watch::channel(false);
        let pause_watch = paused.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mut cut = pause_watch.subscribe();
                if *cut.borrow_and_update() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", target_port)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|paused| *paused) => {}
                    }
                });
            }
        });
        Proxy { port, paused }
    }

    fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_then_a_new_session_registers_again() {
    // A 100 ms tick lets ZooKeeper grant a 2 s session (2 to 20 ticks).
    let server = ZooKeeper::start_with_tick_ms(100);
    // RUST_LOG=zookeeper_client=debug shows the client's reconnections.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    bounded(async {
        let proxy = Proxy::start(server.port()).await;
        let observer = connect(format!("{}/strom", server.connect_string())).await;
        let mut config = ZkConfig::new(format!("127.0.0.1:{}/strom", proxy.port));
        config.session_timeout_ms = 2_000;
        let store = ZkStore::connect(&config).await.unwrap();
        assert_eq!(store.session_timeout(), Duration::from_millis(2_000));
        let mut events = store.watch().await.unwrap();
        let epoch = store
            .register_broker(&registration(7, 9092), -1, 1, Duration::ZERO)
            .await
            .unwrap();
        eventually("broker 7 registered", || async {
            observer.brokers().await.unwrap().contains_key(&7)
        })
        .await;

        // A short cut: the client reconnects within the session, which keeps its registration.
        proxy.set_paused(true);
        expect_event(&mut events, ZkEvent::Session(SessionEvent::Disconnected)).await;
        proxy.set_paused(false);
        expect_event(&mut events, ZkEvent::Session(SessionEvent::Reconnected)).await;
        assert_eq!(observer.brokers().await.unwrap()[&7].broker_epoch, epoch);
        assert!(store.brokers().await.unwrap().contains_key(&7));
        // The watches survived the reconnection.
        observer
            .register_broker(&registration(8, 9093), -1, 1, Duration::ZERO)
            .await
            .unwrap();
        expect_event(&mut events, ZkEvent::BrokersChanged).await;

        // Cut the link for longer than the session timeout: ZooKeeper expires the session and
        // deletes its registration.
        proxy.set_paused(true);
        expect_event(&mut events, ZkEvent::Session(SessionEvent::Disconnected)).await;
        eventually("broker 7's registration expired", || async {
            !observer.brokers().await.unwrap().contains_key(&7)
        })
        .await;
        proxy.set_paused(false);
        expect_event(&mut events, ZkEvent::Session(SessionEvent::Expired)).await;
        let dead = store.brokers().await.unwrap_err();
        assert!(dead.is_session_expired(), "{dead}");

        // The caller's recovery: a new session, registered again.
        let renewed = store.reconnect().await.unwrap();
        assert_ne!(renewed.session_id(), store.session_id());
        let new_epoch = renewed
            .register_broker(&registration(7, 9092), -1, 2, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(new_epoch > epoch);
        let brokers = observer.brokers().await.unwrap();
        assert_eq!(brokers[&7].broker_epoch, new_epoch);
        assert_eq!(brokers.keys().copied().collect::<Vec<_>>(), vec![7, 8]);
    })
    .await;
}

async fn race_for_controller(stores: &[(i32, ZkStore)], now_ms: i64) -> Vec<(i32, Election)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(stores.len()));
    let tasks: Vec<_> = stores
        .iter()
        .map(|(id, store)| {
            let (id, store, barrier) = (*id, store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                (id, store.elect_controller(id, now_ms).await.unwrap())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_races_have_one_winner_and_growing_epochs() {
    let server = ZooKeeper::start();
    bounded(async {
        let url = format!("{}/strom", server.connect_string());
        let observer = connect(url.clone()).await;
        let mut events = observer.watch().await.unwrap();
        let mut stores = Vec::new();
        for id in 1..=4 {
            stores.push((id, connect(url.clone()).await));
        }
        let mut last_epoch = 0;
        let mut fences: Vec<ControllerFence> = Vec::new();
        for round in 0..3 {
            let outcomes = race_for_controller(&stores, round).await;
            let winners: Vec<_> = outcomes
                .iter()
                .filter_map(|(id, outcome)| match outcome {
                    Election::Won(fence) => Some((*id, *fence)),
                    Election::Lost { .. } => None,
                })
                .collect();
            assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
            let (winner, fence) = winners[0];
            for (_, outcome) in &outcomes {
                if let Election::Lost { controller } = outcome {
                    assert_eq!(*controller, Some(winner), "round {round}: {outcomes:?}");
                }
            }
            assert!(
                fence.epoch > last_epoch,
                "round {round}: epoch {} after {last_epoch}",
                fence.epoch
            );
            last_epoch = fence.epoch;
            expect_event(&mut events, ZkEvent::ControllerChanged).await;
            assert_eq!(observer.controller().await.unwrap(), Some(winner));
            assert_eq!(
                observer.controller_epoch().await.unwrap().unwrap().value,
                fence.epoch
            );
            fences.push(fence);
            // The controller dies (its session closes): /controller goes, the others race again.
            stores.retain(|(id, _)| *id != winner);
            expect_event(&mut events, ZkEvent::ControllerChanged).await;
            assert_eq!(observer.controller().await.unwrap(), None);
        }
        assert_eq!(
            fences.iter().map(|f| f.epoch).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );

        // A fenced controller can neither resign nor write.
        let (id, store) = &stores[0];
        let Election::Won(current) = store.elect_controller(*id, 99).await.unwrap() else {
            panic!("no controller to race")
        };
        assert_eq!(current.epoch, 4);
        let stale = store.resign_controller(&fences[0]).await.unwrap_err();
        assert!(
            matches!(stale, ZkError::ControllerMoved { epoch: 1 }),
            "{stale}"
        );
        store.resign_controller(&current).await.unwrap();
        assert_eq!(observer.controller().await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_partition_states_deletion_and_notifications() {
    let server = ZooKeeper::start();
    bounded(async {
        let url = format!("{}/strom", server.connect_string());
        let store = connect(url.clone()).await;
        let mut events = store.watch().await.unwrap();
        let Election::Won(fence) = store.elect_controller(1, 0).await.unwrap() else {
            panic!("lost an uncontested election")
        };
        expect_event(&mut events, ZkEvent::ControllerChanged).await;

        let assignment = TopicAssignment::new(
            uuid::Uuid::new_v4(),
            BTreeMap::from([(0, vec![1, 2, 3]), (1, vec![2, 3, 1])]),
        );
        let config = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        store
            .create_topic("orders", &assignment, &config)
            .await
            .unwrap();
        expect_event(&mut events, ZkEvent::TopicsChanged).await;
        let again = store
            .create_topic("orders", &assignment, &config)
            .await
            .unwrap_err();
        assert!(matches!(again, ZkError::TopicExists { .. }), "{again}");
        assert!(matches!(
            store.create_topic("a/b", &assignment, &config).await,
            Err(ZkError::InvalidTopic { .. })
        ));
        assert_eq!(store.topics().await.unwrap(), vec!["orders".to_string()]);
        assert_eq!(
            store.topic_assignments().await.unwrap()["orders"].value,
            assignment
        );
        assert_eq!(store.topic_config("orders").await.unwrap(), config);

        let initial: BTreeMap<i32, LeaderAndIsr> = assignment
            .partitions
            .iter()
            .map(|(p, replicas)| {
                (
                    *p,
                    LeaderAndIsr {
                        leader: replicas[0],
                        leader_epoch: 0,
                        isr: replicas.clone(),
                        controller_epoch: fence.epoch,
                    },
                )
            })
            .collect();
        let versions = store
            .create_partition_states("orders", &initial, &fence)
            .await
            .unwrap();
        assert_eq!(versions, BTreeMap::from([(0, 0), (1, 0)]));
        let all = store.all_partition_states().await.unwrap();
        assert_eq!(
            all.keys().cloned().collect::<Vec<_>>(),
            vec![
                TopicPartition::new("orders", 0),
                TopicPartition::new("orders", 1)
            ]
        );
        let states = store.partition_states("orders").await.unwrap();
        assert_eq!(states[&0].value, initial[&0]);
        assert_eq!(states[&1].version, 0);

        // Two writers read version 0; the second write conflicts.
        let tp = TopicPartition::new("orders", 0);
        let shrunk = LeaderAndIsr {
            isr: vec![1, 2],
            ..initial[&0].clone()
        };
        assert_eq!(
            store
                .update_partition_state(&tp, &shrunk, 0, None)
                .await
                .unwrap(),
            1
        );
        let other = connect(url.clone()).await;
        let conflict = other
            .update_partition_state(&tp, &initial[&0], 0, None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                conflict,
                ZkError::BadVersion {
                    expected_version: 0,
                    ..
                }
            ),
            "{conflict}"
        );
        let fenced_conflict = store
            .update_partition_state(&tp, &initial[&0], 0, Some(&fence))
            .await
            .unwrap_err();
        assert!(
            matches!(fenced_conflict, ZkError::BadVersion { .. }),
            "{fenced_conflict}"
        );
        let moved = LeaderAndIsr {
            leader: 2,
            leader_epoch: 1,
            isr: vec![2],
            controller_epoch: fence.epoch,
        };
        assert_eq!(
            store
                .update_partition_state(&tp, &moved, 1, Some(&fence))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store.partition_state(&tp).await.unwrap().unwrap().value,
            moved
        );

        // A newer controller fences the old one's writes.
        store.resign_controller(&fence).await.unwrap();
        let Election::Won(newer) = other.elect_controller(2, 1).await.unwrap() else {
            panic!("lost an uncontested election")
        };
        let stale = store
            .update_partition_state(&tp, &moved, 2, Some(&fence))
            .await
            .unwrap_err();
        assert!(matches!(stale, ZkError::ControllerMoved { .. }), "{stale}");

        // Configuration changes leave a notification.
        let changed = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        let name = store.set_topic_config("orders", &changed).await.unwrap();
        assert!(name.starts_with("config_change_"), "{name}");
        assert_eq!(store.topic_config("orders").await.unwrap(), changed);
        assert_eq!(
            store.config_changes().await.unwrap(),
            vec![(name, "topics/orders".to_string())]
        );
        // Purged once older than the bound, not before.
        let created = now_ms();
        assert_eq!(
            store.purge_config_changes(created - 60_000).await.unwrap(),
            0
        );
        assert_eq!(store.config_changes().await.unwrap().len(), 1);
        assert_eq!(
            store.purge_config_changes(created + 60_000).await.unwrap(),
            1
        );
        assert_eq!(store.config_changes().await.unwrap(), vec![]);

        // ISR change notifications: created in order, read, deleted.
        let first = store
            .create_isr_change_notification(std::slice::from_ref(&tp))
            .await
            .unwrap();
        let second = store
            .create_isr_change_notification(&[TopicPartition::new("orders", 1), tp.clone()])
            .await
            .unwrap();
        assert!(first < second, "{first} {second}");
        expect_event(&mut events, ZkEvent::IsrChangesNotified).await;
        let pending = store.isr_change_notifications().await.unwrap();
        assert_eq!(
            pending.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
            vec![first.clone(), second.clone()]
        );
        assert_eq!(
            pending[1].partitions,
            vec![TopicPartition::new("orders", 1), tp.clone()]
        );
        store
            .delete_isr_change_notifications(&[first, second])
            .await
            .unwrap();
        assert!(store.isr_change_notifications().await.unwrap().is_empty());

        // The delete-topic flow: marked, seen, then removed by the controller in one step.
        assert!(matches!(
            store.mark_topic_for_deletion("nope").await,
            Err(ZkError::UnknownTopic { .. })
        ));
        store.mark_topic_for_deletion("orders").await.unwrap();
        expect_event(&mut events, ZkEvent::TopicDeletionsChanged).await;
        assert_eq!(
            store.topics_marked_for_deletion().await.unwrap(),
            vec!["orders".to_string()]
        );
        let stale = store.delete_topic("orders", &fence).await.unwrap_err();
        assert!(matches!(stale, ZkError::ControllerMoved { .. }), "{stale}");
        other.delete_topic("orders", &newer).await.unwrap();
        expect_event(&mut events, ZkEvent::TopicsChanged).await;
        assert!(store.topics().await.unwrap().is_empty());
        assert!(store.topics_marked_for_deletion().await.unwrap().is_empty());
        assert_eq!(store.partition_state(&tp).await.unwrap(), None);
        assert!(store.topic_config("orders").await.unwrap().is_empty());
    })
    .await;
}

/// A topic whose znodes are more than one multi can delete goes in several, all fenced: a
/// stale controller deletes nothing, the current one everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_of_more_znodes_than_one_multi_is_deleted_whole() {
    let server = ZooKeeper::start();
    bounded(async {
        let url = format!("{}/strom", server.connect_string());
        let store = connect(url.clone()).await;
        let Election::Won(stale) = store.elect_controller(1, 0).await.unwrap() else {
            panic!("lost an uncontested election")
        };
        // 2,400 partitions of a 240-character name: 4,800 partition and state znodes whose
        // deletes (~1.3 MB) exceed ZooKeeper's 1 MiB request limit in one multi.
        let topic = "w".repeat(240);
        let topic = topic.as_str();
        let partitions = 2_400;
        let assignment = TopicAssignment::new(
            uuid::Uuid::new_v4(),
            (0..partitions).map(|p| (p, vec![1])).collect(),
        );
        store
            .create_topic(topic, &assignment, &BTreeMap::new())
            .await
            .unwrap();
        let states: BTreeMap<i32, LeaderAndIsr> = (0..partitions)
            .map(|p| {
                let state = LeaderAndIsr {
                    leader: 1,
                    leader_epoch: 0,
                    isr: vec![1],
                    controller_epoch: stale.epoch,
                };
                (p, state)
            })
            .collect();
        store
            .create_partition_states(topic, &states, &stale)
            .await
            .unwrap();
        store.mark_topic_for_deletion(topic).await.unwrap();
        store.resign_controller(&stale).await.unwrap();
        let other = connect(url).await;
        let Election::Won(fence) = other.elect_controller(2, 0).await.unwrap() else {
            panic!("lost an uncontested election")
        };
        let refused = store.delete_topic(topic, &stale).await.unwrap_err();
        assert!(
            matches!(refused, ZkError::ControllerMoved { .. }),
            "{refused}"
        );
        assert_eq!(
            store.partition_states(topic).await.unwrap().len(),
            partitions as usize,
            "a stale controller deletes nothing"
        );
        other.delete_topic(topic, &fence).await.unwrap();
        assert!(store.topics().await.unwrap().is_empty());
        assert!(store.topics_marked_for_deletion().await.unwrap().is_empty());
        assert!(store.partition_states(topic).await.unwrap().is_empty());
        assert!(store.all_partition_states().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_id_blocks_are_unique_across_concurrent_allocators() {
    let server = ZooKeeper::start();
    bounded(async {
        let url = format!("{}/strom", server.connect_string());
        let mut tasks = Vec::new();
        for broker in 0..4 {
            let store = connect(url.clone()).await;
            tasks.push(tokio::spawn(async move {
                let mut blocks = Vec::new();
                for _ in 0..25 {
                    blocks.push(store.allocate_producer_id_block(broker).await.unwrap());
                }
                blocks
            }));
        }
        let mut blocks = Vec::new();
        for task in tasks {
            let mine = task.await.unwrap();
            // One allocator's blocks grow.
            assert!(
                mine.windows(2).all(|pair| pair[0].last < pair[1].first),
                "{mine:?}"
            );
            blocks.extend(mine);
        }
        blocks.sort_by_key(|block| block.first);
        assert_eq!(blocks.len(), 100);
        for (index, block) in blocks.iter().enumerate() {
            // Disjoint and without gaps: block i is exactly [1000 i, 1000 i + 999].
            assert_eq!(
                (block.first, block.last),
                (index as i64 * 1000, index as i64 * 1000 + 999),
                "{block:?}"
            );
        }
    })
    .await;
}

/// Every operation's future is `Send`, so the broker can run them on spawned tasks (checked
/// when this file compiles; never called).
#[allow(dead_code)]
fn every_operation_is_send(store: &ZkStore, fence: &ControllerFence) {
    fn send<T: Send>(_: T) {}
    let tp = TopicPartition::new("t", 0);
    let state = LeaderAndIsr {
        leader: 1,
        leader_epoch: 0,
        isr: vec![1],
        controller_epoch: 1,
    };
    let assignment = TopicAssignment::new(uuid::Uuid::nil(), BTreeMap::new());
    let config = BTreeMap::new();
    send(ZkStore::connect(store.config()));
    send(store.reconnect());
    send(store.get_or_create_cluster_id("id"));
    send(store.register_broker(&registration(1, 1), -1, 0, Duration::ZERO));
    send(store.brokers());
    send(store.controller());
    send(store.controller_epoch());
    send(store.elect_controller(1, 0));
    send(store.resign_controller(fence));
    send(store.allocate_producer_id_block(1));
    send(store.create_topic("t", &assignment, &config));
    send(store.topics());
    send(store.topic_assignment("t"));
    send(store.topic_assignments());
    send(store.topic_config("t"));
    send(store.set_topic_config("t", &config));
    send(store.config_changes());
    send(store.create_partition_states("t", &BTreeMap::new(), fence));
    send(store.partition_state(&tp));
    send(store.partition_states("t"));
    send(store.all_partition_states());
    send(store.all_partition_states_with_zxids());
    send(store.delete_broker_registration(1, 0));
    send(store.delete_controller_if(1));
    send(store.update_partition_state(&tp, &state, 0, Some(fence)));
    send(store.mark_topic_for_deletion("t"));
    send(store.topics_marked_for_deletion());
    send(store.delete_topic("t", fence));
    send(store.create_isr_change_notification(&[]));
    send(store.isr_change_notifications());
    send(store.delete_isr_change_notifications(&[]));
    send(store.watch());
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
