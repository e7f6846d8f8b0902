//! A follower's storage driven by arbitrary input: `Log::append_as_follower` on fetched bytes
//! (raw, or with each batch's length, magic, offsets, epoch and CRC fixed so mutations reach
//! the offset, epoch and producer-state code), interleaved with `truncate_to`,
//! `truncate_fully_and_start_at`, leader appends and clean or unclean reopens. Nothing may
//! panic; a refused append changes nothing; an accepted one stores the complete batches byte
//! for byte and returns the new log end offset; and after every operation the leader-epoch
//! cache gives every stored batch its own epoch and the producer state and the
//! aborted-transaction index are what a replay of the stored batches gives.
//!
//! Input: a sequence of operations, each an opcode byte, a length byte and that many payload
//! bytes (an append's payload may be longer: its length byte counts 16-byte units).
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use strom_log::batch::{validate_stored_batch, BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};
use strom_log::control::parse_marker;
use strom_log::producer_state::ProducerState;
use strom_log::{FollowerAppendError, Log, LogConfig};

const MAX_OPERATIONS: usize = 24;

/// A config that rolls and indexes often, so short inputs cross segments.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 64,
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    }
}

/// A directory of this process, emptied for every input (tmpfs when there is one: the log
/// fsyncs, and the fuzzer needs thousands of runs a second).
fn scratch() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("strom-fuzz-follower-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("t-0")
}

/// A producer's one-record batch (what a client sends a leader).
fn produced_batch(value: u8, producer_id: i64, sequence: i32) -> Vec<u8> {
    // Record: length, attributes, timestamp delta, offset delta, key -1, value, no headers
    // (zig-zag varints: 0 -> 0, -1 -> 1, 1 -> 2, 0 headers -> 0).
    let record = [0u8, 0, 0, 1, 2, value, 0];
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes());
    let length = (BATCH_HEADER_LEN - LOG_OVERHEAD + 1 + record.len()) as i32;
    batch.extend_from_slice(&length.to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes());
    batch.push(2);
    batch.extend_from_slice(&[0; 4]);
    batch.extend_from_slice(&0i16.to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes());
    batch.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    batch.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    batch.extend_from_slice(&producer_id.to_be_bytes());
    batch.extend_from_slice(&(if producer_id < 0 { -1i16 } else { 0 }).to_be_bytes());
    batch.extend_from_slice(&sequence.to_be_bytes());
    batch.extend_from_slice(&1i32.to_be_bytes());
    batch.push((record.len() as u8) << 1);
    batch.extend_from_slice(&record);
    seal(&mut batch);
    batch
}

fn seal(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Rewrites every batch of `blob` into one a leader could have written after this log:
/// lengths cut to what is there, magic 2, base offsets following on (with the gap the old
/// base offset's low byte asks for), epochs not going back, a correct CRC.
fn fix(blob: &mut [u8], log: &Log) {
    let mut next = log.log_end_offset();
    let mut epoch = log.latest_leader_epoch().unwrap_or(0);
    let mut position = 0;
    while blob.len() - position >= BATCH_HEADER_LEN {
        let batch = &mut blob[position..];
        let declared = i32::from_be_bytes(batch[8..12].try_into().unwrap());
        let available = (batch.len() - LOG_OVERHEAD) as i32;
        let length = declared.clamp((BATCH_HEADER_LEN - LOG_OVERHEAD) as i32, available);
        let total = length as usize + LOG_OVERHEAD;
        let gap = i64::from(batch[7] % 4);
        let delta = i32::from_be_bytes(batch[23..27].try_into().unwrap()).clamp(0, 1000);
        epoch = epoch.saturating_add(i32::from(batch[15] % 2));
        let base = next.saturating_add(gap);
        batch[0..8].copy_from_slice(&base.to_be_bytes());
        batch[8..12].copy_from_slice(&length.to_be_bytes());
        batch[12..16].copy_from_slice(&epoch.to_be_bytes());
        batch[16] = 2;
        batch[23..27].copy_from_slice(&delta.to_be_bytes());
        seal(&mut batch[..total]);
        // Near i64::MAX the offsets saturate, and the follower must refuse the batch.
        next = base.saturating_add(i64::from(delta) + 1);
        position += total;
    }
}

/// Every stored batch, as a consumer would read them from the log start.
fn stored(log: &Log) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let info = log
            .read(offset, 1 << 20, log.log_end_offset(), true)
            .expect("reads below the end work");
        let Some(slice) = info.slice else { break };
        let bytes = slice.read_to_bytes().expect("the slice is readable");
        let mut rest = &bytes[..];
        let before = out.len();
        while rest.len() >= BATCH_HEADER_LEN {
            let header = validate_stored_batch(rest, 0).expect("stored batches are valid");
            out.push((header, rest[..header.total_len()].to_vec()));
            rest = &rest[header.total_len()..];
            offset = header.last_offset() + 1;
        }
        assert!(out.len() > before, "a read below the end returns a batch");
    }
    out
}

fn check(log: &Log) -> Vec<(BatchHeader, Vec<u8>)> {
    let batches = stored(log);
    let entries = log.leader_epoch_entries();
    assert!(entries
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
    for (header, _) in &batches {
        let floor = entries
            .iter()
            .rev()
            .find(|(_, start)| *start <= header.base_offset);
        if header.last_offset() >= log.log_start_offset() {
            assert_eq!(floor.map(|e| e.0), Some(header.partition_leader_epoch));
        }
    }
    assert!(log.high_watermark() <= log.log_end_offset());
    assert!(log.log_start_offset() <= log.high_watermark());
    let mut state = ProducerState::default();
    let mut aborted = Vec::new();
    for (header, bytes) in &batches {
        state.update(header);
        if let Some(marker) = parse_marker(header, bytes) {
            if let Some(done) = state.complete_txn(&marker, header.base_offset) {
                if done.aborted {
                    aborted.push((done.producer_id, done.first_offset, done.last_offset));
                }
            }
        }
    }
    assert_eq!(log.producer_state(), &state);
    let indexed: Vec<_> = log
        .aborted_txn_entries()
        .iter()
        .map(|e| (e.producer_id, e.first_offset, e.last_offset))
        .collect();
    assert_eq!(indexed, aborted);
    batches
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    let mut log = Log::open(&path, config(), 0, 0, true, 0).expect("a fresh log opens");
    // A leader's history for truncation to cut into.
    for (i, epoch) in [0, 0, 1].into_iter().enumerate() {
        let batch = produced_batch(i as u8, 5, i as i32);
        log.append(batch.into(), epoch, 1).expect("a leader append");
    }
    let mut rest = data;
    let mut now = 10;
    for _ in 0..MAX_OPERATIONS {
        let [op, len, tail @ ..] = rest else { break };
        now += 1;
        let units = if op % 8 < 2 { 16 } else { 1 };
        let take = (usize::from(*len) * units).min(tail.len());
        let (payload, next) = tail.split_at(take);
        rest = next;
        let number = |bytes: &[u8]| -> u64 {
            let mut eight = [0u8; 8];
            let n = bytes.len().min(8);
            eight[..n].copy_from_slice(&bytes[..n]);
            u64::from_le_bytes(eight)
        };
        match op % 8 {
            0 | 1 => {
                let mut blob = payload.to_vec();
                if op % 8 == 1 {
                    fix(&mut blob, &log);
                }
                let before = check(&log);
                let end_before = log.log_end_offset();
                match log.append_as_follower(&blob, now) {
                    Ok(end) => {
                        assert_eq!(end, log.log_end_offset());
                        let after = check(&log);
                        // The blob's complete batches are the new end of the log, verbatim.
                        let mut expected = Vec::new();
                        let mut position = 0;
                        while let Ok(header) = validate_stored_batch(&blob[position..], 0) {
                            expected.push(blob[position..position + header.total_len()].to_vec());
                            position += header.total_len();
                        }
                        assert!(after.len() >= expected.len());
                        assert_eq!(end > end_before, !expected.is_empty());
                        let appended = &after[after.len() - expected.len()..];
                        for ((_, got), want) in appended.iter().zip(&expected) {
                            assert_eq!(got, want);
                        }
                    }
                    Err(FollowerAppendError::Io(e)) => panic!("I/O error: {e}"),
                    Err(e) => {
                        drop(e.to_string());
                        assert_eq!(log.log_end_offset(), end_before);
                        let after = check(&log);
                        assert_eq!(after.len(), before.len());
                        assert!(after.iter().zip(&before).all(|(a, b)| a.1 == b.1));
                    }
                }
            }
            2 => {
                let end = log.log_end_offset() as u64;
                let target = (number(payload) % (end + 3)).min(i64::MAX as u64) as i64;
                log.truncate_to(target).expect("truncation works");
                assert!(log.log_end_offset() <= target.max(end as i64));
                check(&log);
            }
            3 => {
                let end = log.log_end_offset() as u64;
                let offset = (number(payload) % (end + 64)).min(i64::MAX as u64) as i64;
                log.truncate_fully_and_start_at(offset)
                    .expect("restart works");
                assert_eq!(log.log_end_offset(), offset);
                assert!(stored(&log).is_empty());
            }
            4 => {
                let epoch = log
                    .latest_leader_epoch()
                    .unwrap_or(0)
                    .saturating_add(i32::from(len % 2));
                let sequence = number(payload) as i32 & 0xff;
                let _ = log.append(produced_batch(*len, 5, sequence).into(), epoch, now);
                check(&log);
            }
            5 => {
                let start = log.log_start_offset();
                let recovery_point = log.recovery_point();
                let clean = len % 2 == 0;
                let before = check(&log);
                if clean {
                    log.close().expect("close works");
                } else {
                    drop(log);
                }
                log = Log::open(&path, config(), recovery_point, start, clean, now)
                    .expect("reopen works");
                let after = check(&log);
                assert!(after.iter().zip(&before).all(|(a, b)| a.1 == b.1));
                assert_eq!(after.len(), before.len());
            }
            _ => {
                let epoch = number(payload) as i32;
                let (found, end) = log.end_offset_for_epoch(epoch);
                assert!(found <= epoch.max(-1));
                assert!(end <= log.log_end_offset());
                let point = log.truncation_point(found, end);
                assert!(point.offset <= log.log_end_offset());
            }
        }
    }
});
