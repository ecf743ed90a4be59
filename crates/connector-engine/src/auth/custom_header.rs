//! `type: custom_header`: one header from a template.

use super::StaticAuth;
use secrecy::SecretString;

pub fn compile(name: &str, value: SecretString) -> StaticAuth {
    StaticAuth {
        headers: vec![(name.into(), value)],
        query: vec![],
    }
}
