//! Taking brokers and services away: decommission after a shrink with `allow-decommission`,
//! and uninstall (kill, release, wipe; finishing without a lost agent; resuming after a
//! restart), on the fake cluster of `common`.

mod common;

use common::*;
use strom_scheduler::plan::Status::*;
use strom_scheduler::scheduler::{Effect, Input, UNINSTALL_AGENT_TIMEOUT_MS};

#[test]
fn uninstall_kills_releases_everything_and_wipes_the_store() {
    let (mut s, mut cluster) = deployed("", 3);
    let effects = s.uninstall(1_000_000).unwrap();
    assert_eq!(kills(&effects).len(), 3);
    assert_eq!(
        s.update(&kafka(r#"{"brokers":{"count":4}}"#))
            .unwrap_err()
            .to_string(),
        "the service is being uninstalled"
    );
    assert!(s.restart_pod("kafka-0", 1_000_000).is_err());
    for status in cluster.apply(&effects) {
        drive(&mut s, &mut cluster, Input::Status(status), 1_000_001);
    }
    let plan = s.plan("uninstall").unwrap();
    let phases: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases[0], "kill-tasks");
    assert_eq!(phases.last(), Some(&"deregister-service"));
    assert_eq!(phases.len(), 5, "one unreserve phase per agent: {phases:?}");
    assert_eq!(plan.phases[0].status(), Complete);
    let effects = offer_round(&mut s, &mut cluster, 1_000_002);
    let operations = accepted_operations(&effects);
    assert_eq!(operations, [["destroy", "unreserve"]; 3]);
    assert!(effects.contains(&Effect::Teardown));
    assert!(s.is_uninstalled());
    assert_eq!(s.plan("uninstall").unwrap().status(), Complete);
    assert!(cluster.reserved_ids().is_empty(), "no reservation left");
    assert!(cluster.agents.iter().all(|a| a.reserved.is_empty()));
    assert!(
        s.persister().paths().is_empty(),
        "state store wiped: {:?}",
        s.persister().paths()
    );
}

#[test]
fn uninstall_finishes_when_an_agent_is_gone() {
    let (mut s, mut cluster) = deployed("", 3);
    let gone = cluster
        .live("kafka-1-broker")
        .unwrap()
        .info
        .agent_id
        .clone();
    let effects = s.uninstall(0).unwrap();
    for status in cluster.apply(&effects) {
        drive(&mut s, &mut cluster, Input::Status(status), 1);
    }
    let offers: Vec<_> = cluster
        .offers()
        .into_iter()
        .filter(|o| o.agent_id != gone)
        .collect();
    let effects = drive(&mut s, &mut cluster, Input::Offers(offers), 2);
    assert!(!effects.contains(&Effect::Teardown), "waits for {gone}");
    let effects = drive(
        &mut s,
        &mut cluster,
        Input::Tick,
        UNINSTALL_AGENT_TIMEOUT_MS - 1,
    );
    assert!(!effects.contains(&Effect::Teardown));
    let effects = drive(
        &mut s,
        &mut cluster,
        Input::Tick,
        UNINSTALL_AGENT_TIMEOUT_MS,
    );
    assert!(effects.contains(&Effect::Teardown));
    let plan = s.plan("uninstall").unwrap();
    let phase = plan
        .phases
        .iter()
        .find(|p| p.name == format!("unreserve-resources-{gone}"))
        .unwrap();
    assert!(phase.steps[0].message.starts_with(&format!(
        "agent {gone} did not offer this reservation within 10 min"
    )));
    assert!(s.persister().paths().is_empty());
}

#[test]
fn uninstall_resumes_after_a_scheduler_restart() {
    let (mut s, mut cluster) = deployed("", 3);
    let effects = s.uninstall(0).unwrap();
    for status in cluster.apply(&effects) {
        drive(&mut s, &mut cluster, Input::Status(status), 1);
    }
    let first: Vec<_> = cluster.offers().into_iter().take(1).collect();
    drive(&mut s, &mut cluster, Input::Offers(first), 2);
    assert_eq!(
        cluster
            .agents
            .iter()
            .filter(|a| a.reserved.is_empty())
            .count(),
        1
    );
    let store = s.into_persister();
    let mut s = scheduler(&kafka(""), store, 7);
    assert!(s.is_uninstalling());
    let plan = s.plan("uninstall").unwrap();
    assert_eq!(
        plan.phases.len(),
        4,
        "the released agent's reservations are not waited for"
    );
    let effects = offer_round(&mut s, &mut cluster, 3);
    assert!(effects.contains(&Effect::Teardown));
    assert!(cluster.reserved_ids().is_empty());
    assert!(s.persister().paths().is_empty());
}

#[test]
fn shrinking_with_allow_decommission_removes_the_highest_brokers_one_by_one() {
    let (mut s, mut cluster) = deployed(r#"{"brokers":{"count":4}}"#, 4);
    let outcome = s
        .update(&kafka(
            r#"{"brokers":{"count":2,"allow_decommission":true}}"#,
        ))
        .unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let effects = drive(&mut s, &mut cluster, Input::Tick, 1_100_000);
    assert_eq!(
        kills(&effects),
        ["kafka-3-broker"],
        "highest index first, one at a time"
    );
    let phases: Vec<String> = s
        .plan("decommission")
        .unwrap()
        .phases
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(phases, ["kafka-3", "kafka-2"]);
    let effects = offer_round(&mut s, &mut cluster, 1_100_001);
    assert!(accepted_operations(&effects).contains(&vec!["destroy", "unreserve"]));
    assert!(!s.tasks().contains_key("kafka-3-broker"), "kafka-3 erased");
    // kafka-2 goes next, then the decommission is over.
    for round in 0..3 {
        offer_round(&mut s, &mut cluster, 1_100_002 + round);
    }
    assert!(s.plan("decommission").unwrap().phases.is_empty());
    let names: Vec<&String> = s.tasks().keys().collect();
    assert_eq!(names, ["kafka-0-broker", "kafka-1-broker"]);
    assert!(cluster.live("kafka-2-broker").is_none() && cluster.live("kafka-3-broker").is_none());
    let owned: Vec<_> = s
        .tasks()
        .values()
        .flat_map(|r| r.info.resources.iter().filter_map(|x| x.resource_id()))
        .collect();
    assert_eq!(
        cluster.reserved_ids().len(),
        owned.len(),
        "only the remaining brokers hold reservations"
    );
    assert_eq!(statuses(&s, "deploy"), [Complete; 2]);
    // A decommissioned broker that crashes before it is killed is not recovered.
    let store = s.into_persister();
    let s = scheduler(
        &kafka(r#"{"brokers":{"count":2,"allow_decommission":true}}"#),
        store,
        11,
    );
    assert!(s.plan("recovery").unwrap().phases.is_empty());
}
