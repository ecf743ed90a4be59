//! Authenticators → our `auth`.
//!
//! `BearerAuthenticator` → `bearer`; `ApiKeyAuthenticator` (header or
//! request parameter) → `api_key`; `BasicHttpAuthenticator` → `basic`;
//! `OAuthAuthenticator` (refresh_token or client_credentials grant) →
//! `oauth2`, or `bearer` when it only carries an access token;
//! `NoAuth` → `none`. A `SelectiveAuthenticator` picks one of its options
//! from a config value: we translate one option (the config's default if it
//! names one, else the first that is not OAuth, else the first) and note
//! the others. `RateLimitedMultipleTokenAuthenticator` becomes `bearer`
//! with the first token. Session tokens, JWTs and custom authenticators
//! are blocked.

use super::Cx;
use super::interpolation::{Scope, Vars};
use super::notes::{Block, Res};
use super::refs::{NodeExt, parameters_of};
use crate::node::Node;
use serde_json::{Value as J, json};

fn vars(node: &Node) -> Vars {
    let mut v = Vars::new(Scope::Connection, node.pos);
    v.params = parameters_of(node);
    v
}

fn field(cx: &mut Cx, node: &Node, key: &str) -> Res<Option<String>> {
    match node.get(key) {
        None => Ok(None),
        Some(n) => {
            let text = n.scalar_text().ok_or_else(|| {
                Block::new(
                    n.pos,
                    "auth: a value that is not text",
                    format!("`{key}` is not text"),
                )
            })?;
            let v = Vars {
                pos: n.pos,
                ..vars(node)
            };
            cx.tpl(&text, &v).map(Some)
        }
    }
}

/// A credential: a literal (Bamboo's password `x`) is written as a
/// template, as our spec wants credentials to be.
fn credential(t: String) -> String {
    if t.contains("{{") || t.contains("{%") {
        t
    } else {
        format!("{{{{ {} }}}}", super::jinja::quote_str(&t))
    }
}

fn req(cx: &mut Cx, node: &Node, key: &str, ty: &str) -> Res<String> {
    field(cx, node, key)?.ok_or_else(|| {
        Block::new(
            node.pos,
            format!("auth: {ty} without `{key}`"),
            format!("{ty} has no `{key}`"),
        )
    })
}

/// The `auth` block of an authenticator.
pub(crate) fn authenticator(cx: &mut Cx, node: &Node) -> Res<J> {
    let ty = node.type_name().unwrap_or("");
    match ty {
        "NoAuth" => Ok(json!({"type": "none"})),
        "BearerAuthenticator" => {
            Ok(json!({"type": "bearer", "token": credential(req(cx, node, "api_token", ty)?)}))
        }
        "BasicHttpAuthenticator" => {
            let mut a = json!({"type": "basic", "username": req(cx, node, "username", ty)?});
            if let Some(p) = field(cx, node, "password")?.filter(|p| !p.is_empty()) {
                a["password"] = json!(credential(p));
            }
            Ok(a)
        }
        "ApiKeyAuthenticator" => {
            let value = credential(req(cx, node, "api_token", ty)?);
            let (location, name) = match (node.get("inject_into"), node.str_at("header")) {
                (Some(opt), _) => {
                    let inject = opt.str_at("inject_into").unwrap_or("");
                    let name = match opt.get("field_name") {
                        Some(n) => {
                            let t = n.scalar_text().unwrap_or_default();
                            cx.tpl(
                                &t,
                                &Vars {
                                    pos: n.pos,
                                    ..vars(opt)
                                },
                            )?
                        }
                        None => {
                            return Err(Block::new(
                                opt.pos,
                                "auth: ApiKeyAuthenticator without field_name",
                                "the API key's `inject_into` has no `field_name`",
                            ));
                        }
                    };
                    let loc = match inject {
                        "header" => "header",
                        "request_parameter" => "query",
                        other => {
                            return Err(Block::new(
                                opt.pos,
                                format!("auth: API key in `{other}`"),
                                format!(
                                    "an API key injected into `{other}`; ours go in a header or the query"
                                ),
                            ));
                        }
                    };
                    (loc, name)
                }
                (None, Some(h)) => ("header", h.to_string()),
                (None, None) => ("header", "Authorization".to_string()),
            };
            if name.contains("{{") {
                return Err(Block::new(
                    node.pos,
                    "auth: templated API key name",
                    "the API key's header name is a template",
                ));
            }
            Ok(json!({"type": "api_key", "in": location, "name": name, "value": value}))
        }
        "OAuthAuthenticator" => oauth(cx, node),
        "SelectiveAuthenticator" => selective(cx, node),
        "RateLimitedMultipleTokenAuthenticator" => {
            let tokens = node
                .get("tokens")
                .ok_or_else(|| Block::new(node.pos, "auth: tokens", "no `tokens`"))?;
            let text = match tokens.as_str() {
                Some(t) => t.to_string(),
                None => tokens
                    .items()
                    .first()
                    .and_then(|n| n.scalar_text())
                    .unwrap_or_default(),
            };
            // `{{ config.tokens.split(',') }}` and friends: the first token.
            let delim = node.str_at("token_delimiter").unwrap_or(",").to_string();
            let t = cx.tpl(
                &text,
                &Vars {
                    pos: tokens.pos,
                    ..vars(node)
                },
            )?;
            let t = if let Some(inner) = t.strip_prefix("{{ ").and_then(|s| s.strip_suffix(" }}")) {
                let inner = inner
                    .trim_end_matches(&format!(" | split('{delim}')"))
                    .to_string();
                format!("{{{{ ({inner} | split('{delim}') | list | first) | trim }}}}")
            } else {
                t
            };
            cx.approx(node.pos, "RateLimitedMultipleTokenAuthenticator: the first token only, without rotation or per-token quotas");
            let header = node.str_at("header").unwrap_or("Authorization");
            let method = node.str_at("auth_method").unwrap_or("Bearer");
            if header == "Authorization" && method == "Bearer" {
                Ok(json!({"type": "bearer", "token": t}))
            } else {
                Ok(
                    json!({"type": "custom_header", "name": header, "value": format!("{method} {t}").trim()}),
                )
            }
        }
        "" => Err(Block::new(
            node.pos,
            "auth: untyped authenticator",
            "an authenticator without a type",
        )),
        other => Err(Block::unsupported(
            node,
            other,
            "auth:",
            "the authenticator",
        )),
    }
}

fn oauth(cx: &mut Cx, node: &Node) -> Res<J> {
    let ty = "OAuthAuthenticator";
    for (k, d) in [
        ("client_id_name", "client_id"),
        ("client_secret_name", "client_secret"),
        ("refresh_token_name", "refresh_token"),
        ("access_token_name", "access_token"),
        ("expires_in_name", "expires_in"),
        ("grant_type_name", "grant_type"),
    ] {
        if let Some(v) = node.str_at(k).filter(|v| *v != d) {
            return Err(Block::new(
                node.pos,
                format!("auth: OAuth `{k}`"),
                format!("OAuth with `{k}: {v}`; our token request uses the standard names"),
            ));
        }
    }
    if node.bool_at("send_refresh_request_as_query_params") == Some(true) {
        return Err(Block::new(
            node.pos,
            "auth: OAuth refresh in the query",
            "the token request's fields go in the query",
        ));
    }
    if node.get("profile_assertion").is_some()
        || node.bool_at("use_profile_assertion") == Some(true)
    {
        return Err(Block::new(
            node.pos,
            "auth: OAuth profile assertion (JWT)",
            "OAuth with a JWT profile assertion",
        ));
    }
    let endpoint = field(cx, node, "token_refresh_endpoint")?;
    let grant = field(cx, node, "grant_type")?.unwrap_or_else(|| "refresh_token".into());
    let Some(token_url) = endpoint else {
        if let Some(t) = field(cx, node, "access_token_value")? {
            return Ok(json!({"type": "bearer", "token": t}));
        }
        return Err(Block::new(
            node.pos,
            "auth: OAuth without a token endpoint",
            "OAuth without `token_refresh_endpoint`",
        ));
    };
    let grant = match grant.as_str() {
        "refresh_token" => "refresh_token",
        "client_credentials" => "client_credentials",
        other => {
            return Err(Block::new(
                node.pos,
                format!("auth: OAuth grant {other}"),
                format!("the OAuth grant `{other}`"),
            ));
        }
    };
    let mut a = json!({
        "type": "oauth2",
        "grant_type": grant,
        "token_url": token_url,
        "client_id": req(cx, node, "client_id", ty)?,
        "client_secret": credential(req(cx, node, "client_secret", ty)?),
    });
    if grant == "refresh_token" {
        a["refresh_token"] = json!(credential(req(cx, node, "refresh_token", ty)?));
    }
    if let Some(scopes) = node.get("scopes") {
        let list: Vec<String> = scopes
            .items()
            .iter()
            .filter_map(|n| n.scalar_text())
            .collect();
        if !list.is_empty() {
            a["scopes"] = json!(list);
        }
    }
    if let Some(body) = node.get("refresh_request_body") {
        let mut extra = serde_json::Map::new();
        for (k, v) in body.entries() {
            let Some(text) = v.scalar_text() else {
                return Err(Block::new(
                    v.pos,
                    "auth: OAuth refresh body with nested values",
                    "a nested `refresh_request_body` value",
                ));
            };
            if ["grant_type", "client_id", "client_secret", "refresh_token"]
                .contains(&k.name.as_str())
            {
                continue;
            }
            extra.insert(
                k.name.clone(),
                json!(cx.tpl(
                    &text,
                    &Vars {
                        pos: v.pos,
                        ..vars(node)
                    }
                )?),
            );
        }
        if !extra.is_empty() {
            a["extra_params"] = J::Object(extra);
        }
    }
    if node.get("refresh_request_headers").is_some() {
        cx.approx(
            node.pos,
            "OAuth `refresh_request_headers` are not sent to the token endpoint",
        );
    }
    if node.get("refresh_token_updater").is_some() {
        cx.approx(node.pos, "OAuth `refresh_token_updater`: a rotated refresh token is not written back to the config");
    }
    Ok(a)
}

fn selective(cx: &mut Cx, node: &Node) -> Res<J> {
    let path: Vec<String> = node
        .get("authenticator_selection_path")
        .map(|p| p.items().iter().filter_map(|n| n.scalar_text()).collect())
        .unwrap_or_default();
    let options = node.get("authenticators").ok_or_else(|| {
        Block::new(
            node.pos,
            "auth: SelectiveAuthenticator without options",
            "no `authenticators`",
        )
    })?;
    let default = match cx.config.lookup(&path, node.pos) {
        super::config::Lookup::Param(name, _, _) => cx
            .config
            .default_of(&name)
            .and_then(|d| d.as_str())
            .map(str::to_string),
        super::config::Lookup::Object => None,
    };
    let mut order: Vec<&(crate::node::Key, Node)> = options.entries().iter().collect();
    order.sort_by_key(|(k, n)| {
        let oauth = n.type_name() == Some("OAuthAuthenticator");
        (Some(k.name.as_str()) != default.as_deref(), oauth)
    });
    if cx.use_select {
        return select(cx, node, &path, order);
    }
    let mut first_err = None;
    for (k, n) in order {
        let before = cx.notes.list.len();
        match authenticator(cx, n) {
            Ok(a) => {
                let others: Vec<&str> = options
                    .entries()
                    .iter()
                    .map(|(k, _)| k.name.as_str())
                    .filter(|o| *o != k.name)
                    .collect();
                cx.approx(
                    node.pos,
                    format!(
                        "SelectiveAuthenticator: only the `{}` option is translated (config `{}` = `{}`); not {}",
                        k.name,
                        path.join("."),
                        k.name,
                        others.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")
                    ),
                );
                return Ok(a);
            }
            Err(e) => {
                cx.notes.list.truncate(before);
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| {
        Block::new(
            node.pos,
            "auth: SelectiveAuthenticator",
            "no option translates",
        )
    }))
}

/// A `SelectiveAuthenticator` as our `select`: every option that
/// translates, picked by the config value at the selection path (its
/// default: the preferred option).
fn select(
    cx: &mut Cx,
    node: &Node,
    path: &[String],
    order: Vec<&(crate::node::Key, Node)>,
) -> Res<J> {
    let mut options = serde_json::Map::new();
    let mut first_err = None;
    for (k, n) in &order {
        let before = cx.notes.list.len();
        match authenticator(cx, n) {
            Ok(a) => {
                options.insert(k.name.clone(), a);
            }
            Err(e) => {
                cx.notes.list.truncate(before);
                cx.approx(
                    n.pos,
                    format!(
                        "the `{}` option of the SelectiveAuthenticator is left out: {}",
                        k.name, e.detail
                    ),
                );
                first_err.get_or_insert(e);
            }
        }
    }
    let Some(first) = options.keys().next().cloned() else {
        return Err(first_err.unwrap_or_else(|| {
            Block::new(
                node.pos,
                "auth: SelectiveAuthenticator",
                "no option translates",
            )
        }));
    };
    if options.len() == 1 {
        return Ok(options.remove(&first).unwrap_or_default());
    }
    let name = match cx.config.lookup(path, node.pos) {
        super::config::Lookup::Param(name, _, _) => name,
        super::config::Lookup::Object => {
            return Err(Block::new(
                node.pos,
                "auth: SelectiveAuthenticator over a config object",
                "the selection path is an object",
            ));
        }
    };
    if let Some(J::Object(p)) = cx.config.params.get_mut(&name) {
        let fits = p
            .get("enum")
            .and_then(|e| e.as_array())
            .is_none_or(|e| e.contains(&json!(first)));
        if p.get("default").is_none() && fits {
            p.remove("required");
            p.insert("default".into(), json!(first));
        }
    }
    cx.info(
        node.pos,
        format!("SelectiveAuthenticator: `select` by config `{name}` (default `{first}`)"),
    );
    Ok(json!({"type": "select", "value": format!("{{{{ config.{name} }}}}"), "options": options}))
}
