//! Expiring offline tokens end to end: the operator refreshes the access
//! token ahead of expiry through shopify-sim's OAuth endpoint and stores the
//! new pair in the Secret; a refusal is a Warning and a reason, never a lost
//! token — nor is a lost response, an expired refresh token or a conflicting
//! Secret write. Migration of a non-expiring token by token exchange, with
//! the old token kept until the new one is verified.

mod support;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use shopify_admin::{AccessToken, ClientConfig, ShopifyClient};
use shopify_operator::controller::{Context, Settings, migrate, refresh};
use shopify_sim::{AppFixture, Fault, Fixture, ShopFixture, TokenFixture};
use support::{Env, LOST_RESPONSE_HANG, spec, wait_for};

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
                ..Default::default()
            }],
            ..Default::default()
        }],
        app: Some(AppFixture {
            client_id: "client-1".into(),
            client_secret: "secret-1".into(),
            ..Default::default()
        }),
        apps: Vec::new(),
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

/// An in-process controller context on the shared control plane and the
/// test's simulator, to drive one token step at a time.
fn context(env: &Env) -> Context {
    let shopify = ShopifyClient::new(ClientConfig {
        base_url: env.sim.base_url(),
        request_timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    })
    .unwrap();
    Context::new(
        env.client.clone(),
        shopify,
        Settings::with_resync(Duration::from_secs(300)),
    )
}

/// Whether the simulator accepts `token` for a `shop` query.
async fn works(env: &Env, token: &str) -> bool {
    let ctx = context(env);
    ctx.shopify
        .token_info(DOMAIN, "2025-07", &AccessToken::new(token.into()))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_refresh_response_is_recovered_with_the_same_refresh_token() {
    let mut env = Env::new("refresh-lost", fixture()).await;
    env.expect_lost_responses();
    secrets(&env, "secret-1").await;
    env.create_shop("shop", shop_spec()).await;
    // The refresh is the operator's first request for this shop: Shopify
    // issues the new pair, and the response never arrives.
    env.sim.inject(Fault::TimeoutAfterApply {
        shop: Some(DOMAIN.into()),
        count: 1,
        hang: LOST_RESPONSE_HANG,
        mutations_only: false,
    });
    env.operator_args
        .push(("TOKEN_REFRESH_AHEAD".into(), "10m".into()));
    env.start_operator("5m");
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let stored = wait_for(
        "a refreshed token in the Secret",
        Duration::from_secs(40),
        || async {
            let s = api.get("tok").await.ok()?;
            (key(&s, "access-token") != "shpat_expiring_first").then_some(s)
        },
    )
    .await;
    env.wait_condition("shop", "Ready", "True", Some("Reconciled"))
        .await;
    assert_eq!(
        env.sim.counters(DOMAIN).operation("access_token"),
        2,
        "the lost refresh was asked again exactly once"
    );
    assert!(works(&env, &key(&stored, "access-token")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_refresh_token_is_reported_and_the_secret_kept() {
    let mut env = Env::new("refresh-expired", fixture()).await;
    secrets(&env, "secret-1").await;
    env.create_shop("shop", shop_spec()).await;
    env.sim.expire_refresh_tokens(DOMAIN);
    env.operator_args
        .push(("TOKEN_REFRESH_AHEAD".into(), "10m".into()));
    env.start_operator("5m");
    env.wait_condition("shop", "TokenValid", "True", Some("TokenRefreshFailed"))
        .await;
    let (_, _, msg) = env.condition("shop", "TokenValid").await.unwrap();
    assert!(msg.contains("invalid_grant"), "{msg}");
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let s = api.get("tok").await.unwrap();
    assert_eq!(key(&s, "access-token"), "shpat_expiring_first");
    assert_eq!(key(&s, "refresh-token"), "shprt_first");
    assert!(!env.operator_log().contains("shprt_first"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_secret_write_wins_and_no_token_is_lost() {
    let env = Env::new("refresh-conflict", fixture()).await;
    secrets(&env, "secret-1").await;
    env.create_shop("shop", shop_spec()).await;
    let ctx = context(&env);
    let shop = env.shops().get("shop").await.unwrap();
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let stale = api.get("tok").await.unwrap();
    // Someone else writes the Secret between our read and our write.
    api.patch(
        "tok",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"rotated-by": "someone-else"}}})),
    )
    .await
    .unwrap();
    let first = refresh::run(&ctx, &shop, &stale, Duration::from_secs(600))
        .await
        .unwrap();
    assert!(first.updated.is_none(), "a stale write must fail, not overwrite");
    let kept = api.get("tok").await.unwrap();
    assert_eq!(
        kept.labels().get("rotated-by").map(String::as_str),
        Some("someone-else")
    );
    assert_eq!(key(&kept, "refresh-token"), "shprt_first");
    // The next pass starts from what is stored; the refresh token still
    // works because the pair issued for the lost write was never used.
    let second = refresh::run(&ctx, &shop, &kept, Duration::from_secs(600))
        .await
        .unwrap();
    let stored = second.updated.expect("the second refresh is stored");
    assert_eq!(
        stored.labels().get("rotated-by").map(String::as_str),
        Some("someone-else")
    );
    assert!(works(&env, &key(&stored, "access-token")).await);
}

fn non_expiring_fixture() -> Fixture {
    let mut f = fixture();
    f.shops[0].tokens = vec![TokenFixture {
        access_token: "shpat_never_expires".into(),
        scopes: vec!["read_orders".into()],
        ..Default::default()
    }];
    f
}

async fn migrating_shop(env: &Env) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    for s in [
        json!({"metadata": {"name": "tok"}, "stringData": {"access-token": "shpat_never_expires"}}),
        json!({"metadata": {"name": "app"}, "stringData": {"client-id": "client-1", "client-secret": "secret-1"}}),
    ] {
        api.create(&PostParams::default(), &serde_json::from_value(s).unwrap())
            .await
            .unwrap();
    }
    let mut s = shop_spec();
    s["token"]["migrateToExpiring"] = json!(true);
    env.create_shop("shop", s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_keeps_the_old_token_until_the_new_one_is_verified() {
    let env = Env::new("migrate-step", non_expiring_fixture()).await;
    migrating_shop(&env).await;
    let ctx = context(&env);
    let shop = env.shops().get("shop").await.unwrap();
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let before = api.get("tok").await.unwrap();
    let step = migrate::run(&ctx, &shop, &before).await.unwrap();
    let stored = step.updated.expect("the migrated pair is stored");
    assert_eq!(key(&stored, "migrated-from-access-token"), "shpat_never_expires");
    let new_token = key(&stored, "access-token");
    assert_ne!(new_token, "shpat_never_expires");
    assert!(stored.data.as_ref().unwrap().contains_key("refresh-token"));
    assert!(stored.data.as_ref().unwrap().contains_key("expires-at"));
    // Shopify invalidates the original token once migrated.
    assert!(!works(&env, "shpat_never_expires").await);
    assert!(works(&env, &new_token).await);
    // Nothing more to migrate; a repeat is a no-op.
    assert!(
        migrate::run(&ctx, &shop, &stored)
            .await
            .unwrap()
            .updated
            .is_none()
    );
    // Verified: the old token goes.
    assert!(migrate::finish(&ctx, &shop, &stored).await.unwrap().is_some());
    let after = api.get("tok").await.unwrap();
    assert!(
        !after
            .data
            .as_ref()
            .unwrap()
            .contains_key("migrated-from-access-token")
    );
    assert_eq!(key(&after, "access-token"), new_token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_migrates_a_token_even_when_the_answer_is_lost() {
    let mut env = Env::new("migrate", non_expiring_fixture()).await;
    env.expect_lost_responses();
    migrating_shop(&env).await;
    // The exchange happens at Shopify, and the response is lost: the retry
    // with the original token must get the same pair back.
    env.sim.inject(Fault::TimeoutAfterApply {
        shop: Some(DOMAIN.into()),
        count: 1,
        hang: LOST_RESPONSE_HANG,
        mutations_only: false,
    });
    env.start_operator("5m");
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let migrated = wait_for("a verified, migrated token", Duration::from_secs(40), || async {
        let s = api.get("tok").await.ok()?;
        let data = s.data.as_ref()?;
        (data.contains_key("refresh-token") && !data.contains_key("migrated-from-access-token")).then_some(s)
    })
    .await;
    env.wait_condition("shop", "Ready", "True", Some("Reconciled"))
        .await;
    assert_eq!(env.sim.counters(DOMAIN).operation("access_token"), 2);
    let token = key(&migrated, "access-token");
    assert!(works(&env, &token).await);
    for reason in ["TokenMigrating", "TokenMigrated"] {
        assert!(!env.events("shop", reason).await.is_empty(), "no {reason} Event");
    }
    let log = env.operator_log();
    for secret in [
        "shpat_never_expires",
        token.as_str(),
        &key(&migrated, "refresh-token"),
        "secret-1",
    ] {
        assert!(!log.contains(secret), "a secret is in the operator log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_near_its_end_is_a_reason_and_one_warning() {
    let mut env = Env::new("refresh-ending", fixture()).await;
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let soon = |h: i64| (Timestamp::now() + SignedDuration::from_hours(h)).to_string();
    for s in [
        json!({"metadata": {"name": "tok"}, "stringData": {"access-token": "shpat_expiring_first",
               "refresh-token": "shprt_first", "expires-at": soon(1), "refresh-token-expires-at": soon(48)}}),
        json!({"metadata": {"name": "app"}, "stringData": {"client-id": "client-1", "client-secret": "secret-1"}}),
    ] {
        api.create(&PostParams::default(), &serde_json::from_value(s).unwrap())
            .await
            .unwrap();
    }
    env.create_shop("shop", shop_spec()).await;
    env.start_operator("5m");
    env.wait_condition("shop", "TokenValid", "True", Some("RefreshTokenExpiring"))
        .await;
    env.wait_condition("shop", "Ready", "True", None).await;
    let events = wait_for(
        "a RefreshTokenExpiring Warning",
        Duration::from_secs(20),
        || async {
            let e = env.events("shop", "RefreshTokenExpiring").await;
            (!e.is_empty()).then_some(e)
        },
    )
    .await;
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));
    assert!(
        events[0]
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("reinstall")
    );
    // Nothing was refreshed: the access token is far from its expiry.
    assert_eq!(
        key(&api.get("tok").await.unwrap(), "access-token"),
        "shpat_expiring_first"
    );
}
