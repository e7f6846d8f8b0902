//! Rate limiting for the load generators: a token bucket on a monotonic clock.
//!
//! Tokens are counted in "record-nanoseconds": one record costs `1e9` units and the bucket
//! refills at `rate` units per nanosecond, so a rate of R records/s grants one record every
//! `1e9 / R` ns with integer arithmetic and no drift over long runs. The bucket holds at most
//! `burst` records: a sender that sleeps too long (timer slack, a full queue) catches up by at
//! most that many records at once instead of flooding the broker with everything it missed.

use std::time::Duration;

/// Units of one record.
const RECORD: u128 = 1_000_000_000;

/// Grants records at a fixed rate per second.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Records per second.
    rate: u128,
    /// Bucket capacity in units.
    capacity: u128,
    /// Tokens in the bucket at `last_ns`.
    tokens: u128,
    /// Clock reading (nanoseconds since the caller's origin) of the last refill.
    last_ns: u64,
}

impl Pacer {
    /// A pacer for `rate` records per second (at least 1) starting at `now_ns`, holding one
    /// record's token so the first record goes at once. The bucket holds 10 ms worth of records
    /// (at least one), enough to absorb sleep overshoot without long bursts.
    pub fn new(rate: u64, now_ns: u64) -> Pacer {
        let rate = u128::from(rate.max(1));
        let burst = (rate / 100).max(1);
        Pacer {
            rate,
            capacity: burst * RECORD,
            tokens: RECORD,
            last_ns: now_ns,
        }
    }

    /// Takes one record's token at `now_ns` (a monotonic reading, in the same units as the one
    /// given to [`Pacer::new`]). `None` means send now; `Some(wait)` means the next token is
    /// `wait` away: sleep and ask again.
    pub fn acquire(&mut self, now_ns: u64) -> Option<Duration> {
        if now_ns > self.last_ns {
            let refill = u128::from(now_ns - self.last_ns).saturating_mul(self.rate);
            self.tokens = self.tokens.saturating_add(refill).min(self.capacity);
            self.last_ns = now_ns;
        }
        if self.tokens >= RECORD {
            self.tokens -= RECORD;
            return None;
        }
        let missing = RECORD - self.tokens;
        let wait_ns = missing.div_ceil(self.rate);
        Some(Duration::from_nanos(
            wait_ns.min(u128::from(u64::MAX)) as u64
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a pacer like the send loop does, with a sleep that overshoots by `slack_ns`,
    /// and returns how many records were granted by `end_ns`.
    fn simulate(rate: u64, end_ns: u64, slack_ns: u64) -> u64 {
        let mut pacer = Pacer::new(rate, 0);
        let (mut now, mut granted) = (0u64, 0u64);
        while now < end_ns {
            match pacer.acquire(now) {
                None => granted += 1,
                Some(wait) => now += wait.as_nanos() as u64 + slack_ns,
            }
        }
        granted
    }

    #[test]
    fn grants_exactly_the_rate_over_time() {
        // Over one second from a standing start: the first record plus one per interval.
        assert_eq!(simulate(1000, 1_000_000_000, 0), 1000);
        assert_eq!(simulate(10_000, 10_000_000_000, 0), 100_000);
        assert_eq!(simulate(3, 1_000_000_000, 0), 3);
        assert_eq!(simulate(1, 5_000_000_000, 0), 5);
    }

    #[test]
    fn sleep_overshoot_is_absorbed_by_the_bucket() {
        // Sleeps that overshoot by 60 µs at 10 k records/s (100 µs apart) still hold the rate.
        let granted = simulate(10_000, 10_000_000_000, 60_000);
        assert!((99_990..=100_000).contains(&granted), "{granted}");
    }

    #[test]
    fn the_wait_is_the_time_to_the_next_token() {
        let mut pacer = Pacer::new(1000, 0);
        assert_eq!(pacer.acquire(0), None);
        assert_eq!(pacer.acquire(0), Some(Duration::from_millis(1)));
        assert_eq!(pacer.acquire(400_000), Some(Duration::from_micros(600)));
        assert_eq!(pacer.acquire(1_000_000), None);
        // Rates that do not divide a second round the wait up, never down.
        let mut pacer = Pacer::new(3, 0);
        assert_eq!(pacer.acquire(0), None);
        assert_eq!(pacer.acquire(0), Some(Duration::from_nanos(333_333_334)));
    }

    #[test]
    fn a_stall_releases_at_most_one_burst() {
        let mut pacer = Pacer::new(10_000, 0);
        assert_eq!(pacer.acquire(0), None);
        // Ten seconds idle would owe 100 000 records; the bucket holds 10 ms worth.
        let mut burst = 0;
        while pacer.acquire(10_000_000_000).is_none() {
            burst += 1;
        }
        assert_eq!(burst, 100);
    }

    #[test]
    fn extreme_rates_do_not_overflow() {
        let mut pacer = Pacer::new(u64::MAX, 0);
        assert_eq!(pacer.acquire(u64::MAX), None);
        let mut pacer = Pacer::new(0, 0);
        assert_eq!(pacer.acquire(0), None);
        assert_eq!(pacer.acquire(0), Some(Duration::from_secs(1)));
    }
}
