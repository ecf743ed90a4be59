//! Auth-protected endpoints (`/auth/*`), the OAuth 2 token endpoint and the redirects.
//!
//! Every protected endpoint serves the same as `/gen/offset` once the credentials check out,
//! and answers `401` with a `WWW-Authenticate` header otherwise.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

use crate::generated::{after_page, offset_page};
use crate::state::AppState;
use crate::util::{Params, base64_decode, json, lock};
use crate::{API_KEY, BASIC_PASS, BASIC_USER, CLIENT_ID, CLIENT_SECRET, DD_APPLICATION_KEY, TOKEN};

/// `/auth/*` and `/redirect/same` (data endpoints: they get latency, rate limits and faults).
pub(crate) fn protected_routes() -> Router<AppState> {
    Router::new()
        .route("/auth/bearer", get(bearer))
        .route("/auth/api_key_header", get(api_key_header))
        .route("/auth/api_key_query", get(api_key_query))
        .route("/auth/basic", get(basic))
        .route("/auth/custom", get(custom))
        .route("/auth/datadog", get(datadog))
        .route("/auth/oauth2", get(oauth2))
        .route("/auth/redirect_other", get(redirect_other))
        .route("/auth/next_other", get(next_other))
        .route("/redirect/same", get(redirect_same))
}

/// `POST /oauth/token` (not a data endpoint: no faults, no rate limit).
pub(crate) fn token_routes() -> Router<AppState> {
    Router::new().route("/oauth/token", post(token))
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The credentials of `Authorization: <scheme> <credentials>` (scheme case-insensitive).
fn authorization<'a>(h: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let v = header_str(h, "authorization")?;
    let (s, rest) = v.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// `(user, password)` of HTTP basic auth.
fn basic_credentials(h: &HeaderMap) -> Option<(String, String)> {
    let raw = base64_decode(authorization(h, "Basic")?)?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn unauthorized(st: &AppState, challenge: &'static str, message: &str) -> Response {
    st.shared.log.count(|c| c.auth_failures += 1);
    let mut resp = json(
        StatusCode::UNAUTHORIZED,
        &json!({ "error": "unauthorized", "message": message }),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    resp
}

fn serve(st: &AppState, q: Option<&str>) -> Response {
    offset_page(st, &Params::parse(q)).unwrap_or_else(|e| e)
}

fn check_bearer(st: &AppState, h: &HeaderMap) -> Result<(), Response> {
    match authorization(h, "Bearer") {
        Some(TOKEN) => Ok(()),
        Some(_) => Err(unauthorized(
            st,
            "Bearer realm=\"mock-api\", error=\"invalid_token\"",
            "invalid bearer token",
        )),
        None => Err(unauthorized(
            st,
            "Bearer realm=\"mock-api\"",
            "missing bearer token",
        )),
    }
}

async fn bearer(State(st): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    match check_bearer(&st, &h) {
        Ok(()) => serve(&st, q.as_deref()),
        Err(r) => r,
    }
}

async fn api_key_header(
    State(st): State<AppState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if header_str(&h, "x-api-key") == Some(API_KEY) {
        serve(&st, q.as_deref())
    } else {
        unauthorized(
            &st,
            "ApiKey realm=\"mock-api\", header=\"X-API-Key\"",
            "missing or invalid X-API-Key header",
        )
    }
}

async fn api_key_query(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    if Params::parse(q.as_deref()).get("api_key") == Some(API_KEY) {
        serve(&st, q.as_deref())
    } else {
        unauthorized(
            &st,
            "ApiKey realm=\"mock-api\", query=\"api_key\"",
            "missing or invalid api_key query parameter",
        )
    }
}

async fn basic(State(st): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    match basic_credentials(&h) {
        Some((u, p)) if u == BASIC_USER && p == BASIC_PASS => serve(&st, q.as_deref()),
        _ => unauthorized(
            &st,
            "Basic realm=\"mock-api\", charset=\"UTF-8\"",
            "missing or invalid basic credentials",
        ),
    }
}

async fn custom(State(st): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let expected = format!("Token {API_KEY}");
    if header_str(&h, "x-custom-auth") == Some(expected.as_str()) {
        serve(&st, q.as_deref())
    } else {
        unauthorized(
            &st,
            "Token realm=\"mock-api\", header=\"X-Custom-Auth\"",
            "missing or invalid X-Custom-Auth header",
        )
    }
}

/// Datadog's two keys: `DD-API-KEY` and `DD-APPLICATION-KEY`; Datadog
/// answers a missing or wrong one with `403 {"errors": ["Forbidden"]}`.
async fn datadog(State(st): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if header_str(&h, "dd-api-key") == Some(API_KEY)
        && header_str(&h, "dd-application-key") == Some(DD_APPLICATION_KEY)
    {
        serve(&st, q.as_deref())
    } else {
        st.shared.log.count(|c| c.auth_failures += 1);
        json(StatusCode::FORBIDDEN, &json!({ "errors": ["Forbidden"] }))
    }
}

/// `GET /auth/oauth2`, also served by the other origin (a token answer's
/// `instance_url`).
pub(crate) async fn oauth2_route(st: State<AppState>, h: HeaderMap, q: RawQuery) -> Response {
    oauth2(st, h, q).await
}

async fn oauth2(State(st): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let Some(token) = authorization(&h, "Bearer") else {
        return unauthorized(&st, "Bearer realm=\"mock-api\"", "missing bearer token");
    };
    let issued = lock(&st.shared.tokens).get(token).copied();
    match issued {
        Some(at) if at.elapsed() < st.shared.config.oauth_token_ttl => serve(&st, q.as_deref()),
        Some(_) => unauthorized(
            &st,
            "Bearer realm=\"mock-api\", error=\"invalid_token\", error_description=\"token expired\"",
            "access token expired",
        ),
        None => unauthorized(
            &st,
            "Bearer realm=\"mock-api\", error=\"invalid_token\"",
            "unknown access token",
        ),
    }
}

fn redirect(location: String) -> Response {
    let mut resp = json(StatusCode::FOUND, &json!({ "redirect": location }));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn with_query(path: String, q: Option<&str>) -> String {
    match q {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    }
}

async fn redirect_other(
    State(st): State<AppState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match check_bearer(&st, &h) {
        Ok(()) => redirect(with_query(
            format!("{}/gen/offset", st.shared.other_url),
            q.as_deref(),
        )),
        Err(r) => r,
    }
}

async fn redirect_same(RawQuery(q): RawQuery) -> Response {
    redirect(with_query("/gen/offset".to_string(), q.as_deref()))
}

async fn next_other(State(st): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = check_bearer(&st, &h) {
        return r;
    }
    match after_page(&st, &Params::parse(q.as_deref())) {
        Ok((data, next)) => {
            let next = next.map(|n| format!("{}/gen/next_absolute?{n}", st.shared.other_url));
            json(
                StatusCode::OK,
                &json!({ "data": data, "links": { "next": next } }),
            )
        }
        Err(r) => r,
    }
}

fn oauth_error(st: &AppState, status: StatusCode, error: &str, description: &str) -> Response {
    if status == StatusCode::UNAUTHORIZED {
        st.shared.log.count(|c| c.auth_failures += 1);
    }
    let mut resp = json(
        status,
        &json!({ "error": error, "error_description": description }),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"mock-api\""),
        );
    }
    resp
}

/// `POST /oauth/token`: client credentials (form fields or HTTP basic) or refresh token.
async fn token(State(st): State<AppState>, h: HeaderMap, body: Bytes) -> Response {
    let is_json = header_str(&h, "content-type").is_some_and(|c| c.contains("json"));
    let form: Vec<(String, String)> = if is_json {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| {
                    let v = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    (k, v)
                })
                .collect(),
            _ => {
                return oauth_error(
                    &st,
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "body is not a JSON object",
                );
            }
        }
    } else {
        form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    let client = basic_credentials(&h).or_else(|| {
        field("client_id").map(|id| {
            (
                id.to_string(),
                field("client_secret").unwrap_or("").to_string(),
            )
        })
    });
    let client_ok = client
        .as_ref()
        .is_some_and(|(id, secret)| id == CLIENT_ID && secret == CLIENT_SECRET);

    match field("grant_type") {
        Some("client_credentials") => {
            if !client_ok {
                return oauth_error(
                    &st,
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication failed",
                );
            }
        }
        Some("refresh_token") => {
            if client.is_some() && !client_ok {
                return oauth_error(
                    &st,
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication failed",
                );
            }
            let current = lock(&st.shared.refresh_token).clone();
            if field("refresh_token") != Some(current.as_str()) {
                return oauth_error(
                    &st,
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown refresh token",
                );
            }
        }
        Some(other) => {
            return oauth_error(
                &st,
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type `{other}` is not supported"),
            );
        }
        None => {
            return oauth_error(
                &st,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "missing grant_type",
            );
        }
    }

    let token: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    lock(&st.shared.tokens).insert(token.clone(), Instant::now());
    st.shared.log.count(|c| c.tokens_issued += 1);
    let config = &st.shared.config;
    let mut body = if config.oauth_salesforce {
        // Salesforce's answer: the org's own host, and no `expires_in`.
        json!({
            "access_token": token,
            "instance_url": st.shared.other_url,
            "id": "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
            "token_type": "Bearer",
            "issued_at": "1700000000000",
            "signature": "0CmxinZir53Yex7nE0TD+zMpvIWYGb/bdJh6XfOH6EQ=",
        })
    } else {
        json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": config.oauth_token_ttl.as_secs(),
        })
    };
    if config.oauth_rotate_refresh_tokens && field("grant_type") == Some("refresh_token") {
        let next: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        let next = format!("refresh-{next}");
        *lock(&st.shared.refresh_token) = next.clone();
        body["refresh_token"] = Value::String(next);
    }
    let mut resp = json(StatusCode::OK, &body);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
