//! Unit tests of controlled shutdown and the leader balance (`shutdown.rs`, `balance.rs`).

use super::*;
use crate::config::LeaderBalanceSettings;

fn answers(effects: &[Effect]) -> Vec<(BrokerId, i16, Vec<TopicPartition>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ControlledShutdownAnswer {
                broker,
                error_code,
                remaining,
            } => Some((*broker, *error_code, remaining.clone())),
            _ => None,
        })
        .collect()
}

fn stop_replicas(effects: &[Effect]) -> Vec<(BrokerId, Vec<TopicPartition>, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendStopReplica {
                broker,
                partitions,
                delete,
                ..
            } => Some((*broker, partitions.clone(), *delete)),
            _ => None,
        })
        .collect()
}

/// Acknowledges every write in `effects` (versions + 1) and returns what that gives.
fn written(controller: &mut Controller, effects: &[Effect]) -> Vec<Effect> {
    let mut out = Vec::new();
    for (partition, expected, _) in writes(effects) {
        out.extend(controller.step(Input::StateWritten {
            partition,
            version: expected.unwrap_or(-1) + 1,
        }));
    }
    out
}

#[test]
fn controlled_shutdown_moves_leadership_and_leaves_the_isrs_then_answers() {
    // p0 led by 1 (RF 3), p1 followed by 1, p2 RF 1 on broker 1.
    let info = topic(&[&[1, 2, 3], &[2, 1, 3], &[1]], false);
    let states = [
        (0, lai(1, 4, &[1, 2, 3], 3), 7),
        (1, lai(2, 2, &[2, 1, 3], 3), 5),
        (2, lai(1, 0, &[1], 3), 1),
    ];
    let (mut controller, _) = elected(&[1, 2, 3], info, &states);
    let effects = controller.step(Input::ControlledShutdown {
        broker: 1,
        broker_epoch: 101,
    });
    assert_eq!(
        writes(&effects),
        vec![
            (tp(0), Some(7), lai(2, 5, &[2, 3], 3)),
            (tp(1), Some(5), lai(2, 3, &[2, 3], 3)),
        ],
        "the RF 1 partition stays"
    );
    assert!(
        answers(&effects).is_empty(),
        "answered before the writes settled"
    );
    let effects = written(&mut controller, &effects);
    let mut receivers = leader_and_isr_receivers(&effects);
    receivers.sort();
    receivers.dedup();
    assert_eq!(
        receivers,
        vec![2, 3],
        "the stopping broker gets no LeaderAndIsr"
    );
    assert_eq!(answers(&effects), vec![(1, 0, vec![])]);
    assert_eq!(
        stop_replicas(&effects),
        vec![
            (1, vec![tp(0)], false),
            (1, vec![tp(1)], false),
            (1, vec![tp(0), tp(1)], false)
        ],
        "it stops serving each partition once it moved (instead of a LeaderAndIsr), and \
         every replicated partition it does not lead with the answer, keeping its logs"
    );
    // While it shuts down, a preferred election does not bring leadership back to it.
    let (outcomes, _) = controller
        .elect_leaders(Some(vec![tp(0)]), ElectionType::Preferred)
        .unwrap();
    assert_eq!(
        outcomes,
        vec![(tp(0), ElectionOutcome::PreferredNotAvailable)]
    );
}

#[test]
fn a_partition_with_no_other_isr_member_remains() {
    let info = topic(&[&[1, 2]], false);
    let (mut controller, _) = elected(&[1, 2], info, &[(0, lai(1, 1, &[1], 3), 3)]);
    let effects = controller.step(Input::ControlledShutdown {
        broker: 1,
        broker_epoch: 101,
    });
    assert!(writes(&effects).is_empty());
    assert_eq!(answers(&effects), vec![(1, 0, vec![tp(0)])]);
}

#[test]
fn a_stale_or_unknown_broker_is_refused() {
    let info = topic(&[&[1, 2]], false);
    let (mut controller, _) = elected(&[1, 2], info, &[(0, lai(1, 1, &[1, 2], 3), 3)]);
    let stale = controller.step(Input::ControlledShutdown {
        broker: 1,
        broker_epoch: 100,
    });
    assert_eq!(answers(&stale), vec![(1, STALE_BROKER_EPOCH, vec![])]);
    let unknown = controller.step(Input::ControlledShutdown {
        broker: 9,
        broker_epoch: -1,
    });
    assert_eq!(answers(&unknown), vec![(9, 8, vec![])]);
    assert!(writes(&stale).is_empty() && writes(&unknown).is_empty());
}

#[test]
fn a_conflicting_write_delays_the_answer_until_decided_again() {
    let info = topic(&[&[1, 2]], false);
    let (mut controller, _) = elected(&[1, 2], info, &[(0, lai(1, 1, &[1, 2], 3), 3)]);
    let effects = controller.step(Input::ControlledShutdown {
        broker: 1,
        broker_epoch: 101,
    });
    assert_eq!(writes(&effects).len(), 1);
    let effects = controller.step(Input::StateWriteConflict { partition: tp(0) });
    assert!(answers(&effects).is_empty());
    // The leader had shrunk the ISR meanwhile: broker 1 must stay leader.
    let effects = controller.step(Input::StatesRead {
        states: vec![(
            tp(0),
            Some(Versioned {
                value: lai(1, 1, &[1], 3),
                version: 4,
            }),
        )],
    });
    assert!(writes(&effects).is_empty());
    assert_eq!(answers(&effects), vec![(1, 0, vec![tp(0)])]);
}

#[test]
fn the_balance_check_elects_preferred_leaders_above_the_percentage() {
    // Broker 1 prefers p0 and p1 but leads neither; broker 2 prefers p2 and leads it.
    let info = topic(&[&[1, 2], &[1, 2], &[2, 1]], false);
    let states = [
        (0, lai(2, 1, &[2, 1], 3), 1),
        (1, lai(2, 1, &[2], 3), 1),
        (2, lai(2, 1, &[2, 1], 3), 1),
    ];
    let (mut controller, _) = elected(&[1, 2], info, &states);
    controller.set_leader_balance(LeaderBalanceSettings {
        enable: true,
        imbalance_percentage: 10,
        check_interval_ms: 1_000,
    });
    assert_eq!(
        controller.preferred_leadership(),
        BTreeMap::from([(1, (2, 2)), (2, (1, 0))])
    );
    assert!(writes(&controller.step(Input::Tick { now_ms: 5_000 })).is_empty());
    assert!(writes(&controller.step(Input::Tick { now_ms: 5_999 })).is_empty());
    let effects = controller.step(Input::Tick { now_ms: 6_000 });
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(1), lai(1, 2, &[2, 1], 3))],
        "p1's preferred replica is outside the ISR"
    );
    written(&mut controller, &effects);
    // 1 of 2 is 50 %: still above 10 %, but nothing more can move.
    assert!(writes(&controller.step(Input::Tick { now_ms: 7_000 })).is_empty());
}

#[test]
fn the_balance_check_leaves_a_broker_at_or_below_the_percentage() {
    let info = topic(&[&[1, 2], &[1, 2]], false);
    let states = [(0, lai(2, 1, &[2, 1], 3), 1), (1, lai(1, 1, &[1, 2], 3), 1)];
    let (mut controller, _) = elected(&[1, 2], info, &states);
    let mut settings = LeaderBalanceSettings {
        enable: true,
        imbalance_percentage: 50,
        check_interval_ms: 10,
    };
    controller.set_leader_balance(settings);
    controller.step(Input::Tick { now_ms: 0 });
    assert!(writes(&controller.step(Input::Tick { now_ms: 10 })).is_empty());
    settings.imbalance_percentage = 49;
    controller.set_leader_balance(settings);
    assert_eq!(
        writes(&controller.step(Input::Tick { now_ms: 20 })).len(),
        1
    );
    settings.enable = false;
    controller.set_leader_balance(settings);
}

#[test]
fn the_preferred_replica_election_znode_elects_and_is_deleted() {
    let info = topic(&[&[1, 2], &[2, 1]], false);
    let states = [(0, lai(2, 1, &[2, 1], 3), 1), (1, lai(2, 1, &[2, 1], 3), 1)];
    let (mut controller, _) = elected(&[1, 2], info, &states);
    let effects = controller.step(Input::PreferredReplicaElection {
        partitions: vec![tp(0), tp(1), TopicPartition::new("gone", 0)],
    });
    assert_eq!(
        writes(&effects),
        vec![(tp(0), Some(1), lai(1, 2, &[2, 1], 3))]
    );
    assert_eq!(
        effects.last(),
        Some(&Effect::DeletePreferredReplicaElection {
            controller_epoch_version: 2
        })
    );
}
