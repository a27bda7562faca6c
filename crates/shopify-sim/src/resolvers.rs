//! Root fields of the simulated schema: the `webhookSubscriptions` /
//! `webhookSubscription` / `shop` / `currentAppInstallation` queries, the
//! webhook subscription mutations (`webhookSubscription{Create,Update,Delete}`
//! and the dedicated `pubSub…` / `eventBridge…` create and update) and
//! `appUninstall` (2025-07 on), with Shopify's argument rules and
//! `userErrors`. Every one acts as the calling token's app: it sees and
//! changes that app's subscriptions only.

use super::address::{Accepts, pubsub_address, valid_pubsub_part};
use super::fixture::{APP_RESERVED_NAMESPACE, MetafieldIdentifier};
use super::schema::{AppView, InstallationView, Payload, ShopView, UninstallView, parse_cursor, req};
use super::subs::{GID_PREFIX, ListQuery, SubInput, UserError, parse_gid};
use super::versions::Features;
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputValue, Object, ObjectAccessor, ResolverContext, TypeRef,
};
use async_graphql::{Error, ErrorExtensions, Value};

/// Shopify's connection page-size limit.
pub(crate) const MAX_PAGE_SIZE: i64 = 250;

fn opt<'a>(args: &'a ObjectAccessor<'a>, name: &str) -> Option<async_graphql::dynamic::ValueAccessor<'a>> {
    args.get(name).filter(|v| !v.is_null())
}

fn opt_string(args: &ObjectAccessor<'_>, name: &str) -> async_graphql::Result<Option<String>> {
    opt(args, name)
        .map(|v| v.string().map(str::to_string))
        .transpose()
}

fn string_list(args: &ObjectAccessor<'_>, name: &str) -> async_graphql::Result<Option<Vec<String>>> {
    let Some(v) = opt(args, name) else {
        return Ok(None);
    };
    let list = v.list()?;
    let mut out = Vec::with_capacity(list.len());
    for item in list.iter() {
        out.push(item.string()?.to_string());
    }
    Ok(Some(out))
}

/// An `ID` argument: a string, or an integer literal (GraphQL allows both).
fn id_arg(ctx: &ResolverContext<'_>) -> async_graphql::Result<String> {
    let v = ctx.args.try_get("id")?;
    match v.as_value() {
        Value::Number(n) => Ok(n.to_string()),
        _ => Ok(v.string()?.to_string()),
    }
}

/// A subscription id from a gid; anything else is a coercion error, as
/// Shopify reports for ids of the wrong shape or type.
fn sub_id(id: &str) -> async_graphql::Result<u64> {
    id.strip_prefix(GID_PREFIX)
        .and_then(|_| parse_gid(id))
        .ok_or_else(|| {
            Error::new(format!("Invalid global id '{id}'")).extend_with(|_, e| {
                e.set("code", "argumentLiteralsIncompatible");
                e.set("typeName", "CoercionError");
            })
        })
}

fn page_size(args: &ObjectAccessor<'_>, name: &str) -> async_graphql::Result<Option<usize>> {
    let Some(v) = opt(args, name) else {
        return Ok(None);
    };
    let n = v.i64()?;
    if n < 0 {
        return Err(Error::new(format!(
            "Argument '{name}' must be greater than or equal to 0"
        )));
    }
    if n > MAX_PAGE_SIZE {
        // [U]: Shopify's exact wording (and whether it carries a code) for an
        // oversized page is unconfirmed, so no code is invented here.
        return Err(Error::new(format!(
            "The maximum page size is {MAX_PAGE_SIZE}; '{name}' was {n}"
        )));
    }
    Ok(Some(n as usize))
}

fn cursor_arg(args: &ObjectAccessor<'_>, name: &str) -> async_graphql::Result<Option<u64>> {
    match opt_string(args, name)? {
        None => Ok(None),
        Some(c) => parse_cursor(&c)
            .map(Some)
            .ok_or_else(|| Error::new(format!("Invalid cursor for '{name}': {c}"))),
    }
}

fn list_query(ctx: &ResolverContext<'_>, f: Features) -> async_graphql::Result<ListQuery> {
    let a = &ctx.args;
    let first = page_size(a, "first")?;
    let last = page_size(a, "last")?;
    if first.is_none() && last.is_none() {
        return Err(Error::new("you must provide one of first or last"));
    }
    let topics = match opt(a, "topics") {
        None => None,
        Some(v) => Some(
            v.list()?
                .iter()
                .map(|t| t.enum_name().map(str::to_string))
                .collect::<async_graphql::Result<Vec<_>>>()?,
        ),
    };
    let format = opt(a, "format")
        .map(|v| v.enum_name().map(str::to_string))
        .transpose()?;
    let mut address = if f.uri { opt_string(a, "uri")? } else { None };
    if let Some(cb) = opt_string(a, "callbackUrl")? {
        if f.uri {
            req(ctx)?.mark_deprecated();
        }
        address.get_or_insert(cb);
    }
    Ok(ListQuery {
        topics,
        format,
        address,
        first,
        last,
        after: cursor_arg(a, "after")?,
        before: cursor_arg(a, "before")?,
        reverse: opt(a, "reverse")
            .map(|v| v.boolean())
            .transpose()?
            .unwrap_or(false),
    })
}

pub(crate) fn query_root(f: Features) -> Object {
    let mut list = Field::new(
        "webhookSubscriptions",
        TypeRef::named_nn("WebhookSubscriptionConnection"),
        move |ctx| {
            FieldFuture::new(async move {
                let rc = req(&ctx)?;
                let q = list_query(&ctx, f)?;
                Ok(Some(FieldValue::owned_any(rc.state.list(&rc.shop, rc.app(), &q))))
            })
        },
    )
    .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
    .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
    .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)))
    .argument(InputValue::new("before", TypeRef::named(TypeRef::STRING)))
    .argument(InputValue::new("reverse", TypeRef::named(TypeRef::BOOLEAN)).default_value(false))
    .argument(
        InputValue::new("sortKey", TypeRef::named("WebhookSubscriptionSortKeys"))
            .default_value(Value::Enum(async_graphql::Name::new("CREATED_AT"))),
    )
    .argument(InputValue::new(
        "topics",
        TypeRef::named_nn_list("WebhookSubscriptionTopic"),
    ))
    .argument(InputValue::new(
        "format",
        TypeRef::named("WebhookSubscriptionFormat"),
    ));
    let callback = InputValue::new("callbackUrl", TypeRef::named("URL"));
    list = if f.uri {
        list.argument(InputValue::new("uri", TypeRef::named(TypeRef::STRING)))
            .argument(callback.deprecation(Some("Use `uri` instead.")))
    } else {
        list.argument(callback)
    };
    let one = Field::new(
        "webhookSubscription",
        TypeRef::named("WebhookSubscription"),
        |ctx| {
            FieldFuture::new(async move {
                let rc = req(&ctx)?;
                let id = sub_id(&id_arg(&ctx)?)?;
                Ok(rc
                    .state
                    .get_sub(&rc.shop, rc.app(), id)
                    .map(FieldValue::owned_any))
            })
        },
    )
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)));
    let shop = Field::new("shop", TypeRef::named_nn("Shop"), |ctx| {
        FieldFuture::new(async move {
            let rc = req(&ctx)?;
            let (name, plan) = rc
                .state
                .shop_info(&rc.shop)
                .ok_or_else(|| Error::new("Shop not found"))?;
            Ok(Some(FieldValue::owned_any(ShopView {
                name,
                domain: rc.shop.clone(),
                plan,
            })))
        })
    });
    let installation = Field::new(
        "currentAppInstallation",
        TypeRef::named_nn("AppInstallation"),
        |ctx| {
            FieldFuture::new(async move {
                let rc = req(&ctx)?;
                let client_id = rc.state.lock().resolve(rc.app()).to_owned();
                Ok(Some(FieldValue::owned_any(InstallationView {
                    scopes: rc.scopes.clone(),
                    app: AppView { client_id },
                })))
            })
        },
    );
    Object::new("QueryRoot")
        .field(list)
        .field(one)
        .field(shop)
        .field(installation)
}

/// A list input for an update: `None` when absent; an explicit `null` clears
/// like an empty list does ([U]: Shopify's treatment of `null` is not
/// documented).
fn list_update(obj: &ObjectAccessor<'_>, name: &str) -> async_graphql::Result<Option<Vec<String>>> {
    match obj.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(Some(Vec::new())),
        Some(_) => string_list(obj, name),
    }
}

/// `Some(None)` for an explicit `null`.
fn nullable_string(obj: &ObjectAccessor<'_>, name: &str) -> async_graphql::Result<Option<Option<String>>> {
    match obj.get(name) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(Some(None)),
        Some(v) => Ok(Some(Some(v.string()?.to_string()))),
    }
}

/// `[HasMetafieldsMetafieldIdentifierInput!]`: a missing or `null`
/// namespace is the app-reserved one.
fn metafields(obj: &ObjectAccessor<'_>) -> async_graphql::Result<Option<Vec<MetafieldIdentifier>>> {
    let list = match obj.get("metafields") {
        None => return Ok(None),
        Some(v) if v.is_null() => return Ok(Some(Vec::new())),
        Some(v) => v.list()?,
    };
    let mut out = Vec::with_capacity(list.len());
    for item in list.iter() {
        let o = item.object()?;
        out.push(MetafieldIdentifier {
            namespace: opt_string(&o, "namespace")?.unwrap_or_else(|| APP_RESERVED_NAMESPACE.to_string()),
            key: o.try_get("key")?.string()?.to_string(),
        });
    }
    Ok(Some(out))
}

/// The options every subscription input shares: `format`, `includeFields`,
/// `metafieldNamespaces`, `metafields`, `filter`, `name` (the schema of the
/// version decides which exist).
fn common_options(obj: &ObjectAccessor<'_>, input: &mut SubInput) -> async_graphql::Result<()> {
    input.format = match opt(obj, "format") {
        None => None,
        Some(v) => Some(match v.enum_name()? {
            "XML" => "XML",
            _ => "JSON",
        }),
    };
    input.include_fields = list_update(obj, "includeFields")?;
    input.metafield_namespaces = list_update(obj, "metafieldNamespaces")?;
    input.metafields = metafields(obj)?;
    input.filter = nullable_string(obj, "filter")?;
    input.name = nullable_string(obj, "name")?;
    Ok(())
}

/// Reads a `WebhookSubscriptionInput`, taking the version's address field:
/// `uri` takes every kind of destination, `callbackUrl` HTTP(S) only.
fn sub_input(ctx: &ResolverContext<'_>, f: Features) -> async_graphql::Result<SubInput> {
    let obj = ctx.args.try_get("webhookSubscription")?.object()?;
    let uri = if f.uri { opt_string(&obj, "uri")? } else { None };
    let callback = opt_string(&obj, "callbackUrl")?;
    if f.uri && callback.is_some() {
        req(ctx)?.mark_deprecated();
    }
    let (address, address_field, accepts) = match (uri, callback) {
        (Some(u), _) => (Some(u), "uri", Accepts::Any),
        (None, Some(c)) => (Some(c), "callbackUrl", Accepts::HttpOnly),
        (None, None) if f.uri => (None, "uri", Accepts::Any),
        (None, None) => (None, "callbackUrl", Accepts::HttpOnly),
    };
    let mut input = SubInput {
        address,
        address_field,
        accepts,
        ..Default::default()
    };
    common_options(&obj, &mut input)?;
    Ok(input)
}

/// Reads a `PubSubWebhookSubscriptionInput`: the address is
/// `pubsub://{pubSubProject}:{pubSubTopic}`.
fn pubsub_input(ctx: &ResolverContext<'_>, _f: Features) -> async_graphql::Result<SubInput> {
    let obj = ctx.args.try_get("webhookSubscription")?.object()?;
    let project = obj.try_get("pubSubProject")?.string()?.to_string();
    let topic = obj.try_get("pubSubTopic")?.string()?.to_string();
    let mut input = SubInput {
        address: Some(pubsub_address(&project, &topic)),
        address_field: "pubSubTopic",
        accepts: Accepts::Any,
        ..Default::default()
    };
    for (field, value) in [("pubSubProject", &project), ("pubSubTopic", &topic)] {
        if !valid_pubsub_part(value) {
            input.errors.push(UserError::new(
                &["webhookSubscription", field],
                super::address::MSG_INVALID,
            ));
        }
    }
    common_options(&obj, &mut input)?;
    Ok(input)
}

/// Reads an `EventBridgeWebhookSubscriptionInput` (`arn: ARN`, nullable as
/// on shopify.dev: absent on an update keeps the address).
fn eventbridge_input(ctx: &ResolverContext<'_>, _f: Features) -> async_graphql::Result<SubInput> {
    let obj = ctx.args.try_get("webhookSubscription")?.object()?;
    let mut input = SubInput {
        address: opt_string(&obj, "arn")?,
        address_field: "arn",
        accepts: Accepts::Any,
        ..Default::default()
    };
    common_options(&obj, &mut input)?;
    Ok(input)
}

fn payload(p: Payload) -> Option<FieldValue<'static>> {
    Some(FieldValue::owned_any(p))
}

type InputReader = fn(&ResolverContext<'_>, Features) -> async_graphql::Result<SubInput>;

fn outcome(r: Result<super::subs::Sub, Vec<UserError>>) -> Option<FieldValue<'static>> {
    payload(match r {
        Ok(sub) => Payload {
            sub: Some(sub),
            ..Default::default()
        },
        Err(user_errors) => Payload {
            user_errors,
            ..Default::default()
        },
    })
}

/// A create mutation: `name(topic: WebhookSubscriptionTopic!,
/// webhookSubscription: input_type!): payload_type`.
fn create_field(
    f: Features,
    name: &str,
    payload_type: &str,
    input_type: &str,
    read: InputReader,
    deprecation: Option<&'static str>,
) -> Field {
    let field = Field::new(name, TypeRef::named(payload_type), move |ctx| {
        FieldFuture::new(async move {
            let rc = req(&ctx)?;
            if deprecation.is_some() {
                rc.mark_deprecated();
            }
            let topic_arg = ctx.args.try_get("topic")?;
            let topic_name = topic_arg.enum_name()?;
            let topic = super::topics::lookup_enum(topic_name)
                .ok_or_else(|| Error::new(format!("Unknown topic {topic_name}")))?;
            let input = read(&ctx, f)?;
            Ok(outcome(rc.state.create(&rc.shop, rc.app(), topic, input)))
        })
    })
    .argument(InputValue::new(
        "topic",
        TypeRef::named_nn("WebhookSubscriptionTopic"),
    ))
    .argument(InputValue::new(
        "webhookSubscription",
        TypeRef::named_nn(input_type),
    ));
    match deprecation {
        Some(reason) => field.deprecation(Some(reason)),
        None => field,
    }
}

/// An update mutation: `name(id: ID!, webhookSubscription: input_type!):
/// payload_type`.
fn update_field(
    f: Features,
    name: &str,
    payload_type: &str,
    input_type: &str,
    read: InputReader,
    deprecation: Option<&'static str>,
) -> Field {
    let field = Field::new(name, TypeRef::named(payload_type), move |ctx| {
        FieldFuture::new(async move {
            let rc = req(&ctx)?;
            if deprecation.is_some() {
                rc.mark_deprecated();
            }
            let id = sub_id(&id_arg(&ctx)?)?;
            let input = read(&ctx, f)?;
            Ok(outcome(rc.state.update(&rc.shop, rc.app(), id, input)))
        })
    })
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
    .argument(InputValue::new(
        "webhookSubscription",
        TypeRef::named_nn(input_type),
    ));
    match deprecation {
        Some(reason) => field.deprecation(Some(reason)),
        None => field,
    }
}

/// `appUninstall` (no arguments): uninstalls the calling app from the
/// shop. The webhooks it triggers are sent after the state is changed and
/// unlocked, from a task of their own, as Shopify sends them after the fact.
fn app_uninstall() -> Field {
    Field::new("appUninstall", TypeRef::named("AppUninstallPayload"), |ctx| {
        FieldFuture::new(async move {
            let rc = req(&ctx)?;
            let view = match rc.state.uninstall(&rc.shop, rc.app()) {
                Some(done) => {
                    let app = AppView {
                        client_id: done.client_id.clone(),
                    };
                    super::uninstall::deliver(rc.deliverer.clone(), done);
                    UninstallView {
                        app: Some(app),
                        user_errors: Vec::new(),
                    }
                }
                // Reached only by a second `appUninstall` in one document:
                // the first revoked the token this request came with.
                None => UninstallView {
                    app: None,
                    user_errors: vec![UserError {
                        field: None,
                        message: "The app is not installed on this shop".into(),
                        code: "APP_NOT_INSTALLED",
                    }],
                },
            };
            Ok(Some(FieldValue::owned_any(view)))
        })
    })
}

/// Deprecation reasons of the dedicated mutations once `uri` exists.
const USE_CREATE: &str = "Use `webhookSubscriptionCreate` instead.";
const USE_UPDATE: &str = "Use `webhookSubscriptionUpdate` instead.";

pub(crate) fn mutation_root(f: Features) -> Object {
    let (dep_create, dep_update) = if f.uri {
        (Some(USE_CREATE), Some(USE_UPDATE))
    } else {
        (None, None)
    };
    let delete = Field::new(
        "webhookSubscriptionDelete",
        TypeRef::named("WebhookSubscriptionDeletePayload"),
        |ctx| {
            FieldFuture::new(async move {
                let rc = req(&ctx)?;
                let gid = id_arg(&ctx)?;
                let id = sub_id(&gid)?;
                Ok(payload(match rc.state.delete(&rc.shop, rc.app(), id) {
                    Ok(()) => Payload {
                        deleted_id: Some(gid),
                        ..Default::default()
                    },
                    Err(user_errors) => Payload {
                        user_errors,
                        ..Default::default()
                    },
                }))
            })
        },
    )
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)));
    let mut root = Object::new("Mutation");
    if f.app_uninstall {
        root = root.field(app_uninstall());
    }
    root.field(create_field(
        f,
        "webhookSubscriptionCreate",
        "WebhookSubscriptionCreatePayload",
        "WebhookSubscriptionInput",
        sub_input,
        None,
    ))
    .field(update_field(
        f,
        "webhookSubscriptionUpdate",
        "WebhookSubscriptionUpdatePayload",
        "WebhookSubscriptionInput",
        sub_input,
        None,
    ))
    .field(delete)
    .field(create_field(
        f,
        "pubSubWebhookSubscriptionCreate",
        "PubSubWebhookSubscriptionCreatePayload",
        "PubSubWebhookSubscriptionInput",
        pubsub_input,
        dep_create,
    ))
    .field(update_field(
        f,
        "pubSubWebhookSubscriptionUpdate",
        "PubSubWebhookSubscriptionUpdatePayload",
        "PubSubWebhookSubscriptionInput",
        pubsub_input,
        dep_update,
    ))
    .field(create_field(
        f,
        "eventBridgeWebhookSubscriptionCreate",
        "EventBridgeWebhookSubscriptionCreatePayload",
        "EventBridgeWebhookSubscriptionInput",
        eventbridge_input,
        dep_create,
    ))
    .field(update_field(
        f,
        "eventBridgeWebhookSubscriptionUpdate",
        "EventBridgeWebhookSubscriptionUpdatePayload",
        "EventBridgeWebhookSubscriptionInput",
        eventbridge_input,
        dep_update,
    ))
}
