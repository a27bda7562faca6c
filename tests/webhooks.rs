//! End to end: a real `shopify-operator run` process against the real
//! control plane and shopify-sim. Webhooks follow the ingress host, adoption
//! is a no-op, drift is repaired, bad input changes nothing.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use shopify_operator::crd::TopicState;
use shopify_sim::{Fault, Fixture, ShopFixture, SubscriptionFixture, TokenFixture};
use support::{Env, LOST_RESPONSE_HANG, http_addr, reconciles, seed_fixture, spec, wait_for};

const HOST: &str = "oms.popsockets.com";

fn seed_topics(f: &Fixture, shop: usize) -> Vec<String> {
    f.shops[shop]
        .subscriptions
        .iter()
        .map(|s| s.topic.clone())
        .collect()
}

fn token_of(f: &Fixture, shop: usize) -> String {
    f.shops[shop].tokens[0].access_token.clone()
}

/// A one-shop fixture with `subs` (REST topic, address).
fn one_shop(domain: &str, token: &str, subs: &[(&str, &str)]) -> Fixture {
    Fixture {
        shops: vec![ShopFixture {
            domain: domain.into(),
            name: Some("Test shop".into()),
            plan: None,
            tokens: vec![TokenFixture {
                access_token: token.into(),
                scopes: vec![
                    "read_orders".into(),
                    "read_products".into(),
                    "read_customers".into(),
                ],
                refresh_token: None,
                expires_in_seconds: None,
                client_id: None,
            }],
            subscriptions: subs
                .iter()
                .map(|(t, a)| SubscriptionFixture {
                    topic: t.to_string(),
                    address: a.to_string(),
                    ..Default::default()
                })
                .collect(),
        }],
        app: None,
        apps: Vec::new(),
    }
}

fn addr(host: &str, topic: &str) -> String {
    format!("https://{host}/webhooks/{}", topic.replace('/', "_"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_cutover_at_the_same_host_is_a_no_op_and_steady_state_writes_nothing() {
    let fixture = seed_fixture();
    let mut env = Env::new("seed", fixture.clone()).await;
    env.ingress("oms", HOST).await;
    let names = ["offline", "online", "diff"];
    for (i, name) in names.iter().enumerate() {
        let secret = format!("{name}-shopify-token");
        env.token_secret(&secret, &token_of(&fixture, i)).await;
        let topics = seed_topics(&fixture, i);
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        env.create_shop(
            name,
            spec(
                &fixture.shops[i].domain,
                &secret,
                json!({"ingressRef": {"name": "oms"}}),
                &topics,
            ),
        )
        .await;
    }
    env.start_operator("1s");
    for name in names {
        env.wait_condition(name, "Ready", "True", Some("Reconciled"))
            .await;
    }
    // The cutover's promise: nothing changed on Shopify.
    for (i, shop) in fixture.shops.iter().enumerate() {
        let c = env.sim.counters(&shop.domain);
        assert_eq!(c.mutations, 0, "{}: adoption mutated: {c:?}", shop.domain);
        let status = env.shops().get(names[i]).await.unwrap().status.unwrap();
        assert_eq!(status.webhook_host.as_deref(), Some(HOST));
        let n = shop.subscriptions.len();
        assert_eq!(
            status.webhooks_in_sync.as_deref(),
            Some(format!("{n}/{n}").as_str())
        );
        assert!(
            status
                .webhooks
                .iter()
                .all(|w| w.id.as_deref().is_some_and(|id| id.starts_with("gid://")))
        );
    }

    // Steady state: three more resyncs per shop, zero writes, zero mutations.
    let writes_before = env.operator_writes().len();
    let lists_before: Vec<u64> = fixture
        .shops
        .iter()
        .map(|s| env.sim.counters(&s.domain).operation("webhookSubscriptions"))
        .collect();
    wait_for("three resyncs of every shop", Duration::from_secs(30), || async {
        fixture
            .shops
            .iter()
            .zip(&lists_before)
            .all(|(s, before)| env.sim.counters(&s.domain).operation("webhookSubscriptions") >= before + 3)
            .then_some(())
    })
    .await;
    let writes = env.operator_writes();
    assert_eq!(
        writes.len(),
        writes_before,
        "steady-state writes: {:?}",
        &writes[writes_before..]
    );
    for shop in &fixture.shops {
        assert_eq!(env.sim.counters(&shop.domain).mutations, 0);
    }
    // The token was checked once per shop, not on every resync.
    for shop in &fixture.shops {
        let c = env.sim.counters(&shop.domain);
        assert_eq!(c.operation("shop"), 1, "{}: {c:?}", shop.domain);
    }
    let log = env.operator_log();
    for (i, _) in fixture.shops.iter().enumerate() {
        assert!(
            !log.contains(&token_of(&fixture, i)),
            "a token is in the operator log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_host_change_repoints_referencing_shops_only() {
    let topics = [
        "orders/create",
        "orders/updated",
        "products/update",
        "app/uninstalled",
    ];
    let subs_at = |host: &str| -> Vec<(String, String)> {
        topics.iter().map(|t| (t.to_string(), addr(host, t))).collect()
    };
    let mut fixture = Fixture {
        shops: Vec::new(),
        app: None,
        apps: Vec::new(),
    };
    for (i, domain) in [
        "a-shop.myshopify.com",
        "b-shop.myshopify.com",
        "fixed-shop.myshopify.com",
    ]
    .iter()
    .enumerate()
    {
        let subs = subs_at(HOST);
        let subs: Vec<(&str, &str)> = subs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        fixture
            .shops
            .extend(one_shop(domain, &format!("shpat_test_{i}"), &subs).shops);
    }
    let mut env = Env::new("ingress", fixture.clone()).await;
    env.ingress("oms", HOST).await;
    for (i, name) in ["a", "b", "fixed"].iter().enumerate() {
        env.token_secret(&format!("{name}-token"), &format!("shpat_test_{i}"))
            .await;
        let endpoint = if *name == "fixed" {
            json!({"host": HOST})
        } else {
            json!({"ingressRef": {"name": "oms"}})
        };
        env.create_shop(
            name,
            spec(
                &fixture.shops[i].domain,
                &format!("{name}-token"),
                endpoint,
                &topics,
            ),
        )
        .await;
    }
    env.start_operator("5m");
    for name in ["a", "b", "fixed"] {
        env.wait_condition(name, "Ready", "True", None).await;
    }
    env.sim.reset_counters();

    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), &env.ns);
    let patch = json!({"spec": {"rules": [{"host": "new.popsockets.com"}]}});
    ingresses
        .patch("oms", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();

    // Within seconds (the resync is 5 minutes: the Ingress watch did it).
    for domain in ["a-shop.myshopify.com", "b-shop.myshopify.com"] {
        wait_for(
            &format!("{domain} repointed"),
            Duration::from_secs(20),
            || async {
                let subs = env.sim.subscriptions(domain);
                (subs.len() == topics.len()
                    && subs
                        .iter()
                        .all(|s| s.address.starts_with("https://new.popsockets.com/")))
                .then_some(())
            },
        )
        .await;
        let c = env.sim.counters(domain);
        assert_eq!(
            c.requests, 2,
            "{domain}: one list + one batched mutation document, got {c:?}"
        );
    }
    for name in ["a", "b"] {
        wait_for("status host", Duration::from_secs(20), || async {
            let s = env.shops().get(name).await.ok()?.status?;
            (s.webhook_host.as_deref() == Some("new.popsockets.com")).then_some(())
        })
        .await;
    }
    // The fixed-host shop is untouched.
    let fixed = env.sim.subscriptions("fixed-shop.myshopify.com");
    assert!(
        fixed
            .iter()
            .all(|s| s.address.starts_with(&format!("https://{HOST}/")))
    );
    assert_eq!(env.sim.counters("fixed-shop.myshopify.com").mutations, 0);

    // An Ingress without a host never repoints anything.
    let patch = json!({"spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "oms", "port": {"number": 80}}}}]}}]}});
    ingresses
        .patch("oms", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.wait_condition("a", "WebhooksSynced", "False", Some("IngressHostMissing"))
        .await;
    env.wait_condition("a", "Ready", "False", Some("IngressHostMissing"))
        .await;
    // And a missing Ingress neither.
    ingresses.delete("oms", &DeleteParams::default()).await.unwrap();
    env.wait_condition("b", "WebhooksSynced", "False", Some("IngressNotFound"))
        .await;
    for domain in ["a-shop.myshopify.com", "b-shop.myshopify.com"] {
        let subs = env.sim.subscriptions(domain);
        assert_eq!(subs.len(), topics.len());
        assert!(
            subs.iter()
                .all(|s| s.address.starts_with("https://new.popsockets.com/")),
            "{subs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_subscription_is_recreated_at_resync_with_a_warning_event() {
    let topics = ["orders/create", "app/uninstalled"];
    let subs: Vec<(String, String)> = topics.iter().map(|t| (t.to_string(), addr(HOST, t))).collect();
    let subs: Vec<(&str, &str)> = subs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let domain = "drift-shop.myshopify.com";
    let mut env = Env::new("drift", one_shop(domain, "shpat_drift", &subs)).await;
    env.token_secret("tok", "shpat_drift").await;
    env.create_shop("drift", spec(domain, "tok", json!({"host": HOST}), &topics))
        .await;
    env.start_operator("1s");
    env.wait_condition("drift", "Ready", "True", None).await;
    assert_eq!(env.sim.counters(domain).mutations, 0);

    // Shopify deletes a subscription after 8 failed deliveries.
    let victim = env
        .sim
        .subscriptions(domain)
        .into_iter()
        .find(|s| s.topic == "ORDERS_CREATE")
        .unwrap();
    assert!(env.sim.delete_subscription(domain, &victim.id));
    wait_for("recreated", Duration::from_secs(20), || async {
        let subs = env.sim.subscriptions(domain);
        (subs.len() == 2
            && subs
                .iter()
                .any(|s| s.topic == "ORDERS_CREATE" && s.id != victim.id))
        .then_some(())
    })
    .await;
    wait_for("DriftRepaired event", Duration::from_secs(20), || async {
        let events = env.events("drift", "DriftRepaired").await;
        events.into_iter().find(|e| e.type_.as_deref() == Some("Warning"))
    })
    .await;
    // Exactly one mutation: the create.
    assert_eq!(env.sim.counters(domain).mutations, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_problems_are_conditions_and_a_new_token_is_picked_up() {
    let domain = "token-shop.myshopify.com";
    let mut env = Env::new("token", one_shop(domain, "shpat_first", &[])).await;
    // No Secret yet: SecretNotFound and no Shopify call at all.
    env.create_shop(
        "shop",
        spec(domain, "tok", json!({"host": HOST}), &["orders/create"]),
    )
    .await;
    env.start_operator("2s");
    env.wait_condition("shop", "TokenValid", "False", Some("SecretNotFound"))
        .await;
    env.wait_condition("shop", "Ready", "False", Some("SecretNotFound"))
        .await;
    assert_eq!(env.sim.counters(domain).requests, 0);
    // One Warning for the transition (published before the status write
    // that made the condition visible), none for Ready or WebhooksSynced:
    // the token's Event already says it.
    assert_eq!(env.published("shop", "Warning", "SecretNotFound").await, 1);
    assert_eq!(env.published("shop", "Warning", "TokenInvalid").await, 0);

    // A Secret without the key.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": "tok"}, "stringData": {"token": "x"}})).unwrap();
    secrets.create(&Default::default(), &s).await.unwrap();
    env.wait_condition("shop", "TokenValid", "False", Some("SecretKeyMissing"))
        .await;
    assert_eq!(env.sim.counters(domain).requests, 0);
    assert_eq!(env.published("shop", "Warning", "SecretKeyMissing").await, 1);

    // The key appears: picked up from the Secret watch, in seconds.
    let patch = json!({"stringData": {"access-token": "shpat_first"}});
    secrets
        .patch("tok", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.wait_condition("shop", "Ready", "True", None).await;
    assert_eq!(env.sim.subscriptions(domain).len(), 1);
    // Recovery is one Normal Event; the failures stayed one each.
    assert_eq!(env.published("shop", "Normal", "TokenVerified").await, 1);
    assert_eq!(env.published("shop", "Warning", "SecretNotFound").await, 1);
    assert_eq!(env.published("shop", "Warning", "SecretKeyMissing").await, 1);

    // Revoked (the app was uninstalled): TokenRevoked, no retry storm.
    env.sim.revoke_token(domain);
    env.wait_condition("shop", "TokenValid", "False", Some("TokenRevoked"))
        .await;
    let after_revoke = env.sim.counters(domain).requests;
    // A resync or two later the operator has not hammered the shop.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let c = env.sim.counters(domain).requests;
            assert!(
                c <= after_revoke + 20,
                "retry storm: {c} requests after revocation"
            );
            if c >= after_revoke + 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the operator keeps checking at the resync interval");
    // Those passes stayed TokenRevoked: still exactly one Warning.
    assert_eq!(env.published("shop", "Warning", "TokenRevoked").await, 1);

    // The merchant reinstalls: a new token, put in the Secret: Ready again.
    env.sim.load(one_shop(domain, "shpat_second", &[]));
    let patch = json!({"stringData": {"access-token": "shpat_second"}});
    secrets
        .patch("tok", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.wait_condition("shop", "Ready", "True", None).await;
    assert_eq!(env.published("shop", "Normal", "TokenVerified").await, 2);
    let log = env.operator_log();
    assert!(
        !log.contains("shpat_first") && !log.contains("shpat_second"),
        "a token is in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_reports_drift_and_changes_nothing() {
    let domain = "observe-shop.myshopify.com";
    let subs = [("orders/create", addr("old.popsockets.com", "orders/create"))];
    let subs: Vec<(&str, &str)> = subs.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let mut env = Env::new("observe", one_shop(domain, "shpat_obs", &subs)).await;
    env.token_secret("tok", "shpat_obs").await;
    let mut s = spec(
        domain,
        "tok",
        json!({"host": HOST}),
        &["orders/create", "orders/updated"],
    );
    s["managementPolicy"] = json!("Observe");
    env.create_shop("shop", s).await;
    env.start_operator("1s");
    env.wait_condition("shop", "WebhooksSynced", "False", Some("DriftDetected"))
        .await;
    let (_, _, msg) = env.condition("shop", "WebhooksSynced").await.unwrap();
    assert!(
        msg.contains("update orders/create") && msg.contains("create orders/updated"),
        "{msg}"
    );
    let status = env.shops().get("shop").await.unwrap().status.unwrap();
    let states: Vec<TopicState> = status.webhooks.iter().map(|w| w.state).collect();
    assert_eq!(states, [TopicState::WrongAddress, TopicState::Missing]);
    assert_eq!(env.sim.counters(domain).mutations, 0);

    // Switching to Manage repairs it.
    let patch = json!({"spec": {"managementPolicy": "Manage"}});
    env.shops()
        .patch("shop", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.wait_condition("shop", "WebhooksSynced", "True", Some("InSync"))
        .await;
    let subs = env.sim.subscriptions(domain);
    assert_eq!(subs.len(), 2);
    assert!(
        subs.iter()
            .all(|s| s.address.starts_with(&format!("https://{HOST}/")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_duplicates_and_others_at_our_destinations_only() {
    let domain = "prune-shop.myshopify.com";
    let subs = [
        ("orders/create", addr(HOST, "orders/create")),
        ("orders/create", addr("old.popsockets.com", "orders/create")),
        ("customers/create", addr(HOST, "customers/create")),
        ("orders/create", "https://analytics.example.com/hooks".to_string()),
    ];
    let subs: Vec<(&str, &str)> = subs.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let mut env = Env::new("prune", one_shop(domain, "shpat_prune", &subs)).await;
    env.token_secret("tok", "shpat_prune").await;
    env.create_shop(
        "shop",
        spec(domain, "tok", json!({"host": HOST}), &["orders/create"]),
    )
    .await;
    env.start_operator("1s");
    env.wait_condition("shop", "Ready", "True", None).await;
    let (_, _, msg) = env.condition("shop", "WebhooksSynced").await.unwrap();
    assert!(
        msg.contains("1 duplicates") && msg.contains("2 subscriptions not in the spec"),
        "{msg}"
    );
    assert_eq!(env.sim.subscriptions(domain).len(), 4);
    assert_eq!(env.sim.counters(domain).mutations, 0);
    assert_eq!(
        env.shops()
            .get("shop")
            .await
            .unwrap()
            .status
            .unwrap()
            .unmanaged_subscriptions,
        Some(2)
    );

    let patch = json!({"spec": {"webhooks": {"prune": true}}});
    env.shops()
        .patch("shop", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    // The duplicate and the topic the spec dropped at our host go; the
    // analytics receiver is another destination and stays.
    let subs = wait_for("pruned", Duration::from_secs(20), || async {
        let subs = env.sim.subscriptions(domain);
        (subs.len() == 2).then_some(subs)
    })
    .await;
    let mut left: Vec<&str> = subs.iter().map(|s| s.address.as_str()).collect();
    left.sort();
    assert_eq!(
        left,
        [
            "https://analytics.example.com/hooks",
            addr(HOST, "orders/create").as_str()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_policies_and_namespace_deletion() {
    let topics = ["orders/create", "products/update"];
    let mut fixture = one_shop("keep-shop.myshopify.com", "shpat_keep", &[]);
    fixture
        .shops
        .extend(one_shop("drop-shop.myshopify.com", "shpat_drop", &[]).shops);
    fixture
        .shops
        .extend(one_shop("ns-shop.myshopify.com", "shpat_ns", &[]).shops);
    let mut env = Env::new("deletion", fixture).await;
    for (name, token) in [("keep", "shpat_keep"), ("drop", "shpat_drop"), ("ns", "shpat_ns")] {
        env.token_secret(&format!("{name}-token"), token).await;
        let mut s = spec(
            &format!("{name}-shop.myshopify.com"),
            &format!("{name}-token"),
            json!({"host": HOST}),
            &topics,
        );
        if name != "keep" {
            s["deletionPolicy"] = json!("Delete");
        }
        env.create_shop(name, s).await;
    }
    env.start_operator("5m");
    for name in ["keep", "drop", "ns"] {
        env.wait_condition(name, "Ready", "True", None).await;
    }
    let finalizers = env
        .shops()
        .get("drop")
        .await
        .unwrap()
        .metadata
        .finalizers
        .unwrap_or_default();
    assert_eq!(finalizers, ["shopify-operator.dev/cleanup"]);
    assert!(
        env.shops()
            .get("keep")
            .await
            .unwrap()
            .metadata
            .finalizers
            .unwrap_or_default()
            .is_empty()
    );

    env.shops()
        .delete("keep", &DeleteParams::default())
        .await
        .unwrap();
    env.shops()
        .delete("drop", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("both gone", Duration::from_secs(30), || async {
        (env.shops().get_opt("keep").await.ok()?.is_none()
            && env.shops().get_opt("drop").await.ok()?.is_none())
        .then_some(())
    })
    .await;
    assert_eq!(
        env.sim.subscriptions("keep-shop.myshopify.com").len(),
        2,
        "Orphan must leave subscriptions"
    );
    assert!(
        env.sim.subscriptions("drop-shop.myshopify.com").is_empty(),
        "Delete must remove them"
    );

    // Deleting the namespace (Secret and shop go together, in any order)
    // never hangs on the finalizer.
    let nss: Api<Namespace> = Api::all(env.client.clone());
    nss.delete(&env.ns, &DeleteParams::default()).await.unwrap();
    // The namespace controller's rounds (discovery, deletion, requeue)
    // take long on a loaded machine: a generous deadline, not a tight one.
    wait_for("namespace gone", Duration::from_secs(180), || async {
        nss.get_opt(&env.ns).await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_throttling_5xx_and_applied_then_timed_out_mutations() {
    let topics = [
        "orders/create",
        "orders/updated",
        "products/update",
        "customers/update",
    ];
    let domain = "faulty-shop.myshopify.com";
    let mut env = Env::new("faults", one_shop(domain, "shpat_faults", &[])).await;
    env.expect_lost_responses();
    env.token_secret("tok", "shpat_faults").await;
    // The first mutation document is applied, then the response never
    // comes: the operator must re-list, not create again.
    env.sim.inject(Fault::TimeoutAfterApply {
        shop: Some(domain.into()),
        count: 1,
        hang: LOST_RESPONSE_HANG,
        mutations_only: true,
    });
    env.create_shop("shop", spec(domain, "tok", json!({"host": HOST}), &topics))
        .await;
    env.start_operator("1s");
    env.wait_condition("shop", "Ready", "True", None).await;
    let subs = env.sim.subscriptions(domain);
    assert_eq!(subs.len(), topics.len(), "exactly one per topic: {subs:?}");
    let c = env.sim.counters(domain);
    assert_eq!(
        c.dropped, 1,
        "the applied-then-timed-out fault did not fire: {c:?}"
    );
    assert_eq!(
        c.operation("webhookSubscriptionCreate"),
        topics.len() as u64,
        "a create was retried blindly: {c:?}"
    );

    // Now 5xx and throttling during a host change.
    env.sim.inject(Fault::Status {
        shop: Some(domain.into()),
        status: 503,
        count: 3,
    });
    env.sim.inject(Fault::DrainBucket { shop: domain.into() });
    let patch = json!({"spec": {"webhooks": {"endpoint": {"host": "new.popsockets.com"}}}});
    env.shops()
        .patch("shop", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("repointed through faults", Duration::from_secs(60), || async {
        let subs = env.sim.subscriptions(domain);
        (subs.len() == topics.len()
            && subs
                .iter()
                .all(|s| s.address.starts_with("https://new.popsockets.com/")))
        .then_some(())
    })
    .await;
    env.wait_condition("shop", "Ready", "True", None).await;
    assert_eq!(env.sim.subscriptions(domain).len(), topics.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_is_never_satisfied_by_a_stale_generation() {
    let domain = "wait-shop.myshopify.com";
    let mut env = Env::new("wait", one_shop(domain, "shpat_wait", &[])).await;
    env.token_secret("tok", "shpat_wait").await;
    env.create_shop(
        "shop",
        spec(domain, "tok", json!({"host": HOST}), &["orders/create"]),
    )
    .await;
    env.start_operator("5m");
    let (kubeconfig, ns) = (env.cp.admin_kubeconfig().to_path_buf(), env.ns.clone());
    // Async: the simulator runs on this test's runtime and must keep
    // serving while kubectl waits.
    let wait = |timeout: &str| {
        tokio::process::Command::new(testenv::kubectl())
            .env("KUBECONFIG", &kubeconfig)
            .args([
                "wait",
                "--for=condition=Ready",
                "shopifyshop/shop",
                "-n",
                &ns,
                &format!("--timeout={timeout}"),
            ])
            .output()
    };
    let out = wait("60s").await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The operator stops; the spec changes: Ready=True is now about an old
    // generation, and kubectl wait must not take it.
    env.operator.take().unwrap().kill();
    let patch = json!({"spec": {"webhooks": {"topics": ["orders/create", "orders/updated"]}}});
    env.shops()
        .patch("shop", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    // Long enough that kubectl surely got the object (a slow machine's
    // failure to talk would pass this for the wrong reason): it must time
    // out waiting, and say so.
    let out = wait("10s").await.unwrap();
    assert!(
        !out.status.success(),
        "kubectl wait was satisfied by a stale Ready"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("timed out waiting"), "{stderr}");

    env.start_operator("5m");
    let out = wait("60s").await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(env.sim.subscriptions(domain).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shops_outside_the_allow_list_get_no_request() {
    let mut fixture = one_shop("ps-allowed.myshopify.com", "shpat_allowed", &[]);
    fixture
        .shops
        .extend(one_shop("stranger.myshopify.com", "shpat_stranger", &[]).shops);
    let mut env = Env::new("allow", fixture).await;
    env.token_secret("allowed-token", "shpat_allowed").await;
    env.token_secret("stranger-token", "shpat_stranger").await;
    let topics = ["orders/create"];
    env.create_shop(
        "allowed",
        spec(
            "ps-allowed.myshopify.com",
            "allowed-token",
            json!({"host": HOST}),
            &topics,
        ),
    )
    .await;
    env.create_shop(
        "stranger",
        spec(
            "stranger.myshopify.com",
            "stranger-token",
            json!({"host": HOST}),
            &topics,
        ),
    )
    .await;
    env.operator_args
        .push(("ALLOWED_SHOPS".into(), "ps-*.myshopify.com".into()));
    env.start_operator("1s");
    env.wait_condition("allowed", "Ready", "True", None).await;
    env.wait_condition("stranger", "Ready", "False", Some("ShopNotAllowed"))
        .await;
    assert_eq!(
        env.sim.counters("stranger.myshopify.com").requests,
        0,
        "a request went to a shop not allowed"
    );
}

/// `shopify-operator.dev/reconcile-requested-at` (or Flux's
/// `reconcile.fluxcd.io/requestedAt`): a new value re-checks the token and
/// re-lists the shop now, long before the resync; the value is echoed in
/// `status.lastHandledReconcileAt`; the same value again sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_request_relists_now_and_only_once() {
    let domain = "ondemand-shop.myshopify.com";
    let mut env = Env::new("ondemand", one_shop(domain, "shpat_ondemand", &[])).await;
    env.token_secret("tok", "shpat_ondemand").await;
    env.create_shop(
        "shop",
        spec(domain, "tok", json!({"host": HOST}), &["orders/create"]),
    )
    .await;
    env.start_operator("10m");
    env.wait_condition("shop", "Ready", "True", None).await;
    let addr = http_addr(env.operator.as_ref().unwrap()).await;
    let handled = || async {
        let shop = env.shops().get("shop").await.ok()?;
        shop.status?.last_handled_reconcile_at
    };
    let annotate = |annotations: serde_json::Value| {
        let shops = env.shops();
        async move {
            let patch = json!({"metadata": {"annotations": annotations}});
            shops
                .patch("shop", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    };

    // Shopify lost the subscription; with a 10-minute resync nobody would
    // notice for a while. A request repairs it now.
    let id = env.sim.subscriptions(domain)[0].id.clone();
    assert!(env.sim.delete_subscription(domain, &id));
    let before = env.sim.counters(domain).requests;
    annotate(json!({"shopify-operator.dev/reconcile-requested-at": "r1"})).await;
    wait_for(
        "r1 handled and the subscription back",
        Duration::from_secs(20),
        || async {
            (handled().await.as_deref() == Some("r1") && env.sim.subscriptions(domain).len() == 1)
                .then_some(())
        },
    )
    .await;
    // The token check and the list (and the repair) went to Shopify.
    let after = env.sim.counters(domain).requests;
    assert!(after >= before + 3, "{before} -> {after} requests");

    // Another annotation changes (so the shop is reconciled) but not the
    // request: nothing is sent.
    let passes = reconciles(&addr).await.unwrap();
    annotate(json!({"team": "oms"})).await;
    wait_for(
        "a pass for the new annotation",
        Duration::from_secs(20),
        || async { (reconciles(&addr).await? > passes).then_some(()) },
    )
    .await;
    assert_eq!(env.sim.counters(domain).requests, after);

    // Flux's annotation on its own.
    annotate(
        json!({"shopify-operator.dev/reconcile-requested-at": null, "reconcile.fluxcd.io/requestedAt": "f1"}),
    )
    .await;
    wait_for("f1 handled", Duration::from_secs(20), || async {
        (handled().await.as_deref() == Some("f1")).then_some(())
    })
    .await;
    assert!(env.sim.counters(domain).requests >= after + 2);
}
