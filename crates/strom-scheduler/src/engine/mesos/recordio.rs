//! RecordIO, the framing of the Mesos v1 event stream: each record is its length in bytes as
//! ASCII decimal, a `\n`, then exactly that many bytes (`records = *(record-size LF
//! record-data)`, Mesos's `docs/scheduler-http-api.md`). HTTP chunk boundaries mean nothing
//! here: bytes arrive in any split and records come out whole.
//!
//! Owns the incremental decoder and the encoder (for the scripted master of the tests). Pure;
//! a hostile stream (non-digits, a length beyond the limit, an overlong header, an empty
//! record) gives a [`RecordIoError`] and poisons the decoder, never a panic or an unbounded
//! buffer.

use std::fmt;

/// Digits of a `u64`: a longer length header is refused before its newline arrives.
const MAX_HEADER_DIGITS: usize = 20;

/// Why a stream cannot be decoded; the stream must be dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordIoError {
    /// The length header is not 1–20 ASCII digits followed by `\n`.
    BadHeader(String),
    /// The record is longer than the decoder accepts.
    TooLarge { length: u64, max: usize },
    /// A zero length (Mesos never sends one).
    Empty,
}

impl fmt::Display for RecordIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordIoError::BadHeader(header) => {
                write!(f, "bad RecordIO length header {header:?}")
            }
            RecordIoError::TooLarge { length, max } => {
                write!(
                    f,
                    "RecordIO record of {length} bytes exceeds the limit of {max}"
                )
            }
            RecordIoError::Empty => f.write_str("RecordIO record of length 0"),
        }
    }
}

impl std::error::Error for RecordIoError {}

/// An incremental RecordIO decoder: [`push`](Decoder::push) bytes as they arrive, take whole
/// records with [`next_record`](Decoder::next_record).
#[derive(Debug)]
pub struct Decoder {
    buffer: Vec<u8>,
    /// Where the undecoded bytes start in `buffer` (compacted when records are taken).
    start: usize,
    /// The length of the record being read, once its header was parsed.
    pending: Option<usize>,
    max_record: usize,
    failed: Option<RecordIoError>,
}

impl Decoder {
    /// A decoder refusing records longer than `max_record` bytes.
    pub fn new(max_record: usize) -> Self {
        Decoder {
            buffer: Vec::new(),
            start: 0,
            pending: None,
            max_record,
            failed: None,
        }
    }

    /// Appends bytes from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// The next whole record, `Ok(None)` when more bytes are needed. After an error every call
    /// returns the same error.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, RecordIoError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.decode() {
            Ok(record) => Ok(record),
            Err(error) => {
                self.failed = Some(error.clone());
                self.buffer = Vec::new();
                self.start = 0;
                Err(error)
            }
        }
    }

    /// Bytes received and not yet returned as records.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }

    fn decode(&mut self) -> Result<Option<Vec<u8>>, RecordIoError> {
        if self.pending.is_none() {
            let rest = &self.buffer[self.start..];
            let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() > MAX_HEADER_DIGITS || !rest.iter().all(u8::is_ascii_digit) {
                    return Err(RecordIoError::BadHeader(header_text(rest)));
                }
                return Ok(None);
            };
            let header = &rest[..newline];
            if header.is_empty()
                || header.len() > MAX_HEADER_DIGITS
                || !header.iter().all(u8::is_ascii_digit)
            {
                return Err(RecordIoError::BadHeader(header_text(header)));
            }
            // At most 20 digits: parse as u128 so even "99999999999999999999" does not overflow.
            let length = header
                .iter()
                .fold(0u128, |n, &d| n * 10 + u128::from(d - b'0'));
            if length == 0 {
                return Err(RecordIoError::Empty);
            }
            if length > self.max_record as u128 {
                return Err(RecordIoError::TooLarge {
                    length: u64::try_from(length).unwrap_or(u64::MAX),
                    max: self.max_record,
                });
            }
            self.pending = Some(length as usize);
            self.start += newline + 1;
        }
        let length = self.pending.unwrap_or(0);
        if self.buffered() < length {
            return Ok(None);
        }
        let record = self.buffer[self.start..self.start + length].to_vec();
        self.start += length;
        self.pending = None;
        // Compact once the consumed prefix dominates, so the buffer never grows without bound.
        if self.start > 4096 && self.start * 2 > self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(record))
    }
}

fn header_text(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(24)];
    String::from_utf8_lossy(shown).into_owned()
}

/// One record, framed.
pub fn encode(record: &[u8]) -> Vec<u8> {
    let mut framed = format!("{}\n", record.len()).into_bytes();
    framed.extend_from_slice(record);
    framed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(decoder: &mut Decoder) -> Result<Vec<Vec<u8>>, RecordIoError> {
        let mut records = Vec::new();
        while let Some(record) = decoder.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    #[test]
    fn records_survive_any_split() {
        let mut stream = encode(br#"{"type":"SUBSCRIBED"}"#);
        stream.extend(encode(b"{}"));
        stream.extend(encode(&[b'x'; 300]));
        for split in 0..=stream.len() {
            let mut decoder = Decoder::new(1024);
            decoder.push(&stream[..split]);
            let mut records = all(&mut decoder).unwrap();
            decoder.push(&stream[split..]);
            records.extend(all(&mut decoder).unwrap());
            assert_eq!(records.len(), 3, "split at {split}");
            assert_eq!(records[0], br#"{"type":"SUBSCRIBED"}"#);
            assert_eq!(records[2].len(), 300);
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn byte_at_a_time() {
        let stream: Vec<u8> = (0..50)
            .flat_map(|i| encode(format!("r{i}").as_bytes()))
            .collect();
        let mut decoder = Decoder::new(64);
        let mut records = Vec::new();
        for byte in stream {
            decoder.push(&[byte]);
            records.extend(all(&mut decoder).unwrap());
        }
        assert_eq!(records.len(), 50);
        assert_eq!(records[49], b"r49");
    }

    #[test]
    fn hostile_headers_are_errors_that_stick() {
        for (input, expected) in [
            (&b"12a\n"[..], "bad RecordIO length header \"12a\""),
            (b"\n", "bad RecordIO length header \"\""),
            (b"-5\nabcde", "bad RecordIO length header \"-5\""),
            (b" 5\nabcde", "bad RecordIO length header \" 5\""),
            (b"0\n", "RecordIO record of length 0"),
            (
                b"5000\n",
                "RecordIO record of 5000 bytes exceeds the limit of 1024",
            ),
            (
                b"99999999999999999999\n",
                "RecordIO record of 18446744073709551615 bytes exceeds the limit of 1024",
            ),
            (
                b"123456789012345678901",
                "bad RecordIO length header \"123456789012345678901\"",
            ),
            (b"{\"type\"", "bad RecordIO length header \"{\\\"type\\\"\""),
        ] {
            let mut decoder = Decoder::new(1024);
            decoder.push(input);
            let error = decoder.next_record().unwrap_err();
            assert_eq!(error.to_string(), expected, "{input:?}");
            decoder.push(&encode(b"ok"));
            assert_eq!(decoder.next_record().unwrap_err(), error, "poisoned");
        }
    }

    #[test]
    fn a_partial_header_waits() {
        let mut decoder = Decoder::new(1024);
        decoder.push(b"1");
        assert_eq!(decoder.next_record(), Ok(None));
        decoder.push(b"0\n0123456");
        assert_eq!(decoder.next_record(), Ok(None));
        decoder.push(b"789");
        assert_eq!(decoder.next_record(), Ok(Some(b"0123456789".to_vec())));
    }

    #[test]
    fn the_buffer_is_compacted() {
        let mut decoder = Decoder::new(1 << 16);
        for _ in 0..1000 {
            decoder.push(&encode(&[b'a'; 100]));
            assert!(decoder.next_record().unwrap().is_some());
        }
        assert!(decoder.buffer.len() < 10_000, "{}", decoder.buffer.len());
    }
}
