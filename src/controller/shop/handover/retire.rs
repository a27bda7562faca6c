//! The last step of a move between apps: the new app's subscriptions are
//! listed back, and only then the previous app's are deleted with its own
//! token — the ones the operator owned, or all of them by uninstalling the
//! app (`appUninstall`). A previous token Shopify refuses (401) means the
//! app is uninstalled already: Shopify removed its subscriptions itself,
//! and nothing is left to delete. Talks to Shopify with both tokens;
//! deletes the previous token Secret only after an uninstall, and only if
//! the operator created it.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use kube::runtime::events::EventType;

use super::super::fetch;
use crate::controller::{Context, Note};
use crate::crd::{HandoverStatus, ShopifyShop, TopicState, WebhookStatus};
use crate::token_store::MANAGED_BY_LABEL;
use shopify_admin::{AccessToken, Change, ChangeResult, ShopifyError};

/// What retiring the previous app did.
#[derive(Debug, Default)]
pub(super) struct Retired {
    /// Its subscriptions deleted one by one.
    pub deleted: usize,
    /// It is uninstalled (by this pass, or found so).
    pub uninstalled: bool,
    /// Its token Secret was deleted.
    pub secret_deleted: bool,
    /// Warnings for a person (what could not be done).
    pub notes: Vec<Note>,
}

impl Retired {
    /// For the `HandedOver` condition and Event.
    pub fn summary(&self) -> String {
        let mut s = match (self.uninstalled, self.deleted) {
            (true, _) => "the previous app is uninstalled from the shop (Shopify removed its subscriptions)"
                .to_string(),
            (false, 1) => "1 of the previous app's subscriptions deleted".to_string(),
            (false, n) => format!("{n} of the previous app's subscriptions deleted"),
        };
        if self.secret_deleted {
            s.push_str("; its token Secret deleted");
        }
        s
    }
}

/// The first admin API version with `appUninstall`.
const UNINSTALL_SINCE: &str = "2025-07";

/// Retires `record.from` for `shop` (as the new app completes it, `token`
/// the new app's), whose live subscriptions are `live`. `Err`: why not
/// yet (retried; nothing of the new app's is touched).
pub(super) async fn run(
    ctx: &Context,
    shop: &ShopifyShop,
    token: &AccessToken,
    record: &HandoverStatus,
    uninstall: bool,
    live: &[WebhookStatus],
) -> Result<Retired, String> {
    let domain = &shop.spec.domain;
    let version = shop.spec.admin_api_version_or_default();
    listed_back(ctx, shop, token, live).await?;
    let old = &record.from;
    let ns = shop.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let secret = secrets
        .get_opt(&old.token_secret)
        .await
        .map_err(|e| format!("reading Secret {}: {e}", old.token_secret))?;
    let mut done = Retired::default();
    let Some(secret) = secret else {
        done.notes.push(Note::new(
            EventType::Warning,
            "PreviousAppNotRetired",
            "HandOver",
            format!(
                "Secret {} with ShopifyApp {}'s token is gone, so its subscriptions ({}) cannot be deleted by the operator; \
                 uninstall {} from the shop's admin",
                old.token_secret,
                old.name,
                record.previous_subscriptions.len(),
                old.name
            ),
        ));
        return Ok(done);
    };
    let old_token = fetch::token_from_secret(&secret, &old.token_secret).map_err(|e| e.message())?;
    let can_uninstall = version == "unstable" || version >= UNINSTALL_SINCE;
    if uninstall && !can_uninstall {
        done.notes.push(Note::new(
            EventType::Warning,
            "PreviousAppNotUninstalled",
            "HandOver",
            format!(
                "appUninstall needs Admin API {UNINSTALL_SINCE} or later and the shop uses {version}: \
                 ShopifyApp {}'s subscriptions are deleted, the app stays installed",
                old.name
            ),
        ));
    }
    if uninstall && can_uninstall {
        match ctx.shopify.app_uninstall(domain, version, &old_token).await {
            Ok(()) | Err(ShopifyError::Unauthorized) => done.uninstalled = true,
            Err(e) => return Err(format!("uninstalling ShopifyApp {}: {e}", old.name)),
        }
    } else {
        match delete_owned(ctx, shop, &old_token, &record.previous_subscriptions).await {
            Ok(n) => done.deleted = n,
            Err(ShopifyError::Unauthorized) => done.uninstalled = true,
            Err(e) => return Err(format!("deleting ShopifyApp {}'s subscriptions: {e}", old.name)),
        }
    }
    let created_by_us = secret
        .labels()
        .get(MANAGED_BY_LABEL.0)
        .is_some_and(|v| v == MANAGED_BY_LABEL.1);
    if done.uninstalled && created_by_us {
        match secrets.delete(&old.token_secret, &DeleteParams::default()).await {
            Ok(_) => done.secret_deleted = true,
            Err(kube::Error::Api(e)) if e.code == 404 => done.secret_deleted = true,
            Err(e) => return Err(format!("deleting Secret {}: {e}", old.token_secret)),
        }
    }
    Ok(done)
}

/// Lists the new app's subscriptions and checks that every live one the
/// pass recorded is there: Shopify's word, not the mutation's answer.
async fn listed_back(
    ctx: &Context,
    shop: &ShopifyShop,
    token: &AccessToken,
    live: &[WebhookStatus],
) -> Result<(), String> {
    let version = shop.spec.admin_api_version_or_default();
    let listing = ctx
        .shopify
        .list_subscriptions(&shop.spec.domain, version, token)
        .await
        .map_err(|e| format!("listing the new app's subscriptions back: {e}"))?;
    let missing: Vec<&str> = live
        .iter()
        .filter(|w| w.state == TopicState::InSync)
        .filter(|w| {
            !w.id
                .as_ref()
                .is_some_and(|id| listing.subscriptions.iter().any(|s| &s.id == id))
        })
        .map(|w| w.topic.as_str())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the new app's subscriptions for {} are not listed back yet",
            missing.join(", ")
        ))
    }
}

/// Deletes those of `owned` the previous app still has, in one document;
/// the count deleted. A subscription already gone is fine.
async fn delete_owned(
    ctx: &Context,
    shop: &ShopifyShop,
    token: &AccessToken,
    owned: &[String],
) -> Result<usize, ShopifyError> {
    let version = shop.spec.admin_api_version_or_default();
    let listing = ctx
        .shopify
        .list_subscriptions(&shop.spec.domain, version, token)
        .await?;
    let changes: Vec<Change> = listing
        .subscriptions
        .iter()
        .filter(|s| owned.contains(&s.id))
        .map(|s| Change::Delete {
            id: s.id.clone(),
            topic: s.topic.clone(),
        })
        .collect();
    if changes.is_empty() {
        return Ok(0);
    }
    let results = ctx
        .shopify
        .apply(&shop.spec.domain, version, token, &changes)
        .await?;
    let mut deleted = 0;
    for r in results {
        match r {
            ChangeResult::Deleted { .. } => deleted += 1,
            ChangeResult::Failed { user_errors } if !gone(&user_errors) => {
                return Err(ShopifyError::UserErrors(user_errors));
            }
            _ => {}
        }
    }
    Ok(deleted)
}

/// Whether `userErrors` say the subscription no longer exists (deleted
/// between the list and the document): nothing left to do for it.
fn gone(errors: &[shopify_admin::UserError]) -> bool {
    errors
        .iter()
        .all(|e| e.message.to_ascii_lowercase().contains("does not exist"))
}
