//! The local engine's allocator: which framework gets the next offer of each agent when several
//! services share one engine, as Mesos's hierarchical allocator decides it (seed 002): roles by
//! weighted dominant share, frameworks inside a role by their own, through [`DrfSorter`];
//! suppressed frameworks are skipped, and a framework that declined an agent's offer with a
//! filter (`refuse_seconds`) gets no offer of that agent until the filter expires or it
//! revives.
//!
//! A framework's allocation, for the sorter, is what its live tasks hold plus the offers it
//! has outstanding (Mesos counts offered resources as allocated until they come back). Every
//! call rebuilds the sorter from those, so nothing drifts.
//!
//! Pure: time comes in as `now_ms`, no I/O. Not owned here: what an offer holds (the engine
//! builds it from the agent and its reservations, see `agents.rs`) and quota.

use std::collections::BTreeMap;

use crate::drf::{Amounts, DrfSorter, KINDS};
use crate::resources::Resource;

/// The role DRF files a framework without one under (the single-service engine's).
pub const DEFAULT_ROLE: &str = "*";

/// What the allocator keeps per framework: its role, whether it suppressed offers, and its
/// offer filters by agent.
#[derive(Clone, Debug, Default)]
pub struct FrameworkOffers {
    /// The role its reservations are made for; `None`: every reservation is offered to it
    /// (one service alone on the engine).
    pub role: Option<String>,
    /// SUPPRESS was the last word: no offers until REVIVE.
    pub suppressed: bool,
    refused_until_ms: BTreeMap<String, u64>,
}

impl FrameworkOffers {
    /// A framework of `role`, wanting offers.
    pub fn new(role: Option<String>) -> FrameworkOffers {
        FrameworkOffers {
            role,
            ..FrameworkOffers::default()
        }
    }

    /// The role DRF sorts it under.
    pub fn drf_role(&self) -> &str {
        self.role.as_deref().unwrap_or(DEFAULT_ROLE)
    }

    /// A DECLINE of an offer of `agent` with a filter of `refuse_seconds`, capped at `cap_ms`
    /// when set (the single-service engine caps it: nobody else could use the resources).
    pub fn decline(&mut self, agent: &str, refuse_seconds: u64, now_ms: u64, cap_ms: Option<u64>) {
        let mut refuse_ms = refuse_seconds.saturating_mul(1000);
        if let Some(cap) = cap_ms {
            refuse_ms = refuse_ms.min(cap);
        }
        self.refused_until_ms
            .insert(agent.to_string(), now_ms.saturating_add(refuse_ms));
    }

    /// REVIVE: offers again, every filter cleared (as Mesos does).
    pub fn revive(&mut self) {
        self.suppressed = false;
        self.refused_until_ms.clear();
    }

    /// SUPPRESS: no offers until REVIVE.
    pub fn suppress(&mut self) {
        self.suppressed = true;
    }

    /// Whether an offer of `agent` may go to it now.
    pub fn wants(&self, agent: &str, now_ms: u64) -> bool {
        !self.suppressed
            && self
                .refused_until_ms
                .get(agent)
                .is_none_or(|&until| now_ms >= until)
    }
}

/// The cpus, mem and disk of `resources` (ports do not count towards shares).
pub fn scalar_amounts(resources: &[Resource]) -> Amounts {
    let mut amounts = Amounts::new();
    for resource in resources
        .iter()
        .filter(|r| KINDS.contains(&r.name.as_str()))
    {
        *amounts.entry(resource.name.clone()).or_insert(0.0) += resource.amount();
    }
    amounts
}

/// Adds `b` into `a`.
pub fn add_amounts(a: &mut Amounts, b: &Amounts) {
    for (kind, amount) in b {
        *a.entry(kind.clone()).or_insert(0.0) += amount;
    }
}

/// Decides who gets an offer of each of `free_agents` (agents with no offer outstanding), in
/// their order: for each, the first framework in DRF order that wants that agent now. Each
/// offer made counts towards its framework's allocation before the next agent is decided (so
/// three free agents and two hungry frameworks alternate). `allocations` holds, per framework,
/// the amounts of each of its live tasks and outstanding offers; `offer_amounts(agent,
/// framework)` what an offer of that agent to that framework would hold. Frameworks missing
/// from `frameworks` get nothing; a bad weight is skipped (checked when it is set).
pub fn allocate(
    free_agents: &[String],
    frameworks: &BTreeMap<String, FrameworkOffers>,
    allocations: &BTreeMap<String, Vec<Amounts>>,
    weights: &BTreeMap<String, f64>,
    totals: Amounts,
    now_ms: u64,
    offer_amounts: impl Fn(&str, &str) -> Amounts,
) -> Vec<(String, String)> {
    if !frameworks.values().any(|f| !f.suppressed) {
        return Vec::new();
    }
    let mut sorter = DrfSorter::new(totals);
    for (role, weight) in weights {
        let _ = sorter.set_weight(role, *weight);
    }
    for (name, framework) in frameworks {
        sorter.add_client(name, framework.drf_role());
        for amounts in allocations.get(name).into_iter().flatten() {
            sorter.allocated(name, amounts).expect("added above");
        }
    }
    let mut decided = Vec::new();
    for agent in free_agents {
        let picked = sorter.pick(|name| frameworks[name].wants(agent, now_ms));
        if let Some(name) = picked {
            let amounts = offer_amounts(agent, &name);
            sorter.allocated(&name, &amounts).expect("a known client");
            decided.push((agent.clone(), name));
        }
    }
    decided
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amounts(cpus: f64, mem: f64) -> Amounts {
        [("cpus".to_string(), cpus), ("mem".to_string(), mem)]
            .into_iter()
            .collect()
    }

    #[test]
    fn filters_expire_and_revive_clears_them() {
        let mut framework = FrameworkOffers::new(Some("r".into()));
        framework.decline("a", 5, 1_000, None);
        assert!(!framework.wants("a", 5_999));
        assert!(framework.wants("a", 6_000));
        assert!(framework.wants("b", 1_000));
        framework.decline("a", 3600, 1_000, Some(1_000));
        assert!(framework.wants("a", 2_000), "capped at 1 s");
        framework.decline("a", 3600, 1_000, None);
        framework.revive();
        assert!(framework.wants("a", 1_001));
        framework.suppress();
        assert!(!framework.wants("b", 1_001));
    }

    #[test]
    fn lowest_weighted_share_first_and_suppressed_skipped() {
        let mut frameworks = BTreeMap::new();
        frameworks.insert("a".to_string(), FrameworkOffers::new(Some("ra".into())));
        frameworks.insert("b".to_string(), FrameworkOffers::new(Some("rb".into())));
        let mut allocations = BTreeMap::new();
        allocations.insert("a".to_string(), vec![amounts(2.0, 0.0)]);
        allocations.insert("b".to_string(), vec![amounts(3.0, 0.0)]);
        let totals = amounts(10.0, 10.0);
        let agents = vec!["x".to_string(), "y".to_string()];
        let offer = |_: &str, _: &str| amounts(1.0, 0.0);
        let none = BTreeMap::new();
        // a (0.2) before b (0.3); after x, a holds 0.3 and ties with b on share but has
        // more allocations, so y goes to b.
        let got = allocate(
            &agents,
            &frameworks,
            &allocations,
            &none,
            totals.clone(),
            0,
            offer,
        );
        assert_eq!(got, [("x".into(), "a".into()), ("y".into(), "b".into())]);
        // Weight 2 for b's role halves its share (0.15): b first.
        let weights = [("rb".to_string(), 2.0)].into_iter().collect();
        let got = allocate(
            &agents,
            &frameworks,
            &allocations,
            &weights,
            totals.clone(),
            0,
            offer,
        );
        assert_eq!(got[0], ("x".into(), "b".into()));
        // A suppressed or filtered framework is skipped.
        frameworks.get_mut("a").unwrap().suppress();
        frameworks.get_mut("b").unwrap().decline("x", 5, 0, None);
        let got = allocate(&agents, &frameworks, &allocations, &none, totals, 0, offer);
        assert_eq!(got, [("y".into(), "b".into())]);
    }
}
