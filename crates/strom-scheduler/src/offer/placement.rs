//! Placement rules against an offer and the tasks already placed.
//!
//! Rules count the instances of the same pod type, as the SDK's rules do by default. A relaunch
//! in place does not re-check placement: its reservations already decide the agent.

use std::collections::BTreeMap;

use crate::offer::Offer;
use crate::spec::{PlacementField, PlacementOperator, PlacementRule};

/// A pod instance already placed (running, or holding reservations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedInstance {
    /// Pod type.
    pub pod: String,
    /// Pod instance name (`kafka-1`).
    pub instance: String,
    /// Agent hostname.
    pub hostname: String,
    /// Agent zone.
    pub zone: Option<String>,
    /// Agent region.
    pub region: Option<String>,
    /// Agent attributes.
    pub attributes: BTreeMap<String, String>,
}

fn field_name(field: &PlacementField) -> String {
    match field {
        PlacementField::Hostname => "hostname".into(),
        PlacementField::Zone => "@zone".into(),
        PlacementField::Region => "@region".into(),
        PlacementField::Attribute(name) => name.clone(),
    }
}

fn offer_value(offer: &Offer, field: &PlacementField) -> Option<String> {
    match field {
        PlacementField::Hostname => Some(offer.hostname.clone()),
        PlacementField::Zone => offer.zone.clone(),
        PlacementField::Region => offer.region.clone(),
        PlacementField::Attribute(name) => offer.attributes.get(name).cloned(),
    }
}

fn placed_value(placed: &PlacedInstance, field: &PlacementField) -> Option<String> {
    match field {
        PlacementField::Hostname => Some(placed.hostname.clone()),
        PlacementField::Zone => placed.zone.clone(),
        PlacementField::Region => placed.region.clone(),
        PlacementField::Attribute(name) => placed.attributes.get(name).cloned(),
    }
}

/// Checks every rule for placing an instance of `pod` on `offer`'s agent. Returns the reasons of
/// the failed rules (empty: the offer passes).
pub fn check(
    rules: &[PlacementRule],
    pod: &str,
    offer: &Offer,
    placed: &[PlacedInstance],
) -> Vec<String> {
    let peers: Vec<&PlacedInstance> = placed.iter().filter(|p| p.pod == pod).collect();
    let mut failures = Vec::new();
    for rule in rules {
        let name = field_name(&rule.field);
        let Some(value) = offer_value(offer, &rule.field) else {
            failures.push(format!(
                "the agent has no {name} value, which the rule needs"
            ));
            continue;
        };
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for peer in &peers {
            if let Some(peer_value) = placed_value(peer, &rule.field) {
                *counts.entry(peer_value).or_default() += 1;
            }
        }
        let here = counts.get(&value).copied().unwrap_or(0);
        let failure = match &rule.operator {
            PlacementOperator::Unique if here > 0 => Some(format!(
                "{name} {value:?} already has an instance of {pod} (UNIQUE)"
            )),
            PlacementOperator::MaxPer(max) if here >= *max => Some(format!(
                "{name} {value:?} already has {here} instance(s) of {pod} (MAX_PER {max})"
            )),
            PlacementOperator::Cluster(wanted) | PlacementOperator::Is(wanted)
                if value != *wanted =>
            {
                Some(format!("{name} is {value:?}, the rule wants {wanted:?}"))
            }
            PlacementOperator::GroupBy(groups) => {
                // Spread evenly: this value may take another instance only if no other value
                // has fewer. Values not seen yet count as empty while fewer than `groups` are
                // known.
                let known_other = counts.iter().filter(|(v, _)| **v != value).count();
                let fewest_elsewhere = if groups.is_some_and(|g| (known_other as u32) + 1 < g) {
                    0
                } else {
                    counts
                        .iter()
                        .filter(|(v, _)| **v != value)
                        .map(|(_, c)| *c)
                        .min()
                        .unwrap_or(u32::MAX)
                };
                (here > fewest_elsewhere).then(|| {
                    format!(
                        "{name} {value:?} has {here} instance(s) of {pod}, another has \
                         {fewest_elsewhere} (GROUP_BY)"
                    )
                })
            }
            _ => None,
        };
        failures.extend(failure);
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::placement::parse_placement;

    fn offer(hostname: &str, zone: Option<&str>) -> Offer {
        Offer {
            id: "o".into(),
            agent_id: hostname.into(),
            hostname: hostname.into(),
            ip: "127.0.0.1".into(),
            zone: zone.map(str::to_string),
            region: None,
            attributes: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
            resources: Vec::new(),
        }
    }

    fn placed(instance: &str, hostname: &str, zone: Option<&str>) -> PlacedInstance {
        PlacedInstance {
            pod: "kafka".into(),
            instance: instance.into(),
            hostname: hostname.into(),
            zone: zone.map(str::to_string),
            region: None,
            attributes: BTreeMap::new(),
        }
    }

    fn rules(text: &str) -> Vec<PlacementRule> {
        parse_placement("kafka", text).unwrap()
    }

    #[test]
    fn max_per_hostname_counts_peers_of_the_same_pod() {
        let rules = rules(r#"[["hostname","MAX_PER","1"]]"#);
        let mut others = vec![placed("kafka-0", "a", None)];
        assert!(check(&rules, "kafka", &offer("b", None), &others).is_empty());
        assert_eq!(
            check(&rules, "kafka", &offer("a", None), &others),
            ["hostname \"a\" already has 1 instance(s) of kafka (MAX_PER 1)"]
        );
        others[0].pod = "zookeeper".into();
        assert!(check(&rules, "kafka", &offer("a", None), &others).is_empty());
    }

    #[test]
    fn group_by_zone_spreads_evenly() {
        let rules = rules(r#"[["@zone","GROUP_BY","3"]]"#);
        let others = vec![placed("kafka-0", "a", Some("z1"))];
        assert!(!check(&rules, "kafka", &offer("b", Some("z1")), &others).is_empty());
        assert!(check(&rules, "kafka", &offer("b", Some("z2")), &others).is_empty());
        let others = vec![
            placed("kafka-0", "a", Some("z1")),
            placed("kafka-1", "b", Some("z2")),
            placed("kafka-2", "c", Some("z3")),
        ];
        assert!(check(&rules, "kafka", &offer("d", Some("z2")), &others).is_empty());
        let reasons = check(&rules, "kafka", &offer("d", None), &others);
        assert_eq!(
            reasons,
            ["the agent has no @zone value, which the rule needs"]
        );
    }

    #[test]
    fn cluster_unique_and_attributes() {
        let rules = rules(r#"[["rack","CLUSTER","r1"],["@zone","UNIQUE"]]"#);
        let others = vec![placed("kafka-0", "a", Some("z1"))];
        assert!(check(&rules, "kafka", &offer("b", Some("z2")), &others).is_empty());
        let reasons = check(&rules, "kafka", &offer("b", Some("z1")), &others);
        assert_eq!(
            reasons,
            ["@zone \"z1\" already has an instance of kafka (UNIQUE)"]
        );
        let rules = parse_placement("kafka", r#"[["rack","IS","r2"]]"#).unwrap();
        assert_eq!(
            check(&rules, "kafka", &offer("b", None), &[]),
            ["rack is \"r1\", the rule wants \"r2\""]
        );
    }
}
