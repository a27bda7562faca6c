//! The `ShopifyShop` API (`shopify-operator.dev/v1alpha1`): types, schema
//! validation and printer columns. Pure data, no network.
//!
//! Doc comments on spec and status fields are the API reference: they become
//! the `description`s in the CRD, so `kubectl explain shopifyshop.spec` shows
//! them. Everything the schema can check is checked here, by the apiserver;
//! what it can't (cron syntax, an Ingress that exists) becomes a condition.
//!
//! Defaults live in code (the `*_or_default` accessors), never in the schema:
//! a schema default would be written into every object and show up as drift
//! in Argo CD and Flux.

use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod app;
mod status;
mod subscription;

pub use app::{
    InstallSpec, ShopDefaults, ShopTemplate, ShopifyApp, ShopifyAppSpec, ShopifyAppStatus, TemplateMetadata,
    WebhooksDefaults,
};
pub use status::{
    AppUninstalled, HandoverPhase, HandoverStatus, LiveApp, OrphanedSubscription, ShopifyShopStatus,
    SyncStatus, TopicState, WebhookStatus,
};
pub use subscription::{MetafieldRef, SubscriptionSpec};

/// API group of every resource this operator defines.
pub const GROUP: &str = "shopify-operator.dev";
/// The Admin API version used when `spec.adminApiVersion` is not set: the one
/// the OMS pinned before the move to Kubernetes.
pub const DEFAULT_ADMIN_API_VERSION: &str = "2025-07";
/// The webhook path used when `spec.webhooks.endpoint.pathTemplate` is not
/// set — the Rails app's routes, so cutover at the same host changes nothing.
pub const DEFAULT_PATH_TEMPLATE: &str = "/webhooks/{topic}";
/// Topics Shopify refuses to register through the API (mandatory compliance
/// webhooks are configured in the app's settings instead).
pub const COMPLIANCE_TOPICS: [&str; 3] = ["customers/data_request", "customers/redact", "shop/redact"];

/// Desired state of one Shopify shop: where its webhooks point, where its
/// token lives, and which sync jobs run for it.
// Clippy reads the repeated `type_` keys of separate printcolumn(...) groups
// as one attribute list.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "shopify-operator.dev",
    version = "v1alpha1",
    kind = "ShopifyShop",
    plural = "shopifyshops",
    shortname = "shop",
    category = "shopify",
    doc = "A Shopify shop whose webhook subscriptions, token and sync jobs the operator keeps in cluster state.",
    namespaced,
    status = "ShopifyShopStatus",
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domain"),
    printcolumn(
        name = "Host",
        type_ = "string",
        json_path = ".status.webhookHost",
        description = "Host the webhook subscriptions point at"
    ),
    printcolumn(
        name = "Webhooks",
        type_ = "string",
        json_path = ".status.webhooksInSync",
        description = "Subscriptions in sync / desired"
    ),
    printcolumn(
        name = "Last Sync",
        type_ = "date",
        json_path = ".status.lastSyncTime",
        description = "Newest successful sync Job"
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
    printcolumn(
        name = "Handover",
        type_ = "string",
        json_path = ".status.handover.phase",
        description = "Where a move to another Shopify app stands",
        priority = "1"
    ),
    printcolumn(
        name = "Install URL",
        type_ = "string",
        json_path = ".status.handover.installUrl",
        description = "Where the merchant installs the new app",
        priority = "1"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.app) && has(self.appRef))").message("set app (a credentials Secret) or appRef (a ShopifyApp), not both"))]
pub struct ShopifyShopSpec {
    /// The shop's permanent `*.myshopify.com` domain, e.g.
    /// `ps-direct-fulfilment-online.myshopify.com`. Lower case. Immutable: a
    /// different shop is a different ShopifyShop.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$"), length(max = 255))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("domain is immutable; create a new ShopifyShop for another shop"))]
    pub domain: String,

    /// Shopify Admin API version, `YYYY-MM` with a quarter month (01, 04, 07,
    /// 10), or `unstable`. Default `2025-07`. Shopify serves a removed version
    /// as the oldest supported one; `status.servedApiVersion` then says which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{4}-(01|04|07|10)|unstable)$"))]
    pub admin_api_version: Option<String>,

    /// Where the shop's offline access token lives.
    pub token: TokenSpec,

    /// The app's client credentials, needed to refresh expiring tokens, to
    /// run OAuth and to verify HMAC signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppSpec>,

    /// A ShopifyApp in the same namespace: the shop uses its credentials,
    /// must be in its `allowedShops`, and inherits its `defaults` for
    /// whatever this spec leaves unset. Not together with `app`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_ref: Option<LocalObjectRef>,

    /// The shop's webhook subscriptions. Without it the operator leaves the
    /// shop's subscriptions alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<WebhooksSpec>,

    /// Sync jobs run for this shop as Kubernetes Jobs, keyed by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub sync: Vec<SyncSpec>,

    /// `Manage` (default) makes Shopify match this spec; `Observe` only
    /// reports what `Manage` would change and writes nothing to Shopify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<ManagementPolicy>,

    /// What deleting this ShopifyShop does on Shopify: `Orphan` (default)
    /// leaves the subscriptions in place, `Delete` removes the ones it manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// How a change of `appRef` to another Shopify app (another client id)
    /// is carried out. The handover itself needs no field: the previous
    /// app keeps the webhooks and syncs until the new app's token is in
    /// `token.secretRef`, then the new app's subscriptions are created and
    /// listed back before the previous app's are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_handover: Option<AppHandoverSpec>,
}

/// How the operator hands a shop over from one Shopify app to another.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppHandoverSpec {
    /// After the switch, uninstall the previous app from the shop with its
    /// own token (`appUninstall`, Admin API 2025-07 and later): Shopify
    /// then revokes its token and removes whatever else it had there. The
    /// previous token Secret is deleted too when the operator created it
    /// (an OAuth install). Unset means false: the previous app stays
    /// installed and only the subscriptions the operator owned are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstall_previous: Option<bool>,
}

/// Where the shop's token lives.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TokenSpec {
    /// A Secret in the same namespace. Key `access-token` holds the offline
    /// access token; for expiring tokens also `refresh-token` and `expires-at`
    /// (RFC 3339).
    pub secret_ref: SecretRef,
    /// Trade a non-expiring offline token for an expiring one (access token +
    /// refresh token) by Shopify's token exchange; needs `app.secretRef`.
    /// Public apps must do this before 2027-01-01. The old token is kept in
    /// the Secret under `migrated-from-access-token` until the new one has
    /// answered a `shop` query. Unset means false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_to_expiring: Option<bool>,
}

/// The Shopify app's client credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    /// A Secret in the same namespace with keys `client-id`, `client-secret`
    /// and, during a secret rotation, `previous-client-secret`.
    pub secret_ref: SecretRef,
}

/// A reference to a Secret in the ShopifyShop's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
        length(min = 1, max = 253)
    )]
    pub name: String,
}

/// A reference to an object of a known kind in the ShopifyShop's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// Name of the object.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
        length(min = 1, max = 253)
    )]
    pub name: String,
}

/// The shop's webhook subscriptions: the `topics` shorthand (each topic to
/// the endpoint, no options) and `subscriptions` with options.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.topics) || !has(self.subscriptions) || self.topics.all(t, !self.subscriptions.exists(b, !has(b.uri) && !has(b.path) && t in b.topics))").message("a topic in topics is also in a subscriptions entry at the endpoint's pathTemplate: list it once"))]
pub struct WebhooksSpec {
    /// Where deliveries go: `https://{host}{pathTemplate}`.
    pub endpoint: EndpointSpec,

    /// Payload format of the subscriptions, `json` (default) or `xml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<WebhookFormat>,

    /// Topics in Shopify's REST form, e.g. `orders/create`,
    /// `customer.tags_added`. At most 100, no duplicates. The compliance
    /// topics (`customers/data_request`, `customers/redact`, `shop/redact`)
    /// can't be registered through the API and are rejected.
    #[schemars(
        length(max = 100),
        inner(regex(pattern = r"^[a-z][a-z0-9_]*([/.][a-z][a-z0-9_]*)+$"), length(max = 64))
    )]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("self.all(t, !(t in ['customers/data_request', 'customers/redact', 'shop/redact']))")
            .message("compliance topics (customers/data_request, customers/redact, shop/redact) cannot be registered through the API; configure them in the app's settings")
    )]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,

    /// Subscriptions with a destination or options of their own: several
    /// topics to one HTTPS `path` at the endpoint host or to a Pub/Sub or
    /// EventBridge `uri`, with a `filter`, `includeFields`,
    /// `metafieldNamespaces`, `metafields` or a `name`. At most 20 entries;
    /// a topic appears once per destination (here and in `topics`, which
    /// go to the endpoint's `pathTemplate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[x_kube(
        validation = Rule::new("self.all(a, !has(a.name) || self.exists_one(b, has(b.name) && b.name == a.name))")
            .message("subscription names must be unique in the shop"),
        validation = Rule::new("self.all(a, a.topics.all(t, self.exists_one(b, t in b.topics && (has(b.uri) ? 'u' + b.uri : has(b.path) ? 'p' + b.path : '') == (has(a.uri) ? 'u' + a.uri : has(a.path) ? 'p' + a.path : ''))))")
            .message("a topic appears once per destination: the same topic and uri (or path) are in two entries")
    )]
    pub subscriptions: Vec<SubscriptionSpec>,

    /// `true` deletes duplicates, this app's subscriptions at a destination
    /// the spec names (the endpoint host, a `path`, a `uri`) that it does
    /// not want, and orphans: subscriptions the operator created or adopted
    /// that the spec no longer names (`status.orphanedSubscriptions`).
    /// `false` (default) leaves them, counts them in status and lists the
    /// orphans. A subscription elsewhere that the operator never owned is
    /// never deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
}

/// Where webhook deliveries are sent. Exactly one of `host` or `ingressRef`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.host) != has(self.ingressRef)").message("exactly one of host or ingressRef must be set"),
    validation = Rule::new("!has(self.tlsSecretRef) || has(self.host)").message("tlsSecretRef is for a fixed host; with ingressRef the Ingress's tls section names the Secret")
)]
pub struct EndpointSpec {
    /// A fixed public DNS name, without scheme, port or path, e.g.
    /// `oms.popsockets.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$"),
        length(max = 253)
    )]
    pub host: Option<String>,

    /// An Ingress in the same namespace; the host of its first rule that has
    /// one is used, and the webhooks follow it when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_ref: Option<LocalObjectRef>,

    /// Path of the delivery URL; `{topic}` is replaced by the REST topic with
    /// `/` replaced by `_` (`orders/create` → `orders_create`), as the Rails
    /// app did. Default `/webhooks/{topic}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/[^\s?#]*$"), length(max = 512))]
    #[x_kube(validation = Rule::new("self.contains('{topic}')").message("pathTemplate must contain {topic}"))]
    pub path_template: Option<String>,

    /// With a fixed `host`: the `kubernetes.io/tls` Secret in this namespace
    /// that holds the host's certificate. When set, webhooks move to a new
    /// `host` only once that certificate covers it and is valid beyond the
    /// operator's `--certificate-margin` (the check an Ingress's `tls`
    /// Secret gets). Unset, a fixed host is trusted as it is (TLS is
    /// somebody else's: a CDN, a load balancer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_ref: Option<SecretRef>,
}

/// Payload format of the subscriptions, `json` (default) or `xml`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// JSON payloads.
    #[default]
    Json,
    /// XML payloads.
    Xml,
}

/// `Manage` (default) makes Shopify match this spec; `Observe` only
/// reports what `Manage` would change, and changes nothing: no Shopify
/// mutations, no Jobs.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ManagementPolicy {
    /// Make Shopify match the spec.
    #[default]
    Manage,
    /// Report drift; never mutate Shopify or create Jobs.
    Observe,
}

/// What deleting the ShopifyShop does on Shopify: `Orphan` (default) leaves
/// the shop's subscriptions in place, `Delete` removes the ones it manages.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Leave the shop's subscriptions in place.
    #[default]
    Orphan,
    /// Delete the subscriptions this resource manages.
    Delete,
}

/// One scheduled sync, run as a Kubernetes Job per schedule slot.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncSpec {
    /// Name of the sync, a DNS label unique within the shop (`orders`,
    /// `products`); part of each Job's name and labels.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 40)
    )]
    pub name: String,

    /// Standard 5-field cron expression (`*/15 * * * *`). An invalid one is
    /// reported as `SyncHealthy=False` reason `InvalidSchedule`.
    #[schemars(length(min = 1, max = 128))]
    pub schedule: String,

    /// IANA time zone the schedule is read in (`Europe/Berlin`); default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub time_zone: Option<String>,

    /// `true` starts no new Jobs; running ones finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,

    /// What to do when a slot comes while the previous Job still runs:
    /// `Forbid` (default) skips the slot, `Allow` runs both, `Replace`
    /// deletes the running Job first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,

    /// A slot missed by more than this many seconds (operator down) is
    /// skipped; at most one missed slot is caught up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub starting_deadline_seconds: Option<i64>,

    /// Finished successful Jobs to keep (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub successful_jobs_history_limit: Option<i32>,

    /// Finished failed Jobs to keep (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub failed_jobs_history_limit: Option<i32>,

    /// A `batch/v1` JobTemplateSpec (`metadata`, `spec`). Stored as given;
    /// the operator adds the shop's context as environment variables to
    /// every container.
    #[schemars(schema_with = "preserved_object")]
    pub job_template: serde_json::Value,
}

/// What to do when a slot comes while an earlier Job of the sync still runs:
/// `Forbid` (default) skips the slot, `Allow` runs both, `Replace` deletes
/// the running Job first.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConcurrencyPolicy {
    /// Skip a slot while a Job of this sync runs.
    #[default]
    Forbid,
    /// Run Jobs of consecutive slots side by side.
    Allow,
    /// Delete the running Job, then start the new one.
    Replace,
}

fn preserved_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

impl ShopifyShop {
    /// The shop as it runs with `app`: that ShopifyApp in `spec.appRef`
    /// and its token Secret in `spec.token` (while a move to another app
    /// waits, the previous one). Never written back. Pure.
    pub fn running_as(&self, app: &LiveApp) -> ShopifyShop {
        let mut shop = self.clone();
        if let Some(r) = shop.spec.app_ref.as_mut() {
            r.name = app.name.clone();
        }
        shop.spec.token.secret_ref.name = app.token_secret.clone();
        shop
    }
}

impl ShopifyShopSpec {
    /// `spec.adminApiVersion` or the default.
    pub fn admin_api_version_or_default(&self) -> &str {
        self.admin_api_version
            .as_deref()
            .unwrap_or(DEFAULT_ADMIN_API_VERSION)
    }

    /// `spec.managementPolicy` or the default (`Manage`).
    pub fn management_policy_or_default(&self) -> ManagementPolicy {
        self.management_policy.unwrap_or_default()
    }

    /// `spec.deletionPolicy` or the default (`Orphan`).
    pub fn deletion_policy_or_default(&self) -> DeletionPolicy {
        self.deletion_policy.unwrap_or_default()
    }
}

impl EndpointSpec {
    /// `pathTemplate` or the default.
    pub fn path_template_or_default(&self) -> &str {
        self.path_template.as_deref().unwrap_or(DEFAULT_PATH_TEMPLATE)
    }
}

/// Every CRD this operator defines.
pub fn all()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    vec![ShopifyShop::crd(), ShopifyApp::crd()]
}

/// The ShopifyShop CRD as YAML: what `shopify-operator crd` prints and
/// `crds/shopifyshop.yaml` holds.
pub fn crd_yaml() -> String {
    yaml(&ShopifyShop::crd(), "crd")
}

/// The ShopifyApp CRD as YAML: what `shopify-operator crd --kind
/// ShopifyApp` prints and `crds/shopifyapp.yaml` holds.
pub fn app_crd_yaml() -> String {
    yaml(&ShopifyApp::crd(), "crd --kind ShopifyApp")
}

fn yaml(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    command: &str,
) -> String {
    let mut out = format!("# Generated by `shopify-operator {command}`; do not edit.\n");
    out.push_str(&serde_norway::to_string(crd).expect("the CRD always serializes"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_crd_is_the_printer_output() {
        let committed = include_str!("../../crds/shopifyshop.yaml");
        assert!(
            committed == crd_yaml(),
            "crds/shopifyshop.yaml is stale: run `make crds` (shopify-operator crd > crds/shopifyshop.yaml)"
        );
        assert!(
            include_str!("../../crds/shopifyapp.yaml") == app_crd_yaml(),
            "crds/shopifyapp.yaml is stale: run `make crds`"
        );
    }

    #[test]
    fn topic_states_are_their_names_on_the_wire_and_unknown_ones_parse() {
        for (state, name) in [
            (TopicState::InSync, "InSync"),
            (TopicState::Missing, "Missing"),
            (TopicState::WrongAddress, "WrongAddress"),
            (TopicState::WrongFormat, "WrongFormat"),
            (TopicState::WrongFilter, "WrongFilter"),
            (TopicState::WrongFields, "WrongFields"),
            (TopicState::WrongMetafields, "WrongMetafields"),
            (TopicState::WrongName, "WrongName"),
            (TopicState::MissingScope, "MissingScope"),
            (TopicState::Failed, "Failed"),
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), name);
            assert_eq!(serde_json::from_value::<TopicState>(name.into()).unwrap(), state);
        }
        // A state another version wrote must not make the whole object
        // unreadable to the watcher.
        let w: WebhookStatus = serde_json::from_value(
            serde_json::json!({"topic": "orders/create", "address": "https://h/x", "state": "WrongColour"}),
        )
        .unwrap();
        assert_eq!(w.state, TopicState::Other);
    }

    #[test]
    fn spec_schema_has_no_defaults() {
        // A schema default is written into every stored object, which Argo
        // CD and Flux then report as drift from the manifest.
        for crd in all() {
            let crd = serde_json::to_value(crd).unwrap();
            let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
            assert!(
                !spec.to_string().contains("\"default\""),
                "{} spec schema has a default",
                crd["metadata"]["name"]
            );
        }
    }

    #[test]
    fn defaults_live_in_code() {
        let spec: ShopifyShopSpec = serde_norway::from_str(
            "domain: a.myshopify.com\ntoken: {secretRef: {name: t}}\nwebhooks: {endpoint: {host: oms.popsockets.com}, topics: [orders/create]}\n",
        )
        .unwrap();
        assert_eq!(spec.admin_api_version_or_default(), "2025-07");
        assert_eq!(spec.management_policy_or_default(), ManagementPolicy::Manage);
        assert_eq!(spec.deletion_policy_or_default(), DeletionPolicy::Orphan);
        let webhooks = spec.webhooks.unwrap();
        assert_eq!(webhooks.endpoint.path_template_or_default(), "/webhooks/{topic}");
        assert_eq!(webhooks.format.unwrap_or_default(), WebhookFormat::Json);
        // And serializing writes back only what was given.
        let back = serde_json::to_value(ShopifyShopSpec {
            webhooks: None,
            ..spec
        })
        .unwrap();
        assert_eq!(
            back,
            serde_json::json!({"domain": "a.myshopify.com", "token": {"secretRef": {"name": "t"}}})
        );
    }
}
