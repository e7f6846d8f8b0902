//! The transaction coordinator simulation's world (see `tests/txn_sim.rs`).

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use strom_meta::replication::TopicPartition;
use strom_meta::txn::errors::*;
use strom_meta::txn::*;

/// A `__transaction_state` partition's records: (key, value or tombstone).
type Records = Vec<(Vec<u8>, Option<Vec<u8>>)>;

const LOG_PARTITIONS: i32 = 2;
const IDS: [&str; 3] = ["alpha", "beta", "gamma"];
const TIMEOUT_MS: i32 = 5_000;

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub commits: u64,
    pub aborts: u64,
    pub crashes: u64,
    pub fenced_answers: u64,
    pub coordinator_aborts: u64,
    pub lost_marker_results: u64,
    pub duplicated_marker_results: u64,
    pub failed_writes: u64,
    pub resumed_after_crash: u64,
    pub crashes_while_prepared: u64,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.commits += other.commits;
        self.aborts += other.aborts;
        self.crashes += other.crashes;
        self.fenced_answers += other.fenced_answers;
        self.coordinator_aborts += other.coordinator_aborts;
        self.lost_marker_results += other.lost_marker_results;
        self.duplicated_marker_results += other.duplicated_marker_results;
        self.failed_writes += other.failed_writes;
        self.resumed_after_crash += other.resumed_after_crash;
        self.crashes_while_prepared += other.crashes_while_prepared;
    }
}

#[derive(Debug)]
enum Event {
    /// An input for the coordinator incarnation `incarnation` (dropped if it crashed).
    Coordinator { incarnation: u32, input: Input },
    /// An answer for a producer.
    Producer {
        token: RequestToken,
        response: Response,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Waiting {
    Init,
    Add,
    End(bool),
}

#[derive(Debug)]
struct Producer {
    transactional_id: &'static str,
    grant: Option<(i64, i16)>,
    waiting: Option<(RequestToken, Waiting)>,
    /// The open transaction: its number, partitions added, partitions written.
    txn: Option<(u64, BTreeSet<TopicPartition>, BTreeSet<TopicPartition>)>,
    /// Requested partitions of an AddPartitions in flight.
    adding: Vec<TopicPartition>,
    /// EndTxn was sent for the open transaction: like a real client, the producer repeats it
    /// (through lost connections and retriable errors) until it has a definite answer.
    ending: Option<bool>,
    /// A KIP-360 re-initialisation in progress: the producer id and epoch it presents (the
    /// producer repeats the InitProducerId until it has an answer, as a client does).
    reinit_from: Option<(i64, i16)>,
}

struct Sim {
    rng: ChaCha8Rng,
    trace: bool,
    faults: bool,
    now_ms: i64,
    coordinator: Option<TxnCoordinator>,
    incarnation: u32,
    txn_log: BTreeMap<i32, Records>,
    queue: Vec<Event>,
    producers: Vec<Producer>,
    /// Per data partition, per producer id: the open transaction (epoch of its data, number).
    open: BTreeMap<TopicPartition, BTreeMap<i64, (i16, u64)>>,
    next_token: u64,
    next_producer_id: i64,
    next_txn: u64,
    /// Per transaction, the marker each partition it wrote to got.
    outcomes: BTreeMap<u64, BTreeMap<TopicPartition, TxnResult>>,
    /// Per transaction, what EndTxn told its producer.
    told: BTreeMap<u64, TxnResult>,
    /// Per transactional id, the last (producer id, epoch) InitProducerId granted.
    grants: BTreeMap<String, (i64, i16)>,
    /// Token → (transactional id, producer id, epoch) of each data request in flight.
    requests: BTreeMap<RequestToken, (String, i64, i16)>,
    observed: BTreeMap<String, TxnState>,
    stats: Stats,
}

fn partition(rng: &mut ChaCha8Rng) -> TopicPartition {
    let topic = if rng.next_u32().is_multiple_of(2) {
        "orders"
    } else {
        "payments"
    };
    TopicPartition::new(topic, (rng.next_u32() % 2) as i32)
}

impl Sim {
    fn new(seed: u64, trace: bool) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let producer_count = 2 + (rng.next_u32() % 4) as usize;
        let producers = (0..producer_count)
            .map(|index| Producer {
                transactional_id: IDS[index % IDS.len()],
                grant: None,
                waiting: None,
                txn: None,
                adding: vec![],
                ending: None,
                reinit_from: None,
            })
            .collect();
        let mut sim = Sim {
            rng,
            trace,
            faults: true,
            now_ms: 1_000_000,
            coordinator: None,
            incarnation: 0,
            txn_log: BTreeMap::new(),
            queue: vec![],
            producers,
            open: BTreeMap::new(),
            next_token: 0,
            next_producer_id: 5_000,
            next_txn: 0,
            outcomes: BTreeMap::new(),
            told: BTreeMap::new(),
            grants: BTreeMap::new(),
            requests: BTreeMap::new(),
            observed: BTreeMap::new(),
            stats: Stats::default(),
        };
        sim.start_coordinator();
        sim
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.next_u32() % 100 < percent
    }

    fn start_coordinator(&mut self) {
        self.incarnation += 1;
        let config = TxnConfig {
            log_partitions: LOG_PARTITIONS,
            id_expiration_ms: 120_000,
            retry_backoff_ms: 50,
            ..TxnConfig::default()
        };
        self.coordinator = Some(TxnCoordinator::new(config));
        self.observed.clear();
        for partition in 0..LOG_PARTITIONS {
            let input = Input::BecomeCoordinator {
                partition,
                coordinator_epoch: self.incarnation as i32,
            };
            self.feed(input);
        }
    }

    fn crash(&mut self) {
        if self.trace {
            eprintln!("{}: coordinator {} crashes", self.now_ms, self.incarnation);
        }
        self.stats.crashes += 1;
        let coordinator = self.coordinator.as_ref().expect("up");
        if IDS.iter().any(|id| {
            coordinator.metadata(id).is_some_and(|meta| {
                matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
            })
        }) {
            self.stats.crashes_while_prepared += 1;
        }
        self.coordinator = None;
        let incarnation = self.incarnation;
        self.queue
            .retain(|event| !matches!(event, Event::Coordinator { incarnation: i, .. } if *i == incarnation));
        // Requests parked in the dead coordinator fail on the client's side (connection lost).
        for producer in &mut self.producers {
            producer.waiting = None;
        }
    }

    /// Steps the coordinator and plays its effects into the world.
    fn feed(&mut self, input: Input) {
        let Some(coordinator) = self.coordinator.as_mut() else {
            return;
        };
        if self.trace {
            eprintln!("{}: -> {input:?}", self.now_ms);
        }
        let effects = coordinator.step(input, self.now_ms);
        let incarnation = self.incarnation;
        for effect in effects {
            if self.trace {
                eprintln!("{}:    <- {effect:?}", self.now_ms);
            }
            match effect {
                Effect::Append {
                    write,
                    partition,
                    key,
                    value,
                    ..
                } => {
                    let roll = if self.faults {
                        self.rng.next_u32() % 100
                    } else {
                        99
                    };
                    let outcome = if roll < 5 {
                        self.stats.failed_writes += 1;
                        AppendOutcome::Failed(19) // not written
                    } else {
                        if roll < 9 {
                            self.stats.failed_writes += 1;
                        }
                        self.txn_log
                            .entry(partition)
                            .or_default()
                            .push((key, value));
                        if roll < 9 {
                            AppendOutcome::Failed(7)
                        } else {
                            AppendOutcome::Written
                        }
                    };
                    self.queue.push(Event::Coordinator {
                        incarnation,
                        input: Input::Appended { write, outcome },
                    });
                }
                Effect::Respond { token, response } => {
                    self.check_not_fenced(token, &response);
                    self.queue.push(Event::Producer { token, response });
                }
                Effect::SendMarkers {
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    result,
                    partitions,
                    ..
                } => {
                    for partition in partitions {
                        let roll = if self.faults {
                            self.rng.next_u32() % 100
                        } else {
                            99
                        };
                        let applied = roll >= 7;
                        if applied {
                            self.apply_marker(&partition, producer_id, producer_epoch, result);
                        }
                        let lost = roll < 14;
                        let outcome = if lost {
                            MarkerOutcome::Retriable
                        } else {
                            MarkerOutcome::Written
                        };
                        if lost {
                            self.stats.lost_marker_results += 1;
                        }
                        let copies = if roll >= 94 { 2 } else { 1 };
                        if copies == 2 {
                            self.stats.duplicated_marker_results += 1;
                        }
                        for _ in 0..copies {
                            let input = Input::MarkerResult {
                                transactional_id: transactional_id.clone(),
                                producer_id,
                                producer_epoch,
                                partition: partition.clone(),
                                outcome,
                            };
                            self.queue.push(Event::Coordinator { incarnation, input });
                        }
                    }
                }
                Effect::AllocateProducerId { token } => {
                    self.next_producer_id += 1;
                    let input = Input::ProducerIdAllocated {
                        token,
                        result: Ok(self.next_producer_id),
                    };
                    self.queue.push(Event::Coordinator { incarnation, input });
                }
                Effect::ReadPartition {
                    partition,
                    coordinator_epoch,
                } => {
                    let records = self.txn_log.get(&partition).cloned().unwrap_or_default();
                    let input = Input::PartitionRead {
                        partition,
                        coordinator_epoch,
                        records,
                    };
                    self.queue.push(Event::Coordinator { incarnation, input });
                }
            }
        }
    }

    fn apply_marker(
        &mut self,
        partition: &TopicPartition,
        producer_id: i64,
        epoch: i16,
        result: TxnResult,
    ) {
        let open = self.open.entry(partition.clone()).or_default();
        let Some((data_epoch, number)) = open.get(&producer_id).copied() else {
            return;
        };
        assert!(
            epoch >= data_epoch,
            "marker epoch {epoch} below the data's {data_epoch} on {partition}"
        );
        open.remove(&producer_id);
        if self.trace {
            eprintln!(
                "{}:    {partition}: {result:?} closes transaction {number}",
                self.now_ms
            );
        }
        self.outcomes
            .entry(number)
            .or_default()
            .insert(partition.clone(), result);
    }

    /// A success must never go to a (producer id, epoch) that a newer InitProducerId replaced.
    fn check_not_fenced(&mut self, token: RequestToken, response: &Response) {
        let success = match response {
            Response::AddPartitions { results } => results.iter().all(|(_, error)| *error == NONE),
            Response::EndTxn { error } => *error == NONE,
            Response::InitProducerId {
                error,
                producer_id,
                producer_epoch,
            } => {
                if *error == NONE {
                    let owner = self
                        .producers
                        .iter()
                        .find(|p| p.waiting.is_some_and(|(t, _)| t == token));
                    if let Some(owner) = owner {
                        self.grants.insert(
                            owner.transactional_id.to_owned(),
                            (*producer_id, *producer_epoch),
                        );
                    }
                }
                false
            }
        };
        if matches!(
            response,
            Response::EndTxn {
                error: PRODUCER_FENCED
            }
        ) || matches!(response, Response::AddPartitions { results } if results.iter().any(|(_, e)| *e == PRODUCER_FENCED))
        {
            self.stats.fenced_answers += 1;
        }
        if let (true, Some((id, producer_id, epoch))) = (success, self.requests.get(&token)) {
            assert_eq!(
                self.grants.get(id),
                Some(&(*producer_id, *epoch)),
                "{id}: success for fenced producer ({producer_id}, {epoch})"
            );
        }
    }

    fn token(&mut self) -> RequestToken {
        self.next_token += 1;
        RequestToken(self.next_token)
    }

    /// Producer `index` does its next thing, unless it waits for an answer.
    fn act(&mut self, index: usize) {
        if self.producers[index].waiting.is_some() || self.coordinator.is_none() {
            return;
        }
        let id = self.producers[index].transactional_id.to_owned();
        let Some((producer_id, epoch)) = self.producers[index].grant else {
            let token = self.token();
            let current = self.producers[index].reinit_from;
            self.producers[index].waiting = Some((token, Waiting::Init));
            return self.feed(Input::InitProducerId {
                token,
                transactional_id: id,
                timeout_ms: TIMEOUT_MS,
                current,
            });
        };
        if self.producers[index].txn.is_none() {
            self.next_txn += 1;
            self.producers[index].txn = Some((self.next_txn, BTreeSet::new(), BTreeSet::new()));
        }
        let (number, added, _) = self.producers[index].txn.clone().expect("set");
        if let Some(commit) = self.producers[index].ending {
            return self.end(index, commit);
        }
        let roll = self.rng.next_u32() % 100;
        if roll < 5 {
            // KIP-360: re-initialise with the current producer id and epoch.
            let token = self.token();
            self.producers[index].waiting = Some((token, Waiting::Init));
            self.producers[index].txn = None;
            self.producers[index].grant = None;
            let current = Some((producer_id, epoch));
            self.producers[index].reinit_from = current;
            return self.feed(Input::InitProducerId {
                token,
                transactional_id: id,
                timeout_ms: TIMEOUT_MS,
                current,
            });
        }
        if roll < 35 || added.is_empty() {
            let partitions: Vec<TopicPartition> = (0..1 + self.rng.next_u32() % 2)
                .map(|_| partition(&mut self.rng))
                .collect();
            let token = self.token();
            self.requests
                .insert(token, (id.clone(), producer_id, epoch));
            self.producers[index].waiting = Some((token, Waiting::Add));
            self.producers[index].adding = partitions.clone();
            let input = Input::AddPartitions {
                token,
                transactional_id: id,
                producer_id,
                producer_epoch: epoch,
                partitions,
                verify_only: false,
            };
            return self.feed(input);
        }
        if roll < 80 {
            // Produce to an added partition; its leader verifies with the coordinator first
            // (KIP-890) and appends in the same step, as a leader's verification guard does.
            let target = added
                .iter()
                .nth(self.rng.next_u32() as usize % added.len())
                .expect("non-empty")
                .clone();
            let token = self.token();
            self.requests
                .insert(token, (id.clone(), producer_id, epoch));
            let input = Input::AddPartitions {
                token,
                transactional_id: id,
                producer_id,
                producer_epoch: epoch,
                partitions: vec![target.clone()],
                verify_only: true,
            };
            let effects = self
                .coordinator
                .as_mut()
                .expect("up")
                .step(input, self.now_ms);
            let [Effect::Respond {
                token: answered,
                response,
            }] = &effects[..]
            else {
                panic!("verify-only must answer at once and do nothing else: {effects:?}")
            };
            assert_eq!(*answered, token);
            self.check_not_fenced(token, response);
            if *response
                == (Response::AddPartitions {
                    results: vec![(target.clone(), NONE)],
                })
            {
                let open = self.open.entry(target.clone()).or_default();
                if let Some((_, other)) = open.get(&producer_id) {
                    assert_eq!(
                        *other, number,
                        "transaction {number} wrote to {target} while {other} is open there"
                    );
                }
                open.insert(producer_id, (epoch, number));
                self.producers[index]
                    .txn
                    .as_mut()
                    .expect("set")
                    .2
                    .insert(target);
            }
            return;
        }
        let commit = self.chance(60);
        self.end(index, commit);
    }

    fn end(&mut self, index: usize, commit: bool) {
        let id = self.producers[index].transactional_id.to_owned();
        let (producer_id, epoch) = self.producers[index].grant.expect("granted");
        self.producers[index].ending = Some(commit);
        let token = self.token();
        self.requests
            .insert(token, (id.clone(), producer_id, epoch));
        self.producers[index].waiting = Some((token, Waiting::End(commit)));
        self.feed(Input::EndTxn {
            token,
            transactional_id: id,
            producer_id,
            producer_epoch: epoch,
            commit,
        });
    }

    fn answer(&mut self, token: RequestToken, response: Response) {
        let Some(index) = self
            .producers
            .iter()
            .position(|p| p.waiting.is_some_and(|(t, _)| t == token))
        else {
            return; // its producer gave up on it (the coordinator crashed)
        };
        let (_, kind) = self.producers[index].waiting.take().expect("found");
        let producer = &mut self.producers[index];
        let error = match (&response, kind) {
            (
                Response::InitProducerId {
                    error: NONE,
                    producer_id,
                    producer_epoch,
                },
                Waiting::Init,
            ) => {
                producer.grant = Some((*producer_id, *producer_epoch));
                producer.txn = None;
                producer.ending = None;
                producer.reinit_from = None;
                return;
            }
            (Response::InitProducerId { error, .. }, Waiting::Init) => *error,
            (Response::AddPartitions { results }, Waiting::Add) => {
                let error = results
                    .iter()
                    .map(|(_, error)| *error)
                    .find(|error| *error != NONE)
                    .unwrap_or(NONE);
                if error == NONE {
                    let adding = std::mem::take(&mut producer.adding);
                    producer.txn.as_mut().expect("open").1.extend(adding);
                }
                error
            }
            (Response::EndTxn { error }, Waiting::End(commit)) => {
                if *error == NONE {
                    let (number, _, _) = producer.txn.take().expect("open");
                    producer.ending = None;
                    let result = if commit {
                        TxnResult::Commit
                    } else {
                        TxnResult::Abort
                    };
                    self.told.insert(number, result);
                    if commit {
                        self.stats.commits += 1;
                    } else {
                        self.stats.aborts += 1;
                    }
                }
                *error
            }
            other => panic!("answer {other:?} does not match the request"),
        };
        // Fatal errors: this producer starts over with a new InitProducerId (a new instance);
        // retriable ones (CONCURRENT_TRANSACTIONS, COORDINATOR_*) are simply retried.
        if matches!(
            error,
            PRODUCER_FENCED
                | INVALID_PRODUCER_ID_MAPPING
                | INVALID_TXN_STATE
                | INVALID_PRODUCER_EPOCH
        ) {
            let producer = &mut self.producers[index];
            producer.grant = None;
            producer.txn = None;
            producer.ending = None;
            producer.reinit_from = None;
        }
    }

    /// The invariants that any event may break.
    fn check(&mut self) {
        for (number, outcomes) in &self.outcomes {
            let results: BTreeSet<_> = outcomes.values().map(|r| format!("{r:?}")).collect();
            assert!(
                results.len() <= 1,
                "transaction {number} has mixed markers: {outcomes:?}"
            );
            if let (Some(told), Some(result)) = (self.told.get(number), outcomes.values().next()) {
                assert_eq!(
                    told, result,
                    "transaction {number}: EndTxn said {told:?}, markers say {result:?}"
                );
            }
        }
        let Some(coordinator) = &self.coordinator else {
            return;
        };
        for id in IDS {
            match coordinator.metadata(id) {
                None => {
                    self.observed.remove(id);
                }
                Some(meta) => {
                    if let Some(before) = self.observed.insert(id.to_owned(), meta.state) {
                        assert!(
                            before == meta.state || meta.state.may_follow(before),
                            "{id}: illegal transition {before:?} -> {:?}",
                            meta.state
                        );
                    }
                }
            }
        }
    }

    fn run(&mut self, events: usize) {
        for _ in 0..events {
            let roll = self.rng.next_u32() % 100;
            if self.coordinator.is_none() {
                self.now_ms += 100 + i64::from(self.rng.next_u32() % 2_000);
                if self.chance(50) {
                    self.start_coordinator();
                    self.stats.resumed_after_crash += 1;
                }
            } else if roll < 55 && !self.queue.is_empty() {
                let at = self.rng.next_u32() as usize % self.queue.len();
                match self.queue.swap_remove(at) {
                    Event::Coordinator { input, .. } => self.feed(input),
                    Event::Producer { token, response } => self.answer(token, response),
                }
            } else if roll < 85 {
                let index = self.rng.next_u32() as usize % self.producers.len();
                self.act(index);
            } else if roll < 99 || !self.faults {
                self.now_ms += if self.chance(10) {
                    6_000
                } else {
                    1 + i64::from(self.rng.next_u32() % 200)
                };
                self.feed(Input::Tick);
            } else {
                self.crash();
            }
            self.check();
        }
    }

    /// Faults stop, producers stop, time passes: everything must settle.
    fn settle(&mut self) {
        self.faults = false;
        if self.coordinator.is_none() {
            self.start_coordinator();
        }
        for producer in &mut self.producers {
            producer.waiting = None;
        }
        for round in 0..200 {
            while let Some(event) = self.queue.pop() {
                match event {
                    Event::Coordinator { input, .. } => self.feed(input),
                    Event::Producer { .. } => {}
                }
                self.check();
            }
            if round == 199 {
                break;
            }
            self.now_ms += 1_000;
            self.feed(Input::Tick);
            self.check();
        }
        for (partition, open) in &self.open {
            assert!(
                open.is_empty(),
                "{partition} still holds open transactions {open:?}"
            );
        }
        let coordinator = self.coordinator.as_ref().expect("up");
        for id in IDS {
            if let Some(meta) = coordinator.metadata(id) {
                assert!(
                    !matches!(
                        meta.state,
                        TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
                    ),
                    "{id} left in {:?}",
                    meta.state
                );
            }
        }
    }
}

pub fn run(seed: u64, trace: bool) -> Stats {
    let mut sim = Sim::new(seed, trace);
    sim.run(600);
    sim.settle();
    let coordinator_aborts = sim
        .outcomes
        .iter()
        .filter(|(number, outcomes)| {
            !sim.told.contains_key(number) && outcomes.values().any(|r| *r == TxnResult::Abort)
        })
        .count();
    sim.stats.coordinator_aborts = coordinator_aborts as u64;
    sim.stats
}
