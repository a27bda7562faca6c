//! The OAuth `state` parameter: signed and expiring. Pure; its single use
//! across replicas is `nonce`'s.
//!
//! `state` = `{expiry}.{nonce}.{signature}`, the signature being hex
//! HMAC-SHA256 of `{shop}|{expiry}|{nonce}` with the app's client secret.
//! Signing with the client secret (rather than a per-process key) lets any
//! replica verify a state another replica issued.

use shopify_admin::ClientSecret;
use shopify_admin::constant_time_eq;
use shopify_admin::hmac::sign_hex;

/// Why a state was refused; each is answered 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// Not of our format, or signed for another shop or with another key.
    Invalid,
    /// Past its expiry.
    Expired,
    /// Already used for a callback.
    Replayed,
}

impl StateError {
    /// A message for the merchant's browser and the log.
    pub fn message(self) -> &'static str {
        match self {
            StateError::Invalid => "the OAuth state is invalid; start the installation again",
            StateError::Expired => "the OAuth state has expired; start the installation again",
            StateError::Replayed => "the OAuth state was already used; start the installation again",
        }
    }
}

fn signature(shop: &str, expiry: u64, nonce: &str, secret: &ClientSecret) -> String {
    sign_hex(format!("{shop}|{expiry}|{nonce}").as_bytes(), secret)
}

/// A new state for `shop`, valid until `expiry` (Unix seconds).
pub fn issue(shop: &str, expiry: u64, secret: &ClientSecret) -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    let nonce = hex::encode(bytes);
    let sig = signature(shop, expiry, &nonce, secret);
    format!("{expiry}.{nonce}.{sig}")
}

/// Longest `expiry` digit string a state may carry (`u64::MAX` has 20).
const MAX_EXPIRY_DIGITS: usize = 20;

/// Whether `state` has the shape [`issue`] produces —
/// `{expiry digits}.{32 lower-case hex}.{64 lower-case hex}`, so at most
/// 118 characters — checked before anything else looks at a callback.
/// Says nothing about the signature or the expiry.
pub fn is_well_formed(state: &str) -> bool {
    let mut parts = state.split('.');
    let (Some(expiry), Some(nonce), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let lower_hex = |s: &str, len: usize| s.len() == len && super::validate::is_lower_hex(s);
    (1..=MAX_EXPIRY_DIGITS).contains(&expiry.len())
        && expiry.bytes().all(|b| b.is_ascii_digit())
        && lower_hex(nonce, 32)
        && lower_hex(sig, 64)
}

/// Checks signature and expiry (not use); returns the nonce and the
/// expiry, for `nonce::take`. The previous
/// secret is accepted so that a rotation between install and callback
/// doesn't break an installation in flight.
pub fn verify<'a>(
    state: &'a str,
    shop: &str,
    now: u64,
    current: &ClientSecret,
    previous: Option<&ClientSecret>,
) -> Result<(&'a str, u64), StateError> {
    let mut parts = state.splitn(3, '.');
    let (Some(expiry), Some(nonce), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StateError::Invalid);
    };
    let expiry_n: u64 = expiry.parse().map_err(|_| StateError::Invalid)?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StateError::Invalid);
    }
    let given = hex::decode(sig).map_err(|_| StateError::Invalid)?;
    let matches = |secret: &ClientSecret| {
        let expected = hex::decode(signature(shop, expiry_n, nonce, secret)).unwrap_or_default();
        constant_time_eq(&expected, &given)
    };
    if !(matches(current) || previous.is_some_and(matches)) {
        return Err(StateError::Invalid);
    }
    if now > expiry_n {
        return Err(StateError::Expired);
    }
    Ok((nonce, expiry_n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = "a-shop.myshopify.com";

    fn secret(s: &str) -> ClientSecret {
        ClientSecret::from(s)
    }

    #[test]
    fn a_state_verifies_for_its_shop_until_it_expires() {
        let s = issue(SHOP, 1_000, &secret("k"));
        assert!(verify(&s, SHOP, 999, &secret("k"), None).is_ok());
        assert_eq!(
            verify(&s, SHOP, 1_001, &secret("k"), None),
            Err(StateError::Expired)
        );
        assert_eq!(
            verify(&s, "other.myshopify.com", 999, &secret("k"), None),
            Err(StateError::Invalid)
        );
        assert_eq!(
            verify(&s, SHOP, 999, &secret("other"), None),
            Err(StateError::Invalid)
        );
    }

    #[test]
    fn the_previous_secret_verifies_during_a_rotation() {
        let s = issue(SHOP, 1_000, &secret("old"));
        assert!(verify(&s, SHOP, 1, &secret("new"), Some(&secret("old"))).is_ok());
    }

    #[test]
    fn issued_states_are_well_formed_and_little_else_is() {
        let s = issue(SHOP, 1_000, &secret("k"));
        assert!(is_well_formed(&s), "{s}");
        assert!(s.len() <= 118);
        for bad in [
            "",
            "1.2",
            "0.6784241404160823",
            &s.to_uppercase(),
            &format!("{s}.x"),
            &format!("x{s}"),
            &s.replacen("1000.", "123456789012345678901.", 1),
        ] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }

    #[test]
    fn tampering_is_refused() {
        let s = issue(SHOP, 1_000, &secret("k"));
        let longer = s.replacen("1000.", "9999.", 1);
        assert_eq!(
            verify(&longer, SHOP, 1, &secret("k"), None),
            Err(StateError::Invalid)
        );
        for bad in ["", "1.2", "x.y.z", "0.6784241404160823"] {
            assert_eq!(
                verify(bad, SHOP, 1, &secret("k"), None),
                Err(StateError::Invalid),
                "{bad}"
            );
        }
    }
}
