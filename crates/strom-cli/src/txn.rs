//! `strom txn ...`: list and describe transactions, show a partition's producers, find hanging
//! transactions and abort them, like Kafka's `kafka-transactions.sh`.
//!
//! Everything goes over the Kafka protocol ([`wire`]): ListTransactions is asked of every broker
//! (each coordinator answers for its own transactional ids) and merged; describe finds the
//! coordinator with FindCoordinator(TRANSACTION); DescribeProducers and WriteTxnMarkers go to
//! the partition's leader. `abort` writes the ABORT marker itself, as Kafka's tool does: it is
//! for transactions the coordinator has lost (see `find-hanging`), not a replacement for the
//! producer's own `abort_transaction`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use serde::Serialize;

use crate::client::ClientOptions;
use crate::output::{print_json, Table};

mod args;
mod hanging;
pub mod wire;

pub use args::*;
use wire::{error_name, AbortMarker, Cluster, ListFilter};

/// Runs one `txn` subcommand.
pub async fn run(options: &ClientOptions, command: TxnCommand) -> anyhow::Result<()> {
    match command {
        TxnCommand::List(args) => list(options, args).await,
        TxnCommand::Describe(args) => describe(options, args).await,
        TxnCommand::DescribeProducers(args) => describe_producers(options, args).await,
        TxnCommand::FindHanging(args) => hanging::run(options, args).await,
        TxnCommand::Abort(args) => abort(options, args).await,
    }
}

/// Now as milliseconds since the epoch, for transaction durations.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One row of `txn list`.
#[derive(Debug, Serialize)]
struct ListRow {
    transactional_id: String,
    coordinator: i32,
    producer_id: i64,
    transaction_state: String,
}

async fn list(options: &ClientOptions, args: ListArgs) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(options, Some(&[])).await?;
    let filter = ListFilter {
        states: args.states,
        producer_ids: args.producer_ids,
        duration_ms: args.duration_ms,
        id_pattern: args.id_pattern,
    };
    let mut rows = Vec::new();
    for broker in cluster.broker_ids() {
        for state in cluster.list_transactions(broker, &filter).await? {
            rows.push(ListRow {
                transactional_id: state.transactional_id.0.to_string(),
                coordinator: broker,
                producer_id: state.producer_id.0,
                transaction_state: state.transaction_state.to_string(),
            });
        }
    }
    cluster.close();
    rows.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    if options.json {
        return print_json(&rows);
    }
    let mut table = Table::new(&[
        "TransactionalId",
        "Coordinator",
        "ProducerId",
        "TransactionState",
    ]);
    for row in &rows {
        table.row(vec![
            row.transactional_id.clone(),
            row.coordinator.to_string(),
            row.producer_id.to_string(),
            row.transaction_state.clone(),
        ]);
    }
    Ok(table.print()?)
}

/// One partition of a described transaction.
#[derive(Debug, Serialize, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TopicPartition {
    topic: String,
    partition: i32,
}

/// What `txn describe` shows.
#[derive(Debug, Serialize)]
struct Description {
    coordinator_id: i32,
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    transaction_state: String,
    transaction_timeout_ms: i32,
    /// `None` when no transaction is open.
    current_transaction_start_time_ms: Option<i64>,
    /// `None` when no transaction is open.
    transaction_duration_ms: Option<i64>,
    topic_partitions: Vec<TopicPartition>,
}

async fn describe(options: &ClientOptions, args: DescribeArgs) -> anyhow::Result<()> {
    let id = args.transactional_id;
    let mut cluster = Cluster::connect(options, Some(&[])).await?;
    let coordinator = cluster.transaction_coordinator(&id).await?;
    let state = cluster.describe_transaction(coordinator, &id).await?;
    cluster.close();
    if state.error_code == kafka_protocol::error::ResponseError::TransactionalIdNotFound.code() {
        bail!(
            "transactional id {id:?} is not known to its coordinator (broker {coordinator}): \
             TRANSACTIONAL_ID_NOT_FOUND (use `strom txn list`)"
        );
    }
    if state.error_code != 0 {
        bail!(
            "broker {coordinator} could not describe transactional id {id:?}: {}",
            error_name(state.error_code)
        );
    }
    let start = Some(state.transaction_start_time_ms).filter(|&ms| ms >= 0);
    let mut topic_partitions: Vec<TopicPartition> = state
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|&partition| TopicPartition {
                topic: t.topic.0.to_string(),
                partition,
            })
        })
        .collect();
    topic_partitions.sort();
    let description = Description {
        coordinator_id: coordinator,
        transactional_id: id,
        producer_id: state.producer_id.0,
        producer_epoch: state.producer_epoch,
        transaction_state: state.transaction_state.to_string(),
        transaction_timeout_ms: state.transaction_timeout_ms,
        current_transaction_start_time_ms: start,
        transaction_duration_ms: start.map(|ms| (now_ms() - ms).max(0)),
        topic_partitions,
    };
    if options.json {
        return print_json(&description);
    }
    let optional = |value: Option<i64>| value.map_or("None".to_owned(), |v| v.to_string());
    let mut table = Table::new(&[
        "CoordinatorId",
        "TransactionalId",
        "ProducerId",
        "ProducerEpoch",
        "TransactionState",
        "TransactionTimeoutMs",
        "CurrentTransactionStartTimeMs",
        "TransactionDurationMs",
        "TopicPartitions",
    ]);
    table.row(vec![
        description.coordinator_id.to_string(),
        description.transactional_id.clone(),
        description.producer_id.to_string(),
        description.producer_epoch.to_string(),
        description.transaction_state.clone(),
        description.transaction_timeout_ms.to_string(),
        optional(description.current_transaction_start_time_ms),
        optional(description.transaction_duration_ms),
        description
            .topic_partitions
            .iter()
            .map(|tp| format!("{}-{}", tp.topic, tp.partition))
            .collect::<Vec<_>>()
            .join(","),
    ]);
    Ok(table.print()?)
}

/// One producer of `txn describe-producers`.
#[derive(Debug, Serialize, Clone)]
pub(crate) struct ProducerRow {
    producer_id: i64,
    producer_epoch: i32,
    latest_coordinator_epoch: i32,
    last_sequence: i32,
    last_timestamp: i64,
    /// `None` when the producer has no open transaction on the partition.
    current_transaction_start_offset: Option<i64>,
}

/// The producers of `topic`-`partition` as its leader knows them, with an error that names the
/// partition and Kafka's error.
async fn partition_producers(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
) -> anyhow::Result<(i32, Vec<ProducerRow>)> {
    let leader = cluster.leader(topic, partition)?;
    let answer = cluster
        .describe_producers(leader, topic, &[partition])
        .await?
        .remove(&partition)
        .ok_or_else(|| anyhow!("DescribeProducers answered nothing for {topic}-{partition}"))?;
    let producers = answer.map_err(|code| {
        anyhow!(
            "DescribeProducers for {topic}-{partition} on broker {leader} failed: {}",
            error_name(code)
        )
    })?;
    Ok((leader, producers.iter().map(producer_row).collect()))
}

fn producer_row(
    p: &kafka_protocol::messages::describe_producers_response::ProducerState,
) -> ProducerRow {
    ProducerRow {
        producer_id: p.producer_id.0,
        producer_epoch: p.producer_epoch,
        latest_coordinator_epoch: p.coordinator_epoch,
        last_sequence: p.last_sequence,
        last_timestamp: p.last_timestamp,
        current_transaction_start_offset: Some(p.current_txn_start_offset).filter(|&o| o >= 0),
    }
}

async fn describe_producers(options: &ClientOptions, args: PartitionArgs) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(options, Some(std::slice::from_ref(&args.topic))).await?;
    let (_, rows) = partition_producers(&mut cluster, &args.topic, args.partition).await?;
    cluster.close();
    if options.json {
        return print_json(&rows);
    }
    let mut table = Table::new(&[
        "ProducerId",
        "ProducerEpoch",
        "LatestCoordinatorEpoch",
        "LastSequence",
        "LastTimestamp",
        "CurrentTransactionStartOffset",
    ]);
    for row in &rows {
        table.row(vec![
            row.producer_id.to_string(),
            row.producer_epoch.to_string(),
            row.latest_coordinator_epoch.to_string(),
            row.last_sequence.to_string(),
            row.last_timestamp.to_string(),
            row.current_transaction_start_offset
                .map_or("None".to_owned(), |o| o.to_string()),
        ]);
    }
    Ok(table.print()?)
}

/// What `txn abort` reports.
#[derive(Debug, Serialize)]
struct AbortResult {
    topic: String,
    partition: i32,
    leader: i32,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    /// The transaction's first offset, when the producer was found by it.
    start_offset: Option<i64>,
}

async fn abort(options: &ClientOptions, args: AbortArgs) -> anyhow::Result<()> {
    let (topic, partition) = (args.topic, args.partition);
    let mut cluster = Cluster::connect(options, Some(std::slice::from_ref(&topic))).await?;
    let (leader, marker) = match args.start_offset {
        Some(offset) => {
            let (leader, producers) = partition_producers(&mut cluster, &topic, partition).await?;
            let producer = producers
                .iter()
                .find(|p| p.current_transaction_start_offset == Some(offset))
                .ok_or_else(|| {
                    anyhow!(
                        "no open transaction starts at offset {offset} of {topic}-{partition} \
                         (see `strom txn describe-producers --topic {topic} --partition {partition}`)"
                    )
                })?;
            let producer_epoch = i16::try_from(producer.producer_epoch).map_err(|_| {
                anyhow!("producer epoch {} is out of range", producer.producer_epoch)
            })?;
            let marker = AbortMarker {
                producer_id: producer.producer_id,
                producer_epoch,
                coordinator_epoch: producer.latest_coordinator_epoch,
            };
            (leader, marker)
        }
        None => {
            let leader = cluster.leader(&topic, partition)?;
            let marker = AbortMarker {
                producer_id: args.producer_id.expect("clap requires --producer-id"),
                producer_epoch: args.producer_epoch.expect("clap requires --producer-epoch"),
                coordinator_epoch: args
                    .coordinator_epoch
                    .expect("clap requires --coordinator-epoch"),
            };
            (leader, marker)
        }
    };
    let code = cluster
        .write_abort_marker(leader, &topic, partition, &marker)
        .await?;
    cluster.close();
    if code != 0 {
        bail!(
            "aborting the transaction of producer {} (epoch {}) on {topic}-{partition} failed: \
             broker {leader} answered {}",
            marker.producer_id,
            marker.producer_epoch,
            error_name(code)
        );
    }
    let result = AbortResult {
        topic,
        partition,
        leader,
        producer_id: marker.producer_id,
        producer_epoch: marker.producer_epoch,
        coordinator_epoch: marker.coordinator_epoch,
        start_offset: args.start_offset,
    };
    if options.json {
        return print_json(&result);
    }
    println!(
        "Aborted the transaction of producer {} (epoch {}, coordinator epoch {}) on {}-{}{}",
        result.producer_id,
        result.producer_epoch,
        result.coordinator_epoch,
        result.topic,
        result.partition,
        result
            .start_offset
            .map(|o| format!(" starting at offset {o}"))
            .unwrap_or_default()
    );
    Ok(())
}
