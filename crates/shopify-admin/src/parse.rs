//! Parsing of GraphQL responses into the client's types: subscriptions,
//! listing pages, token info and per-alias mutation results.
//!
//! No network access.

use serde::Deserialize;
use serde_json::Value;

use super::error::{ShopifyError, UserError};
use super::graphql::alias;
use super::response::{GraphqlError, GraphqlOk};
use super::topic::enum_to_rest;
use super::types::{Change, ChangeResult, Format, Metafield, Subscription};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSubscription {
    id: String,
    topic: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    include_fields: Option<Vec<String>>,
    #[serde(default)]
    metafield_namespaces: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    metafields: Option<Vec<RawMetafield>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    api_version: Option<RawHandle>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    callback_url: Option<String>,
    #[serde(default)]
    endpoint: Option<RawEndpoint>,
}

#[derive(Deserialize)]
struct RawMetafield {
    #[serde(default)]
    namespace: Option<String>,
    key: String,
}

#[derive(Deserialize)]
struct RawHandle {
    handle: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEndpoint {
    #[serde(default)]
    callback_url: Option<String>,
    #[serde(default)]
    arn: Option<String>,
    #[serde(default)]
    pub_sub_project: Option<String>,
    #[serde(default)]
    pub_sub_topic: Option<String>,
}

impl RawEndpoint {
    /// The address as `uri` spells it from 2025-10 on: the URL, the ARN, or
    /// `pubsub://project:topic`.
    fn address(self) -> Option<String> {
        self.callback_url
            .or(self.arn)
            .or(match (self.pub_sub_project, self.pub_sub_topic) {
                (Some(p), Some(t)) => Some(format!("pubsub://{p}:{t}")),
                _ => None,
            })
    }
}

/// Parses one `WebhookSubscription` node.
pub fn parse_subscription(node: &Value) -> Result<Subscription, ShopifyError> {
    let raw = RawSubscription::deserialize(node)
        .map_err(|e| ShopifyError::Protocol(format!("bad WebhookSubscription: {e}")))?;
    let format = match raw.format.as_deref() {
        None => Format::Json,
        Some(f) => Format::from_graphql(f).unwrap_or_else(|| {
            tracing::warn!(format = f, id = %raw.id, "unknown webhook format; treating as JSON");
            Format::Json
        }),
    };
    let address = raw
        .uri
        .or(raw.endpoint.and_then(RawEndpoint::address))
        .or(raw.callback_url)
        .unwrap_or_default();
    Ok(Subscription {
        topic: enum_to_rest(&raw.topic).unwrap_or_else(|| raw.topic.clone()),
        topic_enum: raw.topic,
        id: raw.id,
        address,
        format,
        include_fields: raw.include_fields.unwrap_or_default(),
        metafield_namespaces: raw.metafield_namespaces.unwrap_or_default(),
        filter: raw.filter,
        metafields: raw
            .metafields
            .unwrap_or_default()
            .into_iter()
            .map(|m| Metafield {
                namespace: m.namespace.unwrap_or_default(),
                key: m.key,
            })
            .collect(),
        name: raw.name,
        api_version: raw.api_version.and_then(|h| h.handle),
    })
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The page's subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Cursor of the next page, when there is one.
    pub next: Option<String>,
}

fn no_partial_errors(ok: &GraphqlOk) -> Result<(), ShopifyError> {
    if ok.errors.is_empty() {
        Ok(())
    } else {
        Err(ShopifyError::Protocol(super::response::join_messages(&ok.errors)))
    }
}

/// Parses a `webhookSubscriptions` page (`nodes` or `edges { node }`).
pub fn parse_page(ok: &GraphqlOk) -> Result<Page, ShopifyError> {
    no_partial_errors(ok)?;
    let conn = ok
        .data
        .get("webhookSubscriptions")
        .filter(|c| c.is_object())
        .ok_or_else(|| ShopifyError::Protocol("response lacks webhookSubscriptions".into()))?;
    let nodes: Vec<&Value> = if let Some(ns) = conn.get("nodes").and_then(Value::as_array) {
        ns.iter().collect()
    } else if let Some(es) = conn.get("edges").and_then(Value::as_array) {
        es.iter().filter_map(|e| e.get("node")).collect()
    } else {
        return Err(ShopifyError::Protocol("webhookSubscriptions has no nodes".into()));
    };
    let subscriptions = nodes
        .into_iter()
        .map(parse_subscription)
        .collect::<Result<_, _>>()?;
    let info = conn.get("pageInfo");
    let has_next = info
        .and_then(|p| p.get("hasNextPage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let cursor = info
        .and_then(|p| p.get("endCursor"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let next = match (has_next, cursor) {
        (false, _) => None,
        (true, Some(c)) => Some(c),
        (true, None) => {
            return Err(ShopifyError::Protocol("hasNextPage without endCursor".into()));
        }
    };
    Ok(Page { subscriptions, next })
}

/// What the token-info response says: shop name, myshopify domain, plan,
/// scopes, and the app's API key (`None` when the server did not say).
pub type TokenInfoParts = (String, String, Option<String>, Vec<String>, Option<String>);

/// Parses the token-info response.
pub fn parse_token_info(ok: &GraphqlOk) -> Result<TokenInfoParts, ShopifyError> {
    no_partial_errors(ok)?;
    let shop = ok
        .data
        .get("shop")
        .filter(|s| s.is_object())
        .ok_or_else(|| ShopifyError::Protocol("response lacks shop".into()))?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let name = s(shop, "name").ok_or_else(|| ShopifyError::Protocol("shop.name missing".into()))?;
    let domain = s(shop, "myshopifyDomain")
        .ok_or_else(|| ShopifyError::Protocol("shop.myshopifyDomain missing".into()))?;
    let plan = shop
        .get("plan")
        .and_then(|p| s(p, "publicDisplayName").or_else(|| s(p, "displayName")));
    let installation = ok.data.get("currentAppInstallation");
    // Tolerated when absent: an older server (or a stub) may not have it.
    let api_key = installation
        .and_then(|i| i.get("app"))
        .and_then(|a| s(a, "apiKey"));
    let scopes = installation
        .and_then(|i| i.get("accessScopes"))
        .and_then(Value::as_array)
        .ok_or_else(|| ShopifyError::Protocol("currentAppInstallation.accessScopes missing".into()))?
        .iter()
        .filter_map(|a| s(a, "handle"))
        .collect();
    Ok((name, domain, plan, scopes, api_key))
}

/// Parses an `appUninstall` response: its `userErrors` become
/// [`ShopifyError::UserErrors`], each message prefixed with its `code`
/// (`APP_NOT_INSTALLED: …`), as [`UserError`] has no field for one.
pub fn parse_app_uninstall(ok: &GraphqlOk) -> Result<(), ShopifyError> {
    no_partial_errors(ok)?;
    let payload = ok
        .data
        .get("appUninstall")
        .filter(|p| p.is_object())
        .ok_or_else(|| ShopifyError::Protocol("response lacks appUninstall".into()))?;
    let errors: Vec<UserError> = payload
        .get("userErrors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
            let field = e
                .get("field")
                .and_then(Value::as_array)
                .map(|f| f.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let message = match e.get("code").and_then(Value::as_str) {
                Some(code) => format!("{code}: {message}"),
                None => message.to_owned(),
            };
            UserError { field, message }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ShopifyError::UserErrors(errors))
    }
}

fn errors_for_alias(errors: &[GraphqlError], alias: &str) -> Vec<UserError> {
    errors
        .iter()
        .filter(|e| e.path.first().map(String::as_str) == Some(alias))
        .map(|e| UserError {
            field: e.path.iter().skip(1).cloned().collect(),
            message: e.message.clone(),
        })
        .collect()
}

/// Maps a mutation response back to the changes, in order. An alias whose
/// payload has `userErrors`, or is `null` with GraphQL errors naming it, is
/// `Failed`; the other aliases keep their results.
pub fn parse_apply(ok: &GraphqlOk, changes: &[Change]) -> Result<Vec<ChangeResult>, ShopifyError> {
    let unattributed: Vec<UserError> = ok
        .errors
        .iter()
        .filter(|e| e.path.is_empty())
        .map(|e| UserError {
            field: vec![],
            message: e.message.clone(),
        })
        .collect();
    let mut out = Vec::with_capacity(changes.len());
    for (i, ch) in changes.iter().enumerate() {
        let a = alias(i);
        let payload = ok.data.get(&a).filter(|p| !p.is_null());
        let Some(payload) = payload else {
            let mut errs = errors_for_alias(&ok.errors, &a);
            if errs.is_empty() {
                errs = unattributed.clone();
            }
            if errs.is_empty() {
                errs.push(UserError {
                    field: vec![],
                    message: format!("no result returned for {a}"),
                });
            }
            out.push(ChangeResult::Failed { user_errors: errs });
            continue;
        };
        let user_errors: Vec<UserError> = match payload.get("userErrors") {
            None | Some(Value::Null) => vec![],
            Some(v) => Vec::<UserError>::deserialize(v)
                .map_err(|e| ShopifyError::Protocol(format!("bad userErrors in {a}: {e}")))?,
        };
        if !user_errors.is_empty() {
            out.push(ChangeResult::Failed { user_errors });
            continue;
        }
        let result = match ch {
            Change::Create { .. } | Change::Update { .. } => {
                let sub = payload
                    .get("webhookSubscription")
                    .filter(|s| !s.is_null())
                    .ok_or_else(|| {
                        ShopifyError::Protocol(format!("{a}: no webhookSubscription and no userErrors"))
                    })?;
                let sub = parse_subscription(sub)?;
                if ch.is_create() {
                    ChangeResult::Created(sub)
                } else {
                    ChangeResult::Updated(sub)
                }
            }
            Change::Delete { id, .. } => ChangeResult::Deleted {
                id: payload
                    .get("deletedWebhookSubscriptionId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| id.clone()),
            },
        };
        out.push(result);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::UserError;
    use crate::response::GraphqlError;
    use crate::types::Format;
    use serde_json::json;

    #[test]
    fn parses_subscriptions_in_both_shapes() {
        let old = json!({"id": "gid://shopify/WebhookSubscription/1", "topic": "CUSTOMER_TAGS_ADDED", "format": "XML",
            "includeFields": ["id"], "metafieldNamespaces": [], "filter": null, "apiVersion": {"handle": "2025-07"},
            "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": "https://h/webhooks/customer.tags_added"}});
        let s = parse_subscription(&old).unwrap();
        assert_eq!(s.topic, "customer.tags_added");
        assert_eq!(s.topic_enum, "CUSTOMER_TAGS_ADDED");
        assert_eq!(s.address, "https://h/webhooks/customer.tags_added");
        assert_eq!(s.format, Format::Xml);
        assert_eq!(s.include_fields, vec!["id"]);
        assert_eq!(s.api_version.as_deref(), Some("2025-07"));
        let new = json!({"id": "gid://shopify/WebhookSubscription/2", "topic": "SOMETHING_NEW", "format": "JSON", "uri": "https://h/x", "filter": "id:1"});
        let s = parse_subscription(&new).unwrap();
        assert_eq!(s.topic, "SOMETHING_NEW");
        assert_eq!(s.address, "https://h/x");
        assert_eq!(s.filter.as_deref(), Some("id:1"));
        assert!(s.metafields.is_empty() && s.name.is_none());
        let named = json!({"id": "gid://shopify/WebhookSubscription/6", "topic": "ORDERS_PAID", "uri": "https://h/y",
            "name": "paid", "metafields": [{"namespace": "oms", "key": "warehouse"}, {"namespace": null, "key": "app"}]});
        let s = parse_subscription(&named).unwrap();
        assert_eq!(s.name.as_deref(), Some("paid"));
        assert_eq!(
            s.metafields,
            vec![
                Metafield {
                    namespace: "oms".into(),
                    key: "warehouse".into()
                },
                Metafield {
                    namespace: String::new(),
                    key: "app".into()
                },
            ]
        );
        let pubsub = json!({"id": "gid://shopify/WebhookSubscription/3", "topic": "ORDERS_CREATE",
            "endpoint": {"__typename": "WebhookPubSubEndpoint", "pubSubProject": "p", "pubSubTopic": "t"}});
        assert_eq!(parse_subscription(&pubsub).unwrap().address, "pubsub://p:t");
        let arn = "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1/src";
        let bridge = json!({"id": "4", "topic": "ORDERS_CREATE", "endpoint": {"__typename": "WebhookEventBridgeEndpoint", "arn": arn}});
        assert_eq!(parse_subscription(&bridge).unwrap().address, arn);
        let unknown =
            json!({"id": "5", "topic": "ORDERS_CREATE", "endpoint": {"__typename": "SomethingNew"}});
        assert_eq!(parse_subscription(&unknown).unwrap().address, "");
        assert!(matches!(
            parse_subscription(&json!({"topic": "X"})),
            Err(ShopifyError::Protocol(_))
        ));
    }

    fn ok(data: Value) -> GraphqlOk {
        GraphqlOk { data, errors: vec![] }
    }

    #[test]
    fn pages() {
        let p = parse_page(&ok(
            json!({"webhookSubscriptions": {"nodes": [{"id": "1", "topic": "ORDERS_CREATE", "uri": "u"}],
            "pageInfo": {"hasNextPage": true, "endCursor": "cur"}}}),
        ))
        .unwrap();
        assert_eq!(p.subscriptions.len(), 1);
        assert_eq!(p.next.as_deref(), Some("cur"));
        let p = parse_page(&ok(
            json!({"webhookSubscriptions": {"edges": [{"node": {"id": "1", "topic": "ORDERS_CREATE"}}],
            "pageInfo": {"hasNextPage": false, "endCursor": "cur"}}}),
        ))
        .unwrap();
        assert_eq!(p.next, None);
        assert!(
            parse_page(&ok(
                json!({"webhookSubscriptions": {"nodes": [], "pageInfo": {"hasNextPage": true}}})
            ))
            .is_err()
        );
        assert!(parse_page(&ok(json!({}))).is_err());
    }

    #[test]
    fn token_info() {
        let (name, domain, plan, scopes, api_key) = parse_token_info(&ok(json!({
            "shop": {"name": "Pop", "myshopifyDomain": "pop.myshopify.com", "plan": {"publicDisplayName": "Advanced"}},
            "currentAppInstallation": {"accessScopes": [{"handle": "read_orders"}, {"handle": "write_products"}]}}))).unwrap();
        assert_eq!(api_key, None, "tolerated when absent");
        assert_eq!(
            (name.as_str(), domain.as_str(), plan.as_deref()),
            ("Pop", "pop.myshopify.com", Some("Advanced"))
        );
        assert_eq!(scopes, vec!["read_orders", "write_products"]);
        assert!(parse_token_info(&ok(json!({"shop": {"name": "x"}}))).is_err());
        let (.., api_key) = parse_token_info(&ok(json!({
            "shop": {"name": "Pop", "myshopifyDomain": "pop.myshopify.com", "plan": null},
            "currentAppInstallation": {"accessScopes": [], "app": {"apiKey": "client-1"}}})))
        .unwrap();
        assert_eq!(api_key.as_deref(), Some("client-1"));
    }

    #[test]
    fn app_uninstall_user_errors_name_their_code() {
        assert_eq!(
            parse_app_uninstall(&ok(
                json!({"appUninstall": {"app": {"id": "gid://shopify/App/1"}, "userErrors": []}})
            )),
            Ok(())
        );
        let err = parse_app_uninstall(&ok(json!({"appUninstall": {"app": null, "userErrors": [
            {"field": null, "message": "The app is not installed", "code": "APP_NOT_INSTALLED"}]}})))
        .unwrap_err();
        assert_eq!(
            err,
            ShopifyError::UserErrors(vec![UserError {
                field: vec![],
                message: "APP_NOT_INSTALLED: The app is not installed".into()
            }])
        );
        assert!(err.to_string().contains("APP_NOT_INSTALLED"), "{err}");
        assert!(parse_app_uninstall(&ok(json!({"appUninstall": null}))).is_err());
    }

    #[test]
    fn apply_results_map_back_in_order() {
        let changes = vec![
            Change::Create {
                topic: "orders/create".into(),
                address: "https://a".into(),
                format: Format::Json,
                options: Default::default(),
            },
            Change::Create {
                topic: "orders/paid".into(),
                address: "https://dup".into(),
                format: Format::Json,
                options: Default::default(),
            },
            Change::Delete {
                id: "gid://shopify/WebhookSubscription/9".into(),
                topic: "orders/paid".into(),
            },
            Change::Update {
                id: "gid://shopify/WebhookSubscription/5".into(),
                topic: "orders/paid".into(),
                address: "https://b".into(),
                format: Format::Json,
                options: Default::default(),
            },
        ];
        let resp = GraphqlOk {
            data: json!({
                "c0": {"webhookSubscription": {"id": "gid://shopify/WebhookSubscription/10", "topic": "ORDERS_CREATE", "format": "JSON", "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": "https://a"}}, "userErrors": []},
                "c1": {"webhookSubscription": null, "userErrors": [{"field": ["webhookSubscription", "callbackUrl"], "message": "Address for this topic has already been taken"}]},
                "c2": {"deletedWebhookSubscriptionId": "gid://shopify/WebhookSubscription/9", "userErrors": []},
                "c3": null
            }),
            errors: vec![GraphqlError {
                message: "internal".into(),
                code: None,
                path: vec!["c3".into(), "webhookSubscription".into()],
            }],
        };
        let r = parse_apply(&resp, &changes).unwrap();
        assert!(
            matches!(&r[0], ChangeResult::Created(s) if s.address == "https://a" && s.topic == "orders/create")
        );
        assert_eq!(
            r[1].user_errors().unwrap()[0].message,
            "Address for this topic has already been taken"
        );
        assert_eq!(
            r[1].user_errors().unwrap()[0].field,
            vec!["webhookSubscription", "callbackUrl"]
        );
        assert_eq!(
            r[2],
            ChangeResult::Deleted {
                id: "gid://shopify/WebhookSubscription/9".into()
            }
        );
        assert_eq!(
            r[3],
            ChangeResult::Failed {
                user_errors: vec![UserError {
                    field: vec!["webhookSubscription".into()],
                    message: "internal".into()
                }]
            }
        );
        // A null field path is accepted.
        let resp = ok(
            json!({"c0": {"deletedWebhookSubscriptionId": null, "userErrors": [{"field": null, "message": "Webhook subscription does not exist"}]}}),
        );
        let r = parse_apply(&resp, &changes[2..3]).unwrap();
        assert_eq!(r[0].user_errors().unwrap()[0].field, Vec::<String>::new());
    }
}
