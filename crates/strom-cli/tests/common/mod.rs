//! Shared harness for the integration tests: a real broker (in-process on its own runtime, or
//! the `strom` binary as a child process) on 127.0.0.1 port 0, real rdkafka clients, and a raw
//! protocol client for requests that a well-behaved client never sends.
#![allow(dead_code)]

pub mod cluster;
pub mod eos;
pub mod ledger;
pub mod python;
pub mod service;
pub mod txn;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: strom_broker::alloc::GuardedAllocator = strom_broker::alloc::GuardedAllocator;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

/// Runs `strom -b <bootstrap> --timeout-ms <timeout_ms> <args>`: (success, stdout, stderr).
pub fn run_strom(bootstrap: &str, timeout_ms: u64, args: &[&str]) -> (bool, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_strom"));
    command.args(["-b", bootstrap]);
    // A `--timeout-ms` among `args` (one slow call) takes the place of `timeout_ms`.
    if !args.contains(&"--timeout-ms") {
        command.args(["--timeout-ms", &timeout_ms.to_string()]);
    }
    let output = command.args(args).output().expect("run strom");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A broker running in this process on its own tokio runtime.
pub struct TestBroker {
    pub runtime: tokio::runtime::Runtime,
    pub handle: Option<strom_broker::BrokerHandle>,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    sets: Vec<String>,
}

impl TestBroker {
    /// Starts a broker with a fresh data directory and the given `key=value` settings.
    pub fn start(sets: &[&str]) -> TestBroker {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut broker = TestBroker::start_in(&dir, sets);
        broker._tmp = Some(tmp);
        broker
    }

    /// Starts a broker on an existing data directory.
    pub fn start_in(dir: &Path, sets: &[&str]) -> TestBroker {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let mut all: Vec<String> = vec![
            "listeners=PLAINTEXT://127.0.0.1:0".into(),
            "strom.metrics.listener=127.0.0.1:0".into(),
            format!("log.dirs={}", dir.display()),
        ];
        all.extend(sets.iter().map(|s| s.to_string()));
        let config = strom_broker::BrokerConfig::load(None, &all).expect("test config is valid");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime
            .block_on(strom_broker::start(config))
            .expect("broker starts");
        TestBroker {
            runtime,
            handle: Some(handle),
            dir: dir.to_path_buf(),
            _tmp: None,
            sets: sets.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.handle.as_ref().unwrap().bootstrap()
    }

    /// Shuts down cleanly and starts again on the same data directory.
    pub fn restart(mut self) -> TestBroker {
        let handle = self.handle.take().unwrap();
        self.runtime
            .block_on(handle.shutdown())
            .expect("clean shutdown");
        let sets: Vec<&str> = self.sets.iter().map(|s| s.as_str()).collect();
        let mut next = TestBroker::start_in(&self.dir, &sets);
        next._tmp = self._tmp.take();
        next
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = self.runtime.block_on(handle.shutdown());
        }
    }
}

/// A client configuration pointed at `bootstrap`.
pub fn client_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config.set("broker.address.family", "v4");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    client_config(bootstrap, extra).create().expect("producer")
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap, &[])
        .create()
        .expect("admin client")
}

/// A current-thread runtime for client futures in a synchronous test.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Creates a topic through the admin API and asserts it succeeded.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = admin(bootstrap);
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = client_runtime()
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("CreateTopics request");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t} failed: {e}"));
    }
}

/// One consumed record.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Reads `expected` records from the given partitions starting at the beginning, or panics
/// after `timeout` with what it got.
pub fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    consume_from(
        bootstrap,
        topic,
        partitions,
        Offset::Beginning,
        expected,
        timeout,
        &[],
    )
}

pub fn consume_from(
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
    start: Offset,
    expected: usize,
    timeout: Duration,
    extra: &[(&str, &str)],
) -> Vec<Consumed> {
    let mut config = client_config(
        bootstrap,
        &[("group.id", "strom-test"), ("enable.auto.commit", "false")],
    );
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in partitions {
        list.add_partition_offset(topic, *p, start).unwrap();
    }
    consumer.assign(&list).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < expected {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {expected} records from {topic} before the timeout",
            out.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(e)) => panic!("consume error on {topic}: {e}"),
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Consumed {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| k.to_vec()),
                    value: m.payload().map(|v| v.to_vec()),
                    timestamp: m.timestamp().to_millis(),
                    headers,
                });
            }
        }
    }
    out
}

/// A deterministic payload for record `i` of size `len`, and its checksum.
pub fn payload(i: u64, len: usize) -> Vec<u8> {
    use rand_core::{Rng as _, SeedableRng as _};
    let mut bytes = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(i).fill_bytes(&mut bytes);
    bytes
}

/// Polls `check` every 100 ms until it is true; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `strom broker` child process, started and ready to serve.
pub struct BrokerProcess {
    pub child: std::process::Child,
    /// The port it bound (it is started with port 0, so no other test can take it first).
    pub port: u16,
    /// Its log (stderr, `RUST_LOG=info`).
    pub log: PathBuf,
}

impl BrokerProcess {
    /// `127.0.0.1:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The first line of its log containing `needle`.
    pub fn log_line(&self, needle: &str) -> Option<String> {
        std::fs::read_to_string(&self.log)
            .ok()?
            .lines()
            .find(|l| l.contains(needle))
            .map(str::to_string)
    }
}

/// Starts the `strom` binary as a broker on data directory `data` with `sets` (`key=value`)
/// added, logging to `log`, and returns once it has logged "broker started" (its logs are
/// loaded and it serves). The listener binds port 0 and the port is read from that line: a port
/// picked by the test and bound later could be taken in between by another test. Panics with
/// the log if the process exits or is not ready within two minutes.
pub fn spawn_broker_process(data: &Path, log: &Path, sets: &[&str]) -> BrokerProcess {
    spawn_broker_process_with_file_limit(data, log, sets, None)
}

/// [`spawn_broker_process`] with the child's `RLIMIT_NOFILE` (soft and hard) set to
/// `open_files_max` before it runs, as `prlimit --nofile=N:N` would.
pub fn spawn_broker_process_with_file_limit(
    data: &Path,
    log: &Path,
    sets: &[&str],
    open_files_max: Option<u64>,
) -> BrokerProcess {
    let mut args = vec![
        "broker".to_string(),
        "--set".to_string(),
        "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
        "--set".to_string(),
        "strom.metrics.listener=127.0.0.1:0".to_string(),
        "--set".to_string(),
        format!("log.dirs={}", data.display()),
    ];
    for set in sets {
        args.push("--set".to_string());
        args.push(set.to_string());
    }
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_strom"));
    command
        .args(&args)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).expect("broker log file"));
    if let Some(limit) = open_files_max {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and only reads the struct passed by pointer.
        unsafe {
            command.pre_exec(move || {
                let value = libc::rlimit {
                    rlim_cur: limit as libc::rlim_t,
                    rlim_max: limit as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &value) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().expect("start the strom broker");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(port) = text
            .lines()
            .filter(|l| l.contains("broker started"))
            .find_map(started_port)
        {
            return BrokerProcess {
                child,
                port,
                log: log.to_path_buf(),
            };
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the broker exited ({status}) before it was ready:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "the broker was not ready within 120 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The port in a "broker started … addresses=[127.0.0.1:PORT]" log line.
fn started_port(line: &str) -> Option<u16> {
    let after = &line[line.find("addresses")?..];
    let after = &after[after.find("127.0.0.1:")? + "127.0.0.1:".len()..];
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A raw Kafka protocol connection for crafted requests.
pub struct RawClient {
    pub stream: TcpStream,
    correlation: i32,
}

impl RawClient {
    pub fn connect(addr: &str) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        RawClient {
            stream,
            correlation: 0,
        }
    }

    /// Sends `request` at `version` and decodes the response.
    pub fn send<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        let frame = self.frame(R::KEY, version, request);
        self.stream.write_all(&frame).unwrap();
        let mut body = self.read_frame().expect("a response frame");
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(&mut body, header_version).unwrap();
        assert_eq!(header.correlation_id, self.correlation);
        R::Response::decode(&mut body, version).expect("response decodes")
    }

    /// Encodes a complete request frame.
    pub fn frame<R: Encodable + HeaderVersion>(
        &mut self,
        key: i16,
        version: i16,
        request: &R,
    ) -> Bytes {
        self.correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str("strom-raw-test"));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, R::header_version(version)).unwrap();
        request
            .encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("encoding request API {key} v{version}: {e}"));
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        buf.freeze()
    }

    /// Sends `request` at `version` with Kafka 3.9's message types (`kafka-protocol-3x`), for
    /// the versions Kafka 4 removed, and decodes the response with them.
    pub fn send3<R: kafka_protocol_3x::protocol::Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> R::Response {
        use kafka_protocol_3x::protocol::Decodable as _;
        self.correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str("strom-raw-test"));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, R::header_version(version)).unwrap();
        request
            .encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("encoding request API {} v{version}: {e}", R::KEY));
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf).unwrap();
        let mut body = self.read_frame().expect("a response frame");
        let header_version =
            <R::Response as kafka_protocol_3x::protocol::HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(&mut body, header_version).unwrap();
        assert_eq!(header.correlation_id, self.correlation);
        let response = R::Response::decode(&mut body, version).expect("response decodes");
        assert!(
            body.is_empty(),
            "{} bytes left after the v{version} response",
            body.len()
        );
        response
    }

    /// Reads one frame; None when the broker closed the connection.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// True if the broker closed the connection (EOF) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0))
            || matches!(self.stream.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
    }
}

/// Builds an uncompressed v2 record batch (baseOffset 0) with the given records
/// (key, value) and producer fields. Written here, independently of the broker, so the broker's
/// validation is tested against a second implementation of the format.
pub fn record_batch(
    records: &[(Option<&[u8]>, &[u8])],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    timestamp: i64,
) -> Bytes {
    fn varint(buf: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                buf.push(z as u8);
                return;
            }
            buf.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }
    let mut body = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut r = Vec::new();
        r.push(0u8); // attributes
        varint(&mut r, 0); // timestamp delta
        varint(&mut r, i as i64); // offset delta
        match key {
            Some(k) => {
                varint(&mut r, k.len() as i64);
                r.extend_from_slice(k);
            }
            None => varint(&mut r, -1),
        }
        varint(&mut r, value.len() as i64);
        r.extend_from_slice(value);
        varint(&mut r, 0); // headers
        varint(&mut body, r.len() as i64);
        body.extend_from_slice(&r);
    }
    let mut tail = BytesMut::new(); // attributes .. end, covered by the CRC
    tail.put_i16(0);
    tail.put_i32(records.len() as i32 - 1);
    tail.put_i64(timestamp);
    tail.put_i64(timestamp);
    tail.put_i64(producer_id);
    tail.put_i16(producer_epoch);
    tail.put_i32(base_sequence);
    tail.put_i32(records.len() as i32);
    tail.extend_from_slice(&body);
    let crc = crc32c::crc32c(&tail);
    let mut batch = BytesMut::new();
    batch.put_i64(0);
    batch.put_i32((4 + 1 + 4 + tail.len()) as i32);
    batch.put_i32(-1);
    batch.put_i8(2);
    batch.put_u32(crc);
    batch.extend_from_slice(&tail);
    batch.freeze()
}

/// Runs `kcat -P` with `args`, writes `lines` (one record each) to its stdin, and asserts it
/// exits successfully (its stderr in the message).
pub fn kcat_produce(args: &[&str], lines: &[String]) {
    use std::process::{Command, Stdio};
    let mut producer = Command::new("kcat")
        .arg("-P")
        .args(args)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat runs (scripts/test installs it)");
    producer
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let out = producer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcat -P {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Fetch request for partition 0 of `topic` from `offset`: no session, 1 MiB for the
/// partition and 50 MiB in all, no wait and no minimum (callers set `max_wait_ms` and
/// `min_bytes` where they matter).
pub fn fetch_request(topic: &str, offset: i64) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::{fetch_request, BrokerId, FetchRequest, TopicName};
    let mut p = fetch_request::FetchPartition::default();
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    p.current_leader_epoch = -1;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = TopicName(topic.to_string().into());
    t.partitions = vec![p];
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.max_bytes = 50 << 20;
    request.session_epoch = -1;
    request.topics = vec![t];
    request
}

/// Reads the base offsets of the batches in a fetched `records` blob.
pub fn batch_base_offsets(mut records: Bytes) -> Vec<i64> {
    let mut out = Vec::new();
    while records.len() >= 12 {
        let base = records.get_i64();
        let len = records.get_i32() as usize;
        if records.len() < len {
            break;
        }
        out.push(base);
        records.advance(len);
    }
    out
}

/// Sends the raw HTTP `request` to `addr`; the status line and the body.
pub fn http_get(addr: std::net::SocketAddr, request: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

/// Joins `group` as its only member with JoinGroup and SyncGroup v0 on the raw protocol (a
/// `range` consumer with empty subscription metadata, a 30 s session, no assignment sent);
/// returns the member id and generation.
pub fn join_and_sync_v0(raw: &mut RawClient, group: &str) -> (String, i32) {
    use kafka_protocol::messages as km;
    let mut join = km::JoinGroupRequest::default();
    join.group_id = km::GroupId(group.to_string().into());
    join.session_timeout_ms = 30_000;
    join.protocol_type = "consumer".to_string().into();
    let mut protocol = km::join_group_request::JoinGroupRequestProtocol::default();
    protocol.name = "range".to_string().into();
    protocol.metadata = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    join.protocols = vec![protocol];
    let joined = raw.send(0, &join);
    assert_eq!(joined.error_code, 0, "JoinGroup v0 of {group}");
    let member = joined.member_id.to_string();
    let generation = joined.generation_id;
    let mut sync = km::SyncGroupRequest::default();
    sync.group_id = km::GroupId(group.to_string().into());
    sync.member_id = member.clone().into();
    sync.generation_id = generation;
    assert_eq!(raw.send(0, &sync).error_code, 0, "SyncGroup v0 of {group}");
    (member, generation)
}
