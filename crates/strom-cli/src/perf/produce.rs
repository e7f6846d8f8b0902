//! `strom perf produce`: send N records of B bytes, as fast as allowed or at `--throughput`
//! records/s, and report throughput and send → acknowledgement latency, like Kafka's
//! `kafka-producer-perf-test`.

use std::time::Instant;

use anyhow::bail;
use clap::Args;
use rdkafka::producer::Producer;
use serde::Serialize;

use super::load::{self, LoadProducer, Transactions, TxnArgs, TxnSummary};
use super::{mib, per_second, print_result, random_payload, with_progress, LatencySummary};
use crate::client::{parse_key_values, ClientOptions};
use crate::produce::{Acks, Compression};

/// Arguments of `perf produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic to write to.
    #[arg(long)]
    pub topic: String,
    /// How many records to send.
    #[arg(long, value_name = "N")]
    pub num_records: u64,
    /// Bytes per record value (no key).
    #[arg(long, value_name = "BYTES")]
    pub record_size: usize,
    /// Records per second to send at most; -1 for no limit.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true, value_name = "R")]
    pub throughput: i64,
    /// Acknowledgements to wait for.
    #[arg(long, value_enum, default_value = "all")]
    pub acks: Acks,
    /// Compression codec for record batches.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compression,
    /// Create the topic with N partitions (broker-default replication) if it does not exist;
    /// otherwise a missing topic is left to the broker's auto-creation.
    #[arg(long, visible_alias = "partitions-hint", value_name = "N")]
    pub partitions: Option<i32>,
    /// A librdkafka producer property, KEY=VALUE; repeatable (e.g. linger.ms=5).
    #[arg(long = "producer-prop", value_name = "KEY=VALUE")]
    pub producer_props: Vec<String>,
    #[command(flatten)]
    pub txn: TxnArgs,
}

/// The totals of a `perf produce` run (`--json`).
#[derive(Debug, Serialize)]
struct ProduceResult<'a> {
    mode: &'static str,
    topic: &'a str,
    /// Records acknowledged.
    records: u64,
    /// Records that failed to enqueue or to be acknowledged.
    errors: u64,
    record_size: usize,
    /// Payload bytes acknowledged.
    bytes: u64,
    elapsed_s: f64,
    records_per_sec: f64,
    mib_per_sec: f64,
    acks: &'static str,
    compression: &'static str,
    /// `--throughput`, when limited.
    throughput_limit: Option<u64>,
    /// Send → acknowledgement latency.
    latency: LatencySummary,
    /// With `--transactional-id`: commits and commit latency.
    transactions: Option<TxnSummary>,
}

/// Runs `perf produce`.
pub fn run(options: &ClientOptions, args: ProduceArgs) -> anyhow::Result<()> {
    let rate = match args.throughput {
        0 => bail!("--throughput must be positive, or -1 for no limit"),
        limit if limit < 0 => None,
        limit => Some(limit as u64),
    };
    if args.num_records == 0 {
        bail!("--num-records must be at least 1");
    }
    let producer_props = parse_key_values(&args.producer_props, "--producer-prop")?;
    let commit_interval = args.txn.interval()?;
    if super::topic_partitions(options, &args.topic, args.partitions)?.is_none() {
        eprintln!(
            "note: topic {:?} does not exist; the broker's auto-creation applies \
             (or pass --partitions N to create it)",
            args.topic
        );
    }
    let (mut config, flush_timeout) =
        load::producer_config(options, args.acks, args.compression, &producer_props);
    args.txn.configure(&mut config);
    let producer = load::create(&config, Instant::now())?;
    let mut payload = random_payload(args.record_size);
    let mut transactions = commit_interval
        .map(|interval| Transactions::start(&producer, interval, flush_timeout))
        .transpose()?;

    let start = Instant::now();
    with_progress(progress_line(&producer, args.record_size), || {
        load::send_all(
            &producer,
            &args.topic,
            &mut payload,
            args.num_records,
            rate,
            transactions.as_mut(),
            |_, _| {},
        );
        load::finish_all(&producer, transactions.as_mut(), flush_timeout);
    });
    let elapsed = start.elapsed();

    let stats = producer.context().stats();
    let bytes = stats.delivered * args.record_size as u64;
    let result = ProduceResult {
        mode: "produce",
        topic: &args.topic,
        records: stats.delivered,
        errors: stats.failed,
        record_size: args.record_size,
        bytes,
        elapsed_s: elapsed.as_secs_f64(),
        records_per_sec: per_second(stats.delivered as f64, elapsed),
        mib_per_sec: per_second(mib(bytes), elapsed),
        acks: args.acks.config_value(),
        compression: args.compression.config_value(),
        throughput_limit: rate,
        latency: LatencySummary::of(&stats.latency),
        transactions: transactions.map(|t| t.summary(elapsed)),
    };
    let latency = &result.latency;
    let mut text = format!(
        "{} records sent, {:.1} records/sec ({:.2} MiB/sec), {:.3} ms avg latency, \
         {:.3} ms max latency, {:.3} ms 50th, {:.3} ms 95th, {:.3} ms 99th, {:.3} ms 99.9th; \
         {} errors.\n",
        result.records,
        result.records_per_sec,
        result.mib_per_sec,
        latency.avg_ms,
        latency.max_ms,
        latency.p50_ms,
        latency.p95_ms,
        latency.p99_ms,
        latency.p99_9_ms,
        result.errors
    );
    if let Some(transactions) = &result.transactions {
        text.push_str(&format!("{}.\n", transactions.text()));
    }
    print_result(options, &result, &text)?;
    for failure in &stats.failures {
        eprintln!("delivery failed: {failure}");
    }
    if stats.failed > 0 {
        bail!(
            "{} of {} record(s) were not delivered to {:?}",
            stats.failed,
            args.num_records,
            args.topic
        );
    }
    Ok(())
}

/// Kafka's progress line: what was acknowledged since the previous line.
fn progress_line(
    producer: &LoadProducer,
    record_size: usize,
) -> impl FnMut() -> String + Send + '_ {
    let mut last = Instant::now();
    move || {
        let now = Instant::now();
        let window = std::mem::take(&mut producer.context().stats().window);
        let elapsed = now - last;
        last = now;
        format!(
            "{} records sent, {:.1} records/sec ({:.2} MiB/sec), {:.3} ms avg latency, \
             {:.3} ms max latency.",
            window.count,
            per_second(window.count as f64, elapsed),
            per_second(mib(window.count * record_size as u64), elapsed),
            window.avg_ms(),
            window.max_ms()
        )
    }
}
