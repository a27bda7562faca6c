//! The operator's inventory on Shopify: the subscriptions it created or
//! adopted, read from the status it wrote (`status.webhooks[].id` and
//! `status.orphanedSubscriptions`), so that one the spec drops stays the
//! operator's to prune and never becomes a stranger's. After the apply:
//! the orphans left (what `prune` did not delete) and one Event for each
//! new one. Pure.
//!
//! A status written before the inventory existed has `webhooks[].id`
//! already: those are subscriptions that version created or adopted, so
//! its first pass knows them; a status without ids owns nothing.

use std::collections::BTreeSet;

use kube::runtime::events::EventType;

use crate::controller::Note;
use crate::crd::{OrphanedSubscription, ShopifyShopStatus, TopicState};
use shopify_admin::Subscription;

/// The ids the inventory holds (`deletionPolicy: Delete` removes them
/// with the spec's families). A topic the token lacks a scope for was
/// never acted on: its id (a family member found, not kept) is not ours.
pub(in crate::controller::shop) fn owned(status: Option<&ShopifyShopStatus>) -> BTreeSet<String> {
    let Some(status) = status else {
        return BTreeSet::new();
    };
    let desired = status
        .webhooks
        .iter()
        .filter(|w| w.state != TopicState::MissingScope)
        .filter_map(|w| w.id.clone());
    let orphaned = status.orphaned_subscriptions.iter().map(|o| o.id.clone());
    desired.chain(orphaned).collect()
}

/// The plan's orphans as status records them.
pub(super) fn orphans(planned: &[Subscription]) -> Vec<OrphanedSubscription> {
    planned
        .iter()
        .map(|s| OrphanedSubscription {
            id: s.id.clone(),
            topic: s.topic.clone(),
            address: s.address.clone(),
        })
        .collect()
}

/// One Warning for each orphan the previous status did not report: the
/// spec dropped it, and without `prune` it stays on Shopify (still
/// delivering) until a person decides.
pub(super) fn notes(
    previous: Option<&ShopifyShopStatus>,
    orphans: &[OrphanedSubscription],
    prune: bool,
) -> Vec<Note> {
    if prune {
        // What remains was refused deletion: that has its own Event.
        return Vec::new();
    }
    let known: BTreeSet<&str> = previous
        .map(|s| s.orphaned_subscriptions.iter().map(|o| o.id.as_str()).collect())
        .unwrap_or_default();
    let new: Vec<String> = orphans
        .iter()
        .filter(|o| !known.contains(o.id.as_str()))
        .map(|o| format!("{} at {} ({})", o.topic, o.address, o.id))
        .collect();
    if new.is_empty() {
        return Vec::new();
    }
    vec![Note::new(
        EventType::Warning,
        "SubscriptionsOrphaned",
        "ApplyWebhooks",
        format!(
            "{} no longer in the spec, left on Shopify: {}; set spec.webhooks.prune: true to delete {}",
            if new.len() == 1 {
                "1 subscription"
            } else {
                "subscriptions"
            },
            new.join(", "),
            if new.len() == 1 { "it" } else { "them" },
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(yaml: &str) -> ShopifyShopStatus {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn the_inventory_is_the_ids_acted_on_and_the_orphans() {
        let s = status(
            r#"
webhooks:
  - {topic: orders/create, address: "https://oms.example.com/webhooks/orders_create", id: "gid://shopify/WebhookSubscription/1", state: InSync}
  - {topic: orders/paid, address: "pubsub://oms:orders", id: "gid://shopify/WebhookSubscription/2", state: WrongFilter}
  - {topic: customers/update, address: "https://oms.example.com/webhooks/customers_update", id: "gid://shopify/WebhookSubscription/3", state: MissingScope}
  - {topic: products/update, address: "https://oms.example.com/webhooks/products_update", state: Missing}
orphanedSubscriptions:
  - {id: "gid://shopify/WebhookSubscription/9", topic: orders/cancelled, address: "pubsub://oms:orders"}
"#,
        );
        let ids: Vec<String> = owned(Some(&s)).into_iter().collect();
        assert_eq!(
            ids,
            ["1", "2", "9"].map(|n| format!("gid://shopify/WebhookSubscription/{n}"))
        );
        assert!(owned(None).is_empty());
    }

    #[test]
    fn an_orphan_is_announced_once_and_only_without_prune() {
        let orphan = |n: u32| OrphanedSubscription {
            id: format!("gid://shopify/WebhookSubscription/{n}"),
            topic: "orders/paid".into(),
            address: "pubsub://oms:orders".into(),
        };
        let first = notes(None, &[orphan(9)], false);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].reason, "SubscriptionsOrphaned");
        assert!(
            first[0].message.contains("orders/paid at pubsub://oms:orders")
                && first[0].message.contains("WebhookSubscription/9")
                && first[0].message.contains("prune: true"),
            "{}",
            first[0].message
        );
        let before = ShopifyShopStatus {
            orphaned_subscriptions: vec![orphan(9)],
            ..Default::default()
        };
        assert!(notes(Some(&before), &[orphan(9)], false).is_empty());
        let more = notes(Some(&before), &[orphan(9), orphan(10)], false);
        assert!(
            more[0].message.starts_with("1 subscription")
                && more[0].message.contains("WebhookSubscription/10")
        );
        assert!(notes(None, &[orphan(9)], true).is_empty());
    }
}
