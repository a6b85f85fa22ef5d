//! The wall clock as the node stamps edits and statements: Unix milliseconds.

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Today's date (UTC).
pub fn today() -> accordo_domain::model::Date {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    // Invariant: RFC 3339 starts with the calendar date, within Date's range.
    accordo_domain::model::Date::parse_any("today", &stamp[..10])
        .expect("the clock gives a valid date")
}
