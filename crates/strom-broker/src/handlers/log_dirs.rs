//! `DescribeLogDirs` (API 35, KIP-113; v4 adds KIP-827's volume sizes): for each log dir of
//! this broker, its absolute path, an error code, the volume's total and usable bytes, and per
//! topic-partition replica stored there the size of its log, its offset lag and whether it is
//! a future replica. What `kafka-log-dirs.sh --describe` and the reassignment tool's progress
//! (`strom partition reassign`, bytes copied / to copy) read, from every broker in turn.
//!
//! As Kafka's `ReplicaManager.describeLogDirs` (3.x): a null topic list means every replica
//! this broker holds; a requested topic or partition it does not hold is simply left out (no
//! error), and a topic with no requested partition in a dir is not listed for it. The size is
//! the sum of the log's segment files (`.log` bytes, not the indexes), the same on every
//! replica of a caught-up partition since followers store the leader's batches verbatim. The
//! offset lag is Kafka's `max(high watermark - log end offset, 0)` for a current replica,
//! which is 0; Strom has no future replicas (AlterReplicaLogDirs is not implemented), so
//! `is_future_key` is always false. A dir whose volume cannot be read answers
//! `KAFKA_STORAGE_ERROR` with no topics and unknown (-1) sizes, as Kafka answers for an
//! offline dir. A partition whose log failed to open at startup is not listed (Kafka takes its
//! whole dir offline; Strom keeps serving the dir's other partitions).
//!
//! Not here: authorization (Strom has no authorizer, so CLUSTER DESCRIBE is always granted
//! and the top-level error code, v3+, is always NONE).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use crate::handlers::{str_bytes, topic_name};
use crate::services::Services;

/// One replica's log as DescribeLogDirs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLog {
    /// Index of its log dir in the broker's `log.dirs`.
    pub dir_index: usize,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Bytes of its segment files.
    pub size_bytes: i64,
    /// Kafka's offset lag of a current replica: `max(high watermark - log end offset, 0)`.
    pub offset_lag: i64,
}

/// A volume's total and usable bytes (Java's `FileStore.getTotalSpace`/`getUsableSpace`).
pub type VolumeBytes = (i64, i64);

/// Handles `DescribeLogDirs`.
pub fn describe_log_dirs(
    services: &Services,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let logs = &services.replicas.logs;
    let replicas: Vec<ReplicaLog> = logs
        .all_by_dir()
        .into_iter()
        .map(|(dir_index, tp, log)| {
            let log = log.lock().expect("a log mutex was poisoned by a panic");
            ReplicaLog {
                dir_index,
                topic: tp.topic.clone(),
                partition: tp.partition,
                size_bytes: i64::try_from(log.size_bytes()).unwrap_or(i64::MAX),
                offset_lag: (log.high_watermark() - log.log_end_offset()).max(0),
            }
        })
        .collect();
    let mut response = DescribeLogDirsResponse::default();
    response.results = describe(logs.log_dirs(), &replicas, &request, &volume_bytes);
    response
}

/// The per-dir results for `replicas` over `dirs` (in configuration order), filtered by the
/// request's topics; `space` reads a dir's volume sizes. Pure apart from `space`.
pub fn describe(
    dirs: &[PathBuf],
    replicas: &[ReplicaLog],
    request: &DescribeLogDirsRequest,
    space: &dyn Fn(&Path) -> std::io::Result<VolumeBytes>,
) -> Vec<DescribeLogDirsResult> {
    let wanted: Option<HashSet<(&str, i32)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.0.as_str(), p)))
            .collect()
    });
    dirs.iter()
        .enumerate()
        .map(|(index, dir)| {
            let path = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            let mut result = DescribeLogDirsResult::default();
            result.log_dir = str_bytes(path.display().to_string());
            match space(dir) {
                Ok((total, usable)) => {
                    result.total_bytes = total;
                    result.usable_bytes = usable;
                }
                Err(error) => {
                    tracing::warn!(dir = %path.display(), %error,
                        "DescribeLogDirs: cannot read the log dir's volume");
                    result.error_code = ResponseError::KafkaStorageError.code();
                    return result;
                }
            }
            let mut topics: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
            for replica in replicas.iter().filter(|r| r.dir_index == index) {
                let key = (replica.topic.as_str(), replica.partition);
                if wanted.as_ref().is_some_and(|w| !w.contains(&key)) {
                    continue;
                }
                let mut partition = DescribeLogDirsPartition::default();
                partition.partition_index = replica.partition;
                partition.partition_size = replica.size_bytes;
                partition.offset_lag = replica.offset_lag;
                partition.is_future_key = false;
                topics.entry(key.0).or_default().push(partition);
            }
            result.topics = topics
                .into_iter()
                .map(|(name, mut partitions)| {
                    partitions.sort_by_key(|p| p.partition_index);
                    let mut topic = DescribeLogDirsTopic::default();
                    topic.name = topic_name(name);
                    topic.partitions = partitions;
                    topic
                })
                .collect();
            result
        })
        .collect()
}

/// The total and usable bytes of the volume holding `dir`, from `statvfs(3)`; a size too large
/// for an `i64` is reported as `i64::MAX`, as Kafka does with Java's negative overflow.
pub fn volume_bytes(dir: &Path) -> std::io::Result<VolumeBytes> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `stat` is a plain C struct for which all-zero bytes are a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `stat` is a valid,
    // writable `statvfs` that the call fills in.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let bytes = |blocks: libc::fsblkcnt_t| {
        let total = u128::from(blocks) * u128::from(stat.f_frsize);
        i64::try_from(total).unwrap_or(i64::MAX)
    };
    Ok((bytes(stat.f_blocks), bytes(stat.f_bavail)))
}

#[cfg(test)]
#[path = "tests/log_dirs.rs"]
mod tests;
