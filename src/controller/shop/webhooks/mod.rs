//! Step 5 of a pass, the webhooks duty, one sub-step per module:
//!
//! 1. `token_check` — the token, checked with Shopify (cached);
//! 2. `list` — the shop's subscriptions as Shopify has them;
//! 3. the host (already resolved by `fetch`; without one nothing moves);
//! 4. the plan — pure, in `shop::plan`;
//! 5. `apply` — one GraphQL document, behind the certificate gate; the
//!    `inventory` (what the operator created or adopted) tells which
//!    subscriptions the spec dropped are its to prune;
//! 6. `verdict` — `WebhooksSynced` (pure), with `record` for per-topic
//!    status and the apply's Events (pure).
//!
//! [`step`] comes first: nothing is sent for a refused shop, an
//! uninstalled app or an unreadable token (`unsent`), and a recent pass
//! with the same inputs is reused from status (`reuse`). Talks to Shopify,
//! and to the apiserver only for reads (the gate, the shard check); writes
//! nothing but Events.

mod apply;
pub(in crate::controller::shop) mod inventory;
mod list;
mod record;
mod reuse;
mod token_check;
mod unsent;
mod verdict;

use std::time::Duration;

use kube::ResourceExt;

use super::host::{Endpoint, HostError};
use super::plan::{self, Desired, Extra, Plan};
use super::resolve_app::Resolved;
use super::token::TokenStep;
use super::{status, uninstalled, versions};
use crate::controller::conditions::{Cond, ConditionType, Reason, Status};
use crate::controller::{Context, Note, Settings};
use crate::crd::{ManagementPolicy, OrphanedSubscription, ShopifyShop, WebhookStatus, WebhooksSpec};
use shopify_admin::scope as scopes;
use shopify_admin::{AccessToken, Listing, TokenInfo};

/// What the webhooks step found and did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `TokenValid`.
    pub token: Cond,
    /// `WebhooksSynced`.
    pub webhooks: Cond,
    /// `status.webhookHost` (kept from before when no host could be had).
    pub host: Option<String>,
    /// `status.webhooks`.
    pub topics: Option<Vec<WebhookStatus>>,
    /// `status.unmanagedSubscriptions`.
    pub unmanaged: Option<i32>,
    /// `status.servedApiVersion`.
    pub served_version: Option<String>,
    /// `status.apiDeprecationReason`.
    pub api_deprecation: Option<String>,
    /// `status.orphanedSubscriptions`.
    pub orphaned: Vec<OrphanedSubscription>,
    /// When to look again sooner than the resync interval (throttling,
    /// transient errors, an outcome to re-check).
    pub retry_in: Option<Duration>,
    /// Events to publish.
    pub notes: Vec<Note>,
    /// Whether this pass failed in a way that should back off.
    pub failed: bool,
    /// The shop moved to another shard during the pass: nothing was sent,
    /// and nothing more is written.
    pub moved: bool,
}

impl Outcome {
    /// An outcome with these two conditions and everything else as the
    /// previous status had it (nothing was learnt from Shopify).
    pub(crate) fn new(token: Cond, webhooks: Cond, previous: &ShopifyShop) -> Self {
        let status = previous.status.as_ref();
        Outcome {
            token,
            webhooks,
            host: status.and_then(|s| s.webhook_host.clone()),
            topics: status.map(|s| s.webhooks.clone()),
            unmanaged: status.and_then(|s| s.unmanaged_subscriptions),
            served_version: status.and_then(|s| s.served_api_version.clone()),
            api_deprecation: status.and_then(|s| s.api_deprecation_reason.clone()),
            orphaned: status
                .map(|s| s.orphaned_subscriptions.clone())
                .unwrap_or_default(),
            retry_in: None,
            notes: Vec::new(),
            failed: false,
            moved: false,
        }
    }
}

/// The webhooks outcome of this pass: nothing is sent for a shop outside
/// the allow-list, an uninstalled app or an unreadable token; a recent pass
/// with the same inputs is reused from status (a Job finishing or a
/// schedule slot costs no Shopify request) unless `fresh` asks otherwise
/// (a reconcile request: the token is checked again too).
pub(in crate::controller::shop) async fn step(
    ctx: &Context,
    resolved: &Resolved<'_>,
    tokens: &TokenStep,
    host: Option<Result<Endpoint, HostError>>,
    fresh: bool,
) -> Outcome {
    let shop = resolved.shop.as_ref();
    let uid = shop.uid().unwrap_or_default();
    if fresh {
        ctx.token_checks.forget(&uid);
    }
    // The allow-lists come first: no token is ever sent for such a shop.
    if let Some(r) = &resolved.refusal {
        return unsent::refused(shop, r);
    }
    let app_credentials_ok = resolved.credentials.is_none();
    match tokens.token(shop) {
        _ if tokens.marker == uninstalled::Marker::Current => uninstalled::outcome(shop),
        Err(e) => unsent::token_unreadable(shop, &e),
        Ok(token) => {
            let key = reuse::pass_key(shop, &host, &token, app_credentials_ok);
            let reused = status::reused_outcome(shop)
                .filter(|o| !fresh && ctx.recent_pass(&uid, key, status::outcome_fingerprint(o)));
            match reused {
                Some(reused) => reused,
                None => {
                    let out = reconcile(
                        &Pass {
                            ctx,
                            shop,
                            token: &token,
                        },
                        host,
                    )
                    .await;
                    ctx.record_pass(&uid, key, reuse::settled(&out));
                    out
                }
            }
        }
    }
}

/// What every request of one pass needs.
#[derive(Clone, Copy)]
struct Pass<'a> {
    ctx: &'a Context,
    shop: &'a ShopifyShop,
    /// Already read from the Secret.
    token: &'a AccessToken,
}

/// Runs the webhooks duty for the pass's shop with `host` (already
/// resolved, `None` when the shop has no `webhooks`): the sub-steps in
/// order, each of which may end the pass with its outcome.
async fn reconcile(pass: &Pass<'_>, host: Option<Result<Endpoint, HostError>>) -> Outcome {
    let Pass { ctx, shop, token } = *pass;
    let version = shop.spec.admin_api_version_or_default();
    // 1. The token.
    let info = match token_check::check(ctx, shop, token).await {
        Ok(info) => info,
        Err(out) => return out,
    };
    let token_ok = token_check::valid(&info);
    let Some(spec) = &shop.spec.webhooks else {
        return not_configured(token_ok, shop);
    };
    // A field the version lacks or a topic Shopify does not have would fail
    // the whole document: refuse the spec before anything is sent.
    if let Some((reason, message)) = versions::refusal(spec, version) {
        let cond = Cond::new(ConditionType::WebhooksSynced, Status::False, reason, message);
        return Outcome::new(token_ok, cond, shop);
    }
    // 2. Where Shopify has things now.
    let listing = match list::list(ctx, shop, token, &token_ok).await {
        Ok(listing) => listing,
        Err(out) => return out,
    };
    let (served, deprecation) = list::version_signals(&listing, version);
    // 3. The host; without a valid one nothing is repointed.
    // (`None` cannot happen with webhooks configured; reported, not trusted.)
    let endpoint = match host.unwrap_or_else(|| Err(HostError::IngressHostMissing(String::new()))) {
        Ok(e) => e,
        Err(e) => {
            let cond = Cond::new(
                ConditionType::WebhooksSynced,
                Status::False,
                e.reason(),
                e.message(),
            );
            let mut out = Outcome::new(token_ok, cond, shop);
            out.served_version = served;
            out.api_deprecation = deprecation;
            return out;
        }
    };
    // 4. Plan (pure).
    let (plan, missing) = plan_for(&ctx.settings, shop, spec, &endpoint.host, &info, &listing);
    let in_sync = Cond::new(ConditionType::WebhooksSynced, Status::True, Reason::InSync, "");
    let mut out = Outcome::new(token_ok, in_sync, shop);
    out.served_version = served;
    out.api_deprecation = deprecation;
    out.unmanaged = Some(plan.unmanaged.len() as i32);
    // 5. Apply, or only report under Observe.
    let observe = shop.spec.management_policy_or_default() == ManagementPolicy::Observe;
    let applied = apply::apply(pass, &endpoint, &plan, &listing.subscriptions, observe, &mut out).await;
    // Orphans are announced even when the certificate gate holds the pass:
    // the status records them now, and a later pass would take them as known.
    let prune = spec.prune.unwrap_or(false);
    out.notes.extend(inventory::notes(
        shop.status.as_ref(),
        &out.orphaned,
        prune && !observe,
    ));
    let Some(failures) = applied else {
        return out;
    };
    // 6. WebhooksSynced.
    if out.webhooks.reason == Reason::InSync {
        out.webhooks = verdict::synced(&plan, observe, &missing, &failures, plan.topics.len());
    }
    out
}

/// The plan for `spec` at `host` against what Shopify lists, and the
/// topics whose scopes the token lacks (they are not planned). Pure.
fn plan_for(
    settings: &Settings,
    shop: &ShopifyShop,
    spec: &WebhooksSpec,
    host: &str,
    info: &TokenInfo,
    listing: &Listing,
) -> (Plan, Vec<(String, &'static str)>) {
    let wanted = plan::wanted(spec, host, &extra_subscriptions(settings, shop));
    let topics: Vec<String> = wanted.iter().map(|w| w.topic.clone()).collect();
    let missing = scopes::missing(&topics, &info.scopes);
    let desired = Desired {
        host: host.to_string(),
        wanted,
        prune: spec.prune.unwrap_or(false),
        unauthorized_topics: scopes::unauthorized_topics(&missing),
        owned: inventory::owned(shop.status.as_ref()),
    };
    (plan::plan(&desired, &listing.subscriptions), missing)
}

/// A shop without `spec.webhooks`: only the token was checked, and its
/// subscriptions are left alone.
fn not_configured(token_ok: Cond, shop: &ShopifyShop) -> Outcome {
    let mut out = Outcome::new(
        token_ok,
        Cond::new(
            ConditionType::WebhooksSynced,
            Status::True,
            Reason::NotConfigured,
            "spec.webhooks is not set; subscriptions are left alone",
        ),
        shop,
    );
    out.topics = Some(Vec::new());
    out.host = None;
    out
}

/// The subscriptions a shop gets besides its spec's topics: the
/// operator's own `app/uninstalled` endpoint, when the operator runs with
/// `--subscribe-app-uninstalled` and the shop has app credentials (without
/// them a delivery could not be verified) and webhooks configured.
pub(in crate::controller::shop) fn extra_subscriptions(
    settings: &Settings,
    shop: &ShopifyShop,
) -> Vec<Extra> {
    match (&settings.uninstall_host, &shop.spec.app, &shop.spec.webhooks) {
        (Some(host), Some(_), Some(_)) => vec![Extra {
            topic: crate::names::UNINSTALLED_TOPIC.to_string(),
            host: host.clone(),
            path_template: crate::names::WEBHOOKS_PATH_TEMPLATE.to_string(),
        }],
        _ => Vec::new(),
    }
}
