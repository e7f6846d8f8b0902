//! The leader-epoch cache and its `leader-epoch-checkpoint` file.
//!
//! Each entry says "leader epoch E started at offset O": the first batch the log holds with
//! `partitionLeaderEpoch` E has base offset O (or, for the newest entry, a leader recorded E at
//! its log end offset before appending anything). Replication uses it to answer
//! `OffsetForLeaderEpoch` ([`LeaderEpochCache::end_offset_for`]) and so decide where a follower
//! truncates after a leader change; on a single node it records that epoch 0 began at the first
//! offset written.
//!
//! File format (Kafka's `LeaderEpochCheckpointFile`): a version line `0`, a count line, then one
//! `epoch start_offset` line per entry, oldest first, e.g. `0\n2\n0 0\n3 150\n`. It is rewritten
//! atomically (temporary file, fsync, rename, directory fsync) whenever an entry is added, moved
//! or dropped, which happens only when the leader epoch changes, the log is truncated or its
//! start moves past an entry, never per append.
//!
//! The cache does not read the log: [`crate::log::Log`] keeps it consistent with the batches
//! (assigning an epoch before the batch that starts it is written, cutting it after the log is
//! truncated, and cutting it to the log again on open).

use std::path::{Path, PathBuf};

use crate::checkpoint::write_atomically;
use crate::error::LogError;

/// The checkpoint file name inside a partition directory.
pub const FILE_NAME: &str = "leader-epoch-checkpoint";
/// Kafka's `UNDEFINED_EPOCH`: no leader epoch.
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's `UNDEFINED_EPOCH_OFFSET`: no end offset.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// The epochs of a partition and the offsets they began at.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    /// Invariant: epochs are >= 0, and epochs and start offsets both strictly increase.
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

    /// The newest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|&(epoch, _)| epoch)
    }

    /// Records that `epoch` begins at `start_offset`, as Kafka's `LeaderEpochFileCache.assign`:
    /// nothing changes if `epoch` is already the newest entry and began no later; otherwise
    /// every entry with an epoch at or above `epoch` or a start at or above `start_offset` is
    /// dropped (they describe a history this log no longer has) and the entry is added. The
    /// log refuses epochs below the newest before it gets here, so in practice only a newer
    /// epoch replaces an entry left at the log end without data. A negative epoch (no epoch)
    /// is ignored.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if epoch < 0 || start_offset < 0 {
            return Ok(());
        }
        if let Some(&(latest, start)) = self.entries.last() {
            if latest == epoch && start <= start_offset {
                return Ok(());
            }
        }
        while self
            .entries
            .last()
            .is_some_and(|&(e, s)| e >= epoch || s >= start_offset)
        {
            let (e, s) = self.entries.pop().expect("checked");
            tracing::warn!(path = %self.path.display(), dropped_epoch = e, dropped_start = s,
                epoch, start_offset, "leader epoch entry replaced by an older or earlier one");
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

    /// The log now starts at `start_offset`: entries that start at or before it are replaced by
    /// the newest of them, moved to `start_offset` (Kafka's `truncateFromStart`), so the first
    /// entry never points below the log.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), LogError> {
        let below = self.entries.partition_point(|&(_, s)| s <= start_offset);
        if below == 0 || (below == 1 && self.entries[0].1 == start_offset) {
            return Ok(());
        }
        let epoch = self.entries[below - 1].0;
        self.entries.drain(..below);
        self.entries.insert(0, (epoch, start_offset));
        self.write()
    }

    /// Drops every entry (the log was emptied and restarted).
    pub fn clear(&mut self) -> Result<(), LogError> {
        self.entries.clear();
        self.write()
    }

    /// Kafka's `LeaderEpochFileCache.endOffsetFor`, the answer to `OffsetForLeaderEpoch`:
    /// `(epoch, end offset)` where `epoch` is the largest known epoch at or below
    /// `requested_epoch` and the end offset is the start offset of the next known epoch, or
    /// `log_end_offset` if `requested_epoch` is the newest epoch. If every known epoch is above
    /// `requested_epoch`, the answer is `requested_epoch` and the start of the first known epoch
    /// (the data of older epochs is gone). Undefined (`(-1, -1)`) if `requested_epoch` is
    /// undefined, the cache is empty, or `requested_epoch` is above the newest epoch.
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested_epoch == UNDEFINED_EPOCH {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested_epoch) {
            return (requested_epoch, log_end_offset);
        }
        let higher = self.entries.partition_point(|&(e, _)| e <= requested_epoch);
        let Some(&(_, next_start)) = self.entries.get(higher) else {
            return UNDEFINED;
        };
        match higher.checked_sub(1).map(|i| self.entries[i]) {
            Some((floor_epoch, _)) => (floor_epoch, next_start),
            None => (requested_epoch, next_start),
        }
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
        if epoch < 0
            || start < 0
            || entries
                .last()
                .is_some_and(|(e, s)| *e >= epoch || *s >= start)
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
    fn assign_replaces_entries_it_contradicts() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path());
        cache.assign(1, 0).unwrap();
        cache.assign(3, 10).unwrap();
        // A new leader recorded epoch 4 at its end, then epoch 5 starts at the same offset.
        cache.assign(4, 20).unwrap();
        cache.assign(5, 20).unwrap();
        assert_eq!(cache.entries(), &[(1, 0), (3, 10), (5, 20)]);
        // The same epoch again, later: nothing changes.
        cache.assign(5, 30).unwrap();
        assert_eq!(cache.entries(), &[(1, 0), (3, 10), (5, 20)]);
        // An older epoch drops the entries it contradicts (Kafka's non-monotonic truncation).
        cache.assign(2, 15).unwrap();
        assert_eq!(cache.entries(), &[(1, 0), (2, 15)]);
        cache.assign(-1, 40).unwrap();
        assert_eq!(
            LeaderEpochCache::load(dir.path()).entries(),
            &[(1, 0), (2, 15)]
        );
    }

    #[test]
    fn truncate_from_start_moves_the_first_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path());
        for (epoch, start) in [(0, 0), (2, 10), (4, 20)] {
            cache.assign(epoch, start).unwrap();
        }
        cache.truncate_from_start(5).unwrap();
        assert_eq!(cache.entries(), &[(0, 5), (2, 10), (4, 20)]);
        cache.truncate_from_start(10).unwrap();
        assert_eq!(cache.entries(), &[(2, 10), (4, 20)]);
        cache.truncate_from_start(25).unwrap();
        assert_eq!(cache.entries(), &[(4, 25)]);
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text, "0\n1\n4 25\n");
        cache.clear().unwrap();
        assert!(LeaderEpochCache::load(dir.path()).entries().is_empty());
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path());
        assert_eq!(cache.end_offset_for(0, 50), (-1, -1), "empty cache");
        for (epoch, start) in [(2, 10), (4, 20), (7, 35)] {
            cache.assign(epoch, start).unwrap();
        }
        let leo = 50;
        assert_eq!(cache.end_offset_for(UNDEFINED_EPOCH, leo), (-1, -1));
        assert_eq!(cache.end_offset_for(1, leo), (1, 10), "below every epoch");
        assert_eq!(cache.end_offset_for(2, leo), (2, 20));
        assert_eq!(
            cache.end_offset_for(3, leo),
            (2, 20),
            "unknown epoch: the floor"
        );
        assert_eq!(cache.end_offset_for(4, leo), (4, 35));
        assert_eq!(cache.end_offset_for(6, leo), (4, 35));
        assert_eq!(
            cache.end_offset_for(7, leo),
            (7, 50),
            "the newest epoch ends at the LEO"
        );
        assert_eq!(
            cache.end_offset_for(8, leo),
            (-1, -1),
            "above the newest epoch"
        );
    }

    #[test]
    fn damaged_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        for junk in [
            "",
            "7\n",
            "0\n3\n0 0\n",
            "0\n2\n5 10\n1 20\n",
            "0\n2\n1 10\n2 10\n",
            "0\n1\n-1 0\n",
            "0\nx\n",
        ] {
            std::fs::write(dir.path().join(FILE_NAME), junk).unwrap();
            assert!(
                LeaderEpochCache::load(dir.path()).entries().is_empty(),
                "{junk:?}"
            );
        }
    }
}
