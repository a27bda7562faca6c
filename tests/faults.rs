//! The fault suite: a flaky Shopify (a fifth of all requests 5xx, mutations
//! applied and then their answer lost, drained buckets) with a token revoked
//! mid-run; the operator killed with SIGKILL again and again while Shopify
//! answers 5xx and its shops' syncs run; and the kube-apiserver restarted
//! under a running operator. The end state must be exactly one subscription
//! per topic and one Job per schedule slot or manual trigger, with no
//! restart of the operator needed after the apiserver comes back.

mod support;

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use rand::RngExt;
use serde_json::json;
use shopify_sim::{Fault, Fixture, ShopFixture, TokenFixture};
use support::{Env, LOST_RESPONSE_HANG, spec, wait_for};
use testenv::{ControlPlane, Options};

const TOPICS: [&str; 4] = [
    "orders/create",
    "orders/updated",
    "products/update",
    "app/uninstalled",
];

fn shops(n: usize) -> Fixture {
    Fixture {
        shops: (0..n)
            .map(|i| ShopFixture {
                domain: format!("kill-{i}.myshopify.com"),
                tokens: vec![TokenFixture {
                    access_token: format!("shpat_kill_{i}"),
                    scopes: vec!["read_orders".into(), "read_products".into()],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
        app: None,
        apps: Vec::new(),
    }
}

/// Exactly one subscription per topic on every shop, all at `host`.
fn converged(env: &Env, n: usize, host: &str) -> bool {
    converged_except(env, n, host, None)
}

/// [`converged`] for every shop but `skip`.
fn converged_except(env: &Env, n: usize, host: &str, skip: Option<usize>) -> bool {
    (0..n).filter(|i| Some(*i) != skip).all(|i| {
        let subs = env.sim.subscriptions(&format!("kill-{i}.myshopify.com"));
        subs.len() == TOPICS.len()
            && subs
                .iter()
                .all(|s| s.address.starts_with(&format!("https://{host}/")))
            && TOPICS.iter().all(|t| {
                subs.iter()
                    .filter(|s| s.topic == shopify_admin::rest_to_enum(t))
                    .count()
                    == 1
            })
    })
}

/// The shops of [`shops`] as ShopifyShops on the Ingress `oms`.
async fn create_shops(env: &Env, n: usize) {
    for i in 0..n {
        env.token_secret(&format!("tok-{i}"), &format!("shpat_kill_{i}"))
            .await;
        let domain = format!("kill-{i}.myshopify.com");
        let endpoint = json!({"ingressRef": {"name": "oms"}});
        let mut spec = spec(&domain, &format!("tok-{i}"), endpoint, &TOPICS);
        // A sync every minute, run concurrently: each slot (and each manual
        // trigger) must give exactly one Job, however often the operator dies.
        spec["sync"] = json!([{"name": "orders", "schedule": "* * * * *", "concurrencyPolicy": "Allow",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "sync", "image": "oms:test"}]}}}}}]);
        env.create_shop(&format!("shop-{i}"), spec).await;
    }
}

/// Points the Ingress `oms` at `host`.
async fn move_ingress(env: &Env, host: &str) {
    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), &env.ns);
    let patch = json!({"spec": {"rules": [{"host": host}]}});
    ingresses
        .patch("oms", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Every Job of the test's shops, by (shop, sync, slot, manual trigger):
/// each key must have exactly one Job. Returns how many Jobs there are.
async fn assert_one_job_per_slot(env: &Env) -> usize {
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), &env.ns);
    let mut seen: std::collections::BTreeMap<Vec<String>, Vec<String>> = Default::default();
    for job in jobs.list(&Default::default()).await.unwrap().items {
        let labels = job.labels();
        let annotations = job.annotations();
        let key = vec![
            labels
                .get("shopify-operator.dev/shop")
                .cloned()
                .unwrap_or_default(),
            labels
                .get("shopify-operator.dev/sync")
                .cloned()
                .unwrap_or_default(),
            annotations
                .get("shopify-operator.dev/scheduled-at")
                .cloned()
                .unwrap_or_default(),
            annotations
                .get("shopify-operator.dev/sync-now")
                .cloned()
                .unwrap_or_default(),
        ];
        seen.entry(key).or_default().push(job.name_any());
    }
    for (key, names) in &seen {
        assert_eq!(names.len(), 1, "more than one Job for {key:?}: {names:?}");
    }
    seen.len()
}

fn assert_no_duplicates(env: &Env, n: usize) {
    for i in 0..n {
        let domain = format!("kill-{i}.myshopify.com");
        let subs = env.sim.subscriptions(&domain);
        assert!(subs.len() <= TOPICS.len(), "{domain} has duplicates: {subs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_shopify_and_a_revoked_token_leave_one_subscription_per_topic() {
    const N: usize = 8;
    const REVOKED: usize = 5;
    let mut env = Env::new("flaky", shops(N)).await;
    env.expect_lost_responses();
    env.ingress("oms", "oms.popsockets.com").await;
    create_shops(&env, N).await;
    env.sim.set_latency(Duration::from_millis(20));
    env.sim.inject(Fault::StatusRate {
        shop: None,
        status: 503,
        percent: 20,
    });
    env.sim.inject(Fault::TimeoutAfterApply {
        shop: None,
        count: 3,
        hang: LOST_RESPONSE_HANG,
        mutations_only: true,
    });
    for i in 0..3 {
        env.sim.inject(Fault::DrainBucket {
            shop: format!("kill-{i}.myshopify.com"),
        });
    }
    let started = std::time::Instant::now();
    env.start_operator("2s");
    // Revoked while the others converge (as an uninstall would).
    wait_for("a first shop Ready", Duration::from_secs(60), || async {
        for i in 0..N {
            if env.condition(&format!("shop-{i}"), "Ready").await?.0 == "True" {
                return Some(());
            }
        }
        None
    })
    .await;
    env.sim.revoke_token(&format!("kill-{REVOKED}.myshopify.com"));
    move_ingress(&env, "new.popsockets.com").await;
    let changed = std::time::Instant::now();
    wait_for(
        "every healthy shop at the new host through the faults",
        Duration::from_secs(90),
        || async { converged_except(&env, N, "new.popsockets.com", Some(REVOKED)).then_some(()) },
    )
    .await;
    let repointed = changed.elapsed();
    for i in (0..N).filter(|i| *i != REVOKED) {
        env.wait_condition(&format!("shop-{i}"), "Ready", "True", None)
            .await;
    }
    env.wait_condition(
        &format!("shop-{REVOKED}"),
        "TokenValid",
        "False",
        Some("TokenRevoked"),
    )
    .await;
    env.wait_condition(&format!("shop-{REVOKED}"), "Ready", "False", None)
        .await;
    assert_no_duplicates(&env, N);
    let c = env.sim.all_counters();
    let total: u64 = c.values().map(|c| c.requests).sum();
    let failed: u64 = c.values().map(|c| c.status(503)).sum();
    let dropped: u64 = c.values().map(|c| c.dropped).sum();
    assert!(
        failed > 0 && dropped == 3,
        "the faults did not fire: {failed} 503s, {dropped} dropped"
    );
    eprintln!(
        "flaky Shopify: {failed} of {total} requests answered 503, {dropped} applied-then-lost; \
         all healthy shops repointed {repointed:.1?} after the host change, {:.1?} after start",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_twenty_times_during_convergence_leaves_one_subscription_per_topic() {
    const N: usize = 10;
    let mut env = Env::new("sigkill", shops(N)).await;
    env.expect_lost_responses();
    env.ingress("oms", "oms.popsockets.com").await;
    create_shops(&env, N).await;
    // Slow, flaky Shopify: every kill lands somewhere mid-flight.
    env.sim.set_latency(Duration::from_millis(30));
    // A manual sync of every shop, asked once before the kills begin.
    for i in 0..N {
        env.shops()
            .patch(
                &format!("shop-{i}"),
                &PatchParams::default(),
                &Patch::Merge(
                    &json!({"metadata": {"annotations": {"shopify-operator.dev/sync-now": "kill-test"}}}),
                ),
            )
            .await
            .unwrap();
    }
    let mut rng = rand::rng();
    for round in 0..20 {
        if round % 5 == 0 {
            // Mutations applied, then the response lost; and plain 5xx.
            env.sim.inject(Fault::TimeoutAfterApply {
                shop: None,
                count: 2,
                hang: LOST_RESPONSE_HANG,
                mutations_only: true,
            });
            env.sim.inject(Fault::Status {
                shop: None,
                status: 503,
                count: 5,
            });
        }
        if round == 10 {
            move_ingress(&env, "new.popsockets.com").await;
        }
        env.start_operator("2s");
        let alive = Duration::from_millis(rng.random_range(100..1500));
        tokio::time::sleep(alive).await; // the kill's random moment, not a synchronisation
        env.operator.take().unwrap().kill();
        assert_no_duplicates(&env, N);
        assert_one_job_per_slot(&env).await;
    }
    env.sim.clear_faults();
    env.start_operator("2s");
    wait_for(
        "every shop converged at the new host",
        Duration::from_secs(90),
        || async { converged(&env, N, "new.popsockets.com").then_some(()) },
    )
    .await;
    for i in 0..N {
        env.wait_condition(&format!("shop-{i}"), "Ready", "True", None)
            .await;
    }
    assert!(converged(&env, N, "new.popsockets.com"));
    // Every shop ran its manual sync exactly once, and no schedule slot
    // got two Jobs.
    wait_for("every manual sync handled", Duration::from_secs(30), || async {
        for i in 0..N {
            let st = env.shops().get(&format!("shop-{i}")).await.ok()?.status?;
            (st.sync_now_handled.as_deref() == Some("kill-test")).then_some(())?;
        }
        Some(())
    })
    .await;
    let keys = assert_one_job_per_slot(&env).await;
    assert!(keys >= N, "expected at least the {N} manual Jobs, found {keys}");
}

/// kube-apiserver restarted under the operator (same etcd): its watches
/// fail (connection refused, then 410 Gone for their old resourceVersion),
/// re-list, and a change made after the restart converges — without the
/// operator process restarting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_survives_an_apiserver_restart() {
    // Its own control plane: restarting the shared one would break other tests.
    let cp: &'static ControlPlane = Box::leak(Box::new(
        ControlPlane::start(Options {
            controller_manager: false,
            crds: shopify_operator::crd::all(),
        })
        .await
        .expect("control plane"),
    ));
    let mut env = Env::with_control_plane(cp, "restart", shops(2)).await;
    env.ingress("oms", "oms.popsockets.com").await;
    create_shops(&env, 2).await;
    env.operator_args.push((
        "RUST_LOG".into(),
        "info,shopify_operator=debug,kube_runtime::watcher=debug".into(),
    ));
    env.start_operator("5m");
    wait_for("converged", Duration::from_secs(60), || async {
        converged(&env, 2, "oms.popsockets.com").then_some(())
    })
    .await;
    let pid = env.operator.as_ref().unwrap().pid();

    let restart = std::time::Instant::now();
    cp.restart_apiserver().await.expect("apiserver restarts");
    let restarted = restart.elapsed();
    // A change after the restart reaches the same operator process through
    // its re-established watches.
    move_ingress(&env, "new.popsockets.com").await;
    let changed = std::time::Instant::now();
    wait_for("converged after the restart", Duration::from_secs(60), || async {
        converged(&env, 2, "new.popsockets.com").then_some(())
    })
    .await;
    eprintln!(
        "apiserver restart took {restarted:.1?}; the change after it converged in {:.1?}",
        changed.elapsed()
    );
    let op = env.operator.as_mut().unwrap();
    assert_eq!(op.pid(), pid);
    assert!(op.exited().is_none(), "the operator died with the apiserver");
}
