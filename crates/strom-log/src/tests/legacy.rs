//! ListOffsets v0's segment-granular answers (`Log::legacy_offsets_before`).

use std::time::{Duration, UNIX_EPOCH};

use super::{batch, small_config};
use crate::Log;

/// Sets each segment file's modification time to the given seconds since the epoch, in base
/// offset order, and returns the segments' base offsets.
fn set_segment_times(dir: &std::path::Path, seconds: &[u64]) -> Vec<i64> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    assert_eq!(logs.len(), seconds.len(), "segments: {logs:?}");
    for (path, &s) in logs.iter().zip(seconds) {
        let file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(s))
            .unwrap();
    }
    logs.iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn latest_earliest_and_by_file_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(&path, small_config(), 0, 0, true, 0).unwrap();
    // Batches of 3 records of 200 bytes: one batch per 1 KiB segment.
    for i in 0..3 {
        log.append(batch(3, 200, i, 0), 0, 0).unwrap();
    }
    assert_eq!(log.log_end_offset(), 9);
    let bases = set_segment_times(&path, &[1000, 2000, 3000]);
    assert_eq!(bases, vec![0, 3, 6]);
    let now = 5_000_000;
    let v0 = |log: &Log, ts: i64, max: i32| log.legacy_offsets_before(ts, max, now).unwrap();
    // The active segment holds data: the log end offset is the newest candidate.
    assert_eq!(v0(&log, -1, 1), Some(vec![9]));
    assert_eq!(v0(&log, -1, 10), Some(vec![9, 6, 3, 0]));
    assert_eq!(v0(&log, -2, 1), Some(vec![0]));
    assert_eq!(v0(&log, -2, 10), Some(vec![0]));
    // By file time (ms): the last candidate at or before the timestamp, then older ones.
    assert_eq!(v0(&log, 2_000_000, 10), Some(vec![3, 0]));
    assert_eq!(v0(&log, 2_500_000, 1), Some(vec![3]));
    assert_eq!(v0(&log, 999_999, 10), Some(vec![]));
    assert_eq!(v0(&log, now, 2), Some(vec![9, 6]));
    // max_num_offsets 0 answers nothing; a negative one is an error.
    assert_eq!(v0(&log, -1, 0), Some(vec![]));
    assert_eq!(v0(&log, -1, -1), None);
    // The log start offset raises the first segment's base offset.
    log.set_high_watermark(9);
    log.delete_records_before(1).unwrap();
    assert_eq!(v0(&log, -2, 10), Some(vec![1]));
}

#[test]
fn an_empty_log_answers_its_only_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(&dir.path().join("t-0"), small_config(), 0, 0, true, 0).unwrap();
    assert_eq!(log.legacy_offsets_before(-1, 5, 0).unwrap(), Some(vec![0]));
    assert_eq!(log.legacy_offsets_before(-2, 5, 0).unwrap(), Some(vec![0]));
}
