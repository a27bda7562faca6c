//! The ShopifyApp controller: checks the app's credentials Secret, counts
//! the ShopifyShops whose `spec.appRef` names it (and how many are Ready),
//! and applies its status only when that changes. Reads one Secret per
//! pass and the shop controller's store; writes ShopifyApp status. The
//! counters the public endpoints keep (`installs`, `uninstalls`,
//! `previousSecretLastUsed`) are theirs: never applied here. This module
//! is its driver (run, reconcile, error_policy); `status` builds what it
//! applies (pure). It lives apart from `shop`: what it shares with the
//! shop controller (conditions, the error type) is one level up.

mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use super::{Error, conditions};
use crate::crd::{ShopifyApp, ShopifyShop};
use crate::names::FIELD_MANAGER;
use status::{next_status, own_fields};

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
