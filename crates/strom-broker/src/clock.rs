//! The broker's one source of wall-clock time. Everything below the wiring takes the time as an
//! argument (`now_ms`) where it can, so tests drive it; this is where the shells read it.

/// Milliseconds since the Unix epoch, passed into `strom-log` and the services as an argument.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
