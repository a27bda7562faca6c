//! Sync jobs against the real control plane (with the garbage collector),
//! the controller in-process with a manual clock, so schedule slots come
//! when the test says rather than after real minutes. No kubelet runs, so
//! tests finish Jobs by writing their status, as the Job controller would.

mod support;

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use shopify_admin::{ClientConfig, ShopifyClient};
use shopify_operator::controller::clock::ManualClock;
use shopify_operator::controller::{self, Context, Settings};
use shopify_sim::{Fixture, ShopFixture, TokenFixture};
use support::{Env, wait_for};
use tokio::sync::oneshot;

const DOMAIN: &str = "sync-shop.myshopify.com";
const TOKEN: &str = "shpat_sync_test";

fn fixture() -> Fixture {
    Fixture {
        shops: vec![ShopFixture {
            domain: DOMAIN.into(),
            tokens: vec![TokenFixture {
                access_token: TOKEN.into(),
                scopes: vec!["read_orders".into()],
                ..Default::default()
            }],
            ..Default::default()
        }],
        app: None,
        apps: Vec::new(),
    }
}

fn template(name: &str) -> serde_json::Value {
    json!({"spec": {"backoffLimit": 0, "template": {"spec": {"containers": [
        {"name": "sync", "image": "oms:test", "args": ["sync", name]}
    ]}}}})
}

/// A controller running in this process with `clock`; stopped on drop.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn start(env: &Env, clock: Arc<ManualClock>) -> Running {
        let client = env.cp.admin_client().await.unwrap();
        let shopify = ShopifyClient::new(ClientConfig {
            base_url: env.sim.base_url(),
            ..ClientConfig::default()
        })
        .unwrap();
        let mut settings = Settings::with_resync(Duration::from_secs(300));
        settings.namespace = Some(env.ns.clone());
        let ctx = Context::new(client, shopify, settings).with_clock(clock);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(controller::run(Arc::new(ctx), async {
            let _ = rx.await;
        }));
        Running {
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(30), &mut task)
                .await
                .is_err()
        {
            // Not stopped in time: never leave it running beside the next.
            task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The next `*/15` slot after now, as a clock start just before it.
fn quarter_after(t: Timestamp) -> Timestamp {
    let secs = t.as_second();
    Timestamp::from_second((secs / 900 + 1) * 900).unwrap()
}

async fn jobs(client: &Client, ns: &str) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let mut items = api.list(&ListParams::default()).await.unwrap().items;
    items.retain(|j| j.metadata.deletion_timestamp.is_none());
    items.sort_by_key(|j| j.name_any());
    items
}

fn env_of(job: &Job, name: &str) -> Option<serde_json::Value> {
    let v = serde_json::to_value(job).unwrap();
    v["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
}

/// Marks a Job finished the way the Job controller does.
async fn finish(client: &Client, ns: &str, name: &str, success: bool) {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let now = Timestamp::now().to_string();
    let status = if success {
        json!({"status": {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
            {"type": "Complete", "status": "True", "lastTransitionTime": now, "lastProbeTime": now}]}})
    } else {
        json!({"status": {"startTime": now, "failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True", "lastTransitionTime": now, "lastProbeTime": now, "reason": "BackoffLimitExceeded"},
            {"type": "Failed", "status": "True", "lastTransitionTime": now, "lastProbeTime": now, "reason": "BackoffLimitExceeded"}]}})
    };
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

async fn shop_env(prefix: &str, syncs: serde_json::Value) -> (Env, Arc<ManualClock>, Timestamp) {
    let env = Env::new(prefix, fixture()).await;
    env.token_secret("tok", TOKEN).await;
    env.create_shop(
        "shop",
        json!({"domain": DOMAIN, "token": {"secretRef": {"name": "tok"}}, "sync": syncs}),
    )
    .await;
    let created = env
        .shops()
        .get("shop")
        .await
        .unwrap()
        .metadata
        .creation_timestamp
        .unwrap()
        .0;
    let slot = quarter_after(created);
    let clock = Arc::new(ManualClock::new(slot - SignedDuration::from_secs(60)));
    (env, clock, slot)
}

async fn status(env: &Env) -> shopify_operator::crd::ShopifyShopStatus {
    env.shops().get("shop").await.unwrap().status.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_carry_context_and_success_feeds_the_next_since() {
    let (env, clock, slot) = shop_env(
        "sync-env",
        json!([{"name": "orders", "schedule": "*/15 * * * *", "jobTemplate": template("orders")}]),
    )
    .await;
    let run = Running::start(&env, clock.clone()).await;
    env.wait_condition("shop", "Ready", "True", None).await;
    assert!(
        jobs(&env.client, &env.ns).await.is_empty(),
        "no slot has come yet"
    );

    clock.set(slot + SignedDuration::from_secs(5));
    let first = wait_for("first Job", Duration::from_secs(60), || async {
        jobs(&env.client, &env.ns).await.into_iter().next()
    })
    .await;
    assert_eq!(first.name_any(), format!("shop-orders-{}", slot.as_second() / 60));
    let owner = &first.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ShopifyShop", "shop", Some(true))
    );
    let labels = first.metadata.labels.clone().unwrap();
    assert_eq!(labels["shopify-operator.dev/shop"], "shop");
    assert_eq!(labels["shopify-operator.dev/sync"], "orders");
    assert_eq!(env_of(&first, "SHOPIFY_SHOP_DOMAIN").unwrap()["value"], DOMAIN);
    assert_eq!(env_of(&first, "SHOPIFY_API_VERSION").unwrap()["value"], "2025-07");
    assert_eq!(env_of(&first, "SHOPIFY_SYNC_NAME").unwrap()["value"], "orders");
    assert_eq!(
        env_of(&first, "SHOPIFY_SYNC_SCHEDULED_AT").unwrap()["value"],
        slot.to_string()
    );
    let token = env_of(&first, "SHOPIFY_ACCESS_TOKEN").unwrap();
    assert_eq!(
        token["valueFrom"]["secretKeyRef"],
        json!({"name": "tok", "key": "access-token"})
    );
    assert!(
        env_of(&first, "SHOPIFY_SYNC_SINCE").is_none(),
        "first run has no SINCE"
    );
    assert!(
        !serde_json::to_string(&first).unwrap().contains(TOKEN),
        "the token value is in the Job"
    );

    finish(&env.client, &env.ns, &first.name_any(), true).await;
    wait_for("lastSuccessfulTime", Duration::from_secs(60), || async {
        let s = status(&env).await;
        (s.sync.first()?.last_successful_time.as_ref()?.0 == slot && s.last_sync_time.as_ref()?.0 == slot)
            .then_some(())
    })
    .await;

    let slot2 = slot + SignedDuration::from_mins(15);
    clock.set(slot2 + SignedDuration::from_secs(5));
    let second = wait_for("second Job", Duration::from_secs(60), || async {
        jobs(&env.client, &env.ns)
            .await
            .into_iter()
            .find(|j| j.name_any() != first.name_any())
    })
    .await;
    assert_eq!(
        env_of(&second, "SHOPIFY_SYNC_SINCE").unwrap()["value"],
        slot.to_string()
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_inside_a_slot_never_makes_a_second_job() {
    let (env, clock, slot) = shop_env(
        "sync-restart",
        json!([{"name": "orders", "schedule": "*/15 * * * *", "jobTemplate": template("orders")}]),
    )
    .await;
    let run = Running::start(&env, clock.clone()).await;
    env.wait_condition("shop", "Ready", "True", None).await;
    clock.set(slot + SignedDuration::from_secs(1));
    wait_for("the Job", Duration::from_secs(60), || async {
        (jobs(&env.client, &env.ns).await.len() == 1).then_some(())
    })
    .await;
    run.stop().await;

    // As if the operator died after creating the Job but before recording
    // the slot: the status forgets it.
    let patch = json!({"status": {"sync": [{"name": "orders", "activeJobs": 0, "consecutiveFailures": 0}]}});
    env.shops()
        .patch_status("shop", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    clock.set(slot + SignedDuration::from_secs(30));
    let run = Running::start(&env, clock.clone()).await;
    wait_for("slot recorded again", Duration::from_secs(60), || async {
        let s = status(&env).await;
        (s.sync.first()?.last_schedule_time.as_ref()?.0 == slot).then_some(())
    })
    .await;
    assert_eq!(
        jobs(&env.client, &env.ns).await.len(),
        1,
        "a second Job for one slot"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_policies() {
    let syncs = json!([
        {"name": "forbid", "schedule": "*/15 * * * *", "jobTemplate": template("forbid")},
        {"name": "allow", "schedule": "*/15 * * * *", "concurrencyPolicy": "Allow", "jobTemplate": template("allow")},
        {"name": "replace", "schedule": "*/15 * * * *", "concurrencyPolicy": "Replace", "jobTemplate": template("replace")}
    ]);
    let (env, clock, slot) = shop_env("sync-concurrency", syncs).await;
    let run = Running::start(&env, clock.clone()).await;
    env.wait_condition("shop", "Ready", "True", None).await;
    clock.set(slot + SignedDuration::from_secs(1));
    wait_for("three Jobs", Duration::from_secs(60), || async {
        (jobs(&env.client, &env.ns).await.len() == 3).then_some(())
    })
    .await;

    // The next slot comes while all three still run.
    clock.set(slot + SignedDuration::from_mins(15) + SignedDuration::from_secs(1));
    let by_sync = |js: &[Job], s: &str| {
        js.iter()
            .filter(|j| j.labels().get("shopify-operator.dev/sync").map(String::as_str) == Some(s))
            .count()
    };
    wait_for(
        "allow runs two, replace swaps",
        Duration::from_secs(60),
        || async {
            let js = jobs(&env.client, &env.ns).await;
            (by_sync(&js, "allow") == 2 && by_sync(&js, "replace") == 1 && {
                let r = js
                    .iter()
                    .find(|j| j.name_any().starts_with("shop-replace-"))
                    .unwrap();
                r.annotations()["shopify-operator.dev/scheduled-at"]
                    == (slot + SignedDuration::from_mins(15)).to_string()
            })
            .then_some(())
        },
    )
    .await;
    assert_eq!(
        by_sync(&jobs(&env.client, &env.ns).await, "forbid"),
        1,
        "Forbid skipped the slot"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_invalid_schedules_and_invalid_tokens_start_nothing() {
    let syncs = json!([
        {"name": "ok", "schedule": "*/15 * * * *", "jobTemplate": template("ok")},
        {"name": "paused", "schedule": "*/15 * * * *", "suspend": true, "jobTemplate": template("paused")},
        {"name": "broken", "schedule": "*/15 * * *", "jobTemplate": template("broken")},
        {"name": "nowhere", "schedule": "0 2 * * *", "timeZone": "Mars/Olympus", "jobTemplate": template("nowhere")}
    ]);
    let (env, clock, slot) = shop_env("sync-invalid", syncs).await;
    let run = Running::start(&env, clock.clone()).await;
    env.wait_condition("shop", "SyncHealthy", "False", Some("InvalidSchedule"))
        .await;
    let (_, _, msg) = env.condition("shop", "SyncHealthy").await.unwrap();
    assert!(msg.contains("broken") && msg.contains("Mars/Olympus"), "{msg}");
    env.wait_condition("shop", "Ready", "False", Some("InvalidSchedule"))
        .await;
    clock.set(slot + SignedDuration::from_secs(1));
    let js = wait_for("the valid sync's Job", Duration::from_secs(60), || async {
        let js = jobs(&env.client, &env.ns).await;
        (!js.is_empty()).then_some(js)
    })
    .await;
    assert_eq!(
        js.len(),
        1,
        "only the valid, unsuspended sync runs: {:?}",
        js.iter().map(|j| j.name_any()).collect::<Vec<_>>()
    );
    assert!(js[0].name_any().starts_with("shop-ok-"));

    // A revoked token: no new Jobs, SyncHealthy says why.
    env.sim.revoke_token(DOMAIN);
    // The token is re-checked on the next webhooks pass: force one with a
    // spec change (any change of generation).
    let patch = json!({"spec": {"sync": [{"name": "ok", "schedule": "*/15 * * * *", "jobTemplate": template("ok")}]}});
    env.shops()
        .patch("shop", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.wait_condition("shop", "SyncHealthy", "False", Some("TokenInvalid"))
        .await;
    clock.set(slot + SignedDuration::from_mins(15) + SignedDuration::from_secs(1));
    // A pass that surely started after the jump: one for a generation made
    // after it (a pass already under way at the jump proves nothing).
    let patch = json!({"spec": {"sync": [{"name": "ok", "schedule": "*/15 * * * *", "successfulJobsHistoryLimit": 2,
        "jobTemplate": template("ok")}]}});
    env.shops()
        .patch("shop", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.wait_condition("shop", "SyncHealthy", "False", Some("TokenInvalid"))
        .await;
    env.wait_condition("shop", "TokenValid", "False", Some("TokenRevoked"))
        .await;
    assert_eq!(
        jobs(&env.client, &env.ns).await.len(),
        1,
        "a Job started with an invalid token"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_trigger_runs_once_per_value() {
    let syncs = json!([
        {"name": "orders", "schedule": "0 0 1 1 *", "jobTemplate": template("orders")},
        {"name": "products", "schedule": "0 0 1 1 *", "jobTemplate": template("products")}
    ]);
    let (env, clock, _) = shop_env("sync-manual", syncs).await;
    let run = Running::start(&env, clock.clone()).await;
    env.wait_condition("shop", "Ready", "True", None).await;
    let annotate = |v: &str| json!({"metadata": {"annotations": {"shopify-operator.dev/sync-now": v}}});
    env.shops()
        .patch("shop", &PatchParams::default(), &Patch::Merge(&annotate("first")))
        .await
        .unwrap();
    wait_for("both syncs run", Duration::from_secs(60), || async {
        let s = status(&env).await;
        (jobs(&env.client, &env.ns).await.len() == 2 && s.sync_now_handled.as_deref() == Some("first"))
            .then_some(())
    })
    .await;
    // Re-applying the same manifest (same value) changes nothing.
    let touch =
        json!({"metadata": {"annotations": {"shopify-operator.dev/sync-now": "first", "touched": "yes"}}});
    env.shops()
        .patch("shop", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .unwrap();
    // A value naming one sync runs only that one.
    env.shops()
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(&annotate("second name:orders")),
        )
        .await
        .unwrap();
    wait_for("orders runs again", Duration::from_secs(60), || async {
        (status(&env).await.sync_now_handled.as_deref() == Some("second name:orders")).then_some(())
    })
    .await;
    let js = jobs(&env.client, &env.ns).await;
    let names: Vec<String> = js.iter().map(|j| j.name_any()).collect();
    assert_eq!(js.len(), 3, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.starts_with("shop-orders-")).count(), 2);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_history_limits_and_time_zones() {
    let syncs = json!([
        {"name": "orders", "schedule": "*/15 * * * *", "failedJobsHistoryLimit": 1, "successfulJobsHistoryLimit": 1,
         "jobTemplate": template("orders")},
        {"name": "nightly", "schedule": "0 2 * * *", "timeZone": "Europe/Berlin", "jobTemplate": template("nightly")}
    ]);
    let (env, clock, slot) = shop_env("sync-history", syncs).await;
    let run = Running::start(&env, clock.clone()).await;
    env.wait_condition("shop", "Ready", "True", None).await;
    let orders = |js: Vec<Job>| {
        js.into_iter()
            .filter(|j| j.name_any().starts_with("shop-orders-"))
            .collect::<Vec<_>>()
    };
    // Three slots, three failures: SyncFailing, and one failed Job kept.
    for i in 0..3 {
        let at = slot + SignedDuration::from_mins(15 * i);
        clock.set(at + SignedDuration::from_secs(1));
        let name = format!("shop-orders-{}", at.as_second() / 60);
        wait_for(&name, Duration::from_secs(60), || async {
            orders(jobs(&env.client, &env.ns).await)
                .into_iter()
                .find(|j| j.name_any() == name)
        })
        .await;
        finish(&env.client, &env.ns, &name, false).await;
        wait_for("failure counted", Duration::from_secs(60), || async {
            (status(&env).await.sync.first()?.consecutive_failures == i as i32 + 1).then_some(())
        })
        .await;
    }
    env.wait_condition("shop", "SyncHealthy", "False", Some("SyncFailing"))
        .await;
    wait_for("history pruned to 1", Duration::from_secs(60), || async {
        (orders(jobs(&env.client, &env.ns).await).len() == 1).then_some(())
    })
    .await;

    // The nightly sync: the 02:00s in Berlin around the clock's last
    // reading, computed here from the tz database, not by the operator's
    // schedule code (01:00 UTC in winter, 00:00 in summer).
    let last = slot + SignedDuration::from_mins(30) + SignedDuration::from_secs(1);
    let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let two_am_of = |day: jiff::civil::Date| day.at(2, 0, 0, 0).to_zoned(berlin.clone()).unwrap().timestamp();
    let mut day = last.to_zoned(berlin.clone()).date();
    if two_am_of(day) > last {
        day = day.yesterday().unwrap();
    }
    // The newest 02:00 at or before the clock ran already when it lies after
    // the shop's creation (a suite started between 00:15 and 01:00 UTC in
    // winter). That Job still runs, and under the default Forbid it would
    // make the next slot skip, so it is checked and finished first: the
    // assertion below then holds at any hour of the day. (02:00 falls on a
    // quarter hour, and no quarter lies between the creation and `slot`.)
    let passed = two_am_of(day);
    let earlier = format!("shop-nightly-{}", passed.as_second() / 60);
    let nightly: Vec<String> = jobs(&env.client, &env.ns)
        .await
        .iter()
        .map(|j| j.name_any())
        .filter(|n| n.starts_with("shop-nightly-"))
        .collect();
    if passed >= slot {
        assert_eq!(
            nightly,
            std::slice::from_ref(&earlier),
            "the slot behind the clock ran once"
        );
        finish(&env.client, &env.ns, &earlier, true).await;
        wait_for("earlier nightly done", Duration::from_secs(60), || async {
            let st = status(&env).await;
            (st.sync.iter().find(|s| s.name == "nightly")?.active_jobs == 0).then_some(())
        })
        .await;
    } else {
        assert!(nightly.is_empty(), "no 02:00 since creation, yet {nightly:?}");
    }
    let two_am = two_am_of(day.tomorrow().unwrap());
    clock.set(two_am - SignedDuration::from_secs(30));
    clock.set(two_am + SignedDuration::from_secs(2));
    let name = format!("shop-nightly-{}", two_am.as_second() / 60);
    let nightly = wait_for(&name, Duration::from_secs(60), || async {
        jobs(&env.client, &env.ns)
            .await
            .into_iter()
            .find(|j| j.name_any() == name)
    })
    .await;
    assert_eq!(
        nightly.annotations()["shopify-operator.dev/scheduled-at"],
        two_am.to_string()
    );
    run.stop().await;
}
