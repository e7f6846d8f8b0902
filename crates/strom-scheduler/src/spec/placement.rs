//! Placement rules: the Marathon-style constraints of a pod's `placement` key.
//!
//! Owns parsing (`[["hostname","MAX_PER","1"],["@zone","GROUP_BY","3"]]`) and the rules' meaning
//! as data. Whether an offer passes a rule is decided in `offer::placement`, which has the
//! agents and the tasks already placed; this module knows nothing about offers.

use serde::{Deserialize, Serialize};

use crate::spec::SpecError;

/// What a rule looks at on an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlacementField {
    /// The agent's hostname (`hostname` or `@hostname`).
    Hostname,
    /// The agent's fault-domain zone (`@zone`).
    Zone,
    /// The agent's fault-domain region (`@region`).
    Region,
    /// A named agent attribute, such as `rack`.
    Attribute(String),
}

/// How a rule constrains the values of its field across a pod's instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlacementOperator {
    /// At most one instance per value.
    Unique,
    /// At most this many instances per value.
    MaxPer(u32),
    /// Only on agents whose value is exactly this one.
    Cluster(String),
    /// Same as `Cluster`, Marathon's other spelling.
    Is(String),
    /// Spread evenly over the values; with a count, over that many distinct values.
    GroupBy(Option<u32>),
}

/// One constraint of a pod's `placement`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementRule {
    /// What the rule looks at.
    pub field: PlacementField,
    /// How it constrains it.
    pub operator: PlacementOperator,
}

impl PlacementRule {
    /// Whether this rule looks at zones, which makes the broker's `broker.rack` the zone.
    pub fn references_zone(&self) -> bool {
        self.field == PlacementField::Zone
    }
}

/// Parses a `placement` value for pod `pod`. An empty string means no rules.
pub fn parse_placement(pod: &str, text: &str) -> Result<Vec<PlacementRule>, SpecError> {
    let key = format!("pods.{pod}.placement");
    let invalid = |reason: String| SpecError::Invalid {
        key: key.clone(),
        reason,
    };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Vec<String>> = serde_json::from_str(text).map_err(|error| {
        invalid(format!(
            "{error}; expected a JSON list of rules like [[\"hostname\",\"MAX_PER\",\"1\"]]"
        ))
    })?;
    rows.iter()
        .map(|row| {
            let (field, operator, argument) = match row.as_slice() {
                [field, operator] => (field, operator, None),
                [field, operator, argument] => (field, operator, Some(argument.as_str())),
                _ => return Err(invalid(format!("rule {row:?} must have 2 or 3 elements"))),
            };
            let field = match field.as_str() {
                "hostname" | "@hostname" => PlacementField::Hostname,
                "@zone" => PlacementField::Zone,
                "@region" => PlacementField::Region,
                name if !name.is_empty() && !name.starts_with('@') => {
                    PlacementField::Attribute(name.to_string())
                }
                other => return Err(invalid(format!("unknown field {other:?} in rule {row:?}"))),
            };
            let count = |argument: Option<&str>| -> Result<u32, SpecError> {
                argument
                    .and_then(|a| a.parse::<u32>().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid(format!("rule {row:?} needs a positive count")))
            };
            let value = |argument: Option<&str>| -> Result<String, SpecError> {
                argument
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("rule {row:?} needs a value")))
            };
            let operator = match operator.as_str() {
                "UNIQUE" => PlacementOperator::Unique,
                "MAX_PER" => PlacementOperator::MaxPer(count(argument)?),
                "CLUSTER" => PlacementOperator::Cluster(value(argument)?),
                "IS" => PlacementOperator::Is(value(argument)?),
                "GROUP_BY" => PlacementOperator::GroupBy(match argument {
                    None => None,
                    Some(_) => Some(count(argument)?),
                }),
                other => {
                    return Err(invalid(format!(
                        "operator {other:?} in rule {row:?} is not supported \
                         (UNIQUE, MAX_PER, CLUSTER, IS, GROUP_BY are)"
                    )))
                }
            };
            Ok(PlacementRule { field, operator })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kafka_default_and_zone_rules() {
        let rules = parse_placement(
            "kafka",
            r#"[["hostname","MAX_PER","1"],["@zone","GROUP_BY","3"]]"#,
        )
        .unwrap();
        assert_eq!(rules[0].field, PlacementField::Hostname);
        assert_eq!(rules[0].operator, PlacementOperator::MaxPer(1));
        assert!(rules[1].references_zone());
        assert_eq!(rules[1].operator, PlacementOperator::GroupBy(Some(3)));
        assert!(parse_placement("kafka", "").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_key_and_the_rule() {
        let error = parse_placement("kafka", r#"[["hostname","MAX_PER","zero"]]"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "pods.kafka.placement: rule [\"hostname\", \"MAX_PER\", \"zero\"] needs a positive count"
        );
        let error = parse_placement("kafka", r#"[["hostname","LIKE","a.*"]]"#).unwrap_err();
        assert!(error.to_string().contains("\"LIKE\""), "{error}");
        let error = parse_placement("kafka", "hostname:UNIQUE").unwrap_err();
        assert!(
            error.to_string().starts_with("pods.kafka.placement: "),
            "{error}"
        );
    }
}
