//! Step 1b of a pass: which Shopify app a shop runs as while its
//! `spec.appRef` moves to another app, and the move itself, with no
//! moment in which a desired topic has no live subscription:
//!
//! 1. **waiting** — until the new app's token is in `spec.token.secretRef`
//!    and Shopify accepts it with every scope the topics need, the pass
//!    runs as the previous app (its token Secret, its credentials), so
//!    webhooks keep following the Ingress and syncs keep running;
//! 2. **switch** — the pass runs as the new app: the webhooks step creates
//!    its subscriptions at the same destinations (the previous app's stay,
//!    as an app never sees another's);
//! 3. **retire** — once they are all in sync and listed back, the previous
//!    app's subscriptions the operator owned are deleted with its own
//!    token, or the app is uninstalled (`spec.appHandover.uninstallPrevious`).
//!
//! Each stage is found again from the stored status and from Shopify, so a
//! pass killed between any two requests is finished by the next one.
//! Reads the new app's token Secret and checks it with Shopify ([`prepare`]);
//! `retire` deletes Shopify subscriptions and, after an uninstall, the
//! previous token Secret the operator created. Everything else is status.

mod plan;
mod retire;

use std::borrow::Cow;

use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::resolve_app::{self, Resolved};
use super::{fetch, webhooks};
use crate::controller::conditions::{self, Cond, ConditionType, Reason, Status};
use crate::controller::{Context, Error, Note};
use crate::crd::{HandoverPhase, HandoverStatus, LiveApp, ManagementPolicy, ShopifyShop};
use shopify_admin::{AccessToken, ShopifyError, scope};

/// The pass's app: the shop as the app whose token this pass uses
/// completes it, and what the pass does about a move.
pub(super) struct Handover<'a> {
    /// What every later step works on.
    pub pass: Resolved<'a>,
    /// What the pass does about a move, after the webhooks step.
    pub next: Next,
}

/// The rest of a pass's handover ([`Next::finish`]).
pub(super) struct Next(Course);

/// What a pass does about the shop's app.
enum Course {
    /// No `spec.appRef`: nothing is recorded.
    Unmanaged,
    /// The app `appRef` names is the live one.
    Steady(LiveApp),
    /// `appRef` names the live app again before the switch.
    Cancelled(LiveApp, HandoverStatus),
    /// The previous app keeps everything: the new one is not ready, for
    /// `cond`'s reason.
    Held {
        from: LiveApp,
        record: HandoverStatus,
        cond: Cond,
    },
    /// The pass runs as the new app; the previous one is retired once the
    /// new one's subscriptions are in sync.
    Switch {
        to: LiveApp,
        record: HandoverStatus,
        uninstall: bool,
    },
}

/// What a pass records about the shop's app, for the status.
#[derive(Debug, Default)]
pub(super) struct Finished {
    /// `status.app`.
    pub app: Option<LiveApp>,
    /// `status.handover` (`None`: as stored).
    pub record: Option<HandoverStatus>,
    /// `AppHandover`, a part of Ready, while a move is on or just ended.
    pub cond: Option<Cond>,
}

/// Decides which app the pass runs as. `resolved` is the shop as the app
/// `spec.appRef` names completes it.
pub(super) async fn prepare<'a>(
    ctx: &Context,
    shop: &'a ShopifyShop,
    resolved: Resolved<'a>,
) -> Result<Handover<'a>, Error> {
    let Some(app_ref) = &shop.spec.app_ref else {
        return Ok(Handover {
            pass: resolved,
            next: Next(Course::Unmanaged),
        });
    };
    let target = LiveApp {
        name: app_ref.name.clone(),
        client_id: resolved.client_id.clone(),
        token_secret: shop.spec.token.secret_ref.name.clone(),
    };
    let stored = shop.status.as_ref().and_then(|s| s.handover.clone());
    let uninstall = shop
        .spec
        .app_handover
        .as_ref()
        .and_then(|h| h.uninstall_previous)
        .unwrap_or(false);
    // The course, and the previous app's pass when the new one is not
    // ready (`None`: the pass runs as `resolved`).
    let (course, previous) = match plan::stage(shop.status.as_ref(), &target) {
        plan::Stage::Steady => (Course::Steady(target), None),
        plan::Stage::Cancelled => {
            let mut record = stored.unwrap_or_default();
            record.phase = HandoverPhase::Cancelled;
            record.install_url = None;
            (Course::Cancelled(target, record), None)
        }
        plan::Stage::Retiring => {
            let record = stored.unwrap_or_default();
            (
                Course::Switch {
                    to: target,
                    record,
                    uninstall,
                },
                None,
            )
        }
        plan::Stage::Moving { from } => {
            let mut record = HandoverStatus {
                from: from.clone(),
                to: target.name.clone(),
                ..Default::default()
            };
            let url = install_url(ctx, shop, &target.name);
            match readiness(ctx, shop, &resolved, &target, &from, url.as_deref()).await {
                None => {
                    record.phase = HandoverPhase::Switching;
                    record.previous_subscriptions = webhooks::inventory::owned(shop.status.as_ref())
                        .into_iter()
                        .collect();
                    record.switched_at = Some(conditions::now());
                    (
                        Course::Switch {
                            to: target,
                            record,
                            uninstall,
                        },
                        None,
                    )
                }
                Some((phase, cond)) => {
                    record.phase = phase;
                    if cond.reason == Reason::WaitingForInstall {
                        record.install_url = url;
                    }
                    let pass = as_previous(ctx, shop, &resolved, &from).await?;
                    (Course::Held { from, record, cond }, Some(pass))
                }
            }
        }
    };
    Ok(Handover {
        pass: previous.unwrap_or(resolved),
        next: Next(course),
    })
}

/// Why the new app cannot take over yet (`None`: it can), as the phase it
/// leaves the handover in and its `AppHandover` condition. One token check
/// with Shopify, only once its Secret has a token. `url`: where the
/// merchant installs the new app, for the message (and so the Event).
async fn readiness(
    ctx: &Context,
    shop: &ShopifyShop,
    resolved: &Resolved<'_>,
    target: &LiveApp,
    from: &LiveApp,
    url: Option<&str>,
) -> Option<(HandoverPhase, Cond)> {
    let held = |phase, reason, message: String| {
        Some((
            phase,
            Cond::new(ConditionType::AppHandover, Status::False, reason, message),
        ))
    };
    let (new, old, secret) = (&target.name, &from.name, &target.token_secret);
    if *secret == from.token_secret {
        return held(
            HandoverPhase::Blocked,
            Reason::TokenSecretInUse,
            format!(
                "spec.appRef moved from ShopifyApp {old} to {new}, but spec.token.secretRef still names {secret}, \
                 which holds {old}'s token; name a new Secret for {new}'s token ({old} keeps the webhooks and syncs)"
            ),
        );
    }
    if let Some(r) = &resolved.refusal {
        return held(
            HandoverPhase::Blocked,
            r.reason,
            format!(
                "moving to ShopifyApp {new}: {}; {old} keeps the webhooks and syncs",
                r.message
            ),
        );
    }
    if resolved.shop.spec.management_policy_or_default() == ManagementPolicy::Observe {
        return held(
            HandoverPhase::Blocked,
            Reason::Observe,
            format!(
                "managementPolicy is Observe, which changes nothing on Shopify: the move from ShopifyApp {old} to {new} waits until it is Manage"
            ),
        );
    }
    let at = url.map_or_else(
        || " (no --public-url: put its token in the Secret by hand)".to_string(),
        |u| format!(" at {u}"),
    );
    let waiting = |why: String| {
        held(
            HandoverPhase::WaitingForInstall,
            Reason::WaitingForInstall,
            format!(
                "moving from ShopifyApp {old} to {new}: {why}; {old} keeps the webhooks and syncs until the merchant installs {new}{at}"
            ),
        )
    };
    let token = match fetch::token(&ctx.client, shop).await {
        Ok(Ok(t)) => t,
        Ok(Err(_)) => return waiting(format!("Secret {secret} has no token of {new}'s yet")),
        Err(e) => return waiting(format!("Secret {secret} could not be read ({e})")),
    };
    let version = shop.spec.admin_api_version_or_default();
    let info = match ctx.shopify.token_info(&shop.spec.domain, version, &token).await {
        Ok(info) => info,
        Err(ShopifyError::Unauthorized) => {
            return waiting(format!(
                "Shopify refuses the token in Secret {secret} (401: revoked, or the app was uninstalled)"
            ));
        }
        Err(e) => return waiting(format!("the token in Secret {secret} could not be checked ({e})")),
    };
    if !info.myshopify_domain.eq_ignore_ascii_case(&shop.spec.domain) {
        return held(
            HandoverPhase::Blocked,
            Reason::TokenShopMismatch,
            format!(
                "the token in Secret {secret} belongs to {}, not this shop; {old} keeps the webhooks and syncs",
                info.myshopify_domain
            ),
        );
    }
    // The one check that keeps the previous app's own token (copied into
    // the new Secret) from passing for the new app's: a switch would then
    // retire the very subscriptions it just "adopted". Nothing switches
    // unless both sides are known and agree.
    let mismatch = match (&info.api_key, &target.client_id) {
        (Some(key), Some(id)) if key == id => None,
        (Some(_), Some(_)) => Some(format!("belongs to another app than ShopifyApp {new}")),
        (None, _) => Some("could not be matched to an app: Shopify did not name the token's app".to_string()),
        (_, None) => Some(format!(
            "could not be matched to ShopifyApp {new}: its credentials Secret has no client-id yet"
        )),
    };
    if let Some(why) = mismatch {
        return held(
            HandoverPhase::Blocked,
            Reason::TokenAppMismatch,
            format!("the token in Secret {secret} {why}; {old} keeps the webhooks and syncs"),
        );
    }
    let extra = webhooks::extra_subscriptions(&ctx.settings, resolved.shop.as_ref())
        .into_iter()
        .map(|e| e.topic);
    let topics = plan::topics(resolved.shop.spec.webhooks.as_ref(), extra);
    let missing = scope::missing(&topics, &info.scopes);
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|(t, s)| format!("{s} ({t})")).collect();
        return held(
            HandoverPhase::Blocked,
            Reason::MissingScopes,
            format!(
                "ShopifyApp {new}'s token for this shop lacks {}; the merchant reinstalls {new} with them \
                 ({old} keeps the webhooks and syncs, nothing was switched)",
                list.join(", ")
            ),
        );
    }
    None
}

/// The new app's install URL for this shop: the operator's per-app OAuth
/// route, when `--public-url` is set.
fn install_url(ctx: &Context, shop: &ShopifyShop, app: &str) -> Option<String> {
    let base = ctx.settings.public_url.as_ref()?;
    let ns = shop.namespace().unwrap_or_default();
    Some(format!(
        "{}/oauth/{ns}/{app}/install?shop={}",
        base.as_str().trim_end_matches('/'),
        shop.spec.domain
    ))
}

/// The shop as the previous app completes it, with its token Secret: what
/// a pass that waits works on. Without that ShopifyApp any more, the new
/// app's spec with the previous token and no credentials (no refresh).
async fn as_previous<'a>(
    ctx: &Context,
    shop: &ShopifyShop,
    resolved: &Resolved<'_>,
    from: &LiveApp,
) -> Result<Resolved<'a>, Error> {
    let previous = shop.running_as(from);
    let r = resolve_app::resolve(ctx, &previous).await?;
    if r.refusal
        .as_ref()
        .is_some_and(|x| x.reason == Reason::AppNotFound)
    {
        let mut fallback = resolved.shop.as_ref().clone();
        fallback.spec.token.secret_ref.name = from.token_secret.clone();
        fallback.spec.app = None;
        return Ok(Resolved {
            shop: Cow::Owned(fallback),
            refusal: resolved.refusal.clone(),
            credentials: None,
            client_id: from.client_id.clone(),
        });
    }
    Ok(Resolved {
        shop: Cow::Owned(r.shop.into_owned()),
        refusal: r.refusal,
        credentials: r.credentials,
        client_id: r.client_id,
    })
}

impl Next {
    /// After the webhooks step: retires the previous app once the new
    /// one's subscriptions are all in sync (`shop`: the pass's, `token`:
    /// its token, the new app's), and says what the status records. Adds
    /// its Events to `outcome`.
    pub(super) async fn finish(
        self,
        ctx: &Context,
        shop: &ShopifyShop,
        token: Option<&AccessToken>,
        outcome: &mut webhooks::Outcome,
    ) -> Finished {
        match self.0 {
            Course::Unmanaged => Finished::default(),
            Course::Steady(app) => Finished {
                app: Some(app),
                ..Default::default()
            },
            Course::Cancelled(app, record) => {
                let message = format!(
                    "spec.appRef names ShopifyApp {} again: the move to {} was called off before anything switched",
                    app.name, record.to
                );
                Finished {
                    app: Some(app),
                    record: Some(record),
                    cond: Some(Cond::new(
                        ConditionType::AppHandover,
                        Status::True,
                        Reason::HandoverCancelled,
                        message,
                    )),
                }
            }
            Course::Held { from, record, cond } => Finished {
                app: Some(from),
                record: Some(record),
                cond: Some(cond),
            },
            Course::Switch {
                to,
                mut record,
                uninstall,
            } => {
                let synced = outcome.token.status == Status::True && outcome.webhooks.status == Status::True;
                let retired = match token {
                    Some(token) if synced => {
                        let live = outcome.topics.as_deref().unwrap_or_default();
                        Some(retire::run(ctx, shop, token, &record, uninstall, live).await)
                    }
                    _ => None,
                };
                let (old, new) = (record.from.name.clone(), to.name.clone());
                let cond = match retired {
                    Some(Ok(done)) => {
                        record.phase = HandoverPhase::Complete;
                        record.completed_at = Some(conditions::now());
                        record.previous_uninstalled = Some(done.uninstalled);
                        let message = format!("moved from ShopifyApp {old} to {new}: {}", done.summary());
                        outcome.notes.push(Note::new(
                            EventType::Normal,
                            Reason::HandedOver.as_str(),
                            "HandOver",
                            message.clone(),
                        ));
                        outcome.notes.extend(done.notes);
                        Cond::new(
                            ConditionType::AppHandover,
                            Status::True,
                            Reason::HandedOver,
                            message,
                        )
                    }
                    Some(Err(why)) => {
                        outcome.retry_in = Some(outcome.retry_in.map_or(RETRY, |r| r.min(RETRY)));
                        Cond::new(
                            ConditionType::AppHandover,
                            Status::False,
                            Reason::Switching,
                            format!(
                                "ShopifyApp {new} is live; {old}'s subscriptions are not deleted yet: {why}"
                            ),
                        )
                    }
                    None => Cond::new(
                        ConditionType::AppHandover,
                        Status::False,
                        Reason::Switching,
                        format!(
                            "ShopifyApp {new} is live, its subscriptions not all in sync yet ({}: {}); {old}'s stay until they are",
                            outcome.webhooks.reason, outcome.webhooks.message
                        ),
                    ),
                };
                Finished {
                    app: Some(to),
                    record: Some(record),
                    cond: Some(cond),
                }
            }
        }
    }
}

/// How soon a switch whose retirement failed is tried again.
const RETRY: std::time::Duration = std::time::Duration::from_secs(10);
