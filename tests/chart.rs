//! The Helm chart (`charts/shopify-operator`): `helm lint`, `helm template`
//! in both RBAC modes, the CRD copy, static least-privilege checks — and the
//! RBAC *proven*: the rendered ServiceAccount and RBAC are applied to the
//! real control plane, and the real `shopify-operator run` process runs with
//! a token of that ServiceAccount and the Deployment's environment through
//! the webhook and sync scenarios. A missing grant shows up as a stuck
//! scenario, a 403 in the audit log or `forbidden` in the operator's log.
//!
//! helm is built from its pinned Go module by `hack/helm.sh` (cached in
//! `~/.cache/shopify-operator/helm/<version>`); `HELM_BIN` overrides it.
//! The Deployment itself is only validated (server-side dry run): no kubelet
//! runs here, so its pod would never start.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::{Value, json};
use support::{Env, run, seed_fixture, spec, wait_for};
use testenv::ControlPlane;

const RELEASE: &str = "so";
/// The release's full name (`<release>-<chart>`): ServiceAccount, Roles,
/// Lease.
const FULLNAME: &str = "so-shopify-operator";
const HOST: &str = "oms.popsockets.com";
const NEW_HOST: &str = "new.popsockets.com";

// ---------------------------------------------------------------------------
// The grants, written out: a new or wider grant must change these lists.
// Format: `group/resource[resourceNames]: verbs` (verbs sorted, core = "core").

/// On what the operator watches: a ClusterRole cluster-wide, a Role in the
/// watched namespace otherwise.
const WATCHED_RULES: &[&str] = &[
    "batch/jobs: create delete get list watch",
    "cert-manager.io/certificates: get list watch",
    "core/secrets: create get list update watch",
    "events.k8s.io/events: create patch",
    "networking.k8s.io/ingresses: get list watch",
    "shopify-operator.dev/shopifyapps/status: patch",
    "shopify-operator.dev/shopifyapps: get list watch",
    "shopify-operator.dev/shopifyshops/finalizers: update",
    "shopify-operator.dev/shopifyshops/status: patch",
    "shopify-operator.dev/shopifyshops: create get list patch watch",
];
/// The only cluster-scoped rule in namespaced mode: get on three CRDs by
/// name, its own (the start-up check) and cert-manager's Certificate (is
/// cert-manager installed? — the certificate gate).
const CRD_RULE: &str = "apiextensions.k8s.io/customresourcedefinitions\
    [shopifyshops.shopify-operator.dev,shopifyapps.shopify-operator.dev,certificates.cert-manager.io]: get";
/// cert-manager's Certificate CRD, as `hack/crds.sh` provides it.
const CERTIFICATE_CRD_FILE: &str = "cert-manager.io_certificates.yaml";
/// Leader election, in the release namespace.
const LEASE_RULES: &[&str] = &[
    "coordination.k8s.io/leases: create",
    "coordination.k8s.io/leases[so-shopify-operator]: get patch",
];
/// Used OAuth nonces (one Lease each), in the release namespace.
const NONCE_RULES: &[&str] = &["coordination.k8s.io/leases: create delete list"];

// ---------------------------------------------------------------------------
// helm and rendering

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    root().join("charts/shopify-operator")
}

/// `HELM_BIN` if it is a file, else what `hack/helm.sh` builds (cached).
fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| support::hack_tool("HELM_BIN", "helm.sh"))
}

/// Parses multi-document YAML; empty documents are skipped.
fn parse_docs(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("rendered YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

/// `helm template so charts/shopify-operator -n NAMESPACE --set K=V…`.
fn render(namespace: &str, sets: &[(&str, &str)], include_crds: bool) -> Vec<Value> {
    let mut cmd = Command::new(helm());
    cmd.arg("template")
        .arg(RELEASE)
        .arg(chart_dir())
        .args(["--namespace", namespace]);
    if include_crds {
        cmd.arg("--include-crds");
    }
    for (k, v) in sets {
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    parse_docs(&run(&mut cmd))
}

fn kind_of(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| kind_of(d) == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} expected, got {}", found.len());
    found[0]
}

/// A rule as one line: `group/resource[names]: verbs`.
fn rule_line(rule: &Value) -> Vec<String> {
    let strings = |key: &str| -> Vec<String> {
        rule[key]
            .as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap_or("?").to_string()).collect())
            .unwrap_or_default()
    };
    let mut verbs = strings("verbs");
    verbs.sort();
    let names = strings("resourceNames");
    let names = if names.is_empty() {
        String::new()
    } else {
        format!("[{}]", names.join(","))
    };
    let mut lines = Vec::new();
    for group in strings("apiGroups") {
        let group = if group.is_empty() {
            "core".to_string()
        } else {
            group
        };
        for resource in strings("resources") {
            lines.push(format!("{group}/{resource}{names}: {}", verbs.join(" ")));
        }
    }
    lines
}

/// Every Role and ClusterRole, as `Kind namespace/name` → its rule lines.
fn roles(docs: &[Value]) -> BTreeMap<String, Vec<String>> {
    docs.iter()
        .filter(|d| matches!(kind_of(d), "Role" | "ClusterRole"))
        .map(|d| {
            let key = format!(
                "{} {}/{}",
                kind_of(d),
                d["metadata"]["namespace"].as_str().unwrap_or(""),
                d["metadata"]["name"].as_str().unwrap_or("")
            );
            let mut lines: Vec<String> = d["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(rule_line)
                .collect();
            lines.sort();
            (key, lines)
        })
        .collect()
}

fn lines(rules: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = rules.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The Roles and ClusterRoles the chart must render, exactly.
fn expected_roles(release_ns: &str, watch_ns: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut m = BTreeMap::new();
    let cluster_name = format!("ClusterRole /{release_ns}-{FULLNAME}");
    match watch_ns {
        Some(ns) => {
            m.insert(format!("Role {ns}/{FULLNAME}"), lines(WATCHED_RULES));
            m.insert(cluster_name, lines(&[CRD_RULE]));
        }
        None => {
            let mut all = WATCHED_RULES.to_vec();
            all.push(CRD_RULE);
            m.insert(cluster_name, lines(&all));
        }
    }
    m.insert(
        format!("Role {release_ns}/{FULLNAME}-leader-election"),
        lines(LEASE_RULES),
    );
    m.insert(
        format!("Role {release_ns}/{FULLNAME}-oauth-nonces"),
        lines(NONCE_RULES),
    );
    m
}

fn mode_sets(watch_ns: Option<&str>) -> Vec<(&str, &str)> {
    match watch_ns {
        Some(ns) => vec![("watchNamespace", ns)],
        None => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Static checks (no control plane)

#[test]
fn helm_lint_passes_in_both_modes() {
    for sets in [
        vec![],
        vec!["watchNamespace=oms"],
        vec!["serviceMonitor.enabled=true", "replicaCount=2"],
        vec![
            "leaderElection.enabled=false",
            "podDisruptionBudget.enabled=false",
        ],
    ] {
        let mut cmd = Command::new(helm());
        cmd.args(["lint", "--strict"]).arg(chart_dir());
        for s in &sets {
            cmd.args(["--set", s]);
        }
        let out = run(&mut cmd);
        assert!(out.contains("0 chart(s) failed"), "{sets:?}: {out}");
    }
}

#[test]
fn values_schema_rejects_typos_and_bad_values() {
    for bad in [
        "replicas=2",
        "watchNamespace=Not_A_Namespace",
        "resyncInterval=5x",
        "logFormat=xml",
        "shopify.baseUrl=ftp://shops.example.com",
    ] {
        let out = Command::new(helm())
            .args(["template", RELEASE])
            .arg(chart_dir())
            .args(["--set", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad} was accepted");
    }
}

#[test]
fn chart_crds_are_the_committed_crds() {
    // helm installs exactly these (CRDs come from crds/, not templates).
    let docs = render("operators", &[], true);
    let rendered: Vec<&Value> = docs
        .iter()
        .filter(|d| kind_of(d) == "CustomResourceDefinition")
        .collect();
    assert_eq!(rendered.len(), 2, "ShopifyShop and ShopifyApp");
    for file in ["shopifyshop.yaml", "shopifyapp.yaml"] {
        let committed = std::fs::read(root().join("crds").join(file)).unwrap();
        let copy = std::fs::read(chart_dir().join("crds").join(file)).unwrap();
        assert!(
            committed == copy,
            "charts/shopify-operator/crds/{file} differs from crds/{file}: run `make crds`"
        );
        let want: Value = serde_norway::from_slice(&committed).unwrap();
        assert!(
            rendered.contains(&&want),
            "helm does not install crds/{file} as committed"
        );
    }
    assert!(
        render("operators", &[], false)
            .iter()
            .all(|d| kind_of(d) != "CustomResourceDefinition"),
        "the CRDs must not also be templates"
    );
}

#[test]
fn rbac_is_exactly_the_expected_rules_in_both_modes() {
    for watch_ns in [None, Some("oms")] {
        let docs = render("operators", &mode_sets(watch_ns), false);
        assert_eq!(
            roles(&docs),
            expected_roles("operators", watch_ns),
            "mode {watch_ns:?}"
        );
        // Every binding binds a rendered role to the chart's ServiceAccount
        // in the release namespace.
        let role_names: Vec<String> = roles(&docs).into_keys().collect();
        for b in docs
            .iter()
            .filter(|d| matches!(kind_of(d), "RoleBinding" | "ClusterRoleBinding"))
        {
            let role_kind = b["roleRef"]["kind"].as_str().unwrap();
            let role_ns = if role_kind == "Role" {
                b["metadata"]["namespace"].as_str().unwrap()
            } else {
                ""
            };
            let key = format!("{role_kind} {role_ns}/{}", b["roleRef"]["name"].as_str().unwrap());
            assert!(role_names.contains(&key), "binding to unknown {key}");
            assert_eq!(
                b["subjects"],
                json!([{"kind": "ServiceAccount", "name": FULLNAME, "namespace": "operators"}])
            );
        }
    }
    // No leader election: no Lease grant. rbac.create=false: no RBAC at all.
    let docs = render("operators", &[("leaderElection.enabled", "false")], false);
    assert!(!roles(&docs).keys().any(|k| k.contains("leader-election")));
    let docs = render("operators", &[("rbac.create", "false")], false);
    assert!(docs.iter().all(|d| !kind_of(d).contains("Role")));
}

#[test]
fn no_wildcards_and_no_cluster_wide_secrets_in_namespaced_mode() {
    let variants: [&[(&str, &str)]; 4] = [
        &[],
        &[("watchNamespace", "oms")],
        &[("watchNamespace", "operators")],
        &[
            ("leaderElection.leaseName", "custom"),
            ("serviceMonitor.enabled", "true"),
        ],
    ];
    for sets in variants {
        let docs = render("operators", sets, false);
        for d in docs
            .iter()
            .filter(|d| matches!(kind_of(d), "Role" | "ClusterRole"))
        {
            for rule in d["rules"].as_array().unwrap() {
                for key in ["apiGroups", "resources", "verbs", "resourceNames"] {
                    for s in rule[key].as_array().into_iter().flatten() {
                        assert!(
                            !s.as_str().unwrap().contains('*'),
                            "{sets:?}: wildcard in {}: {rule}",
                            d["metadata"]["name"]
                        );
                    }
                }
            }
            if d.get("aggregationRule").is_some() {
                panic!("aggregated ClusterRole {}", d["metadata"]["name"]);
            }
        }
        let namespaced = sets.iter().any(|(k, _)| *k == "watchNamespace");
        if namespaced {
            for d in docs.iter().filter(|d| kind_of(d) == "ClusterRole") {
                for line in d["rules"].as_array().unwrap().iter().flat_map(rule_line) {
                    assert_eq!(
                        line, CRD_RULE,
                        "{sets:?}: cluster-wide grant in namespaced mode: {line}"
                    );
                }
            }
        }
    }
}

#[test]
fn deployment_is_hardened_and_passes_every_flag() {
    let docs = render("operators", &[("watchNamespace", "oms")], false);
    let deploy = one(&docs, "Deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], FULLNAME);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &pod["containers"][0];
    assert_eq!(c["args"], json!(["run"]));
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    for k in ["requests", "limits"] {
        assert!(c["resources"][k]["cpu"].is_string(), "resources.{k}.cpu");
        assert!(c["resources"][k]["memory"].is_string(), "resources.{k}.memory");
    }
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http"})
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "http"})
    );
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    let env: BTreeMap<&str, &Value> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    let value = |k: &str| env[k]["value"].as_str().unwrap_or_else(|| panic!("env {k}"));
    assert_eq!(value("WATCH_NAMESPACE"), "oms");
    assert_eq!(value("SHOPIFY_BASE_URL"), "https://{shop}");
    assert_eq!(value("HTTP_ADDR"), "0.0.0.0:8080");
    assert_eq!(value("LEADER_ELECT"), "true");
    assert_eq!(value("LEASE_NAME"), FULLNAME);
    for k in [
        "SHOPIFY_REQUEST_TIMEOUT",
        "RESYNC_INTERVAL",
        "MAX_CONCURRENT_RECONCILES",
        "SYNC_FAILURE_THRESHOLD",
        "LEASE_DURATION",
        "LOG_FORMAT",
        "RUST_LOG",
        "TOKEN_REFRESH_AHEAD",
        "CERTIFICATE_MARGIN",
        "OAUTH_EXPIRING",
        "OAUTH_STATE_TTL",
        "SUBSCRIBE_APP_UNINSTALLED",
    ] {
        assert!(!value(k).is_empty(), "{k}");
    }
    // Unset optional flags are absent, not empty.
    for k in [
        "ALLOWED_SHOPS",
        "PUBLIC_URL",
        "DEFAULT_APP_SECRET",
        "WATCH_LABEL_SELECTOR",
    ] {
        assert!(!env.contains_key(k), "{k} set without a value");
    }
    // A shard: its selector reaches the operator as given.
    let selector = "sharding.shopify-operator.dev/key=shard-1";
    let docs = render("operators", &[("watchLabelSelector", selector)], false);
    let env = &one(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "WATCH_LABEL_SELECTOR" && e["value"] == selector),
        "{env}"
    );
    // Cluster-wide: no WATCH_NAMESPACE at all (an empty one would be a
    // namespace named "").
    let docs = render("operators", &[], false);
    let env = &one(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        !env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "WATCH_NAMESPACE")
    );
    // Metrics Service on the same port; ServiceMonitor only when asked.
    let svc = one(&docs, "Service");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    assert!(docs.iter().all(|d| kind_of(d) != "ServiceMonitor"));
    let docs = render("operators", &[("serviceMonitor.enabled", "true")], false);
    let sm = one(&docs, "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(one(&docs, "PodDisruptionBudget")["spec"]["maxUnavailable"], 1);
}

#[test]
fn oauth_settings_reach_the_operator_and_the_ingress_exposes_only_public_paths() {
    let docs = render(
        "operators",
        &[
            ("oauth.publicUrl", "https://shopify-operator.example.com"),
            ("oauth.defaultAppSecret", "oms/oms-shopify-app"),
            ("oauth.subscribeAppUninstalled", "true"),
            ("allowedShops[0]", "ps-*.myshopify.com"),
            ("allowedShops[1]", "other.myshopify.com"),
            ("ingress.enabled", "true"),
            ("ingress.host", "shopify-operator.example.com"),
        ],
        false,
    );
    let env = &one(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"];
    let value = |k: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == k)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("env {k}"))
            .to_string()
    };
    assert_eq!(value("PUBLIC_URL"), "https://shopify-operator.example.com");
    assert_eq!(value("DEFAULT_APP_SECRET"), "oms/oms-shopify-app");
    assert_eq!(value("SUBSCRIBE_APP_UNINSTALLED"), "true");
    assert_eq!(value("ALLOWED_SHOPS"), "ps-*.myshopify.com,other.myshopify.com");
    let ingress = one(&docs, "Ingress");
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "shopify-operator.example.com");
    let paths: Vec<&str> = rule["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/oauth/", "/shopify/webhooks/"], "only the public paths");
    // No Ingress unless asked; a bad public URL fails the schema.
    assert!(
        render("operators", &[], false)
            .iter()
            .all(|d| kind_of(d) != "Ingress")
    );
    let bad = Command::new(helm())
        .args(["template", "so"])
        .arg(chart_dir())
        .args(["--set", "oauth.publicUrl=not a url"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("publicUrl"));
}

// ---------------------------------------------------------------------------
// RBAC proven against the real control plane

/// The two proofs run one after the other: a cluster-wide operator would
/// also reconcile the other test's shops.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Third-party CRDs, by file name, from the folder `hack/crds.sh` provides
/// (`THIRD_PARTY_CRDS` overrides it).
fn third_party_crds(files: &[&str]) -> Vec<CustomResourceDefinition> {
    let dir = support::hack_tool("THIRD_PARTY_CRDS", "crds.sh");
    files
        .iter()
        .map(|f| {
            let path = dir.join(f);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: not a CRD: {e}", path.display()))
        })
        .collect()
}

fn kubectl(cp: &ControlPlane) -> Command {
    let mut cmd = Command::new(testenv::kubectl());
    cmd.arg("--kubeconfig").arg(cp.admin_kubeconfig());
    cmd
}

/// Deletes what a proof made, also when it panics: the namespaces (after
/// taking the finalizers off shops nobody will clean up now) and the
/// cluster-scoped RBAC.
struct Cleanup {
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    namespaces: Vec<String>,
    rbac_file: Option<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let k = |args: &[&str]| {
            let _ = Command::new(&self.kubectl)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        for ns in &self.namespaces {
            let names = Command::new(&self.kubectl)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(["get", "shopifyshops", "-n", ns, "-o", "name"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for name in names.lines() {
                k(&[
                    "patch",
                    name,
                    "-n",
                    ns,
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ]);
            }
            k(&["delete", "shopifyshops", "--all", "-n", ns, "--wait=false"]);
            // Gone before the next proof starts: a cluster-wide operator
            // must not find this one's terminating namespace (where every
            // create is refused).
            k(&["delete", "namespace", ns, "--wait=true", "--timeout=180s"]);
        }
        if let Some(f) = &self.rbac_file {
            let f = f.to_string_lossy();
            k(&["delete", "-f", &f, "--ignore-not-found", "--wait=false"]);
        }
    }
}

/// `kubectl auth can-i VERB RESOURCE [flags] --as=SA`.
fn can_i(cp: &ControlPlane, sa: &str, args: &[&str]) -> bool {
    let out = kubectl(cp)
        .args(["auth", "can-i"])
        .args(args)
        .arg(format!("--as={sa}"))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match answer.as_str() {
        "yes" => true,
        "no" => false,
        other => panic!("can-i {args:?}: {other} {}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// Env vars `shopify-operator run` reads; cleared so the process gets only
/// what the Deployment gives it.
const OPERATOR_ENV: &[&str] = &[
    "SHOPIFY_BASE_URL",
    "RESYNC_INTERVAL",
    "WATCH_NAMESPACE",
    "WATCH_LABEL_SELECTOR",
    "MAX_CONCURRENT_RECONCILES",
    "SHOPIFY_REQUEST_TIMEOUT",
    "SYNC_FAILURE_THRESHOLD",
    "HTTP_ADDR",
    "LEADER_ELECT",
    "LEASE_NAME",
    "POD_NAMESPACE",
    "POD_NAME",
    "LEASE_DURATION",
    "LOG_FORMAT",
    "RUST_LOG",
    "KUBECONFIG",
];

/// Marks a Job finished the way the Job controller would (no kubelet here).
async fn finish_job(client: &Client, ns: &str, name: &str) {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let now = jiff::Timestamp::now().to_string();
    let status = json!({"status": {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
        {"type": "Complete", "status": "True", "lastTransitionTime": now, "lastProbeTime": now}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

async fn shop_jobs(client: &Client, ns: &str, shop: &str) -> Vec<String> {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("shopify-operator.dev/shop={shop}"));
    let mut names: Vec<String> = api
        .list(&lp)
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .map(|j| j.name_any())
        .collect();
    names.sort();
    names
}

async fn http_get(url: &str) -> Option<(u16, String)> {
    let resp = reqwest::get(url).await.ok()?;
    let code = resp.status().as_u16();
    Some((code, resp.text().await.ok()?))
}

/// Renders the chart for `watch_ns` (namespaced) or cluster-wide, applies
/// its ServiceAccount and RBAC, runs the operator as that ServiceAccount
/// with the Deployment's environment, and drives the scenarios.
async fn prove_rbac(namespaced: bool) {
    let _serial = SERIAL.lock().await;
    let cp = testenv::shared(shopify_operator::crd::all).await;
    // cert-manager's Certificate CRD, so that `can-i` knows the resource and
    // the operator finds cert-manager installed (and reads Certificates).
    let certificate_crd = third_party_crds(&[CERTIFICATE_CRD_FILE]);
    assert_eq!(
        certificate_crd[0].metadata.name.as_deref(),
        Some("certificates.cert-manager.io")
    );
    cp.install_crds(&certificate_crd)
        .await
        .expect("cert-manager's Certificate CRD");
    // Declared before `env`, so dropped after it: the operator (in `env`)
    // is gone before its shops are.
    let mut cleanup = Cleanup {
        kubectl: testenv::kubectl(),
        kubeconfig: cp.admin_kubeconfig().to_path_buf(),
        namespaces: Vec::new(),
        rbac_file: None,
    };
    let fixture = seed_fixture();
    let mut env = Env::new(if namespaced { "chart-ns" } else { "chart-cw" }, fixture.clone()).await;
    let ns = env.ns.clone();
    cleanup.namespaces.push(ns.clone());
    let release_ns = cp.namespace("chart-rel").await.unwrap();
    cleanup.namespaces.push(release_ns.clone());
    let watch_ns = namespaced.then_some(ns.as_str());

    // Render; the RBAC must be exactly the expected rules.
    let docs = render(&release_ns, &mode_sets(watch_ns), false);
    assert_eq!(roles(&docs), expected_roles(&release_ns, watch_ns));
    // NOTES.txt (rendered by a client-side dry-run install, before anything
    // of the release exists) shows how to create and check a first shop in
    // the watched namespace.
    let mut install = Command::new(helm());
    install
        .args(["install", RELEASE])
        .arg(chart_dir())
        .args(["--namespace", &release_ns, "--dry-run=client", "--kubeconfig"])
        .arg(cp.admin_kubeconfig());
    if let Some(w) = watch_ns {
        install.args(["--set", &format!("watchNamespace={w}")]);
    }
    let notes = run(&mut install);
    let notes = notes.split_once("NOTES:").map(|(_, n)| n).unwrap_or_default();
    let shop_ns = watch_ns.unwrap_or("oms");
    for want in [
        format!("kubectl -n {shop_ns} create secret generic"),
        "kind: ShopifyShop".to_string(),
        format!("kubectl -n {shop_ns} get shop"),
        format!("kubectl -n {shop_ns} wait shop/online --for=condition=Ready"),
    ] {
        assert!(notes.contains(&want), "NOTES.txt lacks {want:?}:\n{notes}");
    }

    // Apply the ServiceAccount and RBAC as rendered.
    let is_rbac = |d: &&Value| {
        matches!(
            kind_of(d),
            "ServiceAccount" | "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
        )
    };
    let rbac: Vec<Value> = docs.iter().filter(is_rbac).cloned().collect();
    let rest: Vec<Value> = docs
        .iter()
        .filter(|d| !is_rbac(d) && kind_of(d) != "ServiceMonitor")
        .cloned()
        .collect();
    let list = |items: Vec<Value>| json!({"apiVersion": "v1", "kind": "List", "items": items});
    let tag = if namespaced { "namespaced" } else { "cluster" };
    let rbac_file = cp.dir.join(format!("chart-{tag}-rbac.json"));
    std::fs::write(&rbac_file, list(rbac).to_string()).unwrap();
    cleanup.rbac_file = Some(rbac_file.clone());
    let rest_file = cp.dir.join(format!("chart-{tag}-rest.json"));
    std::fs::write(&rest_file, list(rest).to_string()).unwrap();
    run(kubectl(cp).arg("apply").arg("-f").arg(&rbac_file));
    // The rest (Deployment, Service, PDB) only validated by the apiserver:
    // no kubelet would run the pod.
    let dry = run(kubectl(cp)
        .args(["apply", "--dry-run=server", "-f"])
        .arg(&rest_file));
    for kind in ["deployment.apps", "service", "poddisruptionbudget.policy"] {
        assert!(dry.contains(kind), "{kind} not validated: {dry}");
    }

    // What the ServiceAccount may and may not do, by the apiserver's RBAC.
    let sa = format!("system:serviceaccount:{release_ns}:{FULLNAME}");
    let crd = "customresourcedefinitions.apiextensions.k8s.io/shopifyshops.shopify-operator.dev";
    let cert_crd = "customresourcedefinitions.apiextensions.k8s.io/certificates.cert-manager.io";
    let certs = "certificates.cert-manager.io";
    let lease = format!("leases.coordination.k8s.io/{FULLNAME}");
    let mut allowed: Vec<Vec<&str>> = vec![
        vec!["list", "secrets", "-n", &ns],
        vec!["create", "secrets", "-n", &ns],
        vec!["watch", "ingresses.networking.k8s.io", "-n", &ns],
        vec!["create", "jobs.batch", "-n", &ns],
        vec!["delete", "jobs.batch", "-n", &ns],
        vec!["patch", "shopifyshops.shopify-operator.dev", "-n", &ns],
        vec![
            "patch",
            "shopifyshops.shopify-operator.dev",
            "--subresource=status",
            "-n",
            &ns,
        ],
        vec!["create", "events.events.k8s.io", "-n", &ns],
        vec!["get", crd],
        vec!["get", certs, "-n", &ns],
        vec!["list", certs, "-n", &ns],
        vec!["watch", certs, "-n", &ns],
        vec!["get", cert_crd],
        vec!["create", "leases.coordination.k8s.io", "-n", &release_ns],
        vec!["patch", &lease, "-n", &release_ns],
        vec!["list", "leases.coordination.k8s.io", "-n", &release_ns],
        vec!["delete", "leases.coordination.k8s.io", "-n", &release_ns],
        vec!["create", "shopifyshops.shopify-operator.dev", "-n", &ns],
        vec!["watch", "shopifyapps.shopify-operator.dev", "-n", &ns],
        vec!["get", "shopifyapps.shopify-operator.dev", "-n", &ns],
        vec![
            "patch",
            "shopifyapps.shopify-operator.dev",
            "--subresource=status",
            "-n",
            &ns,
        ],
    ];
    let mut denied: Vec<Vec<&str>> = vec![
        vec!["delete", "secrets", "-n", &ns],
        vec!["update", "shopifyshops.shopify-operator.dev", "-n", &ns],
        vec!["delete", "shopifyshops.shopify-operator.dev", "-n", &ns],
        vec!["create", "pods", "-n", &ns],
        vec!["patch", "jobs.batch", "-n", &ns],
        vec!["list", "customresourcedefinitions.apiextensions.k8s.io"],
        vec![
            "get",
            "customresourcedefinitions.apiextensions.k8s.io/ingresses.example.com",
        ],
        vec![
            "get",
            "customresourcedefinitions.apiextensions.k8s.io/issuers.cert-manager.io",
        ],
        vec!["watch", "customresourcedefinitions.apiextensions.k8s.io"],
        vec!["update", cert_crd],
        vec!["create", certs, "-n", &ns],
        vec!["update", certs, "-n", &ns],
        vec!["patch", certs, "-n", &ns],
        vec!["delete", certs, "-n", &ns],
        vec!["deletecollection", certs, "-n", &ns],
        vec!["patch", certs, "--subresource=status", "-n", &ns],
        vec!["get", "certificaterequests.cert-manager.io", "-n", &ns],
        vec!["update", &lease, "-n", &release_ns],
        vec![
            "patch",
            "leases.coordination.k8s.io/someone-else",
            "-n",
            &release_ns,
        ],
        vec!["create", "leases.coordination.k8s.io", "-n", &ns],
        vec!["delete", "leases.coordination.k8s.io", "-n", &ns],
        vec!["patch", "shopifyapps.shopify-operator.dev", "-n", &ns],
        vec!["create", "shopifyapps.shopify-operator.dev", "-n", &ns],
        vec!["delete", "shopifyapps.shopify-operator.dev", "-n", &ns],
        vec!["*", "*"],
    ];
    if namespaced {
        denied.extend([
            vec!["list", "secrets", "--all-namespaces"],
            vec!["get", "secrets", "-n", &release_ns],
            vec!["list", "secrets", "-n", "default"],
            vec!["list", "shopifyshops.shopify-operator.dev", "--all-namespaces"],
            vec!["create", "jobs.batch", "-n", "default"],
            vec!["list", certs, "--all-namespaces"],
            vec!["watch", certs, "--all-namespaces"],
            vec!["get", certs, "-n", &release_ns],
            vec!["list", certs, "-n", "default"],
        ]);
    } else {
        allowed.extend([
            vec!["list", "secrets", "--all-namespaces"],
            vec!["watch", "shopifyshops.shopify-operator.dev", "--all-namespaces"],
            vec!["create", "jobs.batch", "-n", "default"],
            vec!["list", certs, "--all-namespaces"],
            vec!["watch", certs, "--all-namespaces"],
            vec!["get", certs, "-n", "default"],
        ]);
    }
    for args in &allowed {
        assert!(can_i(cp, &sa, args), "{tag}: {sa} should be allowed {args:?}");
    }
    for args in &denied {
        assert!(!can_i(cp, &sa, args), "{tag}: {sa} must not be allowed {args:?}");
    }

    // The world: an Ingress, the seed shops with their token Secrets; one
    // with deletionPolicy Delete (finalizer), one with a sync.
    env.ingress("oms", HOST).await;
    let names = ["offline", "online", "diff"];
    for (i, name) in names.iter().enumerate() {
        let secret = format!("{name}-shopify-token");
        env.token_secret(&secret, &fixture.shops[i].tokens[0].access_token)
            .await;
        let topics: Vec<&str> = fixture.shops[i]
            .subscriptions
            .iter()
            .map(|s| s.topic.as_str())
            .collect();
        let mut spec = spec(
            &fixture.shops[i].domain,
            &secret,
            json!({"ingressRef": {"name": "oms"}}),
            &topics,
        );
        if *name == "diff" {
            spec["deletionPolicy"] = json!("Delete");
        }
        if *name == "offline" {
            spec["appRef"] = json!({"name": "oms"});
        }
        if *name == "online" {
            spec["sync"] = json!([{"name": "orders", "schedule": "0 0 1 1 *", "successfulJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {"containers": [
                    {"name": "sync", "image": "oms:test", "args": ["sync", "orders"]}]}}}}}]);
        }
        env.create_shop(name, spec).await;
    }
    let app = fixture.app.clone().expect("the seed fixture has an app");
    let app_secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "app"},
        "stringData": {"client-id": app.client_id, "client-secret": app.client_secret}}))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(env.client.clone(), &ns)
        .create(&Default::default(), &app_secret)
        .await
        .unwrap();
    // offline's app is a ShopifyApp: its watch, status and OAuth run
    // with the chart's grants too.
    let shopify_app: shopify_operator::crd::ShopifyApp = serde_json::from_value(json!({
        "apiVersion": "shopify-operator.dev/v1alpha1", "kind": "ShopifyApp",
        "metadata": {"name": "oms"},
        "spec": {"credentialsSecretRef": {"name": "app"}, "allowedShops": ["*.myshopify.com"]}}))
    .unwrap();
    let apps: Api<shopify_operator::crd::ShopifyApp> = Api::namespaced(env.client.clone(), &ns);
    apps.create(&Default::default(), &shopify_app).await.unwrap();

    // The operator, as the ServiceAccount, with the Deployment's args and
    // env; only the cluster-specific values are replaced: the kubeconfig
    // (in a pod: the mounted token), the simulator's URL, a loopback port
    // and the downward-API fields.
    let kubeconfig = cp.dir.join(format!("chart-{tag}-sa.kubeconfig"));
    std::fs::write(
        &kubeconfig,
        cp.service_account_kubeconfig(&release_ns, FULLNAME)
            .await
            .unwrap(),
    )
    .unwrap();
    let container = &one(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let pod_name = format!("{FULLNAME}-5d8f7b9c4-x7k2p");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shopify-operator"));
    for k in OPERATOR_ENV {
        cmd.env_remove(k);
    }
    for a in container["args"].as_array().unwrap() {
        cmd.arg(a.as_str().unwrap());
    }
    for e in container["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let value = match (&e["value"], e["valueFrom"]["fieldRef"]["fieldPath"].as_str()) {
            (Value::String(v), _) => v.clone(),
            (_, Some("metadata.name")) => pod_name.clone(),
            (_, Some("metadata.namespace")) => release_ns.clone(),
            other => panic!("env {name}: unexpected {other:?}"),
        };
        cmd.env(name, value);
    }
    cmd.env("KUBECONFIG", &kubeconfig)
        .env("SHOPIFY_BASE_URL", env.sim.base_url())
        .env("PUBLIC_URL", "https://operator.example")
        // Port 0: the operator binds first and logs the address it got.
        .env("HTTP_ADDR", "127.0.0.1:0")
        // Debug, so that a refused request shows up even where it is only
        // logged at debug level.
        .env(
            "RUST_LOG",
            "info,shopify_operator=debug,kube_runtime=debug,kube_lease_manager=debug",
        );
    let log = cp.dir.join(format!("chart-{tag}-operator.log"));
    env.user = sa.clone();
    env.operator = Some(testenv::spawn_supervised("shopify-operator", &mut cmd, &log).unwrap());
    // Started: /healthz answers (a start-up failure, e.g. the CRD check
    // refused, ends the process instead).
    let started = std::time::Instant::now();
    let http_addr = loop {
        let operator = env.operator.as_mut().unwrap();
        if let Some(status) = operator.exited() {
            panic!(
                "{tag}: the operator exited at start-up ({status}):\n{}",
                operator.log_tail(20)
            );
        }
        if let Some(addr) = support::logged_http_addr(operator)
            && http_get(&format!("http://{addr}/healthz")).await.map(|r| r.0) == Some(200)
        {
            break addr;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{tag}: no /healthz after 60s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Adoption: every seed shop Ready, nothing changed on Shopify; as the
    // chart's NOTES.txt tells a person to check it.
    for name in names {
        env.wait_condition(name, "Ready", "True", None).await;
    }
    let shops: Vec<String> = names.iter().map(|n| format!("shop/{n}")).collect();
    run(kubectl(cp)
        .args(["-n", &ns, "wait", "--for=condition=Ready", "--timeout=30s"])
        .args(&shops));
    let table = run(kubectl(cp).args(["-n", &ns, "get", "shop"]));
    assert_eq!(table.matches(HOST).count(), 3, "{table}");
    for shop in &fixture.shops {
        assert_eq!(env.sim.counters(&shop.domain).mutations, 0, "{}", shop.domain);
    }
    // The finalizer (merge patch on the shop).
    let diff = env.shops().get("diff").await.unwrap();
    assert!(
        diff.finalizers()
            .iter()
            .any(|f| f == "shopify-operator.dev/cleanup"),
        "{:?}",
        diff.finalizers()
    );
    // It holds the Lease in the release namespace and says it is ready.
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &release_ns);
    wait_for("the Lease held by the pod", Duration::from_secs(30), || async {
        let l = leases.get(FULLNAME).await.ok()?;
        (l.spec?.holder_identity.as_deref() == Some(pod_name.as_str())).then_some(())
    })
    .await;
    wait_for("/readyz 200", Duration::from_secs(30), || async {
        (http_get(&format!("http://{http_addr}/readyz")).await?.0 == 200).then_some(())
    })
    .await;
    let (code, metrics) = http_get(&format!("http://{http_addr}/metrics")).await.unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("shopify_shop_condition"), "{metrics}");
    wait_for("the ShopifyApp's status", Duration::from_secs(30), || async {
        let s = apps.get("oms").await.ok()?.status?;
        (s.shops_ready.as_deref() == Some("1/1")).then_some(())
    })
    .await;

    // The Ingress host changes: every shop's subscriptions follow (an
    // Ingress watch, Shopify mutations, status, Events).
    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), &ns);
    ingresses
        .patch(
            "oms",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"rules": [{"host": NEW_HOST}]}})),
        )
        .await
        .unwrap();
    for (i, shop) in fixture.shops.iter().enumerate() {
        wait_for(
            &format!("{} repointed", shop.domain),
            Duration::from_secs(30),
            || async {
                let subs = env.sim.subscriptions(&shop.domain);
                (subs.len() == shop.subscriptions.len()
                    && subs
                        .iter()
                        .all(|s| s.address.starts_with(&format!("https://{NEW_HOST}/"))))
                .then_some(())
            },
        )
        .await;
        wait_for("status host", Duration::from_secs(30), || async {
            let s = env.shops().get(names[i]).await.ok()?.status?;
            (s.webhook_host.as_deref() == Some(NEW_HOST)).then_some(())
        })
        .await;
    }
    wait_for("SubscriptionsUpdated Event", Duration::from_secs(30), || async {
        env.events("online", "SubscriptionsUpdated")
            .await
            .into_iter()
            .next()
    })
    .await;

    // A manual sync: a Job. A second one, after the first succeeded, prunes
    // the first (successfulJobsHistoryLimit 1): create and delete.
    let annotate = |v: &str| json!({"metadata": {"annotations": {"shopify-operator.dev/sync-now": v}}});
    env.shops()
        .patch(
            "online",
            &PatchParams::default(),
            &Patch::Merge(&annotate("first")),
        )
        .await
        .unwrap();
    let first = wait_for("a sync Job", Duration::from_secs(30), || async {
        shop_jobs(&env.client, &ns, "online").await.into_iter().next()
    })
    .await;
    finish_job(&env.client, &ns, &first).await;
    wait_for("first Job counted", Duration::from_secs(30), || async {
        let s = env.shops().get("online").await.ok()?.status?;
        s.sync.first()?.last_successful_time.as_ref().map(|_| ())
    })
    .await;
    env.shops()
        .patch(
            "online",
            &PatchParams::default(),
            &Patch::Merge(&annotate("second")),
        )
        .await
        .unwrap();
    let second = wait_for("a second sync Job", Duration::from_secs(30), || async {
        shop_jobs(&env.client, &ns, "online")
            .await
            .into_iter()
            .find(|j| *j != first)
    })
    .await;
    finish_job(&env.client, &ns, &second).await;
    wait_for("the first Job pruned", Duration::from_secs(30), || async {
        (shop_jobs(&env.client, &ns, "online").await == vec![second.clone()]).then_some(())
    })
    .await;

    // deletionPolicy Delete: deleting the shop removes its subscriptions
    // on Shopify, then the finalizer (a patch).
    env.shops()
        .delete("diff", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("diff deleted", Duration::from_secs(30), || async {
        matches!(env.shops().get("diff").await, Err(kube::Error::Api(e)) if e.code == 404).then_some(())
    })
    .await;
    assert!(env.sim.subscriptions(&fixture.shops[2].domain).is_empty());

    // A reinstall through OAuth (updates the token Secret), then Shopify's
    // app/uninstalled (records it in the status): the public endpoints work
    // with the chart's grants too.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let offline = &fixture.shops[0].domain;
    let base = format!("http://{http_addr}");
    let c = support::consent(
        &base,
        &format!("/oauth/{ns}/oms/install?shop={offline}"),
        "https://operator.example",
    )
    .await;
    let answer = support::browse(&c.callback, Some(&c.cookie)).await;
    assert_eq!(answer.status, 200, "{tag}: OAuth callback: {}", answer.body);
    wait_for("the install counted", Duration::from_secs(30), || async {
        (apps.get("oms").await.ok()?.status?.installs == Some(1)).then_some(())
    })
    .await;
    let body = json!({"domain": offline}).to_string();
    let hmac = shopify_admin::hmac::sign_webhook(
        body.as_bytes(),
        &shopify_admin::ClientSecret::from(app.client_secret.as_str()),
    );
    let delivered = no_redirects
        .post(format!("http://{http_addr}/shopify/webhooks/app_uninstalled"))
        .header("X-Shopify-Topic", "app/uninstalled")
        .header("X-Shopify-Shop-Domain", offline.as_str())
        .header("X-Shopify-Hmac-Sha256", hmac)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status().as_u16(), 200, "{tag}: app/uninstalled");
    env.wait_condition("offline", "TokenValid", "False", Some("AppUninstalled"))
        .await;

    // The operator stops cleanly on SIGTERM.
    let mut operator = env.operator.take().unwrap();
    let status = tokio::task::block_in_place(|| operator.terminate(Duration::from_secs(20)));
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    env.operator = Some(operator);

    // Nothing was refused: no 403 among its writes, no "forbidden" in its
    // log; and it wrote only what the rules name.
    let writes = env.operator_writes();
    let refused: Vec<_> = writes.iter().filter(|w| w.code == Some(403)).collect();
    assert!(refused.is_empty(), "{tag}: refused writes: {refused:?}");
    let mut kinds: Vec<String> = writes
        .iter()
        .map(|w| match &w.subresource {
            Some(sub) => format!("{} {}/{sub}", w.verb, w.resource),
            None => format!("{} {}", w.verb, w.resource),
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    // Certificates are only read.
    let cert_writes: Vec<_> = writes.iter().filter(|w| w.resource == "certificates").collect();
    assert!(
        cert_writes.is_empty(),
        "{tag}: wrote Certificates: {cert_writes:?}"
    );
    for want in [
        "create events",
        "create jobs",
        "create leases",
        "delete jobs",
        "patch leases",
        "patch shopifyshops",
        "patch shopifyshops/status",
        "patch shopifyapps/status",
        "update secrets",
    ] {
        assert!(kinds.iter().any(|k| k == want), "{tag}: no {want} in {kinds:?}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.to_lowercase().contains("forbidden"),
        "{tag}: the operator was refused something (log: {})",
        log.display()
    );
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_rbac_is_enough_for_webhooks_sync_and_oauth() {
    prove_rbac(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_rbac_is_enough_for_webhooks_sync_and_oauth() {
    prove_rbac(false).await;
}

/// The alerts ship as a PrometheusRule (off by default) whose groups are
/// the plain rules file, and it and the ServiceMonitor are accepted by a
/// real apiserver with the Prometheus Operator's own CRDs (from its Go
/// module, `hack/crds.sh`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_rule_is_the_rules_file_and_the_apiserver_accepts_it() {
    let docs = render("operators", &[], false);
    assert!(docs.iter().all(|d| kind_of(d) != "PrometheusRule"));
    let sets = [
        ("prometheusRule.enabled", "true"),
        ("prometheusRule.labels.release", "kube-prometheus-stack"),
        ("serviceMonitor.enabled", "true"),
    ];
    let docs = render("operators", &sets, false);
    let rule = one(&docs, "PrometheusRule");
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let file = std::fs::read_to_string(chart_dir().join("rules/shopify-operator.rules.yaml")).unwrap();
    let plain: Value = serde_norway::from_str(&file).unwrap();
    assert_eq!(
        rule["spec"], plain,
        "the PrometheusRule differs from the rules file"
    );
    let alerts: Vec<&str> = plain["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter_map(|r| r["alert"].as_str())
        .collect();
    for want in [
        "ShopifyShopNotReady",
        "ShopifyShopTokenInvalid",
        "ShopifyShopTokenNeedsAttention",
        "ShopifyShopSyncFailing",
        "ShopifyShopApiVersionFallenForward",
        "ShopifyWebhooksDriftRepaired",
        "ShopifyOperatorAbsent",
        "ShopifyOperatorNotLeading",
        "ShopifyOperatorNotReconciling",
        "ShopifyThrottlingSustained",
    ] {
        assert!(alerts.contains(&want), "no alert {want}: {alerts:?}");
    }

    let cp = testenv::shared(shopify_operator::crd::all).await;
    let crds = third_party_crds(&[
        "monitoring.coreos.com_prometheusrules.yaml",
        "monitoring.coreos.com_servicemonitors.yaml",
    ]);
    cp.install_crds(&crds).await.expect("Prometheus Operator CRDs");
    let ns = cp.namespace("chart-rules").await.unwrap();
    let file = cp.dir.join("chart-rules.json");
    let items: Vec<Value> = docs
        .iter()
        .filter(|d| matches!(kind_of(d), "PrometheusRule" | "ServiceMonitor"))
        .map(|d| {
            let mut d = d.clone();
            d["metadata"]["namespace"] = json!(ns);
            d
        })
        .collect();
    std::fs::write(
        &file,
        json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
    )
    .unwrap();
    let out = run(kubectl(cp).args(["apply", "-f"]).arg(&file));
    for kind in [
        "prometheusrule.monitoring.coreos.com",
        "servicemonitor.monitoring.coreos.com",
    ] {
        assert!(out.contains(kind), "{kind} not created: {out}");
    }
    // Stored as rendered: the schema pruned nothing.
    let stored = run(kubectl(cp).args(["get", "prometheusrules", "-n", &ns, "-o", "json"]));
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["items"][0]["spec"], plain);
}
