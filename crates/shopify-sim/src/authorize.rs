//! `GET /{shop}/admin/oauth/authorize`: the merchant's consent screen, which
//! the simulator approves at once. It answers as Shopify does after a
//! merchant clicks "Install": a redirect to the app's `redirect_uri` with
//! `code`, `hmac`, `host`, `shop`, `state` and `timestamp` (fact sheet §6).
//!
//! The `hmac` is computed here, independently of the client's verifier:
//! HMAC-SHA256 (hex) over the decoded parameters without `hmac`, sorted by
//! key and joined as `k=v` with `&`, keyed with the *oldest unrevoked*
//! secret of the app named by `client_id` — the previous one while a
//! rotation is under way (§8). The code in the callback is bound to that
//! app. No network access beyond answering the request.

use super::http::{App, json_response, status_body};
use super::state::shop_key;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::sync::Arc;

fn oauth_page_error(message: &str) -> Response {
    // Shopify shows an HTML error page; a JSON body is easier to assert on.
    json_response(
        400,
        &json!({"error": "invalid_request", "error_description": message}),
    )
}

/// Signs callback parameters the way Shopify does.
pub(crate) fn sign_callback(params: &[(String, String)], secret: &str) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "hmac").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let message = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    hex::encode(hmac_sha256(secret, message.as_bytes()))
}

/// HMAC-SHA256 of `message` keyed with an app secret: what Shopify signs
/// OAuth callbacks (hex) and webhook deliveries (base64) with.
pub(crate) fn hmac_sha256(secret: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `GET /{shop}/admin/oauth/authorize?client_id&scope&redirect_uri&state`.
pub(crate) async fn authorize(
    State(app): State<Arc<App>>,
    Path(shop): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let shop = shop_key(&shop);
    if !app.state.shop_exists(&shop) {
        return json_response(404, &status_body(404));
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let (client_id, signing_secret) = {
        let g = app.state.lock();
        if g.apps.is_empty() {
            return oauth_page_error("no app is configured in the simulator");
        }
        match get("client_id").as_deref().and_then(|id| g.app(id)) {
            Some(a) => (a.client_id.clone(), a.signing_secret().to_owned()),
            None => return oauth_page_error("The client_id is not valid"),
        }
    };
    let Some(redirect) = get("redirect_uri").and_then(|r| url::Url::parse(&r).ok()) else {
        return oauth_page_error("The redirect_uri is missing or not an absolute URL");
    };
    if !matches!(redirect.scheme(), "http" | "https") {
        return oauth_page_error("The redirect_uri must be http(s)");
    }
    let scopes: Vec<String> = get("scope")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let Some(code) = app
        .state
        .issue_code(&shop, Some(&client_id), (!scopes.is_empty()).then_some(scopes))
    else {
        return json_response(404, &status_body(404));
    };
    let name = shop.split('.').next().unwrap_or(&shop);
    let host = base64::engine::general_purpose::STANDARD.encode(format!("admin.shopify.com/store/{name}"));
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut callback = vec![
        ("code".to_string(), code),
        ("host".to_string(), host),
        ("shop".to_string(), shop.clone()),
        ("timestamp".to_string(), timestamp.to_string()),
    ];
    if let Some(state) = get("state") {
        callback.push(("state".to_string(), state));
    }
    let hmac = sign_callback(&callback, &signing_secret);
    let mut location = redirect;
    {
        let mut q = location.query_pairs_mut();
        for (k, v) in &callback {
            q.append_pair(k, v);
        }
        q.append_pair("hmac", &hmac);
    }
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location.as_str()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_documented_vector() {
        // shopify-api.md §6: secret `hush`.
        let params = [
            ("code", "0907a61c0c8d55e99db179b68161bc00"),
            ("shop", "some-shop.myshopify.com"),
            ("state", "0.6784241404160823"),
            ("timestamp", "1337178173"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(
            sign_callback(&params, "hush"),
            "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
        );
    }
}
