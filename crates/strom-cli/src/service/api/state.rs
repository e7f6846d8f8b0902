//! The state-store views of the API, in the SDK's shapes (`ConfigQueries`, `StateQueries`):
//! `/v1/configurations` (the stored config ids, the target's id as a one-element list, a
//! config by id as the stored ServiceSpec JSON; 400 for an id that is not a uuid, 404 for an
//! unknown one) and `/v1/state` (`frameworkId` as a one-element list, property keys, a property
//! value as JSON when it is JSON, else as a string, `zone/tasks`: each task's zone). Read-only: nothing here needs the token.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use strom_scheduler::config;
use strom_scheduler::state::{self as store_state, PROPERTIES_PATH};
use strom_scheduler::store::{Persister, StoreError};

use super::{message, Api};

fn store_error(error: StoreError) -> Response {
    message(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
}

/// The stored bytes of a config as JSON (they are the ServiceSpec's JSON).
fn config_json(persister: &dyn Persister, id: uuid::Uuid) -> Result<Option<Value>, StoreError> {
    let path = format!("{}/{id}", config::CONFIGURATIONS_PATH);
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

pub(super) async fn configuration_ids(State(api): State<Api>) -> Response {
    let core = api.lock();
    match config::ids(&**core.scheduler.persister()) {
        Ok(ids) => Json(json!(ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()))
        .into_response(),
        Err(error) => store_error(error),
    }
}

pub(super) async fn target_id(State(api): State<Api>) -> Response {
    let core = api.lock();
    match config::target_id(&**core.scheduler.persister()) {
        Ok(Some(id)) => Json(json!([id.to_string()])).into_response(),
        Ok(None) => message(StatusCode::NOT_FOUND, "no target configuration"),
        Err(error) => store_error(error),
    }
}

pub(super) async fn target(State(api): State<Api>) -> Response {
    let core = api.lock();
    let persister = &**core.scheduler.persister();
    let id = match config::target_id(persister) {
        Ok(Some(id)) => id,
        Ok(None) => return message(StatusCode::NOT_FOUND, "no target configuration"),
        Err(error) => return store_error(error),
    };
    match config_json(persister, id) {
        Ok(Some(spec)) => Json(spec).into_response(),
        // The target names a config that must exist: a store fault, as in the SDK.
        Ok(None) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the target configuration {id} is missing"),
        ),
        Err(error) => store_error(error),
    }
}

pub(super) async fn configuration(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let Ok(uuid) = uuid::Uuid::parse_str(&id) else {
        return message(
            StatusCode::BAD_REQUEST,
            &format!("configuration id {id:?} is not a uuid"),
        );
    };
    let core = api.lock();
    match config_json(&**core.scheduler.persister(), uuid) {
        Ok(Some(spec)) => Json(spec).into_response(),
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            &format!("configuration {id} not found"),
        ),
        Err(error) => store_error(error),
    }
}

pub(super) async fn framework_id(State(api): State<Api>) -> Response {
    let core = api.lock();
    match core.scheduler.framework_id() {
        Ok(Some(id)) => Json(json!([id])).into_response(),
        Ok(None) => message(StatusCode::NOT_FOUND, "no framework id"),
        Err(error) => store_error(error),
    }
}

pub(super) async fn property_keys(State(api): State<Api>) -> Response {
    let core = api.lock();
    match core.scheduler.persister().children(PROPERTIES_PATH) {
        Ok(keys) => Json(json!(keys)).into_response(),
        Err(error) => store_error(error),
    }
}

pub(super) async fn property(State(api): State<Api>, Path(key): Path<String>) -> Response {
    if key.is_empty() || key.contains('/') || key == "." || key == ".." {
        return message(
            StatusCode::BAD_REQUEST,
            &format!("invalid property key {key:?}"),
        );
    }
    let core = api.lock();
    match store_state::property(&**core.scheduler.persister(), &key) {
        Ok(Some(bytes)) => Json(
            serde_json::from_slice::<Value>(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        )
        .into_response(),
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            &format!("property {key:?} not found"),
        ),
        Err(error) => store_error(error),
    }
}

/// `GET /v1/state/zone/tasks`: `{task name: zone}` for the tasks placed in a zone.
pub(super) async fn task_zones(State(api): State<Api>) -> Json<Value> {
    let core = api.lock();
    let zones: serde_json::Map<String, Value> = core
        .scheduler
        .tasks()
        .values()
        .filter_map(|r| Some((r.info.name.clone(), json!(r.info.zone.as_ref()?))))
        .collect();
    Json(Value::Object(zones))
}
