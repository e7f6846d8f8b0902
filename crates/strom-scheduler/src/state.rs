//! The state store: tasks, framework id and properties on a [`Persister`], in the SDK's nodes.
//!
//! `Tasks/<task name>/TaskInfo` and `Tasks/<task name>/TaskStatus` hold JSON; `FrameworkID` the
//! engine's framework id; `Properties/<key>` small values (`uninstalling`, …). A task info is
//! written before its launch is sent, so a scheduler killed in between finds it on restart and
//! learns its fate by reconciliation instead of launching the task twice.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::store::{Persister, StoreError};
use crate::task::{TaskInfo, TaskRecord, TaskStatus};

/// Parent of the task nodes.
pub const TASKS_PATH: &str = "Tasks";
/// The framework id node.
pub const FRAMEWORK_ID_PATH: &str = "FrameworkID";
/// Parent of the property nodes.
pub const PROPERTIES_PATH: &str = "Properties";

fn decode<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Corrupt {
        path: path.to_string(),
        reason: error.to_string(),
    })
}

/// Every recorded task by name. A task node without a `TaskInfo` is ignored (a crash between
/// the SDK's separate writes could leave one; ours are atomic, but a store may be old).
pub fn load_tasks(persister: &dyn Persister) -> Result<BTreeMap<String, TaskRecord>, StoreError> {
    let mut tasks = BTreeMap::new();
    for name in persister.children(TASKS_PATH)? {
        let info_path = format!("{TASKS_PATH}/{name}/TaskInfo");
        let Some(info_bytes) = persister.get(&info_path)? else {
            continue;
        };
        let info: TaskInfo = decode(&info_path, &info_bytes)?;
        let status_path = format!("{TASKS_PATH}/{name}/TaskStatus");
        let status: Option<TaskStatus> = match persister.get(&status_path)? {
            Some(bytes) => Some(decode(&status_path, &bytes)?),
            None => None,
        };
        tasks.insert(name, TaskRecord { info, status });
    }
    Ok(tasks)
}

/// Writes task infos (replacing any earlier info and status of the same names) atomically.
pub fn store_task_infos(
    persister: &mut dyn Persister,
    infos: &[TaskInfo],
) -> Result<(), StoreError> {
    let mut writes = Vec::new();
    for info in infos {
        let json = serde_json::to_vec(info).expect("a TaskInfo always serializes");
        writes.push((format!("{TASKS_PATH}/{}/TaskStatus", info.name), None));
        writes.push((format!("{TASKS_PATH}/{}/TaskInfo", info.name), Some(json)));
    }
    persister.apply(writes)
}

/// Writes a task's status.
pub fn store_task_status(
    persister: &mut dyn Persister,
    name: &str,
    status: &TaskStatus,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec(status).expect("a TaskStatus always serializes");
    persister.set(&format!("{TASKS_PATH}/{name}/TaskStatus"), json)
}

/// Deletes tasks (decommission, uninstall).
pub fn delete_tasks(persister: &mut dyn Persister, names: &[String]) -> Result<(), StoreError> {
    persister.apply(
        names
            .iter()
            .map(|name| (format!("{TASKS_PATH}/{name}"), None))
            .collect(),
    )
}

/// The stored framework id.
pub fn framework_id(persister: &dyn Persister) -> Result<Option<String>, StoreError> {
    Ok(persister
        .get(FRAMEWORK_ID_PATH)?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Stores the framework id (before it is used, so a restart resubscribes with it).
pub fn store_framework_id(persister: &mut dyn Persister, id: &str) -> Result<(), StoreError> {
    persister.set(FRAMEWORK_ID_PATH, id.as_bytes().to_vec())
}

/// A property.
pub fn property(persister: &dyn Persister, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    persister.get(&format!("{PROPERTIES_PATH}/{key}"))
}

/// Sets a property.
pub fn set_property(
    persister: &mut dyn Persister,
    key: &str,
    value: &[u8],
) -> Result<(), StoreError> {
    persister.set(&format!("{PROPERTIES_PATH}/{key}"), value.to_vec())
}
