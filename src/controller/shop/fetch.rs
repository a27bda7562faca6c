//! Fetches what a ShopifyShop references — its token Secret and Ingress —
//! and turns "not there" into typed outcomes the status can report. Reads
//! the Secret from the apiserver and the Ingress from the watch's store;
//! writes nothing.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

use super::host::{self, Endpoint, HostError, Tls};
use crate::crd::ShopifyShop;
use shopify_admin::AccessToken;

use crate::controller::conditions::Reason;
use crate::token_store::ACCESS_TOKEN_KEY;

/// Why the token could not be read. Each variant is a condition reason.
#[derive(Debug, Clone, PartialEq, Eq)]
// Named as the condition reasons they become.
#[allow(clippy::enum_variant_names)]
pub enum TokenError {
    /// The Secret does not exist.
    SecretNotFound(String),
    /// The Secret has no `access-token`, or it is empty.
    SecretKeyMissing(String),
    /// The value is not a usable token (not UTF-8, has spaces, too long).
    SecretKeyInvalid(String),
}

impl TokenError {
    /// CamelCase condition reason.
    pub fn reason(&self) -> Reason {
        match self {
            TokenError::SecretNotFound(_) => Reason::SecretNotFound,
            TokenError::SecretKeyMissing(_) => Reason::SecretKeyMissing,
            TokenError::SecretKeyInvalid(_) => Reason::SecretKeyInvalid,
        }
    }

    /// Message for people; names the Secret and key, never the value.
    pub fn message(&self) -> String {
        match self {
            TokenError::SecretNotFound(s) => format!("Secret {s} not found"),
            TokenError::SecretKeyMissing(s) => format!("Secret {s} has no non-empty key {ACCESS_TOKEN_KEY}"),
            TokenError::SecretKeyInvalid(s) => {
                format!("Secret {s} key {ACCESS_TOKEN_KEY} is not a valid token (must be printable ASCII)")
            }
        }
    }
}

/// Reads the shop's access token. Trailing whitespace (a newline from
/// `echo`) is trimmed; anything else odd is refused rather than sent.
pub async fn token(
    client: &Client,
    shop: &ShopifyShop,
) -> Result<Result<AccessToken, TokenError>, kube::Error> {
    let name = &shop.spec.token.secret_ref.name;
    Ok(match token_secret(client, shop).await? {
        None => Err(TokenError::SecretNotFound(name.clone())),
        Some(secret) => token_from_secret(&secret, name),
    })
}

/// Reads the shop's token Secret, `None` when it does not exist.
pub async fn token_secret(client: &Client, shop: &ShopifyShop) -> Result<Option<Secret>, kube::Error> {
    let ns = shop.metadata.namespace.as_deref().unwrap_or("default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    secrets.get_opt(&shop.spec.token.secret_ref.name).await
}

/// The pure part of [`token`].
pub fn token_from_secret(secret: &Secret, name: &str) -> Result<AccessToken, TokenError> {
    let raw = secret
        .data
        .as_ref()
        .and_then(|d| d.get(ACCESS_TOKEN_KEY))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(ACCESS_TOKEN_KEY))
                .map(|s| s.clone().into_bytes())
        });
    let Some(raw) = raw else {
        return Err(TokenError::SecretKeyMissing(name.to_string()));
    };
    let Ok(text) = String::from_utf8(raw) else {
        return Err(TokenError::SecretKeyInvalid(name.to_string()));
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(TokenError::SecretKeyMissing(name.to_string()));
    }
    if text.len() > 4096 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::SecretKeyInvalid(name.to_string()));
    }
    Ok(AccessToken::new(text.to_string()))
}

/// Resolves the webhook host and how its certificate is known. `Ok(None)`
/// when the shop has no webhooks. The Ingress comes from the watch's
/// `store` (no request per pass); an Ingress the store does not hold (not
/// listed yet) is asked for.
pub async fn webhook_host(
    client: &Client,
    store: Option<&Store<Ingress>>,
    shop: &ShopifyShop,
) -> Result<Option<Result<Endpoint, HostError>>, kube::Error> {
    let Some(webhooks) = &shop.spec.webhooks else {
        return Ok(None);
    };
    let endpoint = &webhooks.endpoint;
    let resolved = match (&endpoint.host, &endpoint.ingress_ref) {
        (Some(h), _) => Ok(Endpoint {
            host: h.clone(),
            tls: match &endpoint.tls_secret_ref {
                Some(r) => Tls::Secret(r.name.clone()),
                None => Tls::Trusted("a fixed host without tlsSecretRef is not checked"),
            },
        }),
        (None, Some(r)) => {
            let ns = shop.metadata.namespace.as_deref().unwrap_or("default");
            let stored = store.and_then(|s| s.get(&ObjectRef::new(&r.name).within(ns)));
            let ingress = match stored {
                Some(i) => Some(i.as_ref().clone()),
                None => {
                    Api::<Ingress>::namespaced(client.clone(), ns)
                        .get_opt(&r.name)
                        .await?
                }
            };
            match ingress {
                None => Err(HostError::IngressNotFound(r.name.clone())),
                Some(i) => match host::ingress_host(&i) {
                    None => Err(HostError::IngressHostMissing(r.name.clone())),
                    Some(h) => Ok(Endpoint {
                        tls: host::ingress_tls(&i, &h),
                        host: h,
                    }),
                },
            }
        }
        // The schema forbids it; report rather than guess.
        (None, None) => Err(HostError::IngressHostMissing(String::new())),
    };
    Ok(Some(
        resolved.and_then(|e| host::validate_host(&e.host).map(|()| e)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn secret(value: Option<&[u8]>) -> Secret {
        Secret {
            data: value.map(|v| BTreeMap::from([(ACCESS_TOKEN_KEY.to_string(), ByteString(v.to_vec()))])),
            ..Default::default()
        }
    }

    #[test]
    fn token_outcomes() {
        assert_eq!(
            token_from_secret(&secret(Some(b"shpat_abc\n")), "s")
                .unwrap()
                .expose(),
            "shpat_abc"
        );
        assert_eq!(
            token_from_secret(&secret(None), "s").unwrap_err().reason(),
            Reason::SecretKeyMissing
        );
        assert_eq!(
            token_from_secret(&secret(Some(b"  ")), "s").unwrap_err().reason(),
            Reason::SecretKeyMissing
        );
        assert_eq!(
            token_from_secret(&secret(Some(&[0xff, 0xfe])), "s")
                .unwrap_err()
                .reason(),
            Reason::SecretKeyInvalid
        );
        assert_eq!(
            token_from_secret(&secret(Some(b"a b")), "s")
                .unwrap_err()
                .reason(),
            Reason::SecretKeyInvalid
        );
        let huge = vec![b'a'; 1 << 20];
        assert_eq!(
            token_from_secret(&secret(Some(&huge)), "s").unwrap_err().reason(),
            Reason::SecretKeyInvalid
        );
    }

    #[test]
    fn messages_never_carry_the_value() {
        let e = token_from_secret(&secret(Some(b"shpat secret")), "tok").unwrap_err();
        assert!(!e.message().contains("secret") || e.message().contains("Secret tok"));
        assert!(!format!("{e:?}").contains("shpat"));
    }
}
