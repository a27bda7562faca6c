//! The Shopify client against the in-process simulator: every error class,
//! retries (and the retries that must not happen), pagination, batched
//! mutations, version-dependent fields, throttling and per-shop isolation.
//!
//! Network: loopback only (the simulator binds 127.0.0.1 on a random port).

use std::time::{Duration, Instant};

use shopify_admin::{
    AccessToken, Change, ChangeResult, ClientConfig, ClientSecret, Format, ShopifyClient, ShopifyError,
};
use shopify_sim::{
    self as sim, AppFixture, Fault, Fixture, ShopFixture, Sim, SimConfig, SubscriptionFixture, TokenFixture,
};

const A: &str = "alpha.myshopify.com";
const B: &str = "beta.myshopify.com";
const TOKEN_A: &str = "shpat_alpha_test_token";
const TOKEN_B: &str = "shpat_beta_test_token";
const V: &str = "2025-07";
const HOST: &str = "https://oms.example.com/webhooks";

fn shop(domain: &str, token: &str, subs: Vec<SubscriptionFixture>) -> ShopFixture {
    ShopFixture {
        domain: domain.into(),
        name: Some(domain.split('.').next().unwrap().to_uppercase()),
        plan: Some("Advanced".into()),
        tokens: vec![TokenFixture {
            access_token: token.into(),
            scopes: vec!["read_orders".into(), "read_products".into()],
            ..Default::default()
        }],
        subscriptions: subs,
    }
}

fn sub(topic: &str, address: &str) -> SubscriptionFixture {
    SubscriptionFixture {
        topic: topic.into(),
        address: address.into(),
        ..Default::default()
    }
}

fn fixture(subs_a: Vec<SubscriptionFixture>) -> Fixture {
    Fixture {
        shops: vec![shop(A, TOKEN_A, subs_a), shop(B, TOKEN_B, vec![])],
        ..Default::default()
    }
}

async fn start(fixture: Fixture, tweak: impl FnOnce(&mut SimConfig)) -> Sim {
    let mut cfg = SimConfig {
        fixture,
        ..Default::default()
    };
    tweak(&mut cfg);
    sim::start(cfg).await.expect("simulator starts")
}

fn client_with(sim: &Sim, tweak: impl FnOnce(&mut ClientConfig)) -> ShopifyClient {
    let mut cfg = ClientConfig {
        base_url: sim.base_url(),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry_base_delay: Duration::from_millis(10),
        retry_max_delay: Duration::from_millis(50),
        ..Default::default()
    };
    tweak(&mut cfg);
    ShopifyClient::new(cfg).unwrap()
}

fn client(sim: &Sim) -> ShopifyClient {
    client_with(sim, |_| {})
}

fn tok(s: &str) -> AccessToken {
    AccessToken::new(s.into())
}

fn create(topic: &str) -> Change {
    Change::Create {
        topic: topic.into(),
        address: format!("{HOST}/{}", topic.replace('/', "_")),
        format: Format::Json,
        options: Default::default(),
    }
}

#[tokio::test]
async fn bad_and_revoked_tokens_are_unauthorized() {
    let sim = start(fixture(vec![]), |_| {}).await;
    let c = client(&sim);
    let e = c.list_subscriptions(A, V, &tok("shpat_wrong")).await.unwrap_err();
    assert_eq!(e, ShopifyError::Unauthorized);
    assert_eq!(e.reason(), "TokenRevoked");
    assert!(c.list_subscriptions(A, V, &tok(TOKEN_A)).await.is_ok());
    sim.revoke_token(A);
    let e = c.list_subscriptions(A, V, &tok(TOKEN_A)).await.unwrap_err();
    assert_eq!(e, ShopifyError::Unauthorized);
    // 401 is final: one request each, never retried.
    assert_eq!(c.request_count(), 3);
    assert_eq!(sim.counters(A).status(401), 2);
    // The other shop's token still works.
    assert!(c.list_subscriptions(B, V, &tok(TOKEN_B)).await.is_ok());
}

#[tokio::test]
async fn fixed_statuses_map_to_their_classes_without_retries() {
    let sim = start(fixture(vec![]), |_| {}).await;
    let c = client(&sim);
    let t = tok(TOKEN_A);
    for (status, reason) in [(402, "ShopFrozen"), (403, "MissingScope"), (423, "ShopLocked")] {
        sim.inject(Fault::Status {
            shop: Some(A.into()),
            status,
            count: 1,
        });
        let before = sim.counters(A).requests;
        let e = c.list_subscriptions(A, V, &t).await.unwrap_err();
        assert_eq!(e.reason(), reason, "{status}: {e:?}");
        assert!(!e.is_retryable());
        assert_eq!(
            sim.counters(A).requests,
            before + 1,
            "{status} must not be retried"
        );
    }
    let e = c
        .list_subscriptions("nosuchshop.myshopify.com", V, &t)
        .await
        .unwrap_err();
    assert_eq!(e, ShopifyError::NotFound);
    assert_eq!(e.reason(), "ShopNotFound");
}

#[tokio::test]
async fn http_429_is_waited_out_or_returned_when_too_long() {
    let sim = start(
        fixture(vec![sub("orders/create", &format!("{HOST}/orders_create"))]),
        |_| {},
    )
    .await;
    let c = client(&sim);
    let t = tok(TOKEN_A);
    sim.inject(Fault::Status {
        shop: Some(A.into()),
        status: 429,
        count: 1,
    });
    let started = Instant::now();
    let listing = c.list_subscriptions(A, V, &t).await.unwrap();
    assert_eq!(listing.subscriptions.len(), 1);
    assert_eq!(listing.meta.requests, 2);
    assert_eq!(listing.meta.retries, 1);
    // The simulator answers `Retry-After: 2`; the client honoured it.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A client that may not wait that long hands the wait to the caller.
    let impatient = client_with(&sim, |c| c.max_throttle_wait = Duration::from_millis(500));
    sim.inject(Fault::Status {
        shop: Some(A.into()),
        status: 429,
        count: 1,
    });
    let e = impatient.list_subscriptions(A, V, &t).await.unwrap_err();
    assert_eq!(
        e,
        ShopifyError::Throttled {
            retry_after: Duration::from_secs(2)
        }
    );
    assert_eq!(e.reason(), "ShopifyThrottled");
    assert_eq!(impatient.request_count(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_then_given_up() {
    let sim = start(
        fixture(vec![sub("orders/create", &format!("{HOST}/orders_create"))]),
        |_| {},
    )
    .await;
    let c = client_with(&sim, |c| c.max_retries = 3);
    let t = tok(TOKEN_A);
    sim.inject(Fault::Status {
        shop: Some(A.into()),
        status: 503,
        count: 2,
    });
    let listing = c.list_subscriptions(A, V, &t).await.unwrap();
    assert_eq!(listing.subscriptions.len(), 1);
    assert_eq!((listing.meta.requests, listing.meta.retries), (3, 2));
    assert_eq!(sim.counters(A).status(503), 2);

    sim.inject(Fault::Status {
        shop: Some(A.into()),
        status: 500,
        count: 10,
    });
    let before = sim.counters(A).requests;
    let e = c.list_subscriptions(A, V, &t).await.unwrap_err();
    assert!(
        matches!(
            e,
            ShopifyError::Transient {
                outcome_unknown: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.reason(), "ShopifyUnavailable");
    assert_eq!(sim.counters(A).requests - before, 4, "1 try + max_retries");
    sim.clear_faults();

    // A dropped connection is retried for a read as well.
    sim.inject(Fault::DropConnection {
        shop: Some(A.into()),
        count: 1,
    });
    let listing = c.list_subscriptions(A, V, &t).await.unwrap();
    assert_eq!(listing.meta.retries, 1);
    // Failed attempts were never charged: the client gave their reserved
    // points back instead of waiting for a refill it did not need.
    assert!(listing.meta.waited.is_zero(), "{:?}", listing.meta.waited);
}

#[tokio::test]
async fn create_with_unknown_outcome_is_not_resent() {
    let sim = start(fixture(vec![]), |_| {}).await;
    let c = client_with(&sim, |c| c.request_timeout = Duration::from_millis(500));
    let t = tok(TOKEN_A);
    sim.inject(Fault::TimeoutAfterApply {
        shop: Some(A.into()),
        count: 1,
        hang: Duration::from_secs(3),
        mutations_only: false,
    });
    let e = c.apply(A, V, &t, &[create("orders/create")]).await.unwrap_err();
    assert!(
        matches!(
            e,
            ShopifyError::Transient {
                outcome_unknown: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("re-list"));
    assert_eq!(
        c.request_count(),
        1,
        "a create of unknown outcome is never re-sent"
    );
    assert_eq!(sim.counters(A).operation("webhookSubscriptionCreate"), 1);
    // It did happen: the simulator has it, and re-listing shows it.
    let subs = sim.subscriptions(A);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].address, format!("{HOST}/orders_create"));
    let listing = c.list_subscriptions(A, V, &t).await.unwrap();
    assert_eq!(listing.subscriptions.len(), 1);
    assert_eq!(listing.subscriptions[0].topic, "orders/create");

    // A 5xx on a create is just as unknown: reported, not re-sent.
    sim.inject(Fault::Status {
        shop: Some(A.into()),
        status: 502,
        count: 1,
    });
    let before = sim.counters(A).requests;
    let e = c.apply(A, V, &t, &[create("orders/paid")]).await.unwrap_err();
    assert!(
        matches!(
            e,
            ShopifyError::Transient {
                outcome_unknown: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(sim.counters(A).requests - before, 1);
}

#[tokio::test]
async fn update_only_document_is_resent_after_timeout() {
    let sim = start(fixture(vec![]), |_| {}).await;
    let id = sim.add_subscription(A, "ORDERS_UPDATED", &format!("{HOST}/old"), "JSON");
    // Far above a loaded machine's answer time (the re-sent document must
    // not time out too), far below the hang.
    let c = client_with(&sim, |c| c.request_timeout = Duration::from_secs(3));
    let t = tok(TOKEN_A);
    sim.inject(Fault::TimeoutAfterApply {
        shop: Some(A.into()),
        count: 1,
        hang: Duration::from_secs(30),
        mutations_only: false,
    });
    let change = Change::Update {
        id: id.clone(),
        topic: "orders/updated".into(),
        address: format!("{HOST}/orders_updated"),
        format: Format::Xml,
        options: Default::default(),
    };
    let (results, meta) = c.apply_with_meta(A, V, &t, &[change]).await.unwrap();
    match &results[0] {
        ChangeResult::Updated(s) => {
            assert_eq!(s.id, id);
            assert_eq!(s.address, format!("{HOST}/orders_updated"));
            assert_eq!(s.format, Format::Xml);
            assert_eq!(s.topic, "orders/updated");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(meta.requests, 2);
    assert!(meta.resent_after_unknown_outcome);
    assert_eq!(sim.counters(A).operation("webhookSubscriptionUpdate"), 2);
    assert_eq!(sim.subscriptions(A).len(), 1);
}

#[tokio::test]
async fn listing_follows_pages_past_250() {
    let subs: Vec<SubscriptionFixture> = (0..600)
        .map(|i| sub("orders/create", &format!("{HOST}/orders_create/{i}")))
        .collect();
    // A roomy bucket: this test is about pages, not throttling.
    let sim = start(fixture(subs), |c| c.restore_rate = 100_000.0).await;
    let c = client(&sim);
    let listing = c.list_subscriptions(A, V, &tok(TOKEN_A)).await.unwrap();
    assert_eq!(listing.subscriptions.len(), 600);
    // A shop never listed starts with 100; 2025-07 pages hold at most 249.
    assert_eq!(listing.meta.requests, 4, "100 + 249 + 249 + 2");
    assert_eq!(sim.counters(A).operation("webhookSubscriptions"), 4);
    // The next listing knows there are 600: full pages from the start.
    let again = c.list_subscriptions(A, V, &tok(TOKEN_A)).await.unwrap();
    assert_eq!(again.subscriptions.len(), 600);
    assert_eq!(again.meta.requests, 3, "249 + 249 + 102");
    let mut ids: Vec<&str> = listing.subscriptions.iter().map(|s| s.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 600, "no duplicates across pages");
    let mut got: Vec<String> = listing.subscriptions.iter().map(|s| s.address.clone()).collect();
    let mut want: Vec<String> = sim.subscriptions(A).into_iter().map(|s| s.address).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(listing.meta.requested_cost > 0.0 && listing.meta.throttle_status.is_some());
}

#[tokio::test]
async fn batched_changes_go_in_one_request_and_one_failure_stays_local() {
    let taken = format!("{HOST}/orders_create");
    let sim = start(fixture(vec![sub("orders/create", &taken)]), |_| {}).await;
    let upd = sim.add_subscription(A, "PRODUCTS_UPDATE", &format!("{HOST}/old_products"), "JSON");
    let del = sim.add_subscription(A, "APP_UNINSTALLED", &format!("{HOST}/app_uninstalled"), "JSON");
    let c = client(&sim);
    let changes = vec![
        create("orders/paid"),
        Change::Create {
            topic: "orders/create".into(),
            address: taken.clone(),
            format: Format::Json,
            options: Default::default(),
        },
        Change::Update {
            id: upd.clone(),
            topic: "products/update".into(),
            address: format!("{HOST}/products_update"),
            format: Format::Json,
            options: Default::default(),
        },
        Change::Delete {
            id: del.clone(),
            topic: "app/uninstalled".into(),
        },
        create("customers/create"),
    ];
    let results = c.apply(A, V, &tok(TOKEN_A), &changes).await.unwrap();
    assert_eq!(c.request_count(), 1, "one GraphQL document for the whole plan");
    assert_eq!(sim.counters(A).requests, 1);
    assert_eq!(results.len(), 5);
    assert!(
        matches!(&results[0], ChangeResult::Created(s) if s.topic == "orders/paid" && s.address == format!("{HOST}/orders_paid"))
    );
    let errs = results[1].user_errors().expect("duplicate address fails");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].message, "Address for this topic has already been taken");
    assert!(
        matches!(&results[2], ChangeResult::Updated(s) if s.id == upd && s.address.ends_with("/products_update"))
    );
    assert_eq!(results[3], ChangeResult::Deleted { id: del.clone() });
    assert!(matches!(&results[4], ChangeResult::Created(s) if s.topic == "customers/create"));
    let now = sim.subscriptions(A);
    assert_eq!(
        now.len(),
        4,
        "orders/create + orders/paid + products/update + customers/create"
    );
    assert!(now.iter().all(|s| s.id != del));
    assert_eq!(now.iter().filter(|s| s.address == taken).count(), 1);

    // apply_one turns a rejection into an error.
    let e = c
        .apply_one(
            A,
            V,
            &tok(TOKEN_A),
            Change::Create {
                topic: "orders/create".into(),
                address: taken,
                format: Format::Json,
                options: Default::default(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ShopifyError::UserErrors(u) if u[0].message.contains("already been taken")),
        "{e:?}"
    );
    assert_eq!(e.reason(), "ShopifyUserError");
    // Nothing to do: no request.
    assert!(c.apply(A, V, &tok(TOKEN_A), &[]).await.unwrap().is_empty());
    assert_eq!(c.request_count(), 2);
}

#[tokio::test]
async fn both_schema_generations_list_and_create() {
    let sim = start(fixture(vec![]), |_| {}).await;
    let c = client(&sim);
    let t = tok(TOKEN_A);
    for (version, topic) in [
        ("2025-07", "orders/create"),
        ("2025-10", "orders/paid"),
        ("2026-01", "customer.tags_added"),
    ] {
        let r = c.apply(A, version, &t, &[create(topic)]).await.unwrap();
        let want = format!("{HOST}/{}", topic.replace('/', "_"));
        assert!(
            matches!(&r[0], ChangeResult::Created(s) if s.address == want && s.topic == topic),
            "{version}: {r:?}"
        );
        let listing = c.list_subscriptions(A, version, &t).await.unwrap();
        let found = listing
            .subscriptions
            .iter()
            .find(|s| s.topic == topic)
            .expect("listed");
        assert_eq!(found.address, want, "{version}");
        assert_eq!(found.topic_enum, topic.replace(['/', '.'], "_").to_uppercase());
        assert!(
            listing.meta.deprecated_reason.is_none(),
            "{version}: no deprecated field used"
        );
        assert_eq!(listing.meta.served_version.as_deref(), Some(version));
        assert!(!listing.meta.fell_forward());
    }
    // Every subscription shows its address under both generations.
    for version in ["2025-07", "2025-10"] {
        let l = c.list_subscriptions(A, version, &t).await.unwrap();
        assert_eq!(l.subscriptions.len(), 3);
        assert!(
            l.subscriptions.iter().all(|s| s.address.starts_with(HOST)),
            "{version}"
        );
    }
}

#[tokio::test]
async fn token_info_reports_shop_plan_and_scopes_in_one_request() {
    let sim = start(fixture(vec![]), |_| {}).await;
    let c = client(&sim);
    for version in ["2025-04", "2025-07", "2025-10"] {
        let before = c.request_count();
        let info = c.token_info(A, version, &tok(TOKEN_A)).await.unwrap();
        assert_eq!(c.request_count() - before, 1);
        assert_eq!(info.myshopify_domain, A);
        assert_eq!(info.shop_name, "ALPHA");
        assert_eq!(info.plan.as_deref(), Some("Advanced"), "{version}");
        assert_eq!(info.scopes, vec!["read_orders", "read_products"]);
        assert!(info.meta.deprecated_reason.is_none(), "{version}");
    }
}

#[tokio::test]
async fn app_uninstall_revokes_the_apps_token_and_needs_2025_07() {
    let mut f = fixture(vec![sub("orders/create", &format!("{HOST}/orders_create"))]);
    f.app = Some(AppFixture {
        client_id: "client-x".into(),
        client_secret: "secret-x".into(),
        previous_client_secret: None,
    });
    let sim = start(f, |_| {}).await;
    let c = client(&sim);
    let info = c.token_info(A, V, &tok(TOKEN_A)).await.unwrap();
    assert_eq!(info.api_key.as_deref(), Some("client-x"));

    // Refused before sending on a version without the mutation.
    let before = c.request_count();
    let e = c.app_uninstall(A, "2025-04", &tok(TOKEN_A)).await.unwrap_err();
    assert!(
        matches!(e, ShopifyError::InvalidInput(ref m) if m.contains("2025-07")),
        "{e}"
    );
    assert_eq!(c.request_count(), before);

    c.app_uninstall(A, V, &tok(TOKEN_A)).await.unwrap();
    assert!(sim.subscriptions(A).is_empty());
    let e = c.list_subscriptions(A, V, &tok(TOKEN_A)).await.unwrap_err();
    assert_eq!(e, ShopifyError::Unauthorized);
    let e = c.app_uninstall(A, V, &tok(TOKEN_A)).await.unwrap_err();
    assert_eq!(e, ShopifyError::Unauthorized);
    assert!(!e.to_string().contains(TOKEN_A));
    // The other shop's installation is untouched.
    assert!(c.list_subscriptions(B, V, &tok(TOKEN_B)).await.is_ok());
}

#[tokio::test]
async fn drained_bucket_is_waited_for_then_succeeds() {
    let sim = start(
        fixture(vec![sub("orders/create", &format!("{HOST}/orders_create"))]),
        // 4 s to refill the listing's points: the first request is
        // throttled however slow it is to arrive on a loaded machine.
        |c| {
            c.restore_rate = 100.0;
        },
    )
    .await;
    let c = client(&sim);
    let t = tok(TOKEN_A);
    sim.inject(Fault::DrainBucket { shop: A.into() });
    let listing = c.list_subscriptions(A, V, &t).await.unwrap();
    assert_eq!(listing.subscriptions.len(), 1);
    assert_eq!(
        sim.counters(A).throttled,
        1,
        "throttled once, then waited: not hammered"
    );
    assert_eq!(listing.meta.requests, 2);
    // The first list of a shop asks for 100 nodes, ~402 points at 100/s:
    // the wait came from throttleStatus.
    assert!(
        listing.meta.waited >= Duration::from_millis(350),
        "{:?}",
        listing.meta.waited
    );

    // A create is re-sent after THROTTLED (nothing ran) and made exactly once.
    sim.inject(Fault::DrainBucket { shop: A.into() });
    let before = c.stats();
    let r = c.apply(A, V, &t, &[create("orders/paid")]).await.unwrap();
    assert!(matches!(&r[0], ChangeResult::Created(_)), "{r:?}");
    assert_eq!(
        sim.subscriptions(A)
            .iter()
            .filter(|s| s.topic == "ORDERS_PAID")
            .count(),
        1
    );
    assert_eq!(sim.counters(A).mutations, 1);
    // Either the client knew the bucket was low (from the throttled list) or it
    // was told so: never more than one throttled attempt.
    assert!(c.stats().throttled - before.throttled <= 1);
}

#[tokio::test]
async fn one_throttled_shop_does_not_delay_another() {
    // 10 points/s: a drained bucket needs ~75 s for a 752-point listing, so
    // A is still waiting whatever B's request takes on a loaded machine.
    let sim = start(fixture(vec![]), |c| c.restore_rate = 10.0).await;
    let c = client(&sim);
    sim.inject(Fault::DrainBucket { shop: A.into() });
    let ca = c.clone();
    let slow = tokio::spawn(async move { ca.list_subscriptions(A, V, &tok(TOKEN_A)).await });
    // Wait (bounded) until shop A has actually been throttled.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.counters(A).throttled == 0 {
        assert!(Instant::now() < deadline, "shop A was never throttled");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // B's one request is sent at once: it never waits for A's bucket (the
    // timeout only keeps a broken client from hanging the test).
    let fast = tokio::time::timeout(Duration::from_secs(30), c.list_subscriptions(B, V, &tok(TOKEN_B)))
        .await
        .expect("shop B must not wait for shop A's bucket")
        .unwrap();
    assert!(fast.meta.waited.is_zero(), "{:?}", fast.meta.waited);
    assert_eq!(fast.meta.requests, 1);
    assert_eq!(sim.counters(B).throttled, 0);
    assert!(!slow.is_finished(), "shop A is still waiting for its refill");
    let a_bucket = c.bucket_estimate(A).expect("A's bucket is known");
    assert!(a_bucket.available < 752.0);
    slow.abort();
}

#[tokio::test]
async fn fall_forward_and_deprecations_are_surfaced() {
    let sim = start(
        fixture(vec![sub("orders/create", &format!("{HOST}/orders_create"))]),
        |_| {},
    )
    .await;
    let c = client(&sim);
    let t = tok(TOKEN_A);
    assert!(c.last_served_version(A).is_none());
    // 2024-07 is older than anything the simulator serves: it falls forward.
    let listing = c.list_subscriptions(A, "2024-07", &t).await.unwrap();
    assert_eq!(listing.subscriptions.len(), 1);
    assert_eq!(listing.subscriptions[0].address, format!("{HOST}/orders_create"));
    assert!(listing.meta.fell_forward());
    let served = listing.meta.served_version.clone().unwrap();
    assert_ne!(served, "2024-07");
    let last = c.last_served_version(A).unwrap();
    assert_eq!(
        (last.requested.as_str(), last.served.as_str()),
        ("2024-07", served.as_str())
    );
    assert!(last.fell_forward());
    // The other shop has its own record.
    assert!(c.last_served_version(B).is_none());

    // Using a field deprecated in the served version is reported.
    let (_, meta) = c
        .graphql(
            A,
            "2025-10",
            &t,
            "query { webhookSubscriptions(first: 1) { nodes { id endpoint { __typename } } } }",
            serde_json::json!({}),
        )
        .await
        .unwrap();
    assert!(meta.deprecated_reason.is_some(), "{meta:?}");
    assert_eq!(
        c.last_served_version(A).unwrap().deprecated_reason,
        meta.deprecated_reason
    );
}

#[tokio::test]
async fn fall_forward_across_the_uri_change_rebuilds_the_document() {
    // Only 2025-10 and later are served: a request for 2025-07 lands on 2025-10.
    let sim = start(
        fixture(vec![sub("orders/create", &format!("{HOST}/orders_create"))]),
        |c| {
            c.api_versions = vec!["2025-10".into(), "2026-01".into()];
        },
    )
    .await;
    let c = client(&sim);
    let t = tok(TOKEN_A);
    let listing = c.list_subscriptions(A, "2025-07", &t).await.unwrap();
    assert_eq!(listing.meta.served_version.as_deref(), Some("2025-10"));
    assert_eq!(listing.subscriptions[0].address, format!("{HOST}/orders_create"));
    let r = c.apply(A, "2025-07", &t, &[create("orders/paid")]).await.unwrap();
    assert!(
        matches!(&r[0], ChangeResult::Created(s) if s.address.ends_with("/orders_paid")),
        "{r:?}"
    );
}

#[test]
fn client_topic_table_covers_the_simulated_topics() {
    use shopify_admin::{enum_to_rest, rest_to_enum};
    for t in sim::topics::TOPICS {
        assert_eq!(enum_to_rest(&rest_to_enum(t)).as_deref(), Some(*t));
    }
}

#[tokio::test]
async fn oauth_code_exchange_and_refresh() {
    let mut f = fixture(vec![]);
    f.app = Some(AppFixture {
        client_id: "app-id".into(),
        client_secret: "app-secret-value".into(),
        ..Default::default()
    });
    let sim = start(f, |_| {}).await;
    let c = client(&sim);
    let secret = ClientSecret::from("app-secret-value");

    let code = sim.issue_code(A, None).expect("code");
    let grant = c.exchange_code(A, "app-id", &secret, &code, true).await.unwrap();
    assert!(grant.expires_in.is_some_and(|s| s > 0), "{grant:?}");
    let refresh = grant
        .refresh_token
        .clone()
        .expect("expiring tokens come with a refresh token");
    assert_eq!(grant.scopes(), vec!["read_orders", "read_products"]);
    // The granted token is a working Admin API token.
    let info = c.token_info(A, V, &grant.access_token).await.unwrap();
    assert_eq!(info.myshopify_domain, A);

    // Codes are single-use (Shopify answers `invalid_request`, "... was not
    // found or was already used").
    let e = c
        .exchange_code(A, "app-id", &secret, &code, true)
        .await
        .unwrap_err();
    assert!(matches!(&e, ShopifyError::OAuth { .. }), "{e:?}");
    assert!(!e.is_retryable());
    assert_eq!(e.reason(), "OAuthGrantRejected");

    // The refresh grant returns a new, working pair.
    let renewed = c.refresh(A, "app-id", &secret, &refresh).await.unwrap();
    assert_ne!(renewed.access_token, grant.access_token);
    assert!(renewed.refresh_token.is_some());
    assert!(c.list_subscriptions(A, V, &renewed.access_token).await.is_ok());

    // A wrong client secret is rejected, and never echoed.
    let wrong = ClientSecret::from("wrong-secret-value");
    let e = c.refresh(A, "app-id", &wrong, &refresh).await.unwrap_err();
    assert!(
        matches!(&e, ShopifyError::OAuth { error, .. } if error == "invalid_client"),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?}").contains("wrong-secret-value"));

    // Without `expiring`, the token does not expire and has no refresh token.
    let code = sim.issue_code(A, None).expect("code");
    let lifetime = c.exchange_code(A, "app-id", &secret, &code, false).await.unwrap();
    assert_eq!(
        (lifetime.expires_in, lifetime.refresh_token.is_none()),
        (None, true)
    );
}

#[tokio::test]
async fn a_small_bucket_shrinks_pages_and_splits_plans() {
    // A 400-point bucket: a 250-item page (752 points) and a 50-change
    // document (500 points) can never be paid for in one go.
    let subs: Vec<SubscriptionFixture> = (0..300)
        .map(|i| sub("orders/create", &format!("{HOST}/orders_create/{i}")))
        .collect();
    let sim = start(fixture(subs), |c| {
        c.bucket_size = 400.0;
        c.restore_rate = 100_000.0;
    })
    .await;
    let c = client(&sim);
    let t = tok(TOKEN_A);
    let listing = c.list_subscriptions(A, V, &t).await.unwrap();
    assert_eq!(listing.subscriptions.len(), 300);
    assert!(listing.meta.requests >= 4, "{:?}", listing.meta);

    let changes: Vec<Change> = (0..50)
        .map(|i| Change::Create {
            topic: "products/update".into(),
            address: format!("{HOST}/products_update/{i}"),
            format: Format::Json,
            options: Default::default(),
        })
        .collect();
    let (results, meta) = c.apply_with_meta(A, V, &t, &changes).await.unwrap();
    assert_eq!(results.len(), 50);
    for (i, r) in results.iter().enumerate() {
        assert!(
            matches!(r, ChangeResult::Created(s) if s.address == format!("{HOST}/products_update/{i}")),
            "{i}: {r:?}"
        );
    }
    // Split to what fits (40 changes of 10 points), not to one per request.
    assert!(meta.requests >= 2 && meta.requests <= 4, "{meta:?}");
    assert_eq!(sim.counters(A).mutations, 50, "each change applied exactly once");
    assert_eq!(sim.subscriptions(A).len(), 350);
}
