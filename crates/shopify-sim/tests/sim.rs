//! Integration tests of shopify-sim over raw HTTP (reqwest + serde_json), so
//! they check the wire format a real client sees, independently of our own
//! Shopify client.

mod common;

use common::{
    OTHER, OTHER_TOKEN, SHOP, TOKEN, authorize_url, gql, gql_as, post_graphql, token_request, user_errors,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shopify_sim::{
    self as sim, AppFixture, Fault, Fixture, ShopFixture, Sim, SimConfig, SubscriptionFixture, TokenFixture,
};
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "test-client-id";
const CLIENT_SECRET: &str = "test-client-secret";
const UNAUTHORIZED: &str = "[API] Invalid API key or access token (unrecognized login or wrong password)";

fn fixture() -> Fixture {
    let shop = |domain: &str, token: &str| ShopFixture {
        domain: domain.into(),
        name: Some(format!("{domain} name")),
        plan: Some("Shopify Plus".into()),
        tokens: vec![TokenFixture {
            access_token: token.into(),
            scopes: vec!["read_orders".into(), "read_products".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    Fixture {
        shops: vec![shop(SHOP, TOKEN), shop(OTHER, OTHER_TOKEN)],
        app: Some(AppFixture {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            ..Default::default()
        }),
        apps: Vec::new(),
    }
}

async fn start_with(f: impl FnOnce(&mut SimConfig)) -> Sim {
    let mut cfg = SimConfig {
        fixture: fixture(),
        ..SimConfig::default()
    };
    f(&mut cfg);
    sim::start(cfg).await.expect("sim starts")
}

async fn start() -> Sim {
    start_with(|_| {}).await
}

fn assert_cost(body: &Value) {
    let cost = &body["extensions"]["cost"];
    assert!(cost["requestedQueryCost"].is_u64(), "no cost extension in {body}");
    assert!(cost["throttleStatus"]["maximumAvailable"].is_number(), "{body}");
    assert!(cost["throttleStatus"]["currentlyAvailable"].is_number(), "{body}");
    assert!(cost["throttleStatus"]["restoreRate"].is_number(), "{body}");
}

const LIST: &str = r#"query($first: Int!, $after: String, $topics: [WebhookSubscriptionTopic!]) {
  webhookSubscriptions(first: $first, after: $after, topics: $topics) {
    edges { cursor node { id topic } }
    pageInfo { hasNextPage endCursor }
  }
}"#;

const CREATE_OLD: &str = r#"mutation($topic: WebhookSubscriptionTopic!, $url: URL!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {callbackUrl: $url, format: JSON}) {
    webhookSubscription { id topic callbackUrl format }
    userErrors { field message }
  }
}"#;

const CREATE_NEW: &str = r#"mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri}) {
    webhookSubscription { id topic uri createdAt updatedAt legacyResourceId apiVersion { handle } }
    userErrors { field message }
  }
}"#;

#[tokio::test]
async fn listing_paginates_past_250_by_following_end_cursor() {
    let sim = start().await;
    let topics = ["ORDERS_CREATE", "PRODUCTS_UPDATE", "APP_UNINSTALLED"];
    for i in 0..600 {
        sim.add_subscription(
            SHOP,
            topics[i % 3],
            &format!("https://hooks.example.com/{i}"),
            "JSON",
        );
    }
    let mut ids = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let r = gql(&sim, "2025-07", LIST, json!({"first": 250, "after": after})).await;
        assert_eq!(r.status, 200);
        assert_cost(&r.body);
        let conn = &r.body["data"]["webhookSubscriptions"];
        let edges = conn["edges"].as_array().expect("edges");
        ids.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_string()),
        );
        pages += 1;
        // The actual cost reflects what came back, not what was asked for.
        let actual = r.body["extensions"]["cost"]["actualQueryCost"].as_u64().unwrap();
        assert_eq!(actual, 2 + edges.len() as u64);
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
        assert!(pages < 10, "pagination does not terminate");
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 600);
    let numeric: Vec<u64> = ids
        .iter()
        .map(|id| {
            id.strip_prefix("gid://shopify/WebhookSubscription/")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        numeric.windows(2).all(|w| w[0] < w[1]),
        "ordered by id, no repeats"
    );

    let r = gql(&sim, "2025-07", LIST, json!({"first": 251})).await;
    assert!(r.body.get("data").is_none_or(|d| d.is_null()), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"].as_str().unwrap().contains("250"),
        "{}",
        r.body
    );

    let r = gql(
        &sim,
        "2025-07",
        "{ webhookSubscriptions { nodes { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.body["errors"][0]["message"],
        "you must provide one of first or last"
    );
}

#[tokio::test]
async fn topics_filter_returns_only_those_topics() {
    let sim = start().await;
    sim.add_subscription(SHOP, "ORDERS_CREATE", "https://hooks.example.com/a", "JSON");
    sim.add_subscription(SHOP, "PRODUCTS_UPDATE", "https://hooks.example.com/b", "JSON");
    sim.add_subscription(SHOP, "ORDERS_CREATE", "https://hooks.example.com/c", "XML");
    sim.add_subscription(OTHER, "ORDERS_CREATE", "https://hooks.example.com/x", "JSON");
    let r = gql(
        &sim,
        "2025-07",
        LIST,
        json!({"first": 10, "topics": ["ORDERS_CREATE"]}),
    )
    .await;
    let edges = r.body["data"]["webhookSubscriptions"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 2, "{}", r.body);
    assert!(edges.iter().all(|e| e["node"]["topic"] == "ORDERS_CREATE"));
    let r = gql(
        &sim,
        "2025-07",
        r#"{ webhookSubscriptions(first: 10, format: XML) { nodes { callbackUrl } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        r.body["data"]["webhookSubscriptions"]["nodes"],
        json!([{"callbackUrl": "https://hooks.example.com/c"}])
    );
    let r = gql(
        &sim,
        "2025-07",
        LIST,
        json!({"first": 10, "topics": ["SHOP_REDACT"]}),
    )
    .await;
    assert!(
        r.body["errors"].is_array() && r.body.get("data").is_none(),
        "compliance topic is not in the enum: {}",
        r.body
    );
}

#[tokio::test]
async fn address_fields_depend_on_the_version() {
    let sim = start().await;
    sim.add_subscription(SHOP, "ORDERS_CREATE", "https://hooks.example.com/a", "JSON");
    let q_uri = "{ webhookSubscriptions(first: 5) { nodes { uri } } }";
    let r = gql(&sim, "2025-07", q_uri, json!({})).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.get("data").is_none(),
        "validation errors carry no data: {}",
        r.body
    );
    assert_eq!(
        r.body["errors"][0]["message"],
        "Field 'uri' doesn't exist on type 'WebhookSubscription'"
    );
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "undefinedField");
    assert_cost(&r.body);

    let q_old = "{ webhookSubscriptions(first: 5) { nodes { callbackUrl endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } } } }";
    let r = gql(&sim, "2025-07", q_old, json!({})).await;
    let node = &r.body["data"]["webhookSubscriptions"]["nodes"][0];
    assert_eq!(node["callbackUrl"], "https://hooks.example.com/a");
    assert_eq!(node["endpoint"]["__typename"], "WebhookHttpEndpoint");
    assert_eq!(node["endpoint"]["callbackUrl"], "https://hooks.example.com/a");
    assert_eq!(r.deprecated, None);

    let r = gql(&sim, "2025-10", q_uri, json!({})).await;
    assert_eq!(
        r.body["data"]["webhookSubscriptions"]["nodes"][0]["uri"],
        "https://hooks.example.com/a"
    );
    assert_eq!(r.deprecated, None);
    // callbackUrl survives on 2025-10 but is deprecated, and Shopify says so.
    let r = gql(&sim, "2025-10", q_old, json!({})).await;
    assert_eq!(
        r.body["data"]["webhookSubscriptions"]["nodes"][0]["callbackUrl"],
        "https://hooks.example.com/a"
    );
    assert!(r.deprecated.is_some());

    // Inputs follow the same switch.
    let r = gql(
        &sim,
        "2025-07",
        CREATE_NEW,
        json!({"topic": "ORDERS_PAID", "uri": "https://hooks.example.com/p"}),
    )
    .await;
    assert!(
        r.body["errors"].is_array() && r.body.get("data").is_none(),
        "{}",
        r.body
    );
    assert_eq!(sim.subscriptions(SHOP).len(), 1);

    let plan = "{ shop { plan { publicDisplayName } } }";
    let r = gql(&sim, "2025-04", plan, json!({})).await;
    assert_eq!(
        r.body["errors"][0]["message"],
        "Field 'publicDisplayName' doesn't exist on type 'ShopPlan'"
    );
    let r = gql(&sim, "2025-07", plan, json!({})).await;
    assert_eq!(
        r.body["data"]["shop"]["plan"]["publicDisplayName"],
        "Shopify Plus"
    );
}

#[tokio::test]
async fn create_update_delete_with_user_errors() {
    let sim = start().await;
    let r = gql(
        &sim,
        "2025-10",
        CREATE_NEW,
        json!({"topic": "ORDERS_CREATE", "uri": "https://hooks.example.com/o"}),
    )
    .await;
    assert_cost(&r.body);
    let created = &r.body["data"]["webhookSubscriptionCreate"]["webhookSubscription"];
    let id = created["id"].as_str().expect("created").to_string();
    assert!(id.starts_with("gid://shopify/WebhookSubscription/"));
    assert_eq!(created["legacyResourceId"], id.rsplit('/').next().unwrap());
    assert_eq!(created["apiVersion"]["handle"], "2025-07");
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(user_errors(&r.body, "webhookSubscriptionCreate"), vec![]);

    let cases = [
        (
            "https://hooks.example.com/o",
            "Address for this topic has already been taken",
        ),
        (
            "http://hooks.example.com/o",
            "Address protocol http:// is not supported",
        ),
        ("https://127.0.0.1/o", "Address is an internal address"),
        ("https://localhost:8443/o", "Address is an internal address"),
        ("https://10.0.0.8/o", "Address is an internal address"),
        ("not a url", "Address is invalid"),
    ];
    for (uri, message) in cases {
        let r = gql(
            &sim,
            "2025-10",
            CREATE_NEW,
            json!({"topic": "ORDERS_CREATE", "uri": uri}),
        )
        .await;
        assert_eq!(
            user_errors(&r.body, "webhookSubscriptionCreate"),
            vec![(json!(["webhookSubscription", "uri"]), message.to_string())],
            "{uri}"
        );
        assert!(r.body["data"]["webhookSubscriptionCreate"]["webhookSubscription"].is_null());
    }
    // Old versions point the error at callbackUrl.
    let r = gql(
        &sim,
        "2025-07",
        CREATE_OLD,
        json!({"topic": "ORDERS_CREATE", "url": "https://hooks.example.com/o"}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionCreate")[0].0,
        json!(["webhookSubscription", "callbackUrl"])
    );
    // Same address on another topic is fine.
    let r = gql(
        &sim,
        "2025-07",
        CREATE_OLD,
        json!({"topic": "ORDERS_UPDATED", "url": "https://hooks.example.com/o"}),
    )
    .await;
    assert_eq!(
        r.body["data"]["webhookSubscriptionCreate"]["webhookSubscription"]["topic"],
        "ORDERS_UPDATED"
    );
    assert_eq!(sim.subscriptions(SHOP).len(), 2);

    let update = r#"mutation($id: ID!, $uri: String, $fields: [String!]) {
      webhookSubscriptionUpdate(id: $id, webhookSubscription: {uri: $uri, includeFields: $fields}) {
        webhookSubscription { id uri includeFields format }
        userErrors { field message }
      }
    }"#;
    let r = gql(
        &sim,
        "2025-10",
        update,
        json!({"id": id, "uri": "https://hooks.example.com/new", "fields": ["id"]}),
    )
    .await;
    let updated = &r.body["data"]["webhookSubscriptionUpdate"]["webhookSubscription"];
    assert_eq!(updated["uri"], "https://hooks.example.com/new", "{}", r.body);
    assert_eq!(updated["includeFields"], json!(["id"]));
    assert_eq!(updated["format"], "JSON", "unset fields are kept");
    let stored = sim.subscriptions(SHOP).into_iter().find(|s| s.id == id).unwrap();
    assert_eq!(stored.address, "https://hooks.example.com/new");

    let missing = "gid://shopify/WebhookSubscription/999999";
    let r = gql(
        &sim,
        "2025-10",
        update,
        json!({"id": missing, "uri": "https://hooks.example.com/z"}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionUpdate"),
        vec![(json!(["id"]), "Webhook subscription does not exist".to_string())]
    );

    let delete = r#"mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } } }"#;
    let r = gql(&sim, "2025-10", delete, json!({"id": id})).await;
    assert_eq!(
        r.body["data"]["webhookSubscriptionDelete"]["deletedWebhookSubscriptionId"],
        id
    );
    assert_eq!(sim.subscriptions(SHOP).len(), 1);
    let r = gql(&sim, "2025-10", delete, json!({"id": id})).await;
    assert!(r.body["data"]["webhookSubscriptionDelete"]["deletedWebhookSubscriptionId"].is_null());
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionDelete"),
        vec![(json!(["id"]), "Webhook subscription does not exist".to_string())]
    );
}

#[tokio::test]
async fn insecure_addresses_are_accepted_only_when_allowed() {
    let sim = start_with(|c| c.allow_insecure_addresses = true).await;
    let r = gql(
        &sim,
        "2025-10",
        CREATE_NEW,
        json!({"topic": "ORDERS_CREATE", "uri": "http://127.0.0.1:9999/h"}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionCreate"), vec![]);
    assert_eq!(sim.subscriptions(SHOP)[0].address, "http://127.0.0.1:9999/h");
}

#[tokio::test]
async fn aliased_mutations_apply_independently_and_each_costs_ten() {
    let sim = start().await;
    let _ = gql(&sim, "2025-10", "{ shop { name } }", json!({})).await;
    assert_eq!(
        sim.counters(SHOP).last_mutation_at,
        None,
        "a query is no mutation"
    );
    let before = std::time::Instant::now();
    let doc = r#"mutation {
      a: webhookSubscriptionCreate(topic: ORDERS_CREATE, webhookSubscription: {uri: "https://hooks.example.com/1"}) { webhookSubscription { id } userErrors { field message } }
      b: webhookSubscriptionCreate(topic: ORDERS_CREATE, webhookSubscription: {uri: "https://hooks.example.com/1"}) { webhookSubscription { id } userErrors { field message } }
      c: webhookSubscriptionCreate(topic: PRODUCTS_UPDATE, webhookSubscription: {uri: "https://hooks.example.com/2"}) { webhookSubscription { id } userErrors { field message } }
    }"#;
    let r = gql(&sim, "2025-10", doc, json!({})).await;
    assert_eq!(user_errors(&r.body, "a"), vec![]);
    assert_eq!(
        user_errors(&r.body, "b")[0].1,
        "Address for this topic has already been taken"
    );
    assert_eq!(user_errors(&r.body, "c"), vec![]);
    assert!(r.body["data"]["b"]["webhookSubscription"].is_null());
    let subs = sim.subscriptions(SHOP);
    assert_eq!(subs.len(), 2);
    assert_eq!(
        subs[0].id,
        r.body["data"]["a"]["webhookSubscription"]["id"].as_str().unwrap()
    );
    assert_eq!(r.body["extensions"]["cost"]["requestedQueryCost"], 30);
    assert_eq!(r.body["extensions"]["cost"]["actualQueryCost"], 30);
    let c = sim.counters(SHOP);
    assert_eq!(c.operation("webhookSubscriptionCreate"), 3);
    assert_eq!(c.mutations, 3);
    assert!(c.last_mutation_at.is_some_and(|t| t >= before));
}

#[tokio::test]
async fn bad_missing_and_revoked_tokens_get_401_and_unknown_shops_404() {
    let sim = start().await;
    let http = reqwest::Client::new();
    let q = json!({"query": "{ shop { name } }"});
    for token in [Some("shpat_wrong"), None, Some(OTHER_TOKEN)] {
        let r = post_graphql(&http, &sim, SHOP, "2025-07", token, q.clone()).await;
        assert_eq!(r.status, 401, "{token:?}");
        assert_eq!(r.body, json!({"errors": UNAUTHORIZED}));
    }
    let r = post_graphql(&http, &sim, SHOP, "2025-07", Some(TOKEN), q.clone()).await;
    assert_eq!(r.body["data"]["shop"]["name"], format!("{SHOP} name"));
    sim.revoke_token(SHOP);
    let r = post_graphql(&http, &sim, SHOP, "2025-07", Some(TOKEN), q.clone()).await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::UNAUTHORIZED, json!({"errors": UNAUTHORIZED}))
    );
    // Revoking one shop leaves the other alone.
    let r = post_graphql(&http, &sim, OTHER, "2025-07", Some(OTHER_TOKEN), q.clone()).await;
    assert_eq!(r.status, 200);

    let r = post_graphql(
        &http,
        &sim,
        "nope.myshopify.com",
        "2025-07",
        Some(TOKEN),
        q.clone(),
    )
    .await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::NOT_FOUND, json!({"errors": "Not Found"}))
    );
    let r = post_graphql(&http, &sim, OTHER, "2025-08", Some(OTHER_TOKEN), q.clone()).await;
    assert_eq!(r.status, 404, "malformed version");

    let raw = http
        .post(sim.graphql_url(OTHER, "2025-07"))
        .header("X-Shopify-Access-Token", OTHER_TOKEN)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert!(raw.json::<Value>().await.unwrap()["errors"].is_object());
    let c = sim.counters(SHOP);
    assert_eq!((c.status(401), c.status(200)), (4, 1));
}

#[tokio::test]
async fn cost_extension_is_on_every_graphql_response() {
    let sim = start().await;
    let r = gql(
        &sim,
        "2025-07",
        "{ shop { name plan { displayName } } }",
        json!({}),
    )
    .await;
    assert_cost(&r.body);
    assert_eq!(r.body["extensions"]["cost"]["requestedQueryCost"], 2);
    assert_eq!(r.body["extensions"]["cost"]["actualQueryCost"], 2);
    assert_eq!(
        r.body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"],
        1000.0
    );
    assert_eq!(
        r.body["extensions"]["cost"]["throttleStatus"]["restoreRate"],
        100.0
    );
    let r = gql(&sim, "2025-07", "{ shop { nope } }", json!({})).await;
    assert_cost(&r.body);
    assert!(r.body["extensions"]["cost"]["actualQueryCost"].is_null());
    let r = gql(&sim, "2025-07", "{ shop { name ", json!({})).await;
    assert_eq!(r.status, 200);
    assert!(r.body["errors"].is_array());
    assert_cost(&r.body);
    let r = gql(
        &sim,
        "2025-07",
        "{ currentAppInstallation { accessScopes { handle } } }",
        json!({}),
    )
    .await;
    assert_cost(&r.body);
    assert_eq!(
        r.body["data"]["currentAppInstallation"]["accessScopes"],
        json!([{"handle": "read_orders"}, {"handle": "read_products"}])
    );
}

#[tokio::test]
async fn throttled_when_drained_then_served_after_the_restore_rate() {
    // 10 s to refill the mutation's 10 points: the first request is
    // throttled however slow it is to arrive on a loaded machine.
    let sim = start_with(|c| c.restore_rate = 1.0).await;
    sim.inject(Fault::DrainBucket { shop: SHOP.into() });
    let create = json!({"topic": "ORDERS_CREATE", "uri": "https://hooks.example.com/t"});
    let r = gql(&sim, "2025-10", CREATE_NEW, create.clone()).await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("data").is_none(), "{}", r.body);
    assert_eq!(r.body["errors"][0]["message"], "Throttled");
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "THROTTLED");
    assert_eq!(r.body["extensions"]["cost"]["requestedQueryCost"], 10);
    assert!(r.body["extensions"]["cost"]["actualQueryCost"].is_null());
    assert!(
        r.body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
            .as_u64()
            .unwrap()
            < 10
    );
    assert!(
        sim.subscriptions(SHOP).is_empty(),
        "a throttled mutation must not execute"
    );

    // Another shop's bucket is untouched.
    let r = gql_as(&sim, OTHER, OTHER_TOKEN, "2025-10", CREATE_NEW, create.clone()).await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionCreate"), vec![]);

    // Poll with a deadline until the bucket has refilled enough.
    let deadline = Instant::now() + Duration::from_secs(60);
    let r = loop {
        let r = gql(&sim, "2025-10", CREATE_NEW, create.clone()).await;
        if r.body.get("data").is_some() || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionCreate"),
        vec![],
        "{}",
        r.body
    );
    assert_eq!(sim.subscriptions(SHOP).len(), 1);
    let c = sim.counters(SHOP);
    assert!(c.throttled >= 1);
    assert_eq!(c.mutations, 1);
}

#[tokio::test]
async fn queries_over_the_single_query_limit_are_refused() {
    let sim = start().await;
    let one =
        "a: webhookSubscriptions(first: 250) { nodes { id apiVersion { handle } endpoint { __typename } } }";
    let r = gql(&sim, "2025-07", &format!("{{ {one} }}"), json!({})).await;
    assert_eq!(r.body["extensions"]["cost"]["requestedQueryCost"], 2 + 250 * 3);
    assert!(r.body["data"]["a"].is_object(), "{}", r.body);
    let two = format!("{{ {one} {} }}", one.replacen("a:", "b:", 1));
    let r = gql(&sim, "2025-07", &two, json!({})).await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED",
        "{}",
        r.body
    );
    assert_eq!(
        r.body["extensions"]["cost"]["requestedQueryCost"],
        2 * (2 + 250 * 3)
    );
    assert!(r.body.get("data").is_none());
    assert_eq!(sim.counters(SHOP).operation("webhookSubscriptions"), 3);
}

#[tokio::test]
async fn status_faults_fire_n_times_then_service_resumes() {
    let sim = start().await;
    let http = reqwest::Client::new();
    let q = json!({"query": "{ shop { name } }"});
    sim.inject(Fault::Status {
        shop: Some(SHOP.into()),
        status: 503,
        count: 2,
    });
    for _ in 0..2 {
        let r = post_graphql(&http, &sim, SHOP, "2025-07", Some(TOKEN), q.clone()).await;
        assert_eq!(r.status, 503);
        assert!(r.body["errors"].is_string());
        // The fault is scoped to its shop.
        let r = post_graphql(&http, &sim, OTHER, "2025-07", Some(OTHER_TOKEN), q.clone()).await;
        assert_eq!(r.status, 200);
    }
    let r = post_graphql(&http, &sim, SHOP, "2025-07", Some(TOKEN), q.clone()).await;
    assert_eq!(r.status, 200);

    sim.inject(Fault::Status {
        shop: None,
        status: 429,
        count: 1,
    });
    let r = post_graphql(&http, &sim, OTHER, "2025-07", Some(OTHER_TOKEN), q.clone()).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.retry_after.as_deref(), Some("2"));
    for status in [402, 403, 423, 500] {
        sim.inject(Fault::Status {
            shop: None,
            status,
            count: 1,
        });
        let r = post_graphql(&http, &sim, SHOP, "2025-07", Some(TOKEN), q.clone()).await;
        assert_eq!(r.status.as_u16(), status);
        assert!(r.body["errors"].is_string(), "{status}: {}", r.body);
    }
    let c = sim.counters(SHOP);
    assert_eq!((c.status(503), c.status(200), c.status(500)), (2, 1, 1));
}

#[tokio::test]
async fn timeout_after_apply_hides_a_mutation_that_happened() {
    let sim = start().await;
    sim.inject(Fault::TimeoutAfterApply {
        shop: Some(SHOP.into()),
        count: 1,
        hang: Duration::from_secs(30),
        mutations_only: false,
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let body = json!({"query": CREATE_NEW, "variables": {"topic": "ORDERS_CREATE", "uri": "https://hooks.example.com/lost"}});
    let err = http
        .post(sim.graphql_url(SHOP, "2025-10"))
        .header("X-Shopify-Access-Token", TOKEN)
        .json(&body)
        .send()
        .await
        .expect_err("the response never comes");
    assert!(err.is_timeout(), "{err:?}");
    // Applied before the hang; polled only so a loaded machine cannot flake.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.subscriptions(SHOP).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let subs = sim.subscriptions(SHOP);
    assert_eq!(subs.len(), 1, "the mutation was applied");
    assert_eq!(subs[0].address, "https://hooks.example.com/lost");
    // The next request is served normally and sees the duplicate.
    let r = gql(&sim, "2025-10", CREATE_NEW, body["variables"].clone()).await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionCreate")[0].1,
        "Address for this topic has already been taken"
    );
    assert_eq!(sim.counters(SHOP).dropped, 1);
}

#[tokio::test]
async fn drop_connection_fails_the_request_without_applying_it() {
    let sim = start().await;
    sim.inject(Fault::DropConnection { shop: None, count: 1 });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let body = json!({"query": CREATE_NEW, "variables": {"topic": "ORDERS_CREATE", "uri": "https://hooks.example.com/d"}});
    let err = http
        .post(sim.graphql_url(SHOP, "2025-10"))
        .header("X-Shopify-Access-Token", TOKEN)
        .json(&body)
        .send()
        .await
        .expect_err("connection dropped");
    assert!(!err.is_timeout(), "dropped promptly, not hung: {err:?}");
    assert!(sim.subscriptions(SHOP).is_empty());
    let r = gql(&sim, "2025-10", CREATE_NEW, body["variables"].clone()).await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionCreate"), vec![]);
}

#[tokio::test]
async fn versions_fall_forward_and_the_header_says_so() {
    let sim = start().await;
    let q = "{ shop { myshopifyDomain } }";
    let r = gql(&sim, "2023-04", q, json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.version.as_deref(), Some("2025-01"));
    assert_eq!(r.body["data"]["shop"]["myshopifyDomain"], SHOP);
    let r = gql(&sim, "2025-10", q, json!({})).await;
    assert_eq!(r.version.as_deref(), Some("2025-10"));
    let r = gql(&sim, "unstable", q, json!({})).await;
    assert_eq!(r.version.as_deref(), Some("unstable"));
    // The served version decides the schema: 2024 falls forward to 2025-01, which has no uri.
    let r = gql(
        &sim,
        "2024-10",
        "{ webhookSubscriptions(first: 1) { nodes { uri } } }",
        json!({}),
    )
    .await;
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("'uri'"));
    let r = gql(&sim, "2025-07", "{ shop { plan { displayName } } }", json!({})).await;
    assert!(r.deprecated.is_some(), "displayName is deprecated from 2025-07");
}

#[tokio::test]
async fn oauth_code_exchange_and_refresh_keep_the_previous_refresh_token_until_first_use() {
    let sim = start().await;
    let http = reqwest::Client::new();
    let code = http
        .post(format!("{}/shops/{SHOP}/codes", sim.admin_url()))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["code"]
        .as_str()
        .unwrap()
        .to_string();
    let exchange =
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code, "expiring": 1});
    let (status, body) = token_request(
        &http,
        &sim,
        SHOP,
        json!({"client_id": CLIENT_ID, "client_secret": "wrong", "code": code}),
        false,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    let (status, first) = token_request(&http, &sim, SHOP, exchange.clone(), false).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["scope"], "read_orders,read_products");
    assert_eq!(first["expires_in"], 3600);
    assert_eq!(first["refresh_token_expires_in"], 7_776_000);
    let (status, body) = token_request(&http, &sim, SHOP, exchange, false).await;
    assert_eq!(status, 400, "codes are single use");
    assert!(body["error"].is_string());

    let at1 = first["access_token"].as_str().unwrap();
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let r = gql_as(&sim, SHOP, at1, "2025-07", "{ shop { name } }", json!({})).await;
    assert_eq!(r.status, 200);

    let refresh = |rt: &str| json!({"grant_type": "refresh_token", "refresh_token": rt, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET});
    let (status, second) = token_request(&http, &sim, SHOP, refresh(&rt1), true).await;
    assert_eq!(status, 200, "{second}");
    // The response was "lost": the previous refresh token still works...
    let (status, third) = token_request(&http, &sim, SHOP, refresh(&rt1), true).await;
    assert_eq!(status, 200, "{third}");
    assert_ne!(second["access_token"], third["access_token"]);
    // ...until a newly issued access token is used.
    let at3 = third["access_token"].as_str().unwrap();
    let r = gql_as(&sim, SHOP, at3, "2025-07", "{ shop { name } }", json!({})).await;
    assert_eq!(r.status, 200);
    let (status, _) = token_request(&http, &sim, SHOP, refresh(&rt1), true).await;
    assert_eq!(status, 400, "retired after the new access token was used");
    let (status, fourth) = token_request(
        &http,
        &sim,
        SHOP,
        refresh(third["refresh_token"].as_str().unwrap()),
        true,
    )
    .await;
    assert_eq!(status, 200, "{fourth}");

    // Non-expiring exchange: no refresh token.
    let code = sim.issue_code(SHOP, Some(vec!["read_orders".into()])).unwrap();
    let (status, body) = token_request(
        &http,
        &sim,
        SHOP,
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code}),
        true,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "read_orders");
    assert!(body.get("refresh_token").is_none());

    // Expired access tokens answer 401.
    sim.expire_access_tokens(SHOP);
    let r = gql_as(
        &sim,
        SHOP,
        fourth["access_token"].as_str().unwrap(),
        "2025-07",
        "{ shop { name } }",
        json!({}),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(sim.counters(SHOP).operation("access_token"), 8);
}

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const OFFLINE: &str = "urn:shopify:params:oauth:token-type:offline-access-token";

fn migration(subject: &str) -> Value {
    json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": TOKEN_EXCHANGE,
           "subject_token": subject, "subject_token_type": OFFLINE, "requested_token_type": OFFLINE,
           "expiring": "1"})
}

#[tokio::test]
async fn token_exchange_migrates_once_and_a_retry_returns_the_same_pair() {
    let sim = start().await;
    let http = reqwest::Client::new();
    let mut bad = migration(TOKEN);
    bad["subject_token_type"] = json!("urn:ietf:params:oauth:token-type:access_token");
    assert_eq!(token_request(&http, &sim, SHOP, bad, false).await.0, 400);
    let (status, first) = token_request(&http, &sim, SHOP, migration(TOKEN), false).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["expires_in"], 3600);
    let (at, rt) = (
        first["access_token"].as_str().unwrap().to_string(),
        first["refresh_token"].as_str().unwrap().to_string(),
    );
    // The original token no longer works; the new one does.
    let r = gql_as(&sim, SHOP, TOKEN, "2025-07", "{ shop { name } }", json!({})).await;
    assert_eq!(r.status, 401);
    let r = gql_as(&sim, SHOP, &at, "2025-07", "{ shop { name } }", json!({})).await;
    assert_eq!(r.status, 200);
    // A lost response is recovered: the same pair again.
    let (status, again) = token_request(&http, &sim, SHOP, migration(TOKEN), true).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["access_token"], at.as_str());
    assert_eq!(again["refresh_token"], rt.as_str());
    // An expiring token is not migrated.
    let (status, body) = token_request(&http, &sim, SHOP, migration(&at), false).await;
    assert_eq!(status, 400, "{body}");
    // Refreshing the issued pair ends the retry window.
    let refresh = json!({"grant_type": "refresh_token", "refresh_token": rt, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET});
    assert_eq!(token_request(&http, &sim, SHOP, refresh, false).await.0, 200);
    assert_eq!(
        token_request(&http, &sim, SHOP, migration(TOKEN), false).await.0,
        400
    );
}

#[tokio::test]
async fn the_authorize_page_redirects_with_a_signed_callback_and_a_single_use_code() {
    let sim = start_with(|c| {
        c.fixture.app.as_mut().unwrap().previous_client_secret = Some("old-secret".into());
    })
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = |client_id: &str, redirect: &str| authorize_url(&sim, SHOP, client_id, redirect);
    let r = http
        .get(authorize("someone-else", "https://app.example/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http.get(authorize(CLIENT_ID, "not a url")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(authorize(CLIENT_ID, "https://app.example/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/cb");
    let query = location.query().unwrap();
    let params: std::collections::BTreeMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(params["shop"], SHOP);
    assert_eq!(params["state"], "nonce-1");
    for k in ["code", "hmac", "host", "timestamp"] {
        assert!(params.contains_key(k), "{k}");
    }
    // Signed with the oldest unrevoked secret: the previous one.
    use shopify_admin::{ClientSecret, SecretUsed, verify_oauth_query};
    assert_eq!(
        verify_oauth_query(
            query,
            &ClientSecret::from(CLIENT_SECRET),
            Some(&ClientSecret::from("old-secret"))
        ),
        Some(SecretUsed::Previous)
    );
    assert_eq!(
        verify_oauth_query(query, &ClientSecret::from(CLIENT_SECRET), None),
        None
    );
    let exchange = json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": params["code"]});
    let (status, body) = token_request(&http, &sim, SHOP, exchange.clone(), false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read_orders");
    assert_eq!(token_request(&http, &sim, SHOP, exchange, false).await.0, 400);
}

#[tokio::test]
async fn seed_fixture_loads_three_shops_with_the_rails_webhooks() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sim-seed.yaml");
    let seed = Fixture::from_file(path).expect("seed parses");
    assert_eq!(seed.shops.len(), 3);
    let sim = sim::start(SimConfig {
        fixture: seed.clone(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let q = "{ webhookSubscriptions(first: 50) { nodes { topic format callbackUrl } } }";
    for shop in &seed.shops {
        let token = &shop.tokens[0].access_token;
        let r = gql_as(&sim, &shop.domain, token, "2025-07", q, json!({})).await;
        let nodes = r.body["data"]["webhookSubscriptions"]["nodes"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(nodes.len(), 7, "{}", shop.domain);
        let create = nodes
            .iter()
            .find(|n| n["topic"] == "ORDERS_CREATE")
            .expect("orders/create");
        assert_eq!(
            create["callbackUrl"],
            "https://oms.popsockets.com/webhooks/orders_create"
        );
        assert!(nodes.iter().all(|n| n["format"] == "JSON"));
        assert!(nodes.iter().any(|n| n["topic"] == "APP_UNINSTALLED"));
    }
}

#[tokio::test]
async fn admin_api_loads_inspects_and_injects() {
    let sim = start().await;
    let http = reqwest::Client::new();
    let admin = sim.admin_url();
    let fixture = json!({"shops": [{"domain": "gamma.myshopify.com", "tokens": [{"accessToken": "shpat_gamma"}],
        "subscriptions": [{"topic": "orders/create", "address": "https://hooks.example.com/g"}]}]});
    let r = http
        .post(format!("{admin}/fixture"))
        .json(&fixture)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bad = json!({"shops": [{"domain": "x.myshopify.com", "subscriptions": [{"topic": "customers/redact", "address": "https://h.example.com"}]}]});
    let r = http
        .post(format!("{admin}/fixture"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let subs: Value = http
        .get(format!("{admin}/shops/gamma.myshopify.com/subscriptions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(subs[0]["topic"], "ORDERS_CREATE");
    assert_eq!(subs[0]["address"], "https://hooks.example.com/g");
    let r = http
        .post(format!("{admin}/shops/gamma.myshopify.com/subscriptions"))
        .json(&json!({"topic": "PRODUCTS_UPDATE", "address": "https://hooks.example.com/p", "format": "XML"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let numeric = id.rsplit('/').next().unwrap();
    let r = http
        .delete(format!(
            "{admin}/shops/gamma.myshopify.com/subscriptions/{numeric}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(sim.subscriptions("gamma.myshopify.com").len(), 1);
    let r = http
        .delete(format!(
            "{admin}/shops/gamma.myshopify.com/subscriptions/{numeric}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let r = http
        .post(format!("{admin}/faults"))
        .json(&json!({"type": "status", "shop": "gamma.myshopify.com", "status": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = gql_as(
        &sim,
        "gamma.myshopify.com",
        "shpat_gamma",
        "2025-07",
        "{ shop { name } }",
        json!({}),
    )
    .await;
    assert_eq!(r.status, 500);
    let r = gql_as(
        &sim,
        "gamma.myshopify.com",
        "shpat_gamma",
        "2025-07",
        "{ shop { name } }",
        json!({}),
    )
    .await;
    assert_eq!(r.body["data"]["shop"]["name"], "gamma");

    let counters: Value = http
        .get(format!("{admin}/shops/gamma.myshopify.com/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["requests"], 2);
    assert_eq!(counters["byStatus"]["500"], 1);
    assert_eq!(counters["operations"]["shop"], 1);
    let all: Value = http
        .get(format!("{admin}/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(all.get("gamma.myshopify.com").is_some());
    http.post(format!("{admin}/counters/reset")).send().await.unwrap();
    assert_eq!(sim.counters("gamma.myshopify.com").requests, 0);

    let r = http
        .post(format!("{admin}/shops/gamma.myshopify.com/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = gql_as(
        &sim,
        "gamma.myshopify.com",
        "shpat_gamma",
        "2025-07",
        "{ shop { name } }",
        json!({}),
    )
    .await;
    assert_eq!(r.status, 401);

    let r = http
        .post(format!("{admin}/latency"))
        .json(&json!({"ms": 150}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let started = Instant::now();
    gql(&sim, "2025-07", "{ shop { name } }", json!({})).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    sim.set_latency(Duration::ZERO);

    let sdl = http
        .get(format!("{admin}/schema/2025-10"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(sdl.contains("webhookSubscriptionCreate"));
}

#[tokio::test]
async fn subscriptions_deleted_behind_the_clients_back_disappear_from_listings() {
    let sim = start().await;
    let keep = sim.add_subscription(SHOP, "ORDERS_CREATE", "https://hooks.example.com/k", "JSON");
    let gone = sim.add_subscription(SHOP, "ORDERS_CREATE", "https://hooks.example.com/g", "JSON");
    let dup = sim.add_subscription_with(
        SHOP,
        SubscriptionFixture {
            topic: "orders/create".into(),
            address: "https://hooks.example.com/k".into(),
            include_fields: vec!["id".into(), "note".into()],
            filter: Some("total_price:>100".into()),
            ..Default::default()
        },
    );
    assert_ne!(keep, dup, "drift helpers may create duplicates");
    assert!(sim.delete_subscription(SHOP, &gone));
    assert!(!sim.delete_subscription(SHOP, &gone));
    let r = gql(&sim, "2025-07", LIST, json!({"first": 10})).await;
    let ids: Vec<&str> = r.body["data"]["webhookSubscriptions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [keep.as_str(), dup.as_str()]);
    let q = "{ webhookSubscriptions(first: 10, reverse: true) { nodes { includeFields filter metafieldNamespaces format } } }";
    let r = gql(&sim, "2025-07", q, json!({})).await;
    assert_eq!(
        r.body["data"]["webhookSubscriptions"]["nodes"][0],
        json!({"includeFields": ["id", "note"], "filter": "total_price:>100", "metafieldNamespaces": [], "format": "JSON"})
    );
    let one = r#"query($id: ID!) { webhookSubscription(id: $id) { id topic } }"#;
    let r = gql(&sim, "2025-07", one, json!({"id": keep})).await;
    assert_eq!(r.body["data"]["webhookSubscription"]["id"], keep);
    let r = gql(&sim, "2025-07", one, json!({"id": gone})).await;
    assert!(r.body["data"]["webhookSubscription"].is_null());
    let r = gql(&sim, "2025-07", one, json!({"id": "12"})).await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid global id")
    );
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = start().await;
    let url = sim.graphql_url(SHOP, "2025-07");
    sim.clone().shutdown().await;
    let r = reqwest::Client::new()
        .post(url)
        .header("X-Shopify-Access-Token", TOKEN)
        .json(&json!({"query": "{ shop { name } }"}))
        .send()
        .await;
    assert!(r.is_err(), "still serving after shutdown");
}

/// Throughput probe, not a timed assertion: run with
/// `cargo test --release --test sim -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let sim = start_with(|c| c.restore_rate = 1e9).await;
    let http = reqwest::Client::new();
    let url = sim.graphql_url(SHOP, "2025-07");
    let body = serde_json::to_vec(&json!({"query": "{ shop { name myshopifyDomain } }"})).unwrap();
    let n_tasks = 16;
    let per_task = 2_000;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..n_tasks {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let r = http
                    .post(&url)
                    .header("X-Shopify-Access-Token", TOKEN)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let total = n_tasks * per_task;
    println!(
        "{total} requests in {elapsed:?}: {:.0} req/s",
        total as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(sim.counters(SHOP).status(200), total as u64);
}

#[tokio::test]
async fn throttled_status_and_uri_version_are_configurable() {
    let sim = start_with(|c| {
        c.throttled_http_status = 429;
        c.uri_since = "2025-07".into();
        // Drained stays drained (one point takes 100 s) however slow the
        // next request is to arrive.
        c.restore_rate = 0.01;
    })
    .await;
    sim.add_subscription(SHOP, "ORDERS_CREATE", "https://hooks.example.com/a", "JSON");
    let r = gql(
        &sim,
        "2025-07",
        "{ webhookSubscriptions(first: 1) { nodes { uri } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.body["data"]["webhookSubscriptions"]["nodes"][0]["uri"],
        "https://hooks.example.com/a"
    );
    let r = gql(
        &sim,
        "2025-04",
        "{ webhookSubscriptions(first: 1) { nodes { uri } } }",
        json!({}),
    )
    .await;
    assert!(r.body.get("data").is_none());
    sim.inject(Fault::DrainBucket { shop: SHOP.into() });
    let r = gql(&sim, "2025-07", "{ shop { name } }", json!({})).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "THROTTLED");
    assert_eq!(sim.counters(SHOP).throttled, 1);
}

#[tokio::test]
async fn response_data_keeps_the_query_field_order() {
    let sim = start().await;
    let text = reqwest::Client::new()
        .post(sim.graphql_url(SHOP, "2025-07"))
        .header("X-Shopify-Access-Token", TOKEN)
        .json(&json!({"query": "{ z: shop { name } a: shop { myshopifyDomain name } }"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (z, a) = (text.find("\"z\"").unwrap(), text.find("\"a\"").unwrap());
    assert!(z < a, "{text}");
    assert!(
        text.find("myshopifyDomain").unwrap() < text.rfind("\"name\"").unwrap(),
        "{text}"
    );
}
