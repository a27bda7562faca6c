//! What the apply did, per wanted subscription: new ids and states,
//! Shopify's refusals in its own words, `status.webhooks`, and the Events
//! of the apply (created, updated, deleted, refused, drift repaired).
//! Pure but for the drift-repair counter.

use kube::runtime::events::EventType;

use super::Outcome;
use crate::controller::Note;
use crate::controller::shop::plan::{Plan, TopicState};
use crate::crd::{ShopifyShop, WebhookStatus};
use crate::metrics::Metrics;
use shopify_admin::{Change, ChangeResult, UserError};

/// Where one wanted subscription stands after the apply.
pub(super) struct Recorded {
    id: Option<String>,
    state: TopicState,
    /// Shopify's words when it refused the change.
    message: Option<String>,
}

/// Each wanted subscription as the plan found it, before the apply.
pub(super) fn before_apply(plan: &Plan) -> Vec<Recorded> {
    plan.topics
        .iter()
        .map(|t| Recorded {
            id: t.id.clone(),
            state: t.state,
            message: None,
        })
        .collect()
}

/// `status.webhooks`: each wanted subscription with where it stands.
pub(super) fn topic_statuses(plan: &Plan, states: Vec<Recorded>) -> Vec<WebhookStatus> {
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

/// The changes the apply made, by kind, for the Events.
#[derive(Default)]
struct Done {
    created: Vec<String>,
    updated: Vec<String>,
    deleted: Vec<String>,
    /// Ids of the deleted, to drop from the inventory.
    deleted_ids: Vec<String>,
}

/// Maps each change's result back to its wanted subscription: new ids and
/// states, failures naming the topic (and destination) in Shopify's words,
/// and Events.
pub(super) fn results(
    metrics: &Metrics,
    shop: &ShopifyShop,
    plan: &Plan,
    results: &[ChangeResult],
    states: &mut [Recorded],
    failures: &mut Vec<String>,
    out: &mut Outcome,
) {
    let drift = is_external_drift(shop, plan);
    let mut done = Done::default();
    for (change, result) in plan.changes.iter().zip(results) {
        let wanted = wanted_index(plan, change).map(|i| &mut states[i]);
        record_one(change, result, wanted, failures, &mut done);
    }
    if drift && (!done.created.is_empty() || !done.updated.is_empty()) {
        let repaired: Vec<&String> = done.created.iter().chain(&done.updated).collect();
        metrics.drift_repairs.inc_by(repaired.len() as u64);
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
    out.orphaned.retain(|o| !done.deleted_ids.contains(&o.id));
    out.notes.extend(apply_notes(&done, failures));
}

/// The wanted subscription a change is for: by topic and address, since
/// one topic may be wanted at two addresses (the OMS's app/uninstalled and
/// the operator's own).
fn wanted_index(plan: &Plan, change: &Change) -> Option<usize> {
    plan.topics.iter().position(|t| {
        t.topic == change.topic()
            && match change {
                Change::Create { address, .. } | Change::Update { address, .. } => *address == t.address,
                _ => true,
            }
    })
}

/// One change's result: into its wanted subscription's state (if any),
/// `done` or `failures`.
fn record_one(
    change: &Change,
    result: &ChangeResult,
    wanted: Option<&mut Recorded>,
    failures: &mut Vec<String>,
    done: &mut Done,
) {
    match (change, result) {
        (Change::Create { topic, .. }, ChangeResult::Created(s)) => {
            if let Some(w) = wanted {
                w.id = Some(s.id.clone());
                w.state = TopicState::InSync;
            }
            done.created.push(topic.clone());
        }
        (Change::Update { topic, .. }, ChangeResult::Updated(_)) => {
            if let Some(w) = wanted {
                w.state = TopicState::InSync;
            }
            done.updated.push(topic.clone());
        }
        (Change::Delete { topic, id }, ChangeResult::Deleted { .. }) => {
            done.deleted.push(format!("{topic} ({id})"));
            done.deleted_ids.push(id.clone());
        }
        (_, ChangeResult::Failed { user_errors }) => {
            let words = shopify_words(user_errors);
            let at = match change {
                Change::Create { address, .. } | Change::Update { address, .. } => {
                    format!(" at {address}")
                }
                Change::Delete { id, .. } => format!(" ({id})"),
            };
            failures.push(format!("{}{at}: {words}", change.topic()));
            if let (Some(w), Change::Create { .. } | Change::Update { .. }) = (wanted, change) {
                w.state = TopicState::Failed;
                w.message = Some(words);
            }
        }
        (c, r) => failures.push(format!("{}: unexpected result {r:?}", c.topic())),
    }
}

/// Shopify's user errors as one line: each with the field it names.
fn shopify_words(user_errors: &[UserError]) -> String {
    user_errors
        .iter()
        .map(|e| match e.field.last() {
            Some(field) => format!("{field}: {}", e.message),
            None => e.message.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Events of an apply: one Normal per kind of change made, one
/// Warning with Shopify's refusals.
fn apply_notes(done: &Done, failures: &[String]) -> Vec<Note> {
    let mut notes = Vec::new();
    for (list, reason, verb) in [
        (&done.created, "SubscriptionsCreated", "created"),
        (&done.updated, "SubscriptionsUpdated", "updated"),
        (&done.deleted, "SubscriptionsDeleted", "deleted"),
    ] {
        if !list.is_empty() {
            notes.push(Note::new(
                EventType::Normal,
                reason,
                "ApplyWebhooks",
                format!("{} {verb}: {}", list.len(), list.join(", ")),
            ));
        }
    }
    if !failures.is_empty() {
        notes.push(Note::new(
            EventType::Warning,
            "ShopifyUserError",
            "ApplyWebhooks",
            failures.join("; "),
        ));
    }
    notes
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
