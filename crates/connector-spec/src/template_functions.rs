//! The functions and filters templates may call beyond minijinja's own, the
//! same in `validate` (with a fixed clock, since this crate reads none) and
//! in a run (with the real clock). Datetimes are RFC 3339 strings in UTC.
//!
//! | name | as | what |
//! |---|---|---|
//! | `now_utc()` | function | the current instant, e.g. `2024-05-01T12:30:00Z` |
//! | `today_utc()` | function | today's date, `2024-05-01` |
//! | `day_delta(n)` | function | now plus `n` days (negative: before), RFC 3339 |
//! | `duration("P1D")` | function | an ISO 8601 duration or `30s`/`5m`/`7d`, in seconds |
//! | `format_datetime(value, format)` | function, filter | a datetime (RFC 3339, a date, epoch seconds) formatted with strftime `format` (`%Y-%m-%d`, `%s` for epoch seconds) |
//! | `str_to_datetime(value)` | function, filter | a datetime in any accepted form, as RFC 3339 UTC |
//! | `timestamp(value)` | function, filter | a datetime as epoch seconds |
//! | `base64encode(value)`, `base64decode(value)` | function, filter | base64 (standard alphabet) |
//! | `regex_search(value, pattern)` | function, filter | the first capture group of `pattern` in `value` (or the whole match), else none |
//! | `max(a, b, …)`, `min(a, b, …)` | function | the largest or smallest argument, or item of one list (ISO datetimes of one format compare as text) |
//!
//! minijinja's own `default` filter gives a value for missing keys:
//! `{{ record.name | default("unknown") }}`. A declared config parameter
//! without a value is `none` (`{{ 'a' if config.token else 'b' }}`); `none`
//! printed into text is empty, and a template that is one expression of
//! `none` sends nothing (a parameter is left out).

use crate::datetime::parse_datetime;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use minijinja::value::Rest;
use minijinja::{Environment, Error, ErrorKind, Value};

/// Where `now` comes from.
pub type Clock = fn() -> DateTime<Utc>;

/// The names registered, functions and filters, for hints and docs.
pub const FUNCTIONS: &[&str] = &[
    "now_utc",
    "today_utc",
    "day_delta",
    "duration",
    "format_datetime",
    "str_to_datetime",
    "timestamp",
    "base64encode",
    "base64decode",
    "regex_search",
];

/// The filters registered.
pub const FILTERS: &[&str] = &[
    "format_datetime",
    "str_to_datetime",
    "timestamp",
    "base64encode",
    "base64decode",
    "regex_search",
];

/// The fixed instant `validate` renders with.
pub fn placeholder_now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_704_067_200, 0).unwrap_or_default() // 2024-01-01T00:00:00Z
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn bad(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// A datetime from a template value: RFC 3339 (any offset), a date, a
/// naive datetime (UTC), or epoch seconds (a number or digits).
fn instant(v: &Value) -> Result<DateTime<Utc>, Error> {
    if let Some(n) = v.as_i64() {
        return DateTime::from_timestamp(n, 0)
            .ok_or_else(|| bad(format!("{n} is not an epoch time")));
    }
    if let Ok(f) = f64::try_from(v.clone()) {
        if v.as_str().is_none() {
            let secs = f.floor() as i64;
            let nanos = ((f - f.floor()) * 1e9) as u32;
            return DateTime::from_timestamp(secs, nanos)
                .ok_or_else(|| bad(format!("{f} is not an epoch time")));
        }
    }
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{v} is not a datetime")))?;
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        let n: i64 = s
            .parse()
            .map_err(|_| bad(format!("`{s}` is not an epoch time")))?;
        return DateTime::from_timestamp(n, 0)
            .ok_or_else(|| bad(format!("`{s}` is not an epoch time")));
    }
    parse_datetime(s).ok_or_else(|| bad(format!("`{s}` is not a datetime")))
}

/// Seconds of `P1DT2H`, `PT30M`, `P1W`, or a human duration (`30s`, `7d`).
fn duration_secs(text: &str) -> Result<i64, Error> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('P') {
        let mut secs: i64 = 0;
        let mut num = String::new();
        let mut in_time = false;
        for c in rest.chars() {
            match c {
                'T' => in_time = true,
                '0'..='9' | '.' => num.push(c),
                unit => {
                    let n: f64 = num
                        .parse()
                        .map_err(|_| bad(format!("`{t}` is not an ISO 8601 duration")))?;
                    num.clear();
                    let mult = match (unit, in_time) {
                        ('Y', false) => 365 * 86_400,
                        ('M', false) => 30 * 86_400,
                        ('W', false) => 7 * 86_400,
                        ('D', false) => 86_400,
                        ('H', true) => 3_600,
                        ('M', true) => 60,
                        ('S', true) => 1,
                        _ => return Err(bad(format!("`{t}` is not an ISO 8601 duration"))),
                    };
                    secs += (n * mult as f64) as i64;
                }
            }
        }
        if !num.is_empty() {
            return Err(bad(format!("`{t}` is not an ISO 8601 duration")));
        }
        return Ok(secs);
    }
    crate::values::parse_duration(t)
        .map(|d| d.as_secs() as i64)
        .map_err(bad)
}

/// Registers every function and filter, with `now` from `clock`; `none`
/// printed into text (an optional config parameter without a value) is
/// empty, not the word `none`.
pub fn register(env: &mut Environment<'static>, clock: Clock) {
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env.add_function("now_utc", move || rfc3339(clock()));
    env.add_function("today_utc", move || clock().format("%Y-%m-%d").to_string());
    env.add_function("day_delta", move |days: i64| -> Result<String, Error> {
        let delta =
            TimeDelta::try_days(days).ok_or_else(|| bad(format!("{days} days is out of range")))?;
        clock()
            .checked_add_signed(delta)
            .map(rfc3339)
            .ok_or_else(|| bad(format!("{days} days is out of range")))
    });
    env.add_function("duration", |text: String| duration_secs(&text));
    let format_datetime = |v: Value, format: String| -> Result<String, Error> {
        let t = instant(&v)?;
        if format == "%s" {
            return Ok(t.timestamp().to_string());
        }
        let mut out = String::new();
        use std::fmt::Write;
        write!(out, "{}", t.format(&format))
            .map_err(|_| bad(format!("`{format}` is not a strftime format")))?;
        Ok(out)
    };
    env.add_function("format_datetime", format_datetime);
    env.add_filter("format_datetime", format_datetime);
    let to_datetime = |v: Value| instant(&v).map(rfc3339);
    env.add_function("str_to_datetime", to_datetime);
    env.add_filter("str_to_datetime", to_datetime);
    let timestamp = |v: Value| instant(&v).map(|t| t.timestamp());
    env.add_function("timestamp", timestamp);
    env.add_filter("timestamp", timestamp);
    let b64e = |v: String| base64::engine::general_purpose::STANDARD.encode(v);
    env.add_function("base64encode", b64e);
    env.add_filter("base64encode", b64e);
    let b64d = |v: String| -> Result<String, Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .map_err(|e| bad(format!("not base64: {e}")))?;
        String::from_utf8(bytes).map_err(|_| bad("the decoded bytes are not UTF-8".into()))
    };
    env.add_function("base64decode", b64d);
    env.add_filter("base64decode", b64d);
    let regex_search = |v: String, pattern: String| -> Result<Value, Error> {
        let re = regex_lite::Regex::new(&pattern)
            .map_err(|e| bad(format!("`{pattern}` is not a regular expression: {e}")))?;
        Ok(match re.captures(&v) {
            Some(c) => Value::from(
                c.get(1)
                    .or_else(|| c.get(0))
                    .map(|m| m.as_str())
                    .unwrap_or(""),
            ),
            None => Value::from(()),
        })
    };
    env.add_function("regex_search", regex_search);
    env.add_filter("regex_search", regex_search);
    env.add_function("max", |args: Rest<Value>| {
        extreme(args, std::cmp::Ordering::Greater)
    });
    env.add_function("min", |args: Rest<Value>| {
        extreme(args, std::cmp::Ordering::Less)
    });
}

/// `max(a, b, …)` / `min(…)`, or of one list: the largest or smallest value
/// (as Airbyte's macros; ISO dates of one format compare as text).
fn extreme(args: Rest<Value>, want: std::cmp::Ordering) -> Result<Value, Error> {
    let values: Vec<Value> = match args.as_slice() {
        [one] if one.kind() == minijinja::value::ValueKind::Seq => one.try_iter()?.collect(),
        many => many.to_vec(),
    };
    let mut best: Option<Value> = None;
    for v in values {
        best = match best {
            Some(b) if v.partial_cmp(&b) != Some(want) => Some(b),
            _ => Some(v),
        };
    }
    best.ok_or_else(|| bad("max()/min() of nothing".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str) -> String {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        register(&mut env, placeholder_now);
        env.render_str(
            src,
            minijinja::context! { x => "2024-03-05T10:00:00-05:00" },
        )
        .unwrap()
    }

    #[test]
    fn functions_and_filters() {
        assert_eq!(render("{{ now_utc() }}"), "2024-01-01T00:00:00Z");
        assert_eq!(render("{{ today_utc() }}"), "2024-01-01");
        assert_eq!(render("{{ day_delta(-1) }}"), "2023-12-31T00:00:00Z");
        assert_eq!(render("{{ duration('P1DT2H') }}"), "93600");
        assert_eq!(render("{{ duration('30m') }}"), "1800");
        assert_eq!(
            render("{{ x | format_datetime('%Y-%m-%d %H:%M') }}"),
            "2024-03-05 15:00"
        );
        assert_eq!(render("{{ format_datetime(x, '%s') }}"), "1709650800");
        assert_eq!(render("{{ x | timestamp }}"), "1709650800");
        assert_eq!(
            render("{{ 1709650800 | str_to_datetime }}"),
            "2024-03-05T15:00:00Z"
        );
        assert_eq!(render("{{ 'user:pass' | base64encode }}"), "dXNlcjpwYXNz");
        assert_eq!(render("{{ base64decode('dXNlcjpwYXNz') }}"), "user:pass");
        assert_eq!(
            render("{{ 'page=7&x=1' | regex_search('page=(\\\\d+)') }}"),
            "7"
        );
        assert_eq!(render("{{ 'abc' | regex_search('z') is none }}"), "True");
        assert_eq!(
            render("{{ max('2024-01-02', '2024-03-01') }}"),
            "2024-03-01"
        );
        assert_eq!(render("{{ min(3, 1, 2) }}"), "1");
        assert_eq!(render("{{ max([4, 9, 2]) }}"), "9");
    }
}
