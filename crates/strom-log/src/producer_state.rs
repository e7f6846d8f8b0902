//! Producer state of one partition (Kafka's `ProducerStateManager`): per producer id the
//! current epoch and the metadata of its last five batches, used to refuse out-of-order or
//! fenced batches and to answer retries with the original offsets, and the transaction state:
//! the first offset of each producer's open transaction (its first transactional batch since
//! the last marker) and the coordinator epoch of the last marker, from which the log's last
//! stable offset comes.
//!
//! This module owns the rules and the `<offset:020>.snapshot` file format. It does not read the
//! log: [`crate::log::Log`] replays batch headers into it after loading a snapshot.
//!
//! Snapshot format (big-endian): version i16 (=2), CRC-32C u32 over everything after it,
//! producer count i32, then per producer: producer id i64, epoch i16, coordinator epoch i32,
//! first offset of the open transaction i64 (-1 if none), batch count i32, and per batch:
//! first sequence i32, last sequence i32, first offset i64, last offset i64, max timestamp i64.
//! Version 1 (still read) lacks the two transaction fields. A snapshot named `N.snapshot` holds
//! the state after every batch below offset `N`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::batch::{increment_sequence, BatchHeader};
use crate::checkpoint::{fsync_dir, write_atomically};
use crate::control::TxnMarker;
use crate::error::{AppendError, LogError};
use crate::index::remove_if_exists;
use crate::segment::parse_offset_file_name;

/// How many recent batches per producer are remembered for duplicate detection (Kafka's value).
pub const BATCHES_PER_PRODUCER: usize = 5;
/// File name suffix of producer state snapshots.
pub const SNAPSHOT_SUFFIX: &str = "snapshot";
const SNAPSHOT_VERSION: i16 = 2;
/// The snapshot version before transactions, still read.
const SNAPSHOT_VERSION_V1: i16 = 1;
/// How many snapshot files are kept.
const SNAPSHOTS_KEPT: usize = 2;

/// What the log remembers about one appended batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the first record.
    pub first_sequence: i32,
    /// Sequence of the last record.
    pub last_sequence: i32,
    /// Offset assigned to the first record.
    pub first_offset: i64,
    /// Offset assigned to the last record.
    pub last_offset: i64,
    /// The batch's max timestamp (after LogAppendTime stamping).
    pub max_timestamp: i64,
}

/// State of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Current epoch; batches with an older epoch are fenced.
    pub epoch: i16,
    /// The last batches, oldest first. Invariant: at most [`BATCHES_PER_PRODUCER`].
    pub batches: VecDeque<BatchMetadata>,
    /// Coordinator epoch of the last marker (-1 before any): a marker from an older
    /// coordinator is fenced.
    pub coordinator_epoch: i32,
    /// Offset of the first record of the producer's open transaction, if one is open.
    pub current_txn_first_offset: Option<i64>,
}

impl Default for ProducerEntry {
    fn default() -> ProducerEntry {
        ProducerEntry {
            epoch: 0,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }
}

/// A transaction a marker ended ([`ProducerState::complete_txn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Offset of the transaction's first record.
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// Whether the marker was an ABORT.
    pub aborted: bool,
}

/// An open transaction of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OngoingTxn {
    /// The producer.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub producer_epoch: i16,
    /// Offset of the transaction's first record.
    pub first_offset: i64,
}

/// Outcome of checking a batch against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append the batch.
    Append,
    /// The batch is a retry of one already in the log: answer with its metadata.
    Duplicate(BatchMetadata),
}

/// Producer state of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset to producer id. Invariant: exactly the producers whose
    /// `current_txn_first_offset` is set, keyed by it.
    ongoing: BTreeMap<i64, i64>,
}

impl ProducerState {
    /// Checks an incoming batch (producer id >= 0) against the state, following Kafka's rules.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, AppendError> {
        let producer_id = header.producer_id;
        assert!(producer_id >= 0, "check on a non-idempotent batch");
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        let got = header.base_sequence;
        if header.producer_epoch < entry.epoch {
            return Err(AppendError::InvalidProducerEpoch {
                producer_id,
                current: entry.epoch,
                got: header.producer_epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            if got != 0 {
                return Err(AppendError::OutOfOrderSequence {
                    producer_id,
                    expected: 0,
                    got,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_sequence = header.last_sequence();
        if let Some(original) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == got && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate(*original));
        }
        match entry.batches.back() {
            None => Ok(SequenceCheck::Append),
            Some(last) => {
                let expected = increment_sequence(last.last_sequence, 1);
                if got == expected {
                    Ok(SequenceCheck::Append)
                } else {
                    Err(AppendError::OutOfOrderSequence {
                        producer_id,
                        expected,
                        got,
                    })
                }
            }
        }
    }

    /// Records a batch that is in the log (offsets assigned). Used both after an append and when
    /// replaying the log; batches without a producer id are ignored, control batches only move
    /// the epoch (the caller applies their marker with [`ProducerState::complete_txn`]). A
    /// transactional data batch opens the producer's transaction if none is open.
    pub fn update(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if header.is_control() {
            return;
        }
        if header.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(header.base_offset);
            self.ongoing.insert(header.base_offset, header.producer_id);
        }
        if header.base_sequence < 0 {
            return;
        }
        entry.batches.push_back(BatchMetadata {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
        });
        while entry.batches.len() > BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
    }

    /// Checks a marker about to be written by the leader: its producer epoch must not be older
    /// than the producer's (`InvalidProducerEpoch`), nor its coordinator epoch older than the
    /// last marker's (`TransactionCoordinatorFenced`).
    pub fn check_marker(&self, marker: &TxnMarker) -> Result<(), AppendError> {
        let Some(entry) = self.producers.get(&marker.producer_id) else {
            return Ok(());
        };
        if marker.producer_epoch < entry.epoch {
            return Err(AppendError::InvalidProducerEpoch {
                producer_id: marker.producer_id,
                current: entry.epoch,
                got: marker.producer_epoch,
            });
        }
        if marker.coordinator_epoch < entry.coordinator_epoch {
            return Err(AppendError::TransactionCoordinatorFenced {
                producer_id: marker.producer_id,
                current: entry.coordinator_epoch,
                got: marker.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Applies a marker stored at `offset` (after [`ProducerState::update`] with its header):
    /// records the coordinator epoch and ends the producer's open transaction, if any, which
    /// it returns.
    pub fn complete_txn(&mut self, marker: &TxnMarker, offset: i64) -> Option<CompletedTxn> {
        let entry = self.producers.entry(marker.producer_id).or_default();
        entry.coordinator_epoch = marker.coordinator_epoch;
        let first_offset = entry.current_txn_first_offset.take()?;
        self.ongoing.remove(&first_offset);
        Some(CompletedTxn {
            producer_id: marker.producer_id,
            first_offset,
            last_offset: offset,
            aborted: !marker.commit,
        })
    }

    /// The first offset of the oldest open transaction: the last stable offset can be no
    /// higher.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// The open transactions, oldest first.
    pub fn ongoing_transactions(&self) -> Vec<OngoingTxn> {
        self.ongoing
            .iter()
            .map(|(&first_offset, &producer_id)| OngoingTxn {
                producer_id,
                producer_epoch: self.producers.get(&producer_id).map_or(-1, |e| e.epoch),
                first_offset,
            })
            .collect()
    }

    /// Every known producer and its state.
    pub fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, entry)| (*id, entry))
    }

    /// `(producer id, last offset)` of every batch the state remembers (the last
    /// [`BATCHES_PER_PRODUCER`] of each producer): compaction keeps these batches, emptied if
    /// need be, so duplicate detection and sequence checks survive it.
    pub fn remembered_batches(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.producers
            .iter()
            .flat_map(|(id, entry)| entry.batches.iter().map(move |b| (*id, b.last_offset)))
    }

    /// The state of one producer, if known.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Number of known producers.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Encodes the state in the snapshot format.
    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        body.extend_from_slice(&(ids.len() as i32).to_be_bytes());
        for id in ids {
            let entry = &self.producers[&id];
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.extend_from_slice(&(entry.batches.len() as i32).to_be_bytes());
            for b in &entry.batches {
                body.extend_from_slice(&b.first_sequence.to_be_bytes());
                body.extend_from_slice(&b.last_sequence.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.max_timestamp.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot; `None` if it is not a valid one.
    fn decode(bytes: &[u8]) -> Option<ProducerState> {
        struct Reader<'a>(&'a [u8]);
        impl Reader<'_> {
            fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
                let (head, rest) = self.0.split_at_checked(N)?;
                self.0 = rest;
                head.try_into().ok()
            }
            fn i16(&mut self) -> Option<i16> {
                self.take().map(i16::from_be_bytes)
            }
            fn i32(&mut self) -> Option<i32> {
                self.take().map(i32::from_be_bytes)
            }
            fn i64(&mut self) -> Option<i64> {
                self.take().map(i64::from_be_bytes)
            }
        }
        let mut r = Reader(bytes);
        let version = r.i16()?;
        if version != SNAPSHOT_VERSION && version != SNAPSHOT_VERSION_V1 {
            return None;
        }
        let crc = u32::from_be_bytes(r.take()?);
        if crc32c::crc32c(r.0) != crc {
            return None;
        }
        let count = r.i32()?;
        let mut state = ProducerState::default();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let mut entry = ProducerEntry {
                epoch,
                ..ProducerEntry::default()
            };
            if version == SNAPSHOT_VERSION {
                entry.coordinator_epoch = r.i32()?;
                let first = r.i64()?;
                if first >= 0 {
                    if state.ongoing.insert(first, id).is_some() {
                        return None;
                    }
                    entry.current_txn_first_offset = Some(first);
                } else if first != -1 {
                    return None;
                }
            }
            let batches = r.i32()?;
            if !(0..=BATCHES_PER_PRODUCER as i32).contains(&batches) {
                return None;
            }
            for _ in 0..batches {
                entry.batches.push_back(BatchMetadata {
                    first_sequence: r.i32()?,
                    last_sequence: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    max_timestamp: r.i64()?,
                });
            }
            if state.producers.insert(id, entry).is_some() {
                return None;
            }
        }
        r.0.is_empty().then_some(state)
    }

    /// Writes `<offset:020>.snapshot` atomically (temporary file, fsync, rename, directory fsync)
    /// and removes all but the newest two snapshots.
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<(), LogError> {
        write_atomically(&snapshot_path(dir, offset), &self.encode())?;
        let snapshots = list_snapshots(dir)?;
        for &old in snapshots.iter().rev().skip(SNAPSHOTS_KEPT) {
            remove_if_exists(&snapshot_path(dir, old))?;
        }
        Ok(())
    }

    /// Loads the newest valid snapshot at or below `max_offset`, deleting snapshots above it
    /// (they describe batches that are no longer in the log) and unreadable ones. Returns the
    /// snapshot's offset and state.
    pub fn load_latest(
        dir: &Path,
        max_offset: i64,
    ) -> Result<Option<(i64, ProducerState)>, LogError> {
        let mut snapshots = list_snapshots(dir)?;
        let mut found = None;
        let mut removed = false;
        while let Some(offset) = snapshots.pop() {
            let path = snapshot_path(dir, offset);
            if offset <= max_offset {
                let bytes = std::fs::read(&path).map_err(|e| LogError::io(&path, e))?;
                if let Some(state) = ProducerState::decode(&bytes) {
                    found = Some((offset, state));
                    break;
                }
                tracing::warn!(snapshot = %path.display(), "ignoring unreadable producer snapshot");
            }
            remove_if_exists(&path)?;
            removed = true;
        }
        // The removals must be durable before the log writes past them again: a snapshot
        // above the end that came back after a crash would describe batches no longer there.
        if removed {
            fsync_dir(dir)?;
        }
        Ok(found)
    }

    /// Removes every snapshot above `offset` (all of them for a negative `offset`), durably.
    /// Returns how many were removed.
    pub fn remove_snapshots_above(dir: &Path, offset: i64) -> Result<usize, LogError> {
        let mut removed = 0;
        for snapshot in list_snapshots(dir)? {
            if snapshot > offset {
                remove_if_exists(&snapshot_path(dir, snapshot))?;
                removed += 1;
            }
        }
        if removed > 0 {
            fsync_dir(dir)?;
        }
        Ok(removed)
    }
}

/// Path of the snapshot for `offset`.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.{SNAPSHOT_SUFFIX}"))
}

/// Offsets of the snapshot files in `dir`, ascending.
fn list_snapshots(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        if let Some(offset) = entry
            .file_name()
            .to_str()
            .and_then(|name| parse_offset_file_name(name, SNAPSHOT_SUFFIX))
        {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_builder::TestBatch;
    use crate::batch::{assign_offset, BatchHeader};

    fn header(pid: i64, epoch: i16, seq: i32, records: usize, offset: i64) -> BatchHeader {
        let mut bytes = TestBatch::new(0, vec![vec![0]; records])
            .producer(pid, epoch, seq)
            .encode();
        assign_offset(&mut bytes, offset, 0);
        BatchHeader::parse(&bytes).unwrap()
    }

    #[test]
    fn rules() {
        let mut state = ProducerState::default();
        let first = header(7, 1, 10, 3, 100);
        assert_eq!(state.check(&first).unwrap(), SequenceCheck::Append);
        state.update(&first);
        // Retry of the same batch.
        match state.check(&header(7, 1, 10, 3, 0)).unwrap() {
            SequenceCheck::Duplicate(m) => assert_eq!((m.first_offset, m.last_offset), (100, 102)),
            other => panic!("{other:?}"),
        }
        // Gap.
        assert!(matches!(
            state.check(&header(7, 1, 14, 1, 0)),
            Err(AppendError::OutOfOrderSequence {
                expected: 13,
                got: 14,
                ..
            })
        ));
        // Fenced epoch.
        assert!(matches!(
            state.check(&header(7, 0, 13, 1, 0)),
            Err(AppendError::InvalidProducerEpoch {
                current: 1,
                got: 0,
                ..
            })
        ));
        // New epoch must start at 0.
        assert!(state.check(&header(7, 2, 13, 1, 0)).is_err());
        assert_eq!(
            state.check(&header(7, 2, 0, 1, 0)).unwrap(),
            SequenceCheck::Append
        );
        // Only the last five batches are remembered.
        for i in 0..6 {
            state.update(&header(7, 1, 13 + i, 1, 103 + i as i64));
        }
        assert_eq!(state.get(7).unwrap().batches.len(), BATCHES_PER_PRODUCER);
        assert_eq!(
            state
                .check(&header(7, 1, 13, 1, 0))
                .unwrap_err()
                .to_string(),
            "producer 7: expected sequence 19, got 13"
        );
    }

    #[test]
    fn sequence_wraps() {
        let mut state = ProducerState::default();
        state.update(&header(1, 0, i32::MAX - 1, 2, 0));
        assert_eq!(
            state.check(&header(1, 0, 0, 1, 0)).unwrap(),
            SequenceCheck::Append
        );
    }

    fn txn_header(pid: i64, seq: i32, offset: i64) -> BatchHeader {
        let mut batch = TestBatch::new(0, vec![vec![0]]).producer(pid, 0, seq);
        batch.attributes = 0x10;
        let mut bytes = batch.encode();
        assign_offset(&mut bytes, offset, 0);
        BatchHeader::parse(&bytes).unwrap()
    }

    #[test]
    fn transactions_open_and_complete() {
        let mut state = ProducerState::default();
        state.update(&txn_header(1, 0, 10));
        state.update(&txn_header(2, 0, 11));
        state.update(&txn_header(1, 1, 12));
        assert_eq!(state.first_unstable_offset(), Some(10));
        assert_eq!(state.get(1).unwrap().current_txn_first_offset, Some(10));
        let marker = |pid, commit| TxnMarker {
            producer_id: pid,
            producer_epoch: 0,
            coordinator_epoch: 2,
            commit,
        };
        let done = state.complete_txn(&marker(1, false), 13).unwrap();
        assert_eq!(
            (done.first_offset, done.last_offset, done.aborted),
            (10, 13, true)
        );
        assert_eq!(state.first_unstable_offset(), Some(11));
        assert!(
            state.complete_txn(&marker(1, true), 14).is_none(),
            "none open"
        );
        assert!(state
            .check_marker(&TxnMarker {
                coordinator_epoch: 1,
                ..marker(1, true)
            })
            .is_err());
        // Snapshots keep the open transaction and the coordinator epoch.
        let decoded = ProducerState::decode(&state.encode()).unwrap();
        assert_eq!(decoded, state);
        assert_eq!(decoded.ongoing_transactions()[0].first_offset, 11);
    }

    #[test]
    fn reads_version_1_snapshots() {
        // Version 1: one producer (id 5, epoch 2) with one batch, no transaction fields.
        let mut body = Vec::new();
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&5i64.to_be_bytes());
        body.extend_from_slice(&2i16.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
        for v in [0i32, 3] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        for v in [100i64, 103, 77] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        let mut bytes = 1i16.to_be_bytes().to_vec();
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        bytes.extend_from_slice(&body);
        let state = ProducerState::decode(&bytes).unwrap();
        let entry = state.get(5).unwrap();
        assert_eq!((entry.epoch, entry.coordinator_epoch), (2, -1));
        assert_eq!(entry.current_txn_first_offset, None);
        assert_eq!(entry.batches[0].last_offset, 103);
        // Written back, it is version 2.
        assert_eq!(&state.encode()[..2], &2i16.to_be_bytes());
    }

    #[test]
    fn snapshot_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = ProducerState::default();
        state.update(&header(1, 0, 0, 2, 0));
        state.update(&header(2, 3, 5, 1, 2));
        for offset in [3, 10, 20] {
            state.write_snapshot(dir.path(), offset).unwrap();
        }
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![10, 20]);
        let (offset, loaded) = ProducerState::load_latest(dir.path(), 15).unwrap().unwrap();
        assert_eq!((offset, &loaded), (10, &state));
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![10]);
        std::fs::write(snapshot_path(dir.path(), 10), b"garbage").unwrap();
        assert!(ProducerState::load_latest(dir.path(), 15)
            .unwrap()
            .is_none());
    }
}
