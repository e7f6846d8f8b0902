//! `strom group ...`: list, describe, delete consumer groups and reset their committed offsets,
//! like Kafka's `kafka-consumer-groups.sh` and `rpk group`.
//!
//! Groups and their members come from ListGroups + DescribeGroups and committed offsets from
//! OffsetFetch for every topic (both through librdkafka's C API, see [`crate::native`]); log
//! offsets come from ListOffsets. Members' assignments are decoded here from the consumer
//! protocol's bytes ([`decode_assignment`]).
//!
//! `reset-offsets` commits the way a standalone tool does: a consumer with `group.id` set that
//! never subscribes, so the commit carries generation -1, which a broker accepts only while the
//! group has no members. It therefore refuses to run against an active group.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::client::ClientOptions;
use crate::native::{GroupDescription, GroupMember};
use crate::output::{print_json, Table};

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
    /// The first record at or after this UTC time, YYYY-MM-DDTHH:MM:SS[.mmm]Z; the log end
    /// offset where no record is that recent.
    #[arg(long, value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// The committed offset plus N (N may be negative). Like Kafka, this fails when a chosen
    /// partition has no committed offset: give --partition or use another target.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
}

/// Runs one `group` subcommand.
pub async fn run(options: &ClientOptions, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List(args) => list(options, args),
        GroupCommand::Describe(args) => describe(options, args),
        GroupCommand::Delete(args) => delete(options, args).await,
        GroupCommand::ResetOffsets(args) => reset_offsets(options, args),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading groups

/// Every group state a broker may report (classic and KIP-848 groups).
const KNOWN_STATES: &[&str] = &[
    "Stable",
    "Empty",
    "Dead",
    "PreparingRebalance",
    "CompletingRebalance",
    "Assigning",
    "Reconciling",
];

/// Lists groups (all, or just `group`), with an error that says where we looked.
fn fetch_groups(
    options: &ClientOptions,
    consumer: &BaseConsumer,
    group: Option<&str>,
) -> anyhow::Result<Vec<GroupDescription>> {
    crate::native::list_groups(consumer.client(), group, options.timeout())
        .map_err(|code| options.unreachable(KafkaError::GroupListFetch(code)))
}

/// The description of `group`, or `None` when no broker knows it.
fn fetch_group(
    options: &ClientOptions,
    consumer: &BaseConsumer,
    group: &str,
) -> anyhow::Result<Option<GroupDescription>> {
    let found = fetch_groups(options, consumer, Some(group))?
        .into_iter()
        .find(|description| description.group == group);
    match found {
        Some(description) => match description.error {
            None => Ok(Some(description)),
            Some(RDKafkaErrorCode::GroupIdNotFound) => Ok(None),
            Some(code) => bail!("could not describe group {group:?}: {code}"),
        },
        None => Ok(None),
    }
}

/// Whether a group in `state` with `members` members still has consumers, so offsets cannot be
/// committed from outside.
fn is_active(state: &str, members: usize) -> bool {
    members > 0 || !(state.eq_ignore_ascii_case("Empty") || state.eq_ignore_ascii_case("Dead"))
}

/// One row of `group list`.
#[derive(Debug, Serialize)]
struct GroupRow {
    group: String,
    state: String,
    protocol_type: String,
    members: usize,
}

fn list(options: &ClientOptions, args: ListArgs) -> anyhow::Result<()> {
    let mut wanted = BTreeSet::new();
    for state in &args.states {
        let Some(known) = KNOWN_STATES.iter().find(|k| k.eq_ignore_ascii_case(state)) else {
            bail!(
                "--state {state:?} is not a group state; use one of {}",
                KNOWN_STATES.join(", ")
            );
        };
        wanted.insert(*known);
    }
    let consumer = options.metadata_consumer()?;
    let mut rows: Vec<GroupRow> = fetch_groups(options, &consumer, None)?
        .into_iter()
        .filter(|g| wanted.is_empty() || wanted.iter().any(|s| s.eq_ignore_ascii_case(&g.state)))
        .map(|g| GroupRow {
            members: g.members.len(),
            group: g.group,
            state: g.state,
            protocol_type: g.protocol_type,
        })
        .collect();
    rows.sort_by(|a, b| a.group.cmp(&b.group));
    if options.json {
        return print_json(&rows);
    }
    let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
    for row in &rows {
        table.row(vec![
            row.group.clone(),
            dash_if_empty(&row.state),
            dash_if_empty(&row.protocol_type),
        ]);
    }
    Ok(table.print()?)
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// `1 member`, `3 members`.
fn member_count(count: usize) -> String {
    match count {
        1 => "1 member".to_owned(),
        count => format!("{count} members"),
    }
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

// ---------------------------------------------------------------------------------------------
// describe

/// One row of `group describe`: a partition with a committed offset or an owner, or a member
/// that owns nothing (topic and partition `None`).
#[derive(Debug, Serialize, PartialEq, Eq)]
struct DescribeRow {
    group: String,
    topic: Option<String>,
    partition: Option<i32>,
    current_offset: Option<i64>,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    consumer_id: Option<String>,
    host: Option<String>,
    client_id: Option<String>,
}

/// The whole answer of `group describe --json`.
#[derive(Debug, Serialize)]
struct GroupDetails {
    group: String,
    state: String,
    protocol_type: String,
    protocol: String,
    members: usize,
    rows: Vec<DescribeRow>,
}

/// Which member owns which partition, from the members' assignments. Assignments that do not
/// decode are reported on standard error and treated as empty.
fn owners(description: &GroupDescription) -> BTreeMap<(String, i32), &GroupMember> {
    let mut owners = BTreeMap::new();
    let consumer_protocol =
        description.protocol_type.is_empty() || description.protocol_type == "consumer";
    if !consumer_protocol {
        return owners;
    }
    for member in &description.members {
        if member.assignment.is_empty() {
            continue;
        }
        match decode_assignment(&member.assignment) {
            Ok(assignment) => {
                for (topic, partitions) in assignment.partitions {
                    for partition in partitions {
                        owners.insert((topic.clone(), partition), member);
                    }
                }
            }
            Err(error) => eprintln!(
                "warning: the assignment of member {:?} does not decode: {error}",
                member.member_id
            ),
        }
    }
    owners
}

/// Builds the rows of `describe` from what was fetched: partitions with a commit or an owner,
/// sorted by topic and partition, then members that own nothing.
fn describe_rows(
    group: &str,
    members: &[GroupMember],
    committed: &BTreeMap<(String, i32), i64>,
    owners: &BTreeMap<(String, i32), &GroupMember>,
    log_ends: &BTreeMap<(String, i32), i64>,
) -> Vec<DescribeRow> {
    let keys: BTreeSet<&(String, i32)> = committed.keys().chain(owners.keys()).collect();
    let mut rows = Vec::with_capacity(keys.len());
    for key in keys {
        let current = committed.get(key).copied();
        let end = log_ends.get(key).copied();
        let owner = owners.get(key);
        rows.push(DescribeRow {
            group: group.to_owned(),
            topic: Some(key.0.clone()),
            partition: Some(key.1),
            current_offset: current,
            log_end_offset: end,
            lag: match (current, end) {
                (Some(current), Some(end)) => Some(end.saturating_sub(current).max(0)),
                _ => None,
            },
            consumer_id: owner.map(|m| m.member_id.clone()),
            host: owner.map(|m| m.client_host.clone()),
            client_id: owner.map(|m| m.client_id.clone()),
        });
    }
    let owning: BTreeSet<&str> = owners.values().map(|m| m.member_id.as_str()).collect();
    for member in members {
        if !owning.contains(member.member_id.as_str()) {
            rows.push(DescribeRow {
                group: group.to_owned(),
                topic: None,
                partition: None,
                current_offset: None,
                log_end_offset: None,
                lag: None,
                consumer_id: Some(member.member_id.clone()),
                host: Some(member.client_host.clone()),
                client_id: Some(member.client_id.clone()),
            });
        }
    }
    rows
}

/// The log end offset of every partition in `keys`, one ListOffsets request per topic. Topics
/// that no longer exist or do not answer are left out (shown as `-`).
fn log_end_offsets<'a>(
    options: &ClientOptions,
    consumer: &BaseConsumer,
    keys: impl Iterator<Item = &'a (String, i32)>,
) -> BTreeMap<(String, i32), i64> {
    // A partition both committed and assigned comes twice; ListOffsets refuses duplicates.
    let mut by_topic: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    for (topic, partition) in keys {
        by_topic.entry(topic).or_default().insert(*partition);
    }
    let mut ends = BTreeMap::new();
    for (topic, partitions) in by_topic {
        let partitions: Vec<i32> = partitions.into_iter().collect();
        match options.list_offsets(consumer, topic, &partitions, -1) {
            Ok(listed) => {
                for (partition, offset) in listed {
                    if let Some(offset) = offset.offset {
                        ends.insert((topic.to_owned(), partition), offset);
                    }
                }
            }
            Err(error) => eprintln!("warning: no log end offsets for topic {topic:?}: {error:#}"),
        }
    }
    ends
}

fn describe(options: &ClientOptions, args: DescribeArgs) -> anyhow::Result<()> {
    let consumer = options.metadata_consumer()?;
    let description = fetch_group(options, &consumer, &args.group)?;
    let committed = crate::native::committed_offsets_of_group(
        consumer.client(),
        &args.group,
        options.timeout(),
    )?;
    let Some(description) = description.or_else(|| {
        // A broker that keeps commits for a group it does not list: show them anyway.
        (!committed.is_empty()).then(|| GroupDescription {
            group: args.group.clone(),
            error: None,
            state: "Unknown".to_owned(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        })
    }) else {
        bail!(
            "consumer group {:?} does not exist (use `strom group list`)",
            args.group
        );
    };
    let owners = owners(&description);
    let log_ends = log_end_offsets(options, &consumer, committed.keys().chain(owners.keys()));
    let rows = describe_rows(
        &args.group,
        &description.members,
        &committed,
        &owners,
        &log_ends,
    );
    let details = GroupDetails {
        group: args.group.clone(),
        state: description.state.clone(),
        protocol_type: description.protocol_type.clone(),
        protocol: description.protocol.clone(),
        members: description.members.len(),
        rows,
    };
    if options.json {
        return print_json(&details);
    }
    println!(
        "Consumer group {:?}: state {}, {}",
        details.group,
        dash_if_empty(&details.state),
        member_count(details.members)
    );
    println!();
    if details.rows.is_empty() {
        println!("no committed offsets and no assigned partitions");
        return Ok(());
    }
    let mut table = Table::new(&[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    for row in &details.rows {
        table.row(vec![
            row.group.clone(),
            or_dash(row.topic.as_ref()),
            or_dash(row.partition),
            or_dash(row.current_offset),
            or_dash(row.log_end_offset),
            or_dash(row.lag),
            or_dash(row.consumer_id.as_ref()),
            or_dash(row.host.as_ref()),
            or_dash(row.client_id.as_ref()),
        ]);
    }
    Ok(table.print()?)
}

// ---------------------------------------------------------------------------------------------
// delete

/// A sentence about why `group` could not be deleted.
fn delete_failure(group: &str, code: RDKafkaErrorCode) -> String {
    let hint = match code {
        RDKafkaErrorCode::NonEmptyGroup => {
            " (the group has active members; stop its consumers first)"
        }
        RDKafkaErrorCode::GroupIdNotFound => " (no such group; see `strom group list`)",
        RDKafkaErrorCode::GroupAuthorizationFailed => " (not authorized for this group)",
        _ => "",
    };
    format!("could not delete group {group:?}: {code}{hint}")
}

async fn delete(options: &ClientOptions, args: DeleteArgs) -> anyhow::Result<()> {
    let admin = options.admin()?;
    let names: Vec<&str> = args.groups.iter().map(String::as_str).collect();
    let results = admin
        .delete_groups(&names, &options.admin_options())
        .await
        .map_err(|error| options.unreachable(error))?;
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(group) => deleted.push(group),
            Err((group, code)) => failures.push(delete_failure(&group, code)),
        }
    }
    if options.json {
        print_json(&serde_json::json!({ "deleted": deleted, "failed": failures }))?;
    } else {
        for group in &deleted {
            println!("deleted group {group:?}");
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 => bail!("{}", failures[0]),
        count => {
            for failure in &failures {
                eprintln!("{failure}");
            }
            bail!(
                "{count} of {} groups could not be deleted",
                args.groups.len()
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// reset-offsets

/// Where `reset-offsets` moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    ShiftBy(i64),
}

impl Target {
    fn from_args(args: &TargetArgs) -> anyhow::Result<Target> {
        Ok(if args.to_earliest {
            Target::Earliest
        } else if args.to_latest {
            Target::Latest
        } else if let Some(offset) = args.to_offset {
            Target::Offset(offset)
        } else if let Some(text) = &args.to_datetime {
            Target::Timestamp(parse_utc_datetime(text).map_err(|error| {
                anyhow::anyhow!(
                    "--to-datetime {text:?}: {error} (expected YYYY-MM-DDTHH:MM:SS[.mmm]Z, UTC)"
                )
            })?)
        } else if let Some(shift) = args.shift_by {
            Target::ShiftBy(shift)
        } else {
            bail!("give one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
        })
    }
}

/// What is known about one partition when its new offset is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionOffsets {
    /// The group's committed offset, if any.
    committed: Option<i64>,
    log_start: i64,
    log_end: i64,
    /// For `--to-datetime`: the first offset at or after the time, if any record is as recent.
    at_time: Option<i64>,
}

/// Moves `offset` into [`start`, `end`], as Kafka's reset does (an offset below the log start
/// becomes the log start, one past the log end becomes the log end).
fn clamp_offset(offset: i64, start: i64, end: i64) -> i64 {
    if offset < start {
        start
    } else if offset > end {
        end
    } else {
        offset
    }
}

/// The new offset of one partition, or why there is none (`--shift-by` without a commit).
fn new_offset(target: Target, offsets: PartitionOffsets) -> Result<i64, &'static str> {
    let PartitionOffsets {
        committed,
        log_start,
        log_end,
        at_time,
    } = offsets;
    let wanted = match target {
        Target::Earliest => log_start,
        Target::Latest => log_end,
        Target::Offset(offset) => offset,
        Target::Timestamp(_) => at_time.unwrap_or(log_end),
        Target::ShiftBy(shift) => committed
            .ok_or("there is no committed offset to shift")?
            .saturating_add(shift),
    };
    Ok(clamp_offset(wanted, log_start, log_end))
}

/// One partition of `reset-offsets`' plan.
#[derive(Debug, Serialize)]
struct ResetRow {
    partition: i32,
    current_offset: Option<i64>,
    new_offset: i64,
}

/// Committed offsets of `partitions` of `topic` for the consumer's group (OffsetFetch).
fn committed_offsets(
    options: &ClientOptions,
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, Option<i64>>> {
    let mut request = TopicPartitionList::with_capacity(partitions.len());
    for &partition in partitions {
        request
            .add_partition_offset(topic, partition, Offset::Invalid)
            .context("could not build the OffsetFetch request")?;
    }
    let response = consumer
        .committed_offsets(request, options.timeout())
        .map_err(|error| options.unreachable(error))?;
    let mut committed = BTreeMap::new();
    for element in response.elements() {
        if let Err(error) = element.error() {
            bail!(
                "could not fetch the committed offset of {topic}/{}: {error}",
                element.partition()
            );
        }
        let offset = match element.offset() {
            Offset::Offset(offset) if offset >= 0 => Some(offset),
            _ => None,
        };
        committed.insert(element.partition(), offset);
    }
    Ok(committed)
}

/// Fetches one ListOffsets answer per partition, failing when a partition has none.
fn required_offsets(
    options: &ClientOptions,
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
    what: &str,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let listed = options.list_offsets(consumer, topic, partitions, timestamp)?;
    let mut offsets = BTreeMap::new();
    for &partition in partitions {
        match listed.get(&partition).and_then(|listed| listed.offset) {
            Some(offset) => offsets.insert(partition, offset),
            None => bail!("the broker returned no {what} for {topic}/{partition}"),
        };
    }
    Ok(offsets)
}

fn reset_offsets(options: &ClientOptions, args: ResetOffsetsArgs) -> anyhow::Result<()> {
    let target = Target::from_args(&args.target)?;
    let consumer: BaseConsumer = options
        .config(&[
            ("group.id", &args.group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("allow.auto.create.topics", "false"),
        ])
        .create()
        .context("could not create the Kafka consumer (check --prop values)")?;

    if let Some(description) = fetch_group(options, &consumer, &args.group)? {
        if is_active(&description.state, description.members.len()) {
            bail!(
                "group {:?} is active (state {}, {}): offsets can only be reset while it has \
                 no members; stop its consumers first",
                args.group,
                dash_if_empty(&description.state),
                member_count(description.members.len())
            );
        }
    }

    let existing = options.existing_partitions(&consumer, &args.topic)?;
    let partitions: Vec<i32> = if args.partitions.is_empty() {
        existing.iter().copied().collect()
    } else {
        let chosen: BTreeSet<i32> = args.partitions.iter().copied().collect();
        if let Some(missing) = chosen.iter().find(|p| !existing.contains(p)) {
            bail!(
                "topic {:?} has no partition {missing} (it has {})",
                args.topic,
                existing.len()
            );
        }
        chosen.into_iter().collect()
    };

    let committed = committed_offsets(options, &consumer, &args.topic, &partitions)?;
    let starts = required_offsets(
        options,
        &consumer,
        &args.topic,
        &partitions,
        -2,
        "log start offset",
    )?;
    let ends = required_offsets(
        options,
        &consumer,
        &args.topic,
        &partitions,
        -1,
        "log end offset",
    )?;
    let at_time = match target {
        Target::Timestamp(timestamp) => {
            options.list_offsets(&consumer, &args.topic, &partitions, timestamp)?
        }
        _ => BTreeMap::new(),
    };

    let mut rows = Vec::with_capacity(partitions.len());
    let mut unshiftable = Vec::new();
    for &partition in &partitions {
        let offsets = PartitionOffsets {
            committed: committed.get(&partition).copied().flatten(),
            log_start: starts[&partition],
            log_end: ends[&partition],
            at_time: at_time.get(&partition).and_then(|listed| listed.offset),
        };
        match new_offset(target, offsets) {
            Ok(new_offset) => rows.push(ResetRow {
                partition,
                current_offset: offsets.committed,
                new_offset,
            }),
            Err(_) => unshiftable.push(partition.to_string()),
        }
    }
    if !unshiftable.is_empty() {
        bail!(
            "cannot shift the offsets of {} partition(s) {} of {:?}: group {:?} has no committed \
             offset there (choose partitions with --partition, or use --to-earliest, \
             --to-latest, --to-offset or --to-datetime)",
            unshiftable.len(),
            unshiftable.join(","),
            args.topic,
            args.group
        );
    }

    if args.execute {
        let mut commit = TopicPartitionList::with_capacity(rows.len());
        for row in &rows {
            commit
                .add_partition_offset(&args.topic, row.partition, Offset::Offset(row.new_offset))
                .context("could not build the OffsetCommit request")?;
        }
        consumer
            .commit(&commit, CommitMode::Sync)
            .map_err(|error| commit_failure(&args.group, error))?;
        // librdkafka's synchronous commit does not always surface per-partition errors; read
        // the offsets back so a refused commit is not reported as done.
        let now = committed_offsets(options, &consumer, &args.topic, &partitions)?;
        let wrong: Vec<String> = rows
            .iter()
            .filter(|row| now.get(&row.partition).copied().flatten() != Some(row.new_offset))
            .map(|row| row.partition.to_string())
            .collect();
        if !wrong.is_empty() {
            bail!(
                "the broker did not keep the new offsets of partition(s) {} of {:?} for group \
                 {:?} (did a consumer join the group meanwhile?)",
                wrong.join(","),
                args.topic,
                args.group
            );
        }
    }

    if options.json {
        return print_json(&serde_json::json!({
            "group": args.group,
            "topic": args.topic,
            "executed": args.execute,
            "partitions": rows,
        }));
    }
    let mut table = Table::new(&[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "NEW-OFFSET",
    ]);
    for row in &rows {
        table.row(vec![
            args.group.clone(),
            args.topic.clone(),
            row.partition.to_string(),
            or_dash(row.current_offset),
            row.new_offset.to_string(),
        ]);
    }
    table.print()?;
    if args.execute {
        eprintln!(
            "committed the new offsets of {} partition(s) for group {:?}",
            rows.len(),
            args.group
        );
    } else {
        eprintln!("dry run: nothing was committed (add --execute to commit these offsets)");
    }
    Ok(())
}

/// A sentence about a refused commit, with the likely reason for the usual codes.
fn commit_failure(group: &str, error: KafkaError) -> anyhow::Error {
    let hint = match error.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::RebalanceInProgress,
        ) => " (a consumer joined the group meanwhile; stop its consumers and retry)",
        _ => "",
    };
    anyhow::anyhow!("could not commit the new offsets of group {group:?}: {error}{hint}")
}

// ---------------------------------------------------------------------------------------------
// Decoding and parsing

/// A decoded ConsumerProtocolAssignment (the bytes a consumer group's leader assigns to each
/// member through SyncGroup).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    pub version: i16,
    /// Assigned partitions per topic, in the order they were encoded.
    pub partitions: Vec<(String, Vec<i32>)>,
    /// The assignor's user data; `None` when null or absent.
    pub user_data: Option<Vec<u8>>,
}

/// A big-endian reader over bytes that never reads past their end.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn take(&mut self, count: usize, what: &str) -> Result<&'a [u8], String> {
        if count > self.remaining() {
            return Err(format!(
                "truncated at byte {}: {what} needs {count} bytes, {} left",
                self.position,
                self.remaining()
            ));
        }
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    fn i16(&mut self, what: &str) -> Result<i16, String> {
        let bytes = self.take(2, what)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        let bytes = self.take(4, what)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// An array length that must be non-negative and fit the bytes left, each element taking
    /// at least `min_element` bytes, so a hostile count cannot drive a huge allocation.
    fn count(&mut self, what: &str, min_element: usize) -> Result<usize, String> {
        let count = self.i32(what)?;
        let count = usize::try_from(count).map_err(|_| format!("{what} is negative ({count})"))?;
        if count.saturating_mul(min_element) > self.remaining() {
            return Err(format!(
                "{what} is {count} but only {} bytes are left",
                self.remaining()
            ));
        }
        Ok(count)
    }
}

/// Decodes a ConsumerProtocolAssignment: int16 version, then an array of (topic string, int32
/// array of partitions), then nullable user-data bytes. Every version so far has this layout;
/// bytes after it (from a newer version) are ignored, and missing user data is accepted, as
/// some clients omit it. Malformed input gives an error, never a panic.
pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment, String> {
    let mut reader = Reader { bytes, position: 0 };
    let version = reader.i16("the version")?;
    if version < 0 {
        return Err(format!("the version is negative ({version})"));
    }
    // Each topic entry takes at least 2 (name length) + 4 (partition count) bytes.
    let topics = reader.count("the topic count", 6)?;
    let mut partitions = Vec::with_capacity(topics);
    for _ in 0..topics {
        let length = reader.i16("a topic name length")?;
        let length = usize::try_from(length)
            .map_err(|_| format!("a topic name length is negative ({length})"))?;
        let name = String::from_utf8_lossy(reader.take(length, "a topic name")?).into_owned();
        let count = reader.count("a partition count", 4)?;
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            ids.push(reader.i32("a partition")?);
        }
        partitions.push((name, ids));
    }
    let user_data = if reader.remaining() == 0 {
        None
    } else {
        let length = reader.i32("the user data length")?;
        if length < 0 {
            None
        } else {
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            Some(reader.take(length, "the user data")?.to_vec())
        }
    };
    Ok(Assignment {
        version,
        partitions,
        user_data,
    })
}

/// Parses a UTC time `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (a lower-case `t`/`z` and a space for
/// `T` are accepted) into milliseconds since the Unix epoch. The fraction may have 1 to 9
/// digits and is truncated to milliseconds. Times before 1970 are refused, since ListOffsets
/// reads negative timestamps as "earliest"/"latest".
pub fn parse_utc_datetime(text: &str) -> Result<i64, String> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>, what: &str| -> Result<i64, String> {
        let field = bytes
            .get(range)
            .filter(|field| !field.is_empty() && field.iter().all(u8::is_ascii_digit))
            .ok_or_else(|| format!("the {what} is not a number where expected"))?;
        Ok(field.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let separator = |index: usize, allowed: &[u8], what: &str| -> Result<(), String> {
        match bytes.get(index) {
            Some(b) if allowed.contains(b) => Ok(()),
            _ => Err(format!("expected {what} at position {}", index + 1)),
        }
    };
    let year = digits(0..4, "year")?;
    separator(4, b"-", "'-'")?;
    let month = digits(5..7, "month")?;
    separator(7, b"-", "'-'")?;
    let day = digits(8..10, "day")?;
    separator(10, b"Tt ", "'T'")?;
    let hour = digits(11..13, "hour")?;
    separator(13, b":", "':'")?;
    let minute = digits(14..16, "minute")?;
    separator(16, b":", "':'")?;
    let second = digits(17..19, "second")?;
    let mut index = 19;
    let mut millis = 0;
    if bytes.get(index) == Some(&b'.') {
        let start = index + 1;
        let mut end = start;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        let length = end - start;
        if !(1..=9).contains(&length) {
            return Err("the fraction of a second must have 1 to 9 digits".to_owned());
        }
        for position in 0..3 {
            millis *= 10;
            if position < length {
                millis += i64::from(bytes[start + position] - b'0');
            }
        }
        index = end;
    }
    separator(index, b"Zz", "'Z' (the time must be UTC)")?;
    if index + 1 != bytes.len() {
        return Err("unexpected text after 'Z'".to_owned());
    }
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} is out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!(
            "day {day} is out of range for {year:04}-{month:02}"
        ));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!(
            "time {hour:02}:{minute:02}:{second:02} is out of range"
        ));
    }
    if year < 1970 {
        return Err("times before 1970-01-01T00:00:00Z are not supported".to_owned());
    }
    let days = days_since_epoch(year, month, day);
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar (Howard
/// Hinnant's `days_from_civil`).
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March is 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes an assignment the way Kafka's ConsumerProtocol does.
    fn encode(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut out = version.to_be_bytes().to_vec();
        out.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            out.extend((name.len() as i16).to_be_bytes());
            out.extend(name.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        match user_data {
            Some(data) => {
                out.extend((data.len() as i32).to_be_bytes());
                out.extend(data);
            }
            None => out.extend((-1i32).to_be_bytes()),
        }
        out
    }

    #[test]
    fn an_assignment_decodes() {
        let bytes = encode(1, &[("orders", &[0, 2]), ("audit", &[])], Some(b"ud"));
        assert_eq!(
            decode_assignment(&bytes).unwrap(),
            Assignment {
                version: 1,
                partitions: vec![("orders".into(), vec![0, 2]), ("audit".into(), vec![])],
                user_data: Some(b"ud".to_vec()),
            }
        );
        let bytes = encode(0, &[("t", &[5])], None);
        let decoded = decode_assignment(&bytes).unwrap();
        assert_eq!(decoded.partitions, vec![("t".to_owned(), vec![5])]);
        assert_eq!(decoded.user_data, None);
    }

    #[test]
    fn missing_user_data_and_trailing_bytes_are_accepted() {
        let mut bytes = encode(3, &[("t", &[1])], Some(b""));
        bytes.extend([9, 9, 9]);
        assert_eq!(decode_assignment(&bytes).unwrap().partitions[0].1, [1]);
        let bytes = encode(0, &[("t", &[1])], None);
        let without = &bytes[..bytes.len() - 4];
        assert_eq!(decode_assignment(without).unwrap().user_data, None);
    }

    #[test]
    fn hostile_assignments_are_errors_not_panics() {
        let valid = encode(1, &[("orders", &[0, 1, 2]), ("x", &[7])], Some(b"data"));
        // Every truncation that cuts a field in half.
        for length in 0..valid.len() {
            let _ = decode_assignment(&valid[..length]);
        }
        assert!(decode_assignment(&[]).is_err());
        assert!(decode_assignment(&[0]).is_err());
        // Negative version, counts and lengths.
        assert!(decode_assignment(&[0xff, 0xff, 0, 0, 0, 0]).is_err());
        assert!(decode_assignment(&[0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_assignment(&[0, 0, 0, 0, 0, 1, 0xff, 0xfe, 0, 0, 0, 0]).is_err());
        assert!(decode_assignment(&[0, 0, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
        // Huge counts that would allocate gigabytes if trusted.
        assert!(decode_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_assignment(&[0, 0, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
        let mut huge_user_data = encode(0, &[], None);
        let end = huge_user_data.len();
        huge_user_data[end - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_assignment(&huge_user_data).is_err());
        // Bytes that are not UTF-8 in a topic name are kept lossily.
        let decoded = decode_assignment(&[0, 0, 0, 0, 0, 1, 0, 1, 0xff, 0, 0, 0, 0]).unwrap();
        assert_eq!(decoded.partitions[0].0, "\u{fffd}");
        // A cheap pseudo-random fuzz.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut bytes = valid.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let index = (state as usize) % bytes.len();
                bytes[index] = (state >> 32) as u8;
            }
            let cut = (state >> 40) as usize % (bytes.len() + 1);
            let _ = decode_assignment(&bytes[..cut]);
        }
    }

    #[test]
    fn datetimes_parse_to_epoch_milliseconds() {
        assert_eq!(parse_utc_datetime("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_utc_datetime("2024-01-01T00:00:00Z"),
            Ok(1_704_067_200_000)
        );
        assert_eq!(
            parse_utc_datetime("2024-02-29T12:34:56.789Z"),
            Ok(1_709_210_096_789)
        );
        assert_eq!(
            parse_utc_datetime("2000-03-01T00:00:00.5Z"),
            Ok(951_868_800_500)
        );
        assert_eq!(
            parse_utc_datetime("2038-01-19T03:14:08.123456789z"),
            Ok(2_147_483_648_123)
        );
        assert_eq!(
            parse_utc_datetime("2024-01-01 00:00:01Z"),
            Ok(1_704_067_201_000)
        );
    }

    #[test]
    fn bad_datetimes_are_refused() {
        for text in [
            "",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+01:00",
            "2024-01-01T00:00:00ZZ",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567890Z",
            "1969-12-31T23:59:59Z",
            "+024-01-01T00:00:00Z",
            "2024-1-01T00:00:00Z",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert!(parse_utc_datetime(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn offsets_are_clamped_into_the_log() {
        assert_eq!(clamp_offset(5, 10, 20), 10);
        assert_eq!(clamp_offset(15, 10, 20), 15);
        assert_eq!(clamp_offset(25, 10, 20), 20);
        assert_eq!(clamp_offset(-1, 0, 0), 0);
        assert_eq!(clamp_offset(i64::MAX, 0, 7), 7);
    }

    fn offsets(committed: Option<i64>, at_time: Option<i64>) -> PartitionOffsets {
        PartitionOffsets {
            committed,
            log_start: 10,
            log_end: 20,
            at_time,
        }
    }

    #[test]
    fn every_target_gives_a_clamped_offset() {
        assert_eq!(
            new_offset(Target::Earliest, offsets(Some(15), None)),
            Ok(10)
        );
        assert_eq!(new_offset(Target::Latest, offsets(None, None)), Ok(20));
        assert_eq!(new_offset(Target::Offset(3), offsets(None, None)), Ok(10));
        assert_eq!(new_offset(Target::Offset(17), offsets(None, None)), Ok(17));
        assert_eq!(new_offset(Target::Offset(99), offsets(None, None)), Ok(20));
        assert_eq!(
            new_offset(Target::Timestamp(1), offsets(None, Some(12))),
            Ok(12)
        );
        assert_eq!(
            new_offset(Target::Timestamp(1), offsets(None, None)),
            Ok(20),
            "no record that recent: the log end"
        );
    }

    #[test]
    fn shift_by_moves_the_committed_offset_and_needs_one() {
        assert_eq!(
            new_offset(Target::ShiftBy(3), offsets(Some(15), None)),
            Ok(18)
        );
        assert_eq!(
            new_offset(Target::ShiftBy(-3), offsets(Some(15), None)),
            Ok(12)
        );
        assert_eq!(
            new_offset(Target::ShiftBy(-30), offsets(Some(15), None)),
            Ok(10)
        );
        assert_eq!(
            new_offset(Target::ShiftBy(30), offsets(Some(15), None)),
            Ok(20)
        );
        assert_eq!(
            new_offset(Target::ShiftBy(i64::MAX), offsets(Some(15), None)),
            Ok(20)
        );
        assert_eq!(
            new_offset(Target::ShiftBy(i64::MIN), offsets(Some(15), None)),
            Ok(10)
        );
        assert!(new_offset(Target::ShiftBy(1), offsets(None, None)).is_err());
    }

    #[test]
    fn a_group_with_members_or_a_live_state_is_active() {
        assert!(!is_active("Empty", 0));
        assert!(!is_active("dead", 0));
        assert!(is_active("Empty", 1));
        assert!(is_active("Stable", 0));
        assert!(is_active("PreparingRebalance", 0));
    }

    fn member(id: &str) -> GroupMember {
        GroupMember {
            member_id: id.to_owned(),
            client_id: format!("client-{id}"),
            client_host: "/127.0.0.1".to_owned(),
            assignment: Vec::new(),
        }
    }

    #[test]
    fn describe_rows_join_commits_owners_and_idle_members() {
        let mut busy = member("m1");
        busy.assignment = encode(0, &[("t", &[0, 1])], None);
        let idle = member("m2");
        let description = GroupDescription {
            group: "g".into(),
            error: None,
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members: vec![busy.clone(), idle.clone()],
        };
        let owners = owners(&description);
        let committed = BTreeMap::from([(("t".to_owned(), 0), 4), (("old".to_owned(), 0), 2)]);
        let ends = BTreeMap::from([(("t".to_owned(), 0), 10), (("t".to_owned(), 1), 3)]);
        let rows = describe_rows("g", &description.members, &committed, &owners, &ends);
        let summary: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.topic.clone(),
                    r.partition,
                    r.current_offset,
                    r.log_end_offset,
                    r.lag,
                    r.consumer_id.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (Some("old".into()), Some(0), Some(2), None, None, None),
                (
                    Some("t".into()),
                    Some(0),
                    Some(4),
                    Some(10),
                    Some(6),
                    Some("m1".into())
                ),
                (
                    Some("t".into()),
                    Some(1),
                    None,
                    Some(3),
                    None,
                    Some("m1".into())
                ),
                (None, None, None, None, None, Some("m2".into())),
            ]
        );
        assert_eq!(rows[1].client_id.as_deref(), Some("client-m1"));
        assert_eq!(rows[1].host.as_deref(), Some("/127.0.0.1"));
    }
}
