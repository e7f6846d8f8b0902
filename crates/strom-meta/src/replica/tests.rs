//! Unit tests of the replica state machine: each Kafka rule on its own.

use super::*;

const LAG_MS: u64 = 30_000;

fn settings(min_insync_replicas: usize) -> ReplicaSettings {
    ReplicaSettings {
        min_insync_replicas,
        replica_lag_time_max_ms: LAG_MS,
    }
}

fn state(leader: BrokerId, leader_epoch: i32, isr: &[BrokerId]) -> LeaderAndIsr {
    LeaderAndIsr {
        leader,
        leader_epoch,
        isr: isr.to_vec(),
        controller_epoch: 1,
    }
}

/// Broker 1 leading `p-0` at epoch 5 with ISR {1,2,3}, znode version 7, an empty log.
fn leader(min_insync_replicas: usize) -> PartitionReplica {
    let mut replica = PartitionReplica::new(
        TopicPartition::new("p", 0),
        1,
        settings(min_insync_replicas),
    );
    let effects = replica.step(
        Input::BecomeLeader {
            state: Versioned {
                value: state(1, 5, &[1, 2, 3]),
                version: 7,
            },
            replicas: vec![1, 2, 3],
            log_end_offset: 0,
            durable_end_offset: 0,
            high_watermark: 0,
        },
        1_000,
    );
    assert!(effects.is_empty(), "{effects:?}");
    replica
}

fn fetch(replica: &mut PartitionReplica, id: BrokerId, offset: i64, now_ms: u64) -> Vec<Effect> {
    replica.step(
        Input::FollowerFetch {
            replica_id: id,
            fetch_offset: offset,
            current_leader_epoch: 5,
        },
        now_ms,
    )
}

fn append(replica: &mut PartitionReplica, id: ProduceId, end: i64, acks: Acks) -> Vec<Effect> {
    replica.check_produce(acks).expect("admitted");
    replica.step(
        Input::Appended {
            produce_id: id,
            end_offset: end,
            acks,
        },
        1_000,
    )
}

fn acked(effects: &[Effect]) -> Vec<(ProduceId, Result<(), ReplicaError>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Produced { produce_id, result } => Some((*produce_id, *result)),
            _ => None,
        })
        .collect()
}

#[test]
fn acks_all_waits_for_every_isr_member_durable() {
    let mut r = leader(2);
    assert!(acked(&append(&mut r, 1, 10, Acks::All)).is_empty());
    assert!(acked(&append(&mut r, 2, 20, Acks::All)).is_empty());
    assert!(acked(&r.step(Input::LocalDurable { end_offset: 20 }, 1_001)).is_empty());
    assert!(acked(&fetch(&mut r, 2, 20, 1_002)).is_empty());
    assert_eq!(r.high_watermark(), 0, "follower 3 has nothing yet");
    let effects = fetch(&mut r, 3, 10, 1_003);
    assert_eq!(acked(&effects), vec![(1, Ok(()))]);
    assert!(effects.contains(&Effect::HighWatermark { offset: 10 }));
    assert!(effects.contains(&Effect::FetchAccepted {
        replica_id: 3,
        high_watermark: 10
    }));
    assert_eq!(acked(&fetch(&mut r, 3, 20, 1_004)), vec![(2, Ok(()))]);
    assert_eq!(r.high_watermark(), 20);
}

#[test]
fn the_leader_counts_only_its_durable_end() {
    let mut r = leader(1);
    append(&mut r, 1, 10, Acks::All);
    fetch(&mut r, 2, 10, 1_001);
    fetch(&mut r, 3, 10, 1_001);
    assert_eq!(r.high_watermark(), 0);
    let effects = r.step(Input::LocalDurable { end_offset: 10 }, 1_002);
    assert_eq!(acked(&effects), vec![(1, Ok(()))]);
}

#[test]
fn acks_one_waits_for_the_local_disk_only() {
    let mut r = leader(3);
    assert!(acked(&append(&mut r, 1, 4, Acks::Leader)).is_empty());
    let effects = r.step(Input::LocalDurable { end_offset: 4 }, 1_001);
    assert_eq!(acked(&effects), vec![(1, Ok(()))]);
    assert!(acked(&append(&mut r, 2, 5, Acks::None)).is_empty());
    assert!(acked(&r.step(Input::LocalDurable { end_offset: 5 }, 1_002)).is_empty());
}

#[test]
fn not_enough_replicas_before_append() {
    let mut r = PartitionReplica::new(TopicPartition::new("p", 0), 1, settings(2));
    assert_eq!(
        r.check_produce(Acks::All),
        Err(ReplicaError::NotLeaderOrFollower)
    );
    r.step(
        Input::BecomeLeader {
            state: Versioned {
                value: state(1, 0, &[1]),
                version: 0,
            },
            replicas: vec![1, 2],
            log_end_offset: 0,
            durable_end_offset: 0,
            high_watermark: 0,
        },
        0,
    );
    assert_eq!(
        r.check_produce(Acks::All),
        Err(ReplicaError::NotEnoughReplicas)
    );
    assert_eq!(ReplicaError::NotEnoughReplicas.code(), 19);
    assert_eq!(r.check_produce(Acks::Leader), Ok(()));
}

#[test]
fn shrink_after_lag_then_after_append_error() {
    let mut r = leader(3);
    append(&mut r, 1, 10, Acks::All);
    r.step(Input::LocalDurable { end_offset: 10 }, 1_001);
    fetch(&mut r, 2, 10, 1_002);
    // Follower 3 never fetches: at exactly the lag it stays, one ms later it goes.
    assert!(r.step(Input::Tick, 1_000 + LAG_MS).is_empty());
    let effects = r.step(Input::Tick, 1_001 + LAG_MS);
    assert_eq!(
        effects,
        vec![Effect::WriteIsr {
            expected_version: 7,
            state: state(1, 5, &[1, 2]),
        }]
    );
    // Until the write succeeds, the ISR the high watermark waits for still has 3.
    assert_eq!(r.high_watermark(), 0);
    assert!(
        r.step(Input::Tick, 1_002 + LAG_MS).is_empty(),
        "one write at a time"
    );
    let effects = r.step(Input::IsrWritten { version: 8 }, 1_003 + LAG_MS);
    assert_eq!(r.isr(), (&[1, 2][..], 8));
    assert_eq!(
        acked(&effects),
        vec![(1, Err(ReplicaError::NotEnoughReplicasAfterAppend))]
    );
    assert_eq!(ReplicaError::NotEnoughReplicasAfterAppend.code(), 20);
    assert_eq!(
        r.check_produce(Acks::All),
        Err(ReplicaError::NotEnoughReplicas)
    );
}

#[test]
fn a_slow_but_progressing_follower_stays() {
    let mut r = leader(2);
    r.step(Input::LocalDurable { end_offset: 0 }, 1_000);
    // Follower 2 fetches the leader's end each time: always caught up.
    // Follower 3 lags one append behind each time but reaches the end the leader had at its
    // previous fetch, so it counts as caught up as of that previous fetch (Kafka's rule).
    for step in 1..=10u64 {
        let now = 1_000 + step * 20_000;
        append(&mut r, step, step as i64 * 10, Acks::None);
        fetch(&mut r, 2, step as i64 * 10, now);
        fetch(&mut r, 3, (step as i64 - 1) * 10, now);
        assert!(r.step(Input::Tick, now + 1).is_empty(), "step {step}");
    }
    // Stop fetching: 3 leaves once the lag passes its last caught-up time.
    let last = 1_000 + 10 * 20_000;
    let effects = r.step(Input::Tick, last + LAG_MS + 1);
    assert!(matches!(&effects[..], [Effect::WriteIsr { state, .. }] if state.isr == [1]));
}

#[test]
fn expand_when_reaching_the_high_watermark_in_this_epoch() {
    let mut r = PartitionReplica::new(TopicPartition::new("p", 0), 1, settings(1));
    r.step(
        Input::BecomeLeader {
            state: Versioned {
                value: state(1, 2, &[1]),
                version: 3,
            },
            replicas: vec![1, 2],
            log_end_offset: 50,
            durable_end_offset: 50,
            high_watermark: 40,
        },
        0,
    );
    assert_eq!(
        r.high_watermark(),
        50,
        "a lone leader's HW is its durable end"
    );
    // Reaching the old high watermark is not enough: 50 is where this epoch starts.
    let effects = r.step(
        Input::FollowerFetch {
            replica_id: 2,
            fetch_offset: 45,
            current_leader_epoch: 2,
        },
        1,
    );
    assert!(!effects.iter().any(|e| matches!(e, Effect::WriteIsr { .. })));
    let effects = r.step(
        Input::FollowerFetch {
            replica_id: 2,
            fetch_offset: 50,
            current_leader_epoch: 2,
        },
        2,
    );
    assert!(effects.contains(&Effect::WriteIsr {
        expected_version: 3,
        state: state(1, 2, &[1, 2]),
    }));
    // While the expansion is in flight the new member already holds the HW back.
    append(&mut r, 9, 60, Acks::All);
    assert!(acked(&r.step(Input::LocalDurable { end_offset: 60 }, 3)).is_empty());
    r.step(Input::IsrWritten { version: 4 }, 4);
    assert_eq!(r.isr(), (&[1, 2][..], 4));
}

#[test]
fn conflict_reload_and_fence() {
    let mut r = leader(1);
    append(&mut r, 1, 10, Acks::All);
    r.step(Input::LocalDurable { end_offset: 10 }, 1_001);
    let effects = r.step(Input::Tick, 1_001 + LAG_MS);
    assert!(matches!(effects[..], [Effect::WriteIsr { .. }]));
    assert_eq!(
        r.step(Input::IsrWriteConflict, 1_002 + LAG_MS),
        vec![Effect::ReloadState]
    );
    // The controller elected broker 2 at epoch 6 meanwhile.
    let effects = r.step(
        Input::StateReloaded {
            state: Versioned {
                value: state(2, 6, &[2, 3]),
                version: 8,
            },
        },
        1_003 + LAG_MS,
    );
    assert_eq!(
        effects,
        vec![
            Effect::Produced {
                produce_id: 1,
                result: Err(ReplicaError::NotLeaderOrFollower)
            },
            Effect::Fenced
        ]
    );
    assert_eq!(r.role(), &Role::Fenced);
    // A fenced leader acknowledges nothing: followers' fetches and new produces are refused.
    assert_eq!(
        r.check_produce(Acks::All),
        Err(ReplicaError::NotLeaderOrFollower)
    );
    assert!(!fetch(&mut r, 2, 10, 1_004 + LAG_MS)
        .iter()
        .any(|e| matches!(e, Effect::Produced { .. } | Effect::HighWatermark { .. })));
}

#[test]
fn reload_with_the_same_epoch_adopts_our_lost_write() {
    let mut r = leader(1);
    let _ = r.step(Input::Tick, 1_001 + LAG_MS);
    r.step(Input::IsrWriteConflict, 1_002 + LAG_MS);
    r.step(
        Input::StateReloaded {
            state: Versioned {
                value: state(1, 5, &[1]),
                version: 8,
            },
        },
        1_003 + LAG_MS,
    );
    assert_eq!(r.role(), &Role::Leader);
    assert_eq!(r.isr(), (&[1][..], 8));
}

#[test]
fn fetch_validation_answers_as_kafka() {
    let mut r = leader(1);
    let answer = |r: &mut PartitionReplica, id, offset, epoch| {
        r.step(
            Input::FollowerFetch {
                replica_id: id,
                fetch_offset: offset,
                current_leader_epoch: epoch,
            },
            1_001,
        )
    };
    let refused = |id, error| {
        vec![Effect::FetchRefused {
            replica_id: id,
            error,
        }]
    };
    assert_eq!(
        answer(&mut r, 2, 0, 4),
        refused(2, ReplicaError::FencedLeaderEpoch)
    );
    assert_eq!(
        answer(&mut r, 2, 0, 6),
        refused(2, ReplicaError::UnknownLeaderEpoch)
    );
    assert_eq!(
        answer(&mut r, 9, 0, 5),
        refused(9, ReplicaError::NotLeaderOrFollower)
    );
    assert_eq!(
        answer(&mut r, 2, 1, 5),
        refused(2, ReplicaError::OffsetOutOfRange)
    );
    assert_eq!(
        answer(&mut r, 2, 0, -1),
        vec![Effect::FetchAccepted {
            replica_id: 2,
            high_watermark: 0
        }]
    );
    let mut follower = PartitionReplica::new(TopicPartition::new("p", 0), 2, settings(1));
    follower.step(
        Input::BecomeFollower {
            state: state(1, 5, &[1, 2]),
            replicas: vec![1, 2],
        },
        0,
    );
    assert_eq!(
        answer(&mut follower, 3, 0, 5),
        refused(3, ReplicaError::NotLeaderOrFollower)
    );
    assert_eq!(ReplicaError::FencedLeaderEpoch.code(), 74);
    assert_eq!(ReplicaError::UnknownLeaderEpoch.code(), 75);
}

#[test]
fn stale_and_malformed_leader_and_isr_are_ignored() {
    let mut r = leader(1);
    let old = r.step(
        Input::BecomeLeader {
            state: Versioned {
                value: state(1, 5, &[1]),
                version: 9,
            },
            replicas: vec![1, 2, 3],
            log_end_offset: 0,
            durable_end_offset: 0,
            high_watermark: 0,
        },
        1_001,
    );
    assert!(old.is_empty());
    assert_eq!(r.isr(), (&[1, 2, 3][..], 7), "same epoch: ignored");
    r.step(
        Input::BecomeLeader {
            state: Versioned {
                value: state(1, 6, &[2, 3]),
                version: 9,
            },
            replicas: vec![1, 2, 3],
            log_end_offset: 0,
            durable_end_offset: 0,
            high_watermark: 0,
        },
        1_001,
    );
    assert_eq!(r.leader_epoch(), 5, "leader outside its ISR: ignored");
}

#[test]
fn becoming_a_follower_fails_what_waits() {
    let mut r = leader(1);
    append(&mut r, 1, 3, Acks::All);
    let effects = r.step(
        Input::BecomeFollower {
            state: state(2, 6, &[2, 3]),
            replicas: vec![1, 2, 3],
        },
        1_001,
    );
    assert_eq!(
        acked(&effects),
        vec![(1, Err(ReplicaError::NotLeaderOrFollower))]
    );
    assert_eq!(r.role(), &Role::Follower { leader: 2 });
}

#[test]
fn a_new_leadership_takes_the_log_offsets_as_they_are_now() {
    // Broker 1 led with 20 durable records, then followed and truncated to 5.
    let mut r = leader(1);
    append(&mut r, 1, 20, Acks::All);
    r.step(Input::LocalDurable { end_offset: 20 }, 1_001);
    r.step(
        Input::BecomeFollower {
            state: state(2, 6, &[2, 1]),
            replicas: vec![1, 2, 3],
        },
        1_002,
    );
    r.step(
        Input::BecomeLeader {
            state: Versioned {
                value: state(1, 7, &[1]),
                version: 9,
            },
            replicas: vec![1, 2, 3],
            log_end_offset: 5,
            durable_end_offset: 5,
            high_watermark: 5,
        },
        1_003,
    );
    assert_eq!(r.high_watermark(), 5);
    // Appending past 5 and making it durable moves the HW only as far as the disk.
    append(&mut r, 2, 8, Acks::All);
    assert_eq!(r.high_watermark(), 5, "nothing new is durable yet");
    r.step(Input::LocalDurable { end_offset: 8 }, 1_004);
    assert_eq!(r.high_watermark(), 8);
}

#[test]
fn a_reloaded_state_outside_the_replicas_fences_instead_of_panicking() {
    let mut r = leader(1);
    let _ = r.step(Input::Tick, 1_001 + LAG_MS);
    r.step(Input::IsrWriteConflict, 1_002 + LAG_MS);
    let effects = r.step(
        Input::StateReloaded {
            state: Versioned {
                value: state(1, 5, &[1, 9]),
                version: 8,
            },
        },
        1_003 + LAG_MS,
    );
    assert_eq!(effects, vec![Effect::Fenced]);
    assert_eq!(r.role(), &Role::Fenced);
}
