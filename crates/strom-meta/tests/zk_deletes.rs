//! The store's deletions for dead processes found by a probe (`delete_broker_registration`,
//! `delete_controller_if`) and the partition states with their modification zxids, against a
//! real ZooKeeper server. Every wait is bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_meta::replication::{BrokerRegistration, Endpoint, LeaderAndIsr, TopicAssignment};
use strom_meta::zk::{Election, ZkConfig, ZkStore};
use strom_testkit::zookeeper::ZooKeeper;

async fn connect(connect: String) -> ZkStore {
    let mut config = ZkConfig::new(connect);
    config.session_timeout_ms = 4_000;
    config.connection_timeout_ms = Some(10_000);
    ZkStore::connect(&config).await.expect("connect")
}

fn registration(id: i32) -> BrokerRegistration {
    BrokerRegistration {
        id,
        endpoints: vec![Endpoint {
            listener: "PLAINTEXT".into(),
            security_protocol: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9000 + id as u16,
        }],
        rack: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_session_deletes_only_the_registration_and_controller_it_names() {
    let server = ZooKeeper::start();
    let body = async {
        let chroot = format!("{}/strom", server.connect_string());
        let dead = connect(chroot.clone()).await;
        let prober = connect(chroot).await;
        let epoch = dead
            .register_broker(&registration(1), -1, 0, Duration::ZERO)
            .await
            .unwrap();
        // A registration of another epoch (a restarted broker) is left alone.
        assert!(!prober
            .delete_broker_registration(1, epoch - 1)
            .await
            .unwrap());
        assert!(prober.brokers().await.unwrap().contains_key(&1));
        assert!(prober.delete_broker_registration(1, epoch).await.unwrap());
        assert!(!prober.brokers().await.unwrap().contains_key(&1));
        assert!(!prober.delete_broker_registration(1, epoch).await.unwrap());

        let Election::Won(fence) = dead.elect_controller(1, 0).await.unwrap() else {
            panic!("the only candidate wins");
        };
        assert!(!prober.delete_controller_if(2).await.unwrap());
        assert_eq!(prober.controller().await.unwrap(), Some(1));
        assert!(prober.delete_controller_if(1).await.unwrap());
        assert_eq!(prober.controller().await.unwrap(), None);
        assert!(!prober.delete_controller_if(1).await.unwrap());

        // Partition states come with their mzxids, which grow with each write.
        let assignment = TopicAssignment::new(
            uuid::Uuid::new_v4(),
            BTreeMap::from([(0, vec![1]), (1, vec![1])]),
        );
        prober
            .create_topic("t", &assignment, &BTreeMap::new())
            .await
            .unwrap();
        let state = LeaderAndIsr {
            leader: 1,
            leader_epoch: 0,
            isr: vec![1],
            controller_epoch: fence.epoch,
        };
        let states = BTreeMap::from([(0, state.clone()), (1, state.clone())]);
        dead.create_partition_states("t", &states, &fence)
            .await
            .unwrap();
        let (read, zxids) = dead.all_partition_states_with_zxids().await.unwrap();
        assert_eq!(read, dead.all_partition_states().await.unwrap());
        assert_eq!(read.len(), 2);
        let tp = strom_meta::replication::TopicPartition::new("t", 0);
        let before = zxids[&tp];
        assert!(
            before > epoch,
            "written after the registration: {before} > {epoch}"
        );
        let mut next = state;
        next.leader_epoch = 1;
        dead.update_partition_state(&tp, &next, 0, Some(&fence))
            .await
            .unwrap();
        let (_, zxids) = dead.all_partition_states_with_zxids().await.unwrap();
        assert!(zxids[&tp] > before);
        assert_eq!(zxids.len(), 2);
    };
    tokio::time::timeout(Duration::from_secs(120), body)
        .await
        .expect("bounded");
}
