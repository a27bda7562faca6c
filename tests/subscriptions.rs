//! `spec.webhooks.subscriptions[]` end to end, through the real apiserver
//! and shopify-sim: filters and payload shaping repaired in place (id
//! kept), Pub/Sub and EventBridge destinations per API version, what
//! `prune` may touch (and what it may no longer once Git dropped it: the
//! inventory's orphans), Shopify's refusals on the one subscription they are
//! about, and fields the version lacks refused before anything is sent.

mod support;

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use shopify_operator::crd::{TopicState, WebhookStatus};
use shopify_sim::{Fault, Fixture, SimSubscription, SubscriptionFixture};
use support::{Env, shop_fixture, wait_for};

const HOST: &str = "oms.popsockets.com";
const TOKEN: &str = "shpat_subscriptions_test";
const ARN: &str = "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1234/oms";

fn fixture(domain: &str, subs: Vec<SubscriptionFixture>) -> Fixture {
    Fixture {
        shops: vec![shop_fixture(
            domain,
            TOKEN,
            &["read_orders", "read_products"],
            subs,
        )],
        app: None,
        apps: Vec::new(),
    }
}

fn at(topic: &str, address: &str) -> SubscriptionFixture {
    SubscriptionFixture {
        topic: topic.into(),
        address: address.into(),
        ..Default::default()
    }
}

/// An operator on one shop (`version`, `webhooks`), Ready or not.
async fn start(
    prefix: &str,
    domain: &str,
    subs: Vec<SubscriptionFixture>,
    version: &str,
    webhooks: Value,
) -> Env {
    let mut env = Env::new(prefix, fixture(domain, subs)).await;
    env.token_secret("tok", TOKEN).await;
    env.create_shop(
        "shop",
        json!({"domain": domain, "adminApiVersion": version,
            "token": {"secretRef": {"name": "tok"}}, "webhooks": webhooks}),
    )
    .await;
    env.start_operator("1s");
    env
}

async fn patch_webhooks(env: &Env, webhooks: Value) {
    env.shops()
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"webhooks": webhooks}})),
        )
        .await
        .unwrap();
}

/// Waits until the shop's generation is acted on and Ready.
async fn ready(env: &Env) {
    wait_for(
        &format!("Ready (log {})", env.log_path().display()),
        Duration::from_secs(60),
        || async {
            let shop = env.shops().get("shop").await.ok()?;
            let status = shop.status?;
            let ready = status.conditions.iter().any(|c| {
                c.type_ == "Ready" && c.status == "True" && c.observed_generation == shop.metadata.generation
            });
            (ready && status.observed_generation == shop.metadata.generation).then_some(())
        },
    )
    .await
}

async fn webhook_status(env: &Env) -> Vec<WebhookStatus> {
    env.shops().get("shop").await.unwrap().status.unwrap().webhooks
}

fn find<'a>(subs: &'a [SimSubscription], topic_enum: &str, address: &str) -> &'a SimSubscription {
    subs.iter()
        .find(|s| s.topic == topic_enum && s.address == address)
        .unwrap_or_else(|| panic!("no {topic_enum} at {address} in {subs:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_is_added_changed_and_removed_in_place_with_one_document_each() {
    let domain = "filter-shop.myshopify.com";
    let paid = format!("https://{HOST}/webhooks/orders_paid");
    // The Rails app's plain subscription, adopted as is.
    let env = start(
        "filter",
        domain,
        vec![at("orders/paid", &paid)],
        "2025-07",
        json!({"endpoint": {"host": HOST}, "subscriptions": [{"topics": ["orders/paid"]}]}),
    )
    .await;
    ready(&env).await;
    assert_eq!(env.sim.counters(domain).mutations, 0, "adoption is a no-op");
    let id = find(&env.sim.subscriptions(domain), "ORDERS_PAID", &paid)
        .id
        .clone();

    let steps = [
        (
            json!({"filter": "financial_status:paid"}),
            Some("financial_status:paid"),
        ),
        (
            json!({"filter": "financial_status:paid AND total_price:>100"}),
            Some("financial_status:paid AND total_price:>100"),
        ),
        (json!({}), None),
    ];
    for (options, want) in steps {
        env.sim.reset_counters();
        let mut entry = json!({"topics": ["orders/paid"]});
        entry
            .as_object_mut()
            .unwrap()
            .extend(options.as_object().unwrap().clone());
        // A merge patch replaces the list: the entry is exactly `entry`.
        patch_webhooks(&env, json!({"subscriptions": [entry]})).await;
        ready(&env).await;
        let subs = env.sim.subscriptions(domain);
        assert_eq!(subs.len(), 1, "{subs:#?}");
        assert_eq!(subs[0].id, id, "updated in place");
        assert_eq!(subs[0].filter.as_deref(), want);
        let c = env.sim.counters(domain);
        assert_eq!(c.mutations, 1, "{want:?}: {c:?}");
        assert_eq!(c.operations.get("webhookSubscriptionUpdate"), Some(&1), "{c:?}");
        assert_eq!(webhook_status(&env).await[0].state, TopicState::InSync);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_shaping_and_names_are_repaired_where_the_version_has_them() {
    let domain = "shaping-shop.myshopify.com";
    let env = start(
        "shaping",
        domain,
        vec![],
        "2026-04",
        json!({"endpoint": {"host": HOST}, "subscriptions": [{
            "topics": ["orders/paid"], "name": "paid-orders", "includeFields": ["id", "line_items.sku"],
            "metafieldNamespaces": ["oms"], "metafields": [{"namespace": "oms", "key": "warehouse"}]}]}),
    )
    .await;
    ready(&env).await;
    let address = format!("https://{HOST}/webhooks/orders_paid");
    let s = find(&env.sim.subscriptions(domain), "ORDERS_PAID", &address).clone();
    assert_eq!(s.name.as_deref(), Some("paid-orders"));
    let mut fields = s.include_fields.clone();
    fields.sort();
    assert_eq!(fields, ["id", "line_items.sku"]);
    assert_eq!(s.metafield_namespaces, ["oms"]);
    assert_eq!(s.metafields.len(), 1);

    // Someone renames it and drops a field in Shopify: repaired in place.
    let edit = json!({
        "query": "mutation($id: ID!, $s: WebhookSubscriptionInput!) { webhookSubscriptionUpdate(id: $id, webhookSubscription: $s) { userErrors { message } } }",
        "variables": {"id": s.id, "s": {"name": "renamed", "includeFields": ["id"]}},
    });
    let answer: Value = reqwest::Client::new()
        .post(env.sim.graphql_url(domain, "2026-04"))
        .header("X-Shopify-Access-Token", TOKEN)
        .json(&edit)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["data"]["webhookSubscriptionUpdate"]["userErrors"],
        json!([]),
        "{answer}"
    );
    wait_for("repaired", Duration::from_secs(30), || async {
        let now = find(&env.sim.subscriptions(domain), "ORDERS_PAID", &address).clone();
        (now.name.as_deref() == Some("paid-orders") && now.include_fields.len() == 2).then_some(())
    })
    .await;
    assert_eq!(
        find(&env.sim.subscriptions(domain), "ORDERS_PAID", &address).id,
        s.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_sub_and_event_bridge_before_and_after_2025_10() {
    for version in ["2025-07", "2025-10"] {
        let domain = "cloud-shop.myshopify.com";
        let orders = "pubsub://oms-prod:orders";
        // Adopted: ours at a uri the spec names. Foreign: another Pub/Sub
        // topic, an EventBridge source of another app, an HTTPS receiver.
        let existing = vec![
            at("orders/create", orders),
            at("orders/create", "pubsub://analytics:orders"),
            at(
                "orders/updated",
                "arn:aws:events:eu-west-1::event-source/aws.partner/shopify.com/99/bi",
            ),
            at("orders/create", "https://analytics.example.com/hooks"),
        ];
        let env = start(
            &format!("cloud-{}", version.replace('-', "")),
            domain,
            existing,
            version,
            json!({"endpoint": {"host": HOST}, "prune": true, "subscriptions": [
                {"topics": ["orders/create", "orders/cancelled"], "uri": orders},
                {"topics": ["orders/paid"], "uri": ARN, "filter": "financial_status:paid"}]}),
        )
        .await;
        ready(&env).await;
        let subs = env.sim.subscriptions(domain);
        assert_eq!(subs.len(), 6, "{version}: two created, four kept: {subs:#?}");
        find(&subs, "ORDERS_CANCELLED", orders);
        assert_eq!(
            find(&subs, "ORDERS_PAID", ARN).filter.as_deref(),
            Some("financial_status:paid")
        );
        let c = env.sim.counters(domain);
        let (create, other) = if version == "2025-07" {
            (
                "pubSubWebhookSubscriptionCreate",
                "eventBridgeWebhookSubscriptionCreate",
            )
        } else {
            ("webhookSubscriptionCreate", "webhookSubscriptionCreate")
        };
        assert!(
            c.operations.contains_key(create) && c.operations.contains_key(other),
            "{version}: {c:?}"
        );
        assert_eq!(c.mutations, 2, "{version}: the adopted one is not touched: {c:?}");
        let status = webhook_status(&env).await;
        assert_eq!(status.len(), 3);
        assert!(
            status
                .iter()
                .all(|w| w.state == TopicState::InSync && w.id.is_some()),
            "{status:?}"
        );

        // Dropping a topic from an entry: its subscription is at a uri the
        // spec still names, so prune removes it; the foreign ones stay.
        patch_webhooks(
            &env,
            json!({"subscriptions": [
                {"topics": ["orders/create"], "uri": orders},
                {"topics": ["orders/paid"], "uri": ARN, "filter": "financial_status:paid"}]}),
        )
        .await;
        ready(&env).await;
        let subs = env.sim.subscriptions(domain);
        assert!(
            !subs.iter().any(|s| s.topic == "ORDERS_CANCELLED"),
            "{version}: {subs:#?}"
        );
        assert_eq!(subs.len(), 5, "{version}: {subs:#?}");
        // Read back at the next passes: nothing more to do.
        env.sim.reset_counters();
        wait_for("two quiet passes", Duration::from_secs(20), || async {
            (env.sim.counters(domain).requests >= 2).then_some(())
        })
        .await;
        assert_eq!(env.sim.counters(domain).mutations, 0, "{version}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_git_dropped_is_reported_as_orphaned_then_pruned_and_nothing_else() {
    for version in ["2025-07", "2025-10"] {
        let domain = "dropped-shop.myshopify.com";
        let paid = "pubsub://oms-prod:paid";
        let foreign = "pubsub://analytics:orders";
        // Someone's Pub/Sub subscription for orders/paid, which the spec
        // adopts; another one the operator never owns.
        let existing = vec![at("orders/paid", paid), at("orders/create", foreign)];
        let entries = json!([
            {"topics": ["orders/paid"], "uri": paid, "filter": "financial_status:paid"},
            {"topics": ["orders/cancelled"], "uri": ARN},
            {"topics": ["products/update"], "path": "/webhooks/catalog/{topic}"}]);
        let env = start(
            &format!("dropped-{}", version.replace('-', "")),
            domain,
            existing,
            version,
            json!({"endpoint": {"host": HOST}, "topics": ["orders/create"], "subscriptions": entries}),
        )
        .await;
        ready(&env).await;
        let adopted = env.sim.subscriptions(domain);
        let id_at =
            |subs: &[SimSubscription], topic: &str, address: &str| find(subs, topic, address).id.clone();
        let paid_id = id_at(&adopted, "ORDERS_PAID", paid);
        assert_eq!(adopted.len(), 5, "{version}: {adopted:#?}");
        let ours = [
            paid_id.clone(),
            id_at(&adopted, "ORDERS_CANCELLED", ARN),
            id_at(
                &adopted,
                "PRODUCTS_UPDATE",
                &format!("https://{HOST}/webhooks/catalog/products_update"),
            ),
        ];

        // The entries leave Git; without prune they stay on Shopify,
        // reported as orphaned with their ids, in status and one Event.
        env.sim.reset_counters();
        patch_webhooks(&env, json!({"subscriptions": []})).await;
        ready(&env).await;
        let status = env.shops().get("shop").await.unwrap().status.unwrap();
        let mut orphaned: Vec<&str> = status
            .orphaned_subscriptions
            .iter()
            .map(|o| o.id.as_str())
            .collect();
        orphaned.sort();
        let mut expected: Vec<&str> = ours.iter().map(String::as_str).collect();
        expected.sort();
        assert_eq!(
            orphaned, expected,
            "{version}: {:?}",
            status.orphaned_subscriptions
        );
        let o = status
            .orphaned_subscriptions
            .iter()
            .find(|o| o.id == paid_id)
            .unwrap();
        assert_eq!((o.topic.as_str(), o.address.as_str()), ("orders/paid", paid));
        assert_eq!(
            env.sim.subscriptions(domain).len(),
            5,
            "{version}: nothing deleted"
        );
        assert_eq!(env.sim.counters(domain).mutations, 0, "{version}");
        // Passes go on (a resync a second): the Event stays one.
        wait_for("two more passes", Duration::from_secs(30), || async {
            (env.sim.counters(domain).requests >= 4).then_some(())
        })
        .await;
        assert_eq!(
            env.published("shop", "Warning", "SubscriptionsOrphaned").await,
            1,
            "{version}"
        );

        // prune: true deletes exactly the orphans, in one document; the
        // subscription the operator never owned stays.
        env.sim.reset_counters();
        patch_webhooks(&env, json!({"prune": true})).await;
        ready(&env).await;
        wait_for("the orphans deleted", Duration::from_secs(60), || async {
            let shop = env.shops().get("shop").await.ok()?;
            shop.status?.orphaned_subscriptions.is_empty().then_some(())
        })
        .await;
        let left = env.sim.subscriptions(domain);
        assert_eq!(left.len(), 2, "{version}: {left:#?}");
        find(&left, "ORDERS_CREATE", foreign);
        find(
            &left,
            "ORDERS_CREATE",
            &format!("https://{HOST}/webhooks/orders_create"),
        );
        let c = env.sim.counters(domain);
        assert_eq!(c.operation("webhookSubscriptionDelete"), 3, "{version}: {c:?}");
        assert_eq!(c.mutations, 3, "{version}: {c:?}");
        let deleted = env.events("shop", "SubscriptionsDeleted").await;
        assert_eq!(deleted.len(), 1, "{version}: one apply: {deleted:?}");
        let note = deleted[0].note.clone().unwrap_or_default();
        assert!(
            note.starts_with("3 deleted") && ours.iter().all(|id| note.contains(id.as_str())),
            "{version}: {note}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_filter_lands_on_its_subscription_while_the_rest_converge() {
    let domain = "refused-shop.myshopify.com";
    let mut env = Env::new("refused", fixture(domain, vec![])).await;
    env.sim.inject(Fault::RefuseFilter {
        shop: Some(domain.into()),
        filter: Some("total_price:>>100".into()),
        message: None,
    });
    env.token_secret("tok", TOKEN).await;
    env.create_shop(
        "shop",
        json!({"domain": domain, "token": {"secretRef": {"name": "tok"}}, "webhooks": {
            "endpoint": {"host": HOST}, "topics": ["orders/create"],
            "subscriptions": [
                {"topics": ["orders/paid"], "filter": "total_price:>>100"},
                {"topics": ["orders/cancelled"], "uri": "pubsub://oms-prod:orders"}]}}),
    )
    .await;
    env.start_operator("1s");
    env.wait_condition("shop", "WebhooksSynced", "False", Some("ShopifyUserError"))
        .await;
    let (_, _, message) = env.condition("shop", "WebhooksSynced").await.unwrap();
    assert!(
        message.contains("orders/paid") && message.contains("filter"),
        "{message}"
    );
    let status = webhook_status(&env).await;
    let refused = status.iter().find(|w| w.topic == "orders/paid").unwrap();
    assert_eq!(refused.state, TopicState::Failed);
    assert!(
        refused.message.as_deref().unwrap_or_default().contains("filter"),
        "{refused:?}"
    );
    // The others were created in the same document.
    let subs = env.sim.subscriptions(domain);
    assert_eq!(subs.len(), 2, "{subs:#?}");
    assert!(
        status
            .iter()
            .filter(|w| w.topic != "orders/paid")
            .all(|w| w.state == TopicState::InSync)
    );
    let (stalled, reason, _) = env.condition("shop", "Stalled").await.unwrap();
    assert_eq!((stalled.as_str(), reason.as_str()), ("True", "ShopifyUserError"));

    // Fixed in the spec: created, Ready.
    patch_webhooks(
        &env,
        json!({"subscriptions": [
            {"topics": ["orders/paid"], "filter": "total_price:>100"},
            {"topics": ["orders/cancelled"], "uri": "pubsub://oms-prod:orders"}]}),
    )
    .await;
    ready(&env).await;
    assert_eq!(env.sim.subscriptions(domain).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_the_version_lacks_is_refused_before_anything_is_sent() {
    let domain = "old-version-shop.myshopify.com";
    let env = start(
        "unsupported",
        domain,
        vec![],
        "2025-10",
        json!({"endpoint": {"host": HOST}, "topics": ["orders/create"],
            "subscriptions": [{"topics": ["orders/paid"], "name": "paid"}]}),
    )
    .await;
    env.wait_condition(
        "shop",
        "WebhooksSynced",
        "False",
        Some("UnsupportedForApiVersion"),
    )
    .await;
    let (_, _, message) = env.condition("shop", "WebhooksSynced").await.unwrap();
    assert!(
        message.contains("spec.webhooks.subscriptions[0].name") && message.contains("2026-04"),
        "{message}"
    );
    let (stalled, _, _) = env.condition("shop", "Stalled").await.unwrap();
    assert_eq!(stalled, "True");
    let c = env.sim.counters(domain);
    assert_eq!(c.mutations, 0, "{c:?}");
    assert!(
        !c.operations.contains_key("webhookSubscriptions"),
        "not even listed: {c:?}"
    );

    // The version the field needs: created with its name.
    env.shops()
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"adminApiVersion": "2026-04"}})),
        )
        .await
        .unwrap();
    ready(&env).await;
    let subs = env.sim.subscriptions(domain);
    assert_eq!(subs.len(), 2);
    assert!(
        subs.iter().any(|s| s.name.as_deref() == Some("paid")),
        "{subs:#?}"
    );
}
