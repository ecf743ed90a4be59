//! `type: bearer`: `Authorization: Bearer <token>`.

use super::StaticAuth;
use secrecy::{ExposeSecret, SecretString};

pub fn compile(token: SecretString) -> StaticAuth {
    let value = SecretString::from(format!("Bearer {}", token.expose_secret()));
    StaticAuth {
        headers: vec![("Authorization".into(), value)],
        query: vec![],
    }
}
