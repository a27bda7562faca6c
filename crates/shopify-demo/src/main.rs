//! `shopify-demo`: the operator's main job on an embedded default. Starts a
//! local control plane and shopify-sim with the seed shops, applies
//! `examples/demo/` with kubectl, runs the controller, shows the cutover is a
//! no-op, changes the Ingress host and shows every subscription follow, then
//! hands one shop over to a new Shopify app (`handover`). Local only
//! (loopback).

mod handover;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};
use shopify_admin::{ClientConfig, ShopifyClient};
use shopify_operator::controller::{self, Context, Settings};
use shopify_operator::crd::ShopifyShop;
use shopify_sim::{self as sim, Fixture, SimConfig};
use testenv::{ControlPlane, Options};

/// Runs the demo.
#[derive(Parser, Debug)]
struct Args {
    /// The simulator's fixture.
    #[arg(long, default_value = "examples/sim-seed.yaml")]
    fixture: PathBuf,
    /// Manifests applied with kubectl.
    #[arg(long, default_value = "examples/demo")]
    manifests: PathBuf,
    /// Host the Ingress is switched to.
    #[arg(long, default_value = "oms-k8s.popsockets.com")]
    new_host: String,
    /// Stop after the host change instead of staying up until Ctrl-C.
    #[arg(long, env = "DEMO_EXIT", value_parser = clap::builder::FalseyValueParser::new())]
    exit: bool,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn kubectl(cp: &ControlPlane, args: &[&str]) -> Result<String, BoxError> {
    let out = std::process::Command::new(testenv::kubectl())
        .env("KUBECONFIG", cp.admin_kubeconfig())
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn wait_all_ready(
    shops: &Api<ShopifyShop>,
    host: &str,
    deadline: Duration,
) -> Result<Duration, BoxError> {
    let start = Instant::now();
    loop {
        let list = shops.list(&Default::default()).await?;
        let done = !list.items.is_empty()
            && list.items.iter().all(|s| {
                s.status.as_ref().is_some_and(|st| {
                    st.observed_generation == s.metadata.generation
                        && st.webhook_host.as_deref() == Some(host)
                        && st
                            .conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            });
        if done {
            return Ok(start.elapsed());
        }
        if start.elapsed() > deadline {
            return Err(format!("shops not Ready at {host} after {deadline:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `kubectl get events -n oms` with `reason`.
fn events(cp: &ControlPlane, reason: &str) -> Result<String, BoxError> {
    kubectl(
        cp,
        &[
            "get",
            "events",
            "-n",
            "oms",
            "--field-selector",
            &format!("reason={reason}"),
        ],
    )
}

fn print_subscriptions(sim: &sim::Sim, shop: &str) {
    for s in sim.subscriptions(shop) {
        let mut options = String::new();
        if let Some(filter) = &s.filter {
            options.push_str(&format!(" filter={filter:?}"));
        }
        if !s.include_fields.is_empty() {
            options.push_str(&format!(" fields={}", s.include_fields.join(",")));
        }
        println!(
            "      {:<20} {:<5} {}  ({}){options}",
            s.topic, s.format, s.address, s.id
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,kube_client::client::builder=off")
            }),
        )
        .init();

    println!("==> starting a local control plane (etcd + kube-apiserver + kube-controller-manager)");
    let t = Instant::now();
    let cp = ControlPlane::start(Options {
        controller_manager: true,
        crds: shopify_operator::crd::all(),
    })
    .await?;
    println!("    ready in {:.1}s at {}", t.elapsed().as_secs_f64(), cp.server);

    println!("==> starting shopify-sim with {}", args.fixture.display());
    let fixture = Fixture::from_file(&args.fixture)?;
    // Today's versions, as Shopify serves them: a shop on a version past its
    // support window is served a newer one, and the operator says so.
    let sim = sim::start(SimConfig {
        fixture: fixture.clone(),
        api_versions: sim::calendar(chrono::Utc::now().date_naive()),
        ..Default::default()
    })
    .await?;
    println!("    serving {} shops at {}", fixture.shops.len(), sim.base_url());

    println!("==> kubectl apply -f {}", args.manifests.display());
    print!(
        "{}",
        kubectl(&cp, &["apply", "-f", &args.manifests.to_string_lossy()])?
    );

    println!("==> running the controller");
    let client = cp.admin_client().await?;
    let shopify = ShopifyClient::new(ClientConfig {
        base_url: sim.base_url(),
        ..ClientConfig::default()
    })?;
    let mut settings = Settings::with_resync(Duration::from_secs(30));
    // Where the install URL of a move to another app points (the demo
    // serves no public endpoints: the install is simulated).
    settings.public_url = Some("https://shopify-operator.example".parse()?);
    let ctx = Arc::new(Context::new(client.clone(), shopify.clone(), settings));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(controller::run(ctx, async {
        let _ = stop_rx.await;
    }));

    let shops: Api<ShopifyShop> = Api::namespaced(client.clone(), "oms");
    println!("==> kubectl wait --for=condition=Ready shopifyshop --all -n oms");
    let t = Instant::now();
    print!(
        "{}",
        kubectl(
            &cp,
            &[
                "wait",
                "--for=condition=Ready",
                "shopifyshop",
                "--all",
                "-n",
                "oms",
                "--timeout=120s"
            ]
        )?
    );
    wait_all_ready(&shops, "oms.popsockets.com", Duration::from_secs(60)).await?;
    println!("    all shops Ready in {:.1}s", t.elapsed().as_secs_f64());
    print!("{}", kubectl(&cp, &["get", "shopifyshops", "-n", "oms"])?);
    // The three shops are one app's: it counts them.
    kubectl(
        &cp,
        &[
            "wait",
            "--for=jsonpath={.status.shopsReady}=3/3",
            "shopifyapp/oms",
            "-n",
            "oms",
            "--timeout=60s",
        ],
    )?;
    print!("{}", kubectl(&cp, &["get", "shopifyapps", "-n", "oms"])?);
    // Shopify's calendar moved on since the Rails app pinned its version.
    print!("{}", events(&cp, "ApiVersionFellForward")?);
    let first = &fixture.shops[0].domain;
    println!("    shopify-sim's view of {first}:");
    print_subscriptions(&sim, first);
    let mutations: u64 = fixture
        .shops
        .iter()
        .map(|s| sim.counters(&s.domain).mutations)
        .sum();
    println!(
        "    cutover at the same host: {mutations} Shopify mutations (the Rails app's subscriptions were adopted; \
         the two new ones of {first} created)"
    );

    println!("==> changing the Ingress host to {}", args.new_host);
    sim.reset_counters();
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "oms");
    let patch = serde_json::json!({"spec": {"rules": [{"host": args.new_host, "http": {"paths": [{"path": "/webhooks",
        "pathType": "Prefix", "backend": {"service": {"name": "oms", "port": {"number": 80}}}}]}}]}});
    ingresses
        .patch("oms", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let took = wait_all_ready(&shops, &args.new_host, Duration::from_secs(60)).await?;
    println!("    every shop repointed and Ready in {:.2}s", took.as_secs_f64());
    print!("{}", kubectl(&cp, &["get", "shopifyshops", "-n", "oms"])?);
    println!("    shopify-sim's view of {first} now:");
    print_subscriptions(&sim, first);
    for shop in &fixture.shops {
        let c = sim.counters(&shop.domain);
        let subs = sim.subscriptions(&shop.domain);
        let at_new = subs.iter().filter(|s| s.address.contains(&args.new_host)).count();
        println!(
            "    {}: {} requests ({} mutations), {at_new}/{} subscriptions at the new host",
            shop.domain,
            c.requests,
            c.mutations,
            subs.len()
        );
    }
    print!("{}", events(&cp, "SubscriptionsUpdated")?);

    let old_client = fixture
        .app
        .as_ref()
        .map(|a| a.client_id.clone())
        .unwrap_or_default();
    handover::run(&cp, &client, &sim, &shopify, &old_client).await?;

    if !args.exit {
        let kubeconfig = cp.dir.join("demo.kubeconfig");
        std::fs::copy(cp.admin_kubeconfig(), &kubeconfig)?;
        println!(
            "==> running; try: KUBECONFIG={} kubectl describe shop -n oms online",
            kubeconfig.display()
        );
        println!("    shopify-sim admin API: {}", sim.admin_url());
        shopify_operator::run::shutdown_signal().await;
    }
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), controller).await;
    println!("==> done");
    Ok(())
}
