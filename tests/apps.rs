//! ShopifyApp end to end, against shopify-sim and the real apiserver: a
//! staging and a production app in one operator (two replicas), each
//! installing its own allowed shop through the simulator's authorize page
//! into a ShopifyShop made from its template; a shop outside an app's list
//! refused; defaults inherited and overridden; a secret rotation seen and
//! finished; a callback without the state cookie and one replayed on the
//! other replica refused with nothing written.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use shopify_admin::ClientSecret;
use shopify_admin::hmac::sign_webhook;
use shopify_operator::crd::ShopifyApp;
use shopify_sim::{AppFixture, Fixture, ShopFixture};
use support::{
    Consented, Env, browse, consent, http_addr, job_template, shop_fixture, wait_for, wait_logged,
};

const PUBLIC_URL: &str = "https://operator.example";
const STAGING_SHOP: &str = "ps-staging.myshopify.com";
const PROD_SHOP: &str = "ps-prod.myshopify.com";
const EU_SHOP: &str = "ps-prod-eu.myshopify.com";
const OUTSIDER: &str = "outsider.myshopify.com";
const EU_TOKEN: &str = "shpat_prod_eu_by_hand";

fn bare(domain: &str) -> ShopFixture {
    ShopFixture {
        domain: domain.into(),
        ..Default::default()
    }
}

fn fixture() -> Fixture {
    Fixture {
        shops: vec![
            bare(STAGING_SHOP),
            bare(PROD_SHOP),
            bare(OUTSIDER),
            shop_fixture(EU_SHOP, EU_TOKEN, &["read_orders"], vec![]),
        ],
        app: None,
        apps: vec![
            AppFixture {
                client_id: "staging-id".into(),
                client_secret: "staging-secret".into(),
                previous_client_secret: None,
            },
            // Mid-rotation: Shopify signs with the old secret until it is
            // revoked, and accepts both at the token endpoint.
            AppFixture {
                client_id: "prod-id".into(),
                client_secret: "prod-new".into(),
                previous_client_secret: Some("prod-old".into()),
            },
        ],
    }
}

async fn app_status(env: &Env, name: &str) -> shopify_operator::crd::ShopifyAppStatus {
    let api: Api<ShopifyApp> = Api::namespaced(env.client.clone(), &env.ns);
    api.get(name).await.unwrap().status.unwrap_or_default()
}

/// Waits for the app's status to satisfy `check`.
async fn wait_app<F>(env: &Env, name: &str, what: &str, check: F) -> shopify_operator::crd::ShopifyAppStatus
where
    F: Fn(&shopify_operator::crd::ShopifyAppStatus) -> bool,
{
    let check = &check;
    wait_for(what, Duration::from_secs(60), || async move {
        let s = app_status(env, name).await;
        check(&s).then_some(s)
    })
    .await
}

async fn install(env: &Env, base: &str, app: &str, shop: &str) -> Consented {
    consent(
        base,
        &format!("/oauth/{}/{app}/install?shop={shop}", env.ns),
        PUBLIC_URL,
    )
    .await
}

async fn secret_version(env: &Env, name: &str) -> Option<String> {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    api.get_opt(name)
        .await
        .unwrap()
        .and_then(|s| s.metadata.resource_version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_install_their_own_shops_with_defaults_and_rotation() {
    let mut env = Env::new("apps", fixture()).await;
    env.app_credentials("staging-app", "staging-id", "staging-secret", None)
        .await;
    env.app_credentials("prod-app", "prod-id", "prod-new", Some("prod-old"))
        .await;
    let template =
        |team: &str| json!({"createShops": true, "shopTemplate": {"metadata": {"labels": {"team": team}}}});
    env.create_app(
        "staging",
        json!({
            "credentialsSecretRef": {"name": "staging-app"},
            "allowedShops": [STAGING_SHOP],
            "scopes": ["read_orders"],
            "install": template("oms-staging"),
            "defaults": {"webhooks": {"endpoint": {"host": "oms-staging.popsockets.com"}, "topics": ["orders/create"]}},
        }),
    )
    .await;
    env.create_app(
        "production",
        json!({
            "credentialsSecretRef": {"name": "prod-app"},
            "allowedShops": ["ps-prod*.myshopify.com"],
            "scopes": ["read_orders"],
            "install": template("oms"),
            "defaults": {
                "adminApiVersion": "2025-10",
                "webhooks": {"endpoint": {"host": "oms.popsockets.com"}, "topics": ["orders/create", "orders/updated"]},
                "sync": [
                    {"name": "orders", "schedule": "*/15 * * * *", "jobTemplate": job_template()},
                    {"name": "products", "schedule": "0 * * * *", "jobTemplate": job_template()},
                ],
            },
        }),
    )
    .await;
    let ns = env.ns.clone();
    let replica = |name: &str| {
        vec![
            ("LEADER_ELECT".to_string(), "true".to_string()),
            ("POD_NAMESPACE".to_string(), ns.clone()),
            ("POD_NAME".to_string(), name.to_string()),
        ]
    };
    env.operator_args.push(("PUBLIC_URL".into(), PUBLIC_URL.into()));
    env.operator_args.extend(replica("a"));
    env.start_operator("5m");
    let other = env.spawn_operator("b", &replica("b"));
    let base = format!("http://{}", http_addr(env.operator.as_ref().unwrap()).await);
    let base_b = format!("http://{}", http_addr(&other).await);

    // Each app's allow-list: the other app's shop and an outsider are
    // refused before anything is sent to Shopify.
    for (app, shop) in [
        ("staging", PROD_SHOP),
        ("production", OUTSIDER),
        ("production", STAGING_SHOP),
    ] {
        let a = browse(
            &format!("{base}/oauth/{}/{app}/install?shop={shop}", env.ns),
            None,
        )
        .await;
        assert_eq!(a.status, 403, "{app} installing {shop}: {}", a.body);
        assert!(a.is("ShopNotAllowed"), "{}", a.body);
        wait_logged(&env.log_path(), &a, "allowedShops").await;
    }

    // Staging installs its shop: the token Secret and the ShopifyShop
    // from the template, Ready with the inherited webhooks.
    let c = install(&env, &base, "staging", STAGING_SHOP).await;
    assert!(c.authorize.contains("client_id=staging-id"), "{}", c.authorize);
    assert!(
        c.authorize.contains(&format!(
            "redirect_uri=https%3A%2F%2Foperator.example%2Foauth%2F{}%2Fstaging%2Fcallback",
            env.ns
        )),
        "{}",
        c.authorize
    );
    let a = browse(&c.callback, Some(&c.cookie)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let staging = env.shops().get("ps-staging").await.unwrap();
    assert_eq!(staging.spec.app_ref.as_ref().unwrap().name, "staging");
    assert_eq!(staging.metadata.labels.as_ref().unwrap()["team"], "oms-staging");
    assert!(staging.spec.webhooks.is_none(), "inherited, never written");
    env.wait_condition("ps-staging", "Ready", "True", None).await;
    let staging = env.shops().get("ps-staging").await.unwrap();
    assert_eq!(
        staging.status.as_ref().unwrap().webhook_host.as_deref(),
        Some("oms-staging.popsockets.com")
    );
    assert_eq!(env.sim.subscriptions(STAGING_SHOP).len(), 1);

    // Production: the genuine callback without the browser's cookie is
    // refused and writes nothing.
    let c = install(&env, &base, "production", PROD_SHOP).await;
    let a = browse(&c.callback, None).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(env.shops().get_opt("ps-prod").await.unwrap().is_none());
    assert!(secret_version(&env, "ps-prod-shopify-token").await.is_none());
    // With it, the install goes through; Shopify signed with the previous
    // secret, and the app's status says so.
    let a = browse(&c.callback, Some(&c.cookie)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let rv = secret_version(&env, "ps-prod-shopify-token").await;
    assert!(rv.is_some());
    // Replayed on the other replica: refused, nothing written.
    let a = browse(&c.callback.replacen(&base, &base_b, 1), Some(&c.cookie)).await;
    assert_eq!(a.status, 403, "a replay on replica b: {}", a.body);
    assert!(a.is("InvalidState"), "{}", a.body);
    wait_logged(&other.log, &a, "already used").await;
    assert_eq!(secret_version(&env, "ps-prod-shopify-token").await, rv);
    env.wait_condition("ps-prod", "Ready", "True", None).await;
    let status = wait_app(&env, "production", "the production app counts its install", |s| {
        s.installs == Some(1) && s.previous_secret_last_used.is_some() && s.client_id.is_some()
    })
    .await;
    assert_eq!(status.client_id.as_deref(), Some("prod-id"));
    assert_eq!(status.previous_secret_present, Some(true));

    // A shop made by hand overrides the endpoint (keeping the app's
    // topics) and one sync by name.
    env.token_secret("eu-token", EU_TOKEN).await;
    env.create_shop(
        "ps-prod-eu",
        json!({
            "domain": EU_SHOP,
            "appRef": {"name": "production"},
            "token": {"secretRef": {"name": "eu-token"}},
            "webhooks": {"endpoint": {"host": "eu.popsockets.com"}},
            "sync": [{"name": "orders", "schedule": "every tuesday", "jobTemplate": job_template()}],
        }),
    )
    .await;
    env.wait_condition("ps-prod-eu", "SyncHealthy", "False", Some("InvalidSchedule"))
        .await;
    let eu = wait_for("ps-prod-eu's webhooks", Duration::from_secs(60), || async {
        let s = env.shops().get("ps-prod-eu").await.ok()?.status?;
        (s.webhooks_in_sync.as_deref() == Some("2/2")).then_some(s)
    })
    .await;
    assert_eq!(eu.webhook_host.as_deref(), Some("eu.popsockets.com"));
    let names: Vec<&str> = eu.sync.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["orders", "products"],
        "the app's syncs, orders the shop's own"
    );
    let mut addresses: Vec<String> = env
        .sim
        .subscriptions(EU_SHOP)
        .into_iter()
        .map(|s| s.address)
        .collect();
    addresses.sort();
    assert_eq!(
        addresses,
        [
            "https://eu.popsockets.com/webhooks/orders_create",
            "https://eu.popsockets.com/webhooks/orders_updated"
        ]
    );
    let status = wait_app(&env, "production", "Ready 1 of 2 shops", |s| {
        s.shops_ready.as_deref() == Some("1/2")
    })
    .await;
    assert_eq!(status.shops, Some(2));
    wait_app(&env, "staging", "Ready 1 of 1 shops", |s| {
        s.shops_ready.as_deref() == Some("1/1")
    })
    .await;

    // An app default changes: its shops follow without a spec change.
    let apps: Api<ShopifyApp> = Api::namespaced(env.client.clone(), &env.ns);
    apps.patch(
        "staging",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"defaults": {"webhooks": {"endpoint": {"host": "oms-staging-2.popsockets.com"}}}}})),
    )
    .await
    .unwrap();
    wait_for(
        "ps-staging moves to the new default host",
        Duration::from_secs(60),
        || async {
            let subs = env.sim.subscriptions(STAGING_SHOP);
            (subs.len() == 1
                && subs[0]
                    .address
                    .starts_with("https://oms-staging-2.popsockets.com/"))
            .then_some(())
        },
    )
    .await;

    // Staging's shop is uninstalled: the app counts it.
    let body = json!({"id": 1, "domain": STAGING_SHOP}).to_string();
    let hmac = sign_webhook(body.as_bytes(), &ClientSecret::from("staging-secret"));
    let delivered = reqwest::Client::new()
        .post(format!("{base_b}/shopify/webhooks/app_uninstalled"))
        .header("X-Shopify-Topic", "app/uninstalled")
        .header("X-Shopify-Shop-Domain", STAGING_SHOP)
        .header("X-Shopify-Hmac-Sha256", hmac)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status().as_u16(), 200);
    env.wait_condition("ps-staging", "TokenValid", "False", Some("AppUninstalled"))
        .await;
    wait_app(&env, "staging", "the staging app counts the uninstall", |s| {
        s.uninstalls == Some(1) && s.shops_ready.as_deref() == Some("0/1")
    })
    .await;

    // The rotation is finished: without the previous secret, a callback
    // Shopify still signs with it is refused.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    secrets
        .patch(
            "prod-app",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"previous-client-secret": null}})),
        )
        .await
        .unwrap();
    wait_app(&env, "production", "the previous secret is gone", |s| {
        s.previous_secret_present == Some(false)
    })
    .await;
    let c = install(&env, &base, "production", PROD_SHOP).await;
    let a = browse(&c.callback, Some(&c.cookie)).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(secret_version(&env, "ps-prod-shopify-token").await, rv);

    // No credential in either operator's log.
    let log = format!(
        "{}{}",
        env.operator_log(),
        std::fs::read_to_string(&other.log).unwrap_or_default()
    );
    for secret in ["staging-secret", "prod-new", "prod-old", EU_TOKEN] {
        assert!(!log.contains(secret), "{secret} is in an operator log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_without_credentials_says_so_and_so_do_its_shops() {
    const DOMAIN: &str = "ps-broken.myshopify.com";
    const TOKEN: &str = "shpat_broken_app_shop";
    let f = Fixture {
        shops: vec![shop_fixture(DOMAIN, TOKEN, &["read_orders"], vec![])],
        ..Default::default()
    };
    let mut env = Env::new("apps-broken", f).await;
    env.create_app(
        "broken",
        json!({
            "credentialsSecretRef": {"name": "not-there"},
            "allowedShops": ["ps-*.myshopify.com"],
            "defaults": {"webhooks": {"endpoint": {"host": "oms.popsockets.com"}, "topics": ["orders/create"]}},
        }),
    )
    .await;
    env.create_app(
        "elsewhere",
        json!({"credentialsSecretRef": {"name": "not-there"}, "allowedShops": ["other-*.myshopify.com"]}),
    )
    .await;
    env.token_secret("tok", TOKEN).await;
    let shop = |app: &str| json!({"domain": DOMAIN, "appRef": {"name": app}, "token": {"secretRef": {"name": "tok"}}});
    env.create_shop("shop", shop("broken")).await;
    env.create_shop("outside", shop("elsewhere")).await;
    env.create_shop("orphan", shop("missing")).await;
    env.start_operator("5m");

    // The app: CredentialsValid False, Stalled (only a person fixes it).
    let status = wait_app(&env, "broken", "the app's credentials condition", |s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "CredentialsValid" && c.reason == "SecretNotFound")
    })
    .await;
    let stalled = status.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(stalled.status, "True");
    assert!(stalled.message.contains("not-there"), "{}", stalled.message);
    // Its shop says so too, and its webhooks still follow the spec (they
    // don't need the app's secret).
    env.wait_condition("shop", "TokenValid", "False", Some("AppCredentialsInvalid"))
        .await;
    env.wait_condition("shop", "Stalled", "True", Some("AppCredentialsInvalid"))
        .await;
    env.wait_condition("shop", "WebhooksSynced", "True", None).await;
    assert_eq!(env.sim.subscriptions(DOMAIN).len(), 1);
    // Outside its app's list, or without an app: nothing sent at all.
    env.wait_condition("outside", "Ready", "False", Some("ShopNotAllowed"))
        .await;
    env.wait_condition("orphan", "Ready", "False", Some("AppNotFound"))
        .await;
    let (_, _, message) = env.condition("outside", "Ready").await.unwrap();
    assert!(message.contains("elsewhere"), "{message}");

    // The Secret appears: the app and then its shop recover by themselves.
    env.app_credentials("not-there", "id", "hush", None).await;
    wait_app(&env, "broken", "the app Ready", |s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
    .await;
    env.wait_condition("shop", "Ready", "True", None).await;
}
