//! Transactions in the log: the LSO, markers, the aborted-transaction index across segments,
//! recovery, truncation, followers, and a model test against a reference.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use proptest::prelude::*;

use super::{batch, small_config};
use crate::batch::test_builder::TestBatch;
use crate::control::TxnMarker;
use crate::error::AppendError;
use crate::segment::segment_file;
use crate::segment::TXN_INDEX_SUFFIX;
use crate::Log;

/// A transactional batch of `records` records.
fn txn_batch(pid: i64, epoch: i16, seq: i32, records: usize) -> Bytes {
    let mut b = TestBatch::new(0, vec![vec![7u8; 30]; records]).producer(pid, epoch, seq);
    b.attributes = 0x10;
    Bytes::from(b.encode())
}

fn marker(pid: i64, epoch: i16, coordinator_epoch: i32, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id: pid,
        producer_epoch: epoch,
        coordinator_epoch,
        commit,
    }
}

fn open(path: &Path, clean: bool) -> Log {
    Log::open(path, small_config(), 0, 0, clean, 0).unwrap()
}

fn segment_bases(path: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(path)
        .unwrap()
        .filter_map(|e| {
            crate::segment::parse_offset_file_name(e.unwrap().file_name().to_str()?, "log")
        })
        .collect();
    bases.sort_unstable();
    bases
}

fn settle(log: &mut Log) {
    let end = log.log_end_offset();
    log.set_high_watermark(end);
}

#[test]
fn open_transaction_holds_the_lso_until_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir.path().join("t-0"), true);
    log.append(batch(2, 10, 1, 0), 0, 0).unwrap();
    let first = log
        .append(txn_batch(5, 0, 0, 2), 0, 0)
        .unwrap()
        .first_offset;
    log.append(batch(1, 10, 2, 0), 0, 0).unwrap();
    settle(&mut log);
    assert_eq!(first, 2);
    assert_eq!(
        log.last_stable_offset(),
        2,
        "the open transaction holds the LSO"
    );
    let ongoing = log.ongoing_transactions();
    assert_eq!(ongoing.len(), 1);
    assert_eq!((ongoing[0].producer_id, ongoing[0].first_offset), (5, 2));
    // A second transactional batch of the same transaction does not move its start.
    log.append(txn_batch(5, 0, 2, 1), 0, 0).unwrap();
    settle(&mut log);
    assert_eq!(log.last_stable_offset(), 2);
    let info = log.append_txn_marker(&marker(5, 0, 0, true), 0, 0).unwrap();
    assert_eq!(info.first_offset, 6);
    assert_eq!(
        log.last_stable_offset(),
        6,
        "below the high watermark until it moves"
    );
    settle(&mut log);
    assert_eq!(log.last_stable_offset(), 7);
    assert!(log.ongoing_transactions().is_empty());
    assert!(log.aborted_transactions(0, 100).is_empty(), "a commit");
    // The marker is a stored control batch at its own offset.
    let batches = super::read_all(&log);
    let (header, bytes) = batches.last().unwrap();
    assert!(header.is_control() && header.is_transactional());
    assert_eq!(
        crate::control::parse_marker(header, bytes),
        Some(marker(5, 0, 0, true))
    );
}

#[test]
fn abort_is_indexed_and_markers_are_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = open(&path, true);
    log.append(txn_batch(1, 0, 0, 1), 0, 0).unwrap(); // 0
    log.append(txn_batch(2, 3, 0, 1), 0, 0).unwrap(); // 1
    let abort = log
        .append_txn_marker(&marker(1, 0, 4, false), 0, 0)
        .unwrap();
    assert_eq!(abort.first_offset, 2);
    let entries = log.aborted_txn_entries();
    assert_eq!(entries.len(), 1);
    // Producer 2's transaction is still open: the LSO after the abort is its first offset.
    assert_eq!(
        (
            entries[0].first_offset,
            entries[0].last_offset,
            entries[0].last_stable_offset
        ),
        (0, 2, 1)
    );
    assert_eq!(log.aborted_transactions(0, 3), vec![(1, 0)]);
    assert_eq!(log.aborted_transactions(3, 10), vec![]);
    assert!(segment_file(&path, 0, TXN_INDEX_SUFFIX).exists());
    // Fencing: an older coordinator epoch, an older producer epoch.
    assert!(matches!(
        log.append_txn_marker(&marker(1, 0, 3, true), 0, 0),
        Err(AppendError::TransactionCoordinatorFenced {
            current: 4,
            got: 3,
            ..
        })
    ));
    assert!(matches!(
        log.append_txn_marker(&marker(2, 2, 0, true), 0, 0),
        Err(AppendError::InvalidProducerEpoch { .. })
    ));
    let end = log.log_end_offset();
    assert_eq!(end, 3, "refused markers write nothing");
    // A marker for a producer with no open transaction is stored but indexes nothing.
    log.append_txn_marker(&marker(9, 0, 0, false), 0, 0)
        .unwrap();
    assert_eq!(log.aborted_txn_entries().len(), 1);
    // Clients may not send transactional batches without a producer id.
    let mut bad = TestBatch::new(0, vec![vec![1]]);
    bad.attributes = 0x10;
    assert!(matches!(
        log.append(Bytes::from(bad.encode()), 0, 0),
        Err(AppendError::InvalidRecord(_))
    ));
}

/// A log over several segments: producer 1 aborts twice, producer 2 commits, producer 3 stays
/// open. Returns the offsets of the two ABORT markers.
fn several_segments(log: &mut Log) -> (i64, i64) {
    let mut seq = [0i32; 4];
    let mut add = |log: &mut Log, pid: i64, n: usize| {
        log.append(txn_batch(pid, 0, seq[pid as usize], n), 0, 0)
            .unwrap();
        seq[pid as usize] += n as i32;
    };
    add(log, 1, 3);
    for _ in 0..6 {
        add(log, 2, 2);
        log.append(batch(2, 60, 0, 0), 0, 0).unwrap();
    }
    let first_abort = log
        .append_txn_marker(&marker(1, 0, 0, false), 0, 0)
        .unwrap()
        .first_offset;
    log.append_txn_marker(&marker(2, 0, 0, true), 0, 0).unwrap();
    for _ in 0..8 {
        add(log, 1, 2);
        log.append(batch(2, 60, 0, 0), 0, 0).unwrap();
    }
    add(log, 3, 1);
    let second_abort = log
        .append_txn_marker(&marker(1, 0, 0, false), 0, 0)
        .unwrap()
        .first_offset;
    settle(log);
    (first_abort, second_abort)
}

#[test]
fn aborted_transactions_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = open(&path, true);
    let (first_abort, second_abort) = several_segments(&mut log);
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    let entries = log.aborted_txn_entries();
    assert_eq!(entries.len(), 2);
    let second_first = entries[1].first_offset;
    assert_eq!(
        (
            entries[0].producer_id,
            entries[0].first_offset,
            entries[0].last_offset
        ),
        (1, 0, first_abort)
    );
    assert_eq!(entries[1].last_offset, second_abort);
    let open_first = log.ongoing_transactions()[0].first_offset;
    assert_eq!(entries[1].last_stable_offset, open_first);
    assert_eq!(log.last_stable_offset(), open_first);
    // Both, one, none, depending on the fetched range.
    assert_eq!(
        log.aborted_transactions(0, log.log_end_offset()),
        vec![(1, 0), (1, second_first)]
    );
    assert_eq!(
        log.aborted_transactions(first_abort + 1, second_first + 1),
        vec![(1, second_first)]
    );
    assert_eq!(log.aborted_transactions(0, 1), vec![(1, 0)]);
    assert_eq!(log.aborted_transactions(second_abort + 1, 1 << 40), vec![]);
    // The two entries live in the files of the segments holding their markers.
    let files = std::fs::read_dir(&path)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == TXN_INDEX_SUFFIX)
        })
        .count();
    assert_eq!(files, 2);
    // A clean reopen reads the same index and state.
    let state = log.producer_state().clone();
    log.close().unwrap();
    let log = open(&path, true);
    assert_eq!(log.aborted_txn_entries(), entries);
    assert_eq!(log.producer_state(), &state);
}

#[test]
fn recovery_after_a_torn_write_rebuilds_index_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = open(&path, true);
    let (_, second_abort) = several_segments(&mut log);
    let entries = log.aborted_txn_entries();
    let state = log.producer_state().clone();
    // One more transaction opened, then a torn write of its second batch.
    log.append(txn_batch(4, 0, 0, 1), 0, 0).unwrap();
    drop(log);
    let last = *segment_bases(&path).last().unwrap();
    let mut tail = std::fs::OpenOptions::new()
        .append(true)
        .open(segment_file(&path, last, "log"))
        .unwrap();
    use std::io::Write;
    tail.write_all(&txn_batch(4, 0, 1, 3)[..50]).unwrap();
    let log = open(&path, false);
    assert_eq!(log.aborted_txn_entries(), entries);
    assert_eq!(log.ongoing_transactions().len(), 2, "producers 3 and 4");
    assert_eq!(log.log_end_offset(), second_abort + 2);
    assert_eq!(log.producer_state().get(1), state.get(1));
    assert_eq!(log.recovery_stats().bytes_truncated, 50);
    drop(log);
    // An unreadable index file: everything is rebuilt from the log.
    let bases = segment_bases(&path);
    let damaged = bases
        .iter()
        .map(|&b| segment_file(&path, b, TXN_INDEX_SUFFIX))
        .find(|p| p.exists())
        .unwrap();
    std::fs::write(&damaged, b"junk").unwrap();
    let log = open(&path, false);
    assert_eq!(log.aborted_txn_entries(), entries);
    assert_eq!(log.ongoing_transactions().len(), 2);
}

#[test]
fn truncation_drops_index_entries_above_the_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = open(&path, true);
    let (first_abort, second_abort) = several_segments(&mut log);
    let second_first = log.aborted_txn_entries()[1].first_offset;
    assert!(log.truncate_to(second_abort).unwrap());
    assert_eq!(log.log_end_offset(), second_abort);
    let entries = log.aborted_txn_entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].last_offset, first_abort);
    // Producer 1's second transaction is open again: its marker was cut.
    let ongoing = log.ongoing_transactions();
    assert_eq!(ongoing.len(), 2);
    assert_eq!(ongoing[0].first_offset, second_first);
    settle(&mut log);
    assert_eq!(log.last_stable_offset(), second_first);
    // The files agree: an unclean reopen finds the same.
    drop(log);
    let log = open(&path, false);
    assert_eq!(log.aborted_txn_entries(), entries);
    drop(log);
    let log = open(&path, true);
    assert_eq!(log.aborted_txn_entries(), entries);
    // Below the first abort's marker: no entry, no file.
    let mut log = log;
    log.truncate_to(first_abort).unwrap();
    assert!(log.aborted_txn_entries().is_empty());
    assert!(!segment_file(&path, 0, TXN_INDEX_SUFFIX).exists());
}

#[test]
fn follower_keeps_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = open(&dir.path().join("l-0"), true);
    several_segments(&mut leader);
    let mut follower = open(&dir.path().join("f-0"), true);
    let mut offset = 0;
    while offset < leader.log_end_offset() {
        let slice = leader
            .read(offset, 700, leader.log_end_offset(), true)
            .unwrap()
            .slice
            .unwrap();
        offset = follower
            .append_as_follower(&slice.read_to_bytes().unwrap(), 0)
            .unwrap();
    }
    settle(&mut follower);
    assert_eq!(follower.aborted_txn_entries(), leader.aborted_txn_entries());
    assert_eq!(
        follower.ongoing_transactions(),
        leader.ongoing_transactions()
    );
    assert_eq!(follower.last_stable_offset(), leader.last_stable_offset());
}

#[derive(Debug, Clone)]
enum Op {
    Data { pid: i64, txn: bool },
    Plain,
    End { pid: i64, commit: bool },
    Reopen { clean: bool },
    Truncate { back: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0i64..3, any::<bool>()).prop_map(|(pid, txn)| Op::Data { pid, txn }),
        2 => Just(Op::Plain),
        3 => (0i64..3, any::<bool>()).prop_map(|(pid, commit)| Op::End { pid, commit }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => (1i64..20).prop_map(|back| Op::Truncate { back }),
    ]
}

/// An aborted transaction: producer id, first offset, marker offset.
type Aborted = (i64, i64, i64);

/// The reference: every stored transactional batch `(offset, pid, kind, last offset)` in
/// order (kind: `None` data, `Some(commit)` a marker); the state is replayed.
#[derive(Default)]
struct Reference {
    batches: Vec<(i64, i64, Option<bool>, i64)>,
}

impl Reference {
    /// (open first offsets by pid, aborted (pid, first, marker)).
    fn replay(&self) -> (BTreeMap<i64, i64>, Vec<Aborted>) {
        let mut open = BTreeMap::new();
        let mut aborted = Vec::new();
        for &(offset, pid, kind, _) in &self.batches {
            match kind {
                None => {
                    open.entry(pid).or_insert(offset);
                }
                Some(commit) => {
                    if let Some(first) = open.remove(&pid) {
                        if !commit {
                            aborted.push((pid, first, offset));
                        }
                    }
                }
            }
        }
        (open, aborted)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn model(ops in proptest::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let mut log = open(&path, true);
        let mut reference = Reference::default();
        let mut seq = [0i32; 3];
        for op in ops {
            match op {
                Op::Data { pid, txn } => {
                    // Non-transactional batches use their own producer ids.
                    let (id, bytes) = if txn {
                        (pid, txn_batch(pid, 0, seq[pid as usize], 2))
                    } else {
                        (-1, batch(2, 20, 0, 0))
                    };
                    let info = log.append(bytes, 0, 0).unwrap();
                    if txn {
                        seq[pid as usize] += 2;
                        reference.batches.push((info.first_offset, id, None, info.last_offset));
                    }
                }
                Op::Plain => {
                    log.append(batch(1, 100, 0, 0), 0, 0).unwrap();
                }
                Op::End { pid, commit } => {
                    let at = log.append_txn_marker(&marker(pid, 0, 0, commit), 0, 0).unwrap().first_offset;
                    reference.batches.push((at, pid, Some(commit), at));
                }
                Op::Reopen { clean } => {
                    if clean { log.close().unwrap() } else { drop(log) }
                    log = open(&path, clean);
                }
                Op::Truncate { back } => {
                    let to = (log.log_end_offset() - back).max(0);
                    log.truncate_to(to).unwrap();
                    let end = log.log_end_offset();
                    reference.batches.retain(|b| b.3 < end);
                    // Sequences after a truncation: continue from what the log remembers.
                    for (pid, s) in seq.iter_mut().enumerate() {
                        *s = log.producer_state().get(pid as i64)
                            .and_then(|e| e.batches.back())
                            .map_or(0, |b| b.last_sequence + 1);
                    }
                }
            }
            settle(&mut log);
            let (open_txns, aborted) = reference.replay();
            let got: Vec<(i64, i64, i64)> = log.aborted_txn_entries().iter()
                .map(|e| (e.producer_id, e.first_offset, e.last_offset)).collect();
            prop_assert_eq!(&got, &aborted);
            let lso = open_txns.values().min().copied().unwrap_or(log.high_watermark());
            prop_assert_eq!(log.last_stable_offset(), lso);
            let mut ongoing: Vec<(i64, i64)> = open_txns.iter().map(|(p, f)| (*f, *p)).collect();
            ongoing.sort_unstable();
            let got: Vec<(i64, i64)> = log.ongoing_transactions().iter()
                .map(|t| (t.first_offset, t.producer_id)).collect();
            prop_assert_eq!(got, ongoing);
            // Every reported abort overlaps the range; none that overlaps is missing.
            let end = log.log_end_offset();
            for start in [0, end / 2] {
                let want: Vec<(i64, i64)> = aborted.iter()
                    .filter(|a| a.2 >= start && a.1 < end)
                    .map(|a| (a.0, a.1)).collect();
                prop_assert_eq!(log.aborted_transactions(start, end), want);
            }
        }
    }
}
