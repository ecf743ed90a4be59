//! Incremental syncs: the lower bound of a run, the cursor values seen, the
//! client-side filter for APIs that cannot filter, and the boundary records
//! that an inclusive API sends again.
//!
//! Cursor values compare by their type: `datetime` as instants (RFC 3339
//! with any offset, `Z`, fractional seconds; a value without an offset is
//! UTC), `date` as calendar dates, `integer` as numbers, `string` as text.
//! A value that does not parse as its type is an error naming it, never a
//! silent comparison of text.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use connector_spec::datetime::{parse_date, parse_datetime};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::time::Duration;

/// How cursor values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    Datetime,
    Date,
    Integer,
    String,
}

impl From<connector_spec::CursorType> for CursorKind {
    fn from(t: connector_spec::CursorType) -> CursorKind {
        match t {
            connector_spec::CursorType::Datetime => CursorKind::Datetime,
            connector_spec::CursorType::Date => CursorKind::Date,
            connector_spec::CursorType::Integer => CursorKind::Integer,
            connector_spec::CursorType::String => CursorKind::String,
        }
    }
}

/// A stream's incremental settings, compiled.
#[derive(Debug, Clone)]
pub struct CursorPlan {
    pub field: String,
    pub kind: CursorKind,
    /// The first run's lower bound (rendered `start_value`).
    pub start: Option<Value>,
    pub param: Option<String>,
    pub lookback: Option<Duration>,
    pub client_filter: bool,
}

/// A cursor value parsed by its type, so values compare by meaning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Parsed {
    Int(i128),
    Time(DateTime<Utc>),
    Date(NaiveDate),
    Text(String),
}

fn as_i128(v: &Value) -> Option<i128> {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
        .or_else(|| v.as_str()?.trim().parse().ok())
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn shown(v: &Value) -> String {
    let t = v.to_string();
    if t.chars().count() > 80 {
        format!("{}…", t.chars().take(80).collect::<String>())
    } else {
        t
    }
}

impl CursorPlan {
    /// The value of the cursor field in a record, if present and not null.
    pub fn value_of<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        crate::record_key::field(record, &self.field).filter(|v| !v.is_null())
    }

    fn parse(&self, v: &Value) -> Result<Parsed, String> {
        let bad =
            |expected: &str| format!("cursor `{}` is {}, not {expected}", self.field, shown(v));
        match self.kind {
            CursorKind::Integer => as_i128(v).map(Parsed::Int).ok_or_else(|| bad("an integer")),
            CursorKind::Datetime => v
                .as_str()
                .and_then(parse_datetime)
                .map(Parsed::Time)
                .ok_or_else(|| bad("an RFC 3339 datetime such as `2024-01-02T03:04:05Z`")),
            CursorKind::Date => v
                .as_str()
                .and_then(parse_date)
                .map(Parsed::Date)
                .ok_or_else(|| bad("a date such as `2024-01-02`")),
            CursorKind::String => Ok(Parsed::Text(text(v))),
        }
    }

    /// Checks that a value (a saved cursor, a start value) parses as the
    /// cursor's type.
    pub fn check(&self, v: &Value) -> Result<(), String> {
        self.parse(v).map(|_| ())
    }

    /// Orders two cursor values by the cursor's type.
    pub fn compare(&self, a: &Value, b: &Value) -> Result<Ordering, String> {
        Ok(self.parse(a)?.cmp(&self.parse(b)?))
    }

    /// The lower bound of this run: the saved cursor minus `lookback`, else
    /// the start value.
    pub fn lower_bound(&self, saved: Option<&Value>) -> Result<Option<Value>, String> {
        let Some(saved) = saved else {
            return Ok(self.start.clone());
        };
        let Some(lookback) = self.lookback else {
            return Ok(Some(saved.clone()));
        };
        let back = chrono::Duration::from_std(lookback).unwrap_or(chrono::Duration::MAX);
        Ok(Some(match self.parse(saved)? {
            Parsed::Time(t) => Value::String(
                t.checked_sub_signed(back)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC)
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            ),
            Parsed::Date(d) => {
                let days = lookback.as_secs().div_ceil(86_400);
                let d = d
                    .checked_sub_days(chrono::Days::new(days))
                    .unwrap_or(NaiveDate::MIN);
                Value::String(d.format("%Y-%m-%d").to_string())
            }
            _ => saved.clone(),
        }))
    }

    /// True when the record is older than the lower bound and should be
    /// dropped (with `client_filter`, or `force` when the API was not asked
    /// to filter). An unparseable cursor is an error.
    pub fn is_older(
        &self,
        record: &Value,
        lower: Option<&Value>,
        force: bool,
    ) -> Result<bool, String> {
        match ((self.client_filter || force), lower, self.value_of(record)) {
            (true, Some(lower), Some(v)) => Ok(self.compare(v, lower)? == Ordering::Less),
            _ => Ok(false),
        }
    }

    /// The larger of two cursors.
    pub fn max(&self, a: Option<Value>, b: &Value) -> Result<Option<Value>, String> {
        Ok(match a {
            Some(a) if self.compare(&a, b)? != Ordering::Less => Some(a),
            _ => Some(b.clone()),
        })
    }
}

/// The largest cursor of some records and the keys of the records that
/// carry it: the next run skips those records when the API sends them again
/// (inclusive filters such as `since`, `updated_at_min`, `GTE`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Boundary {
    pub cursor: Option<Value>,
    pub keys: BTreeSet<String>,
}

impl Boundary {
    /// Adds a record's cursor and key.
    pub fn add(&mut self, plan: &CursorPlan, cursor: &Value, key: String) -> Result<(), String> {
        match &self.cursor {
            Some(c) => match plan.compare(cursor, c)? {
                Ordering::Greater => {
                    self.cursor = Some(cursor.clone());
                    self.keys.clear();
                    self.keys.insert(key);
                }
                Ordering::Equal => {
                    self.keys.insert(key);
                }
                Ordering::Less => {}
            },
            None => {
                plan.check(cursor)?;
                self.cursor = Some(cursor.clone());
                self.keys.insert(key);
            }
        }
        Ok(())
    }

    /// Merges another boundary into this one.
    pub fn merge(&mut self, plan: &CursorPlan, other: Boundary) -> Result<(), String> {
        let Some(c) = other.cursor else {
            return Ok(());
        };
        match &self.cursor {
            Some(mine) => match plan.compare(&c, mine)? {
                Ordering::Greater => {
                    *self = Boundary {
                        cursor: Some(c),
                        keys: other.keys,
                    }
                }
                Ordering::Equal => self.keys.extend(other.keys),
                Ordering::Less => {}
            },
            None => {
                *self = Boundary {
                    cursor: Some(c),
                    keys: other.keys,
                }
            }
        }
        Ok(())
    }

    /// True when a record with this cursor and key was written at the
    /// boundary already.
    pub fn holds(&self, plan: &CursorPlan, cursor: &Value, key: &str) -> Result<bool, String> {
        match &self.cursor {
            Some(c) if self.keys.contains(key) => Ok(plan.compare(cursor, c)? == Ordering::Equal),
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(kind: CursorKind, lookback: Option<u64>) -> CursorPlan {
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
    fn datetimes_compare_as_instants_with_any_offset() {
        let p = plan(CursorKind::Datetime, None);
        // 04:00 UTC on the 2nd, though its text sorts first.
        let a = json!("2023-01-01T23:00:00-05:00");
        let b = json!("2023-01-02T01:00:00+00:00");
        assert_eq!(p.compare(&a, &b).unwrap(), Ordering::Greater);
        assert_eq!(p.max(Some(b.clone()), &a).unwrap(), Some(a.clone()));
        assert_eq!(
            p.compare(&json!("2023-01-02T04:00:00Z"), &a).unwrap(),
            Ordering::Equal
        );
        assert_eq!(
            p.compare(
                &json!("2023-01-02T01:00:00.250Z"),
                &json!("2023-01-02T01:00:00Z")
            )
            .unwrap(),
            Ordering::Greater
        );
        // Naive values are UTC.
        assert_eq!(
            p.compare(&json!("2023-01-02 01:00:00"), &b).unwrap(),
            Ordering::Equal
        );
        let err = p.compare(&json!("yesterday"), &b).unwrap_err();
        assert!(err.contains("`updated_at` is \"yesterday\""), "{err}");
    }

    #[test]
    fn lookback_subtracts_from_an_offset_cursor() {
        let p = plan(CursorKind::Datetime, Some(3600));
        assert_eq!(
            p.lower_bound(None).unwrap(),
            Some(json!("2024-01-01T00:00:00Z"))
        );
        assert_eq!(
            p.lower_bound(Some(&json!("2023-01-01T23:00:00-05:00")))
                .unwrap(),
            Some(json!("2023-01-02T03:00:00Z"))
        );
        assert!(
            p.is_older(
                &json!({"updated_at": "2023-12-31T00:00:00Z"}),
                Some(&json!("2024-01-01T00:00:00Z")),
                false
            )
            .unwrap()
        );
        assert!(
            !p.is_older(
                &json!({"updated_at": "2023-12-31T20:00:00-05:00"}),
                Some(&json!("2024-01-01T00:00:00Z")),
                false
            )
            .unwrap()
        );
        let d = plan(CursorKind::Date, Some(86_400));
        assert_eq!(
            d.lower_bound(Some(&json!("2024-03-01"))).unwrap(),
            Some(json!("2024-02-29"))
        );
    }

    #[test]
    fn integers_compare_numerically() {
        let p = plan(CursorKind::Integer, None);
        assert_eq!(
            p.compare(&json!(10), &json!("9")).unwrap(),
            Ordering::Greater
        );
        assert_eq!(p.max(Some(json!(10)), &json!(9)).unwrap(), Some(json!(10)));
        assert!(p.compare(&json!("ten"), &json!(9)).is_err());
    }

    #[test]
    fn boundary_keeps_the_keys_at_the_largest_cursor() {
        let p = plan(CursorKind::Datetime, None);
        let mut b = Boundary::default();
        b.add(&p, &json!("2024-01-01T00:00:00Z"), "a".into())
            .unwrap();
        b.add(&p, &json!("2024-01-02T00:00:00Z"), "b".into())
            .unwrap();
        b.add(&p, &json!("2024-01-01T19:00:00-05:00"), "c".into())
            .unwrap();
        assert_eq!(b.cursor, Some(json!("2024-01-02T00:00:00Z")));
        assert_eq!(b.keys.iter().collect::<Vec<_>>(), vec!["b", "c"]);
        assert!(
            b.holds(&p, &json!("2024-01-02T00:00:00+00:00"), "c")
                .unwrap()
        );
        assert!(!b.holds(&p, &json!("2024-01-02T00:00:00Z"), "d").unwrap());
        let mut later = Boundary::default();
        later
            .add(&p, &json!("2024-01-03T00:00:00Z"), "e".into())
            .unwrap();
        b.merge(&p, later).unwrap();
        assert_eq!(b.keys.len(), 1);
    }
}
