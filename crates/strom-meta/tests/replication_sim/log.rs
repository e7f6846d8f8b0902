//! A partition log model: records of (leader epoch, payload) at offsets `0..`, a durable
//! prefix (what survives a crash), Kafka's end-offset-for-epoch lookup and truncation.

/// One record: the leader epoch that appended it and a unique payload.
pub type Record = (i32, u64);

#[derive(Clone, Debug, Default)]
pub struct Log {
    pub records: Vec<Record>,
    /// Records below this are on disk.
    pub durable: usize,
}

impl Log {
    pub fn end_offset(&self) -> i64 {
        self.records.len() as i64
    }

    pub fn last_epoch(&self) -> Option<i32> {
        self.records.last().map(|r| r.0)
    }

    pub fn append(&mut self, record: Record) {
        if let Some(last) = self.last_epoch() {
            assert!(record.0 >= last, "epoch {} appended after {last}", record.0);
        }
        self.records.push(record);
    }

    pub fn sync(&mut self) {
        self.durable = self.records.len();
    }

    pub fn crash(&mut self) {
        self.records.truncate(self.durable);
    }

    pub fn truncate_to(&mut self, offset: i64) {
        let offset = offset.max(0) as usize;
        self.records.truncate(offset);
        self.durable = self.durable.min(offset);
    }

    /// Kafka's leader-epoch cache lookup: the largest epoch `<= epoch` in the log and the
    /// offset where the next larger epoch starts (or the log end); `(-1, -1)` if none.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let Some(found) = self
            .records
            .iter()
            .map(|r| r.0)
            .filter(|&e| e <= epoch)
            .max()
        else {
            return (-1, -1);
        };
        let end = self
            .records
            .iter()
            .position(|r| r.0 > found)
            .map_or(self.end_offset(), |p| p as i64);
        (found, end)
    }

    /// Where a follower truncates given the leader's answer to its OffsetForLeaderEpoch, and
    /// whether truncation is complete (Kafka's `AbstractFetcherThread`, KIP-279): if the
    /// follower has the epoch the leader answered with, to the earlier of both ends of it;
    /// if not, to its own end of the largest epoch below, and it asks again from there.
    pub fn truncation_point(&self, leader_answer: (i32, i64)) -> (i64, bool) {
        let (epoch, leader_end) = leader_answer;
        if epoch < 0 {
            return (0, true);
        }
        let (own_epoch, own_end) = self.end_offset_for_epoch(epoch);
        if own_epoch < 0 {
            return (0, true);
        }
        if own_epoch != epoch {
            return (own_end.min(self.end_offset()), false);
        }
        (leader_end.min(own_end).min(self.end_offset()), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(epochs: &[i32]) -> Log {
        let records = epochs
            .iter()
            .enumerate()
            .map(|(i, &e)| (e, i as u64))
            .collect();
        Log {
            records,
            durable: epochs.len(),
        }
    }

    #[test]
    fn end_offset_for_epoch_is_where_the_next_epoch_starts() {
        let l = log(&[0, 0, 2, 2, 2, 5]);
        assert_eq!(l.end_offset_for_epoch(0), (0, 2));
        assert_eq!(l.end_offset_for_epoch(1), (0, 2));
        assert_eq!(l.end_offset_for_epoch(2), (2, 5));
        assert_eq!(l.end_offset_for_epoch(4), (2, 5));
        assert_eq!(l.end_offset_for_epoch(9), (5, 6));
        assert_eq!(log(&[3]).end_offset_for_epoch(2), (-1, -1));
    }

    #[test]
    fn truncation_follows_kip_279() {
        // Same epoch on both sides: the earlier end.
        assert_eq!(log(&[0, 1, 1, 1]).truncation_point((1, 3)), (3, true));
        assert_eq!(log(&[0, 1]).truncation_point((1, 3)), (2, true));
        // The leader answers an epoch the follower lacks: truncate to the follower's end of
        // the epoch below and ask again.
        assert_eq!(log(&[0, 1, 1, 3, 3]).truncation_point((2, 2)), (3, false));
        // Nothing in common.
        assert_eq!(log(&[4, 4]).truncation_point((2, 7)), (0, true));
        assert_eq!(log(&[1]).truncation_point((-1, -1)), (0, true));
    }
}
