//! The registry of what the controllers say in `status.conditions` (both
//! the ShopifyShop and the ShopifyApp controller write them, so it is
//! shared): every condition type ([`ConditionType`]; the reasons are in
//! `reasons`), plus the bookkeeping in the cert-manager / Crossplane style: one
//! `metav1.Condition` per type, `observedGeneration` on each, and a
//! `lastTransitionTime` that only moves when the status flips. Adding a
//! condition is one variant here plus its producer; `Ready`'s aggregation,
//! the status builder and the metrics' condition list all read [`ConditionType::ALL`].
//! Pure.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub use super::reasons::{Progress, Reason};

/// Now, at the precision the apiserver stores: the time both controllers
/// stamp on a condition that flips.
pub(super) fn now() -> Time {
    // Stored times have second precision; so do ours, so a re-read status
    // compares equal to the one written.
    let ts = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

/// A condition type this controller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionType {
    /// The aggregate: every other condition is True.
    Ready,
    /// The token could be read and Shopify accepts it.
    TokenValid,
    /// The shop's subscriptions match the spec.
    WebhooksSynced,
    /// The shop's sync Jobs run on schedule and don't keep failing.
    SyncHealthy,
    /// kstatus: the operator is still making Shopify match (a transient
    /// failure it retries by itself; the message says when).
    Reconciling,
    /// kstatus: the operator cannot make progress until a person acts.
    Stalled,
    /// A ShopifyApp's credentials Secret has `client-id` and
    /// `client-secret` (ShopifyApps only).
    CredentialsValid,
    /// The shop's move to the ShopifyApp `spec.appRef` names is done (only
    /// on shops whose `appRef` changed to another app).
    AppHandover,
}

impl ConditionType {
    /// Every type, in the order `status.conditions` lists them.
    pub const ALL: [ConditionType; 7] = [
        ConditionType::Ready,
        ConditionType::TokenValid,
        ConditionType::WebhooksSynced,
        ConditionType::SyncHealthy,
        ConditionType::AppHandover,
        ConditionType::Reconciling,
        ConditionType::Stalled,
    ];

    /// The types `Ready` aggregates, in the order their reasons win.
    pub const PARTS: [ConditionType; 4] = [
        ConditionType::TokenValid,
        ConditionType::WebhooksSynced,
        ConditionType::SyncHealthy,
        ConditionType::AppHandover,
    ];

    /// The name in `status.conditions[].type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::TokenValid => "TokenValid",
            ConditionType::WebhooksSynced => "WebhooksSynced",
            ConditionType::SyncHealthy => "SyncHealthy",
            ConditionType::Reconciling => "Reconciling",
            ConditionType::Stalled => "Stalled",
            ConditionType::CredentialsValid => "CredentialsValid",
            ConditionType::AppHandover => "AppHandover",
        }
    }
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reason `conditions` records for `type_`, if it has that condition
/// (to tell whether a reason is new, so its Event is published once).
pub fn reason_of(conditions: &[Condition], type_: ConditionType) -> Option<&str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_.as_str())
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
    /// `"True"`, `"False"` or `"Unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    /// Parses a stored status; anything else is `Unknown`.
    pub fn parse(s: &str) -> Status {
        match s {
            "True" => Status::True,
            "False" => Status::False,
            _ => Status::Unknown,
        }
    }
}

/// A condition to set, without the bookkeeping fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// Condition type.
    pub type_: ConditionType,
    /// Its status.
    pub status: Status,
    /// CamelCase, machine-readable.
    pub reason: Reason,
    /// For people; never carries a secret.
    pub message: String,
}

impl Cond {
    /// A condition of `type_`.
    pub fn new(type_: ConditionType, status: Status, reason: Reason, message: impl Into<String>) -> Self {
        Cond {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// Sets `cond` in `conditions`: replaces the entry of its type, keeping
/// `lastTransitionTime` unless the status changed.
pub fn set(conditions: &mut Vec<Condition>, cond: &Cond, generation: Option<i64>, now: &Time) {
    let status = cond.status.as_str();
    match conditions.iter_mut().find(|c| c.type_ == cond.type_.as_str()) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = now.clone();
            }
            existing.status = status.into();
            existing.reason = cond.reason.as_str().into();
            existing.message = cond.message.clone();
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: cond.type_.as_str().into(),
            status: status.into(),
            reason: cond.reason.as_str().into(),
            message: cond.message.clone(),
            observed_generation: generation,
            last_transition_time: now.clone(),
        }),
    }
}

/// The `Ready` aggregate of `parts` (one per [`ConditionType::PARTS`]):
/// True when all are True, else False with the reason and message of the
/// first that isn't, in the order of `PARTS`.
pub fn ready(parts: &[&Cond]) -> Cond {
    let failing = ConditionType::PARTS
        .iter()
        .filter_map(|t| parts.iter().find(|c| c.type_ == *t))
        .find(|c| c.status != Status::True);
    match failing {
        None => Cond::new(
            ConditionType::Ready,
            Status::True,
            Reason::Reconciled,
            "the shop matches its spec",
        ),
        Some(c) => Cond::new(ConditionType::Ready, Status::False, c.reason, c.message.clone()),
    }
}

/// The kstatus pair for `parts` (Ready's parts): `Stalled` True with the
/// first part that needs a person; else `Reconciling` True with the first
/// part that is not True (or while a retry is due, `retry_in`), the message
/// saying when the operator tries again. kstatus reads `Reconciling` first,
/// so it is False whenever `Stalled` is True. Pure.
pub fn progress(parts: &[&Cond], retry_in: Option<std::time::Duration>) -> (Cond, Cond) {
    let first = |kind: Progress| {
        ConditionType::PARTS
            .iter()
            .filter_map(|t| parts.iter().find(|c| c.type_ == *t))
            .find(|c| c.status != Status::True && c.reason.progress() == kind)
    };
    let settled = |type_| Cond::new(type_, Status::False, Reason::Reconciled, "");
    if let Some(c) = first(Progress::NeedsPerson) {
        let message = format!("{}: {}", c.type_, c.message);
        let stalled = Cond::new(ConditionType::Stalled, Status::True, c.reason, message);
        return (settled(ConditionType::Reconciling), stalled);
    }
    let pending = first(Progress::Retried);
    if pending.is_none() && retry_in.is_none() {
        return (
            settled(ConditionType::Reconciling),
            settled(ConditionType::Stalled),
        );
    }
    let when = retry_in.map_or("at the next resync".to_string(), |r| {
        let r = std::time::Duration::from_secs(r.as_secs().max(1));
        format!("in {}", humantime::format_duration(r))
    });
    let (reason, what) = match pending {
        Some(c) => (c.reason, format!(" {}: {}", c.type_, c.message)),
        None => (Reason::Reconciled, String::new()),
    };
    let message = format!("retrying {when};{what}");
    let reconciling = Cond::new(ConditionType::Reconciling, Status::True, reason, message);
    (reconciling, settled(ConditionType::Stalled))
}

/// A move of one of Ready's parts that people should hear about (one
/// Event each; staying put is silent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Into `False` with this reason: from `True`, `Unknown`, nothing yet,
    /// or `False` with another reason.
    Failed(Cond),
    /// From `False` back to `True`; `was` is the reason it had.
    Recovered {
        /// The condition now.
        cond: Cond,
        /// The `False` reason it leaves.
        was: String,
    },
}

/// The transitions from the stored conditions to `parts` (the next values
/// of Ready's parts). Ready itself has none: its reason is always one of
/// its parts', whose Event already says it. A part that is False only
/// because there is no valid token ([`Reason::TokenInvalid`]) has none
/// either: `TokenValid`'s own Event says why. Pure.
pub fn transitions(stored: &[Condition], parts: &[&Cond]) -> Vec<Transition> {
    parts
        .iter()
        .filter(|c| c.type_ != ConditionType::Ready)
        .filter_map(|c| {
            let before = stored.iter().find(|s| s.type_ == c.type_.as_str());
            let was_false = before.filter(|b| b.status == Status::False.as_str());
            match c.status {
                Status::False if c.reason == Reason::TokenInvalid => None,
                Status::False if was_false.is_none_or(|b| b.reason != c.reason.as_str()) => {
                    Some(Transition::Failed((*c).clone()))
                }
                Status::True => was_false.map(|b| Transition::Recovered {
                    cond: (*c).clone(),
                    was: b.reason.clone(),
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn stored(type_: ConditionType, status: Status, reason: Reason) -> Vec<Condition> {
        let mut conds = Vec::new();
        let c = Cond::new(type_, status, reason, "before");
        set(&mut conds, &c, Some(1), &t("2026-11-26T10:00:00Z"));
        conds
    }

    #[test]
    fn transition_time_moves_only_on_a_flip() {
        let mut conds = Vec::new();
        let ok = Cond::new(
            ConditionType::TokenValid,
            Status::True,
            Reason::TokenVerified,
            "ok",
        );
        set(&mut conds, &ok, Some(1), &t("2026-11-26T10:00:00Z"));
        assert_eq!(conds[0].last_transition_time, t("2026-11-26T10:00:00Z"));

        // Same status, new message and generation: time stays.
        let ok2 = Cond::new(
            ConditionType::TokenValid,
            Status::True,
            Reason::TokenVerified,
            "still ok",
        );
        set(&mut conds, &ok2, Some(2), &t("2026-11-26T11:00:00Z"));
        assert_eq!(conds[0].last_transition_time, t("2026-11-26T10:00:00Z"));
        assert_eq!(conds[0].message, "still ok");
        assert_eq!(conds[0].observed_generation, Some(2));

        // A flip moves it.
        let bad = Cond::new(
            ConditionType::TokenValid,
            Status::False,
            Reason::TokenRevoked,
            "401",
        );
        set(&mut conds, &bad, Some(2), &t("2026-11-26T12:00:00Z"));
        assert_eq!(conds[0].last_transition_time, t("2026-11-26T12:00:00Z"));
        assert_eq!(conds.len(), 1);
    }

    #[test]
    fn ready_takes_the_first_failing_reason() {
        let token = Cond::new(ConditionType::TokenValid, Status::True, Reason::TokenVerified, "");
        let hooks = Cond::new(
            ConditionType::WebhooksSynced,
            Status::False,
            Reason::IngressNotFound,
            "ingress oms not found",
        );
        let r = ready(&[&token, &hooks]);
        assert_eq!((r.status, r.reason), (Status::False, Reason::IngressNotFound));
        let hooks = Cond::new(ConditionType::WebhooksSynced, Status::True, Reason::InSync, "");
        assert_eq!(ready(&[&token, &hooks]).status, Status::True);
        let unknown = Cond::new(
            ConditionType::WebhooksSynced,
            Status::Unknown,
            Reason::TokenInvalid,
            "",
        );
        assert_eq!(ready(&[&token, &unknown]).status, Status::False);
    }

    #[test]
    fn every_failing_reason_is_one_transition_and_staying_is_none() {
        for type_ in ConditionType::PARTS {
            for &reason in Reason::ALL {
                let now = Cond::new(type_, Status::False, reason, "now");
                let from_true = transitions(&stored(type_, Status::True, Reason::Reconciled), &[&now]);
                let from_nothing = transitions(&[], &[&now]);
                let staying = transitions(&stored(type_, Status::False, reason), &[&now]);
                if reason == Reason::TokenInvalid {
                    assert!(
                        from_true.is_empty() && from_nothing.is_empty(),
                        "{type_} {reason}"
                    );
                    continue;
                }
                assert_eq!(
                    from_true,
                    vec![Transition::Failed(now.clone())],
                    "{type_} {reason}"
                );
                assert_eq!(
                    from_nothing,
                    vec![Transition::Failed(now.clone())],
                    "{type_} {reason}"
                );
                assert!(staying.is_empty(), "{type_} {reason}: {staying:?}");
                assert!(!reason.hint().is_empty());
            }
        }
    }

    #[test]
    fn another_failing_reason_is_a_transition_and_recovery_is_one() {
        let type_ = ConditionType::TokenValid;
        let before = stored(type_, Status::False, Reason::SecretNotFound);
        let other = Cond::new(type_, Status::False, Reason::SecretKeyMissing, "m");
        assert_eq!(
            transitions(&before, &[&other]),
            vec![Transition::Failed(other.clone())]
        );
        let ok = Cond::new(type_, Status::True, Reason::TokenVerified, "ok");
        assert_eq!(
            transitions(&before, &[&ok]),
            vec![Transition::Recovered {
                cond: ok.clone(),
                was: "SecretNotFound".into()
            }]
        );
        // True to True, and Unknown, say nothing.
        assert!(transitions(&stored(type_, Status::True, Reason::TokenVerified), &[&ok]).is_empty());
        let unknown = Cond::new(type_, Status::Unknown, Reason::ShopifyThrottled, "m");
        assert!(transitions(&before, &[&unknown]).is_empty());
        // Ready never has its own.
        let ready = Cond::new(ConditionType::Ready, Status::False, Reason::SecretNotFound, "m");
        assert!(transitions(&[], &[&ready]).is_empty());
    }

    #[test]
    fn kstatus_pair_stalls_on_what_needs_a_person_and_reconciles_while_retrying() {
        let ok = |t| Cond::new(t, Status::True, Reason::Reconciled, "ok");
        let (token, hooks, sync) = (
            ok(ConditionType::TokenValid),
            ok(ConditionType::WebhooksSynced),
            ok(ConditionType::SyncHealthy),
        );
        let (reconciling, stalled) = progress(&[&token, &hooks, &sync], None);
        assert_eq!(
            (reconciling.status, stalled.status),
            (Status::False, Status::False)
        );

        // A revoked token (and the syncs it stops): Stalled, with its reason.
        let revoked = Cond::new(
            ConditionType::TokenValid,
            Status::False,
            Reason::TokenRevoked,
            "401",
        );
        let blocked = Cond::new(
            ConditionType::SyncHealthy,
            Status::False,
            Reason::TokenInvalid,
            "no token",
        );
        let (reconciling, stalled) = progress(&[&blocked, &revoked, &hooks], None);
        assert_eq!(
            (stalled.status, stalled.reason),
            (Status::True, Reason::TokenRevoked)
        );
        assert_eq!(
            reconciling.status,
            Status::False,
            "kstatus reads Reconciling first"
        );

        // Shopify 5xx: Reconciling, saying when it retries; not Stalled.
        let flaky = Cond::new(
            ConditionType::WebhooksSynced,
            Status::False,
            Reason::ShopifyUnavailable,
            "503",
        );
        let (reconciling, stalled) =
            progress(&[&token, &flaky, &sync], Some(std::time::Duration::from_secs(5)));
        assert_eq!(
            (reconciling.status, reconciling.reason),
            (Status::True, Reason::ShopifyUnavailable)
        );
        assert!(reconciling.message.contains("in 5s"), "{}", reconciling.message);
        assert_eq!(stalled.status, Status::False);

        // Observe's drift stays until a person acts: Stalled (kstatus
        // reads a lasting Ready=False without it as in progress).
        let drift = Cond::new(
            ConditionType::WebhooksSynced,
            Status::False,
            Reason::DriftDetected,
            "m",
        );
        let (reconciling, stalled) = progress(&[&token, &drift, &sync], None);
        assert_eq!(
            (reconciling.status, stalled.status, stalled.reason),
            (Status::False, Status::True, Reason::DriftDetected)
        );
    }
}
