//! Which spec fields the shop's Admin API version has: a field Shopify's
//! version does not know would fail the whole mutation document, so a spec
//! that uses one is refused before anything is sent. Pure.

use shopify_admin::ApiVersion;

use crate::crd::WebhooksSpec;

/// The first spec field (as its path) the version lacks, with the first
/// version that has it: `("spec.webhooks.subscriptions[2].name", "2026-04")`.
pub fn unsupported_field(spec: &WebhooksSpec, version: ApiVersion) -> Option<(String, &'static str)> {
    for (i, entry) in spec.subscriptions.iter().enumerate() {
        let at = |field: &str| format!("spec.webhooks.subscriptions[{i}].{field}");
        if entry.filter.is_some() && !version.has_filter() {
            return Some((at("filter"), "2024-07"));
        }
        if !entry.metafields.is_empty() && !version.has_metafields() {
            return Some((at("metafields"), "2025-04"));
        }
        if entry.name.is_some() && !version.has_subscription_name() {
            return Some((at("name"), "2026-04"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(entry: &str) -> WebhooksSpec {
        serde_norway::from_str(&format!(
            "{{endpoint: {{host: oms.popsockets.com}}, subscriptions: [{{topics: [orders/create]}}, {entry}]}}"
        ))
        .unwrap()
    }

    fn v(s: &str) -> ApiVersion {
        s.parse().unwrap()
    }

    #[test]
    fn each_field_needs_its_first_version() {
        let cases = [
            (
                "{topics: [orders/paid], filter: 'financial_status:paid'}",
                "filter",
                "2024-04",
                "2024-07",
            ),
            (
                "{topics: [orders/paid], metafields: [{namespace: oms, key: k}]}",
                "metafields",
                "2025-01",
                "2025-04",
            ),
            (
                "{topics: [orders/paid], name: paid}",
                "name",
                "2026-01",
                "2026-04",
            ),
        ];
        for (entry, field, before, first) in cases {
            let s = spec(entry);
            assert_eq!(
                unsupported_field(&s, v(before)),
                Some((format!("spec.webhooks.subscriptions[1].{field}"), first)),
                "{field} at {before}"
            );
            assert_eq!(unsupported_field(&s, v(first)), None, "{field} at {first}");
            assert_eq!(unsupported_field(&s, ApiVersion::Unstable), None);
        }
        assert_eq!(
            unsupported_field(&spec("{topics: [orders/paid]}"), v("2024-01")),
            None
        );
    }
}
