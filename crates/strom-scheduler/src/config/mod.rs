//! Target configuration: stored service specs by uuid, the target id, and the update flow
//! (render → validate → keep the old target or store a new one).
//!
//! Owns the SDK's `ConfigTarget` and `Configurations/<uuid>` nodes and `DefaultConfigurationUpdater`'s
//! rules: validators always run; any error keeps the old target and is reported (the deploy plan
//! shows it, HTTP 417); an equal spec keeps the target id; a new spec gets a new uuid, becomes the
//! target in the same atomic write, and configs no task uses are collected. Relabelling tasks
//! whose pod is unchanged is the scheduler's job (it owns the tasks); [`UpdateOutcome`] says
//! which pods are equivalent. Uuids come from the caller, so tests are deterministic.

pub mod validate;

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::spec::ServiceSpec;
use crate::store::{Persister, StoreError};
pub use validate::{default_validators, ConfigValidator, ValidationError};

/// Node holding the target config's uuid.
pub const TARGET_PATH: &str = "ConfigTarget";
/// Parent of the stored configs.
pub const CONFIGURATIONS_PATH: &str = "Configurations";

fn config_path(id: Uuid) -> String {
    format!("{CONFIGURATIONS_PATH}/{id}")
}

/// The stored config `id`, if any.
pub fn fetch(persister: &dyn Persister, id: Uuid) -> Result<Option<ServiceSpec>, StoreError> {
    let path = config_path(id);
    match persister.get(&path)? {
        None => Ok(None),
        Some(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| StoreError::Corrupt {
                    path,
                    reason: error.to_string(),
                })
        }
    }
}

/// The uuids of all stored configs, sorted.
pub fn ids(persister: &dyn Persister) -> Result<Vec<Uuid>, StoreError> {
    persister
        .children(CONFIGURATIONS_PATH)?
        .into_iter()
        .map(|name| {
            Uuid::parse_str(&name).map_err(|error| StoreError::Corrupt {
                path: format!("{CONFIGURATIONS_PATH}/{name}"),
                reason: error.to_string(),
            })
        })
        .collect()
}

/// The target config's uuid, if one was ever set.
pub fn target_id(persister: &dyn Persister) -> Result<Option<Uuid>, StoreError> {
    match persister.get(TARGET_PATH)? {
        None => Ok(None),
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| Uuid::parse_str(text).ok())
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                path: TARGET_PATH.into(),
                reason: "not a uuid".into(),
            }),
    }
}

/// The target config and its uuid.
pub fn target(persister: &dyn Persister) -> Result<Option<(Uuid, ServiceSpec)>, StoreError> {
    let Some(id) = target_id(persister)? else {
        return Ok(None);
    };
    match fetch(persister, id)? {
        Some(spec) => Ok(Some((id, spec))),
        None => Err(StoreError::Corrupt {
            path: TARGET_PATH.into(),
            reason: format!("names config {id}, which is not stored"),
        }),
    }
}

/// What an update did.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateOutcome {
    /// The target after the update (the old one when refused or unchanged).
    pub target_id: Option<Uuid>,
    /// Validation errors; non-empty means the candidate was refused.
    pub errors: Vec<ValidationError>,
    /// Whether a new config became the target.
    pub changed: bool,
    /// Pods whose spec is equivalent between the old and the new target: their running
    /// instances are relabelled to the new target instead of restarted.
    pub equivalent_pods: BTreeSet<String>,
}

/// Runs the validators on `candidate` against the current target and, when they pass, makes it
/// the target under `new_id` (unless it equals the target). `in_use` are config ids that tasks
/// still reference; other non-target configs are deleted.
pub fn update(
    persister: &mut dyn Persister,
    candidate: &ServiceSpec,
    new_id: Uuid,
    validators: &[Box<dyn ConfigValidator>],
    in_use: &BTreeSet<Uuid>,
) -> Result<UpdateOutcome, StoreError> {
    let current = target(persister)?;
    let old_spec = current.as_ref().map(|(_, spec)| spec);
    let errors: Vec<ValidationError> = validators
        .iter()
        .flat_map(|validator| validator.validate(old_spec, candidate))
        .collect();
    let equivalent_pods = match old_spec {
        Some(old) => candidate
            .pods
            .iter()
            .filter(|(name, pod)| old.pod(name).is_some_and(|old_pod| old_pod.equivalent(pod)))
            .map(|(name, _)| name.to_string())
            .collect(),
        None => BTreeSet::new(),
    };
    let current_id = current.as_ref().map(|(id, _)| *id);
    if !errors.is_empty() {
        return Ok(UpdateOutcome {
            target_id: current_id,
            errors,
            changed: false,
            equivalent_pods,
        });
    }
    if old_spec == Some(candidate) {
        return Ok(UpdateOutcome {
            target_id: current_id,
            errors,
            changed: false,
            equivalent_pods,
        });
    }
    let json = serde_json::to_vec(candidate).expect("a ServiceSpec always serializes");
    let mut writes = vec![
        (config_path(new_id), Some(json)),
        (
            TARGET_PATH.to_string(),
            Some(new_id.to_string().into_bytes()),
        ),
    ];
    for id in ids(persister)? {
        if id != new_id && !in_use.contains(&id) {
            writes.push((config_path(id), None));
        }
    }
    persister.apply(writes)?;
    Ok(UpdateOutcome {
        target_id: Some(new_id),
        errors,
        changed: true,
        equivalent_pods,
    })
}

#[cfg(test)]
mod tests;
