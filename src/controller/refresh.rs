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
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::events::EventType;

use super::{Context, Note};
use crate::crd::ShopifyShop;
use crate::shopify::{ClientSecret, RefreshToken};

/// Secret key of the refresh token.
pub const REFRESH_TOKEN_KEY: &str = "refresh-token";
/// Secret key of the access token's expiry (RFC 3339).
pub const EXPIRES_AT_KEY: &str = "expires-at";
/// Secret key of the refresh token's expiry (RFC 3339).
pub const REFRESH_EXPIRES_AT_KEY: &str = "refresh-token-expires-at";
/// Warn this long before the refresh token itself expires (a merchant must
/// reinstall after that).
pub const REFRESH_TOKEN_WARNING: SignedDuration = SignedDuration::from_hours(7 * 24);

/// What a refresh pass found.
#[derive(Debug, Clone, Default)]
pub struct Refresh {
    /// When the access token in the Secret expires now.
    pub expires_at: Option<Timestamp>,
    /// A warning to surface as the TokenValid reason (CamelCase, message).
    pub warning: Option<(&'static str, String)>,
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
        self.warning = Some(("TokenRefreshFailed", msg));
    }
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    let data = secret.data.as_ref()?.get(key)?;
    String::from_utf8(data.0.clone())
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
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
            "RefreshTokenExpiring",
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
            "RefreshTokenMissing",
            format!("Secret {name} has {EXPIRES_AT_KEY} but no {REFRESH_TOKEN_KEY}"),
        ));
        return Ok(out);
    };
    let Some((client_id, client_secret)) = app_credentials(ctx, shop, &ns).await? else {
        out.warning = Some((
            "AppCredentialsMissing",
            "the token expires but spec.app.secretRef (client-id, client-secret) is not set or incomplete"
                .into(),
        ));
        return Ok(out);
    };
    let grant = match ctx
        .shopify
        .refresh(
            &shop.spec.domain,
            &client_id,
            &client_secret,
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
    let put = |data: &mut BTreeMap<String, ByteString>, k: &str, v: String| {
        data.insert(k.to_string(), ByteString(v.into_bytes()));
    };
    put(
        data,
        super::fetch::ACCESS_TOKEN_KEY,
        grant.access_token.expose().to_string(),
    );
    let new_expiry = grant
        .expires_in
        .map(|s| now + SignedDuration::from_secs(s as i64));
    if let Some(t) = new_expiry {
        put(data, EXPIRES_AT_KEY, t.to_string());
    }
    if let Some(rt) = &grant.refresh_token {
        put(data, REFRESH_TOKEN_KEY, rt.expose().to_string());
    }
    if let Some(s) = grant.refresh_token_expires_in {
        put(
            data,
            REFRESH_EXPIRES_AT_KEY,
            (now + SignedDuration::from_secs(s as i64)).to_string(),
        );
    }
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

async fn app_credentials(
    ctx: &Context,
    shop: &ShopifyShop,
    ns: &str,
) -> Result<Option<(String, ClientSecret)>, kube::Error> {
    let Some(app) = &shop.spec.app else {
        return Ok(None);
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(secret) = secrets.get_opt(&app.secret_ref.name).await? else {
        return Ok(None);
    };
    Ok(text(&secret, "client-id").zip(text(&secret, "client-secret").map(ClientSecret::new)))
}
