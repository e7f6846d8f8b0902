//! The controller's reads of ZooKeeper into its input types: the registered brokers and every
//! topic with the one setting elections need. Used by the runtime (`runtime.rs`).

use std::collections::BTreeMap;

use strom_meta::config::{BrokerConfig, TopicConfig};
use strom_meta::controller::{LiveBroker, TopicInfo};
use strom_meta::zk::{ZkError, ZkStore};

/// The registered brokers, as the controller sees them.
pub(super) async fn read_brokers(store: &ZkStore) -> Result<Vec<LiveBroker>, ZkError> {
    Ok(store
        .brokers()
        .await?
        .into_values()
        .map(|b| LiveBroker {
            registration: b.registration,
            broker_epoch: b.broker_epoch,
        })
        .collect())
}

/// Every topic with its assignment and `unclean.leader.election.enable` (its override, else
/// this broker's default).
pub(super) async fn read_topics(
    store: &ZkStore,
    config: &BrokerConfig,
) -> Result<BTreeMap<String, TopicInfo>, ZkError> {
    let mut topics = BTreeMap::new();
    for (name, assignment) in store.topic_assignments().await? {
        let overrides = store.topic_config(&name).await?;
        let unclean = match TopicConfig::resolve(config, &overrides) {
            Ok(resolved) => resolved.unclean_leader_election_enable,
            Err(error) => {
                tracing::warn!(topic = %name, %error, "topic configuration does not resolve");
                config.unclean_leader_election_enable
            }
        };
        topics.insert(
            name,
            TopicInfo {
                assignment: assignment.value,
                unclean_leader_election: unclean,
            },
        );
    }
    Ok(topics)
}
