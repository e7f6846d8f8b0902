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

use axum::http::{header, StatusCode};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use kafka_protocol::messages::ApiKey;
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
    /// The fetch session cache: sessions, partitions cached, evictions so far.
    fn fetch_sessions(&self) -> SessionGauges;
}

/// The fetch session cache's counts (`services::fetch_sessions`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionGauges {
    pub sessions: usize,
    pub partitions: usize,
    pub evictions: u64,
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

    let sessions = gauges.fetch_sessions();
    for (name, kind, help, value) in [
        (
            "kafka_server_fetchsessioncache_numincrementalfetchsessions",
            "gauge",
            "Fetch sessions (KIP-227) the broker holds.",
            sessions.sessions as u64,
        ),
        (
            "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached",
            "gauge",
            "Partitions held by all fetch sessions.",
            sessions.partitions as u64,
        ),
        (
            "kafka_server_fetchsessioncache_incrementalfetchsessionevictions_total",
            "counter",
            "Fetch sessions evicted to make room for new ones.",
            sessions.evictions,
        ),
    ] {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
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

/// The largest request head the endpoint reads (hyper's smallest buffer); more is answered 431.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Serves `GET /metrics` (and `HEAD`) on `listener` until `shutdown` becomes true: axum routes,
/// hyper's HTTP/1 server parses. Another path is 404, another method 405 (with `Allow`), a
/// malformed request 400, a head over [`MAX_REQUEST_HEAD`] 431. One request per connection
/// (`Connection: close`, as Prometheus does not need more); a client gets 10 s to send its head.
pub async fn serve(
    metrics: Arc<Metrics>,
    gauges: Arc<dyn Gauges>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let scrape = move || {
        let (metrics, gauges) = (metrics.clone(), gauges.clone());
        async move {
            let body = tokio::task::spawn_blocking(move || render(&metrics, gauges.as_ref()))
                .await
                .unwrap_or_default();
            ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], body)
        }
    };
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "try /metrics\n") });
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let service = TowerToHyperService::new(app.clone());
                let connection = http1::Builder::new()
                    .max_buf_size(MAX_REQUEST_HEAD)
                    .keep_alive(false)
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(30), connection).await;
                });
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// The content type of Prometheus's text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

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
