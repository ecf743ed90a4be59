//! Spec → Plan, once per run: config resolved and type-checked, templates
//! and JSONPaths compiled, credentials rendered and wrapped as secrets,
//! durations, rates and sizes parsed, each stream's paginator and stop rules
//! compiled. The Plan is immutable and holds no spec types: the run loop
//! reads only the Plan, and run-time pieces (HTTP client, rate limiter,
//! token cache) live in a [`crate::runtime::Runtime`] built from it.
//!
//! `compile` destructures every spec struct exhaustively, so a field added
//! to the language and not compiled is a compile error here.

use crate::auth::AuthPlan;
use crate::config::{ConfigSources, ResolvedConfig};
use crate::error::{EngineError, Result};
use crate::extract::{OnInvalid, RecordSelector};
use crate::http::HttpSettings;
use crate::incremental::{CursorPlan, TimeFormat, WindowPlan};
use crate::pagination::{Paging, RequestParts};
use crate::rate_limit::{CustomHeaders, HeaderFamily, Rate};
use crate::retry::RetryPolicy;
use crate::secret::Redactor;
use crate::template::{CompiledTemplate, Context, Templates, TemplatesBuilder, render_once};
use connector_spec::{IntOrTemplate, Method, Spec};
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
    pub auth: AuthPlan,
    pub redactor: Redactor,
    /// The run-wide quota (`rate_limit.requests`).
    pub rate: Option<Rate>,
    pub burst: Option<u32>,
    pub max_concurrency: u32,
    pub honor_headers: Vec<HeaderFamily>,
    /// The API's own rate-limit headers.
    pub custom_rate_headers: Vec<CustomHeaders>,
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
    /// The pagination's YAML `type`, for messages.
    pub pagination_type: &'static str,
    pub paging: Paging,
    pub page_size: Option<u64>,
    pub selector: RecordSelector,
    /// Records may stay raw JSON (see `raw_records`): the member path.
    pub raw_path: Option<std::sync::Arc<Vec<String>>>,
    pub retry: RetryPolicy,
    /// A stream-only quota, waited for after the run's.
    pub rate: Option<(Rate, u32)>,
    pub primary_key: Vec<String>,
    pub incremental: Option<CursorPlan>,
    /// What happens to a record that cannot be a row.
    pub on_invalid: OnInvalid,
    /// One partition per value (`partitions`): the name and the config
    /// list's values (none when they all come from `partitions.from`).
    pub partitions: Option<(String, Vec<Value>)>,
    /// Partitions from other streams' records (`partitions.from`): the
    /// stream and the value template of each; deduplicated by value.
    pub partitions_from: Vec<(String, CompiledTemplate)>,
    /// Values of the last response kept as state, by name.
    pub response_state: Vec<(String, serde_json_path::JsonPath)>,
    /// The body is sent form-encoded, not as JSON.
    pub form_body: bool,
    /// Read for other streams only, unless named (`internal: true`).
    pub internal: bool,
}

impl StreamPlan {
    /// What templates read as `state`: the values kept from the last run's
    /// responses (every declared name, `null` until saved) and the cursor.
    pub fn state_value(
        &self,
        kept: impl IntoIterator<Item = (String, Value)>,
        cursor: Option<Value>,
    ) -> Value {
        let mut state: serde_json::Map<String, Value> = kept.into_iter().collect();
        for (k, _) in &self.response_state {
            state.entry(k.clone()).or_insert(Value::Null);
        }
        state.insert("cursor".into(), cursor.unwrap_or(Value::Null));
        Value::Object(state)
    }

    /// Each partition (a parent record, a config value) keeps a cursor of
    /// its own: an incremental stream with `parent` or `partitions`. Windows
    /// share the stream's.
    pub fn per_partition_cursor(&self) -> bool {
        self.incremental
            .as_ref()
            .is_some_and(|i| i.windows.is_none())
            && (self.parent.is_some() || self.partitions.is_some())
    }

    /// The streams whose records this one reads: `parent`, then the
    /// `partitions.from` streams, without repeats.
    pub fn parent_streams(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.parent.as_deref().into_iter().collect();
        for (s, _) in &self.partitions_from {
            if !out.contains(&s.as_str()) {
                out.push(s);
            }
        }
        out
    }

    /// The partition a record of `parent` gives this stream through
    /// `partitions.from` (none when the value renders to nothing), or
    /// `Ok(None)` when `parent` is not one of its sources.
    pub fn partition_from(
        &self,
        templates: &Templates,
        parent: &str,
        ctx: &minijinja::Value,
    ) -> Result<Option<(String, Value)>> {
        let Some((as_name, _)) = &self.partitions else {
            return Ok(None);
        };
        for (s, t) in &self.partitions_from {
            if s == parent {
                let v = templates.render_value(t, ctx)?;
                let empty = v.is_null() || v.as_str().is_some_and(str::is_empty);
                return Ok((!empty).then(|| (as_name.clone(), v)));
            }
        }
        Ok(None)
    }

    /// True when the remaining pages may be fetched in parallel.
    pub fn parallel(&self) -> bool {
        self.paging.parallel
    }
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
        let Spec {
            version: _,
            name,
            description: _,
            docs_url: _,
            config: _, // resolved by `config::resolve`
            base_url,
            headers,
            params,
            timeout,
            connect_timeout,
            max_response_size,
            user_agent,
            auth,
            rate_limit,
            retry: _,      // per stream, through `Spec::retry_of`
            pagination: _, // per stream, through `Spec::pagination_of`
            records: _,    // per stream, through `Spec::records_of`
            streams,
        } = spec;
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
        // A single `{{ expression }}` keeps its JSON type (a list, a number).
        let once_value = |b: &mut TemplatesBuilder, src: &str| -> Result<Value> {
            let t = b.add(src)?;
            let text = render_once(b, &t, &ctx)
                .map_err(|e| EngineError::Config(redactor.redact(&e.to_string())))?;
            Ok(if t.is_native() {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            } else {
                Value::String(text)
            })
        };
        let base_text = once(&mut b, base_url.as_str())?;
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
        let headers = headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), once(&mut b, v.as_str())?)))
            .collect::<Result<Vec<_>>>()?;
        let params = params
            .iter()
            .map(|(k, v)| Ok((k.clone(), once(&mut b, v.as_str())?)))
            .collect::<Result<Vec<_>>>()?;
        let user_agent = match user_agent {
            Some(ua) => once(&mut b, ua.as_str())?,
            None => verbose_user_agent
                .map(str::to_string)
                .unwrap_or_else(|| format!("connector-run/{}", env!("CARGO_PKG_VERSION"))),
        };
        let http = HttpSettings {
            timeout: timeout.parse().map_err(|e| plan_err(None, e))?,
            connect_timeout: connect_timeout.parse().map_err(|e| plan_err(None, e))?,
            user_agent,
            max_response_size: max_response_size.parse().map_err(|e| plan_err(None, e))?,
        };
        let auth = AuthPlan::compile(auth, &ctx, &redactor)
            .map_err(|e| EngineError::Config(redactor.redact(&e.to_string())))?;
        let connector_rate = compile_rate_limit(rate_limit, None, &mut |t| once(&mut b, t))?;

        let mut compiled = IndexMap::new();
        for (name, s) in streams {
            let sp = compile_stream(spec, name, s, &mut b, &once, &once_value)?;
            compiled.insert(name.clone(), sp);
        }
        Ok(Plan {
            name: name.clone(),
            base_url,
            templates: b.build(),
            config,
            config_ctx,
            headers,
            params,
            http,
            auth,
            redactor,
            rate: connector_rate.rate,
            burst: connector_rate.burst,
            max_concurrency: connector_rate.max_concurrency.unwrap_or(4),
            honor_headers: connector_rate.honor,
            custom_rate_headers: connector_rate.custom,
            streams: compiled,
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

/// A `rate_limit` block, compiled.
struct RateLimitPlan {
    rate: Option<Rate>,
    burst: Option<u32>,
    max_concurrency: Option<u32>,
    honor: Vec<HeaderFamily>,
    custom: Vec<CustomHeaders>,
}

/// Compiles a `rate_limit` block; a quota written as a template (a plan's
/// own limit from config) is rendered with `render` first.
fn compile_rate_limit(
    r: &connector_spec::RateLimit,
    stream: Option<&str>,
    render: &mut dyn FnMut(&str) -> Result<String>,
) -> Result<RateLimitPlan> {
    let connector_spec::RateLimit {
        requests,
        burst,
        max_concurrency,
        honor_headers,
        custom_headers,
    } = r;
    Ok(RateLimitPlan {
        rate: match requests {
            None => None,
            Some(r) if r.0.contains("{{") => {
                let text = render(&r.0)?;
                Some(
                    connector_spec::parse_rate(&text)
                        .map(Rate::from)
                        .map_err(|e| {
                            plan_err(stream, format!("rate_limit.requests renders to {e}"))
                        })?,
                )
            }
            Some(r) => Some(
                r.parse()
                    .map(Rate::from)
                    .map_err(|e| plan_err(stream, format!("rate_limit.requests: {e}")))?,
            ),
        },
        burst: *burst,
        max_concurrency: *max_concurrency,
        honor: honor_headers
            .iter()
            .copied()
            .map(HeaderFamily::from)
            .collect(),
        custom: custom_headers
            .iter()
            .map(|c| {
                Ok(CustomHeaders {
                    remaining: c.remaining.clone(),
                    used_of_limit: c.used_of_limit.clone(),
                    limit: c.limit.clone(),
                    reset: c.reset.clone(),
                    window: c
                        .window
                        .as_ref()
                        .map(|w| w.parse())
                        .transpose()
                        .map_err(|e| {
                            plan_err(stream, format!("rate_limit.custom_headers.window: {e}"))
                        })?,
                    wait: c.wait.clone(),
                })
            })
            .collect::<Result<_>>()?,
    })
}

fn compile_stream(
    spec: &Spec,
    name: &str,
    s: &connector_spec::Stream,
    b: &mut TemplatesBuilder,
    once: &dyn Fn(&mut TemplatesBuilder, &str) -> Result<String>,
    once_value: &dyn Fn(&mut TemplatesBuilder, &str) -> Result<Value>,
) -> Result<StreamPlan> {
    let connector_spec::Stream {
        description: _,
        path,
        method,
        params,
        headers,
        body,
        primary_key,
        parent,
        pagination: _, // through `Spec::pagination_of`
        records: _,    // through `Spec::records_of`
        retry: _,      // through `Spec::retry_of`
        rate_limit,
        incremental,
        partitions,
        response_state,
        body_format,
        internal,
    } = s;
    let n = Some(name);
    let pagination = spec.pagination_of(s);
    let page_size = match pagination.page_size() {
        None => None,
        Some(IntOrTemplate::Int(n)) => Some(*n),
        Some(IntOrTemplate::Template(t)) => {
            let text = once(b, t.as_str())?;
            Some(
                text.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        plan_err(
                            n,
                            format!(
                                "page_size `{}` renders to `{text}`, not a positive whole number",
                                t.as_str()
                            ),
                        )
                    })?,
            )
        }
    };
    let paging = crate::pagination::compile(pagination, page_size.unwrap_or(0), b)
        .map_err(|e| plan_err(n, format!("pagination: {e}")))?;
    let (partitions, partitions_from) = match partitions {
        None => (None, Vec::new()),
        Some(p) => {
            let values = match &p.values {
                None => Vec::new(),
                Some(t) => {
                    let rendered = once_value(b, t.as_str())?;
                    let Value::Array(values) = rendered else {
                        return Err(plan_err(
                            n,
                            format!(
                                "partitions.values `{}` renders to {rendered}, not a list",
                                t.as_str()
                            ),
                        ));
                    };
                    values
                }
            };
            let from = p
                .from
                .iter()
                .map(|src| Ok((src.stream.clone(), b.add(src.value.as_str())?)))
                .collect::<Result<Vec<_>>>()?;
            (Some((p.name.clone(), values)), from)
        }
    };
    let body = match body {
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
    let records = spec.records_of(s);
    let selector = RecordSelector::compile(records, b)?;
    let incremental = match incremental {
        None => None,
        Some(inc) => Some(compile_incremental(inc, b, once, n)?),
    };
    // Everything that reads the body besides the records: paging, stop rules
    // and kept values.
    let mut body_paths = crate::pagination::paths(pagination);
    body_paths.extend(response_state.values().map(|p| p.as_str()));
    let raw_path = crate::raw_records::eligible(
        &selector,
        incremental.is_some(),
        &body_paths,
        pagination.stop().is_some_and(|s| s.when.is_some()),
    );
    let rate = match rate_limit {
        Some(r) => compile_rate_limit(r, n, &mut |t| once(b, t))?
            .rate
            .map(|rate| (rate, r.burst.unwrap_or(1))),
        None => None,
    };
    Ok(StreamPlan {
        name: name.to_string(),
        method: match method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        },
        path: b.add_text(path.as_str())?,
        // A parameter that renders to `null` is not sent.
        params: params
            .iter()
            .map(|(k, v)| Ok((k.clone(), b.add(v.as_str())?)))
            .collect::<Result<_>>()?,
        headers: headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), b.add_text(v.as_str())?)))
            .collect::<Result<_>>()?,
        body,
        parent: parent.clone(),
        children: spec
            .streams
            .iter()
            .filter(|(_, c)| c.parent_streams().contains(&name))
            .map(|(k, _)| k.clone())
            .collect(),
        pagination_type: pagination.type_name(),
        paging,
        page_size,
        selector,
        raw_path,
        retry: RetryPolicy::compile(spec.retry_of(s)).map_err(|e| plan_err(n, e))?,
        rate,
        primary_key: primary_key.as_ref().map(|p| p.to_vec()).unwrap_or_default(),
        incremental,
        on_invalid: records.on_invalid.into(),
        partitions,
        partitions_from,
        response_state: response_state
            .iter()
            .map(|(k, p)| {
                serde_json_path::JsonPath::parse(p.as_str())
                    .map(|jp| (k.clone(), jp))
                    .map_err(|e| plan_err(n, format!("response_state.{k} `{}`: {e}", p.as_str())))
            })
            .collect::<Result<_>>()?,
        form_body: *body_format == connector_spec::BodyFormat::Form,
        internal: *internal,
    })
}

fn compile_incremental(
    inc: &connector_spec::Incremental,
    b: &mut TemplatesBuilder,
    once: &dyn Fn(&mut TemplatesBuilder, &str) -> Result<String>,
    stream: Option<&str>,
) -> Result<CursorPlan> {
    let connector_spec::Incremental {
        cursor_field,
        cursor_type,
        start_value,
        param,
        lookback,
        client_filter,
        cursor_format,
        request_format,
        min,
        windows,
        restart_when,
    } = inc;
    let restart_when = restart_when
        .as_deref()
        .map(|w| {
            b.add_condition(w)
                .map_err(|e| plan_err(stream, format!("`incremental.restart_when`: {e}")))
        })
        .transpose()?;
    let format = cursor_format.as_deref().map(TimeFormat::parse);
    let request_format = request_format
        .as_deref()
        .map(TimeFormat::parse)
        .or_else(|| format.clone())
        .unwrap_or(TimeFormat::Rfc3339);
    let windows = match windows {
        None => None,
        Some(w) => Some(WindowPlan {
            step: w
                .step
                .parse()
                .map_err(|e| plan_err(stream, format!("windows.step: {e}")))?,
            granularity: w
                .granularity
                .parse()
                .map_err(|e| plan_err(stream, format!("windows.granularity: {e}")))?,
            end: match &w.end {
                Some(t) => Some(Value::String(once(b, t.as_str())?)),
                None => None,
            },
        }),
    };
    Ok(CursorPlan {
        format,
        request_format,
        min: match min {
            Some(t) => Some(Value::String(once(b, t.as_str())?)),
            None => None,
        },
        windows,
        field: cursor_field.clone(),
        kind: (*cursor_type).into(),
        start: match start_value {
            Some(t) => Some(Value::String(once(b, t.as_str())?)).filter(|v| v.as_str() != Some("")),
            None => None,
        },
        param: param.clone(),
        lookback: lookback
            .as_ref()
            .map(|l| l.parse())
            .transpose()
            .map_err(|e| plan_err(stream, e))?,
        client_filter: *client_filter,
        restart_when,
    })
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
