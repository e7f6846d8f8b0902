//! `strom perf consume`: read N records as fast as librdkafka delivers them and report
//! throughput and the time to the first record, like Kafka's `kafka-consumer-perf-test`.
//!
//! Without `--group` every partition is assigned from the beginning (or the end) and nothing
//! is committed; with `--group` the consumer subscribes as a member of that group, starting
//! from its committed offsets or `--from` where it has none, and commits automatically.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;

use super::{mib, per_second, print_result, PROGRESS_EVERY};
use crate::client::{parse_key_values, ClientOptions};

/// How long one poll waits before the loop re-checks its stop conditions.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How many poll errors are kept to print.
const ERRORS_KEPT: usize = 5;

/// `--from`: where reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum From {
    /// The log start of every partition.
    Beginning,
    /// The end of every partition: only records written after the start are read.
    End,
}

/// Arguments of `perf consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic to read.
    #[arg(long)]
    pub topic: String,
    /// How many records to read.
    #[arg(long, value_name = "N")]
    pub num_records: u64,
    /// Consume as a member of this group (subscribe) instead of assigning every partition.
    #[arg(long)]
    pub group: Option<String>,
    /// Where to start (with --group: where the group has no committed offset).
    #[arg(long, value_enum, default_value = "beginning")]
    pub from: From,
    /// A librdkafka consumer property, KEY=VALUE; repeatable (e.g. fetch.wait.max.ms=10).
    #[arg(long = "consumer-prop", value_name = "KEY=VALUE")]
    pub consumer_props: Vec<String>,
}

/// The totals of a `perf consume` run (`--json`).
#[derive(Debug, Serialize)]
struct ConsumeResult<'a> {
    mode: &'static str,
    topic: &'a str,
    group: Option<&'a str>,
    /// Records read.
    records: u64,
    /// Key and value bytes read.
    bytes: u64,
    /// Whether `--num-records` were read (else `--timeout-ms` passed without data).
    complete: bool,
    /// Poll errors (the consumer retries; they are counted, not fatal).
    errors: u64,
    /// From the assignment (or subscription) to the first record.
    time_to_first_record_ms: Option<f64>,
    /// From the assignment (or subscription) to the last record.
    elapsed_s: f64,
    /// Rates over `elapsed_s`.
    records_per_sec: f64,
    mib_per_sec: f64,
    /// Rates from the first record to the last: the fetch rate without start-up.
    fetch_records_per_sec: f64,
    fetch_mib_per_sec: f64,
}

/// What the read loop saw.
#[derive(Debug, Default)]
struct Tally {
    records: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    errors: u64,
    error_texts: Vec<String>,
}

/// Runs `perf consume`.
pub fn run(options: &ClientOptions, args: ConsumeArgs) -> anyhow::Result<()> {
    if args.num_records == 0 {
        bail!("--num-records must be at least 1");
    }
    let consumer_props = parse_key_values(&args.consumer_props, "--consumer-prop")?;
    let Some(partitions) = super::topic_partitions(options, &args.topic, None)? else {
        bail!(
            "topic {:?} does not exist (use `strom topic list`)",
            args.topic
        );
    };
    let reset = match args.from {
        From::Beginning => "earliest",
        From::End => "latest",
    };
    // librdkafka needs a group id even to assign; without --group a throwaway one is used and
    // nothing is committed.
    let throwaway_group = format!("strom-perf-{}", std::process::id());
    let mut config = options.config(&[
        ("client.id", "strom-perf"),
        (
            "group.id",
            args.group.as_deref().unwrap_or(&throwaway_group),
        ),
        (
            "enable.auto.commit",
            if args.group.is_some() {
                "true"
            } else {
                "false"
            },
        ),
        ("auto.offset.reset", reset),
        ("enable.partition.eof", "false"),
    ]);
    for (key, value) in &consumer_props {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config
        .create()
        .context("could not create the Kafka consumer (check --consumer-prop/--prop values)")?;

    // Learn the leaders on this client before the clock starts: librdkafka defers the first
    // offset lookup of a partition whose leader it does not know yet by its retry interval
    // (500 ms), which would count as start-up time that no real, running consumer has.
    options.fetch_metadata(&consumer, Some(&args.topic))?;
    let start = Instant::now();
    if args.group.is_some() {
        consumer
            .subscribe(&[&args.topic])
            .with_context(|| format!("could not subscribe to {:?}", args.topic))?;
    } else {
        let offset = match args.from {
            From::Beginning => Offset::Beginning,
            From::End => Offset::End,
        };
        let mut list = TopicPartitionList::with_capacity(partitions.len());
        for &partition in &partitions {
            list.add_partition_offset(&args.topic, partition, offset)
                .context("could not build the partition assignment")?;
        }
        consumer
            .assign(&list)
            .with_context(|| format!("could not assign partitions of {:?}", args.topic))?;
    }

    let tally = read(&consumer, args.num_records, options.timeout(), start);
    let complete = tally.records >= args.num_records;
    let elapsed = tally.last.map_or(Duration::ZERO, |last| last - start);
    let fetch_time = match (tally.first, tally.last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    };
    let result = ConsumeResult {
        mode: "consume",
        topic: &args.topic,
        group: args.group.as_deref(),
        records: tally.records,
        bytes: tally.bytes,
        complete,
        errors: tally.errors,
        time_to_first_record_ms: tally
            .first
            .map(|first| (first - start).as_secs_f64() * 1000.0),
        elapsed_s: elapsed.as_secs_f64(),
        records_per_sec: per_second(tally.records as f64, elapsed),
        mib_per_sec: per_second(mib(tally.bytes), elapsed),
        fetch_records_per_sec: per_second(tally.records as f64, fetch_time),
        fetch_mib_per_sec: per_second(mib(tally.bytes), fetch_time),
    };
    let text = format!(
        "{} records ({:.2} MiB) read in {:.3} s: {:.1} records/sec ({:.2} MiB/sec); first record \
         after {}; from the first record on: {:.1} records/sec ({:.2} MiB/sec); {} errors.\n",
        result.records,
        mib(result.bytes),
        result.elapsed_s,
        result.records_per_sec,
        result.mib_per_sec,
        result
            .time_to_first_record_ms
            .map_or("-".to_owned(), |ms| format!("{ms:.3} ms")),
        result.fetch_records_per_sec,
        result.fetch_mib_per_sec,
        result.errors
    );
    print_result(options, &result, &text)?;
    for error in &tally.error_texts {
        eprintln!("consumer error: {error}");
    }
    if !complete {
        bail!(
            "read {} of {} record(s) from {:?}: no record arrived for {} ms (--timeout-ms)",
            tally.records,
            args.num_records,
            args.topic,
            options.timeout_ms
        );
    }
    Ok(())
}

/// Polls until `wanted` records were read or none arrived for `idle_limit`, printing a
/// progress line to standard error every few seconds.
fn read(consumer: &BaseConsumer, wanted: u64, idle_limit: Duration, start: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut last_activity = start;
    let mut next_progress = start + PROGRESS_EVERY;
    let mut window = (start, 0u64, 0u64);
    while tally.records < wanted {
        let now = match consumer.poll(POLL_INTERVAL) {
            Some(Ok(message)) => {
                let now = Instant::now();
                tally.records += 1;
                tally.bytes +=
                    (message.key().map_or(0, <[u8]>::len) + message.payload_len()) as u64;
                tally.first.get_or_insert(now);
                tally.last = Some(now);
                last_activity = now;
                now
            }
            Some(Err(error)) => {
                tally.errors += 1;
                if tally.error_texts.len() < ERRORS_KEPT {
                    tally.error_texts.push(error.to_string());
                }
                Instant::now()
            }
            None => {
                let now = Instant::now();
                if now - last_activity >= idle_limit {
                    break;
                }
                now
            }
        };
        if now >= next_progress {
            let (since, records, bytes) = window;
            let elapsed = now - since;
            eprintln!(
                "{} records read, {:.1} records/sec ({:.2} MiB/sec).",
                tally.records - records,
                per_second((tally.records - records) as f64, elapsed),
                per_second(mib(tally.bytes - bytes), elapsed)
            );
            window = (now, tally.records, tally.bytes);
            next_progress = now + PROGRESS_EVERY;
        }
    }
    tally
}
