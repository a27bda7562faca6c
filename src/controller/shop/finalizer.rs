//! The finalizer of `deletionPolicy: Delete`: added and removed with a
//! guarded patch, and the clean-up it stands for — deleting the
//! subscriptions this ShopifyShop manages. Talks to Shopify and the
//! apiserver. Clean-up is best effort and never blocks deletion. Step 2
//! of a pass ([`step`]): before anything else is read or sent.

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::{fetch, plan};
use crate::controller::{Context, Error, Note};
use crate::crd::{DeletionPolicy, ShopifyShop};
use crate::names::FINALIZER;

/// Adds or removes the finalizer as `deletionPolicy` asks, or cleans up a
/// shop being deleted. `Some`: the pass ends here.
pub(super) async fn step(ctx: &Context, shop: &ShopifyShop) -> Result<Option<Action>, Error> {
    let has_finalizer = shop.finalizers().iter().any(|f| f == FINALIZER);
    if shop.metadata.deletion_timestamp.is_some() {
        return if has_finalizer {
            cleanup(ctx, shop).await.map(Some)
        } else {
            Ok(Some(Action::await_change()))
        };
    }
    let wants_finalizer = shop.spec.deletion_policy_or_default() == DeletionPolicy::Delete;
    if wants_finalizer != has_finalizer {
        set(ctx, shop, wants_finalizer).await?;
        // The patch triggers a new reconcile with the updated object.
        return Ok(Some(Action::await_change()));
    }
    Ok(None)
}

/// Adds (`present`) or removes the finalizer.
pub(super) async fn set(ctx: &Context, shop: &ShopifyShop, present: bool) -> Result<(), Error> {
    let ns = shop.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<ShopifyShop> = Api::namespaced(ctx.client.clone(), &ns);
    let mut finalizers: Vec<String> = shop
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.to_string());
    }
    // The resourceVersion makes this a guarded write: a concurrent change to
    // the finalizer list fails it instead of being overwritten.
    let patch = serde_json::json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": shop.resource_version()}
    });
    api.patch(&shop.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::Finalizer)?;
    Ok(())
}

/// Deletion with `deletionPolicy: Delete`: remove the subscriptions this
/// resource manages, best effort. It never blocks deletion: any failure is a
/// Warning Event and the finalizer goes anyway.
pub(super) async fn cleanup(ctx: &Context, shop: &ShopifyShop) -> Result<Action, Error> {
    let result: Result<usize, String> = async {
        let token = fetch::token(&ctx.client, shop)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.message())?;
        let Some(spec) = &shop.spec.webhooks else {
            return Ok(0);
        };
        let domain = &shop.spec.domain;
        let version = shop.spec.admin_api_version_or_default();
        let listing = ctx
            .shopify
            .list_subscriptions(domain, version, &token)
            .await
            .map_err(|e| e.to_string())?;
        let extra = super::webhooks::extra_subscriptions(&ctx.settings, shop);
        // Families are host-independent for HTTPS: any host will do.
        let wanted = plan::wanted(spec, "example.invalid", &extra);
        let inventory = super::webhooks::inventory::owned(shop.status.as_ref());
        let owned = plan::owned_subscriptions(&wanted, &inventory, &listing.subscriptions);
        if owned.is_empty() {
            return Ok(0);
        }
        let changes: Vec<_> = owned
            .iter()
            .map(|s| shopify_admin::Change::Delete {
                id: s.id.clone(),
                topic: s.topic.clone(),
            })
            .collect();
        let results = ctx
            .shopify
            .apply(domain, version, &token, &changes)
            .await
            .map_err(|e| e.to_string())?;
        let failed = results.iter().filter(|r| r.user_errors().is_some()).count();
        if failed > 0 {
            return Err(format!("{failed} of {} deletions failed", changes.len()));
        }
        Ok(changes.len())
    }
    .await;
    let note = match result {
        Ok(n) => Note::new(
            EventType::Normal,
            "SubscriptionsDeleted",
            "Cleanup",
            format!("deletionPolicy Delete: {n} subscriptions deleted"),
        ),
        Err(e) => Note::new(
            EventType::Warning,
            "CleanupFailed",
            "Cleanup",
            format!("deletionPolicy Delete: subscriptions may remain on Shopify: {e}"),
        ),
    };
    ctx.publish(shop, &note).await;
    set(ctx, shop, false).await?;
    Ok(Action::await_change())
}
