//! The leader-epoch cache and its `leader-epoch-checkpoint` file.
//!
//! Each entry says "leader epoch E started at offset O". Replication uses it to answer
//! `OffsetForLeaderEpoch` and decide where a follower truncates after a leader change; on a
//! single node it records that epoch 0 began at the first offset written.
//!
//! File format (Kafka's): a version line `0`, a count line, then one `epoch start_offset` line
//! per entry, oldest first. It is rewritten atomically (temporary file, fsync, rename) whenever
//! an entry is added or dropped, which happens only when the leader epoch changes or recovery
//! truncates the log, never per append.

use std::path::{Path, PathBuf};

use crate::checkpoint::write_atomically;
use crate::error::LogError;

/// The checkpoint file name inside a partition directory.
pub const FILE_NAME: &str = "leader-epoch-checkpoint";

/// The epochs of a partition and the offsets they began at.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    /// Invariant: epochs and start offsets both strictly increase.
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    /// Loads the file in `dir`. A missing file is an empty cache; a damaged one is logged and
    /// treated as empty (it is rebuilt from the next append), as the data itself is intact.
    pub fn load(dir: &Path) -> LeaderEpochCache {
        let path = dir.join(FILE_NAME);
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text).unwrap_or_else(|reason| {
                tracing::warn!(path = %path.display(), %reason, "ignoring a damaged leader-epoch checkpoint");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        LeaderEpochCache { path, entries }
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Records that `epoch` begins at `start_offset` if it is newer than the latest entry.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if epoch < 0 || self.entries.last().is_some_and(|(e, _)| *e >= epoch) {
            return Ok(());
        }
        self.entries.push((epoch, start_offset));
        self.write()
    }

    /// Drops entries that start at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), LogError> {
        let before = self.entries.len();
        self.entries.retain(|(_, start)| *start < end_offset);
        if self.entries.len() != before {
            self.write()?;
        }
        Ok(())
    }

    fn write(&self) -> Result<(), LogError> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (epoch, start) in &self.entries {
            text.push_str(&format!("{epoch} {start}\n"));
        }
        write_atomically(&self.path, text.as_bytes())
    }
}

fn parse(text: &str) -> Result<Vec<(i32, i64)>, String> {
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return Err("unknown version".into());
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("missing count")?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let line = lines.next().ok_or("fewer entries than the count")?;
        let mut parts = line.split_whitespace();
        let epoch = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or("bad epoch")?;
        let start = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or("bad offset")?;
        if entries
            .last()
            .is_some_and(|(e, s)| *e >= epoch || *s > start)
        {
            return Err("entries out of order".into());
        }
        entries.push((epoch, start));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_truncate_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path());
        assert!(cache.entries().is_empty());
        cache.assign(0, 0).unwrap();
        cache.assign(0, 10).unwrap();
        cache.assign(2, 25).unwrap();
        assert_eq!(cache.entries(), &[(0, 0), (2, 25)]);
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n2 25\n");
        cache.truncate_from_end(25).unwrap();
        let reloaded = LeaderEpochCache::load(dir.path());
        assert_eq!(reloaded.entries(), &[(0, 0)]);
    }

    #[test]
    fn damaged_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        for junk in ["", "7\n", "0\n3\n0 0\n", "0\n2\n5 10\n1 20\n", "0\nx\n"] {
            std::fs::write(dir.path().join(FILE_NAME), junk).unwrap();
            assert!(
                LeaderEpochCache::load(dir.path()).entries().is_empty(),
                "{junk:?}"
            );
        }
    }
}
