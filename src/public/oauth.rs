//! OAuth install and reinstall (fact sheet §6), in two layouts: the single
//! app of the flags and `spec.app` (`/oauth/install`, `/oauth/callback`),
//! and one pair per ShopifyApp (`/oauth/{namespace}/{app}/install`,
//! `/callback`). `install?shop=` redirects the merchant to Shopify's
//! authorize page with a signed, expiring `state`, and sets the same state
//! in an `HttpOnly`, `Secure`, `SameSite=Lax` cookie scoped to the callback
//! path: the callback must come from the browser that started the install.
//!
//! Both check first what needs no apiserver: the app route's path segments
//! are names (else 404, as for any other unknown path), and every
//! parameter they use is present once and of its shape (`shop`; for the
//! callback also `code`, `hmac`, `state`, `timestamp`; else 400 naming
//! it). Then the callback checks the allow-lists (403), where the token
//! goes (404), the `hmac` with the current or previous client secret
//! (401), the state cookie (403), the `state` — signature, expiry (403) —
//! the `timestamp`'s age (403), and the nonce's single use across replicas
//! (403). Only then is the code exchanged; any failure up to and including
//! the exchange writes nothing but the nonce's Lease.
//! Reads ShopifyApps, ShopifyShops and Secrets, writes the token Secret (and
//! for a ShopifyApp that creates shops, a ShopifyShop), records the nonce
//! as a Lease, calls Shopify's token endpoint.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::apps::{self, Seen};
use super::validate::{self, Invalid, Params};
use super::{Public, Refusal, Target, from_kube, invalid, nonce, not_found, refuse, state, unix_now};
use crate::allow_list::shop_allowed;
use crate::token_store::{self, AppCredentials};
use shopify_admin::hmac::SecretUsed;
use shopify_admin::verify_oauth_query;
use shopify_admin::{ShopifyError, constant_time_eq, required_scope};

/// Accepted clock skew for a callback `timestamp` from the future.
const FUTURE_SKEW_SECS: u64 = 60;
/// The cookie that binds a callback to the browser that started it.
const STATE_COOKIE: &str = "shopify_operator_state";

/// Which app an OAuth request is for.
enum Origin {
    /// The flags' default app and the shops' `spec.app`.
    Flags,
    /// A ShopifyApp; both are valid names (see [`app_origin`]).
    App { namespace: String, name: String },
}

impl Origin {
    /// The callback URL under the public URL (Shopify's `redirect_uri`; its
    /// path is the state cookie's). The names in it are validated, so they
    /// need no escaping in the URL or the cookie's `Path`.
    fn callback(&self, public_url: Option<&url::Url>) -> Option<url::Url> {
        let path = match self {
            Origin::Flags => "oauth/callback".into(),
            Origin::App { namespace, name } => format!("oauth/{namespace}/{name}/callback"),
        };
        public_url?.join(&path).ok()
    }
}

/// The ShopifyApp a `/oauth/{namespace}/{app}/…` path names, if both
/// segments (percent-decoded) are names the apiserver could hold — the
/// namespace a DNS-1123 label inside the watched namespace, the app a
/// DNS-1123 subdomain. Anything else (`..%2f..%2fkube-system`,
/// `x%2fstatus`, invalid UTF-8) is 404 `NotFound`, as a path that is no
/// route, before any apiserver request: a segment goes into the request's
/// URL, where it could address another resource.
fn app_origin(
    public: &Public,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Origin, Refusal> {
    let Ok(Path((namespace, name))) = path else {
        return Err(not_found("the app route's path segments are not UTF-8"));
    };
    if !validate::is_dns1123_label(&namespace) || !validate::is_dns1123_subdomain(&name) {
        return Err(not_found(
            "the app route's path segments are not a namespace and a name",
        ));
    }
    if public
        .cfg
        .namespace
        .as_ref()
        .is_some_and(|watched| *watched != namespace)
    {
        return Err(not_found(
            "the app route names a namespace this operator does not watch",
        ));
    }
    Ok(Origin::App { namespace, name })
}

/// The parameters a callback uses, each present once and of its shape.
struct Callback<'a> {
    code: &'a str,
    state: &'a str,
    timestamp: u64,
}

impl<'a> Callback<'a> {
    /// Checks `code`, `hmac`, `state` and `timestamp` (the `hmac`'s value
    /// is checked again, against the secrets, by `verify_oauth_query`).
    fn parse(params: &'a Params) -> Result<Self, Invalid> {
        params.required("hmac", validate::is_hmac_hex)?;
        let state = params.required("state", state::is_well_formed)?;
        let timestamp = params
            .required("timestamp", validate::is_timestamp)?
            .parse()
            .map_err(|_| Invalid("timestamp"))?;
        let code = params.required("code", validate::is_code)?;
        Ok(Callback {
            code,
            state,
            timestamp,
        })
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

/// What both endpoints check before any apiserver request, in order:
/// OAuth is enabled and the path names an app (else 404, as any unknown
/// path), the query is within bounds and its `shop` is a shop domain
/// given once (else 400). `Ok` is the app, the decoded query and the
/// lower-cased shop.
fn admit_request(
    public: &Public,
    origin: Result<Origin, Refusal>,
    raw: &str,
) -> Result<(Origin, Params, String), Refusal> {
    if public.cfg.public_url.is_none() {
        return Err(not_found(
            "OAuth is not enabled on this operator (set --public-url)",
        ));
    }
    let origin = origin?;
    let params = Params::parse(raw).map_err(invalid)?;
    let shop = params
        .one("shop")
        .map_err(invalid)?
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| validate::is_shop(s))
        .ok_or_else(|| invalid(Invalid("shop")))?;
    Ok((origin, params, shop))
}

/// Where `shop`'s token would go: the allow-lists, then the ShopifyShops
/// and app Secrets (or the ShopifyApp) the apiserver has for it.
async fn admit(public: &Public, origin: &Origin, shop: String) -> Result<Admitted, Refusal> {
    if !shop_allowed(&public.cfg.allowed_shops, &shop) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            &shop,
            "ShopNotAllowed",
            "the shop is not in the operator's --allowed-shops",
        ));
    }
    match origin {
        Origin::Flags => {
            let unknown = |detail: &str| refuse(StatusCode::NOT_FOUND, &shop, "UnknownShop", detail);
            let targets = match public.targets(&shop).await {
                Ok(t) if t.is_empty() => Err(unknown(
                    "no ShopifyShop with app credentials (spec.app.secretRef) for this shop",
                )),
                Ok(t) => Ok(t),
                Err(e) => Err(from_kube(
                    &shop,
                    "cannot read ShopifyShops or their app Secrets",
                    &e,
                    Some(unknown("")),
                )),
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
    start(&public, Ok(Origin::Flags), query).await
}

/// `GET /oauth/{namespace}/{app}/install?shop=…`.
pub async fn app_install(
    State(public): State<Arc<Public>>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let origin = app_origin(&public, path);
    start(&public, origin, query).await
}

/// A refusal or the response, as one answer.
fn answer(r: Result<Response, Refusal>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// 302 to Shopify's authorize URL, with the state cookie.
async fn start(public: &Public, origin: Result<Origin, Refusal>, query: Option<String>) -> Response {
    answer(try_start(public, origin, query.as_deref().unwrap_or_default()).await)
}

async fn try_start(public: &Public, origin: Result<Origin, Refusal>, raw: &str) -> Result<Response, Refusal> {
    let (origin, _, shop) = admit_request(public, origin, raw)?;
    let admitted = admit(public, &origin, shop).await?;
    let shop = &admitted.shop;
    let app = &admitted
        .targets
        .first()
        .ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                shop,
                "UnknownShop",
                "no target for the token",
            )
        })?
        .app;
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
    Ok((
        StatusCode::FOUND,
        [(header::LOCATION, location), (header::SET_COOKIE, cookie)],
    )
        .into_response())
}

/// `GET /oauth/callback?code&hmac&host&shop&state&timestamp`.
pub async fn callback(
    State(public): State<Arc<Public>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    finish(&public, Ok(Origin::Flags), &headers, query.unwrap_or_default()).await
}

/// `GET /oauth/{namespace}/{app}/callback?…`.
pub async fn app_callback(
    State(public): State<Arc<Public>>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let origin = app_origin(&public, path);
    finish(&public, origin, &headers, query.unwrap_or_default()).await
}

/// The state cookie's value, if the request has exactly one (two could
/// each be tried, which would make a planted cookie count).
fn state_cookie(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == STATE_COOKIE)
        .map(|(_, v)| v);
    let first = values.next();
    if values.next().is_some() {
        return None;
    }
    first
}

/// Every check of the callback that needs its targets; `Ok` is the app
/// that signed it, the targets it signed for, and whether the previous
/// secret was the one.
async fn verify<'a>(
    public: &Public,
    headers: &HeaderMap,
    raw: &str,
    callback: &Callback<'_>,
    admitted: &'a Admitted,
) -> Result<(&'a AppCredentials, Vec<&'a Target>, bool), Refusal> {
    let shop = admitted.shop.as_str();
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
    // One answer for every state problem: which one it was is in the log.
    let invalid_state = |detail: &str| refuse(StatusCode::FORBIDDEN, shop, "InvalidState", detail);
    let bound =
        state_cookie(headers).is_some_and(|c| constant_time_eq(c.as_bytes(), callback.state.as_bytes()));
    if !bound {
        return Err(invalid_state(
            "the callback does not come from the browser that started the installation (no single state cookie matching its state)",
        ));
    }
    let now = unix_now();
    let app = &first.app;
    let (nonce, expiry) = state::verify(callback.state, shop, now, &app.secret, app.previous.as_ref())
        .map_err(|e| invalid_state(e.message()))?;
    let t = callback.timestamp;
    if t.saturating_add(public.cfg.state_ttl.as_secs()) < now || t > now + FUTURE_SKEW_SECS {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            shop,
            "StaleCallback",
            "the callback's timestamp is too far from now",
        ));
    }
    // Last, so a refused callback doesn't use up its state.
    match nonce::take(&public.client, &public.cfg.nonce_namespace, nonce, expiry, now).await {
        Ok(()) => Ok((app, signed, used_previous)),
        Err(nonce::TakeError::Replayed) => Err(invalid_state(state::StateError::Replayed.message())),
        Err(nonce::TakeError::Api(e)) => {
            Err(from_kube(shop, "cannot record the OAuth state as used", &e, None))
        }
    }
}

async fn finish(
    public: &Public,
    origin: Result<Origin, Refusal>,
    headers: &HeaderMap,
    raw: String,
) -> Response {
    answer(try_finish(public, origin, headers, &raw).await)
}

async fn try_finish(
    public: &Public,
    origin: Result<Origin, Refusal>,
    headers: &HeaderMap,
    raw: &str,
) -> Result<Response, Refusal> {
    let (origin, params, shop) = admit_request(public, origin, raw)?;
    let callback = Callback::parse(&params).map_err(invalid)?;
    let admitted = admit(public, &origin, shop).await?;
    let shop = admitted.shop.as_str();
    let (app, signed, used_previous) = verify(public, headers, raw, &callback, &admitted).await?;
    let grant = public
        .shopify
        .exchange_code(
            shop,
            &app.client_id,
            &app.secret,
            callback.code,
            public.cfg.expiring,
        )
        .await
        .map_err(|e| {
            // The error is scrubbed of the code and the secret by the client.
            let detail = format!("Shopify did not grant a token for the code: {e}");
            match e {
                ShopifyError::Transient { .. }
                | ShopifyError::Throttled { .. }
                | ShopifyError::Protocol(_) => {
                    refuse(StatusCode::BAD_GATEWAY, shop, "ShopifyUnavailable", &detail)
                }
                _ => refuse(StatusCode::BAD_REQUEST, shop, "CodeRejected", &detail).warn(),
            }
        })?;
    let now_ts = jiff::Timestamp::now();
    let mut stored = Vec::new();
    for t in &signed {
        let (ns, name) = &t.secret;
        if let Err(e) = token_store::store_grant(&public.client, ns, name, &grant, now_ts).await {
            // The code is spent: the merchant has to start again.
            let what = format!(
                "storing the OAuth token in Secret {ns}/{name} (the code is spent; the merchant must start again)"
            );
            return Err(from_kube(shop, &what, &e, None));
        }
        stored.push(format!("{ns}/{name}"));
    }
    let mut created = None;
    if let Some((shopify_app, create)) = &admitted.app {
        if *create && let Some(first) = signed.first() {
            match apps::create_shop(&public.client, shopify_app, shop, &first.secret.1).await {
                Ok(name) => created = Some(name),
                Err(message) => {
                    return Err(refuse(
                        StatusCode::CONFLICT,
                        shop,
                        "ShopCreateFailed",
                        &format!("creating the installed shop's ShopifyShop: {message}"),
                    )
                    .warn());
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
    // Where the token went (Secret and ShopifyShop names) is for the log:
    // the browser learns only that it worked.
    let body = super::with_request_id(&format!("Installed: {shop}"));
    Ok((StatusCode::OK, [(header::SET_COOKIE, clear)], body).into_response())
}
