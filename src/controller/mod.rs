//! The ShopifyShop controller: wiring (watches, concurrency), the reconcile
//! pipeline, `error_policy`, the finalizer and status writes.
//!
//! Reconcile reads like this: fetch what the shop references (token Secret,
//! Ingress) → the webhooks duty (token check, list, plan, apply) → build the
//! status (pure) → write it only if it changed. Talks to the apiserver and to
//! Shopify.

pub mod clock;
pub mod conditions;
pub mod fetch;
mod finalizer;
pub mod host;
pub mod migrate;
pub mod plan;
pub mod refresh;
pub mod scopes;
pub mod sync;
pub mod token;
pub mod token_store;
pub mod uninstalled;
mod watches;
pub mod webhooks;

pub use watches::run;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::crd::{DeletionPolicy, ShopifyShop, ShopifyShopStatus};
use crate::metrics::Metrics;
use crate::shopify::{AccessToken, ShopifyClient, TokenInfo};
use conditions::{Cond, READY, Status, TOKEN_VALID, WEBHOOKS_SYNCED};

/// The field manager of every write this operator makes.
pub const FIELD_MANAGER: &str = "shopify-operator";
/// Added when `deletionPolicy: Delete`, so subscriptions can be removed
/// before the resource goes.
pub const FINALIZER: &str = "shopify-operator.dev/cleanup";

/// Errors that make a reconcile fail and back off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver refused or failed a request.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The resource has no namespace (the CRD is namespaced; never expected).
    #[error("ShopifyShop without a namespace")]
    NoNamespace,
}

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
}

/// Whether `domain` matches one of `patterns` (`*` matches any run of
/// characters); an empty list allows every shop.
pub fn shop_allowed(patterns: &[String], domain: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    patterns.is_empty()
        || patterns
            .iter()
            .any(|p| glob(p.trim().as_bytes(), domain.as_bytes()))
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
        }
    }
}

/// Token checks already done, by shop uid, generation and a fingerprint of
/// the token, so a resync of an unchanged shop costs one list request and
/// nothing more (the list fails with 401 too when the token is revoked). A
/// spec change re-checks. In memory only: the fingerprint never leaves the
/// process.
#[derive(Default)]
pub struct TokenChecks(Mutex<HashMap<String, TokenCheck>>);

struct TokenCheck {
    fingerprint: [u8; 32],
    generation: Option<i64>,
    at: std::time::Instant,
    info: TokenInfo,
}

impl TokenChecks {
    fn fingerprint(token: &AccessToken) -> [u8; 32] {
        Sha256::digest(token.expose().as_bytes()).into()
    }

    /// The cached check for this shop, if made with this token for this
    /// generation less than `max_age` ago.
    pub fn get(&self, shop: &ShopifyShop, token: &AccessToken, max_age: Duration) -> Option<TokenInfo> {
        let map = self.0.lock().expect("token cache");
        map.get(&shop.uid().unwrap_or_default())
            .filter(|c| {
                c.fingerprint == Self::fingerprint(token)
                    && c.generation == shop.metadata.generation
                    && c.at.elapsed() < max_age
            })
            .map(|c| c.info.clone())
    }

    /// Remembers a successful check.
    pub fn put(&self, shop: &ShopifyShop, token: &AccessToken, info: TokenInfo) {
        let check = TokenCheck {
            fingerprint: Self::fingerprint(token),
            generation: shop.metadata.generation,
            at: std::time::Instant::now(),
            info,
        };
        self.0
            .lock()
            .expect("token cache")
            .insert(shop.uid().unwrap_or_default(), check);
    }

    /// Forgets the shop's check (401, a token for another shop).
    pub fn forget(&self, uid: &str) {
        self.0.lock().expect("token cache").remove(uid);
    }
}

/// An Event to publish about the shop being reconciled.
#[derive(Debug, Clone)]
pub struct Note {
    type_: EventType,
    reason: &'static str,
    action: &'static str,
    message: String,
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
    recorder: Recorder,
    failures: Mutex<HashMap<String, u32>>,
    passes: Mutex<HashMap<String, (u64, std::time::Instant)>>,
}

impl Context {
    /// A context for `client` and `shopify`.
    pub fn new(client: Client, shopify: ShopifyClient, settings: Settings) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            shopify,
            settings,
            token_checks: TokenChecks::default(),
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
    /// than a resync interval ago: then a reconcile caused by something
    /// else (a Job finishing, a schedule slot) skips the Shopify list.
    fn recent_pass(&self, uid: &str, key: u64) -> bool {
        let passes = self.passes.lock().expect("passes");
        passes.get(uid).is_some_and(|(k, at)| {
            *k == key && at.elapsed() + Duration::from_secs(1) < self.settings.resync_interval
        })
    }

    fn record_pass(&self, uid: &str, key: u64, ok: bool) {
        let mut passes = self.passes.lock().expect("passes");
        if ok {
            passes.insert(uid.to_string(), (key, std::time::Instant::now()));
        } else {
            passes.remove(uid);
        }
    }

    async fn publish(&self, shop: &ShopifyShop, note: &Note) {
        let event = KubeEvent {
            type_: note.type_,
            reason: note.reason.into(),
            note: Some(note.message.chars().take(1000).collect()),
            action: note.action.into(),
            secondary: None,
        };
        // An Event that can't be written (namespace terminating, RBAC) must
        // never block the reconcile.
        if let Err(e) = self.recorder.publish(&event, &shop.object_ref(&())).await {
            tracing::debug!(error = %e, "event not published");
        }
    }

    /// Per-shop backoff: 2 s doubling to the resync interval; reset on
    /// success.
    fn backoff(&self, uid: &str, failed: bool) -> Option<Duration> {
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

fn now() -> Time {
    // Stored times have second precision; so do ours, so a re-read status
    // compares equal to the one written.
    let ts = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

/// Builds the next status from the outcome (pure).
fn next_status(
    shop: &ShopifyShop,
    out: &webhooks::Outcome,
    syncs: &sync::Outcome,
    time: &Time,
    extra: usize,
) -> ShopifyShopStatus {
    let mut status = shop.status.clone().unwrap_or_default();
    let generation = shop.metadata.generation;
    status.observed_generation = generation;
    let ready = conditions::ready(&[&out.token, &out.webhooks, &syncs.cond]);
    for c in [&out.token, &out.webhooks, &syncs.cond, &ready] {
        conditions::set(&mut status.conditions, c, generation, time);
    }
    status.webhook_host = out.host.clone();
    if let Some(topics) = &out.topics {
        status.webhooks = topics.clone();
    }
    let desired = shop.spec.webhooks.as_ref().map(|w| w.topics.len()).unwrap_or(0) + extra;
    let in_sync = status.webhooks.iter().filter(|w| w.state == "InSync").count();
    status.webhooks_in_sync = Some(format!("{in_sync}/{desired}"));
    status.unmanaged_subscriptions = out.unmanaged;
    status.served_api_version = out.served_version.clone();
    status.sync = syncs.entries.clone();
    status.last_sync_time = syncs.last_sync_time.clone();
    status.sync_now_handled = syncs.trigger_handled.clone();
    status
}

/// The webhooks outcome as the status recorded it, to reuse when nothing
/// the webhooks depend on changed since a recent pass.
fn outcome_from_status(shop: &ShopifyShop) -> Option<webhooks::Outcome> {
    let status = shop.status.as_ref()?;
    let cond = |type_: &'static str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.observed_generation == shop.metadata.generation)
            .map(|c| {
                let st = match c.status.as_str() {
                    "True" => Status::True,
                    "False" => Status::False,
                    _ => Status::Unknown,
                };
                Cond::new(type_, st, &c.reason, c.message.clone())
            })
    };
    Some(webhooks::Outcome {
        token: cond(TOKEN_VALID)?,
        webhooks: cond(WEBHOOKS_SYNCED)?,
        host: status.webhook_host.clone(),
        topics: Some(status.webhooks.clone()),
        unmanaged: status.unmanaged_subscriptions,
        served_version: status.served_api_version.clone(),
        retry_in: None,
        notes: Vec::new(),
        failed: false,
    })
}

/// What the webhooks pass depends on, hashed.
fn pass_key(shop: &ShopifyShop, host: &Option<Result<String, host::HostError>>, token: &AccessToken) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    shop.metadata.generation.hash(&mut h);
    format!("{host:?}").hash(&mut h);
    TokenChecks::fingerprint(token).hash(&mut h);
    h.finish()
}

async fn write_status(ctx: &Context, shop: &ShopifyShop, mut status: ShopifyShopStatus) -> Result<(), Error> {
    // `appUninstalled` belongs to the uninstall endpoint: never applied
    // here, so the controller neither owns nor resets it.
    status.app_uninstalled = None;
    let mut current = shop.status.clone();
    if let Some(c) = current.as_mut() {
        c.app_uninstalled = None;
    }
    if current.as_ref() == Some(&status) {
        return Ok(());
    }
    let ns = shop.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<ShopifyShop> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = serde_json::json!({
        "apiVersion": ShopifyShop::api_version(&()),
        "kind": ShopifyShop::kind(&()),
        "status": status,
    });
    api.patch_status(
        &shop.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    ctx.metrics.status_writes.inc();
    Ok(())
}

/// Token problems before any Shopify call: the whole outcome.
fn token_unreadable(shop: &ShopifyShop, e: &fetch::TokenError) -> webhooks::Outcome {
    webhooks::Outcome::new(
        Cond::new(TOKEN_VALID, Status::False, e.reason(), e.message()),
        Cond::new(
            WEBHOOKS_SYNCED,
            Status::Unknown,
            "TokenInvalid",
            "no valid token to check subscriptions with",
        ),
        shop,
    )
}

/// A shop outside `--allowed-shops`: nothing is sent to Shopify for it.
fn not_allowed(shop: &ShopifyShop) -> webhooks::Outcome {
    let msg = format!(
        "{} is not in the operator's --allowed-shops; nothing is sent to it",
        shop.spec.domain
    );
    webhooks::Outcome::new(
        Cond::new(TOKEN_VALID, Status::False, "ShopNotAllowed", msg.clone()),
        Cond::new(WEBHOOKS_SYNCED, Status::Unknown, "ShopNotAllowed", msg),
        shop,
    )
}

/// Reconciles one ShopifyShop.
pub async fn reconcile(shop: Arc<ShopifyShop>, ctx: Arc<Context>) -> Result<Action, Error> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "reconcile",
        namespace = shop.namespace().as_deref().unwrap_or(""),
        name = %shop.name_any(),
        domain = %shop.spec.domain
    );
    let started = std::time::Instant::now();
    let result = reconcile_shop(&shop, &ctx).instrument(span).await;
    ctx.metrics.reconciled(result.is_ok(), started.elapsed());
    result
}

async fn reconcile_shop(shop: &Arc<ShopifyShop>, ctx: &Arc<Context>) -> Result<Action, Error> {
    let (shop, ctx) = (shop.clone(), ctx.clone());
    let has_finalizer = shop.finalizers().iter().any(|f| f == FINALIZER);
    if shop.metadata.deletion_timestamp.is_some() {
        return if has_finalizer {
            finalizer::cleanup(&ctx, &shop).await
        } else {
            Ok(Action::await_change())
        };
    }
    let wants_finalizer = shop.spec.deletion_policy_or_default() == DeletionPolicy::Delete;
    if wants_finalizer != has_finalizer {
        finalizer::set(&ctx, &shop, wants_finalizer).await?;
        // The patch triggers a new reconcile with the updated object.
        return Ok(Action::await_change());
    }

    let uid = shop.uid().unwrap_or_default();
    let host = fetch::webhook_host(&ctx.client, &shop).await?;
    let allowed = shop_allowed(&ctx.settings.allowed_shops, &shop.spec.domain);
    // The token Secret is read once per pass: a migration or refresh
    // returns the Secret it stored, and the token is taken from that.
    let tokens = token::prepare(&ctx, &shop, allowed).await?;
    let mut outcome = match tokens.token(&shop) {
        // The allow-list comes first: no token is ever sent for such a shop.
        _ if !allowed => not_allowed(&shop),
        _ if tokens.marker == uninstalled::Marker::Current => uninstalled::outcome(&shop),
        Err(e) => token_unreadable(&shop, &e),
        Ok(token) => {
            let key = pass_key(&shop, &host, &token);
            match outcome_from_status(&shop).filter(|_| ctx.recent_pass(&uid, key)) {
                Some(reused) => reused,
                None => {
                    let out = webhooks::reconcile(&ctx, &shop, &token, host).await;
                    ctx.record_pass(&uid, key, !out.failed && out.retry_in.is_none());
                    out
                }
            }
        }
    };
    let expires_at = tokens.expires_at;
    tokens.finish(&ctx, &shop, &mut outcome).await?;
    let token_valid = outcome.token.status == Status::True;
    let syncs = sync::reconcile(&ctx, &shop, token_valid).await?;
    for note in outcome.notes.iter().chain(&syncs.notes) {
        ctx.publish(&shop, note).await;
    }
    let extra = webhooks::extra_subscriptions(&ctx.settings, &shop).len();
    let mut status = next_status(&shop, &outcome, &syncs, &now(), extra);
    status.token_expires_at = expires_at.map(Time);
    let ns = shop.namespace().unwrap_or_default();
    for c in &status.conditions {
        ctx.metrics
            .shop_condition(&ns, &shop.name_any(), &c.type_, &c.status);
    }
    write_status(&ctx, &shop, status).await?;

    let backoff = ctx.backoff(&uid, outcome.failed);
    let mut next = match (outcome.retry_in, backoff) {
        (Some(r), Some(b)) => r.max(b),
        (Some(r), None) => r,
        (None, Some(b)) => b,
        (None, None) => ctx.settings.resync_interval,
    };
    // Requeue exactly at the next schedule slot, not by polling.
    if let Some(wake) = syncs.wake {
        next = next.min(wake);
    }
    // ... and just as the token enters its refresh window.
    if let Some(expires) = expires_at {
        let ahead = jiff::SignedDuration::try_from(ctx.settings.refresh_ahead).unwrap_or_default();
        let until = (expires - ahead).duration_since(ctx.clock.now());
        if let Ok(until) = Duration::try_from(until) {
            next = next.min(until + Duration::from_secs(1));
        }
    }
    Ok(Action::requeue(next.min(ctx.settings.resync_interval)))
}

/// What happens after a failed reconcile: per-shop exponential backoff.
pub fn error_policy(shop: Arc<ShopifyShop>, err: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx
        .backoff(&shop.uid().unwrap_or_default(), true)
        .unwrap_or(Duration::from_secs(5));
    tracing::warn!(name = %shop.name_any(), error = %err, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Names of the conditions this controller writes.
pub const CONDITION_TYPES: [&str; 4] = [READY, TOKEN_VALID, WEBHOOKS_SYNCED, sync::SYNC_HEALTHY];

#[cfg(test)]
mod tests {
    use super::shop_allowed;

    #[test]
    fn allow_list_globs() {
        let list = vec![
            "ps-*.myshopify.com".to_string(),
            "exact.myshopify.com".to_string(),
        ];
        assert!(shop_allowed(&[], "anything.myshopify.com"));
        assert!(shop_allowed(&list, "ps-direct-fulfilment-online.myshopify.com"));
        assert!(shop_allowed(&list, "exact.myshopify.com"));
        assert!(!shop_allowed(&list, "exact.myshopify.com.evil.com"));
        assert!(!shop_allowed(&list, "evil.myshopify.com"));
        assert!(!shop_allowed(&list, "ps-.evil.com"));
    }
}
