use std::collections::BTreeMap;

use super::*;
use crate::offer::Previous;
use crate::spec::kafka::render_kafka_service;
use crate::task::PodInstance;

fn spec(options: &str) -> ServiceSpec {
    let env: BTreeMap<String, String> =
        [("STROM_BIN", "strom"), ("KAFKA_ZOOKEEPER_URI", "zk:2181")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    render_kafka_service(options, &env).unwrap().spec
}

fn offer(id: &str, agent: &str, resources: Vec<Resource>) -> Offer {
    Offer {
        id: id.into(),
        agent_id: agent.into(),
        hostname: format!("host-{agent}"),
        ip: "127.0.0.1".into(),
        zone: Some("zone-a".into()),
        region: None,
        attributes: BTreeMap::new(),
        resources,
    }
}

fn big_offer(id: &str, agent: &str) -> Offer {
    offer(
        id,
        agent,
        vec![
            Resource::scalar("cpus", 4.0),
            Resource::scalar("mem", 8192.0),
            Resource::disk(10_000.0, DiskSource::Root),
            Resource::ports(&[(31000, 31010)]),
        ],
    )
}

fn counter() -> impl FnMut() -> Uuid {
    let mut next = 100u128;
    move || {
        next += 1;
        Uuid::from_u128(next)
    }
}

fn requirement(index: u32, previous: Option<Previous>) -> PodRequirement {
    PodRequirement {
        instance: PodInstance::new("kafka", index),
        tasks: vec!["broker".into()],
        previous,
        paused: false,
    }
}

const CONFIG: Uuid = Uuid::from_u128(7);

fn run(
    spec: &ServiceSpec,
    placed: &[PlacedInstance],
    requirement: &PodRequirement,
    offer: &Offer,
) -> (OfferOutcome, Option<Accepted>) {
    let context = EvaluationContext {
        spec,
        config_id: CONFIG,
        role: "kafka-role",
        placed,
    };
    evaluate(&context, requirement, offer, &mut counter())
}

fn previous_of(accepted: &Accepted) -> Previous {
    Previous {
        agent_id: accepted.tasks[0].agent_id.clone(),
        task_resources: BTreeMap::from([(
            "broker".to_string(),
            accepted.tasks[0].resources.clone(),
        )]),
    }
}

/// The offer the agent would make after the task stopped: its reservations come back.
fn offer_with_reservations(id: &str, agent: &str, accepted: &Accepted) -> Offer {
    let mut resources = vec![
        Resource::scalar("cpus", 3.0),
        Resource::scalar("mem", 6144.0),
    ];
    resources.extend(accepted.tasks[0].resources.iter().cloned());
    offer(id, agent, resources)
}

#[test]
fn a_first_launch_reserves_creates_and_launches() {
    let spec = spec("");
    let (outcome, accepted) = run(&spec, &[], &requirement(1, None), &big_offer("o1", "a1"));
    assert!(outcome.passed(), "{outcome}");
    assert_eq!(
        outcome.stages.iter().map(|s| s.stage).collect::<Vec<_>>(),
        crate::offer::STAGES
    );
    let accepted = accepted.unwrap();
    let types: Vec<&str> = accepted
        .operations
        .iter()
        .map(Operation::type_name)
        .collect();
    assert_eq!(types, ["reserve", "create", "launch_group"]);
    let Operation::Reserve { resources } = &accepted.operations[0] else {
        unreachable!()
    };
    let names: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["cpus", "mem", "ports", "disk"]);
    assert!(resources
        .iter()
        .all(|r| r.reservation.as_ref().unwrap().role == "kafka-role"));
    assert_eq!(resources[0].amount(), 1.0);
    assert_eq!(resources[3].amount(), 5000.0);
    let task = &accepted.tasks[0];
    assert_eq!(task.name, "kafka-1-broker");
    assert!(task.task_id.starts_with("kafka-1-broker__"));
    assert_eq!(task.config_id, CONFIG);
    assert_eq!(task.ports["broker"], 31000);
    assert_eq!(task.env["KAFKA_BROKER_PORT"], "31000");
    assert_eq!(task.env["POD_INSTANCE_INDEX"], "1");
    assert_eq!(task.env["ZONE"], "zone-a");
    let properties = &task.files["kafka-config/server.properties"];
    assert!(properties.contains("broker.id=1\n"), "{properties}");
    assert!(properties.contains("listeners=PLAINTEXT://127.0.0.1:31000\n"));
    assert!(
        !properties.contains("broker.rack"),
        "no @zone rule, no rack"
    );
    let volume = task.resources.iter().find(|r| r.name == "disk").unwrap();
    let disk = volume.disk.as_ref().unwrap();
    assert_eq!(disk.container_path.as_deref(), Some("kafka-broker-data"));
    assert!(disk.persistence_id.is_some());
    let Operation::Create { volumes } = &accepted.operations[1] else {
        unreachable!()
    };
    assert_eq!(volumes, std::slice::from_ref(volume));
}

#[test]
fn a_short_offer_reports_every_failed_stage() {
    let spec = spec(r#"{"brokers":{"port":9092}}"#);
    let short = offer(
        "o2",
        "a1",
        vec![
            Resource::scalar("cpus", 0.5),
            Resource::scalar("mem", 8192.0),
            Resource::disk(100.0, DiskSource::Root),
            Resource::ports(&[(31000, 31010)]),
        ],
    );
    let (outcome, accepted) = run(&spec, &[], &requirement(0, None), &short);
    assert!(accepted.is_none());
    assert_eq!(
        outcome.to_string(),
        "offer o2 from host-a1 failed 4 of 7 evaluation stages for kafka-0: \
         cpus: broker needs 1 cpus, the offer has 0.5 unreserved; \
         ports: broker needs port 9092 (broker), which the offer lacks; \
         volume: needs a ROOT volume of 5000 MB, the offer has 100 MB of unreserved ROOT disk; \
         launch: an earlier stage failed"
    );
}

#[test]
fn placement_rules_see_the_placed_instances() {
    let spec = spec("");
    let placed = vec![PlacedInstance {
        pod: "kafka".into(),
        instance: "kafka-0".into(),
        hostname: "host-a1".into(),
        zone: None,
        region: None,
        attributes: BTreeMap::new(),
    }];
    let (outcome, _) = run(
        &spec,
        &placed,
        &requirement(1, None),
        &big_offer("o3", "a1"),
    );
    let failed: Vec<&str> = outcome
        .stages
        .iter()
        .filter(|s| !s.passed)
        .map(|s| s.stage)
        .collect();
    assert_eq!(failed, ["placement", "launch"]);
    let (outcome, _) = run(
        &spec,
        &placed,
        &requirement(1, None),
        &big_offer("o4", "a2"),
    );
    assert!(outcome.passed());
}

#[test]
fn a_relaunch_in_place_reuses_reservations_port_and_volume() {
    let spec = spec("");
    let (_, first) = run(&spec, &[], &requirement(0, None), &big_offer("o1", "a1"));
    let first = first.unwrap();
    let previous = previous_of(&first);
    let again = offer_with_reservations("o5", "a1", &first);
    let (outcome, accepted) = run(&spec, &[], &requirement(0, Some(previous.clone())), &again);
    assert!(outcome.passed(), "{outcome}");
    let accepted = accepted.unwrap();
    let types: Vec<&str> = accepted
        .operations
        .iter()
        .map(Operation::type_name)
        .collect();
    assert_eq!(types, ["launch_group"], "nothing new to reserve or create");
    let task = &accepted.tasks[0];
    assert_eq!(task.resources, first.tasks[0].resources);
    assert_eq!(task.ports["broker"], 31000);
    assert_ne!(
        task.task_id, first.tasks[0].task_id,
        "each launch has a new task id"
    );

    let elsewhere = offer_with_reservations("o6", "a2", &first);
    let (outcome, _) = run(
        &spec,
        &[],
        &requirement(0, Some(previous.clone())),
        &elsewhere,
    );
    assert!(!outcome.stages[0].passed);
    assert_eq!(
        outcome.stages[0].reason,
        "kafka-0's reservations and volume are on agent a1"
    );

    let without_volume = big_offer("o7", "a1");
    let (outcome, _) = run(&spec, &[], &requirement(0, Some(previous)), &without_volume);
    let volume = outcome.stages.iter().find(|s| s.stage == "volume").unwrap();
    assert!(!volume.passed);
    assert!(volume
        .reason
        .starts_with("the offer does not hold kafka-0's volume kafka-broker-data"));
}

#[test]
fn a_resized_task_reserves_the_difference_anew() {
    let (_, first) = run(
        &spec(""),
        &[],
        &requirement(0, None),
        &big_offer("o1", "a1"),
    );
    let first = first.unwrap();
    let bigger = spec(r#"{"brokers":{"cpus":2}}"#);
    let again = offer_with_reservations("o8", "a1", &first);
    let (outcome, accepted) = run(
        &bigger,
        &[],
        &requirement(0, Some(previous_of(&first))),
        &again,
    );
    assert!(outcome.passed(), "{outcome}");
    let accepted = accepted.unwrap();
    let Operation::Reserve { resources } = &accepted.operations[0] else {
        panic!("{:?}", accepted.operations)
    };
    assert_eq!(resources.len(), 1);
    assert_eq!(
        (resources[0].name.as_str(), resources[0].amount()),
        ("cpus", 2.0)
    );
    let mem = accepted.tasks[0]
        .resources
        .iter()
        .find(|r| r.name == "mem")
        .unwrap();
    let old_mem = first.tasks[0]
        .resources
        .iter()
        .find(|r| r.name == "mem")
        .unwrap();
    assert_eq!(
        mem.resource_id(),
        old_mem.resource_id(),
        "memory reservation reused"
    );
}

#[test]
fn mount_volumes_take_the_smallest_whole_disk_that_fits() {
    let spec = spec(r#"{"brokers":{"disk_type":"MOUNT"}}"#);
    let mount =
        |size: f64, root: &str| Resource::disk(size, DiskSource::Mount { root: root.into() });
    let offer = offer(
        "o9",
        "a1",
        vec![
            Resource::scalar("cpus", 4.0),
            Resource::scalar("mem", 8192.0),
            Resource::disk(100_000.0, DiskSource::Root),
            mount(3000.0, "/mnt/d1"),
            mount(8000.0, "/mnt/d2"),
            mount(6000.0, "/mnt/d3"),
            Resource::ports(&[(31000, 31010)]),
        ],
    );
    let (outcome, accepted) = run(&spec, &[], &requirement(0, None), &offer);
    assert!(outcome.passed(), "{outcome}");
    let task = &accepted.unwrap().tasks[0];
    let volume = task.resources.iter().find(|r| r.name == "disk").unwrap();
    assert_eq!(volume.amount(), 6000.0, "a MOUNT disk is used whole");
    assert_eq!(
        volume.disk.as_ref().unwrap().source,
        DiskSource::Mount {
            root: "/mnt/d3".into()
        }
    );
}

#[test]
fn zone_rules_make_the_zone_the_broker_rack() {
    let spec = spec(r#"{"service":{"placement_constraint":"[[\"@zone\",\"GROUP_BY\",\"3\"]]"}}"#);
    let (outcome, accepted) = run(&spec, &[], &requirement(2, None), &big_offer("o10", "a1"));
    assert!(outcome.passed(), "{outcome}");
    let properties = &accepted.unwrap().tasks[0].files["kafka-config/server.properties"];
    assert!(properties.contains("broker.rack=zone-a\n"), "{properties}");
}

#[test]
fn a_mount_volume_never_takes_root_disk_and_says_what_mounts_there_are() {
    let spec = spec(r#"{"brokers":{"disk_type":"MOUNT","disk":5000}}"#);
    let mount =
        |size: f64, root: &str| Resource::disk(size, DiskSource::Mount { root: root.into() });
    let base = || {
        vec![
            Resource::scalar("cpus", 4.0),
            Resource::scalar("mem", 8192.0),
            Resource::disk(100_000.0, DiskSource::Root),
            Resource::ports(&[(31000, 31010)]),
        ]
    };
    let volume_stage = |outcome: &crate::offer::OfferOutcome| {
        outcome
            .stages
            .iter()
            .find(|s| s.stage == "volume")
            .unwrap()
            .clone()
    };
    let (outcome, accepted) = run(
        &spec,
        &[],
        &requirement(0, None),
        &offer("o1", "a1", base()),
    );
    assert!(accepted.is_none());
    assert_eq!(
        volume_stage(&outcome).reason,
        "needs a MOUNT volume of 5000 MB, the offer has no unreserved MOUNT disk"
    );
    let mut resources = base();
    resources.extend([mount(3000.0, "/mnt/d1"), mount(4000.0, "/mnt/d2")]);
    let (outcome, accepted) = run(
        &spec,
        &[],
        &requirement(0, None),
        &offer("o2", "a1", resources),
    );
    assert!(accepted.is_none());
    assert_eq!(
        volume_stage(&outcome).reason,
        "needs a MOUNT volume of 5000 MB, the offer's largest unreserved MOUNT disk has 4000 MB"
    );

    // The volume is reserved and created on the whole disk, and a relaunch in place finds it.
    let mut resources = base();
    resources.push(mount(6000.0, "/mnt/d3"));
    let (outcome, accepted) = run(
        &spec,
        &[],
        &requirement(0, None),
        &offer("o3", "a1", resources),
    );
    assert!(outcome.passed(), "{outcome}");
    let accepted = accepted.unwrap();
    let created = accepted
        .operations
        .iter()
        .find_map(|op| match op {
            Operation::Create { volumes } => Some(volumes[0].clone()),
            _ => None,
        })
        .expect("a CREATE");
    assert_eq!(created.amount(), 6000.0);
    let previous = Previous {
        agent_id: "a1".into(),
        task_resources: [("broker".to_string(), accepted.tasks[0].resources.clone())].into(),
    };
    let mut resources = base();
    resources.extend(accepted.tasks[0].resources.iter().cloned());
    let (outcome, again) = run(
        &spec,
        &[],
        &requirement(0, Some(previous)),
        &offer("o4", "a1", resources),
    );
    assert!(outcome.passed(), "{outcome}");
    let volume = again.unwrap().tasks[0]
        .resources
        .iter()
        .find(|r| r.name == "disk")
        .unwrap()
        .clone();
    assert_eq!(
        volume.resource_id(),
        created.resource_id(),
        "the same MOUNT volume"
    );
}
