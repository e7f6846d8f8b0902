//! `DescribeProducers`: the producer state of partitions this broker holds (KIP-664, what
//! `kafka-transactions.sh describe-producers` and `find-hanging` read).
//!
//! As Kafka's `ReplicaManager.activeProducerState`: every producer the partition's log
//! remembers, from any replica with the log (the admin client asks the leader unless told a
//! broker). A partition the cluster does not have answers `UNKNOWN_TOPIC_OR_PARTITION`, one
//! this broker does not hold `NOT_LEADER_OR_FOLLOWER`, one whose log failed to open
//! `KAFKA_STORAGE_ERROR`. Not here: authorization (Strom has no authorizer).

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use strom_log::producer_state::ProducerEntry;

use crate::services::Services;

/// Handles `DescribeProducers`.
pub fn describe_producers(
    services: &Services,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut response = DescribeProducersResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let partition_count = services
            .metadata
            .cluster()
            .topics
            .get(&name)
            .map_or(0, |t| t.partitions);
        let mut t = TopicResponse::default();
        t.name = topic.name;
        for index in topic.partition_indexes {
            let mut p = PartitionResponse::default();
            p.partition_index = index;
            let hosted = services
                .replicas
                .partition(&name, index)
                .filter(|partition| !partition.is_deleted());
            match hosted {
                _ if !(0..partition_count).contains(&index) => {
                    p.error_code = E::UnknownTopicOrPartition.code();
                }
                Some(partition) => {
                    let log = partition.log().lock().unwrap();
                    let mut producers: Vec<ProducerState> = log
                        .producer_state()
                        .producers()
                        .map(|(id, entry)| producer_state(id, entry))
                        .collect();
                    drop(log);
                    producers.sort_by_key(|s| s.producer_id.0);
                    p.active_producers = producers;
                }
                None => {
                    p.error_code = match services.replicas.absent_partition_error(&name, index) {
                        code if code == E::UnknownTopicOrPartition.code() => {
                            E::NotLeaderOrFollower.code()
                        }
                        code => code,
                    };
                }
            }
            t.partitions.push(p);
        }
        response.topics.push(t);
    }
    response
}

/// One producer as DescribeProducers describes it: its last batch's sequence and timestamp
/// (-1 if the log remembers none, e.g. after only a marker), and its open transaction's first
/// offset (-1 if none).
fn producer_state(producer_id: i64, entry: &ProducerEntry) -> ProducerState {
    let last = entry.batches.back();
    ProducerState::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(i32::from(entry.epoch))
        .with_last_sequence(last.map_or(-1, |b| b.last_sequence))
        .with_last_timestamp(last.map_or(-1, |b| b.max_timestamp))
        .with_coordinator_epoch(entry.coordinator_epoch)
        .with_current_txn_start_offset(entry.current_txn_first_offset.unwrap_or(-1))
}
