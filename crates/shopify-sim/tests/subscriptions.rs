//! The webhook subscription model over raw HTTP: per-version fields
//! (`filter`, `metafields`, `name`), HTTPS / Pub/Sub / EventBridge
//! destinations through `uri` and through the dedicated mutations, partial
//! updates, topic and name rules, and the refuse-filter fault. The facts and
//! their sources are in docs/src/shopify/webhook-subscriptions.md.

mod common;

use common::{OTHER, OTHER_TOKEN, Resp, SHOP, TOKEN, user_errors};
use serde_json::{Value, json};
use shopify_sim::{
    self as sim, APP_RESERVED_NAMESPACE, AppFixture, DEFAULT_FILTER_REFUSAL, Fault, Fixture,
    MetafieldIdentifier, ShopFixture, Sim, SimConfig, SubscriptionFixture, TokenFixture,
};

const ARN: &str = "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/123456/orders";
const ARN2: &str = "arn:aws:events:eu-west-1::event-source/aws.partner/shopify.com/123456/other";

fn fixture() -> Fixture {
    let shop = |domain: &str, token: &str| ShopFixture {
        domain: domain.into(),
        tokens: vec![TokenFixture {
            access_token: token.into(),
            scopes: vec!["read_orders".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    Fixture {
        shops: vec![shop(SHOP, TOKEN), shop(OTHER, OTHER_TOKEN)],
        app: Some(AppFixture {
            client_id: "client".into(),
            client_secret: "secret".into(),
            ..Default::default()
        }),
        apps: Vec::new(),
    }
}

async fn start() -> Sim {
    sim::start(SimConfig {
        fixture: fixture(),
        ..SimConfig::default()
    })
    .await
    .expect("sim starts")
}

/// A GraphQL answer; every request here is a well-formed one (200).
async fn gql_as(sim: &Sim, shop: &str, token: &str, version: &str, query: &str, variables: Value) -> Resp {
    let r = common::gql_as(sim, shop, token, version, query, variables).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

async fn gql(sim: &Sim, version: &str, query: &str, variables: Value) -> Resp {
    gql_as(sim, SHOP, TOKEN, version, query, variables).await
}

/// A GraphQL validation error: `errors`, no `data`.
fn assert_validation_error(body: &Value, needle: &str) {
    assert!(
        body.get("data").is_none(),
        "validation errors carry no data: {body}"
    );
    let messages: Vec<&str> = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"))
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains(needle)),
        "{needle:?} not in {messages:?}"
    );
}

const CREATE: &str = r#"mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id }
    userErrors { field message }
  }
}"#;

const UPDATE: &str = r#"mutation($id: ID!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionUpdate(id: $id, webhookSubscription: $sub) {
    webhookSubscription { id }
    userErrors { field message }
  }
}"#;

const PUBSUB_CREATE: &str = r#"mutation($topic: WebhookSubscriptionTopic!, $sub: PubSubWebhookSubscriptionInput!) {
  pubSubWebhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id }
    userErrors { code field message }
  }
}"#;

const PUBSUB_UPDATE: &str = r#"mutation($id: ID!, $sub: PubSubWebhookSubscriptionInput!) {
  pubSubWebhookSubscriptionUpdate(id: $id, webhookSubscription: $sub) {
    webhookSubscription { id }
    userErrors { code field message }
  }
}"#;

const EVENTBRIDGE_CREATE: &str = r#"mutation($topic: WebhookSubscriptionTopic!, $sub: EventBridgeWebhookSubscriptionInput!) {
  eventBridgeWebhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id }
    userErrors { field message }
  }
}"#;

const EVENTBRIDGE_UPDATE: &str = r#"mutation($id: ID!, $sub: EventBridgeWebhookSubscriptionInput!) {
  eventBridgeWebhookSubscriptionUpdate(id: $id, webhookSubscription: $sub) {
    webhookSubscription { id }
    userErrors { field message }
  }
}"#;

/// Creates through `mutation` and returns the new id, failing on user errors.
async fn created(sim: &Sim, version: &str, mutation: &str, topic: &str, sub: Value) -> String {
    let r = gql(sim, version, mutation, json!({"topic": topic, "sub": sub})).await;
    let data = r.body["data"]
        .as_object()
        .unwrap_or_else(|| panic!("no data: {}", r.body));
    let (alias, payload) = data.iter().next().unwrap();
    assert_eq!(user_errors(&r.body, alias), vec![], "{}", r.body);
    payload["webhookSubscription"]["id"].as_str().unwrap().to_string()
}

/// The one subscription with `id`, as `fields` select it.
async fn read(sim: &Sim, version: &str, id: &str, fields: &str) -> Value {
    let q = format!("query($id: ID!) {{ webhookSubscription(id: $id) {{ {fields} }} }}");
    let r = gql(sim, version, &q, json!({"id": id})).await;
    let node = r.body["data"]["webhookSubscription"].clone();
    assert!(node.is_object(), "{}", r.body);
    node
}

#[tokio::test]
async fn fields_exist_exactly_in_the_versions_that_have_them() {
    let sim = start().await;
    let mf = json!([{"namespace": "custom", "key": "colour"}, {"key": "size"}]);
    let mf_back = json!([
        {"namespace": "custom", "key": "colour"},
        {"namespace": APP_RESERVED_NAMESPACE, "key": "size"}
    ]);

    // 2025-07: filter and metafields, no name; the address is callbackUrl.
    let sub = json!({"callbackUrl": "https://hooks.example.com/a", "filter": "id:>1", "metafields": mf});
    let id = created(&sim, "2025-07", CREATE, "ORDERS_CREATE", sub).await;
    let node = read(
        &sim,
        "2025-07",
        &id,
        "filter metafields { namespace key } callbackUrl",
    )
    .await;
    assert_eq!(node["filter"], "id:>1");
    assert_eq!(node["metafields"], mf_back);
    let named = json!({"callbackUrl": "https://hooks.example.com/n", "name": "orders"});
    let r = gql(
        &sim,
        "2025-07",
        CREATE,
        json!({"topic": "ORDERS_PAID", "sub": named}),
    )
    .await;
    assert_validation_error(&r.body, "name");
    let r = gql(
        &sim,
        "2025-07",
        "{ webhookSubscriptions(first: 5) { nodes { name } } }",
        json!({}),
    )
    .await;
    assert_validation_error(
        &r.body,
        "Field 'name' doesn't exist on type 'WebhookSubscription'",
    );

    // 2025-10: uri, filter and metafields; name is still a validation error
    // (not a userError), and nothing is stored.
    let sub = json!({"uri": "https://hooks.example.com/b", "filter": "id:>2", "metafields": mf});
    let id = created(&sim, "2025-10", CREATE, "ORDERS_UPDATED", sub).await;
    let node = read(&sim, "2025-10", &id, "uri filter metafields { namespace key }").await;
    assert_eq!(
        node,
        json!({"uri": "https://hooks.example.com/b", "filter": "id:>2", "metafields": mf_back})
    );
    let named = json!({"uri": "https://hooks.example.com/n", "name": "orders"});
    let r = gql(
        &sim,
        "2025-10",
        CREATE,
        json!({"topic": "ORDERS_PAID", "sub": named}),
    )
    .await;
    assert_validation_error(&r.body, "name");
    for (version, input) in [
        ("2025-07", "PubSubWebhookSubscriptionInput"),
        ("2025-10", "EventBridgeWebhookSubscriptionInput"),
    ] {
        let doc = format!(
            r#"mutation {{ x: {}(topic: ORDERS_PAID, webhookSubscription: {{ {}, name: "n" }}) {{ userErrors {{ message }} }} }}"#,
            if input.starts_with("PubSub") {
                "pubSubWebhookSubscriptionCreate"
            } else {
                "eventBridgeWebhookSubscriptionCreate"
            },
            if input.starts_with("PubSub") {
                r#"pubSubProject: "p", pubSubTopic: "t""#
            } else {
                r#"arn: "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1/n""#
            },
        );
        let r = gql(&sim, version, &doc, json!({})).await;
        assert_validation_error(&r.body, "name");
    }
    assert_eq!(sim.subscriptions(SHOP).len(), 2);

    // 2026-04: name too, on every input and on the object.
    let sub = json!({"uri": "https://hooks.example.com/c", "filter": "id:>3", "metafields": mf, "name": "orders-paid"});
    let id = created(&sim, "2026-04", CREATE, "ORDERS_PAID", sub).await;
    let node = read(
        &sim,
        "2026-04",
        &id,
        "uri filter name metafields { namespace key }",
    )
    .await;
    assert_eq!(node["name"], "orders-paid");
    assert_eq!(node["metafields"], mf_back);
    let sub = json!({"pubSubProject": "proj", "pubSubTopic": "paid", "name": "paid-pubsub"});
    let id = created(&sim, "2026-04", PUBSUB_CREATE, "ORDERS_PAID", sub).await;
    assert_eq!(read(&sim, "2026-04", &id, "name").await["name"], "paid-pubsub");
    let sub = json!({"arn": ARN, "name": "paid-eventbridge"});
    let id = created(&sim, "2026-04", EVENTBRIDGE_CREATE, "ORDERS_PAID", sub).await;
    assert_eq!(
        read(&sim, "2026-04", &id, "name").await["name"],
        "paid-eventbridge"
    );
    // Listed without a name, a subscription has `name: null`.
    let r = gql(
        &sim,
        "2026-04",
        "{ webhookSubscriptions(first: 10) { nodes { name } } }",
        json!({}),
    )
    .await;
    let names: Vec<Value> = r.body["data"]["webhookSubscriptions"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            Value::Null,
            Value::Null,
            json!("orders-paid"),
            json!("paid-pubsub"),
            json!("paid-eventbridge")
        ]
    );

    // 2025-01 predates metafields (the default `metafields_since` is 2025-04).
    let sub = json!({"callbackUrl": "https://hooks.example.com/d", "metafields": mf});
    let r = gql(
        &sim,
        "2025-01",
        CREATE,
        json!({"topic": "ORDERS_PAID", "sub": sub}),
    )
    .await;
    assert_validation_error(&r.body, "metafields");
}

#[tokio::test]
async fn dedicated_mutations_create_pubsub_and_eventbridge_subscriptions_on_2025_07() {
    let sim = start().await;
    let pubsub = json!({"pubSubProject": "my-project", "pubSubTopic": "orders", "format": "JSON", "includeFields": ["id"]});
    let r = gql(
        &sim,
        "2025-07",
        PUBSUB_CREATE,
        json!({"topic": "ORDERS_CREATE", "sub": pubsub}),
    )
    .await;
    assert_eq!(r.deprecated, None, "not deprecated before 2025-10");
    let pubsub_id = r.body["data"]["pubSubWebhookSubscriptionCreate"]["webhookSubscription"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.body))
        .to_string();
    let bridge = json!({"arn": ARN, "filter": "total_price:>100"});
    let bridge_id = created(&sim, "2025-07", EVENTBRIDGE_CREATE, "ORDERS_CREATE", bridge).await;
    let http = json!({"callbackUrl": "https://hooks.example.com/o"});
    created(&sim, "2025-07", CREATE, "ORDERS_CREATE", http).await;

    // webhookSubscriptions lists all three kinds; `endpoint` tells them apart.
    let q = r#"{ webhookSubscriptions(first: 10) { nodes { id callbackUrl includeFields filter endpoint {
        __typename
        ... on WebhookHttpEndpoint { callbackUrl }
        ... on WebhookPubSubEndpoint { pubSubProject pubSubTopic }
        ... on WebhookEventBridgeEndpoint { arn }
    } } } }"#;
    let r = gql(&sim, "2025-07", q, json!({})).await;
    let nodes = r.body["data"]["webhookSubscriptions"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(nodes.len(), 3, "{}", r.body);
    assert_eq!(nodes[0]["id"], pubsub_id);
    assert_eq!(
        nodes[0]["endpoint"],
        json!({"__typename": "WebhookPubSubEndpoint", "pubSubProject": "my-project", "pubSubTopic": "orders"})
    );
    assert_eq!(nodes[0]["callbackUrl"], "pubsub://my-project:orders");
    assert_eq!(nodes[0]["includeFields"], json!(["id"]));
    assert_eq!(nodes[1]["id"], bridge_id);
    assert_eq!(
        nodes[1]["endpoint"],
        json!({"__typename": "WebhookEventBridgeEndpoint", "arn": ARN})
    );
    assert_eq!(nodes[1]["filter"], "total_price:>100");
    assert_eq!(
        nodes[2]["endpoint"],
        json!({"__typename": "WebhookHttpEndpoint", "callbackUrl": "https://hooks.example.com/o"})
    );
    let addresses: Vec<String> = sim.subscriptions(SHOP).into_iter().map(|s| s.address).collect();
    assert_eq!(
        addresses,
        ["pubsub://my-project:orders", ARN, "https://hooks.example.com/o"]
    );

    // The same destination twice for a topic is taken, across mutations;
    // the Pub/Sub error type carries Shopify's code.
    let again = json!({"pubSubProject": "my-project", "pubSubTopic": "orders"});
    let r = gql(
        &sim,
        "2025-07",
        PUBSUB_CREATE,
        json!({"topic": "ORDERS_CREATE", "sub": again}),
    )
    .await;
    assert_eq!(
        r.body["data"]["pubSubWebhookSubscriptionCreate"]["userErrors"],
        json!([{"code": "TAKEN", "field": ["webhookSubscription", "pubSubTopic"], "message": "Address for this topic has already been taken"}])
    );
    let r = gql(
        &sim,
        "2025-07",
        EVENTBRIDGE_CREATE,
        json!({"topic": "ORDERS_CREATE", "sub": {"arn": ARN}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "eventBridgeWebhookSubscriptionCreate"),
        vec![(
            json!(["webhookSubscription", "arn"]),
            "Address for this topic has already been taken".into()
        )]
    );
    // Another topic may use the same destination.
    created(&sim, "2025-07", PUBSUB_CREATE, "ORDERS_PAID", again.clone()).await;

    // Malformed parts and a missing ARN are user errors, nothing stored.
    let bad = json!({"pubSubProject": "", "pubSubTopic": "a b"});
    let r = gql(
        &sim,
        "2025-07",
        PUBSUB_CREATE,
        json!({"topic": "ORDERS_UPDATED", "sub": bad}),
    )
    .await;
    assert_eq!(
        r.body["data"]["pubSubWebhookSubscriptionCreate"]["userErrors"],
        json!([
            {"code": "INVALID_PARAMETERS", "field": ["webhookSubscription", "pubSubProject"], "message": "Address is invalid"},
            {"code": "INVALID_PARAMETERS", "field": ["webhookSubscription", "pubSubTopic"], "message": "Address is invalid"}
        ])
    );
    let r = gql(
        &sim,
        "2025-07",
        EVENTBRIDGE_CREATE,
        json!({"topic": "ORDERS_UPDATED", "sub": {"format": "JSON"}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "eventBridgeWebhookSubscriptionCreate"),
        vec![(
            json!(["webhookSubscription", "arn"]),
            "Address can't be blank".into()
        )]
    );
    let r = gql(
        &sim,
        "2025-07",
        EVENTBRIDGE_CREATE,
        json!({"topic": "ORDERS_UPDATED", "sub": {"arn": "arn:aws:events:us-east-1:1:event-bus/x"}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "eventBridgeWebhookSubscriptionCreate"),
        vec![(json!(["webhookSubscription", "arn"]), "Address is invalid".into())]
    );
    assert_eq!(sim.subscriptions(SHOP).len(), 4);

    // The dedicated updates move a subscription between kinds; update keeps
    // unset fields.
    let http_id = sim.subscriptions(SHOP)[2].id.clone();
    let r = gql(
        &sim,
        "2025-07",
        PUBSUB_UPDATE,
        json!({"id": http_id, "sub": {"pubSubProject": "p2", "pubSubTopic": "t2"}}),
    )
    .await;
    assert_eq!(
        r.body["data"]["pubSubWebhookSubscriptionUpdate"]["userErrors"],
        json!([]),
        "{}",
        r.body
    );
    let r = gql(
        &sim,
        "2025-07",
        EVENTBRIDGE_UPDATE,
        json!({"id": pubsub_id, "sub": {"arn": ARN2}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "eventBridgeWebhookSubscriptionUpdate"),
        vec![]
    );
    let r = gql(
        &sim,
        "2025-07",
        EVENTBRIDGE_UPDATE,
        json!({"id": bridge_id, "sub": {"format": "XML"}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "eventBridgeWebhookSubscriptionUpdate"),
        vec![]
    );
    let subs = sim.subscriptions(SHOP);
    assert_eq!(subs[0].address, ARN2);
    assert_eq!(subs[0].include_fields, ["id"], "unset fields are kept");
    assert_eq!((subs[1].address.as_str(), subs[1].format.as_str()), (ARN, "XML"));
    assert_eq!(subs[1].filter.as_deref(), Some("total_price:>100"));
    assert_eq!(subs[2].address, "pubsub://p2:t2");
    let missing = "gid://shopify/WebhookSubscription/999999";
    let r = gql(
        &sim,
        "2025-07",
        PUBSUB_UPDATE,
        json!({"id": missing, "sub": {"pubSubProject": "p", "pubSubTopic": "t"}}),
    )
    .await;
    assert_eq!(
        r.body["data"]["pubSubWebhookSubscriptionUpdate"]["userErrors"],
        json!([{"code": "INVALID_PARAMETERS", "field": ["id"], "message": "Webhook subscription does not exist"}])
    );

    // webhookSubscriptionDelete deletes any kind.
    let delete = r#"mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { message } } }"#;
    for id in [&pubsub_id, &bridge_id] {
        let r = gql(&sim, "2025-07", delete, json!({"id": id})).await;
        assert_eq!(
            r.body["data"]["webhookSubscriptionDelete"]["deletedWebhookSubscriptionId"],
            **id
        );
    }
    assert_eq!(sim.subscriptions(SHOP).len(), 2);

    // Each dedicated mutation costs 10 points and is counted by name.
    let c = sim.counters(SHOP);
    assert_eq!(c.operation("pubSubWebhookSubscriptionCreate"), 4);
    assert_eq!(c.operation("eventBridgeWebhookSubscriptionUpdate"), 2);
    let doc = r#"mutation {
      a: pubSubWebhookSubscriptionCreate(topic: ORDERS_FULFILLED, webhookSubscription: {pubSubProject: "p", pubSubTopic: "t"}) { userErrors { message } }
      b: eventBridgeWebhookSubscriptionCreate(topic: ORDERS_FULFILLED, webhookSubscription: {arn: "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1/f"}) { userErrors { message } }
    }"#;
    let r = gql(&sim, "2025-07", doc, json!({})).await;
    assert_eq!(r.body["extensions"]["cost"]["requestedQueryCost"], 20);
    assert_eq!(r.body["extensions"]["cost"]["actualQueryCost"], 20);
}

#[tokio::test]
async fn uri_takes_every_destination_from_2025_10_and_the_dedicated_mutations_are_deprecated() {
    let sim = start().await;
    let pubsub = "pubsub://my-project:orders";
    for (topic, uri) in [
        ("ORDERS_CREATE", pubsub),
        ("ORDERS_CREATE", ARN),
        ("ORDERS_CREATE", "https://hooks.example.com/o"),
    ] {
        let r = gql(
            &sim,
            "2025-10",
            CREATE,
            json!({"topic": topic, "sub": {"uri": uri}}),
        )
        .await;
        assert_eq!(user_errors(&r.body, "webhookSubscriptionCreate"), vec![], "{uri}");
        assert_eq!(r.deprecated, None);
    }
    let q = "{ webhookSubscriptions(first: 10) { nodes { uri } } }";
    let r = gql(&sim, "2025-10", q, json!({})).await;
    assert_eq!(
        r.body["data"]["webhookSubscriptions"]["nodes"],
        json!([{"uri": pubsub}, {"uri": ARN}, {"uri": "https://hooks.example.com/o"}])
    );
    // `endpoint` still resolves (deprecated) on 2025-10.
    let q = "{ webhookSubscriptions(first: 1) { nodes { endpoint { ... on WebhookPubSubEndpoint { pubSubProject pubSubTopic } } } } }";
    let r = gql(&sim, "2025-10", q, json!({})).await;
    assert_eq!(
        r.body["data"]["webhookSubscriptions"]["nodes"][0]["endpoint"],
        json!({"pubSubProject": "my-project", "pubSubTopic": "orders"})
    );
    assert!(r.deprecated.is_some());
    // Filtering the listing by uri finds any kind.
    let q = r#"query($uri: String) { webhookSubscriptions(first: 10, uri: $uri) { nodes { uri } } }"#;
    let r = gql(&sim, "2025-10", q, json!({"uri": ARN})).await;
    assert_eq!(
        r.body["data"]["webhookSubscriptions"]["nodes"],
        json!([{"uri": ARN}])
    );

    // Uniqueness holds across the two ways of naming a destination.
    let r = gql(
        &sim,
        "2025-10",
        PUBSUB_CREATE,
        json!({"topic": "ORDERS_CREATE", "sub": {"pubSubProject": "my-project", "pubSubTopic": "orders"}}),
    )
    .await;
    assert_eq!(
        r.body["data"]["pubSubWebhookSubscriptionCreate"]["userErrors"][0]["code"],
        "TAKEN"
    );
    assert!(
        r.deprecated.is_some(),
        "the dedicated mutations are deprecated from 2025-10"
    );
    let r = gql(
        &sim,
        "2025-10",
        CREATE,
        json!({"topic": "ORDERS_CREATE", "sub": {"uri": ARN}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionCreate"),
        vec![(
            json!(["webhookSubscription", "uri"]),
            "Address for this topic has already been taken".into()
        )]
    );
    let r = gql(
        &sim,
        "2025-10",
        EVENTBRIDGE_CREATE,
        json!({"topic": "ORDERS_PAID", "sub": {"arn": ARN}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "eventBridgeWebhookSubscriptionCreate"),
        vec![]
    );
    assert!(r.deprecated.is_some());
    // An update onto a destination the topic already uses is taken too.
    let https_id = sim.subscriptions(SHOP)[2].id.clone();
    let r = gql(
        &sim,
        "2025-10",
        UPDATE,
        json!({"id": https_id, "sub": {"uri": pubsub}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionUpdate"),
        vec![(
            json!(["webhookSubscription", "uri"]),
            "Address for this topic has already been taken".into()
        )]
    );
    // Moving the HTTPS one to a new Pub/Sub topic through uri works.
    let r = gql(
        &sim,
        "2025-10",
        UPDATE,
        json!({"id": https_id, "sub": {"uri": "pubsub://my-project:other"}}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate"), vec![]);
    assert_eq!(sim.subscriptions(SHOP)[2].address, "pubsub://my-project:other");
    assert_eq!(sim.subscriptions(SHOP).len(), 4);
}

#[tokio::test]
async fn malformed_addresses_are_user_errors_on_the_address_field() {
    let sim = start().await;
    for uri in [
        "pubsub://",
        "pubsub://project-only",
        "pubsub://:topic",
        "pubsub://p:",
        "pubsub://p:t:u",
        "pubsub://my project:t",
        "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/123",
        "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/app/name",
        "arn:aws:events:us-east-1:123456789012:event-bus/default",
        "arn:aws:sqs:us-east-1:123456789012:queue",
        "ftp://hooks.example.com/o",
        "not a uri",
    ] {
        let r = gql(
            &sim,
            "2025-10",
            CREATE,
            json!({"topic": "ORDERS_CREATE", "sub": {"uri": uri}}),
        )
        .await;
        assert_eq!(
            user_errors(&r.body, "webhookSubscriptionCreate"),
            vec![(
                json!(["webhookSubscription", "uri"]),
                "Address is invalid".to_string()
            )],
            "{uri}"
        );
        assert!(r.body["data"]["webhookSubscriptionCreate"]["webhookSubscription"].is_null());
    }
    let r = gql(
        &sim,
        "2025-10",
        CREATE,
        json!({"topic": "ORDERS_CREATE", "sub": {"format": "JSON"}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionCreate"),
        vec![(
            json!(["webhookSubscription", "uri"]),
            "Address can't be blank".to_string()
        )]
    );
    // callbackUrl (before 2025-10) takes HTTP(S) URLs only.
    for cloud in ["pubsub://p:t", ARN] {
        let r = gql(
            &sim,
            "2025-07",
            CREATE,
            json!({"topic": "ORDERS_CREATE", "sub": {"callbackUrl": cloud}}),
        )
        .await;
        assert_eq!(
            user_errors(&r.body, "webhookSubscriptionCreate"),
            vec![(
                json!(["webhookSubscription", "callbackUrl"]),
                "Address is invalid".to_string()
            )],
            "{cloud}"
        );
    }
    assert!(sim.subscriptions(SHOP).is_empty());
}

#[tokio::test]
async fn updates_change_only_what_the_input_carries() {
    let sim = start().await;
    let full = json!({
        "uri": "https://hooks.example.com/o",
        "format": "XML",
        "includeFields": ["id", "note"],
        "metafieldNamespaces": ["custom"],
        "metafields": [{"namespace": "custom", "key": "a"}],
        "filter": "id:>1",
        "name": "orders"
    });
    let id = created(&sim, "2026-04", CREATE, "ORDERS_CREATE", full).await;
    let fields = "uri format includeFields metafieldNamespaces metafields { namespace key } filter name";
    let before = read(&sim, "2026-04", &id, fields).await;
    assert_eq!(before["name"], "orders");

    // Absent fields stay as they were.
    let r = gql(
        &sim,
        "2026-04",
        UPDATE,
        json!({"id": id, "sub": {"format": "JSON"}}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate"), vec![]);
    let mut expected = before.clone();
    expected["format"] = json!("JSON");
    assert_eq!(read(&sim, "2026-04", &id, fields).await, expected);

    // An explicit null clears filter and name, nothing else.
    let r = gql(
        &sim,
        "2026-04",
        UPDATE,
        json!({"id": id, "sub": {"filter": null, "name": null}}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate"), vec![]);
    expected["filter"] = Value::Null;
    expected["name"] = Value::Null;
    assert_eq!(read(&sim, "2026-04", &id, fields).await, expected);

    // Empty lists clear the lists.
    let r = gql(
        &sim,
        "2026-04",
        UPDATE,
        json!({"id": id, "sub": {"includeFields": [], "metafieldNamespaces": [], "metafields": []}}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate"), vec![]);
    expected["includeFields"] = json!([]);
    expected["metafieldNamespaces"] = json!([]);
    expected["metafields"] = json!([]);
    assert_eq!(read(&sim, "2026-04", &id, fields).await, expected);

    // Set again, in literal form (no variables), then the admin view agrees.
    let doc = format!(
        r#"mutation {{ webhookSubscriptionUpdate(id: "{id}", webhookSubscription: {{filter: "id:>5", name: "again", includeFields: ["id"]}}) {{ userErrors {{ message }} }} }}"#
    );
    let r = gql(&sim, "2026-04", &doc, json!({})).await;
    assert_eq!(
        r.body["data"]["webhookSubscriptionUpdate"]["userErrors"],
        json!([]),
        "{}",
        r.body
    );
    let stored = &sim.subscriptions(SHOP)[0];
    assert_eq!(stored.filter.as_deref(), Some("id:>5"));
    assert_eq!(stored.name.as_deref(), Some("again"));
    assert_eq!(stored.include_fields, ["id"]);
    assert_eq!(stored.format, "JSON");
    assert_eq!(stored.address, "https://hooks.example.com/o");
    assert!(stored.metafields.is_empty());

    // The dedicated updates are partial too: a Pub/Sub update must name the
    // destination (its fields are non-null) but keeps the rest.
    let r = gql(
        &sim,
        "2026-04",
        PUBSUB_UPDATE,
        json!({"id": id, "sub": {"pubSubProject": "p", "pubSubTopic": "t"}}),
    )
    .await;
    assert_eq!(
        r.body["data"]["pubSubWebhookSubscriptionUpdate"]["userErrors"],
        json!([]),
        "{}",
        r.body
    );
    let r = gql(
        &sim,
        "2026-04",
        PUBSUB_UPDATE,
        json!({"id": id, "sub": {"format": "XML"}}),
    )
    .await;
    assert_validation_error(&r.body, "pubSubProject");
    let stored = &sim.subscriptions(SHOP)[0];
    assert_eq!(stored.address, "pubsub://p:t");
    assert_eq!(
        (stored.filter.as_deref(), stored.name.as_deref()),
        (Some("id:>5"), Some("again"))
    );
}

#[tokio::test]
async fn a_refused_filter_fails_its_mutation_and_the_others_of_the_document_apply() {
    let sim = start().await;
    // Armed through the admin API, in its JSON form.
    let resp = reqwest::Client::new()
        .post(format!("{}/faults", sim.admin_url()))
        .json(&json!({"type": "refuseFilter", "shop": SHOP, "filter": "bad:filter", "message": "Filter is invalid: unknown field bad"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let doc = r#"mutation {
      a: webhookSubscriptionCreate(topic: ORDERS_CREATE, webhookSubscription: {uri: "https://hooks.example.com/a", filter: "bad:filter"}) { webhookSubscription { id } userErrors { field message } }
      b: webhookSubscriptionCreate(topic: ORDERS_PAID, webhookSubscription: {uri: "https://hooks.example.com/b", filter: "id:>1"}) { webhookSubscription { id } userErrors { field message } }
      c: pubSubWebhookSubscriptionCreate(topic: ORDERS_UPDATED, webhookSubscription: {pubSubProject: "p", pubSubTopic: "t", filter: "bad:filter"}) { webhookSubscription { id } userErrors { code field message } }
    }"#;
    let r = gql(&sim, "2025-10", doc, json!({})).await;
    assert_eq!(
        user_errors(&r.body, "a"),
        vec![(
            json!(["webhookSubscription", "filter"]),
            "Filter is invalid: unknown field bad".into()
        )]
    );
    assert!(r.body["data"]["a"]["webhookSubscription"].is_null());
    assert_eq!(user_errors(&r.body, "b"), vec![]);
    assert_eq!(
        r.body["data"]["c"]["userErrors"],
        json!([{"code": "INVALID_PARAMETERS", "field": ["webhookSubscription", "filter"], "message": "Filter is invalid: unknown field bad"}])
    );
    let subs = sim.subscriptions(SHOP);
    assert_eq!(subs.len(), 1);
    assert_eq!(
        (subs[0].topic.as_str(), subs[0].filter.as_deref()),
        ("ORDERS_PAID", Some("id:>1"))
    );
    assert_eq!(r.body["extensions"]["cost"]["actualQueryCost"], 30);

    // An update carrying the refused filter changes nothing at all, not even
    // the other fields it carries; one without a filter applies.
    let id = subs[0].id.clone();
    let r = gql(
        &sim,
        "2025-10",
        UPDATE,
        json!({"id": id, "sub": {"filter": "bad:filter", "format": "XML"}}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate").len(), 1);
    let stored = &sim.subscriptions(SHOP)[0];
    assert_eq!(
        (stored.format.as_str(), stored.filter.as_deref()),
        ("JSON", Some("id:>1"))
    );
    let r = gql(
        &sim,
        "2025-10",
        UPDATE,
        json!({"id": id, "sub": {"format": "XML"}}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate"), vec![]);
    // Other shops are not affected.
    let other = json!({"topic": "ORDERS_CREATE", "sub": {"uri": "https://hooks.example.com/a", "filter": "bad:filter"}});
    let r = gql_as(&sim, OTHER, OTHER_TOKEN, "2025-10", CREATE, other).await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionCreate"), vec![]);

    // Without a filter of its own the fault refuses every non-empty filter,
    // with the default message; clearing the faults lifts it.
    sim.clear_faults();
    sim.inject(Fault::RefuseFilter {
        shop: None,
        filter: None,
        message: None,
    });
    let r = gql(
        &sim,
        "2025-10",
        UPDATE,
        json!({"id": id, "sub": {"filter": "anything:1"}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionUpdate"),
        vec![(
            json!(["webhookSubscription", "filter"]),
            DEFAULT_FILTER_REFUSAL.to_string()
        )]
    );
    let r = gql(
        &sim,
        "2025-10",
        UPDATE,
        json!({"id": id, "sub": {"filter": null}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionUpdate"),
        vec![],
        "clearing is no filter"
    );
    sim.clear_faults();
    let r = gql(
        &sim,
        "2025-10",
        UPDATE,
        json!({"id": id, "sub": {"filter": "anything:1"}}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate"), vec![]);
    assert_eq!(sim.subscriptions(SHOP)[0].filter.as_deref(), Some("anything:1"));
}

#[tokio::test]
async fn cloud_only_topics_refuse_https_and_take_one_subscription_per_shop() {
    let sim = start().await;
    let topic = "AUDIT_EVENTS_ADMIN_API_ACTIVITY";
    let message = "Address for topic audit_events/admin_api_activity must be a Google Cloud Pub/Sub or Amazon EventBridge destination";
    let r = gql(
        &sim,
        "2025-10",
        CREATE,
        json!({"topic": topic, "sub": {"uri": "https://hooks.example.com/audit"}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionCreate"),
        vec![(json!(["webhookSubscription", "uri"]), message.to_string())]
    );
    let r = gql(
        &sim,
        "2025-07",
        CREATE,
        json!({"topic": topic, "sub": {"callbackUrl": "https://hooks.example.com/audit"}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionCreate"),
        vec![(json!(["webhookSubscription", "callbackUrl"]), message.to_string())]
    );
    assert!(sim.subscriptions(SHOP).is_empty());

    let id = created(
        &sim,
        "2025-07",
        PUBSUB_CREATE,
        topic,
        json!({"pubSubProject": "sec", "pubSubTopic": "audit"}),
    )
    .await;
    // Moving it to HTTPS is refused; it stays on Pub/Sub.
    let r = gql(
        &sim,
        "2025-10",
        UPDATE,
        json!({"id": id, "sub": {"uri": "https://hooks.example.com/audit"}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionUpdate"),
        vec![(json!(["webhookSubscription", "uri"]), message.to_string())]
    );
    assert_eq!(sim.subscriptions(SHOP)[0].address, "pubsub://sec:audit");
    // One per shop: a second one, even elsewhere, is refused.
    let r = gql(
        &sim,
        "2025-10",
        CREATE,
        json!({"topic": topic, "sub": {"uri": ARN}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionCreate"),
        vec![(
            json!(["topic"]),
            "Topic audit_events/admin_api_activity is limited to one subscription per shop".to_string()
        )]
    );
    // Moving it to EventBridge is fine, and another shop has its own.
    let r = gql(&sim, "2025-10", UPDATE, json!({"id": id, "sub": {"uri": ARN}})).await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate"), vec![]);
    let r = gql_as(
        &sim,
        OTHER,
        OTHER_TOKEN,
        "2025-10",
        CREATE,
        json!({"topic": topic, "sub": {"uri": ARN}}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionCreate"), vec![]);
}

#[tokio::test]
async fn names_are_checked_and_unique_per_shop_on_2026_04() {
    let sim = start().await;
    let create =
        |uri: &str, name: Value| json!({"topic": "ORDERS_CREATE", "sub": {"uri": uri, "name": name}});
    let name_error = |m: &str| vec![(json!(["webhookSubscription", "name"]), m.to_string())];
    let longest = "a".repeat(50);
    let id = created(
        &sim,
        "2026-04",
        CREATE,
        "ORDERS_CREATE",
        json!({"uri": "https://hooks.example.com/1", "name": longest}),
    )
    .await;
    for (name, message) in [
        ("a".repeat(51), "Name is too long (maximum is 50 characters)"),
        (
            "orders create".into(),
            "Name can only contain letters, numbers, underscores and hyphens",
        ),
        (
            "orders/create".into(),
            "Name can only contain letters, numbers, underscores and hyphens",
        ),
        (
            "café".into(),
            "Name can only contain letters, numbers, underscores and hyphens",
        ),
        ("a".repeat(50), "Name has already been taken"),
    ] {
        let r = gql(
            &sim,
            "2026-04",
            CREATE,
            create("https://hooks.example.com/2", json!(name)),
        )
        .await;
        assert_eq!(
            user_errors(&r.body, "webhookSubscriptionCreate"),
            name_error(message),
            "{name}"
        );
    }
    assert_eq!(sim.subscriptions(SHOP).len(), 1);
    // Letters, digits, _ and - are fine; uniqueness is per shop, across kinds.
    let other = created(
        &sim,
        "2026-04",
        CREATE,
        "ORDERS_PAID",
        json!({"uri": "https://hooks.example.com/2", "name": "Orders_paid-2"}),
    )
    .await;
    let r = gql(&sim, "2026-04", PUBSUB_CREATE, json!({"topic": "ORDERS_UPDATED", "sub": {"pubSubProject": "p", "pubSubTopic": "t", "name": "Orders_paid-2"}})).await;
    assert_eq!(
        r.body["data"]["pubSubWebhookSubscriptionCreate"]["userErrors"],
        json!([{"code": "INVALID_PARAMETERS", "field": ["webhookSubscription", "name"], "message": "Name has already been taken"}])
    );
    let r = gql_as(
        &sim,
        OTHER,
        OTHER_TOKEN,
        "2026-04",
        CREATE,
        create("https://hooks.example.com/2", json!("Orders_paid-2")),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionCreate"), vec![]);
    // An update may keep its own name but not take another's.
    let r = gql(
        &sim,
        "2026-04",
        UPDATE,
        json!({"id": other, "sub": {"name": "Orders_paid-2", "format": "XML"}}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate"), vec![]);
    let r = gql(
        &sim,
        "2026-04",
        UPDATE,
        json!({"id": other, "sub": {"name": "a".repeat(50)}}),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionUpdate"),
        name_error("Name has already been taken")
    );
    // Cleared, a name is free again.
    let r = gql(&sim, "2026-04", UPDATE, json!({"id": id, "sub": {"name": null}})).await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate"), vec![]);
    let r = gql(
        &sim,
        "2026-04",
        UPDATE,
        json!({"id": other, "sub": {"name": "a".repeat(50)}}),
    )
    .await;
    assert_eq!(user_errors(&r.body, "webhookSubscriptionUpdate"), vec![]);
    let names: Vec<Option<String>> = sim.subscriptions(SHOP).into_iter().map(|s| s.name).collect();
    assert_eq!(names, [None, Some("a".repeat(50))]);
    // A name error and an address error are reported together.
    let r = gql(
        &sim,
        "2026-04",
        CREATE,
        create("http://hooks.example.com/3", json!("bad name")),
    )
    .await;
    assert_eq!(
        user_errors(&r.body, "webhookSubscriptionCreate"),
        vec![
            (
                json!(["webhookSubscription", "name"]),
                "Name can only contain letters, numbers, underscores and hyphens".into()
            ),
            (
                json!(["webhookSubscription", "uri"]),
                "Address protocol http:// is not supported".into()
            ),
        ]
    );
}

#[tokio::test]
async fn the_admin_view_and_fixtures_carry_metafields_names_and_cloud_addresses() {
    let sim = start().await;
    let gid = sim.add_subscription_with(
        SHOP,
        SubscriptionFixture {
            topic: "orders/create".into(),
            address: "pubsub://proj:orders".into(),
            metafields: vec![MetafieldIdentifier {
                namespace: "custom".into(),
                key: "a".into(),
            }],
            name: Some("seeded".into()),
            ..Default::default()
        },
    );
    let http = reqwest::Client::new();
    let yaml = format!(
        "shops:\n  - domain: {OTHER}\n    tokens: [{{accessToken: {OTHER_TOKEN}}}]\n    subscriptions:\n      - {{topic: ORDERS_CREATE, address: '{ARN}', metafields: [{{key: k}}]}}\n      - {{topic: orders/paid, address: 'https://hooks.example.com/p', name: paid}}\n"
    );
    let resp = http
        .post(format!("{}/fixture", sim.admin_url()))
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let listed: Value = http
        .get(format!("{}/shops/{SHOP}/subscriptions", sim.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["id"], gid);
    assert_eq!(listed[0]["address"], "pubsub://proj:orders");
    assert_eq!(
        listed[0]["metafields"],
        json!([{"namespace": "custom", "key": "a"}])
    );
    assert_eq!(listed[0]["name"], "seeded");
    let listed: Value = http
        .get(format!("{}/shops/{OTHER}/subscriptions", sim.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed[0]["metafields"],
        json!([{"namespace": APP_RESERVED_NAMESPACE, "key": "k"}])
    );
    assert_eq!(listed[0]["name"], Value::Null);
    assert_eq!(listed[1]["name"], "paid");

    // The API lists them as it would have created them.
    let q = "{ webhookSubscriptions(first: 5) { nodes { endpoint { __typename } metafields { key } } } }";
    let r = gql_as(&sim, OTHER, OTHER_TOKEN, "2025-07", q, json!({})).await;
    assert_eq!(
        r.body["data"]["webhookSubscriptions"]["nodes"],
        json!([
            {"endpoint": {"__typename": "WebhookEventBridgeEndpoint"}, "metafields": [{"key": "k"}]},
            {"endpoint": {"__typename": "WebhookHttpEndpoint"}, "metafields": []}
        ])
    );
    let r = gql_as(
        &sim,
        OTHER,
        OTHER_TOKEN,
        "2026-04",
        "{ webhookSubscriptions(first: 5) { nodes { name uri } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r.body["data"]["webhookSubscriptions"]["nodes"],
        json!([{"name": null, "uri": ARN}, {"name": "paid", "uri": "https://hooks.example.com/p"}])
    );

    // Deliveries go to HTTP(S) endpoints only; cloud ones are reported skipped.
    let resp: Value = http
        .post(format!("{}/deliveries", sim.admin_url()))
        .json(&json!({"shop": SHOP, "topic": "orders/create"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        resp["deliveries"],
        json!([{"id": gid, "address": "pubsub://proj:orders", "skipped": "not an HTTP endpoint"}])
    );

    // Older admin-view JSON (no metafields, no name) still deserializes.
    let old = json!({
        "id": "gid://shopify/WebhookSubscription/1", "topic": "ORDERS_CREATE", "address": "https://x.example/h",
        "format": "JSON", "includeFields": [], "metafieldNamespaces": [], "filter": null,
        "createdAt": "2025-01-01T00:00:00Z", "updatedAt": "2025-01-01T00:00:00Z"
    });
    let s: sim::SimSubscription = serde_json::from_value(old).unwrap();
    assert!(s.metafields.is_empty() && s.name.is_none());
}
