//! Options JSON in the DC/OS package style, turned into the scheduler environment `svc.yml` is
//! rendered from (the job `marathon.json.mustache` did on DC/OS).
//!
//! `{"service":{"name",…},"brokers":{"count","cpus","mem","disk","disk_type","port",…},
//! "kafka":{"min_insync_replicas":2,…}}`: `brokers.*` become `BROKER_*`, each `kafka.<name>`
//! (`min_insync_replicas` or `min.insync.replicas`) becomes `TASKCFG_ALL_KAFKA_<NAME>`, which
//! routing hands to the broker task as `KAFKA_<NAME>` for `server.properties`. Unknown keys are
//! errors that name the key, so a typo never silently falls back to a default.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::spec::render::referenced_names;
use crate::spec::SpecError;

/// One option: its path in the options JSON, the environment variable it sets, its default.
struct OptionKey {
    path: &'static str,
    env: &'static str,
    default: Option<&'static str>,
}

const fn key(path: &'static str, env: &'static str, default: Option<&'static str>) -> OptionKey {
    OptionKey { path, env, default }
}

/// The `service` and `brokers` options. A `None` default means "unset unless given".
const KEYS: &[OptionKey] = &[
    key("service.name", "FRAMEWORK_NAME", Some("kafka")),
    key("service.user", "SERVICE_USER", Some("nobody")),
    key(
        "service.principal",
        "SERVICE_PRINCIPAL",
        Some("kafka-principal"),
    ),
    key(
        "service.placement_constraint",
        "PLACEMENT_CONSTRAINTS",
        Some(r#"[["hostname","MAX_PER","1"]]"#),
    ),
    key("service.deploy_strategy", "DEPLOY_STRATEGY", Some("serial")),
    key("service.zookeeper", "SCHEDULER_ZOOKEEPER", None),
    key("brokers.count", "BROKER_COUNT", Some("3")),
    key("brokers.cpus", "BROKER_CPUS", Some("1")),
    key("brokers.mem", "BROKER_MEM", Some("2048")),
    key("brokers.disk", "BROKER_DISK_SIZE", Some("5000")),
    key("brokers.disk_type", "BROKER_DISK_TYPE", Some("ROOT")),
    key("brokers.port", "BROKER_PORT", Some("0")),
    key(
        "brokers.kill_grace_period",
        "BROKER_KILL_GRACE_PERIOD",
        Some("30"),
    ),
    key(
        "brokers.allow_decommission",
        "ALLOW_DECOMMISSION",
        Some("false"),
    ),
    key("brokers.secrets", "BROKER_SECRETS", Some("{}")),
    // The embedded ZooKeeper's resources (it runs only when `EMBEDDED_ZOOKEEPER` is set, by
    // `strom scheduler run` when no ZooKeeper is configured; `ZOOKEEPER_PORT` comes with it).
    key("zookeeper.count", "ZOOKEEPER_COUNT", Some("1")),
    key("zookeeper.cpus", "ZOOKEEPER_CPUS", Some("0.5")),
    key("zookeeper.mem", "ZOOKEEPER_MEM", Some("512")),
    key("zookeeper.heap_mb", "ZOOKEEPER_HEAP_MB", Some("256")),
    key("zookeeper.disk", "ZOOKEEPER_DISK_SIZE", Some("100")),
    key("kafka.kafka_zookeeper_uri", "KAFKA_ZOOKEEPER_URI", None),
];

/// Defaults of the `kafka` section, as Kafka's own defaults (options may override each).
const KAFKA_DEFAULTS: &[(&str, &str)] = &[
    ("auto_create_topics_enable", "true"),
    ("default_replication_factor", "1"),
    ("min_insync_replicas", "1"),
    ("num_partitions", "1"),
    ("delete_topic_enable", "true"),
    ("log_retention_hours", "168"),
    ("log_retention_bytes", "-1"),
    ("log_segment_bytes", "1073741824"),
    ("log_flush_interval_messages", "9223372036854775807"),
    ("offsets_topic_replication_factor", "3"),
    ("transaction_state_log_replication_factor", "3"),
    ("transaction_state_log_min_isr", "2"),
    ("unclean_leader_election_enable", "false"),
    ("message_max_bytes", "1048588"),
    ("replica_lag_time_max_ms", "30000"),
];

/// Template variables that start with `KAFKA_` but are set by the spec, not by `kafka.*`.
const KAFKA_SPEC_VARIABLES: &[&str] = &[
    "KAFKA_BROKER_PORT",
    "KAFKA_DISK_PATH",
    "KAFKA_ZOOKEEPER_URI",
];

/// Builds the scheduler environment from `options` (JSON text) over `base_env` (the process
/// environment: `STROM_BIN`, `KAFKA_ZOOKEEPER_URI`, …). Options win over the base environment.
/// `server_properties` is the broker template: the `kafka.*` keys accepted are the `KAFKA_*`
/// variables it references.
pub fn scheduler_env(
    options: &str,
    base_env: &BTreeMap<String, String>,
    server_properties: &str,
) -> Result<BTreeMap<String, String>, SpecError> {
    let options: Value = if options.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(options).map_err(|error| SpecError::Invalid {
            key: "options".into(),
            reason: format!("not valid JSON: {error}"),
        })?
    };
    let Value::Object(sections) = &options else {
        return Err(invalid("options", "must be a JSON object"));
    };
    let mut env = base_env.clone();
    for option in KEYS {
        if let Some(default) = option.default {
            env.entry(option.env.to_string())
                .or_insert_with(|| default.to_string());
        }
    }
    for (name, default) in KAFKA_DEFAULTS {
        env.entry(kafka_env(name))
            .or_insert_with(|| default.to_string());
    }
    let kafka_settings: Vec<String> = referenced_names(server_properties)
        .into_iter()
        .filter(|name| name.starts_with("KAFKA_") && !KAFKA_SPEC_VARIABLES.contains(&name.as_str()))
        .collect();
    for (section_name, section) in sections {
        let Value::Object(entries) = section else {
            return Err(invalid(section_name, "must be a JSON object"));
        };
        for (entry_name, value) in entries {
            let path = format!("{section_name}.{entry_name}");
            let text = match value {
                // DC/OS wrote the constraint as a JSON string; a JSON list is accepted too.
                Value::Array(_) if path == "service.placement_constraint" => value.to_string(),
                Value::Object(_) if path == "brokers.secrets" => secrets_json(&path, value)?,
                _ => scalar(&path, value)?,
            };
            if let Some(option) = KEYS.iter().find(|o| o.path == path) {
                env.insert(option.env.to_string(), text);
            } else if section_name == "kafka" {
                let normalized = entry_name.replace('.', "_").to_ascii_lowercase();
                let variable = format!("KAFKA_{}", normalized.to_ascii_uppercase());
                if !kafka_settings.contains(&variable) {
                    return Err(invalid(
                        &path,
                        "is not a Kafka setting the broker template knows \
                         (see server.properties.mustache)",
                    ));
                }
                env.insert(kafka_env(&normalized), text);
            } else {
                return Err(invalid(&path, "unknown option"));
            }
        }
    }
    let zone_rules = env
        .get("PLACEMENT_CONSTRAINTS")
        .is_some_and(|rules| rules.contains("\"@zone\""));
    if zone_rules {
        env.insert("PLACEMENT_REFERENCED_ZONE".into(), "true".into());
    }
    Ok(env)
}

/// `brokers.secrets` (`{"<name>": {"secret": "kafka/x", "env_key": "X", "file": "x"}}`) as
/// the JSON flow mapping `svc.yml`'s pod `secrets:` takes (YAML reads JSON), keys in the SDK's
/// kebab case. Values are secret paths, never secret values.
fn secrets_json(path: &str, value: &Value) -> Result<String, SpecError> {
    let Value::Object(entries) = value else {
        return Err(invalid(path, "must be a JSON object of secret entries"));
    };
    let mut out = serde_json::Map::new();
    for (name, entry) in entries {
        let entry_path = format!("{path}.{name}");
        let Value::Object(fields) = entry else {
            return Err(invalid(
                &entry_path,
                "must be an object with secret and env_key and/or file",
            ));
        };
        let mut normalized = serde_json::Map::new();
        for (field, field_value) in fields {
            let kebab = match field.as_str() {
                "secret" | "file" => field.clone(),
                "env_key" | "env-key" => "env-key".to_string(),
                _ => {
                    return Err(invalid(
                        &format!("{entry_path}.{field}"),
                        "unknown secret field (secret, env_key, file)",
                    ))
                }
            };
            let Value::String(text) = field_value else {
                return Err(invalid(
                    &format!("{entry_path}.{field}"),
                    "must be a string",
                ));
            };
            normalized.insert(kebab, Value::String(text.clone()));
        }
        out.insert(name.clone(), Value::Object(normalized));
    }
    Ok(Value::Object(out).to_string())
}

fn kafka_env(name: &str) -> String {
    format!("TASKCFG_ALL_KAFKA_{}", name.to_ascii_uppercase())
}

fn invalid(key: &str, reason: &str) -> SpecError {
    SpecError::Invalid {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

fn scalar(path: &str, value: &Value) -> Result<String, SpecError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => {
            Err(invalid(path, "must be a string, number or boolean"))
        }
    }
}
