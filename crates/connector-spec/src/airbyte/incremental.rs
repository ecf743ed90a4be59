//! `DatetimeBasedCursor` and `IncrementingCountCursor` → our `incremental`.
//!
//! `cursor_field` is the cursor; `datetime_format` is how bounds are sent
//! (`request_format`: `%s` → `epoch`, `%ms` → `epoch_ms`, Python's `%f`
//! microseconds → chrono's `%6f`); `cursor_datetime_formats` (else
//! `datetime_format`) is how records write it (`cursor_format`; ISO-like
//! formats read as RFC 3339, which parses them all). `start_datetime` →
//! `start_value` (its `min_datetime` → `min`), `end_datetime` →
//! `windows.end`, `step` + `cursor_granularity` → `windows`,
//! `lookback_window` → `lookback`, `is_client_side_incremental` →
//! `client_filter`. The slice's `start_time`/`end_time` (or the
//! `partition_field_start`/`_end` names) read as `{{ window.start }}` and
//! `{{ window.end }}`; without `step` there is one range, from the lower
//! bound `{{ state.cursor }}` to the end. Our date windows do not combine
//! with parent partitions: such a stream reads one range per partition.

use super::Cx;
use super::interpolation::{self, Scope, Vars};
use super::jinja;
use super::notes::{Block, Res};
use super::refs::{NodeExt, parameters_of};
use super::requester::{Inject, request_option};
use crate::node::{Node, Value};
use serde_json::{Value as J, json};

/// What an incremental component gives its stream.
#[derive(Debug, Default)]
pub(crate) struct Incr {
    pub json: J,
    /// `stream_slice.<key>` → our expression.
    pub slice: Vec<(String, String)>,
    /// Request options for the bounds.
    pub inject: Vec<(Inject, String)>,
    pub cursor_field: String,
}

/// Seconds of an ISO 8601 duration, and whether months or years made it
/// approximate.
pub(crate) fn iso_seconds(text: &str) -> Option<(f64, bool)> {
    let t = text.trim();
    let rest = t.strip_prefix('P')?;
    let mut secs = 0.0;
    let mut num = String::new();
    let mut in_time = false;
    let mut approx = false;
    for c in rest.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' | '.' | ',' => num.push(if c == ',' { '.' } else { c }),
            unit => {
                let n: f64 = num.parse().ok()?;
                num.clear();
                secs += n * match (unit, in_time) {
                    ('Y', false) => {
                        approx = true;
                        365.0 * 86_400.0
                    }
                    ('M', false) => {
                        approx = true;
                        30.0 * 86_400.0
                    }
                    ('W', false) => 7.0 * 86_400.0,
                    ('D', false) => 86_400.0,
                    ('H', true) => 3_600.0,
                    ('M', true) => 60.0,
                    ('S', true) => 1.0,
                    _ => return None,
                };
            }
        }
    }
    if !num.is_empty() {
        return None;
    }
    Some((secs, approx))
}

/// Seconds as one of our durations: `1d`, `6h`, `30m`, `1s`, `1ms`, `1us`.
pub(crate) fn human(secs: f64) -> String {
    let whole = secs.round() as u64;
    if (secs - whole as f64).abs() < 1e-9 && whole > 0 {
        for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if whole.is_multiple_of(n) {
                return format!("{}{unit}", whole / n);
            }
        }
        return format!("{whole}s");
    }
    let ms = secs * 1000.0;
    if (ms - ms.round()).abs() < 1e-6 && ms >= 1.0 {
        return format!("{}ms", ms.round() as u64);
    }
    format!("{}us", (secs * 1e6).round().max(1.0) as u64)
}

/// A duration field: ISO 8601, or a template whose config default is one.
fn duration(cx: &mut Cx, node: &Node, key: &str) -> Res<Option<String>> {
    let Some(n) = node.get(key) else {
        return Ok(None);
    };
    let Some(text) = n.scalar_text() else {
        return Ok(None);
    };
    let text = if text.contains("{{") {
        let mut v = Vars::new(Scope::Connection, n.pos);
        v.params = parameters_of(node);
        let t = cx.tpl(&text, &v)?;
        if t.contains("{{") || t.contains("{%") {
            // A config value: what its default makes of it.
            match cx
                .config
                .render_with_defaults(&t)
                .filter(|d| iso_seconds(d).is_some())
            {
                Some(d) => {
                    cx.approx(n.pos, format!("`{key}` is `{d}`, from the config's defaults: our durations are not templates"));
                    d
                }
                None => {
                    cx.approx(n.pos, format!("`{key}` `{text}` is a template; dropped"));
                    return Ok(None);
                }
            }
        } else {
            t
        }
    } else {
        text
    };
    let (secs, approx) = iso_seconds(&text).ok_or_else(|| {
        Block::new(
            n.pos,
            "incremental: a duration that is not ISO 8601",
            format!("`{key}: {text}`"),
        )
    })?;
    if approx {
        cx.approx(
            n.pos,
            format!("`{key}: {text}` counts months as 30 days and years as 365"),
        );
    }
    if secs <= 0.0 {
        return Ok(None);
    }
    Ok(Some(human(secs)))
}

/// Whether a Python datetime format is one RFC 3339 reading parses.
fn iso_like(f: &str) -> bool {
    let Some(rest) = f.strip_prefix("%Y-%m-%d") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(rest) = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' ')) else {
        return false;
    };
    let Some(rest) = rest
        .strip_prefix("%H:%M:%S")
        .or_else(|| rest.strip_prefix("%H:%M"))
    else {
        return false;
    };
    let rest = rest.strip_prefix(".%f").unwrap_or(rest);
    matches!(rest, "" | "Z" | "%z" | "%:z" | "+00:00" | "+0000")
}

/// `cursor_format` for a Python format; `None`: RFC 3339 (the default).
fn cursor_format(f: &str) -> Res<Option<String>> {
    Ok(match f {
        "%s" => Some("epoch".into()),
        "%ms" => Some("epoch_ms".into()),
        "%epoch_microseconds" => Some("epoch_us".into()),
        f if iso_like(f) => None,
        f => Some(f.replace(".%f", "%.f")),
    })
}

/// `request_format` for a Python format.
fn request_format(f: &str) -> String {
    match f {
        "%s" => "epoch".into(),
        "%ms" => "epoch_ms".into(),
        "%epoch_microseconds" => "epoch_us".into(),
        f => interpolation::strftime(f),
    }
}

/// An expression formatting the datetime expression `e` as `fmt` does.
fn formatted(e: &str, fmt: &str) -> String {
    match fmt {
        "epoch" => format!("timestamp({e})"),
        "epoch_ms" => format!("timestamp({e}) * 1000"),
        "epoch_us" => format!("timestamp({e}) * 1000000"),
        f => format!("format_datetime({e}, {})", jinja::quote_str(f)),
    }
}

/// A datetime field (`MinMaxDatetime` or a string): the rewritten
/// template, and its min and max.
struct Bound {
    template: String,
    format: Option<String>,
    min: Option<String>,
    max: bool,
    pos: crate::Pos,
}

fn bound(cx: &mut Cx, node: &Node, key: &str) -> Res<Option<Bound>> {
    let Some(n) = node.get(key) else {
        return Ok(None);
    };
    let (dt, holder) = match &n.value {
        Value::Str(s) => (s.clone(), node),
        Value::Map(_) => (
            n.get("datetime")
                .and_then(|d| d.scalar_text())
                .unwrap_or_default(),
            n,
        ),
        _ => return Ok(None),
    };
    let mut v = Vars::new(Scope::Connection, n.pos);
    v.params = parameters_of(holder);
    let template = cx.tpl(&dt, &v)?;
    let min = match n.get("min_datetime").and_then(|m| m.scalar_text()) {
        Some(m) => Some(cx.tpl(&m, &v)?),
        None => None,
    };
    Ok(Some(Bound {
        template,
        format: n
            .str_at("datetime_format")
            .filter(|f| !f.is_empty())
            .map(str::to_string),
        min,
        max: n.get("max_datetime").is_some(),
        pos: n.pos,
    }))
}

/// The single expression of a template, or the template as a string.
fn as_expr(t: &str) -> String {
    match t
        .trim()
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
    {
        Some(inner) if !inner.contains("{{") && !inner.contains("}}") => {
            format!("({})", inner.trim())
        }
        _ => jinja::quote_str(t),
    }
}

/// The incremental block of a stream; `partitioned`: it has a parent or a
/// list partition (no date windows then).
pub(crate) fn incremental(cx: &mut Cx, node: &Node, partitioned: bool) -> Res<Incr> {
    let ty = node.type_name().unwrap_or("");
    let params = parameters_of(node);
    let vars = {
        let mut v = Vars::new(Scope::Connection, node.pos);
        v.params = params.clone();
        v
    };
    let cursor_field = {
        let n = node.get("cursor_field").ok_or_else(|| {
            Block::new(
                node.pos,
                "incremental without cursor_field",
                "no `cursor_field`",
            )
        })?;
        let t = cx.tpl(
            &n.scalar_text().unwrap_or_default(),
            &Vars {
                pos: n.pos,
                ..vars.clone()
            },
        )?;
        if t.contains("{{") {
            return Err(Block::new(
                n.pos,
                "incremental: templated cursor_field",
                format!("cursor_field `{t}` is a template"),
            ));
        }
        t
    };
    let mut out = Incr {
        cursor_field: cursor_field.clone(),
        ..Incr::default()
    };
    let mut inc = serde_json::Map::new();
    inc.insert("cursor_field".into(), json!(cursor_field));
    match ty {
        "IncrementingCountCursor" => {
            inc.insert("cursor_type".into(), json!("integer"));
            if let Some(s) = node.get("start_value").and_then(|n| n.scalar_text()) {
                inc.insert("start_value".into(), json!(cx.tpl(&s, &vars)?));
            }
            if let Some(o) = node.get("start_value_option") {
                match request_option(cx, o, &vars)? {
                    Inject::Param(p) => {
                        inc.insert("param".into(), json!(p));
                    }
                    other => out.inject.push((other, "{{ state.cursor }}".into())),
                }
            }
            inc.insert("client_filter".into(), json!(false));
            out.json = J::Object(inc);
            return Ok(out);
        }
        "DatetimeBasedCursor" => {}
        t => {
            return Err(Block::unsupported(node, t, "incremental:", "the cursor"));
        }
    }
    let dt_format = node
        .str_at("datetime_format")
        .unwrap_or("%Y-%m-%dT%H:%M:%S.%f%z")
        .to_string();
    if dt_format == "%s_as_float" {
        return Err(Block::new(
            node.pos,
            format!("incremental: datetime format {dt_format}"),
            format!("the datetime format `{dt_format}`"),
        ));
    }
    let formats: Vec<String> = node
        .get("cursor_datetime_formats")
        .map(|f| f.items().iter().filter_map(|n| n.scalar_text()).collect())
        .unwrap_or_default();
    let read = formats
        .first()
        .cloned()
        .unwrap_or_else(|| dt_format.clone());
    if let Some(cf) = cursor_format(&read)? {
        inc.insert("cursor_format".into(), json!(cf));
    }
    if formats.len() > 1 && !formats.iter().all(|f| iso_like(f)) {
        cx.approx(
            node.get("cursor_datetime_formats")
                .map(|n| n.pos)
                .unwrap_or(node.pos),
            format!(
                "records' cursors are read as `{read}` only, not also as {}",
                formats[1..]
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let rf = request_format(&dt_format);
    inc.insert("request_format".into(), json!(rf));
    let start = bound(cx, node, "start_datetime")?.ok_or_else(|| {
        Block::new(
            node.pos,
            "incremental without start_datetime",
            "no `start_datetime`",
        )
    })?;
    let mut start_value = start.template.clone();
    let epoch =
        start.format.as_deref() == Some("%s") || (start.format.is_none() && dt_format == "%s");
    if epoch && start_value.contains("{{") {
        start_value = format!("{{{{ {} | str_to_datetime }}}}", as_expr(&start_value));
    } else if epoch
        && let Some(t) = start_value
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|n| chrono::DateTime::from_timestamp(n, 0))
    {
        start_value = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    inc.insert("start_value".into(), json!(start_value));
    if let Some(m) = start.min {
        inc.insert("min".into(), json!(m));
    }
    if start.max {
        cx.approx(start.pos, "the start's `max_datetime` is not applied");
    }
    let end = bound(cx, node, "end_datetime")?;
    let end_template = end.as_ref().map(|b| b.template.clone()).filter(|t| {
        let t = t.replace(' ', "");
        !(t == "{{now_utc()}}" || t.starts_with("{{now_utc()|format_datetime("))
    });
    if let Some(b) = &end
        && (b.max || b.min.is_some())
    {
        cx.approx(
            b.pos,
            "the end's `min_datetime`/`max_datetime` are not applied",
        );
    }
    if let Some(l) = duration(cx, node, "lookback_window")? {
        inc.insert("lookback".into(), json!(l));
    }
    let step = duration(cx, node, "step")?;
    let granularity = duration(cx, node, "cursor_granularity")?;
    let windows = step.is_some() && !partitioned;
    if step.is_some() && partitioned {
        cx.approx(
            node.get("step").map(|n| n.pos).unwrap_or(node.pos),
            "one range per partition instead of `step` windows: our date windows do not combine with parent or list partitions",
        );
    }
    let start_name = node
        .str_at("partition_field_start")
        .unwrap_or("start_time")
        .to_string();
    let end_name = node
        .str_at("partition_field_end")
        .unwrap_or("end_time")
        .to_string();
    let end_expr = {
        let e = end_template
            .as_deref()
            .map(as_expr)
            .unwrap_or_else(|| "now_utc()".into());
        formatted(&e, &rf)
    };
    if windows {
        let mut w = serde_json::Map::new();
        w.insert("step".into(), json!(step));
        if let Some(g) = granularity {
            let secs = |h: &str| {
                crate::values::parse_duration(h)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0)
            };
            if secs(&g) >= secs(step.as_deref().unwrap_or("")) {
                cx.approx(node.pos, format!("`cursor_granularity` {g} is not shorter than `step`: windows end 1s before the next starts"));
            } else {
                w.insert("granularity".into(), json!(g));
            }
        }
        if let Some(e) = &end_template {
            w.insert("end".into(), json!(e));
        }
        inc.insert("windows".into(), J::Object(w));
        out.slice.push((start_name, "window.start".into()));
        out.slice.push((end_name, "window.end".into()));
    } else {
        out.slice.push((start_name, "state.cursor".into()));
        out.slice.push((end_name, end_expr.clone()));
    }
    if let Some(o) = node.get("start_time_option") {
        match (request_option(cx, o, &vars)?, windows) {
            (Inject::Param(p), false) => {
                inc.insert("param".into(), json!(p));
            }
            (other, w) => out.inject.push((
                other,
                if w {
                    "{{ window.start }}".into()
                } else {
                    "{{ state.cursor }}".into()
                },
            )),
        }
    }
    if let Some(o) = node.get("end_time_option") {
        let i = request_option(cx, o, &vars)?;
        out.inject.push((
            i,
            if windows {
                "{{ window.end }}".into()
            } else {
                format!("{{{{ {end_expr} }}}}")
            },
        ));
    }
    let client = node.bool_at("is_client_side_incremental").unwrap_or(false);
    inc.insert("client_filter".into(), json!(client));
    if node.bool_at("is_data_feed") == Some(true) {
        cx.approx(node.pos, "`is_data_feed`: paging does not stop at the first record older than the cursor; older records are read (and not filtered)");
    }
    if node.get("clamping").is_some() {
        cx.approx(
            node.pos,
            "`clamping` of windows to calendar periods is not applied",
        );
    }
    out.cursor_field = cursor_field;
    out.json = J::Object(inc);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations_become_ours() {
        assert_eq!(
            iso_seconds("P1D").map(|(s, _)| human(s)).as_deref(),
            Some("1d")
        );
        assert_eq!(
            iso_seconds("PT1H").map(|(s, _)| human(s)).as_deref(),
            Some("1h")
        );
        assert_eq!(
            iso_seconds("PT1S").map(|(s, _)| human(s)).as_deref(),
            Some("1s")
        );
        assert_eq!(
            iso_seconds("P1W").map(|(s, _)| human(s)).as_deref(),
            Some("7d")
        );
        assert_eq!(
            iso_seconds("PT0.000001S").map(|(s, _)| human(s)).as_deref(),
            Some("1us")
        );
        assert_eq!(iso_seconds("P1M"), Some((30.0 * 86_400.0, true)));
        assert!(iso_seconds("1d").is_none());
    }

    #[test]
    fn formats() {
        assert!(iso_like("%Y-%m-%dT%H:%M:%S.%f%z"));
        assert!(iso_like("%Y-%m-%dT%H:%M:%SZ"));
        assert!(iso_like("%Y-%m-%d"));
        assert!(!iso_like("%Y/%m/%d"));
        assert_eq!(cursor_format("%s").unwrap().as_deref(), Some("epoch"));
        assert_eq!(cursor_format("%Y-%m-%d %H:%M:%S.%f").unwrap(), None);
        assert_eq!(
            cursor_format("%d/%m/%Y").unwrap().as_deref(),
            Some("%d/%m/%Y")
        );
        assert_eq!(
            request_format("%Y-%m-%dT%H:%M:%S.%fZ"),
            "%Y-%m-%dT%H:%M:%S.%6fZ"
        );
    }
}
