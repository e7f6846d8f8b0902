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
mod cli;
mod engines;
mod health;
mod http;
mod metrics;
mod multi;
mod options;
pub mod probe;
mod probe_zookeeper;
mod secret;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use strom_scheduler::engine::local::{LocalEngine, LocalEngineConfig};
use strom_scheduler::engine::mesos::{session::SessionConfig, wire::FrameworkSettings};
use strom_scheduler::engine::mesos::{MesosConfig, MesosEngine};
use strom_scheduler::engine::{drive_once_observed, Engine, EngineSecrets, InputKind};
use strom_scheduler::file_store::FilePersister;
use strom_scheduler::scheduler::{Scheduler, SchedulerConfig};
use strom_scheduler::secrets::file_store::FileSecretStore;
use strom_scheduler::secrets::SecretStore;
use strom_scheduler::spec::kafka::render_kafka_service;
use strom_scheduler::store::{service_root, Persister};
use strom_scheduler::zk_store::{ZkPersister, ZkPersisterConfig};

/// How often the driver polls the engine and ticks the scheduler.
pub(crate) use options::normalize_options;
use options::{options_json, parse_mounts, parse_ports};

const DRIVE_INTERVAL: Duration = Duration::from_millis(100);

/// `strom scheduler …`.
#[derive(Debug, clap::Subcommand)]
pub enum SchedulerCommand {
    /// Run the scheduler of a service (local engine, or a Mesos master with `--engine mesos`)
    /// until SIGTERM or SIGINT.
    Run(RunArgs),
}

/// `strom service …`.
#[derive(Debug, clap::Subcommand)]
pub enum ServiceCommand {
    /// Check that a broker answers ApiVersions and a Metadata naming itself (exit 0 = ready).
    ProbeBroker(probe::ProbeArgs),
    /// Check that a ZooKeeper server answers `ruok` and serves (exit 0 = ready).
    ProbeZookeeper(probe_zookeeper::ProbeZooKeeperArgs),
    /// List, show, start, stop, pause, resume, restart and force-complete plans.
    Plan {
        #[command(flatten)]
        api: cli::ApiArgs,
        #[command(subcommand)]
        command: cli::PlanCommand,
    },
    /// List pods, show their status and info; restart, replace, pause and resume them.
    Pod {
        #[command(flatten)]
        api: cli::ApiArgs,
        #[command(subcommand)]
        command: cli::PodCommand,
    },
    /// The service's endpoints, or one endpoint's addresses.
    Endpoints {
        #[command(flatten)]
        api: cli::ApiArgs,
        name: Option<String>,
    },
    /// Update the service's options (`update --options FILE`, or `update start --options
    /// FILE` as DC/OS said it), or show the update (`update status`).
    Update {
        #[command(flatten)]
        api: cli::ApiArgs,
        /// The new options (the same as `update start --options FILE`).
        #[arg(long, value_name = "FILE")]
        options: Option<PathBuf>,
        #[command(subcommand)]
        command: Option<cli::UpdateCommand>,
    },
    /// Uninstall the service: kill its tasks, delete its volumes, wipe its state; waits for
    /// the scheduler to exit.
    Uninstall {
        #[command(flatten)]
        api: cli::ApiArgs,
    },
    /// The options the service runs with.
    Describe {
        #[command(flatten)]
        api: cli::ApiArgs,
    },
    /// Why steps wait: the offers evaluated for them and the stages that failed.
    Debug {
        #[command(flatten)]
        api: cli::ApiArgs,
        #[command(subcommand)]
        command: cli::DebugCommand,
    },
    /// The service's brokers.
    Broker {
        #[command(flatten)]
        api: cli::ApiArgs,
        #[command(subcommand)]
        command: cli::BrokerCommand,
    },
    /// The secret store tasks' secrets come from: create, list, delete.
    Secret(secret::SecretArgs),
    /// Topics, through the service's brokers.
    Topic {
        #[command(flatten)]
        api: cli::ApiArgs,
        #[command(subcommand)]
        command: cli::TopicCommand,
    },
}

/// Arguments of `strom scheduler run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The service name (`service.name` of the options).
    #[arg(long, default_value = "kafka")]
    pub service: String,
    /// Several services on one local engine: a JSON list of `{"name": N, "options": FILE or
    /// {…}, "role": R, "weight": W}` (`role` defaults to `<name>-role`, `weight` — the role's
    /// DRF weight — to 1). Each service gets its state store in `<state-dir>/services/<name>`,
    /// its framework id and its routes under `/service/<name>/v1/…`; the engine offers the
    /// agents in DRF order. Replaces `--service`/`--options`.
    #[arg(long, value_name = "FILE", conflicts_with = "options")]
    pub services: Option<PathBuf>,
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
    /// Keep the state store in ZooKeeper (`host:port[,…][/chroot]`) under
    /// `/dcos-service-<name>`, as the DC/OS SDK did, instead of files in the state directory.
    /// The options' `service.zookeeper` does the same. The brokers then share it (their
    /// `zookeeper.connect` is `<this>/dcos-service-<name>` unless `KAFKA_ZOOKEEPER_URI` is set).
    #[arg(long, value_name = "CONNECT")]
    pub zookeeper: Option<String>,
    /// The ZooKeeper store's session timeout: how long a killed scheduler's lock outlives it.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub zk_session_timeout_ms: u64,
    /// How long to wait for the ZooKeeper store's lock (default: the session timeout + 5 s, so
    /// a scheduler restarted after a kill -9 waits out its predecessor's session).
    #[arg(long, value_name = "MS")]
    pub zk_lock_wait_ms: Option<u64>,
    /// Which API calls need `Authorization: Bearer $STROM_SCHEDULER_TOKEN` (when it is set):
    /// `writes` (mutating calls only) or `all`.
    #[arg(long, value_enum, default_value = "writes")]
    pub api_auth: api::ApiAuth,
    /// A dedicated disk for MOUNT volumes (`brokers.disk_type: MOUNT`): an existing directory
    /// (normally a mount point) and the size to offer, `PATH:SIZE_MB`. Repeat it; the disks
    /// are handed to the agents in turn. A MOUNT volume takes one whole disk, and its data is
    /// that directory.
    #[arg(long = "mount", value_name = "PATH:SIZE_MB")]
    pub mounts: Vec<String>,
    /// Without a ZooKeeper (no --zookeeper, `service.zookeeper`, `KAFKA_ZOOKEEPER_URI` or
    /// `kafka.kafka_zookeeper_uri`), run one for the service as a task of the local engine
    /// (Debian's `zookeeper` package, on the first port of --ports) and deploy the brokers
    /// against it; `false` leaves each broker a single node.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub embedded_zookeeper: bool,
    /// The secret store (a directory, managed with `strom service secret`) the tasks' secrets
    /// (`brokers.secrets`) are read from at launch.
    #[arg(long, env = "STROM_SECRET_STORE", value_name = "DIR")]
    pub secret_store: Option<PathBuf>,
    /// `local` (this machine as virtual agents) or `mesos` (a Mesos master's agents through
    /// the v1 scheduler HTTP API; needs `--master`).
    #[arg(long, value_enum, default_value = "local")]
    pub engine: engines::EngineKind,
    /// The Mesos master, `http://host:port` (any master: a non-leader redirects).
    #[arg(long, value_name = "URL", required_if_eq("engine", "mesos"))]
    pub master: Option<String>,
    /// How long the Mesos master keeps the tasks of a disconnected scheduler (the framework's
    /// `failover_timeout`; the Mesos docs advise weeks).
    #[arg(long, default_value_t = 1_209_600, value_name = "SECONDS")]
    pub failover_timeout: u64,
    /// Tasks die with the scheduler (tests only).
    #[arg(long, hide = true)]
    pub tasks_die_with_scheduler: bool,
}

/// Runs `strom service …`; `json` is the global `--json`.
pub fn run_service(command: ServiceCommand, json: bool) -> ExitCode {
    let outcome = match command {
        ServiceCommand::ProbeZookeeper(args) => {
            return match probe_zookeeper::run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("not ready: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        ServiceCommand::ProbeBroker(args) => {
            return match probe::run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("not ready: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        ServiceCommand::Plan { api, command } => cli::plan(&api, command, json),
        ServiceCommand::Pod { api, command } => cli::pod(&api, command, json),
        ServiceCommand::Endpoints { api, name } => cli::endpoints(&api, name, json),
        ServiceCommand::Update {
            api,
            options,
            command,
        } => match (options, command) {
            (Some(_), Some(_)) => Err(anyhow!(
                "give --options after `update start`, or use `update --options FILE` alone"
            )),
            (None, Some(command)) => cli::update(&api, command, json),
            (Some(options), None) => cli::update(&api, cli::UpdateCommand::Start { options }, json),
            (None, None) => Err(anyhow!(
                "update needs --options FILE (or `update start --options FILE`, `update status`)"
            )),
        },
        ServiceCommand::Uninstall { api } => cli::uninstall(&api, json),
        ServiceCommand::Describe { api } => cli::describe(&api),
        ServiceCommand::Debug { api, command } => cli::debug(&api, command, json),
        ServiceCommand::Broker { api, command } => cli::broker(&api, command, json),
        ServiceCommand::Topic { api, command } => cli::topic(&api, command, json),
        ServiceCommand::Secret(args) => secret::run(args, json),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
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

/// The state store the binary picked: files in the state directory or ZooKeeper.
pub(crate) type Store = Box<dyn Persister + Send>;

/// The property holding the options JSON of the target config (set at start and by an
/// accepted update), so a restart keeps an update made through the API.
pub(crate) const TARGET_OPTIONS_PROPERTY: &str = "target-options";
/// The property holding the options JSON the scheduler was last started with: a restart with
/// the same options resumes the target's options; different ones are a new update.
pub(crate) const LAUNCH_OPTIONS_PROPERTY: &str = "launch-options";

/// What the driver thread and the API share.
pub(crate) struct Core {
    pub scheduler: Scheduler<Store>,
    /// The environment every rendering of the spec starts from (`STROM_BIN`,
    /// `KAFKA_ZOOKEEPER_URI`), for updates.
    pub base_env: BTreeMap<String, String>,
    /// The service's name (the options' default `service.name`).
    pub service: String,
    /// The `offers.process` timer, fed by the driver.
    pub offer_timer: metrics::OfferTimer,
    pub engine: engines::ServiceEngine,
    pub started: Instant,
    /// The service was uninstalled while others go on (`--services`): its routes answer 404.
    pub removed: bool,
}

impl Core {
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// Opens the state store: ZooKeeper when `zookeeper` is set, else files in the state directory.
fn open_store(
    args: &RunArgs,
    dir: &Path,
    service: &str,
    zookeeper: Option<&str>,
) -> anyhow::Result<Store> {
    let Some(connect) = zookeeper else {
        return Ok(Box::new(FilePersister::open(dir)?));
    };
    let mut config = ZkPersisterConfig::new(connect, service);
    config.session_timeout_ms = args.zk_session_timeout_ms;
    config.lock_wait_ms = args
        .zk_lock_wait_ms
        .unwrap_or(args.zk_session_timeout_ms + 5_000);
    let store = ZkPersister::open(&config)?;
    eprintln!(
        "state store: ZooKeeper {connect}, root {}",
        store.root().unwrap_or_default()
    );
    Ok(Box::new(store))
}

/// The engine's access to the secret store: the store of `--secret-store`, read for this
/// service. A spec naming secrets without a store is refused; a secret missing from the store
/// is a warning (the task's launch fails, saying which, until it is created).
fn secret_access(
    args: &RunArgs,
    spec: &strom_scheduler::spec::ServiceSpec,
) -> anyhow::Result<Option<EngineSecrets>> {
    let named: Vec<(String, &str)> = spec
        .pods
        .iter()
        .flat_map(|(pod, p)| {
            p.secrets
                .iter()
                .map(move |(name, s)| (format!("pods.{pod}.secrets.{name}"), s.secret.as_str()))
        })
        .collect();
    let Some(dir) = &args.secret_store else {
        if let Some((key, _)) = named.first() {
            bail!("{key} names a secret and no --secret-store (STROM_SECRET_STORE) is set");
        }
        return Ok(None);
    };
    let store = FileSecretStore::open(dir)
        .with_context(|| format!("cannot open the secret store {}", dir.display()))?;
    for (key, path) in &named {
        if store.read(path)?.is_none() {
            eprintln!("warning: {key}: secret {path} is not in the secret store yet");
        }
    }
    Ok(Some(EngineSecrets {
        store,
        service: spec.name.clone(),
    }))
}

/// One service's scheduler, opened and ready to drive.
pub(crate) struct OpenedService {
    pub scheduler: Scheduler<Store>,
    /// See [`Core::base_env`].
    pub base_env: BTreeMap<String, String>,
    /// The role its reservations are made for.
    pub role: String,
}

/// Renders service `name`'s spec from `options` (normalized JSON), opens its state store (files
/// in `store_dir`, or ZooKeeper) and its scheduler; `embedded_zookeeper` allows the service
/// its own ZooKeeper task when none is configured; `role` replaces the default
/// `<name>-role`.
pub(crate) fn open_service(
    args: &RunArgs,
    name: &str,
    options: String,
    store_dir: &Path,
    embedded_zookeeper: bool,
    role: Option<String>,
) -> anyhow::Result<OpenedService> {
    // The binary the tasks run (`STROM_BIN` in svc.yml): this one, or `STROM_TASK_BIN` (the
    // benchmark runs release brokers under a debug scheduler).
    let strom_bin = match std::env::var_os("STROM_TASK_BIN").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe().context("cannot find the strom binary's path")?,
    };
    let mut base_env = BTreeMap::new();
    base_env.insert("STROM_BIN".to_string(), strom_bin.display().to_string());
    // A first rendering without the brokers' ZooKeeper finds the service's name and its
    // `service.zookeeper`.
    let mut probe_env = base_env.clone();
    probe_env.insert("KAFKA_ZOOKEEPER_URI".into(), String::new());
    let probe = render_kafka_service(&options, &probe_env)
        .map_err(|error| anyhow!("{name}: the service spec was refused: {error}"))?;
    let zookeeper = args
        .zookeeper
        .clone()
        .or(probe.spec.scheduler.zookeeper)
        .filter(|connect| !connect.is_empty());
    let ports = parse_ports(&args.ports)?;
    // The brokers' ZooKeeper: KAFKA_ZOOKEEPER_URI, else the state store's under the service's
    // root (as DC/OS Kafka's `master.mesos:2181/dcos-service-<name>`), else the service's
    // embedded one (a task on the first port of the range, under the same root), else none.
    let configured_uri = std::env::var("KAFKA_ZOOKEEPER_URI")
        .ok()
        .filter(|uri| !uri.is_empty())
        .or_else(|| {
            zookeeper
                .as_ref()
                .map(|connect| format!("{connect}{}", service_root(&probe.spec.name)))
        });
    let options_uri = probe
        .env
        .get("KAFKA_ZOOKEEPER_URI")
        .is_some_and(|uri| !uri.is_empty());
    let brokers_zookeeper = match configured_uri {
        Some(uri) => uri,
        // Only the local engine: on Mesos, tasks run on other machines than this one.
        None if args.embedded_zookeeper
            && embedded_zookeeper
            && !options_uri
            && matches!(args.engine, engines::EngineKind::Local) =>
        {
            // Server i of an ensemble takes the first ports of agent i's share of the range
            // (`LocalEngineConfig::this_machine` splits it evenly), so the servers spread one
            // per agent on ports every zoo.cfg can name in advance (spec/ensemble.rs).
            let agents = args.agents.max(1);
            let span = (u32::from(ports.1) - u32::from(ports.0) + 1) / agents as u32;
            for (name, value) in [
                ("EMBEDDED_ZOOKEEPER", "true".to_string()),
                ("ZOOKEEPER_PORT", ports.0.to_string()),
                ("ZOOKEEPER_PORT_STRIDE", span.to_string()),
                ("ZOOKEEPER_AGENTS", agents.to_string()),
                ("ZOOKEEPER_HOST", "127.0.0.1".to_string()),
                ("ZOOKEEPER_CHROOT", service_root(&probe.spec.name)),
            ] {
                base_env.insert(name.into(), value);
            }
            let uri = render_kafka_service(&options, &base_env)
                .map_err(|error| anyhow!("the service spec was refused: {error}"))?
                .env
                .get("KAFKA_ZOOKEEPER_URI")
                .cloned()
                .unwrap_or_default();
            eprintln!("no ZooKeeper configured: the service runs its own, brokers use {uri}");
            uri
        }
        None => String::new(),
    };
    base_env.insert("KAFKA_ZOOKEEPER_URI".to_string(), brokers_zookeeper);
    std::fs::create_dir_all(store_dir)
        .with_context(|| format!("cannot create {}", store_dir.display()))?;
    let store = open_store(args, store_dir, &probe.spec.name, zookeeper.as_deref())?;
    // Started again with the options of the previous start: the target's options stand (an
    // update through the API is not rolled back); other options are an update.
    let stored = |key: &str| -> anyhow::Result<Option<String>> {
        let value = strom_scheduler::state::property(&*store, key)?;
        Ok(value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    };
    let candidate_options = match stored(TARGET_OPTIONS_PROPERTY)? {
        Some(target) if stored(LAUNCH_OPTIONS_PROPERTY)?.as_deref() == Some(&options) => target,
        _ => options.clone(),
    };
    let rendered = render_kafka_service(&candidate_options, &base_env)
        .map_err(|error| anyhow!("{name}: the service spec was refused: {error}"))?;
    let mut config = SchedulerConfig::for_service(&rendered.spec.name);
    if let Some(role) = role {
        config.role = role;
    }
    let role = config.role.clone();
    let (mut scheduler, outcome) =
        Scheduler::new(store, &rendered.spec, config, Box::new(uuid::Uuid::new_v4))?;
    if outcome.errors.is_empty() {
        scheduler.set_property(TARGET_OPTIONS_PROPERTY, candidate_options.as_bytes())?;
        scheduler.set_property(LAUNCH_OPTIONS_PROPERTY, options.as_bytes())?;
    }
    for error in &outcome.errors {
        eprintln!("warning: {name}: the new spec was refused, the stored target stays: {error}");
    }
    Ok(OpenedService {
        scheduler,
        base_env,
        role,
    })
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    if let Some(file) = args.services.clone() {
        return multi::run(args, &file);
    }
    let token = std::env::var("STROM_SCHEDULER_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    // Refused before anything starts (no store lock taken, no task launched).
    if args.api_auth == api::ApiAuth::All && token.is_none() {
        bail!("--api-auth all needs STROM_SCHEDULER_TOKEN");
    }
    let options = options_json(&args)?;
    let ports = parse_ports(&args.ports)?;
    let OpenedService {
        mut scheduler,
        base_env,
        role,
    } = open_service(
        &args,
        &args.service,
        options,
        &args.state_dir.clone(),
        true,
        None,
    )?;
    let engine = match (args.engine, &args.master) {
        (engines::EngineKind::Mesos, Some(master)) => {
            // Tasks get their secrets by reference from the agents' secret resolver (DC/OS's
            // way); the engine checks the namespace rule and never reads a value.
            if args.secret_store.is_some() {
                eprintln!("warning: --secret-store is not used with --engine mesos: the agents' secret resolver reads the secrets");
            }
            // The master assigns the framework id at the first subscription; the driver stores
            // it before any call, and every later subscription uses the stored one.
            let spec = scheduler.spec();
            let mut engine = MesosEngine::new(MesosConfig {
                master: master.clone(),
                settings: FrameworkSettings {
                    name: spec.name.clone(),
                    user: spec
                        .scheduler
                        .user
                        .clone()
                        .unwrap_or_else(|| "nobody".into()),
                    role,
                    principal: spec.scheduler.principal.clone(),
                    failover_timeout_seconds: args.failover_timeout as f64,
                },
                framework_id: scheduler.framework_id()?,
                session: SessionConfig::default(),
                max_record_bytes: 64 << 20,
            })
            .context("cannot start the Mesos engine")?;
            engine.set_spec(spec);
            eprintln!("engine: Mesos master {master}");
            engines::ServiceEngine::Mesos(engine)
        }
        (engines::EngineKind::Mesos, None) => bail!("--engine mesos needs --master URL"),
        (engines::EngineKind::Local, _) => {
            // The local engine registers the service as a framework like a Mesos master
            // would: a new id the first time, the stored one on every restart.
            let framework_id = match scheduler.framework_id()? {
                Some(id) => id,
                None => format!("{}-0000", uuid::Uuid::new_v4()),
            };
            scheduler.registered(&framework_id)?;
            let mut engine_config =
                LocalEngineConfig::this_machine(&args.state_dir.join("engine"), args.agents, ports);
            engine_config.die_with_engine = args.tasks_die_with_scheduler;
            engine_config.check_interval_max_ms = args.check_interval_max_ms;
            engine_config.secrets = secret_access(&args, scheduler.spec())?;
            engine_config.add_mounts(parse_mounts(&args.mounts)?);
            let mut engine =
                LocalEngine::open(engine_config).context("cannot start the local engine")?;
            engine.set_spec(scheduler.spec());
            engine.restore_reservations(scheduler.tasks().values().map(|r| &r.info));
            engines::ServiceEngine::Local(engine)
        }
    };
    let name = scheduler.spec().name.trim_start_matches('/').to_string();
    let core = Arc::new(Mutex::new(Core {
        scheduler,
        base_env,
        service: args.service.clone(),
        offer_timer: metrics::OfferTimer::new(),
        engine,
        started: Instant::now(),
        removed: false,
    }));

    let (runtime, listener) = listen(&args)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<String>();
    // SDK_UNINSTALL (as on DC/OS): uninstall the service, then exit.
    let uninstall = std::env::var("SDK_UNINSTALL").is_ok_and(|v| !v.is_empty());
    // The Mesos engine's subscriptions start reconciliation through `drive_once`.
    let subscribe_at_start = args.engine == engines::EngineKind::Local;
    let driver_core = Arc::clone(&core);
    std::thread::Builder::new()
        .name("scheduler-driver".into())
        .spawn(move || drive(driver_core, subscribe_at_start, uninstall, stop_tx))?;
    let health_core = Arc::clone(&core);
    std::thread::Builder::new()
        .name("cluster-health".into())
        .spawn(move || health::report_forever(health_core))?;
    let router = api::services_router(&[(name, Arc::clone(&core))], token, args.api_auth);
    let failure = serve(&runtime, listener, router, stop_rx)?;
    // Release the store's lock now (the ZooKeeper store's lock node would otherwise outlive
    // the process until its session expires).
    core.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .scheduler
        .persister()
        .close();
    match failure {
        Some(reason) => Err(anyhow!(reason)),
        None => Ok(()),
    }
}

/// Starts the API's runtime and binds `--api`; the bound address is printed and written to
/// `<state-dir>/api-address`.
pub(crate) fn listen(
    args: &RunArgs,
) -> anyhow::Result<(tokio::runtime::Runtime, tokio::net::TcpListener)> {
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
    Ok((runtime, listener))
}

/// Serves `router` until the driver sends a stop reason, SIGINT or SIGTERM; returns the
/// reason when it was a state store failure.
pub(crate) fn serve(
    runtime: &tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    router: axum::Router,
    stop_rx: tokio::sync::oneshot::Receiver<String>,
) -> anyhow::Result<Option<String>> {
    let failure = Arc::new(Mutex::new(None::<String>));
    let failure_seen = Arc::clone(&failure);
    runtime.block_on(async move {
        let shutdown = async move {
            tokio::select! {
                reason = stop_rx => {
                    let reason = reason.unwrap_or_default();
                    eprintln!("scheduler stopping: {reason}");
                    if reason.starts_with(STORE_FAILED) {
                        *failure_seen.lock().expect("failure lock") = Some(reason);
                    }
                }
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate() => {}
            }
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    })?;
    let failure = failure.lock().expect("failure lock").take();
    Ok(failure)
}

/// How a stop reason for a failed state store begins (the process then exits 2).
pub(crate) const STORE_FAILED: &str = "the state store failed";

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// The driver thread: subscribe (reconciliation; the Mesos engine's subscriptions do it in
/// `drive_once`), then poll and tick forever. It spawns every task, so with
/// `--tasks-die-with-scheduler` its exit is what kills them.
fn drive(
    core: Arc<Mutex<Core>>,
    subscribe_at_start: bool,
    uninstall: bool,
    stop: tokio::sync::oneshot::Sender<String>,
) {
    {
        let mut guard = core.lock().expect("driver lock");
        let core = &mut *guard;
        let now_ms = core.now_ms();
        if subscribe_at_start {
            let effects = core.scheduler.subscribed(now_ms);
            core.engine.apply(&effects, now_ms);
        }
        if uninstall {
            match core.scheduler.uninstall(now_ms) {
                Ok(effects) => core.engine.apply(&effects, now_ms),
                Err(error) => {
                    let _ = stop.send(format!("{STORE_FAILED}: {error}"));
                    return;
                }
            }
        }
    }
    loop {
        let outcome = {
            let mut guard = core.lock().expect("driver lock");
            let now_ms = guard.now_ms();
            let Core {
                scheduler,
                engine,
                offer_timer,
                ..
            } = &mut *guard;
            drive_once_observed(scheduler, engine, now_ms, &mut |kind, took| {
                if kind == InputKind::Offers {
                    offer_timer.observe(took);
                }
            })
        };
        match outcome {
            Ok(false) => {}
            Ok(true) => {
                let _ = stop.send("the service was uninstalled".into());
                return;
            }
            Err(error) => {
                let _ = stop.send(format!("{STORE_FAILED}: {error}"));
                return;
            }
        }
        std::thread::sleep(DRIVE_INTERVAL);
    }
}
