//! The sync duty: run each `spec.sync[]` as Kubernetes Jobs, one per
//! schedule slot, and keep per-sync status. `plan` decides (pure); this
//! module lists the shop's Jobs and applies the plan. Reads and writes Jobs
//! in the shop's namespace; no Shopify calls (the Jobs make those).
//!
//! Manual trigger: annotate the ShopifyShop with
//! `shopify-operator.dev/sync-now: <any new value>` (e.g. a timestamp) to run
//! every sync once; a value containing `name:` followed by comma-separated
//! sync names (e.g. `2026-11-26T10:00 name:orders,products`) runs only those.
//! `status.syncNowHandled` records the value handled, so re-applying the
//! same manifest does not run them again; use a new value for a new run.

mod history;
mod job;
mod plan;
mod schedule;

pub use job::SHOP_LABEL;
use plan::{JobAction, SyncPlan};

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use crate::controller::conditions::Cond;
use crate::controller::{Context, Note};
use crate::crd::{ShopifyShop, SyncStatus};
use job::JobView;

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

/// Runs the sync duty for `shop`: list its Jobs, plan (pure), then delete
/// and create as planned. `token_valid` gates new Jobs.
pub async fn reconcile(ctx: &Context, shop: &ShopifyShop, token_valid: bool) -> Result<Outcome, kube::Error> {
    if shop.spec.sync.is_empty() {
        return Ok(plan::plan(shop, &no_jobs(ctx, token_valid)).outcome);
    }
    let ns = shop.namespace().unwrap_or_default();
    let uid = shop.uid().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let listed = api
        .list(&ListParams::default().labels(&format!("{SHOP_LABEL}={}", shop.name_any())))
        .await?;
    let jobs: Vec<JobView> = listed
        .items
        .iter()
        .filter(|j| {
            j.owner_references()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
        .filter_map(job::view)
        .collect();
    let plan = plan::plan(
        shop,
        &plan::Inputs {
            jobs: &jobs,
            ..no_jobs(ctx, token_valid)
        },
    );
    apply(ctx, &api, plan).await
}

fn no_jobs(ctx: &Context, token_valid: bool) -> plan::Inputs<'static> {
    plan::Inputs {
        jobs: &[],
        now: ctx.clock.now(),
        token_valid,
        failure_threshold: ctx.settings.sync_failure_threshold,
    }
}

/// Carries out `plan` in order; a new Job is counted and gets an Event.
async fn apply(ctx: &Context, api: &Api<Job>, plan: SyncPlan) -> Result<Outcome, kube::Error> {
    let (succeeded, failed) = plan.finished;
    if succeeded > 0 {
        ctx.metrics
            .sync_jobs
            .get_or_create(&job_outcome("succeeded"))
            .inc_by(succeeded);
    }
    if failed > 0 {
        ctx.metrics
            .sync_jobs
            .get_or_create(&job_outcome("failed"))
            .inc_by(failed);
    }
    let mut out = plan.outcome;
    for action in plan.actions {
        match action {
            JobAction::Delete(name) => delete_job(api, &name).await?,
            JobAction::Create { job, what } => {
                if create_job(api, &job).await? {
                    ctx.metrics.sync_jobs.get_or_create(&job_outcome("created")).inc();
                    let msg = format!("{what}: started Job {}", job.name_any());
                    out.notes
                        .push(Note::new(EventType::Normal, "SyncJobCreated", "StartSync", msg));
                }
            }
        }
    }
    Ok(out)
}

fn job_outcome(outcome: &str) -> crate::metrics::JobLabels {
    crate::metrics::JobLabels {
        outcome: outcome.into(),
    }
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
