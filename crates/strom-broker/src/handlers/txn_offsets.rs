//! `TxnOffsetCommit`: offsets committed inside a transaction, visible once it commits.
//!
//! Checked per partition here (unknown partition, metadata too large), then as a whole by the
//! group coordinator on the connection's reader ([`crate::services::coordinator::TxnCommitter`]:
//! coordinator, group, member and generation, producer epoch), written to `__consumer_offsets`
//! as a transactional batch and answered once durable, like OffsetCommit. The offsets stay
//! pending until the transaction's marker (`GroupCoordinator::complete_transaction`).

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::offsets::commit_refusal;
use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::coordinator::TxnCommitter;
use crate::services::group::CommittedOffset;
use crate::services::Services;

/// Handles `TxnOffsetCommit` v0–v5. v0–v1 carry no leader epoch, v0–v2 no member id or
/// generation (the commit is then checked as one without members, as Kafka does); v4–v5 only
/// add error codes. A partition refused here keeps its own error while the others are
/// committed; a refusal by the coordinator (or a failed write) is every accepted partition's.
pub fn txn_offset_commit(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: TxnOffsetCommitRequest,
) -> Reply {
    let group_id = request.group_id.0.to_string();
    let now = crate::clock::now_ms();
    let mut response = TxnOffsetCommitResponse::default();
    let mut to_write = Vec::new();
    // (topic index, partition index) of each accepted partition, in to_write order.
    let mut slots = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let mut t = TxnOffsetCommitResponseTopic::default();
        t.name = topic.name.clone();
        for p in &topic.partitions {
            let mut out = TxnOffsetCommitResponsePartition::default();
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
                        leader_epoch: if ctx.version >= 2 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        commit_timestamp_ms: now,
                        expire_timestamp_ms: None,
                    },
                ));
                0
            };
            t.partitions.push(out);
        }
        response.topics.push(t);
    }
    let fail_accepted = |response: &mut TxnOffsetCommitResponse, slots: &[(usize, usize)], code| {
        for &(t, p) in slots {
            response.topics[t].partitions[p].error_code = code;
        }
    };
    let pending = if group_id.is_empty() {
        Err(E::InvalidGroupId.code())
    } else {
        // Fields a version lacks are at their defaults ("", None, -1): a commit without
        // members.
        let committer = TxnCommitter {
            producer_id: request.producer_id.0,
            producer_epoch: request.producer_epoch,
            member_id: request.member_id.as_str(),
            group_instance_id: request.group_instance_id.as_deref(),
            generation_id: request.generation_id,
        };
        services
            .groups
            .begin_txn_commit(&group_id, committer, to_write, now)
    };
    let pending = match pending {
        Ok(pending) => pending,
        Err(code) => {
            tracing::debug!(client = %ctx.client_id, group = %group_id, code, "TxnOffsetCommit refused");
            fail_accepted(&mut response, &slots, code);
            return Reply::Ready(ctx.respond(&response));
        }
    };
    Reply::Later(tokio::spawn(async move {
        if let Err(code) = pending.finish().await {
            fail_accepted(&mut response, &slots, code);
        }
        ctx.respond(&response)
    }))
}
