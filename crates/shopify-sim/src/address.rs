//! Validation of webhook subscription addresses, as Shopify does it on create
//! and update, and the split of an address into the `endpoint` union.
//!
//! Shopify accepts `https://` URLs on public hosts, Google Pub/Sub
//! (`pubsub://project:topic`) and Amazon EventBridge ARNs; it rejects
//! `http://` and internal hosts (fact sheet §2, [3P]). Tests and local demos
//! need loopback `http://` receivers, hence the explicit escape hatch.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// User-facing messages, as Shopify words them.
pub(crate) const MSG_INVALID: &str = "Address is invalid";
pub(crate) const MSG_HTTP: &str = "Address protocol http:// is not supported";
pub(crate) const MSG_INTERNAL: &str = "Address is an internal address";
pub(crate) const MSG_BLANK: &str = "Address can't be blank";

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
        if let Some(rest) = address.strip_prefix("pubsub://")
            && let Some((project, topic)) = rest.split_once(':')
        {
            return Self::PubSub {
                project: project.to_string(),
                topic: topic.to_string(),
            };
        }
        if address.starts_with("arn:aws:events:") {
            return Self::EventBridge {
                arn: address.to_string(),
            };
        }
        Self::Http {
            callback_url: address.to_string(),
        }
    }
}

/// Returns Shopify's user-error message for an unacceptable address.
pub(crate) fn check(address: &str, allow_insecure: bool) -> Result<(), &'static str> {
    if address.trim().is_empty() {
        return Err(MSG_BLANK);
    }
    if let Some(rest) = address.strip_prefix("pubsub://") {
        return match rest.split_once(':') {
            Some((p, t)) if !p.is_empty() && !t.is_empty() => Ok(()),
            _ => Err(MSG_INVALID),
        };
    }
    if address.starts_with("arn:aws:events:") {
        return Ok(());
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
        ] {
            assert_eq!(check(ok, false), Ok(()), "{ok}");
        }
    }

    #[test]
    fn insecure_internal_and_malformed_addresses_fail_with_shopify_messages() {
        assert_eq!(check("http://example.com/h", false), Err(MSG_HTTP));
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
            assert_eq!(check(internal, false), Err(MSG_INTERNAL), "{internal}");
        }
        for bad in ["not a url", "https://", "ftp://example.com/x", "pubsub://nocolon"] {
            assert_eq!(check(bad, false), Err(MSG_INVALID), "{bad}");
        }
        assert_eq!(check("  ", false), Err(MSG_BLANK));
    }

    #[test]
    fn allow_insecure_admits_loopback_http() {
        assert_eq!(check("http://127.0.0.1:9000/h", true), Ok(()));
        assert_eq!(check("https://localhost/h", true), Ok(()));
        assert_eq!(check("garbage", true), Err(MSG_INVALID));
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
    }
}
