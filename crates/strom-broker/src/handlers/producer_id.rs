//! `InitProducerId` for idempotent (non-transactional) producers; a transactional id goes to
//! the transaction coordinator (`txn.rs`).

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::services::Services;

/// Hands out a fresh producer id with epoch 0. As in Kafka, a non-transactional producer
/// always gets a new id, even when it sends its old id and epoch (KIP-360).
pub fn handle(services: &Services, _request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    let next = match services.cluster.get() {
        // Cluster mode: blocks of ids from ZooKeeper, unique across the brokers.
        Some(node) => super::topics::block_on(node.next_producer_id())
            .and_then(|id| id.map_err(|e| e.to_string())),
        None => services.producer_ids.next().map_err(|e| e.to_string()),
    };
    match next {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "allocating a producer id failed");
            response.error_code = E::KafkaStorageError.code();
        }
    }
    response
}
