//! HMAC-SHA256 verification of OAuth callbacks (hex, over the sorted query)
//! and of webhook deliveries (base64, over the raw body).
//!
//! No network access. Comparisons are constant-time (`Mac::verify_slice`).
//! Both verifiers accept the current and, during a rotation, the previous
//! client secret, and say which one matched so the caller can tell when the
//! previous secret is no longer in use.
//!
//! OAuth canonical form: drop `hmac` and `signature`, sort the remaining
//! `key=value` pairs by key (stable for repeated keys), join with `&`. Shopify
//! documents this on decoded values; its JavaScript library percent-encodes
//! the values (`querystring.stringify`). The two differ only when a value
//! holds a reserved character (e.g. `=` padding in `host`), so the verifier
//! accepts a signature over either form.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::token::ClientSecret;

type HmacSha256 = Hmac<Sha256>;

/// Which secret verified a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUsed {
    /// The current client secret.
    Current,
    /// The previous (rotating-out) client secret.
    Previous,
}

fn mac(secret: &ClientSecret) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length")
}

fn verify_with(secret: &ClientSecret, messages: &[&[u8]], tag: &[u8]) -> bool {
    let mut ok = false;
    for m in messages {
        let mut h = mac(secret);
        h.update(m);
        // Evaluate every candidate: no early exit on a match.
        ok |= h.verify_slice(tag).is_ok();
    }
    ok
}

fn verify_any(
    current: &ClientSecret,
    previous: Option<&ClientSecret>,
    messages: &[&[u8]],
    tag: &[u8],
) -> Option<SecretUsed> {
    if verify_with(current, messages, tag) {
        return Some(SecretUsed::Current);
    }
    match previous {
        Some(p) if verify_with(p, messages, tag) => Some(SecretUsed::Previous),
        _ => None,
    }
}

/// Lower-case hex HMAC-SHA256 of `message`.
pub fn sign_hex(message: &[u8], secret: &ClientSecret) -> String {
    let mut h = mac(secret);
    h.update(message);
    hex::encode(h.finalize().into_bytes())
}

/// Base64 HMAC-SHA256 of `body`, as in `X-Shopify-Hmac-Sha256`.
pub fn sign_webhook(body: &[u8], secret: &ClientSecret) -> String {
    let mut h = mac(secret);
    h.update(body);
    STANDARD.encode(h.finalize().into_bytes())
}

/// Verifies a webhook delivery's `X-Shopify-Hmac-Sha256` (base64) against
/// the raw body. `None` means reject (answer 401).
pub fn verify_webhook(
    body: &[u8],
    header_b64: &str,
    current: &ClientSecret,
    previous: Option<&ClientSecret>,
) -> Option<SecretUsed> {
    let tag = STANDARD.decode(header_b64.trim()).ok()?;
    verify_any(current, previous, &[body], &tag)
}

/// Percent-encodes like Node's `querystring.escape`: everything but
/// `A-Za-z0-9-_.!~*'()`.
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical<'a>(pairs: &[(&'a str, &'a str)], escape: bool) -> String {
    let mut kept: Vec<&(&str, &str)> = pairs
        .iter()
        .filter(|(k, _)| *k != "hmac" && *k != "signature")
        .collect();
    kept.sort_by(|a, b| a.0.cmp(b.0));
    kept.iter()
        .map(|(k, v)| {
            if escape {
                format!("{}={}", js_escape(k), js_escape(v))
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The message an OAuth callback's `hmac` signs: decoded pairs without
/// `hmac`/`signature`, sorted by key, `k=v` joined with `&`.
pub fn oauth_message(pairs: &[(&str, &str)]) -> String {
    canonical(pairs, false)
}

/// Verifies decoded OAuth query pairs (including the `hmac` pair).
pub fn verify_oauth_pairs(
    pairs: &[(&str, &str)],
    current: &ClientSecret,
    previous: Option<&ClientSecret>,
) -> Option<SecretUsed> {
    let mut hmacs = pairs.iter().filter(|(k, _)| *k == "hmac");
    let (_, given) = hmacs.next()?;
    if hmacs.next().is_some() {
        return None; // two hmac parameters: ambiguous, reject
    }
    let tag = hex::decode(given.trim()).ok()?;
    let plain = canonical(pairs, false);
    let escaped = canonical(pairs, true);
    let messages: Vec<&[u8]> = if plain == escaped {
        vec![plain.as_bytes()]
    } else {
        vec![plain.as_bytes(), escaped.as_bytes()]
    };
    verify_any(current, previous, &messages, &tag)
}

/// Verifies a raw OAuth callback query string (`code=…&hmac=…&shop=…`,
/// without the leading `?`). `None` means reject.
pub fn verify_oauth_query(
    raw_query: &str,
    current: &ClientSecret,
    previous: Option<&ClientSecret>,
) -> Option<SecretUsed> {
    let owned: Vec<(String, String)> = form_urlencoded::parse(raw_query.trim_start_matches('?').as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    verify_oauth_pairs(&pairs, current, previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_QUERY: &str = "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173";
    const VECTOR_HMAC: &str = "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf";

    fn hush() -> ClientSecret {
        ClientSecret::from("hush")
    }

    #[test]
    fn shopify_documented_vector() {
        assert_eq!(sign_hex(VECTOR_QUERY.as_bytes(), &hush()), VECTOR_HMAC);
        // The callback arrives in any order, with hmac somewhere in it.
        let q = format!(
            "shop=some-shop.myshopify.com&hmac={VECTOR_HMAC}&timestamp=1337178173&state=0.6784241404160823&code=0907a61c0c8d55e99db179b68161bc00"
        );
        assert_eq!(verify_oauth_query(&q, &hush(), None), Some(SecretUsed::Current));
        assert_eq!(
            verify_oauth_query(&format!("?{q}"), &hush(), None),
            Some(SecretUsed::Current)
        );
        let upper = q.replace(VECTOR_HMAC, &VECTOR_HMAC.to_uppercase());
        assert_eq!(
            verify_oauth_query(&upper, &hush(), None),
            Some(SecretUsed::Current)
        );
    }

    #[test]
    fn oauth_rejections() {
        let q = format!("{VECTOR_QUERY}&hmac={VECTOR_HMAC}");
        assert_eq!(verify_oauth_query(&q, &ClientSecret::from("wrong"), None), None);
        assert_eq!(
            verify_oauth_query(&q.replace("1337178173", "1337178174"), &hush(), None),
            None
        );
        assert_eq!(verify_oauth_query(VECTOR_QUERY, &hush(), None), None, "no hmac");
        assert_eq!(
            verify_oauth_query(&format!("{q}&hmac={VECTOR_HMAC}"), &hush(), None),
            None,
            "two hmacs"
        );
        assert_eq!(
            verify_oauth_query(&q.replace(VECTOR_HMAC, "zz"), &hush(), None),
            None,
            "not hex"
        );
        assert_eq!(
            verify_oauth_query(&q.replace(VECTOR_HMAC, &VECTOR_HMAC[..62]), &hush(), None),
            None,
            "short"
        );
        // `signature` is ignored like `hmac`.
        assert_eq!(
            verify_oauth_query(&format!("{q}&signature=abc"), &hush(), None),
            Some(SecretUsed::Current)
        );
    }

    #[test]
    fn previous_secret_is_accepted_and_reported() {
        let q = format!("{VECTOR_QUERY}&hmac={VECTOR_HMAC}");
        let new = ClientSecret::from("new-secret");
        assert_eq!(
            verify_oauth_query(&q, &new, Some(&hush())),
            Some(SecretUsed::Previous)
        );
        assert_eq!(
            verify_oauth_query(&q, &new, Some(&ClientSecret::from("other"))),
            None
        );
        let body = br#"{"id":1}"#;
        let sig = sign_webhook(body, &hush());
        assert_eq!(
            verify_webhook(body, &sig, &new, Some(&hush())),
            Some(SecretUsed::Previous)
        );
        assert_eq!(
            verify_webhook(body, &sig, &hush(), Some(&new)),
            Some(SecretUsed::Current)
        );
        assert_eq!(verify_webhook(body, &sig, &new, None), None);
    }

    #[test]
    fn webhook_body_signatures() {
        let body = br#"{"id":820982911946154500,"email":"jon@example.com"}"#;
        let sig = sign_webhook(body, &hush());
        assert_eq!(sig.len(), 44);
        assert_eq!(
            verify_webhook(body, &sig, &hush(), None),
            Some(SecretUsed::Current)
        );
        assert_eq!(
            verify_webhook(body, &format!(" {sig}\n"), &hush(), None),
            Some(SecretUsed::Current)
        );
        assert_eq!(verify_webhook(b"{\"id\":2}", &sig, &hush(), None), None);
        assert_eq!(verify_webhook(body, "not base64!", &hush(), None), None);
        assert_eq!(verify_webhook(body, "", &hush(), None), None);
        // Base64 of the hex digest is a different (wrong) encoding.
        let hex_sig = STANDARD.encode(sign_hex(body, &hush()));
        assert_eq!(verify_webhook(body, &hex_sig, &hush(), None), None);
    }

    #[test]
    fn encoded_values_verify_in_either_canonical_form() {
        let pairs = [
            ("host", "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvcG9w=="),
            ("shop", "pop.myshopify.com"),
            ("timestamp", "1"),
        ];
        let plain = oauth_message(&pairs);
        assert_eq!(
            plain,
            "host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvcG9w==&shop=pop.myshopify.com&timestamp=1"
        );
        let escaped = canonical(&pairs, true);
        assert!(escaped.contains("%3D%3D"));
        for msg in [plain, escaped] {
            let h = sign_hex(msg.as_bytes(), &hush());
            let mut with: Vec<(&str, &str)> = pairs.to_vec();
            with.push(("hmac", &h));
            assert_eq!(
                verify_oauth_pairs(&with, &hush(), None),
                Some(SecretUsed::Current)
            );
        }
    }
}
