//! The simulated Admin API schema, built with async-graphql's dynamic schema
//! once per feature set at startup (the version-dependent fields make the
//! schemas differ: `uri` from 2025-10, `publicDisplayName` and the
//! `appUninstall` mutation from 2025-07, subscription `filter` from 2024-07,
//! `metafields` from 2025-04, `name` from 2026-04; see
//! docs/src/shopify/webhook-subscriptions.md).
//!
//! Names and nullability follow Shopify's schema so that a client's documents
//! validate here exactly when they would validate there. Root-field resolvers
//! live in `resolvers.rs`; this file declares types and leaf fields.

use super::address::Endpoint;
use super::engine::{CostGateFactory, ReqCtx};
use super::fixture::MetafieldIdentifier;
use super::resolvers;
use super::subs::{Page, Sub, UserError};
use super::topics;
use super::versions::{ApiVersion, Features, VersionTable};
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, Scalar, Schema,
    SchemaBuilder, TypeRef, Union,
};
use async_graphql::{Name, Value};
use chrono::SecondsFormat;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

/// Deprecation reason for the pre-2025-10 address fields.
const URI_DEPRECATION: &str = "Use `uri` instead.";

/// One compiled schema per feature set, looked up by version.
pub(crate) struct Schemas {
    by_version: HashMap<ApiVersion, Schema>,
}

impl Schemas {
    pub fn build(versions: &VersionTable) -> Result<Self, String> {
        let mut by_features: HashMap<Features, Schema> = HashMap::new();
        let mut by_version = HashMap::new();
        for &v in versions.all() {
            let f = versions.features(v);
            let schema = match by_features.get(&f) {
                Some(s) => s.clone(),
                None => {
                    let s = build(f).map_err(|e| format!("schema for {v}: {e}"))?;
                    by_features.insert(f, s.clone());
                    s
                }
            };
            by_version.insert(v, schema);
        }
        Ok(Self { by_version })
    }

    /// The schema of a served version (as returned by `VersionTable::resolve`).
    pub fn get(&self, v: ApiVersion) -> &Schema {
        &self.by_version[&v]
    }

    /// The SDL of the schema that serves `v` (for debugging clients).
    pub fn sdl(&self, v: ApiVersion) -> String {
        self.get(v).sdl()
    }
}

/// The request context; present on every request the HTTP layer runs.
pub(crate) fn req<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a Arc<ReqCtx>> {
    ctx.ctx.data::<Arc<ReqCtx>>()
}

fn mark_deprecated(ctx: &ResolverContext<'_>) {
    if let Ok(rc) = req(ctx) {
        rc.mark_deprecated();
    }
}

fn str_value(s: &str) -> Value {
    Value::String(s.to_string())
}

fn str_list(items: &[String]) -> Value {
    Value::List(items.iter().map(|s| str_value(s)).collect())
}

fn enum_value(s: &str) -> Value {
    Value::Enum(Name::new(s))
}

fn any<T: Any + Send + Sync>(v: &T) -> FieldValue<'_> {
    FieldValue::borrowed_any(v)
}

/// A field computed synchronously from the parent object `P`.
fn leaf<P: Any>(name: &str, ty: TypeRef, get: fn(&P) -> Value) -> Field {
    Field::new(name, ty, move |ctx| {
        FieldFuture::Value(
            ctx.parent_value
                .downcast_ref::<P>()
                .map(|p| FieldValue::value(get(p))),
        )
    })
}

/// Like [`leaf`], and records that a deprecated field was used.
fn deprecated_leaf<P: Any>(name: &str, ty: TypeRef, reason: &str, get: fn(&P) -> Value) -> Field {
    Field::new(name, ty, move |ctx| {
        mark_deprecated(&ctx);
        FieldFuture::Value(
            ctx.parent_value
                .downcast_ref::<P>()
                .map(|p| FieldValue::value(get(p))),
        )
    })
    .deprecation(Some(reason))
}

/// A field whose value is an object borrowed from the parent `P`.
fn child<P: Any>(name: &str, ty: TypeRef, get: for<'a> fn(&'a P) -> Option<FieldValue<'a>>) -> Field {
    Field::new(name, ty, move |ctx| {
        FieldFuture::Value(ctx.parent_value.downcast_ref::<P>().and_then(get))
    })
}

fn nn(t: &str) -> TypeRef {
    TypeRef::named_nn(t)
}

fn timestamp(t: &chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Opaque cursor in Shopify's style (base64 of a small JSON object).
pub(crate) fn cursor(id: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!(r#"{{"last_id":{id},"last_value":"{id}"}}"#))
}

/// The subscription id a cursor points at.
pub(crate) fn parse_cursor(c: &str) -> Option<u64> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    v.get("last_id")?.as_u64()
}

/// `shop` as resolved: name, domain, plan.
pub(crate) struct ShopView {
    pub name: String,
    pub domain: String,
    pub plan: String,
}

/// `currentAppInstallation`: the scopes and the app of the calling token.
pub(crate) struct InstallationView {
    pub scopes: Vec<String>,
    pub app: AppView,
}

/// An `App`: what the simulator knows of one, its client id (`apiKey`).
pub(crate) struct AppView {
    pub client_id: String,
}

/// `AppUninstallPayload`.
pub(crate) struct UninstallView {
    pub app: Option<AppView>,
    pub user_errors: Vec<UserError>,
}

/// A mutation payload.
#[derive(Default)]
pub(crate) struct Payload {
    pub sub: Option<Sub>,
    pub deleted_id: Option<String>,
    pub user_errors: Vec<UserError>,
}

fn build(f: Features) -> Result<Schema, async_graphql::dynamic::SchemaError> {
    let mut b = Schema::build("QueryRoot", Some("Mutation"), None)
        .extension(CostGateFactory)
        .disable_suggestions();
    for s in ["URL", "DateTime", "UnsignedInt64", "ARN"] {
        b = b.register(Scalar::new(s).validator(|v| matches!(v, Value::String(_))));
    }
    b = b
        .register(Enum::new("WebhookSubscriptionTopic").items(topics::enum_names()))
        .register(Enum::new("WebhookSubscriptionFormat").items(["JSON", "XML"]))
        .register(Enum::new("WebhookSubscriptionSortKeys").items(["CREATED_AT", "ID", "RELEVANCE"]));
    b = register_subscription_types(b, f);
    b = register_shop_types(b, f);
    b = register_payload_types(b);
    if f.app_uninstall {
        b = register_uninstall_types(b);
    }
    if f.metafields {
        b = b.register(
            InputObject::new("HasMetafieldsMetafieldIdentifierInput")
                .field(InputValue::new("namespace", TypeRef::named(TypeRef::STRING)))
                .field(InputValue::new("key", TypeRef::named_nn(TypeRef::STRING))),
        );
    }
    b.register(resolvers::query_root(f))
        .register(resolvers::mutation_root(f))
        .register(subscription_input(f))
        .register(pubsub_input(f))
        .register(eventbridge_input(f))
        .finish()
}

/// The options all three subscription inputs share, as the version has them.
fn common_input_fields(mut input: InputObject, f: Features) -> InputObject {
    input = input
        .field(InputValue::new(
            "format",
            TypeRef::named("WebhookSubscriptionFormat"),
        ))
        .field(InputValue::new(
            "includeFields",
            TypeRef::named_nn_list(TypeRef::STRING),
        ))
        .field(InputValue::new(
            "metafieldNamespaces",
            TypeRef::named_nn_list(TypeRef::STRING),
        ));
    if f.filter {
        input = input.field(InputValue::new("filter", TypeRef::named(TypeRef::STRING)));
    }
    if f.metafields {
        input = input.field(InputValue::new(
            "metafields",
            TypeRef::named_nn_list("HasMetafieldsMetafieldIdentifierInput"),
        ));
    }
    if f.name {
        input = input.field(InputValue::new("name", TypeRef::named(TypeRef::STRING)));
    }
    input
}

fn subscription_input(f: Features) -> InputObject {
    let mut input = InputObject::new("WebhookSubscriptionInput");
    let callback = InputValue::new("callbackUrl", TypeRef::named("URL"));
    if f.uri {
        input = input
            .field(InputValue::new("uri", TypeRef::named(TypeRef::STRING)))
            .field(callback.deprecation(Some(URI_DEPRECATION)));
    } else {
        input = input.field(callback);
    }
    common_input_fields(input, f)
}

fn pubsub_input(f: Features) -> InputObject {
    let input = InputObject::new("PubSubWebhookSubscriptionInput")
        .field(InputValue::new(
            "pubSubProject",
            TypeRef::named_nn(TypeRef::STRING),
        ))
        .field(InputValue::new("pubSubTopic", TypeRef::named_nn(TypeRef::STRING)));
    common_input_fields(input, f)
}

fn eventbridge_input(f: Features) -> InputObject {
    let input = InputObject::new("EventBridgeWebhookSubscriptionInput")
        .field(InputValue::new("arn", TypeRef::named("ARN")));
    common_input_fields(input, f)
}

fn register_subscription_types(b: SchemaBuilder, f: Features) -> SchemaBuilder {
    let mut sub = Object::new("WebhookSubscription")
        .field(leaf::<Sub>("id", nn(TypeRef::ID), |s| Value::String(s.gid())))
        .field(leaf::<Sub>("legacyResourceId", nn("UnsignedInt64"), |s| {
            Value::String(s.id.to_string())
        }))
        .field(leaf::<Sub>("topic", nn("WebhookSubscriptionTopic"), |s| {
            enum_value(s.topic)
        }))
        .field(leaf::<Sub>("format", nn("WebhookSubscriptionFormat"), |s| {
            enum_value(s.format)
        }))
        .field(leaf::<Sub>(
            "includeFields",
            TypeRef::named_nn_list_nn(TypeRef::STRING),
            |s| str_list(&s.include_fields),
        ))
        .field(leaf::<Sub>(
            "metafieldNamespaces",
            TypeRef::named_nn_list_nn(TypeRef::STRING),
            |s| str_list(&s.metafield_namespaces),
        ))
        .field(leaf::<Sub>("createdAt", nn("DateTime"), |s| {
            timestamp(&s.created_at)
        }))
        .field(leaf::<Sub>("updatedAt", nn("DateTime"), |s| {
            timestamp(&s.updated_at)
        }))
        .field(child::<Sub>("apiVersion", nn("ApiVersion"), |s| {
            Some(any(&s.api_version))
        }));
    if f.filter {
        sub = sub.field(leaf::<Sub>("filter", TypeRef::named(TypeRef::STRING), |s| {
            s.filter.as_deref().map_or(Value::Null, str_value)
        }));
    }
    if f.metafields {
        sub = sub.field(child::<Sub>(
            "metafields",
            TypeRef::named_nn_list_nn("WebhookSubscriptionMetafieldIdentifier"),
            |s| Some(FieldValue::list(s.metafields.iter().map(any))),
        ));
    }
    if f.name {
        sub = sub.field(leaf::<Sub>("name", TypeRef::named(TypeRef::STRING), |s| {
            s.name.as_deref().map_or(Value::Null, str_value)
        }));
    }
    let endpoint = Field::new("endpoint", nn("WebhookSubscriptionEndpoint"), move |ctx| {
        if f.uri {
            mark_deprecated(&ctx);
        }
        FieldFuture::Value(ctx.parent_value.downcast_ref::<Sub>().map(|s| {
            let e = Endpoint::of(&s.address);
            let ty = match e {
                Endpoint::Http { .. } => "WebhookHttpEndpoint",
                Endpoint::EventBridge { .. } => "WebhookEventBridgeEndpoint",
                Endpoint::PubSub { .. } => "WebhookPubSubEndpoint",
            };
            FieldValue::owned_any(e).with_type(ty)
        }))
    });
    if f.uri {
        sub = sub
            .field(leaf::<Sub>("uri", nn(TypeRef::STRING), |s| str_value(&s.address)))
            .field(deprecated_leaf::<Sub>(
                "callbackUrl",
                nn("URL"),
                URI_DEPRECATION,
                |s| str_value(&s.address),
            ))
            .field(endpoint.deprecation(Some(URI_DEPRECATION)));
    } else {
        sub = sub
            .field(leaf::<Sub>("callbackUrl", nn("URL"), |s| str_value(&s.address)))
            .field(endpoint);
    }
    let http =
        Object::new("WebhookHttpEndpoint").field(leaf::<Endpoint>("callbackUrl", nn("URL"), |e| match e {
            Endpoint::Http { callback_url } => str_value(callback_url),
            _ => Value::Null,
        }));
    let bridge =
        Object::new("WebhookEventBridgeEndpoint").field(leaf::<Endpoint>("arn", nn("ARN"), |e| match e {
            Endpoint::EventBridge { arn } => str_value(arn),
            _ => Value::Null,
        }));
    let pubsub = Object::new("WebhookPubSubEndpoint")
        .field(leaf::<Endpoint>(
            "pubSubProject",
            nn(TypeRef::STRING),
            |e| match e {
                Endpoint::PubSub { project, .. } => str_value(project),
                _ => Value::Null,
            },
        ))
        .field(leaf::<Endpoint>(
            "pubSubTopic",
            nn(TypeRef::STRING),
            |e| match e {
                Endpoint::PubSub { topic, .. } => str_value(topic),
                _ => Value::Null,
            },
        ));
    let union = Union::new("WebhookSubscriptionEndpoint")
        .possible_type("WebhookHttpEndpoint")
        .possible_type("WebhookEventBridgeEndpoint")
        .possible_type("WebhookPubSubEndpoint");
    let api_version = Object::new("ApiVersion")
        .field(leaf::<String>("handle", nn(TypeRef::STRING), |h| str_value(h)))
        .field(leaf::<String>("displayName", nn(TypeRef::STRING), |h| {
            str_value(h)
        }))
        .field(leaf::<String>("supported", nn(TypeRef::BOOLEAN), |_| {
            Value::Boolean(true)
        }));
    let edge = Object::new("WebhookSubscriptionEdge")
        .field(leaf::<Sub>("cursor", nn(TypeRef::STRING), |s| {
            Value::String(cursor(s.id))
        }))
        .field(child::<Sub>("node", nn("WebhookSubscription"), |s| Some(any(s))));
    let connection = Object::new("WebhookSubscriptionConnection")
        .field(child::<Page>(
            "edges",
            TypeRef::named_nn_list_nn("WebhookSubscriptionEdge"),
            |p| Some(FieldValue::list(p.items.iter().map(any))),
        ))
        .field(child::<Page>(
            "nodes",
            TypeRef::named_nn_list_nn("WebhookSubscription"),
            |p| Some(FieldValue::list(p.items.iter().map(any))),
        ))
        .field(child::<Page>("pageInfo", nn("PageInfo"), |p| Some(any(p))));
    let page_info = Object::new("PageInfo")
        .field(leaf::<Page>("hasNextPage", nn(TypeRef::BOOLEAN), |p| {
            Value::Boolean(p.has_next)
        }))
        .field(leaf::<Page>("hasPreviousPage", nn(TypeRef::BOOLEAN), |p| {
            Value::Boolean(p.has_previous)
        }))
        .field(leaf::<Page>(
            "startCursor",
            TypeRef::named(TypeRef::STRING),
            |p| {
                p.items
                    .first()
                    .map_or(Value::Null, |s| Value::String(cursor(s.id)))
            },
        ))
        .field(leaf::<Page>("endCursor", TypeRef::named(TypeRef::STRING), |p| {
            p.items
                .last()
                .map_or(Value::Null, |s| Value::String(cursor(s.id)))
        }));
    let b = if f.metafields {
        b.register(
            Object::new("WebhookSubscriptionMetafieldIdentifier")
                .field(leaf::<MetafieldIdentifier>(
                    "namespace",
                    nn(TypeRef::STRING),
                    |m| str_value(&m.namespace),
                ))
                .field(leaf::<MetafieldIdentifier>("key", nn(TypeRef::STRING), |m| {
                    str_value(&m.key)
                })),
        )
    } else {
        b
    };
    b.register(sub)
        .register(http)
        .register(bridge)
        .register(pubsub)
        .register(union)
        .register(api_version)
        .register(edge)
        .register(connection)
        .register(page_info)
}

fn register_shop_types(b: SchemaBuilder, f: Features) -> SchemaBuilder {
    let shop = Object::new("Shop")
        .field(leaf::<ShopView>("id", nn(TypeRef::ID), |s| {
            Value::String(format!("gid://shopify/Shop/{}", stable_number(&s.domain)))
        }))
        .field(leaf::<ShopView>("name", nn(TypeRef::STRING), |s| {
            str_value(&s.name)
        }))
        .field(leaf::<ShopView>("myshopifyDomain", nn(TypeRef::STRING), |s| {
            str_value(&s.domain)
        }))
        .field(child::<ShopView>("plan", nn("ShopPlan"), |s| Some(any(&s.plan))));
    let mut plan = Object::new("ShopPlan")
        .field(leaf::<String>("partnerDevelopment", nn(TypeRef::BOOLEAN), |p| {
            Value::Boolean(p.to_ascii_lowercase().contains("development"))
        }))
        .field(leaf::<String>("shopifyPlus", nn(TypeRef::BOOLEAN), |p| {
            Value::Boolean(p.to_ascii_lowercase().contains("plus"))
        }));
    if f.public_display_name {
        plan = plan
            .field(leaf::<String>("publicDisplayName", nn(TypeRef::STRING), |p| {
                str_value(p)
            }))
            .field(deprecated_leaf::<String>(
                "displayName",
                nn(TypeRef::STRING),
                "Use `publicDisplayName` instead.",
                |p| str_value(p),
            ));
    } else {
        plan = plan.field(leaf::<String>("displayName", nn(TypeRef::STRING), |p| {
            str_value(p)
        }));
    }
    let installation = Object::new("AppInstallation")
        .field(leaf::<InstallationView>("id", nn(TypeRef::ID), |_| {
            str_value("gid://shopify/AppInstallation/1")
        }))
        .field(child::<InstallationView>(
            "accessScopes",
            TypeRef::named_nn_list_nn("AccessScope"),
            |i| Some(FieldValue::list(i.scopes.iter().map(any))),
        ))
        .field(child::<InstallationView>("app", nn("App"), |i| Some(any(&i.app))));
    // The id is derived from the client id so it is stable across reloads.
    let app = Object::new("App")
        .field(leaf::<AppView>("id", nn(TypeRef::ID), |a| {
            Value::String(format!("gid://shopify/App/{}", stable_number(&a.client_id)))
        }))
        .field(leaf::<AppView>("apiKey", nn(TypeRef::STRING), |a| {
            str_value(&a.client_id)
        }));
    let scope = Object::new("AccessScope")
        .field(leaf::<String>("handle", nn(TypeRef::STRING), |h| str_value(h)))
        .field(leaf::<String>("description", nn(TypeRef::STRING), |h| {
            Value::String(format!("Access scope {h}"))
        }));
    b.register(shop)
        .register(plan)
        .register(installation)
        .register(app)
        .register(scope)
}

/// `AppUninstallPayload` and its error type (2025-07 on).
fn register_uninstall_types(b: SchemaBuilder) -> SchemaBuilder {
    let error = coded_user_error(
        "AppUninstallAppUninstallError",
        "AppUninstallAppUninstallErrorCode",
    );
    let payload = Object::new("AppUninstallPayload")
        .field(child::<UninstallView>("app", TypeRef::named("App"), |u| {
            u.app.as_ref().map(any)
        }))
        .field(child::<UninstallView>(
            "userErrors",
            TypeRef::named_nn_list_nn("AppUninstallAppUninstallError"),
            |u| Some(FieldValue::list(u.user_errors.iter().map(any))),
        ));
    b.register(Enum::new("AppUninstallAppUninstallErrorCode").items([
        "APP_NOT_FOUND",
        "APP_NOT_INSTALLED",
        "APP_UNINSTALL_ERROR",
        "USER_PERMISSIONS_INSUFFICIENT",
    ]))
    .register(error)
    .register(payload)
}

fn register_payload_types(b: SchemaBuilder) -> SchemaBuilder {
    let user_error = Object::new("UserError")
        .field(leaf::<UserError>(
            "field",
            TypeRef::named_nn_list(TypeRef::STRING),
            |e| e.field.as_deref().map_or(Value::Null, str_list),
        ))
        .field(leaf::<UserError>("message", nn(TypeRef::STRING), |e| {
            str_value(&e.message)
        }));
    let errors = || {
        child::<Payload>("userErrors", TypeRef::named_nn_list_nn("UserError"), |p| {
            Some(FieldValue::list(p.user_errors.iter().map(any)))
        })
    };
    let sub = || {
        child::<Payload>(
            "webhookSubscription",
            TypeRef::named("WebhookSubscription"),
            |p| p.sub.as_ref().map(any),
        )
    };
    let create = Object::new("WebhookSubscriptionCreatePayload")
        .field(sub())
        .field(errors());
    let update = Object::new("WebhookSubscriptionUpdatePayload")
        .field(sub())
        .field(errors());
    let delete = Object::new("WebhookSubscriptionDeletePayload")
        .field(leaf::<Payload>(
            "deletedWebhookSubscriptionId",
            TypeRef::named(TypeRef::ID),
            |p| p.deleted_id.as_deref().map_or(Value::Null, str_value),
        ))
        .field(errors());
    let mut b = b
        .register(user_error)
        .register(create)
        .register(update)
        .register(delete);
    // The EventBridge mutations answer plain `UserError`s (shopify.dev).
    for name in [
        "EventBridgeWebhookSubscriptionCreatePayload",
        "EventBridgeWebhookSubscriptionUpdatePayload",
    ] {
        b = b.register(Object::new(name).field(sub()).field(errors()));
    }
    // The Pub/Sub ones have their own error types, with a `code`.
    for action in ["Create", "Update"] {
        let error_type = format!("PubSubWebhookSubscription{action}UserError");
        let code_type = format!("{error_type}Code");
        let error = coded_user_error(&error_type, &code_type);
        let errors = child::<Payload>(
            "userErrors",
            TypeRef::named_nn_list_nn(error_type.as_str()),
            |p| Some(FieldValue::list(p.user_errors.iter().map(any))),
        );
        b = b
            .register(Enum::new(code_type.as_str()).items(["INVALID_PARAMETERS", "TAKEN"]))
            .register(error)
            .register(
                Object::new(format!("PubSubWebhookSubscription{action}Payload"))
                    .field(sub())
                    .field(errors),
            );
    }
    b
}

/// A mutation's own error type: `code` (an enum named `code_type`),
/// `field` and `message`, as Shopify's typed userErrors have them.
fn coded_user_error(name: &str, code_type: &str) -> Object {
    Object::new(name)
        .field(leaf::<UserError>("code", TypeRef::named(code_type), |e| {
            enum_value(e.code)
        }))
        .field(leaf::<UserError>(
            "field",
            TypeRef::named_nn_list(TypeRef::STRING),
            |e| e.field.as_deref().map_or(Value::Null, str_list),
        ))
        .field(leaf::<UserError>("message", nn(TypeRef::STRING), |e| {
            str_value(&e.message)
        }))
}

/// A stable pseudo-id for a shop's gid, so repeated queries agree.
pub(crate) fn stable_number(s: &str) -> u64 {
    // FNV-1a: deterministic across runs, unlike the std hasher.
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    }) % 100_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions::DEFAULT_VERSIONS;

    #[test]
    fn schemas_differ_by_version_where_shopify_does() {
        let s = Schemas::build(&VersionTable::new(DEFAULT_VERSIONS).unwrap()).unwrap();
        let old = s.sdl(ApiVersion::parse("2025-04").unwrap());
        let new = s.sdl(ApiVersion::parse("2025-10").unwrap());
        assert!(!old.contains("uri: String"));
        assert!(new.contains("uri: String!"));
        assert!(!old.contains("publicDisplayName"));
        assert!(new.contains("publicDisplayName"));
        assert!(!old.contains("CUSTOMERS_REDACT"));
        assert!(old.contains("ORDERS_CREATE"));
        assert!(old.contains("AUDIT_EVENTS_ADMIN_API_ACTIVITY"));
        // Subscription fields by version.
        let sdl = |v: &str| s.sdl(ApiVersion::parse(v).unwrap());
        let (v2501, v2507, v2604) = (sdl("2025-01"), sdl("2025-07"), sdl("2026-04"));
        // The body of one type or input in an SDL.
        let block = |sdl: &str, head: &str| {
            let start = sdl.find(head).unwrap_or_else(|| panic!("{head} missing"));
            let end = sdl[start..].find('}').unwrap() + start;
            sdl[start..end].to_string()
        };
        assert!(block(&v2501, "type WebhookSubscription {").contains("filter: String"));
        assert!(!v2501.contains("metafields"));
        assert!(v2507.contains("metafields: [WebhookSubscriptionMetafieldIdentifier!]!"));
        assert!(v2507.contains("metafields: [HasMetafieldsMetafieldIdentifierInput!]"));
        for head in [
            "type WebhookSubscription {",
            "input WebhookSubscriptionInput {",
            "input PubSubWebhookSubscriptionInput {",
            "input EventBridgeWebhookSubscriptionInput {",
        ] {
            assert!(!block(&v2507, head).contains("name: String"), "{head}");
            assert!(block(&v2604, head).contains("name: String"), "{head}");
        }
        for v in [&v2501, &v2507, &v2604] {
            assert!(v.contains("pubSubWebhookSubscriptionCreate(topic: WebhookSubscriptionTopic!, webhookSubscription: PubSubWebhookSubscriptionInput!): PubSubWebhookSubscriptionCreatePayload"));
            assert!(v.contains("eventBridgeWebhookSubscriptionUpdate(id: ID!, webhookSubscription: EventBridgeWebhookSubscriptionInput!): EventBridgeWebhookSubscriptionUpdatePayload"));
            assert!(v.contains("arn: ARN\n"));
            assert!(v.contains("code: PubSubWebhookSubscriptionCreateUserErrorCode"));
        }
        let mutation = block(&v2507, "type Mutation {");
        assert!(!mutation.contains("@deprecated"), "{mutation}");
        assert!(
            mutation.contains("appUninstall: AppUninstallPayload"),
            "{mutation}"
        );
        let v2504 = sdl("2025-04");
        assert!(!v2504.contains("appUninstall"));
        assert!(v2504.contains("apiKey: String!"));
        assert!(v2604.contains("Use `webhookSubscriptionCreate` instead."));
        let create = v2604
            .lines()
            .find(|l| l.contains("\twebhookSubscriptionCreate("))
            .unwrap();
        assert!(!create.contains("@deprecated"), "{create}");
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(parse_cursor(&cursor(42)), Some(42));
        assert_eq!(parse_cursor("not-base64!"), None);
    }
}
