//! The public endpoints' side of a ShopifyApp: where an install of one of
//! its shops puts the token (its ShopifyShops, or a new Secret and
//! ShopifyShop from `install.shopTemplate`), and the counters its status
//! keeps (installs, uninstalls, the last use of the previous secret).
//!
//! Reads ShopifyApps, ShopifyShops and Secrets; creates ShopifyShops;
//! merge-patches ShopifyApp status (only the endpoints' fields, guarded by
//! resourceVersion, so concurrent replicas don't lose a count).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use super::{Public, Refusal, Target, from_kube, installed_names, refuse};
use crate::allow_list::shop_allowed;
use crate::crd::{LocalObjectRef, SecretRef, ShopifyApp, ShopifyShop, ShopifyShopSpec, TokenSpec};
use crate::names::FIELD_MANAGER;
use crate::token_store;

/// Label on ShopifyShops an install created: the app's name.
pub const CREATED_BY_APP_LABEL: &str = "shopify-operator.dev/app";

/// An app's install of one shop: the app and where the token goes (each
/// target with the app's credentials).
pub(crate) struct AppInstall {
    /// The ShopifyApp.
    pub app: ShopifyApp,
    /// Its ShopifyShops for the shop, or one new target to create.
    pub targets: Vec<Target>,
    /// No ShopifyShop exists: the callback creates one from the template.
    pub create: bool,
}

/// The app `ns/name` and where an install of `shop` puts the token;
/// refused for an unknown app, unreadable credentials, a shop outside its
/// `allowedShops`, or a shop without a ShopifyShop when the app creates
/// none. `ns` and `name` are valid names (checked by the caller).
///
/// An app the operator may not read (403), one without usable
/// credentials, and one that does not exist all answer 404 `UnknownApp`:
/// a stranger learns nothing about which apps or namespaces exist. The
/// difference is in the log (at warn for the first two).
pub(crate) async fn install_for(
    public: &Public,
    ns: &str,
    name: &str,
    shop: &str,
) -> Result<AppInstall, Refusal> {
    let unknown = |detail: &str| refuse(StatusCode::NOT_FOUND, shop, "UnknownApp", detail);
    let apps: Api<ShopifyApp> = Api::namespaced(public.client.clone(), ns);
    let app = apps
        .get_opt(name)
        .await
        .map_err(|e| from_kube(shop, "cannot read the ShopifyApp", &e, Some(unknown(""))))?
        .ok_or_else(|| unknown(&format!("no ShopifyApp {ns}/{name}")))?;
    if !shop_allowed(&app.spec.allowed_shops, shop) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            shop,
            "ShopNotAllowed",
            &format!("the shop is not in ShopifyApp {ns}/{name}'s allowedShops"),
        ));
    }
    let secret = &app.spec.credentials_secret_ref.name;
    let creds = token_store::app_credentials(&public.client, ns, secret)
        .await
        .map_err(|e| from_kube(shop, "cannot read the app's credentials", &e, Some(unknown(""))))?
        .ok_or_else(|| {
            unknown(&format!(
                "ShopifyApp {ns}/{name}'s Secret {secret} is missing or has no client-id and client-secret"
            ))
            .warn()
        })?;
    let shops: Api<ShopifyShop> = Api::namespaced(public.client.clone(), ns);
    let listed = shops
        .list(&ListParams::default())
        .await
        .map_err(|e| from_kube(shop, "cannot list ShopifyShops", &e, Some(unknown(""))))?;
    let (targets, in_use): (Vec<ShopifyShop>, Vec<ShopifyShop>) = listed
        .items
        .into_iter()
        .filter(|s| {
            s.spec.domain.eq_ignore_ascii_case(shop)
                && s.spec.app_ref.as_ref().is_some_and(|r| r.name == name)
        })
        .partition(|s| holder_of_token_secret(s, name).is_none());
    if targets.is_empty()
        && let Some(s) = in_use.first()
    {
        // The new app's token would overwrite the live app's, which the
        // move still needs: refused before the merchant goes to Shopify.
        let holder = holder_of_token_secret(s, name).unwrap_or_default();
        return Err(refuse(
            StatusCode::CONFLICT,
            shop,
            "TokenSecretInUse",
            &format!(
                "ShopifyShop {ns}/{} moves to ShopifyApp {name}, but its spec.token.secretRef still holds ShopifyApp {holder}'s token; \
                 name a new Secret for {name}'s token first",
                s.name_any()
            ),
        ));
    }
    let targets: Vec<Target> = targets
        .into_iter()
        .map(|s| Target {
            secret: (ns.to_string(), s.spec.token.secret_ref.name.clone()),
            shop: Some(s),
            app: creds.clone(),
        })
        .collect();
    if !targets.is_empty() {
        return Ok(AppInstall {
            app,
            targets,
            create: false,
        });
    }
    if !app.spec.install.as_ref().is_some_and(|i| i.create_shops) {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            shop,
            "UnknownShop",
            &format!(
                "no ShopifyShop references ShopifyApp {ns}/{name} for this shop, and the app's install.createShops is not true"
            ),
        ));
    }
    let target = Target {
        shop: None,
        secret: (ns.to_string(), installed_names(shop).1),
        app: creds,
    };
    Ok(AppInstall {
        app,
        targets: vec![target],
        create: true,
    })
}

/// The other app whose live token is in the Secret `shop` names for app
/// `name`'s token (a move to `name` that kept the Secret), if any. Pure.
fn holder_of_token_secret(shop: &ShopifyShop, name: &str) -> Option<String> {
    let live = shop.status.as_ref()?.app.as_ref()?;
    (live.name != name && live.token_secret == shop.spec.token.secret_ref.name).then(|| live.name.clone())
}

/// The ShopifyShop an install creates: `domain`, `appRef`, `token` and the
/// template's labels, annotations and spec fields. Pure.
pub(crate) fn shop_from_template(app: &ShopifyApp, domain: &str, token_secret: &str) -> ShopifyShop {
    let template = app
        .spec
        .install
        .as_ref()
        .and_then(|i| i.shop_template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let spec = template.spec.unwrap_or_default();
    let mut labels = meta.labels;
    labels.insert(CREATED_BY_APP_LABEL.into(), app.name_any());
    let mut shop = ShopifyShop::new(
        &installed_names(domain).0,
        ShopifyShopSpec {
            domain: domain.to_string(),
            admin_api_version: spec.admin_api_version,
            token: TokenSpec {
                secret_ref: SecretRef {
                    name: token_secret.to_string(),
                },
                migrate_to_expiring: None,
            },
            app: None,
            app_ref: Some(LocalObjectRef { name: app.name_any() }),
            webhooks: spec.webhooks.as_ref().and_then(|w| w.to_spec()),
            sync: spec.sync,
            management_policy: spec.management_policy,
            deletion_policy: spec.deletion_policy,
            app_handover: None,
        },
    );
    shop.metadata.namespace = app.namespace();
    shop.metadata.labels = Some(labels);
    shop.metadata.annotations = (!meta.annotations.is_empty()).then_some(meta.annotations);
    shop
}

/// Creates the installed shop's ShopifyShop; one that already exists under
/// that name for the same domain and app (a concurrent callback) is fine.
pub(crate) async fn create_shop(
    client: &Client,
    app: &ShopifyApp,
    domain: &str,
    token_secret: &str,
) -> Result<String, String> {
    let shop = shop_from_template(app, domain, token_secret);
    let ns = app.namespace().unwrap_or_default();
    let api: Api<ShopifyShop> = Api::namespaced(client.clone(), &ns);
    let name = shop.name_any();
    match api.create(&PostParams::default(), &shop).await {
        Ok(_) => Ok(name),
        Err(kube::Error::Api(e)) if e.code == 409 => match api.get_opt(&name).await {
            Ok(Some(existing))
                if existing.spec.domain == domain
                    && existing
                        .spec
                        .app_ref
                        .as_ref()
                        .is_some_and(|r| r.name == app.name_any()) =>
            {
                Ok(name)
            }
            _ => Err(format!(
                "a ShopifyShop {ns}/{name} for another shop or app exists; create this shop's by hand"
            )),
        },
        Err(e) => Err(format!("creating ShopifyShop {ns}/{name}: {e}")),
    }
}

/// What happened to an app, for its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// An install completed.
    Install,
    /// An `app/uninstalled` delivery was recorded.
    Uninstall,
    /// Neither; only the secret used is news.
    Nothing,
}

/// Counts `seen` on the app's status and, when the request verified only
/// with the previous secret, stamps `previousSecretLastUsed`. Best effort:
/// a failure is logged, never fails the request it describes.
pub(crate) async fn record(client: &Client, ns: &str, name: &str, seen: Seen, previous_used: bool) {
    if seen == Seen::Nothing && !previous_used {
        return;
    }
    let api: Api<ShopifyApp> = Api::namespaced(client.clone(), ns);
    for _ in 0..5 {
        let app = match api.get_opt(name).await {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, app = name, "reading the ShopifyApp to count an install");
                return;
            }
        };
        let status = app.status.clone().unwrap_or_default();
        let mut patch = BTreeMap::new();
        match seen {
            Seen::Install => {
                patch.insert("installs", serde_json::json!(status.installs.unwrap_or(0) + 1));
            }
            Seen::Uninstall => {
                patch.insert(
                    "uninstalls",
                    serde_json::json!(status.uninstalls.unwrap_or(0) + 1),
                );
            }
            Seen::Nothing => {}
        }
        if previous_used {
            let now = k8s_openapi::jiff::Timestamp::now();
            let now = k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
            patch.insert("previousSecretLastUsed", serde_json::json!(now.to_string()));
        }
        // The resourceVersion makes a concurrent count (another replica)
        // fail with 409 instead of being overwritten: read again and retry.
        let body = serde_json::json!({
            "metadata": {"resourceVersion": app.resource_version()},
            "status": patch,
        });
        let params = PatchParams {
            field_manager: Some(format!("{FIELD_MANAGER}-oauth")),
            ..Default::default()
        };
        match api.patch_status(name, &params, &Patch::Merge(&body)).await {
            Ok(_) => return,
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => {
                tracing::warn!(error = %e, app = name, "recording on the ShopifyApp's status");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_still_holding_another_apps_live_token_is_not_the_new_apps() {
        let shop = |yaml: &str| -> ShopifyShop { serde_norway::from_str(yaml).unwrap() };
        let kept = shop(
            "{apiVersion: shopify-operator.dev/v1alpha1, kind: ShopifyShop, metadata: {name: online}, \
             spec: {domain: a.myshopify.com, appRef: {name: oms}, token: {secretRef: {name: t}}}, \
             status: {app: {name: oms-legacy, tokenSecret: t}}}",
        );
        assert_eq!(
            holder_of_token_secret(&kept, "oms").as_deref(),
            Some("oms-legacy")
        );
        let renamed = shop(
            "{apiVersion: shopify-operator.dev/v1alpha1, kind: ShopifyShop, metadata: {name: online}, \
             spec: {domain: a.myshopify.com, appRef: {name: oms}, token: {secretRef: {name: t2}}}, \
             status: {app: {name: oms-legacy, tokenSecret: t}}}",
        );
        assert_eq!(holder_of_token_secret(&renamed, "oms"), None);
        let same_app = shop(
            "{apiVersion: shopify-operator.dev/v1alpha1, kind: ShopifyShop, metadata: {name: online}, \
             spec: {domain: a.myshopify.com, appRef: {name: oms}, token: {secretRef: {name: t}}}, \
             status: {app: {name: oms, tokenSecret: t}}}",
        );
        assert_eq!(holder_of_token_secret(&same_app, "oms"), None, "a reinstall");
    }

    #[test]
    fn an_installed_shop_is_made_from_the_template() {
        let app: ShopifyApp = serde_norway::from_str(
            r#"
apiVersion: shopify-operator.dev/v1alpha1
kind: ShopifyApp
metadata: {name: oms-staging, namespace: staging}
spec:
  credentialsSecretRef: {name: staging-app}
  allowedShops: ["ps-*.myshopify.com"]
  install:
    createShops: true
    shopTemplate:
      metadata: {labels: {team: oms}, annotations: {note: installed}}
      spec:
        adminApiVersion: "2025-10"
        webhooks: {format: json}
"#,
        )
        .unwrap();
        let shop = shop_from_template(&app, "ps-new.myshopify.com", "ps-new-shopify-token");
        assert_eq!(shop.name_any(), "ps-new");
        assert_eq!(shop.namespace().as_deref(), Some("staging"));
        assert_eq!(shop.labels()["team"], "oms");
        assert_eq!(shop.labels()[CREATED_BY_APP_LABEL], "oms-staging");
        assert_eq!(shop.annotations()["note"], "installed");
        assert_eq!(shop.spec.app_ref.unwrap().name, "oms-staging");
        assert_eq!(shop.spec.token.secret_ref.name, "ps-new-shopify-token");
        assert_eq!(shop.spec.admin_api_version.as_deref(), Some("2025-10"));
        // Webhooks without an endpoint stay the app's defaults.
        assert!(shop.spec.webhooks.is_none());
        assert!(shop.spec.app.is_none());
    }
}
