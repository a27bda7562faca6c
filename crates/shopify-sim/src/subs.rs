//! Webhook subscriptions: the records, and the rules the GraphQL
//! resolvers and the admin API share — topic + address uniqueness, address
//! checks, destination rules per topic, `name` rules, refused filters,
//! partial updates, and Relay-style pagination ordered by id. The sources of
//! each rule are in docs/src/shopify/webhook-subscriptions.md.
//!
//! A subscription belongs to the app whose token created it, and an app
//! sees and changes only its own (Shopify: "webhookSubscriptions" lists the
//! calling app's shop-scoped subscriptions). So every rule here is scoped to
//! the caller's app: another app's subscription answers like an unknown id,
//! and topic + address uniqueness holds within one app. Every change that
//! starts or ends a subscription's life at a topic + address goes into the
//! shop's timeline (`timeline.rs`).

use super::address::{self, Accepts, Endpoint};
use super::fixture::{MetafieldIdentifier, SubscriptionFixture};
use super::state::{Inner, SimState, shop_key};
use super::timeline::Change;
use super::topics;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// A webhook subscription as the simulator holds it (admin view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimSubscription {
    /// `gid://shopify/WebhookSubscription/N`.
    pub id: String,
    /// Enum form, e.g. `ORDERS_CREATE`.
    pub topic: String,
    /// The delivery address as `uri` lists it: an `https://` URL,
    /// `pubsub://{project}:{topic}` or an EventBridge ARN.
    pub address: String,
    /// `JSON` or `XML`.
    pub format: String,
    /// `includeFields`.
    pub include_fields: Vec<String>,
    /// `metafieldNamespaces`.
    pub metafield_namespaces: Vec<String>,
    /// `metafields` (2025-04 on).
    #[serde(default)]
    pub metafields: Vec<MetafieldIdentifier>,
    /// `filter`.
    pub filter: Option<String>,
    /// `name` (2026-04 on).
    #[serde(default)]
    pub name: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// The client id of the app that owns it (the default app resolved).
    #[serde(default)]
    pub client_id: String,
}

/// Prefix of subscription global ids.
pub(crate) const GID_PREFIX: &str = "gid://shopify/WebhookSubscription/";

/// Accepts a full gid or its numeric part.
pub(crate) fn parse_gid(id: &str) -> Option<u64> {
    id.strip_prefix(GID_PREFIX).unwrap_or(id).parse().ok()
}

/// A subscription record.
#[derive(Debug, Clone)]
pub(crate) struct Sub {
    pub id: u64,
    /// Enum name.
    pub topic: &'static str,
    pub address: String,
    pub format: &'static str,
    pub include_fields: Vec<String>,
    pub metafield_namespaces: Vec<String>,
    pub metafields: Vec<MetafieldIdentifier>,
    pub filter: Option<String>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub api_version: String,
    /// The owning app; `None` is the default app (see `state.rs`).
    pub client_id: Option<String>,
}

impl Sub {
    pub fn gid(&self) -> String {
        format!("{GID_PREFIX}{}", self.id)
    }

    fn public(&self, client_id: &str) -> SimSubscription {
        SimSubscription {
            id: self.gid(),
            topic: self.topic.to_string(),
            address: self.address.clone(),
            format: self.format.to_string(),
            include_fields: self.include_fields.clone(),
            metafield_namespaces: self.metafield_namespaces.clone(),
            metafields: self.metafields.clone(),
            filter: self.filter.clone(),
            name: self.name.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            client_id: client_id.to_owned(),
        }
    }
}

/// `code` of the Pub/Sub mutations' user errors for anything but a taken
/// address (`PubSubWebhookSubscription{Create,Update}UserErrorCode`).
pub(crate) const CODE_INVALID: &str = "INVALID_PARAMETERS";
/// `code` for "Address for this topic has already been taken".
pub(crate) const CODE_TAKEN: &str = "TAKEN";

/// Messages of the rules whose wording Shopify does not document ([U]).
pub(crate) const MSG_TAKEN: &str = "Address for this topic has already been taken";
pub(crate) const MSG_NOT_FOUND: &str = "Webhook subscription does not exist";
pub(crate) const MSG_NAME_TOO_LONG: &str = "Name is too long (maximum is 50 characters)";
pub(crate) const MSG_NAME_CHARS: &str = "Name can only contain letters, numbers, underscores and hyphens";
pub(crate) const MSG_NAME_TAKEN: &str = "Name has already been taken";

/// Longest `name` Shopify accepts ([C] changelog, 2026-04).
pub(crate) const NAME_MAX_CHARS: usize = 50;

/// A `userErrors` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserError {
    pub field: Option<Vec<String>>,
    pub message: String,
    /// [`CODE_INVALID`] or [`CODE_TAKEN`]; only the Pub/Sub mutations'
    /// error types have a `code` field.
    pub code: &'static str,
}

impl UserError {
    pub fn new(field: &[&str], message: &str) -> Self {
        Self {
            field: Some(field.iter().map(|s| s.to_string()).collect()),
            message: message.to_string(),
            code: CODE_INVALID,
        }
    }

    fn taken(field: &[&str]) -> Self {
        Self {
            code: CODE_TAKEN,
            ..Self::new(field, MSG_TAKEN)
        }
    }
}

/// The fields of a subscription input (`WebhookSubscriptionInput`,
/// `PubSubWebhookSubscriptionInput`, `EventBridgeWebhookSubscriptionInput`).
/// `None` means "not given": an update leaves that value as it was.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubInput {
    pub address: Option<String>,
    /// `callbackUrl`, `uri`, `pubSubTopic` or `arn`: where address errors point.
    pub address_field: &'static str,
    /// Which destinations the address field takes.
    pub accepts: Accepts,
    pub format: Option<&'static str>,
    /// `Some(vec![])` (an empty list, or `null`) clears.
    pub include_fields: Option<Vec<String>>,
    pub metafield_namespaces: Option<Vec<String>>,
    pub metafields: Option<Vec<MetafieldIdentifier>>,
    /// `Some(None)`: an explicit `null`, which clears.
    pub filter: Option<Option<String>>,
    /// `Some(None)`: an explicit `null` (or `""`), which clears.
    pub name: Option<Option<String>>,
    /// Errors found while reading the input (a malformed Pub/Sub project or
    /// topic id); the address rules are then skipped.
    pub errors: Vec<UserError>,
}

/// Shopify's `name` rule ([C] changelog, 2026-04): up to 50 characters,
/// letters, digits, `_` and `-` ("alphanumeric": ASCII, [U]).
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(MSG_NAME_TOO_LONG);
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(MSG_NAME_CHARS);
    }
    Ok(())
}

/// Filters and window of a `webhookSubscriptions` query.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListQuery {
    pub topics: Option<Vec<String>>,
    pub format: Option<String>,
    pub address: Option<String>,
    pub first: Option<usize>,
    pub last: Option<usize>,
    pub after: Option<u64>,
    pub before: Option<u64>,
    pub reverse: bool,
}

/// One page of subscriptions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Page {
    pub items: Vec<Sub>,
    pub has_next: bool,
    pub has_previous: bool,
}

impl SimState {
    /// Every app's subscriptions at the shop, `client_id` = `None`, or
    /// only those of the app with that (resolved) client id.
    pub fn subscriptions(&self, shop: &str, client_id: Option<&str>) -> Vec<SimSubscription> {
        let g = self.lock();
        let Some(s) = g.shops.get(&shop_key(shop)) else {
            return Vec::new();
        };
        s.subs
            .values()
            .map(|sub| sub.public(g.resolve(sub.client_id.as_deref())))
            .filter(|sub| client_id.is_none_or(|c| sub.client_id == c))
            .collect()
    }

    /// The caller's (`app`'s) subscription `id`; another app's is `None`.
    pub fn get_sub(&self, shop: &str, app: Option<&str>, id: u64) -> Option<Sub> {
        let g = self.lock();
        let sub = g.shops.get(&shop_key(shop))?.subs.get(&id)?;
        g.same_app(sub.client_id.as_deref(), app).then(|| sub.clone())
    }

    /// Adds a subscription bypassing the API rules (duplicates allowed), for
    /// tests that need drift. `None` if the shop, topic or format is unknown.
    pub fn add_subscription(&self, shop: &str, fixture: &SubscriptionFixture) -> Option<String> {
        let mut g = self.lock();
        let key = shop_key(shop);
        if !g.shops.contains_key(&key) {
            return None;
        }
        let sub = self.sub_from_fixture(&mut g, fixture)?;
        let gid = sub.gid();
        g.record(&key, &sub, Change::Created, SystemTime::now());
        g.shops.get_mut(&key)?.subs.insert(sub.id, sub);
        Some(gid)
    }

    /// Deletes subscription `id` whichever app owns it (the simulator's
    /// handle, the admin API), recording it in the timeline.
    pub fn remove_subscription(&self, shop: &str, id: u64) -> bool {
        self.remove_owned(shop, None, id)
    }

    /// Deletes subscription `id` if `app` owns it (`only` = `None`: any app).
    fn remove_owned(&self, shop: &str, only: Option<Option<&str>>, id: u64) -> bool {
        let mut g = self.lock();
        let key = shop_key(shop);
        let Some(sub) = g.shops.get(&key).and_then(|s| s.subs.get(&id)) else {
            return false;
        };
        if let Some(app) = only
            && !g.same_app(sub.client_id.as_deref(), app)
        {
            return false;
        }
        let sub = g
            .shops
            .get_mut(&key)
            .and_then(|s| s.subs.remove(&id))
            .expect("checked above");
        g.record(&key, &sub, Change::Deleted, SystemTime::now());
        true
    }

    pub fn list(&self, shop: &str, app: Option<&str>, q: &ListQuery) -> Page {
        let g = self.lock();
        let Some(s) = g.shops.get(&shop_key(shop)) else {
            return Page::default();
        };
        let mut items: Vec<&Sub> = s
            .subs
            .values()
            .filter(|sub| g.same_app(sub.client_id.as_deref(), app))
            .filter(|sub| q.topics.as_ref().is_none_or(|t| t.iter().any(|t| t == sub.topic)))
            .filter(|sub| q.format.as_deref().is_none_or(|f| f == sub.format))
            .filter(|sub| q.address.as_deref().is_none_or(|a| a == sub.address))
            .collect();
        if q.reverse {
            items.reverse();
        }
        // Positions relative to a cursor id in the current order.
        let beyond = |sub: &Sub, id: u64| if q.reverse { sub.id < id } else { sub.id > id };
        let start = q
            .after
            .map(|id| items.iter().position(|s| beyond(s, id)).unwrap_or(items.len()))
            .unwrap_or(0);
        let end = q
            .before
            .map(|id| {
                items
                    .iter()
                    .position(|s| beyond(s, id) || s.id == id)
                    .unwrap_or(items.len())
            })
            .unwrap_or(items.len())
            .max(start);
        let mut window = &items[start..end];
        let mut has_next = end < items.len();
        let mut has_previous = start > 0;
        if let Some(n) = q.first
            && window.len() > n
        {
            window = &window[..n];
            has_next = true;
        }
        if let Some(n) = q.last
            && window.len() > n
        {
            window = &window[window.len() - n..];
            has_previous = true;
        }
        Page {
            items: window.iter().map(|s| (*s).clone()).collect(),
            has_next,
            has_previous,
        }
    }

    /// Every rule a create (`current` = `None`) or an update breaks, in
    /// the order: input errors, name, address, topic limit, refused filter.
    fn violations(
        &self,
        g: &Inner,
        shop: &str,
        app: Option<&str>,
        topic: &'static str,
        input: &SubInput,
        current: Option<&Sub>,
    ) -> Vec<UserError> {
        // Every uniqueness rule holds within the caller's app: it cannot see
        // the others' subscriptions, so it cannot collide with them.
        let subs: Vec<&Sub> = g.shops[&shop_key(shop)]
            .subs
            .values()
            .filter(|s| g.same_app(s.client_id.as_deref(), app))
            .collect();
        let except = current.map(|c| c.id);
        let mut errors = input.errors.clone();
        if let Some(Some(name)) = &input.name {
            match check_name(name) {
                Err(m) => errors.push(UserError::new(&["webhookSubscription", "name"], m)),
                Ok(()) => {
                    let taken = subs
                        .iter()
                        .any(|s| Some(s.id) != except && s.name.as_deref() == Some(name.as_str()));
                    if taken {
                        errors.push(UserError::new(&["webhookSubscription", "name"], MSG_NAME_TAKEN));
                    }
                }
            }
        }
        let path = ["webhookSubscription", input.address_field];
        let new_address = match (&input.address, current) {
            (Some(a), Some(c)) if *a == c.address => None,
            (Some(a), _) => Some(a.as_str()),
            (None, Some(_)) => None,
            (None, None) => Some(""),
        };
        if let Some(address) = new_address
            && input.errors.is_empty()
        {
            if let Err(m) = address::check(address, self.allow_insecure, input.accepts) {
                errors.push(UserError::new(&path, m));
            } else if topics::is_cloud_only(topic) && !Endpoint::of(address).is_cloud() {
                errors.push(UserError::new(&path, &cloud_only_message(topic)));
            } else if subs
                .iter()
                .any(|s| Some(s.id) != except && s.topic == topic && s.address == address)
            {
                errors.push(UserError::taken(&path));
            }
        }
        if current.is_none() && topics::is_one_per_shop(topic) && subs.iter().any(|s| s.topic == topic) {
            errors.push(UserError::new(&["topic"], &one_per_shop_message(topic)));
        }
        if let Some(Some(filter)) = &input.filter
            && let Some(m) = g
                .filter_refusals
                .iter()
                .find_map(|r| r.refuses(&shop_key(shop), filter))
        {
            errors.push(UserError::new(&["webhookSubscription", "filter"], m));
        }
        errors
    }

    /// Creates a subscription owned by `app` (the caller's binding).
    pub fn create(
        &self,
        shop: &str,
        app: Option<&str>,
        topic: &'static str,
        input: SubInput,
    ) -> Result<Sub, Vec<UserError>> {
        let mut g = self.lock();
        let key = shop_key(shop);
        if !g.shops.contains_key(&key) {
            return Err(Vec::new());
        }
        let input = normalize(input);
        let errors = self.violations(&g, shop, app, topic, &input, None);
        if !errors.is_empty() {
            return Err(errors);
        }
        let now = Utc::now();
        let sub = Sub {
            id: g.next_sub_id(),
            topic,
            address: input.address.unwrap_or_default(),
            format: input.format.unwrap_or("JSON"),
            include_fields: input.include_fields.unwrap_or_default(),
            metafield_namespaces: input.metafield_namespaces.unwrap_or_default(),
            metafields: input.metafields.unwrap_or_default(),
            filter: input.filter.flatten(),
            name: input.name.flatten(),
            created_at: now,
            updated_at: now,
            api_version: self.webhook_api_version.clone(),
            client_id: app.map(str::to_owned),
        };
        g.record(&key, &sub, Change::Created, SystemTime::from(now));
        g.shops
            .get_mut(&key)
            .expect("checked above")
            .subs
            .insert(sub.id, sub.clone());
        Ok(sub)
    }

    /// Updates the caller's (`app`'s) subscription `id`; another app's
    /// answers like an unknown id.
    pub fn update(
        &self,
        shop: &str,
        app: Option<&str>,
        id: u64,
        input: SubInput,
    ) -> Result<Sub, Vec<UserError>> {
        let mut g = self.lock();
        let key = shop_key(shop);
        let Some(s) = g.shops.get(&key) else {
            return Err(Vec::new());
        };
        let Some(current) = s
            .subs
            .get(&id)
            .filter(|c| g.same_app(c.client_id.as_deref(), app))
        else {
            return Err(vec![UserError::new(&["id"], MSG_NOT_FOUND)]);
        };
        let input = normalize(input);
        let errors = self.violations(&g, shop, app, current.topic, &input, Some(current));
        if !errors.is_empty() {
            return Err(errors);
        }
        let before = current.clone();
        let sub = g
            .shops
            .get_mut(&key)
            .and_then(|s| s.subs.get_mut(&id))
            .expect("checked above");
        if let Some(a) = input.address {
            sub.address = a;
        }
        if let Some(f) = input.format {
            sub.format = f;
        }
        if let Some(v) = input.include_fields {
            sub.include_fields = v;
        }
        if let Some(v) = input.metafield_namespaces {
            sub.metafield_namespaces = v;
        }
        if let Some(v) = input.metafields {
            sub.metafields = v;
        }
        if let Some(v) = input.filter {
            sub.filter = v;
        }
        if let Some(v) = input.name {
            sub.name = v;
        }
        sub.updated_at = Utc::now();
        let after = sub.clone();
        // A move to another address ends the old pair's life and starts the
        // new one's at the same instant; other edits change neither.
        if (before.topic, &before.address) != (after.topic, &after.address) {
            let at = SystemTime::from(after.updated_at);
            g.record(&key, &before, Change::Deleted, at);
            g.record(&key, &after, Change::Created, at);
        }
        Ok(after)
    }

    /// Deletes the caller's (`app`'s) subscription `id`; another app's
    /// answers like an unknown id.
    pub fn delete(&self, shop: &str, app: Option<&str>, id: u64) -> Result<(), Vec<UserError>> {
        if self.remove_owned(shop, Some(app), id) {
            Ok(())
        } else {
            Err(vec![UserError::new(&["id"], MSG_NOT_FOUND)])
        }
    }
}

/// An empty `name` is no name ([U]: the permissive reading).
fn normalize(mut input: SubInput) -> SubInput {
    if let Some(Some(n)) = &input.name
        && n.is_empty()
    {
        input.name = Some(None);
    }
    input
}

/// [U]: Shopify's wording for an HTTPS address on a Pub/Sub- and
/// EventBridge-only topic is not documented.
fn cloud_only_message(topic: &str) -> String {
    let rest = topics::enum_to_rest(topic).unwrap_or(topic);
    format!("Address for topic {rest} must be a Google Cloud Pub/Sub or Amazon EventBridge destination")
}

/// [U]: the wording when a one-subscription topic has one already.
fn one_per_shop_message(topic: &str) -> String {
    let rest = topics::enum_to_rest(topic).unwrap_or(topic);
    format!("Topic {rest} is limited to one subscription per shop")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Fixture, ShopFixture};
    use crate::versions::{DEFAULT_VERSIONS, VersionTable};
    use std::time::Duration;

    fn state() -> SimState {
        let s = SimState::new(
            false,
            Duration::ZERO,
            1000.0,
            100.0,
            "2025-07".into(),
            200,
            VersionTable::new(DEFAULT_VERSIONS).unwrap(),
        );
        s.load(Fixture {
            shops: vec![ShopFixture {
                domain: "a.myshopify.com".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        s
    }

    fn input(addr: &str) -> SubInput {
        SubInput {
            address: Some(addr.into()),
            address_field: "callbackUrl",
            ..Default::default()
        }
    }

    #[test]
    fn same_topic_and_address_is_taken_but_other_topics_are_fine() {
        let s = state();
        s.create(
            "a.myshopify.com",
            None,
            "ORDERS_CREATE",
            input("https://x.example/h"),
        )
        .unwrap();
        let err = s
            .create(
                "a.myshopify.com",
                None,
                "ORDERS_CREATE",
                input("https://x.example/h"),
            )
            .unwrap_err();
        assert_eq!(err[0].message, "Address for this topic has already been taken");
        assert_eq!(
            err[0].field.as_deref().unwrap(),
            ["webhookSubscription", "callbackUrl"]
        );
        s.create(
            "A.MYSHOPIFY.COM",
            None,
            "ORDERS_UPDATED",
            input("https://x.example/h"),
        )
        .unwrap();
        s.create(
            "a.myshopify.com",
            None,
            "ORDERS_CREATE",
            input("https://x.example/h2"),
        )
        .unwrap();
        assert_eq!(s.subscriptions("a.myshopify.com", None).len(), 3);
    }

    #[test]
    fn update_keeps_unset_fields_and_checks_the_new_address() {
        let s = state();
        let a = s
            .create(
                "a.myshopify.com",
                None,
                "ORDERS_CREATE",
                input("https://x.example/a"),
            )
            .unwrap();
        s.create(
            "a.myshopify.com",
            None,
            "ORDERS_CREATE",
            input("https://x.example/b"),
        )
        .unwrap();
        let err = s
            .update("a.myshopify.com", None, a.id, input("https://x.example/b"))
            .unwrap_err();
        assert_eq!(err[0].message, "Address for this topic has already been taken");
        let mut only_format = SubInput {
            format: Some("XML"),
            ..Default::default()
        };
        only_format.address_field = "callbackUrl";
        let u = s.update("a.myshopify.com", None, a.id, only_format).unwrap();
        assert_eq!((u.address.as_str(), u.format), ("https://x.example/a", "XML"));
        let err = s
            .update("a.myshopify.com", None, 999, input("https://x.example/c"))
            .unwrap_err();
        assert_eq!(err[0].field.as_deref().unwrap(), ["id"]);
    }

    #[test]
    fn pagination_windows_follow_relay_rules() {
        let s = state();
        for i in 0..10 {
            s.create(
                "a.myshopify.com",
                None,
                "ORDERS_CREATE",
                input(&format!("https://x.example/{i}")),
            )
            .unwrap();
        }
        let q = |f: fn(&mut ListQuery)| {
            let mut q = ListQuery::default();
            f(&mut q);
            s.list("a.myshopify.com", None, &q)
        };
        let p = q(|q| q.first = Some(4));
        assert_eq!(p.items.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert!(p.has_next && !p.has_previous);
        let p = q(|q| {
            q.first = Some(4);
            q.after = Some(8);
        });
        assert_eq!(p.items.iter().map(|s| s.id).collect::<Vec<_>>(), [9, 10]);
        assert!(!p.has_next && p.has_previous);
        let p = q(|q| {
            q.last = Some(2);
            q.before = Some(5);
        });
        assert_eq!(p.items.iter().map(|s| s.id).collect::<Vec<_>>(), [3, 4]);
        assert!(p.has_next && p.has_previous);
        let p = q(|q| {
            q.first = Some(3);
            q.reverse = true;
        });
        assert_eq!(p.items.iter().map(|s| s.id).collect::<Vec<_>>(), [10, 9, 8]);
    }
}
