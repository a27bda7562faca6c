//! The per-shop gauges (`shopify_shop_condition`, `…_condition_reason`,
//! `…_served_api_version`, `…_api_deprecated`), kept as one small record
//! per shop and written out only when `/metrics` is scraped.
//!
//! Why not a `Family` per metric: a family owns every label value of every
//! series, so a shop's 6 conditions × 3 statuses cost 18 hash-map entries
//! of four `String`s each — about 8 KB per shop, more than the rest of the
//! operator's state for it. Here the vocabulary (namespaces, condition
//! types, statuses, reasons, versions) is interned once and a shop holds a
//! few shared pointers; the exposition is the same series, in a fixed order
//! (namespace, name, condition).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

/// The statuses a condition series is exported for (1 for the current
/// one, 0 for the others).
const STATUSES: [&str; 3] = ["True", "False", "Unknown"];

/// A word of the bounded vocabulary, shared by every shop that uses it.
type Word = Arc<str>;

/// One condition of one shop.
#[derive(Debug, Clone, PartialEq)]
struct Condition {
    type_: Word,
    status: Word,
    reason: Word,
}

/// What one shop exports.
#[derive(Debug, Default)]
struct Shop {
    /// In the order first set (the order of the shop's status).
    conditions: Vec<Condition>,
    /// `(requested, served)` while Shopify serves another version.
    served: Option<(Word, Word)>,
    /// The served version while Shopify flags deprecated usage.
    deprecated: Option<Word>,
}

#[derive(Debug, Default)]
struct Table {
    /// Namespace → shop name → gauges; sorted, so a scrape is stable.
    shops: BTreeMap<Word, BTreeMap<Box<str>, Shop>>,
    words: HashSet<Word>,
}

impl Table {
    /// The shared copy of `s`. Only words from a bounded set reach here
    /// (condition types, statuses, reasons, API versions, namespaces), so
    /// the set never needs pruning.
    fn word(&mut self, s: &str) -> Word {
        if let Some(w) = self.words.get(s) {
            return w.clone();
        }
        let w: Word = s.into();
        self.words.insert(w.clone());
        w
    }

    fn shop(&mut self, namespace: &str, name: &str) -> &mut Shop {
        let ns = self.word(namespace);
        self.shops.entry(ns).or_default().entry(name.into()).or_default()
    }
}

/// The per-shop gauges; cheap to clone (one table).
#[derive(Debug, Default, Clone)]
pub(super) struct ShopGauges(Arc<Mutex<Table>>);

impl ShopGauges {
    /// Sets a shop's condition: its status and reason.
    pub(super) fn condition(&self, namespace: &str, name: &str, type_: &str, status: &str, reason: &str) {
        let mut t = self.0.lock().expect("shop gauges");
        let next = Condition {
            type_: t.word(type_),
            status: t.word(status),
            reason: t.word(reason),
        };
        let shop = t.shop(namespace, name);
        match shop.conditions.iter_mut().find(|c| *c.type_ == *type_) {
            Some(c) => *c = next,
            None => shop.conditions.push(next),
        }
    }

    /// Sets (or clears) the version Shopify serves instead of the one asked.
    pub(super) fn served(&self, namespace: &str, name: &str, requested: &str, served: Option<&str>) {
        let mut t = self.0.lock().expect("shop gauges");
        let next = served.map(|s| (t.word(requested), t.word(s)));
        t.shop(namespace, name).served = next;
    }

    /// Sets (or clears) the version at which Shopify flags deprecated usage.
    pub(super) fn deprecated(&self, namespace: &str, name: &str, version: Option<&str>) {
        let mut t = self.0.lock().expect("shop gauges");
        let next = version.map(|v| t.word(v));
        t.shop(namespace, name).deprecated = next;
    }

    /// Drops every series of a shop.
    pub(super) fn forget(&self, namespace: &str, name: &str) {
        let mut t = self.0.lock().expect("shop gauges");
        if let Some(shops) = t.shops.get_mut(namespace) {
            shops.remove(name);
            if shops.is_empty() {
                t.shops.remove(namespace);
            }
        }
    }
}

/// Writes one series: its labels after `namespace` and `name`, and value.
type Emit<'a> = dyn FnMut(&[(&str, &str)], i64) -> std::fmt::Result + 'a;

/// One metric family written from the table: its name, help (with the
/// full stop the registry adds to the others), and the series of one shop
/// as (label pairs after `namespace` and `name`, value).
struct Family {
    name: &'static str,
    help: &'static str,
    series: fn(&Shop, &mut Emit<'_>) -> std::fmt::Result,
}

const FAMILIES: [Family; 4] = [
    Family {
        // Unprefixed: the name people alert on,
        // `shopify_shop_condition{condition="Ready",status="False"} == 1`.
        name: "shopify_shop_condition",
        help: "1 for the current status of each shop condition.",
        series: |shop, emit| {
            for c in &shop.conditions {
                for s in STATUSES {
                    emit(
                        &[("condition", &c.type_), ("status", s)],
                        i64::from(*c.status == *s),
                    )?;
                }
            }
            Ok(())
        },
    },
    Family {
        name: "shopify_shop_condition_reason",
        help: "1 for the current reason of each shop condition.",
        series: |shop, emit| {
            for c in &shop.conditions {
                emit(&[("condition", &c.type_), ("reason", &c.reason)], 1)?;
            }
            Ok(())
        },
    },
    Family {
        name: "shopify_shop_served_api_version",
        help: "1 while Shopify serves a shop another Admin API version than it asks for.",
        series: |shop, emit| match &shop.served {
            Some((requested, served)) => emit(&[("requested", requested), ("served", served)], 1),
            None => Ok(()),
        },
    },
    Family {
        name: "shopify_shop_api_deprecated",
        help: "1 while Shopify answers a shop's requests with X-Shopify-API-Deprecated-Reason.",
        series: |shop, emit| match &shop.deprecated {
            Some(version) => emit(&[("version", version)], 1),
            None => Ok(()),
        },
    },
];

impl Collector for ShopGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let t = self.0.lock().expect("shop gauges");
        for family in &FAMILIES {
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, MetricType::Gauge)?;
            for (namespace, shops) in &t.shops {
                for (name, shop) in shops {
                    (family.series)(shop, &mut |labels, value| {
                        let all = ([("namespace", &**namespace), ("name", &**name)], labels);
                        ConstGauge::new(value).encode(metric.encode_family(&all)?)
                    })?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn exposition(gauges: &ShopGauges) -> Vec<String> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(gauges.clone()));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out.lines()
            .filter(|l| l.starts_with("shopify_shop_condition_reason{"))
            .map(String::from)
            .collect()
    }

    #[test]
    fn one_series_per_condition_in_shop_order_and_a_forgotten_shop_has_none() {
        let g = ShopGauges::default();
        g.condition("b", "online", "Ready", "False", "SecretNotFound");
        g.condition("a", "retail", "Ready", "True", "Reconciled");
        g.condition("b", "online", "TokenValid", "False", "SecretNotFound");
        g.condition("b", "online", "Ready", "True", "Reconciled");
        let reason = |ns: &str, name: &str, c: &str, r: &str| {
            format!(
                "shopify_shop_condition_reason{{namespace=\"{ns}\",name=\"{name}\",condition=\"{c}\",reason=\"{r}\"}} 1"
            )
        };
        assert_eq!(
            exposition(&g),
            [
                reason("a", "retail", "Ready", "Reconciled"),
                reason("b", "online", "Ready", "Reconciled"),
                reason("b", "online", "TokenValid", "SecretNotFound"),
            ]
        );
        g.forget("b", "online");
        assert_eq!(exposition(&g), [reason("a", "retail", "Ready", "Reconciled")]);
    }
}
