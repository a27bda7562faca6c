//! Webhook planning: desired subscriptions vs. what Shopify listed → the
//! fewest changes that make them match. Pure; no network.
//!
//! Rules, per desired topic:
//! - The topic's *family* is every listed subscription of that topic whose
//!   address has our path for it (`/webhooks/orders_create`), whatever the
//!   host: those are ours — registered by this operator or, before it, by the
//!   Rails app at the same path.
//! - An exact match (address and format) is kept; with none, the oldest
//!   family member is updated in place (a host change is N updates, never
//!   delete + create, so no delivery gap); with no family member, one is
//!   created.
//! - Further family members are duplicates: reported, deleted when
//!   `prune: true`.
//! - Subscriptions of topics not in the spec, or of a desired topic at a
//!   foreign path, belong to someone else: counted, deleted only with
//!   `prune: true`.

use std::collections::BTreeSet;

pub use crate::crd::TopicState;
use shopify_admin::{Change, Format, Subscription, webhook_address};

/// What the spec asks for, resolved (host known, defaults applied).
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Host the addresses point at.
    pub host: String,
    /// Path template with `{topic}`.
    pub path_template: String,
    /// Payload format.
    pub format: Format,
    /// REST topics, in spec order.
    pub topics: Vec<String>,
    /// Delete duplicates and subscriptions not in the spec.
    pub prune: bool,
    /// Topics the token lacks a scope for: planned as nothing, reported.
    pub unauthorized_topics: BTreeSet<String>,
    /// Subscriptions wanted at another host and path than the spec's (the
    /// operator's own `app/uninstalled` endpoint), planned after the topics.
    pub extra: Vec<Extra>,
}

/// One subscription at its own host and path, beside the spec's topics.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    /// REST topic.
    pub topic: String,
    /// Host of the address.
    pub host: String,
    /// Path template with `{topic}`.
    pub path_template: String,
}

/// The plan for one desired topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicPlan {
    /// REST topic.
    pub topic: String,
    /// The address it should have.
    pub address: String,
    /// The subscription kept or updated, if one exists.
    pub id: Option<String>,
    /// Where it stands before the plan is applied.
    pub state: TopicState,
    /// Ids of further subscriptions of ours for the topic.
    pub duplicates: Vec<String>,
}

/// The whole plan for a shop.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// One entry per desired topic, in spec order.
    pub topics: Vec<TopicPlan>,
    /// Changes to send, in one document: updates, creates, then deletes.
    pub changes: Vec<Change>,
    /// Subscriptions that are not ours (other topics, foreign paths).
    pub unmanaged: Vec<Subscription>,
}

impl Plan {
    /// Desired topics already in sync.
    #[cfg(test)]
    fn in_sync(&self) -> usize {
        self.topics
            .iter()
            .filter(|t| t.state == TopicState::InSync)
            .count()
    }

    /// Number of duplicate subscriptions found.
    pub fn duplicates(&self) -> usize {
        self.topics.iter().map(|t| t.duplicates.len()).sum()
    }
}

/// The numeric part of a `gid://shopify/WebhookSubscription/N` id, for a
/// stable "oldest first" order.
fn numeric_id(id: &str) -> u64 {
    id.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The path of an `https://host/path` address (`None` for other schemes,
/// which are never ours).
fn https_path(address: &str) -> Option<&str> {
    let rest = address.strip_prefix("https://")?;
    Some(rest.find('/').map(|i| &rest[i..]).unwrap_or("/"))
}

/// Computes the plan. Deterministic: the same input gives the same plan.
pub fn plan(desired: &Desired, actual: &[Subscription]) -> Plan {
    let mut actual: Vec<&Subscription> = actual.iter().collect();
    actual.sort_by_key(|s| numeric_id(&s.id));
    let mut claimed: BTreeSet<&str> = BTreeSet::new();
    let mut out = Plan::default();
    let mut updates = Vec::new();
    let mut creates = Vec::new();
    let mut deletes = Vec::new();

    let wanted = desired
        .topics
        .iter()
        .map(|t| (t, &desired.host, &desired.path_template))
        .chain(
            desired
                .extra
                .iter()
                .map(|e| (&e.topic, &e.host, &e.path_template)),
        );
    for (topic, host, path_template) in wanted {
        let address = webhook_address(host, path_template, topic);
        let our_path = https_path(&address).unwrap_or("/");
        let family: Vec<&Subscription> = actual
            .iter()
            .copied()
            .filter(|s| s.topic == *topic && https_path(&s.address) == Some(our_path))
            .collect();
        claimed.extend(family.iter().map(|s| s.id.as_str()));

        if desired.unauthorized_topics.contains(topic) {
            out.topics.push(TopicPlan {
                topic: topic.clone(),
                address,
                id: family.first().map(|s| s.id.clone()),
                state: TopicState::MissingScope,
                duplicates: Vec::new(),
            });
            continue;
        }

        let keep = family
            .iter()
            .find(|s| s.address == address && s.format == desired.format)
            .or_else(|| family.iter().find(|s| s.address == address))
            .or_else(|| family.first())
            .copied();
        let (id, state) = match keep {
            None => {
                creates.push(Change::Create {
                    topic: topic.clone(),
                    address: address.clone(),
                    format: desired.format,
                });
                (None, TopicState::Missing)
            }
            Some(s) => {
                let state = if s.address != address {
                    TopicState::WrongAddress
                } else if s.format != desired.format {
                    TopicState::WrongFormat
                } else {
                    TopicState::InSync
                };
                if state != TopicState::InSync {
                    updates.push(Change::Update {
                        id: s.id.clone(),
                        topic: topic.clone(),
                        address: address.clone(),
                        format: desired.format,
                    });
                }
                (Some(s.id.clone()), state)
            }
        };
        let duplicates: Vec<String> = family
            .iter()
            .filter(|s| Some(s.id.as_str()) != id.as_deref())
            .map(|s| s.id.clone())
            .collect();
        if desired.prune {
            deletes.extend(duplicates.iter().map(|d| Change::Delete {
                id: d.clone(),
                topic: topic.clone(),
            }));
        }
        out.topics.push(TopicPlan {
            topic: topic.clone(),
            address,
            id,
            state,
            duplicates,
        });
    }

    for s in actual {
        if claimed.contains(s.id.as_str()) {
            continue;
        }
        if desired.prune {
            deletes.push(Change::Delete {
                id: s.id.clone(),
                topic: s.topic.clone(),
            });
        }
        out.unmanaged.push(s.clone());
    }

    out.changes = updates.into_iter().chain(creates).chain(deletes).collect();
    out
}

/// The subscriptions `deletionPolicy: Delete` removes: the families of the
/// desired topics, at any host. Others' subscriptions are never touched.
pub fn owned_subscriptions<'a>(
    path_template: &str,
    topics: &[String],
    extra: &[Extra],
    actual: &'a [Subscription],
) -> Vec<&'a Subscription> {
    let families: Vec<(&String, &str)> = topics
        .iter()
        .map(|t| (t, path_template))
        .chain(extra.iter().map(|e| (&e.topic, e.path_template.as_str())))
        .collect();
    actual
        .iter()
        .filter(|s| {
            families.iter().any(|(t, path_template)| {
                let address = webhook_address("example.invalid", path_template, t);
                s.topic == **t && https_path(&s.address) == https_path(&address)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            api_version: Some("2025-07".into()),
        }
    }

    fn desired(host: &str, topics: &[&str], prune: bool) -> Desired {
        Desired {
            host: host.into(),
            path_template: "/webhooks/{topic}".into(),
            format: Format::Json,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            prune,
            unauthorized_topics: BTreeSet::new(),
            extra: Vec::new(),
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
                format: Format::Json
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
    fn others_subscriptions_are_left_alone_unless_prune() {
        let mut actual = rails_registered("oms.popsockets.com");
        actual.push(sub(
            50,
            "customers/create",
            "https://oms.popsockets.com/webhooks/customers_create",
        ));
        actual.push(sub(
            51,
            "orders/create",
            "https://analytics.example.com/hooks/shopify",
        ));
        let p = plan(&desired("oms.popsockets.com", &TOPICS, false), &actual);
        assert!(p.changes.is_empty());
        assert_eq!(p.unmanaged.len(), 2);
        assert_eq!(p.duplicates(), 0);

        let p = plan(&desired("oms.popsockets.com", &TOPICS, true), &actual);
        let deleted: Vec<&str> = p
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Delete { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            deleted,
            [
                "gid://shopify/WebhookSubscription/50",
                "gid://shopify/WebhookSubscription/51"
            ]
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
        let mut d = desired("oms.popsockets.com", &TOPICS, true);
        d.extra = vec![Extra {
            topic: "app/uninstalled".into(),
            host: "operator.example.com".into(),
            path_template: "/shopify/webhooks/{topic}".into(),
        }];
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
        let topics: Vec<String> = TOPICS.iter().map(|t| t.to_string()).collect();
        assert_eq!(
            owned_subscriptions("/webhooks/{topic}", &topics, &d.extra, &actual).len(),
            5
        );
    }

    #[test]
    fn owned_subscriptions_match_the_families_only() {
        let mut actual = rails_registered("old.example.com");
        actual.push(sub(
            51,
            "orders/create",
            "https://analytics.example.com/hooks/shopify",
        ));
        let topics: Vec<String> = TOPICS[..2].iter().map(|s| s.to_string()).collect();
        let owned = owned_subscriptions("/webhooks/{topic}", &topics, &[], &actual);
        assert_eq!(owned.len(), 2);
    }
}
