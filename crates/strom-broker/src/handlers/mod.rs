//! One module per Kafka API family. Each handler decodes nothing itself: [`route`] decodes
//! the body for the negotiated version and calls the handler, which returns a [`Reply`].

pub mod api_versions;
pub mod cluster;
pub mod configs;
pub mod fetch;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producer_id;
pub mod records;
pub mod topics;

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::dispatch::{decode, RequestContext};
use crate::server::Reply;

/// Decodes the body of a supported request and runs its handler. An `Err` is a decoding
/// failure; the connection is then closed.
pub fn route(broker: &Arc<Broker>, ctx: RequestContext, mut body: Bytes) -> Result<Reply, String> {
    let v = ctx.version;
    let ready = |bytes: Bytes| Ok(Reply::Ready(bytes));
    match ctx.api {
        ApiKey::ApiVersions => ready(ctx.respond(&api_versions::handle(&decode(&mut body, v)?))),
        ApiKey::Metadata => {
            ready(ctx.respond(&metadata::handle(broker, &ctx, decode(&mut body, v)?)))
        }
        ApiKey::Produce => Ok(produce::handle(broker, ctx.clone(), decode(&mut body, v)?)),
        ApiKey::Fetch => Ok(fetch::handle(broker, ctx.clone(), decode(&mut body, v)?)),
        ApiKey::ListOffsets => {
            ready(ctx.respond(&list_offsets::handle(broker, &ctx, decode(&mut body, v)?)))
        }
        ApiKey::CreateTopics => {
            ready(ctx.respond(&topics::create_topics(broker, &ctx, decode(&mut body, v)?)))
        }
        ApiKey::DeleteTopics => {
            ready(ctx.respond(&topics::delete_topics(broker, &ctx, decode(&mut body, v)?)))
        }
        ApiKey::CreatePartitions => {
            ready(ctx.respond(&topics::create_partitions(broker, decode(&mut body, v)?)))
        }
        ApiKey::DeleteRecords => {
            ready(ctx.respond(&records::delete_records(broker, decode(&mut body, v)?)))
        }
        ApiKey::DescribeConfigs => ready(ctx.respond(&configs::describe_configs(
            broker,
            &ctx,
            decode(&mut body, v)?,
        ))),
        ApiKey::AlterConfigs => {
            ready(ctx.respond(&configs::alter_configs(broker, decode(&mut body, v)?)))
        }
        ApiKey::IncrementalAlterConfigs => ready(ctx.respond(&configs::incremental_alter_configs(
            broker,
            decode(&mut body, v)?,
        ))),
        ApiKey::InitProducerId => {
            ready(ctx.respond(&producer_id::handle(broker, &ctx, decode(&mut body, v)?)))
        }
        ApiKey::DescribeCluster => {
            ready(ctx.respond(&cluster::describe_cluster(broker, decode(&mut body, v)?)))
        }
        ApiKey::FindCoordinator => ready(ctx.respond(&groups::find_coordinator(
            broker,
            &ctx,
            decode(&mut body, v)?,
        ))),
        ApiKey::JoinGroup => Ok(groups::join_group(
            broker,
            ctx.clone(),
            decode(&mut body, v)?,
        )),
        ApiKey::SyncGroup => Ok(groups::sync_group(
            broker,
            ctx.clone(),
            decode(&mut body, v)?,
        )),
        ApiKey::Heartbeat => ready(ctx.respond(&groups::heartbeat(broker, decode(&mut body, v)?))),
        ApiKey::LeaveGroup => {
            ready(ctx.respond(&groups::leave_group(broker, &ctx, decode(&mut body, v)?)))
        }
        ApiKey::ListGroups => {
            ready(ctx.respond(&groups::list_groups(broker, &ctx, decode(&mut body, v)?)))
        }
        ApiKey::DescribeGroups => ready(ctx.respond(&groups::describe_groups(
            broker,
            &ctx,
            decode(&mut body, v)?,
        ))),
        ApiKey::DeleteGroups => Ok(groups::delete_groups(
            broker,
            ctx.clone(),
            decode(&mut body, v)?,
        )),
        ApiKey::OffsetCommit => Ok(offsets::offset_commit(
            broker,
            ctx.clone(),
            decode(&mut body, v)?,
        )),
        ApiKey::OffsetFetch => {
            ready(ctx.respond(&offsets::offset_fetch(broker, &ctx, decode(&mut body, v)?)))
        }
        ApiKey::OffsetDelete => Ok(offsets::offset_delete(
            broker,
            ctx.clone(),
            decode(&mut body, v)?,
        )),
        other => Err(format!(
            "{other:?} is listed as supported but has no handler"
        )),
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
