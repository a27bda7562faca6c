//! A shop moving from one Shopify app to another (`spec.appRef` edited in
//! Git), against shopify-sim — where each app sees only its own
//! subscriptions and tokens — and the real apiserver: the previous app
//! keeps everything while the merchant has not installed the new one; the
//! new app's subscriptions are created and listed back before the previous
//! app's are deleted, so the simulator's timeline shows no moment without
//! a live subscription and an overlap inside one pass. Also: a Secret name
//! kept across apps, a rollback, a missing scope, the previous app
//! uninstalled, and the operator SIGKILLed between the steps.
//!
//! Network: loopback only.

mod support;

use std::time::{Duration, SystemTime};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use shopify_admin::ClientSecret;
use shopify_admin::hmac::sign_webhook;
use shopify_operator::crd::{HandoverPhase, ShopifyApp, ShopifyShopStatus};
use shopify_sim::timeline::{overlap, uncovered};
use shopify_sim::{AppFixture, Fault, Fixture, ShopFixture, SubscriptionFixture, TokenFixture};
use support::{Env, LOST_RESPONSE_HANG, browse, consent, http_addr, job_template, wait_for};

const SHOP: &str = "ps-direct-fulfilment-online.myshopify.com";
const HOST: &str = "oms.popsockets.com";
const TOPICS: [&str; 2] = ["orders/create", "products/update"];
const PUBLIC_URL: &str = "https://operator.example";
const LEGACY_ID: &str = "legacy-id";
const LEGACY_SECRET: &str = "legacy-client-secret";
const OMS_ID: &str = "oms-id";
const OMS_SECRET: &str = "oms-client-secret";
const LEGACY_TOKEN: &str = "shpat_legacy_rails_token";
/// The new app's token for the shop, as an install would give it.
const OMS_TOKEN: &str = "shpat_oms_installed_token";
/// The new app's token without `read_products`.
const NARROW_TOKEN: &str = "shpat_oms_without_products";

fn address(topic: &str) -> String {
    format!("https://{HOST}/webhooks/{}", topic.replace('/', "_"))
}

fn token(token: &str, app: &str, scopes: &[&str]) -> TokenFixture {
    TokenFixture {
        access_token: token.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        client_id: Some(app.into()),
        ..Default::default()
    }
}

/// The shop as the Rails app left it: the legacy app's token and its
/// subscriptions at the OMS's host; the new app's tokens exist for tests
/// that put them in a Secret by hand.
fn fixture() -> Fixture {
    let scopes = ["read_orders", "read_products"];
    Fixture {
        shops: vec![ShopFixture {
            domain: SHOP.into(),
            tokens: vec![
                token(LEGACY_TOKEN, LEGACY_ID, &scopes),
                token(OMS_TOKEN, OMS_ID, &scopes),
                token(NARROW_TOKEN, OMS_ID, &["read_orders"]),
            ],
            subscriptions: TOPICS
                .iter()
                .map(|t| SubscriptionFixture {
                    topic: t.to_string(),
                    address: address(t),
                    client_id: Some(LEGACY_ID.into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        app: None,
        apps: vec![
            AppFixture {
                client_id: LEGACY_ID.into(),
                client_secret: LEGACY_SECRET.into(),
                previous_client_secret: None,
            },
            AppFixture {
                client_id: OMS_ID.into(),
                client_secret: OMS_SECRET.into(),
                previous_client_secret: None,
            },
        ],
    }
}

/// Both ShopifyApps, the legacy token Secret (`managed`: labelled as the
/// operator's, as an OAuth install leaves it) and the shop on the legacy
/// app, Ready with the Rails app's subscriptions adopted.
async fn start(prefix: &str, managed: bool) -> Env {
    let mut env = Env::new(prefix, fixture()).await;
    env.app_credentials("legacy-app", LEGACY_ID, LEGACY_SECRET, None)
        .await;
    env.app_credentials("oms-app", OMS_ID, OMS_SECRET, None).await;
    for (name, secret) in [("oms-legacy", "legacy-app"), ("oms", "oms-app")] {
        env.create_app(
            name,
            json!({"credentialsSecretRef": {"name": secret}, "allowedShops": [SHOP],
                   "scopes": ["read_orders", "read_products"]}),
        )
        .await;
    }
    env.secrets.lock().unwrap().push(LEGACY_TOKEN.into());
    let labels = if managed {
        json!({"app.kubernetes.io/managed-by": "shopify-operator"})
    } else {
        json!({})
    };
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "online-shopify-token", "labels": labels},
        "stringData": {"access-token": LEGACY_TOKEN}
    }))
    .unwrap();
    Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    env.create_shop(
        "online",
        json!({
            "domain": SHOP,
            "appRef": {"name": "oms-legacy"},
            "token": {"secretRef": {"name": "online-shopify-token"}},
            "webhooks": {"endpoint": {"host": HOST}, "topics": TOPICS},
            "sync": [{"name": "orders", "schedule": "0 3 * * *", "jobTemplate": job_template()}],
        }),
    )
    .await;
    env.operator_args.push(("PUBLIC_URL".into(), PUBLIC_URL.into()));
    env.start_operator("5m");
    env.wait_condition("online", "Ready", "True", None).await;
    let status = shop_status(&env).await;
    assert_eq!(status.app.as_ref().map(|a| a.name.as_str()), Some("oms-legacy"));
    assert_eq!(
        subscriptions(&env, LEGACY_ID).len(),
        2,
        "the Rails app's, adopted"
    );
    assert!(subscriptions(&env, OMS_ID).is_empty());
    assert_eq!(env.sim.counters(SHOP).mutations, 0, "adoption changes nothing");
    env
}

async fn shop_status(env: &Env) -> ShopifyShopStatus {
    env.shops()
        .get("online")
        .await
        .unwrap()
        .status
        .unwrap_or_default()
}

/// `app`'s subscriptions on the shop, as `(topic, address)`, sorted.
fn subscriptions(env: &Env, app: &str) -> Vec<(String, String)> {
    let mut out: Vec<_> = env
        .sim
        .subscriptions_of(SHOP, app)
        .into_iter()
        .map(|s| (s.topic, s.address))
        .collect();
    out.sort();
    out
}

/// What one app has after a move: one subscription per topic, at the host.
fn one_per_topic() -> Vec<(String, String)> {
    let mut out: Vec<_> = TOPICS
        .iter()
        .map(|t| (t.to_uppercase().replace('/', "_"), address(t)))
        .collect();
    out.sort();
    out
}

/// The move in Git: ShopifyApp `oms`, and a Secret of its own for its token.
fn to_oms() -> serde_json::Value {
    json!({"appRef": {"name": "oms"}, "token": {"secretRef": {"name": "online-oms-token"}}})
}

async fn patch_spec(env: &Env, spec: serde_json::Value) {
    env.shops()
        .patch(
            "online",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": spec})),
        )
        .await
        .unwrap();
}

/// The Secrets the shop's sync Jobs read the token from.
async fn job_token_secrets(env: &Env) -> Vec<String> {
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), &env.ns);
    let items = jobs.list(&ListParams::default()).await.unwrap().items;
    items
        .iter()
        .flat_map(|j| {
            let spec = j.spec.as_ref().and_then(|s| s.template.spec.as_ref());
            spec.map(|s| s.containers.clone()).unwrap_or_default()
        })
        .flat_map(|c| c.env.unwrap_or_default())
        .filter(|e| e.name == "SHOPIFY_ACCESS_TOKEN")
        .filter_map(|e| e.value_from?.secret_key_ref.map(|r| r.name))
        .collect()
}

/// Runs a sync now and waits for its Job to read the token from `secret`.
async fn sync_reads(env: &Env, run: &str, secret: &str) {
    env.shops()
        .patch(
            "online",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"shopify-operator.dev/sync-now": run}}})),
        )
        .await
        .unwrap();
    wait_for(
        &format!("a sync Job reading Secret {secret}"),
        Duration::from_secs(60),
        || async {
            job_token_secrets(env)
                .await
                .iter()
                .any(|s| s == secret)
                .then_some(())
        },
    )
    .await;
}

/// No moment without a live subscription per topic at its address since
/// `since`, across both apps.
fn assert_no_gap(env: &Env, since: SystemTime) {
    let timeline = env.sim.timeline(SHOP);
    for t in TOPICS {
        let gap = uncovered(&timeline, t, &address(t), since, SystemTime::now());
        assert_eq!(
            gap,
            Duration::ZERO,
            "{t} had no live subscription for {gap:?}: {timeline:#?}"
        );
    }
}

/// Waits for the shop's `AppHandover` condition.
async fn wait_handover(env: &Env, status: &str, reason: &str) {
    env.wait_condition("online", "AppHandover", status, Some(reason))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_moves_to_another_app_with_no_gap() {
    let env = start("handover", false).await;
    let since = SystemTime::now();

    // The move, in Git: another app, a Secret for its token.
    patch_spec(&env, to_oms()).await;
    wait_handover(&env, "False", "WaitingForInstall").await;
    let status = shop_status(&env).await;
    let handover = status.handover.clone().unwrap();
    assert_eq!(handover.phase, HandoverPhase::WaitingForInstall);
    assert_eq!(handover.from.name, "oms-legacy");
    assert_eq!(handover.to, "oms");
    let url = format!("{PUBLIC_URL}/oauth/{}/oms/install?shop={SHOP}", env.ns);
    assert_eq!(handover.install_url.as_deref(), Some(url.as_str()));
    assert_eq!(status.app.as_ref().unwrap().name, "oms-legacy", "still live");
    let (ready, reason, _) = env.condition("online", "Ready").await.unwrap();
    assert_eq!((ready.as_str(), reason.as_str()), ("False", "WaitingForInstall"));
    assert_eq!(
        env.condition("online", "Stalled").await.unwrap().0,
        "True",
        "the merchant acts"
    );
    let (_, _, message) = env.condition("online", "AppHandover").await.unwrap();
    assert!(
        message.contains(&url),
        "the merchant's URL, in the message and so the Event: {message}"
    );
    assert_eq!(env.published("online", "Warning", "WaitingForInstall").await, 1);
    let apps: Api<ShopifyApp> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for("oms counts the shop waiting", Duration::from_secs(60), || async {
        let s = apps.get("oms").await.ok()?.status?;
        (s.shops_waiting == Some(1)).then_some(())
    })
    .await;
    // Meanwhile nothing moved on Shopify, and syncs keep the old token.
    assert_eq!(subscriptions(&env, LEGACY_ID).len(), 2);
    assert!(subscriptions(&env, OMS_ID).is_empty());
    sync_reads(&env, "during-the-wait", "online-shopify-token").await;

    // The merchant installs the new app through its own OAuth route.
    let base = format!("http://{}", http_addr(env.operator.as_ref().unwrap()).await);
    let install = url.replacen(PUBLIC_URL, "", 1);
    let c = consent(&base, &install, PUBLIC_URL).await;
    assert!(c.authorize.contains("client_id=oms-id"), "{}", c.authorize);
    let installed = SystemTime::now();
    let a = browse(&c.callback, Some(&c.cookie)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    wait_handover(&env, "True", "HandedOver").await;
    let done = SystemTime::now();

    let status = shop_status(&env).await;
    let live = status.app.clone().unwrap();
    assert_eq!(
        (live.name.as_str(), live.token_secret.as_str()),
        ("oms", "online-oms-token")
    );
    let handover = status.handover.clone().unwrap();
    assert_eq!(handover.phase, HandoverPhase::Complete);
    assert_eq!(handover.previous_uninstalled, Some(false));
    assert!(handover.install_url.is_none());
    env.wait_condition("online", "Ready", "True", None).await;
    // Only the new app's subscriptions are left, one per topic.
    assert!(subscriptions(&env, LEGACY_ID).is_empty());
    assert_eq!(subscriptions(&env, OMS_ID), one_per_topic());
    assert_no_gap(&env, since);
    let timeline = env.sim.timeline(SHOP);
    for t in TOPICS {
        let both = overlap(&timeline, t, &address(t), LEGACY_ID, OMS_ID);
        let switch = done.duration_since(installed).unwrap();
        assert!(
            both > Duration::ZERO && both <= switch,
            "{t}: both apps for {both:?}, the switch took {switch:?}"
        );
    }
    assert_eq!(env.published("online", "Normal", "HandedOver").await, 1);
    // The previous app stays installed, so its token Secret stays.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    assert!(secrets.get_opt("online-shopify-token").await.unwrap().is_some());
    // Syncs take the new token from their next run.
    sync_reads(&env, "after-the-switch", "online-oms-token").await;
    wait_for("oms waits for no shop", Duration::from_secs(60), || async {
        let s = apps.get("oms").await.ok()?.status?;
        (s.shops_waiting == Some(0)).then_some(())
    })
    .await;

    // The previous app's app/uninstalled (the merchant removes it later)
    // is recognised: it does not mark the shop uninstalled.
    let body = json!({"id": 1, "domain": SHOP}).to_string();
    let hmac = sign_webhook(body.as_bytes(), &ClientSecret::from(LEGACY_SECRET));
    let answer = reqwest::Client::new()
        .post(format!("{base}/shopify/webhooks/app_uninstalled"))
        .header("X-Shopify-Topic", "app/uninstalled")
        .header("X-Shopify-Shop-Domain", SHOP)
        .header("X-Shopify-Hmac-Sha256", hmac)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("previous app"));
    wait_for(
        "oms-legacy counts the uninstall",
        Duration::from_secs(60),
        || async {
            let s = apps.get("oms-legacy").await.ok()?.status?;
            (s.uninstalls == Some(1)).then_some(())
        },
    )
    .await;
    assert!(shop_status(&env).await.app_uninstalled.is_none());
    env.wait_condition("online", "Ready", "True", None).await;
}

/// Puts `token` in the new app's Secret, as a reinstall would.
async fn set_token(env: &Env, token: &str) {
    env.secrets.lock().unwrap().push(token.into());
    Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .patch(
            "online-oms-token",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"access-token": token}})),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_refuses_a_shared_secret_cancels_and_waits_for_scopes() {
    let env = start("handover-held", true).await;
    let since = SystemTime::now();

    // Only appRef changes: the new app's token would overwrite the old
    // one, so the move is blocked, and so is the new app's install.
    patch_spec(&env, json!({"appRef": {"name": "oms"}})).await;
    wait_handover(&env, "False", "TokenSecretInUse").await;
    let status = shop_status(&env).await;
    assert_eq!(status.handover.as_ref().unwrap().phase, HandoverPhase::Blocked);
    assert_eq!(status.app.as_ref().unwrap().name, "oms-legacy");
    let base = format!("http://{}", http_addr(env.operator.as_ref().unwrap()).await);
    let a = browse(&format!("{base}/oauth/{}/oms/install?shop={SHOP}", env.ns), None).await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.is("TokenSecretInUse"), "{}", a.body);

    // Set back before anything switched: cancelled, nothing changed.
    patch_spec(&env, json!({"appRef": {"name": "oms-legacy"}})).await;
    wait_handover(&env, "True", "HandoverCancelled").await;
    env.wait_condition("online", "Ready", "True", None).await;
    assert_eq!(
        shop_status(&env).await.handover.unwrap().phase,
        HandoverPhase::Cancelled
    );
    assert_eq!(env.sim.counters(SHOP).mutations, 0);

    // A token of another app in the new Secret: blocked, nothing switched.
    env.token_secret("online-oms-token", LEGACY_TOKEN).await;
    patch_spec(
        &env,
        json!({"appRef": {"name": "oms"}, "token": {"secretRef": {"name": "online-oms-token"}},
               "appHandover": {"uninstallPrevious": true}}),
    )
    .await;
    wait_handover(&env, "False", "TokenAppMismatch").await;
    assert!(subscriptions(&env, OMS_ID).is_empty(), "nothing switched");

    // The new app's token lacks a scope a topic needs: blocked, naming it.
    set_token(&env, NARROW_TOKEN).await;
    wait_handover(&env, "False", "MissingScopes").await;
    let (_, _, message) = env.condition("online", "AppHandover").await.unwrap();
    assert!(
        message.contains("ShopifyApp oms") && message.contains("read_products"),
        "{message}"
    );
    assert!(subscriptions(&env, OMS_ID).is_empty(), "nothing switched");
    assert_eq!(subscriptions(&env, LEGACY_ID).len(), 2);

    // Reinstalled with the scope: the switch, and the previous app goes.
    set_token(&env, OMS_TOKEN).await;
    wait_handover(&env, "True", "HandedOver").await;
    let handover = shop_status(&env).await.handover.unwrap();
    assert_eq!(handover.previous_uninstalled, Some(true));
    assert!(subscriptions(&env, LEGACY_ID).is_empty());
    assert_eq!(subscriptions(&env, OMS_ID), one_per_topic());
    assert_no_gap(&env, since);
    // Uninstalled: its token answers 401, and the Secret the operator made
    // for it is gone.
    let answer = reqwest::Client::new()
        .post(env.sim.graphql_url(SHOP, "2025-07"))
        .header("X-Shopify-Access-Token", LEGACY_TOKEN)
        .json(&json!({"query": "{ shop { name } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for(
        "the previous token Secret is deleted",
        Duration::from_secs(60),
        || async {
            secrets
                .get_opt("online-shopify-token")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    env.wait_condition("online", "Ready", "True", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_killed_between_its_steps_finishes_with_no_gap_or_duplicate() {
    let mut env = start("handover-kill", false).await;
    let since = SystemTime::now();
    patch_spec(&env, to_oms()).await;
    wait_handover(&env, "False", "WaitingForInstall").await;
    // The next mutation is applied and its answer never comes.
    let hang = || Fault::TimeoutAfterApply {
        shop: Some(SHOP.into()),
        count: 1,
        hang: LOST_RESPONSE_HANG,
        mutations_only: true,
    };

    // Killed after the new app's subscriptions exist, before anything else.
    env.sim.inject(hang());
    env.token_secret("online-oms-token", OMS_TOKEN).await;
    wait_for(
        "the new app's subscriptions are created",
        Duration::from_secs(60),
        || async { (subscriptions(&env, OMS_ID).len() == 2).then_some(()) },
    )
    .await;
    env.operator.take().unwrap().kill();
    assert_eq!(subscriptions(&env, LEGACY_ID).len(), 2, "both apps deliver");
    assert_no_gap(&env, since);

    // Restarted: the new app's are found, not made again; killed once the
    // previous app's are deleted, before the status says so.
    env.sim.clear_faults();
    env.sim.inject(hang());
    env.start_operator("5m");
    wait_for(
        "the previous app's subscriptions are deleted",
        Duration::from_secs(60),
        || async { subscriptions(&env, LEGACY_ID).is_empty().then_some(()) },
    )
    .await;
    env.operator.take().unwrap().kill();
    assert_ne!(
        shop_status(&env).await.handover.map(|h| h.phase),
        Some(HandoverPhase::Complete)
    );

    // Restarted again: the move completes, with nothing left to do.
    env.sim.clear_faults();
    env.start_operator("5m");
    wait_handover(&env, "True", "HandedOver").await;
    assert_eq!(subscriptions(&env, OMS_ID), one_per_topic(), "no duplicate");
    assert!(subscriptions(&env, LEGACY_ID).is_empty());
    assert_no_gap(&env, since);
    env.wait_condition("online", "Ready", "True", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn going_back_after_the_switch_is_a_move_the_other_way_and_an_uninstalled_app_is_left_to_shopify() {
    let env = start("handover-back", false).await;
    let since = SystemTime::now();
    let to_legacy =
        json!({"appRef": {"name": "oms-legacy"}, "token": {"secretRef": {"name": "online-shopify-token"}}});
    env.token_secret("online-oms-token", OMS_TOKEN).await;
    patch_spec(&env, to_oms()).await;
    wait_handover(&env, "True", "HandedOver").await;
    assert_eq!(subscriptions(&env, OMS_ID), one_per_topic());
    assert!(subscriptions(&env, LEGACY_ID).is_empty());

    // The Git revert: the previous app is still installed and its Secret
    // kept, so the shop moves straight back, with no gap either way.
    patch_spec(&env, to_legacy).await;
    wait_for("the move back", Duration::from_secs(60), || async {
        let s = shop_status(&env).await;
        let h = s.handover?;
        (h.phase == HandoverPhase::Complete && h.to == "oms-legacy").then_some(())
    })
    .await;
    assert_eq!(subscriptions(&env, LEGACY_ID), one_per_topic());
    assert!(subscriptions(&env, OMS_ID).is_empty());
    assert_no_gap(&env, since);
    env.wait_condition("online", "Ready", "True", None).await;

    // The merchant uninstalls the live app, then the shop moves on: the
    // previous token answers 401, so nothing is deleted with it (Shopify
    // removed its subscriptions) and the move completes.
    assert!(env.sim.uninstall_app(SHOP, LEGACY_ID));
    patch_spec(&env, to_oms()).await;
    wait_for("the move to oms once more", Duration::from_secs(60), || async {
        let h = shop_status(&env).await.handover?;
        (h.phase == HandoverPhase::Complete && h.to == "oms").then_some(h)
    })
    .await;
    let h = shop_status(&env).await.handover.unwrap();
    assert_eq!(h.previous_uninstalled, Some(true));
    let (_, _, message) = env.condition("online", "AppHandover").await.unwrap();
    assert!(message.contains("uninstalled"), "{message}");
    assert_eq!(subscriptions(&env, OMS_ID), one_per_topic());
    // Its token Secret was made by hand: kept.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    assert!(secrets.get_opt("online-shopify-token").await.unwrap().is_some());
    env.wait_condition("online", "Ready", "True", None).await;
}
