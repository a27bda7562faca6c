//! Prometheus metrics (OpenMetrics text via prometheus-client). No I/O: the
//! HTTP server encodes [`Metrics::encode`] on `/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `result` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` or `error`.
    pub result: String,
}

/// Labels of Shopify request counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShopifyLabels {
    /// `list`, `apply`, `token_info`.
    pub operation: String,
    /// `ok` or a condition reason (`TokenRevoked`, `ShopifyThrottled`…).
    pub outcome: String,
}

/// `step` label of failed reconciles.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabel {
    /// The step that failed: `ingress`, `token_secret`, `finalizer`,
    /// `sync_jobs`, `status_write`.
    pub step: String,
}

/// `outcome` label of sync Jobs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// `created`, `succeeded`, `failed`.
    pub outcome: String,
}

/// Labels of `shopify_shop_condition`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    /// Shop namespace.
    pub namespace: String,
    /// Shop name.
    pub name: String,
    /// Condition type.
    pub condition: String,
    /// `True`, `False`, `Unknown`.
    pub status: String,
}

/// Labels of `shopify_shop_condition_reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Shop namespace.
    pub namespace: String,
    /// Shop name.
    pub name: String,
    /// Condition type.
    pub condition: String,
    /// The condition's current reason.
    pub reason: String,
}

/// Labels of `shopify_shop_served_api_version`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    /// Shop namespace.
    pub namespace: String,
    /// Shop name.
    pub name: String,
    /// `spec.adminApiVersion` (or its default).
    pub requested: String,
    /// What Shopify served instead (`X-Shopify-Api-Version`).
    pub served: String,
}

/// Labels of `shopify_shop_api_deprecated`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeprecationLabels {
    /// Shop namespace.
    pub namespace: String,
    /// Shop name.
    pub name: String,
    /// The version Shopify served (`X-Shopify-Api-Version`).
    pub version: String,
}

/// A gauge family with at most one series per key (shop, or shop and
/// condition), value 1: setting new labels for a key removes the old
/// series, so label values that change (a reason, a version) never leave
/// stale series behind and the series count stays bounded by the keys.
struct OneSeries<L> {
    family: Family<L, Gauge>,
    current: Mutex<HashMap<(String, String, String), L>>,
}

impl<L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static>
    OneSeries<L>
{
    fn new() -> Self {
        OneSeries {
            family: Family::default(),
            current: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the series of `key` to `labels` (`None`: no series).
    fn set(&self, key: (String, String, String), labels: Option<L>) {
        let mut current = self.current.lock().expect("series");
        let old = match &labels {
            Some(l) => current.insert(key, l.clone()),
            None => current.remove(&key),
        };
        if let Some(old) = old.filter(|o| Some(o) != labels.as_ref()) {
            self.family.remove(&old);
        }
        if let Some(l) = labels {
            self.family.get_or_create(&l).set(1);
        }
    }

    /// Drops every series of a shop.
    fn forget(&self, namespace: &str, name: &str) {
        let mut current = self.current.lock().expect("series");
        current.retain(|(ns, n, _), labels| {
            let keep = ns != namespace || n != name;
            if !keep {
                self.family.remove(labels);
            }
            keep
        });
    }
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by result.
    pub reconciles: Family<ResultLabel, Counter>,
    /// Failed reconciles by the step that failed.
    pub reconcile_errors: Family<StepLabel, Counter>,
    /// Reconcile duration.
    pub reconcile_duration: Histogram,
    /// Shopify HTTP requests by operation and outcome.
    pub shopify_requests: Family<ShopifyLabels, Counter>,
    /// Time spent waiting for a shop's cost bucket or after a throttle.
    pub throttle_wait_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Subscriptions repaired after drift made outside the operator.
    pub drift_repairs: Counter,
    /// Sync Jobs by outcome.
    pub sync_jobs: Family<JobLabels, Counter>,
    /// Status writes.
    pub status_writes: Counter,
    /// 1 while this process holds the leader Lease (or runs without
    /// leader election), 0 while it is a standby.
    pub leader: Gauge,
    /// 1 for each shop's current condition status, 0 for the others.
    pub shop_condition: Family<ConditionLabels, Gauge>,
    /// 1 for each shop condition's current reason (one series each).
    shop_condition_reason: OneSeries<ReasonLabels>,
    /// 1 while Shopify serves a shop another API version than it asks for.
    shop_served_version: OneSeries<VersionLabels>,
    /// 1 while Shopify flags a shop's requests as using something deprecated.
    shop_api_deprecated: OneSeries<DeprecationLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            shopify_requests: Family::default(),
            throttle_wait_seconds: Counter::default(),
            drift_repairs: Counter::default(),
            sync_jobs: Family::default(),
            status_writes: Counter::default(),
            leader: Gauge::default(),
            shop_condition: Family::default(),
            shop_condition_reason: OneSeries::new(),
            shop_served_version: OneSeries::new(),
            shop_api_deprecated: OneSeries::new(),
        };
        let ours = m.registry.sub_registry_with_prefix("shopify_operator");
        ours.register("reconciles", "Reconciles by result", m.reconciles.clone());
        ours.register(
            "reconcile_errors",
            "Failed reconciles by the step that failed",
            m.reconcile_errors.clone(),
        );
        ours.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            m.reconcile_duration.clone(),
        );
        ours.register(
            "shopify_requests",
            "Shopify Admin API requests by operation and outcome",
            m.shopify_requests.clone(),
        );
        ours.register(
            "shopify_throttle_wait_seconds",
            "Time spent waiting for Shopify's cost bucket",
            m.throttle_wait_seconds.clone(),
        );
        ours.register(
            "drift_repairs",
            "Webhook subscriptions repaired after a change outside the operator",
            m.drift_repairs.clone(),
        );
        ours.register("sync_jobs", "Sync Jobs by outcome", m.sync_jobs.clone());
        ours.register(
            "status_writes",
            "ShopifyShop status writes",
            m.status_writes.clone(),
        );
        ours.register("leader", "1 while this replica is the leader", m.leader.clone());
        // Unprefixed: the name people alert on, `shopify_shop_condition{condition="Ready",status="False"} == 1`.
        m.registry.register(
            "shopify_shop_condition",
            "1 for the current status of each shop condition",
            m.shop_condition.clone(),
        );
        m.registry.register(
            "shopify_shop_condition_reason",
            "1 for the current reason of each shop condition",
            m.shop_condition_reason.family.clone(),
        );
        m.registry.register(
            "shopify_shop_served_api_version",
            "1 while Shopify serves a shop another Admin API version than it asks for",
            m.shop_served_version.family.clone(),
        );
        m.registry.register(
            "shopify_shop_api_deprecated",
            "1 while Shopify answers a shop's requests with X-Shopify-API-Deprecated-Reason",
            m.shop_api_deprecated.family.clone(),
        );
        m
    }

    /// Counts a reconcile; `failed_step` is the step of a failed one.
    pub fn reconciled(&self, failed_step: Option<&str>, took: Duration) {
        let result = if failed_step.is_none() { "ok" } else { "error" }.to_string();
        self.reconciles.get_or_create(&ResultLabel { result }).inc();
        if let Some(step) = failed_step {
            self.reconcile_errors
                .get_or_create(&StepLabel { step: step.into() })
                .inc();
        }
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Counts Shopify requests of one operation.
    pub fn shopify(&self, operation: &str, outcome: &str, requests: u32, waited: Duration) {
        let labels = ShopifyLabels {
            operation: operation.into(),
            outcome: outcome.into(),
        };
        self.shopify_requests
            .get_or_create(&labels)
            .inc_by(u64::from(requests.max(1)));
        if !waited.is_zero() {
            self.throttle_wait_seconds.inc_by(waited.as_secs_f64());
        }
    }

    /// Sets a shop's condition series: 1 for `status`, 0 for the others,
    /// and its reason series.
    pub fn shop_condition(&self, namespace: &str, name: &str, condition: &str, status: &str, reason: &str) {
        self.shop_condition_reason.set(
            (namespace.into(), name.into(), condition.into()),
            Some(ReasonLabels {
                namespace: namespace.into(),
                name: name.into(),
                condition: condition.into(),
                reason: reason.into(),
            }),
        );
        for s in ["True", "False", "Unknown"] {
            let labels = ConditionLabels {
                namespace: namespace.into(),
                name: name.into(),
                condition: condition.into(),
                status: s.into(),
            };
            self.shop_condition
                .get_or_create(&labels)
                .set(i64::from(s == status));
        }
    }

    /// Sets (or, with `served` `None`, clears) the shop's served-version
    /// series.
    pub fn served_version(&self, namespace: &str, name: &str, requested: &str, served: Option<&str>) {
        let labels = served.map(|served| VersionLabels {
            namespace: namespace.into(),
            name: name.into(),
            requested: requested.into(),
            served: served.into(),
        });
        self.shop_served_version
            .set((namespace.into(), name.into(), String::new()), labels);
    }

    /// Sets (or, with `version` `None`, clears) the shop's deprecation
    /// series: Shopify flagged its requests at the served `version`.
    pub fn api_deprecated(&self, namespace: &str, name: &str, version: Option<&str>) {
        let labels = version.map(|version| DeprecationLabels {
            namespace: namespace.into(),
            name: name.into(),
            version: version.into(),
        });
        self.shop_api_deprecated
            .set((namespace.into(), name.into(), String::new()), labels);
    }

    /// Drops a deleted shop's condition, reason and version series.
    pub fn forget_shop(&self, namespace: &str, name: &str, conditions: &[&str]) {
        self.shop_condition_reason.forget(namespace, name);
        self.shop_served_version.forget(namespace, name);
        self.shop_api_deprecated.forget(namespace, name);
        for condition in conditions {
            for s in ["True", "False", "Unknown"] {
                self.shop_condition.remove(&ConditionLabels {
                    namespace: namespace.into(),
                    name: name.into(),
                    condition: (*condition).into(),
                    status: s.into(),
                });
            }
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

/// What each label's values are, for the generated metrics reference
/// (`crate::docs`). A test checks that every label the exposition carries
/// is listed here, so a new label cannot reach `/metrics` undocumented.
pub const LABEL_VALUES: &[(&str, &str)] = &[
    ("result", "`ok` or `error`"),
    (
        "step",
        "the step that failed: `ingress`, `token_secret`, `finalizer`, `sync_jobs`, `status_write` (Shopify failures are conditions, not errors)",
    ),
    ("operation", "`list`, `apply`, `token_info`"),
    (
        "outcome",
        "Shopify requests: `ok` or a condition reason (`TokenRevoked`, `ShopifyThrottled`…); sync Jobs: `created`, `succeeded`, `failed`",
    ),
    ("namespace", "the shop's namespace"),
    ("name", "the shop's name"),
    ("condition", "a condition type (`Ready`, `TokenValid`…)"),
    ("status", "`True`, `False`, `Unknown`"),
    (
        "reason",
        "the condition's current reason; the series of the previous reason is removed",
    ),
    ("requested", "`spec.adminApiVersion` (or its default)"),
    (
        "served",
        "the version Shopify served instead (`X-Shopify-Api-Version`)",
    ),
    ("version", "the version Shopify served (`X-Shopify-Api-Version`)"),
];

/// The exposition of a registry in which every family has one series, so
/// that every metric's HELP, TYPE and label names show: the input of the
/// generated metrics reference. Label values are placeholders.
pub fn reference_exposition() -> String {
    let m = Metrics::new();
    m.reconciled(Some("step"), Duration::ZERO);
    m.shopify("operation", "outcome", 1, Duration::ZERO);
    m.drift_repairs.inc_by(0);
    m.sync_jobs
        .get_or_create(&JobLabels {
            outcome: "outcome".into(),
        })
        .inc_by(0);
    m.shop_condition("namespace", "name", "condition", "status", "reason");
    m.served_version("namespace", "name", "requested", Some("served"));
    m.api_deprecated("namespace", "name", Some("version"));
    m.encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_alertable_series() {
        let m = Metrics::new();
        m.reconciled(None, Duration::from_millis(20));
        m.reconciled(Some("status_write"), Duration::from_millis(20));
        m.shopify("list", "ok", 1, Duration::ZERO);
        m.shop_condition("oms", "online", "Ready", "False", "SecretNotFound");
        m.served_version("oms", "online", "2025-07", Some("2025-10"));
        m.api_deprecated("oms", "online", Some("2025-10"));
        let text = m.encode();
        assert!(
            text.contains("shopify_operator_reconciles_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("shopify_operator_reconcile_errors_total{step=\"status_write\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("shopify_operator_shopify_requests_total{operation=\"list\",outcome=\"ok\"} 1")
        );
        assert!(text.contains(
            "shopify_shop_condition{namespace=\"oms\",name=\"online\",condition=\"Ready\",status=\"False\"} 1"
        ));
        assert!(text.contains(
            "shopify_shop_condition{namespace=\"oms\",name=\"online\",condition=\"Ready\",status=\"True\"} 0"
        ));
        assert!(text.contains(
            "shopify_shop_condition_reason{namespace=\"oms\",name=\"online\",condition=\"Ready\",reason=\"SecretNotFound\"} 1"
        ));
        assert!(text.contains(
            "shopify_shop_served_api_version{namespace=\"oms\",name=\"online\",requested=\"2025-07\",served=\"2025-10\"} 1"
        ));
        assert!(text.contains(
            "shopify_shop_api_deprecated{namespace=\"oms\",name=\"online\",version=\"2025-10\"} 1"
        ));
        assert!(text.ends_with("# EOF\n"));
        // A new reason replaces the old series; no version mismatch, no series.
        m.shop_condition("oms", "online", "Ready", "True", "Reconciled");
        m.served_version("oms", "online", "2025-07", None);
        m.api_deprecated("oms", "online", None);
        let text = m.encode();
        assert!(
            !text.contains("SecretNotFound") && !text.contains("served=\"") && !text.contains("version=\""),
            "{text}"
        );
        assert!(text.contains("reason=\"Reconciled\"} 1"), "{text}");
        m.forget_shop("oms", "online", &["Ready"]);
        assert!(!m.encode().contains("name=\"online\""));
    }

    #[test]
    fn every_label_in_the_exposition_is_documented() {
        for line in reference_exposition().lines().filter(|l| !l.starts_with('#')) {
            let Some((_, labels)) = line.split_once('{') else {
                continue;
            };
            for pair in labels.split('}').next().unwrap_or_default().split(',') {
                let label = pair.split('=').next().unwrap_or_default();
                if label != "le" {
                    assert!(
                        LABEL_VALUES.iter().any(|(l, _)| *l == label),
                        "label {label} of {line} is not in LABEL_VALUES"
                    );
                }
            }
        }
    }
}
