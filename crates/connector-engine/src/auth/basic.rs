//! `type: basic`: HTTP basic auth.

use super::StaticAuth;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

pub fn compile(user: &SecretString, pass: &SecretString) -> StaticAuth {
    let raw = format!("{}:{}", user.expose_secret(), pass.expose_secret());
    let value = SecretString::from(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ));
    StaticAuth {
        headers: vec![("Authorization".into(), value)],
        query: vec![],
    }
}
