//! Fixtures: the shops, tokens, subscriptions and app credentials a
//! simulator starts with (YAML or JSON, camelCase keys).
//!
//! One simulator can serve several apps (say a staging and a production
//! Partners app): `app` is "the" app, the first one, and `apps` adds more.
//! Apps are keyed by `clientId`, as Shopify's OAuth endpoints key them, and
//! tokens and subscriptions may name the app they belong to (`clientId`;
//! none means the first app, so single-app fixtures need not say).

use super::topics;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// A set of shops (added or replaced on load) and optionally the apps whose
/// credentials the OAuth endpoints accept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    /// Shops to add; a shop with a domain already loaded is replaced whole.
    #[serde(default)]
    pub shops: Vec<ShopFixture>,
    /// The app's client credentials; `None` keeps the current ones. It is
    /// the first app: it replaces the first app already loaded, and it is
    /// the default app that tokens and subscriptions naming no `clientId`
    /// belong to.
    #[serde(default)]
    pub app: Option<AppFixture>,
    /// More apps, each added, or replaced if an app with its `clientId` is
    /// loaded. When no app is loaded yet and `app` is `None`, the first of
    /// them becomes the first app.
    #[serde(default)]
    pub apps: Vec<AppFixture>,
}

/// One shop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShopFixture {
    /// `name.myshopify.com`; also the `{shop}` path segment of its endpoints.
    pub domain: String,
    /// `shop.name`; defaults to the domain's first label.
    #[serde(default)]
    pub name: Option<String>,
    /// `shop.plan.publicDisplayName`, e.g. "Basic" (default) or "Shopify Plus".
    /// Only displayed: the restore rate comes from the simulator's config.
    #[serde(default)]
    pub plan: Option<String>,
    /// Access tokens that authenticate as this shop.
    #[serde(default)]
    pub tokens: Vec<TokenFixture>,
    /// Subscriptions present at load time; ids are assigned on load.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionFixture>,
}

/// An access token (and optionally its refresh token). Fixture tokens are
/// fake strings; the simulator never logs them, and `Debug` prints `***`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenFixture {
    /// The value clients send in `X-Shopify-Access-Token`.
    pub access_token: String,
    /// Granted scopes, reported by `currentAppInstallation.accessScopes`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A refresh token usable with the `refresh_token` grant (90-day lifetime).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires, counted from load; `None`
    /// for a non-expiring token.
    #[serde(default)]
    pub expires_in_seconds: Option<u64>,
    /// The app the token (and its refresh token) belongs to. `None` is the
    /// default app: whichever app is first when the token is used (no app
    /// at all is the app `""`), so fixtures that load apps later still work.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// A subscription present at load time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionFixture {
    /// `orders/create` or `ORDERS_CREATE`.
    pub topic: String,
    /// Delivery address (`callbackUrl` / `uri`). Not checked against the
    /// address rules: fixtures may describe states Shopify would refuse now.
    pub address: String,
    /// `JSON` (default) or `XML`.
    #[serde(default)]
    pub format: Option<String>,
    /// `includeFields` (default empty).
    #[serde(default)]
    pub include_fields: Vec<String>,
    /// `metafieldNamespaces` (default empty).
    #[serde(default)]
    pub metafield_namespaces: Vec<String>,
    /// `filter` (default none).
    #[serde(default)]
    pub filter: Option<String>,
    /// `metafields` (default empty): metafields included in the payloads.
    #[serde(default)]
    pub metafields: Vec<MetafieldIdentifier>,
    /// `name` (default none). Not checked against the name rules.
    #[serde(default)]
    pub name: Option<String>,
    /// The app that owns it (only that app's tokens see it); `None` is the
    /// default app, resolved like [`TokenFixture::client_id`].
    #[serde(default)]
    pub client_id: Option<String>,
}

/// The namespace Shopify uses when a metafield identifier omits it: "If
/// omitted, the app-reserved namespace will be used" (shopify.dev,
/// `HasMetafieldsMetafieldIdentifierInput`). How Shopify spells it when it
/// lists the subscription back is [U]; the simulator stores `$app`.
pub const APP_RESERVED_NAMESPACE: &str = "$app";

fn app_reserved_namespace() -> String {
    APP_RESERVED_NAMESPACE.to_string()
}

/// A metafield a subscription includes in its payloads: the
/// `WebhookSubscriptionMetafieldIdentifier { namespace key }` of the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetafieldIdentifier {
    /// The metafield namespace; default [`APP_RESERVED_NAMESPACE`].
    #[serde(default = "app_reserved_namespace")]
    pub namespace: String,
    /// The metafield key.
    pub key: String,
}

/// An app's OAuth client credentials (`Debug` hides the secrets).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppFixture {
    /// `client_id` (the API key).
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// A secret being rotated out: still accepted at the token endpoint, and,
    /// being the oldest unrevoked one, the one Shopify signs callbacks with.
    #[serde(default)]
    pub previous_client_secret: Option<String>,
}

// Configs get logged; secrets must not be, even fake ones, so that nobody
// copies a pattern that leaks real ones.
impl fmt::Debug for TokenFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenFixture")
            .field("access_token", &"***")
            .field("scopes", &self.scopes)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("expires_in_seconds", &self.expires_in_seconds)
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl fmt::Debug for AppFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppFixture")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field(
                "previous_client_secret",
                &self.previous_client_secret.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

impl AppFixture {
    /// The secret Shopify signs with: the oldest unrevoked one.
    pub(crate) fn signing_secret(&self) -> &str {
        self.previous_client_secret
            .as_deref()
            .unwrap_or(&self.client_secret)
    }

    /// During a rotation both the new and the old secret authenticate.
    pub(crate) fn accepts_secret(&self, secret: &str) -> bool {
        secret == self.client_secret || self.previous_client_secret.as_deref() == Some(secret)
    }
}

impl Fixture {
    /// `app`, then `apps`, in load order.
    pub(crate) fn all_apps(&self) -> impl Iterator<Item = &AppFixture> {
        self.app.iter().chain(&self.apps)
    }

    /// Reads a YAML (or JSON, which is YAML) fixture file and validates it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, String> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses YAML or JSON text and validates it.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let f: Self = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        f.validate()?;
        Ok(f)
    }

    /// Rejects what the simulator could not load faithfully: unknown or
    /// compliance topics, unknown formats, malformed or duplicate domains,
    /// and apps listed twice (which secret would win is not obvious).
    pub fn validate(&self) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for app in self.all_apps() {
            if !ids.insert(app.client_id.as_str()) {
                return Err(format!("app {:?} listed twice", app.client_id));
            }
        }
        // An empty id would match a request that sends `client_id=`; `app`
        // still takes one, as it always has.
        if self.apps.iter().any(|a| a.client_id.is_empty()) {
            return Err("apps: empty clientId".into());
        }
        let mut seen = std::collections::HashSet::new();
        for shop in &self.shops {
            let d = shop.domain.to_ascii_lowercase();
            if d.is_empty() || d.contains('/') || d.contains(char::is_whitespace) {
                return Err(format!("invalid shop domain {:?}", shop.domain));
            }
            if !seen.insert(d) {
                return Err(format!("shop {} listed twice", shop.domain));
            }
            for t in &shop.tokens {
                if t.access_token.is_empty() {
                    return Err(format!("shop {}: empty access token", shop.domain));
                }
            }
            for s in &shop.subscriptions {
                if topics::lookup(&s.topic).is_none() {
                    return Err(format!(
                        "shop {}: unknown or unregistrable topic {:?}",
                        shop.domain, s.topic
                    ));
                }
                if let Some(f) = &s.format
                    && parse_format(f).is_none()
                {
                    return Err(format!("shop {}: unknown format {f:?}", shop.domain));
                }
            }
        }
        Ok(())
    }
}

/// `JSON`/`XML`, case-insensitively, to the enum value.
pub(crate) fn parse_format(f: &str) -> Option<&'static str> {
    match f.to_ascii_uppercase().as_str() {
        "JSON" => Some("JSON"),
        "XML" => Some("XML"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_with_camel_case_keys_parses() {
        let f = Fixture::from_yaml(
            r#"
app: {clientId: id, clientSecret: hush_value}
shops:
  - domain: a.myshopify.com
    tokens: [{accessToken: tok_visible, scopes: [read_orders], expiresInSeconds: 60}]
    subscriptions:
      - {topic: orders/create, address: "https://x.example/h"}
      - {topic: PRODUCTS_UPDATE, address: "https://x.example/p", format: xml, includeFields: [id]}
      - topic: audit_events/admin_api_activity
        address: "pubsub://proj:audit"
        name: audit-feed
        metafields: [{namespace: custom, key: a}, {key: b}]
"#,
        )
        .unwrap();
        let audit = &f.shops[0].subscriptions[2];
        assert_eq!(audit.name.as_deref(), Some("audit-feed"));
        assert_eq!(
            audit.metafields,
            vec![
                MetafieldIdentifier {
                    namespace: "custom".into(),
                    key: "a".into()
                },
                MetafieldIdentifier {
                    namespace: APP_RESERVED_NAMESPACE.into(),
                    key: "b".into()
                },
            ]
        );
        assert_eq!(f.shops[0].subscriptions[0].name, None);
        assert_eq!(f.shops[0].tokens[0].expires_in_seconds, Some(60));
        assert_eq!(f.shops[0].subscriptions[1].include_fields, vec!["id"]);
        let debug = format!("{f:?}");
        assert!(
            !debug.contains("hush_value") && !debug.contains("tok_visible"),
            "{debug}"
        );
        assert!(debug.contains("***"));
        assert_eq!(f.app.unwrap().client_id, "id");
    }

    #[test]
    fn compliance_topics_and_typos_are_rejected() {
        let bad = "shops: [{domain: a.myshopify.com, subscriptions: [{topic: shop/redact, address: 'https://x.example'}]}]";
        assert!(Fixture::from_yaml(bad).unwrap_err().contains("shop/redact"));
        assert!(Fixture::from_yaml("shops: [{domian: a}]").is_err());
        let dup = "shops: [{domain: a.myshopify.com}, {domain: A.myshopify.com}]";
        assert!(Fixture::from_yaml(dup).is_err());
    }
}
