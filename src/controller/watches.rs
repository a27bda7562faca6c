//! The controllers' wiring: which watches trigger a reconcile of which
//! shop, how they back off, and the kube-runtime Controller that runs
//! [`super::shop::reconcile`], with the ShopifyApp controller beside it
//! (fed by the shop watch). Shared because it wires both. Talks to the
//! apiserver (lists and watches).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, ResourceExt};

use super::shop::{error_policy, gate, inherit, reconcile, sync};
use super::{Context, app};
use crate::crd::{ShopifyApp, ShopifyShop};

/// The annotation client-side apply keeps the last applied manifest in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the shop cache keeps of a shop: everything a pass reads.
/// managedFields are never read here (status is applied, finalizers are
/// merge-patched) and are most of a shop as the apiserver sends it; nor is
/// the copy of the whole manifest that client-side `kubectl apply` (Argo
/// CD's default) keeps in an annotation. The store keeps a clone of what
/// this leaves (kube-runtime's writer clones each object), and a clone is
/// allocated to size, so nothing else needs trimming here (measured with
/// heaptrack: cutting the lists to length changed nothing).
fn trim_for_cache(shop: &mut ShopifyShop) {
    let meta = &mut shop.metadata;
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// A hash of what a reconcile acts on: spec (via generation), annotations
/// (triggers), finalizers and deletion. Status and managed fields are left
/// out on purpose.
fn acted_upon(shop: &ShopifyShop) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    shop.metadata.generation.hash(&mut h);
    shop.metadata.deletion_timestamp.is_some().hash(&mut h);
    shop.metadata.finalizers.hash(&mut h);
    shop.metadata.annotations.hash(&mut h);
    // Recorded by the uninstall endpoint (maybe on another replica).
    let uninstalled = shop.status.as_ref().and_then(|s| s.app_uninstalled.as_ref());
    uninstalled
        .map(|u| (u.time.0.as_second(), &u.secret_resource_version))
        .hash(&mut h);
    Some(h.finish())
}

fn referencing<F>(store: &Store<ShopifyShop>, ns: Option<String>, refers: F) -> Vec<ObjectRef<ShopifyShop>>
where
    F: Fn(&ShopifyShop) -> bool,
{
    store
        .state()
        .iter()
        .filter(|s| s.namespace() == ns && refers(s))
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// The ShopifyApp a shop's `spec.appRef` names.
fn app_of(shop: &ShopifyShop, apps: &Store<ShopifyApp>) -> Option<Arc<ShopifyApp>> {
    let r = shop.spec.app_ref.as_ref()?;
    apps.get(&ObjectRef::new(&r.name).within(&shop.namespace().unwrap_or_default()))
}

/// Whether the shop's webhooks, as its app completes them, go to Ingress
/// `name`.
fn uses_ingress(shop: &ShopifyShop, apps: &Store<ShopifyApp>, name: &str) -> bool {
    let inherited = app_of(shop, apps).map(|app| inherit::effective(&shop.spec, &app).webhooks);
    let webhooks = inherited.unwrap_or_else(|| shop.spec.webhooks.clone());
    webhooks
        .and_then(|w| w.endpoint.ingress_ref)
        .is_some_and(|r| r.name == name)
}

/// Whether Secret `name` is the shop's token or its app's credentials.
fn uses_secret(shop: &ShopifyShop, apps: &Store<ShopifyApp>, name: &str) -> bool {
    shop.spec.token.secret_ref.name == name
        || shop.spec.app.as_ref().is_some_and(|a| a.secret_ref.name == name)
        || app_of(shop, apps).is_some_and(|a| a.spec.credentials_secret_ref.name == name)
}

/// Runs the controllers (ShopifyShop, and ShopifyApp beside it) until
/// `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    use futures::FutureExt;
    let shutdown = shutdown.shared();
    let client = ctx.client.clone();
    // Secrets and Jobs are only triggers: their metadata is all we need
    // (no Secret values in the operator's memory, and far less of it).
    let (shops, ingresses, secrets, jobs) = match &ctx.settings.namespace {
        Some(ns) => (
            Api::<ShopifyShop>::namespaced(client.clone(), ns),
            Api::<Ingress>::namespaced(client.clone(), ns),
            Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), ns),
            Api::<PartialObjectMeta<Job>>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    // ShopifyApps: a store the reconciles read `spec.appRef` from, and
    // triggers for the shops of an app that changed.
    let app_api = match &ctx.settings.namespace {
        Some(ns) => Api::<ShopifyApp>::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (app_store, app_writer) = reflector::store();
    let _ = ctx.apps.set(app_store.clone());
    let (ingress_cache, ingress_writer) = reflector::store();
    let _ = ctx.ingresses.set(ingress_cache);
    // Shops that appear, change (Ready) or go tell the app controller.
    let (app_tx, app_rx) = futures::channel::mpsc::unbounded::<ObjectRef<ShopifyApp>>();
    // Our own status writes must not trigger another reconcile (another
    // Shopify list): only changes to what we act on do.
    let (store, writer) = reflector::store();
    let ready = ctx.ready.clone();
    let gone = ctx.metrics.clone();
    // Sharding: only the shops this operator's selector matches; a shop
    // relabelled away leaves this watch (and the store) as a deletion.
    let shop_config = match &ctx.settings.label_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let shop_stream = watcher(shops, shop_config)
        .backoff(watch_backoff())
        .modify(trim_for_cache)
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(
                watcher::Event::Apply(shop) | watcher::Event::InitApply(shop) | watcher::Event::Delete(shop),
            ) = event
                && let Some(r) = &shop.spec.app_ref
            {
                let app = ObjectRef::new(&r.name).within(&shop.namespace().unwrap_or_default());
                let _ = app_tx.unbounded_send(app);
            }
        })
        .inspect(move |event| match event {
            // Ready once the initial list is in the store (an empty one too).
            Ok(watcher::Event::InitDone) if !ready.swap(true, std::sync::atomic::Ordering::Relaxed) => {
                tracing::info!("initial ShopifyShop list synced; ready");
            }
            // A deleted shop's condition series go with it.
            Ok(watcher::Event::Delete(shop)) => {
                gone.forget_shop(shop.namespace().as_deref().unwrap_or_default(), &shop.name_any());
            }
            _ => {}
        })
        .applied_objects()
        .predicate_filter(acted_upon, PredicateConfig::default());
    let mut controller = Controller::for_stream(shop_stream, store.clone());
    if let Some(jumps) = ctx.clock.jumps() {
        // A manual clock (tests) jumped: reconcile every shop, as real
        // time passing would through the requeues.
        let ticks = futures::stream::unfold(jumps, |mut rx| async move {
            rx.changed().await.ok().map(|()| ((), rx))
        });
        controller = controller.reconcile_all_on(ticks);
    }
    let ingress_store = store.clone();
    let secret_store = store.clone();
    let app_shops = store.clone();
    let (ingress_apps, secret_apps) = (app_store.clone(), app_store.clone());
    let gate_ctx = ctx.clone();
    // cert-manager's Certificates, watched only where cert-manager is
    // installed (its CRD exists); metadata is enough to know one changed.
    let cert_manager = cert_manager_installed(&client).await;
    ctx.gate.set_cert_manager(cert_manager);
    if cert_manager {
        let certificates = match &ctx.settings.namespace {
            Some(ns) => Api::<PartialObjectMeta<DynamicObject>>::namespaced_with(
                client.clone(),
                ns,
                &gate::certificate_resource(),
            ),
            None => Api::<PartialObjectMeta<DynamicObject>>::all_with(
                client.clone(),
                &gate::certificate_resource(),
            ),
        };
        let gate_ctx = ctx.clone();
        controller = controller.watches_stream_with(
            watcher(certificates, watcher::Config::default())
                .backoff(watch_backoff())
                .touched_objects(),
            move |cert: PartialObjectMeta<DynamicObject>| {
                gate_ctx
                    .gate
                    .certificate_changed(&cert.namespace().unwrap_or_default(), &cert.name_any())
            },
            gate::certificate_resource(),
        );
    }
    let shops_done = controller
        // Each trigger watch backs off on its own: one failing (a 410 after
        // an apiserver restart) must not hold back the others' events.
        .watches_stream(
            watcher(ingresses, watcher::Config::default())
                .backoff(watch_backoff())
                // The store is written before the trigger goes out, so the
                // pass it triggers reads the new host.
                .modify(|i| i.metadata.managed_fields = None)
                .reflect(ingress_writer)
                .touched_objects(),
            move |ingress: Ingress| {
                let name = ingress.name_any();
                referencing(&ingress_store, ingress.namespace(), |s| {
                    uses_ingress(s, &ingress_apps, &name)
                })
            },
        )
        .watches_stream(
            watcher(secrets, watcher::Config::default())
                .backoff(watch_backoff())
                .touched_objects(),
            move |secret: PartialObjectMeta<Secret>| {
                let name = secret.name_any();
                let mut shops = referencing(&secret_store, secret.namespace(), |s| {
                    uses_secret(s, &secret_apps, &name)
                });
                // Shops the certificate gate holds back on this Secret.
                shops.extend(
                    gate_ctx
                        .gate
                        .secret_changed(&secret.namespace().unwrap_or_default(), &name),
                );
                shops
            },
        )
        .watches_stream(
            watcher(app_api, watcher::Config::default())
                .backoff(watch_backoff())
                .reflect(app_writer)
                .touched_objects(),
            move |app: ShopifyApp| {
                let name = app.name_any();
                referencing(&app_shops, app.namespace(), |s| {
                    s.spec.app_ref.as_ref().is_some_and(|r| r.name == name)
                })
            },
        )
        .owns_stream(
            watcher(jobs, watcher::Config::default().labels(sync::SHOP_LABEL))
                .backoff(watch_backoff())
                .touched_objects(),
        )
        .trigger_backoff(NoBackoff)
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(ctx.settings.concurrency)
                // Bursts of triggers for one shop (its watch, its Ingress and
                // Secret at start-up, an edit saved twice) become one pass:
                // one Shopify list instead of several.
                .debounce(Duration::from_millis(200)),
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "reconcile stream");
            }
        });
    let app_controller = app::run(
        client.clone(),
        ctx.settings.namespace.clone(),
        ctx.settings.label_selector.is_some(),
        store,
        app_rx,
        shutdown,
    );
    futures::join!(shops_done, app_controller);
}

/// Whether cert-manager's Certificate CRD is installed. Asked once at
/// start-up: installing cert-manager later needs a restart of the operator
/// to watch Certificates (until then a Secret change still opens the gate).
async fn cert_manager_installed(client: &kube::Client) -> bool {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.get_opt(gate::CERTIFICATE_CRD).await {
        Ok(found) => found.is_some(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell whether cert-manager is installed; Certificates are not checked");
            false
        }
    }
}

/// How long watches wait after an error: 0.25 s doubling to 2 s (plus
/// jitter), reset after a minute without errors. kube-runtime's default
/// (0.8 s to 30 s) is one backoff for all trigger watches (Ingress, Secret,
/// Job) together, and a kube-apiserver restart makes each of them fail a few
/// times (connection refused, then 410 Gone for its old resourceVersion and
/// a re-list): with the default, events stopped for over a minute. Two
/// seconds is still gentle on an apiserver that is down (four watches, one
/// request each per ~2-4 s).
fn watch_backoff() -> kube::runtime::utils::ResetTimerBackoff<watcher::ExponentialBackoff> {
    let exponential = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    kube::runtime::utils::ResetTimerBackoff::new(exponential.into(), Duration::from_secs(60))
}

/// No delay on top of the trigger watches' own backoffs (a `None` would
/// end the stream, so it is zero, forever).
struct NoBackoff;

impl Iterator for NoBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for NoBackoff {
    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shop as client-side `kubectl apply` and the operator leave it.
    const APPLIED: &str = r#"
apiVersion: shopify-operator.dev/v1alpha1
kind: ShopifyShop
metadata:
  name: online
  namespace: oms
  generation: 2
  labels: {}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"spec":{"domain":"online.myshopify.com"}}'
  finalizers: [shopify-operator.dev/subscriptions]
  managedFields:
    - {manager: kubectl-client-side-apply, operation: Update, apiVersion: shopify-operator.dev/v1alpha1}
    - {manager: shopify-operator, operation: Apply, apiVersion: shopify-operator.dev/v1alpha1, subresource: status}
spec:
  domain: online.myshopify.com
  token: {secretRef: {name: online-token}}
  webhooks:
    endpoint: {host: oms.popsockets.com}
    topics: [orders/create, orders/updated, orders/paid, orders/cancelled, orders/fulfilled]
status:
  observedGeneration: 2
  webhookHost: oms.popsockets.com
  webhooks:
    - {topic: orders/create, address: https://oms.popsockets.com/webhooks/orders_create, state: InSync}
    - {topic: orders/updated, address: https://oms.popsockets.com/webhooks/orders_updated, state: InSync}
    - {topic: orders/paid, address: https://oms.popsockets.com/webhooks/orders_paid, state: InSync}
    - {topic: orders/cancelled, address: https://oms.popsockets.com/webhooks/orders_cancelled, state: InSync}
    - {topic: orders/fulfilled, address: https://oms.popsockets.com/webhooks/orders_fulfilled, state: InSync}
"#;

    #[test]
    fn the_cache_keeps_what_a_pass_reads_and_no_manifest_copies() {
        let applied: ShopifyShop = serde_norway::from_str(APPLIED).expect("fixture");
        let mut cached = applied.clone();
        trim_for_cache(&mut cached);
        assert_eq!(cached.metadata.managed_fields, None);
        assert_eq!(cached.metadata.annotations, None);
        // What a pass reads is all there.
        assert_eq!(cached.spec, applied.spec);
        assert_eq!(cached.status, applied.status);
        assert_eq!(cached.metadata.finalizers, applied.metadata.finalizers);
        assert_eq!(cached.metadata.labels, applied.metadata.labels);
        assert_eq!(acted_upon(&cached), {
            let mut bare = applied.clone();
            bare.metadata.annotations = None;
            acted_upon(&bare)
        });
    }

    #[test]
    fn other_annotations_stay() {
        let mut shop: ShopifyShop = serde_norway::from_str(APPLIED).expect("fixture");
        shop.annotations_mut()
            .insert(crate::names::RECONCILE_REQUESTED_AT.into(), "1".into());
        trim_for_cache(&mut shop);
        let annotations = shop.metadata.annotations.expect("annotations");
        assert_eq!(annotations.len(), 1);
        assert!(annotations.contains_key(crate::names::RECONCILE_REQUESTED_AT));
    }
}
