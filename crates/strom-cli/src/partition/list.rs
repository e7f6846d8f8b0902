//! `strom partition list`: every partition of the cluster (or of `--topic`) in
//! `kafka-topics.sh --describe` columns — leader, replicas, ISR, offline replicas, and the
//! replicas a reassignment is adding or removing — filtered with `--under-replicated`,
//! `--offline` or `--reassigning`, as a table or `--json`.
//!
//! Leaders, replicas, ISR and offline replicas come from one Metadata request (v12). Adding and
//! removing replicas come from ListPartitionReassignments sent to the controller; a cluster
//! that does not answer it (an older broker, a single node that does not serve it) shows them
//! empty and says so (`reassignments_known: false` and a note), so `--reassigning` then lists
//! nothing rather than guessing.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Args;
use kafka_protocol::messages::{ListPartitionReassignmentsRequest, MetadataResponse};
use serde::Serialize;
use strom_broker::interbroker::peer::PeerConnection;

use crate::client::ClientOptions;
use crate::output::{print_json, Table};

/// `partition list` arguments.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("only").multiple(false))]
pub struct ListArgs {
    /// Only this topic's partitions.
    #[arg(long)]
    topic: Option<String>,
    /// Only partitions with a leader whose ISR is smaller than their replica list.
    #[arg(long, group = "only")]
    under_replicated: bool,
    /// Only partitions without a leader.
    #[arg(long, group = "only")]
    offline: bool,
    /// Only partitions a reassignment is moving (adding or removing replicas).
    #[arg(long, group = "only")]
    reassigning: bool,
}

/// One partition as listed.
#[derive(Debug, Serialize, PartialEq)]
pub struct PartitionRow {
    topic: String,
    partition: i32,
    /// The leader's broker id, -1 without a leader.
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// Replicas on brokers that are down or whose log is offline.
    offline_replicas: Vec<i32>,
    /// Replicas a reassignment is adding (empty when none or unknown).
    adding_replicas: Vec<i32>,
    /// Replicas a reassignment is removing (empty when none or unknown).
    removing_replicas: Vec<i32>,
    /// `ok`, `under-replicated` or `offline`.
    status: &'static str,
}

/// The whole answer of `partition list --json`.
#[derive(Debug, Serialize)]
struct PartitionList {
    partitions: Vec<PartitionRow>,
    /// Whether the controller answered ListPartitionReassignments.
    reassignments_known: bool,
    /// Why the adding/removing columns are empty when they are unknown.
    reassignments_note: Option<String>,
}

/// A reassignment in progress: (adding, removing) replicas by topic and partition.
type Reassignments = BTreeMap<(String, i32), (Vec<i32>, Vec<i32>)>;

/// Lists the partitions.
pub async fn list(options: &ClientOptions, args: ListArgs) -> anyhow::Result<()> {
    let topics = args.topic.as_ref().map(|t| vec![t.clone()]);
    let metadata = options.raw_metadata_async(topics.as_deref()).await?;
    if let Some(topic) = &args.topic {
        let found = metadata
            .topics
            .iter()
            .any(|t| t.error_code == 0 && t.name.as_ref().is_some_and(|n| n.0.as_str() == topic));
        if !found {
            anyhow::bail!("topic {topic:?} does not exist (use `strom topic list`)");
        }
    }
    let (reassignments, note) = match reassignments(options, &metadata).await {
        Ok(found) => (Some(found), None),
        Err(error) => (None, Some(format!("reassignments unknown: {error:#}"))),
    };
    let mut rows = rows(&metadata, reassignments.as_ref());
    rows.retain(|row| {
        if args.under_replicated {
            row.status == "under-replicated"
        } else if args.offline {
            row.status == "offline"
        } else if args.reassigning {
            !row.adding_replicas.is_empty() || !row.removing_replicas.is_empty()
        } else {
            true
        }
    });
    let answer = PartitionList {
        partitions: rows,
        reassignments_known: reassignments.is_some(),
        reassignments_note: note,
    };
    if options.json {
        return print_json(&answer);
    }
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "OFFLINE",
        "ADDING",
        "REMOVING",
        "STATUS",
    ]);
    for row in &answer.partitions {
        table.row(vec![
            row.topic.clone(),
            row.partition.to_string(),
            if row.leader < 0 {
                "none".to_owned()
            } else {
                row.leader.to_string()
            },
            join(&row.replicas),
            join(&row.isr),
            join(&row.offline_replicas),
            join(&row.adding_replicas),
            join(&row.removing_replicas),
            row.status.to_owned(),
        ]);
    }
    table.print()?;
    if let Some(note) = &answer.reassignments_note {
        println!("({note}; ADDING and REMOVING are shown empty)");
    }
    Ok(())
}

/// The rows of a Metadata answer, sorted by topic and partition (pure, so tests can feed it
/// answers).
pub fn rows(
    metadata: &MetadataResponse,
    reassignments: Option<&Reassignments>,
) -> Vec<PartitionRow> {
    let mut rows = Vec::new();
    for topic in metadata.topics.iter().filter(|t| t.error_code == 0) {
        let name = topic
            .name
            .as_ref()
            .map(|n| n.to_string())
            .unwrap_or_default();
        for p in &topic.partitions {
            let ids = |list: &[kafka_protocol::messages::BrokerId]| -> Vec<i32> {
                list.iter().map(|id| id.0).collect()
            };
            let replicas = ids(&p.replica_nodes);
            let isr = ids(&p.isr_nodes);
            let leader = p.leader_id.0;
            let status = if leader < 0 {
                "offline"
            } else if isr.len() < replicas.len() {
                "under-replicated"
            } else {
                "ok"
            };
            let (adding, removing) = reassignments
                .and_then(|r| r.get(&(name.clone(), p.partition_index)))
                .cloned()
                .unwrap_or_default();
            rows.push(PartitionRow {
                topic: name.clone(),
                partition: p.partition_index,
                leader,
                leader_epoch: p.leader_epoch,
                replicas,
                isr,
                offline_replicas: ids(&p.offline_replicas),
                adding_replicas: adding,
                removing_replicas: removing,
                status,
            });
        }
    }
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    rows
}

/// The reassignments in progress, asked of the controller Metadata names (every one: a null
/// topic list).
async fn reassignments(
    options: &ClientOptions,
    metadata: &MetadataResponse,
) -> anyhow::Result<Reassignments> {
    let controller = metadata.controller_id.0;
    let broker = metadata
        .brokers
        .iter()
        .find(|b| b.node_id.0 == controller)
        .ok_or_else(|| anyhow!("the cluster names no controller"))?;
    let address = format!("{}:{}", broker.host, broker.port);
    let timeout = options.timeout();
    let peer = PeerConnection::connect(&address, "strom-cli", timeout)
        .await
        .with_context(|| format!("could not connect to controller {controller} at {address}"))?;
    let mut request = ListPartitionReassignmentsRequest::default();
    request.timeout_ms = i32::try_from(options.timeout_ms).unwrap_or(i32::MAX);
    request.topics = None;
    let answer = peer
        .call(&request, 0, timeout + Duration::from_secs(5))
        .await
        .map_err(|e| {
            anyhow!("controller {controller} does not answer ListPartitionReassignments ({e})")
        });
    peer.close();
    let answer = answer?;
    if answer.error_code != 0 {
        return Err(anyhow!(
            "controller {controller} refused ListPartitionReassignments: {}",
            crate::txn::wire::error_name(answer.error_code)
        ));
    }
    let mut found = Reassignments::new();
    for topic in answer.topics {
        for p in topic.partitions {
            let ids = |list: &[kafka_protocol::messages::BrokerId]| -> Vec<i32> {
                list.iter().map(|id| id.0).collect()
            };
            found.insert(
                (topic.name.to_string(), p.partition_index),
                (ids(&p.adding_replicas), ids(&p.removing_replicas)),
            );
        }
    }
    Ok(found)
}

fn join(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".to_owned();
    }
    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
    ids.join(",")
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::metadata_response::{
        MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn partition(
        index: i32,
        leader: i32,
        replicas: &[i32],
        isr: &[i32],
        offline: &[i32],
    ) -> MetadataResponsePartition {
        let mut p = MetadataResponsePartition::default();
        p.partition_index = index;
        p.leader_id = BrokerId(leader);
        p.leader_epoch = 4;
        p.replica_nodes = replicas.iter().map(|id| BrokerId(*id)).collect();
        p.isr_nodes = isr.iter().map(|id| BrokerId(*id)).collect();
        p.offline_replicas = offline.iter().map(|id| BrokerId(*id)).collect();
        p
    }

    #[test]
    fn rows_carry_status_offline_replicas_and_reassignments() {
        let mut metadata = MetadataResponse::default();
        let mut topic = MetadataResponseTopic::default();
        topic.name = Some(TopicName(StrBytes::from_static_str("orders")));
        topic.partitions = vec![
            partition(2, -1, &[3, 1], &[3], &[3, 1]),
            partition(0, 1, &[1, 2, 3], &[1, 2, 3], &[]),
            partition(1, 2, &[2, 3, 1], &[2, 1], &[3]),
        ];
        metadata.topics.push(topic);
        let moving = Reassignments::from([(("orders".to_owned(), 0), (vec![4], vec![3]))]);
        let rows = rows(&metadata, Some(&moving));
        let summary: Vec<(i32, &str)> = rows.iter().map(|r| (r.partition, r.status)).collect();
        assert_eq!(
            summary,
            [(0, "ok"), (1, "under-replicated"), (2, "offline")]
        );
        assert_eq!(rows[1].offline_replicas, [3]);
        assert_eq!(rows[0].adding_replicas, [4]);
        assert_eq!(rows[0].removing_replicas, [3]);
        assert!(rows[1].adding_replicas.is_empty());
        let unknown = super::rows(&metadata, None);
        assert!(unknown.iter().all(|r| r.adding_replicas.is_empty()));
    }
}
