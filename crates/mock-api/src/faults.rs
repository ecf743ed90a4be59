//! Seeded fault injection, and the middleware that applies latency, rate limiting and faults
//! to the data endpoints.

use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{FaultConfig, FaultKind};
use crate::rate_limit;
use crate::server::ConnAbort;
use crate::state::AppState;
use crate::util::{NoCompress, error, lock};

pub(crate) struct FaultInjector {
    config: FaultConfig,
    kinds: Vec<FaultKind>,
    state: Mutex<(StdRng, u64)>,
}

impl FaultInjector {
    pub(crate) fn new(config: &FaultConfig) -> Self {
        FaultInjector {
            kinds: config.effective_kinds(),
            state: Mutex::new((StdRng::seed_from_u64(config.seed), 0)),
            config: config.clone(),
        }
    }

    /// Draws the fault (if any) for the next data request.
    pub(crate) fn decide(&self) -> Option<FaultKind> {
        let mut g = lock(&self.state);
        let (rng, seen) = &mut *g;
        let n = *seen;
        *seen += 1;
        if n < u64::from(self.config.fail_first) {
            return Some(self.kinds[(n % self.kinds.len() as u64) as usize]);
        }
        if self.config.rate > 0.0 && rng.random::<f64>() < self.config.rate {
            return Some(self.kinds[rng.random_range(0..self.kinds.len())]);
        }
        None
    }
}

/// Middleware for data endpoints: latency, then the rate limiter, then fault injection.
pub(crate) async fn data_middleware(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let shared = st.shared.clone();
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let mut limit = None;
    if let Some(mode) = &shared.config.rate_limit {
        let decision = shared.rate.check(mode);
        if !decision.allowed {
            shared.log.count(|c| c.rate_limited += 1);
            return rate_limit::refused(mode, &decision);
        }
        limit = Some((mode, decision));
    }
    let mut resp = match shared.faults.decide() {
        None => next.run(req).await,
        Some(kind) => {
            shared.log.count(|c| {
                c.faults_injected += 1;
                *c.faults_by_kind.entry(kind.name()).or_insert(0) += 1;
            });
            inject(kind, req, next).await
        }
    };
    if let Some((mode, decision)) = limit {
        rate_limit::add_headers(mode, &decision, resp.headers_mut());
    }
    resp
}

async fn inject(kind: FaultKind, req: Request, next: Next) -> Response {
    match kind {
        FaultKind::Status500 => error(StatusCode::INTERNAL_SERVER_ERROR, "injected fault"),
        FaultKind::Status502 => error(StatusCode::BAD_GATEWAY, "injected fault"),
        FaultKind::Status503 => error(StatusCode::SERVICE_UNAVAILABLE, "injected fault"),
        FaultKind::Status503RetryAfter => {
            let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, "injected fault");
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            resp
        }
        FaultKind::Slow(d) => {
            tokio::time::sleep(d).await;
            next.run(req).await
        }
        FaultKind::DropConnection => match req.extensions().get::<ConnAbort>() {
            Some(abort) => {
                abort.abort();
                // The connection task drops this future together with the socket.
                std::future::pending::<Response>().await
            }
            None => error(StatusCode::INTERNAL_SERVER_ERROR, "cannot drop connection"),
        },
        FaultKind::TruncatedBody => {
            let resp = next.run(req).await;
            let (parts, body) = resp.into_parts();
            let full = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let mut resp = truncated(full, None);
            *resp.status_mut() = parts.status;
            for (k, v) in parts.headers.iter() {
                if k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING {
                    resp.headers_mut().insert(k.clone(), v.clone());
                }
            }
            resp
        }
        FaultKind::GarbageJson => {
            let mut resp = (
                [(header::CONTENT_TYPE, "application/json")],
                "{\"data\": [{\"id\": 1, \"name\": \"item-1\"},, {\"id\": 2 \"name\" <<garbage>>",
            )
                .into_response();
            resp.extensions_mut().insert(NoCompress);
            resp
        }
        FaultKind::Html200 => html_page(
            StatusCode::OK,
            "502 Bad Gateway",
            "The upstream server is temporarily unavailable. Please try again later.",
        ),
    }
}

/// An HTML error page (as a proxy or load balancer would send).
pub(crate) fn html_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html>\n<head><title>{title}</title></head>\n<body>\n<center><h1>{title}</h1></center>\n<p>{message}</p>\n<hr><center>nginx</center>\n</body>\n</html>\n"
    );
    let mut resp = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    resp.extensions_mut().insert(NoCompress);
    resp
}

/// A `200 application/json` response declaring `Content-Length` of the full body (or
/// `declared`) that writes only the first half of it and then breaks the connection.
pub(crate) fn truncated(full: Bytes, declared: Option<usize>) -> Response {
    let declared = declared.unwrap_or(full.len()).max(full.len()).max(2);
    let half = full.slice(0..full.len() / 2);
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let half = half.clone();
        async move {
            match step {
                0 => Some((Ok::<Bytes, std::io::Error>(half), 1)),
                1 => {
                    // Give the server a chance to flush the partial body, then fail the stream,
                    // which makes hyper close the connection mid-body.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "mock-api: truncated body",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
    resp.extensions_mut().insert(NoCompress);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_decisions_are_deterministic() {
        let cfg = FaultConfig::random(0.3, vec![FaultKind::Status500, FaultKind::Html200], 7);
        let a: Vec<_> = {
            let f = FaultInjector::new(&cfg);
            (0..100).map(|_| f.decide()).collect()
        };
        let b: Vec<_> = {
            let f = FaultInjector::new(&cfg);
            (0..100).map(|_| f.decide()).collect()
        };
        assert_eq!(a, b);
        let n = a.iter().filter(|x| x.is_some()).count();
        assert!((10..60).contains(&n), "{n}");
    }

    #[test]
    fn fail_first_cycles_kinds() {
        let f = FaultInjector::new(&FaultConfig::first(
            3,
            vec![FaultKind::Status503, FaultKind::Status500],
        ));
        let got: Vec<_> = (0..5).map(|_| f.decide()).collect();
        assert_eq!(
            got,
            vec![
                Some(FaultKind::Status503),
                Some(FaultKind::Status500),
                Some(FaultKind::Status503),
                None,
                None
            ]
        );
    }
}
