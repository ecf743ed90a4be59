//! `type: oauth2`: client_credentials and refresh_token grants. The access
//! token is fetched on first use, cached, refreshed `refresh_before` ahead of
//! its expiry, and dropped after a 401 so the request can retry once.
//!
//! The client authenticates to the token endpoint in the form
//! (`client_secret_post`) or with HTTP Basic (`client_secret_basic`), with
//! any `token_headers`. A provider that rotates refresh tokens sends a new
//! one with each access token; it replaces the old one for the rest of the
//! run and, with `refresh_token_file`, in that file (written atomically,
//! mode 0600), which the next run reads first. A token response may also
//! name the API's own base URL (`base_url_path`, Salesforce's
//! `instance_url`).

use crate::error::Result;
use crate::template::{Context, TemplatesBuilder, render_once};
use connector_spec::Auth;
use secrecy::{ExposeSecret, SecretString};
use serde_json_path::JsonPath;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long before expiry a token is renewed: `refresh_before`, but never
/// more than half its lifetime, so a short-lived token (30 s against the
/// default 60 s) is not fetched again for every request.
fn renew_early(refresh_before: Duration, ttl: Duration) -> Duration {
    refresh_before.min(ttl / 2)
}

/// An OAuth 2.0 grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    ClientCredentials,
    RefreshToken,
}

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// Id and secret as form fields.
    Post,
    /// HTTP Basic.
    Basic,
}

/// The name under which a rotated refresh token is registered.
pub const OAUTH2_REFRESH_TOKEN: &str = "oauth2_refresh_token";

/// The token endpoint's settings, compiled once.
#[derive(Debug, Clone)]
pub struct OAuth2Plan {
    grant: Grant,
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    refresh_token: Option<SecretString>,
    scopes: Vec<String>,
    refresh_before: Duration,
    extra: Vec<(String, String)>,
    client_auth: ClientAuthMethod,
    token_headers: Vec<(String, SecretString)>,
    /// Where the token response names the API's base URL.
    pub base_url_path: Option<(JsonPath, String)>,
    /// Keeps a rotated refresh token between runs.
    refresh_token_file: Option<PathBuf>,
}

/// One run's oauth2 client: the settings and the cached token.
#[derive(Debug)]
pub struct OAuth2Client {
    plan: OAuth2Plan,
    /// The token, when it expires, and how long before that it is renewed.
    cached: Mutex<Option<(SecretString, Instant, Duration)>>,
    fetched: AtomicU64,
    /// Each access token is registered, so it is masked everywhere and
    /// sealed out of saved state.
    redactor: crate::Redactor,
    /// The refresh token in use: the configured one until the provider
    /// rotates it.
    refresh_token: std::sync::Mutex<Option<SecretString>>,
    /// The API's base URL named by the last token response (`base_url_path`).
    base_url: std::sync::Mutex<Option<String>>,
    /// Records the token exchanges, or answers them from cassettes.
    tape: Option<std::sync::Arc<crate::cassette::Tape>>,
}

impl OAuth2Plan {
    /// Compiles the block; a `refresh_token_file` that exists is read now
    /// and its token wins over `refresh_token`.
    pub fn compile(auth: &Auth, ctx: &Context, redactor: &crate::Redactor) -> Result<OAuth2Plan> {
        let Auth::Oauth2 {
            grant_type,
            token_url,
            client_id,
            client_secret,
            refresh_token,
            scopes,
            refresh_before,
            extra_params,
            client_auth,
            token_headers,
            base_url_path,
            refresh_token_file,
        } = auth
        else {
            unreachable!("compile is called for oauth2 only")
        };
        let mut b = TemplatesBuilder::default();
        let mut render = |t: &connector_spec::Template| -> Result<String> {
            let c = b.add_text(t.as_str())?;
            render_once(&b, &c, ctx)
        };
        // An optional config parameter left unset renders empty: no file.
        let refresh_token_file = refresh_token_file
            .as_ref()
            .map(|t| render(t))
            .transpose()?
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from);
        let mut refresh = refresh_token
            .as_ref()
            .map(&mut render)
            .transpose()?
            .map(SecretString::from);
        if let Some(f) = &refresh_token_file
            && let Some(kept) = read_refresh_token(f)?
        {
            redactor.register(OAUTH2_REFRESH_TOKEN, kept.expose_secret());
            refresh = Some(kept);
        }
        let base_url_path = base_url_path
            .as_ref()
            .map(|p| {
                JsonPath::parse(p.as_str())
                    .map(|jp| (jp, p.as_str().to_string()))
                    .map_err(|e| {
                        crate::EngineError::Plan(format!(
                            "auth.base_url_path `{}`: {e}",
                            p.as_str()
                        ))
                    })
            })
            .transpose()?;
        Ok(OAuth2Plan {
            grant: match grant_type {
                connector_spec::OAuthGrant::ClientCredentials => Grant::ClientCredentials,
                connector_spec::OAuthGrant::RefreshToken => Grant::RefreshToken,
            },
            token_url: render(token_url)?,
            client_id: render(client_id)?,
            client_secret: SecretString::from(render(client_secret)?),
            refresh_token: refresh,
            scopes: scopes.clone(),
            refresh_before: refresh_before
                .parse()
                .map_err(|e| crate::EngineError::Plan(format!("auth.refresh_before: {e}")))?,
            extra: extra_params
                .iter()
                .map(|(k, v)| Ok((k.clone(), render(v)?)))
                .collect::<Result<_>>()?,
            client_auth: match client_auth {
                connector_spec::ClientAuth::ClientSecretPost => ClientAuthMethod::Post,
                connector_spec::ClientAuth::ClientSecretBasic => ClientAuthMethod::Basic,
            },
            token_headers: token_headers
                .iter()
                .map(|(k, v)| Ok((k.clone(), SecretString::from(render(v)?))))
                .collect::<Result<_>>()?,
            base_url_path,
            refresh_token_file,
        })
    }

    /// The token endpoint, which gets only the client credentials.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }
}

impl OAuth2Client {
    pub fn new(plan: &OAuth2Plan, redactor: crate::Redactor) -> OAuth2Client {
        OAuth2Client {
            plan: plan.clone(),
            cached: Mutex::new(None),
            fetched: AtomicU64::new(0),
            redactor,
            refresh_token: std::sync::Mutex::new(plan.refresh_token.clone()),
            base_url: std::sync::Mutex::new(None),
            tape: None,
        }
    }

    /// Records or replays the token exchanges.
    pub fn with_tape(mut self, tape: Option<std::sync::Arc<crate::cassette::Tape>>) -> Self {
        self.tape = tape;
        self
    }

    /// The API's base URL named by the token response, fetching a token
    /// first when none was fetched yet. `None` without `base_url_path`.
    pub async fn base_url(&self, http: &reqwest::Client) -> Result<Option<String>, String> {
        if self.plan.base_url_path.is_none() {
            return Ok(None);
        }
        self.token(http).await?;
        Ok(self.base_url.lock().unwrap().clone())
    }

    pub fn tokens_fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    pub fn invalidate(&self) -> bool {
        if let Ok(mut c) = self.cached.try_lock() {
            *c = None;
        }
        true
    }

    /// A valid access token, fetching a new one when none is cached or it is
    /// about to expire.
    pub async fn token(&self, http: &reqwest::Client) -> Result<SecretString, String> {
        let mut cached = self.cached.lock().await;
        if let Some((tok, expires, early)) = cached.as_ref()
            && Instant::now() + *early < *expires
        {
            return Ok(tok.clone());
        }
        let (tok, ttl) = self.fetch(http).await?;
        *cached = Some((
            tok.clone(),
            Instant::now() + ttl,
            renew_early(self.plan.refresh_before, ttl),
        ));
        Ok(tok)
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(SecretString, Duration), String> {
        let mut form: Vec<(&str, String)> = Vec::new();
        match self.plan.grant {
            Grant::ClientCredentials => form.push(("grant_type", "client_credentials".into())),
            Grant::RefreshToken => {
                form.push(("grant_type", "refresh_token".into()));
                if let Some(rt) = self.refresh_token.lock().unwrap().as_ref() {
                    form.push(("refresh_token", rt.expose_secret().to_string()));
                }
            }
        }
        if self.plan.client_auth == ClientAuthMethod::Post {
            form.push(("client_id", self.plan.client_id.clone()));
            form.push((
                "client_secret",
                self.plan.client_secret.expose_secret().to_string(),
            ));
        }
        if !self.plan.scopes.is_empty() {
            form.push(("scope", self.plan.scopes.join(" ")));
        }
        for (k, v) in &self.plan.extra {
            form.push((k.as_str(), v.clone()));
        }
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let recorded = match (&self.tape, url::Url::parse(&self.plan.token_url)) {
            (Some(_), Ok(u)) => Some(crate::cassette::recorded_request(
                &self.redactor,
                "POST",
                &u,
                Some(body.as_bytes()),
            )),
            _ => None,
        };
        let (status, headers, bytes) = match (self.tape.as_deref(), &recorded) {
            (Some(crate::cassette::Tape::Replay(player)), Some(r)) => {
                let answer = player.answer(r)?;
                (
                    reqwest::StatusCode::from_u16(answer.status)
                        .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR),
                    answer.header_map(),
                    bytes::Bytes::from(answer.body_bytes()),
                )
            }
            _ => {
                let mut req = http
                    .post(&self.plan.token_url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header("Accept", "application/json");
                if self.plan.client_auth == ClientAuthMethod::Basic {
                    req = req.header("Authorization", basic_credentials(&self.plan));
                }
                for (k, v) in &self.plan.token_headers {
                    req = req.header(k.as_str(), v.expose_secret());
                }
                let resp = req
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("oauth2 token request failed: {e}"))?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| format!("oauth2 token response: {e}"))?;
                (status, headers, bytes)
            }
        };
        let record = |redactor: &crate::Redactor| -> Result<(), String> {
            if let (Some(crate::cassette::Tape::Record(rec)), Some(r)) =
                (self.tape.as_deref(), recorded.clone())
            {
                rec.write(
                    redactor,
                    crate::cassette::AUTH_CASSETTE,
                    r,
                    status.as_u16(),
                    &headers,
                    &bytes,
                )
                .map_err(|e| format!("recording the token exchange failed: {e}"))?;
            }
            Ok(())
        };
        if !status.is_success() {
            record(&self.redactor)?;
            return Err(format!(
                "oauth2 token endpoint answered {status}: {}; check client_id, client_secret and refresh_token",
                crate::http::excerpt(&bytes)
            ));
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("oauth2 token response is not JSON: {e}"))?;
        let token = json
            .get("access_token")
            .and_then(|t| t.as_str())
            .ok_or("oauth2 token response has no `access_token`")?;
        let ttl = json
            .get("expires_in")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(3600);
        self.fetched.fetch_add(1, Ordering::Relaxed);
        self.redactor
            .register(crate::secret::OAUTH2_ACCESS_TOKEN, token);
        if let Some(new) = json.get("refresh_token").and_then(|t| t.as_str()) {
            self.rotated(new)?;
        }
        // Written once the tokens are registered, so they are masked.
        record(&self.redactor)?;
        if let Some((path, text)) = &self.plan.base_url_path {
            let url = path
                .query(&json)
                .first()
                .and_then(|v| v.as_str())
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .ok_or_else(|| {
                    format!("the oauth2 token response has no URL at `base_url_path` `{text}`")
                })?;
            *self.base_url.lock().unwrap() = Some(url.to_string());
        }
        Ok((
            SecretString::from(token.to_string()),
            Duration::from_secs(ttl),
        ))
    }
}

impl OAuth2Client {
    /// The provider sent a refresh token: when it is new, it replaces the
    /// old one (which it voids) and is kept in `refresh_token_file`.
    fn rotated(&self, new: &str) -> Result<(), String> {
        let replayed = self.tape.as_ref().is_some_and(|t| t.is_replay());
        if self.plan.grant != Grant::RefreshToken || new.is_empty() || replayed {
            return Ok(());
        }
        let mut current = self.refresh_token.lock().unwrap();
        if current.as_ref().is_some_and(|c| c.expose_secret() == new) {
            return Ok(());
        }
        self.redactor.register(OAUTH2_REFRESH_TOKEN, new);
        *current = Some(SecretString::from(new.to_string()));
        match &self.plan.refresh_token_file {
            Some(f) => write_refresh_token(f, new).map_err(|e| {
                format!(
                    "the provider rotated the refresh token, and keeping it in {} failed: {e}; the old one no longer works",
                    f.display()
                )
            }),
            None => {
                tracing::warn!(
                    "the oauth2 provider rotated the refresh token; it serves this run only: set `refresh_token_file` to keep it for the next"
                );
                Ok(())
            }
        }
    }
}

/// `Basic base64(id:secret)`, each form-urlencoded first (RFC 6749 §2.3.1).
fn basic_credentials(plan: &OAuth2Plan) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!(
        "{}:{}",
        enc(&plan.client_id),
        enc(plan.client_secret.expose_secret())
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The refresh token a previous run kept, if the file exists.
fn read_refresh_token(path: &Path) -> Result<Option<SecretString>> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            Ok(Some(SecretString::from(text.trim().to_string())))
        }
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::EngineError::Config(format!(
            "cannot read refresh_token_file {}: {e}",
            path.display()
        ))),
    }
}

/// Replaces the file's content atomically: a temporary file (mode 0600)
/// renamed over it, so a crash leaves the old token or the new, never half.
fn write_refresh_token(path: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("refresh_token"),
        std::process::id()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(token.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::renew_early;
    use std::time::Duration;

    #[test]
    fn a_short_lived_token_is_renewed_at_half_its_life() {
        let s = Duration::from_secs;
        assert_eq!(renew_early(s(60), s(30)), s(15));
        assert_eq!(renew_early(s(60), s(3600)), s(60));
    }
}
