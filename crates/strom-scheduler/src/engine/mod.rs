//! Engines: what turns the scheduler's effects into resources and processes, and the world's
//! events into the scheduler's inputs. A shell around the pure core (it does I/O).
//!
//! [`Engine`] is the boundary: `poll` hands over what happened (offers, task status updates,
//! reconciliation answers) as [`Input`]s, `apply` carries out [`Effect`]s (accept with
//! operations, decline, kill, acknowledge, revive, suppress, reconcile, teardown). The local
//! engine ([`local::LocalEngine`]) is the embedded default; the Mesos engine
//! ([`mesos::MesosEngine`]) speaks the v1 scheduler API behind the same trait. [`drive_once`] is the whole driver loop body.

mod agents;
pub mod allocator;
mod checks;
pub mod local;
pub mod mesos;
pub(crate) mod process;
mod sandbox;

pub use sandbox::EngineSecrets;

use crate::scheduler::{Effect, Input, Scheduler};
use crate::store::{Persister, StoreError};

/// Something that offers resources and runs tasks for a scheduler.
pub trait Engine {
    /// What happened since the last poll: offers, status updates, reconciliation answers.
    fn poll(&mut self, now_ms: u64) -> Vec<Input>;

    /// Carries out the scheduler's effects, in order.
    fn apply(&mut self, effects: &[Effect], now_ms: u64);

    /// The framework id of a subscription completed since the last call (Mesos SUBSCRIBED),
    /// once. [`drive_once`] persists it ([`Scheduler::registered`]) and starts reconciliation
    /// ([`Scheduler::subscribed`]) before anything else; the engine sends no call before. Engines
    /// registered once at start (the local engine) return `None`.
    fn take_subscribed(&mut self, _now_ms: u64) -> Option<String> {
        None
    }
}

/// Which kind of [`Input`] a [`drive_once_observed`] observation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// [`Input::Offers`].
    Offers,
    /// [`Input::Status`].
    Status,
    /// [`Input::Health`].
    Health,
    /// [`Input::Tick`].
    Tick,
}

/// One round of the driver: polls the engine, feeds every input to the scheduler and applies
/// the effects (statuses the effects cause are picked up by the next round), then a tick.
/// Returns whether the scheduler asked for a teardown.
pub fn drive_once<P: Persister, E: Engine>(
    scheduler: &mut Scheduler<P>,
    engine: &mut E,
    now_ms: u64,
) -> Result<bool, StoreError> {
    drive_once_observed(scheduler, engine, now_ms, &mut |_, _| {})
}

/// [`drive_once`], telling `observe` how long the scheduler took over each input (wall-clock
/// time of this shell, for the `offers.process` timer; the core never sees it).
pub fn drive_once_observed<P: Persister, E: Engine>(
    scheduler: &mut Scheduler<P>,
    engine: &mut E,
    now_ms: u64,
    observe: &mut dyn FnMut(InputKind, std::time::Duration),
) -> Result<bool, StoreError> {
    let mut torn_down = false;
    let mut inputs = engine.poll(now_ms);
    if let Some(framework_id) = engine.take_subscribed(now_ms) {
        scheduler.registered(&framework_id)?;
        let effects = scheduler.subscribed(now_ms);
        engine.apply(&effects, now_ms);
    }
    inputs.push(Input::Tick);
    for input in inputs {
        let started = std::time::Instant::now();
        let kind = match &input {
            Input::Offers(_) => InputKind::Offers,
            Input::Status(_) => InputKind::Status,
            Input::Health(_) => InputKind::Health,
            Input::Tick => InputKind::Tick,
        };
        let effects = scheduler.handle(input, now_ms)?;
        observe(kind, started.elapsed());
        torn_down |= effects.iter().any(|e| matches!(e, Effect::Teardown));
        engine.apply(&effects, now_ms);
    }
    Ok(torn_down)
}
