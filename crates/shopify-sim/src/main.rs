//! shopify-sim: runs the Shopify Admin API simulator as a standalone server
//! for demos and rehearsals (tests start it in-process instead).
//!
//! `shopify-sim --fixture examples/sim-seed.yaml` serves the seed shops on
//! 127.0.0.1:8089; every flag can also come from a `SIM_*` environment
//! variable. Logs one line per request (shop, version, operations, status,
//! cost, duration — never a token) and stops gracefully on Ctrl-C / SIGTERM.

use clap::Parser;
use shopify_sim::{self as sim, Fixture, SimConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Simulator of Shopify's GraphQL Admin API (webhook subscriptions, shop,
/// access scopes, OAuth tokens) with cost-based throttling and fault injection.
#[derive(Debug, Parser)]
#[command(name = "shopify-sim", version)]
struct Args {
    /// YAML or JSON fixture with shops, tokens, subscriptions and app credentials.
    #[arg(long, env = "SIM_FIXTURE")]
    fixture: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "SIM_LISTEN", default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// Latency added to each shop request, in milliseconds.
    #[arg(long, env = "SIM_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Cost bucket size per shop.
    #[arg(long, env = "SIM_BUCKET_SIZE", default_value_t = 1000.0)]
    bucket_size: f64,
    /// Cost points restored per second per shop (100 = Standard plan).
    #[arg(long, env = "SIM_RESTORE_RATE", default_value_t = 100.0)]
    restore_rate: f64,
    /// Accept http:// and loopback/private subscription addresses (Shopify does not).
    #[arg(long, env = "SIM_ALLOW_INSECURE_ADDRESSES")]
    allow_insecure_addresses: bool,
    /// Comma-separated API versions to serve, pinning the set (default:
    /// Shopify's calendar for today, each stable version for 12 months after
    /// its release, plus unstable).
    #[arg(long, env = "SIM_API_VERSIONS", value_delimiter = ',')]
    api_versions: Vec<String>,
    /// API version reported as `apiVersion.handle` of subscriptions.
    #[arg(long, env = "SIM_WEBHOOK_API_VERSION", default_value = "2025-07")]
    webhook_api_version: String,
    /// First API version whose schema has `uri` instead of `callbackUrl`/`endpoint`.
    #[arg(long, env = "SIM_URI_SINCE", default_value = sim::DEFAULT_URI_SINCE)]
    uri_since: String,
    /// First API version whose webhook subscriptions have `metafields`.
    #[arg(long, env = "SIM_METAFIELDS_SINCE", default_value = sim::DEFAULT_METAFIELDS_SINCE)]
    metafields_since: String,
    /// HTTP status of THROTTLED answers (Shopify's is unconfirmed: 200 or 429).
    #[arg(long, env = "SIM_THROTTLED_STATUS", default_value_t = 200)]
    throttled_status: u16,
    /// PEM CA certificates to trust for webhook deliveries (a staging OMS
    /// behind a private CA).
    #[arg(long, env = "SIM_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Instead of serving: ask the simulator running at --listen to send
    /// one signed delivery of TOPIC to every HTTP(S) subscription of SHOP for
    /// it, print what each endpoint answered, and exit (1 if any was not 2xx;
    /// Pub/Sub and EventBridge subscriptions are skipped).
    #[arg(long, value_name = "SHOP:TOPIC")]
    deliver: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--deliver SHOP:TOPIC`: one call to a running simulator's admin API.
async fn deliver(listen: SocketAddr, what: &str) -> Result<(), String> {
    let (shop, topic) = what
        .split_once(':')
        .ok_or_else(|| format!("--deliver {what:?}: expected SHOP:TOPIC"))?;
    let resp = reqwest::Client::new()
        .post(format!("http://{listen}/_sim/deliveries"))
        .json(&serde_json::json!({"shop": shop, "topic": topic}))
        .send()
        .await
        .map_err(|e| format!("no simulator at {listen}: {e}"))?;
    let code = resp.status();
    let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    let delivered = body["deliveries"].as_array().is_some_and(|d| {
        d.iter()
            .filter(|d| d.get("skipped").is_none())
            .all(|d| d["status"].as_u64().is_some_and(|s| (200..300).contains(&s)))
    });
    if code.is_success() && delivered {
        Ok(())
    } else {
        Err(format!("not every delivery was answered 2xx ({code})"))
    }
}

async fn run(args: Args) -> Result<(), String> {
    if let Some(what) = &args.deliver {
        return deliver(args.listen, what).await;
    }
    let fixture = match &args.fixture {
        Some(path) => Fixture::from_file(path)?,
        None => Fixture::default(),
    };
    let shops = fixture.shops.len();
    let mut cfg = SimConfig {
        listen: args.listen,
        allow_insecure_addresses: args.allow_insecure_addresses,
        latency: Duration::from_millis(args.latency_ms),
        bucket_size: args.bucket_size,
        restore_rate: args.restore_rate,
        fixture,
        webhook_api_version: args.webhook_api_version,
        uri_since: args.uri_since,
        metafields_since: args.metafields_since,
        throttled_http_status: args.throttled_status,
        ca_file: args.ca_file,
        ..SimConfig::default()
    };
    cfg.api_versions = if args.api_versions.is_empty() {
        sim::calendar(chrono::Utc::now().date_naive())
    } else {
        args.api_versions
    };
    let sim = sim::start(cfg)
        .await
        .map_err(|e| format!("starting on {}: {e}", args.listen))?;
    tracing::info!(
        addr = %sim.addr(),
        shops,
        base_url = %sim.base_url(),
        admin_url = %sim.admin_url(),
        "shopify-sim listening"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
