//! Plain data the client returns and accepts: subscriptions, changes and
//! their results, token information and per-call metadata.
//!
//! No network access; no secrets (tokens live in `token.rs`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::bucket::ThrottleStatus;
pub use super::error::UserError;

/// Payload format of a webhook subscription (`WebhookSubscriptionFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `JSON`.
    #[default]
    Json,
    /// `XML`.
    Xml,
}

impl Format {
    /// The GraphQL enum value (`JSON` / `XML`).
    pub fn as_graphql(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Xml => "XML",
        }
    }

    /// Parses the GraphQL enum value (case-insensitive).
    pub fn from_graphql(s: &str) -> Option<Format> {
        if s.eq_ignore_ascii_case("JSON") {
            Some(Format::Json)
        } else if s.eq_ignore_ascii_case("XML") {
            Some(Format::Xml)
        } else {
            None
        }
    }
}

/// One shop-scoped webhook subscription as Shopify lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `gid://shopify/WebhookSubscription/N`.
    pub id: String,
    /// REST form (`orders/create`) when the topic is known, else the enum.
    pub topic: String,
    /// GraphQL enum form (`ORDERS_CREATE`), as Shopify returned it.
    pub topic_enum: String,
    /// Where deliveries go: `uri` (≥ 2025-10); before that the endpoint's
    /// `callbackUrl`, EventBridge `arn` or `pubsub://project:topic` (the
    /// forms `uri` uses). Empty only for an endpoint type this client does
    /// not know.
    pub address: String,
    /// Payload format.
    pub format: Format,
    /// `includeFields`.
    pub include_fields: Vec<String>,
    /// `metafieldNamespaces`.
    pub metafield_namespaces: Vec<String>,
    /// `filter`, if any.
    pub filter: Option<String>,
    /// `metafields` (2025-04 on; empty before).
    pub metafields: Vec<Metafield>,
    /// `name` (2026-04 on; `None` before).
    pub name: Option<String>,
    /// `apiVersion.handle`: the payload version (set per app).
    pub api_version: Option<String>,
}

/// A metafield added to payloads (`HasMetafieldsMetafieldIdentifierInput`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Metafield {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: String,
}

/// What a subscription carries besides topic, address and format: filter,
/// payload shaping and name. Create and update send all of it (an empty
/// list or `None` clears), except `name`, sent only when set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// `filter` (Shopify search syntax).
    pub filter: Option<String>,
    /// `includeFields`.
    pub include_fields: Vec<String>,
    /// `metafieldNamespaces`.
    pub metafield_namespaces: Vec<String>,
    /// `metafields` (2025-04 on).
    pub metafields: Vec<Metafield>,
    /// `name` (2026-04 on).
    pub name: Option<String>,
}

/// Where deliveries go, by kind (from an address in `uri` form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// `https://…`.
    Https(&'a str),
    /// `pubsub://{project}:{topic}`.
    PubSub {
        /// Google Cloud project id.
        project: &'a str,
        /// Pub/Sub topic id.
        topic: &'a str,
    },
    /// An Amazon EventBridge partner event source ARN.
    EventBridge(&'a str),
}

impl<'a> Destination<'a> {
    /// The kind of `address` (a URL, `pubsub://project:topic` or an ARN).
    pub fn of(address: &'a str) -> Destination<'a> {
        if let Some((project, topic)) = address.strip_prefix("pubsub://").and_then(|r| r.split_once(':')) {
            Destination::PubSub { project, topic }
        } else if address.starts_with("arn:") {
            Destination::EventBridge(address)
        } else {
            Destination::Https(address)
        }
    }
}

/// Every subscription of a shop plus what the listing cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// All pages, in server order.
    pub subscriptions: Vec<Subscription>,
    /// Versions, cost and request count of the whole listing.
    pub meta: ResponseMeta,
}

/// One change of a reconciliation plan. Topics are in REST form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `webhookSubscriptionCreate`.
    Create {
        /// REST topic (`orders/create`).
        topic: String,
        /// Delivery address.
        address: String,
        /// Payload format.
        format: Format,
        /// Filter, payload shaping, name.
        options: Options,
    },
    /// `webhookSubscriptionUpdate` of an existing subscription (the topic
    /// cannot change; it is carried for reporting).
    Update {
        /// Subscription id (gid).
        id: String,
        /// REST topic of the subscription.
        topic: String,
        /// New address.
        address: String,
        /// New format.
        format: Format,
        /// New filter, payload shaping, name.
        options: Options,
    },
    /// `webhookSubscriptionDelete`.
    Delete {
        /// Subscription id (gid).
        id: String,
        /// REST topic of the subscription (for reporting).
        topic: String,
    },
}

impl Change {
    /// True for `Create`: a create whose outcome is unknown must not be
    /// retried blindly (it could duplicate the subscription).
    pub fn is_create(&self) -> bool {
        matches!(self, Change::Create { .. })
    }

    /// The REST topic the change is about.
    pub fn topic(&self) -> &str {
        match self {
            Change::Create { topic, .. } | Change::Update { topic, .. } | Change::Delete { topic, .. } => {
                topic
            }
        }
    }
}

/// The result of one [`Change`], in the order the changes were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeResult {
    /// The subscription as created.
    Created(Subscription),
    /// The subscription as updated.
    Updated(Subscription),
    /// `deletedWebhookSubscriptionId`.
    Deleted {
        /// The deleted subscription's id.
        id: String,
    },
    /// The change's `userErrors` (or the GraphQL errors whose path names its
    /// alias); the other changes of the document are unaffected.
    Failed {
        /// What Shopify said.
        user_errors: Vec<UserError>,
    },
}

impl ChangeResult {
    /// The errors of a failed change.
    pub fn user_errors(&self) -> Option<&[UserError]> {
        match self {
            ChangeResult::Failed { user_errors } => Some(user_errors),
            _ => None,
        }
    }
}

/// What a token can do on its shop (`token_info`).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// `shop.name`.
    pub shop_name: String,
    /// `shop.myshopifyDomain`.
    pub myshopify_domain: String,
    /// `shop.plan.publicDisplayName` (≥ 2025-07) or `displayName`.
    pub plan: Option<String>,
    /// `currentAppInstallation.accessScopes[].handle`.
    pub scopes: Vec<String>,
    /// `currentAppInstallation.app.apiKey`: the client id of the app the
    /// token belongs to (`None` if the server did not say).
    pub api_key: Option<String>,
    /// Versions and cost of the call.
    pub meta: ResponseMeta,
}

/// What the server said about versions, cost and retries for one logical
/// operation (all its pages and retries).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResponseMeta {
    /// The version the client asked for.
    pub requested_version: String,
    /// `X-Shopify-Api-Version` of the last response (may differ: a removed
    /// version "falls forward").
    pub served_version: Option<String>,
    /// `X-Shopify-Api-Deprecated-Reason` of the last response that had one.
    pub deprecated_reason: Option<String>,
    /// HTTP requests sent (pages and retries included).
    pub requests: u32,
    /// Of those, retries after a transient error or a throttle.
    pub retries: u32,
    /// Time spent waiting for the shop's bucket or a throttle.
    pub waited: Duration,
    /// Sum of `requestedQueryCost`.
    pub requested_cost: f64,
    /// Sum of `actualQueryCost`.
    pub actual_cost: f64,
    /// The last `throttleStatus` seen.
    pub throttle_status: Option<ThrottleStatus>,
    /// True when an update/delete document was re-sent after an attempt
    /// whose outcome was unknown: a delete may then report "does not exist"
    /// although the first attempt deleted it.
    pub resent_after_unknown_outcome: bool,
}

impl ResponseMeta {
    /// True when the server served another version than requested.
    pub fn fell_forward(&self) -> bool {
        self.served_version
            .as_deref()
            .is_some_and(|s| s != self.requested_version)
    }
}

/// The API version a shop's last response was served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedVersion {
    /// What the client asked for.
    pub requested: String,
    /// `X-Shopify-Api-Version`.
    pub served: String,
    /// `X-Shopify-Api-Deprecated-Reason`, if the response had one.
    pub deprecated_reason: Option<String>,
    /// When it was observed.
    pub observed_at: DateTime<Utc>,
}

impl ServedVersion {
    /// True when the server served another version than requested.
    pub fn fell_forward(&self) -> bool {
        self.served != self.requested
    }
}
