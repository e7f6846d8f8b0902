//! Replication throttles (Kafka's `ReplicationQuotaManager`): one windowed byte rate for what
//! this broker serves to throttled followers (`leader.replication.throttled.rate`) and one for
//! what its fetchers copy for throttled replicas (`follower.replication.throttled.rate`).
//!
//! Which replicas are throttled is a topic's `leader.replication.throttled.replicas` /
//! `follower.replication.throttled.replicas` ("partition:broker,…" or "*"), read from the
//! metadata cache by the callers ([`is_throttled`]). Kafka's semantics:
//! - the leader answers a fetch from a follower *outside the ISR* with no records for a
//!   throttled partition while its rate is over the bound, and counts the bytes it returns
//!   for throttled partitions;
//! - a follower leaves its throttled partitions out of a fetch while its rate is over the
//!   bound, and counts the bytes it gets for them;
//! - unthrottled partitions are never held back, and an unbounded rate (the default,
//!   `Long.MAX`) costs nothing.
//!
//! The rate is Kafka's `Rate` over `replication.quota.window.num` windows of
//! `replication.quota.window.size.seconds`: the bytes in the live windows divided by the time
//! they span, counted as at least `num - 1` windows so a fresh quota does not read a first
//! fetch as an infinite rate. [`RateQuota`] is pure (time is an argument); [`ReplicationQuotas`]
//! wraps the two behind locks for the fetch paths.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use strom_meta::replication::BrokerId;

/// The topic key naming the replicas a leader throttles.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// The topic key naming the replicas a follower throttles.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";

/// Which side of replication a quota bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// What a leader serves to followers.
    Leader,
    /// What a follower fetches.
    Follower,
}

impl Side {
    /// The topic key listing this side's throttled replicas.
    pub fn replicas_key(self) -> &'static str {
        match self {
            Side::Leader => LEADER_THROTTLED_REPLICAS,
            Side::Follower => FOLLOWER_THROTTLED_REPLICAS,
        }
    }
}

/// A byte rate over sliding windows with an optional upper bound.
#[derive(Clone, Debug)]
pub struct RateQuota {
    /// Bytes per second; `None` = unbounded.
    bound: Option<f64>,
    window_ms: u64,
    windows: usize,
    /// (window start, bytes) oldest first.
    samples: VecDeque<(u64, u64)>,
}

impl RateQuota {
    /// A quota of `bound` bytes a second (`i64::MAX` or more: unbounded) over `windows`
    /// windows of `window_ms`.
    pub fn new(bound: i64, windows: usize, window_ms: u64) -> RateQuota {
        RateQuota {
            bound: (bound < i64::MAX).then_some(bound.max(0) as f64),
            window_ms: window_ms.max(1),
            windows: windows.max(1),
            samples: VecDeque::new(),
        }
    }

    /// True if a bound is set.
    pub fn is_bounded(&self) -> bool {
        self.bound.is_some()
    }

    /// Changes the bound and the windows, keeping what was recorded.
    pub fn reconfigure(&mut self, bound: i64, windows: usize, window_ms: u64) {
        self.bound = (bound < i64::MAX).then_some(bound.max(0) as f64);
        self.windows = windows.max(1);
        self.window_ms = window_ms.max(1);
    }

    fn purge(&mut self, now_ms: u64) {
        let span = self.window_ms * self.windows as u64;
        while self
            .samples
            .front()
            .is_some_and(|(start, _)| start + span <= now_ms)
        {
            self.samples.pop_front();
        }
    }

    /// Counts `bytes` at `now_ms`.
    pub fn record(&mut self, bytes: u64, now_ms: u64) {
        self.purge(now_ms);
        match self.samples.back_mut() {
            Some((start, total)) if now_ms < *start + self.window_ms => *total += bytes,
            _ => self.samples.push_back((now_ms, bytes)),
        }
    }

    /// The measured rate in bytes a second at `now_ms`.
    pub fn rate(&mut self, now_ms: u64) -> f64 {
        self.purge(now_ms);
        let total: u64 = self.samples.iter().map(|(_, bytes)| bytes).sum();
        let oldest = self.samples.front().map_or(now_ms, |(start, _)| *start);
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full = elapsed / self.window_ms;
        let min_full = self.windows as u64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * self.window_ms;
        }
        total as f64 * 1000.0 / elapsed.max(1) as f64
    }

    /// True if bounded and the rate is over the bound.
    pub fn is_exceeded(&mut self, now_ms: u64) -> bool {
        match self.bound {
            None => false,
            Some(bound) => self.rate(now_ms) > bound,
        }
    }
}

/// The broker's two replication quotas.
pub struct ReplicationQuotas {
    leader: Mutex<RateQuota>,
    follower: Mutex<RateQuota>,
}

impl Default for ReplicationQuotas {
    /// Both unbounded, Kafka's default windows (11 of 1 s).
    fn default() -> ReplicationQuotas {
        ReplicationQuotas {
            leader: Mutex::new(RateQuota::new(i64::MAX, 11, 1000)),
            follower: Mutex::new(RateQuota::new(i64::MAX, 11, 1000)),
        }
    }
}

impl ReplicationQuotas {
    fn quota(&self, side: Side) -> &Mutex<RateQuota> {
        match side {
            Side::Leader => &self.leader,
            Side::Follower => &self.follower,
        }
    }

    /// Installs the rates and windows of a (new) broker configuration.
    pub fn configure(&self, config: &strom_meta::config::BrokerConfig) {
        let c = &config.cluster;
        let windows = c.replication_quota_window_num.max(1) as usize;
        let window_ms = c.replication_quota_window_size_seconds.max(1) as u64 * 1000;
        for (side, rate) in [
            (Side::Leader, c.leader_replication_throttled_rate),
            (Side::Follower, c.follower_replication_throttled_rate),
        ] {
            self.quota(side)
                .lock()
                .unwrap()
                .reconfigure(rate, windows, window_ms);
        }
    }

    /// True if `side` has a bound (only then are throttled replicas looked up at all).
    pub fn is_bounded(&self, side: Side) -> bool {
        self.quota(side).lock().unwrap().is_bounded()
    }

    /// True if `side` is bounded and over its bound at `now_ms`.
    pub fn is_exceeded(&self, side: Side, now_ms: u64) -> bool {
        self.quota(side).lock().unwrap().is_exceeded(now_ms)
    }

    /// Counts `bytes` of throttled replicas on `side`.
    pub fn record(&self, side: Side, bytes: u64, now_ms: u64) {
        if bytes > 0 {
            self.quota(side).lock().unwrap().record(bytes, now_ms);
        }
    }

    /// The measured rate of `side` (for logs and tests).
    pub fn rate(&self, side: Side, now_ms: u64) -> f64 {
        self.quota(side).lock().unwrap().rate(now_ms)
    }
}

/// True if a topic's overrides throttle replica (`partition`, `broker`) on `side`: its
/// throttled-replicas list is `*` or names `partition:broker`. Malformed items are ignored.
pub fn is_throttled(
    configs: &BTreeMap<String, String>,
    side: Side,
    partition: i32,
    broker: BrokerId,
) -> bool {
    let Some(list) = configs.get(side.replicas_key()) else {
        return false;
    };
    list.split(',').map(str::trim).any(|item| {
        item == "*"
            || item.split_once(':').is_some_and(|(p, b)| {
                p.trim().parse::<i32>() == Ok(partition) && b.trim().parse::<i32>() == Ok(broker)
            })
    })
}

/// The leader throttle of a follower's fetch of `partition` on this broker (`local`):
/// `None` if the partition is not throttled (or the leader rate is unbounded), else whether
/// the answer may be held back while over the bound (Kafka: only for a follower outside the
/// ISR; an in-sync follower's bytes still count).
pub fn leader_throttle(
    quotas: &ReplicationQuotas,
    metadata: &crate::services::metadata_cache::MetadataCache,
    partition: &super::partition::Partition,
    follower: BrokerId,
    local: BrokerId,
) -> Option<bool> {
    if !quotas.is_bounded(Side::Leader) {
        return None;
    }
    let tp = &partition.topic_partition;
    let named = metadata
        .cluster()
        .topics
        .get(&tp.topic)
        .is_some_and(|t| is_throttled(&t.configs, Side::Leader, tp.partition, local));
    named.then(|| !partition.isr().is_some_and(|isr| isr.contains(&follower)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_is_never_exceeded() {
        let mut quota = RateQuota::new(i64::MAX, 11, 1000);
        quota.record(u64::MAX / 4, 0);
        assert!(!quota.is_bounded());
        assert!(!quota.is_exceeded(1));
    }

    #[test]
    fn a_fresh_quota_counts_at_least_num_minus_one_windows() {
        let mut quota = RateQuota::new(1000, 11, 1000);
        // 9,000 bytes at once over a 10 s floor: 900 B/s, under the bound.
        quota.record(9_000, 0);
        assert!(!quota.is_exceeded(0));
        quota.record(2_000, 100);
        assert!(quota.is_exceeded(100), "11,000 B / 10 s is over 1,000 B/s");
    }

    #[test]
    fn old_windows_expire_and_the_rate_falls_back() {
        let mut quota = RateQuota::new(1000, 3, 1000);
        quota.record(10_000, 0);
        assert!(quota.is_exceeded(500));
        assert!(quota.is_exceeded(2_999));
        // Three windows after the sample, it is gone.
        assert!(!quota.is_exceeded(3_000));
        assert_eq!(quota.rate(3_000), 0.0);
    }

    /// A sender that sends a chunk whenever the quota allows it moves, over a long run, about
    /// the bound: the throttle holds within 10 %.
    #[test]
    fn a_greedy_sender_is_held_to_the_bound() {
        for (bound, chunk) in [
            (1_000_000i64, 64 * 1024u64),
            (200_000, 8 * 1024),
            (5_000_000, 1 << 20),
        ] {
            let mut quota = RateQuota::new(bound, 11, 1000);
            let mut sent = 0u64;
            let end = 120_000u64;
            let mut now = 0u64;
            while now < end {
                if !quota.is_exceeded(now) {
                    quota.record(chunk, now);
                    sent += chunk;
                }
                now += 10;
            }
            let rate = sent as f64 * 1000.0 / end as f64;
            let ratio = rate / bound as f64;
            assert!(
                (0.9..=1.1).contains(&ratio),
                "bound {bound} chunk {chunk}: {rate} B/s"
            );
        }
    }

    #[test]
    fn reconfigure_keeps_samples_and_can_lift_the_bound() {
        let mut quota = RateQuota::new(100, 2, 1000);
        quota.record(1_000, 0);
        assert!(quota.is_exceeded(10));
        quota.reconfigure(i64::MAX, 2, 1000);
        assert!(!quota.is_exceeded(10));
        quota.reconfigure(100, 2, 1000);
        assert!(quota.is_exceeded(10), "the recorded bytes were kept");
    }

    #[test]
    fn throttled_replica_lists() {
        let configs = |v: &str| -> BTreeMap<String, String> {
            [(LEADER_THROTTLED_REPLICAS.to_string(), v.to_string())].into()
        };
        let list = configs("0:1, 1:2,bad,3:x");
        assert!(is_throttled(&list, Side::Leader, 0, 1));
        assert!(is_throttled(&list, Side::Leader, 1, 2));
        assert!(!is_throttled(&list, Side::Leader, 0, 2));
        assert!(
            !is_throttled(&list, Side::Follower, 0, 1),
            "the other side's key"
        );
        assert!(!is_throttled(&list, Side::Leader, 3, 0));
        assert!(is_throttled(&configs("*"), Side::Leader, 7, 9));
        assert!(!is_throttled(&BTreeMap::new(), Side::Leader, 0, 0));
    }
}
