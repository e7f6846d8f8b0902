//! The Kafka service Strom ships: its `svc.yml` and `server.properties` templates, and the
//! function that turns options JSON plus the process environment into a [`ServiceSpec`].
//!
//! The templates live in `crates/strom-scheduler/dist/` and are compiled in, so the binary
//! needs no files beside it.

use std::collections::BTreeMap;

use crate::spec::{options, render, ServiceSpec, SpecError};

/// The shipped `svc.yml` template.
pub const SVC_YML: &str = include_str!("../../dist/svc.yml");

/// The shipped broker configuration template (`server.properties.mustache`).
pub const SERVER_PROPERTIES: &str = include_str!("../../dist/server.properties.mustache");

/// The embedded ZooKeeper's configuration template (`zoo.cfg.mustache`).
pub const ZOO_CFG: &str = include_str!("../../dist/zoo.cfg.mustache");

/// The config templates `svc.yml` may name.
pub fn template_source(name: &str) -> Option<String> {
    match name {
        "server.properties.mustache" => Some(SERVER_PROPERTIES.to_string()),
        "zoo.cfg.mustache" => Some(ZOO_CFG.to_string()),
        _ => None,
    }
}

/// A rendered service: the spec and the scheduler environment it was rendered from.
#[derive(Clone, Debug)]
pub struct RenderedService {
    /// The typed spec.
    pub spec: ServiceSpec,
    /// The environment `svc.yml` was rendered from (also what task env routing used).
    pub env: BTreeMap<String, String>,
}

/// Renders the shipped Kafka service from `options` (JSON text, DC/OS package style) over
/// `base_env` (the scheduler's process environment).
pub fn render_kafka_service(
    options_json: &str,
    base_env: &BTreeMap<String, String>,
) -> Result<RenderedService, SpecError> {
    let mut env = options::scheduler_env(options_json, base_env, SERVER_PROPERTIES)?;
    super::ensemble::apply(&mut env)?;
    let spec = render_service(SVC_YML, &env, &template_source)?;
    Ok(RenderedService { spec, env })
}

/// Renders any `svc.yml` template from `env` and parses it.
pub fn render_service(
    svc_yml: &str,
    env: &BTreeMap<String, String>,
    template_source: &dyn Fn(&str) -> Option<String>,
) -> Result<ServiceSpec, SpecError> {
    let rendered = render::render("svc.yml", svc_yml, env)?;
    ServiceSpec::parse(&rendered, env, template_source)
}
