//! A topic's assignment rewritten in place (CreatePartitions) gives a `TopicsChanged` event
//! through the per-topic data watches, and the conditional write refuses a stale version and
//! a deleted topic, against a real ZooKeeper server. Every wait is bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_meta::replication::TopicAssignment;
use strom_meta::zk::{ZkConfig, ZkError, ZkEvent, ZkEvents, ZkStore};
use strom_testkit::zookeeper::ZooKeeper;

async fn connect(connect: String) -> ZkStore {
    let mut config = ZkConfig::new(connect);
    config.session_timeout_ms = 4_000;
    config.connection_timeout_ms = Some(10_000);
    ZkStore::connect(&config).await.expect("connect")
}

/// Whether a `TopicsChanged` arrives within `wait` (other events are skipped).
async fn topics_changed(events: &mut ZkEvents, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(ZkEvent::TopicsChanged)) => return true,
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_assignment_fires_topics_changed() {
    let server = ZooKeeper::start();
    let body = async {
        let chroot = format!("{}/strom", server.connect_string());
        let watcher = connect(chroot.clone()).await;
        let writer = connect(chroot).await;
        let mut events = watcher.watch().await.unwrap();
        let mut assignment =
            TopicAssignment::new(uuid::Uuid::new_v4(), BTreeMap::from([(0, vec![1, 2])]));
        writer
            .create_topic("grow", &assignment, &BTreeMap::new())
            .await
            .unwrap();
        assert!(topics_changed(&mut events, Duration::from_secs(10)).await);
        // Let the data watch on the new topic be armed, then drain what came meanwhile.
        tokio::time::sleep(Duration::from_millis(500)).await;
        while events.try_next().is_some() {}

        let read = writer.topic_assignment("grow").await.unwrap().unwrap();
        assignment.partitions.insert(1, vec![2, 1]);
        let version = writer
            .set_topic_assignment("grow", &assignment, read.version)
            .await
            .unwrap();
        assert_eq!(version, read.version + 1);
        assert!(
            topics_changed(&mut events, Duration::from_secs(10)).await,
            "no event for a rewritten assignment"
        );
        let now = watcher.topic_assignment("grow").await.unwrap().unwrap();
        assert_eq!(now.value, assignment);

        // A second rewrite also fires: the watch was armed again.
        assignment.partitions.insert(2, vec![1, 2]);
        writer
            .set_topic_assignment("grow", &assignment, version)
            .await
            .unwrap();
        assert!(topics_changed(&mut events, Duration::from_secs(10)).await);

        // A stale version and a missing topic are refused.
        let stale = writer
            .set_topic_assignment("grow", &assignment, version)
            .await
            .unwrap_err();
        assert!(matches!(stale, ZkError::BadVersion { .. }), "{stale}");
        let missing = writer
            .set_topic_assignment("absent", &assignment, 0)
            .await
            .unwrap_err();
        assert!(matches!(missing, ZkError::UnknownTopic { .. }), "{missing}");
    };
    tokio::time::timeout(Duration::from_secs(60), body)
        .await
        .expect("the test finishes within 60 s");
}
