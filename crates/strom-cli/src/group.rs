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
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::client::ClientOptions;
use crate::native::{GroupDescription, GroupMember};
use crate::output::{print_json, Table};

mod args;
pub use args::*;

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
                    "--to-datetime {text:?}: {error} (expected YYYY-MM-DDTHH:MM:SS[.mmm]Z or \
                     an offset such as +02:00)"
                )
            })?)
        } else if let Some(text) = &args.by_duration {
            let ago = parse_duration_ms(text).map_err(|error| {
                anyhow::anyhow!("--by-duration {text:?}: {error} (expected e.g. PT1H30M or 1h30m)")
            })?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            Target::Timestamp(now.saturating_sub(ago).max(0))
        } else if let Some(shift) = args.shift_by {
            Target::ShiftBy(shift)
        } else {
            bail!(
                "give one of --to-earliest, --to-latest, --to-offset, --to-datetime, \
                 --by-duration, --shift-by"
            )
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

mod parse;
pub use parse::{decode_assignment, parse_duration_ms, parse_utc_datetime};

#[cfg(test)]
mod tests;
