//! `strom scheduler run --services FILE`: several services in one scheduler process on one
//! local engine, as several frameworks on one Mesos master. Each service has its own state
//! store (`<state-dir>/services/<name>`), framework id, role, plans and routes
//! (`/service/<name>/v1/…`); the engine offers its agents in DRF order with the roles' weights
//! (`strom_scheduler::engine::allocator`). One driver thread runs an engine round and then
//! every service's `drive_once`; an uninstalled service is dropped from the engine and its
//! routes answer 404 while the others go on; the process exits 0 once none is left.
//!
//! The services file: a JSON list of `{"name": "a", "options": "a.json" | {…}, "role": "r",
//! "weight": 2}`; an options path is relative to the file. A service without a ZooKeeper runs
//! single-node brokers here (the embedded ZooKeeper would need a port of its own per service).
//! Owns no scheduling logic.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use serde_json::Value;
use strom_scheduler::engine::local::{FrameworkHandle, LocalEngine, LocalEngineConfig};
use strom_scheduler::engine::{drive_once_observed, Engine, InputKind};

use super::{
    api, engines, health, listen, metrics, normalize_options, open_service, parse_mounts,
    parse_ports, secret_access, serve, Core, OpenedService, RunArgs, DRIVE_INTERVAL, STORE_FAILED,
};

/// One entry of the services file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    name: String,
    #[serde(default)]
    options: Option<Value>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    weight: Option<f64>,
}

/// A service's name as a route segment and a directory name.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-');
    if !valid {
        bail!("service name {name:?}: use 1–64 letters, digits, '-' or '_' (not first '-')");
    }
    Ok(())
}

/// A service of the file: name, normalized options, role, weight.
type Listed = (String, String, Option<String>, Option<f64>);

/// The services of `file`.
fn read_services(file: &Path) -> anyhow::Result<Vec<Listed>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the services file {}", file.display()))?;
    let entries: Vec<ServiceEntry> = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON list of services", file.display()))?;
    if entries.is_empty() {
        bail!("{}: no service", file.display());
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let mut seen = std::collections::BTreeSet::new();
    let mut services = Vec::new();
    for entry in entries {
        check_name(&entry.name)?;
        if !seen.insert(entry.name.clone()) {
            bail!("service {:?} is listed twice", entry.name);
        }
        let options_text = match &entry.options {
            None => "{}".to_string(),
            Some(Value::String(path)) => {
                let path = base.join(path);
                std::fs::read_to_string(&path).with_context(|| {
                    format!("{}: cannot read options {}", entry.name, path.display())
                })?
            }
            Some(object @ Value::Object(_)) => object.to_string(),
            Some(_) => bail!("{}: options must be a file name or an object", entry.name),
        };
        let options = normalize_options(&options_text, &entry.name)
            .with_context(|| format!("service {}", entry.name))?;
        let named: Value = serde_json::from_str(&options)?;
        if named["service"]["name"].as_str() != Some(entry.name.as_str()) {
            bail!(
                "service {}: its options name it {} (service.name must match)",
                entry.name,
                named["service"]["name"]
            );
        }
        if let Some(role) = &entry.role {
            check_name(role).with_context(|| format!("service {}: role", entry.name))?;
        }
        services.push((entry.name, options, entry.role, entry.weight));
    }
    Ok(services)
}

/// Runs every service of `file` on one local engine until SIGTERM/SIGINT, a store failure
/// (exit 2) or the last uninstall (exit 0).
pub(super) fn run(args: RunArgs, file: &Path) -> anyhow::Result<()> {
    let token = std::env::var("STROM_SCHEDULER_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if args.api_auth == api::ApiAuth::All && token.is_none() {
        bail!("--api-auth all needs STROM_SCHEDULER_TOKEN");
    }
    if args.engine != engines::EngineKind::Local {
        bail!(
            "--services runs on the local engine only (a Mesos master shares its agents by itself)"
        );
    }
    let services = read_services(file)?;
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create {}", args.state_dir.display()))?;
    let ports = parse_ports(&args.ports)?;
    let mut engine_config =
        LocalEngineConfig::this_machine(&args.state_dir.join("engine"), args.agents, ports);
    engine_config.die_with_engine = args.tasks_die_with_scheduler;
    engine_config.check_interval_max_ms = args.check_interval_max_ms;
    engine_config.add_mounts(parse_mounts(&args.mounts)?);
    let engine = Arc::new(Mutex::new(
        LocalEngine::open(engine_config).context("cannot start the local engine")?,
    ));
    let started = Instant::now();
    let mut weights: BTreeMap<String, f64> = BTreeMap::new();
    let mut cores: Vec<(String, Arc<Mutex<Core>>)> = Vec::new();
    for (name, options, role, weight) in services {
        let store_dir = args.state_dir.join("services").join(&name);
        let OpenedService {
            mut scheduler,
            base_env,
            role,
        } = open_service(&args, &name, options, &store_dir, false, role)?;
        let framework_id = match scheduler.framework_id()? {
            Some(id) => id,
            None => format!("{}-0000", uuid::Uuid::new_v4()),
        };
        scheduler.registered(&framework_id)?;
        let secrets = secret_access(&args, scheduler.spec())?;
        {
            let mut engine = engine.lock().expect("engine lock");
            engine.register_framework(&name, &role, secrets);
            if let Some(weight) = weight {
                if weights
                    .insert(role.clone(), weight)
                    .is_some_and(|w| w != weight)
                {
                    bail!("role {role:?} is given two different weights");
                }
                engine
                    .set_weight(&role, weight)
                    .map_err(|error| anyhow!("service {name}: {error}"))?;
            }
            engine.set_framework_spec(&name, scheduler.spec());
            engine.restore_reservations(scheduler.tasks().values().map(|r| &r.info));
        }
        eprintln!("service {name}: role {role}, framework {framework_id}");
        let handle = FrameworkHandle::new(Arc::clone(&engine), &name);
        let core = Core {
            scheduler,
            base_env,
            service: name.clone(),
            offer_timer: metrics::OfferTimer::new(),
            engine: engines::ServiceEngine::Shared(handle),
            started,
            removed: false,
        };
        cores.push((name, Arc::new(Mutex::new(core))));
    }

    let (runtime, listener) = listen(&args)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<String>();
    let uninstall = std::env::var("SDK_UNINSTALL").is_ok_and(|v| !v.is_empty());
    let driver_cores = cores.clone();
    let driver_engine = Arc::clone(&engine);
    let state_dir = args.state_dir.clone();
    std::thread::Builder::new()
        .name("scheduler-driver".into())
        .spawn(move || {
            drive(
                driver_engine,
                driver_cores,
                &state_dir,
                started,
                uninstall,
                stop_tx,
            )
        })?;
    for (name, core) in &cores {
        let core = Arc::clone(core);
        std::thread::Builder::new()
            .name(format!("health-{name}"))
            .spawn(move || health::report_forever(core))?;
    }
    let router = api::services_router(&cores, token, args.api_auth);
    let failure = serve(&runtime, listener, router, stop_rx)?;
    for (_, core) in &cores {
        let core = core.lock().unwrap_or_else(|p| p.into_inner());
        if !core.removed {
            core.scheduler.persister().close();
        }
    }
    match failure {
        Some(reason) => Err(anyhow!(reason)),
        None => Ok(()),
    }
}

/// The driver thread: reconciliation of every service, then forever an engine round (reap,
/// checks, resends, DRF offers) followed by each live service's `drive_once`. It spawns every
/// task, so with `--tasks-die-with-scheduler` its exit is what kills them.
fn drive(
    engine: Arc<Mutex<LocalEngine>>,
    cores: Vec<(String, Arc<Mutex<Core>>)>,
    state_dir: &Path,
    started: Instant,
    uninstall: bool,
    stop: tokio::sync::oneshot::Sender<String>,
) {
    let now = || started.elapsed().as_millis() as u64;
    for (name, core) in &cores {
        let mut guard = core.lock().expect("driver lock");
        let core = &mut *guard;
        let now_ms = now();
        let effects = core.scheduler.subscribed(now_ms);
        core.engine.apply(&effects, now_ms);
        if uninstall {
            match core.scheduler.uninstall(now_ms) {
                Ok(effects) => core.engine.apply(&effects, now_ms),
                Err(error) => {
                    let _ = stop.send(format!("{STORE_FAILED} ({name}): {error}"));
                    return;
                }
            }
        }
    }
    loop {
        engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .round(now());
        let mut live = 0;
        for (name, core) in &cores {
            let mut guard = core.lock().expect("driver lock");
            if guard.removed {
                continue;
            }
            let now_ms = now();
            let Core {
                scheduler,
                engine: service_engine,
                offer_timer,
                ..
            } = &mut *guard;
            let outcome =
                drive_once_observed(scheduler, service_engine, now_ms, &mut |kind, took| {
                    if kind == InputKind::Offers {
                        offer_timer.observe(took);
                    }
                });
            match outcome {
                Ok(false) => live += 1,
                Ok(true) => {
                    // Uninstalled: the others go on.
                    guard.removed = true;
                    guard.scheduler.persister().close();
                    engine
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove_framework(name);
                    let _ = std::fs::remove_dir_all(state_dir.join("services").join(name));
                    eprintln!("service {name} was uninstalled");
                }
                Err(error) => {
                    let _ = stop.send(format!("{STORE_FAILED} ({name}): {error}"));
                    return;
                }
            }
        }
        if live == 0 {
            let _ = stop.send("every service was uninstalled".into());
            return;
        }
        std::thread::sleep(DRIVE_INTERVAL);
    }
}
