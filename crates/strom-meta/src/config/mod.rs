//! Kafka's configuration catalogue: broker keys (`server.properties`) and topic keys.
//!
//! This module owns which keys exist, their types, defaults, validation rules and documentation,
//! kept as two static tables ([`broker_keys`] and [`topic_keys`]) that loading, validation,
//! resolution and DescribeConfigs all read, so they cannot disagree. It also owns the
//! Java-properties parser ([`properties`]).
//!
//! It does not own applying a configuration (binding listeners, flushing logs): the broker reads
//! the typed fields of [`BrokerConfig`] and [`TopicConfig`]. Which broker keys may change at
//! runtime, and the dynamic levels, are in [`dynamic`].

mod broker;
pub mod broker_keys;
pub mod cluster;
pub mod dynamic;
pub mod properties;
pub mod rule;
mod topic;
pub mod topic_keys;

pub use broker::TransactionSettings;
pub use broker::{parse_listeners, BrokerConfig, Listener};
pub use cluster::{ClusterSettings, ControlledShutdownSettings, LeaderBalanceSettings, ZkConnect};
pub use topic::TopicConfig;

use std::fmt;

/// The value type of a configuration key, as DescribeConfigs v3+ reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigType {
    /// `true` or `false` (case-insensitive).
    Boolean,
    /// Free text, possibly restricted to a set of values.
    String,
    /// A 32-bit signed integer.
    Int,
    /// A 16-bit signed integer.
    Short,
    /// A 64-bit signed integer.
    Long,
    /// A 64-bit floating-point number.
    Double,
    /// A comma-separated list.
    List,
    /// A Java class name (accepted for completeness; Strom loads no classes).
    Class,
    /// A secret, never returned by DescribeConfigs.
    Password,
}

impl ConfigType {
    /// The code Kafka's DescribeConfigs response uses for this type.
    pub fn kafka_code(&self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }
}

/// Where a configuration value came from, as DescribeConfigs reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// A topic-level override (CreateTopics configs or AlterConfigs on the topic).
    DynamicTopic,
    /// A per-broker dynamic override (AlterConfigs on `BROKER <id>`).
    DynamicBroker,
    /// A cluster-wide dynamic broker default (AlterConfigs on `BROKER ""`).
    DynamicDefaultBroker,
    /// Set explicitly in the broker's properties file or `--set`.
    StaticBroker,
    /// Nobody set it; the built-in default applies.
    Default,
}

impl ConfigSource {
    /// The code Kafka's DescribeConfigs response uses for this source.
    pub fn kafka_code(&self) -> i8 {
        match self {
            ConfigSource::DynamicTopic => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// A refused configuration: which key, which value, and the rule the value broke.
///
/// For an unknown key the rule starts with [`ConfigError::UNKNOWN`] and may end with a
/// "did you mean" suggestion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The configuration key, e.g. `num.partitions`.
    pub key: String,
    /// The refused value exactly as given.
    pub value: String,
    /// The rule in words, e.g. `must be an integer >= 1`.
    pub rule: String,
}

impl ConfigError {
    /// The rule text of an unknown key.
    pub const UNKNOWN: &'static str = "unknown configuration";

    /// A refused value.
    pub fn new(key: &str, value: &str, rule: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.to_string(),
            value: value.to_string(),
            rule: rule.into(),
        }
    }

    /// An unknown key, with a suggestion when one of `known` is within edit distance 2.
    pub fn unknown<'a>(
        key: &str,
        value: &str,
        known: impl IntoIterator<Item = &'a str>,
    ) -> ConfigError {
        let rule = match rule::closest_key(key, known) {
            Some(candidate) => format!("{}; did you mean '{candidate}'?", ConfigError::UNKNOWN),
            None => ConfigError::UNKNOWN.to_string(),
        };
        ConfigError::new(key, value, rule)
    }

    /// True if this error is about a key that does not exist, rather than a bad value.
    pub fn is_unknown_key(&self) -> bool {
        self.rule.starts_with(ConfigError::UNKNOWN)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unknown_key() {
            let suggestion = &self.rule[ConfigError::UNKNOWN.len()..];
            write!(
                f,
                "{} '{}' (set to '{}'){suggestion}",
                ConfigError::UNKNOWN,
                self.key,
                self.value
            )
        } else {
            write!(
                f,
                "invalid value '{}' for configuration '{}': {}",
                self.value, self.key, self.rule
            )
        }
    }
}

/// One value a key could take from a particular source, for DescribeConfigs synonyms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The key at that source, e.g. `log.retention.hours` for the topic key `retention.ms`.
    pub name: String,
    /// The value as set at that source.
    pub value: String,
    /// The source.
    pub source: ConfigSource,
}

/// One DescribeConfigs result entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The key.
    pub name: String,
    /// The effective value; `None` for sensitive keys and keys with no value.
    pub value: Option<String>,
    /// True if it cannot be changed with AlterConfigs.
    pub read_only: bool,
    /// Where the effective value came from.
    pub source: ConfigSource,
    /// True for secrets, whose value is never returned.
    pub is_sensitive: bool,
    /// The value type.
    pub config_type: ConfigType,
    /// What the key does; empty unless documentation was asked for.
    pub documentation: String,
    /// Every source that sets this key, highest precedence first; empty unless asked for.
    pub synonyms: Vec<ConfigSynonym>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_codes() {
        let types = [
            ConfigType::Boolean,
            ConfigType::String,
            ConfigType::Int,
            ConfigType::Short,
            ConfigType::Long,
            ConfigType::Double,
            ConfigType::List,
            ConfigType::Class,
            ConfigType::Password,
        ];
        let codes: Vec<i8> = types.iter().map(ConfigType::kafka_code).collect();
        assert_eq!(codes, (1..=9).collect::<Vec<i8>>());
        let sources = [
            ConfigSource::DynamicTopic,
            ConfigSource::DynamicBroker,
            ConfigSource::DynamicDefaultBroker,
            ConfigSource::StaticBroker,
            ConfigSource::Default,
        ];
        let codes: Vec<i8> = sources.iter().map(ConfigSource::kafka_code).collect();
        assert_eq!(codes, (1..=5).collect::<Vec<i8>>());
    }

    #[test]
    fn error_display_names_key_value_and_rule() {
        let error = ConfigError::new("num.partitions", "abc", "must be an integer >= 1");
        assert_eq!(
            error.to_string(),
            "invalid value 'abc' for configuration 'num.partitions': must be an integer >= 1"
        );
        assert!(!error.is_unknown_key());
    }

    #[test]
    fn unknown_key_display_with_and_without_suggestion() {
        let error = ConfigError::unknown("num.partiton", "3", ["num.partitions", "log.dirs"]);
        assert!(error.is_unknown_key());
        assert_eq!(
            error.to_string(),
            "unknown configuration 'num.partiton' (set to '3'); did you mean 'num.partitions'?"
        );
        let error = ConfigError::unknown("banana", "3", ["num.partitions"]);
        assert_eq!(error.rule, "unknown configuration");
        assert_eq!(
            error.to_string(),
            "unknown configuration 'banana' (set to '3')"
        );
    }
}
