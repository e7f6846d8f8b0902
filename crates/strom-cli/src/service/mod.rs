//! `strom scheduler run` and `strom service …`: the wiring of the service scheduler on one
//! machine. Renders the shipped Kafka spec from options JSON, opens the file state store (its
//! lock refuses a second scheduler), starts the local engine, runs the pure scheduler core in a
//! driver thread (one `drive_once` every [`DRIVE_INTERVAL`]) and serves the HTTP API
//! (`api.rs`). Owns no scheduling logic: that is `strom-scheduler`'s.
//!
//! With `SDK_UNINSTALL` set the scheduler uninstalls the service (kill every task, destroy the
//! volumes, release the reservations, wipe the state store) and exits 0.
//!
//! Tasks outlive the scheduler (the local engine starts them in their own sessions), so a
//! scheduler killed with SIGKILL and started again adopts its running brokers; the hidden
//! `--tasks-die-with-scheduler` flag (tests) makes the kernel kill them with the driver thread.

mod api;
pub mod probe;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use strom_scheduler::engine::local::{LocalEngine, LocalEngineConfig};
use strom_scheduler::engine::{drive_once, Engine};
use strom_scheduler::file_store::FilePersister;
use strom_scheduler::scheduler::{Scheduler, SchedulerConfig};
use strom_scheduler::spec::kafka::render_kafka_service;

/// How often the driver polls the engine and ticks the scheduler.
const DRIVE_INTERVAL: Duration = Duration::from_millis(100);

/// `strom scheduler …`.
#[derive(Debug, clap::Subcommand)]
pub enum SchedulerCommand {
    /// Run the scheduler of a service with the local engine until SIGTERM or SIGINT.
    Run(RunArgs),
}

/// `strom service …`.
#[derive(Debug, clap::Subcommand)]
pub enum ServiceCommand {
    /// Check that a broker answers ApiVersions and a Metadata naming itself (exit 0 = ready).
    ProbeBroker(probe::ProbeArgs),
}

/// Arguments of `strom scheduler run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The service name (`service.name` of the options).
    #[arg(long, default_value = "kafka")]
    pub service: String,
    /// Options JSON in the DC/OS package style (`{"brokers":{…},"kafka":{…}}`).
    #[arg(long, value_name = "FILE")]
    pub options: Option<PathBuf>,
    /// The state directory: state store, engine work directory, `api-address`.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Where the HTTP API listens (port 0: any free port; the bound address is printed and
    /// written to `<state-dir>/api-address`).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "HOST:PORT")]
    pub api: String,
    /// Virtual agents of the local engine (distinct hostnames, zones `zone-<i>`).
    #[arg(long, default_value_t = 3)]
    pub agents: usize,
    /// The port range the agents offer, FIRST-LAST.
    #[arg(long, default_value = "10000-10999", value_name = "FIRST-LAST")]
    pub ports: String,
    /// Upper bound on readiness check intervals, milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub check_interval_max_ms: u64,
    /// Tasks die with the scheduler (tests only).
    #[arg(long, hide = true)]
    pub tasks_die_with_scheduler: bool,
}

/// Runs `strom service …`.
pub fn run_service(command: ServiceCommand) -> ExitCode {
    match command {
        ServiceCommand::ProbeBroker(args) => match probe::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("not ready: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Runs `strom scheduler …`.
pub fn run_scheduler(command: SchedulerCommand) -> ExitCode {
    let SchedulerCommand::Run(args) = command;
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// What the driver thread and the API share.
pub(crate) struct Core {
    pub scheduler: Scheduler<FilePersister>,
    pub engine: LocalEngine,
    pub started: Instant,
}

impl Core {
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

fn parse_ports(text: &str) -> anyhow::Result<(u16, u16)> {
    let (first, last) = text
        .split_once('-')
        .ok_or_else(|| anyhow!("--ports {text:?}: expected FIRST-LAST"))?;
    let range: (u16, u16) = (first.trim().parse()?, last.trim().parse()?);
    if range.0 == 0 || range.0 > range.1 {
        bail!("--ports {text:?}: FIRST must be in 1..=LAST");
    }
    Ok(range)
}

fn options_json(args: &RunArgs) -> anyhow::Result<String> {
    let mut options: Value = match &args.options {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the options file {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?
        }
        None => Value::Object(Default::default()),
    };
    let Some(sections) = options.as_object_mut() else {
        bail!("the options must be a JSON object");
    };
    let service = sections
        .entry("service")
        .or_insert_with(|| Value::Object(Default::default()));
    match service.as_object_mut() {
        Some(service) => {
            service
                .entry("name")
                .or_insert_with(|| Value::String(args.service.clone()));
        }
        None => bail!("options: service must be an object"),
    }
    Ok(options.to_string())
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let strom_bin = std::env::current_exe().context("cannot find the strom binary's path")?;
    let mut base_env = BTreeMap::new();
    base_env.insert("STROM_BIN".to_string(), strom_bin.display().to_string());
    base_env.insert(
        "KAFKA_ZOOKEEPER_URI".to_string(),
        std::env::var("KAFKA_ZOOKEEPER_URI").unwrap_or_default(),
    );
    let rendered = render_kafka_service(&options_json(&args)?, &base_env)
        .map_err(|error| anyhow!("the service spec was refused: {error}"))?;
    let ports = parse_ports(&args.ports)?;
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create {}", args.state_dir.display()))?;
    let store = FilePersister::open(&args.state_dir)?;
    let config = SchedulerConfig::for_service(&rendered.spec.name);
    let (scheduler, outcome) =
        Scheduler::new(store, &rendered.spec, config, Box::new(uuid::Uuid::new_v4))?;
    for error in &outcome.errors {
        eprintln!("warning: the new spec was refused, the stored target stays: {error}");
    }
    let mut engine_config =
        LocalEngineConfig::this_machine(&args.state_dir.join("engine"), args.agents, ports);
    engine_config.die_with_engine = args.tasks_die_with_scheduler;
    engine_config.check_interval_max_ms = args.check_interval_max_ms;
    let mut engine = LocalEngine::open(engine_config).context("cannot start the local engine")?;
    engine.set_spec(scheduler.spec());
    engine.restore_reservations(scheduler.tasks().values().map(|r| &r.info));
    let core = Arc::new(Mutex::new(Core {
        scheduler,
        engine,
        started: Instant::now(),
    }));
    let token = std::env::var("STROM_SCHEDULER_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&args.api))
        .with_context(|| format!("cannot listen on {}", args.api))?;
    let address = listener.local_addr()?;
    write_atomically(&args.state_dir.join("api-address"), &address.to_string())
        .context("cannot write api-address")?;
    println!("scheduler API listening on http://{address}");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<String>();
    // SDK_UNINSTALL (as on DC/OS): uninstall the service, then exit.
    let uninstall = std::env::var("SDK_UNINSTALL").is_ok_and(|v| !v.is_empty());
    let driver_core = Arc::clone(&core);
    std::thread::Builder::new()
        .name("scheduler-driver".into())
        .spawn(move || drive(driver_core, uninstall, stop_tx))?;
    let router = api::router(Arc::clone(&core), token);
    runtime.block_on(async move {
        let shutdown = async move {
            tokio::select! {
                reason = stop_rx => eprintln!("scheduler stopping: {}", reason.unwrap_or_default()),
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate() => {}
            }
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    })?;
    Ok(())
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// The driver thread: subscribe (reconciliation), then poll and tick forever. It spawns every
/// task, so with `--tasks-die-with-scheduler` its exit is what kills them.
fn drive(core: Arc<Mutex<Core>>, uninstall: bool, stop: tokio::sync::oneshot::Sender<String>) {
    {
        let mut guard = core.lock().expect("driver lock");
        let core = &mut *guard;
        let now_ms = core.now_ms();
        let effects = core.scheduler.subscribed(now_ms);
        core.engine.apply(&effects, now_ms);
        if uninstall {
            match core.scheduler.uninstall(now_ms) {
                Ok(effects) => core.engine.apply(&effects, now_ms),
                Err(error) => {
                    let _ = stop.send(format!("the state store failed: {error}"));
                    return;
                }
            }
        }
    }
    loop {
        let outcome = {
            let mut guard = core.lock().expect("driver lock");
            let core = &mut *guard;
            let now_ms = core.now_ms();
            drive_once(&mut core.scheduler, &mut core.engine, now_ms)
        };
        match outcome {
            Ok(false) => {}
            Ok(true) => {
                let _ = stop.send("the service was uninstalled".into());
                return;
            }
            Err(error) => {
                let _ = stop.send(format!("the state store failed: {error}"));
                return;
            }
        }
        std::thread::sleep(DRIVE_INTERVAL);
    }
}
