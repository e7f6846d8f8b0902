use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::validate::*;
use super::*;
use crate::spec::kafka::render_kafka_service;
use crate::store::MemPersister;

fn spec(options: &str) -> ServiceSpec {
    let env: BTreeMap<String, String> = [("STROM_BIN", "strom"), ("KAFKA_ZOOKEEPER_URI", "zk")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    render_kafka_service(options, &env).unwrap().spec
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn messages(outcome: &UpdateOutcome) -> Vec<String> {
    outcome.errors.iter().map(ToString::to_string).collect()
}

#[test]
fn first_install_sets_the_target() {
    let mut store = MemPersister::new();
    let outcome = update(
        &mut store,
        &spec(""),
        id(1),
        &default_validators(),
        &BTreeSet::new(),
    )
    .unwrap();
    assert!(outcome.changed && outcome.errors.is_empty());
    assert_eq!(target_id(&store).unwrap(), Some(id(1)));
    assert_eq!(target(&store).unwrap().unwrap().1, spec(""));
    assert_eq!(ids(&store).unwrap(), [id(1)]);
}

#[test]
fn an_equal_spec_keeps_the_target_id() {
    let mut store = MemPersister::new();
    let validators = default_validators();
    update(&mut store, &spec(""), id(1), &validators, &BTreeSet::new()).unwrap();
    let outcome = update(&mut store, &spec(""), id(2), &validators, &BTreeSet::new()).unwrap();
    assert!(!outcome.changed);
    assert_eq!(outcome.target_id, Some(id(1)));
    assert_eq!(ids(&store).unwrap(), [id(1)]);
}

#[test]
fn a_new_spec_becomes_the_target_and_unused_configs_are_collected() {
    let mut store = MemPersister::new();
    let validators = default_validators();
    update(&mut store, &spec(""), id(1), &validators, &BTreeSet::new()).unwrap();
    let in_use = BTreeSet::from([id(1)]);
    let outcome = update(
        &mut store,
        &spec(r#"{"kafka":{"num_partitions":3}}"#),
        id(2),
        &validators,
        &in_use,
    )
    .unwrap();
    assert!(outcome.changed);
    assert!(
        outcome.equivalent_pods.is_empty(),
        "the broker spec changed"
    );
    assert_eq!(
        ids(&store).unwrap(),
        [id(1), id(2)],
        "config 1 is still used by tasks"
    );
    let outcome = update(
        &mut store,
        &spec(r#"{"kafka":{"num_partitions":3},"brokers":{"count":4}}"#),
        id(3),
        &validators,
        &BTreeSet::from([id(2)]),
    )
    .unwrap();
    assert_eq!(
        outcome.equivalent_pods,
        BTreeSet::from(["kafka".to_string()])
    );
    assert_eq!(ids(&store).unwrap(), [id(2), id(3)]);
    assert_eq!(target_id(&store).unwrap(), Some(id(3)));
}

#[test]
fn a_refused_update_keeps_the_old_target() {
    let mut store = MemPersister::new();
    let validators = default_validators();
    update(&mut store, &spec(""), id(1), &validators, &BTreeSet::new()).unwrap();
    let outcome = update(
        &mut store,
        &spec(r#"{"brokers":{"count":2,"disk":6000}}"#),
        id(2),
        &validators,
        &BTreeSet::new(),
    )
    .unwrap();
    assert!(!outcome.changed);
    assert_eq!(outcome.target_id, Some(id(1)));
    assert_eq!(
        messages(&outcome),
        [
            "Field: 'pods.kafka.count'; Value: '2'; Message: 'Pod count may not shrink from 3 to 2 unless allow-decommission is true'",
            "Field: 'pods.kafka.volume'; Value: 'volume=kafka-broker-data:ROOT:6000MB'; Message: 'Volumes may not change (they are reserved on the agents); keep volume=kafka-broker-data:ROOT:5000MB'",
        ]
    );
    assert_eq!(target_id(&store).unwrap(), Some(id(1)));
    assert_eq!(
        ids(&store).unwrap(),
        [id(1)],
        "the refused config is not stored"
    );
}

#[test]
fn shrinking_is_allowed_with_allow_decommission() {
    let mut store = MemPersister::new();
    let validators = default_validators();
    update(&mut store, &spec(""), id(1), &validators, &BTreeSet::new()).unwrap();
    let outcome = update(
        &mut store,
        &spec(r#"{"brokers":{"count":2,"allow_decommission":true}}"#),
        id(2),
        &validators,
        &BTreeSet::new(),
    )
    .unwrap();
    assert!(outcome.changed, "{:?}", messages(&outcome));
}

#[test]
fn zone_rules_may_not_be_switched_on_or_off() {
    let old = spec("");
    let zoned = spec(r#"{"service":{"placement_constraint":"[[\"@zone\",\"GROUP_BY\",\"3\"]]"}}"#);
    let errors = ZoneRulesCannotChange.validate(Some(&old), &zoned);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].validator, "KafkaZoneValidator");
    assert!(
        errors[0]
            .message
            .starts_with("@zone placement may not be added"),
        "{}",
        errors[0]
    );
    assert!(ZoneRulesCannotChange.validate(Some(&zoned), &old)[0]
        .message
        .contains("removed"));
    assert!(ZoneRulesCannotChange
        .validate(Some(&zoned), &zoned)
        .is_empty());
    assert!(
        ZoneRulesCannotChange.validate(None, &zoned).is_empty(),
        "first install"
    );
    // Other hostname rules may change freely.
    let unique = spec(r#"{"service":{"placement_constraint":"[[\"hostname\",\"UNIQUE\"]]"}}"#);
    assert!(default_validators()
        .iter()
        .all(|v| v.validate(Some(&old), &unique).is_empty()));
}

#[test]
fn names_that_break_dns_or_state_roots_are_refused() {
    let bad = spec(r#"{"service":{"name":"Kafka__prod"}}"#);
    let errors: Vec<_> = default_validators()
        .iter()
        .flat_map(|v| v.validate(None, &bad))
        .map(|e| e.validator)
        .collect();
    assert_eq!(
        errors,
        [
            "ServiceNameCannotContainDoubleUnderscores",
            "ServiceNameCannotBreakDNS"
        ]
    );
    let folder = spec(r#"{"service":{"name":"/team/kafka"}}"#);
    assert!(ServiceNameCannotBreakDns.validate(None, &folder).is_empty());
}

#[test]
fn user_and_removed_pod_changes_are_refused() {
    let old = spec("");
    let other_user = spec(r#"{"service":{"user":"kafka"}}"#);
    let errors = UserCannotChange.validate(Some(&old), &other_user);
    assert_eq!(errors[0].field, "scheduler.user");
    let mut removed = old.clone();
    removed.pods = crate::spec::OrderedMap::default();
    let errors = PodSpecsCannotShrink.validate(Some(&old), &removed);
    assert_eq!(errors[0].field, "pods.kafka");
}

#[test]
fn a_corrupt_target_is_reported_with_its_path() {
    let mut store = MemPersister::new();
    store.set(TARGET_PATH, b"not-a-uuid".to_vec()).unwrap();
    assert_eq!(
        target(&store).unwrap_err().to_string(),
        "state store: ConfigTarget is corrupt: not a uuid"
    );
    store
        .set(TARGET_PATH, id(7).to_string().into_bytes())
        .unwrap();
    assert!(target(&store)
        .unwrap_err()
        .to_string()
        .contains("which is not stored"));
}
