//! How a listed subscription compares with a wanted one: same family (same
//! topic at the same destination), and which field differs first. Pure.

use std::collections::BTreeSet;

use shopify_admin::{Subscription, topic_path_segment};

use super::{Desired, TopicState, Wanted};

/// The path of an `https://host/path` address (`None` for other schemes,
/// which are never an HTTPS family).
pub(super) fn https_path(address: &str) -> Option<&str> {
    let rest = address.strip_prefix("https://")?;
    Some(rest.find('/').map(|i| &rest[i..]).unwrap_or("/"))
}

/// The host of an `https://host/path` address.
pub(in crate::controller) fn https_host(address: &str) -> Option<&str> {
    let rest = address.strip_prefix("https://")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// What tells two wanted subscriptions of one topic apart: the HTTPS path
/// (any host), or the exact address.
pub(super) fn family_key(w: &Wanted) -> String {
    match (&w.path_template, https_path(&w.address)) {
        (Some(_), Some(path)) => format!("path:{path}"),
        _ => format!("uri:{}", w.address),
    }
}

/// True when `s` is of `w`'s family: the same topic, and the same path at
/// any host (HTTPS) or the same address (Pub/Sub, EventBridge).
pub(super) fn in_family(s: &Subscription, w: &Wanted) -> bool {
    s.topic == w.topic
        && match &w.path_template {
            Some(_) => https_path(&s.address).is_some() && https_path(&s.address) == https_path(&w.address),
            None => s.address == w.address,
        }
}

/// True when `s` sits at a destination the spec names, so `prune` may
/// delete it: HTTPS at the endpoint host or at one of the spec's paths
/// (for `s`'s topic), or exactly a `uri` the spec lists.
pub(super) fn at_named_destination(s: &Subscription, desired: &Desired) -> bool {
    match https_path(&s.address) {
        Some(path) => {
            https_host(&s.address) == Some(desired.host.as_str())
                || desired.wanted.iter().any(|w| {
                    w.path_template
                        .as_deref()
                        .is_some_and(|t| t.replace("{topic}", &topic_path_segment(&s.topic)) == path)
                })
        }
        None => desired
            .wanted
            .iter()
            .any(|w| w.path_template.is_none() && w.address == s.address),
    }
}

fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
    items.iter().cloned().collect()
}

/// Where `s` stands against `w`: `InSync`, or the first field that differs,
/// in the order address, format, filter, fields, metafields, name. Lists
/// compare as sets; an empty filter is no filter; the name is compared
/// only when the spec sets one (the operator does not clear names).
pub(super) fn state(s: &Subscription, w: &Wanted) -> TopicState {
    let filter = |f: &Option<String>| f.clone().filter(|f| !f.is_empty());
    if s.address != w.address {
        TopicState::WrongAddress
    } else if s.format != w.format {
        TopicState::WrongFormat
    } else if filter(&s.filter) != filter(&w.options.filter) {
        TopicState::WrongFilter
    } else if set(&s.include_fields) != set(&w.options.include_fields) {
        TopicState::WrongFields
    } else if set(&s.metafield_namespaces) != set(&w.options.metafield_namespaces)
        || set(&s.metafields) != set(&w.options.metafields)
    {
        TopicState::WrongMetafields
    } else if w.options.name.is_some() && s.name != w.options.name {
        TopicState::WrongName
    } else {
        TopicState::InSync
    }
}
