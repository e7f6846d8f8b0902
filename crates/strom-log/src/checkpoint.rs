//! Per-log-dir offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `replication-offset-checkpoint`), `meta.properties`, and the
//! atomic-write helpers everything on disk that is replaced rather than appended uses.
//!
//! Checkpoint format (Kafka's `CheckpointFile`, text): a version line `0`, a line with the
//! number of entries, then one `topic partition offset` line per partition. Files are replaced
//! atomically: written to `<name>.tmp`, fsynced, renamed over the old file, and the directory is
//! fsynced, so a crash leaves either the old or the new content.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

use crate::error::LogError;

/// A topic partition; its directory is named `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl FromStr for TopicPartition {
    type Err = LogError;

    /// Parses a directory name, splitting at the last '-' (topic names may contain '-').
    fn from_str(name: &str) -> Result<TopicPartition, LogError> {
        let invalid = || LogError::InvalidPartitionDir {
            name: name.to_string(),
        };
        let (topic, partition) = name.rsplit_once('-').ok_or_else(invalid)?;
        let partition: i32 = partition.parse().map_err(|_| invalid())?;
        if topic.is_empty() || partition < 0 {
            return Err(invalid());
        }
        Ok(TopicPartition::new(topic, partition))
    }
}

/// Fsyncs a directory so that file creations, renames and deletions in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

/// Replaces `path` with `content` atomically and durably (tmp file, fsync, rename, dir fsync).
pub fn write_atomically(path: &Path, content: &[u8]) -> Result<(), LogError> {
    let mut tmp_name = path.file_name().expect("file path").to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|e| LogError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LogError::io(path, e))?;
    fsync_dir(path.parent().expect("file in a directory"))
}

/// Writes an offset checkpoint file.
pub fn write_checkpoint(
    path: &Path,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<(), LogError> {
    write_atomically(path, checkpoint_text(offsets).as_bytes())
}

/// The contents [`write_checkpoint`] writes for `offsets`.
pub fn checkpoint_text(offsets: &BTreeMap<TopicPartition, i64>) -> String {
    use std::fmt::Write as _;
    let mut text = format!("0\n{}\n", offsets.len());
    for (tp, offset) in offsets {
        let _ = writeln!(text, "{} {} {}", tp.topic, tp.partition, offset);
    }
    text
}

/// Reads an offset checkpoint file; a missing file is an empty map.
pub fn read_checkpoint(path: &Path) -> Result<BTreeMap<TopicPartition, i64>, LogError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(LogError::io(path, e)),
    };
    let corrupt = |reason: String| LogError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = text.lines();
    match lines.next() {
        Some("0") => {}
        other => {
            return Err(corrupt(format!(
                "version line is {other:?}, expected \"0\""
            )))
        }
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt("missing or bad entry count line".into()))?;
    let mut offsets = BTreeMap::new();
    for (number, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let parsed = match fields[..] {
            [topic, partition, offset] => partition
                .parse::<i32>()
                .ok()
                .zip(offset.parse::<i64>().ok())
                .map(|(p, o)| (TopicPartition::new(topic, p), o)),
            _ => None,
        };
        let (tp, offset) = parsed.ok_or_else(|| {
            corrupt(format!(
                "line {}: {line:?} is not \"topic partition offset\"",
                number + 3
            ))
        })?;
        offsets.insert(tp, offset);
    }
    if offsets.len() != count {
        return Err(corrupt(format!(
            "header says {count} entries, found {}",
            offsets.len()
        )));
    }
    Ok(offsets)
}

/// Parses a Java-properties-style file of `key=value` lines (comments start with `#`).
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_partition_parse() {
        let tp: TopicPartition = "my-topic-12".parse().unwrap();
        assert_eq!(tp, TopicPartition::new("my-topic", 12));
        assert_eq!(tp.to_string(), "my-topic-12");
        assert!("nodash".parse::<TopicPartition>().is_err());
        assert!("t-x".parse::<TopicPartition>().is_err());
        assert!("-3".parse::<TopicPartition>().is_err());
    }

    #[test]
    fn checkpoint_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        assert!(read_checkpoint(&path).unwrap().is_empty());
        let mut offsets = BTreeMap::new();
        offsets.insert(TopicPartition::new("a-b", 0), 42);
        offsets.insert(TopicPartition::new("c", 3), 7);
        write_checkpoint(&path, &offsets).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "0\n2\na-b 0 42\nc 3 7\n"
        );
        assert_eq!(read_checkpoint(&path).unwrap(), offsets);
        std::fs::write(&path, "0\n2\na 0 1\n").unwrap();
        assert!(matches!(
            read_checkpoint(&path),
            Err(LogError::Corrupt { .. })
        ));
        std::fs::write(&path, "1\n0\n").unwrap();
        assert!(read_checkpoint(&path).is_err());
    }

    #[test]
    fn properties() {
        let p = parse_properties("#c\nversion=1\nbroker.id = 3\ncluster.id=abc\n");
        assert_eq!(p["broker.id"], "3");
        assert_eq!(p["cluster.id"], "abc");
    }
}
