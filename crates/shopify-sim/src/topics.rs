//! Webhook topics the simulator knows, in Shopify's two spellings.
//!
//! Shopify names a topic `orders/create` in REST and in delivery headers, and
//! `ORDERS_CREATE` in the GraphQL `WebhookSubscriptionTopic` enum: replace `/`
//! and `.` with `_`, upper-case. The enum→REST direction is not mechanical
//! (`CUSTOMER_TAGS_ADDED` is `customer.tags_added`), so we keep a table of REST
//! names and derive the enum names from it.

use std::sync::LazyLock;

/// REST names of the topics in the simulated `WebhookSubscriptionTopic` enum.
///
/// A subset of Shopify's list: the commonly used topics. The mandatory
/// compliance topics are deliberately absent because Shopify refuses to
/// register them through the API.
pub const TOPICS: &[&str] = &[
    "app/uninstalled",
    "audit_events/admin_api_activity",
    "collections/create",
    "collections/delete",
    "collections/update",
    "customer.tags_added",
    "customer.tags_removed",
    "customers/create",
    "customers/delete",
    "customers/disable",
    "customers/enable",
    "customers/update",
    "draft_orders/create",
    "draft_orders/delete",
    "draft_orders/update",
    "fulfillment_orders/cancelled",
    "fulfillment_orders/hold_released",
    "fulfillment_orders/moved",
    "fulfillment_orders/order_routing_complete",
    "fulfillment_orders/placed_on_hold",
    "fulfillments/create",
    "fulfillments/update",
    "inventory_items/create",
    "inventory_items/delete",
    "inventory_items/update",
    "inventory_levels/connect",
    "inventory_levels/disconnect",
    "inventory_levels/update",
    "order_transactions/create",
    "orders/cancelled",
    "orders/create",
    "orders/delete",
    "orders/edited",
    "orders/fulfilled",
    "orders/paid",
    "orders/partially_fulfilled",
    "orders/updated",
    "products/create",
    "products/delete",
    "products/update",
    "refunds/create",
    "shop/update",
];

/// Compliance topics: they exist in Shopify but cannot be registered through
/// the API, so fixtures naming them are rejected.
pub const COMPLIANCE_TOPICS: &[&str] = &["customers/data_request", "customers/redact", "shop/redact"];

/// Topics whose deliveries can only go to Google Cloud Pub/Sub or Amazon
/// EventBridge, never to an HTTPS endpoint. `audit_events/admin_api_activity`
/// "is limited to one active subscription per Plus store and requires the use
/// of Google Cloud Pub/Sub or AWS EventBridge" (the `WebhookSubscriptionTopic`
/// enum on shopify.dev).
pub const CLOUD_ONLY_TOPICS: &[&str] = &["audit_events/admin_api_activity"];

/// Topics a shop may hold only one subscription of (same source as
/// [`CLOUD_ONLY_TOPICS`]; the "Plus store" condition is not modelled).
pub const ONE_SUBSCRIPTION_TOPICS: &[&str] = &["audit_events/admin_api_activity"];

/// Whether a topic (either spelling) only accepts Pub/Sub and EventBridge
/// destinations.
pub fn is_cloud_only(topic: &str) -> bool {
    let wanted = rest_to_enum(topic.trim());
    CLOUD_ONLY_TOPICS.iter().any(|t| rest_to_enum(t) == wanted)
}

/// Whether a shop may hold at most one subscription of the topic.
pub fn is_one_per_shop(topic: &str) -> bool {
    let wanted = rest_to_enum(topic.trim());
    ONE_SUBSCRIPTION_TOPICS.iter().any(|t| rest_to_enum(t) == wanted)
}

/// Shopify's mechanical REST→enum rule (`orders/create` → `ORDERS_CREATE`).
pub fn rest_to_enum(rest: &str) -> String {
    rest.chars()
        .map(|c| match c {
            '/' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Enum names, index-aligned with [`TOPICS`]; computed once so that hot
/// paths can hand out `&'static str`.
static ENUM_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| TOPICS.iter().map(|t| rest_to_enum(t)).collect());

/// All enum names, in the order of [`TOPICS`].
pub fn enum_names() -> impl Iterator<Item = &'static str> {
    ENUM_NAMES.iter().map(String::as_str)
}

/// Resolves either spelling (`orders/create` or `ORDERS_CREATE`) of a known
/// topic to its REST name; `None` for unknown and compliance topics.
pub fn lookup(topic: &str) -> Option<&'static str> {
    lookup_enum(topic).and_then(enum_to_rest)
}

/// Resolves either spelling of a known topic to its enum name.
pub fn lookup_enum(topic: &str) -> Option<&'static str> {
    let wanted = rest_to_enum(topic.trim());
    enum_names().find(|e| *e == wanted)
}

/// The REST name of an enum value (`ORDERS_CREATE` → `orders/create`).
pub fn enum_to_rest(topic_enum: &str) -> Option<&'static str> {
    let i = ENUM_NAMES.iter().position(|e| e == topic_enum)?;
    Some(TOPICS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_resolve_to_the_same_topic() {
        assert_eq!(lookup("orders/create"), Some("orders/create"));
        assert_eq!(lookup("ORDERS_CREATE"), Some("orders/create"));
        assert_eq!(lookup("customer.tags_added"), Some("customer.tags_added"));
        assert_eq!(lookup("CUSTOMER_TAGS_ADDED"), Some("customer.tags_added"));
        assert_eq!(
            enum_to_rest("INVENTORY_LEVELS_UPDATE"),
            Some("inventory_levels/update")
        );
    }

    #[test]
    fn compliance_and_unknown_topics_are_refused() {
        for t in COMPLIANCE_TOPICS {
            assert_eq!(lookup(t), None, "{t}");
        }
        assert_eq!(lookup("orders/teleported"), None);
    }

    #[test]
    fn audit_events_are_cloud_only_and_one_per_shop() {
        assert_eq!(
            lookup_enum("audit_events/admin_api_activity"),
            Some("AUDIT_EVENTS_ADMIN_API_ACTIVITY")
        );
        assert!(is_cloud_only("AUDIT_EVENTS_ADMIN_API_ACTIVITY"));
        assert!(is_one_per_shop("audit_events/admin_api_activity"));
        assert!(!is_cloud_only("ORDERS_CREATE"));
        assert!(!is_one_per_shop("orders/create"));
    }

    #[test]
    fn enum_names_are_unique() {
        assert_eq!(lookup_enum("orders/create"), Some("ORDERS_CREATE"));
        let mut names: Vec<_> = enum_names().collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
