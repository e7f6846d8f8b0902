//! Compaction against a model: after a pass, the cleaned part holds exactly the latest record of
//! each key (tombstones while within `delete.retention.ms`), offsets and everything after the
//! cleaned part are unchanged, and the log reopens (also after a crash) to the same content.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::{read_all, small_config};
use crate::records::{decode_records, encode_batch, KeyValue};
use crate::{Log, LogConfig};

const NOW: i64 = 1_000_000_000;

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        compact: true,
        min_cleanable_dirty_ratio: 0.0,
        ..small_config()
    }
}

/// A tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Every record in the log: (offset, key, value).
type Row = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn rows(log: &Log) -> Vec<Row> {
    read_all(log)
        .into_iter()
        .flat_map(|(_, bytes)| decode_records(&Bytes::from(bytes)).unwrap())
        .map(|r| {
            (
                r.offset,
                r.key.map(|k| k.to_vec()),
                r.value.map(|v| v.to_vec()),
            )
        })
        .collect()
}

/// Appends `batches` random keyed batches (keys k0..k{keys}, one in ten a tombstone) and returns
/// what was written.
fn fill(log: &mut Log, rng: &mut Rng, batches: usize, keys: u64, ts: i64) -> Vec<Row> {
    let mut written = Vec::new();
    for _ in 0..batches {
        let n = 1 + rng.next(4) as usize;
        let owned: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..n)
            .map(|_| {
                let key = format!("k{}", rng.next(keys)).into_bytes();
                let value =
                    (rng.next(10) != 0).then(|| format!("v{}", rng.next(1 << 30)).into_bytes());
                (key, value)
            })
            .collect();
        let records: Vec<KeyValue<'_>> = owned
            .iter()
            .map(|(k, v)| (Some(&k[..]), v.as_deref()))
            .collect();
        let info = log
            .append(Bytes::from(encode_batch(&records, ts)), 0, ts)
            .unwrap();
        for (i, (k, v)) in owned.into_iter().enumerate() {
            written.push((info.first_offset + i as i64, Some(k), v));
        }
    }
    log.flush().unwrap();
    let end = log.log_end_offset();
    log.set_high_watermark(end);
    written
}

/// What compaction must leave: in `[0, cleaned_to)` only each key's latest record (tombstones
/// only if `keep_tombstones`), everything at or after `cleaned_to` untouched.
fn expected(written: &[Row], cleaned_to: i64, keep_tombstones: bool) -> Vec<Row> {
    let mut latest: HashMap<&Option<Vec<u8>>, i64> = HashMap::new();
    for (offset, key, _) in written.iter().filter(|r| r.0 < cleaned_to) {
        latest.insert(key, *offset);
    }
    written
        .iter()
        .filter(|(offset, key, value)| {
            *offset >= cleaned_to
                || (latest[key] == *offset && (value.is_some() || keep_tombstones))
        })
        .cloned()
        .collect()
}

#[test]
fn compaction_keeps_the_latest_record_of_every_key() {
    for seed in 1..=12u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), compact_config(), 0, 0, true, NOW).unwrap();
        let mut rng = Rng(seed * 0x9e37_79b9);
        let written = fill(&mut log, &mut rng, 120, 1 + seed * 3, NOW);
        assert!(log.segment_count() > 3, "seed {seed}: several segments");
        let end = log.log_end_offset();
        let size_before = log.size_bytes();
        // The first run does the work; the horizon keeps every tombstone.
        let stats = log
            .compact_now(NOW)
            .unwrap()
            .expect("a dirty log is compacted");
        let cleaned_to = log.cleaned_up_to();
        assert!(
            cleaned_to > 0 && cleaned_to < end,
            "seed {seed}: the active segment stays"
        );
        assert!(stats.segments_cleaned > 0 && stats.bytes_after < stats.bytes_before);
        assert!(log.size_bytes() < size_before);
        assert_eq!(log.log_end_offset(), end, "the end never moves");
        let want = expected(&written, cleaned_to, true);
        assert_eq!(rows(&log), want, "seed {seed}");
        // Nothing dirty is left: a second pass finds no work.
        assert!(log.compact_now(NOW).unwrap().is_none(), "seed {seed}");

        // The compacted segments came with sane indexes: a clean reopen re-reads nothing.
        log.close().unwrap();
        let log = Log::open(dir.path(), compact_config(), 0, 0, true, NOW).unwrap();
        assert_eq!(log.recovery_stats().segments_recovered, 0, "seed {seed}");
        assert_eq!(rows(&log), want, "seed {seed}: after a clean reopen");

        // A reopen after a crash (no clean-shutdown marker) re-reads everything compacted.
        drop(log);
        let log = Log::open(dir.path(), compact_config(), 0, 0, false, NOW).unwrap();
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(rows(&log), want, "seed {seed}: after reopen");
    }
}

#[test]
fn tombstones_go_once_older_than_delete_retention_and_keyless_records_go() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        delete_retention_ms: 1_000,
        ..compact_config()
    };
    // The keyless record was written before the topic became compacted (a compacted topic
    // refuses keyless records on append).
    let mut log = Log::open(
        dir.path(),
        LogConfig {
            compact: false,
            ..config.clone()
        },
        0,
        0,
        true,
        NOW,
    )
    .unwrap();
    let old = NOW - 10_000;
    // The padding fills the segment, so this old batch is alone in it (tombstones expire by
    // their segment's largest timestamp).
    let pad = vec![b'x'; 1900];
    let records: Vec<KeyValue<'_>> = vec![
        (Some(b"a"), Some(b"1")),
        (Some(b"b"), None),
        (None, Some(b"no key")),
        (Some(b"c"), Some(b"3")),
        (Some(b"pad"), Some(&pad)),
    ];
    log.append(Bytes::from(encode_batch(&records, old)), 0, old)
        .unwrap();
    log.update_config(config);
    // Fill past a roll with fresh records of other keys, so the first segment is cleanable.
    let mut rng = Rng(7);
    let mut later = Vec::new();
    while log.segment_count() < 3 {
        later.extend(fill(&mut log, &mut rng, 1, 5, NOW));
    }
    log.compact_now(NOW).unwrap().expect("compacted");
    let got = rows(&log);
    let first: Vec<_> = got.iter().filter(|r| r.0 < 5).cloned().collect();
    assert_eq!(
        first,
        vec![
            (0, Some(b"a".to_vec()), Some(b"1".to_vec())),
            (3, Some(b"c".to_vec()), Some(b"3".to_vec())),
            (4, Some(b"pad".to_vec()), Some(pad.clone())),
        ],
        "the expired tombstone of b and the keyless record are gone"
    );
    // A fresh tombstone (in a segment newer than the horizon) stays.
    let fresh_tombstones = later
        .iter()
        .filter(|r| r.2.is_none() && r.0 >= log.cleaned_up_to())
        .count();
    let kept_tombstones = got
        .iter()
        .filter(|r| r.2.is_none() && r.0 >= log.cleaned_up_to())
        .count();
    assert_eq!(fresh_tombstones, kept_tombstones);
}

#[test]
fn the_dirty_ratio_and_the_lag_hold_compaction_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        min_cleanable_dirty_ratio: 0.5,
        min_compaction_lag_ms: 60_000,
        ..compact_config()
    };
    let mut log = Log::open(dir.path(), config, 0, 0, true, NOW).unwrap();
    let mut rng = Rng(3);
    // Keys almost never repeat, so compaction keeps nearly everything.
    fill(&mut log, &mut rng, 80, 1 << 40, NOW - 1_000);
    let segments = log.segment_count();
    assert!(
        log.compact_now(NOW).unwrap().is_none(),
        "segments younger than min.compaction.lag.ms wait"
    );
    assert!(log.compact_now(NOW + 60_000).unwrap().is_some());
    // One more segment of new data is far below half of the cleanable bytes.
    while log.segment_count() < segments + 1 {
        fill(&mut log, &mut rng, 1, 1 << 40, NOW);
    }
    assert!(
        log.compact_now(NOW + 120_000).unwrap().is_none(),
        "below the dirty ratio"
    );
    // Enough new data crosses it.
    while log.segment_count() < 2 * segments + 2 {
        fill(&mut log, &mut rng, 1, 1 << 40, NOW);
    }
    assert!(
        log.compact_now(NOW + 120_000).unwrap().is_some(),
        "above the dirty ratio"
    );
}

#[test]
fn a_producers_remembered_batches_survive_compaction_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config(), 0, 0, true, NOW).unwrap();
    // An idempotent producer writes key "p" (TestBatch records have null keys, so build keyed
    // idempotent batches by hand from a keyed one and the producer fields).
    let keyed = |seq: i32| {
        let mut b = encode_batch(&[(Some(b"p"), Some(b"x"))], NOW);
        b[43..51].copy_from_slice(&77i64.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    };
    for seq in 0..3 {
        log.append(keyed(seq), 0, NOW).unwrap();
    }
    // Other data supersedes "p" and rolls the producer's batches out of the active segment.
    let mut rng = Rng(11);
    while log.segment_count() < 3 {
        fill(&mut log, &mut rng, 1, 3, NOW);
    }
    let supersede: Vec<KeyValue<'_>> = vec![(Some(b"p"), Some(b"y"))];
    log.append(Bytes::from(encode_batch(&supersede, NOW)), 0, NOW)
        .unwrap();
    while log.segment_count() < 5 {
        fill(&mut log, &mut rng, 1, 3, NOW);
    }
    log.compact_now(NOW).unwrap().expect("compacted");
    let batches = read_all(&log);
    let producer: Vec<_> = batches
        .iter()
        .filter(|(h, _)| h.producer_id == 77)
        .map(|(h, _)| (h.base_offset, h.records_count))
        .collect();
    assert_eq!(producer, vec![(0, 0), (1, 0), (2, 0)], "kept, emptied");
    // The producer's retry of its last batch is still a duplicate, also after a crash.
    drop(log);
    let mut log = Log::open(dir.path(), compact_config(), 0, 0, false, NOW).unwrap();
    let retry = log.append(keyed(2), 0, NOW).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.first_offset, 2);
}

#[test]
fn a_leftover_staged_copy_is_removed_at_open_and_the_old_segment_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config(), 0, 0, true, NOW).unwrap();
    let mut rng = Rng(5);
    let written = fill(&mut log, &mut rng, 60, 4, NOW);
    let end = log.log_end_offset();
    drop(log);
    // A compaction interrupted before its first rename: a staged copy of segment 0.
    let staging = dir.path().join(crate::log::STAGING_DIR);
    std::fs::create_dir(&staging).unwrap();
    let stray = staging.join(format!("{:020}.log", 0));
    std::fs::write(&stray, b"half a compaction").unwrap();
    let log = Log::open(dir.path(), compact_config(), 0, 0, false, NOW).unwrap();
    assert!(!stray.exists() && !staging.exists());
    assert_eq!(log.log_end_offset(), end);
    let by_offset: BTreeMap<i64, Row> = rows(&log).into_iter().map(|r| (r.0, r)).collect();
    assert_eq!(by_offset.len(), written.len(), "nothing was lost");
}

#[test]
fn a_batch_whose_records_do_not_decode_is_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let plain = LogConfig {
        compact: false,
        ..compact_config()
    };
    let mut log = Log::open(dir.path(), plain, 0, 0, true, NOW).unwrap();
    // A batch with a correct CRC over records that are garbage (said to be gzip, they are not
    // even that), written before the topic became compacted: a compressed batch with a
    // plausible header is stored without being inflated.
    let mut bad = encode_batch(&[(Some(b"k"), Some(b"v"))], NOW);
    bad[crate::batch::BATCH_HEADER_LEN] = 0x7f;
    bad[22] |= 1;
    let crc = crc32c::crc32c(&bad[21..]);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    log.append(Bytes::from(bad.clone()), 0, NOW).unwrap();
    log.update_config(compact_config());
    let mut rng = Rng(9);
    while log.segment_count() < 3 {
        fill(&mut log, &mut rng, 1, 3, NOW);
    }
    log.compact_now(NOW)
        .unwrap()
        .expect("the rest is compacted");
    let first = &read_all(&log)[0];
    assert_eq!(first.0.base_offset, 0);
    // Byte for byte, apart from the leader epoch the append assigned.
    assert_eq!(first.1[..12], bad[..12]);
    assert_eq!(first.1[16..], bad[16..], "kept byte for byte");
}

#[test]
fn a_compacted_log_refuses_keyless_and_undecodable_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config(), 0, 0, true, NOW).unwrap();
    let keyless = encode_batch(&[(Some(b"k"), Some(b"v")), (None, Some(b"v"))], NOW);
    match log.append(Bytes::from(keyless), 0, NOW) {
        Err(crate::AppendError::InvalidRecords {
            timestamp: false,
            message,
            records,
        }) => {
            assert!(message.contains("1 of 2 records"), "{message}");
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].batch_index, 1);
            assert!(records[0].message.contains("no key"), "{records:?}");
        }
        other => panic!("expected INVALID_RECORD, got {other:?}"),
    }
    let mut bad = encode_batch(&[(Some(b"k"), Some(b"v"))], NOW);
    bad[crate::batch::BATCH_HEADER_LEN] = 0x7f;
    let crc = crc32c::crc32c(&bad[21..]);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        log.append(Bytes::from(bad), 0, NOW),
        Err(crate::AppendError::CorruptMessage(_))
    ));
    assert_eq!(log.log_end_offset(), 0, "nothing was written");
    let keyed = encode_batch(&[(Some(b"k"), None)], NOW);
    assert_eq!(
        log.append(Bytes::from(keyed), 0, NOW).unwrap().first_offset,
        0
    );
}

/// Appends one plain keyed record at time `ts`.
fn plain_record(log: &mut Log, key: &str, value: &str, ts: i64) {
    let records: [KeyValue<'_>; 1] = [(Some(key.as_bytes()), Some(value.as_bytes()))];
    log.append(Bytes::from(encode_batch(&records, ts)), 0, ts)
        .unwrap();
}

/// Appends one transactional keyed record of `producer_id` (sequence `sequence`) at time `ts`.
fn txn_record(log: &mut Log, producer_id: i64, sequence: i32, key: &str, value: &str, ts: i64) {
    use crate::records::{encode_transactional_batch, TxnProducer};
    let records: [KeyValue<'_>; 1] = [(Some(key.as_bytes()), Some(value.as_bytes()))];
    let producer = TxnProducer {
        producer_id,
        producer_epoch: 0,
        base_sequence: sequence,
    };
    let batch = encode_transactional_batch(&records, ts, producer);
    log.append(Bytes::from(batch), 0, ts).unwrap();
}

/// Appends a COMMIT or ABORT marker of `producer_id` at time `ts`.
fn txn_marker(log: &mut Log, producer_id: i64, commit: bool, ts: i64) {
    let marker = crate::control::TxnMarker {
        producer_id,
        producer_epoch: 0,
        coordinator_epoch: 0,
        commit,
    };
    log.append_txn_marker(&marker, 0, ts).unwrap();
}

/// Sixty plain records over the keys `filler-0..6`.
fn filler(log: &mut Log, from: usize, ts: i64) {
    for i in from..from + 60 {
        plain_record(log, &format!("filler-{}", i % 7), "f", ts);
    }
}

/// Aborted transactional records do not count as a key's latest (and are removed) and records
/// at or past the last stable offset are not cleaned, so neither an aborted nor a still open transaction
/// makes compaction remove the committed record it would have replaced (the group
/// coordinator's TxnOffsetCommit records in `__consumer_offsets` rely on it: the load drops
/// an aborted offset and must find the one before it). A committed transaction's record does
/// replace the older one.
#[test]
fn aborted_and_open_transactions_do_not_replace_older_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config(), 0, 0, true, NOW).unwrap();
    let plain = |log: &mut Log, key: &str, value: &str| plain_record(log, key, value, NOW);
    let transactional = |log: &mut Log, producer_id: i64, key: &str, value: &str| {
        txn_record(log, producer_id, 0, key, value, NOW)
    };
    let marker =
        |log: &mut Log, producer_id: i64, commit: bool| txn_marker(log, producer_id, commit, NOW);
    let filler = |log: &mut Log, from: usize| filler(log, from, NOW);
    plain(&mut log, "aborted", "committed-before");
    plain(&mut log, "replaced", "old");
    plain(&mut log, "open", "committed-before");
    filler(&mut log, 0);
    transactional(&mut log, 5, "aborted", "never");
    marker(&mut log, 5, false);
    transactional(&mut log, 6, "replaced", "new");
    marker(&mut log, 6, true);
    filler(&mut log, 60);
    transactional(&mut log, 7, "open", "undecided");
    filler(&mut log, 120);
    log.flush().unwrap();
    let end = log.log_end_offset();
    log.set_high_watermark(end);
    assert!(log.segment_count() > 4, "several segments");
    let values = |log: &Log, key: &str| -> Vec<Vec<u8>> {
        rows(log)
            .into_iter()
            .filter(|(_, k, _)| k.as_deref() == Some(key.as_bytes()))
            .filter_map(|(_, _, v)| v)
            .collect()
    };
    let filler_before = values(&log, "filler-3").len();

    log.compact_now(NOW)
        .unwrap()
        .expect("a dirty log is compacted");
    let values = |key: &str| values(&log, key);
    assert_eq!(
        values("aborted"),
        [b"committed-before".to_vec()],
        "the aborted record is no key's latest, and is removed"
    );
    assert_eq!(values("replaced"), [b"new".to_vec()], "a committed one is");
    assert_eq!(
        values("open"),
        [b"committed-before".to_vec(), b"undecided".to_vec()],
        "nothing past the last stable offset counts"
    );
    assert!(log.cleaned_up_to() <= log.last_stable_offset());
    assert!(
        values("filler-3").len() < filler_before,
        "the part below the last stable offset was compacted"
    );
}

/// Kafka's cleaner removes obsolete transaction markers: a marker goes once no batch of its
/// transaction is left (one pass after its last record) and its segment is older than
/// `delete.retention.ms`; an ABORT marker's aborted-transaction entry goes with it, also after
/// a reopen, and no transaction is left looking open. Markers whose transactions still have
/// batches (the producer state's last five, kept empty, or a latest record) stay.
#[test]
fn obsolete_transaction_markers_are_removed_after_their_records() {
    let old = NOW - 2 * LogConfig::default().delete_retention_ms;
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config(), 0, 0, true, old).unwrap();
    // Producer 5: one aborted transaction, then seven committed ones on the key "p5".
    txn_record(&mut log, 5, 0, "k", "aborted", old);
    let abort_offset = log.log_end_offset();
    txn_marker(&mut log, 5, false, old);
    for i in 0..7 {
        txn_record(&mut log, 5, i + 1, "p5", &format!("v{i}"), old);
        txn_marker(&mut log, 5, true, old);
    }
    filler(&mut log, 0, old);
    let seal = |log: &mut Log| {
        log.flush().unwrap();
        let end = log.log_end_offset();
        log.set_high_watermark(end);
    };
    seal(&mut log);
    let markers = |log: &Log| {
        read_all(log)
            .iter()
            .filter(|(h, _)| h.is_control())
            .map(|(h, _)| h.base_offset)
            .collect::<Vec<_>>()
    };
    let all_markers = markers(&log);
    assert_eq!(all_markers.len(), 8);
    assert_eq!(all_markers[0], abort_offset);
    let end = log.log_end_offset();
    assert_eq!(log.aborted_transactions(0, end), [(5, 0)]);

    // Pass 1: the aborted record and the replaced committed ones go; every marker stays (its
    // records were still in the log this pass saw).
    log.compact_now(NOW).unwrap().expect("dirty");
    assert_eq!(
        markers(&log),
        all_markers,
        "markers outlive their records by a pass"
    );
    assert!(rows(&log)
        .iter()
        .all(|r| r.2.as_deref() != Some(b"aborted")));
    let p5_batches = |log: &Log| {
        read_all(log)
            .iter()
            .filter(|(h, _)| h.producer_id == 5 && !h.is_control())
            .count()
    };
    assert_eq!(
        p5_batches(&log),
        5,
        "the producer state's last five batches stay"
    );

    // Pass 2 while the markers' segments are younger than delete.retention.ms: they stay.
    filler(&mut log, 60, old);
    seal(&mut log);
    log.compact_now(old + 1000).unwrap().expect("dirty");
    assert_eq!(markers(&log), all_markers, "young markers stay");

    // Pass 3, old enough: the abort and the first two commits (whose records are gone) go.
    filler(&mut log, 120, old);
    seal(&mut log);
    log.compact_now(NOW).unwrap().expect("dirty");
    assert_eq!(markers(&log), all_markers[3..], "obsolete markers removed");
    let end = log.log_end_offset();
    assert!(log.aborted_transactions(0, end).is_empty());
    assert_eq!(log.last_stable_offset(), end, "no transaction looks open");
    let committed: Vec<_> = rows(&log)
        .into_iter()
        .filter(|r| r.1.as_deref() == Some(b"p5"))
        .map(|r| r.2.unwrap())
        .collect();
    assert_eq!(committed, [b"v6".to_vec()]);

    drop(log);
    let log = Log::open(dir.path(), compact_config(), 0, 0, true, NOW).unwrap();
    let end = log.log_end_offset();
    assert_eq!(markers(&log), all_markers[3..]);
    assert!(
        log.aborted_transactions(0, end).is_empty(),
        "the index entry is gone on disk too"
    );
    assert_eq!(log.last_stable_offset(), log.high_watermark().min(end));
}
