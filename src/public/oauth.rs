//! OAuth install and reinstall (fact sheet §6), in two layouts: the single
//! app of the flags and `spec.app` (`/oauth/install`, `/oauth/callback`),
//! and one pair per ShopifyApp (`/oauth/{namespace}/{app}/install`,
//! `/callback`). `install?shop=` redirects the merchant to Shopify's
//! authorize page with a signed, expiring `state`, and sets the same state
//! in an `HttpOnly`, `Secure`, `SameSite=Lax` cookie scoped to the callback
//! path: the callback must come from the browser that started the install.
//!
//! The callback checks, in order: a well-formed shop domain (400), the
//! allow-lists (403), where the token goes (404), the `hmac` with the
//! current or previous client secret (401), the state cookie (403), the
//! `state` — signature, expiry (403) — the `timestamp`'s age (403), and the
//! nonce's single use across replicas (403). Only then is the code
//! exchanged; any failure up to and including the exchange writes nothing.
//! Reads ShopifyApps, ShopifyShops and Secrets, writes the token Secret (and
//! for a ShopifyApp that creates shops, a ShopifyShop), records the nonce
//! as a Lease, calls Shopify's token endpoint.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::apps::{self, Seen};
use super::{Public, Refusal, Target, nonce, refuse, state, unavailable, unix_now};
use crate::allow_list::shop_allowed;
use crate::token_store::{self, AppCredentials};
use shopify_admin::hmac::SecretUsed;
use shopify_admin::{constant_time_eq, required_scope};
use shopify_admin::{is_valid_shop_domain, verify_oauth_query};

/// Accepted clock skew for a callback `timestamp` from the future.
const FUTURE_SKEW_SECS: u64 = 60;
/// The cookie that binds a callback to the browser that started it.
const STATE_COOKIE: &str = "shopify_operator_state";

fn query_pairs(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Which app an OAuth request is for.
enum Origin {
    /// The flags' default app and the shops' `spec.app`.
    Flags,
    /// A ShopifyApp.
    App { namespace: String, name: String },
}

impl Origin {
    /// The callback URL under the public URL (Shopify's `redirect_uri`; its
    /// path is the state cookie's).
    fn callback(&self, public_url: Option<&url::Url>) -> Option<url::Url> {
        let path = match self {
            Origin::Flags => "oauth/callback".into(),
            Origin::App { namespace, name } => format!("oauth/{namespace}/{name}/callback"),
        };
        public_url?.join(&path).ok()
    }
}

/// Where an admitted request's token goes, and with which app.
struct Admitted {
    shop: String,
    targets: Vec<Target>,
    /// Set for a ShopifyApp: the app, and whether the callback creates the
    /// shop's ShopifyShop.
    app: Option<(crate::crd::ShopifyApp, bool)>,
}

/// Checks what both endpoints check first; `Ok` is the lower-cased shop.
fn admit_domain(public: &Public, shop: Option<&str>) -> Result<String, Refusal> {
    if public.cfg.public_url.is_none() {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "",
            "OAuthDisabled",
            "OAuth is not enabled on this operator (set --public-url)",
        ));
    }
    let shop = shop.unwrap_or_default().trim().to_ascii_lowercase();
    if !is_valid_shop_domain(&shop) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "",
            "InvalidShop",
            "the shop parameter must be a {name}.myshopify.com domain",
        ));
    }
    if !shop_allowed(&public.cfg.allowed_shops, &shop) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            &shop,
            "ShopNotAllowed",
            "the shop is not in the operator's --allowed-shops",
        ));
    }
    Ok(shop)
}

/// The checks both endpoints start with: the `shop` parameter, the
/// allow-lists, and where its token would go.
async fn admit(public: &Public, origin: &Origin, pairs: &[(String, String)]) -> Result<Admitted, Refusal> {
    let shop = admit_domain(public, get(pairs, "shop"))?;
    match origin {
        Origin::Flags => {
            let targets = match public.targets(&shop).await {
                Ok(t) if t.is_empty() => Err(refuse(
                    StatusCode::NOT_FOUND,
                    &shop,
                    "UnknownShop",
                    "no ShopifyShop with app credentials (spec.app.secretRef) for this shop",
                )),
                Ok(t) => Ok(t),
                Err(e) => Err(unavailable(&shop, "cannot read ShopifyShops", &e)),
            }?;
            Ok(Admitted {
                shop,
                targets,
                app: None,
            })
        }
        Origin::App { namespace, name } => {
            let install = apps::install_for(public, namespace, name, &shop).await?;
            Ok(Admitted {
                shop,
                targets: install.targets,
                app: Some((install.app, install.create)),
            })
        }
    }
}

/// The scopes to ask for: the ShopifyApp's `scopes`, else the app Secret's
/// `scopes`, else what the shops' webhook topics need (empty: the app's
/// configured scopes).
fn scopes(admitted: &Admitted) -> String {
    if let Some((app, _)) = &admitted.app
        && !app.spec.scopes.is_empty()
    {
        return app.spec.scopes.join(",");
    }
    if let Some(s) = admitted.targets.iter().find_map(|t| t.app.scopes.clone()) {
        return s;
    }
    let needed: BTreeSet<&str> = admitted
        .targets
        .iter()
        .filter_map(|t| t.shop.as_ref()?.spec.webhooks.as_ref())
        .flat_map(|w| w.topics.iter().filter_map(|t| required_scope(t)))
        .collect();
    needed.into_iter().collect::<Vec<_>>().join(",")
}

/// `GET /oauth/install?shop=…`.
pub async fn install(State(public): State<Arc<Public>>, RawQuery(query): RawQuery) -> Response {
    start(&public, Origin::Flags, query).await
}

/// `GET /oauth/{namespace}/{app}/install?shop=…`.
pub async fn app_install(
    State(public): State<Arc<Public>>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    start(&public, Origin::App { namespace, name }, query).await
}

/// 302 to Shopify's authorize URL, with the state cookie.
async fn start(public: &Public, origin: Origin, query: Option<String>) -> Response {
    let pairs = query_pairs(query.as_deref().unwrap_or_default());
    let admitted = match admit(public, &origin, &pairs).await {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let shop = &admitted.shop;
    let app = &admitted.targets[0].app;
    let ttl = public.cfg.state_ttl.as_secs();
    let state = state::issue(shop, unix_now() + ttl, &app.secret);
    let callback = origin.callback(public.cfg.public_url.as_ref());
    let redirect_uri = callback.as_ref().map(|u| u.to_string()).unwrap_or_default();
    let cookie_path = callback
        .as_ref()
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &app.client_id)
        .append_pair("scope", &scopes(&admitted))
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("state", &state)
        .finish();
    let location = format!("{}/admin/oauth/authorize?{query}", public.shopify.shop_root(shop));
    // The state is HMAC-signed with the app's secret; the cookie carries
    // it back only from this browser, only to the callback, never to
    // scripts, and on Shopify's top-level redirect (Lax).
    let cookie =
        format!("{STATE_COOKIE}={state}; Path={cookie_path}; Max-Age={ttl}; HttpOnly; Secure; SameSite=Lax");
    tracing::info!(shop, "OAuth install: redirecting to Shopify");
    (
        StatusCode::FOUND,
        [(header::LOCATION, location), (header::SET_COOKIE, cookie)],
    )
        .into_response()
}

/// `GET /oauth/callback?code&hmac&host&shop&state&timestamp`.
pub async fn callback(
    State(public): State<Arc<Public>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    finish(&public, Origin::Flags, &headers, query.unwrap_or_default()).await
}

/// `GET /oauth/{namespace}/{app}/callback?…`.
pub async fn app_callback(
    State(public): State<Arc<Public>>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    finish(
        &public,
        Origin::App { namespace, name },
        &headers,
        query.unwrap_or_default(),
    )
    .await
}

/// The state cookie's value, if the request has one.
fn state_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == STATE_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Every check of the callback; `Ok` is the app that signed it, the
/// targets it signed for, and whether the previous secret was the one.
async fn verify<'a>(
    public: &Public,
    headers: &HeaderMap,
    raw: &str,
    admitted: &'a Admitted,
) -> Result<(&'a AppCredentials, Vec<&'a Target>, bool), Refusal> {
    let shop = admitted.shop.as_str();
    let pairs = query_pairs(raw);
    // Only the targets whose app signed this callback get its token.
    let mut used_previous = false;
    let signed: Vec<&Target> = admitted
        .targets
        .iter()
        .filter(|t| {
            let used = verify_oauth_query(raw, &t.app.secret, t.app.previous.as_ref());
            used_previous |= used == Some(SecretUsed::Previous);
            used.is_some()
        })
        .collect();
    let Some(first) = signed.first() else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            shop,
            "InvalidHmac",
            "the callback's hmac does not verify with the app's client secret",
        ));
    };
    let state_value = get(&pairs, "state").unwrap_or_default();
    let bound = state_cookie(headers).is_some_and(|c| constant_time_eq(c.as_bytes(), state_value.as_bytes()));
    if !bound {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            shop,
            "InvalidState",
            "the callback does not come from the browser that started the installation (no matching state cookie); start the installation again",
        ));
    }
    let now = unix_now();
    let app = &first.app;
    let (nonce, expiry) = state::verify(state_value, shop, now, &app.secret, app.previous.as_ref())
        .map_err(|e| refuse(StatusCode::FORBIDDEN, shop, "InvalidState", e.message()))?;
    let fresh = get(&pairs, "timestamp")
        .and_then(|t| t.parse::<u64>().ok())
        .is_some_and(|t| t + public.cfg.state_ttl.as_secs() >= now && t <= now + FUTURE_SKEW_SECS);
    if !fresh {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            shop,
            "StaleCallback",
            "the callback's timestamp is missing or too far from now",
        ));
    }
    // Last, so a refused callback doesn't use up its state.
    match nonce::take(&public.client, &public.cfg.nonce_namespace, nonce, expiry, now).await {
        Ok(()) => Ok((app, signed, used_previous)),
        Err(nonce::TakeError::Replayed) => Err(refuse(
            StatusCode::FORBIDDEN,
            shop,
            "InvalidState",
            state::StateError::Replayed.message(),
        )),
        Err(nonce::TakeError::Api(e)) => Err(unavailable(shop, "cannot record the OAuth state as used", &e)),
    }
}

async fn finish(public: &Public, origin: Origin, headers: &HeaderMap, raw: String) -> Response {
    let pairs = query_pairs(&raw);
    let admitted = match admit(public, &origin, &pairs).await {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let shop = admitted.shop.as_str();
    let (app, signed, used_previous) = match verify(public, headers, &raw, &admitted).await {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let Some(code) = get(&pairs, "code").filter(|c| !c.is_empty()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            shop,
            "MissingCode",
            "the callback has no code",
        )
        .into_response();
    };
    let grant = match public
        .shopify
        .exchange_code(shop, &app.client_id, &app.secret, code, public.cfg.expiring)
        .await
    {
        Ok(g) => g,
        Err(e) => {
            return refuse(
                StatusCode::BAD_GATEWAY,
                shop,
                "CodeExchangeFailed",
                &format!("Shopify did not grant a token for the code: {e}"),
            )
            .into_response();
        }
    };
    let now_ts = jiff::Timestamp::now();
    let mut stored = Vec::new();
    for t in &signed {
        let (ns, name) = &t.secret;
        if let Err(e) = token_store::store_grant(&public.client, ns, name, &grant, now_ts).await {
            // The code is spent: the merchant has to start again.
            tracing::error!(shop, secret = %format!("{ns}/{name}"), error = %e, "storing the OAuth token failed");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                shop,
                "SecretWriteFailed",
                &format!("the token could not be stored in Secret {ns}/{name}; start the installation again"),
            )
            .into_response();
        }
        stored.push(format!("{ns}/{name}"));
    }
    let mut created = None;
    if let Some((shopify_app, create)) = &admitted.app {
        if *create {
            let secret = &signed[0].secret.1;
            match apps::create_shop(&public.client, shopify_app, shop, secret).await {
                Ok(name) => created = Some(name),
                Err(message) => {
                    tracing::error!(shop, error = %message, "creating the installed shop's ShopifyShop failed");
                    return refuse(StatusCode::CONFLICT, shop, "ShopCreateFailed", &message).into_response();
                }
            }
        }
        let ns = shopify_app.metadata.namespace.as_deref().unwrap_or_default();
        let name = shopify_app.metadata.name.as_deref().unwrap_or_default();
        apps::record(&public.client, ns, name, Seen::Install, used_previous).await;
    }
    tracing::info!(shop, secrets = ?stored, created = ?created, expiring = grant.refresh_token.is_some(), "OAuth install: token stored");
    let clear = format!(
        "{STATE_COOKIE}=; Path={}; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
        origin
            .callback(public.cfg.public_url.as_ref())
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    );
    let mut body = format!(
        "{shop} is installed; its token is stored in Secret {}\n",
        stored.join(", ")
    );
    if let Some(name) = created {
        body.push_str(&format!("ShopifyShop {name} was created for it\n"));
    }
    (StatusCode::OK, [(header::SET_COOKIE, clear)], body).into_response()
}
