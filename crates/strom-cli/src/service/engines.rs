//! Which engine `strom scheduler run` drives: the local engine (the embedded default) or the
//! Mesos engine (`--engine mesos --master http://host:port`). One type for the driver thread
//! and the API handlers; the scheduling code is the same for both.

use strom_scheduler::engine::local::{FrameworkHandle, LocalEngine};
use strom_scheduler::engine::mesos::MesosEngine;
use strom_scheduler::engine::Engine;
use strom_scheduler::scheduler::{Effect, Input};
use strom_scheduler::spec::ServiceSpec;

/// `--engine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// This machine as virtual agents; tasks run as local processes.
    Local,
    /// A Mesos master's agents, through the v1 scheduler HTTP API (`--master`).
    Mesos,
}

/// The engine of a running scheduler (one per process: the size difference does not matter).
#[allow(clippy::large_enum_variant)]
pub enum ServiceEngine {
    /// See [`LocalEngine`].
    Local(LocalEngine),
    /// See [`MesosEngine`].
    Mesos(MesosEngine),
    /// One of several services on a shared local engine (`--services`).
    Shared(FrameworkHandle),
}

impl ServiceEngine {
    /// Learns checks and kill grace periods from the target spec.
    pub fn set_spec(&mut self, spec: &ServiceSpec) {
        match self {
            ServiceEngine::Local(engine) => engine.set_spec(spec),
            ServiceEngine::Mesos(engine) => engine.set_spec(spec),
            ServiceEngine::Shared(handle) => {
                let name = handle.name().to_string();
                handle.engine().set_framework_spec(&name, spec);
            }
        }
    }
}

impl Engine for ServiceEngine {
    fn poll(&mut self, now_ms: u64) -> Vec<Input> {
        match self {
            ServiceEngine::Local(engine) => engine.poll(now_ms),
            ServiceEngine::Mesos(engine) => engine.poll(now_ms),
            ServiceEngine::Shared(handle) => handle.poll(now_ms),
        }
    }

    fn apply(&mut self, effects: &[Effect], now_ms: u64) {
        match self {
            ServiceEngine::Local(engine) => engine.apply(effects, now_ms),
            ServiceEngine::Mesos(engine) => engine.apply(effects, now_ms),
            ServiceEngine::Shared(handle) => handle.apply(effects, now_ms),
        }
    }

    fn take_subscribed(&mut self, now_ms: u64) -> Option<String> {
        match self {
            ServiceEngine::Local(engine) => engine.take_subscribed(now_ms),
            ServiceEngine::Mesos(engine) => engine.take_subscribed(now_ms),
            ServiceEngine::Shared(handle) => handle.take_subscribed(now_ms),
        }
    }
}
