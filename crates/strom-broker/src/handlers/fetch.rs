//! `Fetch` with long polling.
//!
//! A fetch answers as soon as `min_bytes` are available or any partition has an error; only a
//! short read waits, up to `max_wait_ms`, for the high watermark of one of its partitions to
//! move. Before each read the request registers a notifier with every partition it reads, so a
//! wake-up between the read and the wait is not lost.
//!
//! Strom creates no fetch sessions: every response carries session id 0, which tells a client
//! that wanted one (the Java client) to keep sending full requests.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use strom_log::ReadError;
use tokio::sync::Notify;

use crate::broker::{leader_epoch_error, Broker};
use crate::dispatch::RequestContext;
use crate::partition::Partition;
use crate::server::Reply;

/// One partition of a fetch, resolved.
struct Wanted {
    topic: usize,
    partition: Option<Arc<Partition>>,
    /// An error found while resolving (unknown topic, fenced epoch).
    error: i16,
    index: i32,
    fetch_offset: i64,
    max_bytes: usize,
}

/// Handles `Fetch`.
pub fn handle(broker: &Arc<Broker>, ctx: RequestContext, request: FetchRequest) -> Reply {
    let mut skeleton = FetchResponse::default();
    if request.session_epoch > 0 {
        // An incremental fetch on a session Strom never created.
        skeleton.error_code = E::FetchSessionIdNotFound.code();
        return Reply::Ready(ctx.respond(&skeleton));
    }
    let mut wanted = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let resolved_name = if ctx.version >= 13 {
            broker
                .metadata()
                .topic_by_id(&topic.topic_id)
                .map(|t| t.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        let mut topic_response = FetchableTopicResponse::default();
        if ctx.version >= 13 {
            topic_response.topic_id = topic.topic_id;
        } else {
            topic_response.topic = topic.topic.clone();
        }
        skeleton.responses.push(topic_response);
        for p in &topic.partitions {
            let partition = resolved_name
                .as_deref()
                .and_then(|name| broker.partition(name, p.partition));
            let error = if resolved_name.is_none() {
                E::UnknownTopicId.code()
            } else if partition.is_none() {
                E::UnknownTopicOrPartition.code()
            } else {
                leader_epoch_error(p.current_leader_epoch)
            };
            wanted.push(Wanted {
                topic: topic_index,
                partition,
                error,
                index: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
            });
        }
    }
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = if request.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        request.max_bytes as usize
    };
    let read_committed = request.isolation_level == 1;
    Reply::Later(tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + max_wait;
        let notify = Arc::new(Notify::new());
        loop {
            for w in &wanted {
                if let (0, Some(partition)) = (w.error, &w.partition) {
                    partition.add_waiter(&notify);
                }
            }
            let (response, bytes, errors) =
                read_all(&skeleton, &wanted, max_bytes, read_committed, ctx.version);
            let now = tokio::time::Instant::now();
            if bytes >= min_bytes || errors || now >= deadline || wanted.is_empty() {
                return ctx.respond(&response);
            }
            if tokio::time::timeout_at(deadline, notify.notified())
                .await
                .is_err()
            {
                let (response, _, _) =
                    read_all(&skeleton, &wanted, max_bytes, read_committed, ctx.version);
                return ctx.respond(&response);
            }
        }
    }))
}

/// Reads every wanted partition once. Returns the response, the record bytes in it, and
/// whether any partition has an error.
fn read_all(
    skeleton: &FetchResponse,
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
    version: i16,
) -> (FetchResponse, usize, bool) {
    // The log start offset is carried from version 5; older versions keep the default.
    let with_start = |offset: i64| if version >= 5 { offset } else { -1 };
    let mut response = skeleton.clone();
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut errors = false;
    // Like Kafka: the first partition that returns data may exceed the limits by one batch.
    let mut min_one_message = true;
    for w in wanted {
        let mut data = PartitionData::default();
        data.partition_index = w.index;
        data.aborted_transactions = if read_committed {
            Some(Vec::new())
        } else {
            None
        };
        data.error_code = w.error;
        match (&w.partition, w.error) {
            (Some(partition), 0) if partition.is_deleted() => {
                data.error_code = E::UnknownTopicOrPartition.code();
            }
            (Some(partition), 0) => {
                let limit = w.max_bytes.min(remaining);
                match partition.read(w.fetch_offset, limit, min_one_message) {
                    Ok(info) => {
                        data.high_watermark = info.high_watermark;
                        data.last_stable_offset = info.high_watermark;
                        data.log_start_offset = with_start(info.log_start_offset);
                        if let Some(slice) = info.slice {
                            match slice.read_to_bytes() {
                                Ok(bytes) => {
                                    total += bytes.len();
                                    remaining = remaining.saturating_sub(bytes.len());
                                    if !bytes.is_empty() {
                                        min_one_message = false;
                                    }
                                    data.records = Some(bytes);
                                }
                                Err(e) => {
                                    tracing::error!(partition = %partition.topic_partition, error = %e, "reading the log failed");
                                    data.error_code = E::KafkaStorageError.code();
                                }
                            }
                        }
                    }
                    Err(ReadError::OffsetOutOfRange { .. }) => {
                        let (high_watermark, log_start_offset, _) = partition.offsets();
                        data.error_code = E::OffsetOutOfRange.code();
                        data.high_watermark = high_watermark;
                        data.last_stable_offset = high_watermark;
                        data.log_start_offset = with_start(log_start_offset);
                    }
                    Err(ReadError::Io(e)) => {
                        tracing::error!(partition = %partition.topic_partition, error = %e, "reading the log failed");
                        data.error_code = E::KafkaStorageError.code();
                    }
                }
            }
            _ => {
                data.high_watermark = -1;
            }
        }
        if data.error_code != 0 {
            errors = true;
        }
        response.responses[w.topic].partitions.push(data);
    }
    (response, total, errors)
}
