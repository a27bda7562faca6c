//! `--allowed-shops`: which shop domains the operator may send a token to
//! (the old app's `allowable_sites`). Used by the controller before any
//! Shopify call and by the OAuth endpoints before any redirect. Pure.

/// Whether `domain` matches one of `patterns` (`*` matches any run of
/// characters, case-insensitively); an empty list allows every shop.
pub fn shop_allowed(patterns: &[String], domain: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    patterns.is_empty()
        || patterns
            .iter()
            .any(|p| glob(p.trim().as_bytes(), domain.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::shop_allowed;

    #[test]
    fn allow_list_globs() {
        let list = vec![
            "ps-*.myshopify.com".to_string(),
            "exact.myshopify.com".to_string(),
        ];
        assert!(shop_allowed(&[], "anything.myshopify.com"));
        assert!(shop_allowed(&list, "ps-direct-fulfilment-online.myshopify.com"));
        assert!(shop_allowed(&list, "exact.myshopify.com"));
        assert!(!shop_allowed(&list, "exact.myshopify.com.evil.com"));
        assert!(!shop_allowed(&list, "evil.myshopify.com"));
        assert!(!shop_allowed(&list, "ps-.evil.com"));
    }
}
