//! `strom topic add-partitions NAME --count N [--replica-assignment 1:2,2:3]`: Kafka's
//! `kafka-topics.sh --alter --partitions N [--replica-assignment …]`. Sends CreatePartitions
//! (v1) to the first bootstrap broker that answers (a Strom cluster accepts it on any broker)
//! and shows the broker's own error message when it refuses (rdkafka's admin client keeps only
//! the code).
//!
//! `--replica-assignment` lists partitions separated by commas and their replicas by colons,
//! the preferred leader first. As with `kafka-topics.sh` it may list every partition (the
//! existing ones are then dropped, since only new partitions can be assigned), or only the new
//! ones.

use anyhow::{bail, Context};
use clap::Args;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::{BrokerId, CreatePartitionsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_broker::interbroker::peer::PeerConnection;

use crate::client::ClientOptions;
use crate::output::print_json;

/// Arguments of `topic add-partitions`.
#[derive(Debug, Args)]
pub struct AddPartitionsArgs {
    /// The topic.
    pub name: String,
    /// The partition count wanted (more than the topic has).
    #[arg(long)]
    pub count: i32,
    /// Replicas of the new partitions (or of every partition), e.g. `1:2:3,2:3:1`.
    #[arg(long, value_name = "B:B,B:B")]
    pub replica_assignment: Option<String>,
    /// Ask the broker to validate the request without adding partitions.
    #[arg(long)]
    pub validate_only: bool,
}

/// Parses `1:2:3,2:3:1` into replica lists.
fn parse_assignment(text: &str) -> anyhow::Result<Vec<Vec<i32>>> {
    text.split(',')
        .map(|partition| {
            partition
                .split(':')
                .map(|id| {
                    id.trim().parse::<i32>().with_context(|| {
                        format!("--replica-assignment: {id:?} in {partition:?} is not a broker id")
                    })
                })
                .collect()
        })
        .collect()
}

/// Adds the partitions.
pub async fn add_partitions(
    options: &ClientOptions,
    args: AddPartitionsArgs,
) -> anyhow::Result<()> {
    let metadata = options
        .raw_metadata_async(Some(std::slice::from_ref(&args.name)))
        .await?;
    let existing = metadata
        .topics
        .iter()
        .find(|t| t.error_code == 0 && t.name.as_ref().is_some_and(|n| n.0.as_str() == args.name))
        .map(|t| t.partitions.len())
        .with_context(|| {
            format!(
                "topic {:?} does not exist (use `strom topic list`)",
                args.name
            )
        })?;
    let assignment = match &args.replica_assignment {
        None => None,
        Some(text) => {
            let mut lists = parse_assignment(text)?;
            if lists.len() == usize::try_from(args.count).unwrap_or(0) && lists.len() > existing {
                lists.drain(..existing);
            }
            Some(lists)
        }
    };
    let mut topic = CreatePartitionsTopic::default();
    topic.name = TopicName(StrBytes::from_string(args.name.clone()));
    topic.count = args.count;
    topic.assignments = assignment.map(|lists| {
        lists
            .into_iter()
            .map(|ids| {
                let mut entry = CreatePartitionsAssignment::default();
                entry.broker_ids = ids.into_iter().map(BrokerId).collect();
                entry
            })
            .collect()
    });
    let mut request = CreatePartitionsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = i32::try_from(options.timeout_ms).unwrap_or(i32::MAX);
    request.validate_only = args.validate_only;
    let timeout = options.timeout();
    let mut failures = Vec::new();
    let mut answer = None;
    for server in options
        .brokers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let attempt = async {
            let peer = PeerConnection::connect(server, "strom-cli", timeout).await?;
            let answer = peer
                .call(&request, 1, timeout + std::time::Duration::from_secs(5))
                .await;
            peer.close();
            answer
        }
        .await;
        match attempt {
            Ok(response) => {
                answer = Some(response);
                break;
            }
            Err(error) => failures.push(format!("{server}: {error}")),
        }
    }
    let Some(response) = answer else {
        bail!(
            "no broker answered CreatePartitions: {}",
            failures.join("; ")
        );
    };
    let result = response
        .results
        .first()
        .context("the broker answered CreatePartitions without a result")?;
    if result.error_code != 0 {
        bail!(
            "could not add partitions to {:?}: {}{}",
            args.name,
            crate::txn::wire::error_name(result.error_code),
            result
                .error_message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
    }
    if options.json {
        print_json(&serde_json::json!({
            "topic": args.name,
            "partitions_before": existing,
            "partitions": args.count,
            "validate_only": args.validate_only,
        }))?;
    } else if args.validate_only {
        println!(
            "topic {:?} can grow from {existing} to {} partitions",
            args.name, args.count
        );
    } else {
        println!(
            "topic {:?} grew from {existing} to {} partitions",
            args.name, args.count
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_parse_and_bad_ids_are_named() {
        assert_eq!(
            parse_assignment("1:2:3,3:1:2").unwrap(),
            vec![vec![1, 2, 3], vec![3, 1, 2]]
        );
        assert_eq!(parse_assignment("4").unwrap(), vec![vec![4]]);
        let error = parse_assignment("1:x").unwrap_err().to_string();
        assert!(error.contains("\"x\""), "{error}");
    }
}
