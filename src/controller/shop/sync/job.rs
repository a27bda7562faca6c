//! Building a sync Job from `spec.sync[].jobTemplate`, and reading Jobs
//! back. Pure.
//!
//! The template stays JSON so fields this operator doesn't know round-trip
//! unchanged; only labels, the owner reference, an annotation and the
//! `SHOPIFY_*` environment variables are added.

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::token_store::ACCESS_TOKEN_KEY;

/// Label: the ShopifyShop's name.
pub const SHOP_LABEL: &str = "shopify-operator.dev/shop";
/// Label: the sync's name.
pub const SYNC_LABEL: &str = "shopify-operator.dev/sync";
/// Annotation: the slot the Job runs for (RFC 3339).
pub const SCHEDULED_AT: &str = "shopify-operator.dev/scheduled-at";
/// Annotation: the manual trigger value that started the Job.
pub const TRIGGER: &str = "shopify-operator.dev/sync-now";

/// Everything a Job is built from.
#[derive(Debug, Clone)]
pub struct JobInputs<'a> {
    /// ShopifyShop name.
    pub shop: &'a str,
    /// ShopifyShop uid (owner reference).
    pub shop_uid: &'a str,
    /// Shop domain.
    pub domain: &'a str,
    /// Admin API version.
    pub api_version: &'a str,
    /// Token Secret name.
    pub token_secret: &'a str,
    /// Sync name.
    pub sync: &'a str,
    /// The sync's `jobTemplate`.
    pub template: &'a Value,
    /// The slot (or trigger time).
    pub scheduled_at: Timestamp,
    /// Scheduled time of the last successful run.
    pub since: Option<Timestamp>,
    /// The manual trigger value, for manual runs.
    pub trigger: Option<&'a str>,
}

fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..4])
}

/// The Job's name: `{shop}-{sync}-{slot in minutes}` like a CronJob's, or
/// `{shop}-{sync}-m{hash of the trigger}` for a manual run — deterministic,
/// so a restart never makes a second Job for one slot. Names that would pass
/// 63 characters (the pod label limit) are shortened with a hash.
pub fn job_name(shop: &str, sync: &str, scheduled_at: Timestamp, trigger: Option<&str>) -> String {
    let suffix = match trigger {
        Some(t) => format!("m{}", short_hash(t)),
        None => (scheduled_at.as_second() / 60).to_string(),
    };
    let base = format!("{shop}-{sync}");
    let max_base = 63 - 1 - suffix.len();
    let base = if base.len() <= max_base {
        base
    } else {
        let keep = max_base - 9;
        format!("{}-{}", base[..keep].trim_end_matches('-'), short_hash(&base))
    };
    format!("{base}-{suffix}")
}

fn env(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// Builds the Job. Errors name what is wrong with the template.
pub fn build(i: &JobInputs<'_>) -> Result<Job, String> {
    let mut template = i.template.clone();
    if !template.is_object() {
        return Err("jobTemplate must be an object".into());
    }
    let spec = template
        .get_mut("spec")
        .filter(|s| s.is_object())
        .ok_or("jobTemplate.spec is missing")?;
    let pod = spec
        .pointer_mut("/template/spec")
        .filter(|s| s.is_object())
        .ok_or("jobTemplate.spec.template.spec is missing")?;
    if pod.get("restartPolicy").is_none() {
        // A Job's pods may not use the default `Always`.
        pod["restartPolicy"] = json!("Never");
    }
    let mut vars = vec![
        env("SHOPIFY_SHOP_DOMAIN", i.domain),
        env("SHOPIFY_API_VERSION", i.api_version),
        json!({"name": "SHOPIFY_ACCESS_TOKEN",
               "valueFrom": {"secretKeyRef": {"name": i.token_secret, "key": ACCESS_TOKEN_KEY}}}),
        env("SHOPIFY_SYNC_NAME", i.sync),
        env("SHOPIFY_SYNC_SCHEDULED_AT", &i.scheduled_at.to_string()),
    ];
    if let Some(since) = i.since {
        vars.push(env("SHOPIFY_SYNC_SINCE", &since.to_string()));
    }
    let names: Vec<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
    let mut containers = 0;
    for key in ["containers", "initContainers"] {
        let Some(list) = pod.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in list {
            let Some(obj) = c.as_object_mut() else {
                return Err(format!("jobTemplate: {key} entries must be objects"));
            };
            let env_list = obj.entry("env").or_insert_with(|| json!([]));
            let Some(env_list) = env_list.as_array_mut() else {
                return Err("jobTemplate: env must be a list".into());
            };
            // Ours win: a template value of the same name is replaced.
            env_list.retain(|e| e["name"].as_str().is_none_or(|n| !names.contains(&n)));
            env_list.extend(vars.iter().cloned());
            containers += 1;
        }
    }
    if pod
        .get("containers")
        .and_then(Value::as_array)
        .is_none_or(|c| c.is_empty())
        || containers == 0
    {
        return Err("jobTemplate.spec.template.spec.containers is empty".into());
    }

    let labels = json!({SHOP_LABEL: i.shop, SYNC_LABEL: i.sync});
    let pod_meta = spec.pointer_mut("/template").expect("checked above");
    merge_labels(pod_meta, &labels);
    let mut meta = template.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if !meta.is_object() {
        return Err("jobTemplate.metadata must be an object".into());
    }
    let name = job_name(i.shop, i.sync, i.scheduled_at, i.trigger);
    meta["name"] = json!(name);
    merge_labels_in(&mut meta, &labels);
    let mut annotations = json!({SCHEDULED_AT: i.scheduled_at.to_string()});
    if let Some(t) = i.trigger {
        annotations[TRIGGER] = json!(t);
    }
    merge_map(&mut meta, "annotations", &annotations);
    meta["ownerReferences"] = json!([{
        "apiVersion": "shopify-operator.dev/v1alpha1",
        "kind": "ShopifyShop",
        "name": i.shop,
        "uid": i.shop_uid,
        "controller": true,
        "blockOwnerDeletion": true,
    }]);
    for k in [
        "namespace",
        "resourceVersion",
        "uid",
        "generateName",
        "creationTimestamp",
    ] {
        meta.as_object_mut().expect("object").remove(k);
    }
    let job =
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template["spec"].clone()});
    serde_json::from_value(job).map_err(|e| format!("jobTemplate is not a valid Job: {e}"))
}

fn merge_map(obj: &mut Value, key: &str, add: &Value) {
    let entry = obj
        .as_object_mut()
        .expect("object")
        .entry(key)
        .or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    for (k, v) in add.as_object().expect("object") {
        entry[k] = v.clone();
    }
}

fn merge_labels_in(meta: &mut Value, labels: &Value) {
    merge_map(meta, "labels", labels);
}

fn merge_labels(pod_template: &mut Value, labels: &Value) {
    let meta = pod_template
        .as_object_mut()
        .expect("object")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    merge_labels_in(meta, labels);
}

/// Where a Job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Not finished.
    Running,
    /// Condition `Complete`.
    Succeeded,
    /// Condition `Failed`.
    Failed,
}

/// What the controller needs of a Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    /// Job name.
    pub name: String,
    /// Its sync.
    pub sync: String,
    /// Its slot.
    pub scheduled_at: Timestamp,
    /// Where it stands.
    pub state: JobState,
    /// Being deleted already.
    pub deleting: bool,
}

/// Reads a Job of ours; `None` for one without our labels/annotation.
pub fn view(job: &Job) -> Option<JobView> {
    let meta = &job.metadata;
    let sync = meta.labels.as_ref()?.get(SYNC_LABEL)?.clone();
    let scheduled_at = meta.annotations.as_ref()?.get(SCHEDULED_AT)?.parse().ok()?;
    let conds = job.status.as_ref().and_then(|s| s.conditions.as_ref());
    let has = |t: &str| conds.is_some_and(|c| c.iter().any(|c| c.type_ == t && c.status == "True"));
    let state = if has("Complete") {
        JobState::Succeeded
    } else if has("Failed") {
        JobState::Failed
    } else {
        JobState::Running
    };
    Some(JobView {
        name: meta.name.clone()?,
        sync,
        scheduled_at,
        state,
        deleting: meta.deletion_timestamp.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Value {
        serde_norway::from_str(
            r#"
metadata:
  labels: {team: oms}
spec:
  backoffLimit: 2
  template:
    spec:
      containers:
      - name: sync
        image: oms:1.2
        args: [sync, orders]
        env:
        - {name: RAILS_ENV, value: production}
        - {name: SHOPIFY_SYNC_NAME, value: overridden}
      someFutureField: {kept: true}
"#,
        )
        .unwrap()
    }

    fn inputs(t: &Value, since: Option<Timestamp>) -> JobInputs<'_> {
        JobInputs {
            shop: "online",
            shop_uid: "uid-1",
            domain: "ps-direct-fulfilment-online.myshopify.com",
            api_version: "2025-07",
            token_secret: "online-shopify-token",
            sync: "orders",
            template: t,
            scheduled_at: "2026-11-26T10:15:00Z".parse().unwrap(),
            since,
            trigger: None,
        }
    }

    #[test]
    fn job_carries_the_shop_context() {
        let t = template();
        let job = build(&inputs(&t, Some("2026-11-26T10:00:00Z".parse().unwrap()))).unwrap();
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(v["metadata"]["name"], "online-orders-29928135");
        assert_eq!(v["metadata"]["labels"]["team"], "oms");
        assert_eq!(v["metadata"]["labels"][SHOP_LABEL], "online");
        assert_eq!(v["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(v["spec"]["template"]["metadata"]["labels"][SYNC_LABEL], "orders");
        assert_eq!(v["spec"]["template"]["spec"]["restartPolicy"], "Never");
        let env = v["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        let get = |n: &str| env.iter().find(|e| e["name"] == n).cloned();
        assert_eq!(get("RAILS_ENV").unwrap()["value"], "production");
        assert_eq!(get("SHOPIFY_SYNC_NAME").unwrap()["value"], "orders");
        assert_eq!(env.iter().filter(|e| e["name"] == "SHOPIFY_SYNC_NAME").count(), 1);
        assert_eq!(
            get("SHOPIFY_SYNC_SINCE").unwrap()["value"],
            "2026-11-26T10:00:00Z"
        );
        assert_eq!(
            get("SHOPIFY_SYNC_SCHEDULED_AT").unwrap()["value"],
            "2026-11-26T10:15:00Z"
        );
        let token = get("SHOPIFY_ACCESS_TOKEN").unwrap();
        assert!(
            token.get("value").is_none(),
            "the token value must never be in the Job"
        );
        assert_eq!(token["valueFrom"]["secretKeyRef"]["name"], "online-shopify-token");
    }

    #[test]
    fn first_run_has_no_since() {
        let t = template();
        let v = serde_json::to_value(build(&inputs(&t, None)).unwrap()).unwrap();
        let env = v["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        assert!(env.iter().all(|e| e["name"] != "SHOPIFY_SYNC_SINCE"));
    }

    #[test]
    fn names_are_deterministic_and_short() {
        let at: Timestamp = "2026-11-26T10:15:00Z".parse().unwrap();
        assert_eq!(job_name("a", "b", at, None), job_name("a", "b", at, None));
        let long = "x".repeat(200);
        let n = job_name(&long, "orders", at, None);
        assert!(n.len() <= 63, "{n}");
        assert_ne!(
            job_name(&long, "orders", at, None),
            job_name(&long, "products", at, None)
        );
        assert_ne!(
            job_name("a", "b", at, Some("1")),
            job_name("a", "b", at, Some("2"))
        );
        assert!(job_name("a", "b", at, Some("1")).len() <= 63);
    }

    #[test]
    fn bad_templates_are_errors() {
        for bad in [
            json!("x"),
            json!({}),
            json!({"spec": {"template": {"spec": {"containers": []}}}}),
        ] {
            assert!(build(&inputs(&bad, None)).is_err(), "{bad}");
        }
    }
}
