//! What the simulator's HTTP tests share: the two shops' names and tokens,
//! a raw GraphQL POST that keeps the headers we look at, userErrors, and
//! the OAuth requests.
#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use shopify_sim::Sim;

pub const SHOP: &str = "alpha.myshopify.com";
pub const OTHER: &str = "beta.myshopify.com";
pub const TOKEN: &str = "shpat_test_alpha";
pub const OTHER_TOKEN: &str = "shpat_test_beta";

/// A raw response: status, `X-Shopify-*` headers we look at, JSON body.
pub struct Resp {
    pub status: StatusCode,
    pub version: Option<String>,
    pub deprecated: Option<String>,
    pub retry_after: Option<String>,
    pub body: Value,
}

/// POSTs `body` to `shop`'s GraphQL endpoint at `version`, with `token` if any.
pub async fn post_graphql(
    http: &reqwest::Client,
    sim: &Sim,
    shop: &str,
    version: &str,
    token: Option<&str>,
    body: Value,
) -> Resp {
    let mut req = http.post(sim.graphql_url(shop, version)).json(&body);
    if let Some(t) = token {
        req = req.header("X-Shopify-Access-Token", t);
    }
    let r = req.send().await.expect("request sent");
    let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    let (version, deprecated, retry_after) = (
        header("x-shopify-api-version"),
        header("x-shopify-api-deprecated-reason"),
        header("retry-after"),
    );
    let status = r.status();
    let body = r.json().await.expect("JSON body");
    Resp {
        status,
        version,
        deprecated,
        retry_after,
        body,
    }
}

/// A query or mutation as the first shop.
pub async fn gql(sim: &Sim, version: &str, query: &str, variables: Value) -> Resp {
    gql_as(sim, SHOP, TOKEN, version, query, variables).await
}

/// A query or mutation as `shop` with `token`.
pub async fn gql_as(
    sim: &Sim,
    shop: &str,
    token: &str,
    version: &str,
    query: &str,
    variables: Value,
) -> Resp {
    let http = reqwest::Client::new();
    post_graphql(
        &http,
        sim,
        shop,
        version,
        Some(token),
        json!({"query": query, "variables": variables}),
    )
    .await
}

/// `(field, message)` of each user error under `data[alias]`.
pub fn user_errors(body: &Value, alias: &str) -> Vec<(Value, String)> {
    body["data"][alias]["userErrors"]
        .as_array()
        .unwrap_or_else(|| panic!("no userErrors in {body}"))
        .iter()
        .map(|e| (e["field"].clone(), e["message"].as_str().unwrap().to_string()))
        .collect()
}

/// POSTs `params` to `shop`'s token endpoint, as JSON or as a form (values
/// that are not strings sent as their JSON text); status and JSON body.
pub async fn token_request(
    http: &reqwest::Client,
    sim: &Sim,
    shop: &str,
    params: Value,
    form: bool,
) -> (StatusCode, Value) {
    let url = format!("http://{}/{shop}/admin/oauth/access_token", sim.addr());
    let req = if form {
        let pairs: Vec<(String, String)> = params
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect();
        http.post(url).form(&pairs)
    } else {
        http.post(url).json(&params)
    };
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

/// The authorize (consent) page of `shop` for `client_id`, asking for
/// `read_orders` with state `nonce-1`.
pub fn authorize_url(sim: &Sim, shop: &str, client_id: &str, redirect: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("scope", "read_orders")
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "nonce-1")
        .finish();
    format!("http://{}/{shop}/admin/oauth/authorize?{q}", sim.addr())
}
