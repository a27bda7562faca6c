//! Shared set-up of the end-to-end tests: the shared control plane, an
//! in-process shopify-sim, and a real `shopify-operator run` process per
//! test, watching only that test's namespace as its own user (so the audit
//! log tells its writes apart).
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use shopify_operator::crd::ShopifyShop;
use shopify_sim::{self as sim, Fixture, Sim, SimConfig};
use testenv::{ControlPlane, Supervised};

/// Waits until `check` returns `Some`, polling, up to `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A tool the project's `hack/` scripts provide: the path in `env_var` if
/// it exists, else what `hack/{script}` installs or builds (cached) and
/// prints.
pub fn hack_tool(env_var: &str, script: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var).map(PathBuf::from)
        && path.exists()
    {
        return path;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join("hack").join(script))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run hack/{script}: {e}"));
    assert!(
        out.status.success(),
        "hack/{script} failed (see its output above)"
    );
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
}

/// Runs `cmd`; panics with its output unless it succeeds; returns stdout.
pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A loopback port leased to this test (see `testenv::lease_port`): nobody
/// else is given it while the lease lives, and nothing listens on it until
/// the test starts something there.
pub fn lease_port() -> testenv::PortLease {
    testenv::lease_port().expect("lease a loopback port")
}

/// The HTTP address an operator process (started with `HTTP_ADDR` port 0)
/// logged once it had bound its listener, if it has yet: from a text line
/// (`addr=…`) or a JSON one (`"fields":{"addr":…}`).
pub fn logged_http_addr(p: &Supervised) -> Option<String> {
    let log = std::fs::read_to_string(&p.log).ok()?;
    let line = log.lines().find(|l| l.contains("serving /healthz"))?;
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return json["fields"]["addr"].as_str().map(str::to_string);
    }
    let start = line.find("addr=")? + 5;
    Some(
        line[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
            .collect(),
    )
}

/// The HTTP address an operator process logged.
pub async fn http_addr(p: &Supervised) -> String {
    wait_for("the HTTP address in the log", Duration::from_secs(60), || async {
        logged_http_addr(p)
    })
    .await
}

/// The `/metrics` text an operator (at HTTP address `addr`) serves, if it
/// answers.
pub async fn metrics_text(addr: &str) -> Option<String> {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// Reconciles an operator (at HTTP address `addr`) has finished, from its
/// `/metrics`.
pub async fn reconciles(addr: &str) -> Option<u64> {
    let text = metrics_text(addr).await?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("shopify_operator_reconciles_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64,
    )
}

/// How long the simulator holds a response that is to be lost to the
/// operator (`Fault::TimeoutAfterApply`): see [`Env::expect_lost_responses`].
pub const LOST_RESPONSE_HANG: Duration = Duration::from_secs(30);

/// One test's world.
pub struct Env {
    pub cp: &'static ControlPlane,
    pub sim: Sim,
    pub ns: String,
    pub client: Client,
    pub user: String,
    pub operator: Option<Supervised>,
    pub operator_args: Vec<(String, String)>,
    /// Secret values the test put somewhere besides the simulator's fixture
    /// (checked, with the simulator's, when the Env is dropped).
    pub secrets: std::sync::Mutex<Vec<String>>,
}

/// A simulated shop with one non-expiring token with `scopes`, and
/// `subscriptions` at load time.
pub fn shop_fixture(
    domain: &str,
    token: &str,
    scopes: &[&str],
    subscriptions: Vec<sim::SubscriptionFixture>,
) -> sim::ShopFixture {
    sim::ShopFixture {
        domain: domain.into(),
        tokens: vec![sim::TokenFixture {
            access_token: token.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }],
        subscriptions,
        ..Default::default()
    }
}

/// A sync's `jobTemplate`: one container that runs once.
pub fn job_template() -> serde_json::Value {
    json!({"spec": {"template": {"spec": {"restartPolicy": "Never",
        "containers": [{"name": "sync", "image": "oms:1"}]}}}})
}

/// The seed fixture (`examples/sim-seed.yaml`).
pub fn seed_fixture() -> Fixture {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sim-seed.yaml"))
        .expect("examples/sim-seed.yaml");
    serde_norway::from_str(&text).expect("seed fixture parses")
}

impl Env {
    /// Control plane + namespace + simulator; the operator is started by
    /// [`Env::start_operator`].
    pub async fn new(prefix: &str, fixture: Fixture) -> Env {
        Self::with_control_plane(testenv::shared(shopify_operator::crd::all).await, prefix, fixture).await
    }

    /// Like [`Env::new`] on a control plane of the test's own.
    pub async fn with_control_plane(cp: &'static ControlPlane, prefix: &str, fixture: Fixture) -> Env {
        let cfg = SimConfig {
            fixture,
            ..Default::default()
        };
        Self::with_sim(cp, prefix, cfg).await
    }

    /// Like [`Env::new`] with a simulator configured by `cfg`.
    pub async fn with_sim(cp: &'static ControlPlane, prefix: &str, cfg: SimConfig) -> Env {
        let ns = cp.namespace(prefix).await.expect("namespace");
        let sim = sim::start(cfg).await.expect("simulator starts");
        let client = cp.admin_client().await.expect("admin client");
        Env {
            cp,
            sim,
            user: format!("operator-{ns}"),
            ns,
            client,
            operator: None,
            operator_args: Vec::new(),
            secrets: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// For a test whose simulator holds responses for [`LOST_RESPONSE_HANG`]:
    /// the operators it starts time out after 5 s — far above what a
    /// loaded machine takes to answer (so no other request times out and
    /// adds to a count), far below the hang. Every other test runs with the
    /// product's default (15 s).
    pub fn expect_lost_responses(&mut self) {
        self.operator_args
            .push(("SHOPIFY_REQUEST_TIMEOUT".into(), "5s".into()));
    }

    /// Starts `shopify-operator run` with a fast resync.
    pub fn start_operator(&mut self, resync: &str) {
        let env = [("RESYNC_INTERVAL".to_string(), resync.to_string())];
        self.operator = Some(self.spawn_operator("operator", &env));
    }

    /// Starts another `shopify-operator run` process named `name` with extra
    /// environment (e.g. leader election); its log is `operator-{name}-{ns}.log`.
    pub fn spawn_operator(&self, name: &str, extra: &[(String, String)]) -> Supervised {
        self.spawn_operator_as(name, &self.user, &["system:masters"], extra)
    }

    /// Like [`Env::spawn_operator`], as `user` in `groups` (e.g. with
    /// [`testenv::AUDIT_READS_GROUP`], so its reads are audited too).
    pub fn spawn_operator_as(
        &self,
        name: &str,
        user: &str,
        groups: &[&str],
        extra: &[(String, String)],
    ) -> Supervised {
        let kubeconfig = self.cp.write_user_kubeconfig(user, groups).expect("kubeconfig");
        let log = if name == "operator" {
            self.cp.dir.join(format!("operator-{}.log", self.ns))
        } else {
            self.cp.dir.join(format!("operator-{name}-{}.log", self.ns))
        };
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shopify-operator"));
        cmd.arg("run")
            .env("KUBECONFIG", &kubeconfig)
            .env("SHOPIFY_BASE_URL", self.sim.base_url())
            .env("WATCH_NAMESPACE", &self.ns)
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info,shopify_operator=debug");
        for (k, v) in self.operator_args.iter().chain(extra) {
            cmd.env(k, v);
        }
        testenv::spawn_supervised(name, &mut cmd, &log).expect("operator starts")
    }

    /// The operator's log so far.
    pub fn operator_log(&self) -> String {
        self.operator
            .as_ref()
            .map(|o| std::fs::read_to_string(&o.log).unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.operator.as_ref().map(|o| o.log.clone()).unwrap_or_default()
    }

    pub fn shops(&self) -> Api<ShopifyShop> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub async fn token_secret(&self, name: &str, token: &str) {
        self.secrets.lock().unwrap().push(token.to_string());
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": name},
            "stringData": {"access-token": token}
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &s)
            .await
            .expect("create secret");
    }

    /// A ShopifyApp's credentials Secret `name` (`previous`: a secret being
    /// rotated out).
    pub async fn app_credentials(&self, name: &str, id: &str, secret: &str, previous: Option<&str>) {
        self.secrets.lock().unwrap().push(secret.to_string());
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let mut data = json!({"client-id": id, "client-secret": secret});
        if let Some(p) = previous {
            data["previous-client-secret"] = json!(p);
        }
        let s = json!({"metadata": {"name": name}, "stringData": data});
        api.create(&PostParams::default(), &serde_json::from_value(s).unwrap())
            .await
            .expect("create app Secret");
    }

    /// Creates ShopifyApp `name` with `spec`.
    pub async fn create_app(&self, name: &str, spec: serde_json::Value) {
        let api: Api<shopify_operator::crd::ShopifyApp> = Api::namespaced(self.client.clone(), &self.ns);
        let app = json!({"apiVersion": "shopify-operator.dev/v1alpha1", "kind": "ShopifyApp",
                         "metadata": {"name": name}, "spec": spec});
        api.create(&PostParams::default(), &serde_json::from_value(app).unwrap())
            .await
            .expect("create ShopifyApp");
    }

    pub async fn ingress(&self, name: &str, host: &str) {
        let ingresses: Api<Ingress> = Api::namespaced(self.client.clone(), &self.ns);
        let i: Ingress = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "oms", "port": {"number": 80}}}}]}}]}
        }))
        .unwrap();
        ingresses
            .create(&PostParams::default(), &i)
            .await
            .expect("create ingress");
    }

    pub async fn create_shop(&self, name: &str, spec: serde_json::Value) {
        let shop: ShopifyShop = serde_json::from_value(json!({
            "apiVersion": "shopify-operator.dev/v1alpha1",
            "kind": "ShopifyShop",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("valid ShopifyShop");
        self.shops()
            .create(&PostParams::default(), &shop)
            .await
            .expect("create shop");
    }

    /// The condition `type_` of shop `name`: (status, reason, message).
    pub async fn condition(&self, name: &str, type_: &str) -> Option<(String, String, String)> {
        let shop = self.shops().get(name).await.ok()?;
        // The condition's own observedGeneration: the status-level one
        // waits until a generation is fully acted on (kstatus), which a
        // transient failure holds back.
        shop.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_ && c.observed_generation == shop.metadata.generation)
            .map(|c| (c.status, c.reason, c.message))
    }

    /// Waits until `type_` has `status` (and `reason`, if given); a timeout
    /// names the status the shop has instead.
    pub async fn wait_condition(&self, name: &str, type_: &str, status: &str, reason: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((s, r, _)) = self.condition(name, type_).await
                && s == status
                && reason.is_none_or(|want| want == r)
            {
                return;
            }
            if Instant::now() > deadline {
                let shop = self.shops().get_opt(name).await.ok().flatten();
                panic!(
                    "timed out after 60s waiting for {name} {type_}={status} {reason:?} (operator log: {}); \
                     generation {:?}, status: {}",
                    self.log_path().display(),
                    shop.as_ref().and_then(|s| s.metadata.generation),
                    serde_json::to_string_pretty(&shop.and_then(|s| s.status)).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes of the operator so far (from the audit log).
    pub fn operator_writes(&self) -> Vec<testenv::AuditWrite> {
        self.cp.audit_writes(&self.user)
    }

    /// Events about shop `name` with `reason`.
    pub async fn events(&self, name: &str, reason: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(self.client.clone(), &self.ns);
        api.list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
            .collect()
    }

    /// How many times the operator published an Event of `type_`
    /// (`Warning`, `Normal`) with `reason` about shop `name`: a repeat of
    /// the same Event is a series on one object, counted by its count.
    pub async fn published(&self, name: &str, type_: &str, reason: &str) -> i32 {
        self.events(name, reason)
            .await
            .iter()
            .filter(|e| e.type_.as_deref() == Some(type_))
            .map(|e| e.series.as_ref().map_or(1, |s| s.count))
            .sum()
    }

    pub fn name_of(shop: &ShopifyShop) -> String {
        shop.name_any()
    }
}

/// Secrets stay secret, checked for every test that runs an operator: no
/// token, refresh token, authorization code or client secret the simulator
/// knows (or issued during the test), nor any the test put in a Secret,
/// appears in an operator log or in anything the operator wrote to the
/// apiserver other than a Secret (statuses, Events, Jobs, patches — the
/// audit log records their bodies).
impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let mut secrets = self.sim.known_secrets();
        secrets.extend(self.secrets.lock().map(|s| s.clone()).unwrap_or_default());
        // Short fixture values ("x") would match anything.
        secrets.retain(|s| s.len() >= 8);
        let mut places: Vec<(String, String)> = Vec::new();
        if let Ok(dir) = std::fs::read_dir(&self.cp.dir) {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("operator-") && name.ends_with(&format!("{}.log", self.ns)) {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    places.push((name, text));
                }
            }
        }
        for (i, line) in self.cp.audited_bodies(&self.user).into_iter().enumerate() {
            places.push((format!("audited write #{i} of {}", self.user), line));
        }
        for (where_, text) in &places {
            for (i, secret) in secrets.iter().enumerate() {
                // The value itself is not printed: the report must not leak it.
                assert!(
                    !text.contains(secret.as_str()),
                    "secret #{i} ({} chars, {}…) leaked into {where_}",
                    secret.len(),
                    secret.chars().take(6).collect::<String>()
                );
            }
        }
    }
}

/// A ShopifyShop spec for `domain` with `topics`, pointed at an Ingress or
/// a host.
pub fn spec(domain: &str, secret: &str, endpoint: serde_json::Value, topics: &[&str]) -> serde_json::Value {
    json!({
        "domain": domain,
        "token": {"secretRef": {"name": secret}},
        "webhooks": {"endpoint": endpoint, "topics": topics},
    })
}

/// Metadata helper.
pub fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

/// A browser's view of one OAuth request: status, `Location`, `Set-Cookie`,
/// the request id the operator gave it (`x-request-id`) and body. `cookie`
/// is sent as the `Cookie` header.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub request_id: Option<String>,
    pub body: String,
}

impl Answer {
    /// The operator's log lines about this request (its request id's).
    pub fn log_lines(&self, log: &str) -> Vec<String> {
        let Some(id) = &self.request_id else {
            return Vec::new();
        };
        log.lines()
            .filter(|l| l.contains(&format!("request_id={id}")))
            .map(str::to_string)
            .collect()
    }

    /// Whether the body is the short public answer `reason` (the reason,
    /// then the request id, nothing internal).
    pub fn is(&self, reason: &str) -> bool {
        let id = self.request_id.as_deref().unwrap_or("(none)");
        self.body == format!("{reason} (request id {id})\n")
    }
}

/// Waits until the log at `log` has a line about `a` (by its request id)
/// containing `needle`: the detailed cause of a short public answer.
pub async fn wait_logged(log: &std::path::Path, a: &Answer, needle: &str) {
    let what = format!(
        "a log line with request id {:?} containing {needle:?} in {}",
        a.request_id,
        log.display()
    );
    wait_for(&what, Duration::from_secs(20), || async {
        let text = std::fs::read_to_string(log).ok()?;
        a.log_lines(&text)
            .iter()
            .any(|l| l.contains(needle))
            .then_some(())
    })
    .await
}

/// GET `url` without following redirects, with `cookie` if given.
pub async fn browse(url: &str, cookie: Option<&str>) -> Answer {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = http.get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.expect("request");
    let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (location, set_cookie, request_id) =
        (header("location"), header("set-cookie"), header("x-request-id"));
    Answer {
        status: resp.status().as_u16(),
        location,
        set_cookie,
        request_id,
        body: resp.text().await.unwrap_or_default(),
    }
}

/// An install started in a browser and consented to on the simulator's
/// authorize page: the callback Shopify redirects to (rewritten from the
/// public URL to the operator's address `base`), the `Cookie` header the
/// browser sends with it, and the authorize URL it went through.
pub struct Consented {
    pub callback: String,
    pub cookie: String,
    pub authorize: String,
}

/// `GET {base}{install}` (e.g. `/oauth/install?shop=…`), then the
/// simulator's consent page; asserts the state cookie's attributes.
pub async fn consent(base: &str, install: &str, public_url: &str) -> Consented {
    let a = browse(&format!("{base}{install}"), None).await;
    assert_eq!(a.status, 302, "install: {}", a.body);
    let set = a.set_cookie.expect("the install sets the state cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Max-Age="] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    let authorize = a.location.expect("a redirect to Shopify");
    let c = browse(&authorize, None).await;
    assert_eq!(c.status, 302, "the simulator's consent page: {}", c.body);
    let callback = c.location.unwrap().replacen(public_url, base, 1);
    Consented {
        callback,
        cookie,
        authorize,
    }
}
