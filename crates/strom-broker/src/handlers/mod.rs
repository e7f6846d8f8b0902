//! One module per Kafka API family. Each handler decodes nothing itself: dispatch decodes the
//! body into a [`RequestBody`] and [`route`] calls the handler, which returns a [`Reply`].

pub mod api_versions;
pub mod authorized;
pub mod broker_configs;
pub mod cluster;
mod config_ops;
pub mod configs;
pub mod elect;
pub mod fetch;
pub mod groups;
pub mod interbroker;
pub mod leader_epoch;
pub mod legacy;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producer_id;
pub mod producers;
pub mod reassign;
pub mod records;
pub mod topics;
pub mod txn;
pub mod txn_offsets;

#[cfg(test)]
#[path = "tests/txn_read.rs"]
mod txn_read_tests;

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::protocol::frame::Reply;
use crate::protocol::request::{RequestBody, RequestContext};
use crate::services::Services;

/// Runs the handler of a decoded request.
pub fn route(services: &Arc<Services>, ctx: RequestContext, body: RequestBody) -> Reply {
    use RequestBody as R;
    let ready = |bytes: Bytes| Reply::Ready(bytes);
    match body {
        R::ApiVersions(r) => ready(ctx.respond(&api_versions::handle(&r))),
        R::Metadata(r) => ready(ctx.respond(&metadata::handle(services, &ctx, r))),
        R::Produce(r) => produce::handle(services, ctx, r),
        R::Fetch(r) => fetch::handle(services, ctx, r),
        R::ListOffsets(r) => ready(ctx.respond(&list_offsets::handle(services, &ctx, r))),
        R::OffsetForLeaderEpoch(r) => ready(ctx.respond(&leader_epoch::handle(services, r))),
        R::CreateTopics(r) => topics::create_topics_reply(services, ctx, r),
        R::DeleteTopics(r) => topics::delete_topics_reply(services, ctx, r),
        R::CreatePartitions(r) => topics::create_partitions_reply(services, ctx, r),
        R::DeleteRecords(r) => records::delete_records_reply(services, ctx, r),
        R::DescribeConfigs(r) => ready(ctx.respond(&configs::describe_configs(services, &ctx, r))),
        R::AlterConfigs(r) => ready(ctx.respond(&configs::alter_configs(services, r))),
        R::IncrementalAlterConfigs(r) => {
            ready(ctx.respond(&configs::incremental_alter_configs(services, r)))
        }
        R::InitProducerId(r) => match r.transactional_id.as_ref().map(|id| id.0.to_string()) {
            Some(id) => txn::init_producer_id(services, ctx, r, id),
            None => ready(ctx.respond(&producer_id::handle(services, r))),
        },
        R::DescribeCluster(r) => ready(ctx.respond(&cluster::describe_cluster(services, r))),
        R::FindCoordinator(r) => ready(ctx.respond(&groups::find_coordinator(services, &ctx, r))),
        R::JoinGroup(r) => groups::join_group(services, ctx, r),
        R::SyncGroup(r) => groups::sync_group(services, ctx, r),
        R::Heartbeat(r) => ready(ctx.respond(&groups::heartbeat(services, r))),
        R::LeaveGroup(r) => ready(ctx.respond(&groups::leave_group(services, &ctx, r))),
        R::ListGroups(r) => ready(ctx.respond(&groups::list_groups(services, &ctx, r))),
        R::DescribeGroups(r) => ready(ctx.respond(&groups::describe_groups(services, &ctx, r))),
        R::DeleteGroups(r) => groups::delete_groups(services, ctx, r),
        R::OffsetCommit(r) => offsets::offset_commit(services, ctx, r),
        R::OffsetFetch(r) => offsets::offset_fetch(services, ctx, r),
        R::OffsetDelete(r) => offsets::offset_delete(services, ctx, r),
        R::AddPartitionsToTxn(r) => txn::add_partitions_to_txn(services, ctx, r),
        R::AddOffsetsToTxn(r) => txn::add_offsets_to_txn(services, ctx, r),
        R::EndTxn(r) => txn::end_txn(services, ctx, r),
        R::WriteTxnMarkers(r) => txn::write_txn_markers(services, ctx, r),
        R::DescribeTransactions(r) => txn::describe_transactions(services, ctx, r),
        R::ListTransactions(r) => txn::list_transactions(services, ctx, r),
        R::TxnOffsetCommit(r) => txn_offsets::txn_offset_commit(services, ctx, r),
        R::ElectLeaders(r) => elect::elect_leaders(services, ctx, r),
        R::AlterPartitionReassignments(r) => {
            reassign::alter_partition_reassignments(services, ctx, r)
        }
        R::ListPartitionReassignments(r) => {
            reassign::list_partition_reassignments(services, ctx, r)
        }
        R::DescribeLogDirs(r) => ready(ctx.respond(&log_dirs::describe_log_dirs(services, r))),
        R::DescribeProducers(r) => ready(ctx.respond(&producers::describe_producers(services, r))),
        R::ListOffsetsV0(r) => ready(crate::protocol::compat::respond3(
            &ctx,
            &list_offsets::handle_v0(services, &ctx, r),
        )),
        R::OffsetCommitV0V1(r) => {
            offsets::offset_commit_with_timestamps(services, ctx, r.request, &r.commit_timestamps)
        }
    }
}

/// A topic name on the wire.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A string on the wire.
pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
