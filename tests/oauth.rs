//! The operator's public endpoints end to end, against shopify-sim and the
//! real apiserver: OAuth install through the simulator's authorize page
//! (happy path, forged HMAC, unknown shop, expired and replayed state, stale
//! timestamp, previous secret during a rotation), and the `app/uninstalled`
//! webhook (bad signature refused, work stops, the Secret is kept, a new
//! token resumes). Every failure must leave the token Secret untouched, and
//! no token or secret may reach the operator's log.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use shopify_admin::ClientSecret;
use shopify_admin::hmac::{oauth_message, sign_hex, sign_webhook};
use shopify_operator::public::state;
use shopify_sim::{AppFixture, Fixture, ShopFixture, TokenFixture};
use support::{Answer, Consented, Env, browse, consent, http_addr, spec, wait_for, wait_logged};

const DOMAIN: &str = "oauth-shop.myshopify.com";
const OLD_TOKEN: &str = "shpat_oauth_before_install";
const PUBLIC_URL: &str = "https://operator.example";

/// A simulated shop with one non-expiring `read_orders` token.
fn shop(domain: &str, token: &str) -> ShopFixture {
    ShopFixture {
        domain: domain.into(),
        tokens: vec![TokenFixture {
            access_token: token.into(),
            scopes: vec!["read_orders".into()],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fixture(secret: &str, previous: Option<&str>) -> Fixture {
    Fixture {
        shops: vec![shop(DOMAIN, OLD_TOKEN)],
        app: Some(AppFixture {
            client_id: "client-oauth".into(),
            client_secret: secret.into(),
            previous_client_secret: previous.map(str::to_owned),
        }),
        apps: Vec::new(),
    }
}

async fn app_secret(env: &Env, secret: &str, previous: Option<&str>) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let secret = json!({"metadata": {"name": "app"}, "stringData": {"client-id": "client-oauth", "client-secret": secret}});
    if api.get_opt("app").await.unwrap().is_none() {
        api.create(&PostParams::default(), &serde_json::from_value(secret).unwrap())
            .await
            .unwrap();
    } else {
        api.patch("app", &PatchParams::default(), &Patch::Merge(&secret))
            .await
            .unwrap();
    }
    // stringData can add a key but not remove one: `data` does both.
    let previous = json!({"data": {"previous-client-secret":
        previous.map(|p| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, p))}});
    api.patch("app", &PatchParams::default(), &Patch::Merge(&previous))
        .await
        .unwrap();
}

async fn setup(prefix: &str) -> (Env, String) {
    let mut env = Env::new(prefix, fixture("secret-one", None)).await;
    env.token_secret("tok", OLD_TOKEN).await;
    app_secret(&env, "secret-one", None).await;
    let mut s = spec(
        DOMAIN,
        "tok",
        json!({"host": "oms.popsockets.com"}),
        &["orders/create"],
    );
    s["app"] = json!({"secretRef": {"name": "app"}});
    env.create_shop("shop", s).await;
    env.operator_args.push(("PUBLIC_URL".into(), PUBLIC_URL.into()));
    env.start_operator("5m");
    let addr = http_addr(env.operator.as_ref().unwrap()).await;
    env.wait_condition("shop", "Ready", "True", None).await;
    (env, format!("http://{addr}"))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(url: &str) -> (u16, Option<String>, String) {
    let resp = http().get(url).send().await.expect("request");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    (status, location, resp.text().await.unwrap_or_default())
}

/// Installs through the simulator; also checks the redirect Shopify got.
async fn authorize(base: &str) -> Consented {
    let c = consent(base, &format!("/oauth/install?shop={DOMAIN}"), PUBLIC_URL).await;
    let to_shopify = &c.authorize;
    assert!(to_shopify.contains("/admin/oauth/authorize?"), "{to_shopify}");
    assert!(to_shopify.contains("client_id=client-oauth"), "{to_shopify}");
    assert!(
        to_shopify.contains("redirect_uri=https%3A%2F%2Foperator.example%2Foauth%2Fcallback"),
        "{to_shopify}"
    );
    assert!(to_shopify.contains("scope=read_orders"), "{to_shopify}");
    assert!(
        c.callback.starts_with(&format!("{base}/oauth/callback?")),
        "{}",
        c.callback
    );
    c
}

/// The callback as the browser that started the install sends it.
async fn back(c: &Consented) -> (u16, String) {
    let a = browse(&c.callback, Some(&c.cookie)).await;
    (a.status, a.body)
}

/// A forged callback with the state cookie an attacker's browser would hold.
async fn forged(url: &str, state: &str) -> Answer {
    browse(url, Some(&format!("shopify_operator_state={state}"))).await
}

/// A callback signed with `secret` (as Shopify would) with our own values.
fn forged_callback(base: &str, secret: &str, state: &str, timestamp: u64) -> String {
    let ts = timestamp.to_string();
    let pairs = [
        ("code", "0907a61c0c8d55e99db179b68161bc00"),
        ("shop", DOMAIN),
        ("state", state),
        ("timestamp", ts.as_str()),
    ];
    let hmac = sign_hex(oauth_message(&pairs).as_bytes(), &ClientSecret::from(secret));
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .append_pair("hmac", &hmac)
        .finish();
    format!("{base}/oauth/callback?{query}")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn token_secret(env: &Env) -> Secret {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    api.get("tok").await.unwrap()
}

fn key(secret: &Secret, k: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(k)
        .map(|v| String::from_utf8(v.0.clone()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_install_stores_a_token_and_refuses_everything_forged() {
    let (env, base) = setup("oauth").await;
    let before = token_secret(&env).await;
    let rv = before.metadata.resource_version.clone();

    // Refusals first: none may write anything.
    let consented = authorize(&base).await;
    let callback = consented.callback.clone();
    let tampered = {
        let (head, hmac) = callback.rsplit_once("hmac=").unwrap();
        let hmac: String = hmac.chars().take(64).collect();
        let flipped = if hmac.starts_with('0') { "1" } else { "0" };
        format!("{head}hmac={flipped}{}", &hmac[1..])
    };
    assert_eq!(
        browse(&tampered, Some(&consented.cookie)).await.status,
        401,
        "a forged hmac"
    );
    // The genuine callback from another browser (no state cookie, or
    // another install's): refused, and its state stays usable.
    let a = browse(&callback, None).await;
    assert_eq!(a.status, 403, "a callback without the state cookie: {}", a.body);
    let other = authorize(&base).await;
    let a = browse(&callback, Some(&other.cookie)).await;
    assert_eq!(a.status, 403, "another install's cookie: {}", a.body);
    // The answer is generic; why is in the log, under its request id.
    assert!(a.is("InvalidState"), "{}", a.body);
    wait_logged(&env.log_path(), &a, "browser").await;
    assert_eq!(
        get(&format!("{base}/oauth/install?shop=unknown-shop.myshopify.com"))
            .await
            .0,
        404,
        "a shop without a ShopifyShop"
    );
    assert_eq!(
        get(&format!("{base}/oauth/install?shop=evil.example.com"))
            .await
            .0,
        400,
        "not a myshopify domain"
    );
    let expired = state::issue(DOMAIN, unix_now() - 5, &ClientSecret::from("secret-one"));
    let a = forged(
        &forged_callback(&base, "secret-one", &expired, unix_now()),
        &expired,
    )
    .await;
    assert_eq!(a.status, 403, "an expired state: {}", a.body);
    assert!(a.is("InvalidState"), "{}", a.body);
    wait_logged(&env.log_path(), &a, "expired").await;
    let fresh_state = state::issue(DOMAIN, unix_now() + 600, &ClientSecret::from("secret-one"));
    let a = forged(
        &forged_callback(&base, "secret-one", &fresh_state, unix_now() - 3600),
        &fresh_state,
    )
    .await;
    assert_eq!(a.status, 403, "a stale timestamp: {}", a.body);
    assert!(a.is("StaleCallback"), "{}", a.body);
    let foreign = state::issue(DOMAIN, unix_now() + 600, &ClientSecret::from("not-the-app"));
    assert_eq!(
        forged(
            &forged_callback(&base, "secret-one", &foreign, unix_now()),
            &foreign
        )
        .await
        .status,
        403,
        "a state not signed by the app"
    );
    assert_eq!(
        token_secret(&env).await.metadata.resource_version,
        rv,
        "a refused callback wrote the Secret"
    );

    // The real callback: an expiring token lands in the Secret.
    let (status, body) = back(&consented).await;
    assert_eq!(status, 200, "{body}");
    let after = token_secret(&env).await;
    let new_token = key(&after, "access-token").unwrap();
    assert_ne!(new_token, OLD_TOKEN);
    let refresh = key(&after, "refresh-token").expect("an expiring grant has a refresh token");
    assert!(key(&after, "expires-at").is_some());
    // Replaying it is refused before the (spent) code is tried.
    let (status, body) = back(&consented).await;
    assert_eq!(status, 403, "a replayed state: {body}");
    assert_eq!(key(&token_secret(&env).await, "access-token").unwrap(), new_token);
    // The operator picks the new token up from the Secret.
    wait_for(
        "tokenExpiresAt in the status",
        Duration::from_secs(30),
        || async { env.shops().get("shop").await.ok()?.status?.token_expires_at },
    )
    .await;
    env.wait_condition("shop", "Ready", "True", None).await;

    let log = env.operator_log();
    for secret in [OLD_TOKEN, new_token.as_str(), refresh.as_str(), "secret-one"] {
        assert!(!log.contains(secret), "a secret is in the operator log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_accepts_the_previous_secret_during_a_rotation() {
    let (env, base) = setup("oauth-rotate").await;
    // The app got a new secret; Shopify still signs with the old one until
    // it is revoked, and accepts both at the token endpoint.
    env.sim.load(fixture("secret-two", Some("secret-one")));
    app_secret(&env, "secret-two", Some("secret-one")).await;
    let (status, body) = back(&authorize(&base).await).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(key(&token_secret(&env).await, "access-token").unwrap(), OLD_TOKEN);
    // Once the old secret is gone from the app Secret, its signature fails.
    app_secret(&env, "secret-two", None).await;
    assert_eq!(back(&authorize(&base).await).await.0, 401);
}

/// Posts an `app/uninstalled` delivery signed with `secret`.
async fn deliver_uninstalled(base: &str, secret: &str) -> u16 {
    let body = json!({"id": 1, "name": "OAuth shop", "domain": DOMAIN}).to_string();
    let hmac = sign_webhook(body.as_bytes(), &ClientSecret::from(secret));
    http()
        .post(format!("{base}/shopify/webhooks/app_uninstalled"))
        .header("X-Shopify-Topic", "app/uninstalled")
        .header("X-Shopify-Shop-Domain", DOMAIN)
        .header("X-Shopify-Hmac-Sha256", hmac)
        .header("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_uninstalled_stops_work_keeps_the_secret_and_a_new_token_resumes() {
    let (env, base) = setup("uninstall").await;
    assert_eq!(deliver_uninstalled(&base, "forged").await, 401);
    assert!(
        env.shops()
            .get("shop")
            .await
            .unwrap()
            .status
            .unwrap()
            .app_uninstalled
            .is_none(),
        "a forged delivery was recorded"
    );
    // Shopify revokes the token and then delivers app/uninstalled.
    env.sim.revoke_token(DOMAIN);
    assert_eq!(deliver_uninstalled(&base, "secret-one").await, 200);
    env.wait_condition("shop", "TokenValid", "False", Some("AppUninstalled"))
        .await;
    env.wait_condition("shop", "Ready", "False", Some("AppUninstalled"))
        .await;
    wait_for("AppUninstalled event", Duration::from_secs(20), || async {
        env.events("shop", "AppUninstalled").await.into_iter().next()
    })
    .await;
    // A repeated delivery is acknowledged and changes nothing.
    let rv = env.shops().get("shop").await.unwrap().metadata.resource_version;
    assert_eq!(deliver_uninstalled(&base, "secret-one").await, 200);
    assert_eq!(
        env.shops().get("shop").await.unwrap().metadata.resource_version,
        rv
    );
    // The Secret is kept as it was.
    assert_eq!(key(&token_secret(&env).await, "access-token").unwrap(), OLD_TOKEN);

    // No Shopify calls while uninstalled, even when something asks for a pass.
    let before = env.sim.counters(DOMAIN).requests;
    env.shops()
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"example.com/poke": "1"}}})),
        )
        .await
        .unwrap();
    let metrics_url = format!("{base}/metrics");
    let reconciles = || async {
        let text = reqwest::get(&metrics_url).await.ok()?.text().await.ok()?;
        text.lines()
            .filter(|l| l.starts_with("shopify_operator_reconciles_total"))
            .map(|l| l.rsplit(' ').next().unwrap_or("0").parse::<f64>().unwrap_or(0.0))
            .reduce(|a, b| a + b)
    };
    let seen = reconciles().await.unwrap_or(0.0);
    env.shops()
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"example.com/poke": "2"}}})),
        )
        .await
        .unwrap();
    wait_for("another reconcile", Duration::from_secs(20), || async {
        (reconciles().await? > seen).then_some(())
    })
    .await;
    assert_eq!(
        env.sim.counters(DOMAIN).requests,
        before,
        "an uninstalled shop was called"
    );

    // A reinstall (here: a new token put in the Secret) ends it.
    env.sim.load(Fixture {
        shops: vec![shop(DOMAIN, "shpat_after_reinstall")],
        app: None,
        apps: Vec::new(),
    });
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let mut s = token_secret(&env).await;
    s.data = None;
    s.string_data = Some([("access-token".to_string(), "shpat_after_reinstall".to_string())].into());
    api.replace("tok", &PostParams::default(), &s).await.unwrap();
    env.wait_condition("shop", "Ready", "True", None).await;
    wait_for("appUninstalled cleared", Duration::from_secs(20), || async {
        let st = env.shops().get("shop").await.ok()?.status?;
        st.app_uninstalled.is_none().then_some(())
    })
    .await;
    assert!(!env.events("shop", "AppReinstalled").await.is_empty());
    let log = env.operator_log();
    for secret in [OLD_TOKEN, "shpat_after_reinstall", "secret-one"] {
        assert!(!log.contains(secret), "a secret is in the operator log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_shop_without_a_shopifyshop_installs_with_the_default_app() {
    const NEW_SHOP: &str = "brand-new.myshopify.com";
    let mut f = fixture("secret-one", None);
    f.shops.push(shop(NEW_SHOP, "shpat_brand_new_fixture"));
    let mut env = Env::new("oauth-default", f).await;
    app_secret(&env, "secret-one", None).await;
    env.operator_args.push(("PUBLIC_URL".into(), PUBLIC_URL.into()));
    env.operator_args
        .push(("ALLOWED_SHOPS".into(), format!("{NEW_SHOP},{DOMAIN}")));
    env.operator_args
        .push(("DEFAULT_APP_SECRET".into(), format!("{}/app", env.ns)));
    env.start_operator("5m");
    let base = format!("http://{}", http_addr(env.operator.as_ref().unwrap()).await);
    // Outside the allow-list: refused before anything else.
    assert_eq!(
        get(&format!("{base}/oauth/install?shop=elsewhere.myshopify.com"))
            .await
            .0,
        403
    );
    let c = consent(&base, &format!("/oauth/install?shop={NEW_SHOP}"), PUBLIC_URL).await;
    let (status, body) = back(&c).await;
    assert_eq!(status, 200, "{body}");
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let created = api.get("brand-new-shopify-token").await.unwrap();
    assert_eq!(
        created.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
        "shopify-operator"
    );
    assert!(key(&created, "access-token").unwrap().starts_with("shpat_"));
    assert!(key(&created, "refresh-token").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_subscribes_its_own_uninstall_endpoint_when_asked() {
    const PLAIN: &str = "no-app-shop.myshopify.com";
    let mut f = fixture("secret-one", None);
    f.shops.push(shop(PLAIN, "shpat_no_app_shop"));
    let mut env = Env::new("self-subscribe", f).await;
    env.token_secret("tok", OLD_TOKEN).await;
    env.token_secret("plain-tok", "shpat_no_app_shop").await;
    app_secret(&env, "secret-one", None).await;
    let mut s = spec(
        DOMAIN,
        "tok",
        json!({"host": "oms.popsockets.com"}),
        &["orders/create", "app/uninstalled"],
    );
    s["app"] = json!({"secretRef": {"name": "app"}});
    env.create_shop("shop", s).await;
    env.create_shop(
        "plain",
        spec(
            PLAIN,
            "plain-tok",
            json!({"host": "oms.popsockets.com"}),
            &["orders/create"],
        ),
    )
    .await;
    env.operator_args.push(("PUBLIC_URL".into(), PUBLIC_URL.into()));
    env.operator_args
        .push(("SUBSCRIBE_APP_UNINSTALLED".into(), "true".into()));
    env.start_operator("2s");
    env.wait_condition("shop", "Ready", "True", None).await;
    env.wait_condition("plain", "Ready", "True", None).await;
    let mut addresses: Vec<String> = env
        .sim
        .subscriptions(DOMAIN)
        .into_iter()
        .map(|s| s.address)
        .collect();
    addresses.sort();
    assert_eq!(
        addresses,
        [
            "https://oms.popsockets.com/webhooks/app_uninstalled",
            "https://oms.popsockets.com/webhooks/orders_create",
            "https://operator.example/shopify/webhooks/app_uninstalled",
        ],
        "the OMS keeps its app/uninstalled; the operator's is beside it"
    );
    let status = env.shops().get("shop").await.unwrap().status.unwrap();
    assert_eq!(status.webhooks_in_sync.as_deref(), Some("3/3"));
    // No app credentials: nothing could verify a delivery, so no extra.
    assert_eq!(env.sim.subscriptions(PLAIN).len(), 1);
    // Steady: the resyncs that follow change nothing.
    let mutations = env.sim.counters(DOMAIN).mutations;
    let lists = env.sim.counters(DOMAIN).operation("webhookSubscriptions");
    wait_for("two more resyncs", Duration::from_secs(20), || async {
        (env.sim.counters(DOMAIN).operation("webhookSubscriptions") >= lists + 2).then_some(())
    })
    .await;
    assert_eq!(env.sim.counters(DOMAIN).mutations, mutations);
}
