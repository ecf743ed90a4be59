//! Spec → runtime plan, once per run: config resolved and type-checked,
//! templates and JSONPaths compiled, credentials rendered and wrapped as
//! secrets, durations and rates parsed. The run loop reads only the plan.

use crate::auth::Authenticator;
use crate::config::{ConfigSources, ResolvedConfig};
use crate::error::{EngineError, Result};
use crate::extract::RecordSelector;
use crate::http::HttpSettings;
use crate::incremental::CursorPlan;
use crate::pagination::RequestParts;
use crate::retry::RetryPolicy;
use crate::secret::Redactor;
use crate::template::{CompiledTemplate, Context, Templates, TemplatesBuilder, render_once};
use connector_spec::{IntOrTemplate, Method, Pagination, RateLimitHeaders, RateValue, Spec};
use indexmap::IndexMap;
use serde_json::Value;
use url::Url;

/// Everything a run needs, compiled.
pub struct Plan {
    pub name: String,
    pub base_url: Url,
    pub templates: Templates,
    pub config: Value,
    pub config_ctx: minijinja::Value,
    pub headers: Vec<(String, String)>,
    pub params: Vec<(String, String)>,
    pub http: HttpSettings,
    pub auth: Authenticator,
    pub redactor: Redactor,
    pub rate: Option<RateValue>,
    pub burst: Option<u32>,
    pub max_concurrency: u32,
    pub honor_headers: Vec<RateLimitHeaders>,
    pub streams: IndexMap<String, StreamPlan>,
}

/// One stream, compiled.
pub struct StreamPlan {
    pub name: String,
    pub method: reqwest::Method,
    pub path: CompiledTemplate,
    pub params: Vec<(String, CompiledTemplate)>,
    pub headers: Vec<(String, CompiledTemplate)>,
    pub body: Option<(Value, Vec<(String, CompiledTemplate)>)>,
    pub parent: Option<String>,
    pub children: Vec<String>,
    pub pagination: Pagination,
    pub page_size: Option<u64>,
    /// Fetch pages in parallel once the total is known (opt-in).
    pub parallel: bool,
    pub selector: RecordSelector,
    /// Records may stay raw JSON (see `raw_records`): the member path.
    pub raw_path: Option<std::sync::Arc<Vec<String>>>,
    pub retry: RetryPolicy,
    pub primary_key: Vec<String>,
    pub incremental: Option<CursorPlan>,
    /// What happens to a record that cannot be a row.
    pub on_invalid: connector_spec::InvalidRecords,
}

fn plan_err(stream: Option<&str>, msg: impl std::fmt::Display) -> EngineError {
    match stream {
        Some(s) => EngineError::Plan(format!("stream `{s}`: {msg}")),
        None => EngineError::Plan(msg.to_string()),
    }
}

impl Plan {
    /// Compiles a spec with config from `sources`.
    pub fn compile(
        spec: &Spec,
        sources: &ConfigSources,
        verbose_user_agent: Option<&str>,
    ) -> Result<Plan> {
        let ResolvedConfig { values, secrets } = crate::config::resolve(spec, sources)?;
        let redactor = Redactor::new(secrets);
        let config = Value::Object(values);
        let config_ctx = crate::template::to_value(&config);
        let ctx = Context {
            config: config_ctx.clone(),
            ..Default::default()
        };
        let mut b = TemplatesBuilder::default();
        let once = |b: &mut TemplatesBuilder, src: &str| -> Result<String> {
            let t = b.add_text(src)?;
            render_once(b, &t, &ctx)
                .map_err(|e| EngineError::Config(redactor.redact(&e.to_string())))
        };
        let base_text = once(&mut b, spec.base_url.as_str())?;
        let base_url = Url::parse(&base_text).map_err(|e| {
            EngineError::Config(format!(
                "base_url `{}` is not a URL: {e}",
                redactor.redact(&base_text)
            ))
        })?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(EngineError::Config(format!(
                "base_url `{}` must be http or https",
                redactor.redact(&base_text)
            )));
        }
        let headers = spec
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), once(&mut b, v.as_str())?)))
            .collect::<Result<Vec<_>>>()?;
        let params = spec
            .params
            .iter()
            .map(|(k, v)| Ok((k.clone(), once(&mut b, v.as_str())?)))
            .collect::<Result<Vec<_>>>()?;
        let user_agent = match &spec.user_agent {
            Some(ua) => once(&mut b, ua.as_str())?,
            None => verbose_user_agent
                .map(str::to_string)
                .unwrap_or_else(|| format!("connector-run/{}", env!("CARGO_PKG_VERSION"))),
        };
        let http = HttpSettings {
            timeout: spec.timeout.parse().map_err(|e| plan_err(None, e))?,
            connect_timeout: spec
                .connect_timeout
                .parse()
                .map_err(|e| plan_err(None, e))?,
            user_agent,
            max_response_size: spec
                .max_response_size
                .parse()
                .map_err(|e| plan_err(None, e))?,
        };
        let auth = Authenticator::compile(&spec.auth, &ctx, &redactor)
            .map_err(|e| EngineError::Config(redactor.redact(&e.to_string())))?;
        let rate = spec
            .rate_limit
            .requests
            .as_ref()
            .map(|r| r.parse())
            .transpose()
            .map_err(|e| plan_err(None, e))?;

        let mut streams = IndexMap::new();
        for (name, s) in &spec.streams {
            let n = Some(name.as_str());
            let pagination = spec.pagination_of(s).clone();
            let page_size = match page_size_of(&pagination) {
                None => None,
                Some(IntOrTemplate::Int(n)) => Some(*n),
                Some(IntOrTemplate::Template(t)) => {
                    let text = once(&mut b, t.as_str())?;
                    Some(text.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| plan_err(n, format!("page_size `{}` renders to `{text}`, not a positive whole number", t.as_str())))?)
                }
            };
            let body = match &s.body {
                Some(v) => {
                    let mut strings = Vec::new();
                    collect_strings(v, &mut strings);
                    let compiled = strings
                        .into_iter()
                        .map(|t| Ok((t.clone(), b.add(&t)?)))
                        .collect::<Result<Vec<_>>>()?;
                    Some((v.clone(), compiled))
                }
                None => None,
            };
            let mut sp = StreamPlan {
                name: name.clone(),
                method: match s.method {
                    Method::Get => reqwest::Method::GET,
                    Method::Post => reqwest::Method::POST,
                },
                path: b.add_text(s.path.as_str())?,
                // A parameter that renders to `null` is not sent.
                params: s
                    .params
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), b.add(v.as_str())?)))
                    .collect::<Result<_>>()?,
                headers: s
                    .headers
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), b.add_text(v.as_str())?)))
                    .collect::<Result<_>>()?,
                body,
                parent: s.parent.clone(),
                children: spec
                    .streams
                    .iter()
                    .filter(|(_, c)| c.parent.as_deref() == Some(name))
                    .map(|(k, _)| k.clone())
                    .collect(),
                parallel: matches!(
                    pagination,
                    Pagination::Offset { parallel: true, .. }
                        | Pagination::PageNumber { parallel: true, .. }
                ),
                pagination,
                page_size,
                selector: RecordSelector::compile(spec.records_of(s), &mut b)?,
                on_invalid: spec.records_of(s).on_invalid,
                raw_path: None,
                retry: RetryPolicy::compile(spec.retry_of(s))?,
                primary_key: s
                    .primary_key
                    .as_ref()
                    .map(|p| p.to_vec())
                    .unwrap_or_default(),
                incremental: match &s.incremental {
                    None => None,
                    Some(inc) => Some(CursorPlan {
                        field: inc.cursor_field.clone(),
                        kind: inc.cursor_type,
                        start: match &inc.start_value {
                            Some(t) => Some(Value::String(once(&mut b, t.as_str())?))
                                .filter(|v| v.as_str() != Some("")),
                            None => None,
                        },
                        param: inc.param.clone(),
                        lookback: inc
                            .lookback
                            .as_ref()
                            .map(|l| l.parse())
                            .transpose()
                            .map_err(|e| plan_err(n, e))?,
                        client_filter: inc.client_filter,
                    }),
                },
            };
            // Records stay raw only when nothing needs them parsed: no
            // cursor, and no pagination path that reads inside them
            // (Stripe's `$.data[-1].id`).
            let reads_records = |members: &[String]| {
                crate::pagination::paths(&sp.pagination)
                    .iter()
                    .any(|p| connector_spec::jsonpath_text::reads_into(members, p))
            };
            if sp.incremental.is_none() {
                sp.raw_path = sp
                    .selector
                    .raw_path()
                    .filter(|m| !reads_records(m))
                    .map(|p| std::sync::Arc::new(p.to_vec()));
            }
            streams.insert(name.clone(), sp);
        }
        Ok(Plan {
            name: spec.name.clone(),
            base_url,
            templates: b.build(),
            config,
            config_ctx,
            headers,
            params,
            http,
            auth,
            redactor,
            rate,
            burst: spec.rate_limit.burst,
            max_concurrency: spec.rate_limit.max_concurrency.unwrap_or(4),
            honor_headers: spec.rate_limit.honor_headers.clone(),
            streams,
        })
    }

    /// The base context of templates: `config` only.
    pub fn context(&self) -> Context {
        Context {
            config: self.config_ctx.clone(),
            ..Default::default()
        }
    }

    /// The first request of a partition of `sp`, before pagination and auth.
    pub fn base_request(
        &self,
        sp: &StreamPlan,
        ctx: &minijinja::Value,
    ) -> Result<RequestParts, String> {
        let render =
            |t: &CompiledTemplate| self.templates.render(t, ctx).map_err(|e| e.to_string());
        let path = render(&sp.path)?;
        let url = self
            .join(&path)
            .map_err(|e| format!("bad URL `{}`: {e}", self.redactor.redact(&path)))?;
        let mut base = RequestParts {
            url,
            query: self.params.clone(),
            headers: self.headers.clone(),
            body: None,
        };
        for (k, t) in &sp.params {
            match self
                .templates
                .render_value(t, ctx)
                .map_err(|e| e.to_string())?
            {
                Value::Null => {}
                Value::String(v) => base.set_query(k, v),
                other => base.set_query(k, other.to_string()),
            }
        }
        for (k, t) in &sp.headers {
            base.headers.push((k.clone(), render(t)?));
        }
        if let Some((body, compiled)) = &sp.body {
            base.body =
                Some(render_body(body, compiled, &self.templates, ctx).map_err(|e| e.to_string())?);
        }
        Ok(base)
    }

    /// Joins a rendered stream path to the base URL, keeping the base's path
    /// prefix (`https://x/api/v2` + `/users` → `https://x/api/v2/users`).
    pub fn join(&self, path: &str) -> Result<Url, String> {
        if path.starts_with("http://") || path.starts_with("https://") {
            return Url::parse(path).map_err(|e| e.to_string());
        }
        let mut base = self.base_url.clone();
        let prefix = base.path().trim_end_matches('/').to_string();
        let (p, q) = path
            .split_once('?')
            .map(|(a, b)| (a, Some(b)))
            .unwrap_or((path, None));
        base.set_path(&format!("{prefix}/{}", p.trim_start_matches('/')));
        if let Some(q) = q {
            base.set_query(Some(q));
        }
        Ok(base)
    }
}

fn page_size_of(p: &Pagination) -> Option<&IntOrTemplate> {
    match p {
        Pagination::Offset { page_size, .. }
        | Pagination::PageNumber { page_size, .. }
        | Pagination::Cursor { page_size, .. } => Some(page_size),
        _ => None,
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// Renders the templated strings of a JSON body.
pub fn render_body(
    v: &Value,
    compiled: &[(String, CompiledTemplate)],
    t: &Templates,
    ctx: &minijinja::Value,
) -> Result<Value> {
    Ok(match v {
        Value::String(s) => match compiled.iter().find(|(src, _)| src == s) {
            Some((_, c)) => t.render_value(c, ctx)?,
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_body(x, compiled, t, ctx))
                .collect::<Result<_>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), render_body(x, compiled, t, ctx)?)))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}
