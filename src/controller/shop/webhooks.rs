//! The webhooks duty: check the token, list the shop's subscriptions, plan,
//! apply (one GraphQL document), and report conditions and per-topic status.
//! Talks to Shopify; writes nothing to the apiserver but Events.

use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::fetch::TokenError;
use super::host::{Endpoint, HostError};
use super::plan::{self, Desired, Extra, Plan, TopicState};
use super::resolve_app::{Refusal, Resolved};
use super::token::TokenStep;
use super::{status, uninstalled};
use crate::controller::conditions::{Cond, ConditionType, Reason, Status};
use crate::controller::reasons::Progress;
use crate::controller::{Context, Note, Settings, TokenChecks};
use crate::crd::{ManagementPolicy, ShopifyShop, WebhookStatus};
use shopify_admin::scope as scopes;
use shopify_admin::{AccessToken, Change, ChangeResult, ShopifyError, Subscription, TokenInfo};

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
/// schedule slot costs no Shopify request) unless `fresh` asks otherwise.
pub(super) async fn step(
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
        return refused(shop, r);
    }
    let app_credentials_ok = resolved.credentials.is_none();
    match tokens.token(shop) {
        _ if tokens.marker == uninstalled::Marker::Current => uninstalled::outcome(shop),
        Err(e) => token_unreadable(shop, &e),
        Ok(token) => {
            let key = pass_key(shop, &host, &token, app_credentials_ok);
            let reused = status::reused_outcome(shop).filter(|_| !fresh && ctx.recent_pass(&uid, key));
            match reused {
                Some(reused) => reused,
                None => {
                    let out = reconcile(ctx, shop, &token, host).await;
                    // Only a settled pass is reused: not one still waiting
                    // (a retry, or the certificate gate).
                    let settled = !out.failed
                        && out.retry_in.is_none()
                        && out.webhooks.reason.progress() != Progress::Retried;
                    ctx.record_pass(&uid, key, settled);
                    out
                }
            }
        }
    }
}

/// What the webhooks pass (and the status it is reused from) depends on,
/// hashed.
fn pass_key(
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

/// Token problems before any Shopify call: the whole outcome.
fn token_unreadable(shop: &ShopifyShop, e: &TokenError) -> Outcome {
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
fn refused(shop: &ShopifyShop, r: &Refusal) -> Outcome {
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

/// A Shopify error as `TokenValid` (for errors about the token or shop) or
/// `WebhooksSynced` (for the rest), with a retry delay for the retryable.
fn classify(e: &ShopifyError, what: &str) -> (Option<Cond>, Cond, Option<Duration>) {
    let msg = format!("{what}: {e}");
    match e {
        ShopifyError::Unauthorized
        | ShopifyError::PaymentRequired
        | ShopifyError::Locked
        | ShopifyError::NotFound
        | ShopifyError::Forbidden { .. } => (
            Some(Cond::new(
                ConditionType::TokenValid,
                Status::False,
                Reason::of_shopify(e),
                msg,
            )),
            Cond::new(
                ConditionType::WebhooksSynced,
                Status::Unknown,
                Reason::TokenInvalid,
                "no valid token to check subscriptions with",
            ),
            None,
        ),
        ShopifyError::Throttled { retry_after } => (
            None,
            Cond::new(
                ConditionType::WebhooksSynced,
                Status::False,
                Reason::of_shopify(e),
                msg,
            ),
            Some(*retry_after),
        ),
        _ => (
            None,
            Cond::new(
                ConditionType::WebhooksSynced,
                Status::False,
                Reason::of_shopify(e),
                msg,
            ),
            Some(Duration::from_secs(5)),
        ),
    }
}

/// Runs the webhooks duty for `shop` with `token` (already read) and `host`
/// (already resolved, `None` when the shop has no `webhooks`).
async fn reconcile(
    ctx: &Context,
    shop: &ShopifyShop,
    token: &AccessToken,
    host: Option<Result<Endpoint, HostError>>,
) -> Outcome {
    let domain = &shop.spec.domain;
    let version = shop.spec.admin_api_version_or_default();
    let uid = shop.metadata.uid.clone().unwrap_or_default();

    // 1. The token: checked with Shopify once per token value (cached by
    //    fingerprint), so a steady resync costs one list request only.
    // Without webhooks no list request re-validates the token, so the check
    // itself is repeated every resync interval.
    let max_age = if shop.spec.webhooks.is_some() {
        Duration::MAX
    } else {
        ctx.settings.resync_interval
    };
    let info = match ctx.token_checks.get(shop, token, max_age) {
        Some(info) => info,
        None => match ctx.shopify.token_info(domain, version, token).await {
            Ok(info) => {
                ctx.metrics
                    .shopify("token_info", "ok", info.meta.requests, info.meta.waited);
                ctx.token_checks.put(shop, token, info.clone());
                info
            }
            Err(e) => {
                ctx.metrics.shopify("token_info", e.reason(), 1, Duration::ZERO);
                let (token_cond, hooks, retry) = classify(&e, "checking the token");
                let token_cond = token_cond.unwrap_or_else(|| {
                    Cond::new(
                        ConditionType::TokenValid,
                        Status::Unknown,
                        Reason::of_shopify(&e),
                        format!("{e}"),
                    )
                });
                let mut out = Outcome::new(token_cond, hooks, shop);
                out.retry_in = retry;
                out.failed = retry.is_some();
                return out;
            }
        },
    };
    if !info.myshopify_domain.is_empty() && !info.myshopify_domain.eq_ignore_ascii_case(domain) {
        ctx.token_checks.forget(&uid);
        return Outcome::new(
            Cond::new(
                ConditionType::TokenValid,
                Status::False,
                Reason::TokenShopMismatch,
                format!("the token belongs to {}, not {domain}", info.myshopify_domain),
            ),
            Cond::new(
                ConditionType::WebhooksSynced,
                Status::Unknown,
                Reason::TokenInvalid,
                "no valid token for this shop",
            ),
            shop,
        );
    }
    let token_ok = token_valid(&info);

    let Some(spec) = &shop.spec.webhooks else {
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
        return out;
    };

    // A field the version lacks or a topic Shopify does not have would fail
    // the whole document: refuse the spec before anything is sent.
    if let Some((reason, message)) = super::versions::refusal(spec, version) {
        let cond = Cond::new(ConditionType::WebhooksSynced, Status::False, reason, message);
        return Outcome::new(token_ok, cond, shop);
    }

    // 2. Where Shopify has things now.
    let listing = match ctx.shopify.list_subscriptions(domain, version, token).await {
        Ok(l) => {
            ctx.metrics.shopify("list", "ok", l.meta.requests, l.meta.waited);
            l
        }
        Err(e) => {
            ctx.metrics.shopify("list", e.reason(), 1, Duration::ZERO);
            if matches!(e, ShopifyError::Unauthorized) {
                ctx.token_checks.forget(&uid);
            }
            let (token_cond, hooks, retry) = classify(&e, "listing subscriptions");
            let mut out = Outcome::new(token_cond.unwrap_or(token_ok), hooks, shop);
            out.retry_in = retry;
            out.failed = retry.is_some();
            return out;
        }
    };
    let served = listing.meta.served_version.clone().filter(|v| v != version);
    let deprecation = listing.meta.deprecated_reason.clone();

    // 3. The host; without a valid one nothing is repointed.
    // (`None` cannot happen with webhooks configured; reported, not trusted.)
    let endpoint = match host.unwrap_or_else(|| Err(HostError::IngressHostMissing(String::new()))) {
        Ok(e) => e,
        Err(e) => {
            let mut out = Outcome::new(
                token_ok,
                Cond::new(
                    ConditionType::WebhooksSynced,
                    Status::False,
                    e.reason(),
                    e.message(),
                ),
                shop,
            );
            out.served_version = served;
            out.api_deprecation = deprecation;
            return out;
        }
    };
    let host = endpoint.host.clone();

    // 4. Plan (pure).
    let wanted = plan::wanted(spec, &host, &extra_subscriptions(&ctx.settings, shop));
    let topics: Vec<String> = wanted.iter().map(|w| w.topic.clone()).collect();
    let missing = scopes::missing(&topics, &info.scopes);
    let desired = Desired {
        host: host.clone(),
        wanted,
        prune: spec.prune.unwrap_or(false),
        unauthorized_topics: scopes::unauthorized_topics(&missing),
    };
    let plan = plan::plan(&desired, &listing.subscriptions);
    let mut out = Outcome::new(
        token_ok,
        Cond::new(ConditionType::WebhooksSynced, Status::True, Reason::InSync, ""),
        shop,
    );
    out.served_version = served;
    out.api_deprecation = deprecation;
    out.unmanaged = Some(plan.unmanaged.len() as i32);

    // 5. Apply, or only report under Observe; a move to a new host waits
    //    for the host's certificate (nothing is sent meanwhile).
    let observe = shop.spec.management_policy_or_default() == ManagementPolicy::Observe;
    let mut states: Vec<Recorded> = plan
        .topics
        .iter()
        .map(|t| Recorded {
            id: t.id.clone(),
            state: t.state,
            message: None,
        })
        .collect();
    if !observe
        && moves_host(&plan, &listing.subscriptions, &host)
        && let Err(refusal) = ctx
            .gate
            .check(&ctx.client, shop, &endpoint, ctx.settings.certificate_margin)
            .await
    {
        out.webhooks = Cond::new(
            ConditionType::WebhooksSynced,
            Status::False,
            Reason::EndpointCertificateNotReady,
            format!(
                "webhooks stay where they are until {host} can serve HTTPS: {}",
                refusal.message
            ),
        );
        out.retry_in = refusal.retry_in;
        out.topics = Some(topic_statuses(&plan, states));
        return out;
    }
    // Sharded: the shop may have moved to another shard while this pass
    // ran; only its owner now writes to Shopify.
    if !plan.changes.is_empty() && !observe && !ctx.still_ours(shop).await {
        out.moved = true;
        return out;
    }
    let mut failures: Vec<String> = Vec::new();
    if !plan.changes.is_empty() && !observe {
        match ctx
            .shopify
            .apply_with_meta(domain, version, token, &plan.changes)
            .await
        {
            Ok((results, meta)) => {
                ctx.metrics.shopify("apply", "ok", meta.requests, meta.waited);
                record_results(ctx, shop, &plan, &results, &mut states, &mut failures, &mut out);
                out.host = Some(host.clone());
            }
            Err(e) => {
                ctx.metrics.shopify("apply", e.reason(), 1, Duration::ZERO);
                if matches!(e, ShopifyError::Unauthorized) {
                    ctx.token_checks.forget(&uid);
                }
                let (token_cond, hooks, retry) = classify(&e, "applying the plan");
                if let Some(t) = token_cond {
                    out.token = t;
                }
                out.webhooks = hooks;
                out.retry_in = retry;
                out.failed = retry.is_some();
            }
        }
    } else if plan.changes.is_empty() {
        out.host = Some(host.clone());
    }

    out.topics = Some(topic_statuses(&plan, states));

    // 6. WebhooksSynced.
    if out.webhooks.reason == Reason::InSync {
        out.webhooks = synced_condition(&plan, observe, &missing, &failures, plan.topics.len());
    }
    out
}

/// The subscriptions a shop gets besides its spec's topics: the
/// operator's own `app/uninstalled` endpoint, when the operator runs with
/// `--subscribe-app-uninstalled` and the shop has app credentials (without
/// them a delivery could not be verified) and webhooks configured.
pub fn extra_subscriptions(settings: &Settings, shop: &ShopifyShop) -> Vec<Extra> {
    match (&settings.uninstall_host, &shop.spec.app, &shop.spec.webhooks) {
        (Some(host), Some(_), Some(_)) => vec![Extra {
            topic: crate::names::UNINSTALLED_TOPIC.to_string(),
            host: host.clone(),
            path_template: crate::names::WEBHOOKS_PATH_TEMPLATE.to_string(),
        }],
        _ => Vec::new(),
    }
}

fn token_valid(info: &TokenInfo) -> Cond {
    Cond::new(
        ConditionType::TokenValid,
        Status::True,
        Reason::TokenVerified,
        format!(
            "token accepted by {} ({} scopes)",
            info.shop_name,
            info.scopes.len()
        ),
    )
}

fn synced_condition(
    plan: &Plan,
    observe: bool,
    missing: &[(String, &'static str)],
    failures: &[String],
    desired: usize,
) -> Cond {
    if !failures.is_empty() {
        return Cond::new(
            ConditionType::WebhooksSynced,
            Status::False,
            Reason::ShopifyUserError,
            failures.join("; "),
        );
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|(t, s)| format!("{t} needs {s}")).collect();
        return Cond::new(
            ConditionType::WebhooksSynced,
            Status::False,
            Reason::MissingScopes,
            format!("the token lacks scopes: {}", list.join(", ")),
        );
    }
    if observe && !plan.changes.is_empty() {
        let drift: Vec<String> = plan
            .changes
            .iter()
            .map(|c| match c {
                Change::Create { topic, .. } => format!("create {topic}"),
                Change::Update { topic, .. } => format!("update {topic}"),
                Change::Delete { topic, id } => format!("delete {topic} ({id})"),
            })
            .collect();
        return Cond::new(
            ConditionType::WebhooksSynced,
            Status::False,
            Reason::DriftDetected,
            format!("Observe: Manage would {}", drift.join(", ")),
        );
    }
    let mut msg = format!("{desired} subscriptions in sync");
    if plan.duplicates() > 0 && !observe {
        msg.push_str(&format!(
            "; {} duplicates left in place (set prune: true to delete)",
            plan.duplicates()
        ));
    }
    if !plan.unmanaged.is_empty() {
        msg.push_str(&format!(
            "; {} subscriptions not in the spec left alone",
            plan.unmanaged.len()
        ));
    }
    Cond::new(ConditionType::WebhooksSynced, Status::True, Reason::InSync, msg)
}

/// True when the plan moves a subscription from another host to `host`:
/// what the certificate gate is for (adoption, a no-op, a create or a
/// repair at the current host are not moves).
fn moves_host(plan: &Plan, listed: &[Subscription], host: &str) -> bool {
    plan.changes.iter().any(|c| match c {
        Change::Update { id, address, .. } if plan::https_host(address) == Some(host) => listed
            .iter()
            .find(|s| &s.id == id)
            .is_some_and(|s| plan::https_host(&s.address) != Some(host)),
        _ => false,
    })
}

/// `status.webhooks`: each wanted subscription with where it stands.
fn topic_statuses(plan: &Plan, states: Vec<Recorded>) -> Vec<WebhookStatus> {
    plan.topics
        .iter()
        .zip(states)
        .map(|(t, r)| WebhookStatus {
            topic: t.topic.clone(),
            address: t.address.clone(),
            id: r.id,
            state: r.state,
            message: r.message,
        })
        .collect()
}

/// Where one wanted subscription stands after the apply.
struct Recorded {
    id: Option<String>,
    state: TopicState,
    /// Shopify's words when it refused the change.
    message: Option<String>,
}

/// Maps each change's result back to its wanted subscription: new ids and
/// states, failures naming the topic (and destination) in Shopify's words,
/// and Events.
fn record_results(
    ctx: &Context,
    shop: &ShopifyShop,
    plan: &Plan,
    results: &[ChangeResult],
    states: &mut [Recorded],
    failures: &mut Vec<String>,
    out: &mut Outcome,
) {
    let drift = is_external_drift(shop, plan);
    let (mut created, mut updated, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
    for (change, result) in plan.changes.iter().zip(results) {
        // By topic and address: one topic may be wanted at two addresses
        // (the OMS's app/uninstalled and the operator's own).
        let idx = plan.topics.iter().position(|t| {
            t.topic == change.topic()
                && match change {
                    Change::Create { address, .. } | Change::Update { address, .. } => *address == t.address,
                    _ => true,
                }
        });
        match (change, result) {
            (Change::Create { topic, .. }, ChangeResult::Created(s)) => {
                if let Some(i) = idx {
                    states[i].id = Some(s.id.clone());
                    states[i].state = TopicState::InSync;
                }
                created.push(topic.clone());
            }
            (Change::Update { topic, .. }, ChangeResult::Updated(_)) => {
                if let Some(i) = idx {
                    states[i].state = TopicState::InSync;
                }
                updated.push(topic.clone());
            }
            (Change::Delete { topic, id }, ChangeResult::Deleted { .. }) => {
                deleted.push(format!("{topic} ({id})"))
            }
            (_, ChangeResult::Failed { user_errors }) => {
                let words = user_errors
                    .iter()
                    .map(|e| match e.field.last() {
                        Some(field) => format!("{field}: {}", e.message),
                        None => e.message.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let at = match change {
                    Change::Create { address, .. } | Change::Update { address, .. } => {
                        format!(" at {address}")
                    }
                    Change::Delete { id, .. } => format!(" ({id})"),
                };
                failures.push(format!("{}{at}: {words}", change.topic()));
                if let (Some(i), Change::Create { .. } | Change::Update { .. }) = (idx, change) {
                    states[i].state = TopicState::Failed;
                    states[i].message = Some(words);
                }
            }
            (c, r) => failures.push(format!("{}: unexpected result {r:?}", c.topic())),
        }
    }
    if drift && (!created.is_empty() || !updated.is_empty()) {
        let repaired: Vec<&String> = created.iter().chain(&updated).collect();
        ctx.metrics.drift_repairs.inc_by(repaired.len() as u64);
        out.notes.push(Note::new(
            EventType::Warning,
            "DriftRepaired",
            "RepairWebhooks",
            format!(
                "subscriptions changed outside the operator were repaired: {}",
                repaired.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    for (list, reason, verb) in [
        (&created, "SubscriptionsCreated", "created"),
        (&updated, "SubscriptionsUpdated", "updated"),
        (&deleted, "SubscriptionsDeleted", "deleted"),
    ] {
        if !list.is_empty() {
            out.notes.push(Note::new(
                EventType::Normal,
                reason,
                "ApplyWebhooks",
                format!("{} {verb}: {}", list.len(), list.join(", ")),
            ));
        }
    }
    if !failures.is_empty() {
        out.notes.push(Note::new(
            EventType::Warning,
            "ShopifyUserError",
            "ApplyWebhooks",
            failures.join("; "),
        ));
    }
}

/// A repair is of external drift when the spec and host are what the last
/// status was written for and the topic was in sync then: something outside
/// the operator (Shopify after failed deliveries, a person) changed it.
fn is_external_drift(shop: &ShopifyShop, plan: &Plan) -> bool {
    let Some(status) = &shop.status else { return false };
    if status.observed_generation != shop.metadata.generation {
        return false;
    }
    plan.changes.iter().any(|c| {
        let wanted_at = match c {
            Change::Create { address, .. } | Change::Update { address, .. } => Some(address),
            Change::Delete { .. } => None,
        };
        status.webhooks.iter().any(|w| {
            w.topic == c.topic()
                && wanted_at.is_none_or(|a| *a == w.address)
                && w.state == TopicState::InSync
                && plan
                    .topics
                    .iter()
                    .any(|t| t.topic == w.topic && t.address == w.address)
        })
    })
}
