//! `spec.webhooks.subscriptions[]`: webhook subscriptions as Shopify models
//! them today (several topics to one destination, filters, payload shaping,
//! names, Pub/Sub and EventBridge), beside the `topics` shorthand. Pure data.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// One subscription entry: one or more topics to one destination, with the
/// same options. Exactly one destination: the webhook endpoint (default,
/// optionally at another `path`), or `uri`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.uri) && has(self.path))").message("set uri (Pub/Sub or EventBridge) or path (HTTPS at the endpoint host), not both"),
    validation = Rule::new("!has(self.name) || size(self.topics) == 1").message("a named subscription has one topic: Shopify's names are unique in a shop")
)]
pub struct SubscriptionSpec {
    /// Topics in Shopify's REST form, e.g. `orders/create`; at least one, at
    /// most 20, no duplicates, no compliance topics.
    #[schemars(
        length(min = 1, max = 20),
        inner(regex(pattern = r"^[a-z][a-z0-9_]*([/.][a-z][a-z0-9_]*)+$"), length(max = 64))
    )]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("self.all(t, !(t in ['customers/data_request', 'customers/redact', 'shop/redact']))")
            .message("compliance topics (customers/data_request, customers/redact, shop/redact) cannot be registered through the API; configure them in the app's settings")
    )]
    pub topics: Vec<String>,

    /// HTTPS path at the endpoint's host, e.g. `/webhooks/orders/{topic}`;
    /// `{topic}` is replaced as in `endpoint.pathTemplate` (default: the
    /// endpoint's `pathTemplate`). Not with `uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/[^\s?#]*$"), length(max = 512))]
    pub path: Option<String>,

    /// A destination that is not the endpoint: Google Pub/Sub
    /// `pubsub://{project}:{topic}` or an Amazon EventBridge partner event
    /// source ARN `arn:aws:events:{region}::event-source/aws.partner/shopify.com/{app id}/{name}`.
    /// Not with `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(
            pattern = r"^(pubsub://[a-z][-a-z0-9]{4,28}[a-z0-9]:[A-Za-z][-A-Za-z0-9._~+%]{2,254}|arn:aws:events:[a-z]{2}(-[a-z]+)+-[0-9]::event-source/aws\.partner/shopify\.com/[0-9]+/[-A-Za-z0-9._/]{1,256})$"
        ),
        length(max = 512)
    )]
    pub uri: Option<String>,

    /// Only events matching this Shopify search-syntax filter are delivered,
    /// e.g. `financial_status:paid AND total_price:>100` (API version
    /// 2024-07 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub filter: Option<String>,

    /// Only these payload fields are delivered (top-level or dotted, e.g.
    /// `id`, `line_items.sku`); empty: all fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 256)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub include_fields: Vec<String>,

    /// Metafield namespaces whose metafields are added to the payload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(length(min = 1, max = 255)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub metafield_namespaces: Vec<String>,

    /// Individual metafields (namespace and key) added to the payload (API
    /// version 2025-04 and later).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["namespace".into(), "key".into()]))]
    pub metafields: Vec<MetafieldRef>,

    /// A name for the subscription in Shopify (API version 2026-04 and
    /// later): at most 50 letters, digits, `_` or `-`, unique in the shop,
    /// so a named entry has one topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,50}$"), length(max = 50))]
    pub name: Option<String>,
}

/// A metafield added to webhook payloads.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub struct MetafieldRef {
    /// The metafield's namespace.
    #[schemars(length(min = 1, max = 255))]
    pub namespace: String,
    /// The metafield's key.
    #[schemars(length(min = 1, max = 64))]
    pub key: String,
}
