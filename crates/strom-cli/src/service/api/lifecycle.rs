//! Whole-service commands: `POST /v1/update` (the options of `strom service update start
//! --options`, rendered and validated as DC/OS's Cosmos + scheduler restart did, but in place)
//! and `POST /v1/uninstall` (what `SDK_UNINSTALL` does, started on a running scheduler, which
//! exits once the service is gone). Both need the token when one is configured.
//!
//! Update answers: 200 with the target id when accepted (changed or not), 417 with the
//! validators' messages when refused (the old target stays and the deploy plan shows the
//! errors, as the SDK's did), 400 for options that do not render (unknown keys, bad JSON).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use strom_scheduler::engine::Engine;
use strom_scheduler::spec::kafka::render_kafka_service;

use super::{message, scheduler_error, Api};
use crate::service::{normalize_options, TARGET_OPTIONS_PROPERTY};

pub(super) async fn update(State(api): State<Api>, headers: HeaderMap, body: String) -> Response {
    if let Some(refused) = api.refuse(&headers) {
        return refused;
    }
    let mut guard = api.lock();
    let core = &mut *guard;
    let options = match normalize_options(&body, &core.service) {
        Ok(options) => options,
        Err(error) => return message(StatusCode::BAD_REQUEST, &format!("{error:#}")),
    };
    let rendered = match render_kafka_service(&options, &core.base_env) {
        Ok(rendered) => rendered,
        Err(error) => {
            return message(
                StatusCode::BAD_REQUEST,
                &format!("the service spec was refused: {error}"),
            )
        }
    };
    let outcome = match core.scheduler.update(&rendered.spec) {
        Ok(outcome) => outcome,
        Err(error) => return scheduler_error(error),
    };
    if !outcome.errors.is_empty() {
        let errors: Vec<String> = outcome.errors.iter().map(ToString::to_string).collect();
        return (
            StatusCode::EXPECTATION_FAILED,
            Json(json!({
                "message": format!("the update was refused: {}", errors.join("; ")),
                "errors": errors,
                "target_id": outcome.target_id,
            })),
        )
            .into_response();
    }
    if let Err(error) = core
        .scheduler
        .set_property(TARGET_OPTIONS_PROPERTY, options.as_bytes())
    {
        return message(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string());
    }
    core.engine.set_spec(core.scheduler.spec());
    let mut equivalent: Vec<&String> = outcome.equivalent_pods.iter().collect();
    equivalent.sort();
    Json(json!({
        "message": if outcome.changed {
            "Update accepted: the deploy plan rolls the changed pods"
        } else {
            "Update accepted: nothing changed"
        },
        "target_id": outcome.target_id,
        "changed": outcome.changed,
        "unchanged_pods": equivalent,
    }))
    .into_response()
}

pub(super) async fn uninstall(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(refused) = api.refuse(&headers) {
        return refused;
    }
    let mut guard = api.lock();
    let core = &mut *guard;
    let now_ms = core.now_ms();
    match core.scheduler.uninstall(now_ms) {
        Ok(effects) => {
            core.engine.apply(&effects, now_ms);
            Json(json!({ "message": "Received cmd: uninstall" })).into_response()
        }
        Err(error) => message(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}
