//! The Mesos engine: the scheduler as a Mesos framework speaking the v1 scheduler HTTP API
//! (`POST /api/v1/scheduler`, JSON). A shell: it owns a one-worker tokio runtime with two
//! connections — the SUBSCRIBE event stream (chunked RecordIO, decoded by `recordio.rs`) and a
//! keep-alive connection for calls, sent in order with the stream's `Mesos-Stream-Id` — and
//! leaves every decision to the pure parts: `session.rs` (when to subscribe, the heartbeat
//! watchdog, back-off, rate limits, effects as calls) and `wire.rs` (JSON ↔ offers, statuses,
//! operations).
//!
//! [`Engine::poll`] hands over what the stream delivered (offers, status updates with
//! readiness decided from the task's `check` results, as the SDK did) and
//! [`Engine::take_subscribed`] each new subscription's framework id, which the driver persists
//! before any call leaves. [`Engine::apply`] queues calls; it never waits on the network
//! (except for TEARDOWN, which is flushed before returning, at most 5 s). Plain `http://`
//! masters only; a 307 from a non-leading master is followed.

pub mod recordio;
pub mod secrets;
pub mod session;
pub mod wire;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};

use self::session::{Action, Session, SessionConfig};
use self::wire::{Event, FrameworkSettings, TaskChecks};
use super::Engine;
use crate::scheduler::{Effect, Input};
use crate::spec::ServiceSpec;
use crate::task::{TaskInfo, TaskState, TaskStatus};

/// The scheduler endpoint under the master's URL.
pub const SCHEDULER_PATH: &str = "/api/v1/scheduler";
/// How long a call may take (the docs suggest about 75 s; calls answer at once).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long connecting to the master may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the master and what to tell it.
#[derive(Clone, Debug)]
pub struct MesosConfig {
    /// `http://host:port[/prefix]` of a master (any one: a non-leader redirects).
    pub master: String,
    /// Name, user, role, principal, failover timeout.
    pub settings: FrameworkSettings,
    /// The stored framework id, to resubscribe as the same framework after a restart.
    pub framework_id: Option<String>,
    /// Timing.
    pub session: SessionConfig,
    /// Longest event record accepted.
    pub max_record_bytes: usize,
}

/// A master's address: `host:port` and the path of its scheduler endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterAddress {
    /// `host:port`.
    pub authority: String,
    /// `/api/v1/scheduler` under any prefix.
    pub path: String,
}

impl MasterAddress {
    /// Parses `http://host:port[/prefix]`, `//host:port/…` or `host:port` (as 307 `Location`s
    /// come).
    pub fn parse(url: &str) -> Result<MasterAddress, String> {
        if url.starts_with("https://") {
            return Err(format!("{url}: only http:// masters are supported"));
        }
        let rest = url.strip_prefix("http:").unwrap_or(url);
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        if authority.is_empty() || !authority.contains(':') {
            return Err(format!("{url}: expected http://host:port"));
        }
        let path = path.trim_end_matches('/');
        let path = if path.ends_with(SCHEDULER_PATH) {
            path.to_string()
        } else {
            format!("{path}{SCHEDULER_PATH}")
        };
        Ok(MasterAddress {
            authority: authority.to_string(),
            path,
        })
    }
}

/// What the connections report to `poll`.
enum Report {
    Opened {
        generation: u64,
        stream_id: String,
    },
    Record {
        generation: u64,
        record: Vec<u8>,
    },
    Closed {
        generation: u64,
        reason: String,
    },
    CallFailed {
        generation: u64,
        status: Option<u16>,
        message: String,
    },
}

enum Outgoing {
    Call {
        generation: u64,
        stream_id: String,
        body: Vec<u8>,
    },
    Flush(oneshot::Sender<()>),
}

/// The Mesos engine. See the module documentation.
pub struct MesosEngine {
    runtime: tokio::runtime::Runtime,
    session: Session,
    master: Arc<Mutex<MasterAddress>>,
    reports_tx: mpsc::Sender<Report>,
    reports: mpsc::Receiver<Report>,
    calls: mpsc::UnboundedSender<Outgoing>,
    stream: Option<tokio::task::JoinHandle<()>>,
    max_record_bytes: usize,
    checks: BTreeMap<(String, String), TaskChecks>,
    /// Task ids whose readiness check has passed.
    ready: BTreeMap<String, bool>,
    /// TASK_ERROR statuses of launches refused before they left (a secret outside the
    /// service's namespace), handed over at the next poll.
    refused: Vec<TaskStatus>,
}

impl MesosEngine {
    /// An engine that subscribes at its first poll.
    pub fn new(config: MesosConfig) -> std::io::Result<MesosEngine> {
        let master = MasterAddress::parse(&config.master)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mesos-engine")
            .enable_all()
            .build()?;
        let master = Arc::new(Mutex::new(master));
        let (reports_tx, reports) = mpsc::channel(1024);
        let (calls, outgoing) = mpsc::unbounded_channel();
        runtime.spawn(send_calls(
            outgoing,
            Arc::clone(&master),
            reports_tx.clone(),
        ));
        Ok(MesosEngine {
            runtime,
            session: Session::new(config.session, config.settings, config.framework_id),
            master,
            reports_tx,
            reports,
            calls,
            stream: None,
            max_record_bytes: config.max_record_bytes,
            checks: BTreeMap::new(),
            ready: BTreeMap::new(),
            refused: Vec::new(),
        })
    }

    /// Learns the tasks' readiness and health checks and kill grace periods from the spec.
    pub fn set_spec(&mut self, spec: &ServiceSpec) {
        self.checks.clear();
        for (pod_name, pod) in spec.pods.iter() {
            for (task_name, task) in pod.tasks.iter() {
                self.checks.insert(
                    (pod_name.to_string(), task_name.to_string()),
                    TaskChecks {
                        readiness: task.readiness_check.clone(),
                        health: task.health_check.clone(),
                        kill_grace_seconds: task.kill_grace_period,
                    },
                );
            }
        }
    }

    /// The framework id, once known.
    pub fn framework_id(&self) -> Option<&str> {
        self.session.framework_id()
    }

    /// Whether the event stream is subscribed.
    pub fn is_subscribed(&self) -> bool {
        self.session.is_subscribed()
    }

    /// Whether the task named `name` (`kafka-0-broker`) has a readiness check in the spec.
    fn has_readiness(&self, name: &str) -> bool {
        self.checks.iter().any(|((pod, task), checks)| {
            checks.readiness.is_some()
                && name
                    .strip_prefix(pod.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .and_then(|rest| rest.strip_suffix(task.as_str()))
                    .and_then(|rest| rest.strip_suffix('-'))
                    .is_some_and(|index| {
                        !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit())
                    })
        })
    }

    fn perform(&mut self, actions: Vec<Action>) {
        for note in self.session.take_notes() {
            eprintln!("mesos engine: {note}");
        }
        for action in actions {
            match action {
                Action::Subscribe { generation, body } => {
                    if let Some(stream) = self.stream.take() {
                        stream.abort();
                    }
                    let master = Arc::clone(&self.master);
                    let reports = self.reports_tx.clone();
                    let body = body.to_string().into_bytes();
                    let max = self.max_record_bytes;
                    self.stream = Some(self.runtime.spawn(async move {
                        let reason = match subscribe(generation, master, body, max, &reports).await
                        {
                            Ok(()) => "the master closed the event stream".to_string(),
                            Err(error) => error,
                        };
                        let _ = reports.send(Report::Closed { generation, reason }).await;
                    }));
                }
                Action::Disconnect { reason } => {
                    eprintln!("mesos engine: disconnecting: {reason}");
                    if let Some(stream) = self.stream.take() {
                        stream.abort();
                    }
                }
                Action::Call {
                    generation,
                    stream_id,
                    body,
                } => {
                    let _ = self.calls.send(Outgoing::Call {
                        generation,
                        stream_id,
                        body: body.to_string().into_bytes(),
                    });
                }
            }
        }
    }

    fn on_event(&mut self, event: Event, inputs: &mut Vec<Input>) {
        match event {
            Event::Offers(offers) if !offers.is_empty() => inputs.push(Input::Offers(offers)),
            Event::Update(update) => {
                let mut status = update.status;
                let passed = self.ready.entry(status.task_id.clone()).or_insert(false);
                if update.check_exit_code == Some(0) {
                    *passed = true;
                }
                let name = status
                    .task_id
                    .split_once("__")
                    .map_or(status.task_id.as_str(), |(name, _)| name)
                    .to_string();
                let running = status.state == TaskState::Running;
                status.ready = running && (*passed || !self.has_readiness(&name));
                if status.state.is_terminal() {
                    self.ready.remove(&status.task_id);
                }
                inputs.push(Input::Status(status));
            }
            Event::Rescind { offer_id } => {
                eprintln!("mesos engine: offer {offer_id} rescinded")
            }
            Event::Failure {
                agent_id,
                executor_id,
                status,
            } => eprintln!(
                "mesos engine: FAILURE agent {agent_id:?} executor {executor_id:?} status {status:?}"
            ),
            Event::Message { agent_id, executor_id } => {
                eprintln!("mesos engine: MESSAGE from {executor_id} on {agent_id} ignored")
            }
            Event::Error { message } => eprintln!("mesos engine: ERROR event: {message}"),
            Event::Other(kind) => eprintln!("mesos engine: {kind} event ignored"),
            Event::Offers(_) | Event::Subscribed { .. } | Event::Heartbeat => {}
        }
    }
}

impl Engine for MesosEngine {
    fn poll(&mut self, now_ms: u64) -> Vec<Input> {
        let mut inputs: Vec<Input> = self.refused.drain(..).map(Input::Status).collect();
        let mut actions = Vec::new();
        while let Ok(report) = self.reports.try_recv() {
            match report {
                Report::Opened {
                    generation,
                    stream_id,
                } => self.session.stream_opened(generation, stream_id),
                Report::Record { generation, record } => {
                    if generation != self.session.generation() {
                        continue;
                    }
                    match wire::parse_event(&record) {
                        Ok(event) => {
                            let subscribed = matches!(event, Event::Subscribed { .. });
                            actions.extend(self.session.event(generation, &event, now_ms));
                            if subscribed {
                                // Offers of an earlier stream are void with it.
                                inputs.retain(|i| !matches!(i, Input::Offers(_)));
                            }
                            if self.session.generation() == generation {
                                self.on_event(event, &mut inputs);
                            }
                        }
                        Err(error) => {
                            let reason = error.to_string();
                            actions.extend(self.session.stream_failed(generation, &reason, now_ms))
                        }
                    }
                }
                Report::Closed { generation, reason } => {
                    actions.extend(self.session.stream_failed(generation, &reason, now_ms))
                }
                Report::CallFailed {
                    generation,
                    status,
                    message,
                } => {
                    eprintln!("mesos engine: call failed ({status:?}): {message}");
                    if status == Some(403) {
                        actions.extend(self.session.stream_failed(
                            generation,
                            "a call was refused with 403 (not subscribed)",
                            now_ms,
                        ));
                    }
                }
            }
        }
        actions.extend(self.session.tick(now_ms));
        self.perform(actions);
        inputs
    }

    fn apply(&mut self, effects: &[Effect], now_ms: u64) {
        // The namespace rule again, before a launch leaves: the agents' secret resolver
        // serves whoever asks, so the scheduler is where a service is kept to its own secrets.
        let (effects, refused) = secrets::refuse_forbidden(self.session.service_name(), effects);
        for status in &refused {
            eprintln!("mesos engine: {}: {}", status.task_id, status.message);
        }
        self.refused.extend(refused);
        let effects = effects.as_slice();
        let checks = &self.checks;
        let lookup = |info: &TaskInfo| {
            checks
                .get(&(info.instance.pod.clone(), info.task.clone()))
                .cloned()
                .unwrap_or_default()
        };
        let actions = self.session.effects(effects, now_ms, &lookup);
        self.perform(actions);
        if effects.iter().any(|e| matches!(e, Effect::Teardown)) {
            let (done, flushed) = oneshot::channel();
            if self.calls.send(Outgoing::Flush(done)).is_ok() {
                // The timer must be made inside the runtime.
                let _ = self.runtime.block_on(async {
                    tokio::time::timeout(Duration::from_secs(5), flushed).await
                });
            }
        }
    }

    fn take_subscribed(&mut self, now_ms: u64) -> Option<String> {
        let (id, actions) = self.session.take_subscription(now_ms);
        self.perform(actions);
        id
    }
}

impl Drop for MesosEngine {
    fn drop(&mut self) {
        if let Some(stream) = self.stream.take() {
            stream.abort();
        }
    }
}

async fn with_timeout<T>(
    what: &str,
    limit: Duration,
    future: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| format!("{what}: timed out after {limit:?}"))?
}

/// Aborts the connection task when the stream's task ends or is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn connect(authority: &str) -> Result<(SendRequest<Full<Bytes>>, AbortOnDrop), String> {
    let stream = with_timeout("connect", CONNECT_TIMEOUT, async {
        tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| format!("cannot connect to {authority}: {e}"))
    })
    .await?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {authority}: {e}"))?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((sender, AbortOnDrop(task)))
}

fn request(
    master: &MasterAddress,
    body: Vec<u8>,
    stream_id: Option<&str>,
) -> Result<hyper::Request<Full<Bytes>>, String> {
    let mut builder = hyper::Request::post(master.path.as_str())
        .header(hyper::header::HOST, master.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::ACCEPT, "application/json");
    if let Some(id) = stream_id {
        builder = builder.header("Mesos-Stream-Id", id);
    }
    // A redirect's Location comes from the network: a path or host that is no valid URI or
    // header is an error, not a panic.
    builder.body(Full::new(Bytes::from(body))).map_err(|e| {
        format!(
            "cannot build a request to {}{}: {e}",
            master.authority, master.path
        )
    })
}

/// Opens the event stream and forwards its records until it ends; follows up to 3 redirects.
async fn subscribe(
    generation: u64,
    master: Arc<Mutex<MasterAddress>>,
    body: Vec<u8>,
    max_record_bytes: usize,
    reports: &mpsc::Sender<Report>,
) -> Result<(), String> {
    let mut redirects = 0;
    let (response, _connection) = loop {
        let address = master.lock().expect("master lock").clone();
        let (mut sender, connection) = connect(&address.authority).await?;
        let response = with_timeout("SUBSCRIBE", CALL_TIMEOUT, async {
            sender
                .send_request(request(&address, body.clone(), None)?)
                .await
                .map_err(|e| format!("SUBSCRIBE: {e}"))
        })
        .await?;
        let status = response.status().as_u16();
        if status == 307 && redirects < 3 {
            let location = response
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or("307 without a Location")?;
            let leader = MasterAddress::parse(location)?;
            eprintln!(
                "mesos engine: redirected to the leading master {}",
                leader.authority
            );
            *master.lock().expect("master lock") = leader;
            redirects += 1;
            continue;
        }
        if status != 200 {
            let text = read_text(response.into_body()).await;
            return Err(format!("SUBSCRIBE answered {status}: {text}"));
        }
        break (response, connection);
    };
    let stream_id = response
        .headers()
        .get("Mesos-Stream-Id")
        .and_then(|v| v.to_str().ok())
        .ok_or("SUBSCRIBE answered 200 without a Mesos-Stream-Id")?
        .to_string();
    let report = Report::Opened {
        generation,
        stream_id,
    };
    reports.send(report).await.map_err(|_| "engine gone")?;
    let mut decoder = recordio::Decoder::new(max_record_bytes);
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("event stream: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        decoder.push(&data);
        while let Some(record) = decoder.next_record().map_err(|e| e.to_string())? {
            let report = Report::Record { generation, record };
            reports.send(report).await.map_err(|_| "engine gone")?;
        }
    }
    Ok(())
}

async fn read_text(body: hyper::body::Incoming) -> String {
    let limited = http_body_util::Limited::new(body, 4096);
    match tokio::time::timeout(Duration::from_secs(2), limited.collect()).await {
        Ok(Ok(collected)) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        _ => String::new(),
    }
}

/// Sends calls in order on one keep-alive connection, reconnecting as needed.
async fn send_calls(
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    master: Arc<Mutex<MasterAddress>>,
    reports: mpsc::Sender<Report>,
) {
    let mut connection: Option<(SendRequest<Full<Bytes>>, AbortOnDrop, String)> = None;
    while let Some(item) = outgoing.recv().await {
        let (generation, stream_id, body) = match item {
            Outgoing::Call {
                generation,
                stream_id,
                body,
            } => (generation, stream_id, body),
            Outgoing::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let address = master.lock().expect("master lock").clone();
        let outcome = with_timeout("call", CALL_TIMEOUT, async {
            if connection
                .as_ref()
                .is_none_or(|(sender, _, to)| sender.is_closed() || *to != address.authority)
            {
                let (sender, task) = connect(&address.authority).await?;
                connection = Some((sender, task, address.authority.clone()));
            }
            let (sender, _, _) = connection.as_mut().expect("connected");
            sender
                .ready()
                .await
                .map_err(|e| format!("call connection: {e}"))?;
            let response = sender
                .send_request(request(&address, body.clone(), Some(&stream_id))?)
                .await
                .map_err(|e| format!("call: {e}"))?;
            let status = response.status().as_u16();
            let text = read_text(response.into_body()).await;
            Ok((status, text))
        })
        .await;
        let failure = match outcome {
            Ok((200 | 202, _)) => None,
            Ok((status, text)) => Some((Some(status), text)),
            Err(error) => {
                connection = None;
                Some((None, error))
            }
        };
        if let Some((status, message)) = failure {
            let kind = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_string))
                .unwrap_or_default();
            let report = Report::CallFailed {
                generation,
                status,
                message: format!("{kind}: {message}"),
            };
            if reports.send(report).await.is_err() {
                return;
            }
        }
    }
}
