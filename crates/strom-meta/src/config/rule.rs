//! Value rules shared by the broker and topic catalogues: type parsing, range and choice checks,
//! the wording of a broken rule, canonical value text, and "did you mean" suggestions.
//!
//! This module owns how a single value is judged in isolation. Rules that relate several keys
//! (listeners vs advertised listeners, minimum vs maximum) live with the catalogue that owns
//! those keys.

use super::{ConfigError, ConfigType};

/// What a value must satisfy beyond having the key's type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Any value of the type.
    Any,
    /// An integer at least this large.
    AtLeast(i64),
    /// An integer in this inclusive range.
    Between(i64, i64),
    /// A floating-point number in this inclusive range.
    Fraction(f64, f64),
    /// Exactly one of these words (case-sensitive, like Kafka).
    OneOf(&'static [&'static str]),
    /// A non-empty comma-separated list drawn from these words.
    SubsetOf(&'static [&'static str]),
    /// Non-empty text.
    NonEmpty,
    /// A Kafka listener list, `NAME://host:port,...`; checked by the broker catalogue.
    Listeners,
    /// A key Strom knows but whose only accepted value is this one, with the reason.
    Only(&'static str, &'static str),
    /// `host:port` (port 0 picks a free one), or empty to turn the feature off.
    HostPortOrEmpty,
    /// Kafka's throttled-replica list: `*`, or `partition:broker` items (may be empty).
    ThrottledReplicas,
}

/// One step of a synonym chain: a broker key and how many milliseconds one of its units is.
///
/// `scale` is 1 for keys in the target's own unit (and for non-numeric keys), 60000 for
/// `*.minutes` keys and 3600000 for `*.hours` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Synonym {
    /// The broker key.
    pub key: &'static str,
    /// The multiplier that converts its value into the target unit.
    pub scale: i64,
}

impl Synonym {
    /// Converts a validated value of this key into the target unit, as DescribeConfigs text.
    /// A negative time ("unlimited") converts to -1, as Kafka does.
    pub fn convert(&self, config_type: ConfigType, value: &str) -> String {
        if self.scale == 1 {
            return canonical(config_type, value);
        }
        let number: i64 = value
            .trim()
            .parse()
            .expect("a scaled synonym holds a validated integer");
        if number < 0 {
            "-1".to_string()
        } else {
            number.saturating_mul(self.scale).to_string()
        }
    }
}

/// One key of a catalogue: the single source of truth for its type, default, rule and meaning.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    /// The key, e.g. `log.retention.hours`.
    pub name: &'static str,
    /// Its value type.
    pub config_type: ConfigType,
    /// Its default as text; `None` when it has none (Kafka's `null`).
    pub default: Option<&'static str>,
    /// What a value must satisfy.
    pub rule: Rule,
    /// One or two sentences on what it does.
    pub doc: &'static str,
}

impl KeySpec {
    /// Checks `value` against the key's type and rule; the error names key, value and rule.
    pub fn check(&self, value: &str) -> Result<(), ConfigError> {
        check(self.name, self.config_type, self.rule, value)
    }
}

/// Checks `value` for `key` of type `config_type` against `rule`.
pub fn check(
    key: &str,
    config_type: ConfigType,
    rule: Rule,
    value: &str,
) -> Result<(), ConfigError> {
    let refuse = |rule_text: String| Err(ConfigError::new(key, value, rule_text));
    let text = value.trim();
    if let Rule::Only(allowed, reason) = rule {
        if text.eq_ignore_ascii_case(allowed) {
            return Ok(());
        }
        return refuse(format!("must be {allowed}: {reason}"));
    }
    match config_type {
        ConfigType::Boolean => {
            if parse_bool(text).is_none() {
                return refuse("must be true or false".to_string());
            }
        }
        ConfigType::Int | ConfigType::Short | ConfigType::Long => {
            let (type_min, type_max) = integer_bounds(config_type);
            let Ok(number) = text.parse::<i128>() else {
                return refuse(describe_integer(rule, type_min, type_max, false));
            };
            let (min, max) = match rule {
                Rule::AtLeast(min) => (min, type_max),
                Rule::Between(min, max) => (min, max),
                _ => (type_min, type_max),
            };
            if number < min.max(type_min) as i128 || number > max.min(type_max) as i128 {
                let overflow = number > type_max as i128 || number < type_min as i128;
                return refuse(describe_integer(rule, type_min, type_max, overflow));
            }
        }
        ConfigType::Double => {
            let (min, max) = match rule {
                Rule::Fraction(min, max) => (min, max),
                _ => (f64::MIN, f64::MAX),
            };
            let describe = || match rule {
                Rule::Fraction(min, max) => format!("must be a number between {min} and {max}"),
                _ => "must be a number".to_string(),
            };
            match text.parse::<f64>() {
                Ok(number) if number.is_finite() && number >= min && number <= max => {}
                _ => return refuse(describe()),
            }
        }
        ConfigType::String | ConfigType::List | ConfigType::Class | ConfigType::Password => {
            match rule {
                Rule::OneOf(choices) if !choices.contains(&text) => {
                    return refuse(format!("must be one of: {}", choices.join(", ")));
                }
                Rule::SubsetOf(choices)
                    if list_items(text).is_empty()
                        || list_items(text).iter().any(|item| !choices.contains(item)) =>
                {
                    return refuse(format!(
                        "must be a comma-separated list of: {}",
                        choices.join(", ")
                    ));
                }
                Rule::NonEmpty if text.is_empty() => {
                    return refuse("must not be empty".to_string());
                }
                Rule::HostPortOrEmpty if !text.is_empty() && parse_host_port(text).is_none() => {
                    return refuse(
                        "must be host:port (e.g. 127.0.0.1:9644; port 0 picks a free one) or \
                         empty to turn it off"
                            .to_string(),
                    );
                }
                Rule::ThrottledReplicas if !is_throttled_replica_list(text) => {
                    return refuse(
                        "must be the literal '*' or a list of replicas in the following format: \
                         [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                            .to_string(),
                    );
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// True for `*`, an empty list, or `partition:broker` items of non-negative integers.
fn is_throttled_replica_list(text: &str) -> bool {
    let items = list_items(text);
    (items.len() == 1 && items[0] == "*")
        || items.iter().all(|item| {
            item.split_once(':').is_some_and(|(p, b)| {
                p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
            })
        })
}

/// Splits `host:port` (the host may be empty or a bracketed IPv6 address).
pub fn parse_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.trim().rsplit_once(':')?;
    let port = port.parse().ok()?;
    if host.contains(char::is_whitespace) {
        return None;
    }
    Some((host, port))
}

/// The range an integer type can hold.
fn integer_bounds(config_type: ConfigType) -> (i64, i64) {
    match config_type {
        ConfigType::Int => (i32::MIN as i64, i32::MAX as i64),
        ConfigType::Short => (i16::MIN as i64, i16::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    }
}

/// The words for an integer rule, e.g. `must be an integer >= 1`. The type's bound is only
/// mentioned when the value overflowed it, because that is the only time it helps.
fn describe_integer(rule: Rule, type_min: i64, type_max: i64, overflow: bool) -> String {
    match rule {
        Rule::AtLeast(min) if overflow => {
            format!("must be an integer >= {min} and <= {type_max}")
        }
        Rule::AtLeast(min) => format!("must be an integer >= {min}"),
        Rule::Between(min, max) => format!("must be an integer between {min} and {max}"),
        _ => format!("must be an integer between {type_min} and {type_max}"),
    }
}

/// Parses Kafka's booleans: `true` or `false`, any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    if text.trim().eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.trim().eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Splits a comma-separated list, trimming items and dropping empty ones.
pub fn list_items(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

/// The text DescribeConfigs shows for an already-validated value: trimmed, booleans lower-case,
/// integers without leading zeros or `+`, list items trimmed and joined by commas.
pub fn canonical(config_type: ConfigType, value: &str) -> String {
    let text = value.trim();
    match config_type {
        ConfigType::Boolean => match parse_bool(text) {
            Some(flag) => flag.to_string(),
            None => text.to_string(),
        },
        ConfigType::Int | ConfigType::Short | ConfigType::Long => match text.parse::<i64>() {
            Ok(number) => number.to_string(),
            Err(_) => text.to_string(),
        },
        ConfigType::List => list_items(text).join(","),
        _ => text.to_string(),
    }
}

/// The known key closest to `key`, if one is within edit distance 2.
pub fn closest_key<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|candidate| (edit_distance(key, candidate), candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, a_char) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != b_char);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(config_type: ConfigType, rule: Rule, value: &str) -> Option<String> {
        check("k", config_type, rule, value).err().map(|e| e.rule)
    }

    #[test]
    fn integers() {
        assert_eq!(rule_of(ConfigType::Int, Rule::AtLeast(1), "5"), None);
        assert_eq!(rule_of(ConfigType::Int, Rule::AtLeast(1), " 5 "), None);
        assert_eq!(
            rule_of(ConfigType::Int, Rule::AtLeast(1), "0").unwrap(),
            "must be an integer >= 1"
        );
        assert_eq!(
            rule_of(ConfigType::Int, Rule::AtLeast(1), "abc").unwrap(),
            "must be an integer >= 1"
        );
        assert_eq!(
            rule_of(ConfigType::Int, Rule::AtLeast(1), "2147483648").unwrap(),
            "must be an integer >= 1 and <= 2147483647"
        );
        assert_eq!(
            rule_of(ConfigType::Long, Rule::AtLeast(-1), "-2").unwrap(),
            "must be an integer >= -1"
        );
        assert_eq!(
            rule_of(ConfigType::Long, Rule::Any, "9223372036854775807"),
            None
        );
        assert_eq!(
            rule_of(ConfigType::Short, Rule::Between(1, 32767), "40000").unwrap(),
            "must be an integer between 1 and 32767"
        );
    }

    #[test]
    fn booleans_doubles_and_choices() {
        assert_eq!(rule_of(ConfigType::Boolean, Rule::Any, "TRUE"), None);
        assert_eq!(
            rule_of(ConfigType::Boolean, Rule::Any, "yes").unwrap(),
            "must be true or false"
        );
        assert_eq!(
            rule_of(ConfigType::Double, Rule::Fraction(0.0, 1.0), "0.5"),
            None
        );
        assert_eq!(
            rule_of(ConfigType::Double, Rule::Fraction(0.0, 1.0), "1.5").unwrap(),
            "must be a number between 0 and 1"
        );
        assert!(rule_of(ConfigType::Double, Rule::Any, "NaN").is_some());
        let choices = Rule::OneOf(&["CreateTime", "LogAppendTime"]);
        assert_eq!(rule_of(ConfigType::String, choices, "LogAppendTime"), None);
        assert_eq!(
            rule_of(ConfigType::String, choices, "createtime").unwrap(),
            "must be one of: CreateTime, LogAppendTime"
        );
        let subset = Rule::SubsetOf(&["delete", "compact"]);
        assert_eq!(rule_of(ConfigType::List, subset, "compact, delete"), None);
        assert!(rule_of(ConfigType::List, subset, "").is_some());
        assert!(rule_of(ConfigType::List, subset, "delete,archive").is_some());
        assert!(rule_of(ConfigType::String, Rule::NonEmpty, " ").is_some());
        assert_eq!(rule_of(ConfigType::String, Rule::HostPortOrEmpty, ""), None);
        for good in ["*", "", "0:1", "0:1, 1:2"] {
            assert_eq!(
                rule_of(ConfigType::List, Rule::ThrottledReplicas, good),
                None,
                "{good}"
            );
        }
        for bad in ["0", "a:1", "0:1,*", "0:-1"] {
            assert!(
                rule_of(ConfigType::List, Rule::ThrottledReplicas, bad).is_some(),
                "{bad}"
            );
        }
        assert_eq!(
            rule_of(ConfigType::String, Rule::HostPortOrEmpty, "127.0.0.1:0"),
            None
        );
        for bad in ["9644", "host:port", "127.0.0.1:70000", "a b:1"] {
            assert!(
                rule_of(ConfigType::String, Rule::HostPortOrEmpty, bad).is_some(),
                "{bad}"
            );
        }
        assert_eq!(
            rule_of(ConfigType::Boolean, Rule::Only("false", "no"), "true").unwrap(),
            "must be false: no"
        );
    }

    #[test]
    fn canonical_text() {
        assert_eq!(canonical(ConfigType::Boolean, " TRUE "), "true");
        assert_eq!(canonical(ConfigType::Long, "+007"), "7");
        assert_eq!(
            canonical(ConfigType::List, "compact , delete"),
            "compact,delete"
        );
        assert_eq!(canonical(ConfigType::String, " producer "), "producer");
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        let known = ["num.partitions", "num.io.threads", "log.dirs"];
        assert_eq!(closest_key("num.partition", known), Some("num.partitions"));
        assert_eq!(closest_key("log.dir", known), Some("log.dirs"));
        assert_eq!(closest_key("zzz", known), None);
    }
}
