//! OAuth install and reinstall (fact sheet §6): `/oauth/install?shop=`
//! redirects the merchant to Shopify's authorize page with a signed,
//! expiring `state`; `/oauth/callback` verifies the callback and stores the
//! token Shopify grants for the code in the shop's token Secret.
//!
//! The callback checks, in order: a well-formed shop domain (400), the
//! allow-list (403), a ShopifyShop (or the default app) for the shop (404),
//! the `hmac` with the current or previous client secret (401), the
//! `state` — signature, expiry, single use (403) — and the `timestamp`'s age
//! (403). Only then is the code exchanged; any failure up to and including
//! the exchange writes nothing. Reads ShopifyShops and Secrets, writes the
//! token Secret, calls Shopify's token endpoint.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Public, Refusal, Target, refuse, state, unix_now};
use crate::allow_list::shop_allowed;
use crate::token_store;
use shopify_admin::required_scope;
use shopify_admin::{is_valid_shop_domain, verify_oauth_query};

/// Accepted clock skew for a callback `timestamp` from the future.
const FUTURE_SKEW_SECS: u64 = 60;

fn query_pairs(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Checks what both endpoints check first; `Ok` is the lower-cased shop.
fn admit(public: &Public, shop: Option<&str>) -> Result<String, Refusal> {
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

async fn targets(public: &Public, shop: &str) -> Result<Vec<Target>, Refusal> {
    match public.targets(shop).await {
        Ok(t) if t.is_empty() => Err(refuse(
            StatusCode::NOT_FOUND,
            shop,
            "UnknownShop",
            "no ShopifyShop with app credentials (spec.app.secretRef) for this shop",
        )),
        Ok(t) => Ok(t),
        Err(e) => Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            shop,
            "KubernetesUnavailable",
            &format!("cannot read ShopifyShops: {e}"),
        )),
    }
}

/// The checks both endpoints start with: the `shop` parameter, the
/// allow-list, and where its token would go.
async fn admit_shop(public: &Public, pairs: &[(String, String)]) -> Result<(String, Vec<Target>), Refusal> {
    let shop = admit(public, get(pairs, "shop"))?;
    let targets = targets(public, &shop).await?;
    Ok((shop, targets))
}

/// The scopes to ask for: the app Secret's `scopes`, else what the shops'
/// webhook topics need (empty: the app's configured scopes).
fn scopes(targets: &[Target]) -> String {
    if let Some(s) = targets.iter().find_map(|t| t.app.scopes.clone()) {
        return s;
    }
    let needed: BTreeSet<&str> = targets
        .iter()
        .filter_map(|t| t.shop.as_ref()?.spec.webhooks.as_ref())
        .flat_map(|w| w.topics.iter().filter_map(|t| required_scope(t)))
        .collect();
    needed.into_iter().collect::<Vec<_>>().join(",")
}

/// `GET /oauth/install?shop=…`: 302 to Shopify's authorize URL.
pub async fn install(State(public): State<Arc<Public>>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref().unwrap_or_default());
    let (shop, targets) = match admit_shop(&public, &pairs).await {
        Ok(found) => found,
        Err(r) => return r.into_response(),
    };
    let app = &targets[0].app;
    let expiry = unix_now() + public.cfg.state_ttl.as_secs();
    let state = state::issue(&shop, expiry, &app.secret);
    let redirect_uri = public
        .cfg
        .public_url
        .as_ref()
        .and_then(|u| u.join("oauth/callback").ok())
        .map(|u| u.to_string())
        .unwrap_or_default();
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &app.client_id)
        .append_pair("scope", &scopes(&targets))
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("state", &state)
        .finish();
    let location = format!(
        "{}/admin/oauth/authorize?{query}",
        public.shopify.shop_root(&shop)
    );
    tracing::info!(shop, "OAuth install: redirecting to Shopify");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// `GET /oauth/callback?code&hmac&host&shop&state&timestamp`.
pub async fn callback(State(public): State<Arc<Public>>, RawQuery(query): RawQuery) -> Response {
    let raw = query.unwrap_or_default();
    let pairs = query_pairs(&raw);
    let (shop, targets) = match admit_shop(&public, &pairs).await {
        Ok(found) => found,
        Err(r) => return r.into_response(),
    };
    // Only the targets whose app signed this callback get its token.
    let signed: Vec<&Target> = targets
        .iter()
        .filter(|t| verify_oauth_query(&raw, &t.app.secret, t.app.previous.as_ref()).is_some())
        .collect();
    let Some(first) = signed.first() else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            &shop,
            "InvalidHmac",
            "the callback's hmac does not verify with the app's client secret",
        )
        .into_response();
    };
    let now = unix_now();
    let state_value = get(&pairs, "state").unwrap_or_default();
    let checked = state::verify(
        state_value,
        &shop,
        now,
        &first.app.secret,
        first.app.previous.as_ref(),
    )
    .and_then(|(nonce, expiry)| public.used.take(nonce, expiry, now));
    if let Err(e) = checked {
        return refuse(StatusCode::FORBIDDEN, &shop, "InvalidState", e.message()).into_response();
    }
    let fresh = get(&pairs, "timestamp")
        .and_then(|t| t.parse::<u64>().ok())
        .is_some_and(|t| t + public.cfg.state_ttl.as_secs() >= now && t <= now + FUTURE_SKEW_SECS);
    if !fresh {
        return refuse(
            StatusCode::FORBIDDEN,
            &shop,
            "StaleCallback",
            "the callback's timestamp is missing or too far from now",
        )
        .into_response();
    }
    let Some(code) = get(&pairs, "code").filter(|c| !c.is_empty()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            &shop,
            "MissingCode",
            "the callback has no code",
        )
        .into_response();
    };
    let grant = match public
        .shopify
        .exchange_code(
            &shop,
            &first.app.client_id,
            &first.app.secret,
            code,
            public.cfg.expiring,
        )
        .await
    {
        Ok(g) => g,
        Err(e) => {
            return refuse(
                StatusCode::BAD_GATEWAY,
                &shop,
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
        match token_store::store_grant(&public.client, ns, name, &grant, now_ts).await {
            Ok(_) => stored.push(format!("{ns}/{name}")),
            Err(e) => {
                // The code is spent: the merchant has to start again.
                tracing::error!(shop, secret = %format!("{ns}/{name}"), error = %e, "storing the OAuth token failed");
                return refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &shop,
                    "SecretWriteFailed",
                    &format!(
                        "the token could not be stored in Secret {ns}/{name}; start the installation again"
                    ),
                )
                .into_response();
            }
        }
    }
    tracing::info!(shop, secrets = ?stored, expiring = grant.refresh_token.is_some(), "OAuth install: token stored");
    (
        StatusCode::OK,
        format!(
            "{shop} is installed; its token is stored in Secret {}\n",
            stored.join(", ")
        ),
    )
        .into_response()
}
