//! The `strom` binary: argument parsing and wiring.
//!
//! `strom broker` runs a broker from `strom-broker`; `strom scheduler run` the service
//! scheduler of `strom-scheduler` with the local engine and its HTTP API (`service/`). The client commands (`topic`, `produce`,
//! `consume`, `group`, `txn`, `config`, `cluster`, `log-dirs`, `perf`) talk to any Kafka-compatible cluster through librdkafka; they
//! live in this crate's modules for now because they are thin uses of that client, not domain
//! logic.
//!
//! Exit codes: 0 success, 1 a failed operation, 2 a usage error or refused configuration.

mod broker;
mod client;
mod cluster;
mod config;
mod consume;
mod format;
mod group;
mod log_dirs;
mod native;
mod output;
mod partition;
mod perf;
mod produce;
mod reassign;
mod service;
mod topic;
mod txn;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::client::{parse_key_values, ClientOptions};

/// Hostile array lengths in requests must not abort the broker (see `strom_broker::alloc`).
#[global_allocator]
static ALLOCATOR: strom_broker::alloc::GuardedAllocator = strom_broker::alloc::GuardedAllocator;

/// Strom: a Kafka-compatible broker and its command-line tools.
#[derive(Debug, Parser)]
#[command(name = "strom", version, about)]
struct Cli {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT..] (client commands) [env: STROM_BROKERS]
    /// [default: 127.0.0.1:9092].
    #[arg(short = 'b', long, global = true, value_name = "HOST:PORT[,..]")]
    brokers: Option<String>,
    /// Print machine-readable JSON instead of tables (client commands).
    #[arg(long, global = true)]
    json: bool,
    /// How long one request may take, in milliseconds; also bounds a record's delivery in
    /// `produce` (client commands).
    #[arg(long, global = true, default_value_t = 10_000, value_name = "MS")]
    timeout_ms: u64,
    /// A librdkafka client property, KEY=VALUE; repeatable (client commands).
    #[arg(long = "prop", global = true, value_name = "KEY=VALUE")]
    props: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker until SIGTERM or SIGINT.
    Broker(broker::BrokerArgs),
    /// Create, list, describe, reconfigure and delete topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Write one record per line of standard input to a topic.
    Produce(produce::ProduceArgs),
    /// Read records from a topic and print them.
    Consume(consume::ConsumeArgs),
    /// List, describe and delete consumer groups, and reset their offsets.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// List, describe, find hanging and abort transactions (like `kafka-transactions.sh`).
    #[command(subcommand)]
    Txn(txn::TxnCommand),
    /// Partitions: list them (leaders, ISR, offline and reassigning replicas), preferred and
    /// unclean leader elections.
    #[command(subcommand)]
    Partition(partition::PartitionCommand),
    /// Each broker's log dirs and the size of every replica in them (like
    /// `kafka-log-dirs.sh --describe`).
    #[command(subcommand)]
    LogDirs(log_dirs::LogDirsCommand),
    /// Dynamic broker configuration: set, delete and describe with sources.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Show the cluster's brokers and controller.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Load generators: produce and consume throughput, send and end-to-end latency.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// The service scheduler: deploy and heal a broker service (`scheduler run`).
    #[command(subcommand)]
    Scheduler(service::SchedulerCommand),
    /// Operate a service through its scheduler (`plan`, `pod`, `update`, `uninstall`, …) and
    /// the tools its tasks run (`probe-broker`).
    #[command(subcommand)]
    Service(service::ServiceCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Broker(args) = cli.command {
        return broker::run(args);
    }
    if let Command::Scheduler(command) = cli.command {
        return service::run_scheduler(command);
    }
    if let Command::Service(command) = cli.command {
        return service::run_service(command, cli.json);
    }
    match run_client(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client command. librdkafka's own log lines are off unless `RUST_LOG` asks for
/// them: a refused connection is retried and logged every second, and our final error
/// already says what failed and where.
fn run_client(cli: Cli) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,rdkafka=off")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let options = ClientOptions {
        brokers: brokers_or_default(cli.brokers),
        timeout_ms: cli.timeout_ms,
        props: parse_key_values(&cli.props, "--prop")?,
        json: cli.json,
    };
    match cli.command {
        Command::Broker(_) | Command::Scheduler(_) | Command::Service(_) => {
            unreachable!("handled in main")
        }
        Command::Consume(args) => consume::run(&options, args),
        Command::Cluster(command) => cluster::run(&options, command),
        Command::Topic(command) => runtime()?.block_on(topic::run(&options, command)),
        Command::Produce(args) => runtime()?.block_on(produce::run(&options, args)),
        Command::Group(command) => runtime()?.block_on(group::run(&options, command)),
        Command::Perf(command) => perf::run(&options, command),
        Command::Txn(command) => runtime()?.block_on(txn::run(&options, command)),
        Command::Partition(command) => runtime()?.block_on(partition::run(&options, command)),
        Command::Config(command) => runtime()?.block_on(config::run(&options, command)),
        Command::LogDirs(command) => runtime()?.block_on(log_dirs::run(&options, command)),
    }
}

/// The bootstrap brokers: `--brokers`, else `STROM_BROKERS`, else the local default. (Read
/// by hand because the workspace builds clap without its `env` feature.)
fn brokers_or_default(flag: Option<String>) -> String {
    flag.or_else(|| {
        std::env::var("STROM_BROKERS")
            .ok()
            .filter(|v| !v.is_empty())
    })
    .unwrap_or_else(|| DEFAULT_BROKERS.to_owned())
}

/// Where client commands look for a broker when nothing else is given.
const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// A single-threaded runtime for the commands that await rdkafka futures; librdkafka does its
/// network I/O on its own threads.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn txn_commands_refuse_incomplete_or_conflicting_targets() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["strom", "txn"], args].concat());
        assert!(parse(&["find-hanging", "--topic", "t", "-p", "0"]).is_ok());
        assert!(parse(&["find-hanging", "--broker-id", "1"]).is_ok());
        assert!(
            parse(&["find-hanging"]).is_err(),
            "a broker or a topic is required"
        );
        assert!(parse(&["find-hanging", "--broker-id", "1", "--topic", "t"]).is_err());
        assert!(parse(&["find-hanging", "--broker-id", "1", "-p", "0"]).is_err());
        let abort = ["abort", "--topic", "t", "--partition", "0"];
        assert!(parse(&[&abort[..], &["--start-offset", "5"]].concat()).is_ok());
        let by_producer = [
            "--producer-id",
            "7",
            "--producer-epoch",
            "1",
            "--coordinator-epoch",
            "-1",
        ];
        assert!(parse(&[&abort[..], &by_producer[..]].concat()).is_ok());
        assert!(
            parse(&abort).is_err(),
            "a start offset or a producer is required"
        );
        assert!(parse(&[&abort[..], &["--producer-id", "7"]].concat()).is_err());
        assert!(parse(&[&abort[..], &by_producer[..], &["--start-offset", "5"]].concat()).is_err());
    }

    #[test]
    fn global_flags_work_before_and_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "strom",
            "-b",
            "h:1",
            "topic",
            "list",
            "--json",
            "--timeout-ms",
            "5",
        ])
        .unwrap();
        assert_eq!(brokers_or_default(cli.brokers), "h:1");
        assert!(cli.json);
        assert_eq!(cli.timeout_ms, 5);
    }

    #[test]
    fn topic_create_takes_short_flags_and_repeated_configs() {
        let cli = Cli::try_parse_from([
            "strom",
            "topic",
            "create",
            "t",
            "-p",
            "3",
            "-r",
            "1",
            "-c",
            "a=1",
            "-c",
            "b=2",
            "--validate-only",
        ])
        .unwrap();
        let Command::Topic(topic::TopicCommand::Create(args)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.partitions, Some(3));
        assert_eq!(args.replicas, Some(1));
        assert_eq!(args.configs, ["a=1", "b=2"]);
        assert!(args.validate_only);
    }

    #[test]
    fn alter_config_takes_sets_and_deletes() {
        let cli = Cli::try_parse_from([
            "strom",
            "topic",
            "alter-config",
            "t",
            "--set",
            "a=1",
            "--delete",
            "b",
        ])
        .unwrap();
        let Command::Topic(topic::TopicCommand::AlterConfig(args)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.sets, ["a=1"]);
        assert_eq!(args.deletes, ["b"]);
    }

    #[test]
    fn produce_parses_acks_compression_and_headers() {
        let cli = Cli::try_parse_from([
            "strom",
            "produce",
            "t",
            "-k",
            ":",
            "-H",
            "a=1",
            "--acks",
            "0",
            "--compression",
            "zstd",
            "-p",
            "2",
        ])
        .unwrap();
        let Command::Produce(args) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.key_separator.as_deref(), Some(":"));
        assert_eq!(args.headers, ["a=1"]);
        assert_eq!(args.acks, produce::Acks::None);
        assert_eq!(args.compression, produce::Compression::Zstd);
        assert_eq!(args.partition, Some(2));
    }

    #[test]
    fn produce_refuses_unknown_acks() {
        assert!(Cli::try_parse_from(["strom", "produce", "t", "--acks", "2"]).is_err());
    }

    #[test]
    fn consume_accepts_a_negative_start_and_repeated_partitions() {
        let cli = Cli::try_parse_from([
            "strom",
            "consume",
            "t",
            "--from",
            "-3",
            "-p",
            "0",
            "-p",
            "2",
            "-n",
            "10",
            "-f",
            "%k=%v\\n",
            "--exit-at-end",
        ])
        .unwrap();
        let Command::Consume(args) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.from.as_deref(), Some("-3"));
        assert_eq!(args.partitions, [0, 2]);
        assert_eq!(args.num, Some(10));
        assert_eq!(args.format, "%k=%v\\n");
        assert!(args.exit_at_end);
    }

    #[test]
    fn group_reset_offsets_takes_one_target_and_a_negative_shift() {
        let cli = Cli::try_parse_from([
            "strom",
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "-p",
            "0",
            "-p",
            "2",
            "--shift-by",
            "-3",
            "--execute",
        ])
        .unwrap();
        let Command::Group(group::GroupCommand::ResetOffsets(args)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.group, "g");
        assert_eq!(args.topic, "t");
        assert_eq!(args.partitions, [0, 2]);
        assert_eq!(args.target.shift_by, Some(-3));
        assert!(args.execute);
        let base = ["strom", "group", "reset-offsets", "g", "--topic", "t"];
        assert!(Cli::try_parse_from(base).is_err(), "a target is required");
        let two = [&base[..], &["--to-earliest", "--to-latest"]].concat();
        assert!(Cli::try_parse_from(two).is_err(), "only one target");
        let both = [&base[..], &["--to-latest", "--execute", "--dry-run"]].concat();
        assert!(
            Cli::try_parse_from(both).is_err(),
            "--dry-run conflicts with --execute"
        );
    }

    #[test]
    fn group_list_and_delete_parse() {
        let cli = Cli::try_parse_from([
            "strom", "group", "list", "--state", "Stable", "--state", "empty",
        ])
        .unwrap();
        let Command::Group(group::GroupCommand::List(args)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.states, ["Stable", "empty"]);
        assert!(Cli::try_parse_from(["strom", "group", "delete"]).is_err());
        let cli = Cli::try_parse_from(["strom", "group", "delete", "a", "b"]).unwrap();
        let Command::Group(group::GroupCommand::Delete(args)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.groups, ["a", "b"]);
    }

    #[test]
    fn perf_produce_takes_an_unlimited_throughput_and_repeated_props() {
        let cli = Cli::try_parse_from([
            "strom",
            "perf",
            "produce",
            "--topic",
            "t",
            "--num-records",
            "10",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--acks",
            "1",
            "--producer-prop",
            "linger.ms=1",
            "--producer-prop",
            "batch.size=65536",
            "--json",
        ])
        .unwrap();
        let Command::Perf(perf::PerfCommand::Produce(args)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.throughput, -1);
        assert_eq!(args.acks, produce::Acks::Leader);
        assert_eq!(args.producer_props, ["linger.ms=1", "batch.size=65536"]);
        assert!(cli.json);
        let e2e = ["strom", "perf", "e2e", "--topic", "t", "--rate", "10"];
        assert!(Cli::try_parse_from(e2e).is_err(), "--duration is required");
        let cli = Cli::try_parse_from([&e2e[..], &["--duration", "2.5"]].concat()).unwrap();
        let Command::Perf(perf::PerfCommand::E2e(args)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(
            (args.rate, args.duration, args.record_size),
            (10, 2.5, 1024)
        );
    }

    #[test]
    fn log_dirs_describe_takes_brokers_and_topics() {
        let cli = Cli::try_parse_from([
            "strom", "-b", "h:1", "log-dirs", "describe", "--broker", "1,2", "--broker", "3",
            "--topic", "t",
        ])
        .unwrap();
        assert_eq!(brokers_or_default(cli.brokers), "h:1");
        let Command::LogDirs(command) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        let text = format!("{command:?}");
        assert!(text.contains("broker_ids: [1, 2, 3]"), "{text}");
        assert!(text.contains("topics: [\"t\"]"), "{text}");
    }

    #[test]
    fn broker_takes_a_file_and_repeated_sets() {
        let cli = Cli::try_parse_from([
            "strom",
            "broker",
            "--config",
            "server.properties",
            "--set",
            "a=1",
            "--set",
            "b=2",
        ])
        .unwrap();
        let Command::Broker(args) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.config.unwrap().to_str(), Some("server.properties"));
        assert_eq!(args.sets, ["a=1", "b=2"]);
    }
}
