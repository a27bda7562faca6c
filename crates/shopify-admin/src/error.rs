//! The client's error taxonomy: [`ShopifyError`], its condition reasons and
//! retryability, and [`UserError`].
//!
//! No network access. How raw responses are sorted into these classes is in
//! `response.rs`.

use std::time::Duration;

use serde::Deserialize;

/// One `userErrors` entry of a mutation payload, or a GraphQL error mapped
/// to the change whose alias it names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserError {
    /// The input path Shopify blames (`["webhookSubscription", "callbackUrl"]`),
    /// possibly empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub field: Vec<String>,
    /// Human-readable message, e.g. "Address for this topic has already been taken".
    pub message: String,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Everything that can go wrong talking to Shopify, in classes the
/// controller acts on. Messages come from the server (which never echoes the
/// token) and are additionally scrubbed of the token by the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShopifyError {
    /// HTTP 401: the token is invalid or revoked (the app was uninstalled).
    #[error("unauthorized (HTTP 401): the access token is invalid or has been revoked")]
    Unauthorized,
    /// HTTP 402: the shop is frozen (unpaid).
    #[error("payment required (HTTP 402): the shop is frozen")]
    PaymentRequired,
    /// HTTP 403 or GraphQL `ACCESS_DENIED`: the token lacks a scope.
    #[error("forbidden: {message}")]
    Forbidden {
        /// The server's explanation.
        message: String,
    },
    /// HTTP 404: no such shop (or API version path).
    #[error("not found (HTTP 404): no such shop")]
    NotFound,
    /// HTTP 423 or GraphQL `SHOP_INACTIVE`: the shop is locked.
    #[error("locked (HTTP 423): the shop is locked")]
    Locked,
    /// HTTP 429 or GraphQL `THROTTLED`: nothing was executed; try again
    /// after `retry_after`.
    #[error("throttled by Shopify; retry after {retry_after:?}")]
    Throttled {
        /// How long to wait before the same request can be paid for.
        retry_after: Duration,
    },
    /// HTTP 5xx, `INTERNAL_SERVER_ERROR`, timeouts and connection errors.
    /// `outcome_unknown` is true when a document that creates subscriptions
    /// may have been executed: re-list before trying again.
    #[error("Shopify unavailable: {message}{}", if *.outcome_unknown { " (outcome unknown: re-list before retrying)" } else { "" })]
    Transient {
        /// What failed.
        message: String,
        /// Whether the server may have applied the request.
        outcome_unknown: bool,
    },
    /// A mutation was rejected with `userErrors`.
    #[error("Shopify rejected the change: {}", join_user_errors(.0))]
    UserErrors(Vec<UserError>),
    /// A single document costs more than the server will ever accept
    /// (bucket size or `MAX_COST_EXCEEDED`). `apply` splits on this itself.
    #[error("query cost {requested} exceeds the maximum {maximum}")]
    QueryTooExpensive {
        /// `requestedQueryCost`.
        requested: f64,
        /// Bucket size or per-query limit.
        maximum: f64,
    },
    /// The OAuth token endpoint refused a grant (`invalid_grant`,
    /// `invalid_client`, …).
    #[error("OAuth grant rejected: {error}{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        /// The OAuth `error` code.
        error: String,
        /// `error_description`, when given.
        description: Option<String>,
    },
    /// The request could not be built from the input (bad shop domain, bad
    /// API version, bad configuration); nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Anything unexpected: GraphQL errors, unparseable bodies, redirects,
    /// other statuses.
    #[error("Shopify protocol error: {0}")]
    Protocol(String),
}

fn join_user_errors(errs: &[UserError]) -> String {
    errs.iter()
        .map(|e| {
            if e.field.is_empty() {
                e.message.clone()
            } else {
                format!("{}: {}", e.field.join("."), e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl ShopifyError {
    /// The condition reason (CamelCase) the controller writes into status.
    pub fn reason(&self) -> &'static str {
        match self {
            ShopifyError::Unauthorized => "TokenRevoked",
            ShopifyError::PaymentRequired => "ShopFrozen",
            ShopifyError::Forbidden { .. } => "MissingScope",
            ShopifyError::NotFound => "ShopNotFound",
            ShopifyError::Locked => "ShopLocked",
            ShopifyError::Throttled { .. } => "ShopifyThrottled",
            ShopifyError::Transient { .. } => "ShopifyUnavailable",
            ShopifyError::UserErrors(_) => "ShopifyUserError",
            ShopifyError::OAuth { .. } => "OAuthGrantRejected",
            ShopifyError::InvalidInput(_) => "InvalidSpec",
            ShopifyError::QueryTooExpensive { .. } | ShopifyError::Protocol(_) => "ShopifyProtocolError",
        }
    }

    /// True when trying again later, without anyone changing anything, may
    /// succeed: `Throttled` and `Transient` (for `Transient {
    /// outcome_unknown: true }` only after re-listing).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ShopifyError::Throttled { .. } | ShopifyError::Transient { .. }
        )
    }

    /// The server-advised wait, for `Throttled`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ShopifyError::Throttled { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// Scrubs `secret` out of every message the error carries.
    pub(crate) fn redacted(self, secret: &str) -> Self {
        use super::token::redact;
        match self {
            ShopifyError::Forbidden { message } => ShopifyError::Forbidden {
                message: redact(&message, secret),
            },
            ShopifyError::Transient {
                message,
                outcome_unknown,
            } => ShopifyError::Transient {
                message: redact(&message, secret),
                outcome_unknown,
            },
            ShopifyError::UserErrors(errs) => ShopifyError::UserErrors(
                errs.into_iter()
                    .map(|e| UserError {
                        field: e.field,
                        message: redact(&e.message, secret),
                    })
                    .collect(),
            ),
            ShopifyError::OAuth { error, description } => ShopifyError::OAuth {
                error: redact(&error, secret),
                description: description.map(|d| redact(&d, secret)),
            },
            ShopifyError::InvalidInput(m) => ShopifyError::InvalidInput(redact(&m, secret)),
            ShopifyError::Protocol(m) => ShopifyError::Protocol(redact(&m, secret)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_retryability() {
        let cases: Vec<(ShopifyError, &str, bool)> = vec![
            (ShopifyError::Unauthorized, "TokenRevoked", false),
            (ShopifyError::PaymentRequired, "ShopFrozen", false),
            (
                ShopifyError::Forbidden { message: "m".into() },
                "MissingScope",
                false,
            ),
            (ShopifyError::NotFound, "ShopNotFound", false),
            (ShopifyError::Locked, "ShopLocked", false),
            (
                ShopifyError::Throttled {
                    retry_after: Duration::from_secs(1),
                },
                "ShopifyThrottled",
                true,
            ),
            (
                ShopifyError::Transient {
                    message: "m".into(),
                    outcome_unknown: true,
                },
                "ShopifyUnavailable",
                true,
            ),
            (ShopifyError::UserErrors(vec![]), "ShopifyUserError", false),
            (ShopifyError::Protocol("m".into()), "ShopifyProtocolError", false),
            (
                ShopifyError::QueryTooExpensive {
                    requested: 2.0,
                    maximum: 1.0,
                },
                "ShopifyProtocolError",
                false,
            ),
            (ShopifyError::InvalidInput("m".into()), "InvalidSpec", false),
            (
                ShopifyError::OAuth {
                    error: "invalid_grant".into(),
                    description: None,
                },
                "OAuthGrantRejected",
                false,
            ),
        ];
        for (e, reason, retry) in cases {
            assert_eq!(e.reason(), reason, "{e:?}");
            assert_eq!(e.is_retryable(), retry, "{e:?}");
        }
    }

    #[test]
    fn display_texts() {
        let e = ShopifyError::UserErrors(vec![UserError {
            field: vec!["webhookSubscription".into(), "callbackUrl".into()],
            message: "Address for this topic has already been taken".into(),
        }]);
        assert_eq!(
            e.to_string(),
            "Shopify rejected the change: webhookSubscription.callbackUrl: Address for this topic has already been taken"
        );
        let e = ShopifyError::Transient {
            message: "timeout".into(),
            outcome_unknown: true,
        };
        assert!(e.to_string().contains("outcome unknown"));
    }
}
