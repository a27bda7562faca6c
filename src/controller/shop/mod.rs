//! The ShopifyShop controller. This module is the driver: one reconcile as
//! named steps, and `error_policy`. The steps live in their own modules:
//!
//! 1. resolve_app — the ShopifyApp of `spec.appRef`: the shop as it
//!    completes it (pure, `inherit`), and the allow-lists; then
//!    `handover` — while `appRef` moves to another Shopify app, the app
//!    the pass runs as (the previous one until the new one can take over);
//! 2. finalizer — add or remove it for `deletionPolicy` (and clean up);
//! 3. fetch — what the shop references: the Ingress host, the token Secret;
//! 4. token — uninstall record, migration, refresh (writes the Secret);
//! 5. webhooks — token check, list, plan (pure, `plan`), apply;
//! 6. sync — plan the shop's Jobs (pure, `sync::plan`), then create/delete;
//! 7. status — build the status and the pass's Events (pure), record the
//!    shop's gauges (`metrics`), and write the status only if it changed.
//!
//! Between 5 and 6, a pass that switched to a new app retires the previous
//! one (`handover`) once the new app's subscriptions are in sync.
//!
//! Everything in this folder is used by the ShopifyShop controller only;
//! `watches` (one level up) reaches in for the triggers it needs (`gate`,
//! `inherit`, `sync`'s Job label). Talks to the apiserver and to Shopify.

mod fetch;
mod finalizer;
pub(super) mod gate;
mod handover;
mod host;
pub(super) mod inherit;
mod metrics;
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

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::conditions::Status;
use super::{Context, Error};
use crate::crd::ShopifyShop;

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
    // 1. The shop as its app completes it: everything below works on that —
    //    as the previous app while a move to another waits.
    let resolved = resolve_app::resolve(ctx, shop.as_ref()).await?;
    let handover::Handover { pass, next } = handover::prepare(ctx, shop.as_ref(), resolved).await?;
    let resolved = &pass;
    let shop = resolved.shop.as_ref();
    // 2. The finalizer (and clean-up on deletion) comes before everything.
    if let Some(action) = finalizer::step(ctx, shop).await? {
        return Ok(action);
    }
    // 3. What the shop references.
    let host = fetch::webhook_host(&ctx.client, ctx.ingresses.get(), shop)
        .await
        .map_err(Error::Ingress)?;
    // 4. The token Secret, read once per pass: a migration or refresh
    //    returns the Secret it stored, and the token is taken from that.
    let tokens = token::prepare(ctx, shop, resolved.refusal.is_none()).await?;
    // 5. Webhooks (and the token check with Shopify); a reconcile request
    //    re-checks the token and re-lists now, whatever the caches say.
    let requested = status::reconcile_request(shop);
    let mut outcome = webhooks::step(ctx, resolved, &tokens, host, requested.is_some()).await;
    if outcome.moved {
        tracing::info!("the shop moved to another shard; leaving it to its new owner");
        return Ok(Action::await_change());
    }
    let expires_at = tokens.expires_at;
    let token = tokens.token(shop).ok();
    tokens
        .finish(ctx, shop, resolved.credentials.as_ref(), &mut outcome)
        .await?;
    // 5b. A move to another app: the previous app goes once the new one's
    //     subscriptions are in sync.
    let app = next.finish(ctx, shop, token.as_ref(), &mut outcome).await;
    // 6. Sync Jobs; new ones only with a valid token.
    let token_valid = outcome.token.status == Status::True;
    let syncs = sync::reconcile(ctx, shop, token_valid)
        .await
        .map_err(Error::SyncJobs)?;
    // 7. Events (the steps' and one per condition transition), the gauges,
    //    then the status, written only if it changed.
    let (next, notes) = status::build(&ctx.settings, shop, &outcome, &syncs, &app, expires_at, requested);
    for note in &notes {
        ctx.publish(shop, note).await;
    }
    metrics::record(ctx, shop, &next);
    status::write(ctx, shop, next).await?;
    Ok(Action::requeue(requeue_after(
        ctx, shop, &outcome, &syncs, expires_at,
    )))
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
