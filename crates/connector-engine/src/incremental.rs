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

/// How a datetime is written: in records (`cursor_format`) or in requests
/// (`request_format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339; read with any offset, written in UTC with `Z`.
    Rfc3339,
    /// Epoch seconds.
    Epoch,
    /// Epoch milliseconds.
    EpochMs,
    /// Epoch microseconds.
    EpochUs,
    /// A strftime format, read as UTC when it has no offset.
    Strftime(String),
}

impl TimeFormat {
    pub fn parse(text: &str) -> TimeFormat {
        match text {
            "rfc3339" | "iso8601" => TimeFormat::Rfc3339,
            "epoch" | "%s" => TimeFormat::Epoch,
            "epoch_ms" => TimeFormat::EpochMs,
            "epoch_us" => TimeFormat::EpochUs,
            other => TimeFormat::Strftime(other.to_string()),
        }
    }

    /// A value written this way, as an instant.
    fn read(&self, v: &Value) -> Option<DateTime<Utc>> {
        let number = || -> Option<i64> { v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()) };
        match self {
            TimeFormat::Rfc3339 => v.as_str().and_then(parse_datetime),
            TimeFormat::Epoch => DateTime::from_timestamp(number()?, 0),
            TimeFormat::EpochMs => DateTime::from_timestamp_millis(number()?),
            TimeFormat::EpochUs => DateTime::from_timestamp_micros(number()?),
            TimeFormat::Strftime(f) => {
                let s = v.as_str()?;
                DateTime::parse_from_str(s, f)
                    .map(|t| t.with_timezone(&Utc))
                    .ok()
                    .or_else(|| {
                        chrono::NaiveDateTime::parse_from_str(s, f)
                            .ok()
                            .map(|t| t.and_utc())
                    })
                    .or_else(|| {
                        NaiveDate::parse_from_str(s, f)
                            .ok()
                            .and_then(|d| d.and_hms_opt(0, 0, 0))
                            .map(|t| t.and_utc())
                    })
            }
        }
    }

    /// An instant written this way.
    pub fn write(&self, t: DateTime<Utc>) -> Value {
        match self {
            TimeFormat::Rfc3339 => Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            TimeFormat::Epoch => Value::from(t.timestamp()),
            TimeFormat::EpochMs => Value::from(t.timestamp_millis()),
            TimeFormat::EpochUs => Value::from(t.timestamp_micros()),
            TimeFormat::Strftime(f) => Value::String(t.format(f).to_string()),
        }
    }
}

/// Date windows of a range, compiled.
#[derive(Debug, Clone)]
pub struct WindowPlan {
    pub step: Duration,
    pub granularity: Duration,
    /// The rendered end of the range; none: now.
    pub end: Option<Value>,
}

/// One window: its bounds as instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
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
    /// How records write the cursor (`datetime` cursors); none: RFC 3339.
    pub format: Option<TimeFormat>,
    /// How bounds are sent.
    pub request_format: TimeFormat,
    /// The earliest lower bound sent (rendered `min`).
    pub min: Option<Value>,
    pub windows: Option<WindowPlan>,
    /// The query ends and starts again from the cursor reached when this
    /// holds after a page (`restart_when`).
    pub restart_when: Option<crate::template::CompiledTemplate>,
}

/// A cursor value parsed by its type, so values compare by meaning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Parsed {
    Int(i128),
    Time(DateTime<Utc>),
    Date(NaiveDate),
    Text(String),
}

fn describe(f: &TimeFormat) -> String {
    match f {
        TimeFormat::Rfc3339 => "rfc3339".into(),
        TimeFormat::Epoch => "epoch".into(),
        TimeFormat::EpochMs => "epoch_ms".into(),
        TimeFormat::EpochUs => "epoch_us".into(),
        TimeFormat::Strftime(s) => s.clone(),
    }
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
            CursorKind::Datetime => match &self.format {
                Some(f) => f
                    .read(v)
                    // A bound written by `request_format` reads back too.
                    .or_else(|| self.request_format.read(v))
                    .or_else(|| v.as_str().and_then(parse_datetime))
                    .map(Parsed::Time)
                    .ok_or_else(|| bad(&format!("a datetime in the format `{}`", describe(f)))),
                None => v
                    .as_str()
                    .and_then(parse_datetime)
                    .or_else(|| self.request_format.read(v))
                    .map(Parsed::Time)
                    .ok_or_else(|| bad("an RFC 3339 datetime such as `2024-01-02T03:04:05Z`")),
            },
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

    /// The instant of a datetime cursor value.
    pub fn instant(&self, v: &Value) -> Result<DateTime<Utc>, String> {
        match self.parse(v)? {
            Parsed::Time(t) => Ok(t),
            Parsed::Date(d) => Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()),
            _ => Err(format!("cursor `{}` is not a datetime or date", self.field)),
        }
    }

    /// A bound as the API is sent it (`request_format`); integer and string
    /// cursors go as they are.
    pub fn request_value(&self, v: &Value) -> Result<Value, String> {
        match self.kind {
            CursorKind::Datetime => Ok(self.request_format.write(self.instant(v)?)),
            CursorKind::Date => match &self.request_format {
                TimeFormat::Rfc3339 => Ok(v.clone()),
                f => Ok(f.write(self.instant(v)?)),
            },
            _ => Ok(v.clone()),
        }
    }

    /// The lower bound of this run: the saved cursor minus `lookback`, else
    /// the start value; never before `min`.
    pub fn lower_bound(&self, saved: Option<&Value>) -> Result<Option<Value>, String> {
        let lower = self.lower_bound_unclamped(saved)?;
        match (&lower, &self.min) {
            (Some(l), Some(m)) if self.compare(l, m)? == Ordering::Less => Ok(Some(m.clone())),
            (None, Some(m)) => Ok(Some(m.clone())),
            _ => Ok(lower),
        }
    }

    /// The lower bound of a query that goes on from `cursor` in the same
    /// run (`restart_when`): the cursor itself, without `lookback` (what
    /// is before it was read by the query before), never below `min`.
    pub fn bound_from(&self, cursor: &Value) -> Result<Value, String> {
        match &self.min {
            Some(m) if self.compare(cursor, m)? == Ordering::Less => Ok(m.clone()),
            _ => Ok(cursor.clone()),
        }
    }

    /// The windows from `lower` to `upper`: `step` long, each ending
    /// `granularity` before the next starts, the last cut at `upper`.
    pub fn windows(&self, lower: &Value, upper: &Value) -> Result<Vec<Window>, String> {
        let Some(w) = &self.windows else {
            return Ok(Vec::new());
        };
        let (mut start, end) = (self.instant(lower)?, self.instant(upper)?);
        let step = chrono::Duration::from_std(w.step).map_err(|e| e.to_string())?;
        let grain = chrono::Duration::from_std(w.granularity).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while start <= end {
            let next = start
                .checked_add_signed(step)
                .ok_or("a window past the year 262143")?;
            out.push(Window {
                start,
                end: (next - grain).min(end),
            });
            start = next;
            if out.len() > 1_000_000 {
                return Err("more than a million windows: make `step` longer".into());
            }
        }
        Ok(out)
    }

    /// The upper bound of a windowed run: the rendered `end`, else the end
    /// of the last whole `granularity` before now (at `1s`, `12:00:04.7`
    /// gives `12:00:03`): the next run starts one `granularity` later, at
    /// `12:00:04`, so a record of that second written after this run read
    /// is not skipped.
    pub fn upper_bound(&self) -> Option<Value> {
        let w = self.windows.as_ref()?;
        Some(match &w.end {
            Some(e) => e.clone(),
            None => {
                let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
                let grain = w.granularity.as_nanos().max(1);
                let nanos = now.timestamp_nanos_opt().unwrap_or(i64::MAX) as u128;
                let cut = (nanos - nanos % grain).saturating_sub(grain) as i64;
                self.request_format
                    .write(chrono::DateTime::from_timestamp_nanos(cut))
            }
        })
    }

    fn lower_bound_unclamped(&self, saved: Option<&Value>) -> Result<Option<Value>, String> {
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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Boundary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Value>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
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
            format: None,
            request_format: TimeFormat::Rfc3339,
            min: None,
            windows: None,
            restart_when: None,
        }
    }

    #[test]
    fn formats_read_and_write() {
        let mut p = plan(CursorKind::Datetime, None);
        p.format = Some(TimeFormat::Epoch);
        p.request_format = TimeFormat::Strftime("%Y-%m-%d %H:%M:%S".into());
        assert_eq!(
            p.request_value(&json!(1709650800)).unwrap(),
            json!("2024-03-05 15:00:00")
        );
        assert_eq!(
            p.compare(&json!("1709650801"), &json!(1709650800)).unwrap(),
            Ordering::Greater
        );
        assert!(
            p.compare(&json!("soon"), &json!(1))
                .unwrap_err()
                .contains("format `epoch`")
        );
        p.format = Some(TimeFormat::EpochMs);
        assert_eq!(
            p.instant(&json!(1709650800123i64))
                .unwrap()
                .timestamp_millis(),
            1709650800123
        );
        p.format = Some(TimeFormat::parse("epoch_us"));
        p.request_format = TimeFormat::EpochUs;
        assert_eq!(
            p.request_value(&json!(1709650800123456i64)).unwrap(),
            json!(1709650800123456i64)
        );
        assert_eq!(
            p.compare(&json!("1709650800123457"), &json!(1709650800123456i64))
                .unwrap(),
            Ordering::Greater
        );
    }

    #[test]
    fn a_range_to_now_ends_at_the_last_whole_granule() {
        let mut p = plan(CursorKind::Datetime, None);
        p.windows = Some(WindowPlan {
            step: Duration::from_secs(86_400),
            granularity: Duration::from_secs(1),
            end: None,
        });
        let before =
            chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now()).timestamp();
        let upper = p.upper_bound().unwrap();
        let after = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now()).timestamp();
        let t = p.instant(&upper).unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 0, "{upper}");
        assert!(
            t.timestamp() < after && t.timestamp() >= before - 1,
            "{upper}"
        );
    }

    #[test]
    fn windows_cover_the_range_without_overlap() {
        let mut p = plan(CursorKind::Datetime, None);
        p.windows = Some(WindowPlan {
            step: Duration::from_secs(86_400),
            granularity: Duration::from_secs(1),
            end: None,
        });
        let w = p
            .windows(
                &json!("2024-01-01T00:00:00Z"),
                &json!("2024-01-03T12:00:00Z"),
            )
            .unwrap();
        let shown: Vec<(String, String)> = w
            .iter()
            .map(|w| (w.start.to_rfc3339(), w.end.to_rfc3339()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (
                    "2024-01-01T00:00:00+00:00".into(),
                    "2024-01-01T23:59:59+00:00".into()
                ),
                (
                    "2024-01-02T00:00:00+00:00".into(),
                    "2024-01-02T23:59:59+00:00".into()
                ),
                (
                    "2024-01-03T00:00:00+00:00".into(),
                    "2024-01-03T12:00:00+00:00".into()
                ),
            ]
        );
        p.min = Some(json!("2024-01-02T00:00:00Z"));
        assert_eq!(
            p.lower_bound(None).unwrap(),
            Some(json!("2024-01-02T00:00:00Z")),
            "clamped to min"
        );
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
