//! The operator's public endpoints, served next to `/healthz` and meant to
//! be exposed (only these paths) through an Ingress: the OAuth install and
//! callback a merchant's browser goes through, and the `app/uninstalled`
//! webhook Shopify delivers. Every replica serves them (they need no
//! leadership: each request is one verified, guarded write).
//!
//! Reads ShopifyShops and Secrets, writes token Secrets and ShopifyShop
//! status through the apiserver, and calls Shopify's token endpoint.

mod apps;
pub mod nonce;
mod oauth;
pub mod state;
mod uninstall;
mod validate;

pub use apps::CREATED_BY_APP_LABEL;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tracing::Instrument;

use crate::allow_list::shop_allowed;
use crate::crd::ShopifyShop;
use crate::names::UNINSTALLED_PATH;
use crate::token_store::{self, AppCredentials};
use shopify_admin::ShopifyClient;

/// The header that carries a public request's id in the answer (the same
/// id is on every log line about the request).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Largest `app/uninstalled` delivery accepted: Shopify's payload is the
/// shop object, a few KiB; anything far bigger is not Shopify's.
const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// Settings of the public endpoints.
#[derive(Debug, Clone)]
pub struct PublicConfig {
    /// The operator's own public URL (e.g. `https://shopify-operator.example.com`);
    /// OAuth is served only when it is set (it makes the `redirect_uri`).
    pub public_url: Option<url::Url>,
    /// Ask for expiring offline tokens (`expiring=1`) in the code exchange.
    pub expiring: bool,
    /// How long an installation may take, from `/oauth/install` to the
    /// callback; also the accepted age of the callback's `timestamp`.
    pub state_ttl: Duration,
    /// `--allowed-shops`: shops outside it are refused.
    pub allowed_shops: Vec<String>,
    /// The watched namespace (`None`: all). A ShopifyApp outside it is
    /// unknown to the public endpoints too.
    pub namespace: Option<String>,
    /// The app Secret (`namespace/name`) for shops that have no ShopifyShop
    /// yet but match a non-empty `--allowed-shops`; their token Secret is
    /// created in that namespace as `{shop}-shopify-token`.
    pub default_app: Option<(String, String)>,
    /// Where used OAuth nonces are recorded (as Leases): the operator's own
    /// namespace, shared by every replica.
    pub nonce_namespace: String,
}

/// Shared state of the public endpoints.
pub struct Public {
    client: Client,
    shopify: ShopifyClient,
    cfg: PublicConfig,
}

impl Public {
    /// The endpoints' state.
    pub fn new(client: Client, shopify: ShopifyClient, cfg: PublicConfig) -> Self {
        Public { client, shopify, cfg }
    }
}

/// The routes, to merge into the operator's HTTP router: the single-app
/// OAuth paths (flags and `spec.app`), one pair per ShopifyApp, and the
/// `app/uninstalled` receiver (which finds each shop's app itself). Any
/// other method or path is answered 404 `NotFound`.
///
/// Every answer carries an `x-request-id` the operator made (one a client
/// sends is dropped: it could be neither unique nor short), and every log
/// line about the request is in a `public{request_id=…}` span, so an
/// answer's id finds its detailed cause in the log.
pub fn router(public: Arc<Public>) -> Router {
    Router::new()
        .route("/oauth/install", get(oauth::install))
        .route("/oauth/callback", get(oauth::callback))
        .route("/oauth/{namespace}/{app}/install", get(oauth::app_install))
        .route("/oauth/{namespace}/{app}/callback", get(oauth::app_callback))
        .route(
            UNINSTALLED_PATH,
            post(uninstall::uninstalled).layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY)),
        )
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .with_state(public)
        // Layers run bottom-up on the way in: drop the client's id, make
        // ours, copy it to the answer, then answer inside its span.
        .layer(middleware::from_fn(in_request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::map_request(drop_client_request_id))
}

tokio::task_local! {
    /// The id of the public request being answered, for the answer's body.
    static REQUEST_ID: String;
}

/// A request id only the operator chooses: tower-http's layer keeps an
/// incoming one, which a stranger could make collide with another
/// request's or stuff with kilobytes.
async fn drop_client_request_id(mut req: Request) -> Request {
    req.headers_mut().remove(REQUEST_ID_HEADER);
    req
}

/// Answers `req` inside a span carrying its request id (so the id is on
/// every log line the request causes) with the id in [`REQUEST_ID`].
async fn in_request_span(req: Request, next: Next) -> Response {
    let id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default()
        .to_string();
    let span = tracing::info_span!("public", request_id = %id);
    REQUEST_ID.scope(id, next.run(req)).instrument(span).await
}

/// 404 `NotFound` for any method and path that is not one of the routes —
/// and for a route whose path segments are not names (see `oauth`).
async fn unknown_route(method: Method, uri: Uri) -> Response {
    not_found(&format!("no route for {method} {:?}", truncated(uri.path()))).into_response()
}

/// `s`, cut to at most 128 characters for a log line.
pub(crate) fn truncated(s: &str) -> String {
    const MAX: usize = 128;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A refusal: a status and a short, fixed reason for the caller (with the
/// parameter at fault, if any, and the request id), and the detailed cause
/// for the log. Nothing the caller sent and nothing internal (names,
/// apiserver or Shopify messages) is in the answer; the detail never holds
/// a secret either.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    reason: &'static str,
    param: Option<&'static str>,
    shop: String,
    detail: String,
    level: tracing::Level,
}

impl Refusal {
    /// Logged at warn rather than info: an operator should look (e.g. RBAC
    /// that hides an app, an app without credentials).
    pub(crate) fn warn(mut self) -> Self {
        self.level = tracing::Level::WARN;
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status.as_u16();
        let (shop, reason, param) = (self.shop.as_str(), self.reason, self.param.unwrap_or(""));
        // Usually a merchant's browser, a retrying Shopify or a probe: info.
        match self.level {
            tracing::Level::ERROR => {
                tracing::error!(status, shop, reason, param, "{}", self.detail)
            }
            tracing::Level::WARN => tracing::warn!(status, shop, reason, param, "{}", self.detail),
            _ => tracing::info!(status, shop, reason, param, "{}", self.detail),
        }
        let body = match self.param {
            Some(p) => with_request_id(&format!("{}: {p}", self.reason)),
            None => with_request_id(self.reason),
        };
        (self.status, body).into_response()
    }
}

/// One line of an answer's body: `text`, then the request id (when
/// answering inside the public router's span).
pub(crate) fn with_request_id(text: &str) -> String {
    match REQUEST_ID.try_with(String::clone) {
        Ok(id) => format!("{text} (request id {id})\n"),
        Err(_) => format!("{text}\n"),
    }
}

/// A [`Refusal`] with `reason` for the caller and `detail` for the log;
/// logged at error for a 5xx, else at info.
pub(crate) fn refuse(status: StatusCode, shop: &str, reason: &'static str, detail: &str) -> Refusal {
    Refusal {
        status,
        reason,
        param: None,
        shop: shop.to_string(),
        detail: detail.to_string(),
        level: if status.is_server_error() {
            tracing::Level::ERROR
        } else {
            tracing::Level::INFO
        },
    }
}

/// 400 `InvalidRequest` naming the parameter (or header, or `query`) that
/// is missing, repeated or not of its shape. Its value is not logged: it
/// is whatever a stranger sent.
pub(crate) fn invalid(param: validate::Invalid) -> Refusal {
    Refusal {
        param: Some(param.0),
        ..refuse(
            StatusCode::BAD_REQUEST,
            "",
            "InvalidRequest",
            "a parameter is missing, repeated or malformed",
        )
    }
}

/// 404 `NotFound`: not one of the routes.
pub(crate) fn not_found(detail: &str) -> Refusal {
    refuse(StatusCode::NOT_FOUND, "", "NotFound", detail)
}

/// The answer to a failed apiserver request (`what`: what the operator was
/// doing). Only the apiserver being unreachable, timing out, throttling or
/// failing (5xx) is 503 `ServiceUnavailable`: anyone could fake an outage
/// otherwise. A 404 or 403 (an object, a resource or a namespace the
/// operator may not read) is `hidden` — the caller learns only that what
/// it named is unknown — and logged at warn; without `hidden` (a write
/// after a verified callback) and for anything else it is 500
/// `InternalError`. The apiserver's words go only to the log.
pub(crate) fn from_kube(shop: &str, what: &str, e: &kube::Error, hidden: Option<Refusal>) -> Refusal {
    let detail = format!("{what}: {e}");
    if is_unavailable(e) {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            shop,
            "ServiceUnavailable",
            &detail,
        );
    }
    match (e, hidden) {
        (kube::Error::Api(s), Some(r)) if matches!(s.code, 403 | 404) => Refusal { detail, ..r }.warn(),
        _ => refuse(StatusCode::INTERNAL_SERVER_ERROR, shop, "InternalError", &detail),
    }
}

/// Whether `e` means the apiserver is unavailable to the operator: not
/// reached, timed out, throttling (429) or failing (5xx).
pub(crate) fn is_unavailable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The name an install gives a shop that has none yet (the domain's first
/// label) and its token Secret (`{name}-shopify-token`).
pub(crate) fn installed_names(domain: &str) -> (String, String) {
    let short = domain.split('.').next().unwrap_or(domain).to_ascii_lowercase();
    let secret = format!("{short}-shopify-token");
    (short, secret)
}

/// Where a shop's token goes, and with which app.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The ShopifyShop, if there is one.
    pub shop: Option<ShopifyShop>,
    /// Namespace and name of the token Secret.
    pub secret: (String, String),
    /// The app's credentials.
    pub app: AppCredentials,
}

/// The ShopifyShops for `domain` in scope.
pub(crate) async fn shops_for(
    client: &Client,
    namespace: Option<&str>,
    domain: &str,
) -> Result<Vec<ShopifyShop>, kube::Error> {
    let api: Api<ShopifyShop> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|s| s.spec.domain.eq_ignore_ascii_case(domain))
        .collect())
}

impl Public {
    /// Every place `domain`'s token goes: its ShopifyShops that have app
    /// credentials, or, with none, the default app if the allow-list names
    /// the shop explicitly. Empty means unknown shop (404).
    pub(crate) async fn targets(&self, domain: &str) -> Result<Vec<Target>, kube::Error> {
        let mut out = Vec::new();
        let shops = shops_for(&self.client, self.cfg.namespace.as_deref(), domain).await?;
        let had_shops = !shops.is_empty();
        for shop in shops {
            let Some(app) = token_store::shop_app_credentials(&self.client, &shop).await? else {
                continue;
            };
            let secret = (
                shop.namespace().unwrap_or_default(),
                shop.spec.token.secret_ref.name.clone(),
            );
            out.push(Target {
                shop: Some(shop),
                secret,
                app,
            });
        }
        if !had_shops
            && !self.cfg.allowed_shops.is_empty()
            && shop_allowed(&self.cfg.allowed_shops, domain)
            && let Some((ns, name)) = &self.cfg.default_app
            && let Some(app) = token_store::app_credentials(&self.client, ns, name).await?
        {
            out.push(Target {
                shop: None,
                secret: (ns.clone(), installed_names(domain).1),
                app,
            });
        }
        Ok(out)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_uninstall_path_is_the_templates() {
        let address = shopify_admin::webhook_address(
            "h.example",
            crate::names::WEBHOOKS_PATH_TEMPLATE,
            "app/uninstalled",
        );
        assert_eq!(
            address,
            format!("https://h.example{}", crate::names::UNINSTALLED_PATH)
        );
    }
}
