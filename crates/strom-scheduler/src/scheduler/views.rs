//! Read-only views for the HTTP API: `/v1/endpoints`, `/v1/debug/offers` and the counter
//! part of `/v1/metrics`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::Scheduler;
use crate::plan::Status;
use crate::store::Persister;
use crate::task::TaskState;

/// DNS names to publish beside addresses (on DC/OS: `autoip.dcos.thisdcos.directory` for tasks
/// and `l4lb.thisdcos.directory` for VIPs). Without them only addresses are listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointNaming {
    /// Domain of per-task names: `<task>.<service>.<domain>`.
    pub task_domain: Option<String>,
    /// Domain of VIPs: `<prefix>.<service>.<domain>`.
    pub vip_domain: Option<String>,
}

impl<P: Persister> Scheduler<P> {
    /// `GET /v1/endpoints`: the names of advertised ports, sorted.
    pub fn endpoint_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .spec
            .pods
            .iter()
            .flat_map(|(_, pod)| pod.tasks.iter().flat_map(|(_, task)| task.ports.iter()))
            .filter(|(_, port)| port.advertise)
            .map(|(name, port)| {
                port.vip
                    .as_ref()
                    .map_or(name.to_string(), |vip| vip.prefix.clone())
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// `GET /v1/endpoints/<name>`: `{address, dns, vip?, bootstrap_servers}` over the running
    /// tasks, in task-name order; `None` for an unknown name. `bootstrap_servers` is the
    /// comma-separated address list clients take (what the VIP gave DC/OS users).
    pub fn endpoint(&self, name: &str, naming: &EndpointNaming) -> Option<Value> {
        let mut address = Vec::new();
        let mut dns = Vec::new();
        let mut vip = None;
        let mut known = false;
        for record in self.tasks.values() {
            let Some(pod) = self.spec.pod(&record.info.instance.pod) else {
                continue;
            };
            let Some(task) = pod.tasks.get(&record.info.task) else {
                continue;
            };
            for (port_name, port) in task.ports.iter().filter(|(_, p)| p.advertise) {
                let endpoint_name = port.vip.as_ref().map_or(port_name, |v| v.prefix.as_str());
                if endpoint_name != name {
                    continue;
                }
                known = true;
                if let (Some(v), Some(domain)) = (&port.vip, &naming.vip_domain) {
                    vip = Some(format!(
                        "{}.{}.{domain}:{}",
                        v.prefix, self.spec.name, v.port
                    ));
                }
                let running = record
                    .status
                    .as_ref()
                    .is_some_and(|s| s.state == crate::task::TaskState::Running);
                let Some(assigned) = record.info.ports.get(port_name) else {
                    continue;
                };
                if !running {
                    continue;
                }
                let ip = record
                    .info
                    .env
                    .get("TASK_IP")
                    .cloned()
                    .unwrap_or_else(|| record.info.hostname.clone());
                address.push(format!("{ip}:{assigned}"));
                if let Some(domain) = &naming.task_domain {
                    dns.push(format!(
                        "{}.{}.{domain}:{assigned}",
                        record.info.name, self.spec.name
                    ));
                }
            }
        }
        if !known && !self.endpoint_names().iter().any(|n| n == name) {
            return None;
        }
        let mut body = json!({
            "address": address,
            "dns": dns,
            "bootstrap_servers": address.join(","),
        });
        if let Some(vip) = vip {
            body["vip"] = json!(vip);
        }
        Some(body)
    }

    /// `GET /v1/debug/offers`: for every step waiting for an offer, the recent offers evaluated
    /// for its pod instance and the outcome of each evaluation stage — the answer to "my deploy
    /// is stuck and nothing says why".
    pub fn debug_offers_json(&self) -> Value {
        let mut steps = Vec::new();
        for plan in [&self.deploy, &self.recovery] {
            for (_, step) in plan.steps().filter(|(_, s)| s.status == Status::Prepared) {
                let instance = step.instance.name();
                let offers: Vec<Value> = self
                    .offer_log
                    .iter()
                    .rev()
                    .filter(|o| o.pod_instance == instance)
                    .take(10)
                    .map(|o| {
                        json!({
                            "offer_id": o.offer_id,
                            "agent_id": o.agent_id,
                            "hostname": o.hostname,
                            "passed": o.passed(),
                            "summary": o.to_string(),
                            "stages": o.stages,
                        })
                    })
                    .collect();
                steps.push(json!({
                    "plan": plan.name,
                    "step": step.name,
                    "status": step.status.as_str(),
                    "message": step.message,
                    "offers": offers,
                }));
            }
        }
        json!({ "steps": steps })
    }

    /// The Dropwizard-shaped `/v1/metrics` body for what the core counts: `counters` with the
    /// SDK's names (`offers.received`, `declines.long`, `operation.launch_group`,
    /// `task_status.running`, …) and the `is_suppressed` gauge. Timers (`offers.process`) are
    /// measured by the driver and merged in by the API.
    ///
    /// Gauges: `is_suppressed`, `plan_status.<plan>` (the plan's status, the SDK's name),
    /// `plan_steps.<plan>.<STATUS>` (steps per status) and `tasks.<TASK_STATE>` (recorded
    /// tasks per state; a task without a status yet counts as `TASK_STAGING`).
    pub fn metrics_json(&self) -> Value {
        let counters: serde_json::Map<String, Value> = self
            .counters
            .iter()
            .map(|(name, count)| (name.clone(), json!({ "count": count })))
            .collect();
        let mut gauges = serde_json::Map::new();
        gauges.insert(
            "is_suppressed".into(),
            json!({ "value": self.is_suppressed() }),
        );
        for (plan, status, steps) in self.plan_step_counts() {
            gauges.insert(
                format!("plan_status.{plan}"),
                json!({ "value": status.as_str() }),
            );
            for (step_status, count) in steps {
                gauges.insert(
                    format!("plan_steps.{plan}.{step_status}"),
                    json!({ "value": count }),
                );
            }
        }
        for (state, count) in self.task_state_counts() {
            gauges.insert(format!("tasks.{state}"), json!({ "value": count }));
        }
        json!({
            "version": "4.0.0",
            "gauges": gauges,
            "counters": counters,
            "histograms": {},
            "meters": {},
            "timers": {},
        })
    }

    /// Whether the scheduler last asked the engine to stop sending offers.
    pub fn is_suppressed(&self) -> bool {
        self.suppressed == Some(true)
    }

    /// Per plan (in [`Scheduler::plan_names`] order): its status and how many of its steps are
    /// in each (displayed) status, by the SDK's status name.
    pub fn plan_step_counts(&self) -> Vec<(String, Status, BTreeMap<&'static str, u64>)> {
        self.plan_names()
            .into_iter()
            .filter_map(|name| self.plan(name))
            .map(|plan| {
                let mut steps: BTreeMap<&'static str, u64> = BTreeMap::new();
                for (_, step) in plan.steps() {
                    *steps.entry(step.display_status().as_str()).or_default() += 1;
                }
                (plan.name.clone(), plan.status(), steps)
            })
            .collect()
    }

    /// Recorded tasks per Mesos state name (`TASK_RUNNING`, …); a task without a status yet
    /// counts as `TASK_STAGING`.
    pub fn task_state_counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for record in self.tasks.values() {
            let state = record
                .status
                .as_ref()
                .map_or(TaskState::Staging, |s| s.state);
            let name = serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            *counts.entry(name).or_default() += 1;
        }
        counts
    }
}
