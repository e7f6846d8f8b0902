//! The transaction coordinator's APIs: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! DescribeTransactions, ListTransactions, and the partition leaders' WriteTxnMarkers.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, ListTransactionsRequest, ListTransactionsResponse,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};

use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::Services;

/// Handles `AddPartitionsToTxn` (not implemented yet).
pub fn add_partitions_to_txn(
    _services: &Arc<Services>,
    ctx: RequestContext,
    _request: AddPartitionsToTxnRequest,
) -> Reply {
    let mut response = AddPartitionsToTxnResponse::default();
    response.error_code = E::CoordinatorNotAvailable.code();
    Reply::Ready(ctx.respond(&response))
}

/// Handles `AddOffsetsToTxn` (not implemented yet).
pub fn add_offsets_to_txn(
    _services: &Arc<Services>,
    ctx: RequestContext,
    _request: AddOffsetsToTxnRequest,
) -> Reply {
    let mut response = AddOffsetsToTxnResponse::default();
    response.error_code = E::CoordinatorNotAvailable.code();
    Reply::Ready(ctx.respond(&response))
}

/// Handles `EndTxn` (not implemented yet).
pub fn end_txn(_services: &Arc<Services>, ctx: RequestContext, _request: EndTxnRequest) -> Reply {
    let mut response = EndTxnResponse::default();
    response.error_code = E::CoordinatorNotAvailable.code();
    Reply::Ready(ctx.respond(&response))
}

/// Handles `WriteTxnMarkers` (not implemented yet).
pub fn write_txn_markers(
    _services: &Arc<Services>,
    ctx: RequestContext,
    _request: WriteTxnMarkersRequest,
) -> Reply {
    Reply::Ready(ctx.respond(&WriteTxnMarkersResponse::default()))
}

/// Handles `DescribeTransactions` (not implemented yet).
pub fn describe_transactions(
    _services: &Arc<Services>,
    ctx: RequestContext,
    _request: DescribeTransactionsRequest,
) -> Reply {
    Reply::Ready(ctx.respond(&DescribeTransactionsResponse::default()))
}

/// Handles `ListTransactions` (not implemented yet).
pub fn list_transactions(
    _services: &Arc<Services>,
    ctx: RequestContext,
    _request: ListTransactionsRequest,
) -> Reply {
    let mut response = ListTransactionsResponse::default();
    response.error_code = E::CoordinatorNotAvailable.code();
    Reply::Ready(ctx.respond(&response))
}
