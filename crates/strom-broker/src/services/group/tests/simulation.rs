//! A seeded simulation: one group, a fake clock, and simulated consumers that behave like
//! the Java client (rejoin on `REBALANCE_IN_PROGRESS`, reset on `UNKNOWN_MEMBER_ID`, die on
//! `FENCED_INSTANCE_ID`; the leader assigns partitions 0..6 round-robin over the members it
//! was given). Clients also crash, restart, leave, go silent and change their metadata.
//!
//! After every event the checker asserts: the generation never decreases; there is a
//! leader iff there are members, and it is one; after a tick no deadline is overdue; every
//! parked request is answered exactly once; in Stable the stored assignments partition
//! 0..6 exactly; clients that believe they are in the same generation own disjoint
//! partitions; a persisted snapshot restores to itself. At the end the chaos stops and the
//! group must settle into Stable with every live client in it.
//!
//! A failure prints its seed; `STROM_GROUP_SEED=<seed> cargo test -p strom-broker --lib
//! group::tests::simulation` replays it alone.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError as E};

use super::Rng;
use crate::services::group::{
    Effect, Group, GroupConfig, GroupState, JoinRequest, JoinResult, JoinedMember, SyncRequest,
    SyncResult,
};

const PARTITIONS: u8 = 6;
const SEEDS: u64 = 300;
const STEPS: usize = 400;

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Not in a generation; will send JoinGroup.
    Idle,
    /// A JoinGroup is parked.
    Joining,
    /// Got a generation; will send SyncGroup (with an assignment if leader).
    NeedSync { assignments: Vec<(String, Bytes)> },
    /// A SyncGroup is parked.
    Syncing,
    /// Has an assignment for `generation`.
    Stable { partitions: Vec<u8> },
    /// Crashed, or fenced: sends nothing until restarted.
    Down,
}

#[derive(Clone, Debug)]
struct Client {
    client_id: String,
    instance: Option<String>,
    member_id: String,
    generation: i32,
    phase: Phase,
    /// Bumped on every restart, so answers to a previous incarnation are dropped.
    incarnation: u32,
    require_known_member_id: bool,
    supports_skip_assignment: bool,
    protocols: Vec<(String, Bytes)>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    /// A previous incarnation of a static client that kept running after its replacement
    /// started (a partitioned host): it owns stale partitions until it hears
    /// `FENCED_INSTANCE_ID`, and never restarts.
    zombie: bool,
}

struct Sim {
    rng: Rng,
    group: Group,
    now: i64,
    clients: Vec<Client>,
    next_token: u64,
    /// Parked requests: token → (client, incarnation).
    outstanding: BTreeMap<u64, (usize, u32)>,
    answered: BTreeSet<u64>,
    max_generation: i32,
    trace: Vec<String>,
    /// How often each interesting thing happened, to check the simulation reaches it.
    coverage: BTreeMap<&'static str, u64>,
}

fn protocols_for(rng: &mut Rng) -> Vec<(String, Bytes)> {
    // Everyone supports "range", so a common protocol always exists; preferences vary.
    let mut names = vec!["range", "roundrobin", "cooperative-sticky"];
    let keep = 1 + rng.below(3) as usize;
    names.truncate(keep);
    let rotate = rng.below(keep as u64) as usize;
    names.rotate_left(rotate);
    let version = rng.below(2);
    names
        .iter()
        .map(|n| (n.to_string(), Bytes::from(format!("{n}:v{version}"))))
        .collect()
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let config = GroupConfig {
            initial_rebalance_delay_ms: [0, 100, 3_000][rng.below(3) as usize],
            ..GroupConfig::default()
        };
        let count = 1 + rng.below(5) as usize;
        let clients = (0..count)
            .map(|i| Client {
                client_id: format!("client{i}"),
                instance: rng.percent(40).then(|| format!("instance{i}")),
                member_id: String::new(),
                generation: -1,
                phase: Phase::Idle,
                incarnation: 0,
                zombie: false,
                require_known_member_id: rng.percent(50),
                supports_skip_assignment: rng.percent(50),
                protocols: protocols_for(&mut rng),
                session_timeout_ms: 6_000 + rng.below(6_000) as i32,
                rebalance_timeout_ms: 6_000 + rng.below(20_000) as i32,
            })
            .collect();
        Sim {
            rng,
            group: Group::new("sim".to_string(), config),
            now: 0,
            clients,
            next_token: 0,
            outstanding: BTreeMap::new(),
            answered: BTreeSet::new(),
            max_generation: 0,
            trace: Vec::new(),
            coverage: BTreeMap::new(),
        }
    }

    fn park(&mut self, client: usize) -> u64 {
        self.next_token += 1;
        self.outstanding
            .insert(self.next_token, (client, self.clients[client].incarnation));
        self.next_token
    }

    fn send_join(&mut self, index: usize) {
        let token = self.park(index);
        let c = &mut self.clients[index];
        c.phase = Phase::Joining;
        let request = JoinRequest {
            token,
            member_id: c.member_id.clone(),
            group_instance_id: c.instance.clone(),
            client_id: c.client_id.clone(),
            client_host: "/10.0.0.1".to_string(),
            protocol_type: "consumer".to_string(),
            protocols: c.protocols.clone(),
            session_timeout_ms: c.session_timeout_ms,
            rebalance_timeout_ms: c.rebalance_timeout_ms,
            require_known_member_id: c.require_known_member_id,
            reason: None,
        };
        self.trace.push(format!(
            "{} join {} as {:?}",
            self.now, c.client_id, c.member_id
        ));
        let fresh = self.rng.u128();
        let skip = self.clients[index].supports_skip_assignment;
        let effects = self
            .group
            .join_with_skip_assignment(request, self.now, fresh, skip);
        self.apply(effects);
    }

    fn send_sync(&mut self, index: usize, assignments: Vec<(String, Bytes)>) {
        let token = self.park(index);
        let c = &mut self.clients[index];
        c.phase = Phase::Syncing;
        let request = SyncRequest {
            token,
            member_id: c.member_id.clone(),
            generation_id: c.generation,
            group_instance_id: c.instance.clone(),
            protocol_type: Some("consumer".to_string()),
            protocol_name: None,
            assignments,
        };
        self.trace.push(format!(
            "{} sync {} gen {}",
            self.now, c.member_id, c.generation
        ));
        let effects = self.group.sync(request, self.now);
        self.apply(effects);
    }

    fn saw(&mut self, what: &'static str) {
        *self.coverage.entry(what).or_default() += 1;
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Persist => self.check_persist(),
                Effect::Join(token, result) => {
                    if let Some(client) = self.answer(token) {
                        self.on_join(client, result);
                    }
                }
                Effect::Sync(token, result) => {
                    if let Some(client) = self.answer(token) {
                        self.on_sync(client, result);
                    }
                }
            }
        }
    }

    /// Marks `token` answered; the client it belongs to, unless that incarnation is gone.
    fn answer(&mut self, token: u64) -> Option<usize> {
        assert!(self.answered.insert(token), "token {token} answered twice");
        let (client, incarnation) = self.outstanding.remove(&token).expect("a parked token");
        let c = &self.clients[client];
        // A crashed or hung client never reads its answers.
        (c.incarnation == incarnation && c.phase != Phase::Down).then_some(client)
    }

    fn on_join(&mut self, index: usize, result: JoinResult) {
        self.trace.push(format!("  join answer {result:?}"));
        self.saw(match result.error_code.err() {
            None if result.skip_assignment => "join skip_assignment",
            None => "join ok",
            Some(E::MemberIdRequired) => "join member id required",
            Some(E::FencedInstanceId) => "join fenced",
            Some(E::UnknownMemberId) => "join unknown member",
            Some(_) => "join other error",
        });
        let c = &mut self.clients[index];
        assert_eq!(c.phase, Phase::Joining);
        if c.zombie && result.error_code != 0 {
            // A zombie gives up at the first error; it never reclaims its instance id.
            c.phase = Phase::Down;
            return;
        }
        match result.error_code.err() {
            None => {
                c.member_id = result.member_id.clone();
                c.generation = result.generation_id;
                let is_leader = result.leader == result.member_id;
                assert_eq!(
                    !result.members.is_empty(),
                    is_leader,
                    "only the leader gets the member list"
                );
                let assignments = if is_leader && !result.skip_assignment {
                    round_robin(&result.members)
                } else {
                    Vec::new()
                };
                c.phase = Phase::NeedSync { assignments };
            }
            Some(E::MemberIdRequired) => {
                c.member_id = result.member_id;
                c.phase = Phase::Idle;
            }
            Some(E::RebalanceInProgress) => c.phase = Phase::Idle,
            Some(E::UnknownMemberId) => {
                c.member_id.clear();
                c.phase = Phase::Idle;
            }
            Some(E::FencedInstanceId) => c.phase = Phase::Down,
            Some(other) => panic!("unexpected join error {other:?}"),
        }
    }

    fn on_sync(&mut self, index: usize, result: SyncResult) {
        self.trace.push(format!("  sync answer {result:?}"));
        self.saw(match result.error_code.err() {
            None => "sync ok",
            Some(E::RebalanceInProgress) => "sync rebalance in progress",
            Some(_) => "sync other error",
        });
        let c = &mut self.clients[index];
        assert_eq!(c.phase, Phase::Syncing);
        if c.zombie && result.error_code != 0 {
            // A zombie gives up at the first error; it never reclaims its instance id.
            c.phase = Phase::Down;
            return;
        }
        match result.error_code.err() {
            None => {
                c.phase = Phase::Stable {
                    partitions: result.assignment.to_vec(),
                }
            }
            Some(E::RebalanceInProgress | E::IllegalGeneration) => c.phase = Phase::Idle,
            Some(E::UnknownMemberId) => {
                c.member_id.clear();
                c.phase = Phase::Idle;
            }
            Some(E::FencedInstanceId) => c.phase = Phase::Down,
            Some(other) => panic!("unexpected sync error {other:?}"),
        }
    }

    fn heartbeat(&mut self, index: usize) {
        let c = &self.clients[index];
        let (code, effects) =
            self.group
                .heartbeat(&c.member_id, c.instance.as_deref(), c.generation, self.now);
        self.trace
            .push(format!("{} heartbeat {} -> {code}", self.now, c.member_id));
        self.saw(match code.err() {
            None => "heartbeat ok",
            Some(E::RebalanceInProgress) => "heartbeat rebalance in progress",
            Some(E::FencedInstanceId) => "heartbeat fenced",
            Some(_) => "heartbeat other error",
        });
        assert!(effects.is_empty());
        let c = &mut self.clients[index];
        if c.zombie && code != 0 {
            // A zombie gives up at the first error; it never reclaims its instance id.
            c.phase = Phase::Down;
            return;
        }
        match code.err() {
            None => {}
            Some(E::RebalanceInProgress | E::IllegalGeneration) => c.phase = Phase::Idle,
            Some(E::UnknownMemberId) => {
                c.member_id.clear();
                c.phase = Phase::Idle;
            }
            Some(E::FencedInstanceId) => c.phase = Phase::Down,
            Some(other) => panic!("unexpected heartbeat error {other:?}"),
        }
    }

    fn leave(&mut self, index: usize) {
        let c = &self.clients[index];
        let by_instance = c.instance.is_some() && self.rng.percent(50);
        let entry = if by_instance {
            (String::new(), c.instance.clone())
        } else {
            (c.member_id.clone(), c.instance.clone())
        };
        self.trace.push(format!("{} leave {entry:?}", self.now));
        let (codes, effects) = self.group.leave(&[entry], self.now);
        assert_eq!(codes.len(), 1);
        let c = &mut self.clients[index];
        c.member_id.clear();
        c.generation = -1;
        c.phase = if c.zombie { Phase::Down } else { Phase::Idle };
        self.apply(effects);
    }

    /// Crash and restart: a static client comes back with its instance id, a dynamic one
    /// as a stranger.
    fn restart(&mut self, index: usize) {
        let c = &mut self.clients[index];
        c.incarnation += 1;
        c.member_id.clear();
        c.generation = -1;
        c.phase = Phase::Idle;
        self.trace
            .push(format!("{} restart {}", self.now, c.client_id));
    }

    fn advance(&mut self, by_ms: i64) {
        self.now += by_ms;
        let effects = self.group.tick(self.now);
        self.trace
            .push(format!("{} tick -> {} effects", self.now, effects.len()));
        self.apply(effects);
        if let Some(deadline) = self.group.next_deadline() {
            assert!(
                deadline > self.now,
                "deadline {deadline} overdue after tick at {}",
                self.now
            );
        }
    }

    /// One client does what a live consumer would do next.
    fn act(&mut self, index: usize) {
        match self.clients[index].phase.clone() {
            Phase::Idle => self.send_join(index),
            Phase::NeedSync { assignments } => self.send_sync(index, assignments),
            Phase::Stable { .. } => self.heartbeat(index),
            Phase::Joining | Phase::Syncing | Phase::Down => {}
        }
    }

    fn chaos_step(&mut self) {
        let index = self.rng.below(self.clients.len() as u64) as usize;
        match self.rng.below(100) {
            0..=54 => self.act(index),
            55..=74 => {
                let by = self.rng.below(2_500) as i64;
                self.advance(by);
            }
            75..=78 => {
                let by = self.rng.below(40_000) as i64;
                self.advance(by);
            }
            79..=82 if matches!(self.clients[index].phase, Phase::Stable { .. }) => {
                self.leave(index)
            }
            83..=86 if self.clients[index].zombie => self.clients[index].phase = Phase::Down,
            83..=86 => {
                if self.clients[index].phase == Phase::Down || self.rng.percent(50) {
                    self.restart(index);
                } else {
                    self.clients[index].phase = Phase::Down;
                }
            }
            89..=90
                if self.clients[index].instance.is_some()
                    && !self.clients[index].zombie
                    && self.clients.len() < 8
                    && matches!(self.clients[index].phase, Phase::Stable { .. }) =>
            {
                // The host is partitioned away and a replacement starts with the same
                // group.instance.id, while the old process keeps running.
                let mut zombie = self.clients[index].clone();
                zombie.zombie = true;
                self.clients.push(zombie);
                self.restart(index);
            }
            87..=88 if matches!(self.clients[index].phase, Phase::Stable { .. }) => {
                // New subscription metadata: the client rejoins, which forces a rebalance.
                let protocols = protocols_for(&mut self.rng);
                let c = &mut self.clients[index];
                c.protocols = protocols;
                c.phase = Phase::Idle;
            }
            _ => self.act(index),
        }
        self.check();
    }

    fn check(&mut self) {
        let group = &self.group;
        assert!(
            group.generation_id() >= self.max_generation,
            "generation went back"
        );
        self.max_generation = group.generation_id();
        let members = group.members();
        match group.leader() {
            Some(leader) => assert!(members.iter().any(|m| m.member_id == leader)),
            None => assert!(members.is_empty()),
        }
        if group.state() == GroupState::Stable {
            let mut owned = Vec::new();
            for member in &members {
                owned.extend_from_slice(&member.assignment);
            }
            owned.sort_unstable();
            assert_eq!(
                owned,
                (0..PARTITIONS).collect::<Vec<_>>(),
                "Stable assignment {members:?}"
            );
        }
        let mut by_generation: BTreeMap<i32, Vec<u8>> = BTreeMap::new();
        // Zombies are excluded: until fenced they may hold what their replacement holds.
        for c in self.clients.iter().filter(|c| !c.zombie) {
            if let Phase::Stable { partitions } = &c.phase {
                by_generation
                    .entry(c.generation)
                    .or_default()
                    .extend_from_slice(partitions);
            }
        }
        for (generation, mut owned) in by_generation {
            let total = owned.len();
            owned.sort_unstable();
            owned.dedup();
            assert_eq!(
                owned.len(),
                total,
                "a partition owned twice in generation {generation}"
            );
        }
    }

    fn check_persist(&mut self) {
        self.saw(if self.group.state() == GroupState::Empty {
            "persist empty"
        } else {
            "persist"
        });
        let snapshot = self.group.snapshot();
        if matches!(self.group.state(), GroupState::Stable | GroupState::Empty) {
            let restored = Group::restore(
                "sim".into(),
                GroupConfig::default(),
                snapshot.clone(),
                self.now,
            );
            assert_eq!(
                restored.snapshot(),
                snapshot,
                "snapshot does not restore to itself"
            );
        }
    }

    /// Chaos over: everyone comes back and behaves; the group must become Stable with every
    /// client in it, at the group's generation.
    fn settle(&mut self) {
        for index in 0..self.clients.len() {
            if self.clients[index].phase == Phase::Down && !self.clients[index].zombie {
                self.restart(index);
            }
        }
        for _ in 0..2_000 {
            for index in 0..self.clients.len() {
                self.act(index);
            }
            self.advance(500);
            self.check();
            let generation = self.group.generation_id();
            let settled =
                self.group.state() == GroupState::Stable
                    && self.group.size() == self.clients.iter().filter(|c| !c.zombie).count()
                    && self.clients.iter().filter(|c| !c.zombie).all(|c| {
                        matches!(c.phase, Phase::Stable { .. }) && c.generation == generation
                    });
            if settled {
                let effects = self.group.unload();
                self.apply(effects);
                assert!(
                    self.outstanding.is_empty(),
                    "unanswered: {:?}",
                    self.outstanding
                );
                return;
            }
        }
        panic!(
            "group did not settle: {:?} {:?}",
            self.group.state(),
            self.clients
        );
    }
}

/// Partitions 0..6 round-robin over the members, in the order the leader received them.
fn round_robin(members: &[JoinedMember]) -> Vec<(String, Bytes)> {
    let mut owned: Vec<Vec<u8>> = vec![Vec::new(); members.len()];
    for partition in 0..PARTITIONS {
        owned[usize::from(partition) % members.len()].push(partition);
    }
    members
        .iter()
        .zip(owned)
        .map(|(m, p)| (m.member_id.clone(), Bytes::from(p)))
        .collect()
}

fn run(seed: u64, coverage: &mut BTreeMap<&'static str, u64>) {
    let mut sim = Sim::new(seed);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..STEPS {
            sim.chaos_step();
        }
        sim.settle();
    }));
    if let Err(panic) = outcome {
        let tail = sim.trace.len().saturating_sub(40);
        eprintln!("last events:\n{}", sim.trace[tail..].join("\n"));
        eprintln!("simulation failed: replay with STROM_GROUP_SEED={seed}");
        std::panic::resume_unwind(panic);
    }
    *coverage.entry("generations formed").or_default() += sim.max_generation.unsigned_abs() as u64;
    for (what, count) in sim.coverage {
        *coverage.entry(what).or_default() += count;
    }
}

#[test]
fn seeded_consumers_keep_the_group_consistent() {
    let mut coverage = BTreeMap::new();
    if let Ok(seed) = std::env::var("STROM_GROUP_SEED") {
        return run(
            seed.parse().expect("STROM_GROUP_SEED is a u64"),
            &mut coverage,
        );
    }
    for seed in 0..SEEDS {
        run(seed, &mut coverage);
    }
    eprintln!("simulation coverage: {coverage:#?}");
    for what in [
        "join ok",
        "join skip_assignment",
        "join member id required",
        "heartbeat fenced",
        "sync ok",
        "sync rebalance in progress",
        "heartbeat rebalance in progress",
        "persist",
        "persist empty",
    ] {
        assert!(
            coverage.get(what).copied().unwrap_or(0) > 0,
            "the simulation never saw {what}"
        );
    }
}
