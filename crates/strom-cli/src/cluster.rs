//! `strom cluster info`: the cluster id, controller, brokers and topic count, from one metadata
//! request.

use clap::Subcommand;
use rdkafka::consumer::Consumer;
use serde::Serialize;

use strom_meta::topic::is_internal_topic;

use crate::client::ClientOptions;
use crate::output::{print_json, Table};

/// The `cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, controller, brokers and topic count.
    Info,
}

/// One broker of `cluster info`.
#[derive(Debug, Serialize)]
struct BrokerRow {
    id: i32,
    host: String,
    port: i32,
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
}

/// Runs one `cluster` subcommand.
pub fn run(options: &ClientOptions, command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Info => info(options),
    }
}

fn info(options: &ClientOptions) -> anyhow::Result<()> {
    let consumer = options.metadata_consumer()?;
    let metadata = options.fetch_metadata(&consumer, None)?;
    let cluster_id = consumer.client().fetch_cluster_id(options.timeout());
    let controller_id = crate::native::controller_id(consumer.client(), options.timeout());
    let mut brokers: Vec<BrokerRow> = metadata
        .brokers()
        .iter()
        .map(|broker| BrokerRow {
            id: broker.id(),
            host: broker.host().to_owned(),
            port: broker.port(),
        })
        .collect();
    brokers.sort_by_key(|broker| broker.id);
    let internal_topics = metadata
        .topics()
        .iter()
        .filter(|topic| is_internal_topic(topic.name()))
        .count();
    let info = ClusterInfo {
        cluster_id,
        controller_id,
        brokers,
        topics: metadata.topics().len() - internal_topics,
        internal_topics,
    };
    if options.json {
        return print_json(&info);
    }
    let unknown = || "unknown".to_owned();
    println!(
        "CLUSTER-ID  {}",
        info.cluster_id.clone().unwrap_or_else(unknown)
    );
    println!(
        "CONTROLLER  {}",
        info.controller_id
            .map(|id| id.to_string())
            .unwrap_or_else(unknown)
    );
    println!(
        "TOPICS      {} (+{} internal)",
        info.topics, info.internal_topics
    );
    println!();
    let mut table = Table::new(&["BROKER", "HOST", "PORT"]);
    for broker in &info.brokers {
        let id = if Some(broker.id) == info.controller_id {
            format!("{}*", broker.id)
        } else {
            broker.id.to_string()
        };
        table.row(vec![id, broker.host.clone(), broker.port.to_string()]);
    }
    table.print()?;
    if info.controller_id.is_some() {
        println!("(* controller)");
    }
    Ok(())
}
