//! KIP-890 verification guards in the log: a transactional batch that would open its
//! producer's transaction needs the producer's current guard; a marker, the transaction's
//! start, an epoch change or a truncation retire it; other batches are not checked.

use bytes::Bytes;
use proptest::prelude::*;

use super::{batch, small_config};
use crate::batch::test_builder::TestBatch;
use crate::control::TxnMarker;
use crate::error::AppendError;
use crate::log::{Verification, VerificationGuard};
use crate::Log;

fn txn_batch(pid: i64, epoch: i16, seq: i32) -> Bytes {
    let mut b = TestBatch::new(0, vec![vec![7u8; 30]; 2]).producer(pid, epoch, seq);
    b.attributes = 0x10;
    Bytes::from(b.encode())
}

fn idempotent_batch(pid: i64, epoch: i16, seq: i32) -> Bytes {
    Bytes::from(
        TestBatch::new(0, vec![vec![7u8; 30]; 2])
            .producer(pid, epoch, seq)
            .encode(),
    )
}

fn abort(pid: i64, epoch: i16) -> TxnMarker {
    TxnMarker {
        producer_id: pid,
        producer_epoch: epoch,
        coordinator_epoch: 0,
        commit: false,
    }
}

fn open(dir: &tempfile::TempDir) -> Log {
    Log::open(&dir.path().join("t-0"), small_config(), 0, 0, true, 0).unwrap()
}

fn refused(result: Result<crate::AppendInfo, AppendError>) -> bool {
    matches!(result, Err(AppendError::InvalidTxnState { producer_id: 5 }))
}

#[test]
fn the_first_transactional_batch_needs_the_current_guard() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir);
    let required = |guard| Verification::Required(guard);
    assert!(refused(log.append_verified(
        txn_batch(5, 0, 0),
        0,
        0,
        required(None)
    )));
    assert_eq!(log.log_end_offset(), 0, "nothing appended");
    let guard = log.verification_guard(5, 0).expect("no open transaction");
    assert_eq!(log.verification_guard(5, 0), Some(guard), "the same guard");
    let stale = VerificationGuard::clone(&guard);
    log.append_verified(txn_batch(5, 0, 0), 0, 0, required(Some(guard)))
        .unwrap();
    assert!(log.has_ongoing_transaction(5, 0));
    assert_eq!(
        log.verification_guard(5, 0),
        None,
        "the transaction is open"
    );
    // Later batches of the open transaction need no guard.
    log.append_verified(txn_batch(5, 0, 2), 0, 0, required(None))
        .unwrap();
    // The abort ends it: the next transaction's first batch needs a new guard, and the old
    // one is refused.
    log.append_txn_marker(&abort(5, 0), 0, 0).unwrap();
    let end = log.log_end_offset();
    assert!(refused(log.append_verified(
        txn_batch(5, 0, 4),
        0,
        0,
        required(Some(stale))
    )));
    assert!(refused(log.append_verified(
        txn_batch(5, 0, 4),
        0,
        0,
        required(None)
    )));
    assert_eq!(
        log.log_end_offset(),
        end,
        "the late batch did not open a transaction"
    );
    assert!(!log.has_ongoing_transaction(5, 0));
    assert_eq!(log.last_stable_offset(), log.high_watermark().min(end));
    let next = log.verification_guard(5, 0).unwrap();
    assert_ne!(next, stale);
    log.append_verified(txn_batch(5, 0, 4), 0, 0, required(Some(next)))
        .unwrap();
}

#[test]
fn a_marker_between_verification_and_append_retires_the_guard() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir);
    let guard = log.verification_guard(5, 0).unwrap();
    log.append_txn_marker(&abort(5, 0), 0, 0).unwrap();
    let end = log.log_end_offset();
    assert!(refused(log.append_verified(
        txn_batch(5, 0, 0),
        0,
        0,
        Verification::Required(Some(guard))
    )));
    assert_eq!(log.log_end_offset(), end);
}

#[test]
fn a_guard_is_per_epoch_and_off_checks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir);
    let old = log.verification_guard(5, 0).unwrap();
    let new = log.verification_guard(5, 1).unwrap();
    assert_ne!(old, new);
    assert!(refused(log.append_verified(
        txn_batch(5, 1, 0),
        0,
        0,
        Verification::Required(Some(old))
    )));
    // Off: the broker's own appends and verification turned off.
    log.append_verified(txn_batch(6, 0, 0), 0, 0, Verification::Off)
        .unwrap();
    // Plain and idempotent batches are never checked.
    log.append_verified(batch(1, 10, 0, 0), 0, 0, Verification::Required(None))
        .unwrap();
    log.append_verified(
        idempotent_batch(7, 0, 0),
        0,
        0,
        Verification::Required(None),
    )
    .unwrap();
    // A truncation retires every guard.
    let guard = log.verification_guard(5, 1).unwrap();
    log.truncate_to(2).unwrap();
    assert!(refused(log.append_verified(
        txn_batch(5, 1, 0),
        0,
        0,
        Verification::Required(Some(guard))
    )));
}

proptest! {
    /// Against a reference: for random sequences of guard requests, guarded and unguarded
    /// transactional appends, and markers of two producers, an append opens a transaction
    /// exactly when the producer already had one open or carried the guard handed out since
    /// the producer's last marker or transaction start; the log's open transactions match.
    #[test]
    fn guards_match_a_reference(ops in proptest::collection::vec((0u8..4, 0i64..2), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(&dir);
        // Reference per producer: open transaction, current guard, last guard handed out.
        let mut open_txn = [false; 2];
        let mut current: [Option<VerificationGuard>; 2] = [None; 2];
        let mut handed: [Option<VerificationGuard>; 2] = [None; 2];
        let mut sequence = [0i32; 2];
        for (op, p) in ops {
            let pid = 10 + p;
            let i = p as usize;
            match op {
                0 => {
                    let guard = log.verification_guard(pid, 0);
                    prop_assert_eq!(guard.is_none(), open_txn[i]);
                    if let Some(guard) = guard {
                        if let Some(existing) = current[i] {
                            prop_assert_eq!(guard, existing);
                        }
                        current[i] = Some(guard);
                        handed[i] = Some(guard);
                    }
                }
                1 | 2 => {
                    let guard = if op == 1 { handed[i] } else { None };
                    let result = log.append_verified(
                        txn_batch(pid, 0, sequence[i]),
                        0,
                        0,
                        Verification::Required(guard),
                    );
                    let allowed = open_txn[i] || (guard.is_some() && guard == current[i]);
                    prop_assert_eq!(result.is_ok(), allowed, "{:?}", result);
                    if allowed {
                        sequence[i] += 2;
                        open_txn[i] = true;
                        current[i] = None;
                    }
                }
                _ => {
                    log.append_txn_marker(&abort(pid, 0), 0, 0).unwrap();
                    open_txn[i] = false;
                    current[i] = None;
                }
            }
            for (i, open) in open_txn.iter().enumerate() {
                prop_assert_eq!(log.has_ongoing_transaction(10 + i as i64, 0), *open);
            }
        }
    }
}
