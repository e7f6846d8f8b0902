//! Strom's storage engine: Kafka-layout partition logs (`<topic>-<partition>/` directories of
//! `<base_offset>.log` segments with sparse `.index` and `.timeindex` files), their recovery after
//! a crash, retention, idempotent-producer state, and the per-log-dir checkpoint files.
//!
//! The crate does no networking and reads no clock: time comes in as `now_ms` arguments. The
//! broker drives it and does the group-commit fsync outside the log's mutex
//! ([`Log::sync_target`], [`Log::mark_flushed`]).

pub mod batch;
pub mod config;
pub mod error;

pub use batch::{BatchError, BatchHeader, BATCH_HEADER_LEN};
pub use config::LogConfig;
pub use error::{AppendError, LogError, ReadError};
pub mod checkpoint;
mod index;
pub mod log;
pub mod producer_state;
pub mod segment;
mod time_index;

pub use checkpoint::TopicPartition;
pub use log::{AppendInfo, FileSlice, Log, ReadInfo, RecoveryStats};
pub mod manager;

pub use manager::{LogManager, SharedLog};

#[cfg(test)]
mod tests;
