//! Convergence at scale: N shops × 8 topics against shopify-sim (50 ms per
//! request, Standard-plan cost limits) and a real control plane, with the
//! operator as a separate release-built process running as its own user.
//!
//! For each N (default 1000; `SHOPS=10,100,1000,3000` or `--shops …`):
//! * **set-up** (reported separately): N Secrets + N ShopifyShops created
//!   through the apiserver, concurrently (bounded); the simulator already
//!   has every shop's 8 subscriptions at `https://oms.popsockets.com/…`, so
//!   the operator adopts them. Every other shop declares two of its topics
//!   as `subscriptions[]` entries (one with a filter and payload fields)
//!   and one more to Pub/Sub, which the host change must leave alone;
//! * **cold start**: operator start → every shop `Ready` (watched on the
//!   apiserver); Shopify mutations must be 0;
//! * **host change**: Ingress `oms` gets a new host (its TLS Secret holds a
//!   `*.popsockets.com` certificate, so the certificate gate opens) → every subscription
//!   repointed, timed to the simulator's last mutation and to the last
//!   `Ready` status at the new host; target ≤ 2 Shopify requests per shop;
//! * **steady**: three resyncs of every shop (short `RESYNC_INTERVAL`):
//!   target 0 mutations and 0 apiserver writes; then an **idle** window
//!   between resyncs (operator CPU while nothing happens);
//! * **control-plane cost**: with the operator stopped, 300 requests of each
//!   kind a reconcile makes (GET Secret, create Event, status apply, status
//!   merge-patch, and the sharded pass's shard check — a LIST of the shop by
//!   name and the shard's selector, twice per change), with the apiserver's
//!   and etcd's CPU per request — what bounds convergence on a small
//!   machine. GET Ingress is still measured but is no longer per reconcile
//!   (the operator reads the Ingress from its watch cache), so it is left
//!   out of the per-shop sum. Then, for each kind of status write (apply and
//!   merge patch), a **kube-apiserver CPU profile**: the writes run
//!   (16 at a time) for the whole window of
//!   `/debug/pprof/profile?seconds=S` (`BENCH_PPROF_SECONDS`, default 10;
//!   0 skips), saved to `apiserver-status-apply.pprof` and
//!   `apiserver-status-merge.pprof` (and a copy per N and shards), with
//!   `go tool pprof -top` of each in the JSON when `go` is on PATH, and the
//!   apiserver CPU seconds per 1,000 writes. testenv starts kube-apiserver
//!   with `--profiling=false`; the bench then restarts it (same command
//!   line, same port and etcd, `--profiling=true`) after the per-request
//!   measurements (which are the original process's), and measures some of
//!   them again on the restarted one;
//! * **baseline** (the old way, `converge/baseline.rs`): once the control
//!   plane is stopped, so the two never compete for CPU, the same host change
//!   done the way the seed's Rails app and the `shopify_api` gem's webhook
//!   `Registry` do it — per shop, per HTTPS topic, one
//!   `webhookSubscriptions(first: 1, topics: [TOPIC])` query and one
//!   `webhookSubscriptionUpdate` for each changed topic, sequential within a
//!   shop — against a fresh simulator with the same fixture, latency and
//!   cost limits. Shops run on a pool of 10 workers: the default Sidekiq
//!   concurrency a Rails app of this kind runs (Sidekiq 6's 10 threads;
//!   Sidekiq 7 defaults to 5, so 10 is generous to the old way), and
//!   `THROTTLED` answers are retried after exactly the wait their
//!   `throttleStatus` asks for. Reported: wall time to the last mutation,
//!   requests per shop by kind, throttled retries, cost points, a check that
//!   every HTTPS subscription is at the new host, and the ratios to the
//!   operator's host change. `BENCH_BASELINE=0` skips it.
//!
//! **Shards** (`SHARDS=k`, default 1): shop `i` is labelled
//! `sharding.shopify-operator.dev/key=shard-{i % k + 1}` when `i % k != 0`
//! (so with 2 shards every odd shop is `shard-2`), and k operator processes
//! run side by side: one with `WATCH_LABEL_SELECTOR=!sharding.shopify-operator.dev/key`,
//! the others with `…/key=shard-j` (own log file, own `LEASE_NAME` should
//! `LEADER_ELECT` be set; both use the same user). Wall times are for all
//! shops.
//!
//! Each phase reports wall time, Shopify requests per shop by operation,
//! apiserver writes of the operator's identity (audit log), the operators'
//! peak RSS (sampled VmRSS summed over the processes, and VmHWM) and CPU
//! seconds, the same per process, and the CPU seconds of kube-apiserver,
//! etcd and this process (simulator + watches).
//!
//! Output: `target/bench/converge.json` (runs of other N or shard counts
//! already in the file are kept, a re-run of an (N, shards) replaces it),
//! `target/bench/converge.svg`
//! (convergence over time, scaling across N, memory) and a table on stdout.
//!
//! `cargo bench --bench converge [-- --shops 10,100 --latency-ms 50 --out DIR
//! --resync 20s]`; env `SHOPS`, `LATENCY_MS`, `BENCH_OUT`, `BENCH_RESYNC`,
//! `SETUP_CONCURRENCY`, `BENCH_BASELINE`, `SHARDS` (`--shards`),
//! `BENCH_PPROF_SECONDS`; `--quick` / `BENCH_QUICK=1` skips the steady and
//! idle phases; `--report` only redraws the plot and prints the table from
//! the stored JSON. The operator inherits the environment, so
//! `MAX_CONCURRENT_RECONCILES` reaches it; `MALLOC_ARENA_MAX` is 1, as the
//! image and chart ship it, unless the environment sets it;
//! `BENCH_OPERATOR_WRAPPER="heaptrack -o /tmp/op"` runs it under a profiler
//! (its RSS and CPU are then the wrapper's). It prints numbers and asserts no
//! timings; without `--bench` (as under `cargo test --benches`) it does
//! nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shopify_operator::crd::ShopifyShop;
use shopify_sim::{self as sim, Fixture, ShopFixture, Sim, SimConfig, SubscriptionFixture, TokenFixture};
use testenv::{AuditWrite, ControlPlane, Options, Supervised};

/// The old way beside ours (the `Registry` strategy on 10 workers).
#[path = "converge/baseline.rs"]
mod baseline;

/// The operator's apiserver writes replayed by a minimal client.
#[path = "converge/floor.rs"]
mod floor;

/// Churn over many resyncs, watched for leaks (`BENCH_SOAK`).
#[path = "converge/soak.rs"]
mod soak;

const TOPICS: [&str; 8] = [
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "orders/fulfilled",
    "products/update",
    "products/create",
    "customers/update",
    "app/uninstalled",
];
/// Every other shop ("mixed") declares two of its topics as
/// `subscriptions[]` entries — one with a filter and payload fields — and
/// one more to Pub/Sub, which a host change must not touch.
const MIXED_FILTER: &str = "state:enabled";
const MIXED_FIELDS: [&str; 2] = ["id", "email"];
const MIXED_PUBSUB: &str = "pubsub://oms-bench:orders";
const OLD_HOST: &str = "oms.popsockets.com";
const NEW_HOST: &str = "oms-v2.popsockets.com";
const USER: &str = "bench-operator";
const POLL: Duration = Duration::from_millis(50);
/// After convergence, how long requests and writes are still counted (a
/// straggling extra reconcile would show up).
const SETTLE: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------- settings

#[derive(Debug, Clone)]
struct Settings {
    shops: Vec<usize>,
    latency: Duration,
    out: PathBuf,
    resync: Option<Duration>,
    setup_concurrency: usize,
    /// Cold start and host change only.
    quick: bool,
    /// Only redraw the plot and print the table from converge.json.
    report_only: bool,
    /// Run the old way's host change after the operator's phases
    /// (`BENCH_BASELINE=0` skips it).
    baseline: bool,
    /// Operator processes, each with its own label selector (`SHARDS`).
    shards: usize,
    /// Length of each kube-apiserver CPU profile window (0: no profiles).
    pprof_seconds: u64,
    /// Resync cycles of the soak (`BENCH_SOAK`; `None`: no soak).
    soak: Option<usize>,
}

fn settings() -> Option<Settings> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return None;
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let mut s = Settings {
        shops: vec![1000],
        latency: Duration::from_millis(50),
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench"),
        resync: None,
        setup_concurrency: 32,
        quick: env("BENCH_QUICK").is_some_and(|v| v != "0"),
        report_only: false,
        baseline: env("BENCH_BASELINE").is_none_or(|v| v != "0"),
        shards: 1,
        pprof_seconds: 10,
        soak: None,
    };
    if let Some(p) = env("BENCH_PPROF_SECONDS") {
        s.pprof_seconds = p.parse().expect("BENCH_PPROF_SECONDS is a number of seconds");
    }
    let mut shards = env("SHARDS");
    let mut shops = env("SHOPS");
    let mut latency = env("LATENCY_MS");
    let mut resync = env("BENCH_RESYNC");
    let mut soak = env("BENCH_SOAK");
    if let Some(o) = env("BENCH_OUT") {
        s.out = PathBuf::from(o);
    }
    if let Some(c) = env("SETUP_CONCURRENCY").and_then(|c| c.parse().ok()) {
        s.setup_concurrency = c;
    }
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next());
        match flag.as_str() {
            "--shops" => shops = value(),
            "--latency-ms" => latency = value(),
            "--resync" => resync = value(),
            "--shards" => shards = value(),
            "--soak" => soak = value(),
            "--out" => s.out = PathBuf::from(value().unwrap_or_default()),
            "--quick" => s.quick = true,
            "--report" => s.report_only = true,
            "--bench" => {}
            other => eprintln!("converge: ignoring argument {other:?}"),
        }
    }
    if let Some(list) = shops {
        s.shops = list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("bad shop count {n:?}"))
            })
            .collect();
    }
    if let Some(k) = shards {
        s.shards = k
            .trim()
            .parse()
            .expect("SHARDS is a number of operator processes");
        assert!(s.shards >= 1, "SHARDS must be at least 1");
    }
    if let Some(ms) = latency {
        s.latency = Duration::from_millis(ms.parse().expect("LATENCY_MS is a number of milliseconds"));
    }
    if let Some(c) = soak {
        let cycles: usize = c.trim().parse().expect("BENCH_SOAK is a number of resync cycles");
        s.soak = (cycles > 0).then_some(cycles);
    }
    if let Some(r) = resync {
        s.resync = Some(humantime::parse_duration(&r).expect("BENCH_RESYNC like 20s"));
    }
    Some(s)
}

/// Resync interval of a run: 20 s up to 1,000 shops, then 20 s per 1,000, so
/// a host-change wave never overlaps a resync wave of the same shop.
fn resync_for(n: usize, s: &Settings) -> Duration {
    s.resync
        .unwrap_or_else(|| Duration::from_secs(20 * (n as u64).div_ceil(1000).max(1)))
}

// ------------------------------------------------------------ /proc probes

fn clk_tck() -> f64 {
    testenv::clock_ticks_per_second()
}

/// (ppid, cpu seconds) of a process, from /proc/PID/stat.
fn proc_stat(pid: u32) -> Option<(u32, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((ppid, (utime + stime) / clk_tck()))
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A `kB` field of /proc/PID/status, in MiB.
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| proc_stat(*pid).is_some_and(|(ppid, _)| ppid == parent))
        .collect()
}

/// Children of this process by name (`kube-apiserver`, `etcd`).
fn child_pids() -> HashMap<String, u32> {
    children_of(std::process::id())
        .into_iter()
        .map(|pid| (comm(pid), pid))
        .collect()
}

fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Machine {
    cores: usize,
    mem_total_mib: f64,
    cpu_model: String,
    kernel: String,
    loadavg_before: Vec<f64>,
    loadavg_after: Vec<f64>,
}

fn machine() -> Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default();
    Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_total_mib: mem.round(),
        cpu_model: model,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        loadavg_before: loadavg(),
        loadavg_after: Vec::new(),
    }
}

// ------------------------------------------------------------ the world

fn domain(i: usize) -> String {
    format!("bench-{i:05}.myshopify.com")
}

fn token(i: usize) -> String {
    format!("shpat_bench_{i:05}")
}

fn address(host: &str, topic: &str) -> String {
    format!("https://{host}/webhooks/{}", topic.replace('/', "_"))
}

fn mixed(i: usize) -> bool {
    i % 2 == 1
}

/// The sharding label (Flux's convention, the operator's
/// `--watch-label-selector`).
const SHARD_KEY: &str = "sharding.shopify-operator.dev/key";

/// The shard of shop `i` among `shards`: 0 is the unlabelled shard, `j > 0`
/// is `shard-{j+1}` (with 2 shards, every odd shop is `shard-2`).
fn shard_of(i: usize, shards: usize) -> usize {
    i % shards.max(1)
}

/// The label value of shard `j > 0`.
fn shard_label(j: usize) -> String {
    format!("shard-{}", j + 1)
}

/// The label selector of shard `j`'s operator process.
fn shard_selector(j: usize) -> String {
    if j == 0 {
        format!("!{SHARD_KEY}")
    } else {
        format!("{SHARD_KEY}={}", shard_label(j))
    }
}

/// The subscriptions a shop has before the run: its spec applied at
/// `OLD_HOST` (so cold start is adoption, 0 mutations).
fn existing(i: usize) -> Vec<SubscriptionFixture> {
    let mut subs: Vec<SubscriptionFixture> = TOPICS
        .iter()
        .map(|t| SubscriptionFixture {
            topic: t.to_string(),
            address: address(OLD_HOST, t),
            ..Default::default()
        })
        .collect();
    if mixed(i) {
        subs[6].filter = Some(MIXED_FILTER.into());
        subs[6].include_fields = MIXED_FIELDS.iter().map(|f| f.to_string()).collect();
        subs.push(SubscriptionFixture {
            topic: "orders/create".into(),
            address: MIXED_PUBSUB.into(),
            ..Default::default()
        });
    }
    subs
}

/// The spec's webhooks: the shorthand, or for a mixed shop six topics in
/// the shorthand and the rest as entries.
fn webhooks(i: usize) -> serde_json::Value {
    let endpoint = json!({"ingressRef": {"name": "oms"}});
    if !mixed(i) {
        return json!({"endpoint": endpoint, "topics": TOPICS});
    }
    json!({"endpoint": endpoint, "topics": TOPICS[..6], "subscriptions": [
        {"topics": [TOPICS[6]], "filter": MIXED_FILTER, "includeFields": MIXED_FIELDS},
        {"topics": [TOPICS[7]], "path": "/webhooks/{topic}"},
        {"topics": ["orders/create"], "uri": MIXED_PUBSUB},
    ]})
}

/// The simulator of a run: `fixture(n)`, the given latency and the default
/// (Standard-plan) cost limits. The operator's phases and the baseline each
/// get a fresh one from here, so they face the same Shopify.
fn sim_config(n: usize, latency: Duration) -> SimConfig {
    SimConfig {
        latency,
        fixture: fixture(n),
        ..Default::default()
    }
}

fn fixture(n: usize) -> Fixture {
    Fixture {
        shops: (0..n)
            .map(|i| ShopFixture {
                domain: domain(i),
                name: Some(format!("Bench shop {i}")),
                tokens: vec![TokenFixture {
                    access_token: token(i),
                    scopes: vec![
                        "read_orders".into(),
                        "read_products".into(),
                        "read_customers".into(),
                    ],
                    ..Default::default()
                }],
                subscriptions: existing(i),
                ..Default::default()
            })
            .collect(),
        app: None,
        apps: Vec::new(),
    }
}

/// The Ingress `oms` at `OLD_HOST`, serving TLS from `oms-tls` (a
/// `*.popsockets.com` certificate), so the host change goes through the
/// certificate gate like a real cutover.
async fn create_ingress(client: &Client, ns: &str) -> Result<(), kube::Error> {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["*.popsockets.com".to_string()])
        .and_then(|p| p.self_signed(&key))
        .expect("certificate");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let tls: Secret = serde_json::from_value(json!({
        "metadata": {"name": "oms-tls"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": cert.pem(), "tls.key": key.serialize_pem()}
    }))
    .expect("tls secret");
    secrets.create(&PostParams::default(), &tls).await?;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let i: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "oms"},
        "spec": {"rules": [{"host": OLD_HOST, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "oms", "port": {"number": 80}}}}]}}],
            "tls": [{"secretName": "oms-tls"}]}
    }))
    .expect("ingress");
    ingresses.create(&PostParams::default(), &i).await.map(|_| ())
}

async fn create_shop(client: &Client, ns: &str, i: usize, shards: usize) -> Result<(), kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let shops: Api<ShopifyShop> = Api::namespaced(client.clone(), ns);
    let name = format!("shop-{i:05}");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-token")},
        "stringData": {"access-token": token(i)}
    }))
    .expect("secret");
    secrets.create(&PostParams::default(), &secret).await?;
    let labels = match shard_of(i, shards) {
        0 => json!({}),
        j => json!({SHARD_KEY: shard_label(j)}),
    };
    let shop: ShopifyShop = serde_json::from_value(json!({
        "apiVersion": "shopify-operator.dev/v1alpha1",
        "kind": "ShopifyShop",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "domain": domain(i),
            "token": {"secretRef": {"name": format!("{name}-token")}},
            "webhooks": webhooks(i),
        },
    }))
    .expect("shop");
    shops.create(&PostParams::default(), &shop).await.map(|_| ())
}

// ------------------------------------------------------- status tracking

/// What the bench knows about a shop's status, from a watch, with the time
/// the (ready, host) pair was first seen.
struct Seen {
    ready: bool,
    host: Option<String>,
    since: Instant,
}

#[derive(Default)]
struct Tracker {
    shops: HashMap<String, Seen>,
    /// Objects the watch has delivered (a relist delivers every shop again).
    events: usize,
}

impl Tracker {
    fn apply(&mut self, shop: &ShopifyShop, at: Instant) {
        self.events += 1;
        let status = shop.status.as_ref();
        let ready = status.is_some_and(|s| {
            s.observed_generation == shop.metadata.generation
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        let host = status.and_then(|s| s.webhook_host.clone());
        let entry = self.shops.entry(shop.name_any()).or_insert(Seen {
            ready: !ready,
            host: None,
            since: at,
        });
        if entry.ready != ready || entry.host != host {
            *entry = Seen {
                ready,
                host,
                since: at,
            };
        }
    }

    /// Times (since `t0`) at which each shop became Ready at `host`.
    fn ready_at(&self, host: &str, t0: Instant) -> Vec<f64> {
        self.shops
            .values()
            .filter(|s| s.ready && s.host.as_deref() == Some(host))
            .map(|s| s.since.saturating_duration_since(t0).as_secs_f64())
            .collect()
    }
}

fn track(client: Client, ns: &str) -> Arc<Mutex<Tracker>> {
    let tracker = Arc::new(Mutex::new(Tracker::default()));
    let t = tracker.clone();
    let api: Api<ShopifyShop> = Api::namespaced(client, ns);
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        while let Ok(Some(shop)) = stream.try_next().await {
            t.lock().expect("tracker").apply(&shop, Instant::now());
        }
    });
    tracker
}

// --------------------------------------------------------------- phases

/// Writes made so far by `user`, in order, from the audit log and its
/// rotated files: kube-apiserver rotates `audit.log` at 100 MB (its
/// `--audit-log-maxsize` default), which 10,000 shops pass during set-up,
/// and testenv's `audit_writes` reads only `audit.log`. Rotated files are
/// named `audit-<time>.log` (kept, uncompressed), so the names sort in order.
fn audit_writes(dir: &Path, user: &str) -> Vec<AuditWrite> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".log"))
        })
        .collect();
    files.sort();
    files.push(dir.join("audit.log"));
    let needle = format!("\"username\":\"{user}\"");
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains(&needle)) {
            let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if e["user"]["username"] != user {
                continue;
            }
            out.extend(testenv::AuditWrite::from_entry(&e));
        }
    }
    out
}

/// Everything measured in one phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Phase {
    completed: bool,
    wall_s: f64,
    shopify_requests: u64,
    requests_per_shop: f64,
    max_requests_one_shop: u64,
    /// Mean attempts per shop by GraphQL root field (a document with 8
    /// aliased updates counts 8 `webhookSubscriptionUpdate`).
    per_shop_by_operation: BTreeMap<String, f64>,
    mutations: u64,
    throttled: u64,
    /// GraphQL cost points charged (the simulator's actual query cost), in
    /// total and per shop.
    cost_points: u64,
    cost_per_shop: f64,
    apiserver_writes: u64,
    writes_by_kind: BTreeMap<String, u64>,
    status_writes_metric: f64,
    /// Reconciles finished in the phase and their mean duration (operator
    /// metrics, summed over the processes).
    reconciles: f64,
    mean_reconcile_s: f64,
    /// Peak of the operator processes' VmRSS summed at each sample (one
    /// process: its peak RSS).
    operator_peak_rss_mib: f64,
    /// Sum of the processes' VmHWM.
    operator_vmhwm_mib: f64,
    /// At the end of the phase, summed over the processes: anonymous (heap,
    /// stacks) and file-backed (the binary) resident memory, and threads.
    operator_rss_anon_mib: f64,
    operator_rss_file_mib: f64,
    operator_threads: f64,
    /// Summed over the processes.
    operator_cpu_s: f64,
    /// Each operator process (one per shard), in shard order.
    operators: Vec<OperatorPhase>,
    apiserver_cpu_s: f64,
    etcd_cpu_s: f64,
    bench_process_cpu_s: f64,
}

/// One operator process in a phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct OperatorPhase {
    /// Its `WATCH_LABEL_SELECTOR` (empty: every shop).
    selector: String,
    peak_rss_mib: f64,
    vmhwm_mib: f64,
    rss_anon_mib: f64,
    cpu_s: f64,
    reconciles: f64,
}

/// Counters at the start of a phase.
struct Mark {
    at: Instant,
    writes: usize,
    cpu: HashMap<&'static str, f64>,
    /// CPU seconds of each operator process.
    op_cpu: Vec<f64>,
    status_writes: f64,
    reconcile_count: f64,
    reconcile_sum: f64,
    /// Reconciles of each operator process.
    op_reconciles: Vec<f64>,
}

/// One operator process (one shard).
struct Operator {
    process: Supervised,
    /// Its `WATCH_LABEL_SELECTOR` (empty: none, every shop).
    selector: String,
    metrics_url: String,
    peak_rss: f64,
}

struct World {
    n: usize,
    cp: ControlPlane,
    sim: Sim,
    client: Client,
    ns: String,
    operators: Vec<Operator>,
    http: reqwest::Client,
    tracker: Arc<Mutex<Tracker>>,
    pids: HashMap<String, u32>,
    /// Peak of the operators' summed VmRSS.
    peak_rss: f64,
    /// kube-apiserver restarted by the bench with `--profiling=true` for the
    /// control-plane cost phase (testenv starts it with profiling off).
    profiling_apiserver: Option<Supervised>,
}

impl World {
    fn cpu(&self) -> HashMap<&'static str, f64> {
        let mut m = HashMap::new();
        let get = |pid: Option<&u32>| pid.and_then(|p| proc_stat(*p)).map_or(0.0, |(_, c)| c);
        m.insert("operator", self.op_cpu().iter().sum());
        m.insert("apiserver", get(self.pids.get("kube-apiserver")));
        m.insert("etcd", get(self.pids.get("etcd")));
        m.insert("bench", get(Some(&std::process::id())));
        m
    }

    /// CPU seconds of each operator process.
    fn op_cpu(&self) -> Vec<f64> {
        self.operators
            .iter()
            .map(|o| proc_stat(o.process.pid()).map_or(0.0, |(_, c)| c))
            .collect()
    }

    fn sample(&mut self) {
        let mut total = 0.0;
        for o in &mut self.operators {
            if let Some(rss) = status_mib(o.process.pid(), "VmRSS:") {
                o.peak_rss = o.peak_rss.max(rss);
                total += rss;
            }
        }
        self.peak_rss = self.peak_rss.max(total);
    }

    /// A metric of one operator process (summed over its series).
    async fn metric_of(&self, url: &str, name: &str) -> f64 {
        let Ok(resp) = self.http.get(url).send().await else {
            return f64::NAN;
        };
        let text = resp.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| l.split([' ', '{']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// A metric of each operator process.
    async fn metrics(&self, name: &str) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.operators.len());
        for o in &self.operators {
            out.push(self.metric_of(&o.metrics_url, name).await);
        }
        out
    }

    /// A metric summed over the operator processes.
    async fn metric(&self, name: &str) -> f64 {
        self.metrics(name).await.iter().sum()
    }

    async fn mark(&mut self) -> Mark {
        self.sim.reset_counters();
        self.peak_rss = 0.0;
        for o in &mut self.operators {
            o.peak_rss = 0.0;
        }
        self.sample();
        let op_reconciles = self
            .metrics("shopify_operator_reconcile_duration_seconds_count")
            .await;
        Mark {
            at: Instant::now(),
            writes: audit_writes(&self.cp.dir, USER).len(),
            cpu: self.cpu(),
            op_cpu: self.op_cpu(),
            status_writes: self.metric("shopify_operator_status_writes_total").await,
            reconcile_count: op_reconciles.iter().sum(),
            reconcile_sum: self
                .metric("shopify_operator_reconcile_duration_seconds_sum")
                .await,
            op_reconciles,
        }
    }

    async fn finish(&mut self, mark: &Mark, wall: Duration, completed: bool) -> Phase {
        self.sample();
        let counters = self.sim.all_counters();
        let n = self.n as f64;
        let mut by_op: BTreeMap<String, f64> = BTreeMap::new();
        for c in counters.values() {
            for (op, v) in &c.operations {
                *by_op.entry(op.clone()).or_default() += *v as f64 / n;
            }
        }
        by_op
            .values_mut()
            .for_each(|v| *v = (*v * 1000.0).round() / 1000.0);
        let all = audit_writes(&self.cp.dir, USER);
        let writes: &[AuditWrite] = all.get(mark.writes..).unwrap_or_default();
        let mut kinds = BTreeMap::new();
        for w in writes {
            let key = match &w.subresource {
                Some(sub) => format!("{} {}/{sub}", w.verb, w.resource),
                None => format!("{} {}", w.verb, w.resource),
            };
            *kinds.entry(key).or_default() += 1;
        }
        let cpu = self.cpu();
        let d = |k: &str| cpu[k] - mark.cpu[k];
        let requests: u64 = counters.values().map(|c| c.requests).sum();
        let cost_points: u64 = counters.values().map(|c| c.cost).sum();
        let op_reconciles = self
            .metrics("shopify_operator_reconcile_duration_seconds_count")
            .await;
        let reconciles = op_reconciles.iter().sum::<f64>() - mark.reconcile_count;
        let reconcile_s = self
            .metric("shopify_operator_reconcile_duration_seconds_sum")
            .await
            - mark.reconcile_sum;
        let op_cpu = self.op_cpu();
        let status = |o: &Operator, field: &str| status_mib(o.process.pid(), field).unwrap_or(0.0);
        let operators: Vec<OperatorPhase> = self
            .operators
            .iter()
            .enumerate()
            .map(|(i, o)| OperatorPhase {
                selector: o.selector.clone(),
                peak_rss_mib: o.peak_rss,
                vmhwm_mib: status(o, "VmHWM:"),
                rss_anon_mib: status(o, "RssAnon:"),
                cpu_s: op_cpu[i] - mark.op_cpu.get(i).copied().unwrap_or(0.0),
                reconciles: op_reconciles[i] - mark.op_reconciles.get(i).copied().unwrap_or(0.0),
            })
            .collect();
        let sum = |field: &str| self.operators.iter().map(|o| status(o, field)).sum::<f64>();
        Phase {
            completed,
            wall_s: wall.as_secs_f64(),
            shopify_requests: requests,
            requests_per_shop: requests as f64 / n,
            max_requests_one_shop: counters.values().map(|c| c.requests).max().unwrap_or(0),
            per_shop_by_operation: by_op,
            mutations: counters.values().map(|c| c.mutations).sum(),
            throttled: counters.values().map(|c| c.throttled).sum(),
            cost_points,
            cost_per_shop: cost_points as f64 / n,
            apiserver_writes: writes.len() as u64,
            writes_by_kind: kinds,
            status_writes_metric: self.metric("shopify_operator_status_writes_total").await
                - mark.status_writes,
            reconciles,
            mean_reconcile_s: reconcile_s / reconciles.max(1.0),
            operator_peak_rss_mib: self.peak_rss,
            operator_vmhwm_mib: sum("VmHWM:"),
            operator_rss_anon_mib: sum("RssAnon:"),
            operator_rss_file_mib: sum("RssFile:"),
            operator_threads: sum("Threads:") * 1024.0,
            operator_cpu_s: d("operator"),
            operators,
            apiserver_cpu_s: d("apiserver"),
            etcd_cpu_s: d("etcd"),
            bench_process_cpu_s: d("bench"),
        }
    }

    /// The first operator process that has exited, with its log's tail.
    fn exited_operator(&mut self) -> Option<String> {
        self.operators.iter_mut().find_map(|o| {
            let status = o.process.exited()?;
            Some(format!(
                "operator [{}] exited: {status}\n{}",
                o.selector,
                o.process.log_tail(30)
            ))
        })
    }

    /// Polls until every shop is Ready at `host` or `deadline` passes;
    /// returns the per-shop times (since `t0`) and whether all made it.
    async fn wait_ready(&mut self, host: &str, t0: Instant, deadline: Duration) -> (Vec<f64>, bool) {
        loop {
            self.sample();
            let times = self.tracker.lock().expect("tracker").ready_at(host, t0);
            if times.len() == self.n {
                return (times, true);
            }
            if t0.elapsed() > deadline {
                return (times, false);
            }
            if let Some(exited) = self.exited_operator() {
                eprintln!("{exited}");
                return (times, false);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM to every operator process and to whatever a profiler wrapper
    /// started (a wrapper may not pass the signal on).
    fn stop_operator(&mut self) {
        for o in &mut self.operators {
            let mut pids = vec![o.process.pid()];
            let mut i = 0;
            while i < pids.len() {
                pids.extend(children_of(pids[i]));
                i += 1;
            }
            // The wrapper's children first, then the process itself, so
            // every shard stops at once.
            for pid in pids.iter().rev() {
                testenv::send_sigterm(*pid);
            }
        }
        for o in &mut self.operators {
            o.process.terminate(Duration::from_secs(10));
        }
    }

    async fn sleep_sampling(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.sample();
            tokio::time::sleep(POLL).await;
        }
    }
}

fn deadline(n: usize) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(100) * n as u32
}

/// Sorted times thinned to at most `max` points (always keeping the last).
fn curve(mut times: Vec<f64>, per_item: usize, max: usize) -> Vec<(f64, usize)> {
    times.sort_by(f64::total_cmp);
    let len = times.len();
    let step = len.div_ceil(max).max(1);
    let mut out: Vec<(f64, usize)> = times
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i + 1 == len)
        .map(|(i, t)| ((t * 1000.0).round() / 1000.0, (i + 1) * per_item))
        .collect();
    out.insert(0, (0.0, 0));
    out
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Run {
    shops: usize,
    /// Operator processes, one per shard (files without it: 1).
    #[serde(default = "one")]
    shards: usize,
    topics_per_shop: usize,
    latency_ms: u64,
    resync_interval_s: f64,
    max_concurrent_reconciles: String,
    machine: Option<Machine>,
    setup: BTreeMap<String, f64>,
    cold_start: Phase,
    cold_start_to_first_ready_s: f64,
    cold_start_ready_curve: Vec<(f64, usize)>,
    host_change: Phase,
    host_change_to_first_mutation_s: f64,
    host_change_to_last_mutation_s: f64,
    host_change_to_last_ready_s: f64,
    subscriptions_repointed: usize,
    /// (seconds after the Ingress update, subscriptions repointed), from
    /// each shop's mutation time in the simulator.
    repoint_curve: Vec<(f64, usize)>,
    /// (seconds after the Ingress update, shops Ready at the new host).
    ready_curve: Vec<(f64, usize)>,
    steady: Phase,
    steady_resyncs: u64,
    idle: Phase,
    /// Operator CPU while no Shopify request was made (half-second slots of
    /// the idle window), in % of one core.
    idle_cpu_percent: f64,
    idle_quiet_s: f64,
    /// kube-apiserver (and etcd) CPU per request of each kind the operator
    /// makes, measured after the phases with the operator stopped.
    apiserver_cost: BTreeMap<String, OpCost>,
    /// The control plane's CPU for one shop's change, summed from
    /// `apiserver_cost` over the requests a host-change pass makes.
    cost_per_shop_change: Option<ShopChangeCost>,
    /// kube-apiserver CPU profiles while status writes ran, by kind
    /// (`apply`, `merge`).
    apiserver_profiles: BTreeMap<String, ApiserverProfile>,
    /// kube-apiserver was restarted with `--profiling=true` for the profiles
    /// (after `apiserver_cost`, which is the original process's).
    apiserver_restarted_for_profiling: bool,
    /// Some of `apiserver_cost`'s requests again on the restarted apiserver.
    apiserver_cost_after_restart: BTreeMap<String, OpCost>,
    /// The old way's host change on its own simulator, with its ratios to
    /// `host_change` (absent with `BENCH_BASELINE=0` and in older files).
    baseline: Option<baseline::Baseline>,
    /// The operator's host change and cold start writes replayed by a
    /// minimal client, with the ratios (absent in older files).
    #[serde(default)]
    floor: Option<floor::Floor>,
    /// The soak (`BENCH_SOAK`; absent without it and in older files).
    #[serde(default)]
    soak: Option<soak::Soak>,
}

fn one() -> usize {
    1
}

async fn run(n: usize, s: &Settings) -> Result<Run, Box<dyn std::error::Error>> {
    let mut out = Run {
        shops: n,
        shards: s.shards,
        topics_per_shop: TOPICS.len(),
        latency_ms: s.latency.as_millis() as u64,
        machine: Some(machine()),
        max_concurrent_reconciles: std::env::var("MAX_CONCURRENT_RECONCILES")
            .unwrap_or_else(|_| "64 (default)".into()),
        ..Default::default()
    };
    let resync = resync_for(n, s);
    out.resync_interval_s = resync.as_secs_f64();
    eprintln!(
        "== {n} shops, {} operator process{}: starting the control plane and the simulator",
        s.shards,
        if s.shards == 1 { "" } else { "es (shards)" }
    );
    let started = Instant::now();
    let cp = ControlPlane::start(Options {
        controller_manager: false,
        crds: shopify_operator::crd::all(),
    })
    .await?;
    let pids = child_pids();
    out.setup
        .insert("control_plane_s".into(), started.elapsed().as_secs_f64());
    let t = Instant::now();
    let mut config = sim_config(n, s.latency);
    if let Some(cycles) = s.soak {
        soak::provision_tokens(&mut config.fixture, cycles);
    }
    let sim = sim::start(config).await?;
    out.setup.insert("simulator_s".into(), t.elapsed().as_secs_f64());
    let client = cp.admin_client().await?;
    let ns = cp.namespace("bench").await?;
    create_ingress(&client, &ns).await?;

    let t = Instant::now();
    let results: Vec<Result<(), kube::Error>> = futures::stream::iter(0..n)
        .map(|i| {
            let (client, ns) = (client.clone(), ns.clone());
            let shards = s.shards;
            async move { create_shop(&client, &ns, i, shards).await }
        })
        .buffer_unordered(s.setup_concurrency)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    let setup = t.elapsed().as_secs_f64();
    out.setup.insert("objects".into(), (2 * n) as f64);
    out.setup.insert("concurrency".into(), s.setup_concurrency as f64);
    out.setup.insert("create_secrets_and_shops_s".into(), setup);
    out.setup
        .insert("objects_per_s".into(), (2 * n) as f64 / setup.max(1e-9));
    eprintln!("   set-up: {} objects in {setup:.1} s", 2 * n);

    let tracker = track(client.clone(), &ns);
    // Let the watch list the shops before the operator starts.
    while tracker.lock().expect("tracker").shops.len() < n {
        tokio::time::sleep(POLL).await;
    }

    // ----- cold start
    let kubeconfig = cp.write_user_kubeconfig(USER, &["system:masters"])?;
    let bin = env!("CARGO_BIN_EXE_shopify-operator");
    // A profiler around the operator (its RSS and CPU are then the wrapper's).
    let wrapper: Vec<String> = std::env::var("BENCH_OPERATOR_WRAPPER")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // One process per shard; one shard: no selector (every shop), as before.
    let commands: Vec<(String, PathBuf, std::process::Command)> = (0..s.shards)
        .map(|j| {
            let mut cmd = match wrapper.split_first() {
                Some((w, rest)) => {
                    let mut c = std::process::Command::new(w);
                    c.args(rest).arg(bin);
                    c
                }
                None => std::process::Command::new(bin),
            };
            cmd.arg("run")
                .env("KUBECONFIG", &kubeconfig)
                .env("SHOPIFY_BASE_URL", sim.base_url())
                .env("WATCH_NAMESPACE", &ns)
                .env("RESYNC_INTERVAL", humantime::format_duration(resync).to_string())
                .env("HTTP_ADDR", "127.0.0.1:0")
                .env("RUST_LOG", "info")
                .env("LOG_FORMAT", "text");
            // Measure what ships: the Dockerfile and the chart set 1 arena.
            if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                cmd.env("MALLOC_ARENA_MAX", "1");
            }
            if s.shards == 1 {
                return (String::new(), cp.dir.join("operator.log"), cmd);
            }
            let selector = shard_selector(j);
            let name = if j == 0 {
                "unlabelled".to_string()
            } else {
                shard_label(j)
            };
            // Its own Lease, should LEADER_ELECT be set in the environment.
            cmd.env("WATCH_LABEL_SELECTOR", &selector)
                .env("LEASE_NAME", format!("shopify-operator-{name}"));
            (selector, cp.dir.join(format!("operator-{name}.log")), cmd)
        })
        .collect();
    sim.reset_counters();
    let cold_writes = audit_writes(&cp.dir, USER).len();
    let cold_cpu_bench = proc_stat(std::process::id()).map_or(0.0, |p| p.1);
    let pre_apiserver = pids
        .get("kube-apiserver")
        .and_then(|p| proc_stat(*p))
        .map_or(0.0, |p| p.1);
    let pre_etcd = pids.get("etcd").and_then(|p| proc_stat(*p)).map_or(0.0, |p| p.1);
    let t0 = Instant::now();
    let mut started = Vec::new();
    for (selector, log, mut cmd) in commands {
        let process = testenv::spawn_supervised("shopify-operator", &mut cmd, &log)?;
        started.push((selector, log, process));
    }
    let mut operators = Vec::new();
    for (selector, log, process) in started {
        let metrics_url = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find(|l| l.contains("serving /healthz"))
                // The address is the first word after `addr=`: other fields
                // (`oauth=…`) follow it on the line.
                .and_then(|l| l.split("addr=").nth(1)?.split_whitespace().next())
            {
                break format!("http://{addr}/metrics");
            }
            if t0.elapsed() > Duration::from_secs(60) {
                return Err(format!("operator [{selector}] did not start:\n{text}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        operators.push(Operator {
            process,
            selector,
            metrics_url,
            peak_rss: 0.0,
        });
    }
    let shards = operators.len();
    let mut w = World {
        n,
        cp,
        sim,
        client,
        ns,
        operators,
        http: reqwest::Client::new(),
        tracker,
        pids,
        peak_rss: 0.0,
        profiling_apiserver: None,
    };
    let mark = Mark {
        at: t0,
        writes: cold_writes,
        cpu: HashMap::from([
            ("operator", 0.0),
            ("apiserver", pre_apiserver),
            ("etcd", pre_etcd),
            ("bench", cold_cpu_bench),
        ]),
        op_cpu: vec![0.0; shards],
        status_writes: 0.0,
        reconcile_count: 0.0,
        reconcile_sum: 0.0,
        op_reconciles: vec![0.0; shards],
    };
    let (times, ok) = w.wait_ready(OLD_HOST, t0, deadline(n)).await;
    let wall = times.iter().copied().fold(0.0, f64::max);
    out.cold_start_to_first_ready_s = times.iter().copied().fold(f64::INFINITY, f64::min);
    out.cold_start_ready_curve = curve(times, 1, 200);
    let wall = if ok {
        Duration::from_secs_f64(wall)
    } else {
        t0.elapsed()
    };
    w.sleep_sampling(SETTLE).await;
    out.cold_start = w.finish(&mark, wall, ok).await;
    eprintln!(
        "   cold start: {:.2} s, {:.2} requests/shop, {} mutations",
        out.cold_start.wall_s, out.cold_start.requests_per_shop, out.cold_start.mutations
    );
    if !ok {
        w.stop_operator();
        return Ok(out);
    }
    // The cold-start reconciles requeue at +resync; the host change comes
    // well before that and re-arms each shop's resync timer.
    w.sleep_sampling(Duration::from_secs(1)).await;

    // ----- host change
    let mark = w.mark().await;
    let ingresses: Api<Ingress> = Api::namespaced(w.client.clone(), &w.ns);
    let patch = json!({"spec": {"rules": [{"host": NEW_HOST}]}});
    let t0 = Instant::now();
    ingresses
        .patch("oms", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let (ready, ok) = w.wait_ready(NEW_HOST, t0, deadline(n)).await;
    let to_ready = ready.iter().copied().fold(0.0, f64::max);
    let counters = w.sim.all_counters();
    let mutated: Vec<f64> = counters
        .values()
        .filter_map(|c| c.last_mutation_at)
        .map(|at| at.saturating_duration_since(t0).as_secs_f64())
        .collect();
    out.host_change_to_first_mutation_s = mutated.iter().copied().fold(f64::INFINITY, f64::min);
    out.host_change_to_last_mutation_s = mutated.iter().copied().fold(0.0, f64::max);
    out.host_change_to_last_ready_s = to_ready;
    out.repoint_curve = curve(mutated, TOPICS.len(), 200);
    out.ready_curve = curve(ready, 1, 200);
    let wall = if ok {
        Duration::from_secs_f64(to_ready)
    } else {
        t0.elapsed()
    };
    w.sleep_sampling(SETTLE).await;
    out.subscriptions_repointed = (0..n)
        .map(|i| {
            w.sim
                .subscriptions(&domain(i))
                .iter()
                .filter(|s| s.address.starts_with(&format!("https://{NEW_HOST}/")))
                .count()
        })
        .sum();
    out.host_change = w
        .finish(&mark, wall, ok && out.subscriptions_repointed == n * TOPICS.len())
        .await;
    eprintln!(
        "   host change: last mutation {:.2} s, last Ready {:.2} s, {:.2} requests/shop, {} writes",
        out.host_change_to_last_mutation_s,
        out.host_change_to_last_ready_s,
        out.host_change.requests_per_shop,
        out.host_change.apiserver_writes
    );
    if !ok {
        w.stop_operator();
        return Ok(out);
    }
    // The Events the floor replays: the host change's, before later phases
    // publish others.
    let events = floor::operator_events(&w.client, &w.ns).await;
    if !s.quick {
        steady_and_idle(&mut w, &mut out, resync).await;
    }
    if let Some(cycles) = s.soak {
        out.soak = Some(soak::run(&mut w, cycles, resync).await);
    }
    if let Some(m) = out.machine.as_mut() {
        m.loadavg_after = loadavg();
    }
    w.stop_operator();
    out.floor = Some(floor::run(&w, &out, &events).await);
    eprint!("{}", floor::rows(&out));
    control_plane_cost(&mut w, &mut out, s).await;
    w.sim.shutdown().await;
    // The bench's own kube-apiserver (if any) before testenv's etcd.
    w.profiling_apiserver.take();
    w.cp.stop();
    if s.baseline {
        run_baseline(&mut out, s.latency).await;
    }
    Ok(out)
}

/// The old way's host change for the same N, after everything of the
/// operator's run has stopped, compared with the operator's host change.
async fn run_baseline(out: &mut Run, latency: Duration) {
    eprintln!(
        "== {} shops: baseline (shopify_api Registry, {} workers) on a fresh simulator",
        out.shops,
        baseline::WORKERS
    );
    let mut b = baseline::run(out.shops, latency).await;
    b.compare(out);
    eprintln!(
        "   baseline: last mutation {:.2} s ({:.1}× ours), {:.2} requests/shop, {} throttled retries, \
         {}/{} HTTPS subscriptions at the new host",
        b.wall_s,
        b.wall_ratio,
        b.requests_per_shop,
        b.throttled_retries,
        b.subscriptions_repointed,
        b.https_subscriptions
    );
    if let Some(e) = &b.error {
        eprintln!("   baseline failed: {e}");
    }
    out.baseline = Some(b);
}

async fn steady_and_idle(w: &mut World, out: &mut Run, resync: Duration) {
    let n = w.n;
    // ----- steady: three resyncs of every shop
    let mark = w.mark().await;
    let steady_deadline = resync * 3 + deadline(n);
    let mut ok = false;
    let mut last_check = Instant::now() - Duration::from_secs(1);
    while mark.at.elapsed() < steady_deadline {
        w.sample();
        if last_check.elapsed() >= Duration::from_millis(250) {
            last_check = Instant::now();
            let counters = w.sim.all_counters();
            let min_lists = (0..n)
                .map(|i| {
                    counters
                        .get(&domain(i))
                        .map_or(0, |c| c.operation("webhookSubscriptions"))
                })
                .min()
                .unwrap_or(0);
            if min_lists >= 3 {
                ok = true;
                break;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let wall = mark.at.elapsed();
    out.steady = w.finish(&mark, wall, ok).await;
    out.steady_resyncs = 3;
    eprintln!(
        "   steady: {:.1} s, {} mutations, {} writes",
        out.steady.wall_s, out.steady.mutations, out.steady.apiserver_writes
    );

    // ----- idle: between two resync waves. Late shops of a wave may still
    // list in the window, so CPU is also summed over the half-seconds in
    // which the simulator saw no request at all.
    let idle = (resync / 2).min(Duration::from_secs(10));
    w.sleep_sampling(Duration::from_millis(500)).await;
    let mark = w.mark().await;
    let (mut quiet_cpu, mut quiet_s) = (0.0, 0.0);
    let requests = |w: &World| -> u64 { w.sim.all_counters().values().map(|c| c.requests).sum() };
    let mut prev = (w.cpu()["operator"], requests(w), Instant::now());
    while mark.at.elapsed() < idle {
        w.sleep_sampling(Duration::from_millis(500)).await;
        let now = (w.cpu()["operator"], requests(w), Instant::now());
        if now.1 == prev.1 {
            quiet_cpu += now.0 - prev.0;
            quiet_s += (now.2 - prev.2).as_secs_f64();
        }
        prev = now;
    }
    out.idle = w.finish(&mark, mark.at.elapsed(), true).await;
    out.idle_quiet_s = quiet_s;
    out.idle_cpu_percent = 100.0 * quiet_cpu / quiet_s.max(1e-9);
    eprintln!(
        "   idle: {:.2}% CPU over {:.1} s without Shopify requests ({} requests in the {:.0} s window)",
        out.idle_cpu_percent,
        quiet_s,
        out.idle.shopify_requests,
        idle.as_secs_f64()
    );
}

// ------------------------------------------------------- apiserver cost

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct OpCost {
    requests: usize,
    apiserver_cpu_ms: f64,
    etcd_cpu_ms: f64,
    wall_ms: f64,
}

const GET_SECRET: &str = "get secret";
/// Not per reconcile any more: the operator reads the Ingress from its
/// watch cache (measured for comparison with older runs, whose key was
/// `get ingress`).
const GET_INGRESS: &str = "get ingress (not per reconcile: read from the watch cache)";
const CREATE_EVENT: &str = "create event";
/// The sharded pass's check that the shop is still its shard's
/// (`still_ours`): before the Shopify mutation and before the status write.
const SHARD_CHECK: &str = "list shopifyshops by name + shard selector (sharded: 2 per change)";
const STATUS_APPLY: &str = "apply shopifyshops/status (server-side apply)";
const STATUS_MERGE: &str = "merge-patch shopifyshops/status";

/// The control plane's CPU for one shop's host change: the sum over the
/// requests its pass makes (GET Secret, the Event, the status apply, and
/// with shards the two shard checks; not GET Ingress).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct ShopChangeCost {
    /// (request kind, count per change) summed.
    requests: Vec<(String, u32)>,
    apiserver_cpu_ms: f64,
    etcd_cpu_ms: f64,
    /// The host change phase's measured apiserver (and etcd) CPU per shop,
    /// for comparison (it also serves the watches and the list of the shops).
    host_change_apiserver_cpu_ms_per_shop: f64,
    host_change_etcd_cpu_ms_per_shop: f64,
}

fn shop_change_cost(r: &Run) -> Option<ShopChangeCost> {
    let mut requests = vec![
        (GET_SECRET.to_string(), 1),
        (CREATE_EVENT.to_string(), 1),
        (STATUS_APPLY.to_string(), 1),
    ];
    if r.shards > 1 {
        requests.push((SHARD_CHECK.to_string(), 2));
    }
    let mut c = ShopChangeCost::default();
    for (op, k) in &requests {
        let cost = r.apiserver_cost.get(op)?;
        c.apiserver_cpu_ms += cost.apiserver_cpu_ms * *k as f64;
        c.etcd_cpu_ms += cost.etcd_cpu_ms * *k as f64;
    }
    c.requests = requests;
    let n = r.shops.max(1) as f64;
    c.host_change_apiserver_cpu_ms_per_shop = 1000.0 * r.host_change.apiserver_cpu_s / n;
    c.host_change_etcd_cpu_ms_per_shop = 1000.0 * r.host_change.etcd_cpu_s / n;
    Some(c)
}

/// A kube-apiserver CPU profile taken while status writes of one kind ran
/// for the whole window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct ApiserverProfile {
    /// The request kind that ran (`STATUS_APPLY` or `STATUS_MERGE`).
    request: String,
    /// Where the profile was saved (and the copy of this N and shard count).
    file: String,
    copy: String,
    seconds: u64,
    bytes: usize,
    writes: u64,
    writes_per_s: f64,
    apiserver_cpu_s: f64,
    etcd_cpu_s: f64,
    /// kube-apiserver (etcd) CPU seconds per 1,000 writes in the window.
    apiserver_cpu_s_per_1000_writes: f64,
    etcd_cpu_s_per_1000_writes: f64,
    /// `go tool pprof -top -nodecount=25`: header lines, then the nodes by
    /// flat time; and the same with `-cum` (by cumulative time).
    summary: Vec<String>,
    top: Vec<TopLine>,
    top_cum: Vec<TopLine>,
    /// Where the CPU went, by stage of a write: (stage, cumulative % of the
    /// profile's samples), from `-top -cum` over every node (see
    /// `BREAKDOWN`; stages nest, so they do not add up).
    breakdown: Vec<(String, f64)>,
    error: Option<String>,
}

/// Stages of a status write in kube-apiserver, each the largest cumulative
/// share among the profile's functions whose name contains the pattern.
const BREAKDOWN: [(&str, &str); 13] = [
    ("GC, background marking", "runtime.gcBgMarkWorker"),
    ("GC, assists by allocating requests", "runtime.gcAssistAlloc"),
    ("patch applied to the stored object", "applyPatchToCurrentObject"),
    (
        "  apply body parsed as YAML (apply-patch+yaml)",
        "sigs.k8s.io/yaml.unmarshal",
    ),
    (
        "managedFields (FieldManager)",
        "managedfields/internal.(*FieldManager).",
    ),
    (
        "validation (OpenAPI schema + CEL)",
        "k8s.io/apiserver/pkg/registry/rest.ValidateUpdate",
    ),
    ("  CEL rules", "schema/cel.(*Validator).Validate"),
    ("decoding objects from etcd bytes", "storage/etcd3.decodeObj"),
    (
        "watch: etcd events decoded for the watch cache",
        "etcd3.(*watchChan).transform",
    ),
    ("JSON encoding (etcd value, response)", "encoding/json.Marshal"),
    (
        "response written (negotiated encoder, TLS)",
        "responsewriters.WriteObjectNegotiated",
    ),
    (
        "audit log (blocking mode, testenv's)",
        "DefaultBuildHandlerChain.WithAudit.func",
    ),
    (
        "CRD schema coercion (unstructured)",
        "(*unstructuredSchemaCoercer).apply",
    ),
];

/// One line of `go tool pprof -top`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct TopLine {
    flat_pct: f64,
    sum_pct: f64,
    cum_pct: f64,
    function: String,
}

/// The operator's requests, sent as the admin (the operator is stopped).
struct Probe {
    secrets: Api<Secret>,
    ingresses: Api<Ingress>,
    events: Api<k8s_openapi::api::events::v1::Event>,
    shops: Api<ShopifyShop>,
    ns: String,
    shards: usize,
    /// The first shops' statuses: requests cycle over these shops.
    statuses: Vec<shopify_operator::crd::ShopifyShopStatus>,
}

impl Probe {
    async fn new(client: &Client, ns: &str, k: usize, n: usize, shards: usize) -> Result<Probe, kube::Error> {
        let shops: Api<ShopifyShop> = Api::namespaced(client.clone(), ns);
        let mut statuses = Vec::new();
        for i in 0..k.min(n).max(1) {
            let shop = shops.get(&format!("shop-{i:05}")).await?;
            statuses.push(shop.status.unwrap_or_default());
        }
        Ok(Probe {
            secrets: Api::namespaced(client.clone(), ns),
            ingresses: Api::namespaced(client.clone(), ns),
            events: Api::namespaced(client.clone(), ns),
            shops,
            ns: ns.to_string(),
            shards,
            statuses,
        })
    }

    /// The `i`-th request of kind `op`; every status write is a change.
    async fn send(&self, op: &str, i: usize) -> Result<(), kube::Error> {
        let shop = i % self.statuses.len();
        let name = format!("shop-{shop:05}");
        match op {
            GET_SECRET => self.secrets.get(&format!("{name}-token")).await.map(|_| ()),
            GET_INGRESS => self.ingresses.get("oms").await.map(|_| ()),
            CREATE_EVENT => {
                let e = serde_json::from_value(json!({
                    "metadata": {"generateName": format!("{name}-probe-")},
                    "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "reportingController": "shopify-operator",
                    "reportingInstance": "bench",
                    "action": "ApplyWebhooks",
                    "reason": "SubscriptionsUpdated",
                    "type": "Normal",
                    "note": "8 updated: orders/create, orders/updated, orders/cancelled, …",
                    "regarding": {"apiVersion": "shopify-operator.dev/v1alpha1",
                        "kind": "ShopifyShop", "name": name, "namespace": self.ns},
                }))
                .expect("event");
                self.events.create(&PostParams::default(), &e).await.map(|_| ())
            }
            SHARD_CHECK => {
                // As the operator's `still_ours`: the shop by name, with the
                // selector of its shard (with one shard, the unlabelled one's).
                let params = kube::api::ListParams::default()
                    .labels(&shard_selector(shard_of(shop, self.shards)))
                    .fields(&format!("metadata.name={name}"));
                self.shops.list_metadata(&params).await.map(|_| ())
            }
            STATUS_APPLY => {
                let mut status = self.statuses[shop].clone();
                status.webhook_host = Some(format!("apply-{i}.popsockets.com"));
                let patch = json!({
                    "apiVersion": "shopify-operator.dev/v1alpha1",
                    "kind": "ShopifyShop",
                    "status": status,
                });
                let pp = PatchParams::apply("shopify-operator").force();
                self.shops
                    .patch_status(&name, &pp, &Patch::Apply(&patch))
                    .await
                    .map(|_| ())
            }
            STATUS_MERGE => {
                let patch = json!({"status": {"webhookHost": format!("merge-{i}.popsockets.com")}});
                self.shops
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
            other => unreachable!("unknown probe request {other}"),
        }
    }
}

/// `k` requests of kind `op`, 16 at a time, with the apiserver's and etcd's
/// CPU per request.
async fn measure(w: &World, probe: &Probe, op: &str, k: usize) -> Result<OpCost, kube::Error> {
    let (a0, e0, t0) = (proc_cpu(w, "kube-apiserver"), proc_cpu(w, "etcd"), Instant::now());
    let results: Vec<Result<(), kube::Error>> = futures::stream::iter(0..k)
        .map(|i| probe.send(op, i))
        .buffer_unordered(PROBE_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(OpCost {
        requests: k,
        apiserver_cpu_ms: 1000.0 * (proc_cpu(w, "kube-apiserver") - a0) / k as f64,
        etcd_cpu_ms: 1000.0 * (proc_cpu(w, "etcd") - e0) / k as f64,
        wall_ms: 1000.0 * t0.elapsed().as_secs_f64() / k as f64,
    })
}

/// Requests at a time in the probes (the operator runs 64 reconciles, most
/// of them waiting on Shopify).
const PROBE_CONCURRENCY: usize = 16;

fn proc_cpu(w: &World, name: &str) -> f64 {
    w.pids.get(name).and_then(|p| proc_stat(*p)).map_or(0.0, |p| p.1)
}

/// The control-plane cost phase (the operator stopped): kube-apiserver
/// restarted with profiling if it is off, `k` requests of each kind, then a
/// CPU profile while each kind of status write runs.
async fn control_plane_cost(w: &mut World, out: &mut Run, s: &Settings) {
    const K: usize = 300;
    // On the apiserver that served the phases.
    let probe = match Probe::new(&w.client, &w.ns, K, w.n, s.shards).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("   apiserver cost probe failed: {e}");
            return;
        }
    };
    for op in [
        GET_SECRET,
        GET_INGRESS,
        CREATE_EVENT,
        SHARD_CHECK,
        STATUS_APPLY,
        STATUS_MERGE,
    ] {
        match measure(w, &probe, op, K).await {
            Ok(c) => out.apiserver_cost.insert(op.to_string(), c),
            Err(e) => {
                eprintln!("   apiserver cost probe failed ({op}): {e}");
                return;
            }
        };
    }
    out.cost_per_shop_change = shop_change_cost(out);
    if s.pprof_seconds == 0 {
        return;
    }
    match enable_profiling(w).await {
        Ok(restarted) => out.apiserver_restarted_for_profiling = restarted,
        Err(e) => {
            eprintln!("   kube-apiserver profiling unavailable: {e}");
            return;
        }
    }
    let probe = match Probe::new(&w.client, &w.ns, K, w.n, s.shards).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("   apiserver cost probe failed after the restart: {e}");
            return;
        }
    };
    // The same requests on the restarted apiserver, to tell what the
    // restart changes (its caches are new).
    if out.apiserver_restarted_for_profiling {
        for op in [GET_SECRET, SHARD_CHECK, STATUS_APPLY, STATUS_MERGE] {
            if let Ok(c) = measure(w, &probe, op, K).await {
                out.apiserver_cost_after_restart.insert(op.to_string(), c);
            }
        }
    }
    for (kind, op) in [("apply", STATUS_APPLY), ("merge", STATUS_MERGE)] {
        let p = profile_window(w, &probe, op, kind, s, out).await;
        eprintln!(
            "   apiserver profile during {op}: {} writes in {} s, {:.2} s apiserver CPU per 1,000 writes{}",
            p.writes,
            p.seconds,
            p.apiserver_cpu_s_per_1000_writes,
            p.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        );
        out.apiserver_profiles.insert(kind.to_string(), p);
    }
}

/// Makes `/debug/pprof` available: if kube-apiserver answers 404 there
/// (testenv runs it with `--profiling=false`), stops it and starts it again
/// from its own command line with `--profiling=true` (same port, certificates
/// and etcd), waits until it is ready and quiet, and points the bench at it.
/// Whether it was restarted.
async fn enable_profiling(w: &mut World) -> Result<bool, String> {
    let probe = http::Request::get("/debug/pprof/")
        .body(Vec::new())
        .expect("request");
    if w.client.request_text(probe).await.is_ok() {
        return Ok(false);
    }
    let pid = *w.pids.get("kube-apiserver").ok_or("no kube-apiserver process")?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).map_err(|e| e.to_string())?;
    let mut args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if args.is_empty() {
        return Err("empty kube-apiserver command line".into());
    }
    let exe = args.remove(0);
    args.retain(|a| !a.starts_with("--profiling"));
    args.push("--profiling=true".into());
    let events_before = w.tracker.lock().expect("tracker").events;
    testenv::send_sigterm(pid);
    let t = Instant::now();
    let mut killed = false;
    // Gone, or a zombie testenv reaps when it stops. Its graceful shutdown
    // can wait on open connections for a minute: SIGKILL after 10 s (etcd
    // holds the state).
    while proc_stat(pid).is_some() && proc_state(pid) != Some('Z') {
        if !killed && t.elapsed() > Duration::from_secs(10) {
            killed = true;
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        if t.elapsed() > Duration::from_secs(30) {
            return Err("kube-apiserver did not stop within 30 s (SIGTERM, then SIGKILL)".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stop_s = t.elapsed().as_secs_f64();
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(&args);
    let log = w.cp.dir.join("kube-apiserver-profiling.log");
    let mut process =
        testenv::spawn_supervised("kube-apiserver", &mut cmd, &log).map_err(|e| e.to_string())?;
    w.pids.insert("kube-apiserver".into(), process.pid());
    let client = w.cp.admin_client().await.map_err(|e| e.to_string())?;
    let t = Instant::now();
    loop {
        if let Some(status) = process.exited() {
            return Err(format!(
                "restarted kube-apiserver exited: {status}\n{}",
                process.log_tail(20)
            ));
        }
        let req = http::Request::get("/readyz").body(Vec::new()).expect("request");
        if client.request_text(req).await.is_ok_and(|b| b.trim() == "ok") {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            return Err("restarted kube-apiserver not ready within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.profiling_apiserver = Some(process);
    w.client = client;
    let ready_s = t.elapsed().as_secs_f64();
    // The bench's own watch of the shops lists them again, after its
    // backoff (seconds): wait for that relist, then until the apiserver is
    // quiet (under 5 % of a core for 2 seconds in a row).
    let t = Instant::now();
    let relisted = loop {
        if w.tracker.lock().expect("tracker").events >= events_before + w.n {
            break true;
        }
        // No relist (the watch resumed where it was): nothing to wait for.
        if t.elapsed() > Duration::from_secs(15) {
            break false;
        }
        tokio::time::sleep(POLL).await;
    };
    let relist_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut quiet = 0;
    while quiet < 2 && t.elapsed() < Duration::from_secs(60) {
        let a0 = proc_cpu(w, "kube-apiserver");
        tokio::time::sleep(Duration::from_secs(1)).await;
        quiet = if proc_cpu(w, "kube-apiserver") - a0 < 0.05 {
            quiet + 1
        } else {
            0
        };
    }
    eprintln!(
        "   kube-apiserver restarted with --profiling=true (testenv runs it with --profiling=false): \
         stopped in {stop_s:.1} s{}, ready in {ready_s:.1} s, the bench's watch relisted {} after {relist_s:.1} s, \
         quiet after {:.1} s more",
        if killed { " (SIGKILL)" } else { "" },
        if relisted { "the shops" } else { "nothing in 15 s" },
        t.elapsed().as_secs_f64()
    );
    Ok(true)
}

/// The state letter of /proc/PID/stat (`R`, `S`, `Z`, …).
fn proc_state(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 2..].chars().next()
}

/// Status writes of kind `op`, 16 at a time, for the whole window of a
/// kube-apiserver CPU profile of `s.pprof_seconds`; the profile saved as
/// `apiserver-status-{kind}.pprof` and summarised with `go tool pprof`.
async fn profile_window(
    w: &World,
    probe: &Probe,
    op: &str,
    kind: &str,
    s: &Settings,
    run: &Run,
) -> ApiserverProfile {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let seconds = s.pprof_seconds;
    let mut p = ApiserverProfile {
        request: op.to_string(),
        seconds,
        ..Default::default()
    };
    let stop = AtomicBool::new(false);
    // Numbered past the 300-request probe, so every write is a change.
    let next = AtomicUsize::new(1_000_000);
    let (a0, e0, t0) = (proc_cpu(w, "kube-apiserver"), proc_cpu(w, "etcd"), Instant::now());
    let profile = async {
        let req = http::Request::get(format!("/debug/pprof/profile?seconds={seconds}"))
            .body(Vec::new())
            .expect("request");
        let result = async {
            let mut body = w.client.request_stream(req).await?;
            let mut bytes = Vec::new();
            futures::AsyncReadExt::read_to_end(&mut body, &mut bytes)
                .await
                .map_err(kube::Error::ReadEvents)?;
            Ok::<_, kube::Error>(bytes)
        }
        .await;
        stop.store(true, Ordering::Relaxed);
        result
    };
    let writers = futures::future::join_all((0..PROBE_CONCURRENCY).map(|_| async {
        let mut done = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            match probe.send(op, i).await {
                Ok(()) => done += 1,
                Err(e) => return (done, Some(e.to_string())),
            }
        }
        (done, None)
    }));
    let (profile, writers) = tokio::join!(profile, writers);
    let wall = t0.elapsed().as_secs_f64();
    p.apiserver_cpu_s = proc_cpu(w, "kube-apiserver") - a0;
    p.etcd_cpu_s = proc_cpu(w, "etcd") - e0;
    p.writes = writers.iter().map(|(d, _)| d).sum();
    p.writes_per_s = p.writes as f64 / wall.max(1e-9);
    p.apiserver_cpu_s_per_1000_writes = 1000.0 * p.apiserver_cpu_s / (p.writes.max(1) as f64);
    p.etcd_cpu_s_per_1000_writes = 1000.0 * p.etcd_cpu_s / (p.writes.max(1) as f64);
    if let Some(e) = writers.iter().find_map(|(_, e)| e.clone()) {
        p.error = Some(format!("a write failed: {e}"));
    }
    let bytes = match profile {
        Ok(b) => b,
        Err(e) => {
            p.error = Some(format!("profile: {e}"));
            return p;
        }
    };
    p.bytes = bytes.len();
    let file = s.out.join(format!("apiserver-status-{kind}.pprof"));
    let copy = s.out.join(format!(
        "apiserver-status-{kind}-{}-shops-{}-shards.pprof",
        run.shops, run.shards
    ));
    for f in [&file, &copy] {
        if let Err(e) = std::fs::create_dir_all(&s.out).and_then(|()| std::fs::write(f, &bytes)) {
            p.error = Some(format!("writing {}: {e}", f.display()));
            return p;
        }
    }
    p.file = file.display().to_string();
    p.copy = copy.display().to_string();
    match go_pprof_top(&copy, false, 25) {
        Ok((summary, top)) => {
            p.summary = summary;
            p.top = top;
        }
        Err(e) => p.error = Some(e),
    }
    if let Ok((_, top)) = go_pprof_top(&copy, true, 25) {
        p.top_cum = top;
    }
    if let Ok((_, all)) = go_pprof_top(&copy, true, 100_000) {
        p.breakdown = BREAKDOWN
            .iter()
            .map(|(stage, pattern)| {
                let pct = all
                    .iter()
                    .filter(|t| t.function.contains(pattern))
                    .map(|t| t.cum_pct)
                    .fold(0.0, f64::max);
                (stage.to_string(), pct)
            })
            .collect();
    }
    p
}

/// `go tool pprof -top -nodecount=N [-cum] FILE`: the header lines and the
/// nodes. An error if `go` is not on PATH or the output has no table.
fn go_pprof_top(file: &Path, cum: bool, nodes: usize) -> Result<(Vec<String>, Vec<TopLine>), String> {
    let mut cmd = std::process::Command::new("go");
    cmd.args(["tool", "pprof", "-top", &format!("-nodecount={nodes}")]);
    if cum {
        cmd.arg("-cum");
    }
    let output = cmd
        .arg(file)
        .output()
        .map_err(|e| format!("go tool pprof: {e} (is go on PATH?)"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut summary = Vec::new();
    let mut top = Vec::new();
    let mut in_table = false;
    let pct = |v: &str| v.trim_end_matches('%').parse::<f64>().ok();
    for line in text.lines() {
        if !in_table {
            if line.split_whitespace().next() == Some("flat") {
                in_table = true;
            } else if !line.trim().is_empty() {
                summary.push(line.trim().to_string());
            }
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        if let (Some(flat_pct), Some(sum_pct), Some(cum_pct)) = (pct(f[1]), pct(f[2]), pct(f[4])) {
            top.push(TopLine {
                flat_pct,
                sum_pct,
                cum_pct,
                function: f[5..].join(" "),
            });
        }
    }
    if top.is_empty() {
        return Err(format!(
            "go tool pprof printed no table: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok((summary, top))
}

// --------------------------------------------------------------- output

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Report {
    command: String,
    simulator: BTreeMap<String, String>,
    targets: BTreeMap<String, String>,
    runs: Vec<Run>,
}

fn table(runs: &[Run]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:>6} {:>6} {:<12} {:>8} {:>9} {:>10} {:>9} {:>7} {:>9} {:>8} {:>8}\n",
        "shops",
        "shards",
        "phase",
        "wall s",
        "req/shop",
        "mutations",
        "k8s wr",
        "RSS MiB",
        "op CPU s",
        "api CPU",
        "etcd CPU"
    ));
    for r in runs {
        for (name, p) in [
            ("cold start", &r.cold_start),
            ("host change", &r.host_change),
            ("3 resyncs", &r.steady),
            ("idle", &r.idle),
        ] {
            // Not run (BENCH_QUICK, or an earlier phase failed).
            if !p.completed && p.wall_s == 0.0 {
                continue;
            }
            s.push_str(&format!(
                "{:>6} {:>6} {:<12} {:>8.2} {:>9.2} {:>10} {:>9} {:>7.1} {:>9.2} {:>8.2} {:>8.2}{}\n",
                r.shops,
                r.shards,
                name,
                p.wall_s,
                p.requests_per_shop,
                p.mutations,
                p.apiserver_writes,
                p.operator_peak_rss_mib,
                p.operator_cpu_s,
                p.apiserver_cpu_s,
                p.etcd_cpu_s,
                if p.completed { "" } else { "  INCOMPLETE" }
            ));
        }
        s.push_str(&format!(
            "{:>6} host change: first mutation {:.2} s, last mutation {:.2} s, last Ready {:.2} s; \
             {}/{} subscriptions repointed; VmHWM {:.1} MiB; idle CPU {:.2}%\n",
            r.shops,
            r.host_change_to_first_mutation_s,
            r.host_change_to_last_mutation_s,
            r.host_change_to_last_ready_s,
            r.subscriptions_repointed,
            r.shops * r.topics_per_shop,
            peak_mib(r),
            r.idle_cpu_percent,
        ));
        let setup = |k: &str| r.setup.get(k).copied().unwrap_or(f64::NAN);
        s.push_str(&format!(
            "{:>6} set-up (not in the phases): {:.0} Secrets + ShopifyShops created in {:.1} s \
             ({:.0} objects/s, {:.0} at a time); control plane started in {:.1} s\n",
            r.shops,
            setup("objects"),
            setup("create_secrets_and_shops_s"),
            setup("objects_per_s"),
            setup("concurrency"),
            setup("control_plane_s"),
        ));
        if r.shards > 1 {
            s.push_str(&per_process(r));
        }
        s.push_str(&floor::rows(r));
        s.push_str(&soak::rows(r));
        s.push_str(&costs(r));
        s.push_str(&baseline::rows(r));
    }
    s
}

/// With shards: each operator process's peak RSS, VmHWM and CPU per phase,
/// and the sums.
fn per_process(r: &Run) -> String {
    let mut s = String::new();
    for (name, p) in [
        ("cold start", &r.cold_start),
        ("host change", &r.host_change),
        ("3 resyncs", &r.steady),
        ("idle", &r.idle),
    ] {
        if p.operators.is_empty() {
            continue;
        }
        let each: Vec<String> = p
            .operators
            .iter()
            .map(|o| {
                format!(
                    "[{}] RSS {:.1} MiB (HWM {:.1}), CPU {:.2} s, {:.0} reconciles",
                    o.selector, o.peak_rss_mib, o.vmhwm_mib, o.cpu_s, o.reconciles
                )
            })
            .collect();
        s.push_str(&format!(
            "{:>6} {:>6} {name} per process: {}; sum: RSS {:.1} MiB (peak of the sum; HWMs {:.1}), CPU {:.2} s\n",
            r.shops,
            r.shards,
            each.join("; "),
            p.operator_peak_rss_mib,
            p.operator_vmhwm_mib,
            p.operator_cpu_s,
        ));
    }
    s
}

/// The control-plane cost lines: CPU per request, per shop change, per
/// 1,000 status writes, and the profiles' top functions.
fn costs(r: &Run) -> String {
    let mut s = String::new();
    if r.apiserver_cost.is_empty() {
        return s;
    }
    let n = r.shops;
    s.push_str(&format!(
        "{n:>6} control-plane CPU per request (apiserver + etcd ms, wall ms at {PROBE_CONCURRENCY} at a time):\n"
    ));
    for (op, c) in &r.apiserver_cost {
        s.push_str(&format!(
            "{n:>6}   {op:<68} {:>5.2} + {:>4.2} ms  ({:.2} ms)\n",
            c.apiserver_cpu_ms, c.etcd_cpu_ms, c.wall_ms
        ));
    }
    if r.apiserver_restarted_for_profiling {
        s.push_str(&format!(
            "{n:>6} kube-apiserver then restarted with --profiling=true for the profiles; on it:\n"
        ));
    }
    for (op, c) in &r.apiserver_cost_after_restart {
        s.push_str(&format!(
            "{n:>6}   {op:<68} {:>5.2} + {:>4.2} ms  ({:.2} ms)\n",
            c.apiserver_cpu_ms, c.etcd_cpu_ms, c.wall_ms
        ));
    }
    if let Some(c) = r.cost_per_shop_change.clone().or_else(|| shop_change_cost(r)) {
        let what: Vec<String> = c
            .requests
            .iter()
            .map(|(op, k)| {
                if *k == 1 {
                    op.clone()
                } else {
                    format!("{k} × {op}")
                }
            })
            .collect();
        s.push_str(&format!(
            "{n:>6} per shop change ({}): {:.2} + {:.2} ms (GET Ingress not counted: watch cache); \
             the host change phase measured {:.2} + {:.2} ms per shop\n",
            what.join(" + "),
            c.apiserver_cpu_ms,
            c.etcd_cpu_ms,
            c.host_change_apiserver_cpu_ms_per_shop,
            c.host_change_etcd_cpu_ms_per_shop
        ));
    }
    let per_1000 = |op: &str| r.apiserver_cost.get(op).map_or(f64::NAN, |c| c.apiserver_cpu_ms);
    s.push_str(&format!(
        "{n:>6} kube-apiserver CPU per 1,000 status writes: apply {:.2} s, merge patch {:.2} s ({K} writes each)",
        per_1000(STATUS_APPLY),
        per_1000(STATUS_MERGE),
        K = r.apiserver_cost.get(STATUS_APPLY).map_or(0, |c| c.requests),
    ));
    for kind in ["apply", "merge"] {
        if let Some(p) = r.apiserver_profiles.get(kind) {
            s.push_str(&format!(
                "; {kind} {:.2} s over {} writes in the {} s profile",
                p.apiserver_cpu_s_per_1000_writes, p.writes, p.seconds
            ));
        }
    }
    s.push('\n');
    for (kind, p) in &r.apiserver_profiles {
        s.push_str(&format!(
            "{n:>6} kube-apiserver profile, {} ({} writes, {:.0}/s, {:.2} s apiserver + {:.2} s etcd CPU in {} s){}{}:\n",
            p.request,
            p.writes,
            p.writes_per_s,
            p.apiserver_cpu_s,
            p.etcd_cpu_s,
            p.seconds,
            if p.copy.is_empty() { String::new() } else { format!(" {}", p.copy) },
            p.error.as_deref().map(|e| format!(" — {e}")).unwrap_or_default(),
        ));
        if let Some(total) = p.summary.iter().find(|l| l.starts_with("Duration")) {
            s.push_str(&format!("{n:>6}   {total}\n"));
        }
        let rows = p.top.len().min(12).max(p.breakdown.len());
        if rows > 0 {
            s.push_str(&format!(
                "{n:>6}   {:>6} {:>6}  {:<60} | {:>6}  {}\n",
                "flat%",
                "cum%",
                format!("top functions by own time ({kind})"),
                "cum%",
                "by stage (nested)"
            ));
        }
        for i in 0..rows {
            let (top, stage) = (p.top.get(i).filter(|_| i < 12), p.breakdown.get(i));
            s.push_str(&format!(
                "{n:>6}   {:>6} {:>6}  {:<60} | {:>6}  {}\n",
                top.map_or(String::new(), |t| format!("{:.1}%", t.flat_pct)),
                top.map_or(String::new(), |t| format!("{:.1}%", t.cum_pct)),
                top.map_or(String::new(), |t| short(&t.function, 60)),
                stage.map_or(String::new(), |b| format!("{:.1}%", b.1)),
                stage.map_or("", |b| b.0.as_str()),
            ));
        }
    }
    s
}

/// A Go function name cut to its last `max` characters.
fn short(f: &str, max: usize) -> String {
    let chars: Vec<char> = f.chars().collect();
    if chars.len() <= max {
        return f.to_string();
    }
    let tail: String = chars[chars.len() - (max - 1)..].iter().collect();
    format!("…{tail}")
}

/// The operator's peak RSS over the run (VmHWM at the end of the last phase
/// that ran; with shards, the processes' summed).
fn peak_mib(r: &Run) -> f64 {
    [&r.cold_start, &r.host_change, &r.steady, &r.idle]
        .iter()
        .map(|p| p.operator_vmhwm_mib)
        .fold(0.0, f64::max)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

const COLORS: [&str; 6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/// A line chart panel at (x, y) of size (w, h).
struct Panel {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    xmax: f64,
    ymax: f64,
    xlog: Option<(f64, f64)>,
    /// Legend in the lower right corner instead of the upper left.
    legend_low_right: bool,
}

impl Panel {
    fn px(&self, v: f64) -> f64 {
        let f = match self.xlog {
            Some((lo, hi)) => (v.max(lo).ln() - lo.ln()) / (hi.ln() - lo.ln()),
            None => v / self.xmax,
        };
        self.x + f * self.w
    }

    fn py(&self, v: f64) -> f64 {
        self.y + self.h - v / self.ymax * self.h
    }

    fn axes(
        &self,
        svg: &mut String,
        title: &str,
        xlabel: &str,
        ylabel: &str,
        xticks: &[f64],
        yticks: &[f64],
    ) {
        let (x, y, w, h) = (self.x, self.y, self.w, self.h);
        svg.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="14" font-weight="bold" text-anchor="middle">{}</text>"##,
            x + w / 2.0,
            y - 12.0,
            esc(title)
        ));
        svg.push_str(&format!(
            r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="none" stroke="#333"/>"##
        ));
        for &t in xticks {
            let px = self.px(t);
            svg.push_str(&format!(
                r##"<line x1="{px:.1}" y1="{y:.1}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
                y + h,
                y + h + 15.0,
                fmt_tick(t)
            ));
        }
        for &t in yticks {
            let py = self.py(t);
            svg.push_str(&format!(
                r##"<line x1="{x:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                x + w,
                x - 5.0,
                py + 4.0,
                fmt_tick(t)
            ));
        }
        svg.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"##,
            x + w / 2.0,
            y + h + 34.0,
            esc(xlabel)
        ));
        svg.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"##,
            x - 42.0,
            y + h / 2.0,
            x - 42.0,
            y + h / 2.0,
            esc(ylabel)
        ));
    }

    /// A cumulative count as steps: flat until each point, then up.
    fn steps(&self, svg: &mut String, pts: &[(f64, f64)], color: &str, dashed: bool) {
        let mut stepped = Vec::with_capacity(pts.len() * 2);
        let mut prev = 0.0;
        for &(t, k) in pts {
            stepped.push((t, prev));
            stepped.push((t, k));
            prev = k;
        }
        self.line(svg, &stepped, color, dashed, false);
    }

    fn line(&self, svg: &mut String, pts: &[(f64, f64)], color: &str, dashed: bool, markers: bool) {
        if pts.is_empty() {
            return;
        }
        let d: Vec<String> = pts
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", self.px(*a), self.py(*b)))
            .collect();
        svg.push_str(&format!(
            r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{}/>"##,
            d.join(" "),
            if dashed { r#" stroke-dasharray="6 4""# } else { "" }
        ));
        if markers {
            for (a, b) in pts {
                svg.push_str(&format!(
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"/>"##,
                    self.px(*a),
                    self.py(*b)
                ));
            }
        }
    }

    fn legend(&self, svg: &mut String, row: usize, text: &str, color: &str, dashed: bool) {
        let (x, y) = if self.legend_low_right {
            (
                self.x + self.w - 110.0,
                self.y + self.h - 14.0 - row as f64 * 16.0,
            )
        } else {
            (self.x + 10.0, self.y + 16.0 + row as f64 * 16.0)
        };
        svg.push_str(&format!(
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="16" fill="white" fill-opacity="0.85"/>"##,
            x - 4.0,
            y - 8.0,
            34.0 + 6.5 * text.chars().count() as f64
        ));
        svg.push_str(&format!(
            r##"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"{}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"##,
            x + 22.0,
            if dashed { r#" stroke-dasharray="6 4""# } else { "" },
            x + 28.0,
            y + 4.0,
            esc(text)
        ));
    }
}

fn fmt_tick(t: f64) -> String {
    if t >= 1000.0 && t % 1000.0 == 0.0 {
        format!("{}k", t / 1000.0)
    } else if t.fract() == 0.0 {
        format!("{t:.0}")
    } else {
        format!("{t}")
    }
}

fn nice_ticks(max: f64) -> (f64, Vec<f64>) {
    let raw = (max / 5.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let top = (max / step).ceil().max(1.0) * step;
    let ticks = (0..=((top / step).round() as usize))
        .map(|i| i as f64 * step)
        .collect();
    (top, ticks)
}

fn svg(runs: &[Run]) -> String {
    let mut s = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="1500" height="470" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"##,
    );
    // 1. Convergence after the Ingress change.
    let xmax = runs
        .iter()
        .map(|r| {
            r.host_change_to_last_ready_s
                .max(r.host_change_to_last_mutation_s)
        })
        .fold(1.0, f64::max);
    let (xtop, xt) = nice_ticks(xmax * 1.05);
    let p = Panel {
        x: 70.0,
        y: 50.0,
        w: 380.0,
        h: 340.0,
        xmax: xtop,
        ymax: 100.0,
        xlog: None,
        legend_low_right: true,
    };
    p.axes(
        &mut s,
        "Ingress host change: convergence",
        "seconds after the Ingress update",
        "% repointed (solid: Shopify, dashed: Ready)",
        &xt,
        &[0.0, 20.0, 40.0, 60.0, 80.0, 100.0],
    );
    for (i, r) in runs.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let subs = (r.shops * r.topics_per_shop).max(1) as f64;
        let pts: Vec<(f64, f64)> = r
            .repoint_curve
            .iter()
            .map(|(t, k)| (*t, 100.0 * *k as f64 / subs))
            .collect();
        p.steps(&mut s, &pts, c, false);
        let pts: Vec<(f64, f64)> = r
            .ready_curve
            .iter()
            .map(|(t, k)| (*t, 100.0 * *k as f64 / r.shops.max(1) as f64))
            .collect();
        p.steps(&mut s, &pts, c, true);
        let label = match r.shards {
            1 => format!("{} shops", r.shops),
            k => format!("{} shops, {k} shards", r.shops),
        };
        p.legend(&mut s, i, &label, c, false);
    }
    // 2. Scaling across N (lines through the 1-shard runs; sharded runs
    // are in the first panel and the table).
    let all = runs;
    let single: Vec<Run> = runs.iter().filter(|r| r.shards <= 1).cloned().collect();
    let runs: &[Run] = if single.is_empty() { all } else { &single };
    let lo = runs.iter().map(|r| r.shops).min().unwrap_or(10).max(1) as f64;
    let hi = runs.iter().map(|r| r.shops).max().unwrap_or(1000).max(10) as f64;
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    let ymax = runs
        .iter()
        .map(|r| r.cold_start.wall_s.max(r.host_change_to_last_ready_s))
        .fold(10.0, f64::max);
    let (ytop, yt) = nice_ticks(ymax * 1.1);
    let mut ns: Vec<f64> = runs.iter().map(|r| r.shops as f64).collect();
    ns.dedup();
    let p = Panel {
        x: 560.0,
        y: 50.0,
        w: 380.0,
        h: 340.0,
        xmax: hi,
        ymax: ytop,
        xlog: Some((lo, hi)),
        legend_low_right: false,
    };
    p.axes(
        &mut s,
        "Scaling across N",
        "shops (log scale)",
        "seconds",
        &ns,
        &yt,
    );
    type Series = (&'static str, fn(&Run) -> f64, bool);
    let series: [Series; 3] = [
        ("cold start → all Ready", |r| r.cold_start.wall_s, false),
        (
            "host change → last mutation",
            |r| r.host_change_to_last_mutation_s,
            false,
        ),
        (
            "host change → last Ready",
            |r| r.host_change_to_last_ready_s,
            true,
        ),
    ];
    for (i, (name, f, dashed)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = runs.iter().map(|r| (r.shops as f64, f(r))).collect();
        p.line(&mut s, &pts, COLORS[i], *dashed, true);
        p.legend(&mut s, i, name, COLORS[i], *dashed);
    }
    let target = [(lo, 3.0), (hi, 3.0)];
    p.line(&mut s, &target, "#999", true, false);
    p.legend(&mut s, 3, "target: 3 s at 1,000 shops", "#999", true);
    // 3. Memory across N.
    let ymax = runs.iter().map(peak_mib).fold(30.0, f64::max);
    let (ytop, yt) = nice_ticks(ymax * 1.1);
    let p = Panel {
        x: 1050.0,
        y: 50.0,
        w: 380.0,
        h: 340.0,
        xmax: hi,
        ymax: ytop,
        xlog: Some((lo, hi)),
        legend_low_right: false,
    };
    p.axes(&mut s, "Operator memory", "shops (log scale)", "MiB", &ns, &yt);
    let pts: Vec<(f64, f64)> = runs.iter().map(|r| (r.shops as f64, peak_mib(r))).collect();
    p.line(&mut s, &pts, COLORS[0], false, true);
    p.legend(&mut s, 0, "peak RSS (VmHWM)", COLORS[0], false);
    p.line(&mut s, &[(lo, 30.0), (hi, 30.0)], "#999", true, false);
    p.legend(&mut s, 1, "target: 30 MiB at 1,000 shops", "#999", true);
    s.push_str("</svg>\n");
    s
}

fn write_report(dir: &Path, fresh: &[Run], s: &Settings) -> std::io::Result<Vec<Run>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("converge.json");
    let mut report: Report = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| {
            // Say so when earlier runs are about to be dropped (a NaN is
            // written as null, which an f64 field does not read back).
            serde_json::from_str(&t)
                .map_err(|e| {
                    eprintln!(
                        "converge: {} unreadable, earlier runs dropped: {e}",
                        path.display()
                    )
                })
                .ok()
        })
        .unwrap_or_default();
    report
        .runs
        .retain(|r| !fresh.iter().any(|f| (f.shops, f.shards) == (r.shops, r.shards)));
    report.runs.extend(fresh.iter().cloned());
    report.runs.sort_by_key(|r| (r.shops, r.shards));
    report.command = "make bench SHOPS=10,100,1000,3000 [SHARDS=2]   # = cargo bench --bench converge".into();
    report.simulator = BTreeMap::from([
        ("latency_ms".into(), s.latency.as_millis().to_string()),
        ("bucket_size".into(), "1000".into()),
        ("restore_rate".into(), "100 (Standard plan)".into()),
        ("topics".into(), TOPICS.join(",")),
    ]);
    report.targets = BTreeMap::from([
        ("host_change_1000_shops_s".into(), "<= 3".into()),
        ("requests_per_shop_per_change".into(), "<= 2".into()),
        ("steady_mutations_and_writes".into(), "0".into()),
        ("rss_1000_shops_mib".into(), "<= 30".into()),
        ("idle_cpu".into(), "~0".into()),
    ]);
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    std::fs::write(dir.join("converge.svg"), svg(&report.runs))?;
    if let Some(plot) = soak::svg(&report.runs) {
        std::fs::write(dir.join("soak.svg"), plot)?;
    }
    Ok(report.runs)
}

fn main() {
    let Some(s) = settings() else {
        eprintln!("converge: a benchmark; run it with `cargo bench --bench converge` (skipped)");
        return;
    };
    if !testenv::assets_dir().join("kube-apiserver").is_file() {
        eprintln!(
            "converge: control-plane binaries missing in {}: run `make control-plane`",
            testenv::assets_dir().display()
        );
        std::process::exit(2);
    }
    if s.report_only {
        match write_report(&s.out, &[], &s) {
            Ok(all) => println!("{}", table(&all)),
            Err(e) => eprintln!("converge: {e}"),
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut fresh = Vec::new();
    let mut failed = false;
    for &n in &s.shops {
        match rt.block_on(run(n, &s)) {
            Ok(r) => {
                // A baseline that did not repoint everything fails the bench
                // (its numbers are still written).
                failed |= r.baseline.as_ref().is_some_and(|b| !b.completed);
                fresh.push(r);
                if let Err(e) = write_report(&s.out, &fresh, &s) {
                    eprintln!("converge: writing the report: {e}");
                }
            }
            Err(e) => {
                eprintln!("converge: {n} shops failed: {e}");
                failed = true;
            }
        }
    }
    let all = write_report(&s.out, &fresh, &s).unwrap_or_default();
    println!("\n{}", table(&fresh));
    if all.len() > fresh.len() {
        println!(
            "(converge.json also holds earlier runs for (N, shards) = {:?})",
            {
                all.iter()
                    .map(|r| (r.shops, r.shards))
                    .filter(|k| !fresh.iter().any(|f| (f.shops, f.shards) == *k))
                    .collect::<Vec<_>>()
            }
        );
    }
    println!(
        "wrote {} and {}",
        s.out.join("converge.json").display(),
        s.out.join("converge.svg").display()
    );
    if failed {
        std::process::exit(1);
    }
}
