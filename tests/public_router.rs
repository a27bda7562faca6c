//! The public listener under random and hostile requests (issue #28).
//!
//! `public_router_fuzz` drives the router `run` serves (`public::router`)
//! in-process with a fixed-seed proptest run of 10,000 requests — path
//! segments with `..`, `%2f`, `%00`, `?`, unicode and over-long names;
//! queries with repeated keys and huge values; hostile cookies and
//! headers; and callbacks and deliveries signed with the right, a wrong or
//! no secret — against the real apiserver (its own identity, whose reads
//! the audit log records) and shopify-sim. For every request: no panic,
//! no 5xx, a fresh `x-request-id` in the answer and in the log, a body that
//! is one short public reason; and every apiserver request it caused (from
//! the audit log) is one of the shapes public traffic may cause — none at
//! all for a request refused as malformed.
//!
//! `the_listener_refuses_the_issues_probes_before_asking_the_apiserver`
//! sends the issue's probes and a forged-delivery flood over real HTTP to
//! an operator process.
//!
//! `PUBLIC_FUZZ_CASES` and `PUBLIC_FUZZ_SEED` (hex, 32 bytes) change the
//! run; the defaults are what CI runs.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use futures::StreamExt;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::{Client, Resource};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::json;
use shopify_admin::hmac::{oauth_message, sign_hex, sign_webhook};
use shopify_admin::{ClientConfig, ClientSecret, ShopifyClient};
use shopify_operator::crd::{ShopifyApp, ShopifyShop};
use shopify_operator::public::{self, Public, PublicConfig, state};
use shopify_sim::{AppFixture, Fixture, ShopFixture};
use support::{Env, shop_fixture, wait_for};
use testenv::AuditWrite;
use tower::ServiceExt;

/// Stands for the test's namespace in generated paths.
const NS: &str = "@ns";
const APP_ID: &str = "fuzz-app-id";
const APP_SECRET: &str = "fuzz-app-secret-01";
const FLAGS_ID: &str = "fuzz-flags-id";
const FLAGS_SECRET: &str = "fuzz-flags-secret-01";
const PUBLIC_URL: &str = "https://operator.example";
const UNINSTALLED: &str = "/shopify/webhooks/app_uninstalled";
/// Shops the simulator and the fixture know (and the allow-list admits,
/// but for the outsider).
const SHOPS: &[&str] = &[
    "ps-fuzz.myshopify.com",
    "ps-dotted.myshopify.com",
    "fuzz-flags.myshopify.com",
    "brand-new.myshopify.com",
    "outsider.myshopify.com",
];
/// Secrets the fixture's objects name (the only ones the router may read,
/// besides the `{shop}-shopify-token` an install creates).
const NAMED_SECRETS: &[&str] = &[
    "app-creds",
    "flags-app",
    "missing-secret",
    "tok-flags",
    "tok-dotted",
];
/// Every reason a public answer may give, with its status; 5xx are not
/// among them: the apiserver and the simulator are up.
const REASONS: &[(&str, u16)] = &[
    ("NotFound", 404),
    ("InvalidRequest", 400),
    ("ShopNotAllowed", 403),
    ("UnknownShop", 404),
    ("UnknownApp", 404),
    ("InvalidHmac", 401),
    ("InvalidState", 403),
    ("StaleCallback", 403),
    ("CodeRejected", 400),
    ("ShopCreateFailed", 409),
    ("PayloadTooLarge", 413),
];
/// What a 400 `InvalidRequest` may name.
const PARAMS: &[&str] = &[
    "query",
    "shop",
    "code",
    "hmac",
    "state",
    "timestamp",
    "X-Shopify-Shop-Domain",
    "X-Shopify-Hmac-Sha256",
    "X-Shopify-Topic",
];

// ---------------------------------------------------------------- cases

/// One generated request.
#[derive(Debug, Clone)]
enum Case {
    /// Anything: method, path, query, headers and body as generated.
    Raw(Raw),
    /// An OAuth callback signed (or not) as Shopify would sign it.
    Callback(Signed),
    /// An `app/uninstalled` delivery signed (or not) as Shopify would.
    Delivery(Delivery),
}

#[derive(Debug, Clone)]
struct Raw {
    scoped: bool,
    method: Method,
    path: String,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Signed {
    scoped: bool,
    /// `None`: `/oauth/callback`; else the ShopifyApp's name.
    app: Option<&'static str>,
    shop: &'static str,
    /// 0 the app's secret, 1 the flags' app's, 2 a wrong one, 3 unsigned.
    secret: u8,
    /// 0 a state issued for the shop, 1 expired, 2 signed by another key,
    /// 3 for another shop, 4 state-shaped but random.
    state: u8,
    /// 0 the matching cookie, 1 none, 2 another state's, 3 two cookies.
    cookie: u8,
    /// Seconds from now of `timestamp`.
    timestamp: i64,
    /// A code the simulator issued (else a random one).
    real_code: bool,
    extra: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Delivery {
    scoped: bool,
    shop: &'static str,
    /// 0 the app's secret, 1 the flags' app's, 2 a wrong one.
    secret: u8,
    topic: &'static str,
    /// 0 `X-Shopify-*`, 1 `shopify-*`, 2 both alike, 3 both, different.
    names: u8,
    body: Vec<u8>,
}

const HOSTILE_SEGMENTS: &[&str] = &[
    "..",
    ".",
    "..%2f..%2fkube-system",
    "..%2F..%2Fkube-system",
    "x%2fstatus",
    "x%2Fstatus",
    "%2e%2e",
    "%2E%2E%2F",
    "%00",
    "a%00b",
    "%2f",
    "%ff",
    "%c3%a9",
    "%",
    "%zz",
    "%%",
    "A",
    "-a",
    "a-",
    "a..b",
    "a_b",
    "?",
    "x?y=1",
    "%3F",
    "%23",
    "a.b.c",
    "a%20b",
    "%e2%80%ae",
    "~",
    "a;b",
    "%3Cscript%3E",
    "%0d%0a",
    "*",
    "%2e",
];

/// Text percent-encoded the way a client would put it in a URL.
fn encoded(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), len)
        .prop_map(|c| form_urlencoded::byte_serialize(c.into_iter().collect::<String>().as_bytes()).collect())
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(vec![NS, "kube-system", "default", "creator", "a.b", "nocreds", "missing", "x"])
            .prop_map(String::from),
        2 => "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
        3 => proptest::sample::select(HOSTILE_SEGMENTS.to_vec()).prop_map(String::from),
        2 => encoded(0..24),
        1 => (60usize..400).prop_map(|n| "a".repeat(n)),
    ]
}

/// Mostly a namespace the router could be asked about (the test's, one
/// it may not read, any DNS label), else any segment.
fn namespace_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => proptest::sample::select(vec![NS, NS, NS, "kube-system", "default"]).prop_map(String::from),
        1 => "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?",
        3 => segment(),
    ]
}

/// Mostly an app name (existing or not), else any segment.
fn app_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => proptest::sample::select(vec!["creator", "a.b", "nocreds", "missing", "x"]).prop_map(String::from),
        1 => "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}",
        3 => segment(),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let last = prop_oneof![
        4 => proptest::sample::select(vec!["install", "callback"]).prop_map(String::from),
        1 => segment(),
    ];
    prop_oneof![
        2 => Just("/oauth/install".to_string()),
        2 => Just("/oauth/callback".to_string()),
        7 => (namespace_segment(), app_segment(), last).prop_map(|(a, b, c)| format!("/oauth/{a}/{b}/{c}")),
        2 => Just(UNINSTALLED.to_string()),
        2 => proptest::collection::vec(segment(), 0..6).prop_map(|s| format!("/{}", s.join("/"))),
        1 => proptest::sample::select(vec![
            "/oauth//creator/install",
            "/oauth/@ns/creator/install/",
            "//oauth/install",
            "/oauth/install/..",
            "/oauth/./install",
            "/OAUTH/install",
            "/oauth/@ns/creator/install/extra",
            "/oauth/@ns/creator",
            "/healthz",
            "/metrics",
            "/shopify/webhooks/orders_create",
            "/shopify/webhooks/app_uninstalled/",
        ])
        .prop_map(String::from),
    ]
}

fn shop_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(SHOPS.to_vec()).prop_map(String::from),
        2 => proptest::sample::select(vec![
            "PS-FUZZ.MYSHOPIFY.COM",
            " ps-fuzz.myshopify.com ",
            "ps-fuzz.myshopify.com.evil.example",
            "evil.example.com",
            "../../kube-system",
            "ps-fuzz.myshopify.com/../x",
            "ps-fuzz.myshopify.com\0",
            "",
        ])
        .prop_map(String::from),
        1 => "ps-[a-z0-9]{1,70}\\.myshopify\\.com",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => shop_value(),
        1 => "[0-9a-f]{64}",
        1 => "[0-9a-f]{32}",
        1 => "[0-9]{1,15}",
        1 => "[0-9]{10}\\.[0-9a-f]{32}\\.[0-9a-f]{64}",
        2 => "\\PC{0,40}",
        1 => (100usize..6000).prop_map(|n| "v".repeat(n)),
        1 => Just(String::new()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(vec!["shop", "code", "hmac", "state", "timestamp", "host", "embedded"])
            .prop_map(String::from),
        1 => proptest::sample::select(vec!["SHOP", "shop[]", "sho%70", ""]).prop_map(String::from),
        1 => "[a-z]{1,8}",
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let pairs = || proptest::collection::vec((key(), value()), 0..10);
    prop_oneof![
        1 => Just(None),
        // As a browser sends an install: the shop first, then whatever.
        4 => (shop_value(), pairs()).prop_map(|(shop, p)| {
            Some(form_urlencoded::Serializer::new(String::new()).append_pair("shop", &shop).extend_pairs(p).finish())
        }),
        3 => pairs().prop_map(|p| Some(form_urlencoded::Serializer::new(String::new()).extend_pairs(p).finish())),
        // Unencoded: whatever the URI parser lets through.
        1 => pairs().prop_map(|p| Some(p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))),
        1 => encoded(0..200).prop_map(Some),
        1 => (4000usize..20_000).prop_map(|n| Some(format!("shop=ps-fuzz.myshopify.com&x={}", "y".repeat(n)))),
    ]
}

fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    let h = |name: &'static str, v: BoxedStrategy<String>| {
        v.prop_map(move |v| (name.to_string(), v.into_bytes()))
    };
    prop_oneof![
        2 => h("cookie", value().prop_map(|v| format!("shopify_operator_state={v}")).boxed()),
        1 => h("cookie", (1usize..2000).prop_map(|n| "a=1; ".repeat(n)).boxed()),
        1 => h("cookie", (8_000usize..100_000).prop_map(|n| format!("shopify_operator_state={}", "s".repeat(n))).boxed()),
        1 => h("x-request-id", value().boxed()),
        2 => h("x-shopify-shop-domain", shop_value().boxed()),
        1 => h("shopify-shop-domain", shop_value().boxed()),
        2 => h("x-shopify-hmac-sha256", prop_oneof!["[A-Za-z0-9+/]{43}=", value()].boxed()),
        1 => h("x-shopify-topic", prop_oneof![Just("app/uninstalled".to_string()), value()].boxed()),
        1 => h("content-type", prop_oneof![Just("application/json".to_string()), value()].boxed()),
        1 => h("content-length", "[0-9]{1,12}".boxed()),
        1 => ("[a-z][a-z0-9-]{0,20}", proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(n, v)| (n, v)),
        1 => ("x-[a-z]{1,8}", (10_000usize..100_000)).prop_map(|(n, len)| (n, vec![b'h'; len])),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => Just(Vec::new()),
        2 => proptest::collection::vec(any::<u8>(), 0..512),
        1 => shop_value().prop_map(|d| json!({"id": 1, "domain": d}).to_string().into_bytes()),
        1 => (60_000usize..80_000).prop_map(|n| vec![b'b'; n]),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        8 => Just(Method::GET),
        3 => Just(Method::POST),
        1 => proptest::sample::select(vec![
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
            Method::PATCH,
            Method::from_bytes(b"PROPFIND").unwrap(),
        ]),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let raw = (
        any::<bool>(),
        method(),
        path(),
        query(),
        proptest::collection::vec(header(), 0..5),
        body(),
    )
        .prop_map(|(scoped, method, path, query, headers, body)| {
            Case::Raw(Raw {
                scoped,
                method,
                path,
                query,
                headers,
                body,
            })
        });
    let signed = (
        any::<bool>(),
        proptest::sample::select(vec![None, Some("creator"), Some("a.b"), Some("nocreds")]),
        proptest::sample::select(SHOPS.to_vec()),
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        prop_oneof![5 => Just(0u8), 1 => 1u8..5],
        prop_oneof![6 => Just(0u8), 1 => 1u8..4],
        prop_oneof![8 => -500i64..30, 1 => -5000i64..5000],
        any::<bool>(),
        proptest::collection::vec((key(), value()), 0..3),
    )
        .prop_map(
            |(scoped, app, shop, secret, state, cookie, timestamp, real_code, extra)| {
                Case::Callback(Signed {
                    scoped,
                    app,
                    shop,
                    secret,
                    state,
                    cookie,
                    timestamp,
                    real_code,
                    extra,
                })
            },
        );
    let delivery = (
        any::<bool>(),
        proptest::sample::select(SHOPS.to_vec()),
        0u8..3,
        prop_oneof![4 => Just("app/uninstalled"), 1 => Just("orders/create")],
        prop_oneof![4 => Just(0u8), 1 => 1u8..4],
        body(),
    )
        .prop_map(|(scoped, shop, secret, topic, names, body)| {
            Case::Delivery(Delivery {
                scoped,
                shop,
                secret,
                topic,
                names,
                body,
            })
        });
    prop_oneof![16 => raw, 3 => signed, 1 => delivery]
}

// ------------------------------------------------------------ requests

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn secret_of(choice: u8) -> Option<&'static str> {
    match choice {
        0 => Some(APP_SECRET),
        1 => Some(FLAGS_SECRET),
        2 => Some("not-the-apps-secret"),
        _ => None,
    }
}

/// What a case was, for the checks of what it may cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Raw,
    Callback,
    Delivery,
}

/// A request's parts before `http` checks them: the URI, the body, the headers.
type Parts = (String, Vec<u8>, Vec<(String, Vec<u8>)>);

/// A case as an HTTP request (`None`: not a request `http` can express,
/// which no server would see either), with the id a client sent, if any.
fn request(case: &Case, ns: &str, sim: &shopify_sim::Sim) -> Option<(Request<Body>, Vec<Vec<u8>>)> {
    let mut builder = Request::builder();
    let (uri, body, headers): Parts = match case {
        Case::Raw(r) => {
            builder = builder.method(r.method.clone());
            let path = r.path.replace(NS, ns);
            let uri = match &r.query {
                Some(q) => format!("{path}?{}", q.replace(NS, ns)),
                None => path,
            };
            (uri, r.body.clone(), r.headers.clone())
        }
        Case::Callback(c) => {
            let now = unix_now();
            let key = secret_of(c.secret).unwrap_or("unsigned");
            let key = ClientSecret::from(key);
            let issued = match c.state {
                0 => state::issue(c.shop, now + 600, &key),
                1 => state::issue(c.shop, now - 5, &key),
                2 => state::issue(c.shop, now + 600, &ClientSecret::from("someone-else")),
                3 => state::issue("ps-other.myshopify.com", now + 600, &key),
                _ => format!("{now}.{}.{}", "0".repeat(32), "f".repeat(64)),
            };
            let client_id = if c.secret == 1 { FLAGS_ID } else { APP_ID };
            let code = c
                .real_code
                .then(|| sim.issue_code_for(c.shop, client_id, None))
                .flatten()
                .unwrap_or_else(|| "0907a61c0c8d55e99db179b68161bc00".into());
            let ts = now.saturating_add_signed(c.timestamp).to_string();
            let mut pairs: Vec<(String, String)> = vec![
                ("code".into(), code),
                ("host".into(), "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvcHMtZnV6eg".into()),
                ("shop".into(), c.shop.into()),
                ("state".into(), issued.clone()),
                ("timestamp".into(), ts),
            ];
            pairs.extend(c.extra.iter().filter(|(k, _)| k != "hmac").cloned());
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.extend_pairs(&pairs);
            if secret_of(c.secret).is_some() {
                let borrowed: Vec<(&str, &str)> =
                    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                query.append_pair("hmac", &sign_hex(oauth_message(&borrowed).as_bytes(), &key));
            }
            let path = match c.app {
                None => "/oauth/callback".to_string(),
                Some(app) => format!("/oauth/{ns}/{app}/callback"),
            };
            let other = state::issue(c.shop, now + 600, &key);
            let cookie = match c.cookie {
                0 => Some(format!("shopify_operator_state={issued}")),
                1 => None,
                2 => Some(format!("shopify_operator_state={other}")),
                _ => Some(format!(
                    "shopify_operator_state={other}; shopify_operator_state={issued}"
                )),
            };
            let headers = cookie
                .map(|c| ("cookie".to_string(), c.into_bytes()))
                .into_iter()
                .collect();
            (format!("{path}?{}", query.finish()), Vec::new(), headers)
        }
        Case::Delivery(d) => {
            builder = builder.method(Method::POST);
            let key = ClientSecret::from(secret_of(d.secret).unwrap_or_default());
            let body = if d.body.is_empty() {
                json!({"id": 1, "domain": d.shop}).to_string().into_bytes()
            } else {
                d.body.clone()
            };
            let hmac = sign_webhook(&body, &key);
            let mut headers = Vec::new();
            let mut both = |name: &str, v: &str, other: &str| {
                match d.names {
                    0 => headers.push((format!("x-shopify-{name}"), v.as_bytes().to_vec())),
                    1 => headers.push((format!("shopify-{name}"), v.as_bytes().to_vec())),
                    2 => {
                        headers.push((format!("x-shopify-{name}"), v.as_bytes().to_vec()));
                        headers.push((format!("shopify-{name}"), v.as_bytes().to_vec()));
                    }
                    _ => {
                        headers.push((format!("x-shopify-{name}"), v.as_bytes().to_vec()));
                        headers.push((format!("shopify-{name}"), other.as_bytes().to_vec()));
                    }
                };
            };
            both("topic", d.topic, "orders/create");
            both("shop-domain", d.shop, "ps-other.myshopify.com");
            both("hmac-sha256", &hmac, &sign_webhook(b"other", &key));
            (UNINSTALLED.to_string(), body, headers)
        }
    };
    builder = builder.uri(uri);
    let mut sent_ids = Vec::new();
    for (name, value) in headers {
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) else {
            continue;
        };
        if n == "x-request-id" {
            sent_ids.push(value.clone());
        }
        builder = builder.header(n, v);
    }
    let req = builder.body(Body::from(body)).ok()?;
    Some((req, sent_ids))
}

// -------------------------------------------------------------- checks

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `e` is a request public traffic may cause: reads of a
/// ShopifyApp (any valid name, any valid namespace: the 403 of one the
/// operator may not read is part of the test), of the Secrets the
/// fixture's objects name, lists of ShopifyShops; and, for a request
/// signed with a real secret (`signed`), the nonce Lease, the token
/// Secret, the installed ShopifyShop and the status counters.
fn expected(e: &AuditWrite, ns: &str, signed: bool) -> bool {
    let in_ns = e.namespace.as_deref() == Some(ns);
    let name = e.name.as_deref().unwrap_or_default();
    let token_secret =
        NAMED_SECRETS.contains(&name) || (name.ends_with("-shopify-token") && is_subdomain(name));
    let sub = e.subresource.as_deref();
    match (e.verb.as_str(), e.resource.as_str(), sub) {
        ("get", "shopifyapps", None) => e.namespace.as_deref().is_some_and(is_label) && is_subdomain(name),
        ("get", "secrets", None) => in_ns && token_secret,
        ("list", "shopifyshops", None) => e.namespace.is_none() || in_ns,
        _ if !signed => false,
        ("create" | "delete", "leases", None) => in_ns && name.starts_with("shopify-oauth-nonce-"),
        ("list", "leases", None) => in_ns,
        ("create" | "update", "secrets", None) => in_ns && token_secret,
        ("create" | "get", "shopifyshops", None) => in_ns,
        ("patch", "shopifyshops" | "shopifyapps", Some("status")) => in_ns,
        _ => false,
    }
}

/// The body check: one line, a known reason (and parameter), the id.
fn body_ok(method: &Method, status: u16, body: &str, id: &str) -> Result<(), String> {
    if *method == Method::HEAD || status == 302 {
        return if body.is_empty() {
            Ok(())
        } else {
            Err("a body on a HEAD or redirect answer".into())
        };
    }
    let Some(line) = body.strip_suffix(&format!(" (request id {id})\n")) else {
        return Err("no request id line".into());
    };
    if status == 200 {
        let installed = line
            .strip_prefix("Installed: ")
            .is_some_and(|s| SHOPS.contains(&s));
        return if installed || line == "recorded" || line == "ignored" {
            Ok(())
        } else {
            Err("an unexpected 200 body".into())
        };
    }
    let (reason, param) = match line.split_once(": ") {
        Some((r, p)) => (r, Some(p)),
        None => (line, None),
    };
    if !REASONS.contains(&(reason, status)) {
        return Err(format!("reason {reason:?} with status {status}"));
    }
    match param {
        None => Ok(()),
        Some(p) if reason == "InvalidRequest" && PARAMS.contains(&p) => Ok(()),
        Some(p) => Err(format!("parameter {p:?}")),
    }
}

/// Log lines as the operator writes them, kept for the checks.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// What the run saw, for the report and the final checks.
#[derive(Default)]
struct Tally {
    cases: u64,
    unsendable: u64,
    statuses: BTreeMap<u16, u64>,
    reasons: BTreeMap<String, u64>,
    requests: BTreeMap<String, u64>,
    ids: HashSet<String>,
    log: String,
    callbacks_installed: u64,
    forbidden_reads: u64,
}

// ------------------------------------------------------------- fixture

async fn create<K>(client: &Client, ns: &str, value: serde_json::Value)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
        .await
        .unwrap();
}

async fn cluster<K>(client: &Client, value: serde_json::Value)
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
        .await
        .unwrap();
}

fn sim_fixture() -> Fixture {
    let bare = |d: &str| ShopFixture {
        domain: d.into(),
        ..Default::default()
    };
    Fixture {
        shops: vec![
            bare("ps-fuzz.myshopify.com"),
            bare("ps-dotted.myshopify.com"),
            shop_fixture(
                "fuzz-flags.myshopify.com",
                "shpat_fuzz_flags_token",
                &["read_orders"],
                vec![],
            ),
            bare("brand-new.myshopify.com"),
            bare("outsider.myshopify.com"),
        ],
        app: None,
        apps: vec![
            AppFixture {
                client_id: APP_ID.into(),
                client_secret: APP_SECRET.into(),
                previous_client_secret: None,
            },
            AppFixture {
                client_id: FLAGS_ID.into(),
                client_secret: FLAGS_SECRET.into(),
                previous_client_secret: None,
            },
        ],
    }
}

/// The fixture's objects, and RBAC for `user`: cluster-wide list of
/// ShopifyShops (as the chart's cluster-wide mode), everything else only
/// in `ns` — so a ShopifyApp in any other namespace answers 403.
async fn objects(env: &Env, user: &str) {
    let (c, ns) = (&env.client, env.ns.as_str());
    let secret =
        |name: &str, data: serde_json::Value| json!({"metadata": {"name": name}, "stringData": data});
    create::<Secret>(
        c,
        ns,
        secret(
            "app-creds",
            json!({"client-id": APP_ID, "client-secret": APP_SECRET}),
        ),
    )
    .await;
    create::<Secret>(
        c,
        ns,
        secret(
            "flags-app",
            json!({"client-id": FLAGS_ID, "client-secret": FLAGS_SECRET}),
        ),
    )
    .await;
    create::<Secret>(
        c,
        ns,
        secret("tok-flags", json!({"access-token": "shpat_fuzz_flags_token"})),
    )
    .await;
    create::<Secret>(
        c,
        ns,
        secret("tok-dotted", json!({"access-token": "shpat_fuzz_dotted_token"})),
    )
    .await;
    let app = |name: &str, spec: serde_json::Value| json!({"apiVersion": "shopify-operator.dev/v1alpha1", "kind": "ShopifyApp", "metadata": {"name": name}, "spec": spec});
    create::<ShopifyApp>(
        c,
        ns,
        app(
            "creator",
            json!({"credentialsSecretRef": {"name": "app-creds"}, "allowedShops": ["ps-*.myshopify.com"], "install": {"createShops": true}}),
        ),
    )
    .await;
    create::<ShopifyApp>(
        c,
        ns,
        app(
            "a.b",
            json!({"credentialsSecretRef": {"name": "app-creds"}, "allowedShops": ["ps-dotted.myshopify.com"]}),
        ),
    )
    .await;
    create::<ShopifyApp>(
        c,
        ns,
        app(
            "nocreds",
            json!({"credentialsSecretRef": {"name": "missing-secret"}, "allowedShops": ["ps-*.myshopify.com"]}),
        ),
    )
    .await;
    let shop = |name: &str, spec: serde_json::Value| json!({"apiVersion": "shopify-operator.dev/v1alpha1", "kind": "ShopifyShop", "metadata": {"name": name}, "spec": spec});
    create::<ShopifyShop>(
        c,
        ns,
        shop(
            "flags-shop",
            json!({"domain": "fuzz-flags.myshopify.com", "token": {"secretRef": {"name": "tok-flags"}}, "app": {"secretRef": {"name": "flags-app"}}}),
        ),
    )
    .await;
    create::<ShopifyShop>(
        c,
        ns,
        shop(
            "dotted",
            json!({"domain": "ps-dotted.myshopify.com", "token": {"secretRef": {"name": "tok-dotted"}}, "appRef": {"name": "a.b"}}),
        ),
    )
    .await;

    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    let group = "shopify-operator.dev";
    let subject = json!([{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]);
    cluster::<ClusterRole>(
        c,
        json!({"metadata": {"name": user}, "rules": [{"apiGroups": [group], "resources": ["shopifyshops"], "verbs": ["list"]}]}),
    )
    .await;
    cluster::<ClusterRoleBinding>(
        c,
        json!({"metadata": {"name": user}, "subjects": subject,
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user}}),
    )
    .await;
    create::<Role>(
        c,
        ns,
        json!({"metadata": {"name": "public"}, "rules": [
            {"apiGroups": [group], "resources": ["shopifyapps"], "verbs": ["get"]},
            {"apiGroups": [group], "resources": ["shopifyapps/status", "shopifyshops/status"], "verbs": ["patch"]},
            {"apiGroups": [group], "resources": ["shopifyshops"], "verbs": ["get", "list", "create"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "list", "delete"]},
        ]}),
    )
    .await;
    create::<RoleBinding>(
        c,
        ns,
        json!({"metadata": {"name": "public"}, "subjects": subject,
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "public"}}),
    )
    .await;
}

fn public_config(ns: &str, scoped: bool) -> PublicConfig {
    PublicConfig {
        public_url: Some(url::Url::parse(PUBLIC_URL).unwrap()),
        expiring: true,
        state_ttl: Duration::from_secs(600),
        allowed_shops: vec![
            "ps-*.myshopify.com".into(),
            "fuzz-flags.myshopify.com".into(),
            "brand-new.myshopify.com".into(),
        ],
        namespace: scoped.then(|| ns.to_string()),
        default_app: Some((ns.to_string(), "flags-app".into())),
        nonce_namespace: ns.to_string(),
    }
}

// ---------------------------------------------------------------- fuzz

fn seed() -> [u8; 32] {
    let mut seed = *b"shopify-operator issue 28 seed!!";
    if let Ok(hex_seed) = std::env::var("PUBLIC_FUZZ_SEED") {
        let bytes = hex::decode(hex_seed.trim()).expect("PUBLIC_FUZZ_SEED: hex");
        for (s, b) in seed.iter_mut().zip(bytes) {
            *s = b;
        }
    }
    seed
}

#[test]
fn public_router_fuzz() {
    let started = Instant::now();
    let cases: u32 = std::env::var("PUBLIC_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(10_000);
    // One thread runs the router, the clients and the simulator, so the
    // log lines a case causes are the ones written while it runs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new("shopify_operator=info"))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = rt.block_on(Env::new("public-fuzz", sim_fixture()));
    let ns = env.ns.clone();
    let user = format!("public-fuzz-{ns}");
    let (routers, offset) = rt.block_on(async {
        objects(&env, &user).await;
        let client = env
            .cp
            .user_client(&user, &[testenv::AUDIT_READS_GROUP])
            .await
            .unwrap();
        // RBAC takes effect when the apiserver's informers see it.
        let apps: Api<ShopifyApp> = Api::namespaced(client.clone(), &ns);
        let shops: Api<ShopifyShop> = Api::all(client.clone());
        wait_for("the fuzz identity's RBAC", Duration::from_secs(60), || async {
            (apps.get("creator").await.is_ok() && shops.list(&Default::default()).await.is_ok()).then_some(())
        })
        .await;
        let shopify = ShopifyClient::new(ClientConfig {
            base_url: env.sim.base_url(),
            request_timeout: Duration::from_secs(5),
            require_myshopify_domain: false,
            ..ClientConfig::default()
        })
        .unwrap();
        let router = |scoped| {
            public::router(Arc::new(Public::new(
                client.clone(),
                shopify.clone(),
                public_config(&ns, scoped),
            )))
        };
        let routers = (router(false), router(true));
        // Start after the set-up's requests.
        let (_, offset) = env.cp.audit_requests_since(&user, 0);
        (routers, offset)
    });
    captured.take();
    let set_up = started.elapsed();

    let tally = std::cell::RefCell::new(Tally::default());
    let offset_cell = std::cell::Cell::new(offset);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed()));
    let fuzzing = Instant::now();
    let result = runner.run(&case(), |case| {
        let mut t = tally.borrow_mut();
        t.cases += 1;
        let Some((req, sent_ids)) = request(&case, &ns, &env.sim) else {
            t.unsendable += 1;
            return Ok(());
        };
        let method = req.method().clone();
        let (kind, scoped) = match &case {
            Case::Raw(r) => (Kind::Raw, r.scoped),
            Case::Callback(c) => (Kind::Callback, c.scoped),
            Case::Delivery(d) => (Kind::Delivery, d.scoped),
        };
        let router = if scoped {
            routers.1.clone()
        } else {
            routers.0.clone()
        };
        let (status, id, body) = rt.block_on(async {
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let id = resp
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, id, String::from_utf8_lossy(&body).into_owned())
        });
        let fail = |what: String| TestCaseError::fail(format!("{what}: status {status}, body {body:?}"));
        *t.statuses.entry(status).or_default() += 1;
        if status >= 500 {
            return Err(fail("a 5xx while the apiserver is up".into()));
        }
        if !is_uuid(&id) || sent_ids.iter().any(|s| s == id.as_bytes()) || !t.ids.insert(id.clone()) {
            return Err(fail(format!("x-request-id {id:?} is not a fresh id of ours")));
        }
        body_ok(&method, status, &body, &id).map_err(fail)?;
        let reason = body.split([' ', ':']).next().unwrap_or_default().to_string();
        *t.reasons.entry(reason.clone()).or_default() += 1;
        if kind == Kind::Callback && status == 200 {
            t.callbacks_installed += 1;
        }

        // The log says why, under the same id, in bounded lines.
        let log = captured.take();
        if !log.contains(&format!("request_id={id}")) {
            return Err(fail(format!("no log line with request id {id}")));
        }
        if let Some(long) = log.lines().find(|l| l.len() > 4096) {
            return Err(fail(format!("a log line of {} bytes", long.len())));
        }
        t.log.push_str(&log);

        // What it asked the apiserver.
        let (entries, next) = env.cp.audit_requests_since(&user, offset_cell.get());
        offset_cell.set(next);
        let signed = kind != Kind::Raw;
        for e in &entries {
            *t.requests
                .entry(format!(
                    "{} {}{}",
                    e.verb,
                    e.resource,
                    e.subresource
                        .as_deref()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default()
                ))
                .or_default() += 1;
            if e.code == Some(403) {
                t.forbidden_reads += 1;
            }
            if !expected(e, &ns, signed) {
                return Err(fail(format!("an unexpected apiserver request {e:?}")));
            }
        }
        let refused_early = matches!(reason.as_str(), "InvalidRequest" | "NotFound" | "PayloadTooLarge");
        if refused_early && !entries.is_empty() {
            return Err(fail(format!(
                "refused as malformed, yet asked the apiserver {entries:?}"
            )));
        }
        let writes: Vec<&AuditWrite> = entries
            .iter()
            .filter(|e| !matches!(e.verb.as_str(), "get" | "list" | "watch"))
            .filter(|e| e.resource != "leases")
            .collect();
        // Only an accepted callback writes (ShopCreateFailed is an accepted
        // callback whose shop create the apiserver then refused).
        let accepted = status == 200 || reason == "ShopCreateFailed";
        if !(writes.is_empty() || accepted) {
            return Err(fail(format!("wrote {writes:?} for a refused request")));
        }
        Ok(())
    });
    let fuzz_time = fuzzing.elapsed();
    let t = tally.into_inner();
    eprintln!(
        "public router fuzz: {} cases ({} not expressible as HTTP requests) in {:.1?} (set-up {:.1?}); statuses {:?}; reasons {:?}; apiserver requests {:?}; {} installs; {} forbidden reads",
        t.cases,
        t.unsendable,
        fuzz_time,
        set_up,
        t.statuses,
        t.reasons,
        t.requests,
        t.callbacks_installed,
        t.forbidden_reads
    );
    if let Err(e) = result {
        panic!("{e}");
    }

    // No secret in the log: the apps', nor any token or code the
    // simulator issued.
    let mut secrets = env.sim.known_secrets();
    secrets.extend([APP_SECRET.to_string(), FLAGS_SECRET.to_string()]);
    secrets.retain(|s| s.len() >= 8);
    let finder = aho_corasick::AhoCorasick::new(&secrets).unwrap();
    if let Some(m) = finder.find(&t.log) {
        let s = &secrets[m.pattern().as_usize()];
        // The value itself is not printed: the report must not leak it.
        panic!("a secret ({} chars, {}…) is in the log", s.len(), &s[..6]);
    }
    // The run reached every layer: installs, 403s hidden as UnknownApp,
    // nonce Leases, each refusal.
    if cases >= 2_000 {
        assert!(t.callbacks_installed > 0, "no callback installed");
        assert!(t.forbidden_reads > 0, "no read the operator may not make");
        assert!(t.requests.contains_key("create leases"), "no nonce Lease");
        for reason in [
            "NotFound",
            "InvalidRequest",
            "UnknownApp",
            "InvalidHmac",
            "InvalidState",
            "CodeRejected",
        ] {
            assert!(t.reasons.contains_key(reason), "no {reason} answer");
        }
    }
}

// -------------------------------------------------- an operator process

/// Sends `raw` (a whole HTTP/1.1 request) to `addr` and returns the
/// status, the headers (lower-cased names) and the body of the answer.
fn raw_http(addr: &str, raw: &[u8]) -> (u16, BTreeMap<String, String>, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(raw).unwrap();
    let mut answer = Vec::new();
    // The request says `Connection: close`: the answer ends at EOF. A
    // server may also close early (a request it refuses to parse).
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: operator.example\r\nConnection: close\r\n\r\n").into_bytes()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_refuses_the_issues_probes_before_asking_the_apiserver() {
    const DOMAIN: &str = "ps-direct-fulfilment-offline.myshopify.com";
    const TOKEN: &str = "shpat_probe_offline_token";
    let f = Fixture {
        shops: vec![shop_fixture(DOMAIN, TOKEN, &["read_orders"], vec![])],
        ..Default::default()
    };
    let mut env = Env::new("public-probe", f).await;
    env.token_secret("tok", TOKEN).await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let app = json!({"metadata": {"name": "app"}, "stringData": {"client-id": "probe-id", "client-secret": "probe-client-secret"}});
    secrets
        .create(&PostParams::default(), &serde_json::from_value(app).unwrap())
        .await
        .unwrap();
    env.secrets.lock().unwrap().push("probe-client-secret".into());
    env.create_shop(
        "offline",
        json!({"domain": DOMAIN, "token": {"secretRef": {"name": "tok"}}, "app": {"secretRef": {"name": "app"}}}),
    )
    .await;
    // The operator as its own user whose reads are audited. (Bound to
    // cluster-admin rather than in system:masters: testenv's certificates
    // carry only the last of several groups.)
    let user = format!("operator-reads-{}", env.ns);
    cluster::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(
        &env.client,
        json!({"metadata": {"name": user},
               "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}}),
    )
    .await;
    let extra = [("PUBLIC_URL".to_string(), PUBLIC_URL.to_string())];
    env.operator = Some(env.spawn_operator_as("operator", &user, &[testenv::AUDIT_READS_GROUP], &extra));
    let addr = support::http_addr(env.operator.as_ref().unwrap()).await;
    let ns = env.ns.clone();

    // The issue's probes, byte for byte (no client normalises them).
    let probes = [
        format!("/oauth/..%2f..%2fkube-system/x/install?shop={DOMAIN}"),
        format!("/oauth/{ns}/x%2fstatus/install?shop={DOMAIN}"),
        format!("/oauth/%2e%2e/x/install?shop={DOMAIN}"),
        format!("/oauth/{ns}/..%2fsecrets%2fapp/install?shop={DOMAIN}"),
        format!("/oauth/{ns}/%00/callback?shop={DOMAIN}"),
        format!("/oauth/{ns}/x/install?shop={DOMAIN}&shop=evil.myshopify.com"),
        format!("/oauth/callback?shop={DOMAIN}&hmac=00&state=x&timestamp=1&code=c"),
        "/oauth/install?shop=..%2f..%2fkube-system".to_string(),
    ];
    let log_path = env.log_path();
    for probe in &probes {
        let (status, headers, body) = tokio::task::spawn_blocking({
            let (addr, req) = (addr.clone(), get_request(probe));
            move || raw_http(&addr, &req)
        })
        .await
        .unwrap();
        let id = headers.get("x-request-id").cloned().unwrap_or_default();
        assert!(matches!(status, 400 | 404), "{probe}: {status} {body:?}");
        assert!(
            body == format!("NotFound (request id {id})\n") || body.starts_with("InvalidRequest: "),
            "{probe}: {body:?}"
        );
        assert!(!id.is_empty(), "{probe}: no x-request-id");
        let answer = support::Answer {
            status,
            location: None,
            set_cookie: None,
            request_id: Some(id),
            body,
        };
        support::wait_logged(&log_path, &answer, "").await;
    }
    // A request id a client sends is not echoed.
    let (_, headers, _) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || {
            raw_http(
                &addr,
                b"GET /oauth/nowhere HTTP/1.1\r\nHost: x\r\nX-Request-Id: mine\r\nConnection: close\r\n\r\n",
            )
        }
    })
    .await
    .unwrap();
    assert_ne!(headers.get("x-request-id").map(String::as_str), Some("mine"));
    // Requests hyper refuses to parse: a 4xx or a closed connection, and
    // the listener keeps serving.
    let huge = format!(
        "GET /oauth/install?shop={DOMAIN} HTTP/1.1\r\nHost: x\r\nCookie: {}\r\nConnection: close\r\n\r\n",
        "c".repeat(1 << 20)
    );
    for raw in [
        huge.into_bytes(),
        b"GET /oauth/\0/x/install HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        "GET /oauth/é/x/install HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            .as_bytes()
            .to_vec(),
        b"GET /oauth/install?shop=a#frag HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    ] {
        let (status, _, body) = tokio::task::spawn_blocking({
            let addr = addr.clone();
            move || raw_http(&addr, &raw)
        })
        .await
        .unwrap();
        assert!(status == 0 || (400..500).contains(&status), "{status} {body:?}");
    }
    let (status, _, _) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || raw_http(&addr, &get_request("/healthz"))
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "the listener still serves");

    // A flood: 2,000 forged deliveries, 32 at a time, all refused; the
    // operator's memory stays bounded and /metrics names no token.
    let pid = env.operator.as_ref().unwrap().pid();
    let rss_before = rss_kib(pid);
    let http = reqwest::Client::new();
    let url = format!("http://{addr}{UNINSTALLED}");
    let statuses: Vec<u16> = futures::stream::iter(0..2_000)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let body = json!({"id": i, "domain": DOMAIN}).to_string();
                let hmac = sign_webhook(body.as_bytes(), &ClientSecret::from(format!("forged-{i}")));
                http.post(&url)
                    .header("X-Shopify-Topic", "app/uninstalled")
                    .header("X-Shopify-Shop-Domain", DOMAIN)
                    .header("X-Shopify-Hmac-Sha256", hmac)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 401), "{:?}", {
        let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
        statuses.iter().for_each(|s| *seen.entry(*s).or_default() += 1);
        seen
    });
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let metrics = support::metrics_text(&addr)
        .await
        .expect("the operator's /metrics");
    assert!(!metrics.contains(TOKEN) && !metrics.contains("probe-client-secret"));

    // Nothing the probes caused went outside the test's namespace or to a
    // subresource; the controller's own reads are in the test's
    // namespace too (it watches only that one).
    for e in env.cp.audit_writes(&user) {
        let name = e.name.as_deref().unwrap_or_default();
        assert!(
            e.namespace.as_deref().is_none_or(|n| n == ns),
            "a request outside the namespace: {e:?}"
        );
        assert!(!name.contains('/') && !name.contains(".."), "{e:?}");
        assert!(
            e.subresource.is_none() || e.verb == "patch" || e.verb == "update",
            "a read of a subresource: {e:?}"
        );
    }
}
