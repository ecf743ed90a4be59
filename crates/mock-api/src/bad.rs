//! `/bad/*`: endpoints that always misbehave, for error-path tests. They get no latency, rate
//! limit or random faults.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::json;

use crate::faults::{html_page, truncated};
use crate::generated::{offset_page, page_size};
use crate::state::AppState;
use crate::util::{NoCompress, Params, error, json};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/not_json", get(not_json))
        .route("/html", get(html))
        .route("/truncated", get(truncated_body))
        .route("/wrong_shape", get(wrong_shape))
        .route("/status/{code}", get(status))
        .route("/after/{n}", get(after))
        .route("/panic", get(panic))
}

/// A handler that panics: the server answers 500 and keeps serving.
async fn panic() -> Response {
    panic!("mock-api: /bad/panic was requested")
}

/// 200 with `Content-Type: application/json` but a plain-text body.
async fn not_json() -> Response {
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        "this is not json",
    )
        .into_response();
    resp.extensions_mut().insert(NoCompress);
    resp
}

async fn html() -> Response {
    html_page(
        StatusCode::OK,
        "500 Internal Server Error",
        "Something went wrong on our side. This is an HTML page where JSON was expected.",
    )
}

/// 200 JSON with `Content-Length: 4096` of which only a prefix is written.
async fn truncated_body() -> Response {
    let body = Bytes::from_static(
        b"{\"data\": [{\"id\": 1, \"name\": \"item-1\"}, {\"id\": 2, \"name\": \"item-2\"}, {\"id\": 3, \"na",
    );
    // `truncated` writes half of what it is given: give it the prefix twice.
    let doubled = Bytes::from([body.as_ref(), body.as_ref()].concat());
    truncated(doubled, Some(4096))
}

async fn wrong_shape() -> Response {
    json(StatusCode::OK, &json!({ "unexpected": true }))
}

async fn status(Path(code): Path<String>) -> Response {
    match code
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
    {
        Some(s) if s.as_u16() >= 200 => {
            let reason = s.canonical_reason().unwrap_or("unknown");
            let mut resp = json(
                s,
                &json!({ "error": reason, "status": s.as_u16(), "message": format!("mock-api answers {}", s.as_u16()) }),
            );
            if s == StatusCode::UNAUTHORIZED {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"mock-api\""),
                );
            }
            resp
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            &format!("`{code}` is not a usable HTTP status"),
        ),
    }
}

/// Like `/gen/offset` for pages `0..n` (page index = offset / limit), then 500 for every page
/// from `n` on.
async fn after(State(st): State<AppState>, Path(n): Path<u64>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let run = || -> Result<Response, Response> {
        let offset = p.uint("offset")?.unwrap_or(0);
        let limit = page_size(&p, "limit")? as u64;
        if offset / limit >= n {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("mock-api: page {} and later always fail", n),
            ));
        }
        offset_page(&st, &p)
    };
    run().unwrap_or_else(|e| e)
}
