//! Runs one GraphQL request the way Shopify does: parse, validate, then pay
//! from the calling app's bucket at the shop (or answer `THROTTLED` without executing), execute,
//! refund the unused cost, and shape the JSON body — `extensions.cost` on
//! every response, graphql-ruby style messages for the common validation
//! errors, no `data` when nothing was executed.

use super::bucket::ThrottleStatus;
use super::cost::{CostPlan, select_operation};
use super::oauth::Caller;
use super::schema::Schemas;
use super::state::SimState;
use super::versions::ApiVersion;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{ErrorExtensionValues, Request, Response, ServerError, Value, Variables};
use serde_json::{Value as Json, json};
use std::sync::{Arc, Mutex};

/// Rate-limit documentation Shopify links from throttling errors.
const RATE_LIMIT_DOCS: &str = "https://shopify.dev/api/usage/rate-limits";

/// Per-request context shared by the cost extension and the resolvers.
pub(crate) struct ReqCtx {
    pub state: Arc<SimState>,
    pub shop: String,
    /// Scopes of the token that authenticated the request.
    pub scopes: Vec<String>,
    /// The app of that token (`None`: the default app); what it may see
    /// and change, and whose bucket pays.
    pub client_id: Option<String>,
    /// Sends the webhooks a mutation triggers (`app/uninstalled`).
    pub deliverer: reqwest::Client,
    pub plan: CostPlan,
    pub outcome: Mutex<Outcome>,
}

/// What happened to the request, read back by the HTTP layer.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    pub executed: bool,
    pub throttled: bool,
    pub actual: Option<u64>,
    pub status: Option<ThrottleStatus>,
    /// A deprecated field or argument was used.
    pub deprecated: bool,
}

impl ReqCtx {
    /// The caller's app binding, as the state's functions take it.
    pub fn app(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    fn outcome(&self) -> std::sync::MutexGuard<'_, Outcome> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn mark_deprecated(&self) {
        self.outcome().deprecated = true;
    }
}

/// Installs [`CostGate`] in every schema.
pub(crate) struct CostGateFactory;

impl ExtensionFactory for CostGateFactory {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostGate)
    }
}

/// Sits between validation and execution, which is where Shopify decides
/// whether a (valid) query can be paid for.
struct CostGate;

#[async_graphql::async_trait::async_trait]
impl Extension for CostGate {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let Some(rc) = ctx.data_opt::<Arc<ReqCtx>>() else {
            return next.run(ctx, operation_name).await;
        };
        let requested = rc.plan.requested;
        let max = rc.state.max_query_cost();
        if requested > max {
            rc.outcome().status = Some(rc.state.bucket_status(&rc.shop, rc.app()));
            return Response::from_errors(vec![coded_error(
                &format!("Query cost is {requested}, which exceeds the single query max cost limit ({max})."),
                "MAX_COST_EXCEEDED",
            )]);
        }
        if let Err(status) = rc.state.bucket_take(&rc.shop, rc.app(), requested) {
            {
                let mut o = rc.outcome();
                o.throttled = true;
                o.status = Some(status);
            }
            rc.state.count(&rc.shop, |c| c.throttled += 1);
            return Response::from_errors(vec![coded_error("Throttled", "THROTTLED")]);
        }
        let resp = next.run(ctx, operation_name).await;
        let actual = rc.plan.actual(&resp.data);
        let status = rc.state.bucket_refund(&rc.shop, rc.app(), requested - actual);
        {
            let mut o = rc.outcome();
            o.executed = true;
            o.actual = Some(actual);
            o.status = Some(status);
        }
        let mutations = if rc.plan.mutation {
            rc.plan.root_fields.len() as u64
        } else {
            0
        };
        rc.state.count(&rc.shop, |c| {
            c.mutations += mutations;
            c.cost += actual;
            if mutations > 0 {
                c.last_mutation_at = Some(std::time::Instant::now());
            }
        });
        resp
    }
}

fn coded_error(message: &str, code: &str) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code);
    ext.set("documentation", RATE_LIMIT_DOCS);
    e.extensions = Some(ext);
    e
}

/// An incoming GraphQL POST body.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GqlBody {
    pub query: Option<String>,
    #[serde(default)]
    pub variables: Option<Json>,
    #[serde(default)]
    pub operation_name: Option<String>,
}

/// The result of [`execute`]: the serialized JSON body plus what the log
/// line and the response headers need.
pub(crate) struct Executed {
    pub body: Vec<u8>,
    pub outcome: Outcome,
    pub operations: Vec<String>,
    pub requested: u64,
}

/// Executes an authenticated request against the schema for `version`.
pub(crate) async fn execute(
    schemas: &Schemas,
    state: &Arc<SimState>,
    deliverer: &reqwest::Client,
    shop: &str,
    version: ApiVersion,
    caller: Caller,
    body: GqlBody,
) -> Executed {
    let query = body.query.unwrap_or_default();
    let variables = match body.variables {
        Some(Json::Null) | None => Variables::default(),
        Some(v) => Variables::from_json(v),
    };
    let mut request = Request::new(query).variables(variables);
    if let Some(name) = body.operation_name.filter(|n| !n.is_empty()) {
        request = request.operation_name(name);
    }
    let op_name = request.operation_name.clone();
    let variables = request.variables.clone();
    let plan = match request.parsed_query() {
        Ok(doc) => match select_operation(doc, op_name.as_deref()) {
            Some(op) => CostPlan::of(doc, op, &variables),
            None => CostPlan::default(),
        },
        Err(e) => {
            // A syntax error never reaches the engine, nor the bucket.
            let status = state.bucket_status(shop, caller.client_id.as_deref());
            return Executed {
                body: shape(vec![e], None, &CostPlan::default(), &Outcome::default(), status),
                outcome: Outcome::default(),
                operations: Vec::new(),
                requested: 0,
            };
        }
    };
    let operations = plan.root_fields.clone();
    state.count(shop, |c| {
        for op in &operations {
            *c.operations.entry(op.clone()).or_default() += 1;
        }
    });
    let requested = plan.requested;
    let rc = Arc::new(ReqCtx {
        state: state.clone(),
        shop: shop.to_string(),
        scopes: caller.scopes,
        client_id: caller.client_id,
        deliverer: deliverer.clone(),
        plan,
        outcome: Mutex::new(Outcome::default()),
    });
    let resp = schemas.get(version).execute(request.data(rc.clone())).await;
    let outcome = rc.outcome().clone();
    let status = outcome
        .status
        .unwrap_or_else(|| state.bucket_status(shop, rc.app()));
    let data = outcome.executed.then_some(resp.data);
    Executed {
        body: shape(resp.errors, data, &rc.plan, &outcome, status),
        outcome,
        operations,
        requested,
    }
}

/// The response body. Serialized straight from async-graphql's ordered
/// value, so `data` keys keep the order of the query, as GraphQL requires.
#[derive(serde::Serialize)]
struct Body {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    extensions: Extensions,
}

#[derive(serde::Serialize)]
struct Extensions {
    cost: Cost,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Cost {
    requested_query_cost: u64,
    actual_query_cost: Option<u64>,
    throttle_status: ThrottleStatus,
}

fn shape(
    errors: Vec<ServerError>,
    data: Option<Value>,
    plan: &CostPlan,
    outcome: &Outcome,
    status: ThrottleStatus,
) -> Vec<u8> {
    let body = Body {
        errors: errors.into_iter().map(shopify_error).collect(),
        data,
        extensions: Extensions {
            cost: Cost {
                requested_query_cost: plan.requested,
                actual_query_cost: outcome.actual,
                throttle_status: status,
            },
        },
    };
    serde_json::to_vec(&body).unwrap_or_else(|e| {
        format!(r#"{{"errors":[{{"message":"simulator: unserializable response: {e}"}}]}}"#).into_bytes()
    })
}

/// Rewrites async-graphql's wording of the validation errors clients are most
/// likely to hit into graphql-ruby's (Shopify's), including its error codes.
fn shopify_error(e: ServerError) -> Json {
    let mut v = serde_json::to_value(&e).unwrap_or_else(|_| json!({"message": e.message}));
    let rewritten = rewrite_unknown_field(&e.message).or_else(|| rewrite_unknown_argument(&e.message));
    if let Some((message, ext)) = rewritten {
        v["message"] = Json::String(message);
        v["extensions"] = ext;
    }
    v
}

/// The quoted parts of `…"a"…"b"…`.
fn quoted(msg: &str) -> Vec<&str> {
    msg.split('"').skip(1).step_by(2).collect()
}

fn rewrite_unknown_field(msg: &str) -> Option<(String, Json)> {
    if !msg.starts_with("Unknown field \"") {
        return None;
    }
    let q = quoted(msg);
    let (field, ty) = (q.first()?, q.get(1)?);
    Some((
        format!("Field '{field}' doesn't exist on type '{ty}'"),
        json!({"code": "undefinedField", "typeName": ty, "fieldName": field}),
    ))
}

fn rewrite_unknown_argument(msg: &str) -> Option<(String, Json)> {
    if !msg.starts_with("Unknown argument \"") || !msg.contains("\" on field \"") {
        return None;
    }
    let q = quoted(msg);
    let (arg, field) = (q.first()?, q.get(1)?);
    Some((
        format!("Field '{field}' doesn't accept argument '{arg}'"),
        json!({"code": "argumentNotAccepted", "name": field, "typeName": "Field", "argumentName": arg}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_take_shopify_wording() {
        let e = ServerError::new("Unknown field \"uri\" on type \"WebhookSubscription\".", None);
        let v = shopify_error(e);
        assert_eq!(
            v["message"],
            "Field 'uri' doesn't exist on type 'WebhookSubscription'"
        );
        assert_eq!(v["extensions"]["code"], "undefinedField");
        let e = ServerError::new(
            "Unknown argument \"uri\" on field \"webhookSubscriptions\" of type \"QueryRoot\".",
            None,
        );
        let v = shopify_error(e);
        assert_eq!(
            v["message"],
            "Field 'webhookSubscriptions' doesn't accept argument 'uri'"
        );
        let e = ServerError::new("something else", None);
        assert_eq!(shopify_error(e)["message"], "something else");
    }
}
