//! The scheduler's metrics beyond the core's counters: the `offers.process` timer (how long the
//! core took over each batch of offers, measured by the driver around `handle`), and the
//! Prometheus text exposition of everything (`/v1/metrics/prometheus` and `/metrics`).
//!
//! Names are the SDK's with `.` as `_` (`offers.received` → `offers_received_total`,
//! `operation.launch_group` → `operation_launch_group_total`, `task_status.task_running` →
//! `task_status_task_running_total`), plus labelled gauges for what the JSON has as gauges:
//! `is_suppressed`, `plan_status{plan,status}` (1 for the plan's current status),
//! `plan_steps{plan,status}` and `tasks{state}`. `offers_process_seconds` is a histogram.
//!
//! The Dropwizard timer in `/v1/metrics` is computed from the last [`TIMER_SAMPLES`]
//! observations (percentiles, min/max/mean) and their timestamps (rates over 1/5/15 minutes,
//! bounded by that window); Dropwizard decays exponentially instead, which this approximates.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde_json::{json, Value};

use super::Core;

/// How many recent observations the JSON timer keeps.
pub(crate) const TIMER_SAMPLES: usize = 1028;

type Labels = Vec<(String, String)>;

/// The `offers.process` timer.
pub(crate) struct OfferTimer {
    started: Instant,
    count: u64,
    /// (when, duration) of the most recent observations, oldest first.
    samples: VecDeque<(Instant, Duration)>,
    histogram: Histogram,
}

impl OfferTimer {
    pub fn new() -> Self {
        OfferTimer {
            started: Instant::now(),
            count: 0,
            samples: VecDeque::with_capacity(TIMER_SAMPLES),
            // 50 µs to about 13 s.
            histogram: Histogram::new(exponential_buckets(0.000_05, 4.0, 10)),
        }
    }

    /// Records one batch of offers handled in `took`.
    pub fn observe(&mut self, took: Duration) {
        self.count += 1;
        if self.samples.len() == TIMER_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((Instant::now(), took));
        self.histogram.observe(took.as_secs_f64());
    }

    /// The Dropwizard timer JSON, durations in milliseconds.
    pub fn to_json(&self) -> Value {
        let mut millis: Vec<f64> = self
            .samples
            .iter()
            .map(|(_, d)| d.as_secs_f64() * 1000.0)
            .collect();
        millis.sort_by(f64::total_cmp);
        let quantile = |q: f64| -> f64 {
            if millis.is_empty() {
                return 0.0;
            }
            let index = ((millis.len() as f64 - 1.0) * q).round() as usize;
            millis[index.min(millis.len() - 1)]
        };
        let mean = if millis.is_empty() {
            0.0
        } else {
            millis.iter().sum::<f64>() / millis.len() as f64
        };
        let stddev = if millis.len() < 2 {
            0.0
        } else {
            (millis.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (millis.len() - 1) as f64)
                .sqrt()
        };
        let now = Instant::now();
        let rate = |window: Duration| -> f64 {
            let recent = self
                .samples
                .iter()
                .filter(|(at, _)| now.duration_since(*at) <= window)
                .count();
            let span = window.min(now.duration_since(self.started)).as_secs_f64();
            if span > 0.0 {
                recent as f64 / span
            } else {
                0.0
            }
        };
        let elapsed = now.duration_since(self.started).as_secs_f64();
        json!({
            "count": self.count,
            "max": millis.last().copied().unwrap_or(0.0),
            "mean": mean,
            "min": millis.first().copied().unwrap_or(0.0),
            "p50": quantile(0.50),
            "p75": quantile(0.75),
            "p95": quantile(0.95),
            "p98": quantile(0.98),
            "p99": quantile(0.99),
            "p999": quantile(0.999),
            "stddev": stddev,
            "m1_rate": rate(Duration::from_secs(60)),
            "m5_rate": rate(Duration::from_secs(300)),
            "m15_rate": rate(Duration::from_secs(900)),
            "mean_rate": if elapsed > 0.0 { self.count as f64 / elapsed } else { 0.0 },
            "duration_units": "milliseconds",
            "rate_units": "calls/second",
        })
    }
}

/// The SDK metric name as a Prometheus name.
fn prometheus_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .to_ascii_lowercase()
}

/// `/v1/metrics`: the core's Dropwizard JSON with the `offers.process` timer merged in.
pub(crate) fn metrics_json(core: &Core) -> Value {
    let mut body = core.scheduler.metrics_json();
    body["timers"]["offers.process"] = core.offer_timer.to_json();
    body
}

/// `/v1/metrics/prometheus`: the text exposition format (version 0.0.4, OpenMetrics-style
/// `# EOF` as `prometheus-client` writes it).
pub(crate) fn prometheus_text(core: &Core) -> String {
    let mut registry = Registry::default();
    for (name, value) in core.scheduler.counters() {
        let counter: Counter = Counter::default();
        counter.inc_by(*value);
        registry.register(
            prometheus_name(name),
            format!("The scheduler's {name} counter"),
            counter,
        );
    }
    let suppressed: Gauge = Gauge::default();
    suppressed.set(i64::from(core.scheduler.is_suppressed()));
    registry.register(
        "is_suppressed",
        "Whether offers are suppressed (1) or wanted (0)",
        suppressed,
    );
    let plan_status = Family::<Labels, Gauge>::default();
    let plan_steps = Family::<Labels, Gauge>::default();
    for (plan, status, steps) in core.scheduler.plan_step_counts() {
        plan_status
            .get_or_create(&vec![
                ("plan".into(), plan.clone()),
                ("status".into(), status.as_str().into()),
            ])
            .set(1);
        for (step_status, count) in steps {
            plan_steps
                .get_or_create(&vec![
                    ("plan".into(), plan.clone()),
                    ("status".into(), step_status.into()),
                ])
                .set(count as i64);
        }
    }
    registry.register(
        "plan_status",
        "1 for each plan's current status",
        plan_status,
    );
    registry.register("plan_steps", "Steps of each plan per status", plan_steps);
    let tasks = Family::<Labels, Gauge>::default();
    for (state, count) in core.scheduler.task_state_counts() {
        tasks
            .get_or_create(&vec![("state".into(), state)])
            .set(count as i64);
    }
    registry.register("tasks", "Recorded tasks per Mesos task state", tasks);
    registry.register(
        "offers_process_seconds",
        "How long the scheduler took over a batch of offers",
        core.offer_timer.histogram.clone(),
    );
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String cannot fail");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_timer_percentiles() {
        assert_eq!(
            prometheus_name("operation.launch_group"),
            "operation_launch_group"
        );
        assert_eq!(
            prometheus_name("task_status.TASK_RUNNING"),
            "task_status_task_running"
        );
        let mut timer = OfferTimer::new();
        assert_eq!(timer.to_json()["count"], 0);
        for ms in 1..=100 {
            timer.observe(Duration::from_millis(ms));
        }
        let json = timer.to_json();
        assert_eq!(json["count"], 100);
        assert_eq!(json["min"], 1.0);
        assert_eq!(json["max"], 100.0);
        assert_eq!(json["p50"], 51.0);
        assert_eq!(json["p99"], 99.0);
        assert_eq!(json["mean"], 50.5);
        assert!(json["m1_rate"].as_f64().unwrap() > 0.0);
        for _ in 0..TIMER_SAMPLES {
            timer.observe(Duration::from_millis(7));
        }
        let json = timer.to_json();
        assert_eq!(json["count"], 100 + TIMER_SAMPLES as u64);
        assert_eq!(json["max"], 7.0, "only the last samples are kept");
    }
}
