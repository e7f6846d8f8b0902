//! The scheduler's HTTP API in the DC/OS SDK's routes, shapes and status codes
//! (dcos-service.md §1.2). Reads and commands go to the pure core under the shared lock; the
//! effects a command returns are applied to the engine at once. Mutating calls need
//! `Authorization: Bearer <token>` when a token is configured (`STROM_SCHEDULER_TOKEN`).
//!
//! This module holds the router, plans and pods; `state.rs` the state-store views
//! (`/v1/configurations`, `/v1/state`); `lifecycle.rs` update and
//! uninstall; `kafka.rs` the Kafka routes (`/v1/brokers`,
//! `/v1/topics`), which ask the brokers themselves and never hold the lock while they do.

mod kafka;
mod lifecycle;
mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use strom_scheduler::engine::Engine;
use strom_scheduler::plan::Status;
use strom_scheduler::scheduler::{EndpointNaming, PlanCommand, SchedulerError};

use super::Core;

#[derive(Clone)]
pub(super) struct Api {
    core: Arc<Mutex<Core>>,
    token: Option<String>,
}

impl Api {
    pub(super) fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock is a bug; the state is still the best we have.
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `None` when the call may proceed, else the refusal.
    pub(super) fn refuse(&self, headers: &HeaderMap) -> Option<Response> {
        let Some(token) = &self.token else {
            return None;
        };
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        (given != Some(token.as_str()))
            .then(|| message(StatusCode::UNAUTHORIZED, "a valid bearer token is required"))
    }
}

pub(super) fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

pub(super) fn scheduler_error(error: SchedulerError) -> Response {
    let status = match &error {
        SchedulerError::NoPlan(_) | SchedulerError::NoPod(_) | SchedulerError::Plan(_) => {
            StatusCode::NOT_FOUND
        }
        SchedulerError::Uninstalling => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    message(status, &error.to_string())
}

/// Who may call which routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiAuth {
    /// Mutating calls need the token; reads are open (the default).
    Writes,
    /// Every call needs the token, reads and metrics included (Admin Router's default).
    All,
}

/// Refuses a call without the token, for [`ApiAuth::All`].
async fn require_token(
    State(api): State<Api>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match api.refuse(request.headers()) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// Refuses every call to a service uninstalled while others go on.
async fn refuse_removed(
    State(api): State<Api>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let removed = api.lock().removed;
    if removed {
        return message(StatusCode::NOT_FOUND, "the service was uninstalled");
    }
    next.run(request).await
}

/// The routes of every service under `/service/<name>` (as DC/OS's Admin Router put them);
/// when there is one service, at `/` as well.
pub(super) fn services_router(
    services: &[(String, Arc<Mutex<Core>>)],
    token: Option<String>,
    auth: ApiAuth,
) -> Router {
    let mut all = Router::new();
    for (name, core) in services {
        let api = Api {
            core: Arc::clone(core),
            token: token.clone(),
        };
        let service = router(Arc::clone(core), token.clone(), auth)
            .layer(axum::middleware::from_fn_with_state(api, refuse_removed));
        all = all.nest(&format!("/service/{name}"), service);
    }
    if let [(_, core)] = services {
        all = all.merge(router(Arc::clone(core), token, auth));
    }
    all
}

/// The API's routes over the shared core.
pub(super) fn router(core: Arc<Mutex<Core>>, token: Option<String>, auth: ApiAuth) -> Router {
    let api = Api { core, token };
    let router = routes();
    let router = match auth {
        ApiAuth::Writes => router,
        ApiAuth::All => router.layer(axum::middleware::from_fn_with_state(
            api.clone(),
            require_token,
        )),
    };
    router.with_state(api)
}

fn routes() -> Router<Api> {
    Router::new()
        .route("/v1/plans", get(plans))
        .route("/v1/plans/{plan}", get(plan))
        .route("/v1/plans/{plan}/{command}", post(plan_command))
        .route("/v1/pod", get(pods))
        .route("/v1/pod/status", get(all_pod_status))
        .route("/v1/pod/{pod}/info", get(pod_info))
        .route("/v1/pod/{pod}/status", get(pod_status))
        .route("/v1/pod/{pod}/{command}", post(pod_command))
        .route("/v1/endpoints", get(endpoints))
        .route("/v1/endpoints/{name}", get(endpoint))
        .route("/v1/configurations", get(state::configuration_ids))
        .route("/v1/configurations/targetId", get(state::target_id))
        .route("/v1/configurations/target", get(state::target))
        .route("/v1/configurations/{id}", get(state::configuration))
        .route("/v1/state/frameworkId", get(state::framework_id))
        .route("/v1/state/properties", get(state::property_keys))
        .route("/v1/state/properties/{key}", get(state::property))
        .route("/v1/state/zone/tasks", get(state::task_zones))
        .route("/v1/brokers", get(kafka::brokers))
        .route("/v1/brokers/{id}", get(kafka::broker))
        .route("/v1/topics", get(kafka::topics))
        .route(
            "/v1/topics/{topic}",
            get(kafka::topic)
                .put(kafka::create_topic)
                .delete(kafka::delete_topic),
        )
        .route("/v1/update", post(lifecycle::update))
        .route("/v1/uninstall", post(lifecycle::uninstall))
        .route("/v1/debug/offers", get(debug_offers))
        .route("/v1/metrics", get(metrics))
        .route("/v1/metrics/prometheus", get(prometheus))
        .route("/metrics", get(prometheus))
        .route("/v1/health", get(health))
}

async fn plans(State(api): State<Api>) -> Json<Value> {
    Json(json!(api.lock().scheduler.plan_names()))
}

async fn plan(State(api): State<Api>, Path(name): Path<String>) -> Response {
    let core = api.lock();
    match core.scheduler.plan(&name) {
        Some(plan) => {
            let status = StatusCode::from_u16(plan.http_status()).expect("a valid status code");
            (status, Json(plan.to_json())).into_response()
        }
        None => message(StatusCode::NOT_FOUND, &format!("plan {name:?} not found")),
    }
}

#[derive(Debug, Default, Deserialize)]
struct PlanQuery {
    phase: Option<String>,
    step: Option<String>,
}

/// `start`'s body: a JSON object of environment variables for the plan's tasks. The SDK hands
/// them to the tasks of custom (sidecar) plans; this service has none, so only valid names and
/// an empty object are accepted.
fn start_parameters(body: &str) -> Result<(), String> {
    if body.trim().is_empty() {
        return Ok(());
    }
    let parameters: BTreeMap<String, String> =
        serde_json::from_str(body).map_err(|e| format!("Couldn't parse parameters: {e}"))?;
    let valid_name = |name: &str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if let Some(bad) = parameters.keys().find(|k| !valid_name(k)) {
        return Err(format!(
            "Couldn't parse parameters: {bad} is not a valid environment variable name"
        ));
    }
    if !parameters.is_empty() {
        return Err(
            "this service's plans take no parameters (the SDK passed them to sidecar plans)".into(),
        );
    }
    Ok(())
}

async fn plan_command(
    State(api): State<Api>,
    Path((plan, command)): Path<(String, String)>,
    Query(query): Query<PlanQuery>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refused) = api.refuse(&headers) {
        return refused;
    }
    let parsed = match command.as_str() {
        "start" => match start_parameters(&body) {
            Ok(()) => PlanCommand::Start,
            Err(error) => return message(StatusCode::BAD_REQUEST, &error),
        },
        "stop" => PlanCommand::Stop,
        "interrupt" => PlanCommand::Interrupt { phase: query.phase },
        "continue" => PlanCommand::Continue { phase: query.phase },
        "restart" => PlanCommand::Restart {
            phase: query.phase,
            step: query.step,
        },
        "forceComplete" => match query.phase {
            Some(phase) => PlanCommand::ForceComplete {
                phase,
                step: query.step,
            },
            None => return message(StatusCode::BAD_REQUEST, "forceComplete needs ?phase="),
        },
        other => {
            return message(
                StatusCode::NOT_FOUND,
                &format!("unknown plan command {other:?}"),
            )
        }
    };
    let mut core = api.lock();
    let before = core.scheduler.plan(&plan).map(|p| p.to_json());
    // The SDK answers 208 Already Reported when continue, interrupt, forceComplete or restart
    // has nothing to do (a running plan continued, an interrupted one interrupted, …); start
    // and stop always answer 200.
    let may_be_noop = !matches!(parsed, PlanCommand::Start | PlanCommand::Stop);
    match core.scheduler.plan_command(&plan, parsed) {
        Ok(()) => {
            let unchanged = before == core.scheduler.plan(&plan).map(|p| p.to_json());
            let status = if may_be_noop && unchanged {
                StatusCode::ALREADY_REPORTED
            } else {
                StatusCode::OK
            };
            (
                status,
                Json(json!({ "message": format!("Received cmd: {command}") })),
            )
                .into_response()
        }
        Err(error) => scheduler_error(error),
    }
}

/// Pod instance names with their task records, in instance order.
fn instances(core: &Core) -> Vec<(String, Vec<&strom_scheduler::task::TaskRecord>)> {
    let mut by_instance: Vec<(String, Vec<&strom_scheduler::task::TaskRecord>)> = Vec::new();
    let mut records: Vec<_> = core.scheduler.tasks().values().collect();
    records.sort_by(|a, b| a.info.instance.cmp(&b.info.instance));
    for record in records {
        let name = record.info.instance.name();
        match by_instance.last_mut() {
            Some((last, list)) if *last == name => list.push(record),
            _ => by_instance.push((name, vec![record])),
        }
    }
    by_instance
}

async fn pods(State(api): State<Api>) -> Json<Value> {
    let core = api.lock();
    Json(json!(instances(&core)
        .into_iter()
        .map(|(name, _)| name)
        .collect::<Vec<_>>()))
}

fn instance_status(name: &str, records: &[&strom_scheduler::task::TaskRecord]) -> Value {
    json!({
        "name": name,
        "tasks": records.iter().map(|r| json!({
            "id": r.info.task_id,
            "name": r.info.name,
            "status": r.status.as_ref().map_or("TASK_STAGING".to_string(), |s| {
                serde_json::to_value(s.state).ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            }),
        })).collect::<Vec<_>>(),
    })
}

async fn all_pod_status(State(api): State<Api>) -> Json<Value> {
    let core = api.lock();
    let instances = instances(&core);
    let pods: Vec<Value> = core
        .scheduler
        .spec()
        .pods
        .iter()
        .map(|(pod, _)| {
            json!({
                "name": pod,
                "instances": instances.iter()
                    .filter(|(_, records)| records[0].info.instance.pod == pod)
                    .map(|(name, records)| instance_status(name, records))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "service": core.scheduler.spec().name, "pods": pods }))
}

async fn pod_status(State(api): State<Api>, Path(pod): Path<String>) -> Response {
    let core = api.lock();
    match instances(&core).into_iter().find(|(name, _)| *name == pod) {
        Some((name, records)) => Json(instance_status(&name, &records)).into_response(),
        None => message(StatusCode::NOT_FOUND, &format!("pod {pod:?} not found")),
    }
}

async fn pod_info(State(api): State<Api>, Path(pod): Path<String>) -> Response {
    let core = api.lock();
    match instances(&core).into_iter().find(|(name, _)| *name == pod) {
        Some((_, records)) => Json(json!(records
            .iter()
            .map(|r| json!({ "info": r.info, "status": r.status }))
            .collect::<Vec<_>>()))
        .into_response(),
        None => message(StatusCode::NOT_FOUND, &format!("pod {pod:?} not found")),
    }
}

async fn pod_command(
    State(api): State<Api>,
    Path((pod, command)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = api.refuse(&headers) {
        return refused;
    }
    let mut guard = api.lock();
    let core = &mut *guard;
    let now_ms = core.now_ms();
    let result = match command.as_str() {
        "restart" => core.scheduler.restart_pod(&pod, now_ms),
        "replace" => core.scheduler.replace_pod(&pod, now_ms),
        "pause" => core.scheduler.pause_pod(&pod, now_ms),
        "resume" => core.scheduler.resume_pod(&pod, now_ms),
        other => {
            return message(
                StatusCode::NOT_FOUND,
                &format!("unknown pod command {other:?}"),
            )
        }
    };
    match result {
        Ok((tasks, effects)) => {
            core.engine.apply(&effects, now_ms);
            Json(json!({ "pod": pod, "tasks": tasks })).into_response()
        }
        Err(error) => scheduler_error(error),
    }
}

async fn endpoints(State(api): State<Api>) -> Json<Value> {
    Json(json!(api.lock().scheduler.endpoint_names()))
}

async fn endpoint(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match api
        .lock()
        .scheduler
        .endpoint(&name, &EndpointNaming::default())
    {
        Some(value) => Json(value).into_response(),
        None => message(
            StatusCode::NOT_FOUND,
            &format!("endpoint {name:?} not found"),
        ),
    }
}

async fn debug_offers(State(api): State<Api>) -> Json<Value> {
    Json(api.lock().scheduler.debug_offers_json())
}

async fn metrics(State(api): State<Api>) -> Json<Value> {
    Json(super::metrics::metrics_json(&api.lock()))
}

async fn prometheus(State(api): State<Api>) -> Response {
    let text = super::metrics::prometheus_text(&api.lock());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `HealthResource`'s codes: 417 a plan has errors, 202 deploying, 203 recovering, 200 running.
async fn health(State(api): State<Api>) -> Response {
    let core = api.lock();
    let deploy_name = core.scheduler.plan_names()[0].to_string();
    let status_of = |name: &str| core.scheduler.plan(name).map(|p| p.status());
    let code = if status_of(&deploy_name) == Some(Status::Error) {
        417
    } else if status_of(&deploy_name) != Some(Status::Complete) {
        202
    } else if status_of("recovery").is_some_and(|s| s != Status::Complete) {
        203
    } else {
        200
    };
    let status = StatusCode::from_u16(code).expect("a valid status code");
    (status, Json(json!({ "value": code }))).into_response()
}
