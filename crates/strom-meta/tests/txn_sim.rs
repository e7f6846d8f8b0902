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

use sim::{run, Stats};

#[test]
fn transaction_coordinator_simulation() {
    let mut total = Stats::default();
    let Some(ran) = (strom_testkit::seeds::Seeds {
        prefix: "STROM_TXN",
        replay: "cargo nextest run -p strom-meta --test txn_sim",
        count: 2_000,
        budget_s: 10,
    })
    .run(run, |stats| total.add(&stats)) else {
        return;
    };
    let seeds = ran.seeds;
    eprintln!("{total:?}");
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
