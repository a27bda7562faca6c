//! The shipped alerts with a real Prometheus (Debian's `prometheus`
//! package, `hack/prometheus.sh`): `promtool check rules` and the
//! `promtool test rules` unit tests of `tests/alerts/`, and one end-to-end
//! run of the Prometheus server scraping a running operator: a token
//! revoked in shopify-sim takes the token alert pending → firing, and a new
//! token resolves it.
//!
//! Network: loopback only.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use shopify_sim::{Fixture, ShopFixture, TokenFixture};
use support::{Env, http_addr, spec, wait_for};

const RULES: &str = "charts/shopify-operator/rules/shopify-operator.rules.yaml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn prometheus_bin(name: &str) -> PathBuf {
    support::hack_tool("PROMETHEUS_BIN_DIR", "prometheus.sh").join(name)
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new(prometheus_bin("promtool"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_rules_file_is_valid() {
    let out = promtool(&["check", "rules", RULES]);
    assert!(out.contains("SUCCESS: 10 rules found"), "{out}");
}

#[test]
fn every_alert_fires_when_it_should_and_not_before() {
    let out = promtool(&["test", "rules", "tests/alerts/shopify-operator.test.yaml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// A throwaway Prometheus server on loopback.
struct Prometheus {
    process: testenv::Supervised,
    url: String,
    _port: testenv::PortLease,
}

impl Prometheus {
    /// Scrapes `target` every second and evaluates `rules` every second.
    fn start(dir: &Path, target: &str, rules: &str) -> Prometheus {
        let lease = support::lease_port();
        let port = lease.port();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("rules.yaml"), rules).unwrap();
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [rules.yaml]\n\
             scrape_configs:\n  - job_name: shopify-operator\n    static_configs: [{{targets: ['{target}']}}]\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let mut cmd = Command::new(prometheus_bin("prometheus"));
        cmd.arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let process = testenv::spawn_supervised("prometheus", &mut cmd, &dir.join("prometheus.log"))
            .expect("prometheus starts");
        Prometheus {
            process,
            url: format!("http://127.0.0.1:{port}"),
            _port: lease,
        }
    }

    /// The state (`pending`, `firing`) of the alert `name` for shop `shop`.
    async fn alert_state(&self, name: &str, shop: &str) -> Option<String> {
        let body: Value = reqwest::get(format!("{}/api/v1/alerts", self.url))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == name && a["labels"]["name"] == shop)
            .and_then(|a| a["state"].as_str().map(str::to_string))
    }

    async fn wait_alert(&self, name: &str, shop: &str, state: Option<&str>) {
        let what = format!("{name} {state:?} (log: {})", self.process.log.display());
        wait_for(&what, Duration::from_secs(60), || async {
            (self.alert_state(name, shop).await.as_deref() == state).then_some(())
        })
        .await;
    }

    /// How many evaluations in the last 10 minutes had alert `name` for
    /// shop `shop` in `state`, from Prometheus' own `ALERTS` series: a
    /// state is proven even when it lasted shorter than a poll of the test.
    async fn evaluations_in(&self, name: &str, shop: &str, state: &str) -> u64 {
        let query = format!(
            "count_over_time(ALERTS{{alertname=\"{name}\",alertstate=\"{state}\",name=\"{shop}\"}}[10m])"
        );
        let body: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"]["result"]
            .as_array()
            .and_then(|r| r.first())
            .and_then(|r| r["value"][1].as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_fires_the_token_alert_and_a_new_token_resolves_it() {
    let domain = "alert-shop.myshopify.com";
    let fixture = |token: &str| Fixture {
        shops: vec![ShopFixture {
            domain: domain.into(),
            tokens: vec![TokenFixture {
                access_token: token.into(),
                scopes: vec!["read_orders".into()],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut env = Env::new("alerts", fixture("shpat_alert_first")).await;
    env.token_secret("tok", "shpat_alert_first").await;
    env.create_shop(
        "shop",
        spec(
            domain,
            "tok",
            json!({"host": "oms.popsockets.com"}),
            &["orders/create"],
        ),
    )
    .await;
    env.start_operator("1s");
    env.wait_condition("shop", "Ready", "True", None).await;
    let addr = http_addr(env.operator.as_ref().unwrap()).await;

    // The shipped rules, with only the token alert's `for` shortened from
    // 1m to 3s so the run takes seconds (promtool's tests cover the real
    // durations).
    let rules = std::fs::read_to_string(root().join(RULES)).unwrap();
    let marker = "- alert: ShopifyShopTokenInvalid";
    let (head, tail) = rules.split_once(marker).expect("the token alert");
    let tail = tail.replacen("for: 1m", "for: 3s", 1);
    let rules = format!("{head}{marker}{tail}");
    let prometheus = Prometheus::start(&env.cp.dir.join(format!("prometheus-{}", env.ns)), &addr, &rules);

    // Healthy: no token alert, and the rules evaluate (the shop's series
    // are scraped).
    wait_for("the shop's series in Prometheus", Duration::from_secs(60), || async {
        let q = format!(
            "{}/api/v1/query?query=shopify_shop_condition_reason{{name=%22shop%22,condition=%22TokenValid%22}}",
            prometheus.url
        );
        let body: Value = reqwest::get(q).await.ok()?.json().await.ok()?;
        let result = body["data"]["result"].as_array()?;
        (result.first()?["metric"]["reason"] == "TokenVerified").then_some(())
    })
    .await;
    assert_eq!(
        prometheus.alert_state("ShopifyShopTokenInvalid", "shop").await,
        None
    );

    // Revoked: pending, then firing. Pending lasts 3 s, shorter than a
    // loaded machine may take between two polls, so it is proven from
    // Prometheus' record of its evaluations once the alert fires.
    env.sim.revoke_token(domain);
    env.wait_condition("shop", "TokenValid", "False", Some("TokenRevoked"))
        .await;
    prometheus
        .wait_alert("ShopifyShopTokenInvalid", "shop", Some("firing"))
        .await;
    let pending = prometheus
        .evaluations_in("ShopifyShopTokenInvalid", "shop", "pending")
        .await;
    assert!(pending >= 1, "the alert fired without being pending first");

    // The merchant reinstalls: a new token in the Secret resolves it.
    env.sim.load(fixture("shpat_alert_second"));
    env.secrets.lock().unwrap().push("shpat_alert_second".into());
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let patch = json!({"stringData": {"access-token": "shpat_alert_second"}});
    secrets
        .patch("tok", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.wait_condition("shop", "TokenValid", "True", None).await;
    prometheus
        .wait_alert("ShopifyShopTokenInvalid", "shop", None)
        .await;
}
