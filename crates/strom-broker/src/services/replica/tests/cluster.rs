//! Replication's data path without the controller: three in-process brokers (port 0,
//! separate log dirs); the test acts as the controller, calling `apply_leader_and_isr` and
//! `apply_stop_replica` on each and holding the partition state in a [`MemoryIsrWriter`].
//! Produces go over the wire (a [`PeerConnection`] speaking Produce). Every wait is bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_meta::controller::PartitionInfo;
use strom_meta::replica::ReplicaSettings;
use strom_meta::replication::{BrokerId, LeaderAndIsr, TopicPartition, Versioned};

use crate::interbroker::peer::PeerConnection;
use crate::interbroker::{
    ControllerHeader, LeaderAddress, LeaderAndIsrCommand, PartitionCommand, StopReplicaCommand,
};
use crate::services::log_config::log_config;
use crate::services::replica::cluster::ReplicationContext;
use crate::services::replica::replication::MemoryIsrWriter;
use crate::{BrokerConfig, BrokerHandle};

const TOPIC: &str = "r";
const WAIT: Duration = Duration::from_secs(20);
const LAG_MS: u64 = 600;

struct Cluster {
    brokers: Vec<BrokerHandle>,
    writer: Arc<MemoryIsrWriter>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn start_cluster(min_insync: usize) -> Cluster {
    let writer = Arc::new(MemoryIsrWriter::default());
    let mut brokers = Vec::new();
    let mut dirs = Vec::new();
    for id in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig::load(
            None,
            &[
                "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
                format!("log.dirs={}", dir.path().display()),
                format!("broker.id={id}"),
                "strom.metrics.listener=".to_string(),
                format!("replica.lag.time.max.ms={LAG_MS}"),
                "replica.fetch.wait.max.ms=100".to_string(),
                "replica.fetch.backoff.ms=50".to_string(),
            ],
        )
        .expect("test config");
        let handle = crate::start(config).await.expect("broker starts");
        let services = handle.broker.services.clone();
        services
            .topics
            .create_topic(TOPIC, 1, 1, Default::default(), false)
            .expect("topic created");
        let resolved =
            strom_meta::config::TopicConfig::resolve(&services.config, &Default::default())
                .unwrap();
        let log = log_config(&resolved);
        let context = ReplicationContext::from_config(
            &services.config,
            writer.clone(),
            services.metadata.clone(),
            Box::new(move |_| log.clone()),
            Box::new(move |_| ReplicaSettings {
                min_insync_replicas: min_insync,
                replica_lag_time_max_ms: LAG_MS,
            }),
        );
        assert_eq!(
            (context.local, context.fetch_wait_max_ms, context.tick),
            (id, 100, Duration::from_millis(LAG_MS / 2))
        );
        services.replicas.enable_replication(context);
        brokers.push(handle);
        dirs.push(dir);
    }
    Cluster {
        brokers,
        writer,
        _dirs: dirs,
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new(TOPIC, 0)
}

impl Cluster {
    fn broker(&self, id: BrokerId) -> &BrokerHandle {
        &self.brokers[(id - 1) as usize]
    }

    /// Writes the state as the controller would and sends LeaderAndIsr to `to`.
    fn leader_and_isr(&self, to: &[BrokerId], leader: BrokerId, epoch: i32, isr: Vec<BrokerId>) {
        let value = LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            isr,
            controller_epoch: 1,
        };
        // The version moves only when the state does (LeaderAndIsr to returning followers
        // re-sends the state as it is).
        let version = match self.writer.get(&tp()) {
            None => 0,
            Some(current) if current.value == value => current.version,
            Some(current) => current.version + 1,
        };
        let state = Versioned { value, version };
        self.writer.set(tp(), state.clone());
        for id in to {
            assert_eq!(
                self.send(*id, state.clone()),
                [0],
                "LeaderAndIsr on broker {id}"
            );
        }
    }

    /// Sends LeaderAndIsr with `state` to broker `to` (the writer unchanged); its codes.
    fn send(&self, to: BrokerId, state: Versioned<LeaderAndIsr>) -> Vec<i16> {
        let leader = state.value.leader;
        let address = self.broker(leader).addr();
        let command = LeaderAndIsrCommand {
            header: ControllerHeader {
                controller_id: 1,
                controller_epoch: 1,
                broker_epoch: -1,
            },
            partitions: vec![PartitionCommand {
                info: PartitionInfo {
                    partition: tp(),
                    state,
                    replicas: vec![1, 2, 3],
                },
                topic_id: uuid::Uuid::nil(),
                is_new: false,
            }],
            leaders: vec![LeaderAddress {
                id: leader,
                host: address.ip().to_string(),
                port: address.port(),
            }],
        };
        self.broker(to)
            .broker
            .services
            .replicas
            .apply_leader_and_isr(&command)
    }

    fn stop(&self, id: BrokerId) {
        let command = StopReplicaCommand {
            header: ControllerHeader {
                controller_id: 1,
                controller_epoch: 1,
                broker_epoch: -1,
            },
            partitions: vec![(tp(), -1, false)],
        };
        let codes = self
            .broker(id)
            .broker
            .services
            .replicas
            .apply_stop_replica(&command);
        assert_eq!(codes, [0]);
    }

    fn partition(&self, id: BrokerId) -> Arc<super::partition::Partition> {
        self.broker(id)
            .broker
            .services
            .replicas
            .partition(TOPIC, 0)
            .expect("hosted")
    }

    /// (log end, recovery point, high watermark) of broker `id`'s log.
    fn offsets(&self, id: BrokerId) -> (i64, i64, i64) {
        let partition = self.partition(id);
        let log = partition.log().lock().unwrap();
        (
            log.log_end_offset(),
            log.recovery_point(),
            log.high_watermark(),
        )
    }

    /// Every byte of broker `id`'s log, across segments (a truncation starts a new one).
    fn bytes(&self, id: BrokerId) -> Bytes {
        let partition = self.partition(id);
        let log = partition.log().lock().unwrap();
        let end = log.log_end_offset();
        let mut all = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < end {
            let Some(slice) = log.read(offset, usize::MAX >> 2, end, true).unwrap().slice else {
                break;
            };
            let bytes = slice.read_to_bytes().unwrap();
            let mut pos = 0;
            while pos + 27 <= bytes.len() {
                let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
                let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
                let delta = i32::from_be_bytes(bytes[pos + 23..pos + 27].try_into().unwrap());
                offset = base + i64::from(delta) + 1;
                pos += 12 + len as usize;
            }
            all.extend_from_slice(&bytes);
        }
        Bytes::from(all)
    }

    fn isr(&self) -> Vec<BrokerId> {
        let mut isr = self.writer.get(&tp()).unwrap().value.isr;
        isr.sort();
        isr
    }

    async fn wait_for(&self, what: &str, mut done: impl FnMut(&Cluster) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < WAIT,
                "timed out waiting for {what}: (log end, durable, HW) {:?} {:?} {:?}, ISR {:?}",
                self.offsets(1),
                self.offsets(2),
                self.offsets(3),
                self.isr(),
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Produces one batch of `count` records to broker `id` with `acks`; returns (error code,
/// base offset).
async fn produce(
    cluster: &Cluster,
    id: BrokerId,
    acks: i16,
    tag: &str,
    count: usize,
) -> (i16, i64) {
    produce_to(&cluster.broker(id).bootstrap(), acks, tag, count).await
}

/// [`produce`] to the broker at `addr`.
async fn produce_to(addr: &str, acks: i16, tag: &str, count: usize) -> (i16, i64) {
    let values: Vec<String> = (0..count).map(|i| format!("{tag}-{i}")).collect();
    let records: Vec<_> = values
        .iter()
        .map(|v| (Some(&b"k"[..]), Some(v.as_bytes())))
        .collect();
    let batch = strom_log::records::encode_batch(&records, crate::clock::now_ms());
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(Bytes::from(batch));
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str(TOPIC));
    topic.partition_data.push(partition);
    let mut request = ProduceRequest::default();
    request.acks = acks;
    request.timeout_ms = 10_000;
    request.topic_data.push(topic);
    let peer = PeerConnection::connect(addr, "test-producer", WAIT)
        .await
        .unwrap();
    let response = peer
        .call(&request, 9, WAIT)
        .await
        .expect("produce answered");
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// A consumer's Fetch `version` (replica id -1) of the partition from broker `id`: its error
/// code.
async fn consumer_fetch(cluster: &Cluster, id: BrokerId, version: i16) -> i16 {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let mut partition = FetchPartition::default();
    partition.partition = 0;
    partition.current_leader_epoch = -1;
    partition.partition_max_bytes = 1 << 20;
    let mut topic = FetchTopic::default();
    topic.topic = TopicName(StrBytes::from_static_str(TOPIC));
    topic.partitions.push(partition);
    let mut request = kafka_protocol::messages::FetchRequest::default();
    request.replica_id = kafka_protocol::messages::BrokerId(-1);
    request.max_wait_ms = 0;
    request.session_epoch = -1;
    request.topics.push(topic);
    let peer = PeerConnection::connect(&cluster.broker(id).bootstrap(), "test-consumer", WAIT)
        .await
        .unwrap();
    let response = peer
        .call(&request, version, WAIT)
        .await
        .expect("fetch answered");
    response.responses[0].partitions[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_waits_for_every_isr_member_on_disk_and_followers_hold_identical_bytes() {
    let cluster = start_cluster(2).await;
    cluster.leader_and_isr(&[1, 2, 3], 1, 1, vec![1, 2, 3]);

    let mut end = 0;
    for round in 0..5 {
        let (code, base) = produce(&cluster, 1, -1, &format!("a{round}"), 10).await;
        assert_eq!((code, base), (0, end), "round {round}");
        end += 10;
        // Acknowledged: every ISR member has the batch on disk.
        for id in 1..=3 {
            let (leo, durable, _) = cluster.offsets(id);
            assert!(
                leo >= end && durable >= end,
                "broker {id} at ack time: log end {leo}, durable {durable}, batch end {end}"
            );
        }
        assert_eq!(
            cluster.offsets(1).2,
            end,
            "the leader's HW passed the batch"
        );
    }
    assert_eq!(cluster.bytes(1), cluster.bytes(2));
    assert_eq!(cluster.bytes(1), cluster.bytes(3));
    assert!(!cluster.bytes(1).is_empty());
    // The followers learn the HW with their next fetch.
    cluster
        .wait_for("follower high watermarks", |c| {
            c.offsets(2).2 == end && c.offsets(3).2 == end
        })
        .await;
    // Produce to a follower is refused, and so is a consumer's fetch without client metadata
    // (v10); from v11 followers serve consumers (KIP-392).
    assert_eq!(produce(&cluster, 2, -1, "x", 1).await.0, 6);
    assert_eq!(consumer_fetch(&cluster, 2, 10).await, 6);
    assert_eq!(consumer_fetch(&cluster, 2, 12).await, 0);
    assert_eq!(consumer_fetch(&cluster, 1, 10).await, 0);
    assert_eq!(consumer_fetch(&cluster, 1, 12).await, 0);
    assert_eq!(cluster.isr(), [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_shutting_down_answers_its_waiting_acks_all_produce_at_once() {
    let cluster = start_cluster(2).await;
    // Broker 1 leads with 2 in the ISR, and 2 never follows: an acks=all produce waits.
    cluster.leader_and_isr(&[1], 1, 1, vec![1, 2]);
    let waiting = {
        let addr = cluster.broker(1).bootstrap();
        tokio::spawn(async move { produce_to(&addr, -1, "stuck", 3).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "acks=all waits for broker 2");
    let asked = std::time::Instant::now();
    cluster
        .broker(1)
        .broker
        .services
        .replicas
        .stop_for_shutdown();
    let (code, _) = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("answered without waiting for the follower")
        .unwrap();
    assert_eq!(code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert!(asked.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isr_shrinks_below_min_insync_and_a_returning_follower_rejoins() {
    let cluster = start_cluster(2).await;
    cluster.leader_and_isr(&[1, 2, 3], 1, 1, vec![1, 2, 3]);
    assert_eq!(produce(&cluster, 1, -1, "a", 5).await, (0, 0));

    // The znode's version moves behind the leader's back (same leader, epoch and ISR): its
    // first ISR write conflicts, it re-reads the state and writes again.
    let current = cluster.writer.get(&tp()).unwrap();
    cluster.writer.set(
        tp(),
        Versioned {
            value: current.value,
            version: current.version + 5,
        },
    );

    // Follower 3 stops: it leaves the ISR after replica.lag.time.max.ms; acks=all still
    // succeeds with two in sync.
    cluster.stop(3);
    let stopped = Instant::now();
    assert_eq!(produce(&cluster, 1, -1, "b", 5).await.0, 0);
    cluster.wait_for("ISR [1, 2]", |c| c.isr() == [1, 2]).await;
    assert!(stopped.elapsed() >= Duration::from_millis(LAG_MS / 2));
    assert!(cluster.writer.get(&tp()).unwrap().version > current.version + 5);
    assert_eq!(
        cluster
            .broker(2)
            .broker
            .services
            .metadata
            .partition(TOPIC, 0)
            .unwrap()
            .leader_and_isr
            .isr
            .len(),
        3,
        "a follower's cache changes only by the controller's requests"
    );
    assert_eq!(
        cluster
            .broker(1)
            .broker
            .services
            .metadata
            .partition(TOPIC, 0)
            .unwrap()
            .leader_and_isr
            .isr,
        [1, 2],
        "the leader's cache follows its own ISR write"
    );
    assert_eq!(produce(&cluster, 1, -1, "c", 5).await, (0, 10));

    // Follower 2 stops too: below min.insync.replicas=2, acks=all is refused before the
    // append, acks=1 still goes.
    cluster.stop(2);
    cluster.wait_for("ISR [1]", |c| c.isr() == [1]).await;
    let end_before = cluster.offsets(1).0;
    assert_eq!(
        produce(&cluster, 1, -1, "d", 5).await.0,
        19,
        "NOT_ENOUGH_REPLICAS"
    );
    assert_eq!(cluster.offsets(1).0, end_before, "nothing appended");
    assert_eq!(produce(&cluster, 1, 1, "e", 5).await, (0, 15));

    // Both come back (LeaderAndIsr as followers again): they catch up and rejoin.
    let state = cluster.writer.get(&tp()).unwrap().value;
    cluster.leader_and_isr(&[2, 3], 1, 1, state.isr);
    // The leader still has its own view of the ISR; the returning followers rejoin it.
    cluster
        .wait_for("ISR [1, 2, 3]", |c| c.isr() == [1, 2, 3])
        .await;
    assert_eq!(produce(&cluster, 1, -1, "f", 5).await, (0, 20));
    assert_eq!(cluster.bytes(1), cluster.bytes(2));
    assert_eq!(cluster.bytes(1), cluster.bytes(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_made_replicated_exposes_nothing_before_the_isr_has_it() {
    let cluster = start_cluster(1).await;
    // Five records written while broker 2 was a single node: its log's high watermark is its
    // end, as after a restart.
    assert_eq!(produce(&cluster, 2, 1, "tail", 5).await, (0, 0));
    assert_eq!(cluster.offsets(2), (5, 5, 5));
    // Broker 2 leads with 3 in the ISR, and 3 never fetches: the tail is on 2 alone.
    cluster.leader_and_isr(&[2], 2, 1, vec![2, 3]);
    assert_eq!(
        cluster.offsets(2).2,
        0,
        "the high watermark starts at the log start, not at the unreplicated end"
    );
    // Once 3 follows and has the tail on disk, the high watermark covers it.
    cluster.leader_and_isr(&[3], 2, 1, vec![2, 3]);
    cluster
        .wait_for("the tail replicated", |c| c.offsets(2).2 == 5)
        .await;
    assert_eq!(cluster.offsets(3).0, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_truncates_the_old_leaders_unacknowledged_suffix() {
    let cluster = start_cluster(1).await;
    cluster.leader_and_isr(&[1, 2, 3], 1, 1, vec![1, 2, 3]);
    assert_eq!(produce(&cluster, 1, -1, "a", 10).await, (0, 0));
    // The followers stop; the old leader appends a suffix no follower has (acks=1).
    cluster.stop(2);
    cluster.stop(3);
    assert_eq!(produce(&cluster, 1, 1, "lost", 7).await, (0, 10));
    assert_eq!(cluster.offsets(1).0, 17);
    assert_eq!(cluster.offsets(2).0, 10);

    // Broker 2 leads in epoch 2; 1 and 3 follow.
    cluster.leader_and_isr(&[2], 2, 2, vec![2, 3]);
    cluster.leader_and_isr(&[1, 3], 2, 2, vec![2, 3]);
    assert_eq!(
        produce(&cluster, 1, -1, "x", 1).await.0,
        6,
        "the old leader refuses"
    );
    assert_eq!(produce(&cluster, 2, -1, "b", 4).await, (0, 10));
    cluster
        .wait_for("the old leader converges", |c| {
            c.offsets(1).0 == 14 && c.bytes(1) == c.bytes(2)
        })
        .await;
    assert_eq!(cluster.bytes(2), cluster.bytes(3));
    let epochs = {
        let partition = cluster.partition(1);
        let log = partition.log().lock().unwrap();
        log.leader_epoch_entries().to_vec()
    };
    assert_eq!(
        epochs.last(),
        Some(&(2, 10)),
        "epoch 2 starts where epoch 1's acknowledged data ends"
    );
    // Broker 1 rejoins the new leader's ISR.
    cluster
        .wait_for("ISR [1, 2, 3]", |c| c.isr() == [1, 2, 3])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_fenced_in_zookeeper_acknowledges_nothing_and_stale_requests_change_nothing() {
    let cluster = start_cluster(1).await;
    cluster.leader_and_isr(&[1, 2, 3], 1, 1, vec![1, 2, 3]);
    assert_eq!(produce(&cluster, 1, -1, "a", 3).await, (0, 0));

    // The controller moves leadership to broker 2 in ZooKeeper, but broker 1 has not heard.
    // Follower 3 stops, so broker 1 must shrink the ISR before acks=all can complete: its
    // conditional write fails, it re-reads the state, sees another leader and is fenced.
    cluster.stop(3);
    let current = cluster.writer.get(&tp()).unwrap();
    cluster.writer.set(
        tp(),
        Versioned {
            value: LeaderAndIsr {
                leader: 2,
                leader_epoch: 2,
                isr: vec![2],
                controller_epoch: 1,
            },
            version: current.version + 1,
        },
    );
    let started = Instant::now();
    let (code, _) = produce(&cluster, 1, -1, "b", 3).await;
    assert_eq!(code, 6, "a fenced leader answers NOT_LEADER_OR_FOLLOWER");
    assert!(started.elapsed() < WAIT);
    assert_eq!(
        produce(&cluster, 1, -1, "c", 1).await.0,
        6,
        "and refuses new produces"
    );
    assert_eq!(
        cluster.writer.get(&tp()).unwrap().value.leader,
        2,
        "no write over the controller's"
    );

    // A LeaderAndIsr older than the partition's epoch changes nothing.
    cluster.leader_and_isr(&[2], 2, 2, vec![2]);
    let stale = Versioned {
        value: LeaderAndIsr {
            leader: 1,
            leader_epoch: 1,
            isr: vec![1, 2],
            controller_epoch: 1,
        },
        version: 0,
    };
    assert_eq!(cluster.send(2, stale), [11], "STALE_CONTROLLER_EPOCH");
    assert_eq!(
        produce(&cluster, 2, -1, "d", 2).await.0,
        0,
        "broker 2 still leads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_isr_creates_and_serves_every_new_partition_it_names() {
    let cluster = start_cluster(1).await;
    let address = cluster.broker(1).addr();
    let partitions: Vec<PartitionCommand> = (0..300)
        .map(|p| PartitionCommand {
            info: PartitionInfo {
                partition: TopicPartition::new("fresh", p),
                state: Versioned {
                    value: LeaderAndIsr {
                        leader: 1,
                        leader_epoch: 0,
                        isr: vec![1],
                        controller_epoch: 1,
                    },
                    version: 0,
                },
                // Partition 299 has no replica here: it is not created.
                replicas: if p == 299 { vec![2] } else { vec![1] },
            },
            topic_id: uuid::Uuid::nil(),
            is_new: true,
        })
        .collect();
    let command = LeaderAndIsrCommand {
        header: ControllerHeader {
            controller_id: 1,
            controller_epoch: 1,
            broker_epoch: -1,
        },
        partitions,
        leaders: vec![LeaderAddress {
            id: 1,
            host: address.ip().to_string(),
            port: address.port(),
        }],
    };
    let replicas = &cluster.broker(1).broker.services.replicas;
    let codes = replicas.apply_leader_and_isr(&command);
    assert_eq!(codes.len(), 300);
    assert!(codes[..299].iter().all(|c| *c == 0), "{codes:?}");
    assert_eq!(codes[299], 3, "UNKNOWN_TOPIC_OR_PARTITION: no replica here");
    for p in 0..299 {
        let partition = replicas.partition("fresh", p).expect("hosted");
        assert!(partition.is_replicated(), "fresh-{p} leads");
    }
    assert!(replicas.partition("fresh", 299).is_none());
    // Sent again (the controller retries), it changes nothing and creates nothing twice.
    let again = replicas.apply_leader_and_isr(&command);
    assert!(again[..299].iter().all(|c| *c == 0), "{again:?}");
}
