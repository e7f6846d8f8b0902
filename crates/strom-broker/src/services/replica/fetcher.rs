//! Replica fetchers: one task per source broker (a leader this broker follows partitions of),
//! each with one [`PeerConnection`] to it.
//!
//! Per partition, a fetcher first truncates: OffsetForLeaderEpoch for the log's latest epoch
//! against the leader, then [`strom_log::Log::truncation_point`] and `truncate_to` (asking
//! again while the answer is incomplete). Then it fetches in a loop with this broker's id as
//! `replica_id` and the partition's `current_leader_epoch`, appends the batches exactly as the
//! leader stored them (`append_as_follower`), and makes them durable through the broker's
//! sync driver (one group commit over the partitions of a response) *before* the next fetch
//! reports the new offset: a fetch offset acknowledges only what is on disk. Fetches go in a
//! fetch session with the leader ([`super::fetch_session`], KIP-227): after the first, each
//! names only the partitions whose offset, log start or epoch moved, and the leader answers
//! only those with something new, so idle partitions cost almost nothing. The follower's
//! high watermark is the smaller of the leader's and its own log end. On any error the
//! fetcher backs off (`replica.fetch.backoff.ms`) and reconnects. Partitions the follower
//! throttle names are left out of a fetch while its rate is over the bound
//! ([`super::quota`]); a fetch left with nothing to ask waits one backoff.
//!
//! It does not decide what to follow (LeaderAndIsr, [`super::cluster`]); removing a partition
//! from its fetcher waits for an append in progress, so once `remove` returns the fetcher never
//! writes to that log again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId as WireBrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_log::TopicPartition;
use strom_meta::replication::BrokerId;

use super::fetch_session::{FollowerSession, PartitionFetch};
use super::partition::Partition;
use super::quota::{is_throttled, ReplicationQuotas, Side};
use crate::interbroker::peer::{probe, PeerConnection, PeerError, Probe};
use crate::interbroker::LeaderAddress;
use crate::services::metadata_cache::MetadataCache;

/// The Fetch version a follower sends (topic names, `replica_id`, `current_leader_epoch`).
const FETCH_VERSION: i16 = 12;
/// The bytes one follower fetch response may hold over all its partitions (Kafka's
/// `replica.fetch.response.max.bytes` default; at least one batch is always returned).
const RESPONSE_MAX_BYTES: i32 = 10 * 1024 * 1024;
/// The OffsetForLeaderEpoch version a follower sends.
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;

/// One partition a fetcher follows.
pub struct FetchTarget {
    /// The local partition.
    pub partition: Arc<Partition>,
    /// The leader epoch it follows in.
    pub leader_epoch: i32,
    /// True once its log was truncated against this leader's epoch.
    pub truncated: bool,
}

type Targets = Arc<Mutex<HashMap<TopicPartition, FetchTarget>>>;

struct Fetcher {
    address: String,
    targets: Targets,
    task: tokio::task::JoinHandle<()>,
}

/// The broker's fetchers, by source broker.
pub struct Fetchers {
    /// Every fetcher's settings but its leader.
    base: Settings,
    fetchers: Mutex<HashMap<BrokerId, Fetcher>>,
}

#[derive(Clone)]
struct Settings {
    local: BrokerId,
    /// The broker fetched from.
    leader: BrokerId,
    /// Told when the leader's process is found gone.
    metadata: Arc<MetadataCache>,
    backoff: Duration,
    wait_max_ms: i32,
    max_bytes: i32,
    /// The follower throttle.
    quotas: Arc<ReplicationQuotas>,
}

impl Fetchers {
    /// Fetchers for broker `local`, with the context's `replica.fetch.*` settings; each tells
    /// `metadata` when its leader's process is found gone.
    pub(crate) fn new(
        local: BrokerId,
        metadata: Arc<MetadataCache>,
        backoff: Duration,
        wait_max_ms: i32,
        max_bytes: i32,
        quotas: Arc<ReplicationQuotas>,
    ) -> Fetchers {
        Fetchers {
            base: Settings {
                local,
                leader: local,
                metadata,
                backoff,
                wait_max_ms,
                max_bytes,
                quotas,
            },
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Starts following `target` from `leader` (a fetcher task for it is started if needed,
    /// or restarted if its address changed).
    pub(crate) fn add(&self, leader: &LeaderAddress, target: FetchTarget) {
        let address = format!("{}:{}", leader.host, leader.port);
        let mut fetchers = self.fetchers.lock().unwrap();
        let stale = fetchers
            .get(&leader.id)
            .is_some_and(|f| f.address != address || f.task.is_finished());
        if stale {
            if let Some(old) = fetchers.remove(&leader.id) {
                old.task.abort();
            }
        }
        let fetcher = fetchers.entry(leader.id).or_insert_with(|| {
            let targets: Targets = Arc::default();
            let settings = Settings {
                leader: leader.id,
                ..self.base.clone()
            };
            let task = tokio::spawn(run(address.clone(), targets.clone(), settings));
            Fetcher {
                address,
                targets,
                task,
            }
        });
        fetcher
            .targets
            .lock()
            .unwrap()
            .insert(target.partition.topic_partition.clone(), target);
    }

    /// Stops following `tp` (from whichever leader). Once it returns, no fetcher writes to
    /// the partition's log again.
    pub(crate) fn remove(&self, tp: &TopicPartition) {
        for fetcher in self.fetchers.lock().unwrap().values() {
            fetcher.targets.lock().unwrap().remove(tp);
        }
    }
}

impl Drop for Fetchers {
    fn drop(&mut self) {
        for fetcher in self.fetchers.lock().unwrap().values() {
            fetcher.task.abort();
        }
    }
}

/// One fetcher task: connects, truncates, fetches, until aborted.
async fn run(address: String, targets: Targets, settings: Settings) {
    let client_id = format!("strom-broker-{}-fetcher", settings.local);
    let mut connection: Option<PeerConnection> = None;
    let mut session = FollowerSession::default();
    loop {
        {
            let mut targets = targets.lock().unwrap();
            // A deleted partition (its topic removed under it) is no longer followed.
            targets.retain(|_, t| !t.partition.is_deleted());
            if targets.is_empty() {
                connection = None;
            }
        }
        if connection.is_none() && targets.lock().unwrap().is_empty() {
            tokio::time::sleep(settings.backoff).await;
            continue;
        }
        let peer = match &connection {
            Some(peer) if !peer.is_closed() => peer.clone(),
            _ => {
                match PeerConnection::connect(&address, &client_id, Duration::from_secs(5)).await {
                    Ok(peer) => {
                        connection = Some(peer.clone());
                        peer
                    }
                    Err(e) => {
                        tracing::debug!(leader = %address, error = %e, "fetcher cannot connect");
                        if is_refused(&e) {
                            settings.metadata.mark_gone(settings.leader);
                        }
                        tokio::time::sleep(settings.backoff).await;
                        continue;
                    }
                }
            }
        };
        let outcome = match truncate(&peer, &targets, &settings).await {
            Ok(()) => fetch_once(&peer, &targets, &settings, &mut session).await,
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            session.reset();
            tracing::debug!(leader = %address, error = %e, "fetcher backs off");
            leader_gone_check(&address, &settings).await;
            tokio::time::sleep(settings.backoff).await;
        }
    }
}

/// After a failed exchange with the leader: if its port now refuses connections, its process
/// is gone, and the metadata cache hears it at once (clients asking this broker for metadata
/// are then told the partition has no leader instead of being sent back to a dead one).
async fn leader_gone_check(address: &str, settings: &Settings) {
    let Ok(Some(socket)) = tokio::net::lookup_host(address).await.map(|mut a| a.next()) else {
        return;
    };
    if probe(socket, Duration::from_millis(500)).await == Probe::Refused {
        tracing::info!(
            leader = settings.leader,
            "the leader's process is gone (connection refused)"
        );
        settings.metadata.mark_gone(settings.leader);
    }
}

fn is_refused(error: &PeerError) -> bool {
    matches!(error, PeerError::Connect { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Truncates every partition not yet truncated against the leader's epochs.
async fn truncate(
    peer: &PeerConnection,
    targets: &Targets,
    settings: &Settings,
) -> Result<(), String> {
    let mut asks = Vec::new();
    for (tp, target) in targets.lock().unwrap().iter_mut() {
        if target.truncated {
            continue;
        }
        let latest = target.partition.log().lock().unwrap().latest_leader_epoch();
        match latest {
            // An empty log knows no epoch and has nothing to truncate.
            None => target.truncated = true,
            Some(epoch) => asks.push((tp.clone(), target.leader_epoch, epoch)),
        }
    }
    if asks.is_empty() {
        return Ok(());
    }
    let mut request = OffsetForLeaderEpochRequest::default();
    request.replica_id = WireBrokerId(settings.local);
    for (tp, current, epoch) in &asks {
        let mut topic = OffsetForLeaderTopic::default();
        topic.topic = TopicName(StrBytes::from_string(tp.topic.clone()));
        let mut p = OffsetForLeaderPartition::default();
        p.partition = tp.partition;
        p.current_leader_epoch = *current;
        p.leader_epoch = *epoch;
        topic.partitions.push(p);
        request.topics.push(topic);
    }
    let response = peer
        .call(
            &request,
            OFFSET_FOR_LEADER_EPOCH_VERSION,
            Duration::from_secs(10),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut targets = targets.lock().unwrap();
    for topic in response.topics {
        for p in topic.partitions {
            let tp = TopicPartition::new(topic.topic.0.as_str(), p.partition);
            let Some(target) = targets.get_mut(&tp) else {
                continue;
            };
            if p.error_code != 0 {
                tracing::debug!(partition = %tp, error = p.error_code, "OffsetForLeaderEpoch refused");
                continue;
            }
            let mut log = target.partition.log().lock().unwrap();
            let point = log.truncation_point(p.leader_epoch, p.end_offset);
            let before = log.log_end_offset();
            if let Err(e) = log.truncate_to(point.offset) {
                tracing::error!(partition = %tp, error = %e, "truncation failed");
                continue;
            }
            if log.log_end_offset() != before {
                tracing::info!(partition = %tp, from = before, to = point.offset, "truncated to the leader's epoch");
            }
            target.truncated = point.complete;
        }
    }
    Ok(())
}

/// One fetch from the leader for every truncated partition, in the fetcher's fetch session
/// (only the partitions whose fetch state changed are named); its data appended and synced.
async fn fetch_once(
    peer: &PeerConnection,
    targets: &Targets,
    settings: &Settings,
    session: &mut FollowerSession,
) -> Result<(), String> {
    let mut request = FetchRequest::default();
    request.replica_id = WireBrokerId(settings.local);
    request.max_wait_ms = settings.wait_max_ms;
    request.min_bytes = 1;
    request.max_bytes = RESPONSE_MAX_BYTES;
    // Throttled replicas: those the follower throttle names, when it has a bound.
    let throttled: HashSet<TopicPartition> = if settings.quotas.is_bounded(Side::Follower) {
        let followed: Vec<TopicPartition> = targets.lock().unwrap().keys().cloned().collect();
        let cluster = settings.metadata.cluster();
        let topics = &cluster.topics;
        followed
            .into_iter()
            .filter(|tp| {
                topics.get(&tp.topic).is_some_and(|t| {
                    is_throttled(&t.configs, Side::Follower, tp.partition, settings.local)
                })
            })
            .collect()
    } else {
        HashSet::new()
    };
    let hold = !throttled.is_empty()
        && settings
            .quotas
            .is_exceeded(Side::Follower, crate::clock::now_ms() as u64);
    // A throttled partition asks for at most the quota's burst; read once per fetch.
    let throttled_max_bytes = match settings.quotas.burst(Side::Follower) {
        Some(burst) => settings
            .max_bytes
            .min(i32::try_from(burst).unwrap_or(i32::MAX)),
        None => settings.max_bytes,
    };
    // The fetch is decided under the targets' lock, naming the partitions by reference: only
    // those the session must be told of are copied into the request.
    let exchange = {
        let targets = targets.lock().unwrap();
        let mut wanted = Vec::with_capacity(targets.len());
        for (tp, target) in targets.iter() {
            if !target.truncated || (hold && throttled.contains(tp)) {
                continue;
            }
            let (log_start, log_end) = {
                let log = target.partition.log().lock().unwrap();
                (log.log_start_offset(), log.log_end_offset())
            };
            let fetch = PartitionFetch {
                fetch_offset: log_end,
                // The leader's low watermark (what DeleteRecords waits for) is built from these.
                log_start_offset: log_start,
                leader_epoch: target.leader_epoch,
                max_bytes: if throttled.contains(tp) {
                    throttled_max_bytes
                } else {
                    settings.max_bytes
                },
            };
            wanted.push((tp, fetch));
        }
        (!wanted.is_empty()).then(|| session.request(&wanted))
    };
    let Some(exchange) = exchange else {
        tokio::time::sleep(settings.backoff).await;
        return Ok(());
    };
    exchange.fill(&mut request);
    let timeout = Duration::from_millis(settings.wait_max_ms.max(0) as u64 + 10_000);
    let response = peer
        .call(&request, FETCH_VERSION, timeout)
        .await
        .map_err(|e| e.to_string())?;
    if response.error_code != 0 {
        // A session the leader lost or no longer matches: start over with a full fetch.
        let session_error = [
            E::FetchSessionIdNotFound.code(),
            E::InvalidFetchSessionEpoch.code(),
            E::FetchSessionTopicIdError.code(),
        ]
        .contains(&response.error_code);
        session.reset();
        if session_error {
            tracing::debug!(error = response.error_code, "fetch session reset");
            return Ok(());
        }
        return Err(format!("fetch refused with error {}", response.error_code));
    }
    session.answered(exchange, response.session_id);
    let now = crate::clock::now_ms();
    let mut throttled_bytes = 0u64;
    let mut appended: Vec<(Arc<Partition>, i64, i64, i64)> = Vec::new();
    let mut errors = false;
    {
        let mut targets = targets.lock().unwrap();
        for topic in response.responses {
            for p in topic.partitions {
                let tp = TopicPartition::new(topic.topic.0.as_str(), p.partition_index);
                let Some(target) = targets.get_mut(&tp) else {
                    continue;
                };
                // Answered for the epoch it was asked in, not an older one.
                if session.sent_leader_epoch(&tp) != Some(target.leader_epoch) {
                    continue;
                }
                if p.error_code == E::OffsetOutOfRange.code() {
                    let mut log = target.partition.log().lock().unwrap();
                    if p.log_start_offset > log.log_end_offset() {
                        if let Err(e) = log.truncate_fully_and_start_at(p.log_start_offset) {
                            tracing::error!(partition = %tp, error = %e, "restarting the log failed");
                        }
                    } else {
                        target.truncated = false;
                    }
                    errors = true;
                    continue;
                }
                if p.error_code != 0 {
                    tracing::debug!(partition = %tp, error = p.error_code, "follower fetch refused");
                    errors = true;
                    continue;
                }
                if throttled.contains(&tp) {
                    throttled_bytes += p.records.as_ref().map_or(0, |r| r.len() as u64);
                }
                let mut log = target.partition.log().lock().unwrap();
                let end = match p.records.as_ref().filter(|r| !r.is_empty()) {
                    Some(records) => match log.append_as_follower(records, now) {
                        Ok(end) => end,
                        Err(e) => {
                            tracing::warn!(partition = %tp, error = %e, "follower append refused");
                            errors = true;
                            continue;
                        }
                    },
                    None => log.log_end_offset(),
                };
                appended.push((
                    target.partition.clone(),
                    end,
                    p.high_watermark,
                    p.log_start_offset,
                ));
            }
        }
    }
    settings
        .quotas
        .record(Side::Follower, throttled_bytes, now as u64);
    // Group commit: every partition joins the next sync pass before the first wait.
    for (partition, _, _, _) in &appended {
        partition.request_sync();
    }
    for (partition, end, leader_hw, leader_log_start) in appended {
        partition
            .wait_local_durable(end)
            .await
            .map_err(|e| format!("fdatasync failed: {e}"))?;
        partition.set_follower_lag(end, leader_hw);
        let moved = {
            let mut log = partition.log().lock().unwrap();
            let hw = leader_hw
                .min(log.log_end_offset())
                .max(log.log_start_offset());
            let moved = if hw > log.high_watermark() {
                log.set_high_watermark(hw);
                true
            } else {
                false
            };
            // The leader's log start offset (raised by DeleteRecords or retention) is followed
            // up to what this replica knows to be committed.
            let start = leader_log_start.min(log.high_watermark());
            if start > log.log_start_offset() {
                if let Err(e) = log.delete_records_before(start) {
                    tracing::warn!(partition = %partition.topic_partition, error = %e,
                        "following the leader's log start offset failed");
                }
            }
            moved
        };
        if moved {
            partition.wake();
        }
    }
    if errors {
        tokio::time::sleep(settings.backoff).await;
    }
    Ok(())
}
