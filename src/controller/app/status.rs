//! The ShopifyApp's status as this controller writes it: `CredentialsValid`
//! (and the Ready/kstatus trio it alone decides), the client id, and how
//! many of the app's shops there are and are Ready. Pure: the pass reads
//! the Secret and the shops, and applies what this builds.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::controller::conditions::{self, Cond, ConditionType, Reason, Status};
use crate::crd::{HandoverPhase, ShopifyApp, ShopifyAppStatus, ShopifyShop};
use crate::token_store::{AppCredentials, text};

/// The status without the public endpoints' fields: what this controller
/// applies and compares.
pub(super) fn own_fields(mut s: ShopifyAppStatus) -> ShopifyAppStatus {
    s.installs = None;
    s.uninstalls = None;
    s.previous_secret_last_used = None;
    s
}

/// The app's next status (this controller's fields only). Pure.
pub(super) fn next_status(
    app: &ShopifyApp,
    secret: Option<&Secret>,
    shops: &[Arc<ShopifyShop>],
    now: &Time,
) -> ShopifyAppStatus {
    let mut status = own_fields(app.status.clone().unwrap_or_default());
    let generation = app.metadata.generation;
    let creds = secret.and_then(AppCredentials::from_secret);
    let credentials = credentials_valid(&app.spec.credentials_secret_ref.name, secret, creds.as_ref());
    let (ready, reconciling, stalled) = summary(&credentials);
    for c in [&credentials, &ready, &reconciling, &stalled] {
        conditions::set(&mut status.conditions, c, generation, now);
    }
    status.observed_generation = generation;
    status.client_id = creds.as_ref().map(|c| c.client_id.clone());
    status.previous_secret_present = secret.map(|s| text(s, "previous-client-secret").is_some());
    let total = i32::try_from(shops.len()).unwrap_or(i32::MAX);
    let ready_shops = i32::try_from(ready_count(shops)).unwrap_or(i32::MAX);
    status.shops = Some(total);
    status.ready_shops = Some(ready_shops);
    status.shops_ready = Some(format!("{ready_shops}/{total}"));
    status.shops_waiting = Some(i32::try_from(waiting_count(app, shops)).unwrap_or(i32::MAX));
    status
}

/// How many of `shops` move to `app` and wait for the merchant to install it.
fn waiting_count(app: &ShopifyApp, shops: &[Arc<ShopifyShop>]) -> usize {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    shops
        .iter()
        .filter_map(|s| s.status.as_ref()?.handover.as_ref())
        .filter(|h| h.to == name && h.phase == HandoverPhase::WaitingForInstall)
        .count()
}

/// `CredentialsValid`: whether the Secret exists and has both keys.
fn credentials_valid(secret_name: &str, secret: Option<&Secret>, creds: Option<&AppCredentials>) -> Cond {
    match (secret, creds) {
        (None, _) => Cond::new(
            ConditionType::CredentialsValid,
            Status::False,
            Reason::SecretNotFound,
            format!("Secret {secret_name} (credentialsSecretRef) does not exist"),
        ),
        (Some(_), None) => Cond::new(
            ConditionType::CredentialsValid,
            Status::False,
            Reason::AppCredentialsMissing,
            format!("Secret {secret_name} needs non-empty keys client-id and client-secret"),
        ),
        (Some(_), Some(_)) => Cond::new(
            ConditionType::CredentialsValid,
            Status::True,
            Reason::CredentialsFound,
            format!("Secret {secret_name} has client-id and client-secret"),
        ),
    }
}

/// `Ready`, `Reconciling` and `Stalled` from `CredentialsValid`, the only
/// condition they aggregate.
fn summary(credentials: &Cond) -> (Cond, Cond, Cond) {
    let ready = match credentials.status {
        Status::True => Cond::new(
            ConditionType::Ready,
            Status::True,
            Reason::Reconciled,
            "the app's credentials are readable",
        ),
        _ => Cond::new(
            ConditionType::Ready,
            Status::False,
            credentials.reason,
            credentials.message.clone(),
        ),
    };
    // Credentials only change when a person edits the Secret: never
    // "in progress" for kstatus.
    let stalled = match credentials.status {
        Status::True => Cond::new(ConditionType::Stalled, Status::False, Reason::Reconciled, ""),
        _ => Cond::new(
            ConditionType::Stalled,
            Status::True,
            credentials.reason,
            credentials.message.clone(),
        ),
    };
    let reconciling = Cond::new(ConditionType::Reconciling, Status::False, Reason::Reconciled, "");
    (ready, reconciling, stalled)
}

/// How many of `shops` are Ready.
fn ready_count(shops: &[Arc<ShopifyShop>]) -> usize {
    shops
        .iter()
        .filter(|s| {
            s.status.as_ref().is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn app() -> ShopifyApp {
        serde_norway::from_str(
            "{apiVersion: shopify-operator.dev/v1alpha1, kind: ShopifyApp, metadata: {name: oms, namespace: p, generation: 2}, \
             spec: {credentialsSecretRef: {name: oms-app}, allowedShops: ['*.myshopify.com']}}",
        )
        .unwrap()
    }

    fn secret(keys: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                keys.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn shop(ready: &str) -> Arc<ShopifyShop> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "shopify-operator.dev/v1alpha1", "kind": "ShopifyShop",
                "metadata": {"name": "s", "namespace": "p"},
                "spec": {"domain": "a.myshopify.com", "token": {"secretRef": {"name": "t"}}, "appRef": {"name": "oms"}},
                "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "R", "message": "",
                                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
            }))
            .unwrap(),
        )
    }

    fn cond<'a>(
        s: &'a ShopifyAppStatus,
        t: &str,
    ) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn counts_shops_and_reads_the_client_id_never_the_secret() {
        let now = conditions::now();
        let s = next_status(
            &app(),
            Some(&secret(&[
                ("client-id", "id-1"),
                ("client-secret", "hush"),
                ("previous-client-secret", "old-hush"),
            ])),
            &[shop("True"), shop("False"), shop("True")],
            &now,
        );
        assert_eq!(s.shops_ready.as_deref(), Some("2/3"));
        assert_eq!(s.client_id.as_deref(), Some("id-1"));
        assert_eq!(s.previous_secret_present, Some(true));
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(s.observed_generation, Some(2));
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("hush"), "{text}");
    }

    #[test]
    fn counts_the_shops_waiting_for_the_merchant_to_install_it() {
        let moving = |to: &str, phase: &str| {
            let mut s = shop("False").as_ref().clone();
            s.status.as_mut().unwrap().handover = Some(
                serde_json::from_value(serde_json::json!({
                    "phase": phase, "to": to, "from": {"name": "oms-legacy", "tokenSecret": "t"}
                }))
                .unwrap(),
            );
            Arc::new(s)
        };
        let shops = [
            moving("oms", "WaitingForInstall"),
            moving("oms", "Blocked"),
            moving("other", "WaitingForInstall"),
            shop("True"),
        ];
        assert_eq!(waiting_count(&app(), &shops), 1);
    }

    #[test]
    fn missing_credentials_stall_the_app() {
        let now = conditions::now();
        let s = next_status(&app(), None, &[], &now);
        assert_eq!(cond(&s, "CredentialsValid").reason, "SecretNotFound");
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(cond(&s, "Stalled").status, "True");
        let s = next_status(&app(), Some(&secret(&[("client-id", "x")])), &[], &now);
        assert_eq!(cond(&s, "CredentialsValid").reason, "AppCredentialsMissing");
        assert_eq!(s.shops_ready.as_deref(), Some("0/0"));
    }

    #[test]
    fn an_unchanged_app_compares_equal_whatever_the_endpoints_counted() {
        let now = conditions::now();
        let mut a = app();
        let s = next_status(&a, None, &[], &now);
        let mut stored = s.clone();
        stored.installs = Some(4);
        a.status = Some(stored);
        let again = next_status(&a, None, &[], &now);
        assert_eq!(own_fields(a.status.clone().unwrap()), again);
    }
}
