//! The ShopifyShop and ShopifyApp APIs against a real kube-apiserver: what the schema
//! accepts and rejects (with the field named), immutability, the status
//! subresource, no defaulting drift, and the printer columns.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use shopify_operator::crd::ShopifyShop;

fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("shopify-operator.dev", "v1alpha1", "ShopifyShop"),
        "shopifyshops",
    )
}

fn shop(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "shopify-operator.dev/v1alpha1",
        "kind": "ShopifyShop",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a valid object shape")
}

/// A valid spec for the seed's online shop, the base every invalid case
/// changes one thing of.
fn valid_spec() -> Value {
    json!({
        "domain": "ps-direct-fulfilment-online.myshopify.com",
        "adminApiVersion": "2025-07",
        "token": {"secretRef": {"name": "online-shopify-token"}},
        "app": {"secretRef": {"name": "oms-shopify-app"}},
        "webhooks": {
            "endpoint": {"ingressRef": {"name": "oms"}, "pathTemplate": "/webhooks/{topic}"},
            "format": "json",
            "topics": ["orders/create", "orders/updated", "products/update", "app/uninstalled", "customer.tags_added"],
            "subscriptions": [
                {"topics": ["orders/paid"], "filter": "financial_status:paid", "includeFields": ["id", "line_items.sku"],
                 "metafieldNamespaces": ["oms"], "metafields": [{"namespace": "oms", "key": "warehouse"}]},
                {"topics": ["orders/create", "orders/cancelled"], "uri": "pubsub://oms-prod:orders"},
                {"topics": ["products/delete"], "name": "catalog-deletes",
                 "uri": "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1234/oms"},
                {"topics": ["refunds/create"], "path": "/webhooks/finance/{topic}"}
            ],
            "prune": false
        },
        "sync": [{
            "name": "orders",
            "schedule": "*/15 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "sync", "image": "oms:latest", "args": ["sync", "orders"]}]
            }}}}
        }],
        "managementPolicy": "Manage",
        "deletionPolicy": "Orphan"
    })
}

/// Sets `path` (slash-separated; numeric segments index arrays) in `spec`,
/// or removes it when `value` is None.
fn with(mut spec: Value, path: &str, value: Option<Value>) -> Value {
    let parts: Vec<&str> = path.split('/').collect();
    let (last, parents) = parts.split_last().expect("non-empty path");
    let mut cur = &mut spec;
    for p in parents {
        cur = match p.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => &mut cur[*p],
        };
    }
    match value {
        Some(v) => match last.parse::<usize>() {
            Ok(i) => cur[i] = v,
            Err(_) => cur[*last] = v,
        },
        None => {
            cur.as_object_mut().expect("an object").remove(*last);
        }
    }
    spec
}

async fn api(ns: &str) -> Api<DynamicObject> {
    let client = testenv::shared(shopify_operator::crd::all)
        .await
        .admin_client()
        .await
        .expect("admin client");
    Api::namespaced_with(client, ns, &resource())
}

#[tokio::test]
async fn seed_shops_are_accepted_and_stored_without_defaults() {
    let cp = testenv::shared(shopify_operator::crd::all).await;
    let ns = cp.namespace("api-seed").await.unwrap();
    let shops = api(&ns).await;
    let seeds = [
        ("offline", "ps-direct-fulfilment-offline.myshopify.com"),
        ("online", "ps-direct-fulfilment-online.myshopify.com"),
        ("diff", "ps-diff-direct-fulfillment.myshopify.com"),
    ];
    for (name, domain) in seeds {
        let spec = with(valid_spec(), "domain", Some(json!(domain)));
        shops
            .create(&PostParams::default(), &shop(name, spec.clone()))
            .await
            .unwrap();
        let stored = shops.get(name).await.unwrap();
        // No schema defaults: what GitOps applied is exactly what is stored.
        assert_eq!(
            stored.data["spec"], spec,
            "{name}: the apiserver changed the spec"
        );
    }
    // A minimal shop gets nothing filled in either (defaults live in code).
    let minimal = json!({
        "domain": "minimal.myshopify.com",
        "token": {"secretRef": {"name": "t"}},
        "webhooks": {"endpoint": {"host": "oms.popsockets.com"}, "topics": ["orders/create"]}
    });
    shops
        .create(&PostParams::default(), &shop("minimal", minimal.clone()))
        .await
        .unwrap();
    assert_eq!(shops.get("minimal").await.unwrap().data["spec"], minimal);
    // The typed API reads what was stored.
    let typed: Api<ShopifyShop> = Api::namespaced(cp.admin_client().await.unwrap(), &ns);
    let online = typed.get("online").await.unwrap();
    assert_eq!(online.spec.admin_api_version_or_default(), "2025-07");
    assert_eq!(
        online.spec.sync[0].job_template["spec"]["template"]["spec"]["containers"][0]["image"],
        "oms:latest"
    );
}

/// (case, spec, text the error must contain — the field path).
fn invalid_cases() -> Vec<(&'static str, Value, &'static str)> {
    let v = valid_spec;
    let topics = |t: Value| with(v(), "webhooks/topics", Some(t));
    vec![
        (
            "domain not myshopify",
            with(v(), "domain", Some(json!("evil.example.com"))),
            "spec.domain",
        ),
        (
            "domain with suffix",
            with(v(), "domain", Some(json!("shop.myshopify.com.evil.com"))),
            "spec.domain",
        ),
        (
            "domain upper case",
            with(v(), "domain", Some(json!("Shop.myshopify.com"))),
            "spec.domain",
        ),
        (
            "domain empty",
            with(v(), "domain", Some(json!(""))),
            "spec.domain",
        ),
        ("domain missing", with(v(), "domain", None), "spec.domain"),
        (
            "api version not a quarter",
            with(v(), "adminApiVersion", Some(json!("2025-05"))),
            "spec.adminApiVersion",
        ),
        (
            "api version latest",
            with(v(), "adminApiVersion", Some(json!("latest"))),
            "spec.adminApiVersion",
        ),
        (
            "both host and ingressRef",
            with(v(), "webhooks/endpoint/host", Some(json!("oms.popsockets.com"))),
            "spec.webhooks.endpoint",
        ),
        (
            "neither host nor ingressRef",
            with(v(), "webhooks/endpoint/ingressRef", None),
            "spec.webhooks.endpoint",
        ),
        (
            "host with scheme",
            with(
                with(v(), "webhooks/endpoint/ingressRef", None),
                "webhooks/endpoint/host",
                Some(json!("https://x")),
            ),
            "spec.webhooks.endpoint.host",
        ),
        (
            "host with path",
            with(
                with(v(), "webhooks/endpoint/ingressRef", None),
                "webhooks/endpoint/host",
                Some(json!("oms.popsockets.com/webhooks")),
            ),
            "spec.webhooks.endpoint.host",
        ),
        (
            "topic not REST form",
            topics(json!(["Orders/Create"])),
            "spec.webhooks.topics[0]",
        ),
        (
            "topic enum form",
            topics(json!(["ORDERS_CREATE"])),
            "spec.webhooks.topics[0]",
        ),
        (
            "compliance topic",
            topics(json!(["orders/create", "shop/redact"])),
            "spec.webhooks.topics",
        ),
        (
            "duplicate topic",
            topics(json!(["orders/create", "orders/create"])),
            "spec.webhooks.topics[1]",
        ),
        (
            "too many topics",
            topics(Value::Array(
                (0..101).map(|i| json!(format!("orders/t{i}"))).collect(),
            )),
            "spec.webhooks.topics",
        ),
        (
            "pathTemplate without {topic}",
            with(v(), "webhooks/endpoint/pathTemplate", Some(json!("/webhooks"))),
            "spec.webhooks.endpoint.pathTemplate",
        ),
        (
            "pathTemplate not a path",
            with(
                v(),
                "webhooks/endpoint/pathTemplate",
                Some(json!("webhooks/{topic}")),
            ),
            "spec.webhooks.endpoint.pathTemplate",
        ),
        (
            "format unknown",
            with(v(), "webhooks/format", Some(json!("yaml"))),
            "spec.webhooks.format",
        ),
        (
            "duplicate sync names",
            with(v(), "sync", Some(json!([v()["sync"][0], v()["sync"][0]]))),
            "spec.sync[1]",
        ),
        (
            "sync name not a DNS label",
            with(v(), "sync/0/name", Some(json!("Orders_Sync"))),
            "spec.sync[0].name",
        ),
        (
            "managementPolicy unknown",
            with(v(), "managementPolicy", Some(json!("Destroy"))),
            "spec.managementPolicy",
        ),
        (
            "deletionPolicy unknown",
            with(v(), "deletionPolicy", Some(json!("Purge"))),
            "spec.deletionPolicy",
        ),
        (
            "subscription uri malformed",
            with(v(), "webhooks/subscriptions/1/uri", Some(json!("pubsub://oms"))),
            "spec.webhooks.subscriptions[1].uri",
        ),
        (
            "subscription uri an https URL",
            with(
                v(),
                "webhooks/subscriptions/1/uri",
                Some(json!("https://oms.popsockets.com/hooks")),
            ),
            "spec.webhooks.subscriptions[1].uri",
        ),
        (
            "subscription with uri and path",
            with(
                v(),
                "webhooks/subscriptions/1/path",
                Some(json!("/hooks/{topic}")),
            ),
            "spec.webhooks.subscriptions[1]",
        ),
        (
            "subscription name with a space",
            with(
                v(),
                "webhooks/subscriptions/2/name",
                Some(json!("catalog deletes")),
            ),
            "spec.webhooks.subscriptions[2].name",
        ),
        (
            "subscription name too long",
            with(v(), "webhooks/subscriptions/2/name", Some(json!("n".repeat(51)))),
            "spec.webhooks.subscriptions[2].name",
        ),
        (
            "subscription name repeated",
            with(
                v(),
                "webhooks/subscriptions/3/name",
                Some(json!("catalog-deletes")),
            ),
            "spec.webhooks.subscriptions",
        ),
        (
            "named subscription with two topics",
            with(
                v(),
                "webhooks/subscriptions/2/topics",
                Some(json!(["products/delete", "products/create"])),
            ),
            "spec.webhooks.subscriptions[2]",
        ),
        (
            "same topic twice at one uri",
            with(
                v(),
                "webhooks/subscriptions/3",
                Some(json!({"topics": ["orders/create"], "uri": "pubsub://oms-prod:orders"})),
            ),
            "spec.webhooks.subscriptions",
        ),
        (
            "topic in topics and in an entry at the endpoint",
            with(
                v(),
                "webhooks/subscriptions/0/topics",
                Some(json!(["orders/create"])),
            ),
            "spec.webhooks",
        ),
        (
            "compliance topic in a subscription",
            with(
                v(),
                "webhooks/subscriptions/0/topics",
                Some(json!(["customers/redact"])),
            ),
            "spec.webhooks.subscriptions[0].topics",
        ),
        (
            "subscription without topics",
            with(v(), "webhooks/subscriptions/0/topics", Some(json!([]))),
            "spec.webhooks.subscriptions[0].topics",
        ),
        (
            "metafield repeated",
            with(
                v(),
                "webhooks/subscriptions/0/metafields",
                Some(json!([{"namespace": "oms", "key": "w"}, {"namespace": "oms", "key": "w"}])),
            ),
            "spec.webhooks.subscriptions[0].metafields",
        ),
        (
            "tlsSecretRef with ingressRef",
            with(
                v(),
                "webhooks/endpoint/tlsSecretRef",
                Some(json!({"name": "oms-tls"})),
            ),
            "spec.webhooks.endpoint",
        ),
        ("token missing", with(v(), "token", None), "spec.token"),
        (
            "app and appRef both",
            with(
                with(v(), "app", Some(json!({"secretRef": {"name": "app"}}))),
                "appRef",
                Some(json!({"name": "oms"})),
            ),
            "appRef",
        ),
        (
            "secret name invalid",
            with(v(), "token/secretRef/name", Some(json!("Not A Name"))),
            "spec.token.secretRef.name",
        ),
    ]
}

#[tokio::test]
async fn invalid_shops_are_rejected_with_the_field_named() {
    let cp = testenv::shared(shopify_operator::crd::all).await;
    let ns = cp.namespace("api-invalid").await.unwrap();
    let shops = api(&ns).await;
    let cases = invalid_cases();
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for (i, (case, spec, field)) in cases.into_iter().enumerate() {
        match shops
            .create(&PostParams::default(), &shop(&format!("bad-{i}"), spec))
            .await
        {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(kube::Error::Api(e)) => {
                if e.code != 422 || !e.message.contains(field) {
                    failures.push(format!(
                        "{case}: want 422 naming {field}, got {}: {}",
                        e.code, e.message
                    ));
                }
            }
            Err(e) => failures.push(format!("{case}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn domain_is_immutable() {
    let cp = testenv::shared(shopify_operator::crd::all).await;
    let ns = cp.namespace("api-immutable").await.unwrap();
    let shops = api(&ns).await;
    shops
        .create(&PostParams::default(), &shop("online", valid_spec()))
        .await
        .unwrap();
    let patch = json!({"spec": {"domain": "someone-else.myshopify.com"}});
    let err = shops
        .patch("online", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("changing the domain must be rejected");
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 422);
            assert!(
                e.message.contains("spec.domain") && e.message.contains("immutable"),
                "{}",
                e.message
            );
        }
        other => panic!("unexpected error {other}"),
    }
    // Other fields stay editable.
    let patch = json!({"spec": {"adminApiVersion": "2025-10"}});
    shops
        .patch("online", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn status_subresource_round_trip() {
    let cp = testenv::shared(shopify_operator::crd::all).await;
    let ns = cp.namespace("api-status").await.unwrap();
    let shops = api(&ns).await;
    let created = shops
        .create(&PostParams::default(), &shop("online", valid_spec()))
        .await
        .unwrap();
    let generation = created.metadata.generation;

    // A status write doesn't touch spec or generation.
    let status = json!({"status": {
        "observedGeneration": generation,
        "webhookHost": "oms.popsockets.com",
        "webhooksInSync": "5/5",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "",
                        "lastTransitionTime": "2026-11-26T10:00:00Z", "observedGeneration": generation}]
    }, "spec": {"adminApiVersion": "2026-01"}});
    let after = shops
        .patch_status("online", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(after.data["spec"], valid_spec(), "a status write changed spec");
    assert_eq!(after.metadata.generation, generation);
    assert_eq!(after.data["status"]["webhookHost"], "oms.popsockets.com");

    // A spec write doesn't touch status, and bumps generation.
    let spec_patch =
        json!({"spec": {"adminApiVersion": "2025-10"}, "status": {"webhookHost": "evil.example.com"}});
    let after = shops
        .patch("online", &PatchParams::default(), &Patch::Merge(&spec_patch))
        .await
        .unwrap();
    assert_eq!(
        after.data["status"]["webhookHost"], "oms.popsockets.com",
        "a spec write changed status"
    );
    assert_eq!(after.metadata.generation, generation.map(|g| g + 1));
}

#[tokio::test]
async fn kubectl_get_shows_the_columns() {
    let cp = testenv::shared(shopify_operator::crd::all).await;
    let ns = cp.namespace("api-kubectl").await.unwrap();
    let shops = api(&ns).await;
    shops
        .create(&PostParams::default(), &shop("online", valid_spec()))
        .await
        .unwrap();
    let status = json!({"status": {
        "webhookHost": "oms.popsockets.com",
        "webhooksInSync": "4/5",
        "lastSyncTime": "2026-11-26T09:45:00Z",
        "conditions": [{"type": "Ready", "status": "False", "reason": "WebhooksOutOfSync", "message": "1 missing",
                        "lastTransitionTime": "2026-11-26T10:00:00Z"}]
    }});
    shops
        .patch_status("online", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new(testenv::kubectl())
            .env("KUBECONFIG", cp.admin_kubeconfig())
            .args(args)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let out = kubectl(&["get", "shop", "-n", &ns]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "DOMAIN", "HOST", "WEBHOOKS", "LAST", "SYNC", "READY", "AGE"
        ],
        "{out}"
    );
    let row = lines.next().unwrap();
    for want in [
        "online",
        "ps-direct-fulfilment-online.myshopify.com",
        "oms.popsockets.com",
        "4/5",
        "False",
    ] {
        assert!(row.contains(want), "row {row:?} lacks {want}");
    }
    let wide = kubectl(&["get", "shopifyshops", "-n", &ns, "-o", "wide"]);
    assert!(
        wide.contains("REASON") && wide.contains("WebhooksOutOfSync"),
        "{wide}"
    );
    // The category works too.
    let by_category = kubectl(&["get", "shopify", "-n", &ns]);
    assert!(by_category.contains("online"), "{by_category}");
}

#[tokio::test]
async fn shopify_apps_are_validated_and_stored_without_defaults() {
    let cp = testenv::shared(shopify_operator::crd::all).await;
    let ns = cp.namespace("api-apps").await.unwrap();
    let client = cp.admin_client().await.unwrap();
    let apps: Api<DynamicObject> = Api::namespaced_with(
        client,
        &ns,
        &ApiResource::erase::<shopify_operator::crd::ShopifyApp>(&()),
    );
    let app = |name: &str, spec: Value| -> DynamicObject {
        serde_json::from_value(
            json!({"apiVersion": "shopify-operator.dev/v1alpha1", "kind": "ShopifyApp",
                                      "metadata": {"name": name}, "spec": spec}),
        )
        .unwrap()
    };
    let valid = json!({
        "credentialsSecretRef": {"name": "oms-app"},
        "allowedShops": ["ps-*.myshopify.com"],
        "install": {"createShops": true},
        "defaults": {"webhooks": {"endpoint": {"ingressRef": {"name": "oms"}}, "topics": ["orders/create"]}},
    });
    apps.create(&PostParams::default(), &app("oms", valid.clone()))
        .await
        .unwrap();
    assert_eq!(
        apps.get("oms").await.unwrap().data["spec"],
        valid,
        "no defaults written"
    );
    let cases = [
        (
            "no allowed shops",
            with(valid.clone(), "allowedShops", Some(json!([]))),
            "spec.allowedShops",
        ),
        (
            "no credentials",
            with(valid.clone(), "credentialsSecretRef", None),
            "spec.credentialsSecretRef",
        ),
        (
            "compliance topic",
            with(
                valid.clone(),
                "defaults/webhooks/topics",
                Some(json!(["shop/redact"])),
            ),
            "spec.defaults.webhooks.topics",
        ),
        (
            "bad scope",
            with(valid.clone(), "scopes", Some(json!(["read orders"]))),
            "spec.scopes",
        ),
        (
            "bad api version",
            with(valid.clone(), "defaults/adminApiVersion", Some(json!("2025-05"))),
            "spec.defaults.adminApiVersion",
        ),
    ];
    for (i, (case, spec, field)) in cases.into_iter().enumerate() {
        match apps
            .create(&PostParams::default(), &app(&format!("bad-{i}"), spec))
            .await
        {
            Err(kube::Error::Api(e)) => assert!(
                e.code == 422 && e.message.contains(field),
                "{case}: want 422 naming {field}, got {}: {}",
                e.code,
                e.message
            ),
            other => panic!("{case}: {other:?}"),
        }
    }
}
