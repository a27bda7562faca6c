//! What GitOps tools say about a ShopifyShop, by their own code, not a
//! re-implementation: one shop is driven through the real apiserver and
//! shopify-sim into each state, and the object read live from the
//! apiserver is judged by kstatus's `status.Compute` (sigs.k8s.io/cli-utils:
//! Flux's health checks, `kpt`) and by the Argo CD health check in
//! `contrib/argocd` run in gopher-lua the way Argo CD runs it. Both run in
//! `hack/health` (a Go program built from pinned modules by
//! `hack/health.sh`). Also here: Shopify's API-version signals (a removed
//! version falling forward, a deprecation) reach status, Events and
//! metrics once.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use shopify_admin::ClientSecret;
use shopify_admin::hmac::sign_webhook;
use shopify_operator::crd::ShopifyShop;
use shopify_sim::{AppFixture, Fault, Fixture, SimConfig};
use support::{Env, hack_tool, http_addr, reconciles, shop_fixture, spec, wait_for};

const DOMAIN: &str = "health-shop.myshopify.com";
const TOKEN: &str = "shpat_health_orders";
const APP_SECRET: &str = "health-app-secret";

/// The Argo CD health check, in the layout of Argo CD's
/// `resource_customizations/` (health.lua, health_test.yaml, testdata/).
fn argocd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/argocd/resource_customizations/shopify-operator.dev/ShopifyShop")
}

/// `hack/health`'s path (built and cached by `hack/health.sh`).
fn health_tool() -> PathBuf {
    hack_tool("HEALTH_BIN", "health.sh")
}

/// A tool's verdict: status and message.
#[derive(Debug)]
struct Verdict {
    status: String,
    message: String,
}

/// Runs `hack/health` with `args`, the object on stdin.
fn judge(args: &[&str], object: &Value) -> Verdict {
    let mut child = Command::new(health_tool())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hack/health");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(object.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "health {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("health prints JSON");
    Verdict {
        status: v["status"].as_str().unwrap_or_default().to_string(),
        message: v["message"].as_str().unwrap_or_default().to_string(),
    }
}

/// Argo CD's verdict, run as `argocd-cm` runs a script: without the open
/// libraries (no `string`), which the upstream harness would add.
fn argocd_verdict(object: &Value) -> Verdict {
    let script = argocd_dir().join("health.lua");
    judge(
        &[
            "argocd",
            "--open-libs=false",
            "--script",
            script.to_str().unwrap(),
        ],
        object,
    )
}

/// The object as stored, without what neither tool reads and a fixture
/// should not carry.
fn live(shop: &ShopifyShop) -> Value {
    let mut v = serde_json::to_value(shop).unwrap();
    v["apiVersion"] = json!("shopify-operator.dev/v1alpha1");
    v["kind"] = json!("ShopifyShop");
    if let Some(meta) = v["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    v
}

/// Judges the shop `name` as both tools would now and checks their
/// verdicts; `clue` must be in both messages (a useful message). The
/// object is kept in `target/tmp/health/{state}.json` to refresh the Argo
/// CD testdata from.
fn expect(state: &str, object: &Value, kstatus: &str, argocd: &str, clue: &str) {
    let k = judge(&["kstatus"], object);
    let a = argocd_verdict(object);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("health");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{state}.json")),
        serde_json::to_string_pretty(object).unwrap(),
    )
    .unwrap();
    println!(
        "{state:<24} kstatus {:<11} argocd {:<11} {}",
        k.status, a.status, a.message
    );
    assert_eq!(k.status, kstatus, "{state}: kstatus said {k:?} of {object:#}");
    assert_eq!(a.status, argocd, "{state}: Argo CD said {a:?} of {object:#}");
    // kstatus shows the condition's message alone (Flux prints it).
    if kstatus != "Current" {
        assert!(!k.message.is_empty(), "{state}: kstatus message {k:?}");
    }
    assert!(a.message.contains(clue), "{state}: Argo CD message {a:?}");
}

fn fixture() -> Fixture {
    Fixture {
        shops: vec![shop_fixture(DOMAIN, TOKEN, &["read_orders"], Vec::new())],
        app: Some(AppFixture {
            client_id: "client-health".into(),
            client_secret: APP_SECRET.into(),
            previous_client_secret: None,
        }),
        apps: Vec::new(),
    }
}

struct Walk {
    env: Env,
    addr: String,
}

impl Walk {
    async fn shop(&self) -> ShopifyShop {
        self.env.shops().get("shop").await.unwrap()
    }

    /// Waits until `type_` is `status` with `reason` for the current
    /// generation, then judges the shop.
    async fn expect(&self, state: &str, cond: (&str, &str, &str), kstatus: &str, argocd: &str) {
        let (type_, status, reason) = cond;
        self.env.wait_condition("shop", type_, status, Some(reason)).await;
        // Under Observe the check's message leads with the policy.
        let clue = if argocd == "Suspended" {
            "managementPolicy Observe"
        } else {
            reason
        };
        expect(state, &live(&self.shop().await), kstatus, argocd, clue);
    }

    /// Waits until the shop is Ready at `host` (its generation observed),
    /// then judges it Current and Healthy.
    async fn expect_healthy(&self, state: &str, host: &str) {
        wait_for(
            &format!("{state}: Ready at {host}"),
            Duration::from_secs(60),
            || async {
                let shop = self.shop().await;
                let status = shop.status.as_ref()?;
                let ready = status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                (ready
                    && status.webhook_host.as_deref() == Some(host)
                    && status.observed_generation == shop.metadata.generation)
                    .then_some(())
            },
        )
        .await;
        expect(state, &live(&self.shop().await), "Current", "Healthy", host);
    }

    async fn patch_spec(&self, spec: Value) -> ShopifyShop {
        self.env
            .shops()
            .patch(
                "shop",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
            .unwrap()
    }

    async fn move_ingress(&self, host: &str) {
        let api: Api<Ingress> = Api::namespaced(self.env.client.clone(), &self.env.ns);
        let patch = json!({"spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "oms", "port": {"number": 80}}}}]}}]}});
        api.patch("oms", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Shopify answers `status` to every request of the shop until cleared.
    fn shopify_fails(&self, status: u16) {
        self.env.sim.inject(Fault::Status {
            shop: Some(DOMAIN.into()),
            status,
            count: 100_000,
        });
    }

    /// Shopify delivers `app/uninstalled` to the operator, signed.
    async fn deliver_uninstalled(&self) {
        let body = json!({"id": 1, "name": "Health shop", "domain": DOMAIN}).to_string();
        let hmac = sign_webhook(body.as_bytes(), &ClientSecret::from(APP_SECRET));
        let status = reqwest::Client::new()
            .post(format!("http://{}/shopify/webhooks/app_uninstalled", self.addr))
            .header("X-Shopify-Topic", "app/uninstalled")
            .header("X-Shopify-Shop-Domain", DOMAIN)
            .header("X-Shopify-Hmac-Sha256", hmac)
            .header("X-Shopify-Webhook-Id", "0b7a9e36-21a4-4c55-9d0b-6f4bbcd7c1a2")
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kstatus_and_argo_cd_read_each_state_of_a_shop_as_it_is() {
    let mut env = Env::new("health", fixture()).await;
    env.ingress("oms", "oms.popsockets.com").await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let app: Secret = serde_json::from_value(json!({"metadata": {"name": "app"},
        "stringData": {"client-id": "client-health", "client-secret": APP_SECRET}}))
    .unwrap();
    secrets.create(&PostParams::default(), &app).await.unwrap();
    env.secrets.lock().unwrap().push(APP_SECRET.into());
    let mut s = spec(
        DOMAIN,
        "tok",
        json!({"ingressRef": {"name": "oms"}}),
        &["orders/create"],
    );
    s["app"] = json!({"secretRef": {"name": "app"}});
    env.create_shop("shop", s).await;
    // A shop the operator has not reported on yet: kstatus has nothing to
    // go by (no observedGeneration, no conditions) and says Current; the
    // Argo CD check waits for the first report.
    let fresh = live(&env.shops().get("shop").await.unwrap());
    if fresh.get("status").is_none() {
        let a = judge(
            &[
                "argocd",
                "--script",
                argocd_dir().join("health.lua").to_str().unwrap(),
            ],
            &fresh,
        );
        assert_eq!(a.status, "Progressing", "{a:?}");
        assert_eq!(judge(&["kstatus"], &fresh).status, "Current");
    }
    env.start_operator("1s");
    let addr = http_addr(env.operator.as_ref().unwrap()).await;
    let walk = Walk { env, addr };

    // The token Secret is missing: a person must create it.
    walk.expect(
        "secret-missing",
        ("TokenValid", "False", "SecretNotFound"),
        "Failed",
        "Degraded",
    )
    .await;
    walk.env.token_secret("tok", TOKEN).await;
    walk.expect_healthy("converged", "oms.popsockets.com").await;

    // A new generation, as the apiserver answers the change: not acted on.
    let bumped = walk
        .patch_spec(json!({"webhooks": {"topics": ["orders/create", "orders/updated"]}}))
        .await;
    expect(
        "generation-bumped",
        &live(&bumped),
        "InProgress",
        "Progressing",
        "generation",
    );
    walk.expect_healthy("converged-again", "oms.popsockets.com").await;

    // The Ingress moves while Shopify fails: the repoint is in flight and
    // retried, nobody needs to act.
    walk.shopify_fails(503);
    walk.move_ingress("new.popsockets.com").await;
    walk.expect(
        "host-change-in-flight",
        ("Reconciling", "True", "ShopifyUnavailable"),
        "InProgress",
        "Progressing",
    )
    .await;
    walk.env.sim.clear_faults();
    walk.expect_healthy("repointed", "new.popsockets.com").await;

    // Throttled: retried when the bucket refills.
    walk.shopify_fails(429);
    walk.expect(
        "throttled",
        ("Reconciling", "True", "ShopifyThrottled"),
        "InProgress",
        "Progressing",
    )
    .await;
    walk.env.sim.clear_faults();
    walk.expect_healthy("throttle-over", "new.popsockets.com").await;

    // A schedule that is not cron: a person must fix the spec.
    let job = json!({"spec": {"template": {"spec": {"containers": [{"name": "sync", "image": "oms"}]}}}});
    walk.patch_spec(json!({"sync": [{"name": "orders", "schedule": "every day", "jobTemplate": job}]}))
        .await;
    walk.expect(
        "invalid-schedule",
        ("SyncHealthy", "False", "InvalidSchedule"),
        "Failed",
        "Degraded",
    )
    .await;
    walk.patch_spec(json!({"sync": null})).await;
    walk.expect_healthy("schedule-dropped", "new.popsockets.com")
        .await;

    // Observe: the operator changes nothing by a person's choice; Argo CD
    // says Suspended (a paused Deployment's word). kstatus has no such word:
    // in sync it is Current; with drift, which stays until a person acts,
    // Failed.
    walk.patch_spec(json!({"managementPolicy": "Observe"})).await;
    walk.expect(
        "observe",
        ("WebhooksSynced", "True", "InSync"),
        "Current",
        "Suspended",
    )
    .await;
    walk.move_ingress("third.popsockets.com").await;
    walk.expect(
        "observe-drift",
        ("WebhooksSynced", "False", "DriftDetected"),
        "Failed",
        "Suspended",
    )
    .await;
    walk.patch_spec(json!({"managementPolicy": null})).await;
    walk.expect_healthy("manage-again", "third.popsockets.com").await;

    // Shopify revokes the token: a person must reinstall.
    walk.env.sim.revoke_token(DOMAIN);
    walk.expect(
        "token-revoked",
        ("TokenValid", "False", "TokenRevoked"),
        "Failed",
        "Degraded",
    )
    .await;

    // And delivers app/uninstalled.
    walk.deliver_uninstalled().await;
    walk.expect(
        "uninstalled",
        ("TokenValid", "False", "AppUninstalled"),
        "Failed",
        "Degraded",
    )
    .await;
}

#[test]
fn the_argo_cd_health_check_passes_its_own_tests() {
    // As Argo CD's own harness runs resource_customizations (open
    // libraries), and as `argocd-cm` runs a script (without).
    for libs in ["--open-libs=true", "--open-libs=false"] {
        let out = Command::new(health_tool())
            .args(["argocd-test", libs])
            .arg(argocd_dir())
            .output()
            .expect("run hack/health");
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{text}");
        assert!(
            out.status.success(),
            "{libs}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Every status the check can give is covered by a case.
        for status in ["Healthy", "Progressing", "Degraded", "Suspended"] {
            assert!(
                text.contains(&format!(" {status}: ")),
                "no {status} case:\n{text}"
            );
        }
    }
}

/// The judge itself answers as the tools do on objects whose answer is
/// known (its own testdata): a Deployment, a stalled and an unobserved
/// custom resource for kstatus; Argo CD's harness, an invalid status
/// (Unknown, as Argo CD says), a script error, a non-table result and an
/// endless loop (stopped after Argo CD's 1 s) for the Lua side.
#[test]
fn the_health_judge_answers_as_the_tools_do() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/health/testdata");
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(data.join(name)).unwrap();
        serde_norway::from_str(&text).unwrap()
    };
    for (file, want) in [
        ("deployment-current.yaml", "Current"),
        ("shop-stalled.yaml", "Failed"),
        ("shop-old-generation.yaml", "InProgress"),
        ("shop-ready.json", "Current"),
    ] {
        assert_eq!(judge(&["kstatus"], &read(file)).status, want, "{file}");
    }
    let run = |args: &[&str]| {
        Command::new(health_tool())
            .args(args)
            .output()
            .expect("run hack/health")
    };
    let pass = run(&["argocd-test", data.join("argocd").to_str().unwrap()]);
    assert!(pass.status.success(), "{pass:?}");
    assert!(String::from_utf8_lossy(&pass.stdout).contains("Unknown: Lua returned an invalid health status"));
    let fail = run(&["argocd-test", data.join("argocd-fail").to_str().unwrap()]);
    assert_eq!(fail.status.code(), Some(1), "{fail:?}");
    let script = data.join("argocd/health.lua");
    for (file, error) in [
        ("error.yaml", "spec.mode asks for an error"),
        ("not-a-table.yaml", "expect table output from Lua script"),
        ("endless.yaml", "context deadline exceeded"),
    ] {
        let mut child = Command::new(health_tool())
            .args(["argocd", "--script", script.to_str().unwrap()])
            .stdin(std::fs::File::open(data.join("argocd/testdata").join(file)).unwrap())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.contains(error), "{file}: {stderr}");
    }
}

/// Shopify's calendar on the day this test was written: 2025-07 (the
/// default `adminApiVersion`) is no longer served and falls forward.
fn served_on_2026_12_02() -> Vec<String> {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    shopify_sim::calendar(day)
}

/// Metrics text of the operator at `addr`.
async fn metrics(addr: &str) -> String {
    support::metrics_text(addr)
        .await
        .expect("the operator's /metrics")
}

/// Starts an operator (1 s resync) on a shop `orders/create` at a fixed
/// host, with the simulator configured by `cfg`; returns its HTTP address
/// once the shop is Ready.
async fn ready_shop(prefix: &str, cfg: SimConfig) -> (Env, String) {
    let cp = testenv::shared(shopify_operator::crd::all).await;
    let mut env = Env::with_sim(cp, prefix, cfg).await;
    env.token_secret("tok", TOKEN).await;
    env.create_shop(
        "shop",
        spec(
            DOMAIN,
            "tok",
            json!({"host": "oms.popsockets.com"}),
            &["orders/create"],
        ),
    )
    .await;
    env.start_operator("1s");
    let addr = http_addr(env.operator.as_ref().unwrap()).await;
    env.wait_condition("shop", "Ready", "True", None).await;
    (env, addr)
}

/// Moves the shop to Admin API `version`.
async fn move_to(env: &Env, version: &str) {
    env.shops()
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"adminApiVersion": version}})),
        )
        .await
        .unwrap();
}

/// Waits until the operator at `addr` has finished `n` more passes.
async fn passes(addr: &str, n: u64) {
    let seen = reconciles(addr).await.unwrap_or(0);
    wait_for("more passes", Duration::from_secs(30), || async {
        (reconciles(addr).await? >= seen + n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_api_version_is_said_once_in_events_and_always_in_status_and_metrics() {
    let cfg = SimConfig {
        fixture: fixture(),
        api_versions: served_on_2026_12_02(),
        ..Default::default()
    };
    let (env, addr) = ready_shop("fallforward", cfg).await;
    let status = env.shops().get("shop").await.unwrap().status.unwrap();
    assert_eq!(status.served_api_version.as_deref(), Some("2026-01"));
    // The client builds its documents for the version served (`uri`, not
    // 2025-07's `callbackUrl`), so nothing deprecated is asked for.
    assert_eq!(status.api_deprecation_reason, None);

    // Several passes later: one Warning, and the metric says it.
    passes(&addr, 3).await;
    assert_eq!(env.published("shop", "Warning", "ApiVersionFellForward").await, 1);
    let event = env.events("shop", "ApiVersionFellForward").await;
    let note = event[0].note.as_deref().unwrap_or_default();
    assert!(note.contains("2025-07") && note.contains("2026-01"), "{note}");
    let ns = &env.ns;
    let series = format!(
        "shopify_shop_served_api_version{{namespace=\"{ns}\",name=\"shop\",requested=\"2025-07\",served=\"2026-01\"}} 1"
    );
    let text = metrics(&addr).await;
    assert!(text.contains(&series), "{text}");

    // Moving the shop to a served version clears status and metric.
    move_to(&env, "2026-10").await;
    wait_for("servedApiVersion cleared", Duration::from_secs(30), || async {
        let shop = env.shops().get("shop").await.ok()?;
        let status = shop.status?;
        (status.observed_generation == shop.metadata.generation && status.served_api_version.is_none())
            .then_some(())
    })
    .await;
    passes(&addr, 1).await;
    assert!(!metrics(&addr).await.contains("served=\""));
    assert_eq!(env.published("shop", "Warning", "ApiVersionFellForward").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deprecation_shopify_flags_is_said_once_in_events_and_always_in_status_and_metrics() {
    // Shopify deprecates `callbackUrl` in 2025-07 already, a version the
    // client still builds it for: what a deprecation the client does not
    // know about yet looks like. The Rails app's subscription is there, so
    // the first listing reads the deprecated field.
    let mut fixture = fixture();
    fixture.shops[0].subscriptions = vec![shopify_sim::SubscriptionFixture {
        topic: "ORDERS_CREATE".into(),
        address: "https://oms.popsockets.com/webhooks/orders_create".into(),
        ..Default::default()
    }];
    let cfg = SimConfig {
        fixture,
        uri_since: "2025-07".into(),
        ..Default::default()
    };
    let (env, addr) = ready_shop("deprecation", cfg).await;
    let status = env.shops().get("shop").await.unwrap().status.unwrap();
    assert_eq!(status.served_api_version, None);
    let reason = status.api_deprecation_reason.expect("the deprecation in status");
    assert!(reason.starts_with("https://shopify.dev/"), "{reason}");

    passes(&addr, 3).await;
    assert_eq!(env.published("shop", "Warning", "DeprecatedApiUsage").await, 1);
    assert_eq!(env.published("shop", "Warning", "ApiVersionFellForward").await, 0);
    let ns = &env.ns;
    let series =
        format!("shopify_shop_api_deprecated{{namespace=\"{ns}\",name=\"shop\",version=\"2025-07\"}} 1");
    let text = metrics(&addr).await;
    assert!(text.contains(&series), "{text}");

    // 2025-10 asks for `uri`: nothing deprecated, status and metric clear.
    move_to(&env, "2025-10").await;
    wait_for(
        "apiDeprecationReason cleared",
        Duration::from_secs(30),
        || async {
            let shop = env.shops().get("shop").await.ok()?;
            let status = shop.status?;
            (status.observed_generation == shop.metadata.generation
                && status.api_deprecation_reason.is_none())
            .then_some(())
        },
    )
    .await;
    passes(&addr, 1).await;
    assert!(!metrics(&addr).await.contains("shopify_shop_api_deprecated{"));
    assert_eq!(env.published("shop", "Warning", "DeprecatedApiUsage").await, 1);
}
