//! Turns the raw rows of the OMS token table into one validated entry per
//! shop, and says why each rejected row was rejected. Pure data, no network.
//!
//! A rejected row never stops the others: the OMS table grew by hand over
//! years, so a few odd rows are expected and must not block the migration of
//! the rest.

use std::collections::BTreeMap;

use shopify_admin::{AccessToken, is_valid_shop_domain};

/// Suffix of the Secret that holds a shop's token: `{name}-shopify-token`.
pub const SECRET_SUFFIX: &str = "-shopify-token";

/// One row as read from the database: both columns may be NULL or hold any
/// bytes.
#[derive(Debug, Clone)]
pub struct RawRow {
    /// The shop column.
    pub shop: Option<Vec<u8>>,
    /// The token column.
    pub token: Option<AccessToken>,
}

/// A shop that will be imported.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopRow {
    /// Normalised `*.myshopify.com` domain.
    pub domain: String,
    /// Name of the ShopifyShop (the domain's subdomain).
    pub name: String,
    /// The shop's offline access token.
    pub token: AccessToken,
}

impl ShopRow {
    /// Name of the token Secret.
    pub fn secret_name(&self) -> String {
        format!("{}{SECRET_SUFFIX}", self.name)
    }
}

/// A row (or a shop's rows) left out, with the reason. Never holds a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The shop as it can best be shown: normalised if possible, else the
    /// raw value made printable.
    pub shop: String,
    /// Why it was left out.
    pub reason: String,
}

/// Normalises a shop column value: trims, lowercases, strips an
/// `http(s)://` scheme and anything from the first `/` (a trailing slash or
/// an admin path pasted from the browser).
pub fn normalise_shop(raw: &str) -> String {
    let s = raw.trim().to_ascii_lowercase();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(&s);
    let s = s.split('/').next().unwrap_or_default();
    s.trim().to_string()
}

/// The Kubernetes name for a valid shop domain: its subdomain, if that is a
/// DNS label short enough to leave room for the Secret's suffix.
pub fn object_name(domain: &str) -> Option<String> {
    let name = domain.strip_suffix(".myshopify.com")?;
    let max = 63usize.min(253 - SECRET_SUFFIX.len());
    let label = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    label.then(|| name.to_string())
}

/// Splits `rows` into shops to import (sorted by name) and rejections (in
/// row order). Rows of one shop with the same token count once; rows of one
/// shop with different tokens reject that shop, since nothing says which
/// token is the live one.
pub fn validate(rows: Vec<RawRow>) -> (Vec<ShopRow>, Vec<Rejected>) {
    let mut rejected = Vec::new();
    let mut by_name: BTreeMap<String, Vec<ShopRow>> = BTreeMap::new();
    for (i, row) in rows.into_iter().enumerate() {
        let n = i + 1;
        let raw_shop = row
            .shop
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let domain = normalise_shop(&raw_shop);
        let shown = if domain.is_empty() {
            format!("(row {n})")
        } else {
            printable(&domain)
        };
        let reject = |reason: &str| Rejected {
            shop: shown.clone(),
            reason: reason.to_string(),
        };
        if domain.is_empty() {
            rejected.push(reject("empty shop"));
            continue;
        }
        if !is_valid_shop_domain(&domain) {
            rejected.push(reject("not a *.myshopify.com domain"));
            continue;
        }
        let Some(name) = object_name(&domain) else {
            rejected.push(reject(
                "subdomain is not a valid Kubernetes name (DNS label, at most 63 characters)",
            ));
            continue;
        };
        let token = row
            .token
            .map(|t| AccessToken::new(t.expose().trim().to_string()))
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            rejected.push(reject("empty token"));
            continue;
        };
        if token
            .expose()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            rejected.push(reject("token contains whitespace or control characters"));
            continue;
        }
        by_name
            .entry(name.clone())
            .or_default()
            .push(ShopRow { domain, name, token });
    }
    let mut shops = Vec::new();
    for (_, mut group) in by_name {
        let first = group.remove(0);
        if group.iter().any(|r| r.token != first.token) {
            rejected.push(Rejected {
                shop: first.domain.clone(),
                reason: format!("duplicate shop: {} rows with different tokens", group.len() + 1),
            });
        } else {
            shops.push(first);
        }
    }
    (shops, rejected)
}

/// A shop column value fit for a terminal: control characters escaped,
/// cut at 100 characters.
fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(100).flat_map(char::escape_debug).collect();
    if s.chars().count() > 100 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(shop: Option<&str>, token: Option<&str>) -> RawRow {
        RawRow {
            shop: shop.map(|s| s.as_bytes().to_vec()),
            token: token.map(AccessToken::from),
        }
    }

    #[test]
    fn normalises_scheme_case_whitespace_and_path() {
        for (raw, want) in [
            ("foo.myshopify.com", "foo.myshopify.com"),
            ("  Foo.MyShopify.com \n", "foo.myshopify.com"),
            ("https://foo.myshopify.com/", "foo.myshopify.com"),
            ("HTTP://foo.myshopify.com/admin/orders?x=1", "foo.myshopify.com"),
            ("foo.myshopify.com///", "foo.myshopify.com"),
            ("", ""),
            ("https://", ""),
        ] {
            assert_eq!(normalise_shop(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn object_names_are_dns_labels() {
        assert_eq!(
            object_name("ps-direct-1.myshopify.com").as_deref(),
            Some("ps-direct-1")
        );
        assert_eq!(object_name("foo-.myshopify.com"), None);
        assert_eq!(object_name(&format!("{}.myshopify.com", "a".repeat(64))), None);
        assert_eq!(
            object_name(&format!("{}.myshopify.com", "a".repeat(63))).map(|n| n.len()),
            Some(63)
        );
        assert_eq!(object_name("foo.example.com"), None);
    }

    #[test]
    fn good_rows_become_sorted_shops() {
        let (shops, rejected) = validate(vec![
            row(Some("https://Zeta.myshopify.com/"), Some(" shpat_z ")),
            row(Some("alpha.myshopify.com"), Some("shpat_a")),
        ]);
        assert!(rejected.is_empty(), "{rejected:?}");
        let got: Vec<_> = shops
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.domain.as_str(),
                    s.token.expose(),
                    s.secret_name(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "alpha",
                    "alpha.myshopify.com",
                    "shpat_a",
                    "alpha-shopify-token".to_string()
                ),
                (
                    "zeta",
                    "zeta.myshopify.com",
                    "shpat_z",
                    "zeta-shopify-token".to_string()
                ),
            ]
        );
    }

    #[test]
    fn bad_rows_are_rejected_with_a_reason_and_no_token() {
        let (shops, rejected) = validate(vec![
            row(Some("good.myshopify.com"), Some("shpat_good")),
            row(Some("nulltoken.myshopify.com"), None),
            row(Some("blank.myshopify.com"), Some("   ")),
            row(Some("shop.example.com"), Some("shpat_other_domain")),
            row(None, Some("shpat_no_shop")),
            row(Some("dup.myshopify.com"), Some("shpat_dup_1")),
            row(Some("https://dup.myshopify.com/"), Some("shpat_dup_2")),
            row(Some("same.myshopify.com"), Some("shpat_same")),
            row(Some("SAME.myshopify.com"), Some("shpat_same")),
            row(Some("space.myshopify.com"), Some("shpat_a b")),
        ]);
        let names: Vec<_> = shops.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["good", "same"]);
        let reasons: Vec<_> = rejected
            .iter()
            .map(|r| (r.shop.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("nulltoken.myshopify.com", "empty token"),
                ("blank.myshopify.com", "empty token"),
                ("shop.example.com", "not a *.myshopify.com domain"),
                ("(row 5)", "empty shop"),
                (
                    "space.myshopify.com",
                    "token contains whitespace or control characters"
                ),
                (
                    "dup.myshopify.com",
                    "duplicate shop: 2 rows with different tokens"
                ),
            ]
        );
        let text = format!("{rejected:?}{shops:?}");
        assert!(!text.contains("shpat_"), "a token leaked into Debug: {text}");
    }

    #[test]
    fn a_duplicate_with_a_bad_row_keeps_the_good_one() {
        let (shops, rejected) = validate(vec![
            row(Some("foo.myshopify.com"), None),
            row(Some("foo.myshopify.com"), Some("shpat_foo")),
        ]);
        assert_eq!(shops.len(), 1);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].reason, "empty token");
    }

    #[test]
    fn odd_shop_values_are_shown_printable() {
        let (_, rejected) = validate(vec![row(Some("evil\u{1b}[31m.com"), Some("t"))]);
        assert_eq!(rejected[0].shop, "evil\\u{1b}[31m.com");
    }
}
