//! The old way beside ours: the same host change done the way the seed's
//! Rails app and Shopify's libraries do it, against a fresh simulator with
//! the same fixture, latency and cost limits, so the operator's numbers have
//! something to be compared with in the same run.
//!
//! The strategy is the `shopify_api` gem's webhook `Registry`
//! (`Registry.register` for each registered topic): per shop, per topic, one
//! query `webhookSubscriptions(first: 1, topics: [TOPIC])` for the topic's
//! subscription and, when its `callbackUrl` is not the new address, one
//! `webhookSubscriptionUpdate(id, webhookSubscription: {callbackUrl})`.
//! Topics run one after the other within a shop, as the Registry does; shops
//! run on a pool of [`WORKERS`] workers, the Sidekiq concurrency such an app
//! runs its per-shop jobs with.
//!
//! Where the old way gets the benefit of the doubt:
//! * 10 workers: Sidekiq 6's default concurrency; Sidekiq 7 defaults to 5;
//! * a `THROTTLED` answer is retried after exactly the wait its
//!   `throttleStatus` asks for (the gem's client does not retry it at all);
//! * one keep-alive HTTP client shared by all workers, no job queue (no
//!   Redis round trips, no enqueueing), and the clock starts when the
//!   workers start, not when the Ingress changes;
//! * only the shop's HTTPS topics are checked (a mixed shop's Pub/Sub
//!   subscription is never touched; a `first: 1` answer that is not an HTTP
//!   endpoint is skipped, where the gem would overwrite it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shopify_sim::{self as sim, Sim};

use super::{MIXED_PUBSUB, NEW_HOST, Run, address, domain, existing, sim_config, token};

/// Shops processed at a time: a Rails app of this kind runs its per-shop jobs
/// on Sidekiq, whose default concurrency was 10 threads up to Sidekiq 6
/// (Sidekiq 7 defaults to 5, so 10 is generous to the old way).
pub(super) const WORKERS: usize = 10;

/// The Admin API version of the requests: the one the bench's shops (no
/// `spec.adminApiVersion`) are reconciled at, so both sides pay the same
/// schema's costs. At 2025-07 the address is `callbackUrl`, read through
/// `endpoint { ... on WebhookHttpEndpoint }`, as the gem's query does.
const API_VERSION: &str = shopify_operator::crd::DEFAULT_ADMIN_API_VERSION;

/// A hung request fails the shop instead of the bench.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Throttled retries of one request before the shop is given up: far more
/// than a bucket that refills in seconds ever needs.
const MAX_THROTTLED_RETRIES: u32 = 100;

/// What the old way cost for one N, and how it compares with the operator's
/// host change of the same run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Baseline {
    /// Every shop done and every HTTPS subscription at the new host.
    pub completed: bool,
    /// The first failure (a shop's request, or the final check).
    pub error: Option<String>,
    pub shops_failed: usize,
    pub workers: usize,
    pub api_version: String,
    /// Workers' start → the simulator's last executed mutation.
    pub wall_s: f64,
    /// Workers' start → the first executed mutation.
    pub first_mutation_s: f64,
    /// Workers' start → every worker idle.
    pub total_s: f64,
    /// HTTP requests sent (throttled attempts included), by kind.
    pub shopify_requests: u64,
    pub queries: u64,
    pub mutations: u64,
    pub requests_per_shop: f64,
    pub max_requests_one_shop: u64,
    pub queries_per_shop: f64,
    pub mutations_per_shop: f64,
    /// Requests answered `THROTTLED` and sent again.
    pub throttled_retries: u64,
    /// Time spent waiting out throttles, summed over shops.
    pub throttle_wait_s: f64,
    /// `extensions.cost.requestedQueryCost` of the executed requests, and
    /// `actualQueryCost` (what the bucket was charged).
    pub requested_cost: u64,
    pub actual_cost: u64,
    pub cost_per_shop: f64,
    /// The simulator's own count of requests and charged points, as a check
    /// on the client-side numbers.
    pub sim_requests: u64,
    pub sim_cost: u64,
    /// `first: 1` answers that were not an HTTP endpoint (left alone).
    pub skipped_not_http: u64,
    /// After the run: HTTPS subscriptions in the simulator, those at the new
    /// host, and Pub/Sub subscriptions still at their address.
    pub https_subscriptions: usize,
    pub subscriptions_repointed: usize,
    pub pubsub_untouched: usize,
    /// Baseline ÷ operator: wall time to the last mutation, Shopify requests
    /// per shop, cost points per shop.
    pub wall_ratio: f64,
    pub requests_per_shop_ratio: f64,
    pub cost_per_shop_ratio: f64,
}

impl Baseline {
    /// Fills in the ratios against the operator's host change of `r`.
    pub fn compare(&mut self, r: &Run) {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        self.wall_ratio = ratio(self.wall_s, r.host_change_to_last_mutation_s);
        self.requests_per_shop_ratio = ratio(self.requests_per_shop, r.host_change.requests_per_shop);
        self.cost_per_shop_ratio = ratio(self.cost_per_shop, r.host_change.cost_per_shop);
    }
}

// ------------------------------------------------------------- one shop

/// What one shop's Registry pass sent and was charged.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    queries: u64,
    mutations: u64,
    throttled: u64,
    throttle_wait: Duration,
    requested_cost: u64,
    actual_cost: u64,
    skipped_not_http: u64,
}

impl Tally {
    fn requests(&self) -> u64 {
        self.queries + self.mutations
    }

    fn add(&mut self, o: &Tally) {
        self.queries += o.queries;
        self.mutations += o.mutations;
        self.throttled += o.throttled;
        self.throttle_wait += o.throttle_wait;
        self.requested_cost += o.requested_cost;
        self.actual_cost += o.actual_cost;
        self.skipped_not_http += o.skipped_not_http;
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Query,
    Mutation,
}

/// One shop's GraphQL endpoint as a Registry call sees it, counting what
/// it sends.
struct ShopApi {
    http: reqwest::Client,
    url: String,
    token: String,
    tally: Tally,
}

impl ShopApi {
    /// Sends `query` until it is not throttled; returns `data`. HTTP errors,
    /// GraphQL errors and unreadable bodies fail the shop.
    async fn send(&mut self, kind: Kind, query: &str) -> Result<Value, String> {
        for _ in 0..=MAX_THROTTLED_RETRIES {
            let body = self.post(kind, query).await?;
            let cost = &body["extensions"]["cost"];
            if let Some(wait) = throttle_wait(&body) {
                // A throttled request is not executed and costs nothing.
                self.tally.throttled += 1;
                self.tally.throttle_wait += wait;
                tokio::time::sleep(wait).await;
                continue;
            }
            self.tally.requested_cost += cost["requestedQueryCost"].as_u64().unwrap_or(0);
            self.tally.actual_cost += cost["actualQueryCost"].as_u64().unwrap_or(0);
            if let Some(errors) = body["errors"].as_array().filter(|e| !e.is_empty()) {
                return Err(format!("GraphQL errors: {}", Value::Array(errors.clone())));
            }
            return Ok(body["data"].clone());
        }
        Err(format!("still THROTTLED after {MAX_THROTTLED_RETRIES} retries"))
    }

    /// One HTTP request; the JSON body whatever the status, as a `THROTTLED`
    /// answer may come with 429 (`SimConfig::throttled_http_status`).
    async fn post(&mut self, kind: Kind, query: &str) -> Result<Value, String> {
        match kind {
            Kind::Query => self.tally.queries += 1,
            Kind::Mutation => self.tally.mutations += 1,
        }
        let resp = self
            .http
            .post(&self.url)
            .header("X-Shopify-Access-Token", &self.token)
            .json(&json!({ "query": query }))
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("reading the body: {e}"))?;
        let body: Value = serde_json::from_str(&text).map_err(|_| format!("HTTP {status}: {text}"))?;
        if !status.is_success() && throttle_wait(&body).is_none() {
            return Err(format!("HTTP {status}: {text}"));
        }
        Ok(body)
    }
}

/// For a `THROTTLED` answer, how long until the bucket holds the requested
/// cost again: (requested − available) at the restore rate, plus one point
/// because `currentlyAvailable` is rounded down. `None` for any other answer.
fn throttle_wait(body: &Value) -> Option<Duration> {
    let throttled = body["errors"]
        .as_array()?
        .iter()
        .any(|e| e["extensions"]["code"] == "THROTTLED");
    if !throttled {
        return None;
    }
    let cost = &body["extensions"]["cost"];
    let requested = cost["requestedQueryCost"].as_f64().unwrap_or(0.0);
    let available = cost["throttleStatus"]["currentlyAvailable"]
        .as_f64()
        .unwrap_or(0.0);
    let rate = cost["throttleStatus"]["restoreRate"]
        .as_f64()
        .filter(|r| *r > 0.0)
        .unwrap_or(50.0);
    Some(Duration::from_secs_f64(
        ((requested - available).max(0.0) + 1.0) / rate,
    ))
}

/// The gem's check query (`Registrations::Http#build_check_query`): the
/// topic's first subscription, its id and HTTP address.
fn check_query(topic_enum: &str) -> String {
    format!(
        "{{ webhookSubscriptions(first: 1, topics: [{topic_enum}]) {{ edges {{ node {{ id \
         endpoint {{ __typename ... on WebhookHttpEndpoint {{ callbackUrl }} }} }} }} }} }}"
    )
}

/// The gem's update (`Registration#build_register_query` with an id): the
/// new `callbackUrl` only, values written into the document.
fn update_mutation(id: &str, callback: &str) -> String {
    // A JSON string literal is a valid GraphQL string literal here.
    let (id, callback) = (json!(id), json!(callback));
    format!(
        "mutation webhookSubscription {{ webhookSubscriptionUpdate(id: {id}, \
         webhookSubscription: {{callbackUrl: {callback}}}) {{ userErrors {{ field message }} \
         webhookSubscription {{ id }} }} }}"
    )
}

/// What the check query found: the subscription's id and its `callbackUrl`
/// (`None` when the endpoint is not HTTP); `None` when the topic has none.
fn found(data: &Value) -> Option<(String, Option<String>)> {
    let node = &data["webhookSubscriptions"]["edges"].as_array()?.first()?["node"];
    let id = node["id"].as_str()?.to_string();
    Some((id, node["endpoint"]["callbackUrl"].as_str().map(str::to_string)))
}

/// The shop's HTTPS topics as the fixture has them (`orders/create`, …): a
/// mixed shop's Pub/Sub subscription is not the Registry's to check.
fn https_topics(i: usize) -> Vec<String> {
    existing(i)
        .into_iter()
        .filter(|s| s.address.starts_with("https://"))
        .map(|s| s.topic)
        .collect()
}

/// One shop's `Registry.register_all` at the new host: check each topic,
/// update the ones whose address differs, one request at a time.
async fn register_shop(http: reqwest::Client, sim: &Sim, i: usize) -> (Tally, Result<(), String>) {
    let mut api = ShopApi {
        http,
        url: sim.graphql_url(&domain(i), API_VERSION),
        token: token(i),
        tally: Tally::default(),
    };
    let result = register_topics(&mut api, i).await;
    (api.tally, result.map_err(|e| format!("{}: {e}", domain(i))))
}

async fn register_topics(api: &mut ShopApi, i: usize) -> Result<(), String> {
    for topic in https_topics(i) {
        let topic_enum = sim::topics::rest_to_enum(&topic);
        let data = api.send(Kind::Query, &check_query(&topic_enum)).await?;
        let target = address(NEW_HOST, &topic);
        match found(&data) {
            // The gem would create one; every topic has one in this fixture.
            None => return Err(format!("{topic}: no subscription to check")),
            Some((_, Some(current))) if current == target => {}
            Some((id, Some(_))) => {
                let data = api.send(Kind::Mutation, &update_mutation(&id, &target)).await?;
                let errors = &data["webhookSubscriptionUpdate"]["userErrors"];
                if errors.as_array().is_some_and(|e| !e.is_empty()) {
                    return Err(format!("{topic}: userErrors {errors}"));
                }
            }
            Some((_, None)) => api.tally.skipped_not_http += 1,
        }
    }
    Ok(())
}

// ------------------------------------------------------------- the pool

/// Per shop: what it sent, and its failure if any.
type ShopResult = (Tally, Result<(), String>);

/// Runs every shop on [`WORKERS`] workers that each take the next shop when
/// done with one (a job queue's order), sharing one HTTP client.
async fn pool(sim: &Sim, n: usize) -> Result<Vec<ShopResult>, String> {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (http, sim, next) = (http.clone(), sim.clone(), next.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return done;
                    }
                    done.push(register_shop(http.clone(), &sim, i).await);
                }
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for w in workers {
        results.extend(w.await.map_err(|e| format!("worker panicked: {e}"))?);
    }
    Ok(results)
}

/// After the run: (HTTPS subscriptions, those at the new host, Pub/Sub
/// subscriptions still at their address), over all shops.
fn verify(sim: &Sim, n: usize) -> (usize, usize, usize) {
    let new_prefix = format!("https://{NEW_HOST}/");
    let mut counts = (0, 0, 0);
    for i in 0..n {
        for s in sim.subscriptions(&domain(i)) {
            if s.address.starts_with("https://") {
                counts.0 += 1;
                counts.1 += usize::from(s.address.starts_with(&new_prefix));
            } else {
                counts.2 += usize::from(s.address == MIXED_PUBSUB);
            }
        }
    }
    counts
}

// ------------------------------------------------------------- the phase

/// The old way's host change for `n` shops on its own simulator; failures
/// are recorded in the result (`completed: false`), not returned, so the
/// operator's numbers of the run are kept.
pub(super) async fn run(n: usize, latency: Duration) -> Baseline {
    let mut b = Baseline {
        workers: WORKERS,
        api_version: API_VERSION.into(),
        ..Default::default()
    };
    let sim = match sim::start(sim_config(n, latency)).await {
        Ok(sim) => sim,
        Err(e) => {
            b.error = Some(format!("starting the simulator: {e}"));
            return b;
        }
    };
    let t0 = Instant::now();
    let results = pool(&sim, n).await;
    b.total_s = t0.elapsed().as_secs_f64();
    match results {
        Ok(results) => summarize(&mut b, &results, n),
        Err(e) => b.error = Some(e),
    }
    measure_sim(&mut b, &sim, t0);
    let (https, repointed, pubsub) = verify(&sim, n);
    (
        b.https_subscriptions,
        b.subscriptions_repointed,
        b.pubsub_untouched,
    ) = (https, repointed, pubsub);
    if repointed != https && b.error.is_none() {
        b.error = Some(format!("{repointed}/{https} HTTPS subscriptions at {NEW_HOST}"));
    }
    b.completed = b.error.is_none();
    sim.shutdown().await;
    b
}

/// Client-side totals and per-shop means from the shops' tallies.
fn summarize(b: &mut Baseline, results: &[ShopResult], n: usize) {
    let mut total = Tally::default();
    for (t, r) in results {
        total.add(t);
        if let Err(e) = r {
            b.shops_failed += 1;
            b.error.get_or_insert_with(|| e.clone());
        }
    }
    let per_shop = |v: u64| v as f64 / n.max(1) as f64;
    b.shopify_requests = total.requests();
    b.queries = total.queries;
    b.mutations = total.mutations;
    b.requests_per_shop = per_shop(total.requests());
    b.max_requests_one_shop = results.iter().map(|(t, _)| t.requests()).max().unwrap_or(0);
    b.queries_per_shop = per_shop(total.queries);
    b.mutations_per_shop = per_shop(total.mutations);
    b.throttled_retries = total.throttled;
    b.throttle_wait_s = total.throttle_wait.as_secs_f64();
    b.requested_cost = total.requested_cost;
    b.actual_cost = total.actual_cost;
    b.cost_per_shop = per_shop(total.actual_cost);
    b.skipped_not_http = total.skipped_not_http;
}

/// The simulator's side: mutation times (the same clock the operator's host
/// change is timed by) and its own request and cost counts.
fn measure_sim(b: &mut Baseline, sim: &Sim, t0: Instant) {
    let counters = sim.all_counters();
    let mutated: Vec<f64> = counters
        .values()
        .filter_map(|c| c.last_mutation_at)
        .map(|at| at.saturating_duration_since(t0).as_secs_f64())
        .collect();
    b.wall_s = mutated.iter().copied().fold(0.0, f64::max);
    b.first_mutation_s = mutated.iter().copied().reduce(f64::min).unwrap_or(0.0);
    b.sim_requests = counters.values().map(|c| c.requests).sum();
    b.sim_cost = counters.values().map(|c| c.cost).sum();
}

// ------------------------------------------------------------- output

/// The host change of `r`, ours beside the old way's: the rows a team
/// decides by. Empty when the run has no baseline.
pub(super) fn rows(r: &Run) -> String {
    let Some(b) = &r.baseline else {
        return String::new();
    };
    let n = r.shops;
    let mut s = format!(
        "{n:>6} host change, ours vs the old way (shopify_api Registry: per topic 1 query + 1 mutation if \
         changed; {} shops at a time = Sidekiq 6's default concurrency, Sidekiq 7's is 5):\n",
        b.workers
    );
    s.push_str(&format!(
        "{:>6} {:<34} {:>16} {:>9} {:>10} {:>10}\n",
        "shops", "strategy", "to repointed s", "req/shop", "cost/shop", "throttled"
    ));
    let hc = &r.host_change;
    s.push_str(&format!(
        "{n:>6} {:<34} {:>16.2} {:>9.2} {:>10.1} {:>10}\n",
        "operator (1 list + 1 batched doc)",
        r.host_change_to_last_mutation_s,
        hc.requests_per_shop,
        hc.cost_per_shop,
        hc.throttled
    ));
    s.push_str(&format!(
        "{n:>6} {:<34} {:>16.2} {:>9.2} {:>10.1} {:>10}{}\n",
        format!("old way ({} workers)", b.workers),
        b.wall_s,
        b.requests_per_shop,
        b.cost_per_shop,
        b.throttled_retries,
        if b.completed { "" } else { "  INCOMPLETE" }
    ));
    s.push_str(&format!(
        "{n:>6} {:<34} {:>15.1}× {:>8.1}× {:>9.2}×\n",
        "old way ÷ operator", b.wall_ratio, b.requests_per_shop_ratio, b.cost_per_shop_ratio
    ));
    s.push_str(&details(n, b));
    s
}

/// The old way's request mix, cost and final check, on one line.
fn details(n: usize, b: &Baseline) -> String {
    let mut s = format!(
        "{n:>6} old way: {:.2} queries + {:.2} mutations per shop (max {} one shop); {} throttled \
         retries ({:.1} s waited); cost requested {} / charged {} points (simulator: {} requests, \
         {} points); {}/{} HTTPS subscriptions at the new host, {} Pub/Sub untouched; all idle at {:.2} s\n",
        b.queries_per_shop,
        b.mutations_per_shop,
        b.max_requests_one_shop,
        b.throttled_retries,
        b.throttle_wait_s,
        b.requested_cost,
        b.actual_cost,
        b.sim_requests,
        b.sim_cost,
        b.subscriptions_repointed,
        b.https_subscriptions,
        b.pubsub_untouched,
        b.total_s,
    );
    if let Some(e) = &b.error {
        s.push_str(&format!(
            "{n:>6} old way FAILED ({} shops): {e}\n",
            b.shops_failed
        ));
    }
    s
}
