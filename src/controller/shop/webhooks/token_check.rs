//! Step 1 of a webhooks pass: the token, checked with Shopify once per
//! token value (cached by fingerprint in `Context::token_checks`), so a
//! steady resync costs one list request only; and refused when it belongs
//! to another shop. Talks to Shopify (`tokenInfo`).

use std::time::Duration;

use super::Outcome;
use super::verdict::classify;
use crate::controller::Context;
use crate::controller::conditions::{Cond, ConditionType, Reason, Status};
use crate::crd::ShopifyShop;
use shopify_admin::{AccessToken, TokenInfo};

/// What Shopify says about `token`, or the whole outcome when the pass
/// can go no further (Shopify refused the token or failed, or the token is
/// another shop's).
pub(super) async fn check(
    ctx: &Context,
    shop: &ShopifyShop,
    token: &AccessToken,
) -> Result<TokenInfo, Outcome> {
    let domain = &shop.spec.domain;
    let info = cached_or_asked(ctx, shop, token).await?;
    if !info.myshopify_domain.is_empty() && !info.myshopify_domain.eq_ignore_ascii_case(domain) {
        ctx.token_checks
            .forget(&shop.metadata.uid.clone().unwrap_or_default());
        return Err(Outcome::new(
            Cond::new(
                ConditionType::TokenValid,
                Status::False,
                Reason::TokenShopMismatch,
                format!("the token belongs to {}, not {domain}", info.myshopify_domain),
            ),
            Cond::new(
                ConditionType::WebhooksSynced,
                Status::Unknown,
                Reason::TokenInvalid,
                "no valid token for this shop",
            ),
            shop,
        ));
    }
    Ok(info)
}

/// The cached check, else Shopify's answer (cached when it is one).
async fn cached_or_asked(
    ctx: &Context,
    shop: &ShopifyShop,
    token: &AccessToken,
) -> Result<TokenInfo, Outcome> {
    // Without webhooks no list request re-validates the token, so the check
    // itself is repeated every resync interval.
    let max_age = if shop.spec.webhooks.is_some() {
        Duration::MAX
    } else {
        ctx.settings.resync_interval
    };
    if let Some(info) = ctx.token_checks.get(shop, token, max_age) {
        return Ok(info);
    }
    let version = shop.spec.admin_api_version_or_default();
    match ctx.shopify.token_info(&shop.spec.domain, version, token).await {
        Ok(info) => {
            ctx.metrics
                .shopify("token_info", "ok", info.meta.requests, info.meta.waited);
            ctx.token_checks.put(shop, token, info.clone());
            Ok(info)
        }
        Err(e) => {
            ctx.metrics.shopify("token_info", e.reason(), 1, Duration::ZERO);
            let (token_cond, hooks, retry) = classify(&e, "checking the token");
            let token_cond = token_cond.unwrap_or_else(|| {
                Cond::new(
                    ConditionType::TokenValid,
                    Status::Unknown,
                    Reason::of_shopify(&e),
                    format!("{e}"),
                )
            });
            let mut out = Outcome::new(token_cond, hooks, shop);
            out.retry_in = retry;
            out.failed = retry.is_some();
            Err(out)
        }
    }
}

/// `TokenValid` of a token Shopify accepted.
pub(super) fn valid(info: &TokenInfo) -> Cond {
    Cond::new(
        ConditionType::TokenValid,
        Status::True,
        Reason::TokenVerified,
        format!(
            "token accepted by {} ({} scopes)",
            info.shop_name,
            info.scopes.len()
        ),
    )
}
