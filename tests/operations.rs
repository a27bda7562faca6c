//! Running it like production: health, readiness and metrics endpoints, and
//! leader election between two real operator processes.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use shopify_sim::{Fixture, ShopFixture, TokenFixture};
use support::{Env, http_addr, spec, wait_for};

const HOST: &str = "oms.popsockets.com";

fn fixture(domain: &str, token: &str) -> Fixture {
    Fixture {
        shops: vec![ShopFixture {
            domain: domain.into(),
            tokens: vec![TokenFixture {
                access_token: token.into(),
                scopes: vec!["read_orders".into()],
                ..Default::default()
            }],
            ..Default::default()
        }],
        app: None,
        apps: Vec::new(),
    }
}

async fn get(url: &str) -> Option<(u16, String)> {
    let resp = reqwest::get(url).await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let domain = "metrics-shop.myshopify.com";
    let mut env = Env::new("metrics", fixture(domain, "shpat_metrics")).await;
    env.token_secret("tok", "shpat_metrics").await;
    env.create_shop(
        "shop",
        spec(domain, "tok", json!({"host": HOST}), &["orders/create"]),
    )
    .await;
    env.create_shop(
        "broken",
        spec(domain, "missing", json!({"host": HOST}), &["orders/create"]),
    )
    .await;
    env.start_operator("5m");
    let addr = http_addr(env.operator.as_ref().unwrap()).await;
    let base = format!("http://{addr}");
    assert_eq!(
        get(&format!("{base}/healthz")).await.unwrap(),
        (200, "ok".to_string())
    );
    wait_for("ready", Duration::from_secs(30), || async {
        (get(&format!("{base}/readyz")).await?.0 == 200).then_some(())
    })
    .await;
    env.wait_condition("shop", "Ready", "True", None).await;
    env.wait_condition("broken", "Ready", "False", Some("SecretNotFound"))
        .await;
    let text = wait_for("metrics", Duration::from_secs(30), || async {
        let (_, text) = get(&format!("{base}/metrics")).await?;
        text.contains("name=\"broken\"").then_some(text)
    })
    .await;
    let ns = &env.ns;
    for want in [
        format!(
            "shopify_shop_condition{{namespace=\"{ns}\",name=\"shop\",condition=\"Ready\",status=\"True\"}} 1"
        ),
        format!(
            "shopify_shop_condition{{namespace=\"{ns}\",name=\"broken\",condition=\"Ready\",status=\"False\"}} 1"
        ),
        format!(
            "shopify_shop_condition{{namespace=\"{ns}\",name=\"broken\",condition=\"TokenValid\",status=\"True\"}} 0"
        ),
        "shopify_operator_reconciles_total{result=\"ok\"}".to_string(),
        "shopify_operator_shopify_requests_total{operation=\"list\",outcome=\"ok\"}".to_string(),
        "shopify_operator_shopify_requests_total{operation=\"apply\",outcome=\"ok\"} 1".to_string(),
        "shopify_operator_reconcile_duration_seconds_bucket".to_string(),
    ] {
        assert!(text.contains(&want), "metrics lack {want}:\n{text}");
    }
    assert!(!text.contains("shpat_metrics"), "a token is in the metrics");

    // A deleted shop's series go with it.
    env.shops().delete("broken", &Default::default()).await.unwrap();
    wait_for(
        "the deleted shop's series gone",
        Duration::from_secs(30),
        || async {
            let (_, text) = get(&format!("{base}/metrics")).await?;
            (!text.contains("name=\"broken\"") && text.contains("name=\"shop\"")).then_some(())
        },
    )
    .await;

    // SIGTERM: a graceful stop.
    let status = env.operator.as_mut().unwrap().terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "operator did not stop cleanly on SIGTERM: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_leader_dies() {
    let domain = "leader-shop.myshopify.com";
    let env = Env::new("leader", fixture(domain, "shpat_leader")).await;
    env.token_secret("tok", "shpat_leader").await;
    env.create_shop(
        "shop",
        spec(domain, "tok", json!({"host": HOST}), &["orders/create"]),
    )
    .await;
    let le = |name: &str| {
        vec![
            ("LEADER_ELECT".to_string(), "true".to_string()),
            ("POD_NAMESPACE".to_string(), env.ns.clone()),
            ("POD_NAME".to_string(), name.to_string()),
            // The product's default: a renewal a few seconds late on a
            // loaded machine must not hand the lease to b while a runs.
            ("LEASE_DURATION".to_string(), "15s".to_string()),
            ("RESYNC_INTERVAL".to_string(), "5m".to_string()),
        ]
    };
    let mut a = env.spawn_operator("a", &le("a"));
    env.wait_condition("shop", "Ready", "True", None).await;
    let mut b = env.spawn_operator("b", &le("b"));
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    let holder = |l: Lease| l.spec.and_then(|s| s.holder_identity);
    assert_eq!(
        holder(leases.get("shopify-operator").await.unwrap()).as_deref(),
        Some("a")
    );
    // The standby is healthy and ready to take over, and says it is not
    // the leader.
    let b_addr = http_addr(&b).await;
    assert_eq!(get(&format!("http://{b_addr}/healthz")).await.unwrap().0, 200);
    wait_for("standby ready", Duration::from_secs(60), || async {
        (get(&format!("http://{b_addr}/readyz")).await?.0 == 200).then_some(())
    })
    .await;
    let metrics = get(&format!("http://{b_addr}/metrics")).await.unwrap().1;
    assert!(metrics.contains("shopify_operator_leader 0"), "{metrics}");

    a.kill();
    wait_for("b holds the lease", Duration::from_secs(90), || async {
        (holder(leases.get("shopify-operator").await.ok()?).as_deref() == Some("b")).then_some(())
    })
    .await;
    // A change after the kill is converged by b.
    let patch = json!({"spec": {"webhooks": {"topics": ["orders/create", "orders/updated"]}}});
    env.shops()
        .patch("shop", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("b converges the change", Duration::from_secs(60), || async {
        (env.sim.subscriptions(domain).len() == 2).then_some(())
    })
    .await;
    env.wait_condition("shop", "Ready", "True", None).await;
    assert!(b.exited().is_none(), "the new leader exited");
    let metrics = get(&format!("http://{b_addr}/metrics")).await.unwrap().1;
    assert!(metrics.contains("shopify_operator_leader 1"), "{metrics}");
    let _ = b.terminate(Duration::from_secs(10));
}
