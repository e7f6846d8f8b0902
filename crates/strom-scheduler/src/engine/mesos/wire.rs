//! The Mesos v1 scheduler API's JSON (`scheduler.proto`, `mesos.proto` field names): events in,
//! calls out. Events become [`Event`]s (offers as the core's [`Offer`], updates as
//! [`TaskStatus`] plus check results); calls are built from the core's [`Effect`]s and
//! [`Operation`]s: resources with refined `reservations` (role, principal, the SDK's
//! `resource_id` label) and `allocation_info`, disks with `source`/`persistence`/`volume`,
//! LAUNCH_GROUP with a DEFAULT executor (see [`launch_group_json`]).
//!
//! Pure. Decoding never panics: a record that is not a well-formed event is a [`WireError`].
//! Owns no state: which events arrive when is `session.rs`'s business.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::offer::{Offer, Operation};
use crate::resources::{DiskInfo, DiskSource, PortRange, Reservation, Resource, ResourceValue};
use crate::spec::CheckSpec;
use crate::task::{TaskInfo, TaskState, TaskStatus};

/// The SDK's reservation label naming a reservation's owner.
pub const RESOURCE_ID_LABEL: &str = "resource_id";

/// A record that is not a usable event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad Mesos event: {0}")]
pub struct WireError(pub String);

/// A task status update with what the core's [`TaskStatus`] does not carry.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    /// The status (`ready` false: the engine decides it from the check results).
    pub status: TaskStatus,
    /// `check_status.command.exit_code`, when the update carries a command check result.
    pub check_exit_code: Option<i32>,
    /// `healthy`, when set.
    pub healthy: Option<bool>,
    /// `reason` (`REASON_RECONCILIATION`, …).
    pub reason: Option<String>,
}

/// A decoded event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// SUBSCRIBED.
    Subscribed {
        framework_id: String,
        heartbeat_interval_ms: Option<u64>,
    },
    /// OFFERS.
    Offers(Vec<Offer>),
    /// RESCIND.
    Rescind { offer_id: String },
    /// UPDATE.
    Update(Update),
    /// MESSAGE (logged; executors of this service send none).
    Message {
        agent_id: String,
        executor_id: String,
    },
    /// FAILURE: an agent or executor is gone (its tasks' terminal updates follow separately).
    Failure {
        agent_id: Option<String>,
        executor_id: Option<String>,
        status: Option<i64>,
    },
    /// ERROR: the master refused the framework; resubscribe.
    Error { message: String },
    /// HEARTBEAT.
    Heartbeat,
    /// An event this engine does not use (INVERSE_OFFERS, UPDATE_OPERATION_STATUS, …).
    Other(String),
}

fn bad(what: impl Into<String>) -> WireError {
    WireError(what.into())
}

fn id_value<'a>(value: &'a Value, field: &str) -> Result<&'a str, WireError> {
    value
        .get(field)
        .and_then(|id| id.get("value"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("missing {field}.value")))
}

fn opt_id(value: &Value, field: &str) -> Option<String> {
    id_value(value, field).ok().map(str::to_string)
}

/// Decodes one RecordIO record of the event stream.
pub fn parse_event(record: &[u8]) -> Result<Event, WireError> {
    let event: Value = serde_json::from_slice(record).map_err(|e| bad(format!("JSON: {e}")))?;
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no type"))?;
    let body = |field: &str| {
        event
            .get(field)
            .filter(|v| v.is_object())
            .ok_or_else(|| bad(format!("{kind} without {field}")))
    };
    Ok(match kind {
        "SUBSCRIBED" => {
            let subscribed = body("subscribed")?;
            let interval = subscribed
                .get("heartbeat_interval_seconds")
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(|s| (s.min(86_400.0) * 1000.0) as u64);
            Event::Subscribed {
                framework_id: id_value(subscribed, "framework_id")?.to_string(),
                heartbeat_interval_ms: interval,
            }
        }
        "OFFERS" => {
            let offers = body("offers")?
                .get("offers")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            Event::Offers(offers.iter().map(parse_offer).collect::<Result<_, _>>()?)
        }
        "RESCIND" => Event::Rescind {
            offer_id: id_value(body("rescind")?, "offer_id")?.to_string(),
        },
        "UPDATE" => {
            let status = body("update")?
                .get("status")
                .ok_or_else(|| bad("UPDATE without status"))?;
            Event::Update(parse_status(status)?)
        }
        "MESSAGE" => {
            let message = body("message")?;
            Event::Message {
                agent_id: opt_id(message, "agent_id").unwrap_or_default(),
                executor_id: opt_id(message, "executor_id").unwrap_or_default(),
            }
        }
        "FAILURE" => {
            let failure = body("failure")?;
            Event::Failure {
                agent_id: opt_id(failure, "agent_id"),
                executor_id: opt_id(failure, "executor_id"),
                status: failure.get("status").and_then(Value::as_i64),
            }
        }
        "ERROR" => Event::Error {
            message: event
                .get("error")
                .and_then(|e| e.get("message"))
                .or_else(|| event.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_string(),
        },
        "HEARTBEAT" => Event::Heartbeat,
        other => Event::Other(other.to_string()),
    })
}

fn parse_status(status: &Value) -> Result<Update, WireError> {
    let state_name = status
        .get("state")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("status without state"))?;
    let state: TaskState = serde_json::from_value(Value::String(state_name.to_string()))
        .map_err(|_| bad(format!("unknown task state {state_name:?}")))?;
    let reason = status
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    let message = status
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| reason.clone())
        .unwrap_or_default();
    Ok(Update {
        status: TaskStatus {
            task_id: id_value(status, "task_id")?.to_string(),
            agent_id: opt_id(status, "agent_id").unwrap_or_default(),
            state,
            message,
            ready: false,
            uuid: status
                .get("uuid")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .map(str::to_string),
        },
        check_exit_code: status
            .pointer("/check_status/command/exit_code")
            .and_then(Value::as_i64)
            .and_then(|code| i32::try_from(code).ok()),
        healthy: status.get("healthy").and_then(Value::as_bool),
        reason,
    })
}

fn parse_offer(offer: &Value) -> Result<Offer, WireError> {
    let hostname = offer
        .get("hostname")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("offer without hostname"))?
        .to_string();
    let ip = offer
        .pointer("/url/address/ip")
        .and_then(Value::as_str)
        .unwrap_or(&hostname)
        .to_string();
    let fault_domain = |level: &str| {
        offer
            .pointer(&format!("/domain/fault_domain/{level}/name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut attributes = BTreeMap::new();
    for attribute in offer
        .get("attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(name), Some(value)) = (
            attribute.get("name").and_then(Value::as_str),
            attribute_text(attribute),
        ) {
            attributes.insert(name.to_string(), value);
        }
    }
    let resources = offer
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(parse_resource)
        .collect();
    Ok(Offer {
        id: id_value(offer, "id")?.to_string(),
        agent_id: id_value(offer, "agent_id")?.to_string(),
        hostname,
        ip,
        zone: fault_domain("zone"),
        region: fault_domain("region"),
        attributes,
        resources,
    })
}

fn attribute_text(attribute: &Value) -> Option<String> {
    if let Some(text) = attribute.pointer("/text/value").and_then(Value::as_str) {
        return Some(text.to_string());
    }
    if let Some(scalar) = attribute.pointer("/scalar/value").and_then(Value::as_f64) {
        return Some(scalar.to_string());
    }
    let items = attribute.pointer("/set/item").and_then(Value::as_array)?;
    let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
    Some(format!("{{{}}}", items.join(",")))
}

/// The largest scalar amount taken from an offer. Mesos keeps scalars as fixed-point numbers
/// with three decimals; up to here `fixed` gives the same f64 however the amount was printed
/// and read back (beyond 2^52 thousandths it no longer rounds, and beyond 1.8e305 it
/// overflows). 10^12 MB is an exabyte.
const MAX_SCALAR: f64 = 1e12;

/// One offered resource in the core's model, or `None` for what the scheduler cannot use:
/// SET/TEXT values, revocable resources, and reservations that are not dynamic reservations
/// labelled with a `resource_id` (static or other frameworks' reservations).
fn parse_resource(resource: &Value) -> Option<Resource> {
    let name = resource.get("name")?.as_str()?.to_string();
    if resource.get("revocable").is_some() {
        return None;
    }
    let value = match resource.get("type")?.as_str()? {
        "SCALAR" => {
            let amount = resource.pointer("/scalar/value")?.as_f64()?;
            if !(0.0..=MAX_SCALAR).contains(&amount) {
                return None;
            }
            ResourceValue::Scalar(crate::resources::fixed(amount))
        }
        "RANGES" => {
            let ranges = resource.pointer("/ranges/range")?.as_array()?;
            let mut parsed = Vec::new();
            for range in ranges {
                let begin = u16::try_from(range.get("begin")?.as_u64()?).ok()?;
                let end = u16::try_from(range.get("end")?.as_u64()?).ok()?;
                if begin > end {
                    return None;
                }
                parsed.push(PortRange { begin, end });
            }
            ResourceValue::Ranges(parsed)
        }
        _ => return None,
    };
    // Refined reservations: the last one is the reservation for this role.
    let reservation = match resource.get("reservations").and_then(Value::as_array) {
        Some(stack) if !stack.is_empty() => Some(stack.last()?),
        _ => resource.get("reservation"),
    };
    let reservation = match reservation {
        None => None,
        Some(info) => {
            let labels = info.pointer("/labels/labels")?.as_array()?;
            let resource_id = labels.iter().find_map(|label| {
                (label.get("key")?.as_str()? == RESOURCE_ID_LABEL)
                    .then(|| label.get("value")?.as_str()?.parse::<Uuid>().ok())?
            })?;
            let role = info
                .get("role")
                .or_else(|| resource.get("role"))?
                .as_str()?
                .to_string();
            Some(Reservation {
                role,
                principal: info.get("principal")?.as_str()?.to_string(),
                resource_id,
            })
        }
    };
    // Mesos accepts DiskInfo only on `disk` resources; one on any other resource is ignored,
    // so that what we decode is what we would send back.
    let disk = match resource.get("disk").filter(|_| name == "disk") {
        Some(disk) => Some(DiskInfo {
            source: match disk.pointer("/source/type").and_then(Value::as_str) {
                Some("MOUNT") => DiskSource::Mount {
                    root: disk.pointer("/source/mount/root")?.as_str()?.to_string(),
                },
                None | Some("PATH") => DiskSource::Root,
                Some(_) => return None,
            },
            persistence_id: disk
                .pointer("/persistence/id")
                .and_then(Value::as_str)
                .map(str::to_string),
            container_path: disk
                .pointer("/volume/container_path")
                .and_then(Value::as_str)
                .map(str::to_string),
        }),
        None if name == "disk" => Some(DiskInfo {
            source: DiskSource::Root,
            persistence_id: None,
            container_path: None,
        }),
        None => None,
    };
    Some(Resource {
        name,
        value,
        reservation,
        disk,
    })
}

/// A resource as Mesos JSON, allocated to `role` (MULTI_ROLE frameworks must say so).
pub fn resource_json(resource: &Resource, role: &str) -> Value {
    let mut json = json!({
        "name": resource.name,
        "allocation_info": {"role": role},
    });
    match &resource.value {
        ResourceValue::Scalar(amount) => {
            json["type"] = json!("SCALAR");
            json["scalar"] = json!({"value": amount});
        }
        ResourceValue::Ranges(ranges) => {
            json["type"] = json!("RANGES");
            json["ranges"] = json!({"range": ranges
                .iter()
                .map(|r| json!({"begin": r.begin, "end": r.end}))
                .collect::<Vec<_>>()});
        }
    }
    if let Some(reservation) = &resource.reservation {
        json["reservations"] = json!([{
            "type": "DYNAMIC",
            "role": reservation.role,
            "principal": reservation.principal,
            "labels": {"labels": [{
                "key": RESOURCE_ID_LABEL,
                "value": reservation.resource_id.to_string(),
            }]},
        }]);
    }
    if let Some(disk) = &resource.disk {
        let mut disk_json = json!({});
        if let DiskSource::Mount { root } = &disk.source {
            disk_json["source"] = json!({"type": "MOUNT", "mount": {"root": root}});
        }
        if let Some(id) = &disk.persistence_id {
            let principal = resource.reservation.as_ref().map(|r| r.principal.as_str());
            disk_json["persistence"] = json!({"id": id, "principal": principal});
        }
        if let Some(path) = &disk.container_path {
            disk_json["volume"] = json!({"mode": "RW", "container_path": path});
        }
        if disk_json.as_object().is_some_and(|o| !o.is_empty()) {
            json["disk"] = disk_json;
        }
    }
    json
}

fn resources_json(resources: &[Resource], role: &str) -> Vec<Value> {
    resources.iter().map(|r| resource_json(r, role)).collect()
}

/// What the engine knows about a task beyond its [`TaskInfo`]: the spec's checks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskChecks {
    /// Readiness: sent as the task's `check` (COMMAND); ready once it exits 0.
    pub readiness: Option<CheckSpec>,
    /// Health: sent as the task's `health_check`; Mesos kills a task that fails it.
    pub health: Option<CheckSpec>,
    /// `kill_policy.grace_period`.
    pub kill_grace_seconds: Option<u32>,
}

/// What the executor of a task group takes out of the pod's reservations (the DEFAULT
/// executor needs cpus, mem and disk of its own; see [`launch_group_json`]).
pub const EXECUTOR_CPUS: f64 = 0.1;
/// Executor memory, MB (Mesos's minimum is 32).
pub const EXECUTOR_MEM: f64 = 32.0;

/// Single-quotes `text` for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The command a task runs: its rendered config files written into the sandbox first (Mesos
/// has no way to hand a task file contents; the SDK had tasks download them), then `cmd`.
pub fn task_command(info: &TaskInfo) -> String {
    let mut command = String::new();
    for (dest, content) in &info.files {
        let quoted = shell_quote(dest);
        command.push_str(&format!(
            "mkdir -p \"$(dirname {quoted})\" && printf '%s' {} > {quoted} && ",
            shell_quote(content)
        ));
    }
    command.push_str(&info.cmd);
    command
}

fn check_command(check: &CheckSpec, env: &Value) -> Value {
    json!({"value": check.cmd, "shell": true, "environment": env})
}

/// LAUNCH_GROUP for one pod instance's tasks. Mesos's DEFAULT executor must own at least
/// 0.01 cpus, 32 MB and some disk out of the same offer, while the core reserved exactly what
/// the tasks asked for; so the executor gets [`EXECUTOR_CPUS`] (at most half the first task's)
/// and [`EXECUTOR_MEM`] (at most half) carved out of the first task's reservations, and the
/// pod's persistent volume, which each task mounts from its parent sandbox (a SANDBOX_PATH
/// PARENT volume at the same path), as Mesos's task-group volumes work.
pub fn launch_group_json(
    tasks: &[TaskInfo],
    framework_id: &str,
    role: &str,
    checks: &dyn Fn(&TaskInfo) -> TaskChecks,
) -> Value {
    let mut executor_resources: Vec<Resource> = Vec::new();
    let mut task_resources: Vec<Vec<Resource>> =
        tasks.iter().map(|t| t.resources.clone()).collect();
    for resources in &mut task_resources {
        let mut kept = Vec::new();
        for resource in resources.drain(..) {
            let is_volume = resource
                .disk
                .as_ref()
                .is_some_and(|d| d.persistence_id.is_some());
            if is_volume {
                if !executor_resources
                    .iter()
                    .any(|r| r.resource_id() == resource.resource_id() && r.disk == resource.disk)
                {
                    executor_resources.push(resource);
                }
            } else {
                kept.push(resource);
            }
        }
        *resources = kept;
    }
    if let Some(first) = task_resources.first_mut() {
        for (name, share) in [("cpus", EXECUTOR_CPUS), ("mem", EXECUTOR_MEM)] {
            if let Some(resource) = first.iter_mut().find(|r| r.name == name) {
                let take = crate::resources::fixed(share.min(resource.amount() / 2.0));
                let mut carved = resource.clone();
                carved.value = ResourceValue::Scalar(take);
                resource.value =
                    ResourceValue::Scalar(crate::resources::fixed(resource.amount() - take));
                executor_resources.push(carved);
            }
        }
    }
    let volumes: Vec<String> = executor_resources
        .iter()
        .filter_map(|r| r.disk.as_ref()?.container_path.clone())
        .collect();
    let instance = tasks.first().map(|t| t.instance.name()).unwrap_or_default();
    let executor_id = format!(
        "{instance}__{}",
        tasks
            .first()
            .and_then(|t| t.task_id.rsplit_once("__"))
            .map_or("executor", |(_, id)| id)
    );
    let task_infos: Vec<Value> = tasks
        .iter()
        .zip(&task_resources)
        .map(|(info, resources)| {
            let env = json!({"variables": info
                .env
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect::<Vec<_>>()});
            // Secrets go by reference (the agent resolves them), to the task's command only.
            let mut command_env = env.clone();
            if let Some(variables) = command_env["variables"].as_array_mut() {
                variables.extend(super::secrets::env_variables(&info.secrets));
            }
            let mut task = json!({
                "name": info.name,
                "task_id": {"value": info.task_id},
                "agent_id": {"value": info.agent_id},
                "resources": resources_json(resources, role),
                "command": {"value": task_command(info), "shell": true, "environment": command_env},
                "labels": {"labels": [
                    {"key": "goal_state", "value": format!("{:?}", info.goal).to_uppercase()},
                    {"key": "target_configuration", "value": info.config_id.to_string()},
                ]},
            });
            let mut container_volumes: Vec<Value> = volumes
                .iter()
                .map(|path| {
                    json!({
                        "mode": "RW",
                        "container_path": path,
                        "source": {"type": "SANDBOX_PATH",
                                   "sandbox_path": {"type": "PARENT", "path": path}},
                    })
                })
                .collect();
            container_volumes.extend(super::secrets::volumes(&info.secrets));
            if !container_volumes.is_empty() {
                task["container"] = json!({"type": "MESOS", "volumes": container_volumes});
            }
            let checks = checks(info);
            if let Some(check) = &checks.readiness {
                task["check"] = json!({
                    "type": "COMMAND",
                    "command": {"command": check_command(check, &env)},
                    "delay_seconds": check.delay,
                    "interval_seconds": check.interval,
                    "timeout_seconds": check.timeout,
                });
            }
            if let Some(check) = &checks.health {
                task["health_check"] = json!({
                    "type": "COMMAND",
                    "command": check_command(check, &env),
                    "delay_seconds": check.delay,
                    "interval_seconds": check.interval,
                    "timeout_seconds": check.timeout,
                    "consecutive_failures": check.max_consecutive_failures.unwrap_or(3),
                    "grace_period_seconds": check.grace_period.unwrap_or(10),
                });
            }
            if let Some(seconds) = checks.kill_grace_seconds {
                task["kill_policy"] =
                    json!({"grace_period": {"nanoseconds": u64::from(seconds) * 1_000_000_000}});
            }
            task
        })
        .collect();
    json!({
        "type": "LAUNCH_GROUP",
        "launch_group": {
            "executor": {
                "type": "DEFAULT",
                "executor_id": {"value": executor_id},
                "framework_id": {"value": framework_id},
                "name": instance,
                "resources": resources_json(&executor_resources, role),
            },
            "task_group": {"tasks": task_infos},
        },
    })
}

/// An offer operation as Mesos JSON.
pub fn operation_json(
    operation: &Operation,
    framework_id: &str,
    role: &str,
    checks: &dyn Fn(&TaskInfo) -> TaskChecks,
) -> Value {
    match operation {
        Operation::Reserve { resources } => json!({
            "type": "RESERVE",
            "reserve": {"resources": resources_json(resources, role)},
        }),
        Operation::Create { volumes } => json!({
            "type": "CREATE",
            "create": {"volumes": resources_json(volumes, role)},
        }),
        Operation::LaunchGroup { tasks } => launch_group_json(tasks, framework_id, role, checks),
        Operation::Destroy { volumes } => json!({
            "type": "DESTROY",
            "destroy": {"volumes": resources_json(volumes, role)},
        }),
        Operation::Unreserve { resources } => json!({
            "type": "UNRESERVE",
            "unreserve": {"resources": resources_json(resources, role)},
        }),
    }
}

/// A call (anything but SUBSCRIBE) of `framework_id`.
pub fn call(framework_id: &str, kind: &str, body: Option<(&str, Value)>) -> Value {
    let mut call = json!({"framework_id": {"value": framework_id}, "type": kind});
    if let Some((field, value)) = body {
        call[field] = value;
    }
    call
}

/// What SUBSCRIBE says about the framework.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameworkSettings {
    /// `name` (the service name).
    pub name: String,
    /// `user` tasks run as.
    pub user: String,
    /// The single role (reservations are made for it).
    pub role: String,
    /// `principal`.
    pub principal: String,
    /// `failover_timeout`, seconds: how long the master keeps the tasks of a disconnected
    /// scheduler (the docs advise weeks).
    pub failover_timeout_seconds: f64,
}

/// The SUBSCRIBE call.
pub fn subscribe_json(
    settings: &FrameworkSettings,
    framework_id: Option<&str>,
    suppressed: bool,
    force: bool,
) -> Value {
    let capabilities: Vec<Value> = [
        "MULTI_ROLE",
        "RESERVATION_REFINEMENT",
        "TASK_KILLING_STATE",
        "PARTITION_AWARE",
    ]
    .iter()
    .map(|c| json!({ "type": c }))
    .collect();
    let mut info = json!({
        "user": settings.user,
        "name": settings.name,
        "roles": [settings.role],
        "principal": settings.principal,
        "failover_timeout": settings.failover_timeout_seconds,
        "checkpoint": true,
        "capabilities": capabilities,
    });
    let mut call = json!({"type": "SUBSCRIBE", "subscribe": {"force": force}});
    if let Some(id) = framework_id {
        info["id"] = json!({"value": id});
        call["framework_id"] = json!({"value": id});
    }
    call["subscribe"]["framework_info"] = info;
    if suppressed {
        call["subscribe"]["suppressed_roles"] = json!([settings.role]);
    }
    call
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
