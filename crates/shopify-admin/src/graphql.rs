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
use super::types::{Change, Destination, Format, Options};

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

    /// True from 2025-07 on: the `appUninstall` mutation exists.
    pub fn has_app_uninstall(self) -> bool {
        self >= ApiVersion::new(2025, 7)
    }

    /// True from 2024-07 on: subscriptions take a `filter`.
    pub fn has_filter(self) -> bool {
        self >= ApiVersion::new(2024, 7)
    }

    /// True from 2025-04 on: subscriptions take `metafields` (present in
    /// 2025-04, absent in 2024-07; 2024-10 and 2025-01 are unconfirmed, so
    /// not assumed).
    pub fn has_metafields(self) -> bool {
        self >= ApiVersion::new(2025, 4)
    }

    /// True from 2026-04 on: subscriptions have a `name`.
    pub fn has_subscription_name(self) -> bool {
        self >= ApiVersion::new(2026, 4)
    }

    /// The schema differences the client's documents depend on; two
    /// versions with equal features get identical documents.
    pub fn features(self) -> [bool; 5] {
        [
            self.uses_uri(),
            self.has_public_display_name(),
            self.has_filter(),
            self.has_metafields(),
            self.has_subscription_name(),
        ]
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

fn subscription_fields(v: ApiVersion) -> String {
    let mut fields = String::from("id topic format includeFields metafieldNamespaces");
    if v.has_filter() {
        fields.push_str(" filter");
    }
    if v.has_metafields() {
        fields.push_str(" metafields { namespace key }");
    }
    if v.has_subscription_name() {
        fields.push_str(" name");
    }
    fields.push_str(" apiVersion { handle }");
    if v.uses_uri() {
        fields.push_str(" uri");
    } else {
        fields.push_str(
            " endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } \
             ... on WebhookEventBridgeEndpoint { arn } \
             ... on WebhookPubSubEndpoint { pubSubProject pubSubTopic } }",
        );
    }
    fields
}

/// The largest `first` a listing page can ask for at `v` within a single
/// query's maximum cost (1000 points): Shopify charges one point per object
/// per node (the subscription, `apiVersion`, `endpoint` before 2025-10,
/// `metafields` from 2025-04) plus two for the connection.
pub fn max_list_page(v: ApiVersion) -> u32 {
    let objects = 2 + u32::from(!v.uses_uri()) + u32::from(v.has_metafields());
    (1000 - 2) / objects
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

/// `shop` + `currentAppInstallation { accessScopes app { apiKey } }` in one
/// request: the token's shop, scopes and the app it belongs to.
pub fn token_info_document(v: ApiVersion) -> Document {
    let plan = if v.has_public_display_name() {
        "publicDisplayName"
    } else {
        "displayName"
    };
    Document {
        query: format!(
            "query TokenInfo {{ shop {{ name myshopifyDomain plan {{ {plan} }} }} \
             currentAppInstallation {{ accessScopes {{ handle }} app {{ apiKey }} }} }}"
        ),
        variables: json!({}),
    }
}

/// `appUninstall` (2025-07 on): uninstalls the calling app from the shop.
pub fn app_uninstall_document() -> Document {
    Document {
        query: "mutation AppUninstall { appUninstall { app { id } userErrors { field message code } } }"
            .into(),
        variables: json!({}),
    }
}

/// The alias of the `i`-th change in a mutation document.
pub fn alias(i: usize) -> String {
    format!("c{i}")
}

/// The mutation family an address is created and updated with: before
/// 2025-10 Pub/Sub and EventBridge have their own mutations and inputs;
/// from 2025-10 `uri` takes every kind.
fn family(v: ApiVersion, address: &str) -> (&'static str, &'static str) {
    match Destination::of(address) {
        Destination::PubSub { .. } if !v.uses_uri() => {
            ("pubSubWebhookSubscription", "PubSubWebhookSubscriptionInput")
        }
        Destination::EventBridge(_) if !v.uses_uri() => (
            "eventBridgeWebhookSubscription",
            "EventBridgeWebhookSubscriptionInput",
        ),
        _ => ("webhookSubscription", "WebhookSubscriptionInput"),
    }
}

/// The subscription input: the address in the family's fields, the format
/// and every option the version has. `None` and empty lists are sent as
/// such, so an update clears what the spec no longer asks for.
fn input(v: ApiVersion, address: &str, format: Format, options: &Options) -> Value {
    let mut input = Map::new();
    match Destination::of(address) {
        _ if v.uses_uri() => {
            input.insert("uri".into(), json!(address));
        }
        Destination::PubSub { project, topic } => {
            input.insert("pubSubProject".into(), json!(project));
            input.insert("pubSubTopic".into(), json!(topic));
        }
        Destination::EventBridge(arn) => {
            input.insert("arn".into(), json!(arn));
        }
        Destination::Https(url) => {
            input.insert("callbackUrl".into(), json!(url));
        }
    }
    input.insert("format".into(), json!(format.as_graphql()));
    input.insert("includeFields".into(), json!(options.include_fields));
    input.insert("metafieldNamespaces".into(), json!(options.metafield_namespaces));
    if v.has_filter() {
        input.insert("filter".into(), json!(options.filter));
    }
    if v.has_metafields() {
        let metafields: Vec<Value> = options
            .metafields
            .iter()
            .map(|m| json!({"namespace": m.namespace, "key": m.key}))
            .collect();
        input.insert("metafields".into(), Value::Array(metafields));
    }
    if let Some(name) = options.name.as_ref().filter(|_| v.has_subscription_name()) {
        input.insert("name".into(), json!(name));
    }
    Value::Object(input)
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
                options,
            } => {
                let (mutation, input_type) = family(v, address);
                decls.push(format!("$t{i}: WebhookSubscriptionTopic!, $s{i}: {input_type}!"));
                let _ = write!(
                    body,
                    " {a}: {mutation}Create(topic: $t{i}, webhookSubscription: $s{i}) \
                     {{ webhookSubscription {{ {fields} }} userErrors {{ field message }} }}"
                );
                vars.insert(format!("t{i}"), Value::String(rest_to_enum(topic)));
                vars.insert(format!("s{i}"), input(v, address, *format, options));
            }
            Change::Update {
                id,
                address,
                format,
                options,
                ..
            } => {
                let (mutation, input_type) = family(v, address);
                decls.push(format!("$id{i}: ID!, $s{i}: {input_type}!"));
                let _ = write!(
                    body,
                    " {a}: {mutation}Update(id: $id{i}, webhookSubscription: $s{i}) \
                     {{ webhookSubscription {{ {fields} }} userErrors {{ field message }} }}"
                );
                vars.insert(format!("id{i}"), Value::String(id.clone()));
                vars.insert(format!("s{i}"), input(v, address, *format, options));
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
    use crate::types::Metafield;

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
    fn a_listing_page_stays_within_the_query_cost_limit() {
        // Objects per node: subscription + apiVersion, + endpoint before
        // 2025-10, + metafields from 2025-04. (The simulator's cost model
        // checks the sum in the client tests: 600 subscriptions, 3 pages.)
        for (version, objects) in [("2025-01", 3), ("2025-07", 4), ("2025-10", 3), ("2026-04", 3)] {
            let first = max_list_page(v(version));
            assert!(2 + first * objects <= 1000, "{version}: {first}");
            assert!(
                2 + (first + 1) * objects > 1000,
                "{version}: {first} is the largest"
            );
        }
    }

    #[test]
    fn list_document_is_version_aware() {
        let named = list_document(v("2026-04"), 250, None);
        assert!(
            named
                .query
                .contains(" filter metafields { namespace key } name apiVersion")
        );
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
        assert!(
            token_info_document(v("2025-04"))
                .query
                .contains("currentAppInstallation { accessScopes { handle } app { apiKey } }")
        );
        assert!(!v("2025-04").has_app_uninstall());
        assert!(v("2025-07").has_app_uninstall());
        assert!(
            app_uninstall_document()
                .query
                .contains("appUninstall { app { id } userErrors")
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
                options: Options::default(),
            },
            Change::Update {
                id: "gid://shopify/WebhookSubscription/7".into(),
                topic: "orders/paid".into(),
                address: "https://a/b".into(),
                format: Format::Xml,
                options: Options::default(),
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
        let plain = |key: &str, address: &str, format: &str| {
            json!({key: address, "format": format, "includeFields": [], "metafieldNamespaces": [],
                "filter": null, "metafields": []})
        };
        assert_eq!(d.variables["s0"], plain("callbackUrl", hostile, "JSON"));
        assert_eq!(d.variables["s1"], plain("callbackUrl", "https://a/b", "XML"));
        assert_eq!(d.variables["id2"], "gid://shopify/WebhookSubscription/9");
        let d = apply_document(v("2025-10"), &changes[..1]);
        assert_eq!(d.variables["s0"], plain("uri", hostile, "JSON"));
        assert!(d.query.contains("webhookSubscription { id topic") && d.query.contains(" uri }"));
    }

    fn options() -> Options {
        Options {
            filter: Some("financial_status:paid".into()),
            include_fields: vec!["id".into(), "line_items.sku".into()],
            metafield_namespaces: vec!["oms".into()],
            metafields: vec![Metafield {
                namespace: "oms".into(),
                key: "warehouse".into(),
            }],
            name: Some("paid-orders".into()),
        }
    }

    #[test]
    fn options_travel_as_far_as_the_version_has_them() {
        let change = |address: &str| Change::Create {
            topic: "orders/paid".into(),
            address: address.into(),
            format: Format::Json,
            options: options(),
        };
        let https = [change("https://oms.example/webhooks/orders_paid")];
        // 2025-07: callbackUrl, filter, metafields; no name yet.
        let d = apply_document(v("2025-07"), &https);
        assert_eq!(
            d.variables["s0"],
            json!({"callbackUrl": "https://oms.example/webhooks/orders_paid", "format": "JSON",
                "includeFields": ["id", "line_items.sku"], "metafieldNamespaces": ["oms"],
                "filter": "financial_status:paid", "metafields": [{"namespace": "oms", "key": "warehouse"}]})
        );
        assert!(d.query.contains("metafields { namespace key }") && !d.query.contains(" name "));
        // 2025-01: no metafields in the input or the selection.
        let d = apply_document(v("2025-01"), &https);
        assert!(d.variables["s0"].get("metafields").is_none());
        assert!(!d.query.contains("metafields {"));
        // 2026-04: uri and name, read back too.
        let d = apply_document(v("2026-04"), &https);
        assert_eq!(d.variables["s0"]["name"], "paid-orders");
        assert_eq!(
            d.variables["s0"]["uri"],
            "https://oms.example/webhooks/orders_paid"
        );
        assert!(d.query.contains(" name apiVersion"), "{}", d.query);
        // Without a name nothing is sent for it (it is not cleared).
        let mut unnamed = https[0].clone();
        if let Change::Create { options, .. } = &mut unnamed {
            options.name = None;
        }
        assert!(
            apply_document(v("2026-04"), &[unnamed]).variables["s0"]
                .get("name")
                .is_none()
        );
    }

    #[test]
    fn pub_sub_and_event_bridge_use_their_own_mutations_before_2025_10_and_uri_after() {
        let arn = "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1234/oms";
        let changes = [
            Change::Create {
                topic: "orders/create".into(),
                address: "pubsub://oms-prod:orders".into(),
                format: Format::Json,
                options: Options::default(),
            },
            Change::Update {
                id: "gid://shopify/WebhookSubscription/3".into(),
                topic: "orders/paid".into(),
                address: arn.into(),
                format: Format::Json,
                options: options(),
            },
        ];
        let d = apply_document(v("2025-07"), &changes);
        assert!(
            d.query.contains("$s0: PubSubWebhookSubscriptionInput!"),
            "{}",
            d.query
        );
        assert!(
            d.query
                .contains("c0: pubSubWebhookSubscriptionCreate(topic: $t0, webhookSubscription: $s0)")
        );
        assert!(d.query.contains("$s1: EventBridgeWebhookSubscriptionInput!"));
        assert!(
            d.query
                .contains("c1: eventBridgeWebhookSubscriptionUpdate(id: $id1, webhookSubscription: $s1)")
        );
        assert_eq!(d.variables["s0"]["pubSubProject"], "oms-prod");
        assert_eq!(d.variables["s0"]["pubSubTopic"], "orders");
        assert!(d.variables["s0"].get("callbackUrl").is_none());
        assert_eq!(d.variables["s1"]["arn"], arn);
        assert_eq!(d.variables["s1"]["filter"], "financial_status:paid");
        let d = apply_document(v("2025-10"), &changes);
        assert!(d.query.contains("c0: webhookSubscriptionCreate("));
        assert!(d.query.contains("c1: webhookSubscriptionUpdate("));
        assert_eq!(d.variables["s0"]["uri"], "pubsub://oms-prod:orders");
        assert_eq!(d.variables["s1"]["uri"], arn);
    }
}
