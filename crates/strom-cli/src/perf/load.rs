//! The load producer shared by `perf produce` and `perf e2e`.
//!
//! Records are enqueued with `ThreadedProducer::send`, which returns at once (a full local
//! queue comes back as `QueueFull`, and the loop backs off briefly and retries), so many
//! records are in flight. Each record carries its enqueue time, in nanoseconds since the run's
//! origin, as its delivery opaque (a plain `usize`, so no allocation per record); librdkafka's
//! delivery report, handled on the producer's polling thread, turns it into the send →
//! acknowledgement latency the moment the acknowledgement is processed. (A `FutureProducer`
//! would only observe a delivery when the send loop got round to awaiting its future, which
//! inflates latencies under load.) The payload is copied by librdkafka at enqueue, so one
//! buffer serves every record.
//!
//! With `--transactional-id`, [`Transactions`] runs the load in transactions: librdkafka's
//! `init_transactions` once, then `commit_transaction` (which first waits for every record
//! in flight) and `begin_transaction` whenever `--commit-interval-ms` has passed since the
//! transaction began, checked before each record is enqueued, and a last commit at the end.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::ClientConfig;

use super::histogram::Histogram;
use super::pacing::Pacer;
use super::{LatencySummary, Window};
use crate::client::ClientOptions;
use crate::produce::{Acks, Compression};

/// How long the send loop waits before retrying when librdkafka's queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_micros(500);

/// librdkafka's `message.timeout.ms` unless the user sets it: Kafka's `delivery.timeout.ms`
/// default. It bounds how long any record may stay unacknowledged.
pub const DEFAULT_MESSAGE_TIMEOUT_MS: u64 = 120_000;

/// How often a commit checks whether every record of the transaction is acknowledged.
const IN_FLIGHT_POLL: Duration = Duration::from_micros(200);

/// How many failure reasons are kept to print.
const FAILURES_KEPT: usize = 5;

/// What the delivery reports told so far.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Send → acknowledgement latency of every acknowledged record, in microseconds.
    pub latency: Histogram,
    /// Acknowledged records.
    pub delivered: u64,
    /// Records that failed, at enqueue or in delivery.
    pub failed: u64,
    /// The first few failure reasons.
    pub failures: Vec<String>,
    /// Acknowledgements since the last progress line.
    pub window: Window,
}

impl DeliveryStats {
    fn fail(&mut self, reason: String) {
        self.failed += 1;
        if self.failures.len() < FAILURES_KEPT {
            self.failures.push(reason);
        }
    }
}

/// The producer context: the run's clock origin and the delivery statistics.
pub struct LoadContext {
    origin: Instant,
    stats: Mutex<DeliveryStats>,
}

impl LoadContext {
    /// Nanoseconds since the run's origin.
    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// The statistics, locked.
    pub fn stats(&self) -> MutexGuard<'_, DeliveryStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientContext for LoadContext {}

impl ProducerContext for LoadContext {
    /// The enqueue time in nanoseconds since the origin.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let latency_us = self.now_ns().saturating_sub(sent_ns as u64) / 1000;
        let mut stats = self.stats();
        match result {
            Ok(_) => {
                stats.delivered += 1;
                stats.latency.record(latency_us);
                stats.window.record(latency_us);
            }
            Err((error, _)) => stats.fail(error.to_string()),
        }
    }
}

/// The producer used by the load generators.
pub type LoadProducer = ThreadedProducer<LoadContext>;

/// Creates the load producer from a complete configuration; `origin` is the clock every
/// latency is measured against.
pub fn create(config: &ClientConfig, origin: Instant) -> anyhow::Result<LoadProducer> {
    config
        .create_with_context(LoadContext {
            origin,
            stats: Mutex::new(DeliveryStats::default()),
        })
        .context("could not create the Kafka producer (check --producer-prop/--prop values)")
}

/// Enqueues `count` records of `payload` to `topic`, at most `rate` per second when given.
/// Before each attempt `stamp(payload, now_ns)` may write the send time into the payload.
/// Returns how many records were enqueued; failures to enqueue are counted in the stats.
pub fn send_all(
    producer: &LoadProducer,
    topic: &str,
    payload: &mut [u8],
    count: u64,
    rate: Option<u64>,
    mut transactions: Option<&mut Transactions>,
    mut stamp: impl FnMut(&mut [u8], u64),
) -> u64 {
    let context = producer.context();
    let mut pacer = rate.map(|rate| Pacer::new(rate, context.now_ns()));
    let mut enqueued = 0;
    for _ in 0..count {
        if let Some(pacer) = &mut pacer {
            while let Some(wait) = pacer.acquire(context.now_ns()) {
                thread::sleep(wait);
            }
        }
        if let Some(transactions) = transactions.as_deref_mut() {
            if let Err(error) = transactions.tick(producer) {
                context
                    .stats()
                    .fail(format!("transaction failed: {error:#}"));
                break;
            }
        }
        loop {
            let sent_ns = context.now_ns();
            stamp(payload, sent_ns);
            let record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, sent_ns as usize)
                .payload(&*payload);
            match producer.send(record) {
                Ok(()) => {
                    enqueued += 1;
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    thread::sleep(QUEUE_FULL_BACKOFF);
                }
                Err((error, _)) => {
                    context.stats().fail(format!("could not enqueue: {error}"));
                    break;
                }
            }
        }
    }
    enqueued
}

/// Waits for every enqueued record to be acknowledged or to fail. Records still in flight
/// after `timeout` are purged, which reports them to the delivery callback as failed.
pub fn finish(producer: &LoadProducer, timeout: Duration) {
    if let Err(error) = producer.flush(timeout) {
        let stuck = producer.in_flight_count().max(0);
        producer.purge(PurgeConfig::default().queue().inflight());
        let _ = producer.flush(Duration::from_secs(5));
        producer.context().stats().failures.insert(
            0,
            format!(
                "{stuck} record(s) still unacknowledged after {} s: {error}",
                timeout.as_secs()
            ),
        );
    }
}

/// [`finish`], after the last commit when the run is transactional; a failed commit counts
/// as a failure.
pub fn finish_all(
    producer: &LoadProducer,
    transactions: Option<&mut Transactions>,
    timeout: Duration,
) {
    if let Some(transactions) = transactions {
        if let Err(error) = transactions.commit(producer) {
            producer
                .context()
                .stats()
                .fail(format!("transaction failed: {error:#}"));
        }
    }
    finish(producer, timeout);
}

/// The producer configuration of a load run: our connection options, the acks and
/// compression flags, [`DEFAULT_MESSAGE_TIMEOUT_MS`], then the user's `--producer-prop`
/// overrides. Returns it with the flush timeout that fits its `message.timeout.ms`.
pub fn producer_config(
    options: &ClientOptions,
    acks: Acks,
    compression: Compression,
    producer_props: &[(String, String)],
) -> (ClientConfig, Duration) {
    let default_timeout = DEFAULT_MESSAGE_TIMEOUT_MS.to_string();
    let mut config = options.config(&[
        ("client.id", "strom-perf"),
        ("acks", acks.config_value()),
        ("compression.type", compression.config_value()),
        ("message.timeout.ms", &default_timeout),
    ]);
    for (key, value) in producer_props {
        config.set(key, value);
    }
    let flush_timeout = crate::client::flush_timeout(&config);
    (config, flush_timeout)
}

/// `--transactional-id` and `--commit-interval-ms`, shared by `perf produce` and `perf e2e`.
#[derive(Debug, Args)]
pub struct TxnArgs {
    /// Produce in transactions under this transactional.id: init_transactions once, then
    /// commit and begin the next transaction every --commit-interval-ms.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
    /// With --transactional-id: how long each transaction stays open, in milliseconds
    /// (default 100).
    #[arg(long, value_name = "MS")]
    pub commit_interval_ms: Option<u64>,
}

impl TxnArgs {
    /// The commit interval when transactional; an error for an interval without an id.
    pub fn interval(&self) -> anyhow::Result<Option<Duration>> {
        match (&self.transactional_id, self.commit_interval_ms) {
            (None, None) => Ok(None),
            (None, Some(_)) => bail!("--commit-interval-ms needs --transactional-id"),
            (Some(_), Some(0)) => bail!("--commit-interval-ms must be at least 1"),
            (Some(_), ms) => Ok(Some(Duration::from_millis(ms.unwrap_or(100)))),
        }
    }

    /// Sets `transactional.id` on a producer configuration, and `transaction.timeout.ms` to
    /// its `message.timeout.ms` unless set (librdkafka refuses a longer message timeout).
    pub fn configure(&self, config: &mut ClientConfig) {
        if let Some(id) = &self.transactional_id {
            config.set("transactional.id", id);
            if config.get("transaction.timeout.ms").is_none() {
                if let Some(timeout) = config.get("message.timeout.ms").map(str::to_owned) {
                    config.set("transaction.timeout.ms", timeout);
                }
            }
        }
    }
}

/// The transactions of a transactional load run (see the module documentation).
pub struct Transactions {
    interval: Duration,
    timeout: Duration,
    began: Instant,
    /// Commits so far.
    pub commits: u64,
    /// How long each `commit_transaction` took, in microseconds.
    pub commit_latency: Histogram,
}

impl Transactions {
    /// Initialises the producer's transactions and begins the first one; `timeout` bounds
    /// every transactional call.
    pub fn start(
        producer: &LoadProducer,
        interval: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Transactions> {
        producer
            .init_transactions(timeout)
            .context("init_transactions failed")?;
        producer
            .begin_transaction()
            .context("begin_transaction failed")?;
        Ok(Transactions {
            interval,
            timeout,
            began: Instant::now(),
            commits: 0,
            commit_latency: Histogram::new(),
        })
    }

    /// Commits the open transaction and begins the next once the interval has passed.
    pub fn tick(&mut self, producer: &LoadProducer) -> anyhow::Result<()> {
        if self.began.elapsed() >= self.interval {
            self.commit(producer)?;
            producer
                .begin_transaction()
                .context("begin_transaction failed")?;
            self.began = Instant::now();
        }
        Ok(())
    }

    /// Commits the open transaction (after every record in flight is acknowledged).
    ///
    /// The rdkafka crate's `commit_transaction` first flushes by polling in steps of up to
    /// 100 ms; with a `ThreadedProducer` its own thread serves the delivery reports, so that
    /// poll sees none and sleeps the whole step: 100 ms added to every commit. Waiting here
    /// until nothing is in flight (the producer's thread serving the reports) leaves that
    /// flush nothing to wait for.
    pub fn commit(&mut self, producer: &LoadProducer) -> anyhow::Result<()> {
        let start = Instant::now();
        while producer.in_flight_count() > 0 && start.elapsed() < self.timeout {
            thread::sleep(IN_FLIGHT_POLL);
        }
        producer
            .commit_transaction(self.timeout)
            .context("commit_transaction failed")?;
        self.commit_latency
            .record(start.elapsed().as_micros() as u64);
        self.commits += 1;
        Ok(())
    }

    /// The `--json` summary of a run that took `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> TxnSummary {
        TxnSummary {
            commits: self.commits,
            commits_per_sec: super::per_second(self.commits as f64, elapsed),
            commit_latency: LatencySummary::of(&self.commit_latency),
        }
    }
}

/// Commits, commits per second and `commit_transaction` latency of a transactional run.
#[derive(Debug, serde::Serialize)]
pub struct TxnSummary {
    pub commits: u64,
    pub commits_per_sec: f64,
    pub commit_latency: LatencySummary,
}

impl TxnSummary {
    /// `; N commits (R/sec), commit avg … ms, p99 … ms`.
    pub fn text(&self) -> String {
        format!(
            "{} commits ({:.1}/sec), commit_transaction avg {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.commits,
            self.commits_per_sec,
            self.commit_latency.avg_ms,
            self.commit_latency.p99_ms,
            self.commit_latency.max_ms
        )
    }
}
