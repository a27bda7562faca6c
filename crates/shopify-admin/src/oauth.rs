//! The OAuth token endpoint: authorization-code exchange and the
//! `refresh_token` grant. Touches the network (POST
//! `{root}/admin/oauth/access_token`, JSON body) through the
//! [`ShopifyClient`]'s HTTP client.
//!
//! Retry rules: an authorization code is single-use, so a code exchange is
//! never re-sent once it may have reached Shopify (the caller restarts the
//! OAuth flow). A refresh is re-sent on transient failures: Shopify keeps the
//! previous refresh token usable until the new one is used, so a lost
//! response is recoverable by asking again with the same refresh token.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::ShopifyClient;
use super::error::ShopifyError;
use super::response::classify;
use super::token::{AccessToken, ClientSecret, RefreshToken, redact};

/// `grant_type` of a token exchange (RFC 8693).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Shopify's token type for offline access tokens in a token exchange.
pub const OFFLINE_ACCESS_TOKEN_TYPE: &str = "urn:shopify:params:oauth:token-type:offline-access-token";

/// What the token endpoint granted.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenGrant {
    /// The (offline) access token.
    pub access_token: AccessToken,
    /// Granted scopes, comma-separated as Shopify returns them.
    pub scope: String,
    /// Seconds until the access token expires (expiring tokens only).
    pub expires_in: Option<u64>,
    /// Refresh token (expiring tokens only).
    pub refresh_token: Option<RefreshToken>,
    /// Seconds until the refresh token expires.
    pub refresh_token_expires_in: Option<u64>,
}

impl TokenGrant {
    /// The granted scopes as a list.
    pub fn scopes(&self) -> Vec<String> {
        self.scope
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Deserialize)]
struct RawGrant {
    access_token: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_token_expires_in: Option<u64>,
}

/// Parses a token-endpoint response (status + body). Pure; never panics.
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<TokenGrant, ShopifyError> {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) {
        let raw = v
            .and_then(|v| RawGrant::deserialize(v).ok())
            .ok_or_else(|| ShopifyError::Protocol("token endpoint returned no access_token".into()))?;
        return Ok(TokenGrant {
            access_token: AccessToken::new(raw.access_token),
            scope: raw.scope,
            expires_in: raw.expires_in,
            refresh_token: raw.refresh_token.map(RefreshToken::new),
            refresh_token_expires_in: raw.refresh_token_expires_in,
        });
    }
    if let Some(err) = v.as_ref().and_then(|v| v.get("error")).and_then(Value::as_str)
        && (400..500).contains(&status)
        && status != 429
    {
        return Err(ShopifyError::OAuth {
            error: err.to_owned(),
            description: v
                .as_ref()
                .and_then(|v| v.get("error_description"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    match classify(status, None, body).result {
        Err(e) => Err(e),
        Ok(_) => Err(ShopifyError::Protocol(format!("token endpoint: HTTP {status}"))),
    }
}

impl ShopifyClient {
    /// Exchanges an authorization code for an offline token; `expiring`
    /// asks for an expiring token with a refresh token (`expiring: "1"`).
    pub async fn exchange_code(
        &self,
        shop: &str,
        client_id: &str,
        client_secret: &ClientSecret,
        code: &str,
        expiring: bool,
    ) -> Result<TokenGrant, ShopifyError> {
        let body = json!({
            "client_id": client_id,
            "client_secret": client_secret.expose(),
            "code": code,
            "expiring": if expiring { "1" } else { "0" },
        });
        self.token_request(shop, body, false)
            .await
            .map_err(|e| e.redacted(client_secret.expose()).redacted(code))
    }

    /// Trades a refresh token for a new access/refresh token pair. Store
    /// the new pair atomically: the old refresh token stops working once
    /// the new one is used.
    pub async fn refresh(
        &self,
        shop: &str,
        client_id: &str,
        client_secret: &ClientSecret,
        refresh_token: &RefreshToken,
    ) -> Result<TokenGrant, ShopifyError> {
        let body = json!({
            "client_id": client_id,
            "client_secret": client_secret.expose(),
            "grant_type": "refresh_token",
            "refresh_token": refresh_token.expose(),
        });
        self.token_request(shop, body, true).await.map_err(|e| {
            e.redacted(client_secret.expose())
                .redacted(refresh_token.expose())
        })
    }

    /// Migrates a non-expiring offline token to an expiring pair by token
    /// exchange (shopify.dev "Migrate to expiring offline access tokens").
    /// Safe to repeat: for seven days a retry with the same original token
    /// returns the same pair, so a lost response is recovered by asking
    /// again. The original token stops working once this succeeds.
    pub async fn migrate_to_expiring(
        &self,
        shop: &str,
        client_id: &str,
        client_secret: &ClientSecret,
        token: &AccessToken,
    ) -> Result<TokenGrant, ShopifyError> {
        let body = json!({
            "client_id": client_id,
            "client_secret": client_secret.expose(),
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": token.expose(),
            "subject_token_type": OFFLINE_ACCESS_TOKEN_TYPE,
            "requested_token_type": OFFLINE_ACCESS_TOKEN_TYPE,
            "expiring": "1",
        });
        self.token_request(shop, body, true)
            .await
            .map_err(|e| e.redacted(client_secret.expose()).redacted(token.expose()))
    }

    async fn token_request(
        &self,
        shop: &str,
        body: Value,
        retry_unknown: bool,
    ) -> Result<TokenGrant, ShopifyError> {
        self.check_shop(shop)?;
        let url = format!("{}/admin/oauth/access_token", self.shop_root(shop));
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let max = self.config().max_retries;
        let mut attempt = 0u32;
        loop {
            let sent = self
                .http()
                .post(&url)
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .body(bytes.clone())
                .send()
                .await;
            let (message, not_sent) = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match resp.bytes().await {
                        Ok(b) => match parse_token_response(status, &b) {
                            Err(ShopifyError::Transient { message, .. }) => (message, false),
                            other => return other,
                        },
                        Err(e) => (format!("reading token response: {e}"), false),
                    }
                }
                Err(e) => (e.to_string(), e.is_connect()),
            };
            if !not_sent && !retry_unknown {
                return Err(ShopifyError::Transient {
                    message,
                    outcome_unknown: true,
                });
            }
            if attempt >= max {
                return Err(ShopifyError::Transient {
                    message,
                    outcome_unknown: false,
                });
            }
            attempt += 1;
            tracing::info!(shop, attempt, error = %message, "token endpoint failed; retrying");
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }
}

/// Scrubs several secrets from a message (used by tests and callers that
/// build their own messages).
pub fn redact_all(text: &str, secrets: &[&str]) -> String {
    secrets.iter().fold(text.to_owned(), |t, s| redact(&t, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_non_expiring_and_expiring_grants() {
        let g = parse_token_response(
            200,
            br#"{"access_token":"shpat_abc","scope":"read_orders,write_products"}"#,
        )
        .unwrap();
        assert_eq!(g.access_token.expose(), "shpat_abc");
        assert_eq!(g.scopes(), vec!["read_orders", "write_products"]);
        assert_eq!((g.expires_in, g.refresh_token.is_none()), (None, true));
        let g = parse_token_response(
            200,
            br#"{"access_token":"shpat_x","scope":"read_orders","expires_in":3600,
            "refresh_token":"shprt_y","refresh_token_expires_in":7776000}"#,
        )
        .unwrap();
        assert_eq!(g.expires_in, Some(3600));
        assert_eq!(g.refresh_token.as_ref().unwrap().expose(), "shprt_y");
        assert_eq!(g.refresh_token_expires_in, Some(7_776_000));
        let dbg = format!("{g:?}");
        assert!(!dbg.contains("shpat_x") && !dbg.contains("shprt_y"), "{dbg}");
    }

    #[test]
    fn classifies_failures() {
        let e = parse_token_response(
            400,
            br#"{"error":"invalid_grant","error_description":"code already used"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            ShopifyError::OAuth {
                error: "invalid_grant".into(),
                description: Some("code already used".into())
            }
        );
        assert_eq!(e.reason(), "OAuthGrantRejected");
        assert!(matches!(
            parse_token_response(503, b"down"),
            Err(ShopifyError::Transient { .. })
        ));
        assert_eq!(
            parse_token_response(404, br#"{"errors":"Not Found"}"#),
            Err(ShopifyError::NotFound)
        );
        assert!(matches!(
            parse_token_response(200, b"{}"),
            Err(ShopifyError::Protocol(_))
        ));
        assert!(matches!(
            parse_token_response(429, br#"{"error":"x"}"#),
            Err(ShopifyError::Throttled { .. })
        ));
    }

    #[test]
    fn redact_all_scrubs_each_secret() {
        assert_eq!(
            redact_all("a secret1 b secret2", &["secret1", "secret2"]),
            "a *** b ***"
        );
    }
}
