//! The ShopifyShop controller. This module is the driver: one reconcile as
//! named steps, and `error_policy`. The steps live in their own modules:
//!
//! 1. resolve_app — the ShopifyApp of `spec.appRef`: the shop as it
//!    completes it (pure, `inherit`), and the allow-lists;
//! 2. finalizer — add or remove it for `deletionPolicy` (and clean up);
//! 3. fetch — what the shop references: the Ingress host, the token Secret;
//! 4. token — uninstall record, migration, refresh (writes the Secret);
//! 5. webhooks — token check, list, plan (pure, `plan`), apply;
//! 6. sync — plan the shop's Jobs (pure, `sync::plan`), then create/delete;
//! 7. status — build the status (pure) and write it only if it changed.
//!
//! Everything in this folder is used by the ShopifyShop controller only;
//! `watches` (one level up) reaches in for the triggers it needs (`gate`,
//! `inherit`, `sync`'s Job label). Talks to the apiserver and to Shopify.

mod fetch;
mod finalizer;
pub(super) mod gate;
mod host;
pub(super) mod inherit;
pub mod migrate;
mod plan;
pub mod refresh;
mod resolve_app;
mod status;
pub(super) mod sync;
mod token;
mod uninstalled;
mod versions;
mod webhooks;

pub use gate::certificate_resource;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::conditions::{self, Cond, ConditionType, Reason, Status};
use super::{Context, Error, Note, TokenChecks, reasons};
use crate::crd::{DeletionPolicy, ShopifyShop};
use crate::names::FINALIZER;

/// Token problems before any Shopify call: the whole outcome.
fn token_unreadable(shop: &ShopifyShop, e: &fetch::TokenError) -> webhooks::Outcome {
    webhooks::Outcome::new(
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
fn refused(shop: &ShopifyShop, r: &resolve_app::Refusal) -> webhooks::Outcome {
    webhooks::Outcome::new(
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

/// Reconciles one ShopifyShop.
pub(super) async fn reconcile(shop: Arc<ShopifyShop>, ctx: Arc<Context>) -> Result<Action, Error> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "reconcile",
        namespace = shop.namespace().as_deref().unwrap_or(""),
        name = %shop.name_any(),
        domain = %shop.spec.domain
    );
    let started = std::time::Instant::now();
    let result = reconcile_shop(&shop, &ctx).instrument(span).await;
    ctx.metrics
        .reconciled(result.as_ref().err().map(Error::step), started.elapsed());
    result
}

async fn reconcile_shop(shop: &Arc<ShopifyShop>, ctx: &Arc<Context>) -> Result<Action, Error> {
    let ctx = ctx.as_ref();
    // 1. The shop as its app completes it: everything below works on that.
    let resolved = resolve_app::resolve(ctx, shop.as_ref()).await?;
    let shop = resolved.shop.as_ref();
    // 2. The finalizer (and clean-up on deletion) comes before everything.
    if let Some(action) = finalizer_step(ctx, shop).await? {
        return Ok(action);
    }
    // 3. What the shop references.
    let host = fetch::webhook_host(&ctx.client, ctx.ingresses.get(), shop)
        .await
        .map_err(Error::Ingress)?;
    let refusal = resolved.refusal.as_ref();
    let allowed = refusal.is_none();
    // 4. The token Secret, read once per pass: a migration or refresh
    //    returns the Secret it stored, and the token is taken from that.
    let tokens = token::prepare(ctx, shop, allowed).await?;
    // 5. Webhooks (and the token check with Shopify); a reconcile request
    //    re-checks the token and re-lists now, whatever the caches say.
    let requested = status::reconcile_request(shop);
    if requested.is_some() {
        ctx.token_checks.forget(&shop.uid().unwrap_or_default());
    }
    let credentials_ok = resolved.credentials.is_none();
    let mut outcome = webhooks_step(
        ctx,
        shop,
        &tokens,
        host,
        refusal,
        credentials_ok,
        requested.is_some(),
    )
    .await;
    if outcome.moved {
        tracing::info!("the shop moved to another shard; leaving it to its new owner");
        return Ok(Action::await_change());
    }
    if let Some(c) = &resolved.credentials
        && outcome.token.status == Status::True
    {
        outcome.token = Cond::new(
            ConditionType::TokenValid,
            Status::False,
            c.reason,
            c.message.clone(),
        );
    }
    let expires_at = tokens.expires_at;
    tokens.finish(ctx, shop, &mut outcome).await?;
    // 6. Sync Jobs; new ones only with a valid token.
    let token_valid = outcome.token.status == Status::True;
    let syncs = sync::reconcile(ctx, shop, token_valid)
        .await
        .map_err(Error::SyncJobs)?;
    // 7. Events (the steps' and one per condition transition), then the
    //    status, written only if it changed.
    let mut notes: Vec<Note> = outcome.notes.iter().chain(&syncs.notes).cloned().collect();
    let parts = [&outcome.token, &outcome.webhooks, &syncs.cond];
    notes.extend(status::transition_notes(shop, &parts, &notes));
    let extra = webhooks::extra_subscriptions(&ctx.settings, shop).len();
    let mut next = status::next(shop, &parts, &outcome, &syncs, &conditions::now(), extra);
    next.token_expires_at = expires_at.map(Time);
    if let Some(value) = requested {
        next.last_handled_reconcile_at = Some(value.to_string());
    }
    notes.extend(status::version_notes(shop, &next));
    for note in &notes {
        ctx.publish(shop, note).await;
    }
    let ns = shop.namespace().unwrap_or_default();
    let name = shop.name_any();
    for c in &next.conditions {
        ctx.metrics
            .shop_condition(&ns, &name, &c.type_, &c.status, &c.reason);
    }
    let requested = shop.spec.admin_api_version_or_default();
    ctx.metrics
        .served_version(&ns, &name, requested, next.served_api_version.as_deref());
    let deprecated_at = next.served_api_version.as_deref().unwrap_or(requested);
    ctx.metrics.api_deprecated(
        &ns,
        &name,
        next.api_deprecation_reason.as_ref().map(|_| deprecated_at),
    );
    status::write(ctx, shop, next).await?;
    Ok(Action::requeue(requeue_after(
        ctx, shop, &outcome, &syncs, expires_at,
    )))
}

/// Adds or removes the finalizer as `deletionPolicy` asks, or cleans up a
/// shop being deleted. `Some`: the pass ends here.
async fn finalizer_step(ctx: &Context, shop: &ShopifyShop) -> Result<Option<Action>, Error> {
    let has_finalizer = shop.finalizers().iter().any(|f| f == FINALIZER);
    if shop.metadata.deletion_timestamp.is_some() {
        return if has_finalizer {
            finalizer::cleanup(ctx, shop).await.map(Some)
        } else {
            Ok(Some(Action::await_change()))
        };
    }
    let wants_finalizer = shop.spec.deletion_policy_or_default() == DeletionPolicy::Delete;
    if wants_finalizer != has_finalizer {
        finalizer::set(ctx, shop, wants_finalizer).await?;
        // The patch triggers a new reconcile with the updated object.
        return Ok(Some(Action::await_change()));
    }
    Ok(None)
}

/// The webhooks outcome of this pass: nothing is sent for a shop outside
/// the allow-list, an uninstalled app or an unreadable token; a recent pass
/// with the same inputs is reused from status (a Job finishing or a
/// schedule slot costs no Shopify request) unless `fresh` asks otherwise.
async fn webhooks_step(
    ctx: &Context,
    shop: &ShopifyShop,
    tokens: &token::TokenStep,
    host: Option<Result<host::Endpoint, host::HostError>>,
    refusal: Option<&resolve_app::Refusal>,
    app_credentials_ok: bool,
    fresh: bool,
) -> webhooks::Outcome {
    // The allow-lists come first: no token is ever sent for such a shop.
    if let Some(r) = refusal {
        return refused(shop, r);
    }
    let uid = shop.uid().unwrap_or_default();
    match tokens.token(shop) {
        _ if tokens.marker == uninstalled::Marker::Current => uninstalled::outcome(shop),
        Err(e) => token_unreadable(shop, &e),
        Ok(token) => {
            let key = pass_key(shop, &host, &token, app_credentials_ok);
            let reused = status::reused_outcome(shop).filter(|_| !fresh && ctx.recent_pass(&uid, key));
            match reused {
                Some(reused) => reused,
                None => {
                    let out = webhooks::reconcile(ctx, shop, &token, host).await;
                    // Only a settled pass is reused: not one still waiting
                    // (a retry, or the certificate gate).
                    let settled = !out.failed
                        && out.retry_in.is_none()
                        && out.webhooks.reason.progress() != reasons::Progress::Retried;
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
    host: &Option<Result<host::Endpoint, host::HostError>>,
    token: &shopify_admin::AccessToken,
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

/// When to look at the shop again: the resync interval, sooner after a
/// failure (per-shop backoff) or a retryable Shopify error, exactly at the
/// next schedule slot, and just as the token enters its refresh window.
fn requeue_after(
    ctx: &Context,
    shop: &ShopifyShop,
    outcome: &webhooks::Outcome,
    syncs: &sync::Outcome,
    expires_at: Option<jiff::Timestamp>,
) -> Duration {
    let backoff = ctx.backoff(&shop.uid().unwrap_or_default(), outcome.failed);
    let mut next = match (outcome.retry_in, backoff) {
        (Some(r), Some(b)) => r.max(b),
        (Some(r), None) => r,
        (None, Some(b)) => b,
        (None, None) => ctx.settings.resync_interval,
    };
    if let Some(wake) = syncs.wake {
        next = next.min(wake);
    }
    if let Some(expires) = expires_at {
        let ahead = jiff::SignedDuration::try_from(ctx.settings.refresh_ahead).unwrap_or_default();
        let until = (expires - ahead).duration_since(ctx.clock.now());
        if let Ok(until) = Duration::try_from(until) {
            next = next.min(until + Duration::from_secs(1));
        }
    }
    next.min(ctx.settings.resync_interval)
}

/// What happens after a failed reconcile: per-shop exponential backoff.
pub(super) fn error_policy(shop: Arc<ShopifyShop>, err: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx
        .backoff(&shop.uid().unwrap_or_default(), true)
        .unwrap_or(Duration::from_secs(5));
    tracing::warn!(name = %shop.name_any(), error = %err, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
