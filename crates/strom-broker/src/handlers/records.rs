//! `DeleteRecords`: raise a partition's log start offset. In cluster mode only the leader
//! serves it (a follower answers NOT_LEADER_OR_FOLLOWER, as Kafka's brokers do, and clients
//! send it to the leader Metadata names); followers raise their own log start offset to the
//! leader's as they fetch (`services::replica::fetcher`). The answer does not wait for the
//! followers to follow (Kafka's waits until every in-sync replica's log start offset reaches
//! it).

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::services::Services;

/// Handles `DeleteRecords`. Offset -1 means the high watermark, as in Kafka.
pub fn delete_records(services: &Services, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut topic_result = DeleteRecordsTopicResult::default();
        topic_result.name = topic.name.clone();
        for p in topic.partitions {
            let mut result = DeleteRecordsPartitionResult::default();
            result.partition_index = p.partition_index;
            result.low_watermark = -1;
            match services.replicas.partition(&name, p.partition_index) {
                None => {
                    result.error_code = services
                        .replicas
                        .absent_partition_error(&name, p.partition_index)
                }
                Some(_)
                    if services.cluster.get().is_some()
                        && !leads(services, &name, p.partition_index) =>
                {
                    result.error_code = E::NotLeaderOrFollower.code();
                }
                Some(partition) => {
                    let mut log = partition.log().lock().unwrap();
                    let high_watermark = log.high_watermark();
                    let offset = if p.offset == -1 {
                        high_watermark
                    } else {
                        p.offset
                    };
                    if offset < 0 || offset > high_watermark {
                        result.error_code = E::OffsetOutOfRange.code();
                    } else {
                        match log.delete_records_before(offset) {
                            Ok(low) => result.low_watermark = low,
                            Err(e) => {
                                tracing::error!(partition = %partition.topic_partition, error = %e, "DeleteRecords failed");
                                result.error_code = E::KafkaStorageError.code();
                            }
                        }
                    }
                }
            }
            topic_result.partitions.push(result);
        }
        response.topics.push(topic_result);
    }
    response
}

/// Whether this broker leads the partition, as the controller last said.
fn leads(services: &Services, topic: &str, partition: i32) -> bool {
    services.metadata.leader(topic, partition) == Some(services.metadata.local_broker_id())
}
