//! `strom produce TOPIC`: one record per line of standard input, sent with librdkafka's
//! `FutureProducer` with many records in flight, and a summary at the end.
//!
//! Lines are bytes, not text: only the trailing `\n` is removed, so values may hold any bytes
//! except a newline.

use std::collections::{BTreeMap, VecDeque};
use std::io::BufRead;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig};
use serde::Serialize;

use crate::client::{parse_key_values, ClientOptions};
use crate::output::print_json;

/// How many deliveries may be awaited at once before reading more input; librdkafka's own
/// queue (`queue.buffering.max.messages`, 100 000 by default) bounds it further.
const MAX_IN_FLIGHT: usize = 50_000;

/// How many failed deliveries are described individually before only counting them.
const FAILURES_SHOWN: usize = 5;

/// `--acks`: how many replicas must have a record before it counts as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    /// Do not wait for the broker.
    #[value(name = "0")]
    None,
    /// Wait for the leader.
    #[value(name = "1")]
    Leader,
    /// Wait for every in-sync replica.
    #[value(name = "all")]
    All,
}

impl Acks {
    /// librdkafka's `acks` value.
    pub fn config_value(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// `--compression`: the codec for record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// librdkafka's `compression.type` value.
    pub fn config_value(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Arguments of `produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic to write to.
    pub topic: String,
    /// Split each line at the first SEP: the text before it is the key, the rest the value.
    /// Lines without SEP get a null key.
    #[arg(short = 'k', long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header added to every record, KEY=VALUE; repeatable.
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Write every record to this partition instead of letting the partitioner choose.
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,
    /// Acknowledgements to wait for.
    #[arg(long, value_enum, default_value = "all")]
    pub acks: Acks,
    /// Compression codec for record batches.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compression,
    /// A librdkafka producer property, KEY=VALUE; repeatable.
    #[arg(long = "producer-prop", value_name = "KEY=VALUE")]
    pub producer_props: Vec<String>,
}

/// What was delivered to one partition.
#[derive(Debug, Default, Clone, Serialize)]
struct PartitionSummary {
    records: u64,
    last_offset: i64,
}

/// The result of a produce run.
#[derive(Debug, Default, Serialize)]
struct Summary {
    topic: String,
    records: u64,
    failed: u64,
    partitions: BTreeMap<i32, PartitionSummary>,
    #[serde(skip)]
    failures: Vec<String>,
}

impl Summary {
    fn record(&mut self, outcome: Result<rdkafka::producer::future_producer::Delivery, String>) {
        match outcome {
            Ok(delivery) => {
                self.records += 1;
                let partition = self.partitions.entry(delivery.partition).or_default();
                partition.records += 1;
                partition.last_offset = partition.last_offset.max(delivery.offset);
            }
            Err(reason) => {
                self.failed += 1;
                if self.failures.len() < FAILURES_SHOWN {
                    self.failures.push(reason);
                }
            }
        }
    }
}

/// Splits a line into key and value at the first occurrence of `separator`.
fn split_key<'a>(line: &'a [u8], separator: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(separator) = separator.filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    match line
        .windows(separator.len())
        .position(|window| window == separator)
    {
        Some(at) => (Some(&line[..at]), &line[at + separator.len()..]),
        None => (None, line),
    }
}

/// Waits for one delivery and turns it into a summary entry.
async fn settle(
    future: DeliveryFuture,
) -> Result<rdkafka::producer::future_producer::Delivery, String> {
    match future.await {
        Ok(Ok(delivery)) => Ok(delivery),
        Ok(Err((error, _message))) => Err(error.to_string()),
        Err(_canceled) => Err("the producer was closed before delivery".to_owned()),
    }
}

/// Runs `produce`, reading standard input to its end.
pub async fn run(options: &ClientOptions, args: ProduceArgs) -> anyhow::Result<()> {
    let header_pairs = parse_key_values(&args.headers, "--header")?;
    let producer_props = parse_key_values(&args.producer_props, "--producer-prop")?;
    if let Some(partition) = args.partition {
        if partition < 0 {
            bail!("--partition must be 0 or more, got {partition}");
        }
    }

    let mut config = options.config(&[
        ("acks", args.acks.config_value()),
        ("compression.type", args.compression.config_value()),
        (
            "message.timeout.ms",
            &options.timeout_ms.max(1000).to_string(),
        ),
    ]);
    for (key, value) in &producer_props {
        config.set(key, value);
    }
    let flush_timeout = crate::client::flush_timeout(&config);
    let producer: FutureProducer = config
        .create()
        .context("could not create the Kafka producer (check --producer-prop/--prop values)")?;

    let mut headers = OwnedHeaders::new_with_capacity(header_pairs.len());
    for (key, value) in &header_pairs {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_str()),
        });
    }

    let separator = args.key_separator.as_deref().map(str::as_bytes);
    let mut summary = Summary {
        topic: args.topic.clone(),
        ..Summary::default()
    };
    let mut in_flight: VecDeque<DeliveryFuture> = VecDeque::new();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .context("could not read standard input")?;
        if read == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let (key, value) = split_key(&line, separator);
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&args.topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = args.partition {
            record = record.partition(partition);
        }
        if !header_pairs.is_empty() {
            record = record.headers(headers.clone());
        }
        loop {
            match producer.send_result(record) {
                Ok(future) => {
                    in_flight.push_back(future);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    match in_flight.pop_front() {
                        Some(oldest) => summary.record(settle(oldest).await),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((error, _)) => {
                    summary.record(Err(error.to_string()));
                    break;
                }
            }
        }
        while in_flight.len() >= MAX_IN_FLIGHT {
            let oldest = in_flight.pop_front().expect("in_flight is not empty");
            summary.record(settle(oldest).await);
        }
    }
    drop(input);

    let flushed = producer.flush(flush_timeout);
    if flushed.is_err() {
        // What is still queued or in flight fails now, so every delivery future below resolves.
        producer.purge(PurgeConfig::default().queue().inflight());
    }
    for future in in_flight {
        summary.record(settle(future).await);
    }
    if let Err(error) = flushed {
        summary.failures.push(format!(
            "flush did not finish within {flush_timeout:?}: {error}"
        ));
    }
    report(options, &summary)
}

fn report(options: &ClientOptions, summary: &Summary) -> anyhow::Result<()> {
    if options.json {
        print_json(summary)?;
    } else {
        eprintln!(
            "produced {} record(s) to {:?} in {} partition(s){}",
            summary.records,
            summary.topic,
            summary.partitions.len(),
            if summary.failed > 0 {
                format!(", {} failed", summary.failed)
            } else {
                String::new()
            }
        );
        for (partition, detail) in &summary.partitions {
            eprintln!(
                "  partition {partition}: {} record(s), last offset {}",
                detail.records, detail.last_offset
            );
        }
    }
    for failure in &summary.failures {
        eprintln!("delivery failed: {failure}");
    }
    if summary.failed > 0 {
        bail!(
            "{} of {} record(s) were not delivered to {:?}",
            summary.failed,
            summary.failed + summary.records,
            summary.topic
        );
    }
    if !summary.failures.is_empty() {
        bail!("the producer did not shut down cleanly");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_the_text_before_the_first_separator() {
        assert_eq!(
            split_key(b"k:v:w", Some(b":")),
            (Some(&b"k"[..]), &b"v:w"[..])
        );
        assert_eq!(
            split_key(b"key::value", Some(b"::")),
            (Some(&b"key"[..]), &b"value"[..])
        );
        assert_eq!(split_key(b":v", Some(b":")), (Some(&b""[..]), &b"v"[..]));
    }

    #[test]
    fn lines_without_a_separator_have_a_null_key() {
        assert_eq!(split_key(b"plain", Some(b":")), (None, &b"plain"[..]));
        assert_eq!(split_key(b"a:b", None), (None, &b"a:b"[..]));
        assert_eq!(split_key(b"a:b", Some(b"")), (None, &b"a:b"[..]));
    }
}
