//! Webhook topic names and webhook addresses.
//!
//! No network access. Shopify names a topic two ways: the REST form used in
//! deliveries' `X-Shopify-Topic` header and in app configuration
//! (`orders/create`, `customer.tags_added`) and the GraphQL
//! `WebhookSubscriptionTopic` enum (`ORDERS_CREATE`, `CUSTOMER_TAGS_ADDED`).
//! REST → enum is mechanical (`/` and `.` become `_`, upper-case); enum → REST
//! is ambiguous (which `_` was the separator?), so it goes through a table of
//! the topics Shopify documents.

use std::collections::HashMap;
use std::sync::OnceLock;

/// REST forms of the webhook topics Shopify documents for
/// `WebhookSubscriptionTopic` (plus the three mandatory compliance topics,
/// which exist as delivery topics but cannot be registered through the API).
pub const KNOWN_TOPICS: &[&str] = &[
    "app/scopes_update",
    "app/uninstalled",
    "app_purchases_one_time/update",
    "app_subscriptions/approaching_capped_amount",
    "app_subscriptions/update",
    "audit_events/admin_api_activity",
    "bulk_operations/finish",
    "carts/create",
    "carts/update",
    "channels/delete",
    "checkouts/create",
    "checkouts/delete",
    "checkouts/update",
    "collection_listings/add",
    "collection_listings/remove",
    "collection_listings/update",
    "collection_publications/create",
    "collection_publications/delete",
    "collection_publications/update",
    "collections/create",
    "collections/delete",
    "collections/update",
    "companies/create",
    "companies/delete",
    "companies/update",
    "company_contact_roles/assign",
    "company_contact_roles/revoke",
    "company_contacts/create",
    "company_contacts/delete",
    "company_contacts/update",
    "company_locations/create",
    "company_locations/delete",
    "company_locations/update",
    "customer.joined_segment",
    "customer.left_segment",
    "customer.tags_added",
    "customer.tags_removed",
    "customer_account_settings/update",
    "customer_groups/create",
    "customer_groups/delete",
    "customer_groups/update",
    "customer_payment_methods/create",
    "customer_payment_methods/revoke",
    "customer_payment_methods/update",
    "customers/create",
    "customers/data_request",
    "customers/delete",
    "customers/disable",
    "customers/enable",
    "customers/merge",
    "customers/purchasing_summary",
    "customers/redact",
    "customers/update",
    "customers_email_marketing_consent/update",
    "customers_marketing_consent/update",
    "delivery_promise_settings/update",
    "discounts/create",
    "discounts/delete",
    "discounts/redeemcode_added",
    "discounts/redeemcode_removed",
    "discounts/update",
    "disputes/create",
    "disputes/update",
    "domains/create",
    "domains/destroy",
    "domains/update",
    "draft_orders/create",
    "draft_orders/delete",
    "draft_orders/update",
    "fulfillment_events/create",
    "fulfillment_events/delete",
    "fulfillment_holds/added",
    "fulfillment_holds/released",
    "fulfillment_orders/cancellation_request_accepted",
    "fulfillment_orders/cancellation_request_rejected",
    "fulfillment_orders/cancellation_request_submitted",
    "fulfillment_orders/cancelled",
    "fulfillment_orders/fulfillment_request_accepted",
    "fulfillment_orders/fulfillment_request_rejected",
    "fulfillment_orders/fulfillment_request_submitted",
    "fulfillment_orders/fulfillment_service_failed_to_complete",
    "fulfillment_orders/hold_released",
    "fulfillment_orders/line_items_prepared_for_local_delivery",
    "fulfillment_orders/line_items_prepared_for_pickup",
    "fulfillment_orders/merged",
    "fulfillment_orders/moved",
    "fulfillment_orders/order_routing_complete",
    "fulfillment_orders/placed_on_hold",
    "fulfillment_orders/rescheduled",
    "fulfillment_orders/scheduled_fulfillment_order_ready",
    "fulfillment_orders/split",
    "fulfillments/create",
    "fulfillments/update",
    "inventory_items/create",
    "inventory_items/delete",
    "inventory_items/update",
    "inventory_levels/connect",
    "inventory_levels/disconnect",
    "inventory_levels/update",
    "locales/create",
    "locales/update",
    "locations/activate",
    "locations/create",
    "locations/deactivate",
    "locations/delete",
    "locations/update",
    "markets/create",
    "markets/delete",
    "markets/update",
    "metafield_definitions/create",
    "metafield_definitions/delete",
    "metafield_definitions/update",
    "metaobjects/create",
    "metaobjects/delete",
    "metaobjects/update",
    "order_transactions/create",
    "orders/cancelled",
    "orders/create",
    "orders/delete",
    "orders/edited",
    "orders/fulfilled",
    "orders/paid",
    "orders/partially_fulfilled",
    "orders/risk_assessment_changed",
    "orders/shopify_protect_eligibility_changed",
    "orders/updated",
    "payment_schedules/due",
    "payment_terms/create",
    "payment_terms/delete",
    "payment_terms/update",
    "product_feeds/create",
    "product_feeds/full_sync",
    "product_feeds/full_sync_finish",
    "product_feeds/incremental_sync",
    "product_feeds/update",
    "product_listings/add",
    "product_listings/remove",
    "product_listings/update",
    "product_publications/create",
    "product_publications/delete",
    "product_publications/update",
    "products/create",
    "products/delete",
    "products/update",
    "profiles/create",
    "profiles/delete",
    "profiles/update",
    "refunds/create",
    "returns/approve",
    "returns/cancel",
    "returns/close",
    "returns/decline",
    "returns/process",
    "returns/reopen",
    "returns/request",
    "returns/update",
    "reverse_deliveries/attach_deliverable",
    "reverse_fulfillment_orders/dispose",
    "scheduled_product_listings/add",
    "scheduled_product_listings/remove",
    "scheduled_product_listings/update",
    "segments/create",
    "segments/delete",
    "segments/update",
    "selling_plan_groups/create",
    "selling_plan_groups/delete",
    "selling_plan_groups/update",
    "shop/redact",
    "shop/update",
    "subscription_billing_attempts/challenged",
    "subscription_billing_attempts/failure",
    "subscription_billing_attempts/success",
    "subscription_billing_cycle_edits/create",
    "subscription_billing_cycle_edits/delete",
    "subscription_billing_cycle_edits/update",
    "subscription_billing_cycles/skip",
    "subscription_billing_cycles/unskip",
    "subscription_contracts/activate",
    "subscription_contracts/cancel",
    "subscription_contracts/create",
    "subscription_contracts/expire",
    "subscription_contracts/fail",
    "subscription_contracts/pause",
    "subscription_contracts/update",
    "tax_services/create",
    "tax_services/update",
    "tender_transactions/create",
    "themes/create",
    "themes/delete",
    "themes/publish",
    "themes/update",
    "variants/in_stock",
    "variants/out_of_stock",
];

/// The mandatory compliance topics: delivered to every app, configured in the
/// Partner Dashboard or app TOML, and *not* registrable through
/// `webhookSubscriptionCreate`.
pub const COMPLIANCE_TOPICS: &[&str] = &["customers/data_request", "customers/redact", "shop/redact"];

/// REST topic → GraphQL enum: `/` and `.` become `_`, then upper-case.
/// `"orders/create"` → `"ORDERS_CREATE"`, `"customer.tags_added"` →
/// `"CUSTOMER_TAGS_ADDED"`. Total: works for topics this crate does not know.
pub fn rest_to_enum(topic: &str) -> String {
    topic
        .chars()
        .map(|c| match c {
            '/' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

fn enum_table() -> &'static HashMap<String, &'static str> {
    static TABLE: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| KNOWN_TOPICS.iter().map(|t| (rest_to_enum(t), *t)).collect())
}

/// GraphQL enum → REST topic for the topics in [`KNOWN_TOPICS`]; `None` for
/// anything else (the mapping cannot be guessed: `CUSTOMER_TAGS_ADDED` is
/// `customer.tags_added` while `ORDERS_CREATE` is `orders/create`).
pub fn enum_to_rest(topic_enum: &str) -> Option<String> {
    enum_table().get(topic_enum).map(|s| (*s).to_owned())
}

/// True for the three mandatory compliance topics (REST or enum form).
pub fn is_compliance_topic(topic: &str) -> bool {
    let e = rest_to_enum(topic);
    COMPLIANCE_TOPICS.iter().any(|t| rest_to_enum(t) == e)
}

/// The path segment a topic gets in a webhook address: `/` becomes `_`, as
/// the Rails app did (`topic.gsub('/', '_')`); `.` is kept, so
/// `customer.tags_added` stays `customer.tags_added` and addresses already
/// registered by the Rails app are reproduced exactly.
pub fn topic_path_segment(topic: &str) -> String {
    topic.replace('/', "_")
}

/// Builds the `https://` address a topic's deliveries go to.
///
/// `host` is a bare host (`oms.popsockets.com`, optionally with `:port`); a
/// leading `https://` or `http://` is tolerated and kept, a trailing `/` is
/// dropped. `path_template` gets `{topic}` replaced by
/// [`topic_path_segment`]; a missing leading `/` is added.
///
/// `("oms.popsockets.com", "/webhooks/{topic}", "orders/create")` →
/// `"https://oms.popsockets.com/webhooks/orders_create"`.
pub fn webhook_address(host: &str, path_template: &str, topic: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let (scheme, host) = if let Some(rest) = host.strip_prefix("https://") {
        ("https://", rest)
    } else if let Some(rest) = host.strip_prefix("http://") {
        ("http://", rest)
    } else {
        ("https://", host)
    };
    let path = path_template.replace("{topic}", &topic_path_segment(topic));
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("{scheme}{host}{slash}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_to_enum_examples() {
        assert_eq!(rest_to_enum("orders/create"), "ORDERS_CREATE");
        assert_eq!(rest_to_enum("customer.tags_added"), "CUSTOMER_TAGS_ADDED");
        assert_eq!(rest_to_enum("app/uninstalled"), "APP_UNINSTALLED");
        assert_eq!(rest_to_enum("orders/updated"), "ORDERS_UPDATED");
        assert_eq!(rest_to_enum("new_thing/happened"), "NEW_THING_HAPPENED");
    }

    #[test]
    fn enum_to_rest_uses_the_table() {
        assert_eq!(enum_to_rest("ORDERS_CREATE").as_deref(), Some("orders/create"));
        assert_eq!(
            enum_to_rest("CUSTOMER_TAGS_ADDED").as_deref(),
            Some("customer.tags_added")
        );
        assert_eq!(
            enum_to_rest("INVENTORY_LEVELS_UPDATE").as_deref(),
            Some("inventory_levels/update")
        );
        assert_eq!(
            enum_to_rest("APP_UNINSTALLED").as_deref(),
            Some("app/uninstalled")
        );
        assert_eq!(enum_to_rest("NOT_A_TOPIC"), None);
        assert_eq!(enum_to_rest("orders/create"), None);
    }

    #[test]
    fn every_known_topic_round_trips_and_enums_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for t in KNOWN_TOPICS {
            let e = rest_to_enum(t);
            assert!(seen.insert(e.clone()), "two REST topics map to {e}");
            assert_eq!(enum_to_rest(&e).as_deref(), Some(*t));
            assert!(
                t.chars().all(|c| c.is_ascii_lowercase() || "_/.".contains(c)),
                "{t}"
            );
        }
    }

    #[test]
    fn compliance_topics() {
        assert!(is_compliance_topic("shop/redact"));
        assert!(is_compliance_topic("CUSTOMERS_DATA_REQUEST"));
        assert!(!is_compliance_topic("orders/create"));
    }

    #[test]
    fn path_segments() {
        assert_eq!(topic_path_segment("orders/create"), "orders_create");
        assert_eq!(topic_path_segment("customer.tags_added"), "customer.tags_added");
        assert_eq!(topic_path_segment("app/uninstalled"), "app_uninstalled");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            webhook_address("oms.popsockets.com", "/webhooks/{topic}", "orders/create"),
            "https://oms.popsockets.com/webhooks/orders_create"
        );
        assert_eq!(
            webhook_address(
                "https://oms.popsockets.com/",
                "webhooks/{topic}",
                "app/uninstalled"
            ),
            "https://oms.popsockets.com/webhooks/app_uninstalled"
        );
        assert_eq!(
            webhook_address("h.example:8443", "/hooks/{topic}/in", "customer.tags_added"),
            "https://h.example:8443/hooks/customer.tags_added/in"
        );
        assert_eq!(
            webhook_address("http://127.0.0.1:9", "/w/{topic}", "shop/update"),
            "http://127.0.0.1:9/w/shop_update"
        );
    }
}
