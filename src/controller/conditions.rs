//! Condition bookkeeping in the cert-manager / Crossplane style: one
//! `metav1.Condition` per type, `observedGeneration` on each, and a
//! `lastTransitionTime` that only moves when the status flips. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The token could be read and Shopify accepts it.
pub const TOKEN_VALID: &str = "TokenValid";
/// The shop's subscriptions match the spec.
pub const WEBHOOKS_SYNCED: &str = "WebhooksSynced";
/// The aggregate: every other condition is True.
pub const READY: &str = "Ready";

/// The reason `conditions` records for `type_`, if it has that condition
/// (to tell whether a reason is new, so its Event is published once).
pub fn reason_of<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.as_str())
}

/// A condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `"True"`.
    True,
    /// `"False"`.
    False,
    /// `"Unknown"`: couldn't be checked (e.g. no valid token to ask with).
    Unknown,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// A condition to set, without the bookkeeping fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// Condition type.
    pub type_: &'static str,
    /// Its status.
    pub status: Status,
    /// CamelCase, machine-readable.
    pub reason: String,
    /// For people; never carries a secret.
    pub message: String,
}

impl Cond {
    /// A condition of `type_`.
    pub fn new(type_: &'static str, status: Status, reason: &str, message: impl Into<String>) -> Self {
        Cond {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Sets `cond` in `conditions`: replaces the entry of its type, keeping
/// `lastTransitionTime` unless the status changed.
pub fn set(conditions: &mut Vec<Condition>, cond: &Cond, generation: Option<i64>, now: &Time) {
    let status = cond.status.as_str();
    match conditions.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = now.clone();
            }
            existing.status = status.into();
            existing.reason = cond.reason.clone();
            existing.message = cond.message.clone();
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: cond.type_.into(),
            status: status.into(),
            reason: cond.reason.clone(),
            message: cond.message.clone(),
            observed_generation: generation,
            last_transition_time: now.clone(),
        }),
    }
}

/// The `Ready` aggregate of `parts`: True when all are True, else False
/// with the reason and message of the first that isn't.
pub fn ready(parts: &[&Cond]) -> Cond {
    match parts.iter().find(|c| c.status != Status::True) {
        None => Cond::new(READY, Status::True, "Reconciled", "the shop matches its spec"),
        Some(c) => Cond::new(READY, Status::False, &c.reason, c.message.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn transition_time_moves_only_on_a_flip() {
        let mut conds = Vec::new();
        let ok = Cond::new(TOKEN_VALID, Status::True, "TokenVerified", "ok");
        set(&mut conds, &ok, Some(1), &t("2026-11-26T10:00:00Z"));
        assert_eq!(conds[0].last_transition_time, t("2026-11-26T10:00:00Z"));

        // Same status, new message and generation: time stays.
        let ok2 = Cond::new(TOKEN_VALID, Status::True, "TokenVerified", "still ok");
        set(&mut conds, &ok2, Some(2), &t("2026-11-26T11:00:00Z"));
        assert_eq!(conds[0].last_transition_time, t("2026-11-26T10:00:00Z"));
        assert_eq!(conds[0].message, "still ok");
        assert_eq!(conds[0].observed_generation, Some(2));

        // A flip moves it.
        let bad = Cond::new(TOKEN_VALID, Status::False, "TokenRevoked", "401");
        set(&mut conds, &bad, Some(2), &t("2026-11-26T12:00:00Z"));
        assert_eq!(conds[0].last_transition_time, t("2026-11-26T12:00:00Z"));
        assert_eq!(conds.len(), 1);
    }

    #[test]
    fn ready_takes_the_first_failing_reason() {
        let token = Cond::new(TOKEN_VALID, Status::True, "TokenVerified", "");
        let hooks = Cond::new(
            WEBHOOKS_SYNCED,
            Status::False,
            "IngressNotFound",
            "ingress oms not found",
        );
        let r = ready(&[&token, &hooks]);
        assert_eq!((r.status, r.reason.as_str()), (Status::False, "IngressNotFound"));
        let hooks = Cond::new(WEBHOOKS_SYNCED, Status::True, "InSync", "");
        assert_eq!(ready(&[&token, &hooks]).status, Status::True);
        let unknown = Cond::new(WEBHOOKS_SYNCED, Status::Unknown, "TokenInvalid", "");
        assert_eq!(ready(&[&token, &unknown]).status, Status::False);
    }
}
