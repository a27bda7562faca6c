//! `POST /shopify/webhooks/app_uninstalled`: Shopify's `app/uninstalled`
//! delivery. Verifies `X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the raw
//! body; current or previous client secret, fact sheet §8) and records the
//! uninstall in the status of each ShopifyShop whose app signed it (and,
//! for a shop with `spec.appRef`, counts it on the ShopifyApp). The
//! controller then reports `TokenValid=False` `AppUninstalled` and stops
//! Jobs and webhook work; the token Secret is kept.
//!
//! Reads ShopifyShops and Secrets, patches ShopifyShop status. Answers 400
//! naming the header when `X-Shopify-Shop-Domain` or
//! `X-Shopify-Hmac-Sha256` is missing, given twice or not of its shape
//! (checked before any apiserver request), 413 to a body over 64 KiB, 401
//! to a bad signature, 404 to a shop it has no ShopifyShop for, 200 once
//! recorded (also for a repeated delivery).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use super::apps::Seen;
use super::validate::{self, Invalid};
use super::{Public, from_kube, invalid, refuse};
use crate::crd::{HandoverPhase, ShopifyShop};
use crate::names::{FIELD_MANAGER, UNINSTALLED_TOPIC as TOPIC};
use shopify_admin::hmac::SecretUsed;
use shopify_admin::verify_webhook;

/// A header by its `X-Shopify-*` name or the newer lower-case `shopify-*`:
/// `Ok(None)` when absent, refused when its values (under either name)
/// differ or are not text — which one counted would be a guess.
fn header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
    label: &'static str,
) -> Result<Option<&'a str>, Invalid> {
    let mut values = headers
        .get_all(format!("x-shopify-{name}"))
        .iter()
        .chain(headers.get_all(format!("shopify-{name}")).iter());
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.any(|v| v != first) {
        return Err(Invalid(label));
    }
    first.to_str().map(Some).map_err(|_| Invalid(label))
}

/// The shop as its live app sees it: `spec.appRef` and the token Secret of
/// `status.app` when a move to another app has not switched yet.
fn live_view(shop: &ShopifyShop) -> ShopifyShop {
    match shop.status.as_ref().and_then(|s| s.app.as_ref()) {
        Some(live) if shop.spec.app_ref.is_some() => shop.running_as(live),
        _ => shop.clone(),
    }
}

/// The ShopifyApp the shop moved away from, once the move switched: its
/// deliveries are recognised and do not uninstall the shop.
fn previous_app(shop: &ShopifyShop) -> Option<String> {
    let status = shop.status.as_ref()?;
    let h = status.handover.as_ref()?;
    let live = status.app.as_ref().map(|a| a.name.as_str());
    let switched = matches!(h.phase, HandoverPhase::Switching | HandoverPhase::Complete);
    (switched && live != Some(h.from.name.as_str())).then(|| h.from.name.clone())
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
pub async fn uninstalled(
    State(public): State<Arc<Public>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Shapes first: nothing below is asked of the apiserver for a request
    // that cannot be a Shopify delivery.
    let shop = match header(&headers, "shop-domain", "X-Shopify-Shop-Domain") {
        Ok(Some(s)) if validate::is_shop(&s.to_ascii_lowercase()) => s.to_ascii_lowercase(),
        Ok(_) => return invalid(Invalid("X-Shopify-Shop-Domain")).into_response(),
        Err(e) => return invalid(e).into_response(),
    };
    let hmac = match header(&headers, "hmac-sha256", "X-Shopify-Hmac-Sha256") {
        Ok(Some(h)) if validate::is_webhook_hmac(h.trim()) => h.trim(),
        Ok(_) => return invalid(Invalid("X-Shopify-Hmac-Sha256")).into_response(),
        Err(e) => return invalid(e).into_response(),
    };
    let topic = match header(&headers, "topic", "X-Shopify-Topic") {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => return invalid(e).into_response(),
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "PayloadTooLarge"
            } else {
                "InvalidRequest"
            };
            return refuse(
                status,
                &shop,
                reason,
                &format!("the delivery's body: {rejection}"),
            )
            .into_response();
        }
    };
    let unknown = |detail: &str| refuse(StatusCode::NOT_FOUND, &shop, "UnknownShop", detail);
    let shops = match super::shops_for(&public.client, public.cfg.namespace.as_deref(), &shop).await {
        Ok(s) => s,
        Err(e) => {
            return from_kube(&shop, "cannot list ShopifyShops", &e, Some(unknown(""))).into_response();
        }
    };
    if shops.is_empty() {
        return unknown("no ShopifyShop for this shop").into_response();
    }
    let mut verified = Vec::new();
    let mut from_previous = Vec::new();
    for s in shops {
        // The app whose token is live decides: while a move to another app
        // waits, that is still the previous one (`status.app`).
        let s = live_view(&s);
        let creds = match crate::token_store::shop_app_credentials(&public.client, &s).await {
            Ok(c) => c,
            Err(e) if super::is_unavailable(&e) => {
                return from_kube(&shop, "cannot read the app Secret", &e, None).into_response();
            }
            Err(e) => {
                // Unreadable credentials verify nothing: as if this shop
                // had none, the others may still verify the delivery.
                tracing::warn!(shop, namespace = s.meta().namespace.as_deref().unwrap_or(""), name = %s.name_any(), error = %e, "cannot read the app credentials of a ShopifyShop");
                None
            }
        };
        if let Some(used) = creds.and_then(|c| verify_webhook(&body, hmac, &c.secret, c.previous.as_ref())) {
            verified.push((s, used == SecretUsed::Previous));
        } else if let Some(app) = previous_app(&s) {
            // The app the shop moved away from, uninstalled by the move
            // (or by the merchant afterwards): not this shop's uninstall.
            let ns = s.namespace().unwrap_or_default();
            let creds = crate::token_store::named_app_credentials(&public.client, &ns, &app)
                .await
                .ok()
                .flatten();
            if let Some(used) =
                creds.and_then(|c| verify_webhook(&body, hmac, &c.secret, c.previous.as_ref()))
            {
                from_previous.push((ns, app, used == SecretUsed::Previous));
            }
        }
    }
    if verified.is_empty() && !from_previous.is_empty() {
        for (ns, app, previous) in &from_previous {
            tracing::info!(shop, namespace = %ns, app = %app, "app/uninstalled of the app the shop moved away from; the shop is not uninstalled");
            super::apps::record(&public.client, ns, app, Seen::Uninstall, *previous).await;
        }
        return (StatusCode::OK, super::with_request_id("previous app")).into_response();
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
    if topic != TOPIC {
        // Signed by Shopify, but not for us: acknowledge so it isn't retried.
        tracing::info!(
            shop,
            topic = %super::truncated(topic),
            "ignoring a delivery of another topic"
        );
        return (StatusCode::OK, super::with_request_id("ignored")).into_response();
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
                return from_kube(&shop, "cannot record the uninstall", &e, None).into_response();
            }
        }
    }
    (StatusCode::OK, super::with_request_id("recorded")).into_response()
}
