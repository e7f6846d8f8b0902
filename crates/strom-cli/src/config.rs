//! `strom config`: dynamic broker configuration, like `kafka-configs.sh --entity-type brokers`.
//!
//! `set` and `delete` send IncrementalAlterConfigs (SET / DELETE) for the BROKER resource of
//! `--broker N` (to that broker, as Kafka's admin client routes a broker's resource) or of
//! `--cluster-default` (the empty name, to any broker); `describe` sends DescribeConfigs with
//! synonyms and shows each key's value and source (DYNAMIC_BROKER_CONFIG,
//! DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG). The requests are
//! written with `kafka-protocol` over plain connections (`txn::wire::Cluster`): librdkafka's
//! AlterConfigs would replace the whole level and its describe hides the synonyms' order.
//!
//! The reassignment tool's `--throttle` uses the same calls: `set --broker N
//! leader.replication.throttled.rate=B follower.replication.throttled.rate=B` on every broker
//! involved, and the topic keys `leader/follower.replication.throttled.replicas`.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::client::ClientOptions;
use crate::output::{print_json, Table};
use crate::txn::wire::{error_name, Cluster};

/// Kafka's BROKER resource type.
const BROKER: i8 = 4;

/// The `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set dynamic broker configuration keys (applied without a restart).
    Set(SetArgs),
    /// Remove dynamic broker configuration keys (the static or default value applies again).
    Delete(DeleteArgs),
    /// Show a broker's configuration with each value's source.
    Describe(DescribeArgs),
}

/// Which BROKER resource: one broker or the cluster-wide default.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// The broker whose own dynamic configuration is meant.
    #[arg(long, value_name = "ID")]
    broker: Option<i32>,
    /// The cluster-wide default every broker follows unless it overrides a key.
    #[arg(long)]
    cluster_default: bool,
}

impl Target {
    /// The resource name: the broker id, or empty for the cluster default.
    fn resource_name(&self) -> String {
        self.broker.map(|id| id.to_string()).unwrap_or_default()
    }
}

/// `config set` arguments.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    target: Target,
    /// KEY=VALUE pairs.
    #[arg(required = true, value_name = "KEY=VALUE")]
    pairs: Vec<String>,
    /// Only check the change; store nothing.
    #[arg(long)]
    validate_only: bool,
}

/// `config delete` arguments.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    target: Target,
    /// Keys to remove from the dynamic level.
    #[arg(required = true, value_name = "KEY")]
    keys: Vec<String>,
}

/// `config describe` arguments.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    target: Target,
    /// Every key, not only those set somewhere (source other than DEFAULT_CONFIG).
    #[arg(long)]
    all: bool,
    /// Only these keys.
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<String>,
}

/// Runs a `config` subcommand.
pub async fn run(options: &ClientOptions, command: ConfigCommand) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(options, Some(&[])).await?;
    match command {
        ConfigCommand::Set(args) => {
            let mut changes = Vec::new();
            for pair in &args.pairs {
                let (key, value) = pair
                    .split_once('=')
                    .filter(|(k, _)| !k.trim().is_empty())
                    .ok_or_else(|| anyhow!("{pair:?} is not KEY=VALUE"))?;
                changes.push((key.trim().to_string(), Some(value.trim().to_string())));
            }
            alter(&mut cluster, &args.target, changes, args.validate_only).await?;
            if !options.json {
                println!(
                    "set {} key(s) on {}",
                    args.pairs.len(),
                    describe_target(&args.target)
                );
            }
            Ok(())
        }
        ConfigCommand::Delete(args) => {
            let changes = args.keys.iter().map(|k| (k.clone(), None)).collect();
            alter(&mut cluster, &args.target, changes, false).await?;
            if !options.json {
                println!(
                    "deleted {} key(s) on {}",
                    args.keys.len(),
                    describe_target(&args.target)
                );
            }
            Ok(())
        }
        ConfigCommand::Describe(args) => describe(options, &mut cluster, args).await,
    }
}

fn describe_target(target: &Target) -> String {
    match target.broker {
        Some(id) => format!("broker {id}"),
        None => "the cluster default".to_string(),
    }
}

/// The broker a request for `target` goes to: the broker itself, else the lowest id.
fn destination(cluster: &Cluster, target: &Target) -> anyhow::Result<i32> {
    match target.broker {
        Some(id) => Ok(id),
        None => cluster
            .broker_ids()
            .first()
            .copied()
            .ok_or_else(|| anyhow!("the cluster's metadata lists no broker")),
    }
}

/// IncrementalAlterConfigs: SET for `Some(value)`, DELETE for `None`.
async fn alter(
    cluster: &mut Cluster,
    target: &Target,
    changes: Vec<(String, Option<String>)>,
    validate_only: bool,
) -> anyhow::Result<()> {
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = BROKER;
    resource.resource_name = StrBytes::from_string(target.resource_name());
    for (key, value) in changes {
        let mut config = AlterableConfig::default();
        config.name = StrBytes::from_string(key);
        config.config_operation = if value.is_some() { 0 } else { 1 };
        config.value = value.map(StrBytes::from_string);
        resource.configs.push(config);
    }
    let mut request = IncrementalAlterConfigsRequest::default();
    request.resources.push(resource);
    request.validate_only = validate_only;
    let to = destination(cluster, target)?;
    let response = cluster.call(to, &request, 1).await?;
    for result in response.responses {
        if result.error_code != 0 {
            bail!(
                "{}: {}",
                error_name(result.error_code),
                result
                    .error_message
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// One row of `config describe`.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    value: Option<String>,
    source: &'static str,
    read_only: bool,
    synonyms: Vec<Synonym>,
}

/// One synonym of a row, highest precedence first.
#[derive(Debug, Serialize)]
struct Synonym {
    name: String,
    value: Option<String>,
    source: &'static str,
}

/// Kafka's name of a DescribeConfigs source code.
fn source_name(code: i8) -> &'static str {
    match code {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        _ => "UNKNOWN",
    }
}

async fn describe(
    options: &ClientOptions,
    cluster: &mut Cluster,
    args: DescribeArgs,
) -> anyhow::Result<()> {
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = BROKER;
    resource.resource_name = StrBytes::from_string(args.target.resource_name());
    resource.configuration_keys = (!args.keys.is_empty()).then(|| {
        args.keys
            .iter()
            .cloned()
            .map(StrBytes::from_string)
            .collect()
    });
    let mut request = DescribeConfigsRequest::default();
    request.resources.push(resource);
    request.include_synonyms = true;
    let to = destination(cluster, &args.target)?;
    let response = cluster.call(to, &request, 4).await?;
    let mut rows = Vec::new();
    for result in response.results {
        if result.error_code != 0 {
            bail!(
                "{}: {}",
                error_name(result.error_code),
                result
                    .error_message
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            );
        }
        for entry in result.configs {
            if !args.all && args.keys.is_empty() && entry.config_source == 5 {
                continue;
            }
            rows.push(Row {
                name: entry.name.to_string(),
                value: entry.value.map(|v| v.to_string()),
                source: source_name(entry.config_source),
                read_only: entry.read_only,
                synonyms: entry
                    .synonyms
                    .into_iter()
                    .map(|s| Synonym {
                        name: s.name.to_string(),
                        value: s.value.map(|v| v.to_string()),
                        source: source_name(s.source),
                    })
                    .collect(),
            });
        }
    }
    if options.json {
        return print_json(&rows);
    }
    let mut table = Table::new(&["KEY", "VALUE", "SOURCE", "READ-ONLY", "SYNONYMS"]);
    for row in &rows {
        let synonyms: Vec<String> = row
            .synonyms
            .iter()
            .map(|s| format!("{}={}", s.source, s.value.as_deref().unwrap_or("")))
            .collect();
        table.row(vec![
            row.name.clone(),
            row.value.clone().unwrap_or_default(),
            row.source.to_string(),
            if row.read_only { "yes" } else { "no" }.to_string(),
            synonyms.join(" "),
        ]);
    }
    table.print()?;
    Ok(())
}
