//! Secrets and redaction. Every secret config value is registered with the
//! [`Redactor`], which replaces it wherever it appears: URLs, headers, bodies,
//! error messages and logs.

use std::sync::Arc;
use url::Url;

/// Query parameter and header names whose values are always redacted.
const SENSITIVE: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "sig",
    "auth",
    "credential",
    "session",
];

/// The redaction mark.
pub const MASK: &str = "***";

/// Replaces secret values in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<Vec<String>>,
}

impl Redactor {
    pub fn new(mut secrets: Vec<String>) -> Self {
        // Longest first, so a secret containing another is masked whole.
        secrets.retain(|s| s.len() >= 3);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        let mut encoded: Vec<String> = secrets
            .iter()
            .flat_map(|s| [url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()])
            .filter(|e| !secrets.contains(e))
            .collect();
        secrets.append(&mut encoded);
        Redactor {
            secrets: Arc::new(secrets),
        }
    }

    /// Masks every registered secret in `text`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// A URL for humans: sensitive query values and user info masked, then
    /// every secret masked.
    pub fn url(&self, url: &Url) -> String {
        let mut u = url.clone();
        if u.password().is_some() {
            let _ = u.set_password(Some(MASK));
        }
        if u.query().is_some() {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if is_sensitive_name(&k) {
                        MASK.to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        self.redact(u.as_str()).replace("%2A%2A%2A", MASK)
    }
}

/// True when a header or parameter name suggests a credential.
pub fn is_sensitive_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "cookie"
        || n == "proxy-authorization"
        || SENSITIVE.iter().any(|s| n.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets_and_sensitive_params() {
        let r = Redactor::new(vec!["hunter22".into()]);
        assert_eq!(r.redact("token=hunter22 ok"), "token=*** ok");
        let u = Url::parse("https://x.test/a?api_key=abc&page=2&q=hunter22").unwrap();
        let shown = r.url(&u);
        assert!(
            !shown.contains("abc") && !shown.contains("hunter22"),
            "{shown}"
        );
        assert!(shown.contains("page=2"));
    }
}
