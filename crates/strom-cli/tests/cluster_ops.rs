//! What an operator sees of a 3-broker cluster on a real ZooKeeper (issue 8, items 2, 5, 6 and
//! 8): the Prometheus metrics under Kafka's JMX-exporter names through a broker kill and
//! return, `strom topic describe` on a cluster, unclean leader election per topic, and a
//! leader whose ZooKeeper session expired acknowledging no acks=all produce.

mod common;

use std::time::Duration;

use common::cluster::{partition_of, produce_acks_all, TestCluster};
use common::*;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

/// Creates `name` with `partitions` partitions of `replication` replicas and `configs`
/// through the cluster's admin API.
fn create_replicated(
    cluster: &TestCluster,
    name: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&str, &str)],
) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    cluster.create_topics(&[topic]);
}

/// `GET /metrics` of broker `id` (empty if it does not answer).
fn scrape(cluster: &mut TestCluster, id: i32) -> String {
    cluster.scrape_metrics(id).unwrap_or_default()
}

/// The value of `series` (name and labels exactly as rendered) in a scrape.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `series` of every running broker, by broker id (a missing series panics with the scrape).
fn samples(cluster: &mut TestCluster, series: &str) -> Vec<(i32, f64)> {
    cluster
        .live()
        .into_iter()
        .map(|id| {
            let body = scrape(cluster, id);
            let value = sample(&body, series)
                .unwrap_or_else(|| panic!("broker {id} has no {series}:\n{body}"));
            (id, value)
        })
        .collect()
}

fn sum(cluster: &mut TestCluster, series: &str) -> f64 {
    samples(cluster, series).iter().map(|(_, v)| v).sum()
}

const ACTIVE: &str = "kafka_controller_kafkacontroller_activecontrollercount";
const OFFLINE: &str = "kafka_controller_kafkacontroller_offlinepartitionscount";
const UNDER_REPLICATED: &str = "kafka_server_replicamanager_underreplicatedpartitions";
const ELECTIONS: &str = "kafka_controller_controllerstats_leaderelectionrateandtimems_count";
const UNCLEAN: &str = "kafka_controller_controllerstats_uncleanleaderelections_total";
const UNDER_MIN_ISR: &str = "kafka_server_replicamanager_underminisrpartitioncount";
const EXPANDS: &str = "kafka_server_replicamanager_isrexpands_total";
const SHRINKS: &str = "kafka_server_replicamanager_isrshrinks_total";
const MAX_LAG: &str = "kafka_server_replicafetchermanager_maxlag{clientId=\"Replica\"}";
const PARTITIONS: &str = "kafka_server_replicamanager_partitioncount";
const LEADERS: &str = "kafka_server_replicamanager_leadercount";

/// Produces `count` small records to `topic` with `acks`; returns how many were acknowledged.
fn produce(bootstrap: &str, topic: &str, count: u64, acks: &str) -> u64 {
    use rdkafka::producer::FutureRecord;
    let producer = producer(
        bootstrap,
        &[
            ("acks", acks),
            ("linger.ms", "5"),
            ("message.timeout.ms", "20000"),
        ],
    );
    let records: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| (i.to_string(), payload(i, 100)))
        .collect();
    client_runtime().block_on(async {
        let mut futures = Vec::new();
        for (key, value) in &records {
            futures.push(producer.send(
                FutureRecord::to(topic).key(key).payload(value),
                Duration::from_secs(20),
            ));
        }
        let mut acknowledged = 0;
        for future in futures {
            acknowledged += u64::from(future.await.is_ok());
        }
        acknowledged
    })
}

#[test]
fn metrics_follow_a_broker_kill_and_its_return() {
    let mut cluster = TestCluster::start(3, &["replica.lag.time.max.ms=3000"]);
    create_replicated(&cluster, "watched", 3, 3, &[]);
    cluster.wait_for("every partition led with a full ISR everywhere", |m| {
        (0..3).all(|p| {
            partition_of(m, "watched", p)
                .is_some_and(|(leader, _, isr)| leader > 0 && isr.len() == 3)
        })
    });
    wait_until(
        "the metrics of a healthy cluster",
        Duration::from_secs(30),
        || {
            sum(&mut cluster, ACTIVE) == 1.0
                && sum(&mut cluster, UNDER_REPLICATED) == 0.0
                && sum(&mut cluster, LEADERS) == 3.0
                && samples(&mut cluster, PARTITIONS)
                    .iter()
                    .all(|(_, n)| *n == 3.0)
        },
    );
    let controller = cluster.controller();
    for (id, active) in samples(&mut cluster, ACTIVE) {
        assert_eq!(active, f64::from(u8::from(id == controller)), "broker {id}");
    }
    assert_eq!(sum(&mut cluster, OFFLINE), 0.0);
    assert_eq!(sum(&mut cluster, UNCLEAN), 0.0);
    let elections_before = sum(&mut cluster, ELECTIONS);
    assert_eq!(
        produce(&cluster.bootstrap(), "watched", 30, "all"),
        30,
        "acks=all on a healthy cluster"
    );

    // kill -9 a broker that leads a partition and is not the controller.
    let victim = (1..=3)
        .find(|id| *id != controller && (0..3).any(|p| cluster.partition("watched", p).0 == *id))
        .expect("a non-controller leads a partition");
    cluster.kill(victim);
    let killed = std::time::Instant::now();
    wait_until(
        "survivors report every partition under-replicated and an election",
        Duration::from_secs(30),
        || {
            sum(&mut cluster, UNDER_REPLICATED) == 3.0
                && sum(&mut cluster, ELECTIONS) > elections_before
        },
    );
    eprintln!(
        "survivors' metrics showed the kill after {:?}",
        killed.elapsed()
    );
    assert_eq!(
        sum(&mut cluster, OFFLINE),
        0.0,
        "every partition has a leader"
    );
    assert_eq!(sum(&mut cluster, ACTIVE), 1.0);
    // Written while the victim is down: it must catch up before it rejoins.
    assert_eq!(produce(&cluster.bootstrap(), "watched", 30, "all"), 30);
    let expands_before = sum(&mut cluster, EXPANDS);

    cluster.restart(victim);
    let restarted = std::time::Instant::now();
    wait_until(
        "the returned broker caught up and rejoined every ISR",
        Duration::from_secs(60),
        || {
            sum(&mut cluster, UNDER_REPLICATED) == 0.0
                && sum(&mut cluster, EXPANDS) >= expands_before + 3.0
                && sum(&mut cluster, MAX_LAG) == 0.0
        },
    );
    eprintln!(
        "metrics back to healthy {:?} after the restart",
        restarted.elapsed()
    );
    cluster.wait_for("full ISRs in the metadata", |m| {
        (0..3).all(|p| partition_of(m, "watched", p).is_some_and(|(_, _, isr)| isr.len() == 3))
    });
    assert_eq!(sum(&mut cluster, ACTIVE), 1.0);
    assert_eq!(sum(&mut cluster, OFFLINE), 0.0);
    assert_eq!(
        samples(&mut cluster, PARTITIONS)
            .iter()
            .find(|(id, _)| *id == victim)
            .map(|(_, n)| *n),
        Some(3.0),
        "the returned broker hosts its replicas"
    );
}

/// `strom -b <broker> [--json] topic describe <topic>`: stdout, asserting success.
fn describe(cluster: &TestCluster, broker: i32, topic: &str, json: bool) -> String {
    let mut args = vec!["-b".to_string(), cluster.addr(broker)];
    if json {
        args.push("--json".into());
    }
    args.extend(["topic", "describe", topic].map(String::from));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(&args)
        .output()
        .expect("run strom");
    assert!(
        output.status.success(),
        "strom {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The first partition of `topic` in `strom topic describe --json` through `broker`.
fn described_partition(cluster: &TestCluster, broker: i32, topic: &str) -> serde_json::Value {
    let text = describe(cluster, broker, topic, true);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["partitions"][0].clone()
}

/// Sends `signal` to broker `id`'s process.
fn signal(cluster: &mut TestCluster, id: i32, signal: libc::c_int) {
    let pid = cluster.process(id).unwrap().child.id() as libc::pid_t;
    // SAFETY: signalling a child process this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// (leader, ISR) of `topic`-0 as broker `id` answers Metadata.
fn state_on(cluster: &TestCluster, id: i32, topic: &str) -> Option<(i32, Vec<i32>)> {
    let (leader, _, isr) = partition_of(&cluster.metadata_from(id)?, topic, 0)?;
    Some((leader, isr))
}

#[test]
fn an_isr_without_live_members_stays_offline_unless_the_topic_allows_unclean_election() {
    let mut cluster = TestCluster::start(3, &["replica.lag.time.max.ms=2000"]);
    let controller = cluster.controller();
    let others: Vec<i32> = (1..=3).filter(|id| *id != controller).collect();
    let (leader, follower) = (others[0], others[1]);
    for (topic, unclean) in [("clean", "false"), ("unclean", "true")] {
        let assignment: &[&[i32]] = &[&[leader, follower]];
        let new = NewTopic::new(topic, 1, TopicReplication::Variable(assignment))
            .set("unclean.leader.election.enable", unclean);
        cluster.create_topics(&[new]);
    }
    cluster.wait_for("both topics led with a full ISR", |m| {
        ["clean", "unclean"].iter().all(|t| {
            partition_of(m, t, 0) == Some((leader, vec![leader, follower], vec![leader, follower]))
        })
    });
    for topic in ["clean", "unclean"] {
        assert_eq!(produce(&cluster.bootstrap(), topic, 20, "all"), 20);
        let shown = described_partition(&cluster, controller, topic);
        assert_eq!(shown["status"], "ok", "{shown}");
        assert_eq!(shown["high_watermark"], 20, "{shown}");
    }

    // The follower stops fetching (SIGSTOP: its process and session live on): its leader
    // drops it from both ISRs after replica.lag.time.max.ms.
    let shrinks_before = sample(&scrape(&mut cluster, leader), SHRINKS).unwrap();
    signal(&mut cluster, follower, libc::SIGSTOP);
    wait_until(
        "the leader shrank both ISRs to itself",
        Duration::from_secs(15),
        || {
            ["clean", "unclean"]
                .iter()
                .all(|t| state_on(&cluster, controller, t) == Some((leader, vec![leader])))
        },
    );
    assert_eq!(
        sample(&scrape(&mut cluster, leader), SHRINKS),
        Some(shrinks_before + 2.0),
        "two ISR shrinks counted by the leader"
    );

    // kill -9 the leader: no ISR member is alive. The clean topic goes offline; the unclean
    // one elects the out-of-sync follower (still registered).
    cluster.kill(leader);
    wait_until(
        "clean offline, unclean led by the follower",
        Duration::from_secs(10),
        || {
            state_on(&cluster, controller, "clean") == Some((-1, vec![leader]))
                && state_on(&cluster, controller, "unclean") == Some((follower, vec![follower]))
        },
    );
    let body = scrape(&mut cluster, controller);
    assert_eq!(sample(&body, OFFLINE), Some(1.0), "{body}");
    assert_eq!(sample(&body, UNCLEAN), Some(1.0), "{body}");
    signal(&mut cluster, follower, libc::SIGCONT);
    cluster.wait_for("the follower leads the unclean topic", |m| {
        partition_of(m, "unclean", 0).is_some_and(|(l, _, _)| l == follower)
    });
    assert_eq!(
        produce(&cluster.bootstrap(), "unclean", 10, "all"),
        10,
        "the uncleanly elected leader serves"
    );
    // The clean topic stays offline although a replica is alive.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        state_on(&cluster, follower, "clean"),
        Some((-1, vec![leader]))
    );
    let clean = described_partition(&cluster, controller, "clean");
    assert_eq!(clean["status"], "offline", "{clean}");
    assert_eq!(clean["leader"], -1, "{clean}");
    assert_eq!(clean["high_watermark"], serde_json::Value::Null, "{clean}");
    let unclean = described_partition(&cluster, controller, "unclean");
    assert_eq!(unclean["status"], "under-replicated", "{unclean}");
    assert_eq!(unclean["leader"], follower, "{unclean}");
    assert_eq!(unclean["isr"], serde_json::json!([follower]), "{unclean}");
    let table = describe(&cluster, controller, "clean", false);
    assert!(
        table.contains("OFFLINE             1") && table.contains("offline"),
        "{table}"
    );

    // An operator allows unclean election on the offline topic (IncrementalAlterConfigs
    // through a broker that is not the controller): the controller hears of it through
    // /config/changes and elects the live replica.
    alter_topic_config(
        &cluster.addr(follower),
        "clean",
        "unclean.leader.election.enable=true",
    );
    cluster.wait_for("the clean topic led by the live replica", |m| {
        partition_of(m, "clean", 0).is_some_and(|(l, _, isr)| l == follower && isr == [follower])
    });
    assert_eq!(
        sample(&scrape(&mut cluster, controller), UNCLEAN),
        Some(2.0)
    );
    assert_eq!(
        config_on(
            &cluster,
            controller,
            "clean",
            "unclean.leader.election.enable"
        )
        .as_deref(),
        Some("true"),
        "every broker learned the change"
    );

    // The old leader returns and rejoins both ISRs as a follower.
    cluster.restart(leader);
    cluster.wait_for("both topics healthy again", |m| {
        ["clean", "unclean"].iter().all(|t| {
            partition_of(m, t, 0).is_some_and(|(l, _, isr)| l == follower && isr.len() == 2)
        })
    });
    let table = describe(&cluster, controller, "unclean", false);
    assert!(
        table.contains("UNDER-REPLICATED    0") && table.contains(" ok "),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&describe(&cluster, leader, "unclean", true)).unwrap();
    assert_eq!(json["offline_partitions"], 0, "{json}");
    assert_eq!(json["partitions"][0]["high_watermark"], 30, "{json}");
    assert!(
        json["id"].as_str().is_some_and(|id| id.len() == 22),
        "{json}"
    );
}

/// `strom topic alter-config TOPIC --set SETTING` through broker `addr`; panics on failure.
fn alter_topic_config(addr: &str, topic: &str, setting: &str) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["-b", addr, "topic", "alter-config", topic, "--set", setting])
        .output()
        .expect("run strom");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn value_name(topic: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(topic.to_string())
}

#[test]
fn a_leader_whose_session_expired_acknowledges_no_acks_all_produce() {
    // Sessions of 4 s (ZooKeeper's minimum with its default 2 s tick).
    let mut cluster = TestCluster::start(
        3,
        &[
            "zookeeper.session.timeout.ms=4000",
            "replica.lag.time.max.ms=2000",
        ],
    );
    let controller = cluster.controller();
    let others: Vec<i32> = (1..=3).filter(|id| *id != controller).collect();
    let (stale, survivor) = (others[0], others[1]);
    let assignment: &[&[i32]] = &[&[stale, survivor, controller]];
    let new = NewTopic::new("fenced", 1, TopicReplication::Variable(assignment))
        .set("min.insync.replicas", "2");
    cluster.create_topics(&[new]);
    cluster.wait_for("the topic led by its first replica with a full ISR", |m| {
        partition_of(m, "fenced", 0).is_some_and(|(l, _, isr)| l == stale && isr.len() == 3)
    });
    assert_eq!(produce(&cluster.bootstrap(), "fenced", 20, "all"), 20);

    // Freeze the leader past its session: ZooKeeper expires it, the controller elects another
    // leader from the ISR, with a higher epoch.
    signal(&mut cluster, stale, libc::SIGSTOP);
    wait_until(
        "another leader elected while the old one is frozen",
        Duration::from_secs(30),
        || {
            [controller, survivor].iter().all(|id| {
                state_on(&cluster, *id, "fenced")
                    .is_some_and(|(l, isr)| l > 0 && l != stale && !isr.contains(&stale))
            })
        },
    );
    // Produces sent to the frozen leader wait in its socket: it reads them first when it
    // resumes, still believing it leads.
    let queued: Vec<std::thread::JoinHandle<i16>> = (0..3)
        .map(|i| {
            let addr = cluster.addr(stale);
            std::thread::spawn(move || {
                let mut raw = RawClient::connect(&addr);
                raw.stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                produce_acks_all(&mut raw, "fenced", format!("queued-{i}").as_bytes())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    signal(&mut cluster, stale, libc::SIGCONT);
    let mut answers: Vec<i16> = queued.into_iter().map(|t| t.join().unwrap()).collect();
    // And produces sent after it resumed, until it has registered again and follows.
    let resumed = std::time::Instant::now();
    let mut sent = 0;
    while resumed.elapsed() < Duration::from_secs(4) {
        let mut raw = RawClient::connect(&cluster.addr(stale));
        raw.stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        answers.push(produce_acks_all(
            &mut raw,
            "fenced",
            format!("late-{sent}").as_bytes(),
        ));
        sent += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("answers of the stale leader: {answers:?}");
    assert!(
        answers.iter().all(|code| *code != 0),
        "the stale leader acknowledged an acks=all produce: {answers:?}; its log:\n{}",
        cluster.log(stale)
    );

    // It rejoins as a follower; the committed log holds only the 20 records acknowledged
    // before, on every replica.
    cluster.wait_for("the old leader back in the ISR", |m| {
        partition_of(m, "fenced", 0).is_some_and(|(l, _, isr)| l != stale && isr.len() == 3)
    });
    let records = consume(
        &cluster.bootstrap(),
        "fenced",
        &[0],
        20,
        Duration::from_secs(30),
    );
    assert!(
        records
            .iter()
            .all(|r| r.key.as_deref().is_some_and(|k| !k.is_empty())),
        "only the keyed records of the first producer: {:?}",
        records.iter().map(|r| &r.value).collect::<Vec<_>>()
    );
    let json: serde_json::Value =
        serde_json::from_str(&describe(&cluster, stale, "fenced", true)).unwrap();
    assert_eq!(json["partitions"][0]["high_watermark"], 20, "{json}");

    // After its new session, the broker's own ISR writes as a leader work: a follower of a
    // partition it leads is killed and restarted, and the leader adds it back to the ISR.
    let assignment: &[&[i32]] = &[&[stale, survivor]];
    let new = NewTopic::new("after-expiry", 1, TopicReplication::Variable(assignment));
    cluster.create_topics(&[new]);
    cluster.wait_for("the new topic led by the broker that expired", |m| {
        partition_of(m, "after-expiry", 0).is_some_and(|(l, _, isr)| l == stale && isr.len() == 2)
    });
    cluster.kill(survivor);
    cluster.wait_for("the killed follower out of the ISR", |m| {
        partition_of(m, "after-expiry", 0).is_some_and(|(_, _, isr)| isr == [stale])
    });
    assert_eq!(produce(&cluster.bootstrap(), "after-expiry", 10, "all"), 10);
    cluster.restart(survivor);
    let back = wait_for_each(&cluster, Duration::from_secs(20), |m| {
        partition_of(m, "after-expiry", 0).is_some_and(|(_, _, isr)| isr.len() == 2)
    });
    assert!(
        back,
        "the leader never added its returned follower to the ISR; its log:\n{}",
        cluster.log(stale)
    );
}

/// Polls every running broker's Metadata every 100 ms until `check` holds for all of them;
/// false after `timeout`.
fn wait_for_each(
    cluster: &TestCluster,
    timeout: Duration,
    check: impl Fn(&kafka_protocol::messages::MetadataResponse) -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if cluster
            .live()
            .into_iter()
            .all(|id| cluster.metadata_from(id).as_ref().is_some_and(&check))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// `topic`'s `key` as broker `id` answers DescribeConfigs.
fn config_on(cluster: &TestCluster, id: i32, topic: &str, key: &str) -> Option<String> {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::DescribeConfigsRequest;
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = 2; // topic
    resource.resource_name = value_name(topic);
    resource.configuration_keys = Some(vec![value_name(key)]);
    let mut request = DescribeConfigsRequest::default();
    request.resources = vec![resource];
    let answer = RawClient::connect(&cluster.addr(id)).send(4, &request);
    let result = &answer.results[0];
    assert_eq!(result.error_code, 0, "{result:?}");
    result
        .configs
        .first()?
        .value
        .as_ref()
        .map(|v| v.to_string())
}

#[test]
fn topic_overrides_reach_every_broker_and_min_insync_replicas_holds() {
    let mut cluster = TestCluster::start(3, &[]);
    let controller = cluster.controller();
    let others: Vec<i32> = (1..=3).filter(|id| *id != controller).collect();
    let (leader, follower) = (others[0], others[1]);
    let admin = admin(&cluster.addr(controller));
    let assignment: &[&[i32]] = &[&[leader, follower]];
    let new = NewTopic::new("strict", 1, TopicReplication::Variable(assignment))
        .set("min.insync.replicas", "2")
        .set("retention.ms", "12345");
    for result in client_runtime()
        .block_on(admin.create_topics(&[new], &AdminOptions::new()))
        .expect("CreateTopics")
    {
        result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    cluster.wait_for("led with a full ISR", |m| {
        partition_of(m, "strict", 0).is_some_and(|(l, _, isr)| l == leader && isr.len() == 2)
    });
    for id in 1..=3 {
        assert_eq!(
            config_on(&cluster, id, "strict", "retention.ms").as_deref(),
            Some("12345"),
            "broker {id}"
        );
    }
    let mut raw = RawClient::connect(&cluster.addr(leader));
    assert_eq!(produce_acks_all(&mut raw, "strict", b"two copies"), 0);

    // The follower dies: the ISR is the leader alone, below min.insync.replicas = 2.
    cluster.kill(follower);
    cluster.wait_for("the follower out of the ISR", |m| {
        partition_of(m, "strict", 0).is_some_and(|(_, _, isr)| isr == [leader])
    });
    let mut raw = RawClient::connect(&cluster.addr(leader));
    assert_eq!(
        produce_acks_all(&mut raw, "strict", b"one copy"),
        19,
        "NOT_ENOUGH_REPLICAS"
    );
    assert_eq!(
        sample(&scrape(&mut cluster, leader), UNDER_MIN_ISR),
        Some(1.0)
    );
    // Lowered to 1 through the third broker: the leader accepts acks=all with itself alone.
    alter_topic_config(&cluster.addr(controller), "strict", "min.insync.replicas=1");
    let mut code = -1;
    wait_until(
        "the leader applies min.insync.replicas=1",
        Duration::from_secs(10),
        || {
            let mut raw = RawClient::connect(&cluster.addr(leader));
            code = produce_acks_all(&mut raw, "strict", b"one copy allowed");
            code == 0
        },
    );
    assert_eq!(
        config_on(&cluster, leader, "strict", "min.insync.replicas").as_deref(),
        Some("1")
    );
    // A restarted broker (its partition opened from disk before it knew the topic) knows the
    // overrides too.
    cluster.restart(follower);
    cluster.wait_for("the follower back in the ISR", |m| {
        partition_of(m, "strict", 0).is_some_and(|(_, _, isr)| isr.len() == 2)
    });
    assert_eq!(
        config_on(&cluster, follower, "strict", "min.insync.replicas").as_deref(),
        Some("1"),
        "the restarted broker reads the current value"
    );
    let mut raw = RawClient::connect(&cluster.addr(leader));
    assert_eq!(produce_acks_all(&mut raw, "strict", b"two again"), 0);
    assert_eq!(
        sample(&scrape(&mut cluster, leader), UNDER_MIN_ISR),
        Some(0.0)
    );
}

/// A follower that makes a batch durable before its leader does reports a fetch offset past
/// the leader's durable end; the leader used to refuse that fetch (OFFSET_OUT_OF_RANGE, its
/// replica state knew only the durable end), the follower backed off replica.fetch.backoff.ms
/// (1 s) and an acks=all produce waited that second: about one sequential produce in three.
#[test]
fn sequential_acks_all_produces_wait_for_no_follower_backoff() {
    let cluster = TestCluster::start(3, &[]);
    create_replicated(&cluster, "sequential", 1, 3, &[]);
    cluster.wait_for("led with a full ISR", |m| {
        partition_of(m, "sequential", 0).is_some_and(|(l, _, isr)| l > 0 && isr.len() == 3)
    });
    let (leader, _, _) = cluster.partition("sequential", 0);
    let mut raw = RawClient::connect(&cluster.addr(leader));
    assert_eq!(produce_acks_all(&mut raw, "sequential", b"warm-up"), 0);
    let mut times = Vec::new();
    for i in 0..30 {
        let started = std::time::Instant::now();
        let value = format!("record {i}");
        assert_eq!(
            produce_acks_all(&mut raw, "sequential", value.as_bytes()),
            0
        );
        times.push(started.elapsed().as_millis());
    }
    eprintln!("acks=all produces, one at a time, ms: {times:?}");
    let slow = times.iter().filter(|ms| **ms >= 900).count();
    assert!(
        slow <= 2,
        "{slow} of 30 took a follower's back-off: {times:?}"
    );
}
