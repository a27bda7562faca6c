//! The outcomes of a pass that sends nothing to Shopify: a shop the
//! allow-lists refuse (or whose app is missing), and a token that cannot
//! be read. Pure.

use super::Outcome;
use crate::controller::conditions::{Cond, ConditionType, Reason, Status};
use crate::controller::shop::fetch::TokenError;
use crate::controller::shop::resolve_app::Refusal;
use crate::crd::ShopifyShop;

/// Token problems before any Shopify call: the whole outcome.
pub(super) fn token_unreadable(shop: &ShopifyShop, e: &TokenError) -> Outcome {
    Outcome::new(
        Cond::new(ConditionType::TokenValid, Status::False, e.reason(), e.message()),
        Cond::new(
            ConditionType::WebhooksSynced,
            Status::Unknown,
            Reason::TokenInvalid,
            "no valid token to check subscriptions with",
        ),
        shop,
    )
}

/// A shop outside an allow-list or without its app: nothing is sent to
/// Shopify for it.
pub(super) fn refused(shop: &ShopifyShop, r: &Refusal) -> Outcome {
    Outcome::new(
        Cond::new(
            ConditionType::TokenValid,
            Status::False,
            r.reason,
            r.message.clone(),
        ),
        Cond::new(
            ConditionType::WebhooksSynced,
            Status::Unknown,
            r.reason,
            r.message.clone(),
        ),
        shop,
    )
}
