//! The `ShopifyApp` API: one Shopify (Partners) app — its credentials, the
//! shops it may serve, what OAuth installs create, and the defaults its
//! ShopifyShops inherit. Pure data, no network.
//!
//! Like ShopifyShop, the schema has no defaults (they would show as drift
//! in Argo CD and Flux); inherited values are computed by the controller and
//! never written into a shop's `spec`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{DeletionPolicy, ManagementPolicy, SecretRef, SyncSpec, WebhookFormat, WebhooksSpec};
use super::{EndpointSpec, SubscriptionSpec};

/// A Shopify app and the shops it serves: credentials, allow-list, install
/// and the defaults every ShopifyShop with `spec.appRef` naming it inherits.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "shopify-operator.dev",
    version = "v1alpha1",
    kind = "ShopifyApp",
    plural = "shopifyapps",
    shortname = "shopifyapp",
    category = "shopify",
    doc = "A Shopify app: its credentials, the shops it may serve, OAuth install, and defaults its ShopifyShops inherit.",
    namespaced,
    status = "ShopifyAppStatus",
    printcolumn(
        name = "Client ID",
        type_ = "string",
        json_path = ".status.clientId",
        description = "The app's client id (API key); not a secret"
    ),
    printcolumn(
        name = "Shops",
        type_ = "string",
        json_path = ".status.shopsReady",
        description = "ShopifyShops referencing the app: Ready / all"
    ),
    printcolumn(
        name = "Waiting",
        type_ = "integer",
        json_path = ".status.shopsWaiting",
        description = "Shops moving to this app that wait for the merchant to install it"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = "1"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ShopifyAppSpec {
    /// A Secret in the same namespace with keys `client-id`, `client-secret`
    /// and, during a secret rotation, `previous-client-secret`.
    pub credentials_secret_ref: SecretRef,

    /// Shops the app may serve: exact `*.myshopify.com` domains or `*`
    /// globs (`ps-*.myshopify.com`). A shop outside the list gets no token
    /// sent anywhere: its ShopifyShop is `ShopNotAllowed` and OAuth refuses
    /// it. At least one entry (`*.myshopify.com` allows every shop).
    #[schemars(length(min = 1, max = 1000), inner(length(min = 1, max = 255)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub allowed_shops: Vec<String>,

    /// Access scopes OAuth asks the merchant for (`read_orders`); unset: the
    /// credentials Secret's `scopes` key, else what the shops' webhook
    /// topics need.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = r"^(unauthenticated_)?[a-z_]+$")))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub scopes: Vec<String>,

    /// What an OAuth install of an allowed shop that has no ShopifyShop
    /// for this app does. Unset: it is refused (404).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallSpec>,

    /// Values every ShopifyShop referencing the app inherits unless it sets
    /// its own. Computed at each reconcile; never written into the shop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<ShopDefaults>,
}

/// OAuth installs of allowed shops without a ShopifyShop.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstallSpec {
    /// `true` creates a token Secret (`{shop}-shopify-token`) and a
    /// ShopifyShop (named after the shop's first domain label) from
    /// `shopTemplate` for the installed shop.
    pub create_shops: bool,

    /// What a created ShopifyShop gets besides `domain`, `appRef` and
    /// `token`: labels, annotations and spec fields. Anything it leaves
    /// out is inherited from `defaults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_template: Option<ShopTemplate>,
}

/// The template of a ShopifyShop created by an install.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ShopTemplate {
    /// Labels and annotations of the created ShopifyShop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// Spec fields of the created ShopifyShop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ShopDefaults>,
}

/// Labels and annotations for an object the operator creates.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels (e.g. `sharding.shopify-operator.dev/key`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// ShopifyShop spec fields an app gives its shops. Each is the shop's
/// unless the shop sets it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ShopDefaults {
    /// Admin API version (`YYYY-MM` or `unstable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{4}-(01|04|07|10)|unstable)$"))]
    pub admin_api_version: Option<String>,

    /// Webhooks. A shop without `spec.webhooks` takes these whole; a shop
    /// with its own keeps its endpoint and takes `format`, `prune` and each
    /// list (`topics`, `subscriptions`) it leaves empty from here, less the
    /// topics it sends to the endpoint's path itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<WebhooksDefaults>,

    /// Sync jobs, merged with the shop's by `name`: a shop's entry replaces
    /// the app's entry of the same name; other entries of both run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub sync: Vec<SyncSpec>,

    /// `Manage` or `Observe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<ManagementPolicy>,

    /// `Orphan` or `Delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// `spec.webhooks` of a ShopifyShop with every field optional.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WebhooksDefaults {
    /// Where deliveries go (as a ShopifyShop's `webhooks.endpoint`). A shop
    /// inherits no webhooks from an app without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointSpec>,
    /// `json` or `xml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<WebhookFormat>,
    /// Topics in Shopify's REST form, to the endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 100),
        inner(regex(pattern = r"^[a-z][a-z0-9_]*([/.][a-z][a-z0-9_]*)+$"), length(max = 64))
    )]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("self.all(t, !(t in ['customers/data_request', 'customers/redact', 'shop/redact']))")
            .message("compliance topics (customers/data_request, customers/redact, shop/redact) cannot be registered through the API; configure them in the app's settings")
    )]
    pub topics: Vec<String>,
    /// Subscriptions with a destination or options of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub subscriptions: Vec<SubscriptionSpec>,
    /// Delete this app's subscriptions the spec doesn't name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
}

impl WebhooksDefaults {
    /// As a shop's `webhooks`, when it names an endpoint.
    pub fn to_spec(&self) -> Option<WebhooksSpec> {
        Some(WebhooksSpec {
            endpoint: self.endpoint.clone()?,
            format: self.format,
            topics: self.topics.clone(),
            subscriptions: self.subscriptions.clone(),
            prune: self.prune,
        })
    }
}

/// Observed state of a ShopifyApp.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShopifyAppStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `CredentialsValid` (the Secret has `client-id` and `client-secret`)
    /// and `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The app's client id (API key), from the credentials Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,

    /// ShopifyShops in the namespace whose `spec.appRef` names the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shops: Option<i32>,

    /// How many of them are `Ready=True`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_shops: Option<i32>,

    /// `ready/all`, for `kubectl get shopifyapp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shops_ready: Option<String>,

    /// ShopifyShops whose `spec.appRef` moved to this app from another and
    /// that wait for the merchant to install it (`status.handover`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shops_waiting: Option<i32>,

    /// Whether the credentials Secret has a `previous-client-secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_present: Option<bool>,

    /// The last time a request (OAuth callback, `app/uninstalled` delivery)
    /// verified only with `previous-client-secret`. Unset or older than the
    /// rotation: the previous secret can be removed and the rotation
    /// finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_last_used: Option<Time>,

    /// OAuth installs completed through the app's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installs: Option<i64>,

    /// `app/uninstalled` deliveries accepted for the app's shops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstalls: Option<i64>,
}
