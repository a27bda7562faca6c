//! Access and refresh tokens: authentication of Admin API calls and the
//! `POST /{shop}/admin/oauth/access_token` endpoint (authorization-code and
//! refresh-token grants, fact sheet §6–§7).
//!
//! With several apps loaded, the client is authenticated by its own
//! `client_id` and secret, and an authorization code is bound to the app it
//! was issued to: another app presenting it gets the same answer as for an
//! unknown code. Access and refresh tokens belong to an app, as Shopify's
//! do: a token from a code exchange to the app that exchanged the code, a
//! refreshed or migrated one to the app of the token it replaces, a fixture
//! token to the app it names (or the default app, see `state.rs`). Another
//! app's client credentials presenting a refresh token or a token to migrate
//! get the same answer as for an unknown one, and an uninstall revokes only
//! that app's tokens.
//!
//! The rule that matters for a client: after a refresh, the *previous*
//! refresh token keeps working until the newly issued access token is first
//! used (or the new refresh token is), so a refresh whose response was lost
//! can simply be repeated.

use super::state::{SimState, shop_key};
use serde_json::{Value as Json, json};
use std::time::{Duration, Instant};

/// Lifetime of expiring offline access tokens.
pub(crate) const ACCESS_TTL: Duration = Duration::from_secs(3600);
/// Lifetime of refresh tokens (90 days).
pub(crate) const REFRESH_TTL: Duration = Duration::from_secs(7_776_000);

pub(crate) struct AccessToken {
    /// The owning app; `None` is the default app.
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    expires_at: Option<Instant>,
    revoked: bool,
    /// Refresh tokens retired when this token is first used.
    retire_on_use: Vec<String>,
}

impl AccessToken {
    /// Revoked by an uninstall or a migration (expiry aside).
    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    pub fn new(
        client_id: Option<String>,
        scopes: Vec<String>,
        expires_at: Option<Instant>,
        retire_on_use: Vec<String>,
    ) -> Self {
        Self {
            client_id,
            scopes,
            expires_at,
            revoked: false,
            retire_on_use,
        }
    }
}

pub(crate) struct RefreshToken {
    /// The owning app; `None` is the default app.
    pub client_id: Option<String>,
    scopes: Vec<String>,
    expires_at: Instant,
    retired: bool,
    /// The refresh token this one replaced; retired when this one is used.
    parent: Option<String>,
}

impl RefreshToken {
    pub fn new(client_id: Option<String>, scopes: Vec<String>, now: Instant, parent: Option<String>) -> Self {
        Self {
            client_id,
            scopes,
            expires_at: now + REFRESH_TTL,
            retired: false,
            parent,
        }
    }
}

/// How long a migration by token exchange can be repeated with the original
/// token and get the same pair back (shopify.dev changelog, "More resilient
/// token exchanges when migrating tokens without a user session").
pub(crate) const MIGRATION_RETRY_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// `grant_type` of token exchange (RFC 8693), as Shopify's libraries send it.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Token type of an offline access token in a token exchange.
pub const OFFLINE_TOKEN_TYPE: &str = "urn:shopify:params:oauth:token-type:offline-access-token";

/// A non-expiring token traded for an expiring pair.
pub(crate) struct Migration {
    access: String,
    refresh: String,
    at: Instant,
}

/// An authorization code, single use.
pub(crate) struct CodeGrant {
    shop: String,
    scopes: Vec<String>,
    /// The app it was issued to. `None` (a code from the handle or the admin
    /// API that names no app) means the first app at exchange time, so
    /// tests that load their app after issuing codes keep working.
    client_id: Option<String>,
}

/// Why a request could not be authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    UnknownShop,
    Unauthorized,
}

/// A random token with Shopify's prefix convention.
fn token(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// An OAuth error answer: status and `{error, error_description}` body.
pub(crate) type OAuthError = (u16, Json);

fn oauth_error(status: u16, error: &str, description: &str) -> OAuthError {
    (status, json!({"error": error, "error_description": description}))
}

/// Parameters of a token request, from a JSON or form body (values of
/// either kind are read as strings: `expiring: 1` and `expiring=1` agree).
pub(crate) fn param(params: &serde_json::Map<String, Json>, key: &str) -> Option<String> {
    match params.get(key)? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

/// Who an authenticated request is: the token's scopes and its app.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub scopes: Vec<String>,
    /// The token's app binding; `None` is the default app.
    pub client_id: Option<String>,
}

impl SimState {
    /// Checks a token of `shop`, returning its scopes and app. The first
    /// use of a refreshed access token retires the refresh token it replaced.
    pub fn authenticate(&self, shop: &str, token: Option<&str>) -> Result<Caller, AuthError> {
        let mut g = self.lock();
        let s = g.shops.get_mut(&shop_key(shop)).ok_or(AuthError::UnknownShop)?;
        let token = token.ok_or(AuthError::Unauthorized)?;
        let now = Instant::now();
        let t = s.access.get_mut(token).ok_or(AuthError::Unauthorized)?;
        if t.revoked || t.expires_at.is_some_and(|e| now >= e) {
            return Err(AuthError::Unauthorized);
        }
        let caller = Caller {
            scopes: t.scopes.clone(),
            client_id: t.client_id.clone(),
        };
        let retire = std::mem::take(&mut t.retire_on_use);
        for rt in retire {
            if let Some(r) = s.refresh.get_mut(&rt) {
                r.retired = true;
            }
        }
        Ok(caller)
    }

    /// Revokes every token of the shop, as an uninstall does.
    pub fn revoke(&self, shop: &str) -> bool {
        let mut g = self.lock();
        let Some(s) = g.shops.get_mut(&shop_key(shop)) else {
            return false;
        };
        s.access.values_mut().for_each(|t| t.revoked = true);
        s.refresh.values_mut().for_each(|t| t.retired = true);
        true
    }

    /// Makes every access token of the shop expired now (refresh tokens
    /// stay valid), to exercise a client's refresh path without waiting.
    pub fn expire_access_tokens(&self, shop: &str) -> bool {
        let mut g = self.lock();
        let Some(s) = g.shops.get_mut(&shop_key(shop)) else {
            return false;
        };
        let now = Instant::now();
        s.access.values_mut().for_each(|t| t.expires_at = Some(now));
        true
    }

    /// Makes every refresh token of the shop expired now (as 90 days would).
    pub fn expire_refresh_tokens(&self, shop: &str) -> bool {
        let mut g = self.lock();
        let Some(s) = g.shops.get_mut(&shop_key(shop)) else {
            return false;
        };
        let now = Instant::now();
        s.refresh.values_mut().for_each(|t| t.expires_at = now);
        true
    }

    /// Issues a single-use authorization code to `client_id` (`None`: to
    /// whichever app is first when it is exchanged), as the authorize
    /// redirect would. `scopes` defaults to the shop's fixture scopes.
    pub fn issue_code(
        &self,
        shop: &str,
        client_id: Option<&str>,
        scopes: Option<Vec<String>>,
    ) -> Option<String> {
        let mut g = self.lock();
        let key = shop_key(shop);
        let default_scopes = g.shops.get(&key)?.scopes.clone();
        let code = token("");
        g.codes.insert(
            code.clone(),
            CodeGrant {
                shop: key,
                scopes: scopes.unwrap_or(default_scopes),
                client_id: client_id.map(str::to_owned),
            },
        );
        Some(code)
    }

    /// Serves a token request for `shop`. `Ok` is the 200 body.
    pub fn token_request(
        &self,
        shop: &str,
        params: &serde_json::Map<String, Json>,
    ) -> Result<Json, OAuthError> {
        let mut g = self.lock();
        let key = shop_key(shop);
        if !g.shops.contains_key(&key) {
            return Err((404, json!({"errors": "Not Found"})));
        }
        let secret = param(params, "client_secret");
        let Some(id) = param(params, "client_id").filter(|id| {
            g.app(id)
                .is_some_and(|app| secret.as_deref().is_some_and(|s| app.accepts_secret(s)))
        }) else {
            // [U]: Shopify's exact status/body for bad client credentials.
            return Err(oauth_error(401, "invalid_client", "Client authentication failed"));
        };
        // Whether a token bound to `owner` belongs to the authenticated app.
        let default_app = g.resolve(None).to_owned();
        let mine = |owner: &Option<String>| owner.as_deref().unwrap_or(&default_app) == id;
        let now = Instant::now();
        let grant = param(params, "grant_type");
        let (owner, scopes, expiring, parent) = match grant.as_deref() {
            None | Some("authorization_code") => {
                let code = param(params, "code").unwrap_or_default();
                // [U]: whether Shopify burns a code another app presented;
                // here it stays usable by the app it was issued to.
                let valid = g
                    .codes
                    .get(&code)
                    .is_some_and(|c| c.shop == key && mine(&c.client_id));
                if !valid {
                    return Err(oauth_error(
                        400,
                        "invalid_request",
                        "The authorization code was not found or was already used",
                    ));
                }
                let grant = g.codes.remove(&code).expect("checked above");
                // A new grant replaces any migrated pair: no more retries.
                if let Some(shop) = g.shops.get_mut(&key) {
                    shop.migrations.clear();
                }
                let expiring = matches!(param(params, "expiring").as_deref(), Some("1" | "true"));
                (Some(id.clone()), grant.scopes, expiring, None)
            }
            Some("refresh_token") => {
                let rt = param(params, "refresh_token").unwrap_or_default();
                let shop = g.shops.get_mut(&key).expect("checked above");
                // Another app's refresh token is, to this app, no token at all.
                let Some(r) = shop
                    .refresh
                    .get(&rt)
                    .filter(|r| !r.retired && now < r.expires_at && mine(&r.client_id))
                else {
                    // [U]: the wording of Shopify's answer for a stale refresh token.
                    return Err(oauth_error(
                        400,
                        "invalid_grant",
                        "The refresh token is invalid or has expired",
                    ));
                };
                let (owner, scopes) = (r.client_id.clone(), r.scopes.clone());
                // Refreshing a migrated pair ends the migration's retry window.
                shop.migrations.retain(|_, m| m.refresh != rt);
                // Using a refresh token proves its predecessor's response arrived.
                if let Some(parent) = r.parent.clone()
                    && let Some(p) = shop.refresh.get_mut(&parent)
                {
                    p.retired = true;
                }
                (owner, scopes, true, Some(rt))
            }
            Some(TOKEN_EXCHANGE_GRANT) => {
                let shop = g.shops.get_mut(&key).expect("checked above");
                return migrate(shop, params, now, &mine);
            }
            Some(other) => {
                return Err(oauth_error(
                    400,
                    "unsupported_grant_type",
                    &format!("grant_type {other} is not supported by the simulator"),
                ));
            }
        };
        let shop = g.shops.get_mut(&key).expect("checked above");
        let access = token("shpat_");
        let scope = scopes.join(",");
        if !expiring {
            shop.access
                .insert(access.clone(), AccessToken::new(owner, scopes, None, Vec::new()));
            return Ok(json!({"access_token": access, "scope": scope}));
        }
        let refresh = token("shprt_");
        let retire = parent.iter().cloned().collect();
        shop.refresh.insert(
            refresh.clone(),
            RefreshToken::new(owner.clone(), scopes.clone(), now, parent),
        );
        shop.access.insert(
            access.clone(),
            AccessToken::new(owner, scopes, Some(now + ACCESS_TTL), retire),
        );
        Ok(json!({
            "access_token": access,
            "scope": scope,
            "expires_in": ACCESS_TTL.as_secs(),
            "refresh_token": refresh,
            "refresh_token_expires_in": REFRESH_TTL.as_secs(),
        }))
    }
}

/// Revokes the tokens of the app with the resolved `client_id` at the shop,
/// as its uninstall does; other apps' tokens keep working. `default_app` is
/// what a token naming no app resolves to.
pub(crate) fn revoke_app_tokens(shop: &mut super::state::Shop, default_app: &str, client_id: &str) {
    let mine = |owner: &Option<String>| owner.as_deref().unwrap_or(default_app) == client_id;
    shop.access
        .values_mut()
        .filter(|t| mine(&t.client_id))
        .for_each(|t| t.revoked = true);
    shop.refresh
        .values_mut()
        .filter(|t| mine(&t.client_id))
        .for_each(|t| t.retired = true);
}

/// The token-exchange grant that migrates a non-expiring offline token to an
/// expiring pair. The original token stops working for the Admin API; a
/// retry with it within [`MIGRATION_RETRY_WINDOW`] returns the same pair
/// (with a fresh access-token expiry) until that pair is refreshed.
///
/// Only the app that owns the original token can migrate it; to any other
/// app it is an unknown token, and the new pair keeps the original's app.
fn migrate(
    shop: &mut super::state::Shop,
    params: &serde_json::Map<String, Json>,
    now: Instant,
    mine: &dyn Fn(&Option<String>) -> bool,
) -> Result<Json, OAuthError> {
    for key in ["subject_token_type", "requested_token_type"] {
        if param(params, key).as_deref() != Some(OFFLINE_TOKEN_TYPE) {
            return Err(oauth_error(
                400,
                "invalid_request",
                &format!("{key} must be {OFFLINE_TOKEN_TYPE}"),
            ));
        }
    }
    if !matches!(param(params, "expiring").as_deref(), Some("1" | "true")) {
        return Err(oauth_error(400, "invalid_request", "expiring must be 1"));
    }
    let subject = param(params, "subject_token").unwrap_or_default();
    let pair = |m: &Migration, shop: &super::state::Shop| {
        let rt = shop.refresh.get(&m.refresh)?;
        let fresh = !rt.retired
            && now < rt.expires_at
            && now.duration_since(m.at) < MIGRATION_RETRY_WINDOW
            && mine(&rt.client_id);
        fresh.then(|| (m.access.clone(), m.refresh.clone(), rt.scopes.clone()))
    };
    if let Some((access, refresh, scopes)) = shop.migrations.get(&subject).and_then(|m| pair(m, shop)) {
        // A repeated exchange: the same pair; only the access expiry moves.
        let left = shop
            .refresh
            .get(&refresh)
            .map(|r| r.expires_at.saturating_duration_since(now));
        if let Some(t) = shop.access.get_mut(&access) {
            t.expires_at = Some(now + ACCESS_TTL);
        }
        return Ok(json!({
            "access_token": access,
            "scope": scopes.join(","),
            "expires_in": ACCESS_TTL.as_secs(),
            "refresh_token": refresh,
            "refresh_token_expires_in": left.unwrap_or_default().as_secs(),
        }));
    }
    let (owner, scopes) = match shop.access.get(&subject) {
        Some(t) if !t.revoked && t.expires_at.is_none() && mine(&t.client_id) => {
            (t.client_id.clone(), t.scopes.clone())
        }
        _ => {
            // [U]: Shopify's exact answer for a token it can't migrate.
            return Err(oauth_error(
                400,
                "invalid_subject_token",
                "The subject token is not a valid non-expiring offline access token",
            ));
        }
    };
    if let Some(t) = shop.access.get_mut(&subject) {
        t.revoked = true;
    }
    let access = token("shpat_");
    let refresh = token("shprt_");
    shop.refresh.insert(
        refresh.clone(),
        RefreshToken::new(owner.clone(), scopes.clone(), now, None),
    );
    shop.access.insert(
        access.clone(),
        AccessToken::new(owner, scopes.clone(), Some(now + ACCESS_TTL), Vec::new()),
    );
    shop.migrations.insert(
        subject,
        Migration {
            access: access.clone(),
            refresh: refresh.clone(),
            at: now,
        },
    );
    Ok(json!({
        "access_token": access,
        "scope": scopes.join(","),
        "expires_in": ACCESS_TTL.as_secs(),
        "refresh_token": refresh,
        "refresh_token_expires_in": REFRESH_TTL.as_secs(),
    }))
}
