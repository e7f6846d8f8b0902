//! Topic configuration on a cluster broker: the overrides in `/config/topics/<t>`, kept in the
//! metadata cache, where DescribeConfigs, the replica manager (log settings,
//! `min.insync.replicas`) and fetch read them, as on a single node.
//!
//! - A controller request that first names a topic (or names it under a new topic id) reads
//!   them before it is applied ([`ClusterNode::load_topic_configs`]); a topic first named by a
//!   LeaderAndIsr (which the controller sends before UpdateMetadata) enters the cache then,
//!   with its partition count from `/brokers/topics/<t>`, so its partitions are hosted and led
//!   with its settings.
//! - AlterConfigs and IncrementalAlterConfigs through any broker write `/config/topics/<t>` and
//!   a `/config/changes` notification ([`ClusterNode::alter_topic_config`]); every broker reads
//!   the topics the notifications name when their watch fires
//!   ([`ClusterNode::apply_config_changes`]), and the controller gets the topics'
//!   `unclean.leader.election.enable` from it.
//!
//! A topic's hosted partitions get its log settings and replica settings
//! (`min.insync.replicas`) whenever its overrides are read.
//! Notifications naming `brokers/<default>` or `brokers/<this broker>` reload the dynamic
//! broker configuration (`broker_configs.rs`).
//! Notifications older than 15 minutes are deleted after each pass, as Kafka's brokers do.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use kafka_protocol::error::ResponseError as E;
use strom_meta::config::TopicConfig;
use strom_meta::TopicMetadata;
use uuid::Uuid;

use super::ClusterNode;
use crate::interbroker::PartitionCommand;
use crate::services::replica::ReplicaManager;
use crate::services::topic_error::TopicError;

/// How long a `/config/changes` notification is kept (Kafka's 15 minutes).
const CONFIG_CHANGE_EXPIRY_MS: i64 = 15 * 60 * 1000;

impl ClusterNode {
    /// The replica manager whose partitions get their topic's log settings (set once by the
    /// wiring).
    pub fn set_replica_manager(&self, replicas: &Arc<ReplicaManager>) {
        let _ = self.replicas.set(Arc::downgrade(replicas));
    }

    /// Reads the overrides (and, for a topic the cache does not hold yet, the assignment) of
    /// every topic named in `partitions` whose overrides were not read for its current id and
    /// puts them in the metadata cache. A failed read is logged and retried at the next
    /// request naming the topic.
    pub async fn load_topic_configs(&self, partitions: &[PartitionCommand]) {
        let named: BTreeMap<&str, Uuid> = partitions
            .iter()
            .map(|p| (p.info.partition.topic.as_str(), p.topic_id))
            .collect();
        for (topic, id) in named {
            if self.configs_read.lock().unwrap().get(topic) == Some(&id) {
                continue;
            }
            let store = self.store();
            let read = async {
                let configs = store.topic_config(topic).await?;
                let assignment = store.topic_assignment(topic).await?;
                Ok::<_, strom_meta::zk::ZkError>((configs, assignment))
            };
            let (configs, assignment) = match read.await {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(topic, %error, "reading the topic's configuration failed");
                    continue;
                }
            };
            let Some(assignment) = assignment.filter(|a| a.value.topic_id == id) else {
                continue; // deleted or recreated meanwhile: a later request names the new one
            };
            if !self.install_configs(topic, id, &configs) {
                let _change = self.cache_change.lock().unwrap();
                let mut cluster = self.metadata.cluster().clone();
                self.metadata.remove_topic(topic);
                let partitions = assignment.value.partitions;
                cluster.topics.insert(
                    topic.to_string(),
                    TopicMetadata {
                        name: topic.to_string(),
                        topic_id: id,
                        partitions: partitions.keys().max().map_or(0, |p| p + 1),
                        replication_factor: partitions
                            .values()
                            .next()
                            .map_or(0, |r| r.len() as i16),
                        configs: configs.clone(),
                        internal: strom_meta::topic::is_internal_topic(topic),
                    },
                );
                cluster.version += 1;
                self.metadata.replace(cluster);
            }
            self.configs_read
                .lock()
                .unwrap()
                .insert(topic.to_string(), id);
        }
    }

    /// Sets `configs` on `topic` in the cache if it holds the topic under `id` and applies its
    /// log settings to the hosted partitions; false if the cache does not hold it.
    fn install_configs(&self, topic: &str, id: Uuid, configs: &BTreeMap<String, String>) -> bool {
        {
            let _change = self.cache_change.lock().unwrap();
            let mut cluster = self.metadata.cluster().clone();
            match cluster.topics.get_mut(topic) {
                Some(known) if known.topic_id == id => {
                    if known.configs == *configs {
                        return true;
                    }
                    known.configs = configs.clone();
                }
                _ => return false,
            }
            cluster.version += 1;
            self.metadata.replace(cluster);
        }
        let Some(replicas) = self.replicas.get().and_then(Weak::upgrade) else {
            return true;
        };
        let log_config = crate::services::log_config::log_config(&self.resolve(topic, configs));
        for partition in replicas.all_partitions() {
            if partition.topic_partition.topic == topic {
                partition.update_config(log_config.clone());
            }
        }
        replicas.refresh_replica_settings(topic);
        tracing::info!(topic, "topic configuration applied");
        true
    }

    /// A topic's overrides resolved against this broker's defaults (the defaults alone if
    /// they do not resolve, which is logged).
    fn resolve(&self, topic: &str, configs: &BTreeMap<String, String>) -> TopicConfig {
        TopicConfig::resolve(&self.live.current(), configs).unwrap_or_else(|error| {
            tracing::warn!(topic, %error, "topic configuration does not resolve; defaults apply");
            TopicConfig::resolve(&self.live.current(), &BTreeMap::new())
                .expect("the broker's own defaults resolve")
        })
    }

    /// Reads the `/config/changes` notifications not applied yet and the overrides of the
    /// topics they name, and installs them; returns each such topic with its resolved
    /// `unclean.leader.election.enable` (for the controller).
    pub async fn apply_config_changes(&self) -> Vec<(String, bool)> {
        let store = self.store();
        let changes = match store.config_changes().await {
            Ok(changes) => changes,
            Err(error) => {
                tracing::warn!(%error, "reading the configuration changes failed");
                return Vec::new();
            }
        };
        let last = self.last_config_change.lock().unwrap().clone();
        let mut topics: Vec<String> = Vec::new();
        let mut brokers = false;
        let mut newest = None;
        for (name, entity) in changes {
            if last.as_ref().is_some_and(|last| name <= *last) {
                continue;
            }
            if let Some(broker) = entity.strip_prefix("brokers/") {
                brokers |= self.configures_me(broker);
            }
            if let Some(topic) = entity.strip_prefix("topics/") {
                if !topics.iter().any(|t| t == topic) {
                    topics.push(topic.to_string());
                }
            }
            newest = Some(name);
        }
        let mut changed = Vec::new();
        if brokers {
            match self.reload_broker_configs().await {
                // A new default for unclean leader election: the controller looks at every
                // topic again (those with an override resolve to it unchanged).
                Ok(true) => {
                    let names: Vec<String> =
                        self.metadata.cluster().topics.keys().cloned().collect();
                    for topic in names {
                        if !topics.contains(&topic) {
                            topics.push(topic);
                        }
                    }
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "reading the dynamic broker configuration failed");
                    return changed; // the notifications stay unapplied: read again next time
                }
            }
        }
        for topic in topics {
            let configs = match store.topic_config(&topic).await {
                Ok(configs) => configs,
                Err(error) => {
                    tracing::warn!(topic, %error, "reading the topic's configuration failed");
                    return changed; // the notifications stay unapplied: read again next time
                }
            };
            let id = self
                .metadata
                .cluster()
                .topics
                .get(&topic)
                .map(|t| t.topic_id);
            if let Some(id) = id {
                self.install_configs(&topic, id, &configs);
            }
            let unclean = self
                .resolve(&topic, &configs)
                .unclean_leader_election_enable;
            changed.push((topic, unclean));
        }
        if newest.is_some() {
            *self.last_config_change.lock().unwrap() = newest;
        }
        let expired = crate::clock::now_ms() - CONFIG_CHANGE_EXPIRY_MS;
        if let Err(error) = store.purge_config_changes(expired).await {
            tracing::debug!(%error, "purging old configuration changes failed");
        }
        changed
    }

    /// AlterConfigs of a topic on a cluster: replaces its overrides in `/config/topics/<t>`
    /// with a `/config/changes` notification (after checking they resolve and the topic
    /// exists; nothing more with `validate_only`), and installs them on this broker at once.
    pub async fn alter_topic_config(
        &self,
        topic: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        TopicConfig::resolve(&self.live.current(), &configs)
            .map_err(|e| TopicError::new(E::InvalidConfig.code(), e.to_string()))?;
        let Some(id) = self
            .metadata
            .cluster()
            .topics
            .get(topic)
            .map(|t| t.topic_id)
        else {
            return Err(TopicError::new(
                E::UnknownTopicOrPartition.code(),
                format!("topic '{topic}' does not exist"),
            ));
        };
        if validate_only {
            return Ok(());
        }
        self.store()
            .set_topic_config(topic, &configs)
            .await
            .map_err(|e| TopicError::new(E::UnknownServerError.code(), e.to_string()))?;
        self.install_configs(topic, id, &configs);
        tracing::info!(topic, "altered topic configuration in ZooKeeper");
        Ok(())
    }
}
