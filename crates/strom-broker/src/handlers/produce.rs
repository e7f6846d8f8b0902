//! `Produce`: validate and append inline (in request order), then acknowledge once the data
//! is durable per the partition's flush policy.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use strom_log::{AppendError, BatchError};

use super::{str_bytes, topic_name};
use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::replica::partition::Partition;
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

/// Handles `Produce`.
pub fn handle(services: &Arc<Services>, ctx: RequestContext, request: ProduceRequest) -> Reply {
    let acks = request.acks;
    let now = crate::clock::now_ms();
    let mut response = ProduceResponse::default();
    // (topic index, partition index in the response, partition, end offset) to make durable.
    let mut to_sync: Vec<(usize, usize, Arc<Partition>, i64)> = Vec::new();
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
            if !(acks == 0 || acks == 1 || acks == -1) {
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
                    Ok(Some(records)) => match (records.len(), partition.append(records, now)) {
                        (bytes, Ok(info)) => {
                            if !info.duplicate {
                                let count = (info.last_offset - info.first_offset + 1) as u64;
                                partition.counters.produced(count, bytes as u64);
                            }
                            p.base_offset = info.first_offset;
                            p.log_append_time_ms = info.log_append_time_ms;
                            if ctx.version >= 5 {
                                p.log_start_offset = info.log_start_offset;
                            }
                            // A relaxed partition is acknowledged at once (wait_high_watermark would
                            // return at once): it needs no task and no later reply.
                            if partition.is_durable() || partition.is_replicated() {
                                to_sync.push((
                                    topic_index,
                                    topic_response.partition_responses.len(),
                                    partition,
                                    info.last_offset + 1,
                                ));
                            }
                        }
                        (_, Err(error)) => {
                            partition.counters.produce_failed();
                            tracing::warn!(client = %ctx.client_id, topic = %name, partition = data.index, %error, "produce refused");
                            p.error_code = append_error_code(&error);
                            if ctx.version >= 8 {
                                p.error_message = Some(str_bytes(error.to_string()));
                                p.record_errors = record_errors(&error);
                            }
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
    if acks == 0 {
        // No response; the high watermark still has to move, which in durable mode takes a sync.
        if !to_sync.is_empty() {
            tokio::spawn(async move {
                for (_, _, partition, end) in to_sync {
                    if partition.is_replicated() {
                        partition.wait_replicated(end, false).await;
                        continue;
                    }
                    if let Err(e) = partition.wait_high_watermark(end).await {
                        tracing::error!(partition = %partition.topic_partition, error = %e, "fdatasync failed");
                    }
                }
            });
        }
        return Reply::Nothing;
    }
    if to_sync.is_empty() {
        return Reply::Ready(super::legacy::produce_response(&ctx, &response));
    }
    if to_sync.iter().any(|(_, _, p, _)| p.is_replicated()) {
        return Reply::Later(tokio::spawn(async move {
            // Replicated partitions: acks=all waits for the high watermark (min durable log
            // end over the ISR), acks=1 for the local durable end.
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
            super::legacy::produce_response(&ctx, &response)
        }));
    }
    Reply::Later(tokio::spawn(async move {
        // Every partition joins the broker's next sync pass; one task waits for them all.
        let outcomes: Vec<std::io::Result<()>> = if let [(_, _, partition, end)] = &to_sync[..] {
            vec![partition.wait_high_watermark(*end).await]
        } else {
            let waits: Vec<_> = to_sync
                .iter()
                .map(|(_, _, partition, end)| (partition.clone(), *end))
                .collect();
            crate::services::replica::partition::Partition::wait_all_high_watermarks(&waits).await
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
        super::legacy::produce_response(&ctx, &response)
    }))
}
