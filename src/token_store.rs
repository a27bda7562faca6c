//! The token Secret's layout and the one way a token grant is stored in it,
//! shared by refresh, migration and the OAuth callback; plus reading the
//! app's client credentials. Reads and writes Secrets through the apiserver;
//! never talks to Shopify.
//!
//! Every write of a grant is a single Secret update guarded by the
//! resourceVersion that was read, so a concurrent writer makes it fail
//! (409) rather than be overwritten half-way.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};

use crate::crd::{ShopifyApp, ShopifyShop};
use shopify_admin::{ClientSecret, TokenGrant};

/// Secret key of the access token.
pub const ACCESS_TOKEN_KEY: &str = "access-token";
/// Secret key of the refresh token.
pub const REFRESH_TOKEN_KEY: &str = "refresh-token";
/// Secret key of the access token's expiry (RFC 3339).
pub const EXPIRES_AT_KEY: &str = "expires-at";
/// Secret key of the refresh token's expiry (RFC 3339).
pub const REFRESH_EXPIRES_AT_KEY: &str = "refresh-token-expires-at";
/// Secret key that keeps a migrated non-expiring token until the expiring
/// token that replaced it has answered a `shop` query.
pub const MIGRATED_FROM_KEY: &str = "migrated-from-access-token";

/// Label on Secrets the operator created (and so may manage).
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "shopify-operator");

/// A Secret value as trimmed text; `None` when absent, empty or not UTF-8.
pub fn text(secret: &Secret, key: &str) -> Option<String> {
    let data = secret.data.as_ref()?.get(key)?;
    String::from_utf8(data.0.clone())
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Writes `grant` into Secret data: the access token, and for an expiring
/// grant its refresh token and both expiries. A non-expiring grant removes
/// stale refresh keys, so the Secret never pairs a token with another
/// token's refresh token. Returns the new access-token expiry. Pure.
pub fn put_grant(
    data: &mut BTreeMap<String, ByteString>,
    grant: &TokenGrant,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut put = |k: &str, v: String| {
        data.insert(k.to_string(), ByteString(v.into_bytes()));
    };
    put(ACCESS_TOKEN_KEY, grant.access_token.expose().to_string());
    let expires_at = grant
        .expires_in
        .map(|s| now + SignedDuration::from_secs(s.min(i64::MAX as u64) as i64));
    if let Some(t) = expires_at {
        put(EXPIRES_AT_KEY, t.to_string());
    }
    if let Some(rt) = &grant.refresh_token {
        put(REFRESH_TOKEN_KEY, rt.expose().to_string());
    }
    if let Some(s) = grant.refresh_token_expires_in {
        put(
            REFRESH_EXPIRES_AT_KEY,
            (now + SignedDuration::from_secs(s.min(i64::MAX as u64) as i64)).to_string(),
        );
    }
    if grant.refresh_token.is_none() {
        for k in [REFRESH_TOKEN_KEY, EXPIRES_AT_KEY, REFRESH_EXPIRES_AT_KEY] {
            data.remove(k);
        }
    }
    expires_at
}

/// The Shopify app's client credentials (`spec.app.secretRef`).
#[derive(Debug, Clone)]
pub struct AppCredentials {
    /// `client-id` (the API key).
    pub client_id: String,
    /// `client-secret`.
    pub secret: ClientSecret,
    /// `previous-client-secret`, while a rotation is under way.
    pub previous: Option<ClientSecret>,
    /// `scopes` (comma-separated), what OAuth asks the merchant for.
    pub scopes: Option<String>,
}

impl AppCredentials {
    /// Reads them from a Secret; `None` without `client-id` and `client-secret`.
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        Some(AppCredentials {
            client_id: text(secret, "client-id")?,
            secret: ClientSecret::new(text(secret, "client-secret")?),
            previous: text(secret, "previous-client-secret").map(ClientSecret::new),
            scopes: text(secret, "scopes"),
        })
    }
}

/// Reads the app Secret `name` in `ns`; `None` if it or its keys are missing.
pub async fn app_credentials(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<AppCredentials>, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    Ok(secrets
        .get_opt(name)
        .await?
        .as_ref()
        .and_then(AppCredentials::from_secret))
}

/// The credentials of ShopifyApp `ns/name`; `None` when the app, its
/// Secret or the keys are missing.
pub async fn named_app_credentials(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<AppCredentials>, kube::Error> {
    let apps: Api<ShopifyApp> = Api::namespaced(client.clone(), ns);
    match apps.get_opt(name).await? {
        Some(app) => app_credentials(client, ns, &app.spec.credentials_secret_ref.name).await,
        None => Ok(None),
    }
}

/// The app credentials of `shop`, in its namespace: its `spec.app.secretRef`,
/// else the `credentialsSecretRef` of the ShopifyApp its `spec.appRef`
/// names. `None` without either, or when the app, the Secret or its keys
/// are missing.
pub async fn shop_app_credentials(
    client: &Client,
    shop: &ShopifyShop,
) -> Result<Option<AppCredentials>, kube::Error> {
    let ns = shop.namespace().unwrap_or_default();
    match (&shop.spec.app, &shop.spec.app_ref) {
        (Some(app), _) => app_credentials(client, &ns, &app.secret_ref.name).await,
        (None, Some(r)) => named_app_credentials(client, &ns, &r.name).await,
        (None, None) => Ok(None),
    }
}

/// Stores a freshly granted token (OAuth install) in Secret `name`: creates
/// it, labelled as the operator's, or updates the token keys of the existing
/// one, guarded by its resourceVersion and retried on a conflict — a new
/// grant supersedes whatever was there. Other keys are kept.
pub async fn store_grant(
    client: &Client,
    ns: &str,
    name: &str,
    grant: &TokenGrant,
    now: Timestamp,
) -> Result<Secret, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = match secrets.get_opt(name).await? {
            None => {
                let mut data = BTreeMap::new();
                put_grant(&mut data, grant, now);
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_string()),
                        namespace: Some(ns.to_string()),
                        labels: Some(BTreeMap::from([(
                            MANAGED_BY_LABEL.0.to_string(),
                            MANAGED_BY_LABEL.1.to_string(),
                        )])),
                        ..Default::default()
                    },
                    type_: Some("Opaque".into()),
                    data: Some(data),
                    ..Default::default()
                };
                secrets.create(&PostParams::default(), &secret).await
            }
            Some(mut secret) => {
                let data = secret.data.get_or_insert_with(BTreeMap::new);
                put_grant(data, grant, now);
                data.remove(MIGRATED_FROM_KEY);
                secrets
                    .replace(&secret.name_any(), &PostParams::default(), &secret)
                    .await
            }
        };
        match result {
            Err(kube::Error::Api(e)) if (e.code == 409) && attempts < 5 => continue,
            other => return other,
        }
    }
}
