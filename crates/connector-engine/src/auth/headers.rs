//! `type: headers`: several credential headers (Datadog's `DD-API-KEY` and
//! `DD-APPLICATION-KEY`), each a secret sent only to the API's origin.

use super::StaticAuth;
use secrecy::SecretString;

pub fn compile(headers: Vec<(String, SecretString)>) -> StaticAuth {
    StaticAuth {
        headers,
        query: vec![],
    }
}
