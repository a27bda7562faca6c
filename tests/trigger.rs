//! `shopify-operator webhook trigger` against a local HTTPS receiver (a
//! certificate from a throw-away CA) that verifies the HMAC like an OMS
//! does: signed with the app's secret it answers 200; another secret, 401
//! and the signature exit code; a certificate for another name, the TLS
//! code; and what cannot be sent is refused before any request. The
//! simulator's deliveries reach the same receiver.
//!
//! Network: loopback only.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use shopify_admin::ClientSecret;
use shopify_sim::{AppFixture, Fixture, ShopFixture, TokenFixture};
use support::{Env, spec};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const DOMAIN: &str = "trigger-shop.myshopify.com";
const APP_SECRET: &str = "trigger-app-secret-value";

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    verified: bool,
}

/// An HTTPS webhook endpoint on 127.0.0.1 with a certificate for `names`.
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    ca: PathBuf,
}

impl Receiver {
    async fn start(dir: &Path, names: &[&str], secret: &str) -> Receiver {
        std::fs::create_dir_all(dir).unwrap();
        let authority = testenv::Authority::new().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        authority.write_serving(dir, &names).unwrap();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("serving.crt"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(dir.join("serving.key")).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let secret = ClientSecret::new(secret.into());
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, log, secret) = (acceptor.clone(), log.clone(), secret.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (log, secret) = (log.clone(), secret.clone());
                        async move {
                            let headers: Vec<(String, String)> = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            let body = req.into_body().collect().await?.to_bytes().to_vec();
                            let hmac = headers
                                .iter()
                                .find(|(k, _)| k == "x-shopify-hmac-sha256")
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default();
                            let verified =
                                shopify_admin::verify_webhook(&body, &hmac, &secret, None).is_some();
                            log.lock().unwrap().push(Seen {
                                headers,
                                body,
                                verified,
                            });
                            let status = if verified { 200 } else { 401 };
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(if verified { "ok" } else { "bad hmac" })))
                                    .unwrap(),
                            )
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(tls);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            seen,
            ca: dir.join("ca.crt"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Runs the command as a user would; returns (exit code, stdout, stderr).
fn trigger(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shopify-operator"))
        .args(["webhook", "trigger", "--namespace", &env.ns])
        .args(args)
        .env("KUBECONFIG", env.cp.admin_kubeconfig())
        .output()
        .expect("the command runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        !stdout.contains(APP_SECRET) && !stderr.contains(APP_SECRET),
        "the app secret was printed"
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// `trigger` of shop `shop`'s orders/create to `receiver` (`--address`),
/// trusting the receiver's CA.
fn trigger_at(env: &Env, receiver: &Receiver) -> (i32, String, String) {
    let url = receiver.url("/webhooks/orders_create");
    let ca = receiver.ca.display().to_string();
    let args = [
        "--shop",
        "shop",
        "--topic",
        "orders/create",
        "--address",
        &url,
        "--ca-file",
        &ca,
    ];
    trigger(env, &args)
}

/// The shop as the operator would have left it: subscriptions for
/// orders/create and products/update at `address` (written to status by
/// hand, since the operator never points a subscription at localhost).
async fn shop_with_status(env: &Env, name: &str, app: bool, address: &str) {
    let mut s = spec(
        DOMAIN,
        "tok",
        json!({"host": "oms.popsockets.com"}),
        &["orders/create"],
    );
    if app {
        s["app"] = json!({"secretRef": {"name": "app"}});
    }
    env.create_shop(name, s).await;
    let status = json!({"status": {"webhooks": [
        {"topic": "orders/create", "address": address, "state": "InSync"},
        {"topic": "products/update", "address": address.replace("orders_create", "products_update"), "state": "InSync"},
    ]}});
    env.shops()
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_signs_like_shopify_and_tells_failures_apart() {
    let env = Env::new("trigger", Fixture::default()).await;
    env.secrets.lock().unwrap().push(APP_SECRET.into());
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let app: Secret = serde_json::from_value(json!({"metadata": {"name": "app"},
        "stringData": {"client-id": "trigger-app", "client-secret": APP_SECRET}}))
    .unwrap();
    secrets.create(&PostParams::default(), &app).await.unwrap();
    let dir = env.cp.dir.join(format!("trigger-{}", env.ns));

    let good = Receiver::start(&dir.join("good"), &["localhost"], APP_SECRET).await;
    let ca = good.ca.display().to_string();
    shop_with_status(&env, "shop", true, &good.url("/webhooks/orders_create")).await;

    // Signed with the app's secret: 200, exit 0, Shopify's headers.
    let (code, stdout, stderr) = trigger(
        &env,
        &["--shop", "shop", "--topic", "orders/create", "--ca-file", &ca],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("answered 200"), "{stdout}");
    let seen = good.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].verified);
    assert_eq!(header(&seen[0], "x-shopify-topic"), Some("orders/create"));
    assert_eq!(header(&seen[0], "x-shopify-shop-domain"), Some(DOMAIN));
    assert_eq!(header(&seen[0], "x-shopify-api-version"), Some("2025-07"));
    for h in [
        "x-shopify-webhook-id",
        "x-shopify-event-id",
        "x-shopify-triggered-at",
    ] {
        assert!(header(&seen[0], h).is_some_and(|v| !v.is_empty()), "{h}");
    }
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert!(body["line_items"].is_array(), "the orders/create sample");

    // An endpoint that verifies with another secret: 401, the signature code.
    let other = Receiver::start(&dir.join("other"), &["localhost"], "another-secret").await;
    let (code, _, stderr) = trigger_at(&env, &other);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("refused the signature"), "{stderr}");
    assert_eq!(other.seen().len(), 1);

    // A certificate for another name: the TLS code, nothing delivered.
    let wrong = Receiver::start(&dir.join("wrong"), &["oms.example.com"], APP_SECRET).await;
    let (code, _, stderr) = trigger_at(&env, &wrong);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("TLS"), "{stderr}");
    assert!(wrong.seen().is_empty());
    // ... and without the private CA the good endpoint is not trusted either.
    let (code, _, _) = trigger(&env, &["--shop", "shop", "--topic", "orders/create"]);
    assert_eq!(code, 5);

    // Nobody listening: not reachable.
    // Leased and never listened on: nobody can be there.
    let closed = support::lease_port();
    let url = format!("https://localhost:{}/webhooks/orders_create", closed.port());
    let (code, _, stderr) = trigger(
        &env,
        &["--shop", "shop", "--topic", "orders/create", "--address", &url],
    );
    assert_eq!(code, 4, "{stderr}");

    // Refused before any request: an unknown topic, a topic without a
    // subscription, a shop without spec.app, a shop that does not exist.
    let before = good.seen().len();
    for (args, says) in [
        (
            vec!["--shop", "shop", "--topic", "orders/exploded"],
            "not a Shopify webhook topic",
        ),
        (
            vec!["--shop", "shop", "--topic", "orders/cancelled"],
            "no subscription for orders/cancelled",
        ),
        (vec!["--shop", "missing", "--topic", "orders/create"], "not found"),
    ] {
        let mut args = args;
        args.extend(["--ca-file", &ca]);
        let (code, _, stderr) = trigger(&env, &args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(says) && stderr.contains("nothing was sent"),
            "{stderr}"
        );
    }
    shop_with_status(&env, "no-app", false, &good.url("/webhooks/orders_create")).await;
    let (code, _, stderr) = trigger(
        &env,
        &["--shop", "no-app", "--topic", "orders/create", "--ca-file", &ca],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no spec.app"), "{stderr}");
    assert_eq!(good.seen().len(), before, "a refused trigger sent a request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_delivers_signed_webhooks_to_every_subscription_of_a_topic() {
    let env = Env::new("sim-deliver", Fixture::default()).await;
    let dir = env.cp.dir.join(format!("sim-deliver-{}", env.ns));
    let receiver = Receiver::start(&dir, &["localhost"], APP_SECRET).await;
    let sim = shopify_sim::start(shopify_sim::SimConfig {
        ca_file: Some(receiver.ca.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    sim.load(Fixture {
        shops: vec![ShopFixture {
            domain: DOMAIN.into(),
            tokens: vec![TokenFixture {
                access_token: "shpat_deliver".into(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        app: Some(AppFixture {
            client_id: "trigger-app".into(),
            client_secret: APP_SECRET.into(),
            ..Default::default()
        }),
        apps: Vec::new(),
    });
    sim.add_subscription(
        DOMAIN,
        "ORDERS_CREATE",
        &receiver.url("/webhooks/orders_create"),
        "JSON",
    );
    sim.add_subscription(
        DOMAIN,
        "ORDERS_CREATE",
        &receiver.url("/other/orders_create"),
        "JSON",
    );
    sim.add_subscription(
        DOMAIN,
        "PRODUCTS_UPDATE",
        &receiver.url("/webhooks/products_update"),
        "JSON",
    );

    // The admin call: one signed delivery per orders/create subscription.
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/deliveries", sim.admin_url()))
        .json(&json!({"shop": DOMAIN, "topic": "orders/create"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["deliveries"].as_array().map(Vec::len), Some(2), "{resp}");
    assert!(
        resp["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == 200),
        "{resp}"
    );
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert!(s.verified, "the simulator signs with the app's secret");
        assert_eq!(header(s, "x-shopify-topic"), Some("orders/create"));
        assert_eq!(header(s, "x-shopify-shop-domain"), Some(DOMAIN));
    }
    sim.shutdown().await;
}
