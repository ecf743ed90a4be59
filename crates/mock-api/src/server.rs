//! The HTTP plumbing: routers for both listeners, and a hand-written accept loop (hyper's
//! HTTP/1 connection per socket) so that a handler can drop its connection on purpose.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::get;
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};

use crate::log::{Origin, RequestRecord};
use crate::state::AppState;
use crate::util::{NoCompress, error, json};
use crate::{
    apis, auth, bad, faults, generated, github, hostile, hubspot, jsonserver, notion, slack,
    zendesk,
};

/// Put in each request's extensions: lets a handler close its TCP connection without answering.
#[derive(Clone)]
pub(crate) struct ConnAbort(Arc<Notify>);

impl ConnAbort {
    pub(crate) fn abort(&self) {
        self.0.notify_one();
    }
}

fn not_marked(
    _: StatusCode,
    _: axum::http::Version,
    _: &axum::http::HeaderMap,
    ext: &axum::http::Extensions,
) -> bool {
    ext.get::<NoCompress>().is_none()
}

fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().compress_when(DefaultPredicate::new().and(not_marked))
}

/// The main listener's routes.
pub(crate) fn main_router(state: AppState) -> Router {
    let data = Router::new()
        .nest("/gen", generated::routes())
        .merge(auth::protected_routes())
        .merge(jsonserver::routes())
        .route_layer(from_fn_with_state(state.clone(), faults::data_middleware));
    Router::new()
        .route("/", get(index))
        .merge(auth::token_routes())
        .nest("/bad", bad::routes())
        .nest("/hostile", hostile::routes())
        .merge(apis::routes())
        .merge(zendesk::routes())
        .merge(hubspot::routes())
        .merge(notion::routes())
        .merge(slack::routes())
        .merge(github::routes())
        .merge(data)
        .fallback(not_found)
        .layer(compression())
        .with_state(state)
}

/// The other origin: `/gen/*` and `/hostile/*` only, no auth.
pub(crate) fn other_router(state: AppState) -> Router {
    Router::new()
        .nest("/gen", generated::routes())
        // The org's own host of a Salesforce-style token answer (`oauth_salesforce`).
        .route(
            "/auth/oauth2",
            axum::routing::get(crate::auth::oauth2_route),
        )
        .route_layer(from_fn_with_state(state.clone(), faults::data_middleware))
        .nest("/hostile", hostile::routes())
        .fallback(not_found)
        .layer(compression())
        .with_state(state)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

async fn index(State(st): State<AppState>) -> Response {
    let resources: Vec<&String> = st.shared.db.keys().collect();
    let github_repos: Vec<serde_json::Value> = st
        .shared
        .github
        .summary()
        .into_iter()
        .map(|(name, id, issues)| json!({ "full_name": name, "id": id, "issues": issues }))
        .collect();
    json(
        StatusCode::OK,
        &json!({
            "name": "mock-api",
            "other_origin": st.shared.other_url,
            "jsonserver_resources": resources,
            "generated_records": st.shared.generated.select(None).len(),
            "gen": ["/gen/offset", "/gen/page", "/gen/page0", "/gen/cursor", "/gen/cursor_header",
                    "/gen/cursor_body", "/gen/next_absolute", "/gen/next_relative",
                    "/gen/next_relative_dot", "/gen/link", "/gen/single", "/gen/odata"],
            "bad": ["/bad/not_json", "/bad/html", "/bad/truncated", "/bad/wrong_shape",
                    "/bad/status/{code}", "/bad/after/{n}"],
            "auth": ["/auth/bearer", "/auth/api_key_header", "/auth/api_key_query", "/auth/basic",
                     "/auth/custom", "/auth/oauth2", "/auth/redirect_other", "/auth/next_other",
                     "/oauth/token", "/redirect/same"],
            "apis": ["/stripe/v1/customers", "/tz/events", zendesk::EXPORT_PATH,
                     slack::LIST_PATH, "/repos/{owner}/{repo}/issues",
                     "/repositories/{id}/issues"],
            "stripe_customers": st.shared.stripe.len(),
            "zendesk_tickets": st.shared.zendesk.len(),
            "slack_channels": st.shared.slack.len(),
            "github_repos": github_repos,
            "hostile": ["/hostile/gzip_bomb", "/hostile/endless", "/hostile/retry_after",
                        "/hostile/reset_far", "/hostile/echo_token", "/hostile/echo_error",
                        "/hostile/not_objects", "/hostile/missing_key",
                        "/hostile/next_other_origin"],
        }),
    )
}

const MAX_LOGGED_BODY: usize = 64 * 1024 * 1024;

/// Serves one request: logs it, runs the router with panics turned into 500s, logs the status.
async fn handle(
    state: AppState,
    app: Router,
    abort: ConnAbort,
    req: hyper::Request<Incoming>,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(Body::new(body), MAX_LOGGED_BODY)
        .await
        .unwrap_or_default();
    let seq = state.shared.log.push(RequestRecord {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        uri: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string(), |p| p.to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned()),
        status: 0,
        response_gzip: false,
        at: std::time::Instant::now(),
        origin: state.origin,
    });
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(abort);
    let resp = match AssertUnwindSafe(app.oneshot(req)).catch_unwind().await {
        Ok(Ok(resp)) => resp,
        Ok(Err(never)) => match never {},
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "mock-api: handler panicked",
        ),
    };
    let gzip = resp
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    state.shared.log.finish(seq, resp.status().as_u16(), gzip);
    resp
}

/// Accepts connections forever; each one is served by hyper until it ends or a handler aborts it.
pub(crate) async fn serve(listener: TcpListener, state: AppState, app: Router) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (state, app) = (state.clone(), app.clone());
        tokio::spawn(async move {
            let notify = Arc::new(Notify::new());
            let abort = ConnAbort(notify.clone());
            let service = hyper::service::service_fn(move |req| {
                let fut = handle(state.clone(), app.clone(), abort.clone(), req);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                // Dropping the connection closes the socket without a response.
                _ = notify.notified() => {}
            }
        });
    }
}

/// Which listener a router serves.
pub(crate) fn state_for(shared: &Arc<crate::state::Shared>, origin: Origin) -> AppState {
    AppState {
        shared: shared.clone(),
        origin,
    }
}
