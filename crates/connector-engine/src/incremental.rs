//! Incremental syncs: the lower bound of a run, the cursor values seen, and
//! the client-side filter for APIs that cannot filter.

use connector_spec::CursorType;
use serde_json::Value;
use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

/// A stream's incremental settings, compiled.
#[derive(Debug, Clone)]
pub struct CursorPlan {
    pub field: String,
    pub kind: CursorType,
    /// The first run's lower bound (rendered `start_value`).
    pub start: Option<Value>,
    pub param: Option<String>,
    pub lookback: Option<Duration>,
    pub client_filter: bool,
}

fn parse_time(kind: CursorType, v: &Value) -> Option<SystemTime> {
    let s = v.as_str()?;
    match kind {
        CursorType::Date => {
            humantime::parse_rfc3339_weak(&format!("{}T00:00:00", s.get(..10)?)).ok()
        }
        _ => humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok(),
    }
}

impl CursorPlan {
    /// The value of the cursor field in a record, if present.
    pub fn value_of<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        let mut v = record;
        for part in self.field.split('.') {
            v = v.get(part)?;
        }
        (!v.is_null()).then_some(v)
    }

    /// Orders two cursor values by the cursor's type. Values that do not
    /// parse fall back to comparing their text.
    pub fn compare(&self, a: &Value, b: &Value) -> Ordering {
        match self.kind {
            CursorType::Integer => match (as_i128(a), as_i128(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => text(a).cmp(&text(b)),
            },
            CursorType::Datetime | CursorType::Date => {
                match (parse_time(self.kind, a), parse_time(self.kind, b)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ => text(a).cmp(&text(b)),
                }
            }
            CursorType::String => text(a).cmp(&text(b)),
        }
    }

    /// The lower bound of this run: the saved cursor minus `lookback`, else
    /// the start value.
    pub fn lower_bound(&self, saved: Option<&Value>) -> Option<Value> {
        let Some(saved) = saved else {
            return self.start.clone();
        };
        match (self.lookback, parse_time(self.kind, saved)) {
            (Some(lb), Some(t)) => {
                let back = t.checked_sub(lb).unwrap_or(SystemTime::UNIX_EPOCH);
                let text = humantime::format_rfc3339_seconds(back).to_string();
                Some(Value::String(if self.kind == CursorType::Date {
                    text[..10].to_string()
                } else {
                    text
                }))
            }
            _ => Some(saved.clone()),
        }
    }

    /// True when the record is older than the lower bound and should be dropped.
    pub fn is_older(&self, record: &Value, lower: Option<&Value>) -> bool {
        match (self.client_filter, lower, self.value_of(record)) {
            (true, Some(lower), Some(v)) => self.compare(v, lower) == Ordering::Less,
            _ => false,
        }
    }

    /// The larger of two optional cursors.
    pub fn max(&self, a: Option<Value>, b: &Value) -> Option<Value> {
        match a {
            Some(a) if self.compare(&a, b) != Ordering::Less => Some(a),
            _ => Some(b.clone()),
        }
    }
}

fn as_i128(v: &Value) -> Option<i128> {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
        .or_else(|| v.as_str()?.parse().ok())
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(kind: CursorType, lookback: Option<u64>) -> CursorPlan {
        CursorPlan {
            field: "updated_at".into(),
            kind,
            start: Some(json!("2024-01-01T00:00:00Z")),
            param: None,
            lookback: lookback.map(Duration::from_secs),
            client_filter: true,
        }
    }

    #[test]
    fn datetimes_compare_as_times_and_lookback_subtracts() {
        let p = plan(CursorType::Datetime, Some(3600));
        assert_eq!(
            p.compare(
                &json!("2024-01-02T00:00:00Z"),
                &json!("2024-01-01T23:00:00Z")
            ),
            Ordering::Greater
        );
        assert_eq!(p.lower_bound(None), Some(json!("2024-01-01T00:00:00Z")));
        assert_eq!(
            p.lower_bound(Some(&json!("2024-01-02T00:00:00Z"))),
            Some(json!("2024-01-01T23:00:00Z"))
        );
        assert!(p.is_older(
            &json!({"updated_at": "2023-12-31T00:00:00Z"}),
            Some(&json!("2024-01-01T00:00:00Z"))
        ));
        assert!(!p.is_older(
            &json!({"updated_at": "2024-01-01T00:00:00Z"}),
            Some(&json!("2024-01-01T00:00:00Z"))
        ));
    }

    #[test]
    fn integers_compare_numerically() {
        let p = CursorPlan {
            kind: CursorType::Integer,
            ..plan(CursorType::Integer, None)
        };
        assert_eq!(p.compare(&json!(10), &json!(9)), Ordering::Greater);
        assert_eq!(p.max(Some(json!(10)), &json!(9)), Some(json!(10)));
    }
}
