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

pub use apps::CREATED_BY_APP_LABEL;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use crate::allow_list::shop_allowed;
use crate::crd::ShopifyShop;
use crate::names::UNINSTALLED_PATH;
use crate::token_store::{self, AppCredentials};
use shopify_admin::ShopifyClient;

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
    /// The watched namespace (`None`: all).
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
/// `app/uninstalled` receiver (which finds each shop's app itself).
pub fn router(public: Arc<Public>) -> Router {
    Router::new()
        .route("/oauth/install", get(oauth::install))
        .route("/oauth/callback", get(oauth::callback))
        .route("/oauth/{namespace}/{app}/install", get(oauth::app_install))
        .route("/oauth/{namespace}/{app}/callback", get(oauth::app_callback))
        .route(UNINSTALLED_PATH, post(uninstall::uninstalled))
        .with_state(public)
}

/// A refusal: status and a one-line reason (never a secret). Logged at
/// info when answered, as it is usually a merchant's browser or a probe,
/// not a fault.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    shop: String,
    reason: &'static str,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        tracing::info!(
            status = self.status.as_u16(),
            shop = self.shop,
            reason = self.reason,
            "{}",
            self.message
        );
        (self.status, format!("{}: {}\n", self.reason, self.message)).into_response()
    }
}

/// A [`Refusal`].
pub(crate) fn refuse(status: StatusCode, shop: &str, reason: &'static str, message: &str) -> Refusal {
    Refusal {
        status,
        shop: shop.to_string(),
        reason,
        message: message.to_string(),
    }
}

/// 503 `KubernetesUnavailable`: `what` could not be done (`cannot read
/// ShopifyShops`) for the apiserver's reason `e`.
pub(crate) fn unavailable(shop: &str, what: &str, e: &kube::Error) -> Refusal {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        shop,
        "KubernetesUnavailable",
        &format!("{what}: {e}"),
    )
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
