//! Step 2 of a webhooks pass: where Shopify has the shop's subscriptions
//! now, and the version signals of its answer. Talks to Shopify (one
//! paginated list).

use std::time::Duration;

use super::Outcome;
use super::verdict::classify;
use crate::controller::Context;
use crate::controller::conditions::Cond;
use crate::crd::ShopifyShop;
use shopify_admin::{AccessToken, Listing, ShopifyError};

/// The shop's subscriptions, or the whole outcome when Shopify failed.
/// `token_ok`: the `TokenValid` so far, kept unless the error is the
/// token's.
pub(super) async fn list(
    ctx: &Context,
    shop: &ShopifyShop,
    token: &AccessToken,
    token_ok: &Cond,
) -> Result<Listing, Outcome> {
    let version = shop.spec.admin_api_version_or_default();
    match ctx
        .shopify
        .list_subscriptions(&shop.spec.domain, version, token)
        .await
    {
        Ok(l) => {
            ctx.metrics.shopify("list", "ok", l.meta.requests, l.meta.waited);
            Ok(l)
        }
        Err(e) => {
            ctx.metrics.shopify("list", e.reason(), 1, Duration::ZERO);
            if matches!(e, ShopifyError::Unauthorized) {
                ctx.token_checks
                    .forget(&shop.metadata.uid.clone().unwrap_or_default());
            }
            let (token_cond, hooks, retry) = classify(&e, "listing subscriptions");
            let mut out = Outcome::new(token_cond.unwrap_or_else(|| token_ok.clone()), hooks, shop);
            out.retry_in = retry;
            out.failed = retry.is_some();
            Err(out)
        }
    }
}

/// The version Shopify served when not the one asked for, and its
/// deprecation reason, if any.
pub(super) fn version_signals(listing: &Listing, version: &str) -> (Option<String>, Option<String>) {
    let served = listing.meta.served_version.clone().filter(|v| v != version);
    (served, listing.meta.deprecated_reason.clone())
}
