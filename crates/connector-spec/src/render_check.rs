//! `validate` renders every template once, with placeholder values of the
//! right types, so that what would fail at run time fails now: an unknown
//! filter, function or test, a method call (minijinja values have none), and
//! for templates that read only `config`, any failure at all (`{{ 1/0 }}`,
//! a string too long to build). Config values are their defaults where
//! declared, else a placeholder of their type. `parent`, `record`, `state`
//! and `page` are placeholders that accept any field, since their shape is
//! known only at run time.

use crate::{ConfigType, Spec};
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use std::sync::Arc;

/// Fuel for one check render, as in the engine.
const FUEL: u64 = 50_000;

/// Filters minijinja knows, for did-you-mean hints.
pub(crate) const FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "default",
    "dictsort",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
    "zip",
    "format_datetime",
    "str_to_datetime",
    "timestamp",
    "base64encode",
    "base64decode",
    "regex_search",
];

/// Functions templates know, for did-you-mean hints.
pub(crate) const FUNCTIONS: &[&str] = &[
    "range",
    "dict",
    "namespace",
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
    "max",
    "min",
];

/// A value of unknown shape: any field is another one, and it renders as
/// `1`. Method calls fail, as they would on any real value.
#[derive(Debug)]
struct Anything;

impl Object for Anything {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(Value::from_object(Anything))
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("1")
    }
    fn call(
        self: &Arc<Self>,
        _state: &mut minijinja::State<'_, '_>,
        _args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        // Reached through method syntax (`x.split(",")`): a field is never callable.
        Err(minijinja::Error::new(
            ErrorKind::UnknownMethod,
            "values have no methods",
        ))
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut minijinja::State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        Err(minijinja::Error::new(
            ErrorKind::UnknownMethod,
            format!("no value has a method named {method}"),
        ))
    }
}

/// The environment templates are checked in: the engine's settings and
/// functions, with a fixed clock.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    crate::template_functions::register(&mut env, crate::template_functions::placeholder_now);
    env
}

/// The placeholder `config`: defaults where declared, else a value of the
/// parameter's type.
pub(crate) fn config_values(spec: &Spec) -> serde_json::Map<String, serde_json::Value> {
    spec.config
        .iter()
        .map(|(k, p)| {
            let v = p.default.clone().unwrap_or_else(|| match p.kind {
                ConfigType::String => serde_json::Value::String(format!("{k}-value")),
                ConfigType::Integer => 1.into(),
                ConfigType::Number => 1.5.into(),
                ConfigType::Boolean => true.into(),
                ConfigType::Array => serde_json::json!([format!("{k}-item")]),
            });
            (k.clone(), v)
        })
        .collect()
}

/// True when every config key the template reads has a real value (a
/// default), so its rendering is what the run will see.
pub(crate) fn reads_only_defaults(spec: &Spec, vars: &std::collections::HashSet<String>) -> bool {
    let fits = |p: &crate::ConfigParam, v: &serde_json::Value| match p.kind {
        ConfigType::String => v.is_string(),
        ConfigType::Integer => v.is_i64() || v.is_u64(),
        ConfigType::Number => v.is_number(),
        ConfigType::Boolean => v.is_boolean(),
        ConfigType::Array => v.is_array(),
    };
    vars.iter().all(|v| {
        let (top, rest) = v.split_once('.').unwrap_or((v.as_str(), ""));
        top == "config"
            && spec
                .config
                .get(rest.split('.').next().unwrap_or(rest))
                // A default of the wrong type is reported on its own.
                .is_none_or(|p| p.default.as_ref().is_some_and(|d| fits(p, d)))
    })
}

/// What rendering a template with placeholders found.
pub(crate) enum Rendered {
    /// The text, and whether it is what a run will render (config defaults only).
    Text(String, bool),
    /// A failure a run would hit whatever the data.
    Fails(String, Option<String>),
    /// A failure that depends on the placeholders; the run may not hit it.
    Unknown,
}

/// Renders `source` once in `env` with placeholders.
pub(crate) fn render(
    env: &Environment<'static>,
    spec: &Spec,
    source: &str,
    config_only: bool,
    exact: bool,
) -> Rendered {
    let ctx = minijinja::context! {
        config => Value::from(minijinja::value::Serde(&config_values(spec))),
        parent => Value::from_object(Anything),
        record => Value::from_object(Anything),
        state => Value::from_object(Anything),
        page => Value::from_object(Anything),
        partition => Value::from_object(Anything),
        window => Value::from_object(Anything),
        response => Value::from_object(Anything),
        headers => Value::from_object(Anything),
        status => Value::from(200),
    };
    match env.render_str(source, ctx) {
        Ok(text) => Rendered::Text(text, config_only && exact),
        Err(e) => {
            let detail = e.detail().unwrap_or("").to_string();
            let always = matches!(
                e.kind(),
                ErrorKind::UnknownFilter
                    | ErrorKind::UnknownFunction
                    | ErrorKind::UnknownTest
                    | ErrorKind::UnknownMethod
            );
            if always || config_only {
                Rendered::Fails(describe(&e, &detail), hint(&e, &detail))
            } else {
                Rendered::Unknown
            }
        }
    }
}

fn describe(e: &minijinja::Error, detail: &str) -> String {
    match e.kind() {
        ErrorKind::OutOfFuel => "it does too much work (out of fuel: a huge string or loop)".into(),
        _ if detail.is_empty() => e.kind().to_string(),
        _ => detail.to_string(),
    }
}

fn hint(e: &minijinja::Error, detail: &str) -> Option<String> {
    // minijinja names the unknown thing in its detail: `filter x is unknown`.
    let word = |prefix: &str| {
        detail
            .strip_prefix(prefix)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    };
    match e.kind() {
        ErrorKind::UnknownFilter => {
            let name = word("filter ")?;
            Some(match crate::did_you_mean(&name, FILTERS.iter().copied()) {
                Some(s) => format!("did you mean the filter `{s}`?"),
                None => format!("filters: {}", FILTERS.join(", ")),
            })
        }
        ErrorKind::UnknownFunction => {
            let name = detail.split_whitespace().next()?.to_string();
            Some(match crate::did_you_mean(&name, FUNCTIONS.iter().copied()) {
                Some(s) => format!("did you mean `{s}()`?"),
                None => format!("functions: {}", FUNCTIONS.join(", ")),
            })
        }
        ErrorKind::UnknownMethod => Some(
            "values have no methods in templates; use a filter instead, e.g. `x | split(\",\")` or `x | upper`"
                .into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        crate::parse(
            "version: 1\nname: t\nconfig:\n  s: {}\n  n: { type: integer, default: 5 }\nbase_url: https://x\nstreams:\n  a: { path: /a }\n",
            "t.yaml",
        )
        .unwrap()
    }

    fn check(src: &str, config_only: bool) -> Result<String, String> {
        match render(&environment(), &spec(), src, config_only, true) {
            Rendered::Text(t, _) => Ok(t),
            Rendered::Fails(m, h) => Err(format!("{m} | {}", h.unwrap_or_default())),
            Rendered::Unknown => Ok("?".into()),
        }
    }

    #[test]
    fn unknown_names_fail_whatever_the_data() {
        let e = check("{{ parent.x | nosuchfilter }}", false).unwrap_err();
        assert!(e.contains("nosuchfilter"), "{e}");
        let e = check("{{ config.s | uper }}", false).unwrap_err();
        assert!(e.contains("`upper`"), "{e}");
        assert!(check("{{ base64_encode(config.s) }}", false).is_err());
        assert!(check("{{ base64encode(config.s) }}", false).is_ok());
        assert!(check("{{ parent.name.split(',') }}", false).is_err());
        assert!(check("{{ record.a.b.c }}", false).is_ok());
        assert!(
            check("{{ parent.id | int }}", false).is_ok(),
            "data-dependent: not judged"
        );
    }

    #[test]
    fn config_only_templates_render_for_real() {
        assert!(check("{{ 1/0 }}", true).is_err());
        assert!(
            check("{{ \"x\" * 1000000000 }}", true)
                .unwrap_err()
                .contains("fuel")
        );
        assert!(check("{{ 10**10**10 }}", true).is_err());
        assert_eq!(check("{{ config.n * 2 }}", true).unwrap(), "10");
    }
}
