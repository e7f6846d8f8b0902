//! `Fetch` with long polling.
//!
//! A fetch answers as soon as `min_bytes` are available or any partition has an error; only a
//! short read waits, up to `max_wait_ms`, for the high watermark of one of its partitions to
//! move (or, for `read_committed`, its last stable offset: a transaction marker wakes the same
//! waiters). Before each read the request registers a notifier with every partition it reads,
//! so a wake-up between the read and the wait is not lost.
//!
//! Isolation (Fetch v4+): a consumer's `read_uncommitted` fetch reads up to the high
//! watermark, a `read_committed` one up to the last stable offset and answers the aborted
//! transactions overlapping what it returns (an empty list, never null, when there are none);
//! both answer the last stable offset. A follower's fetch reads to the log end either way.
//!
//! Fetch from follower (KIP-392, Fetch v11+): a consumer's fetch may be served by any replica,
//! a follower up to the high watermark it learned from its leader; with
//! `replica.selector.class` rack-aware, the leader answers a consumer that names a
//! `rack_id` with `preferred_read_replica` = an in-sync replica in its rack and no records
//! ([`crate::services::replica::read_replica`]). A follower fetch waiting for data also answers
//! when the high watermark moves, so followers learn it without waiting for new records.
//!
//! Fetch sessions (KIP-227, v7+; [`crate::services::fetch_sessions`]): a full fetch with epoch 0
//! opens one, an incremental fetch reads every partition of its session and answers only
//! those with something new; followers use them, so thousands of idle partitions cost a
//! leader and its followers little per fetch.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use strom_log::{FileSlice, ReadError};
use tokio::sync::Notify;

use crate::protocol::frame::Reply;
use crate::protocol::frame::{Frame, Part};
use crate::protocol::request::RequestContext;
use crate::services::fetch_sessions::SessionFetch;
use crate::services::replica::partition::Partition;
use crate::services::replica::quota::{leader_throttle, ReplicationQuotas, Side};
use crate::services::Services;

/// One partition of a fetch, resolved.
struct Wanted {
    topic: usize,
    partition: Option<Arc<Partition>>,
    /// An error found while resolving (unknown topic, fenced epoch).
    error: i16,
    index: i32,
    fetch_offset: i64,
    max_bytes: usize,
    /// A follower's fetch: read to the log end, not the high watermark.
    follower: bool,
    /// KIP-392: the replica the leader sends this consumer to (no records are read then).
    preferred_read_replica: Option<i32>,
    /// The leader throttle: `Some(hold)` for a throttled replica (`services::replica::quota`).
    throttle: Option<bool>,
}

/// Handles `Fetch`.
pub fn handle(services: &Arc<Services>, ctx: RequestContext, request: FetchRequest) -> Reply {
    let mut skeleton = FetchResponse::default();
    // A follower names itself: `replica_id` up to v14, `ReplicaState` from v15.
    let replica_id = if ctx.version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    // The partitions to read: the request's, or its whole fetch session's.
    let session = match services.fetch_sessions.begin(
        &request,
        ctx.version,
        replica_id,
        crate::clock::now_ms(),
    ) {
        Ok(session) => session,
        Err(code) => {
            skeleton.error_code = code;
            return Reply::Ready(ctx.respond(&skeleton));
        }
    };
    let mut wanted = Vec::new();
    let mut isr_writes = Vec::new();
    // KIP-392: the racks of the live brokers, if this leader may send the consumer elsewhere.
    let client_rack = request.rack_id.as_str();
    let racks: Option<std::collections::HashMap<i32, String>> = (replica_id < 0
        && ctx.version >= 11
        && !client_rack.is_empty()
        && services.config.cluster.replica_selector_rack_aware)
        .then(|| {
            services
                .metadata
                .brokers()
                .into_iter()
                .filter_map(|b| Some((b.id, b.rack?)))
                .collect()
        });
    let local_id = services.metadata.local_broker_id();
    // An incremental fetch reuses the partitions its session resolved last time.
    let mut cached = session.resolved.iter();
    for (topic_index, topic) in session.topics.iter().enumerate() {
        let resolved_name = if ctx.version >= 13 {
            services
                .metadata
                .cluster()
                .topic_by_id(&topic.topic_id)
                .map(|t| t.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        // Old clients' protections (KIP-110 zstd, down-conversion switch), from the topic's
        // configuration; a modern fetch skips the lookup.
        let topic_error = match (&resolved_name, ctx.version < super::legacy::FETCH_ZSTD_MIN) {
            (Some(name), true) => services
                .metadata
                .cluster()
                .topics
                .get(name)
                .map_or(0, |meta| {
                    super::legacy::fetch_topic_error(
                        ctx.version,
                        &services.topics.topic_config(meta),
                    )
                }),
            _ => 0,
        };
        let mut topic_response = FetchableTopicResponse::default();
        if ctx.version >= 13 {
            topic_response.topic_id = topic.topic_id;
        } else {
            topic_response.topic = topic.topic.clone();
        }
        skeleton.responses.push(topic_response);
        for p in &topic.partitions {
            let partition = match cached.next() {
                Some(Some(partition)) if !partition.is_deleted() => Some(partition.clone()),
                _ => resolved_name
                    .as_deref()
                    .and_then(|name| services.replicas.partition(name, p.partition)),
            };
            let error = match &partition {
                _ if resolved_name.is_none() => E::UnknownTopicId.code(),
                None => services
                    .replicas
                    .absent_partition_error(resolved_name.as_deref().unwrap_or(""), p.partition),
                Some(_) if topic_error != 0 => topic_error,
                Some(partition) if replica_id >= 0 => {
                    let (code, effects) = partition.follower_fetch(
                        replica_id,
                        p.fetch_offset,
                        p.current_leader_epoch,
                    );
                    if !effects.is_empty() {
                        isr_writes.push((partition.clone(), effects));
                    }
                    if code == 0 {
                        partition.record_follower_log_start(replica_id, p.log_start_offset);
                    }
                    code
                }
                Some(partition) => match partition.leader_epoch_error(p.current_leader_epoch) {
                    // Fetch v11+ carries client metadata: followers serve consumers too.
                    0 if ctx.version >= 11 => partition.check_replica(),
                    0 => partition.check_leader(),
                    code => code,
                },
            };
            let preferred_read_replica = match (&partition, &racks) {
                (Some(partition), Some(racks)) if error == 0 => {
                    partition.preferred_read_replica(local_id, client_rack, p.fetch_offset, racks)
                }
                _ => None,
            };
            let throttle = partition
                .as_ref()
                .filter(|_| replica_id >= 0)
                .and_then(|p| {
                    let me = services.metadata.local_broker_id();
                    leader_throttle(
                        &services.replicas.quotas,
                        &services.metadata,
                        p,
                        replica_id,
                        me,
                    )
                });
            wanted.push(Wanted {
                throttle,
                topic: topic_index,
                partition,
                error,
                index: p.partition,
                fetch_offset: p.fetch_offset,
                // A throttled follower gets at most the leader throttle's burst at a time.
                max_bytes: match throttle.and(services.replicas.quotas.burst(Side::Leader)) {
                    Some(burst) => burst.min(p.partition_max_bytes.max(0) as usize),
                    None => p.partition_max_bytes.max(0) as usize,
                },
                follower: replica_id >= 0,
                preferred_read_replica,
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
    for (partition, effects) in isr_writes {
        services.replicas.perform(&partition, effects);
    }
    let quotas = services.replicas.quotas.clone();
    let holds = wanted.iter().any(|w| w.throttle == Some(true));
    let services = services.clone();
    Reply::LaterFrame(tokio::spawn(async move {
        let over = || holds && quotas.is_exceeded(Side::Leader, crate::clock::now_ms() as u64);
        let deadline = tokio::time::Instant::now() + max_wait;
        let notify = Arc::new(Notify::new());
        // A follower's fetch also answers once a high watermark or log start offset moves past
        // what it was told (a DeleteRecords waits for the followers to follow the log start).
        let mut told_high_watermarks: Option<Vec<(i64, i64)>> = None;
        loop {
            for w in &wanted {
                if let (0, Some(partition)) = (w.error, &w.partition) {
                    partition.add_waiter(&notify);
                }
            }
            let read = read_all(
                &skeleton,
                &wanted,
                max_bytes,
                read_committed,
                ctx.version,
                over(),
            );
            let now = tokio::time::Instant::now();
            let high_watermarks = follower_high_watermarks(&wanted, &read);
            let told = told_high_watermarks.get_or_insert_with(|| high_watermarks.clone());
            let moved = high_watermarks
                .iter()
                .zip(told.iter())
                .any(|(now, told)| now.0 > told.0 || now.1 > told.1);
            if read.bytes >= min_bytes
                || read.errors
                || read.redirected
                || moved
                || now >= deadline
                || wanted.is_empty()
            {
                count(&wanted, &read, &quotas);
                return answer(&services, &session, &ctx, &wanted, read);
            }
            if tokio::time::timeout_at(deadline, notify.notified())
                .await
                .is_err()
            {
                let read = read_all(
                    &skeleton,
                    &wanted,
                    max_bytes,
                    read_committed,
                    ctx.version,
                    over(),
                );
                count(&wanted, &read, &quotas);
                return answer(&services, &session, &ctx, &wanted, read);
            }
        }
    }))
}

/// The frame answering a fetch: what an incremental fetch's client already knows left out
/// (and the session's state updated), then encoded.
fn answer(
    services: &Services,
    session: &SessionFetch,
    ctx: &RequestContext,
    wanted: &[Wanted],
    mut read: Read,
) -> Frame {
    let resolved = wanted.iter().map(|w| w.partition.clone()).collect();
    services
        .fetch_sessions
        .finish(session, &mut read.response, &mut read.files, resolved);
    encode_response(ctx, read.response, read.files)
}

/// Record data at least this large is sent from the segment file with `sendfile`; smaller
/// ranges are read into the response buffer, where a copy costs less than the extra syscalls.
pub const SENDFILE_MIN_BYTES: usize = 32 * 1024;

/// One pass over the wanted partitions.
struct Read {
    /// The response; partitions whose records are in `files` have `records: None` here.
    response: FetchResponse,
    /// Per partition, in response order, the file range that holds its records, if they are
    /// to be sent from the file.
    files: Vec<Option<FileSlice>>,
    /// Record bytes in the response.
    bytes: usize,
    /// True if any partition has an error.
    errors: bool,
    /// True if any partition names a preferred read replica (answered at once, as Kafka).
    redirected: bool,
}

/// The high watermark and log start offset each partition of a follower's fetch carries
/// ((-1, -1) for a consumer's).
fn follower_high_watermarks(wanted: &[Wanted], read: &Read) -> Vec<(i64, i64)> {
    let partitions = read.response.responses.iter().flat_map(|t| &t.partitions);
    wanted
        .iter()
        .zip(partitions)
        .map(|(w, data)| {
            if w.follower {
                (data.high_watermark, data.log_start_offset)
            } else {
                (-1, -1)
            }
        })
        .collect()
}

/// Counts what a fetch answer carries for the metrics (record bytes and errors per topic) and
/// for the leader throttle (bytes of throttled replicas).
fn count(wanted: &[Wanted], read: &Read, quotas: &ReplicationQuotas) {
    let mut throttled = 0;
    let partitions = read.response.responses.iter().flat_map(|t| &t.partitions);
    for ((w, data), file) in wanted.iter().zip(partitions).zip(&read.files) {
        let Some(partition) = &w.partition else {
            continue;
        };
        if data.error_code != 0 {
            partition.counters.fetch_failed();
        }
        if w.preferred_read_replica.is_some() {
            partition.counters.sent_to_preferred_replica();
        }
        let bytes = match (file, &data.records) {
            (Some(slice), _) => slice.len,
            (None, Some(records)) => records.len(),
            (None, None) => 0,
        };
        if bytes > 0 {
            partition.counters.fetched(bytes as u64);
            if !w.follower && partition.is_follower() {
                partition.counters.fetched_from_follower(bytes as u64);
            }
        }
        if w.throttle.is_some() {
            throttled += bytes as u64;
        }
    }
    quotas.record(Side::Leader, throttled, crate::clock::now_ms() as u64);
}

/// Reads every wanted partition once.
fn read_all(
    skeleton: &FetchResponse,
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
    version: i16,
    over_leader_quota: bool,
) -> Read {
    // The log start offset is carried from version 5; older versions keep the default.
    let with_start = |offset: i64| if version >= 5 { offset } else { -1 };
    let mut response = skeleton.clone();
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut errors = false;
    let mut redirected = false;
    let mut files = Vec::with_capacity(wanted.len());
    // Like Kafka: the first partition that returns data may exceed the limits by one batch.
    let mut min_one_message = true;
    for w in wanted {
        let mut file = None;
        let mut data = PartitionData::default();
        data.partition_index = w.index;
        data.error_code = w.error;
        match (&w.partition, w.error) {
            (Some(partition), 0) if partition.is_deleted() => {
                data.error_code = E::UnknownTopicOrPartition.code();
            }
            (Some(partition), 0) if w.preferred_read_replica.is_some() => {
                // Kafka skips the read and reports the offsets with the replica to go to.
                let (high_watermark, log_start_offset, _) = partition.offsets();
                data.high_watermark = high_watermark;
                data.last_stable_offset = partition.last_stable_offset();
                data.log_start_offset = with_start(log_start_offset);
                data.aborted_transactions = read_committed.then(Vec::new);
                data.preferred_read_replica =
                    kafka_protocol::messages::BrokerId(w.preferred_read_replica.unwrap_or(-1));
                redirected = true;
            }
            // A throttled follower outside the ISR while over the leader's rate: no records.
            (Some(partition), 0) if over_leader_quota && w.throttle == Some(true) => {
                let (high_watermark, log_start_offset, _) = partition.offsets();
                data.high_watermark = high_watermark;
                data.last_stable_offset = partition.last_stable_offset();
                data.log_start_offset = with_start(log_start_offset);
            }
            (Some(partition), 0) => {
                let limit = w.max_bytes.min(remaining);
                let read = if w.follower {
                    partition
                        .read_for_follower(w.fetch_offset, limit, min_one_message)
                        .map(|info| (info, None))
                } else if read_committed {
                    partition
                        .read_committed(w.fetch_offset, limit, min_one_message)
                        .map(|(info, aborted)| (info, Some(aborted)))
                } else {
                    partition
                        .read(w.fetch_offset, limit, min_one_message)
                        .map(|info| (info, None))
                };
                match read {
                    Ok((info, aborted)) => {
                        data.high_watermark = info.high_watermark;
                        data.last_stable_offset = info.last_stable_offset;
                        data.aborted_transactions = aborted.map(aborted_list);
                        data.log_start_offset = with_start(info.log_start_offset);
                        if let Some(slice) = info.slice {
                            let mut len = slice.len;
                            if version < crate::protocol::legacy::FETCH_MODERN_MIN {
                                // Old clients read message sets: down-convert in memory.
                                match super::legacy::fetch_records(
                                    version,
                                    &slice,
                                    w.fetch_offset,
                                    limit,
                                ) {
                                    Ok(records) => {
                                        len = records.len();
                                        data.records = Some(records);
                                    }
                                    Err(code) => data.error_code = code,
                                }
                            } else if len >= SENDFILE_MIN_BYTES {
                                file = Some(slice);
                            } else {
                                match slice.read_to_bytes() {
                                    Ok(bytes) => data.records = Some(bytes),
                                    Err(e) => {
                                        tracing::error!(partition = %partition.topic_partition, error = %e, "reading the log failed");
                                        data.error_code = E::KafkaStorageError.code();
                                    }
                                }
                            }
                            if data.error_code == 0 {
                                total += len;
                                remaining = remaining.saturating_sub(len);
                                if len > 0 {
                                    min_one_message = false;
                                }
                            }
                        }
                    }
                    Err(ReadError::OffsetOutOfRange { .. }) => {
                        let (high_watermark, log_start_offset, _) = partition.offsets();
                        data.error_code = E::OffsetOutOfRange.code();
                        data.high_watermark = high_watermark;
                        data.last_stable_offset = partition.last_stable_offset();
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
        files.push(file);
    }
    Read {
        response,
        files,
        bytes: total,
        errors,
        redirected,
    }
}

/// A read_committed partition's `aborted_transactions` from the log's `(producer id, first
/// offset)` pairs.
fn aborted_list(aborted: Vec<(i64, i64)>) -> Vec<AbortedTransaction> {
    aborted
        .into_iter()
        .map(|(producer_id, first_offset)| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(producer_id))
                .with_first_offset(first_offset)
        })
        .collect()
}

/// Encodes a fetch response as a frame whose record data comes from `files` where given (one
/// entry per partition, in response order) and from `records` otherwise.
///
/// kafka-protocol can only encode records held in memory, so this is Strom's own writer for
/// the fields Strom fills in; a response using anything else (tagged fields such as
/// `diverging_epoch`, node endpoints) is encoded by kafka-protocol after reading the files.
/// The test below checks both writers give the same bytes at every version. Versions 0–3
/// (records down-converted in memory, [`super::legacy`]) are written here too; the test
/// compares them with kafka-protocol 0.14, which still has them.
pub fn encode_response(
    ctx: &RequestContext,
    mut response: FetchResponse,
    files: Vec<Option<FileSlice>>,
) -> Frame {
    if ctx.version >= crate::protocol::legacy::FETCH_MODERN_MIN && !only_plain_fields(&response) {
        let mut files = files.into_iter();
        for topic in &mut response.responses {
            for partition in &mut topic.partitions {
                if let Some(slice) = files.next().flatten() {
                    match slice.read_to_bytes() {
                        Ok(bytes) => partition.records = Some(bytes),
                        Err(e) => {
                            tracing::error!(error = %e, "reading the log failed");
                            partition.error_code = E::KafkaStorageError.code();
                        }
                    }
                }
            }
        }
        return Frame::from_bytes(ctx.respond(&response));
    }
    let version = ctx.version;
    let flexible = version >= 12;
    let mut out = FrameWriter::default();
    out.buf.put_i32(ctx.correlation_id);
    if flexible {
        put_uvarint(&mut out.buf, 0); // response header tagged fields
    }
    if version >= 1 {
        out.buf.put_i32(response.throttle_time_ms);
    }
    if version >= 7 {
        out.buf.put_i16(response.error_code);
        out.buf.put_i32(response.session_id);
    }
    put_array_len(&mut out.buf, response.responses.len(), flexible);
    let mut files = files.into_iter();
    for topic in &response.responses {
        if version <= 12 {
            let name = topic.topic.0.as_bytes();
            if flexible {
                put_uvarint(&mut out.buf, name.len() as u32 + 1);
            } else {
                out.buf.put_i16(name.len() as i16);
            }
            out.buf.put_slice(name);
        }
        if version >= 13 {
            out.buf.put_slice(topic.topic_id.as_bytes());
        }
        put_array_len(&mut out.buf, topic.partitions.len(), flexible);
        for p in &topic.partitions {
            out.buf.put_i32(p.partition_index);
            out.buf.put_i16(p.error_code);
            out.buf.put_i64(p.high_watermark);
            if version >= 4 {
                out.buf.put_i64(p.last_stable_offset);
            }
            if version >= 5 {
                out.buf.put_i64(p.log_start_offset);
            }
            match &p.aborted_transactions {
                _ if version < 4 => {}
                None if flexible => put_uvarint(&mut out.buf, 0),
                None => out.buf.put_i32(-1),
                Some(aborted) => {
                    put_array_len(&mut out.buf, aborted.len(), flexible);
                    for a in aborted {
                        out.buf.put_i64(a.producer_id.0);
                        out.buf.put_i64(a.first_offset);
                        if flexible {
                            put_uvarint(&mut out.buf, 0);
                        }
                    }
                }
            }
            if version >= 11 {
                out.buf.put_i32(p.preferred_read_replica.0);
            }
            let file = files.next().flatten();
            let records_len = match (&file, &p.records) {
                (Some(slice), _) => Some(slice.len),
                (None, Some(records)) => Some(records.len()),
                (None, None) => None,
            };
            match records_len {
                None if flexible => put_uvarint(&mut out.buf, 0),
                None => out.buf.put_i32(-1),
                Some(len) if flexible => put_uvarint(&mut out.buf, len as u32 + 1),
                Some(len) => out.buf.put_i32(len as i32),
            }
            match (file, &p.records) {
                (Some(slice), _) => out.file(slice),
                (None, Some(records)) if records.len() >= SENDFILE_MIN_BYTES => {
                    out.bytes(records.clone())
                }
                (None, Some(records)) => out.buf.put_slice(records),
                (None, None) => {}
            }
            if flexible {
                put_uvarint(&mut out.buf, 0); // partition tagged fields
            }
        }
        if flexible {
            put_uvarint(&mut out.buf, 0); // topic tagged fields
        }
    }
    if flexible {
        put_uvarint(&mut out.buf, 0); // response tagged fields
    }
    out.finish()
}

/// True if the response uses only the fields [`encode_response`] writes itself.
fn only_plain_fields(response: &FetchResponse) -> bool {
    response.unknown_tagged_fields.is_empty()
        && response.node_endpoints.is_empty()
        && response.responses.iter().all(|t| {
            t.unknown_tagged_fields.is_empty()
                && t.partitions.iter().all(|p| {
                    p.unknown_tagged_fields.is_empty()
                        && p.diverging_epoch == Default::default()
                        && p.current_leader == Default::default()
                        && p.snapshot_id == Default::default()
                        && p.aborted_transactions
                            .as_ref()
                            .is_none_or(|a| a.iter().all(|a| a.unknown_tagged_fields.is_empty()))
                })
        })
}

/// Builds a [`Frame`]: small fields go into `buf`, which is cut into a part whenever a file
/// range or a large buffer is added.
#[derive(Default)]
struct FrameWriter {
    buf: BytesMut,
    parts: Vec<Part>,
}

impl FrameWriter {
    fn file(&mut self, slice: FileSlice) {
        self.cut();
        self.parts.push(Part::File(slice));
    }

    fn bytes(&mut self, bytes: Bytes) {
        self.cut();
        self.parts.push(Part::Bytes(bytes));
    }

    fn cut(&mut self) {
        if !self.buf.is_empty() {
            self.parts.push(Part::Bytes(self.buf.split().freeze()));
        }
    }

    /// The frame: a size prefix, then the parts.
    fn finish(mut self) -> Frame {
        self.cut();
        let size: usize = self.parts.iter().map(Part::len).sum();
        let mut parts = Vec::with_capacity(self.parts.len() + 1);
        parts.push(Part::Bytes(Bytes::copy_from_slice(
            &(size as i32).to_be_bytes(),
        )));
        parts.append(&mut self.parts);
        Frame { parts }
    }
}

/// An array length: `INT32` in classic versions, `UNSIGNED_VARINT` of length + 1 in flexible.
fn put_array_len(buf: &mut BytesMut, len: usize, flexible: bool) {
    if flexible {
        put_uvarint(buf, len as u32 + 1);
    } else {
        buf.put_i32(len as i32);
    }
}

fn put_uvarint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
#[path = "tests/fetch_encode.rs"]
mod tests;
