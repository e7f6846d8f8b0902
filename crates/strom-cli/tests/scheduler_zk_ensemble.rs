//! The embedded ZooKeeper as an ensemble (`zookeeper.count: 3`): three servers of Debian's
//! `zookeeper` deployed serially, one per virtual agent on ports fixed in advance (server `i` on
//! the first ports of agent `i`'s share of `--ports`), a quorum with one leader before the
//! brokers' phase starts, and three brokers whose `zookeeper.connect` lists all three servers
//! forming one cluster. A kill -9 of the leader is recovered in place while the cluster keeps
//! serving; a second kill -9 of the same server meets the crash-loop back-off (10 s), so records
//! are produced (acks=all, RF 3) and consumed while it is certainly absent, and it then comes
//! back in place and rejoins. Refusals: an even count, and more servers than agents under the
//! pod's MAX_PER hostname rule, each naming the key, the value and the rule. Bounded waits.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::service::*;
use common::{admin, client_config, client_runtime, consume, producer, wait_until};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;

/// A four-letter word's answer, or `None` when nothing listens.
fn four_letter_word(port: u16, word: &str) -> Option<String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    stream.write_all(word.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn mode(port: u16) -> Option<String> {
    let srvr = four_letter_word(port, "srvr")?;
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(|m| m.trim().to_string())
}

fn broker_ids(bootstrap: &str) -> Option<Vec<i32>> {
    let consumer: BaseConsumer = client_config(bootstrap, &[]).create().ok()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(5)).ok()?;
    let mut ids: Vec<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
    ids.sort();
    Some(ids)
}

/// Produces `count` records with acks=all, each acknowledged, and returns how long it took.
fn produce(bootstrap: &str, topic: &str, from: u64, count: u64) -> Duration {
    let started = Instant::now();
    let producer = producer(
        bootstrap,
        &[("acks", "all"), ("message.timeout.ms", "20000")],
    );
    let runtime = client_runtime();
    for i in from..from + count {
        let value = format!("record-{i}");
        let delivery = runtime.block_on(producer.send(
            FutureRecord::<(), _>::to(topic).payload(&value),
            Duration::from_secs(20),
        ));
        if let Err((error, _)) = delivery {
            panic!("record {i} not acknowledged: {error}");
        }
    }
    started.elapsed()
}

#[test]
fn a_three_server_ensemble_serves_the_brokers_and_survives_a_killed_server() {
    let dir = tempfile::tempdir().unwrap();
    let options = r#"{"brokers":{"count":3,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2},
        "zookeeper":{"count":3,"cpus":0.1,"mem":256,"heap_mb":128,"disk":100},
        "kafka":{"offsets_topic_replication_factor":3}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    service.embedded_zookeeper = true;
    let first_port: u16 = service.ports.split('-').next().unwrap().parse().unwrap();
    // 90 ports over 3 agents: 30 each; server i on the first three of agent i's.
    let zk_ports: Vec<u16> = (0..3).map(|i| first_port + 30 * i).collect();
    let started = Instant::now();
    let api = service.start();
    wait_until(
        "the deploy plan completes",
        Duration::from_secs(240),
        || http(&api, "GET", "/v1/plans/deploy").0 == 200,
    );
    let deployed = started.elapsed();
    let (_, plan) = http(&api, "GET", "/v1/plans/deploy");
    let zk_steps: Vec<&str> = plan["phases"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        zk_steps,
        [
            "zookeeper-0:[server]",
            "zookeeper-1:[server]",
            "zookeeper-2:[server]"
        ],
        "{plan}"
    );
    let (_, zk_endpoint) = http(&api, "GET", "/v1/endpoints/zookeeper");
    let mut advertised: Vec<String> = zk_endpoint["address"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    advertised.sort();
    let expected: Vec<String> = zk_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    assert_eq!(advertised, expected, "{zk_endpoint}");
    // One server per agent.
    let mut hosts: Vec<String> = (0..3)
        .map(|i| {
            let (_, info) = http(&api, "GET", &format!("/v1/pod/zookeeper-{i}/info"));
            info[0]["info"]["hostname"].as_str().unwrap().to_string()
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 3, "{hosts:?}");
    // A quorum: one leader, two followers.
    let mut modes: Vec<String> = zk_ports.iter().filter_map(|&p| mode(p)).collect();
    modes.sort();
    assert_eq!(modes, ["follower", "follower", "leader"]);

    // The brokers form one cluster through it, and zookeeper.connect names every server.
    let (_, brokers) = http(&api, "GET", "/v1/endpoints/broker");
    let bootstrap = brokers["bootstrap_servers"].as_str().unwrap().to_string();
    wait_until("3 brokers in Metadata", Duration::from_secs(60), || {
        broker_ids(&bootstrap).is_some_and(|ids| ids == [0, 1, 2])
    });
    let (_, info) = http(&api, "GET", "/v1/pod/kafka-0/info");
    let connect = info[0]["info"]["env"]["KAFKA_ZOOKEEPER_URI"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        connect,
        format!("{}/dcos-service-kafka", expected.join(",")),
        "{info}"
    );
    eprintln!("figure: scheduler run -> 3 ZooKeeper servers and 3 brokers deployed {deployed:?}");
    let topic = NewTopic::new("ensemble", 3, TopicReplication::Fixed(3));
    for result in client_runtime()
        .block_on(admin(&bootstrap).create_topics(&[topic], &AdminOptions::new()))
        .expect("CreateTopics")
    {
        result.expect("topic created");
    }
    produce(&bootstrap, "ensemble", 0, 50);

    // kill -9 the leader: recovered in place (same ports, so same agent and volume).
    let leader = (0..3)
        .find(|&i| mode(zk_ports[i]).as_deref() == Some("leader"))
        .unwrap();
    let name = format!("zookeeper-{leader}-server");
    let pid = service.pid(&name).expect("the leader runs");
    let killed = Instant::now();
    // SAFETY: signalling the process group of a task this test's scheduler started.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    produce(&bootstrap, "ensemble", 50, 50);
    wait_until(
        "the server relaunched and serving",
        Duration::from_secs(90),
        || {
            service.pid(&name).is_some_and(|p| p != pid)
                && mode(zk_ports[leader]).is_some_and(|m| m == "leader" || m == "follower")
        },
    );
    eprintln!(
        "figure: ZooKeeper leader kill -9 -> relaunched in place and serving {:?}",
        killed.elapsed()
    );

    // kill -9 it again: the crash-loop back-off keeps it down for 10 s, and the cluster serves.
    let pid = service.pid(&name).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    let killed = Instant::now();
    wait_until("the server gone", Duration::from_secs(10), || {
        four_letter_word(zk_ports[leader], "ruok").is_none()
    });
    let took = produce(&bootstrap, "ensemble", 100, 50);
    let records = consume(
        &bootstrap,
        "ensemble",
        &[0, 1, 2],
        150,
        Duration::from_secs(30),
    );
    assert_eq!(records.len(), 150);
    let mut values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    values.sort_by_key(|v| v["record-".len()..].parse::<u64>().unwrap());
    let wanted: Vec<String> = (0..150).map(|i| format!("record-{i}")).collect();
    assert_eq!(values, wanted);
    assert!(
        four_letter_word(zk_ports[leader], "ruok").is_none(),
        "produced and consumed while server {leader} was absent ({:?} after the kill)",
        killed.elapsed()
    );
    eprintln!(
        "figure: 50 acks=all records in {took:?} and 150 consumed with ZooKeeper server {leader} \
         down ({:?} after the kill)",
        killed.elapsed()
    );
    let (_, recovery) = http(&api, "GET", "/v1/plans/recovery");
    assert!(recovery.to_string().contains("back-off"), "{recovery}");
    wait_until(
        "the server back after its back-off",
        Duration::from_secs(120),
        || mode(zk_ports[leader]).is_some_and(|m| m == "leader" || m == "follower"),
    );
    let mut modes: Vec<String> = zk_ports.iter().filter_map(|&p| mode(p)).collect();
    modes.sort();
    assert_eq!(modes, ["follower", "follower", "leader"]);
    assert_eq!(
        four_letter_word(zk_ports[leader], "conf")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("serverId="))
            .map(str::to_string),
        Some(format!("serverId={}", leader + 1)),
        "the same myid, from its own volume"
    );
    wait_until("the cluster is whole", Duration::from_secs(60), || {
        broker_ids(&bootstrap).is_some_and(|ids| ids == [0, 1, 2])
    });
}

#[test]
fn even_counts_and_more_servers_than_agents_are_refused_at_start() {
    for (count, words) in [
        ("4", "an even number of servers"),
        (
            "5",
            r#"more servers than agents (3) under the ZooKeeper pod's placement rule [["hostname","MAX_PER","1"]]"#,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = format!(r#"{{"zookeeper":{{"count":{count}}}}}"#);
        let service = Service::new(dir.path(), &options);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(["scheduler", "run", "--service", "kafka", "--options"])
            .arg(&service.options)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args([
                "--api",
                "127.0.0.1:0",
                "--agents",
                "3",
                "--ports",
                &service.ports,
            ])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("zookeeper.count: {count}: ")) && stderr.contains(words),
            "{stderr}"
        );
    }
}
