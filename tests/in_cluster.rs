//! The operator as users run it: the image (`make image`) as Pods of the
//! chart, installed with `helm install` on a real node (testenv's
//! [`Cluster`]: kubelet, containerd + runc, kube-proxy, CNI bridge), in a
//! namespace that enforces Pod Security `restricted`. shopify-sim runs in the
//! cluster too, from its image, and the operator reaches it by the shops'
//! own domains: the Pods' resolver (static glibc in a `scratch` image) asks
//! the test's DNS responder on the node, which answers `*.myshopify.com`
//! with the simulator's ClusterIP.
//!
//! What only a node shows: the image starts (static linking, no shell,
//! read-only root, UID 65532); in-cluster config from the ServiceAccount
//! token; probes called by a kubelet; leader election between two Pods
//! through `POD_NAME`/`POD_NAMESPACE`; the memory limit, against the
//! container's cgroup, with the demo's three shops and with 1,000; a
//! rolling upgrade and an uninstall.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use kube::api::PostParams;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use shopify_operator::crd::ShopifyShop;
use shopify_sim::{Fixture, ShopFixture, TokenFixture};
use support::{run, wait_for};
use testenv::{Cluster, NodeOptions};

const RELEASE: &str = "so";
/// The release's full name: Deployment, ServiceAccount, Lease.
const FULLNAME: &str = "so-shopify-operator";
/// The simulator's Service address, fixed so that DNS can answer with it
/// before the Service exists.
const SIM_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 50);
const SIM_PORT: u16 = 8089;
const HOST: &str = "oms.popsockets.com";
const NEW_HOST: &str = "new.popsockets.com";
/// The shops of `examples/demo` (namespace `oms`).
const SHOPS: [&str; 3] = [
    "ps-direct-fulfilment-offline.myshopify.com",
    "ps-direct-fulfilment-online.myshopify.com",
    "ps-diff-direct-fulfillment.myshopify.com",
];
/// Secret values of the demo and the fleet (all fake) that must never
/// reach a log.
const SECRETS: [&str; 5] = [
    "shpat_seed_offline_",
    "shpat_seed_online_",
    "shpat_seed_diff_",
    "shpat_fleet_",
    "fake-client-secret-seed-0000",
];
/// Shops added beside the demo's three, so that the memory limit is
/// checked at 1,000 shops too.
const FLEET: usize = 997;
/// Fleet shops loaded into the simulator per request (its admin routes
/// take bodies up to axum's 2 MB default).
const FLEET_BATCH: usize = 100;
const RESTRICTED: [(&str, &str); 2] = [
    ("pod-security.kubernetes.io/enforce", "restricted"),
    ("pod-security.kubernetes.io/enforce-version", "latest"),
];
/// Long enough for a Pod start on 2 loaded cores.
const ROLLOUT: Duration = Duration::from_secs(300);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn helm() -> PathBuf {
    support::hack_tool("HELM_BIN", "helm.sh")
}

/// Where the test is, on stderr: a step that hangs shows which it was.
fn step(started: std::time::Instant, what: &str) {
    eprintln!("[in_cluster +{:.1}s] {what}", started.elapsed().as_secs_f64());
}

/// The simulator in the cluster, seen from the test through a forward.
struct SimInCluster {
    admin: String,
    http: reqwest::Client,
}

impl SimInCluster {
    async fn get(&self, path: &str) -> Option<Value> {
        let answer = self.http.get(format!("{}{path}", self.admin)).send().await.ok()?;
        answer.error_for_status().ok()?.json().await.ok()
    }

    /// Every shop's subscriptions: (topic, address).
    async fn subscriptions(&self) -> Option<Vec<(String, String)>> {
        let mut all = Vec::new();
        for shop in SHOPS {
            let list = self.get(&format!("/shops/{shop}/subscriptions")).await?;
            for s in list.as_array()? {
                all.push((
                    s["topic"].as_str()?.to_string(),
                    s["address"].as_str()?.to_string(),
                ));
            }
        }
        all.sort();
        Some(all)
    }

    /// Adds shops to the simulator's world (its admin fixture route).
    async fn load(&self, fixture: &Fixture) {
        self.http
            .post(format!("{}/fixture", self.admin))
            .json(fixture)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("the simulator loads the fleet");
    }

    /// Mutations executed so far, all shops.
    async fn mutations(&self) -> Option<u64> {
        let counters = self.get("/counters").await?;
        Some(
            counters
                .as_object()?
                .values()
                .filter_map(|c| c["mutations"].as_u64())
                .sum(),
        )
    }
}

struct Node {
    cluster: Cluster,
    kubeconfig: PathBuf,
}

impl Node {
    fn kubectl(&self) -> Command {
        let mut cmd = Command::new(testenv::kubectl());
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    fn helm(&self, args: &[&str]) -> String {
        run(Command::new(helm())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args))
    }

    /// Applies a manifest given as YAML text.
    fn apply(&self, yaml: &str) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("manifest.yaml");
        std::fs::write(&file, yaml).expect("write the manifest");
        run(self.kubectl().args(["apply", "-f"]).arg(&file));
    }
}

/// shopify-sim as a Deployment (its image, the seed fixture from a
/// ConfigMap) behind a Service at [`SIM_IP`], in a `restricted` namespace.
async fn start_sim(node: &Node) -> SimInCluster {
    let ns = node
        .cluster
        .namespace("sim", &RESTRICTED)
        .await
        .expect("sim namespace");
    run(node
        .kubectl()
        .args(["-n", &ns, "create", "configmap", "seed", "--from-file"])
        .arg(root().join("examples/sim-seed.yaml")));
    node.apply(&format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: shopify-sim, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: shopify-sim}}}}
  template:
    metadata: {{labels: {{app: shopify-sim}}}}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        seccompProfile: {{type: RuntimeDefault}}
      containers:
      - name: sim
        image: shopify-sim:{version}
        imagePullPolicy: Never
        args: [--fixture, /seed/sim-seed.yaml]
        ports: [{{containerPort: {SIM_PORT}}}]
        readinessProbe:
          httpGet: {{path: /_sim/health, port: {SIM_PORT}}}
          periodSeconds: 1
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {{drop: [ALL]}}
        volumeMounts: [{{name: seed, mountPath: /seed}}]
      volumes: [{{name: seed, configMap: {{name: seed}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: shopify-sim, namespace: {ns}}}
spec:
  clusterIP: {SIM_IP}
  selector: {{app: shopify-sim}}
  ports: [{{port: {SIM_PORT}}}]
"#,
        version = env!("CARGO_PKG_VERSION"),
    ));
    run(node
        .kubectl()
        .args(["-n", &ns, "rollout", "status", "deployment/shopify-sim"])
        .arg(format!("--timeout={}s", ROLLOUT.as_secs())));
    let addr = node
        .cluster
        .forward(SocketAddr::from((SIM_IP, SIM_PORT)))
        .expect("a forward to the simulator's Service");
    let sim = SimInCluster {
        admin: format!("http://{addr}/_sim"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client"),
    };
    // Through the Service (kube-proxy's rules), not only the Pod.
    wait_for("the simulator through its Service", ROLLOUT, || {
        sim.subscriptions()
    })
    .await;
    sim
}

/// The operator's Pods, Ready.
async fn operator_pods(node: &Node, ns: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(node.cluster.admin_client().await.expect("client"), ns);
    let lp = ListParams::default().labels("app.kubernetes.io/instance=so");
    pods.list(&lp).await.expect("list the operator's Pods").items
}

fn ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn leader(node: &Node, ns: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(node.cluster.admin_client().await.ok()?, ns);
    leases.get_opt(FULLNAME).await.ok()??.spec?.holder_identity
}

/// Every HTTPS subscription of every shop points at `host`, and there are
/// as many as at the start (nothing duplicated, nothing lost).
async fn converged(sim: &SimInCluster, host: &str, count: usize) -> Option<()> {
    let subs = sim.subscriptions().await?;
    let https: Vec<_> = subs.iter().filter(|(_, a)| a.starts_with("https://")).collect();
    (subs.len() == count
        && !https.is_empty()
        && https
            .iter()
            .all(|(_, a)| a.starts_with(&format!("https://{host}/"))))
    .then_some(())
}

fn set_host(node: &Node, host: &str) {
    let patch = format!(r#"[{{"op":"replace","path":"/spec/rules/0/host","value":"{host}"}}]"#);
    run(node.kubectl().args([
        "-n",
        "oms",
        "patch",
        "ingress",
        "oms",
        "--type=json",
        "-p",
        &patch,
    ]));
}

fn all_shops_ready(node: &Node) {
    run(node
        .kubectl()
        .args([
            "-n",
            "oms",
            "wait",
            "--for=condition=Ready",
            "shopifyshop",
            "--all",
        ])
        .arg(format!("--timeout={}s", ROLLOUT.as_secs())));
}

/// Every log line any operator container wrote (current and previous
/// containers), through the kubelet.
fn operator_logs(node: &Node, ns: &str, pods: &[String]) -> String {
    let mut all = String::new();
    for pod in pods {
        let out = node
            .kubectl()
            .args(["-n", ns, "logs", pod, "--all-containers"])
            .output();
        if let Ok(out) = out {
            all.push_str(&String::from_utf8_lossy(&out.stdout));
        }
    }
    all
}

fn assert_no_secrets(text: &str, what: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} carries a secret ({secret}…)");
    }
}

fn fleet_domain(i: usize) -> String {
    format!("fleet-{i:04}.myshopify.com")
}

fn fleet_token(i: usize) -> String {
    format!("shpat_fleet_{i:04}")
}

/// [`FLEET`] more shops, each like the seed's plain shop (`online`): in
/// the simulator with its seven subscriptions at [`HOST`], and as a
/// ShopifyShop with those topics at that fixed host and its token Secret,
/// in a namespace of their own. Returns the namespace.
async fn add_fleet(node: &Node, sim: &SimInCluster) -> String {
    let seed = Fixture::from_file(root().join("examples/sim-seed.yaml")).expect("the seed fixture");
    let template = seed
        .shops
        .iter()
        .find(|s| s.domain == SHOPS[1])
        .expect("the seed's online shop");
    let fleet_shop = |i: usize| ShopFixture {
        domain: fleet_domain(i),
        name: None,
        tokens: vec![TokenFixture {
            access_token: fleet_token(i),
            ..template.tokens[0].clone()
        }],
        ..template.clone()
    };
    let indices: Vec<usize> = (0..FLEET).collect();
    for batch in indices.chunks(FLEET_BATCH) {
        sim.load(&Fixture {
            shops: batch.iter().map(|&i| fleet_shop(i)).collect(),
            ..Default::default()
        })
        .await;
    }
    let topics: Vec<&str> = template.subscriptions.iter().map(|s| s.topic.as_str()).collect();

    let ns = node
        .cluster
        .namespace("fleet", &[])
        .await
        .expect("fleet namespace");
    let client = node.cluster.admin_client().await.expect("client");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let shops: Api<ShopifyShop> = Api::namespaced(client, &ns);
    futures::stream::iter(indices)
        .map(|i| {
            let (secrets, shops, topics) = (&secrets, &shops, &topics);
            async move {
                let name = format!("fleet-{i:04}");
                let secret: Secret = serde_json::from_value(json!({
                    "metadata": {"name": format!("{name}-token")},
                    "stringData": {"access-token": fleet_token(i)}
                }))
                .expect("a Secret");
                secrets.create(&PostParams::default(), &secret).await?;
                let shop: ShopifyShop = serde_json::from_value(json!({
                    "apiVersion": "shopify-operator.dev/v1alpha1",
                    "kind": "ShopifyShop",
                    "metadata": {"name": name},
                    "spec": {
                        "domain": fleet_domain(i),
                        "token": {"secretRef": {"name": format!("{name}-token")}},
                        "webhooks": {"endpoint": {"host": HOST}, "topics": topics},
                    },
                }))
                .expect("a ShopifyShop");
                shops.create(&PostParams::default(), &shop).await.map(|_| ())
            }
        })
        .buffer_unordered(8)
        .try_collect::<()>()
        .await
        .expect("the fleet's Secrets and ShopifyShops");
    ns
}

/// Each Pod's operator container's peak memory (its cgroup's high-water
/// mark: what the limit is enforced against), printed and checked against
/// the chart's default limit.
fn check_memory(node: &Node, pods: &[Pod], shops: &str) {
    for pod in pods {
        let uid = pod.metadata.uid.as_deref().expect("uid");
        let id = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .expect("statuses")[0]
            .container_id
            .clone()
            .expect("a container id");
        let peak = node
            .cluster
            .container_memory_peak(uid, &id)
            .expect("the container's memory cgroup");
        println!(
            "operator container {}: peak memory {:.1} MiB ({shops} shops; limit 256 MiB)",
            pod.name_any(),
            peak as f64 / 1048576.0
        );
        assert!(peak < 256 << 20, "peak {peak} B is under the chart's limit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_on_a_node_runs_the_demo_through_a_host_change_a_failover_an_upgrade_and_an_uninstall() {
    let t0 = std::time::Instant::now();
    let images = testenv::image_dir();
    let cluster = Cluster::start(NodeOptions {
        images: vec![
            images.join("shopify-operator.tar"),
            images.join("shopify-sim.tar"),
        ],
        crds: Vec::new(),
    })
    .await
    .unwrap_or_else(|e| panic!("starting the node: {e}"));
    let node = Node {
        kubeconfig: cluster.admin_kubeconfig().to_path_buf(),
        cluster,
    };

    step(t0, "node ready");
    let sim = start_sim(&node).await;
    step(t0, "simulator ready through its Service");
    node.cluster
        .serve_dns("myshopify.com", SIM_IP)
        .expect("the node's DNS responder");
    let seeded = sim.subscriptions().await.expect("the seed's subscriptions");

    // --- install: restricted namespace, two replicas, the image by name ---
    let ns = node
        .cluster
        .namespace("so", &RESTRICTED)
        .await
        .expect("operator namespace");
    let chart = root().join("charts/shopify-operator");
    let chart = chart.to_str().expect("utf-8 path");
    let base_url = format!("shopify.baseUrl=http://{{shop}}:{SIM_PORT}/{{shop}}");
    let install = |verb: &str, extra: &[&str]| {
        let mut args = vec![verb, RELEASE, chart, "-n", &ns, "--wait", "--timeout", "5m"];
        args.extend(["--set", "image.pullPolicy=Never", "--set", &base_url]);
        args.extend(extra);
        node.helm(&args)
    };
    install("install", &[]);
    step(t0, "helm install done");
    let pods = operator_pods(&node, &ns).await;
    assert_eq!(
        pods.iter().filter(|p| ready(p)).count(),
        2,
        "both replicas Ready (probes by the kubelet)"
    );
    for pod in &pods {
        let status = pod.status.as_ref().expect("status");
        let container = &status.container_statuses.as_ref().expect("container statuses")[0];
        assert_eq!(
            container.restart_count,
            0,
            "{} restarted: the image does not start cleanly",
            pod.name_any()
        );
    }
    let first_leader = wait_for("a leader", ROLLOUT, || leader(&node, &ns)).await;
    assert!(
        pods.iter().any(|p| p.name_any() == first_leader),
        "the Lease holder {first_leader} is one of the Pods (POD_NAME)"
    );

    // --- the demo: adopted in place, Ready ---
    run(node
        .kubectl()
        .args(["apply", "-f"])
        .arg(root().join("examples/demo")));
    // Without the app's `*/15` orders sync: a slot falling inside the
    // upgrade window would make a Job and a status write there (and its
    // example image does not exist).
    let no_sync = r#"[{"op":"remove","path":"/spec/defaults/sync"}]"#;
    run(node.kubectl().args([
        "-n",
        "oms",
        "patch",
        "shopifyapp",
        "oms",
        "--type=json",
        "-p",
        no_sync,
    ]));
    all_shops_ready(&node);
    step(t0, "demo shops Ready");
    let expected = seeded.len() + 2; // the offline shop's filtered orders/paid and its Pub/Sub orders/create
    wait_for("the demo's subscriptions at the Ingress host", ROLLOUT, || {
        converged(&sim, HOST, expected)
    })
    .await;

    // --- the Ingress host changes: every shop follows, through the DNS name ---
    step(t0, "subscriptions at the Ingress host");
    set_host(&node, NEW_HOST);
    wait_for("every shop at the new host", ROLLOUT, || {
        converged(&sim, NEW_HOST, expected)
    })
    .await;

    step(t0, "every shop at the new host");
    // --- failover: the leader's Pod goes, the other replica takes over ---
    // Whichever Pod wins — the surviving replica, or the one the
    // ReplicaSet starts in its place — it must be a live one.
    run(node
        .kubectl()
        .args(["-n", &ns, "delete", "pod", &first_leader, "--wait=false"]));
    let failover = std::time::Instant::now();
    let second_leader = wait_for("a new leader", ROLLOUT, || async {
        leader(&node, &ns).await.filter(|l| *l != first_leader)
    })
    .await;
    eprintln!(
        "leader {first_leader} deleted; {second_leader} leads {:.1}s later",
        failover.elapsed().as_secs_f64()
    );
    let live = operator_pods(&node, &ns).await;
    assert!(
        live.iter()
            .any(|p| p.name_any() == second_leader && p.metadata.deletion_timestamp.is_none()),
        "the new leader {second_leader} is a live Pod of the release"
    );
    step(t0, "failover done");
    set_host(&node, HOST);
    wait_for(
        "every shop back at the first host, under the new leader",
        ROLLOUT,
        || converged(&sim, HOST, expected),
    )
    .await;
    all_shops_ready(&node);

    // --- a rolling upgrade changes nothing on Shopify and no status ---
    let user = format!("system:serviceaccount:{ns}:{FULLNAME}");
    let status_writes = |node: &Node| {
        node.cluster
            .audit_writes(&user)
            .iter()
            .filter(|w| w.resource == "shopifyshops" && w.subresource.as_deref() == Some("status"))
            .count()
    };
    let mutations_before = sim.mutations().await.expect("sim counters");
    let writes_before = status_writes(&node);
    step(t0, "back at the first host; upgrading");
    install("upgrade", &["--set-string", "podAnnotations.rollout=2"]);
    let upgraded: Vec<Pod> = operator_pods(&node, &ns)
        .await
        .into_iter()
        .filter(ready)
        .collect();
    assert_eq!(upgraded.len(), 2, "two Ready replicas after the upgrade");
    let new_leader = wait_for("a leader among the upgraded Pods", ROLLOUT, || async {
        let l = leader(&node, &ns).await?;
        upgraded.iter().any(|p| p.name_any() == l).then_some(l)
    })
    .await;
    // The new leader has passed over every shop once (its own metrics,
    // through a forward to its Pod).
    let leader_pod = upgraded
        .iter()
        .find(|p| p.name_any() == new_leader)
        .expect("the leader's Pod");
    let pod_ip: Ipv4Addr = leader_pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_ref())
        .and_then(|ip| ip.parse().ok())
        .expect("the leader's Pod IP");
    let metrics = node
        .cluster
        .forward(SocketAddr::from((pod_ip, 8080)))
        .expect("a forward to the leader");
    wait_for(
        "the new leader's passes over the three shops",
        ROLLOUT,
        || async {
            support::reconciles(&metrics.to_string())
                .await
                .filter(|n| *n >= SHOPS.len() as u64)
        },
    )
    .await;
    assert_eq!(
        sim.mutations().await,
        Some(mutations_before),
        "an upgrade mutates nothing on Shopify"
    );
    assert_eq!(status_writes(&node), writes_before, "an upgrade writes no status");
    converged(&sim, HOST, expected)
        .await
        .expect("the subscriptions are as they were");

    step(t0, "upgrade checked");
    // --- memory against the limit, from the containers' cgroups ---
    check_memory(&node, &upgraded, "3");
    // ...and with 1,000 shops, adopted as they are (no mutation).
    let mutations_before = sim.mutations().await.expect("sim counters");
    let fleet = add_fleet(&node, &sim).await;
    step(t0, "fleet created");
    run(node
        .kubectl()
        .args([
            "-n",
            &fleet,
            "wait",
            "--for=condition=Ready",
            "shopifyshop",
            "--all",
        ])
        .arg(format!("--timeout={}s", ROLLOUT.as_secs())));
    step(t0, "fleet Ready");
    assert_eq!(
        sim.mutations().await,
        Some(mutations_before),
        "{FLEET} shops adopted at the host they are at: no mutation"
    );
    check_memory(&node, &upgraded, "1,000");

    // --- no secret in any log the kubelet kept, nor in /metrics ---
    let names: Vec<String> = operator_pods(&node, &ns)
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    let logs = operator_logs(&node, &ns, &names);
    assert!(
        logs.contains("became the leader"),
        "the logs are the operator's: {logs:.2000}"
    );
    assert_no_secrets(&logs, "an operator Pod's log");
    let text = support::metrics_text(&metrics.to_string())
        .await
        .expect("the leader's /metrics");
    assert_no_secrets(&text, "/metrics");

    check_metrics_service(&node, &ns, chart).await;
    step(t0, "logs and metrics checked");
    // --- uninstall: the operator goes; what it managed stays ---
    node.helm(&["uninstall", RELEASE, "-n", &ns, "--wait", "--timeout", "5m"]);
    wait_for("the operator's Pods gone", ROLLOUT, || async {
        operator_pods(&node, &ns).await.is_empty().then_some(())
    })
    .await;
    let shops = run(node
        .kubectl()
        .args(["-n", "oms", "get", "shopifyshops", "-o", "name"]));
    assert_eq!(shops.lines().count(), 3, "the shops stay: {shops}");
    let fleet_shops = run(node
        .kubectl()
        .args(["-n", &fleet, "get", "shopifyshops", "-o", "name"]));
    assert_eq!(fleet_shops.lines().count(), FLEET, "the fleet stays");
    converged(&sim, HOST, expected)
        .await
        .expect("the subscriptions stay on Shopify");
    let secrets = run(node.kubectl().args(["-n", "oms", "get", "secrets", "-o", "name"]));
    assert!(
        secrets.contains("offline-shopify-token"),
        "the token Secrets stay: {secrets}"
    );
    step(t0, "uninstall checked");
}

/// `/metrics` through the chart's metrics Service (kube-proxy's rules, not a
/// Pod IP) has the shop series, and the ServiceMonitor the chart renders
/// with `serviceMonitor.enabled` selects exactly that Service — asked of the
/// apiserver with its selector — on a port the Service names.
async fn check_metrics_service(node: &Node, ns: &str, chart: &str) {
    let rendered = node.helm(&[
        "template",
        RELEASE,
        chart,
        "-n",
        ns,
        "--set",
        "serviceMonitor.enabled=true",
        "--show-only",
        "templates/servicemonitor.yaml",
    ]);
    let monitor: Value = serde_norway::from_str(&rendered).expect("the ServiceMonitor as YAML");
    let selector: Vec<String> = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().expect("a label value")))
        .collect();
    let services: Api<Service> = Api::namespaced(node.cluster.admin_client().await.expect("client"), ns);
    let selected = services
        .list(&ListParams::default().labels(&selector.join(",")))
        .await
        .expect("services")
        .items;
    assert_eq!(
        selected.len(),
        1,
        "the ServiceMonitor selects one Service: {selector:?}"
    );
    let spec = selected[0].spec.clone().expect("the Service's spec");
    let port_name = monitor["spec"]["endpoints"][0]["port"]
        .as_str()
        .expect("an endpoint port");
    let port = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.name.as_deref() == Some(port_name))
        .unwrap_or_else(|| panic!("the Service has no port named {port_name}"));
    let ip: Ipv4Addr = spec
        .cluster_ip
        .and_then(|ip| ip.parse().ok())
        .expect("the Service's cluster IP");
    let through = node
        .cluster
        .forward(SocketAddr::from((ip, port.port as u16)))
        .expect("a forward to the Service");
    // The Service spreads connections over both Pods; only the leader has
    // reconciled the shops, so ask until a connection reaches it.
    let text = wait_for("the shop series through the Service", ROLLOUT, || async {
        let text = support::metrics_text(&through.to_string()).await?;
        text.contains("shopify_shop_condition{").then_some(text)
    })
    .await;
    for name in ["offline", "online", "diff"] {
        assert!(
            text.lines().any(|l| l.starts_with("shopify_shop_condition{")
                && l.contains("namespace=\"oms\"")
                && l.contains(&format!("name=\"{name}\""))),
            "the demo shop {name}'s series through the Service: {text:.2000}"
        );
    }
    assert_no_secrets(&text, "/metrics through the Service");
}
