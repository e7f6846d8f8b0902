//! `Log::read_committed`: reads bounded by the last stable offset, and the aborted transactions
//! reported for exactly the range a read returns, checked against a reference built from the
//! stored batches.

use bytes::Bytes;
use proptest::prelude::*;

use super::{batch, read_all, small_config};
use crate::batch::test_builder::TestBatch;
use crate::control::TxnMarker;
use crate::Log;

fn txn_batch(pid: i64, seq: i32, records: usize) -> Bytes {
    let mut b = TestBatch::new(0, vec![vec![3u8; 25]; records]).producer(pid, 0, seq);
    b.attributes = 0x10;
    Bytes::from(b.encode())
}

fn end_txn(log: &mut Log, pid: i64, commit: bool) -> i64 {
    let marker = TxnMarker {
        producer_id: pid,
        producer_epoch: 0,
        coordinator_epoch: 0,
        commit,
    };
    log.append_txn_marker(&marker, 0, 0).unwrap().first_offset
}

fn settle(log: &mut Log) {
    let end = log.log_end_offset();
    log.set_high_watermark(end);
}

/// The base offsets of the whole batches in `bytes`.
fn whole_batches(bytes: &[u8]) -> Vec<(i64, i64)> {
    super::parse_batches(bytes)
        .iter()
        .map(|(h, _)| (h.base_offset, h.last_offset()))
        .collect()
}

#[test]
fn open_transaction_bounds_the_read_and_a_marker_releases_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(&dir.path().join("t-0"), small_config(), 0, 0, true, 0).unwrap();
    log.append(batch(2, 10, 1, 0), 0, 0).unwrap(); // 0-1
    log.append(txn_batch(7, 0, 2), 0, 0).unwrap(); // 2-3, opens at 2
    log.append(batch(1, 10, 1, 0), 0, 0).unwrap(); // 4
    settle(&mut log);
    let (info, aborted) = log.read_committed(0, 1 << 20, true).unwrap();
    assert_eq!(info.last_stable_offset, 2);
    assert_eq!(info.high_watermark, 5);
    let bytes = info.slice.unwrap().read_to_bytes().unwrap();
    assert_eq!(
        whole_batches(&bytes),
        vec![(0, 1)],
        "stops at the open transaction"
    );
    assert!(aborted.is_empty());
    // At the LSO a read_committed read returns nothing; read_uncommitted reads on.
    let (info, _) = log.read_committed(2, 1 << 20, true).unwrap();
    assert!(info.slice.is_none());
    let info = log.read(2, 1 << 20, log.high_watermark(), true).unwrap();
    assert_eq!(info.last_stable_offset, 2, "Log::read reports the LSO too");
    assert!(info.slice.is_some());
    // The abort releases the LSO; the aborted transaction is reported for reads overlapping it.
    let marker = end_txn(&mut log, 7, false);
    settle(&mut log);
    assert_eq!(marker, 5);
    let (info, aborted) = log.read_committed(0, 1 << 20, true).unwrap();
    assert_eq!(info.last_stable_offset, 6);
    let bytes = info.slice.unwrap().read_to_bytes().unwrap();
    assert_eq!(
        whole_batches(&bytes).last(),
        Some(&(5, 5)),
        "up to the marker"
    );
    assert_eq!(aborted, vec![(7, 2)]);
    // A read that ends before the transaction's first record does not report it.
    let first_batch_len = whole_batches(&bytes).len();
    assert!(first_batch_len > 1);
    let (_, aborted) = log.read_committed(0, 1, true).unwrap();
    assert!(aborted.is_empty(), "one batch, offsets 0-1: {aborted:?}");
    // Nor one that starts after its marker.
    let (info, aborted) = log.read_committed(6, 1 << 20, true).unwrap();
    assert!(info.slice.is_none() && aborted.is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    /// A transactional batch of producer 1, 2 or 3.
    Txn(i64),
    /// A plain batch.
    Plain,
    /// A COMMIT (true) or ABORT marker for a producer.
    End(i64, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1i64..=3).prop_map(Op::Txn),
        2 => Just(Op::Plain),
        2 => ((1i64..=3), any::<bool>()).prop_map(|(p, c)| Op::End(p, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    /// Every read_committed read, from every offset with several byte limits, stays below the
    /// LSO and reports exactly the aborted transactions whose marker is at or above the fetch
    /// offset and whose first record is below the first batch after the returned bytes.
    #[test]
    fn reads_report_the_aborts_overlapping_them(
        ops in proptest::collection::vec(op(), 1..60),
        max_bytes in proptest::sample::select(vec![1usize, 90, 250, 700, 1 << 20]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(&dir.path().join("t-0"), small_config(), 0, 0, true, 0).unwrap();
        let mut seq = [0i32; 4];
        for op in ops {
            match op {
                Op::Txn(pid) => {
                    log.append(txn_batch(pid, seq[pid as usize], 2), 0, 0).unwrap();
                    seq[pid as usize] += 2;
                }
                Op::Plain => {
                    log.append(batch(1, 40, 0, 0), 0, 0).unwrap();
                }
                Op::End(pid, commit) => {
                    end_txn(&mut log, pid, commit);
                }
            }
        }
        settle(&mut log);
        let lso = log.last_stable_offset();
        let all: Vec<(i64, i64, usize)> = read_all(&log)
            .iter()
            .map(|(h, _)| (h.base_offset, h.last_offset(), h.total_len()))
            .collect();
        let entries = log.aborted_txn_entries();
        for fetch_offset in 0..log.log_end_offset() {
            let (info, aborted) = log.read_committed(fetch_offset, max_bytes, true).unwrap();
            prop_assert_eq!(info.last_stable_offset, lso);
            let Some(slice) = info.slice else {
                prop_assert!(fetch_offset >= lso || all.is_empty());
                prop_assert!(aborted.is_empty());
                continue;
            };
            prop_assert!(fetch_offset < lso);
            let bytes = slice.read_to_bytes().unwrap();
            for (_, last) in whole_batches(&bytes) {
                prop_assert!(last < lso, "batch ending at {} past the LSO {}", last, lso);
            }
            // The reference upper bound: the first batch starting at or after the slice's end.
            let from = all.iter().position(|b| b.1 >= fetch_offset).unwrap();
            let mut covered = 0usize;
            let mut upper = log.log_end_offset();
            for b in &all[from..] {
                if covered >= slice.len {
                    upper = b.0;
                    break;
                }
                covered += b.2;
            }
            let upper = upper.min(lso);
            let want: Vec<(i64, i64)> = entries
                .iter()
                .filter(|e| e.last_offset >= fetch_offset && e.first_offset < upper)
                .map(|e| (e.producer_id, e.first_offset))
                .collect();
            prop_assert_eq!(aborted, want, "fetch offset {}, {} bytes", fetch_offset, slice.len);
        }
    }
}
