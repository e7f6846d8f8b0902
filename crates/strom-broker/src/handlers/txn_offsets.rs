//! `TxnOffsetCommit`: offsets committed inside a transaction, visible once it commits.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::Services;

/// Handles `TxnOffsetCommit` (not implemented yet: every partition answers
/// `COORDINATOR_NOT_AVAILABLE`).
pub fn txn_offset_commit(
    _services: &Arc<Services>,
    ctx: RequestContext,
    request: TxnOffsetCommitRequest,
) -> Reply {
    let mut response = TxnOffsetCommitResponse::default();
    for topic in request.topics {
        let mut t = TxnOffsetCommitResponseTopic::default();
        t.name = topic.name;
        for p in topic.partitions {
            let mut out = TxnOffsetCommitResponsePartition::default();
            out.partition_index = p.partition_index;
            out.error_code = E::CoordinatorNotAvailable.code();
            t.partitions.push(out);
        }
        response.topics.push(t);
    }
    Reply::Ready(ctx.respond(&response))
}
