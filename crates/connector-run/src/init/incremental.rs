//! Incremental syncs that the probed URL and its records suggest. A lower
//! bound in the URL's query (`start_time`, `updated_since`, `since`,
//! `updated_at_min`, `from`, …) whose value is a time, and a field like
//! `updated_at` in every record of the first page, become an
//! `incremental:` block: the bound is sent in that parameter, written the
//! way the URL wrote it (epoch seconds for a 10-digit number, as Zendesk's
//! `start_time`), from a `start_date` config parameter on the first run and
//! from the largest cursor of the last run after that. A range (a start and
//! an end parameter) gets a commented `windows` suggestion.

use super::Choice;
use super::inputs::ConfigEntry;
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

/// Query parameters that carry the lower bound of a time range.
const LOWER_PARAMS: &[&str] = &[
    "start_time",
    "startTime",
    "updated_since",
    "updatedSince",
    "updated_after",
    "updatedAfter",
    "updated_at_min",
    "updated_at[gte]",
    "updated_at[gt]",
    "updated[gte]",
    "modified_since",
    "modifiedSince",
    "modified_after",
    "changed_since",
    "last_modified_since",
    "since",
    "start_date",
    "startDate",
    "date_from",
    "from_date",
    "from",
    "after",
];

/// Query parameters that carry the upper bound of a time range.
const UPPER_PARAMS: &[&str] = &[
    "end_time",
    "endTime",
    "updated_before",
    "updatedBefore",
    "updated_at_max",
    "updated_at[lte]",
    "updated_at[lt]",
    "updated[lte]",
    "modified_before",
    "until",
    "end_date",
    "endDate",
    "date_to",
    "to_date",
    "to",
    "before",
];

/// Record fields that say when a record last changed, most telling first;
/// creation times last, for APIs whose records never change.
const CURSOR_FIELDS: &[&str] = &[
    "updated_at",
    "updatedAt",
    "updated",
    "modified_at",
    "modifiedAt",
    "date_modified",
    "dateModified",
    "last_modified",
    "lastModified",
    "lastModifiedDateTime",
    "LastModifiedDate",
    "SystemModstamp",
    "modified",
    "updated_time",
    "update_time",
    "changed_at",
    "last_updated",
    "lastUpdated",
    "created_at",
    "createdAt",
    "created",
];

/// How a time is written, in a query parameter or a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeText {
    /// RFC 3339 with an offset or `Z`.
    Rfc3339,
    /// Epoch seconds (10 digits).
    Epoch,
    /// Epoch milliseconds (13 digits).
    EpochMs,
    /// `2024-01-02`.
    Date,
    /// `2024-01-02 03:04:05`, no offset.
    SpaceNaive,
    /// `2024-01-02T03:04:05`, no offset.
    Naive,
}

impl TimeText {
    /// The spec's name of this format (`cursor_format`, `request_format`).
    fn spec(self) -> &'static str {
        match self {
            TimeText::Rfc3339 => "rfc3339",
            TimeText::Epoch => "epoch",
            TimeText::EpochMs => "epoch_ms",
            TimeText::Date => "%Y-%m-%d",
            TimeText::SpaceNaive => "%Y-%m-%d %H:%M:%S",
            TimeText::Naive => "%Y-%m-%dT%H:%M:%S",
        }
    }

    /// For comments.
    fn describe(self) -> &'static str {
        match self {
            TimeText::Rfc3339 => "RFC 3339",
            TimeText::Epoch => "epoch seconds",
            TimeText::EpochMs => "epoch milliseconds",
            TimeText::Date => "a date",
            TimeText::SpaceNaive | TimeText::Naive => "a date and time without an offset",
        }
    }
}

/// How `value` writes a time, and that time in epoch seconds.
pub fn classify(value: &Value) -> Option<(TimeText, i64)> {
    let digits = |s: &str| -> Option<(TimeText, i64)> {
        let n: i64 = s.parse().ok()?;
        match s.len() {
            10 => Some((TimeText::Epoch, n)),
            13 => Some((TimeText::EpochMs, n.div_euclid(1000))),
            _ => None,
        }
    };
    match value {
        Value::Number(n) => digits(&n.as_i64()?.to_string()),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                return digits(s);
            }
            let secs = connector_spec::datetime::parse_datetime(s)?.timestamp();
            let b = s.as_bytes();
            let offset = s.ends_with('Z')
                || s.ends_with('z')
                || s.get(19..).is_some_and(|t| t.contains(['+', '-']));
            let kind = if s.len() == 10 {
                TimeText::Date
            } else if offset && b.get(10) == Some(&b'T') {
                TimeText::Rfc3339
            } else if s.len() == 19 && b[10] == b' ' {
                TimeText::SpaceNaive
            } else if s.len() == 19 && b[10] == b'T' {
                TimeText::Naive
            } else if offset {
                // A space for the `T`, or a `+0000` offset: read as written
                // by the default parser, sent as RFC 3339.
                TimeText::Rfc3339
            } else {
                return None;
            };
            Some((kind, secs))
        }
        _ => None,
    }
}

/// `1704067200` → `2024-01-01T00:00:00Z`.
fn rfc3339(secs: i64) -> Option<String> {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?);
    Some(humantime::format_rfc3339_seconds(t).to_string())
}

/// A bound found in the URL's query.
#[derive(Debug, Clone)]
struct Bound {
    param: String,
    /// The value probed with (rendered).
    value: String,
    text: TimeText,
    secs: i64,
}

fn bound(names: &[&str], query: &[(String, String)]) -> Option<Bound> {
    names.iter().find_map(|n| {
        let (k, v) = query.iter().find(|(k, _)| k == n)?;
        let (text, secs) = classify(&Value::String(v.clone()))?;
        Some(Bound {
            param: k.clone(),
            value: v.clone(),
            text,
            secs,
        })
    })
}

/// The `incremental:` block init proposes.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub cursor_field: String,
    /// `date` for records that hold dates; else the default, `datetime`.
    pub cursor_type: Option<&'static str>,
    /// The query parameter that receives the bound; removed from `params`.
    pub param: String,
    /// The `start_value` template.
    pub start_value: String,
    pub cursor_format: Option<&'static str>,
    pub request_format: Option<&'static str>,
    /// The config parameter `start_value` reads, to declare.
    pub config: Option<ConfigEntry>,
    /// A commented `windows:` suggestion: the end parameter of the range.
    pub windows_end_param: Option<String>,
}

/// What the URL and the records suggest: `None` when the URL has no time
/// bound (nothing is said then); else the proposal, or why there is none.
///
/// `query` is the URL's query as probed (rendered), `raw` as written (with
/// templates), `taken` the config keys already declared and `managed` the
/// parameters the chosen pagination sets.
pub fn find(
    query: &[(String, String)],
    raw: &[(String, String)],
    records: &[Value],
    taken: &[&str],
    managed: &[&str],
) -> Option<Choice<Option<Proposal>>> {
    let query: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| !managed.contains(&k.as_str()))
        .cloned()
        .collect();
    let lower = bound(LOWER_PARAMS, &query)?;
    let upper = bound(UPPER_PARAMS, &query).filter(|u| u.param != lower.param);
    let shown = format!("`{}={}`", lower.param, lower.value);
    let field = CURSOR_FIELDS.iter().find_map(|f| {
        let mut kinds = records.iter().map(|r| r.get(*f).and_then(classify));
        let first = kinds.next()??.0;
        kinds
            .all(|k| k.is_some_and(|k| same_family(k.0, first)))
            .then_some((f.to_string(), first))
    });
    let Some((field, kind)) = field else {
        let mut c = Choice::new(
            None,
            format!(
                "none — the URL filters on {shown}, a lower bound of time, but no field like `updated_at` holds a time in every record of the first page; to sync only what changed, add `incremental: {{ cursor_field: <field>, param: {} }}` by hand",
                lower.param
            ),
        );
        c.ambiguous = true;
        return Some(c);
    };
    let others: Vec<String> = CURSOR_FIELDS
        .iter()
        .filter(|f| **f != field)
        .filter(|f| {
            !records.is_empty()
                && records
                    .iter()
                    .all(|r| r.get(**f).and_then(classify).is_some())
        })
        .map(|f| format!("`{f}`"))
        .collect();

    let date = kind == TimeText::Date;
    let cursor_format = match kind {
        TimeText::Epoch | TimeText::EpochMs => Some(kind.spec()),
        _ => None,
    };
    // What a bound is sent as unless `request_format` says otherwise: the
    // records' format (a date cursor as it is), else RFC 3339.
    let default_request = match (date, cursor_format) {
        (true, _) => TimeText::Date,
        (false, Some(_)) => kind,
        (false, None) => TimeText::Rfc3339,
    };
    let request_format = (lower.text != default_request).then(|| lower.text.spec());

    // The first run's bound: the URL's own, as a config default.
    let start_text = match lower.text {
        TimeText::Rfc3339 => lower.value.clone(),
        _ => rfc3339(lower.secs)?,
    };
    let start_text = if date {
        start_text.get(..10)?.to_string()
    } else {
        start_text
    };
    let raw_value = raw
        .iter()
        .find(|(k, _)| *k == lower.param)
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let (start_value, config) = if raw_value.contains("{{") && lower.text == TimeText::Rfc3339 {
        (raw_value.to_string(), None)
    } else {
        let key = unique("start_date", taken);
        let entry = ConfigEntry {
            key: key.clone(),
            kind: "string",
            default: Some(Value::String(start_text.clone())),
            secret: false,
            description: format!(
                "Lower bound of the first incremental run ({}), sent as `{}`; later runs send the largest `{field}` of the last one.",
                if date { "a date" } else { "RFC 3339" },
                lower.param
            ),
        };
        (format!("{{{{ config.{key} }}}}"), Some(entry))
    };

    let as_sent = match request_format {
        Some(f) => format!(
            ", written as {} (`request_format: {f}`)",
            lower.text.describe()
        ),
        None => String::new(),
    };
    let mut why = format!(
        "`{field}` — the URL filters on {shown} ({}{}) and every record of the first page has `{field}` ({}{}); each run sends the largest `{field}` of the last run as `{}`{as_sent}, and the first run sends `{}`",
        lower.text.describe(),
        if lower.text == TimeText::Rfc3339 {
            String::new()
        } else {
            format!(", {}", rfc3339(lower.secs).unwrap_or_default())
        },
        kind.describe(),
        match cursor_format {
            Some(f) => format!(", `cursor_format: {f}`"),
            None => String::new(),
        },
        lower.param,
        config
            .as_ref()
            .map_or(start_value.clone(), |c| format!("config.{}", c.key)),
    );
    if others.is_empty() {
        why.push('.');
    } else {
        why.push_str(&format!(". Other time fields: {}", others.join(", ")));
    }
    let proposal = Proposal {
        cursor_field: field,
        cursor_type: date.then_some("date"),
        param: lower.param,
        start_value,
        cursor_format,
        request_format,
        config,
        windows_end_param: upper.map(|u| u.param),
    };
    Some(Choice::new(Some(proposal), why))
}

/// Record values of one field agree on how they write time: epoch seconds
/// and milliseconds do not mix, the text forms all read the same way.
fn same_family(a: TimeText, b: TimeText) -> bool {
    let family = |t| match t {
        TimeText::Epoch => 0,
        TimeText::EpochMs => 1,
        TimeText::Date => 2,
        _ => 3,
    };
    family(a) == family(b)
}

fn unique(key: &str, taken: &[&str]) -> String {
    if !taken.contains(&key) {
        return key.to_string();
    }
    (2..)
        .map(|i| format!("{key}_{i}"))
        .find(|k| !taken.contains(&k.as_str()))
        .unwrap_or_else(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_classified_by_how_they_are_written() {
        let c = |v: Value| classify(&v).map(|(k, _)| k);
        assert_eq!(c(json!("1704067200")), Some(TimeText::Epoch));
        assert_eq!(c(json!(1704067200)), Some(TimeText::Epoch));
        assert_eq!(c(json!("1704067200123")), Some(TimeText::EpochMs));
        assert_eq!(c(json!("2024-01-01T00:00:00Z")), Some(TimeText::Rfc3339));
        assert_eq!(
            c(json!("2024-01-01T00:00:00.5+02:00")),
            Some(TimeText::Rfc3339)
        );
        assert_eq!(c(json!("2024-01-01")), Some(TimeText::Date));
        assert_eq!(c(json!("2024-01-01 10:00:00")), Some(TimeText::SpaceNaive));
        assert_eq!(c(json!("2024-01-01T10:00:00")), Some(TimeText::Naive));
        // Ids, page numbers and offsets are not times.
        assert_eq!(c(json!("12345")), None);
        assert_eq!(c(json!(0)), None);
        assert_eq!(c(json!("soon")), None);
        assert_eq!(classify(&json!("1704067200123")).unwrap().1, 1_704_067_200);
        assert_eq!(rfc3339(1_704_067_200).unwrap(), "2024-01-01T00:00:00Z");
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn epoch_seconds_in_the_url_and_rfc3339_in_the_records() {
        let query = q(&[("start_time", "1704067200"), ("per_page", "100")]);
        let records = vec![json!({"id": 1, "updated_at": "2024-01-01T00:05:00Z"})];
        let c = find(&query, &query, &records, &["base_url"], &[]).unwrap();
        let p = c.value.unwrap();
        assert_eq!(p.cursor_field, "updated_at");
        assert_eq!(p.param, "start_time");
        assert_eq!(p.request_format, Some("epoch"));
        assert_eq!(p.cursor_format, None);
        assert_eq!(p.start_value, "{{ config.start_date }}");
        assert_eq!(
            p.config.unwrap().default,
            Some(json!("2024-01-01T00:00:00Z"))
        );
        assert_eq!(p.windows_end_param, None);
    }

    #[test]
    fn epoch_ms_records_and_an_rfc3339_range() {
        let query = q(&[
            ("updated_since", "2024-01-01T00:00:00Z"),
            ("updated_before", "2024-02-01T00:00:00Z"),
        ]);
        let records = vec![json!({"id": 1, "updated": 1704067200123_i64})];
        let p = find(&query, &query, &records, &["start_date"], &[])
            .unwrap()
            .value
            .unwrap();
        assert_eq!(p.cursor_field, "updated");
        assert_eq!(p.cursor_format, Some("epoch_ms"));
        // Records in epoch_ms, bounds sent as the URL wrote them.
        assert_eq!(p.request_format, Some("rfc3339"));
        assert_eq!(p.start_value, "{{ config.start_date_2 }}");
        assert_eq!(p.windows_end_param.as_deref(), Some("updated_before"));
    }

    #[test]
    fn no_time_bound_no_proposal() {
        let records = vec![json!({"id": 1, "updated_at": "2024-01-01T00:05:00Z"})];
        assert!(find(&q(&[("since", "1234")]), &[], &records, &[], &[]).is_none());
        assert!(find(&q(&[("from", "0")]), &[], &records, &[], &[]).is_none());
        // A bound the paginator sets is not a filter.
        let after = q(&[("after", "1704067200")]);
        assert!(find(&after, &after, &records, &[], &["after"]).is_none());
        // A bound but no time field: said, not proposed.
        let c = find(
            &q(&[("since", "2024-01-01")]),
            &[],
            &[json!({"id": 1})],
            &[],
            &[],
        )
        .unwrap();
        assert!(c.value.is_none() && c.ambiguous);
    }
}
