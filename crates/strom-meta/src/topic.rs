//! Topic names: Kafka's rules for what a topic may be called.
//!
//! This module owns the name checks that CreateTopics, auto-creation and the CLI share, so every
//! path refuses the same names with the same words. It does not own topic existence or
//! collisions against the live model; callers compare a new name against the existing ones with
//! [`topic_names_collide`].

/// The longest topic name Kafka accepts. A partition directory is `<topic>-<partition>`, and 249
/// leaves room for the partition number within the common 255-byte file-name limit.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// The internal topic that holds committed consumer-group offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The internal topic that holds transaction coordinator state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Checks `name` against Kafka's topic-name rules.
///
/// A name must be non-empty, must not be `.` or `..` (they would name the data directory or its
/// parent), must be at most [`MAX_TOPIC_NAME_LENGTH`] characters, and may contain only ASCII
/// letters, digits, `.`, `_` and `-`. The error message names the rule that was broken.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is illegal: it must not be empty".to_string());
    }
    if name == "." || name == ".." {
        return Err(format!(
            "topic name '{name}' is illegal: '.' and '..' are not allowed"
        ));
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return Err(format!(
            "topic name is illegal: it is {} characters long, longer than the maximum of {MAX_TOPIC_NAME_LENGTH}",
            name.len()
        ));
    }
    if let Some(bad) = name.chars().find(|c| !is_legal_char(*c)) {
        return Err(format!(
            "topic name '{name}' is illegal: character '{bad}' is not allowed; \
             use only ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// True if `c` may appear in a topic name.
fn is_legal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'
}

/// True if the name contains `.` or `_`, the characters that can make two names collide.
pub fn has_collision_chars(name: &str) -> bool {
    name.contains('.') || name.contains('_')
}

/// True if two topic names collide: Kafka's metric names replace `.` with `_`, so `a.b` and `a_b`
/// would share metrics, and Kafka refuses to create the second one.
///
/// Identical names also collide.
pub fn topic_names_collide(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.replace('.', "_") == b.replace('.', "_")
}

/// True for topics the broker itself owns (`__consumer_offsets`, `__transaction_state`).
pub fn is_internal_topic(name: &str) -> bool {
    name == OFFSETS_TOPIC || name == TRANSACTION_STATE_TOPIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_legal_names() {
        for name in [
            "a",
            "orders",
            "my.topic_1-x",
            "__consumer_offsets",
            "A.B-C_9",
        ] {
            assert_eq!(validate_topic_name(name), Ok(()), "{name}");
        }
        assert_eq!(validate_topic_name(&"x".repeat(249)), Ok(()));
    }

    #[test]
    fn refuses_empty_and_dots() {
        assert!(validate_topic_name("").unwrap_err().contains("empty"));
        assert!(validate_topic_name(".")
            .unwrap_err()
            .contains("'.' and '..'"));
        assert!(validate_topic_name("..")
            .unwrap_err()
            .contains("'.' and '..'"));
        assert_eq!(validate_topic_name("..."), Ok(()));
    }

    #[test]
    fn refuses_long_names() {
        let error = validate_topic_name(&"x".repeat(250)).unwrap_err();
        assert!(error.contains("250"), "{error}");
        assert!(error.contains("249"), "{error}");
    }

    #[test]
    fn refuses_illegal_characters() {
        for (name, bad) in [("a b", ' '), ("a/b", '/'), ("topic!", '!'), ("tøpic", 'ø')] {
            let error = validate_topic_name(name).unwrap_err();
            assert!(error.contains(&format!("'{bad}'")), "{error}");
        }
    }

    #[test]
    fn dot_and_underscore_collide() {
        assert!(topic_names_collide("a.b", "a_b"));
        assert!(topic_names_collide("a_b", "a.b"));
        assert!(topic_names_collide("a.b", "a.b"));
        assert!(!topic_names_collide("a.b", "a-b"));
        assert!(!topic_names_collide("ab", "a_b"));
        assert!(has_collision_chars("a.b"));
        assert!(!has_collision_chars("a-b"));
    }

    #[test]
    fn internal_topics() {
        assert!(is_internal_topic("__consumer_offsets"));
        assert!(is_internal_topic("__transaction_state"));
        assert!(!is_internal_topic("orders"));
    }
}
