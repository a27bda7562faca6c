//! The simulator's shared state: shops, their subscriptions, buckets and
//! subscription timelines, counters, armed faults, the apps and OAuth
//! codes, behind one mutex that is never held across an `.await` (the
//! subscription rules are in `subs.rs`, the token rules in `oauth.rs`).
//!
//! Tokens, subscriptions and cost buckets belong to an app, as on Shopify.
//! Each records its app's client id as an `Option`: `None` is "the default
//! app", resolved at the time of use to the first loaded app (or `""` when
//! none is loaded), so fixtures written for one app — or loaded before
//! their app — keep meaning that app.

use super::bucket::{Bucket, ThrottleStatus};
use super::counters::Counters;
use super::faults::{self, Armed, Effect, Fault, FilterRefusal};
use super::fixture::{AppFixture, Fixture, ShopFixture, SubscriptionFixture, parse_format};
use super::oauth::{AccessToken, CodeGrant, RefreshToken};
use super::subs::Sub;
use super::timeline::{Change, TimelineEntry};
use super::topics;
use super::versions::VersionTable;
use chrono::Utc;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

pub(crate) struct Shop {
    pub name: String,
    pub plan: String,
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    pub subs: BTreeMap<u64, Sub>,
    /// Cost buckets by the resolved client id: Shopify's bucket is per app
    /// and store. Created full on an app's first request.
    pub buckets: HashMap<String, Bucket>,
    /// Every subscription that started or stopped existing, in order.
    pub timeline: Vec<TimelineEntry>,
    /// Scopes OAuth-issued tokens get: the union of the fixture tokens' scopes.
    pub scopes: Vec<String>,
    /// Non-expiring tokens migrated by token exchange, by original token.
    pub migrations: HashMap<String, super::oauth::Migration>,
}

pub(crate) struct Inner {
    pub shops: HashMap<String, Shop>,
    pub counters: HashMap<String, Counters>,
    pub faults: Vec<Armed>,
    /// Armed [`Fault::RefuseFilter`]s, consulted by the subscription rules.
    pub filter_refusals: Vec<FilterRefusal>,
    /// Every app; the first is "the" app (see [`Fixture::app`]). Few enough
    /// that a scan beats a map, and a map would lose which one is first.
    pub apps: Vec<AppFixture>,
    pub codes: HashMap<String, CodeGrant>,
    next_sub_id: u64,
}

/// Everything the server task and the [`super::Sim`] handles share.
pub(crate) struct SimState {
    inner: Mutex<Inner>,
    latency_us: AtomicU64,
    pub allow_insecure: bool,
    pub bucket_size: f64,
    pub restore_rate: f64,
    pub webhook_api_version: String,
    pub throttled_http_status: u16,
    pub versions: VersionTable,
}

/// Shop keys are domains compared case-insensitively, like DNS names.
pub(crate) fn shop_key(shop: &str) -> String {
    shop.to_ascii_lowercase()
}

impl Inner {
    /// Subscription ids increase globally, across shops, like Shopify's.
    pub fn next_sub_id(&mut self) -> u64 {
        let id = self.next_sub_id;
        self.next_sub_id += 1;
        id
    }

    /// The app with this `client_id`.
    pub fn app(&self, client_id: &str) -> Option<&AppFixture> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    /// "The" app of a single-app fixture: the default app, which codes,
    /// tokens and subscriptions that name no app are bound to.
    pub fn first_app(&self) -> Option<&AppFixture> {
        self.apps.first()
    }

    /// The client id an optional binding means now: itself, or the default
    /// app's (`""` when no app is loaded).
    pub fn resolve<'a>(&'a self, client_id: Option<&'a str>) -> &'a str {
        client_id.unwrap_or_else(|| self.first_app().map_or("", |a| a.client_id.as_str()))
    }

    /// Whether two bindings name the same app now.
    pub fn same_app(&self, a: Option<&str>, b: Option<&str>) -> bool {
        self.resolve(a) == self.resolve(b)
    }

    /// Records that `sub` of the shop under `key` started or stopped
    /// existing at `at`, with the app that owns it.
    pub fn record(&mut self, key: &str, sub: &Sub, change: Change, at: SystemTime) {
        let entry = timeline_entry(self.resolve(sub.client_id.as_deref()), sub, change, at);
        if let Some(shop) = self.shops.get_mut(key) {
            shop.timeline.push(entry);
        }
    }
}

/// A timeline entry for `sub` owned by the (resolved) `client_id`.
pub(crate) fn timeline_entry(client_id: &str, sub: &Sub, change: Change, at: SystemTime) -> TimelineEntry {
    TimelineEntry {
        at,
        client_id: client_id.to_owned(),
        id: sub.gid(),
        topic: topics::enum_to_rest(sub.topic).unwrap_or(sub.topic).to_owned(),
        address: sub.address.clone(),
        change,
    }
}

impl Shop {
    /// The bucket of the app with the resolved `client_id`, created full.
    pub fn bucket(&mut self, client_id: &str, size: f64, rate: f64, now: Instant) -> &mut Bucket {
        self.buckets
            .entry(client_id.to_owned())
            .or_insert_with(|| Bucket::new(size, rate, now))
    }
}

/// `app` takes the first slot, as it replaced the one app before there were
/// several; `apps` entries are added or replaced by `client_id`. Entries the
/// fixture validation would refuse (an empty id) are skipped.
fn merge_apps(loaded: &mut Vec<AppFixture>, app: Option<AppFixture>, apps: Vec<AppFixture>) {
    if let Some(app) = app {
        // Otherwise the same client_id would end up listed twice.
        if let Some(i) = loaded
            .iter()
            .position(|a| a.client_id == app.client_id)
            .filter(|&i| i > 0)
        {
            loaded.remove(i);
        }
        match loaded.first_mut() {
            Some(first) => *first = app,
            None => loaded.push(app),
        }
    }
    for app in apps {
        if app.client_id.is_empty() {
            tracing::warn!("skipping fixture app with an empty clientId");
            continue;
        }
        match loaded.iter_mut().find(|a| a.client_id == app.client_id) {
            Some(slot) => *slot = app,
            None => loaded.push(app),
        }
    }
}

impl SimState {
    pub fn new(
        allow_insecure: bool,
        latency: Duration,
        bucket_size: f64,
        restore_rate: f64,
        webhook_api_version: String,
        throttled_http_status: u16,
        versions: VersionTable,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner {
                shops: HashMap::new(),
                counters: HashMap::new(),
                faults: Vec::new(),
                filter_refusals: Vec::new(),
                apps: Vec::new(),
                codes: HashMap::new(),
                next_sub_id: 1,
            }),
            latency_us: AtomicU64::new(latency.as_micros() as u64),
            allow_insecure,
            bucket_size,
            restore_rate,
            webhook_api_version,
            throttled_http_status,
            versions,
        }
    }

    /// A poisoned lock only means a test panicked mid-request; the data is
    /// still consistent enough for a simulator.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }

    pub fn set_latency(&self, d: Duration) {
        self.latency_us.store(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Adds or replaces shops and apps. Entries the fixture validation would
    /// refuse are skipped with a warning, so a bad entry cannot take a
    /// server down.
    pub fn load(&self, fixture: Fixture) {
        let mut g = self.lock();
        merge_apps(&mut g.apps, fixture.app, fixture.apps);
        for shop in fixture.shops {
            let key = shop_key(&shop.domain);
            let built = self.build_shop(&mut g, shop);
            let old = g.shops.insert(key.clone(), built);
            // A replaced shop's subscriptions end here; its history stays,
            // so a timeline spans reloads.
            let at = SystemTime::now();
            let mut history = Vec::new();
            if let Some(old) = old {
                history = old.timeline;
                for sub in old.subs.values() {
                    history.push(timeline_entry(
                        g.resolve(sub.client_id.as_deref()),
                        sub,
                        Change::Deleted,
                        at,
                    ));
                }
            }
            let created: Vec<TimelineEntry> = g.shops[&key]
                .subs
                .values()
                .map(|sub| timeline_entry(g.resolve(sub.client_id.as_deref()), sub, Change::Created, at))
                .collect();
            history.extend(created);
            if let Some(shop) = g.shops.get_mut(&key) {
                shop.timeline = history;
            }
        }
    }

    fn build_shop(&self, g: &mut Inner, f: ShopFixture) -> Shop {
        let now = Instant::now();
        let mut shop = Shop {
            name: f
                .name
                .clone()
                .unwrap_or_else(|| f.domain.split('.').next().unwrap_or(&f.domain).to_string()),
            plan: f.plan.clone().unwrap_or_else(|| "Basic".into()),
            access: HashMap::new(),
            refresh: HashMap::new(),
            subs: BTreeMap::new(),
            buckets: HashMap::new(),
            timeline: Vec::new(),
            scopes: Vec::new(),
            migrations: HashMap::new(),
        };
        for t in f.tokens {
            for s in &t.scopes {
                if !shop.scopes.contains(s) {
                    shop.scopes.push(s.clone());
                }
            }
            let expires_at = t.expires_in_seconds.map(|s| now + Duration::from_secs(s));
            if let Some(rt) = &t.refresh_token {
                shop.refresh.insert(
                    rt.clone(),
                    RefreshToken::new(t.client_id.clone(), t.scopes.clone(), now, None),
                );
            }
            shop.access.insert(
                t.access_token,
                AccessToken::new(t.client_id, t.scopes, expires_at, Vec::new()),
            );
        }
        for s in f.subscriptions {
            match self.sub_from_fixture(g, &s) {
                Some(sub) => {
                    shop.subs.insert(sub.id, sub);
                }
                None => {
                    tracing::warn!(shop = %f.domain, topic = %s.topic, "skipping invalid fixture subscription")
                }
            }
        }
        shop
    }

    pub(crate) fn sub_from_fixture(&self, g: &mut Inner, s: &SubscriptionFixture) -> Option<Sub> {
        let topic = topics::lookup_enum(&s.topic)?;
        let format = match &s.format {
            Some(f) => parse_format(f)?,
            None => "JSON",
        };
        let now = Utc::now();
        Some(Sub {
            id: g.next_sub_id(),
            topic,
            address: s.address.clone(),
            format,
            include_fields: s.include_fields.clone(),
            metafield_namespaces: s.metafield_namespaces.clone(),
            metafields: s.metafields.clone(),
            filter: s.filter.clone(),
            name: s.name.clone(),
            created_at: now,
            updated_at: now,
            api_version: self.webhook_api_version.clone(),
            client_id: s.client_id.clone(),
        })
    }

    /// Updates one shop's counters (created on first use, also for shops
    /// that do not exist, so a test can see requests to a wrong domain).
    pub fn count(&self, shop: &str, f: impl FnOnce(&mut Counters)) {
        let mut g = self.lock();
        f(g.counters.entry(shop_key(shop)).or_default());
    }

    pub fn counters(&self, shop: &str) -> Counters {
        self.lock()
            .counters
            .get(&shop_key(shop))
            .cloned()
            .unwrap_or_default()
    }

    pub fn all_counters(&self) -> BTreeMap<String, Counters> {
        self.lock()
            .counters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn reset_counters(&self) {
        self.lock().counters.clear();
    }

    /// Every secret value the simulator knows or has issued: access and
    /// refresh tokens (also revoked and retired ones), authorization codes
    /// and the apps' client secrets.
    pub fn known_secrets(&self) -> Vec<String> {
        let g = self.lock();
        let mut out: Vec<String> = g
            .shops
            .values()
            .flat_map(|s| s.access.keys().chain(s.refresh.keys()).chain(s.migrations.keys()))
            .chain(g.codes.keys())
            .cloned()
            .collect();
        for app in &g.apps {
            out.push(app.client_secret.clone());
            out.extend(app.previous_client_secret.clone());
        }
        out
    }

    pub fn shop_exists(&self, shop: &str) -> bool {
        self.lock().shops.contains_key(&shop_key(shop))
    }

    pub fn inject(&self, fault: Fault) {
        let mut g = self.lock();
        if let Fault::DrainBucket { shop } = &fault {
            // Every app's bucket, and the default app's even before its
            // first request: the fault predates per-app buckets, and a test
            // draining "the shop" means whichever app it talks as.
            let default = g.resolve(None).to_owned();
            if let Some(s) = g.shops.get_mut(&shop_key(shop)) {
                let now = Instant::now();
                s.bucket(&default, self.bucket_size, self.restore_rate, now);
                s.buckets.values_mut().for_each(|b| b.drain(now));
            }
            return;
        }
        if let Some(refusal) = FilterRefusal::from_fault(&fault) {
            g.filter_refusals.push(refusal);
            return;
        }
        if let Some(armed) = Armed::from_fault(&fault) {
            g.faults.push(armed);
        }
    }

    pub fn clear_faults(&self) {
        let mut g = self.lock();
        g.faults.clear();
        g.filter_refusals.clear();
    }

    pub fn take_fault(&self, shop: &str, kind: faults::RequestKind) -> Option<Effect> {
        faults::take(&mut self.lock().faults, &shop_key(shop), kind)
    }

    /// Runs `f` on the bucket of `app` (a token's binding) at the shop.
    fn with_bucket<T>(
        &self,
        shop: &str,
        app: Option<&str>,
        f: impl FnOnce(&mut Bucket, Instant) -> T,
    ) -> Option<T> {
        let mut g = self.lock();
        let client_id = g.resolve(app).to_owned();
        let s = g.shops.get_mut(&shop_key(shop))?;
        let now = Instant::now();
        Some(f(
            s.bucket(&client_id, self.bucket_size, self.restore_rate, now),
            now,
        ))
    }

    /// Takes `cost` from the app's bucket at the shop (`Err` = throttled,
    /// nothing taken).
    pub fn bucket_take(
        &self,
        shop: &str,
        app: Option<&str>,
        cost: u64,
    ) -> Result<ThrottleStatus, ThrottleStatus> {
        self.with_bucket(shop, app, |b, now| b.try_take(cost as f64, now))
            .unwrap_or_else(|| Err(self.empty_status()))
    }

    pub fn bucket_refund(&self, shop: &str, app: Option<&str>, points: u64) -> ThrottleStatus {
        self.with_bucket(shop, app, |b, now| b.refund(points as f64, now))
            .unwrap_or_else(|| self.empty_status())
    }

    /// The bucket of `app` (`None`: the default app's) at the shop.
    pub fn bucket_status(&self, shop: &str, app: Option<&str>) -> ThrottleStatus {
        self.with_bucket(shop, app, |b, now| b.status_at(now))
            .unwrap_or_else(|| self.empty_status())
    }

    /// The shop's timeline, in the order things happened.
    pub fn timeline(&self, shop: &str) -> Vec<TimelineEntry> {
        self.lock()
            .shops
            .get(&shop_key(shop))
            .map(|s| s.timeline.clone())
            .unwrap_or_default()
    }

    /// The largest cost a single query may request.
    pub fn max_query_cost(&self) -> u64 {
        // Shopify's single-query limit is 1000; a smaller bucket could never
        // pay for more than its size either.
        self.bucket_size.min(1000.0) as u64
    }

    fn empty_status(&self) -> ThrottleStatus {
        Bucket::new(self.bucket_size, self.restore_rate, Instant::now()).status_at(Instant::now())
    }

    pub fn shop_info(&self, shop: &str) -> Option<(String, String)> {
        self.lock()
            .shops
            .get(&shop_key(shop))
            .map(|s| (s.name.clone(), s.plan.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, secret: &str) -> AppFixture {
        AppFixture {
            client_id: id.into(),
            client_secret: secret.into(),
            previous_client_secret: None,
        }
    }

    fn ids(apps: &[AppFixture]) -> Vec<(&str, &str)> {
        apps.iter()
            .map(|a| (a.client_id.as_str(), a.client_secret.as_str()))
            .collect()
    }

    #[test]
    fn app_replaces_the_first_app_and_apps_merge_by_client_id() {
        let mut loaded = Vec::new();
        merge_apps(&mut loaded, Some(app("a", "1")), vec![app("b", "1")]);
        assert_eq!(ids(&loaded), [("a", "1"), ("b", "1")]);
        // A rotation of the first app keeps the others.
        merge_apps(&mut loaded, Some(app("a", "2")), vec![]);
        assert_eq!(ids(&loaded), [("a", "2"), ("b", "1")]);
        merge_apps(
            &mut loaded,
            None,
            vec![app("b", "2"), app("c", "1"), app("", "x")],
        );
        assert_eq!(ids(&loaded), [("a", "2"), ("b", "2"), ("c", "1")]);
        // Promoting a later app to `app` must not leave it listed twice.
        merge_apps(&mut loaded, Some(app("c", "2")), vec![]);
        assert_eq!(ids(&loaded), [("c", "2"), ("b", "2")]);
    }

    #[test]
    fn apps_alone_make_their_first_the_first_app() {
        let mut loaded = Vec::new();
        merge_apps(&mut loaded, None, vec![app("s", "1"), app("p", "1")]);
        assert_eq!(ids(&loaded), [("s", "1"), ("p", "1")]);
    }
}
