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

/// The topic of the operator's own webhook endpoint.
pub const UNINSTALLED_TOPIC: &str = "app/uninstalled";

/// Path of the `app/uninstalled` webhook endpoint: the template's.
pub const UNINSTALLED_PATH: &str = "/shopify/webhooks/app_uninstalled";
