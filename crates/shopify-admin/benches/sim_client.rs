//! Client + simulator throughput on loopback.
//!
//! Starts the simulator in-process (random port on 127.0.0.1), then drives it
//! with the real `ShopifyClient` from many concurrent tasks and prints
//! requests per second and latency percentiles for:
//! * simple `shop { name }` queries,
//! * full webhook listings of a shop with 100 subscriptions (one page),
//! * full listings of a shop with 600 subscriptions (three pages),
//! * one-document batches of 10 creates followed by 10 deletes.
//!
//! It prints numbers and asserts no timings. Each phase is bounded both in
//! requests and in wall time. Run with `cargo bench --bench sim_client`;
//! `BENCH_SECONDS` (default 3) sets the length of each phase and
//! `BENCH_CONCURRENCY` (default 64) the number of concurrent tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shopify_admin::{AccessToken, Change, ClientConfig, Format, ShopifyClient};
use shopify_sim::{self as sim, Fixture, ShopFixture, SimConfig, SubscriptionFixture, TokenFixture};

const MAX_REQUESTS_PER_PHASE: u64 = 2_000_000;

fn shop(domain: &str, token: &str, subs: usize) -> ShopFixture {
    ShopFixture {
        domain: domain.into(),
        tokens: vec![TokenFixture {
            access_token: token.into(),
            scopes: vec!["read_orders".into()],
            ..Default::default()
        }],
        subscriptions: (0..subs)
            .map(|i| SubscriptionFixture {
                topic: "orders/create".into(),
                address: format!("https://oms.example.com/webhooks/orders_create/{i}"),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

struct PhaseResult {
    ops: u64,
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn phase<F, Fut>(concurrency: usize, seconds: f64, client: &ShopifyClient, op: F) -> PhaseResult
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicU64::new(0));
    let requests_before = client.request_count();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (op, stop, issued) = (op.clone(), stop.clone(), issued.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= MAX_REQUESTS_PER_PHASE {
                    break;
                }
                let t = Instant::now();
                if !op(worker, n).await {
                    errors += 1;
                }
                lat.push(t.elapsed());
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("bench task");
        latencies.extend(l);
        errors += e;
    }
    stop.store(true, Ordering::Relaxed);
    latencies.sort();
    PhaseResult {
        ops: latencies.len() as u64,
        requests: client.request_count() - requests_before,
        errors,
        elapsed: started.elapsed(),
        latencies,
    }
}

fn pct(l: &[Duration], p: f64) -> f64 {
    if l.is_empty() {
        return 0.0;
    }
    let i = ((l.len() as f64 - 1.0) * p).round() as usize;
    l[i].as_secs_f64() * 1000.0
}

fn report(name: &str, r: &PhaseResult) {
    let secs = r.elapsed.as_secs_f64();
    println!(
        "{name:<34} {:>9.0} ops/s {:>9.0} requests/s  ops={:<7} errors={:<4} p50={:.2}ms p99={:.2}ms max={:.2}ms",
        r.ops as f64 / secs,
        r.requests as f64 / secs,
        r.ops,
        r.errors,
        pct(&r.latencies, 0.50),
        pct(&r.latencies, 0.99),
        pct(&r.latencies, 1.0),
    );
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let shops: Vec<(String, String)> = (0..8)
            .map(|i| (format!("bench{i}.myshopify.com"), format!("shpat_bench_{i}")))
            .collect();
        let mut fixture_shops: Vec<ShopFixture> = shops.iter().map(|(d, t)| shop(d, t, 100)).collect();
        fixture_shops.push(shop("big.myshopify.com", "shpat_big", 600));
        let sim = sim::start(SimConfig {
            fixture: Fixture { shops: fixture_shops, ..Default::default() },
            // Throughput, not throttling, is measured: a bucket that never runs dry.
            bucket_size: 1e12,
            restore_rate: 1e12,
            ..Default::default()
        })
        .await
        .expect("simulator starts");
        let client = ShopifyClient::new(ClientConfig {
            base_url: sim.base_url(),
            ..Default::default()
        })
        .expect("client");
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        println!("sim_client: {cores} cores, {concurrency} concurrent tasks, {seconds} s per phase, simulator at {}", sim.base_url());

        let shops = Arc::new(shops);
        let simple = {
            let (c, shops) = (client.clone(), shops.clone());
            move |w: usize, _n: u64| {
                let (c, shops) = (c.clone(), shops.clone());
                async move {
                    let (shop, token) = &shops[w % shops.len()];
                    c.graphql(shop, "2025-07", &AccessToken::new(token.clone()), "query { shop { name } }", serde_json::json!({}))
                        .await
                        .is_ok()
                }
            }
        };
        // Warm-up: connections, schema caches.
        let _ = phase(concurrency, 0.5, &client, simple.clone()).await;
        report("shop { name }", &phase(concurrency, seconds, &client, simple.clone()).await);
        report("shop { name } (1 task)", &phase(1, seconds.min(2.0), &client, simple).await);

        let list = {
            let (c, shops) = (client.clone(), shops.clone());
            move |w: usize, _n: u64| {
                let (c, shops) = (c.clone(), shops.clone());
                async move {
                    let (shop, token) = &shops[w % shops.len()];
                    matches!(c.list_subscriptions(shop, "2025-10", &AccessToken::new(token.clone())).await,
                        Ok(l) if l.subscriptions.len() == 100)
                }
            }
        };
        report("list 100 subs (1 page)", &phase(concurrency, seconds, &client, list).await);

        let big = {
            let c = client.clone();
            move |_w: usize, _n: u64| {
                let c = c.clone();
                async move {
                    matches!(c.list_subscriptions("big.myshopify.com", "2025-07", &AccessToken::new("shpat_big".into())).await,
                        Ok(l) if l.subscriptions.len() == 600)
                }
            }
        };
        report("list 600 subs (3 pages)", &phase(concurrency.min(16), seconds, &client, big).await);

        let batch = {
            let (c, shops) = (client.clone(), shops.clone());
            move |w: usize, n: u64| {
                let (c, shops) = (c.clone(), shops.clone());
                async move {
                    let (shop, token) = &shops[w % shops.len()];
                    let token = AccessToken::new(token.clone());
                    let creates: Vec<Change> = (0..10)
                        .map(|i| Change::Create {
                            topic: "products/update".into(),
                            address: format!("https://oms.example.com/bench/{w}/{n}/{i}"),
                            format: Format::Json,
                            options: Default::default(),
                        })
                        .collect();
                    let Ok(created) = c.apply(shop, "2025-10", &token, &creates).await else { return false };
                    let deletes: Vec<Change> = created
                        .iter()
                        .filter_map(|r| match r {
                            shopify_admin::ChangeResult::Created(s) => Some(Change::Delete { id: s.id.clone(), topic: s.topic.clone() }),
                            _ => None,
                        })
                        .collect();
                    deletes.len() == 10 && c.apply(shop, "2025-10", &token, &deletes).await.is_ok()
                }
            }
        };
        report("10 creates + 10 deletes (2 docs)", &phase(concurrency.min(16), seconds, &client, batch).await);
        // Client-side share of a listing: classify + parse one 100-item page,
        // no network, to tell client cost from simulator cost.
        let (data, _) = client
            .graphql(
                &shops[0].0,
                "2025-10",
                &AccessToken::new(shops[0].1.clone()),
                &shopify_admin::graphql::list_document(
                    shopify_admin::ApiVersion::new(2025, 10),
                    250,
                    None,
                )
                .query,
                serde_json::json!({"first": 250, "after": null}),
            )
            .await
            .expect("list page");
        let body = serde_json::to_vec(&serde_json::json!({"data": data})).expect("body");
        let started = Instant::now();
        let mut parsed = 0u64;
        while started.elapsed() < Duration::from_secs(1) && parsed < 1_000_000 {
            let ok = shopify_admin::response::classify(200, None, &body).result.expect("ok");
            parsed += shopify_admin::parse::parse_page(&ok).expect("page").subscriptions.len() as u64 / 100;
        }
        println!(
            "{:<34} {:>9.0} pages/s (client CPU only, 1 core, {} bytes/page)",
            "parse 100-sub page",
            parsed as f64 / started.elapsed().as_secs_f64(),
            body.len()
        );
        let s = client.stats();
        println!("client totals: requests={} throttled={} transient={} retries={}", s.requests, s.throttled, s.transient_failures, s.retries);
    });
}
