//! Prometheus metrics (OpenMetrics text via prometheus-client). No I/O: the
//! HTTP server encodes [`Metrics::encode`] on `/metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod shops;

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
    /// Each shop's condition, reason, served-version and deprecation
    /// series (one compact record per shop, see [`shops`]).
    shops: shops::ShopGauges,
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
            shops: shops::ShopGauges::default(),
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
        m.registry.register_collector(Box::new(m.shops.clone()));
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
        self.shops.condition(namespace, name, condition, status, reason);
    }

    /// Sets (or, with `served` `None`, clears) the shop's served-version
    /// series.
    pub fn served_version(&self, namespace: &str, name: &str, requested: &str, served: Option<&str>) {
        self.shops.served(namespace, name, requested, served);
    }

    /// Sets (or, with `version` `None`, clears) the shop's deprecation
    /// series: Shopify flagged its requests at the served `version`.
    pub fn api_deprecated(&self, namespace: &str, name: &str, version: Option<&str>) {
        self.shops.deprecated(namespace, name, version);
    }

    /// Drops a deleted shop's condition, reason and version series.
    pub fn forget_shop(&self, namespace: &str, name: &str) {
        self.shops.forget(namespace, name);
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
        m.forget_shop("oms", "online");
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
