//! The registry of condition reasons: every reason either controller writes
//! (one list), what a person should do about it (`hint`, for the Warning
//! Event of a transition) and whether it needs a person at all
//! (`needs_person`, for kstatus's `Stalled`). Pure.

use std::fmt;
use std::str::FromStr;

/// Declares [`Reason`] from one list, so its name, `ALL` and parsing can't
/// disagree.
macro_rules! reasons {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// Every condition reason this controller writes: CamelCase and
        /// machine-readable, as `status.conditions[].reason`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name),*];

            /// The reason as written to status.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Reason::$name => stringify!($name), )*
                }
            }

            /// The reason's doc comment, for the generated reference
            /// (`crate::docs`): one source for the code and the book.
            pub fn doc(self) -> &'static str {
                match self {
                    $( Reason::$name => concat!($($doc, "\n"),*), )*
                }
            }
        }
    };
}

reasons! {
    // Ready
    /// Ready: every other condition is True.
    Reconciled,
    // CredentialsValid (ShopifyApp)
    /// The app's credentials Secret has `client-id` and `client-secret`.
    CredentialsFound,
    // TokenValid
    /// The token answered Shopify's `shop` query for this shop.
    TokenVerified,
    /// The token Secret does not exist.
    SecretNotFound,
    /// The token Secret has no non-empty `access-token`.
    SecretKeyMissing,
    /// `access-token` is not a usable token (not printable ASCII).
    SecretKeyInvalid,
    /// Shopify answered 401: the token is revoked or wrong.
    TokenRevoked,
    /// Shopify answered 402: the shop is frozen (unpaid).
    ShopFrozen,
    /// Shopify answered 403: a scope is missing.
    MissingScope,
    /// Shopify answered 404: no such shop.
    ShopNotFound,
    /// Shopify answered 423: the shop is locked.
    ShopLocked,
    /// The token belongs to another shop.
    TokenShopMismatch,
    /// The shop is outside `--allowed-shops` or its ShopifyApp's
    /// `allowedShops`: nothing is sent to it.
    ShopNotAllowed,
    /// `spec.appRef` names a ShopifyApp that does not exist.
    AppNotFound,
    /// The ShopifyApp's credentials Secret is missing or incomplete
    /// (webhooks still follow the spec; refresh and signatures can't).
    AppCredentialsInvalid,
    /// Shopify delivered `app/uninstalled` for this token.
    AppUninstalled,
    /// The token works, but refreshing it failed.
    TokenRefreshFailed,
    /// The token works, but its refresh token ends soon.
    RefreshTokenExpiring,
    /// The token works, but refresh needs app credentials the shop lacks.
    AppCredentialsMissing,
    /// The token works, but the Secret has an expiry and no refresh token.
    RefreshTokenMissing,
    /// The token works, but migrating it to an expiring token failed.
    TokenMigrationFailed,
    /// Shopify's token endpoint refused a grant.
    OAuthGrantRejected,
    // WebhooksSynced
    /// The subscriptions match the spec.
    InSync,
    /// Nothing to do: no webhooks (or no syncs) in the spec.
    NotConfigured,
    /// No valid token to check subscriptions with (or start Jobs with).
    TokenInvalid,
    /// `ingressRef` names an Ingress that does not exist.
    IngressNotFound,
    /// The Ingress has no rule host.
    IngressHostMissing,
    /// The host is not a public DNS name Shopify can deliver to.
    InvalidHost,
    /// The new host's TLS certificate is not there or not valid yet:
    /// webhooks stay at the old host.
    EndpointCertificateNotReady,
    /// Shopify throttled the request; retried after the bucket refills.
    ShopifyThrottled,
    /// Shopify answered 5xx or timed out; retried.
    ShopifyUnavailable,
    /// Shopify refused a subscription (`userErrors`).
    ShopifyUserError,
    /// Shopify rejected the spec's input.
    InvalidSpec,
    /// The spec uses a field the shop's Admin API version does not have.
    UnsupportedForApiVersion,
    /// The spec names a topic that is not in Shopify's
    /// `WebhookSubscriptionTopic` enum.
    UnknownTopic,
    /// Shopify's answer could not be understood.
    ShopifyProtocolError,
    /// The token lacks the scopes some topics need.
    MissingScopes,
    /// `managementPolicy: Observe` and Shopify differs from the spec.
    DriftDetected,
    // SyncHealthy
    /// Every sync is scheduled (or suspended).
    Scheduled,
    /// A sync's schedule or Job template is invalid.
    InvalidSchedule,
    /// A sync failed `--sync-failure-threshold` times in a row.
    SyncFailing,
    /// `managementPolicy: Observe`: no sync Jobs are started.
    Observe,
    // AppHandover
    /// The shop moved to the new app: its subscriptions are live, and the
    /// previous app's are gone.
    HandedOver,
    /// `spec.appRef` was set back before the switch: nothing changed.
    HandoverCancelled,
    /// The new app has no usable token for the shop yet: the previous app
    /// keeps the webhooks and syncs until the merchant installs it.
    WaitingForInstall,
    /// `spec.token.secretRef` still names the previous app's token Secret:
    /// the new app's token needs its own.
    TokenSecretInUse,
    /// The token in `spec.token.secretRef` belongs to another app than the
    /// one `spec.appRef` names.
    TokenAppMismatch,
    /// The new app is live; the previous app's subscriptions are deleted
    /// once the new app's are all in sync.
    Switching,
}

impl Reason {
    /// The reason of a Shopify failure (the client names it; an unknown
    /// name is a protocol error).
    pub fn of_shopify(e: &shopify_admin::ShopifyError) -> Reason {
        e.reason().parse().unwrap_or(Reason::ShopifyProtocolError)
    }
}

impl Reason {
    /// What a person should do about a condition with this reason, for
    /// the Warning Event of a transition into it. Exhaustive, so a new
    /// reason cannot be added without one.
    pub fn hint(self) -> &'static str {
        match self {
            Reason::Reconciled
            | Reason::CredentialsFound
            | Reason::TokenVerified
            | Reason::InSync
            | Reason::NotConfigured
            | Reason::Scheduled => "nothing to do",
            Reason::SecretNotFound => {
                "create the Secret spec.token.secretRef names (key access-token), or fix the name"
            }
            Reason::SecretKeyMissing => "put the shop's offline access token under the key access-token",
            Reason::SecretKeyInvalid => {
                "access-token must be the token alone: printable ASCII, no quotes or spaces"
            }
            Reason::TokenRevoked => {
                "the token was revoked or the app uninstalled: reinstall the app (OAuth) or put a new token in the Secret"
            }
            Reason::ShopFrozen => {
                "the shop is frozen for unpaid bills; nothing works until the merchant pays"
            }
            Reason::MissingScope => {
                "grant the app the scope Shopify names (reinstall with the scope), then retry"
            }
            Reason::ShopNotFound => "check spec.domain: Shopify does not know this shop (closed, or a typo)",
            Reason::ShopLocked => "the shop is locked by Shopify; contact the merchant or Shopify support",
            Reason::TokenShopMismatch => "the Secret holds another shop's token: put this shop's token in it",
            Reason::ShopNotAllowed => {
                "add the domain to --allowed-shops (ALLOWED_SHOPS) or to the ShopifyApp's allowedShops, as the message says, if it may be served"
            }
            Reason::AppNotFound => {
                "create the ShopifyApp spec.appRef names in the shop's namespace, or fix the name"
            }
            Reason::AppCredentialsInvalid => {
                "fix the ShopifyApp's credentials Secret (client-id, client-secret): kubectl describe shopifyapp"
            }
            Reason::AppUninstalled => {
                "reinstall the app (the operator's /oauth/install) or put a new token in the Secret"
            }
            Reason::TokenRefreshFailed => {
                "check the app credentials Secret and Shopify's answer in the message"
            }
            Reason::RefreshTokenExpiring => {
                "reinstall the app before the refresh token ends, or the shop loses its token"
            }
            Reason::AppCredentialsMissing => {
                "set spec.app.secretRef (client-id, client-secret) so the token can be refreshed"
            }
            Reason::RefreshTokenMissing => {
                "put the refresh-token that came with the token in the Secret, or reinstall"
            }
            Reason::TokenMigrationFailed => {
                "check the app credentials and Shopify's answer; the old token keeps working"
            }
            Reason::OAuthGrantRejected => "check the app's client id and secret; Shopify refused the grant",
            Reason::TokenInvalid => {
                "fix TokenValid first: nothing is checked or started without a valid token"
            }
            Reason::IngressNotFound => {
                "create the Ingress spec.webhooks.endpoint.ingressRef names, or fix the name"
            }
            Reason::IngressHostMissing => {
                "give the Ingress a rule with a host; webhooks stay where they are until then"
            }
            Reason::InvalidHost => {
                "use a public DNS name Shopify can deliver to; webhooks stay where they are until then"
            }
            Reason::EndpointCertificateNotReady => {
                "nothing if cert-manager is issuing it; else put a valid certificate for the host in the TLS Secret the message names (webhooks stay at the old host until then)"
            }
            Reason::ShopifyThrottled => {
                "nothing: retried when the cost bucket refills; sustained, lower the resync rate"
            }
            Reason::ShopifyUnavailable => {
                "nothing: retried with backoff; check Shopify's status page if it lasts"
            }
            Reason::ShopifyUserError => {
                "Shopify refused a subscription: read its words in the message and fix the spec"
            }
            Reason::InvalidSpec => "fix the field the message names",
            Reason::UnsupportedForApiVersion => {
                "raise spec.adminApiVersion to the version the message names, or drop the field"
            }
            Reason::UnknownTopic => {
                "fix the topic's spelling (REST form, as in Shopify's webhook topic list)"
            }
            Reason::ShopifyProtocolError => {
                "an answer the operator could not read: report it with the operator's logs"
            }
            Reason::MissingScopes => {
                "grant the scopes the message lists (reinstall the app), or drop those topics"
            }
            Reason::DriftDetected => {
                "review the drift in the message; set managementPolicy: Manage to repair it"
            }
            Reason::InvalidSchedule => "fix the sync's schedule or jobTemplate the message names",
            Reason::SyncFailing => "look at the failed Jobs' logs (kubectl logs job/<name>)",
            Reason::Observe => "nothing: managementPolicy Observe starts no Jobs",
            Reason::HandedOver | Reason::HandoverCancelled => "nothing to do",
            Reason::WaitingForInstall => {
                "send the merchant the install URL in status.handover.installUrl (or put the new app's token in spec.token.secretRef); the previous app keeps everything until then"
            }
            Reason::TokenSecretInUse => {
                "point spec.token.secretRef at a new Secret for the new app's token (e.g. {shop}-{app}-shopify-token); the previous app's stays where it is"
            }
            Reason::TokenAppMismatch => {
                "put the token the new app got for this shop in spec.token.secretRef (the merchant installs the app spec.appRef names)"
            }
            Reason::Switching => {
                "nothing: the previous app's subscriptions are deleted once the new app's are in sync (the message says what holds them)"
            }
        }
    }
}

/// What a part of Ready that is not True for a reason means for progress
/// (kstatus's `Stalled` and `Reconciling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing moves until a person acts: `Stalled`.
    NeedsPerson,
    /// The operator retries by itself: `Reconciling`.
    Retried,
    /// Neither: a consequence of another condition, a deliberate mode
    /// (Observe), or fine.
    Settled,
}

impl Reason {
    /// What this reason on a part that is not True means for progress.
    /// Exhaustive, so a new reason is classified by construction.
    pub fn progress(self) -> Progress {
        match self {
            Reason::SecretNotFound
            | Reason::SecretKeyMissing
            | Reason::SecretKeyInvalid
            | Reason::TokenRevoked
            | Reason::ShopFrozen
            | Reason::MissingScope
            | Reason::ShopNotFound
            | Reason::ShopLocked
            | Reason::TokenShopMismatch
            | Reason::ShopNotAllowed
            | Reason::AppNotFound
            | Reason::AppCredentialsInvalid
            | Reason::AppUninstalled
            | Reason::OAuthGrantRejected
            | Reason::IngressNotFound
            | Reason::IngressHostMissing
            | Reason::InvalidHost
            | Reason::ShopifyUserError
            | Reason::InvalidSpec
            | Reason::UnsupportedForApiVersion
            | Reason::UnknownTopic
            | Reason::MissingScopes
            | Reason::InvalidSchedule
            | Reason::SyncFailing
            | Reason::WaitingForInstall
            | Reason::TokenSecretInUse
            | Reason::TokenAppMismatch
            // Observe repairs nothing: the drift stays until a person
            // fixes the spec or switches to Manage (kstatus would call a
            // lasting Ready=False "in progress" otherwise, forever).
            | Reason::DriftDetected => Progress::NeedsPerson,
            Reason::ShopifyThrottled
            | Reason::ShopifyUnavailable
            | Reason::ShopifyProtocolError
            | Reason::EndpointCertificateNotReady
            | Reason::Switching => Progress::Retried,
            Reason::TokenInvalid
            | Reason::Observe
            | Reason::Reconciled
            | Reason::CredentialsFound
            | Reason::TokenVerified
            | Reason::TokenRefreshFailed
            | Reason::RefreshTokenExpiring
            | Reason::AppCredentialsMissing
            | Reason::RefreshTokenMissing
            | Reason::TokenMigrationFailed
            | Reason::InSync
            | Reason::NotConfigured
            | Reason::Scheduled
            | Reason::HandedOver
            | Reason::HandoverCancelled => Progress::Settled,
        }
    }
}

impl FromStr for Reason {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Reason::ALL.iter().copied().find(|r| r.as_str() == s).ok_or(())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_parses_back_and_shopify_failures_are_registered() {
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(*r));
        }
        use shopify_admin::ShopifyError as E;
        let failures = [
            E::Unauthorized,
            E::PaymentRequired,
            E::Forbidden {
                message: String::new(),
            },
            E::NotFound,
            E::Locked,
            E::Throttled {
                retry_after: std::time::Duration::ZERO,
            },
            E::Transient {
                message: String::new(),
                outcome_unknown: false,
            },
            E::UserErrors(Vec::new()),
            E::InvalidInput(String::new()),
            E::Protocol(String::new()),
        ];
        for e in failures {
            assert_eq!(Reason::of_shopify(&e).as_str(), e.reason(), "{e:?}");
        }
    }
}
