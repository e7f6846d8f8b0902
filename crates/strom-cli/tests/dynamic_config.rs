//! Dynamic broker configuration on a single node: `strom config set/delete/describe` against a
//! real broker, the sources DescribeConfigs reports, Kafka's refusal of read-only keys, the
//! effect without a restart (a produce larger than `message.max.bytes` fails and succeeds as
//! the dynamic value changes), the topic defaults following, and the values surviving a
//! restart.

mod common;

use std::process::{Command, Output};

use common::cluster::produce_acks_all;
use common::{create_topic, RawClient, TestBroker};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::protocol::StrBytes;

const MESSAGE_TOO_LARGE: i16 = 10;

fn strom(bootstrap: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["--brokers", bootstrap])
        .args(args)
        .output()
        .expect("run strom")
}

fn ok(bootstrap: &str, args: &[&str]) -> String {
    let output = strom(bootstrap, args);
    assert!(
        output.status.success(),
        "strom {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `config describe --json` of broker 0: (name → (value, source, synonyms as (source, value))).
fn describe(bootstrap: &str, key: &str) -> (String, String, Vec<(String, String)>) {
    let text = ok(
        bootstrap,
        &[
            "--json", "config", "describe", "--broker", "0", "--key", key,
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    let row = &rows[0];
    assert_eq!(row["name"], key, "{text}");
    let synonyms = row["synonyms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_string(),
                s["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    (
        row["value"].as_str().unwrap_or("").to_string(),
        row["source"].as_str().unwrap().to_string(),
        synonyms,
    )
}

/// A topic key's (value, source) as DescribeConfigs answers it.
fn topic_config(bootstrap: &str, topic: &str, key: &str) -> (String, i8) {
    let mut raw = RawClient::connect(bootstrap);
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = StrBytes::from_string(topic.to_string());
    resource.configuration_keys = Some(vec![StrBytes::from_string(key.to_string())]);
    let mut request = DescribeConfigsRequest::default();
    request.resources.push(resource);
    let response = raw.send(4, &request);
    let entry = &response.results[0].configs[0];
    (
        entry.value.as_ref().unwrap().to_string(),
        entry.config_source,
    )
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn set_describe_effect_refusal_and_restart() {
    let broker = TestBroker::start(&["message.max.bytes=2000"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "sized", 1, &[]);
    let big = vec![7u8; 5_000];
    let mut raw = RawClient::connect(&bootstrap);
    assert_eq!(produce_acks_all(&mut raw, "sized", &big), MESSAGE_TOO_LARGE);

    // A per-broker value applies at once.
    ok(
        &bootstrap,
        &["config", "set", "--broker", "0", "message.max.bytes=100000"],
    );
    assert_eq!(produce_acks_all(&mut raw, "sized", &big), 0);
    let (value, source, synonyms) = describe(&bootstrap, "message.max.bytes");
    assert_eq!(
        (value.as_str(), source.as_str()),
        ("100000", "DYNAMIC_BROKER_CONFIG")
    );
    assert_eq!(
        synonyms,
        [
            pair("DYNAMIC_BROKER_CONFIG", "100000"),
            pair("STATIC_BROKER_CONFIG", "2000"),
            pair("DEFAULT_CONFIG", "1048588"),
        ]
    );

    // The cluster default sits below the per-broker value; deleting that exposes it.
    ok(
        &bootstrap,
        &[
            "config",
            "set",
            "--cluster-default",
            "message.max.bytes=3000",
        ],
    );
    assert_eq!(produce_acks_all(&mut raw, "sized", &big), 0);
    ok(
        &bootstrap,
        &["config", "delete", "--broker", "0", "message.max.bytes"],
    );
    assert_eq!(produce_acks_all(&mut raw, "sized", &big), MESSAGE_TOO_LARGE);
    let (value, source, synonyms) = describe(&bootstrap, "message.max.bytes");
    assert_eq!(
        (value.as_str(), source.as_str()),
        ("3000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
    );
    assert_eq!(synonyms[0], pair("DYNAMIC_DEFAULT_BROKER_CONFIG", "3000"));
    assert_eq!(synonyms[1], pair("STATIC_BROKER_CONFIG", "2000"));

    // A topic without an override follows a new log default.
    ok(
        &bootstrap,
        &[
            "config",
            "set",
            "--cluster-default",
            "log.retention.ms=123456",
        ],
    );
    assert_eq!(
        topic_config(&bootstrap, "sized", "retention.ms"),
        ("123456".to_string(), 3)
    );

    // The table shows the source column.
    let table = ok(&bootstrap, &["config", "describe", "--broker", "0"]);
    assert!(table.contains("SOURCE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("message.max.bytes")
                && l.contains("DYNAMIC_DEFAULT_BROKER_CONFIG")),
        "{table}"
    );
    let defaults = ok(
        &bootstrap,
        &["--json", "config", "describe", "--cluster-default"],
    );
    let defaults: serde_json::Value = serde_json::from_str(&defaults).unwrap();
    let names: Vec<&str> = defaults
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["log.retention.ms", "message.max.bytes"]);

    // Read-only keys: Kafka's error and message, and nothing changes.
    let refused = strom(
        &bootstrap,
        &[
            "config",
            "set",
            "--broker",
            "0",
            "broker.id=5",
            "log.dirs=/x",
        ],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            "INVALID_REQUEST: Invalid config value for resource ConfigResource(type=BROKER, \
             name='0'): Cannot update these configs dynamically: Set(broker.id, log.dirs)"
        ),
        "{stderr}"
    );
    // A bad value names key, value and rule.
    let refused = strom(
        &bootstrap,
        &["config", "set", "--broker", "0", "message.max.bytes=lots"],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(
            "invalid value 'lots' for configuration 'message.max.bytes': must be an integer >= 0"
        ),
        "{stderr}"
    );
    // A rule spanning keys is checked on the merged configuration.
    let refused = strom(
        &bootstrap,
        &["config", "set", "--broker", "0", "log.retention.ms=0"],
    );
    assert!(!refused.status.success());

    // Everything survives a restart.
    drop(raw);
    let broker = broker.restart();
    let bootstrap = broker.bootstrap();
    let mut raw = RawClient::connect(&bootstrap);
    assert_eq!(produce_acks_all(&mut raw, "sized", &big), MESSAGE_TOO_LARGE);
    let (value, source, _) = describe(&bootstrap, "message.max.bytes");
    assert_eq!(
        (value.as_str(), source.as_str()),
        ("3000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
    );
    assert_eq!(
        topic_config(&bootstrap, "sized", "retention.ms"),
        ("123456".to_string(), 3)
    );
    ok(
        &bootstrap,
        &["config", "delete", "--cluster-default", "message.max.bytes"],
    );
    let (value, source, _) = describe(&bootstrap, "message.max.bytes");
    assert_eq!(
        (value.as_str(), source.as_str()),
        ("2000", "STATIC_BROKER_CONFIG")
    );
}
