//! Webhook planning: desired subscriptions vs. what Shopify listed → the
//! fewest changes that make them match. Pure; no network.
//!
//! The spec is expanded into [`Wanted`] subscriptions, one per topic and
//! destination ([`wanted`]): the `topics` shorthand at the endpoint, each
//! `subscriptions[]` entry at its `path` or `uri`, and the operator's own
//! extras. Rules, per wanted subscription:
//! - Its *family* is every listed subscription of that topic at the same
//!   destination: for HTTPS the same path at any host (ours, registered by
//!   this operator or, before it, by the Rails app at the same path), for
//!   Pub/Sub and EventBridge the exact `uri`.
//! - A member matching in every field (address, format, filter, fields,
//!   metafields, name) is kept; with none, the one at the right address
//!   (else the oldest) is updated in place — a host change or a filter
//!   change is an update, never delete + create, so no delivery gap and the
//!   id is kept; with no member, one is created. Lists compare as sets.
//! - Further family members are duplicates: reported, deleted when
//!   `prune: true`.
//! - Any other subscription is someone else's unless the inventory holds
//!   it (the operator created or adopted it, and the spec has since
//!   dropped it: an *orphan*) or it sits at a destination the spec names
//!   (HTTPS at the endpoint host or at one of the spec's paths, or a `uri`
//!   the spec lists): those `prune: true` deletes, and orphans are reported
//!   without it; the rest are only counted.

mod compare;

pub(super) use compare::https_host;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

pub use crate::crd::TopicState;
use crate::crd::WebhooksSpec;
use shopify_admin::{Change, Format, Metafield, Options, Subscription, webhook_address};

/// What the spec asks for, resolved (host known, defaults applied).
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The endpoint's host: HTTPS subscriptions there are the spec's to
    /// prune.
    pub host: String,
    /// Every wanted subscription, in spec order.
    pub wanted: Vec<Wanted>,
    /// Delete duplicates, subscriptions at the spec's destinations that it
    /// does not want, and orphans.
    pub prune: bool,
    /// Topics the token lacks a scope for: planned as nothing, reported.
    pub unauthorized_topics: BTreeSet<String>,
    /// The inventory: ids of the subscriptions the operator created or
    /// adopted (from status). One the spec no longer wants is an orphan.
    pub owned: BTreeSet<String>,
}

/// One subscription the spec wants: a topic at a destination, with options.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// REST topic.
    pub topic: String,
    /// The address it should have (`https://…`, `pubsub://…`, an ARN).
    pub address: String,
    /// For HTTPS: the path template the address came from (its family is
    /// that path at any host); `None` for a `uri`.
    pub path_template: Option<String>,
    /// Payload format.
    pub format: Format,
    /// Filter, payload shaping, name.
    pub options: Options,
}

/// One subscription at its own host and path, beside the spec's (the
/// operator's own `app/uninstalled` endpoint).
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    /// REST topic.
    pub topic: String,
    /// Host of the address.
    pub host: String,
    /// Path template with `{topic}`.
    pub path_template: String,
}

/// Expands the webhooks spec at `host` (and the extras) into wanted
/// subscriptions, in spec order; a topic repeated at one destination is
/// wanted once (the first).
pub fn wanted(spec: &WebhooksSpec, host: &str, extra: &[Extra]) -> Vec<Wanted> {
    let format = match spec.format.unwrap_or_default() {
        crate::crd::WebhookFormat::Json => Format::Json,
        crate::crd::WebhookFormat::Xml => Format::Xml,
    };
    let template = spec.endpoint.path_template_or_default();
    let https = |topic: &str, host: &str, template: &str, options: Options| Wanted {
        topic: topic.to_string(),
        address: webhook_address(host, template, topic),
        path_template: Some(template.to_string()),
        format,
        options,
    };
    let mut out: Vec<Wanted> = spec
        .topics
        .iter()
        .map(|t| https(t, host, template, Options::default()))
        .collect();
    for entry in &spec.subscriptions {
        let mut metafields: Vec<Metafield> = entry
            .metafields
            .iter()
            .map(|m| Metafield {
                namespace: m.namespace.clone(),
                key: m.key.clone(),
            })
            .collect();
        metafields.sort();
        let options = Options {
            filter: entry.filter.clone(),
            include_fields: entry.include_fields.clone(),
            metafield_namespaces: entry.metafield_namespaces.clone(),
            metafields,
            name: entry.name.clone(),
        };
        for topic in &entry.topics {
            out.push(match &entry.uri {
                Some(uri) => Wanted {
                    topic: topic.clone(),
                    address: uri.clone(),
                    path_template: None,
                    format,
                    options: options.clone(),
                },
                None => https(
                    topic,
                    host,
                    entry.path.as_deref().unwrap_or(template),
                    options.clone(),
                ),
            });
        }
    }
    out.extend(
        extra
            .iter()
            .map(|e| https(&e.topic, &e.host, &e.path_template, Options::default())),
    );
    let mut seen = BTreeSet::new();
    out.retain(|w| seen.insert((w.topic.clone(), compare::family_key(w))));
    out
}

/// The plan for one wanted subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicPlan {
    /// REST topic.
    pub topic: String,
    /// The address it should have.
    pub address: String,
    /// The subscription kept or updated, if one exists.
    pub id: Option<String>,
    /// Where it stands before the plan is applied; a `Wrong…` state names
    /// the first field that differs.
    pub state: TopicState,
    /// Ids of further subscriptions of ours for the topic.
    pub duplicates: Vec<String>,
}

/// The whole plan for a shop.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// One entry per wanted subscription, in spec order.
    pub topics: Vec<TopicPlan>,
    /// Changes to send, in one document: updates, creates, then deletes.
    pub changes: Vec<Change>,
    /// Subscriptions that are not ours (other topics, foreign paths).
    pub unmanaged: Vec<Subscription>,
    /// Of those, the ones the inventory holds: deleted with `prune`,
    /// reported otherwise.
    pub orphaned: Vec<Subscription>,
}

impl Plan {
    /// Wanted subscriptions already in sync.
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

/// Computes the plan. Deterministic: the same input gives the same plan.
pub fn plan(desired: &Desired, actual: &[Subscription]) -> Plan {
    let mut actual: Vec<&Subscription> = actual.iter().collect();
    actual.sort_by_key(|s| numeric_id(&s.id));
    let mut claimed: BTreeSet<&str> = BTreeSet::new();
    let mut out = Plan::default();
    let mut updates = Vec::new();
    let mut creates = Vec::new();
    let mut deletes = Vec::new();

    for want in &desired.wanted {
        let family: Vec<&Subscription> = actual
            .iter()
            .copied()
            .filter(|s| compare::in_family(s, want))
            .collect();
        claimed.extend(family.iter().map(|s| s.id.as_str()));

        if desired.unauthorized_topics.contains(&want.topic) {
            out.topics.push(TopicPlan {
                topic: want.topic.clone(),
                address: want.address.clone(),
                id: family.first().map(|s| s.id.clone()),
                state: TopicState::MissingScope,
                duplicates: Vec::new(),
            });
            continue;
        }

        let keep = family
            .iter()
            .find(|s| compare::state(s, want) == TopicState::InSync)
            .or_else(|| family.iter().find(|s| s.address == want.address))
            .or_else(|| family.first())
            .copied();
        let (id, state) = match keep {
            None => {
                creates.push(Change::Create {
                    topic: want.topic.clone(),
                    address: want.address.clone(),
                    format: want.format,
                    options: want.options.clone(),
                });
                (None, TopicState::Missing)
            }
            Some(s) => {
                let state = compare::state(s, want);
                if state != TopicState::InSync {
                    updates.push(Change::Update {
                        id: s.id.clone(),
                        topic: want.topic.clone(),
                        address: want.address.clone(),
                        format: want.format,
                        options: want.options.clone(),
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
                topic: want.topic.clone(),
            }));
        }
        out.topics.push(TopicPlan {
            topic: want.topic.clone(),
            address: want.address.clone(),
            id,
            state,
            duplicates,
        });
    }

    for s in actual {
        if claimed.contains(s.id.as_str()) {
            continue;
        }
        let owned = desired.owned.contains(&s.id);
        if desired.prune && (owned || compare::at_named_destination(s, desired)) {
            deletes.push(Change::Delete {
                id: s.id.clone(),
                topic: s.topic.clone(),
            });
        }
        if owned {
            out.orphaned.push(s.clone());
        }
        out.unmanaged.push(s.clone());
    }

    out.changes = updates.into_iter().chain(creates).chain(deletes).collect();
    out
}

/// The subscriptions `deletionPolicy: Delete` removes: the families of the
/// wanted subscriptions (HTTPS at any host) and what the inventory holds
/// (`owned`: orphans too). Others' are never touched.
pub fn owned_subscriptions<'a>(
    wanted: &[Wanted],
    owned: &BTreeSet<String>,
    actual: &'a [Subscription],
) -> Vec<&'a Subscription> {
    actual
        .iter()
        .filter(|s| owned.contains(&s.id) || wanted.iter().any(|w| compare::in_family(s, w)))
        .collect()
}
