//! [`ShopifyClient`]: the Admin GraphQL client. This module touches the
//! network (HTTP POSTs to `{root}/admin/api/{version}/graphql.json`).
//!
//!
//! How requests are sent, retried and paced is in `exec.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::bucket::{Bucket, DEFAULT_BUCKET_MAXIMUM, MAX_SINGLE_QUERY_COST};
pub use super::config::{ClientConfig, ClientStats, DEFAULT_MUTATION_COST, MAX_PAGE_SIZE};
use super::error::ShopifyError;
use super::exec::{Op, Safety, error_chain};
use super::graphql::{self, ApiVersion, Document};
use super::parse;
use super::token::AccessToken;
use super::types::{Change, ChangeResult, Listing, ResponseMeta, ServedVersion, TokenInfo};

#[derive(Debug, Default)]
pub(super) struct ShopState {
    pub(super) bucket: Option<Bucket>,
    pub(super) blocked_until: Option<Instant>,
    pub(super) served: Option<ServedVersion>,
    pub(super) requests: u64,
    /// Learned `requestedQueryCost` per unit, by operation.
    pub(super) unit_cost: Learned,
    /// Learned `actualQueryCost` per unit, by operation.
    pub(super) unit_actual: Learned,
    /// How many subscriptions the last complete listing found.
    pub(super) listed: Option<usize>,
}

/// How long a shop's connection is kept after its last request.
const IDLE_CONNECTION: Duration = Duration::from_secs(5);

/// A number learned per operation: a short list, not a map, since a shop
/// sees a handful of operations and the client keeps one per shop (a hash
/// map's table was most of a shop's state at 10,000 shops).
#[derive(Debug, Default)]
pub(super) struct Learned(Vec<(&'static str, f64)>);

impl Learned {
    /// The value learned for `op`, if any.
    pub(super) fn get(&self, op: &str) -> Option<f64> {
        self.0.iter().find(|(name, _)| *name == op).map(|(_, v)| *v)
    }

    /// Learns `value` for `op`.
    pub(super) fn insert(&mut self, op: &'static str, value: f64) {
        match self.0.iter_mut().find(|(name, _)| *name == op) {
            Some(slot) => slot.1 = value,
            None => self.0.push((op, value)),
        }
    }
}

/// The first page of a listing: what the shop had last time plus room to
/// grow, or [`FIRST_PAGE_UNKNOWN`]. A connection's requested cost scales
/// with `first` and must be available in the bucket before Shopify runs the
/// query (the unused part is refunded after), so a 250-node page needs a
/// nearly full bucket on every pass: the app's other clients of the same
/// shop (sync jobs) would hold the operator's listing back for seconds.
fn first_page(listed: Option<usize>, page_size: u32) -> u32 {
    let hint = listed.map_or(FIRST_PAGE_UNKNOWN, |n| {
        u32::try_from(n.saturating_add(n / 2).saturating_add(10)).unwrap_or(u32::MAX)
    });
    hint.min(page_size).max(1)
}

/// The first page of a shop never listed: most shops of an app have a few
/// dozen subscriptions; more are read on further pages.
const FIRST_PAGE_UNKNOWN: u32 = 100;

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) cfg: ClientConfig,
    pub(super) http: reqwest::Client,
    /// Boxed: the table then holds a pointer per shop, not the whole state
    /// (a table keeps up to twice the slots it fills).
    pub(super) shops: Mutex<HashMap<String, Box<ShopState>>>,
    pub(super) requests: AtomicU64,
    pub(super) throttled: AtomicU64,
    pub(super) transient: AtomicU64,
    pub(super) retries: AtomicU64,
}

/// The Shopify Admin API client: cheap to clone (shared state behind an
/// `Arc`); make one per process.
#[derive(Debug, Clone)]
pub struct ShopifyClient {
    pub(super) inner: Arc<Inner>,
}

/// True for `^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$`.
pub fn is_valid_shop_domain(shop: &str) -> bool {
    let Some(name) = shop.strip_suffix(".myshopify.com") else {
        return false;
    };
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_host_name(shop: &str) -> bool {
    !shop.is_empty()
        && shop.len() <= 253
        && shop
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !shop.starts_with(['.', '-'])
        && !shop.contains("..")
}

impl ShopifyClient {
    /// Builds the client (no request is sent).
    pub fn new(cfg: ClientConfig) -> Result<Self, ShopifyError> {
        if !cfg.base_url.contains("{shop}") {
            return Err(ShopifyError::InvalidInput(format!(
                "base URL {:?} has no {{shop}} placeholder",
                cfg.base_url
            )));
        }
        if !(cfg.base_url.starts_with("https://") || cfg.base_url.starts_with("http://")) {
            return Err(ShopifyError::InvalidInput(format!(
                "base URL {:?} is not http(s)",
                cfg.base_url
            )));
        }
        if cfg.page_size == 0 || cfg.page_size > MAX_PAGE_SIZE {
            return Err(ShopifyError::InvalidInput(format!(
                "page size {} is not in 1..=250",
                cfg.page_size
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(cfg.user_agent.clone())
            .tcp_nodelay(true)
            // Each shop is its own host, so each keeps its own connection:
            // one pass reuses it (token check, list, mutations back to
            // back), and the next pass comes a resync interval later, long
            // after Shopify's keep-alive. reqwest's default 90 s kept every
            // shop of a cold start's last 90 s connected (TLS state and
            // buffers each) for nothing.
            .pool_idle_timeout(IDLE_CONNECTION)
            .build()
            .map_err(|e| ShopifyError::InvalidInput(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(ShopifyClient {
            inner: Arc::new(Inner {
                cfg,
                http,
                shops: Mutex::new(HashMap::new()),
                requests: AtomicU64::new(0),
                throttled: AtomicU64::new(0),
                transient: AtomicU64::new(0),
                retries: AtomicU64::new(0),
            }),
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The Admin API root of a shop: `base_url` with `{shop}` substituted and
    /// no trailing `/`. The token is only ever sent below this URL.
    pub fn shop_root(&self, shop_domain: &str) -> String {
        self.inner
            .cfg
            .base_url
            .replace("{shop}", shop_domain)
            .trim_end_matches('/')
            .to_owned()
    }

    /// Checks that `shop` is a plain host name (and a `*.myshopify.com` one
    /// unless `require_myshopify_domain` is off), so it cannot redirect the
    /// token to another host through the URL template.
    pub fn check_shop(&self, shop: &str) -> Result<(), ShopifyError> {
        if !is_host_name(shop) {
            return Err(ShopifyError::InvalidInput(format!(
                "shop {shop:?} is not a host name"
            )));
        }
        if self.inner.cfg.require_myshopify_domain && !is_valid_shop_domain(shop) {
            return Err(ShopifyError::InvalidInput(format!(
                "shop {shop:?} is not a *.myshopify.com domain"
            )));
        }
        Ok(())
    }

    fn prepare(&self, shop: &str, version: &str) -> Result<ApiVersion, ShopifyError> {
        self.check_shop(shop)?;
        version.parse()
    }

    /// Total HTTP requests sent (all shops, retries and pages included).
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// HTTP requests sent to one shop.
    pub fn shop_request_count(&self, shop: &str) -> u64 {
        self.with_shop(shop, |s| s.requests)
    }

    /// Lifetime counters.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            requests: self.inner.requests.load(Ordering::Relaxed),
            throttled: self.inner.throttled.load(Ordering::Relaxed),
            transient_failures: self.inner.transient.load(Ordering::Relaxed),
            retries: self.inner.retries.load(Ordering::Relaxed),
        }
    }

    /// The version the shop's last response was served with
    /// (`X-Shopify-Api-Version`) and its deprecation header; `None` before
    /// any response carrying the header.
    pub fn last_served_version(&self, shop: &str) -> Option<ServedVersion> {
        self.with_shop(shop, |s| s.served.clone())
    }

    /// The client's current estimate of the shop's bucket, if it has one.
    pub fn bucket_estimate(&self, shop: &str) -> Option<Bucket> {
        self.with_shop(shop, |s| s.bucket.clone())
    }

    pub(super) fn with_shop<T>(&self, shop: &str, f: impl FnOnce(&mut ShopState) -> T) -> T {
        let mut shops = self.inner.shops.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = shops.get_mut(shop) {
            return f(s);
        }
        f(shops.entry(shop.to_owned()).or_default())
    }

    /// Every webhook subscription of the shop, following `pageInfo`: the
    /// first page sized to what the shop had last time, further pages of
    /// `page_size` (250).
    pub async fn list_subscriptions(
        &self,
        shop: &str,
        version: &str,
        token: &AccessToken,
    ) -> Result<Listing, ShopifyError> {
        self.list_inner(shop, version, token)
            .await
            .map_err(|e| e.redacted(token.expose()))
    }

    async fn list_inner(
        &self,
        shop: &str,
        version: &str,
        token: &AccessToken,
    ) -> Result<Listing, ShopifyError> {
        let v = self.prepare(shop, version)?;
        let mut meta = ResponseMeta {
            requested_version: version.to_owned(),
            ..Default::default()
        };
        let mut subscriptions = Vec::new();
        let mut after: Option<String> = None;
        let mut cursors = HashSet::new();
        // The largest page the shop can pay for (shrunk if Shopify says a
        // page costs more than its bucket holds).
        let mut full = self.inner.cfg.page_size;
        let mut first = first_page(self.with_shop(shop, |s| s.listed), full);
        let mut pages = 0;
        while pages < self.inner.cfg.max_pages {
            let cursor = after.as_deref();
            // Cost scales with the page: learned per node, so a small page
            // reserves little of the bucket.
            let op = Op {
                name: "list",
                units: f64::from(first),
                default_unit_cost: 4.0,
            };
            let build =
                |sv: ApiVersion| graphql::list_document(sv, first.min(graphql::max_list_page(sv)), cursor);
            let ok = match self
                .run(shop, v, token, &build, op, Safety::Read, &mut meta)
                .await
            {
                Ok(ok) => ok,
                // The page costs more than the shop can ever pay (a smaller
                // bucket than assumed): shrink the page and ask again.
                Err(ShopifyError::QueryTooExpensive { requested, maximum }) if first > 1 => {
                    let scaled = (f64::from(first) * maximum / requested * 0.95).floor();
                    first = if scaled.is_finite() && scaled >= 1.0 {
                        (scaled as u32).min(first - 1)
                    } else {
                        first / 2
                    }
                    .max(1);
                    full = full.min(first);
                    full = full.min(first);
                    tracing::info!(
                        shop,
                        requested,
                        maximum,
                        first,
                        "listing page too expensive; shrinking it"
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            pages += 1;
            let page = parse::parse_page(&ok)?;
            subscriptions.extend(page.subscriptions);
            match page.next {
                None => {
                    let n = subscriptions.len();
                    self.with_shop(shop, |s| s.listed = Some(n));
                    return Ok(Listing { subscriptions, meta });
                }
                Some(c) if !cursors.insert(c.clone()) => {
                    return Err(ShopifyError::Protocol(format!(
                        "pagination cursor {c:?} repeated"
                    )));
                }
                Some(c) => {
                    after = Some(c);
                    // There are more than expected: read the rest in full pages.
                    first = full;
                }
            }
        }
        Err(ShopifyError::Protocol(format!(
            "more than {} pages of webhook subscriptions",
            self.inner.cfg.max_pages
        )))
    }

    /// Applies all `changes` in one GraphQL document (aliases `c0`, `c1`, …);
    /// results come back in the order of `changes`, a change rejected with
    /// `userErrors` as `ChangeResult::Failed` without affecting the others.
    /// The plan is split into several documents only when its cost would
    /// exceed the shop's bucket. On `Err`, earlier documents of a split plan
    /// may have been applied: re-list.
    pub async fn apply(
        &self,
        shop: &str,
        version: &str,
        token: &AccessToken,
        changes: &[Change],
    ) -> Result<Vec<ChangeResult>, ShopifyError> {
        Ok(self.apply_with_meta(shop, version, token, changes).await?.0)
    }

    /// [`Self::apply`] plus the call's [`ResponseMeta`].
    pub async fn apply_with_meta(
        &self,
        shop: &str,
        version: &str,
        token: &AccessToken,
        changes: &[Change],
    ) -> Result<(Vec<ChangeResult>, ResponseMeta), ShopifyError> {
        self.apply_inner(shop, version, token, changes)
            .await
            .map_err(|e| e.redacted(token.expose()))
    }

    /// Applies one change; a rejected change is `Err(UserErrors)`.
    pub async fn apply_one(
        &self,
        shop: &str,
        version: &str,
        token: &AccessToken,
        change: Change,
    ) -> Result<ChangeResult, ShopifyError> {
        let mut r = self
            .apply(shop, version, token, std::slice::from_ref(&change))
            .await?;
        match r.pop() {
            Some(ChangeResult::Failed { user_errors }) => Err(ShopifyError::UserErrors(user_errors)),
            Some(other) => Ok(other),
            None => Err(ShopifyError::Protocol("no result".into())),
        }
    }

    async fn apply_inner(
        &self,
        shop: &str,
        version: &str,
        token: &AccessToken,
        changes: &[Change],
    ) -> Result<(Vec<ChangeResult>, ResponseMeta), ShopifyError> {
        let v = self.prepare(shop, version)?;
        let mut meta = ResponseMeta {
            requested_version: version.to_owned(),
            ..Default::default()
        };
        let mut results = Vec::with_capacity(changes.len());
        let mut chunk = self.changes_per_document(shop).max(1);
        let mut start = 0;
        while start < changes.len() {
            let end = changes.len().min(start + chunk);
            let part = &changes[start..end];
            let safety = if part.iter().any(Change::is_create) {
                Safety::Create
            } else {
                Safety::IdempotentWrite
            };
            let op = Op {
                name: "apply",
                units: part.len() as f64,
                default_unit_cost: DEFAULT_MUTATION_COST,
            };
            let build = |sv: ApiVersion| graphql::apply_document(sv, part);
            match self.run(shop, v, token, &build, op, safety, &mut meta).await {
                Ok(ok) => {
                    results.extend(parse::parse_apply(&ok, part)?);
                    start = end;
                }
                Err(ShopifyError::QueryTooExpensive { requested, maximum }) if part.len() > 1 => {
                    let unit = requested / part.len() as f64;
                    let fit = (maximum / unit).floor();
                    chunk = if fit.is_finite() && fit >= 1.0 {
                        (fit as usize).min(part.len() - 1)
                    } else {
                        part.len() / 2
                    }
                    .max(1);
                    tracing::info!(shop, requested, maximum, chunk, "splitting webhook changes");
                }
                Err(e) => return Err(e),
            }
        }
        Ok((results, meta))
    }

    pub(super) fn changes_per_document(&self, shop: &str) -> usize {
        let (max, unit) = self.with_shop(shop, |s| {
            (
                s.bucket
                    .as_ref()
                    .map(|b| b.maximum)
                    .unwrap_or(DEFAULT_BUCKET_MAXIMUM),
                s.unit_cost.get("apply").unwrap_or(DEFAULT_MUTATION_COST),
            )
        });
        let n = (max.min(MAX_SINGLE_QUERY_COST) / unit.max(0.001)).floor();
        if n.is_finite() && n >= 1.0 { n as usize } else { 1 }
    }

    /// Shop name, domain, plan and the token's granted scopes, in one request.
    pub async fn token_info(
        &self,
        shop: &str,
        version: &str,
        token: &AccessToken,
    ) -> Result<TokenInfo, ShopifyError> {
        async {
            let v = self.prepare(shop, version)?;
            let mut meta = ResponseMeta {
                requested_version: version.to_owned(),
                ..Default::default()
            };
            let op = Op {
                name: "token_info",
                units: 1.0,
                default_unit_cost: 3.0,
            };
            let ok = self
                .run(
                    shop,
                    v,
                    token,
                    &graphql::token_info_document,
                    op,
                    Safety::Read,
                    &mut meta,
                )
                .await?;
            let (shop_name, myshopify_domain, plan, scopes, api_key) = parse::parse_token_info(&ok)?;
            Ok(TokenInfo {
                shop_name,
                myshopify_domain,
                plan,
                scopes,
                api_key,
                meta,
            })
        }
        .await
        .map_err(|e: ShopifyError| e.redacted(token.expose()))
    }

    /// Uninstalls the token's app from the shop (`appUninstall`, Admin API
    /// 2025-07 and later): Shopify deletes the app's subscriptions there and
    /// revokes its tokens, this one included. A version before 2025-07 is
    /// refused before anything is sent; `userErrors` become
    /// [`ShopifyError::UserErrors`] with the code leading each message.
    /// Never re-sent after an unknown outcome: a repeat would meet a
    /// revoked token.
    pub async fn app_uninstall(
        &self,
        shop: &str,
        version: &str,
        token: &AccessToken,
    ) -> Result<(), ShopifyError> {
        async {
            let v = self.prepare(shop, version)?;
            if !v.has_app_uninstall() {
                return Err(ShopifyError::InvalidInput(format!(
                    "appUninstall needs Admin API 2025-07 or later, not {version}"
                )));
            }
            let mut meta = ResponseMeta {
                requested_version: version.to_owned(),
                ..Default::default()
            };
            let op = Op {
                name: "app_uninstall",
                units: 1.0,
                default_unit_cost: DEFAULT_MUTATION_COST,
            };
            let build = |_: ApiVersion| graphql::app_uninstall_document();
            let ok = self
                .run(shop, v, token, &build, op, Safety::Create, &mut meta)
                .await?;
            parse::parse_app_uninstall(&ok)
        }
        .await
        .map_err(|e: ShopifyError| e.redacted(token.expose()))
    }

    /// Sends an arbitrary GraphQL document and returns `data` (partial
    /// `errors` make it a `Protocol` error). A document starting with
    /// `mutation` gets create semantics (never re-sent after an unknown
    /// outcome); anything else is retried as a read.
    pub async fn graphql(
        &self,
        shop: &str,
        version: &str,
        token: &AccessToken,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<(serde_json::Value, ResponseMeta), ShopifyError> {
        async {
            let v = self.prepare(shop, version)?;
            let mut meta = ResponseMeta {
                requested_version: version.to_owned(),
                ..Default::default()
            };
            let safety = if query.trim_start().starts_with("mutation") {
                Safety::Create
            } else {
                Safety::Read
            };
            let op = Op {
                name: "graphql",
                units: 1.0,
                default_unit_cost: 1.0,
            };
            let build = |_: ApiVersion| Document {
                query: query.to_owned(),
                variables: variables.clone(),
            };
            let ok = self.run(shop, v, token, &build, op, safety, &mut meta).await?;
            if !ok.errors.is_empty() {
                return Err(ShopifyError::Protocol(super::response::join_messages(&ok.errors)));
            }
            Ok((ok.data, meta))
        }
        .await
        .map_err(|e: ShopifyError| e.redacted(token.expose()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_page_fits_what_the_shop_had() {
        assert_eq!(first_page(None, 250), FIRST_PAGE_UNKNOWN);
        assert_eq!(first_page(None, 20), 20);
        assert_eq!(first_page(Some(0), 250), 10);
        assert_eq!(first_page(Some(9), 250), 23);
        assert_eq!(first_page(Some(200), 250), 250);
        assert_eq!(first_page(Some(usize::MAX), 250), 250);
    }

    use super::*;

    #[test]
    fn learned_costs_are_kept_per_operation_and_replaced() {
        let mut learned = Learned::default();
        assert_eq!(learned.get("list"), None);
        learned.insert("list", 3.0);
        learned.insert("apply", 10.0);
        learned.insert("list", 2.5);
        assert_eq!(learned.get("list"), Some(2.5));
        assert_eq!(learned.get("apply"), Some(10.0));
        assert_eq!(learned.get("token_info"), None);
        assert_eq!(learned.0.len(), 2, "one entry per operation");
    }

    fn client(cfg: ClientConfig) -> ShopifyClient {
        ShopifyClient::new(cfg).unwrap()
    }

    #[test]
    fn shop_domains() {
        assert!(is_valid_shop_domain("pop-sockets.myshopify.com"));
        assert!(is_valid_shop_domain("a1.myshopify.com"));
        for bad in [
            "-a.myshopify.com",
            ".myshopify.com",
            "a.b.myshopify.com",
            "a.myshopify.com.evil.com",
            "evil.com",
            "a.myshopify.com/",
            "a_b.myshopify.com",
            "a.MYSHOPIFY.com",
            "",
        ] {
            assert!(!is_valid_shop_domain(bad), "{bad}");
        }
        let c = client(ClientConfig::default());
        assert!(c.check_shop("pop.myshopify.com").is_ok());
        assert!(matches!(
            c.check_shop("evil.com"),
            Err(ShopifyError::InvalidInput(_))
        ));
        let lax = client(ClientConfig {
            require_myshopify_domain: false,
            ..Default::default()
        });
        assert!(lax.check_shop("shop-a").is_ok());
        for bad in ["evil.com/x?", "a@evil.com", "a:1", "", "..", "a b", "x#"] {
            assert!(lax.check_shop(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_validation_and_roots() {
        assert!(
            ShopifyClient::new(ClientConfig {
                base_url: "https://fixed".into(),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            ShopifyClient::new(ClientConfig {
                base_url: "ftp://{shop}".into(),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            ShopifyClient::new(ClientConfig {
                page_size: 251,
                ..Default::default()
            })
            .is_err()
        );
        let c = client(ClientConfig::default());
        assert_eq!(c.shop_root("pop.myshopify.com"), "https://pop.myshopify.com");
        let c = client(ClientConfig {
            base_url: "http://127.0.0.1:9/{shop}/".into(),
            ..Default::default()
        });
        assert_eq!(
            c.shop_root("pop.myshopify.com"),
            "http://127.0.0.1:9/pop.myshopify.com"
        );
    }
}
