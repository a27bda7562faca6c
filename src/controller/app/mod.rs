//! The ShopifyApp controller: checks the app's credentials Secret, counts
//! the ShopifyShops whose `spec.appRef` names it (and how many are Ready),
//! and applies its status only when that changes. Reads one Secret per
//! pass and the shop controller's store; writes ShopifyApp status. The
//! counters the public endpoints keep (`installs`, `uninstalls`,
//! `previousSecretLastUsed`) are theirs: never applied here.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use super::Error;
use super::conditions::{self, Cond, ConditionType, Reason, Status};
use crate::crd::{ShopifyApp, ShopifyAppStatus, ShopifyShop};
use crate::names::FIELD_MANAGER;
use crate::token_store::{AppCredentials, text};

/// What an app pass needs.
struct AppsCtx {
    client: Client,
    shops: Store<ShopifyShop>,
    /// The store holds only this shard's shops: count from the apiserver,
    /// so every shard writes the same status.
    sharded: bool,
}

/// Runs the ShopifyApp controller until `shutdown`; `shop_changes` names
/// the apps whose shops changed (the shop watch sends them).
pub(super) async fn run(
    client: Client,
    namespace: Option<String>,
    sharded: bool,
    shops: Store<ShopifyShop>,
    shop_changes: impl futures::Stream<Item = ObjectRef<ShopifyApp>> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (apps, secrets) = match &namespace {
        Some(ns) => (
            Api::<ShopifyApp>::namespaced(client.clone(), ns),
            Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let controller = Controller::new(apps, watcher::Config::default());
    let app_store = controller.store();
    controller
        .watches(secrets, watcher::Config::default(), move |secret| {
            let name = secret.name_any();
            app_store
                .state()
                .iter()
                .filter(|a| a.namespace() == secret.namespace() && a.spec.credentials_secret_ref.name == name)
                .map(|a| ObjectRef::from_obj(a.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_on(shop_changes)
        .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_millis(500)))
        .graceful_shutdown_on(shutdown)
        .run(
            reconcile,
            error_policy,
            Arc::new(AppsCtx {
                client,
                shops,
                sharded,
            }),
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "ShopifyApp reconcile stream");
            }
        })
        .await;
}

async fn reconcile(app: Arc<ShopifyApp>, ctx: Arc<AppsCtx>) -> Result<Action, Error> {
    let ns = app.namespace().ok_or(Error::NoNamespace)?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let secret = secrets
        .get_opt(&app.spec.credentials_secret_ref.name)
        .await
        .map_err(Error::AppStatus)?;
    let name = app.name_any();
    let all = if ctx.sharded {
        let api: Api<ShopifyShop> = Api::namespaced(ctx.client.clone(), &ns);
        let listed = api.list(&Default::default()).await.map_err(Error::AppStatus)?;
        listed.items.into_iter().map(Arc::new).collect()
    } else {
        ctx.shops.state()
    };
    let shops: Vec<Arc<ShopifyShop>> = all
        .into_iter()
        .filter(|s| {
            s.namespace().as_deref() == Some(ns.as_str())
                && s.spec.app_ref.as_ref().is_some_and(|r| r.name == name)
        })
        .collect();
    let next = next_status(&app, secret.as_ref(), &shops, &conditions::now());
    if own_fields(app.status.clone().unwrap_or_default()) != next {
        let api: Api<ShopifyApp> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({
            "apiVersion": ShopifyApp::api_version(&()),
            "kind": ShopifyApp::kind(&()),
            "status": next,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::AppStatus)?;
    }
    Ok(Action::requeue(Duration::from_secs(600)))
}

fn error_policy(app: Arc<ShopifyApp>, err: &Error, _: Arc<AppsCtx>) -> Action {
    tracing::warn!(name = %app.name_any(), error = %err, "ShopifyApp reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// The status without the public endpoints' fields: what this controller
/// applies and compares.
fn own_fields(mut s: ShopifyAppStatus) -> ShopifyAppStatus {
    s.installs = None;
    s.uninstalls = None;
    s.previous_secret_last_used = None;
    s
}

/// The app's next status (this controller's fields only). Pure.
fn next_status(
    app: &ShopifyApp,
    secret: Option<&Secret>,
    shops: &[Arc<ShopifyShop>],
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> ShopifyAppStatus {
    let mut status = own_fields(app.status.clone().unwrap_or_default());
    let generation = app.metadata.generation;
    let secret_name = &app.spec.credentials_secret_ref.name;
    let creds = secret.and_then(AppCredentials::from_secret);
    let credentials = match (secret, &creds) {
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
    };
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
    for c in [&credentials, &ready, &reconciling, &stalled] {
        conditions::set(&mut status.conditions, c, generation, now);
    }
    status.observed_generation = generation;
    status.client_id = creds.as_ref().map(|c| c.client_id.clone());
    status.previous_secret_present = secret.map(|s| text(s, "previous-client-secret").is_some());
    let total = i32::try_from(shops.len()).unwrap_or(i32::MAX);
    let ready_shops = shops
        .iter()
        .filter(|s| {
            s.status.as_ref().is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .count();
    let ready_shops = i32::try_from(ready_shops).unwrap_or(i32::MAX);
    status.shops = Some(total);
    status.ready_shops = Some(ready_shops);
    status.shops_ready = Some(format!("{ready_shops}/{total}"));
    status
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
