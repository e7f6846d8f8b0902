//! Idempotent producers through the log: duplicates, gaps, fencing, and state across reopen.

use super::{idempotent_batch, read_all, small_config};
use crate::{AppendError, Log};

#[test]
fn duplicates_gaps_and_fencing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(&dir.path().join("t-0"), small_config(), 0, 0, true, 0).unwrap();
    let first = log.append(idempotent_batch(9, 0, 0, 3), 0, 1).unwrap();
    assert_eq!(
        (first.first_offset, first.last_offset, first.duplicate),
        (0, 2, false)
    );
    let second = log.append(idempotent_batch(9, 0, 3, 2), 0, 1).unwrap();
    assert_eq!((second.first_offset, second.last_offset), (3, 4));
    // Another producer interleaves.
    log.append(idempotent_batch(10, 0, 100, 1), 0, 1).unwrap();
    // Retry of the first batch: the original offsets, nothing written.
    let end = log.log_end_offset();
    let retry = log.append(idempotent_batch(9, 0, 0, 3), 0, 2).unwrap();
    assert_eq!(
        (retry.first_offset, retry.last_offset, retry.duplicate),
        (0, 2, true)
    );
    assert_eq!(log.log_end_offset(), end);
    // Gap.
    match log.append(idempotent_batch(9, 0, 7, 1), 0, 2) {
        Err(AppendError::OutOfOrderSequence {
            producer_id: 9,
            expected: 5,
            got: 7,
        }) => {}
        other => panic!("{other:?}"),
    }
    // A new epoch must start at sequence 0 and fences the old one.
    assert!(matches!(
        log.append(idempotent_batch(9, 1, 5, 1), 0, 2),
        Err(AppendError::OutOfOrderSequence { expected: 0, .. })
    ));
    log.append(idempotent_batch(9, 1, 0, 1), 0, 2).unwrap();
    match log.append(idempotent_batch(9, 0, 5, 1), 0, 2) {
        Err(AppendError::InvalidProducerEpoch {
            producer_id: 9,
            current: 1,
            got: 0,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(read_all(&log).len(), 4);
}

fn remove_snapshots(path: &std::path::Path) {
    for entry in std::fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(p).unwrap();
        }
    }
}

#[test]
fn state_survives_clean_and_unclean_reopen() {
    for (clean, keep_snapshots) in [(true, true), (false, true), (false, false)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let mut log = Log::open(&path, small_config(), 0, 0, true, 0).unwrap();
        // Enough batches to roll (which writes snapshots) and then some after the last roll.
        for seq in 0..40 {
            let info = log
                .append(idempotent_batch(5, 2, seq * 2, 2), 0, 1)
                .unwrap();
            assert_eq!(info.first_offset, i64::from(seq) * 2);
        }
        assert!(log.segment_count() > 1);
        if clean {
            log.close().unwrap();
        } else {
            drop(log);
        }
        if !keep_snapshots {
            remove_snapshots(&path);
        }
        let mut log = Log::open(&path, small_config(), 0, 0, clean, 5).unwrap();
        if !clean {
            assert!(log.recovery_stats().batches_replayed > 0);
        }
        let retry = log.append(idempotent_batch(5, 2, 78, 2), 0, 6).unwrap();
        assert!(retry.duplicate, "clean={clean} snapshots={keep_snapshots}");
        assert_eq!((retry.first_offset, retry.last_offset), (78, 79));
        let retry = log.append(idempotent_batch(5, 2, 72, 2), 0, 6).unwrap();
        assert_eq!((retry.first_offset, retry.duplicate), (72, true));
        assert!(matches!(
            log.append(idempotent_batch(5, 2, 81, 1), 0, 6),
            Err(AppendError::OutOfOrderSequence { expected: 80, .. })
        ));
        assert!(matches!(
            log.append(idempotent_batch(5, 1, 80, 1), 0, 6),
            Err(AppendError::InvalidProducerEpoch { .. })
        ));
        let next = log.append(idempotent_batch(5, 2, 80, 1), 0, 6).unwrap();
        assert_eq!((next.first_offset, next.duplicate), (80, false));
    }
}
