//! Crashes in the middle of a truncation: `truncate_to` and `truncate_fully_and_start_at` are
//! stopped before each of their durable steps, the log is dropped without closing (as a
//! `kill -9` leaves it: every completed write is in the files), and the reopened log must be
//! consistent: a prefix of the old log at least as long as the truncation's target, with a
//! leader-epoch cache that gives every batch its own epoch and the producer state a replay
//! gives. Redoing the truncation then gives exactly what an uninterrupted one gives, and the
//! follower can append the leader's batches after it.

use std::path::Path;

use super::{read_all, small_config, stored_batch};
use crate::batch::BatchHeader;
use crate::producer_state::ProducerState;
use crate::Log;

/// Batches of the log `build` writes: 30 batches of 2 records in 4 epochs, some idempotent,
/// over several segments.
fn build(path: &Path) -> (Log, Vec<(BatchHeader, Vec<u8>)>) {
    let mut log = Log::open(path, small_config(), 0, 0, true, 0).unwrap();
    for i in 0..30u8 {
        let epoch = [0, 1, 3, 4][usize::from(i / 8)];
        let producer = (i % 3 == 0).then(|| (7, 0, i32::from(i / 3) * 2));
        let bytes = stored_batch(0, 0, 2, 40, i, 1_000 + i64::from(i), producer);
        log.append(bytes.into(), epoch, 10).unwrap();
    }
    assert!(log.segment_count() >= 4, "several segments");
    let batches = read_all(&log);
    (log, batches)
}

fn replay(batches: &[(BatchHeader, Vec<u8>)]) -> ProducerState {
    let mut state = ProducerState::default();
    for (header, _) in batches {
        state.update(header);
    }
    state
}

/// Epoch entries derived from the batches: each epoch at its first batch.
fn derived_epochs(batches: &[(BatchHeader, Vec<u8>)]) -> Vec<(i32, i64)> {
    let mut entries: Vec<(i32, i64)> = Vec::new();
    for (header, _) in batches {
        if entries
            .last()
            .is_none_or(|&(e, _)| header.partition_leader_epoch > e)
        {
            entries.push((header.partition_leader_epoch, header.base_offset));
        }
    }
    entries
}

/// The consistency a reopened log must have after a crash at any point.
fn check_consistent(log: &Log, original: &[(BatchHeader, Vec<u8>)], at_least: i64, what: &str) {
    let batches = read_all(log);
    assert!(
        batches.len() <= original.len(),
        "{what}: longer than before"
    );
    for (i, (got, want)) in batches.iter().zip(original).enumerate() {
        assert_eq!(got.1, want.1, "{what}: batch {i} differs");
    }
    let end = log.log_end_offset();
    let expected_end = batches.last().map_or(end, |b| b.0.last_offset() + 1);
    assert_eq!(end, expected_end, "{what}: end offset");
    if !batches.is_empty() {
        assert!(
            end >= at_least,
            "{what}: cut below the target ({end} < {at_least})"
        );
    }
    // Every batch's offsets map to its own epoch in the cache.
    let entries = log.leader_epoch_entries();
    for (header, _) in &batches {
        let floor = entries
            .iter()
            .rev()
            .find(|(_, start)| *start <= header.base_offset);
        assert_eq!(
            floor.map(|e| e.0),
            Some(header.partition_leader_epoch),
            "{what}: epoch of batch {}",
            header.base_offset
        );
        assert!(
            !entries
                .iter()
                .any(|(_, s)| *s > header.base_offset && *s <= header.last_offset()),
            "{what}: an epoch starts inside a batch"
        );
    }
    assert!(
        entries.iter().all(|(_, s)| *s <= end),
        "{what}: {entries:?}"
    );
    assert_eq!(
        log.producer_state(),
        &replay(&batches),
        "{what}: producer state"
    );
}

/// Stops `truncate` after `steps` steps; returns whether it ran to the end.
fn crash_after(steps: usize, truncate: impl FnOnce(&mut dyn FnMut() -> bool) -> bool) -> bool {
    let mut left = steps;
    let mut proceed = move || {
        if left == 0 {
            return false;
        }
        left -= 1;
        true
    };
    truncate(&mut proceed)
}

fn reopen(path: &Path, recovery_point: i64) -> Log {
    Log::open(path, small_config(), recovery_point, 0, false, 20).unwrap()
}

#[test]
fn truncate_to_survives_a_crash_before_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let (_, original) = build(&dir.path().join("probe-0"));
    let base = |i: usize| original[i].0.base_offset;
    let targets = [
        ("a batch boundary mid-log", base(17)),
        ("inside a batch", base(17) + 1),
        ("the last batch", base(29) + 1),
        ("the second batch", base(1)),
        ("inside the first batch", 1),
    ];
    for (name, target) in targets {
        let expected: Vec<_> = original
            .iter()
            .filter(|(h, _)| h.last_offset() < target)
            .cloned()
            .collect();
        let expected_end = expected.last().map_or(0, |b| b.0.last_offset() + 1);
        let mut completed = false;
        for steps in 0..20 {
            let path = dir.path().join(format!("t{target}-{steps}-0"));
            let (mut log, _) = build(&path);
            let recovery_point = log.recovery_point();
            completed = crash_after(steps, |proceed| {
                log.truncate_to_steps(target, proceed).unwrap().is_some()
            });
            drop(log);
            let what = format!("{name}, crash after {steps} steps");
            let mut log = reopen(&path, recovery_point);
            check_consistent(&log, &original, expected_end, &what);
            // Redo the truncation: the result is the uninterrupted one (unless the crash left
            // an empty log below the target, which truncating leaves alone).
            let reopened_end = log.log_end_offset();
            log.truncate_to(target).unwrap();
            let batches = read_all(&log);
            assert_eq!(batches.len(), expected.len(), "{what}: batches after redo");
            assert_eq!(log.leader_epoch_entries(), &derived_epochs(&expected)[..]);
            assert_eq!(log.producer_state(), &replay(&expected));
            let end = expected
                .last()
                .map_or(target.min(reopened_end), |b| b.0.last_offset() + 1);
            assert_eq!(log.log_end_offset(), end, "{what}");
            // The follower appends the leader's batches again and gets the old log back.
            let suffix: Vec<u8> = original[expected.len()..]
                .iter()
                .flat_map(|(_, bytes)| bytes.clone())
                .collect();
            if expected.is_empty() {
                // The log restarted at the target, inside the first batch: the follower's
                // fetch brings that batch, and the log restarts at its base offset.
                assert_eq!(log.log_start_offset(), end);
            }
            let end = log.append_as_follower(&suffix, 30).unwrap();
            assert_eq!(end, original.last().unwrap().0.last_offset() + 1);
            let all = read_all(&log);
            assert_eq!(all.len(), original.len(), "{what}");
            assert!(all.iter().zip(&original).all(|(a, b)| a.1 == b.1));
            assert_eq!(log.producer_state(), &replay(&original));
            assert_eq!(log.leader_epoch_entries(), &derived_epochs(&original)[..]);
            log.close().unwrap();
            if completed {
                break;
            }
        }
        assert!(completed, "{name}: truncation never completed");
    }
}

#[test]
fn truncate_fully_survives_a_crash_before_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let (_, original) = build(&dir.path().join("probe-0"));
    let old_end = original.last().unwrap().0.last_offset() + 1;
    for offset in [old_end + 50, 3] {
        let mut completed = false;
        for steps in 0..20 {
            let path = dir.path().join(format!("f{offset}-{steps}-0"));
            let (mut log, _) = build(&path);
            let recovery_point = log.recovery_point();
            completed = crash_after(steps, |proceed| {
                log.truncate_fully_steps(offset, proceed).unwrap().is_some()
            });
            drop(log);
            let what = format!("restart at {offset}, crash after {steps} steps");
            let mut log = reopen(&path, recovery_point);
            check_consistent(&log, &original, 0, &what);
            if completed {
                assert_eq!(log.log_end_offset(), offset, "{what}");
                assert_eq!(log.log_start_offset(), offset, "{what}");
                assert!(log.leader_epoch_entries().is_empty(), "{what}");
                assert!(log.producer_state().is_empty(), "{what}");
            }
            log.truncate_fully_and_start_at(offset).unwrap();
            assert_eq!(
                (log.log_start_offset(), log.log_end_offset()),
                (offset, offset)
            );
            assert!(read_all(&log).is_empty());
            assert!(log.leader_epoch_entries().is_empty());
            assert!(log.producer_state().is_empty());
            if completed {
                break;
            }
        }
        assert!(completed, "restart at {offset} never completed");
    }
}
