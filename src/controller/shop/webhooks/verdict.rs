//! What a webhooks pass says in its conditions: a Shopify error as
//! `TokenValid` or `WebhooksSynced` (with how soon to retry), and the
//! `WebhooksSynced` of a pass that got as far as a plan. Pure.

use std::time::Duration;

use crate::controller::conditions::{Cond, ConditionType, Reason, Status};
use crate::controller::shop::plan::Plan;
use shopify_admin::{Change, ShopifyError};

/// A Shopify error as `TokenValid` (for errors about the token or shop) or
/// `WebhooksSynced` (for the rest), with a retry delay for the retryable.
pub(super) fn classify(e: &ShopifyError, what: &str) -> (Option<Cond>, Cond, Option<Duration>) {
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

/// `WebhooksSynced` after the plan (and the apply, unless `observe`): the
/// apply's failures first, then missing scopes, then drift under Observe,
/// else in sync (with what was left alone). `desired`: how many
/// subscriptions the spec wants.
pub(super) fn synced(
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
