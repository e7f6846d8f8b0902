//! The request handlers: InitProducerId, AddPartitionsToTxn (and AddOffsetsToTxn, verify-only
//! included) and EndTxn, with Kafka's checks in Kafka's order (`TransactionCoordinator`).

use super::coordinator::{init_error, InitRequest, Lookup, Txn, TxnCoordinator, WriteKind};
use super::errors::*;
use super::metadata::TxnMetadata;
use super::{Effect, RequestToken, Response, TxnState, NO_PRODUCER_EPOCH};
use crate::replication::TopicPartition;

impl TxnCoordinator {
    /// InitProducerId; `allocated` is a fresh producer id once [`Effect::AllocateProducerId`]
    /// answered (the request is then decided again, as the metadata may have changed).
    pub(super) fn init_producer_id(
        &mut self,
        token: RequestToken,
        request: InitRequest,
        allocated: Option<i64>,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        let id = request.transactional_id.clone();
        if id.is_empty() || id.len() > i16::MAX as usize {
            return effects.push(init_error(token, INVALID_REQUEST));
        }
        if request.timeout_ms <= 0 || request.timeout_ms > self.config.max_timeout_ms {
            return effects.push(init_error(token, INVALID_TRANSACTION_TIMEOUT));
        }
        let txns = match self.lookup(&id) {
            Lookup::NotCoordinator => return effects.push(init_error(token, NOT_COORDINATOR)),
            Lookup::Loading => {
                return effects.push(init_error(token, COORDINATOR_LOAD_IN_PROGRESS))
            }
            Lookup::Loaded(txns) => txns,
        };
        if !txns.contains_key(&id) {
            let Some(producer_id) = allocated else {
                self.awaiting_producer_id.insert(token, request);
                return effects.push(Effect::AllocateProducerId { token });
            };
            let meta = TxnMetadata::new(&id, producer_id, request.timeout_ms, now_ms);
            txns.insert(
                id.clone(),
                Txn {
                    meta,
                    markers: None,
                },
            );
        }
        let meta = &mut txns.get_mut(&id).expect("present").meta;
        if meta.pending.is_some() {
            return effects.push(init_error(token, CONCURRENT_TRANSACTIONS));
        }
        if let Some((producer_id, epoch)) = request.current {
            // Kafka's `isValidProducerId`: a new metadata, the current producer id (its epoch
            // is checked below), or the previous producer id retrying after a rotation.
            let valid = meta.producer_epoch == NO_PRODUCER_EPOCH
                || producer_id == meta.producer_id
                || (producer_id == meta.last_producer_id && TxnMetadata::epoch_exhausted(epoch));
            if !valid {
                return effects.push(init_error(token, PRODUCER_FENCED));
            }
        }
        let expected_epoch = request.current.map(|(_, epoch)| epoch);
        let transit = match meta.state {
            TxnState::PrepareCommit
            | TxnState::PrepareAbort
            | TxnState::Dead
            | TxnState::PrepareEpochFence => {
                return effects.push(init_error(token, CONCURRENT_TRANSACTIONS));
            }
            TxnState::Ongoing => {
                // Fence the producer of the open transaction; this one retries once it is aborted.
                self.fence_and_abort(&id, now_ms, effects);
                return effects.push(init_error(token, CONCURRENT_TRANSACTIONS));
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut transit = meta.transit(TxnState::Empty, now_ms);
                transit.timeout_ms = request.timeout_ms;
                transit.start_timestamp_ms = -1;
                transit.partitions.clear();
                if TxnMetadata::epoch_exhausted(meta.producer_epoch)
                    && expected_epoch.is_none_or(|epoch| epoch == meta.producer_epoch)
                {
                    // Rotate to a new producer id at epoch 0.
                    let Some(producer_id) = allocated else {
                        self.awaiting_producer_id.insert(token, request);
                        return effects.push(Effect::AllocateProducerId { token });
                    };
                    transit.last_producer_id = meta.producer_id;
                    transit.producer_id = producer_id;
                    transit.producer_epoch = 0;
                    transit.last_producer_epoch = if expected_epoch.is_some() {
                        meta.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                } else {
                    let bumped = meta.producer_epoch + 1;
                    let (epoch, last_epoch) = match expected_epoch {
                        None => (bumped, NO_PRODUCER_EPOCH),
                        Some(expected)
                            if meta.producer_epoch == NO_PRODUCER_EPOCH
                                || expected == meta.producer_epoch =>
                        {
                            (bumped, meta.producer_epoch)
                        }
                        // A retry whose answer was lost: the same epoch again.
                        Some(expected) if expected == meta.last_producer_epoch => {
                            (meta.producer_epoch, meta.last_producer_epoch)
                        }
                        Some(_) => return effects.push(init_error(token, PRODUCER_FENCED)),
                    };
                    transit.producer_epoch = epoch;
                    transit.last_producer_epoch = last_epoch;
                }
                transit
            }
        };
        meta.pending = Some(TxnState::Empty);
        self.write(&id, Some(transit), Some(token), WriteKind::Init, effects);
    }

    /// AddPartitionsToTxn, AddOffsetsToTxn, and (`verify_only`) the partition leaders'
    /// KIP-890 check that a producer's partition is in its open transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_partitions(
        &mut self,
        token: RequestToken,
        id: &str,
        (producer_id, producer_epoch): (i64, i16),
        partitions: Vec<TopicPartition>,
        verify_only: bool,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        let respond_all =
            |effects: &mut Vec<Effect>, partitions: Vec<TopicPartition>, error: i16| {
                let results = partitions
                    .into_iter()
                    .map(|partition| (partition, error))
                    .collect();
                effects.push(Effect::Respond {
                    token,
                    response: Response::AddPartitions { results },
                });
            };
        let too_long = |text: &str| text.len() > i16::MAX as usize;
        if id.is_empty() || too_long(id) || partitions.iter().any(|p| too_long(&p.topic)) {
            return respond_all(effects, partitions, INVALID_REQUEST);
        }
        let txns = match self.lookup(id) {
            Lookup::NotCoordinator => return respond_all(effects, partitions, NOT_COORDINATOR),
            Lookup::Loading => {
                return respond_all(effects, partitions, COORDINATOR_LOAD_IN_PROGRESS)
            }
            Lookup::Loaded(txns) => txns,
        };
        let Some(txn) = txns.get_mut(id) else {
            return respond_all(effects, partitions, INVALID_PRODUCER_ID_MAPPING);
        };
        let meta = &mut txn.meta;
        if meta.producer_id != producer_id {
            return respond_all(effects, partitions, INVALID_PRODUCER_ID_MAPPING);
        }
        if meta.producer_epoch != producer_epoch {
            return respond_all(effects, partitions, PRODUCER_FENCED);
        }
        if verify_only {
            // Kafka checks no pending state here: the partition leader's append is validated
            // again when it is written. A partition outside the transaction is
            // TRANSACTION_ABORTABLE, which the asking leader maps for old producers.
            if matches!(meta.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
                return respond_all(effects, partitions, CONCURRENT_TRANSACTIONS);
            }
            let results = partitions
                .into_iter()
                .map(|partition| {
                    let known = meta.partitions.contains(&partition);
                    (partition, if known { NONE } else { TRANSACTION_ABORTABLE })
                })
                .collect();
            return effects.push(Effect::Respond {
                token,
                response: Response::AddPartitions { results },
            });
        }
        if meta.pending.is_some()
            || matches!(
                meta.state,
                TxnState::PrepareCommit
                    | TxnState::PrepareAbort
                    | TxnState::Dead
                    | TxnState::PrepareEpochFence
            )
        {
            return respond_all(effects, partitions, CONCURRENT_TRANSACTIONS);
        }
        if meta.state == TxnState::Ongoing
            && partitions
                .iter()
                .all(|partition| meta.partitions.contains(partition))
        {
            return respond_all(effects, partitions, NONE);
        }
        let mut transit = meta.transit(TxnState::Ongoing, now_ms);
        if meta.state != TxnState::Ongoing {
            transit.start_timestamp_ms = now_ms;
        }
        transit.partitions.extend(partitions.iter().cloned());
        meta.pending = Some(TxnState::Ongoing);
        self.write(
            id,
            Some(transit),
            Some(token),
            WriteKind::AddPartitions(partitions),
            effects,
        );
    }

    /// EndTxn from a client (`from_client`, with `token`) or from the coordinator itself
    /// (a fence or a timeout, abort only, at the bumped epoch). Returns the error to answer
    /// with now, or `None` when a write was started (or, without a token, nothing to say).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn end_txn(
        &mut self,
        token: Option<RequestToken>,
        id: &str,
        (producer_id, producer_epoch): (i64, i16),
        commit: bool,
        from_client: bool,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Option<i16> {
        if id.is_empty() {
            return Some(INVALID_REQUEST);
        }
        let txns = match self.lookup(id) {
            Lookup::NotCoordinator => return Some(NOT_COORDINATOR),
            Lookup::Loading => return Some(COORDINATOR_LOAD_IN_PROGRESS),
            Lookup::Loaded(txns) => txns,
        };
        let Some(txn) = txns.get_mut(id) else {
            return Some(INVALID_PRODUCER_ID_MAPPING);
        };
        let meta = &mut txn.meta;
        if meta.producer_id != producer_id {
            return Some(INVALID_PRODUCER_ID_MAPPING);
        }
        // Clients must match the epoch exactly; the coordinator's own abort carries a bump.
        if (from_client && producer_epoch != meta.producer_epoch)
            || producer_epoch < meta.producer_epoch
        {
            return Some(PRODUCER_FENCED);
        }
        let fencing = meta.pending == Some(TxnState::PrepareEpochFence);
        if meta.pending.is_some() && !fencing {
            return Some(CONCURRENT_TRANSACTIONS);
        }
        let error = match (meta.state, commit) {
            (TxnState::Ongoing, _) => {
                let next = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                let fence = next == TxnState::PrepareAbort && fencing;
                if fence {
                    // Kafka applies the bumped epoch in memory before the write, so the fenced
                    // producer is refused even if the write fails.
                    meta.producer_epoch = producer_epoch;
                    meta.last_producer_epoch = NO_PRODUCER_EPOCH;
                } else if fencing {
                    meta.pending = None;
                    return Some(INVALID_TXN_STATE);
                }
                let transit = meta.transit(next, now_ms);
                meta.pending = Some(next);
                self.write(
                    id,
                    Some(transit),
                    token,
                    WriteKind::Prepare { fence },
                    effects,
                );
                return None;
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => NONE,
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                CONCURRENT_TRANSACTIONS
            }
            _ => INVALID_TXN_STATE,
        };
        if fencing {
            meta.pending = None;
        }
        Some(error)
    }
}
