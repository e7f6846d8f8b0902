//! A latency histogram in microseconds with HDR-style log-linear buckets.
//!
//! Values below 256 µs get a bucket each, so they are exact. Above that every power of two is
//! split into 128 equal buckets, so a bucket is never wider than 1/128 of its lower bound and a
//! percentile read back from the midpoint of its bucket is within 0.4 % of the true sample.
//! The minimum, maximum and sum are kept exactly. Memory is fixed (7,424 counters, about
//! 58 KiB) whatever the number of samples, and recording a value is a few integer operations.

/// log2 of the number of values recorded exactly (and of twice the buckets per power of two).
const SUB_BUCKET_BITS: u32 = 8;
/// Buckets per power of two above the exact range.
const HALF: u64 = 1 << (SUB_BUCKET_BITS - 1);
/// Enough buckets for every `u64`: `index(u64::MAX)` is `BUCKETS - 1`.
const BUCKETS: usize = ((66 - SUB_BUCKET_BITS as u64) * HALF) as usize;

/// Counts of latencies in microseconds, with exact min, max and sum.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// The bucket a value falls into.
fn index(value: u64) -> usize {
    if value < 2 * HALF {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let shift = exponent + 1 - SUB_BUCKET_BITS;
    let mantissa = value >> shift;
    (u64::from(shift) * HALF + mantissa) as usize
}

/// The lowest and highest value (inclusive) that fall into bucket `index`.
fn bounds(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < 2 * HALF {
        return (index, index);
    }
    let shift = index / HALF - 1;
    let mantissa = index % HALF + HALF;
    let low = mantissa << shift;
    (low, low + ((1u64 << shift) - 1))
}

/// The 1-based rank of the `percentile` (0..=100) among `count` sorted samples: the smallest
/// rank with at least that share of samples at or below it (the "nearest rank" method).
pub fn rank(percentile: f64, count: u64) -> u64 {
    // The small epsilon keeps e.g. 99.9 % of 1000 at rank 999 despite binary rounding.
    let exact = percentile.clamp(0.0, 100.0) / 100.0 * count as f64;
    ((exact - 1e-9).ceil() as u64).clamp(1, count.max(1))
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one latency in microseconds.
    pub fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.sum += u128::from(micros);
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The smallest value recorded (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// The largest value recorded (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The arithmetic mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at `percentile` (0..=100) by the nearest-rank method, read as the midpoint of
    /// its bucket and kept within the exact min and max; the lowest and highest ranks return
    /// the exact min and max. 0 when empty.
    pub fn percentile(&self, percentile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = rank(percentile, self.total);
        if rank == 1 {
            return self.min;
        }
        if rank == self.total {
            return self.max;
        }
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bounds(bucket);
                return (low + (high - low) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Adds every value of `other` to this histogram.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (SplitMix64) so the test data is fixed.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    const PERCENTILES: [f64; 10] = [0.0, 1.0, 10.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0];

    fn check_against_sorted(values: &mut [u64]) {
        let mut histogram = Histogram::new();
        for &value in values.iter() {
            histogram.record(value);
        }
        values.sort_unstable();
        let n = values.len() as u64;
        assert_eq!(histogram.count(), n);
        assert_eq!(histogram.min(), values[0]);
        assert_eq!(histogram.max(), *values.last().unwrap());
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        assert!((histogram.mean() - mean).abs() <= mean * 1e-12 + 1e-9);
        for percentile in PERCENTILES {
            let reference = values[(rank(percentile, n) - 1) as usize];
            let estimate = histogram.percentile(percentile);
            let (low, high) = bounds(index(reference));
            assert!(
                (low..=high).contains(&estimate),
                "p{percentile}: {estimate} outside the bucket {low}..={high} of {reference}"
            );
            let error = estimate.abs_diff(reference) as f64;
            assert!(
                error <= reference as f64 / 128.0,
                "p{percentile}: {estimate} vs {reference}"
            );
        }
    }

    #[test]
    fn percentiles_match_a_sorted_reference_on_random_data() {
        let mut random = SplitMix(0x5EED_0004);
        // Log-uniform over 1 µs .. ~17 min, like latencies spread over many scales.
        let mut values: Vec<u64> = (0..200_000)
            .map(|_| {
                let exponent = random.next() % 30;
                let base = 1u64 << exponent;
                base + random.next() % base
            })
            .collect();
        check_against_sorted(&mut values);
        // Narrow and mostly exact: 0..1000 µs.
        let mut values: Vec<u64> = (0..50_001).map(|_| random.next() % 1000).collect();
        check_against_sorted(&mut values);
        // A few samples, where the extreme ranks matter most.
        for n in 1..40 {
            let mut values: Vec<u64> = (0..n).map(|_| random.next() % 1_000_000).collect();
            check_against_sorted(&mut values);
        }
    }

    #[test]
    fn buckets_cover_every_value_without_gaps() {
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(bounds(BUCKETS - 1).1, u64::MAX);
        let mut expected_low = 0;
        for bucket in 0..BUCKETS {
            let (low, high) = bounds(bucket);
            assert_eq!(low, expected_low, "bucket {bucket}");
            assert!(high >= low);
            assert_eq!(index(low), bucket);
            assert_eq!(index(high), bucket);
            // Never wider than 1/128 of the lower bound above the exact range.
            assert!(high - low <= low / HALF);
            expected_low = high.wrapping_add(1);
        }
        assert_eq!(expected_low, 0, "the last bucket ends at u64::MAX");
    }

    #[test]
    fn small_values_are_exact_and_empty_is_zero() {
        let empty = Histogram::new();
        assert_eq!(empty.percentile(99.0), 0);
        assert_eq!(empty.min(), 0);
        assert_eq!(empty.mean(), 0.0);
        let mut histogram = Histogram::new();
        for value in 1..=100 {
            histogram.record(value);
        }
        assert_eq!(histogram.percentile(50.0), 50);
        assert_eq!(histogram.percentile(99.0), 99);
        assert_eq!(histogram.percentile(99.9), 100);
        assert_eq!(histogram.percentile(0.0), 1);
    }

    #[test]
    fn rank_is_the_nearest_rank() {
        assert_eq!(rank(50.0, 10), 5);
        assert_eq!(rank(99.9, 1000), 999);
        assert_eq!(rank(99.9, 1001), 1000);
        assert_eq!(rank(0.0, 10), 1);
        assert_eq!(rank(100.0, 10), 10);
        assert_eq!(rank(50.0, 0), 1);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut random = SplitMix(7);
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for i in 0..10_000 {
            let value = random.next() % 5_000_000;
            if i % 3 == 0 { &mut a } else { &mut b }.record(value);
            all.record(value);
        }
        a.merge(&b);
        for percentile in PERCENTILES {
            assert_eq!(a.percentile(percentile), all.percentile(percentile));
        }
        assert_eq!(
            (a.min(), a.max(), a.count()),
            (all.min(), all.max(), all.count())
        );
    }
}
