//! The wall clock as the node stamps edits and statements: Unix milliseconds.

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 to the second ("2026-12-03T16:45:31Z").
pub fn iso_ms(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Today's date (UTC).
pub fn today() -> accordo_domain::model::Date {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    // Invariant: RFC 3339 starts with the calendar date, within Date's range.
    accordo_domain::model::Date::parse_any("today", &stamp[..10])
        .expect("the clock gives a valid date")
}
