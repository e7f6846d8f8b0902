//! Tests of the group core: hand-written scenarios (`scenarios`, with static membership in
//! `static_members` and commits, snapshots and limits in `persistence`), the offset table
//! (`offsets`), a seeded simulation of real-looking consumers (`simulation`), and a seeded
//! simulation of pipelined commits whose writes complete in random order (`commit_order`), and
//! offsets committed inside transactions (`txn_offsets`).
//!
//! Everything runs on a fake clock (a plain `i64` the test advances) and seeded
//! randomness, so any failure replays exactly.

mod commit_order;
mod offsets;
mod persistence;
mod scenarios;
mod simulation;
mod static_members;
mod txn_offsets;

use bytes::Bytes;

use super::{Effect, Group, GroupConfig, JoinRequest, JoinResult, SyncRequest, SyncResult};

/// Session timeout used by the scenario clients.
pub(super) const SESSION_MS: i32 = 10_000;
/// Rebalance timeout used by the scenario clients.
pub(super) const REBALANCE_MS: i32 = 30_000;

/// The simulations' generator: a seeded `ChaCha8Rng` (replayable from its seed) with the
/// helpers the scenarios use.
pub(super) struct Rng(rand_chacha::ChaCha8Rng);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        use rand_core::SeedableRng as _;
        Rng(rand_chacha::ChaCha8Rng::seed_from_u64(seed))
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        rand_core::Rng::next_u64(&mut self.0)
    }

    pub(super) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    pub(super) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub(super) fn u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }
}

/// A group on a fake clock with token and member-id sources.
pub(super) struct Harness {
    pub(super) group: Group,
    pub(super) now: i64,
    next_token: u64,
    next_fresh_id: u128,
}

impl Harness {
    pub(super) fn new() -> Harness {
        Harness::with_config(GroupConfig::default())
    }

    pub(super) fn with_config(config: GroupConfig) -> Harness {
        Harness {
            group: Group::new("g".to_string(), config),
            now: 0,
            next_token: 1,
            next_fresh_id: 0x1000,
        }
    }

    pub(super) fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Sends `request` as JoinGroup v9+ (its token replaced by a fresh one); returns the
    /// token and effects.
    pub(super) fn join(&mut self, request: JoinRequest) -> (u64, Vec<Effect>) {
        self.join_version(request, true)
    }

    /// Sends `request`, as JoinGroup v9+ if `supports_skip_assignment`.
    pub(super) fn join_version(
        &mut self,
        mut request: JoinRequest,
        supports_skip_assignment: bool,
    ) -> (u64, Vec<Effect>) {
        request.token = self.token();
        self.next_fresh_id += 1;
        let effects = self.group.join_with_skip_assignment(
            request.clone(),
            self.now,
            self.next_fresh_id,
            supports_skip_assignment,
        );
        (request.token, effects)
    }

    /// Sends a SyncGroup; returns the token and effects.
    pub(super) fn sync(
        &mut self,
        member_id: &str,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> (u64, Vec<Effect>) {
        let token = self.token();
        let request = SyncRequest {
            token,
            member_id: member_id.to_string(),
            generation_id,
            group_instance_id: None,
            protocol_type: Some("consumer".to_string()),
            protocol_name: None,
            assignments,
        };
        (token, self.group.sync(request, self.now))
    }

    pub(super) fn heartbeat(&mut self, member_id: &str, generation_id: i32) -> i16 {
        let (code, effects) = self
            .group
            .heartbeat(member_id, None, generation_id, self.now);
        assert!(effects.is_empty());
        code
    }

    /// Advances the clock to `now` and fires due deadlines.
    pub(super) fn tick_to(&mut self, now: i64) -> Vec<Effect> {
        assert!(now >= self.now, "the fake clock never goes back");
        self.now = now;
        self.group.tick(now)
    }

    /// Ticks from deadline to deadline until the parked joins are answered (the initial
    /// delay extends itself while members keep arriving).
    pub(super) fn finish_join(&mut self) -> Vec<Effect> {
        for _ in 0..100 {
            let deadline = self.group.next_deadline().expect("a join deadline");
            let effects = self.tick_to(deadline);
            if !effects.is_empty() {
                return effects;
            }
        }
        panic!("the join never completed");
    }

    /// Forms a Stable group of `n` dynamic members (leader first); returns their ids.
    pub(super) fn stable_group(&mut self, n: usize) -> Vec<String> {
        let tokens: Vec<u64> = (0..n)
            .map(|i| self.join(consumer(&format!("c{i}"))).0)
            .collect();
        let effects = self.finish_join();
        let ids: Vec<String> = tokens
            .iter()
            .map(|t| join_result(&effects, *t).member_id.clone())
            .collect();
        let generation = self.group.generation_id();
        for id in ids.iter().skip(1) {
            assert!(self.sync(id, generation, vec![]).1.is_empty());
        }
        let assignments = ids
            .iter()
            .map(|id| (id.clone(), Bytes::from(id.clone())))
            .collect();
        let (_, effects) = self.sync(&ids[0], generation, assignments);
        assert_eq!(effects.len(), n + 1, "{effects:?}");
        assert_eq!(self.group.state(), super::GroupState::Stable);
        ids
    }
}

/// A new dynamic consumer's JoinGroup with client id `client_id`.
pub(super) fn consumer(client_id: &str) -> JoinRequest {
    JoinRequest {
        token: 0,
        member_id: String::new(),
        group_instance_id: None,
        client_id: client_id.to_string(),
        client_host: "/127.0.0.1".to_string(),
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), Bytes::from_static(b"topic-a"))],
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        require_known_member_id: false,
        reason: None,
    }
}

/// `request` rejoining as `member_id`.
pub(super) fn rejoin(mut request: JoinRequest, member_id: &str) -> JoinRequest {
    request.member_id = member_id.to_string();
    request
}

/// The JoinGroup answer for `token` among `effects`; panics if absent.
pub(super) fn join_result(effects: &[Effect], token: u64) -> &JoinResult {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Join(t, result) if *t == token => Some(result),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no join answer for token {token} in {effects:?}"))
}

/// The SyncGroup answer for `token` among `effects`; panics if absent.
pub(super) fn sync_result(effects: &[Effect], token: u64) -> &SyncResult {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Sync(t, result) if *t == token => Some(result),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no sync answer for token {token} in {effects:?}"))
}

/// True for the effect that asks the shell to persist the group.
pub(super) fn is_persist(effect: &Effect) -> bool {
    matches!(effect, Effect::Persist)
}

/// A consumer's JoinGroup as static member `instance` (KIP-345).
pub(super) fn static_consumer(instance: &str) -> JoinRequest {
    let mut request = consumer(&format!("client-{instance}"));
    request.group_instance_id = Some(instance.to_string());
    request
}
