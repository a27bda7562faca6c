//! The `/_sim` admin API (JSON): what tests and rehearsals use to load
//! shops, inspect subscriptions, timelines and counters, and inject faults
//! from outside the process. Every route mirrors a method of [`super::Sim`].
//! Adding a subscription takes the fixture form, `clientId` included, so
//! another app's subscription can be planted too.

use super::faults::Fault;
use super::fixture::{Fixture, SubscriptionFixture};
use super::http::{App, json_response, status_body};
use super::subs::parse_gid;
use super::versions::ApiVersion;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn bad_request(msg: impl std::fmt::Display) -> Response {
    json_response(400, &json!({"error": msg.to_string()}))
}

fn unknown_shop() -> Response {
    json_response(404, &status_body(404))
}

fn ok(body: serde_json::Value) -> Response {
    json_response(200, &body)
}

/// The admin routes, to be nested under `/_sim`.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/deliveries", post(super::deliver::deliveries))
        .route("/fixture", post(load_fixture))
        .route("/shops/{shop}/subscriptions", get(list_subs).post(add_sub))
        .route("/shops/{shop}/subscriptions/{id}", delete(delete_sub))
        .route("/shops/{shop}/counters", get(shop_counters))
        .route("/shops/{shop}/timeline", get(timeline))
        .route("/shops/{shop}/bucket", get(bucket))
        .route("/shops/{shop}/revoke", post(revoke))
        .route("/shops/{shop}/expire", post(expire))
        .route("/shops/{shop}/expire-refresh", post(expire_refresh))
        .route("/shops/{shop}/codes", post(issue_code))
        .route("/counters", get(all_counters))
        .route("/counters/reset", post(reset_counters))
        .route("/faults", post(inject).delete(clear_faults))
        .route("/latency", post(set_latency))
        .route("/schema/{version}", get(schema_sdl))
}

/// `POST /_sim/fixture`: JSON, or YAML with a YAML content type.
async fn load_fixture(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let yaml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("yaml"));
    let parsed = if yaml {
        std::str::from_utf8(&body)
            .map_err(|e| e.to_string())
            .and_then(Fixture::from_yaml)
    } else {
        serde_json::from_slice::<Fixture>(&body)
            .map_err(|e| e.to_string())
            .and_then(|f| f.validate().map(|()| f))
    };
    match parsed {
        Ok(f) => {
            let shops = f.shops.len();
            app.state.load(f);
            ok(json!({"loaded": shops}))
        }
        Err(e) => bad_request(e),
    }
}

async fn list_subs(State(app): State<Arc<App>>, Path(shop): Path<String>) -> Response {
    if !app.state.shop_exists(&shop) {
        return unknown_shop();
    }
    ok(json!(app.state.subscriptions(&shop, None)))
}

async fn add_sub(State(app): State<Arc<App>>, Path(shop): Path<String>, body: Bytes) -> Response {
    if !app.state.shop_exists(&shop) {
        return unknown_shop();
    }
    let sub: SubscriptionFixture = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request(e),
    };
    match app.state.add_subscription(&shop, &sub) {
        Some(id) => json_response(201, &json!({"id": id})),
        None => bad_request(format!(
            "unknown topic {:?} or format {:?}",
            sub.topic, sub.format
        )),
    }
}

async fn delete_sub(State(app): State<Arc<App>>, Path((shop, id)): Path<(String, String)>) -> Response {
    match parse_gid(&id) {
        Some(n) if app.state.remove_subscription(&shop, n) => StatusCode::NO_CONTENT.into_response(),
        _ => unknown_shop(),
    }
}

/// `GET /_sim/shops/{shop}/timeline`: the entries, `at` in RFC 3339 with
/// microseconds.
async fn timeline(State(app): State<Arc<App>>, Path(shop): Path<String>) -> Response {
    if !app.state.shop_exists(&shop) {
        return unknown_shop();
    }
    ok(json!(app.state.timeline(&shop)))
}

async fn shop_counters(State(app): State<Arc<App>>, Path(shop): Path<String>) -> Response {
    ok(json!(app.state.counters(&shop)))
}

async fn all_counters(State(app): State<Arc<App>>) -> Response {
    ok(json!(app.state.all_counters()))
}

async fn reset_counters(State(app): State<Arc<App>>) -> Response {
    app.state.reset_counters();
    StatusCode::NO_CONTENT.into_response()
}

async fn bucket(State(app): State<Arc<App>>, Path(shop): Path<String>) -> Response {
    if !app.state.shop_exists(&shop) {
        return unknown_shop();
    }
    ok(json!(app.state.bucket_status(&shop, None)))
}

async fn revoke(State(app): State<Arc<App>>, Path(shop): Path<String>) -> Response {
    if app.state.revoke(&shop) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unknown_shop()
    }
}

async fn expire(State(app): State<Arc<App>>, Path(shop): Path<String>) -> Response {
    if app.state.expire_access_tokens(&shop) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unknown_shop()
    }
}

async fn expire_refresh(State(app): State<Arc<App>>, Path(shop): Path<String>) -> Response {
    if app.state.expire_refresh_tokens(&shop) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unknown_shop()
    }
}

/// `{"scopes"?, "clientId"?}`: without `clientId` the code goes to the
/// first app, as [`super::Sim::issue_code`] does.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CodeRequest {
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    client_id: Option<String>,
}

async fn issue_code(State(app): State<Arc<App>>, Path(shop): Path<String>, body: Bytes) -> Response {
    let req: CodeRequest = if body.is_empty() {
        CodeRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad_request(e),
        }
    };
    match app.state.issue_code(&shop, req.client_id.as_deref(), req.scopes) {
        Some(code) => ok(json!({"code": code})),
        None => unknown_shop(),
    }
}

async fn inject(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Fault>(&body) {
        Ok(f) => {
            app.state.inject(f);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn clear_faults(State(app): State<Arc<App>>) -> Response {
    app.state.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct Latency {
    ms: u64,
}

async fn set_latency(State(app): State<Arc<App>>, Json(l): Json<Latency>) -> Response {
    app.state.set_latency(Duration::from_millis(l.ms));
    StatusCode::NO_CONTENT.into_response()
}

async fn schema_sdl(State(app): State<Arc<App>>, Path(version): Path<String>) -> Response {
    match app.state.versions.resolve(&version) {
        Some(v) => app.schemas.sdl(v).into_response(),
        None if ApiVersion::parse(&version).is_none() => bad_request("malformed version"),
        None => unknown_shop(),
    }
}
