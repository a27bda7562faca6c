//! Secret newtypes: [`AccessToken`], [`ClientSecret`] and [`RefreshToken`].
//!
//! No network access. Each type wraps a `String` whose `Debug` and `Display`
//! print `***`; the only way to read the value is the explicit
//! [`AccessToken::expose`] (and the same method on the other types), so a
//! secret cannot reach a log line, an error message or a `{:?}` of a larger
//! structure by accident. None of the types implements `serde::Serialize`.
//! Equality is constant-time so that comparing a presented secret with a
//! stored one does not leak a matching prefix through timing.

use std::fmt;

macro_rules! secret_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Eq)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: String) -> Self {
                Self(value)
            }

            /// The secret itself. This is the only way to read it: call it
            /// only where the value must leave the process (an HTTP header or
            /// request body sent to the shop's own Admin API host) or to
            /// store it.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// True when the secret is the empty string.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("***")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("***")
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

secret_newtype!(
    /// A shop's Admin API access token (`shpat_…`, `shpca_…`, …), sent as
    /// `X-Shopify-Access-Token` to that shop's Admin API root and nowhere else.
    AccessToken
);

secret_newtype!(
    /// The app's client secret (API secret key): signs OAuth callbacks and
    /// webhook deliveries and authenticates calls to the token endpoint.
    ClientSecret
);

secret_newtype!(
    /// A refresh token for an expiring offline access token (OAuth
    /// `refresh_token` grant).
    RefreshToken
);

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keep the optimiser from turning the loop into an early exit.
    std::hint::black_box(diff) == 0
}

/// Replaces every occurrence of the secret in `text` with `***`.
///
/// A belt-and-braces pass applied to messages that come back from the
/// server before they are put into a [`super::ShopifyError`]: Shopify does not
/// echo tokens, but a proxy or a misconfigured server might.
pub(crate) fn redact(text: &str, secret: &str) -> String {
    if secret.len() < 4 || !text.contains(secret) {
        return text.to_owned();
    }
    text.replace(secret, "***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let t = AccessToken::new("shpat_supersecret".into());
        assert_eq!(format!("{t:?}"), "***");
        assert_eq!(format!("{t}"), "***");
        assert_eq!(t.expose(), "shpat_supersecret");
        let s = ClientSecret::from("hush");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        let r = RefreshToken::from("shprt_x");
        assert_eq!(format!("{r:?}"), "***");
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(AccessToken::from("abc"), AccessToken::from("abc"));
        assert_ne!(AccessToken::from("abc"), AccessToken::from("abd"));
        assert_ne!(AccessToken::from("abc"), AccessToken::from("abcd"));
        assert!(AccessToken::from("").is_empty());
    }

    #[test]
    fn redact_replaces_every_occurrence() {
        assert_eq!(redact("a shpat_1 b shpat_1", "shpat_1"), "a *** b ***");
        assert_eq!(redact("nothing here", "shpat_1"), "nothing here");
    }
}
