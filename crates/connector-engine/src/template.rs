//! Compiled templates. Each template is parsed once, when the plan is built;
//! rendering runs with strict undefined variables and a fuel limit.
//!
//! A template that is exactly one `{{ expression }}` keeps its JSON type, so
//! `post_id: "{{ parent.id }}"` yields the number `1`, not the string `"1"`.

use crate::error::{EngineError, Result};
use minijinja::{Environment, UndefinedBehavior, Value as MjValue};
use serde_json::Value;
use std::sync::Arc;

/// Fuel per render: bounds runaway loops in user templates.
const FUEL: u64 = 50_000;

/// The template environment of one plan.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

/// A handle to a compiled template.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    name: String,
    source: String,
    /// Literal text: no template syntax, rendering returns it as is.
    literal: Option<String>,
    /// Single-expression template rendered through `tojson`.
    native: bool,
}

/// Builds a [`Templates`] environment; templates are added before it is frozen.
pub struct TemplatesBuilder {
    env: Environment<'static>,
    count: usize,
}

impl Default for TemplatesBuilder {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        // `tojson` lets an undefined value through as `null`; single-expression
        // templates must fail like any other on an unknown variable.
        env.add_filter(
            "tojson_defined",
            |v: MjValue| -> Result<String, minijinja::Error> {
                if v.is_undefined() {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::UndefinedError,
                        "undefined value",
                    ));
                }
                serde_json::to_string(&v).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
                })
            },
        );
        connector_spec::template_functions::register(&mut env, now);
        TemplatesBuilder { env, count: 0 }
    }
}

/// The run's clock, for `now_utc()` and friends.
fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from(std::time::SystemTime::now())
}

fn single_expression(src: &str) -> Option<&str> {
    let t = src.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim_matches(|c| c == '-' || c == ' '))
}

impl TemplatesBuilder {
    /// Compiles a string template.
    pub fn add(&mut self, source: &str) -> Result<CompiledTemplate> {
        self.add_inner(source, true)
    }

    /// Compiles a template that always renders to a string.
    pub fn add_text(&mut self, source: &str) -> Result<CompiledTemplate> {
        self.add_inner(source, false)
    }

    fn add_inner(&mut self, source: &str, allow_native: bool) -> Result<CompiledTemplate> {
        if !source.contains("{{") && !source.contains("{%") {
            return Ok(CompiledTemplate {
                name: String::new(),
                source: source.into(),
                literal: Some(source.into()),
                native: false,
            });
        }
        self.count += 1;
        let name = format!("t{}", self.count);
        let (body, native) = match single_expression(source).filter(|_| allow_native) {
            Some(expr) => (format!("{{{{ ({expr}) | tojson_defined }}}}"), true),
            None => (source.to_string(), false),
        };
        self.env
            .add_template_owned(name.clone(), body)
            .map_err(|e| EngineError::Template {
                template: source.into(),
                message: e.detail().unwrap_or("syntax error").to_string(),
            })?;
        Ok(CompiledTemplate {
            name,
            source: source.into(),
            literal: None,
            native,
        })
    }

    /// Compiles a boolean expression, such as a record filter.
    pub fn add_condition(&mut self, expr: &str) -> Result<CompiledTemplate> {
        self.count += 1;
        let name = format!("t{}", self.count);
        let body = format!("{{% if {expr} %}}1{{% endif %}}");
        self.env
            .add_template_owned(name.clone(), body)
            .map_err(|e| EngineError::Template {
                template: expr.into(),
                message: e.detail().unwrap_or("syntax error").to_string(),
            })?;
        Ok(CompiledTemplate {
            name,
            source: expr.into(),
            literal: None,
            native: false,
        })
    }

    pub fn build(self) -> Templates {
        Templates {
            env: Arc::new(self.env),
        }
    }
}

impl CompiledTemplate {
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn is_literal(&self) -> bool {
        self.literal.is_some()
    }
    /// A single `{{ expression }}` rendered through JSON (it keeps its type).
    pub fn is_native(&self) -> bool {
        self.native
    }
}

impl Templates {
    /// Renders to a string.
    pub fn render(&self, t: &CompiledTemplate, ctx: &MjValue) -> Result<String> {
        if let Some(l) = &t.literal {
            return Ok(l.clone());
        }
        let out = self.raw(t, ctx)?;
        if t.native {
            // `tojson` output: strings come back without quotes.
            return Ok(match serde_json::from_str::<Value>(&out) {
                Ok(Value::String(s)) => s,
                Ok(v) => v.to_string(),
                Err(_) => out,
            });
        }
        Ok(out)
    }

    /// Renders to a JSON value: single-expression templates keep their type.
    pub fn render_value(&self, t: &CompiledTemplate, ctx: &MjValue) -> Result<Value> {
        if let Some(l) = &t.literal {
            return Ok(Value::String(l.clone()));
        }
        let out = self.raw(t, ctx)?;
        if t.native {
            return serde_json::from_str(&out).map_err(|e| EngineError::Template {
                template: t.source.clone(),
                message: e.to_string(),
            });
        }
        Ok(Value::String(out))
    }

    /// Evaluates a condition compiled with [`TemplatesBuilder::add_condition`].
    pub fn test(&self, t: &CompiledTemplate, ctx: &MjValue) -> Result<bool> {
        Ok(self.raw(t, ctx)? == "1")
    }

    fn raw(&self, t: &CompiledTemplate, ctx: &MjValue) -> Result<String> {
        let tmpl = self
            .env
            .get_template(&t.name)
            .map_err(|e| EngineError::Template {
                template: t.source.clone(),
                message: e.to_string(),
            })?;
        tmpl.render(ctx).map_err(|e| EngineError::Template {
            template: t.source.clone(),
            message: e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string()),
        })
    }
}

/// Template variables for one render.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub config: MjValue,
    pub parent: Option<MjValue>,
    pub state: Option<MjValue>,
    pub page: Option<MjValue>,
    pub record: Option<MjValue>,
    /// `{{ partition.<as> }}`: a value of a config list.
    pub partition: Option<MjValue>,
    /// `{{ window.start }}`, `{{ window.end }}`.
    pub window: Option<MjValue>,
    /// What the parent record was read for: `{{ parent_partition.parent }}`
    /// (the grandparent record) and `{{ parent_partition.partition }}`.
    pub parent_partition: Option<MjValue>,
}

impl Context {
    pub fn to_value(&self) -> MjValue {
        let mut m: std::collections::BTreeMap<&str, MjValue> = std::collections::BTreeMap::new();
        m.insert("config", self.config.clone());
        for (k, v) in [
            ("parent", &self.parent),
            ("state", &self.state),
            ("page", &self.page),
            ("record", &self.record),
            ("partition", &self.partition),
            ("window", &self.window),
            ("parent_partition", &self.parent_partition),
        ] {
            if let Some(v) = v {
                m.insert(k, v.clone());
            }
        }
        MjValue::from(m)
    }
}

/// Renders one template of a builder that is not frozen yet (used while
/// compiling auth, whose values are rendered once at plan time).
pub fn render_once(b: &TemplatesBuilder, t: &CompiledTemplate, ctx: &Context) -> Result<String> {
    if let Some(l) = &t.literal {
        return Ok(l.clone());
    }
    let tmpl = b
        .env
        .get_template(&t.name)
        .map_err(|e| EngineError::Template {
            template: t.source.clone(),
            message: e.to_string(),
        })?;
    tmpl.render(ctx.to_value())
        .map_err(|e| EngineError::Template {
            template: t.source.clone(),
            message: e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string()),
        })
}

/// Converts any serializable value into a template value.
pub fn to_value<T: serde::Serialize>(v: &T) -> MjValue {
    MjValue::from(minijinja::value::Serde(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_expressions_keep_their_type() {
        let mut b = TemplatesBuilder::default();
        let id = b.add("{{ parent.id }}").unwrap();
        let text = b.add("/posts/{{ parent.id }}/comments").unwrap();
        let lit = b.add("plain").unwrap();
        let t = b.build();
        let ctx = Context {
            parent: Some(to_value(&serde_json::json!({"id": 7}))),
            ..Default::default()
        }
        .to_value();
        assert_eq!(t.render_value(&id, &ctx).unwrap(), serde_json::json!(7));
        assert_eq!(t.render(&text, &ctx).unwrap(), "/posts/7/comments");
        assert_eq!(t.render(&lit, &ctx).unwrap(), "plain");
    }

    #[test]
    fn undefined_variables_are_errors() {
        let mut b = TemplatesBuilder::default();
        let t1 = b.add("{{ config.nope }}").unwrap();
        let t = b.build();
        let ctx = Context {
            config: to_value(&serde_json::json!({})),
            ..Default::default()
        }
        .to_value();
        assert!(t.render(&t1, &ctx).is_err());
    }
}
