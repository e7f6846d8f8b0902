//! The store with a topic of many partitions, against a real ZooKeeper server with its default
//! request limit (`jute.maxbuffer`, 1 MiB): the controller's partition-state creation must
//! not send one request larger than the server accepts (issue 10, 10,000 partitions on a
//! cluster). Every wait is bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_meta::replication::{LeaderAndIsr, TopicAssignment, TopicPartition};
use strom_meta::zk::{Election, ZkConfig, ZkStore};
use strom_testkit::zookeeper::ZooKeeper;

/// Enough partitions that their states in one `multi` (two creates each, ~280 bytes) exceed
/// ZooKeeper's 1 MiB request limit.
const PARTITIONS: i32 = 5_000;

async fn connect(connect: String) -> ZkStore {
    let mut config = ZkConfig::new(connect);
    config.session_timeout_ms = 10_000;
    config.connection_timeout_ms = Some(10_000);
    ZkStore::connect(&config).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_states_of_a_wide_topic_are_created_in_requests_zookeeper_accepts() {
    let server = ZooKeeper::start();
    let body = async {
        let store = connect(format!("{}/strom", server.connect_string())).await;
        let Election::Won(fence) = store.elect_controller(1, 0).await.unwrap() else {
            panic!("the only candidate wins");
        };
        let replicas = vec![1, 2, 3];
        let assignment = TopicAssignment::new(
            uuid::Uuid::new_v4(),
            (0..PARTITIONS).map(|p| (p, replicas.clone())).collect(),
        );
        store
            .create_topic("wide", &assignment, &BTreeMap::new())
            .await
            .unwrap();
        let states: BTreeMap<i32, LeaderAndIsr> = (0..PARTITIONS)
            .map(|p| {
                let state = LeaderAndIsr {
                    leader: replicas[p as usize % 3],
                    leader_epoch: 0,
                    isr: replicas.clone(),
                    controller_epoch: fence.epoch,
                };
                (p, state)
            })
            .collect();
        let versions = store
            .create_partition_states("wide", &states, &fence)
            .await
            .expect("every state created");
        assert_eq!(versions.len(), PARTITIONS as usize);
        assert!(versions.values().all(|v| *v == 0), "new znodes: version 0");
        let read = store.partition_states("wide").await.unwrap();
        assert_eq!(read.len(), PARTITIONS as usize);
        let last = PARTITIONS - 1;
        assert_eq!(read[&last].value, states[&last]);
        // The session survived (a request over the limit makes the server drop it).
        let tp = TopicPartition::new("wide", 0);
        let mut next = states[&0].clone();
        next.leader_epoch = 1;
        assert_eq!(
            store
                .update_partition_state(&tp, &next, 0, Some(&fence))
                .await
                .unwrap(),
            1
        );
    };
    tokio::time::timeout(Duration::from_secs(120), body)
        .await
        .expect("bounded");
}
