//! The transaction coordinator's async shell around the pure core [`strom_meta::txn`].
//!
//! The core decides; this shell does its I/O. Requests park under a [`RequestToken`] with a
//! oneshot sender; [`drive`] steps the core with an input and carries out its effects until
//! none is left: answers go to the parked senders, `__transaction_state` records are appended
//! to the partition this broker leads and reported once durable (the same high-watermark wait
//! an `acks=all` produce takes), markers go to each partition's leader (this broker's own
//! partitions directly, other leaders by WriteTxnMarkers, see [`markers`]), producer ids come
//! from the same source as idempotent producers', and a partition is read on a blocking thread
//! when this broker becomes its coordinator. A timer task ticks the core so timed-out
//! transactions are aborted and failed writes and markers are retried.
//!
//! Leadership of `__transaction_state` partitions decides what this broker coordinates: on a
//! single node every partition once the topic exists (created on the first FindCoordinator or
//! InitProducerId of a transactional id); in cluster mode the partitions a LeaderAndIsr made
//! it lead, resigned when another broker leads them (the same hook as the group coordinator).
//! The partition's leader epoch is the coordinator epoch markers carry.
//!
//! The core's lock is never held across an await: each effect's I/O is either a short append
//! under the partition's own lock, or a task that steps the core again when it completes.

pub mod markers;
pub mod verify;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use strom_log::log::Verification;
use strom_log::records::encode_batch;
use strom_meta::txn::{
    AppendOutcome, Effect, Input, RequestToken, Response, TxnConfig, TxnCoordinator, TxnDescription,
};
use tokio::sync::oneshot;

use crate::services::Services;

/// The internal topic of transaction state.
pub const TXN_TOPIC: &str = "__transaction_state";

struct Shell {
    core: TxnCoordinator,
    parked: HashMap<RequestToken, oneshot::Sender<Response>>,
    next_token: u64,
    /// The `__transaction_state` partitions this broker coordinates, with their epoch.
    led: HashMap<i32, i32>,
}

/// The transaction coordinator of this broker (see the module documentation).
pub struct TxnService {
    shell: Mutex<Shell>,
    config: TxnConfig,
    clustered: bool,
    /// Wakes the timer task early (a partition became led).
    wake: tokio::sync::Notify,
    /// Connections to other brokers for WriteTxnMarkers.
    pub(crate) channel: markers::MarkerChannel,
    /// Connections to other brokers' coordinators for KIP-890 verifications.
    pub(crate) verify_channel: markers::MarkerChannel,
    /// `transaction.partition.verification.enable`.
    verification_enabled: bool,
}

impl TxnService {
    /// A coordinator configured from the broker's `transaction.*` settings.
    pub fn new(config: &strom_meta::config::BrokerConfig) -> TxnService {
        let settings = &config.transactions;
        let txn_config = TxnConfig {
            log_partitions: settings.log_num_partitions.max(1),
            max_timeout_ms: settings.max_timeout_ms,
            id_expiration_ms: settings.id_expiration_ms,
            retry_backoff_ms: 100,
            value_version: 1,
        };
        TxnService {
            shell: Mutex::new(Shell {
                core: TxnCoordinator::new(txn_config.clone()),
                parked: HashMap::new(),
                next_token: 1,
                led: HashMap::new(),
            }),
            config: txn_config,
            clustered: config.cluster.zookeeper_connect.is_some(),
            wake: tokio::sync::Notify::new(),
            channel: markers::MarkerChannel::new(config.broker_id, "txn-markers"),
            verify_channel: markers::MarkerChannel::new(config.broker_id, "txn-verify"),
            verification_enabled: settings.partition_verification_enable,
        }
    }

    /// What a produce append checks (KIP-890): [`Verification::Required`] while
    /// `transaction.partition.verification.enable` is on, else [`Verification::Off`].
    pub fn produce_verification(&self) -> Verification {
        if self.verification_enabled {
            Verification::Required(None)
        } else {
            Verification::Off
        }
    }

    /// DescribeTransactions for one id (see [`TxnCoordinator::describe`]).
    pub fn describe(&self, transactional_id: &str) -> Result<TxnDescription, i16> {
        self.shell.lock().unwrap().core.describe(transactional_id)
    }

    /// ListTransactions: every id this broker coordinates, and whether a partition is loading.
    pub fn list(&self) -> (Vec<TxnDescription>, bool) {
        self.shell.lock().unwrap().core.list()
    }

    /// The `__transaction_state` partition of `transactional_id`: over the topic's partition
    /// count once it exists, else `transaction.state.log.num.partitions`.
    pub fn partition_of(&self, services: &Services, transactional_id: &str) -> i32 {
        let partitions = services
            .metadata
            .cluster()
            .topics
            .get(TXN_TOPIC)
            .map_or(self.config.log_partitions, |t| t.partitions);
        strom_meta::txn::partition_for(transactional_id, partitions)
    }
}

/// Parks a request and runs the core on it; the answer arrives on the returned channel.
pub fn request(
    services: &Arc<Services>,
    make: impl FnOnce(RequestToken) -> Input,
) -> oneshot::Receiver<Response> {
    let (tx, rx) = oneshot::channel();
    let input = {
        let mut shell = services.txn.shell.lock().unwrap();
        let token = RequestToken(shell.next_token);
        shell.next_token += 1;
        shell.parked.insert(token, tx);
        make(token)
    };
    drive(services, input);
    rx
}

/// Steps the core with `input` and carries out the effects, feeding back the inputs that
/// complete at once (a refused append) until the core has nothing more to do.
pub fn drive(services: &Arc<Services>, input: Input) {
    let mut queue = VecDeque::from([input]);
    while let Some(input) = queue.pop_front() {
        let now_ms = crate::clock::now_ms();
        let (effects, mut shell) = {
            let mut shell = services.txn.shell.lock().unwrap();
            let effects = shell.core.step(input, now_ms);
            (effects, shell)
        };
        let mut later = Vec::new();
        for effect in effects {
            match effect {
                Effect::Respond { token, response } => {
                    if let Some(tx) = shell.parked.remove(&token) {
                        let _ = tx.send(response);
                    }
                }
                other => later.push(other),
            }
        }
        drop(shell);
        for effect in later {
            if let Some(input) = perform(services, effect, now_ms) {
                queue.push_back(input);
            }
        }
    }
}

/// Carries out one effect; an input that is known at once is returned to [`drive`].
fn perform(services: &Arc<Services>, effect: Effect, now_ms: i64) -> Option<Input> {
    match effect {
        Effect::Respond { .. } => None,
        Effect::Append {
            write,
            partition,
            coordinator_epoch,
            key,
            value,
        } => match append(services, partition, coordinator_epoch, key, value, now_ms) {
            Ok((log, end)) => {
                let services = services.clone();
                tokio::spawn(async move {
                    let outcome = match log.wait_high_watermark(end).await {
                        Ok(()) => AppendOutcome::Written,
                        Err(e) => {
                            tracing::info!(partition, error = %e, "a __transaction_state write did not become durable");
                            AppendOutcome::Failed(
                                kafka_protocol::error::ResponseError::NotEnoughReplicas.code(),
                            )
                        }
                    };
                    drive(&services, Input::Appended { write, outcome });
                });
                None
            }
            Err(code) => Some(Input::Appended {
                write,
                outcome: AppendOutcome::Failed(code),
            }),
        },
        Effect::SendMarkers {
            transactional_id,
            producer_id,
            producer_epoch,
            coordinator_epoch,
            result,
            partitions,
        } => {
            let services = services.clone();
            tokio::spawn(async move {
                let marker = strom_log::control::TxnMarker {
                    producer_id,
                    producer_epoch,
                    coordinator_epoch,
                    commit: result == strom_meta::txn::TxnResult::Commit,
                };
                let outcomes = markers::send(&services, &marker, &partitions).await;
                for (partition, outcome) in outcomes {
                    drive(
                        &services,
                        Input::MarkerResult {
                            transactional_id: transactional_id.clone(),
                            producer_id,
                            producer_epoch,
                            partition,
                            outcome,
                        },
                    );
                }
            });
            None
        }
        Effect::AllocateProducerId { token } => {
            let services = services.clone();
            tokio::spawn(async move {
                let result = match services.cluster.get().cloned() {
                    Some(node) => node.next_producer_id().await.map_err(|e| e.to_string()),
                    None => services.producer_ids.next().map_err(|e| e.to_string()),
                };
                let result = result.map_err(|e| {
                    tracing::error!(error = %e, "allocating a producer id failed");
                    kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code()
                });
                drive(&services, Input::ProducerIdAllocated { token, result });
            });
            None
        }
        Effect::ReadPartition {
            partition,
            coordinator_epoch,
        } => {
            let services = services.clone();
            tokio::spawn(async move {
                let reader = services.clone();
                let records =
                    tokio::task::spawn_blocking(move || read_partition(&reader, partition))
                        .await
                        .unwrap_or_default();
                drive(
                    &services,
                    Input::PartitionRead {
                        partition,
                        coordinator_epoch,
                        records,
                    },
                );
            });
            None
        }
    }
}

/// Appends one record to a `__transaction_state` partition this broker leads at
/// `coordinator_epoch`; returns the partition and the end offset to wait for, or the error
/// code the write failed with.
fn append(
    services: &Services,
    partition: i32,
    coordinator_epoch: i32,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    now_ms: i64,
) -> Result<(Arc<crate::services::replica::partition::Partition>, i64), i16> {
    use kafka_protocol::error::ResponseError as E;
    let log = services
        .replicas
        .partition(TXN_TOPIC, partition)
        .ok_or(E::NotCoordinator.code())?;
    if log.leader_epoch() != coordinator_epoch {
        return Err(E::NotCoordinator.code());
    }
    let refused = log.check_produce(-1);
    if refused != 0 {
        return Err(refused);
    }
    let batch = encode_batch(&[(Some(&key[..]), value.as_deref())], now_ms);
    match log.append(Bytes::from(batch), now_ms) {
        Ok(info) => {
            if log.is_replicated() {
                log.request_sync();
            }
            Ok((log, info.last_offset + 1))
        }
        Err(e) => {
            tracing::error!(partition, error = %e, "writing to __transaction_state failed");
            Err(E::UnknownServerError.code())
        }
    }
}

/// Every record of a `__transaction_state` partition, to its log end (a new leader's load).
fn read_partition(services: &Services, partition: i32) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let Some(log) = services.replicas.partition(TXN_TOPIC, partition) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    crate::services::replica::scan::for_each_record(&log, true, |record| {
        if let Some(key) = record.key {
            out.push((key.to_vec(), record.value.map(|v| v.to_vec())));
        }
    });
    out
}

/// Whether `__transaction_state` can serve requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicReady {
    /// It exists.
    Exists,
    /// Cluster mode: it does not exist yet; the caller has it created through ZooKeeper (in
    /// the background) and answers `COORDINATOR_NOT_AVAILABLE` meanwhile.
    CreateInCluster,
    /// Creating it failed (logged).
    Failed,
}

/// Creates `__transaction_state` on a single node if it does not exist, as Kafka does on the
/// first transactional request.
pub fn ensure_topic(services: &Arc<Services>) -> TopicReady {
    if services.metadata.cluster().topics.contains_key(TXN_TOPIC) {
        return TopicReady::Exists;
    }
    let settings = &services.config.transactions;
    if services.txn.clustered {
        return TopicReady::CreateInCluster;
    }
    let mut configs = std::collections::BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert(
        "segment.bytes".to_string(),
        settings.log_segment_bytes.to_string(),
    );
    configs.insert("min.insync.replicas".to_string(), "1".to_string());
    match services.topics.create_topic(
        TXN_TOPIC,
        settings.log_num_partitions.max(1),
        1,
        configs,
        false,
    ) {
        Ok(_) => {}
        Err(e) if e.code == kafka_protocol::error::ResponseError::TopicAlreadyExists.code() => {}
        Err(e) => {
            tracing::error!(reason = %e.message, "creating __transaction_state failed");
            return TopicReady::Failed;
        }
    }
    coordinate_single_node(services);
    TopicReady::Exists
}

/// A single node coordinates every partition of `__transaction_state` once it exists (at
/// start, or when the first transactional request created it).
pub fn coordinate_single_node(services: &Arc<Services>) {
    if services.txn.clustered {
        return;
    }
    let Some(topic) = services.metadata.cluster().topics.get(TXN_TOPIC).cloned() else {
        return;
    };
    for partition in 0..topic.partitions {
        let epoch = services
            .replicas
            .partition(TXN_TOPIC, partition)
            .map_or(0, |p| p.leader_epoch());
        become_coordinator(services, partition, epoch);
    }
}

/// This broker leads `__transaction_state` partition `partition` at `leader_epoch`: load it
/// (unless already coordinated at that epoch).
pub fn become_coordinator(services: &Arc<Services>, partition: i32, leader_epoch: i32) {
    {
        let mut shell = services.txn.shell.lock().unwrap();
        if shell.led.get(&partition) == Some(&leader_epoch) {
            return;
        }
        shell.led.insert(partition, leader_epoch);
    }
    tracing::info!(
        partition,
        leader_epoch,
        "loading transactions of __transaction_state"
    );
    drive(
        services,
        Input::BecomeCoordinator {
            partition,
            coordinator_epoch: leader_epoch,
        },
    );
    services.txn.wake.notify_one();
}

/// Another broker leads `__transaction_state` partition `partition` now.
pub fn resign_coordinator(services: &Arc<Services>, partition: i32) {
    if services
        .txn
        .shell
        .lock()
        .unwrap()
        .led
        .remove(&partition)
        .is_none()
    {
        return;
    }
    tracing::info!(
        partition,
        "no longer coordinating __transaction_state partition"
    );
    drive(services, Input::ResignCoordinator { partition });
}

/// Ticks the core until shutdown: every `retry_backoff_ms` (100 ms), which also makes the
/// timed-out transaction check run at least as often as
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` asks.
pub fn spawn_timers(
    services: Arc<Services>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_millis(
        services
            .config
            .transactions
            .abort_timed_out_interval_ms
            .clamp(1, services.txn.config.retry_backoff_ms) as u64,
    );
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = services.txn.wake.notified() => {}
                _ = tokio::time::sleep(every) => {}
            }
            let idle = services.txn.shell.lock().unwrap().led.is_empty();
            if !idle {
                drive(&services, Input::Tick);
            }
        }
    })
}
