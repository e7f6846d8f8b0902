//! The seeded replication simulation (see `replication_sim/mod.rs`): thousands of seeds
//! within a time budget. A failure names its seed; `STROM_REPL_SEED=<n>` replays that one
//! seed with an event trace on stderr. `STROM_REPL_SEEDS` (how many, default 2000),
//! `STROM_REPL_FIRST_SEED` (default 0) and `STROM_REPL_BUDGET_S` (default 15) widen a run;
//! `scripts/replication-soak` uses them.

#[path = "replication_sim/mod.rs"]
mod sim;

#[test]
fn replication_simulation() {
    let mut total = sim::checks::Stats::default();
    let Some(ran) = (strom_testkit::seeds::Seeds {
        prefix: "STROM_REPL",
        replay: "cargo nextest run -p strom-meta --test replication_sim",
        count: 2_000,
        budget_s: 15,
    })
    .run(sim::run, |stats| total.add(&stats)) else {
        return;
    };
    let seeds = ran.seeds;
    eprintln!("{total:?}");
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
        total.preferred_elections > 0,
        "no preferred election started: {total:?}"
    );
    assert!(
        total.controlled_clean > 0 && total.preferred_znode_elections > 0,
        "no broker stopped after moving its leadership, or no znode election: {total:?}"
    );
    assert!(
        total.reassignments > seeds / 2 && total.reassign_steps > total.reassignments,
        "reassignments were not exercised: {total:?}"
    );
    assert!(
        total.isr_conflicts > 0 && total.controller_elections > seeds,
        "{total:?}"
    );
}
