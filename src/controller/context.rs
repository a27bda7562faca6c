//! Shared state of all reconciles: settings, the clients, the token-check
//! cache, which passes ran recently, per-shop backoff, and Events. No
//! reconcile logic; publishing an Event is its only I/O. Kept beside the
//! two controllers rather than in `shop/`: it is the operator's handle
//! (`run`, the tests and the demo build it), and `watches` takes both
//! controllers' settings and client from it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::events::EventType;
use kube::{Client, Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::clock;
use crate::crd::ShopifyShop;
use crate::metrics::Metrics;
use crate::names::FIELD_MANAGER;
use shopify_admin::{AccessToken, ShopifyClient, TokenInfo};

/// Tunables of the controller.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often every shop is re-listed for drift.
    pub resync_interval: Duration,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// Watch only this namespace.
    pub namespace: Option<String>,
    /// Consecutive failed Jobs of a sync that make `SyncHealthy` False.
    pub sync_failure_threshold: u32,
    /// Shop domains (or `*` globs) the operator may talk to; empty = all.
    pub allowed_shops: Vec<String>,
    /// Refresh expiring access tokens this long before `expires-at`.
    pub refresh_ahead: Duration,
    /// The operator's public host, when it subscribes its own
    /// `app/uninstalled` endpoint for every shop with app credentials.
    pub uninstall_host: Option<String>,
    /// A certificate that expires within this margin does not let webhooks
    /// move to its host (the certificate gate).
    pub certificate_margin: Duration,
    /// Only ShopifyShops this label selector matches (sharding).
    pub label_selector: Option<String>,
    /// The operator's public URL (`--public-url`): where its OAuth routes
    /// are, for the install URL a move to another app shows.
    pub public_url: Option<url::Url>,
}

impl Settings {
    /// Defaults for tests and the demo.
    pub fn with_resync(resync_interval: Duration) -> Self {
        Settings {
            resync_interval,
            concurrency: 16,
            namespace: None,
            sync_failure_threshold: 3,
            allowed_shops: Vec::new(),
            refresh_ahead: Duration::from_secs(300),
            uninstall_host: None,
            certificate_margin: Duration::from_secs(24 * 3600),
            label_selector: None,
            public_url: None,
        }
    }
}

/// Token checks already done, by shop uid, generation and a fingerprint of
/// the token, so a resync of an unchanged shop costs one list request and
/// nothing more (the list fails with 401 too when the token is revoked). A
/// spec change re-checks. In memory only: the fingerprint never leaves the
/// process.
#[derive(Default)]
pub struct TokenChecks(Mutex<Checks>);

#[derive(Default)]
struct Checks {
    by_uid: HashMap<String, TokenCheck>,
    /// Scope lists, each kept once: the shops of one app share one (a
    /// shop's own copy was half of its entry). Bounded by the distinct
    /// scope sets the apps were granted, so never pruned.
    scopes: std::collections::HashSet<Arc<[String]>>,
}

/// One check: only what a later pass reads of Shopify's answer.
struct TokenCheck {
    fingerprint: [u8; 32],
    generation: Option<i64>,
    at: std::time::Instant,
    shop_name: Box<str>,
    myshopify_domain: Box<str>,
    scopes: Arc<[String]>,
    api_key: Option<Box<str>>,
}

impl TokenCheck {
    /// The answer as the pass saw it (its cost and versions were the first
    /// pass's, so they are not kept).
    fn info(&self) -> TokenInfo {
        TokenInfo {
            shop_name: self.shop_name.to_string(),
            myshopify_domain: self.myshopify_domain.to_string(),
            plan: None,
            scopes: self.scopes.to_vec(),
            api_key: self.api_key.as_deref().map(str::to_string),
            meta: Default::default(),
        }
    }
}

impl TokenChecks {
    /// The token as the cache (and the reuse key of a pass) knows it: a
    /// hash, so the token itself is never kept.
    pub(super) fn fingerprint(token: &AccessToken) -> [u8; 32] {
        Sha256::digest(token.expose().as_bytes()).into()
    }

    /// The cached check for this shop, if made with this token for this
    /// generation less than `max_age` ago.
    pub fn get(&self, shop: &ShopifyShop, token: &AccessToken, max_age: Duration) -> Option<TokenInfo> {
        let checks = self.0.lock().expect("token cache");
        checks
            .by_uid
            .get(&shop.uid().unwrap_or_default())
            .filter(|c| {
                c.fingerprint == Self::fingerprint(token)
                    && c.generation == shop.metadata.generation
                    && c.at.elapsed() < max_age
            })
            .map(TokenCheck::info)
    }

    /// Remembers a successful check.
    pub fn put(&self, shop: &ShopifyShop, token: &AccessToken, info: TokenInfo) {
        let mut checks = self.0.lock().expect("token cache");
        let scopes = match checks.scopes.get(info.scopes.as_slice()) {
            Some(shared) => shared.clone(),
            None => {
                let shared: Arc<[String]> = info.scopes.into();
                checks.scopes.insert(shared.clone());
                shared
            }
        };
        let check = TokenCheck {
            fingerprint: Self::fingerprint(token),
            generation: shop.metadata.generation,
            at: std::time::Instant::now(),
            shop_name: info.shop_name.into(),
            myshopify_domain: info.myshopify_domain.into(),
            scopes,
            api_key: info.api_key.map(String::into_boxed_str),
        };
        checks.by_uid.insert(shop.uid().unwrap_or_default(), check);
    }

    /// Forgets the shop's check (401, a token for another shop).
    pub fn forget(&self, uid: &str) {
        self.0.lock().expect("token cache").by_uid.remove(uid);
    }
}

/// An Event to publish about the shop being reconciled.
#[derive(Debug, Clone)]
pub struct Note {
    type_: EventType,
    pub(super) reason: &'static str,
    action: &'static str,
    pub(super) message: String,
}

impl Note {
    /// A note; `message` must not carry a secret.
    pub fn new(type_: EventType, reason: &'static str, action: &'static str, message: String) -> Self {
        Note {
            type_,
            reason,
            action,
            message,
        }
    }
}

/// Shared state of all reconciles.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Shopify client (per-shop cost buckets inside).
    pub shopify: ShopifyClient,
    /// Controller settings.
    pub settings: Settings,
    /// Token checks done.
    pub token_checks: TokenChecks,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Where "now" comes from (schedules).
    pub clock: Arc<dyn clock::Clock>,
    /// Set once the initial list of ShopifyShops has been synced.
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// The certificate gate's verdicts and the shops it holds back.
    pub gate: super::shop::gate::Gate,
    /// ShopifyApps, once the watch has listed them (`spec.appRef`).
    pub(super) apps: std::sync::OnceLock<kube::runtime::reflector::Store<crate::crd::ShopifyApp>>,
    /// Ingresses, as the trigger watch sees them (no GET per pass).
    pub(super) ingresses:
        std::sync::OnceLock<kube::runtime::reflector::Store<k8s_openapi::api::networking::v1::Ingress>>,
    events: super::events::Publisher,
    failures: Mutex<HashMap<String, u32>>,
    passes: Mutex<HashMap<String, RecentPass>>,
}

/// A settled webhooks pass of one shop, kept so that a reconcile caused by
/// something else may reuse it instead of asking Shopify again.
struct RecentPass {
    /// What the pass depended on, hashed (`webhooks::reuse::pass_key`).
    key: u64,
    at: std::time::Instant,
    /// The fingerprint of the outcome as the status stored after the pass
    /// records it; `None` until that status is known to be stored.
    stored: Option<u64>,
}

impl RecentPass {
    /// Whether a pass with `key`, looking at a status whose outcome has
    /// fingerprint `stored`, may reuse this one.
    fn reusable(&self, key: u64, stored: u64, resync: Duration) -> bool {
        self.key == key && self.stored == Some(stored) && self.at.elapsed() + Duration::from_secs(1) < resync
    }
}

impl Context {
    /// A context for `client` and `shopify`.
    pub fn new(client: Client, shopify: ShopifyClient, settings: Settings) -> Self {
        Context {
            events: super::events::Publisher::new(
                client.clone(),
                FIELD_MANAGER,
                std::env::var("POD_NAME").ok(),
            ),
            client,
            shopify,
            settings,
            token_checks: TokenChecks::default(),
            gate: Default::default(),
            apps: std::sync::OnceLock::new(),
            ingresses: std::sync::OnceLock::new(),
            metrics: Arc::new(Metrics::new()),
            clock: Arc::new(clock::SystemClock),
            ready: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            failures: Mutex::new(HashMap::new()),
            passes: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether the webhooks pass for these inputs ran successfully less
    /// than a resync interval ago and the status at hand (`stored`: its
    /// outcome's fingerprint) is the one stored after it: then a reconcile
    /// caused by something else (a Job finishing, a schedule slot) reuses
    /// that status and skips the Shopify list. The store may still hold an
    /// older status (a Job's event can overtake the status write); reusing
    /// that would write what it says (an old host) back.
    pub(super) fn recent_pass(&self, uid: &str, key: u64, stored: u64) -> bool {
        let passes = self.passes.lock().expect("passes");
        passes
            .get(uid)
            .is_some_and(|p| p.reusable(key, stored, self.settings.resync_interval))
    }

    /// Records a webhooks pass (`ok`: settled enough to reuse) or forgets
    /// the last one.
    pub(super) fn record_pass(&self, uid: &str, key: u64, ok: bool) {
        let mut passes = self.passes.lock().expect("passes");
        if ok {
            let pass = RecentPass {
                key,
                at: std::time::Instant::now(),
                stored: None,
            };
            passes.insert(uid.to_string(), pass);
        } else {
            passes.remove(uid);
        }
    }

    /// Records that the status now stored for the shop carries the
    /// outcome with fingerprint `stored` (written, or already equal).
    pub(super) fn record_stored(&self, uid: &str, stored: u64) {
        if let Some(p) = self.passes.lock().expect("passes").get_mut(uid) {
            p.stored = Some(stored);
        }
    }

    /// Whether the shop still belongs to this operator's shard, asked of
    /// the apiserver (the store may lag a label change that moved it); an
    /// apiserver error counts as no (the pass retries). Always yes without
    /// `--watch-label-selector`.
    pub(super) async fn still_ours(&self, shop: &ShopifyShop) -> bool {
        let Some(selector) = &self.settings.label_selector else {
            return true;
        };
        let api: kube::Api<ShopifyShop> =
            kube::Api::namespaced(self.client.clone(), &shop.namespace().unwrap_or_default());
        let params = kube::api::ListParams::default()
            .labels(selector)
            .fields(&format!("metadata.name={}", shop.name_any()));
        match api.list_metadata(&params).await {
            Ok(list) if list.items.is_empty() => {
                tracing::info!("the shop is no longer this shard's: its new owner acts on it");
                false
            }
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether the shop is still this shard's");
                false
            }
        }
    }

    /// Publishes `note` about `shop` (a repeat within minutes counts on
    /// the first Event's series).
    pub(super) async fn publish(&self, shop: &ShopifyShop, note: &Note) {
        let message: String = note.message.chars().take(1000).collect();
        let draft = super::events::Draft {
            type_: match note.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            },
            reason: note.reason,
            action: note.action,
            note: &message,
        };
        self.events.publish(&draft, &shop.object_ref(&())).await;
    }

    /// Per-shop backoff: 2 s doubling to the resync interval; reset on
    /// success.
    pub(super) fn backoff(&self, uid: &str, failed: bool) -> Option<Duration> {
        let mut f = self.failures.lock().expect("failures");
        if !failed {
            f.remove(uid);
            return None;
        }
        let n = f.entry(uid.to_string()).or_insert(0);
        *n = (*n + 1).min(16);
        let secs = 2u64.saturating_mul(1 << (*n - 1).min(10));
        Some(Duration::from_secs(secs).min(self.settings.resync_interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop(uid: &str, generation: i64) -> ShopifyShop {
        serde_norway::from_str(&format!(
            "metadata: {{name: s, namespace: oms, uid: {uid}, generation: {generation}}}\n\
             spec: {{domain: s.myshopify.com, token: {{secretRef: {{name: t}}}}}}\n"
        ))
        .expect("shop")
    }

    fn info(domain: &str, scopes: &[&str]) -> TokenInfo {
        TokenInfo {
            shop_name: "Shop".into(),
            myshopify_domain: domain.into(),
            plan: Some("Basic".into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            api_key: Some("client-id".into()),
            meta: Default::default(),
        }
    }

    #[test]
    fn a_token_check_keeps_what_a_pass_reads_and_shares_scope_lists() {
        let checks = TokenChecks::default();
        let (a, b) = (shop("uid-a", 1), shop("uid-b", 1));
        let token = AccessToken::new("shpat_a".into());
        let scopes = ["read_orders", "read_products"];
        checks.put(&a, &token, info("a.myshopify.com", &scopes));
        checks.put(&b, &token, info("b.myshopify.com", &scopes));
        let got = checks.get(&a, &token, Duration::MAX).expect("cached");
        assert_eq!(got.myshopify_domain, "a.myshopify.com");
        assert_eq!(got.shop_name, "Shop");
        assert_eq!(got.scopes, scopes);
        assert_eq!(got.api_key.as_deref(), Some("client-id"));
        let map = checks.0.lock().unwrap();
        assert_eq!(map.scopes.len(), 1, "one list for both shops");
        assert!(Arc::ptr_eq(
            &map.by_uid["uid-a"].scopes,
            &map.by_uid["uid-b"].scopes
        ));
        drop(map);
        // Another token, another generation or a forgotten shop: asked again.
        assert!(
            checks
                .get(&a, &AccessToken::new("shpat_b".into()), Duration::MAX)
                .is_none()
        );
        assert!(checks.get(&shop("uid-a", 2), &token, Duration::MAX).is_none());
        checks.forget("uid-a");
        assert!(checks.get(&a, &token, Duration::MAX).is_none());
        assert!(checks.get(&b, &token, Duration::MAX).is_some());
    }

    #[test]
    fn a_pass_is_reused_only_from_the_status_stored_after_it() {
        let resync = Duration::from_secs(300);
        let mut pass = RecentPass {
            key: 7,
            at: std::time::Instant::now(),
            stored: None,
        };
        // Until its status is known to be stored, the store holds the
        // previous one.
        assert!(!pass.reusable(7, 1, resync));
        pass.stored = Some(2);
        assert!(pass.reusable(7, 2, resync));
        // A store that lags the write still holds the old status.
        assert!(!pass.reusable(7, 1, resync));
        // Other inputs, or a pass older than a resync, run again.
        assert!(!pass.reusable(8, 2, resync));
        assert!(!pass.reusable(7, 2, Duration::from_secs(1)));
    }
}
