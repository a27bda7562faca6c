//! The certificate gate end to end, through the real apiserver (with
//! cert-manager's Certificate CRD from its pinned Go module) and
//! shopify-sim, with certificates made here by rcgen: an Ingress host change
//! moves no subscription until the new host's TLS Secret holds a
//! certificate that covers it, is valid, and cert-manager's Certificate for
//! it is Ready — and then moves them at once, in one document.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use rcgen::{CertificateParams, KeyPair, date_time_ymd};
use serde_json::json;
use shopify_operator::controller::certificate_resource;
use shopify_sim::{Fixture, SimConfig, SubscriptionFixture};
use support::{Env, hack_tool, shop_fixture, spec, wait_for};

const DOMAIN: &str = "gate-shop.myshopify.com";
const TOKEN: &str = "shpat_certificate_gate";
const OLD: &str = "oms.popsockets.com";
const NEW: &str = "webhooks.oms.popsockets.com";
const TOPICS: [&str; 3] = ["orders/create", "orders/updated", "products/update"];

/// cert-manager's Certificate CRD, as `hack/crds.sh` provides it.
fn certificate_crd() -> CustomResourceDefinition {
    let dir = hack_tool("THIRD_PARTY_CRDS", "crds.sh");
    let text =
        std::fs::read_to_string(dir.join("cert-manager.io_certificates.yaml")).expect("the Certificate CRD");
    serde_norway::from_str(&text).expect("a CRD")
}

fn fixture() -> Fixture {
    let old = TOPICS
        .iter()
        .map(|t| SubscriptionFixture {
            topic: t.to_string(),
            address: format!("https://{OLD}/webhooks/{}", t.replace('/', "_")),
            ..Default::default()
        })
        .collect();
    Fixture {
        shops: vec![shop_fixture(
            DOMAIN,
            TOKEN,
            &["read_orders", "read_products"],
            old,
        )],
        app: None,
        apps: Vec::new(),
    }
}

/// cert-manager's Certificates in the test's namespace.
fn certificates(env: &Env) -> Api<DynamicObject> {
    Api::namespaced_with(env.client.clone(), &env.ns, &certificate_resource())
}

/// An operator watching one shop whose subscriptions are at `OLD`, with
/// cert-manager's CRD installed; Ready.
async fn start(prefix: &str, endpoint: serde_json::Value) -> Env {
    let cp = testenv::shared(|| {
        let mut c = shopify_operator::crd::all();
        c.push(certificate_crd());
        c
    })
    .await;
    let cfg = SimConfig {
        fixture: fixture(),
        ..Default::default()
    };
    let mut env = Env::with_sim(cp, prefix, cfg).await;
    env.token_secret("tok", TOKEN).await;
    env.ingress("oms", OLD).await;
    env.create_shop("shop", spec(DOMAIN, "tok", endpoint, &TOPICS))
        .await;
    env.start_operator("5m");
    env.wait_condition("shop", "Ready", "True", None).await;
    assert_eq!(env.sim.counters(DOMAIN).mutations, 0, "adoption at the old host");
    env
}

/// Waits until every subscription points at `host`.
async fn all_at(env: &Env, host: &str) {
    wait_for(
        &format!("every subscription at {host}"),
        Duration::from_secs(60),
        || async {
            let subs = env.sim.subscriptions(DOMAIN);
            subs.iter()
                .all(|s| s.address.starts_with(&format!("https://{host}/")))
                .then_some(())
        },
    )
    .await
}

/// A self-signed certificate (PEM) for `names`, valid between the dates.
fn certificate(names: &[&str], from: (i32, u8, u8), to: (i32, u8, u8)) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = date_time_ymd(from.0, from.1, from.2);
    params.not_after = date_time_ymd(to.0, to.1, to.2);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

const VALID: ((i32, u8, u8), (i32, u8, u8)) = ((2020, 1, 1), (2099, 1, 1));

struct Gate {
    env: Env,
}

impl Gate {
    async fn put_tls(&self, names: &[&str], (from, to): ((i32, u8, u8), (i32, u8, u8))) {
        let (crt, key) = certificate(names, from, to);
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "new-tls"},
            "type": "kubernetes.io/tls", "stringData": {"tls.crt": crt, "tls.key": key}});
        let api: Api<Secret> = Api::namespaced(self.env.client.clone(), &self.env.ns);
        api.patch(
            "new-tls",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
    }

    /// Waits until the gate holds with a message containing `clue`, and
    /// checks that nothing moved.
    async fn held(&self, clue: &str) {
        let what = format!("EndpointCertificateNotReady saying {clue:?}");
        wait_for(&what, Duration::from_secs(30), || async {
            let (status, reason, message) = self.env.condition("shop", "WebhooksSynced").await?;
            (status == "False" && reason == "EndpointCertificateNotReady" && message.contains(clue))
                .then_some(())
        })
        .await;
        let subs = self.env.sim.subscriptions(DOMAIN);
        assert!(
            subs.iter()
                .all(|s| s.address.starts_with(&format!("https://{OLD}/"))),
            "{clue}: moved before the gate opened: {subs:#?}"
        );
        assert_eq!(self.env.sim.counters(DOMAIN).mutations, 0, "{clue}");
        // cert-manager is expected to finish: Reconciling, not Stalled.
        let (reconciling, reason, _) = self.env.condition("shop", "Reconciling").await.unwrap();
        assert_eq!(
            (reconciling.as_str(), reason.as_str()),
            ("True", "EndpointCertificateNotReady")
        );
        let (stalled, _, _) = self.env.condition("shop", "Stalled").await.unwrap();
        assert_eq!(stalled, "False");
    }

    async fn certificate_ready(&self, ready: bool) {
        let api = certificates(&self.env);
        let status = if ready { "True" } else { "False" };
        let reason = if ready { "Ready" } else { "Issuing" };
        let patch = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "new"},
            "status": {"conditions": [{"type": "Ready", "status": status, "reason": reason,
                "message": format!("test says {reason}"), "lastTransitionTime": "2026-12-02T10:00:00Z"}]}});
        api.patch_status("new", &PatchParams::apply("test").force(), &Patch::Apply(&patch))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_move_only_to_a_host_that_can_serve_https() {
    let env = start("gate", json!({"ingressRef": {"name": "oms"}})).await;

    // cert-manager is asked for a certificate for the new host; not issued yet.
    let certs = certificates(&env);
    let certificate = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "new"},
        "spec": {"secretName": "new-tls", "dnsNames": [NEW], "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}});
    certs
        .patch(
            "new",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&certificate),
        )
        .await
        .unwrap();

    // The Ingress moves to the new host, its TLS Secret does not exist yet.
    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), &env.ns);
    let moved = json!({"spec": {"rules": [{"host": NEW, "http": {"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "oms", "port": {"number": 80}}}}]}}],
        "tls": [{"hosts": [NEW], "secretName": "new-tls"}]}});
    ingresses
        .patch("oms", &PatchParams::default(), &Patch::Merge(&moved))
        .await
        .unwrap();
    let gate = Gate { env };
    gate.held("TLS Secret new-tls not found").await;
    assert_eq!(
        gate.env
            .published("shop", "Warning", "EndpointCertificateNotReady")
            .await,
        1
    );

    // A certificate for other names; expired; not yet valid; a wildcard one
    // label too short.
    gate.put_tls(&["shop.example.com", "*.example.com"], VALID).await;
    gate.held("*.example.com").await;
    gate.put_tls(&[NEW], ((2020, 1, 1), (2021, 1, 1))).await;
    gate.held("expired").await;
    gate.put_tls(&[NEW], ((2099, 1, 1), (2100, 1, 1))).await;
    gate.held("not valid before").await;
    gate.put_tls(&["*.popsockets.com"], VALID).await;
    gate.held("*.popsockets.com").await;

    // A valid wildcard certificate, but cert-manager says not Ready.
    gate.certificate_ready(false).await;
    gate.put_tls(&["*.oms.popsockets.com"], VALID).await;
    gate.held("not Ready").await;
    assert_eq!(
        gate.env
            .published("shop", "Warning", "EndpointCertificateNotReady")
            .await,
        1,
        "one Warning for the whole wait"
    );

    // Ready: every subscription moves, in one document, on the event.
    gate.env.sim.reset_counters();
    let t0 = Instant::now();
    gate.certificate_ready(true).await;
    all_at(&gate.env, NEW).await;
    println!("repointed {:?} after the Certificate became Ready", t0.elapsed());
    let c = gate.env.sim.counters(DOMAIN);
    assert_eq!(c.mutations, 3, "{c:?}");
    assert!(c.requests <= 2, "one list and one document: {c:?}");
    gate.env.wait_condition("shop", "Ready", "True", None).await;
    let ids: Vec<String> = gate
        .env
        .sim
        .subscriptions(DOMAIN)
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids.len(), 3, "updated in place: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_host_is_checked_only_with_tls_secret_ref() {
    let env = start("gate-fixed", json!({"host": OLD})).await;
    let endpoint = json!({"host": NEW, "tlsSecretRef": {"name": "new-tls"}});
    env.shops()
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"webhooks": {"endpoint": endpoint}}})),
        )
        .await
        .unwrap();
    let gate = Gate { env };
    gate.held("TLS Secret new-tls not found").await;
    gate.put_tls(&[NEW], VALID).await;
    all_at(&gate.env, NEW).await;
    // Without tlsSecretRef a fixed host is trusted as it is (TLS is
    // somebody else's): back to the old host at once.
    let shops = gate.env.shops();
    shops
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"webhooks": {"endpoint": {"host": OLD, "tlsSecretRef": null}}}})),
        )
        .await
        .unwrap();
    all_at(&gate.env, OLD).await;
}
