//! Seeded simulation of the Mesos engine's subscription state machine (`engine::mesos::session`)
//! on injected time: random clock steps, SUBSCRIBEs answered, refused or left hanging, events on
//! the current and on abandoned streams, streams failing, hostile first events, and random
//! effects from the core. Checked after every step: a call leaves only on the current
//! subscription, with its stream id, after the driver took the framework id; a new SUBSCRIBE
//! only after the previous stream was given up, with a growing generation and the stored
//! framework id once known; REVIVE/SUPPRESS at least the interval apart on one subscription.
//! At the end, a healthy subscription delivers every KILL exactly once and the master's view of
//! suppression matches the core's last wish.
//!
//! `STROM_MESOS_SIM_SEED=<n>` replays one seed with a trace; `STROM_MESOS_SIM_SEEDS` runs more
//! (default 300).

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use strom_scheduler::engine::mesos::session::{Action, Session, SessionConfig};
use strom_scheduler::engine::mesos::wire::{Event, FrameworkSettings, TaskChecks};
use strom_scheduler::scheduler::Effect;
use strom_scheduler::task::TaskInfo;
use strom_testkit::seeds::Seeds;

const INTERVAL_MS: u64 = 1_000;

fn no_checks(_: &TaskInfo) -> TaskChecks {
    TaskChecks::default()
}

struct World {
    session: Session,
    now: u64,
    /// The generation of the last SUBSCRIBE and whether its stream may still be live.
    stream: Option<(u64, bool)>,
    /// Whether SUBSCRIBED was delivered on `stream`.
    subscribed: bool,
    taken: bool,
    framework_id: Option<String>,
    kills_wanted: u64,
    kills_sent: u64,
    last_offer_call: Option<(u64, u64)>,
    /// The master's view: suppressed or not (from SUBSCRIBE and REVIVE/SUPPRESS calls).
    master_suppressed: bool,
    wish_suppressed: Option<bool>,
    trace: bool,
}

impl World {
    fn perform(&mut self, actions: Vec<Action>, what: &str) {
        for action in actions {
            if self.trace {
                eprintln!("t={} {what}: {action:?}", self.now);
            }
            match action {
                Action::Subscribe { generation, body } => {
                    if let Some((previous, live)) = self.stream {
                        assert!(!live, "SUBSCRIBE while stream {previous} is live");
                        assert!(generation > previous, "generation must grow");
                    }
                    let id = body["subscribe"]["framework_info"]["id"]["value"].as_str();
                    assert_eq!(id, self.framework_id.as_deref(), "the known framework id");
                    self.master_suppressed = body["subscribe"]["suppressed_roles"].is_array();
                    self.stream = Some((generation, true));
                    self.subscribed = false;
                    self.taken = false;
                    self.last_offer_call = None;
                }
                Action::Disconnect { .. } => {
                    if let Some((_, live)) = &mut self.stream {
                        *live = false;
                    }
                    self.subscribed = false;
                }
                Action::Call {
                    generation,
                    stream_id,
                    body,
                } => {
                    let (current, live) = self.stream.expect("a call without a stream");
                    assert!(
                        live && self.subscribed && self.taken,
                        "call before use allowed"
                    );
                    assert_eq!(generation, current);
                    assert_eq!(stream_id, format!("s-{generation}"));
                    assert_eq!(
                        body["framework_id"]["value"].as_str(),
                        self.framework_id.as_deref()
                    );
                    match body["type"].as_str().unwrap() {
                        "KILL" => self.kills_sent += 1,
                        kind @ ("REVIVE" | "SUPPRESS") => {
                            if let Some((g, at)) = self.last_offer_call {
                                if g == generation {
                                    assert!(self.now - at >= INTERVAL_MS, "rate limit");
                                }
                            }
                            self.last_offer_call = Some((generation, self.now));
                            self.master_suppressed = kind == "SUPPRESS";
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn effects(&mut self, rng: &mut ChaCha8Rng) {
        let mut effects = Vec::new();
        for _ in 0..rng.next_u32() % 3 {
            effects.push(match rng.next_u32() % 5 {
                0 => {
                    self.kills_wanted += 1;
                    Effect::Kill {
                        task_id: format!("t-{}", self.kills_wanted),
                        agent_id: "a".into(),
                    }
                }
                1 => {
                    self.wish_suppressed = Some(false);
                    Effect::Revive
                }
                2 => {
                    self.wish_suppressed = Some(true);
                    Effect::Suppress
                }
                3 => Effect::Decline {
                    offer_id: "o".into(),
                    refuse_seconds: 5,
                },
                _ => Effect::Acknowledge {
                    task_id: "t".into(),
                    agent_id: "a".into(),
                    uuid: "AAEC".into(),
                },
            });
        }
        let actions = self.session.effects(&effects, self.now, &no_checks);
        self.perform(actions, "effects");
    }

    /// `drive_once`'s part: take a subscription, persisting its id.
    fn take(&mut self) {
        let (id, actions) = self.session.take_subscription(self.now);
        if let Some(id) = id {
            assert!(self.subscribed, "taken without SUBSCRIBED");
            self.framework_id = Some(id);
            self.taken = true;
        }
        self.perform(actions, "take");
    }

    fn subscribed_event(&mut self, generation: u64) {
        self.session
            .stream_opened(generation, format!("s-{generation}"));
        let event = Event::Subscribed {
            framework_id: "fw-1".into(),
            heartbeat_interval_ms: Some(1_000),
        };
        let live = self.stream == Some((generation, true));
        let actions = self.session.event(generation, &event, self.now);
        if live && actions.is_empty() {
            self.subscribed = true;
        }
        self.perform(actions, "subscribed");
    }
}

fn run(seed: u64, trace: bool) -> (u64, u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let config = SessionConfig {
        heartbeat_misses: 3,
        default_heartbeat_ms: 1_000,
        subscribe_timeout_ms: 2_000,
        backoff_min_ms: 100,
        backoff_max_ms: 1_600,
        offer_call_interval_ms: INTERVAL_MS,
    };
    let settings = FrameworkSettings {
        name: "kafka".into(),
        user: "nobody".into(),
        role: "kafka-role".into(),
        principal: "p".into(),
        failover_timeout_seconds: 1.0,
    };
    let mut world = World {
        session: Session::new(config, settings, None),
        now: 0,
        stream: None,
        subscribed: false,
        taken: false,
        framework_id: None,
        kills_wanted: 0,
        kills_sent: 0,
        last_offer_call: None,
        master_suppressed: false,
        wish_suppressed: None,
        trace,
    };
    let steps = 200 + rng.next_u32() % 300;
    for _ in 0..steps {
        world.now += u64::from(rng.next_u32() % 700);
        let generation = world.stream.map_or(0, |(g, _)| g);
        let some_generation = generation.saturating_sub(u64::from(rng.next_u32() % 2));
        match rng.next_u32() % 10 {
            0 | 1 => world.subscribed_event(some_generation),
            2 => {
                let actions = world
                    .session
                    .stream_failed(some_generation, "broken", world.now);
                world.perform(actions, "failed");
            }
            3 | 4 => {
                let event = match rng.next_u32() % 4 {
                    0 => Event::Error {
                        message: "no".into(),
                    },
                    1 => Event::Offers(vec![]),
                    _ => Event::Heartbeat,
                };
                let actions = world.session.event(some_generation, &event, world.now);
                world.perform(actions, "event");
            }
            5 | 6 => world.effects(&mut rng),
            _ => {}
        }
        world.take();
        let actions = world.session.tick(world.now);
        world.perform(actions, "tick");
    }
    // A healthy end: subscribe, heartbeat, and let the rate limit pass.
    for _ in 0..20 {
        world.now += 500;
        let actions = world.session.tick(world.now);
        world.perform(actions, "tick");
        if let Some((generation, true)) = world.stream {
            if !world.subscribed {
                world.subscribed_event(generation);
            }
            let actions = world
                .session
                .event(generation, &Event::Heartbeat, world.now);
            world.perform(actions, "heartbeat");
        }
        world.take();
    }
    assert!(world.taken, "subscribed at the end");
    assert_eq!(
        world.kills_sent, world.kills_wanted,
        "every KILL exactly once"
    );
    if let Some(wish) = world.wish_suppressed {
        assert_eq!(
            world.master_suppressed, wish,
            "the master sees the last wish"
        );
    }
    (world.kills_wanted, steps.into())
}

#[test]
fn the_session_keeps_its_invariants_under_random_schedules() {
    let mut kills = 0;
    let seeds = Seeds {
        prefix: "STROM_MESOS_SIM",
        replay: "cargo nextest run -p strom-scheduler --test mesos_session_sim",
        count: 300,
        budget_s: 20,
    };
    let ran = seeds.run(run, |(k, _)| kills += k);
    if let Some(ran) = ran {
        assert!(ran.seeds >= 50, "only {} seeds ran", ran.seeds);
        assert!(kills > 100, "the schedules kill: {kills}");
    }
}
