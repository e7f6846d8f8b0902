//! The broker's static configuration: loading `server.properties` plus `--set` overrides into
//! typed fields, checking every value, and describing it for DescribeConfigs.
//!
//! This module owns interpretation (aliases, unit synonyms such as `log.retention.hours`,
//! listener syntax, rules that span keys). The keys themselves are in [`super::broker_keys`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::broker_keys::{
    broker_chain, broker_key, canonical_broker_key, is_ignored_broker_key, BROKER_ALIASES,
    BROKER_KEYS,
};
use super::cluster::{
    ClusterSettings, ControlledShutdownSettings, LeaderBalanceSettings, ZkConnect,
};
use super::dynamic::{is_dynamic, DynamicLayers, Levels};
use super::properties::{self, parse_override};
use super::rule::{canonical, list_items, parse_bool, Rule, Synonym};
use super::{ConfigEntry, ConfigError, ConfigSource, ConfigSynonym, ConfigType};

/// One network listener, `NAME://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, which is also its security protocol for now: always `PLAINTEXT`.
    pub name: String,
    /// The host or IP address, without IPv6 brackets; `0.0.0.0` means every interface.
    pub host: String,
    /// The TCP port; 0 in `listeners` asks the OS for a free port (used by tests).
    pub port: u16,
}

impl Listener {
    /// The `host:port` text for binding or connecting, with brackets around IPv6 addresses.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.name, self.address())
    }
}

/// The broker's configuration with every value resolved and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerConfig {
    /// `broker.id` (alias `node.id`); Strom defaults to 0.
    pub broker_id: i32,
    /// `broker.rack`, if set.
    pub broker_rack: Option<String>,
    /// `listeners`; default `PLAINTEXT://127.0.0.1:9092`.
    ///
    /// Invariant: non-empty, every name is `PLAINTEXT`, names are unique.
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`; defaults to `listeners`.
    ///
    /// Invariant: no host is `0.0.0.0`, `::` or empty.
    pub advertised_listeners: Vec<Listener>,
    /// `log.dirs`, else `log.dir`; default `strom-data`. Invariant: non-empty.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions`, at least 1.
    pub num_partitions: i32,
    /// `default.replication.factor`, at least 1.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `message.max.bytes`: the largest record batch accepted.
    pub message_max_bytes: i32,
    /// `socket.request.max.bytes`: the largest request read.
    pub socket_request_max_bytes: i32,
    /// `log.segment.bytes`.
    pub log_segment_bytes: i32,
    /// `log.roll.ms`, else `log.roll.hours` (default 168) in milliseconds.
    pub log_roll_ms: i64,
    /// `log.retention.ms`, else `log.retention.minutes`, else `log.retention.hours` (default 168),
    /// in milliseconds; -1 keeps data forever.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`; -1 means no size limit.
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms`.
    pub log_retention_check_interval_ms: i64,
    /// `log.index.interval.bytes`.
    pub log_index_interval_bytes: i32,
    /// `log.segment.delete.delay.ms`.
    pub log_segment_delete_delay_ms: i64,
    /// `log.flush.interval.messages` (alias `flush.messages`). Strom's default is 1: every append
    /// is fdatasync'd before it is acknowledged, with group commit so concurrent producers share
    /// one sync. Kafka's default is `Long.MAX` (leave flushing to the OS and rely on
    /// replication), which a single-node Strom cannot afford.
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms` (alias `flush.ms`); default `i64::MAX` (Kafka's `Long.MAX`).
    pub log_flush_interval_ms: i64,
    /// `log.flush.offset.checkpoint.interval.ms`. Strom's default is 1000 (Kafka: 60000) so
    /// recovery after `kill -9` re-reads little.
    pub log_flush_offset_checkpoint_interval_ms: i64,
    /// `log.message.timestamp.type`: `CreateTime` or `LogAppendTime`.
    pub log_message_timestamp_type: String,
    /// `log.cleanup.policy`: `delete`, `compact`, or `compact,delete`.
    pub log_cleanup_policy: String,
    /// `compression.type`.
    pub compression_type: String,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `num.recovery.threads.per.data.dir`.
    pub num_recovery_threads_per_data_dir: i32,
    /// `num.network.threads`; accepted for compatibility.
    pub num_network_threads: i32,
    /// `num.io.threads`; accepted for compatibility.
    pub num_io_threads: i32,
    /// `max.incremental.fetch.session.cache.slots`: the fetch sessions kept.
    pub max_incremental_fetch_session_cache_slots: i32,
    /// `cluster.id`, overriding the stored or generated cluster id.
    pub cluster_id: Option<String>,
    /// `offsets.topic.num.partitions`; 50 like Kafka.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.retention.minutes`.
    pub offsets_retention_minutes: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offsets.topic.segment.bytes`: `segment.bytes` of `__consumer_offsets` at creation.
    pub offsets_topic_segment_bytes: i32,
    /// `log.cleaner.enable`: whether compacted topics are compacted.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`: the interval between compaction passes.
    pub log_cleaner_backoff_ms: i64,
    /// `strom.metrics.listener`: `host:port` of the Prometheus endpoint, `None` when off.
    pub metrics_listener: Option<String>,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`. Invariant: `<= group_max_session_timeout_ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// The transaction coordinator's settings (`transaction.*`).
    pub transactions: TransactionSettings,
    /// The replicated cluster's settings (`zookeeper.*`, `replica.*`, ...).
    pub cluster: ClusterSettings,
    /// Every key the user set explicitly (after alias resolution), for DescribeConfigs sources.
    /// Values are as written, trimmed.
    pub explicit: BTreeMap<String, String>,
    /// The dynamic levels (AlterConfigs on the broker) merged over `explicit`; empty until the
    /// broker installs them with [`BrokerConfig::with_dynamic`].
    pub dynamic: DynamicLayers,
    /// Kafka keys the user set that Strom accepts and ignores, in first-seen order, so the
    /// broker can log one warning.
    pub ignored: Vec<String>,
}

impl Default for BrokerConfig {
    /// Every key at its default.
    fn default() -> BrokerConfig {
        BrokerConfig::load(None, &[]).expect("the built-in defaults are valid")
    }
}

impl BrokerConfig {
    /// Parses a Java-properties text, then applies `overrides` (`key=value` strings from
    /// `--set`, later ones winning), and checks every value.
    ///
    /// Aliases (`node.id`, `flush.messages`, `flush.ms`) are resolved to their canonical keys.
    /// Well-known Kafka keys Strom does not use are collected in [`BrokerConfig::ignored`];
    /// any other unknown key is an error suggesting the closest known key. Returns the first
    /// error, naming the key, the value and the rule.
    pub fn load(
        properties_text: Option<&str>,
        overrides: &[String],
    ) -> Result<BrokerConfig, ConfigError> {
        let mut pairs = Vec::new();
        if let Some(text) = properties_text {
            for property in properties::parse(text)? {
                pairs.push((property.key, property.value));
            }
        }
        for text in overrides {
            pairs.push(parse_override(text)?);
        }

        let mut explicit = BTreeMap::new();
        let mut ignored = Vec::new();
        for (key, value) in pairs {
            let canonical_key = canonical_broker_key(&key);
            if let Some(spec) = broker_key(canonical_key) {
                // Errors name the key as the user wrote it, alias or not.
                super::rule::check(&key, spec.config_type, spec.rule, &value)?;
                if spec.rule == Rule::Listeners {
                    parse_listeners(&key, &value)?;
                }
                explicit.insert(canonical_key.to_string(), value.trim().to_string());
            } else if is_ignored_broker_key(&key) {
                if !ignored.contains(&key) {
                    ignored.push(key);
                }
            } else {
                return Err(ConfigError::unknown(
                    &key,
                    &value,
                    BrokerConfig::known_keys(),
                ));
            }
        }
        BrokerConfig::from_levels(explicit, DynamicLayers::default(), ignored)
    }

    /// This static configuration with `dynamic` merged over it (Kafka's precedence: per
    /// broker, cluster default, static, default), every typed field recomputed and the rules
    /// that span keys checked again. The levels' values must have passed
    /// [`super::dynamic::check_update`].
    pub fn with_dynamic(&self, dynamic: DynamicLayers) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_levels(self.explicit.clone(), dynamic, self.ignored.clone())
    }

    /// The lookup levels of this configuration, highest precedence first.
    fn levels(&self) -> Levels<'_> {
        Levels {
            per_broker: &self.dynamic.per_broker,
            cluster_default: &self.dynamic.cluster_default,
            static_broker: &self.explicit,
        }
    }

    /// Every key `load` accepts as meaningful: catalogue keys and aliases.
    pub fn known_keys() -> impl Iterator<Item = &'static str> {
        BROKER_KEYS
            .iter()
            .map(|spec| spec.name)
            .chain(BROKER_ALIASES.iter().map(|(alias, _)| *alias))
    }

    /// True if `key` is a broker key or an alias of one (ignored keys are not "known").
    pub fn is_known_key(key: &str) -> bool {
        broker_key(canonical_broker_key(key)).is_some()
    }

    /// Builds the typed fields from checked explicit and dynamic values and the catalogue
    /// defaults, then applies the rules that span keys.
    fn from_levels(
        explicit: BTreeMap<String, String>,
        dynamic: DynamicLayers,
        ignored: Vec<String>,
    ) -> Result<BrokerConfig, ConfigError> {
        let read = Reader {
            levels: Levels {
                per_broker: &dynamic.per_broker,
                cluster_default: &dynamic.cluster_default,
                static_broker: &explicit,
            },
        };
        // log.dirs is a list; log.dir is one path, which may contain a comma.
        let log_dirs = match explicit.get("log.dirs") {
            Some(dirs) => list_items(dirs).into_iter().map(PathBuf::from).collect(),
            None => vec![PathBuf::from(read.text("log.dir"))],
        };
        let mut config = BrokerConfig {
            broker_id: read.int("broker.id"),
            broker_rack: read.optional_text("broker.rack"),
            // Listeners need the cross-key rules; they are filled in below.
            listeners: Vec::new(),
            advertised_listeners: Vec::new(),
            log_dirs,
            num_partitions: read.int("num.partitions"),
            default_replication_factor: i16::try_from(read.int("default.replication.factor"))
                .expect("default.replication.factor is checked to fit 16 bits"),
            auto_create_topics_enable: read.boolean("auto.create.topics.enable"),
            delete_topic_enable: read.boolean("delete.topic.enable"),
            message_max_bytes: read.int("message.max.bytes"),
            socket_request_max_bytes: read.int("socket.request.max.bytes"),
            log_segment_bytes: read.int("log.segment.bytes"),
            log_roll_ms: read.long("log.roll.ms"),
            log_retention_ms: read.long("log.retention.ms"),
            log_retention_bytes: read.long("log.retention.bytes"),
            log_retention_check_interval_ms: read.long("log.retention.check.interval.ms"),
            log_index_interval_bytes: read.int("log.index.interval.bytes"),
            log_segment_delete_delay_ms: read.long("log.segment.delete.delay.ms"),
            log_flush_interval_messages: read.long("log.flush.interval.messages"),
            log_flush_interval_ms: read.long("log.flush.interval.ms"),
            log_flush_offset_checkpoint_interval_ms: read
                .long("log.flush.offset.checkpoint.interval.ms"),
            log_message_timestamp_type: read.text("log.message.timestamp.type"),
            log_cleanup_policy: read.text("log.cleanup.policy"),
            compression_type: read.text("compression.type"),
            min_insync_replicas: read.int("min.insync.replicas"),
            unclean_leader_election_enable: read.boolean("unclean.leader.election.enable"),
            num_recovery_threads_per_data_dir: read.int("num.recovery.threads.per.data.dir"),
            num_network_threads: read.int("num.network.threads"),
            num_io_threads: read.int("num.io.threads"),
            max_incremental_fetch_session_cache_slots: read
                .int("max.incremental.fetch.session.cache.slots"),
            cluster_id: read.optional_text("cluster.id"),
            offsets_topic_num_partitions: read.int("offsets.topic.num.partitions"),
            offsets_retention_minutes: read.long("offsets.retention.minutes"),
            offsets_retention_check_interval_ms: read.long("offsets.retention.check.interval.ms"),
            offsets_topic_segment_bytes: read.int("offsets.topic.segment.bytes"),
            log_cleaner_enable: read.boolean("log.cleaner.enable"),
            log_cleaner_backoff_ms: read.long("log.cleaner.backoff.ms"),
            metrics_listener: Some(read.text("strom.metrics.listener"))
                .filter(|text| !text.trim().is_empty()),
            group_initial_rebalance_delay_ms: read.long("group.initial.rebalance.delay.ms"),
            group_min_session_timeout_ms: read.int("group.min.session.timeout.ms"),
            group_max_session_timeout_ms: read.int("group.max.session.timeout.ms"),
            transactions: TransactionSettings {
                max_timeout_ms: read.int("transaction.max.timeout.ms"),
                log_num_partitions: read.int("transaction.state.log.num.partitions"),
                log_replication_factor: i16::try_from(
                    read.int("transaction.state.log.replication.factor"),
                )
                .unwrap_or(3),
                log_min_isr: read.int("transaction.state.log.min.isr"),
                log_segment_bytes: read.int("transaction.state.log.segment.bytes"),
                id_expiration_ms: i64::from(read.int("transactional.id.expiration.ms")),
                abort_timed_out_interval_ms: i64::from(
                    read.int("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
                ),
                remove_expired_interval_ms: i64::from(
                    read.int("transaction.remove.expired.transaction.cleanup.interval.ms"),
                ),
                partition_verification_enable: read
                    .boolean("transaction.partition.verification.enable"),
            },
            cluster: ClusterSettings {
                zookeeper_connect: read
                    .optional_text("zookeeper.connect")
                    .map(|text| ZkConnect::parse("zookeeper.connect", &text))
                    .transpose()?,
                zookeeper_session_timeout_ms: read.int("zookeeper.session.timeout.ms"),
                zookeeper_connection_timeout_ms: read
                    .optional_text("zookeeper.connection.timeout.ms")
                    .map(|_| read.int("zookeeper.connection.timeout.ms"))
                    .unwrap_or_else(|| read.int("zookeeper.session.timeout.ms")),
                inter_broker_listener_name: read.optional_text("inter.broker.listener.name"),
                controller_socket_timeout_ms: read.int("controller.socket.timeout.ms"),
                replica_lag_time_max_ms: read.long("replica.lag.time.max.ms"),
                replica_fetch_max_bytes: read.int("replica.fetch.max.bytes"),
                replica_fetch_min_bytes: read.int("replica.fetch.min.bytes"),
                replica_fetch_wait_max_ms: read.int("replica.fetch.wait.max.ms"),
                replica_fetch_backoff_ms: read.int("replica.fetch.backoff.ms"),
                replica_socket_timeout_ms: read.int("replica.socket.timeout.ms"),
                replica_high_watermark_checkpoint_interval_ms: read
                    .long("replica.high.watermark.checkpoint.interval.ms"),
                num_replica_fetchers: read.int("num.replica.fetchers"),
                offsets_topic_replication_factor: i16::try_from(
                    read.int("offsets.topic.replication.factor"),
                )
                .expect("offsets.topic.replication.factor is checked to fit 16 bits"),
                replica_selector_rack_aware: read
                    .optional_text("replica.selector.class")
                    .is_some_and(|class| class.ends_with(".RackAwareReplicaSelector")),
                leader_replication_throttled_rate: read.long("leader.replication.throttled.rate"),
                follower_replication_throttled_rate: read
                    .long("follower.replication.throttled.rate"),
                replication_quota_window_num: read.int("replication.quota.window.num"),
                replication_quota_window_size_seconds: read
                    .int("replication.quota.window.size.seconds"),
                controlled_shutdown: ControlledShutdownSettings {
                    enable: read.boolean("controlled.shutdown.enable"),
                    max_retries: read.int("controlled.shutdown.max.retries").max(0) as u32,
                    retry_backoff_ms: read.long("controlled.shutdown.retry.backoff.ms").max(0)
                        as u64,
                },
                leader_balance: LeaderBalanceSettings {
                    enable: read.boolean("auto.leader.rebalance.enable"),
                    imbalance_percentage: read.int("leader.imbalance.per.broker.percentage").max(0)
                        as u32,
                    check_interval_ms: (read.long("leader.imbalance.check.interval.seconds").max(1)
                        as u64)
                        .saturating_mul(1000),
                },
            },
            explicit,
            dynamic,
            ignored,
        };
        config.check_cross_key_rules()?;
        Ok(config)
    }

    /// The rules that relate several keys, checked after every key is resolved.
    fn check_cross_key_rules(&mut self) -> Result<(), ConfigError> {
        if self.log_dirs.is_empty() {
            let (key, value) = self.first_set(&broker_chain("log.dirs"));
            return Err(ConfigError::new(
                key,
                &value,
                "must list at least one data directory",
            ));
        }
        if i64::from(self.cluster.replica_fetch_wait_max_ms) >= self.cluster.replica_lag_time_max_ms
        {
            let (key, value) = self.first_set(&broker_chain("replica.fetch.wait.max.ms"));
            return Err(ConfigError::new(
                key,
                &value,
                format!(
                    "must be below replica.lag.time.max.ms ({}), or followers would fall out \
                     of the ISR while their fetch waits",
                    self.cluster.replica_lag_time_max_ms
                ),
            ));
        }
        if self.log_retention_ms == 0 {
            let (key, value) = self.first_set(&broker_chain("log.retention.ms"));
            return Err(ConfigError::new(
                key,
                &value,
                "retention must be -1 (keep forever) or at least 1 millisecond",
            ));
        }
        let (min, max) = (
            self.group_min_session_timeout_ms,
            self.group_max_session_timeout_ms,
        );
        if min > max {
            // Blame the key the user set; if both, the minimum.
            return Err(
                if self.explicit.contains_key("group.min.session.timeout.ms")
                    || !self.explicit.contains_key("group.max.session.timeout.ms")
                {
                    ConfigError::new(
                        "group.min.session.timeout.ms",
                        &min.to_string(),
                        format!("must be <= group.max.session.timeout.ms ({max})"),
                    )
                } else {
                    ConfigError::new(
                        "group.max.session.timeout.ms",
                        &max.to_string(),
                        format!("must be >= group.min.session.timeout.ms ({min})"),
                    )
                },
            );
        }
        let listeners_text = self
            .effective_value("listeners")
            .expect("listeners has a default");
        self.listeners = parse_listeners("listeners", &listeners_text)?;
        self.advertised_listeners = match self.explicit.get("advertised.listeners") {
            Some(text) => {
                let advertised = parse_listeners("advertised.listeners", text)?;
                check_routable("advertised.listeners", text, &advertised, false)?;
                advertised
            }
            None => {
                check_routable(
                    "advertised.listeners",
                    &listeners_text,
                    &self.listeners,
                    true,
                )?;
                self.listeners.clone()
            }
        };
        if let Some(name) = &self.cluster.inter_broker_listener_name {
            if !self.advertised_listeners.iter().any(|l| &l.name == name) {
                return Err(ConfigError::new(
                    "inter.broker.listener.name",
                    name,
                    "must name one of advertised.listeners",
                ));
            }
        }
        Ok(())
    }

    /// The first key of `chain` the user set, with its value; else the first key with its
    /// effective value. For naming the culprit of a cross-key error.
    fn first_set(&self, chain: &[Synonym]) -> (&'static str, String) {
        chain
            .iter()
            .find_map(|synonym| {
                self.levels()
                    .get(synonym.key)
                    .map(|(value, _)| (synonym.key, value.to_string()))
            })
            .unwrap_or_else(|| {
                let key = chain[0].key;
                (key, self.effective_value(key).unwrap_or_default())
            })
    }

    /// Resolves a synonym chain against this broker's explicit settings; see [`resolve_chain`].
    pub(crate) fn resolve_chain(
        &self,
        chain: &[Synonym],
    ) -> Option<(String, ConfigSource, Vec<ConfigSynonym>)> {
        resolve_chain(self.levels(), chain)
    }

    /// The effective value of broker key `key` as DescribeConfigs text, following its unit
    /// synonyms (`log.retention.ms` reflects `log.retention.hours`). `None` for unknown keys
    /// and keys with no value.
    pub fn effective_value(&self, key: &str) -> Option<String> {
        let spec = broker_key(canonical_broker_key(key))?;
        self.resolve_chain(&broker_chain(spec.name))
            .map(|(value, _, _)| value)
    }

    /// DescribeConfigs for the BROKER resource: every broker key, with synonyms and
    /// documentation. See [`BrokerConfig::describe_filtered`].
    pub fn describe(&self) -> Vec<ConfigEntry> {
        self.describe_filtered(None, true, true)
    }

    /// DescribeConfigs for this broker's BROKER resource, limited to `keys` (None = all;
    /// unknown names are skipped). An entry is read-only unless the key is dynamic; its source
    /// is the level that supplies its value (the key, or a higher-precedence unit synonym, set
    /// per broker, as cluster default or statically), else Default. Synonyms are listed level
    /// by level, Kafka's order (DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG,
    /// STATIC_BROKER_CONFIG, DEFAULT_CONFIG).
    pub fn describe_filtered(
        &self,
        keys: Option<&[String]>,
        include_synonyms: bool,
        include_documentation: bool,
    ) -> Vec<ConfigEntry> {
        BROKER_KEYS
            .iter()
            .filter(|spec| keys.is_none_or(|keys| keys.iter().any(|key| key == spec.name)))
            .map(|spec| {
                let resolved = self.resolve_chain(&broker_chain(spec.name));
                let (value, source, synonyms) = match resolved {
                    Some((value, source, synonyms)) => (Some(value), source, synonyms),
                    None => (None, ConfigSource::Default, Vec::new()),
                };
                let is_sensitive = spec.config_type == ConfigType::Password;
                ConfigEntry {
                    name: spec.name.to_string(),
                    value: if is_sensitive { None } else { value },
                    read_only: !is_dynamic(spec.name),
                    source,
                    is_sensitive,
                    config_type: spec.config_type,
                    documentation: if include_documentation {
                        spec.doc.to_string()
                    } else {
                        String::new()
                    },
                    synonyms: if include_synonyms {
                        synonyms
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }

    /// DescribeConfigs for the cluster-default BROKER resource (empty name), as Kafka answers
    /// it: only the keys set as cluster defaults, each with that source and, if asked, that
    /// one synonym.
    pub fn describe_default(
        &self,
        keys: Option<&[String]>,
        include_synonyms: bool,
        include_documentation: bool,
    ) -> Vec<ConfigEntry> {
        self.dynamic
            .cluster_default
            .iter()
            .filter(|(key, _)| keys.is_none_or(|keys| keys.contains(key)))
            .filter_map(|(key, raw)| {
                let spec = broker_key(key)?;
                let value = canonical(spec.config_type, raw);
                let is_sensitive = spec.config_type == ConfigType::Password;
                Some(ConfigEntry {
                    name: spec.name.to_string(),
                    value: (!is_sensitive).then(|| value.clone()),
                    read_only: !is_dynamic(spec.name),
                    source: ConfigSource::DynamicDefaultBroker,
                    is_sensitive,
                    config_type: spec.config_type,
                    documentation: if include_documentation {
                        spec.doc.to_string()
                    } else {
                        String::new()
                    },
                    synonyms: if include_synonyms {
                        vec![ConfigSynonym {
                            name: spec.name.to_string(),
                            value,
                            source: ConfigSource::DynamicDefaultBroker,
                        }]
                    } else {
                        Vec::new()
                    },
                })
            })
            .collect()
    }
}

/// Typed reads of checked values, each following the key's unit synonyms and default.
struct Reader<'a> {
    levels: Levels<'a>,
}

impl Reader<'_> {
    /// The effective text of a key that always has a value.
    fn text(&self, key: &'static str) -> String {
        self.optional_text(key)
            .unwrap_or_else(|| panic!("{key} has a default"))
    }

    /// The effective text of a key, if it has one.
    fn optional_text(&self, key: &'static str) -> Option<String> {
        resolve_chain(self.levels, &broker_chain(key)).map(|(value, _, _)| value)
    }

    /// A checked 32-bit integer key.
    fn int(&self, key: &'static str) -> i32 {
        self.text(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} is checked to be a 32-bit integer"))
    }

    /// A checked 64-bit integer key.
    fn long(&self, key: &'static str) -> i64 {
        self.text(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} is checked to be an integer"))
    }

    /// A checked boolean key.
    fn boolean(&self, key: &'static str) -> bool {
        parse_bool(&self.text(key)).unwrap_or_else(|| panic!("{key} is checked to be a boolean"))
    }
}

/// Resolves a synonym chain: the first key set at any level wins (with the value of the
/// highest level setting it), else the first key with a default. Returns the value converted
/// to the chain's unit, the level it came from, and the DescribeConfigs synonyms (level by
/// level, highest first, each level's keys in chain order, then the default).
fn resolve_chain(
    levels: Levels<'_>,
    chain: &[Synonym],
) -> Option<(String, ConfigSource, Vec<ConfigSynonym>)> {
    let mut synonyms = Vec::new();
    let mut value = None;
    let mut source = ConfigSource::Default;
    for synonym in chain {
        if let Some((raw, level)) = levels.get(synonym.key) {
            let spec = broker_key(synonym.key).expect("synonym chains name catalogue keys");
            value = Some(synonym.convert(spec.config_type, raw));
            source = level;
            break;
        }
    }
    for (map, level) in levels.each() {
        for synonym in chain {
            let spec = broker_key(synonym.key).expect("synonym chains name catalogue keys");
            if let Some(raw) = map.get(synonym.key) {
                synonyms.push(ConfigSynonym {
                    name: synonym.key.to_string(),
                    value: canonical(spec.config_type, raw),
                    source: level,
                });
            }
        }
    }
    let default = chain.iter().find_map(|synonym| {
        let spec = broker_key(synonym.key).expect("synonym chains name catalogue keys");
        spec.default
            .map(|default| (synonym, spec.config_type, default))
    });
    if let Some((synonym, config_type, default)) = default {
        synonyms.push(ConfigSynonym {
            name: synonym.key.to_string(),
            value: canonical(config_type, default),
            source: ConfigSource::Default,
        });
        value.get_or_insert_with(|| synonym.convert(config_type, default));
    }
    value.map(|value| (value, source, synonyms))
}

/// Parses a listener list, `NAME://host:port[,NAME://host:port...]`, under `key`'s rules.
pub fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let refuse = |rule: String| Err(ConfigError::new(key, value, rule));
    let mut listeners: Vec<Listener> = Vec::new();
    for item in list_items(value) {
        let Some((name, address)) = item.split_once("://") else {
            return refuse(format!(
                "each listener must have the form NAME://host:port, and '{item}' does not"
            ));
        };
        let name = name.trim().to_ascii_uppercase();
        if name != "PLAINTEXT" {
            return refuse(format!(
                "only PLAINTEXT listeners are supported, and '{item}' uses {name}"
            ));
        }
        let (host, port) = if let Some(rest) = address.strip_prefix('[') {
            match rest.split_once("]:") {
                Some((host, port)) => (host, port),
                None => return refuse(format!("'{item}' has an unterminated IPv6 address")),
            }
        } else {
            match address.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, port),
                _ => {
                    return refuse(format!(
                        "each listener must have the form NAME://host:port, and '{item}' does \
                         not (put IPv6 addresses in brackets)"
                    ))
                }
            }
        };
        let Ok(port) = port.parse::<u16>() else {
            return refuse(format!(
                "the port of '{item}' must be a number from 0 to 65535"
            ));
        };
        if listeners.iter().any(|listener| listener.name == name) {
            return refuse(format!(
                "each listener must have a different name, and {name} appears twice"
            ));
        }
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        listeners.push(Listener {
            name,
            host: host.to_string(),
            port,
        });
    }
    if listeners.is_empty() {
        return refuse("must list at least one listener, as NAME://host:port".to_string());
    }
    Ok(listeners)
}

/// Kafka's rule for advertised listeners: clients must be able to connect to the host, so the
/// wildcard addresses are refused. `inherited` says the value was copied from `listeners`.
fn check_routable(
    key: &str,
    value: &str,
    listeners: &[Listener],
    inherited: bool,
) -> Result<(), ConfigError> {
    let wildcard = listeners
        .iter()
        .find(|listener| matches!(listener.host.as_str(), "0.0.0.0" | "::" | ""));
    match wildcard {
        None => Ok(()),
        Some(listener) => {
            let mut rule = format!(
                "cannot use the non-routable address {} in {listener}; use a host name or IP \
                 address clients can reach",
                listener.host
            );
            if inherited {
                rule.push_str(
                    " (advertised.listeners defaults to listeners; set advertised.listeners \
                     explicitly when listening on every interface)",
                );
            }
            Err(ConfigError::new(key, value, rule))
        }
    }
}

/// The transaction coordinator's settings, Kafka's `transaction.*` keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionSettings {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transaction.state.log.num.partitions`.
    pub log_num_partitions: i32,
    /// `transaction.state.log.replication.factor`.
    pub log_replication_factor: i16,
    /// `transaction.state.log.min.isr`.
    pub log_min_isr: i32,
    /// `transaction.state.log.segment.bytes`.
    pub log_segment_bytes: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: i64,
    /// `transaction.partition.verification.enable` (KIP-890).
    pub partition_verification_enable: bool,
}
