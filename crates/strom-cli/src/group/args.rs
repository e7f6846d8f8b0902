//! The command-line arguments of `strom group`.

use clap::{Args, Subcommand};

/// The `group` subcommands.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups with their state and protocol type.
    List(ListArgs),
    /// Show a group's members, committed offsets, log end offsets and lag per partition.
    Describe(DescribeArgs),
    /// Delete groups that have no active members, with their committed offsets.
    Delete(DeleteArgs),
    /// Show, or with --execute commit, new offsets for an inactive group on one topic.
    ResetOffsets(ResetOffsetsArgs),
}

/// Arguments of `group list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only groups in this state (Stable, Empty, Dead, PreparingRebalance,
    /// CompletingRebalance, Assigning, Reconciling; any case); repeatable.
    #[arg(long = "state", value_name = "STATE")]
    pub states: Vec<String>,
}

/// Arguments of `group describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The group id.
    pub group: String,
}

/// Arguments of `group delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The groups to delete.
    #[arg(required = true)]
    pub groups: Vec<String>,
}

/// Arguments of `group reset-offsets`.
#[derive(Debug, Args)]
pub struct ResetOffsetsArgs {
    /// The group id. It must have no active members.
    pub group: String,
    /// The topic whose offsets are reset.
    #[arg(short = 't', long)]
    pub topic: String,
    /// Reset only this partition; repeatable (default: every partition of the topic).
    #[arg(short = 'p', long = "partition")]
    pub partitions: Vec<i32>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Commit the new offsets. Without it the command only shows them (a dry run).
    #[arg(long)]
    pub execute: bool,
    /// Only show the new offsets (the default; for scripts that say so explicitly).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
}

/// Where `reset-offsets` moves the group: exactly one of these. Every new offset is clamped
/// into [log start offset, log end offset], as Kafka does.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// The log start offset of each partition.
    #[arg(long)]
    pub to_earliest: bool,
    /// The log end offset (high watermark) of each partition.
    #[arg(long)]
    pub to_latest: bool,
    /// This offset in each partition.
    #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
    pub to_offset: Option<i64>,
    /// The first record at or after this time, RFC 3339 with an offset
    /// (YYYY-MM-DDTHH:MM:SS[.mmm]Z or …+HH:MM); the log end offset where no record is that
    /// recent.
    #[arg(long, value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// The first record at or after now minus this duration (ISO 8601 as Kafka takes it,
    /// PT1H30M or P1DT2H, or 1h 30m); the log end offset where no record is that recent.
    #[arg(long, value_name = "DURATION")]
    pub by_duration: Option<String>,
    /// The committed offset plus N (N may be negative). Like Kafka, this fails when a chosen
    /// partition has no committed offset: give --partition or use another target.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
}
