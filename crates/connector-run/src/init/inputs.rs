//! `init`'s inputs turned into spec parts: the URL into `base_url` (a config
//! parameter with a default), a stream path and params; `--header`s into
//! `headers` or `auth`; `--set`s into config parameters. Anything that looks
//! like a credential becomes a `secret: true` parameter referenced by
//! template, and its value is kept only for probing and redaction.

use connector_engine::config::env_name;
use connector_engine::secret::is_sensitive_name;
use serde_json::Value;
use url::Url;

/// A config parameter to declare.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    pub key: String,
    /// `string`, `integer` or `boolean`.
    pub kind: &'static str,
    pub default: Option<Value>,
    pub secret: bool,
    pub description: String,
}

/// The auth block to write.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthChoice {
    None,
    Bearer {
        key: String,
    },
    ApiKey {
        in_query: bool,
        name: String,
        prefix: Option<String>,
        key: String,
    },
    CustomHeader {
        name: String,
        value: String,
    },
}

/// Everything `init` was told, as spec parts plus what to probe with.
#[derive(Debug)]
pub struct Inputs {
    pub config: Vec<ConfigEntry>,
    pub auth: AuthChoice,
    /// Why that auth, for the comment.
    pub auth_why: Option<String>,
    /// Connector headers: name → template or literal.
    pub headers: Vec<(String, String)>,
    /// Stream query params from the URL: name → template or literal.
    pub params: Vec<(String, String)>,
    /// Stream path (template).
    pub path: String,
    /// The URL to probe, rendered, credentials included.
    pub probe_url: Url,
    /// The headers to probe with, rendered, credentials included.
    pub probe_headers: Vec<(String, String)>,
    /// Credential values, for the redactor.
    pub secrets: Vec<String>,
}

fn has_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

fn is_key(k: &str) -> bool {
    k.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Config key for a header or parameter name: `X-API-Key` → `api_key`.
fn key_for(name: &str) -> String {
    let mut k = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            k.push(c.to_ascii_lowercase());
        } else if !k.ends_with('_') {
            k.push('_');
        }
    }
    let k = k.trim_matches('_');
    let k = k.strip_prefix("x_").unwrap_or(k);
    if k.is_empty() || k.starts_with(|c: char| c.is_ascii_digit()) {
        format!("credential_{k}").trim_end_matches('_').to_string()
    } else {
        k.to_string()
    }
}

/// `Token abc` → (`Token `, `abc`): a short scheme word before the secret.
fn split_scheme(v: &str) -> (Option<String>, &str) {
    match v.split_once(' ') {
        Some((word, rest))
            if !word.is_empty()
                && word.len() <= 12
                && word.chars().all(|c| c.is_ascii_alphabetic())
                && !rest.trim().is_empty() =>
        {
            (Some(format!("{word} ")), rest.trim())
        }
        _ => (None, v),
    }
}

struct Builder<'a> {
    connector: &'a str,
    config: Vec<ConfigEntry>,
    values: Vec<(String, String)>,
    secrets: Vec<String>,
    auth: AuthChoice,
    auth_why: Option<String>,
}

impl Builder<'_> {
    fn unique(&self, key: String) -> String {
        let taken = |k: &str| self.config.iter().any(|c| c.key == k);
        if !taken(&key) {
            return key;
        }
        (2..)
            .map(|i| format!("{key}_{i}"))
            .find(|k| !taken(k))
            .unwrap_or(key)
    }

    /// Declares a secret parameter holding `value`; returns its key.
    fn secret(&mut self, key: String, value: &str, sent_as: &str) -> String {
        let key = self.unique(key);
        let env = env_name(self.connector, &key);
        self.config.push(ConfigEntry {
            description: format!(
                "Credential sent as {sent_as}. Set ${env} or `--set {key}=…`; it is never written here."
            ),
            key: key.clone(),
            kind: "string",
            default: None,
            secret: true,
        });
        self.secrets.push(value.to_string());
        key
    }

    /// A template that already reads config: its parameters become secret.
    fn make_secret(&mut self, template: &str) {
        for k in crate::context::config_refs(template) {
            if let Some(c) = self.config.iter_mut().find(|c| c.key == k)
                && !c.secret
            {
                c.secret = true;
                c.kind = "string";
                match c.default.take() {
                    Some(Value::String(v)) => self.secrets.push(v),
                    Some(v) => self.secrets.push(v.to_string()),
                    None => {}
                }
            }
        }
    }

    /// Substitutes `{{ config.KEY }}` with `--set` values, for probing.
    fn render(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let end = rest[i..]
                .find("}}")
                .ok_or_else(|| format!("`{text}`: `{{{{` without `}}}}`"))?;
            let expr = rest[i + 2..i + end].trim();
            let key = expr.strip_prefix("config.").unwrap_or("");
            let value = self
                .values
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| {
                    format!(
                        "`{{{{ {expr} }}}}`: init renders only `{{{{ config.KEY }}}}` for a KEY given with `--set KEY=VALUE`"
                    )
                })?;
            out.push_str(value);
            rest = &rest[i + end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn take_auth(&mut self, auth: AuthChoice, why: String) -> bool {
        if self.auth != AuthChoice::None {
            return false;
        }
        self.auth = auth;
        self.auth_why = Some(why);
        true
    }
}

/// Parses `--set`, the URL and `--header`s.
pub fn parse(
    connector: &str,
    url: &str,
    header_args: &[String],
    set_args: &[String],
) -> Result<Inputs, String> {
    let mut b = Builder {
        connector,
        config: Vec::new(),
        values: Vec::new(),
        secrets: Vec::new(),
        auth: AuthChoice::None,
        auth_why: None,
    };
    let mut base_url_default = None;
    for s in set_args {
        let (k, v) = s
            .split_once('=')
            .map(|(k, v)| (k.trim(), v))
            .ok_or_else(|| format!("`--set {s}`: expected KEY=VALUE"))?;
        if !is_key(k) {
            return Err(format!(
                "`--set {k}=…`: config keys are snake_case, e.g. `owner` or `start_date`"
            ));
        }
        if k == "base_url" {
            base_url_default = Some(v.to_string());
            continue;
        }
        b.values.push((k.to_string(), v.to_string()));
        if is_sensitive_name(k) {
            b.secret(k.to_string(), v, &format!("`{{{{ config.{k} }}}}`"));
            continue;
        }
        let (kind, default) = if let Ok(n) = v.parse::<i64>() {
            ("integer", Value::from(n))
        } else if let Ok(t) = v.parse::<bool>() {
            ("boolean", Value::Bool(t))
        } else {
            ("string", Value::String(v.to_string()))
        };
        b.config.push(ConfigEntry {
            key: k.to_string(),
            kind,
            default: Some(default),
            secret: false,
            description: format!("Given as `--set {k}=…` to init."),
        });
    }

    let rendered = b.render(url)?;
    let probe_url = Url::parse(&rendered).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(probe_url.scheme(), "http" | "https") || !probe_url.has_host() {
        return Err(format!("`{url}`: expected an http:// or https:// URL"));
    }
    // Split the raw text so that templates in the path and query survive.
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    if has_template(&url[..authority_end]) {
        return Err(
            "templates are not supported in the host; put the host in the URL and change it later with `--set base_url=…`".into(),
        );
    }
    let rest = url[authority_end..].split('#').next().unwrap_or("");
    let (raw_path, raw_query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = if raw_path.is_empty() { "/" } else { raw_path }.to_string();
    let origin = probe_url.origin().ascii_serialization();
    b.config.insert(
        0,
        ConfigEntry {
            key: "base_url".into(),
            kind: "string",
            default: Some(Value::String(base_url_default.unwrap_or(origin))),
            secret: false,
            description: "API root. Point it elsewhere with `--set base_url=…`.".into(),
        },
    );

    let mut params = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        if !is_sensitive_name(&k) {
            params.push((k, v));
        } else if has_template(&v) {
            b.make_secret(&v);
            params.push((k, v));
        } else {
            let key = b.secret(key_for(&k), &v, &format!("the `{k}` query parameter"));
            let auth = AuthChoice::ApiKey {
                in_query: true,
                name: k.clone(),
                prefix: None,
                key: key.clone(),
            };
            let why = format!(
                "api_key — the URL has the query parameter `{k}`; its value is the secret config `{key}`"
            );
            if !b.take_auth(auth, why) {
                params.push((k, format!("{{{{ config.{key} }}}}")));
            }
        }
    }

    let mut headers = Vec::new();
    let mut probe_headers = Vec::new();
    for h in header_args {
        let (name, value) = h
            .split_once(':')
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .filter(|(k, _)| !k.is_empty() && !k.contains(' '))
            .ok_or_else(|| {
                format!("`--header {h}`: expected `Name: value`, e.g. `Accept: application/json`")
            })?;
        probe_headers.push((name.clone(), b.render(&value)?));
        if !is_sensitive_name(&name) {
            headers.push((name, value));
            continue;
        }
        if has_template(&value) {
            b.make_secret(&value);
            headers.push((name, value));
            continue;
        }
        let (scheme, secret) = split_scheme(&value);
        let shown = format!(
            "`--header '{name}: {}…'`",
            scheme.clone().unwrap_or_default()
        );
        let taken = if name.eq_ignore_ascii_case("authorization") {
            match scheme.as_deref() {
                Some(s) if s.eq_ignore_ascii_case("bearer ") => {
                    let key = b.secret("api_token".into(), secret, "`Authorization: Bearer …`");
                    b.secrets.push(value.clone());
                    let why = format!(
                        "bearer — {shown} was given; the token is the secret config `{key}`"
                    );
                    Some((AuthChoice::Bearer { key }, why))
                }
                _ => {
                    let key_name = match scheme.as_deref() {
                        Some(s) if s.eq_ignore_ascii_case("basic ") => "basic_credentials",
                        Some(_) => "api_token",
                        None => "authorization",
                    };
                    let key = b.secret(key_name.into(), secret, "the `Authorization` header");
                    b.secrets.push(value.clone());
                    let value = format!(
                        "{}{{{{ config.{key} }}}}",
                        scheme.clone().unwrap_or_default()
                    );
                    let why = format!(
                        "custom_header — {shown} was given; the credential is the secret config `{key}`{}",
                        if key_name == "basic_credentials" {
                            " (still base64-encoded; `type: basic` with `username` and `password` is the alternative)"
                        } else {
                            ""
                        }
                    );
                    Some((
                        AuthChoice::CustomHeader {
                            name: name.clone(),
                            value,
                        },
                        why,
                    ))
                }
            }
        } else {
            let key = b.secret(key_for(&name), secret, &format!("the `{name}` header"));
            b.secrets.push(value.clone());
            let why = format!("api_key — {shown} was given; the key is the secret config `{key}`");
            Some((
                AuthChoice::ApiKey {
                    in_query: false,
                    name: name.clone(),
                    prefix: scheme.clone(),
                    key,
                },
                why,
            ))
        };
        if let Some((auth, why)) = taken {
            let template = match &auth {
                AuthChoice::Bearer { key } => format!("Bearer {{{{ config.{key} }}}}"),
                AuthChoice::ApiKey { prefix, key, .. } => {
                    format!(
                        "{}{{{{ config.{key} }}}}",
                        prefix.clone().unwrap_or_default()
                    )
                }
                AuthChoice::CustomHeader { value, .. } => value.clone(),
                AuthChoice::None => String::new(),
            };
            if !b.take_auth(auth, why) {
                headers.push((name, template));
            }
        }
    }
    let inputs = Inputs {
        config: b.config,
        auth: b.auth,
        auth_why: b.auth_why,
        headers,
        params,
        path,
        probe_url,
        probe_headers,
        secrets: b.secrets,
    };
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_secret_params() {
        let i = parse(
            "x",
            "https://api.test/v1/items?api_key=k3y&q=1",
            &[
                "Authorization: Bearer t0k".into(),
                "Accept: application/json".into(),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(i.path, "/v1/items");
        assert!(matches!(i.auth, AuthChoice::ApiKey { in_query: true, .. }));
        assert_eq!(
            i.headers,
            vec![
                (
                    "Authorization".to_string(),
                    "Bearer {{ config.api_token }}".to_string()
                ),
                ("Accept".into(), "application/json".into()),
            ]
        );
        assert_eq!(i.params, vec![("q".to_string(), "1".to_string())]);
        assert!(
            i.config
                .iter()
                .filter(|c| c.secret)
                .all(|c| c.default.is_none())
        );
        assert!(i.secrets.contains(&"k3y".to_string()) && i.secrets.contains(&"t0k".to_string()));
    }

    #[test]
    fn set_values_render_templates() {
        let i = parse(
            "x",
            "https://api.test/repos/{{ config.owner }}/issues",
            &[],
            &["owner=rust-lang".into()],
        )
        .unwrap();
        assert_eq!(i.probe_url.path(), "/repos/rust-lang/issues");
        assert_eq!(i.path, "/repos/{{ config.owner }}/issues");
        assert_eq!(key_for("X-API-Key"), "api_key");
    }
}
