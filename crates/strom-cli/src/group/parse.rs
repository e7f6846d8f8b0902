//! Decoding a consumer group's assignment bytes and parsing `--to-datetime` values.

/// A decoded ConsumerProtocolAssignment (the bytes a consumer group's leader assigns to each
/// member through SyncGroup).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    pub version: i16,
    /// Assigned partitions per topic, in the order they were encoded.
    pub partitions: Vec<(String, Vec<i32>)>,
    /// The assignor's user data; `None` when null or absent.
    pub user_data: Option<Vec<u8>>,
}

/// A big-endian reader over bytes that never reads past their end.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn take(&mut self, count: usize, what: &str) -> Result<&'a [u8], String> {
        if count > self.remaining() {
            return Err(format!(
                "truncated at byte {}: {what} needs {count} bytes, {} left",
                self.position,
                self.remaining()
            ));
        }
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    fn i16(&mut self, what: &str) -> Result<i16, String> {
        let bytes = self.take(2, what)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        let bytes = self.take(4, what)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// An array length that must be non-negative and fit the bytes left, each element taking
    /// at least `min_element` bytes, so a hostile count cannot drive a huge allocation.
    fn count(&mut self, what: &str, min_element: usize) -> Result<usize, String> {
        let count = self.i32(what)?;
        let count = usize::try_from(count).map_err(|_| format!("{what} is negative ({count})"))?;
        if count.saturating_mul(min_element) > self.remaining() {
            return Err(format!(
                "{what} is {count} but only {} bytes are left",
                self.remaining()
            ));
        }
        Ok(count)
    }
}

/// Decodes a ConsumerProtocolAssignment: int16 version, then an array of (topic string, int32
/// array of partitions), then nullable user-data bytes. Every version so far has this layout;
/// bytes after it (from a newer version) are ignored, and missing user data is accepted, as
/// some clients omit it. Malformed input gives an error, never a panic.
pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment, String> {
    let mut reader = Reader { bytes, position: 0 };
    let version = reader.i16("the version")?;
    if version < 0 {
        return Err(format!("the version is negative ({version})"));
    }
    // Each topic entry takes at least 2 (name length) + 4 (partition count) bytes.
    let topics = reader.count("the topic count", 6)?;
    let mut partitions = Vec::with_capacity(topics);
    for _ in 0..topics {
        let length = reader.i16("a topic name length")?;
        let length = usize::try_from(length)
            .map_err(|_| format!("a topic name length is negative ({length})"))?;
        let name = String::from_utf8_lossy(reader.take(length, "a topic name")?).into_owned();
        let count = reader.count("a partition count", 4)?;
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            ids.push(reader.i32("a partition")?);
        }
        partitions.push((name, ids));
    }
    let user_data = if reader.remaining() == 0 {
        None
    } else {
        let length = reader.i32("the user data length")?;
        if length < 0 {
            None
        } else {
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            Some(reader.take(length, "the user data")?.to_vec())
        }
    };
    Ok(Assignment {
        version,
        partitions,
        user_data,
    })
}

/// Parses an RFC 3339 time with its offset (`2024-01-01T00:00:00Z`, `…T02:00:00+02:00`, a
/// fraction of up to 9 digits, a space for `T`), as Kafka's `--to-datetime` takes it, into
/// milliseconds since the Unix epoch (the fraction truncated). A time without an offset is
/// refused rather than read in some local zone. Times before 1970 are refused, since
/// ListOffsets reads negative timestamps as "earliest"/"latest".
pub fn parse_utc_datetime(text: &str) -> Result<i64, String> {
    let time: jiff::Timestamp = text
        .parse()
        .map_err(|error: jiff::Error| error.to_string())?;
    let millis = time.as_millisecond();
    if millis < 0 {
        return Err("times before 1970-01-01T00:00:00Z are not supported".to_owned());
    }
    Ok(millis)
}

/// Parses a duration as Kafka's `--by-duration` takes it (ISO 8601, `PT1H30M`, `P1DT2H`) or
/// in a friendly form (`1h 30m`, `2 days`), into milliseconds. Days are 24 hours; years and
/// months are refused (their length depends on the date).
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let span: jiff::Span = text
        .trim()
        .parse()
        .map_err(|error: jiff::Error| error.to_string())?;
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err("years and months have no fixed length: use days (P30D, 30d)".to_owned());
    }
    let duration = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|error| error.to_string())?;
    if duration.is_negative() {
        return Err("the duration must not be negative".to_owned());
    }
    i64::try_from(duration.as_millis()).map_err(|_| "the duration is too long".to_owned())
}
