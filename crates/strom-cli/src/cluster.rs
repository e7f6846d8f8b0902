//! `strom cluster info`: the cluster id, controller, brokers (with rack and the partitions they
//! lead and hold), topic count, and the under-replicated and offline partitions, from one
//! Metadata request.

use clap::Subcommand;
use kafka_protocol::messages::MetadataResponse;
use serde::Serialize;

use strom_meta::topic::is_internal_topic;

use crate::client::ClientOptions;
use crate::output::{print_json, Table};

/// The `cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, controller, brokers, topic count, and unhealthy partitions.
    Info,
}

/// One broker of `cluster info`.
#[derive(Debug, Serialize)]
struct BrokerRow {
    id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    /// Partitions this broker leads.
    leaders: usize,
    /// Partition replicas this broker holds.
    replicas: usize,
}

/// A partition that is not fully healthy.
#[derive(Debug, Serialize)]
struct PartitionProblem {
    topic: String,
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

/// The whole answer of `cluster info --json`.
#[derive(Debug, Serialize)]
struct ClusterInfo {
    cluster_id: Option<String>,
    controller_id: Option<i32>,
    brokers: Vec<BrokerRow>,
    /// Topics other than internal ones (names starting with `__`).
    topics: usize,
    internal_topics: usize,
    partitions: usize,
    /// How many partitions are under-replicated (`under_replicated.len()`).
    under_replicated_count: usize,
    /// How many partitions are offline (`offline.len()`).
    offline_count: usize,
    /// Partitions whose ISR is smaller than their replica list.
    under_replicated: Vec<PartitionProblem>,
    /// Partitions with no leader.
    offline: Vec<PartitionProblem>,
}

/// Runs one `cluster` subcommand.
pub fn run(options: &ClientOptions, command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Info => info(options),
    }
}

/// Builds the summary from one Metadata answer (pure, so tests can feed it answers).
fn summarize(metadata: &MetadataResponse) -> ClusterInfo {
    let mut brokers: Vec<BrokerRow> = metadata
        .brokers
        .iter()
        .map(|broker| BrokerRow {
            id: broker.node_id.0,
            host: broker.host.to_string(),
            port: broker.port,
            rack: broker.rack.as_ref().map(|rack| rack.to_string()),
            leaders: 0,
            replicas: 0,
        })
        .collect();
    brokers.sort_by_key(|broker| broker.id);
    let mut info = ClusterInfo {
        cluster_id: metadata.cluster_id.as_ref().map(|id| id.to_string()),
        controller_id: Some(metadata.controller_id.0).filter(|id| *id >= 0),
        brokers: Vec::new(),
        topics: 0,
        internal_topics: 0,
        partitions: 0,
        under_replicated_count: 0,
        offline_count: 0,
        under_replicated: Vec::new(),
        offline: Vec::new(),
    };
    for topic in &metadata.topics {
        let name = topic
            .name
            .as_ref()
            .map(|n| n.to_string())
            .unwrap_or_default();
        if is_internal_topic(&name) {
            info.internal_topics += 1;
        } else {
            info.topics += 1;
        }
        for partition in &topic.partitions {
            info.partitions += 1;
            let leader = partition.leader_id.0;
            let replicas: Vec<i32> = partition.replica_nodes.iter().map(|id| id.0).collect();
            let isr: Vec<i32> = partition.isr_nodes.iter().map(|id| id.0).collect();
            for broker in brokers.iter_mut() {
                broker.leaders += usize::from(broker.id == leader);
                broker.replicas += usize::from(replicas.contains(&broker.id));
            }
            let problem = || PartitionProblem {
                topic: name.clone(),
                partition: partition.partition_index,
                leader,
                replicas: replicas.clone(),
                isr: isr.clone(),
            };
            if leader < 0 {
                info.offline.push(problem());
            } else if isr.len() < replicas.len() {
                info.under_replicated.push(problem());
            }
        }
    }
    info.brokers = brokers;
    info.under_replicated_count = info.under_replicated.len();
    info.offline_count = info.offline.len();
    info
}

fn info(options: &ClientOptions) -> anyhow::Result<()> {
    let metadata = options.raw_metadata(None)?;
    let info = summarize(&metadata);
    if options.json {
        return print_json(&info);
    }
    let unknown = || "unknown".to_owned();
    println!(
        "CLUSTER-ID        {}",
        info.cluster_id.clone().unwrap_or_else(unknown)
    );
    println!(
        "CONTROLLER        {}",
        info.controller_id
            .map(|id| id.to_string())
            .unwrap_or_else(unknown)
    );
    println!(
        "TOPICS            {} (+{} internal), {} partitions",
        info.topics, info.internal_topics, info.partitions
    );
    println!("UNDER-REPLICATED  {}", info.under_replicated.len());
    println!("OFFLINE           {}", info.offline.len());
    println!();
    let mut table = Table::new(&["BROKER", "HOST", "PORT", "RACK", "LEADERS", "REPLICAS"]);
    for broker in &info.brokers {
        let id = if Some(broker.id) == info.controller_id {
            format!("{}*", broker.id)
        } else {
            broker.id.to_string()
        };
        table.row(vec![
            id,
            broker.host.clone(),
            broker.port.to_string(),
            broker.rack.clone().unwrap_or_else(|| "-".to_owned()),
            broker.leaders.to_string(),
            broker.replicas.to_string(),
        ]);
    }
    table.print()?;
    if info.controller_id.is_some() {
        println!("(* controller)");
    }
    for (title, problems) in [
        ("OFFLINE PARTITIONS (no leader)", &info.offline),
        (
            "UNDER-REPLICATED PARTITIONS (ISR smaller than replicas)",
            &info.under_replicated,
        ),
    ] {
        if problems.is_empty() {
            continue;
        }
        println!();
        println!("{title}");
        let mut table = Table::new(&["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"]);
        for problem in problems {
            table.row(vec![
                problem.topic.clone(),
                problem.partition.to_string(),
                problem.leader.to_string(),
                join(&problem.replicas),
                join(&problem.isr),
            ]);
        }
        table.print()?;
    }
    Ok(())
}

fn join(ids: &[i32]) -> String {
    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
    ids.join(",")
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn partition(
        index: i32,
        leader: i32,
        replicas: &[i32],
        isr: &[i32],
    ) -> MetadataResponsePartition {
        let mut p = MetadataResponsePartition::default();
        p.partition_index = index;
        p.leader_id = BrokerId(leader);
        p.replica_nodes = replicas.iter().map(|id| BrokerId(*id)).collect();
        p.isr_nodes = isr.iter().map(|id| BrokerId(*id)).collect();
        p
    }

    #[test]
    fn counts_leaders_replicas_and_unhealthy_partitions() {
        let mut metadata = MetadataResponse::default();
        metadata.controller_id = BrokerId(2);
        for (id, rack) in [(2, "b"), (1, "a"), (3, "c")] {
            let mut broker = MetadataResponseBroker::default();
            broker.node_id = BrokerId(id);
            broker.host = StrBytes::from_static_str("127.0.0.1");
            broker.port = 9000 + id;
            broker.rack = Some(StrBytes::from_static_str(rack));
            metadata.brokers.push(broker);
        }
        let mut topic = MetadataResponseTopic::default();
        topic.name = Some(TopicName(StrBytes::from_static_str("orders")));
        topic.partitions = vec![
            partition(0, 1, &[1, 2, 3], &[1, 2, 3]),
            partition(1, 2, &[2, 3, 1], &[2, 3]),
            partition(2, -1, &[3, 1, 2], &[3]),
        ];
        metadata.topics.push(topic);
        let mut internal = MetadataResponseTopic::default();
        internal.name = Some(TopicName(StrBytes::from_static_str("__consumer_offsets")));
        internal.partitions = vec![partition(0, 3, &[3], &[3])];
        metadata.topics.push(internal);

        let info = summarize(&metadata);
        assert_eq!(info.controller_id, Some(2));
        assert_eq!(
            (info.topics, info.internal_topics, info.partitions),
            (1, 1, 4)
        );
        let ids: Vec<i32> = info.brokers.iter().map(|b| b.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        let leaders: Vec<usize> = info.brokers.iter().map(|b| b.leaders).collect();
        assert_eq!(leaders, [1, 1, 1]);
        let replicas: Vec<usize> = info.brokers.iter().map(|b| b.replicas).collect();
        assert_eq!(replicas, [3, 3, 4]);
        assert_eq!(info.brokers[0].rack.as_deref(), Some("a"));
        assert_eq!(info.under_replicated.len(), 1);
        assert_eq!(info.under_replicated[0].partition, 1);
        assert_eq!(info.offline.len(), 1);
        assert_eq!(info.offline[0].partition, 2);
        assert_eq!((info.under_replicated_count, info.offline_count), (1, 1));
    }
}
