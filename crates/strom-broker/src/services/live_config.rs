//! The broker's configuration as it is now: the static configuration with the dynamic levels
//! (AlterConfigs on BROKER resources) merged over it, swapped whole when they change.
//!
//! [`LiveConfig::install`] rebuilds the configuration from new levels and pushes what changed
//! to the running services without a restart: every hosted partition's log settings (a topic
//! without an override follows the new `log.*` defaults, `message.max.bytes`, …), the replica
//! state's `min.insync.replicas`, and the replication throttles. Readers that must see dynamic
//! values (topic resolution, the background passes, the fetch paths) call
//! [`LiveConfig::current`]; `Services::config` stays the configuration the broker started with.
//!
//! It does not own where the levels are stored (the single node's metadata file,
//! `TopicAdmin::set_broker_config`; ZooKeeper's `/config/brokers/`, `ClusterNode`) nor which
//! keys are dynamic (`strom_meta::config::dynamic`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use strom_meta::config::dynamic::DynamicLayers;
use strom_meta::config::{BrokerConfig, ConfigError, TopicConfig};

use crate::services::metadata_cache::MetadataCache;
use crate::services::replica::ReplicaManager;

/// The current broker configuration; see the module documentation.
pub struct LiveConfig {
    current: RwLock<Arc<BrokerConfig>>,
    /// Serialises installs so two changes cannot interleave their pushes.
    installing: Mutex<()>,
}

impl LiveConfig {
    /// Starts from `config` (which may already hold dynamic levels read at start).
    pub fn new(config: Arc<BrokerConfig>) -> LiveConfig {
        LiveConfig {
            current: RwLock::new(config),
            installing: Mutex::new(()),
        }
    }

    /// The configuration now.
    pub fn current(&self) -> Arc<BrokerConfig> {
        self.current.read().unwrap().clone()
    }

    /// The dynamic levels now.
    pub fn layers(&self) -> DynamicLayers {
        self.current().dynamic.clone()
    }

    /// What the configuration would be with `layers` (for validation before storing them).
    pub fn with_layers(&self, layers: DynamicLayers) -> Result<BrokerConfig, ConfigError> {
        self.current().with_dynamic(layers)
    }

    /// Installs `layers` and applies the result to the hosted partitions (their topic's
    /// overrides from `metadata` over the new defaults) and to `replicas`' throttles and
    /// replica settings. Unchanged levels do nothing. Refused (nothing changes) if the levels
    /// do not resolve.
    pub fn install(
        &self,
        layers: DynamicLayers,
        metadata: &MetadataCache,
        replicas: Option<&ReplicaManager>,
    ) -> Result<(), ConfigError> {
        let _installing = self.installing.lock().unwrap();
        if self.current().dynamic == layers {
            return Ok(());
        }
        let next = Arc::new(self.with_layers(layers)?);
        *self.current.write().unwrap() = next.clone();
        tracing::info!(
            per_broker = ?next.dynamic.per_broker,
            cluster_default = ?next.dynamic.cluster_default,
            "dynamic broker configuration applied"
        );
        if let Some(replicas) = replicas {
            apply(&next, metadata, replicas);
        }
        Ok(())
    }
}

/// Pushes `config` to the running partitions and throttles.
pub fn apply(config: &BrokerConfig, metadata: &MetadataCache, replicas: &ReplicaManager) {
    replicas.quotas.configure(config);
    let overrides = |topic: &str| {
        metadata
            .cluster()
            .topics
            .get(topic)
            .map(|t| t.configs.clone())
            .unwrap_or_default()
    };
    let mut topics = BTreeSet::new();
    for partition in replicas.all_partitions() {
        let topic = partition.topic_partition.topic.clone();
        let resolved = TopicConfig::resolve(config, &overrides(&topic)).or_else(|error| {
            tracing::warn!(topic, %error, "topic configuration does not resolve; defaults apply");
            TopicConfig::resolve(config, &Default::default())
        });
        if let Ok(resolved) = resolved {
            partition.update_config(crate::services::log_config::log_config(&resolved));
        }
        topics.insert(topic);
    }
    for topic in topics {
        replicas.refresh_replica_settings(&topic);
    }
}
