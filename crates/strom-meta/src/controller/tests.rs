//! Unit tests of the controller: each Kafka rule on its own.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::replication::{TopicAssignment, NO_LEADER};

fn broker(id: BrokerId, epoch: i64) -> LiveBroker {
    LiveBroker {
        registration: BrokerRegistration {
            id,
            endpoints: Vec::new(),
            rack: None,
        },
        broker_epoch: epoch,
    }
}

fn topic(replicas: &[&[BrokerId]], unclean: bool) -> TopicInfo {
    TopicInfo {
        assignment: TopicAssignment::new(
            uuid::Uuid::from_u128(1),
            replicas
                .iter()
                .enumerate()
                .map(|(p, r)| (p as i32, r.to_vec()))
                .collect(),
        ),
        unclean_leader_election: unclean,
    }
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn lai(
    leader: BrokerId,
    leader_epoch: i32,
    isr: &[BrokerId],
    controller_epoch: i32,
) -> LeaderAndIsr {
    LeaderAndIsr {
        leader,
        leader_epoch,
        isr: isr.to_vec(),
        controller_epoch,
    }
}

/// A controller elected at epoch 3 over brokers `live` with topic `t` and the given states.
fn elected(
    live: &[BrokerId],
    info: TopicInfo,
    states: &[(i32, LeaderAndIsr, i32)],
) -> (Controller, Vec<Effect>) {
    let mut controller = Controller::new(live[0]);
    let effects = controller.step(Input::Elected(ClusterSnapshot {
        controller_epoch: 3,
        controller_epoch_version: 2,
        brokers: live
            .iter()
            .map(|&id| broker(id, 100 + i64::from(id)))
            .collect(),
        topics: BTreeMap::from([("t".to_string(), info)]),
        states: states
            .iter()
            .map(|(p, s, v)| {
                (
                    tp(*p),
                    Versioned {
                        value: s.clone(),
                        version: *v,
                    },
                )
            })
            .collect(),
        deleting: BTreeSet::new(),
        state_zxids: BTreeMap::new(),
    }));
    (controller, effects)
}

fn writes(effects: &[Effect]) -> Vec<(TopicPartition, Option<i32>, LeaderAndIsr)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::WriteState {
                partition,
                expected_version,
                state,
                controller_epoch_version,
            } => {
                assert_eq!(*controller_epoch_version, 2);
                Some((partition.clone(), *expected_version, state.clone()))
            }
            _ => None,
        })
        .collect()
}

fn leader_and_isr_receivers(effects: &[Effect]) -> Vec<BrokerId> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendLeaderAndIsr {
                broker,
                controller_epoch,
                ..
            } => {
                assert_eq!(*controller_epoch, 3);
                Some(*broker)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn new_topic_leader_is_the_first_live_replica() {
    let (mut c, effects) = elected(&[1, 2, 3], topic(&[], false), &[]);
    assert!(writes(&effects).is_empty());
    let effects = c.step(Input::TopicsChanged {
        topics: BTreeMap::from([("t".into(), topic(&[&[4, 2, 3], &[3, 1, 2]], false))]),
    });
    assert_eq!(
        writes(&effects),
        vec![
            (tp(0), None, lai(2, 0, &[2, 3], 3)),
            (tp(1), None, lai(3, 0, &[3, 1, 2], 3)),
        ]
    );
    let effects = c.step(Input::StateWritten {
        partition: tp(0),
        version: 0,
    });
    assert_eq!(leader_and_isr_receivers(&effects), vec![2, 3]);
    let update_metadata = effects
        .iter()
        .filter(|e| matches!(e, Effect::SendUpdateMetadata { .. }))
        .count();
    assert_eq!(update_metadata, 3, "every live broker");
}

#[test]
fn leader_failure_elects_the_first_live_isr_member_in_assignment_order() {
    let (mut c, effects) = elected(
        &[1, 2, 3],
        topic(&[&[1, 2, 3]], false),
        &[(0, lai(1, 4, &[1, 3, 2], 2), 9)],
    );
    assert!(writes(&effects).is_empty());
    assert_eq!(leader_and_isr_receivers(&effects), vec![1, 2, 3]);
    let effects = c.step(Input::BrokersChanged {
        brokers: vec![broker(2, 102), broker(3, 103)],
    });
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(9), lai(2, 5, &[3, 2], 3))]
    );
}

#[test]
fn follower_failure_leaves_the_isr_with_an_epoch_bump() {
    let (mut c, _) = elected(
        &[1, 2, 3],
        topic(&[&[1, 2, 3]], false),
        &[(0, lai(1, 4, &[1, 2, 3], 2), 9)],
    );
    let effects = c.step(Input::BrokersChanged {
        brokers: vec![broker(1, 101), broker(2, 102)],
    });
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(9), lai(1, 5, &[1, 2], 3))]
    );
}

#[test]
fn no_live_isr_member_means_offline_unless_unclean() {
    let state = lai(1, 4, &[1], 2);
    let (mut c, _) = elected(&[1, 2], topic(&[&[1, 2]], false), &[(0, state.clone(), 9)]);
    let effects = c.step(Input::BrokersChanged {
        brokers: vec![broker(2, 102)],
    });
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(9), lai(NO_LEADER, 5, &[1], 3))],
        "offline, the last ISR member kept"
    );
    c.step(Input::StateWritten {
        partition: tp(0),
        version: 10,
    });
    // Broker 1 returns: it leads again, cleanly.
    let effects = c.step(Input::BrokersChanged {
        brokers: vec![broker(1, 201), broker(2, 102)],
    });
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(10), lai(1, 6, &[1], 3))]
    );

    let (mut c, _) = elected(&[1, 2], topic(&[&[1, 2]], true), &[(0, state, 9)]);
    let effects = c.step(Input::BrokersChanged {
        brokers: vec![broker(2, 102)],
    });
    assert_eq!(writes(&effects), vec![(tp(0), Some(9), lai(2, 5, &[2], 3))]);
}

#[test]
fn a_conflict_rereads_and_decides_again() {
    let (mut c, _) = elected(
        &[1, 2, 3],
        topic(&[&[1, 2, 3]], false),
        &[(0, lai(1, 4, &[1, 2, 3], 2), 9)],
    );
    c.step(Input::BrokersChanged {
        brokers: vec![broker(2, 102), broker(3, 103)],
    });
    let effects = c.step(Input::StateWriteConflict { partition: tp(0) });
    assert_eq!(
        effects,
        vec![Effect::ReadStates {
            partitions: vec![tp(0)]
        }]
    );
    // The old leader had shrunk the ISR to {1, 3} meanwhile: 3 is elected, not 2.
    let effects = c.step(Input::StatesRead {
        states: vec![(
            tp(0),
            Some(Versioned {
                value: lai(1, 4, &[1, 3], 2),
                version: 10,
            }),
        )],
    });
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(10), lai(3, 5, &[3], 3))]
    );
}

#[test]
fn a_restarted_broker_gets_its_leader_and_isr() {
    let (mut c, _) = elected(
        &[1, 2, 3],
        topic(&[&[1, 2, 3]], false),
        &[(0, lai(1, 4, &[1, 2], 2), 9)],
    );
    // Broker 3 restarted between two reads: same id, new broker epoch.
    let effects = c.step(Input::BrokersChanged {
        brokers: vec![broker(1, 101), broker(2, 102), broker(3, 999)],
    });
    assert!(writes(&effects).is_empty());
    assert_eq!(leader_and_isr_receivers(&effects), vec![3]);
}

#[test]
fn isr_change_notification_rereads_and_updates_metadata() {
    let (mut c, _) = elected(
        &[1, 2],
        topic(&[&[1, 2]], false),
        &[(0, lai(1, 4, &[1], 2), 9)],
    );
    let effects = c.step(Input::IsrChangeNotification {
        partitions: vec![tp(0), TopicPartition::new("unknown", 0)],
    });
    assert_eq!(
        effects,
        vec![Effect::ReadStates {
            partitions: vec![tp(0)]
        }]
    );
    let effects = c.step(Input::StatesRead {
        states: vec![(
            tp(0),
            Some(Versioned {
                value: lai(1, 4, &[1, 2], 2),
                version: 10,
            }),
        )],
    });
    let sent: Vec<BrokerId> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendUpdateMetadata {
                broker, partitions, ..
            } => {
                assert_eq!(partitions[0].state.value.isr, vec![1, 2]);
                Some(*broker)
            }
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![1, 2]);
    assert_eq!(c.state(&tp(0)).unwrap().version, 10);
}

#[test]
fn deletion_waits_for_every_replica_even_a_down_one() {
    let (mut c, _) = elected(
        &[1, 2],
        topic(&[&[1, 2, 3]], false),
        &[(0, lai(1, 4, &[1, 2], 2), 9)],
    );
    let effects = c.step(Input::TopicDeletionRequested { topic: "t".into() });
    let stops: Vec<BrokerId> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendStopReplica { broker, delete, .. } if *delete => Some(*broker),
            _ => None,
        })
        .collect();
    assert_eq!(stops, vec![1, 2]);
    // Every live broker forgets the topic at once, before any replica confirmed.
    let forgotten: Vec<BrokerId> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendUpdateMetadata {
                broker, deleted, ..
            } if deleted == &vec![tp(0)] => Some(*broker),
            _ => None,
        })
        .collect();
    assert_eq!(forgotten, vec![1, 2]);
    c.step(Input::StopReplicaDone {
        broker: 1,
        topic: "t".into(),
    });
    assert!(c
        .step(Input::StopReplicaDone {
            broker: 2,
            topic: "t".into()
        })
        .is_empty());
    let effects = c.step(Input::BrokersChanged {
        brokers: vec![broker(1, 101), broker(2, 102), broker(3, 103)],
    });
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::SendStopReplica { broker: 3, .. })));
    assert!(
        writes(&effects).is_empty(),
        "no election for a topic being deleted"
    );
    assert!(
        effects.iter().all(|e| match e {
            Effect::SendUpdateMetadata { partitions, .. } =>
                partitions.iter().all(|p| p.partition.topic != "t"),
            _ => true,
        }),
        "a topic being deleted is not sent again: {effects:?}"
    );
    let effects = c.step(Input::StopReplicaDone {
        broker: 3,
        topic: "t".into(),
    });
    assert!(effects.contains(&Effect::DeleteTopicZnodes {
        topic: "t".into(),
        controller_epoch_version: 2
    }));
    assert!(effects.iter().any(
        |e| matches!(e, Effect::SendUpdateMetadata { deleted, .. } if deleted == &vec![tp(0)])
    ));
    assert!(c.state(&tp(0)).is_none());
    // A topics read answered before the znodes went away does not bring it back.
    let effects = c.step(Input::TopicsChanged {
        topics: BTreeMap::from([("t".into(), topic(&[&[1, 2, 3]], false))]),
    });
    assert!(writes(&effects).is_empty());
    assert!(c.state(&tp(0)).is_none());
}

#[test]
fn resigns_when_it_loses_controller() {
    let (mut c, _) = elected(
        &[1, 2],
        topic(&[&[1, 2]], false),
        &[(0, lai(1, 4, &[1], 2), 9)],
    );
    assert!(c
        .step(Input::ControllerChanged {
            controller: Some(1)
        })
        .is_empty());
    assert_eq!(
        c.step(Input::ControllerChanged {
            controller: Some(2)
        }),
        vec![Effect::Resigned]
    );
    assert!(!c.is_active());
    // Late answers to a resigned controller do nothing.
    assert!(c
        .step(Input::BrokersChanged {
            brokers: vec![broker(2, 102)]
        })
        .is_empty());
    let (mut c, _) = elected(&[1, 2], topic(&[&[1, 2]], false), &[]);
    assert_eq!(
        c.step(Input::ControllerEpochMismatch),
        vec![Effect::Resigned]
    );
}

#[test]
fn brokers_refuse_older_controller_and_broker_epochs() {
    let mut fence = ControllerEpochFence::default();
    assert_eq!(fence.accept(3, 10, Some(10)), Ok(()));
    assert_eq!(fence.accept(3, 10, Some(10)), Ok(()));
    let stale = fence.accept(2, 10, Some(10));
    assert_eq!(stale, Err(FenceRefusal::StaleControllerEpoch));
    assert_eq!(stale.unwrap_err().code(), Some(STALE_CONTROLLER_EPOCH));
    // Addressed to this broker's previous registration: refused.
    let previous = fence.accept(3, 9, Some(10));
    assert_eq!(previous.unwrap_err().code(), Some(STALE_BROKER_EPOCH));
    // Before it registered, or before it learned its new registration: not yet.
    assert_eq!(fence.accept(3, 10, None), Err(FenceRefusal::NotReady));
    assert_eq!(fence.accept(3, 11, Some(10)), Err(FenceRefusal::NotReady));
    assert_eq!(
        fence.latest(),
        3,
        "a refused request does not raise the fence"
    );
    assert_eq!(fence.accept(4, 10, Some(10)), Ok(()));
    assert_eq!(fence.latest(), 4);
}

#[test]
fn a_leader_registered_after_its_state_was_written_is_elected_anew() {
    // Broker 1 led epoch 4 (state written at zxid 50) and registered again at zxid 101
    // while no controller was active: it may have lost an unflushed tail of epoch 4.
    let mut c = Controller::new(2);
    let effects = c.step(Input::Elected(ClusterSnapshot {
        controller_epoch: 3,
        controller_epoch_version: 2,
        brokers: vec![broker(1, 101), broker(2, 40)],
        topics: BTreeMap::from([("t".to_string(), topic(&[&[1, 2]], false))]),
        states: BTreeMap::from([(
            tp(0),
            Versioned {
                value: lai(1, 4, &[1, 2], 2),
                version: 9,
            },
        )]),
        deleting: BTreeSet::new(),
        state_zxids: BTreeMap::from([(tp(0), 50)]),
    }));
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(9), lai(1, 5, &[1, 2], 3))]
    );
    assert!(
        leader_and_isr_receivers(&effects).is_empty(),
        "the stale epoch 4 is not sent"
    );
    let effects = c.step(Input::StateWritten {
        partition: tp(0),
        version: 10,
    });
    assert_eq!(leader_and_isr_receivers(&effects), vec![1, 2]);
}

#[test]
fn a_bounced_broker_never_gets_the_state_being_replaced() {
    let (mut c, _) = elected(
        &[1, 2, 3],
        topic(&[&[1, 2, 3]], false),
        &[(0, lai(1, 4, &[1, 2, 3], 2), 9)],
    );
    // Broker 1 restarted (new broker epoch): failure then startup in one step.
    let effects = c.step(Input::BrokersChanged {
        brokers: vec![broker(1, 500), broker(2, 102), broker(3, 103)],
    });
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(9), lai(2, 5, &[2, 3], 3))]
    );
    assert!(leader_and_isr_receivers(&effects).is_empty());
    let effects = c.step(Input::StateWritten {
        partition: tp(0),
        version: 10,
    });
    assert_eq!(leader_and_isr_receivers(&effects), vec![1, 2, 3]);
}

#[test]
fn enabling_unclean_election_elects_an_offline_partition() {
    let (mut c, _) = elected(
        &[2],
        topic(&[&[1, 2]], false),
        &[(0, lai(NO_LEADER, 5, &[1], 2), 9)],
    );
    let effects = c.step(Input::TopicConfigChanged {
        topic: "t".into(),
        unclean_leader_election: true,
    });
    assert_eq!(writes(&effects), vec![(tp(0), Some(9), lai(2, 6, &[2], 3))]);
}

#[test]
fn partitions_added_to_a_topic_are_initialised() {
    let (mut c, _) = elected(
        &[1, 2],
        topic(&[&[1, 2]], false),
        &[(0, lai(1, 4, &[1, 2], 2), 9)],
    );
    let effects = c.step(Input::TopicsChanged {
        topics: BTreeMap::from([("t".into(), topic(&[&[1, 2], &[2, 1]], false))]),
    });
    assert_eq!(writes(&effects), vec![(tp(1), None, lai(2, 0, &[2, 1], 3))]);
}

#[test]
fn elections_are_counted_once_written_and_offline_partitions_are_counted() {
    let (mut c, _) = elected(
        &[1, 2, 3],
        topic(&[&[1, 2, 3], &[2, 3, 1], &[3, 1]], false),
        &[
            (0, lai(1, 4, &[1, 2, 3], 2), 9),
            (1, lai(2, 4, &[2, 3], 2), 9),
            (2, lai(3, 4, &[3], 2), 9),
        ],
    );
    assert_eq!(c.stats(), ControllerStats::default());
    assert_eq!(c.offline_partitions(), 0);
    // Broker 3 dies: partition 2 (ISR {3}) goes offline, partition 1 keeps its leader (an ISR
    // shrink, no election), partition 0 keeps its leader.
    c.step(Input::BrokersChanged {
        brokers: vec![broker(1, 101), broker(2, 102)],
    });
    assert_eq!(c.offline_partitions(), 1, "leader 3 is gone");
    for p in 0..3 {
        c.step(Input::StateWritten {
            partition: tp(p),
            version: 10,
        });
    }
    assert_eq!(c.state(&tp(2)).unwrap().value.leader, NO_LEADER);
    assert_eq!(c.offline_partitions(), 1, "no ISR member alive");
    assert_eq!(
        c.stats().leader_elections,
        0,
        "shrinks and offline are not elections"
    );
    // Broker 1 dies too: partition 0 elects 2, its write conflicts once and is decided again.
    let effects = c.step(Input::BrokersChanged {
        brokers: vec![broker(2, 102)],
    });
    assert_eq!(writes(&effects)[0].2.leader, 2);
    c.step(Input::StateWriteConflict { partition: tp(0) });
    assert_eq!(
        c.stats().leader_elections,
        0,
        "a conflicted write elected nobody"
    );
    c.step(Input::StatesRead {
        states: vec![(
            tp(0),
            Some(Versioned {
                value: lai(1, 4, &[1, 2, 3], 2),
                version: 10,
            }),
        )],
    });
    c.step(Input::StateWritten {
        partition: tp(0),
        version: 11,
    });
    assert_eq!(c.state(&tp(0)).unwrap().value.leader, 2);
    assert_eq!(c.stats().leader_elections, 1);
    assert_eq!(c.stats().unclean_leader_elections, 0);
    // Unclean election enabled: partition 2 (ISR {3}, 3 dead) elects broker 1 once it returns.
    c.step(Input::TopicConfigChanged {
        topic: "t".into(),
        unclean_leader_election: true,
    });
    c.step(Input::BrokersChanged {
        brokers: vec![broker(1, 201), broker(2, 102)],
    });
    for p in 0..3 {
        c.step(Input::StateWritten {
            partition: tp(p),
            version: 12,
        });
    }
    assert_eq!(c.state(&tp(2)).unwrap().value.leader, 1);
    assert_eq!(c.offline_partitions(), 0);
    assert_eq!(
        c.stats(),
        ControllerStats {
            leader_elections: 2,
            unclean_leader_elections: 1
        }
    );
    // The counts survive a resignation; the offline count is the active controller's only.
    c.step(Input::SessionExpired);
    assert_eq!(c.stats().leader_elections, 2);
    assert_eq!(c.offline_partitions(), 0);
}

#[test]
fn preferred_election_moves_leadership_to_the_first_replica_with_an_epoch_bump() {
    // p0: 2 leads, preferred 1 in the ISR; p1: preferred 1 leads; p2: preferred 3 outside
    // the ISR; p3: preferred 4 not alive.
    let (mut c, _) = elected(
        &[1, 2, 3],
        topic(&[&[1, 2, 3], &[1, 2, 3], &[3, 1, 2], &[4, 1, 2]], false),
        &[
            (0, lai(2, 5, &[2, 3, 1], 2), 9),
            (1, lai(1, 1, &[1, 2, 3], 2), 4),
            (2, lai(1, 1, &[1, 2], 2), 4),
            (3, lai(1, 1, &[1, 2], 2), 4),
        ],
    );
    let mut asked: Vec<TopicPartition> = (0..4).map(tp).collect();
    asked.push(TopicPartition::new("nope", 0));
    let (outcomes, effects) = c
        .elect_leaders(Some(asked), ElectionType::Preferred)
        .expect("active");
    let codes: Vec<i16> = outcomes.iter().map(|(_, o)| o.code()).collect();
    assert_eq!(codes, vec![0, 84, 80, 80, 3]);
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(9), lai(1, 6, &[2, 3, 1], 3))]
    );
    let effects = c.step(Input::StateWritten {
        partition: tp(0),
        version: 10,
    });
    assert_eq!(leader_and_isr_receivers(&effects), vec![1, 2, 3]);
    let (outcomes, effects) = c
        .elect_leaders(Some(vec![tp(0)]), ElectionType::Preferred)
        .expect("active");
    assert_eq!(outcomes, vec![(tp(0), ElectionOutcome::NotNeeded)]);
    assert!(writes(&effects).is_empty());
    // Every partition when none is named.
    let (outcomes, _) = c
        .elect_leaders(None, ElectionType::Preferred)
        .expect("active");
    assert_eq!(outcomes.len(), 4);
    assert!(Controller::new(9)
        .elect_leaders(None, ElectionType::Preferred)
        .is_none());
}

#[test]
fn preferred_election_waits_for_a_write_in_flight() {
    let (mut c, _) = elected(
        &[1, 2, 3],
        topic(&[&[1, 2, 3]], false),
        &[(0, lai(2, 5, &[2, 1, 3], 2), 9)],
    );
    // Broker 3 leaves: the ISR shrink is being written when the election is asked for.
    let effects = c.step(Input::BrokersChanged {
        brokers: vec![broker(1, 101), broker(2, 102)],
    });
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(9), lai(2, 6, &[2, 1], 3))]
    );
    let (outcomes, effects) = c
        .elect_leaders(Some(vec![tp(0)]), ElectionType::Preferred)
        .expect("active");
    assert_eq!(outcomes, vec![(tp(0), ElectionOutcome::Started)]);
    assert!(
        writes(&effects).is_empty(),
        "one write per partition at a time"
    );
    let effects = c.step(Input::StateWritten {
        partition: tp(0),
        version: 10,
    });
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(10), lai(1, 7, &[2, 1], 3))]
    );
}

#[test]
fn unclean_election_elects_a_live_replica_outside_the_isr() {
    let (mut c, _) = elected(
        &[2, 3],
        topic(&[&[1, 2, 3], &[2, 3]], false),
        &[
            (0, lai(NO_LEADER, 5, &[1], 2), 9),
            (1, lai(2, 1, &[2, 3], 2), 4),
        ],
    );
    let (outcomes, effects) = c
        .elect_leaders(None, ElectionType::Unclean)
        .expect("active");
    let codes: Vec<i16> = outcomes.iter().map(|(_, o)| o.code()).collect();
    assert_eq!(codes, vec![0, 84]);
    assert_eq!(writes(&effects), vec![(tp(0), Some(9), lai(2, 6, &[2], 3))]);
}

#[path = "shutdown_tests.rs"]
mod shutdown_tests;

#[test]
fn a_new_topics_states_written_together_reach_each_broker_in_one_request() {
    let (mut c, _) = elected(&[1, 2, 3], topic(&[], false), &[]);
    let replicas: Vec<&[BrokerId]> = (0..1_000).map(|_| &[1, 2, 3][..]).collect();
    let effects = c.step(Input::TopicsChanged {
        topics: BTreeMap::from([("t".into(), topic(&replicas, false))]),
    });
    let written: Vec<(TopicPartition, i32)> = writes(&effects)
        .into_iter()
        .map(|(partition, expected, _)| {
            assert_eq!(expected, None, "a new partition's state is created");
            (partition, 0)
        })
        .collect();
    assert_eq!(written.len(), 1_000);
    let effects = c.step(Input::StatesWritten { written });
    assert_eq!(leader_and_isr_receivers(&effects), vec![1, 2, 3]);
    for effect in &effects {
        match effect {
            Effect::SendLeaderAndIsr { partitions, .. }
            | Effect::SendUpdateMetadata { partitions, .. } => {
                assert_eq!(partitions.len(), 1_000, "every partition in one request");
            }
            other => panic!("unexpected effect {other:?}"),
        }
    }
    let update_metadata = effects
        .iter()
        .filter(|e| matches!(e, Effect::SendUpdateMetadata { .. }))
        .count();
    assert_eq!(update_metadata, 3);
    assert!(
        (0..1_000).all(|p| c.state(&tp(p)).is_some()),
        "every state is the controller's now"
    );
}
