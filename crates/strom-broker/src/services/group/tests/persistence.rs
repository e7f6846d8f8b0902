//! What outlives a request: offset commit rules, the snapshot a group is persisted and
//! restored as, the group size limit, and parked requests answered on delete or unload.

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;

use super::static_members::static_pair;
use super::{consumer, join_result, rejoin, static_consumer, Harness, SESSION_MS};
use crate::services::group::{Effect, Group, GroupConfig, GroupState};

#[test]
fn validate_commit_rules() {
    let mut h = Harness::new();
    assert_eq!(
        h.group.validate_commit("", None, -1),
        Ok(()),
        "simple commit on Empty"
    );
    assert_eq!(
        h.group.validate_commit("m", None, 0),
        Err(E::UnknownMemberId.code())
    );
    let ids = h.stable_group(2);
    let g = &h.group;
    assert_eq!(g.validate_commit(&ids[1], None, 1), Ok(()));
    assert_eq!(
        g.validate_commit("", None, -1),
        Err(E::UnknownMemberId.code())
    );
    assert_eq!(
        g.validate_txn_commit("", None, -1),
        Ok(()),
        "old TxnOffsetCommit"
    );
    assert_eq!(
        g.validate_commit(&ids[1], None, 0),
        Err(E::IllegalGeneration.code())
    );
    assert_eq!(
        g.validate_commit("nobody", None, 1),
        Err(E::UnknownMemberId.code())
    );
    assert_eq!(
        g.validate_commit(&ids[1], Some("s"), 1),
        Err(E::UnknownMemberId.code())
    );

    let mut s = Harness::new();
    let static_ids = static_pair(&mut s);
    assert_eq!(
        s.group.validate_commit(&static_ids[0], Some("s1"), 1),
        Err(E::FencedInstanceId.code())
    );
    assert_eq!(
        s.group.validate_commit(&static_ids[1], Some("s1"), 1),
        Ok(())
    );

    // PreparingRebalance: members with the current generation may still commit.
    let (_, _) = h.join(rejoin(consumer("c0"), &ids[0]));
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert_eq!(h.group.validate_commit(&ids[1], None, 1), Ok(()));
    // CompletingRebalance: not until the assignment arrived.
    h.join(rejoin(consumer("c1"), &ids[1]));
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
    assert_eq!(
        h.group.validate_commit(&ids[1], None, 2),
        Err(E::RebalanceInProgress.code())
    );
    assert_eq!(h.group.validate_txn_commit(&ids[1], None, 2), Ok(()));

    let mut dead = Group::new("d".into(), GroupConfig::default());
    dead.mark_dead();
    assert_eq!(
        dead.validate_commit("", None, -1),
        Err(E::CoordinatorNotAvailable.code())
    );
}

#[test]
fn commit_counts_as_heartbeat() {
    let mut h = Harness::new();
    let ids = h.stable_group(1);
    let deadline = h.group.next_deadline().unwrap();
    h.now = deadline - 1;
    h.group.record_commit(&ids[0], h.now);
    assert_eq!(h.group.next_deadline(), Some(h.now + i64::from(SESSION_MS)));
}

#[test]
fn snapshot_restore_round_trip() {
    let mut h = Harness::new();
    let (a, _) = h.join(static_consumer("s0"));
    let (b, _) = h.join(consumer("dyn"));
    let effects = h.finish_join();
    let (ia, ib) = (
        join_result(&effects, a).member_id.clone(),
        join_result(&effects, b).member_id.clone(),
    );
    h.sync(
        &ia,
        1,
        vec![(ia.clone(), "A".into()), (ib.clone(), "B".into())],
    );
    let snapshot = h.group.snapshot();
    assert_eq!(snapshot.leader.as_deref(), Some(ia.as_str()));
    assert_eq!(snapshot.members[0].group_instance_id.as_deref(), Some("s0"));
    assert_eq!(
        snapshot.members[1].subscription,
        Bytes::from_static(b"topic-a")
    );
    assert_eq!(
        snapshot.current_state_timestamp_ms, h.now,
        "became Stable just now"
    );

    let restored = Group::restore("g".into(), GroupConfig::default(), snapshot.clone(), 50_000);
    assert_eq!(restored.snapshot(), snapshot);
    assert_eq!(restored.state(), GroupState::Stable);
    assert_eq!(
        restored.next_deadline(),
        Some(50_000 + i64::from(SESSION_MS)),
        "sessions restart"
    );
    let mut restored = restored;
    let (code, _) = restored.heartbeat(&ia, Some("s0"), 1, 50_001);
    assert_eq!(code, 0);
    // A restarted static member is recognised after a reload.
    let mut request = static_consumer("s0");
    request.token = 5;
    let effects = restored.join(request, 50_002, 42);
    assert_eq!(join_result(&effects, 5).generation_id, 1);

    // An Empty group round-trips too.
    let mut empty = Harness::new();
    let ids = empty.stable_group(1);
    empty.group.leave(&[(ids[0].clone(), None)], empty.now);
    let snapshot = empty.group.snapshot();
    let restored = Group::restore("g".into(), GroupConfig::default(), snapshot.clone(), 9);
    assert_eq!(
        (restored.state(), restored.snapshot()),
        (GroupState::Empty, snapshot)
    );
}

#[test]
fn restore_repairs_a_bad_record_and_honours_max_size() {
    let mut h = Harness::new();
    h.stable_group(3);
    let mut snapshot = h.group.snapshot();
    snapshot.leader = Some("ghost".into());
    let config = GroupConfig {
        max_size: Some(2),
        ..GroupConfig::default()
    };
    let restored = Group::restore("g".into(), config, snapshot.clone(), 0);
    assert_eq!(
        restored.leader(),
        Some(snapshot.members[0].member_id.as_str())
    );
    assert_eq!(
        restored.state(),
        GroupState::PreparingRebalance,
        "over capacity"
    );
}

#[test]
fn group_max_size() {
    let config = GroupConfig {
        max_size: Some(2),
        ..GroupConfig::default()
    };
    let mut h = Harness::with_config(config);
    h.join(consumer("a"));
    h.join(consumer("b"));
    let (t, effects) = h.join(consumer("c"));
    assert_eq!(
        join_result(&effects, t).error_code,
        E::GroupMaxSizeReached.code()
    );
}

#[test]
fn delete_and_unload_answer_parked_requests() {
    let mut h = Harness::new();
    let (t, _) = h.join(consumer("a"));
    let effects = h.group.unload();
    assert_eq!(
        join_result(&effects, t).error_code,
        E::NotCoordinator.code()
    );
    assert_eq!(h.group.state(), GroupState::Dead);
    let (t, effects) = h.join(consumer("b"));
    assert_eq!(
        join_result(&effects, t).error_code,
        E::CoordinatorNotAvailable.code()
    );
    let (code, _) = h.group.heartbeat("x", None, 1, 0);
    assert_eq!(code, E::CoordinatorNotAvailable.code());

    let mut empty = Group::new("e".into(), GroupConfig::default());
    assert_eq!(empty.mark_dead(), vec![Effect::Persist]);
    assert_eq!(empty.state().to_string(), "Dead");
}

#[test]
fn superseded_parked_join_is_answered() {
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let mut changed = rejoin(consumer("c1"), &ids[1]);
    changed.protocols[0].1 = Bytes::from_static(b"other");
    let (first, effects) = h.join(changed.clone());
    assert!(effects.is_empty(), "changed metadata parks the join");
    changed.protocols[0].1 = Bytes::from_static(b"yet another");
    let (_, effects) = h.join(changed);
    assert_eq!(
        join_result(&effects, first).error_code,
        E::RebalanceInProgress.code()
    );
}

#[test]
fn state_names_are_kafkas() {
    let names: Vec<String> = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        names,
        [
            "Empty",
            "PreparingRebalance",
            "CompletingRebalance",
            "Stable",
            "Dead"
        ]
    );
}
