//! `type: oauth2`: client_credentials and refresh_token grants. The access
//! token is fetched on first use, cached, refreshed `refresh_before` ahead of
//! its expiry, and dropped after a 401 so the request can retry once.

use crate::error::Result;
use crate::template::{Context, TemplatesBuilder, render_once};
use connector_spec::Auth;
use secrecy::{ExposeSecret, SecretString};
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
}

impl OAuth2Plan {
    pub fn compile(auth: &Auth, ctx: &Context) -> Result<OAuth2Plan> {
        let Auth::Oauth2 {
            grant_type,
            token_url,
            client_id,
            client_secret,
            refresh_token,
            scopes,
            refresh_before,
            extra_params,
        } = auth
        else {
            unreachable!("compile is called for oauth2 only")
        };
        let mut b = TemplatesBuilder::default();
        let mut render = |t: &connector_spec::Template| -> Result<String> {
            let c = b.add_text(t.as_str())?;
            render_once(&b, &c, ctx)
        };
        Ok(OAuth2Plan {
            grant: match grant_type {
                connector_spec::OAuthGrant::ClientCredentials => Grant::ClientCredentials,
                connector_spec::OAuthGrant::RefreshToken => Grant::RefreshToken,
            },
            token_url: render(token_url)?,
            client_id: render(client_id)?,
            client_secret: SecretString::from(render(client_secret)?),
            refresh_token: refresh_token
                .as_ref()
                .map(&mut render)
                .transpose()?
                .map(SecretString::from),
            scopes: scopes.clone(),
            refresh_before: refresh_before
                .parse()
                .map_err(|e| crate::EngineError::Plan(format!("auth.refresh_before: {e}")))?,
            extra: extra_params
                .iter()
                .map(|(k, v)| Ok((k.clone(), render(v)?)))
                .collect::<Result<_>>()?,
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
        }
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
                if let Some(rt) = &self.plan.refresh_token {
                    form.push(("refresh_token", rt.expose_secret().to_string()));
                }
            }
        }
        form.push(("client_id", self.plan.client_id.clone()));
        form.push((
            "client_secret",
            self.plan.client_secret.expose_secret().to_string(),
        ));
        if !self.plan.scopes.is_empty() {
            form.push(("scope", self.plan.scopes.join(" ")));
        }
        for (k, v) in &self.plan.extra {
            form.push((k.as_str(), v.clone()));
        }
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let resp = http
            .post(&self.plan.token_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("oauth2 token request failed: {e}"))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("oauth2 token response: {e}"))?;
        if !status.is_success() {
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
        Ok((
            SecretString::from(token.to_string()),
            Duration::from_secs(ttl),
        ))
    }
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
