//! `strom topic ...`: create, list, describe, alter the configuration of, and delete topics,
//! through librdkafka's admin client and metadata requests; add partitions with a raw
//! CreatePartitions (`add_partitions.rs`).
//!
//! `describe` reads the partitions from a raw Metadata request (v12: topic id, leader epochs,
//! offline replicas, which librdkafka's metadata leaves out) so that it also shows a cluster's
//! offline and under-replicated partitions, and asks ListOffsets only for partitions that have
//! a leader (librdkafka would wait for one until its timeout).
//! `alter-config` uses IncrementalAlterConfigs through librdkafka's C API (see [`crate::native`]),
//! because the binding's AlterConfigs replaces every override and ignores the broker's
//! per-topic error.

use std::collections::BTreeMap;

use anyhow::bail;
use clap::{Args, Subcommand};
use rdkafka::admin::{ConfigEntry, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use strom_meta::topic::is_internal_topic;

use crate::client::{parse_key_values, ClientOptions};
use crate::native::ConfigChange;
use crate::output::{join_ids, print_json, Table};

/// The `topic` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topics with their partition and replica counts.
    List(ListArgs),
    /// Show a topic's configuration and partitions.
    Describe(DescribeArgs),
    /// Set or delete a topic's configuration overrides.
    AlterConfig(AlterConfigArgs),
    /// Delete one or more topics.
    Delete(DeleteArgs),
    /// Add partitions to a topic, placed by the cluster or by `--replica-assignment`.
    AddPartitions(add_partitions::AddPartitionsArgs),
}

mod add_partitions;

/// Arguments of `topic create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The topic name.
    pub name: String,
    /// Number of partitions (default: the broker's `num.partitions`).
    #[arg(short = 'p', long)]
    pub partitions: Option<i32>,
    /// Replication factor (default: the broker's `default.replication.factor`).
    #[arg(short = 'r', long)]
    pub replicas: Option<i32>,
    /// A topic configuration override, KEY=VALUE; repeatable.
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
    pub configs: Vec<String>,
    /// Ask the broker to validate the request without creating the topic.
    #[arg(long)]
    pub validate_only: bool,
}

/// Arguments of `topic list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Include internal topics (names starting with `__`).
    #[arg(long)]
    pub internal: bool,
}

/// Arguments of `topic describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The topic name.
    pub name: String,
    /// Show every configuration entry, not only the overridden ones.
    #[arg(long)]
    pub all: bool,
}

/// Arguments of `topic alter-config`.
#[derive(Debug, Args)]
pub struct AlterConfigArgs {
    /// The topic name.
    pub name: String,
    /// Set an override, KEY=VALUE; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Remove an override so the broker default applies again; repeatable.
    #[arg(long = "delete", value_name = "KEY")]
    pub deletes: Vec<String>,
}

/// Arguments of `topic delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The topics to delete.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Runs one `topic` subcommand.
pub async fn run(options: &ClientOptions, command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create(args) => create(options, args).await,
        TopicCommand::List(args) => list(options, args),
        TopicCommand::Describe(args) => describe(options, args).await,
        TopicCommand::AlterConfig(args) => alter_config(options, args).await,
        TopicCommand::Delete(args) => delete(options, args).await,
        TopicCommand::AddPartitions(args) => add_partitions::add_partitions(options, args).await,
    }
}

/// Turns an admin-level error code into a sentence about `topic`.
fn admin_failure(action: &str, topic: &str, code: RDKafkaErrorCode) -> anyhow::Error {
    let hint = match code {
        RDKafkaErrorCode::TopicAlreadyExists => " (use `strom topic describe` to inspect it)",
        RDKafkaErrorCode::UnknownTopicOrPartition => " (use `strom topic list` to see topics)",
        RDKafkaErrorCode::InvalidReplicationFactor => {
            " (it cannot exceed the number of live brokers; see `strom cluster info`)"
        }
        RDKafkaErrorCode::InvalidConfig => " (check the KEY=VALUE overrides)",
        _ => "",
    };
    anyhow::anyhow!("could not {action} topic {topic:?}: {code}{hint}")
}

async fn create(options: &ClientOptions, args: CreateArgs) -> anyhow::Result<()> {
    let configs = parse_key_values(&args.configs, "--config")?;
    let partitions = args.partitions.unwrap_or(-1);
    let replicas = args.replicas.unwrap_or(-1);
    if partitions == 0 || partitions < -1 {
        bail!("--partitions must be at least 1, got {partitions}");
    }
    if replicas == 0 || replicas < -1 {
        bail!("--replicas must be at least 1, got {replicas}");
    }
    let mut new_topic = NewTopic::new(&args.name, partitions, TopicReplication::Fixed(replicas));
    for (key, value) in &configs {
        new_topic = new_topic.set(key, value);
    }
    let admin = options.admin()?;
    let admin_options = options.admin_options().validate_only(args.validate_only);
    let results = admin
        .create_topics([&new_topic], &admin_options)
        .await
        .map_err(|error| options.unreachable(error))?;
    for result in results {
        if let Err((topic, code)) = result {
            return Err(admin_failure("create", &topic, code));
        }
    }
    if options.json {
        print_json(&serde_json::json!({
            "topic": args.name,
            "created": !args.validate_only,
            "validate_only": args.validate_only,
        }))
    } else {
        if args.validate_only {
            println!(
                "topic {:?} is valid (not created: --validate-only)",
                args.name
            );
        } else {
            println!("created topic {:?}", args.name);
        }
        Ok(())
    }
}

/// One row of `topic list`.
#[derive(Debug, Serialize)]
struct TopicSummary {
    name: String,
    partitions: usize,
    replicas: usize,
}

fn list(options: &ClientOptions, args: ListArgs) -> anyhow::Result<()> {
    let consumer = options.metadata_consumer()?;
    let metadata = options.fetch_metadata(&consumer, None)?;
    let mut topics: Vec<TopicSummary> = metadata
        .topics()
        .iter()
        .filter(|topic| args.internal || !is_internal_topic(topic.name()))
        .map(|topic| TopicSummary {
            name: topic.name().to_owned(),
            partitions: topic.partitions().len(),
            replicas: topic
                .partitions()
                .iter()
                .map(|partition| partition.replicas().len())
                .max()
                .unwrap_or(0),
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    if options.json {
        return print_json(&topics);
    }
    let mut table = Table::new(&["NAME", "PARTITIONS", "REPLICAS"]);
    for topic in &topics {
        table.row(vec![
            topic.name.clone(),
            topic.partitions.to_string(),
            topic.replicas.to_string(),
        ]);
    }
    Ok(table.print()?)
}

/// A configuration entry as shown by `topic describe`.
#[derive(Debug, Serialize)]
struct ConfigRow {
    name: String,
    value: Option<String>,
    source: &'static str,
    is_default: bool,
    is_read_only: bool,
    is_sensitive: bool,
}

/// A partition as shown by `topic describe`.
#[derive(Debug, Serialize)]
struct PartitionRow {
    partition: i32,
    /// The leader's broker id, -1 when the partition has none (offline).
    leader: i32,
    /// The leader epoch (from Metadata, else from ListOffsets), when the broker reports one.
    leader_epoch: Option<i32>,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// Replicas on brokers that are down or whose log is offline.
    offline_replicas: Vec<i32>,
    /// `ok`, `under-replicated` (ISR smaller than the replicas) or `offline` (no leader).
    status: &'static str,
    log_start_offset: Option<i64>,
    high_watermark: Option<i64>,
    error: Option<String>,
}

/// The whole answer of `topic describe --json`.
#[derive(Debug, Serialize)]
struct TopicDescription {
    name: String,
    /// The topic id in Kafka's text form, when the broker reports one.
    id: Option<String>,
    partition_count: usize,
    replication_factor: usize,
    under_replicated_partitions: usize,
    offline_partitions: usize,
    configs: Vec<ConfigRow>,
    partitions: Vec<PartitionRow>,
}

/// A partition's status as `describe` and `cluster info` judge it.
fn partition_status(leader: i32, replicas: usize, isr: usize) -> &'static str {
    if leader < 0 {
        "offline"
    } else if isr < replicas {
        "under-replicated"
    } else {
        "ok"
    }
}

/// Kafka's name of an error code (`UNKNOWN_TOPIC_OR_PARTITION`), or the number.
fn error_name(code: i16) -> String {
    match kafka_protocol::error::ResponseError::try_from_code(code) {
        Some(error) => format!("{error:?} ({code})"),
        None => format!("error {code}"),
    }
}

/// Kafka's own names for config sources, as `kafka-configs.sh` prints them.
fn source_name(source: &ConfigSource) -> &'static str {
    match source {
        ConfigSource::Unknown => "UNKNOWN",
        ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
        ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
        ConfigSource::Default => "DEFAULT_CONFIG",
    }
}

fn config_row(entry: &ConfigEntry) -> ConfigRow {
    ConfigRow {
        name: entry.name.clone(),
        value: if entry.is_sensitive {
            None
        } else {
            entry.value.clone()
        },
        source: source_name(&entry.source),
        is_default: entry.is_default,
        is_read_only: entry.is_read_only,
        is_sensitive: entry.is_sensitive,
    }
}

/// Describes the topic's configuration; `None` entries mean the broker refused the request.
async fn describe_topic_configs(
    options: &ClientOptions,
    topic: &str,
) -> anyhow::Result<Vec<ConfigEntry>> {
    let admin = options.admin()?;
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options.admin_options())
        .await
        .map_err(|error| options.unreachable(error))?;
    let Some(result) = results.into_iter().next() else {
        bail!("the broker sent no DescribeConfigs result for topic {topic:?}");
    };
    let resource =
        result.map_err(|code| admin_failure("describe the configuration of", topic, code))?;
    Ok(resource.entries)
}

async fn describe(options: &ClientOptions, args: DescribeArgs) -> anyhow::Result<()> {
    let metadata = options
        .raw_metadata_async(Some(std::slice::from_ref(&args.name)))
        .await?;
    let missing = || {
        anyhow::anyhow!(
            "topic {:?} does not exist (use `strom topic list`)",
            args.name
        )
    };
    let topic = metadata
        .topics
        .iter()
        .find(|topic| topic.name.as_ref().is_some_and(|n| n.as_str() == args.name))
        .ok_or_else(missing)?;
    match topic.error_code {
        0 => {}
        3 => return Err(missing()),
        code => bail!(
            "could not describe topic {:?}: {}",
            args.name,
            error_name(code)
        ),
    }
    let mut partition_metadata: Vec<_> = topic.partitions.iter().collect();
    partition_metadata.sort_by_key(|partition| partition.partition_index);
    let led: Vec<i32> = partition_metadata
        .iter()
        .filter(|p| p.leader_id.0 >= 0)
        .map(|p| p.partition_index)
        .collect();
    let (earliest, latest) = if led.is_empty() {
        (BTreeMap::new(), BTreeMap::new())
    } else {
        let consumer = options.metadata_consumer()?;
        (
            options.list_offsets(&consumer, &args.name, &led, -2)?,
            options.list_offsets(&consumer, &args.name, &led, -1)?,
        )
    };
    let ids = |ids: &[kafka_protocol::messages::BrokerId]| ids.iter().map(|id| id.0).collect();

    let partitions: Vec<PartitionRow> = partition_metadata
        .iter()
        .map(|partition| {
            let index = partition.partition_index;
            let latest = latest.get(&index).copied().unwrap_or_default();
            let replicas: Vec<i32> = ids(&partition.replica_nodes);
            let isr: Vec<i32> = ids(&partition.isr_nodes);
            PartitionRow {
                partition: index,
                leader: partition.leader_id.0,
                leader_epoch: Some(partition.leader_epoch)
                    .filter(|&epoch| epoch >= 0)
                    .or(latest.leader_epoch),
                status: partition_status(partition.leader_id.0, replicas.len(), isr.len()),
                replicas,
                isr,
                offline_replicas: ids(&partition.offline_replicas),
                log_start_offset: earliest.get(&index).and_then(|listed| listed.offset),
                high_watermark: latest.offset,
                error: (partition.error_code != 0).then(|| error_name(partition.error_code)),
            }
        })
        .collect();

    let mut configs: Vec<ConfigRow> = describe_topic_configs(options, &args.name)
        .await?
        .iter()
        .filter(|entry| args.all || !entry.is_default)
        .map(config_row)
        .collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));

    let description = TopicDescription {
        name: args.name.clone(),
        id: (!topic.topic_id.is_nil())
            .then(|| strom_meta::model::cluster_id_from_uuid(&topic.topic_id)),
        partition_count: partitions.len(),
        under_replicated_partitions: partitions
            .iter()
            .filter(|p| p.status == "under-replicated")
            .count(),
        offline_partitions: partitions.iter().filter(|p| p.status == "offline").count(),
        replication_factor: partitions
            .iter()
            .map(|p| p.replicas.len())
            .max()
            .unwrap_or(0),
        configs,
        partitions,
    };
    if options.json {
        return print_json(&description);
    }
    print_description(&description, args.all)
}

fn print_description(description: &TopicDescription, all: bool) -> anyhow::Result<()> {
    println!("NAME                {}", description.name);
    if let Some(id) = &description.id {
        println!("ID                  {id}");
    }
    println!("PARTITIONS          {}", description.partition_count);
    println!("REPLICATION-FACTOR  {}", description.replication_factor);
    println!(
        "UNDER-REPLICATED    {}",
        description.under_replicated_partitions
    );
    println!("OFFLINE             {}", description.offline_partitions);
    println!();
    if description.configs.is_empty() && !all {
        println!("CONFIGS: none overridden (--all shows every entry)");
    } else {
        println!("CONFIGS");
        let mut table = Table::new(&["NAME", "VALUE", "SOURCE"]);
        for config in &description.configs {
            let value = if config.is_sensitive {
                "<sensitive>".to_owned()
            } else {
                config.value.clone().unwrap_or_else(|| "-".to_owned())
            };
            table.row(vec![config.name.clone(), value, config.source.to_owned()]);
        }
        table.print()?;
    }
    println!();
    println!("PARTITIONS");
    let mut table = Table::new(&[
        "PARTITION",
        "LEADER",
        "EPOCH",
        "REPLICAS",
        "ISR",
        "STATUS",
        "LOG-START-OFFSET",
        "HIGH-WATERMARK",
    ]);
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    for partition in &description.partitions {
        table.row(vec![
            partition.partition.to_string(),
            partition.leader.to_string(),
            or_dash(partition.leader_epoch.map(|e| e.to_string())),
            join_ids(&partition.replicas),
            join_ids(&partition.isr),
            partition.status.to_owned(),
            or_dash(partition.log_start_offset.map(|o| o.to_string())),
            or_dash(partition.high_watermark.map(|o| o.to_string())),
        ]);
    }
    table.print()?;
    for partition in &description.partitions {
        if let Some(error) = &partition.error {
            eprintln!("partition {}: {error}", partition.partition);
        }
    }
    Ok(())
}

/// Turns `--set` and `--delete` into IncrementalAlterConfigs changes, refusing a key given to
/// both because the intent is ambiguous.
fn config_changes(
    sets: &[(String, String)],
    deletes: &[String],
) -> anyhow::Result<Vec<ConfigChange>> {
    let mut changes = Vec::with_capacity(sets.len() + deletes.len());
    for (key, value) in sets {
        if deletes.contains(key) {
            bail!("{key:?} is given to both --set and --delete; choose one");
        }
        changes.push(ConfigChange::Set(key.clone(), value.clone()));
    }
    changes.extend(deletes.iter().cloned().map(ConfigChange::Delete));
    Ok(changes)
}

/// Applies `--set`/`--delete` with IncrementalAlterConfigs, so overrides not named are kept and
/// the change is atomic on the broker, then shows the resulting overrides.
async fn alter_config(options: &ClientOptions, args: AlterConfigArgs) -> anyhow::Result<()> {
    if args.sets.is_empty() && args.deletes.is_empty() {
        bail!("nothing to change: give --set KEY=VALUE and/or --delete KEY");
    }
    let sets = parse_key_values(&args.sets, "--set")?;
    let changes = config_changes(&sets, &args.deletes)?;
    let admin = options.admin()?;
    crate::native::incremental_alter_topic_configs(
        admin.inner(),
        &args.name,
        &changes,
        false,
        options.timeout(),
    )
    .map_err(|error| {
        anyhow::anyhow!(
            "could not alter the configuration of topic {:?}: {error:#}",
            args.name
        )
    })?;

    let overrides: BTreeMap<String, Option<String>> = describe_topic_configs(options, &args.name)
        .await?
        .into_iter()
        .filter(|entry| entry.source == ConfigSource::DynamicTopic)
        .map(|entry| (entry.name, entry.value))
        .collect();
    if options.json {
        return print_json(&serde_json::json!({
            "topic": args.name,
            "overrides": overrides,
        }));
    }
    println!("altered configuration of topic {:?}", args.name);
    if overrides.is_empty() {
        println!("no overrides remain");
    } else {
        let mut table = Table::new(&["NAME", "VALUE"]);
        for (key, value) in overrides {
            table.row(vec![key, value.unwrap_or_else(|| "<sensitive>".to_owned())]);
        }
        table.print()?;
    }
    Ok(())
}

async fn delete(options: &ClientOptions, args: DeleteArgs) -> anyhow::Result<()> {
    let admin = options.admin()?;
    let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
    let results = admin
        .delete_topics(&names, &options.admin_options())
        .await
        .map_err(|error| options.unreachable(error))?;
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(topic) => deleted.push(topic),
            Err((topic, code)) => failures.push(admin_failure("delete", &topic, code)),
        }
    }
    if options.json {
        print_json(&serde_json::json!({
            "deleted": deleted,
            "failed": failures.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        }))?;
    } else {
        for topic in &deleted {
            println!("deleted topic {topic:?}");
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 => Err(failures.remove(0)),
        count => {
            for failure in &failures {
                eprintln!("{failure}");
            }
            bail!(
                "{count} of {} topics could not be deleted",
                args.names.len()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_deletes_become_changes_in_order() {
        let sets = vec![("segment.bytes".to_owned(), "1048576".to_owned())];
        let deletes = vec!["retention.ms".to_owned()];
        assert_eq!(
            config_changes(&sets, &deletes).unwrap(),
            [
                ConfigChange::Set("segment.bytes".to_owned(), "1048576".to_owned()),
                ConfigChange::Delete("retention.ms".to_owned()),
            ]
        );
    }

    #[test]
    fn a_key_both_set_and_deleted_is_refused() {
        let sets = vec![("retention.ms".to_owned(), "5".to_owned())];
        let deletes = vec!["retention.ms".to_owned()];
        let error = config_changes(&sets, &deletes).unwrap_err().to_string();
        assert!(error.contains("retention.ms"), "{error}");
    }
}
