//! `strom partition elect-leaders`: Kafka's `kafka-leader-election.sh`. Sends ElectLeaders
//! (preferred, or unclean with `--unclean`) to the controller Metadata names, asking again
//! after NOT_CONTROLLER (the controller moved) within `--timeout-ms`, and shows each
//! partition's result. Exits non-zero when a partition could not be elected (a result other
//! than NONE or ELECTION_NOT_NEEDED). `strom partition list` is [`list`].

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::client::ClientOptions;
use crate::output::{print_json, Table};
use crate::txn::wire::error_name;

mod list;

/// The `partition` subcommands.
#[derive(Debug, Subcommand)]
pub enum PartitionCommand {
    /// Move leadership back to each partition's preferred (first assigned) replica, or with
    /// `--unclean` give leaderless partitions a live replica outside the ISR.
    ElectLeaders(ElectArgs),
    /// Move partitions between brokers (Kafka's kafka-reassign-partitions.sh): `--plan FILE`
    /// with `--execute`/`--verify`/`--cancel`, `--generate`, or `--move-broker N`.
    Reassign(crate::reassign::ReassignArgs),
    /// List partitions with leader, replicas, ISR, offline and reassigning replicas
    /// (`kafka-topics.sh --describe` columns), optionally only the unhealthy or moving ones.
    List(list::ListArgs),
}

/// `partition elect-leaders` arguments.
#[derive(Debug, Args)]
pub struct ElectArgs {
    /// Only this topic's partitions (default: every partition of the cluster).
    #[arg(long)]
    topic: Option<String>,
    /// Only this partition of `--topic`.
    #[arg(long, requires = "topic")]
    partition: Option<i32>,
    /// Unclean election: a partition without a live leader gets its first live replica, even
    /// outside the ISR (records only the old leader had are lost).
    #[arg(long)]
    unclean: bool,
}

/// One partition's result.
#[derive(Debug, Serialize)]
struct ElectionRow {
    topic: String,
    partition: i32,
    error_code: i16,
    /// `NONE`, `ELECTION_NOT_NEEDED`, `PREFERRED_LEADER_NOT_AVAILABLE`, …
    error: String,
    message: Option<String>,
}

/// Runs one `partition` subcommand.
pub async fn run(options: &ClientOptions, command: PartitionCommand) -> anyhow::Result<()> {
    match command {
        PartitionCommand::ElectLeaders(args) => elect_leaders(options, args).await,
        PartitionCommand::Reassign(args) => crate::reassign::run(options, args).await,
        PartitionCommand::List(args) => list::list(options, args).await,
    }
}

async fn elect_leaders(options: &ClientOptions, args: ElectArgs) -> anyhow::Result<()> {
    let mut request = ElectLeadersRequest::default();
    request.election_type = i8::from(args.unclean);
    request.timeout_ms = i32::try_from(options.timeout_ms).unwrap_or(i32::MAX);
    if let Some(topic) = &args.topic {
        let partitions = match args.partition {
            Some(partition) => vec![partition],
            None => {
                let metadata = options
                    .raw_metadata_async(Some(std::slice::from_ref(topic)))
                    .await?;
                let found = metadata
                    .topics
                    .iter()
                    .find(|t| {
                        t.error_code == 0 && t.name.as_ref().is_some_and(|n| n.0.as_str() == topic)
                    })
                    .ok_or_else(|| {
                        anyhow!("topic {topic:?} does not exist (use `strom topic list`)")
                    })?;
                let mut indexes: Vec<i32> =
                    found.partitions.iter().map(|p| p.partition_index).collect();
                indexes.sort_unstable();
                indexes
            }
        };
        let mut entry = TopicPartitions::default();
        entry.topic = TopicName(StrBytes::from_string(topic.clone()));
        entry.partitions = partitions;
        request.topic_partitions = Some(vec![entry]);
    }
    // ElectLeaders v2, sent to the controller Metadata names (retried after NOT_CONTROLLER).
    let response =
        crate::reassign::send_to_controller(options, &request, 2, |r| r.error_code).await?;
    if response.error_code != 0 {
        bail!(
            "the controller refused the election: {}",
            error_name(response.error_code)
        );
    }
    let mut rows: Vec<ElectionRow> = response
        .replica_election_results
        .iter()
        .flat_map(|topic| {
            topic.partition_result.iter().map(|p| ElectionRow {
                topic: topic.topic.0.to_string(),
                partition: p.partition_id,
                error_code: p.error_code,
                error: error_name(p.error_code),
                message: p.error_message.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    if options.json {
        print_json(&rows)?;
    } else {
        let mut table = Table::new(&["TOPIC", "PARTITION", "RESULT"]);
        for row in &rows {
            table.row(vec![
                row.topic.clone(),
                row.partition.to_string(),
                row.error.clone(),
            ]);
        }
        table.print()?;
    }
    let not_needed = ResponseError::ElectionNotNeeded.code();
    let failed = rows
        .iter()
        .filter(|r| r.error_code != 0 && r.error_code != not_needed)
        .count();
    if failed > 0 {
        bail!("{failed} partition(s) could not be elected");
    }
    Ok(())
}
