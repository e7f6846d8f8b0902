//! The subscription state machine of the Mesos engine, with injected time: when to
//! (re)subscribe and with which framework id, which stream is current, the heartbeat watchdog,
//! reconnect back-off, which calls may leave (only on a subscription whose framework id the
//! driver has persisted), the REVIVE/SUPPRESS rate limit, and the core's effects as calls.
//!
//! Pure: the shell (`mod.rs`) performs the [`Action`]s and reports what its connections saw,
//! tagged with the generation of the subscription attempt they belong to, so anything from an
//! abandoned stream is ignored. Owns no sockets, no clock, no JSON parsing of events.

use serde_json::{json, Value};

use super::wire::{self, Event, FrameworkSettings, TaskChecks};
use crate::scheduler::Effect;
use crate::task::TaskInfo;

/// Timing of a session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Heartbeats missed before the stream is given up (the docs suggest 5).
    pub heartbeat_misses: u32,
    /// The heartbeat interval assumed until SUBSCRIBED names one (Mesos's default, 15 s).
    pub default_heartbeat_ms: u64,
    /// How long a SUBSCRIBE may wait for its SUBSCRIBED event.
    pub subscribe_timeout_ms: u64,
    /// First reconnect delay; doubles up to `backoff_max_ms` until a subscription succeeds.
    pub backoff_min_ms: u64,
    /// Longest reconnect delay (the docs suggest 15 s).
    pub backoff_max_ms: u64,
    /// At most one REVIVE or SUPPRESS per this interval; requests in between are coalesced.
    pub offer_call_interval_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            heartbeat_misses: 5,
            default_heartbeat_ms: 15_000,
            subscribe_timeout_ms: 30_000,
            backoff_min_ms: 500,
            backoff_max_ms: 15_000,
            offer_call_interval_ms: 5_000,
        }
    }
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Drop any open event stream and open a new one with this SUBSCRIBE call.
    Subscribe { generation: u64, body: Value },
    /// Drop the open event stream.
    Disconnect { reason: String },
    /// Send a call on the calls connection with the stream's `Mesos-Stream-Id`.
    Call {
        generation: u64,
        stream_id: String,
        body: Value,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Disconnected {
        retry_at_ms: u64,
    },
    Connecting {
        since_ms: u64,
        stream_id: Option<String>,
    },
    Subscribed {
        stream_id: String,
        heartbeat_ms: u64,
        last_event_ms: u64,
    },
}

/// One scheduler's subscription to a master. See the module documentation.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    settings: FrameworkSettings,
    phase: Phase,
    generation: u64,
    framework_id: Option<String>,
    backoff_ms: u64,
    /// Whether any subscription succeeded in this process (`force` only on the first).
    subscribed_before: bool,
    /// A subscription the driver has not taken yet; no call leaves until it has.
    untaken: Option<String>,
    /// Calls that must not be lost while disconnected (KILL, TEARDOWN).
    held: Vec<Value>,
    want_suppressed: bool,
    revive_wanted: bool,
    sent_suppressed: Option<bool>,
    /// Whether the last SUBSCRIBE named the role in `suppressed_roles`.
    subscribed_suppressed: bool,
    last_offer_call_ms: Option<u64>,
    /// What happened, for the shell to log.
    notes: Vec<String>,
}

impl Session {
    /// A session that subscribes at once, as `framework_id` if one is stored.
    pub fn new(
        config: SessionConfig,
        settings: FrameworkSettings,
        framework_id: Option<String>,
    ) -> Self {
        Session {
            backoff_ms: config.backoff_min_ms,
            config,
            settings,
            phase: Phase::Disconnected { retry_at_ms: 0 },
            generation: 0,
            framework_id,
            subscribed_before: false,
            untaken: None,
            held: Vec::new(),
            want_suppressed: false,
            revive_wanted: false,
            sent_suppressed: None,
            subscribed_suppressed: false,
            last_offer_call_ms: None,
            notes: Vec::new(),
        }
    }

    /// The framework's name: the service, whose namespace its secrets must be in.
    pub fn service_name(&self) -> &str {
        &self.settings.name
    }

    /// The framework id (stored, or assigned by the master).
    pub fn framework_id(&self) -> Option<&str> {
        self.framework_id.as_deref()
    }

    /// The current subscription attempt.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the stream is subscribed and its framework id was taken by the driver.
    pub fn calls_allowed(&self) -> bool {
        matches!(self.phase, Phase::Subscribed { .. }) && self.untaken.is_none()
    }

    /// Whether the stream is subscribed.
    pub fn is_subscribed(&self) -> bool {
        matches!(self.phase, Phase::Subscribed { .. })
    }

    /// Notes for the log since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// A completed subscription's framework id, once: the driver persists it and starts
    /// reconciliation; calls leave from then on.
    pub fn take_subscription(&mut self, now_ms: u64) -> (Option<String>, Vec<Action>) {
        let Some(id) = self.untaken.take() else {
            return (None, Vec::new());
        };
        let mut actions = Vec::new();
        for body in std::mem::take(&mut self.held) {
            self.push_call(body, &mut actions);
        }
        actions.extend(self.offer_calls(now_ms));
        (Some(id), actions)
    }

    /// Time passed: subscribe when due, give up a silent stream or a SUBSCRIBE that got no
    /// answer, send a due REVIVE/SUPPRESS.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        match &self.phase {
            Phase::Disconnected { retry_at_ms } if now_ms >= *retry_at_ms => {
                self.generation += 1;
                self.phase = Phase::Connecting {
                    since_ms: now_ms,
                    stream_id: None,
                };
                self.subscribed_suppressed = self.want_suppressed;
                let body = wire::subscribe_json(
                    &self.settings,
                    self.framework_id.as_deref(),
                    self.want_suppressed,
                    !self.subscribed_before,
                );
                vec![Action::Subscribe {
                    generation: self.generation,
                    body,
                }]
            }
            Phase::Connecting { since_ms, .. }
                if now_ms.saturating_sub(*since_ms) >= self.config.subscribe_timeout_ms =>
            {
                self.lost("no SUBSCRIBED event in time", now_ms)
            }
            Phase::Subscribed {
                heartbeat_ms,
                last_event_ms,
                ..
            } if now_ms.saturating_sub(*last_event_ms)
                >= heartbeat_ms.saturating_mul(u64::from(self.config.heartbeat_misses)) =>
            {
                let silent = now_ms.saturating_sub(*last_event_ms);
                self.lost(
                    &format!("no event for {silent} ms (heartbeat watchdog)"),
                    now_ms,
                )
            }
            Phase::Subscribed { .. } if self.untaken.is_none() => self.offer_calls(now_ms),
            _ => Vec::new(),
        }
    }

    /// Gives up the current stream; the next subscription is after the back-off.
    fn lost(&mut self, reason: &str, now_ms: u64) -> Vec<Action> {
        self.notes.push(format!(
            "event stream lost: {reason}; resubscribing in {} ms",
            self.backoff_ms
        ));
        self.phase = Phase::Disconnected {
            retry_at_ms: now_ms + self.backoff_ms,
        };
        self.backoff_ms = (self.backoff_ms * 2).min(self.config.backoff_max_ms);
        self.untaken = None;
        vec![Action::Disconnect {
            reason: reason.to_string(),
        }]
    }

    fn current(&self, generation: u64) -> bool {
        generation == self.generation && !matches!(self.phase, Phase::Disconnected { .. })
    }

    /// The SUBSCRIBE answered 200 with this `Mesos-Stream-Id`.
    pub fn stream_opened(&mut self, generation: u64, stream_id: String) {
        if let (
            true,
            Phase::Connecting {
                stream_id: slot, ..
            },
        ) = (generation == self.generation, &mut self.phase)
        {
            *slot = Some(stream_id);
        }
    }

    /// The stream (or the SUBSCRIBE, or a call refused with 403) failed.
    pub fn stream_failed(&mut self, generation: u64, reason: &str, now_ms: u64) -> Vec<Action> {
        if !self.current(generation) {
            return Vec::new();
        }
        self.lost(reason, now_ms)
    }

    /// An event of stream `generation`.
    pub fn event(&mut self, generation: u64, event: &Event, now_ms: u64) -> Vec<Action> {
        if !self.current(generation) {
            return Vec::new();
        }
        match (&mut self.phase, event) {
            (
                Phase::Connecting { stream_id, .. },
                Event::Subscribed {
                    framework_id,
                    heartbeat_interval_ms,
                },
            ) => {
                let Some(stream_id) = stream_id.take() else {
                    return self.lost("SUBSCRIBED without a Mesos-Stream-Id", now_ms);
                };
                self.phase = Phase::Subscribed {
                    stream_id,
                    heartbeat_ms: heartbeat_interval_ms.unwrap_or(self.config.default_heartbeat_ms),
                    last_event_ms: now_ms,
                };
                self.framework_id = Some(framework_id.clone());
                self.untaken = Some(framework_id.clone());
                self.subscribed_before = true;
                self.backoff_ms = self.config.backoff_min_ms;
                // The subscription's suppression is what SUBSCRIBE said (a wish that changed
                // since is sent as a call); a pending REVIVE stays wanted (it clears filters).
                self.sent_suppressed = Some(self.subscribed_suppressed);
                if self.subscribed_suppressed && !self.want_suppressed {
                    self.revive_wanted = true;
                }
                self.last_offer_call_ms = None;
                self.notes
                    .push(format!("subscribed as framework {framework_id}"));
                Vec::new()
            }
            (Phase::Connecting { .. }, _) => {
                self.lost("the first event was not SUBSCRIBED", now_ms)
            }
            (Phase::Subscribed { .. }, Event::Subscribed { .. }) => {
                self.lost("a second SUBSCRIBED on one stream", now_ms)
            }
            (Phase::Subscribed { .. }, Event::Error { message }) => {
                self.lost(&format!("ERROR event: {message}"), now_ms)
            }
            (Phase::Subscribed { last_event_ms, .. }, _) => {
                *last_event_ms = now_ms;
                Vec::new()
            }
            (Phase::Disconnected { .. }, _) => Vec::new(),
        }
    }

    fn push_call(&mut self, mut body: Value, actions: &mut Vec<Action>) {
        match &self.phase {
            Phase::Subscribed { stream_id, .. } if self.untaken.is_none() => {
                // A held call was built before the master named the framework: name it now.
                body["framework_id"] = json!({"value": self.framework_id});
                actions.push(Action::Call {
                    generation: self.generation,
                    stream_id: stream_id.clone(),
                    body,
                })
            }
            _ => {
                let kind = body["type"].as_str().unwrap_or_default();
                if matches!(kind, "KILL" | "TEARDOWN") {
                    self.held.push(body);
                } else {
                    // Offers die with the stream and statuses are sent again: nothing lost.
                    self.notes.push(format!("not subscribed: {kind} dropped"));
                }
            }
        }
    }

    /// REVIVE or SUPPRESS when one is wanted and the rate limit allows.
    fn offer_calls(&mut self, now_ms: u64) -> Vec<Action> {
        let due = self
            .last_offer_call_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= self.config.offer_call_interval_ms);
        let kind = if self.revive_wanted {
            "REVIVE"
        } else if self.want_suppressed && self.sent_suppressed != Some(true) {
            "SUPPRESS"
        } else {
            return Vec::new();
        };
        if !due || !self.calls_allowed() {
            return Vec::new();
        }
        self.revive_wanted = false;
        self.sent_suppressed = Some(kind == "SUPPRESS");
        self.last_offer_call_ms = Some(now_ms);
        let field = kind.to_lowercase();
        let body = json!({"roles": [self.settings.role]});
        let id = self.framework_id.clone().unwrap_or_default();
        let mut actions = Vec::new();
        self.push_call(wire::call(&id, kind, Some((&field, body))), &mut actions);
        actions
    }

    /// The core's effects as calls.
    pub fn effects(
        &mut self,
        effects: &[Effect],
        now_ms: u64,
        checks: &dyn Fn(&TaskInfo) -> TaskChecks,
    ) -> Vec<Action> {
        let id = self.framework_id.clone().unwrap_or_default();
        let role = self.settings.role.clone();
        let mut actions = Vec::new();
        let value = |v: &str| json!({"value": v});
        for effect in effects {
            let body = match effect {
                Effect::Accept {
                    offer_id,
                    operations,
                    ..
                } => wire::call(
                    &id,
                    "ACCEPT",
                    Some((
                        "accept",
                        json!({
                            "offer_ids": [value(offer_id)],
                            "operations": operations
                                .iter()
                                .map(|op| wire::operation_json(op, &id, &role, checks))
                                .collect::<Vec<_>>(),
                            "filters": {"refuse_seconds": 5.0},
                        }),
                    )),
                ),
                Effect::Decline {
                    offer_id,
                    refuse_seconds,
                } => wire::call(
                    &id,
                    "DECLINE",
                    Some((
                        "decline",
                        json!({"offer_ids": [value(offer_id)],
                               "filters": {"refuse_seconds": *refuse_seconds as f64}}),
                    )),
                ),
                Effect::Kill { task_id, agent_id } => wire::call(
                    &id,
                    "KILL",
                    Some((
                        "kill",
                        json!({"task_id": value(task_id), "agent_id": value(agent_id)}),
                    )),
                ),
                Effect::Acknowledge {
                    task_id,
                    agent_id,
                    uuid,
                } => wire::call(
                    &id,
                    "ACKNOWLEDGE",
                    Some((
                        "acknowledge",
                        json!({"agent_id": value(agent_id), "task_id": value(task_id),
                               "uuid": uuid}),
                    )),
                ),
                Effect::Reconcile { tasks } => wire::call(
                    &id,
                    "RECONCILE",
                    Some((
                        "reconcile",
                        json!({"tasks": tasks
                            .iter()
                            .map(|(task, agent)| json!({"task_id": value(task),
                                                        "agent_id": value(agent)}))
                            .collect::<Vec<_>>()}),
                    )),
                ),
                Effect::Teardown => wire::call(&id, "TEARDOWN", None),
                Effect::Revive => {
                    self.want_suppressed = false;
                    self.revive_wanted = true;
                    continue;
                }
                Effect::Suppress => {
                    self.want_suppressed = true;
                    self.revive_wanted = false;
                    continue;
                }
            };
            self.push_call(body, &mut actions);
        }
        actions.extend(self.offer_calls(now_ms));
        actions
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
