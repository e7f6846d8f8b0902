//! The seeded replication simulation (see `replication_sim/mod.rs`): thousands of seeds
//! within a time budget. A failure names its seed; `STROM_REPL_SEED=<n>` replays that one
//! seed with an event trace on stderr. `STROM_REPL_SEEDS` (how many, default 2000),
//! `STROM_REPL_FIRST_SEED` (default 0) and `STROM_REPL_BUDGET_S` (default 15) widen a run;
//! `scripts/replication-soak` uses them.

#[path = "replication_sim/mod.rs"]
mod sim;

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

#[test]
fn replication_simulation() {
    if let Some(seed) = env_u64("STROM_REPL_SEED") {
        let stats = sim::run(seed, true);
        eprintln!("seed {seed} passed: {stats:?}");
        return;
    }
    let first = env_u64("STROM_REPL_FIRST_SEED").unwrap_or(0);
    let count = env_u64("STROM_REPL_SEEDS").unwrap_or(2_000);
    let budget = Duration::from_secs(env_u64("STROM_REPL_BUDGET_S").unwrap_or(15));
    let started = Instant::now();
    let mut total = sim::checks::Stats::default();
    let mut seeds = 0;
    for seed in first..first + count {
        if started.elapsed() > budget {
            break;
        }
        match panic::catch_unwind(AssertUnwindSafe(|| sim::run(seed, false))) {
            Ok(stats) => total.add(&stats),
            Err(_) => panic!(
                "replication simulation failed at seed {seed}; replay with \
                 STROM_REPL_SEED={seed} cargo nextest run -p strom-meta --test replication_sim"
            ),
        }
        seeds += 1;
    }
    eprintln!(
        "{seeds} seeds (from {first}) in {:.1} s: {total:?}",
        started.elapsed().as_secs_f64()
    );
    // The runs must have exercised what the invariants are about.
    assert!(seeds >= 200, "only {seeds} seeds ran within the budget");
    assert!(
        total.acknowledged > 0 && total.leader_changes > 0,
        "{total:?}"
    );
    assert!(total.fenced > 0, "no leader was ever fenced: {total:?}");
    assert!(
        total.truncations > 0,
        "no follower ever truncated: {total:?}"
    );
    assert!(total.refused_not_enough_replicas > 0, "{total:?}");
    assert!(
        total.isr_conflicts > 0 && total.controller_elections > seeds,
        "{total:?}"
    );
}
