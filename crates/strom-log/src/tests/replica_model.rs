//! Model test of the replication operations: random leader appends with epoch changes,
//! follower appends (with offset gaps, trailing partial batches and refused inputs),
//! `truncate_to`, `truncate_fully_and_start_at`, new-leader epochs, high watermark moves,
//! flushes, clean and unclean reopens, checked after every step against a reference that is
//! a list of `(base offset, last offset, epoch, bytes)`: the bytes read back, the offsets, the
//! leader-epoch cache and `end_offset_for_epoch`, and the producer state (which must be what a
//! replay of the reference's headers gives).

use proptest::prelude::*;

use super::{read_all, small_config, stored_batch};
use crate::batch::{assign_offset, BatchHeader};
use crate::error::FollowerAppendError;
use crate::producer_state::ProducerState;
use crate::Log;

#[derive(Debug, Clone)]
struct FollowerBatch {
    records: usize,
    size: usize,
    gap: i64,
    epoch_bump: i32,
    /// Producer id and whether the producer bumps its epoch; the sequence follows on.
    producer: Option<(i64, bool)>,
}

#[derive(Debug, Clone)]
enum Op {
    LeaderAppend {
        records: usize,
        size: usize,
        new_epoch: bool,
        producer: Option<i64>,
    },
    FollowerAppend {
        batches: Vec<FollowerBatch>,
        partial_tail: Option<usize>,
    },
    BadFollowerAppend {
        kind: u8,
    },
    TruncateTo {
        at: u64,
    },
    TruncateFully {
        at: u64,
    },
    StartEpoch,
    SetHighWatermark {
        at: u64,
    },
    Flush,
    Reopen {
        clean: bool,
    },
}

fn follower_batch() -> impl Strategy<Value = FollowerBatch> {
    (
        1usize..5,
        0usize..150,
        prop_oneof![4 => Just(0i64), 1 => 1i64..4],
        prop_oneof![4 => Just(0i32), 1 => Just(1), 1 => Just(2)],
        proptest::option::of((1i64..4, proptest::bool::weighted(0.2))),
    )
        .prop_map(|(records, size, gap, epoch_bump, producer)| FollowerBatch {
            records,
            size,
            gap,
            epoch_bump,
            producer,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..5, 0usize..150, proptest::bool::weighted(0.2), proptest::option::of(1i64..4))
            .prop_map(|(records, size, new_epoch, producer)| Op::LeaderAppend { records, size, new_epoch, producer }),
        5 => (proptest::collection::vec(follower_batch(), 1..5), proptest::option::weighted(0.3, 1usize..200))
            .prop_map(|(batches, partial_tail)| Op::FollowerAppend { batches, partial_tail }),
        1 => (0u8..6).prop_map(|kind| Op::BadFollowerAppend { kind }),
        3 => any::<u64>().prop_map(|at| Op::TruncateTo { at }),
        1 => any::<u64>().prop_map(|at| Op::TruncateFully { at }),
        1 => Just(Op::StartEpoch),
        1 => any::<u64>().prop_map(|at| Op::SetHighWatermark { at }),
        1 => Just(Op::Flush),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

/// One batch of the reference: base offset, last offset, leader epoch, the stored bytes.
type Entry = (i64, i64, i32, Vec<u8>);

#[derive(Debug, Default)]
struct Reference {
    /// Every batch in the log's files, in order.
    batches: Vec<Entry>,
    log_end_offset: i64,
    log_start_offset: i64,
    high_watermark: i64,
    /// The epoch the cluster is at: only grows, like a controller's.
    epoch: i32,
    /// An epoch a new leader recorded at the log end before appending anything, and where.
    epoch_without_data: Option<(i32, i64)>,
    /// Entries a new leader recorded that outlived the next append: its epoch's first batch
    /// came after a gap in offsets, or a newer epoch's did (the entry then has no batch).
    recorded: Vec<(i32, i64)>,
}

impl Reference {
    fn push(&mut self, bytes: Vec<u8>) {
        let header = BatchHeader::parse(&bytes).unwrap();
        self.batches.push((
            header.base_offset,
            header.last_offset(),
            header.partition_leader_epoch,
            bytes,
        ));
        self.log_end_offset = header.last_offset() + 1;
        if let Some((epoch, start)) = self.epoch_without_data.take() {
            if epoch == header.partition_leader_epoch || header.base_offset > start {
                self.recorded.push((epoch, start));
            }
        }
    }

    /// Forgets what a truncation removed: the cache drops entries at or above the end.
    fn truncated(&mut self) {
        self.epoch_without_data = None;
        let end = self.log_end_offset;
        self.recorded.retain(|&(_, start)| start < end);
    }

    /// The leader-epoch cache the log must hold: each epoch at its first batch.
    fn epoch_entries(&self) -> Vec<(i32, i64)> {
        let mut entries: Vec<(i32, i64)> = Vec::new();
        for &(base, _, epoch, _) in &self.batches {
            if entries.last().is_none_or(|&(e, _)| epoch > e) {
                entries.push((epoch, base));
            }
        }
        for &(epoch, start) in &self.recorded {
            match entries.iter_mut().find(|(e, _)| *e == epoch) {
                Some(entry) => entry.1 = start,
                None => entries.push((epoch, start)),
            }
        }
        entries.sort_unstable();
        if let Some(entry) = self.epoch_without_data {
            entries.push(entry);
        }
        entries
    }

    /// OffsetForLeaderEpoch by the definition, over the expected entries.
    fn end_offset_for(&self, epoch: i32) -> (i32, i64) {
        let entries = self.epoch_entries();
        let Some(&(latest, _)) = entries.last() else {
            return (-1, -1);
        };
        if epoch == -1 || epoch > latest {
            return (-1, -1);
        }
        if epoch == latest {
            return (epoch, self.log_end_offset);
        }
        let next_start = entries.iter().find(|(e, _)| *e > epoch).unwrap().1;
        let floor = entries.iter().rev().find(|(e, _)| *e <= epoch);
        (floor.map_or(epoch, |f| f.0), next_start)
    }

    fn producer_state(&self) -> ProducerState {
        let mut state = ProducerState::default();
        for (_, _, _, bytes) in &self.batches {
            state.update(&BatchHeader::parse(bytes).unwrap());
        }
        state
    }

    fn latest_epoch(&self) -> Option<i32> {
        self.epoch_entries().last().map(|e| e.0)
    }
}

/// The producer fields a well-behaved producer `id` sends next, given the state so far.
fn next_producer_fields(state: &ProducerState, id: i64, new_epoch: bool) -> (i64, i16, i32) {
    match state.get(id) {
        Some(entry) if new_epoch => (id, entry.epoch + 1, 0),
        Some(entry) => (
            id,
            entry.epoch,
            entry.batches.back().map_or(0, |b| b.last_sequence + 1),
        ),
        None => (id, 0, 0),
    }
}

fn check(log: &Log, reference: &Reference, step: usize) {
    assert_eq!(
        log.log_end_offset(),
        reference.log_end_offset,
        "LEO after step {step}"
    );
    assert_eq!(
        log.log_start_offset(),
        reference.log_start_offset,
        "log start after step {step}"
    );
    assert_eq!(
        log.high_watermark(),
        reference.high_watermark,
        "HW after step {step}"
    );
    assert!(log.recovery_point() <= log.log_end_offset());
    let batches = read_all(log);
    let expected: Vec<&Entry> = reference
        .batches
        .iter()
        .filter(|(_, last, _, _)| *last >= reference.log_start_offset)
        .collect();
    assert_eq!(
        batches.len(),
        expected.len(),
        "batch count after step {step}"
    );
    for ((header, bytes), (base, last, epoch, stored)) in batches.iter().zip(expected) {
        assert_eq!(
            (
                header.base_offset,
                header.last_offset(),
                header.partition_leader_epoch
            ),
            (*base, *last, *epoch),
            "after step {step}"
        );
        assert_eq!(bytes, stored, "bytes of batch {base} after step {step}");
    }
    let entries = reference.epoch_entries();
    assert_eq!(
        log.leader_epoch_entries(),
        &entries[..],
        "epoch cache after step {step}"
    );
    let max_epoch = entries.last().map_or(0, |e| e.0);
    for epoch in -1..=max_epoch + 1 {
        assert_eq!(
            log.end_offset_for_epoch(epoch),
            reference.end_offset_for(epoch),
            "end offset for epoch {epoch} after step {step}"
        );
    }
    assert_eq!(
        log.producer_state(),
        &reference.producer_state(),
        "producer state after step {step}"
    );
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let config = small_config();
    let mut log = Log::open(&path, config.clone(), 0, 0, true, 0).unwrap();
    let mut reference = Reference::default();
    let mut now = 1_000;
    for (step, op) in ops.into_iter().enumerate() {
        now += 1;
        let fill = step as u8;
        match op {
            Op::LeaderAppend {
                records,
                size,
                new_epoch,
                producer,
            } => {
                if new_epoch {
                    reference.epoch += 1;
                }
                let state = reference.producer_state();
                let producer = producer.map(|id| next_producer_fields(&state, id, false));
                let bytes = stored_batch(0, 0, records, size, fill, now, producer);
                let info = log
                    .append(bytes.clone().into(), reference.epoch, now)
                    .unwrap();
                assert!(!info.duplicate);
                assert_eq!(info.first_offset, reference.log_end_offset);
                let mut stored = bytes;
                assign_offset(&mut stored, info.first_offset, reference.epoch);
                reference.push(stored);
            }
            Op::FollowerAppend {
                batches,
                partial_tail,
            } => {
                let mut blob = Vec::new();
                let mut next = reference.log_end_offset;
                let mut stored = Vec::new();
                let mut state = reference.producer_state();
                for (i, b) in batches.iter().enumerate() {
                    reference.epoch += b.epoch_bump;
                    let base = next + b.gap;
                    let producer = b
                        .producer
                        .map(|(id, new_epoch)| next_producer_fields(&state, id, new_epoch));
                    let bytes = stored_batch(
                        base,
                        reference.epoch,
                        b.records,
                        b.size,
                        fill.wrapping_add(i as u8),
                        now,
                        producer,
                    );
                    state.update(&BatchHeader::parse(&bytes).unwrap());
                    next = base + b.records as i64;
                    blob.extend_from_slice(&bytes);
                    stored.push(bytes);
                }
                if let Some(cut) = partial_tail {
                    let extra = stored_batch(next, reference.epoch, 3, 40, 0xaa, now, None);
                    blob.extend_from_slice(&extra[..cut.min(extra.len() - 1)]);
                }
                let end = log.append_as_follower(&blob, now).unwrap();
                for bytes in stored {
                    reference.push(bytes);
                }
                assert_eq!(end, reference.log_end_offset);
            }
            Op::BadFollowerAppend { kind } => {
                let leo = reference.log_end_offset;
                let epoch = reference.latest_epoch().unwrap_or(0);
                let good = stored_batch(leo, epoch, 2, 20, fill, now, None);
                let blob = match kind {
                    0 => {
                        let mut bad = good.clone();
                        let last = bad.len() - 1;
                        bad[last] ^= 0x40;
                        [good.clone(), bad].concat()
                    }
                    1 => stored_batch(leo - 2, epoch, 2, 20, fill, now, None),
                    2 => [good.clone(), good.clone()].concat(),
                    3 if epoch > 0 => stored_batch(leo, epoch - 1, 2, 20, fill, now, None),
                    3 => stored_batch(leo, -1, 2, 20, fill, now, None),
                    4 => {
                        let mut bad = good.clone();
                        bad[8..12].copy_from_slice(&10i32.to_be_bytes());
                        bad
                    }
                    _ => {
                        let mut bad = good.clone();
                        bad[16] = 1;
                        bad
                    }
                };
                let error = log.append_as_follower(&blob, now).unwrap_err();
                let expected_kind = match kind {
                    0 | 4 | 5 => matches!(error, FollowerAppendError::Corrupt { .. }),
                    1 => {
                        // An empty log restarts at a batch holding its end; this one ends below.
                        matches!(error, FollowerAppendError::UnexpectedOffset { .. })
                    }
                    2 => matches!(error, FollowerAppendError::OffsetsOutOfOrder { .. }),
                    _ => matches!(error, FollowerAppendError::InvalidLeaderEpoch { .. }),
                };
                assert!(expected_kind, "kind {kind}: {error}");
            }
            Op::TruncateTo { at } => {
                let target = (at % (reference.log_end_offset as u64 + 3)) as i64;
                let removed = log.truncate_to(target).unwrap();
                if target >= reference.log_end_offset {
                    assert!(!removed);
                    reference.epoch_without_data = None;
                } else {
                    assert!(removed);
                    reference.batches.retain(|(_, last, _, _)| *last < target);
                    match reference.batches.last() {
                        None => {
                            // No batch stays: the log restarts at the target, epochs forgotten.
                            reference.recorded.clear();
                            reference.log_end_offset = target;
                            reference.log_start_offset = target;
                            reference.high_watermark = target;
                        }
                        Some(&(_, last, _, _)) => {
                            reference.log_end_offset = last + 1;
                            reference.log_start_offset = reference.log_start_offset.min(last + 1);
                            reference.high_watermark = reference.high_watermark.min(last + 1);
                        }
                    }
                    reference.truncated();
                }
            }
            Op::TruncateFully { at } => {
                let offset = (at % (reference.log_end_offset as u64 + 40)) as i64;
                log.truncate_fully_and_start_at(offset).unwrap();
                reference.batches.clear();
                reference.recorded.clear();
                reference.epoch_without_data = None;
                reference.log_end_offset = offset;
                reference.log_start_offset = offset;
                reference.high_watermark = offset;
            }
            Op::StartEpoch => {
                reference.epoch += 1;
                log.start_leader_epoch(reference.epoch).unwrap();
                reference.epoch_without_data = Some((reference.epoch, reference.log_end_offset));
            }
            Op::SetHighWatermark { at } => {
                let span = (reference.log_end_offset - reference.log_start_offset + 1) as u64;
                let offset = reference.log_start_offset + (at % span) as i64;
                log.set_high_watermark(offset);
                reference.high_watermark = offset;
            }
            Op::Flush => {
                log.flush().unwrap();
                assert_eq!(log.recovery_point(), log.log_end_offset());
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
                // An epoch recorded at the end without data does not survive a restart (the
                // cache is cut to the log), and the broker sets the high watermark.
                reference.epoch_without_data = None;
                reference.high_watermark = reference.log_end_offset;
            }
        }
        check(&log, &reference, step);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn replicated_log_matches_reference(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops);
    }
}
