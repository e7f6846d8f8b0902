//! The coordinator: which `__transaction_state` partitions it leads, the metadata of their
//! transactional ids, the writes in flight and the markers outstanding. Request handlers are
//! in `requests.rs`; this file holds [`TxnCoordinator::step`], loading, write and marker
//! completion, and the timers.

use std::collections::{BTreeMap, BTreeSet};

use super::codec::{decode_key, decode_value, encode_key, encode_value};
use super::errors::*;
use super::metadata::{Transit, TxnDescription, TxnMetadata};
use super::{
    partition_for, AppendOutcome, Effect, Input, MarkerOutcome, RequestToken, Response, TxnConfig,
    TxnResult, TxnState, WriteId,
};
use crate::replication::TopicPartition;

/// The transaction coordinator of one broker (see the module documentation).
#[derive(Debug)]
pub struct TxnCoordinator {
    pub(super) config: TxnConfig,
    pub(super) partitions: BTreeMap<i32, LogPartition>,
    next_write: u64,
    /// Invariant: every entry's transactional id has `pending == Some(transit.state)`.
    pub(super) writes: BTreeMap<WriteId, PendingWrite>,
    /// InitProducerId requests waiting for a producer id.
    pub(super) awaiting_producer_id: BTreeMap<RequestToken, InitRequest>,
}

/// A `__transaction_state` partition this broker leads.
#[derive(Debug)]
pub(super) struct LogPartition {
    pub(super) coordinator_epoch: i32,
    /// `None` while loading.
    pub(super) txns: Option<BTreeMap<String, Txn>>,
}

/// One transactional id.
#[derive(Debug)]
pub(super) struct Txn {
    pub(super) meta: TxnMetadata,
    /// Set from the PrepareCommit/PrepareAbort write (or load) to the Complete write.
    pub(super) markers: Option<Markers>,
}

/// The markers of a prepared transaction.
#[derive(Debug)]
pub(super) struct Markers {
    result: TxnResult,
    /// Partitions whose marker is not acknowledged yet.
    outstanding: BTreeSet<TopicPartition>,
    /// Of those, the ones to send again at `retry_at_ms`.
    resend: BTreeSet<TopicPartition>,
    retry_at_ms: i64,
    /// A leader knows a newer coordinator: send nothing more.
    stopped: bool,
    /// The Complete write failed: write it again at `retry_at_ms`.
    complete_failed: bool,
}

/// An InitProducerId as parked.
#[derive(Clone, Debug)]
pub(super) struct InitRequest {
    pub(super) transactional_id: String,
    pub(super) timeout_ms: i32,
    pub(super) current: Option<(i64, i16)>,
}

/// What a write in flight is for.
#[derive(Debug)]
pub(super) enum WriteKind {
    Init,
    AddPartitions(Vec<TopicPartition>),
    /// PrepareCommit or PrepareAbort; `fence` when it aborts a fenced or timed-out producer.
    Prepare {
        fence: bool,
    },
    Complete,
    Remove,
}

#[derive(Debug)]
pub(super) struct PendingWrite {
    partition: i32,
    coordinator_epoch: i32,
    transactional_id: String,
    /// `None` for a tombstone.
    transit: Option<Transit>,
    token: Option<RequestToken>,
    kind: WriteKind,
}

/// Where a transactional id stands on this broker.
pub(super) enum Lookup<'a> {
    NotCoordinator,
    Loading,
    Loaded(&'a mut BTreeMap<String, Txn>),
}

impl TxnCoordinator {
    /// A coordinator leading no partition yet.
    pub fn new(config: TxnConfig) -> TxnCoordinator {
        TxnCoordinator {
            config,
            partitions: BTreeMap::new(),
            next_write: 0,
            writes: BTreeMap::new(),
            awaiting_producer_id: BTreeMap::new(),
        }
    }

    /// Applies one input at `now_ms` and returns what the shell must do, in order.
    pub fn step(&mut self, input: Input, now_ms: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        match input {
            Input::InitProducerId {
                token,
                transactional_id,
                timeout_ms,
                current,
            } => {
                let request = InitRequest {
                    transactional_id,
                    timeout_ms,
                    current,
                };
                self.init_producer_id(token, request, None, now_ms, &mut effects);
            }
            Input::ProducerIdAllocated { token, result } => {
                if let Some(request) = self.awaiting_producer_id.remove(&token) {
                    match result {
                        Ok(id) => {
                            self.init_producer_id(token, request, Some(id), now_ms, &mut effects)
                        }
                        Err(error) => effects.push(init_error(token, error)),
                    }
                }
            }
            Input::AddPartitions {
                token,
                transactional_id,
                producer_id,
                producer_epoch,
                partitions,
                verify_only,
            } => self.add_partitions(
                token,
                &transactional_id,
                (producer_id, producer_epoch),
                partitions,
                verify_only,
                now_ms,
                &mut effects,
            ),
            Input::EndTxn {
                token,
                transactional_id,
                producer_id,
                producer_epoch,
                commit,
            } => {
                let error = self.end_txn(
                    Some(token),
                    &transactional_id,
                    (producer_id, producer_epoch),
                    commit,
                    true,
                    now_ms,
                    &mut effects,
                );
                if let Some(error) = error {
                    effects.push(Effect::Respond {
                        token,
                        response: Response::EndTxn { error },
                    });
                }
            }
            Input::Appended { write, outcome } => {
                self.appended(write, outcome, now_ms, &mut effects)
            }
            Input::MarkerResult {
                transactional_id,
                producer_id,
                producer_epoch,
                partition,
                outcome,
            } => self.marker_result(
                &transactional_id,
                (producer_id, producer_epoch),
                partition,
                outcome,
                now_ms,
                &mut effects,
            ),
            Input::BecomeCoordinator {
                partition,
                coordinator_epoch,
            } => {
                self.resign(partition, &mut effects);
                self.partitions.insert(
                    partition,
                    LogPartition {
                        coordinator_epoch,
                        txns: None,
                    },
                );
                effects.push(Effect::ReadPartition {
                    partition,
                    coordinator_epoch,
                });
            }
            Input::PartitionRead {
                partition,
                coordinator_epoch,
                records,
            } => self.load(partition, coordinator_epoch, records, now_ms, &mut effects),
            Input::ResignCoordinator { partition } => self.resign(partition, &mut effects),
            Input::Tick => self.tick(now_ms, &mut effects),
        }
        effects
    }

    /// The metadata of a transactional id loaded here.
    pub fn metadata(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        let partition = partition_for(transactional_id, self.config.log_partitions);
        let txns = self.partitions.get(&partition)?.txns.as_ref()?;
        txns.get(transactional_id).map(|txn| &txn.meta)
    }

    /// DescribeTransactions for one id: its description, or `NOT_COORDINATOR`,
    /// `COORDINATOR_LOAD_IN_PROGRESS` or `TRANSACTIONAL_ID_NOT_FOUND`.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnDescription, i16> {
        let partition = partition_for(transactional_id, self.config.log_partitions);
        let loaded = self.partitions.get(&partition).ok_or(NOT_COORDINATOR)?;
        let txns = loaded.txns.as_ref().ok_or(COORDINATOR_LOAD_IN_PROGRESS)?;
        let txn = txns
            .get(transactional_id)
            .ok_or(TRANSACTIONAL_ID_NOT_FOUND)?;
        Ok(txn.meta.describe())
    }

    /// ListTransactions: every transactional id of the loaded partitions (Dead ones excluded),
    /// and whether some partition is still loading (Kafka then answers
    /// `COORDINATOR_LOAD_IN_PROGRESS`).
    pub fn list(&self) -> (Vec<TxnDescription>, bool) {
        let mut loading = false;
        let mut all = Vec::new();
        for partition in self.partitions.values() {
            match &partition.txns {
                None => loading = true,
                Some(txns) => all.extend(
                    txns.values()
                        .filter(|txn| txn.meta.state != TxnState::Dead)
                        .map(|txn| txn.meta.describe()),
                ),
            }
        }
        (all, loading)
    }

    /// The `__transaction_state` partitions this coordinator leads (loaded or loading).
    pub fn partitions(&self) -> Vec<i32> {
        self.partitions.keys().copied().collect()
    }

    pub(super) fn lookup(&mut self, transactional_id: &str) -> Lookup<'_> {
        let partition = partition_for(transactional_id, self.config.log_partitions);
        match self.partitions.get_mut(&partition) {
            None => Lookup::NotCoordinator,
            Some(LogPartition { txns: None, .. }) => Lookup::Loading,
            Some(LogPartition {
                txns: Some(txns), ..
            }) => Lookup::Loaded(txns),
        }
    }

    /// Emits the write of `transit` (or a tombstone) for `transactional_id`, whose pending
    /// state the caller has set.
    pub(super) fn write(
        &mut self,
        transactional_id: &str,
        transit: Option<Transit>,
        token: Option<RequestToken>,
        kind: WriteKind,
        effects: &mut Vec<Effect>,
    ) {
        let partition = partition_for(transactional_id, self.config.log_partitions);
        let coordinator_epoch = self.partitions[&partition].coordinator_epoch;
        let write = WriteId(self.next_write);
        self.next_write += 1;
        let value = transit
            .as_ref()
            .map(|transit| encode_value(&transit.log_value(), self.config.value_version));
        effects.push(Effect::Append {
            write,
            partition,
            coordinator_epoch,
            key: encode_key(transactional_id),
            value,
        });
        self.writes.insert(
            write,
            PendingWrite {
                partition,
                coordinator_epoch,
                transactional_id: transactional_id.to_owned(),
                transit,
                token,
                kind,
            },
        );
    }

    fn appended(
        &mut self,
        write: WriteId,
        outcome: AppendOutcome,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        let Some(pending) = self.writes.remove(&write) else {
            return; // its partition was unloaded, and its request answered then
        };
        let loaded = self.partitions.get_mut(&pending.partition);
        let Some(txns) = loaded
            .filter(|loaded| loaded.coordinator_epoch == pending.coordinator_epoch)
            .and_then(|loaded| loaded.txns.as_mut())
        else {
            unreachable!("a write outlived its partition's unload");
        };
        let id = pending.transactional_id;
        let txn = txns
            .get_mut(&id)
            .expect("a transactional id with a write in flight stays");
        let error = match outcome {
            AppendOutcome::Written => None,
            AppendOutcome::Failed(code) => Some(client_error(code)),
        };
        if let Some(error) = error {
            txn.meta.pending = None;
            match pending.kind {
                WriteKind::Prepare { fence: true } => txn.meta.failed_epoch_fence = true,
                WriteKind::Complete => {
                    let markers = txn.markers.as_mut().expect("completing without markers");
                    markers.complete_failed = true;
                    markers.retry_at_ms = now_ms + self.config.retry_backoff_ms;
                }
                _ => {}
            }
            if let Some(token) = pending.token {
                effects.push(error_response(token, &pending.kind, error));
            }
            return;
        }
        let Some(transit) = pending.transit else {
            let txn = txns.remove(&id).expect("present");
            assert_eq!(
                txn.meta.pending,
                Some(TxnState::Dead),
                "{id}: tombstone without Dead"
            );
            return;
        };
        txn.meta.complete(transit);
        let meta = &txn.meta;
        let response = match pending.kind {
            WriteKind::Init => Some(Response::InitProducerId {
                error: NONE,
                producer_id: meta.producer_id,
                producer_epoch: meta.producer_epoch,
            }),
            WriteKind::AddPartitions(partitions) => Some(Response::AddPartitions {
                results: partitions
                    .into_iter()
                    .map(|partition| (partition, NONE))
                    .collect(),
            }),
            WriteKind::Prepare { .. } => Some(Response::EndTxn { error: NONE }),
            WriteKind::Complete => {
                txn.markers = None;
                None
            }
            WriteKind::Remove => unreachable!("a removal writes a tombstone"),
        };
        if let (Some(token), Some(response)) = (pending.token, response) {
            effects.push(Effect::Respond { token, response });
        }
        if matches!(
            txn.meta.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort
        ) {
            self.start_markers(&id, effects, now_ms);
        }
    }

    /// Sends the markers of a prepared transaction to all its partitions.
    fn start_markers(&mut self, id: &str, effects: &mut Vec<Effect>, now_ms: i64) {
        let partition = partition_for(id, self.config.log_partitions);
        let loaded = self.partitions.get_mut(&partition).expect("loaded");
        let coordinator_epoch = loaded.coordinator_epoch;
        let txns = loaded.txns.as_mut().expect("loaded");
        let txn = txns.get_mut(id).expect("present");
        let result = match txn.meta.state {
            TxnState::PrepareCommit => TxnResult::Commit,
            TxnState::PrepareAbort => TxnResult::Abort,
            other => unreachable!("markers in {other:?}"),
        };
        txn.markers = Some(Markers {
            result,
            outstanding: txn.meta.partitions.clone(),
            resend: BTreeSet::new(),
            retry_at_ms: now_ms,
            stopped: false,
            complete_failed: false,
        });
        if txn.meta.partitions.is_empty() {
            self.write_complete(id, now_ms, effects);
        } else {
            effects.push(Effect::SendMarkers {
                transactional_id: id.to_owned(),
                producer_id: txn.meta.producer_id,
                producer_epoch: txn.meta.producer_epoch,
                coordinator_epoch,
                result,
                partitions: txn.meta.partitions.iter().cloned().collect(),
            });
        }
    }

    /// Writes CompleteCommit or CompleteAbort once every marker is acknowledged.
    fn write_complete(&mut self, id: &str, now_ms: i64, effects: &mut Vec<Effect>) {
        let Lookup::Loaded(txns) = self.lookup(id) else {
            unreachable!()
        };
        let txn = txns.get_mut(id).expect("present");
        let markers = txn.markers.as_mut().expect("markers");
        debug_assert!(markers.outstanding.is_empty());
        markers.complete_failed = false;
        let state = match markers.result {
            TxnResult::Commit => TxnState::CompleteCommit,
            TxnResult::Abort => TxnState::CompleteAbort,
        };
        let mut transit = txn.meta.transit(state, now_ms);
        transit.partitions.clear();
        txn.meta.pending = Some(state);
        self.write(id, Some(transit), None, WriteKind::Complete, effects);
    }

    fn marker_result(
        &mut self,
        id: &str,
        (producer_id, producer_epoch): (i64, i16),
        partition: TopicPartition,
        outcome: MarkerOutcome,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        let backoff = self.config.retry_backoff_ms;
        let Lookup::Loaded(txns) = self.lookup(id) else {
            return;
        };
        let Some(txn) = txns.get_mut(id) else { return };
        if txn.meta.producer_id != producer_id || txn.meta.producer_epoch != producer_epoch {
            return; // markers of an earlier transaction, answered late
        }
        let Some(markers) = txn.markers.as_mut() else {
            return;
        };
        if !markers.outstanding.contains(&partition) {
            return; // a duplicate answer
        }
        match outcome {
            MarkerOutcome::Written | MarkerOutcome::PartitionGone => {
                markers.outstanding.remove(&partition);
                markers.resend.remove(&partition);
                if markers.outstanding.is_empty() && txn.meta.pending.is_none() {
                    self.write_complete(id, now_ms, effects);
                }
            }
            MarkerOutcome::Retriable => {
                if markers.resend.is_empty() {
                    markers.retry_at_ms = now_ms + backoff;
                }
                markers.resend.insert(partition);
            }
            MarkerOutcome::CoordinatorFenced => markers.stopped = true,
        }
    }

    fn load(
        &mut self,
        partition: i32,
        coordinator_epoch: i32,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) {
        match self.partitions.get(&partition) {
            Some(loading)
                if loading.coordinator_epoch == coordinator_epoch && loading.txns.is_none() => {}
            _ => return, // a stale read
        }
        let mut txns = BTreeMap::new();
        for (key, value) in records {
            // A record that does not decode is skipped: the rest of the partition is still
            // worth serving, and the broker logs what the shell could not read.
            let Ok(id) = decode_key(&key) else { continue };
            match value.map(|value| decode_value(&value)) {
                None => {
                    txns.remove(&id);
                }
                Some(Ok(value)) if value.state != TxnState::Dead => {
                    let meta = TxnMetadata::from_log(&id, &value);
                    txns.insert(
                        id,
                        Txn {
                            meta,
                            markers: None,
                        },
                    );
                }
                Some(Ok(_)) => {
                    txns.remove(&id);
                }
                Some(Err(_)) => {}
            }
        }
        let prepared: Vec<String> = txns
            .iter()
            .filter(|(_, txn)| {
                matches!(
                    txn.meta.state,
                    TxnState::PrepareCommit | TxnState::PrepareAbort
                )
            })
            .map(|(id, _)| id.clone())
            .collect();
        self.partitions.get_mut(&partition).expect("checked").txns = Some(txns);
        for id in prepared {
            self.start_markers(&id, effects, now_ms);
        }
    }

    fn resign(&mut self, partition: i32, effects: &mut Vec<Effect>) {
        if self.partitions.remove(&partition).is_none() {
            return;
        }
        let gone: Vec<WriteId> = self
            .writes
            .iter()
            .filter(|(_, write)| write.partition == partition)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            let write = self.writes.remove(&id).expect("listed");
            if let Some(token) = write.token {
                effects.push(error_response(token, &write.kind, NOT_COORDINATOR));
            }
        }
    }

    fn tick(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        let expiration_ms = self.config.id_expiration_ms;
        let mut resend = Vec::new();
        let mut complete = Vec::new();
        let mut timed_out = Vec::new();
        let mut expired = Vec::new();
        for loaded in self.partitions.values_mut() {
            let coordinator_epoch = loaded.coordinator_epoch;
            let Some(txns) = loaded.txns.as_mut() else {
                continue;
            };
            for (id, txn) in txns.iter_mut() {
                let meta = &txn.meta;
                if let Some(markers) = txn.markers.as_mut() {
                    if markers.stopped || markers.retry_at_ms > now_ms {
                        continue;
                    }
                    if !markers.resend.is_empty() {
                        resend.push(Effect::SendMarkers {
                            transactional_id: id.clone(),
                            producer_id: meta.producer_id,
                            producer_epoch: meta.producer_epoch,
                            coordinator_epoch,
                            result: markers.result,
                            partitions: std::mem::take(&mut markers.resend).into_iter().collect(),
                        });
                    }
                    if markers.complete_failed && meta.pending.is_none() {
                        complete.push(id.clone());
                    }
                    continue;
                }
                if meta.pending.is_some() {
                    continue;
                }
                match meta.state {
                    TxnState::Ongoing
                        if meta
                            .start_timestamp_ms
                            .saturating_add(i64::from(meta.timeout_ms))
                            < now_ms =>
                    {
                        timed_out.push(id.clone())
                    }
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                        if meta.last_update_timestamp_ms.saturating_add(expiration_ms)
                            <= now_ms =>
                    {
                        expired.push(id.clone())
                    }
                    _ => {}
                }
            }
        }
        effects.extend(resend);
        for id in complete {
            self.write_complete(&id, now_ms, effects);
        }
        for id in timed_out {
            self.fence_and_abort(&id, now_ms, effects);
        }
        for id in expired {
            let Lookup::Loaded(txns) = self.lookup(&id) else {
                unreachable!()
            };
            let txn = txns.get_mut(&id).expect("listed");
            txn.meta.pending = Some(TxnState::Dead);
            self.write(&id, None, None, WriteKind::Remove, effects);
        }
    }

    /// Kafka's `prepareFenceProducerEpoch` followed by an abort from the coordinator: bumps
    /// the epoch (once, even if an earlier fence failed to write) and writes PrepareAbort.
    pub(super) fn fence_and_abort(&mut self, id: &str, now_ms: i64, effects: &mut Vec<Effect>) {
        let Lookup::Loaded(txns) = self.lookup(id) else {
            unreachable!()
        };
        let meta = &mut txns.get_mut(id).expect("present").meta;
        assert_eq!(
            meta.state,
            TxnState::Ongoing,
            "{id}: fencing outside a transaction"
        );
        let epoch = if meta.failed_epoch_fence || meta.producer_epoch == i16::MAX {
            meta.producer_epoch
        } else {
            meta.producer_epoch + 1
        };
        meta.pending = Some(TxnState::PrepareEpochFence);
        let producer_id = meta.producer_id;
        let error = self.end_txn(
            None,
            id,
            (producer_id, epoch),
            false,
            false,
            now_ms,
            effects,
        );
        assert_eq!(error, None, "{id}: the fence's abort was refused");
    }
}

/// Kafka's mapping of a `__transaction_state` append error to what the client is told
/// (`TransactionStateManager.appendTransactionToLog`).
fn client_error(append_error: i16) -> i16 {
    match append_error {
        3 | 7 | 19 | 20 => COORDINATOR_NOT_AVAILABLE,
        6 | 56 => NOT_COORDINATOR,
        10 | 18 => UNKNOWN_SERVER_ERROR,
        other => other,
    }
}

pub(super) fn init_error(token: RequestToken, error: i16) -> Effect {
    Effect::Respond {
        token,
        response: Response::InitProducerId {
            error,
            producer_id: -1,
            producer_epoch: -1,
        },
    }
}

fn error_response(token: RequestToken, kind: &WriteKind, error: i16) -> Effect {
    match kind {
        WriteKind::Init => init_error(token, error),
        WriteKind::AddPartitions(partitions) => Effect::Respond {
            token,
            response: Response::AddPartitions {
                results: partitions
                    .iter()
                    .map(|partition| (partition.clone(), error))
                    .collect(),
            },
        },
        WriteKind::Prepare { .. } => Effect::Respond {
            token,
            response: Response::EndTxn { error },
        },
        WriteKind::Complete | WriteKind::Remove => unreachable!("no request waits on {kind:?}"),
    }
}
