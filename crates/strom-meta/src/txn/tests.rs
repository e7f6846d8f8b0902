//! Scenario tests of the coordinator: one step at a time, effects checked exactly.

use super::errors::*;
use super::*;

const ID: &str = "tx-1";

struct Harness {
    coordinator: TxnCoordinator,
    now_ms: i64,
    next_token: u64,
    next_producer_id: i64,
    /// Every record written, in order (what a reload reads).
    log: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Harness {
    fn new() -> Harness {
        let mut coordinator = TxnCoordinator::new(TxnConfig {
            id_expiration_ms: 1_000_000,
            ..TxnConfig::default()
        });
        let partition = partition_for(ID, 50);
        let effects = coordinator.step(
            Input::BecomeCoordinator {
                partition,
                coordinator_epoch: 1,
            },
            0,
        );
        assert_eq!(
            effects,
            vec![Effect::ReadPartition {
                partition,
                coordinator_epoch: 1
            }]
        );
        let effects = coordinator.step(
            Input::PartitionRead {
                partition,
                coordinator_epoch: 1,
                records: vec![],
            },
            0,
        );
        assert!(effects.is_empty());
        Harness {
            coordinator,
            now_ms: 1_000,
            next_token: 0,
            next_producer_id: 1000,
            log: vec![],
        }
    }

    fn token(&mut self) -> RequestToken {
        self.next_token += 1;
        RequestToken(self.next_token)
    }

    /// Steps, then performs writes (all succeed) and allocations until only responses and
    /// markers are left; returns those.
    fn run(&mut self, input: Input) -> Vec<Effect> {
        let mut queue = vec![input];
        let mut out = Vec::new();
        while let Some(input) = queue.pop() {
            for effect in self.coordinator.step(input, self.now_ms) {
                match effect {
                    Effect::Append {
                        write, key, value, ..
                    } => {
                        self.log.push((key, value));
                        queue.push(Input::Appended {
                            write,
                            outcome: AppendOutcome::Written,
                        });
                    }
                    Effect::AllocateProducerId { token } => {
                        self.next_producer_id += 1;
                        queue.push(Input::ProducerIdAllocated {
                            token,
                            result: Ok(self.next_producer_id),
                        });
                    }
                    other => out.push(other),
                }
            }
        }
        out
    }

    fn init(&mut self, current: Option<(i64, i16)>) -> Response {
        let token = self.token();
        let input = Input::InitProducerId {
            token,
            transactional_id: ID.into(),
            timeout_ms: 10_000,
            current,
        };
        only_response(self.run(input), token)
    }

    fn add(
        &mut self,
        producer: (i64, i16),
        partitions: &[(&str, i32)],
        verify_only: bool,
    ) -> Vec<i16> {
        let token = self.token();
        let partitions = partitions
            .iter()
            .map(|(t, p)| TopicPartition::new(*t, *p))
            .collect();
        let input = Input::AddPartitions {
            token,
            transactional_id: ID.into(),
            producer_id: producer.0,
            producer_epoch: producer.1,
            partitions,
            verify_only,
        };
        match only_response(self.run(input), token) {
            Response::AddPartitions { results } => {
                results.into_iter().map(|(_, error)| error).collect()
            }
            other => panic!("{other:?}"),
        }
    }

    fn end(&mut self, producer: (i64, i16), commit: bool) -> (i16, Vec<Effect>) {
        let token = self.token();
        let input = Input::EndTxn {
            token,
            transactional_id: ID.into(),
            producer_id: producer.0,
            producer_epoch: producer.1,
            commit,
        };
        let mut effects = self.run(input);
        let position = effects
            .iter()
            .position(|effect| matches!(effect, Effect::Respond { token: t, .. } if *t == token))
            .expect("answered");
        match effects.remove(position) {
            Effect::Respond {
                response: Response::EndTxn { error },
                ..
            } => (error, effects),
            other => panic!("{other:?}"),
        }
    }

    /// Acknowledges every marker of a SendMarkers effect.
    fn ack(&mut self, markers: &Effect) -> Vec<Effect> {
        let Effect::SendMarkers {
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
            ..
        } = markers
        else {
            panic!("{markers:?}")
        };
        let mut out = Vec::new();
        for partition in partitions {
            out.extend(self.run(Input::MarkerResult {
                transactional_id: transactional_id.clone(),
                producer_id: *producer_id,
                producer_epoch: *producer_epoch,
                partition: partition.clone(),
                outcome: MarkerOutcome::Written,
            }));
        }
        out
    }

    fn state(&self) -> TxnState {
        self.coordinator.metadata(ID).unwrap().state
    }
}

fn only_response(effects: Vec<Effect>, token: RequestToken) -> Response {
    match <[Effect; 1]>::try_from(effects) {
        Ok([Effect::Respond { token: t, response }]) if t == token => response,
        Ok(other) => panic!("{other:?}"),
        Err(effects) => panic!("expected one response: {effects:?}"),
    }
}

fn granted(response: Response) -> (i64, i16) {
    match response {
        Response::InitProducerId {
            error: NONE,
            producer_id,
            producer_epoch,
        } => (producer_id, producer_epoch),
        other => panic!("{other:?}"),
    }
}

#[test]
fn commit_writes_prepare_then_markers_then_complete() {
    let mut h = Harness::new();
    let producer = granted(h.init(None));
    assert_eq!(producer, (1001, 0));
    assert_eq!(
        h.add(producer, &[("a", 0), ("b", 1)], false),
        vec![NONE, NONE]
    );
    assert_eq!(h.state(), TxnState::Ongoing);
    assert_eq!(
        h.add(producer, &[("a", 0)], true),
        vec![NONE],
        "verify-only knows a"
    );
    assert_eq!(
        h.add(producer, &[("c", 0)], true),
        vec![TRANSACTION_ABORTABLE]
    );
    let (error, effects) = h.end(producer, true);
    assert_eq!(error, NONE);
    assert_eq!(h.state(), TxnState::PrepareCommit);
    let [markers] = <[Effect; 1]>::try_from(effects).unwrap();
    assert!(
        matches!(&markers, Effect::SendMarkers { result: TxnResult::Commit, partitions, coordinator_epoch: 1, .. } if partitions.len() == 2)
    );
    // The next transaction waits for the markers.
    assert_eq!(
        h.add(producer, &[("a", 0)], false),
        vec![CONCURRENT_TRANSACTIONS]
    );
    assert_eq!(h.end(producer, true).0, CONCURRENT_TRANSACTIONS);
    assert_eq!(h.end(producer, false).0, INVALID_TXN_STATE);
    assert!(h.ack(&markers).is_empty());
    assert_eq!(h.state(), TxnState::CompleteCommit);
    assert!(h.coordinator.metadata(ID).unwrap().partitions.is_empty());
    assert_eq!(h.end(producer, true).0, NONE, "a retried commit succeeds");
    let states: Vec<TxnState> = h
        .log
        .iter()
        .map(|(_, v)| codec::decode_value(v.as_ref().unwrap()).unwrap().state)
        .collect();
    use TxnState::*;
    assert_eq!(states, vec![Empty, Ongoing, PrepareCommit, CompleteCommit]);
}

#[test]
fn a_new_producer_fences_the_open_transaction() {
    let mut h = Harness::new();
    let old = granted(h.init(None));
    h.add(old, &[("a", 0)], false);
    let token = h.token();
    let effects = h.run(Input::InitProducerId {
        token,
        transactional_id: ID.into(),
        timeout_ms: 10_000,
        current: None,
    });
    assert_eq!(effects.len(), 2, "{effects:?}");
    assert!(matches!(
        &effects[1],
        Effect::SendMarkers {
            result: TxnResult::Abort,
            producer_epoch: 1,
            ..
        }
    ));
    assert_eq!(
        effects[0],
        Effect::Respond {
            token,
            response: Response::InitProducerId {
                error: CONCURRENT_TRANSACTIONS,
                producer_id: -1,
                producer_epoch: -1
            }
        }
    );
    assert_eq!(h.end(old, true).0, PRODUCER_FENCED);
    assert_eq!(h.add(old, &[("b", 0)], false), vec![PRODUCER_FENCED]);
    assert!(matches!(
        h.init(None),
        Response::InitProducerId {
            error: CONCURRENT_TRANSACTIONS,
            ..
        }
    ));
    h.ack(&effects[1]);
    assert_eq!(h.state(), TxnState::CompleteAbort);
    assert_eq!(granted(h.init(None)), (1001, 2));
    assert_eq!(h.end(old, false).0, PRODUCER_FENCED);
}

#[test]
fn kip_360_retry_and_epoch_exhaustion() {
    let mut h = Harness::new();
    let first = granted(h.init(None));
    let second = granted(h.init(Some(first)));
    assert_eq!(second, (1001, 1));
    assert_eq!(
        granted(h.init(Some(first))),
        second,
        "a retry whose answer was lost"
    );
    assert!(matches!(
        h.init(Some((77, 0))),
        Response::InitProducerId {
            error: PRODUCER_FENCED,
            ..
        }
    ));
    // Exhaust the epoch: the next init rotates the producer id.
    let partition = partition_for(ID, 50);
    let txns = h
        .coordinator
        .partitions
        .get_mut(&partition)
        .unwrap()
        .txns
        .as_mut()
        .unwrap();
    txns.get_mut(ID).unwrap().meta.producer_epoch = i16::MAX - 1;
    let rotated = granted(h.init(Some((1001, i16::MAX - 1))));
    assert_eq!(rotated, (1002, 0));
    assert_eq!(h.coordinator.metadata(ID).unwrap().last_producer_id, 1001);
}

#[test]
fn timed_out_transaction_is_aborted_with_a_bumped_epoch() {
    let mut h = Harness::new();
    let producer = granted(h.init(None));
    h.add(producer, &[("a", 0)], false);
    h.now_ms += 10_000;
    assert!(
        h.run(Input::Tick).is_empty(),
        "not yet: the timeout is strict"
    );
    h.now_ms += 1;
    let effects = h.run(Input::Tick);
    assert!(matches!(
        &effects[..],
        [Effect::SendMarkers {
            result: TxnResult::Abort,
            producer_epoch: 1,
            ..
        }]
    ));
    assert_eq!(h.state(), TxnState::PrepareAbort);
    assert_eq!(h.end(producer, true).0, PRODUCER_FENCED);
    h.ack(&effects[0]);
    assert_eq!(h.state(), TxnState::CompleteAbort);
    assert_eq!(h.coordinator.metadata(ID).unwrap().producer_epoch, 1);
}

#[test]
fn failed_write_reverts_and_answers_with_the_mapped_error() {
    let mut h = Harness::new();
    let producer = granted(h.init(None));
    let token = h.token();
    let effects = h.coordinator.step(
        Input::AddPartitions {
            token,
            transactional_id: ID.into(),
            producer_id: producer.0,
            producer_epoch: producer.1,
            partitions: vec![TopicPartition::new("a", 0)],
            verify_only: false,
        },
        h.now_ms,
    );
    let [Effect::Append { write, .. }] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert!(matches!(
        h.init(None),
        Response::InitProducerId {
            error: CONCURRENT_TRANSACTIONS,
            ..
        }
    ));
    let effects = h.coordinator.step(
        Input::Appended {
            write: *write,
            outcome: AppendOutcome::Failed(19),
        },
        h.now_ms,
    );
    assert_eq!(
        only_response(effects, token),
        Response::AddPartitions {
            results: vec![(TopicPartition::new("a", 0), COORDINATOR_NOT_AVAILABLE)]
        }
    );
    assert_eq!(h.state(), TxnState::Empty);
    assert_eq!(h.coordinator.metadata(ID).unwrap().pending, None);
}

#[test]
fn reload_resumes_prepared_commit_and_unload_answers_parked_requests() {
    let mut h = Harness::new();
    let producer = granted(h.init(None));
    h.add(producer, &[("a", 0), ("a", 1)], false);
    let (error, _markers_lost_in_the_crash) = h.end(producer, true);
    assert_eq!(error, NONE);
    let partition = partition_for(ID, 50);
    // A parked write is answered NOT_COORDINATOR when the partition moves away.
    let token = h.token();
    let effects = h.coordinator.step(
        Input::InitProducerId {
            token,
            transactional_id: "other".into(),
            timeout_ms: 1,
            current: None,
        },
        h.now_ms,
    );
    assert_eq!(
        only_response(effects, token),
        Response::InitProducerId {
            error: NOT_COORDINATOR,
            producer_id: -1,
            producer_epoch: -1
        }
    );
    // A new coordinator (epoch 2) loads the log and resends the COMMIT markers.
    let mut fresh = TxnCoordinator::new(TxnConfig::default());
    fresh.step(
        Input::BecomeCoordinator {
            partition,
            coordinator_epoch: 2,
        },
        0,
    );
    assert_eq!(fresh.describe(ID), Err(COORDINATOR_LOAD_IN_PROGRESS));
    let effects = fresh.step(
        Input::PartitionRead {
            partition,
            coordinator_epoch: 2,
            records: h.log.clone(),
        },
        5_000,
    );
    assert!(
        matches!(&effects[..], [Effect::SendMarkers { result: TxnResult::Commit, coordinator_epoch: 2, partitions, .. }] if partitions.len() == 2)
    );
    assert_eq!(fresh.describe(ID).unwrap().state, TxnState::PrepareCommit);
    let effects = fresh.step(Input::ResignCoordinator { partition }, 5_000);
    assert!(effects.is_empty());
    assert_eq!(fresh.describe(ID), Err(NOT_COORDINATOR));
}

#[test]
fn idle_ids_expire_with_a_tombstone() {
    let mut h = Harness::new();
    granted(h.init(None));
    h.now_ms += 1_000_000;
    assert!(h.run(Input::Tick).is_empty());
    assert_eq!(h.coordinator.metadata(ID), None);
    assert_eq!(h.log.last().unwrap().1, None, "a tombstone");
    assert_eq!(h.coordinator.describe(ID), Err(TRANSACTIONAL_ID_NOT_FOUND));
}

#[test]
fn partition_for_matches_java_string_hash_code() {
    // "tx-1".hashCode() == 3_572_520 in Java.
    assert_eq!(partition_for("tx-1", 50), 20);
    // A negative hash: "polygenelubricants".hashCode() == Integer.MIN_VALUE; Kafka's abs masks.
    assert_eq!(partition_for("polygenelubricants", 50), 0);
}

#[test]
fn legal_transitions_are_kafkas() {
    use TxnState::*;
    assert!(PrepareCommit.may_follow(Ongoing));
    assert!(!PrepareCommit.may_follow(Empty));
    assert!(!CompleteCommit.may_follow(PrepareAbort));
    assert!(Dead.may_follow(CompleteAbort));
    assert!(!Ongoing.may_follow(PrepareCommit));
    for id in 0..8 {
        assert_eq!(TxnState::from_id(id).unwrap().id(), id);
    }
    assert_eq!(TxnState::from_id(8), None);
}

#[test]
fn a_failed_fence_keeps_the_bump_and_a_failed_completion_is_retried_on_a_tick() {
    let mut h = Harness::new();
    let producer = granted(h.init(None));
    h.add(producer, &[("a", 0)], false);
    h.now_ms += 10_001;
    let effects = h.coordinator.step(Input::Tick, h.now_ms);
    let [Effect::Append { write, .. }] = &effects[..] else {
        panic!("{effects:?}")
    };
    let failed = Input::Appended {
        write: *write,
        outcome: AppendOutcome::Failed(7),
    };
    assert!(h.coordinator.step(failed, h.now_ms).is_empty());
    let meta = h.coordinator.metadata(ID).unwrap();
    assert_eq!((meta.state, meta.producer_epoch), (TxnState::Ongoing, 1));
    assert_eq!(h.end(producer, true).0, PRODUCER_FENCED, "fenced in memory");
    // The next tick fences again without a second bump.
    let effects = h.run(Input::Tick);
    let [markers @ Effect::SendMarkers {
        producer_epoch: 1, ..
    }] = &effects[..]
    else {
        panic!("{effects:?}")
    };
    let Effect::SendMarkers { partitions, .. } = markers else {
        unreachable!()
    };
    let result = Input::MarkerResult {
        transactional_id: ID.into(),
        producer_id: producer.0,
        producer_epoch: 1,
        partition: partitions[0].clone(),
        outcome: MarkerOutcome::Written,
    };
    let effects = h.coordinator.step(result, h.now_ms);
    let [Effect::Append { write, .. }] = &effects[..] else {
        panic!("{effects:?}")
    };
    let failed = Input::Appended {
        write: *write,
        outcome: AppendOutcome::Failed(19),
    };
    assert!(h.coordinator.step(failed, h.now_ms).is_empty());
    assert_eq!(h.state(), TxnState::PrepareAbort);
    assert!(h.run(Input::Tick).is_empty(), "the backoff has not passed");
    h.now_ms += 100;
    assert!(h.run(Input::Tick).is_empty());
    assert_eq!(h.state(), TxnState::CompleteAbort);
}

#[test]
fn retriable_markers_are_resent_after_the_backoff_and_duplicates_are_ignored() {
    let mut h = Harness::new();
    let producer = granted(h.init(None));
    h.add(producer, &[("a", 0), ("b", 0)], false);
    let (_, effects) = h.end(producer, false);
    let result = |partition: &str, outcome| Input::MarkerResult {
        transactional_id: ID.into(),
        producer_id: producer.0,
        producer_epoch: producer.1,
        partition: TopicPartition::new(partition, 0),
        outcome,
    };
    assert!(h.run(result("a", MarkerOutcome::Written)).is_empty());
    assert!(h.run(result("a", MarkerOutcome::Written)).is_empty());
    assert!(h.run(result("b", MarkerOutcome::Retriable)).is_empty());
    assert_eq!(h.state(), TxnState::PrepareAbort);
    h.now_ms += 100;
    let resent = h.run(Input::Tick);
    assert!(
        matches!(&resent[..], [Effect::SendMarkers { partitions, result: TxnResult::Abort, .. }] if partitions == &[TopicPartition::new("b", 0)]),
        "{resent:?} after {effects:?}"
    );
    assert!(h.run(result("b", MarkerOutcome::Written)).is_empty());
    assert_eq!(h.state(), TxnState::CompleteAbort);
}
