//! `DeleteRecords`: raise a partition's log start offset. In cluster mode only the leader
//! serves it (a follower answers NOT_LEADER_OR_FOLLOWER, as Kafka's brokers do, and clients
//! send it to the leader Metadata names); followers raise their own log start offset to the
//! leader's as they fetch (`services::replica::fetcher`) and report it in their next fetch.
//! As Kafka's delayed DeleteRecords does, the answer waits until the leader's low watermark
//! (the smallest log start offset over the replicas on live brokers,
//! `services::replica::low_watermark`) reaches the requested offset, and carries it; after the
//! request's `timeout_ms` the partition is answered REQUEST_TIMED_OUT with the low watermark
//! reached so far, and NOT_LEADER_OR_FOLLOWER if leadership moved meanwhile.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use tokio::sync::Notify;

use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::replica::partition::Partition;
use crate::services::Services;

/// `DeleteRecords`, answered at once on a single node and once the followers followed (or the
/// request timed out) on a cluster.
pub fn delete_records_reply(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: DeleteRecordsRequest,
) -> Reply {
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    let (response, pending) = delete_records(services, request);
    if pending.is_empty() {
        return Reply::Ready(ctx.respond(&response));
    }
    let services = services.clone();
    Reply::Later(tokio::spawn(async move {
        let response = wait_low_watermarks(&services, response, pending, timeout).await;
        ctx.respond(&response)
    }))
}

/// A partition whose records were deleted on the leader, waiting for its followers.
struct Pending {
    /// Where its result is in the response (topic, partition).
    at: (usize, usize),
    partition: Arc<Partition>,
    offset: i64,
}

/// Handles `DeleteRecords` on this broker's logs. Offset -1 means the high watermark, as in
/// Kafka. Returns the response and, in cluster mode, the partitions still to wait for.
fn delete_records(
    services: &Services,
    request: DeleteRecordsRequest,
) -> (DeleteRecordsResponse, Vec<Pending>) {
    let cluster = services.cluster.get().is_some();
    let mut response = DeleteRecordsResponse::default();
    let mut pending = Vec::new();
    for (t, topic) in request.topics.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        let mut topic_result = DeleteRecordsTopicResult::default();
        topic_result.name = topic.name.clone();
        for (i, p) in topic.partitions.into_iter().enumerate() {
            let mut result = DeleteRecordsPartitionResult::default();
            result.partition_index = p.partition_index;
            result.low_watermark = -1;
            match services.replicas.partition(&name, p.partition_index) {
                None => {
                    result.error_code = services
                        .replicas
                        .absent_partition_error(&name, p.partition_index)
                }
                Some(_) if cluster && !leads(services, &name, p.partition_index) => {
                    result.error_code = E::NotLeaderOrFollower.code();
                }
                Some(partition) => {
                    let deleted = {
                        let mut log = partition.log().lock().unwrap();
                        let high_watermark = log.high_watermark();
                        let offset = if p.offset == -1 {
                            high_watermark
                        } else {
                            p.offset
                        };
                        if offset < 0 || offset > high_watermark {
                            Err(E::OffsetOutOfRange.code())
                        } else {
                            log.delete_records_before(offset)
                                .map(|low| (offset, low))
                                .map_err(|e| {
                                    tracing::error!(partition = %partition.topic_partition, error = %e, "DeleteRecords failed");
                                    E::KafkaStorageError.code()
                                })
                        }
                    };
                    match deleted {
                        Ok((offset, _)) if cluster => {
                            // Parked follower fetches answer with the new log start at once.
                            partition.wake();
                            pending.push(Pending {
                                at: (t, i),
                                partition,
                                offset,
                            });
                        }
                        Ok((_, low)) => result.low_watermark = low,
                        Err(code) => result.error_code = code,
                    }
                }
            }
            topic_result.partitions.push(result);
        }
        response.topics.push(topic_result);
    }
    (response, pending)
}

/// Waits (up to `timeout`) until every pending partition's low watermark reaches its offset,
/// and fills in their results.
async fn wait_low_watermarks(
    services: &Services,
    mut response: DeleteRecordsResponse,
    mut pending: Vec<Pending>,
    timeout: Duration,
) -> DeleteRecordsResponse {
    let deadline = tokio::time::Instant::now() + timeout;
    let notify = Arc::new(Notify::new());
    loop {
        for p in &pending {
            p.partition.add_waiter(&notify);
        }
        let expired = tokio::time::Instant::now() >= deadline;
        pending.retain(|p| {
            let result = &mut response.topics[p.at.0].partitions[p.at.1];
            let tp = &p.partition.topic_partition;
            let local = services.metadata.local_broker_id();
            if p.partition.is_deleted() || !leads(services, &tp.topic, tp.partition) {
                result.error_code = E::NotLeaderOrFollower.code();
                return false;
            }
            let replicas = services
                .metadata
                .partition(&tp.topic, tp.partition)
                .map(|state| state.replicas)
                .unwrap_or_default();
            let low = p
                .partition
                .low_watermark(local, &replicas, |id| services.metadata.is_live_broker(id));
            if low >= p.offset {
                result.low_watermark = low;
                return false;
            }
            if expired {
                tracing::info!(partition = %tp, offset = p.offset, low_watermark = low,
                    "DeleteRecords timed out waiting for the followers");
                result.error_code = E::RequestTimedOut.code();
                result.low_watermark = low;
                return false;
            }
            true
        });
        if pending.is_empty() {
            return response;
        }
        // At the deadline the loop runs once more and answers what is left as timed out.
        let _ = tokio::time::timeout_at(deadline, notify.notified()).await;
    }
}

/// Whether this broker leads the partition, as the controller last said.
fn leads(services: &Services, topic: &str, partition: i32) -> bool {
    services.metadata.leader(topic, partition) == Some(services.metadata.local_broker_id())
}
