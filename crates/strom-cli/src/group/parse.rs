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

/// Parses a UTC time `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (a lower-case `t`/`z` and a space for
/// `T` are accepted) into milliseconds since the Unix epoch. The fraction may have 1 to 9
/// digits and is truncated to milliseconds. Times before 1970 are refused, since ListOffsets
/// reads negative timestamps as "earliest"/"latest".
pub fn parse_utc_datetime(text: &str) -> Result<i64, String> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>, what: &str| -> Result<i64, String> {
        let field = bytes
            .get(range)
            .filter(|field| !field.is_empty() && field.iter().all(u8::is_ascii_digit))
            .ok_or_else(|| format!("the {what} is not a number where expected"))?;
        Ok(field.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let separator = |index: usize, allowed: &[u8], what: &str| -> Result<(), String> {
        match bytes.get(index) {
            Some(b) if allowed.contains(b) => Ok(()),
            _ => Err(format!("expected {what} at position {}", index + 1)),
        }
    };
    let year = digits(0..4, "year")?;
    separator(4, b"-", "'-'")?;
    let month = digits(5..7, "month")?;
    separator(7, b"-", "'-'")?;
    let day = digits(8..10, "day")?;
    separator(10, b"Tt ", "'T'")?;
    let hour = digits(11..13, "hour")?;
    separator(13, b":", "':'")?;
    let minute = digits(14..16, "minute")?;
    separator(16, b":", "':'")?;
    let second = digits(17..19, "second")?;
    let mut index = 19;
    let mut millis = 0;
    if bytes.get(index) == Some(&b'.') {
        let start = index + 1;
        let mut end = start;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        let length = end - start;
        if !(1..=9).contains(&length) {
            return Err("the fraction of a second must have 1 to 9 digits".to_owned());
        }
        for position in 0..3 {
            millis *= 10;
            if position < length {
                millis += i64::from(bytes[start + position] - b'0');
            }
        }
        index = end;
    }
    separator(index, b"Zz", "'Z' (the time must be UTC)")?;
    if index + 1 != bytes.len() {
        return Err("unexpected text after 'Z'".to_owned());
    }
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} is out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!(
            "day {day} is out of range for {year:04}-{month:02}"
        ));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!(
            "time {hour:02}:{minute:02}:{second:02} is out of range"
        ));
    }
    if year < 1970 {
        return Err("times before 1970-01-01T00:00:00Z are not supported".to_owned());
    }
    let days = days_since_epoch(year, month, day);
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar (Howard
/// Hinnant's `days_from_civil`).
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March is 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
