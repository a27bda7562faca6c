//! The floor: what the operator's apiserver writes cost on their own. With
//! the operator stopped, a minimal client replays them against the same
//! control plane — no Shopify, no watches, no reconcile logic — at the
//! operator's concurrency, so `operator time / floor time` says how much of
//! a phase is the operator's own overhead and how much is the apiserver's
//! unavoidable work on a machine this size.
//!
//! Why this is the same work:
//! * the client is the operator's identity (`bench-operator`, a client
//!   certificate in `system:masters`), so authentication, authorization and
//!   the audit log cost the same per request, and the audit log counts the
//!   floor's writes by kind exactly as it counts the operator's;
//! * status writes are the operator's own request: server-side apply of the
//!   whole status, forced, with the operator's field manager
//!   (`shopify-operator`). The same manager matters: the operator's apply
//!   updates fields it already owns, so managedFields change in place; a
//!   manager of the floor's own would take every status field over from
//!   `shopify-operator` on its first write (two managedFields entries
//!   rewritten), which is more work than the operator ever asks for;
//! * Events are the operator's publisher's request (`controller::events`):
//!   one create of the same `events.k8s.io/v1` body per shop, with the
//!   operator's field manager (a host change's Event is a shop's first of
//!   its kind, so there is no series to patch);
//! * within a shop, the Event comes before the status write, as in the
//!   operator's pass (`ctx.publish`, then `status::write`), and shops run
//!   [`concurrency`] at a time, the operator's `MAX_CONCURRENT_RECONCILES`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shopify_operator::crd::{ShopifyShop, ShopifyShopStatus};

use super::{OLD_HOST, Run, USER, World, audit_writes, proc_cpu};

/// The operator's field manager (`names::FIELD_MANAGER`) and the Events'
/// reporting controller.
const MANAGER: &str = "shopify-operator";

/// The host the floor's host change moves every shop to: neither of the
/// bench's two hosts, so every write is a real change, and as long as
/// `NEW_HOST`, so the status is as large as the operator's.
const FLOOR_HOST: &str = "oms-v3.popsockets.com";

/// Before each timed window the apiserver must be this quiet (share of one
/// core) for a second, so the window's CPU is the floor's.
const QUIET_CPU: f64 = 0.05;

/// What the floor measured, and the operator's phases against it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Floor {
    /// Shops written at a time (the operator's `MAX_CONCURRENT_RECONCILES`).
    pub concurrency: usize,
    /// One Event create + one status apply per shop.
    pub host_change: FloorPhase,
    /// One status apply per shop, onto a shop without status.
    pub cold_start: FloorPhase,
    /// Operator's host change to the last `Ready` ÷ `host_change.wall_s`.
    pub host_change_ratio: Option<f64>,
    /// Operator's cold start to all `Ready` ÷ `cold_start.wall_s`.
    pub cold_start_ratio: Option<f64>,
    /// The first thing that went wrong, if anything did.
    pub error: Option<String>,
}

/// One timed replay.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct FloorPhase {
    /// First request sent → last answer received.
    pub wall_s: f64,
    /// Requests sent, and those that failed.
    pub requests: u64,
    pub failed: u64,
    /// The floor's writes as the audit log counted them, by kind (the same
    /// keys as a phase's `writes_by_kind`).
    pub writes_by_kind: BTreeMap<String, u64>,
    /// kube-apiserver and etcd CPU seconds in the window.
    pub apiserver_cpu_s: f64,
    pub etcd_cpu_s: f64,
}

/// The reason, action and note of the Event the operator published about a
/// shop in its host change, to be published again by the floor.
#[derive(Debug, Clone)]
pub(super) struct EventShape {
    type_: String,
    reason: String,
    action: String,
    note: Option<String>,
}

/// Shops at a time: the operator's `MAX_CONCURRENT_RECONCILES` (the bench's
/// environment is the operator's), else its default of 64.
pub(super) fn concurrency() -> usize {
    std::env::var("MAX_CONCURRENT_RECONCILES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(64)
}

/// The latest Event the operator published about each shop (by shop name),
/// read right after its host change so the floor replays that one and not
/// a later phase's.
pub(super) async fn operator_events(client: &Client, ns: &str) -> HashMap<String, EventShape> {
    let api: Api<K8sEvent> = Api::namespaced(client.clone(), ns);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return HashMap::new();
    };
    let mut latest: HashMap<String, K8sEvent> = HashMap::new();
    for e in list.items {
        if e.reporting_controller.as_deref() != Some(MANAGER) {
            continue;
        }
        let Some(name) = e.regarding.as_ref().and_then(|r| r.name.clone()) else {
            continue;
        };
        let newer =
            |old: &K8sEvent| old.event_time.as_ref().map(|t| t.0) < e.event_time.as_ref().map(|t| t.0);
        if latest.get(&name).is_none_or(newer) {
            latest.insert(name, e);
        }
    }
    latest.into_iter().map(|(name, e)| (name, shape_of(&e))).collect()
}

/// An Event's type, reason, action and note.
fn shape_of(e: &K8sEvent) -> EventShape {
    EventShape {
        type_: e.type_.clone().unwrap_or_else(|| "Normal".into()),
        reason: e.reason.clone().unwrap_or_default(),
        action: e.action.clone().unwrap_or_default(),
        note: e.note.clone(),
    }
}

/// An Event like the operator's host change publishes, for shops whose own
/// was not found (a note of about the same length).
fn fallback_event() -> EventShape {
    EventShape {
        type_: "Normal".into(),
        reason: "SubscriptionsUpdated".into(),
        action: "ApplyWebhooks".into(),
        note: Some(format!(
            "8 subscriptions moved to https://{FLOOR_HOST}: orders/create, orders/updated, …"
        )),
    }
}

/// Both replays, with the operator stopped: the host change's writes, then
/// the cold start's; the ratios against the operator's phases of `out`.
pub(super) async fn run(w: &World, out: &Run, events: &HashMap<String, EventShape>) -> Floor {
    let mut floor = Floor {
        concurrency: concurrency(),
        ..Default::default()
    };
    if let Err(e) = replay(w, events, &mut floor).await {
        floor.error = Some(e.to_string());
    }
    let ratio = |op: f64, f: &FloorPhase| (f.wall_s > 0.0 && f.failed == 0).then(|| op / f.wall_s);
    floor.host_change_ratio = ratio(out.host_change_to_last_ready_s, &floor.host_change);
    floor.cold_start_ratio = ratio(out.cold_start.wall_s, &floor.cold_start);
    floor
}

/// The two timed windows; an error if the shops cannot be read or reset.
async fn replay(
    w: &World,
    events: &HashMap<String, EventShape>,
    floor: &mut Floor,
) -> Result<(), kube::Error> {
    let client =
        w.cp.user_client(USER, &["system:masters"])
            .await
            .map_err(|e| kube::Error::Service(format!("a client as {USER}: {e}").into()))?;
    let shops: Api<ShopifyShop> = Api::namespaced(client.clone(), &w.ns);
    let listed = shops.list(&ListParams::default()).await?.items;
    let events_api: Api<K8sEvent> = Api::namespaced(client.clone(), &w.ns);
    let n = floor.concurrency;
    floor.host_change = timed(w, n, &listed, |shop| {
        let (shops, events_api) = (&shops, &events_api);
        let event = events
            .get(&shop.name_any())
            .cloned()
            .unwrap_or_else(fallback_event);
        async move { host_change(shops, events_api, shop, &event).await }
    })
    .await;
    // The cold start wrote each shop's first status: take it away again
    // (as the admin, untimed), so the replay writes onto the same object.
    let statuses = reset_statuses(w, &listed).await?;
    floor.cold_start = timed(w, n, &statuses, |(shop, status)| {
        let shops = &shops;
        async move {
            (
                1,
                u64::from(apply_status(shops, shop, status.clone()).await.is_err()),
            )
        }
    })
    .await;
    Ok(())
}

/// One shop's host change as the operator's pass writes it: its Event,
/// then its status at `FLOOR_HOST`. Requests sent and failed.
async fn host_change(
    shops: &Api<ShopifyShop>,
    events: &Api<K8sEvent>,
    shop: &ShopifyShop,
    e: &EventShape,
) -> (u64, u64) {
    let status = shop.status.clone().unwrap_or_default();
    let from = status.webhook_host.clone().unwrap_or_else(|| OLD_HOST.into());
    let note = e.note.as_ref().map(|n| n.replace(&from, FLOOR_HOST));
    let mut failed = u64::from(publish(events, shop, e, note).await.is_err());
    failed += u64::from(
        apply_status(shops, shop, moved(&status, &from, FLOOR_HOST))
            .await
            .is_err(),
    );
    (2, failed)
}

/// The operator's Event create (`controller::events::Publisher`): the same
/// fields, name and field manager.
async fn publish(
    events: &Api<K8sEvent>,
    shop: &ShopifyShop,
    e: &EventShape,
    note: Option<String>,
) -> Result<(), kube::Error> {
    let now = jiff::Timestamp::now();
    let regarding: ObjectReference = shop.object_ref(&());
    let event = K8sEvent {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", shop.name_any(), now.as_nanosecond())),
            namespace: shop.namespace(),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(e.type_.clone()),
        reason: Some(e.reason.clone()),
        action: Some(e.action.clone()),
        note,
        regarding: Some(regarding),
        reporting_controller: Some(MANAGER.into()),
        reporting_instance: Some(MANAGER.into()),
        ..Default::default()
    };
    let pp = PostParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    events.create(&pp, &event).await.map(|_| ())
}

/// `status` with every mention of host `from` (the webhook host, each
/// topic's address, condition messages) at `to`: what a host change
/// rewrites.
fn moved(status: &ShopifyShopStatus, from: &str, to: &str) -> ShopifyShopStatus {
    let text = serde_json::to_string(status).expect("status serialises");
    serde_json::from_str(&text.replace(from, to)).expect("status with another host")
}

/// The operator's status write (`status::write`): server-side apply of the
/// whole status, forced, as `shopify-operator`, `appUninstalled` left out.
async fn apply_status(
    shops: &Api<ShopifyShop>,
    shop: &ShopifyShop,
    mut status: ShopifyShopStatus,
) -> Result<(), kube::Error> {
    status.app_uninstalled = None;
    let patch = json!({
        "apiVersion": "shopify-operator.dev/v1alpha1",
        "kind": "ShopifyShop",
        "status": status,
    });
    let pp = PatchParams::apply(MANAGER).force();
    shops
        .patch_status(&shop.name_any(), &pp, &Patch::Apply(&patch))
        .await
        .map(|_| ())
}

/// Removes every shop's status (merge patch `status: null`, as the admin, so
/// the audit count of the operator's identity is the replay's alone) and
/// returns the shops with the status each had, the cold start's replay.
/// Removing the fields also drops the operator's managedFields entry for
/// them, so the replayed apply creates the status and that entry from
/// nothing, as the operator's first write did. The alternative — applying a
/// status that differs in a condition's time — would be an update of an
/// existing status, a different (smaller) change.
async fn reset_statuses(
    w: &World,
    listed: &[ShopifyShop],
) -> Result<Vec<(ShopifyShop, ShopifyShopStatus)>, kube::Error> {
    let api: Api<ShopifyShop> = Api::namespaced(w.client.clone(), &w.ns);
    let clear = json!({"status": null});
    let results: Vec<Result<(), kube::Error>> = futures::stream::iter(listed)
        .map(|shop| {
            let (api, clear) = (&api, &clear);
            async move {
                api.patch_status(&shop.name_any(), &PatchParams::default(), &Patch::Merge(clear))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(listed
        .iter()
        .map(|s| (s.clone(), s.status.clone().unwrap_or_default()))
        .collect())
}

/// Runs `one` (requests sent, failed) for every item, `n` at a time, after
/// the apiserver has gone quiet: wall time from the first request to the
/// last answer, the apiserver's and etcd's CPU and the audit log's count of
/// the writes.
async fn timed<'a, T, F, Fut>(w: &World, n: usize, items: &'a [T], one: F) -> FloorPhase
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = (u64, u64)>,
{
    wait_quiet(w).await;
    let writes_before = audit_writes(&w.cp.dir, USER).len();
    let (a0, e0) = (proc_cpu(w, "kube-apiserver"), proc_cpu(w, "etcd"));
    let t0 = Instant::now();
    let done: Vec<(u64, u64)> = futures::stream::iter(items)
        .map(one)
        .buffer_unordered(n.max(1))
        .collect()
        .await;
    let wall_s = t0.elapsed().as_secs_f64();
    let (a1, e1) = (proc_cpu(w, "kube-apiserver"), proc_cpu(w, "etcd"));
    let mut writes_by_kind = BTreeMap::new();
    for wr in audit_writes(&w.cp.dir, USER)
        .get(writes_before..)
        .unwrap_or_default()
    {
        let key = match &wr.subresource {
            Some(sub) => format!("{} {}/{sub}", wr.verb, wr.resource),
            None => format!("{} {}", wr.verb, wr.resource),
        };
        *writes_by_kind.entry(key).or_default() += 1;
    }
    FloorPhase {
        wall_s,
        requests: done.iter().map(|d| d.0).sum(),
        failed: done.iter().map(|d| d.1).sum(),
        writes_by_kind,
        apiserver_cpu_s: a1 - a0,
        etcd_cpu_s: e1 - e0,
    }
}

/// Polls kube-apiserver's CPU until it stays under `QUIET_CPU` of a core
/// for a whole second (at most 15 s): what came before (the operator's
/// shutdown, the reset) must not be billed to the window.
async fn wait_quiet(w: &World) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut since = (Instant::now(), proc_cpu(w, "kube-apiserver"));
    while Instant::now() < deadline {
        tokio::time::sleep(super::POLL).await;
        let now = (Instant::now(), proc_cpu(w, "kube-apiserver"));
        let busy = (now.1 - since.1) / (now.0 - since.0).as_secs_f64().max(1e-9);
        if busy > QUIET_CPU {
            since = now;
        } else if now.0 - since.0 >= Duration::from_secs(1) {
            return;
        }
    }
}

/// The floor's line of the table: both replays and the ratios.
pub(super) fn rows(r: &Run) -> String {
    let Some(f) = &r.floor else {
        return String::new();
    };
    let n = r.shops;
    let ratio = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.2}×"));
    let mut s = format!(
        "{n:>6} floor ({} at a time, no Shopify): host change {:.2} s / {:.2} s = {}; cold start {:.2} s / {:.2} s = {}\n",
        f.concurrency,
        r.host_change_to_last_ready_s,
        f.host_change.wall_s,
        ratio(f.host_change_ratio),
        r.cold_start.wall_s,
        f.cold_start.wall_s,
        ratio(f.cold_start_ratio),
    );
    for (name, p) in [("host change", &f.host_change), ("cold start", &f.cold_start)] {
        let kinds: Vec<String> = p.writes_by_kind.iter().map(|(k, v)| format!("{v} {k}")).collect();
        s.push_str(&format!(
            "{n:>6}   floor {name}: {} ({} failed); kube-apiserver {:.2} s + etcd {:.2} s CPU in the window\n",
            kinds.join(", "),
            p.failed,
            p.apiserver_cpu_s,
            p.etcd_cpu_s,
        ));
    }
    if let Some(e) = &f.error {
        s.push_str(&format!("{n:>6}   floor failed: {e}\n"));
    }
    s
}
