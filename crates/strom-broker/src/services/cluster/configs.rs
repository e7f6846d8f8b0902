//! Topic configuration on a cluster: the overrides live in `/config/topics/<t>` (written by any
//! broker, announced by a sequential `/config/changes/config_change_<n>` naming `topics/<t>`),
//! and every broker keeps its metadata cache and the logs and replica settings it hosts in step
//! with them, as Kafka's ZooKeeper-mode brokers do:
//!
//! - a LeaderAndIsr reads the overrides of its topics not read yet, before the logs are made;
//! - the change notifications (watched by every broker's runtime) re-read the topics they name,
//!   in order, each once, and the broker's wiring applies them to the hosted partitions;
//! - AlterConfigs, IncrementalAlterConfigs and DescribeConfigs read the current overrides from
//!   ZooKeeper, so they are right on a broker that hosts nothing of the topic.
//!
//! It does not own the configuration rules (`strom_meta::config::TopicConfig`) nor how a
//! change reaches a log (`ReplicaManager::refresh_topic_settings`).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError as E;
use strom_meta::config::TopicConfig;

use super::ClusterNode;
use crate::services::topic_error::TopicError;

impl ClusterNode {
    /// Sets what to call when a topic's overrides changed (the wiring refreshes the hosted
    /// partitions' log and replica settings). Set once, before the runtime starts.
    pub fn on_topic_config_change(&self, apply: super::TopicConfigHook) {
        let _ = self.topic_config_changed.set(apply);
    }

    /// Reads the overrides of each of `topics` that this broker has not read yet.
    pub async fn load_topic_configs<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        for topic in topics {
            if self.metadata.topic_configs(topic).is_none() {
                self.reload_topic_config(topic).await;
            }
        }
    }

    /// Reads a topic's overrides from ZooKeeper again and applies them if they changed.
    /// Returns them, or `None` if ZooKeeper could not be read (the cache keeps what it had).
    pub async fn reload_topic_config(&self, topic: &str) -> Option<BTreeMap<String, String>> {
        match self.store().topic_config(topic).await {
            Ok(configs) => {
                if self.metadata.set_topic_configs(topic, configs.clone()) {
                    tracing::info!(topic, ?configs, "topic configuration read from ZooKeeper");
                    if let Some(apply) = self.topic_config_changed.get() {
                        apply(topic);
                    }
                }
                Some(configs)
            }
            Err(error) => {
                tracing::warn!(topic, %error, "reading a topic's configuration failed");
                None
            }
        }
    }

    /// Applies the configuration change notifications newer than the last one applied (at
    /// the first call, only remembers the newest: the overrides of hosted topics are read when
    /// they are hosted).
    pub async fn apply_config_changes(&self) {
        let changes = match self.store().config_changes().await {
            Ok(changes) => changes,
            Err(error) => {
                tracing::warn!(%error, "reading the configuration changes failed");
                return;
            }
        };
        let newest = changes.last().map(|(name, _)| name.clone());
        let (initialized, last) = self.last_config_change.lock().unwrap().clone();
        if initialized {
            for (name, entity) in &changes {
                if last.as_ref().is_some_and(|last| name <= last) {
                    continue;
                }
                if let Some(topic) = entity.strip_prefix("topics/") {
                    self.reload_topic_config(topic).await;
                }
            }
        }
        let mut state = self.last_config_change.lock().unwrap();
        state.0 = true;
        if newest.is_some() && newest > state.1 {
            state.1 = newest;
        }
    }

    /// Reads every known topic's overrides again (after a ZooKeeper reconnection, when change
    /// notifications may have been missed).
    pub async fn reload_all_topic_configs(&self) {
        for topic in self.metadata.topics_with_configs() {
            self.reload_topic_config(&topic).await;
        }
        self.apply_config_changes().await;
    }

    /// AlterConfigs on a topic: replaces its overrides with `configs` (checked first, as a
    /// single node checks them) in ZooKeeper with a change notification, and applies them here
    /// at once (the other brokers follow the notification). `validate_only` only checks.
    pub async fn alter_topic_config(
        &self,
        topic: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        TopicConfig::resolve(&self.config, &configs)
            .map_err(|e| TopicError::new(E::InvalidConfig.code(), e.to_string()))?;
        self.check_topic_exists(topic).await?;
        if validate_only {
            return Ok(());
        }
        self.store()
            .set_topic_config(topic, &configs)
            .await
            .map_err(|e| TopicError::new(E::UnknownServerError.code(), e.to_string()))?;
        tracing::info!(topic, ?configs, "altered topic configuration");
        self.reload_topic_config(topic).await;
        Ok(())
    }

    /// A topic's current overrides, read from ZooKeeper (UNKNOWN_TOPIC_OR_PARTITION if it does
    /// not exist).
    pub async fn current_topic_config(
        &self,
        topic: &str,
    ) -> Result<BTreeMap<String, String>, TopicError> {
        self.check_topic_exists(topic).await?;
        self.reload_topic_config(topic).await.ok_or_else(|| {
            TopicError::new(
                E::UnknownServerError.code(),
                format!("cannot read the configuration of topic '{topic}' from ZooKeeper"),
            )
        })
    }

    async fn check_topic_exists(&self, topic: &str) -> Result<(), TopicError> {
        match self.store().topic_assignment(topic).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(TopicError::new(
                E::UnknownTopicOrPartition.code(),
                format!("topic '{topic}' does not exist"),
            )),
            Err(e) => Err(TopicError::new(E::UnknownServerError.code(), e.to_string())),
        }
    }
}
