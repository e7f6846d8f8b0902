//! Engines: what turns the scheduler's effects into resources and processes, and the world's
//! events into the scheduler's inputs. A shell around the pure core (it does I/O).
//!
//! [`Engine`] is the boundary: `poll` hands over what happened (offers, task status updates,
//! reconciliation answers) as [`Input`]s, `apply` carries out [`Effect`]s (accept with
//! operations, decline, kill, acknowledge, revive, suppress, reconcile, teardown). The local
//! engine ([`local::LocalEngine`]) is the embedded default; a Mesos engine would speak the v1
//! scheduler API behind the same trait. [`drive_once`] is the whole driver loop body.

mod agents;
mod checks;
pub mod local;
mod process;

use crate::scheduler::{Effect, Input, Scheduler};
use crate::store::{Persister, StoreError};

/// Something that offers resources and runs tasks for a scheduler.
pub trait Engine {
    /// What happened since the last poll: offers, status updates, reconciliation answers.
    fn poll(&mut self, now_ms: u64) -> Vec<Input>;

    /// Carries out the scheduler's effects, in order.
    fn apply(&mut self, effects: &[Effect], now_ms: u64);
}

/// One round of the driver: polls the engine, feeds every input to the scheduler and applies
/// the effects (statuses the effects cause are picked up by the next round), then a tick.
/// Returns whether the scheduler asked for a teardown.
pub fn drive_once<P: Persister, E: Engine>(
    scheduler: &mut Scheduler<P>,
    engine: &mut E,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let mut torn_down = false;
    let mut inputs = engine.poll(now_ms);
    inputs.push(Input::Tick);
    for input in inputs {
        let effects = scheduler.handle(input, now_ms)?;
        torn_down |= effects.iter().any(|e| matches!(e, Effect::Teardown));
        engine.apply(&effects, now_ms);
    }
    Ok(torn_down)
}
