//! Committed offsets: `OffsetCommit`, `OffsetFetch` (single and multi-group versions) and
//! `OffsetDelete`.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};

use super::{str_bytes, topic_name};
use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::group::CommittedOffset;
use crate::services::Services;

/// Kafka's `offset.metadata.max.bytes` default.
pub(super) const METADATA_MAX_BYTES: usize = 4096;

/// Handles `OffsetCommit`: validated against the group's generation, staged and written to
/// `__consumer_offsets` in one critical section here, on the connection's reader (so commits apply in the order they
/// Why one partition of an OffsetCommit or TxnOffsetCommit is refused before anything is
/// written (`UNKNOWN_TOPIC_OR_PARTITION`, `OFFSET_METADATA_TOO_LARGE`), or 0.
pub(super) fn commit_refusal(
    services: &Services,
    topic: &str,
    partition: i32,
    metadata: Option<&str>,
) -> i16 {
    if unknown_partition(services, topic, partition) {
        E::UnknownTopicOrPartition.code()
    } else if metadata.map_or(0, str::len) > METADATA_MAX_BYTES {
        E::OffsetMetadataTooLarge.code()
    } else {
        0
    }
}

/// were received, see [`crate::services::coordinator::PendingCommit`]), and acknowledged once durable.
pub fn offset_commit(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: OffsetCommitRequest,
) -> Reply {
    offset_commit_with_timestamps(services, ctx, request, &[])
}

/// [`offset_commit`] for OffsetCommit v0–v1 too: `commit_timestamps` holds v1's per-partition
/// commit timestamp in request order (-1 or missing: the broker's clock, as for every later
/// version). Kafka stores a client's commit timestamp as the commit's time, so offset expiry
/// (`offsets.retention.minutes`) counts from it.
pub fn offset_commit_with_timestamps(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: OffsetCommitRequest,
    commit_timestamps: &[i64],
) -> Reply {
    let mut commit_timestamps = commit_timestamps.iter().copied();
    let group_id = request.group_id.0.to_string();
    let now = crate::clock::now_ms();
    let mut response = OffsetCommitResponse::default();
    let mut to_write = Vec::new();
    // (topic index, partition index) of each accepted partition, in to_write order.
    let mut slots = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let mut t = OffsetCommitResponseTopic::default();
        t.name = topic_name(&name);
        for p in &topic.partitions {
            let commit_timestamp_ms = match commit_timestamps.next() {
                Some(ts) if ts != -1 => ts,
                _ => now,
            };
            let mut out = OffsetCommitResponsePartition::default();
            out.partition_index = p.partition_index;
            let refused = commit_refusal(
                services,
                &name,
                p.partition_index,
                p.committed_metadata.as_deref(),
            );
            out.error_code = if refused != 0 {
                refused
            } else {
                slots.push((response.topics.len(), t.partitions.len()));
                to_write.push((
                    name.clone(),
                    p.partition_index,
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if ctx.version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        commit_timestamp_ms,
                        expire_timestamp_ms: None,
                    },
                ));
                0
            };
            t.partitions.push(out);
        }
        response.topics.push(t);
    }
    let pending = if group_id.is_empty() {
        Err(E::InvalidGroupId.code())
    } else {
        // Validated against the group's generation and staged in one critical section.
        let member = (
            request.member_id.as_str(),
            request.group_instance_id.as_deref(),
            request.generation_id_or_member_epoch,
        );
        services
            .groups
            .begin_commit(&group_id, member, to_write, now)
    };
    let pending = match pending {
        Ok(pending) => pending,
        Err(code) => {
            // A refused commit is the group's error for every partition, as in Kafka.
            tracing::debug!(client = %ctx.client_id, group = %group_id, code, "offset commit refused");
            for t in &mut response.topics {
                for p in &mut t.partitions {
                    p.error_code = code;
                }
            }
            return Reply::Ready(ctx.respond(&response));
        }
    };
    Reply::Later(tokio::spawn(async move {
        if let Err(code) = pending.finish().await {
            for (t, p) in slots {
                response.topics[t].partitions[p].error_code = code;
            }
        }
        ctx.respond(&response)
    }))
}

/// True if an offset commit names a partition that does not exist. Kafka checks the partition
/// against its metadata only: a partition whose log is offline still takes commits (they go to
/// __consumer_offsets, not to its log). A cluster's coordinator need not host a replica of it:
/// its metadata cache decides.
pub(super) fn unknown_partition(services: &Services, topic: &str, partition: i32) -> bool {
    if services.cluster.get().is_some() {
        services.metadata.partition(topic, partition).is_none()
    } else {
        services.replicas.partition(topic, partition).is_none()
            && services.replicas.absent_partition_error(topic, partition)
                == E::UnknownTopicOrPartition.code()
    }
}

/// One group's committed offsets for the requested partitions (None = every committed one):
/// (topic, [(partition, offset, leader epoch, metadata, error)]).
type Fetched = Vec<(String, Vec<(i32, i64, i32, String, i16)>)>;

/// The offsets of the requested partitions: the last acknowledged commit of each. With
/// `require_stable` (v7+), a partition with a transactional offset pending answers
/// `UNSTABLE_OFFSET_COMMIT` and no offset, as Kafka's coordinator does; the client retries.
fn fetch_group(
    services: &Services,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Fetched {
    let mut fetched = fetch_committed(services, group_id, topics);
    if require_stable {
        for (topic, rows) in &mut fetched {
            for row in rows {
                if services
                    .groups
                    .has_pending_txn_offset(group_id, topic, row.0)
                {
                    *row = (row.0, -1, -1, String::new(), E::UnstableOffsetCommit.code());
                }
            }
        }
    }
    fetched
}

fn fetch_committed(
    services: &Services,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Fetched {
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let rows = partitions
                    .into_iter()
                    .map(|p| match services.groups.committed(group_id, &topic, p) {
                        Some(c) => (
                            p,
                            c.offset,
                            c.leader_epoch,
                            c.metadata.unwrap_or_default(),
                            0,
                        ),
                        None => (p, -1, -1, String::new(), 0),
                    })
                    .collect();
                (topic, rows)
            })
            .collect(),
        None => {
            let mut out: Fetched = Vec::new();
            for ((topic, p), c) in services.groups.group_offsets(group_id) {
                let row = (
                    p,
                    c.offset,
                    c.leader_epoch,
                    c.metadata.unwrap_or_default(),
                    0,
                );
                match out.last_mut() {
                    Some((t, rows)) if *t == topic => rows.push(row),
                    _ => out.push((topic, vec![row])),
                }
            }
            out
        }
    }
}

/// Handles `OffsetFetch`: one group (v1–7) or several (v8+). The answer reflects every commit
/// received before the fetch (on any connection): if one of the groups has commits still in
/// flight, the answer waits until they complete, so a client that pipelines commits and then
/// a fetch reads its own commits, as with Kafka, which reads one request of a connection at a
/// time. `require_stable` therefore only concerns pending transactional offsets, for which
/// Kafka 4's coordinator answers `UNSTABLE_OFFSET_COMMIT` (see [`fetch_group`]).
pub fn offset_fetch(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: OffsetFetchRequest,
) -> Reply {
    let barrier = services.groups.fetch_barrier();
    let groups: Vec<String> = if ctx.version >= 8 {
        request
            .groups
            .iter()
            .map(|g| g.group_id.0.to_string())
            .collect()
    } else {
        vec![request.group_id.0.to_string()]
    };
    let turns = services.groups.take_fetch_turn(&groups);
    if turns.ready()
        && groups
            .iter()
            .all(|g| services.groups.commits_settled(g, barrier))
    {
        let response = ctx.respond(&fetch_response(services, &ctx, request));
        drop(turns);
        return Reply::Ready(response);
    }
    let services = services.clone();
    Reply::Later(tokio::spawn(async move {
        for group in &groups {
            services.groups.wait_commits(group, barrier).await;
        }
        turns.wait().await;
        let response = ctx.respond(&fetch_response(&services, &ctx, request));
        drop(turns);
        response
    }))
}

fn fetch_response(
    services: &Services,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if ctx.version >= 8 {
        for group in request.groups {
            let topics = group.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut g = OffsetFetchResponseGroup::default();
            g.group_id = group.group_id.clone();
            if let Err(code) = services.groups.check_coordinator(&group.group_id.0) {
                g.error_code = code;
                response.groups.push(g);
                continue;
            }
            let require_stable = request.require_stable;
            for (topic, rows) in fetch_group(services, &group.group_id.0, topics, require_stable) {
                let mut t = OffsetFetchResponseTopics::default();
                t.name = topic_name(&topic);
                for (p, offset, epoch, metadata, error) in rows {
                    let mut out = OffsetFetchResponsePartitions::default();
                    out.partition_index = p;
                    out.committed_offset = offset;
                    out.committed_leader_epoch = epoch;
                    out.metadata = Some(str_bytes(metadata));
                    out.error_code = error;
                    t.partitions.push(out);
                }
                g.topics.push(t);
            }
            response.groups.push(g);
        }
        return response;
    }
    if let Err(code) = services.groups.check_coordinator(&request.group_id.0) {
        // v2+ has the top-level error; older versions carry it on every partition asked for.
        response.error_code = code;
        for t in request.topics.unwrap_or_default() {
            let mut out = OffsetFetchResponseTopic::default();
            out.name = t.name.clone();
            for p in t.partition_indexes {
                let mut partition = OffsetFetchResponsePartition::default();
                partition.partition_index = p;
                partition.committed_offset = -1;
                partition.error_code = code;
                out.partitions.push(partition);
            }
            response.topics.push(out);
        }
        return response;
    }
    let topics = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let require_stable = ctx.version >= 7 && request.require_stable;
    for (topic, rows) in fetch_group(services, &request.group_id.0, topics, require_stable) {
        let mut t = OffsetFetchResponseTopic::default();
        t.name = topic_name(&topic);
        for (p, offset, epoch, metadata, error) in rows {
            let mut out = OffsetFetchResponsePartition::default();
            out.partition_index = p;
            out.committed_offset = offset;
            if ctx.version >= 5 {
                out.committed_leader_epoch = epoch;
            }
            out.metadata = Some(str_bytes(metadata));
            out.error_code = error;
            t.partitions.push(out);
        }
        response.topics.push(t);
    }
    response
}

/// Handles `OffsetDelete`. The offsets are removed, the commits received before it
/// cancelled and the tombstones appended here, on the connection's reader, so the delete
/// takes its place among the connection's commits in the order they were sent (a commit
/// sent after it applies); only the wait until the tombstones are durable is in the reply's
/// task.
pub fn offset_delete(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: OffsetDeleteRequest,
) -> Reply {
    let group_id = request.group_id.0.to_string();
    let wanted: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let deleted = services
        .groups
        .delete_offsets(&group_id, wanted, crate::clock::now_ms());
    Reply::Later(tokio::spawn(async move {
        let mut response = OffsetDeleteResponse::default();
        let deleted = match deleted {
            Ok((codes, appended)) => appended.durable(&group_id).await.map(|()| codes),
            Err(code) => Err(code),
        };
        match deleted {
            Err(code) => response.error_code = code,
            Ok(codes) => {
                let mut codes = codes.into_iter();
                for topic in &request.topics {
                    let mut t = OffsetDeleteResponseTopic::default();
                    t.name = topic.name.clone();
                    for p in &topic.partitions {
                        let mut out = OffsetDeleteResponsePartition::default();
                        out.partition_index = p.partition_index;
                        out.error_code = codes.next().unwrap_or(0);
                        t.partitions.push(out);
                    }
                    response.topics.push(t);
                }
            }
        }
        ctx.respond(&response)
    }))
}
