//! What a ShopifyShop with `spec.appRef` means: its spec with the app's
//! credentials and defaults filled in where it is silent. Pure.
//!
//! The result is what every later step reconciles; it is never written
//! back (the operator does not write `spec`), so GitOps tools see the shop
//! exactly as committed.

use crate::crd::{AppSpec, ShopifyApp, ShopifyShopSpec, SubscriptionSpec, SyncSpec, WebhooksSpec};

/// The shop's spec as its app completes it.
pub fn effective(shop: &ShopifyShopSpec, app: &ShopifyApp) -> ShopifyShopSpec {
    let defaults = app.spec.defaults.clone().unwrap_or_default();
    let webhooks = match (&shop.webhooks, &defaults.webhooks) {
        (None, Some(d)) => d.to_spec(),
        (Some(own), Some(d)) => Some(fill_webhooks(own, d)),
        (own, None) => own.clone(),
    };
    ShopifyShopSpec {
        domain: shop.domain.clone(),
        admin_api_version: shop.admin_api_version.clone().or(defaults.admin_api_version),
        token: shop.token.clone(),
        app: Some(AppSpec {
            secret_ref: app.spec.credentials_secret_ref.clone(),
        }),
        app_ref: shop.app_ref.clone(),
        webhooks,
        sync: merge_sync(&defaults.sync, &shop.sync),
        management_policy: shop.management_policy.or(defaults.management_policy),
        deletion_policy: shop.deletion_policy.or(defaults.deletion_policy),
        app_handover: shop.app_handover.clone(),
    }
}

/// A shop's own webhooks keep their endpoint; the app fills in `format`,
/// `prune`, and each list the shop leaves empty (a staging shop pointing
/// the app's topics at another host, a shop adding one filtered
/// subscription to the app's topics). A topic the shop sends to the
/// endpoint's path itself is dropped from what it inherits there, so the
/// merge never names one topic twice at one destination.
fn fill_webhooks(own: &WebhooksSpec, d: &crate::crd::WebhooksDefaults) -> WebhooksSpec {
    let at_endpoint = |s: &SubscriptionSpec| s.uri.is_none() && s.path.is_none();
    let topics = if own.topics.is_empty() {
        let claimed = |t: &String| {
            own.subscriptions
                .iter()
                .any(|s| at_endpoint(s) && s.topics.contains(t))
        };
        d.topics.iter().filter(|t| !claimed(t)).cloned().collect()
    } else {
        own.topics.clone()
    };
    let subscriptions = if own.subscriptions.is_empty() {
        d.subscriptions
            .iter()
            .filter_map(|s| {
                let mut s = s.clone();
                if at_endpoint(&s) {
                    s.topics.retain(|t| !topics.contains(t));
                }
                (!s.topics.is_empty()).then_some(s)
            })
            .collect()
    } else {
        own.subscriptions.clone()
    };
    WebhooksSpec {
        endpoint: own.endpoint.clone(),
        format: own.format.or(d.format),
        topics,
        subscriptions,
        prune: own.prune.or(d.prune),
    }
}

/// The app's syncs, each replaced by the shop's of the same name, then the
/// shop's others: in a stable order, so the Jobs' plan doesn't churn.
fn merge_sync(app: &[SyncSpec], shop: &[SyncSpec]) -> Vec<SyncSpec> {
    let mut out: Vec<SyncSpec> = app
        .iter()
        .map(|a| shop.iter().find(|s| s.name == a.name).unwrap_or(a).clone())
        .collect();
    out.extend(
        shop.iter()
            .filter(|s| !app.iter().any(|a| a.name == s.name))
            .cloned(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{DeletionPolicy, ManagementPolicy, WebhookFormat};

    fn app(yaml: &str) -> ShopifyApp {
        serde_norway::from_str(yaml).unwrap()
    }

    fn shop(yaml: &str) -> ShopifyShopSpec {
        serde_norway::from_str(yaml).unwrap()
    }

    const APP: &str = r#"
apiVersion: shopify-operator.dev/v1alpha1
kind: ShopifyApp
metadata: {name: oms, namespace: prod}
spec:
  credentialsSecretRef: {name: oms-app}
  allowedShops: ["ps-*.myshopify.com"]
  defaults:
    adminApiVersion: "2025-10"
    managementPolicy: Manage
    webhooks:
      endpoint: {ingressRef: {name: oms}}
      format: json
      prune: true
      topics: [orders/create, orders/updated]
      subscriptions:
        - {topics: [orders/paid], filter: "financial_status:paid"}
    sync:
      - {name: orders, schedule: "*/15 * * * *", jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: oms}]}}}}}
      - {name: products, schedule: "0 * * * *", jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: oms}]}}}}}
"#;

    #[test]
    fn a_silent_shop_inherits_everything_and_the_credentials() {
        let s = effective(
            &shop("{domain: ps-a.myshopify.com, token: {secretRef: {name: t}}, appRef: {name: oms}}"),
            &app(APP),
        );
        assert_eq!(s.app.unwrap().secret_ref.name, "oms-app");
        assert_eq!(s.admin_api_version.as_deref(), Some("2025-10"));
        let w = s.webhooks.unwrap();
        assert_eq!(w.endpoint.ingress_ref.unwrap().name, "oms");
        assert_eq!(w.topics, ["orders/create", "orders/updated"]);
        assert_eq!(w.subscriptions.len(), 1);
        assert_eq!(w.prune, Some(true));
        assert_eq!(
            s.sync.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
            ["orders", "products"]
        );
        assert_eq!(s.management_policy, Some(ManagementPolicy::Manage));
        assert_eq!(s.deletion_policy, None);
    }

    #[test]
    fn what_the_shop_sets_wins() {
        let s = effective(
            &shop(
                r#"
domain: ps-staging.myshopify.com
token: {secretRef: {name: t}}
appRef: {name: oms}
adminApiVersion: "2026-01"
deletionPolicy: Delete
webhooks:
  endpoint: {host: staging.popsockets.com}
  format: xml
sync:
  - {name: orders, schedule: "0 3 * * *", jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: oms:staging}]}}}}}
  - {name: refunds, schedule: "0 4 * * *", jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: oms}]}}}}}
"#,
            ),
            &app(APP),
        );
        assert_eq!(s.admin_api_version.as_deref(), Some("2026-01"));
        assert_eq!(s.deletion_policy, Some(DeletionPolicy::Delete));
        let w = s.webhooks.unwrap();
        // Its own endpoint and format; the app's topics, as it names none.
        assert_eq!(w.endpoint.host.as_deref(), Some("staging.popsockets.com"));
        assert_eq!(w.format, Some(WebhookFormat::Xml));
        assert_eq!(w.topics, ["orders/create", "orders/updated"]);
        assert_eq!(w.prune, Some(true));
        // One sync overridden by name, one added, one inherited.
        let names: Vec<_> = s
            .sync
            .iter()
            .map(|x| (x.name.as_str(), x.schedule.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("orders", "0 3 * * *"),
                ("products", "0 * * * *"),
                ("refunds", "0 4 * * *")
            ]
        );
    }

    #[test]
    fn each_list_the_shop_leaves_empty_comes_from_the_app() {
        let s = effective(
            &shop(
                "{domain: ps-a.myshopify.com, token: {secretRef: {name: t}}, appRef: {name: oms}, \
                 webhooks: {endpoint: {host: oms.popsockets.com}, topics: [app/uninstalled]}}",
            ),
            &app(APP),
        );
        let w = s.webhooks.unwrap();
        assert_eq!(w.topics, ["app/uninstalled"]);
        assert_eq!(w.subscriptions.len(), 1, "the app's filtered orders/paid");
    }

    #[test]
    fn a_topic_the_shop_sends_itself_is_not_inherited_twice() {
        // The shop filters orders/create at the endpoint; the app sends it
        // there unfiltered: the shop's entry wins, the app's other topic
        // stays. And the app's orders/paid entry yields to the shop's topic.
        let s = effective(
            &shop(
                "{domain: ps-a.myshopify.com, token: {secretRef: {name: t}}, appRef: {name: oms}, \
                 webhooks: {endpoint: {host: oms.popsockets.com}, \
                 subscriptions: [{topics: [orders/create], filter: 'total_price:>100'}]}}",
            ),
            &app(APP),
        );
        let w = s.webhooks.unwrap();
        assert_eq!(w.topics, ["orders/updated"]);
        assert_eq!(w.subscriptions.len(), 1);
        assert_eq!(w.subscriptions[0].filter.as_deref(), Some("total_price:>100"));
        let s = effective(
            &shop(
                "{domain: ps-a.myshopify.com, token: {secretRef: {name: t}}, appRef: {name: oms}, \
                 webhooks: {endpoint: {host: oms.popsockets.com}, topics: [orders/paid]}}",
            ),
            &app(APP),
        );
        let w = s.webhooks.unwrap();
        assert_eq!(w.topics, ["orders/paid"]);
        assert!(w.subscriptions.is_empty(), "{:?}", w.subscriptions);
    }

    #[test]
    fn an_app_without_an_endpoint_gives_no_webhooks() {
        let bare = app(
            "{apiVersion: shopify-operator.dev/v1alpha1, kind: ShopifyApp, metadata: {name: a}, \
             spec: {credentialsSecretRef: {name: c}, allowedShops: ['*'], defaults: {webhooks: {topics: [orders/create]}}}}",
        );
        let s = effective(
            &shop("{domain: a.myshopify.com, token: {secretRef: {name: t}}, appRef: {name: a}}"),
            &bare,
        );
        assert!(s.webhooks.is_none());
        assert!(s.sync.is_empty());
    }
}
