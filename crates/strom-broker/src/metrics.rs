//! Broker metrics for Prometheus: counters kept on the request paths, gauges read from the
//! broker's state at scrape time, and a small HTTP endpoint (`GET /metrics`) on
//! `strom.metrics.listener`.
//!
//! Names follow what the Prometheus JMX exporter's usual Kafka rules produce from Kafka's MBeans
//! (`kafka_server_brokertopicmetrics_messagesin_total{topic=…}`,
//! `kafka_log_log_logendoffset{topic=…,partition=…}`, …), so dashboards and alerts written for
//! Kafka find their series; what Kafka has no MBean for is prefixed `strom_`. Counting costs an
//! atomic add per partition of a request (and a read lock on the topic table).

mod replication;

pub use replication::{ControllerGauges, IsrCounters};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Upper bounds (seconds) of the fdatasync latency histogram buckets.
const SYNC_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Per-topic counters (Kafka's `BrokerTopicMetrics`). Each partition holds its topic's, so
/// the request paths count without a lookup.
#[derive(Debug, Default)]
pub struct TopicCounters {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    failed_produce: AtomicU64,
    failed_fetch: AtomicU64,
    /// KIP-392: record bytes this broker served to consumers as a follower.
    follower_bytes_out: AtomicU64,
    /// KIP-392: consumer fetches this leader answered with a preferred read replica.
    preferred_read_replica: AtomicU64,
}

/// The broker's counters.
#[derive(Debug)]
pub struct Metrics {
    topics: RwLock<BTreeMap<String, Arc<TopicCounters>>>,
    /// Requests per API, in the order the broker lists the APIs it supports.
    requests: Vec<(ApiKey, AtomicU64)>,
    /// Controller requests received: LeaderAndIsr, StopReplica, UpdateMetadata.
    interbroker_requests: [AtomicU64; 3],
    connections_accepted: AtomicU64,
    connections_closed: AtomicU64,
    sync_buckets: [AtomicU64; SYNC_BUCKETS.len()],
    sync_count: AtomicU64,
    sync_micros: AtomicU64,
    started_unix_s: f64,
    /// ISR changes this broker wrote as a leader.
    pub isr: IsrCounters,
}

impl Metrics {
    /// Counters for a broker that serves `apis` (one request counter each, in this order).
    pub fn new(apis: impl IntoIterator<Item = ApiKey>) -> Metrics {
        Metrics {
            topics: RwLock::new(BTreeMap::new()),
            requests: apis
                .into_iter()
                .map(|api| (api, AtomicU64::new(0)))
                .collect(),
            interbroker_requests: Default::default(),
            connections_accepted: AtomicU64::new(0),
            connections_closed: AtomicU64::new(0),
            sync_buckets: Default::default(),
            sync_count: AtomicU64::new(0),
            sync_micros: AtomicU64::new(0),
            started_unix_s: crate::clock::now_ms() as f64 / 1000.0,
            isr: IsrCounters::default(),
        }
    }
}

impl TopicCounters {
    /// A produce appended `records` records in `bytes` bytes.
    pub fn produced(&self, records: u64, bytes: u64) {
        self.messages_in.fetch_add(records, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A produce was refused.
    pub fn produce_failed(&self) {
        self.failed_produce.fetch_add(1, Ordering::Relaxed);
    }

    /// A fetch returned `bytes` bytes of records.
    pub fn fetched(&self, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A fetch of a partition failed.
    pub fn fetch_failed(&self) {
        self.failed_fetch.fetch_add(1, Ordering::Relaxed);
    }

    /// A consumer's fetch read `bytes` bytes of records from this broker as a follower
    /// (KIP-392; counted in [`TopicCounters::fetched`] too).
    pub fn fetched_from_follower(&self, bytes: u64) {
        self.follower_bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// This leader sent a consumer's fetch of a partition to a preferred read replica.
    pub fn sent_to_preferred_replica(&self) {
        self.preferred_read_replica.fetch_add(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// The counters of `topic`, created on first use.
    pub fn topic(&self, topic: &str) -> Arc<TopicCounters> {
        if let Some(counters) = self.topics.read().unwrap().get(topic) {
            return counters.clone();
        }
        self.topics
            .write()
            .unwrap()
            .entry(topic.to_string())
            .or_default()
            .clone()
    }

    /// One request of `api` was dispatched.
    pub fn request(&self, api: ApiKey) {
        if let Some((_, count)) = self.requests.iter().find(|(k, _)| *k == api) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A controller request with API key `key` (4, 5 or 6) arrived.
    pub fn interbroker_request(&self, key: i16) {
        if let Some(count) = key
            .checked_sub(4)
            .and_then(|index| self.interbroker_requests.get(index as usize))
        {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A client connection was accepted.
    pub fn connection_opened(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A client connection ended.
    pub fn connection_closed(&self) {
        self.connections_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// An fdatasync of a partition (or a pass's syncfs) took `elapsed`.
    pub fn synced(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.sync_buckets.iter().zip(SYNC_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sync_count.fetch_add(1, Ordering::Relaxed);
        self.sync_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Writes one metric family's header.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped as the text format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One partition's storage gauges, read at scrape time.
#[derive(Debug, Clone)]
pub struct PartitionGauges {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
    /// Bytes of the partition's segments.
    pub size_bytes: u64,
    /// The log end offset.
    pub log_end_offset: u64,
    /// The log start offset.
    pub log_start_offset: u64,
    /// Segments of the partition.
    pub segments: u64,
    /// True if this broker leads the partition.
    pub leader: bool,
    /// The partition's leader as this broker knows it (-1 for none).
    pub leader_id: i32,
    /// True if the partition's ISR is smaller than its replicas.
    pub under_replicated: bool,
    /// True if the partition's ISR is smaller than its topic's `min.insync.replicas`.
    pub under_min_isr: bool,
    /// Records the fetcher was behind the leader's high watermark at its last fetch, if this
    /// broker has fetched the partition as a follower.
    pub follower_lag: Option<u64>,
}

/// What the endpoint reads from the broker's state at scrape time (the services implement it;
/// this module does not know them).
pub trait Gauges: Send + Sync {
    /// Every hosted partition that is not deleted, sorted by topic and partition.
    fn partitions(&self) -> Vec<PartitionGauges>;
    /// The state of every group this broker coordinates (`Stable`, `Empty`, ...).
    fn group_states(&self) -> Vec<String>;
    /// The controller's gauges and counts.
    fn controller(&self) -> ControllerGauges;
}

/// The Prometheus text exposition (version 0.0.4) of the broker's metrics.
pub fn render(m: &Metrics, gauges: &dyn Gauges) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let topics: Vec<(String, Arc<TopicCounters>)> = m
        .topics
        .read()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let per_topic =
        |out: &mut String, name: &str, help: &str, value: &dyn Fn(&TopicCounters) -> u64| {
            family(out, name, "counter", help);
            for (topic, counters) in &topics {
                let _ = writeln!(
                    out,
                    "{name}{{topic=\"{}\"}} {}",
                    label(topic),
                    value(counters)
                );
            }
        };
    per_topic(
        &mut out,
        "kafka_server_brokertopicmetrics_messagesin_total",
        "Records appended, per topic.",
        &|t| t.messages_in.load(Ordering::Relaxed),
    );
    per_topic(
        &mut out,
        "kafka_server_brokertopicmetrics_bytesin_total",
        "Record batch bytes appended, per topic.",
        &|t| t.bytes_in.load(Ordering::Relaxed),
    );
    per_topic(
        &mut out,
        "kafka_server_brokertopicmetrics_bytesout_total",
        "Record batch bytes sent to fetchers, per topic.",
        &|t| t.bytes_out.load(Ordering::Relaxed),
    );
    per_topic(
        &mut out,
        "kafka_server_brokertopicmetrics_failedproducerequests_total",
        "Partition produces refused with an error, per topic.",
        &|t| t.failed_produce.load(Ordering::Relaxed),
    );
    per_topic(
        &mut out,
        "kafka_server_brokertopicmetrics_failedfetchrequests_total",
        "Partition fetches answered with an error, per topic.",
        &|t| t.failed_fetch.load(Ordering::Relaxed),
    );
    per_topic(
        &mut out,
        "strom_fetch_follower_bytesout_total",
        "Record batch bytes served to consumers by this broker as a follower (KIP-392), per topic.",
        &|t| t.follower_bytes_out.load(Ordering::Relaxed),
    );
    per_topic(
        &mut out,
        "strom_fetch_preferred_read_replica_total",
        "Partition fetches of consumers this leader answered with a preferred read replica \
         in the consumer's rack (KIP-392), per topic.",
        &|t| t.preferred_read_replica.load(Ordering::Relaxed),
    );

    family(
        &mut out,
        "kafka_network_requestmetrics_requests_total",
        "counter",
        "Requests received, per API.",
    );
    for (api, count) in &m.requests {
        let _ = writeln!(
            out,
            "kafka_network_requestmetrics_requests_total{{request=\"{api:?}\"}} {}",
            count.load(Ordering::Relaxed)
        );
    }
    for (name, count) in ["LeaderAndIsr", "StopReplica", "UpdateMetadata"]
        .iter()
        .zip(&m.interbroker_requests)
    {
        let _ = writeln!(
            out,
            "kafka_network_requestmetrics_requests_total{{request=\"{name}\"}} {}",
            count.load(Ordering::Relaxed)
        );
    }

    let accepted = m.connections_accepted.load(Ordering::Relaxed);
    let closed = m.connections_closed.load(Ordering::Relaxed);
    family(
        &mut out,
        "kafka_server_socketservermetrics_connection_count",
        "gauge",
        "Open client connections.",
    );
    let _ = writeln!(
        out,
        "kafka_server_socketservermetrics_connection_count {}",
        accepted.saturating_sub(closed)
    );
    family(
        &mut out,
        "strom_connections_accepted_total",
        "counter",
        "Client connections accepted.",
    );
    let _ = writeln!(out, "strom_connections_accepted_total {accepted}");

    family(
        &mut out,
        "strom_log_fdatasync_seconds",
        "histogram",
        "Time of each fdatasync that made appends durable (group commit; a wide pass done with syncfs counts once).",
    );
    for (bucket, bound) in m.sync_buckets.iter().zip(SYNC_BUCKETS) {
        let _ = writeln!(
            out,
            "strom_log_fdatasync_seconds_bucket{{le=\"{bound}\"}} {}",
            bucket.load(Ordering::Relaxed)
        );
    }
    let count = m.sync_count.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "strom_log_fdatasync_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        out,
        "strom_log_fdatasync_seconds_sum {}",
        m.sync_micros.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "strom_log_fdatasync_seconds_count {count}");

    let partitions = gauges.partitions();
    family(
        &mut out,
        "kafka_server_replicamanager_partitioncount",
        "gauge",
        "Partitions on this broker.",
    );
    let _ = writeln!(
        out,
        "kafka_server_replicamanager_partitioncount {}",
        partitions.len()
    );
    family(
        &mut out,
        "kafka_server_replicamanager_leadercount",
        "gauge",
        "Partitions this broker leads.",
    );
    let _ = writeln!(
        out,
        "kafka_server_replicamanager_leadercount {}",
        partitions.iter().filter(|p| p.leader).count()
    );
    replication::render(&mut out, &m.isr, &partitions, gauges.controller());

    let logs: Vec<(&str, i32, [u64; 4])> = partitions
        .iter()
        .map(|p| {
            (
                p.topic.as_str(),
                p.partition,
                [
                    p.size_bytes,
                    p.log_end_offset,
                    p.log_start_offset,
                    p.segments,
                ],
            )
        })
        .collect();
    for (i, (name, help)) in [
        ("kafka_log_log_size", "Bytes of the partition's segments."),
        (
            "kafka_log_log_logendoffset",
            "The partition's log end offset.",
        ),
        (
            "kafka_log_log_logstartoffset",
            "The partition's log start offset.",
        ),
        ("kafka_log_log_numlogsegments", "Segments of the partition."),
    ]
    .iter()
    .enumerate()
    {
        family(&mut out, name, "gauge", help);
        for (topic, partition, values) in &logs {
            let _ = writeln!(
                out,
                "{name}{{topic=\"{}\",partition=\"{partition}\"}} {}",
                label(topic),
                values[i]
            );
        }
    }

    let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
    for state in gauges.group_states() {
        *by_state.entry(state).or_default() += 1;
    }
    family(
        &mut out,
        "kafka_coordinator_group_groupmetadatamanager_numgroups",
        "gauge",
        "Consumer groups this broker coordinates, per state.",
    );
    for (state, count) in &by_state {
        let _ = writeln!(
            out,
            "kafka_coordinator_group_groupmetadatamanager_numgroups{{state=\"{state}\"}} {count}"
        );
    }

    process_metrics(&mut out, m.started_unix_s);
    out
}

/// `process_*` metrics from `/proc/self` (what Prometheus client libraries export).
fn process_metrics(out: &mut String, started_unix_s: f64) {
    let ticks = 100.0; // USER_HZ on Linux
    let page = 4096.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok());
        if let (Some(utime), Some(stime)) = (field(11), field(12)) {
            family(
                out,
                "process_cpu_seconds_total",
                "counter",
                "CPU time of the broker process.",
            );
            let _ = writeln!(out, "process_cpu_seconds_total {}", (utime + stime) / ticks);
        }
        if let Some(rss_pages) = field(21) {
            family(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory of the broker process.",
            );
            let _ = writeln!(out, "process_resident_memory_bytes {}", rss_pages * page);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        family(
            out,
            "process_open_fds",
            "gauge",
            "Open file descriptors of the broker process.",
        );
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
    family(
        out,
        "process_start_time_seconds",
        "gauge",
        "When the broker started, in seconds since the Unix epoch.",
    );
    let _ = writeln!(out, "process_start_time_seconds {started_unix_s}");
}

/// The largest request head the endpoint reads; more is answered 431 and closed.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (or `HEAD`).
    Metrics {
        /// True for `HEAD`: headers only.
        head_only: bool,
    },
    /// Another path: 404.
    NotFound,
    /// Another method: 405.
    MethodNotAllowed,
    /// Not an HTTP request line: 400.
    BadRequest,
}

/// Reads the request line of an HTTP/1.x request head.
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head_only: false },
        ("HEAD", "/metrics") => Route::Metrics { head_only: true },
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` becomes true. One request per
/// connection (`Connection: close`); a client gets 10 s to send its request head.
pub async fn serve(
    metrics: Arc<Metrics>,
    gauges: Arc<dyn Gauges>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (metrics, gauges) = (metrics.clone(), gauges.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), answer(metrics, gauges, stream)).await;
                });
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn answer(
    metrics: Arc<Metrics>,
    gauges: Arc<dyn Gauges>,
    mut stream: tokio::net::TcpStream,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_REQUEST_HEAD {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "",
                false,
            )
            .await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    match route(&head) {
        Route::Metrics { head_only } => {
            let body = tokio::task::spawn_blocking(move || render(&metrics, gauges.as_ref()))
                .await
                .unwrap_or_default();
            respond(&mut stream, "200 OK", &body, head_only).await
        }
        Route::NotFound => respond(&mut stream, "404 Not Found", "try /metrics\n", false).await,
        Route::MethodNotAllowed => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "GET /metrics\n",
                false,
            )
            .await
        }
        Route::BadRequest => respond(&mut stream, "400 Bad Request", "", false).await,
    }
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if !head_only {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        for bad in [
            &b""[..],
            b"\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2 extra\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(route(bad), Route::BadRequest, "{bad:?}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn the_sync_histogram_is_cumulative() {
        let m = Metrics::new([]);
        m.synced(Duration::from_micros(300));
        m.synced(Duration::from_millis(3));
        m.synced(Duration::from_secs(2));
        let buckets: Vec<u64> = m
            .sync_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(buckets, [0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2]);
        assert_eq!(m.sync_count.load(Ordering::Relaxed), 3);
    }
}
