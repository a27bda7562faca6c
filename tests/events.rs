//! Failures are visible where people look first: one shop is walked through
//! the failing reasons the operator has, one after another, through the
//! real apiserver and shopify-sim. Each transition into a failing state
//! publishes exactly one Warning Event with that reason, further passes in
//! the same state publish nothing, and recovery publishes one Normal Event.
//! (That every reason in the registry gets its Event is a unit test of
//! `controller::conditions`; this proves the wiring end to end.)

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use shopify_sim::{Fault, Fixture, ShopFixture, TokenFixture};
use support::{Env, http_addr, reconciles, spec, wait_for};

const DOMAIN: &str = "events-shop.myshopify.com";
const TOKEN: &str = "shpat_events_all_scopes";
const NARROW: &str = "shpat_events_orders_only";

fn fixture() -> Fixture {
    let token = |value: &str, scopes: &[&str]| TokenFixture {
        access_token: value.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        refresh_token: None,
        expires_in_seconds: None,
        client_id: None,
    };
    Fixture {
        shops: vec![ShopFixture {
            domain: DOMAIN.into(),
            tokens: vec![
                token(TOKEN, &["read_orders", "read_products"]),
                token(NARROW, &["read_orders"]),
            ],
            ..Default::default()
        }],
        ..Default::default()
    }
}

struct Walk {
    env: Env,
    addr: String,
    /// Warnings published so far, by reason.
    warnings: BTreeMap<&'static str, i32>,
}

impl Walk {
    /// Waits until `type_` is False with `reason`, then until the operator
    /// has made two more passes, and checks that exactly one more Warning
    /// with that reason was published, and no other Warning; and that
    /// kstatus's pair says `progress` (`Stalled`: a person must act,
    /// `Reconciling`: the operator retries, `""`: neither).
    async fn expect_failure(&mut self, type_: &str, reason: &'static str, progress: &str) {
        self.env
            .wait_condition("shop", type_, "False", Some(reason))
            .await;
        for kstatus in ["Stalled", "Reconciling"] {
            let (status, r, _) = self.env.condition("shop", kstatus).await.expect(kstatus);
            if kstatus == progress {
                assert_eq!(
                    (status.as_str(), r.as_str()),
                    ("True", reason),
                    "{kstatus} for {reason}"
                );
            } else {
                assert_eq!(status, "False", "{kstatus} for {reason}");
            }
        }
        let seen = reconciles(&self.addr).await.unwrap_or_default();
        wait_for("two more passes", Duration::from_secs(30), || async {
            (reconciles(&self.addr).await? >= seen + 2).then_some(())
        })
        .await;
        *self.warnings.entry(reason).or_default() += 1;
        for (r, n) in &self.warnings {
            assert_eq!(
                self.env.published("shop", "Warning", r).await,
                *n,
                "Warnings {r} after the transition into {type_}={reason}"
            );
        }
        // A repeat within minutes (the same reason and note: Shopify
        // failing twice the same way) is a count on the first Event's
        // series, not a second object.
        let mut notes: Vec<_> = self
            .env
            .events("shop", reason)
            .await
            .into_iter()
            .map(|e| e.note)
            .collect();
        let all = notes.len();
        notes.sort();
        notes.dedup();
        assert_eq!(notes.len(), all, "{reason}: one Event object per note: {notes:?}");
    }

    async fn expect_ready(&self) {
        self.env.wait_condition("shop", "Ready", "True", None).await;
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.env.client.clone(), &self.env.ns)
    }

    async fn put_token(&self, data: serde_json::Value) {
        let patch = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tok"}, "data": data});
        self.secrets()
            .patch("tok", &PatchParams::apply("test").force(), &Patch::Apply(&patch))
            .await
            .unwrap();
    }

    async fn ingress(&self, rule: serde_json::Value) {
        let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "oms"}, "spec": {"rules": [rule]}});
        let api: Api<Ingress> = Api::namespaced(self.env.client.clone(), &self.env.ns);
        api.patch(
            "oms",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&ingress),
        )
        .await
        .unwrap();
    }

    async fn patch_spec(&self, spec: serde_json::Value) {
        self.env
            .shops()
            .patch(
                "shop",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
            .unwrap();
    }

    async fn shopify_answers(&mut self, status: u16, type_: &str, reason: &'static str, progress: &str) {
        self.env.sim.inject(Fault::Status {
            shop: Some(DOMAIN.into()),
            status,
            count: 100_000,
        });
        self.expect_failure(type_, reason, progress).await;
        self.env.sim.clear_faults();
        self.expect_ready().await;
    }
}

fn b64(s: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failing_reason_is_one_warning_and_recovery_one_normal_event() {
    let mut env = Env::new("events", fixture()).await;
    env.secrets
        .lock()
        .unwrap()
        .extend([TOKEN.to_string(), NARROW.to_string()]);
    env.create_shop(
        "shop",
        spec(
            DOMAIN,
            "tok",
            json!({"ingressRef": {"name": "oms"}}),
            &["orders/create", "products/update"],
        ),
    )
    .await;
    env.start_operator("1s");
    let addr = http_addr(env.operator.as_ref().unwrap()).await;
    let mut walk = Walk {
        env,
        addr,
        warnings: BTreeMap::new(),
    };

    // The token Secret: missing, without the key, not a token.
    walk.expect_failure("TokenValid", "SecretNotFound", "Stalled")
        .await;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "tok"}, "data": {"token": b64(b"x")}})).unwrap();
    walk.secrets()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    walk.expect_failure("TokenValid", "SecretKeyMissing", "Stalled")
        .await;
    walk.put_token(json!({"access-token": b64(&[0xff, 0xfe])})).await;
    walk.expect_failure("TokenValid", "SecretKeyInvalid", "Stalled")
        .await;

    // A good token; the Ingress: missing, without a host, an invalid host.
    walk.put_token(json!({"access-token": b64(TOKEN.as_bytes())}))
        .await;
    walk.expect_failure("WebhooksSynced", "IngressNotFound", "Stalled")
        .await;
    assert_eq!(walk.env.published("shop", "Normal", "TokenVerified").await, 1);
    let backend = json!({"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "oms", "port": {"number": 80}}}}]});
    walk.ingress(json!({"http": backend})).await;
    walk.expect_failure("WebhooksSynced", "IngressHostMissing", "Stalled")
        .await;
    walk.ingress(json!({"host": "localhost", "http": backend})).await;
    walk.expect_failure("WebhooksSynced", "InvalidHost", "Stalled")
        .await;
    walk.ingress(json!({"host": "oms.popsockets.com", "http": backend}))
        .await;
    walk.expect_ready().await;
    assert_eq!(walk.env.published("shop", "Normal", "InSync").await, 1);

    // Shopify refuses the shop, or fails.
    walk.shopify_answers(402, "TokenValid", "ShopFrozen", "Stalled")
        .await;
    walk.shopify_answers(423, "TokenValid", "ShopLocked", "Stalled")
        .await;
    walk.shopify_answers(404, "TokenValid", "ShopNotFound", "Stalled")
        .await;
    walk.shopify_answers(403, "TokenValid", "MissingScope", "Stalled")
        .await;
    walk.shopify_answers(503, "WebhooksSynced", "ShopifyUnavailable", "Reconciling")
        .await;
    // The same failure again at once: the same Event, counted twice.
    walk.shopify_answers(503, "WebhooksSynced", "ShopifyUnavailable", "Reconciling")
        .await;
    let unavailable = walk.env.events("shop", "ShopifyUnavailable").await;
    assert!(
        unavailable.len() == 1 && unavailable[0].series.as_ref().is_some_and(|s| s.count == 2),
        "the second ShopifyUnavailable is the first one's series: {unavailable:?}"
    );

    // A new generation while Shopify fails is not observed yet (kstatus:
    // InProgress), and is once the change reached Shopify.
    walk.env.sim.inject(Fault::Status {
        shop: Some(DOMAIN.into()),
        status: 503,
        count: 100_000,
    });
    walk.patch_spec(json!({"webhooks": {"topics": ["orders/create", "products/update", "orders/updated"]}}))
        .await;
    walk.expect_failure("WebhooksSynced", "ShopifyUnavailable", "Reconciling")
        .await;
    let generations = || async {
        let shop = walk.env.shops().get("shop").await.unwrap();
        (shop.status.unwrap().observed_generation, shop.metadata.generation)
    };
    let (observed, generation) = generations().await;
    assert!(
        observed < generation,
        "observed {observed:?} of {generation:?} while Shopify fails"
    );
    walk.env.sim.clear_faults();
    walk.expect_ready().await;
    let (observed, generation) = generations().await;
    assert_eq!(observed, generation);

    // A token without read_products for products/update.
    walk.put_token(json!({"access-token": b64(NARROW.as_bytes())}))
        .await;
    walk.expect_failure("WebhooksSynced", "MissingScopes", "Stalled")
        .await;
    walk.put_token(json!({"access-token": b64(TOKEN.as_bytes())}))
        .await;
    walk.expect_ready().await;

    // A sync with a schedule that is not cron.
    let job = json!({"spec": {"template": {"spec": {"containers": [{"name": "sync", "image": "oms"}]}}}});
    walk.patch_spec(json!({"sync": [{"name": "orders", "schedule": "every day", "jobTemplate": job}]}))
        .await;
    walk.expect_failure("SyncHealthy", "InvalidSchedule", "Stalled")
        .await;
    walk.patch_spec(json!({"sync": null})).await;
    walk.expect_ready().await;

    // Observe, and the host moves: drift reported, nothing changed.
    walk.patch_spec(json!({"managementPolicy": "Observe"})).await;
    walk.ingress(json!({"host": "new.popsockets.com", "http": backend}))
        .await;
    walk.expect_failure("WebhooksSynced", "DriftDetected", "Stalled")
        .await;

    // Every Warning says what to do.
    for reason in walk.warnings.keys() {
        for e in walk.env.events("shop", reason).await {
            let note = e.note.unwrap_or_default();
            assert!(note.contains("To do: "), "{reason}: {note}");
        }
    }
}
