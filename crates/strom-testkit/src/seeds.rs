//! The driver of a seeded simulation test: one replayed seed with a trace, or many seeds within
//! a time budget, each failure naming its seed and the command that replays it.
//!
//! The environment, for a prefix `P` (e.g. `STROM_REPL`): `P_SEED=<n>` replays seed n with the
//! trace on; `P_SEEDS` (default `count`), `P_FIRST_SEED` (default 0) and `P_BUDGET_S` (default
//! `budget_s`) widen or narrow a run.

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// What a simulation test sets.
pub struct Seeds<'a> {
    /// The environment variables' prefix, e.g. `STROM_REPL`.
    pub prefix: &'a str,
    /// The command that replays a seed, after the `P_SEED=<n>` assignment.
    pub replay: &'a str,
    /// Seeds run by default.
    pub count: u64,
    /// Seconds the seeds may take by default; seeds left when it is spent are not run.
    pub budget_s: u64,
}

/// What a many-seed run did.
pub struct Ran {
    /// Seeds run.
    pub seeds: u64,
    /// The first seed.
    pub first: u64,
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

impl Seeds<'_> {
    /// Runs `run(seed, trace)` as the environment says, handing each result to `each`. Returns
    /// `None` after a replay (the caller checks nothing more), else what ran. Panics naming the
    /// first failing seed.
    pub fn run<S>(&self, run: impl Fn(u64, bool) -> S, mut each: impl FnMut(S)) -> Option<Ran> {
        let var = |name: &str| format!("{}_{name}", self.prefix);
        if let Some(seed) = env_u64(&var("SEED")) {
            run(seed, true);
            eprintln!("seed {seed} passed");
            return None;
        }
        let first = env_u64(&var("FIRST_SEED")).unwrap_or(0);
        let count = env_u64(&var("SEEDS")).unwrap_or(self.count);
        let budget = Duration::from_secs(env_u64(&var("BUDGET_S")).unwrap_or(self.budget_s));
        let started = Instant::now();
        let mut seeds = 0;
        for seed in first..first + count {
            if started.elapsed() > budget {
                break;
            }
            match panic::catch_unwind(AssertUnwindSafe(|| run(seed, false))) {
                Ok(result) => each(result),
                Err(_) => panic!(
                    "simulation failed at seed {seed}; replay with {}={seed} {}",
                    var("SEED"),
                    self.replay
                ),
            }
            seeds += 1;
        }
        eprintln!(
            "{seeds} seeds (from {first}) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Some(Ran { seeds, first })
    }
}
