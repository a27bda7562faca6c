//! When a recent webhooks pass may stand in for this one: the key of what
//! a pass depends on (hashed, in memory only), and whether an outcome is
//! settled enough to be reused. Pure.

use super::Outcome;
use crate::controller::TokenChecks;
use crate::controller::reasons::Progress;
use crate::controller::shop::host::{Endpoint, HostError};
use crate::crd::ShopifyShop;
use shopify_admin::AccessToken;

/// What the webhooks pass (and the status it is reused from) depends on,
/// hashed.
pub(super) fn pass_key(
    shop: &ShopifyShop,
    host: &Option<Result<Endpoint, HostError>>,
    token: &AccessToken,
    app_credentials_ok: bool,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    shop.metadata.generation.hash(&mut h);
    // A reused outcome carries the `AppCredentialsInvalid` laid over it:
    // when the app's credentials flip, the pass runs again.
    app_credentials_ok.hash(&mut h);
    // An app's defaults change the shop's webhooks without a new
    // generation of the shop.
    if shop.spec.app_ref.is_some() {
        let spec = &shop.spec;
        serde_json::to_string(&(&spec.webhooks, &spec.admin_api_version, &spec.management_policy))
            .unwrap_or_default()
            .hash(&mut h);
    }
    format!("{host:?}").hash(&mut h);
    TokenChecks::fingerprint(token).hash(&mut h);
    h.finish()
}

/// Only a settled pass is reused: not one still waiting (a retry, or the
/// certificate gate).
pub(super) fn settled(out: &Outcome) -> bool {
    !out.failed && out.retry_in.is_none() && out.webhooks.reason.progress() != Progress::Retried
}
