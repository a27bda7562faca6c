//! What Shopify would refuse in the whole mutation document: a spec field
//! the shop's Admin API version does not have, or a topic that is not in
//! Shopify's `WebhookSubscriptionTopic` enum. Either fails every change of
//! the document (GraphQL validates variables before executing anything) and
//! retrying cannot help, so a spec that has one is refused before anything
//! is sent. Pure.

use shopify_admin::{ApiVersion, KNOWN_TOPICS};

use crate::controller::conditions::Reason;

use crate::crd::WebhooksSpec;

/// Why Shopify would refuse the spec's document at `version`, as a
/// `WebhooksSynced` reason and message; `None` when nothing stands out.
pub fn refusal(spec: &WebhooksSpec, version: &str) -> Option<(Reason, String)> {
    if let Some((field, first)) = version.parse().ok().and_then(|v| unsupported_field(spec, v)) {
        return Some((
            Reason::UnsupportedForApiVersion,
            format!(
                "{field} needs Admin API {first} or later; spec.adminApiVersion is {version}: nothing was sent"
            ),
        ));
    }
    let (at, topic) = unknown_topic(spec)?;
    Some((
        Reason::UnknownTopic,
        format!(
            "{at} {topic:?} is not a webhook topic Shopify documents (check the spelling: REST form, \
             e.g. orders/create): nothing was sent"
        ),
    ))
}

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

/// The first topic of the spec (as its path and the topic) that is not one
/// of the topics Shopify documents: `("spec.webhooks.topics[1]", "order/create")`.
/// The schema only checks the shape (`a/b`), and Shopify answers an unknown
/// enum value with a GraphQL error that rejects the whole document.
pub fn unknown_topic(spec: &WebhooksSpec) -> Option<(String, String)> {
    let known = |t: &str| KNOWN_TOPICS.contains(&t);
    let shorthand = spec
        .topics
        .iter()
        .enumerate()
        .map(|(j, t)| (format!("spec.webhooks.topics[{j}]"), t));
    let entries = spec.subscriptions.iter().enumerate().flat_map(|(i, e)| {
        e.topics
            .iter()
            .enumerate()
            .map(move |(j, t)| (format!("spec.webhooks.subscriptions[{i}].topics[{j}]"), t))
    });
    shorthand
        .chain(entries)
        .find(|(_, t)| !known(t))
        .map(|(at, t)| (at, t.clone()))
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

    #[test]
    fn unknown_topics_are_named_with_their_path() {
        let s = spec("{topics: [orders/paid, order/create]}");
        assert_eq!(
            unknown_topic(&s),
            Some((
                "spec.webhooks.subscriptions[1].topics[1]".into(),
                "order/create".into()
            ))
        );
        let s: WebhooksSpec = serde_norway::from_str(
            "{endpoint: {host: oms.popsockets.com}, topics: [orders/create, kwcvxrq_/ico__y]}",
        )
        .unwrap();
        assert_eq!(
            unknown_topic(&s),
            Some(("spec.webhooks.topics[1]".into(), "kwcvxrq_/ico__y".into()))
        );
        let s = spec("{topics: [customer.tags_added, audit_events/admin_api_activity]}");
        assert_eq!(unknown_topic(&s), None);
    }
}
