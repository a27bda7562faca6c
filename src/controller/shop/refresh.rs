//! Expiring offline tokens: refresh the access token ahead of `expires-at`
//! with the app's client credentials, and store the new pair in the token
//! Secret in one write guarded by its resourceVersion. Talks to Shopify's
//! token endpoint and writes the Secret.
//!
//! Nothing is lost when something fails half-way: Shopify keeps the old
//! refresh token usable until the new access token is first used, so if the
//! response or the Secret write is lost, the next pass refreshes again with
//! the refresh token still in the Secret. A conflicting writer (409) wins;
//! the next pass starts from what it wrote.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::events::EventType;

use crate::controller::conditions::Reason;
use crate::controller::{Context, Note};
use crate::crd::ShopifyShop;
use shopify_admin::RefreshToken;

pub use crate::token_store::{EXPIRES_AT_KEY, REFRESH_EXPIRES_AT_KEY, REFRESH_TOKEN_KEY};
use crate::token_store::{put_grant, text};

/// Warn this long before the refresh token itself expires (a merchant must
/// reinstall after that).
pub const REFRESH_TOKEN_WARNING: SignedDuration = SignedDuration::from_hours(7 * 24);

/// What a refresh pass found.
#[derive(Debug, Clone, Default)]
pub struct Refresh {
    /// When the access token in the Secret expires now.
    pub expires_at: Option<Timestamp>,
    /// A warning to surface as the TokenValid reason (CamelCase, message).
    pub warning: Option<(Reason, String)>,
    /// Events.
    pub notes: Vec<Note>,
    /// The Secret as stored after a refresh (the token to use from now on).
    pub updated: Option<Secret>,
}

impl Refresh {
    /// Records a failed refresh: a Warning Event and the TokenValid reason.
    fn failed(&mut self, msg: String) {
        self.notes.push(Note::new(
            EventType::Warning,
            "TokenRefreshFailed",
            "RefreshToken",
            msg.clone(),
        ));
        self.warning = Some((Reason::TokenRefreshFailed, msg));
    }
}

/// Refreshes the token in `secret` (the shop's token Secret, as just read)
/// if it expires within `ahead`. Never fails the reconcile: problems become
/// a warning and an Event.
pub async fn run(
    ctx: &Context,
    shop: &ShopifyShop,
    secret: &Secret,
    ahead: Duration,
) -> Result<Refresh, kube::Error> {
    let mut out = Refresh::default();
    let ns = shop.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let name = &shop.spec.token.secret_ref.name;
    let Some(expires_at) = text(secret, EXPIRES_AT_KEY).and_then(|t| t.parse::<Timestamp>().ok()) else {
        return Ok(out); // a non-expiring token
    };
    out.expires_at = Some(expires_at);
    let now = ctx.clock.now();
    if let Some(rt_expiry) = text(secret, REFRESH_EXPIRES_AT_KEY).and_then(|t| t.parse::<Timestamp>().ok())
        && rt_expiry.duration_since(now) < REFRESH_TOKEN_WARNING
    {
        out.warning = Some((
            Reason::RefreshTokenExpiring,
            format!(
                "the refresh token expires at {rt_expiry}; the merchant must reinstall the app before then"
            ),
        ));
    }
    let ahead = SignedDuration::try_from(ahead).unwrap_or(SignedDuration::from_mins(5));
    if expires_at.duration_since(now) > ahead {
        return Ok(out);
    }
    let Some(refresh_token) = text(secret, REFRESH_TOKEN_KEY) else {
        out.warning = Some((
            Reason::RefreshTokenMissing,
            format!("Secret {name} has {EXPIRES_AT_KEY} but no {REFRESH_TOKEN_KEY}"),
        ));
        return Ok(out);
    };
    let Some(app) = crate::token_store::shop_app_credentials(&ctx.client, shop).await? else {
        out.warning = Some((
            Reason::AppCredentialsMissing,
            "the token expires but spec.app.secretRef (client-id, client-secret) is not set or incomplete"
                .into(),
        ));
        return Ok(out);
    };
    let grant = match ctx
        .shopify
        .refresh(
            &shop.spec.domain,
            &app.client_id,
            &app.secret,
            &RefreshToken::new(refresh_token),
        )
        .await
    {
        Ok(g) => g,
        Err(e) => {
            out.failed(format!("refreshing the access token failed: {e}"));
            return Ok(out);
        }
    };
    // One write, guarded by the resourceVersion we read.
    let mut updated = secret.clone();
    let data = updated.data.get_or_insert_with(BTreeMap::new);
    let new_expiry = put_grant(data, &grant, now);
    match secrets.replace(name, &PostParams::default(), &updated).await {
        Ok(stored) => {
            out.updated = Some(stored);
            out.expires_at = new_expiry.or(out.expires_at);
            out.notes.push(Note::new(
                EventType::Normal,
                "TokenRefreshed",
                "RefreshToken",
                format!(
                    "access token refreshed; it now expires at {}",
                    out.expires_at.map(|t| t.to_string()).unwrap_or_default()
                ),
            ));
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Someone else wrote the Secret since we read it (another
            // refresh, a reinstall): theirs stands; the next pass re-reads.
            tracing::info!(secret = %updated.name_any(), "token Secret changed during refresh; keeping the other write");
        }
        Err(e) => out.failed(format!(
            "storing the refreshed token failed ({e}); retrying with the previous refresh token"
        )),
    }
    Ok(out)
}
