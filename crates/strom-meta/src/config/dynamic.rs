//! Dynamic broker configuration: which broker keys may change without a restart, the two
//! dynamic levels (per broker, cluster default) and the checks of an update.
//!
//! Kafka's precedence, highest first: DYNAMIC_BROKER_CONFIG (`/config/brokers/<id>`),
//! DYNAMIC_DEFAULT_BROKER_CONFIG (`/config/brokers/<default>`), STATIC_BROKER_CONFIG
//! (`server.properties`, `--set`), DEFAULT_CONFIG. The levels are merged key by key and unit
//! synonyms are resolved over the merged keys, as Kafka's `KafkaConfig` does over its merged
//! properties (a static `log.retention.ms` still beats a dynamic `log.retention.hours`, which
//! Kafka does not let anyone set dynamically anyway).
//!
//! This module owns the list ([`DYNAMIC_BROKER_KEYS`], Kafka's `DynamicBrokerConfig.
//! AllDynamicConfigs` restricted to Strom's catalogue) and the refusal wording. It does not own
//! storing the levels (the broker's metadata file on a single node, ZooKeeper on a cluster) nor
//! applying a new configuration (the broker rebuilds its [`super::BrokerConfig`] with
//! [`super::BrokerConfig::with_dynamic`] and pushes the new values to its services).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::broker_keys::{broker_key, canonical_broker_key, is_ignored_broker_key};
use super::{ConfigError, ConfigSource};

/// The entity name of the cluster-wide default in ZooKeeper (`/config/brokers/<default>`).
pub const DEFAULT_ENTITY: &str = "<default>";

/// Every catalogue key Kafka lets AlterConfigs change on a running broker, sorted:
/// `DynamicLogConfig` (the first broker synonym of every topic key), `LogCleaner`'s keys,
/// `DynamicThreadPool`, the cluster-level listener keys and the replication quotas
/// (`DynamicConfig.Broker`). Kafka's `listeners` is dynamic per broker there, but Strom cannot
/// rebind a running listener, so it stays read-only here.
pub static DYNAMIC_BROKER_KEYS: &[&str] = &[
    "compression.type",
    "follower.replication.throttled.rate",
    "leader.replication.throttled.rate",
    "log.cleaner.backoff.ms",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.threads",
    "log.cleanup.policy",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.index.interval.bytes",
    "log.index.size.max.bytes",
    "log.message.downconversion.enable",
    "log.message.timestamp.after.max.ms",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.type",
    "log.preallocate",
    "log.retention.bytes",
    "log.retention.ms",
    "log.roll.jitter.ms",
    "log.roll.ms",
    "log.segment.bytes",
    "log.segment.delete.delay.ms",
    "message.max.bytes",
    "min.insync.replicas",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "unclean.leader.election.enable",
];

/// True if `key` (a canonical catalogue key) may be changed without a restart.
pub fn is_dynamic(key: &str) -> bool {
    DYNAMIC_BROKER_KEYS.binary_search(&key).is_ok()
}

/// The dynamic levels of one broker's configuration: its own overrides and the cluster-wide
/// defaults. Keys are canonical catalogue keys, values as given (trimmed) and checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicLayers {
    /// `/config/brokers/<default>`: every broker's dynamic default.
    #[serde(default)]
    pub cluster_default: BTreeMap<String, String>,
    /// `/config/brokers/<id>`: this broker's own dynamic overrides.
    #[serde(default)]
    pub per_broker: BTreeMap<String, String>,
}

impl DynamicLayers {
    /// The levels with only the entries [`check_update`] accepts (aliases resolved), and a
    /// description of each entry dropped: for levels read from storage, which another tool
    /// may have written (Kafka's brokers, too, skip invalid stored dynamic configs with an
    /// error rather than refuse to start).
    pub fn sanitized(&self) -> (DynamicLayers, Vec<String>) {
        let mut dropped = Vec::new();
        let mut clean = |level: &BTreeMap<String, String>| {
            let mut kept = BTreeMap::new();
            for (key, value) in level {
                let one = BTreeMap::from([(key.clone(), value.clone())]);
                match check_update(&one) {
                    Ok(checked) => kept.extend(checked),
                    Err(error) => dropped.push(error.to_string()),
                }
            }
            kept
        };
        let layers = DynamicLayers {
            cluster_default: clean(&self.cluster_default),
            per_broker: clean(&self.per_broker),
        };
        (layers, dropped)
    }
}

/// Why a dynamic update was refused. Kafka answers every one with INVALID_REQUEST and the
/// message "Invalid config value for resource ConfigResource(type=BROKER, name='<n>'): " then
/// this error's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DynamicConfigError {
    /// Keys that exist but need a restart (Kafka's read-only keys), sorted.
    NotDynamic(Vec<String>),
    /// A value that breaks its key's rule, or a key that does not exist.
    Invalid(ConfigError),
}

impl fmt::Display for DynamicConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Kafka prints a Scala `Set`.
            DynamicConfigError::NotDynamic(keys) => write!(
                f,
                "Cannot update these configs dynamically: Set({})",
                keys.join(", ")
            ),
            DynamicConfigError::Invalid(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for DynamicConfigError {}

/// Checks the keys and values of one level's new contents (or of the keys an incremental
/// update sets): read-only keys first, all of them named at once, then each value against its
/// rule. Returns the level with aliases resolved to their canonical keys and values trimmed.
/// Rules that relate several keys are checked when the whole configuration is rebuilt
/// ([`super::BrokerConfig::with_dynamic`]).
pub fn check_update(
    level: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, DynamicConfigError> {
    let mut read_only: Vec<String> = Vec::new();
    for key in level.keys() {
        let canonical = canonical_broker_key(key);
        let known = broker_key(canonical).is_some() || is_ignored_broker_key(key);
        if known && !is_dynamic(canonical) {
            read_only.push(key.clone());
        }
    }
    if !read_only.is_empty() {
        read_only.sort();
        return Err(DynamicConfigError::NotDynamic(read_only));
    }
    let mut checked = BTreeMap::new();
    for (key, value) in level {
        let canonical = canonical_broker_key(key);
        let Some(spec) = broker_key(canonical) else {
            return Err(DynamicConfigError::Invalid(ConfigError::unknown(
                key,
                value,
                DYNAMIC_BROKER_KEYS.iter().copied(),
            )));
        };
        super::rule::check(key, spec.config_type, spec.rule, value)
            .map_err(DynamicConfigError::Invalid)?;
        checked.insert(canonical.to_string(), value.trim().to_string());
    }
    Ok(checked)
}

/// The levels a broker key is looked up in, highest precedence first.
#[derive(Clone, Copy)]
pub(crate) struct Levels<'a> {
    pub(crate) per_broker: &'a BTreeMap<String, String>,
    pub(crate) cluster_default: &'a BTreeMap<String, String>,
    pub(crate) static_broker: &'a BTreeMap<String, String>,
}

impl<'a> Levels<'a> {
    /// The levels with their DescribeConfigs sources, highest precedence first.
    pub(crate) fn each(&self) -> [(&'a BTreeMap<String, String>, ConfigSource); 3] {
        [
            (self.per_broker, ConfigSource::DynamicBroker),
            (self.cluster_default, ConfigSource::DynamicDefaultBroker),
            (self.static_broker, ConfigSource::StaticBroker),
        ]
    }

    /// The value of `key` at the highest level that sets it, with that level's source.
    pub(crate) fn get(&self, key: &str) -> Option<(&'a str, ConfigSource)> {
        self.each()
            .into_iter()
            .find_map(|(map, source)| map.get(key).map(|value| (value.as_str(), source)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn list_is_sorted_and_names_catalogue_keys() {
        for pair in DYNAMIC_BROKER_KEYS.windows(2) {
            assert!(pair[0] < pair[1], "{}", pair[1]);
        }
        for key in DYNAMIC_BROKER_KEYS {
            assert!(broker_key(key).is_some(), "{key} is not in the catalogue");
        }
        assert!(!is_dynamic("broker.id"));
        assert!(
            !is_dynamic("log.retention.hours"),
            "Kafka: only log.retention.ms"
        );
        assert!(is_dynamic("log.retention.ms"));
    }

    #[test]
    fn read_only_keys_are_named_all_at_once_in_kafkas_words() {
        let error = check_update(&level(&[
            ("log.dirs", "/x"),
            ("broker.id", "3"),
            ("message.max.bytes", "100"),
        ]))
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Cannot update these configs dynamically: Set(broker.id, log.dirs)"
        );
        // A Kafka key Strom ignores is not dynamic either.
        let error = check_update(&level(&[("background.threads", "4")])).unwrap_err();
        assert_eq!(
            error,
            DynamicConfigError::NotDynamic(vec!["background.threads".into()])
        );
    }

    #[test]
    fn values_are_checked_and_unknown_keys_refused() {
        let error = check_update(&level(&[("message.max.bytes", "big")])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value 'big' for configuration 'message.max.bytes': must be an integer >= 0"
        );
        let error = check_update(&level(&[("leader.replication.throttled.rat", "1")])).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("did you mean 'leader.replication.throttled.rate'"),
            "{error}"
        );
        let ok = check_update(&level(&[("log.cleanup.policy", " compact ")])).unwrap();
        let stored = DynamicLayers {
            cluster_default: level(&[
                ("listeners", "PLAINTEXT://:1"),
                ("min.insync.replicas", "2"),
            ]),
            per_broker: level(&[("message.max.bytes", "x")]),
        };
        let (clean, dropped) = stored.sanitized();
        assert_eq!(
            clean.cluster_default,
            level(&[("min.insync.replicas", "2")])
        );
        assert!(clean.per_broker.is_empty());
        assert_eq!(dropped.len(), 2, "{dropped:?}");
        assert_eq!(ok.get("log.cleanup.policy").unwrap(), "compact");
    }
}
