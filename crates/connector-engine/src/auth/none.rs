//! `type: none`: no credentials.

use super::StaticAuth;

pub fn compile() -> StaticAuth {
    StaticAuth::default()
}
