//! `shopify-operator run`: flags, logging, start-up checks and the process
//! lifecycle (SIGTERM/SIGINT → graceful stop). Talks to the apiserver.

use std::time::Duration;

use clap::{Args, ValueEnum};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client, CustomResourceExt};

use std::sync::Arc;

use crate::controller::{self, Context, Settings};
use crate::crd::ShopifyShop;
use crate::shopify::{ClientConfig, ShopifyClient};

/// Flags of `shopify-operator run`; each also reads an env var.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// URL template of a shop's Admin API root; `{shop}` is replaced by the
    /// shop's domain. Tests and rehearsals point it at shopify-sim, e.g.
    /// `http://127.0.0.1:8089/{shop}`.
    #[arg(long, env = "SHOPIFY_BASE_URL", default_value = "https://{shop}")]
    pub shopify_base_url: String,

    /// How often every shop is re-listed on Shopify to find drift (e.g. a
    /// subscription Shopify deleted after failed deliveries): `30s`, `5m`.
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub resync_interval: Duration,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// Reconciles running at once (each is mostly waiting on Shopify).
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = 64)]
    pub max_concurrent_reconciles: u16,

    /// Timeout of one Shopify request (connect + response).
    #[arg(long, env = "SHOPIFY_REQUEST_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub shopify_request_timeout: Duration,

    /// Consecutive failed Jobs of one sync that make `SyncHealthy` False.
    #[arg(long, env = "SYNC_FAILURE_THRESHOLD", default_value_t = 3)]
    pub sync_failure_threshold: u32,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Errors that stop the operator process.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No usable kubeconfig or in-cluster config.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The Shopify client could not be configured (bad base URL).
    #[error("invalid Shopify settings: {0}")]
    Shopify(#[source] crate::shopify::ShopifyError),
    /// The CRD is not installed (or not readable with our permissions).
    #[error("the ShopifyShop CRD {name} is not installed (apply crds/shopifyshop.yaml): {source}")]
    CrdMissing {
        /// The CRD's name.
        name: String,
        /// What the apiserver said.
        #[source]
        source: kube::Error,
    },
}

/// Sets up `tracing` with the level from `RUST_LOG` (default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Checks that the ShopifyShop CRD is served, so a missing install fails
/// fast with a clear message instead of a watch that errors forever.
pub async fn check_crd(client: &Client) -> Result<(), RunError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = ShopifyShop::crd_name().to_string();
    crds.get(&name)
        .await
        .map_err(|source| RunError::CrdMissing { name, source })?;
    Ok(())
}

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Client)?;
    check_crd(&client).await?;
    tracing::info!(
        shopify_base_url = %args.shopify_base_url,
        resync_interval = ?args.resync_interval,
        namespace = args.namespace.as_deref().unwrap_or("(all)"),
        "shopify-operator started"
    );
    let shopify = ShopifyClient::new(ClientConfig {
        base_url: args.shopify_base_url.clone(),
        request_timeout: args.shopify_request_timeout,
        ..ClientConfig::default()
    })
    .map_err(RunError::Shopify)?;
    let settings = Settings {
        resync_interval: args.resync_interval,
        concurrency: args.max_concurrent_reconciles,
        namespace: args.namespace.clone(),
        sync_failure_threshold: args.sync_failure_threshold,
    };
    let ctx = Arc::new(Context::new(client, shopify, settings));
    controller::run(ctx, async {
        shutdown_signal().await;
        tracing::info!("shutting down");
    })
    .await;
    Ok(())
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
