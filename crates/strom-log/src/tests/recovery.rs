//! Crash recovery: torn and corrupt tails, lost indexes.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{batch, read_all, small_config};
use crate::segment::{segment_file, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::Log;

/// Appends `n` batches of 3 records to a fresh log, drops it without closing, and returns the
/// partition path and the base offsets.
fn populate(dir: &Path, n: usize) -> (PathBuf, Vec<i64>) {
    let path = dir.join("t-0");
    let mut log = Log::open(&path, small_config(), 0, 0, true, 0).unwrap();
    let bases = (0..n)
        .map(|i| {
            log.append(batch(3, 40, i as u8, 1000 + i as i64), 0, 10)
                .unwrap()
                .first_offset
        })
        .collect();
    assert!(log.segment_count() > 2, "test wants several segments");
    drop(log);
    (path, bases)
}

fn last_segment(path: &Path) -> PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

fn segment_bases(path: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(path)
        .unwrap()
        .filter_map(|e| {
            crate::segment::parse_offset_file_name(e.unwrap().file_name().to_str()?, LOG_SUFFIX)
        })
        .collect();
    bases.sort();
    bases
}

fn reopen_unclean(path: &Path) -> Log {
    Log::open(path, small_config(), 0, 0, false, 20).unwrap()
}

fn check_after_damage(log: &mut Log, bases: &[i64], surviving: usize) {
    let batches = read_all(log);
    assert_eq!(batches.len(), surviving);
    for (i, (header, bytes)) in batches.iter().enumerate() {
        assert_eq!(header.base_offset, bases[i]);
        assert_eq!(bytes[bytes.len() - 2], i as u8, "payload of batch {i}");
    }
    let end = bases
        .get(surviving)
        .copied()
        .unwrap_or(bases[surviving - 1] + 3);
    assert_eq!(log.log_end_offset(), end);
    let info = log.append(batch(1, 5, 0xee, 5000), 1, 30).unwrap();
    assert_eq!(info.first_offset, end);
    assert_eq!(read_all(log).len(), surviving + 1);
}

#[test]
fn torn_last_batch_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bases) = populate(dir.path(), 40);
    let last = last_segment(&path);
    let len = std::fs::metadata(&last).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let mut log = reopen_unclean(&path);
    assert!(log.recovery_stats().bytes_truncated > 0);
    check_after_damage(&mut log, &bases, 39);
}

#[test]
fn garbage_and_zero_tails_are_truncated() {
    for tail in [
        vec![0u8; 100],
        b"this is not a record batch at all, just noise....................".to_vec(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (path, bases) = populate(dir.path(), 30);
        let mut file = OpenOptions::new()
            .append(true)
            .open(last_segment(&path))
            .unwrap();
        file.write_all(&tail).unwrap();
        drop(file);
        let mut log = reopen_unclean(&path);
        assert_eq!(log.recovery_stats().bytes_truncated, tail.len() as u64);
        check_after_damage(&mut log, &bases, 30);
    }
}

#[test]
fn bad_crc_in_last_batch_ends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bases) = populate(dir.path(), 30);
    let last = last_segment(&path);
    let mut bytes = std::fs::read(&last).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    std::fs::write(&last, bytes).unwrap();
    let mut log = reopen_unclean(&path);
    check_after_damage(&mut log, &bases, 29);
}

#[test]
fn corruption_in_a_middle_segment_drops_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bases) = populate(dir.path(), 40);
    let segments_before = std::fs::read_dir(&path)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count();
    // Corrupt the first batch of the second segment.
    let second_base = segment_bases(&path)[1];
    let file = segment_file(&path, second_base, LOG_SUFFIX);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[70] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let mut log = reopen_unclean(&path);
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.recovery_stats().segments_deleted, segments_before - 2);
    let surviving = bases.iter().position(|&b| b == second_base).unwrap();
    check_after_damage(&mut log, &bases, surviving);
}

#[test]
fn missing_or_bad_indexes_are_rebuilt_even_after_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bases) = populate(dir.path(), 40);
    let log = Log::open(&path, small_config(), 0, 0, false, 0).unwrap();
    log.close().unwrap();
    std::fs::remove_file(segment_file(&path, 0, INDEX_SUFFIX)).unwrap();
    let second = segment_bases(&path)[1];
    std::fs::write(segment_file(&path, second, TIME_INDEX_SUFFIX), [1u8; 13]).unwrap();
    let log = Log::open(&path, small_config(), i64::MAX, 0, true, 0).unwrap();
    assert_eq!(log.recovery_stats().segments_recovered, 2);
    let _ = bases;
    assert_eq!(log.recovery_stats().bytes_truncated, 0);
    assert_eq!(read_all(&log).len(), 40);
    // Every single offset is readable.
    for offset in 0..log.log_end_offset() {
        let info = log.read(offset, 1, i64::MAX, true).unwrap();
        let bytes = info.slice.unwrap().read_to_bytes().unwrap();
        let header = crate::BatchHeader::parse(&bytes).unwrap();
        assert!(header.base_offset <= offset && offset <= header.last_offset());
    }
    log.close().unwrap();
    // Now nothing needs re-reading.
    let log = Log::open(&path, small_config(), i64::MAX, 0, true, 0).unwrap();
    assert_eq!(log.recovery_stats().bytes_reread, 0);
}

#[test]
fn clean_open_rereads_nothing_and_unclean_rereads_from_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = populate(dir.path(), 40);
    let log = Log::open(&path, small_config(), 0, 0, false, 0).unwrap();
    let total = log.size_bytes();
    assert_eq!(log.recovery_stats().bytes_reread, total);
    let recovery_point = log.recovery_point();
    assert_eq!(recovery_point, log.log_end_offset());
    drop(log);
    let log = Log::open(&path, small_config(), recovery_point, 0, false, 0).unwrap();
    let reread = log.recovery_stats().bytes_reread;
    assert!(
        reread > 0 && reread < total / 2,
        "only the last segment: {reread} of {total}"
    );
}

/// How a segment file is damaged before an unclean reopen.
#[derive(Debug, Clone)]
enum Damage {
    FlipByte { at: usize },
    Truncate { at: usize },
    AppendBytes { bytes: Vec<u8> },
}

fn damage() -> impl proptest::strategy::Strategy<Value = Damage> {
    use proptest::prelude::*;
    prop_oneof![
        any::<usize>().prop_map(|at| Damage::FlipByte { at }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
        proptest::collection::vec(any::<u8>(), 1..200)
            .prop_map(|bytes| Damage::AppendBytes { bytes }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
    /// Whatever the damage to whichever segment, recovery keeps every batch that lies wholly
    /// before it, never panics, and the log accepts appends afterwards.
    #[test]
    fn recovery_keeps_everything_before_the_damage(segment_pick in 0usize..100, damage in damage()) {
        let dir = tempfile::tempdir().unwrap();
        let (path, bases) = populate(dir.path(), 30);
        let original = {
            let log = Log::open(&path, small_config(), i64::MAX, 0, true, 0).unwrap();
            read_all(&log)
        };
        let segments = segment_bases(&path);
        let base = segments[segment_pick % segments.len()];
        let file = segment_file(&path, base, LOG_SUFFIX);
        let mut bytes = std::fs::read(&file).unwrap();
        let damaged_at = match &damage {
            Damage::FlipByte { at } => {
                let at = at % bytes.len();
                bytes[at] ^= 0x5a;
                at
            }
            Damage::Truncate { at } => {
                let at = at % bytes.len();
                bytes.truncate(at);
                at
            }
            Damage::AppendBytes { bytes: tail } => {
                let at = bytes.len();
                bytes.extend_from_slice(tail);
                at
            }
        };
        std::fs::write(&file, &bytes).unwrap();
        // Batches wholly before the damage: earlier segments, and the damaged segment's batches
        // ending at or before the damaged byte.
        let mut position = 0;
        let survivors = original
            .iter()
            .take_while(|(header, bytes)| {
                if header.base_offset < base {
                    return true;
                }
                position += bytes.len();
                position <= damaged_at
            })
            .count();
        let mut log = Log::open(&path, small_config(), 0, 0, false, 0).unwrap();
        let recovered = read_all(&log);
        proptest::prop_assert!(recovered.len() >= survivors);
        for (a, b) in recovered.iter().zip(&original).take(survivors) {
            proptest::prop_assert_eq!(a, b);
        }
        let end = log.log_end_offset();
        proptest::prop_assert_eq!(end, recovered.last().map_or(0, |(h, _)| h.last_offset() + 1));
        let info = log.append(batch(1, 5, 0xee, 5000), 1, 30).unwrap();
        proptest::prop_assert_eq!(info.first_offset, end);
        let _ = bases;
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
    /// Damaged index files never make open or read panic, and a full re-read repairs them.
    #[test]
    fn damaged_indexes_never_panic(segment_pick in 0usize..100, time in proptest::prelude::any::<bool>(),
                                   at in 0usize..10_000, value in 1u8..=255) {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = populate(dir.path(), 30);
        Log::open(&path, small_config(), 0, 0, false, 0).unwrap().close().unwrap();
        let segments = segment_bases(&path);
        let base = segments[segment_pick % segments.len()];
        let file = segment_file(&path, base, if time { TIME_INDEX_SUFFIX } else { INDEX_SUFFIX });
        let mut bytes = std::fs::read(&file).unwrap();
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] ^= value;
            std::fs::write(&file, &bytes).unwrap();
        }
        let log = Log::open(&path, small_config(), i64::MAX, 0, true, 0).unwrap();
        for offset in 0..log.log_end_offset() {
            if let Ok(info) = log.read(offset, 1, i64::MAX, true) {
                let _ = info.slice.map(|s| s.read_to_bytes());
            }
        }
        let _ = log.offset_for_timestamp(1010);
        let _ = log.max_timestamp_offset();
        drop(log);
        let log = Log::open(&path, small_config(), 0, 0, false, 0).unwrap();
        proptest::prop_assert_eq!(read_all(&log).len(), 30);
    }
}
