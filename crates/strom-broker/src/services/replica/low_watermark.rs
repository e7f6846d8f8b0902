//! A leader's low watermark (Kafka's `lowWatermarkIfLeader`): the smallest log start offset
//! over its own log and the replicas of the partition on live brokers, as each follower last
//! reported it in its fetch request (`log_start_offset`, Fetch v5+). DeleteRecords answers only
//! once the low watermark reaches the requested offset (`handlers::records`), so when it
//! returns every live replica has dropped the records; followers raise their log start to the
//! leader's as they fetch (`fetcher`).
//!
//! What a follower reported is kept with the leader epoch it was reported in: a new leadership
//! starts with nothing known (a replica removed and added again starts from an empty log, and
//! an old report would overstate it). A replica that has not reported yet counts as -1, as
//! Kafka's unknown offset does. It does not raise any log start itself.

use std::collections::HashMap;
use std::sync::Mutex;

use strom_meta::replication::BrokerId;

use super::partition::Partition;

/// Each follower's log start offset as it last reported it, with the leader epoch.
#[derive(Default)]
pub struct FollowerLogStarts(Mutex<HashMap<BrokerId, (i32, i64)>>);

/// The low watermark of a leader whose own log starts at `local_log_start`, over `followers`:
/// (replica, on a live broker, log start it reported in this leadership if any). A replica
/// on a dead broker does not hold it back; one that has not reported holds it at -1.
pub fn low_watermark(
    local_log_start: i64,
    followers: impl IntoIterator<Item = (BrokerId, bool, Option<i64>)>,
) -> i64 {
    followers
        .into_iter()
        .filter(|(_, live, _)| *live)
        .map(|(_, _, start)| start.unwrap_or(-1))
        .fold(local_log_start, i64::min)
}

impl Partition {
    /// A follower's fetch reported its log start offset (`-1`: not reported, ignored). Wakes the
    /// partition's waiters when it moved, so a DeleteRecords waiting on it answers.
    pub fn record_follower_log_start(&self, replica: BrokerId, log_start_offset: i64) {
        if log_start_offset < 0 {
            return;
        }
        let epoch = self.leader_epoch();
        let moved = {
            let mut starts = self.follower_log_starts.0.lock().unwrap();
            let before = starts.insert(replica, (epoch, log_start_offset));
            before != Some((epoch, log_start_offset))
        };
        if moved {
            self.wake();
        }
    }

    /// The low watermark over this leader's log and `replicas` (the assigned replicas; this
    /// broker, `local`, among them is skipped), `is_live` telling which brokers are alive.
    pub fn low_watermark(
        &self,
        local: BrokerId,
        replicas: &[BrokerId],
        is_live: impl Fn(BrokerId) -> bool,
    ) -> i64 {
        let local_start = self.log().lock().unwrap().log_start_offset();
        let epoch = self.leader_epoch();
        let starts = self.follower_log_starts.0.lock().unwrap();
        let followers = replicas.iter().filter(|&&r| r != local).map(|&r| {
            let reported = starts
                .get(&r)
                .filter(|(e, _)| *e == epoch)
                .map(|(_, start)| *start);
            (r, is_live(r), reported)
        });
        low_watermark(local_start, followers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_over_live_replicas() {
        assert_eq!(low_watermark(10, []), 10, "a leader alone");
        assert_eq!(
            low_watermark(10, [(2, true, Some(7)), (3, true, Some(12))]),
            7
        );
        assert_eq!(
            low_watermark(10, [(2, false, Some(0)), (3, true, Some(12))]),
            10,
            "a dead broker's replica does not hold it back"
        );
        assert_eq!(
            low_watermark(10, [(2, true, None)]),
            -1,
            "a live replica that has not reported holds it at Kafka's unknown offset"
        );
    }
}
