//! Topic configuration on a 3-broker cluster (ZooKeeper's `/config/topics/<t>` and
//! `/config/changes`): overrides given at creation reach the brokers that host the topic, a
//! change made through any broker reaches the leader without a restart, and every broker
//! describes the same overrides.

mod common;

use std::time::Duration;

use common::cluster::{partition_of, produce_acks_all, TestCluster};
use common::*;
use rdkafka::admin::{
    AdminOptions, AlterConfig, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication,
};

const TOPIC: &str = "configured";
/// Kafka's NOT_ENOUGH_REPLICAS.
const NOT_ENOUGH_REPLICAS: i16 = 19;

/// `key`'s value as broker `id` alone describes `TOPIC`, and whether it is an override
/// (source DYNAMIC_TOPIC_CONFIG).
fn described(cluster: &TestCluster, id: i32, key: &str) -> (Option<String>, bool) {
    let admin = admin(&cluster.addr(id));
    let answer = client_runtime()
        .block_on(admin.describe_configs(
            &[ResourceSpecifier::Topic(TOPIC)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("DescribeConfigs");
    let resource = answer[0].as_ref().expect("the topic is described");
    let entry = resource.get(key).expect("the key is described");
    let dynamic = matches!(entry.source, ConfigSource::DynamicTopic);
    (entry.value.clone(), dynamic)
}

#[test]
fn topic_overrides_reach_every_broker_and_a_change_applies_without_a_restart() {
    let mut cluster = TestCluster::start(3, &["replica.lag.time.max.ms=3000"]);
    let admin = admin(&cluster.bootstrap());
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3))
        .set("min.insync.replicas", "3")
        .set("retention.ms", "7200000");
    for result in client_runtime()
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("CreateTopics")
    {
        result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    cluster.wait_for("the topic led with a full ISR everywhere", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(l, _, isr)| l > 0 && isr.len() == 3)
    });
    for id in 1..=3 {
        assert_eq!(
            described(&cluster, id, "min.insync.replicas"),
            (Some("3".to_string()), true),
            "broker {id} describes the override given at creation"
        );
    }
    let (leader, replicas, _) = cluster.partition(TOPIC, 0);
    let mut raw = RawClient::connect(&cluster.addr(leader));
    assert_eq!(produce_acks_all(&mut raw, TOPIC, b"all three"), 0);

    // One follower gone: an ISR of two is below the topic's min.insync.replicas of 3, which
    // the leader knows only from the topic's override (the broker default is 1).
    let follower = *replicas.iter().find(|r| **r != leader).unwrap();
    cluster.kill(follower);
    cluster.wait_for("the ISR without the killed follower", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(l, _, isr)| l == leader && isr.len() == 2)
    });
    let mut raw = RawClient::connect(&cluster.addr(leader));
    wait_until(
        "the leader refuses acks=all below min.insync.replicas",
        Duration::from_secs(20),
        || produce_acks_all(&mut raw, TOPIC, b"two of three") == NOT_ENOUGH_REPLICAS,
    );

    // Lowered through the broker that neither leads nor was killed: the change reaches the
    // leader through /config/changes, with no restart.
    let other = (1..=3).find(|id| *id != leader && *id != follower).unwrap();
    let change = AlterConfig::new(ResourceSpecifier::Topic(TOPIC))
        .set("min.insync.replicas", "2")
        .set("retention.ms", "7200000");
    let answer = client_runtime()
        .block_on(admin_on(&cluster, other).alter_configs(&[change], &AdminOptions::new()))
        .expect("AlterConfigs");
    assert!(answer[0].is_ok(), "{answer:?}");
    wait_until(
        "the leader accepts acks=all with two in-sync replicas",
        Duration::from_secs(20),
        || produce_acks_all(&mut raw, TOPIC, b"two of two needed") == 0,
    );
    for id in [leader, other] {
        assert_eq!(
            described(&cluster, id, "min.insync.replicas"),
            (Some("2".to_string()), true),
            "broker {id} describes the changed override"
        );
        assert_eq!(
            described(&cluster, id, "retention.ms").0.as_deref(),
            Some("7200000")
        );
    }

    // The killed follower comes back and reads the current overrides, not the old ones.
    cluster.restart(follower);
    cluster.wait_for("the follower back in the ISR", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(_, _, isr)| isr.len() == 3)
    });
    assert_eq!(
        described(&cluster, follower, "min.insync.replicas")
            .0
            .as_deref(),
        Some("2")
    );
}

fn admin_on(
    cluster: &TestCluster,
    id: i32,
) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    admin(&cluster.addr(id))
}
