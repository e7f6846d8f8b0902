//! Tests of the log and the manager through their public API, with a small batch encoder.

mod compaction;
mod convergence;
mod idempotence;
mod lazy_index;
mod legacy;
mod log_ops;
mod manager;
mod model;
mod read_committed;
mod recovery;
mod replica_model;
mod replication;
mod transactions;
mod truncation;
mod validation;
mod verification;

use bytes::Bytes;

use crate::batch::test_builder::TestBatch;
use crate::batch::{BatchHeader, BATCH_HEADER_LEN};
use crate::{Log, LogConfig};

/// A configuration that rolls and indexes often and never deletes on its own.
pub(crate) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    }
}

/// A batch of `records` records of `size` bytes each, filled with `fill`, timestamps from `ts`.
pub(crate) fn batch(records: usize, size: usize, fill: u8, ts: i64) -> Bytes {
    Bytes::from(TestBatch::new(ts, vec![vec![fill; size]; records]).encode())
}

/// An idempotent batch.
pub(crate) fn idempotent_batch(pid: i64, epoch: i16, seq: i32, records: usize) -> Bytes {
    Bytes::from(
        TestBatch::new(0, vec![vec![seq as u8; 10]; records])
            .producer(pid, epoch, seq)
            .encode(),
    )
}

/// A batch as a leader stored it: `records` records of `size` bytes filled with `fill`, at
/// `base_offset` with leader epoch `epoch`, timestamps from `ts`, optionally idempotent
/// (`(producer id, producer epoch, base sequence)`).
pub(crate) fn stored_batch(
    base_offset: i64,
    epoch: i32,
    records: usize,
    size: usize,
    fill: u8,
    ts: i64,
    producer: Option<(i64, i16, i32)>,
) -> Vec<u8> {
    let mut batch = TestBatch::new(ts, vec![vec![fill; size]; records]);
    if let Some((id, producer_epoch, sequence)) = producer {
        batch = batch.producer(id, producer_epoch, sequence);
    }
    let mut bytes = batch.encode();
    crate::batch::assign_offset(&mut bytes, base_offset, epoch);
    bytes
}

/// Splits fetched bytes into whole batches (dropping a partial trailing one, as clients do).
pub(crate) fn parse_batches(mut bytes: &[u8]) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= BATCH_HEADER_LEN {
        let header = BatchHeader::parse(bytes).unwrap();
        let len = header.total_len();
        if len > bytes.len() {
            break;
        }
        crate::batch::validate_stored_batch(&bytes[..len], 0).expect("stored batch is valid");
        out.push((header, bytes[..len].to_vec()));
        bytes = &bytes[len..];
    }
    out
}

/// Reads the whole log (up to its end, ignoring the high watermark) with a consumer-like loop.
pub(crate) fn read_all(log: &Log) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let info = log
            .read(offset, 1 << 20, log.log_end_offset(), true)
            .unwrap();
        let slice = info.slice.expect("data below the end");
        let batches = parse_batches(&slice.read_to_bytes().unwrap());
        assert!(!batches.is_empty(), "min_one_message gives a whole batch");
        offset = batches.last().unwrap().0.last_offset() + 1;
        out.extend(batches);
    }
    out
}
