//! Which access scope a webhook topic needs, so a token without it is
//! reported (`MissingScopes`) before Shopify rejects the subscription. Pure.
//!
//! Only topic families whose scope is documented are listed; an unknown
//! topic needs nothing here and Shopify has the last word.

use std::collections::BTreeSet;

/// The `read_*` scope `topic` (REST form) needs, if known.
pub fn required_scope(topic: &str) -> Option<&'static str> {
    let family = topic.split(['/', '.']).next().unwrap_or(topic);
    Some(match family {
        "orders" | "order_transactions" | "refunds" => "read_orders",
        "products" | "collections" | "product_listings" => "read_products",
        "inventory_levels" | "inventory_items" => "read_inventory",
        "customers" | "customer" | "customer_groups" => "read_customers",
        "fulfillments" => "read_fulfillments",
        "draft_orders" => "read_draft_orders",
        "locations" => "read_locations",
        _ => return None,
    })
}

/// Whether `granted` covers `scope` (a `write_x` scope implies `read_x`).
fn covers(granted: &[String], scope: &str) -> bool {
    let write = scope.replacen("read_", "write_", 1);
    granted.iter().any(|g| g == scope || *g == write)
}

/// The desired topics the granted scopes don't cover, with what's missing.
pub fn missing(topics: &[String], granted: &[String]) -> Vec<(String, &'static str)> {
    topics
        .iter()
        .filter_map(|t| {
            required_scope(t)
                .filter(|s| !covers(granted, s))
                .map(|s| (t.clone(), s))
        })
        .collect()
}

/// Just the topics of [`missing`].
pub fn unauthorized_topics(missing: &[(String, &'static str)]) -> BTreeSet<String> {
    missing.iter().map(|(t, _)| t.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scopes_for_topics() {
        assert_eq!(required_scope("orders/create"), Some("read_orders"));
        assert_eq!(required_scope("customer.tags_added"), Some("read_customers"));
        assert_eq!(required_scope("app/uninstalled"), None);
        assert_eq!(required_scope("shop/update"), None);
    }

    #[test]
    fn write_implies_read() {
        let topics = strings(&["orders/create", "products/update", "app/uninstalled"]);
        let m = missing(&topics, &strings(&["write_orders"]));
        assert_eq!(m, vec![("products/update".to_string(), "read_products")]);
        assert!(missing(&topics, &strings(&["read_orders", "read_products"])).is_empty());
    }
}
