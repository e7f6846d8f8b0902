//! Model-based test: random operations on a [`Log`] checked against a `BTreeMap` reference.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{batch, parse_batches, read_all, small_config};
use crate::Log;

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        size: usize,
    },
    Read {
        at: u64,
        max_bytes: usize,
        min_one: bool,
    },
    DeleteRecords {
        at: u64,
    },
    RetainBytes {
        bytes: i64,
    },
    Reopen {
        clean: bool,
    },
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..6, 0usize..120).prop_map(|(records, size)| Op::Append { records, size }),
        4 => (any::<u64>(), 1usize..1500, any::<bool>())
            .prop_map(|(at, max_bytes, min_one)| Op::Read { at, max_bytes, min_one }),
        1 => any::<u64>().prop_map(|at| Op::DeleteRecords { at }),
        1 => (0i64..3000).prop_map(|bytes| Op::RetainBytes { bytes }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => Just(Op::Flush),
    ]
}

/// Reference: base offset -> (last offset, CRC-covered bytes of the batch).
type Reference = BTreeMap<i64, (i64, Vec<u8>)>;

fn check_everything(log: &Log, reference: &Reference) {
    let batches = read_all(log);
    let expected: Vec<_> = reference
        .iter()
        .filter(|(_, (last, _))| *last >= log.log_start_offset())
        .collect();
    assert_eq!(batches.len(), expected.len(), "batch count");
    for ((header, bytes), (base, (last, body))) in batches.iter().zip(expected) {
        assert_eq!(header.base_offset, *base);
        assert_eq!(header.last_offset(), *last);
        assert_eq!(&bytes[21..], &body[..], "batch {base} content");
    }
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let config = small_config();
    let mut log = Log::open(&path, config.clone(), 0, 0, true, 0).unwrap();
    let mut reference = Reference::new();
    let mut now = 1;
    for (step, op) in ops.into_iter().enumerate() {
        now += 1;
        match op {
            Op::Append { records, size } => {
                let bytes = batch(records, size, step as u8, now);
                let body = bytes[21..].to_vec();
                let info = log.append(bytes, 3, now).unwrap();
                assert_eq!(
                    info.first_offset,
                    reference
                        .values()
                        .last()
                        .map_or(info.first_offset, |(l, _)| l + 1)
                );
                assert_eq!(info.last_offset - info.first_offset + 1, records as i64);
                reference.insert(info.first_offset, (info.last_offset, body));
                let end = log.log_end_offset();
                log.set_high_watermark(end);
            }
            Op::Read {
                at,
                max_bytes,
                min_one,
            } => {
                let start = log.log_start_offset();
                let span = (log.log_end_offset() - start + 1) as u64;
                let offset = start + (at % span) as i64;
                let info = log
                    .read(offset, max_bytes, log.high_watermark(), min_one)
                    .unwrap();
                let Some(slice) = info.slice else {
                    let first = reference.range(..=offset).next_back();
                    let fits = first.is_some_and(|(_, (last, body))| {
                        *last >= offset && body.len() + 21 > max_bytes
                    });
                    assert!(
                        offset == log.log_end_offset() || (!min_one && fits),
                        "empty read at {offset}"
                    );
                    continue;
                };
                let bytes = slice.read_to_bytes().unwrap();
                let batches = parse_batches(&bytes);
                if min_one {
                    assert!(!batches.is_empty());
                    assert!(bytes.len() <= max_bytes.max(batches[0].1.len()));
                } else {
                    assert!(bytes.len() <= max_bytes);
                }
                let mut expected = reference
                    .range(..=offset)
                    .next_back()
                    .into_iter()
                    .filter(|(_, (last, _))| *last >= offset)
                    .chain(reference.range(offset + 1..));
                for (header, bytes) in batches {
                    let (base, (last, body)) =
                        expected.next().expect("more batches than the reference");
                    assert_eq!((header.base_offset, header.last_offset()), (*base, *last));
                    assert_eq!(&bytes[21..], &body[..]);
                }
            }
            Op::DeleteRecords { at } => {
                let start = log.log_start_offset();
                let span = (log.high_watermark() - start + 1) as u64;
                let offset = start + (at % span) as i64;
                assert_eq!(log.delete_records_before(offset).unwrap(), offset);
                assert!(log.delete_records_before(log.high_watermark() + 1).is_err());
            }
            Op::RetainBytes { bytes } => {
                let mut retaining = config.clone();
                retaining.retention_bytes = bytes;
                log.update_config(retaining);
                let deleted = log.enforce_retention(now).unwrap();
                if deleted > 0 {
                    assert!(log.size_bytes() as i64 >= bytes.min(log.size_bytes() as i64));
                    let start = log.log_start_offset();
                    assert!(
                        start == log.log_end_offset()
                            || reference
                                .range(..=start)
                                .next_back()
                                .is_some_and(|(_, (last, _))| *last >= start)
                    );
                }
                log.update_config(config.clone());
            }
            Op::Reopen { clean } => {
                let start = log.log_start_offset();
                let recovery_point = log.recovery_point();
                if clean {
                    log.close().unwrap();
                } else {
                    drop(log);
                }
                log = Log::open(&path, config.clone(), recovery_point, start, clean, now).unwrap();
                assert_eq!(log.log_start_offset(), start);
                if clean {
                    assert_eq!(log.recovery_stats().bytes_reread, 0);
                }
            }
            Op::Flush => {
                log.flush().unwrap();
                assert_eq!(log.recovery_point(), log.log_end_offset());
            }
        }
        let expected_end = reference.values().last().map_or(0, |(last, _)| last + 1);
        assert_eq!(
            log.log_end_offset(),
            expected_end.max(log.log_start_offset())
        );
        assert!(log.log_start_offset() <= log.high_watermark());
    }
    check_everything(&log, &reference);
    let start = log.log_start_offset();
    let recovery_point = log.recovery_point();
    drop(log);
    let log = Log::open(&path, config, recovery_point, start, false, now).unwrap();
    check_everything(&log, &reference);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_reference(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops);
    }
}
