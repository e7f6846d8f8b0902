//! Follower appends, truncation and leader-epoch lookups through the log's public API: the
//! cases the model test does not generate (refused leader epochs, a log restarting inside a
//! batch, huge offset gaps and overflow, timestamps after a cut, the follower's truncation
//! point) and a leader/follower pair converging after they diverged.

use super::{batch, read_all, small_config, stored_batch};
use crate::error::FollowerAppendError;
use crate::leader_epoch::FILE_NAME;
use crate::log::TruncationPoint;
use crate::{AppendError, Log};

fn open(dir: &tempfile::TempDir, name: &str) -> Log {
    Log::open(&dir.path().join(name), small_config(), 0, 0, true, 0).unwrap()
}

#[test]
fn leader_epochs_are_stamped_recorded_and_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, "t-0");
    log.append(batch(2, 10, 1, 100), 0, 1).unwrap();
    log.append(batch(3, 10, 2, 100), 3, 1).unwrap();
    log.append(batch(1, 10, 3, 100), 3, 1).unwrap();
    let epochs: Vec<i32> = read_all(&log)
        .iter()
        .map(|(h, _)| h.partition_leader_epoch)
        .collect();
    assert_eq!(epochs, [0, 3, 3]);
    assert_eq!(log.leader_epoch_entries(), &[(0, 0), (3, 2)]);
    let file = std::fs::read_to_string(log.dir().join(FILE_NAME)).unwrap();
    assert_eq!(file, "0\n2\n0 0\n3 2\n");
    match log.append(batch(1, 10, 4, 100), 2, 1) {
        Err(AppendError::StaleLeaderEpoch {
            epoch: 2,
            latest: 3,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        log.start_leader_epoch(1),
        Err(AppendError::StaleLeaderEpoch { .. })
    ));
    assert_eq!(log.log_end_offset(), 6);
    // A new leader records its epoch at the end before appending anything.
    log.start_leader_epoch(5).unwrap();
    assert_eq!(log.end_offset_for_epoch(3), (3, 6));
    assert_eq!(log.end_offset_for_epoch(4), (3, 6));
    assert_eq!(log.end_offset_for_epoch(5), (5, 6));
    log.append(batch(1, 10, 5, 100), 5, 1).unwrap();
    assert_eq!(log.end_offset_for_epoch(5), (5, 7));
    assert_eq!(log.end_offset_for_epoch(0), (0, 2));
    assert_eq!(log.end_offset_for_epoch(6), (-1, -1));
    assert_eq!(log.latest_leader_epoch(), Some(5));
}

#[test]
fn follower_keeps_what_the_leader_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, "t-0");
    // Sequences a leader would refuse (a gap, then a restart without an epoch bump): the
    // follower stores them, and its producer state is what a replay gives.
    let batches = [
        stored_batch(0, 2, 3, 20, 1, 500, Some((9, 0, 0))),
        stored_batch(3, 2, 1, 20, 2, 400, Some((9, 0, 7))),
        stored_batch(4, 4, 2, 20, 3, 900, Some((9, 0, 0))),
    ];
    let end = log.append_as_follower(&batches.concat(), 1).unwrap();
    assert_eq!(end, 6);
    let stored = read_all(&log);
    for ((_, got), want) in stored.iter().zip(&batches) {
        assert_eq!(got, want);
    }
    let entry = log.producer_state().get(9).unwrap();
    assert_eq!(entry.batches.len(), 3);
    assert_eq!(entry.batches.back().unwrap().first_offset, 4);
    assert_eq!(log.leader_epoch_entries(), &[(2, 0), (4, 4)]);
    // A retry of the last batch from the producer, now to this broker as leader: a duplicate.
    let retry = log
        .append(
            stored_batch(0, 0, 2, 20, 3, 900, Some((9, 0, 0))).into(),
            4,
            2,
        )
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((5, 901)));
}

#[test]
fn refused_follower_input_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, "t-0");
    log.append_as_follower(&stored_batch(0, 1, 2, 10, 0, 0, None), 0)
        .unwrap();
    let before = std::fs::read_dir(log.dir()).unwrap().count();
    let refused = |log: &mut Log, blob: Vec<u8>| {
        let error = log.append_as_follower(&blob, 0).unwrap_err();
        assert_eq!(log.log_end_offset(), 2, "{error}");
        assert_eq!(read_all(log).len(), 1);
        error
    };
    assert!(matches!(
        refused(&mut log, stored_batch(1, 1, 2, 10, 0, 0, None)),
        FollowerAppendError::UnexpectedOffset {
            log_end_offset: 2,
            first_offset: 1,
            last_offset: 2
        }
    ));
    let overflow = stored_batch(i64::MAX - 1, 1, 2, 10, 0, 0, None);
    assert!(matches!(
        refused(&mut log, overflow),
        FollowerAppendError::OffsetsOutOfOrder { .. }
    ));
    let good = stored_batch(2, 1, 1, 10, 0, 0, None);
    let mut corrupt = stored_batch(3, 1, 1, 10, 0, 0, None);
    corrupt[40] ^= 1;
    assert!(matches!(
        refused(&mut log, [good.clone(), corrupt].concat()),
        FollowerAppendError::Corrupt { position, .. } if position == good.len()
    ));
    let older = stored_batch(3, 0, 1, 10, 0, 0, None);
    assert!(matches!(
        refused(&mut log, [good.clone(), older].concat()),
        FollowerAppendError::InvalidLeaderEpoch {
            epoch: 0,
            latest_epoch: 1,
            ..
        }
    ));
    assert_eq!(std::fs::read_dir(log.dir()).unwrap().count(), before);
    // A trailing partial batch is left for the next fetch; only a partial one changes nothing.
    let next = stored_batch(3, 1, 1, 10, 0, 0, None);
    assert_eq!(log.append_as_follower(&next[..30], 0).unwrap(), 2);
    let blob = [good, next[..next.len() - 1].to_vec()].concat();
    assert_eq!(log.append_as_follower(&blob, 0).unwrap(), 3);
    assert_eq!(log.append_as_follower(&[], 0).unwrap(), 3);
}

#[test]
fn an_empty_log_restarts_at_a_batch_holding_its_end() {
    // The leader's log start is 5, inside the batch 3..=7 (DeleteRecords); the follower was
    // emptied and restarted at 5, and its first fetch brings that whole batch.
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, "t-0");
    log.append(batch(4, 10, 0, 0), 0, 0).unwrap();
    log.truncate_fully_and_start_at(5).unwrap();
    let end = log
        .append_as_follower(&stored_batch(3, 2, 5, 10, 1, 0, None), 0)
        .unwrap();
    assert_eq!(end, 8);
    assert_eq!(log.log_start_offset(), 3);
    assert_eq!(log.leader_epoch_entries(), &[(2, 3)]);
    assert_eq!(read_all(&log).len(), 1);
}

#[test]
fn offset_gaps_of_any_size_roll_at_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, "t-0");
    let far = 3_000_000_000;
    let batches = [
        stored_batch(far, 0, 1, 10, 0, 0, None),
        stored_batch(far + 1, 0, 1, 10, 1, 0, None),
        stored_batch(2 * far, 0, 2, 10, 2, 0, None),
        stored_batch(2 * far + 10, 0, 1, 10, 3, 0, None),
    ];
    assert_eq!(
        log.append_as_follower(&batches.concat(), 0).unwrap(),
        2 * far + 11
    );
    // The empty first segment was re-based at the first batch, the third batch rolled.
    assert_eq!(log.log_start_offset(), far);
    assert_eq!(log.segment_count(), 2);
    let path = log.dir().to_path_buf();
    log.close().unwrap();
    let mut log = Log::open(&path, small_config(), 0, 0, false, 0).unwrap();
    let stored = read_all(&log);
    assert_eq!(stored.len(), 4);
    assert!(stored.iter().zip(&batches).all(|((_, a), b)| a == b));
    // Truncating into the gap ends the log after the batch before it.
    assert!(log.truncate_to(2 * far + 5).unwrap());
    assert_eq!(log.log_end_offset(), 2 * far + 2);
    assert!(log.truncate_to(far + 100).unwrap());
    assert_eq!(log.log_end_offset(), far + 2);
}

#[test]
fn truncation_clamps_offsets_and_keeps_timestamps_right() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, "t-0");
    for i in 0..20 {
        log.append(batch(2, 30, i as u8, 1_000 + i * 10), i as i32 / 5, 1)
            .unwrap();
    }
    log.flush().unwrap();
    log.set_high_watermark(40);
    assert!(log.segment_count() > 2);
    assert!(log.truncate_to(25).unwrap());
    assert_eq!(log.log_end_offset(), 24, "the batch 24..=25 goes whole");
    assert_eq!(log.high_watermark(), 24);
    assert_eq!(log.recovery_point(), 24);
    assert_eq!(log.leader_epoch_entries(), &[(0, 0), (1, 10), (2, 20)]);
    assert_eq!(log.end_offset_for_epoch(2), (2, 24));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((23, 1_111)));
    assert_eq!(log.offset_for_timestamp(1_111).unwrap(), Some((23, 1_111)));
    assert_eq!(log.offset_for_timestamp(1_112).unwrap(), None);
    // The cut segment was sealed and a new one started: nothing is written over the cut.
    let info = log.append(batch(1, 30, 0xee, 5_000), 7, 2).unwrap();
    assert_eq!(info.first_offset, 24);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((24, 5_000)));
    assert!(!log.truncate_to(100).unwrap());
    // Moving the log start moves the first epoch entry with it.
    log.set_high_watermark(25);
    log.delete_records_before(12).unwrap();
    assert_eq!(log.leader_epoch_entries(), &[(1, 12), (2, 20), (7, 24)]);
    let path = log.dir().to_path_buf();
    log.close().unwrap();
    let log = Log::open(&path, small_config(), 25, 12, true, 3).unwrap();
    assert_eq!(log.leader_epoch_entries(), &[(1, 12), (2, 20), (7, 24)]);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((24, 5_000)));
}

#[test]
fn truncation_point_follows_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, "t-0");
    assert_eq!(
        log.truncation_point(3, 10),
        TruncationPoint {
            offset: 0,
            complete: true
        }
    );
    for (epoch, records) in [(1, 5), (2, 5), (4, 5)] {
        log.append(batch(records, 10, 0, 0), epoch, 0).unwrap();
    }
    log.set_high_watermark(7);
    let point = |offset, complete| TruncationPoint { offset, complete };
    assert_eq!(log.truncation_point(2, -1), point(7, true), "no answer: HW");
    assert_eq!(log.truncation_point(-1, 12), point(12, true));
    assert_eq!(
        log.truncation_point(4, 30),
        point(15, true),
        "never above LEO"
    );
    assert_eq!(log.truncation_point(4, 12), point(12, true));
    assert_eq!(log.truncation_point(2, 8), point(8, true));
    assert_eq!(
        log.truncation_point(2, 13),
        point(10, true),
        "our epoch 2 ends first"
    );
    assert_eq!(
        log.truncation_point(3, 13),
        point(10, false),
        "unknown epoch: ours below"
    );
    // We know no epoch 0: it ends where our first epoch starts.
    assert_eq!(log.truncation_point(0, 3), point(0, true));
}

/// A follower that led epoch 1 and wrote batches nobody replicated, then a leader of epoch 2
/// whose log diverged: the follower truncates as Kafka's does and ends up byte-identical.
#[test]
fn a_diverged_follower_converges_to_its_leader() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = open(&dir, "leader-0");
    let mut follower = open(&dir, "follower-0");
    for i in 0..6 {
        let bytes = batch(2, 50, i, 100 + i64::from(i));
        leader.append(bytes.clone(), 0, 0).unwrap();
        follower.append(bytes, 0, 0).unwrap();
    }
    for i in 0..4 {
        follower.append(batch(3, 50, 0x40 + i, 200), 1, 0).unwrap();
    }
    leader.start_leader_epoch(2).unwrap();
    for i in 0..5 {
        leader.append(batch(1, 50, 0x80 + i, 300), 2, 0).unwrap();
    }
    leader.start_leader_epoch(3).unwrap();
    for i in 0..3 {
        leader.append(batch(2, 50, 0xc0 + i, 400), 3, 0).unwrap();
    }
    // OffsetForLeaderEpoch rounds until the truncation point is complete.
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 5, "truncation does not converge");
        let epoch = follower.latest_leader_epoch().unwrap();
        let (leader_epoch, end) = leader.end_offset_for_epoch(epoch);
        let point = follower.truncation_point(leader_epoch, end);
        follower.truncate_to(point.offset).unwrap();
        if point.complete {
            break;
        }
    }
    assert_eq!(follower.log_end_offset(), 12);
    // Fetch until caught up, with small fetches that end in partial batches.
    let mut fetches = 0;
    while follower.log_end_offset() < leader.log_end_offset() {
        fetches += 1;
        assert!(fetches < 100, "the follower does not catch up");
        let info = leader
            .read(
                follower.log_end_offset(),
                150,
                leader.log_end_offset(),
                true,
            )
            .unwrap();
        let bytes = info.slice.unwrap().read_to_bytes().unwrap();
        follower.append_as_follower(&bytes, 0).unwrap();
    }
    let (ours, theirs) = (read_all(&follower), read_all(&leader));
    assert_eq!(ours.len(), theirs.len());
    assert!(ours.iter().zip(&theirs).all(|(a, b)| a.1 == b.1));
    assert_eq!(
        follower.leader_epoch_entries(),
        leader.leader_epoch_entries()
    );
    assert_eq!(follower.producer_state(), leader.producer_state());
}

/// Figures for BENCHMARKS-style notes, not a check: `cargo test --release -p strom-log
/// replication_figures -- --ignored --nocapture`. Appends 256 MiB of 16 KiB batches to a
/// leader and the same bytes to a follower (no fsync), then flushes the follower and truncates
/// it to the middle of its 1 GiB segment, and compares that with an unclean reopen's re-read.
#[test]
#[ignore]
fn replication_figures() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let config = crate::LogConfig {
        segment_bytes: 1 << 30,
        retention_ms: -1,
        retention_bytes: -1,
        ..crate::LogConfig::default()
    };
    let open = |name: &str| Log::open(&dir.path().join(name), config.clone(), 0, 0, true, 0);
    let mut leader = open("leader-0").unwrap();
    let mut follower = open("follower-0").unwrap();
    let produced = batch(16, 1000, 7, 1_000);
    let batches = (256 << 20) / produced.len();
    let started = Instant::now();
    for _ in 0..batches {
        leader.append(produced.clone(), 3, 1).unwrap();
    }
    let leader_s = started.elapsed().as_secs_f64();
    let mut fetched = Vec::with_capacity(batches);
    let mut offset = 0;
    while offset < leader.log_end_offset() {
        let info = leader.read(offset, 1 << 20, i64::MAX, true).unwrap();
        let bytes = info.slice.unwrap().read_to_bytes().unwrap();
        let complete = super::parse_batches(&bytes);
        offset = complete.last().unwrap().0.last_offset() + 1;
        let len: usize = complete.iter().map(|(_, b)| b.len()).sum();
        fetched.push(bytes.slice(..len));
    }
    let started = Instant::now();
    for bytes in &fetched {
        follower.append_as_follower(bytes, 1).unwrap();
    }
    let follower_s = started.elapsed().as_secs_f64();
    let mib = leader.size_bytes() as f64 / f64::from(1 << 20);
    let middle = leader.log_end_offset() / 2 + 3;
    // The truncation syncs the segment it cuts: flushed first, its own cost shows.
    follower.flush().unwrap();
    let started = Instant::now();
    follower.truncate_to(middle).unwrap();
    let truncate_ms = started.elapsed().as_secs_f64() * 1e3;
    let path = leader.dir().to_path_buf();
    drop(leader);
    let started = Instant::now();
    let reopened = Log::open(&path, config.clone(), 0, 0, false, 2).unwrap();
    let reread_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "{mib:.0} MiB in {batches} batches of {} B: leader append {:.0} MiB/s, follower append \
         {:.0} MiB/s; truncate_to mid-segment {truncate_ms:.1} ms; unclean reopen re-reading \
         the segment {reread_ms:.0} ms ({} bytes re-read)",
        produced.len(),
        mib / leader_s,
        mib / follower_s,
        reopened.recovery_stats().bytes_reread
    );
}

#[test]
fn a_log_near_the_largest_offset_refuses_what_would_pass_it() {
    // A follower can be brought next to i64::MAX by a forged base offset; a later leader
    // append or marker must be refused before anything is written, not overflow.
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(&dir, "t-0");
    let end = log
        .append_as_follower(&stored_batch(i64::MAX - 3, 0, 1, 10, 0, 0, None), 0)
        .unwrap();
    assert_eq!(end, i64::MAX - 2);
    let err = log.append(batch(3, 10, 0, 0), 1, 0).unwrap_err();
    assert!(
        matches!(err, AppendError::InvalidRecord(ref m) if m.contains("no room")),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), i64::MAX - 2);
    // The last offset a batch may take is i64::MAX - 1; the end offset is then i64::MAX.
    log.append(batch(2, 10, 0, 0), 1, 0).unwrap();
    assert_eq!(log.log_end_offset(), i64::MAX);
    let err = log.append(batch(1, 10, 0, 0), 1, 0).unwrap_err();
    assert!(matches!(err, AppendError::InvalidRecord(_)), "{err}");
    assert_eq!(log.log_end_offset(), i64::MAX);
    assert_eq!(read_all(&log).len(), 2);
}
