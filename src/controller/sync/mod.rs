//! The sync duty: run each `spec.sync[]` as Kubernetes Jobs, one per
//! schedule slot, and keep per-sync status. Reads and writes Jobs in the
//! shop's namespace; no Shopify calls (the Jobs make those).
//!
//! Manual trigger: annotate the ShopifyShop with
//! `shopify-operator.dev/sync-now: <any new value>` (e.g. a timestamp) to run
//! every sync once; a value containing `name:` followed by comma-separated
//! sync names (e.g. `2026-11-26T10:00 name:orders,products`) runs only those.
//! `status.syncNowHandled` records the value handled, so re-applying the
//! same manifest does not run them again; use a new value for a new run.

pub mod history;
pub mod job;
pub mod schedule;

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::conditions::{Cond, Status};
use super::{Context, Note};
use crate::crd::{ManagementPolicy, ShopifyShop, SyncStatus};
use job::{JobInputs, JobState, JobView, SHOP_LABEL};
use schedule::{Decision, Inputs, Schedule};

/// The condition type this duty writes.
pub const SYNC_HEALTHY: &str = "SyncHealthy";
/// The manual-trigger annotation.
pub const SYNC_NOW: &str = "shopify-operator.dev/sync-now";

/// What the sync duty found and did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `SyncHealthy`.
    pub cond: Cond,
    /// `status.sync`.
    pub entries: Vec<SyncStatus>,
    /// `status.lastSyncTime`.
    pub last_sync_time: Option<Time>,
    /// `status.syncNowHandled`.
    pub trigger_handled: Option<String>,
    /// When the next slot is due.
    pub wake: Option<Duration>,
    /// Events.
    pub notes: Vec<Note>,
}

/// Which syncs a trigger value names (`None`: all).
pub fn trigger_targets(value: &str) -> Option<Vec<String>> {
    let (_, names) = value.split_once("name:")?;
    let names: Vec<String> = names
        .split([',', ' '])
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    (!names.is_empty()).then_some(names)
}

/// Runs the sync duty for `shop`. `token_valid` gates new Jobs.
pub async fn reconcile<'a>(
    ctx: &Context,
    shop: &'a ShopifyShop,
    token_valid: bool,
) -> Result<Outcome, kube::Error> {
    let status = shop.status.clone().unwrap_or_default();
    if shop.spec.sync.is_empty() {
        return Ok(Outcome {
            cond: Cond::new(
                SYNC_HEALTHY,
                Status::True,
                "NotConfigured",
                "no syncs in spec.sync",
            ),
            entries: Vec::new(),
            last_sync_time: None,
            trigger_handled: status.sync_now_handled.clone(),
            wake: None,
            notes: Vec::new(),
        });
    }
    let ns = shop.namespace().unwrap_or_default();
    let name = shop.name_any();
    let uid = shop.uid().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let listed = jobs_api
        .list(&ListParams::default().labels(&format!("{SHOP_LABEL}={name}")))
        .await?;
    let views: Vec<JobView> = listed
        .items
        .iter()
        .filter(|j| {
            j.owner_references()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
        .filter_map(job::view)
        .collect();

    let now = ctx.clock.now();
    let created = shop
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let observe = shop.spec.management_policy_or_default() == ManagementPolicy::Observe;
    let trigger: Option<&'a str> = shop
        .annotations()
        .get(SYNC_NOW)
        .map(String::as_str)
        .filter(|v| !v.is_empty() && status.sync_now_handled.as_deref() != Some(*v));
    let targets = trigger.map(trigger_targets);
    let can_start = token_valid && !observe;

    let mut out = Outcome {
        cond: Cond::new(SYNC_HEALTHY, Status::True, "Scheduled", ""),
        entries: Vec::new(),
        last_sync_time: None,
        trigger_handled: status.sync_now_handled.clone(),
        wake: None,
        notes: Vec::new(),
    };
    let mut invalid = Vec::new();
    let mut failing = Vec::new();
    let mut next_wake: Option<Timestamp> = None;

    for spec in &shop.spec.sync {
        let mine: Vec<&JobView> = views.iter().filter(|j| j.sync == spec.name).collect();
        let previous = status
            .sync
            .iter()
            .find(|s| s.name == spec.name)
            .cloned()
            .unwrap_or_else(|| SyncStatus {
                name: spec.name.clone(),
                ..Default::default()
            });
        let mut entry = history::fold(&previous, &mine);
        count_finished(ctx, &previous, &entry);
        let since = entry.last_successful_time.as_ref().map(|t| t.0);
        let inputs = |at: Timestamp, trig: Option<&'a str>| JobInputs {
            shop: &name,
            shop_uid: &uid,
            domain: &shop.spec.domain,
            api_version: shop.spec.admin_api_version_or_default(),
            token_secret: &shop.spec.token.secret_ref.name,
            sync: &spec.name,
            template: &spec.job_template,
            scheduled_at: at,
            since,
            trigger: trig,
        };

        let schedule = match Schedule::parse(spec) {
            Ok(s) => Some(s),
            Err(e) => {
                invalid.push(format!("{}: {e}", spec.name));
                None
            }
        };
        let suspended = spec.suspend.unwrap_or(false);
        let running: Vec<&&JobView> = mine
            .iter()
            .filter(|j| j.state == JobState::Running && !j.deleting)
            .collect();

        if let Some(schedule) = &schedule {
            let decision = schedule::decide(
                schedule,
                &Inputs {
                    spec,
                    now,
                    last_schedule: entry.last_schedule_time.as_ref().map(|t| t.0),
                    created,
                    running: running.len(),
                },
            );
            if let (
                Decision::Start {
                    slot,
                    replace_running,
                },
                true,
                false,
            ) = (&decision, can_start, suspended)
            {
                match job::build(&inputs(*slot, None)) {
                    Err(e) => invalid.push(format!("{}: {e}", spec.name)),
                    Ok(job) => {
                        if *replace_running {
                            for r in &running {
                                delete_job(&jobs_api, &r.name).await?;
                            }
                        }
                        start_job(
                            ctx,
                            &jobs_api,
                            &job,
                            &mut out.notes,
                            &format!("sync {} for {slot}", spec.name),
                        )
                        .await?;
                        entry.last_schedule_time = Some(Time(*slot));
                        entry.active_jobs = running.len() as i32 + 1
                            - if *replace_running { running.len() as i32 } else { 0 };
                    }
                }
            }
            if let Some(next) = schedule.next_slot(now) {
                next_wake = Some(next_wake.map_or(next, |w| w.min(next)));
            }
        }

        // A manual trigger runs even a sync whose schedule is invalid.
        let targeted = targets
            .as_ref()
            .is_some_and(|t| t.as_ref().is_none_or(|names| names.contains(&spec.name)));
        if targeted && can_start && !suspended {
            let value = trigger.unwrap_or_default();
            match job::build(&inputs(now, Some(value))) {
                Err(e) => invalid.push(format!("{}: {e}", spec.name)),
                Ok(job) => {
                    let what = format!("sync {} (sync-now {value:?})", spec.name);
                    start_job(ctx, &jobs_api, &job, &mut out.notes, &what).await?;
                    entry.active_jobs += 1;
                }
            }
        }

        let success_limit = spec
            .successful_jobs_history_limit
            .unwrap_or(history::DEFAULT_SUCCESS_LIMIT);
        let failed_limit = spec
            .failed_jobs_history_limit
            .unwrap_or(history::DEFAULT_FAILED_LIMIT);
        for j in history::to_prune(&mine, success_limit, failed_limit) {
            delete_job(&jobs_api, &j.name).await?;
        }
        if entry.consecutive_failures >= ctx.settings.sync_failure_threshold as i32 {
            failing.push(format!(
                "{} failed {} times in a row",
                spec.name, entry.consecutive_failures
            ));
        }
        out.entries.push(entry);
    }
    if trigger.is_some() && can_start {
        out.trigger_handled = trigger.map(str::to_string);
    }
    out.last_sync_time = out
        .entries
        .iter()
        .filter_map(|e| e.last_successful_time.clone())
        .max();
    out.wake = next_wake.map(|w| {
        let secs = w.duration_since(now).as_secs_f64().max(0.0);
        // Wake just past the slot, so `now` is inside it.
        Duration::from_secs_f64(secs) + Duration::from_millis(500)
    });
    out.cond = if !invalid.is_empty() {
        Cond::new(SYNC_HEALTHY, Status::False, "InvalidSchedule", invalid.join("; "))
    } else if !token_valid && !observe {
        Cond::new(
            SYNC_HEALTHY,
            Status::False,
            "TokenInvalid",
            "no new sync Jobs while TokenValid is not True",
        )
    } else if !failing.is_empty() {
        Cond::new(SYNC_HEALTHY, Status::False, "SyncFailing", failing.join("; "))
    } else if observe {
        Cond::new(
            SYNC_HEALTHY,
            Status::True,
            "Observe",
            "managementPolicy Observe: no sync Jobs are started",
        )
    } else {
        let suspended: Vec<&str> = shop
            .spec
            .sync
            .iter()
            .filter(|s| s.suspend.unwrap_or(false))
            .map(|s| s.name.as_str())
            .collect();
        let msg = if suspended.is_empty() {
            format!("{} syncs scheduled", shop.spec.sync.len())
        } else {
            format!("suspended: {}", suspended.join(", "))
        };
        Cond::new(SYNC_HEALTHY, Status::True, "Scheduled", msg)
    };
    Ok(out)
}

fn job_outcome(outcome: &str) -> crate::metrics::JobLabels {
    crate::metrics::JobLabels {
        outcome: outcome.into(),
    }
}

/// Counts Jobs newly seen finished (the watermarks moved).
fn count_finished(ctx: &Context, before: &SyncStatus, after: &SyncStatus) {
    if after.last_successful_time != before.last_successful_time {
        ctx.metrics
            .sync_jobs
            .get_or_create(&job_outcome("succeeded"))
            .inc();
    }
    let failed = after.consecutive_failures - before.consecutive_failures;
    if after.last_failure_time != before.last_failure_time && failed > 0 {
        ctx.metrics
            .sync_jobs
            .get_or_create(&job_outcome("failed"))
            .inc_by(failed as u64);
    }
}

/// Creates `job` and, when it is new, counts it and notes an Event.
async fn start_job(
    ctx: &Context,
    api: &Api<Job>,
    job: &Job,
    notes: &mut Vec<Note>,
    what: &str,
) -> Result<(), kube::Error> {
    if create_job(api, job).await? {
        ctx.metrics.sync_jobs.get_or_create(&job_outcome("created")).inc();
        let msg = format!("{what}: started Job {}", job.name_any());
        notes.push(Note::new(EventType::Normal, "SyncJobCreated", "StartSync", msg));
    }
    Ok(())
}

/// Creates `job`; an existing Job of the same (deterministic) name means
/// this slot already has its Job — e.g. made before a restart — and is fine.
async fn create_job(api: &Api<Job>, job: &Job) -> Result<bool, kube::Error> {
    match api.create(&PostParams::default(), job).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

async fn delete_job(api: &Api<Job>, name: &str) -> Result<(), kube::Error> {
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_syntax() {
        assert_eq!(trigger_targets("2026-11-26T10:00:00Z"), None);
        let both = Some(vec!["orders".to_string(), "products".to_string()]);
        assert_eq!(trigger_targets("2026-11-26T10:00 name:orders,products"), both);
        assert_eq!(trigger_targets("name:orders, products"), both);
        assert_eq!(trigger_targets("run-7 name:"), None);
    }
}
