//! Cron schedules and the decision "start a Job now?". Pure: time comes in
//! as an argument.
//!
//! Slots follow Kubernetes CronJob semantics: the slot to run is the most
//! recent one in `(lastScheduleTime, now]`; a slot missed while the operator
//! was down is caught up at most once (only the newest missed slot), and not
//! at all when it is older than `startingDeadlineSeconds`.

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::crd::{ConcurrencyPolicy, SyncSpec};

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: TimeZone,
}

impl Schedule {
    /// Parses `spec.schedule` (5 fields, or a `@hourly`-style nickname) and
    /// `spec.timeZone` (IANA; default UTC). The error is the parser's message.
    pub fn parse(spec: &SyncSpec) -> Result<Schedule, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(&spec.schedule)
            .map_err(|e| format!("schedule {:?}: {e}", spec.schedule))?;
        let tz = match spec.time_zone.as_deref() {
            None | Some("") => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|e| format!("time zone {name:?}: {e}"))?,
        };
        Ok(Schedule { cron, tz })
    }

    /// The most recent slot at or before `now`.
    pub fn latest_slot(&self, now: Timestamp) -> Option<Timestamp> {
        let z = now.to_zoned(self.tz.clone());
        self.cron
            .find_previous_occurrence(&z, true)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The first slot after `now`.
    pub fn next_slot(&self, now: Timestamp) -> Option<Timestamp> {
        let z = now.to_zoned(self.tz.clone());
        self.cron
            .find_next_occurrence(&z, false)
            .ok()
            .map(|z| z.timestamp())
    }
}

/// What one reconcile should do for one sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start the Job of this slot (if it doesn't exist yet).
    Start {
        /// The slot's scheduled time.
        slot: Timestamp,
        /// Delete the running Jobs first (`Replace`).
        replace_running: bool,
    },
    /// Nothing to start now.
    Wait,
    /// The slot is due but skipped; the reason is for status/events.
    Skip {
        /// The slot skipped.
        slot: Timestamp,
        /// Why.
        reason: &'static str,
    },
}

/// Inputs of [`decide`].
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The sync's spec.
    pub spec: &'a SyncSpec,
    /// Now.
    pub now: Timestamp,
    /// The newest slot a Job was started for (status), if any.
    pub last_schedule: Option<Timestamp>,
    /// When the ShopifyShop was created: slots before it never run.
    pub created: Timestamp,
    /// Jobs of this sync still running.
    pub running: usize,
}

/// Decides whether a slot is due. Pure.
pub fn decide(schedule: &Schedule, input: &Inputs<'_>) -> Decision {
    let Some(slot) = schedule.latest_slot(input.now) else {
        return Decision::Wait;
    };
    let watermark = input.last_schedule.unwrap_or(input.created);
    if slot <= watermark {
        return Decision::Wait;
    }
    if let Some(deadline) = input.spec.starting_deadline_seconds
        && input.now.duration_since(slot) > SignedDuration::from_secs(deadline)
    {
        return Decision::Skip {
            slot,
            reason: "MissedStartingDeadline",
        };
    }
    match input.spec.concurrency_policy.unwrap_or_default() {
        ConcurrencyPolicy::Forbid if input.running > 0 => Decision::Skip {
            slot,
            reason: "PreviousRunActive",
        },
        ConcurrencyPolicy::Replace => Decision::Start {
            slot,
            replace_running: input.running > 0,
        },
        _ => Decision::Start {
            slot,
            replace_running: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(schedule: &str) -> SyncSpec {
        serde_json::from_value(serde_json::json!({"name": "orders", "schedule": schedule, "jobTemplate": {}}))
            .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn input<'a>(spec: &'a SyncSpec, now: &str, last: Option<&str>) -> Inputs<'a> {
        Inputs {
            spec,
            now: ts(now),
            last_schedule: last.map(ts),
            created: ts("2026-01-01T00:00:00Z"),
            running: 0,
        }
    }

    #[test]
    fn due_slot_starts_once() {
        let s = spec("*/15 * * * *");
        let sch = Schedule::parse(&s).unwrap();
        let d = decide(
            &sch,
            &input(&s, "2026-11-26T10:16:00Z", Some("2026-11-26T10:00:00Z")),
        );
        assert_eq!(
            d,
            Decision::Start {
                slot: ts("2026-11-26T10:15:00Z"),
                replace_running: false
            }
        );
        // Once started (lastScheduleTime = the slot), nothing more in it.
        let d = decide(
            &sch,
            &input(&s, "2026-11-26T10:29:59Z", Some("2026-11-26T10:15:00Z")),
        );
        assert_eq!(d, Decision::Wait);
        assert_eq!(
            sch.next_slot(ts("2026-11-26T10:16:00Z")),
            Some(ts("2026-11-26T10:30:00Z"))
        );
    }

    #[test]
    fn missed_slots_catch_up_once_within_the_deadline() {
        let mut s = spec("*/15 * * * *");
        let sch = Schedule::parse(&s).unwrap();
        // Down from 10:00 to 11:05: only the newest missed slot runs.
        let d = decide(
            &sch,
            &input(&s, "2026-11-26T11:05:00Z", Some("2026-11-26T10:00:00Z")),
        );
        assert_eq!(
            d,
            Decision::Start {
                slot: ts("2026-11-26T11:00:00Z"),
                replace_running: false
            }
        );
        s.starting_deadline_seconds = Some(120);
        let d = decide(
            &sch,
            &input(&s, "2026-11-26T11:05:00Z", Some("2026-11-26T10:00:00Z")),
        );
        assert_eq!(
            d,
            Decision::Skip {
                slot: ts("2026-11-26T11:00:00Z"),
                reason: "MissedStartingDeadline"
            }
        );
        let d = decide(
            &sch,
            &input(&s, "2026-11-26T11:01:00Z", Some("2026-11-26T10:00:00Z")),
        );
        assert!(matches!(d, Decision::Start { .. }));
    }

    #[test]
    fn no_slot_before_creation() {
        let s = spec("0 * * * *");
        let sch = Schedule::parse(&s).unwrap();
        let mut i = input(&s, "2026-11-26T10:30:00Z", None);
        i.created = ts("2026-11-26T10:20:00Z");
        assert_eq!(decide(&sch, &i), Decision::Wait);
    }

    #[test]
    fn concurrency_policies() {
        let forbid = spec("*/5 * * * *");
        let sch = Schedule::parse(&forbid).unwrap();
        let mut allow = forbid.clone();
        allow.concurrency_policy = Some(ConcurrencyPolicy::Allow);
        let mut replace = forbid.clone();
        replace.concurrency_policy = Some(ConcurrencyPolicy::Replace);
        let running = |s| Inputs {
            running: 1,
            ..input(s, "2026-11-26T10:05:30Z", Some("2026-11-26T10:00:00Z"))
        };
        assert!(matches!(
            decide(&sch, &running(&forbid)),
            Decision::Skip {
                reason: "PreviousRunActive",
                ..
            }
        ));
        assert!(matches!(
            decide(&sch, &running(&allow)),
            Decision::Start {
                replace_running: false,
                ..
            }
        ));
        assert!(matches!(
            decide(&sch, &running(&replace)),
            Decision::Start {
                replace_running: true,
                ..
            }
        ));
    }

    #[test]
    fn time_zones() {
        let mut s = spec("0 2 * * *");
        s.time_zone = Some("Europe/Berlin".into());
        let sch = Schedule::parse(&s).unwrap();
        // 02:00 in Berlin is 01:00 UTC in winter.
        assert_eq!(
            sch.next_slot(ts("2026-11-26T00:00:00Z")),
            Some(ts("2026-11-26T01:00:00Z"))
        );
        // ... and 00:00 UTC in summer.
        assert_eq!(
            sch.next_slot(ts("2026-07-01T00:30:00Z")),
            Some(ts("2026-07-02T00:00:00Z"))
        );
    }

    #[test]
    fn invalid_input_is_an_error_not_a_panic() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "*/0 * * * *",
            "0 0 * * * *",
            "not a cron",
        ] {
            assert!(Schedule::parse(&spec(bad)).is_err(), "{bad:?} accepted");
        }
        let mut s = spec("0 2 * * *");
        s.time_zone = Some("Mars/Olympus".into());
        let e = Schedule::parse(&s).unwrap_err();
        assert!(e.contains("Mars/Olympus"), "{e}");
    }
}
