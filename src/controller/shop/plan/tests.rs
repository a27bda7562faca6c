//! The planner's rules on specs written as YAML (as in a manifest) and
//! subscriptions as Shopify lists them.

use super::*;
use crate::crd::WebhooksSpec;

fn sub(id: u64, topic: &str, address: &str) -> Subscription {
    Subscription {
        id: format!("gid://shopify/WebhookSubscription/{id}"),
        topic: topic.into(),
        topic_enum: shopify_admin::rest_to_enum(topic),
        address: address.into(),
        format: Format::Json,
        include_fields: vec![],
        metafield_namespaces: vec![],
        filter: None,
        metafields: vec![],
        name: None,
        api_version: Some("2025-07".into()),
    }
}

/// The shorthand spec: `topics` at `host`'s `/webhooks/{topic}`.
fn desired(host: &str, topics: &[&str], prune: bool) -> Desired {
    let spec = webhooks(&format!(
        "{{endpoint: {{host: {host}}}, topics: [{}], prune: {prune}}}",
        topics.join(", ")
    ));
    from_spec(&spec, host, &[])
}

/// A `spec.webhooks` from YAML.
fn webhooks(yaml: &str) -> WebhooksSpec {
    serde_norway::from_str(yaml).expect("a valid webhooks spec")
}

fn from_spec(spec: &WebhooksSpec, host: &str, extra: &[Extra]) -> Desired {
    Desired {
        host: host.into(),
        wanted: wanted(spec, host, extra),
        prune: spec.prune.unwrap_or(false),
        unauthorized_topics: BTreeSet::new(),
        owned: BTreeSet::new(),
    }
}

const TOPICS: [&str; 4] = [
    "orders/create",
    "orders/updated",
    "products/update",
    "app/uninstalled",
];

fn rails_registered(host: &str) -> Vec<Subscription> {
    TOPICS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            sub(
                100 + i as u64,
                t,
                &format!("https://{host}/webhooks/{}", t.replace('/', "_")),
            )
        })
        .collect()
}

#[test]
fn adoption_at_the_same_host_is_a_no_op() {
    let p = plan(
        &desired("oms.popsockets.com", &TOPICS, false),
        &rails_registered("oms.popsockets.com"),
    );
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert_eq!(p.in_sync(), 4);
    assert!(p.topics.iter().all(|t| t.id.is_some()));
    assert!(p.unmanaged.is_empty());
}

#[test]
fn host_change_updates_in_place() {
    let p = plan(
        &desired("new.popsockets.com", &TOPICS, false),
        &rails_registered("oms.popsockets.com"),
    );
    assert_eq!(p.changes.len(), 4);
    for (c, t) in p.changes.iter().zip(TOPICS) {
        match c {
            Change::Update { topic, address, .. } => {
                assert_eq!(topic, t);
                assert_eq!(
                    address,
                    &format!("https://new.popsockets.com/webhooks/{}", t.replace('/', "_"))
                );
            }
            other => panic!("expected an update, got {other:?}"),
        }
    }
    assert!(p.topics.iter().all(|t| t.state == TopicState::WrongAddress));
}

#[test]
fn missing_topics_are_created_once() {
    let mut actual = rails_registered("oms.popsockets.com");
    actual.remove(1);
    let p = plan(&desired("oms.popsockets.com", &TOPICS, false), &actual);
    assert_eq!(
        p.changes,
        vec![Change::Create {
            topic: "orders/updated".into(),
            address: "https://oms.popsockets.com/webhooks/orders_updated".into(),
            format: Format::Json,
            options: Options::default(),
        }]
    );
    assert_eq!(p.topics[1].state, TopicState::Missing);
}

#[test]
fn wrong_format_is_updated() {
    let mut actual = rails_registered("oms.popsockets.com");
    actual[0].format = Format::Xml;
    let p = plan(&desired("oms.popsockets.com", &TOPICS, false), &actual);
    assert_eq!(p.topics[0].state, TopicState::WrongFormat);
    assert!(matches!(
        &p.changes[..],
        [Change::Update {
            format: Format::Json,
            ..
        }]
    ));
}

#[test]
fn duplicates_are_reported_and_deleted_only_with_prune() {
    let mut actual = rails_registered("oms.popsockets.com");
    // The same topic at an old host: ours (same path), a duplicate.
    actual.push(sub(
        7,
        "orders/create",
        "https://old.popsockets.com/webhooks/orders_create",
    ));
    let p = plan(&desired("oms.popsockets.com", &TOPICS, false), &actual);
    assert!(p.changes.is_empty());
    assert_eq!(p.duplicates(), 1);
    assert_eq!(p.topics[0].state, TopicState::InSync);
    assert_eq!(
        p.topics[0].id.as_deref(),
        Some("gid://shopify/WebhookSubscription/100")
    );

    let p = plan(&desired("oms.popsockets.com", &TOPICS, true), &actual);
    assert_eq!(
        p.changes,
        vec![Change::Delete {
            id: "gid://shopify/WebhookSubscription/7".into(),
            topic: "orders/create".into()
        }]
    );
}

#[test]
fn two_at_old_hosts_update_the_oldest_and_the_other_is_a_duplicate() {
    let actual = vec![
        sub(9, "orders/create", "https://b.example.com/webhooks/orders_create"),
        sub(3, "orders/create", "https://a.example.com/webhooks/orders_create"),
    ];
    let p = plan(&desired("oms.popsockets.com", &["orders/create"], true), &actual);
    assert_eq!(
        p.topics[0].id.as_deref(),
        Some("gid://shopify/WebhookSubscription/3")
    );
    assert!(matches!(&p.changes[0], Change::Update { id, .. } if id.ends_with("/3")));
    assert!(matches!(&p.changes[1], Change::Delete { id, .. } if id.ends_with("/9")));
    assert_eq!(p.changes.len(), 2);
}

#[test]
fn prune_deletes_at_the_specs_destinations_only() {
    let mut actual = rails_registered("oms.popsockets.com");
    // At the endpoint host: a topic the spec no longer lists.
    actual.push(sub(
        50,
        "customers/create",
        "https://oms.popsockets.com/webhooks/customers_create",
    ));
    // Someone else's destinations: another host and path, Pub/Sub, EventBridge.
    actual.push(sub(
        51,
        "orders/create",
        "https://analytics.example.com/hooks/shopify",
    ));
    actual.push(sub(52, "orders/create", "pubsub://analytics:orders"));
    actual.push(sub(
        53,
        "orders/paid",
        "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1/finance",
    ));
    let p = plan(&desired("oms.popsockets.com", &TOPICS, false), &actual);
    assert!(p.changes.is_empty());
    assert_eq!(p.unmanaged.len(), 4);
    assert_eq!(p.duplicates(), 0);

    let p = plan(&desired("oms.popsockets.com", &TOPICS, true), &actual);
    assert_eq!(deleted(&p), ["gid://shopify/WebhookSubscription/50"]);
    assert_eq!(p.unmanaged.len(), 4, "still counted");
}

fn deleted(p: &Plan) -> Vec<&str> {
    p.changes
        .iter()
        .filter_map(|c| match c {
            Change::Delete { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect()
}

fn with_options(mut s: Subscription, f: impl FnOnce(&mut Subscription)) -> Subscription {
    f(&mut s);
    s
}

const FULL: &str = r#"
endpoint: {host: oms.popsockets.com}
topics: [orders/create]
subscriptions:
  - topics: [orders/paid]
    filter: "financial_status:paid"
    includeFields: [id, line_items.sku]
    metafieldNamespaces: [oms]
    metafields: [{namespace: oms, key: warehouse}]
  - topics: [orders/create, orders/cancelled]
    uri: "pubsub://oms-prod:orders"
  - topics: [products/update]
    path: /webhooks/catalog/{topic}
    name: catalog
"#;

#[test]
fn subscriptions_expand_per_topic_and_destination() {
    let d = from_spec(&webhooks(FULL), "oms.popsockets.com", &[]);
    let got: Vec<(&str, &str)> = d
        .wanted
        .iter()
        .map(|w| (w.topic.as_str(), w.address.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "orders/create",
                "https://oms.popsockets.com/webhooks/orders_create"
            ),
            ("orders/paid", "https://oms.popsockets.com/webhooks/orders_paid"),
            ("orders/create", "pubsub://oms-prod:orders"),
            ("orders/cancelled", "pubsub://oms-prod:orders"),
            (
                "products/update",
                "https://oms.popsockets.com/webhooks/catalog/products_update"
            ),
        ]
    );
    assert_eq!(
        d.wanted[1].options.filter.as_deref(),
        Some("financial_status:paid")
    );
    assert_eq!(d.wanted[4].options.name.as_deref(), Some("catalog"));
    // Created from nothing: one create each, with its options.
    let p = plan(&d, &[]);
    assert_eq!(p.changes.len(), 5);
    assert!(p.changes.iter().all(Change::is_create));
}

/// What Shopify lists once the FULL spec is applied at `host`.
fn applied(host: &str) -> Vec<Subscription> {
    let d = from_spec(&webhooks(FULL), host, &[]);
    d.wanted
        .iter()
        .enumerate()
        .map(|(i, w)| {
            with_options(sub(10 + i as u64, &w.topic, &w.address), |s| {
                s.filter = w.options.filter.clone();
                // Shopify may list sets in another order.
                s.include_fields = w.options.include_fields.iter().rev().cloned().collect();
                s.metafield_namespaces = w.options.metafield_namespaces.clone();
                s.metafields = w.options.metafields.clone();
                s.name = w.options.name.clone();
            })
        })
        .collect()
}

#[test]
fn every_field_is_compared_and_repaired_in_place() {
    let d = from_spec(&webhooks(FULL), "oms.popsockets.com", &[]);
    let p = plan(&d, &applied("oms.popsockets.com"));
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert_eq!(p.in_sync(), 5);

    type Breaks = fn(&mut Subscription);
    let cases: [(usize, Breaks, TopicState); 6] = [
        (1, |s| s.filter = None, TopicState::WrongFilter),
        (
            1,
            |s| s.filter = Some("financial_status:pending".into()),
            TopicState::WrongFilter,
        ),
        (
            1,
            |s| s.include_fields.pop().map(drop).unwrap_or(()),
            TopicState::WrongFields,
        ),
        (1, |s| s.metafields.clear(), TopicState::WrongMetafields),
        (4, |s| s.name = Some("other".into()), TopicState::WrongName),
        // A filter someone set on a subscription the spec wants plain.
        (
            0,
            |s| s.filter = Some("test:true".into()),
            TopicState::WrongFilter,
        ),
    ];
    for (i, breaks, state) in cases {
        let mut actual = applied("oms.popsockets.com");
        breaks(&mut actual[i]);
        let p = plan(&d, &actual);
        assert_eq!(p.topics[i].state, state, "case {i} {state:?}");
        match &p.changes[..] {
            [Change::Update { id, options, .. }] => {
                assert_eq!(id, &actual[i].id, "the id is kept");
                assert_eq!(options, &d.wanted[i].options);
            }
            other => panic!("{state:?}: expected one update, got {other:?}"),
        }
    }
}

#[test]
fn a_host_change_with_filters_is_one_update_each_and_uris_stay() {
    let d = from_spec(&webhooks(FULL), "new.popsockets.com", &[]);
    let p = plan(&d, &applied("oms.popsockets.com"));
    let updated: Vec<&str> = p
        .changes
        .iter()
        .map(|c| match c {
            Change::Update { topic, .. } => topic.as_str(),
            other => panic!("only updates: {other:?}"),
        })
        .collect();
    assert_eq!(updated, ["orders/create", "orders/paid", "products/update"]);
    assert_eq!(p.in_sync(), 2, "the Pub/Sub ones do not move with the host");
}

#[test]
fn a_name_left_out_of_the_spec_is_not_cleared() {
    let d = desired("oms.popsockets.com", &["orders/create"], false);
    let actual = vec![with_options(
        sub(
            1,
            "orders/create",
            "https://oms.popsockets.com/webhooks/orders_create",
        ),
        |s| s.name = Some("set-in-the-admin".into()),
    )];
    assert!(plan(&d, &actual).changes.is_empty());
}

#[test]
fn pub_sub_and_event_bridge_are_ours_only_at_the_exact_uri() {
    let d = from_spec(&webhooks(FULL), "oms.popsockets.com", &[]);
    let mut actual = applied("oms.popsockets.com");
    // The same topic on another Pub/Sub topic: not ours, not a duplicate.
    actual.push(sub(90, "orders/create", "pubsub://oms-prod:other"));
    // A topic the spec does not want at a uri it names: prune's to delete.
    actual.push(sub(91, "orders/updated", "pubsub://oms-prod:orders"));
    let p = plan(&d, &actual);
    assert!(p.changes.is_empty());
    assert_eq!(p.unmanaged.len(), 2);
    let mut spec = webhooks(FULL);
    spec.prune = Some(true);
    let p = plan(&from_spec(&spec, "oms.popsockets.com", &[]), &actual);
    assert_eq!(deleted(&p), ["gid://shopify/WebhookSubscription/91"]);
    // Dropped from the spec, its subscriptions become prune's (the uri is
    // no longer named: they are left alone) and deletion's no more.
    spec.subscriptions.remove(1);
    let d = from_spec(&spec, "oms.popsockets.com", &[]);
    let p = plan(&d, &actual);
    assert!(deleted(&p).is_empty(), "{:?}", p.changes);
    assert!(
        owned_subscriptions(&d.wanted, &BTreeSet::new(), &actual)
            .iter()
            .all(|s| !s.address.starts_with("pubsub://"))
    );
}

#[test]
fn topics_without_scope_plan_nothing() {
    let mut d = desired("oms.popsockets.com", &TOPICS, false);
    d.unauthorized_topics.insert("products/update".into());
    let p = plan(&d, &[]);
    assert_eq!(p.changes.len(), 3);
    assert!(p.changes.iter().all(|c| c.topic() != "products/update"));
    assert_eq!(p.topics[2].state, TopicState::MissingScope);
}

#[test]
fn plan_is_deterministic() {
    let mut actual = rails_registered("old.example.com");
    let a = plan(&desired("oms.popsockets.com", &TOPICS, true), &actual);
    actual.reverse();
    let b = plan(&desired("oms.popsockets.com", &TOPICS, true), &actual);
    assert_eq!(a, b);
}

#[test]
fn non_https_addresses_are_never_ours() {
    let actual = vec![sub(
        1,
        "orders/create",
        "http://oms.popsockets.com/webhooks/orders_create",
    )];
    let p = plan(&desired("oms.popsockets.com", &["orders/create"], false), &actual);
    assert_eq!(p.topics[0].state, TopicState::Missing);
    assert_eq!(p.unmanaged.len(), 1);
}

#[test]
fn the_operators_own_uninstall_subscription_sits_beside_the_omss() {
    let extra = vec![Extra {
        topic: "app/uninstalled".into(),
        host: "operator.example.com".into(),
        path_template: "/shopify/webhooks/{topic}".into(),
    }];
    let spec = webhooks(&format!(
        "{{endpoint: {{host: oms.popsockets.com}}, topics: [{}], prune: true}}",
        TOPICS.join(", ")
    ));
    let d = from_spec(&spec, "oms.popsockets.com", &extra);
    // Adoption of the OMS's four; the operator's is created, nothing of
    // the OMS's app/uninstalled is touched (even with prune).
    let p = plan(&d, &rails_registered("oms.popsockets.com"));
    assert_eq!(p.topics.len(), 5);
    assert_eq!(
        p.changes,
        vec![Change::Create {
            topic: "app/uninstalled".into(),
            address: "https://operator.example.com/shopify/webhooks/app_uninstalled".into(),
            format: Format::Json,
            options: Options::default(),
        }]
    );
    // Once it exists both are in sync, and deletion owns both.
    let mut actual = rails_registered("oms.popsockets.com");
    actual.push(sub(
        200,
        "app/uninstalled",
        "https://operator.example.com/shopify/webhooks/app_uninstalled",
    ));
    let p = plan(&d, &actual);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert_eq!(p.in_sync(), 5);
    assert_eq!(owned_subscriptions(&d.wanted, &BTreeSet::new(), &actual).len(), 5);
}

#[test]
fn owned_subscriptions_match_the_families_only() {
    let mut actual = rails_registered("old.example.com");
    actual.push(sub(
        51,
        "orders/create",
        "https://analytics.example.com/hooks/shopify",
    ));
    let d = desired("oms.popsockets.com", &TOPICS[..2], false);
    assert_eq!(owned_subscriptions(&d.wanted, &BTreeSet::new(), &actual).len(), 2);
}

#[test]
fn a_dropped_entry_the_inventory_holds_is_pruned_or_reported_and_nothing_else_is() {
    // Applied from FULL: Pub/Sub (ids 12, 13), an HTTPS path (14) and a
    // filtered HTTPS topic (11); then the spec drops the Pub/Sub entry and
    // the catalog path. A foreign Pub/Sub subscription (90) sits beside.
    let mut actual = applied("oms.popsockets.com");
    actual.push(sub(90, "orders/create", "pubsub://analytics:orders"));
    let owned: BTreeSet<String> = actual[..5].iter().map(|s| s.id.clone()).collect();
    let mut spec = webhooks(FULL);
    spec.subscriptions.retain(|e| e.uri.is_none() && e.path.is_none());
    let mut d = from_spec(&spec, "oms.popsockets.com", &[]);
    d.owned = owned.clone();
    let ids = |subs: &[Subscription]| subs.iter().map(|s| numeric_id(&s.id)).collect::<Vec<_>>();
    // Without prune: reported, nothing sent.
    let p = plan(&d, &actual);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert_eq!(ids(&p.orphaned), [12, 13, 14]);
    assert_eq!(ids(&p.unmanaged), [12, 13, 14, 90]);
    // With prune: the orphans are deleted in the one document, the foreign
    // one is not (its uri is no longer named either way).
    d.prune = true;
    let deleted_ids = |p: &Plan| deleted(p).iter().map(|id| numeric_id(id)).collect::<Vec<_>>();
    assert_eq!(deleted_ids(&plan(&d, &actual)), [12, 13, 14]);
    // Without an inventory only what sits at a destination the spec still
    // names (HTTPS at the endpoint host) is prune's.
    d.owned.clear();
    assert_eq!(deleted_ids(&plan(&d, &actual)), [14]);
    // Deletion with deletionPolicy: Delete takes the orphans too.
    let all = owned_subscriptions(&d.wanted, &owned, &actual);
    assert_eq!(
        ids(&all.into_iter().cloned().collect::<Vec<_>>()),
        [10, 11, 12, 13, 14]
    );
}
