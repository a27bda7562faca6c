//! The token step of a pass, around the webhooks step: read the token
//! Secret once, honour an `app/uninstalled` record, migrate a non-expiring
//! token when the spec asks, refresh an expiring one ahead of time — and,
//! once the webhooks step has checked the token with Shopify, qualify
//! `TokenValid` with what will need a person (a refresh token ending,
//! missing credentials) and finish a migration. Reads and writes the token
//! Secret and talks to Shopify's token endpoint.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::events::EventType;

use super::resolve_app::Refusal;
use super::{fetch, migrate, refresh, uninstalled, webhooks};
use crate::controller::conditions::{self, Cond, ConditionType, Reason, Status};
use crate::controller::{Context, Error, Note};
use crate::crd::ShopifyShop;
use shopify_admin::AccessToken;

/// What the token step found before the webhooks step.
#[derive(Debug)]
pub struct TokenStep {
    /// The token Secret as it is now (after a migration or refresh).
    pub secret: Option<Secret>,
    /// Whether an uninstall record holds for this Secret.
    pub marker: uninstalled::Marker,
    /// When the access token expires (expiring tokens).
    pub expires_at: Option<Timestamp>,
    /// A TokenValid reason and message for a token that works for now.
    warning: Option<(Reason, String)>,
    /// Events so far.
    pub notes: Vec<Note>,
}

/// Runs the steps before the webhooks step. `allowed`: the shop is in
/// `--allowed-shops` (otherwise nothing is sent to Shopify).
pub async fn prepare(ctx: &Context, shop: &ShopifyShop, allowed: bool) -> Result<TokenStep, Error> {
    let mut step = TokenStep {
        secret: fetch::token_secret(&ctx.client, shop)
            .await
            .map_err(Error::TokenSecret)?,
        marker: uninstalled::Marker::None,
        expires_at: None,
        warning: None,
        notes: Vec::new(),
    };
    step.marker = uninstalled::marker(shop, step.secret.as_ref());
    if step.marker == uninstalled::Marker::Stale {
        step.notes.push(uninstalled::clear(ctx, shop).await?);
    }
    if !allowed || step.marker == uninstalled::Marker::Current {
        return Ok(step);
    }
    let Some(current) = step.secret.clone() else {
        return Ok(step);
    };
    let mut migration = migrate::run(ctx, shop, &current)
        .await
        .map_err(Error::TokenSecret)?;
    let current = migration.updated.take().unwrap_or(current);
    let mut refreshed = refresh::run(ctx, shop, &current, ctx.settings.refresh_ahead)
        .await
        .map_err(Error::TokenSecret)?;
    step.secret = Some(refreshed.updated.take().unwrap_or(current));
    step.expires_at = refreshed.expires_at;
    step.warning = migration.warning.or(refreshed.warning);
    step.notes.extend(migration.notes);
    step.notes.extend(refreshed.notes);
    Ok(step)
}

impl TokenStep {
    /// The access token in the Secret, or why there is none.
    pub fn token(&self, shop: &ShopifyShop) -> Result<AccessToken, fetch::TokenError> {
        let name = &shop.spec.token.secret_ref.name;
        match &self.secret {
            None => Err(fetch::TokenError::SecretNotFound(name.clone())),
            Some(s) => fetch::token_from_secret(s, name),
        }
    }

    /// After the webhooks step: a token Shopify accepted is still not valid
    /// when the app says its credentials are unusable (`credentials`); a
    /// token that works but won't for long says why in `TokenValid`'s
    /// reason (and once as a Warning Event); a token that answered Shopify
    /// ends a migration. Moves the notes into `outcome`.
    pub async fn finish(
        mut self,
        ctx: &Context,
        shop: &ShopifyShop,
        credentials: Option<&Refusal>,
        outcome: &mut webhooks::Outcome,
    ) -> Result<(), Error> {
        // First, so that neither the warning below nor the end of a
        // migration takes a token the app cannot back for a valid one.
        if let Some(c) = credentials
            && outcome.token.status == Status::True
        {
            outcome.token = Cond::new(
                ConditionType::TokenValid,
                Status::False,
                c.reason,
                c.message.clone(),
            );
        }
        if let Some((reason, message)) = self.warning.take()
            && outcome.token.status == Status::True
        {
            let known = shop
                .status
                .as_ref()
                .and_then(|s| conditions::reason_of(&s.conditions, ConditionType::TokenValid))
                == Some(reason.as_str());
            let noted = self.notes.iter().any(|n| n.reason == reason.as_str());
            if !known && !noted {
                self.notes.push(Note::new(
                    EventType::Warning,
                    reason.as_str(),
                    "CheckToken",
                    message.clone(),
                ));
            }
            outcome.token = Cond::new(ConditionType::TokenValid, Status::True, reason, message);
        }
        if outcome.token.status == Status::True
            && let Some(current) = &self.secret
        {
            self.notes.extend(
                migrate::finish(ctx, shop, current)
                    .await
                    .map_err(Error::TokenSecret)?,
            );
        }
        outcome.notes.append(&mut self.notes);
        Ok(())
    }
}
