//! `strom log-dirs describe`: Kafka's `kafka-log-dirs.sh --describe`. Asks every broker (or
//! those `--broker` names) with DescribeLogDirs for its log dirs and the replicas in them
//! (each replica's log size, offset lag, whether it is a future replica), optionally only
//! `--topic`'s partitions, and prints a table or, with `--json`, Kafka's tool's JSON
//! (`{"version":1,"brokers":[{"broker":..,"logDirs":[{"logDir":..,"error":..,"partitions":
//! [{"partition":"t-0","size":..,"offsetLag":..,"isFuture":..}]}]}]}`) with each dir's
//! `totalBytes`/`usableBytes` (DescribeLogDirs v4) added.
//!
//! [`replica_sizes`] is the same request for the reassignment tool's copy progress
//! (`reassign_progress.rs`). Owns no decision: the brokers report, this prints.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;
use strom_broker::interbroker::peer::PeerConnection;
use strom_meta::replication::{BrokerId, TopicPartition};

use crate::client::ClientOptions;
use crate::output::{print_json, Table};
use crate::txn::wire::error_name;

/// The DescribeLogDirs version asked for: v4 has the volume sizes (Kafka 3.3+, every Strom).
const VERSION: i16 = 4;

/// The `log-dirs` subcommands.
#[derive(Debug, Subcommand)]
pub enum LogDirsCommand {
    /// Each broker's log dirs and the size of every replica in them.
    Describe(DescribeArgs),
}

/// `log-dirs describe` arguments.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Only these brokers (repeatable or comma-separated; default: every live broker).
    /// (Not named `brokers`: the global `--brokers` owns that id.)
    #[arg(long = "broker", value_delimiter = ',', value_name = "N")]
    broker_ids: Vec<BrokerId>,
    /// Only these topics' partitions (repeatable or comma-separated; default: every replica).
    #[arg(long = "topic", value_delimiter = ',', value_name = "T")]
    topics: Vec<String>,
}

/// One broker's answer, in Kafka's tool's JSON shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BrokerDirs {
    broker: BrokerId,
    log_dirs: Vec<DirReport>,
}

/// One log dir.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DirReport {
    log_dir: String,
    /// The error's name (`KAFKA_STORAGE_ERROR`), or null.
    error: Option<String>,
    /// The volume's bytes, -1 when unknown.
    total_bytes: i64,
    usable_bytes: i64,
    partitions: Vec<ReplicaReport>,
}

/// One replica in a log dir.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplicaReport {
    /// `topic-partition`, as Kafka's tool writes it.
    partition: String,
    size: i64,
    offset_lag: i64,
    is_future: bool,
}

/// Runs a `log-dirs` command.
pub async fn run(options: &ClientOptions, command: LogDirsCommand) -> anyhow::Result<()> {
    let LogDirsCommand::Describe(args) = command;
    let metadata = options
        .raw_metadata_async((!args.topics.is_empty()).then_some(&args.topics[..]))
        .await?;
    let addresses: BTreeMap<BrokerId, String> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    let brokers: Vec<BrokerId> = if args.broker_ids.is_empty() {
        addresses.keys().copied().collect()
    } else {
        args.broker_ids.clone()
    };
    // Kafka's tool asks for every partition of the named topics.
    let wanted: Option<BTreeMap<String, Vec<i32>>> = if args.topics.is_empty() {
        None
    } else {
        let mut wanted = BTreeMap::new();
        for topic in &metadata.topics {
            let name = topic
                .name
                .as_ref()
                .map(|n| n.0.to_string())
                .unwrap_or_default();
            if topic.error_code != 0 {
                bail!("topic {name:?}: {}", error_name(topic.error_code));
            }
            let partitions = topic.partitions.iter().map(|p| p.partition_index).collect();
            wanted.insert(name, partitions);
        }
        Some(wanted)
    };
    let mut reports = Vec::new();
    for broker in brokers {
        let address = addresses
            .get(&broker)
            .ok_or_else(|| anyhow!("broker {broker} is not a live broker of the cluster"))?;
        let response = describe_broker(options, broker, address, wanted.as_ref()).await?;
        reports.push(BrokerDirs {
            broker,
            log_dirs: response.results.iter().map(dir_report).collect(),
        });
    }
    if options.json {
        return print_json(&serde_json::json!({"version": 1, "brokers": reports}));
    }
    let mut table = Table::new(&[
        "BROKER",
        "LOG_DIR",
        "TOPIC-PARTITION",
        "SIZE",
        "OFFSET_LAG",
        "FUTURE",
    ]);
    for report in &reports {
        for dir in &report.log_dirs {
            if let Some(error) = &dir.error {
                eprintln!("broker {} log dir {}: {error}", report.broker, dir.log_dir);
            }
            if dir.partitions.is_empty() {
                let cells = [report.broker.to_string(), dir.log_dir.clone()];
                table.row(
                    [
                        &cells[..],
                        &["-".into(), "-".into(), "-".into(), "-".into()],
                    ]
                    .concat(),
                );
            }
            for replica in &dir.partitions {
                table.row(vec![
                    report.broker.to_string(),
                    dir.log_dir.clone(),
                    replica.partition.clone(),
                    replica.size.to_string(),
                    replica.offset_lag.to_string(),
                    replica.is_future.to_string(),
                ]);
            }
        }
    }
    table.print()?;
    Ok(())
}

fn dir_report(
    result: &kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult,
) -> DirReport {
    let mut partitions = Vec::new();
    for topic in &result.topics {
        for p in &topic.partitions {
            partitions.push(ReplicaReport {
                partition: format!("{}-{}", topic.name.0.as_str(), p.partition_index),
                size: p.partition_size,
                offset_lag: p.offset_lag,
                is_future: p.is_future_key,
            });
        }
    }
    DirReport {
        log_dir: result.log_dir.to_string(),
        error: (result.error_code != 0).then(|| error_name(result.error_code)),
        total_bytes: result.total_bytes,
        usable_bytes: result.usable_bytes,
        partitions,
    }
}

/// Sends DescribeLogDirs to `broker` at `address`: every replica it holds (`wanted: None`) or
/// only the listed partitions.
async fn describe_broker(
    options: &ClientOptions,
    broker: BrokerId,
    address: &str,
    wanted: Option<&BTreeMap<String, Vec<i32>>>,
) -> anyhow::Result<DescribeLogDirsResponse> {
    let mut request = DescribeLogDirsRequest::default();
    request.topics = wanted.map(|wanted| {
        wanted
            .iter()
            .map(|(topic, partitions)| {
                let mut t = DescribableLogDirTopic::default();
                t.topic = TopicName(StrBytes::from_string(topic.clone()));
                t.partitions = partitions.clone();
                t
            })
            .collect()
    });
    let timeout = options.timeout();
    let peer = PeerConnection::connect(address, "strom-cli", timeout)
        .await
        .with_context(|| format!("could not connect to broker {broker} at {address}"))?;
    let answer = peer
        .call(&request, VERSION, timeout)
        .await
        .with_context(|| format!("broker {broker} ({address}) did not answer DescribeLogDirs"));
    peer.close();
    let response = answer?;
    if response.error_code != 0 {
        bail!(
            "broker {broker} refused DescribeLogDirs: {}",
            error_name(response.error_code)
        );
    }
    Ok(response)
}

/// The size in bytes of the current (not future) replica of each of `partitions` on each
/// broker asked, from DescribeLogDirs, one request per broker. A replica the broker does not
/// hold (not created yet, or gone) is absent; a broker that cannot be reached or answers an
/// error is absent altogether, with the reason in the second map.
pub(crate) async fn replica_sizes(
    options: &ClientOptions,
    addresses: &BTreeMap<BrokerId, String>,
    partitions: &BTreeMap<BrokerId, BTreeSet<TopicPartition>>,
) -> (
    BTreeMap<(BrokerId, TopicPartition), i64>,
    BTreeMap<BrokerId, String>,
) {
    let mut sizes = BTreeMap::new();
    let mut failures = BTreeMap::new();
    for (&broker, wanted) in partitions {
        let Some(address) = addresses.get(&broker) else {
            failures.insert(broker, "not a live broker".to_string());
            continue;
        };
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for tp in wanted {
            by_topic
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.partition);
        }
        match describe_broker(options, broker, address, Some(&by_topic)).await {
            Ok(response) => {
                for dir in response.results.iter().filter(|d| d.error_code == 0) {
                    for topic in &dir.topics {
                        for p in topic.partitions.iter().filter(|p| !p.is_future_key) {
                            let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
                            sizes.insert((broker, tp), p.partition_size);
                        }
                    }
                }
            }
            Err(error) => {
                failures.insert(broker, format!("{error:#}"));
            }
        }
    }
    (sizes, failures)
}
