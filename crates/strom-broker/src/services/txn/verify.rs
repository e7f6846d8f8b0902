//! KIP-890 part 1 on the partition leader: before a transactional batch opens its producer's
//! transaction on a partition, the leader asks the transaction coordinator (AddPartitionsToTxn
//! v4, `verify_only`) whether the partition is in the producer's ongoing transaction at that
//! epoch, and appends only if it is (Kafka's `AddPartitionsToTxnManager` and the verification
//! guard of `ReplicaManager`).
//!
//! The produce handler calls [`admit`] for each partition's batch, in request order, inline:
//! a batch that needs no verification (not transactional, verification off, or its producer's
//! transaction already open on the partition) is appended at once as before; one that does
//! gets a [`Ticket`] and the handler spawns [`verify_and_append`] for it. Tickets of one
//! producer on one partition form a chain ([`Waiting`]): each waits for the previous one's
//! append and inherits its verdict, so pipelined batches keep their order (and sequence
//! numbers) and only the first pays the round trip. The guard itself lives in the log
//! ([`strom_log::log::verification`]), which refuses the append if a marker ended the
//! transaction between the coordinator's answer and the append.
//!
//! The coordinator is this broker's own core when it leads the transactional id's
//! `__transaction_state` partition (always on a single node), else the leader of that
//! partition, over a kept connection per broker ([`super::markers::MarkerChannel`]).
//! Error codes follow Kafka 4: see [`produce_error`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId};
use strom_log::log::Verification;
use strom_log::{AppendError, AppendInfo};
use strom_meta::replication::TopicPartition;
use strom_meta::txn::{Input, Response};

use super::TXN_TOPIC;
use crate::services::replica::partition::Partition;
use crate::services::replica::verifying::Verdict;
pub use crate::services::replica::verifying::{Ticket, Waiting};
use crate::services::Services;

/// The AddPartitionsToTxn version a leader sends the coordinator (the first batched one).
const VERIFY_VERSION: i16 = 4;
/// How long a verification may take (Kafka's `request.timeout.ms` default).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// The first Produce version whose clients know TRANSACTION_ABORTABLE (Kafka 3.8).
const FIRST_ABORTABLE_PRODUCE_VERSION: i16 = 11;
/// The first Produce version of transaction version 2, where Kafka adds the partition itself
/// instead of verifying; Strom does not advertise transaction version 2, so it verifies there
/// too and only keeps that version's error mapping.
const FIRST_ADD_PARTITION_PRODUCE_VERSION: i16 = 12;

/// The producer id and epoch of a transactional data batch (magic 2, transactional bit set,
/// not a control batch), read from the header without decoding; `None` for anything else,
/// which the log validates as usual.
pub fn transactional_producer(records: &[u8]) -> Option<(i64, i16)> {
    const MAGIC: usize = 16;
    const ATTRIBUTES: usize = 21;
    const PRODUCER_ID: usize = 43;
    const PRODUCER_EPOCH: usize = 51;
    if records.len() < strom_log::BATCH_HEADER_LEN || records[MAGIC] != 2 {
        return None;
    }
    let attributes = u16::from_be_bytes([records[ATTRIBUTES], records[ATTRIBUTES + 1]]);
    if attributes & 0x10 == 0 || attributes & 0x20 != 0 {
        return None;
    }
    let producer_id = i64::from_be_bytes(records[PRODUCER_ID..PRODUCER_ID + 8].try_into().ok()?);
    let epoch = i16::from_be_bytes([records[PRODUCER_EPOCH], records[PRODUCER_EPOCH + 1]]);
    (producer_id >= 0).then_some((producer_id, epoch))
}

/// How a produce's batch goes to the log.
pub enum Admission {
    /// Append now, with this check.
    Now(Verification),
    /// Wait for verification: spawn [`verify_and_append`] with the ticket.
    Wait(Ticket),
}

/// Decides, inline and in request order, whether `records` can be appended to `partition` at
/// once or must wait for verification (see the module documentation). `verification` is the
/// broker's setting ([`super::TxnService::produce_verification`]). Costs a non-transactional
/// batch one byte test.
pub fn admit(partition: &Partition, records: &[u8], verification: Verification) -> Admission {
    if verification == Verification::Off {
        return Admission::Now(verification);
    }
    let Some((producer_id, producer_epoch)) = transactional_producer(records) else {
        return Admission::Now(verification);
    };
    // The chains' lock is taken before the log's: a producer with batches already waiting
    // waits behind them even if its transaction is open by now. The log checks again under
    // its lock when it appends: a marker in between makes the append fail with
    // INVALID_TXN_STATE rather than open a new transaction.
    let ticket = partition.verifying.ticket(producer_id, producer_epoch, || {
        partition
            .log()
            .lock()
            .unwrap()
            .has_ongoing_transaction(producer_id, producer_epoch)
    });
    match ticket {
        Some(ticket) => Admission::Wait(ticket),
        None => Admission::Now(verification),
    }
}

/// Why a waiting batch was not appended.
pub enum Refused {
    /// The coordinator's answer (or the failure to get one), as the coordinator's code.
    Unverified(i16),
    /// The log refused the append.
    Append(AppendError),
}

/// Waits for the batches ahead in the chain, verifies (or inherits the verdict of the batch
/// ahead at the same epoch), appends, and hands the verdict to the next batch.
pub async fn verify_and_append(
    services: Arc<Services>,
    partition: Arc<Partition>,
    records: Bytes,
    transactional_id: Arc<str>,
    ticket: Ticket,
) -> Result<AppendInfo, Refused> {
    let Ticket {
        producer_id,
        producer_epoch,
        number,
        previous,
        done,
    } = ticket;
    let inherited = match previous {
        Some(previous) => previous.await.ok(),
        None => None,
    };
    let verdict = match inherited {
        Some(verdict) if verdict.producer_epoch == producer_epoch => verdict,
        _ => {
            let guard = partition
                .log()
                .lock()
                .unwrap()
                .verification_guard(producer_id, producer_epoch);
            let outcome = match guard {
                None => Ok(None),
                Some(guard) => {
                    let tp = TopicPartition {
                        topic: partition.topic_partition.topic.clone(),
                        partition: partition.topic_partition.partition,
                    };
                    match verify(
                        &services,
                        &transactional_id,
                        producer_id,
                        producer_epoch,
                        tp,
                    )
                    .await
                    {
                        0 => Ok(Some(guard)),
                        code => Err(code),
                    }
                }
            };
            Verdict {
                producer_epoch,
                outcome,
            }
        }
    };
    let result = match verdict.outcome {
        Ok(guard) => partition
            .append_produce(
                records,
                crate::clock::now_ms(),
                Verification::Required(guard),
            )
            .map_err(Refused::Append),
        Err(code) => Err(Refused::Unverified(code)),
    };
    let _ = done.send(verdict);
    partition.verifying.finish(producer_id, number);
    result
}

/// Asks the coordinator of `transactional_id` whether `tp` is in the ongoing transaction of
/// `(producer_id, producer_epoch)`: the coordinator's per-partition code (0: it is), or
/// `COORDINATOR_NOT_AVAILABLE` / `NETWORK_EXCEPTION` when no coordinator answered.
pub async fn verify(
    services: &Arc<Services>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    tp: TopicPartition,
) -> i16 {
    if !services.metadata.cluster().topics.contains_key(TXN_TOPIC) {
        return E::CoordinatorNotAvailable.code();
    }
    let local = services.metadata.local_broker_id();
    let coordinator = if services.cluster.get().is_some() {
        let partition = services.txn.partition_of(services, transactional_id);
        match services.metadata.leader(TXN_TOPIC, partition) {
            Some(leader) => leader,
            None => return E::CoordinatorNotAvailable.code(),
        }
    } else {
        local
    };
    if coordinator == local {
        let id = transactional_id.to_string();
        let partitions = vec![tp.clone()];
        let rx = super::request(services, |token| Input::AddPartitions {
            token,
            transactional_id: id,
            producer_id,
            producer_epoch,
            partitions,
            verify_only: true,
        });
        return match rx.await {
            Ok(Response::AddPartitions { results }) => results
                .iter()
                .find(|(partition, _)| *partition == tp)
                .map_or(E::UnknownServerError.code(), |(_, code)| *code),
            _ => E::CoordinatorNotAvailable.code(),
        };
    }
    verify_remote(
        services,
        coordinator,
        transactional_id,
        producer_id,
        producer_epoch,
        tp,
    )
    .await
}

async fn verify_remote(
    services: &Arc<Services>,
    coordinator: strom_meta::replication::BrokerId,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    tp: TopicPartition,
) -> i16 {
    let Some(peer) = services
        .txn
        .verify_channel
        .connection(services, coordinator)
        .await
    else {
        return E::NetworkException.code();
    };
    let mut topic = AddPartitionsToTxnTopic::default();
    topic.name = TopicName(tp.topic.clone().into());
    topic.partitions = vec![tp.partition];
    let mut transaction = AddPartitionsToTxnTransaction::default();
    transaction.transactional_id = TransactionalId(transactional_id.to_string().into());
    transaction.producer_id = ProducerId(producer_id);
    transaction.producer_epoch = producer_epoch;
    transaction.verify_only = true;
    transaction.topics = vec![topic];
    let mut request = AddPartitionsToTxnRequest::default();
    request.transactions = vec![transaction];
    let answer = match peer.call(&request, VERIFY_VERSION, VERIFY_TIMEOUT).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::info!(coordinator, error = %e, "a transaction verification failed");
            return E::NetworkException.code();
        }
    };
    if answer.error_code != 0 {
        // A client must not see CLUSTER_AUTHORIZATION_FAILED: the partition is simply not
        // verified.
        return if answer.error_code == E::ClusterAuthorizationFailed.code() {
            E::InvalidTxnState.code()
        } else {
            answer.error_code
        };
    }
    answer
        .results_by_transaction
        .iter()
        .flat_map(|t| t.topic_results.iter())
        .filter(|t| t.name.0.as_str() == tp.topic)
        .flat_map(|t| t.results_by_partition.iter())
        .find(|p| p.partition_index == tp.partition)
        .map_or(E::UnknownServerError.code(), |p| p.partition_error_code)
}

/// The code and message a Produce of `version` answers for a batch the coordinator did not
/// verify with `code`, as Kafka 4 maps them: `PRODUCER_FENCED` is `INVALID_PRODUCER_EPOCH`
/// (what producers handle there); `TRANSACTION_ABORTABLE` is `INVALID_TXN_STATE` below
/// Produce v11, whose clients do not know it; coordinator-side retriable errors become
/// `NOT_ENOUGH_REPLICAS`, which every producer retries without a metadata refresh.
pub fn produce_error(code: i16, version: i16) -> (i16, Option<String>) {
    let code = if code == E::ProducerFenced.code() {
        E::InvalidProducerEpoch.code()
    } else if code == E::TransactionAbortable.code() && version < FIRST_ABORTABLE_PRODUCE_VERSION {
        E::InvalidTxnState.code()
    } else {
        code
    };
    let retriable = [
        (E::NetworkException, "NETWORK_EXCEPTION"),
        (E::CoordinatorLoadInProgress, "COORDINATOR_LOAD_IN_PROGRESS"),
        (E::CoordinatorNotAvailable, "COORDINATOR_NOT_AVAILABLE"),
        (E::NotCoordinator, "NOT_COORDINATOR"),
        (E::ConcurrentTransactions, "CONCURRENT_TRANSACTIONS"),
    ];
    for (error, name) in retriable {
        if code == error.code()
            && (error != E::ConcurrentTransactions || version < FIRST_ADD_PARTITION_PRODUCE_VERSION)
        {
            return (
                E::NotEnoughReplicas.code(),
                Some(format!(
                    "Unable to verify the partition has been added to the transaction. \
                     Underlying error: {name}"
                )),
            );
        }
    }
    if code == E::InvalidTxnState.code() {
        return (
            code,
            Some("Partition was not added to the transaction".to_string()),
        );
    }
    (code, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_errors_follow_kafka_per_version() {
        let abortable = E::TransactionAbortable.code();
        assert_eq!(produce_error(abortable, 10).0, E::InvalidTxnState.code());
        assert_eq!(
            produce_error(abortable, 10).1.as_deref(),
            Some("Partition was not added to the transaction")
        );
        assert_eq!(produce_error(abortable, 11), (abortable, None));
        assert_eq!(
            produce_error(E::ProducerFenced.code(), 11).0,
            E::InvalidProducerEpoch.code()
        );
        for code in [
            E::NetworkException,
            E::CoordinatorLoadInProgress,
            E::CoordinatorNotAvailable,
            E::NotCoordinator,
        ] {
            for version in [3, 9, 11, 12] {
                assert_eq!(
                    produce_error(code.code(), version).0,
                    E::NotEnoughReplicas.code()
                );
            }
        }
        let concurrent = E::ConcurrentTransactions.code();
        assert_eq!(produce_error(concurrent, 11).0, E::NotEnoughReplicas.code());
        assert_eq!(produce_error(concurrent, 12), (concurrent, None));
        let mapping = E::InvalidProducerIdMapping.code();
        assert_eq!(produce_error(mapping, 9), (mapping, None));
    }

    #[test]
    fn transactional_producer_reads_only_transactional_data_batches() {
        let mut header = vec![0u8; strom_log::BATCH_HEADER_LEN];
        header[16] = 2;
        header[43..51].copy_from_slice(&42i64.to_be_bytes());
        header[51..53].copy_from_slice(&3i16.to_be_bytes());
        assert_eq!(transactional_producer(&header), None, "not transactional");
        header[22] = 0x10;
        assert_eq!(transactional_producer(&header), Some((42, 3)));
        header[22] = 0x30;
        assert_eq!(transactional_producer(&header), None, "a control batch");
        header[22] = 0x10;
        header[16] = 1;
        assert_eq!(transactional_producer(&header), None, "magic 1");
        header[16] = 2;
        assert_eq!(transactional_producer(&header[..60]), None, "short");
        header[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        assert_eq!(transactional_producer(&header), None, "no producer id");
    }
}
