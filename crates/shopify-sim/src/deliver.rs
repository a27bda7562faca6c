//! Webhook deliveries, as Shopify sends them, so a staging OMS can be
//! exercised end to end without Shopify: `POST /_sim/deliveries` with
//! `{"shop", "topic", "payload"?, "clientId"?}` sends one signed delivery to
//! every HTTP(S) subscription of that topic of the shop (only that app's,
//! with `clientId`) and answers what each endpoint said; Pub/Sub and
//! EventBridge subscriptions are listed as skipped (the simulator does not
//! publish to clouds). Network: one HTTPS request per HTTP(S) subscription.
//! The same sender carries the `app/uninstalled` webhook (`uninstall.rs`).
//!
//! Shopify signs a delivery with the oldest unrevoked secret (the previous
//! one during a rotation) of the app that owns the subscription, as base64
//! HMAC-SHA256 of the raw body in `X-Shopify-Hmac-Sha256`
//! (shared/shopify-api.md §8). Each subscription records its app, so with
//! several apps loaded each delivery is signed by its own app; one whose app
//! is not loaded (no secret to sign with) is listed as skipped.

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
    /// Deliver only to this app's subscriptions.
    #[serde(default, rename = "clientId")]
    client_id: Option<String>,
}

/// One webhook to send: where, what and how it is signed.
pub(crate) struct Outgoing<'a> {
    pub address: &'a str,
    /// REST form, for `X-Shopify-Topic`.
    pub topic: &'a str,
    pub shop: &'a str,
    pub api_version: &'a str,
    /// The owning app's signing secret.
    pub secret: &'a str,
    pub body: &'a [u8],
}

/// Sends one delivery with Shopify's headers; the endpoint's status.
pub(crate) async fn send(client: &reqwest::Client, out: Outgoing<'_>) -> Result<u16, String> {
    let triggered_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    client
        .post(out.address)
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", out.topic)
        .header("X-Shopify-Shop-Domain", out.shop)
        .header("X-Shopify-API-Version", out.api_version)
        .header("X-Shopify-Webhook-Id", random_id())
        .header("X-Shopify-Event-Id", random_id())
        .header("X-Shopify-Triggered-At", triggered_at)
        .header("X-Shopify-Hmac-Sha256", sign(out.secret, out.body))
        .body(out.body.to_vec())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
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
    let wanted = topics::rest_to_enum(topic);
    if !app.state.shop_exists(&req.shop) {
        return json_response(404, &json!({"error": format!("unknown shop {}", req.shop)}));
    }
    let subs = app.state.subscriptions(&req.shop, req.client_id.as_deref());
    // Each subscription with its owner's signing secret (`None`: its app is
    // not loaded, so nothing can sign for it).
    let targets: Vec<(super::SimSubscription, Option<String>)> = {
        let g = app.state.lock();
        if g.apps.is_empty() {
            return json_response(
                409,
                &json!({"error": "no app credentials loaded: deliveries are signed with the app's secret"}),
            );
        }
        subs.into_iter()
            .filter(|s| s.topic == wanted)
            .map(|s| {
                let secret = g.app(&s.client_id).map(|a| a.signing_secret().to_owned());
                (s, secret)
            })
            .collect()
    };
    let body = serde_json::to_vec(&req.payload.unwrap_or_else(|| json!({"test": true}))).unwrap_or_default();
    let mut out = Vec::new();
    for (sub, secret) in targets {
        if Endpoint::of(&sub.address).is_cloud() {
            out.push(json!({"id": sub.id, "address": sub.address, "skipped": "not an HTTP endpoint"}));
            continue;
        }
        let Some(secret) = secret else {
            out.push(json!({"id": sub.id, "address": sub.address,
                            "skipped": format!("app {:?} is not loaded: nothing to sign with", sub.client_id)}));
            continue;
        };
        let sent = send(
            &app.deliverer,
            Outgoing {
                address: &sub.address,
                topic,
                shop: &req.shop,
                api_version: &app.state.webhook_api_version,
                secret: &secret,
                body: &body,
            },
        )
        .await;
        out.push(match sent {
            Ok(status) => {
                json!({"id": sub.id, "address": sub.address, "clientId": sub.client_id, "status": status})
            }
            Err(e) => json!({"id": sub.id, "address": sub.address, "clientId": sub.client_id, "error": e}),
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
