//! `strom perf produce|consume|e2e`: load generators that measure throughput and latency
//! against any Kafka-compatible cluster through librdkafka, modelled on Kafka's
//! `kafka-producer-perf-test` / `kafka-consumer-perf-test` and librdkafka's
//! `rdkafka_performance`.
//!
//! Every load is bounded: produce by `--num-records` (and each record by librdkafka's
//! `message.timeout.ms`), consume by `--num-records` and `--timeout-ms` without data, e2e by
//! `--duration` and `--timeout-ms` without data once the producer is done. Progress goes to
//! standard error every few seconds; the totals go to standard output, as a line like Kafka's
//! tools print or, with `--json`, as one JSON object.
//!
//! Latencies are kept in a fixed-size log-linear histogram in microseconds
//! ([`histogram::Histogram`]) and reported in milliseconds; throughput in MiB/s (2^20 bytes,
//! which Kafka's tools call MB/sec).

mod consume;
mod e2e;
mod histogram;
mod load;
mod pacing;
mod produce;
mod raw;

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use crate::client::ClientOptions;

use self::histogram::Histogram;

/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `strom perf` subcommands.
#[derive(Debug, Subcommand)]
pub enum PerfCommand {
    /// Produce N records of B bytes (optionally at a fixed rate) and report throughput and
    /// send → acknowledgement latency.
    Produce(produce::ProduceArgs),
    /// Produce N records with pre-encoded Produce requests over a few pipelined connections,
    /// without librdkafka: the broker's own ceiling (see `perf/raw.rs`).
    ProduceRaw(raw::RawProduceArgs),
    /// Read N records and report throughput and the time to the first record.
    Consume(consume::ConsumeArgs),
    /// Produce at a fixed rate for a while, consume in the same process, and report
    /// produce → consume latency.
    E2e(e2e::E2eArgs),
}

/// Runs a `perf` subcommand.
pub fn run(options: &ClientOptions, command: PerfCommand) -> anyhow::Result<()> {
    match command {
        PerfCommand::Produce(args) => produce::run(options, args),
        PerfCommand::ProduceRaw(args) => raw::run(options, args),
        PerfCommand::Consume(args) => consume::run(options, args),
        PerfCommand::E2e(args) => e2e::run(options, args),
    }
}

/// Latency percentiles in milliseconds, as printed and as serialised in `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    count: u64,
    min_ms: f64,
    avg_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    p99_9_ms: f64,
    max_ms: f64,
}

impl LatencySummary {
    /// Summarises a histogram of microseconds.
    fn of(histogram: &Histogram) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencySummary {
            count: histogram.count(),
            min_ms: ms(histogram.min()),
            avg_ms: histogram.mean() / 1000.0,
            p50_ms: ms(histogram.percentile(50.0)),
            p95_ms: ms(histogram.percentile(95.0)),
            p99_ms: ms(histogram.percentile(99.0)),
            p99_9_ms: ms(histogram.percentile(99.9)),
            max_ms: ms(histogram.max()),
        }
    }

    /// `avg 1.234 ms, p50 …, max … ms`.
    fn text(&self) -> String {
        format!(
            "avg {:.3} ms, p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
            self.avg_ms, self.p50_ms, self.p95_ms, self.p99_ms, self.p99_9_ms, self.max_ms
        )
    }
}

/// Bytes in MiB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `count / seconds`, 0 when no time passed.
fn per_second(count: f64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count / seconds
    } else {
        0.0
    }
}

/// A payload of `size` random upper-case letters, like Kafka's producer perf test, so that
/// compression ratios are comparable with that tool's. Generated once per run.
fn random_payload(size: usize) -> Vec<u8> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()).rotate_left(32);
    let mut state = seed;
    (0..size)
        .map(|_| b'A' + (splitmix(&mut state) % 26) as u8)
        .collect()
}

/// SplitMix64: a tiny, good-enough generator for payload bytes and run ids.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The topic's partition ids, in order. When the topic does not exist and `create` gives a
/// partition count, the topic is created with that many partitions and the broker's default
/// replication first; otherwise a missing topic is `None`.
fn topic_partitions(
    options: &ClientOptions,
    topic: &str,
    create: Option<i32>,
) -> anyhow::Result<Option<Vec<i32>>> {
    let consumer = options.metadata_consumer()?;
    let lookup = || -> anyhow::Result<Option<Vec<i32>>> {
        let partitions = options.partitions_of(&consumer, topic)?;
        Ok(partitions.map(|ids| ids.into_iter().collect()))
    };
    if let Some(partitions) = lookup()? {
        if let Some(wanted) = create.filter(|&n| n as usize != partitions.len()) {
            eprintln!(
                "note: topic {topic:?} already has {} partition(s); --partitions {wanted} \
                 applies only when it is created",
                partitions.len()
            );
        }
        return Ok(Some(partitions));
    }
    let Some(count) = create else {
        return Ok(None);
    };
    if count < 1 {
        bail!("--partitions must be at least 1, got {count}");
    }
    let admin = options.admin()?;
    let new_topic = NewTopic::new(topic, count, TopicReplication::Fixed(-1));
    let results = crate::runtime()?
        .block_on(admin.create_topics([&new_topic], &options.admin_options()))
        .map_err(|error| options.unreachable(error))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("could not create topic {name:?}: {code}"),
        }
    }
    let deadline = Instant::now() + options.timeout();
    loop {
        if let Some(partitions) = lookup()? {
            return Ok(Some(partitions));
        }
        if Instant::now() >= deadline {
            bail!(
                "topic {topic:?} was created but its partitions did not appear in the metadata \
                 within {} ms",
                options.timeout_ms
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `work` while a thread prints `line()` to standard error every [`PROGRESS_EVERY`];
/// the thread stops as soon as `work` returns (or panics).
fn with_progress<R>(line: impl FnMut() -> String + Send, work: impl FnOnce() -> R) -> R {
    with_progress_every(PROGRESS_EVERY, line, work)
}

fn with_progress_every<R>(
    every: Duration,
    mut line: impl FnMut() -> String + Send,
    work: impl FnOnce() -> R,
) -> R {
    let (stop, stopped) = mpsc::channel::<()>();
    thread::scope(|scope| {
        scope.spawn(move || {
            let start = Instant::now();
            let mut next = every;
            while let Err(RecvTimeoutError::Timeout) =
                stopped.recv_timeout(next.saturating_sub(start.elapsed()))
            {
                eprintln!("{}", line());
                next += every;
            }
        });
        let result = work();
        drop(stop);
        result
    })
}

/// Latency and count of the records completed since the last progress line.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    count: u64,
    sum_us: u64,
    max_us: u64,
}

impl Window {
    fn record(&mut self, micros: u64) {
        self.count += 1;
        self.sum_us += micros;
        self.max_us = self.max_us.max(micros);
    }

    fn avg_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_us as f64 / self.count as f64 / 1000.0
        }
    }

    fn max_ms(&self) -> f64 {
        self.max_us as f64 / 1000.0
    }
}

/// Prints `value` as JSON, or `text` on standard output.
fn print_result<T: Serialize>(
    options: &ClientOptions,
    value: &T,
    text: &str,
) -> anyhow::Result<()> {
    if options.json {
        crate::output::print_json(value)
    } else {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .context("could not write the result")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn payload_is_letters_of_the_requested_size() {
        let payload = random_payload(4096);
        assert_eq!(payload.len(), 4096);
        assert!(payload.iter().all(u8::is_ascii_uppercase));
        assert!(payload.iter().any(|&b| b != payload[0]), "not constant");
    }

    #[test]
    fn summary_is_in_milliseconds() {
        let mut histogram = Histogram::new();
        for micros in [1000, 2000, 3000, 4000] {
            histogram.record(micros);
        }
        let summary = LatencySummary::of(&histogram);
        assert_eq!(summary.count, 4);
        assert_eq!(summary.min_ms, 1.0);
        assert_eq!(summary.avg_ms, 2.5);
        assert_eq!(summary.max_ms, 4.0);
        assert!(
            summary.text().contains("p99.9 4.000 ms"),
            "{}",
            summary.text()
        );
    }

    #[test]
    fn progress_lines_stop_when_the_work_ends() {
        let lines = AtomicU32::new(0);
        let result = with_progress_every(
            Duration::from_millis(20),
            || {
                lines.fetch_add(1, Ordering::Relaxed);
                String::new()
            },
            || {
                thread::sleep(Duration::from_millis(110));
                7
            },
        );
        assert_eq!(result, 7);
        let printed = lines.load(Ordering::Relaxed);
        assert!((3..=6).contains(&printed), "{printed} lines");
    }

    #[test]
    fn rates_handle_zero_time() {
        assert_eq!(per_second(10.0, Duration::ZERO), 0.0);
        assert_eq!(per_second(10.0, Duration::from_millis(500)), 20.0);
        assert_eq!(mib(3 * 1024 * 1024), 3.0);
    }
}
