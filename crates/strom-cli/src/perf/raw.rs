//! `strom perf produce-raw`: a load generator that speaks the Kafka protocol itself, to measure
//! a broker's own ceiling where librdkafka's producer is the limit (issue 7 §5: with 10,000
//! partitions librdkafka's broker thread visits every partition on each loop and its one core
//! saturates before the broker does).
//!
//! It asks the broker for the topic's partition count (Metadata), encodes one record batch of
//! `--records-per-request / --partitions-per-request` records and one Produce request (v9)
//! holding that batch for each of `--partitions-per-request` partitions with `kafka-protocol`,
//! then sends that request over and over on `--connections` connections, each with up to
//! `--in-flight` requests pipelined, patching only the correlation id and the partition indexes
//! in place before each send: request `n` carries the partitions following request `n - 1`'s,
//! round robin over the topic. The batch bytes are the same every time (no producer id, so the
//! broker assigns offsets and checks no sequence); the broker validates and stores each copy as
//! a new batch. Responses are decoded and every partition error counted. What it does not do:
//! partitioning by key, compression, idempotence, retries, metadata refresh or more than one
//! broker (it talks to the first bootstrap address only).
//!
//! Every run is bounded: by `--num-records` (rounded up to whole requests) and by the client's
//! `--timeout-ms` for each response.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bytes::{BufMut, Bytes, BytesMut};
use clap::Args;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::Serialize;

use super::{mib, per_second, print_result, random_payload};
use crate::client::ClientOptions;
use crate::produce::Acks;

/// The Produce version sent: flexible (compact encodings), record_errors, every broker since
/// Kafka 2.4.
const PRODUCE_VERSION: i16 = 9;
/// The Metadata version sent.
const METADATA_VERSION: i16 = 9;
/// Largest frame accepted from the broker.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Arguments of `perf produce-raw`.
#[derive(Debug, Args)]
pub struct RawProduceArgs {
    /// The topic to write to (it must exist).
    #[arg(long)]
    pub topic: String,
    /// How many records to send (rounded up to whole requests).
    #[arg(long, value_name = "N")]
    pub num_records: u64,
    /// Bytes per record value (no key).
    #[arg(long, value_name = "BYTES")]
    pub record_size: usize,
    /// Acknowledgements to wait for (1 or all; 0 has no responses to count).
    #[arg(long, value_enum, default_value = "all")]
    pub acks: Acks,
    /// Partitions in each Produce request (at most the topic's).
    #[arg(long, default_value_t = 1, value_name = "P")]
    pub partitions_per_request: usize,
    /// Records in each Produce request, split evenly over its partitions (one batch each).
    #[arg(long, default_value_t = 1000, value_name = "R")]
    pub records_per_request: usize,
    /// TCP connections to the broker, each with its own thread.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests sent on a connection before waiting for the oldest response.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// Encode a new batch for every request, timestamped when it is sent, instead of sending
    /// the same bytes each time (slower; for filling logs whose time indexes should grow as a
    /// real producer's do).
    #[arg(long)]
    pub fresh_timestamps: bool,
}

/// The totals of a `perf produce-raw` run (`--json`; the fields `bench/partitions` reads are
/// those of `perf produce`).
#[derive(Debug, Serialize)]
struct RawProduceResult<'a> {
    mode: &'static str,
    topic: &'a str,
    partitions: i32,
    partitions_per_request: usize,
    records_per_batch: usize,
    connections: usize,
    in_flight: usize,
    /// Records acknowledged without error.
    records: u64,
    /// Records in partitions answered with an error.
    errors: u64,
    record_size: usize,
    /// Payload bytes acknowledged.
    bytes: u64,
    /// Produce requests answered.
    requests: u64,
    /// Bytes of one request frame.
    request_bytes: usize,
    elapsed_s: f64,
    records_per_sec: f64,
    mib_per_sec: f64,
    acks: &'static str,
}

/// Runs `perf produce-raw`.
pub fn run(options: &ClientOptions, args: RawProduceArgs) -> anyhow::Result<()> {
    let acks: i16 = match args.acks {
        Acks::None => bail!("--acks 0 is not supported: there would be no responses to count"),
        Acks::Leader => 1,
        Acks::All => -1,
    };
    ensure!(args.num_records > 0, "--num-records must be at least 1");
    ensure!(
        args.partitions_per_request > 0 && args.connections > 0 && args.in_flight > 0,
        "--partitions-per-request, --connections and --in-flight must be at least 1"
    );
    ensure!(
        args.records_per_request >= args.partitions_per_request,
        "--records-per-request must be at least --partitions-per-request (one record per batch)"
    );
    let address = options
        .brokers
        .split(',')
        .next()
        .context("no bootstrap address")?
        .to_string();
    let timeout = options.timeout();
    let partitions = partition_count(&address, &args.topic, timeout)?;
    ensure!(
        args.partitions_per_request <= partitions as usize,
        "--partitions-per-request {} is more than the topic's {partitions} partitions",
        args.partitions_per_request
    );
    let records_per_batch = args.records_per_request / args.partitions_per_request;
    let batch = encode_batch(records_per_batch, args.record_size)?;
    let template = RequestTemplate::new(
        &args.topic,
        acks,
        timeout,
        args.partitions_per_request,
        batch,
    )?;
    let records_per_request = (records_per_batch * args.partitions_per_request) as u64;
    let requests = args.num_records.div_ceil(records_per_request);
    let next_request = AtomicU64::new(0);
    let totals = Mutex::new(Totals::default());

    let start = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.connections)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let connection = Connection::open(&address, timeout)?;
                    let fresh = |n: u64| -> anyhow::Result<Vec<u8>> {
                        let batch = encode_batch(records_per_batch, args.record_size)?;
                        let fresh = RequestTemplate::new(
                            &args.topic,
                            acks,
                            timeout,
                            args.partitions_per_request,
                            batch,
                        )?;
                        let mut frame = fresh.frame.clone();
                        fresh.patch(&mut frame, 0, n, partitions);
                        Ok(frame)
                    };
                    let fresh: Option<&dyn Fn(u64) -> anyhow::Result<Vec<u8>>> =
                        args.fresh_timestamps.then_some(&fresh);
                    let done = send_requests(
                        connection,
                        &template,
                        fresh,
                        partitions,
                        args.in_flight,
                        &next_request,
                        requests,
                    )?;
                    totals.lock().expect("totals").add(&done);
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|worker| worker.join().expect("a producer thread panicked"))
    })?;
    let elapsed = start.elapsed();

    let totals = totals.into_inner().expect("totals");
    let records = totals.batches_ok * records_per_batch as u64;
    let errors = totals.batches_failed * records_per_batch as u64;
    let bytes = records * args.record_size as u64;
    let result = RawProduceResult {
        mode: "produce-raw",
        topic: &args.topic,
        partitions,
        partitions_per_request: args.partitions_per_request,
        records_per_batch,
        connections: args.connections,
        in_flight: args.in_flight,
        records,
        errors,
        record_size: args.record_size,
        bytes,
        requests: totals.requests,
        request_bytes: template.frame.len(),
        elapsed_s: elapsed.as_secs_f64(),
        records_per_sec: per_second(records as f64, elapsed),
        mib_per_sec: per_second(mib(bytes), elapsed),
        acks: args.acks.config_value(),
    };
    let text = format!(
        "{} records sent in {} requests of {} partitions, {:.1} records/sec ({:.2} MiB/sec); \
         {} errors.\n",
        result.records,
        result.requests,
        result.partitions_per_request,
        result.records_per_sec,
        result.mib_per_sec,
        result.errors
    );
    print_result(options, &result, &text)?;
    if let Some(first) = totals.first_error {
        bail!("{errors} record(s) were refused; first error code {first}");
    }
    Ok(())
}

/// What one connection's requests came back with.
#[derive(Debug, Default)]
struct Totals {
    requests: u64,
    batches_ok: u64,
    batches_failed: u64,
    first_error: Option<i16>,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.requests += other.requests;
        self.batches_ok += other.batches_ok;
        self.batches_failed += other.batches_failed;
        self.first_error = self.first_error.or(other.first_error);
    }
}

/// One v2 batch of `records` keyless records of `record_size` random bytes, timestamped now.
fn encode_batch(records: usize, record_size: usize) -> anyhow::Result<Bytes> {
    let value = Bytes::from(random_payload(record_size));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // No producer id: the batch's base sequence is -1; kafka-protocol keeps records
            // in one batch while offset - sequence stays the same.
            sequence: i as i32 - 1,
            timestamp: now_ms,
            key: None,
            value: Some(value.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut buffer = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buffer, &records, &options)
        .map_err(|e| anyhow::anyhow!("encoding the record batch: {e}"))?;
    Ok(buffer.freeze())
}

/// A complete Produce request frame and where to patch it.
struct RequestTemplate {
    frame: Vec<u8>,
    /// Offsets in `frame` of each partition's 4-byte index, in request order.
    partition_fields: Vec<usize>,
}

/// Offset of the correlation id in a frame: size (4), API key (2), API version (2).
const CORRELATION_ID_AT: usize = 8;

impl RequestTemplate {
    fn new(
        topic: &str,
        acks: i16,
        timeout: Duration,
        partitions: usize,
        batch: Bytes,
    ) -> anyhow::Result<RequestTemplate> {
        let encode = |first_index: i32| -> anyhow::Result<Vec<u8>> {
            let partition_data = (0..partitions)
                .map(|j| {
                    PartitionProduceData::default()
                        .with_index(first_index + j as i32)
                        .with_records(Some(batch.clone()))
                })
                .collect();
            let request = ProduceRequest::default()
                .with_acks(acks)
                .with_timeout_ms(timeout.as_millis().min(i32::MAX as u128) as i32)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_data(partition_data)]);
            frame(ApiKey::Produce as i16, PRODUCE_VERSION, 0, &request)
        };
        // The partition index fields are where two encodings with different indexes differ
        // (every byte of `j + 0x01010101` differs from `j`'s).
        let frame = encode(0)?;
        let other = encode(0x0101_0101)?;
        ensure!(
            frame.len() == other.len(),
            "partition indexes changed the frame's length"
        );
        let differing: Vec<usize> = (0..frame.len()).filter(|&i| frame[i] != other[i]).collect();
        ensure!(
            differing.len() == 4 * partitions,
            "expected {} differing bytes, found {}",
            4 * partitions,
            differing.len()
        );
        let partition_fields: Vec<usize> = differing.chunks(4).map(|run| run[0]).collect();
        for (j, &at) in partition_fields.iter().enumerate() {
            let value = i32::from_be_bytes(frame[at..at + 4].try_into().expect("4"));
            ensure!(value == j as i32, "partition index field {j} reads {value}");
        }
        Ok(RequestTemplate {
            frame,
            partition_fields,
        })
    }

    /// Sets the correlation id and the partition indexes of request number `n`.
    fn patch(&self, frame: &mut [u8], correlation_id: i32, n: u64, partitions: i32) {
        frame[CORRELATION_ID_AT..CORRELATION_ID_AT + 4]
            .copy_from_slice(&correlation_id.to_be_bytes());
        let first = n * self.partition_fields.len() as u64;
        for (j, &at) in self.partition_fields.iter().enumerate() {
            let index = ((first + j as u64) % partitions as u64) as i32;
            frame[at..at + 4].copy_from_slice(&index.to_be_bytes());
        }
    }
}

/// Encodes a request frame (size, header, body) with `kafka-protocol`.
fn frame<R: Encodable + HeaderVersion>(
    key: i16,
    version: i16,
    correlation_id: i32,
    request: &R,
) -> anyhow::Result<Vec<u8>> {
    let mut header = RequestHeader::default();
    header.request_api_key = key;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("strom-perf-raw"));
    let mut buffer = BytesMut::new();
    buffer.put_i32(0);
    header
        .encode(&mut buffer, R::header_version(version))
        .map_err(|e| anyhow::anyhow!("encoding a request header: {e}"))?;
    request
        .encode(&mut buffer, version)
        .map_err(|e| anyhow::anyhow!("encoding request API {key} v{version}: {e}"))?;
    let len = (buffer.len() - 4) as i32;
    buffer[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buffer.to_vec())
}

/// A blocking connection to the broker.
struct Connection {
    stream: TcpStream,
}

impl Connection {
    fn open(address: &str, timeout: Duration) -> anyhow::Result<Connection> {
        let stream =
            TcpStream::connect(address).with_context(|| format!("connecting to {address}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream })
    }

    /// Reads one response frame and checks its correlation id.
    fn read_response<R: Decodable + HeaderVersion>(
        &mut self,
        version: i16,
        correlation_id: i32,
    ) -> anyhow::Result<R> {
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .context("reading a response (closed or timed out)")?;
        let size = i32::from_be_bytes(size);
        ensure!(
            (0..=MAX_RESPONSE_BYTES as i32).contains(&size),
            "response frame of {size} bytes"
        );
        let mut body = vec![0u8; size as usize];
        self.stream.read_exact(&mut body)?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, R::header_version(version))
            .map_err(|e| anyhow::anyhow!("decoding a response header: {e}"))?;
        ensure!(
            header.correlation_id == correlation_id,
            "response to correlation id {} where {correlation_id} was expected",
            header.correlation_id
        );
        R::decode(&mut body, version).map_err(|e| anyhow::anyhow!("decoding a response: {e}"))
    }
}

/// The topic's partition count from a Metadata request.
fn partition_count(address: &str, topic: &str, timeout: Duration) -> anyhow::Result<i32> {
    let mut connection = Connection::open(address, timeout)?;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_string())),
        ))]))
        .with_allow_auto_topic_creation(false);
    let bytes = frame(ApiKey::Metadata as i16, METADATA_VERSION, 1, &request)?;
    connection.stream.write_all(&bytes)?;
    let response: MetadataResponse = connection.read_response(METADATA_VERSION, 1)?;
    let Some(found) = response.topics.first() else {
        bail!("the broker described no topic for {topic:?}");
    };
    ensure!(
        found.error_code == 0,
        "topic {topic:?}: Metadata error code {} (it must exist)",
        found.error_code
    );
    ensure!(
        !found.partitions.is_empty(),
        "topic {topic:?} has no partitions"
    );
    Ok(found.partitions.len() as i32)
}

/// Sends requests taken from `next_request` until `requests` were taken, keeping up to
/// `in_flight` unanswered, and counts what the responses say. With `fresh`, request `n`'s frame
/// comes from `fresh(n)` instead of the template.
fn send_requests(
    mut connection: Connection,
    template: &RequestTemplate,
    fresh: Option<&dyn Fn(u64) -> anyhow::Result<Vec<u8>>>,
    partitions: i32,
    in_flight: usize,
    next_request: &AtomicU64,
    requests: u64,
) -> anyhow::Result<Totals> {
    let mut frame = template.frame.clone();
    let mut totals = Totals::default();
    let mut waiting = std::collections::VecDeque::with_capacity(in_flight);
    let mut correlation_id = 0i32;
    loop {
        while waiting.len() < in_flight {
            let n = next_request.fetch_add(1, Ordering::Relaxed);
            if n >= requests {
                break;
            }
            correlation_id = correlation_id.wrapping_add(1);
            if let Some(fresh) = fresh {
                frame = fresh(n)?;
            }
            template.patch(&mut frame, correlation_id, n, partitions);
            connection
                .stream
                .write_all(&frame)
                .context("sending a Produce request")?;
            waiting.push_back(correlation_id);
        }
        let Some(expected) = waiting.pop_front() else {
            return Ok(totals);
        };
        let response: ProduceResponse = connection.read_response(PRODUCE_VERSION, expected)?;
        totals.requests += 1;
        for topic in &response.responses {
            for partition in &topic.partition_responses {
                if partition.error_code == 0 {
                    totals.batches_ok += 1;
                } else {
                    totals.batches_failed += 1;
                    totals.first_error.get_or_insert(partition.error_code);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_patches_correlation_ids_and_partitions_round_robin() {
        let batch = encode_batch(3, 10).unwrap();
        let template =
            RequestTemplate::new("t", -1, Duration::from_secs(1), 4, batch.clone()).unwrap();
        let mut frame = template.frame.clone();
        template.patch(&mut frame, 77, 2, 10);
        // Decode what would go on the wire.
        let mut body = Bytes::from(frame[4..].to_vec());
        let header =
            RequestHeader::decode(&mut body, ProduceRequest::header_version(PRODUCE_VERSION))
                .unwrap();
        assert_eq!(header.correlation_id, 77);
        let request = ProduceRequest::decode(&mut body, PRODUCE_VERSION).unwrap();
        let data = &request.topic_data[0].partition_data;
        let indexes: Vec<i32> = data.iter().map(|p| p.index).collect();
        assert_eq!(
            indexes,
            vec![8, 9, 0, 1],
            "request 2 of 4 partitions over 10"
        );
        assert!(data.iter().all(|p| p.records.as_ref() == Some(&batch)));
        assert_eq!(request.acks, -1);
    }
}
