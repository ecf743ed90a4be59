//! Auth schemes, one file per YAML `type`. Each compiles into the plan's
//! [`AuthPlan`] once: static schemes rendered into headers or a query
//! parameter, oauth2 into its token endpoint's settings. A run starts an
//! [`Authenticator`] from it, which for oauth2 holds the cached token.
//!
//! Credentials are attached only to requests for the API's own origin: a
//! next-page URL or redirect to another host gets none. `select` picks one
//! of its options by a value from config, once, when the plan compiles.

mod api_key;
mod basic;
mod bearer;
mod custom_header;
mod headers;
mod none;
mod oauth2;

pub use oauth2::{OAuth2Client, OAuth2Plan};

use crate::error::Result;
use crate::template::{Context, TemplatesBuilder};
use connector_spec::Auth;
use secrecy::{ExposeSecret, SecretString};

/// Credentials rendered once, attached to every request for the API's origin.
#[derive(Debug, Default, Clone)]
pub struct StaticAuth {
    pub headers: Vec<(String, SecretString)>,
    pub query: Vec<(String, SecretString)>,
}

/// A plan's auth, compiled: immutable, shared by every run of the plan.
#[derive(Debug)]
pub enum AuthPlan {
    Static(StaticAuth),
    OAuth2(OAuth2Plan),
}

/// The auth of one run: static credentials, or an oauth2 client with its
/// token cache.
#[derive(Debug)]
pub enum Authenticator {
    Static(StaticAuth),
    OAuth2(Box<OAuth2Client>),
}

impl AuthPlan {
    /// Compiles the spec's auth block; templates are rendered against `ctx`
    /// now. Every credential it derives (basic auth's base64 of
    /// `user:password`, a prefixed key) is registered with `redactor`, and
    /// so is every access token obtained later.
    pub fn compile(auth: &Auth, ctx: &Context, redactor: &crate::Redactor) -> Result<AuthPlan> {
        let compiled = Self::compile_inner(auth, ctx, redactor)?;
        if let AuthPlan::Static(s) = &compiled {
            for (name, v) in s.headers.iter().chain(&s.query) {
                let v = v.expose_secret();
                redactor.register(&format!("auth_{name}"), v);
                // `Basic <base64>`, `Bearer <token>`: the credential alone too.
                if let Some((_, cred)) = v.split_once(' ') {
                    redactor.register(&format!("auth_{name}_credential"), cred);
                }
            }
        }
        Ok(compiled)
    }

    /// The authenticator of one run: a fresh token cache for oauth2, whose
    /// token requests go through `tape` when the run records or replays.
    pub fn start(
        &self,
        redactor: &crate::Redactor,
        tape: Option<std::sync::Arc<crate::cassette::Tape>>,
    ) -> Authenticator {
        match self {
            AuthPlan::Static(s) => Authenticator::Static(s.clone()),
            AuthPlan::OAuth2(p) => Authenticator::OAuth2(Box::new(
                OAuth2Client::new(p, redactor.clone()).with_tape(tape),
            )),
        }
    }

    fn compile_inner(auth: &Auth, ctx: &Context, redactor: &crate::Redactor) -> Result<AuthPlan> {
        let mut b = TemplatesBuilder::default();
        let render =
            |b: &mut TemplatesBuilder, t: &connector_spec::Template| -> Result<SecretString> {
                let c = b.add_text(t.as_str())?;
                Ok(SecretString::from(crate::template::render_once(
                    b, &c, ctx,
                )?))
            };
        Ok(match auth {
            Auth::None => AuthPlan::Static(none::compile()),
            Auth::Bearer { token } => AuthPlan::Static(bearer::compile(render(&mut b, token)?)),
            Auth::ApiKey {
                location,
                name,
                prefix,
                value,
            } => AuthPlan::Static(api_key::compile(
                *location,
                name,
                prefix.as_deref(),
                render(&mut b, value)?,
            )),
            Auth::Basic { username, password } => {
                let user = render(&mut b, username)?;
                let pass = match password {
                    Some(p) => render(&mut b, p)?,
                    None => SecretString::from(String::new()),
                };
                AuthPlan::Static(basic::compile(&user, &pass))
            }
            Auth::CustomHeader { name, value } => {
                AuthPlan::Static(custom_header::compile(name, render(&mut b, value)?))
            }
            Auth::Headers { headers } => AuthPlan::Static(headers::compile(
                headers
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), render(&mut b, v)?)))
                    .collect::<Result<_>>()?,
            )),
            Auth::Oauth2 { .. } => AuthPlan::OAuth2(OAuth2Plan::compile(auth, ctx, redactor)?),
            Auth::Select { value, options } => {
                let c = b.add_text(value.as_str())?;
                let name = crate::template::render_once(&b, &c, ctx)?;
                let name = name.trim();
                match options.get(name) {
                    Some(Auth::Select { .. }) => {
                        return Err(crate::EngineError::Config(format!(
                            "auth option `{name}` is another `select`"
                        )));
                    }
                    Some(option) => Self::compile_inner(option, ctx, redactor)?,
                    None => {
                        let known: Vec<&str> = options.keys().map(String::as_str).collect();
                        return Err(crate::EngineError::Config(format!(
                            "auth.value renders to `{name}`, which is not one of the options ({}); check the config values it reads",
                            known.join(", ")
                        )));
                    }
                }
            }
        })
    }
}

impl Authenticator {
    /// Attaches credentials to a request for the API's origin.
    pub async fn apply(
        &self,
        http: &reqwest::Client,
        headers: &mut Vec<(String, String)>,
        query: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        match self {
            Authenticator::Static(s) => {
                headers.extend(
                    s.headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.expose_secret().to_string())),
                );
                query.extend(
                    s.query
                        .iter()
                        .map(|(k, v)| (k.clone(), v.expose_secret().to_string())),
                );
                Ok(())
            }
            Authenticator::OAuth2(o) => {
                let token = o.token(http).await?;
                headers.push((
                    "Authorization".into(),
                    format!("Bearer {}", token.expose_secret()),
                ));
                Ok(())
            }
        }
    }

    /// The API's base URL named by the token response, if the auth says
    /// where to find one.
    pub async fn base_url(&self, http: &reqwest::Client) -> Result<Option<String>, String> {
        match self {
            Authenticator::Static(_) => Ok(None),
            Authenticator::OAuth2(o) => o.base_url(http).await,
        }
    }

    /// Called after a 401: forget a cached token. True when a retry may help.
    pub fn invalidate(&self) -> bool {
        match self {
            Authenticator::Static(_) => false,
            Authenticator::OAuth2(o) => o.invalidate(),
        }
    }

    /// Number of tokens fetched (oauth2), for the summary and tests.
    pub fn tokens_fetched(&self) -> u64 {
        match self {
            Authenticator::Static(_) => 0,
            Authenticator::OAuth2(o) => o.tokens_fetched(),
        }
    }
}
