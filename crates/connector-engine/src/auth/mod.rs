//! Auth schemes, one file per YAML `type`. Static schemes are rendered once
//! into headers or a query parameter; oauth2 keeps a cached token.
//!
//! Credentials are attached only to requests for the API's own origin: a
//! next-page URL or redirect to another host gets none.

mod api_key;
mod basic;
mod bearer;
mod custom_header;
mod none;
mod oauth2;

pub use oauth2::OAuth2Client;

use crate::error::Result;
use crate::template::{Context, TemplatesBuilder};
use connector_spec::Auth;
use secrecy::{ExposeSecret, SecretString};

/// Credentials rendered once, attached to every request for the API's origin.
#[derive(Debug, Default)]
pub struct StaticAuth {
    pub headers: Vec<(String, SecretString)>,
    pub query: Vec<(String, SecretString)>,
}

/// The runtime authenticator of a plan.
#[derive(Debug)]
pub enum Authenticator {
    Static(StaticAuth),
    OAuth2(OAuth2Client),
}

impl Authenticator {
    /// Compiles the spec's auth block; templates are rendered against `ctx`
    /// now. Every credential it derives (basic auth's base64 of
    /// `user:password`, a prefixed key) is registered with `redactor`, and
    /// so is every access token obtained later.
    pub fn compile(
        auth: &Auth,
        ctx: &Context,
        redactor: &crate::Redactor,
    ) -> Result<Authenticator> {
        let compiled = Self::compile_inner(auth, ctx, redactor)?;
        if let Authenticator::Static(s) = &compiled {
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

    fn compile_inner(
        auth: &Auth,
        ctx: &Context,
        redactor: &crate::Redactor,
    ) -> Result<Authenticator> {
        let mut b = TemplatesBuilder::default();
        let render =
            |b: &mut TemplatesBuilder, t: &connector_spec::Template| -> Result<SecretString> {
                let c = b.add_text(t.as_str())?;
                Ok(SecretString::from(crate::template::render_once(
                    b, &c, ctx,
                )?))
            };
        Ok(match auth {
            Auth::None => Authenticator::Static(none::compile()),
            Auth::Bearer { token } => {
                Authenticator::Static(bearer::compile(render(&mut b, token)?))
            }
            Auth::ApiKey {
                location,
                name,
                prefix,
                value,
            } => Authenticator::Static(api_key::compile(
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
                Authenticator::Static(basic::compile(&user, &pass))
            }
            Auth::CustomHeader { name, value } => {
                Authenticator::Static(custom_header::compile(name, render(&mut b, value)?))
            }
            Auth::Oauth2 { .. } => {
                Authenticator::OAuth2(OAuth2Client::compile(auth, ctx, redactor.clone())?)
            }
        })
    }

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
