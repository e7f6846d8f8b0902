//! The metadata cache: what this broker believes about the cluster, as the handlers answer
//! it — the topics and their configuration overrides ([`ClusterMetadata`]), this broker's id,
//! the cluster id and the advertised listeners.
//!
//! It is read on request paths and written only by the service that owns a change (topic
//! changes: [`crate::services::topics::TopicAdmin`], after the metadata store has them). It does
//! not own persistence.

use std::sync::{RwLock, RwLockReadGuard};

use strom_meta::config::Listener;
use strom_meta::replication::BrokerId;
use strom_meta::ClusterMetadata;

/// See the module documentation.
pub struct MetadataCache {
    local_broker_id: BrokerId,
    cluster_id: String,
    advertised: Vec<Listener>,
    cluster: RwLock<ClusterMetadata>,
}

impl MetadataCache {
    /// A cache holding `cluster` as loaded from the metadata store.
    pub fn new(
        local_broker_id: BrokerId,
        cluster: ClusterMetadata,
        advertised: Vec<Listener>,
    ) -> MetadataCache {
        MetadataCache {
            local_broker_id,
            cluster_id: cluster.cluster_id.clone(),
            advertised,
            cluster: RwLock::new(cluster),
        }
    }

    /// This broker's `broker.id`.
    pub fn local_broker_id(&self) -> BrokerId {
        self.local_broker_id
    }

    /// The cluster id from `meta.properties` (or newly generated).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// This broker's advertised listeners, with port 0 resolved to the bound port.
    pub fn advertised(&self) -> &[Listener] {
        &self.advertised
    }

    /// The topics as last written.
    pub fn cluster(&self) -> RwLockReadGuard<'_, ClusterMetadata> {
        self.cluster.read().unwrap()
    }

    /// Replaces the topics with `next`, which the metadata store already holds.
    pub(crate) fn replace(&self, next: ClusterMetadata) {
        *self.cluster.write().unwrap() = next;
    }
}
