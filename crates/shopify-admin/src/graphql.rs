//! API versions and the GraphQL documents the client sends (response
//! parsing is in `parse.rs`).
//!
//! No network access. Documents are version-aware (`uri` from 2025-10 on,
//! `endpoint { ... on WebhookHttpEndpoint { callbackUrl } }` / `callbackUrl`
//! before) and carry every value in GraphQL variables; only structural
//! indices (`c0`, `$s0`, …) are formatted into the query text.

use std::fmt::Write as _;
use std::str::FromStr;

use serde_json::{Map, Value, json};

use super::error::ShopifyError;
use super::topic::rest_to_enum;
use super::types::{Change, Format};

/// An Admin API version: `YYYY-MM` or `unstable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// A dated release.
    Dated {
        /// Year.
        year: u16,
        /// Month (Shopify releases 01/04/07/10).
        month: u8,
    },
    /// `unstable`: newer than any dated release.
    Unstable,
}

impl ApiVersion {
    /// A dated version.
    pub const fn new(year: u16, month: u8) -> Self {
        ApiVersion::Dated { year, month }
    }

    /// True from 2025-10 on: subscriptions carry `uri` (and the input takes
    /// `uri`) instead of `callbackUrl` / `endpoint`.
    pub fn uses_uri(self) -> bool {
        self >= ApiVersion::new(2025, 10)
    }

    /// True from 2025-07 on: `plan.publicDisplayName` replaces `displayName`.
    pub fn has_public_display_name(self) -> bool {
        self >= ApiVersion::new(2025, 7)
    }

    /// The schema differences the client's documents depend on; two
    /// versions with equal features get identical documents.
    pub fn features(self) -> (bool, bool) {
        (self.uses_uri(), self.has_public_display_name())
    }
}

impl FromStr for ApiVersion {
    type Err = ShopifyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "unstable" {
            return Ok(ApiVersion::Unstable);
        }
        let bad = || ShopifyError::InvalidInput(format!("API version {s:?} is not YYYY-MM or unstable"));
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' || !s[..4].bytes().chain(s[5..].bytes()).all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let year: u16 = s[..4].parse().map_err(|_| bad())?;
        let month: u8 = s[5..].parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || year < 2000 {
            return Err(bad());
        }
        Ok(ApiVersion::Dated { year, month })
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiVersion::Dated { year, month } => write!(f, "{year:04}-{month:02}"),
            ApiVersion::Unstable => f.write_str("unstable"),
        }
    }
}

/// A document ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Query text.
    pub query: String,
    /// Variables.
    pub variables: Value,
}

impl Document {
    /// The JSON request body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"query": self.query, "variables": self.variables})).unwrap_or_default()
    }
}

fn subscription_fields(v: ApiVersion) -> &'static str {
    if v.uses_uri() {
        "id topic format includeFields metafieldNamespaces filter apiVersion { handle } uri"
    } else {
        "id topic format includeFields metafieldNamespaces filter apiVersion { handle } \
         endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } \
         ... on WebhookEventBridgeEndpoint { arn } \
         ... on WebhookPubSubEndpoint { pubSubProject pubSubTopic } }"
    }
}

/// `webhookSubscriptions(first, after)` page query.
pub fn list_document(v: ApiVersion, first: u32, after: Option<&str>) -> Document {
    let query = format!(
        "query ListWebhookSubscriptions($first: Int!, $after: String) {{ \
         webhookSubscriptions(first: $first, after: $after) {{ \
         nodes {{ {} }} pageInfo {{ hasNextPage endCursor }} }} }}",
        subscription_fields(v)
    );
    Document {
        query,
        variables: json!({"first": first, "after": after}),
    }
}

/// `shop` + `currentAppInstallation.accessScopes` in one request.
pub fn token_info_document(v: ApiVersion) -> Document {
    let plan = if v.has_public_display_name() {
        "publicDisplayName"
    } else {
        "displayName"
    };
    Document {
        query: format!(
            "query TokenInfo {{ shop {{ name myshopifyDomain plan {{ {plan} }} }} \
             currentAppInstallation {{ accessScopes {{ handle }} }} }}"
        ),
        variables: json!({}),
    }
}

/// The alias of the `i`-th change in a mutation document.
pub fn alias(i: usize) -> String {
    format!("c{i}")
}

fn input(v: ApiVersion, address: &str, format: Format) -> Value {
    let key = if v.uses_uri() { "uri" } else { "callbackUrl" };
    json!({ key: address, "format": format.as_graphql() })
}

/// One mutation document for all `changes`, aliased `c0`, `c1`, … in order.
pub fn apply_document(v: ApiVersion, changes: &[Change]) -> Document {
    let fields = subscription_fields(v);
    let mut decls = Vec::new();
    let mut body = String::new();
    let mut vars = Map::new();
    for (i, ch) in changes.iter().enumerate() {
        let a = alias(i);
        match ch {
            Change::Create {
                topic,
                address,
                format,
            } => {
                decls.push(format!(
                    "$t{i}: WebhookSubscriptionTopic!, $s{i}: WebhookSubscriptionInput!"
                ));
                let _ = write!(
                    body,
                    " {a}: webhookSubscriptionCreate(topic: $t{i}, webhookSubscription: $s{i}) \
                     {{ webhookSubscription {{ {fields} }} userErrors {{ field message }} }}"
                );
                vars.insert(format!("t{i}"), Value::String(rest_to_enum(topic)));
                vars.insert(format!("s{i}"), input(v, address, *format));
            }
            Change::Update {
                id, address, format, ..
            } => {
                decls.push(format!("$id{i}: ID!, $s{i}: WebhookSubscriptionInput!"));
                let _ = write!(
                    body,
                    " {a}: webhookSubscriptionUpdate(id: $id{i}, webhookSubscription: $s{i}) \
                     {{ webhookSubscription {{ {fields} }} userErrors {{ field message }} }}"
                );
                vars.insert(format!("id{i}"), Value::String(id.clone()));
                vars.insert(format!("s{i}"), input(v, address, *format));
            }
            Change::Delete { id, .. } => {
                decls.push(format!("$id{i}: ID!"));
                let _ = write!(
                    body,
                    " {a}: webhookSubscriptionDelete(id: $id{i}) \
                     {{ deletedWebhookSubscriptionId userErrors {{ field message }} }}"
                );
                vars.insert(format!("id{i}"), Value::String(id.clone()));
            }
        }
    }
    Document {
        query: format!("mutation ApplyWebhookChanges({}) {{{body} }}", decls.join(", ")),
        variables: Value::Object(vars),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ApiVersion {
        s.parse().unwrap()
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(v("2025-07"), ApiVersion::new(2025, 7));
        assert_eq!(v("2025-07").to_string(), "2025-07");
        assert_eq!(v("unstable"), ApiVersion::Unstable);
        for bad in [
            "2025-7",
            "2025/07",
            "25-07",
            "2025-13",
            "2025-00",
            "latest",
            "",
            "2025-07/../x",
            "２０２５-07",
        ] {
            assert!(
                matches!(bad.parse::<ApiVersion>(), Err(ShopifyError::InvalidInput(_))),
                "{bad}"
            );
        }
        assert!(!v("2025-07").uses_uri());
        assert!(v("2025-10").uses_uri());
        assert!(v("2026-01").uses_uri());
        assert!(ApiVersion::Unstable.uses_uri());
        assert!(!v("2025-04").has_public_display_name());
        assert!(v("2025-07").has_public_display_name());
    }

    #[test]
    fn list_document_is_version_aware() {
        let old = list_document(v("2025-07"), 250, None);
        assert!(old.query.contains("... on WebhookHttpEndpoint { callbackUrl }"));
        assert!(!old.query.contains(" uri"));
        assert_eq!(old.variables, json!({"first": 250, "after": null}));
        let new = list_document(v("2025-10"), 250, Some("abc"));
        assert!(new.query.contains(" uri"));
        assert!(!new.query.contains("callbackUrl"));
        assert_eq!(new.variables["after"], "abc");
    }

    #[test]
    fn token_info_document_picks_plan_field() {
        assert!(
            token_info_document(v("2025-04"))
                .query
                .contains("plan { displayName }")
        );
        assert!(
            token_info_document(v("2025-07"))
                .query
                .contains("plan { publicDisplayName }")
        );
    }

    #[test]
    fn apply_document_aliases_and_variables() {
        let hostile = "https://x.example/\"} mutation { evil }";
        let changes = vec![
            Change::Create {
                topic: "orders/create".into(),
                address: hostile.into(),
                format: Format::Json,
            },
            Change::Update {
                id: "gid://shopify/WebhookSubscription/7".into(),
                topic: "orders/paid".into(),
                address: "https://a/b".into(),
                format: Format::Xml,
            },
            Change::Delete {
                id: "gid://shopify/WebhookSubscription/9".into(),
                topic: "app/uninstalled".into(),
            },
        ];
        let d = apply_document(v("2025-07"), &changes);
        assert!(d.query.starts_with("mutation ApplyWebhookChanges($t0: WebhookSubscriptionTopic!, $s0: WebhookSubscriptionInput!, $id1: ID!, $s1: WebhookSubscriptionInput!, $id2: ID!)"), "{}", d.query);
        assert!(
            d.query
                .contains("c0: webhookSubscriptionCreate(topic: $t0, webhookSubscription: $s0)")
        );
        assert!(
            d.query
                .contains("c1: webhookSubscriptionUpdate(id: $id1, webhookSubscription: $s1)")
        );
        assert!(d.query.contains("c2: webhookSubscriptionDelete(id: $id2)"));
        assert!(!d.query.contains("evil"), "values must travel as variables");
        assert_eq!(d.variables["t0"], "ORDERS_CREATE");
        assert_eq!(
            d.variables["s0"],
            json!({"callbackUrl": hostile, "format": "JSON"})
        );
        assert_eq!(
            d.variables["s1"],
            json!({"callbackUrl": "https://a/b", "format": "XML"})
        );
        assert_eq!(d.variables["id2"], "gid://shopify/WebhookSubscription/9");
        let d = apply_document(v("2025-10"), &changes[..1]);
        assert_eq!(d.variables["s0"], json!({"uri": hostile, "format": "JSON"}));
        assert!(d.query.contains("webhookSubscription { id topic") && d.query.contains(" uri }"));
    }
}
