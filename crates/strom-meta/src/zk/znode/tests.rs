//! The codecs against the exact strings Kafka 2.x/3.x brokers and tools write (captured from
//! running clusters: `zookeeper-shell get …`), and against malformed data.

use super::*;

/// `encoded` holds the same JSON value as Kafka's `kafka` text (key order aside).
fn assert_same_json(encoded: &[u8], kafka: &str) {
    let ours: Value = serde_json::from_slice(encoded).unwrap();
    let theirs: Value = serde_json::from_str(kafka).unwrap();
    assert_eq!(ours, theirs, "ours: {}", String::from_utf8_lossy(encoded));
}

fn plaintext(host: &str, port: u16) -> Endpoint {
    Endpoint {
        listener: "PLAINTEXT".into(),
        security_protocol: "PLAINTEXT".into(),
        host: host.into(),
        port,
    }
}

#[test]
fn broker_v5_as_kafka_3_writes_it() {
    let kafka = r#"{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":["PLAINTEXT://localhost:9091"],"jmx_port":-1,"port":9091,"host":"localhost","version":5,"timestamp":"1707276552023"}"#;
    let decoded = decode_broker(101, kafka.as_bytes()).unwrap();
    let registration = BrokerRegistration {
        id: 101,
        endpoints: vec![plaintext("localhost", 9091)],
        rack: None,
    };
    assert_eq!(
        decoded,
        BrokerZnode {
            registration: registration.clone(),
            version: 5,
            jmx_port: -1,
            timestamp_ms: Some(1_707_276_552_023),
        }
    );
    assert_same_json(&encode_broker(&registration, -1, 1_707_276_552_023), kafka);
}

#[test]
fn broker_with_named_listeners_and_rack() {
    let kafka = r#"{"features":{},"listener_security_protocol_map":{"CONTROLPLANE-9090":"SSL","REPLICATION-9091":"SSL","PLAIN-9092":"PLAINTEXT"},"endpoints":["CONTROLPLANE-9090://k0.brokers.svc:9090","REPLICATION-9091://k0.brokers.svc:9091","PLAIN-9092://k0.brokers.svc:9092"],"jmx_port":-1,"port":9092,"host":"k0.brokers.svc","version":5,"timestamp":"1710691902130","rack":"zone-a"}"#;
    let decoded = decode_broker(0, kafka.as_bytes()).unwrap().registration;
    let endpoint = |listener: &str, protocol: &str, port| Endpoint {
        listener: listener.into(),
        security_protocol: protocol.into(),
        host: "k0.brokers.svc".into(),
        port,
    };
    let expected = BrokerRegistration {
        id: 0,
        endpoints: vec![
            endpoint("CONTROLPLANE-9090", "SSL", 9090),
            endpoint("REPLICATION-9091", "SSL", 9091),
            endpoint("PLAIN-9092", "PLAINTEXT", 9092),
        ],
        rack: Some("zone-a".into()),
    };
    assert_eq!(decoded, expected);
    // The top-level host and port are the first PLAINTEXT endpoint's, as in Kafka's text.
    assert_same_json(&encode_broker(&expected, -1, 1_710_691_902_130), kafka);
}

#[test]
fn broker_without_plaintext_listener_writes_null_host() {
    let registration = BrokerRegistration {
        id: 3,
        endpoints: vec![Endpoint {
            listener: "SECURE".into(),
            security_protocol: "SSL".into(),
            host: "::1".into(),
            port: 9093,
        }],
        rack: None,
    };
    let encoded = encode_broker(&registration, 9999, 5);
    assert_same_json(
        &encoded,
        r#"{"version":5,"host":null,"port":-1,"endpoints":["SECURE://[::1]:9093"],"listener_security_protocol_map":{"SECURE":"SSL"},"jmx_port":9999,"timestamp":"5","features":{}}"#,
    );
    assert_eq!(
        decode_broker(3, &encoded).unwrap().registration,
        registration
    );
}

#[test]
fn broker_versions_1_to_4() {
    let v1 =
        r#"{"jmx_port":-1,"timestamp":"1445518677618","host":"1.2.3.4","version":1,"port":9092}"#;
    let decoded = decode_broker(7, v1.as_bytes()).unwrap();
    assert_eq!(
        decoded.registration.endpoints,
        vec![plaintext("1.2.3.4", 9092)]
    );
    assert_eq!(decoded.version, 1);

    // Version 2 (Kafka 0.9): listener names are the security protocols.
    let v2 = r#"{"jmx_port":-1,"timestamp":"1445518677618","endpoints":["PLAINTEXT://1.2.3.4:9092","SSL://1.2.3.4:9093"],"host":"1.2.3.4","version":2,"port":9092}"#;
    let endpoints = decode_broker(7, v2.as_bytes())
        .unwrap()
        .registration
        .endpoints;
    assert_eq!(endpoints[1].security_protocol, "SSL");
    assert_eq!(endpoints[1].port, 9093);

    let v4 = r#"{"listener_security_protocol_map":{"CLIENT":"PLAINTEXT"},"endpoints":["CLIENT://[::1]:9092"],"rack":"dc1","jmx_port":9999,"host":null,"timestamp":"1","port":-1,"version":4}"#;
    let decoded = decode_broker(7, v4.as_bytes()).unwrap();
    assert_eq!(decoded.registration.endpoints[0].host, "::1");
    assert_eq!(decoded.registration.rack.as_deref(), Some("dc1"));
    assert_eq!(decoded.jmx_port, 9999);

    // Brackets belong around an IPv6 address only; `[x]` would lose them when written back.
    for bracketed in [
        r#"{"version":1,"host":"[]","port":0}"#,
        r#"{"version":5,"endpoints":["PLAINTEXT://[[]]:0"]}"#,
        r#"{"version":5,"endpoints":["PLAINTEXT://a]:1"]}"#,
    ] {
        let err = decode_broker(7, bracketed.as_bytes()).unwrap_err();
        assert!(err.reason.contains("bracket"), "{bracketed}: {err}");
    }
}

#[test]
fn controller_versions_1_and_2() {
    let v2 = r#"{"version":2,"brokerid":0,"timestamp":"1685460739018","kraftControllerEpoch":-1}"#;
    assert_eq!(
        decode_controller(v2.as_bytes()).unwrap(),
        ControllerZnode {
            broker_id: 0,
            timestamp_ms: Some(1_685_460_739_018),
        }
    );
    assert_same_json(&encode_controller(0, 1_685_460_739_018), v2);
    let v1 = r#"{"version":1,"brokerid":2,"timestamp":"1445518677618"}"#;
    assert_eq!(decode_controller(v1.as_bytes()).unwrap().broker_id, 2);
}

#[test]
fn controller_epoch_is_plain_text() {
    assert_eq!(encode_controller_epoch(12), b"12");
    assert_eq!(decode_controller_epoch(b"12").unwrap(), 12);
    assert_eq!(decode_controller_epoch(b"0").unwrap(), 0);
    let err = decode_controller_epoch(b"twelve").unwrap_err();
    assert_eq!(err.path, "/controller_epoch");
}

#[test]
fn topic_assignment_version_3() {
    let kafka = r#"{"partitions":{"0":[2,3,1],"1":[3,1,2],"2":[1,2,3]},"topic_id":"cMr3GpVESX2L3byPGf93lQ","adding_replicas":{},"removing_replicas":{},"version":3}"#;
    let decoded = decode_topic_assignment("demo", kafka.as_bytes()).unwrap();
    assert_eq!(decoded.partitions[&0], vec![2, 3, 1]);
    assert_eq!(decoded.partitions[&2], vec![1, 2, 3]);
    assert_eq!(
        cluster_id_from_uuid(&decoded.topic_id),
        "cMr3GpVESX2L3byPGf93lQ"
    );
    assert_same_json(&encode_topic_assignment(&decoded), kafka);

    let single = r#"{"removing_replicas":{},"partitions":{"0":[0]},"topic_id":"ZOLr9CLNQjSW70hyIHx6BQ","adding_replicas":{},"version":3}"#;
    let decoded = decode_topic_assignment("test", single.as_bytes()).unwrap();
    assert_same_json(&encode_topic_assignment(&decoded), single);
}

#[test]
fn topic_assignment_before_topic_ids_and_during_reassignment() {
    let v1 = r#"{"version":1,"partitions":{"0":[0],"1":[1]}}"#;
    let decoded = decode_topic_assignment("ttt", v1.as_bytes()).unwrap();
    assert!(decoded.topic_id.is_nil());
    assert_eq!(decoded.partitions.len(), 2);
    let moving = r#"{"version":2,"partitions":{"0":[1,2,3]},"adding_replicas":{"0":[3]},"removing_replicas":{"0":[1]}}"#;
    let decoded = decode_topic_assignment("m", moving.as_bytes()).unwrap();
    assert_eq!(decoded.partitions[&0], vec![1, 2, 3]);
    assert_eq!(decoded.adding_replicas[&0], vec![3]);
    assert_eq!(decoded.removing_replicas[&0], vec![1]);
    assert!(decoded.is_reassigning(0));
    assert_eq!(decoded.target(0), vec![2, 3]);
    assert_eq!(decoded.original(0), vec![1, 2]);
    let encoded = encode_topic_assignment(&decoded);
    assert_eq!(decode_topic_assignment("m", &encoded).unwrap(), decoded);
    let outside = r#"{"version":2,"partitions":{"0":[1,2]},"adding_replicas":{"0":[3]}}"#;
    let err = decode_topic_assignment("m", outside.as_bytes()).unwrap_err();
    assert!(err.reason.contains("broker 3"), "{err}");
    let stray = r#"{"version":2,"partitions":{"0":[1]},"adding_replicas":{"5":[3]}}"#;
    let err = decode_topic_assignment("m", stray.as_bytes()).unwrap_err();
    assert!(err.reason.contains("partition 5"), "{err}");
    // Found by the znode_json fuzz target: a partition without replicas used to decode, then
    // vanish when written back.
    let empty = r#"{"partitions":{"0":[]},"replicas":{},"version":3}"#;
    let err = decode_topic_assignment("m", empty.as_bytes()).unwrap_err();
    assert!(err.reason.contains("partitions.0 has no replicas"), "{err}");
}

#[test]
fn kafka_uuid_text_round_trips_and_rejects_non_canonical() {
    for text in [
        "ZOLr9CLNQjSW70hyIHx6BQ",
        "AAAAAAAAAAAAAAAAAAAAAA",
        "_____________________w",
    ] {
        let uuid = decode_kafka_uuid(text).unwrap();
        assert_eq!(cluster_id_from_uuid(&uuid), text);
    }
    // The last symbol carries 4 unused bits, which must be zero.
    assert_eq!(decode_kafka_uuid("ZOLr9CLNQjSW70hyIHx6BR"), None);
    assert_eq!(decode_kafka_uuid("ZOLr9CLNQjSW70hyIHx6B"), None);
    assert_eq!(decode_kafka_uuid("ZOLr9CLNQjSW70hyIHx6B="), None);
    assert_eq!(decode_kafka_uuid("8a1f1c3e-0000-4000-8000"), None);
}

#[test]
fn partition_state_version_1() {
    let kafka = r#"{"controller_epoch":1,"leader":2,"version":1,"leader_epoch":0,"isr":[2,3,1]}"#;
    let tp = TopicPartition::new("demo", 0);
    let state = decode_partition_state(&tp, kafka.as_bytes()).unwrap();
    assert_eq!(
        state,
        LeaderAndIsr {
            leader: 2,
            leader_epoch: 0,
            isr: vec![2, 3, 1],
            controller_epoch: 1,
        }
    );
    assert_same_json(&encode_partition_state(&state), kafka);
    let recovering = r#"{"controller_epoch":12,"leader":-1,"version":1,"leader_epoch":8,"isr":[],"leader_recovery_state":1}"#;
    assert_eq!(
        decode_partition_state(&tp, recovering.as_bytes())
            .unwrap()
            .leader,
        -1
    );
}

#[test]
fn topic_config_and_change_notifications() {
    let kafka = r#"{"version":1,"config":{"retention.ms":"100000","cleanup.policy":"compact"}}"#;
    let config = decode_topic_config("my-topic", kafka.as_bytes()).unwrap();
    assert_eq!(config["retention.ms"], "100000");
    assert_same_json(&encode_topic_config(&config), kafka);
    assert!(decode_topic_config("t", b"").unwrap().is_empty());
    assert!(decode_topic_config("t", br#"{"version":1,"config":{}}"#)
        .unwrap()
        .is_empty());

    let change = r#"{"version":2,"entity_path":"topics/my-topic"}"#;
    assert_eq!(
        decode_config_change("config_change_0000000000", change.as_bytes()).unwrap(),
        "topics/my-topic"
    );
    assert_same_json(&encode_config_change("topics/my-topic"), change);
    let v1 = r#"{"version":1,"entity_type":"topics","entity_name":"old"}"#;
    assert_eq!(
        decode_config_change("config_change_0000000001", v1.as_bytes()).unwrap(),
        "topics/old"
    );
}

#[test]
fn isr_change_notification() {
    let kafka = r#"{"version":1,"partitions":[{"topic":"orders","partition":0},{"topic":"orders","partition":3}]}"#;
    let partitions = decode_isr_change("isr_change_0000000007", kafka.as_bytes()).unwrap();
    assert_eq!(
        partitions,
        vec![
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 3)
        ]
    );
    assert_same_json(&encode_isr_change(&partitions), kafka);
}

#[test]
fn cluster_id_and_producer_id_block() {
    let kafka = r#"{"version":"1","id":"Sfr7YvlkRHSHrmSrwq9mug"}"#;
    assert_eq!(
        decode_cluster_id(kafka.as_bytes()).unwrap(),
        "Sfr7YvlkRHSHrmSrwq9mug"
    );
    assert_same_json(&encode_cluster_id("Sfr7YvlkRHSHrmSrwq9mug"), kafka);

    let block = r#"{"version":1,"broker":0,"block_start":"0","block_end":"999"}"#;
    let decoded = decode_producer_id_block(block.as_bytes()).unwrap().unwrap();
    assert_eq!(
        decoded,
        ProducerIdBlock {
            broker: 0,
            first: 0,
            last: 999
        }
    );
    assert_same_json(&encode_producer_id_block(&decoded), block);
    assert_eq!(decode_producer_id_block(b"").unwrap(), None);
}

#[test]
fn malformed_data_is_an_error_naming_the_path() {
    let tp = TopicPartition::new("orders", 4);
    let cases: Vec<(Result<(), ZnodeError>, &str, &str)> = vec![
        (decode_partition_state(&tp, b"{").map(drop), "/brokers/topics/orders/partitions/4/state", "invalid JSON"),
        (decode_partition_state(&tp, b"[1]").map(drop), "/brokers/topics/orders/partitions/4/state", "not a JSON object"),
        (
            decode_partition_state(&tp, br#"{"version":1,"leader":1,"leader_epoch":0,"controller_epoch":1}"#).map(drop),
            "/brokers/topics/orders/partitions/4/state",
            "no isr",
        ),
        (
            decode_partition_state(&tp, br#"{"version":1,"leader":"1","leader_epoch":0,"isr":[1],"controller_epoch":1}"#).map(drop),
            "/brokers/topics/orders/partitions/4/state",
            "not an integer",
        ),
        (
            decode_partition_state(&tp, br#"{"version":1,"leader":1,"leader_epoch":0,"isr":[1,4294967296],"controller_epoch":1}"#).map(drop),
            "/brokers/topics/orders/partitions/4/state",
            "not a 32-bit integer",
        ),
        (decode_partition_state(&tp, br#"{"version":2}"#).map(drop), "/brokers/topics/orders/partitions/4/state", "version 2"),
        (decode_broker(5, b"").map(drop), "/brokers/ids/5", "no data"),
        (
            decode_broker(5, br#"{"version":5,"endpoints":["PLAINTEXT://h:70000"],"jmx_port":-1}"#).map(drop),
            "/brokers/ids/5",
            "outside 0..=65535",
        ),
        (
            decode_broker(5, br#"{"version":5,"endpoints":["INTERNAL://h:9092"],"listener_security_protocol_map":{},"jmx_port":-1}"#).map(drop),
            "/brokers/ids/5",
            "no security protocol",
        ),
        (decode_broker(5, br#"{"version":5,"endpoints":["h:9092"]}"#).map(drop), "/brokers/ids/5", "no `://`"),
        (decode_broker(5, br#"{"version":0}"#).map(drop), "/brokers/ids/5", "unsupported"),
        (decode_topic_assignment("orders", br#"{"version":3,"partitions":{"x":[1]}}"#).map(drop), "/brokers/topics/orders", "not a partition index"),
        (decode_topic_assignment("orders", br#"{"version":3,"topic_id":"nope","partitions":{}}"#).map(drop), "/brokers/topics/orders", "not a Kafka Uuid"),
        (decode_topic_config("orders", br#"{"version":1,"config":{"a":1}}"#).map(drop), "/config/topics/orders", "config.a is not a string"),
        (decode_isr_change("isr_change_1", br#"{"version":1,"partitions":[3]}"#).map(drop), "/isr_change_notification/isr_change_1", "partitions[0]"),
        (decode_cluster_id(br#"{"version":"1"}"#).map(drop), "/cluster/id", "no id"),
        (
            decode_producer_id_block(br#"{"version":1,"broker":0,"block_start":"10","block_end":"9"}"#).map(drop),
            "/latest_producer_id_block",
            "not a range",
        ),
        (
            decode_producer_id_block(br#"{"version":1,"broker":0,"block_start":"0","block_end":"99999999999999999999"}"#).map(drop),
            "/latest_producer_id_block",
            "not a 64-bit integer",
        ),
        (decode_controller(br#"{"version":2}"#).map(drop), "/controller", "no brokerid"),
    ];
    for (outcome, path, reason) in cases {
        let err = outcome.expect_err(path);
        assert_eq!(err.path, path, "{err}");
        assert!(err.reason.contains(reason), "{err} lacks {reason:?}");
        assert!(
            err.to_string().starts_with(&format!("znode {path}: ")),
            "{err}"
        );
    }
}
