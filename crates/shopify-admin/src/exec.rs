//! How the client sends one GraphQL document: pacing by the shop's cost
//! bucket, the HTTP exchange, classification and the retry rules. This
//! module touches the network.
//!
//! # Retries: what is safe and why
//! * **Reads** (listing, token info) have no effect, so they are retried on
//!   transient failures (5xx, `INTERNAL_SERVER_ERROR`, timeouts, connection
//!   errors) a bounded number of times with exponential backoff and jitter.
//! * **Updates and deletes by id** are idempotent in effect: re-sending sets
//!   the same address again, or deletes an already-deleted id (which then
//!   reports a "does not exist" userError; `ResponseMeta::
//!   resent_after_unknown_outcome` flags that case). They are retried like reads.
//! * A document containing a **create** is not idempotent: if the server
//!   applied it and the response was lost, sending it again makes a second
//!   subscription (or a "taken" error that hides the success). When such a
//!   document fails after it may have reached the server — a timeout, a
//!   connection reset after sending, or any 5xx (the server may have committed
//!   before failing) — the client returns `Transient { outcome_unknown: true }`
//!   and the caller re-lists before planning again. A connect error (nothing
//!   was sent) is retried.
//! * **Throttled** responses (`THROTTLED` or HTTP 429) mean nothing was
//!   executed, so every document — creates included — is re-sent after the
//!   advised wait, a bounded number of times.
//!
//! # Cost awareness
//! Each shop has a [`Bucket`] estimate fed by `extensions.cost`. Before
//! sending, a request waits until the estimate holds its expected
//! `requestedQueryCost` (Shopify only admits a query when the bucket can pay
//! the requested cost) and charges the estimate its expected
//! `actualQueryCost` — both learned per operation from earlier responses —
//! so concurrent requests of one shop queue behind each other without
//! assuming every listing costs its worst case. A request that fails without
//! a cost report gives its points back. After `THROTTLED`/429 the shop is
//! blocked for the advised wait. The per-shop state sits in one
//! `std::sync::Mutex` that is only held for arithmetic, never across an
//! `.await`, so one shop's wait never delays another shop. A wait longer
//! than `ClientConfig::max_throttle_wait` is returned as `Throttled` instead
//! of slept, so a controller worker is not pinned for minutes.
//!
//! # Versions
//! `X-Shopify-Api-Version` and `X-Shopify-Api-Deprecated-Reason` are recorded
//! per shop and per call. Documents are built for the version the shop last
//! served, and a validation error under a fall-forward to a version with
//! different fields is answered by rebuilding the document once for it
//! (nothing ran: validation precedes execution).
//!
//! # Secrets
//! The token goes only into the `X-Shopify-Access-Token` header (marked
//! sensitive) of requests to `shop_root(shop)`. Redirects are never followed
//! (reqwest would forward custom headers to the new host). Every error
//! message is scrubbed of the token before it is returned.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::RngExt as _;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::bucket::{Bucket, QueryCost};
use super::client::ShopifyClient;
use super::error::ShopifyError;
use super::graphql::{ApiVersion, Document};
use super::response::{GraphqlOk, classify};
use super::token::AccessToken;
use super::types::{ResponseMeta, ServedVersion};

/// Whether a document may be re-sent after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Safety {
    /// No effect: always retry.
    Read,
    /// Updates/deletes by id: retry.
    IdempotentWrite,
    /// Contains a create: never re-send once it may have been received.
    Create,
}

/// What a request is, for cost estimates and logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    pub name: &'static str,
    /// Units the cost scales with (changes in a mutation document; else 1).
    pub units: f64,
    /// Cost per unit until the shop has reported one.
    pub default_unit_cost: f64,
}

enum SendFailure {
    /// Nothing reached the server (connect failed).
    NotSent(String),
    /// The request may have reached the server.
    Unknown(String),
}

/// An error and its causes, `: `-joined (reqwest hides the useful part in
/// the causes).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

impl ShopifyClient {
    /// Reserves the estimated cost in the shop's bucket and returns the wait
    /// and the points charged to the estimate (or `Throttled` when the wait
    /// exceeds `max_throttle_wait`; nothing is reserved then).
    pub(super) fn reserve(&self, shop: &str, op: Op) -> Result<(Duration, f64), ShopifyError> {
        let max_wait = self.inner.cfg.max_throttle_wait;
        let now = Instant::now();
        self.with_shop(shop, |s| {
            let blocked = s
                .blocked_until
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or_default();
            let unit = s.unit_cost.get(op.name).unwrap_or(op.default_unit_cost);
            let requested = unit * op.units;
            let charge = s.unit_actual.get(op.name).map_or(requested, |a| a * op.units);
            let bucket_wait = s
                .bucket
                .as_ref()
                .map(|b| b.wait_for(requested, now))
                .unwrap_or_default();
            let wait = blocked.max(bucket_wait);
            if wait > max_wait {
                return Err(ShopifyError::Throttled { retry_after: wait });
            }
            if let Some(b) = s.bucket.as_mut() {
                b.reserve(requested, charge, now);
            }
            s.requests += 1;
            Ok((wait, charge))
        })
    }

    /// Returns a reservation for a request that got no cost report.
    pub(super) fn refund(&self, shop: &str, points: f64) {
        let now = Instant::now();
        self.with_shop(shop, |s| {
            if let Some(b) = s.bucket.as_mut() {
                b.refund(points, now);
            }
        });
    }

    pub(super) fn observe(&self, shop: &str, op: Op, cost: Option<&QueryCost>, meta: &mut ResponseMeta) {
        let Some(cost) = cost else { return };
        meta.requested_cost += cost.requested.unwrap_or(0.0);
        meta.actual_cost += cost.actual.unwrap_or(0.0);
        if cost.throttle.is_some() {
            meta.throttle_status = cost.throttle;
        }
        let now = Instant::now();
        self.with_shop(shop, |s| {
            if let Some(t) = cost.throttle {
                match s.bucket.as_mut() {
                    Some(b) => b.observe(t, now),
                    None => s.bucket = Some(Bucket::from_status(t, now)),
                }
            }
            let units = op.units.max(1.0);
            if let Some(r) = cost.requested.filter(|r| *r > 0.0) {
                s.unit_cost.insert(op.name, r / units);
            }
            if let Some(a) = cost.actual.filter(|a| *a >= 0.0) {
                s.unit_actual.insert(op.name, a / units);
            }
        });
    }

    /// The version documents are built for: the one the shop last served
    /// for this requested version, else the requested one.
    pub(super) fn schema_version(
        &self,
        shop: &str,
        requested: ApiVersion,
        requested_str: &str,
    ) -> ApiVersion {
        self.with_shop(shop, |s| {
            s.served
                .as_ref()
                .filter(|sv| sv.requested == requested_str)
                .and_then(|sv| sv.served.parse().ok())
                .unwrap_or(requested)
        })
    }

    pub(super) fn note_versions(
        &self,
        shop: &str,
        headers: &HeaderMap,
        meta: &mut ResponseMeta,
    ) -> Option<String> {
        let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let served = h("x-shopify-api-version");
        let reason = h("x-shopify-api-deprecated-reason");
        if reason.is_some() {
            meta.deprecated_reason.clone_from(&reason);
        }
        let served = served?;
        meta.served_version = Some(served.clone());
        let sv = ServedVersion {
            requested: meta.requested_version.clone(),
            served,
            deprecated_reason: reason,
            observed_at: chrono::Utc::now(),
        };
        self.with_shop(shop, |s| {
            let changed = s.served.as_ref().is_none_or(|old| {
                old.served != sv.served || old.deprecated_reason != sv.deprecated_reason
            });
            if changed && (sv.fell_forward() || sv.deprecated_reason.is_some()) {
                tracing::warn!(shop, requested = %sv.requested, served = %sv.served,
                    deprecated_reason = ?sv.deprecated_reason, "Shopify served another API version or flagged a deprecation");
            }
            s.served = Some(sv);
        });
        meta.served_version.clone()
    }

    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let cfg = &self.inner.cfg;
        let exp = cfg
            .retry_base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(cfg.retry_max_delay);
        let ms = exp.as_millis() as u64;
        let jittered = if ms >= 2 {
            rand::rng().random_range(ms / 2..=ms)
        } else {
            ms
        };
        Duration::from_millis(jittered)
    }

    async fn send(
        &self,
        url: &str,
        token: &HeaderValue,
        body: Vec<u8>,
    ) -> Result<(u16, HeaderMap, Vec<u8>), SendFailure> {
        let resp = self
            .inner
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header("X-Shopify-Access-Token", token.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let msg = error_chain(&e);
                if e.is_connect() || e.is_builder() {
                    SendFailure::NotSent(msg)
                } else {
                    SendFailure::Unknown(msg)
                }
            })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SendFailure::Unknown(format!("reading response: {}", error_chain(&e))))?;
        Ok((status, headers, body.to_vec()))
    }

    /// Sends one document with the retry rules in the module docs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run(
        &self,
        shop: &str,
        version: ApiVersion,
        token: &AccessToken,
        build: &(dyn Fn(ApiVersion) -> Document + Sync),
        op: Op,
        safety: Safety,
        meta: &mut ResponseMeta,
    ) -> Result<GraphqlOk, ShopifyError> {
        let cfg = &self.inner.cfg;
        let url = format!(
            "{}/admin/api/{}/graphql.json",
            self.shop_root(shop),
            meta.requested_version
        );
        // Build for the version the shop actually serves: after a fall-forward
        // across a schema change the requested version's fields would not
        // validate.
        let mut schema = self.schema_version(shop, version, &meta.requested_version);
        let mut rebuilt = false;
        let mut header = HeaderValue::from_str(token.expose()).map_err(|_| {
            ShopifyError::InvalidInput("access token contains characters not allowed in a header".into())
        })?;
        header.set_sensitive(true);
        let mut body = build(schema).body();
        let mut transient_tries = 0u32;
        let mut throttle_tries = 0u32;
        loop {
            let (wait, charged) = self.reserve(shop, op)?;
            if !wait.is_zero() {
                tracing::debug!(
                    shop,
                    op = op.name,
                    wait_ms = wait.as_millis() as u64,
                    "waiting for the shop's cost bucket"
                );
                tokio::time::sleep(wait).await;
                meta.waited += wait;
            }
            meta.requests += 1;
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            let (message, not_sent) = match self.send(&url, &header, body.clone()).await {
                Ok((status, headers, bytes)) => {
                    let served = self.note_versions(shop, &headers, meta);
                    let retry_after = headers.get("retry-after").and_then(|v| v.to_str().ok());
                    let cl = classify(status, retry_after, &bytes);
                    if cl.cost.is_some() {
                        self.observe(shop, op, cl.cost.as_ref(), meta);
                    } else {
                        self.refund(shop, charged);
                    }
                    tracing::debug!(shop, op = op.name, status, requested_cost = ?cl.cost.and_then(|c| c.requested), ok = cl.result.is_ok(), "shopify graphql");
                    match cl.result {
                        Ok(ok) => return Ok(ok),
                        Err(ShopifyError::Throttled { retry_after }) => {
                            self.inner.throttled.fetch_add(1, Ordering::Relaxed);
                            if let Some(QueryCost {
                                requested: Some(r),
                                throttle: Some(t),
                                ..
                            }) = cl.cost
                                && r > t.maximum_available
                            {
                                return Err(ShopifyError::QueryTooExpensive {
                                    requested: r,
                                    maximum: t.maximum_available,
                                });
                            }
                            throttle_tries += 1;
                            if throttle_tries > cfg.max_throttle_retries
                                || retry_after > cfg.max_throttle_wait
                            {
                                return Err(ShopifyError::Throttled { retry_after });
                            }
                            tracing::info!(
                                shop,
                                op = op.name,
                                retry_after_ms = retry_after.as_millis() as u64,
                                "throttled by Shopify; waiting"
                            );
                            let until = Instant::now() + retry_after;
                            self.with_shop(shop, |s| {
                                s.blocked_until = Some(s.blocked_until.map_or(until, |b| b.max(until)));
                            });
                            meta.retries += 1;
                            self.inner.retries.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Err(ShopifyError::Transient { message, .. }) => (message, false),
                        Err(ShopifyError::Protocol(m)) => {
                            // A validation error under a fall-forward: nothing
                            // ran; rebuild once for the served schema.
                            match served.and_then(|s| s.parse::<ApiVersion>().ok()) {
                                Some(sv) if !rebuilt && sv.features() != schema.features() => {
                                    tracing::info!(shop, op = op.name, served = %sv, "rebuilding the document for the served API version");
                                    schema = sv;
                                    body = build(schema).body();
                                    rebuilt = true;
                                    meta.retries += 1;
                                    continue;
                                }
                                _ => return Err(ShopifyError::Protocol(m)),
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(SendFailure::NotSent(m)) => {
                    self.refund(shop, charged);
                    (m, true)
                }
                Err(SendFailure::Unknown(m)) => {
                    self.refund(shop, charged);
                    (m, false)
                }
            };
            self.inner.transient.fetch_add(1, Ordering::Relaxed);
            if !not_sent && safety == Safety::Create {
                tracing::warn!(shop, op = op.name, error = %message, "create may or may not have been applied; not re-sending");
                return Err(ShopifyError::Transient {
                    message,
                    outcome_unknown: true,
                });
            }
            if transient_tries >= cfg.max_retries {
                return Err(ShopifyError::Transient {
                    message,
                    outcome_unknown: false,
                });
            }
            if !not_sent && safety == Safety::IdempotentWrite {
                meta.resent_after_unknown_outcome = true;
            }
            transient_tries += 1;
            meta.retries += 1;
            self.inner.retries.fetch_add(1, Ordering::Relaxed);
            let delay = self.backoff(transient_tries);
            tracing::info!(shop, op = op.name, error = %message, attempt = transient_tries, delay_ms = delay.as_millis() as u64, "transient Shopify failure; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;
    use crate::types::ResponseMeta;

    fn client(cfg: ClientConfig) -> ShopifyClient {
        ShopifyClient::new(cfg).unwrap()
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let c = client(ClientConfig {
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_millis(1000),
            ..Default::default()
        });
        for _ in 0..50 {
            let d1 = c.backoff(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = c.backoff(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d9 = c.backoff(40);
            assert!(
                d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1000),
                "{d9:?}"
            );
        }
    }

    #[test]
    fn reserve_is_per_shop_and_bounded() {
        use super::super::bucket::ThrottleStatus;
        let c = client(ClientConfig {
            max_throttle_wait: Duration::from_secs(5),
            ..Default::default()
        });
        let op = Op {
            name: "list",
            units: 1.0,
            default_unit_cost: 100.0,
        };
        // No state yet: no wait.
        assert_eq!(c.reserve("a.myshopify.com", op).unwrap().0, Duration::ZERO);
        let empty = QueryCost {
            requested: Some(100.0),
            actual: Some(100.0),
            throttle: Some(ThrottleStatus {
                maximum_available: 1000.0,
                currently_available: 0.0,
                restore_rate: 100.0,
            }),
        };
        let mut meta = ResponseMeta::default();
        c.observe("a.myshopify.com", op, Some(&empty), &mut meta);
        assert_eq!(meta.requested_cost, 100.0);
        let (w, charged) = c.reserve("a.myshopify.com", op).unwrap();
        assert_eq!(charged, 100.0);
        assert!(
            w > Duration::from_millis(900) && w <= Duration::from_secs(1),
            "{w:?}"
        );
        // The next caller queues behind the first one.
        let (w2, _) = c.reserve("a.myshopify.com", op).unwrap();
        assert!(w2 > Duration::from_millis(1900), "{w2:?}");
        // Another shop is unaffected.
        assert_eq!(c.reserve("b.myshopify.com", op).unwrap().0, Duration::ZERO);
        // A wait beyond max_throttle_wait is returned, not slept.
        let big = Op {
            name: "list",
            units: 8.0,
            default_unit_cost: 100.0,
        };
        assert!(matches!(
            c.reserve("a.myshopify.com", big),
            Err(ShopifyError::Throttled { .. })
        ));
        assert_eq!(c.shop_request_count("a.myshopify.com"), 3);
        // Refunds of failed requests take the queue back down.
        c.refund("a.myshopify.com", 200.0);
        let (w3, _) = c.reserve("a.myshopify.com", op).unwrap();
        assert!(w3 < w2, "{w3:?} {w2:?}");
    }

    #[test]
    fn reservations_charge_the_learned_actual_cost() {
        use super::super::bucket::ThrottleStatus;
        let c = client(ClientConfig::default());
        let op = Op {
            name: "list",
            units: 1.0,
            default_unit_cost: 752.0,
        };
        let cost = QueryCost {
            requested: Some(752.0),
            actual: Some(5.0),
            throttle: Some(ThrottleStatus {
                maximum_available: 1000.0,
                currently_available: 995.0,
                restore_rate: 100.0,
            }),
        };
        c.observe("a.myshopify.com", op, Some(&cost), &mut ResponseMeta::default());
        for _ in 0..20 {
            let (w, charged) = c.reserve("a.myshopify.com", op).unwrap();
            assert_eq!((w, charged), (Duration::ZERO, 5.0));
        }
    }

    #[test]
    fn changes_per_document_follows_bucket_and_learned_cost() {
        use super::super::bucket::ThrottleStatus;
        let c = client(ClientConfig::default());
        assert_eq!(c.changes_per_document("a.myshopify.com"), 100);
        let op = Op {
            name: "apply",
            units: 4.0,
            default_unit_cost: 10.0,
        };
        let cost = QueryCost {
            requested: Some(80.0),
            actual: Some(80.0),
            throttle: Some(ThrottleStatus {
                maximum_available: 2000.0,
                currently_available: 1920.0,
                restore_rate: 100.0,
            }),
        };
        c.observe("a.myshopify.com", op, Some(&cost), &mut ResponseMeta::default());
        // 20 points per change; the 2000-point bucket is capped at the
        // 1000-point single-query limit.
        assert_eq!(c.changes_per_document("a.myshopify.com"), 50);
    }
}
