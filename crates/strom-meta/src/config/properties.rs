//! A parser for Java `.properties` text, the format of Kafka's `server.properties`.
//!
//! It follows `java.util.Properties.load`: lines starting with `#` or `!` are comments; a key
//! ends at the first unescaped `=`, `:` or whitespace, so `key=value`, `key: value` and
//! `key value` all work; a line ending in an odd number of backslashes continues on the next
//! line, whose leading whitespace is dropped; `\t`, `\n`, `\r`, `\f`, `\uXXXX` and `\<char>` are
//! escapes. One deliberate difference: trailing unescaped whitespace of a value is dropped,
//! because an invisible trailing space in `server.properties` is never what the user meant.
//!
//! This module knows nothing about which keys exist; [`super::BrokerConfig::load`] does.

use super::ConfigError;

/// One `key = value` pair from the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// The key, escapes resolved.
    pub key: String,
    /// The value, escapes resolved, surrounding whitespace removed.
    pub value: String,
    /// The 1-based line on which the pair starts, for messages.
    pub line: usize,
}

/// Parses properties text into pairs in file order. A key set twice appears twice; the caller
/// lets the later one win, as Java does. The only error is a malformed `\uXXXX` escape.
pub fn parse(text: &str) -> Result<Vec<Property>, ConfigError> {
    let mut properties = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, raw_line)) = lines.next() {
        let first = raw_line.trim_start_matches(is_blank);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = first.to_string();
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches(is_blank)),
                None => break,
            }
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key).map_err(|rule| {
            ConfigError::new(raw_key, raw_value, format!("{rule} on line {}", index + 1))
        })?;
        let key = trimmed(&key);
        let value = unescape(raw_value).map_err(|rule| {
            ConfigError::new(&key, raw_value, format!("{rule} on line {}", index + 1))
        })?;
        properties.push(Property {
            key,
            value: trimmed(&value),
            line: index + 1,
        });
    }
    Ok(properties)
}

/// Parses one `--set key=value` override. Only `=` separates, since the shell already split
/// words; whitespace around key and value is dropped.
pub fn parse_override(text: &str) -> Result<(String, String), ConfigError> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(ConfigError::new(
            text.split('=').next().unwrap_or(text).trim(),
            text,
            "an override must have the form key=value",
        )),
    }
}

/// Java's whitespace for properties: space, tab and form feed.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{c}'
}

/// True if the line ends in an odd number of backslashes.
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits a logical line into raw (still escaped) key and value.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    for (position, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            key_end = position;
            break;
        }
    }
    let key = &line[..key_end];
    let mut rest = line[key_end..].trim_start_matches(is_blank);
    if let Some(stripped) = rest.strip_prefix(['=', ':']) {
        rest = stripped.trim_start_matches(is_blank);
    }
    (key, rest)
}

/// A resolved character and whether it came from an escape (escaped blanks are kept by trim).
type Char = (char, bool);

/// Resolves escapes.
fn unescape(raw: &str) -> Result<Vec<Char>, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push((c, false));
            continue;
        }
        let resolved = match chars.next() {
            Some('t') => '\t',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('f') => '\u{c}',
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("malformed \\uXXXX escape '\\u{hex}'"))?
            }
            Some(other) => other,
            None => break,
        };
        out.push((resolved, true));
    }
    Ok(out)
}

/// Drops unescaped whitespace at both ends and makes a string.
fn trimmed(chars: &[Char]) -> String {
    let is_trimmable = |(c, escaped): &Char| !escaped && c.is_whitespace();
    let start = chars
        .iter()
        .position(|c| !is_trimmable(c))
        .unwrap_or(chars.len());
    let end = chars
        .iter()
        .rposition(|c| !is_trimmable(c))
        .map_or(start, |i| i + 1);
    chars[start..end].iter().map(|(c, _)| *c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_string(), value.to_string())
    }

    #[test]
    fn separators() {
        assert_eq!(
            pairs("a=1\nb: 2\nc 3\nd\t=\t4\ne = 5 \nf\ng=\nh:x=y"),
            vec![
                pair("a", "1"),
                pair("b", "2"),
                pair("c", "3"),
                pair("d", "4"),
                pair("e", "5"),
                pair("f", ""),
                pair("g", ""),
                pair("h", "x=y"),
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        let text =
            "# comment\n! also a comment\n\n   \n  # indented comment\nkey=value # not a comment\n";
        assert_eq!(pairs(text), vec![pair("key", "value # not a comment")]);
    }

    #[test]
    fn continuations() {
        let text = "listeners=PLAINTEXT://a:1,\\\n    PLAINTEXT2://b:2\nnext=1\n";
        assert_eq!(
            pairs(text),
            vec![
                pair("listeners", "PLAINTEXT://a:1,PLAINTEXT2://b:2"),
                pair("next", "1")
            ]
        );
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(
            pairs("path=c:\\\\\nx=1"),
            vec![pair("path", "c:\\"), pair("x", "1")]
        );
        // A continuation on the last line just ends the value.
        assert_eq!(pairs("a=1\\"), vec![pair("a", "1")]);
        // A comment marker on a continuation line is part of the value.
        assert_eq!(pairs("a=1\\\n#2"), vec![pair("a", "1#2")]);
        // Windows line endings.
        assert_eq!(
            pairs("a=1\r\nb=2\r\n"),
            vec![pair("a", "1"), pair("b", "2")]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            pairs("my\\=key=v\\u0041\\tz\nsp\\ ace=\\ x\\ "),
            vec![pair("my=key", "vA\tz"), pair("sp ace", " x ")]
        );
        let error = parse("a=\\u12").unwrap_err();
        assert_eq!(error.key, "a");
        assert!(error.rule.contains("line 1"), "{error}");
    }

    #[test]
    fn line_numbers_and_duplicates() {
        let parsed = parse("\n\na=1\n# c\na=2\n").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!((parsed[0].line, parsed[1].line), (3, 5));
    }

    /// Every string up to five characters over the parser's special characters parses without
    /// panicking, and every key and value comes back trimmed of unescaped blanks.
    #[test]
    fn never_panics_on_short_inputs() {
        const ALPHABET: [char; 9] = ['a', '=', ':', ' ', '\\', '\n', '#', 'u', 'é'];
        let mut inputs = vec![String::new()];
        for _ in 0..5 {
            let mut longer = Vec::with_capacity(inputs.len() * ALPHABET.len());
            for input in &inputs {
                for c in ALPHABET {
                    longer.push(format!("{input}{c}"));
                }
            }
            for input in &longer {
                if let Ok(properties) = parse(input) {
                    for property in properties {
                        assert!(!property.key.ends_with(' ') || input.contains("\\ "));
                    }
                }
                let _ = parse_override(input);
            }
            inputs = longer;
        }
    }

    #[test]
    fn overrides() {
        assert_eq!(parse_override("a=1").unwrap(), pair("a", "1"));
        assert_eq!(parse_override(" a = x=y ").unwrap(), pair("a", "x=y"));
        assert_eq!(parse_override("a=").unwrap(), pair("a", ""));
        let error = parse_override("num.partitions").unwrap_err();
        assert_eq!(error.key, "num.partitions");
        assert!(error.rule.contains("key=value"));
        assert!(parse_override("=3").is_err());
    }
}
