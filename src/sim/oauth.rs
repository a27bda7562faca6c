//! Access and refresh tokens: authentication of Admin API calls and the
//! `POST /{shop}/admin/oauth/access_token` endpoint (authorization-code and
//! refresh-token grants, fact sheet §6–§7).
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
    pub scopes: Vec<String>,
    expires_at: Option<Instant>,
    revoked: bool,
    /// Refresh tokens retired when this token is first used.
    retire_on_use: Vec<String>,
}

impl AccessToken {
    pub fn new(scopes: Vec<String>, expires_at: Option<Instant>, retire_on_use: Vec<String>) -> Self {
        Self {
            scopes,
            expires_at,
            revoked: false,
            retire_on_use,
        }
    }
}

pub(crate) struct RefreshToken {
    scopes: Vec<String>,
    expires_at: Instant,
    retired: bool,
    /// The refresh token this one replaced; retired when this one is used.
    parent: Option<String>,
}

impl RefreshToken {
    pub fn new(scopes: Vec<String>, now: Instant, parent: Option<String>) -> Self {
        Self {
            scopes,
            expires_at: now + REFRESH_TTL,
            retired: false,
            parent,
        }
    }
}

/// An authorization code issued through the admin API, single use.
pub(crate) struct CodeGrant {
    shop: String,
    scopes: Vec<String>,
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

impl SimState {
    /// Checks a token of `shop`, returning its scopes. The first use of a
    /// refreshed access token retires the refresh token it replaced.
    pub fn authenticate(&self, shop: &str, token: Option<&str>) -> Result<Vec<String>, AuthError> {
        let mut g = self.lock();
        let s = g.shops.get_mut(&shop_key(shop)).ok_or(AuthError::UnknownShop)?;
        let token = token.ok_or(AuthError::Unauthorized)?;
        let now = Instant::now();
        let t = s.access.get_mut(token).ok_or(AuthError::Unauthorized)?;
        if t.revoked || t.expires_at.is_some_and(|e| now >= e) {
            return Err(AuthError::Unauthorized);
        }
        let scopes = t.scopes.clone();
        let retire = std::mem::take(&mut t.retire_on_use);
        for rt in retire {
            if let Some(r) = s.refresh.get_mut(&rt) {
                r.retired = true;
            }
        }
        Ok(scopes)
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

    /// Issues a single-use authorization code, as the authorize redirect
    /// would. `scopes` defaults to the shop's fixture scopes.
    pub fn issue_code(&self, shop: &str, scopes: Option<Vec<String>>) -> Option<String> {
        let mut g = self.lock();
        let key = shop_key(shop);
        let default_scopes = g.shops.get(&key)?.scopes.clone();
        let code = token("");
        g.codes.insert(
            code.clone(),
            CodeGrant {
                shop: key,
                scopes: scopes.unwrap_or(default_scopes),
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
        let id = param(params, "client_id");
        let secret = param(params, "client_secret");
        let app_ok = g.app.as_ref().is_some_and(|app| {
            id.as_deref() == Some(app.client_id.as_str())
                && secret.as_deref() == Some(app.client_secret.as_str())
        });
        if !app_ok {
            // [U]: Shopify's exact status/body for bad client credentials.
            return Err(oauth_error(401, "invalid_client", "Client authentication failed"));
        }
        let now = Instant::now();
        let grant = param(params, "grant_type");
        let (scopes, expiring, parent) = match grant.as_deref() {
            None | Some("authorization_code") => {
                let code = param(params, "code").unwrap_or_default();
                let valid = g.codes.get(&code).is_some_and(|c| c.shop == key);
                if !valid {
                    return Err(oauth_error(
                        400,
                        "invalid_request",
                        "The authorization code was not found or was already used",
                    ));
                }
                let grant = g.codes.remove(&code).expect("checked above");
                let expiring = matches!(param(params, "expiring").as_deref(), Some("1" | "true"));
                (grant.scopes, expiring, None)
            }
            Some("refresh_token") => {
                let rt = param(params, "refresh_token").unwrap_or_default();
                let shop = g.shops.get_mut(&key).expect("checked above");
                let Some(r) = shop.refresh.get(&rt).filter(|r| !r.retired && now < r.expires_at) else {
                    // [U]: the wording of Shopify's answer for a stale refresh token.
                    return Err(oauth_error(
                        400,
                        "invalid_grant",
                        "The refresh token is invalid or has expired",
                    ));
                };
                let scopes = r.scopes.clone();
                // Using a refresh token proves its predecessor's response arrived.
                if let Some(parent) = r.parent.clone()
                    && let Some(p) = shop.refresh.get_mut(&parent)
                {
                    p.retired = true;
                }
                (scopes, true, Some(rt))
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
                .insert(access.clone(), AccessToken::new(scopes, None, Vec::new()));
            return Ok(json!({"access_token": access, "scope": scope}));
        }
        let refresh = token("shprt_");
        let retire = parent.iter().cloned().collect();
        shop.refresh
            .insert(refresh.clone(), RefreshToken::new(scopes.clone(), now, parent));
        shop.access.insert(
            access.clone(),
            AccessToken::new(scopes, Some(now + ACCESS_TTL), retire),
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
