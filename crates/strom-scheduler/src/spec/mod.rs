//! The service spec: `svc.yml` rendered with mustache and parsed into a typed [`ServiceSpec`].
//!
//! Owns the SDK's `svc.yml` keys (pods, count, tasks, goal, cmd, cpus, memory, ports, volumes,
//! env, configs, readiness/health checks, placement, plans), `TASKCFG_*` routing into task env,
//! and the checks a spec must pass on its own (every error names the key). It does not know
//! about a previous spec (that is `validate`) or about offers (that is `offer`).

pub mod ensemble;
pub mod kafka;
pub mod options;
pub mod ordered;
pub mod placement;
pub mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use ordered::OrderedMap;
pub use placement::{PlacementField, PlacementOperator, PlacementRule};

/// Why a spec could not be rendered or parsed. Every variant names the key or template at fault.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SpecError {
    /// A template does not parse.
    #[error("{template}: {reason}")]
    Template { template: String, reason: String },
    /// A template references variables that are not set.
    #[error("{template}: missing template values: {} (set them in the options or environment)", names.join(", "))]
    MissingValues {
        template: String,
        names: Vec<String>,
    },
    /// The rendered YAML does not match the svc.yml schema (the message holds the key path).
    #[error("svc.yml: {0}")]
    Yaml(String),
    /// A key holds a value the scheduler refuses.
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// A whole service: what `svc.yml` says after rendering. Stored as JSON by the config store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceSpec {
    /// The service name (`FRAMEWORK_NAME`); also the state store's root.
    pub name: String,
    /// Link shown by UIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_url: Option<String>,
    /// Scheduler settings.
    #[serde(default)]
    pub scheduler: SchedulerSpec,
    /// Pod types, in deploy order.
    pub pods: OrderedMap<PodSpec>,
    /// Plans by name (`deploy`, `update`, custom ones).
    #[serde(default)]
    pub plans: OrderedMap<PlanSpec>,
}

/// The `scheduler` key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SchedulerSpec {
    /// The principal reservations are made with.
    #[serde(default)]
    pub principal: String,
    /// The OS user tasks run as.
    #[serde(default)]
    pub user: Option<String>,
    /// ZooKeeper for the state store; unset means the scheduler's default store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zookeeper: Option<String>,
}

/// One pod type: `count` instances of a group of tasks sharing resources and volumes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PodSpec {
    /// Number of instances (`kafka-0`, `kafka-1`, …).
    pub count: u32,
    /// Whether `count` may shrink (the surplus instances are then decommissioned).
    #[serde(default)]
    pub allow_decommission: bool,
    /// Marathon-style placement rules as written (see [`placement`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// The OS user for this pod's tasks, overriding the scheduler's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A role whose pre-reserved resources this pod uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_reserved_role: Option<String>,
    /// The pod's single volume (`volume:`), shared by its tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeSpec>,
    /// Further named volumes (`volumes:`).
    #[serde(default)]
    pub volumes: OrderedMap<VolumeSpec>,
    /// Secrets every task of the pod receives, by entry name (see [`crate::secrets`]).
    #[serde(default, skip_serializing_if = "OrderedMap::is_empty")]
    pub secrets: OrderedMap<SecretSpec>,
    /// The pod's tasks.
    pub tasks: OrderedMap<TaskSpec>,
}

/// A pod's `secrets:` entry: which secret, delivered as which env variable and/or sandbox file.
/// A reference only: the value never enters a spec, a task info or the state store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretSpec {
    /// The secret's path in the secret store (`kafka/sasl-password`).
    pub secret: String,
    /// The environment variable that receives the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_key: Option<String>,
    /// The sandbox-relative file that receives the value (mode 0400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// A persistent volume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VolumeSpec {
    /// Path inside the sandbox where the volume appears.
    pub path: String,
    /// ROOT (a slice of the agent's root disk) or MOUNT (a whole dedicated disk).
    #[serde(rename = "type")]
    pub volume_type: VolumeType,
    /// Size in MB; a MOUNT disk may be larger, never smaller.
    pub size: u64,
}

/// The SDK's disk types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeType {
    /// An exact-size slice of the root filesystem.
    #[serde(rename = "ROOT")]
    Root,
    /// A whole mounted disk, reserved atomically.
    #[serde(rename = "MOUNT")]
    Mount,
}

impl VolumeType {
    /// The svc.yml spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeType::Root => "ROOT",
            VolumeType::Mount => "MOUNT",
        }
    }
}

/// What a task's success means (`GoalState.java`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Goal {
    /// Keep running; restart when it stops.
    #[serde(rename = "RUNNING")]
    Running,
    /// Run to completion once per configuration.
    #[serde(rename = "FINISH")]
    Finish,
    /// Run to completion once, ever.
    #[serde(rename = "ONCE")]
    Once,
}

/// One task of a pod.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TaskSpec {
    /// Goal state.
    pub goal: Goal,
    /// Shell command run in the sandbox.
    pub cmd: String,
    /// CPU shares.
    pub cpus: f64,
    /// Memory in MB.
    pub memory: u64,
    /// Whether the pod fails when this task fails (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    /// Named ports, in assignment order.
    #[serde(default)]
    pub ports: OrderedMap<PortSpec>,
    /// Environment, including what `TASKCFG_*` routing added.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Config files rendered into the sandbox from the task's environment.
    #[serde(default)]
    pub configs: OrderedMap<ConfigFileSpec>,
    /// Readiness check: the task's step completes only once it passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_check: Option<CheckSpec>,
    /// Health check: a failing task is killed and recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<CheckSpec>,
    /// Seconds between SIGTERM and SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_grace_period: Option<u32>,
    /// A task-level volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeSpec>,
    /// Labels attached to the task.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A named port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PortSpec {
    /// The port; 0 asks for any port from the offer.
    pub port: u16,
    /// The env variable that receives the assigned port (default `PORT_<NAME>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_key: Option<String>,
    /// Whether `/v1/endpoints` lists it.
    #[serde(default)]
    pub advertise: bool,
    /// A stable virtual address for the port across instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<VipSpec>,
    /// Not in the SDK: with a fixed `port`, instance `i` asks for `port + i × stride` (0: every
    /// instance the same port). The embedded ZooKeeper ensemble uses it so that every server's
    /// ports are known before any launches (each zoo.cfg names them all).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stride: u16,
}

fn is_zero(value: &u16) -> bool {
    *value == 0
}

impl PortSpec {
    /// The port instance `index` asks for: `None` for any port, or a fixed one (`Err` with the
    /// port that does not exist when `port + index × stride` passes 65535).
    pub fn wanted(&self, index: u32) -> Result<Option<u16>, u64> {
        if self.port == 0 {
            return Ok(None);
        }
        let port = u64::from(self.port) + u64::from(index) * u64::from(self.stride);
        u16::try_from(port).map(Some).map_err(|_| port)
    }
}

/// A virtual IP (`<prefix>.<service>.l4lb…:<port>` on DC/OS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipSpec {
    /// Name prefix.
    pub prefix: String,
    /// Port clients use.
    pub port: u16,
}

/// A config file template. `content` is the template text, loaded at spec load so that a
/// template change is a spec change (and rolls the tasks that use it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFileSpec {
    /// Template file name beside `svc.yml`.
    pub template: String,
    /// Destination relative to the sandbox.
    pub dest: String,
    /// The template text (filled in by the loader, not written in svc.yml).
    #[serde(default)]
    pub content: String,
}

/// A readiness or health check command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CheckSpec {
    /// Shell command; exit 0 passes.
    pub cmd: String,
    /// Seconds between runs.
    pub interval: u32,
    /// Seconds before the first run.
    #[serde(default)]
    pub delay: u32,
    /// Seconds before a run counts as failed.
    pub timeout: u32,
    /// Health only: seconds after start during which failures do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<u32>,
    /// Health only: failures in a row that kill the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_consecutive_failures: Option<u32>,
}

/// A plan's or phase's strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StrategyKind {
    /// One child at a time, in order.
    #[default]
    #[serde(rename = "serial")]
    Serial,
    /// All children at once.
    #[serde(rename = "parallel")]
    Parallel,
    /// The first child after an operator's `continue`, the rest serially after a second one.
    #[serde(rename = "serial-canary")]
    SerialCanary,
    /// The first child after an operator's `continue`, the rest in parallel after a second one.
    #[serde(rename = "parallel-canary")]
    ParallelCanary,
}

/// A plan in `svc.yml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// Strategy over the phases (serial or parallel).
    #[serde(default)]
    pub strategy: StrategyKind,
    /// Phases in order.
    pub phases: OrderedMap<PhaseSpec>,
}

/// A phase: one step per instance of `pod`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// Strategy over the steps.
    #[serde(default)]
    pub strategy: StrategyKind,
    /// The pod type whose instances the steps deploy.
    pub pod: String,
    /// Which tasks each instance launches: `[{0: [[init],[main]]}, {default: [[main]]}]`.
    /// Unset means all of the pod's tasks together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<BTreeMap<String, Vec<Vec<String>>>>>,
}

impl ServiceSpec {
    /// Parses rendered `svc.yml`, loads config templates through `template_source`, routes
    /// `TASKCFG_*` variables of `env` into task env, and checks the spec on its own.
    pub fn parse(
        rendered_yaml: &str,
        env: &BTreeMap<String, String>,
        template_source: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServiceSpec, SpecError> {
        let mut spec: ServiceSpec = serde_yaml_ng::from_str(rendered_yaml)
            .map_err(|error| SpecError::Yaml(error.to_string()))?;
        for (pod_name, pod) in spec.pods.iter_mut() {
            let routed = task_env_for_pod(pod_name, env);
            for (task_name, task) in pod.tasks.iter_mut() {
                task.env.extend(routed.clone());
                for (config_name, config) in task.configs.iter_mut() {
                    config.content =
                        template_source(&config.template).ok_or_else(|| SpecError::Invalid {
                            key: format!(
                                "pods.{pod_name}.tasks.{task_name}.configs.{config_name}.template"
                            ),
                            reason: format!("no template file named {:?}", config.template),
                        })?;
                }
            }
        }
        spec.check()?;
        Ok(spec)
    }

    /// Checks what a spec must satisfy on its own; errors name the key.
    pub fn check(&self) -> Result<(), SpecError> {
        let invalid = |key: String, reason: &str| SpecError::Invalid {
            key,
            reason: reason.to_string(),
        };
        if self.name.is_empty() {
            return Err(invalid("name".into(), "must not be empty"));
        }
        if self.pods.is_empty() {
            return Err(invalid("pods".into(), "must define at least one pod"));
        }
        for (pod_name, pod) in self.pods.iter() {
            let key = format!("pods.{pod_name}");
            if pod_name.is_empty()
                || !pod_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(invalid(key, "pod names use letters, digits and '-'"));
            }
            pod.placement_rules(pod_name)?;
            if pod.tasks.is_empty() {
                return Err(invalid(
                    format!("{key}.tasks"),
                    "must define at least one task",
                ));
            }
            for (volume_key, volume) in pod.all_volumes() {
                if volume.size == 0 {
                    return Err(invalid(
                        format!("{key}.{volume_key}.size"),
                        "must be positive",
                    ));
                }
            }
            let mut secret_files = Vec::new();
            for (secret_name, secret) in pod.secrets.iter() {
                let secret_key = format!("{key}.secrets.{secret_name}");
                crate::secrets::check_spec(&self.name, &secret_key, secret)
                    .map_err(|(key, reason)| SpecError::Invalid { key, reason })?;
                if let Some(file) = &secret.file {
                    if secret_files.contains(&file) {
                        return Err(invalid(
                            format!("{secret_key}.file"),
                            "two secrets of a pod cannot be delivered to the same file",
                        ));
                    }
                    secret_files.push(file);
                }
                let shadowed = secret.env_key.as_ref().and_then(|env_key| {
                    pod.tasks
                        .iter()
                        .find(|(_, task)| task.env.contains_key(env_key))
                });
                if let Some((task_name, _)) = shadowed {
                    return Err(invalid(
                        format!("{secret_key}.env-key"),
                        &format!(
                            "task {task_name:?} already sets this variable in its env; a secret \
                             may not replace a spec's variable"
                        ),
                    ));
                }
            }
            let mut port_names = Vec::new();
            for (task_name, task) in pod.tasks.iter() {
                let key = format!("{key}.tasks.{task_name}");
                if !(task.cpus > 0.0 && task.cpus.is_finite()) {
                    return Err(invalid(format!("{key}.cpus"), "must be a positive number"));
                }
                if task.memory == 0 {
                    return Err(invalid(format!("{key}.memory"), "must be positive (MB)"));
                }
                for (port_name, _) in task.ports.iter() {
                    if port_names.contains(&port_name) {
                        return Err(invalid(
                            format!("{key}.ports.{port_name}"),
                            "port names must be unique within a pod",
                        ));
                    }
                    port_names.push(port_name);
                }
            }
        }
        for (plan_name, plan) in self.plans.iter() {
            if matches!(
                plan.strategy,
                StrategyKind::SerialCanary | StrategyKind::ParallelCanary
            ) {
                return Err(invalid(
                    format!("plans.{plan_name}.strategy"),
                    "a plan's strategy is serial or parallel; canaries are phase strategies",
                ));
            }
            for (phase_name, phase) in plan.phases.iter() {
                let key = format!("plans.{plan_name}.phases.{phase_name}");
                let Some(pod) = self.pods.get(&phase.pod) else {
                    return Err(invalid(
                        format!("{key}.pod"),
                        "names no pod of this service",
                    ));
                };
                for rule in phase.steps.iter().flatten() {
                    for task in rule.values().flatten().flatten() {
                        if pod.tasks.get(task).is_none() {
                            return Err(SpecError::Invalid {
                                key: format!("{key}.steps"),
                                reason: format!(
                                    "task {task:?} is not a task of pod {:?}",
                                    phase.pod
                                ),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The pod type named `name`.
    pub fn pod(&self, name: &str) -> Option<&PodSpec> {
        self.pods.get(name)
    }
}

impl PodSpec {
    /// The parsed placement rules (checked when the spec was loaded).
    pub fn placement_rules(&self, pod_name: &str) -> Result<Vec<PlacementRule>, SpecError> {
        placement::parse_placement(pod_name, self.placement.as_deref().unwrap_or(""))
    }

    /// Every volume of the pod and its tasks, keyed by where it is written in the spec.
    pub fn all_volumes(&self) -> Vec<(String, &VolumeSpec)> {
        let mut volumes: Vec<(String, &VolumeSpec)> = Vec::new();
        if let Some(volume) = &self.volume {
            volumes.push(("volume".into(), volume));
        }
        for (name, volume) in self.volumes.iter() {
            volumes.push((format!("volumes.{name}"), volume));
        }
        for (task_name, task) in self.tasks.iter() {
            if let Some(volume) = &task.volume {
                volumes.push((format!("tasks.{task_name}.volume"), volume));
            }
        }
        volumes
    }

    /// Whether two pod specs launch the same tasks: equal but for `count`, `placement` and
    /// `allow-decommission`, which change where or how many instances run, not what each runs.
    /// Instances of an equivalent pod are relabelled to a new target without a restart.
    pub fn equivalent(&self, other: &PodSpec) -> bool {
        let strip = |pod: &PodSpec| PodSpec {
            count: 0,
            placement: None,
            allow_decommission: false,
            ..pod.clone()
        };
        strip(self) == strip(other)
    }

    /// Total CPUs of all tasks.
    pub fn cpus(&self) -> f64 {
        self.tasks.iter().map(|(_, t)| t.cpus).sum()
    }

    /// Total memory of all tasks, MB.
    pub fn memory(&self) -> u64 {
        self.tasks.iter().map(|(_, t)| t.memory).sum()
    }
}

/// The environment a pod's tasks receive from the scheduler's: `TASKCFG_ALL_X` as `X`, then
/// `TASKCFG_<POD>_X` as `X` (pod names upper-cased, `-` as `_`), the pod-specific one winning.
pub fn task_env_for_pod(pod: &str, env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let pod_prefix = format!("TASKCFG_{}_", pod.to_ascii_uppercase().replace('-', "_"));
    let mut routed = BTreeMap::new();
    for (name, value) in env {
        if let Some(stripped) = name.strip_prefix("TASKCFG_ALL_") {
            routed.insert(stripped.to_string(), value.clone());
        }
    }
    for (name, value) in env {
        if let Some(stripped) = name.strip_prefix(&pod_prefix) {
            routed.insert(stripped.to_string(), value.clone());
        }
    }
    routed
}

#[cfg(test)]
mod tests;
