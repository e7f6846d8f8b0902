//! `strom perf e2e`: end-to-end latency at a fixed rate, produce → consume, in one process.
//!
//! A consumer is assigned to the current end of every partition of the topic first (exact
//! offsets from ListOffsets, so no record of the run can be missed) and starts polling on its
//! own thread; after a short warm-up, the producer sends `--rate` records/s for `--duration`
//! seconds. Each record's first 8 bytes are its send time in nanoseconds since an origin the
//! producer and the consumer share (both use this process's monotonic clock); the next 8 are
//! a random id of this run, so records from other producers on the same topic are counted
//! apart and left out. The consumer measures send → receive latency; the producer's delivery
//! reports measure send → acknowledgement latency.
//!
//! The run ends when the consumer has received every acknowledged record, or when no record
//! arrived for `--timeout-ms` after the producer finished.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;

use super::histogram::Histogram;
use super::load::{self, LoadProducer, Transactions, TxnArgs, TxnSummary};
use super::{per_second, print_result, random_payload, with_progress, LatencySummary, Window};
use crate::client::{parse_key_values, ClientOptions};
use crate::produce::{Acks, Compression};

/// Bytes of the send time and the run id at the start of every payload.
const STAMP_LEN: usize = 16;

/// How long the consumer polls before the producer starts, so that its connection and first
/// fetch are set up and do not count against the first records.
const WARM_UP: Duration = Duration::from_secs(1);

/// How long one poll waits before the consumer re-checks whether to stop.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Arguments of `perf e2e`.
#[derive(Debug, Args)]
pub struct E2eArgs {
    /// The topic to use (created with --partitions if it does not exist).
    #[arg(long)]
    pub topic: String,
    /// Records per second to send.
    #[arg(long, value_name = "R")]
    pub rate: u64,
    /// How long to send, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: f64,
    /// Bytes per record value (at least 16: send time and run id).
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    pub record_size: usize,
    /// Acknowledgements to wait for.
    #[arg(long, value_enum, default_value = "all")]
    pub acks: Acks,
    /// Compression codec for record batches.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compression,
    /// Partitions to create the topic with if it does not exist.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub partitions: i32,
    /// A librdkafka producer property, KEY=VALUE; repeatable (e.g. linger.ms=1).
    #[arg(long = "producer-prop", value_name = "KEY=VALUE")]
    pub producer_props: Vec<String>,
    /// A librdkafka consumer property, KEY=VALUE; repeatable (e.g. fetch.wait.max.ms=10).
    #[arg(long = "consumer-prop", value_name = "KEY=VALUE")]
    pub consumer_props: Vec<String>,
    #[command(flatten)]
    pub txn: TxnArgs,
}

/// The totals of a `perf e2e` run (`--json`).
#[derive(Debug, Serialize)]
struct E2eResult<'a> {
    mode: &'static str,
    topic: &'a str,
    /// `--rate` and `--duration`.
    rate: u64,
    duration_s: f64,
    record_size: usize,
    acks: &'static str,
    /// Records enqueued, acknowledged, failed, and received by the consumer.
    sent: u64,
    acked: u64,
    errors: u64,
    received: u64,
    /// Records on the topic from other producers, not counted.
    foreign_records: u64,
    /// How long sending took, and the rate achieved.
    send_elapsed_s: f64,
    achieved_rate: f64,
    /// Send → acknowledgement latency.
    ack_latency: LatencySummary,
    /// Send → receive latency.
    e2e_latency: LatencySummary,
    /// With `--transactional-id`: commits and commit latency.
    transactions: Option<TxnSummary>,
}

/// What the consumer thread measured.
#[derive(Debug, Default)]
struct Received {
    latency: Histogram,
    window: Window,
    records: u64,
    foreign: u64,
    errors: Vec<String>,
}

/// What the producer tells the consumer thread.
struct Control {
    /// Set once the producer has finished; `expected` then holds the acknowledged count.
    producer_done: AtomicBool,
    expected: AtomicU64,
}

/// Runs `perf e2e`.
pub fn run(options: &ClientOptions, args: E2eArgs) -> anyhow::Result<()> {
    if args.rate == 0 {
        bail!("--rate must be at least 1 record/s");
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--duration must be a positive number of seconds");
    }
    if args.record_size < STAMP_LEN {
        bail!("--record-size must be at least {STAMP_LEN} bytes (send time and run id)");
    }
    let count = (args.rate as f64 * args.duration).ceil() as u64;
    let producer_props = parse_key_values(&args.producer_props, "--producer-prop")?;
    let consumer_props = parse_key_values(&args.consumer_props, "--consumer-prop")?;
    let commit_interval = args.txn.interval()?;
    let partitions = super::topic_partitions(options, &args.topic, Some(args.partitions))?
        .context("the topic has no partitions")?;

    let consumer = assign_at_end(options, &args.topic, &partitions, &consumer_props)?;
    let (mut config, flush_timeout) =
        load::producer_config(options, args.acks, args.compression, &producer_props);
    args.txn.configure(&mut config);
    let origin = Instant::now();
    let producer = load::create(&config, origin)?;
    // Connect before the clock matters.
    producer
        .client()
        .fetch_metadata(Some(&args.topic), options.timeout())
        .map_err(|error| options.unreachable(error))?;
    let mut transactions = commit_interval
        .map(|interval| Transactions::start(&producer, interval, flush_timeout))
        .transpose()?;

    let mut run_id_state = origin.elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    let run_id = super::splitmix(&mut run_id_state).to_le_bytes();
    let mut payload = random_payload(args.record_size);
    payload[8..STAMP_LEN].copy_from_slice(&run_id);

    let received = Mutex::new(Received::default());
    let control = Control {
        producer_done: AtomicBool::new(false),
        expected: AtomicU64::new(u64::MAX),
    };
    let idle_limit = options.timeout();
    let mut send_elapsed = Duration::ZERO;
    thread::scope(|scope| {
        scope.spawn(|| consume(&consumer, origin, run_id, &received, &control, idle_limit));
        thread::sleep(WARM_UP);
        let start = Instant::now();
        with_progress(progress_line(&producer, &received), || {
            load::send_all(
                &producer,
                &args.topic,
                &mut payload,
                count,
                Some(args.rate),
                transactions.as_mut(),
                |payload, sent_ns| payload[..8].copy_from_slice(&sent_ns.to_le_bytes()),
            );
            send_elapsed = start.elapsed();
            load::finish_all(&producer, transactions.as_mut(), flush_timeout);
            let acked = producer.context().stats().delivered;
            control.expected.store(acked, Ordering::SeqCst);
            control.producer_done.store(true, Ordering::SeqCst);
        });
    });

    let stats = producer.context().stats();
    let received = received
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let result = E2eResult {
        mode: "e2e",
        topic: &args.topic,
        rate: args.rate,
        duration_s: args.duration,
        record_size: args.record_size,
        acks: args.acks.config_value(),
        sent: count,
        acked: stats.delivered,
        errors: stats.failed,
        received: received.records,
        foreign_records: received.foreign,
        send_elapsed_s: send_elapsed.as_secs_f64(),
        achieved_rate: per_second(count as f64, send_elapsed),
        ack_latency: LatencySummary::of(&stats.latency),
        e2e_latency: LatencySummary::of(&received.latency),
        transactions: transactions.map(|t| t.summary(send_elapsed)),
    };
    let mut text = format!(
        "{} records of {} B at {} records/s (achieved {:.1}) for {:.1} s: {} acknowledged, \
         {} received, {} errors.\nsend → ack latency:     {}\nsend → consume latency: {}\n",
        result.sent,
        result.record_size,
        result.rate,
        result.achieved_rate,
        result.send_elapsed_s,
        result.acked,
        result.received,
        result.errors,
        result.ack_latency.text(),
        result.e2e_latency.text(),
    );
    if let Some(transactions) = &result.transactions {
        text.push_str(&format!("transactions: {}\n", transactions.text()));
    }
    print_result(options, &result, &text)?;
    for failure in &stats.failures {
        eprintln!("delivery failed: {failure}");
    }
    for error in &received.errors {
        eprintln!("consumer error: {error}");
    }
    if stats.failed > 0 {
        bail!("{} of {} record(s) were not delivered", stats.failed, count);
    }
    if received.records < stats.delivered {
        bail!(
            "the consumer received {} of {} acknowledged record(s) (no record for {} ms)",
            received.records,
            stats.delivered,
            options.timeout_ms
        );
    }
    Ok(())
}

/// A consumer assigned to the current high watermark of every partition.
fn assign_at_end(
    options: &ClientOptions,
    topic: &str,
    partitions: &[i32],
    consumer_props: &[(String, String)],
) -> anyhow::Result<BaseConsumer> {
    let group = format!("strom-perf-e2e-{}", std::process::id());
    let mut config = options.config(&[
        ("client.id", "strom-perf"),
        ("group.id", &group),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "latest"),
        ("enable.partition.eof", "false"),
    ]);
    for (key, value) in consumer_props {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config
        .create()
        .context("could not create the Kafka consumer (check --consumer-prop/--prop values)")?;
    let ends = options.list_offsets(&consumer, topic, partitions, -1)?;
    let mut list = TopicPartitionList::with_capacity(partitions.len());
    for &partition in partitions {
        let offset = ends
            .get(&partition)
            .and_then(|listed| listed.offset)
            .map_or(Offset::End, Offset::Offset);
        list.add_partition_offset(topic, partition, offset)
            .context("could not build the partition assignment")?;
    }
    consumer
        .assign(&list)
        .with_context(|| format!("could not assign partitions of {topic:?}"))?;
    Ok(consumer)
}

/// The consumer thread: polls and measures until every acknowledged record arrived, or none
/// arrived for `idle_limit` after the producer finished.
fn consume(
    consumer: &BaseConsumer,
    origin: Instant,
    run_id: [u8; 8],
    received: &Mutex<Received>,
    control: &Control,
    idle_limit: Duration,
) {
    let lock = || received.lock().unwrap_or_else(PoisonError::into_inner);
    let mut idle_since: Option<Instant> = None;
    loop {
        match consumer.poll(POLL_INTERVAL) {
            Some(Ok(message)) => {
                let now_ns = origin.elapsed().as_nanos() as u64;
                idle_since = None;
                let stamp = message
                    .payload()
                    .filter(|payload| payload.len() >= STAMP_LEN && payload[8..16] == run_id)
                    .map(|payload| u64::from_le_bytes(payload[..8].try_into().expect("8 bytes")));
                let mut received = lock();
                match stamp {
                    Some(sent_ns) => {
                        let micros = now_ns.saturating_sub(sent_ns) / 1000;
                        received.records += 1;
                        received.latency.record(micros);
                        received.window.record(micros);
                    }
                    None => received.foreign += 1,
                }
            }
            Some(Err(error)) => {
                let mut received = lock();
                if received.errors.len() < 5 {
                    received.errors.push(error.to_string());
                }
            }
            None => {}
        }
        if control.producer_done.load(Ordering::SeqCst) {
            if lock().records >= control.expected.load(Ordering::SeqCst) {
                return;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= idle_limit {
                return;
            }
        }
    }
}

/// A progress line: acknowledgements and receipts since the previous line.
fn progress_line<'a>(
    producer: &'a LoadProducer,
    received: &'a Mutex<Received>,
) -> impl FnMut() -> String + Send + 'a {
    let mut last = Instant::now();
    move || {
        let now = Instant::now();
        let acks = std::mem::take(&mut producer.context().stats().window);
        let receipts = std::mem::take(
            &mut received
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .window,
        );
        let elapsed = now - last;
        last = now;
        format!(
            "{} records acknowledged ({:.1}/sec, {:.3} ms avg, {:.3} ms max latency), \
             {} received ({:.1}/sec, {:.3} ms avg, {:.3} ms max end-to-end latency).",
            acks.count,
            per_second(acks.count as f64, elapsed),
            acks.avg_ms(),
            acks.max_ms(),
            receipts.count,
            per_second(receipts.count as f64, elapsed),
            receipts.avg_ms(),
            receipts.max_ms()
        )
    }
}
