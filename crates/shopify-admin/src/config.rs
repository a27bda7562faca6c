//! [`ClientConfig`] (with its defaults) and [`ClientStats`].
//!
//! No network access.

use std::time::Duration;

/// Shopify's documented maximum page size for connections.
pub const MAX_PAGE_SIZE: u32 = 250;

/// Points a mutation costs on Shopify (used until the shop reports costs).
pub const DEFAULT_MUTATION_COST: f64 = 10.0;

/// Client settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Admin API root template with a `{shop}` placeholder, e.g.
    /// `https://{shop}` (default) or `http://127.0.0.1:8089/{shop}`.
    pub base_url: String,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (connect, send, response body).
    pub request_timeout: Duration,
    /// Retries after transient failures, for documents that may be retried.
    pub max_retries: u32,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Re-sends after throttled responses before giving up with `Throttled`.
    pub max_throttle_retries: u32,
    /// Longest wait the client sleeps for a shop's bucket or a throttle;
    /// a longer one is returned as `Throttled { retry_after }`.
    pub max_throttle_wait: Duration,
    /// First backoff delay after a transient failure (doubles each retry,
    /// with jitter).
    pub retry_base_delay: Duration,
    /// Cap of the backoff delay.
    pub retry_max_delay: Duration,
    /// Reject shop names that are not `*.myshopify.com` (the token is only
    /// ever sent to the shop's own domain). Turn off only for simulators.
    pub require_myshopify_domain: bool,
    /// `first` of listing pages, at most 250.
    pub page_size: u32,
    /// Upper bound on pages per listing (guards against a looping cursor).
    pub max_pages: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: "https://{shop}".into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 3,
            user_agent: concat!("shopify-operator/", env!("CARGO_PKG_VERSION")).into(),
            max_throttle_retries: 5,
            max_throttle_wait: Duration::from_secs(60),
            retry_base_delay: Duration::from_millis(200),
            retry_max_delay: Duration::from_secs(5),
            require_myshopify_domain: true,
            page_size: MAX_PAGE_SIZE,
            max_pages: 1000,
        }
    }
}

/// Counters over the client's lifetime (all shops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientStats {
    /// HTTP requests sent.
    pub requests: u64,
    /// Throttled responses received.
    pub throttled: u64,
    /// Transient failures (5xx, timeouts, connection errors).
    pub transient_failures: u64,
    /// Re-sends (after throttles and transient failures).
    pub retries: u64,
}
