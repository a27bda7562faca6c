//! Expiring offline tokens end to end: the operator refreshes the access
//! token ahead of expiry through shopify-sim's OAuth endpoint and stores the
//! new pair in the Secret; a refusal is a Warning and a reason, never a lost
//! token.

mod support;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;
use shopify_operator::sim::{AppFixture, Fixture, ShopFixture, TokenFixture};
use support::{Env, spec, wait_for};

const DOMAIN: &str = "expiring-shop.myshopify.com";

fn fixture() -> Fixture {
    Fixture {
        shops: vec![ShopFixture {
            domain: DOMAIN.into(),
            tokens: vec![TokenFixture {
                access_token: "shpat_expiring_first".into(),
                scopes: vec!["read_orders".into()],
                refresh_token: Some("shprt_first".into()),
                expires_in_seconds: Some(120),
            }],
            ..Default::default()
        }],
        app: Some(AppFixture {
            client_id: "client-1".into(),
            client_secret: "secret-1".into(),
            ..Default::default()
        }),
    }
}

async fn secrets(env: &Env, client_secret: &str) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let expires = (Timestamp::now() + SignedDuration::from_secs(120)).to_string();
    let refresh_expires = (Timestamp::now() + SignedDuration::from_hours(24 * 90)).to_string();
    for s in [
        json!({"metadata": {"name": "tok"}, "stringData": {"access-token": "shpat_expiring_first",
               "refresh-token": "shprt_first", "expires-at": expires, "refresh-token-expires-at": refresh_expires}}),
        json!({"metadata": {"name": "app"}, "stringData": {"client-id": "client-1", "client-secret": client_secret}}),
    ] {
        api.create(&PostParams::default(), &serde_json::from_value(s).unwrap())
            .await
            .unwrap();
    }
}

fn key(secret: &Secret, k: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[k].0.clone()).unwrap()
}

fn shop_spec() -> serde_json::Value {
    let mut s = spec(
        DOMAIN,
        "tok",
        json!({"host": "oms.popsockets.com"}),
        &["orders/create"],
    );
    s["app"] = json!({"secretRef": {"name": "app"}});
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_is_refreshed_ahead_and_stored() {
    let mut env = Env::new("refresh", fixture()).await;
    secrets(&env, "secret-1").await;
    env.create_shop("shop", shop_spec()).await;
    env.operator_args
        .push(("TOKEN_REFRESH_AHEAD".into(), "10m".into()));
    env.start_operator("5m");
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let refreshed = wait_for(
        "a new access token in the Secret",
        Duration::from_secs(30),
        || async {
            let s = api.get("tok").await.ok()?;
            (key(&s, "access-token") != "shpat_expiring_first").then_some(s)
        },
    )
    .await;
    assert_ne!(
        key(&refreshed, "refresh-token"),
        "shprt_first",
        "the new refresh token was not stored"
    );
    let expires: Timestamp = key(&refreshed, "expires-at").parse().unwrap();
    assert!(
        expires > Timestamp::now() + SignedDuration::from_secs(3000),
        "expires-at not moved: {expires}"
    );
    // The new token works: the shop is Ready with it.
    env.wait_condition("shop", "Ready", "True", None).await;
    let status = env.shops().get("shop").await.unwrap().status.unwrap();
    assert_eq!(
        status.token_expires_at.map(|t| t.0.as_second()),
        Some(expires.as_second())
    );
    wait_for("TokenRefreshed event", Duration::from_secs(20), || async {
        env.events("shop", "TokenRefreshed").await.into_iter().next()
    })
    .await;
    let new_token = key(&refreshed, "access-token");
    let log = env.operator_log();
    for secret in [
        "shpat_expiring_first",
        "shprt_first",
        new_token.as_str(),
        "secret-1",
    ] {
        assert!(!log.contains(secret), "a secret is in the operator log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_is_a_warning_and_loses_nothing() {
    let mut env = Env::new("refresh-fail", fixture()).await;
    secrets(&env, "wrong-secret").await;
    env.create_shop("shop", shop_spec()).await;
    env.operator_args
        .push(("TOKEN_REFRESH_AHEAD".into(), "10m".into()));
    env.start_operator("5m");
    env.wait_condition("shop", "TokenValid", "True", Some("TokenRefreshFailed"))
        .await;
    wait_for("TokenRefreshFailed event", Duration::from_secs(20), || async {
        env.events("shop", "TokenRefreshFailed")
            .await
            .into_iter()
            .find(|e| e.type_.as_deref() == Some("Warning"))
    })
    .await;
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let s = api.get("tok").await.unwrap();
    assert_eq!(key(&s, "access-token"), "shpat_expiring_first");
    assert_eq!(key(&s, "refresh-token"), "shprt_first");
    let (_, _, msg) = env.condition("shop", "TokenValid").await.unwrap();
    assert!(
        !msg.contains("wrong-secret") && !msg.contains("shprt_first"),
        "{msg}"
    );
}
