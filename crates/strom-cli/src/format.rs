//! The `--format` language of `strom consume`, after `kcat -f` and `rpk topic consume -f`.
//!
//! A format is parsed once into [`Format`] so a typo is reported before anything is consumed,
//! then rendered per record into raw bytes: keys and values are written exactly as stored, not
//! re-encoded, so binary payloads survive a pipe.
//!
//! | directive | meaning |
//! |---|---|
//! | `%t` | topic |
//! | `%p` | partition |
//! | `%o` | offset |
//! | `%k` | key (empty when null) |
//! | `%v` | value (empty when null) |
//! | `%T` | timestamp in milliseconds (`-1` when absent) |
//! | `%h` | headers as `k=v` joined by `,` |
//! | `%%` | a literal `%` |
//! | `\n` `\t` `\r` `\\` | newline, tab, carriage return, backslash |

use anyhow::bail;

/// One piece of a parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Timestamp,
    Headers,
}

/// A parsed `--format` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
}

/// The fields of one consumed record that a format can show, borrowed from the message.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// The topic the record was read from.
    pub topic: &'a str,
    /// The partition the record was read from.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// The record value, `None` when null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Create or log-append time in milliseconds, when the record has one.
    pub timestamp_ms: Option<i64>,
    /// Headers in record order; a header value may be null.
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
}

/// The default format: the value and a newline, like `kcat -C`.
pub const DEFAULT_FORMAT: &str = "%v\\n";

impl Format {
    /// Parses a format string, naming the offending directive or escape on error.
    pub fn parse(text: &str) -> anyhow::Result<Format> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let piece = match chars.next() {
                        Some('t') => Piece::Topic,
                        Some('p') => Piece::Partition,
                        Some('o') => Piece::Offset,
                        Some('k') => Piece::Key,
                        Some('v') => Piece::Value,
                        Some('T') => Piece::Timestamp,
                        Some('h') => Piece::Headers,
                        Some('%') => {
                            literal.push(b'%');
                            continue;
                        }
                        Some(other) => bail!(
                            "unknown directive %{other} in --format {text:?} \
                             (known: %t %p %o %k %v %T %h %%)"
                        ),
                        None => bail!("--format {text:?} ends with a lone %; write %% for a %"),
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                }
                '\\' => {
                    let byte = match chars.next() {
                        Some('n') => b'\n',
                        Some('t') => b'\t',
                        Some('r') => b'\r',
                        Some('\\') => b'\\',
                        Some(other) => bail!(
                            "unknown escape \\{other} in --format {text:?} (known: \\n \\t \\r \\\\)"
                        ),
                        None => bail!("--format {text:?} ends with a lone \\; write \\\\"),
                    };
                    literal.push(byte);
                }
                other => {
                    let mut buffer = [0; 4];
                    literal.extend_from_slice(other.encode_utf8(&mut buffer).as_bytes());
                }
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Format { pieces })
    }

    /// Appends the rendering of `record` to `out`.
    pub fn render(&self, record: &RecordView<'_>, out: &mut Vec<u8>) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(bytes) => out.extend_from_slice(bytes),
                Piece::Topic => out.extend_from_slice(record.topic.as_bytes()),
                Piece::Partition => out.extend_from_slice(record.partition.to_string().as_bytes()),
                Piece::Offset => out.extend_from_slice(record.offset.to_string().as_bytes()),
                Piece::Key => out.extend_from_slice(record.key.unwrap_or_default()),
                Piece::Value => out.extend_from_slice(record.value.unwrap_or_default()),
                Piece::Timestamp => {
                    out.extend_from_slice(record.timestamp_ms.unwrap_or(-1).to_string().as_bytes())
                }
                Piece::Headers => {
                    for (index, (key, value)) in record.headers.iter().enumerate() {
                        if index > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(key.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(value.unwrap_or_default());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(headers: &'a [(&'a str, Option<&'a [u8]>)]) -> RecordView<'a> {
        RecordView {
            topic: "orders",
            partition: 2,
            offset: 41,
            key: Some(b"k1"),
            value: Some(b"hello"),
            timestamp_ms: Some(1_700_000_000_000),
            headers,
        }
    }

    fn render(format: &str, record: &RecordView<'_>) -> String {
        let mut out = Vec::new();
        Format::parse(format).unwrap().render(record, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn default_format_prints_the_value_and_a_newline() {
        assert_eq!(render(DEFAULT_FORMAT, &record(&[])), "hello\n");
    }

    #[test]
    fn every_directive_renders_its_field() {
        let headers: [(&str, Option<&[u8]>); 2] = [("a", Some(b"1")), ("b", None)];
        assert_eq!(
            render("%t|%p|%o|%k|%v|%T|%h\\t100%%\\r\\\\", &record(&headers)),
            "orders|2|41|k1|hello|1700000000000|a=1,b=\t100%\r\\"
        );
    }

    #[test]
    fn null_key_value_and_timestamp_render_empty_or_minus_one() {
        let mut view = record(&[]);
        view.key = None;
        view.value = None;
        view.timestamp_ms = None;
        assert_eq!(render("[%k][%v][%T][%h]", &view), "[][][-1][]");
    }

    #[test]
    fn binary_values_pass_through_unchanged() {
        let mut view = record(&[]);
        let bytes = [0u8, 0xff, b'\n'];
        view.value = Some(&bytes);
        let mut out = Vec::new();
        Format::parse("%v").unwrap().render(&view, &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn non_ascii_literals_are_kept() {
        assert_eq!(render("→%o", &record(&[])), "→41");
    }

    #[test]
    fn mistakes_are_reported_with_the_offending_directive() {
        let error = Format::parse("%x").unwrap_err().to_string();
        assert!(error.contains("%x"), "{error}");
        assert!(Format::parse("abc%").is_err());
        assert!(Format::parse("\\q").is_err());
        assert!(Format::parse("\\").is_err());
    }
}
