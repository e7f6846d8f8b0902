//! Topic deletion and partition addition on a 3-broker cluster over a real ZooKeeper (issue 10,
//! items 5 and 8): DeleteTopics with a replica down deletes every live replica's data at once
//! while the znodes wait for the missing replica, which deletes its data when it comes back
//! (also across a controller failover); the name can then be created again. CreatePartitions with and without an assignment (and
//! Kafka's refusals), acks=all produce and consume on the new partitions, and `strom partition
//! list` / `strom cluster info` with an under-replicated partition, checked field by field.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{partition_of, TestCluster};
use common::*;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::{BrokerId, CreatePartitionsRequest, TopicName};
use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::producer::FutureRecord;
use strom_meta::zk::{ZkConfig, ZkStore};

/// What ZooKeeper holds of `topic`: its assignment's partition count, whether it is marked for
/// deletion, and its configuration overrides.
fn znodes(cluster: &TestCluster, topic: &str) -> (Option<usize>, bool, BTreeMap<String, String>) {
    let connect = format!("{}/strom", cluster.zookeeper.connect_string());
    client_runtime().block_on(async {
        let store = ZkStore::connect(&ZkConfig::new(connect))
            .await
            .expect("connect to ZooKeeper");
        let assignment = store.topic_assignment(topic).await.unwrap();
        let marked = store.topics_marked_for_deletion().await.unwrap();
        let config = store.topic_config(topic).await.unwrap();
        (
            assignment.map(|a| a.value.partitions.len()),
            marked.iter().any(|t| t == topic),
            config,
        )
    })
}

/// The partition directories of `topic` under broker `id`'s data directory (any depth up to
/// two, renamed ones included).
fn topic_dirs(cluster: &TestCluster, id: i32, topic: &str) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, depth: usize, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) {
                found.push(entry.path().display().to_string());
            } else if depth > 0 && entry.path().is_dir() {
                walk(&entry.path(), prefix, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    let dir = cluster.dir.path().join(format!("broker-{id}"));
    walk(&dir, &format!("{topic}-"), 1, &mut found);
    found
}

fn create(cluster: &TestCluster, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = admin(&cluster.bootstrap());
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(3));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in client_runtime()
        .block_on(admin.create_topics(&[topic], &options))
        .expect("CreateTopics")
    {
        result.unwrap_or_else(|e| panic!("creating {name}: {e:?}"));
    }
}

/// Produces `count` records with acks=all to each of `partitions`; values name the partition.
fn produce_to(cluster: &TestCluster, topic: &str, partitions: &[i32], count: usize) {
    let producer = producer(&cluster.bootstrap(), &[("acks", "all")]);
    client_runtime().block_on(async {
        for &p in partitions {
            for i in 0..count {
                let value = format!("{topic}-{p}-{i}");
                producer
                    .send(
                        FutureRecord::<(), _>::to(topic)
                            .partition(p)
                            .payload(&value),
                        Duration::from_secs(30),
                    )
                    .await
                    .unwrap_or_else(|(e, _)| panic!("acks=all produce to {topic}-{p}: {e}"));
            }
        }
    });
}

/// Consumes `count` records from each of `partitions` and checks they are the produced ones.
fn consume_back(cluster: &TestCluster, topic: &str, partitions: &[i32], count: usize) {
    let got = consume(
        &cluster.bootstrap(),
        topic,
        partitions,
        partitions.len() * count,
        Duration::from_secs(60),
    );
    for &p in partitions {
        let values: Vec<String> = got
            .iter()
            .filter(|c| c.partition == p)
            .map(|c| String::from_utf8(c.value.clone().unwrap_or_default()).unwrap())
            .collect();
        let expected: Vec<String> = (0..count).map(|i| format!("{topic}-{p}-{i}")).collect();
        assert_eq!(values, expected, "{topic}-{p}");
    }
}

fn wait(what: &str, mut check: impl FnMut() -> bool) {
    wait_until(what, Duration::from_secs(60), &mut check);
}

#[test]
fn a_topic_deleted_while_a_replica_is_down_is_deleted_everywhere() {
    let mut cluster = TestCluster::start(3, &[]);
    {
        create(&cluster, "doomed", 2, &[("retention.ms", "3600000")]);
        produce_to(&cluster, "doomed", &[0, 1], 5);
        for id in 1..=3 {
            wait(&format!("broker {id} holds both replicas"), || {
                topic_dirs(&cluster, id, "doomed").len() == 2
            });
        }
        assert_eq!(znodes(&cluster, "doomed").0, Some(2));

        // A replica broker (not the controller) goes down; the topic is deleted meanwhile.
        let controller = cluster.controller();
        let down = (1..=3).find(|id| *id != controller).unwrap();
        cluster.kill(down);
        cluster.wait_for("the down broker leaves the metadata", |m| {
            m.brokers.len() == 2
        });
        let admin = admin(&cluster.bootstrap());
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let started = Instant::now();
        let results = client_runtime()
            .block_on(admin.delete_topics(&["doomed"], &options))
            .expect("DeleteTopics");
        assert_eq!(results.len(), 1);
        results[0]
            .as_ref()
            .unwrap_or_else(|e| panic!("DeleteTopics with a replica down: {e:?}"));
        eprintln!(
            "DeleteTopics with a replica down answered in {:?}",
            started.elapsed()
        );
        cluster.wait_for("no broker lists the topic", |m| {
            partition_of(m, "doomed", 0).is_none()
        });
        for id in cluster.live() {
            wait(&format!("broker {id} deleted its replicas"), || {
                topic_dirs(&cluster, id, "doomed").is_empty()
            });
        }
        assert_eq!(
            topic_dirs(&cluster, down, "doomed").len(),
            2,
            "the down broker's data is untouched while it is down"
        );
        // The znodes wait for the missing replica (give the controller time to be wrong).
        std::thread::sleep(Duration::from_secs(1));
        let (assignment, marked, config) = znodes(&cluster, "doomed");
        assert_eq!(assignment, Some(2), "/brokers/topics/doomed stays");
        assert!(marked, "/admin/delete_topics/doomed stays");
        assert_eq!(
            config.get("retention.ms").map(String::as_str),
            Some("3600000")
        );
        // The name is not free yet.
        let topic = NewTopic::new("doomed", 1, TopicReplication::Fixed(2));
        let early = client_runtime()
            .block_on(admin.create_topics(&[topic], &options))
            .expect("CreateTopics");
        match &early[0] {
            Err((_, code)) => assert_eq!(
                *code,
                rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                "{early:?}"
            ),
            Ok(_) => panic!("recreated while being deleted"),
        }

        // The controller dies with the deletion pending: the next one resumes it from the
        // mark. The down broker comes back and deletes its replicas, but the znodes wait for
        // the old controller too (a new controller knows no confirmation of the old one's).
        cluster.kill(controller);
        cluster.wait_for("a new controller", |m| {
            m.controller_id.0 > 0 && m.controller_id.0 != controller
        });
        cluster.restart(down);
        wait("the returned broker deleted its replicas", || {
            topic_dirs(&cluster, down, "doomed").is_empty()
        });
        std::thread::sleep(Duration::from_secs(1));
        let (assignment, marked, _) = znodes(&cluster, "doomed");
        assert_eq!(
            (assignment, marked),
            (Some(2), true),
            "the znodes wait for the old controller's confirmation"
        );
        cluster.restart(controller);
        wait("the topic's znodes are gone", || {
            znodes(&cluster, "doomed") == (None, false, BTreeMap::new())
        });
        cluster.wait_for("the three brokers are listed", |m| m.brokers.len() == 3);

        // The same name works again, with fresh data.
        create(&cluster, "doomed", 2, &[]);
        produce_to(&cluster, "doomed", &[0, 1], 3);
        consume_back(&cluster, "doomed", &[0, 1], 3);
        for id in 1..=3 {
            assert_eq!(topic_dirs(&cluster, id, "doomed").len(), 2, "broker {id}");
        }
    }
}

/// A CreatePartitions Kafka refuses: count, assignment, error code and message.
type Refusal = (i32, Option<Vec<Vec<i32>>>, i16, &'static str);

/// A CreatePartitions of one topic through `raw`; the error code and message.
fn create_partitions_raw(
    raw: &mut RawClient,
    topic: &str,
    count: i32,
    assignment: Option<Vec<Vec<i32>>>,
) -> (i16, Option<String>) {
    let mut entry = CreatePartitionsTopic::default();
    entry.name = TopicName(topic.to_string().into());
    entry.count = count;
    entry.assignments = assignment.map(|lists| {
        lists
            .into_iter()
            .map(|ids| {
                let mut a = CreatePartitionsAssignment::default();
                a.broker_ids = ids.into_iter().map(BrokerId).collect();
                a
            })
            .collect()
    });
    let mut request = CreatePartitionsRequest::default();
    request.topics = vec![entry];
    request.timeout_ms = 30_000;
    let answer = raw.send(1, &request);
    let result = &answer.results[0];
    (
        result.error_code,
        result.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// A DeleteRecords of `topic`-`partition` below `offset` through `raw` with `timeout_ms`: the
/// error code and the low watermark.
fn delete_records(
    raw: &mut RawClient,
    topic: &str,
    partition: i32,
    offset: i64,
    timeout_ms: i32,
) -> (i16, i64) {
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    let mut p = DeleteRecordsPartition::default();
    p.partition_index = partition;
    p.offset = offset;
    let mut t = DeleteRecordsTopic::default();
    t.name = TopicName(topic.to_string().into());
    t.partitions = vec![p];
    let mut request = kafka_protocol::messages::DeleteRecordsRequest::default();
    request.topics = vec![t];
    request.timeout_ms = timeout_ms;
    let answer = raw.send(2, &request);
    let p = &answer.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

/// The log start offset of `topic`-`partition` on the replica at `addr`, as a consumer's
/// Fetch v12 (which followers serve) from offset 0 reports it.
fn follower_log_start(addr: &str, topic: &str, partition: i32) -> i64 {
    let mut request = fetch_request(topic, 0);
    request.topics[0].partitions[0].partition = partition;
    let answer = RawClient::connect(addr).send(12, &request);
    let p = &answer.responses[0].partitions[0];
    assert!(
        p.error_code == 0 || p.error_code == 1,
        "fetch from {addr}: error {}",
        p.error_code
    );
    p.log_start_offset
}

/// The earliest offset of `topic`-`partition` as the broker at `addr` answers ListOffsets, or
/// `None` on an error.
fn earliest(addr: &str, topic: &str, partition: i32) -> Option<i64> {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let mut p = ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = -2;
    p.current_leader_epoch = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(topic.to_string().into());
    t.partitions = vec![p];
    let mut request = kafka_protocol::messages::ListOffsetsRequest::default();
    request.replica_id = BrokerId(-1);
    request.topics = vec![t];
    let answer = RawClient::connect(addr).send(5, &request);
    let p = &answer.topics[0].partitions[0];
    (p.error_code == 0).then_some(p.offset)
}

/// Runs `strom --json <args>` against `bootstrap` and parses its output.
fn strom_json(bootstrap: &str, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["-b", bootstrap, "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "strom {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "strom {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn partitions_are_added_with_and_without_an_assignment_and_listed() {
    let mut cluster = TestCluster::start_with(3, |id| {
        vec![format!(
            "broker.rack=rack-{}",
            ["a", "b", "c"][(id - 1) as usize]
        )]
    });
    {
        create(&cluster, "grow", 2, &[("min.insync.replicas", "2")]);
        let admin = admin(&cluster.bootstrap());
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        // Placed by the cluster: 2 -> 4.
        let results = client_runtime()
            .block_on(admin.create_partitions(&[NewPartitions::new("grow", 4)], &options))
            .expect("CreatePartitions");
        results[0]
            .as_ref()
            .unwrap_or_else(|e| panic!("CreatePartitions 2 -> 4: {e:?}"));
        cluster.wait_for(
            "every broker shows 4 partitions with leaders and full ISRs",
            |m| {
                (0..4).all(|p| {
                    partition_of(m, "grow", p).is_some_and(|(leader, replicas, isr)| {
                        leader > 0 && replicas.len() == 3 && isr.len() == 3
                    })
                })
            },
        );
        // Through a broker that is not the controller, with an explicit assignment: 4 -> 6.
        let other = (1..=3).find(|id| *id != cluster.controller()).unwrap();
        let mut raw = RawClient::connect(&cluster.addr(other));
        let (code, message) = create_partitions_raw(
            &mut raw,
            "grow",
            6,
            Some(vec![vec![3, 1, 2], vec![2, 3, 1]]),
        );
        assert_eq!(code, 0, "{message:?}");
        cluster.wait_for(
            "the assigned partitions with their preferred leaders",
            |m| {
                partition_of(m, "grow", 4) == Some((3, vec![3, 1, 2], vec![3, 1, 2]))
                    && partition_of(m, "grow", 5) == Some((2, vec![2, 3, 1], vec![2, 3, 1]))
            },
        );
        // Kafka's refusals.
        let refusals: [Refusal; 5] = [
            (5, None, 37, "Topic currently has 6 partitions, which is higher than the requested 5."),
            (6, None, 37, "Topic already has 6 partitions."),
            (8, Some(vec![vec![1, 2, 3]]), 39, "Increasing the number of partitions by 2 but 1 assignments provided."),
            (7, Some(vec![vec![1, 2, 9]]), 39, "Unknown broker(s) in replica assignment: 9."),
            (7, Some(vec![vec![1, 2]]), 39, "Inconsistent replication factor between partitions, partition 0 has 3 while partitions [6] have replication factors [2], respectively."),
        ];
        for (count, assignment, code, text) in refusals {
            let (got, message) = create_partitions_raw(&mut raw, "grow", count, assignment.clone());
            assert_eq!(
                (got, message.as_deref()),
                (code, Some(text)),
                "{count} {assignment:?}"
            );
        }
        assert_eq!(create_partitions_raw(&mut raw, "absent", 3, None).0, 3);
        // `strom topic add-partitions` shows the broker's message when it refuses.
        let refused = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args([
                "-b",
                &cluster.addr(other),
                "topic",
                "add-partitions",
                "grow",
            ])
            .args(["--count", "7", "--replica-assignment", "1:2:9"])
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("Unknown broker(s) in replica assignment: 9."),
            "{stderr}"
        );
        assert_eq!(
            znodes(&cluster, "grow").0,
            Some(6),
            "refusals wrote nothing"
        );

        // 6 -> 7 with the CLI, listing every partition as kafka-topics.sh does (the existing
        // six are dropped from the request).
        let grown = strom_json(
            &cluster.bootstrap(),
            &[
                "topic",
                "add-partitions",
                "grow",
                "--count",
                "7",
                "--replica-assignment",
                "1:2:3,1:2:3,1:2:3,1:2:3,1:2:3,1:2:3,2:1:3",
            ],
        );
        assert_eq!(grown["partitions_before"], 6, "{grown}");
        assert_eq!(grown["partitions"], 7, "{grown}");
        cluster.wait_for("partition 6 as assigned", |m| {
            partition_of(m, "grow", 6) == Some((2, vec![2, 1, 3], vec![2, 1, 3]))
        });

        // acks=all (min.insync.replicas=2) to every partition, new ones included, read back.
        let all: Vec<i32> = (0..7).collect();
        produce_to(&cluster, "grow", &all, 4);
        consume_back(&cluster, "grow", &all, 4);

        // DeleteRecords on the cluster: the leader serves it, a follower refuses it, and the
        // answer waits until every live replica's log start offset reached the offset (read on
        // each follower at once, and again once a follower leads).
        let victim = 3;
        let (leader, replicas, _) = cluster.partition("grow", 4);
        assert_eq!(leader, victim, "partition 4's preferred leader leads");
        let follower = replicas[1];
        let refused = delete_records(
            &mut RawClient::connect(&cluster.addr(follower)),
            "grow",
            4,
            2,
            10_000,
        );
        assert_eq!(refused, (6, -1), "DeleteRecords on a follower");
        let deleted = delete_records(
            &mut RawClient::connect(&cluster.addr(leader)),
            "grow",
            4,
            2,
            8_000,
        );
        assert_eq!(deleted, (0, 2), "DeleteRecords on the leader");
        assert_eq!(earliest(&cluster.addr(leader), "grow", 4), Some(2));
        for &id in replicas.iter().filter(|&&id| id != leader) {
            assert!(
                follower_log_start(&cluster.addr(id), "grow", 4) >= 2,
                "broker {id} followed before DeleteRecords answered"
            );
        }
        // A follower that cannot follow (stopped, still registered) holds the answer until
        // the request's timeout: REQUEST_TIMED_OUT with the low watermark reached.
        let stopped = follower;
        let pid = cluster.process(stopped).expect("running").child.id() as i32;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        let started = Instant::now();
        let timed_out = delete_records(
            &mut RawClient::connect(&cluster.addr(leader)),
            "grow",
            4,
            3,
            1_500,
        );
        let waited = started.elapsed();
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
        assert_eq!(timed_out, (7, 2), "a stopped follower holds DeleteRecords");
        assert!(
            waited >= Duration::from_millis(1_400),
            "answered after {waited:?}, before the request's timeout"
        );
        let deleted = delete_records(
            &mut RawClient::connect(&cluster.addr(leader)),
            "grow",
            4,
            3,
            8_000,
        );
        assert_eq!(deleted, (0, 3), "the follower follows once it runs again");
        for &id in replicas.iter().filter(|&&id| id != leader) {
            assert!(follower_log_start(&cluster.addr(id), "grow", 4) >= 3);
        }

        // A broker down: its partitions are under-replicated, and the CLI says which.
        cluster.kill(victim);
        cluster.wait_for("broker 3 leaves every ISR", |m| {
            m.brokers.len() == 2
                && (0..7).all(|p| {
                    partition_of(m, "grow", p)
                        .is_some_and(|(leader, _, isr)| leader > 0 && !isr.contains(&victim))
                })
        });
        let (new_leader, _, _) = cluster.partition("grow", 4);
        assert_eq!(
            earliest(&cluster.addr(new_leader), "grow", 4),
            Some(3),
            "the new leader {new_leader} had followed the log start offset"
        );
        let bootstrap = cluster.addr(1);
        let list = strom_json(&bootstrap, &["partition", "list", "--topic", "grow"]);
        let rows = list["partitions"].as_array().expect("partitions");
        assert_eq!(rows.len(), 7, "{list}");
        let metadata = cluster.metadata();
        for (p, row) in rows.iter().enumerate() {
            let (leader, replicas, isr) = partition_of(&metadata, "grow", p as i32).unwrap();
            assert_eq!(row["topic"], "grow", "{row}");
            assert_eq!(row["partition"], p as i64, "{row}");
            assert_eq!(row["leader"], leader, "{row}");
            assert_eq!(row["replicas"], serde_json::json!(replicas), "{row}");
            assert_eq!(row["isr"], serde_json::json!(isr), "{row}");
            assert_eq!(
                row["offline_replicas"],
                serde_json::json!([victim]),
                "{row}"
            );
            assert_eq!(row["status"], "under-replicated", "{row}");
            assert_eq!(row["adding_replicas"], serde_json::json!([]), "{row}");
            assert_eq!(row["removing_replicas"], serde_json::json!([]), "{row}");
            assert!(row["leader_epoch"].as_i64().unwrap() > 0, "{row}");
        }
        // Whether reassignments are known depends on the broker serving
        // ListPartitionReassignments; when unknown the output says why.
        if list["reassignments_known"] == false {
            assert!(list["reassignments_note"].as_str().is_some(), "{list}");
        }
        // The table has Kafka's describe columns, one line per partition.
        let output = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(["-b", &bootstrap, "partition", "list", "--topic", "grow"])
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "TOPIC",
                "PARTITION",
                "LEADER",
                "REPLICAS",
                "ISR",
                "OFFLINE",
                "ADDING",
                "REMOVING",
                "STATUS"
            ],
            "{text}"
        );
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(row[0..2], ["grow", "0"], "{text}");
        assert_eq!(row[5], "3", "{text}");
        assert_eq!(row[8], "under-replicated", "{text}");
        let rows = lines.iter().filter(|l| l.starts_with("grow ")).count();
        assert_eq!(rows, 7, "{text}");
        let offline = strom_json(&bootstrap, &["partition", "list", "--offline"]);
        assert_eq!(offline["partitions"], serde_json::json!([]), "{offline}");
        let under = strom_json(&bootstrap, &["partition", "list", "--under-replicated"]);
        let under_grow = under["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["topic"] == "grow")
            .count();
        assert_eq!(under_grow, 7, "{under}");

        let info = strom_json(&bootstrap, &["cluster", "info"]);
        assert_eq!(info["controller_id"], metadata.controller_id.0, "{info}");
        assert!(
            info["cluster_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{info}"
        );
        let brokers = info["brokers"].as_array().unwrap();
        let ids: Vec<i64> = brokers.iter().map(|b| b["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [1, 2], "{info}");
        for broker in brokers {
            let id = broker["id"].as_i64().unwrap();
            assert_eq!(broker["host"], "127.0.0.1", "{broker}");
            assert_eq!(
                format!("127.0.0.1:{}", broker["port"]),
                cluster.addr(id as i32),
                "{broker}"
            );
            assert_eq!(
                broker["rack"],
                format!("rack-{}", ["a", "b"][(id - 1) as usize])
            );
            // RF 3 on 3 brokers (`__consumer_offsets` too): a replica of every partition.
            assert_eq!(broker["replicas"], info["partitions"], "{broker}");
        }
        let leaders: i64 = brokers.iter().map(|b| b["leaders"].as_i64().unwrap()).sum();
        assert_eq!(leaders, info["partitions"].as_i64().unwrap(), "{info}");
        assert_eq!(info["topics"], 1, "{info}");
        assert_eq!(info["offline_count"], 0, "{info}");
        let under_count = info["under_replicated_count"].as_i64().unwrap();
        assert_eq!(
            under_count as usize,
            under["partitions"].as_array().unwrap().len(),
            "{info}"
        );
        assert!(under_count >= 7, "{info}");
    }
}
