//! The seeded simulation of the transaction coordinator (`strom_meta::txn`): transactional
//! producers (several per transactional id, so they fence each other), data partitions whose
//! leaders apply markers, and one coordinator over a durable `__transaction_state` log, behind
//! a network that delays and reorders answers, loses and duplicates marker results, fails
//! writes (cleanly, or after the record landed) and crashes the coordinator at any point,
//! including between PrepareCommit and the last marker; time jumps make transactions time
//! out and ids expire. After every event it checks: each transaction's markers are all
//! COMMIT or all ABORT on the partitions it wrote to, and agree with what EndTxn told its
//! producer; a producer never writes a transaction's data to a partition still holding an
//! earlier open transaction of its producer id (a hanging transaction); a fenced
//! (producer id, epoch) never gets a success; the coordinator's states move only along
//! Kafka's transitions. At the end, with faults stopped and time advanced, every transaction
//! is closed on every partition it wrote to and no transactional id is left in a Prepare state.
//!
//! A failure names its seed; `STROM_TXN_SEED=<n>` replays that seed with an event trace.
//! `STROM_TXN_SEEDS` (default 2000), `STROM_TXN_FIRST_SEED` (default 0) and
//! `STROM_TXN_BUDGET_S` (default 10) widen a run.

#[path = "txn_sim/mod.rs"]
mod sim;

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use sim::{run, Stats};

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

#[test]
fn transaction_coordinator_simulation() {
    if let Some(seed) = env_u64("STROM_TXN_SEED") {
        let stats = run(seed, true);
        eprintln!("seed {seed} passed: {stats:?}");
        return;
    }
    let first = env_u64("STROM_TXN_FIRST_SEED").unwrap_or(0);
    let count = env_u64("STROM_TXN_SEEDS").unwrap_or(2_000);
    let budget = Duration::from_secs(env_u64("STROM_TXN_BUDGET_S").unwrap_or(10));
    let started = Instant::now();
    let mut total = Stats::default();
    let mut seeds = 0;
    for seed in first..first + count {
        if started.elapsed() > budget {
            break;
        }
        match panic::catch_unwind(AssertUnwindSafe(|| run(seed, false))) {
            Ok(stats) => total.add(&stats),
            Err(_) => panic!(
                "transaction simulation failed at seed {seed}; replay with \
                 STROM_TXN_SEED={seed} cargo nextest run -p strom-meta --test txn_sim"
            ),
        }
        seeds += 1;
    }
    eprintln!(
        "{seeds} seeds (from {first}) in {:.1} s: {total:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(seeds >= 200, "only {seeds} seeds ran within the budget");
    assert!(total.commits > 0 && total.aborts > 0, "{total:?}");
    assert!(
        total.crashes > 0 && total.resumed_after_crash > 0,
        "{total:?}"
    );
    assert!(
        total.fenced_answers > 0 && total.coordinator_aborts > 0,
        "{total:?}"
    );
    assert!(
        total.lost_marker_results > 0 && total.duplicated_marker_results > 0,
        "{total:?}"
    );
}
