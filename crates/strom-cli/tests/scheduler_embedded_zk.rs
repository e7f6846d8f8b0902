//! The service's embedded ZooKeeper: `strom scheduler run` with no ZooKeeper configured runs
//! one as a task of the local engine (Debian's `zookeeper` package), deploys it first (its step
//! completes once it answers `ruok`/`srvr`), then 3 brokers against it that form one cluster:
//! Metadata through the service's bootstrap list names all 3. The ZooKeeper is a pod like any:
//! listed, with an endpoint, and a kill -9 of its JVM is recovered in place on the same volume
//! (a topic created before is still there, the brokers still registered).

mod common;

use std::time::{Duration, Instant};

use common::service::*;
use common::{client_config, create_topic, wait_until};
use rdkafka::consumer::{BaseConsumer, Consumer};

fn metadata(bootstrap: &str) -> Option<(Vec<i32>, Vec<String>)> {
    let consumer: BaseConsumer = client_config(bootstrap, &[]).create().ok()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(5)).ok()?;
    let mut ids: Vec<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
    ids.sort();
    let topics = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    Some((ids, topics))
}

#[test]
fn without_a_zookeeper_the_service_runs_its_own_and_the_brokers_form_one_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let options = r#"{"brokers":{"count":3,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2},
        "zookeeper":{"cpus":0.1,"mem":256,"disk":100},
        "kafka":{"offsets_topic_replication_factor":3}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    service.embedded_zookeeper = true;
    let started = Instant::now();
    let api = service.start();
    wait_until(
        "the deploy plan completes",
        Duration::from_secs(120),
        || http(&api, "GET", "/v1/plans/deploy").0 == 200,
    );
    let deployed = started.elapsed();

    // The plan deployed the ZooKeeper phase before the brokers'.
    let (_, plan) = http(&api, "GET", "/v1/plans/deploy");
    let phases: Vec<&str> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["zookeeper", "broker"], "{plan}");
    assert_eq!(
        plan["phases"][0]["steps"][0]["name"],
        "zookeeper-0:[server]"
    );
    let (_, pods) = http(&api, "GET", "/v1/pod");
    assert_eq!(
        pods,
        serde_json::json!(["kafka-0", "kafka-1", "kafka-2", "zookeeper-0"])
    );
    let (status, zk_endpoint) = http(&api, "GET", "/v1/endpoints/zookeeper");
    assert_eq!(status, 200, "{zk_endpoint}");
    let zk_address = zk_endpoint["address"][0].as_str().unwrap().to_string();
    let zk_port: u16 = zk_address.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        zk_port.to_string(),
        service.ports.split('-').next().unwrap(),
        "the first port of the range"
    );

    // One cluster: every broker's Metadata names all three.
    let (_, brokers) = http(&api, "GET", "/v1/endpoints/broker");
    let bootstrap = brokers["bootstrap_servers"].as_str().unwrap().to_string();
    for address in brokers["address"].as_array().unwrap() {
        let address = address.as_str().unwrap().to_string();
        wait_until("3 brokers in Metadata", Duration::from_secs(30), || {
            metadata(&address).is_some_and(|(ids, _)| ids == [0, 1, 2])
        });
    }
    eprintln!(
        "figure: scheduler run -> ZooKeeper and 3 brokers deployed {deployed:?}, one cluster \
         in Metadata {:?}",
        started.elapsed()
    );
    create_topic(&bootstrap, "kept", 3, &[]);
    wait_until("the topic is known", Duration::from_secs(20), || {
        metadata(&bootstrap).is_some_and(|(_, topics)| topics.contains(&"kept".to_string()))
    });

    // kill -9 the ZooKeeper JVM: restarted in place on its volume.
    let killed = Instant::now();
    let zk_pid = service.pid("zookeeper-0-server").expect("ZooKeeper runs");
    // SAFETY: signalling the process group of a task this test's scheduler started.
    unsafe { libc::kill(-(zk_pid as i32), libc::SIGKILL) };
    wait_until(
        "ZooKeeper relaunched and ready",
        Duration::from_secs(60),
        || {
            service
                .pid("zookeeper-0-server")
                .is_some_and(|pid| pid != zk_pid)
                && http(&api, "GET", "/v1/plans/recovery").1["status"] == "COMPLETE"
        },
    );
    wait_until(
        "the cluster is whole again",
        Duration::from_secs(60),
        || {
            metadata(&bootstrap).is_some_and(|(ids, topics)| {
                ids == [0, 1, 2] && topics.contains(&"kept".to_string())
            })
        },
    );
    eprintln!(
        "figure: ZooKeeper kill -9 -> relaunched, cluster whole again {:?}",
        killed.elapsed()
    );
}
