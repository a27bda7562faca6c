//! `shopify-operator run`: flags, logging, start-up checks and the process
//! lifecycle (SIGTERM/SIGINT → graceful stop). Talks to the apiserver.

use std::time::Duration;

use clap::{Args, ValueEnum};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client, CustomResourceExt};

use std::sync::Arc;

use kube_lease_manager::LeaseManagerBuilder;

use crate::controller::{self, Context, Settings};
use crate::crd::ShopifyShop;
use crate::http::Health;
use shopify_admin::{ClientConfig, ShopifyClient};

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

    /// Reconcile only the ShopifyShops this label selector matches, so
    /// several operator Deployments (each with its own Lease) share the
    /// shops: `sharding.shopify-operator.dev/key=shard-1`, and for the
    /// shops without the label `!sharding.shopify-operator.dev/key`
    /// (Flux's convention). Default: every shop.
    #[arg(long, env = "WATCH_LABEL_SELECTOR")]
    pub watch_label_selector: Option<String>,

    /// Reconciles running at once (each is mostly waiting on Shopify).
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = 64)]
    pub max_concurrent_reconciles: u16,

    /// Timeout of one Shopify request (connect + response).
    #[arg(long, env = "SHOPIFY_REQUEST_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub shopify_request_timeout: Duration,

    /// Consecutive failed Jobs of one sync that make `SyncHealthy` False.
    #[arg(long, env = "SYNC_FAILURE_THRESHOLD", default_value_t = 3)]
    pub sync_failure_threshold: u32,

    /// Shop domains (or globs with `*`, e.g. `ps-*.myshopify.com`) the
    /// operator may send tokens to, comma-separated — the original system's
    /// `allowable_sites`. Shops outside it get `Ready=False` `ShopNotAllowed`.
    /// Empty: every shop.
    #[arg(long, env = "ALLOWED_SHOPS", value_delimiter = ',')]
    pub allowed_shops: Vec<String>,

    /// Refresh expiring access tokens this long before their `expires-at`.
    #[arg(long, env = "TOKEN_REFRESH_AHEAD", default_value = "5m", value_parser = humantime::parse_duration)]
    pub token_refresh_ahead: Duration,

    /// Webhooks move to a new host only if its TLS certificate is valid for
    /// at least this long (the certificate gate).
    #[arg(long, env = "CERTIFICATE_MARGIN", default_value = "24h", value_parser = humantime::parse_duration)]
    pub certificate_margin: Duration,

    /// Address of the HTTP server (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: std::net::SocketAddr,

    /// Elect a leader through a `coordination.k8s.io` Lease, so several
    /// replicas can run and only one reconciles.
    #[arg(long, env = "LEADER_ELECT", default_value_t = false, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Name of the Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "shopify-operator")]
    pub lease_name: String,

    /// Namespace of the Lease (the operator's own; `POD_NAMESPACE` in a pod).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long a leader's Lease lasts without renewal; a standby takes
    /// over within about this long after the leader dies.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,

    /// The operator's own public URL, e.g. `https://shopify-operator.example.com`.
    /// Enables OAuth install/reinstall at `/oauth/install?shop=` (the
    /// callback is `{public-url}/oauth/callback`, to be allowed as a
    /// redirect URL in the app's configuration).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// Subscribe the operator's own `app/uninstalled` endpoint
    /// (`{public-url}/shopify/webhooks/app_uninstalled`) on every shop that
    /// has `spec.app` and `spec.webhooks`, beside the spec's topics. Needs an
    /// `https` `--public-url`.
    #[arg(long, env = "SUBSCRIBE_APP_UNINSTALLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub subscribe_app_uninstalled: bool,
    /// Ask Shopify for expiring offline tokens (with a refresh token) when
    /// exchanging an OAuth code. Public apps must, from 2027-01-01.
    #[arg(long, env = "OAUTH_EXPIRING", default_value_t = true, action = clap::ArgAction::Set)]
    pub oauth_expiring: bool,
    /// How long a merchant has from `/oauth/install` to the callback.
    #[arg(long, env = "OAUTH_STATE_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub oauth_state_ttl: Duration,
    /// App Secret (`namespace/name`, keys `client-id`, `client-secret`) for
    /// OAuth installs of shops that have no ShopifyShop yet but are named by
    /// `--allowed-shops`; their token goes to `{shop}-shopify-token` there.
    #[arg(long, env = "DEFAULT_APP_SECRET", value_parser = parse_namespaced)]
    pub default_app_secret: Option<(String, String)>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The host (and port, if any) Shopify delivers `app/uninstalled` to.
fn uninstall_host(public_url: Option<&url::Url>) -> Result<String, RunError> {
    let url =
        public_url.ok_or_else(|| RunError::Flags("--subscribe-app-uninstalled needs --public-url".into()))?;
    // Shopify delivers only over HTTPS.
    match (url.scheme(), url.host_str()) {
        ("https", Some(host)) => Ok(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }),
        _ => Err(RunError::Flags(format!(
            "--subscribe-app-uninstalled needs an https --public-url, got {url}"
        ))),
    }
}

fn parse_namespaced(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => Err(format!("expected namespace/name, got {s:?}")),
    }
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
    Shopify(#[source] shopify_admin::ShopifyError),
    /// Flags that do not fit together.
    #[error("invalid flags: {0}")]
    Flags(String),
    /// The HTTP server could not listen.
    #[error("cannot serve HTTP: {0}")]
    Http(#[source] std::io::Error),
    /// Leader election failed or the Lease was lost.
    #[error("leader election: {0}")]
    Lease(String),
    /// The CRD is not installed (or not readable with our permissions).
    #[error("the CRD {name} is not installed (apply crds/): {source}")]
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
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Checks that the operator's CRDs (ShopifyShop, ShopifyApp) are served, so
/// a missing install fails fast with a clear message instead of a watch
/// that errors forever. (`helm upgrade` does not add CRDs: the ShopifyApp
/// CRD is applied by hand once when upgrading from a release without it.)
pub async fn check_crd(client: &Client) -> Result<(), RunError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in [ShopifyShop::crd_name(), crate::crd::ShopifyApp::crd_name()] {
        crds.get(name).await.map_err(|source| RunError::CrdMissing {
            name: name.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Checks `--watch-label-selector` with the apiserver, which parses it the
/// way the watch will: a typo fails the start, not every watch after it.
async fn check_selector(client: &Client, namespace: Option<&str>, selector: &str) -> Result<(), RunError> {
    let shops: Api<ShopifyShop> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let params = kube::api::ListParams::default().labels(selector).limit(1);
    match shops.list_metadata(&params).await {
        Err(kube::Error::Api(e)) if e.code == 400 => Err(RunError::Flags(format!(
            "--watch-label-selector {selector:?}: {}",
            e.message
        ))),
        // Other errors (RBAC: a namespaced operator may not list cluster-wide)
        // are the watch's to report.
        _ => Ok(()),
    }
}

/// Runs the operator until SIGTERM or SIGINT.
///
/// With leader election, the process serves `/healthz` and `/metrics` at
/// once but reconciles (and reports ready) only while it holds the Lease;
/// losing the Lease mid-flight ends the process rather than risk a second
/// writer, and Kubernetes restarts it as a candidate.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Client)?;
    check_crd(&client).await?;
    if let Some(selector) = &args.watch_label_selector {
        check_selector(&client, args.namespace.as_deref(), selector).await?;
    }
    tracing::info!(
        shopify_base_url = %args.shopify_base_url,
        resync_interval = ?args.resync_interval,
        namespace = args.namespace.as_deref().unwrap_or("(all)"),
        leader_elect = args.leader_elect,
        "shopify-operator started"
    );
    let shopify = ShopifyClient::new(ClientConfig {
        base_url: args.shopify_base_url.clone(),
        request_timeout: args.shopify_request_timeout,
        ..ClientConfig::default()
    })
    .map_err(RunError::Shopify)?;
    let uninstall_host = if args.subscribe_app_uninstalled {
        Some(uninstall_host(args.public_url.as_ref())?)
    } else {
        None
    };
    let settings = Settings {
        resync_interval: args.resync_interval,
        concurrency: args.max_concurrent_reconciles,
        namespace: args.namespace.clone(),
        sync_failure_threshold: args.sync_failure_threshold,
        allowed_shops: args.allowed_shops.clone(),
        refresh_ahead: args.token_refresh_ahead,
        uninstall_host,
        certificate_margin: args.certificate_margin,
        label_selector: args.watch_label_selector.clone().filter(|s| !s.trim().is_empty()),
        public_url: args.public_url.clone(),
    };
    let public = crate::public::Public::new(
        client.clone(),
        shopify.clone(),
        crate::public::PublicConfig {
            public_url: args.public_url.clone(),
            expiring: args.oauth_expiring,
            state_ttl: args.oauth_state_ttl,
            allowed_shops: args.allowed_shops.clone(),
            namespace: args.namespace.clone(),
            default_app: args.default_app_secret.clone(),
            nonce_namespace: args
                .lease_namespace
                .clone()
                .or_else(|| args.namespace.clone())
                .unwrap_or_else(|| "default".into()),
        },
    );
    let ctx = Arc::new(Context::new(client.clone(), shopify, settings));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let health = Health {
        metrics: ctx.metrics.clone(),
        ready: ctx.ready.clone(),
    };
    let (addr, http) = crate::http::serve(
        args.http_addr,
        health,
        crate::public::router(Arc::new(public)),
        stopped(),
    )
    .await
    .map_err(RunError::Http)?;
    tracing::info!(%addr, oauth = args.public_url.is_some(), "serving /healthz, /readyz, /metrics, /oauth and {}", crate::names::UNINSTALLED_PATH);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    let lease = if args.leader_elect {
        let identity =
            std::env::var("POD_NAME").unwrap_or_else(|_| format!("{}-{}", hostname(), std::process::id()));
        let namespace = args.lease_namespace.clone().unwrap_or_else(|| "default".into());
        let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(&namespace)
            .with_identity(&identity)
            .with_duration(args.lease_duration.as_secs().max(2))
            .with_grace(args.lease_duration.as_secs().max(2) / 3)
            .build()
            .await
            .map_err(|e| RunError::Lease(e.to_string()))?;
        let (mut leader, task) = manager.watch().await;
        tracing::info!(%identity, lease = %args.lease_name, %namespace, "waiting to become the leader");
        // A healthy standby is ready: it can take over. (Were it not, two
        // replicas would never count as available and rollouts would hang.)
        ctx.ready.store(true, std::sync::atomic::Ordering::Relaxed);
        let became = tokio::select! {
            r = leader.wait_for(|l| *l) => Some(r.map(|_| ()).map_err(|e| RunError::Lease(e.to_string()))),
            () = stopped() => None,
        };
        match became {
            Some(r) => r?,
            None => {
                drop(leader);
                let _ = task.await;
                let _ = http.await;
                return Ok(());
            }
        }
        tracing::info!(%identity, "became the leader");
        ctx.metrics.leader.set(1);
        Some((leader, task))
    } else {
        None
    };

    if !args.leader_elect {
        ctx.metrics.leader.set(1);
    }
    let controller = controller::run(ctx, stopped());
    match lease {
        None => controller.await,
        Some((mut leader, task)) => {
            tokio::select! {
                () = controller => {
                    // Stopping: give the Lease back so a standby takes over at once.
                    drop(leader);
                    let _ = task.await;
                }
                _ = async { leader.wait_for(|l| !*l).await.map(|_| ()) } => {
                    tracing::error!("lost the leader lease; exiting so that only one replica writes");
                    return Err(RunError::Lease("lost the leader lease".into()));
                }
            }
        }
    }
    let _ = http.await;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "shopify-operator".into())
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

#[cfg(test)]
mod tests {
    use super::uninstall_host;

    #[test]
    fn the_uninstall_subscription_needs_an_https_public_url() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(uninstall_host(None).is_err());
        assert!(uninstall_host(Some(&url("http://operator.example"))).is_err());
        assert_eq!(
            uninstall_host(Some(&url("https://operator.example/"))).unwrap(),
            "operator.example"
        );
        assert_eq!(
            uninstall_host(Some(&url("https://operator.example:8443"))).unwrap(),
            "operator.example:8443"
        );
    }
}
