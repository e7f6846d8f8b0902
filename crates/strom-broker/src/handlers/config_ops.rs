//! The four operations of `IncrementalAlterConfigs` (SET, DELETE, APPEND, SUBTRACT) applied to
//! one resource's stored level of configuration, as a pure function: both the TOPIC resources
//! ([`super::configs`]) and the BROKER resources ([`super::broker_configs`]) call it.
//!
//! It owns the rules every resource shares: a key may appear once per resource (Kafka's
//! INVALID_REQUEST "Error due to duplicate config keys"), SET needs a value, and APPEND and
//! SUBTRACT treat the value as a comma-separated list and apply only to keys of list type (an
//! INVALID_CONFIG naming the key otherwise, Kafka's `InvalidConfigurationException`). It does
//! not own which keys exist, their canonical names, their defaults or whether the resulting
//! level validates: the caller resolves names before and validates the level after.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError as E;
use strom_meta::config::rule::list_items;

use crate::services::topic_error::TopicError;

/// One operation of a request, its key already resolved by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigOp {
    /// The key as stored in the level (canonical).
    pub key: String,
    /// The name as the client sent it, for messages.
    pub given: String,
    /// Kafka's operation code: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
    pub operation: i8,
    /// The value sent, if any.
    pub value: Option<String>,
}

impl ConfigOp {
    /// An operation whose stored key is the name the client sent.
    pub(crate) fn new(key: &str, operation: i8, value: Option<&str>) -> ConfigOp {
        ConfigOp {
            key: key.to_string(),
            given: key.to_string(),
            operation,
            value: value.map(String::from),
        }
    }
}

/// What the caller knows of a key for APPEND and SUBTRACT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListKey {
    /// Not a list: APPEND and SUBTRACT are refused.
    NotAList,
    /// A list key, and the value it takes when the level does not set it (its default or the
    /// inherited broker value; empty for none).
    List { inherited: String },
}

/// Applies `operations` in order to `level` (a resource's stored overrides). `list_key` tells,
/// for the key of an APPEND or SUBTRACT, whether it is a list and what it is when unset.
///
/// APPEND adds each given item the list lacks, at its end and in the given order; SUBTRACT
/// removes every item equal to a given one. Items are trimmed, empty ones dropped, and the
/// result is stored joined by commas (an empty list as the empty string). On an error `level`
/// may be partly changed: callers apply to a copy and store only a success.
pub(crate) fn apply_operations(
    level: &mut BTreeMap<String, String>,
    operations: &[ConfigOp],
    list_key: impl Fn(&str) -> ListKey,
) -> Result<(), TopicError> {
    let mut touched = HashSet::new();
    for op in operations {
        if !touched.insert(op.key.as_str()) {
            return Err(TopicError::new(
                E::InvalidRequest.code(),
                format!("Error due to duplicate config keys: {}", op.given),
            ));
        }
        match op.operation {
            0 => {
                let value = op.value.clone().ok_or_else(|| {
                    TopicError::new(
                        E::InvalidRequest.code(),
                        format!("SET of '{}' without a value", op.given),
                    )
                })?;
                level.insert(op.key.clone(), value);
            }
            1 => {
                level.remove(&op.key);
            }
            2 | 3 => {
                let verb = if op.operation == 2 {
                    "append"
                } else {
                    "subtract"
                };
                let ListKey::List { inherited } = list_key(&op.key) else {
                    return Err(TopicError::new(
                        E::InvalidConfig.code(),
                        format!(
                            "Config value {verb} is not allowed for config key: {} \
                             (APPEND and SUBTRACT apply only to list configurations)",
                            op.given
                        ),
                    ));
                };
                let current = level.get(&op.key).cloned().unwrap_or(inherited);
                let mut items: Vec<&str> = list_items(&current);
                let value = op.value.as_deref().unwrap_or_default();
                let given = list_items(value);
                if op.operation == 2 {
                    for item in given {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                } else {
                    items.retain(|item| !given.contains(item));
                }
                let joined = items.join(",");
                level.insert(op.key.clone(), joined);
            }
            other => {
                return Err(TopicError::new(
                    E::InvalidRequest.code(),
                    format!("unknown configuration operation {other} for '{}'", op.given),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;

    /// `cleanup.policy` is a list inheriting "delete"; everything else is not a list.
    fn list_key(key: &str) -> ListKey {
        if key == "cleanup.policy" {
            ListKey::List {
                inherited: "delete".to_string(),
            }
        } else {
            ListKey::NotAList
        }
    }

    fn level(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn apply(
        start: &[(&str, &str)],
        ops: &[ConfigOp],
    ) -> Result<BTreeMap<String, String>, TopicError> {
        let mut result = level(start);
        apply_operations(&mut result, ops, list_key)?;
        Ok(result)
    }

    #[test]
    fn set_inserts_and_replaces() {
        let ops = [
            ConfigOp::new("retention.ms", SET, Some("1000")),
            ConfigOp::new("segment.bytes", SET, Some("2048")),
        ];
        let result = apply(&[("retention.ms", "5")], &ops).unwrap();
        assert_eq!(
            result,
            level(&[("retention.ms", "1000"), ("segment.bytes", "2048")])
        );
    }

    #[test]
    fn set_without_a_value_is_invalid_request() {
        let error = apply(&[], &[ConfigOp::new("retention.ms", SET, None)]).unwrap_err();
        assert_eq!(error.code, E::InvalidRequest.code());
        assert!(error.message.contains("retention.ms"), "{}", error.message);
    }

    #[test]
    fn delete_removes_and_ignores_an_absent_key() {
        let ops = [
            ConfigOp::new("retention.ms", DELETE, None),
            ConfigOp::new("segment.bytes", DELETE, None),
        ];
        let result = apply(&[("retention.ms", "5"), ("x", "y")], &ops).unwrap();
        assert_eq!(result, level(&[("x", "y")]));
    }

    #[test]
    fn append_adds_only_missing_items_to_the_inherited_value() {
        let ops = [ConfigOp::new(
            "cleanup.policy",
            APPEND,
            Some("compact, delete,compact"),
        )];
        let result = apply(&[], &ops).unwrap();
        assert_eq!(result, level(&[("cleanup.policy", "delete,compact")]));
    }

    #[test]
    fn append_extends_the_stored_value() {
        let ops = [ConfigOp::new("cleanup.policy", APPEND, Some("delete"))];
        let result = apply(&[("cleanup.policy", "compact")], &ops).unwrap();
        assert_eq!(result, level(&[("cleanup.policy", "compact,delete")]));
    }

    #[test]
    fn subtract_removes_every_given_item() {
        let ops = [ConfigOp::new(
            "cleanup.policy",
            SUBTRACT,
            Some("delete,absent"),
        )];
        let result = apply(&[("cleanup.policy", "compact,delete,delete")], &ops).unwrap();
        assert_eq!(result, level(&[("cleanup.policy", "compact")]));
        let from_inherited = apply(
            &[],
            &[ConfigOp::new("cleanup.policy", SUBTRACT, Some("delete"))],
        )
        .unwrap();
        assert_eq!(from_inherited, level(&[("cleanup.policy", "")]));
    }

    #[test]
    fn append_and_subtract_refuse_a_non_list_key_naming_it() {
        for (operation, verb) in [(APPEND, "append"), (SUBTRACT, "subtract")] {
            let error =
                apply(&[], &[ConfigOp::new("retention.ms", operation, Some("5"))]).unwrap_err();
            assert_eq!(error.code, E::InvalidConfig.code());
            assert!(
                error.message.contains(&format!(
                    "{verb} is not allowed for config key: retention.ms"
                )),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn a_key_twice_is_invalid_request_naming_the_given_name() {
        let mut second = ConfigOp::new("retention.ms", DELETE, None);
        second.given = "log.retention.ms".to_string();
        let ops = [ConfigOp::new("retention.ms", SET, Some("1")), second];
        let error = apply(&[], &ops).unwrap_err();
        assert_eq!(error.code, E::InvalidRequest.code());
        assert_eq!(
            error.message,
            "Error due to duplicate config keys: log.retention.ms"
        );
    }

    #[test]
    fn an_unknown_operation_is_invalid_request() {
        let error = apply(&[], &[ConfigOp::new("retention.ms", 4, Some("1"))]).unwrap_err();
        assert_eq!(error.code, E::InvalidRequest.code());
        assert!(error.message.contains("operation 4"), "{}", error.message);
    }
}
