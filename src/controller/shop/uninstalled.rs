//! The uninstalled state: once the public endpoint has recorded Shopify's
//! `app/uninstalled` in `status.appUninstalled`, the shop gets no Shopify
//! calls and no new Jobs until its token Secret changes (a reinstall). The
//! token Secret is kept. Deciding is pure; clearing the record patches the
//! ShopifyShop's status.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;

use super::webhooks;
use crate::controller::conditions::{Cond, ConditionType, Reason, Status};
use crate::controller::{Context, Error, Note};
use crate::crd::ShopifyShop;
use crate::names::FIELD_MANAGER;

/// Condition reason (TokenValid, Ready) while uninstalled.
pub const REASON: Reason = Reason::AppUninstalled;

/// What the record says about this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// No uninstall recorded.
    None,
    /// Uninstalled, and the token Secret is the one from then.
    Current,
    /// Recorded, but the token Secret changed since: reinstalled.
    Stale,
}

/// Compares the record with the token Secret as read now. Pure.
pub fn marker(shop: &ShopifyShop, secret: Option<&Secret>) -> Marker {
    let Some(record) = shop.status.as_ref().and_then(|s| s.app_uninstalled.as_ref()) else {
        return Marker::None;
    };
    let rv = secret.and_then(|s| s.resource_version()).unwrap_or_default();
    if record.secret_resource_version == rv {
        Marker::Current
    } else {
        Marker::Stale
    }
}

/// The outcome of an uninstalled shop: nothing checked, nothing changed
/// (the Warning Event is the transition into `AppUninstalled`).
pub fn outcome(shop: &ShopifyShop) -> webhooks::Outcome {
    let at = shop
        .status
        .as_ref()
        .and_then(|s| s.app_uninstalled.as_ref())
        .map(|u| u.time.0.to_string())
        .unwrap_or_default();
    let msg = format!(
        "Shopify reported app/uninstalled at {at}; reinstall the app (the operator's /oauth/install) or put a new token in Secret {}",
        shop.spec.token.secret_ref.name
    );
    webhooks::Outcome::new(
        Cond::new(ConditionType::TokenValid, Status::False, REASON, msg.clone()),
        Cond::new(
            ConditionType::WebhooksSynced,
            Status::Unknown,
            REASON,
            msg.clone(),
        ),
        shop,
    )
}

/// Removes the record once the token Secret has changed, with an Event.
pub async fn clear(ctx: &Context, shop: &ShopifyShop) -> Result<Note, Error> {
    let ns = shop.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<ShopifyShop> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = serde_json::json!({"status": {"appUninstalled": null}});
    api.patch_status(
        &shop.name_any(),
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        },
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::StatusWrite)?;
    ctx.metrics.status_writes.inc();
    Ok(Note::new(
        EventType::Normal,
        "AppReinstalled",
        "Uninstall",
        format!(
            "Secret {} has a new token since app/uninstalled; resuming",
            shop.spec.token.secret_ref.name
        ),
    ))
}
