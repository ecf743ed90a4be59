//! Secrets and redaction. Every secret config value, every credential the
//! auth scheme derives from them (basic auth's base64 of `user:password`)
//! and every token obtained at run time (an OAuth2 access token) is
//! registered with the [`Redactor`], which masks it wherever it appears:
//! URLs, headers, bodies, error messages and logs, in its raw,
//! percent-encoded, form-encoded, JSON-escaped and base64 forms.
//!
//! State must never hold a secret, yet a resumed run may need one that the
//! server put into a next-page URL (`?access_token=…`). [`Redactor::seal`]
//! replaces each secret with a marker naming it (`~secret~api_key~`), and
//! [`Redactor::unseal`] puts the current value back just before a request
//! to the API's origin is sent.

use base64::Engine;
use std::sync::{Arc, RwLock};
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

/// The name under which an OAuth2 access token is registered.
pub const OAUTH2_ACCESS_TOKEN: &str = "oauth2_access_token";

/// Secrets shorter than this are not masked: they would mask ordinary text.
const MIN_SECRET_LEN: usize = 3;

/// How a sealed secret was written where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Raw,
    Percent,
    Urlencoded,
}

impl Form {
    const ALL: [Form; 3] = [Form::Raw, Form::Percent, Form::Urlencoded];

    fn tag(self) -> &'static str {
        match self {
            Form::Raw => "secret",
            Form::Percent => "secretpct",
            Form::Urlencoded => "secretform",
        }
    }

    fn encode(self, s: &str) -> String {
        match self {
            Form::Raw => s.to_string(),
            Form::Percent => percent_encode(s),
            Form::Urlencoded => url::form_urlencoded::byte_serialize(s.as_bytes()).collect(),
        }
    }
}

/// Every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The forms of `value` that are masked: raw, percent-encoded (both hex
/// cases), form-encoded, JSON-escaped and base64 (standard, URL-safe, with
/// and without padding).
fn masked_forms(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let pct = percent_encode(value);
    let json = serde_json::to_string(value).unwrap_or_default();
    let mut forms = vec![
        value.to_string(),
        lower_hex(&pct),
        pct,
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
        json.strip_prefix('"')
            .and_then(|j| j.strip_suffix('"'))
            .unwrap_or(&json)
            .to_string(),
    ];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(value));
    }
    forms.retain(|f| f.len() >= MIN_SECRET_LEN);
    forms
}

/// `%2F` → `%2f`, leaving the other characters as they are.
fn lower_hex(pct: &str) -> String {
    let mut out = String::with_capacity(pct.len());
    let mut rest = pct;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(&esc.to_ascii_lowercase());
        rest = &rest[i + esc.len()..];
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Default)]
struct Secrets {
    /// Every masked text, longest first (so a secret containing another is
    /// masked whole). Values replaced at run time stay masked.
    masked: Vec<String>,
    /// Name → current value, for sealing and unsealing.
    named: Vec<(String, String)>,
}

impl Secrets {
    fn add(&mut self, name: &str, value: &str) {
        if value.len() < MIN_SECRET_LEN {
            return;
        }
        for f in masked_forms(value) {
            if !self.masked.contains(&f) {
                self.masked.push(f);
            }
        }
        self.masked.sort_by_key(|s| std::cmp::Reverse(s.len()));
        match self.named.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.named.push((name.to_string(), value.to_string())),
        }
        // Longest values first, so sealing never cuts a longer secret.
        self.named.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    }
}

/// Replaces secret values in text. Cloning shares the registry: a token
/// registered at run time is masked by every clone.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Secrets>>,
}

impl Redactor {
    /// A redactor for `secrets`, each a config key and its value.
    pub fn new(secrets: Vec<(String, String)>) -> Self {
        let r = Redactor::default();
        for (name, value) in secrets {
            r.register(&name, &value);
        }
        r
    }

    /// A redactor for anonymous values (a password in a URI, init's inputs).
    pub fn from_values(values: Vec<String>) -> Self {
        Redactor::new(
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("secret_{i}"), v))
                .collect(),
        )
    }

    /// Registers a secret found or made at run time (an access token, a
    /// derived credential). A new value under a known name replaces it for
    /// sealing; the old value stays masked.
    pub fn register(&self, name: &str, value: &str) {
        self.secrets.write().unwrap().add(name, value);
    }

    /// Masks every registered secret, in every form, in `text`.
    pub fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap();
        let mut out = text.to_string();
        for s in &secrets.masked {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        drop(secrets);
        mask_seals(&out)
    }

    /// True when `text` holds a registered secret in any form.
    pub fn contains_secret(&self, text: &str) -> bool {
        let secrets = self.secrets.read().unwrap();
        secrets.masked.iter().any(|s| text.contains(s.as_str()))
    }

    /// Replaces each secret (raw, percent- or form-encoded) with a marker
    /// naming it, for text that is saved (next-page URLs in the state).
    pub fn seal(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap();
        let mut out = text.to_string();
        for (name, value) in &secrets.named {
            for form in Form::ALL {
                let enc = form.encode(value);
                if out.contains(&enc) {
                    out = out.replace(&enc, &format!("~{}~{name}~", form.tag()));
                }
            }
        }
        out
    }

    /// Puts the current value of each sealed secret back. Only for requests
    /// to the API's own origin: elsewhere markers stay markers.
    pub fn unseal(&self, text: &str) -> String {
        if !text.contains("~secret") && !text.contains("%7Esecret") {
            return text.to_string();
        }
        let secrets = self.secrets.read().unwrap();
        let mut out = text.to_string();
        for (name, value) in &secrets.named {
            for form in Form::ALL {
                for marker in [
                    format!("~{}~{name}~", form.tag()),
                    format!("%7E{}%7E{name}%7E", form.tag()),
                ] {
                    if out.contains(&marker) {
                        out = out.replace(&marker, &form.encode(value));
                    }
                }
            }
        }
        out
    }

    /// [`Redactor::seal`] over every string of a JSON value.
    pub fn seal_value(&self, v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(self.seal(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.seal_value(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), self.seal_value(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// [`Redactor::unseal`] over every string of a JSON value.
    pub fn unseal_value(&self, v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(self.unseal(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.unseal_value(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), self.unseal_value(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
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

/// Seal markers shown to humans as the mask.
fn mask_seals(text: &str) -> String {
    if !text.contains("~secret") && !text.contains("%7Esecret") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = [("~secret", "~"), ("%7Esecret", "%7E")]
            .iter()
            .filter_map(|(open, sep)| rest.find(open).map(|i| (i, *open, *sep)))
            .min_by_key(|(i, _, _)| *i);
        let Some((i, open, sep)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        let after = &rest[i + open.len()..];
        // `~secret[pct|form]~NAME~`: skip the tag's tail, the name and the closing mark.
        let end = after.find(sep).and_then(|a| {
            let name_start = a + sep.len();
            after[name_start..]
                .find(sep)
                .map(|b| name_start + b + sep.len())
        });
        match end {
            Some(e) => {
                out.push_str(MASK);
                rest = &after[e..];
            }
            None => {
                out.push_str(&rest[i..i + open.len()]);
                rest = after;
            }
        }
    }
}

/// True when a header or parameter name suggests a credential.
pub fn is_sensitive_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "cookie"
        || n == "proxy-authorization"
        || (SENSITIVE.iter().any(|s| n.contains(s)) && !is_position_name(&n))
}

/// Names of paging positions and sync tokens (`nextPageToken`, `$skiptoken`,
/// `page_token`, `sync_token`, `continuation_token`): a place in a list, not
/// a credential; masking them would hide which page failed. A secret value
/// under such a name is still masked by value.
fn is_position_name(lower: &str) -> bool {
    [
        "page",
        "skip",
        "next",
        "sync",
        "continuation",
        "cursor",
        "delta",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redactor {
        Redactor::new(vec![("api_key".into(), "hunter22/+ x".into())])
    }

    #[test]
    fn paging_tokens_are_not_credentials() {
        for name in [
            "nextPageToken",
            "$skiptoken",
            "page_token",
            "sync_token",
            "cursor_token",
        ] {
            assert!(!is_sensitive_name(name), "{name}");
        }
        for name in [
            "access_token",
            "api_key",
            "X-Auth-Token",
            "client_secret",
            "refresh_token",
        ] {
            assert!(is_sensitive_name(name), "{name}");
        }
    }

    #[test]
    fn masks_secrets_and_sensitive_params() {
        let r = Redactor::new(vec![("t".into(), "hunter22".into())]);
        assert_eq!(r.redact("token=hunter22 ok"), "token=*** ok");
        let u = Url::parse("https://x.test/a?api_key=abc&page=2&q=hunter22").unwrap();
        let shown = r.url(&u);
        assert!(
            !shown.contains("abc") && !shown.contains("hunter22"),
            "{shown}"
        );
        assert!(shown.contains("page=2"));
    }

    #[test]
    fn masks_encoded_forms() {
        let r = r();
        let b64 = base64::engine::general_purpose::STANDARD.encode("hunter22/+ x");
        for text in [
            "raw hunter22/+ x".to_string(),
            "pct hunter22%2F%2B%20x".into(),
            "lower hunter22%2f%2b%20x".into(),
            "form hunter22%2F%2B+x".into(),
            format!("b64 {b64}"),
        ] {
            let shown = r.redact(&text);
            assert!(shown.ends_with(MASK), "{text} -> {shown}");
            assert!(r.contains_secret(&text), "{text}");
        }
        assert!(!r.contains_secret("nothing here"));
    }

    #[test]
    fn seal_and_unseal_round_trip_every_form() {
        let r = r();
        for (text, marker) in [
            (
                "https://a/x?k=hunter22%2F%2B%20x&p=2",
                "~secretpct~api_key~",
            ),
            ("https://a/x?k=hunter22%2F%2B+x&p=2", "~secretform~api_key~"),
            ("token hunter22/+ x", "~secret~api_key~"),
        ] {
            let sealed = r.seal(text);
            assert!(sealed.contains(marker), "{sealed}");
            assert!(!r.contains_secret(&sealed), "{sealed}");
            assert_eq!(r.unseal(&sealed), text);
            assert!(r.redact(&sealed).contains(MASK), "{}", r.redact(&sealed));
        }
        // A marker the url crate percent-encoded comes back too.
        assert_eq!(
            r.unseal("k=%7Esecretform%7Eapi_key%7E"),
            "k=hunter22%2F%2B+x"
        );
    }

    #[test]
    fn tokens_registered_at_run_time_are_masked_and_rotate() {
        let r = Redactor::default();
        let clone = r.clone();
        r.register(OAUTH2_ACCESS_TOKEN, "tok-one");
        assert_eq!(clone.redact("Bearer tok-one"), "Bearer ***");
        let sealed = clone.seal("next?access_token=tok-one");
        r.register(OAUTH2_ACCESS_TOKEN, "tok-two");
        assert_eq!(r.unseal(&sealed), "next?access_token=tok-two");
        assert_eq!(r.redact("tok-one tok-two"), "*** ***");
    }
}
