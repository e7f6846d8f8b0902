//! ElectLeaders on a 3-broker cluster with a real ZooKeeper (issue 10, item 2): after the
//! preferred leader of an RF 3 partition is killed, restarted and back in the ISR,
//! `strom partition elect-leaders` moves leadership back to it at a new leader epoch, acks=all
//! still works, and a second run answers ELECTION_NOT_NEEDED; a non-controller answers
//! NOT_CONTROLLER; an unknown partition answers UNKNOWN_TOPIC_OR_PARTITION; `--unclean` gives an
//! offline partition its live replica outside the ISR.

mod common;

use common::cluster::{partition_of, produce_acks_all, TestCluster};
use common::*;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};

const TOPIC: &str = "elect";

/// `strom -b <bootstrap> <args>`: (success, stdout, stderr).
fn strom(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    run_strom(bootstrap, 10_000, args)
}

fn leader_epoch(metadata: &MetadataResponse) -> i32 {
    metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == TOPIC))
        .map(|t| t.partitions[0].leader_epoch)
        .expect("topic in metadata")
}

#[test]
fn elect_leaders_moves_leadership_back_to_the_preferred_replica() {
    let mut cluster = TestCluster::start(3, &["replica.lag.time.max.ms=3000"]);
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3));
    cluster.create_topics(&[topic]);
    cluster.wait_for("the topic led with a full ISR", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(leader, _, isr)| leader >= 0 && isr.len() == 3)
    });
    let (leader, replicas, _) = cluster.partition(TOPIC, 0);
    let preferred = replicas[0];
    assert_eq!(
        leader, preferred,
        "a new partition is led by its first replica"
    );

    cluster.kill(preferred);
    cluster.wait_for("another broker leads", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(l, _, _)| l >= 0 && l != preferred)
    });
    let (interim, _, _) = cluster.partition(TOPIC, 0);
    let mut raw = RawClient::connect(&cluster.addr(interim));
    assert_eq!(produce_acks_all(&mut raw, TOPIC, b"while away"), 0);
    cluster.restart(preferred);
    cluster.wait_for("the preferred replica back in the ISR", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(_, _, isr)| isr.contains(&preferred))
    });
    let (still, _, _) = cluster.partition(TOPIC, 0);
    assert_eq!(
        still, interim,
        "a returning replica does not take leadership by itself"
    );
    let epoch_before = leader_epoch(&cluster.metadata());

    // A broker that is not the controller refuses, as Kafka's do.
    let controller = cluster.controller();
    let other = (1..=3).find(|id| *id != controller).unwrap();
    let mut request = ElectLeadersRequest::default();
    request.election_type = 0;
    request.timeout_ms = 5000;
    let mut entry = TopicPartitions::default();
    entry.topic = TopicName(StrBytes::from_static_str(TOPIC));
    entry.partitions = vec![0];
    request.topic_partitions = Some(vec![entry]);
    let answer = RawClient::connect(&cluster.addr(other)).send(2, &request);
    assert_eq!(answer.error_code, 41, "NOT_CONTROLLER from broker {other}");

    // Through any bootstrap broker: the CLI finds the controller.
    let (ok, out, err) = strom(
        &cluster.addr(other),
        &["--json", "partition", "elect-leaders", "--topic", TOPIC],
    );
    assert!(ok, "elect-leaders failed: {err}\n{out}");
    let rows: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(rows[0]["error"], "NONE", "{out}");
    // The controller answered once its own cache showed the new leader.
    let from_controller = cluster
        .metadata_from(controller)
        .expect("controller answers");
    assert_eq!(
        partition_of(&from_controller, TOPIC, 0).unwrap().0,
        preferred
    );
    cluster.wait_for("every broker sees the preferred leader", |m| {
        partition_of(m, TOPIC, 0).is_some_and(|(l, _, isr)| l == preferred && isr.len() == 3)
    });
    assert!(
        leader_epoch(&cluster.metadata()) > epoch_before,
        "a new leader epoch"
    );
    let mut raw = RawClient::connect(&cluster.addr(preferred));
    assert_eq!(produce_acks_all(&mut raw, TOPIC, b"after election"), 0);

    let (ok, out, err) = strom(
        &cluster.bootstrap(),
        &["partition", "elect-leaders", "--topic", TOPIC],
    );
    assert!(ok, "second run failed: {err}\n{out}");
    assert!(out.contains("ELECTION_NOT_NEEDED"), "{out}");
    assert!(
        out.contains("TOPIC") && out.contains("RESULT"),
        "a table: {out}"
    );

    let (ok, out, err) = strom(
        &cluster.bootstrap(),
        &[
            "partition",
            "elect-leaders",
            "--topic",
            TOPIC,
            "--partition",
            "7",
        ],
    );
    assert!(!ok, "an unknown partition fails");
    assert!(out.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{out}\n{err}");
}

#[test]
fn unclean_election_gives_an_offline_partition_a_replica_outside_the_isr() {
    let mut cluster = TestCluster::start(3, &["replica.lag.time.max.ms=3000"]);
    let (_, second) = cluster.offline_with_replica_outside_isr("offline");
    let args = ["partition", "elect-leaders", "--topic", "offline"];
    let (ok, out, _) = strom(&cluster.bootstrap(), &args);
    assert!(!ok, "a preferred election of a dead replica fails: {out}");
    assert!(out.contains("PREFERRED_LEADER_NOT_AVAILABLE"), "{out}");
    let (ok, out, err) = strom(&cluster.bootstrap(), &[&args[..], &["--unclean"]].concat());
    assert!(ok, "unclean election failed: {err}\n{out}");
    assert!(out.contains("NONE"), "{out}");
    cluster.wait_for("the returned replica leads alone", |m| {
        partition_of(m, "offline", 0).is_some_and(|(l, _, isr)| l == second && isr == vec![second])
    });
    let (ok, out, _) = strom(&cluster.bootstrap(), &[&args[..], &["--unclean"]].concat());
    assert!(ok && out.contains("ELECTION_NOT_NEEDED"), "{out}");
}
