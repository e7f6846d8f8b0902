//! The pass strategy decision ([`Chooser`]): fixed cases, and a seeded simulation of passes
//! whose costs drift, checking it keeps to the faster strategy and never uses `syncfs` for a
//! narrow pass.

use std::time::Duration;

use rand_core::{Rng as _, SeedableRng as _};

use super::{
    Chooser, Strategy, MAX_PROBE_EVERY, PROBE_EVERY, SYNCFS_MARGIN, SYNC_PARALLELISM, TRIAL_PASSES,
    WIDE_PASS,
};

fn per_file(parallelism: usize) -> Strategy {
    Strategy::PerFile { parallelism }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn narrow_passes_sync_per_file_with_bounded_parallelism() {
    let mut chooser = Chooser::new(true);
    assert_eq!(chooser.plan(1), per_file(1), "one partition: one fdatasync");
    assert_eq!(chooser.plan(5), per_file(5));
    assert_eq!(chooser.plan(WIDE_PASS - 1), per_file(SYNC_PARALLELISM));
    // However fast syncfs measured, a narrow pass (the sticky shape) stays per file.
    chooser.record(per_file(8), 1000, 10000, ms(100));
    chooser.record(Strategy::Syncfs, 1000, 10000, ms(1));
    for width in 1..WIDE_PASS {
        assert_eq!(chooser.plan(width), per_file(width.min(SYNC_PARALLELISM)));
    }
    assert_eq!(chooser.plan(WIDE_PASS), Strategy::Syncfs);
}

/// Runs a try of `TRIAL_PASSES` wide passes of what the chooser plans, each costing `cost`
/// µs a record (10 records a partition); returns the strategy tried.
fn run_trial(chooser: &mut Chooser, cost: u64) -> Strategy {
    let strategy = chooser.plan(1000);
    for i in 0..TRIAL_PASSES {
        if i > 0 {
            assert_eq!(
                chooser.plan(1000),
                strategy,
                "a try runs its passes in a row"
            );
        }
        chooser.record(strategy, 1000, 10_000, Duration::from_micros(cost * 10_000));
    }
    strategy
}

#[test]
fn wide_passes_try_both_then_keep_the_faster() {
    let mut chooser = Chooser::new(true);
    assert_eq!(
        run_trial(&mut chooser, 5),
        per_file(8),
        "per file is tried first"
    );
    assert_eq!(run_trial(&mut chooser, 2), Strategy::Syncfs, "then syncfs");
    // Syncfs is faster: every PROBE_EVERY-th wide pass starts a try of per file.
    for _ in 1..PROBE_EVERY {
        let strategy = chooser.plan(1000);
        assert_eq!(strategy, Strategy::Syncfs);
        chooser.record(strategy, 1000, 10_000, ms(20));
    }
    assert_eq!(run_trial(&mut chooser, 5), per_file(8));
    assert_eq!(chooser.plan(1000), Strategy::Syncfs);
}

/// One pass that meets other writers' data does not decide a try: the median does.
#[test]
fn a_try_is_decided_by_its_median_pass() {
    let mut chooser = Chooser::new(true);
    run_trial(&mut chooser, 5);
    let strategy = chooser.plan(1000);
    assert_eq!(strategy, Strategy::Syncfs);
    for cost in [300, 2, 3, 2, 250] {
        assert_eq!(chooser.plan(1000), Strategy::Syncfs);
        chooser.record(strategy, 1000, 10_000, Duration::from_micros(cost * 10_000));
    }
    assert_eq!(
        chooser.syncfs_us,
        Some(3.0),
        "the median of 300, 2, 3, 2, 250"
    );
    assert_eq!(chooser.plan(1000), Strategy::Syncfs);
}

#[test]
fn the_measured_order_follows_the_costs_per_record() {
    let mut chooser = Chooser::new(true);
    chooser.record(per_file(8), 1000, 10_000, ms(50)); // 5 µs a record
    chooser.record(Strategy::Syncfs, 100, 1000, ms(10)); // 10 µs a record
    assert_eq!(
        chooser.plan(1000),
        per_file(8),
        "per file costs less per record"
    );
    // Narrow passes and passes with nothing to sync do not count.
    chooser.record(per_file(8), 10, 100, ms(100));
    chooser.record(Strategy::Syncfs, 10, 100, Duration::ZERO);
    chooser.record(per_file(8), 1000, 0, ms(500));
    assert_eq!(chooser.plan(1000), per_file(8));
    assert_eq!(chooser.per_file_us, Some(5.0));
    // The faster gets slower (measured on every pass, smoothed): the order flips.
    for _ in 0..4 {
        chooser.record(per_file(8), 1000, 10_000, ms(500));
    }
    assert_eq!(chooser.plan(1000), Strategy::Syncfs);
}

/// The moving average is weighted by records: a short pass that found little to sync (after
/// a `syncfs` that also wrote what was appended meanwhile) and took long for it does not
/// outweigh the passes that synced much.
#[test]
fn the_moving_cost_is_weighted_by_records() {
    let mut chooser = Chooser::new(true);
    chooser.record(per_file(8), 1000, 10_000, ms(50)); // 5 µs a record
    chooser.record(Strategy::Syncfs, 1000, 10_000, ms(20)); // 2 µs a record
    chooser.record(Strategy::Syncfs, 1000, 1000, ms(40)); // 40 µs a record, but 1,000 records
    assert_eq!(chooser.plan(1000), Strategy::Syncfs);
    let cost = chooser.syncfs_us.expect("measured");
    assert!((cost - 25_000.0 / 7_750.0).abs() < 1e-9, "{cost}");
}

/// `syncfs` is kept while it is at most `SYNCFS_MARGIN` times slower per record (it costs the
/// broker less CPU); beyond, per file.
#[test]
fn syncfs_is_kept_within_its_margin() {
    let mut chooser = Chooser::new(true);
    chooser.record(per_file(8), 1000, 10_000, ms(40)); // 4 µs a record
    chooser.record(Strategy::Syncfs, 1000, 10_000, ms(56)); // 5.6 µs: 1.4×
    assert_eq!(chooser.plan(1000), Strategy::Syncfs);
    chooser.record(Strategy::Syncfs, 1000, 10_000, ms(200)); // average 8.7 µs: 2.2×
    assert_eq!(chooser.plan(1000), per_file(8));
}

/// The cost compared is per record: a strategy that makes shorter passes (fewer partitions
/// each) is not penalised for the partitions it did not have to sync.
#[test]
fn the_cost_compared_is_per_record_not_per_partition() {
    let mut chooser = Chooser::new(true);
    chooser.record(per_file(8), 1000, 10_000, ms(50)); // 50 µs a partition, 5 µs a record
    chooser.record(Strategy::Syncfs, 100, 10_000, ms(10)); // 100 µs a partition, 1 µs a record
    assert_eq!(chooser.plan(1000), Strategy::Syncfs);
}

#[test]
fn a_losing_try_backs_off_and_a_winning_one_resets() {
    let mut chooser = Chooser::new(true);
    run_trial(&mut chooser, 5);
    run_trial(&mut chooser, 1);
    let mut interval = PROBE_EVERY;
    for _ in 0..6 {
        let mut waited = 0;
        loop {
            waited += 1;
            let strategy = chooser.plan(1000);
            if strategy != Strategy::Syncfs {
                // The try of per file loses again.
                chooser.record(strategy, 1000, 10_000, ms(50));
                for _ in 1..TRIAL_PASSES {
                    let strategy = chooser.plan(1000);
                    assert_eq!(strategy, per_file(8));
                    chooser.record(strategy, 1000, 10_000, ms(50));
                }
                break;
            }
            chooser.record(strategy, 1000, 10_000, ms(10));
            assert!(
                waited <= MAX_PROBE_EVERY,
                "a try within the longest interval"
            );
        }
        assert_eq!(waited, interval, "a try after {interval} wide passes");
        interval = (interval * 2).min(MAX_PROBE_EVERY);
    }
    assert_eq!(chooser.probe_every, MAX_PROBE_EVERY);
    // Syncfs becomes slow (measured on every pass): the order flips and the interval resets.
    chooser.record(Strategy::Syncfs, 1000, 10_000, ms(500));
    assert_eq!(chooser.plan(1000), per_file(8));
    assert_eq!(chooser.probe_every, PROBE_EVERY);
    // And back: one try of syncfs that is fast again is enough.
    for _ in 2..PROBE_EVERY {
        let strategy = chooser.plan(1000);
        assert_eq!(strategy, per_file(8));
        chooser.record(strategy, 1000, 10_000, ms(50));
    }
    assert_eq!(run_trial(&mut chooser, 1), Strategy::Syncfs, "the try");
    assert_eq!(chooser.plan(1000), Strategy::Syncfs);
    assert_eq!(chooser.probe_every, PROBE_EVERY);
}

#[test]
fn syncfs_is_never_chosen_when_unusable_or_after_it_failed() {
    let mut unusable = Chooser::new(false);
    unusable.record(per_file(8), 1000, 10000, ms(500));
    for _ in 0..100 {
        assert_eq!(unusable.plan(1000), per_file(8));
    }
    let mut chooser = Chooser::new(true);
    chooser.record(per_file(8), 1000, 10000, ms(500));
    chooser.record(Strategy::Syncfs, 1000, 10000, ms(1));
    assert_eq!(chooser.plan(1000), Strategy::Syncfs);
    chooser.syncfs_failed();
    for _ in 0..100 {
        assert_eq!(chooser.plan(1000), per_file(8));
    }
}

/// One simulated run: wide and narrow passes with per-partition costs that change at random
/// points (other writers come and go); the chooser must never use `syncfs` for a narrow pass
/// and, over the run, spend most wide passes on whichever strategy is cheaper at the time.
fn simulate(seed: u64, trace: bool) -> f64 {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut chooser = Chooser::new(true);
    let mut costs = [
        10.0 + (rng.next_u32() % 100) as f64,
        5.0 + (rng.next_u32() % 200) as f64,
    ];
    let (mut wide, mut right) = (0u32, 0u32);
    for pass in 0..12000 {
        if rng.next_u32() % 3000 == 0 {
            costs = [
                10.0 + (rng.next_u32() % 100) as f64,
                5.0 + (rng.next_u32() % 200) as f64,
            ];
            if trace {
                eprintln!("pass {pass}: costs per record now {costs:?} µs");
            }
        }
        let width = if rng.next_u32() % 4 == 0 {
            1 + (rng.next_u32() as usize % (WIDE_PASS - 1))
        } else {
            WIDE_PASS + rng.next_u32() as usize % 2000
        };
        let strategy = chooser.plan(width);
        if width < WIDE_PASS {
            assert_eq!(
                strategy,
                per_file(width.min(SYNC_PARALLELISM)),
                "narrow pass {pass}"
            );
        }
        let index = usize::from(strategy == Strategy::Syncfs);
        // ±20 % noise around the true cost.
        let noise = 0.8 + (rng.next_u32() % 400) as f64 / 1000.0;
        let records = width as i64 * (1 + i64::from(rng.next_u32() % 20));
        let elapsed = Duration::from_secs_f64(costs[index] * noise * records as f64 / 1e6);
        chooser.record(strategy, width, records, elapsed);
        if width >= WIDE_PASS {
            wide += 1;
            let threshold = costs[0] * SYNCFS_MARGIN;
            let preferred = usize::from(costs[1] <= threshold);
            // Within 25 % of the threshold: either is right.
            if index == preferred || (costs[1] - threshold).abs() < 0.25 * threshold {
                right += 1;
            }
        }
        if trace {
            eprintln!("pass {pass}: width {width} -> {strategy:?}");
        }
    }
    f64::from(right) / f64::from(wide)
}

#[test]
fn seeded_passes_keep_to_the_cheaper_strategy() {
    let seeds = strom_testkit::seeds::Seeds {
        prefix: "STROM_SYNC_PLAN",
        replay: "cargo nextest run -p strom-broker seeded_passes_keep_to_the_cheaper_strategy",
        count: 200,
        budget_s: 10,
    };
    seeds.run(
        |seed, trace| {
            let right = simulate(seed, trace);
            assert!(
                right >= 0.85,
                "seed {seed}: only {right:.2} of wide passes chose the cheaper strategy"
            );
        },
        |()| {},
    );
}

/// A broker on a temporary directory with a topic `t` of `partitions` partitions, each with one
/// record appended and not yet durable.
fn broker_with_dirty_partitions(
    dir: &std::path::Path,
    partitions: i32,
) -> (crate::broker::Broker, Vec<std::sync::Arc<super::Partition>>) {
    let sets = [format!("log.dirs={}", dir.display())];
    let config = strom_meta::config::BrokerConfig::load(None, &sets).expect("test config is valid");
    let broker = crate::broker::Broker::open(config, Vec::new()).expect("broker opens");
    let services = broker.services.clone();
    services
        .topics
        .create_topic("t", partitions, 1, Default::default(), false)
        .expect("created");
    let all: Vec<_> = (0..partitions)
        .map(|i| services.replicas.partition("t", i).expect("hosted"))
        .collect();
    (broker, all)
}

/// Appends one record to each partition; returns the end offsets.
fn append_all(partitions: &[std::sync::Arc<super::Partition>]) -> Vec<i64> {
    partitions
        .iter()
        .map(|p| {
            let batch = strom_log::records::encode_batch(&[(Some(&b"k"[..]), Some(&b"v"[..]))], 0);
            let info = p
                .append(bytes::Bytes::from(batch), crate::clock::now_ms())
                .expect("append");
            info.last_offset + 1
        })
        .collect()
}

fn high_watermarks(partitions: &[std::sync::Arc<super::Partition>]) -> Vec<i64> {
    partitions.iter().map(|p| p.offsets().0).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A wide pass done per file, then (the chooser measuring the other way) with `syncfs`: each
/// moves every partition's high watermark to the end it read, and only then.
#[test]
fn wide_passes_move_every_high_watermark_per_file_and_with_syncfs() {
    let dir = tempfile::tempdir().unwrap();
    let width = WIDE_PASS as i32 + 36;
    let (broker, partitions) = broker_with_dirty_partitions(dir.path(), width);
    let driver =
        super::SyncDriver::new(broker.services.metrics.clone(), &[dir.path().to_path_buf()]);
    runtime().block_on(async {
        // A try of per file, then one of syncfs, then whichever measured faster.
        let expected = std::iter::repeat_n(Some(per_file(SYNC_PARALLELISM)), TRIAL_PASSES)
            .chain(std::iter::repeat_n(Some(Strategy::Syncfs), TRIAL_PASSES))
            .chain([None]);
        for expected in expected {
            let ends = append_all(&partitions);
            assert!(
                high_watermarks(&partitions)
                    .iter()
                    .zip(&ends)
                    .all(|(hw, end)| hw < end),
                "nothing visible before the pass"
            );
            let plan = driver.chooser().clone().plan(partitions.len());
            assert!(
                expected.is_none_or(|e| e == plan),
                "{plan:?} instead of {expected:?}"
            );
            driver.pass(partitions.clone()).await;
            assert_eq!(
                high_watermarks(&partitions),
                ends,
                "{expected:?} covered every append"
            );
        }
    });
    let chooser = driver.chooser().clone();
    assert!(chooser.per_file_us.is_some() && chooser.syncfs_us.is_some());
}

/// A `syncfs` that fails (here: on a descriptor it cannot use) moves nothing by itself: the
/// pass is synced per file, each partition by its own `fdatasync`, and `syncfs` is not used
/// again.
#[test]
fn a_failed_syncfs_falls_back_to_per_file_and_is_not_used_again() {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let width = WIDE_PASS as i32;
    let (broker, partitions) = broker_with_dirty_partitions(dir.path(), width);
    // O_PATH: a descriptor that names the directory but that syncfs and fdatasync refuse.
    let path_only = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(dir.path())
        .expect("O_PATH open");
    let mut driver = super::SyncDriver::new(broker.services.metrics.clone(), &[]);
    driver.log_dir = Some(std::sync::Arc::new(path_only));
    *driver.chooser() = Chooser::new(true);
    driver.chooser().record(per_file(8), 1000, 10000, ms(1000));
    runtime().block_on(async {
        let ends = append_all(&partitions);
        assert_eq!(
            driver.chooser().clone().plan(partitions.len()),
            Strategy::Syncfs
        );
        driver.pass(partitions.clone()).await;
        assert_eq!(
            high_watermarks(&partitions),
            ends,
            "moved by the per-file syncs"
        );
        let ends = append_all(&partitions);
        assert_eq!(
            driver.chooser().plan(partitions.len()),
            per_file(SYNC_PARALLELISM)
        );
        driver.pass(partitions.clone()).await;
        assert_eq!(high_watermarks(&partitions), ends);
    });
}
