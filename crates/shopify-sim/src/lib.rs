//! shopify-sim: a simulator of the parts of Shopify's GraphQL Admin API the
//! operator uses, faithful to the documented behaviour (see
//! `shared/shopify-api.md`), not to our client's assumptions.
//!
//! One listener serves many shops:
//! - `POST /{shop}/admin/api/{version}/graphql.json` — a real GraphQL engine
//!   (async-graphql) over a schema subset with Shopify's names, version
//!   dependent fields, `userErrors`, the documented cost model and a leaky
//!   bucket per shop;
//! - `GET /{shop}/admin/oauth/authorize` and
//!   `POST /{shop}/admin/oauth/access_token` — the consent redirect and the
//!   authorization-code, refresh-token and token-exchange grants, for one or
//!   several apps (a staging and a production app against one simulator),
//!   told apart by `client_id`;
//! - `/_sim/...` — a JSON admin API for tests and rehearsals (fixtures,
//!   counters, faults, latency, revocation, deliveries, timelines).
//!
//! As on Shopify, tokens, webhook subscriptions and cost buckets belong to
//! the app that created them: an app sees and changes only its own
//! subscriptions, and uninstalling it (`appUninstall`, or
//! [`Sim::uninstall_app`]) removes only its own. Each shop keeps a
//! [`timeline`] of subscriptions starting and ending, so a test can measure
//! the webhook gap or overlap of handing a shop from one app to another.
//!
//! Tests start it in-process with [`start`]; the `shopify-sim` binary wraps
//! the same library.

#![forbid(unsafe_code)]

mod address;
mod admin;
mod authorize;
mod bucket;
mod cost;
mod counters;
mod deliver;
mod engine;
mod faults;
mod fixture;
mod http;
mod oauth;
mod resolvers;
mod schema;
mod server;
mod state;
mod subs;
pub mod timeline;
pub mod topics;
mod uninstall;
mod versions;

pub use bucket::ThrottleStatus;
pub use counters::Counters;
pub use faults::{DEFAULT_FILTER_REFUSAL, Fault};
pub use fixture::{
    APP_RESERVED_NAMESPACE, AppFixture, Fixture, MetafieldIdentifier, ShopFixture, SubscriptionFixture,
    TokenFixture,
};
pub use subs::SimSubscription;
pub use timeline::{Change, TimelineEntry};
pub use versions::{ApiVersion, DEFAULT_METAFIELDS_SINCE, DEFAULT_URI_SINCE, DEFAULT_VERSIONS, calendar};

use axum::Router;
use axum::routing::{get, post};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a simulator instance behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Listen address; the default `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// Accept `http://` and loopback/private subscription addresses, which
    /// Shopify rejects; for local receivers in tests and demos.
    pub allow_insecure_addresses: bool,
    /// Added to every shop request (not to `/_sim`).
    pub latency: Duration,
    /// Cost bucket size per shop.
    pub bucket_size: f64,
    /// Cost points restored per second (100 = Standard plan).
    pub restore_rate: f64,
    /// Shops and apps loaded at start.
    pub fixture: Fixture,
    /// Versions served (`YYYY-MM` or `unstable`); older requests fall forward
    /// to the oldest of these. Default [`DEFAULT_VERSIONS`], fixed so tests
    /// mean the same next year; [`calendar`] gives Shopify's set for a day.
    pub api_versions: Vec<String>,
    /// `apiVersion.handle` of subscriptions: Shopify sets the payload version
    /// per app, not per subscription.
    pub webhook_api_version: String,
    /// First version whose schema has `uri` instead of `callbackUrl` /
    /// `endpoint` (default 2025-10; earlier adoption is unconfirmed). From
    /// this version the dedicated Pub/Sub and EventBridge mutations are
    /// deprecated too (the same changelog entry).
    pub uri_since: String,
    /// First version whose webhook subscriptions have `metafields` (default
    /// 2025-04: confirmed there and absent in 2024-07; 2024-10 and 2025-01
    /// are unconfirmed).
    pub metafields_since: String,
    /// HTTP status of a `THROTTLED` answer. Shopify's is unconfirmed (200 or
    /// 429), so the default 200 can be switched to test both paths.
    pub throttled_http_status: u16,
    /// PEM CA certificates trusted for webhook deliveries besides the
    /// public roots (a staging OMS behind a private CA).
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            allow_insecure_addresses: false,
            latency: Duration::ZERO,
            bucket_size: 1000.0,
            restore_rate: 100.0,
            fixture: Fixture::default(),
            api_versions: DEFAULT_VERSIONS.iter().map(|s| s.to_string()).collect(),
            webhook_api_version: "2025-07".into(),
            uri_since: versions::DEFAULT_URI_SINCE.into(),
            metafields_since: versions::DEFAULT_METAFIELDS_SINCE.into(),
            throttled_http_status: 200,
            ca_file: None,
        }
    }
}

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg.into())
}

/// Starts a simulator and returns once it accepts connections.
///
/// Fails on an unusable configuration (bad versions, invalid fixture,
/// non-positive bucket) or if the address cannot be bound.
pub async fn start(cfg: SimConfig) -> std::io::Result<Sim> {
    if !(cfg.bucket_size > 0.0 && cfg.restore_rate > 0.0) {
        return Err(invalid("bucket size and restore rate must be positive"));
    }
    cfg.fixture.validate().map_err(invalid)?;
    if cfg.throttled_http_status != 200 && !(400..600).contains(&cfg.throttled_http_status) {
        return Err(invalid(
            "throttled_http_status must be 200 or an error status (400-599)",
        ));
    }
    let versions = versions::VersionTable::with_uri_since(&cfg.api_versions, &cfg.uri_since)
        .and_then(|t| t.with_metafields_since(&cfg.metafields_since))
        .map_err(invalid)?;
    let schemas = schema::Schemas::build(&versions).map_err(invalid)?;
    let state = Arc::new(state::SimState::new(
        cfg.allow_insecure_addresses,
        cfg.latency,
        cfg.bucket_size,
        cfg.restore_rate,
        cfg.webhook_api_version,
        cfg.throttled_http_status,
        versions,
    ));
    state.load(cfg.fixture);
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let mut deliverer = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path)?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| invalid(e.to_string()))? {
            deliverer = deliverer.add_root_certificate(cert);
        }
    }
    let deliverer = deliverer.build().map_err(|e| invalid(e.to_string()))?;
    let app = Arc::new(http::App {
        state: state.clone(),
        schemas,
        deliverer: deliverer.clone(),
    });
    let router = Router::new()
        .route("/{shop}/admin/api/{version}/graphql.json", post(http::graphql))
        .route("/{shop}/admin/oauth/access_token", post(http::access_token))
        .route("/{shop}/admin/oauth/authorize", get(authorize::authorize))
        .nest("/_sim", admin::routes())
        .fallback(http::not_found)
        .with_state(app);
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(server::serve(listener, router, rx));
    Ok(Sim {
        addr,
        state,
        deliverer,
        shutdown: Arc::new(tx),
        task: Arc::new(Mutex::new(Some(task))),
    })
}

/// A handle on a running simulator; clones share it. The server stops on
/// [`Sim::shutdown`] or when the last handle is dropped.
#[derive(Clone)]
pub struct Sim {
    addr: SocketAddr,
    state: Arc<state::SimState>,
    /// Sends the webhooks [`Sim::uninstall_app`] triggers.
    deliverer: reqwest::Client,
    shutdown: Arc<watch::Sender<bool>>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The operator's `--shopify-base-url` template: `http://ADDR/{shop}`.
    pub fn base_url(&self) -> String {
        format!("http://{}/{{shop}}", self.addr)
    }

    /// Root of the admin API: `http://ADDR/_sim`.
    pub fn admin_url(&self) -> String {
        format!("http://{}/_sim", self.addr)
    }

    /// The GraphQL endpoint of one shop at one version.
    pub fn graphql_url(&self, shop: &str, version: &str) -> String {
        format!("http://{}/{shop}/admin/api/{version}/graphql.json", self.addr)
    }

    /// Adds or replaces shops and apps (see [`Fixture::app`] and
    /// [`Fixture::apps`]). Entries that [`Fixture::validate`] would refuse
    /// are skipped with a warning.
    pub fn load(&self, fixture: Fixture) {
        self.state.load(fixture);
    }

    /// The shop's subscriptions of every app, ordered by id (empty for
    /// unknown shops).
    pub fn subscriptions(&self, shop: &str) -> Vec<SimSubscription> {
        self.state.subscriptions(shop, None)
    }

    /// The shop's subscriptions owned by the app `client_id` (subscriptions
    /// that name no app count as the first app's), ordered by id.
    pub fn subscriptions_of(&self, shop: &str, client_id: &str) -> Vec<SimSubscription> {
        self.state.subscriptions(shop, Some(client_id))
    }

    /// Every subscription of the shop that started or stopped existing, in
    /// the order it happened (see [`timeline`]).
    pub fn timeline(&self, shop: &str) -> Vec<TimelineEntry> {
        self.state.timeline(shop)
    }

    /// Uninstalls the app `client_id` from the shop, as the merchant does
    /// from the admin: deletes its subscriptions there, revokes its tokens
    /// there (401 from then on), and sends `app/uninstalled` to its HTTP(S)
    /// `APP_UNINSTALLED` subscriptions from a spawned task. Other apps keep
    /// theirs. `false` if the shop is unknown or the app had neither a
    /// token nor a subscription there.
    pub fn uninstall_app(&self, shop: &str, client_id: &str) -> bool {
        match self.state.uninstall(shop, Some(client_id)) {
            Some(done) => {
                uninstall::deliver(self.deliverer.clone(), done);
                true
            }
            None => false,
        }
    }

    /// The shop's counters since the last reset.
    pub fn counters(&self, shop: &str) -> Counters {
        self.state.counters(shop)
    }

    /// Counters of every shop that received requests.
    pub fn all_counters(&self) -> BTreeMap<String, Counters> {
        self.state.all_counters()
    }

    /// Zeroes all counters.
    pub fn reset_counters(&self) {
        self.state.reset_counters();
    }

    /// Arms a fault (or applies it at once, for `DrainBucket`). `StatusRate`
    /// and `RefuseFilter` stay armed until [`Sim::clear_faults`].
    pub fn inject(&self, fault: Fault) {
        self.state.inject(fault);
    }

    /// Disarms every pending fault, refused filters included.
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// Sets the latency added to each shop request.
    pub fn set_latency(&self, d: Duration) {
        self.state.set_latency(d);
    }

    /// Revokes all tokens of the shop, of every app: they answer 401.
    /// [`Sim::uninstall_app`] revokes one app's.
    pub fn revoke_token(&self, shop: &str) {
        self.state.revoke(shop);
    }

    /// Expires all access tokens of the shop now; refresh tokens stay valid.
    pub fn expire_access_tokens(&self, shop: &str) {
        self.state.expire_access_tokens(shop);
    }

    /// Every secret value the simulator knows or ever issued (tokens,
    /// codes, client secrets), for tests that assert none leaked.
    pub fn known_secrets(&self) -> Vec<String> {
        self.state.known_secrets()
    }

    /// Expires all refresh tokens of the shop now (as 90 days would).
    pub fn expire_refresh_tokens(&self, shop: &str) {
        self.state.expire_refresh_tokens(shop);
    }

    /// Issues a single-use OAuth authorization code for the shop, with the
    /// given scopes or the shop's fixture scopes; `None` for unknown shops.
    /// The code is bound to whichever app is first when it is exchanged;
    /// [`Sim::issue_code_for`] binds it to a given app.
    pub fn issue_code(&self, shop: &str, scopes: Option<Vec<String>>) -> Option<String> {
        self.state.issue_code(shop, None, scopes)
    }

    /// Like [`Sim::issue_code`], for the app with `client_id`: only that app
    /// can exchange the code, as with a code from the authorize page. The
    /// app need not be loaded yet; until it is, nobody can exchange the code.
    pub fn issue_code_for(&self, shop: &str, client_id: &str, scopes: Option<Vec<String>>) -> Option<String> {
        self.state.issue_code(shop, Some(client_id), scopes)
    }

    /// The default (first) app's bucket at the shop as the next response
    /// would report it.
    pub fn throttle_status(&self, shop: &str) -> ThrottleStatus {
        self.state.bucket_status(shop, None)
    }

    /// The bucket of the app `client_id` at the shop (buckets are per app
    /// and store, as Shopify's are).
    pub fn throttle_status_of(&self, shop: &str, client_id: &str) -> ThrottleStatus {
        self.state.bucket_status(shop, Some(client_id))
    }

    /// Deletes a subscription behind the client's back, as Shopify does after
    /// 8 failed deliveries. `id` may be the gid or its numeric part.
    pub fn delete_subscription(&self, shop: &str, id: &str) -> bool {
        subs::parse_gid(id).is_some_and(|n| self.state.remove_subscription(shop, n))
    }

    /// Adds a subscription for the default app without the API's checks
    /// (duplicates and insecure addresses allowed), to create drift;
    /// returns its gid.
    ///
    /// # Panics
    /// On an unknown shop, topic or format: that is a bug in the test.
    pub fn add_subscription(&self, shop: &str, topic_enum: &str, address: &str, format: &str) -> String {
        self.add_subscription_with(
            shop,
            SubscriptionFixture {
                topic: topic_enum.into(),
                address: address.into(),
                format: Some(format.into()),
                ..Default::default()
            },
        )
    }

    /// Like [`Sim::add_subscription`], with every field of the fixture form
    /// (`includeFields`, `metafieldNamespaces`, `metafields`, `filter`,
    /// `name`; Pub/Sub and EventBridge addresses too).
    ///
    /// # Panics
    /// On an unknown shop, topic or format.
    pub fn add_subscription_with(&self, shop: &str, sub: SubscriptionFixture) -> String {
        self.add_fixture_subscription(shop, sub)
    }

    /// Like [`Sim::add_subscription_with`], owned by the app `client_id`
    /// (whatever `sub.client_id` says).
    ///
    /// # Panics
    /// On an unknown shop, topic or format.
    pub fn add_subscription_for(&self, shop: &str, client_id: &str, sub: SubscriptionFixture) -> String {
        self.add_fixture_subscription(
            shop,
            SubscriptionFixture {
                client_id: Some(client_id.to_owned()),
                ..sub
            },
        )
    }

    fn add_fixture_subscription(&self, shop: &str, sub: SubscriptionFixture) -> String {
        self.state.add_subscription(shop, &sub).unwrap_or_else(|| {
            panic!(
                "add_subscription: unknown shop {shop:?}, topic {:?} or format {:?}",
                sub.topic, sub.format
            )
        })
    }

    /// Stops accepting, lets in-flight requests finish briefly, and waits for
    /// the server task.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
