//! The soak (`BENCH_SOAK=<cycles>`): the operator under churn for many
//! resync intervals, watched for leaks. One cycle is one resync interval;
//! at the start of cycle `c` (1-based):
//! * 1 shop in [`EDIT_EVERY`] has its spec edited: `products/create` moves
//!   from the `topics` shorthand to a `subscriptions[]` entry with a filter
//!   (a new generation, and one `webhookSubscriptionUpdate` at Shopify), and
//!   the next time the shop's turn comes (10 cycles on) it moves back, so
//!   nothing drifts for good;
//! * 1 shop in [`ROTATE_EVERY`] gets a new access token in its Secret (the
//!   simulator was loaded with each shop's future tokens: it has no call to
//!   add one later, and reloading a shop would replace its subscriptions);
//! * every [`HOST_EVERY`]th cycle the Ingress host flips between the two
//!   hosts;
//! * all along, 1 % of Shopify requests answer 503 (`Fault::StatusRate`:
//!   a failure rate spread over the cycle rather than a burst of the next
//!   `count` requests at its start).
//!
//! Every second it samples the operator's VmRSS, VmHWM and open file
//! descriptors; after the warm-up ([`warmup`]) it fits least-squares slopes.
//! Then the faults are cleared, the shops left to settle, and two **clean
//! resyncs** of every shop (no churn, no faults) must make 0 apiserver
//! writes and 0 Shopify mutations.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shopify_operator::crd::ShopifyShop;
use shopify_sim::{Fault, Fixture, TokenFixture};

use super::{
    COLORS, NEW_HOST, OLD_HOST, POLL, Panel, Phase, Run, World, deadline, domain, esc, nice_ticks, webhooks,
};

/// One shop in this many is edited per cycle.
const EDIT_EVERY: usize = 10;
/// One shop in this many has its token rotated per cycle.
const ROTATE_EVERY: usize = 20;
/// The Ingress host changes every this many cycles.
const HOST_EVERY: usize = 10;
/// Share of Shopify requests that fail during the cycles (HTTP 503).
const FAULT_PERCENT: u8 = 1;
/// The topic an edit moves into a filtered entry, and the filter.
const EDITED_TOPIC: &str = "products/create";
const EDITED_FILTER: &str = "vendor:bench";
/// Clean resyncs of every shop after the churn.
const CLEAN_RESYNCS: u64 = 2;
/// Apiserver requests of the churn at a time.
const CHURN_CONCURRENCY: usize = 16;

/// The soak's results (absent unless `BENCH_SOAK` is set).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Soak {
    pub cycles: usize,
    /// One cycle: the resync interval.
    pub cycle_s: f64,
    /// Cycles left out of the slopes.
    pub warmup_cycles: usize,
    pub edits_per_cycle: usize,
    pub rotations_per_cycle: usize,
    pub fault_percent: u8,
    /// Cycles that began with an Ingress host change.
    pub host_changes: Vec<usize>,
    pub per_cycle: Vec<SoakCycle>,
    /// One a second.
    pub samples: Vec<SoakSample>,
    pub rss_start_mib: f64,
    pub rss_end_mib: f64,
    pub vmhwm_end_mib: f64,
    pub fds_start: f64,
    pub fds_end: f64,
    /// Least-squares slopes over the samples after the warm-up.
    pub rss_slope_mib_per_h: f64,
    pub rss_slope_kib_per_cycle: f64,
    pub fds_slope_per_h: f64,
    /// The whole churn (every cycle), as a phase.
    pub churn: Phase,
    /// Shopify answers 503 in the cycles (the injected failures).
    pub shopify_failed: u64,
    /// After the last cycle (faults cleared): every shop `Ready` at its
    /// generation and the operator's status writes still for 2 s.
    pub settled: bool,
    pub settle_s: f64,
    /// Two resyncs of every shop with no churn and no faults: target 0
    /// apiserver writes and 0 mutations.
    pub clean: Phase,
    pub clean_resyncs: u64,
    pub completed: bool,
    pub error: Option<String>,
}

/// What one cycle did and caused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct SoakCycle {
    pub cycle: usize,
    pub edits: usize,
    pub rotations: usize,
    /// The Ingress's new host, in a host-change cycle.
    pub host: Option<String>,
    /// Time to send the churn's apiserver requests.
    pub churn_s: f64,
    pub shopify_requests: u64,
    pub shopify_failed: u64,
    pub mutations: u64,
    /// The operator's `status_writes_total` in the cycle.
    pub status_writes: f64,
    pub reconciles: f64,
}

/// One sample of the operator processes (summed).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct SoakSample {
    /// Seconds since the soak started.
    pub t_s: f64,
    pub cycle: usize,
    pub rss_mib: f64,
    pub vmhwm_mib: f64,
    pub fds: f64,
}

/// The cycles left out of the slopes: a fifth of them, at most 10 (the
/// first cycles still grow caches and allocator arenas).
fn warmup(cycles: usize) -> usize {
    (cycles / 5).clamp(1, 10).min(cycles.saturating_sub(1))
}

/// Shops edited (and rotated) per cycle among `n`.
fn per_cycle(n: usize, every: usize) -> usize {
    n.div_ceil(every).max(1)
}

/// Shop `i`'s token after its `r`-th rotation (0: the fixture's first).
fn rotated_token(i: usize, r: usize) -> String {
    match r {
        0 => super::token(i),
        r => format!("{}_r{r}", super::token(i)),
    }
}

/// Adds to each shop of `fixture` the tokens its rotations over `cycles`
/// will store, with the first token's scopes, so the simulator accepts
/// them when the operator starts using them.
pub(super) fn provision_tokens(fixture: &mut Fixture, cycles: usize) {
    let n = fixture.shops.len();
    let rotations = (cycles * per_cycle(n, ROTATE_EVERY)).div_ceil(n.max(1)) + 1;
    for (i, shop) in fixture.shops.iter_mut().enumerate() {
        let first = shop.tokens.first().cloned().unwrap_or_default();
        shop.tokens.extend((1..=rotations).map(|r| TokenFixture {
            access_token: rotated_token(i, r),
            ..first.clone()
        }));
    }
}

/// Shop `i`'s `spec.webhooks`, edited (`products/create` in a filtered
/// entry) or as created; as a merge patch, so a plain shop's entry list is
/// removed again with `null`.
fn webhooks_patch(i: usize, edited: bool) -> Value {
    let mut wh = webhooks(i);
    if !edited {
        if wh.get("subscriptions").is_none() {
            wh["subscriptions"] = Value::Null;
        }
        return json!({"spec": {"webhooks": wh}});
    }
    let topics: Vec<Value> = wh["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t.as_str() != Some(EDITED_TOPIC))
        .cloned()
        .collect();
    let mut subs = wh["subscriptions"].as_array().cloned().unwrap_or_default();
    subs.push(json!({"topics": [EDITED_TOPIC], "filter": EDITED_FILTER}));
    wh["topics"] = Value::Array(topics);
    wh["subscriptions"] = Value::Array(subs);
    json!({"spec": {"webhooks": wh}})
}

/// What the churn has done to each shop so far.
struct Churn {
    edited: Vec<bool>,
    rotations: Vec<usize>,
    host: &'static str,
}

/// The soak: `cycles` cycles of churn with the operator running at
/// `resync`, then the clean resyncs.
pub(super) async fn run(w: &mut World, cycles: usize, resync: Duration) -> Soak {
    let n = w.n;
    let mut soak = Soak {
        cycles,
        cycle_s: resync.as_secs_f64(),
        warmup_cycles: warmup(cycles),
        edits_per_cycle: per_cycle(n, EDIT_EVERY),
        rotations_per_cycle: per_cycle(n, ROTATE_EVERY),
        fault_percent: FAULT_PERCENT,
        ..Default::default()
    };
    eprintln!(
        "   soak: {cycles} cycles × {:.0} s, {} edits + {} token rotations a cycle, a host change every {HOST_EVERY}, {FAULT_PERCENT}% of Shopify requests failing",
        soak.cycle_s, soak.edits_per_cycle, soak.rotations_per_cycle
    );
    let mut churn = Churn {
        edited: vec![false; n],
        rotations: vec![0; n],
        host: NEW_HOST,
    };
    let mark = w.mark().await;
    w.sim.inject(Fault::StatusRate {
        shop: None,
        status: 503,
        percent: FAULT_PERCENT,
    });
    cycle_loop(w, &mut soak, &mut churn, resync).await;
    w.sim.clear_faults();
    soak.churn = w.finish(&mark, mark.at.elapsed(), soak.error.is_none()).await;
    soak.shopify_failed = soak.per_cycle.iter().map(|c| c.shopify_failed).sum();
    fit(&mut soak);
    if soak.error.is_none() {
        settle(w, &mut soak, churn.host).await;
        clean(w, &mut soak, resync).await;
    }
    soak.completed = soak.error.is_none() && soak.settled && soak.clean.completed;
    eprintln!("   {}", summary(n, &soak));
    soak
}

/// Runs the cycles, sampling once a second; stops early if an operator
/// process exits.
async fn cycle_loop(w: &mut World, soak: &mut Soak, churn: &mut Churn, resync: Duration) {
    let start = Instant::now();
    let mut next_sample = start;
    let mut before = Totals::of(w).await;
    for c in 1..=soak.cycles {
        let t = Instant::now();
        let mut cycle = apply_churn(w, churn, c, soak).await;
        cycle.churn_s = t.elapsed().as_secs_f64();
        let end = start + resync * c as u32;
        while Instant::now() < end {
            w.sample();
            if Instant::now() >= next_sample {
                soak.samples.push(sample(w, start, c));
                next_sample += Duration::from_secs(1);
            }
            if let Some(exited) = w.exited_operator() {
                soak.error = Some(format!("cycle {c}: {exited}"));
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        let after = Totals::of(w).await;
        after.fill(&before, &mut cycle);
        before = after;
        if let Some(h) = &cycle.host {
            soak.host_changes.push(c);
            eprintln!("   soak cycle {c}: host → {h}");
        }
        soak.per_cycle.push(cycle);
    }
}

/// Cycle `c`'s churn, sent through the apiserver as the admin: the edits,
/// the token rotations and, every `HOST_EVERY` cycles, the host change.
/// The first failure is kept in `soak.error`.
async fn apply_churn(w: &World, churn: &mut Churn, c: usize, soak: &mut Soak) -> SoakCycle {
    let n = w.n;
    let shops: Api<ShopifyShop> = Api::namespaced(w.client.clone(), &w.ns);
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    let edits: Vec<(usize, bool)> = (0..soak.edits_per_cycle)
        .map(|j| ((c - 1) * soak.edits_per_cycle + j) % n)
        .map(|i| {
            churn.edited[i] = !churn.edited[i];
            (i, churn.edited[i])
        })
        .collect();
    // Another stretch of shops than the edits' (offset by half), so a
    // rotation and an edit rarely land on one shop in one cycle.
    let rotations: Vec<(usize, String)> = (0..soak.rotations_per_cycle)
        .map(|j| ((c - 1) * soak.rotations_per_cycle + j + n / 2) % n)
        .map(|i| {
            churn.rotations[i] += 1;
            (i, rotated_token(i, churn.rotations[i]))
        })
        .collect();
    let edit = edits.iter().map(|(i, edited)| {
        let patch = webhooks_patch(*i, *edited);
        let shops = &shops;
        async move {
            shops
                .patch(
                    &format!("shop-{i:05}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map(|_| ())
        }
    });
    let rotate = rotations.iter().map(|(i, token)| {
        let patch = json!({"stringData": {"access-token": token}});
        let secrets = &secrets;
        async move {
            secrets
                .patch(
                    &format!("shop-{i:05}-token"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map(|_| ())
        }
    });
    let mut results: Vec<Result<(), kube::Error>> = futures::stream::iter(
        edit.map(futures::future::Either::Left)
            .chain(rotate.map(futures::future::Either::Right)),
    )
    .buffer_unordered(CHURN_CONCURRENCY)
    .collect()
    .await;
    let mut host = None;
    if c.is_multiple_of(HOST_EVERY) {
        churn.host = if churn.host == NEW_HOST {
            OLD_HOST
        } else {
            NEW_HOST
        };
        results.push(set_host(w, churn.host).await);
        host = Some(churn.host.to_string());
    }
    if let Some(e) = results.into_iter().find_map(Result::err) {
        soak.error
            .get_or_insert(format!("cycle {c}: churn request failed: {e}"));
    }
    SoakCycle {
        cycle: c,
        edits: edits.len(),
        rotations: rotations.len(),
        host,
        ..Default::default()
    }
}

/// Points the Ingress `oms` at `host`.
async fn set_host(w: &World, host: &str) -> Result<(), kube::Error> {
    let ingresses: Api<Ingress> = Api::namespaced(w.client.clone(), &w.ns);
    let patch = json!({"spec": {"rules": [{"host": host}]}});
    ingresses
        .patch("oms", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Running totals since the soak's mark, to take a cycle's share from.
struct Totals {
    requests: u64,
    failed: u64,
    mutations: u64,
    status_writes: f64,
    reconciles: f64,
}

impl Totals {
    /// The simulator's counters (every shop) and the operators' metrics now.
    async fn of(w: &World) -> Totals {
        let counters = w.sim.all_counters();
        Totals {
            requests: counters.values().map(|c| c.requests).sum(),
            failed: counters.values().map(|c| c.status(503)).sum(),
            mutations: counters.values().map(|c| c.mutations).sum(),
            status_writes: w.metric("shopify_operator_status_writes_total").await,
            reconciles: w
                .metric("shopify_operator_reconcile_duration_seconds_count")
                .await,
        }
    }

    /// A cycle's counts: these totals less those at its start.
    fn fill(&self, before: &Totals, cycle: &mut SoakCycle) {
        cycle.shopify_requests = self.requests - before.requests;
        cycle.shopify_failed = self.failed - before.failed;
        cycle.mutations = self.mutations - before.mutations;
        cycle.status_writes = self.status_writes - before.status_writes;
        cycle.reconciles = self.reconciles - before.reconciles;
    }
}

/// VmRSS, VmHWM and open file descriptors of the operator processes, summed.
fn sample(w: &World, start: Instant, cycle: usize) -> SoakSample {
    let mut s = SoakSample {
        t_s: start.elapsed().as_secs_f64(),
        cycle,
        ..Default::default()
    };
    for o in &w.operators {
        let pid = o.process.pid();
        s.rss_mib += super::status_mib(pid, "VmRSS:").unwrap_or(0.0);
        s.vmhwm_mib += super::status_mib(pid, "VmHWM:").unwrap_or(0.0);
        s.fds += std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()) as f64;
    }
    s
}

/// Start and end values, and the slopes over the samples after the warm-up.
fn fit(soak: &mut Soak) {
    let (Some(first), Some(last)) = (soak.samples.first(), soak.samples.last()) else {
        return;
    };
    (soak.rss_start_mib, soak.fds_start) = (first.rss_mib, first.fds);
    (soak.rss_end_mib, soak.fds_end, soak.vmhwm_end_mib) = (last.rss_mib, last.fds, last.vmhwm_mib);
    let after: Vec<&SoakSample> = soak
        .samples
        .iter()
        .filter(|s| s.cycle > soak.warmup_cycles)
        .collect();
    let per_s = |f: fn(&SoakSample) -> f64| slope(&after.iter().map(|s| (s.t_s, f(s))).collect::<Vec<_>>());
    let rss = per_s(|s| s.rss_mib);
    soak.rss_slope_mib_per_h = rss * 3600.0;
    soak.rss_slope_kib_per_cycle = rss * soak.cycle_s * 1024.0;
    soak.fds_slope_per_h = per_s(|s| s.fds) * 3600.0;
}

/// The least-squares slope of `y` over `x` (0 with fewer than 2 points).
fn slope(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

/// Waits (faults cleared) until every shop is `Ready` at `host` for its
/// generation and the operator's status writes have stood still for 2 s.
async fn settle(w: &mut World, soak: &mut Soak, host: &str) {
    let t0 = Instant::now();
    let mut writes = (
        w.metric("shopify_operator_status_writes_total").await,
        Instant::now(),
    );
    while t0.elapsed() < deadline(w.n) {
        w.sample();
        let ready = w.tracker.lock().expect("tracker").ready_at(host, t0).len();
        let now = w.metric("shopify_operator_status_writes_total").await;
        if now != writes.0 {
            writes = (now, Instant::now());
        } else if ready == w.n && writes.1.elapsed() >= Duration::from_secs(2) {
            soak.settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    soak.settle_s = t0.elapsed().as_secs_f64();
    if !soak.settled {
        soak.error
            .get_or_insert(format!("the shops did not settle within {:.0} s", soak.settle_s));
    }
}

/// `CLEAN_RESYNCS` resyncs of every shop (each listed that many times at
/// Shopify), measured as a phase: its writes and mutations should be 0.
async fn clean(w: &mut World, soak: &mut Soak, resync: Duration) {
    let mark = w.mark().await;
    let limit = resync * CLEAN_RESYNCS as u32 + deadline(w.n);
    let mut ok = false;
    while mark.at.elapsed() < limit {
        w.sleep_sampling(Duration::from_millis(250)).await;
        let counters = w.sim.all_counters();
        let min_lists = (0..w.n)
            .map(|i| {
                counters
                    .get(&domain(i))
                    .map_or(0, |c| c.operation("webhookSubscriptions"))
            })
            .min()
            .unwrap_or(0);
        if min_lists >= CLEAN_RESYNCS {
            ok = true;
            break;
        }
    }
    let wall = mark.at.elapsed();
    w.sleep_sampling(super::SETTLE).await;
    soak.clean = w.finish(&mark, wall, ok).await;
    soak.clean_resyncs = CLEAN_RESYNCS;
}

/// The soak's summary line.
fn summary(n: usize, s: &Soak) -> String {
    let c = &s.clean;
    format!(
        "soak: {} cycles × {:.0} s, {n} shops: RSS {:.1} → {:.1} MiB (VmHWM {:.1}), slope {:+.2} MiB/h ({:+.1} KiB/cycle) after {} warm-up cycles; \
         fds {:.0} → {:.0} ({:+.1}/h); {} writes and {} mutations in {} clean resyncs{}{}",
        s.cycles,
        s.cycle_s,
        s.rss_start_mib,
        s.rss_end_mib,
        s.vmhwm_end_mib,
        s.rss_slope_mib_per_h,
        s.rss_slope_kib_per_cycle,
        s.warmup_cycles,
        s.fds_start,
        s.fds_end,
        s.fds_slope_per_h,
        c.apiserver_writes,
        c.mutations,
        s.clean_resyncs,
        if s.completed { "" } else { "  INCOMPLETE" },
        s.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(),
    )
}

/// The soak's lines of the table: the summary, the churn's totals and the
/// clean resyncs' writes by kind.
pub(super) fn rows(r: &Run) -> String {
    let Some(s) = &r.soak else {
        return String::new();
    };
    let n = r.shops;
    let ch = &s.churn;
    let cycles = s.per_cycle.len().max(1) as f64;
    let per = |f: fn(&SoakCycle) -> f64| s.per_cycle.iter().map(f).sum::<f64>() / cycles;
    let mut out = format!("{n:>6} {}\n", summary(n, s));
    out.push_str(&format!(
        "{n:>6}   churn per cycle: {:.0} edits, {:.0} rotations; {:.0} Shopify requests ({:.1} failed, {:.2}%), {:.1} mutations, \
         {:.1} status writes, {:.0} reconciles, churn sent in {:.2} s; host changes in cycles {:?}; operator CPU {:.1} s in all\n",
        per(|c| c.edits as f64),
        per(|c| c.rotations as f64),
        per(|c| c.shopify_requests as f64),
        per(|c| c.shopify_failed as f64),
        100.0 * s.shopify_failed as f64 / ch.shopify_requests.max(1) as f64,
        per(|c| c.mutations as f64),
        per(|c| c.status_writes),
        per(|c| c.reconciles),
        per(|c| c.churn_s),
        s.host_changes,
        ch.operator_cpu_s,
    ));
    let kinds = |p: &Phase| {
        p.writes_by_kind
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push_str(&format!(
        "{n:>6}   writes in the churn: {}; settled in {:.1} s; clean resyncs: {:.1} s, {} Shopify requests, writes: [{}]\n",
        kinds(ch),
        s.settle_s,
        s.clean.wall_s,
        s.clean.shopify_requests,
        kinds(&s.clean),
    ));
    out
}

/// `soak.svg`: for each run with a soak, the operator's RSS (and VmHWM)
/// and its open file descriptors over the soak, with the cycles, the host
/// changes and the warm-up marked. `None` when no run has a soak.
pub(super) fn svg(runs: &[Run]) -> Option<String> {
    let soaked: Vec<(&Run, &Soak)> = runs.iter().filter_map(|r| Some((r, r.soak.as_ref()?))).collect();
    if soaked.is_empty() {
        return None;
    }
    let height = 60.0 + 440.0 * soaked.len() as f64;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="1100" height="{height:.0}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"##
    );
    for (row, (r, soak)) in soaked.iter().enumerate() {
        let y = 50.0 + 440.0 * row as f64;
        memory_panel(&mut s, r, soak, y);
        fds_panel(&mut s, r, soak, y);
    }
    s.push_str("</svg>\n");
    Some(s)
}

/// The panel of one soak's axes: x in seconds over the soak.
fn soak_panel(soak: &Soak, x: f64, y: f64, ymax: f64) -> (Panel, Vec<f64>, Vec<f64>) {
    let xmax = soak.samples.last().map_or(1.0, |l| l.t_s).max(1.0);
    let (xtop, xt) = nice_ticks(xmax);
    let (ytop, yt) = nice_ticks(ymax.max(1.0) * 1.15);
    let p = Panel {
        x,
        y,
        w: 440.0,
        h: 320.0,
        xmax: xtop,
        ymax: ytop,
        xlog: None,
        legend_low_right: true,
    };
    (p, xt, yt)
}

/// RSS and VmHWM over the soak.
fn memory_panel(svg: &mut String, r: &Run, soak: &Soak, y: f64) {
    let ymax = soak
        .samples
        .iter()
        .map(|s| s.vmhwm_mib.max(s.rss_mib))
        .fold(0.0, f64::max);
    let (p, xt, yt) = soak_panel(soak, 80.0, y, ymax);
    let title = format!(
        "Soak, {} shops: operator memory ({:+.2} MiB/h after warm-up)",
        r.shops, soak.rss_slope_mib_per_h
    );
    p.axes(svg, &title, "seconds into the soak", "MiB", &xt, &yt);
    markers(svg, &p, soak);
    let pts = |f: fn(&SoakSample) -> f64| soak.samples.iter().map(|s| (s.t_s, f(s))).collect::<Vec<_>>();
    p.line(svg, &pts(|s| s.rss_mib), COLORS[0], false, false);
    p.line(svg, &pts(|s| s.vmhwm_mib), COLORS[1], true, false);
    p.legend(svg, 0, "VmRSS", COLORS[0], false);
    p.legend(svg, 1, "VmHWM", COLORS[1], true);
    p.legend(svg, 2, "host change", COLORS[3], true);
}

/// Open file descriptors over the soak.
fn fds_panel(svg: &mut String, r: &Run, soak: &Soak, y: f64) {
    let ymax = soak.samples.iter().map(|s| s.fds).fold(0.0, f64::max);
    let (p, xt, yt) = soak_panel(soak, 620.0, y, ymax);
    let title = format!(
        "Soak, {} shops: open file descriptors ({:+.1}/h)",
        r.shops, soak.fds_slope_per_h
    );
    p.axes(svg, &title, "seconds into the soak", "fds", &xt, &yt);
    markers(svg, &p, soak);
    let pts: Vec<(f64, f64)> = soak.samples.iter().map(|s| (s.t_s, s.fds)).collect();
    p.line(svg, &pts, COLORS[2], false, false);
    p.legend(svg, 0, "open fds", COLORS[2], false);
}

/// The warm-up shaded, a thin line at each cycle's start and a dashed one
/// at each host change.
fn markers(svg: &mut String, p: &Panel, soak: &Soak) {
    let at = |c: usize| (c as f64 - 1.0) * soak.cycle_s;
    let warm = p.px(at(soak.warmup_cycles + 1).min(p.xmax)) - p.x;
    svg.push_str(&format!(
        r##"<rect x="{:.1}" y="{:.1}" width="{warm:.1}" height="{:.1}" fill="#eee"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#777">{}</text>"##,
        p.x,
        p.y,
        p.h,
        p.x + 4.0,
        p.y + 12.0,
        esc("warm-up")
    ));
    for c in 1..=soak.cycles {
        let color = if soak.host_changes.contains(&c) {
            COLORS[3]
        } else {
            "#ccc"
        };
        let dash = if soak.host_changes.contains(&c) {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let x = p.px(at(c));
        svg.push_str(&format!(
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{color}"{dash}/>"##,
            p.y,
            p.y + p.h
        ));
    }
}
