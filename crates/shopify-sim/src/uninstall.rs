//! Uninstalling an app from a shop — the `appUninstall` mutation (the app
//! asks) and `Sim::uninstall_app` (the merchant clicks in the admin) — with
//! what Shopify does then: the app's subscriptions on that shop are deleted
//! (fact sheet §2), its tokens stop working at once (§4: 401), other apps
//! on the shop are untouched, and one `app/uninstalled` webhook goes to
//! each HTTP(S) `APP_UNINSTALLED` subscription the app had, signed with
//! that app's oldest unrevoked secret.
//!
//! The state change happens under the lock; the webhooks are sent by a
//! spawned task afterwards, so a slow receiver never holds the simulator.

use super::address::Endpoint;
use super::deliver::{Outgoing, send};
use super::schema::stable_number;
use super::state::{SimState, shop_key};
use super::timeline::Change;
use serde_json::json;
use std::time::SystemTime;

/// What an uninstall did, and the webhooks still to send.
pub(crate) struct Uninstalled {
    /// The resolved client id of the uninstalled app.
    pub client_id: String,
    shop: String,
    api_version: String,
    /// The app's signing secret; `None` if the app is not loaded.
    secret: Option<String>,
    /// HTTP(S) addresses of its `APP_UNINSTALLED` subscriptions.
    addresses: Vec<String>,
    /// The `app/uninstalled` body: the shop object.
    body: Vec<u8>,
}

impl SimState {
    /// Uninstalls the app `app` (a token's binding; `None`: the default
    /// app) from the shop. `None` when the shop is unknown or the app was
    /// not installed there (no live token and no subscription).
    pub fn uninstall(&self, shop: &str, app: Option<&str>) -> Option<Uninstalled> {
        let mut g = self.lock();
        let key = shop_key(shop);
        let client_id = g.resolve(app).to_owned();
        let default_app = g.resolve(None).to_owned();
        let owned = |owner: &Option<String>| owner.as_deref().unwrap_or(&default_app) == client_id;
        let s = g.shops.get(&key)?;
        let ids: Vec<u64> = s
            .subs
            .values()
            .filter(|sub| owned(&sub.client_id))
            .map(|sub| sub.id)
            .collect();
        let has_token = s.access.values().any(|t| owned(&t.client_id) && !t.is_revoked());
        if ids.is_empty() && !has_token {
            return None;
        }
        let body = json!({
            "id": stable_number(&key),
            "name": s.name,
            "domain": key,
            "myshopify_domain": key,
            "plan_display_name": s.plan,
        });
        let secret = g.app(&client_id).map(|a| a.signing_secret().to_owned());
        let at = SystemTime::now();
        let mut addresses = Vec::new();
        let shop_state = g.shops.get_mut(&key).expect("checked above");
        let mut removed = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(sub) = shop_state.subs.remove(&id) {
                if sub.topic == "APP_UNINSTALLED" && !Endpoint::of(&sub.address).is_cloud() {
                    addresses.push(sub.address.clone());
                }
                removed.push(sub);
            }
        }
        super::oauth::revoke_app_tokens(shop_state, &default_app, &client_id);
        for sub in &removed {
            g.record(&key, sub, Change::Deleted, at);
        }
        Some(Uninstalled {
            client_id,
            shop: key,
            api_version: self.webhook_api_version.clone(),
            secret,
            addresses,
            body: serde_json::to_vec(&body).unwrap_or_default(),
        })
    }
}

/// Sends the `app/uninstalled` webhooks of an uninstall from a task of its
/// own (outside any runtime, e.g. a plain `#[test]`, nothing is sent).
pub(crate) fn deliver(client: reqwest::Client, done: Uninstalled) {
    if done.addresses.is_empty() {
        return;
    }
    let Some(secret) = done.secret.clone() else {
        tracing::warn!(shop = %done.shop, client_id = %done.client_id,
            "app/uninstalled not sent: the app is not loaded, so nothing can sign it");
        return;
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(shop = %done.shop, "app/uninstalled not sent: no async runtime");
        return;
    };
    rt.spawn(async move {
        for address in &done.addresses {
            let sent = send(
                &client,
                Outgoing {
                    address,
                    topic: "app/uninstalled",
                    shop: &done.shop,
                    api_version: &done.api_version,
                    secret: &secret,
                    body: &done.body,
                },
            )
            .await;
            match sent {
                Ok(status) => tracing::info!(shop = %done.shop, address, status, "app/uninstalled delivered"),
                Err(e) => tracing::warn!(shop = %done.shop, address, error = %e, "app/uninstalled failed"),
            }
        }
    });
}
