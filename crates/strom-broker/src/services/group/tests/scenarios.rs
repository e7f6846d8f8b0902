//! Hand-written scenarios, one Kafka rule each: joining, syncing, leaving, heartbeats,
//! protocol selection and the deadlines. Static membership (KIP-345) is in `static_members`,
//! commits, snapshots and limits in `persistence`.

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;

use super::{
    consumer, is_persist, join_result, rejoin, sync_result, Harness, REBALANCE_MS, SESSION_MS,
};
use crate::services::group::{Effect, GroupConfig, GroupState, JoinRequest, SyncRequest};

#[test]
fn single_member_join_sync_stable() {
    let mut h = Harness::new();
    let (token, effects) = h.join(consumer("solo"));
    assert!(
        effects.is_empty(),
        "the initial rebalance delay parks the join"
    );
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert_eq!(h.group.next_deadline(), Some(3_000));
    assert!(h.tick_to(2_999).is_empty());

    let effects = h.finish_join();
    let joined = join_result(&effects, token);
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, 1);
    assert!(
        joined.member_id.starts_with("solo-"),
        "{}",
        joined.member_id
    );
    assert_eq!(joined.leader, joined.member_id);
    assert_eq!(joined.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.members[0].metadata, Bytes::from_static(b"topic-a"));
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
    let member_id = joined.member_id.clone();

    let (sync_token, effects) = h.sync(&member_id, 1, vec![(member_id.clone(), "p0".into())]);
    assert!(
        is_persist(&effects[0]),
        "persist before answering: {effects:?}"
    );
    let synced = sync_result(&effects, sync_token);
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.assignment, Bytes::from_static(b"p0"));
    assert_eq!(synced.protocol_name.as_deref(), Some("range"));
    assert_eq!(h.group.state(), GroupState::Stable);
    assert_eq!(h.heartbeat(&member_id, 1), 0);
    let described = h.group.members();
    assert_eq!(described[0].assignment, Bytes::from_static(b"p0"));
    assert_eq!(described[0].metadata, Bytes::from_static(b"topic-a"));
    assert_eq!(
        h.group.snapshot().members[0].assignment,
        Bytes::from_static(b"p0")
    );
}

#[test]
fn initial_delay_extends_while_members_keep_joining() {
    let mut h = Harness::new();
    let (a, _) = h.join(consumer("a"));
    h.now = 1_000;
    let (b, effects) = h.join(consumer("b"));
    assert!(effects.is_empty());
    // A member arrived during the first delay: the delay is extended once more.
    assert!(h.tick_to(3_000).is_empty());
    assert_eq!(h.group.next_deadline(), Some(6_000));
    h.now = 5_000;
    let (c, effects) = h.join(consumer("c"));
    assert!(effects.is_empty());
    assert!(h.tick_to(6_000).is_empty());
    assert_eq!(h.group.next_deadline(), Some(9_000));
    let effects = h.tick_to(9_000);
    let (ra, rb, rc) = (
        join_result(&effects, a),
        join_result(&effects, b),
        join_result(&effects, c),
    );
    assert!([ra, rb, rc]
        .iter()
        .all(|r| r.error_code == 0 && r.generation_id == 1));
    assert_eq!(ra.leader, ra.member_id, "the first member to join leads");
    assert_eq!(ra.members.len(), 3);
    assert!(
        rb.members.is_empty() && rc.members.is_empty(),
        "only the leader gets members"
    );
}

#[test]
fn initial_delay_is_capped_by_the_rebalance_timeout() {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..GroupConfig::default()
    };
    let mut h = Harness::with_config(config);
    let mut first = consumer("a");
    first.rebalance_timeout_ms = 5_000;
    let (a, _) = h.join(first);
    let mut t = 0;
    // Someone new joins before every expiry; the total wait still ends at 5 s.
    loop {
        t += 1_000;
        h.now = t;
        let mut late = consumer("late");
        late.rebalance_timeout_ms = 5_000;
        h.join(late);
        let deadline = h.group.next_deadline().unwrap();
        let effects = h.tick_to(deadline);
        if !effects.is_empty() {
            assert_eq!(join_result(&effects, a).generation_id, 1);
            assert!(deadline <= 5_000, "waited until {deadline}");
            break;
        }
        t = deadline;
    }
}

#[test]
fn member_leaving_triggers_rebalance_for_the_rest() {
    let mut h = Harness::new();
    let ids = h.stable_group(3);
    let (codes, effects) = h.group.leave(&[(ids[2].clone(), None)], h.now);
    assert_eq!(codes, vec![0]);
    assert!(effects.is_empty());
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(&ids[0], 1), E::RebalanceInProgress.code());
    assert_eq!(h.heartbeat(&ids[2], 1), E::UnknownMemberId.code());

    let (a, effects) = h.join(rejoin(consumer("c0"), &ids[0]));
    assert!(effects.is_empty(), "waits for the other member");
    let (b, effects) = h.join(rejoin(consumer("c1"), &ids[1]));
    let (ra, rb) = (join_result(&effects, a), join_result(&effects, b));
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.leader, ids[0]);
    assert_eq!(ra.members.len(), 2);
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
}

#[test]
fn last_member_leaving_empties_the_group() {
    let mut h = Harness::new();
    let ids = h.stable_group(1);
    let (codes, effects) = h.group.leave(&[(ids[0].clone(), None)], h.now);
    assert_eq!(codes, vec![0]);
    assert_eq!(effects, vec![Effect::Persist]);
    assert_eq!(h.group.state(), GroupState::Empty);
    assert_eq!(h.group.generation_id(), 2);
    assert_eq!(h.group.leader(), None);
    assert_eq!(
        h.group.protocol_type(),
        Some("consumer"),
        "kept for DescribeGroups"
    );
}

#[test]
fn session_expiry_removes_the_silent_member() {
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let start = h.now;
    for t in (start..start + 3 * i64::from(SESSION_MS)).step_by(2_000) {
        assert!(h.tick_to(t).is_empty() || h.group.state() != GroupState::Stable);
        if h.group.state() != GroupState::Stable {
            break;
        }
        assert_eq!(h.heartbeat(&ids[0], 1), 0);
    }
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert!(!h.group.has_member(&ids[1]));
    let (a, effects) = h.join(rejoin(consumer("c0"), &ids[0]));
    let ra = join_result(&effects, a);
    assert_eq!((ra.generation_id, ra.members.len()), (2, 1));
}

#[test]
fn rebalance_timeout_removes_members_that_never_rejoin() {
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    // The leader rejoining in Stable forces a rebalance.
    let (a, effects) = h.join(rejoin(consumer("c0"), &ids[0]));
    assert!(effects.is_empty());
    let started = h.now;
    // The follower keeps its session alive but never rejoins.
    let mut t = started;
    while t + 2_000 < started + i64::from(REBALANCE_MS) {
        t += 2_000;
        assert!(h.tick_to(t).is_empty());
        assert_eq!(h.heartbeat(&ids[1], 1), E::RebalanceInProgress.code());
    }
    assert_eq!(
        h.group.next_deadline(),
        Some(started + i64::from(REBALANCE_MS))
    );
    let effects = h.tick_to(started + i64::from(REBALANCE_MS));
    let ra = join_result(&effects, a);
    assert_eq!(
        (ra.error_code, ra.generation_id, ra.members.len()),
        (0, 2, 1)
    );
    assert!(!h.group.has_member(&ids[1]));
    assert_eq!(h.heartbeat(&ids[1], 2), E::UnknownMemberId.code());
}

#[test]
fn member_id_required_then_rejoin() {
    let mut h = Harness::new();
    let mut request = consumer("k");
    request.require_known_member_id = true;
    let (token, effects) = h.join(request.clone());
    let answer = join_result(&effects, token);
    assert_eq!(answer.error_code, E::MemberIdRequired.code());
    assert!(answer.member_id.starts_with("k-"));
    assert_eq!(
        h.group.state(),
        GroupState::Empty,
        "a pending member is not a member"
    );
    let member_id = answer.member_id.clone();

    let (token, effects) = h.join(rejoin(request.clone(), &member_id));
    assert!(effects.is_empty());
    let effects = h.finish_join();
    assert_eq!(join_result(&effects, token).member_id, member_id);

    // A pending member that never comes back expires after its session timeout.
    let (token, effects) = h.join(request.clone());
    let stale = join_result(&effects, token).member_id.clone();
    h.tick_to(h.now + i64::from(SESSION_MS));
    let (token, effects) = h.join(rejoin(request, &stale));
    assert_eq!(
        join_result(&effects, token).error_code,
        E::UnknownMemberId.code()
    );
}

#[test]
fn pending_member_holds_back_the_rebalance() {
    let mut h = Harness::new();
    let ids = h.stable_group(1);
    let mut newcomer = consumer("n");
    newcomer.require_known_member_id = true;
    let (token, effects) = h.join(newcomer.clone());
    let pending_id = join_result(&effects, token).member_id.clone();
    // The leader rejoins: everyone known has joined, but the pending member has not.
    let (a, effects) = h.join(rejoin(consumer("c0"), &ids[0]));
    assert!(effects.is_empty());
    let (n, effects) = h.join(rejoin(newcomer, &pending_id));
    assert_eq!(join_result(&effects, a).members.len(), 2);
    assert_eq!(join_result(&effects, n).generation_id, 2);
}

fn with_protocols(client: &str, names: &[&str]) -> JoinRequest {
    let mut request = consumer(client);
    request.protocols = names
        .iter()
        .map(|n| (n.to_string(), Bytes::from(format!("{n}-md"))))
        .collect();
    request
}

fn selected_protocol(preferences: &[&[&str]]) -> String {
    let mut h = Harness::new();
    let tokens: Vec<u64> = preferences
        .iter()
        .enumerate()
        .map(|(i, names)| {
            let (token, effects) = h.join(with_protocols(&format!("c{i}"), names));
            assert!(effects.is_empty(), "{effects:?}");
            token
        })
        .collect();
    let effects = h.finish_join();
    let leader = join_result(&effects, tokens[0]);
    let protocol = leader.protocol_name.clone().unwrap();
    for member in &leader.members {
        assert_eq!(
            member.metadata,
            Bytes::from(format!("{protocol}-md")),
            "selected metadata"
        );
    }
    protocol
}

#[test]
fn protocol_selection_follows_kafka_votes() {
    // Every member votes for its most preferred protocol that all members support.
    assert_eq!(
        selected_protocol(&[
            &["range", "roundrobin"],
            &["roundrobin", "range"],
            &["roundrobin", "range", "cooperative-sticky"]
        ]),
        "roundrobin"
    );
    // The top preference of some member is not common: it votes for its next choice.
    assert_eq!(
        selected_protocol(&[
            &["cooperative-sticky", "range"],
            &["range"],
            &["cooperative-sticky", "range"]
        ]),
        "range"
    );
    assert_eq!(
        selected_protocol(&[
            &["cooperative-sticky", "range"],
            &["cooperative-sticky", "range"],
            &["range", "cooperative-sticky"]
        ]),
        "cooperative-sticky"
    );
    // A tie goes to the vote of the earliest member.
    assert_eq!(
        selected_protocol(&[&["roundrobin", "range"], &["range", "roundrobin"]]),
        "roundrobin"
    );
}

#[test]
fn inconsistent_group_protocol() {
    let mut h = Harness::new();
    let mut empty_type = consumer("x");
    empty_type.protocol_type = String::new();
    let (t, effects) = h.join(empty_type);
    assert_eq!(
        join_result(&effects, t).error_code,
        E::InconsistentGroupProtocol.code()
    );
    let (t, effects) = h.join(with_protocols("x", &[]));
    assert_eq!(
        join_result(&effects, t).error_code,
        E::InconsistentGroupProtocol.code()
    );

    h.join(with_protocols("a", &["range", "roundrobin"]));
    let mut connect = consumer("b");
    connect.protocol_type = "connect".to_string();
    let (t, effects) = h.join(connect);
    assert_eq!(
        join_result(&effects, t).error_code,
        E::InconsistentGroupProtocol.code()
    );
    let (t, effects) = h.join(with_protocols("b", &["cooperative-sticky"]));
    assert_eq!(
        join_result(&effects, t).error_code,
        E::InconsistentGroupProtocol.code()
    );
    let (_, effects) = h.join(with_protocols("b", &["cooperative-sticky", "roundrobin"]));
    assert!(effects.is_empty(), "one common protocol is enough");
}

#[test]
fn invalid_session_timeout() {
    let mut h = Harness::new();
    for timeout in [5_999, 1_800_001] {
        let mut request = consumer("a");
        request.session_timeout_ms = timeout;
        let (t, effects) = h.join(request);
        assert_eq!(
            join_result(&effects, t).error_code,
            E::InvalidSessionTimeout.code()
        );
    }
}

#[test]
fn heartbeat_and_sync_errors() {
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    assert_eq!(h.heartbeat(&ids[1], 0), E::IllegalGeneration.code());
    assert_eq!(h.heartbeat("nobody", 1), E::UnknownMemberId.code());
    let (code, _) = h.group.heartbeat(&ids[1], Some("instance"), 1, h.now);
    assert_eq!(code, E::UnknownMemberId.code(), "unknown instance");
    let (t, effects) = h.sync(&ids[1], 7, vec![]);
    assert_eq!(
        sync_result(&effects, t).error_code,
        E::IllegalGeneration.code()
    );
    let (t, effects) = h.sync("nobody", 1, vec![]);
    assert_eq!(
        sync_result(&effects, t).error_code,
        E::UnknownMemberId.code()
    );
    let mut request = SyncRequest {
        token: 99,
        member_id: ids[1].clone(),
        generation_id: 1,
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("roundrobin".into()),
        assignments: vec![],
    };
    let effects = h.group.sync(request.clone(), h.now);
    assert_eq!(
        sync_result(&effects, 99).error_code,
        E::InconsistentGroupProtocol.code()
    );
    request.protocol_name = Some("range".into());
    request.protocol_type = Some("connect".into());
    let effects = h.group.sync(request, h.now);
    assert_eq!(
        sync_result(&effects, 99).error_code,
        E::InconsistentGroupProtocol.code()
    );

    // A follower changing its metadata forces a rebalance; meanwhile heartbeats and syncs
    // say so.
    let mut changed = rejoin(consumer("c1"), &ids[1]);
    changed.protocols = vec![("range".into(), Bytes::from_static(b"topic-b"))];
    let (parked, effects) = h.join(changed);
    assert!(effects.is_empty());
    assert_eq!(h.heartbeat(&ids[0], 1), E::RebalanceInProgress.code());
    let (t, effects) = h.sync(&ids[0], 1, vec![]);
    assert_eq!(
        sync_result(&effects, t).error_code,
        E::RebalanceInProgress.code()
    );
    let (_, effects) = h.join(rejoin(consumer("c0"), &ids[0]));
    assert_eq!(join_result(&effects, parked).generation_id, 2);
    assert_eq!(
        h.heartbeat(&ids[0], 2),
        0,
        "heartbeats are fine while completing"
    );
}

#[test]
fn follower_sync_waits_for_the_leader() {
    let mut h = Harness::new();
    let (a, _) = h.join(consumer("a"));
    let (b, _) = h.join(consumer("b"));
    let effects = h.finish_join();
    let (leader, follower) = (
        join_result(&effects, a).clone(),
        join_result(&effects, b).clone(),
    );
    let (fb, effects) = h.sync(&follower.member_id, 1, vec![]);
    assert!(effects.is_empty(), "parked until the leader's assignment");
    // The leader forgets the follower: it gets an empty assignment.
    let assignments = vec![(leader.member_id.clone(), Bytes::from_static(b"all"))];
    let (fa, effects) = h.sync(&leader.member_id, 1, assignments);
    assert!(is_persist(&effects[0]));
    assert_eq!(
        sync_result(&effects, fa).assignment,
        Bytes::from_static(b"all")
    );
    assert_eq!(sync_result(&effects, fb).error_code, 0);
    assert_eq!(sync_result(&effects, fb).assignment, Bytes::new());
    assert_eq!(h.group.state(), GroupState::Stable);
}

#[test]
fn member_that_never_syncs_is_removed() {
    let mut h = Harness::new();
    let (a, _) = h.join(consumer("a"));
    let (b, _) = h.join(consumer("b"));
    let effects = h.finish_join();
    let (leader, follower) = (
        join_result(&effects, a).clone(),
        join_result(&effects, b).clone(),
    );
    let (fa, effects) = h.sync(&leader.member_id, 1, vec![]);
    assert_eq!(sync_result(&effects, fa).error_code, 0);
    // The follower heartbeats (Stable says 0) but never sends SyncGroup.
    let sync_deadline = h.now + i64::from(REBALANCE_MS);
    while h.now + 2_000 < sync_deadline {
        let next = h.now + 2_000;
        assert!(h.tick_to(next).is_empty());
        assert_eq!(h.heartbeat(&leader.member_id, 1), 0);
        assert_eq!(h.heartbeat(&follower.member_id, 1), 0);
    }
    let effects = h.tick_to(sync_deadline);
    assert!(effects.is_empty());
    assert!(!h.group.has_member(&follower.member_id));
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert_eq!(
        h.heartbeat(&leader.member_id, 1),
        E::RebalanceInProgress.code()
    );
}

#[test]
fn join_of_unchanged_follower_in_stable_returns_the_current_generation() {
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let (t, effects) = h.join(rejoin(consumer("c1"), &ids[1]));
    let answer = join_result(&effects, t);
    assert_eq!((answer.error_code, answer.generation_id), (0, 1));
    assert_eq!(answer.leader, ids[0]);
    assert_eq!(h.group.state(), GroupState::Stable);
}

/// `next_deadline` is the earliest of every member's session expiry (issue 7: the shell
/// sleeps until it instead of ticking every 100 ms), and a tick fires a session exactly at
/// its deadline, not a millisecond before; with the last member gone the group is Empty.
#[test]
fn next_deadline_is_the_earliest_session_and_fires_exactly_then() {
    let mut h = Harness::new();
    let ids = h.stable_group(2);
    let generation = h.group.generation_id();
    let start = h.now;
    assert_eq!(
        h.group.next_deadline(),
        Some(start + i64::from(SESSION_MS)),
        "both sessions started together"
    );
    // The first member heartbeats later: the second's session is now the earliest.
    h.now = start + 4_000;
    assert_eq!(h.heartbeat(&ids[0], generation), 0);
    assert_eq!(h.group.next_deadline(), Some(start + i64::from(SESSION_MS)));
    h.now = start + 6_000;
    assert_eq!(h.heartbeat(&ids[1], generation), 0);
    let first_expiry = start + 4_000 + i64::from(SESSION_MS);
    assert_eq!(h.group.next_deadline(), Some(first_expiry));

    assert!(h.tick_to(first_expiry - 1).is_empty());
    assert_eq!(h.group.members().len(), 2, "not a millisecond early");
    h.tick_to(first_expiry);
    assert_eq!(h.group.members().len(), 1, "expired at its deadline");
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    // Now the earliest is the rebalance timeout or the survivor's session, whichever is first.
    let rebalance_deadline = first_expiry + i64::from(REBALANCE_MS);
    let survivor_expiry = start + 6_000 + i64::from(SESSION_MS);
    assert_eq!(
        h.group.next_deadline(),
        Some(rebalance_deadline.min(survivor_expiry))
    );
    // The survivor stops too: at its deadline the group is left Empty, with no deadline.
    h.tick_to(survivor_expiry);
    assert!(h.group.members().is_empty());
    assert_eq!(h.group.state(), GroupState::Empty);
    assert_eq!(h.group.next_deadline(), None, "an Empty group has no timer");
}

/// The join phase's deadlines: the initial delay of an empty group's first join, then for a
/// Stable group the rebalance timeout of a member that does not rejoin.
#[test]
fn next_deadline_covers_the_initial_delay_and_the_rebalance_timeout() {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 500,
        ..GroupConfig::default()
    };
    let mut h = Harness::with_config(config);
    h.now = 1_000;
    let (_, effects) = h.join(consumer("a"));
    assert!(effects.is_empty());
    assert_eq!(h.group.next_deadline(), Some(1_500), "the initial delay");
    let effects = h.finish_join();
    assert!(!effects.is_empty());
    let leader = h.group.members()[0].member_id.clone();
    let generation = h.group.generation_id();
    h.sync(&leader, generation, vec![(leader.clone(), Bytes::new())]);
    assert_eq!(h.group.state(), GroupState::Stable);
    // A second member joins at t: the leader must rejoin before its rebalance timeout.
    let t = h.now + 100;
    h.now = t;
    assert_eq!(h.heartbeat(&leader, generation), 0);
    let (_, effects) = h.join(consumer("b"));
    assert!(effects.is_empty());
    assert_eq!(h.group.state(), GroupState::PreparingRebalance);
    assert_eq!(
        h.group.next_deadline(),
        Some(t + i64::from(SESSION_MS)),
        "the leader's session ends before the rebalance timeout"
    );
    // The leader keeps heartbeating (told to rejoin) but never does: now the rebalance
    // timeout is the earliest deadline, and the join completes without it exactly then.
    for at in [9_000, 18_000, 27_000] {
        h.now = t + at;
        assert_eq!(
            h.heartbeat(&leader, generation),
            27,
            "REBALANCE_IN_PROGRESS"
        );
    }
    let rebalance_deadline = t + i64::from(REBALANCE_MS);
    assert_eq!(h.group.next_deadline(), Some(rebalance_deadline));
    assert!(h.tick_to(rebalance_deadline - 1).is_empty());
    let effects = h.tick_to(rebalance_deadline);
    assert!(!effects.is_empty(), "the parked join is answered");
    assert_eq!(
        h.group.members().len(),
        1,
        "the leader that did not rejoin is gone"
    );
    assert_eq!(h.group.state(), GroupState::CompletingRebalance);
}
