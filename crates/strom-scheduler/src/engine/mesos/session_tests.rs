//! Tests of the session state machine (see session.rs), with injected time.

use super::*;

fn settings() -> FrameworkSettings {
    FrameworkSettings {
        name: "kafka".into(),
        user: "nobody".into(),
        role: "kafka-role".into(),
        principal: "kafka-principal".into(),
        failover_timeout_seconds: 1_209_600.0,
    }
}

fn config() -> SessionConfig {
    SessionConfig {
        heartbeat_misses: 5,
        default_heartbeat_ms: 15_000,
        subscribe_timeout_ms: 1_000,
        backoff_min_ms: 100,
        backoff_max_ms: 400,
        offer_call_interval_ms: 1_000,
    }
}

fn no_checks(_: &TaskInfo) -> TaskChecks {
    TaskChecks::default()
}

fn subscribed(id: &str, heartbeat_ms: Option<u64>) -> Event {
    Event::Subscribed {
        framework_id: id.into(),
        heartbeat_interval_ms: heartbeat_ms,
    }
}

fn kinds(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Subscribe { .. } => "subscribe".to_string(),
            Action::Disconnect { .. } => "disconnect".to_string(),
            Action::Call { body, .. } => body["type"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// A session subscribed at `now` as `fw-1` (heartbeats every second), taken by the driver.
fn live(now: u64) -> Session {
    live_with(now, 1_000)
}

fn live_with(now: u64, heartbeat_ms: u64) -> Session {
    let mut session = Session::new(config(), settings(), None);
    assert_eq!(kinds(&session.tick(now)), ["subscribe"]);
    session.stream_opened(1, "s-1".into());
    session.event(1, &subscribed("fw-1", Some(heartbeat_ms)), now);
    assert_eq!(session.take_subscription(now).0.as_deref(), Some("fw-1"));
    session
}

#[test]
fn no_call_leaves_before_the_driver_took_the_framework_id() {
    let mut session = Session::new(config(), settings(), None);
    let actions = session.tick(0);
    let Action::Subscribe { generation, body } = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(*generation, 1);
    assert!(body["subscribe"]["framework_info"].get("id").is_none());
    assert_eq!(body["subscribe"]["force"], true);
    session.stream_opened(1, "s-1".into());
    session.event(1, &subscribed("fw-1", None), 10);
    assert!(!session.calls_allowed());
    let kill = Effect::Kill {
        task_id: "t".into(),
        agent_id: "a".into(),
    };
    let decline = Effect::Decline {
        offer_id: "o".into(),
        refuse_seconds: 5,
    };
    assert!(session.effects(&[kill, decline], 10, &no_checks).is_empty());
    let (id, actions) = session.take_subscription(20);
    assert_eq!(id.as_deref(), Some("fw-1"));
    // The KILL was held, the DECLINE (an offer of this stream, not yet answered) dropped.
    assert_eq!(kinds(&actions), ["KILL"]);
    let Action::Call {
        stream_id, body, ..
    } = &actions[0]
    else {
        panic!()
    };
    assert_eq!(stream_id, "s-1");
    assert_eq!(body["framework_id"]["value"], "fw-1");
    assert_eq!(session.take_subscription(30).0, None, "taken once");
}

#[test]
fn the_watchdog_gives_up_a_silent_stream_and_backs_off() {
    let mut session = live(0);
    // Heartbeat 1 s, 5 misses: silent until 4,999 ms is fine.
    assert!(session.tick(4_999).is_empty());
    session.event(1, &Event::Heartbeat, 4_000);
    assert!(session.tick(8_999).is_empty());
    assert_eq!(kinds(&session.tick(9_000)), ["disconnect"]);
    assert!(!session.is_subscribed());
    assert!(session.tick(9_099).is_empty(), "back-off 100 ms");
    let actions = session.tick(9_100);
    let Action::Subscribe { generation, body } = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(*generation, 2);
    assert_eq!(body["subscribe"]["framework_info"]["id"]["value"], "fw-1");
    assert_eq!(body["subscribe"]["force"], false);
    // No SUBSCRIBED within the timeout: again, with a doubled back-off.
    assert_eq!(kinds(&session.tick(10_100)), ["disconnect"]);
    assert!(session.tick(10_299).is_empty());
    assert_eq!(kinds(&session.tick(10_300)), ["subscribe"]);
    // Events of the abandoned stream are ignored.
    assert!(session
        .event(2, &subscribed("fw-1", None), 10_301)
        .is_empty());
    assert!(!session.is_subscribed());
    assert!(session.stream_failed(1, "old", 10_302).is_empty());
}

#[test]
fn hostile_or_out_of_order_events_drop_the_stream() {
    let mut session = Session::new(config(), settings(), None);
    session.tick(0);
    session.stream_opened(1, "s-1".into());
    assert_eq!(
        kinds(&session.event(1, &Event::Heartbeat, 1)),
        ["disconnect"]
    );
    session.tick(200);
    session.stream_opened(2, "s-2".into());
    session.event(2, &subscribed("fw-1", None), 201);
    let error = Event::Error {
        message: "Framework is not authorized".into(),
    };
    assert_eq!(kinds(&session.event(2, &error, 202)), ["disconnect"]);
    assert_eq!(session.take_notes().len(), 3);
    // SUBSCRIBED without a stream id (the 200 lacked the header) is refused too.
    session.tick(1_000);
    assert_eq!(
        kinds(&session.event(3, &subscribed("fw-1", None), 1_001)),
        ["disconnect"]
    );
}

#[test]
fn revive_and_suppress_are_rate_limited_and_coalesced() {
    let mut session = live_with(0, 60_000);
    let calls = |session: &mut Session, effects: &[Effect], now| {
        kinds(&session.effects(effects, now, &no_checks))
    };
    assert_eq!(calls(&mut session, &[Effect::Revive], 0), ["REVIVE"]);
    // Within the interval: coalesced, the last wish wins.
    assert!(calls(&mut session, &[Effect::Suppress], 100).is_empty());
    assert!(calls(&mut session, &[Effect::Revive], 200).is_empty());
    assert!(calls(&mut session, &[Effect::Suppress], 300).is_empty());
    assert!(session.tick(999).is_empty());
    assert_eq!(kinds(&session.tick(1_000)), ["SUPPRESS"]);
    assert!(session.tick(5_000).is_empty(), "already suppressed");
    assert_eq!(calls(&mut session, &[Effect::Revive], 5_000), ["REVIVE"]);
    // A resubscription carries the wish in SUBSCRIBE instead of a call.
    session.effects(&[Effect::Suppress], 5_001, &no_checks);
    session.stream_failed(1, "gone", 5_002);
    let actions = session.tick(5_200);
    let Action::Subscribe { body, .. } = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(body["subscribe"]["suppressed_roles"], json!(["kafka-role"]));
    session.stream_opened(2, "s-2".into());
    session.event(2, &subscribed("fw-1", None), 5_300);
    assert!(kinds(&session.take_subscription(5_300).1).is_empty());
    assert!(session.tick(9_000).is_empty());
}

#[test]
fn effects_become_calls() {
    let mut session = live(0);
    let effects = [
        Effect::Decline {
            offer_id: "o-1".into(),
            refuse_seconds: 3600,
        },
        Effect::Acknowledge {
            task_id: "t-1".into(),
            agent_id: "a-1".into(),
            uuid: "AAEC".into(),
        },
        Effect::Reconcile {
            tasks: vec![("t-1".into(), "a-1".into())],
        },
        Effect::Kill {
            task_id: "t-1".into(),
            agent_id: "a-1".into(),
        },
        Effect::Accept {
            offer_id: "o-2".into(),
            agent_id: "a-1".into(),
            operations: vec![],
        },
        Effect::Teardown,
    ];
    let actions = session.effects(&effects, 1, &no_checks);
    let bodies: Vec<&Value> = actions
        .iter()
        .map(|a| match a {
            Action::Call { body, .. } => body,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        bodies[0]["decline"],
        json!({"offer_ids": [{"value": "o-1"}], "filters": {"refuse_seconds": 3600.0}})
    );
    assert_eq!(
        bodies[1]["acknowledge"],
        json!({"agent_id": {"value": "a-1"}, "task_id": {"value": "t-1"}, "uuid": "AAEC"})
    );
    assert_eq!(
        bodies[2]["reconcile"]["tasks"],
        json!([{"task_id": {"value": "t-1"}, "agent_id": {"value": "a-1"}}])
    );
    assert_eq!(
        bodies[3]["kill"],
        json!({"task_id": {"value": "t-1"}, "agent_id": {"value": "a-1"}})
    );
    assert_eq!(bodies[4]["accept"]["offer_ids"], json!([{"value": "o-2"}]));
    assert_eq!(
        bodies[5],
        &json!({"framework_id": {"value": "fw-1"}, "type": "TEARDOWN"})
    );
}
