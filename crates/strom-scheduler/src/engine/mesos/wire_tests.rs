//! Tests of the JSON conversions (see wire.rs).

use serde_json::json;

use super::*;

#[test]
fn offers_keep_our_reservations_and_drop_what_we_cannot_use() {
    let id = Uuid::new_v4();
    let ours = json!({"type": "DYNAMIC", "role": "kafka-role", "principal": "p",
                      "labels": {"labels": [{"key": "resource_id", "value": id.to_string()}]}});
    let event = json!({"type": "OFFERS", "offers": {"offers": [{
        "id": {"value": "o-1"}, "agent_id": {"value": "a-1"}, "hostname": "h1",
        "domain": {"fault_domain": {"region": {"name": "r"}, "zone": {"name": "z"}}},
        "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
                       {"name": "gen", "type": "SCALAR", "scalar": {"value": 3.0}}],
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.5}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 100.0}, "reservations": [ours]},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 50.0},
             "reservations": [ours],
             "disk": {"source": {"type": "MOUNT", "mount": {"root": "/mnt/d1"}},
                      "persistence": {"id": "v-1"},
                      "volume": {"mode": "RW", "container_path": "data"}}},
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0},
             "reservations": [{"type": "STATIC", "role": "other"}]},
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "revocable": {}},
            {"name": "gpus", "type": "SET", "set": {"item": ["a"]}},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 70000, "end": 70001}]}},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31005}]}},
        ],
    }]}});
    let Event::Offers(offers) = parse_event(event.to_string().as_bytes()).unwrap() else {
        panic!()
    };
    let offer = &offers[0];
    assert_eq!((offer.id.as_str(), offer.agent_id.as_str()), ("o-1", "a-1"));
    assert_eq!(offer.ip, "h1", "no url: the hostname");
    assert_eq!(
        (offer.zone.as_deref(), offer.region.as_deref()),
        (Some("z"), Some("r"))
    );
    assert_eq!(offer.attributes["rack"], "r1");
    assert_eq!(offer.attributes["gen"], "3");
    let names: Vec<&str> = offer.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["cpus", "mem", "disk", "ports"]);
    assert_eq!(offer.resources[1].resource_id(), Some(id));
    assert_eq!(
        offer.resources[1].reservation.as_ref().unwrap().principal,
        "p"
    );
    let disk = offer.resources[2].disk.as_ref().unwrap();
    assert_eq!(
        disk.source,
        DiskSource::Mount {
            root: "/mnt/d1".into()
        }
    );
    assert_eq!(disk.persistence_id.as_deref(), Some("v-1"));
    assert_eq!(disk.container_path.as_deref(), Some("data"));
    // Round trip of a reserved volume through resource_json.
    let json = resource_json(&offer.resources[2], "kafka-role");
    assert_eq!(parse_resource(&json).as_ref(), Some(&offer.resources[2]));
}

#[test]
fn scalars_beyond_what_rounds_to_thousandths_are_not_taken() {
    let scalar = |value: f64| json!({"name": "mem", "type": "SCALAR", "scalar": {"value": value}});
    // 1e306 * 1000 overflows to infinity, which JSON writes as null: found by mesos_events.
    for refused in [1e306, 1e13, -1.0] {
        assert_eq!(parse_resource(&scalar(refused)), None, "{refused}");
    }
    for amount in [1e12, 123_456_789.123, 0.001, 0.0] {
        let parsed = parse_resource(&scalar(amount)).unwrap();
        let again = parse_resource(&resource_json(&parsed, "r")).unwrap();
        assert_eq!(again, parsed, "{amount}");
    }
}

#[test]
fn updates_subscribed_and_errors() {
    let update = json!({"type": "UPDATE", "update": {"status": {
        "task_id": {"value": "kafka-0-broker__x"}, "agent_id": {"value": "a"},
        "state": "TASK_RUNNING", "uuid": "AAEC", "healthy": true,
        "reason": "REASON_TASK_CHECK_STATUS_UPDATED",
        "check_status": {"type": "COMMAND", "command": {"exit_code": 0}}}}});
    let Event::Update(update) = parse_event(update.to_string().as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(update.status.state, TaskState::Running);
    assert_eq!(update.status.uuid.as_deref(), Some("AAEC"));
    assert_eq!(update.status.message, "REASON_TASK_CHECK_STATUS_UPDATED");
    assert_eq!(
        (update.check_exit_code, update.healthy),
        (Some(0), Some(true))
    );
    let subscribed = br#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"f"},
        "heartbeat_interval_seconds":15}}"#;
    assert_eq!(
        parse_event(subscribed).unwrap(),
        Event::Subscribed {
            framework_id: "f".into(),
            heartbeat_interval_ms: Some(15_000)
        }
    );
    let error = br#"{"type":"ERROR","error":{"message":"no"}}"#;
    assert_eq!(
        parse_event(error).unwrap(),
        Event::Error {
            message: "no".into()
        }
    );
    assert_eq!(
        parse_event(br#"{"type":"INVERSE_OFFERS"}"#).unwrap(),
        Event::Other("INVERSE_OFFERS".into())
    );
    for bad in [
        &br#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"t"},"state":"TASK_NOPE"}}}"#[..],
        br#"{"type":"SUBSCRIBED","subscribed":{}}"#,
        br#"{"type":"OFFERS","offers":{"offers":[{"id":{"value":"o"}}]}}"#,
        br#"{"type":"RESCIND"}"#,
        br#"[1,2]"#,
        b"\xff\xfe",
        br#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"f"},"heartbeat_interval_seconds":1e308}}"#,
    ] {
        let outcome = parse_event(bad);
        if bad.starts_with(br#"{"type":"SUBSCRIBED","subscribed":{"framework_id"#) {
            assert!(outcome.is_ok(), "a huge heartbeat is capped");
        } else {
            assert!(outcome.is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}

#[test]
fn files_are_written_by_the_command_with_safe_quoting() {
    let mut files = BTreeMap::new();
    files.insert(
        "conf/a b.properties".to_string(),
        "x='1'\n$HOME `id`".to_string(),
    );
    let info = TaskInfo {
        name: "kafka-0-broker".into(),
        task_id: "kafka-0-broker__u".into(),
        instance: crate::task::PodInstance::new("kafka", 0),
        task: "broker".into(),
        goal: crate::spec::Goal::Running,
        config_id: Uuid::nil(),
        agent_id: "a".into(),
        hostname: "h".into(),
        zone: None,
        resources: vec![],
        ports: BTreeMap::new(),
        env: BTreeMap::new(),
        cmd: "exec run".into(),
        files,
        secrets: vec![],
        permanently_failed: false,
        paused: false,
    };
    let command = task_command(&info);
    let dir = std::env::temp_dir().join(format!("strom-wire-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command.replace("exec run", "true"))
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "{command}");
    let written = std::fs::read_to_string(dir.join("conf/a b.properties")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(written, "x='1'\n$HOME `id`");
    assert!(command.ends_with("exec run"));
}

#[test]
fn disk_info_counts_only_on_disk_resources() {
    // Found by the mesos_events fuzz target: `disk: {}` on a resource not named "disk" was
    // kept as a ROOT DiskInfo that resource_json then left out, so the offer did not survive
    // its own round trip.
    let odd = json!({"name": "di3k", "type": "SCALAR", "scalar": {"value": 50.0}, "disk": {}});
    let parsed = parse_resource(&odd).unwrap();
    assert_eq!(parsed.disk, None);
    assert_eq!(
        parse_resource(&resource_json(&parsed, "r")).as_ref(),
        Some(&parsed)
    );
    let root = json!({"name": "disk", "type": "SCALAR", "scalar": {"value": 50.0}, "disk": {}});
    let parsed = parse_resource(&root).unwrap();
    assert_eq!(
        parsed.disk.as_ref().map(|d| &d.source),
        Some(&DiskSource::Root)
    );
    assert_eq!(
        parse_resource(&resource_json(&parsed, "r")).as_ref(),
        Some(&parsed)
    );
}
