//! Subscriptions, tokens and buckets belong to the app that created them,
//! as on Shopify: two apps on one shop never see or change each other's
//! subscriptions, `appUninstall` removes only the caller's (and sends it a
//! signed `app/uninstalled`), deliveries are signed by each subscription's
//! own app, and the timeline measures a hand-over's gap and overlap.
//! Signatures are checked with the client's verifier (`shopify_admin`).

mod common;

use axum::http::HeaderMap;
use common::{gql_as, user_errors};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shopify_admin::{ClientSecret, SecretUsed, verify_webhook};
use shopify_sim::timeline::{overlap, uncovered};
use shopify_sim::{
    self as sim, AppFixture, Change, Fixture, ShopFixture, Sim, SimConfig, SubscriptionFixture, TokenFixture,
};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const SHOP: &str = "handover.myshopify.com";
const A: &str = "app-a";
const A_SECRET: &str = "a-secret-new";
const A_OLD: &str = "a-secret-old";
const B: &str = "app-b";
const B_SECRET: &str = "b-secret";
/// A's token names no app: it is the first app's.
const TA: &str = "shpat_app_a";
const TB: &str = "shpat_app_b";
const V: &str = "2025-07";

const CREATE: &str = r#"mutation($t: WebhookSubscriptionTopic!, $u: URL!) {
  c: webhookSubscriptionCreate(topic: $t, webhookSubscription: {callbackUrl: $u}) {
    webhookSubscription { id } userErrors { field message } } }"#;
const UPDATE: &str = r#"mutation($id: ID!, $in: WebhookSubscriptionInput!) {
  u: webhookSubscriptionUpdate(id: $id, webhookSubscription: $in) {
    webhookSubscription { id callbackUrl } userErrors { field message } } }"#;
const DELETE: &str = r#"mutation($id: ID!) {
  d: webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } } }"#;
const LIST: &str = "{ webhookSubscriptions(first: 50) { nodes { id topic callbackUrl } } }";
const ONE: &str = "query($id: ID!) { webhookSubscription(id: $id) { id } }";
const UNINSTALL: &str = "mutation { appUninstall { app { id apiKey } userErrors { field message code } } }";

fn fixture() -> Fixture {
    let token = |value: &str, client_id: Option<&str>| TokenFixture {
        access_token: value.into(),
        scopes: vec!["read_orders".into()],
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    };
    Fixture {
        shops: vec![ShopFixture {
            domain: SHOP.into(),
            tokens: vec![token(TA, None), token(TB, Some(B))],
            ..Default::default()
        }],
        app: None,
        apps: vec![
            AppFixture {
                client_id: A.into(),
                client_secret: A_SECRET.into(),
                previous_client_secret: Some(A_OLD.into()),
            },
            AppFixture {
                client_id: B.into(),
                client_secret: B_SECRET.into(),
                previous_client_secret: None,
            },
        ],
    }
}

async fn start() -> Sim {
    sim::start(SimConfig {
        fixture: fixture(),
        allow_insecure_addresses: true,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts")
}

async fn as_app(sim: &Sim, token: &str, query: &str, variables: Value) -> Value {
    let r = gql_as(sim, SHOP, token, V, query, variables).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Creates `topic` at `url` as `token`'s app; the gid.
async fn create(sim: &Sim, token: &str, topic: &str, url: &str) -> String {
    let body = as_app(sim, token, CREATE, json!({"t": topic, "u": url})).await;
    assert_eq!(user_errors(&body, "c"), [], "{body}");
    body["data"]["c"]["webhookSubscription"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn listed_ids(sim: &Sim, token: &str) -> Vec<String> {
    let body = as_app(sim, token, LIST, json!({})).await;
    body["data"]["webhookSubscriptions"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

/// A delivery as a receiver saw it.
#[derive(Debug)]
struct Got {
    topic: String,
    shop: String,
    hmac: String,
    body: axum::body::Bytes,
}

/// A local receiver on a free port; its URL and what it receives.
async fn receiver() -> (String, UnboundedReceiver<Got>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let header = |n: &str| {
                    h.get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let _ = tx.send(Got {
                    topic: header("x-shopify-topic"),
                    shop: header("x-shopify-shop-domain"),
                    hmac: header("x-shopify-hmac-sha256"),
                    body,
                });
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// The next delivery, waiting up to a generous deadline.
async fn next(rx: &mut UnboundedReceiver<Got>) -> Got {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a delivery within 20 s")
        .expect("the receiver is running")
}

/// Which app signed a delivery: A (with its previous secret, the oldest
/// unrevoked one) or B.
fn signer(got: &Got) -> Option<&'static str> {
    let s = ClientSecret::from;
    if verify_webhook(&got.body, &got.hmac, &s(A_SECRET), Some(&s(A_OLD))) == Some(SecretUsed::Previous) {
        return Some(A);
    }
    verify_webhook(&got.body, &got.hmac, &s(B_SECRET), None).map(|_| B)
}

#[tokio::test]
async fn each_app_sees_and_changes_only_its_own_subscriptions() {
    let sim = start().await;
    let url = "https://oms.example/webhooks/orders_create";
    let a = create(&sim, TA, "ORDERS_CREATE", url).await;
    // The same topic and address once per app: B may, A may not again.
    let b = create(&sim, TB, "ORDERS_CREATE", url).await;
    let again = as_app(&sim, TA, CREATE, json!({"t": "ORDERS_CREATE", "u": url})).await;
    assert_eq!(
        user_errors(&again, "c"),
        [(
            json!(["webhookSubscription", "callbackUrl"]),
            "Address for this topic has already been taken".to_string()
        )]
    );
    assert_eq!(listed_ids(&sim, TA).await, [a.as_str()]);
    assert_eq!(listed_ids(&sim, TB).await, [b.as_str()]);
    // Another app's id answers exactly like an id that does not exist.
    let unknown = "gid://shopify/WebhookSubscription/999999";
    for (query, alias, vars) in [
        (
            UPDATE,
            "u",
            json!({"in": {"callbackUrl": "https://evil.example/h"}}),
        ),
        (DELETE, "d", json!({})),
    ] {
        let with = |id: &str| {
            let mut v = vars.clone();
            v["id"] = json!(id);
            v
        };
        let theirs = as_app(&sim, TA, query, with(&b)).await;
        let missing = as_app(&sim, TA, query, with(unknown)).await;
        assert_eq!(theirs["data"], missing["data"], "{alias}");
        assert_eq!(user_errors(&theirs, alias).len(), 1, "{theirs}");
    }
    let one = as_app(&sim, TA, ONE, json!({"id": b})).await;
    assert_eq!(one["data"]["webhookSubscription"], Value::Null, "{one}");
    let one = as_app(&sim, TB, ONE, json!({"id": b})).await;
    assert_eq!(one["data"]["webhookSubscription"]["id"], json!(b));

    // B's subscription is untouched; the handle lists both apps'.
    let all = sim.subscriptions(SHOP);
    let owners: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (s.id.as_str(), s.client_id.as_str()))
        .collect();
    assert_eq!(owners, [(a.as_str(), A), (b.as_str(), B)]);
    assert_eq!(all[1].address, url);
    assert_eq!(sim.subscriptions_of(SHOP, B).len(), 1);

    // Planted for B: only B sees it, even though it duplicates B's pair.
    let planted = sim.add_subscription_for(
        SHOP,
        B,
        SubscriptionFixture {
            topic: "orders/create".into(),
            address: url.into(),
            ..Default::default()
        },
    );
    assert_eq!(listed_ids(&sim, TB).await, [b.clone(), planted]);
    assert_eq!(listed_ids(&sim, TA).await, [a]);
    assert_eq!(sim.subscriptions_of(SHOP, A).len(), 1);
}

#[tokio::test]
async fn current_app_installation_and_the_bucket_are_the_calling_apps() {
    let sim = start().await;
    let q = "{ currentAppInstallation { app { id apiKey } accessScopes { handle } } }";
    let a = as_app(&sim, TA, q, json!({})).await;
    let b = as_app(&sim, TB, q, json!({})).await;
    assert_eq!(a["data"]["currentAppInstallation"]["app"]["apiKey"], A);
    assert_eq!(b["data"]["currentAppInstallation"]["app"]["apiKey"], B);
    let id = |v: &Value| v["data"]["currentAppInstallation"]["app"]["id"].clone();
    assert!(id(&a).as_str().unwrap().starts_with("gid://shopify/App/"));
    assert_ne!(id(&a), id(&b));
    // B's mutation is paid from B's bucket only.
    let a_before = sim.throttle_status_of(SHOP, A).currently_available;
    create(&sim, TB, "ORDERS_CREATE", "https://oms.example/h").await;
    let a_after = sim.throttle_status_of(SHOP, A);
    assert!(a_after.currently_available >= a_before);
    // 10 points taken; well under a second restores fewer than 5 of them.
    let b_after = sim.throttle_status_of(SHOP, B);
    assert!(
        (b_after.currently_available as f64) < b_after.maximum_available - 5.0,
        "{b_after:?}"
    );
    assert!(
        sim.throttle_status(SHOP).currently_available >= a_before,
        "the default app's is A's"
    );
}

#[tokio::test]
async fn app_uninstall_removes_only_the_calling_apps_subscriptions_and_tokens() {
    let sim = start().await;
    let (hook, mut rx) = receiver().await;
    create(&sim, TA, "APP_UNINSTALLED", &hook).await;
    create(&sim, TA, "ORDERS_CREATE", &hook).await;
    let b_subs = [
        create(&sim, TB, "APP_UNINSTALLED", &hook).await,
        create(&sim, TB, "ORDERS_CREATE", &hook).await,
    ];

    // Before 2025-07 the schema has no appUninstall: a validation error,
    // nothing executed.
    let old = gql_as(&sim, SHOP, TA, "2025-04", UNINSTALL, json!({})).await;
    assert_eq!(old.status, StatusCode::OK);
    assert_eq!(
        old.body["errors"][0]["message"], "Field 'appUninstall' doesn't exist on type 'Mutation'",
        "{}",
        old.body
    );
    assert!(old.body.get("data").is_none(), "{}", old.body);
    assert_eq!(sim.subscriptions_of(SHOP, A).len(), 2);

    let done = as_app(&sim, TA, UNINSTALL, json!({})).await;
    let payload = &done["data"]["appUninstall"];
    assert_eq!(payload["userErrors"], json!([]), "{done}");
    assert_eq!(payload["app"]["apiKey"], A);
    assert!(
        payload["app"]["id"]
            .as_str()
            .unwrap()
            .starts_with("gid://shopify/App/")
    );
    assert_eq!(done["extensions"]["cost"]["actualQueryCost"], 10);

    // A's subscriptions and token are gone; B keeps both.
    assert!(sim.subscriptions_of(SHOP, A).is_empty());
    let after = gql_as(&sim, SHOP, TA, V, LIST, json!({})).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        after.body,
        json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
    );
    assert_eq!(listed_ids(&sim, TB).await, b_subs);

    // One app/uninstalled, to A's receiver, signed by A.
    let got = next(&mut rx).await;
    assert_eq!((got.topic.as_str(), got.shop.as_str()), ("app/uninstalled", SHOP));
    assert_eq!(signer(&got), Some(A), "{got:?}");
    let shop: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(shop["domain"], SHOP);
    assert_eq!(shop["myshopify_domain"], SHOP);

    // The timeline has A's two deletions, after everything else.
    let tl = sim.timeline(SHOP);
    let last: Vec<(&str, Change)> = tl[tl.len() - 2..]
        .iter()
        .map(|e| (e.client_id.as_str(), e.change))
        .collect();
    assert_eq!(last, [(A, Change::Deleted), (A, Change::Deleted)]);

    // The merchant uninstalls B: the same, signed by B; a second time
    // there is nothing left to uninstall.
    assert!(sim.uninstall_app(SHOP, B));
    let got = next(&mut rx).await;
    assert_eq!(got.topic, "app/uninstalled");
    assert_eq!(signer(&got), Some(B), "{got:?}");
    assert!(sim.subscriptions(SHOP).is_empty());
    let after = gql_as(&sim, SHOP, TB, V, LIST, json!({})).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert!(!sim.uninstall_app(SHOP, B));
    assert!(
        rx.try_recv().is_err(),
        "exactly one app/uninstalled per uninstall"
    );
}

#[tokio::test]
async fn deliveries_are_signed_by_each_subscriptions_own_app() {
    let sim = start().await;
    let (hook, mut rx) = receiver().await;
    sim.add_subscription(SHOP, "ORDERS_CREATE", &hook, "JSON");
    sim.add_subscription_for(
        SHOP,
        B,
        SubscriptionFixture {
            topic: "ORDERS_CREATE".into(),
            address: hook.clone(),
            ..Default::default()
        },
    );
    let deliver = |body: Value| {
        let url = format!("{}/deliveries", sim.admin_url());
        async move {
            let r: Value = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["deliveries"].as_array().unwrap().clone()
        }
    };
    let sent = deliver(json!({"shop": SHOP, "topic": "orders/create"})).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let mut signers = vec![signer(&next(&mut rx).await), signer(&next(&mut rx).await)];
    signers.sort();
    assert_eq!(signers, [Some(A), Some(B)]);

    let sent = deliver(json!({"shop": SHOP, "topic": "orders/create", "clientId": B})).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["clientId"], B);
    assert_eq!(signer(&next(&mut rx).await), Some(B));
}

#[tokio::test]
async fn the_timeline_records_creates_moves_and_deletes_in_order() {
    let sim = start().await;
    let (x, y) = ("https://old.example/h", "https://new.example/h");
    let started = std::time::SystemTime::now();
    let a = create(&sim, TA, "ORDERS_CREATE", x).await;
    // A filter change is no change of topic or address: not recorded.
    let body = as_app(
        &sim,
        TA,
        UPDATE,
        json!({"id": a, "in": {"filter": "total_price:>10"}}),
    )
    .await;
    assert_eq!(user_errors(&body, "u"), [], "{body}");
    let body = as_app(&sim, TA, UPDATE, json!({"id": a, "in": {"callbackUrl": y}})).await;
    assert_eq!(user_errors(&body, "u"), [], "{body}");
    let b = create(&sim, TB, "ORDERS_CREATE", y).await;
    let body = as_app(&sim, TA, DELETE, json!({"id": a})).await;
    assert_eq!(user_errors(&body, "d"), [], "{body}");
    assert!(sim.delete_subscription(SHOP, &b));

    let tl = sim.timeline(SHOP);
    let seen: Vec<(&str, &str, &str, Change)> = tl
        .iter()
        .map(|e| (e.client_id.as_str(), e.id.as_str(), e.address.as_str(), e.change))
        .collect();
    assert_eq!(
        seen,
        [
            (A, a.as_str(), x, Change::Created),
            (A, a.as_str(), x, Change::Deleted),
            (A, a.as_str(), y, Change::Created),
            (B, b.as_str(), y, Change::Created),
            (A, a.as_str(), y, Change::Deleted),
            (B, b.as_str(), y, Change::Deleted),
        ]
    );
    assert!(tl.iter().all(|e| e.topic == "orders/create"));
    assert_eq!(tl[1].at, tl[2].at, "a move is one instant");
    assert!(tl.windows(2).all(|w| w[0].at <= w[1].at));

    // The analysis agrees with the entries' own times.
    let end = tl[5].at;
    let span = |from: usize, to: usize| tl[to].at.duration_since(tl[from].at).unwrap();
    assert_eq!(
        uncovered(&tl, "orders/create", x, started, end),
        end.duration_since(started).unwrap() - span(0, 1)
    );
    assert_eq!(uncovered(&tl, "orders/create", y, tl[2].at, end), Duration::ZERO);
    assert_eq!(overlap(&tl, "ORDERS_CREATE", y, A, B), span(3, 4));

    // The admin route serves the same entries, times to the microsecond.
    let r: Value = reqwest::Client::new()
        .get(format!("{}/shops/{SHOP}/timeline", sim.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = r.as_array().unwrap();
    assert_eq!(entries.len(), 6);
    let at = entries[0]["at"].as_str().unwrap();
    let fraction = at.rsplit('.').next().unwrap();
    assert!(fraction.len() == 7 && fraction.ends_with('Z'), "{at}");
    assert_eq!(entries[3]["clientId"], B);
    assert_eq!(entries[5]["change"], "deleted");
}

#[tokio::test]
async fn fixture_subscriptions_belong_to_the_app_they_name_and_later_apps_resolve_lazily() {
    // No app yet: a token and a subscription naming none are the app "".
    let f = Fixture {
        shops: vec![ShopFixture {
            domain: SHOP.into(),
            tokens: vec![TokenFixture {
                access_token: TA.into(),
                ..Default::default()
            }],
            subscriptions: vec![
                SubscriptionFixture {
                    topic: "orders/create".into(),
                    address: "https://oms.example/a".into(),
                    ..Default::default()
                },
                SubscriptionFixture {
                    topic: "orders/create".into(),
                    address: "https://oms.example/b".into(),
                    client_id: Some(B.into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let sim = sim::start(SimConfig {
        fixture: f,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let owners =
        |sim: &Sim| -> Vec<String> { sim.subscriptions(SHOP).into_iter().map(|s| s.client_id).collect() };
    assert_eq!(owners(&sim), ["", B]);
    assert_eq!(listed_ids(&sim, TA).await.len(), 1);
    let tl = sim.timeline(SHOP);
    assert_eq!(tl.len(), 2);
    assert!(tl.iter().all(|e| e.change == Change::Created));
    // Loading apps later makes the first one the default owner.
    sim.load(Fixture {
        apps: fixture().apps,
        ..Default::default()
    });
    assert_eq!(owners(&sim), [A, B]);
    assert_eq!(listed_ids(&sim, TA).await.len(), 1);
}
