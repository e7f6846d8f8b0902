//! `ListOffsets`: earliest, latest, by timestamp, max timestamp.
//!
//! Isolation (v2+), as Kafka's `Partition.fetchOffsetForTimestamp`: the last fetchable offset
//! is the high watermark for `read_uncommitted` and the last stable offset for
//! `read_committed`; LATEST answers it, and a timestamp or max-timestamp lookup that lands at
//! or above it answers offset -1.

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol_3x::messages as k3;

use crate::protocol::request::RequestContext;
use crate::services::Services;

/// `timestamp` values with special meaning (KIP-79, KIP-734, KIP-1005).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// `isolation_level` of a `read_committed` client.
const READ_COMMITTED: i8 = 1;

/// Handles `ListOffsets`.
pub fn handle(
    services: &Services,
    ctx: &RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut topic_response = ListOffsetsTopicResponse::default();
        topic_response.name = topic.name.clone();
        for p in topic.partitions {
            let mut out = ListOffsetsPartitionResponse::default();
            out.partition_index = p.partition_index;
            out.timestamp = -1;
            out.offset = -1;
            out.leader_epoch = -1;
            let Some(partition) = services.replicas.partition(&name, p.partition_index) else {
                out.error_code = services
                    .replicas
                    .absent_partition_error(&name, p.partition_index);
                topic_response.partitions.push(out);
                continue;
            };
            let epoch_error = match partition.leader_epoch_error(p.current_leader_epoch) {
                // A replicated partition answers ListOffsets only on its leader.
                0 => partition.check_leader(),
                code => code,
            };
            if epoch_error != 0 {
                out.error_code = epoch_error;
                topic_response.partitions.push(out);
                continue;
            }
            let log = partition.log().lock().unwrap();
            let last_fetchable = if request.isolation_level == READ_COMMITTED {
                log.last_stable_offset()
            } else {
                log.high_watermark()
            };
            let found = match p.timestamp {
                LATEST => Ok(Some((last_fetchable, -1))),
                EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                LATEST_TIERED => Ok(Some((-1, -1))),
                MAX_TIMESTAMP => log.max_timestamp_offset(),
                ts if ts >= 0 => log.offset_for_timestamp(ts),
                other => {
                    out.error_code = E::InvalidRequest.code();
                    tracing::debug!(timestamp = other, "ListOffsets with an invalid timestamp");
                    Ok(None)
                }
            };
            match found {
                Ok(Some((offset, timestamp))) => {
                    // A timestamp lookup may land above what the client may read: not
                    // visible yet.
                    if (p.timestamp >= 0 || p.timestamp == MAX_TIMESTAMP)
                        && offset >= last_fetchable
                    {
                        out.offset = -1;
                    } else {
                        out.offset = offset;
                        out.timestamp = timestamp;
                        if offset >= 0 && ctx.version >= 4 {
                            out.leader_epoch = partition.leader_epoch();
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(partition = %partition.topic_partition, error = %e, "offset lookup failed");
                    out.error_code = E::KafkaStorageError.code();
                }
            }
            topic_response.partitions.push(out);
        }
        response.topics.push(topic_response);
    }
    response
}

/// Handles `ListOffsets` v0, on Kafka 3.9's message types: each partition answers
/// `old_style_offsets`, up to `max_num_offsets` segment-granular offsets in descending order
/// (`Log::legacy_offsets_before`), as Kafka 3.9's `handleListOffsetRequestV0` did. For a
/// consumer (replica id -1) offsets above the high watermark are replaced by the high
/// watermark itself, so a consumer is never pointed at records it cannot read yet.
pub fn handle_v0(
    services: &Services,
    ctx: &RequestContext,
    request: k3::ListOffsetsRequest,
) -> k3::ListOffsetsResponse {
    let from_consumer = request.replica_id.0 == -1;
    let now = crate::clock::now_ms();
    let mut response = k3::ListOffsetsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut topic_response = k3::list_offsets_response::ListOffsetsTopicResponse::default();
        topic_response.name = topic.name.clone();
        for p in topic.partitions {
            let mut out = k3::list_offsets_response::ListOffsetsPartitionResponse::default();
            out.partition_index = p.partition_index;
            let Some(partition) = services.replicas.partition(&name, p.partition_index) else {
                out.error_code = services
                    .replicas
                    .absent_partition_error(&name, p.partition_index);
                topic_response.partitions.push(out);
                continue;
            };
            let log = partition.log().lock().unwrap();
            match log.legacy_offsets_before(p.timestamp, p.max_num_offsets, now) {
                Ok(Some(mut offsets)) => {
                    let high_watermark = log.high_watermark();
                    if from_consumer && offsets.iter().any(|&o| o > high_watermark) {
                        offsets.retain(|&o| o <= high_watermark);
                        offsets.insert(0, high_watermark);
                    }
                    out.old_style_offsets = offsets;
                }
                Ok(None) => {
                    // Kafka 3.9 failed on the negative array size: UNKNOWN_SERVER_ERROR.
                    tracing::debug!(client = %ctx.client_id, max = p.max_num_offsets, "ListOffsets v0 with a negative max_num_offsets");
                    out.error_code = E::UnknownServerError.code();
                }
                Err(e) => {
                    tracing::error!(partition = %partition.topic_partition, error = %e, "offset lookup failed");
                    out.error_code = E::KafkaStorageError.code();
                }
            }
            topic_response.partitions.push(out);
        }
        response.topics.push(topic_response);
    }
    response
}
