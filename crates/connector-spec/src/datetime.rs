//! Datetime values as cursors hold them, parsed the same way by `validate`
//! (a `start_value`) and by the engine (every record's cursor).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};

/// Parses a datetime: RFC 3339 with an offset or `Z`, or a value without
/// one (`2024-01-02T03:04:05`, `2024-01-02 03:04:05.123`, `2024-01-02`),
/// read as UTC.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::<FixedOffset>::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // RFC 3339 allows a space for the `T`, and some APIs write `+0000`.
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_fractions_and_naive_values() {
        let utc = |s: &str| parse_datetime(s).map(|t| t.to_rfc3339());
        assert_eq!(
            utc("2023-01-01T23:00:00-05:00").as_deref(),
            Some("2023-01-02T04:00:00+00:00")
        );
        assert_eq!(
            utc("2023-01-02 01:00:00.250+0000").as_deref(),
            Some("2023-01-02T01:00:00.250+00:00")
        );
        assert_eq!(
            utc("2023-01-02").as_deref(),
            Some("2023-01-02T00:00:00+00:00")
        );
        assert_eq!(utc("yesterday"), None);
        assert_eq!(
            parse_date("2024-02-29T10:00:00Z")
                .map(|d| d.to_string())
                .as_deref(),
            Some("2024-02-29")
        );
    }
}
