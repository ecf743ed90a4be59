//! Why a fetch failed, classified where it happened: a status, or the kind
//! of transport failure found in the error's source chain.

/// What kind of failure ended a fetch, classified where it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchErrorKind {
    /// The server answered with this status.
    Status(u16),
    Timeout,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// Nothing listens at that address.
    Refused,
    /// Another transport failure: reset, dropped connection.
    Connect,
    /// The body broke off, or is not the JSON expected.
    Body,
    /// The body is larger than `max_response_size`.
    TooLarge,
    /// The server asked for a longer wait than `retry.max_wait`.
    WaitTooLong,
    /// The request was not sent (a body with a secret for another origin).
    NotSent,
    /// Auth could not be obtained (the token endpoint failed).
    Auth,
    Other,
}

/// Why a fetch failed, after retries.
#[derive(Debug)]
pub struct FetchError {
    pub kind: FetchErrorKind,
    pub message: String,
    pub status: Option<u16>,
    pub url: String,
}

/// Classifies a transport error where it happens, from the error types in
/// its source chain (an I/O error's kind, a rustls error) rather than its
/// text; only the resolver's error is known by its message.
pub fn classify(e: &reqwest::Error) -> FetchErrorKind {
    if e.is_timeout() {
        return FetchErrorKind::Timeout;
    }
    if e.is_body() || e.is_decode() {
        return FetchErrorKind::Body;
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return FetchErrorKind::Tls;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return FetchErrorKind::Refused,
                std::io::ErrorKind::TimedOut => return FetchErrorKind::Timeout,
                _ => {}
            }
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return FetchErrorKind::Tls;
            }
        }
        // hyper-util's resolver error is private; its message names it.
        if s.to_string().starts_with("dns error") {
            return FetchErrorKind::Dns;
        }
        src = s.source();
    }
    if e.is_connect() || e.is_request() {
        FetchErrorKind::Connect
    } else {
        FetchErrorKind::Other
    }
}

/// The message chain of a transport error, without the URL reqwest adds
/// (the stream error names it, redacted).
pub fn chain(e: &reqwest::Error) -> String {
    let mut chain = match e.url() {
        Some(u) => e.to_string().replace(&format!(" for url ({u})"), ""),
        None => e.to_string(),
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    chain
}
