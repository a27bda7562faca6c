//! One simulator serving several apps (a staging and a production Partners
//! app): each app's consent redirect is signed with its own secret, a code
//! is exchanged only by the app it was issued to, and a refresh token is
//! refreshed only by its own app. Signatures are checked
//! with the client's verifier (`shopify_admin`), not the simulator's signer.

mod common;

use common::{OTHER, SHOP, TOKEN, authorize_url, token_request};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shopify_admin::{ClientSecret, SecretUsed, verify_oauth_query, verify_webhook};
use shopify_sim::{self as sim, AppFixture, Fixture, ShopFixture, Sim, SimConfig, TokenFixture};

const STAGING: &str = "staging-client-id";
const STAGING_SECRET: &str = "staging-secret-new";
const STAGING_OLD: &str = "staging-secret-old";
const PROD: &str = "prod-client-id";
const PROD_SECRET: &str = "prod-secret";
const REDIRECT: &str = "https://app.example/cb";

/// Staging is "the" app, mid-rotation; production is added by `apps`.
fn fixture() -> Fixture {
    let shop = |domain: &str| ShopFixture {
        domain: domain.into(),
        tokens: vec![TokenFixture {
            access_token: format!("{TOKEN}-{domain}"),
            scopes: vec!["read_orders".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    Fixture {
        shops: vec![shop(SHOP), shop(OTHER)],
        app: Some(AppFixture {
            client_id: STAGING.into(),
            client_secret: STAGING_SECRET.into(),
            previous_client_secret: Some(STAGING_OLD.into()),
        }),
        apps: vec![AppFixture {
            client_id: PROD.into(),
            client_secret: PROD_SECRET.into(),
            previous_client_secret: None,
        }],
    }
}

async fn start(allow_insecure_addresses: bool) -> Sim {
    sim::start(SimConfig {
        fixture: fixture(),
        allow_insecure_addresses,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Opens the consent page as `client_id`; the callback's raw query.
async fn consent(http: &reqwest::Client, sim: &Sim, client_id: &str) -> String {
    let r = http
        .get(authorize_url(sim, SHOP, client_id, REDIRECT))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{client_id}");
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    location.query().unwrap().to_string()
}

fn code_of(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code in the callback")
}

fn exchange(client_id: &str, secret: &str, code: &str) -> Value {
    json!({"client_id": client_id, "client_secret": secret, "code": code})
}

fn secret(s: &str) -> ClientSecret {
    ClientSecret::from(s)
}

#[test]
fn yaml_fixture_with_apps_parses_and_rejects_an_app_listed_twice() {
    let f = Fixture::from_yaml(
        r#"
app: {clientId: staging, clientSecret: hush_staging}
apps:
  - clientId: prod
    clientSecret: hush_prod
    previousClientSecret: hush_prod_old
shops: [{domain: a.myshopify.com}]
"#,
    )
    .unwrap();
    assert_eq!(f.app.as_ref().unwrap().client_id, "staging");
    assert_eq!(f.apps.len(), 1);
    assert_eq!(f.apps[0].client_id, "prod");
    assert_eq!(f.apps[0].client_secret, "hush_prod");
    assert_eq!(f.apps[0].previous_client_secret.as_deref(), Some("hush_prod_old"));
    let debug = format!("{f:?}");
    assert!(!debug.contains("hush"), "{debug}");
    assert!(debug.contains("prod") && debug.contains("staging"), "{debug}");

    // Without `apps`, the single-app format is what it always was.
    let single = Fixture::from_yaml("app: {clientId: x, clientSecret: y}").unwrap();
    assert!(single.apps.is_empty());

    let twice = "app: {clientId: x, clientSecret: a}\napps: [{clientId: x, clientSecret: b}]";
    assert!(Fixture::from_yaml(twice).unwrap_err().contains("twice"));
    let twice = "apps: [{clientId: x, clientSecret: a}, {clientId: x, clientSecret: b}]";
    assert!(Fixture::from_yaml(twice).unwrap_err().contains("twice"));
    assert!(Fixture::from_yaml("apps: [{clientId: '', clientSecret: a}]").is_err());
    assert!(Fixture::from_yaml("apps: [{clientId: x, clientSecret: a, scope: b}]").is_err());
}

#[tokio::test]
async fn each_apps_consent_redirect_is_signed_with_its_own_secret() {
    let sim = start(false).await;
    let http = no_redirects();

    let staging = consent(&http, &sim, STAGING).await;
    // Mid-rotation, staging signs with its oldest unrevoked secret.
    assert_eq!(
        verify_oauth_query(&staging, &secret(STAGING_SECRET), Some(&secret(STAGING_OLD))),
        Some(SecretUsed::Previous)
    );
    assert_eq!(verify_oauth_query(&staging, &secret(PROD_SECRET), None), None);

    let prod = consent(&http, &sim, PROD).await;
    assert_eq!(
        verify_oauth_query(&prod, &secret(PROD_SECRET), None),
        Some(SecretUsed::Current)
    );
    assert_eq!(
        verify_oauth_query(&prod, &secret(STAGING_SECRET), Some(&secret(STAGING_OLD))),
        None
    );

    for unknown in ["someone-else", ""] {
        let r = http
            .get(authorize_url(&sim, SHOP, unknown, REDIRECT))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{unknown:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error_description"], "The client_id is not valid");
    }
}

#[tokio::test]
async fn a_code_is_exchanged_only_by_the_app_it_was_issued_to() {
    let sim = start(false).await;
    let http = no_redirects();
    let staging_code = code_of(&consent(&http, &sim, STAGING).await);
    let prod_code = code_of(&consent(&http, &sim, PROD).await);

    // Bad client credentials are refused before the code is looked at.
    for (id, bad) in [
        (STAGING, PROD_SECRET),
        (PROD, STAGING_SECRET),
        ("someone-else", PROD_SECRET),
    ] {
        let (status, body) = token_request(&http, &sim, SHOP, exchange(id, bad, &prod_code), false).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{id}: {body}");
        assert_eq!(body["error"], "invalid_client");
    }

    // Valid credentials of the other app: the code is as good as unknown.
    let (status, body) = token_request(
        &http,
        &sim,
        SHOP,
        exchange(PROD, PROD_SECRET, &staging_code),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    let (status, body) = token_request(
        &http,
        &sim,
        SHOP,
        exchange(STAGING, STAGING_OLD, &prod_code),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");

    // The refused attempts did not use the codes up for their own apps.
    let (status, body) = token_request(
        &http,
        &sim,
        SHOP,
        exchange(STAGING, STAGING_OLD, &staging_code),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read_orders");
    let (status, body) =
        token_request(&http, &sim, SHOP, exchange(PROD, PROD_SECRET, &prod_code), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = token_request(&http, &sim, SHOP, exchange(PROD, PROD_SECRET, &prod_code), false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "codes are single use");
}

#[tokio::test]
async fn codes_issued_by_the_handle_and_admin_api_are_bound_like_consent_codes() {
    let sim = start(false).await;
    let http = reqwest::Client::new();
    let swap = |code: &str, id: &str, s: &str| token_request(&http, &sim, SHOP, exchange(id, s, code), false);

    let for_prod = sim.issue_code_for(SHOP, PROD, None).unwrap();
    assert_eq!(
        swap(&for_prod, STAGING, STAGING_SECRET).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(swap(&for_prod, PROD, PROD_SECRET).await.0, StatusCode::OK);

    // Without a client, a code belongs to the first app, as it did when
    // there was only one.
    let unbound = sim.issue_code(SHOP, None).unwrap();
    assert_eq!(swap(&unbound, PROD, PROD_SECRET).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(swap(&unbound, STAGING, STAGING_SECRET).await.0, StatusCode::OK);

    let issue = |body: Value| {
        let http = http.clone();
        let url = format!("{}/shops/{SHOP}/codes", sim.admin_url());
        async move {
            let r: Value = http
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["code"].as_str().expect("a code").to_string()
        }
    };
    let for_prod = issue(json!({"clientId": PROD, "scopes": ["read_orders"]})).await;
    assert_eq!(
        swap(&for_prod, STAGING, STAGING_SECRET).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, body) = swap(&for_prod, PROD, PROD_SECRET).await;
    assert_eq!(
        (status, body["scope"].clone()),
        (StatusCode::OK, json!("read_orders"))
    );
    let unbound = issue(json!({})).await;
    assert_eq!(swap(&unbound, PROD, PROD_SECRET).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(swap(&unbound, STAGING, STAGING_SECRET).await.0, StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_belong_to_their_app_so_only_it_refreshes_or_migrates() {
    let sim = start(false).await;
    let http = reqwest::Client::new();
    let code = sim.issue_code_for(SHOP, STAGING, None).unwrap();
    let mut params = exchange(STAGING, STAGING_SECRET, &code);
    params["expiring"] = json!(1);
    let (status, pair) = token_request(&http, &sim, SHOP, params, false).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let refresh = |id: &str, s: &str| {
        json!({"grant_type": "refresh_token", "refresh_token": pair["refresh_token"],
               "client_id": id, "client_secret": s})
    };
    let (status, body) = token_request(&http, &sim, SHOP, refresh(PROD, STAGING_SECRET), false).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client"))
    );
    // Another app's refresh token is answered like an unknown one.
    let (status, other_app) = token_request(&http, &sim, SHOP, refresh(PROD, PROD_SECRET), false).await;
    let mut unknown = refresh(PROD, PROD_SECRET);
    unknown["refresh_token"] = json!("shprt_never_issued");
    let (unknown_status, unknown_body) = token_request(&http, &sim, SHOP, unknown, false).await;
    assert_eq!((status, &other_app), (unknown_status, &unknown_body));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{other_app}");
    let (status, body) = token_request(&http, &sim, SHOP, refresh(STAGING, STAGING_SECRET), false).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The fixture's non-expiring token is the first app's: production
    // cannot migrate it, staging can.
    let migrate = |id: &str, s: &str| {
        json!({"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
               "subject_token": format!("{TOKEN}-{SHOP}"),
               "subject_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
               "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
               "expiring": 1, "client_id": id, "client_secret": s})
    };
    let (status, body) = token_request(&http, &sim, SHOP, migrate(PROD, PROD_SECRET), false).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_subject_token"))
    );
    let (status, body) = token_request(&http, &sim, SHOP, migrate(STAGING, STAGING_SECRET), false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn fixtures_loaded_later_add_apps_by_client_id_and_app_replaces_the_first() {
    let sim = start(false).await;
    let http = no_redirects();
    let yaml = "apps:\n  - {clientId: prod-client-id, clientSecret: prod-secret-2}\n  - {clientId: dev, clientSecret: dev-secret}\n";
    let r = http
        .post(format!("{}/fixture", sim.admin_url()))
        .header("Content-Type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let prod = consent(&http, &sim, PROD).await;
    assert!(verify_oauth_query(&prod, &secret("prod-secret-2"), None).is_some());
    assert!(verify_oauth_query(&prod, &secret(PROD_SECRET), None).is_none());
    let dev = consent(&http, &sim, "dev").await;
    assert!(verify_oauth_query(&dev, &secret("dev-secret"), None).is_some());
    // Staging, the first app, was left alone.
    let staging = consent(&http, &sim, STAGING).await;
    assert!(verify_oauth_query(&staging, &secret(STAGING_OLD), None).is_some());

    // `app` is "the" app: loading another one replaces staging only.
    sim.load(Fixture {
        app: Some(AppFixture {
            client_id: "staging-2".into(),
            client_secret: "staging-2-secret".into(),
            previous_client_secret: None,
        }),
        ..Default::default()
    });
    let r = http
        .get(authorize_url(&sim, SHOP, STAGING, REDIRECT))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    consent(&http, &sim, "staging-2").await;
    consent(&http, &sim, PROD).await;

    let secrets = sim.known_secrets();
    for s in ["staging-2-secret", "prod-secret-2", "dev-secret"] {
        assert!(secrets.iter().any(|k| k == s), "{s} not in known secrets");
    }
}

#[tokio::test]
async fn deliveries_are_signed_by_the_first_app() {
    use axum::http::HeaderMap;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let hmac = headers["x-shopify-hmac-sha256"]
                    .to_str()
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send((hmac, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let sim = start(true).await;
    sim.add_subscription(SHOP, "ORDERS_CREATE", &hook, "JSON");
    let resp: Value = reqwest::Client::new()
        .post(format!("{}/deliveries", sim.admin_url()))
        .json(&json!({"shop": SHOP, "topic": "orders/create"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["deliveries"][0]["status"], 200, "{resp}");
    let (hmac, body) = rx.try_recv().expect("the receiver got the delivery");
    assert_eq!(
        verify_webhook(&body, &hmac, &secret(STAGING_SECRET), Some(&secret(STAGING_OLD))),
        Some(SecretUsed::Previous)
    );
    assert_eq!(verify_webhook(&body, &hmac, &secret(PROD_SECRET), None), None);
}
