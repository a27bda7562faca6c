//! `shopify-operator webhook trigger`: one delivery exactly as Shopify
//! sends it — sample (or given) JSON body, Shopify's headers, the body's
//! HMAC with the app's client secret — to the address the shop's
//! subscription for the topic has now, over HTTPS with normal certificate
//! checks. For the cutover runbook's "verify delivery works" steps. Reads
//! the ShopifyShop and its app Secret through the apiserver and sends one
//! HTTPS request; the secret is never printed. Header facts and sources:
//! `docs/src/shopify/webhook-deliveries.md`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::{Api, Client};
use shopify_admin::{ClientSecret, KNOWN_TOPICS, error_chain, is_compliance_topic, sign_webhook};

use crate::crd::ShopifyShop;
use crate::token_store;

/// The delivery was answered 2xx.
pub const EXIT_OK: u8 = 0;
/// Nothing was sent: the shop, topic, address, secret or payload is wrong.
pub const EXIT_NOT_SENT: u8 = 1;
/// The endpoint refused the signature (401 or 403).
pub const EXIT_SIGNATURE_REFUSED: u8 = 3;
/// The endpoint could not be reached (DNS, connection, timeout).
pub const EXIT_UNREACHABLE: u8 = 4;
/// TLS failed (certificate not trusted, wrong name, expired…).
pub const EXIT_TLS: u8 = 5;
/// Another answer than 2xx, 401 or 403.
pub const EXIT_REFUSED: u8 = 6;

/// `--help` text for the exit codes.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 answered 2xx; 1 nothing sent (shop, topic, subscription, app Secret or payload); 2 usage; 3 the endpoint refused the signature (401/403); 4 not reachable; 5 TLS failed; 6 another answer";

/// Arguments of `webhook trigger`.
#[derive(clap::Args, Debug)]
pub struct TriggerArgs {
    /// Namespace of the ShopifyShop.
    #[arg(long, short = 'n', env = "TRIGGER_NAMESPACE")]
    pub namespace: String,
    /// Name of the ShopifyShop.
    #[arg(long)]
    pub shop: String,
    /// REST topic, e.g. `orders/create`.
    #[arg(long)]
    pub topic: String,
    /// Send here instead of the address in the shop's status.
    #[arg(long)]
    pub address: Option<url::Url>,
    /// JSON body to send instead of the shipped sample for the topic.
    #[arg(long)]
    pub payload: Option<PathBuf>,
    /// `X-Shopify-API-Version`; default the shop's `adminApiVersion`.
    #[arg(long)]
    pub api_version: Option<String>,
    /// PEM CA certificate(s) to trust besides the public roots (a private CA).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Sign with this ShopifyApp's client secret (in the shop's namespace)
    /// instead of the shop's app: while a shop moves between apps the OMS
    /// receives deliveries signed by either, and should accept both.
    #[arg(long)]
    pub app: Option<String>,
    /// How long to wait for the answer (Shopify waits 5 s).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// What to send, resolved from the shop and the arguments (no secret).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Where.
    pub address: url::Url,
    /// `X-Shopify-Topic`.
    pub topic: String,
    /// `X-Shopify-Shop-Domain`.
    pub domain: String,
    /// `X-Shopify-API-Version`.
    pub api_version: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// A warning to print (a topic without a shipped sample).
    pub warning: Option<String>,
}

/// The shipped sample body of `topic`, if there is one.
pub fn sample(topic: &str) -> Option<&'static str> {
    Some(match topic {
        "orders/create" => include_str!("samples/orders_create.json"),
        "orders/updated" => include_str!("samples/orders_updated.json"),
        "orders/cancelled" => include_str!("samples/orders_cancelled.json"),
        "orders/fulfilled" => include_str!("samples/orders_fulfilled.json"),
        "customers/update" => include_str!("samples/customers_update.json"),
        "products/update" => include_str!("samples/products_update.json"),
        "app/uninstalled" => include_str!("samples/app_uninstalled.json"),
        _ => return None,
    })
}

/// Resolves the delivery from the shop as stored (pure but for reading
/// `--payload`). Errors say what is wrong; nothing is sent then.
pub fn resolve(shop: &ShopifyShop, args: &TriggerArgs) -> Result<Delivery, String> {
    let topic = args.topic.trim();
    if is_compliance_topic(topic) {
        return Err(format!(
            "{topic} is a mandatory compliance topic: Shopify delivers it to the app's configured endpoint, not to a subscription"
        ));
    }
    if !KNOWN_TOPICS.contains(&topic) {
        return Err(format!(
            "{topic} is not a Shopify webhook topic (REST form, e.g. orders/create)"
        ));
    }
    let address = match &args.address {
        Some(a) => a.clone(),
        None => {
            let status = shop.status.as_ref();
            let subscribed = status
                .into_iter()
                .flat_map(|s| &s.webhooks)
                .find(|w| w.topic == topic)
                .ok_or_else(|| {
                    format!(
                        "shop {} has no subscription for {topic} in its status; pass --address to send anyway",
                        args.shop
                    )
                })?;
            url::Url::parse(&subscribed.address).map_err(|e| {
                format!(
                    "the subscription's address {:?} is not a URL: {e}",
                    subscribed.address
                )
            })?
        }
    };
    if address.scheme() != "https" {
        return Err(format!(
            "{address} is not https: Shopify delivers over HTTPS only"
        ));
    }
    let (body, warning) = match &args.payload {
        Some(path) => {
            let text = std::fs::read(path).map_err(|e| format!("--payload {}: {e}", path.display()))?;
            serde_json::from_slice::<serde_json::Value>(&text)
                .map_err(|e| format!("--payload {} is not JSON: {e}", path.display()))?;
            (text, None)
        }
        None => match sample(topic) {
            Some(s) => (s.as_bytes().to_vec(), None),
            None => (
                b"{}".to_vec(),
                Some(format!(
                    "no sample payload for {topic}: sending {{}} (use --payload for a real one)"
                )),
            ),
        },
    };
    Ok(Delivery {
        address,
        topic: topic.to_string(),
        domain: shop.spec.domain.clone(),
        api_version: args
            .api_version
            .clone()
            .unwrap_or_else(|| shop.spec.admin_api_version_or_default().to_string()),
        body,
        warning,
    })
}

/// The headers Shopify sends with a delivery, the HMAC over the raw body
/// included. `ids`: the webhook id and the event id. Pure.
pub fn headers(
    d: &Delivery,
    secret: &ClientSecret,
    ids: (&str, &str),
    triggered_at: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".into()),
        ("X-Shopify-Topic", d.topic.clone()),
        ("X-Shopify-Shop-Domain", d.domain.clone()),
        ("X-Shopify-API-Version", d.api_version.clone()),
        ("X-Shopify-Webhook-Id", ids.0.into()),
        ("X-Shopify-Event-Id", ids.1.into()),
        ("X-Shopify-Triggered-At", triggered_at.into()),
        ("X-Shopify-Hmac-Sha256", sign_webhook(&d.body, secret)),
    ]
}

/// How a send ended, as an exit code and a line for people.
fn judge(result: Result<(u16, String), reqwest::Error>, address: &url::Url) -> (u8, String) {
    match result {
        Ok((code, _)) if (200..300).contains(&code) => (EXIT_OK, format!("{address} answered {code}")),
        Ok((code @ (401 | 403), _)) => (
            EXIT_SIGNATURE_REFUSED,
            format!(
                "{address} refused the signature ({code}): the endpoint verifies with another client secret than spec.app's Secret"
            ),
        ),
        Ok((code, _)) => (EXIT_REFUSED, format!("{address} answered {code}")),
        Err(e) if is_tls(&e) => (
            EXIT_TLS,
            format!("TLS with {address} failed: {}", error_chain(&e)),
        ),
        Err(e) => (
            EXIT_UNREACHABLE,
            format!("{address} is not reachable: {}", error_chain(&e)),
        ),
    }
}

/// Whether a TLS failure is anywhere in the error's causes (rustls errors
/// sit inside an `io::Error`, whose `source()` skips them).
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && is_tls(inner)
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// Runs `webhook trigger`; prints what happened; returns the exit code.
pub async fn trigger(args: TriggerArgs) -> u8 {
    match run(&args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}; nothing was sent");
            EXIT_NOT_SENT
        }
    }
}

async fn run(args: &TriggerArgs) -> Result<u8, String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("Kubernetes client: {e}"))?;
    let api: Api<ShopifyShop> = Api::namespaced(client.clone(), &args.namespace);
    let shop = api
        .get_opt(&args.shop)
        .await
        .map_err(|e| format!("reading ShopifyShop {}/{}: {e}", args.namespace, args.shop))?
        .ok_or_else(|| format!("ShopifyShop {}/{} not found", args.namespace, args.shop))?;
    let delivery = resolve(&shop, args)?;
    let app = match &args.app {
        Some(name) => token_store::named_app_credentials(&client, &args.namespace, name)
            .await
            .map_err(|e| format!("reading ShopifyApp {name}'s Secret: {e}"))?
            .ok_or_else(|| {
                format!(
                    "ShopifyApp {}/{name} or its Secret with client-id and client-secret is missing: the delivery could not be signed",
                    args.namespace
                )
            })?,
        None => token_store::shop_app_credentials(&client, &shop)
            .await
            .map_err(|e| format!("reading the app Secret: {e}"))?
            .ok_or_else(|| {
                format!(
                    "shop {} has no spec.app Secret with client-id and client-secret: the delivery could not be signed",
                    args.shop
                )
            })?,
    };
    let mut http = reqwest::Client::builder()
        .timeout(args.timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--ca-file {}: {e}", path.display()))?
        {
            http = http.add_root_certificate(cert);
        }
    }
    let http = http.build().map_err(|e| format!("HTTP client: {e}"))?;
    if let Some(w) = &delivery.warning {
        eprintln!("warning: {w}");
    }
    let (webhook_id, event_id) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let triggered_at = jiff::Timestamp::now().to_string();
    let mut request = http.post(delivery.address.clone()).body(delivery.body.clone());
    for (k, v) in headers(&delivery, &app.secret, (&webhook_id, &event_id), &triggered_at) {
        request = request.header(k, v);
    }
    println!(
        "POST {} ({} bytes, topic {}, shop {}, webhook id {webhook_id})",
        delivery.address,
        delivery.body.len(),
        delivery.topic,
        delivery.domain
    );
    let started = Instant::now();
    let result = async {
        let resp = request.send().await?;
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((code, text))
    }
    .await;
    let took = started.elapsed();
    if let Ok((_, body)) = &result {
        let head: String = body.chars().take(200).collect();
        println!("answer after {} ms: {head:?}", took.as_millis());
    }
    let (code, line) = judge(result, &delivery.address);
    if code == EXIT_OK {
        println!("{line}");
    } else {
        eprintln!("error: {line}");
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> ShopifyShop {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "shopify-operator.dev/v1alpha1",
            "kind": "ShopifyShop",
            "metadata": {"name": "online", "namespace": "oms"},
            "spec": {"domain": "ps-direct-fulfilment-online.myshopify.com", "token": {"secretRef": {"name": "t"}}},
            "status": {"webhooks": [
                {"topic": "orders/create", "address": "https://oms.popsockets.com/webhooks/orders_create", "state": "InSync"}
            ]},
        }))
        .unwrap()
    }

    fn args(topic: &str) -> TriggerArgs {
        TriggerArgs {
            namespace: "oms".into(),
            shop: "online".into(),
            topic: topic.into(),
            address: None,
            payload: None,
            api_version: None,
            ca_file: None,
            app: None,
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn resolves_the_subscriptions_address_and_the_sample() {
        let d = resolve(&shop(), &args("orders/create")).unwrap();
        assert_eq!(
            d.address.as_str(),
            "https://oms.popsockets.com/webhooks/orders_create"
        );
        assert_eq!(d.api_version, "2025-07");
        assert_eq!(d.body, sample("orders/create").unwrap().as_bytes());
        assert_eq!(d.warning, None);
        // Every shipped sample is JSON.
        for t in [
            "orders/create",
            "orders/updated",
            "orders/cancelled",
            "orders/fulfilled",
            "customers/update",
            "products/update",
            "app/uninstalled",
        ] {
            serde_json::from_str::<serde_json::Value>(sample(t).unwrap()).unwrap();
        }
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        let e = resolve(&shop(), &args("orders/cancelled")).unwrap_err();
        assert!(e.contains("no subscription for orders/cancelled"), "{e}");
        assert!(
            resolve(&shop(), &args("orders/exploded"))
                .unwrap_err()
                .contains("not a Shopify webhook topic")
        );
        assert!(
            resolve(&shop(), &args("shop/redact"))
                .unwrap_err()
                .contains("compliance")
        );
        let mut a = args("refunds/create");
        a.address = Some("http://oms.popsockets.com/x".parse().unwrap());
        assert!(resolve(&shop(), &a).unwrap_err().contains("not https"));
        // --address with a topic that has no sample: {} and a warning.
        a.address = Some("https://oms.popsockets.com/x".parse().unwrap());
        let d = resolve(&shop(), &a).unwrap();
        assert_eq!(d.body, b"{}");
        assert!(d.warning.unwrap().contains("no sample"));
    }

    #[test]
    fn headers_carry_the_hmac_of_the_raw_body() {
        let d = resolve(&shop(), &args("orders/create")).unwrap();
        let secret = ClientSecret::new("hush".into());
        let h = headers(&d, &secret, ("w-1", "e-1"), "2026-12-02T12:00:00Z");
        let get = |k: &str| h.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str()).unwrap();
        assert_eq!(get("X-Shopify-Topic"), "orders/create");
        assert_eq!(
            get("X-Shopify-Shop-Domain"),
            "ps-direct-fulfilment-online.myshopify.com"
        );
        assert_eq!(get("X-Shopify-Webhook-Id"), "w-1");
        assert_eq!(get("X-Shopify-Event-Id"), "e-1");
        let hmac = get("X-Shopify-Hmac-Sha256");
        assert!(shopify_admin::verify_webhook(&d.body, hmac, &secret, None).is_some());
        assert!(!h.iter().any(|(_, v)| v.contains("hush")));
    }
}
