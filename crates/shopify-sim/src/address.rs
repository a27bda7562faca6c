//! Validation of webhook subscription addresses, as Shopify does it on create
//! and update, and the split of an address into the `endpoint` union.
//!
//! Shopify accepts `https://` URLs on public hosts, Google Pub/Sub
//! (`pubsub://{project-id}:{topic-id}`) and Amazon EventBridge partner event
//! source ARNs in `uri` (2025-10 on), only HTTP(S) URLs in `callbackUrl`; it
//! rejects `http://` and internal hosts (fact sheet §2, [3P]). Tests and
//! local demos need loopback `http://` receivers, hence the explicit escape
//! hatch. See docs/src/shopify/webhook-subscriptions.md for the sources.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// User-facing messages, as Shopify words them.
pub(crate) const MSG_INVALID: &str = "Address is invalid";
pub(crate) const MSG_HTTP: &str = "Address protocol http:// is not supported";
pub(crate) const MSG_INTERNAL: &str = "Address is an internal address";
pub(crate) const MSG_BLANK: &str = "Address can't be blank";

/// Scheme prefix of Google Cloud Pub/Sub addresses.
pub(crate) const PUBSUB_PREFIX: &str = "pubsub://";
/// Prefix of Amazon EventBridge ARNs.
const ARN_PREFIX: &str = "arn:aws:events:";
/// What follows the region in a Shopify partner event source ARN.
const ARN_SOURCE: &str = "::event-source/aws.partner/shopify.com/";

/// Which kinds of destination an address field accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Accepts {
    /// `callbackUrl`: HTTP(S) URLs only.
    HttpOnly,
    /// `uri` and the dedicated mutations: HTTPS, Pub/Sub and EventBridge.
    #[default]
    Any,
}

/// The address a Pub/Sub destination is stored and listed under.
pub(crate) fn pubsub_address(project: &str, topic: &str) -> String {
    format!("{PUBSUB_PREFIX}{project}:{topic}")
}

/// A Pub/Sub project or topic id as the simulator accepts it: non-empty,
/// without whitespace, `/` or `:` ([U]: Shopify's own rule is not documented).
pub(crate) fn valid_pubsub_part(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == '/' || c == ':')
}

/// `arn:aws:events:{region}::event-source/aws.partner/shopify.com/{app id}/{name}`.
fn valid_arn(arn: &str) -> bool {
    let Some(rest) = arn.strip_prefix(ARN_PREFIX) else {
        return false;
    };
    let Some((region, rest)) = rest.split_once(ARN_SOURCE) else {
        return false;
    };
    let Some((app_id, name)) = rest.split_once('/') else {
        return false;
    };
    !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !app_id.is_empty()
        && app_id.chars().all(|c| c.is_ascii_digit())
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}
/// Where deliveries for a subscription go, i.e. which member of the
/// `WebhookSubscriptionEndpoint` union describes the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Http { callback_url: String },
    EventBridge { arn: String },
    PubSub { project: String, topic: String },
}

impl Endpoint {
    /// Classifies an address that [`check`] accepted (or a fixture's address).
    pub fn of(address: &str) -> Self {
        if let Some(rest) = address.strip_prefix(PUBSUB_PREFIX)
            && let Some((project, topic)) = rest.split_once(':')
        {
            return Self::PubSub {
                project: project.to_string(),
                topic: topic.to_string(),
            };
        }
        if address.starts_with(ARN_PREFIX) {
            return Self::EventBridge {
                arn: address.to_string(),
            };
        }
        Self::Http {
            callback_url: address.to_string(),
        }
    }

    /// Pub/Sub or EventBridge, i.e. not an HTTP(S) endpoint.
    pub fn is_cloud(&self) -> bool {
        !matches!(self, Self::Http { .. })
    }
}

/// Returns Shopify's user-error message for an unacceptable address.
pub(crate) fn check(address: &str, allow_insecure: bool, accepts: Accepts) -> Result<(), &'static str> {
    if address.trim().is_empty() {
        return Err(MSG_BLANK);
    }
    if let Some(rest) = address.strip_prefix(PUBSUB_PREFIX) {
        if accepts == Accepts::HttpOnly {
            return Err(MSG_INVALID);
        }
        return match rest.split_once(':') {
            Some((p, t)) if valid_pubsub_part(p) && valid_pubsub_part(t) => Ok(()),
            _ => Err(MSG_INVALID),
        };
    }
    if address.starts_with("arn:") {
        return if accepts == Accepts::Any && valid_arn(address) {
            Ok(())
        } else {
            Err(MSG_INVALID)
        };
    }
    let url = url::Url::parse(address).map_err(|_| MSG_INVALID)?;
    let host = match url.host() {
        Some(h) => h,
        None => return Err(MSG_INVALID),
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => return Err(MSG_HTTP),
        _ => return Err(MSG_INVALID),
    }
    if allow_insecure {
        return Ok(());
    }
    let internal = match host {
        url::Host::Domain(d) => is_internal_name(d),
        url::Host::Ipv4(ip) => is_internal_ip(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => is_internal_ip(IpAddr::V6(ip)),
    };
    if internal { Err(MSG_INTERNAL) } else { Ok(()) }
}

fn is_internal_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || [".localhost", ".local", ".internal", ".localdomain"]
            .iter()
            .any(|suffix| host.ends_with(suffix))
        || !host.contains('.')
}

fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            is_internal_v6(v6)
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        // Carrier-grade NAT (100.64.0.0/10) is as unreachable as RFC 1918.
        || (a == 100 && (64..128).contains(&b))
        || a == 0
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || ip.is_unique_local() || ip.is_unicast_link_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_https_addresses_pass() {
        for ok in [
            "https://oms.popsockets.com/webhooks/orders_create",
            "https://8.8.8.8/hook",
            "https://example.com:8443/a?b=c",
            "pubsub://my-project:my-topic",
            "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1/x",
            "arn:aws:events:eu-west-1::event-source/aws.partner/shopify.com/123456/orders.feed-1",
        ] {
            assert_eq!(check(ok, false, Accepts::Any), Ok(()), "{ok}");
        }
    }

    #[test]
    fn callback_url_takes_http_only_and_malformed_cloud_addresses_fail() {
        for cloud in [
            "pubsub://p:t",
            "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1/x",
        ] {
            assert_eq!(
                check(cloud, false, Accepts::HttpOnly),
                Err(MSG_INVALID),
                "{cloud}"
            );
        }
        for bad in [
            "pubsub://",
            "pubsub://p:",
            "pubsub://:t",
            "pubsub://p:t:u",
            "pubsub://p q:t",
            "pubsub://p/x:t",
            "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1",
            "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/abc/x",
            "arn:aws:events:::event-source/aws.partner/shopify.com/1/x",
            "arn:aws:events:us-east-1:123:event-bus/default",
            "arn:aws:sqs:us-east-1:123:queue",
            "arn:aws:events:us-east-1::event-source/aws.partner/shopify.com/1/a b",
        ] {
            assert_eq!(check(bad, false, Accepts::Any), Err(MSG_INVALID), "{bad}");
        }
        assert_eq!(pubsub_address("p", "t"), "pubsub://p:t");
    }

    #[test]
    fn insecure_internal_and_malformed_addresses_fail_with_shopify_messages() {
        assert_eq!(check("http://example.com/h", false, Accepts::Any), Err(MSG_HTTP));
        for internal in [
            "https://localhost/h",
            "https://127.0.0.1/h",
            "https://10.1.2.3/h",
            "https://192.168.0.1/h",
            "https://172.16.5.4/h",
            "https://169.254.169.254/latest",
            "https://[::1]/h",
            "https://[fd00::1]/h",
            "https://[::ffff:127.0.0.1]/h",
            "https://api.localhost/h",
            "https://intranet/h",
        ] {
            assert_eq!(
                check(internal, false, Accepts::Any),
                Err(MSG_INTERNAL),
                "{internal}"
            );
        }
        for bad in ["not a url", "https://", "ftp://example.com/x", "pubsub://nocolon"] {
            assert_eq!(check(bad, false, Accepts::Any), Err(MSG_INVALID), "{bad}");
        }
        assert_eq!(check("  ", false, Accepts::Any), Err(MSG_BLANK));
    }

    #[test]
    fn allow_insecure_admits_loopback_http() {
        assert_eq!(check("http://127.0.0.1:9000/h", true, Accepts::HttpOnly), Ok(()));
        assert_eq!(check("https://localhost/h", true, Accepts::Any), Ok(()));
        assert_eq!(check("garbage", true, Accepts::Any), Err(MSG_INVALID));
    }

    #[test]
    fn endpoint_classification() {
        assert_eq!(
            Endpoint::of("pubsub://p:t"),
            Endpoint::PubSub {
                project: "p".into(),
                topic: "t".into()
            }
        );
        assert!(matches!(Endpoint::of("https://x.com/"), Endpoint::Http { .. }));
        assert!(matches!(
            Endpoint::of("arn:aws:events:x"),
            Endpoint::EventBridge { .. }
        ));
        assert!(Endpoint::of("pubsub://p:t").is_cloud());
        assert!(!Endpoint::of("https://x.com/").is_cloud());
    }
}
