//! [`ZkStore`]'s dynamic broker configuration: `/config/brokers/<id>` and
//! `/config/brokers/<default>` (the same JSON as a topic's overrides), each change announced
//! by a `/config/changes/config_change_<seq>` naming `brokers/<id>` or `brokers/<default>`,
//! as Kafka's `AdminZkClient.changeBrokerConfig` does.

use std::collections::BTreeMap;

use zookeeper_client::Error as ClientError;

use super::store::{created_or_exists, persistent, persistent_sequential, ZkStore};
use super::znode::{self, paths};
use super::{client_error, ZkError};

impl ZkStore {
    /// The dynamic configuration of `entity` (a broker id or `<default>`); empty if none.
    pub async fn broker_config(&self, entity: &str) -> Result<BTreeMap<String, String>, ZkError> {
        let path = paths::broker_config(entity);
        match self.client.get_data(&path).await {
            Ok((data, _)) => Ok(znode::decode_entity_config(&path, &data)?),
            Err(ClientError::NoNode) => Ok(BTreeMap::new()),
            Err(e) => Err(client_error("get", &path)(e)),
        }
    }

    /// Replaces the dynamic configuration of `entity` and announces it with a sequential
    /// `/config/changes/config_change_<seq>` naming `brokers/<entity>`. Returns the
    /// notification's name.
    pub async fn set_broker_config(
        &self,
        entity: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<String, ZkError> {
        let path = paths::broker_config(entity);
        let data = znode::encode_topic_config(config);
        match self.client.set_data(&path, &data, None).await {
            Ok(_) => {}
            Err(ClientError::NoNode) => {
                created_or_exists(self.client.create(&path, &data, &persistent()).await)
                    .map_err(client_error("create", &path))?;
                // Lost a race with another creator: write over it.
                self.client
                    .set_data(&path, &data, None)
                    .await
                    .map_err(client_error("set", &path))?;
            }
            Err(e) => return Err(client_error("set", &path)(e)),
        }
        let prefix = format!("{}/{}", paths::CONFIG_CHANGES, paths::CONFIG_CHANGE_PREFIX);
        let notification = znode::encode_config_change(&format!("brokers/{entity}"));
        let (_, sequence) = self
            .client
            .create(&prefix, &notification, &persistent_sequential())
            .await
            .map_err(client_error("create", &prefix))?;
        Ok(format!("{}{sequence}", paths::CONFIG_CHANGE_PREFIX))
    }
}
