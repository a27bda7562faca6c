//! The status a pass writes: built from the duties' outcomes with the
//! pass's Events ([`build`], pure), read back to reuse a recent webhooks
//! outcome, and written by server-side apply only when it differs from what
//! is stored (a steady resync writes nothing). Talks to the apiserver in
//! [`write`] only.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};

use kube::runtime::events::EventType;

use super::{handover, sync, webhooks};
use crate::controller::conditions::{self, Cond, ConditionType, Status, Transition};
use crate::controller::{Context, Error, Note, Settings};
use crate::crd::{ShopifyShop, ShopifyShopStatus, TopicState};
use crate::names::{FIELD_MANAGER, FLUX_REQUESTED_AT, RECONCILE_REQUESTED_AT};

/// Step 7 before the write: the next status and the pass's Events — the
/// steps' notes, one per condition transition, and Shopify's version
/// signals. `expires_at`: the access token's expiry (token step);
/// `requested`: the reconcile request this pass handles. Pure but for the
/// time it stamps.
#[allow(clippy::too_many_arguments)]
pub(super) fn build(
    settings: &Settings,
    shop: &ShopifyShop,
    outcome: &webhooks::Outcome,
    syncs: &sync::Outcome,
    app: &handover::Finished,
    expires_at: Option<jiff::Timestamp>,
    requested: Option<&str>,
) -> (ShopifyShopStatus, Vec<Note>) {
    let mut notes: Vec<Note> = outcome.notes.iter().chain(&syncs.notes).cloned().collect();
    let mut parts = vec![&outcome.token, &outcome.webhooks, &syncs.cond];
    parts.extend(app.cond.as_ref());
    notes.extend(transition_notes(shop, &parts, &notes));
    let extra = webhooks::extra_subscriptions(settings, shop).len();
    let mut status = next(shop, &parts, outcome, syncs, &conditions::now(), extra);
    status.app = app.app.clone();
    if let Some(record) = &app.record {
        status.handover = Some(record.clone());
    }
    status.token_expires_at = expires_at.map(Time);
    if let Some(value) = requested {
        status.last_handled_reconcile_at = Some(value.to_string());
    }
    notes.extend(version_notes(shop, &status));
    (status, notes)
}

/// Builds the next status from `parts` (the conditions Ready aggregates)
/// and the duties' outcomes (pure).
fn next(
    shop: &ShopifyShop,
    parts: &[&Cond],
    out: &webhooks::Outcome,
    syncs: &sync::Outcome,
    time: &Time,
    extra: usize,
) -> ShopifyShopStatus {
    let mut status = shop.status.clone().unwrap_or_default();
    let generation = shop.metadata.generation;
    // One condition per part Ready aggregates, then Ready itself, then
    // kstatus's pair.
    let ready = conditions::ready(parts);
    let (reconciling, stalled) = conditions::progress(parts, out.retry_in);
    // kstatus: the generation counts as observed once it has been fully
    // acted on, i.e. not while a retry is still to make Shopify match it.
    if reconciling.status != Status::True {
        status.observed_generation = generation;
    }
    for c in parts.iter().copied().chain([&ready, &reconciling, &stalled]) {
        conditions::set(&mut status.conditions, c, generation, time);
    }
    status.webhook_host = out.host.clone();
    if let Some(topics) = &out.topics {
        status.webhooks = topics.clone();
    }
    // One per topic and destination (the schema keeps them distinct).
    let desired = shop
        .spec
        .webhooks
        .as_ref()
        .map(|w| w.topics.len() + w.subscriptions.iter().map(|s| s.topics.len()).sum::<usize>())
        .unwrap_or(0)
        + extra;
    let in_sync = status
        .webhooks
        .iter()
        .filter(|w| w.state == TopicState::InSync)
        .count();
    status.webhooks_in_sync = Some(format!("{in_sync}/{desired}"));
    status.unmanaged_subscriptions = out.unmanaged;
    status.served_api_version = out.served_version.clone();
    status.api_deprecation_reason = out.api_deprecation.clone();
    status.orphaned_subscriptions = out.orphaned.clone();
    status.sync = syncs.entries.clone();
    status.last_sync_time = syncs.last_sync_time.clone();
    status.sync_now_handled = syncs.trigger_handled.clone();
    status
}

/// The value of a reconcile request (our annotation, else Flux's) not yet
/// handled, if any. Pure.
pub(super) fn reconcile_request(shop: &ShopifyShop) -> Option<&str> {
    let annotations = shop.metadata.annotations.as_ref()?;
    let value = [RECONCILE_REQUESTED_AT, FLUX_REQUESTED_AT]
        .iter()
        .find_map(|k| annotations.get(*k).filter(|v| !v.is_empty()))?;
    let handled = shop
        .status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.as_deref());
    (handled != Some(value.as_str())).then_some(value.as_str())
}

/// The Events of this pass's condition transitions: one Warning when a
/// part of Ready turns False (or False for another reason), saying what to
/// do; one Normal when it is True again. A reason some step already noted
/// this pass is not said twice. Pure.
fn transition_notes(shop: &ShopifyShop, parts: &[&Cond], already: &[Note]) -> Vec<Note> {
    let stored = shop
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    conditions::transitions(stored, parts)
        .into_iter()
        .map(|t| match t {
            Transition::Failed(c) => Note::new(
                EventType::Warning,
                c.reason.as_str(),
                "Reconcile",
                format!("{} is False: {}. To do: {}", c.type_, c.message, c.reason.hint()),
            ),
            Transition::Recovered { cond, was } => Note::new(
                EventType::Normal,
                cond.reason.as_str(),
                "Reconcile",
                format!("{} is True again (was {was}): {}", cond.type_, cond.message),
            ),
        })
        .filter(|n| !already.iter().any(|a| a.reason == n.reason))
        .collect()
}

/// The Warnings of Shopify's version signals, each once: when it starts
/// serving another version than `spec.adminApiVersion` (or another one
/// than before), and when it starts flagging a deprecation. A signal that
/// persists is in status and the metrics, not in more Events. Pure.
fn version_notes(shop: &ShopifyShop, next: &ShopifyShopStatus) -> Vec<Note> {
    let stored = shop.status.as_ref();
    let requested = shop.spec.admin_api_version_or_default();
    let mut notes = Vec::new();
    let served = next.served_api_version.as_deref();
    if let Some(v) = served.filter(|v| Some(*v) != stored.and_then(|s| s.served_api_version.as_deref())) {
        notes.push(Note::new(
            EventType::Warning,
            "ApiVersionFellForward",
            "Reconcile",
            format!(
                "Shopify no longer serves Admin API {requested} and answers with {v}; \
                 set spec.adminApiVersion to a supported version (Observe first, then Manage)"
            ),
        ));
    }
    let reason = next.api_deprecation_reason.as_deref();
    if let Some(r) = reason.filter(|r| Some(*r) != stored.and_then(|s| s.api_deprecation_reason.as_deref())) {
        let at = served.unwrap_or(requested);
        notes.push(Note::new(
            EventType::Warning,
            "DeprecatedApiUsage",
            "Reconcile",
            format!(
                "Shopify flags this shop's requests at Admin API {at} as using something deprecated: {r}; \
                 a newer spec.adminApiVersion avoids it"
            ),
        ));
    }
    notes
}

/// The webhooks outcome as the shop's status recorded it, to reuse when
/// nothing the webhooks depend on changed since a recent pass.
pub(super) fn reused_outcome(shop: &ShopifyShop) -> Option<webhooks::Outcome> {
    recorded_outcome(shop.status.as_ref()?, shop.metadata.generation)
}

/// A fingerprint of the webhooks outcome `status` records (in memory only):
/// what tells a status stored after a pass from an older one.
pub(super) fn outcome_fingerprint(outcome: &webhooks::Outcome) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{outcome:?}").hash(&mut h);
    h.finish()
}

/// The webhooks outcome `status` records for `generation`.
fn recorded_outcome(status: &ShopifyShopStatus, generation: Option<i64>) -> Option<webhooks::Outcome> {
    // A reason this version does not know (another version wrote it) is
    // not reused: the pass runs again.
    let cond = |type_: ConditionType| {
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == type_.as_str() && c.observed_generation == generation)?;
        let reason = c.reason.parse().ok()?;
        Some(Cond::new(
            type_,
            Status::parse(&c.status),
            reason,
            c.message.clone(),
        ))
    };
    Some(webhooks::Outcome {
        token: cond(ConditionType::TokenValid)?,
        webhooks: cond(ConditionType::WebhooksSynced)?,
        host: status.webhook_host.clone(),
        topics: Some(status.webhooks.clone()),
        unmanaged: status.unmanaged_subscriptions,
        served_version: status.served_api_version.clone(),
        api_deprecation: status.api_deprecation_reason.clone(),
        orphaned: status.orphaned_subscriptions.clone(),
        retry_in: None,
        notes: Vec::new(),
        failed: false,
        moved: false,
    })
}

/// Writes `status` (server-side apply, forced, our field manager) unless it
/// equals the stored one; either way, once it is stored, the next pass may
/// reuse it (`Context::record_stored`).
pub(super) async fn write(
    ctx: &Context,
    shop: &ShopifyShop,
    mut status: ShopifyShopStatus,
) -> Result<(), Error> {
    // `appUninstalled` belongs to the uninstall endpoint: never applied
    // here, so the controller neither owns nor resets it.
    status.app_uninstalled = None;
    let mut current = shop.status.clone();
    if let Some(c) = current.as_mut() {
        c.app_uninstalled = None;
    }
    if current.as_ref() != Some(&status) {
        if !ctx.still_ours(shop).await {
            // Moved to another shard mid-pass: its owner writes the status.
            return Ok(());
        }
        let ns = shop.namespace().ok_or(Error::NoNamespace)?;
        let api: Api<ShopifyShop> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({
            "apiVersion": ShopifyShop::api_version(&()),
            "kind": ShopifyShop::kind(&()),
            "status": status,
        });
        api.patch_status(
            &shop.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::StatusWrite)?;
        ctx.metrics.status_writes.inc();
    }
    // Stored now (written, or already equal): a later pass may reuse it.
    if let Some(outcome) = recorded_outcome(&status, shop.metadata.generation) {
        ctx.record_stored(&shop.uid().unwrap_or_default(), outcome_fingerprint(&outcome));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop(annotations: serde_json::Value, handled: Option<&str>) -> ShopifyShop {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "shopify-operator.dev/v1alpha1",
            "kind": "ShopifyShop",
            "metadata": {"name": "online", "annotations": annotations},
            "spec": {"domain": "a.myshopify.com", "token": {"secretRef": {"name": "t"}}},
            "status": {"lastHandledReconcileAt": handled},
        }))
        .unwrap()
    }

    #[test]
    fn a_reconcile_request_is_new_once() {
        let ours = serde_json::json!({RECONCILE_REQUESTED_AT: "2026-12-02T12:00:00Z"});
        assert_eq!(
            reconcile_request(&shop(ours.clone(), None)),
            Some("2026-12-02T12:00:00Z")
        );
        assert_eq!(reconcile_request(&shop(ours, Some("2026-12-02T12:00:00Z"))), None);
        // Flux's annotation works alone; ours wins when both are set.
        let flux = serde_json::json!({FLUX_REQUESTED_AT: "f1"});
        assert_eq!(reconcile_request(&shop(flux, Some("old"))), Some("f1"));
        let both = serde_json::json!({FLUX_REQUESTED_AT: "f2", RECONCILE_REQUESTED_AT: "o2"});
        assert_eq!(reconcile_request(&shop(both, Some("f2"))), Some("o2"));
        assert_eq!(
            reconcile_request(&shop(serde_json::json!({RECONCILE_REQUESTED_AT: ""}), None)),
            None
        );
        assert_eq!(reconcile_request(&shop(serde_json::json!({}), None)), None);
    }

    fn versions(served: Option<&str>, deprecation: Option<&str>) -> ShopifyShopStatus {
        ShopifyShopStatus {
            served_api_version: served.map(str::to_owned),
            api_deprecation_reason: deprecation.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn version_signals_are_said_once_when_they_start_or_change() {
        let reasons = |stored: ShopifyShopStatus, next: ShopifyShopStatus| {
            let mut s = shop(serde_json::json!({}), None);
            s.status = Some(stored);
            version_notes(&s, &next)
                .into_iter()
                .map(|n| (n.reason, n.message))
                .collect::<Vec<_>>()
        };
        let docs = "https://shopify.dev/api/usage/versioning";
        let first = reasons(versions(None, None), versions(Some("2026-01"), Some(docs)));
        assert_eq!(first.len(), 2, "{first:?}");
        assert_eq!(first[0].0, "ApiVersionFellForward");
        assert!(
            first[0].1.contains("2025-07") && first[0].1.contains("2026-01"),
            "{first:?}"
        );
        assert_eq!(first[1].0, "DeprecatedApiUsage");
        assert!(
            first[1].1.contains(docs) && first[1].1.contains("2026-01"),
            "{first:?}"
        );
        // The same signals again: nothing; a newer fall-forward: said again.
        let same = versions(Some("2026-01"), Some(docs));
        assert!(reasons(same.clone(), same.clone()).is_empty());
        let newer = reasons(same.clone(), versions(Some("2026-04"), Some(docs)));
        assert_eq!(newer.len(), 1);
        assert_eq!(newer[0].0, "ApiVersionFellForward");
        // Gone: nothing to warn about.
        assert!(reasons(same, versions(None, None)).is_empty());
    }

    #[test]
    fn the_outcome_a_write_stores_is_the_one_a_later_pass_reads_back() {
        let stored = |host: &str| -> ShopifyShopStatus {
            let cond = |type_: &str, reason: &str| {
                serde_json::json!({"type": type_, "status": "True", "reason": reason, "message": "",
                    "lastTransitionTime": "2026-12-04T12:00:00Z", "observedGeneration": 3})
            };
            serde_json::from_value(serde_json::json!({
                "webhookHost": host,
                "conditions": [cond("TokenValid", "TokenVerified"), cond("WebhooksSynced", "InSync")],
            }))
            .unwrap()
        };
        let mut s = shop(serde_json::json!({}), None);
        s.metadata.generation = Some(3);
        s.status = Some(stored("new.example.com"));
        // What `write` records for the status it stores…
        let written = recorded_outcome(&stored("new.example.com"), Some(3)).map(|o| outcome_fingerprint(&o));
        // …is what a pass finds in a store that has caught up,
        let read = reused_outcome(&s).map(|o| outcome_fingerprint(&o));
        assert!(written.is_some());
        assert_eq!(written, read);
        // and not in one that still holds the status before the write.
        s.status = Some(stored("old.example.com"));
        assert_ne!(written, reused_outcome(&s).map(|o| outcome_fingerprint(&o)));
    }
}
