//! Dynamic broker configuration on a cluster broker: `/config/brokers/<id>` and
//! `/config/brokers/<default>` in ZooKeeper, as Kafka keeps them.
//!
//! - AlterConfigs and IncrementalAlterConfigs on a BROKER resource through any broker write
//!   the entity's znode and a `/config/changes` notification naming `brokers/<entity>`
//!   ([`ClusterNode::alter_broker_config`]); the broker that wrote it installs it at once.
//! - Every broker's runtime, when the notifications' watch fires, reloads its two levels if a
//!   notification names `brokers/<default>` or `brokers/<its id>`
//!   ([`ClusterNode::reload_broker_configs`], called from `apply_config_changes`), and installs
//!   them in the live configuration (`LiveConfig::install`: log settings of every hosted
//!   partition, `min.insync.replicas`, the replication throttles).
//! - A broker reads both levels at start, before opening its logs (`broker::handle`), so one
//!   that was down when they changed starts with them.

use std::collections::BTreeMap;
use std::sync::Weak;

use kafka_protocol::error::ResponseError as E;
use strom_meta::config::dynamic::{DynamicLayers, DEFAULT_ENTITY};
use strom_meta::zk::ZkError;

use super::ClusterNode;
use crate::services::topic_error::TopicError;

impl ClusterNode {
    /// True if `entity` (`<default>` or a broker id) configures this broker.
    pub(super) fn configures_me(&self, entity: &str) -> bool {
        entity == DEFAULT_ENTITY || entity == self.registration.id.to_string()
    }

    /// Reads this broker's two dynamic levels from ZooKeeper and installs them. Returns true
    /// if the broker's default `unclean.leader.election.enable` changed (the controller then
    /// looks at every topic again).
    pub(super) async fn reload_broker_configs(&self) -> Result<bool, ZkError> {
        let store = self.store();
        let stored = DynamicLayers {
            cluster_default: store.broker_config(DEFAULT_ENTITY).await?,
            per_broker: store
                .broker_config(&self.registration.id.to_string())
                .await?,
        };
        let (layers, dropped) = stored.sanitized();
        for error in dropped {
            tracing::error!(%error, "dynamic broker configuration in ZooKeeper skipped");
        }
        let before = self.live.current().unclean_leader_election_enable;
        let replicas = self.replicas.get().and_then(Weak::upgrade);
        if let Err(error) = self
            .live
            .install(layers, &self.metadata, replicas.as_deref())
        {
            tracing::error!(%error, "dynamic broker configuration does not resolve; not applied");
        }
        Ok(before != self.live.current().unclean_leader_election_enable)
    }

    /// AlterConfigs on a BROKER resource on a cluster: replaces the dynamic level of `entity`
    /// (`<default>` or a broker id) in ZooKeeper with a `/config/changes` notification, after
    /// checking that this broker's configuration with it still resolves (nothing more with
    /// `validate_only`), and installs it here at once if it configures this broker.
    pub async fn alter_broker_config(
        &self,
        entity: &str,
        level: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let mut layers = self.live.layers();
        if entity == DEFAULT_ENTITY {
            layers.cluster_default = level.clone();
        } else {
            layers.per_broker = level.clone();
        }
        self.live
            .with_layers(layers)
            .map_err(|e| TopicError::new(E::InvalidRequest.code(), e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        self.store()
            .set_broker_config(entity, &level)
            .await
            .map_err(|e| TopicError::new(E::UnknownServerError.code(), e.to_string()))?;
        tracing::info!(entity, "altered dynamic broker configuration in ZooKeeper");
        if self.configures_me(entity) {
            self.reload_broker_configs()
                .await
                .map_err(|e| TopicError::new(E::UnknownServerError.code(), e.to_string()))?;
        }
        Ok(())
    }
}

impl ClusterNode {
    /// The dynamic level of `entity` as stored in ZooKeeper (for IncrementalAlterConfigs).
    pub async fn stored_broker_config(
        &self,
        entity: &str,
    ) -> Result<BTreeMap<String, String>, TopicError> {
        self.store()
            .broker_config(entity)
            .await
            .map_err(|e| TopicError::new(E::UnknownServerError.code(), e.to_string()))
    }
}
