//! Step 5 of a webhooks pass: apply the plan as one GraphQL document, or
//! only report it under `managementPolicy: Observe`. A move to a new host
//! first waits for the host's certificate (the gate reads certificate
//! Secrets and cert-manager Certificates from the apiserver), and a
//! sharded operator asks the apiserver whether the shop is still its own
//! before it writes. Talks to Shopify and the apiserver (reads only).

use std::time::Duration;

use super::inventory;
use super::record::{self, Recorded};
use super::verdict::classify;
use super::{Outcome, Pass};
use crate::controller::Context;
use crate::controller::conditions::{Cond, ConditionType, Reason, Status};
use crate::controller::shop::host::Endpoint;
use crate::controller::shop::plan::{self, Plan};
use crate::crd::ShopifyShop;
use shopify_admin::{Change, ShopifyError, Subscription};

/// Applies `plan` (unless `observe`) and records what came of it in `out`
/// (`status.webhooks`, the host, Events, conditions of a failed apply).
/// The failures Shopify named, or `None` when the pass stops here: held by
/// the certificate gate, or the shop moved to another shard.
pub(super) async fn apply(
    pass: &Pass<'_>,
    endpoint: &Endpoint,
    plan: &Plan,
    listed: &[Subscription],
    observe: bool,
    out: &mut Outcome,
) -> Option<Vec<String>> {
    let Pass { ctx, shop, .. } = *pass;
    let host = &endpoint.host;
    let mut states = record::before_apply(plan);
    // Until an apply deletes them, the orphans stay (and stay ours).
    out.orphaned = inventory::orphans(&plan.orphaned);
    if !observe && moves_host(plan, listed, host) && held_back(ctx, shop, endpoint, out).await {
        out.topics = Some(record::topic_statuses(plan, states));
        return None;
    }
    // Sharded: the shop may have moved to another shard while this pass
    // ran; only its owner now writes to Shopify.
    if !plan.changes.is_empty() && !observe && !ctx.still_ours(shop).await {
        out.moved = true;
        return None;
    }
    let mut failures: Vec<String> = Vec::new();
    if !plan.changes.is_empty() && !observe {
        send(pass, host, plan, &mut states, &mut failures, out).await;
    } else if plan.changes.is_empty() {
        out.host = Some(host.clone());
    }
    out.topics = Some(record::topic_statuses(plan, states));
    Some(failures)
}

/// Whether the certificate gate holds the move to `endpoint` back; if so,
/// `out` says why and when to look again.
async fn held_back(ctx: &Context, shop: &ShopifyShop, endpoint: &Endpoint, out: &mut Outcome) -> bool {
    let Err(refusal) = ctx
        .gate
        .check(&ctx.client, shop, endpoint, ctx.settings.certificate_margin)
        .await
    else {
        return false;
    };
    out.webhooks = Cond::new(
        ConditionType::WebhooksSynced,
        Status::False,
        Reason::EndpointCertificateNotReady,
        format!(
            "webhooks stay where they are until {} can serve HTTPS: {}",
            endpoint.host, refusal.message
        ),
    );
    out.retry_in = refusal.retry_in;
    true
}

/// Sends the plan's changes to Shopify and records the results; a failed
/// request becomes the conditions (and retry) of `out`.
async fn send(
    pass: &Pass<'_>,
    host: &str,
    plan: &Plan,
    states: &mut [Recorded],
    failures: &mut Vec<String>,
    out: &mut Outcome,
) {
    let Pass { ctx, shop, token } = *pass;
    let version = shop.spec.admin_api_version_or_default();
    match ctx
        .shopify
        .apply_with_meta(&shop.spec.domain, version, token, &plan.changes)
        .await
    {
        Ok((results, meta)) => {
            ctx.metrics.shopify("apply", "ok", meta.requests, meta.waited);
            record::results(&ctx.metrics, shop, plan, &results, states, failures, out);
            out.host = Some(host.to_string());
        }
        Err(e) => {
            ctx.metrics.shopify("apply", e.reason(), 1, Duration::ZERO);
            if matches!(e, ShopifyError::Unauthorized) {
                ctx.token_checks
                    .forget(&shop.metadata.uid.clone().unwrap_or_default());
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
