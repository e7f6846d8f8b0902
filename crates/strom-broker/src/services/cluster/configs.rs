//! Topic configuration on a cluster broker: the overrides in `/config/topics/<t>`, read when a
//! controller request first names a topic (or names it under a new topic id) and kept in the
//! metadata cache, where DescribeConfigs, the replica manager (log settings,
//! `min.insync.replicas`) and fetch read them, as on a single node. A topic first named by a
//! LeaderAndIsr (which the controller sends before UpdateMetadata) enters the cache then, with
//! its partition count from `/brokers/topics/<t>`, so its partitions are hosted and led with its
//! settings; partitions already hosted (opened from disk at startup, before the cache knew the
//! topic) get its log settings when they are read.
//!
//! Not yet: changes after creation (AlterConfigs on a cluster, `/config/changes`).

use std::collections::BTreeMap;

use strom_meta::config::TopicConfig;
use strom_meta::TopicMetadata;
use uuid::Uuid;

use super::ClusterNode;
use crate::interbroker::PartitionCommand;
use crate::services::replica::ReplicaManager;

impl ClusterNode {
    /// Reads the overrides (and, for a topic the cache does not hold yet, the assignment) of
    /// every topic named in `partitions` whose overrides were not read for its current id, puts
    /// them in the metadata cache and applies the topic's log settings to its hosted
    /// partitions. A failed read is logged and retried at the next request naming the topic.
    pub async fn load_topic_configs(
        &self,
        partitions: &[PartitionCommand],
        replicas: &ReplicaManager,
    ) {
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
            {
                let _change = self.cache_change.lock().unwrap();
                let mut cluster = self.metadata.cluster().clone();
                match cluster.topics.get_mut(topic) {
                    Some(known) if known.topic_id == id => known.configs = configs.clone(),
                    _ => {
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
                    }
                }
                cluster.version += 1;
                self.metadata.replace(cluster);
            }
            self.configs_read
                .lock()
                .unwrap()
                .insert(topic.to_string(), id);
            let resolved = TopicConfig::resolve(&self.config, &configs).or_else(|error| {
                tracing::warn!(topic, %error, "topic configuration does not resolve; defaults apply");
                TopicConfig::resolve(&self.config, &BTreeMap::new())
            });
            let Ok(resolved) = resolved else { continue };
            let log_config = crate::services::topics::log_config(&resolved);
            for partition in replicas.all_partitions() {
                if partition.topic_partition.topic == topic {
                    partition.update_config(log_config.clone());
                }
            }
        }
    }
}
