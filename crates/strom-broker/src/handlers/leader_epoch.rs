//! `OffsetForLeaderEpoch` (v2–4, the range Kafka 4 keeps): where a leader epoch ends in this
//! broker's log. A follower asks it after a leader change to find where to truncate; a
//! consumer (KIP-320) asks it to check that the offset it holds still exists after one.

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::services::Services;

/// Handles `OffsetForLeaderEpoch`: per partition, the largest known epoch at or below the one
/// asked for and the offset where it ends (the start of the next epoch, or the log end for the
/// latest), or `-1, -1` when the log knows no epoch or the one asked for is above every epoch
/// it knows, as Kafka answers (`UNDEFINED_EPOCH`, `UNDEFINED_EPOCH_OFFSET`).
pub fn handle(
    services: &Services,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        let mut result = OffsetForLeaderTopicResult::default();
        result.topic = topic.topic.clone();
        for p in topic.partitions {
            let mut out = EpochEndOffset::default();
            out.partition = p.partition;
            out.leader_epoch = -1;
            out.end_offset = -1;
            let Some(partition) = services.replicas.partition(&name, p.partition) else {
                out.error_code = services.replicas.absent_partition_error(&name, p.partition);
                result.partitions.push(out);
                continue;
            };
            let epoch_error = partition.leader_epoch_error(p.current_leader_epoch);
            if epoch_error != 0 {
                out.error_code = epoch_error;
                result.partitions.push(out);
                continue;
            }
            if p.leader_epoch < 0 {
                out.error_code = E::InvalidRequest.code();
                result.partitions.push(out);
                continue;
            }
            let log = partition.log().lock().unwrap();
            let (epoch, end_offset) = log.end_offset_for_epoch(p.leader_epoch);
            out.leader_epoch = epoch;
            out.end_offset = end_offset;
            result.partitions.push(out);
        }
        response.topics.push(result);
    }
    response
}
