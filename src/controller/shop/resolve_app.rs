//! The first step of a pass: the ShopifyApp a shop's `spec.appRef` names,
//! and the shop as that app completes it (`inherit`). Reads ShopifyApps
//! from the watch's store (a GET only when the store does not have it yet);
//! writes nothing.

use std::borrow::Cow;

use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::inherit;
use crate::allow_list::shop_allowed;
use crate::controller::conditions::{ConditionType, Reason};
use crate::controller::{Context, Error};
use crate::crd::{ShopifyApp, ShopifyShop};

/// Why nothing may be sent to Shopify for a shop.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// `ShopNotAllowed` or `AppNotFound`.
    pub reason: Reason,
    /// For people.
    pub message: String,
}

/// The shop a pass works on, and whether it may talk to Shopify at all.
pub struct Resolved<'a> {
    /// The shop with its app's credentials and defaults filled in (the
    /// object itself without `spec.appRef`).
    pub shop: Cow<'a, ShopifyShop>,
    /// Set when the shop is outside an allow-list or its app is missing.
    pub refusal: Option<Refusal>,
    /// Set when the app says its credentials are unusable: reported on the
    /// shop, which otherwise goes on (its webhooks don't need them).
    pub credentials: Option<Refusal>,
    /// The app's client id, from its status or its credentials Secret (to
    /// tell two ShopifyApps of one Shopify app from two apps).
    pub client_id: Option<String>,
}

/// Resolves `shop`'s app and checks both allow-lists: the operator's
/// `--allowed-shops` and the app's `allowedShops`.
pub async fn resolve<'a>(ctx: &Context, shop: &'a ShopifyShop) -> Result<Resolved<'a>, Error> {
    let domain = &shop.spec.domain;
    let global = (!shop_allowed(&ctx.settings.allowed_shops, domain)).then(|| Refusal {
        reason: Reason::ShopNotAllowed,
        message: format!("{domain} is not in the operator's --allowed-shops; nothing is sent to it"),
    });
    let Some(app_ref) = &shop.spec.app_ref else {
        return Ok(Resolved {
            shop: Cow::Borrowed(shop),
            refusal: global,
            credentials: None,
            client_id: None,
        });
    };
    let ns = shop.namespace().unwrap_or_default();
    let Some(app) = find(ctx, &ns, &app_ref.name).await? else {
        return Ok(Resolved {
            shop: Cow::Borrowed(shop),
            refusal: global.or(Some(Refusal {
                reason: Reason::AppNotFound,
                message: format!(
                    "spec.appRef names ShopifyApp {ns}/{}, which does not exist; nothing is sent to Shopify",
                    app_ref.name
                ),
            })),
            credentials: None,
            client_id: None,
        });
    };
    let mut effective = shop.clone();
    effective.spec = inherit::effective(&shop.spec, &app);
    let outside = (!shop_allowed(&app.spec.allowed_shops, domain)).then(|| Refusal {
        reason: Reason::ShopNotAllowed,
        message: format!(
            "{domain} is not in ShopifyApp {}'s allowedShops; nothing is sent to it",
            app.name_any()
        ),
    });
    // The app controller checks the Secret (and watches it); its verdict
    // is read from the app rather than fetching the Secret on every pass.
    let credentials = app
        .status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == ConditionType::CredentialsValid.as_str())
        })
        .filter(|c| c.status == "False")
        .map(|c| Refusal {
            reason: Reason::AppCredentialsInvalid,
            message: format!("ShopifyApp {}: {}", app.name_any(), c.message),
        });
    Ok(Resolved {
        shop: Cow::Owned(effective),
        refusal: global.or(outside),
        credentials,
        client_id: client_id(ctx, &ns, &app).await,
    })
}

/// The app's client id: from its status, else (before the app controller
/// has written one) from its credentials Secret, so a shop records the same
/// id from its first pass on.
async fn client_id(ctx: &Context, ns: &str, app: &ShopifyApp) -> Option<String> {
    if let Some(id) = app.status.as_ref().and_then(|s| s.client_id.clone()) {
        return Some(id);
    }
    crate::token_store::app_credentials(&ctx.client, ns, &app.spec.credentials_secret_ref.name)
        .await
        .ok()
        .flatten()
        .map(|c| c.client_id)
}

/// The ShopifyApp `ns/name`: from the store, else (a shop and its app
/// applied together, before the watch saw the app) from the apiserver.
async fn find(ctx: &Context, ns: &str, name: &str) -> Result<Option<ShopifyApp>, Error> {
    if let Some(app) = ctx
        .apps
        .get()
        .and_then(|s| s.get(&ObjectRef::new(name).within(ns)))
    {
        return Ok(Some(app.as_ref().clone()));
    }
    let api: Api<ShopifyApp> = Api::namespaced(ctx.client.clone(), ns);
    api.get_opt(name).await.map_err(Error::App)
}
