//! Unit tests of reassignment in the controller: each step of Kafka's sequence on its own.

use std::collections::{BTreeMap, BTreeSet};

use crate::controller::*;
use crate::replication::{BrokerRegistration, TopicAssignment, Versioned};

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn lai(leader: BrokerId, leader_epoch: i32, isr: &[BrokerId]) -> LeaderAndIsr {
    LeaderAndIsr {
        leader,
        leader_epoch,
        isr: isr.to_vec(),
        controller_epoch: 3,
    }
}

fn assignment(
    replicas: &[BrokerId],
    adding: &[BrokerId],
    removing: &[BrokerId],
) -> TopicAssignment {
    let mut a = TopicAssignment::new(
        uuid::Uuid::from_u128(1),
        BTreeMap::from([(0, replicas.to_vec())]),
    );
    if !adding.is_empty() {
        a.adding_replicas.insert(0, adding.to_vec());
    }
    if !removing.is_empty() {
        a.removing_replicas.insert(0, removing.to_vec());
    }
    a
}

/// A controller elected over brokers 1–4 with partition t-0 as given (state at version 5).
fn elected(a: TopicAssignment, state: LeaderAndIsr) -> (Controller, Vec<Effect>) {
    let mut controller = Controller::new(1);
    let brokers = (1..=4)
        .map(|id| LiveBroker {
            registration: BrokerRegistration {
                id,
                endpoints: Vec::new(),
                rack: None,
            },
            broker_epoch: 100 + i64::from(id),
        })
        .collect();
    let info = TopicInfo {
        assignment: a,
        unclean_leader_election: false,
    };
    let effects = controller.step(Input::Elected(ClusterSnapshot {
        controller_epoch: 3,
        controller_epoch_version: 2,
        brokers,
        topics: BTreeMap::from([("t".to_string(), info)]),
        states: BTreeMap::from([(
            tp(),
            Versioned {
                value: state,
                version: 5,
            },
        )]),
        deleting: BTreeSet::new(),
        state_zxids: BTreeMap::new(),
    }));
    (controller, effects)
}

/// The one reassignment step among `effects`: (expected version, state, assignment).
fn step(effects: &[Effect]) -> (i32, LeaderAndIsr, TopicAssignment) {
    let steps: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::WriteStateAndAssignment {
                partition,
                expected_version,
                state,
                assignment,
                controller_epoch_version,
            } => {
                assert_eq!((partition, *controller_epoch_version), (&tp(), 2));
                Some((*expected_version, state.clone(), assignment.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(steps.len(), 1, "{effects:?}");
    steps.into_iter().next().unwrap()
}

fn no_step(effects: &[Effect]) {
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::WriteStateAndAssignment { .. })),
        "{effects:?}"
    );
}

fn receivers(effects: &[Effect]) -> (Vec<BrokerId>, Vec<BrokerId>) {
    let mut leader_and_isr = Vec::new();
    let mut deleted = Vec::new();
    for effect in effects {
        match effect {
            Effect::SendLeaderAndIsr { broker, .. } => leader_and_isr.push(*broker),
            Effect::SendStopReplica {
                broker,
                delete: true,
                partitions,
                ..
            } => {
                assert_eq!(partitions, &vec![tp()]);
                deleted.push(*broker);
            }
            _ => {}
        }
    }
    (leader_and_isr, deleted)
}

/// The ISR grows to `isr` (a leader's write, read after its notification).
fn isr_grows(controller: &mut Controller, state: LeaderAndIsr, version: i32) -> Vec<Effect> {
    let effects = controller.step(Input::IsrChangeNotification {
        partitions: vec![tp()],
    });
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::ReadStates { .. })));
    controller.step(Input::StatesRead {
        states: vec![(
            tp(),
            Some(Versioned {
                value: state,
                version,
            }),
        )],
    })
}

#[test]
fn kafkas_sequence_adds_waits_for_the_isr_moves_the_leader_and_deletes() {
    let (mut controller, _) = elected(assignment(&[1, 2, 3], &[], &[]), lai(1, 7, &[1, 2, 3]));
    let (outcomes, effects) = controller
        .alter_reassignments(vec![(tp(), Some(vec![2, 3, 4]))])
        .unwrap();
    assert_eq!(outcomes, vec![(tp(), ReassignOutcome::Started)]);
    // Step 1: every replica, the new one marked adding, the old one removing, epoch bumped.
    let (version, state, a) = step(&effects);
    assert_eq!(version, 5);
    assert_eq!(state, lai(1, 8, &[1, 2, 3]));
    assert_eq!(a, assignment(&[2, 3, 4, 1], &[4], &[1]));
    let effects = controller.step(Input::StateWritten {
        partition: tp(),
        version: 6,
    });
    let (mut started, deleted) = receivers(&effects);
    started.sort();
    assert_eq!((started, deleted), (vec![1, 2, 3, 4], vec![]));
    let listed = controller.reassignments(None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].adding.clone(), listed[0].removing.clone()),
        (vec![4], vec![1])
    );

    // Not yet: 4 is not in the ISR.
    no_step(&isr_grows(&mut controller, lai(1, 8, &[1, 2, 3]), 6));
    // Step 2 once it is: leader 1 is leaving, so 2 (first of the target in the ISR) leads.
    let effects = isr_grows(&mut controller, lai(1, 8, &[1, 2, 3, 4]), 7);
    let (version, state, a) = step(&effects);
    assert_eq!(version, 7);
    assert_eq!(state, lai(2, 9, &[2, 3, 4]));
    assert_eq!(a, assignment(&[2, 3, 4], &[], &[]));
    let effects = controller.step(Input::StateWritten {
        partition: tp(),
        version: 8,
    });
    let (mut told, deleted) = receivers(&effects);
    told.sort();
    assert_eq!((told, deleted), (vec![2, 3, 4], vec![1]));
    assert!(controller.reassignments(None).unwrap().is_empty());
    assert_eq!(
        controller.state(&tp()).unwrap().value,
        lai(2, 9, &[2, 3, 4])
    );
}

#[test]
fn cancel_reverts_to_the_original_replicas_and_deletes_the_added_ones() {
    let (mut controller, _) = elected(assignment(&[1, 2, 3], &[], &[]), lai(1, 7, &[1, 2, 3]));
    let (_, effects) = controller
        .alter_reassignments(vec![(tp(), Some(vec![4, 2, 3]))])
        .unwrap();
    step(&effects);
    controller.step(Input::StateWritten {
        partition: tp(),
        version: 6,
    });
    // 4 joined the ISR and leads after a failover of 1 (3 fell behind); the cancel moves it
    // back to the original replicas, which leads to 2.
    no_step(&isr_grows(&mut controller, lai(4, 9, &[4, 2]), 7));
    let (outcomes, effects) = controller.alter_reassignments(vec![(tp(), None)]).unwrap();
    assert_eq!(outcomes[0].1, ReassignOutcome::Started);
    let (version, state, a) = step(&effects);
    assert_eq!(version, 7);
    assert_eq!(state, lai(2, 10, &[2]));
    // As in Kafka, the original is every replica but those being added, in the full order.
    assert_eq!(a, assignment(&[2, 3, 1], &[], &[]));
    let effects = controller.step(Input::StateWritten {
        partition: tp(),
        version: 9,
    });
    assert_eq!(receivers(&effects).1, vec![4]);
    // Nothing left to cancel.
    let (outcomes, effects) = controller.alter_reassignments(vec![(tp(), None)]).unwrap();
    assert_eq!(outcomes[0].1, ReassignOutcome::NoReassignmentInProgress);
    no_step(&effects);
}

#[test]
fn a_new_controller_finishes_from_the_topic_znode() {
    // Interrupted after step 1, before the leader learned the replicas: bump the epoch first.
    let (mut controller, effects) =
        elected(assignment(&[2, 3, 4, 1], &[4], &[1]), lai(1, 8, &[1, 2, 3]));
    let (_, state, a) = step(&effects);
    assert_eq!(
        (state, a.clone()),
        (lai(1, 9, &[1, 2, 3]), assignment(&[2, 3, 4, 1], &[4], &[1]))
    );
    let effects = controller.step(Input::StateWritten {
        partition: tp(),
        version: 6,
    });
    no_step(&effects);
    let effects = isr_grows(&mut controller, lai(1, 9, &[1, 2, 3, 4]), 7);
    let (_, state, a) = step(&effects);
    assert_eq!(
        (state, a),
        (lai(2, 10, &[2, 3, 4]), assignment(&[2, 3, 4], &[], &[]))
    );

    // Interrupted with the ISR already complete: straight to the last step.
    let (_, effects) = elected(
        assignment(&[2, 3, 4, 1], &[4], &[1]),
        lai(3, 8, &[1, 2, 3, 4]),
    );
    let (_, state, a) = step(&effects);
    assert_eq!(
        (state, a),
        (
            lai(3, 9, &[3, 2, 4]).with_isr(&[2, 3, 4]),
            assignment(&[2, 3, 4], &[], &[])
        )
    );
}

trait WithIsr {
    fn with_isr(self, isr: &[BrokerId]) -> Self;
}

impl WithIsr for LeaderAndIsr {
    fn with_isr(mut self, isr: &[BrokerId]) -> Self {
        self.isr = isr.to_vec();
        self
    }
}

#[test]
fn a_conflicting_step_rereads_and_tries_again() {
    let (mut controller, _) = elected(assignment(&[1, 2, 3], &[], &[]), lai(1, 7, &[1, 2, 3]));
    let (_, effects) = controller
        .alter_reassignments(vec![(tp(), Some(vec![1, 2, 4]))])
        .unwrap();
    step(&effects);
    let effects = controller.step(Input::StateWriteConflict { partition: tp() });
    no_step(&effects);
    let effects = controller.step(Input::StatesRead {
        states: vec![(
            tp(),
            Some(Versioned {
                value: lai(1, 7, &[1, 2]),
                version: 6,
            }),
        )],
    });
    let (version, state, a) = step(&effects);
    assert_eq!(version, 6);
    assert_eq!(state, lai(1, 8, &[1, 2]));
    assert_eq!(a, assignment(&[1, 2, 4, 3], &[4], &[3]));
}

#[test]
fn requests_are_checked_and_only_the_controller_answers() {
    assert!(Controller::new(1).alter_reassignments(Vec::new()).is_none());
    assert!(Controller::new(1).reassignments(None).is_none());
    let (mut controller, _) = elected(assignment(&[1, 2, 3], &[], &[]), lai(1, 7, &[1, 2, 3]));
    let (outcomes, effects) = controller
        .alter_reassignments(vec![
            (TopicPartition::new("t", 9), Some(vec![1])),
            (TopicPartition::new("u", 0), Some(vec![1])),
            (tp(), Some(vec![])),
            (tp(), Some(vec![1, 1])),
            (tp(), Some(vec![1, 7])),
            (tp(), None),
            (tp(), Some(vec![1, 2, 3])),
        ])
        .unwrap();
    let codes: Vec<i16> = outcomes.iter().map(|(_, o)| o.code()).collect();
    assert_eq!(codes, vec![3, 3, 39, 39, 39, 85, 0]);
    assert!(outcomes[4].1.message().unwrap().contains("not alive"));
    no_step(&effects); // the same replicas: nothing to move
}

#[test]
fn the_znode_starts_moves_and_is_deleted_when_they_finish() {
    let (mut controller, _) = elected(assignment(&[1, 2, 3], &[], &[]), lai(1, 7, &[1, 2, 3]));
    let effects = controller.step(Input::ZnodeReassignment {
        partitions: vec![(tp(), vec![1, 2]), (TopicPartition::new("t", 5), vec![1])],
    });
    let (_, state, a) = step(&effects);
    assert_eq!(
        (state, a),
        (lai(1, 8, &[1, 2, 3]), assignment(&[1, 2, 3], &[], &[3]))
    );
    // The unknown partition is dropped from the znode at once.
    let rewrites: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::WriteZnodeReassignment { remaining, .. } => Some(remaining.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(rewrites, vec![vec![(tp(), vec![1, 2])]]);
    // Reading it again changes nothing.
    let effects = controller.step(Input::ZnodeReassignment {
        partitions: vec![(tp(), vec![1, 2])],
    });
    assert!(effects.is_empty(), "{effects:?}");
    // The target is in the ISR already: the last step follows the first.
    let effects = controller.step(Input::StateWritten {
        partition: tp(),
        version: 6,
    });
    let (_, state, a) = step(&effects);
    assert_eq!(
        (state, a),
        (lai(1, 9, &[1, 2]), assignment(&[1, 2], &[], &[]))
    );
    let effects = controller.step(Input::StateWritten {
        partition: tp(),
        version: 7,
    });
    assert_eq!(receivers(&effects).1, vec![3]);
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::WriteZnodeReassignment { remaining, .. } if remaining.is_empty()
    )));
}

#[test]
fn a_removed_replica_that_was_down_is_deleted_when_it_returns() {
    let (mut controller, _) = elected(assignment(&[1, 2, 3], &[], &[]), lai(2, 7, &[1, 2, 3]));
    let (_, effects) = controller
        .alter_reassignments(vec![(tp(), Some(vec![2, 3, 4]))])
        .unwrap();
    step(&effects);
    controller.step(Input::StateWritten {
        partition: tp(),
        version: 6,
    });
    // Broker 1 goes down; 4 joins the ISR; the last step cannot reach 1.
    let live = |ids: &[BrokerId], one_epoch: i64| -> Vec<LiveBroker> {
        ids.iter()
            .map(|&id| LiveBroker {
                registration: BrokerRegistration {
                    id,
                    endpoints: Vec::new(),
                    rack: None,
                },
                broker_epoch: if id == 1 {
                    one_epoch
                } else {
                    100 + i64::from(id)
                },
            })
            .collect()
    };
    controller.step(Input::BrokersChanged {
        brokers: live(&[2, 3, 4], 0),
    });
    // (The controller drops 1 from the ISR meanwhile.)
    controller.step(Input::StateWritten {
        partition: tp(),
        version: 7,
    });
    let effects = isr_grows(&mut controller, lai(2, 8, &[2, 3, 4]), 8);
    step(&effects);
    let effects = controller.step(Input::StateWritten {
        partition: tp(),
        version: 9,
    });
    assert_eq!(receivers(&effects).1, Vec::<BrokerId>::new());
    // It registers again: its copy is deleted.
    let effects = controller.step(Input::BrokersChanged {
        brokers: live(&[1, 2, 3, 4], 500),
    });
    assert_eq!(receivers(&effects).1, vec![1]);
}

/// Kafka's balance check leaves a partition being reassigned to the reassignment: its
/// preferred replica (the target's first) does not take over mid-move, and does once the
/// partition is no longer moving.
#[test]
fn the_balance_check_skips_a_partition_being_reassigned() {
    let balance = crate::config::LeaderBalanceSettings {
        enable: true,
        imbalance_percentage: 0,
        check_interval_ms: 1_000,
    };
    let elections = |effects: &[Effect]| {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::WriteState { .. }))
            .count()
    };
    // Moving 1 → 4: replicas [2, 3, 4, 1], broker 2 preferred, in the ISR, not leading.
    let (mut controller, effects) =
        elected(assignment(&[2, 3, 4, 1], &[4], &[1]), lai(1, 8, &[1, 2, 3]));
    let _ = step(&effects);
    controller.step(Input::StateWritten {
        partition: tp(),
        version: 6,
    });
    controller.set_leader_balance(balance);
    controller.step(Input::Tick { now_ms: 0 });
    let effects = controller.step(Input::Tick { now_ms: 1_000 });
    assert_eq!(elections(&effects), 0, "mid-move: {effects:?}");
    no_step(&effects);

    // The same partition not moving: the check elects broker 2.
    let (mut controller, _) = elected(assignment(&[2, 3, 1], &[], &[]), lai(1, 8, &[1, 2, 3]));
    controller.set_leader_balance(balance);
    controller.step(Input::Tick { now_ms: 0 });
    let effects = controller.step(Input::Tick { now_ms: 1_000 });
    assert_eq!(elections(&effects), 1, "not moving: {effects:?}");
}

/// A topic re-read (every topic znode write fires a watch) takes only the partitions the
/// controller did not have, as Kafka's partition modification handling does: an existing
/// partition keeps the controller's assignment, so a read racing with a reassignment step
/// cannot roll the move back; an added partition gets its state written.
#[test]
fn a_topic_reread_takes_added_partitions_and_keeps_existing_assignments() {
    let (mut controller, _) = elected(assignment(&[2, 3, 1], &[], &[]), lai(2, 8, &[1, 2, 3]));
    let mut read = assignment(&[4, 3], &[], &[]);
    read.partitions.insert(1, vec![3, 4]);
    let effects = controller.step(Input::TopicsChanged {
        topics: BTreeMap::from([(
            "t".to_string(),
            TopicInfo {
                assignment: read,
                unclean_leader_election: false,
            },
        )]),
    });
    let written: Vec<&TopicPartition> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::WriteState { partition, .. } => Some(partition),
            _ => None,
        })
        .collect();
    assert_eq!(written, [&TopicPartition::new("t", 1)], "{effects:?}");
    assert!(
        !effects.iter().any(|e| matches!(e,
            Effect::SendLeaderAndIsr { partitions, .. }
                if partitions.iter().any(|p| p.partition == tp()))),
        "t-0 keeps its assignment: {effects:?}"
    );
}
