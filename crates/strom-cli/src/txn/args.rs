//! The command-line arguments of `strom txn`.

use clap::{Args, Subcommand};

/// The `txn` subcommands, after Kafka's `kafka-transactions.sh`.
#[derive(Debug, Subcommand)]
pub enum TxnCommand {
    /// List transactions from every broker's transaction coordinator.
    List(ListArgs),
    /// Describe one transactional id: its producer, state, timeout and partitions.
    Describe(DescribeArgs),
    /// Show the producers a partition's log remembers and their open transactions.
    DescribeProducers(PartitionArgs),
    /// Find open transactions the coordinator does not know as ongoing (hanging ones).
    FindHanging(FindHangingArgs),
    /// Abort a transaction on one partition by writing an ABORT marker (WriteTxnMarkers).
    Abort(AbortArgs),
}

/// Arguments of `txn list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only transactions in this state (Empty, Ongoing, PrepareCommit, PrepareAbort,
    /// CompleteCommit, CompleteAbort, Dead, PrepareEpochFence); repeatable.
    #[arg(long = "state", value_name = "STATE")]
    pub states: Vec<String>,
    /// Only transactions of this producer id; repeatable.
    #[arg(long = "producer-id", value_name = "ID")]
    pub producer_ids: Vec<i64>,
    /// Only transactions running for at least this many milliseconds (ListTransactions v1).
    #[arg(long, value_name = "MS")]
    pub duration_ms: Option<i64>,
    /// Only transactional ids matching this regular expression (ListTransactions v2).
    #[arg(long, value_name = "REGEX")]
    pub id_pattern: Option<String>,
}

/// Arguments of `txn describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The transactional id.
    pub transactional_id: String,
}

/// One partition, as `describe-producers` takes it.
#[derive(Debug, Args)]
pub struct PartitionArgs {
    /// The topic.
    #[arg(short = 't', long)]
    pub topic: String,
    /// The partition.
    #[arg(short = 'p', long)]
    pub partition: i32,
}

/// Arguments of `txn find-hanging`.
#[derive(Debug, Args)]
pub struct FindHangingArgs {
    #[command(flatten)]
    pub scope: HangingScope,
    /// With --topic: only this partition.
    #[arg(short = 'p', long, requires = "topic", conflicts_with = "broker_id")]
    pub partition: Option<i32>,
    /// A transaction is a candidate once its producer's last write is older than this; use
    /// the largest `transaction.max.timeout.ms` of the cluster (default 15 minutes).
    #[arg(long, default_value_t = 900_000, value_name = "MS")]
    pub max_transaction_timeout_ms: i64,
}

/// Where `find-hanging` looks: the partitions of one broker, or of a topic.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct HangingScope {
    /// Look at every partition this broker holds a replica of.
    #[arg(long, value_name = "ID")]
    pub broker_id: Option<i32>,
    /// Look at this topic's partitions.
    #[arg(short = 't', long)]
    pub topic: Option<String>,
}

/// Arguments of `txn abort`.
#[derive(Debug, Args)]
pub struct AbortArgs {
    /// The topic of the partition with the transaction.
    #[arg(short = 't', long)]
    pub topic: String,
    /// The partition with the transaction.
    #[arg(short = 'p', long)]
    pub partition: i32,
    /// The first offset of the open transaction; its producer is found with DescribeProducers.
    #[arg(
        long,
        value_name = "OFFSET",
        required_unless_present = "producer_id",
        conflicts_with_all = ["producer_id", "producer_epoch", "coordinator_epoch"]
    )]
    pub start_offset: Option<i64>,
    /// The producer id of the transaction (with --producer-epoch and --coordinator-epoch).
    #[arg(long, value_name = "ID", requires_all = ["producer_epoch", "coordinator_epoch"])]
    pub producer_id: Option<i64>,
    /// The producer epoch of the transaction.
    #[arg(long, value_name = "EPOCH", requires = "producer_id")]
    pub producer_epoch: Option<i16>,
    /// The coordinator epoch the marker carries.
    #[arg(
        long,
        value_name = "EPOCH",
        requires = "producer_id",
        allow_hyphen_values = true
    )]
    pub coordinator_epoch: Option<i32>,
}
