//! Dominant resource fairness (seed 002; Ghodsi et al., NSDI 2011) as Mesos's allocator applies
//! it between the frameworks of several services sharing agents: the next offer goes to the
//! role with the lowest **weighted dominant share**, and inside that role to the framework with
//! the lowest dominant share.
//!
//! A client's dominant share is the largest, over the resource kinds (cpus, mem, disk), of its
//! allocation divided by the cluster's total of that kind. A role's share is the dominant share
//! of the sum of its frameworks' allocations divided by the role's weight (Mesos's `--weights`,
//! default 1; a role of weight 2 is entitled to twice the share). Ties go to the client with
//! fewer allocations, then by name, so the order is deterministic (Mesos's `DRFSorter` breaks
//! ties the same way). Suppressed (inactive) clients are skipped, as Mesos skips frameworks
//! that suppressed offers.
//!
//! Pure: no clock, no randomness, no I/O. Not owned here: how offers are built or filtered
//! (refusals are the caller's `eligible` test) and quota (Mesos's guarantees are not modelled).

use std::collections::BTreeMap;

/// The resource kinds shares are computed over.
pub const KINDS: [&str; 3] = ["cpus", "mem", "disk"];

/// An amount of each kind (missing kinds are 0).
pub type Amounts = BTreeMap<String, f64>;

/// Why a DRF call was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DrfError {
    /// A weight must be a positive finite number.
    #[error("role {role:?}: weight {weight} must be a positive number (Mesos --weights)")]
    BadWeight { role: String, weight: f64 },
    /// The client is not known.
    #[error("no client named {0:?}")]
    UnknownClient(String),
}

#[derive(Clone, Debug)]
struct Client {
    role: String,
    allocated: Amounts,
    allocations: u64,
    active: bool,
}

/// The hierarchical DRF sorter: roles by weighted share, then frameworks by share.
#[derive(Clone, Debug, Default)]
pub struct DrfSorter {
    totals: Amounts,
    weights: BTreeMap<String, f64>,
    clients: BTreeMap<String, Client>,
}

fn dominant(allocated: &Amounts, totals: &Amounts) -> f64 {
    KINDS
        .iter()
        .filter_map(|kind| {
            let total = totals.get(*kind).copied().unwrap_or(0.0);
            (total > 0.0).then(|| allocated.get(*kind).copied().unwrap_or(0.0) / total)
        })
        .fold(0.0, f64::max)
}

fn add(into: &mut Amounts, amounts: &Amounts, sign: f64) {
    for (kind, amount) in amounts {
        let entry = into.entry(kind.clone()).or_insert(0.0);
        *entry = (*entry + sign * amount).max(0.0);
    }
}

impl DrfSorter {
    /// A sorter over a cluster with `totals` (the sum of every agent's resources).
    pub fn new(totals: Amounts) -> DrfSorter {
        DrfSorter {
            totals,
            ..DrfSorter::default()
        }
    }

    /// Changes the cluster's totals (an agent added or removed).
    pub fn set_totals(&mut self, totals: Amounts) {
        self.totals = totals;
    }

    /// Sets `role`'s weight (default 1).
    pub fn set_weight(&mut self, role: &str, weight: f64) -> Result<(), DrfError> {
        if !(weight.is_finite() && weight > 0.0) {
            return Err(DrfError::BadWeight {
                role: role.to_string(),
                weight,
            });
        }
        self.weights.insert(role.to_string(), weight);
        Ok(())
    }

    /// Adds a framework of `role`, active, with nothing allocated (again: no change).
    pub fn add_client(&mut self, name: &str, role: &str) {
        self.clients.entry(name.to_string()).or_insert(Client {
            role: role.to_string(),
            allocated: Amounts::new(),
            allocations: 0,
            active: true,
        });
    }

    /// Removes a framework (its allocation goes with it).
    pub fn remove_client(&mut self, name: &str) {
        self.clients.remove(name);
    }

    /// Marks a framework active (REVIVE) or inactive (SUPPRESS).
    pub fn set_active(&mut self, name: &str, active: bool) -> Result<(), DrfError> {
        self.client_mut(name)?.active = active;
        Ok(())
    }

    /// Records resources given to `name` (an offer made, or a task launched).
    pub fn allocated(&mut self, name: &str, amounts: &Amounts) -> Result<(), DrfError> {
        let client = self.client_mut(name)?;
        add(&mut client.allocated, amounts, 1.0);
        client.allocations += 1;
        Ok(())
    }

    /// Records resources `name` gave back (declined, or a task ended).
    pub fn unallocated(&mut self, name: &str, amounts: &Amounts) -> Result<(), DrfError> {
        add(&mut self.client_mut(name)?.allocated, amounts, -1.0);
        Ok(())
    }

    fn client_mut(&mut self, name: &str) -> Result<&mut Client, DrfError> {
        self.clients
            .get_mut(name)
            .ok_or_else(|| DrfError::UnknownClient(name.to_string()))
    }

    /// A role's weight (1 unless set).
    pub fn weight(&self, role: &str) -> f64 {
        self.weights.get(role).copied().unwrap_or(1.0)
    }

    /// A framework's dominant share (unweighted).
    pub fn share(&self, name: &str) -> Option<f64> {
        self.clients
            .get(name)
            .map(|c| dominant(&c.allocated, &self.totals))
    }

    /// A role's weighted dominant share: the dominant share of its frameworks' allocations
    /// together, divided by its weight.
    pub fn role_share(&self, role: &str) -> f64 {
        let mut sum = Amounts::new();
        for client in self.clients.values().filter(|c| c.role == role) {
            add(&mut sum, &client.allocated, 1.0);
        }
        dominant(&sum, &self.totals) / self.weight(role)
    }

    /// Every active framework in the order offers should go to them.
    pub fn sort(&self) -> Vec<String> {
        // Each role's sum and allocation count, then every share once (not per comparison).
        let mut roles: BTreeMap<&str, (Amounts, u64)> = BTreeMap::new();
        for client in self.clients.values() {
            let entry = roles.entry(client.role.as_str()).or_default();
            add(&mut entry.0, &client.allocated, 1.0);
            entry.1 += client.allocations;
        }
        let role_keys: BTreeMap<&str, (f64, u64)> = roles
            .iter()
            .map(|(role, (sum, allocations))| {
                let share = dominant(sum, &self.totals) / self.weight(role);
                (*role, (share, *allocations))
            })
            .collect();
        let mut order: Vec<(f64, u64, &str, f64, u64, &String)> = self
            .clients
            .iter()
            .filter(|(_, c)| c.active)
            .map(|(name, c)| {
                let (role_share, role_allocations) = role_keys[c.role.as_str()];
                let share = dominant(&c.allocated, &self.totals);
                (
                    role_share,
                    role_allocations,
                    c.role.as_str(),
                    share,
                    c.allocations,
                    name,
                )
            })
            .collect();
        order.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then(a.2.cmp(b.2))
                .then(a.3.total_cmp(&b.3))
                .then(a.4.cmp(&b.4))
                .then(a.5.cmp(b.5))
        });
        order.into_iter().map(|entry| entry.5.clone()).collect()
    }

    /// The first framework in [`DrfSorter::sort`] order that `eligible` accepts (it has not
    /// refused the agent being offered, it wants offers): who gets the next offer.
    pub fn pick(&self, eligible: impl Fn(&str) -> bool) -> Option<String> {
        self.sort().into_iter().find(|name| eligible(name))
    }
}

#[cfg(test)]
#[path = "drf_tests.rs"]
mod tests;
