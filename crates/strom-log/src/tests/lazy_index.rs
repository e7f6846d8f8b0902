//! Indexes loaded on first lookup (Kafka's `LazyIndex`): opening a log reads no index entries,
//! lookups answer as they did with every index in memory, the index memory budget may drop
//! loaded entries at any time, and recovery still validates or rebuilds the active segment's
//! indexes.

use std::path::{Path, PathBuf};

use super::{batch, read_all, small_config};
use crate::segment::{segment_file, INDEX_SUFFIX, LOG_SUFFIX};
use crate::{Log, LogConfig};

/// A configuration with an index entry every batch or so and many small segments.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 64,
        ..small_config()
    }
}

/// A seeded generator for the shapes of the test logs (splitmix64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }

    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low) as u64) as i64
    }
}

/// Every record appended, as `(batch base offset, offset, timestamp)`.
type Records = Vec<(i64, i64, i64)>;

/// Appends `batches` batches of 1–4 records with timestamps that mostly grow but sometimes go
/// back, and returns the partition path, the open log and every record appended.
fn populate(dir: &Path, batches: usize, rng: &mut Rng) -> (PathBuf, Log, Records) {
    let path = dir.join("t-0");
    let mut log = Log::open(&path, config(), 0, 0, true, 0).unwrap();
    let mut timestamp = 1_000;
    let mut records = Vec::new();
    for i in 0..batches {
        timestamp += rng.range(-30, 100);
        let count = rng.range(1, 5) as usize;
        let size = rng.range(10, 120) as usize;
        let info = log
            .append(batch(count, size, i as u8, timestamp), 0, 0)
            .unwrap();
        for (k, offset) in (info.first_offset..=info.last_offset).enumerate() {
            records.push((info.first_offset, offset, timestamp + k as i64));
        }
    }
    (path, log, records)
}

/// The probes of [`answers`]: timestamps across the logs' range.
fn timestamps() -> impl Iterator<Item = i64> {
    (900..(1_000 + 100 * 1500)).step_by(97)
}

/// What the log must answer, worked out from the records alone (the answers are exact; the
/// indexes only say where to start reading).
fn model(records: &Records) -> (Vec<i64>, Vec<Option<(i64, i64)>>) {
    let by_offset = records.iter().map(|&(base, _, _)| base).collect();
    let by_time = timestamps()
        .map(|t| {
            records
                .iter()
                .find(|&&(_, _, timestamp)| timestamp >= t)
                .map(|&(_, offset, timestamp)| (offset, timestamp))
        })
        .collect();
    (by_offset, by_time)
}

/// What every lookup answers: the batch a fetch at each offset starts with, and ListOffsets
/// for timestamps across the log's range.
fn answers(log: &Log) -> (Vec<i64>, Vec<Option<(i64, i64)>>) {
    let by_offset = (log.log_start_offset()..log.log_end_offset())
        .map(|offset| {
            let slice = log.read(offset, 1, i64::MAX, true).unwrap().slice.unwrap();
            let bytes = slice.read_to_bytes().unwrap();
            crate::BatchHeader::parse(&bytes).unwrap().base_offset
        })
        .collect();
    let by_time = timestamps()
        .map(|timestamp| log.offset_for_timestamp(timestamp).unwrap())
        .collect();
    (by_offset, by_time)
}

#[test]
fn a_log_opened_and_never_read_holds_no_index_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let (path, log, _) = populate(dir.path(), 300, &mut rng);
    assert!(log.segment_count() > 5, "{}", log.segment_count());
    assert!(
        log.index_bytes_in_memory() > 0,
        "the active segment's entries"
    );
    log.close().unwrap();
    let log = Log::open(&path, config(), i64::MAX, 0, true, 0).unwrap();
    assert_eq!(log.recovery_stats().bytes_reread, 0);
    assert_eq!(log.index_bytes_in_memory(), 0, "nothing read at open");
    // A fetch at the start loads the first segment's offset index, and only that.
    read_first_batch(&log, 0);
    let first = std::fs::metadata(segment_file(&path, 0, INDEX_SUFFIX))
        .unwrap()
        .len() as usize;
    assert!(first > 0);
    assert_eq!(log.index_bytes_in_memory(), first);
    // An unclean open re-reads the active segment and rebuilds its indexes (written to their
    // files by recovery), and loads nothing else.
    let recovery_point = log.log_end_offset() - 1;
    drop(log);
    let log = Log::open(&path, config(), recovery_point, 0, false, 0).unwrap();
    assert_eq!(log.recovery_stats().segments_recovered, 1);
    assert_eq!(log.index_bytes_in_memory(), 0);
    read_first_batch(&log, log.log_end_offset() - 1);
    let bases = segment_bases(&path);
    let active = std::fs::metadata(segment_file(&path, *bases.last().unwrap(), INDEX_SUFFIX))
        .unwrap()
        .len() as usize;
    assert!(active > 0);
    assert_eq!(
        log.index_bytes_in_memory(),
        active,
        "only the active segment's"
    );
}

fn read_first_batch(log: &Log, offset: i64) {
    let slice = log.read(offset, 1, i64::MAX, true).unwrap().slice.unwrap();
    let header = crate::BatchHeader::parse(&slice.read_to_bytes().unwrap()).unwrap();
    assert!(header.base_offset <= offset && offset <= header.last_offset());
}

/// Seeded: a log answers every fetch offset and ListOffsets timestamp exactly as the records it
/// holds say (what the eager indexes answered) while its appends build the indexes in memory,
/// and again reopened cleanly and after a crash with indexes loaded on demand, with an index
/// memory budget so small that loaded entries are dropped between lookups.
/// `STROM_LAZY_INDEX_SEED` replays one seed.
#[test]
fn lazy_lookups_answer_as_the_indexes_built_in_memory() {
    crate::open_files::set_index_bytes_capacity(4096);
    let seeds: Vec<u64> = match std::env::var("STROM_LAZY_INDEX_SEED") {
        Ok(seed) => vec![seed.parse().expect("a u64 seed")],
        Err(_) => (0..6).collect(),
    };
    let mut reloaded_seeds = 0;
    for seed in seeds {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let batches = rng.range(600, 1500) as usize;
        let (path, log, records) = populate(dir.path(), batches, &mut rng);
        let eager = model(&records);
        assert_eq!(answers(&log), eager, "seed {seed}: as appended");
        log.close().unwrap();
        let log = Log::open(&path, config(), i64::MAX, 0, true, 0).unwrap();
        assert_eq!(log.index_bytes_in_memory(), 0, "seed {seed}");
        let loads_before = crate::open_files::index_loads_total();
        assert_eq!(answers(&log), eager, "seed {seed}: clean reopen");
        let on_disk: u64 = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "index" || e == "timeindex")
            })
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        if on_disk > 2 * 4096 {
            reloaded_seeds += 1;
            assert!(
                crate::open_files::index_loads_total() - loads_before > 2 * log.segment_count(),
                "seed {seed}: the budget dropped loaded entries and they were loaded again"
            );
        }
        assert!(
            crate::open_files::index_bytes_loaded() <= 4096 + 4096,
            "seed {seed}: the budget holds ({} bytes)",
            crate::open_files::index_bytes_loaded()
        );
        drop(log);
        let log = Log::open(&path, config(), 0, 0, false, 0).unwrap();
        assert_eq!(answers(&log), eager, "seed {seed}: unclean reopen");
    }
    assert!(reloaded_seeds > 0 || std::env::var("STROM_LAZY_INDEX_SEED").is_ok());
}

/// A clean shutdown followed by damage to the middle of the active segment's offset index
/// (the last entry still looks right): the full check at open finds it and the segment is
/// re-read, as before indexes were loaded lazily. The same damage in an older segment is
/// found when its index is loaded, ignored, and its reads stay correct.
#[test]
fn the_active_segments_index_is_still_checked_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(11);
    let (path, log, _) = populate(dir.path(), 300, &mut rng);
    let expected = read_all(&log);
    log.close().unwrap();
    let bases = segment_bases(&path);
    for &base in [bases[0], *bases.last().unwrap()].iter() {
        let index = segment_file(&path, base, INDEX_SUFFIX);
        let mut bytes = std::fs::read(&index).unwrap();
        assert!(bytes.len() >= 24, "several entries in segment {base}");
        bytes[..16].rotate_left(8);
        std::fs::write(&index, &bytes).unwrap();
    }
    let log = Log::open(&path, config(), i64::MAX, 0, true, 0).unwrap();
    assert_eq!(
        log.recovery_stats().segments_recovered,
        1,
        "the active segment"
    );
    assert_eq!(read_all(&log), expected);
    for offset in 0..log.log_end_offset() {
        read_first_batch(&log, offset);
    }
    log.close().unwrap();
    // The rebuilt active index is sane again; the first segment's is still damaged (nothing
    // rewrites a sealed segment's index) and is ignored on every load.
    let log = Log::open(&path, config(), i64::MAX, 0, true, 0).unwrap();
    assert_eq!(log.recovery_stats().segments_recovered, 0);
    read_first_batch(&log, 5);
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

/// Many partitions with several segments each, reopened after a crash (no close): each
/// partition re-reads only its active segment, and the sealed segments' indexes stay on disk
/// until a read needs them.
#[test]
fn many_logs_reopened_after_a_crash_load_only_what_they_read() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = Rng(3);
    let mut recovery_points = Vec::new();
    for i in 0..20 {
        let path = root.path().join(format!("t-{i}"));
        let mut log = Log::open(&path, config(), 0, 0, true, 0).unwrap();
        for j in 0..80 {
            log.append(
                batch(2, rng.range(20, 100) as usize, j as u8, 1_000 + j),
                0,
                0,
            )
            .unwrap();
        }
        // What the manager's checkpoint would hold: everything below the active segment.
        recovery_points.push(log.log_end_offset() - 2);
        drop(log); // kill -9: nothing sealed, nothing closed
    }
    for (i, &recovery_point) in recovery_points.iter().enumerate() {
        let path = root.path().join(format!("t-{i}"));
        let log = Log::open(&path, config(), recovery_point, 0, false, 0).unwrap();
        assert_eq!(log.recovery_stats().segments_recovered, 1, "log {i}");
        assert!(log.segment_count() > 3);
        assert_eq!(log.log_end_offset(), 160);
        // The rebuilt entries are written; the producer-state replay from the last snapshot
        // (at the active segment's base) may load the active segment's offset index.
        let bases = segment_bases(&path);
        let active = std::fs::metadata(segment_file(&path, *bases.last().unwrap(), INDEX_SUFFIX))
            .unwrap()
            .len() as usize;
        assert!(
            log.index_bytes_in_memory() <= active,
            "log {i}: only the active segment's"
        );
        let all = read_all(&log);
        assert_eq!(all.len(), 80);
        assert!(
            log.index_bytes_in_memory() > 0,
            "log {i}: reading loads them"
        );
    }
}
