//! The ShopifyShop's status: conditions, where its webhooks point and how
//! each desired subscription stands, its syncs, token expiry, API version
//! notes. Pure data, no network. Written only by the operator (the
//! controller applies it; the `app/uninstalled` receiver merge-patches
//! `appUninstalled`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a ShopifyShop.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShopifyShopStatus {
    /// The `metadata.generation` the status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `TokenValid`, `WebhooksSynced`, `SyncHealthy`, one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The host the webhook subscriptions point at now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_host: Option<String>,

    /// `in-sync/desired` webhook subscriptions, e.g. `8/8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks_in_sync: Option<String>,

    /// One entry per desired topic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookStatus>,

    /// Subscriptions of this app on the shop for topics not in the spec
    /// (left alone unless `prune: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmanaged_subscriptions: Option<i32>,

    /// Subscriptions the operator created or adopted that the spec no
    /// longer names, left on Shopify because `spec.webhooks.prune` is not
    /// set (or their deletion failed): with `prune: true` a pass deletes
    /// them. With the ids in `webhooks` this is the operator's inventory —
    /// what it created or adopted, and the only subscriptions it ever
    /// deletes besides duplicates and those at the spec's destinations. At
    /// most one entry per subscription this app has on the shop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphaned_subscriptions: Vec<OrphanedSubscription>,

    /// The Admin API version Shopify actually served, when it differs from
    /// `spec.adminApiVersion` (a removed version falls forward).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_api_version: Option<String>,

    /// Shopify's `X-Shopify-API-Deprecated-Reason` on the last listing of
    /// this shop's subscriptions: the operator's requests at the served
    /// version use something Shopify has deprecated (a newer
    /// `spec.adminApiVersion` avoids it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_deprecation_reason: Option<String>,

    /// One entry per sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync: Vec<SyncStatus>,

    /// When the access token expires (expiring offline tokens only); it is
    /// refreshed before then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<Time>,

    /// The last `shopify-operator.dev/sync-now` annotation value acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_now_handled: Option<String>,

    /// The last `shopify-operator.dev/reconcile-requested-at` (or Flux's
    /// `reconcile.fluxcd.io/requestedAt`) annotation value acted on: the
    /// pass for it re-checked the token and re-listed the shop on Shopify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The newest `lastSuccessfulTime` of all syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,

    /// Set when Shopify reported `app/uninstalled` for this shop: Jobs and
    /// webhook work stop until the token Secret changes (a reinstall through
    /// the operator's OAuth endpoint, or a new token put there by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_uninstalled: Option<AppUninstalled>,

    /// The ShopifyApp whose token and subscriptions are live for this shop
    /// (shops with `spec.appRef`). It differs from `spec.appRef` while a
    /// handover to another app waits for the merchant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<LiveApp>,

    /// The shop's move to another Shopify app: in progress, or the last one
    /// (kept so the previous app's late `app/uninstalled` delivery is
    /// recognised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<HandoverStatus>,
}

/// An app as a shop uses it (`status.app`, `status.handover.from`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LiveApp {
    /// The ShopifyApp's name.
    pub name: String,
    /// Its client id (API key), when its status had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The Secret with this app's token for the shop.
    pub token_secret: String,
}

/// A handover from one Shopify app to another (`status.handover`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HandoverStatus {
    /// `WaitingForInstall` (the previous app keeps everything until the
    /// new app's token is in `spec.token.secretRef`), `Blocked` (see the
    /// `AppHandover` condition), `Switching` (the new app is live; the
    /// previous app's subscriptions are deleted once the new app's are all
    /// in sync), `Complete` or `Cancelled` (`spec.appRef` was set back
    /// before the switch).
    #[schemars(with = "String")]
    pub phase: HandoverPhase,
    /// The app the shop moves away from.
    pub from: LiveApp,
    /// The ShopifyApp it moves to.
    pub to: String,
    /// Where the merchant installs the new app (the operator's per-app
    /// OAuth route; needs `--public-url`), while it waits for that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_url: Option<String>,
    /// The previous app's subscriptions the operator owned when the switch
    /// began: the ones it deletes with the previous app's token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_subscriptions: Vec<String>,
    /// When the new app became the live one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<Time>,
    /// When the previous app's subscriptions were gone (deleted, or
    /// removed by Shopify with its uninstall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// Whether the previous app was uninstalled from the shop
    /// (`spec.appHandover.uninstallPrevious`, or found already revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_uninstalled: Option<bool>,
}

/// Where a handover stands (`status.handover.phase`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HandoverPhase {
    /// The new app has no usable token for the shop yet.
    #[default]
    WaitingForInstall,
    /// Something a person must fix first (the `AppHandover` condition).
    Blocked,
    /// The new app is live; the previous app's subscriptions go next.
    Switching,
    /// Done: only the new app's subscriptions are left.
    Complete,
    /// `spec.appRef` was set back before the switch: nothing changed.
    Cancelled,
    /// A phase this version does not know (written by another version).
    #[serde(other)]
    Other,
}

/// A subscription of the operator's inventory that the spec no longer
/// names (`status.orphanedSubscriptions[]`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrphanedSubscription {
    /// Shopify's id, `gid://shopify/WebhookSubscription/N`.
    pub id: String,
    /// REST topic, e.g. `orders/paid`.
    pub topic: String,
    /// Where it delivers (`https://…`, `pubsub://…`, an EventBridge ARN).
    pub address: String,
}

/// An `app/uninstalled` delivery the operator received and verified.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppUninstalled {
    /// When the delivery arrived.
    pub time: Time,
    /// The token Secret's `resourceVersion` at that moment: a later version
    /// means a new token, which ends the uninstalled state.
    pub secret_resource_version: String,
}

/// State of one desired subscription: a topic at a destination.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookStatus {
    /// REST topic, e.g. `orders/create`.
    pub topic: String,
    /// The delivery address the subscription has (or should have).
    pub address: String,
    /// Shopify's id, `gid://shopify/WebhookSubscription/N`, once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `InSync`, `Missing`, `MissingScope`, `Failed` (Shopify refused it:
    /// see `message`), or the first field that differs: `WrongAddress`,
    /// `WrongFormat`, `WrongFilter`, `WrongFields`, `WrongMetafields`,
    /// `WrongName`.
    #[schemars(with = "String")]
    pub state: TopicState,
    /// Shopify's words when it refused the subscription (`userErrors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where one desired webhook topic stands (`status.webhooks[].state`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TopicState {
    /// A subscription with the right address and format exists.
    InSync,
    /// No subscription of ours for the topic.
    #[default]
    Missing,
    /// Ours, but at another host (or path variant).
    WrongAddress,
    /// Right address, wrong format.
    WrongFormat,
    /// Right address and format, another `filter`.
    WrongFilter,
    /// Other `includeFields`.
    WrongFields,
    /// Other `metafieldNamespaces` or `metafields`.
    WrongMetafields,
    /// Another `name`.
    WrongName,
    /// The token lacks the scope the topic needs.
    MissingScope,
    /// Shopify refused the create or update (`userErrors`).
    Failed,
    /// A state this version does not know (written by another version of
    /// the operator); never written by this one.
    #[serde(other)]
    Other,
}

/// State of one sync.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// The sync's name.
    pub name: String,
    /// Scheduled time of the newest Job started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// Scheduled time of the newest Job that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// Scheduled time of the newest Job that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
    /// Jobs of this sync running now.
    pub active_jobs: i32,
    /// Failed Jobs since the last success.
    pub consecutive_failures: i32,
}
