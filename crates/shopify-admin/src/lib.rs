//! Shopify Admin API client.
//!
//! What the operator needs from Shopify, behind one typed client: listing,
//! creating, updating and deleting webhook subscriptions (GraphQL, batched
//! into one aliased document per plan), token checks (which also name the
//! token's app), uninstalling the app from a shop, the OAuth token endpoint,
//! and HMAC verification of OAuth callbacks and webhook deliveries.
//!
//! Submodules (which touch the network is stated in each header):
//! * [`client`] — [`ShopifyClient`] and its public operations (network).
//! * [`config`] — [`ClientConfig`] and [`ClientStats`].
//! * `exec` — sending one document: pacing, retries, classification (network).
//! * [`oauth`] — token endpoint: code exchange and refresh (network).
//! * [`graphql`] — API versions and query documents.
//! * [`parse`] — responses into subscriptions, pages, results.
//! * [`error`] — [`ShopifyError`], reasons, retryability.
//! * [`response`] — raw HTTP responses into data or errors.
//! * [`bucket`] — query cost and leaky-bucket arithmetic.
//! * [`topic`] — topic names REST ⇄ enum, webhook addresses.
//! * [`scope`] — the access scope a topic needs.
//! * [`token`] — secret newtypes that never print.
//! * [`hmac`] — OAuth query and webhook body signatures.
//! * [`types`] — subscriptions, changes, results, metadata.
//!
//! Facts this follows are in `shared/shopify-api.md`.

#![forbid(unsafe_code)]

pub mod bucket;
pub mod client;
pub mod config;
pub mod error;
mod exec;
pub mod graphql;
pub mod hmac;
pub mod oauth;
pub mod parse;
pub mod response;
pub mod scope;
pub mod token;
pub mod topic;
pub mod types;

pub use bucket::{Bucket, QueryCost, ThrottleStatus};
pub use client::{ClientConfig, ClientStats, ShopifyClient, is_valid_shop_domain};
pub use error::{ShopifyError, UserError};
pub use exec::error_chain;
pub use graphql::ApiVersion;
pub use hmac::{SecretUsed, sign_webhook, verify_oauth_query, verify_webhook};
pub use oauth::TokenGrant;
pub use scope::required_scope;
pub use token::{AccessToken, ClientSecret, RefreshToken, constant_time_eq};
pub use topic::{
    KNOWN_TOPICS, enum_to_rest, is_compliance_topic, rest_to_enum, topic_path_segment, webhook_address,
};
pub use types::{
    Change, ChangeResult, Destination, Format, Listing, Metafield, Options, ResponseMeta, ServedVersion,
    Subscription, TokenInfo,
};

#[cfg(test)]
mod redaction_tests {
    //! The token must never show up in errors, logs or `Debug` output.
    use super::*;

    const SECRET: &str = "shpat_0123456789abcdef_TOPSECRET";

    #[test]
    fn structures_holding_secrets_never_print_them() {
        let token = AccessToken::new(SECRET.into());
        let grant = TokenGrant {
            access_token: token.clone(),
            scope: "read_orders".into(),
            expires_in: Some(3600),
            refresh_token: Some(RefreshToken::new(format!("{SECRET}_refresh"))),
            refresh_token_expires_in: None,
        };
        let secret = ClientSecret::new(SECRET.into());
        let outputs = [
            format!("{token:?} {token} {grant:?} {secret:?} {secret}"),
            format!("{:#?}", (&token, &grant)),
        ];
        for out in outputs {
            assert!(!out.contains(SECRET) && !out.contains("TOPSECRET"), "{out}");
        }
    }

    #[test]
    fn errors_are_scrubbed_of_the_token() {
        let echoed = format!("invalid token {SECRET}");
        let errors = [
            ShopifyError::Protocol(echoed.clone()),
            ShopifyError::Forbidden {
                message: echoed.clone(),
            },
            ShopifyError::Transient {
                message: echoed.clone(),
                outcome_unknown: true,
            },
            ShopifyError::UserErrors(vec![UserError {
                field: vec![],
                message: echoed.clone(),
            }]),
            ShopifyError::OAuth {
                error: echoed.clone(),
                description: Some(echoed.clone()),
            },
            ShopifyError::InvalidInput(echoed.clone()),
        ];
        for e in errors {
            let e = e.redacted(SECRET);
            let out = format!("{e} {e:?} {}", e.reason());
            assert!(!out.contains(SECRET), "{out}");
            assert!(out.contains("***"), "{out}");
        }
    }

    #[tokio::test]
    async fn errors_from_requests_do_not_contain_the_token() {
        // A port nobody listens on: the connection error names the URL, never the token.
        let client = ShopifyClient::new(ClientConfig {
            base_url: "http://127.0.0.1:9/{shop}".into(),
            max_retries: 0,
            connect_timeout: std::time::Duration::from_millis(500),
            ..Default::default()
        })
        .unwrap();
        let token = AccessToken::new(SECRET.into());
        let e = client
            .list_subscriptions("pop.myshopify.com", "2025-07", &token)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ShopifyError::Transient {
                    outcome_unknown: false,
                    ..
                }
            ),
            "{e:?}"
        );
        let out = format!("{e} {e:?} {client:?}");
        assert!(!out.contains(SECRET), "{out}");
        let e = client
            .list_subscriptions("evil.com/steal?", "2025-07", &token)
            .await
            .unwrap_err();
        assert!(matches!(e, ShopifyError::InvalidInput(_)));
        assert_eq!(client.request_count(), 1, "an invalid shop sends nothing");
        let bad_header = AccessToken::new("tok\nen".into());
        let e = client
            .token_info("pop.myshopify.com", "2025-07", &bad_header)
            .await
            .unwrap_err();
        assert!(!format!("{e:?}").contains("tok\nen"));
    }
}
