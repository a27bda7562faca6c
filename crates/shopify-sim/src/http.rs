//! The shop-facing HTTP endpoints — `POST /{shop}/admin/api/{version}/graphql.json`
//! and `POST /{shop}/admin/oauth/access_token` — with Shopify's status codes
//! and bodies, fault injection, added latency, counters and one log line per
//! request (never a token).

use super::engine::{self, GqlBody};
use super::faults::{Effect, RequestKind};
use super::oauth::AuthError;
use super::schema::Schemas;
use super::server::ConnControl;
use super::state::{SimState, shop_key};
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::time::Instant;

/// Shopify's 401 body for a missing, wrong or revoked token ([3P]).
pub(crate) const UNAUTHORIZED_BODY: &str =
    "[API] Invalid API key or access token (unrecognized login or wrong password)";
/// Where Shopify points clients that used a deprecated field.
const DEPRECATION_DOCS: &str = "https://shopify.dev/api/usage/versioning#deprecation-practices";

/// What every handler needs: the shared state and the compiled schemas.
pub(crate) struct App {
    pub state: Arc<SimState>,
    pub schemas: Schemas,
    /// Sends webhook deliveries (trusting `SimConfig::ca_file` too).
    pub deliverer: reqwest::Client,
}

/// The body Shopify sends with a status (only 401 and 404 are documented;
/// the others follow Shopify's REST error shape).
pub(crate) fn status_body(status: u16) -> Json {
    let msg = match status {
        400 => return json!({"errors": {"query": "Required parameter missing or invalid"}}),
        401 => UNAUTHORIZED_BODY,
        402 => "Unavailable Shop",
        403 => "[API] This action requires merchant approval for the requested scope.",
        404 => "Not Found",
        423 => "Locked",
        429 => {
            "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
        }
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        s => StatusCode::from_u16(s)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error"),
    };
    json!({ "errors": msg })
}

pub(crate) fn json_response(status: u16, body: &Json) -> Response {
    bytes_response(status, body.to_string().into_bytes())
}

fn bytes_response(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, Body::from(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn fault_response(status: u16) -> Response {
    let mut resp = json_response(status, &status_body(status));
    if status == 429 {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    resp
}

/// Never returns: asks the connection task to drop the connection, which
/// also drops this future.
async fn drop_connection(conn: Option<Extension<ConnControl>>) -> Response {
    if let Some(Extension(c)) = conn {
        c.drop_connection();
        std::future::pending::<()>().await;
    }
    // Not served by our accept loop (e.g. a router embedded elsewhere):
    // the closest we can do is an empty 502.
    StatusCode::BAD_GATEWAY.into_response()
}

/// Everything the one-line request log needs.
#[derive(Default)]
struct LogLine {
    version: Option<String>,
    operations: Vec<String>,
    requested: Option<u64>,
    actual: Option<u64>,
    throttled: bool,
}

/// Applies latency and faults, runs `inner`, records the status and logs.
async fn shop_request<F, Fut>(
    app: &App,
    shop: &str,
    endpoint: &'static str,
    kind: RequestKind,
    conn: Option<Extension<ConnControl>>,
    inner: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = (Response, LogLine)>,
{
    let started = Instant::now();
    let latency = app.state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    app.state.count(shop, |c| c.requests += 1);
    let fault = app.state.take_fault(shop, kind);
    let (resp, line) = match fault {
        Some(Effect::Status(s)) => (fault_response(s), LogLine::default()),
        Some(Effect::Drop) => {
            app.state.count(shop, |c| c.dropped += 1);
            tracing::info!(shop, endpoint, fault = "drop-connection", "request dropped");
            return drop_connection(conn).await;
        }
        Some(Effect::TimeoutAfterApply(_)) | None => inner().await,
    };
    let status = resp.status().as_u16();
    app.state
        .count(shop, |c| *c.by_status.entry(status).or_default() += 1);
    tracing::info!(
        shop,
        endpoint,
        version = line.version.as_deref().unwrap_or("-"),
        operations = %line.operations.join(","),
        status,
        requested_cost = line.requested,
        actual_cost = line.actual,
        throttled = line.throttled,
        ms = %format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    if let Some(Effect::TimeoutAfterApply(hang)) = fault {
        app.state.count(shop, |c| c.dropped += 1);
        tokio::time::sleep(hang).await;
        return drop_connection(conn).await;
    }
    resp
}

/// `POST /{shop}/admin/api/{version}/graphql.json`.
pub(crate) async fn graphql(
    State(app): State<Arc<App>>,
    Path((shop, version)): Path<(String, String)>,
    conn: Option<Extension<ConnControl>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shop = shop_key(&shop);
    let (app2, shop2) = (app.clone(), shop.clone());
    // A cheap look for the fault filter; the engine does the real parsing.
    let kind = if body.windows(8).any(|w| w == b"mutation") {
        RequestKind::Mutation
    } else {
        RequestKind::Other
    };
    shop_request(&app, &shop, "graphql", kind, conn, || async move {
        graphql_inner(&app2, &shop2, &version, &headers, body).await
    })
    .await
}

async fn graphql_inner(
    app: &App,
    shop: &str,
    version: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> (Response, LogLine) {
    let mut line = LogLine::default();
    if !app.state.shop_exists(shop) {
        return (json_response(404, &status_body(404)), line);
    }
    let Some(served) = app.state.versions.resolve(version) else {
        return (json_response(404, &status_body(404)), line);
    };
    line.version = Some(served.to_string());
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok());
    let caller = match app.state.authenticate(shop, token) {
        Ok(caller) => caller,
        Err(AuthError::UnknownShop) => return (json_response(404, &status_body(404)), line),
        Err(AuthError::Unauthorized) => return (json_response(401, &status_body(401)), line),
    };
    let is_graphql_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/graphql"));
    let parsed = if is_graphql_body {
        String::from_utf8(body.to_vec()).ok().map(|q| GqlBody {
            query: Some(q),
            ..Default::default()
        })
    } else {
        serde_json::from_slice::<GqlBody>(&body).ok()
    };
    let Some(gql) = parsed.filter(|b| b.query.as_deref().is_some_and(|q| !q.trim().is_empty())) else {
        return (json_response(400, &status_body(400)), line);
    };
    let done = engine::execute(
        &app.schemas,
        &app.state,
        &app.deliverer,
        shop,
        served,
        caller,
        gql,
    )
    .await;
    line.operations = done.operations;
    line.requested = Some(done.requested);
    line.actual = done.outcome.actual;
    line.throttled = done.outcome.throttled;
    let status = if done.outcome.throttled {
        app.state.throttled_http_status
    } else {
        200
    };
    let mut resp = bytes_response(status, done.body);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&served.to_string()) {
        h.insert("x-shopify-api-version", v);
    }
    if done.outcome.deprecated {
        h.insert(
            "x-shopify-api-deprecated-reason",
            HeaderValue::from_static(DEPRECATION_DOCS),
        );
    }
    (resp, line)
}

/// Token request parameters from the query string and a JSON or form body.
fn token_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<serde_json::Map<String, Json>> {
    let mut params = serde_json::Map::new();
    let form = |raw: &[u8], params: &mut serde_json::Map<String, Json>| {
        for (k, v) in url::form_urlencoded::parse(raw) {
            params.insert(k.into_owned(), Json::String(v.into_owned()));
        }
    };
    if let Some(q) = query {
        form(q.as_bytes(), &mut params);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if is_json || body.first() == Some(&b'{') {
        match serde_json::from_slice::<Json>(body).ok()? {
            Json::Object(m) => params.extend(m),
            _ => return None,
        }
    } else {
        form(body, &mut params);
    }
    Some(params)
}

/// `POST /{shop}/admin/oauth/access_token`.
pub(crate) async fn access_token(
    State(app): State<Arc<App>>,
    Path(shop): Path<String>,
    RawQuery(query): RawQuery,
    conn: Option<Extension<ConnControl>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shop = shop_key(&shop);
    let (app2, shop2) = (app.clone(), shop.clone());
    shop_request(&app, &shop2, "oauth", RequestKind::Other, conn, || async move {
        let line = LogLine {
            operations: vec!["access_token".into()],
            ..Default::default()
        };
        if !app2.state.shop_exists(&shop) {
            return (json_response(404, &status_body(404)), line);
        }
        app2.state.count(&shop, |c| {
            *c.operations.entry("access_token".into()).or_default() += 1
        });
        let Some(params) = token_params(query.as_deref(), &headers, &body) else {
            let body = json!({"error": "invalid_request", "error_description": "Malformed request body"});
            return (json_response(400, &body), line);
        };
        let resp = match app2.state.token_request(&shop, &params) {
            Ok(body) => json_response(200, &body),
            Err((status, body)) => json_response(status, &body),
        };
        (resp, line)
    })
    .await
}

/// Anything else: Shopify's 404.
pub(crate) async fn not_found() -> Response {
    json_response(404, &status_body(404))
}
