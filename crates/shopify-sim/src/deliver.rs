//! Webhook deliveries, as Shopify sends them, so a staging OMS can be
//! exercised end to end without Shopify: `POST /_sim/deliveries` with
//! `{"shop", "topic", "payload"?}` sends one signed delivery to every
//! HTTP(S) subscription of that topic of the shop and answers what each
//! endpoint said; Pub/Sub and EventBridge subscriptions are listed as
//! skipped (the simulator does not publish to clouds). Network: one HTTPS
//! request per HTTP(S) subscription.
//!
//! Shopify signs a delivery with the app's oldest unrevoked secret (the
//! previous one during a rotation), as base64 HMAC-SHA256 of the raw body
//! in `X-Shopify-Hmac-Sha256` (shared/shopify-api.md §8). With several apps
//! loaded, the first one signs: subscriptions here do not record the app
//! that created them (Shopify's do, since each app sees only its own).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::address::Endpoint;
use super::authorize::hmac_sha256;
use super::http::{App, json_response};
use super::state::shop_key;
use super::topics;

/// The body of `POST /_sim/deliveries`.
#[derive(Debug, Deserialize)]
pub(crate) struct DeliveryRequest {
    shop: String,
    /// REST (`orders/create`) or enum (`ORDERS_CREATE`) form.
    topic: String,
    /// The JSON body to deliver; default a minimal test object.
    #[serde(default)]
    payload: Option<Value>,
}

fn sign(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret, body))
}

fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `POST /_sim/deliveries`.
pub(crate) async fn deliveries(State(app): State<Arc<App>>, Json(req): Json<DeliveryRequest>) -> Response {
    let Some(topic) = topics::lookup(&req.topic) else {
        return json_response(400, &json!({"error": format!("unknown topic {}", req.topic)}));
    };
    let secret = {
        let g = app.state.lock();
        if !g.shops.contains_key(&shop_key(&req.shop)) {
            return json_response(404, &json!({"error": format!("unknown shop {}", req.shop)}));
        }
        let Some(app_creds) = g.first_app() else {
            return json_response(
                409,
                &json!({"error": "no app credentials loaded: deliveries are signed with the app's secret"}),
            );
        };
        app_creds.signing_secret().to_owned()
    };
    let wanted = topics::rest_to_enum(topic);
    let subs: Vec<_> = app
        .state
        .subscriptions(&req.shop)
        .into_iter()
        .filter(|s| s.topic == wanted)
        .collect();
    let body = serde_json::to_vec(&req.payload.unwrap_or_else(|| json!({"test": true}))).unwrap_or_default();
    let hmac = sign(&secret, &body);
    let triggered_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut out = Vec::new();
    for sub in subs {
        if Endpoint::of(&sub.address).is_cloud() {
            out.push(json!({"id": sub.id, "address": sub.address, "skipped": "not an HTTP endpoint"}));
            continue;
        }
        let sent = app
            .deliverer
            .post(&sub.address)
            .header("Content-Type", "application/json")
            .header("X-Shopify-Topic", topic)
            .header("X-Shopify-Shop-Domain", req.shop.as_str())
            .header("X-Shopify-API-Version", app.state.webhook_api_version.as_str())
            .header("X-Shopify-Webhook-Id", random_id())
            .header("X-Shopify-Event-Id", random_id())
            .header("X-Shopify-Triggered-At", triggered_at.as_str())
            .header("X-Shopify-Hmac-Sha256", hmac.as_str())
            .body(body.clone())
            .send()
            .await;
        out.push(match sent {
            Ok(resp) => json!({"id": sub.id, "address": sub.address, "status": resp.status().as_u16()}),
            Err(e) => json!({"id": sub.id, "address": sub.address, "error": e.to_string()}),
        });
    }
    json_response(200, &json!({"deliveries": out}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_base64_hmac_sha256_of_the_raw_body() {
        // Computed independently: printf '{"test":true}' | openssl dgst -sha256 -hmac hush -binary | base64
        assert_eq!(
            sign("hush", br#"{"test":true}"#),
            "MFxVIx5OYk1Fz0vkqOzALAmTh9Kwo955JudSIx+kfIs="
        );
        assert_eq!(random_id().len(), 36);
    }
}
