//! Migration of a non-expiring offline token to an expiring pair, opted in
//! per shop with `spec.token.migrateToExpiring` (shopify.dev "Migrate to
//! expiring offline access tokens"): a token exchange with the original
//! token and the app's client credentials. Talks to Shopify's token endpoint
//! and writes the token Secret.
//!
//! Safe at every step. The exchange can be repeated for seven days with the
//! original token and returns the same pair, so a lost response or a failed
//! Secret write is recovered by the next pass (the original token is still
//! in `access-token`). The new pair is stored in one guarded write that also
//! keeps the original token under `migrated-from-access-token`; that key is
//! removed only after the new token has answered the `shop` query of the
//! webhooks pass (`TokenValid=True`).

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::events::EventType;

use crate::controller::conditions::Reason;
use crate::controller::{Context, Note};
use crate::crd::ShopifyShop;
use crate::token_store::{
    ACCESS_TOKEN_KEY, EXPIRES_AT_KEY, MIGRATED_FROM_KEY, REFRESH_TOKEN_KEY, put_grant, shop_app_credentials,
    text,
};
use shopify_admin::AccessToken;

/// What a migration pass did.
#[derive(Debug, Clone, Default)]
pub struct Migration {
    /// The Secret as stored after the exchange.
    pub updated: Option<Secret>,
    /// A TokenValid reason and message, when migration can't go ahead.
    pub warning: Option<(Reason, String)>,
    /// Events.
    pub notes: Vec<Note>,
}

impl Migration {
    fn failed(&mut self, msg: String) {
        self.notes.push(Note::new(
            EventType::Warning,
            "TokenMigrationFailed",
            "MigrateToken",
            msg.clone(),
        ));
        self.warning = Some((Reason::TokenMigrationFailed, msg));
    }
}

/// Whether `secret` holds a non-expiring token the spec asks to migrate.
pub fn wanted(shop: &ShopifyShop, secret: &Secret) -> bool {
    shop.spec.token.migrate_to_expiring == Some(true)
        && text(secret, ACCESS_TOKEN_KEY).is_some()
        && text(secret, REFRESH_TOKEN_KEY).is_none()
        && text(secret, EXPIRES_AT_KEY).is_none()
}

/// Exchanges the token in `secret` for an expiring pair when wanted.
pub async fn run(ctx: &Context, shop: &ShopifyShop, secret: &Secret) -> Result<Migration, kube::Error> {
    let mut out = Migration::default();
    if !wanted(shop, secret) {
        return Ok(out);
    }
    let ns = shop.namespace().unwrap_or_default();
    let Some(app) = shop_app_credentials(&ctx.client, shop).await? else {
        out.warning = Some((
            Reason::AppCredentialsMissing,
            "spec.token.migrateToExpiring needs spec.app.secretRef (client-id, client-secret)".into(),
        ));
        return Ok(out);
    };
    let original = text(secret, ACCESS_TOKEN_KEY).unwrap_or_default();
    let grant = match ctx
        .shopify
        .migrate_to_expiring(
            &shop.spec.domain,
            &app.client_id,
            &app.secret,
            &AccessToken::new(original.clone()),
        )
        .await
    {
        Ok(g) if g.refresh_token.is_some() => g,
        Ok(_) => {
            out.failed("the token exchange returned no refresh token; the token is unchanged".into());
            return Ok(out);
        }
        Err(e) => {
            out.failed(format!("migrating to an expiring token failed: {e}"));
            return Ok(out);
        }
    };
    let mut updated = secret.clone();
    let data = updated.data.get_or_insert_default();
    put_grant(data, &grant, ctx.clock.now());
    data.insert(MIGRATED_FROM_KEY.into(), ByteString(original.into_bytes()));
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    match secrets
        .replace(&updated.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(stored) => {
            out.updated = Some(stored);
            out.notes.push(Note::new(
                EventType::Normal,
                "TokenMigrating",
                "MigrateToken",
                format!(
                    "exchanged the non-expiring token for an expiring one; the old token is kept under {MIGRATED_FROM_KEY} until the new one is verified"
                ),
            ));
        }
        // Another writer won; the exchange is repeatable, so the next pass
        // starts again from what is stored.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            tracing::info!("token Secret changed during migration; retrying next pass");
        }
        Err(e) => out.failed(format!(
            "storing the migrated token failed ({e}); the exchange is repeated next pass"
        )),
    }
    Ok(out)
}

/// After a pass in which the token answered Shopify (`TokenValid=True`):
/// drops the migrated-from token. Returns the Event to publish.
pub async fn finish(ctx: &Context, shop: &ShopifyShop, secret: &Secret) -> Result<Option<Note>, kube::Error> {
    if secret
        .data
        .as_ref()
        .is_none_or(|d| !d.contains_key(MIGRATED_FROM_KEY))
    {
        return Ok(None);
    }
    let mut updated = secret.clone();
    if let Some(d) = updated.data.as_mut() {
        d.remove(MIGRATED_FROM_KEY);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &shop.namespace().unwrap_or_default());
    match secrets
        .replace(&updated.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(Some(Note::new(
            EventType::Normal,
            "TokenMigrated",
            "MigrateToken",
            "the expiring token answered Shopify; the old non-expiring token was removed from the Secret"
                .into(),
        ))),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}
