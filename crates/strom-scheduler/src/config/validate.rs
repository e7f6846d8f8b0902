//! Config validators: the rules a new target must satisfy against the old one
//! (`DefaultConfigValidators` of the SDK, plus Kafka's zone validator).
//!
//! Each validator is pure: `(old target or none, candidate) → errors`. Messages follow the
//! SDK's `Field: '…'; Value: '…'; Message: '…'` form and say what to do instead.

use std::fmt;

use crate::spec::{PlacementField, PlacementRule, ServiceSpec};

/// One refused field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// The validator that refused (the SDK's class name, for searching its docs).
    pub validator: &'static str,
    /// The field, as a spec key path (`pods.kafka.count`).
    pub field: String,
    /// The refused value.
    pub value: String,
    /// Why, and what to do instead.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Field: '{}'; Value: '{}'; Message: '{}'",
            self.field, self.value, self.message
        )
    }
}

/// A rule for config updates.
pub trait ConfigValidator {
    /// The errors of `candidate` given the current target `old` (none on first install).
    fn validate(&self, old: Option<&ServiceSpec>, candidate: &ServiceSpec) -> Vec<ValidationError>;
}

/// The validators every update runs, in the SDK's order.
pub fn default_validators() -> Vec<Box<dyn ConfigValidator>> {
    vec![
        Box::new(ServiceNameCannotContainDoubleUnderscores),
        Box::new(ServiceNameCannotBreakDns),
        Box::new(PodSpecsCannotShrink),
        Box::new(PreReservationCannotChange),
        Box::new(UserCannotChange),
        Box::new(PlacementRuleIsValid),
        Box::new(RegionCannotChange),
        Box::new(TaskVolumesCannotChange),
        Box::new(ZoneRulesCannotChange),
        Box::new(ZooKeeperEnsembleCannotResize),
    ]
}

/// Kafka's embedded ZooKeeper (pod `zookeeper`): its server count is fixed at install. Every
/// server's zoo.cfg lists the whole ensemble, so growing or shrinking it would need
/// ZooKeeper's dynamic reconfiguration or a careful restart of all servers, which this
/// scheduler does not do.
pub struct ZooKeeperEnsembleCannotResize;

impl ConfigValidator for ZooKeeperEnsembleCannotResize {
    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ValidationError> {
        let count = |spec: &ServiceSpec| spec.pod("zookeeper").map(|p| p.count);
        match (old.and_then(count), count(new)) {
            (Some(before), Some(after)) if before != after => vec![error(
                "ZooKeeperEnsembleCannotResize",
                "pods.zookeeper.count",
                after,
                format!(
                    "The embedded ZooKeeper ensemble has {before} servers and cannot be resized \
                     (zookeeper.count); keep {before}"
                ),
            )],
            _ => Vec::new(),
        }
    }
}

fn error(
    validator: &'static str,
    field: impl Into<String>,
    value: impl fmt::Display,
    message: impl Into<String>,
) -> ValidationError {
    ValidationError {
        validator,
        field: field.into(),
        value: value.to_string(),
        message: message.into(),
    }
}

/// `__` in a name collides with the `/` → `__` mapping of state store roots.
pub struct ServiceNameCannotContainDoubleUnderscores;

impl ConfigValidator for ServiceNameCannotContainDoubleUnderscores {
    fn validate(&self, _old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ValidationError> {
        if new.name.contains("__") {
            return vec![error(
                "ServiceNameCannotContainDoubleUnderscores",
                "name",
                &new.name,
                "Service name may not contain double underscores",
            )];
        }
        Vec::new()
    }
}

/// Task names become DNS names (`<task>.<service>.…`): each `/`-separated part of the service
/// name must be a DNS label, and a task's full name must fit one too.
pub struct ServiceNameCannotBreakDns;

impl ConfigValidator for ServiceNameCannotBreakDns {
    fn validate(&self, _old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ValidationError> {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let mut errors = Vec::new();
        let name = new.name.trim_start_matches('/');
        if !name.split('/').all(label_ok) {
            errors.push(error(
                "ServiceNameCannotBreakDNS",
                "name",
                &new.name,
                "Each part of the service name must be a DNS label: lower-case letters, digits \
                 and '-', at most 63 characters",
            ));
        }
        for (pod_name, pod) in new.pods.iter() {
            let widest = format!("{pod_name}-{}", pod.count.saturating_sub(1));
            for (task_name, _) in pod.tasks.iter() {
                let task = format!("{widest}-{task_name}");
                if !label_ok(&task) {
                    errors.push(error(
                        "ServiceNameCannotBreakDNS",
                        format!("pods.{pod_name}.tasks.{task_name}"),
                        &task,
                        "Task names (<pod>-<index>-<task>) must be DNS labels of at most 63 \
                         characters",
                    ));
                }
            }
        }
        errors
    }
}

/// Pods may not disappear or lose instances unless `allow-decommission` is set.
pub struct PodSpecsCannotShrink;

impl ConfigValidator for PodSpecsCannotShrink {
    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ValidationError> {
        let Some(old) = old else { return Vec::new() };
        let mut errors = Vec::new();
        for (pod_name, old_pod) in old.pods.iter() {
            match new.pod(pod_name) {
                None if !old_pod.allow_decommission => errors.push(error(
                    "PodSpecsCannotShrink",
                    format!("pods.{pod_name}"),
                    "(removed)",
                    format!(
                        "Pod '{pod_name}' may not be removed: it has {} instances and \
                         allow-decommission is false",
                        old_pod.count
                    ),
                )),
                Some(new_pod) if new_pod.count < old_pod.count && !new_pod.allow_decommission => {
                    errors.push(error(
                        "PodSpecsCannotShrink",
                        format!("pods.{pod_name}.count"),
                        new_pod.count,
                        format!(
                            "Pod count may not shrink from {} to {} unless allow-decommission is \
                             true",
                            old_pod.count, new_pod.count
                        ),
                    ))
                }
                _ => {}
            }
        }
        errors
    }
}

/// Reservations are made against a role; moving them is a migration, not an update.
pub struct PreReservationCannotChange;

impl ConfigValidator for PreReservationCannotChange {
    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ValidationError> {
        let Some(old) = old else { return Vec::new() };
        let mut errors = Vec::new();
        for (pod_name, new_pod) in new.pods.iter() {
            let Some(old_pod) = old.pod(pod_name) else {
                continue;
            };
            if old_pod.pre_reserved_role != new_pod.pre_reserved_role {
                errors.push(error(
                    "PreReservationCannotChange",
                    format!("pods.{pod_name}.pre-reserved-role"),
                    new_pod.pre_reserved_role.as_deref().unwrap_or("(none)"),
                    format!(
                        "Pre-reserved role may not change from '{}'",
                        old_pod.pre_reserved_role.as_deref().unwrap_or("(none)")
                    ),
                ));
            }
        }
        errors
    }
}

/// Volumes are owned by the user tasks ran as; changing it would strand their files.
pub struct UserCannotChange;

impl ConfigValidator for UserCannotChange {
    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ValidationError> {
        let Some(old) = old else { return Vec::new() };
        let mut errors = Vec::new();
        if old.scheduler.user != new.scheduler.user {
            errors.push(error(
                "UserCannotChange",
                "scheduler.user",
                new.scheduler.user.as_deref().unwrap_or("(none)"),
                format!(
                    "User may not change from '{}': existing volumes belong to that user",
                    old.scheduler.user.as_deref().unwrap_or("(none)")
                ),
            ));
        }
        for (pod_name, new_pod) in new.pods.iter() {
            let Some(old_pod) = old.pod(pod_name) else {
                continue;
            };
            if old_pod.user != new_pod.user {
                errors.push(error(
                    "UserCannotChange",
                    format!("pods.{pod_name}.user"),
                    new_pod.user.as_deref().unwrap_or("(none)"),
                    "Pod user may not change: existing volumes belong to the old user",
                ));
            }
        }
        errors
    }
}

/// Placement rules must parse and use supported operators.
pub struct PlacementRuleIsValid;

impl ConfigValidator for PlacementRuleIsValid {
    fn validate(&self, _old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ValidationError> {
        new.pods
            .iter()
            .filter_map(|(pod_name, pod)| {
                pod.placement_rules(pod_name).err().map(|reason| {
                    error(
                        "PlacementRuleIsValid",
                        format!("pods.{pod_name}.placement"),
                        pod.placement.as_deref().unwrap_or(""),
                        reason.to_string(),
                    )
                })
            })
            .collect()
    }
}

fn rules_on(
    pod: &crate::spec::PodSpec,
    pod_name: &str,
    field: &PlacementField,
) -> Vec<PlacementRule> {
    pod.placement_rules(pod_name)
        .unwrap_or_default()
        .into_iter()
        .filter(|rule| rule.field == *field)
        .collect()
}

/// Region rules pin data to a region; moving it is not an in-place update.
pub struct RegionCannotChange;

impl ConfigValidator for RegionCannotChange {
    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ValidationError> {
        let Some(old) = old else { return Vec::new() };
        let mut errors = Vec::new();
        for (pod_name, new_pod) in new.pods.iter() {
            let Some(old_pod) = old.pod(pod_name) else {
                continue;
            };
            if rules_on(old_pod, pod_name, &PlacementField::Region)
                != rules_on(new_pod, pod_name, &PlacementField::Region)
            {
                errors.push(error(
                    "RegionCannotChange",
                    format!("pods.{pod_name}.placement"),
                    new_pod.placement.as_deref().unwrap_or(""),
                    "@region rules may not change: the pod's volumes live in the old region",
                ));
            }
        }
        errors
    }
}

/// A volume's type, size and path are fixed once reserved (the SDK refused disk changes too;
/// grow the cluster with new brokers instead).
pub struct TaskVolumesCannotChange;

impl ConfigValidator for TaskVolumesCannotChange {
    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ValidationError> {
        let Some(old) = old else { return Vec::new() };
        let mut errors = Vec::new();
        for (pod_name, new_pod) in new.pods.iter() {
            let Some(old_pod) = old.pod(pod_name) else {
                continue;
            };
            let old_volumes = old_pod.all_volumes();
            let new_volumes = new_pod.all_volumes();
            if old_volumes == new_volumes {
                continue;
            }
            let describe = |volumes: &[(String, &crate::spec::VolumeSpec)]| {
                volumes
                    .iter()
                    .map(|(key, v)| {
                        format!("{key}={}:{}:{}MB", v.path, v.volume_type.as_str(), v.size)
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            errors.push(error(
                "TaskVolumesCannotChange",
                format!("pods.{pod_name}.volume"),
                describe(&new_volumes),
                format!(
                    "Volumes may not change (they are reserved on the agents); keep {}",
                    describe(&old_volumes)
                ),
            ));
        }
        errors
    }
}

/// Kafka's zone validator: whether a pod's placement uses `@zone` fixes each broker's
/// `broker.rack`, so it may not be switched on or off for a deployed pod.
pub struct ZoneRulesCannotChange;

impl ConfigValidator for ZoneRulesCannotChange {
    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ValidationError> {
        let Some(old) = old else { return Vec::new() };
        let mut errors = Vec::new();
        for (pod_name, new_pod) in new.pods.iter() {
            let Some(old_pod) = old.pod(pod_name) else {
                continue;
            };
            let old_zones = !rules_on(old_pod, pod_name, &PlacementField::Zone).is_empty();
            let new_zones = !rules_on(new_pod, pod_name, &PlacementField::Zone).is_empty();
            if old_zones != new_zones {
                errors.push(error(
                    "KafkaZoneValidator",
                    format!("pods.{pod_name}.placement"),
                    new_pod.placement.as_deref().unwrap_or(""),
                    format!(
                        "@zone placement may not be {} on a deployed service: brokers' \
                         broker.rack would change",
                        if new_zones { "added" } else { "removed" }
                    ),
                ));
            }
        }
        errors
    }
}
