//! The transaction coordinator's APIs: InitProducerId with a transactional id (called from
//! `producer_id.rs`), AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions,
//! ListTransactions, and the partition leaders' WriteTxnMarkers.
//!
//! Each parks its request with the coordinator ([`crate::services::txn::request`]) and answers
//! from a task when the core responds. As Kafka's `KafkaApis` does, `PRODUCER_FENCED` becomes
//! `INVALID_PRODUCER_EPOCH` for the request versions that predate it (InitProducerId < 4,
//! AddPartitionsToTxn, AddOffsetsToTxn and EndTxn < 2).

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use strom_meta::replication::TopicPartition;
use strom_meta::txn::{errors, Input, Response, TxnState};

use super::{str_bytes, topic_name};
use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::coordinator::OFFSETS_TOPIC;
use crate::services::txn::{self as txn, TXN_TOPIC};
use crate::services::Services;

/// `PRODUCER_FENCED` as a request of `version` understands it.
fn fenced_for(code: i16, version: i16, first_with_fenced: i16) -> i16 {
    if code == errors::PRODUCER_FENCED && version < first_with_fenced {
        errors::INVALID_PRODUCER_EPOCH
    } else {
        code
    }
}

/// Waits for the core's answer; a dropped request (the broker shutting down) is
/// `COORDINATOR_NOT_AVAILABLE`.
async fn answer(rx: tokio::sync::oneshot::Receiver<Response>) -> Option<Response> {
    rx.await.ok()
}

/// Whether `__transaction_state` exists, having it created if not (through ZooKeeper in
/// cluster mode, in the background).
fn ensure_topic(services: &Arc<Services>) -> bool {
    match txn::ensure_topic(services) {
        txn::TopicReady::Exists => true,
        txn::TopicReady::CreateInCluster => {
            super::topics::auto_create_in_cluster(services, TXN_TOPIC);
            false
        }
        txn::TopicReady::Failed => false,
    }
}

/// InitProducerId with a transactional id.
pub fn init_producer_id(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: InitProducerIdRequest,
    transactional_id: String,
) -> Reply {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if transactional_id.is_empty() {
        response.error_code = E::InvalidRequest.code();
        return Reply::Ready(ctx.respond(&response));
    }
    if !ensure_topic(services) {
        response.error_code = E::CoordinatorNotAvailable.code();
        return Reply::Ready(ctx.respond(&response));
    }
    let current = (ctx.version >= 3 && request.producer_id.0 >= 0)
        .then_some((request.producer_id.0, request.producer_epoch));
    let timeout_ms = request.transaction_timeout_ms;
    let rx = txn::request(services, |token| Input::InitProducerId {
        token,
        transactional_id,
        timeout_ms,
        current,
    });
    Reply::Later(tokio::spawn(async move {
        match answer(rx).await {
            Some(Response::InitProducerId {
                error,
                producer_id,
                producer_epoch,
            }) => {
                response.error_code = fenced_for(error, ctx.version, 4);
                response.producer_id = ProducerId(producer_id);
                response.producer_epoch = producer_epoch;
            }
            _ => response.error_code = E::CoordinatorNotAvailable.code(),
        }
        ctx.respond(&response)
    }))
}

/// One transaction of an AddPartitionsToTxn: id, producer, partitions, verify-only.
struct AddRequest {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    partitions: Vec<TopicPartition>,
    verify_only: bool,
}

/// Handles `AddPartitionsToTxn`: v0–v3 carry one transaction, v4+ (KIP-890, brokers'
/// verify-only checks and batched adds) several. As in Kafka, a request naming an unknown
/// topic or partition adds nothing: those answer `UNKNOWN_TOPIC_OR_PARTITION`, the others
/// `OPERATION_NOT_ATTEMPTED`.
pub fn add_partitions_to_txn(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: AddPartitionsToTxnRequest,
) -> Reply {
    let flatten = |topics: &[kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic]| {
        topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| TopicPartition {
                    topic: t.name.0.to_string(),
                    partition: *p,
                })
            })
            .collect::<Vec<_>>()
    };
    let adds: Vec<AddRequest> = if ctx.version >= 4 {
        request
            .transactions
            .iter()
            .map(|t| AddRequest {
                transactional_id: t.transactional_id.0.to_string(),
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                partitions: flatten(&t.topics),
                verify_only: t.verify_only,
            })
            .collect()
    } else {
        vec![AddRequest {
            transactional_id: request.v3_and_below_transactional_id.0.to_string(),
            producer_id: request.v3_and_below_producer_id.0,
            producer_epoch: request.v3_and_below_producer_epoch,
            partitions: flatten(&request.v3_and_below_topics),
            verify_only: false,
        }]
    };
    let mut pending = Vec::new();
    for add in adds {
        let unknown: Vec<&TopicPartition> = add
            .partitions
            .iter()
            .filter(|tp| {
                services
                    .metadata
                    .partition(&tp.topic, tp.partition)
                    .is_none()
            })
            .collect();
        if !unknown.is_empty() {
            let results = add
                .partitions
                .iter()
                .map(|tp| {
                    let code = if unknown.contains(&tp) {
                        E::UnknownTopicOrPartition.code()
                    } else {
                        E::OperationNotAttempted.code()
                    };
                    (tp.clone(), code)
                })
                .collect();
            pending.push((add.transactional_id, Err(results)));
            continue;
        }
        let id = add.transactional_id.clone();
        let rx = txn::request(services, |token| Input::AddPartitions {
            token,
            transactional_id: add.transactional_id,
            producer_id: add.producer_id,
            producer_epoch: add.producer_epoch,
            partitions: add.partitions.clone(),
            verify_only: add.verify_only,
        });
        pending.push((id, Ok((add.partitions, rx))));
    }
    Reply::Later(tokio::spawn(async move {
        let mut response = AddPartitionsToTxnResponse::default();
        for (id, outcome) in pending {
            let results: Vec<(TopicPartition, i16)> = match outcome {
                Err(results) => results,
                Ok((partitions, rx)) => match answer(rx).await {
                    Some(Response::AddPartitions { results }) => results,
                    _ => partitions
                        .into_iter()
                        .map(|tp| (tp, E::CoordinatorNotAvailable.code()))
                        .collect(),
                },
            };
            let topics = partition_results(&results, ctx.version);
            if ctx.version >= 4 {
                let mut r = AddPartitionsToTxnResult::default();
                r.transactional_id = TransactionalId(str_bytes(id));
                r.topic_results = topics;
                response.results_by_transaction.push(r);
            } else {
                response.results_by_topic_v3_and_below = topics;
            }
        }
        ctx.respond(&response)
    }))
}

/// Per-partition codes grouped by topic, in first-seen order.
fn partition_results(
    results: &[(TopicPartition, i16)],
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    by_topic(
        results.iter().map(|(tp, code)| (tp, *code)),
        |name| {
            let mut t = AddPartitionsToTxnTopicResult::default();
            t.name = topic_name(name);
            t
        },
        |t| t.name.0.as_str(),
        |t, partition, code| {
            let mut p = AddPartitionsToTxnPartitionResult::default();
            p.partition_index = partition;
            p.partition_error_code = fenced_for(code, version, 2);
            t.results_by_partition.push(p);
        },
    )
}

/// Groups per-partition items by topic, in first-seen order: `new` makes a topic's entry,
/// `name` reads it back, `push` adds one partition's item to it.
fn by_topic<'a, T, P>(
    items: impl IntoIterator<Item = (&'a TopicPartition, P)>,
    new: impl Fn(&str) -> T,
    name: impl Fn(&T) -> &str,
    push: impl Fn(&mut T, i32, P),
) -> Vec<T> {
    let mut topics: Vec<T> = Vec::new();
    for (tp, item) in items {
        let index = match topics.iter().position(|t| name(t) == tp.topic) {
            Some(i) => i,
            None => {
                topics.push(new(&tp.topic));
                topics.len() - 1
            }
        };
        push(&mut topics[index], tp.partition, item);
    }
    topics
}

/// Handles `AddOffsetsToTxn`: adds the group's `__consumer_offsets` partition to the
/// transaction, so its TxnOffsetCommit is settled by the transaction's marker.
pub fn add_offsets_to_txn(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: AddOffsetsToTxnRequest,
) -> Reply {
    let group = request.group_id.0.to_string();
    let partition = TopicPartition {
        topic: OFFSETS_TOPIC.to_string(),
        partition: services.groups.partition_of(&group),
    };
    let rx = txn::request(services, |token| Input::AddPartitions {
        token,
        transactional_id: request.transactional_id.0.to_string(),
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
        partitions: vec![partition],
        verify_only: false,
    });
    Reply::Later(tokio::spawn(async move {
        let mut response = AddOffsetsToTxnResponse::default();
        response.error_code = match answer(rx).await {
            Some(Response::AddPartitions { results }) => results
                .first()
                .map_or(E::UnknownServerError.code(), |(_, code)| *code),
            _ => E::CoordinatorNotAvailable.code(),
        };
        response.error_code = fenced_for(response.error_code, ctx.version, 2);
        ctx.respond(&response)
    }))
}

/// Handles `EndTxn`: commit or abort, answered once the decision is durable.
pub fn end_txn(services: &Arc<Services>, ctx: RequestContext, request: EndTxnRequest) -> Reply {
    let producer_id = request.producer_id.0;
    let producer_epoch = request.producer_epoch;
    let rx = txn::request(services, |token| Input::EndTxn {
        token,
        transactional_id: request.transactional_id.0.to_string(),
        producer_id,
        producer_epoch,
        commit: request.committed,
    });
    Reply::Later(tokio::spawn(async move {
        let mut response = EndTxnResponse::default();
        response.error_code = match answer(rx).await {
            Some(Response::EndTxn { error }) => fenced_for(error, ctx.version, 2),
            _ => E::CoordinatorNotAvailable.code(),
        };
        // v5 (transaction version 2) answers the producer's id and epoch; with version 1 they
        // do not change.
        response.producer_id = ProducerId(producer_id);
        response.producer_epoch = producer_epoch;
        ctx.respond(&response)
    }))
}

/// Handles `WriteTxnMarkers` as the leader of the named partitions.
pub fn write_txn_markers(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: WriteTxnMarkersRequest,
) -> Reply {
    let services = services.clone();
    Reply::Later(tokio::spawn(async move {
        let mut response = WriteTxnMarkersResponse::default();
        for m in request.markers {
            let marker = strom_log::control::TxnMarker {
                producer_id: m.producer_id.0,
                producer_epoch: m.producer_epoch,
                coordinator_epoch: m.coordinator_epoch,
                commit: m.transaction_result,
            };
            let tps: Vec<TopicPartition> = m
                .topics
                .iter()
                .flat_map(|t| {
                    t.partition_indexes.iter().map(|p| TopicPartition {
                        topic: t.name.0.to_string(),
                        partition: *p,
                    })
                })
                .collect();
            let codes = txn::markers::write_local(&services, &marker, &tps).await;
            let mut result = WritableTxnMarkerResult::default();
            result.producer_id = m.producer_id;
            result.topics = by_topic(
                codes.iter().map(|(tp, code)| (tp, *code)),
                |name| {
                    let mut t = WritableTxnMarkerTopicResult::default();
                    t.name = topic_name(name);
                    t
                },
                |t| t.name.0.as_str(),
                |t, partition, code| {
                    let mut p = WritableTxnMarkerPartitionResult::default();
                    p.partition_index = partition;
                    p.error_code = code;
                    t.partitions.push(p);
                },
            );
            response.markers.push(result);
        }
        ctx.respond(&response)
    }))
}

/// Handles `DescribeTransactions`.
pub fn describe_transactions(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: DescribeTransactionsRequest,
) -> Reply {
    let mut response = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let mut state = TransactionState::default();
        state.transactional_id = id.clone();
        state.transaction_state = str_bytes("");
        state.producer_id = ProducerId(-1);
        state.producer_epoch = -1;
        state.transaction_start_time_ms = -1;
        match services.txn.describe(id.0.as_str()) {
            Ok(d) => {
                state.transaction_state = str_bytes(d.state.name());
                state.transaction_timeout_ms = d.timeout_ms;
                state.transaction_start_time_ms = d.start_timestamp_ms;
                state.producer_id = ProducerId(d.producer_id);
                state.producer_epoch = d.producer_epoch;
                state.topics = by_topic(
                    d.partitions.iter().map(|tp| (tp, ())),
                    |name| {
                        let mut t = TopicData::default();
                        t.topic = topic_name(name);
                        t
                    },
                    |t| t.topic.0.as_str(),
                    |t, partition, ()| t.partitions.push(partition),
                );
            }
            Err(code) => state.error_code = code,
        }
        response.transaction_states.push(state);
    }
    Reply::Ready(ctx.respond(&response))
}

/// Handles `ListTransactions`, with its state, producer id, duration (v1) and id-pattern (v2)
/// filters. An unknown state name is listed back in `unknown_state_filters`.
pub fn list_transactions(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: ListTransactionsRequest,
) -> Reply {
    let mut response = ListTransactionsResponse::default();
    let (all, loading) = services.txn.list();
    if loading {
        response.error_code = E::CoordinatorLoadInProgress.code();
        return Reply::Ready(ctx.respond(&response));
    }
    let states: Vec<String> = request
        .state_filters
        .iter()
        .map(|s| s.to_string())
        .collect();
    response.unknown_state_filters = request
        .state_filters
        .iter()
        .filter(|s| {
            !(0..=7).any(|id| TxnState::from_id(id).is_some_and(|t| t.name() == s.as_str()))
        })
        .cloned()
        .collect();
    let pattern = match request
        .transactional_id_pattern
        .as_ref()
        .map(|p| p.to_string())
    {
        Some(p) if !p.is_empty() => match Pattern::parse(&p) {
            Some(pattern) => Some(pattern),
            None => {
                response.error_code = E::InvalidRegularExpression.code();
                return Reply::Ready(ctx.respond(&response));
            }
        },
        _ => None,
    };
    let now = crate::clock::now_ms();
    for d in all {
        if !states.is_empty() && !states.iter().any(|s| s == d.state.name()) {
            continue;
        }
        if !request.producer_id_filters.is_empty()
            && !request
                .producer_id_filters
                .iter()
                .any(|p| p.0 == d.producer_id)
        {
            continue;
        }
        if request.duration_filter >= 0
            && (d.start_timestamp_ms < 0 || now - d.start_timestamp_ms < request.duration_filter)
        {
            continue;
        }
        if pattern
            .as_ref()
            .is_some_and(|p| !p.matches(&d.transactional_id))
        {
            continue;
        }
        let mut s = ListedState::default();
        s.transactional_id = TransactionalId(str_bytes(d.transactional_id));
        s.producer_id = ProducerId(d.producer_id);
        s.transaction_state = str_bytes(d.state.name());
        response.transaction_states.push(s);
    }
    Reply::Ready(ctx.respond(&response))
}

/// The transactional-id pattern of ListTransactions v2 (a Java regular expression in Kafka):
/// Strom matches the subset tools use: literals, `.`, `.*`, `^`/`$` anchors (the whole id
/// must match, as Java's `matches`).
struct Pattern {
    parts: Vec<PatternPart>,
}

enum PatternPart {
    Literal(char),
    Any,
    AnyRun,
}

impl Pattern {
    fn parse(text: &str) -> Option<Pattern> {
        let text = text.strip_prefix('^').unwrap_or(text);
        let text = text.strip_suffix('$').unwrap_or(text);
        let mut parts = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '.' if chars.peek() == Some(&'*') => {
                    chars.next();
                    parts.push(PatternPart::AnyRun);
                }
                '.' => parts.push(PatternPart::Any),
                '\\' => parts.push(PatternPart::Literal(chars.next()?)),
                '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' => return None,
                c => parts.push(PatternPart::Literal(c)),
            }
        }
        Some(Pattern { parts })
    }

    fn matches(&self, id: &str) -> bool {
        fn go(parts: &[PatternPart], text: &[char]) -> bool {
            match parts.split_first() {
                None => text.is_empty(),
                Some((PatternPart::AnyRun, rest)) => (0..=text.len()).any(|i| go(rest, &text[i..])),
                Some((PatternPart::Any, rest)) => !text.is_empty() && go(rest, &text[1..]),
                Some((PatternPart::Literal(c), rest)) => {
                    text.first() == Some(c) && go(rest, &text[1..])
                }
            }
        }
        let chars: Vec<char> = id.chars().collect();
        go(&self.parts, &chars)
    }
}

/// FindCoordinator for a transactional id: the leader of its `__transaction_state` partition.
pub fn coordinator_of(
    services: &Arc<Services>,
    transactional_id: &str,
) -> Result<i32, (i16, String)> {
    if transactional_id.is_empty() {
        return Err((
            E::InvalidRequest.code(),
            "the transactional id is empty".into(),
        ));
    }
    if !ensure_topic(services) {
        return Err((
            E::CoordinatorNotAvailable.code(),
            "__transaction_state is not available yet".into(),
        ));
    }
    let partition = services.txn.partition_of(services, transactional_id);
    services
        .metadata
        .leader(TXN_TOPIC, partition)
        .ok_or_else(|| {
            (
                E::CoordinatorNotAvailable.code(),
                "the transactional id's __transaction_state partition has no leader".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn list_pattern_matches_whole_ids() {
        let p = Pattern::parse("app-.*").unwrap();
        assert!(p.matches("app-1"));
        assert!(p.matches("app-"));
        assert!(!p.matches("xapp-1"));
        let p = Pattern::parse("^a.c$").unwrap();
        assert!(p.matches("abc"));
        assert!(!p.matches("abcd"));
        assert!(Pattern::parse("a(b").is_none());
    }
}
