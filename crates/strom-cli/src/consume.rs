//! `strom consume TOPIC`: read records and print them with a `--format` or as JSON lines.
//!
//! Without `--group` the consumer assigns partitions itself and never commits, so reading a
//! topic leaves no trace on the cluster. With `--group` it subscribes as a group member (or
//! assigns, when partitions or an exact start are given) and commits what it printed.
//!
//! `--exit-at-end` takes each partition's high watermark once, at the start, and stops when
//! every partition has been read up to it; records written later are not printed. A partition
//! also counts as finished when librdkafka reports it reached the end of the log, which covers
//! logs whose last offsets are transaction markers that are never delivered.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;

use crate::client::ClientOptions;
use crate::format::{Format, RecordView, DEFAULT_FORMAT};

/// How long one poll waits before the loop re-checks its stop conditions and flushes output.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Arguments of `consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic to read.
    pub topic: String,
    /// Read only this partition; repeatable (default: every partition).
    #[arg(short = 'p', long = "partition")]
    pub partitions: Vec<i32>,
    /// Where to start: `beginning`, `end`, an offset `N`, `-N` for N records before the end,
    /// or `@TIMESTAMP_MS` for the first record at or after that time. Default: `beginning`,
    /// or the group's committed offsets with `--group`.
    #[arg(long, value_name = "POSITION", allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Stop after printing N records.
    #[arg(short = 'n', long = "num")]
    pub num: Option<u64>,
    /// Output format: %t topic, %p partition, %o offset, %k key, %v value, %T timestamp (ms),
    /// %h headers, %% percent, \n \t \r \\ escapes.
    #[arg(short = 'f', long, default_value = DEFAULT_FORMAT)]
    pub format: String,
    /// Consume as a member of this consumer group and commit what was printed.
    #[arg(long)]
    pub group: Option<String>,
    /// Stop once every partition has been read up to its high watermark at the start.
    #[arg(long)]
    pub exit_at_end: bool,
}

/// Where a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartPosition {
    Beginning,
    End,
    Offset(i64),
    /// This many records before the high watermark.
    Tail(i64),
    Timestamp(i64),
}

impl StartPosition {
    fn parse(text: &str) -> anyhow::Result<StartPosition> {
        let invalid = || {
            anyhow::anyhow!(
                "--from {text:?} is not a position: use beginning, end, an offset N, -N \
                 (N before the end) or @TIMESTAMP_MS"
            )
        };
        Ok(match text {
            "beginning" | "start" | "oldest" | "earliest" => StartPosition::Beginning,
            "end" | "newest" | "latest" => StartPosition::End,
            _ => {
                if let Some(timestamp) = text.strip_prefix('@') {
                    StartPosition::Timestamp(timestamp.parse().map_err(|_| invalid())?)
                } else if let Some(count) = text.strip_prefix('-') {
                    StartPosition::Tail(count.parse().map_err(|_| invalid())?)
                } else {
                    StartPosition::Offset(text.parse().map_err(|_| invalid())?)
                }
            }
        })
    }
}

/// One record as printed by `consume --json`: one object per line.
#[derive(Debug, Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<JsonHeader<'a>>,
}

/// One header of a [`JsonRecord`]; headers keep their order and may repeat a key.
#[derive(Debug, Serialize)]
struct JsonHeader<'a> {
    key: &'a str,
    value: Option<String>,
}

/// Set by SIGINT/SIGTERM so the loop stops, flushes and commits instead of dying mid-record.
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Installs [`request_stop`] for SIGINT and SIGTERM.
fn install_stop_handler() {
    let handler = request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe, and it stays
    // valid for the life of the process.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Progress towards `--exit-at-end` and the per-partition state the loop keeps.
#[derive(Debug, Default)]
struct Progress {
    /// High watermark per partition at the start; `None` without `--exit-at-end`.
    end_offsets: Option<BTreeMap<i32, i64>>,
    /// Partitions read up to their end offset.
    finished: BTreeSet<i32>,
    /// Next offset to commit per partition (group mode): one past the last printed record.
    to_commit: BTreeMap<i32, i64>,
    printed: u64,
}

impl Progress {
    /// Whether a record at `offset` in `partition` is at or past the stop point.
    fn is_past_end(&self, partition: i32, offset: i64) -> bool {
        match &self.end_offsets {
            Some(ends) => offset >= ends.get(&partition).copied().unwrap_or(0),
            None => false,
        }
    }

    /// Whether every partition in `partitions` has finished (`--exit-at-end` only).
    fn all_finished(&self, partitions: &BTreeSet<i32>) -> bool {
        self.end_offsets.is_some()
            && !partitions.is_empty()
            && partitions.iter().all(|p| self.finished.contains(p))
    }
}

/// Runs `consume` until `-n`, `--exit-at-end`, or a signal stops it.
pub fn run(options: &ClientOptions, args: ConsumeArgs) -> anyhow::Result<()> {
    let format = Format::parse(&args.format)?;
    let start = args.from.as_deref().map(StartPosition::parse).transpose()?;
    let reset = match start {
        Some(StartPosition::End) => "latest",
        _ => "earliest",
    };
    let mut extra = vec![
        ("auto.offset.reset", reset),
        ("enable.auto.offset.store", "false"),
        (
            "enable.partition.eof",
            if args.exit_at_end { "true" } else { "false" },
        ),
    ];
    // librdkafka's consumer cannot assign partitions without a group id, even though assign
    // never joins the group; without `--group` a throwaway id is used and nothing is committed.
    let throwaway_group = format!("strom-cli-assign-{}", std::process::id());
    match &args.group {
        Some(group) => {
            extra.push(("group.id", group));
            extra.push(("enable.auto.commit", "true"));
        }
        None => {
            extra.push(("group.id", &throwaway_group));
            extra.push(("enable.auto.commit", "false"));
        }
    }
    let consumer: BaseConsumer = options
        .config(&extra)
        .create()
        .context("could not create the Kafka consumer (check --prop values)")?;

    let all_partitions = options.existing_partitions(&consumer, &args.topic)?;
    for partition in &args.partitions {
        if !all_partitions.contains(partition) {
            bail!(
                "topic {:?} has no partition {partition} (it has {})",
                args.topic,
                all_partitions.len()
            );
        }
    }
    let partitions: BTreeSet<i32> = if args.partitions.is_empty() {
        all_partitions.clone()
    } else {
        args.partitions.iter().copied().collect()
    };
    let partition_list: Vec<i32> = partitions.iter().copied().collect();

    let mut progress = Progress::default();
    if args.exit_at_end {
        let latest = options.list_offsets(&consumer, &args.topic, &partition_list, -1)?;
        let mut ends = BTreeMap::new();
        for &partition in &partition_list {
            let Some(end) = latest.get(&partition).and_then(|listed| listed.offset) else {
                bail!(
                    "could not read the high watermark of {}-{partition} for --exit-at-end",
                    args.topic
                );
            };
            ends.insert(partition, end);
        }
        progress.end_offsets = Some(ends);
    }

    let subscribe = args.group.is_some()
        && args.partitions.is_empty()
        && matches!(
            start,
            None | Some(StartPosition::Beginning) | Some(StartPosition::End)
        );
    if subscribe {
        consumer
            .subscribe(&[&args.topic])
            .with_context(|| format!("could not subscribe to {:?}", args.topic))?;
    } else {
        let assignment = starting_offsets(options, &consumer, &args, start, &partition_list)?;
        mark_finished_before_start(&mut progress, &assignment, options, &consumer, &args)?;
        let mut list = TopicPartitionList::with_capacity(assignment.len());
        for (&partition, &offset) in &assignment {
            list.add_partition_offset(&args.topic, partition, offset)
                .context("could not build the partition assignment")?;
        }
        consumer
            .assign(&list)
            .with_context(|| format!("could not assign partitions of {:?}", args.topic))?;
    }

    install_stop_handler();
    let output = Output {
        format,
        json: options.json,
    };
    let watch = Watch {
        partitions,
        subscribe,
        group_wait: options.timeout(),
    };
    let result = consume_loop(&consumer, &args, &output, &watch, &mut progress);
    if args.group.is_some() && !progress.to_commit.is_empty() {
        let mut list = TopicPartitionList::with_capacity(progress.to_commit.len());
        for (&partition, &offset) in &progress.to_commit {
            list.add_partition_offset(&args.topic, partition, Offset::Offset(offset))
                .context("could not build the offset commit")?;
        }
        if let Err(error) = consumer.commit(&list, CommitMode::Sync) {
            eprintln!("warning: could not commit the printed offsets for the group: {error}");
        }
    }
    result
}

/// The offset each assigned partition starts at, resolving timestamps with ListOffsets.
fn starting_offsets(
    options: &ClientOptions,
    consumer: &BaseConsumer,
    args: &ConsumeArgs,
    start: Option<StartPosition>,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, Offset>> {
    let default = if args.group.is_some() {
        Offset::Stored
    } else {
        Offset::Beginning
    };
    let offsets = match start {
        None => partitions.iter().map(|&p| (p, default)).collect(),
        Some(StartPosition::Beginning) => {
            partitions.iter().map(|&p| (p, Offset::Beginning)).collect()
        }
        Some(StartPosition::End) => partitions.iter().map(|&p| (p, Offset::End)).collect(),
        Some(StartPosition::Offset(offset)) => partitions
            .iter()
            .map(|&p| (p, Offset::Offset(offset)))
            .collect(),
        Some(StartPosition::Tail(0)) => partitions.iter().map(|&p| (p, Offset::End)).collect(),
        Some(StartPosition::Tail(count)) => partitions
            .iter()
            .map(|&p| (p, Offset::OffsetTail(count)))
            .collect(),
        Some(StartPosition::Timestamp(timestamp)) => {
            let found = options.list_offsets(consumer, &args.topic, partitions, timestamp)?;
            partitions
                .iter()
                .map(|&p| {
                    let offset = found.get(&p).and_then(|listed| listed.offset);
                    (p, offset.map(Offset::Offset).unwrap_or(Offset::End))
                })
                .collect()
        }
    };
    Ok(offsets)
}

/// With `--exit-at-end`, marks partitions whose start is already at or past their end offset,
/// so an empty partition does not keep the command waiting.
fn mark_finished_before_start(
    progress: &mut Progress,
    assignment: &BTreeMap<i32, Offset>,
    options: &ClientOptions,
    consumer: &BaseConsumer,
    args: &ConsumeArgs,
) -> anyhow::Result<()> {
    let Some(ends) = &progress.end_offsets else {
        return Ok(());
    };
    let partitions: Vec<i32> = assignment.keys().copied().collect();
    let needs_start = assignment
        .values()
        .any(|offset| matches!(offset, Offset::Beginning));
    let log_starts = if needs_start {
        options.list_offsets(consumer, &args.topic, &partitions, -2)?
    } else {
        BTreeMap::new()
    };
    for (&partition, offset) in assignment {
        let end = ends.get(&partition).copied().unwrap_or(0);
        let start = match offset {
            Offset::Beginning => log_starts.get(&partition).and_then(|l| l.offset),
            Offset::End => Some(end),
            Offset::Offset(offset) => Some(*offset),
            _ => None,
        };
        if end == 0 || start.is_some_and(|start| start >= end) {
            progress.finished.insert(partition);
        }
    }
    Ok(())
}

/// How records are printed.
struct Output {
    format: Format,
    json: bool,
}

/// Which partitions the loop waits on: a fixed assignment, or the group's current one.
struct Watch {
    partitions: BTreeSet<i32>,
    subscribe: bool,
    /// How long to wait for a group assignment before warning.
    group_wait: Duration,
}

/// Polls and prints until a stop condition holds. In subscribe mode a warning is printed once
/// if the group has assigned nothing after `group_wait`.
fn consume_loop(
    consumer: &BaseConsumer,
    args: &ConsumeArgs,
    output: &Output,
    watch: &Watch,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let Watch {
        partitions,
        subscribe,
        group_wait,
    } = watch;
    let (subscribe, group_wait) = (*subscribe, *group_wait);
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    let mut rendered = Vec::new();
    let started = Instant::now();
    let mut warned_unassigned = false;
    // In subscribe mode the assignment is asked of librdkafka's group thread (a round trip), so
    // at most once per poll interval and only while something needs it.
    let mut assignment: Option<(Instant, BTreeSet<i32>)> = None;
    loop {
        if STOP_REQUESTED.load(Ordering::SeqCst) || args.num.is_some_and(|n| progress.printed >= n)
        {
            break;
        }
        let may_warn = subscribe && !warned_unassigned && started.elapsed() > group_wait;
        if progress.end_offsets.is_none() && !may_warn {
            // Nothing below looks at the watched partitions.
        } else if !subscribe {
            if progress.all_finished(partitions) {
                break;
            }
        } else {
            if assignment
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() >= POLL_INTERVAL)
            {
                assignment = Some((Instant::now(), assigned_partitions(consumer)));
            }
            let watched = &assignment.as_ref().expect("just set").1;
            if progress.all_finished(watched) {
                break;
            }
            if watched.is_empty() && may_warn {
                warned_unassigned = true;
                eprintln!(
                    "warning: group {:?} has assigned no partitions after {} ms; still waiting \
                 (is the group coordinator reachable? RUST_LOG=rdkafka=debug --prop debug=cgrp \
                 shows why)",
                    args.group.as_deref().unwrap_or_default(),
                    group_wait.as_millis()
                );
            }
        }
        let message = match consumer.poll(POLL_INTERVAL) {
            None => {
                if flush_or_stop(&mut stdout)? {
                    return Ok(());
                }
                continue;
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                progress.finished.insert(partition);
                continue;
            }
            Some(Err(error)) => {
                eprintln!("warning: {error}");
                if let Some((code, reason)) = consumer.client().fatal_error() {
                    bail!("the consumer failed and cannot continue: {code}: {reason}");
                }
                continue;
            }
            Some(Ok(message)) => message,
        };
        let partition = message.partition();
        let offset = message.offset();
        if progress.is_past_end(partition, offset) {
            progress.finished.insert(partition);
            continue;
        }
        rendered.clear();
        render(&message, &output.format, output.json, &mut rendered)?;
        if write_or_stop(&mut stdout, &rendered)? {
            return Ok(());
        }
        progress.printed += 1;
        if args.group.is_some() {
            progress.to_commit.insert(partition, offset + 1);
            // Storing lets auto-commit cover a long run that ends without a clean stop.
            let _ = consumer.store_offset_from_message(&message);
        }
        if progress.is_past_end(partition, offset + 1) {
            progress.finished.insert(partition);
        }
    }
    flush_or_stop(&mut stdout)?;
    Ok(())
}

/// The partitions of the group assignment right now (subscribe mode).
fn assigned_partitions(consumer: &BaseConsumer) -> BTreeSet<i32> {
    consumer
        .assignment()
        .map(|list| list.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Renders one message as JSON or through `format` into `out`.
fn render(
    message: &BorrowedMessage<'_>,
    format: &Format,
    json: bool,
    out: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let headers: Vec<(&str, Option<&[u8]>)> = message
        .headers()
        .map(|headers| headers.iter().map(|h| (h.key, h.value)).collect())
        .unwrap_or_default();
    let view = RecordView {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key(),
        value: message.payload(),
        timestamp_ms: message.timestamp().to_millis(),
        headers: &headers,
    };
    if json {
        let text = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
        let record = JsonRecord {
            topic: view.topic,
            partition: view.partition,
            offset: view.offset,
            timestamp: view.timestamp_ms,
            key: text(view.key),
            value: text(view.value),
            headers: headers
                .iter()
                .map(|(key, value)| JsonHeader {
                    key,
                    value: text(*value),
                })
                .collect(),
        };
        serde_json::to_writer(&mut *out, &record)?;
        out.push(b'\n');
    } else {
        format.render(&view, out);
    }
    Ok(())
}

/// Writes `bytes`; returns `true` when the reader has gone away (a closed pipe), which ends
/// the command quietly like `head` expects.
fn write_or_stop(stdout: &mut impl Write, bytes: &[u8]) -> anyhow::Result<bool> {
    match stdout.write_all(bytes) {
        Ok(()) => Ok(false),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(true),
        Err(error) => Err(error).context("could not write to standard output"),
    }
}

/// Flushes standard output; returns `true` when the reader has gone away.
fn flush_or_stop(stdout: &mut impl Write) -> anyhow::Result<bool> {
    match stdout.flush() {
        Ok(()) => Ok(false),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(true),
        Err(error) => Err(error).context("could not write to standard output"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse_like_kcat() {
        assert_eq!(
            StartPosition::parse("beginning").unwrap(),
            StartPosition::Beginning
        );
        assert_eq!(StartPosition::parse("end").unwrap(), StartPosition::End);
        assert_eq!(
            StartPosition::parse("42").unwrap(),
            StartPosition::Offset(42)
        );
        assert_eq!(StartPosition::parse("-5").unwrap(), StartPosition::Tail(5));
        assert_eq!(
            StartPosition::parse("@1700000000000").unwrap(),
            StartPosition::Timestamp(1_700_000_000_000)
        );
    }

    #[test]
    fn bad_start_positions_name_the_accepted_forms() {
        let error = StartPosition::parse("yesterday").unwrap_err().to_string();
        assert!(error.contains("beginning"), "{error}");
        assert!(StartPosition::parse("@soon").is_err());
        assert!(StartPosition::parse("-x").is_err());
    }

    #[test]
    fn exit_at_end_needs_every_watched_partition_finished() {
        let mut progress = Progress {
            end_offsets: Some(BTreeMap::from([(0, 3), (1, 0)])),
            ..Progress::default()
        };
        let watched = BTreeSet::from([0, 1]);
        assert!(!progress.all_finished(&watched));
        assert!(progress.is_past_end(0, 3));
        assert!(!progress.is_past_end(0, 2));
        progress.finished.extend([0, 1]);
        assert!(progress.all_finished(&watched));
        assert!(!progress.all_finished(&BTreeSet::new()));
    }

    #[test]
    fn without_exit_at_end_nothing_is_ever_past_the_end() {
        let progress = Progress::default();
        assert!(!progress.is_past_end(0, i64::MAX));
        assert!(!progress.all_finished(&BTreeSet::from([0])));
    }
}
