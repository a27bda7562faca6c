//! [`ShopifyClient`]: the Admin GraphQL client. This module touches the
//! network (HTTP POSTs to `{root}/admin/api/{version}/graphql.json`).
//!
//! # Retries: what is safe and why
//! * **Reads** (listing, token info) have no effect, so they are retried on
//!   transient failures (5xx, `INTERNAL_SERVER_ERROR`, timeouts, connection
//!   errors) a bounded number of times with exponential backoff and jitter.
//! * **Updates and deletes by id** are idempotent in effect: re-sending sets
//!   the same address again, or deletes an already-deleted id (which then
//!   reports a "does not exist" userError; `ResponseMeta::
//!   resent_after_unknown_outcome` flags that case). They are retried like reads.
//! * A document containing a **create** is not idempotent: if the server
//!   applied it and the response was lost, sending it again makes a second
//!   subscription (or a "taken" error that hides the success). When such a
//!   document fails after it may have reached the server — a timeout, a
//!   connection reset after sending, or any 5xx (the server may have committed
//!   before failing) — the client returns `Transient { outcome_unknown: true }`
//!   and the caller re-lists before planning again. A connect error (nothing
//!   was sent) is retried.
//! * **Throttled** responses (`THROTTLED` or HTTP 429) mean nothing was
//!   executed, so every document — creates included — is re-sent after the
//!   advised wait, a bounded number of times.
//!
//! # Cost awareness
//! Each shop has a [`Bucket`] estimate fed by `extensions.cost`. Before
//! sending, a request reserves its estimated cost (learned per operation from
//! earlier `requestedQueryCost`s) and sleeps until the estimate can pay. The
//! per-shop state sits in one `std::sync::Mutex` that is only held for
//! arithmetic, never across an `.await`, so one shop's wait never delays
//! another shop. A wait longer than `ClientConfig::max_throttle_wait` is
//! returned as `Throttled` instead of slept, so a controller worker is not
//! pinned for minutes.
//!
//! # Secrets
//! The token goes only into the `X-Shopify-Access-Token` header (marked
//! sensitive) of requests to `shop_root(shop)`. Redirects are never followed
//! (reqwest would forward custom headers to the new host). Every error
//! message is scrubbed of the token before it is returned.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt as _;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::bucket::{Bucket, DEFAULT_BUCKET_MAXIMUM, MAX_SINGLE_QUERY_COST, QueryCost};
use super::error::{GraphqlOk, ShopifyError, classify};
use super::graphql::{self, ApiVersion, Document};
use super::token::AccessToken;
use super::types::{Change, ChangeResult, Listing, ResponseMeta, ServedVersion, TokenInfo};

/// Shopify's documented maximum page size for connections.
pub const MAX_PAGE_SIZE: u32 = 250;

/// Points a mutation costs on Shopify (used until the shop reports costs).
pub const DEFAULT_MUTATION_COST: f64 = 10.0;

/// Client settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Admin API root template with a `{shop}` placeholder, e.g.
    /// `https://{shop}` (default) or `http://127.0.0.1:8089/{shop}`.
    pub base_url: String,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (connect, send, response body).
    pub request_timeout: Duration,
    /// Retries after transient failures, for documents that may be retried.
    pub max_retries: u32,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Re-sends after throttled responses before giving up with `Throttled`.
    pub max_throttle_retries: u32,
    /// Longest wait the client sleeps for a shop's bucket or a throttle;
    /// a longer one is returned as `Throttled { retry_after }`.
    pub max_throttle_wait: Duration,
    /// First backoff delay after a transient failure (doubles each retry,
    /// with jitter).
    pub retry_base_delay: Duration,
    /// Cap of the backoff delay.
    pub retry_max_delay: Duration,
    /// Reject shop names that are not `*.myshopify.com` (the token is only
    /// ever sent to the shop's own domain). Turn off only for simulators.
    pub require_myshopify_domain: bool,
    /// `first` of listing pages, at most 250.
    pub page_size: u32,
    /// Upper bound on pages per listing (guards against a looping cursor).
    pub max_pages: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: "https://{shop}".into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            user_agent: concat!("shopify-operator/", env!("CARGO_PKG_VERSION")).into(),
            max_throttle_retries: 5,
            max_throttle_wait: Duration::from_secs(60),
            retry_base_delay: Duration::from_millis(200),
            retry_max_delay: Duration::from_secs(5),
            require_myshopify_domain: true,
            page_size: MAX_PAGE_SIZE,
            max_pages: 1000,
        }
    }
}

/// Counters over the client's lifetime (all shops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientStats {
    /// HTTP requests sent.
    pub requests: u64,
    /// Throttled responses received.
    pub throttled: u64,
    /// Transient failures (5xx, timeouts, connection errors).
    pub transient_failures: u64,
    /// Re-sends (after throttles and transient failures).
    pub retries: u64,
}

/// Whether a document may be re-sent after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Safety {
    /// No effect: always retry.
    Read,
    /// Updates/deletes by id: retry.
    IdempotentWrite,
    /// Contains a create: never re-send once it may have been received.
    Create,
}

/// What a request is, for cost estimates and logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    pub name: &'static str,
    /// Units the cost scales with (changes in a mutation document; else 1).
    pub units: f64,
    /// Cost per unit until the shop has reported one.
    pub default_unit_cost: f64,
}

#[derive(Debug, Default)]
struct ShopState {
    bucket: Option<Bucket>,
    blocked_until: Option<Instant>,
    served: Option<ServedVersion>,
    requests: u64,
    /// Learned `requestedQueryCost` per unit, by operation.
    unit_cost: HashMap<&'static str, f64>,
    /// Learned `actualQueryCost` per unit, by operation.
    unit_actual: HashMap<&'static str, f64>,
}

#[derive(Debug)]
struct Inner {
    cfg: ClientConfig,
    http: reqwest::Client,
    shops: Mutex<HashMap<String, ShopState>>,
    requests: AtomicU64,
    throttled: AtomicU64,
    transient: AtomicU64,
    retries: AtomicU64,
}

/// The Shopify Admin API client: cheap to clone (shared state behind an
/// `Arc`); make one per process.
#[derive(Debug, Clone)]
pub struct ShopifyClient {
    inner: Arc<Inner>,
}

enum SendFailure {
    /// Nothing reached the server (connect failed).
    NotSent(String),
    /// The request may have reached the server.
    Unknown(String),
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
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

    fn with_shop<T>(&self, shop: &str, f: impl FnOnce(&mut ShopState) -> T) -> T {
        let mut shops = self.inner.shops.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = shops.get_mut(shop) {
            return f(s);
        }
        f(shops.entry(shop.to_owned()).or_default())
    }

    /// Every webhook subscription of the shop, following `pageInfo` with
    /// `first: page_size` (250).
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
        let op = Op {
            name: "list",
            units: 1.0,
            default_unit_cost: 2.0 + f64::from(self.inner.cfg.page_size),
        };
        let mut first = self.inner.cfg.page_size;
        let mut pages = 0;
        while pages < self.inner.cfg.max_pages {
            let cursor = after.as_deref();
            let build = |sv: ApiVersion| graphql::list_document(sv, first, cursor);
            let ok = match self.run(shop, v, token, &build, op, Safety::Read, &mut meta).await {
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
                    tracing::info!(shop, requested, maximum, first, "listing page too expensive; shrinking it");
                    continue;
                }
                Err(e) => return Err(e),
            };
            pages += 1;
            let page = graphql::parse_page(&ok)?;
            subscriptions.extend(page.subscriptions);
            match page.next {
                None => return Ok(Listing { subscriptions, meta }),
                Some(c) if !cursors.insert(c.clone()) => {
                    return Err(ShopifyError::Protocol(format!("pagination cursor {c:?} repeated")));
                }
                Some(c) => after = Some(c),
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
                    results.extend(graphql::parse_apply(&ok, part)?);
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

    fn changes_per_document(&self, shop: &str) -> usize {
        let (max, unit) = self.with_shop(shop, |s| {
            (
                s.bucket
                    .as_ref()
                    .map(|b| b.maximum)
                    .unwrap_or(DEFAULT_BUCKET_MAXIMUM),
                s.unit_cost.get("apply").copied().unwrap_or(DEFAULT_MUTATION_COST),
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
            let (shop_name, myshopify_domain, plan, scopes) = graphql::parse_token_info(&ok)?;
            Ok(TokenInfo {
                shop_name,
                myshopify_domain,
                plan,
                scopes,
                meta,
            })
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
                return Err(ShopifyError::Protocol(super::error::join_messages(&ok.errors)));
            }
            Ok((ok.data, meta))
        }
        .await
        .map_err(|e: ShopifyError| e.redacted(token.expose()))
    }

    /// Reserves the estimated cost in the shop's bucket and returns the wait
    /// and the points charged to the estimate (or `Throttled` when the wait
    /// exceeds `max_throttle_wait`; nothing is reserved then).
    fn reserve(&self, shop: &str, op: Op) -> Result<(Duration, f64), ShopifyError> {
        let max_wait = self.inner.cfg.max_throttle_wait;
        let now = Instant::now();
        self.with_shop(shop, |s| {
            let blocked = s
                .blocked_until
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or_default();
            let unit = s.unit_cost.get(op.name).copied().unwrap_or(op.default_unit_cost);
            let requested = unit * op.units;
            let charge = s.unit_actual.get(op.name).map_or(requested, |a| a * op.units);
            let bucket_wait = s
                .bucket
                .as_ref()
                .map(|b| b.wait_for(requested, now))
                .unwrap_or_default();
            let wait = blocked.max(bucket_wait);
            if wait > max_wait {
                return Err(ShopifyError::Throttled { retry_after: wait });
            }
            if let Some(b) = s.bucket.as_mut() {
                b.reserve(requested, charge, now);
            }
            s.requests += 1;
            Ok((wait, charge))
        })
    }

    /// Returns a reservation for a request that got no cost report.
    fn refund(&self, shop: &str, points: f64) {
        let now = Instant::now();
        self.with_shop(shop, |s| {
            if let Some(b) = s.bucket.as_mut() {
                b.refund(points, now);
            }
        });
    }

    fn observe(&self, shop: &str, op: Op, cost: Option<&QueryCost>, meta: &mut ResponseMeta) {
        let Some(cost) = cost else { return };
        meta.requested_cost += cost.requested.unwrap_or(0.0);
        meta.actual_cost += cost.actual.unwrap_or(0.0);
        if cost.throttle.is_some() {
            meta.throttle_status = cost.throttle;
        }
        let now = Instant::now();
        self.with_shop(shop, |s| {
            if let Some(t) = cost.throttle {
                match s.bucket.as_mut() {
                    Some(b) => b.observe(t, now),
                    None => s.bucket = Some(Bucket::from_status(t, now)),
                }
            }
            let units = op.units.max(1.0);
            if let Some(r) = cost.requested.filter(|r| *r > 0.0) {
                s.unit_cost.insert(op.name, r / units);
            }
            if let Some(a) = cost.actual.filter(|a| *a >= 0.0) {
                s.unit_actual.insert(op.name, a / units);
            }
        });
    }

    /// The version documents are built for: the one the shop last served
    /// for this requested version, else the requested one.
    fn schema_version(&self, shop: &str, requested: ApiVersion, requested_str: &str) -> ApiVersion {
        self.with_shop(shop, |s| {
            s.served
                .as_ref()
                .filter(|sv| sv.requested == requested_str)
                .and_then(|sv| sv.served.parse().ok())
                .unwrap_or(requested)
        })
    }

    fn note_versions(&self, shop: &str, headers: &HeaderMap, meta: &mut ResponseMeta) -> Option<String> {
        let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let served = h("x-shopify-api-version");
        let reason = h("x-shopify-api-deprecated-reason");
        if reason.is_some() {
            meta.deprecated_reason.clone_from(&reason);
        }
        let served = served?;
        meta.served_version = Some(served.clone());
        let sv = ServedVersion {
            requested: meta.requested_version.clone(),
            served,
            deprecated_reason: reason,
            observed_at: chrono::Utc::now(),
        };
        self.with_shop(shop, |s| {
            let changed = s.served.as_ref().is_none_or(|old| {
                old.served != sv.served || old.deprecated_reason != sv.deprecated_reason
            });
            if changed && (sv.fell_forward() || sv.deprecated_reason.is_some()) {
                tracing::warn!(shop, requested = %sv.requested, served = %sv.served,
                    deprecated_reason = ?sv.deprecated_reason, "Shopify served another API version or flagged a deprecation");
            }
            s.served = Some(sv);
        });
        meta.served_version.clone()
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cfg = &self.inner.cfg;
        let exp = cfg
            .retry_base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(cfg.retry_max_delay);
        let ms = exp.as_millis() as u64;
        let jittered = if ms >= 2 {
            rand::rng().random_range(ms / 2..=ms)
        } else {
            ms
        };
        Duration::from_millis(jittered)
    }

    async fn send(
        &self,
        url: &str,
        token: &HeaderValue,
        body: Vec<u8>,
    ) -> Result<(u16, HeaderMap, Vec<u8>), SendFailure> {
        let resp = self
            .inner
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header("X-Shopify-Access-Token", token.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let msg = error_chain(&e);
                if e.is_connect() || e.is_builder() {
                    SendFailure::NotSent(msg)
                } else {
                    SendFailure::Unknown(msg)
                }
            })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SendFailure::Unknown(format!("reading response: {}", error_chain(&e))))?;
        Ok((status, headers, body.to_vec()))
    }

    /// Sends one document with the retry rules in the module docs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run(
        &self,
        shop: &str,
        version: ApiVersion,
        token: &AccessToken,
        build: &(dyn Fn(ApiVersion) -> Document + Sync),
        op: Op,
        safety: Safety,
        meta: &mut ResponseMeta,
    ) -> Result<GraphqlOk, ShopifyError> {
        let cfg = &self.inner.cfg;
        let url = format!(
            "{}/admin/api/{}/graphql.json",
            self.shop_root(shop),
            meta.requested_version
        );
        // Build for the version the shop actually serves: after a fall-forward
        // across a schema change the requested version's fields would not
        // validate.
        let mut schema = self.schema_version(shop, version, &meta.requested_version);
        let mut rebuilt = false;
        let mut header = HeaderValue::from_str(token.expose()).map_err(|_| {
            ShopifyError::InvalidInput("access token contains characters not allowed in a header".into())
        })?;
        header.set_sensitive(true);
        let mut body = build(schema).body();
        let mut transient_tries = 0u32;
        let mut throttle_tries = 0u32;
        loop {
            let (wait, charged) = self.reserve(shop, op)?;
            if !wait.is_zero() {
                tracing::debug!(
                    shop,
                    op = op.name,
                    wait_ms = wait.as_millis() as u64,
                    "waiting for the shop's cost bucket"
                );
                tokio::time::sleep(wait).await;
                meta.waited += wait;
            }
            meta.requests += 1;
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            let (message, not_sent) = match self.send(&url, &header, body.clone()).await {
                Ok((status, headers, bytes)) => {
                    let served = self.note_versions(shop, &headers, meta);
                    let retry_after = headers.get("retry-after").and_then(|v| v.to_str().ok());
                    let cl = classify(status, retry_after, &bytes);
                    if cl.cost.is_some() {
                        self.observe(shop, op, cl.cost.as_ref(), meta);
                    } else {
                        self.refund(shop, charged);
                    }
                    tracing::debug!(shop, op = op.name, status, requested_cost = ?cl.cost.and_then(|c| c.requested), ok = cl.result.is_ok(), "shopify graphql");
                    match cl.result {
                        Ok(ok) => return Ok(ok),
                        Err(ShopifyError::Throttled { retry_after }) => {
                            self.inner.throttled.fetch_add(1, Ordering::Relaxed);
                            if let Some(QueryCost {
                                requested: Some(r),
                                throttle: Some(t),
                                ..
                            }) = cl.cost
                                && r > t.maximum_available
                            {
                                return Err(ShopifyError::QueryTooExpensive {
                                    requested: r,
                                    maximum: t.maximum_available,
                                });
                            }
                            throttle_tries += 1;
                            if throttle_tries > cfg.max_throttle_retries
                                || retry_after > cfg.max_throttle_wait
                            {
                                return Err(ShopifyError::Throttled { retry_after });
                            }
                            tracing::info!(
                                shop,
                                op = op.name,
                                retry_after_ms = retry_after.as_millis() as u64,
                                "throttled by Shopify; waiting"
                            );
                            let until = Instant::now() + retry_after;
                            self.with_shop(shop, |s| {
                                s.blocked_until = Some(s.blocked_until.map_or(until, |b| b.max(until)));
                            });
                            meta.retries += 1;
                            self.inner.retries.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Err(ShopifyError::Transient { message, .. }) => (message, false),
                        Err(ShopifyError::Protocol(m)) => {
                            // A validation error under a fall-forward: nothing
                            // ran; rebuild once for the served schema.
                            match served.and_then(|s| s.parse::<ApiVersion>().ok()) {
                                Some(sv) if !rebuilt && sv.features() != schema.features() => {
                                    tracing::info!(shop, op = op.name, served = %sv, "rebuilding the document for the served API version");
                                    schema = sv;
                                    body = build(schema).body();
                                    rebuilt = true;
                                    meta.retries += 1;
                                    continue;
                                }
                                _ => return Err(ShopifyError::Protocol(m)),
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(SendFailure::NotSent(m)) => {
                    self.refund(shop, charged);
                    (m, true)
                }
                Err(SendFailure::Unknown(m)) => {
                    self.refund(shop, charged);
                    (m, false)
                }
            };
            self.inner.transient.fetch_add(1, Ordering::Relaxed);
            if !not_sent && safety == Safety::Create {
                tracing::warn!(shop, op = op.name, error = %message, "create may or may not have been applied; not re-sending");
                return Err(ShopifyError::Transient {
                    message,
                    outcome_unknown: true,
                });
            }
            if transient_tries >= cfg.max_retries {
                return Err(ShopifyError::Transient {
                    message,
                    outcome_unknown: false,
                });
            }
            if !not_sent && safety == Safety::IdempotentWrite {
                meta.resent_after_unknown_outcome = true;
            }
            transient_tries += 1;
            meta.retries += 1;
            self.inner.retries.fetch_add(1, Ordering::Relaxed);
            let delay = self.backoff(transient_tries);
            tracing::info!(shop, op = op.name, error = %message, attempt = transient_tries, delay_ms = delay.as_millis() as u64, "transient Shopify failure; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let c = client(ClientConfig {
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_millis(1000),
            ..Default::default()
        });
        for _ in 0..50 {
            let d1 = c.backoff(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = c.backoff(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d9 = c.backoff(40);
            assert!(
                d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1000),
                "{d9:?}"
            );
        }
    }

    #[test]
    fn reserve_is_per_shop_and_bounded() {
        use super::super::bucket::ThrottleStatus;
        let c = client(ClientConfig {
            max_throttle_wait: Duration::from_secs(5),
            ..Default::default()
        });
        let op = Op {
            name: "list",
            units: 1.0,
            default_unit_cost: 100.0,
        };
        // No state yet: no wait.
        assert_eq!(c.reserve("a.myshopify.com", op).unwrap().0, Duration::ZERO);
        let empty = QueryCost {
            requested: Some(100.0),
            actual: Some(100.0),
            throttle: Some(ThrottleStatus {
                maximum_available: 1000.0,
                currently_available: 0.0,
                restore_rate: 100.0,
            }),
        };
        let mut meta = ResponseMeta::default();
        c.observe("a.myshopify.com", op, Some(&empty), &mut meta);
        assert_eq!(meta.requested_cost, 100.0);
        let (w, charged) = c.reserve("a.myshopify.com", op).unwrap();
        assert_eq!(charged, 100.0);
        assert!(
            w > Duration::from_millis(900) && w <= Duration::from_secs(1),
            "{w:?}"
        );
        // The next caller queues behind the first one.
        let (w2, _) = c.reserve("a.myshopify.com", op).unwrap();
        assert!(w2 > Duration::from_millis(1900), "{w2:?}");
        // Another shop is unaffected.
        assert_eq!(c.reserve("b.myshopify.com", op).unwrap().0, Duration::ZERO);
        // A wait beyond max_throttle_wait is returned, not slept.
        let big = Op {
            name: "list",
            units: 8.0,
            default_unit_cost: 100.0,
        };
        assert!(matches!(
            c.reserve("a.myshopify.com", big),
            Err(ShopifyError::Throttled { .. })
        ));
        assert_eq!(c.shop_request_count("a.myshopify.com"), 3);
        // Refunds of failed requests take the queue back down.
        c.refund("a.myshopify.com", 200.0);
        let (w3, _) = c.reserve("a.myshopify.com", op).unwrap();
        assert!(w3 < w2, "{w3:?} {w2:?}");
    }

    #[test]
    fn reservations_charge_the_learned_actual_cost() {
        use super::super::bucket::ThrottleStatus;
        let c = client(ClientConfig::default());
        let op = Op {
            name: "list",
            units: 1.0,
            default_unit_cost: 752.0,
        };
        let cost = QueryCost {
            requested: Some(752.0),
            actual: Some(5.0),
            throttle: Some(ThrottleStatus {
                maximum_available: 1000.0,
                currently_available: 995.0,
                restore_rate: 100.0,
            }),
        };
        c.observe("a.myshopify.com", op, Some(&cost), &mut ResponseMeta::default());
        for _ in 0..20 {
            let (w, charged) = c.reserve("a.myshopify.com", op).unwrap();
            assert_eq!((w, charged), (Duration::ZERO, 5.0));
        }
    }

    #[test]
    fn changes_per_document_follows_bucket_and_learned_cost() {
        use super::super::bucket::ThrottleStatus;
        let c = client(ClientConfig::default());
        assert_eq!(c.changes_per_document("a.myshopify.com"), 100);
        let op = Op {
            name: "apply",
            units: 4.0,
            default_unit_cost: 10.0,
        };
        let cost = QueryCost {
            requested: Some(80.0),
            actual: Some(80.0),
            throttle: Some(ThrottleStatus {
                maximum_available: 2000.0,
                currently_available: 1920.0,
                restore_rate: 100.0,
            }),
        };
        c.observe("a.myshopify.com", op, Some(&cost), &mut ResponseMeta::default());
        assert_eq!(c.changes_per_document("a.myshopify.com"), 100); // 2000 / 20
    }
}
