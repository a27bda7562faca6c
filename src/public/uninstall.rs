//! `POST /shopify/webhooks/app_uninstalled`: Shopify's `app/uninstalled`
//! delivery. Verifies `X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the raw
//! body; current or previous client secret, fact sheet §8) and records the
//! uninstall in the status of each ShopifyShop whose app signed it (and,
//! for a shop with `spec.appRef`, counts it on the ShopifyApp). The
//! controller then reports `TokenValid=False` `AppUninstalled` and stops
//! Jobs and webhook work; the token Secret is kept.
//!
//! Reads ShopifyShops and Secrets, patches ShopifyShop status. Answers 401
//! to a bad signature, 404 to a shop it has no ShopifyShop for, 200 once
//! recorded (also for a repeated delivery).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use super::apps::Seen;
use super::{Public, refuse, unavailable};
use crate::crd::ShopifyShop;
use crate::names::{FIELD_MANAGER, UNINSTALLED_TOPIC as TOPIC};
use shopify_admin::hmac::SecretUsed;
use shopify_admin::{is_valid_shop_domain, verify_webhook};

/// A header by its `X-Shopify-*` name or the newer lower-case `shopify-*`.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(format!("x-shopify-{name}"))
        .or_else(|| headers.get(format!("shopify-{name}")))
        .and_then(|v| v.to_str().ok())
}

/// Records the uninstall on `shop` unless it already is, for this Secret.
async fn mark(public: &Public, shop: &ShopifyShop) -> Result<bool, kube::Error> {
    let ns = shop.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(public.client.clone(), &ns);
    let rv = secrets
        .get_opt(&shop.spec.token.secret_ref.name)
        .await?
        .and_then(|s| s.resource_version())
        .unwrap_or_default();
    let already = shop
        .status
        .as_ref()
        .and_then(|s| s.app_uninstalled.as_ref())
        .is_some_and(|u| u.secret_resource_version == rv);
    if already {
        return Ok(false);
    }
    let api: Api<ShopifyShop> = Api::namespaced(public.client.clone(), &ns);
    let time = k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second())
        .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now());
    // A merge patch, not the controller's apply: this field is the
    // endpoint's, and the controller leaves it out of what it applies.
    let patch = serde_json::json!({
        "status": {"appUninstalled": {"time": time.to_string(), "secretResourceVersion": rv}}
    });
    api.patch_status(
        &shop.name_any(),
        &PatchParams {
            field_manager: Some(format!("{FIELD_MANAGER}-webhooks")),
            ..Default::default()
        },
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(true)
}

/// The handler.
pub async fn uninstalled(State(public): State<Arc<Public>>, headers: HeaderMap, body: Bytes) -> Response {
    let shop = header(&headers, "shop-domain")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !is_valid_shop_domain(&shop) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "",
            "InvalidShop",
            "missing or invalid X-Shopify-Shop-Domain",
        )
        .into_response();
    }
    let Some(hmac) = header(&headers, "hmac-sha256") else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            &shop,
            "InvalidHmac",
            "missing X-Shopify-Hmac-Sha256",
        )
        .into_response();
    };
    let shops = match super::shops_for(&public.client, public.cfg.namespace.as_deref(), &shop).await {
        Ok(s) => s,
        Err(e) => {
            return unavailable(&shop, "cannot read ShopifyShops", &e).into_response();
        }
    };
    if shops.is_empty() {
        return refuse(
            StatusCode::NOT_FOUND,
            &shop,
            "UnknownShop",
            "no ShopifyShop for this shop",
        )
        .into_response();
    }
    let mut verified = Vec::new();
    for s in shops {
        let creds = match crate::token_store::shop_app_credentials(&public.client, &s).await {
            Ok(c) => c,
            Err(e) => {
                return unavailable(&shop, "cannot read the app Secret", &e).into_response();
            }
        };
        if let Some(used) = creds.and_then(|c| verify_webhook(&body, hmac, &c.secret, c.previous.as_ref())) {
            verified.push((s, used == SecretUsed::Previous));
        }
    }
    if verified.is_empty() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            &shop,
            "InvalidHmac",
            "the delivery's HMAC does not verify with the app's client secret",
        )
        .into_response();
    }
    if header(&headers, "topic") != Some(TOPIC) {
        // Signed by Shopify, but not for us: acknowledge so it isn't retried.
        tracing::info!(
            shop,
            topic = header(&headers, "topic").unwrap_or(""),
            "ignoring a delivery of another topic"
        );
        return (StatusCode::OK, "ignored\n").into_response();
    }
    for (s, previous) in &verified {
        match mark(&public, s).await {
            Ok(changed) => {
                tracing::info!(
                    shop,
                    namespace = s.meta().namespace.as_deref().unwrap_or(""),
                    name = %s.name_any(),
                    changed,
                    "app/uninstalled recorded"
                );
                if let Some(app) = &s.spec.app_ref {
                    let seen = if changed { Seen::Uninstall } else { Seen::Nothing };
                    let ns = s.namespace().unwrap_or_default();
                    super::apps::record(&public.client, &ns, &app.name, seen, *previous).await;
                }
            }
            Err(e) => {
                // Shopify retries a non-2xx delivery: the record isn't lost.
                return unavailable(&shop, "cannot record the uninstall", &e).into_response();
            }
        }
    }
    (StatusCode::OK, "recorded\n").into_response()
}
