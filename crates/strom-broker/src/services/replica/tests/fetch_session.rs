//! The follower's session against the leader's session cache
//! ([`crate::services::fetch_sessions`]), exchanged as real Fetch requests and responses.
//!
//! A seeded simulation: a leader whose partitions grow, whose high watermarks and log start
//! offsets move; a follower that fetches, adds and drops partitions and changes leader epochs;
//! and faults: responses lost after the leader handled them, the leader's cache lost (a
//! restart), other sessions evicting this one. After every answered fetch the leader read
//! exactly the partitions the follower wanted, at the offsets it gave, and the follower knows
//! every partition's high watermark, log start and log end as the leader had them.
//! A failure prints its seed; `STROM_FETCH_SESSION_SEED=<seed>` replays it.

use std::collections::BTreeMap;

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::*;
use crate::services::fetch_sessions::FetchSessions;

const SEEDS: u64 = 300;
const STEPS: usize = 400;

/// `wanted` as the fetcher hands it over: partitions by reference.
fn by_ref(wanted: &[(TopicPartition, PartitionFetch)]) -> Vec<(&TopicPartition, PartitionFetch)> {
    wanted.iter().map(|(tp, fetch)| (tp, *fetch)).collect()
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

#[test]
fn an_unchanged_partition_is_not_sent_again_and_a_failure_starts_over() {
    let mut session = FollowerSession::default();
    let fetch = |offset| PartitionFetch {
        fetch_offset: offset,
        log_start_offset: 0,
        leader_epoch: 3,
        max_bytes: 100,
    };
    let wanted = vec![(tp("a", 0), fetch(5)), (tp("a", 1), fetch(7))];
    let first = session.request(&by_ref(&wanted));
    assert_eq!((first.session_id, first.epoch, first.send.len()), (0, 0, 2));
    session.answered(first, 42);
    assert_eq!(session.id(), 42);

    let wanted = vec![(tp("a", 0), fetch(6)), (tp("b", 0), fetch(0))];
    let next = session.request(&by_ref(&wanted));
    assert_eq!((next.session_id, next.epoch), (42, 1));
    assert_eq!(next.send, wanted, "a-0 moved, b-0 is new");
    assert_eq!(next.forget, vec![tp("a", 1)]);
    let mut request = FetchRequest::default();
    next.fill(&mut request);
    assert_eq!(request.topics.len(), 2, "grouped by topic");
    assert_eq!(request.forgotten_topics_data[0].partitions, vec![1]);
    session.answered(next, 42);
    assert!(session.request(&by_ref(&wanted)).send.is_empty());
    assert_eq!(session.request(&by_ref(&wanted)).epoch, 2);

    session.reset();
    let again = session.request(&by_ref(&wanted));
    assert_eq!(
        (again.session_id, again.epoch),
        (42, 0),
        "closes 42 on the way"
    );
    assert_eq!(again.send, wanted);
    session.answered(again, 0);
    assert_eq!(
        session.request(&by_ref(&wanted)).session_id,
        0,
        "no session granted: full"
    );
}

/// The leader's side of the simulation.
struct Leader {
    sessions: FetchSessions,
    /// Per partition: log start, high watermark, log end.
    logs: BTreeMap<TopicPartition, (i64, i64, i64)>,
}

/// What the follower holds and knows per partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Replica {
    log_end: i64,
    leader_epoch: i32,
    /// The leader's log start and high watermark as last told (-1 before).
    told: (i64, i64),
}

struct Sim {
    rng: ChaCha8Rng,
    leader: Leader,
    follower: FollowerSession,
    replicas: BTreeMap<TopicPartition, Replica>,
    trace: Vec<String>,
    now: i64,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut logs = BTreeMap::new();
        for topic in ["a", "b", "c"] {
            for p in 0..4 {
                let end = i64::from(rng.next_u32() % 20);
                logs.insert(tp(topic, p), (0, end, end));
            }
        }
        let replicas = logs
            .keys()
            .filter(|_| !rng.next_u32().is_multiple_of(3))
            .map(|tp| {
                let replica = Replica {
                    log_end: 0,
                    leader_epoch: 1,
                    told: (-1, -1),
                };
                (tp.clone(), replica)
            })
            .collect();
        Sim {
            leader: Leader {
                sessions: FetchSessions::new(2, seed),
                logs,
            },
            follower: FollowerSession::default(),
            replicas,
            trace: Vec::new(),
            now: 0,
            rng,
        }
    }

    fn pick(&mut self) -> TopicPartition {
        let keys: Vec<&TopicPartition> = self.leader.logs.keys().collect();
        keys[self.rng.next_u32() as usize % keys.len()].clone()
    }

    fn step(&mut self) {
        self.now += 10;
        match self.rng.next_u32() % 12 {
            0..=2 => {
                let tp = self.pick();
                let log = self.leader.logs.get_mut(&tp).unwrap();
                log.2 += 1 + i64::from(self.rng.next_u32() % 5);
                self.trace.push(format!("append {tp} -> {}", log.2));
            }
            3 => {
                let tp = self.pick();
                let log = self.leader.logs.get_mut(&tp).unwrap();
                log.1 = log.2;
                self.trace.push(format!("high watermark {tp} -> {}", log.1));
            }
            4 => {
                let tp = self.pick();
                let log = self.leader.logs.get_mut(&tp).unwrap();
                log.0 = log.0.max(log.1.min(log.0 + 1));
                self.trace.push(format!("log start {tp} -> {}", log.0));
            }
            5 => {
                let tp = self.pick();
                if self.replicas.remove(&tp).is_some() {
                    self.trace.push(format!("drop {tp}"));
                } else {
                    self.trace.push(format!("add {tp}"));
                    let replica = Replica {
                        log_end: 0,
                        leader_epoch: 1,
                        told: (-1, -1),
                    };
                    self.replicas.insert(tp, replica);
                }
            }
            6 => {
                let tp = self.pick();
                if let Some(r) = self.replicas.get_mut(&tp) {
                    r.leader_epoch += 1;
                    self.trace.push(format!("epoch {tp} -> {}", r.leader_epoch));
                }
            }
            7 => {
                // Another follower opens a session: with two slots, ours goes if it is the
                // least recently used of those idle past the eviction limit.
                if self.rng.next_u32().is_multiple_of(2) {
                    self.now += crate::services::fetch_sessions::EVICTION_IDLE_MS + 1;
                }
                let mut other = FetchRequest::default();
                other.session_epoch = 0;
                let opened = self.leader.sessions.begin(&other, 12, 9, self.now);
                self.trace.push(format!(
                    "another session {:?}",
                    opened.map(|s| s.session_id)
                ));
            }
            8 if self.rng.next_u32().is_multiple_of(4) => {
                self.leader.sessions = FetchSessions::new(2, self.rng.next_u64());
                self.trace.push("leader restarted: sessions lost".into());
            }
            _ => self.exchange(),
        }
    }

    fn wanted(&self) -> Vec<(TopicPartition, PartitionFetch)> {
        self.replicas
            .iter()
            .map(|(tp, r)| {
                let fetch = PartitionFetch {
                    fetch_offset: r.log_end,
                    log_start_offset: 0,
                    leader_epoch: r.leader_epoch,
                    max_bytes: 1000,
                };
                (tp.clone(), fetch)
            })
            .collect()
    }

    /// The leader's answer: every partition read from its session (the real cache decides
    /// which it reads and which it answers); a partition behind gets all it lacks as one
    /// record batch holding the new log end.
    fn serve(&mut self, request: &FetchRequest) -> Result<FetchResponse, i16> {
        let fetch = self.leader.sessions.begin(request, 12, 2, self.now)?;
        let read: BTreeMap<TopicPartition, PartitionFetch> = fetch
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    let fetch = PartitionFetch {
                        fetch_offset: p.fetch_offset,
                        log_start_offset: p.log_start_offset,
                        leader_epoch: p.current_leader_epoch,
                        max_bytes: p.partition_max_bytes,
                    };
                    (tp(t.topic.0.as_str(), p.partition), fetch)
                })
            })
            .collect();
        let expected: BTreeMap<TopicPartition, PartitionFetch> =
            self.wanted().into_iter().collect();
        assert_eq!(read, expected, "the leader reads what the follower wants");
        let mut response = FetchResponse::default();
        for t in &fetch.topics {
            let mut topic = FetchableTopicResponse::default();
            topic.topic = t.topic.clone();
            for p in &t.partitions {
                let (start, hw, end) = self.leader.logs[&tp(t.topic.0.as_str(), p.partition)];
                let mut data = PartitionData::default();
                data.partition_index = p.partition;
                data.high_watermark = hw;
                data.last_stable_offset = hw;
                data.log_start_offset = start;
                data.preferred_read_replica = BrokerId(-1);
                if p.fetch_offset < end {
                    data.records = Some(bytes::Bytes::copy_from_slice(&end.to_be_bytes()));
                }
                topic.partitions.push(data);
            }
            response.responses.push(topic);
        }
        let mut files: Vec<Option<()>> = vec![None; read.len()];
        self.leader
            .sessions
            .finish(&fetch, &mut response, &mut files, Vec::new());
        assert_eq!(
            files.len(),
            response
                .responses
                .iter()
                .map(|t| t.partitions.len())
                .sum::<usize>()
        );
        Ok(response)
    }

    fn exchange(&mut self) {
        let wanted = self.wanted();
        let session = self.follower.request(&by_ref(&wanted));
        let mut request = FetchRequest::default();
        request.replica_id = BrokerId(2);
        session.fill(&mut request);
        self.trace.push(format!(
            "fetch session {} epoch {}: {} sent, {} forgotten",
            session.session_id,
            session.epoch,
            session.send.len(),
            session.forget.len()
        ));
        let response = match self.serve(&request) {
            Ok(response) => response,
            Err(code) => {
                self.trace.push(format!("refused with {code}"));
                self.follower.reset();
                return;
            }
        };
        if self.rng.next_u32().is_multiple_of(10) {
            self.trace.push("response lost".into());
            self.follower.reset();
            return;
        }
        self.follower.answered(session, response.session_id);
        for topic in &response.responses {
            for p in &topic.partitions {
                let tp = tp(topic.topic.0.as_str(), p.partition_index);
                let replica = self
                    .replicas
                    .get_mut(&tp)
                    .unwrap_or_else(|| panic!("{tp} answered but not followed"));
                if let Some(records) = p.records.as_ref().filter(|r| !r.is_empty()) {
                    let end: [u8; 8] = records[..].try_into().expect("8 bytes");
                    replica.log_end = i64::from_be_bytes(end);
                }
                replica.told = (p.log_start_offset, p.high_watermark);
            }
        }
        for (tp, replica) in &self.replicas {
            let (start, hw, end) = self.leader.logs[tp];
            assert_eq!(
                (replica.log_end, replica.told),
                (end, (start, hw)),
                "{tp}: the follower knows what the leader has"
            );
        }
    }
}

fn run(seed: u64) {
    let mut sim = Sim::new(seed);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..STEPS {
            sim.step();
        }
    }));
    if let Err(panic) = outcome {
        let tail = sim.trace.len().saturating_sub(30);
        eprintln!("last events:\n{}", sim.trace[tail..].join("\n"));
        eprintln!("simulation failed: replay with STROM_FETCH_SESSION_SEED={seed}");
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn seeded_sessions_tell_the_follower_everything_it_lacks() {
    if let Ok(seed) = std::env::var("STROM_FETCH_SESSION_SEED") {
        return run(seed.parse().expect("STROM_FETCH_SESSION_SEED is a u64"));
    }
    for seed in 0..SEEDS {
        run(seed);
    }
}
