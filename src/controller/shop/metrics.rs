//! The shop's gauges after a pass, from the status it is about to write:
//! one series per condition, the Admin API version Shopify served, and
//! whether it flagged deprecated usage. Touches only the operator's own
//! metrics (no apiserver, no Shopify); set on every pass, so a steady
//! resync that writes no status still keeps them current.

use kube::ResourceExt;

use crate::controller::Context;
use crate::crd::{ShopifyShop, ShopifyShopStatus};

/// Sets the shop's condition, served-version and deprecation gauges from
/// `next`.
pub(super) fn record(ctx: &Context, shop: &ShopifyShop, next: &ShopifyShopStatus) {
    let ns = shop.namespace().unwrap_or_default();
    let name = shop.name_any();
    for c in &next.conditions {
        ctx.metrics
            .shop_condition(&ns, &name, &c.type_, &c.status, &c.reason);
    }
    let requested = shop.spec.admin_api_version_or_default();
    ctx.metrics
        .served_version(&ns, &name, requested, next.served_api_version.as_deref());
    // The deprecation is about the version the requests were served at.
    let deprecated_at = next.served_api_version.as_deref().unwrap_or(requested);
    ctx.metrics.api_deprecated(
        &ns,
        &name,
        next.api_deprecation_reason.as_ref().map(|_| deprecated_at),
    );
}
