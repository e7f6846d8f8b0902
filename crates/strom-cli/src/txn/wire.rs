//! The Kafka-protocol requests of `strom txn`, sent over plain connections
//! ([`PeerConnection`]) to the broker each one must reach: ListTransactions to every broker
//! (each answers for the transactional ids it coordinates), DescribeTransactions to the
//! coordinator FindCoordinator names, DescribeProducers and WriteTxnMarkers to a partition's
//! leader (or a chosen replica). librdkafka has none of these admin calls.
//!
//! This module owns the connections and the request shapes; what is shown is in `txn.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    describe_producers_request, describe_producers_response::ProducerState,
    describe_transactions_response, list_transactions_response, metadata_response,
    write_txn_markers_request, DescribeProducersRequest, DescribeTransactionsRequest,
    FindCoordinatorRequest, ListTransactionsRequest, MetadataResponse, ProducerId, TopicName,
    TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};
use strom_broker::interbroker::peer::PeerConnection;

use crate::client::ClientOptions;

/// How long to wait before asking again after a retriable coordinator error.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// FindCoordinator's key type for a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Kafka's name of an error code (`TRANSACTIONAL_ID_NOT_FOUND`), or `error code N`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_owned(),
        Some(ResponseError::Unknown(code)) => format!("error code {code}"),
        Some(error) => {
            let mut name = String::new();
            for (index, c) in format!("{error}").chars().enumerate() {
                if c.is_ascii_uppercase() && index > 0 {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

/// The cluster as Metadata describes it, with one connection per broker opened on first use.
pub struct Cluster {
    options: ClientOptions,
    /// The Metadata answer the brokers and leaders come from.
    pub metadata: MetadataResponse,
    connections: BTreeMap<i32, PeerConnection>,
}

impl Cluster {
    /// Reads the metadata of `topics` (every topic when `None`) from a bootstrap broker.
    pub async fn connect(
        options: &ClientOptions,
        topics: Option<&[String]>,
    ) -> anyhow::Result<Cluster> {
        let metadata = options.raw_metadata_async(topics).await?;
        Ok(Cluster {
            options: options.clone(),
            metadata,
            connections: BTreeMap::new(),
        })
    }

    /// Every broker id of the cluster, ascending.
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.metadata.brokers.iter().map(|b| b.node_id.0).collect();
        ids.sort_unstable();
        ids
    }

    /// The metadata of `topic`, or an error that says it does not exist.
    pub fn topic(&self, topic: &str) -> anyhow::Result<&metadata_response::MetadataResponseTopic> {
        self.metadata
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
            .filter(|t| t.error_code == 0)
            .ok_or_else(|| anyhow!("topic {topic:?} does not exist (use `strom topic list`)"))
    }

    /// The leader of `topic`-`partition`.
    pub fn leader(&self, topic: &str, partition: i32) -> anyhow::Result<i32> {
        let found = self
            .topic(topic)?
            .partitions
            .iter()
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| anyhow!("partition {topic}-{partition} does not exist"))?;
        if found.leader_id.0 < 0 {
            bail!("partition {topic}-{partition} has no leader now; retry later");
        }
        Ok(found.leader_id.0)
    }

    /// Sends `request` at `version` to broker `broker_id`.
    pub async fn call<R: Request>(
        &mut self,
        broker_id: i32,
        request: &R,
        version: i16,
    ) -> anyhow::Result<R::Response> {
        let timeout = self.options.timeout();
        if !self.connections.contains_key(&broker_id) || self.connections[&broker_id].is_closed() {
            let broker = self
                .metadata
                .brokers
                .iter()
                .find(|b| b.node_id.0 == broker_id)
                .ok_or_else(|| anyhow!("broker {broker_id} is not in the cluster's metadata"))?;
            let address = format!("{}:{}", broker.host, broker.port);
            let connection = PeerConnection::connect(&address, "strom-cli", timeout)
                .await
                .with_context(|| format!("could not connect to broker {broker_id} at {address}"))?;
            self.connections.insert(broker_id, connection);
        }
        let connection = &self.connections[&broker_id];
        connection
            .call(request, version, timeout)
            .await
            .with_context(|| format!("broker {broker_id} ({}) did not answer", connection.addr()))
    }

    /// Waits a little before retrying `code`, if it is a coordinator error Kafka's admin client
    /// retries and `started` is less than the request timeout ago; false when the caller
    /// should give up and report it.
    async fn retry_after(&self, code: i16, started: Instant) -> bool {
        let retriable = [
            ResponseError::CoordinatorLoadInProgress.code(),
            ResponseError::CoordinatorNotAvailable.code(),
            ResponseError::NotCoordinator.code(),
        ];
        if !retriable.contains(&code) || started.elapsed() >= self.options.timeout() {
            return false;
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
        true
    }

    /// FindCoordinator(TRANSACTION) for `transactional_id`: the coordinator's broker id.
    /// COORDINATOR_NOT_AVAILABLE (e.g. `__transaction_state` being created) is retried within
    /// the request timeout.
    pub async fn transaction_coordinator(&mut self, transactional_id: &str) -> anyhow::Result<i32> {
        let started = Instant::now();
        loop {
            match self.find_transaction_coordinator(transactional_id).await? {
                Ok(coordinator) => return Ok(coordinator),
                Err((code, _)) if self.retry_after(code, started).await => {}
                Err((code, message)) => bail!(
                    "no coordinator for transactional id {transactional_id:?}: {}{}",
                    error_name(code),
                    message.map(|m| format!(" ({m})")).unwrap_or_default()
                ),
            }
        }
    }

    /// One FindCoordinator(TRANSACTION): the coordinator, or the error code and message.
    async fn find_transaction_coordinator(
        &mut self,
        transactional_id: &str,
    ) -> anyhow::Result<Result<i32, (i16, Option<String>)>> {
        let mut request = FindCoordinatorRequest::default();
        request.key_type = KEY_TYPE_TRANSACTION;
        request.coordinator_keys = vec![StrBytes::from_string(transactional_id.to_owned())];
        let bootstrap = *self
            .broker_ids()
            .first()
            .ok_or_else(|| anyhow!("the cluster's metadata lists no broker"))?;
        let response = self.call(bootstrap, &request, 4).await?;
        let coordinator = response
            .coordinators
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("FindCoordinator answered no coordinator"))?;
        if coordinator.error_code != 0 {
            let message = coordinator.error_message.map(|m| m.to_string());
            return Ok(Err((coordinator.error_code, message)));
        }
        Ok(Ok(coordinator.node_id.0))
    }

    /// ListTransactions on broker `broker_id` with the given filters (the lowest version that
    /// carries them).
    pub async fn list_transactions(
        &mut self,
        broker_id: i32,
        filter: &ListFilter,
    ) -> anyhow::Result<Vec<list_transactions_response::TransactionState>> {
        let mut request = ListTransactionsRequest::default();
        request.state_filters = filter
            .states
            .iter()
            .map(|s| StrBytes::from_string(s.clone()))
            .collect();
        request.producer_id_filters = filter.producer_ids.iter().map(|&p| ProducerId(p)).collect();
        request.duration_filter = filter.duration_ms.unwrap_or(-1);
        request.transactional_id_pattern = filter
            .id_pattern
            .as_ref()
            .map(|p| StrBytes::from_string(p.clone()));
        let version = if filter.id_pattern.is_some() {
            2
        } else if filter.duration_ms.is_some() {
            1
        } else {
            0
        };
        let started = Instant::now();
        let mut response = self.call(broker_id, &request, version).await?;
        while self.retry_after(response.error_code, started).await {
            response = self.call(broker_id, &request, version).await?;
        }
        if response.error_code != 0 {
            bail!(
                "broker {broker_id} refused ListTransactions: {}",
                error_name(response.error_code)
            );
        }
        if let Some(unknown) = response.unknown_state_filters.first() {
            bail!("--state {unknown:?} is not a transaction state (broker {broker_id})");
        }
        Ok(response.transaction_states)
    }

    /// DescribeTransactions of one id on broker `broker_id` (its coordinator).
    pub async fn describe_transaction(
        &mut self,
        broker_id: i32,
        transactional_id: &str,
    ) -> anyhow::Result<describe_transactions_response::TransactionState> {
        let mut request = DescribeTransactionsRequest::default();
        request.transactional_ids = vec![TransactionalId(StrBytes::from_string(
            transactional_id.to_owned(),
        ))];
        let started = Instant::now();
        loop {
            let response = self.call(broker_id, &request, 0).await?;
            let state = response
                .transaction_states
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("DescribeTransactions answered no transaction"))?;
            if !self.retry_after(state.error_code, started).await {
                return Ok(state);
            }
        }
    }

    /// DescribeProducers of `partitions` of `topic` on broker `broker_id`: per partition, its
    /// producers or the error code.
    pub async fn describe_producers(
        &mut self,
        broker_id: i32,
        topic: &str,
        partitions: &[i32],
    ) -> anyhow::Result<BTreeMap<i32, Result<Vec<ProducerState>, i16>>> {
        let mut t = describe_producers_request::TopicRequest::default();
        t.name = TopicName(StrBytes::from_string(topic.to_owned()));
        t.partition_indexes = partitions.to_vec();
        let mut request = DescribeProducersRequest::default();
        request.topics = vec![t];
        let response = self.call(broker_id, &request, 0).await?;
        let mut answers = BTreeMap::new();
        for p in response.topics.into_iter().flat_map(|t| t.partitions) {
            let answer = if p.error_code == 0 {
                Ok(p.active_producers)
            } else {
                Err(p.error_code)
            };
            answers.insert(p.partition_index, answer);
        }
        Ok(answers)
    }

    /// WriteTxnMarkers v1 with one ABORT marker for `marker` on `topic`-`partition`, sent to
    /// broker `broker_id`: the partition's error code.
    pub async fn write_abort_marker(
        &mut self,
        broker_id: i32,
        topic: &str,
        partition: i32,
        marker: &AbortMarker,
    ) -> anyhow::Result<i16> {
        let mut t = write_txn_markers_request::WritableTxnMarkerTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_owned()));
        t.partition_indexes = vec![partition];
        let mut m = write_txn_markers_request::WritableTxnMarker::default();
        m.producer_id = ProducerId(marker.producer_id);
        m.producer_epoch = marker.producer_epoch;
        m.transaction_result = false;
        m.coordinator_epoch = marker.coordinator_epoch;
        m.topics = vec![t];
        let mut request = WriteTxnMarkersRequest::default();
        request.markers = vec![m];
        let response = self.call(broker_id, &request, 1).await?;
        response
            .markers
            .iter()
            .flat_map(|m| &m.topics)
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition)
            .map(|p| p.error_code)
            .ok_or_else(|| anyhow!("WriteTxnMarkers answered nothing for {topic}-{partition}"))
    }

    /// Closes every connection.
    pub fn close(&self) {
        for connection in self.connections.values() {
            connection.close();
        }
    }
}

/// The filters of ListTransactions.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// State names; empty for all.
    pub states: Vec<String>,
    /// Producer ids; empty for all.
    pub producer_ids: Vec<i64>,
    /// Minimum running time in milliseconds.
    pub duration_ms: Option<i64>,
    /// A regular expression the transactional id must match.
    pub id_pattern: Option<String>,
}

/// What an ABORT marker names: the transaction's producer and the coordinator epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortMarker {
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The coordinator epoch.
    pub coordinator_epoch: i32,
}

#[cfg(test)]
mod tests {
    use super::error_name;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(105), "TRANSACTIONAL_ID_NOT_FOUND");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-2), "error code -2");
    }
}
