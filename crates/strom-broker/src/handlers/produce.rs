//! `Produce`: validate and append inline (in request order), then acknowledge once the data
//! is durable per the partition's flush policy. A transactional batch that opens its
//! producer's transaction on a partition first waits for the coordinator's KIP-890
//! verification ([`crate::services::txn::verify`]): it is appended by a task, behind any
//! earlier waiting batch of the same producer there, and the response waits for it; the
//! connection keeps reading and starting requests meanwhile.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use strom_log::{AppendError, AppendInfo, BatchError};

use super::{str_bytes, topic_name};
use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::replica::partition::Partition;
use crate::services::txn::verify;
use crate::services::Services;

/// The Kafka error code for a refused append.
pub fn append_error_code(error: &AppendError) -> i16 {
    match error {
        AppendError::CorruptMessage(BatchError::UnsupportedMagic(_)) => E::InvalidRecord.code(),
        // Kafka's InvalidRecordException: records that do not decode, a count that does not
        // match the offsets.
        AppendError::CorruptMessage(
            BatchError::InvalidRecord { .. } | BatchError::InvalidOffsets { .. },
        ) => E::InvalidRecord.code(),
        AppendError::InvalidRecords {
            timestamp: true, ..
        } => E::InvalidTimestamp.code(),
        AppendError::InvalidRecords { .. } => E::InvalidRecord.code(),
        AppendError::CorruptMessage(_) => E::CorruptMessage.code(),
        AppendError::InvalidRecord(_) => E::InvalidRecord.code(),
        AppendError::MessageTooLarge { .. } => E::MessageTooLarge.code(),
        AppendError::OutOfOrderSequence { .. } => E::OutOfOrderSequenceNumber.code(),
        AppendError::InvalidProducerEpoch { .. } => E::InvalidProducerEpoch.code(),
        AppendError::StaleLeaderEpoch { .. } => E::NotLeaderOrFollower.code(),
        AppendError::TransactionCoordinatorFenced { .. } => E::TransactionCoordinatorFenced.code(),
        AppendError::InvalidTxnState { .. } => E::InvalidTxnState.code(),
        AppendError::Io(_) => E::KafkaStorageError.code(),
    }
}

/// KIP-467 (Produce v8+): the records of a refused batch that broke a per-record rule, by index
/// in the batch, so that a client fails only those (librdkafka fails the others with the local
/// `_INVALID_DIFFERENT_RECORD`). Empty for every other error.
fn record_errors(error: &AppendError) -> Vec<BatchIndexAndErrorMessage> {
    let AppendError::InvalidRecords { records, .. } = error else {
        return Vec::new();
    };
    records
        .iter()
        .map(|record| {
            let mut entry = BatchIndexAndErrorMessage::default();
            entry.batch_index = record.batch_index;
            entry.batch_index_error_message = Some(str_bytes(record.message.clone()));
            entry
        })
        .collect()
}

/// A partition whose append the response still has to wait for: (topic index, partition
/// index in the response, partition, end offset to be acknowledged).
type ToSync = (usize, usize, Arc<Partition>, i64);

/// A transactional batch waiting for KIP-890 verification: (topic index, partition index in
/// the response, partition, records bytes, the task that verifies and appends).
type Waiting = (
    usize,
    usize,
    Arc<Partition>,
    usize,
    tokio::task::JoinHandle<Result<AppendInfo, verify::Refused>>,
);

/// Writes an append's outcome into `p`; returns the end offset to acknowledge when the
/// partition's acknowledgement waits for a sync or the ISR.
fn record_append(
    ctx: &RequestContext,
    partition: &Partition,
    bytes: usize,
    result: Result<AppendInfo, AppendError>,
    p: &mut PartitionProduceResponse,
) -> Option<i64> {
    match result {
        Ok(info) => {
            if !info.duplicate {
                let count = (info.last_offset - info.first_offset + 1) as u64;
                partition.counters.produced(count, bytes as u64);
            }
            p.base_offset = info.first_offset;
            p.log_append_time_ms = info.log_append_time_ms;
            if ctx.version >= 5 {
                p.log_start_offset = info.log_start_offset;
            }
            // A relaxed partition is acknowledged at once (wait_high_watermark would return at
            // once): it needs no task and no later reply.
            (partition.is_durable() || partition.is_replicated()).then_some(info.last_offset + 1)
        }
        Err(error) => {
            partition.counters.produce_failed();
            tracing::warn!(client = %ctx.client_id, partition = %partition.topic_partition, %error, "produce refused");
            p.error_code = append_error_code(&error);
            if ctx.version >= 8 {
                p.error_message = Some(str_bytes(error.to_string()));
                p.record_errors = record_errors(&error);
            }
            None
        }
    }
}

/// Kafka answers a Produce carrying transactional batches without a `transactional_id`
/// with TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition.
fn transactional_without_id(request: &ProduceRequest) -> bool {
    request.transactional_id.is_none()
        && request.topic_data.iter().any(|t| {
            t.partition_data.iter().any(|d| {
                d.records
                    .as_ref()
                    .is_some_and(|r| verify::transactional_producer(r).is_some())
            })
        })
}

/// Handles `Produce`.
pub fn handle(services: &Arc<Services>, ctx: RequestContext, request: ProduceRequest) -> Reply {
    let acks = request.acks;
    let now = crate::clock::now_ms();
    let mut response = ProduceResponse::default();
    let refuse_all = transactional_without_id(&request).then(|| {
        tracing::warn!(client = %ctx.client_id, "produce of transactional batches without a transactional id refused");
        E::TransactionalIdAuthorizationFailed.code()
    });
    let verification = services.txn.produce_verification();
    let transactional_id: Option<Arc<str>> = request
        .transactional_id
        .as_ref()
        .map(|id| Arc::from(id.0.as_str()));
    let mut to_sync: Vec<ToSync> = Vec::new();
    let mut waiting: Vec<Waiting> = Vec::new();
    for topic in request.topic_data {
        let (name, known) = if ctx.version >= 13 {
            let metadata = services.metadata.cluster();
            match metadata.topic_by_id(&topic.topic_id) {
                Some(t) => (t.name.clone(), true),
                None => (String::new(), false),
            }
        } else {
            let name = topic.name.0.to_string();
            let known = services.metadata.cluster().topics.contains_key(&name);
            (name, known)
        };
        let mut topic_response = TopicProduceResponse::default();
        // A copy, not `topic.name.clone()`: that is a slice of the request frame, and a
        // response waiting for its fsync would keep the whole frame (a megabyte of records)
        // alive; with many produces in flight that cost 100 MB of RSS and 60 % more CPU.
        if ctx.version < 13 {
            topic_response.name = topic_name(&name);
        }
        topic_response.topic_id = topic.topic_id;
        let topic_index = response.responses.len();
        for data in topic.partition_data {
            let mut p = PartitionProduceResponse::default();
            p.index = data.index;
            p.base_offset = -1;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            let partition = if known {
                services.replicas.partition(&name, data.index)
            } else {
                None
            };
            if let Some(code) = refuse_all {
                p.error_code = code;
            } else if !(acks == 0 || acks == 1 || acks == -1) {
                p.error_code = E::InvalidRequiredAcks.code();
            } else if !known && ctx.version >= 13 {
                p.error_code = E::UnknownTopicId.code();
            } else if let Some(code) = partition
                .as_ref()
                .map(|p| p.check_produce(acks))
                .filter(|&c| c != 0)
            {
                // A replicated partition this broker does not lead, or acks=all below
                // min.insync.replicas: refused before the append.
                p.error_code = code;
            } else if let Some(partition) = partition {
                match super::legacy::produce_records(ctx.version, data.records) {
                    Err(refused) => {
                        // Code 0: an empty v0-v2 message set, answered like Kafka (offset -1).
                        if refused.code != 0 {
                            partition.counters.produce_failed();
                            tracing::warn!(client = %ctx.client_id, topic = %name, partition = data.index, reason = %refused.reason, "produce refused");
                        }
                        p.error_code = refused.code;
                        if ctx.version >= 8 {
                            p.error_message = Some(str_bytes(refused.reason));
                        }
                    }
                    Ok(None) => {
                        p.error_code = E::InvalidRecord.code();
                        if ctx.version >= 8 {
                            p.error_message = Some(str_bytes("produce request without records"));
                        }
                    }
                    Ok(Some(records)) => match verify::admit(&partition, &records, verification) {
                        verify::Admission::Now(verification) => {
                            let bytes = records.len();
                            let result = partition.append_produce(records, now, verification);
                            if let Some(end) =
                                record_append(&ctx, &partition, bytes, result, &mut p)
                            {
                                let index = topic_response.partition_responses.len();
                                to_sync.push((topic_index, index, partition, end));
                            }
                        }
                        verify::Admission::Wait(ticket) => {
                            let bytes = records.len();
                            let task = tokio::spawn(verify::verify_and_append(
                                services.clone(),
                                partition.clone(),
                                records,
                                transactional_id
                                    .clone()
                                    .expect("checked by transactional_without_id"),
                                ticket,
                            ));
                            let index = topic_response.partition_responses.len();
                            waiting.push((topic_index, index, partition, bytes, task));
                        }
                    },
                }
            } else {
                p.error_code = services.replicas.absent_partition_error(&name, data.index);
            }
            topic_response.partition_responses.push(p);
        }
        response.responses.push(topic_response);
    }
    if !waiting.is_empty() {
        return answer_after_verification(ctx, acks, response, to_sync, waiting);
    }
    if acks == 0 {
        // No response; the high watermark still has to move, which in durable mode takes a sync.
        if !to_sync.is_empty() {
            tokio::spawn(advance_unanswered(to_sync));
        }
        return Reply::Nothing;
    }
    if to_sync.is_empty() {
        return Reply::Ready(super::legacy::produce_response(&ctx, &response));
    }
    Reply::Later(tokio::spawn(async move {
        acknowledge(&ctx, acks, &mut response, to_sync).await;
        super::legacy::produce_response(&ctx, &response)
    }))
}

/// A produce with batches waiting for KIP-890 verification: one task waits for their
/// appends, fills in their results, then acknowledges every partition as [`handle`] does. The
/// connection's replies stay in request order (the writer waits for this task in turn) and
/// its next requests are read and started meanwhile.
fn answer_after_verification(
    ctx: RequestContext,
    acks: i16,
    response: ProduceResponse,
    to_sync: Vec<ToSync>,
    waiting: Vec<Waiting>,
) -> Reply {
    let task = tokio::spawn(finish_waiting(ctx, acks, response, to_sync, waiting));
    if acks == 0 {
        // Nothing is answered; the task still runs to the end.
        drop(task);
        return Reply::Nothing;
    }
    Reply::Later(task)
}

/// The task of [`answer_after_verification`]: the encoded response (empty for acks=0, which
/// is not sent).
async fn finish_waiting(
    ctx: RequestContext,
    acks: i16,
    mut response: ProduceResponse,
    mut to_sync: Vec<ToSync>,
    waiting: Vec<Waiting>,
) -> bytes::Bytes {
    for (t, index, partition, bytes, task) in waiting {
        let slot = &mut response.responses[t].partition_responses[index];
        let result = match task.await {
            Ok(Ok(info)) => Ok(info),
            Ok(Err(verify::Refused::Append(error))) => Err(error),
            Ok(Err(verify::Refused::Unverified(code))) => {
                partition.counters.produce_failed();
                let (code, message) = verify::produce_error(code, ctx.version);
                tracing::info!(client = %ctx.client_id, partition = %partition.topic_partition, code, "transactional produce not verified by the coordinator");
                slot.error_code = code;
                if ctx.version >= 8 {
                    slot.error_message = message.map(str_bytes);
                }
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "a verified append failed");
                slot.error_code = E::UnknownServerError.code();
                continue;
            }
        };
        if let Some(end) = record_append(&ctx, &partition, bytes, result, slot) {
            to_sync.push((t, index, partition, end));
        }
    }
    if acks == 0 {
        advance_unanswered(to_sync).await;
        return bytes::Bytes::new();
    }
    acknowledge(&ctx, acks, &mut response, to_sync).await;
    super::legacy::produce_response(&ctx, &response)
}

/// acks=0: no response, but the high watermark still has to move, which in durable mode
/// takes a sync.
async fn advance_unanswered(to_sync: Vec<ToSync>) {
    for (_, _, partition, end) in to_sync {
        if partition.is_replicated() {
            partition.wait_replicated(end, false).await;
            continue;
        }
        if let Err(e) = partition.wait_high_watermark(end).await {
            tracing::error!(partition = %partition.topic_partition, error = %e, "fdatasync failed");
        }
    }
}

/// Waits until every partition in `to_sync` is acknowledged per `acks` and writes failures
/// into `response`. Replicated partitions: acks=all waits for the high watermark (min durable
/// log end over the ISR), acks=1 for the local durable end. Single node: every partition joins
/// the broker's next sync pass and one wait covers them all.
async fn acknowledge(
    ctx: &RequestContext,
    acks: i16,
    response: &mut ProduceResponse,
    to_sync: Vec<ToSync>,
) {
    if to_sync.iter().any(|(_, _, p, _)| p.is_replicated()) {
        for (t, p, partition, end) in to_sync {
            let code = if partition.is_replicated() {
                partition.wait_replicated(end, acks == -1).await
            } else {
                match partition.wait_high_watermark(end).await {
                    Ok(()) => 0,
                    Err(_) => E::KafkaStorageError.code(),
                }
            };
            if code != 0 {
                let slot = &mut response.responses[t].partition_responses[p];
                slot.error_code = code;
                if code != E::NotEnoughReplicasAfterAppend.code() {
                    slot.base_offset = -1;
                }
            }
        }
        return;
    }
    let outcomes: Vec<std::io::Result<()>> = if let [(_, _, partition, end)] = &to_sync[..] {
        vec![partition.wait_high_watermark(*end).await]
    } else {
        let waits: Vec<_> = to_sync
            .iter()
            .map(|(_, _, partition, end)| (partition.clone(), *end))
            .collect();
        Partition::wait_all_high_watermarks(&waits).await
    };
    for ((t, p, partition, _), outcome) in to_sync.into_iter().zip(outcomes) {
        if let Err(e) = outcome {
            tracing::error!(partition = %partition.topic_partition, error = %e, "fdatasync failed; the produce is not acknowledged");
            let slot = &mut response.responses[t].partition_responses[p];
            slot.error_code = E::KafkaStorageError.code();
            if ctx.version >= 8 {
                slot.error_message = Some(str_bytes(format!("fdatasync failed: {e}")));
            }
            slot.base_offset = -1;
        }
    }
}
