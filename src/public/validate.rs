//! The shapes of every value the public endpoints take from a request,
//! checked before the value reaches the apiserver, Shopify or a log line.
//! Pure.
//!
//! Why shapes and not just "non-empty": a path segment becomes part of an
//! apiserver URL (`Api::namespaced(…, ns).get(name)`), so `../../kube-system`
//! or `x/status` would address another resource with the operator's own
//! credentials; a query value becomes part of a Shopify request or a
//! Lease name. Each rule below is the narrowest one the legitimate sender
//! (Kubernetes' naming rules, Shopify, our own `state`) can produce, with a
//! length bound so that no value costs more than a few hundred bytes.

use shopify_admin::is_valid_shop_domain;

/// Longest raw query string an OAuth request may carry. Shopify's callback
/// (`code`, `hmac`, `host`, `shop`, `state`, `timestamp`) is about 400
/// bytes; 4 KiB leaves room for parameters Shopify adds later.
pub(crate) const MAX_QUERY_LEN: usize = 4096;

/// Longest `code` accepted. Shopify's codes (and the simulator's) are 32
/// hex digits; Shopify documents no length, so the bound is generous.
const MAX_CODE_LEN: usize = 256;

/// Longest `timestamp`: Unix seconds have 10 digits until 2286; 12 is
/// still far from overflowing a `u64`.
const MAX_TIMESTAMP_LEN: usize = 12;

/// A DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63
/// characters): what Kubernetes accepts as a namespace name.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 subdomain (dot-separated labels, at most 253 characters):
/// what Kubernetes accepts as the name of a custom resource such as a
/// ShopifyApp. Excludes `.`, `..` and anything with `/`, so a name can
/// never address another path or a subresource.
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// A shop domain as Shopify issues them (`{name}.myshopify.com`), with the
/// name a single DNS label (at most 63 characters).
pub(crate) fn is_shop(s: &str) -> bool {
    is_valid_shop_domain(s) && s.len() - ".myshopify.com".len() <= 63
}

/// An OAuth `hmac`: hex HMAC-SHA256, 64 lower-case hex digits (Shopify's
/// encoding).
pub(crate) fn is_hmac_hex(s: &str) -> bool {
    s.len() == 64 && is_lower_hex(s)
}

/// Lower-case hex digits only.
pub(crate) fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// An OAuth `timestamp`: decimal Unix seconds.
pub(crate) fn is_timestamp(s: &str) -> bool {
    (1..=MAX_TIMESTAMP_LEN).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_digit())
}

/// An OAuth authorization `code`: Shopify's are 32 hex digits, but only
/// "an opaque string" is documented, so any URL-unreserved characters
/// (`A-Za-z0-9-._~`) up to [`MAX_CODE_LEN`] pass. It is only ever sent
/// back to Shopify's token endpoint (in a JSON body).
pub(crate) fn is_code(s: &str) -> bool {
    (1..=MAX_CODE_LEN).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'))
}

/// A webhook `X-Shopify-Hmac-Sha256`: standard base64 of 32 bytes (43
/// characters and one `=`).
pub(crate) fn is_webhook_hmac(s: &str) -> bool {
    s.len() == 44
        && s.ends_with('=')
        && s[..43]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// A query string's parameters, decoded; the parameters an endpoint uses
/// must each appear at most once.
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

/// Which parameter is missing or malformed (named in the 400 answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid(pub &'static str);

impl Params {
    /// Decodes `raw`; refused (`query`) when longer than [`MAX_QUERY_LEN`].
    pub(crate) fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.len() > MAX_QUERY_LEN {
            return Err(Invalid("query"));
        }
        let pairs = form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok(Params { pairs })
    }

    /// The value of `key`, if it appears once; a repeated key is refused:
    /// two values would let the signature check and the use disagree on
    /// which one counts.
    pub(crate) fn one(&self, key: &'static str) -> Result<Option<&str>, Invalid> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(Invalid(key));
        }
        Ok(first)
    }

    /// The value of `key`: present once and `valid`.
    pub(crate) fn required(&self, key: &'static str, valid: fn(&str) -> bool) -> Result<&str, Invalid> {
        match self.one(key)? {
            Some(v) if valid(v) => Ok(v),
            _ => Err(Invalid(key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_dns_labels() {
        for ok in ["oms", "a", "kube-system", "a1-b2", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a.b",
            "..",
            "../../kube-system",
            "a/b",
            "a%2fb",
            "a\0",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_dns1123_label(bad), "{bad:?}");
        }
    }

    #[test]
    fn app_names_are_dns_subdomains() {
        for ok in ["x", "oms-staging", "a.b.c", &format!("{}.b", "a".repeat(63))] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        let long = vec!["a".repeat(63); 4].join("."); // 255 characters
        for bad in [
            "",
            ".",
            "..",
            "a..b",
            ".a",
            "a.",
            "x/status",
            "X",
            "a_b",
            long.as_str(),
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad:?}");
        }
    }

    #[test]
    fn shops_are_myshopify_domains_with_one_short_label() {
        assert!(is_shop("ps-direct-fulfilment-offline.myshopify.com"));
        assert!(is_shop(&format!("{}.myshopify.com", "a".repeat(63))));
        assert!(!is_shop(&format!("{}.myshopify.com", "a".repeat(64))));
        for bad in [
            "",
            ".myshopify.com",
            "a.b.myshopify.com",
            "evil.example.com",
            "a.myshopify.com.evil",
        ] {
            assert!(!is_shop(bad), "{bad:?}");
        }
    }

    #[test]
    fn callback_parameters_have_shopifys_shapes() {
        assert!(is_hmac_hex(
            "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
        ));
        assert!(!is_hmac_hex(
            "700E2DADB827FCC8609E9D5CE208B2E9CDAAB9DF07390D2CBCA10D7C328FC4BF"
        ));
        assert!(!is_hmac_hex("700e"));
        assert!(is_timestamp("1337178173"));
        for bad in ["", "-1", "1e9", "13371781730000", " 1"] {
            assert!(!is_timestamp(bad), "{bad:?}");
        }
        assert!(is_code("0907a61c0c8d55e99db179b68161bc00"));
        for bad in ["", "a b", "a&b", "a\0", &"a".repeat(257)] {
            assert!(!is_code(bad), "{bad:?}");
        }
        assert!(is_webhook_hmac("XWmrwMey6OsLMeiZKwP4FppHH3cmAiiJJAweH5Jo4bM="));
        assert!(!is_webhook_hmac("XWmrwMey6OsLMeiZKwP4FppHH3cmAiiJJAweH5Jo4bM"));
        assert!(!is_webhook_hmac("XWmrwMey6OsLMeiZKwP4FppHH3cmAiiJJAweH5Jo4b=="));
    }

    #[test]
    fn a_used_parameter_appears_once() {
        let p = Params::parse("shop=a.myshopify.com&x=1&x=2&code=").unwrap();
        assert_eq!(p.one("shop"), Ok(Some("a.myshopify.com")));
        assert_eq!(p.one("x"), Err(Invalid("x")));
        assert_eq!(p.one("missing"), Ok(None));
        assert_eq!(p.required("code", is_code), Err(Invalid("code")));
        assert_eq!(p.required("shop", is_shop), Ok("a.myshopify.com"));
        assert!(Params::parse(&"a".repeat(MAX_QUERY_LEN + 1)).is_err());
    }
}
