//! Semantic checks, run once the structure is right: JSONPaths parse,
//! templates parse and read only known variables and declared config keys,
//! parents exist and form no cycle, durations and rates parse, credentials
//! come from config.

use crate::node::Node;
use crate::suggest::hint;
use crate::{
    Auth, ConfigType, Diagnostic, HumanDuration, IntOrTemplate, JsonPath, Pagination, Pos,
    RateLimit, Records, Retry, Spec, Stream, Template,
};
use std::collections::{BTreeSet, HashSet};

pub(crate) fn check(spec: &Spec, root: &Node, file: &str) -> Vec<Diagnostic> {
    let mut c = Meaning {
        spec,
        root,
        file,
        diags: Vec::new(),
        env: crate::render_check::environment(),
    };
    c.run();
    c.diags.sort_by_key(|d| d.pos);
    // An inherited block is checked once per stream; report each problem once.
    c.diags.dedup();
    c.diags
}

struct Meaning<'a> {
    spec: &'a Spec,
    root: &'a Node,
    file: &'a str,
    diags: Vec<Diagnostic>,
    env: minijinja::Environment<'static>,
}

/// Which variables a template may read.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    /// Connection-level: `config` only.
    Connection,
    /// Request-level: `config`, `parent`, `state`, `page`.
    Request,
    /// Record-level: request-level plus `record`.
    Record,
    /// A stop condition: `config`, `response`, `headers`, `page`.
    Stop,
    /// A response action's condition: `response`, `status`, `headers`.
    Response,
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl<'a> Meaning<'a> {
    fn err(&mut self, pos: Pos, msg: impl Into<String>, hint: Option<String>) {
        self.diags
            .push(Diagnostic::error(self.file, pos, msg).with_hint_opt(hint));
    }

    fn at(&self, path: &[&str]) -> Pos {
        self.root.locate(path)
    }

    /// True when the file itself writes `path` (not a default).
    fn written(&self, path: &[&str]) -> bool {
        let mut node = self.root;
        for seg in path {
            match node.get(seg) {
                Some(n) => node = n,
                None => return false,
            }
        }
        true
    }

    fn warn(&mut self, pos: Pos, msg: impl Into<String>, hint: Option<String>) {
        let mut d = Diagnostic::error(self.file, pos, msg).with_hint_opt(hint);
        d.severity = crate::Severity::Warning;
        self.diags.push(d);
    }

    fn run(&mut self) {
        let spec = self.spec;
        if spec.version != 1 {
            self.err(
                self.at(&["version"]),
                format!("unsupported spec version {}", spec.version),
                Some("this connector-run reads `version: 1`".into()),
            );
        }
        if !is_name(&spec.name) {
            self.err(
                self.at(&["name"]),
                format!("connector name `{}` is not snake_case", spec.name),
                Some("use lowercase letters, digits and `_`, e.g. `my_api`".into()),
            );
        }
        self.config_params();
        if let Some((url, exact)) =
            self.template(&spec.base_url, Scope::Connection, &["base_url"], None)
        {
            self.base_url(&url, exact);
        }
        for (k, t) in &spec.headers {
            self.template(t, Scope::Connection, &["headers", k], None);
        }
        for (k, t) in &spec.params {
            self.template(t, Scope::Connection, &["params", k], None);
        }
        if let Some(ua) = &spec.user_agent {
            self.template(ua, Scope::Connection, &["user_agent"], None);
        }
        self.duration(&spec.timeout, &["timeout"]);
        self.duration(&spec.connect_timeout, &["connect_timeout"]);
        if let Err(e) = spec.max_response_size.parse() {
            self.err(
                self.at(&["max_response_size"]),
                format!("invalid size: {e}"),
                None,
            );
        }
        self.auth();
        self.rate_limit(&spec.rate_limit, &["rate_limit"]);
        self.retry(&spec.retry, &["retry"]);
        self.pagination(&spec.pagination, &["pagination"], None);
        self.records(&spec.records, &["records"], None);
        if spec.streams.is_empty() {
            self.err(
                self.at(&["streams"]),
                "a connector needs at least one stream",
                None,
            );
        }
        for (name, stream) in &spec.streams {
            self.stream(name, stream);
        }
        self.parent_cycles();
    }

    /// `base_url` must be an http or https URL; checked when its value is
    /// known (a literal, or config defaults).
    fn base_url(&mut self, url: &str, exact: bool) {
        let pos = self.at(&["base_url"]);
        match url::Url::parse(url.trim()) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => self.err(
                pos,
                format!(
                    "base_url `{url}` has the scheme `{}`; only http and https are fetched",
                    u.scheme()
                ),
                Some("write e.g. `https://api.example.com/v1`".into()),
            ),
            Ok(_) => {}
            Err(e) if exact => self.err(
                pos,
                format!("base_url `{url}` is not a URL: {e}"),
                Some("write e.g. `https://api.example.com/v1`".into()),
            ),
            Err(_) => {}
        }
    }

    fn config_params(&mut self) {
        for (name, p) in &self.spec.config {
            let pos = self.root.locate_key(&["config", name]);
            if !is_name(name) {
                self.err(
                    pos,
                    format!("config name `{name}` is not snake_case"),
                    Some("use lowercase letters, digits and `_`".into()),
                );
            }
            if p.secret && p.default.is_some() {
                self.err(self.at(&["config", name, "default"]), format!("secret `{name}` has a default"), Some("secrets never appear in the spec; supply them with the environment, --config or --set".into()));
            }
            let fits = |v: &serde_json::Value| match p.kind {
                ConfigType::String => v.is_string(),
                ConfigType::Integer => v.is_i64() || v.is_u64(),
                ConfigType::Number => v.is_number(),
                ConfigType::Boolean => v.is_boolean(),
                ConfigType::Array => v.is_array(),
            };
            if let Some(d) = &p.default
                && !fits(d)
            {
                self.err(
                    self.at(&["config", name, "default"]),
                    format!("default of `{name}` is {d}, not {}", p.kind.article()),
                    None,
                );
            }
            for (i, v) in p.allowed.iter().flatten().enumerate() {
                if !fits(v) {
                    self.err(
                        self.at(&["config", name, "enum", &i.to_string()]),
                        format!("enum value {v} of `{name}` is not {}", p.kind.article()),
                        None,
                    );
                }
            }
            if let (Some(d), Some(allowed)) = (&p.default, &p.allowed)
                && !allowed.contains(d)
            {
                self.err(
                    self.at(&["config", name, "default"]),
                    format!("default of `{name}` is not one of its enum values"),
                    None,
                );
            }
            if let Some(env) = &p.env
                && (env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                self.err(
                    self.at(&["config", name, "env"]),
                    format!("`{env}` is not an environment variable name"),
                    None,
                );
            }
        }
    }

    /// Checks a template: it parses, reads only variables of its scope, every
    /// `config.X` it reads is declared, and it renders with placeholder
    /// values. `stream` is the stream it belongs to. Returns the rendered
    /// text, and whether it is exactly what a run renders (it reads only
    /// config values with defaults).
    fn template(
        &mut self,
        t: &Template,
        scope: Scope,
        path: &[&str],
        stream: Option<&Stream>,
    ) -> Option<(String, bool)> {
        let pos = self.at(path);
        let tmpl = match self.env.template_from_str(t.as_str()) {
            Ok(tmpl) => tmpl,
            Err(e) => {
                let detail = e.detail().unwrap_or("syntax error").to_string();
                self.err(
                    pos,
                    format!("template `{}` does not parse: {detail}", t.as_str()),
                    Some("templates are minijinja: `{{ config.name }}`".into()),
                );
                return None;
            }
        };
        let mut vars = tmpl.undeclared_variables(true);
        vars.extend(subscripted_config_keys(t.as_str(), true));
        let before = self.diags.len();
        self.variables(vars.clone(), scope, pos, stream, t.as_str());
        if self.diags.len() > before {
            return None;
        }
        self.rendered(t.as_str(), &vars, pos, "template")
    }

    /// Renders a template (or an expression wrapped as one) with
    /// placeholders and reports what would fail at run time.
    fn rendered(
        &mut self,
        source: &str,
        vars: &HashSet<String>,
        pos: Pos,
        what: &str,
    ) -> Option<(String, bool)> {
        use crate::render_check::{Rendered, reads_only_defaults, render};
        let config_only = vars
            .iter()
            .all(|v| v == "config" || v.starts_with("config."));
        let exact = reads_only_defaults(self.spec, vars);
        match render(&self.env, self.spec, source, config_only, exact) {
            Rendered::Text(text, exact) => Some((text, exact)),
            Rendered::Fails(msg, hint) => {
                let shown = if what == "expression" {
                    source
                        .strip_prefix("{% if ")
                        .and_then(|s| s.strip_suffix(" %}1{% endif %}"))
                        .unwrap_or(source)
                } else {
                    source
                };
                self.err(
                    pos,
                    format!("{what} `{shown}` fails when rendered: {msg}"),
                    hint,
                );
                None
            }
            Rendered::Unknown => None,
        }
    }

    fn expression(&mut self, expr: &str, scope: Scope, path: &[&str], stream: Option<&Stream>) {
        let pos = self.at(path);
        match self.env.compile_expression(expr) {
            Ok(e) => {
                let mut vars = e.undeclared_variables(true);
                vars.extend(subscripted_config_keys(expr, false));
                let before = self.diags.len();
                self.variables(vars.clone(), scope, pos, stream, expr);
                if self.diags.len() == before {
                    let wrapped = format!("{{% if {expr} %}}1{{% endif %}}");
                    self.rendered(&wrapped, &vars, pos, "expression");
                }
            }
            Err(e) => {
                let detail = e.detail().unwrap_or("syntax error").to_string();
                self.err(
                    pos,
                    format!("expression `{expr}` does not parse: {detail}"),
                    None,
                );
            }
        }
    }

    fn variables(
        &mut self,
        vars: HashSet<String>,
        scope: Scope,
        pos: Pos,
        stream: Option<&Stream>,
        text: &str,
    ) {
        let mut allowed = if scope == Scope::Response {
            vec!["response", "status", "headers"]
        } else {
            vec!["config"]
        };
        if matches!(scope, Scope::Request | Scope::Record) {
            allowed.extend([
                "parent",
                "parent_partition",
                "state",
                "page",
                "partition",
                "window",
            ]);
        }
        if scope == Scope::Record {
            allowed.push("record");
        }
        if scope == Scope::Stop {
            allowed.extend(["response", "headers", "page", "state"]);
        }
        let vars: BTreeSet<String> = vars.into_iter().collect();
        for var in &vars {
            if crate::render_check::FUNCTIONS.contains(&var.as_str()) {
                continue; // a function the templates know, called as one
            }
            let (top, rest) = var
                .split_once('.')
                .map(|(a, b)| (a, Some(b)))
                .unwrap_or((var.as_str(), None));
            if vars.iter().any(|v| v.starts_with(&format!("{var}."))) {
                continue; // `config` listed beside `config.x`: judged by the longer one
            }
            if !allowed.contains(&top) && text.contains(&format!("{top}(")) {
                let funcs = crate::render_check::FUNCTIONS;
                let h = hint(top, funcs.iter().copied())
                    .unwrap_or_else(|| format!("functions: {}", funcs.join(", ")));
                self.err(
                    pos,
                    format!("unknown template function `{top}()` in `{text}`"),
                    Some(h),
                );
                continue;
            }
            if !allowed.contains(&top) {
                let why = if crate::TEMPLATE_VARIABLES.contains(&top) || top == "record" {
                    format!(
                        "`{top}` is not available here (available: {})",
                        allowed.join(", ")
                    )
                } else {
                    hint(top, allowed.iter().copied())
                        .unwrap_or_else(|| format!("available variables: {}", allowed.join(", ")))
                };
                self.err(
                    pos,
                    format!("unknown template variable `{top}` in `{text}`"),
                    Some(why),
                );
                continue;
            }
            match (top, rest) {
                ("config", Some(rest)) => {
                    let key = rest.split('.').next().unwrap_or(rest);
                    if !self.spec.config.contains_key(key) {
                        let h = hint(key, self.spec.config.keys().map(String::as_str))
                            .unwrap_or_else(|| {
                                format!(
                                    "declare it under `config:` (declared: {})",
                                    self.declared_config()
                                )
                            });
                        self.err(
                            pos,
                            format!("undeclared config key `{key}` in `{text}`"),
                            Some(h),
                        );
                    }
                }
                ("parent" | "parent_partition", _)
                    if stream.is_some_and(|s| s.parent_streams().is_empty()) =>
                {
                    self.err(
                        pos,
                        format!("`parent` is used in `{text}` but the stream has no `parent`"),
                        Some("add `parent: <stream>` to the stream".into()),
                    );
                }
                ("state", _)
                    if stream.is_some_and(|s| {
                        s.incremental.is_none() && s.response_state.is_empty()
                    }) =>
                {
                    self.err(
                        pos,
                        format!("`state` is used in `{text}` but the stream is not incremental"),
                        Some("add an `incremental:` block with a `cursor_field`, or `response_state`".into()),
                    );
                }
                ("state", Some(rest))
                    if stream.is_some_and(|s| {
                        let name = rest.split('.').next().unwrap_or(rest);
                        !(name == "cursor" && s.incremental.is_some())
                            && !s.response_state.contains_key(name)
                            && (s.incremental.is_some() || !s.response_state.is_empty())
                    }) =>
                {
                    let s = stream.expect("checked above");
                    let name = rest.split('.').next().unwrap_or(rest);
                    let mut known: Vec<&str> =
                        s.response_state.keys().map(String::as_str).collect();
                    if s.incremental.is_some() {
                        known.insert(0, "cursor");
                    }
                    let h = hint(name, known.iter().copied()).unwrap_or_else(|| {
                        format!(
                            "the stream's state holds {}; keep a value of the response with `response_state: {{ {name}: $.path }}`",
                            known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                        )
                    });
                    self.err(
                        pos,
                        format!(
                            "`state.{name}` is used in `{text}` but the stream keeps no `{name}`"
                        ),
                        Some(h),
                    );
                }
                ("partition", Some(rest))
                    if stream.is_some_and(|s| {
                        s.partitions
                            .as_ref()
                            .is_some_and(|p| rest.split('.').next() != Some(p.name.as_str()))
                    }) =>
                {
                    let as_name = &stream
                        .expect("checked above")
                        .partitions
                        .as_ref()
                        .expect("checked above")
                        .name;
                    let name = rest.split('.').next().unwrap_or(rest);
                    self.err(
                        pos,
                        format!("`partition.{name}` is used in `{text}`, but the partitions are named `{as_name}`"),
                        Some(format!("write `{{{{ partition.{as_name} }}}}`, or set `as: {name}`")),
                    );
                }
                ("window", Some(rest))
                    if !matches!(rest.split('.').next(), Some("start" | "end"))
                        && stream.is_some_and(|s| {
                            s.incremental.as_ref().is_some_and(|i| i.windows.is_some())
                        }) =>
                {
                    self.err(
                        pos,
                        format!(
                            "`window.{rest}` is used in `{text}`; a window has `start` and `end`"
                        ),
                        Some("write `{{ window.start }}` or `{{ window.end }}`".into()),
                    );
                }
                ("partition", _) if stream.is_some_and(|s| s.partitions.is_none()) => {
                    self.err(
                        pos,
                        format!(
                            "`partition` is used in `{text}` but the stream has no `partitions`"
                        ),
                        Some(
                            "add `partitions: { values: \"{{ config.<list> }}\", as: <name> }`"
                                .into(),
                        ),
                    );
                }
                ("window", _)
                    if stream.is_some_and(|s| {
                        s.incremental.as_ref().is_none_or(|i| i.windows.is_none())
                    }) =>
                {
                    self.err(
                        pos,
                        format!("`window` is used in `{text}` but the stream has no `incremental.windows`"),
                        Some("add `windows: { step: 1d }` to the stream's `incremental` block".into()),
                    );
                }
                _ => {}
            }
        }
    }

    fn declared_config(&self) -> String {
        if self.spec.config.is_empty() {
            "none".into()
        } else {
            self.spec
                .config
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    fn jsonpath(&mut self, p: &JsonPath, path: &[&str]) {
        if let Err(e) = serde_json_path::JsonPath::parse(p.as_str()) {
            let odd_member = p.as_str().strip_prefix("$.").filter(|m| {
                !m.is_empty()
                    && !m.contains(['[', ']', '\'', '"', '*'])
                    && m.chars()
                        .any(|c| !(c.is_alphanumeric() || c == '_' || c == '.'))
            });
            let bracketed;
            let hint = if !p.as_str().starts_with('$') {
                "a JSONPath starts with `$`, e.g. `$.data[*]`"
            } else if let Some(m) = odd_member {
                // `$.@odata.nextLink`: a name with `@`, `-` or `$` needs brackets.
                bracketed = format!(
                    "a member name with characters other than letters, digits and `_` needs bracket notation: `$['{m}']`"
                );
                bracketed.as_str()
            } else {
                "see RFC 9535, e.g. `$.data[*]` or `$.results`"
            };
            self.err(
                self.at(path),
                format!("invalid JSONPath `{}`: {e}", p.as_str()),
                Some(hint.into()),
            );
        }
    }

    fn duration(&mut self, d: &HumanDuration, path: &[&str]) {
        if let Err(e) = d.parse() {
            self.err(self.at(path), format!("invalid duration: {e}"), None);
        }
    }

    fn int_or_template(&mut self, v: &IntOrTemplate, path: &[&str], stream: Option<&Stream>) {
        match v {
            IntOrTemplate::Int(0) => self.err(self.at(path), "page size must be at least 1", None),
            IntOrTemplate::Int(_) => {}
            IntOrTemplate::Template(t) => {
                if !t.is_dynamic() {
                    self.err(
                        self.at(path),
                        format!("`{}` is neither a number nor a template", t.as_str()),
                        Some("write a number or e.g. `{{ config.page_size }}`".into()),
                    );
                } else if let Some((text, true)) = self.template(t, Scope::Request, path, stream)
                    && !text.trim().parse::<u64>().is_ok_and(|n| n > 0)
                {
                    self.err(
                        self.at(path),
                        format!(
                            "page size `{}` renders to `{text}`, not a positive whole number",
                            t.as_str()
                        ),
                        None,
                    );
                }
            }
        }
    }

    /// A credential must be a template that reads config, never a literal.
    fn credential(&mut self, t: &Template, path: &[&str]) {
        if !t.is_dynamic() {
            self.err(self.at(path), "credentials must not be written in the spec", Some("declare a config parameter with `secret: true` and write e.g. `{{ config.api_token }}`".into()));
        }
        self.template(t, Scope::Connection, path, None);
    }

    fn auth(&mut self) {
        let spec = self.spec;
        self.auth_block(&spec.auth, &["auth"]);
    }

    /// Checks one auth block at `base` (`auth`, or `auth.options.<name>`).
    fn auth_block(&mut self, auth: &Auth, base: &[&str]) {
        let p = |rest: &[&str]| -> Vec<String> {
            base.iter().chain(rest).map(|s| s.to_string()).collect()
        };
        match auth {
            Auth::None => {}
            Auth::Bearer { token } => self.credential(token, &refs(&p(&["token"]))),
            Auth::ApiKey { value, .. } => self.credential(value, &refs(&p(&["value"]))),
            Auth::Basic { username, password } => {
                self.template(username, Scope::Connection, &refs(&p(&["username"])), None);
                // A fixed password beside a key in the user name is the
                // API's convention (Freshdesk's `X`), not a credential.
                if let Some(pw) = password
                    && !(username.is_dynamic() && !pw.is_dynamic())
                {
                    self.credential(pw, &refs(&p(&["password"])));
                }
            }
            Auth::Oauth2 {
                token_url,
                client_id,
                client_secret,
                refresh_token,
                refresh_before,
                extra_params,
                grant_type,
                token_headers,
                base_url_path,
                refresh_token_file,
                ..
            } => {
                self.template(
                    token_url,
                    Scope::Connection,
                    &refs(&p(&["token_url"])),
                    None,
                );
                self.template(
                    client_id,
                    Scope::Connection,
                    &refs(&p(&["client_id"])),
                    None,
                );
                self.credential(client_secret, &refs(&p(&["client_secret"])));
                match (grant_type, refresh_token) {
                    (crate::OAuthGrant::RefreshToken, None) => {
                        self.err(
                            self.at(base),
                            "the `refresh_token` grant needs `refresh_token`",
                            Some("e.g. `refresh_token: \"{{ config.refresh_token }}\"`".into()),
                        );
                    }
                    (_, Some(rt)) => self.credential(rt, &refs(&p(&["refresh_token"]))),
                    _ => {}
                }
                self.duration(refresh_before, &refs(&p(&["refresh_before"])));
                for (k, v) in extra_params {
                    self.template(v, Scope::Connection, &refs(&p(&["extra_params", k])), None);
                }
                for (k, v) in token_headers {
                    self.template(v, Scope::Connection, &refs(&p(&["token_headers", k])), None);
                }
                if let Some(jp) = base_url_path {
                    self.jsonpath(jp, &refs(&p(&["base_url_path"])));
                }
                if let Some(f) = refresh_token_file {
                    self.template(
                        f,
                        Scope::Connection,
                        &refs(&p(&["refresh_token_file"])),
                        None,
                    );
                    if *grant_type != crate::OAuthGrant::RefreshToken {
                        self.err(
                            self.at(&refs(&p(&["refresh_token_file"]))),
                            "`refresh_token_file` keeps a rotated refresh token, but the grant is `client_credentials`",
                            Some("remove it, or use `grant_type: refresh_token`".into()),
                        );
                    }
                }
            }
            Auth::CustomHeader { value, .. } => self.credential(value, &refs(&p(&["value"]))),
            Auth::Select { value, options } => {
                self.template(value, Scope::Connection, &refs(&p(&["value"])), None);
                if options.is_empty() {
                    self.err(
                        self.at(base),
                        "`select` has no `options`",
                        Some("e.g. `options: { token: { type: bearer, token: \"{{ config.token }}\" } }`".into()),
                    );
                }
                for (name, option) in options {
                    let at = p(&["options", name]);
                    if matches!(option, Auth::Select { .. }) {
                        self.err(
                            self.at(&refs(&at)),
                            "an option of `select` cannot be another `select`",
                            Some("list every choice in one `select`".into()),
                        );
                        continue;
                    }
                    self.auth_block(option, &refs(&at));
                }
            }
            Auth::Headers { headers } => {
                if headers.is_empty() {
                    self.err(
                        self.at(&refs(&p(&["headers"]))),
                        "`headers` names no header",
                        Some("e.g. `headers: { DD-API-KEY: \"{{ config.api_key }}\" }`".into()),
                    );
                }
                for (k, v) in headers {
                    if !is_header_name(k) {
                        self.err(
                            self.at(&refs(&p(&["headers", k]))),
                            format!("`{k}` is not a valid header name"),
                            Some("header names are letters, digits and `-`".into()),
                        );
                    }
                    self.credential(v, &refs(&p(&["headers", k])));
                }
            }
        }
    }

    fn rate_limit(&mut self, r: &RateLimit, path: &[&str]) {
        if let Some(rate) = &r.requests
            && rate.0.contains("{{")
        {
            let p: Vec<&str> = path.iter().copied().chain(["requests"]).collect();
            self.template(
                &crate::Template(rate.0.clone()),
                Scope::Connection,
                &p,
                None,
            );
        } else if let Some(rate) = &r.requests
            && let Err(e) = rate.parse()
        {
            let p: Vec<&str> = path.iter().copied().chain(["requests"]).collect();
            self.err(self.at(&p), format!("invalid rate: {e}"), None);
        }
        for (field, v) in [("burst", r.burst), ("max_concurrency", r.max_concurrency)] {
            if v == Some(0) {
                let p: Vec<&str> = path.iter().copied().chain([field]).collect();
                self.err(self.at(&p), format!("`{field}` must be at least 1"), None);
            }
        }
        if path.first() == Some(&"streams") && !r.custom_headers.is_empty() {
            let p: Vec<&str> = path.iter().copied().chain(["custom_headers"]).collect();
            self.err(
                self.at(&p),
                "`custom_headers` describe the whole API's budget: they belong in the connector's `rate_limit`",
                Some("move them to the top-level `rate_limit` block".into()),
            );
        }
        for (i, c) in r.custom_headers.iter().enumerate() {
            let idx = i.to_string();
            let at: Vec<&str> = path
                .iter()
                .copied()
                .chain(["custom_headers", idx.as_str()])
                .collect();
            let budget = c.remaining.is_some() || c.used_of_limit.is_some();
            if c.remaining.is_some() && c.used_of_limit.is_some() {
                self.err(
                    self.at(&at),
                    "give `remaining` or `used_of_limit`, not both",
                    None,
                );
            }
            if !budget && c.wait.is_none() {
                self.err(
                    self.at(&at),
                    "a custom rate-limit header entry needs `remaining`, `used_of_limit` or `wait`",
                    Some("e.g. `{ remaining: X-HubSpot-RateLimit-Remaining, window: 10s }`".into()),
                );
            }
            if budget && c.reset.is_none() && c.window.is_none() {
                self.err(
                    self.at(&at),
                    "the budget needs to know when it renews: give `reset` (a header) or `window` (a duration)",
                    Some("e.g. `window: 10s`".into()),
                );
            }
            if let Some(w) = &c.window {
                let p: Vec<&str> = at.iter().copied().chain(["window"]).collect();
                self.duration(w, &p);
            }
            for (field, name) in [
                ("remaining", &c.remaining),
                ("used_of_limit", &c.used_of_limit),
                ("limit", &c.limit),
                ("reset", &c.reset),
                ("wait", &c.wait),
            ] {
                if let Some(n) = name
                    && !is_header_name(n)
                {
                    let p: Vec<&str> = at.iter().copied().chain([field]).collect();
                    self.err(
                        self.at(&p),
                        format!("`{n}` is not a valid header name"),
                        None,
                    );
                }
            }
        }
    }

    fn retry(&mut self, r: &Retry, path: &[&str]) {
        let sub = |f: &'static str| -> Vec<&str> { path.iter().copied().chain([f]).collect() };
        if r.max_attempts == 0 {
            self.err(
                self.at(&sub("max_attempts")),
                "`max_attempts` must be at least 1 (the first try counts)",
                None,
            );
        }
        self.duration(&r.backoff_base, &sub("backoff_base"));
        self.duration(&r.backoff_cap, &sub("backoff_cap"));
        self.duration(&r.max_wait, &sub("max_wait"));
        if let (Ok(base), Ok(cap)) = (r.backoff_base.parse(), r.backoff_cap.parse())
            && base > cap
        {
            self.err(
                self.at(&sub("backoff_base")),
                "`backoff_base` is longer than `backoff_cap`",
                Some("the cap bounds every wait; raise it or lower the base".into()),
            );
        }
        for (i, a) in r.response_actions.iter().enumerate() {
            let idx = i.to_string();
            if let Some(p) = &a.body_path {
                let p2: Vec<&str> = path
                    .iter()
                    .copied()
                    .chain(["response_actions", idx.as_str(), "body_path"])
                    .collect();
                self.jsonpath(p, &p2);
            }
            if let Some(w) = &a.when {
                let p2: Vec<&str> = path
                    .iter()
                    .copied()
                    .chain(["response_actions", idx.as_str(), "when"])
                    .collect();
                self.expression(w, Scope::Response, &p2, None);
            }
        }
    }

    fn pagination(&mut self, p: &Pagination, path: &[&str], stream: Option<&Stream>) {
        let sub = |f: &'static str| -> Vec<&str> { path.iter().copied().chain([f]).collect() };
        match p {
            Pagination::Offset { page_size, .. } | Pagination::PageNumber { page_size, .. } => {
                self.int_or_template(page_size, &sub("page_size"), stream);
            }
            Pagination::Cursor {
                cursor_path,
                cursor_header,
                page_size,
                ..
            } => {
                match (cursor_path, cursor_header) {
                    (None, None) => self.err(
                        self.at(path),
                        "cursor pagination needs `cursor_path` or `cursor_header`",
                        Some("e.g. `cursor_path: $.meta.next_cursor`".into()),
                    ),
                    (Some(_), Some(_)) => self.err(
                        self.at(&sub("cursor_header")),
                        "give either `cursor_path` or `cursor_header`, not both",
                        None,
                    ),
                    (Some(cp), None) => self.jsonpath(cp, &sub("cursor_path")),
                    (None, Some(_)) => {}
                }
                self.int_or_template(page_size, &sub("page_size"), stream);
            }
            Pagination::NextUrl { next_url_path, .. } => {
                self.jsonpath(next_url_path, &sub("next_url_path"))
            }
            Pagination::None | Pagination::LinkHeader { .. } => {}
        }
        let short_page_means_nothing = match p {
            Pagination::Cursor { .. } | Pagination::NextUrl { .. } | Pagination::LinkHeader { .. } => {
                Some(format!("`{}` pagination pages by a token or link, not by counting records", p.type_name()))
            }
            Pagination::PageNumber { size_param: None, .. } => {
                Some("`page_number` pagination without a `size_param` sends no page size to compare with".to_string())
            }
            _ => None,
        };
        let short_page_path: Vec<&str> =
            path.iter().copied().chain(["stop", "short_page"]).collect();
        // `short_page: false` only switches off what does nothing anyway.
        let asked = p.stop().is_some_and(|st| st.short_page) && self.written(&short_page_path);
        if let (Some(why), true) = (short_page_means_nothing, asked) {
            self.err(
                self.root.locate_key(&short_page_path),
                format!("`stop.short_page` means nothing here: {why}"),
                Some("remove it; paging ends when no next page comes back, on an empty page, or by `has_more_path`".into()),
            );
        }
        if let Some(stop) = p.stop() {
            let stop_path: Vec<&str> = path.iter().copied().chain(["stop"]).collect();
            for (f, jp) in [
                ("has_more_path", &stop.has_more_path),
                ("total_path", &stop.total_path),
            ] {
                if let Some(jp) = jp {
                    let p2: Vec<&str> = stop_path.iter().copied().chain([f]).collect();
                    self.jsonpath(jp, &p2);
                }
            }
            if let Some(jp) = &stop.stop_path {
                let p2: Vec<&str> = stop_path.iter().copied().chain(["stop_path"]).collect();
                self.jsonpath(jp, &p2);
            }
            if let Some(w) = &stop.when {
                let p2: Vec<&str> = stop_path.iter().copied().chain(["when"]).collect();
                self.expression(w, Scope::Stop, &p2, stream);
            }
            if stop.max_pages == Some(0) {
                let p2: Vec<&str> = stop_path.iter().copied().chain(["max_pages"]).collect();
                self.err(self.at(&p2), "`max_pages` must be at least 1", None);
            }
        }
    }

    fn records(&mut self, r: &Records, path: &[&str], stream: Option<&Stream>) {
        let sub = |f: &'static str| -> Vec<&str> { path.iter().copied().chain([f]).collect() };
        self.jsonpath(&r.path, &sub("path"));
        if let Some(f) = &r.filter {
            self.expression(f, Scope::Record, &sub("filter"), stream);
        }
        for (k, t) in &r.add_fields {
            let p: Vec<&str> = path
                .iter()
                .copied()
                .chain(["add_fields", k.as_str()])
                .collect();
            self.template(t, Scope::Record, &p, stream);
        }
        for (i, t) in r.transforms.iter().enumerate() {
            let idx = i.to_string();
            if let Some(w) = &t.when {
                let p: Vec<&str> = path
                    .iter()
                    .copied()
                    .chain(["transforms", idx.as_str(), "when"])
                    .collect();
                self.expression(w, Scope::Record, &p, stream);
            }
            for (k, a) in &t.add_fields {
                let p: Vec<&str> = path
                    .iter()
                    .copied()
                    .chain(["transforms", idx.as_str(), "add_fields", k.as_str()])
                    .collect();
                self.template(a, Scope::Record, &p, stream);
            }
        }
    }

    fn stream(&mut self, name: &str, s: &Stream) {
        let spec = self.spec;
        if !is_name(name) {
            self.err(
                self.root.locate_key(&["streams", name]),
                format!("stream name `{name}` is not snake_case"),
                Some("use lowercase letters, digits and `_`".into()),
            );
        }
        let base = ["streams", name];
        let p = |f: &'static str| -> Vec<&str> { base.iter().copied().chain([f]).collect() };
        self.template(&s.path, Scope::Request, &p("path"), Some(s));
        for (k, t) in &s.params {
            self.template(t, Scope::Request, &[base[0], base[1], "params", k], Some(s));
        }
        for (k, t) in &s.headers {
            self.template(
                t,
                Scope::Request,
                &[base[0], base[1], "headers", k],
                Some(s),
            );
        }
        if let Some(body) = &s.body {
            if s.method == crate::Method::Get {
                self.err(
                    self.at(&p("body")),
                    "a `body` is only sent with `method: POST`",
                    Some("add `method: POST` or remove `body`".into()),
                );
            }
            let mut strings = Vec::new();
            collect_strings(body, &mut strings);
            for text in strings {
                self.template(&Template(text), Scope::Request, &p("body"), Some(s));
            }
        }
        if let Some(pk) = &s.primary_key
            && (pk.to_vec().is_empty() || pk.to_vec().iter().any(String::is_empty))
        {
            self.err(
                self.at(&p("primary_key")),
                "`primary_key` names no field",
                None,
            );
        }
        if let Some(parent) = &s.parent {
            if parent == name {
                self.err(
                    self.at(&p("parent")),
                    format!("stream `{name}` names itself as its parent"),
                    None,
                );
            } else if !spec.streams.contains_key(parent) {
                let h =
                    hint(parent, spec.streams.keys().map(String::as_str)).unwrap_or_else(|| {
                        format!(
                            "streams: {}",
                            spec.streams.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    });
                self.err(
                    self.at(&p("parent")),
                    format!("unknown parent stream `{parent}`"),
                    Some(h),
                );
            }
        }
        // Inherited blocks are checked once at connector level; here only the
        // stream's own blocks, plus templates that depend on the stream.
        match &s.pagination {
            Some(pg) => self.pagination(pg, &p("pagination"), Some(s)),
            None => {
                if let Some(IntOrTemplate::Template(t)) = spec.pagination.page_size() {
                    self.template(t, Scope::Request, &["pagination", "page_size"], Some(s));
                }
            }
        }
        match &s.records {
            Some(r) => self.records(r, &p("records"), Some(s)),
            None => {
                for (k, t) in &spec.records.add_fields {
                    self.template(t, Scope::Record, &["records", "add_fields", k], Some(s));
                }
            }
        }
        if let Some(r) = &s.retry {
            self.retry(r, &p("retry"));
        }
        if let Some(r) = &s.rate_limit {
            self.rate_limit(r, &p("rate_limit"));
        }
        self.reads_inside_records(name, s);
        self.partitions_and_windows(name, s);
        if let Some(inc) = &s.incremental {
            if let Some(sv) = &inc.start_value {
                let at = [base[0], base[1], "incremental", "start_value"];
                let rendered = self.template(sv, Scope::Connection, &at, None);
                if let Some((text, true)) = rendered.filter(|(t, _)| !t.is_empty()) {
                    let ok = match inc.cursor_type {
                        crate::CursorType::Datetime => {
                            crate::datetime::parse_datetime(&text).is_some()
                        }
                        crate::CursorType::Date => crate::datetime::parse_date(&text).is_some(),
                        crate::CursorType::Integer => text.trim().parse::<i128>().is_ok(),
                        crate::CursorType::String => true,
                    };
                    if !ok {
                        let example = match inc.cursor_type {
                            crate::CursorType::Date => "`2024-01-01`",
                            crate::CursorType::Integer => "`0`",
                            _ => "`2024-01-01T00:00:00Z`",
                        };
                        self.err(
                            self.at(&at),
                            format!(
                                "start_value `{text}` is not a {} cursor value; it would be sent as is",
                                match inc.cursor_type {
                                    crate::CursorType::Date => "date",
                                    crate::CursorType::Integer => "integer",
                                    _ => "datetime",
                                }
                            ),
                            Some(format!("write e.g. {example}, or a template over config")),
                        );
                    }
                }
            }
            if let Some(lb) = &inc.lookback {
                self.duration(lb, &[base[0], base[1], "incremental", "lookback"]);
                if matches!(
                    inc.cursor_type,
                    crate::CursorType::Integer | crate::CursorType::String
                ) {
                    self.err(
                        self.at(&[base[0], base[1], "incremental", "lookback"]),
                        "`lookback` applies to `datetime` and `date` cursors only",
                        None,
                    );
                }
            }
        }
    }

    /// `partitions`, `windows`, `response_state` and cursor formats.
    fn partitions_and_windows(&mut self, name: &str, s: &Stream) {
        let base = ["streams", name];
        if let Some(p) = &s.partitions {
            if s.parent.is_some() {
                self.err(
                    self.at(&[base[0], base[1], "partitions"]),
                    format!("stream `{name}` has both `parent` and `partitions`"),
                    Some("a stream's partitions come from its parent's records or from a list, not both".into()),
                );
            }
            if !is_name(&p.name) {
                self.err(
                    self.at(&[base[0], base[1], "partitions", "as"]),
                    format!("`as: {}` is not a snake_case name", p.name),
                    None,
                );
            }
            if p.values.is_none() && p.from.is_empty() {
                self.err(
                    self.at(&[base[0], base[1], "partitions"]),
                    format!("stream `{name}`'s `partitions` have no `values` and no `from`"),
                    Some("add `values: \"{{ config.<list> }}\"`, or `from: [{ stream: <name>, value: \"{{ parent.<field> }}\" }]`".into()),
                );
            }
            for (i, src) in p.from.iter().enumerate() {
                let idx = i.to_string();
                let at = [base[0], base[1], "partitions", "from", idx.as_str()];
                if src.stream == name {
                    self.err(
                        self.at(&[at[0], at[1], at[2], at[3], at[4], "stream"]),
                        format!("stream `{name}` reads its partitions from itself"),
                        None,
                    );
                } else if !self.spec.streams.contains_key(&src.stream) {
                    let h = hint(&src.stream, self.spec.streams.keys().map(String::as_str))
                        .unwrap_or_else(|| {
                            format!(
                                "streams: {}",
                                self.spec
                                    .streams
                                    .keys()
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        });
                    self.err(
                        self.at(&[at[0], at[1], at[2], at[3], at[4], "stream"]),
                        format!("unknown stream `{}` in `partitions.from`", src.stream),
                        Some(h),
                    );
                }
                let at = [at[0], at[1], at[2], at[3], at[4], "value"];
                self.template(&src.value, Scope::Request, &at, Some(s));
            }
            let at = [base[0], base[1], "partitions", "values"];
            if let Some(values) = &p.values
                && let Some((text, true)) = self.template(values, Scope::Connection, &at, None)
            {
                if !text.trim_start().starts_with('[') && !text.is_empty() {
                    self.err(
                        self.at(&at),
                        format!(
                            "partitions.values `{}` renders to `{text}`, not a list",
                            values.as_str()
                        ),
                        Some("declare the config parameter with `type: array`".into()),
                    );
                }
            }
        }
        for (k, p) in &s.response_state {
            self.jsonpath(p, &[base[0], base[1], "response_state", k]);
        }
        let Some(inc) = &s.incremental else { return };
        for (field, f) in [
            ("cursor_format", &inc.cursor_format),
            ("request_format", &inc.request_format),
        ] {
            if let Some(f) = f {
                let known = matches!(
                    f.as_str(),
                    "rfc3339" | "iso8601" | "epoch" | "epoch_ms" | "epoch_us" | "%s"
                );
                let items_ok = chrono::format::StrftimeItems::new(f)
                    .all(|i| !matches!(i, chrono::format::Item::Error));
                if !known && (!items_ok || !f.contains('%')) {
                    self.err(
                        self.at(&[base[0], base[1], "incremental", field]),
                        format!("`{f}` is not a datetime format"),
                        Some("write `rfc3339`, `epoch`, `epoch_ms`, `epoch_us` or a strftime format such as `%Y-%m-%d %H:%M:%S`".into()),
                    );
                }
            }
        }
        if let Some(m) = &inc.min {
            self.template(
                m,
                Scope::Connection,
                &[base[0], base[1], "incremental", "min"],
                None,
            );
        }
        if let Some(r) = &inc.restart_when {
            let at = [base[0], base[1], "incremental", "restart_when"];
            self.expression(r, Scope::Stop, &at, Some(s));
            if s.parent.is_some() || s.partitions.is_some() || inc.windows.is_some() {
                self.err(
                    self.at(&at),
                    format!("stream `{name}` has `restart_when` and partitions (`parent`, `partitions` or `windows`)"),
                    Some("a query restarts from the stream's own cursor: a root stream without windows".into()),
                );
            }
            // A parent is read in full for its children: its queries send
            // no bound to restart from.
            if let Some((child, _)) = self
                .spec
                .streams
                .iter()
                .find(|(_, c)| c.parent_streams().contains(&name))
            {
                self.err(
                    self.at(&at),
                    format!("stream `{name}` has `restart_when` and is the parent of `{child}`"),
                    Some("a parent is read in full for its children, so its queries have no cursor to restart from".into()),
                );
            }
        }
        if let Some(w) = &inc.windows {
            let at = |f: &'static str| -> Vec<&str> {
                vec![base[0], base[1], "incremental", "windows", f]
            };
            if !matches!(
                inc.cursor_type,
                crate::CursorType::Datetime | crate::CursorType::Date
            ) {
                self.err(
                    self.at(&[base[0], base[1], "incremental", "windows"]),
                    "`windows` split a range of time: the cursor must be `datetime` or `date`",
                    None,
                );
            }
            if s.parent.is_some() || s.partitions.is_some() {
                self.err(
                    self.at(&[base[0], base[1], "incremental", "windows"]),
                    format!("stream `{name}` has `windows` and other partitions (`parent` or `partitions`)"),
                    Some("windows partition a root stream's range".into()),
                );
            }
            self.duration(&w.step, &at("step"));
            self.duration(&w.granularity, &at("granularity"));
            if let (Ok(step), Ok(g)) = (w.step.parse(), w.granularity.parse()) {
                if g >= step {
                    self.err(
                        self.at(&at("granularity")),
                        "`granularity` must be shorter than `step`",
                        None,
                    );
                }
            }
            if let Some(e) = &w.end {
                self.template(e, Scope::Connection, &at("end"), None);
            }
            if inc.start_value.is_none() && inc.min.is_none() {
                self.err(
                    self.at(&[base[0], base[1], "incremental", "windows"]),
                    "`windows` need a first lower bound: set `start_value` (or `min`)",
                    Some("e.g. `start_value: \"{{ config.start_date }}\"`".into()),
                );
            }
        }
    }

    /// A cursor or next-URL path that reads inside the records is legal
    /// (Stripe's `$.data[-1].id`); say what it means.
    fn reads_inside_records(&mut self, name: &str, s: &Stream) {
        let spec = self.spec;
        let records = spec.records_of(s);
        let Some(members) = crate::jsonpath_text::member_chain(records.path.as_str()) else {
            return;
        };
        let (pagination, at): (&Pagination, Vec<&str>) = match &s.pagination {
            Some(p) => (p, vec!["streams", name, "pagination"]),
            None => (&spec.pagination, vec!["pagination"]),
        };
        let (field, path) = match pagination {
            Pagination::Cursor {
                cursor_path: Some(p),
                ..
            } => ("cursor_path", p),
            Pagination::NextUrl { next_url_path, .. } => ("next_url_path", next_url_path),
            _ => return,
        };
        if members.is_empty() && !path.as_str().starts_with("$[") {
            return;
        }
        if crate::jsonpath_text::reads_into(&members, path.as_str()) {
            let mut p = at.clone();
            p.push(field);
            self.warn(
                self.at(&p),
                format!(
                    "stream `{name}`: `{field}` `{}` reads inside the records at `{}`: the next page's {} is taken from this page's records (e.g. the last record's id)",
                    path.as_str(),
                    records.path.as_str(),
                    if field == "cursor_path" { "token" } else { "URL" }
                ),
                Some("this is right for APIs like Stripe (`$.data[-1].id`); records of this stream are parsed, not copied raw".into()),
            );
        }
    }

    fn parent_cycles(&mut self) {
        let streams = &self.spec.streams;
        let mut reported = HashSet::new();
        for start in streams.keys() {
            // Depth first over `parent` and `partitions.from`, back to `start`.
            let mut path: Vec<&str> = vec![start.as_str()];
            let mut todo: Vec<(usize, &str)> = streams[start]
                .parent_streams()
                .into_iter()
                .rev()
                .map(|p| (1, p))
                .collect();
            let mut visited: HashSet<&str> = HashSet::new();
            while let Some((depth, cur)) = todo.pop() {
                path.truncate(depth);
                if cur == start && depth == 1 {
                    continue; // names itself: said on its own
                }
                if cur == start {
                    let mut cycle: Vec<&str> = path.clone();
                    cycle.sort();
                    if reported.insert(cycle) {
                        let chain = path
                            .iter()
                            .chain([&cur])
                            .copied()
                            .collect::<Vec<_>>()
                            .join(" -> ");
                        let field = if streams[start].parent.is_some() {
                            "parent"
                        } else {
                            "partitions"
                        };
                        self.err(
                            self.at(&["streams", start, field]),
                            format!("parent streams form a cycle: {chain}"),
                            Some("a stream cannot be its own ancestor".into()),
                        );
                    }
                    break;
                }
                let Some(s) = streams.get(cur) else { continue };
                if !visited.insert(cur) {
                    continue;
                }
                path.push(cur);
                for p in s.parent_streams().into_iter().rev() {
                    todo.push((depth + 1, p));
                }
            }
        }
    }
}

fn collect_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// `config['key']` and `config["key"]` in a template or expression, as
/// `config.key`: minijinja reports only `config` for a subscript, so the
/// key would go unchecked. In a template only the text inside `{{ }}` and
/// `{% %}` is code.
fn subscripted_config_keys(text: &str, is_template: bool) -> Vec<String> {
    let mut code = Vec::new();
    if is_template {
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open..];
            let close = if after.starts_with("{{") {
                "}}"
            } else if after.starts_with("{%") {
                "%}"
            } else {
                rest = &rest[open + 1..];
                continue;
            };
            match after[2..].find(close) {
                Some(end) => {
                    code.push(&after[2..2 + end]);
                    rest = &after[2 + end + 2..];
                }
                None => {
                    code.push(&after[2..]);
                    break;
                }
            }
        }
    } else {
        code.push(text);
    }
    let mut keys = Vec::new();
    for c in code {
        let bytes = c.as_bytes();
        for (at, _) in c.match_indices("config") {
            let word_start = at == 0
                || !(bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b'.');
            if !word_start {
                continue;
            }
            let tail = c[at + "config".len()..].trim_start();
            let Some(tail) = tail.strip_prefix('[') else {
                continue;
            };
            let tail = tail.trim_start();
            let Some(quote) = tail.chars().next().filter(|q| *q == '\'' || *q == '"') else {
                continue;
            };
            let inner = &tail[1..];
            if let Some(end) = inner.find(quote)
                && inner[end + 1..].trim_start().starts_with(']')
            {
                keys.push(format!("config.{}", &inner[..end]));
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::subscripted_config_keys;

    #[test]
    fn subscripts_of_config_read_as_keys() {
        assert_eq!(
            subscripted_config_keys(
                "a {{ config['x'] }} b {% if config[ \"y\" ] %}{% endif %}",
                true
            ),
            vec!["config.x", "config.y"]
        );
        // Outside the tags it is text; other variables and dynamic keys are not config keys.
        assert!(
            subscripted_config_keys("config['x'] {{ myconfig['z'] }} {{ config[k] }}", true)
                .is_empty()
        );
        assert_eq!(
            subscripted_config_keys("config['page_size'] * 2", false),
            vec!["config.page_size"]
        );
    }
}

/// A header name as HTTP allows it (RFC 9110 token characters), checked
/// without an HTTP crate: connector-spec does no IO.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A path of owned segments as the `&[&str]` the locator takes.
fn refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}
