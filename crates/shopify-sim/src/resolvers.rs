//! Root fields of the simulated schema: the `webhookSubscriptions` /
//! `webhookSubscription` / `shop` / `currentAppInstallation` queries and the
//! three webhook subscription mutations, with Shopify's argument rules and
//! `userErrors`.

use super::schema::{InstallationView, Payload, ShopView, parse_cursor, req};
use super::subs::{GID_PREFIX, ListQuery, SubInput, parse_gid};
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
                Ok(Some(FieldValue::owned_any(rc.state.list(&rc.shop, &q))))
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
                Ok(rc.state.get_sub(&rc.shop, id).map(FieldValue::owned_any))
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
                Ok(Some(FieldValue::owned_any(InstallationView {
                    scopes: rc.scopes.clone(),
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

/// Reads a `WebhookSubscriptionInput`, taking the version's address field.
fn sub_input(ctx: &ResolverContext<'_>, f: Features) -> async_graphql::Result<SubInput> {
    let obj = ctx.args.try_get("webhookSubscription")?.object()?;
    let uri = if f.uri { opt_string(&obj, "uri")? } else { None };
    let callback = opt_string(&obj, "callbackUrl")?;
    if f.uri && callback.is_some() {
        req(ctx)?.mark_deprecated();
    }
    let (address, address_field) = match (uri, callback) {
        (Some(u), _) => (Some(u), "uri"),
        (None, Some(c)) => (Some(c), "callbackUrl"),
        (None, None) => (None, if f.uri { "uri" } else { "callbackUrl" }),
    };
    let format = match opt(&obj, "format") {
        None => None,
        Some(v) => Some(match v.enum_name()? {
            "XML" => "XML",
            _ => "JSON",
        }),
    };
    let filter = match obj.get("filter") {
        None => None,
        Some(v) if v.is_null() => Some(None),
        Some(v) => Some(Some(v.string()?.to_string())),
    };
    Ok(SubInput {
        address,
        address_field,
        format,
        include_fields: string_list(&obj, "includeFields")?,
        metafield_namespaces: string_list(&obj, "metafieldNamespaces")?,
        filter,
    })
}

fn payload(p: Payload) -> Option<FieldValue<'static>> {
    Some(FieldValue::owned_any(p))
}

pub(crate) fn mutation_root(f: Features) -> Object {
    let input_arg = || {
        InputValue::new(
            "webhookSubscription",
            TypeRef::named_nn("WebhookSubscriptionInput"),
        )
    };
    let create = Field::new(
        "webhookSubscriptionCreate",
        TypeRef::named("WebhookSubscriptionCreatePayload"),
        move |ctx| {
            FieldFuture::new(async move {
                let rc = req(&ctx)?;
                let topic_arg = ctx.args.try_get("topic")?;
                let topic_name = topic_arg.enum_name()?;
                let topic = super::topics::lookup_enum(topic_name)
                    .ok_or_else(|| Error::new(format!("Unknown topic {topic_name}")))?;
                let input = sub_input(&ctx, f)?;
                Ok(payload(match rc.state.create(&rc.shop, topic, input) {
                    Ok(sub) => Payload {
                        sub: Some(sub),
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
    .argument(InputValue::new(
        "topic",
        TypeRef::named_nn("WebhookSubscriptionTopic"),
    ))
    .argument(input_arg());
    let update = Field::new(
        "webhookSubscriptionUpdate",
        TypeRef::named("WebhookSubscriptionUpdatePayload"),
        move |ctx| {
            FieldFuture::new(async move {
                let rc = req(&ctx)?;
                let id = sub_id(&id_arg(&ctx)?)?;
                let input = sub_input(&ctx, f)?;
                Ok(payload(match rc.state.update(&rc.shop, id, input) {
                    Ok(sub) => Payload {
                        sub: Some(sub),
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
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
    .argument(input_arg());
    let delete = Field::new(
        "webhookSubscriptionDelete",
        TypeRef::named("WebhookSubscriptionDeletePayload"),
        |ctx| {
            FieldFuture::new(async move {
                let rc = req(&ctx)?;
                let gid = id_arg(&ctx)?;
                let id = sub_id(&gid)?;
                Ok(payload(match rc.state.delete(&rc.shop, id) {
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
    Object::new("Mutation").field(create).field(update).field(delete)
}
