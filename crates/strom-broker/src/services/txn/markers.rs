//! Transaction markers: writing them as a partition's leader (what WriteTxnMarkers does), and
//! delivering the coordinator's markers to every partition's leader (Kafka's
//! `TransactionMarkerChannelManager`): this broker's own partitions directly, the others by
//! one WriteTxnMarkers request per leader over a kept connection.
//!
//! A marker is answered once its partition's high watermark covers it, as an `acks=all`
//! produce is. A COMMIT or ABORT written to a `__consumer_offsets` partition also settles the
//! producer's transactional offset commits there (the group coordinator's
//! `complete_transaction`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, WriteTxnMarkersRequest};
use strom_log::control::TxnMarker;
use strom_log::AppendError;
use strom_meta::replication::{BrokerId, TopicPartition};
use strom_meta::txn::MarkerOutcome;

use crate::interbroker::peer::PeerConnection;
use crate::services::coordinator::OFFSETS_TOPIC;
use crate::services::Services;

/// The WriteTxnMarkers version brokers send each other (Kafka 4 keeps only v1).
const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// How long a marker request may take before its partitions are retried.
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Kept connections to the other brokers, one per broker, opened on first use. The
/// coordinator's markers use one; a leader's KIP-890 verifications another
/// ([`super::verify`]), so a verification never waits behind a marker's replication.
pub struct MarkerChannel {
    local: BrokerId,
    /// What the connections carry, for their client id and logs.
    purpose: &'static str,
    peers: Mutex<HashMap<BrokerId, PeerConnection>>,
}

impl MarkerChannel {
    /// A channel of broker `local` for `purpose` (`txn-markers`, `txn-verify`).
    pub fn new(local: BrokerId, purpose: &'static str) -> MarkerChannel {
        MarkerChannel {
            local,
            purpose,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// The kept connection to `broker`, opened (again) if there is none or it closed.
    pub(crate) async fn connection(
        &self,
        services: &Services,
        broker: BrokerId,
    ) -> Option<PeerConnection> {
        if let Some(peer) = self.peers.lock().unwrap().get(&broker) {
            if !peer.is_closed() {
                return Some(peer.clone());
            }
        }
        let registration = services.metadata.broker(broker)?;
        let addr = crate::services::cluster::broker_addr(&services.config, &registration)?;
        let client_id = format!("strom-broker-{}-{}", self.local, self.purpose);
        match PeerConnection::connect(&addr, &client_id, Duration::from_secs(5)).await {
            Ok(peer) => {
                self.peers.lock().unwrap().insert(broker, peer.clone());
                Some(peer)
            }
            Err(e) => {
                tracing::info!(broker, purpose = self.purpose, error = %e, "cannot reach a broker");
                None
            }
        }
    }
}

/// Delivers `marker` to every partition's leader and returns each partition's outcome.
pub async fn send(
    services: &Arc<Services>,
    marker: &TxnMarker,
    partitions: &[TopicPartition],
) -> Vec<(TopicPartition, MarkerOutcome)> {
    let local = services.metadata.local_broker_id();
    let clustered = services.cluster.get().is_some();
    let mut outcomes = Vec::new();
    let mut by_leader: BTreeMap<BrokerId, Vec<TopicPartition>> = BTreeMap::new();
    for tp in partitions {
        if !services.metadata.cluster().topics.contains_key(&tp.topic) {
            outcomes.push((tp.clone(), MarkerOutcome::PartitionGone));
            continue;
        }
        match services.metadata.leader(&tp.topic, tp.partition) {
            Some(leader) if clustered || leader == local => {
                by_leader.entry(leader).or_default().push(tp.clone())
            }
            _ if !clustered => by_leader.entry(local).or_default().push(tp.clone()),
            _ => outcomes.push((tp.clone(), MarkerOutcome::Retriable)),
        }
    }
    for (leader, tps) in by_leader {
        let codes = if leader == local {
            write_local(services, marker, &tps).await
        } else {
            write_remote(services, leader, marker, &tps).await
        };
        for (tp, code) in codes {
            let outcome = classify(services, &tp, code);
            outcomes.push((tp, outcome));
        }
    }
    outcomes
}

/// What a leader's error code means to the coordinator.
fn classify(services: &Services, tp: &TopicPartition, code: i16) -> MarkerOutcome {
    if code == 0 {
        MarkerOutcome::Written
    } else if code == E::TransactionCoordinatorFenced.code()
        || code == E::InvalidProducerEpoch.code()
    {
        MarkerOutcome::CoordinatorFenced
    } else if code == E::UnknownTopicOrPartition.code()
        && !services.metadata.cluster().topics.contains_key(&tp.topic)
    {
        MarkerOutcome::PartitionGone
    } else {
        MarkerOutcome::Retriable
    }
}

async fn write_remote(
    services: &Arc<Services>,
    leader: BrokerId,
    marker: &TxnMarker,
    tps: &[TopicPartition],
) -> Vec<(TopicPartition, i16)> {
    let retriable = || {
        tps.iter()
            .map(|tp| (tp.clone(), E::NotLeaderOrFollower.code()))
            .collect::<Vec<_>>()
    };
    let Some(peer) = services.txn.channel.connection(services, leader).await else {
        return retriable();
    };
    let mut request = WriteTxnMarkersRequest::default();
    let mut m = WritableTxnMarker::default();
    m.producer_id = ProducerId(marker.producer_id);
    m.producer_epoch = marker.producer_epoch;
    m.transaction_result = marker.commit;
    m.coordinator_epoch = marker.coordinator_epoch;
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    for (topic, partitions) in topics {
        let mut t = WritableTxnMarkerTopic::default();
        t.name = kafka_protocol::messages::TopicName(topic.to_string().into());
        t.partition_indexes = partitions;
        m.topics.push(t);
    }
    request.markers.push(m);
    let answer = match peer
        .call(&request, WRITE_TXN_MARKERS_VERSION, MARKER_TIMEOUT)
        .await
    {
        Ok(answer) => answer,
        Err(e) => {
            tracing::info!(leader, error = %e, "WriteTxnMarkers failed; retrying later");
            return retriable();
        }
    };
    let mut codes: HashMap<(String, i32), i16> = HashMap::new();
    for result in answer.markers {
        for topic in result.topics {
            for p in topic.partitions {
                codes.insert((topic.name.0.to_string(), p.partition_index), p.error_code);
            }
        }
    }
    tps.iter()
        .map(|tp| {
            let code = codes
                .get(&(tp.topic.clone(), tp.partition))
                .copied()
                .unwrap_or(E::UnknownServerError.code());
            (tp.clone(), code)
        })
        .collect()
}

/// Writes `marker` to each partition this broker leads and waits until each is covered by its
/// high watermark; returns each partition's error code (what WriteTxnMarkers answers).
pub async fn write_local(
    services: &Arc<Services>,
    marker: &TxnMarker,
    tps: &[TopicPartition],
) -> Vec<(TopicPartition, i16)> {
    let now_ms = crate::clock::now_ms();
    let mut codes = Vec::with_capacity(tps.len());
    let mut waits = Vec::new();
    for tp in tps {
        let Some(partition) = services.replicas.partition(&tp.topic, tp.partition) else {
            let code = if services
                .metadata
                .partition(&tp.topic, tp.partition)
                .is_some()
            {
                E::NotLeaderOrFollower.code()
            } else {
                E::UnknownTopicOrPartition.code()
            };
            codes.push((tp.clone(), code));
            continue;
        };
        let refused = partition.check_produce(-1);
        if refused != 0 {
            codes.push((tp.clone(), refused));
            continue;
        }
        match partition.append_txn_marker(marker, now_ms) {
            Ok(info) => {
                if partition.is_replicated() {
                    partition.request_sync();
                }
                waits.push((codes.len(), partition, info.last_offset + 1));
                codes.push((tp.clone(), 0));
            }
            Err(e) => codes.push((tp.clone(), append_error_code(&e))),
        }
    }
    let pairs: Vec<_> = waits.iter().map(|(_, p, end)| (p.clone(), *end)).collect();
    let results =
        crate::services::replica::partition::Partition::wait_all_high_watermarks(&pairs).await;
    for ((index, _, _), result) in waits.iter().zip(results) {
        let tp = &codes[*index].0;
        match result {
            // Durable: the producer's transactional offsets there are settled now, before the
            // coordinator hears the marker is written.
            Ok(()) if tp.topic == OFFSETS_TOPIC => services.groups.complete_transaction(
                tp.partition,
                marker.producer_id,
                marker.commit,
            ),
            Ok(()) => {}
            Err(e) => {
                tracing::info!(partition = %tp, error = %e, "a marker did not become durable");
                codes[*index].1 = E::NotEnoughReplicas.code();
            }
        }
    }
    codes
}

/// The WriteTxnMarkers error code of a refused marker append.
fn append_error_code(e: &AppendError) -> i16 {
    match e {
        AppendError::StaleLeaderEpoch { .. } => E::NotLeaderOrFollower.code(),
        AppendError::InvalidProducerEpoch { .. } => E::InvalidProducerEpoch.code(),
        AppendError::TransactionCoordinatorFenced { .. } => E::TransactionCoordinatorFenced.code(),
        other => {
            tracing::error!(error = %other, "appending a transaction marker failed");
            E::KafkaStorageError.code()
        }
    }
}
