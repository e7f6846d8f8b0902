//! Static membership (KIP-345): a member with a `group.instance.id` that restarts keeps its
//! assignment without a rebalance, is fenced by a newer instance, and leaves by instance id.

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;

use super::{
    is_persist, join_result, rejoin, static_consumer, sync_result, Harness, REBALANCE_MS,
    SESSION_MS,
};
use crate::services::group::{Effect, GroupState, SyncRequest};

/// Two static members, Stable at generation 1; returns (member ids, assignments).
pub(super) fn static_pair(h: &mut Harness) -> Vec<String> {
    let (a, _) = h.join(static_consumer("s0"));
    let (b, _) = h.join(static_consumer("s1"));
    let effects = h.finish_join();
    let ids = vec![
        join_result(&effects, a).member_id.clone(),
        join_result(&effects, b).member_id.clone(),
    ];
    assert!(
        ids[0].starts_with("s0-"),
        "static ids start with the instance id"
    );
    let assignments = ids
        .iter()
        .map(|id| (id.clone(), Bytes::from(format!("for-{id}"))))
        .collect();
    h.sync(&ids[0], 1, assignments);
    assert_eq!(h.group.state(), GroupState::Stable);
    ids
}

#[test]
fn static_member_restart_keeps_its_assignment_without_rebalance() {
    let mut h = Harness::new();
    let ids = static_pair(&mut h);
    h.now = 5_000;
    let (t, effects) = h.join(static_consumer("s1"));
    assert!(
        is_persist(&effects[0]),
        "the new member id is persisted: {effects:?}"
    );
    let answer = join_result(&effects, t).clone();
    assert_eq!((answer.error_code, answer.generation_id), (0, 1));
    assert_ne!(answer.member_id, ids[1]);
    assert_eq!(answer.leader, ids[0]);
    assert!(!answer.skip_assignment && answer.members.is_empty());
    assert_eq!(h.group.state(), GroupState::Stable);
    assert_eq!(h.group.generation_id(), 1);

    let request = SyncRequest {
        token: 77,
        member_id: answer.member_id.clone(),
        generation_id: 1,
        group_instance_id: Some("s1".into()),
        protocol_type: None,
        protocol_name: None,
        assignments: vec![],
    };
    let effects = h.group.sync(request, h.now);
    assert_eq!(
        sync_result(&effects, 77).assignment,
        Bytes::from(format!("for-{}", ids[1]))
    );

    // The previous incarnation is fenced.
    let (code, _) = h.group.heartbeat(&ids[1], Some("s1"), 1, h.now);
    assert_eq!(code, E::FencedInstanceId.code());
    let (code, _) = h.group.heartbeat(&answer.member_id, Some("s1"), 1, h.now);
    assert_eq!(code, 0);
}

#[test]
fn static_leader_restart_skips_assignment() {
    for supports_skip in [true, false] {
        let mut h = Harness::new();
        let ids = static_pair(&mut h);
        let (t, effects) = h.join_version(static_consumer("s0"), supports_skip);
        let answer = join_result(&effects, t);
        assert_eq!(answer.generation_id, 1);
        assert_eq!(
            h.group.leader(),
            Some(answer.member_id.as_str()),
            "leadership follows the instance"
        );
        if supports_skip {
            assert!(answer.skip_assignment);
            assert_eq!(answer.leader, answer.member_id);
            assert_eq!(answer.members.len(), 2);
        } else {
            assert!(!answer.skip_assignment);
            assert_eq!(
                answer.leader, ids[0],
                "old leader id, so the client does not assign"
            );
            assert!(answer.members.is_empty());
        }
    }
}

#[test]
fn static_member_with_changed_protocol_choice_rebalances() {
    let mut h = Harness::new();
    let mut a = static_consumer("s0");
    a.protocols = vec![
        ("range".into(), Bytes::new()),
        ("roundrobin".into(), Bytes::new()),
    ];
    let mut b = static_consumer("s1");
    b.protocols = a.protocols.clone();
    let (ta, _) = h.join(a.clone());
    h.join(b.clone());
    let effects = h.finish_join();
    let leader = join_result(&effects, ta).member_id.clone();
    h.sync(&leader, 1, vec![]);
    // s1 restarts preferring roundrobin: the vote becomes a 1-1 tie won by s0 (range), so
    // no rebalance; then s0 restarts preferring roundrobin too: the selection changes.
    b.protocols.reverse();
    h.join(b);
    assert_eq!(h.group.state(), GroupState::Stable);
    a.protocols.reverse();
    let (t, effects) = h.join(a);
    assert!(effects
        .iter()
        .all(|e| !matches!(e, Effect::Join(token, _) if *token == t)));
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
}

#[test]
fn static_member_fencing_of_parked_requests() {
    let mut h = Harness::new();
    let ids = static_pair(&mut h);
    // The old incarnation of s0 (the leader) rejoins, which starts a rebalance...
    let old = rejoin(static_consumer("s0"), &ids[0]);
    let (old_token, effects) = h.join(old.clone());
    assert!(effects.is_empty());
    // ...and a new incarnation shows up: the old parked join is fenced.
    let (new_token, effects) = h.join(static_consumer("s0"));
    assert_eq!(
        join_result(&effects, old_token).error_code,
        E::FencedInstanceId.code()
    );
    assert!(effects
        .iter()
        .all(|e| !matches!(e, Effect::Join(t, _) if *t == new_token)));
    // The old incarnation keeps being fenced.
    let (t, effects) = h.join(old);
    assert_eq!(
        join_result(&effects, t).error_code,
        E::FencedInstanceId.code()
    );
    let (_, effects) = h.join(rejoin(static_consumer("s1"), &ids[1]));
    let answer = join_result(&effects, new_token);
    assert_eq!((answer.error_code, answer.generation_id), (0, 2));
    assert_eq!(answer.leader, answer.member_id);
}

#[test]
fn static_member_leave_by_instance_id_and_session_expiry() {
    let mut h = Harness::new();
    let ids = static_pair(&mut h);
    let (codes, _) = h.group.leave(
        &[
            (String::new(), Some("s1".into())),
            (String::new(), Some("zz".into())),
        ],
        h.now,
    );
    assert_eq!(codes, vec![0, E::UnknownMemberId.code()]);
    assert!(!h.group.has_member(&ids[1]));
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    let (_, effects) = h.join(rejoin(static_consumer("s0"), &ids[0]));
    assert_eq!(h.group.generation_id(), 2, "{effects:?}");
    h.sync(&ids[0], 2, vec![]);

    // A static member that goes silent is removed when its session expires.
    let effects = h.tick_to(h.now + i64::from(SESSION_MS));
    assert_eq!(
        effects,
        vec![Effect::Persist],
        "last member gone: the group is empty"
    );
    assert_eq!(h.group.state(), GroupState::Empty);
}

#[test]
fn static_member_that_does_not_rejoin_stays_in_the_generation() {
    let mut h = Harness::new();
    let ids = static_pair(&mut h);
    let (t, _) = h.join(rejoin(static_consumer("s0"), &ids[0]));
    let deadline = h.now + i64::from(REBALANCE_MS);
    // s1 stays alive (heartbeats) but does not rejoin before the rebalance timeout.
    while h.now + 2_000 < deadline {
        let next = h.now + 2_000;
        assert!(h.tick_to(next).is_empty());
        let (code, _) = h.group.heartbeat(&ids[1], Some("s1"), 1, h.now);
        assert_eq!(code, E::RebalanceInProgress.code());
    }
    let effects = h.tick_to(deadline);
    let answer = join_result(&effects, t);
    assert_eq!(
        answer.members.len(),
        2,
        "KIP-345: static members survive a missed rejoin"
    );
    assert!(h.group.has_member(&ids[1]));
}
