//! The sync duty's plan: from the shop, its Jobs and the clock to which Jobs
//! to delete and start (in order) and what to report. Pure: no apiserver,
//! no clock of its own, so every schedule, trigger and history rule is a
//! unit test.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::history;
use super::job::{self, JobInputs, JobState, JobView};
use super::schedule::{self, Decision, Schedule};
use super::{Outcome, SYNC_NOW, trigger_targets};
use crate::controller::conditions::{Cond, ConditionType, Reason, Status};
use crate::crd::{ManagementPolicy, ShopifyShop, SyncSpec, SyncStatus};

/// What the planner looks at besides the shop.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The shop's Jobs (owned by it, labelled with a sync and a slot).
    pub jobs: &'a [JobView],
    /// Now.
    pub now: Timestamp,
    /// Whether `TokenValid` is True (new Jobs need a valid token).
    pub token_valid: bool,
    /// Consecutive failed Jobs that make `SyncHealthy` False.
    pub failure_threshold: u32,
}

/// One change to the shop's Jobs, applied in plan order.
#[derive(Debug, Clone)]
pub enum JobAction {
    /// Delete the named Job (a replaced run or one past the history limit).
    Delete(String),
    /// Create this Job; `what` says why, for the Event.
    Create {
        /// The Job, with its deterministic per-slot name.
        job: Box<Job>,
        /// e.g. `sync orders for 2026-11-26T10:15:00Z`.
        what: String,
    },
}

/// The plan of one pass.
#[derive(Debug, Clone)]
pub struct SyncPlan {
    /// Deletions and creations, in order.
    pub actions: Vec<JobAction>,
    /// Jobs newly seen finished: (succeeded, failed), for the metrics.
    pub finished: (u64, u64),
    /// What to report (`Outcome::notes` is empty: Events come from apply).
    pub outcome: Outcome,
}

#[cfg(test)]
impl SyncPlan {
    /// The names of the Jobs to create, in order.
    fn creates(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                JobAction::Create { job, .. } => Some(job.name_any()),
                JobAction::Delete(_) => None,
            })
            .collect()
    }

    /// The names of the Jobs to delete, in order.
    fn deletes(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                JobAction::Delete(name) => Some(name.as_str()),
                JobAction::Create { .. } => None,
            })
            .collect()
    }
}

/// The outcome of a shop with no `spec.sync`.
fn not_configured(shop: &ShopifyShop) -> Outcome {
    Outcome {
        cond: Cond::new(
            ConditionType::SyncHealthy,
            Status::True,
            Reason::NotConfigured,
            "no syncs in spec.sync",
        ),
        entries: Vec::new(),
        last_sync_time: None,
        trigger_handled: shop.status.as_ref().and_then(|s| s.sync_now_handled.clone()),
        wake: None,
        notes: Vec::new(),
    }
}

/// Plans the sync duty of `shop`.
pub fn plan(shop: &ShopifyShop, input: &Inputs<'_>) -> SyncPlan {
    let mut plan = SyncPlan {
        actions: Vec::new(),
        finished: (0, 0),
        outcome: not_configured(shop),
    };
    if shop.spec.sync.is_empty() {
        return plan;
    }
    let status = shop.status.clone().unwrap_or_default();
    let now = input.now;
    let observe = shop.spec.management_policy_or_default() == ManagementPolicy::Observe;
    let trigger: Option<&str> = shop
        .annotations()
        .get(SYNC_NOW)
        .map(String::as_str)
        .filter(|v| !v.is_empty() && status.sync_now_handled.as_deref() != Some(*v));
    let targets = trigger.map(trigger_targets);
    let can_start = input.token_valid && !observe;
    let mut pass = Pass {
        shop,
        now,
        created: shop.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0),
        can_start,
        invalid: Vec::new(),
        failing: Vec::new(),
        next_wake: None,
    };

    let mut entries = Vec::new();
    for spec in &shop.spec.sync {
        let previous = status
            .sync
            .iter()
            .find(|s| s.name == spec.name)
            .cloned()
            .unwrap_or_else(|| SyncStatus {
                name: spec.name.clone(),
                ..Default::default()
            });
        let mine: Vec<&JobView> = input.jobs.iter().filter(|j| j.sync == spec.name).collect();
        let mut entry = history::fold(&previous, &mine);
        plan.finished.0 += u64::from(entry.last_successful_time != previous.last_successful_time);
        if entry.last_failure_time != previous.last_failure_time {
            plan.finished.1 += (entry.consecutive_failures - previous.consecutive_failures).max(0) as u64;
        }

        pass.scheduled(spec, &mine, &mut entry, &mut plan.actions);
        // A manual trigger runs even a sync whose schedule is invalid.
        let targeted = targets
            .as_ref()
            .is_some_and(|t| t.as_ref().is_none_or(|names| names.contains(&spec.name)));
        if targeted {
            pass.triggered(spec, trigger.unwrap_or_default(), &mut entry, &mut plan.actions);
        }

        let success_limit = spec
            .successful_jobs_history_limit
            .unwrap_or(history::DEFAULT_SUCCESS_LIMIT);
        let failed_limit = spec
            .failed_jobs_history_limit
            .unwrap_or(history::DEFAULT_FAILED_LIMIT);
        for j in history::to_prune(&mine, success_limit, failed_limit) {
            plan.actions.push(JobAction::Delete(j.name.clone()));
        }
        if entry.consecutive_failures >= input.failure_threshold as i32 {
            pass.failing.push(format!(
                "{} failed {} times in a row",
                spec.name, entry.consecutive_failures
            ));
        }
        entries.push(entry);
    }

    let out = &mut plan.outcome;
    if trigger.is_some() && can_start {
        out.trigger_handled = trigger.map(str::to_string);
    }
    out.last_sync_time = entries
        .iter()
        .filter_map(|e| e.last_successful_time.clone())
        .max();
    out.entries = entries;
    out.wake = pass.next_wake.map(|w| {
        let secs = w.duration_since(now).as_secs_f64().max(0.0);
        // Wake just past the slot, so `now` is inside it.
        Duration::from_secs_f64(secs) + Duration::from_millis(500)
    });
    out.cond = pass.condition(input.token_valid, observe);
    plan
}

/// What one planning pass carries from sync to sync.
struct Pass<'a> {
    shop: &'a ShopifyShop,
    now: Timestamp,
    created: Timestamp,
    can_start: bool,
    invalid: Vec<String>,
    failing: Vec<String>,
    next_wake: Option<Timestamp>,
}

impl Pass<'_> {
    fn job(
        &self,
        spec: &SyncSpec,
        entry: &SyncStatus,
        at: Timestamp,
        trigger: Option<&str>,
    ) -> Result<Job, String> {
        let shop = self.shop;
        job::build(&JobInputs {
            shop: &shop.name_any(),
            shop_uid: &shop.uid().unwrap_or_default(),
            domain: &shop.spec.domain,
            api_version: shop.spec.admin_api_version_or_default(),
            token_secret: &shop.spec.token.secret_ref.name,
            sync: &spec.name,
            template: &spec.job_template,
            scheduled_at: at,
            since: entry.last_successful_time.as_ref().map(|t| t.0),
            trigger,
        })
    }

    /// The schedule's slot, if one is due: replace running Jobs when the
    /// concurrency policy says so, then start the slot's Job.
    fn scheduled(
        &mut self,
        spec: &SyncSpec,
        mine: &[&JobView],
        entry: &mut SyncStatus,
        actions: &mut Vec<JobAction>,
    ) {
        let schedule = match Schedule::parse(spec) {
            Ok(s) => s,
            Err(e) => {
                self.invalid.push(format!("{}: {e}", spec.name));
                return;
            }
        };
        let running: Vec<&&JobView> = mine
            .iter()
            .filter(|j| j.state == JobState::Running && !j.deleting)
            .collect();
        let decision = schedule::decide(
            &schedule,
            &schedule::Inputs {
                spec,
                now: self.now,
                last_schedule: entry.last_schedule_time.as_ref().map(|t| t.0),
                created: self.created,
                running: running.len(),
            },
        );
        if let Decision::Start {
            slot,
            replace_running,
        } = decision
            && self.can_start
            && !spec.suspend.unwrap_or(false)
        {
            match self.job(spec, entry, slot, None) {
                Err(e) => self.invalid.push(format!("{}: {e}", spec.name)),
                Ok(job) => {
                    if replace_running {
                        actions.extend(running.iter().map(|r| JobAction::Delete(r.name.clone())));
                    }
                    actions.push(JobAction::Create {
                        job: Box::new(job),
                        what: format!("sync {} for {slot}", spec.name),
                    });
                    entry.last_schedule_time = Some(Time(slot));
                    entry.active_jobs = if replace_running {
                        1
                    } else {
                        running.len() as i32 + 1
                    };
                }
            }
        }
        if let Some(next) = schedule.next_slot(self.now) {
            self.next_wake = Some(self.next_wake.map_or(next, |w| w.min(next)));
        }
    }

    /// A `sync-now` trigger naming this sync (or all).
    fn triggered(
        &mut self,
        spec: &SyncSpec,
        value: &str,
        entry: &mut SyncStatus,
        actions: &mut Vec<JobAction>,
    ) {
        if !self.can_start || spec.suspend.unwrap_or(false) {
            return;
        }
        match self.job(spec, entry, self.now, Some(value)) {
            Err(e) => self.invalid.push(format!("{}: {e}", spec.name)),
            Ok(job) => {
                actions.push(JobAction::Create {
                    job: Box::new(job),
                    what: format!("sync {} (sync-now {value:?})", spec.name),
                });
                entry.active_jobs += 1;
            }
        }
    }

    /// `SyncHealthy`: invalid schedules first, then a missing token, then
    /// failing syncs; else why it is fine.
    fn condition(&self, token_valid: bool, observe: bool) -> Cond {
        let cond =
            |status, reason, message: String| Cond::new(ConditionType::SyncHealthy, status, reason, message);
        if !self.invalid.is_empty() {
            return cond(Status::False, Reason::InvalidSchedule, self.invalid.join("; "));
        }
        if !token_valid && !observe {
            return cond(
                Status::False,
                Reason::TokenInvalid,
                "no new sync Jobs while TokenValid is not True".into(),
            );
        }
        if !self.failing.is_empty() {
            return cond(Status::False, Reason::SyncFailing, self.failing.join("; "));
        }
        if observe {
            return cond(
                Status::True,
                Reason::Observe,
                "managementPolicy Observe: no sync Jobs are started".into(),
            );
        }
        let syncs = &self.shop.spec.sync;
        let suspended: Vec<&str> = syncs
            .iter()
            .filter(|s| s.suspend.unwrap_or(false))
            .map(|s| s.name.as_str())
            .collect();
        let msg = if suspended.is_empty() {
            format!("{} syncs scheduled", syncs.len())
        } else {
            format!("suspended: {}", suspended.join(", "))
        };
        cond(Status::True, Reason::Scheduled, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = r#"
apiVersion: shopify-operator.dev/v1alpha1
kind: ShopifyShop
metadata:
  name: online
  namespace: oms
  uid: uid-1
  generation: 1
  creationTimestamp: "2026-11-26T09:00:00Z"
spec:
  domain: ps-direct-fulfilment-online.myshopify.com
  token: {secretRef: {name: online-shopify-token}}
  sync:
  - name: orders
    schedule: "*/15 * * * *"
    jobTemplate:
      spec:
        template:
          spec:
            containers: [{name: sync, image: "oms:1.2"}]
  - name: products
    schedule: "0 * * * *"
    jobTemplate:
      spec:
        template:
          spec:
            containers: [{name: sync, image: "oms:1.2"}]
status:
  sync:
  - {name: orders, lastScheduleTime: "2026-11-26T10:00:00Z", activeJobs: 0, consecutiveFailures: 0}
  - {name: products, lastScheduleTime: "2026-11-26T10:00:00Z", activeJobs: 0, consecutiveFailures: 0}
"#;

    fn shop(patch: &str) -> ShopifyShop {
        let mut base: serde_json::Value = serde_norway::from_str(SHOP).unwrap();
        let patch: serde_json::Value = serde_norway::from_str(patch).unwrap();
        merge(&mut base, patch);
        serde_json::from_value(base).unwrap()
    }

    /// A JSON merge patch (RFC 7386), so each test says only what differs.
    fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
        match (base, patch) {
            (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        b.remove(&k);
                    } else {
                        merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                    }
                }
            }
            (b, p) => *b = p,
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn view(sync: &str, slot: &str, state: JobState) -> JobView {
        let at = ts(slot);
        JobView {
            name: job::job_name("online", sync, at, None),
            sync: sync.into(),
            scheduled_at: at,
            state,
            deleting: false,
        }
    }

    fn inputs<'a>(jobs: &'a [JobView], now: &str) -> Inputs<'a> {
        Inputs {
            jobs,
            now: ts(now),
            token_valid: true,
            failure_threshold: 3,
        }
    }

    #[test]
    fn a_due_slot_starts_one_job_and_a_started_slot_none() {
        let s = shop("{}");
        let p = plan(&s, &inputs(&[], "2026-11-26T10:16:00Z"));
        let orders_slot = job::job_name("online", "orders", ts("2026-11-26T10:15:00Z"), None);
        assert_eq!(p.creates(), vec![orders_slot.clone()]);
        let orders = &p.outcome.entries[0];
        assert_eq!(orders.last_schedule_time, Some(Time(ts("2026-11-26T10:15:00Z"))));
        assert_eq!(orders.active_jobs, 1);
        assert_eq!(
            (p.outcome.cond.status, p.outcome.cond.reason),
            (Status::True, Reason::Scheduled)
        );
        // Next wake: the 10:30 slot, just past it.
        assert_eq!(
            p.outcome.wake,
            Some(Duration::from_secs(14 * 60) + Duration::from_millis(500))
        );

        // The next pass sees its Job running and the slot recorded: nothing.
        let s = shop(
            r#"{status: {sync: [{name: orders, lastScheduleTime: "2026-11-26T10:15:00Z", activeJobs: 1, consecutiveFailures: 0}, {name: products, lastScheduleTime: "2026-11-26T10:00:00Z", activeJobs: 0, consecutiveFailures: 0}]}}"#,
        );
        let jobs = [view("orders", "2026-11-26T10:15:00Z", JobState::Running)];
        let p = plan(&s, &inputs(&jobs, "2026-11-26T10:16:30Z"));
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.outcome.entries[0].active_jobs, 1);
    }

    #[test]
    fn replace_deletes_the_running_job_before_starting_the_slot() {
        let s = shop(
            r#"{spec: {sync: [{name: orders, schedule: "*/15 * * * *", concurrencyPolicy: Replace, jobTemplate: {spec: {template: {spec: {containers: [{name: sync, image: x}]}}}}}]}}"#,
        );
        let running = [view("orders", "2026-11-26T10:00:00Z", JobState::Running)];
        let p = plan(&s, &inputs(&running, "2026-11-26T10:16:00Z"));
        assert!(matches!(&p.actions[0], JobAction::Delete(n) if *n == running[0].name));
        assert_eq!(p.creates().len(), 1);
        assert_eq!(p.outcome.entries[0].active_jobs, 1);

        let s = shop(
            r#"{spec: {sync: [{name: orders, schedule: "*/15 * * * *", concurrencyPolicy: Forbid, jobTemplate: {spec: {template: {spec: {containers: [{name: sync, image: x}]}}}}}]}}"#,
        );
        let p = plan(&s, &inputs(&running, "2026-11-26T10:16:00Z"));
        assert!(p.actions.is_empty(), "Forbid with a running Job: {:?}", p.actions);
    }

    #[test]
    fn no_new_jobs_without_a_valid_token_or_under_observe() {
        let s = shop("{}");
        let mut i = inputs(&[], "2026-11-26T10:16:00Z");
        i.token_valid = false;
        let p = plan(&s, &i);
        assert!(p.actions.is_empty());
        assert_eq!(
            (p.outcome.cond.status, p.outcome.cond.reason),
            (Status::False, Reason::TokenInvalid)
        );

        let s = shop("{spec: {managementPolicy: Observe}}");
        let p = plan(&s, &inputs(&[], "2026-11-26T10:16:00Z"));
        assert!(p.actions.is_empty());
        assert_eq!(
            (p.outcome.cond.status, p.outcome.cond.reason),
            (Status::True, Reason::Observe)
        );
    }

    #[test]
    fn sync_now_runs_the_named_syncs_once() {
        let s =
            shop(r#"{metadata: {annotations: {"shopify-operator.dev/sync-now": "run-1 name:products"}}}"#);
        let p = plan(&s, &inputs(&[], "2026-11-26T10:05:00Z"));
        let creates = p.creates();
        assert_eq!(creates.len(), 1, "{creates:?}");
        assert!(creates[0].starts_with("online-products-m"), "{creates:?}");
        assert_eq!(p.outcome.trigger_handled.as_deref(), Some("run-1 name:products"));
        assert_eq!(p.outcome.entries[1].active_jobs, 1);

        // Handled already: nothing runs again.
        let s = shop(
            r#"{metadata: {annotations: {"shopify-operator.dev/sync-now": "run-1 name:products"}}, status: {syncNowHandled: "run-1 name:products"}}"#,
        );
        let p = plan(&s, &inputs(&[], "2026-11-26T10:05:00Z"));
        assert!(p.actions.is_empty());
    }

    #[test]
    fn failures_in_a_row_make_it_unhealthy_and_old_jobs_are_pruned() {
        let s = shop("{}");
        let jobs = [
            view("orders", "2026-11-26T09:30:00Z", JobState::Failed),
            view("orders", "2026-11-26T09:45:00Z", JobState::Failed),
            view("orders", "2026-11-26T10:00:00Z", JobState::Failed),
        ];
        let p = plan(&s, &inputs(&jobs, "2026-11-26T10:05:00Z"));
        assert_eq!(p.finished, (0, 3));
        assert_eq!(p.outcome.entries[0].consecutive_failures, 3);
        assert_eq!(
            (p.outcome.cond.status, p.outcome.cond.reason),
            (Status::False, Reason::SyncFailing)
        );
        // failedJobsHistoryLimit defaults to 1: the two oldest go.
        assert_eq!(p.deletes(), vec![jobs[0].name.as_str(), jobs[1].name.as_str()]);
    }

    #[test]
    fn an_invalid_schedule_is_reported_but_a_trigger_still_runs() {
        let s = shop(
            r#"{metadata: {annotations: {"shopify-operator.dev/sync-now": "now"}}, spec: {sync: [{name: orders, schedule: "not a cron", jobTemplate: {spec: {template: {spec: {containers: [{name: sync, image: x}]}}}}}]}}"#,
        );
        let p = plan(&s, &inputs(&[], "2026-11-26T10:05:00Z"));
        assert_eq!(
            (p.outcome.cond.status, p.outcome.cond.reason),
            (Status::False, Reason::InvalidSchedule)
        );
        assert!(
            p.outcome.cond.message.starts_with("orders: "),
            "{}",
            p.outcome.cond.message
        );
        assert_eq!(p.creates().len(), 1);
        assert_eq!(p.outcome.wake, None);
    }

    #[test]
    fn no_syncs_is_not_configured_and_keeps_the_handled_trigger() {
        let s = shop(r#"{spec: {sync: null}, status: {syncNowHandled: "x"}}"#);
        let p = plan(&s, &inputs(&[], "2026-11-26T10:05:00Z"));
        assert!(p.actions.is_empty());
        assert_eq!(p.outcome.cond.reason, Reason::NotConfigured);
        assert_eq!(p.outcome.trigger_handled.as_deref(), Some("x"));
    }
}
