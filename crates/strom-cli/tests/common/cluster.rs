//! A real cluster for the replication tests: one ZooKeeper server (see `strom_testkit::zookeeper`) and
//! N `strom broker` processes on loopback, each with its own data directory, `broker.id` 1..=N,
//! and `zookeeper.connect` with the chroot `/strom`.
//!
//! Brokers start on port 0; a restarted broker binds the port it had, as a real broker keeps
//! its address, so clients' bootstrap lists stay valid. Metadata is read over a raw connection
//! (`Metadata` v12), so the tests see exactly what the broker answers (leaders, ISRs, racks,
//! the controller) and not librdkafka's cache of it.
//!
//! Keep the value on the thread that created it: the ZooKeeper JVM dies with that thread.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

use super::{admin, client_runtime, record_batch, spawn_broker_process, BrokerProcess, RawClient};
use strom_testkit::zookeeper::ZooKeeper;

/// A ZooKeeper server and its brokers.
pub struct TestCluster {
    /// The ensemble (one server).
    pub zookeeper: ZooKeeper,
    /// Data and log files of every broker.
    pub dir: tempfile::TempDir,
    /// Each broker's process, `None` while it is killed; index `i` is `broker.id` `i + 1`.
    brokers: Vec<Option<BrokerProcess>>,
    /// Each broker's port (kept across restarts).
    ports: Vec<u16>,
    /// How many times each broker was started (names its log files).
    starts: Vec<usize>,
    /// The settings every broker gets, plus per-broker ones.
    settings: Vec<Vec<String>>,
}

impl TestCluster {
    /// Starts ZooKeeper and `count` brokers with `settings` (`key=value`) each, and waits until
    /// every broker lists all of them and a controller.
    pub fn start(count: usize, settings: &[&str]) -> TestCluster {
        Self::start_with(count, |_| settings.iter().map(|s| s.to_string()).collect())
    }

    /// Like [`TestCluster::start`], with per-broker settings (e.g. `broker.rack`) from
    /// `settings(id)`.
    pub fn start_with(count: usize, settings: impl Fn(i32) -> Vec<String>) -> TestCluster {
        let zookeeper = ZooKeeper::start();
        let dir = tempfile::tempdir().expect("cluster directory");
        let mut cluster = TestCluster {
            zookeeper,
            dir,
            brokers: Vec::new(),
            ports: vec![0; count],
            starts: vec![0; count],
            settings: (1..=count as i32).map(settings).collect(),
        };
        for id in 1..=count as i32 {
            cluster.brokers.push(None);
            cluster.launch(id);
        }
        cluster.wait_for("every broker registered and a controller elected", |m| {
            m.brokers.len() == count && m.controller_id.0 > 0
        });
        cluster
    }

    /// Starts broker `id` (its first start, or a restart on its data and port).
    fn launch(&mut self, id: i32) {
        let index = (id - 1) as usize;
        let data: PathBuf = self.dir.path().join(format!("broker-{id}"));
        let log = self
            .dir
            .path()
            .join(format!("broker-{id}.{}.log", self.starts[index]));
        let mut sets = vec![
            format!("broker.id={id}"),
            format!(
                "zookeeper.connect={}/strom",
                self.zookeeper.connect_string()
            ),
        ];
        if self.ports[index] != 0 {
            sets.push(format!(
                "listeners=PLAINTEXT://127.0.0.1:{}",
                self.ports[index]
            ));
        }
        sets.extend(self.settings[index].iter().cloned());
        let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
        let process = spawn_broker_process(&data, &log, &refs);
        self.ports[index] = process.port;
        self.starts[index] += 1;
        self.brokers[index] = Some(process);
    }

    /// The ids of the brokers that are running.
    pub fn live(&self) -> Vec<i32> {
        (1..=self.brokers.len() as i32)
            .filter(|id| self.brokers[(*id - 1) as usize].is_some())
            .collect()
    }

    /// `bootstrap.servers` naming every broker, running or not (as a client's would).
    pub fn bootstrap(&self) -> String {
        let addrs: Vec<String> = self
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        addrs.join(",")
    }

    /// Broker `id`'s address.
    pub fn addr(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.ports[(id - 1) as usize])
    }

    /// Broker `id`'s log so far (all its starts), for failure messages.
    pub fn log(&self, id: i32) -> String {
        let index = (id - 1) as usize;
        (0..self.starts[index])
            .map(|start| {
                let path = self.dir.path().join(format!("broker-{id}.{start}.log"));
                std::fs::read_to_string(path).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// SIGKILLs broker `id` and waits for it to die.
    pub fn kill(&mut self, id: i32) {
        let index = (id - 1) as usize;
        let mut process = self.brokers[index]
            .take()
            .unwrap_or_else(|| panic!("broker {id} is not running"));
        process.child.kill().expect("SIGKILL the broker");
        process.child.wait().expect("reap the broker");
    }

    /// SIGTERMs broker `id` and waits (up to 60 s) for it to exit; panics unless it exits
    /// cleanly. Returns how long it took.
    pub fn terminate(&mut self, id: i32) -> Duration {
        let index = (id - 1) as usize;
        let mut process = self.brokers[index]
            .take()
            .unwrap_or_else(|| panic!("broker {id} is not running"));
        let started = Instant::now();
        assert_eq!(
            unsafe { libc::kill(process.child.id() as i32, libc::SIGTERM) },
            0
        );
        loop {
            if let Some(status) = process.child.try_wait().expect("wait for the broker") {
                assert!(status.success(), "broker {id} exited with {status:?}");
                return started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = process.child.kill();
                let _ = process.child.wait();
                panic!("broker {id} did not exit within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts killed broker `id` again on its data directory and port.
    pub fn restart(&mut self, id: i32) {
        assert!(
            self.brokers[(id - 1) as usize].is_none(),
            "broker {id} is still running"
        );
        self.launch(id);
    }

    /// Broker `id`'s process, if running.
    pub fn process(&mut self, id: i32) -> Option<&mut BrokerProcess> {
        self.brokers[(id - 1) as usize].as_mut()
    }

    /// Metadata for every topic as broker `id` answers it, or `None` if it does not answer.
    pub fn metadata_from(&self, id: i32) -> Option<MetadataResponse> {
        let addr = self.addr(id);
        // A cheap reachability check first: RawClient panics on a refused connection.
        TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
        let mut client = RawClient::connect(&addr);
        // `topics: None` asks for every topic (the default, an empty list, asks for none).
        let mut request = MetadataRequest::default();
        request.topics = None;
        Some(client.send(12, &request))
    }

    /// Metadata from the first running broker that answers.
    pub fn metadata(&self) -> MetadataResponse {
        self.live()
            .into_iter()
            .find_map(|id| self.metadata_from(id))
            .expect("some running broker answers Metadata")
    }

    /// Polls every 100 ms until `check` holds for the metadata of every running broker, or
    /// panics after 60 s naming `what` and showing the last answers.
    pub fn wait_for(&self, what: &str, check: impl Fn(&MetadataResponse) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answers: Vec<(i32, Option<MetadataResponse>)> = self
                .live()
                .into_iter()
                .map(|id| (id, self.metadata_from(id)))
                .collect();
            if answers
                .iter()
                .all(|(_, answer)| answer.as_ref().is_some_and(&check))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for: {what}; last answers: {answers:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `check`; if it panics, copies the brokers' data and logs to a directory that
    /// outlives the test (named on stderr) before passing the panic on, so a failure that
    /// shows once in many runs can be read afterwards.
    /// With `STROM_KEEP_CLUSTER` set they are kept even when it passes.
    pub fn keep_files_if_panics<T>(&self, check: impl FnOnce() -> T) -> T {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
            Ok(value) => {
                if std::env::var_os("STROM_KEEP_CLUSTER").is_some() {
                    self.keep_files();
                }
                value
            }
            Err(panic) => {
                self.keep_files();
                std::panic::resume_unwind(panic)
            }
        }
    }

    fn keep_files(&self) {
        let kept = std::env::temp_dir().join(format!("strom-kept-{}", std::process::id()));
        let copied = std::process::Command::new("cp")
            .arg("-r")
            .arg(self.dir.path())
            .arg(&kept)
            .status();
        eprintln!(
            "the brokers' files are kept in {} ({copied:?})",
            kept.display()
        );
    }

    /// The controller as broker answers report it (`-1` if none).
    pub fn controller(&self) -> i32 {
        self.metadata().controller_id.0
    }

    /// The leader, replicas and ISR of `topic`'s `partition`.
    pub fn partition(&self, topic: &str, partition: i32) -> (i32, Vec<i32>, Vec<i32>) {
        partition_of(&self.metadata(), topic, partition)
            .unwrap_or_else(|| panic!("{topic}-{partition} is not in the metadata"))
    }

    /// Creates `topics` through the cluster's admin API (librdkafka); a topic refused fails
    /// the test with its error.
    pub fn create_topics(&self, topics: &[NewTopic<'_>]) {
        let admin = admin(&self.bootstrap());
        for result in client_runtime()
            .block_on(admin.create_topics(topics, &AdminOptions::new()))
            .expect("CreateTopics")
        {
            result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
        }
    }

    /// Broker `id`'s metrics endpoint, from its "broker started" log line.
    pub fn metrics_addr(&mut self, id: i32) -> SocketAddr {
        let line = self
            .process(id)
            .and_then(|p| p.log_line("broker started"))
            .unwrap_or_else(|| panic!("broker {id} is not running"));
        let after =
            &line[line.find("metrics=Some(").expect("metrics on") + "metrics=Some(".len()..];
        after[..after.find(')').unwrap()].parse().unwrap()
    }

    /// The body of broker `id`'s `GET /metrics`, or the error connecting to it.
    pub fn scrape_metrics(&mut self, id: i32) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let addr = self.metrics_addr(id);
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: strom\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        Ok(response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default())
    }

    /// Makes `topic` (one partition) offline with a returned replica outside its ISR: on the
    /// two brokers that are not the controller, `first` leading and `second` following, kills
    /// `second` until the ISR is `[first]`, then kills `first` and restarts `second`. Returns
    /// `(first, second)`; `first` stays down. The cluster needs 3 brokers and a short
    /// `replica.lag.time.max.ms`.
    pub fn offline_with_replica_outside_isr(&mut self, topic: &str) -> (i32, i32) {
        let controller = self.controller();
        let others: Vec<i32> = (1..=3).filter(|id| *id != controller).collect();
        let (first, second) = (others[0], others[1]);
        let assignment: &[&[i32]] = &[&[first, second]];
        self.create_topics(&[NewTopic::new(
            topic,
            1,
            TopicReplication::Variable(assignment),
        )]);
        self.wait_for("the topic led with a full ISR", |m| {
            partition_of(m, topic, 0).is_some_and(|(l, _, isr)| l == first && isr.len() == 2)
        });
        // The second replica leaves the ISR, then the leader dies: offline, ISR [first].
        self.kill(second);
        self.wait_for("the ISR shrunk to the leader", |m| {
            partition_of(m, topic, 0).is_some_and(|(_, _, isr)| isr == vec![first])
        });
        self.kill(first);
        self.restart(second);
        self.wait_for("offline with the returned replica outside the ISR", |m| {
            m.brokers.len() == 2
                && partition_of(m, topic, 0).is_some_and(|(l, _, isr)| l < 0 && isr == vec![first])
        });
        (first, second)
    }
}

/// The leader, replicas and ISR of `topic`'s `partition` in `metadata`.
pub fn partition_of(
    metadata: &MetadataResponse,
    topic: &str,
    partition: i32,
) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let topic = metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))?;
    let p = topic
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)?;
    Some((
        p.leader_id.0,
        p.replica_nodes.iter().map(|id| id.0).collect(),
        p.isr_nodes.iter().map(|id| id.0).collect(),
    ))
}

/// The leader epoch of `topic`'s `partition` in `metadata`.
pub fn leader_epoch_of(metadata: &MetadataResponse, topic: &str, partition: i32) -> Option<i32> {
    metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))?
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .map(|p| p.leader_epoch)
}

/// Writes a reassignment plan file (Kafka's JSON: `{"version": 1, "partitions": [...]}`) named
/// `name` in `dir` moving each `(topic, partition)` to its replicas; its path.
pub fn write_plan(dir: &std::path::Path, name: &str, moves: &[(&str, i32, &[i32])]) -> String {
    let partitions: Vec<serde_json::Value> = moves
        .iter()
        .map(|(t, p, r)| serde_json::json!({"topic": t, "partition": p, "replicas": r}))
        .collect();
    let path = dir.join(name);
    let plan = serde_json::json!({"version": 1, "partitions": partitions});
    std::fs::write(&path, plan.to_string()).expect("write the plan");
    path.display().to_string()
}

impl Drop for TestCluster {
    /// Kills the brokers before ZooKeeper goes, so none is left running (or waiting for a
    /// ZooKeeper that is gone) after the test.
    fn drop(&mut self) {
        for process in self.brokers.iter_mut().flatten() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}

/// One acks=all Produce (v9) of a single record `value` to `topic`-0 over `raw`; the
/// partition's error code.
pub fn produce_acks_all(raw: &mut RawClient, topic: &str, value: &[u8]) -> i16 {
    produce_acks_all_to(raw, topic, 0, value)
}

/// One acks=all Produce (v9) of a single record `value` to `topic`-`index` over `raw`; the
/// partition's error code.
pub fn produce_acks_all_to(raw: &mut RawClient, topic: &str, index: i32, value: &[u8]) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    let mut partition = PartitionProduceData::default();
    partition.index = index;
    partition.records = Some(record_batch(&[(None, value)], -1, -1, -1, 1));
    let mut data = TopicProduceData::default();
    data.name = TopicName(kafka_protocol::protocol::StrBytes::from_string(
        topic.to_string(),
    ));
    data.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 5000;
    request.topic_data = vec![data];
    raw.send(9, &request).responses[0].partition_responses[0].error_code
}
