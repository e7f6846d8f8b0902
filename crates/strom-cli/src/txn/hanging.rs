//! `strom txn find-hanging`: open transactions on partitions that their coordinator does not
//! know as ongoing, as `kafka-transactions.sh find-hanging` finds them.
//!
//! 1. DescribeProducers on the chosen partitions (every partition a broker holds a replica of,
//!    asked of that broker; or a topic's partitions, asked of their leaders) gives each
//!    producer's open transaction (`current_txn_start_offset >= 0`).
//! 2. A transaction whose producer last wrote more than `--max-transaction-timeout-ms` ago is
//!    a candidate: a live one would have been ended or timed out by its coordinator.
//! 3. ListTransactions filtered by the candidates' producer ids (asked of every broker) maps a
//!    producer to its transactional id; DescribeTransactions at that id's coordinator then says
//!    whether the producer's transaction is still ongoing and includes the partition. A
//!    candidate with no transactional id, another producer id, a finished state, or without
//!    the partition is hanging.
//!
//! The decision ([`is_candidate`], [`is_hanging`]) is pure; `run` only gathers the answers.

use std::collections::BTreeMap;

use anyhow::bail;
use serde::Serialize;

use super::wire::{error_name, Cluster, ListFilter};
use super::{now_ms, FindHangingArgs, ProducerRow};
use crate::client::ClientOptions;
use crate::output::{print_json, Table};

/// An open transaction on one partition, as DescribeProducers shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OpenTransaction {
    topic: String,
    partition: i32,
    producer_id: i64,
    producer_epoch: i32,
    coordinator_epoch: i32,
    start_offset: i64,
    last_timestamp: i64,
    /// How long ago the producer last wrote to the partition.
    duration_ms: i64,
}

/// What the coordinator says of a transactional id, as far as hanging matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorView {
    producer_id: i64,
    state: String,
    partitions: Vec<(String, i32)>,
}

/// Whether `open` has been open long enough to be suspect: its producer last wrote more than
/// `max_transaction_timeout_ms` ago (so its coordinator would have aborted a live one). One
/// whose last write time is unknown (-1) is a candidate too, as in Kafka's tool: the
/// coordinator check decides.
fn is_candidate(open: &OpenTransaction, max_transaction_timeout_ms: i64) -> bool {
    open.duration_ms < 0 || open.duration_ms > max_transaction_timeout_ms
}

/// Whether `open` is hanging, given what the coordinator says of the transactional id its
/// producer id maps to (`None`: no coordinator knows the producer id).
fn is_hanging(open: &OpenTransaction, coordinator: Option<&CoordinatorView>) -> bool {
    let Some(view) = coordinator else {
        return true;
    };
    let in_progress = matches!(
        view.state.as_str(),
        "Ongoing" | "PrepareCommit" | "PrepareAbort" | "PrepareEpochFence"
    );
    view.producer_id != open.producer_id
        || !in_progress
        || !view
            .partitions
            .iter()
            .any(|(topic, partition)| *topic == open.topic && *partition == open.partition)
}

/// The partitions to look at, grouped by the broker asked: `(broker, topic) -> partitions`.
fn partitions_to_ask(
    cluster: &Cluster,
    args: &FindHangingArgs,
) -> anyhow::Result<BTreeMap<(i32, String), Vec<i32>>> {
    let mut asks: BTreeMap<(i32, String), Vec<i32>> = BTreeMap::new();
    if let Some(broker) = args.scope.broker_id {
        if !cluster.broker_ids().contains(&broker) {
            bail!("broker {broker} is not in the cluster (see `strom cluster info`)");
        }
        for topic in &cluster.metadata.topics {
            let Some(name) = topic.name.as_ref() else {
                continue;
            };
            if topic.is_internal || topic.error_code != 0 {
                continue;
            }
            for p in &topic.partitions {
                if p.replica_nodes.iter().any(|r| r.0 == broker) {
                    asks.entry((broker, name.0.to_string()))
                        .or_default()
                        .push(p.partition_index);
                }
            }
        }
        return Ok(asks);
    }
    let topic = args
        .scope
        .topic
        .as_deref()
        .expect("clap requires --broker-id or --topic");
    let metadata = cluster.topic(topic)?;
    let mut partitions: Vec<i32> = metadata
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    if let Some(partition) = args.partition {
        if !partitions.contains(&partition) {
            bail!("partition {topic}-{partition} does not exist");
        }
        partitions = vec![partition];
    }
    for partition in partitions {
        let leader = cluster.leader(topic, partition)?;
        asks.entry((leader, topic.to_owned()))
            .or_default()
            .push(partition);
    }
    Ok(asks)
}

/// Runs `txn find-hanging`.
pub async fn run(options: &ClientOptions, args: FindHangingArgs) -> anyhow::Result<()> {
    let topics = args.scope.topic.clone().map(|t| vec![t]);
    let mut cluster = Cluster::connect(options, topics.as_deref()).await?;
    let asks = partitions_to_ask(&cluster, &args)?;
    let now = now_ms();
    let mut candidates = Vec::new();
    for ((broker, topic), partitions) in asks {
        for (partition, answer) in cluster
            .describe_producers(broker, &topic, &partitions)
            .await?
        {
            let producers = match answer {
                Ok(producers) => producers,
                Err(code) => bail!(
                    "DescribeProducers for {topic}-{partition} on broker {broker} failed: {}",
                    error_name(code)
                ),
            };
            for producer in producers.iter().map(super::producer_row) {
                if let Some(open) = open_transaction(&topic, partition, &producer, now) {
                    if is_candidate(&open, args.max_transaction_timeout_ms) {
                        candidates.push(open);
                    }
                }
            }
        }
    }
    let mut hanging = Vec::new();
    if !candidates.is_empty() {
        let filter = ListFilter {
            producer_ids: candidates.iter().map(|c| c.producer_id).collect(),
            ..ListFilter::default()
        };
        let mut transactional_ids: BTreeMap<i64, String> = BTreeMap::new();
        for broker in cluster.broker_ids() {
            for state in cluster.list_transactions(broker, &filter).await? {
                transactional_ids.insert(state.producer_id.0, state.transactional_id.0.to_string());
            }
        }
        let mut views: BTreeMap<String, Option<CoordinatorView>> = BTreeMap::new();
        for open in candidates {
            let view = match transactional_ids.get(&open.producer_id) {
                None => None,
                Some(id) => {
                    if !views.contains_key(id) {
                        let view = coordinator_view(&mut cluster, id).await?;
                        views.insert(id.clone(), view);
                    }
                    views[id].clone()
                }
            };
            if is_hanging(&open, view.as_ref()) {
                hanging.push(open);
            }
        }
    }
    cluster.close();
    if options.json {
        return print_json(&hanging);
    }
    let mut table = Table::new(&[
        "Topic",
        "Partition",
        "ProducerId",
        "ProducerEpoch",
        "CoordinatorEpoch",
        "StartOffset",
        "LastTimestamp",
        "DurationMs",
    ]);
    for open in &hanging {
        table.row(vec![
            open.topic.clone(),
            open.partition.to_string(),
            open.producer_id.to_string(),
            open.producer_epoch.to_string(),
            open.coordinator_epoch.to_string(),
            open.start_offset.to_string(),
            open.last_timestamp.to_string(),
            open.duration_ms.to_string(),
        ]);
    }
    Ok(table.print()?)
}

/// The open transaction of `producer` on the partition, if it has one.
fn open_transaction(
    topic: &str,
    partition: i32,
    producer: &ProducerRow,
    now: i64,
) -> Option<OpenTransaction> {
    let start_offset = producer.current_transaction_start_offset?;
    Some(OpenTransaction {
        topic: topic.to_owned(),
        partition,
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch,
        coordinator_epoch: producer.latest_coordinator_epoch,
        start_offset,
        last_timestamp: producer.last_timestamp,
        duration_ms: if producer.last_timestamp >= 0 {
            (now - producer.last_timestamp).max(0)
        } else {
            -1
        },
    })
}

/// FindCoordinator + DescribeTransactions for `transactional_id`: `None` when its coordinator
/// no longer knows it.
async fn coordinator_view(
    cluster: &mut Cluster,
    transactional_id: &str,
) -> anyhow::Result<Option<CoordinatorView>> {
    let coordinator = cluster.transaction_coordinator(transactional_id).await?;
    let state = cluster
        .describe_transaction(coordinator, transactional_id)
        .await?;
    if state.error_code == kafka_protocol::error::ResponseError::TransactionalIdNotFound.code() {
        return Ok(None);
    }
    if state.error_code != 0 {
        bail!(
            "broker {coordinator} could not describe transactional id {transactional_id:?}: {}",
            error_name(state.error_code)
        );
    }
    Ok(Some(CoordinatorView {
        producer_id: state.producer_id.0,
        state: state.transaction_state.to_string(),
        partitions: state
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.0.to_string(), p)))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(duration_ms: i64) -> OpenTransaction {
        OpenTransaction {
            topic: "t".into(),
            partition: 1,
            producer_id: 7,
            producer_epoch: 0,
            coordinator_epoch: 0,
            start_offset: 10,
            last_timestamp: 1_000,
            duration_ms,
        }
    }

    fn view(producer_id: i64, state: &str, partitions: &[(&str, i32)]) -> CoordinatorView {
        CoordinatorView {
            producer_id,
            state: state.into(),
            partitions: partitions
                .iter()
                .map(|(t, p)| ((*t).to_owned(), *p))
                .collect(),
        }
    }

    #[test]
    fn candidates_are_older_than_the_max_timeout() {
        assert!(!is_candidate(&open(900_000), 900_000));
        assert!(is_candidate(&open(900_001), 900_000));
        assert!(is_candidate(&open(1), 0));
        assert!(!is_candidate(&open(0), 0));
        assert!(
            is_candidate(&open(-1), 900_000),
            "no timestamp: the coordinator decides"
        );
    }

    #[test]
    fn only_an_ongoing_transaction_with_the_partition_is_not_hanging() {
        let candidate = open(1);
        assert!(is_hanging(&candidate, None), "unknown to every coordinator");
        assert!(!is_hanging(
            &candidate,
            Some(&view(7, "Ongoing", &[("t", 1)]))
        ));
        assert!(!is_hanging(
            &candidate,
            Some(&view(7, "PrepareCommit", &[("t", 1)]))
        ));
        assert!(is_hanging(
            &candidate,
            Some(&view(8, "Ongoing", &[("t", 1)]))
        ));
        assert!(is_hanging(
            &candidate,
            Some(&view(7, "CompleteAbort", &[("t", 1)]))
        ));
        assert!(is_hanging(
            &candidate,
            Some(&view(7, "Ongoing", &[("t", 2)]))
        ));
    }
}
