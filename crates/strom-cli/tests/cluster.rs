//! A cluster on a real ZooKeeper (issue 8): three `strom broker` processes elect a controller,
//! every broker's Metadata shows the same brokers (with racks), controller and partition
//! states once the controller's UpdateMetadata reached it; a topic created through a broker
//! that is not the controller is placed on all three; killing the controller with SIGKILL
//! elects another with a higher controller epoch; a controller request from an older epoch is
//! refused with STALE_CONTROLLER_EPOCH; `strom cluster info` shows the cluster.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{partition_of, TestCluster};
use common::*;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, InitProducerIdRequest, MetadataResponse, TopicName,
};
use kafka_protocol_3x::messages::UpdateMetadataRequest;
use strom_broker::interbroker::peer::PeerConnection;
use strom_broker::interbroker::UPDATE_METADATA_VERSION;
use strom_meta::zk::{ZkConfig, ZkStore};

/// STALE_CONTROLLER_EPOCH.
const STALE_CONTROLLER_EPOCH: i16 = 11;
/// STALE_BROKER_EPOCH.
const STALE_BROKER_EPOCH: i16 = 77;

fn racked(id: i32) -> Vec<String> {
    vec![format!(
        "broker.rack=rack-{}",
        ["a", "b", "c"][(id - 1) as usize]
    )]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `/controller_epoch` as ZooKeeper holds it.
fn controller_epoch(cluster: &TestCluster) -> i32 {
    runtime().block_on(async {
        let config = ZkConfig::new(format!("{}/strom", cluster.zookeeper.connect_string()));
        let store = ZkStore::connect(&config).await.expect("ZooKeeper session");
        store
            .controller_epoch()
            .await
            .expect("read /controller_epoch")
            .expect("a controller was elected")
            .value
    })
}

/// The leader epoch of `topic`'s `partition` in `metadata` (-1 if absent).
fn leader_epoch(metadata: &MetadataResponse, topic: &str, partition: i32) -> i32 {
    metadata
        .topics
        .iter()
        .filter(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .map_or(-1, |p| p.leader_epoch)
}

/// The brokers (id, rack) of a Metadata answer, by id.
fn brokers(metadata: &MetadataResponse) -> Vec<(i32, Option<String>)> {
    let mut brokers: Vec<(i32, Option<String>)> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.rack.as_ref().map(|r| r.to_string())))
        .collect();
    brokers.sort();
    brokers
}

#[test]
fn three_brokers_agree_fail_over_the_controller_and_fence_stale_epochs() {
    let mut cluster = TestCluster::start_with(3, |id| {
        let mut settings = racked(id);
        settings.push("offsets.topic.num.partitions=5".into());
        settings
    });
    let expected = vec![
        (1, Some("rack-a".to_string())),
        (2, Some("rack-b".to_string())),
        (3, Some("rack-c".to_string())),
    ];
    cluster.wait_for("every broker shows the 3 brokers with racks", |m| {
        brokers(m) == expected
    });
    let controller = cluster.controller();
    assert!((1..=3).contains(&controller), "controller {controller}");
    for id in 1..=3 {
        let m = cluster.metadata_from(id).expect("broker answers");
        assert_eq!(m.controller_id.0, controller, "broker {id}'s controller");
    }
    let first_epoch = controller_epoch(&cluster);
    assert!(first_epoch >= 1, "epoch {first_epoch}");

    // A topic with RF 3, created through a broker that is not the controller.
    let other = (1..=3).find(|id| *id != controller).unwrap();
    let mut raw = RawClient::connect(&cluster.addr(other));
    let mut topic = CreatableTopic::default();
    topic.name = TopicName("replicated".to_string().into());
    topic.num_partitions = 3;
    topic.replication_factor = 3;
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = 30_000;
    let started = Instant::now();
    let answer = raw.send(5, &request);
    assert_eq!(
        answer.topics[0].error_code,
        0,
        "{:?}; broker {other}'s log:\n{}",
        answer.topics[0].error_message,
        cluster.log(other)
    );
    eprintln!("CreateTopics RF 3 answered in {:?}", started.elapsed());
    // The broker that answered already shows it; then every broker shows the same states.
    let shown = cluster.metadata_from(other).unwrap();
    let reference: Vec<_> = (0..3)
        .map(|p| partition_of(&shown, "replicated", p).expect("partition shown"))
        .collect();
    for (p, (leader, replicas, isr)) in reference.iter().enumerate() {
        let mut sorted = replicas.clone();
        sorted.sort();
        assert_eq!(sorted, [1, 2, 3], "partition {p}'s replicas");
        assert_eq!(isr.len(), 3, "partition {p}'s ISR {isr:?}");
        assert_eq!(
            *leader, replicas[0],
            "partition {p}: the preferred replica leads"
        );
    }
    let leaders: std::collections::BTreeSet<i32> = reference.iter().map(|r| r.0).collect();
    assert_eq!(
        leaders.len(),
        3,
        "leaders spread over the brokers: {reference:?}"
    );
    cluster.wait_for("every broker shows the same partition states", |m| {
        (0..3).all(|p| partition_of(m, "replicated", p).as_ref() == Some(&reference[p as usize]))
    });

    // `strom cluster info` through a broker shows the three brokers and the controller.
    let output = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["-b", &cluster.addr(other), "--json", "cluster", "info"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(info["controller_id"], controller, "{info}");
    assert_eq!(info["brokers"].as_array().map(Vec::len), Some(3), "{info}");
    assert_eq!(info["brokers"][1]["rack"], "rack-b", "{info}");
    assert_eq!(info["offline"].as_array().map(Vec::len), Some(0), "{info}");

    // A controller request from an older epoch is fenced.
    let epoch = first_epoch;
    let addr = cluster.addr(other);
    let code = runtime().block_on(async move {
        let peer = PeerConnection::connect(&addr, "stale-controller", Duration::from_secs(5))
            .await
            .expect("connect");
        let mut request = UpdateMetadataRequest::default();
        request.controller_id = kafka_protocol_3x::messages::BrokerId(controller);
        request.controller_epoch = epoch - 1;
        request.broker_epoch = -1;
        peer.call_3x(&request, UPDATE_METADATA_VERSION, Duration::from_secs(10))
            .await
            .expect("answered")
            .error_code
    });
    assert_eq!(code, STALE_CONTROLLER_EPOCH);

    // A manual assignment through a broker that is not the controller.
    let mut manual = CreatableTopic::default();
    manual.name = TopicName("manual".to_string().into());
    manual.num_partitions = -1;
    manual.replication_factor = -1;
    for (index, replicas) in [(0, vec![3, 1]), (1, vec![2, 3])] {
        let mut assignment = CreatableReplicaAssignment::default();
        assignment.partition_index = index;
        assignment.broker_ids = replicas.into_iter().map(BrokerId).collect();
        manual.assignments.push(assignment);
    }
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![manual];
    request.timeout_ms = 30_000;
    let answer = raw.send(5, &request);
    assert_eq!(
        answer.topics[0].error_code, 0,
        "{:?}",
        answer.topics[0].error_message
    );
    cluster.wait_for("every broker shows the manual assignment", |m| {
        partition_of(m, "manual", 0) == Some((3, vec![3, 1], vec![3, 1]))
            && partition_of(m, "manual", 1) == Some((2, vec![2, 3], vec![2, 3]))
    });

    // Producer ids come from ZooKeeper's blocks: two brokers never hand out the same one.
    let mut ids = Vec::new();
    for id in 1..=3 {
        let mut request = InitProducerIdRequest::default();
        request.transactional_id = None;
        request.transaction_timeout_ms = 60_000;
        let answer = RawClient::connect(&cluster.addr(id)).send(0, &request);
        assert_eq!(answer.error_code, 0, "InitProducerId on broker {id}");
        ids.push(answer.producer_id.0);
    }
    let distinct: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "producer ids {ids:?}");

    // Metadata's auto-creation of __consumer_offsets on a cluster uses offsets.topic.*: RF 3
    // (Kafka's default, capped by the 3 live brokers) and its partition count.
    let mut request = kafka_protocol::messages::MetadataRequest::default();
    let mut wanted = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    wanted.name = Some(TopicName("__consumer_offsets".to_string().into()));
    request.topics = Some(vec![wanted]);
    request.allow_auto_topic_creation = true;
    let first = raw.send(12, &request);
    assert!(
        [0, 5].contains(&first.topics[0].error_code),
        "{:?}",
        first.topics[0]
    );
    cluster.wait_for("__consumer_offsets with RF 3 on every broker", |m| {
        m.topics
            .iter()
            .find(|t| {
                t.name
                    .as_ref()
                    .is_some_and(|n| n.as_str() == "__consumer_offsets")
            })
            .is_some_and(|t| {
                t.is_internal
                    && t.partitions.len() == 5
                    && t.partitions
                        .iter()
                        .all(|p| p.replica_nodes.len() == 3 && p.leader_id.0 > 0)
            })
    });

    // SIGKILL a broker that leads a partition: the controller finds it gone (its address
    // refuses connections) and elects a leader from the ISR with a higher leader epoch.
    let victim = other;
    let led = reference.iter().position(|r| r.0 == victim).unwrap() as i32;
    let epoch_before = leader_epoch(&cluster.metadata_from(victim).unwrap(), "replicated", led);
    let killed_at = Instant::now();
    cluster.kill(victim);
    cluster.wait_for("a new leader from the ISR", |m| {
        partition_of(m, "replicated", led).is_some_and(|(leader, _, isr)| {
            leader > 0 && leader != victim && isr.contains(&leader) && !isr.contains(&victim)
        }) && leader_epoch(m, "replicated", led) > epoch_before
    });
    let failover = killed_at.elapsed();
    eprintln!("leader failover seen by every survivor in {failover:?}");
    assert!(failover < Duration::from_secs(5), "{failover:?}");
    cluster.restart(victim);
    cluster.wait_for("the restarted broker is listed again", |m| {
        m.brokers.len() == 3
    });

    // SIGKILL the controller: another broker wins with a higher epoch, and the survivors say so.
    let killed_at = Instant::now();
    cluster.kill(controller);
    cluster.wait_for("a new controller among the survivors", |m| {
        m.controller_id.0 > 0 && m.controller_id.0 != controller
    });
    let failover = killed_at.elapsed();
    eprintln!("controller failover seen by every survivor in {failover:?}");
    assert!(
        failover < Duration::from_secs(15),
        "the dead controller was found faster than the 18 s session timeout: {failover:?}"
    );
    let second_epoch = controller_epoch(&cluster);
    assert!(second_epoch > first_epoch, "{second_epoch} > {first_epoch}");
    cluster.wait_for("the dead broker leaves the metadata", |m| {
        brokers(m).iter().all(|(id, _)| *id != controller) && m.brokers.len() == 2
    });
    // The old controller's epoch is now fenced on the survivors.
    let survivor = cluster.live()[0];
    let addr = cluster.addr(survivor);
    let code = runtime().block_on(async move {
        let peer = PeerConnection::connect(&addr, "stale-controller", Duration::from_secs(5))
            .await
            .expect("connect");
        let mut request = UpdateMetadataRequest::default();
        request.controller_id = kafka_protocol_3x::messages::BrokerId(controller);
        request.controller_epoch = first_epoch;
        peer.call_3x(&request, UPDATE_METADATA_VERSION, Duration::from_secs(10))
            .await
            .expect("answered")
            .error_code
    });
    assert_eq!(
        code, STALE_CONTROLLER_EPOCH,
        "epoch {first_epoch} after {second_epoch}"
    );
    // The current epoch addressed to an older registration of the receiver is fenced too.
    let addr = cluster.addr(survivor);
    let code = runtime().block_on(async move {
        let peer = PeerConnection::connect(&addr, "stale-registration", Duration::from_secs(5))
            .await
            .expect("connect");
        let mut request = UpdateMetadataRequest::default();
        request.controller_id = kafka_protocol_3x::messages::BrokerId(survivor);
        request.controller_epoch = second_epoch;
        request.broker_epoch = 1;
        peer.call_3x(&request, UPDATE_METADATA_VERSION, Duration::from_secs(10))
            .await
            .expect("answered")
            .error_code
    });
    assert_eq!(code, STALE_BROKER_EPOCH, "broker epoch 1");
}

/// The broker ids broker `id` lists, or `None` if it does not answer.
fn listed_by(cluster: &TestCluster, id: i32) -> Option<Vec<i32>> {
    cluster
        .metadata_from(id)
        .map(|m| brokers(&m).into_iter().map(|(id, _)| id).collect())
}

#[test]
fn a_broker_whose_session_expired_registers_again() {
    // Sessions of 4 s (ZooKeeper's minimum with its default 2 s tick).
    let mut cluster = TestCluster::start(3, &["zookeeper.session.timeout.ms=4000"]);
    let controller = cluster.controller();
    let frozen = (1..=3).find(|id| *id != controller).unwrap();
    let others: Vec<i32> = (1..=3).filter(|id| *id != frozen).collect();
    let pid = cluster.process(frozen).unwrap().child.id() as libc::pid_t;

    // SIGSTOP past the session timeout: ZooKeeper expires the session and drops the
    // registration; the controller tells the others.
    // SAFETY: signalling a child process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let stopped = Instant::now();
    wait_until(
        "the frozen broker leaves the others' metadata",
        Duration::from_secs(30),
        || {
            others
                .iter()
                .all(|id| listed_by(&cluster, *id).is_some_and(|ids| !ids.contains(&frozen)))
        },
    );
    eprintln!("frozen broker dropped after {:?}", stopped.elapsed());
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);

    // It finds its session expired, connects a new one and registers again.
    wait_until(
        "every broker lists all three again",
        Duration::from_secs(30),
        || (1..=3).all(|id| listed_by(&cluster, id).is_some_and(|ids| ids == [1, 2, 3])),
    );
    let log = cluster.log(frozen);
    assert!(
        log.contains("session expired"),
        "the broker noticed the expiry:\n{log}"
    );
    assert_eq!(log.matches("registered in ZooKeeper").count(), 2, "{log}");
}
