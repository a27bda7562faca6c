//! A sync's history: its status entry from its Jobs, and which finished Jobs
//! the history limits prune. Pure.
//!
//! Finished Jobs are folded into the status in slot order past two
//! watermarks (`lastSuccessfulTime`, `lastFailureTime`), so counting
//! survives pruning: a Job is counted once, when first seen finished, and
//! the history limit can be 1 while `consecutiveFailures` reaches 3.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::job::{JobState, JobView};
use crate::crd::SyncStatus;

/// Default of `successfulJobsHistoryLimit`.
pub const DEFAULT_SUCCESS_LIMIT: i32 = 3;
/// Default of `failedJobsHistoryLimit`.
pub const DEFAULT_FAILED_LIMIT: i32 = 1;

fn ts(t: &Option<Time>) -> Option<Timestamp> {
    t.as_ref().map(|t| t.0)
}

/// The next status entry of a sync from its previous one and its Jobs.
pub fn fold(previous: &SyncStatus, jobs: &[&JobView]) -> SyncStatus {
    let mut next = previous.clone();
    let mut finished: Vec<&&JobView> = jobs.iter().filter(|j| j.state != JobState::Running).collect();
    finished.sort_by_key(|j| j.scheduled_at);
    for j in finished {
        match j.state {
            JobState::Succeeded if ts(&next.last_successful_time).is_none_or(|w| j.scheduled_at > w) => {
                next.last_successful_time = Some(Time(j.scheduled_at));
                next.consecutive_failures = 0;
            }
            JobState::Failed
                if ts(&next.last_failure_time).is_none_or(|w| j.scheduled_at > w)
                    && ts(&next.last_successful_time).is_none_or(|s| j.scheduled_at > s) =>
            {
                next.last_failure_time = Some(Time(j.scheduled_at));
                next.consecutive_failures += 1;
            }
            _ => {}
        }
    }
    next.active_jobs = jobs
        .iter()
        .filter(|j| j.state == JobState::Running && !j.deleting)
        .count() as i32;
    if let Some(newest) = jobs.iter().map(|j| j.scheduled_at).max()
        && ts(&next.last_schedule_time).is_none_or(|t| newest > t)
    {
        next.last_schedule_time = Some(Time(newest));
    }
    next
}

/// Finished Jobs beyond the history limits, oldest first.
pub fn to_prune<'a>(jobs: &[&'a JobView], success_limit: i32, failed_limit: i32) -> Vec<&'a JobView> {
    let mut out = Vec::new();
    for (state, limit) in [
        (JobState::Succeeded, success_limit),
        (JobState::Failed, failed_limit),
    ] {
        let mut of_state: Vec<&JobView> = jobs
            .iter()
            .copied()
            .filter(|j| j.state == state && !j.deleting)
            .collect();
        of_state.sort_by_key(|j| std::cmp::Reverse(j.scheduled_at));
        out.extend(of_state.into_iter().skip(limit.max(0) as usize));
    }
    out.sort_by_key(|j| j.scheduled_at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(minute: u32, state: JobState) -> JobView {
        JobView {
            name: format!("j{minute}"),
            sync: "orders".into(),
            scheduled_at: format!("2026-11-26T10:{minute:02}:00Z").parse().unwrap(),
            state,
            deleting: false,
        }
    }

    #[test]
    fn success_resets_failures_and_sets_since() {
        let jobs = [
            job(0, JobState::Failed),
            job(15, JobState::Succeeded),
            job(30, JobState::Running),
        ];
        let refs: Vec<&JobView> = jobs.iter().collect();
        let s = fold(
            &SyncStatus {
                name: "orders".into(),
                ..Default::default()
            },
            &refs,
        );
        assert_eq!(
            s.last_successful_time,
            Some(Time("2026-11-26T10:15:00Z".parse().unwrap()))
        );
        assert_eq!(s.consecutive_failures, 0);
        assert_eq!(s.active_jobs, 1);
        assert_eq!(
            s.last_schedule_time,
            Some(Time("2026-11-26T10:30:00Z".parse().unwrap()))
        );
    }

    #[test]
    fn failures_count_once_across_pruning() {
        let mut s = SyncStatus {
            name: "orders".into(),
            ..Default::default()
        };
        // Each reconcile sees only the newest failed Job (history limit 1).
        for minute in [0, 15, 30] {
            let j = [job(minute, JobState::Failed)];
            let refs: Vec<&JobView> = j.iter().collect();
            s = fold(&s, &refs);
            // Seen again: not counted twice.
            s = fold(&s, &refs);
        }
        assert_eq!(s.consecutive_failures, 3);
        let ok = [job(45, JobState::Succeeded)];
        let refs: Vec<&JobView> = ok.iter().collect();
        assert_eq!(fold(&s, &refs).consecutive_failures, 0);
    }

    #[test]
    fn prune_keeps_the_newest() {
        let jobs: Vec<JobView> = (0..5)
            .map(|i| {
                job(
                    i * 10,
                    if i % 2 == 0 {
                        JobState::Succeeded
                    } else {
                        JobState::Failed
                    },
                )
            })
            .chain([job(55, JobState::Running)])
            .collect();
        let refs: Vec<&JobView> = jobs.iter().collect();
        let pruned: Vec<&str> = to_prune(&refs, 2, 1).iter().map(|j| j.name.as_str()).collect();
        assert_eq!(pruned, ["j0", "j10"]);
        assert!(to_prune(&refs, 10, 10).is_empty());
    }
}
