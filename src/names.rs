//! The names this operator writes under and answers at, shared by the
//! controller, the public endpoints and `run`. A leaf: constants only.

/// The field manager of every write this operator makes.
pub const FIELD_MANAGER: &str = "shopify-operator";

/// Added when `deletionPolicy: Delete`, so subscriptions can be removed
/// before the resource goes.
pub const FINALIZER: &str = "shopify-operator.dev/cleanup";

/// Path template of the operator's webhook endpoints (as a ShopifyShop's
/// `pathTemplate`: `{topic}` is the REST topic with `/` replaced by `_`).
pub const WEBHOOKS_PATH_TEMPLATE: &str = "/shopify/webhooks/{topic}";

/// Annotation asking for a reconcile now (any new value): the token is
/// re-checked and the shop re-listed on Shopify, bypassing the caches.
pub const RECONCILE_REQUESTED_AT: &str = "shopify-operator.dev/reconcile-requested-at";

/// Flux's annotation for the same, honoured so `flux reconcile` habits work.
pub const FLUX_REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// The topic of the operator's own webhook endpoint.
pub const UNINSTALLED_TOPIC: &str = "app/uninstalled";

/// Path of the `app/uninstalled` webhook endpoint: the template's.
pub const UNINSTALLED_PATH: &str = "/shopify/webhooks/app_uninstalled";
