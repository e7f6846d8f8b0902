//! Evaluating one offer against one pod instance's requirement, stage by stage.
//!
//! Every stage runs even after one fails, so the record says everything that is wrong with the
//! offer at once ("failed 3 of 7 evaluation stages"). A passing offer yields the task infos and
//! the RESERVE / CREATE / LAUNCH_GROUP operations. A relaunch in place reuses the instance's
//! reservations by resource id and must find its volume; a first launch (or a permanent
//! replacement) reserves new resources and creates a new volume. Ids come from the caller.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::offer::placement::{self, PlacedInstance};
use crate::offer::{Accepted, Offer, OfferOutcome, Operation, PodRequirement, StageOutcome};
use crate::resources::{
    fixed, DiskInfo, DiskSource, PortRange, Reservation, Resource, ResourceValue,
};
use crate::spec::{render, ServiceSpec, VolumeSpec, VolumeType};
use crate::task::TaskInfo;

/// What evaluation needs besides the offer and the requirement.
pub struct EvaluationContext<'a> {
    /// The target spec.
    pub spec: &'a ServiceSpec,
    /// The target config id (recorded in the task infos).
    pub config_id: Uuid,
    /// The role reservations are made for.
    pub role: &'a str,
    /// Other pod instances already placed, for placement rules.
    pub placed: &'a [PlacedInstance],
}

/// The offer's resources as evaluation consumes them.
struct Pool {
    resources: Vec<Resource>,
}

impl Pool {
    fn take_reserved(&mut self, id: Uuid) -> Option<Resource> {
        let index = self
            .resources
            .iter()
            .position(|r| r.resource_id() == Some(id))?;
        Some(self.resources.remove(index))
    }

    fn unreserved_amount(&self, name: &str, source: Option<&DiskSource>) -> f64 {
        self.resources
            .iter()
            .filter(|r| r.name == name && r.reservation.is_none())
            .filter(|r| source.is_none_or(|s| r.disk.as_ref().map(|d| &d.source) == Some(s)))
            .map(Resource::amount)
            .sum()
    }

    /// Takes `amount` of an unreserved scalar (for disk: from the ROOT disk).
    fn take_scalar(&mut self, name: &str, amount: f64) -> Option<Resource> {
        let amount = fixed(amount);
        let resource = self.resources.iter_mut().find(|r| {
            r.name == name
                && r.reservation.is_none()
                && r.disk.as_ref().is_none_or(|d| d.source == DiskSource::Root)
                && r.amount() + 0.0005 >= amount
        })?;
        let left = fixed(resource.amount() - amount);
        resource.value = ResourceValue::Scalar(left);
        let mut taken = resource.clone();
        taken.value = ResourceValue::Scalar(amount);
        Some(taken)
    }

    /// The size of the largest unreserved MOUNT disk, if any.
    fn largest_unreserved_mount(&self) -> Option<f64> {
        self.resources
            .iter()
            .filter(|r| {
                r.name == "disk"
                    && r.reservation.is_none()
                    && matches!(
                        r.disk.as_ref().map(|d| &d.source),
                        Some(DiskSource::Mount { .. })
                    )
            })
            .map(Resource::amount)
            .max_by(f64::total_cmp)
    }

    /// Takes a whole unreserved MOUNT disk of at least `size` MB (the smallest that fits).
    fn take_mount(&mut self, size: f64) -> Option<Resource> {
        let index = self
            .resources
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.name == "disk"
                    && r.reservation.is_none()
                    && matches!(
                        r.disk.as_ref().map(|d| &d.source),
                        Some(DiskSource::Mount { .. })
                    )
                    && r.amount() + 0.0005 >= size
            })
            .min_by(|(_, a), (_, b)| a.amount().total_cmp(&b.amount()))
            .map(|(index, _)| index)?;
        Some(self.resources.remove(index))
    }

    /// Takes one unreserved port: `wanted`, or the lowest offered.
    fn take_port(&mut self, wanted: Option<u16>) -> Option<u16> {
        for resource in &mut self.resources {
            if resource.name != "ports" || resource.reservation.is_some() {
                continue;
            }
            let ResourceValue::Ranges(ranges) = &mut resource.value else {
                continue;
            };
            let found = ranges
                .iter()
                .enumerate()
                .find_map(|(index, range)| match wanted {
                    Some(port) if range.begin <= port && port <= range.end => Some((index, port)),
                    None if range.begin <= range.end => Some((index, range.begin)),
                    _ => None,
                });
            if let Some((index, port)) = found {
                let range = ranges.remove(index);
                if range.begin < port {
                    ranges.push(PortRange {
                        begin: range.begin,
                        end: port - 1,
                    });
                }
                if port < range.end {
                    ranges.push(PortRange {
                        begin: port + 1,
                        end: range.end,
                    });
                }
                ranges.sort_by_key(|r| r.begin);
                return Some(port);
            }
        }
        None
    }
}

/// Collects one stage's verdict.
struct Stages(Vec<StageOutcome>);

impl Stages {
    fn record(&mut self, stage: &'static str, failures: Vec<String>, passed_reason: String) {
        let passed = failures.is_empty();
        let reason = if passed {
            passed_reason
        } else {
            failures.join("; ")
        };
        self.0.push(StageOutcome {
            stage,
            passed,
            reason,
        });
    }

    fn all_passed(&self) -> bool {
        self.0.iter().all(|s| s.passed)
    }
}

/// Evaluates `offer` for `requirement`. Returns the per-stage record and, when every stage
/// passed, what to persist and send.
pub fn evaluate(
    context: &EvaluationContext<'_>,
    requirement: &PodRequirement,
    offer: &Offer,
    ids: &mut dyn FnMut() -> Uuid,
) -> (OfferOutcome, Option<Accepted>) {
    let instance = &requirement.instance;
    let pod = context
        .spec
        .pod(&instance.pod)
        .expect("requirements are built from pods of the target spec");
    let mut stages = Stages(Vec::new());
    let mut pool = Pool {
        resources: offer.resources.clone(),
    };
    let previous = requirement.previous.as_ref();
    let reservation = |ids: &mut dyn FnMut() -> Uuid| Reservation {
        role: context.role.to_string(),
        principal: context.spec.scheduler.principal.clone(),
        resource_id: ids(),
    };
    // Resources newly reserved by this launch, and volumes newly created.
    let mut to_reserve: Vec<Resource> = Vec::new();
    let mut to_create: Vec<Resource> = Vec::new();
    let mut task_resources: BTreeMap<String, Vec<Resource>> = BTreeMap::new();
    let mut task_ports: BTreeMap<String, BTreeMap<String, u16>> = BTreeMap::new();

    // agent
    let agent_failures = match previous {
        Some(previous) if previous.agent_id != offer.agent_id => vec![format!(
            "{}'s reservations and volume are on agent {}",
            instance.name(),
            previous.agent_id
        )],
        _ => Vec::new(),
    };
    stages.record(
        "agent",
        agent_failures,
        match previous {
            Some(_) => "relaunch in place on this agent".into(),
            None => "any agent".into(),
        },
    );

    // placement
    let placement_failures = match previous {
        Some(_) => Vec::new(),
        None => {
            let rules = pod
                .placement_rules(&instance.pod)
                .expect("placement was checked when the spec was loaded");
            placement::check(&rules, &instance.pod, offer, context.placed)
        }
    };
    stages.record(
        "placement",
        placement_failures,
        "placement rules pass".into(),
    );

    // cpus and mem
    for (stage, name) in [("cpus", "cpus"), ("mem", "mem")] {
        let mut failures = Vec::new();
        for task_name in &requirement.tasks {
            let task = pod
                .tasks
                .get(task_name)
                .expect("step tasks exist in the pod");
            let need = if name == "cpus" {
                task.cpus
            } else {
                task.memory as f64
            };
            let reused = previous
                .and_then(|p| p.task_resources.get(task_name))
                .and_then(|resources| {
                    resources
                        .iter()
                        .find(|r| r.name == name && (r.amount() - fixed(need)).abs() < 0.0005)
                })
                .and_then(|r| r.resource_id())
                .and_then(|id| pool.take_reserved(id));
            let taken = reused.or_else(|| {
                let available = pool.unreserved_amount(name, None);
                match pool.take_scalar(name, need) {
                    Some(resource) => {
                        let reserved = resource.reserved(reservation(ids));
                        to_reserve.push(reserved.clone());
                        Some(reserved)
                    }
                    None => {
                        failures.push(format!(
                            "{task_name} needs {need} {name}, the offer has {available} unreserved"
                        ));
                        None
                    }
                }
            });
            task_resources
                .entry(task_name.clone())
                .or_default()
                .extend(taken);
        }
        stages.record(stage, failures, format!("{name} fit"));
    }

    // ports
    let mut port_failures = Vec::new();
    for task_name in &requirement.tasks {
        let task = pod
            .tasks
            .get(task_name)
            .expect("step tasks exist in the pod");
        // Ports are reserved one resource per port, in the order the task lists them.
        let previous_ports: Vec<&Resource> = previous
            .and_then(|p| p.task_resources.get(task_name))
            .map(|resources| resources.iter().filter(|r| r.name == "ports").collect())
            .unwrap_or_default();
        for (index, (port_name, port_spec)) in task.ports.iter().enumerate() {
            let wanted = match port_spec.wanted(instance.index) {
                Ok(wanted) => wanted,
                Err(port) => {
                    port_failures.push(format!(
                        "{task_name} needs port {port} ({port_name}), which does not exist"
                    ));
                    continue;
                }
            };
            let reused = previous_ports
                .get(index)
                .filter(|r| match &r.value {
                    ResourceValue::Ranges(ranges) => {
                        ranges.len() == 1 && wanted.is_none_or(|port| ranges[0].begin == port)
                    }
                    ResourceValue::Scalar(_) => false,
                })
                .and_then(|r| r.resource_id())
                .and_then(|id| pool.take_reserved(id));
            let taken = match reused {
                Some(resource) => Some(resource),
                None => match pool.take_port(wanted) {
                    Some(port) => {
                        let reserved = Resource::ports(&[(port, port)]).reserved(reservation(ids));
                        to_reserve.push(reserved.clone());
                        Some(reserved)
                    }
                    None => {
                        port_failures.push(match wanted {
                                Some(port) => format!("{task_name} needs port {port} ({port_name}), which the offer lacks"),
                                None => format!("{task_name} needs a port ({port_name}), the offer has none free"),
                            });
                        None
                    }
                },
            };
            if let Some(resource) = taken {
                if let ResourceValue::Ranges(ranges) = &resource.value {
                    task_ports
                        .entry(task_name.clone())
                        .or_default()
                        .insert(port_name.to_string(), ranges[0].begin);
                }
                task_resources
                    .entry(task_name.clone())
                    .or_default()
                    .push(resource);
            }
        }
    }
    stages.record("ports", port_failures, "ports fit".into());

    // volume
    let mut volume_failures = Vec::new();
    let mut pod_volumes: Vec<Resource> = Vec::new();
    let mut task_volumes: BTreeMap<String, Vec<Resource>> = BTreeMap::new();
    let mut wanted: Vec<(Option<String>, &VolumeSpec)> = Vec::new();
    wanted.extend(pod.volume.iter().map(|v| (None, v)));
    wanted.extend(pod.volumes.iter().map(|(_, v)| (None, v)));
    for task_name in &requirement.tasks {
        let task = pod
            .tasks
            .get(task_name)
            .expect("step tasks exist in the pod");
        wanted.extend(task.volume.iter().map(|v| (Some(task_name.clone()), v)));
    }
    for (owner, volume) in wanted {
        let taken = match previous {
            Some(previous) => {
                let old = previous.volumes().into_iter().find(|r| {
                    r.disk.as_ref().and_then(|d| d.container_path.as_deref())
                        == Some(volume.path.as_str())
                });
                match old.and_then(|r| r.resource_id()) {
                    Some(id) => {
                        let found = pool.take_reserved(id);
                        if found.is_none() {
                            volume_failures.push(format!(
                                "the offer does not hold {}'s volume {} (resource {id})",
                                instance.name(),
                                volume.path
                            ));
                        }
                        found
                    }
                    None => {
                        volume_failures.push(format!(
                            "{} has no recorded volume at {}",
                            instance.name(),
                            volume.path
                        ));
                        None
                    }
                }
            }
            None => {
                let size = volume.size as f64;
                let found = match volume.volume_type {
                    VolumeType::Root => pool.take_scalar("disk", size),
                    VolumeType::Mount => pool.take_mount(size),
                };
                match found {
                    Some(disk) => {
                        let mut reserved = disk.reserved(reservation(ids));
                        to_reserve.push(reserved.clone());
                        let source = reserved
                            .disk
                            .as_ref()
                            .map(|d| d.source.clone())
                            .unwrap_or(DiskSource::Root);
                        reserved.disk = Some(DiskInfo {
                            source,
                            persistence_id: Some(ids().to_string()),
                            container_path: Some(volume.path.clone()),
                        });
                        to_create.push(reserved.clone());
                        Some(reserved)
                    }
                    None => {
                        volume_failures.push(match volume.volume_type {
                            VolumeType::Root => format!(
                                "needs a ROOT volume of {} MB, the offer has {} MB of unreserved \
                                 ROOT disk",
                                volume.size,
                                pool.unreserved_amount("disk", Some(&DiskSource::Root)),
                            ),
                            VolumeType::Mount => match pool.largest_unreserved_mount() {
                                Some(largest) => format!(
                                    "needs a MOUNT volume of {} MB, the offer's largest \
                                     unreserved MOUNT disk has {largest} MB",
                                    volume.size
                                ),
                                None => format!(
                                    "needs a MOUNT volume of {} MB, the offer has no unreserved \
                                     MOUNT disk",
                                    volume.size
                                ),
                            },
                        });
                        None
                    }
                }
            }
        };
        if let Some(resource) = taken {
            match owner {
                None => pod_volumes.push(resource),
                Some(task) => task_volumes.entry(task).or_default().push(resource),
            }
        }
    }
    stages.record("volume", volume_failures, "volumes fit".into());

    // launch
    let mut launch_failures = Vec::new();
    let mut infos = Vec::new();
    if stages.all_passed() {
        for task_name in &requirement.tasks {
            let task = pod
                .tasks
                .get(task_name)
                .expect("step tasks exist in the pod");
            let name = instance.task_name(task_name);
            let ports = task_ports.remove(task_name).unwrap_or_default();
            let mut env = task.env.clone();
            env.insert("TASK_NAME".into(), name.clone());
            env.insert("POD_INSTANCE_INDEX".into(), instance.index.to_string());
            env.insert("FRAMEWORK_NAME".into(), context.spec.name.clone());
            env.insert("FRAMEWORK_HOST".into(), offer.hostname.clone());
            env.insert("TASK_IP".into(), offer.ip.clone());
            if let Some(zone) = &offer.zone {
                env.insert("ZONE".into(), zone.clone());
            }
            if let Some(region) = &offer.region {
                env.insert("REGION".into(), region.clone());
            }
            for (port_name, port_spec) in task.ports.iter() {
                if let Some(port) = ports.get(port_name) {
                    let key = port_spec.env_key.clone().unwrap_or_else(|| {
                        format!("PORT_{}", port_name.to_ascii_uppercase().replace('-', "_"))
                    });
                    env.insert(key, port.to_string());
                }
            }
            let mut files = BTreeMap::new();
            for (config_name, config) in task.configs.iter() {
                match render::render(&config.template, &config.content, &env) {
                    Ok(text) => {
                        files.insert(config.dest.clone(), text);
                    }
                    Err(error) => {
                        launch_failures.push(format!("{name} config {config_name}: {error}"))
                    }
                }
            }
            let mut resources = task_resources.remove(task_name).unwrap_or_default();
            resources.extend(pod_volumes.iter().cloned());
            resources.extend(task_volumes.remove(task_name).unwrap_or_default());
            infos.push(TaskInfo {
                task_id: format!("{name}__{}", ids()),
                name,
                instance: instance.clone(),
                task: task_name.clone(),
                goal: task.goal,
                config_id: context.config_id,
                agent_id: offer.agent_id.clone(),
                hostname: offer.hostname.clone(),
                zone: offer.zone.clone(),
                resources,
                ports,
                env,
                cmd: if requirement.paused {
                    crate::offer::PAUSE_CMD.to_string()
                } else {
                    task.cmd.clone()
                },
                files,
                secrets: pod.secrets.iter().map(|(_, s)| s.clone()).collect(),
                permanently_failed: false,
                paused: requirement.paused,
            });
        }
    } else {
        launch_failures.push("an earlier stage failed".into());
    }
    stages.record(
        "launch",
        launch_failures,
        format!("launch {}", instance.name()),
    );

    let outcome = OfferOutcome {
        offer_id: offer.id.clone(),
        agent_id: offer.agent_id.clone(),
        hostname: offer.hostname.clone(),
        pod_instance: instance.name(),
        stages: stages.0,
    };
    if !outcome.passed() {
        return (outcome, None);
    }
    let mut operations = Vec::new();
    if !to_reserve.is_empty() {
        operations.push(Operation::Reserve {
            resources: to_reserve,
        });
    }
    if !to_create.is_empty() {
        operations.push(Operation::Create { volumes: to_create });
    }
    operations.push(Operation::LaunchGroup {
        tasks: infos.clone(),
    });
    (
        outcome,
        Some(Accepted {
            tasks: infos,
            operations,
        }),
    )
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
